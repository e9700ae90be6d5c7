/*
 * test_scram.c - SCRAM (RFC 5802 / RFC 7677) and CRAM-MD5 (RFC 2195)
 * against the RFC examples, hostile server messages, and a small SCRAM
 * server computed here with OpenSSL.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base64.h"
#include "sasl.h"
#include "sasl_scram.h"
#include "secret.h"
#include "unit.h"

static const struct ma_sasl_creds pencil = {
	.authcid = "user", .password = "pencil", .password_len = 6,
};

/* RFC 5802 section 5 */
#define SHA1_NONCE "fyko+d2lbbFgONRv9qkxdawL"
#define SHA1_SFIRST "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
#define SHA1_CFINAL "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j," \
                    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
#define SHA1_SFINAL "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="
/* RFC 7677 section 3 */
#define SHA256_NONCE "rOprNGfwEbeRWgbNEkqO"
#define SHA256_SFIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
                      "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define SHA256_CFINAL "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
                      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define SHA256_SFINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/* One step with a C-string challenge (NULL: none); the response is
 * returned NUL-terminated for comparison (NULL when the step failed). */
static enum ma_err step(const struct ma_mech_ops *m, void *st, const char *in, char **resp)
{
	unsigned char *out = (unsigned char *)"sentinel";
	size_t outlen = 99;
	enum ma_err rc = m->step(st, (const unsigned char *)in, in ? strlen(in) : 0, &out, &outlen);
	*resp = NULL;
	if (rc == MA_OK) {
		ck_assert_ptr_nonnull(out);
		*resp = calloc(1, outlen + 1);
		ck_assert_ptr_nonnull(*resp);
		memcpy(*resp, out, outlen);
		ck_assert_uint_eq(strlen(*resp), outlen);
		ma_freezero(out, outlen);
	} else {
		ck_assert_ptr_null(out);
		ck_assert_uint_eq(outlen, 0);
	}
	return rc;
}

static void expect(const struct ma_mech_ops *m, void *st, const char *in, const char *want)
{
	char *resp = NULL;
	ck_assert_int_eq(step(m, st, in, &resp), MA_OK);
	ck_assert_str_eq(resp, want);
	free(resp);
}

static void expect_fail(const struct ma_mech_ops *m, void *st, const char *in, enum ma_err want)
{
	char *resp = NULL;
	ck_assert_int_eq(step(m, st, in, &resp), want);
	ck_assert_ptr_null(resp);
}

/* A SHA-1 state that has sent the RFC 5802 client-first message. */
static void *rfc5802_started(void)
{
	void *st = NULL;
	ck_assert_int_eq(ma_scram_start_with_nonce(&ma_mech_scram_sha_1, &pencil,
	                                           SHA1_NONCE, &st), MA_OK);
	expect(&ma_mech_scram_sha_1, st, NULL, "n,,n=user,r=" SHA1_NONCE);
	return st;
}

/* ... and has answered the RFC 5802 server-first message. */
static void *rfc5802_final(void)
{
	void *st = rfc5802_started();
	expect(&ma_mech_scram_sha_1, st, SHA1_SFIRST, SHA1_CFINAL);
	return st;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A server-first message that must be refused, quickly. */
static void refuse_server_first(const char *sfirst)
{
	void *st = rfc5802_started();
	double t0 = now_ms();
	expect_fail(&ma_mech_scram_sha_1, st, sfirst, MA_PROTOCOL);
	ck_assert_msg(now_ms() - t0 < 50.0, "slow refusal of %s", sfirst);
	ck_assert_int_ne(ma_mech_scram_sha_1.finish(st), MA_OK);
	expect_fail(&ma_mech_scram_sha_1, st, SHA1_SFIRST, MA_PROTOCOL);
	ma_mech_scram_sha_1.free(st);
}

START_TEST(rfc5802_sha1)
{
	void *st = rfc5802_final();
	ck_assert_int_ne(ma_mech_scram_sha_1.finish(st), MA_OK);
	expect(&ma_mech_scram_sha_1, st, SHA1_SFINAL, "");
	ck_assert_int_eq(ma_mech_scram_sha_1.finish(st), MA_OK);
	ma_mech_scram_sha_1.free(st);
}
END_TEST

START_TEST(rfc7677_sha256)
{
	void *st = NULL;
	const struct ma_mech_ops *m = &ma_mech_scram_sha_256;
	ck_assert_int_eq(ma_scram_start_with_nonce(m, &pencil, SHA256_NONCE, &st), MA_OK);
	expect(m, st, NULL, "n,,n=user,r=" SHA256_NONCE);
	expect(m, st, SHA256_SFIRST, SHA256_CFINAL);
	expect(m, st, SHA256_SFINAL, "");
	ck_assert_int_eq(m->finish(st), MA_OK);
	m->free(st);
}
END_TEST

START_TEST(ops_table)
{
	ck_assert_str_eq(ma_mech_scram_sha_256.name, "SCRAM-SHA-256");
	ck_assert_str_eq(ma_mech_scram_sha_256_plus.name, "SCRAM-SHA-256-PLUS");
	ck_assert_str_eq(ma_mech_scram_sha_1.name, "SCRAM-SHA-1");
	ck_assert_str_eq(ma_mech_scram_sha_1_plus.name, "SCRAM-SHA-1-PLUS");
	ck_assert_str_eq(ma_mech_cram_md5.name, "CRAM-MD5");
	ck_assert_int_eq(ma_mech_scram_sha_256.id, MA_MECH_SCRAM_SHA_256);
	ck_assert_int_eq(ma_mech_scram_sha_256_plus.id, MA_MECH_SCRAM_SHA_256_PLUS);
	ck_assert_int_eq(ma_mech_scram_sha_1.id, MA_MECH_SCRAM_SHA_1);
	ck_assert_int_eq(ma_mech_scram_sha_1_plus.id, MA_MECH_SCRAM_SHA_1_PLUS);
	ck_assert_int_eq(ma_mech_cram_md5.id, MA_MECH_CRAM_MD5);
	ck_assert(ma_mech_scram_sha_1_plus.client_first);
	ck_assert(!ma_mech_cram_md5.client_first);
	/* the hook refuses anything but the four SCRAM tables, and bad nonces */
	static const struct ma_mech_ops other = { .id = MA_MECH_SCRAM_SHA_1, .name = "X" };
	void *st = NULL;
	ck_assert_int_eq(ma_scram_start_with_nonce(&other, &pencil, "abc", &st), MA_INTERNAL);
	ck_assert_int_eq(ma_scram_start_with_nonce(&ma_mech_scram_sha_1, &pencil, "a,b", &st),
	                 MA_INTERNAL);
	ck_assert_ptr_null(st);
}
END_TEST

START_TEST(random_nonce)
{
	void *a = NULL, *b = NULL;
	char *ra = NULL, *rb = NULL;
	const struct ma_mech_ops *m = &ma_mech_scram_sha_256;
	ck_assert_int_eq(m->start(&pencil, &a), MA_OK);
	ck_assert_int_eq(m->start(&pencil, &b), MA_OK);
	ck_assert_int_eq(step(m, a, NULL, &ra), MA_OK);
	ck_assert_int_eq(step(m, b, NULL, &rb), MA_OK);
	/* "n,,n=user,r=" + base64 of 24 random bytes */
	ck_assert_uint_eq(strlen(ra), 12 + 32);
	ck_assert_int_eq(strncmp(ra, "n,,n=user,r=", 12), 0);
	ck_assert_ptr_null(strchr(ra + 12, ','));
	ck_assert_str_ne(ra, rb);
	free(ra);
	free(rb);
	m->free(a);
	m->free(b);
}
END_TEST

START_TEST(nonce_checks)
{
	/* not prefixed by ours */
	refuse_server_first("r=Xyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");
	refuse_server_first("r=3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");
	/* a prefix of ours */
	refuse_server_first("r=fyko+d2lbbFgONRv9qkxdaw,s=QSXCR+Q6sek8bf92,i=4096");
	/* equal to ours: the server added nothing */
	refuse_server_first("r=" SHA1_NONCE ",s=QSXCR+Q6sek8bf92,i=4096");
	/* not printable */
	refuse_server_first("r=" SHA1_NONCE "ab\x01,s=QSXCR+Q6sek8bf92,i=4096");
	refuse_server_first("r=" SHA1_NONCE "ab\xc3\xa9,s=QSXCR+Q6sek8bf92,i=4096");
}
END_TEST

START_TEST(iteration_counts)
{
	static const char *const bad[] = {
		"0", "4095", "1000001", "2147483647", "99999999999999999999", "04096",
		"4096a", "-4096", "+4096", " 4096", "4096 ", "", "4e3", "0x1000",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char msg[128] = "r=" SHA1_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=";
		ck_assert_uint_lt(strlen(msg) + strlen(bad[i]), sizeof(msg));
		memcpy(msg + strlen(msg), bad[i], strlen(bad[i]) + 1);
		refuse_server_first(msg);
	}
}
END_TEST

START_TEST(server_first_syntax)
{
	/* salt: invalid or empty base64 */
	refuse_server_first("r=" SHA1_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf9,i=4096");
	refuse_server_first("r=" SHA1_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf9!,i=4096");
	refuse_server_first("r=" SHA1_NONCE "3rfcNHYJY1ZVvWVs7j,s=,i=4096");
	refuse_server_first("r=" SHA1_NONCE "3rfcNHYJY1ZVvWVs7j,s====,i=4096");
	/* RFC 5802 5.1: the m= extension must fail authentication */
	refuse_server_first("m=foo,r=" SHA1_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");
	/* missing or out-of-order attributes, stray commas, empty message */
	refuse_server_first("r=" SHA1_NONCE "3rfcNHYJY1ZVvWVs7j,i=4096");
	refuse_server_first("r=" SHA1_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92");
	refuse_server_first("s=QSXCR+Q6sek8bf92,i=4096");
	refuse_server_first("s=QSXCR+Q6sek8bf92,r=" SHA1_NONCE "3rfcNHYJY1ZVvWVs7j,i=4096");
	refuse_server_first("r=" SHA1_NONCE "3rfcNHYJY1ZVvWVs7j,i=4096,s=QSXCR+Q6sek8bf92");
	refuse_server_first("r=" SHA1_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,");
	refuse_server_first("r=" SHA1_NONCE "3rfcNHYJY1ZVvWVs7j,,s=QSXCR+Q6sek8bf92,i=4096");
	refuse_server_first("r=" SHA1_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,=x");
	refuse_server_first("r=" SHA1_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,1=x");
	refuse_server_first("R=" SHA1_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");
	refuse_server_first("");
	/* an embedded NUL */
	void *st = rfc5802_started();
	static const unsigned char nul[] = "r=" SHA1_NONCE "x\0y,s=QSXCR+Q6sek8bf92,i=4096";
	unsigned char *out = NULL;
	size_t outlen = 0;
	ck_assert_int_eq(ma_mech_scram_sha_1.step(st, nul, sizeof(nul) - 1, &out, &outlen),
	                 MA_PROTOCOL);
	ma_mech_scram_sha_1.free(st);
	/* a well-formed extension after i= is ignored (section 7 grammar) */
	st = rfc5802_started();
	char *resp = NULL;
	ck_assert_int_eq(step(&ma_mech_scram_sha_1, st, SHA1_SFIRST ",x=ext", &resp), MA_OK);
	ck_assert_int_eq(strncmp(resp, "c=biws,r=" SHA1_NONCE "3rfc", 37), 0);
	free(resp);
	ma_mech_scram_sha_1.free(st);
}
END_TEST

static void refuse_server_final(const char *sfinal, enum ma_err want)
{
	void *st = rfc5802_final();
	expect_fail(&ma_mech_scram_sha_1, st, sfinal, want);
	ck_assert_int_ne(ma_mech_scram_sha_1.finish(st), MA_OK);
	/* nothing rescues a failed exchange */
	expect_fail(&ma_mech_scram_sha_1, st, SHA1_SFINAL, MA_PROTOCOL);
	ck_assert_int_ne(ma_mech_scram_sha_1.finish(st), MA_OK);
	ma_mech_scram_sha_1.free(st);
}

START_TEST(server_final_checks)
{
	refuse_server_final("e=invalid-proof", MA_AUTH_FAILED);
	refuse_server_final("e=other-error", MA_AUTH_FAILED);
	/* wrong signature, of the right length */
	refuse_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsKU=", MA_PROTOCOL);
	/* the SHA-256 signature: wrong length */
	refuse_server_final(SHA256_SFINAL, MA_PROTOCOL);
	refuse_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsA==", MA_PROTOCOL);
	refuse_server_final("v=", MA_PROTOCOL);
	refuse_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsKQ", MA_PROTOCOL);
	refuse_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=,", MA_PROTOCOL);
	refuse_server_final("V=rmF9pqV8S7suAoZWja4dJRkFsKQ=", MA_PROTOCOL);
	refuse_server_final("x=1," SHA1_SFINAL, MA_PROTOCOL);
	refuse_server_final("ok", MA_PROTOCOL);
	refuse_server_final("", MA_PROTOCOL);
	/* a well-formed extension after v= is ignored */
	void *st = rfc5802_final();
	expect(&ma_mech_scram_sha_1, st, SHA1_SFINAL ",x=ext", "");
	ck_assert_int_eq(ma_mech_scram_sha_1.finish(st), MA_OK);
	ma_mech_scram_sha_1.free(st);
}
END_TEST

START_TEST(finish_early)
{
	void *st = NULL;
	ck_assert_int_eq(ma_scram_start_with_nonce(&ma_mech_scram_sha_1, &pencil, SHA1_NONCE, &st),
	                 MA_OK);
	ck_assert_int_ne(ma_mech_scram_sha_1.finish(st), MA_OK);
	ma_mech_scram_sha_1.free(st);
	st = rfc5802_started();
	ck_assert_int_ne(ma_mech_scram_sha_1.finish(st), MA_OK);
	ma_mech_scram_sha_1.free(st);
	/* server said OK without v=: SPEC 3 makes that a failure */
	st = rfc5802_final();
	ck_assert_int_ne(ma_mech_scram_sha_1.finish(st), MA_OK);
	ma_mech_scram_sha_1.free(st);
}
END_TEST

START_TEST(too_many_steps)
{
	void *st = rfc5802_final();
	expect(&ma_mech_scram_sha_1, st, SHA1_SFINAL, "");
	expect_fail(&ma_mech_scram_sha_1, st, SHA1_SFINAL, MA_PROTOCOL);
	expect_fail(&ma_mech_scram_sha_1, st, "", MA_PROTOCOL);
	ck_assert_int_ne(ma_mech_scram_sha_1.finish(st), MA_OK);
	ma_mech_scram_sha_1.free(st);
	/* the first step takes no challenge; later ones need one */
	ck_assert_int_eq(ma_scram_start_with_nonce(&ma_mech_scram_sha_1, &pencil, SHA1_NONCE, &st),
	                 MA_OK);
	expect_fail(&ma_mech_scram_sha_1, st, "r=x", MA_PROTOCOL);
	ma_mech_scram_sha_1.free(st);
	st = rfc5802_started();
	expect_fail(&ma_mech_scram_sha_1, st, NULL, MA_PROTOCOL);
	ma_mech_scram_sha_1.free(st);
}
END_TEST

START_TEST(user_escaping)
{
	struct ma_sasl_creds c = pencil;
	void *st = NULL;
	c.authcid = "a,b=c";
	ck_assert_int_eq(ma_scram_start_with_nonce(&ma_mech_scram_sha_256, &c, "N0nce", &st), MA_OK);
	expect(&ma_mech_scram_sha_256, st, NULL, "n,,n=a=2Cb=3Dc,r=N0nce");
	ma_mech_scram_sha_256.free(st);
	c.authcid = "==,,";
	ck_assert_int_eq(ma_scram_start_with_nonce(&ma_mech_scram_sha_256, &c, "N0nce", &st), MA_OK);
	expect(&ma_mech_scram_sha_256, st, NULL, "n,,n==3D=3D=2C=2C,r=N0nce");
	ma_mech_scram_sha_256.free(st);
}
END_TEST

START_TEST(saslprep_subset)
{
	static const char *const bad_pw[] = { "p\xc3\xa9ncil", "pen\tcil", "pencil\x7f", "\x01" };
	struct ma_sasl_creds c = pencil;
	void *st = (void *)&c;
	for (size_t i = 0; i < sizeof(bad_pw) / sizeof(bad_pw[0]); i++) {
		c.password = bad_pw[i];
		c.password_len = strlen(bad_pw[i]);
		ck_assert_int_eq(ma_mech_scram_sha_256.start(&c, &st), MA_NO_MECH);
		ck_assert_ptr_null(st);
		ck_assert_int_eq(ma_mech_scram_sha_1_plus.start(&c, &st), MA_NO_MECH);
	}
	/* an embedded NUL is a control character */
	c.password = "pen\0cil";
	c.password_len = 7;
	ck_assert_int_eq(ma_mech_scram_sha_256.start(&c, &st), MA_NO_MECH);
	c = pencil;
	c.authcid = "j\xc3\xb6rg";
	ck_assert_int_eq(ma_mech_scram_sha_256.start(&c, &st), MA_NO_MECH);
	c.authcid = "";
	ck_assert_int_eq(ma_mech_scram_sha_256.start(&c, &st), MA_NO_MECH);
	/* space and all of printable ASCII are fine */
	c = pencil;
	c.password = " !\"#$%&'()*+,-./0123456789:;<=>?@AZ[\\]^_`az{|}~";
	c.password_len = strlen(c.password);
	ck_assert_int_eq(ma_mech_scram_sha_256.start(&c, &st), MA_OK);
	ma_mech_scram_sha_256.free(st);
}
END_TEST

static const unsigned char cbdata[32] = {
	0x00, 0x01, 0x02, 0xfe, 0xff, 0x2c, 0x3d, 0x0a, 0x0d, 0x80, 10, 11, 12, 13, 14, 15,
	16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};

static const struct ma_sasl_creds pencil_cb = {
	.authcid = "user", .password = "pencil", .password_len = 6,
	.cb_type = "tls-exporter", .cb_data = cbdata, .cb_len = sizeof(cbdata),
};

/* The decoded c= attribute of a client-final message. */
static void check_cbind(const char *cfinal, const unsigned char *want, size_t wantlen)
{
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	ck_assert_int_eq(strncmp(cfinal, "c=", 2), 0);
	const char *end = strchr(cfinal, ',');
	ck_assert_ptr_nonnull(end);
	ck_assert_int_eq(ma_base64_decode(cfinal + 2, (size_t)(end - cfinal - 2), &raw, &rawlen), 0);
	ck_assert_uint_eq(rawlen, wantlen);
	ck_assert_mem_eq(raw, want, wantlen);
	free(raw);
}

START_TEST(plus_header)
{
	const struct ma_mech_ops *m = &ma_mech_scram_sha_256_plus;
	void *st = NULL;
	char *resp = NULL;
	unsigned char want[16 + sizeof(cbdata)];
	ck_assert_int_eq(ma_scram_start_with_nonce(m, &pencil_cb, SHA256_NONCE, &st), MA_OK);
	expect(m, st, NULL, "p=tls-exporter,,n=user,r=" SHA256_NONCE);
	ck_assert_int_eq(step(m, st, SHA256_SFIRST, &resp), MA_OK);
	memcpy(want, "p=tls-exporter,,", 16);
	memcpy(want + 16, cbdata, sizeof(cbdata));
	check_cbind(resp, want, sizeof(want));
	ck_assert_ptr_nonnull(strstr(resp, ",r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p="));
	free(resp);
	/* the RFC signature is for "n,,": a different AuthMessage */
	expect_fail(m, st, SHA256_SFINAL, MA_PROTOCOL);
	m->free(st);

	/* -PLUS without channel binding is a caller bug */
	st = NULL;
	ck_assert_int_eq(m->start(&pencil, &st), MA_INTERNAL);
	ck_assert_ptr_null(st);
	ck_assert_int_eq(ma_mech_scram_sha_1_plus.start(&pencil, &st), MA_INTERNAL);
	struct ma_sasl_creds c = pencil_cb;
	c.cb_type = "tls,exporter";
	ck_assert_int_eq(m->start(&c, &st), MA_INTERNAL);
	c = pencil_cb;
	c.cb_len = 0;
	ck_assert_int_eq(m->start(&c, &st), MA_INTERNAL);
}
END_TEST

START_TEST(y_header)
{
	/* RFC 5802 6: "y" when the client supports channel binding but the
	 * mechanism chosen does not use it. */
	const struct ma_mech_ops *m = &ma_mech_scram_sha_256;
	void *st = NULL;
	char *resp = NULL;
	ck_assert_int_eq(ma_scram_start_with_nonce(m, &pencil_cb, SHA256_NONCE, &st), MA_OK);
	expect(m, st, NULL, "y,,n=user,r=" SHA256_NONCE);
	ck_assert_int_eq(step(m, st, SHA256_SFIRST, &resp), MA_OK);
	ck_assert_int_eq(strncmp(resp, "c=eSws,r=", 9), 0);
	check_cbind(resp, (const unsigned char *)"y,,", 3);
	free(resp);
	m->free(st);
}
END_TEST

/* ---- a small SCRAM server, computed here with OpenSSL -------------- */

struct tserver {
	const EVP_MD *md;
	unsigned dlen;
	const char *gs2;                      /* expected gs2-header */
	const unsigned char *cb;              /* expected cbind-data */
	size_t cblen;
	unsigned char stored[32], server_key[32];
	char bare[256], sfirst[256];
	int iter;
};

static void hmac(const struct tserver *s, const unsigned char *key, const void *d, size_t n,
                 unsigned char *mac)
{
	unsigned int len = 0;
	ck_assert_ptr_nonnull(HMAC(s->md, key, (int)s->dlen, d, n, mac, &len));
	ck_assert_uint_eq(len, s->dlen);
}

static void cat(char *buf, size_t size, const char *s)
{
	size_t o = strlen(buf), n = strlen(s);
	ck_assert_uint_lt(o + n, size);
	memcpy(buf + o, s, n + 1);
}

static const char *tserver_first(struct tserver *s, const char *password, const char *cfirst)
{
	unsigned char salt[16], salted[32], ckey[32], rnd[18];
	unsigned int n = 0;
	char *b64;
	size_t gl = strlen(s->gs2);

	ck_assert_int_eq(strncmp(cfirst, s->gs2, gl), 0);
	ck_assert_uint_lt(strlen(cfirst + gl), sizeof(s->bare));
	memcpy(s->bare, cfirst + gl, strlen(cfirst + gl) + 1);
	const char *r = strstr(s->bare, ",r=");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(RAND_bytes(salt, sizeof(salt)), 1);
	ck_assert_int_eq(RAND_bytes(rnd, sizeof(rnd)), 1);
	ck_assert_int_eq(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, sizeof(salt),
	                                   s->iter, s->md, (int)s->dlen, salted), 1);
	hmac(s, salted, "Client Key", 10, ckey);
	ck_assert_int_eq(EVP_Digest(ckey, s->dlen, s->stored, &n, s->md, NULL), 1);
	hmac(s, salted, "Server Key", 10, s->server_key);
	s->sfirst[0] = '\0';
	cat(s->sfirst, sizeof(s->sfirst), "r=");
	cat(s->sfirst, sizeof(s->sfirst), r + 3);
	b64 = ma_base64_encode(rnd, sizeof(rnd), NULL);
	cat(s->sfirst, sizeof(s->sfirst), b64);
	free(b64);
	cat(s->sfirst, sizeof(s->sfirst), ",s=");
	b64 = ma_base64_encode(salt, sizeof(salt), NULL);
	cat(s->sfirst, sizeof(s->sfirst), b64);
	free(b64);
	cat(s->sfirst, sizeof(s->sfirst), s->iter == 4096 ? ",i=4096" : ",i=10000");
	return s->sfirst;
}

/* Verify the client proof; return server-final ("e=invalid-proof" when
 * the proof is wrong). */
static const char *tserver_final(struct tserver *s, const char *cfinal)
{
	static char sfinal[128];
	char am[1024] = "";
	unsigned char csig[32], ckey[32], stored[32], ssig[32], *proof = NULL, *cb = NULL;
	size_t prooflen = 0, cblen = 0;
	unsigned int n = 0;
	const char *p = strstr(cfinal, ",p=");

	ck_assert_ptr_nonnull(p);
	/* c= carries gs2-header + cbind-data */
	ck_assert_int_eq(ma_base64_decode(cfinal + 2, (size_t)(strchr(cfinal, ',') - cfinal - 2),
	                                  &cb, &cblen), 0);
	ck_assert_uint_eq(cblen, strlen(s->gs2) + s->cblen);
	ck_assert_mem_eq(cb, s->gs2, strlen(s->gs2));
	if (s->cblen > 0)
		ck_assert_mem_eq(cb + strlen(s->gs2), s->cb, s->cblen);
	free(cb);
	/* and r= is the combined nonce: "c=...,r=NONCE," as in "r=NONCE,s=..." */
	ck_assert_int_eq(strncmp(strchr(cfinal, ',') + 1, s->sfirst,
	                         (size_t)(strchr(s->sfirst, ',') - s->sfirst) + 1), 0);
	cat(am, sizeof(am), s->bare);
	cat(am, sizeof(am), ",");
	cat(am, sizeof(am), s->sfirst);
	cat(am, sizeof(am), ",");
	size_t o = strlen(am);
	ck_assert_uint_lt(o + (size_t)(p - cfinal), sizeof(am));
	memcpy(am + o, cfinal, (size_t)(p - cfinal));
	am[o + (size_t)(p - cfinal)] = '\0';
	hmac(s, s->stored, am, strlen(am), csig);
	ck_assert_int_eq(ma_base64_decode(p + 3, strlen(p + 3), &proof, &prooflen), 0);
	ck_assert_uint_eq(prooflen, s->dlen);
	for (unsigned i = 0; i < s->dlen; i++)
		ckey[i] = proof[i] ^ csig[i];
	free(proof);
	ck_assert_int_eq(EVP_Digest(ckey, s->dlen, stored, &n, s->md, NULL), 1);
	if (memcmp(stored, s->stored, s->dlen) != 0)
		return "e=invalid-proof";
	hmac(s, s->server_key, am, strlen(am), ssig);
	char *b64 = ma_base64_encode(ssig, s->dlen, NULL);
	sfinal[0] = '\0';
	cat(sfinal, sizeof(sfinal), "v=");
	cat(sfinal, sizeof(sfinal), b64);
	free(b64);
	return sfinal;
}

/* Run M (real random nonce) against the test server; return the verdict
 * of the last step, or of finish() when every step succeeded. */
static enum ma_err run(const struct ma_mech_ops *m, const struct ma_sasl_creds *c,
                       struct tserver *s, const char *server_password)
{
	void *st = NULL;
	char *cfirst = NULL, *cfinal = NULL, *empty = NULL;
	enum ma_err rc = m->start(c, &st);
	ck_assert_int_eq(rc, MA_OK);
	ck_assert_int_eq(step(m, st, NULL, &cfirst), MA_OK);
	ck_assert_int_eq(step(m, st, tserver_first(s, server_password, cfirst), &cfinal), MA_OK);
	rc = step(m, st, tserver_final(s, cfinal), &empty);
	if (rc == MA_OK) {
		ck_assert_str_eq(empty, "");
		rc = m->finish(st);
	} else {
		ck_assert_int_ne(m->finish(st), MA_OK);
	}
	free(cfirst);
	free(cfinal);
	free(empty);
	m->free(st);
	return rc;
}

START_TEST(end_to_end)
{
	struct tserver s = { .md = EVP_sha256(), .dlen = 32, .gs2 = "n,,", .iter = 4096 };
	ck_assert_int_eq(run(&ma_mech_scram_sha_256, &pencil, &s, "pencil"), MA_OK);
	ck_assert_int_eq(run(&ma_mech_scram_sha_256, &pencil, &s, "pencil2"), MA_AUTH_FAILED);
	struct tserver s1 = { .md = EVP_sha1(), .dlen = 20, .gs2 = "y,,", .iter = 10000 };
	ck_assert_int_eq(run(&ma_mech_scram_sha_1, &pencil_cb, &s1, "pencil"), MA_OK);
	struct tserver sp = { .md = EVP_sha256(), .dlen = 32, .gs2 = "p=tls-exporter,,",
	                      .cb = cbdata, .cblen = sizeof(cbdata), .iter = 4096 };
	ck_assert_int_eq(run(&ma_mech_scram_sha_256_plus, &pencil_cb, &sp, "pencil"), MA_OK);
	struct tserver sp1 = { .md = EVP_sha1(), .dlen = 20, .gs2 = "p=tls-exporter,,",
	                       .cb = cbdata, .cblen = sizeof(cbdata), .iter = 4096 };
	ck_assert_int_eq(run(&ma_mech_scram_sha_1_plus, &pencil_cb, &sp1, "pencil"), MA_OK);
	/* a user name with "," and "=" round-trips through the escaping */
	struct ma_sasl_creds c = pencil;
	c.authcid = "a,b=c";
	ck_assert_int_eq(run(&ma_mech_scram_sha_256, &c, &s, "pencil"), MA_OK);
	ck_assert_ptr_nonnull(strstr(s.bare, "n=a=2Cb=3Dc,r="));
}
END_TEST

/* ---- CRAM-MD5 ------------------------------------------------------ */

static const struct ma_sasl_creds tim = {
	.authcid = "tim", .password = "tanstaaftanstaaf", .password_len = 16,
};
/* RFC 2195 section 2 ("PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"):
 * the challenge ends in ".mci.net>", not ".com". */
#define RFC2195_CHALLENGE "<1896.697170952@postoffice.reston.mci.net>"

START_TEST(cram_rfc2195)
{
	const struct ma_mech_ops *m = &ma_mech_cram_md5;
	void *st = NULL;
	ck_assert_int_eq(m->start(&tim, &st), MA_OK);
	ck_assert_int_ne(m->finish(st), MA_OK);
	expect(m, st, RFC2195_CHALLENGE, "tim b913a602c7eda7a495b4e6e7334d3890");
	ck_assert_int_eq(m->finish(st), MA_OK);
	/* RFC 2195: one challenge only */
	expect_fail(m, st, RFC2195_CHALLENGE, MA_PROTOCOL);
	ck_assert_int_ne(m->finish(st), MA_OK);
	m->free(st);
}
END_TEST

START_TEST(cram_bad_challenge)
{
	static const char *const bad[] = { "", "<a\x01>", "<a\n>", "<\xc3\xa9>" };
	const struct ma_mech_ops *m = &ma_mech_cram_md5;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		void *st = NULL;
		ck_assert_int_eq(m->start(&tim, &st), MA_OK);
		expect_fail(m, st, bad[i], MA_PROTOCOL);
		ck_assert_int_ne(m->finish(st), MA_OK);
		m->free(st);
	}
	void *st = NULL;
	ck_assert_int_eq(m->start(&tim, &st), MA_OK);
	expect_fail(m, st, NULL, MA_PROTOCOL);
	m->free(st);
}
END_TEST

static Suite *scram_suite(void)
{
	Suite *s = suite_create("scram");
	TCase *tc = tcase_create("scram");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, rfc5802_sha1);
	tcase_add_test(tc, rfc7677_sha256);
	tcase_add_test(tc, ops_table);
	tcase_add_test(tc, random_nonce);
	tcase_add_test(tc, nonce_checks);
	tcase_add_test(tc, iteration_counts);
	tcase_add_test(tc, server_first_syntax);
	tcase_add_test(tc, server_final_checks);
	tcase_add_test(tc, finish_early);
	tcase_add_test(tc, too_many_steps);
	tcase_add_test(tc, user_escaping);
	tcase_add_test(tc, saslprep_subset);
	tcase_add_test(tc, plus_header);
	tcase_add_test(tc, y_header);
	tcase_add_test(tc, end_to_end);
	suite_add_tcase(s, tc);
	TCase *cram = tcase_create("cram-md5");
	tcase_add_test(cram, cram_rfc2195);
	tcase_add_test(cram, cram_bad_challenge);
	suite_add_tcase(s, cram);
	return s;
}

int main(void)
{
	return ma_unit_run(scram_suite());
}
