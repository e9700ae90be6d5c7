/*
 * sasl.c - the SASL engine: mechanism table, the selection policy of
 * SPEC section 3 (in one place), and the exchange driver that runs a
 * mechanism over a protocol adapter (struct ma_sasl_proto).
 */
#include "sasl.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "base64.h"
#include "log.h"
#include "secret.h"

/* Indexed by enum ma_mech; MA_MECH_IMAP_LOGIN is a command, not SASL. */
static const struct ma_mech_ops *const mech_table[MA_MECH_COUNT] = {
	[MA_MECH_SCRAM_SHA_256_PLUS] = &ma_mech_scram_sha_256_plus,
	[MA_MECH_SCRAM_SHA_256] = &ma_mech_scram_sha_256,
	[MA_MECH_SCRAM_SHA_1_PLUS] = &ma_mech_scram_sha_1_plus,
	[MA_MECH_SCRAM_SHA_1] = &ma_mech_scram_sha_1,
	[MA_MECH_CRAM_MD5] = &ma_mech_cram_md5,
	[MA_MECH_PLAIN] = &ma_mech_plain,
	[MA_MECH_LOGIN] = &ma_mech_login,
	[MA_MECH_IMAP_LOGIN] = NULL,
};

/* A server that keeps challenging is hostile: SCRAM needs 2 rounds. */
#define MAX_ROUNDS 4

const struct ma_mech_ops *ma_mech_ops_get(enum ma_mech m)
{
	if ((unsigned)m >= MA_MECH_COUNT)
		return NULL;
	return mech_table[m];
}

int ma_sasl_mech_from_token(const char *tok, size_t len)
{
	for (int m = 0; m < MA_MECH_COUNT; m++) {
		if (mech_table[m] == NULL)
			continue;
		const char *name = mech_table[m]->name;
		/* Exact token match: "XPLAIN" or "PLAIN2" are not PLAIN. */
		if (strlen(name) == len && strncasecmp(name, tok, len) == 0)
			return m;
	}
	return -1;
}

static bool is_plus(enum ma_mech m)
{
	return m == MA_MECH_SCRAM_SHA_256_PLUS || m == MA_MECH_SCRAM_SHA_1_PLUS;
}

static bool may_fall_back(enum ma_mech m)
{
	return m <= MA_MECH_CRAM_MD5;   /* SCRAM family and CRAM-MD5 */
}

size_t ma_sasl_candidates(unsigned server_mechs, unsigned allowed, bool have_cb,
                          enum ma_mech out[MA_MECH_COUNT])
{
	size_t n = 0;
	/* The enum order is the preference order of SPEC section 3. */
	for (int m = 0; m < MA_MECH_COUNT; m++) {
		if (mech_table[m] == NULL)
			continue;
		if (!(server_mechs & allowed & MA_MECH_BIT(m)))
			continue;
		if (is_plus((enum ma_mech)m) && !have_cb)
			continue;
		out[n++] = (enum ma_mech)m;
	}
	return n;
}

/* Base64 of a response for the wire; "=" stands for an empty initial
 * response (RFC 4959 section 3, RFC 4954 section 4). */
static char *encode_response(const unsigned char *raw, size_t len, bool initial)
{
	if (len == 0 && initial)
		return strdup("=");
	return ma_base64_encode(raw, len, NULL);
}

/*
 * One exchange; *server_proved (may be NULL) says whether a mechanism with
 * proves_server completed, i.e. the server proved it knows the password,
 * whatever its verdict was.
 */
static enum ma_err exchange(const struct ma_sasl_proto *proto,
                            const struct ma_mech_ops *m,
                            const struct ma_sasl_creds *c,
                            const struct ma_log *log,
                            enum ma_sasl_reply *last, bool *server_proved)
{
	enum ma_err rc = MA_INTERNAL;
	void *state = NULL;
	unsigned char *raw = NULL, *challenge = NULL;
	size_t rawlen = 0, challenge_len = 0;
	char *b64 = NULL;
	bool need_initial = m->client_first;
	int rounds = 0;

	*last = MA_REPLY_UNSUPPORTED;
	if (server_proved != NULL)
		*server_proved = false;
	rc = m->start(c, &state);
	if (rc != MA_OK)
		goto out;
	if (m->client_first && proto->initial_response) {
		rc = m->step(state, NULL, 0, &raw, &rawlen);
		if (rc != MA_OK)
			goto out;
		b64 = encode_response(raw, rawlen, true);
		if (b64 == NULL) {
			rc = MA_NOMEM;
			goto out;
		}
		need_initial = false;
	}
	rc = proto->begin(proto->ctx, m->name, b64);
	if (rc != MA_OK)
		goto out;

	for (;;) {
		enum ma_sasl_reply kind;
		const char *text = NULL;
		size_t len = 0;

		ma_strfreezero(b64);
		b64 = NULL;
		ma_freezero(raw, rawlen);
		raw = NULL;
		ma_freezero(challenge, challenge_len + 1);
		challenge = NULL;

		rc = proto->reply(proto->ctx, &kind, &text, &len);
		if (rc != MA_OK)
			goto out;
		*last = kind;
		switch (kind) {
		case MA_REPLY_SUCCESS:
			/* A success before the mechanism ran to its end proves nothing
			 * (SCRAM without v=): finish() decides. */
			rc = need_initial ? MA_PROTOCOL : m->finish(state);
			if (rc != MA_OK)
				ma_log(log, LOG_WARNING, "%s: server reported success without "
				       "completing the mechanism", m->name);
			goto out;
		case MA_REPLY_REJECTED:
			rc = MA_AUTH_FAILED;
			if (server_proved != NULL && m->proves_server)
				*server_proved = m->finish(state) == MA_OK;
			goto out;
		case MA_REPLY_UNSUPPORTED:
			rc = MA_NO_MECH;
			goto out;
		case MA_REPLY_TEMPFAIL:
			rc = MA_UNAVAILABLE;
			goto out;
		case MA_REPLY_POLICY:
			rc = MA_POLICY;
			goto out;
		case MA_REPLY_WEAK:
			rc = MA_NO_MECH;      /* *last tells the policy why */
			goto out;
		case MA_REPLY_CHALLENGE:
			break;
		}
		if (++rounds > MAX_ROUNDS) {
			rc = MA_PROTOCOL;
			goto cancel;
		}
		if (ma_base64_decode(text, len, &challenge, &challenge_len) != 0) {
			/* SPEC/RFC 4954 4: a challenge that is not valid base64 is
			 * answered with "*" and the attempt ends. */
			ma_log(log, LOG_WARNING, "%s: server challenge is not valid base64", m->name);
			rc = MA_PROTOCOL;
			goto cancel;
		}
		if (need_initial) {
			/* RFC 4422 5: without an initial response the server sends an
			 * empty challenge first; anything else is out of sequence. */
			need_initial = false;
			rc = challenge_len == 0 ? m->step(state, NULL, 0, &raw, &rawlen) : MA_PROTOCOL;
		} else {
			rc = m->step(state, challenge, challenge_len, &raw, &rawlen);
		}
		if (rc != MA_OK)
			goto cancel;
		b64 = encode_response(raw, rawlen, false);
		if (b64 == NULL) {
			rc = MA_NOMEM;
			goto out;
		}
		rc = proto->respond(proto->ctx, b64);
		if (rc != MA_OK)
			goto out;
	}

cancel:
	/* RFC 4422 3.5: the client aborts with "*".  After a protocol error the
	 * session is torn down, so the server's answer is not awaited; after an
	 * authentication error inside the mechanism (SCRAM e=) the answer is read,
	 * so that a PLAIN fallback on the same session starts in step. */
	if (proto->respond(proto->ctx, "*") == MA_OK && rc == MA_AUTH_FAILED) {
		enum ma_sasl_reply kind;
		const char *text;
		size_t len;
		if (proto->reply(proto->ctx, &kind, &text, &len) != MA_OK ||
		    kind == MA_REPLY_CHALLENGE)
			rc = MA_PROTOCOL;
		else if (kind == MA_REPLY_POLICY)
			rc = MA_POLICY;       /* the answer to "*" refuses the account */
	}
out:
	ma_strfreezero(b64);
	ma_freezero(raw, rawlen);
	ma_freezero(challenge, challenge_len + 1);
	if (state != NULL)
		m->free(state);
	return rc;
}

enum ma_err ma_sasl_exchange(const struct ma_sasl_proto *proto,
                             const struct ma_mech_ops *m,
                             const struct ma_sasl_creds *c,
                             const struct ma_log *log,
                             enum ma_sasl_reply *last)
{
	return exchange(proto, m, c, log, last, NULL);
}

enum ma_err ma_sasl_authenticate(const struct ma_sasl_proto *proto,
                                 unsigned server_mechs, unsigned allowed,
                                 bool fallback, const struct ma_sasl_creds *c,
                                 const struct ma_log *log, enum ma_mech *used)
{
	struct ma_sasl_policy policy = { .allowed = allowed, .fallback = fallback, .first = -1 };
	return ma_sasl_authenticate_policy(proto, server_mechs, &policy, c, log, used);
}

enum ma_err ma_sasl_authenticate_policy(const struct ma_sasl_proto *proto,
                                        unsigned server_mechs, struct ma_sasl_policy *policy,
                                        const struct ma_sasl_creds *c,
                                        const struct ma_log *log, enum ma_mech *used)
{
	enum ma_err rc = MA_NO_MECH;
	enum ma_mech cand[MA_MECH_COUNT];
	unsigned allowed = policy->allowed;
	bool fallback = policy->fallback;
	size_t n = ma_sasl_candidates(server_mechs, allowed, c->cb_type != NULL, cand);
	policy->fell_back = false;
	policy->unbound_retry = false;
	/* The broker's mechanism memory: a mechanism that is known to work for
	 * this user goes first (PLAIN for an account whose stored hash cannot
	 * do SCRAM), the others keep their order behind it. */
	for (size_t i = 1; policy->first >= 0 && i < n; i++) {
		if ((int)cand[i] != policy->first)
			continue;
		enum ma_mech m = cand[i];
		memmove(cand + 1, cand, i * sizeof(cand[0]));
		cand[0] = m;
		ma_debug(log, "mechanism %s first: it worked for this user before", mech_table[m]->name);
		break;
	}
	/* RFC 5802 section 6: GS2 flag "y" says "I support channel binding but
	 * you do not offer it".  When the server does advertise a -PLUS variant
	 * that the configuration excludes, "y" would make it fail the login as a
	 * downgrade: the non-PLUS mechanisms then send "n" (no binding). */
	struct ma_sasl_creds unbound = *c;
	unsigned plus = MA_MECH_BIT(MA_MECH_SCRAM_SHA_256_PLUS) | MA_MECH_BIT(MA_MECH_SCRAM_SHA_1_PLUS);
	if (server_mechs & plus)
		unbound.cb_type = NULL;
	/* RFC 4954 section 6: 534 5.7.9 "Authentication mechanism is too weak"
	 * and 432 4.7.12 "A password transition is needed" refuse a mechanism,
	 * not the password: the next one is tried; when none is accepted the
	 * server's policy is what failed, not the lack of a mechanism. */
	bool weak = false;

	for (size_t i = 0; i < n; i++) {
		enum ma_sasl_reply last;
		bool proved = false;
		enum ma_mech m = cand[i];
		*used = m;
		rc = exchange(proto, mech_table[m], is_plus(m) ? c : &unbound, log, &last, &proved);
		ma_debug(log, "mechanism %s: %s", mech_table[m]->name, ma_err_name(rc));
		if (rc == MA_NO_MECH) {
			weak = weak || last == MA_REPLY_WEAK;
			continue;     /* unsupported, or unusable for these credentials */
		}
		/* The unbound retry: a -PLUS attempt refused with a bare NO / 535
		 * (the server's verdict, not an e= server-error inside SCRAM, and no
		 * valid server signature) is retried once with the same-hash SCRAM
		 * without -PLUS, before PLAIN is considered, so that the password
		 * itself never goes to a server that can do SCRAM.  That is what a
		 * server that binds another way refuses with: Cyrus SASL binds
		 * tls-unique even on TLS 1.3 and answers p=tls-exporter with a plain
		 * NO.  It is not the one mechanism_fallback (still available after
		 * it), and mechanism_fallback = no does not turn it off.
		 * GS2 flag "n", not "y": RFC 5802 section 6 wants "y" when the
		 * client could bind but the server did not advertise -PLUS; this
		 * server did, and "y" would make it fail the login as a downgrade.
		 * "n" is no downgrade risk here: it follows the server's own
		 * refusal over a TLS session whose certificate we verified, so a
		 * man in the middle, who cannot terminate that session, cannot have
		 * caused it; and a stripped -PLUS advertisement (the attack "y"
		 * detects) would have left us never trying -PLUS at all. */
		if (rc == MA_AUTH_FAILED && is_plus(m) && last == MA_REPLY_REJECTED && !proved &&
		    policy->first != (int)m) {
			enum ma_mech bare = m == MA_MECH_SCRAM_SHA_256_PLUS ? MA_MECH_SCRAM_SHA_256
			                                                     : MA_MECH_SCRAM_SHA_1;
			if (server_mechs & allowed & MA_MECH_BIT(bare)) {
				ma_log(log, LOG_INFO, "%s (%s) refused without a SCRAM error; retrying "
				       "once with %s without channel binding", mech_table[m]->name,
				       c->cb_type, mech_table[bare]->name);
				policy->unbound_retry = true;
				m = bare;
				*used = m;
				rc = exchange(proto, mech_table[m], &unbound, log, &last, &proved);
				ma_debug(log, "mechanism %s: %s", mech_table[m]->name, ma_err_name(rc));
				if (rc == MA_NO_MECH)
					rc = MA_AUTH_FAILED;   /* -PLUS was refused all the same */
				/* The password was right: the binding was what the server
				 * refused.  Say what saves that failed attempt next time. */
				if (rc == MA_OK && c->cb_type != NULL &&
				    strcmp(c->cb_type, "tls-exporter") == 0)
					ma_log(log, LOG_NOTICE, "%s accepted after %s with tls-exporter was "
					       "refused: this server binds another way (Cyrus SASL binds "
					       "tls-unique even on TLS 1.3); set channel_binding = tls-unique "
					       "for it to use -PLUS without a failed authentication per login",
					       mech_table[m]->name, mech_table[cand[i]]->name);
			}
		}
		/* SPEC 3: a SCRAM/CRAM rejection may come from a server whose
		 * stored hash cannot do SCRAM; retry once with PLAIN, same session.
		 * Not when SCRAM ran to its end: a server that proved it knows the
		 * password (valid v=) and still says no has judged these very
		 * credentials, and sending the password itself changes nothing. */
		if (rc == MA_AUTH_FAILED && proved) {
			ma_log(log, LOG_INFO, "%s rejected by a server that proved it knows the "
			       "password; no PLAIN fallback", mech_table[m]->name);
		} else if (rc == MA_AUTH_FAILED && fallback && may_fall_back(m) &&
		           (server_mechs & allowed & MA_MECH_BIT(MA_MECH_PLAIN))) {
			ma_log(log, LOG_INFO, "%s rejected; falling back to PLAIN once",
			       mech_table[m]->name);
			*used = MA_MECH_PLAIN;
			policy->fell_back = true;
			rc = ma_sasl_exchange(proto, &ma_mech_plain, &unbound, log, &last);
			ma_debug(log, "mechanism PLAIN: %s", ma_err_name(rc));
			if (rc == MA_NO_MECH)
				rc = MA_AUTH_FAILED;
		}
		return rc;
	}
	return weak ? MA_POLICY : MA_NO_MECH;
}
