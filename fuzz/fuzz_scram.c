/*
 * fuzz_scram.c - the SCRAM client (lib/sasl_scram.c) against hostile
 * server-first and server-final messages, driven as the exchange does:
 * step(NULL), step(server-first), step(server-final), then finish().
 *
 * Input: one flag byte (bits 0-1: SCRAM-SHA-256, SCRAM-SHA-1, and their
 * -PLUS variants; bit 2: the TLS session offers channel binding), then
 * server-first '\n' server-final ['\n' anything-after].  The client nonce
 * is fixed (ma_scram_start_with_nonce) to the one of RFC 7677 / RFC 5802
 * so the RFC exchanges are valid seeds.
 *
 * Invariants (SPEC 3, RFC 5802): client-first is exactly what the RFC
 * says; a server-first is accepted only with the client nonce as prefix,
 * a longer nonce and an iteration count in [4096, 1000000], and the
 * answer is then byte for byte the client-final an independent
 * implementation (common.c) computes; finish() succeeds only when
 * server-final carried the right server signature and nothing came after;
 * after any failed step every later step and finish() fail.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common.h"
#include "sasl.h"
#include "sasl_scram.h"
#include "secret.h"

#define SHA256_NONCE "rOprNGfwEbeRWgbNEkqO"
#define SHA1_NONCE "fyko+d2lbbFgONRv9qkxdawL"

static const unsigned char cb_data[12] = "tls-unique!";

/* One step; the response is returned NUL-terminated (NULL on failure). */
static enum ma_err step(const struct ma_mech_ops *m, void *st, const uint8_t *in, size_t len,
                        char **resp, size_t *resplen)
{
	unsigned char *out = (unsigned char *)"sentinel";
	size_t outlen = 99;
	enum ma_err rc = m->step(st, in, len, &out, &outlen);
	*resp = NULL;
	*resplen = 0;
	if (rc == MA_OK) {
		CHECK(out != NULL);
		*resp = fuzz_strndup(out, outlen);
		*resplen = outlen;
		ma_freezero(out, outlen);
	} else {
		/* A failed step hands nothing out. */
		CHECK(out == NULL && outlen == 0);
		CHECK(rc == MA_PROTOCOL || rc == MA_AUTH_FAILED);
	}
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const struct ma_mech_ops *const mechs[4] = {
		&ma_mech_scram_sha_256, &ma_mech_scram_sha_1,
		&ma_mech_scram_sha_256_plus, &ma_mech_scram_sha_1_plus,
	};
	const struct ma_mech_ops *m = mechs[data[0] & 3];
	bool sha256 = (data[0] & 1) == 0, plus = (data[0] & 2) != 0, have_cb = (data[0] & 4) != 0;
	const char *nonce = sha256 ? SHA256_NONCE : SHA1_NONCE;
	struct ma_sasl_creds creds = {
		.authcid = "user", .password = "pencil", .password_len = 6,
		.cb_type = have_cb ? "tls-unique" : NULL,
		.cb_data = have_cb ? cb_data : NULL, .cb_len = have_cb ? sizeof(cb_data) : 0,
	};
	struct fuzz_in in = { data + 1, size - 1 };
	const uint8_t *msg[3] = { NULL, NULL, NULL };
	size_t len[3] = { 0, 0, 0 };
	int n_msg = 0;
	while (n_msg < 3 && fuzz_next(&in, &msg[n_msg], &len[n_msg]))
		n_msg++;
	if (n_msg == 3 && in.p != NULL)
		len[2] += in.n + 1;     /* the rest belongs to the third message */

	/* PBKDF2 is the only slow thing: skip expensive valid counts. */
	long iter = n_msg > 0 ? fuzz_scram_iterations(msg[0], len[0]) : -1;
	if (iter > FUZZ_SCRAM_MAX_ITER && iter <= 1000000)
		return 0;

	void *st = NULL;
	enum ma_err rc = ma_scram_start_with_nonce(m, &creds, nonce, &st);
	if (plus && !have_cb) {
		/* -PLUS is never started without channel binding. */
		CHECK(rc != MA_OK && st == NULL);
		return 0;
	}
	CHECK(rc == MA_OK && st != NULL);

	/* client-first-message = gs2-header client-first-message-bare */
	const char *gs2 = plus ? "p=tls-unique,," : have_cb ? "y,," : "n,,";
	char *first = NULL, *final = NULL, *after = NULL;
	size_t first_len = 0, final_len = 0, after_len = 0;
	char want_first[128];
	snprintf(want_first, sizeof(want_first), "%sn=user,r=%s", gs2, nonce);
	enum ma_err rc0 = step(m, st, NULL, 0, &first, &first_len);
	CHECK(rc0 == MA_OK);
	CHECK(first_len == strlen(want_first) && strcmp(first, want_first) == 0);

	unsigned char sig[64];
	size_t siglen = 0;
	enum ma_err rc1 = MA_PROTOCOL, rc2 = MA_PROTOCOL;
	if (n_msg >= 1) {
		rc1 = step(m, st, msg[0], len[0], &final, &final_len);
		if (rc1 == MA_OK) {
			CHECK(iter >= 4096 && iter <= 1000000);
			CHECK(len[0] > 0 && memchr(msg[0], '\0', len[0]) == NULL);
			/* r= starts with our nonce and adds to it */
			CHECK(len[0] > 2 + strlen(nonce) && memcmp(msg[0] + 2, nonce, strlen(nonce)) == 0 &&
			      msg[0][2 + strlen(nonce)] != ',');
			char *want_final = NULL;
			CHECK(fuzz_scram_oracle(sha256 ? "SHA256" : "SHA1", "pencil", 6, gs2,
			                        plus ? cb_data : NULL, plus ? sizeof(cb_data) : 0,
			                        want_first + strlen(gs2), (const char *)msg[0], len[0],
			                        &want_final, sig, &siglen));
			CHECK(strlen(want_final) == final_len && strcmp(want_final, final) == 0);
			free(want_final);
		}
	}
	if (n_msg >= 2) {
		rc2 = step(m, st, msg[1], len[1], &after, &after_len);
		if (rc1 != MA_OK)
			CHECK(rc2 != MA_OK);     /* nothing after a failed step */
		/* server-error = "e=" server-error-value (well-formed: no NUL) */
		if (rc1 == MA_OK && len[1] >= 2 && len[1] <= 4096 && msg[1][0] == 'e' &&
		    msg[1][1] == '=' && memchr(msg[1], '\0', len[1]) == NULL)
			CHECK(rc2 == MA_AUTH_FAILED);
		if (rc2 == MA_OK) {
			/* server-final = verifier ["," extensions]: the right one. */
			char *sig_b64 = malloc(4 * ((siglen + 2) / 3) + 1);
			CHECK(sig_b64 != NULL);
			EVP_EncodeBlock((unsigned char *)sig_b64, sig, (int)siglen);
			size_t bl = strlen(sig_b64);
			CHECK(siglen > 0 && len[1] >= 2 + bl && memcmp(msg[1], "v=", 2) == 0 &&
			      memcmp(msg[1] + 2, sig_b64, bl) == 0 &&
			      (len[1] == 2 + bl || msg[1][2 + bl] == ','));
			CHECK(after_len == 0);
			free(sig_b64);
		}
	}
	bool extra_ok = false;
	if (n_msg >= 3) {
		char *r3 = NULL;
		size_t r3len = 0;
		/* Section 3: nothing after server-final. */
		extra_ok = step(m, st, msg[2], len[2], &r3, &r3len) == MA_OK;
		CHECK(!extra_ok);
		free(r3);
	}
	enum ma_err fin = m->finish(st);
	bool complete = rc0 == MA_OK && rc1 == MA_OK && rc2 == MA_OK && n_msg == 2;
	/* SPEC 3: success only when the server proved it knows the password. */
	CHECK((fin == MA_OK) == complete);
	m->free(st);
	free(first);
	free(final);
	free(after);
	return 0;
}
