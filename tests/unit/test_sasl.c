/*
 * test_sasl.c - the selection policy and the exchange driver of the SASL
 * engine, against a scripted protocol adapter (no sockets).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "sasl.h"
#include "unit.h"

/* A scripted server: each begin() consumes one script; each reply() the next
 * reply of the current script. */
struct script_reply { enum ma_sasl_reply kind; const char *text; };
struct fake {
	const struct script_reply *scripts[4];
	int script, pos;
	char sent[16][512];
	int nsent;
};

static void record(struct fake *f, const char *a, const char *b)
{
	if (f->nsent < 16)
		snprintf(f->sent[f->nsent++], sizeof(f->sent[0]), "%s%s%s", a, b ? " " : "", b ? b : "");
}

static enum ma_err f_begin(void *ctx, const char *mech, const char *ir)
{
	struct fake *f = ctx;
	record(f, mech, ir);
	f->script++;
	f->pos = 0;
	return MA_OK;
}

static enum ma_err f_reply(void *ctx, enum ma_sasl_reply *kind, const char **text, size_t *len)
{
	struct fake *f = ctx;
	const struct script_reply *r = &f->scripts[f->script - 1][f->pos++];
	*kind = r->kind;
	*text = r->text ? r->text : "";
	*len = strlen(*text);
	return MA_OK;
}

static enum ma_err f_respond(void *ctx, const char *b64)
{
	record(ctx, "R", b64);
	return MA_OK;
}

static const struct ma_sasl_creds creds = {
	.authcid = "alice", .password = "secret", .password_len = 6,
};

/* The same with a channel binding, as on a TLS session. */
static const unsigned char cbdata[32] = "0123456789abcdef0123456789abcdef";
static const struct ma_sasl_creds creds_cb = {
	.authcid = "alice", .password = "secret", .password_len = 6,
	.cb_type = "tls-exporter", .cb_data = cbdata, .cb_len = sizeof(cbdata),
};

/* The decoded initial response of sent line I ("MECH base64"), in OUT. */
static void sent_ir(const struct fake *f, int i, char *out, size_t cap)
{
	const char *sp = strchr(f->sent[i], ' ');
	unsigned char *raw = NULL;
	size_t len = 0;
	ck_assert_ptr_nonnull(sp);
	ck_assert_int_eq(ma_base64_decode(sp + 1, strlen(sp + 1), &raw, &len), 0);
	ck_assert_uint_lt(len, cap);
	memcpy(out, raw, len);
	out[len] = '\0';
	free(raw);
}

static struct ma_sasl_proto proto_for(struct fake *f, bool ir)
{
	struct ma_sasl_proto p = {
		.ctx = f, .initial_response = ir,
		.begin = f_begin, .reply = f_reply, .respond = f_respond,
	};
	return p;
}

START_TEST(candidates_follow_spec_order)
{
	enum ma_mech out[MA_MECH_COUNT];
	unsigned all = (1u << MA_MECH_COUNT) - 1u;
	size_t n = ma_sasl_candidates(all, MA_MECH_DEFAULT_SET, true, out);
	ck_assert_uint_eq(n, 6);
	ck_assert_int_eq(out[0], MA_MECH_SCRAM_SHA_256_PLUS);
	ck_assert_int_eq(out[1], MA_MECH_SCRAM_SHA_256);
	ck_assert_int_eq(out[2], MA_MECH_SCRAM_SHA_1_PLUS);
	ck_assert_int_eq(out[3], MA_MECH_SCRAM_SHA_1);
	ck_assert_int_eq(out[4], MA_MECH_PLAIN);
	ck_assert_int_eq(out[5], MA_MECH_LOGIN);
	/* No channel binding: no -PLUS; CRAM-MD5 only when configured. */
	n = ma_sasl_candidates(all, all, false, out);
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(out[0], MA_MECH_SCRAM_SHA_256);
	ck_assert_int_eq(out[2], MA_MECH_CRAM_MD5);
	/* Intersection with what the server advertises. */
	n = ma_sasl_candidates(MA_MECH_BIT(MA_MECH_LOGIN), MA_MECH_DEFAULT_SET, true, out);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(out[0], MA_MECH_LOGIN);
	n = ma_sasl_candidates(MA_MECH_BIT(MA_MECH_LOGIN), MA_MECH_BIT(MA_MECH_PLAIN), true, out);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(token_matching_is_exact)
{
	ck_assert_int_eq(ma_sasl_mech_from_token("plain", 5), MA_MECH_PLAIN);
	ck_assert_int_eq(ma_sasl_mech_from_token("XPLAIN", 6), -1);
	ck_assert_int_eq(ma_sasl_mech_from_token("PLAINX", 6), -1);
	ck_assert_int_eq(ma_sasl_mech_from_token("PLAIN", 4), -1);
	ck_assert_int_eq(ma_sasl_mech_from_token("SCRAM-SHA-256-PLUS", 18), MA_MECH_SCRAM_SHA_256_PLUS);
	ck_assert_int_eq(ma_sasl_mech_from_token("IMAP-LOGIN", 10), -1);
}
END_TEST

START_TEST(plain_with_initial_response)
{
	static const struct script_reply ok[] = { { MA_REPLY_SUCCESS, NULL } };
	struct fake f = { .scripts = { ok } };
	struct ma_sasl_proto p = proto_for(&f, true);
	enum ma_mech used;
	ck_assert_int_eq(ma_sasl_authenticate(&p, MA_MECH_BIT(MA_MECH_PLAIN), MA_MECH_DEFAULT_SET,
	                                      true, &creds, NULL, &used), MA_OK);
	ck_assert_int_eq(used, MA_MECH_PLAIN);
	ck_assert_int_eq(f.nsent, 1);
	ck_assert_str_eq(f.sent[0], "PLAIN AGFsaWNlAHNlY3JldA==");   /* \0alice\0secret */
}
END_TEST

START_TEST(plain_without_initial_response)
{
	static const struct script_reply s[] = { { MA_REPLY_CHALLENGE, "" }, { MA_REPLY_SUCCESS, NULL } };
	struct fake f = { .scripts = { s } };
	struct ma_sasl_proto p = proto_for(&f, false);
	enum ma_mech used;
	ck_assert_int_eq(ma_sasl_authenticate(&p, MA_MECH_BIT(MA_MECH_PLAIN), MA_MECH_DEFAULT_SET,
	                                      true, &creds, NULL, &used), MA_OK);
	ck_assert_str_eq(f.sent[0], "PLAIN");
	ck_assert_str_eq(f.sent[1], "R AGFsaWNlAHNlY3JldA==");
}
END_TEST

START_TEST(success_before_response_is_not_success)
{
	/* A server that says OK to a bare "AUTHENTICATE PLAIN" proved nothing. */
	static const struct script_reply s[] = { { MA_REPLY_SUCCESS, NULL } };
	struct fake f = { .scripts = { s } };
	struct ma_sasl_proto p = proto_for(&f, false);
	enum ma_mech used;
	ck_assert_int_eq(ma_sasl_authenticate(&p, MA_MECH_BIT(MA_MECH_PLAIN), MA_MECH_DEFAULT_SET,
	                                      true, &creds, NULL, &used), MA_PROTOCOL);
	static const struct script_reply l[] = { { MA_REPLY_CHALLENGE, "VXNlcm5hbWU6" }, { MA_REPLY_SUCCESS, NULL } };
	struct fake g = { .scripts = { l } };
	p = proto_for(&g, true);
	ck_assert_int_eq(ma_sasl_authenticate(&p, MA_MECH_BIT(MA_MECH_LOGIN), MA_MECH_DEFAULT_SET,
	                                      true, &creds, NULL, &used), MA_PROTOCOL);
}
END_TEST

START_TEST(login_ignores_prompt_text)
{
	static const struct script_reply s[] = {
		{ MA_REPLY_CHALLENGE, "SGVsbG8/" }, { MA_REPLY_CHALLENGE, "" }, { MA_REPLY_SUCCESS, NULL },
	};
	struct fake f = { .scripts = { s } };
	struct ma_sasl_proto p = proto_for(&f, true);
	enum ma_mech used;
	ck_assert_int_eq(ma_sasl_authenticate(&p, MA_MECH_BIT(MA_MECH_LOGIN), MA_MECH_DEFAULT_SET,
	                                      true, &creds, NULL, &used), MA_OK);
	ck_assert_str_eq(f.sent[0], "LOGIN");
	ck_assert_str_eq(f.sent[1], "R YWxpY2U=");
	ck_assert_str_eq(f.sent[2], "R c2VjcmV0");
}
END_TEST

START_TEST(login_third_challenge_aborts)
{
	static const struct script_reply s[] = {
		{ MA_REPLY_CHALLENGE, "" }, { MA_REPLY_CHALLENGE, "" }, { MA_REPLY_CHALLENGE, "" },
	};
	struct fake f = { .scripts = { s } };
	struct ma_sasl_proto p = proto_for(&f, true);
	enum ma_mech used;
	ck_assert_int_eq(ma_sasl_authenticate(&p, MA_MECH_BIT(MA_MECH_LOGIN), MA_MECH_DEFAULT_SET,
	                                      true, &creds, NULL, &used), MA_PROTOCOL);
	ck_assert_str_eq(f.sent[f.nsent - 1], "R *");
}
END_TEST

START_TEST(invalid_base64_challenge_is_cancelled)
{
	static const struct script_reply s[] = { { MA_REPLY_CHALLENGE, "not base64!" } };
	struct fake f = { .scripts = { s } };
	struct ma_sasl_proto p = proto_for(&f, true);
	enum ma_mech used;
	ck_assert_int_eq(ma_sasl_authenticate(&p, MA_MECH_BIT(MA_MECH_LOGIN), MA_MECH_DEFAULT_SET,
	                                      true, &creds, NULL, &used), MA_PROTOCOL);
	ck_assert_int_eq(f.nsent, 2);
	ck_assert_str_eq(f.sent[1], "R *");
}
END_TEST

START_TEST(unsupported_moves_on_rejection_stops)
{
	static const struct script_reply unsup[] = { { MA_REPLY_UNSUPPORTED, NULL } };
	static const struct script_reply rej[] = { { MA_REPLY_REJECTED, NULL } };
	struct fake f = { .scripts = { unsup, rej } };
	struct ma_sasl_proto p = proto_for(&f, true);
	enum ma_mech used;
	unsigned server = MA_MECH_BIT(MA_MECH_PLAIN) | MA_MECH_BIT(MA_MECH_LOGIN);
	ck_assert_int_eq(ma_sasl_authenticate(&p, server, MA_MECH_DEFAULT_SET, true, &creds,
	                                      NULL, &used), MA_AUTH_FAILED);
	ck_assert_int_eq(used, MA_MECH_LOGIN);
	ck_assert_int_eq(f.script, 2);       /* PLAIN unsupported, LOGIN rejected, no third */
}
END_TEST

START_TEST(plain_rejection_does_not_fall_back)
{
	static const struct script_reply rej[] = { { MA_REPLY_REJECTED, NULL } };
	struct fake f = { .scripts = { rej, rej } };
	struct ma_sasl_proto p = proto_for(&f, true);
	enum ma_mech used;
	unsigned server = MA_MECH_BIT(MA_MECH_PLAIN) | MA_MECH_BIT(MA_MECH_LOGIN);
	ck_assert_int_eq(ma_sasl_authenticate(&p, server, MA_MECH_DEFAULT_SET, true, &creds,
	                                      NULL, &used), MA_AUTH_FAILED);
	ck_assert_int_eq(f.script, 1);       /* exactly one credential attempt */
}
END_TEST

START_TEST(tempfail_stops)
{
	static const struct script_reply t[] = { { MA_REPLY_TEMPFAIL, NULL } };
	struct fake f = { .scripts = { t, t } };
	struct ma_sasl_proto p = proto_for(&f, true);
	enum ma_mech used;
	unsigned server = MA_MECH_BIT(MA_MECH_PLAIN) | MA_MECH_BIT(MA_MECH_LOGIN);
	ck_assert_int_eq(ma_sasl_authenticate(&p, server, MA_MECH_DEFAULT_SET, true, &creds,
	                                      NULL, &used), MA_UNAVAILABLE);
	ck_assert_int_eq(f.script, 1);
}
END_TEST

START_TEST(nothing_in_common)
{
	struct fake f = { .scripts = { NULL } };
	struct ma_sasl_proto p = proto_for(&f, true);
	enum ma_mech used;
	ck_assert_int_eq(ma_sasl_authenticate(&p, 0, MA_MECH_DEFAULT_SET, true, &creds, NULL, &used),
	                 MA_NO_MECH);
	ck_assert_int_eq(f.nsent, 0);
}
END_TEST

#define SRV_PLUS_256 (MA_MECH_BIT(MA_MECH_SCRAM_SHA_256_PLUS) | \
                      MA_MECH_BIT(MA_MECH_SCRAM_SHA_256) | MA_MECH_BIT(MA_MECH_PLAIN))

/*
 * The unbound retry: SCRAM-SHA-256-PLUS refused with a bare rejection (no
 * e=, no server signature: what Cyrus answers to p=tls-exporter) is retried
 * once with SCRAM-SHA-256 and GS2 flag "n" (the server did advertise -PLUS:
 * "y" would be read as a downgrade), and only then, with the fallback on,
 * PLAIN.  The retry is not the fallback: it happens with the fallback off.
 */
START_TEST(plus_bare_rejection_retries_unbound)
{
	static const struct script_reply rej[] = { { MA_REPLY_REJECTED, NULL } };
	static const struct script_reply ok[] = { { MA_REPLY_SUCCESS, NULL } };
	bool fallback = _i == 1;
	struct fake f = { .scripts = { rej, rej, ok } };
	struct ma_sasl_proto p = proto_for(&f, true);
	struct ma_sasl_policy pol = { .allowed = MA_MECH_DEFAULT_SET, .fallback = fallback,
	                              .first = -1 };
	enum ma_mech used;
	char ir[256];
	enum ma_err rc = ma_sasl_authenticate_policy(&p, SRV_PLUS_256, &pol, &creds_cb, NULL, &used);
	ck_assert_int_eq(f.script, fallback ? 3 : 2);
	ck_assert_int_eq(rc, fallback ? MA_OK : MA_AUTH_FAILED);
	ck_assert_int_eq(used, fallback ? MA_MECH_PLAIN : MA_MECH_SCRAM_SHA_256);
	ck_assert(pol.unbound_retry);
	ck_assert(pol.fell_back == fallback);
	ck_assert_str_eq(strtok(strcpy((char[512]){0}, f.sent[0]), " "), "SCRAM-SHA-256-PLUS");
	sent_ir(&f, 0, ir, sizeof(ir));
	ck_assert_msg(strncmp(ir, "p=tls-exporter,,n=alice,r=", 26) == 0, "%s", ir);
	ck_assert_str_eq(strtok(strcpy((char[512]){0}, f.sent[1]), " "), "SCRAM-SHA-256");
	sent_ir(&f, 1, ir, sizeof(ir));
	ck_assert_msg(strncmp(ir, "n,,n=alice,r=", 13) == 0, "%s", ir);
	if (fallback)
		ck_assert_str_eq(f.sent[2], "PLAIN AGFsaWNlAHNlY3JldA==");
}
END_TEST

/* SHA-1 pairs with SHA-1: SCRAM-SHA-1-PLUS is retried as SCRAM-SHA-1. */
START_TEST(plus_sha1_retries_sha1)
{
	static const struct script_reply rej[] = { { MA_REPLY_REJECTED, NULL } };
	static const struct script_reply ok[] = { { MA_REPLY_SUCCESS, NULL } };
	struct fake f = { .scripts = { rej, ok } };
	struct ma_sasl_proto p = proto_for(&f, true);
	struct ma_sasl_policy pol = { .allowed = MA_MECH_DEFAULT_SET, .fallback = false,
	                              .first = -1 };
	enum ma_mech used;
	unsigned server = MA_MECH_BIT(MA_MECH_SCRAM_SHA_1_PLUS) | MA_MECH_BIT(MA_MECH_SCRAM_SHA_1);
	/* The server says OK before SCRAM ends: no v=, so MA_PROTOCOL, but
	 * what was tried is what this test is about. */
	ma_sasl_authenticate_policy(&p, server, &pol, &creds_cb, NULL, &used);
	ck_assert_int_eq(f.script, 2);
	ck_assert(pol.unbound_retry);
	ck_assert_int_eq(used, MA_MECH_SCRAM_SHA_1);
	ck_assert_str_eq(strtok(strcpy((char[512]){0}, f.sent[1]), " "), "SCRAM-SHA-1");
}
END_TEST

/* No retry when the same-hash SCRAM is not advertised, or not allowed, or
 * when -PLUS is the mechanism that worked for this user before (FIRST): then
 * it is the one fallback to PLAIN, or nothing. */
START_TEST(no_unbound_retry_without_the_plain_scram)
{
	static const struct script_reply rej[] = { { MA_REPLY_REJECTED, NULL } };
	static const struct script_reply ok[] = { { MA_REPLY_SUCCESS, NULL } };
	struct fake f = { .scripts = { rej, ok } };
	struct ma_sasl_proto p = proto_for(&f, true);
	struct ma_sasl_policy pol = { .allowed = MA_MECH_DEFAULT_SET, .fallback = true, .first = -1 };
	enum ma_mech used;
	unsigned server = MA_MECH_BIT(MA_MECH_SCRAM_SHA_256_PLUS) | MA_MECH_BIT(MA_MECH_PLAIN);
	ck_assert_int_eq(ma_sasl_authenticate_policy(&p, server, &pol, &creds_cb, NULL, &used), MA_OK);
	ck_assert_int_eq(used, MA_MECH_PLAIN);
	ck_assert(!pol.unbound_retry && pol.fell_back);

	struct fake g = { .scripts = { rej, ok } };
	p = proto_for(&g, true);
	pol.allowed = MA_MECH_BIT(MA_MECH_SCRAM_SHA_256_PLUS) | MA_MECH_BIT(MA_MECH_PLAIN);
	ck_assert_int_eq(ma_sasl_authenticate_policy(&p, SRV_PLUS_256, &pol, &creds_cb, NULL, &used),
	                 MA_OK);
	ck_assert_int_eq(used, MA_MECH_PLAIN);
	ck_assert(!pol.unbound_retry);

	struct fake h = { .scripts = { rej, ok } };
	p = proto_for(&h, true);
	pol = (struct ma_sasl_policy){ .allowed = MA_MECH_DEFAULT_SET, .fallback = false,
	                               .first = MA_MECH_SCRAM_SHA_256_PLUS };
	ck_assert_int_eq(ma_sasl_authenticate_policy(&p, SRV_PLUS_256, &pol, &creds_cb, NULL, &used),
	                 MA_AUTH_FAILED);
	ck_assert_int_eq(h.script, 1);
	ck_assert(!pol.unbound_retry);
}
END_TEST

/* Unsupported (BAD, a NO before any payload) is not a refusal: the next
 * candidate, SCRAM-SHA-256, comes in its turn; no retry flagged. */
START_TEST(plus_unsupported_is_not_a_retry)
{
	static const struct script_reply unsup[] = { { MA_REPLY_UNSUPPORTED, NULL } };
	static const struct script_reply rej[] = { { MA_REPLY_REJECTED, NULL } };
	struct fake f = { .scripts = { unsup, rej } };
	struct ma_sasl_proto p = proto_for(&f, true);
	struct ma_sasl_policy pol = { .allowed = MA_MECH_DEFAULT_SET, .fallback = false, .first = -1 };
	enum ma_mech used;
	ck_assert_int_eq(ma_sasl_authenticate_policy(&p, SRV_PLUS_256, &pol, &creds_cb, NULL, &used),
	                 MA_AUTH_FAILED);
	ck_assert_int_eq(f.script, 2);
	ck_assert_int_eq(used, MA_MECH_SCRAM_SHA_256);
	ck_assert(!pol.unbound_retry);
}
END_TEST

static Suite *sasl_suite(void)
{
	Suite *s = suite_create("sasl");
	TCase *tc = tcase_create("engine");
	tcase_add_test(tc, candidates_follow_spec_order);
	tcase_add_test(tc, token_matching_is_exact);
	tcase_add_test(tc, plain_with_initial_response);
	tcase_add_test(tc, plain_without_initial_response);
	tcase_add_test(tc, success_before_response_is_not_success);
	tcase_add_test(tc, login_ignores_prompt_text);
	tcase_add_test(tc, login_third_challenge_aborts);
	tcase_add_test(tc, invalid_base64_challenge_is_cancelled);
	tcase_add_test(tc, unsupported_moves_on_rejection_stops);
	tcase_add_test(tc, plain_rejection_does_not_fall_back);
	tcase_add_test(tc, tempfail_stops);
	tcase_add_test(tc, nothing_in_common);
	tcase_add_loop_test(tc, plus_bare_rejection_retries_unbound, 0, 2);
	tcase_add_test(tc, plus_sha1_retries_sha1);
	tcase_add_test(tc, no_unbound_retry_without_the_plain_scram);
	tcase_add_test(tc, plus_unsupported_is_not_a_retry);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ma_unit_run(sasl_suite());
}
