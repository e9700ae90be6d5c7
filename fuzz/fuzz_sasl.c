/*
 * fuzz_sasl.c - the SASL engine (lib/sasl.c): the selection policy
 * ma_sasl_authenticate and the exchange driver ma_sasl_exchange, against
 * a scripted protocol adapter whose replies come from the input.
 *
 * Input: four header bytes, then one server reply per '\n'-separated line.
 *   byte 0  mechanisms the server advertises (bit set of enum ma_mech)
 *   byte 1  mechanisms the configuration allows
 *   byte 2  bit 0 mechanism_fallback, bit 1 initial response allowed,
 *           bit 2 channel binding available, bit 3 run one ma_sasl_exchange
 *           with SCRAM-SHA-256 and the RFC 7677 client nonce instead of the
 *           policy (so a real SCRAM success is reachable), bit 4 debug log
 *   byte 3  adapter call (1-based) that fails as a broken connection would;
 *           0: none
 * A reply line is a kind letter and the text: 'C' challenge (base64 text),
 * 'S' success, 'R' rejected, 'U' unsupported, 'T' temporary failure, 'P'
 * policy refusal, 'W' mechanism too weak; any other letter is taken
 * modulo 7.  When the script ends the connection is
 * closed (MA_UNAVAILABLE).
 *
 * Invariants: only mechanisms both sides allow are started (-PLUS only
 * with channel binding), in SPEC 3 order (the unbound retry of a refused
 * -PLUS, the same-hash SCRAM with GS2 flag "n", keeps that order), PLAIN
 * at most once more as the fallback; responses are canonical base64 or "*", nothing is sent after
 * "*" in one exchange; success needs the server's success as the last
 * reply, no adapter failure, a mechanism that ran to its end (a SCRAM
 * success needs the right server signature, which only the fixed-nonce
 * mode can give); a policy refusal ends the whole policy with MA_POLICY
 * and nothing is begun after it (no PLAIN fallback); MA_POLICY without a
 * policy reply needs a "too weak" one; log lines carry no control
 * character and no credential.
 */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "common.h"
#include "sasl.h"
#include "sasl_scram.h"
#include "secret.h"

#define PASSWORD "Fuzz-S3cret!pw"
#define USER "alice"
/* base64 of the PLAIN message "\0alice\0Fuzz-S3cret!pw" and of the password. */
#define PLAIN_B64 "AGFsaWNlAEZ1enotUzNjcmV0IXB3"
#define PASSWORD_B64 "RnV6ei1TM2NyZXQhcHc="
#define SCRAM_NONCE "rOprNGfwEbeRWgbNEkqO"

struct script {
	struct fuzz_in in;
	unsigned calls, fail_at;
	bool failed;                /* an adapter call has failed */
	bool in_exchange, cancelled, payload;
	bool sent_plain, sent_password;   /* in the current exchange */
	int mech;                   /* of the current exchange */
	int begun[16];              /* mechanisms begun, in order */
	unsigned n_begun;
	enum ma_sasl_reply last;
	bool have_last;
	unsigned server_mechs, allowed;
	bool have_cb;
	char *text;                 /* current challenge text */
	const struct ma_sasl_creds *creds;
	struct fuzz_log *log;
	unsigned policy_replies;    /* MA_REPLY_POLICY answers seen */
	unsigned policy_at;         /* n_begun when the last one came */
	unsigned weak_replies;      /* MA_REPLY_WEAK answers seen */
};

static bool fail_now(struct script *s)
{
	if (++s->calls == s->fail_at) {
		s->failed = true;
		return true;
	}
	return false;
}

static bool is_plus(int m)
{
	return m == MA_MECH_SCRAM_SHA_256_PLUS || m == MA_MECH_SCRAM_SHA_1_PLUS;
}

/* One response (or initial response) of the client. */
static void check_payload(struct script *s, const char *b64)
{
	size_t len = strlen(b64);
	if (strcmp(b64, "=") == 0)
		return;              /* an empty initial response */
	CHECK(fuzz_is_base64(b64, len));
	if (strcmp(b64, PLAIN_B64) == 0)
		s->sent_plain = true;
	if (strcmp(b64, PASSWORD_B64) == 0)
		s->sent_password = true;
	if (s->mech <= MA_MECH_SCRAM_SHA_1 && !s->payload) {
		/* RFC 5802 6: the gs2 flag says what the client knows about
		 * channel binding: "p=" for -PLUS, "y" when it could bind but
		 * the server offers no -PLUS, else "n". */
		unsigned plus = MA_MECH_BIT(MA_MECH_SCRAM_SHA_256_PLUS) |
		                MA_MECH_BIT(MA_MECH_SCRAM_SHA_1_PLUS);
		const char *want = is_plus(s->mech) ? "p=tls-exporter,,"
		                   : s->have_cb && !(s->server_mechs & plus) ? "y,," : "n,,";
		unsigned char *raw = NULL;
		size_t rawlen = 0;
		CHECK(ma_base64_decode(b64, len, &raw, &rawlen) == 0);
		CHECK(rawlen > strlen(want) && memcmp(raw, want, strlen(want)) == 0);
		ma_freezero(raw, rawlen + 1);
	}
	s->payload = true;
}

static enum ma_err s_begin(void *ctx, const char *mech, const char *ir)
{
	struct script *s = ctx;
	int m = ma_sasl_mech_from_token(mech, strlen(mech));
	CHECK(m >= 0);
	CHECK(s->n_begun < 16);
	s->begun[s->n_begun++] = m;
	s->in_exchange = true;
	s->cancelled = false;
	s->payload = s->sent_plain = s->sent_password = false;
	s->mech = m;
	if (ir != NULL) {
		CHECK(strcmp(ir, "*") != 0);
		check_payload(s, ir);
	}
	return fail_now(s) ? MA_UNAVAILABLE : MA_OK;
}

static enum ma_err s_reply(void *ctx, enum ma_sasl_reply *kind, const char **text, size_t *len)
{
	struct script *s = ctx;
	const uint8_t *p;
	size_t n;

	CHECK(s->in_exchange);
	free(s->text);
	s->text = NULL;
	if (fail_now(s) || !fuzz_next(&s->in, &p, &n))
		return MA_UNAVAILABLE;      /* connection closed */
	uint8_t k = n > 0 ? p[0] : 'S';
	switch (k) {
	case 'C': *kind = MA_REPLY_CHALLENGE; break;
	case 'S': *kind = MA_REPLY_SUCCESS; break;
	case 'R': *kind = MA_REPLY_REJECTED; break;
	case 'U': *kind = MA_REPLY_UNSUPPORTED; break;
	case 'T': *kind = MA_REPLY_TEMPFAIL; break;
	case 'P': *kind = MA_REPLY_POLICY; break;
	case 'W': *kind = MA_REPLY_WEAK; break;
	default: *kind = (enum ma_sasl_reply)(k % 7); break;
	}
	if (*kind == MA_REPLY_POLICY) {
		s->policy_replies++;
		s->policy_at = s->n_begun;
	}
	if (*kind == MA_REPLY_WEAK)
		s->weak_replies++;
	/* A C string, as the protocol clients hand it over. */
	s->text = fuzz_strndup(n > 0 ? p + 1 : p, n > 0 ? n - 1 : 0);
	*text = s->text;
	*len = strlen(s->text);
	s->last = *kind;
	s->have_last = true;
	if (*kind != MA_REPLY_CHALLENGE)
		s->in_exchange = false;
	return MA_OK;
}

static enum ma_err s_respond(void *ctx, const char *b64)
{
	struct script *s = ctx;
	CHECK(s->in_exchange);
	/* RFC 4422 3.5: "*" ends the exchange; nothing is sent after it. */
	CHECK(!s->cancelled);
	if (strcmp(b64, "*") == 0)
		s->cancelled = true;
	else
		check_payload(s, b64);
	return fail_now(s) ? MA_UNAVAILABLE : MA_OK;
}

/* SCRAM-SHA-256 with a fixed client nonce, for the exchange mode. */
static enum ma_err fixed_start(const struct ma_sasl_creds *c, void **state)
{
	return ma_scram_start_with_nonce(&ma_mech_scram_sha_256, c, SCRAM_NONCE, state);
}

/* true when a challenge carries a SCRAM server-first whose iteration count
 * is too expensive for the fuzzer's budget (PBKDF2 dominates everything). */
static bool expensive(const uint8_t *p, size_t n)
{
	struct fuzz_in in = { p, n };
	const uint8_t *line;
	size_t len;
	while (fuzz_next(&in, &line, &len)) {
		unsigned char *raw = NULL;
		size_t rawlen = 0;
		if (len < 1 || ma_base64_decode((const char *)line + 1, len - 1, &raw, &rawlen) != 0)
			continue;
		long iter = fuzz_scram_iterations(raw, rawlen);
		ma_freezero(raw, rawlen + 1);
		if (iter > FUZZ_SCRAM_MAX_ITER && iter <= 1000000)
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char cb[32] = "channel-binding-data-of-the-tls";
	if (size < 4 || expensive(data + 4, size - 4))
		return 0;
	struct script s;
	memset(&s, 0, sizeof(s));
	s.server_mechs = data[0];
	s.allowed = data[1];
	bool fallback = data[2] & 1, exchange = data[2] & 8;
	s.have_cb = data[2] & 4;
	s.fail_at = data[3];
	s.in.p = data + 4;
	s.in.n = size - 4;
	if (size == 4)
		s.in.p = NULL;           /* no reply at all */

	struct ma_sasl_creds creds = {
		.authcid = USER, .password = PASSWORD, .password_len = strlen(PASSWORD),
		.cb_type = s.have_cb ? "tls-exporter" : NULL,
		.cb_data = s.have_cb ? cb : NULL, .cb_len = s.have_cb ? sizeof(cb) : 0,
	};
	struct ma_log log;
	struct fuzz_log fl;
	fuzz_log_init(&fl, &log, data[2] & 16);
	fuzz_log_forbid(&fl, PASSWORD);
	fuzz_log_forbid(&fl, PLAIN_B64);
	fuzz_log_forbid(&fl, PASSWORD_B64);
	s.creds = &creds;
	s.log = &fl;
	struct ma_sasl_proto proto = {
		.ctx = &s, .initial_response = data[2] & 2,
		.begin = s_begin, .reply = s_reply, .respond = s_respond,
	};

	if (exchange) {
		s.have_cb = false;       /* the fixed-nonce creds have no binding */
		/* The RFC 7677 exchange reaches success only with the right
		 * server-first and server-final (fuzz_scram checks the mechanism
		 * itself; here the driver around it). */
		struct ma_mech_ops fixed = ma_mech_scram_sha_256;
		fixed.start = fixed_start;
		struct ma_sasl_creds pencil = { .authcid = "user", .password = "pencil", .password_len = 6 };
		enum ma_sasl_reply last = MA_REPLY_CHALLENGE;
		enum ma_err rc = ma_sasl_exchange(&proto, &fixed, &pencil, &log, &last);
		if (rc == MA_OK) {
			CHECK(!s.failed && s.have_last && s.last == MA_REPLY_SUCCESS && s.payload);
			CHECK(last == MA_REPLY_SUCCESS);
		}
		CHECK(s.n_begun <= 1);
		goto out;
	}

	enum ma_mech used = MA_MECH_COUNT;
	enum ma_err rc = ma_sasl_authenticate(&proto, s.server_mechs, s.allowed, fallback,
	                                      &creds, &log, &used);
	/* Only what both sides allow, -PLUS only with channel binding, in
	 * preference order; then at most PLAIN once as the fallback. */
	for (unsigned i = 0; i < s.n_begun; i++) {
		int m = s.begun[i];
		CHECK(m < MA_MECH_IMAP_LOGIN);
		CHECK((s.server_mechs & s.allowed & MA_MECH_BIT((unsigned)m)) != 0);
		CHECK(!is_plus(m) || s.have_cb);
		if (i > 0 && m <= s.begun[i - 1]) {
			/* only the SPEC 3 fallback goes back, to PLAIN, once, after a
			 * SCRAM or CRAM-MD5 attempt, when allowed */
			CHECK(fallback && m == MA_MECH_PLAIN && i == s.n_begun - 1 &&
			      s.begun[i - 1] <= MA_MECH_CRAM_MD5);
		}
	}
	if (rc == MA_OK) {
		CHECK(!s.failed);
		CHECK(s.have_last && s.last == MA_REPLY_SUCCESS);
		CHECK(s.n_begun > 0 && (int)used == s.begun[s.n_begun - 1]);
		/* A random client nonce: no scripted server can prove itself. */
		CHECK(used == MA_MECH_PLAIN || used == MA_MECH_LOGIN || used == MA_MECH_CRAM_MD5);
		CHECK(s.payload);
		/* never a success without the credentials having gone out */
		if (used == MA_MECH_PLAIN)
			CHECK(s.sent_plain);
		if (used == MA_MECH_LOGIN)
			CHECK(s.sent_password);
	}
	/* A policy refusal ends everything: nothing is begun after it (no
	 * PLAIN fallback, no next mechanism) and the verdict is MA_POLICY. */
	if (s.policy_replies > 0) {
		CHECK(rc == MA_POLICY);
		CHECK(s.policy_replies == 1 && s.policy_at == s.n_begun);
	}
	if (rc == MA_POLICY)
		CHECK(s.policy_replies > 0 || s.weak_replies > 0);
	if (s.failed)
		CHECK(rc != MA_OK);
	if (s.n_begun == 0)
		CHECK(rc != MA_OK);
out:
	free(s.text);
	return 0;
}
