/*
 * fuzz_alloc.c - fail closed under memory pressure.  The configuration
 * parser and the SASL exchanges run with one allocation (or every one from
 * some point on) failing, chosen by the input, as pam-u2f's fuzzers do with
 * -Wl,--wrap=malloc... (fault.c).  OpenSSL's allocations can be failed too.
 *
 * Input: four header bytes, then the body.
 *   byte 0  what runs: 0 ma_config_parse(body); 1 PLAIN, 2 LOGIN,
 *           3 CRAM-MD5, 4 SCRAM-SHA-256 (RFC 7677 client nonce) through
 *           ma_sasl_exchange; 5 the whole policy ma_sasl_authenticate
 *   byte 1  the allocation that fails (1-based); 0: a clean run, then
 *           each allocation of it failing in turn
 *   byte 2  bit 0: every allocation after it fails too; bit 1: OpenSSL's
 *           allocations count as well (not with 5: a missing MD5 there
 *           legitimately moves on to the next mechanism); bit 2: the
 *           server allows initial responses
 *   byte 3  the adapter call that fails like a broken connection (0: none)
 * For 1-5 the body is one server reply per line: a kind letter ('C'
 * challenge, 'S' success, 'R' rejected, 'U' unsupported, 'T' temporary)
 * and the raw challenge, which the adapter base64-encodes.
 *
 * Invariants: when one of our allocations failed (or the connection
 * broke), the call does not return MA_OK; nothing leaks (LSan) and nothing
 * crashes, also when OpenSSL's allocations fail.
 */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "common.h"
#include "config.h"
#include "fault.h"
#include "sasl.h"
#include "sasl_scram.h"
#include "secret.h"

#define MAX_REPLIES 16
#define SCRAM_NONCE "rOprNGfwEbeRWgbNEkqO"

struct reply {
	enum ma_sasl_reply kind;
	char *b64;
};

struct script {
	struct reply r[MAX_REPLIES];
	unsigned n, next;
	unsigned calls, fail_at;
	bool failed;
};

/* The adapter allocates nothing: the script was prepared before arming. */
static enum ma_err s_begin(void *ctx, const char *mech, const char *ir)
{
	struct script *s = ctx;
	(void)mech;
	(void)ir;
	if (++s->calls == s->fail_at) {
		s->failed = true;
		return MA_UNAVAILABLE;
	}
	return MA_OK;
}

static enum ma_err s_reply(void *ctx, enum ma_sasl_reply *kind, const char **text, size_t *len)
{
	struct script *s = ctx;
	if (++s->calls == s->fail_at) {
		s->failed = true;
		return MA_UNAVAILABLE;
	}
	if (s->next >= s->n)
		return MA_UNAVAILABLE;        /* the server closed the connection */
	*kind = s->r[s->next].kind;
	*text = s->r[s->next].b64;
	*len = strlen(*text);
	s->next++;
	return MA_OK;
}

static enum ma_err s_respond(void *ctx, const char *b64)
{
	return s_begin(ctx, "", b64);
}

static enum ma_err fixed_start(const struct ma_sasl_creds *c, void **state)
{
	return ma_scram_start_with_nonce(&ma_mech_scram_sha_256, c, SCRAM_NONCE, state);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fault_init();
	return 0;
}

/* Returns false when the script is too expensive (big SCRAM counts). */
static bool load_script(struct script *s, const uint8_t *p, size_t n)
{
	struct fuzz_in in = { p, n };
	const uint8_t *line;
	size_t len;
	while (s->n < MAX_REPLIES && fuzz_next(&in, &line, &len)) {
		uint8_t k = len > 0 ? line[0] : 'S';
		struct reply *r = &s->r[s->n++];
		r->kind = k == 'C' ? MA_REPLY_CHALLENGE : k == 'S' ? MA_REPLY_SUCCESS
		        : k == 'R' ? MA_REPLY_REJECTED : k == 'U' ? MA_REPLY_UNSUPPORTED
		        : k == 'T' ? MA_REPLY_TEMPFAIL : k == 'P' ? MA_REPLY_POLICY
		        : k == 'W' ? MA_REPLY_WEAK : (enum ma_sasl_reply)(k % 7);
		const uint8_t *raw = len > 0 ? line + 1 : line;
		size_t rawlen = len > 0 ? len - 1 : 0;
		long iter = fuzz_scram_iterations(raw, rawlen);
		if (iter > FUZZ_SCRAM_MAX_ITER && iter <= 1000000)
			return false;
		r->b64 = ma_base64_encode(raw, rawlen, NULL);
		CHECK(r->b64 != NULL);
	}
	return true;
}

struct run {
	bool skipped;               /* too expensive */
	enum ma_err rc;
	struct fault_stats st;
	bool io_failed;
};

static struct run run_once(unsigned mode, const struct fault_plan *plan, const uint8_t *data,
                           size_t size)
{
	struct run r = { .skipped = false, .rc = MA_INTERNAL };
	const uint8_t *body = data + 4;
	size_t blen = size - 4;

	if (mode == 0) {
		struct ma_config *cfg = NULL;
		char err[256];
		fault_arm(plan);
		r.rc = ma_config_parse((const char *)body, blen, "fuzz.conf", &cfg, err, sizeof(err));
		r.st = fault_disarm();
		CHECK((r.rc == MA_OK) == (cfg != NULL));
		ma_config_free(&cfg);
		return r;
	}
	static const struct ma_mech_ops *const mechs[] = {
		&ma_mech_plain, &ma_mech_login, &ma_mech_cram_md5,
	};
	struct script s;
	memset(&s, 0, sizeof(s));
	s.fail_at = data[3];
	if (load_script(&s, body, blen)) {
		struct ma_sasl_proto proto = {
			.ctx = &s, .initial_response = (data[2] & 4) != 0,
			.begin = s_begin, .reply = s_reply, .respond = s_respond,
		};
		struct ma_sasl_creds creds = { .authcid = "user", .password = "pencil", .password_len = 6 };
		struct ma_mech_ops fixed = ma_mech_scram_sha_256;
		fixed.start = fixed_start;
		enum ma_sasl_reply last;
		enum ma_mech used;

		fault_arm(plan);
		if (mode == 5)
			r.rc = ma_sasl_authenticate(&proto, (1u << MA_MECH_COUNT) - 1u,
			                            (1u << MA_MECH_COUNT) - 1u, true, &creds, NULL, &used);
		else
			r.rc = ma_sasl_exchange(&proto, mode == 4 ? &fixed : mechs[mode - 1], &creds,
			                        NULL, &last);
		r.st = fault_disarm();
		r.io_failed = s.failed;
	} else {
		r.skipped = true;
	}
	for (unsigned i = 0; i < s.n; i++)
		free(s.r[i].b64);
	return r;
}

/* The point of this target: a failure that prevented the work is never
 * reported as success.  Every allocation of ours is needed for the work;
 * OpenSSL recovers from some of its own (error queue, caches), so a failed
 * OpenSSL allocation only has to be survived. */
static void check_run(const struct run *r)
{
	if (r->st.alloc_failures > 0 || r->io_failed)
		CHECK(r->rc != MA_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	unsigned mode = data[0] % 6;
	struct fault_plan plan = {
		.alloc_fail_at = data[1],
		.alloc_fail_rest = data[2] & 1,
		.openssl = (data[2] & 2) && mode != 5,
	};
	struct run r = run_once(mode, &plan, data, size);
	check_run(&r);
	if (r.skipped || data[1] != 0)
		return 0;
	/* Byte 1 == 0: every allocation of the clean run fails in turn
	 * (systematic fault injection: a random index rarely hits the one
	 * allocation whose failure is mishandled). */
	unsigned n = r.st.allocs + r.st.ssl_allocs;
	for (unsigned k = 1; k <= n && k <= 256; k++) {
		plan.alloc_fail_at = k;
		struct run f = run_once(mode, &plan, data, size);
		check_run(&f);
	}
	return 0;
}
