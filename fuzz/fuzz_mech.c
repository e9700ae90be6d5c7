/*
 * fuzz_mech.c - the simple SASL mechanisms (PLAIN, LOGIN, CRAM-MD5) with
 * fuzzed credentials and challenges, and SCRAM's client-first with fuzzed
 * credentials and nonce (SASLprep boundary, "=2C"/"=3D" escaping).
 *
 * Input: one selector byte (0 PLAIN, 1 LOGIN, 2 CRAM-MD5, 3 SCRAM-SHA-256
 * with the nonce from the input), then '\n'-separated pieces: user,
 * password, [nonce,] then the decoded server challenges.
 *
 * Invariants: each response is exactly what its RFC says (RFC 4616
 * message, the LOGIN user then password, RFC 2195 keyed MD5 computed here
 * independently); a challenge out of sequence fails; finish() succeeds
 * exactly when the mechanism ran to its end and no more.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common.h"
#include "sasl.h"
#include "sasl_scram.h"
#include "secret.h"

static enum ma_err step(const struct ma_mech_ops *m, void *st, const uint8_t *in, size_t len,
                        unsigned char **resp, size_t *resplen)
{
	unsigned char *out = (unsigned char *)"sentinel";
	size_t outlen = 99;
	enum ma_err rc = m->step(st, in, len, &out, &outlen);
	*resp = NULL;
	*resplen = 0;
	if (rc == MA_OK) {
		CHECK(out != NULL);
		*resp = out;
		*resplen = outlen;
	} else {
		CHECK(rc == MA_PROTOCOL || rc == MA_NO_MECH);
	}
	return rc;
}

static bool same(const unsigned char *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool printable_or_space(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static void run_scram(const char *user, const char *pw, size_t pwlen, const char *nonce)
{
	struct ma_sasl_creds c = { .authcid = user, .password = pw, .password_len = pwlen };
	void *st = NULL;
	size_t ulen = strlen(user), nlen = strlen(nonce);
	bool creds_ok = ulen > 0 && ulen <= 4096 && printable_or_space(user, ulen) &&
	                pwlen <= 4096 && printable_or_space(pw, pwlen);
	bool nonce_ok = nlen > 0 && nlen <= 64 && strchr(nonce, ',') == NULL &&
	                printable_or_space(nonce, nlen) && strchr(nonce, ' ') == NULL;
	enum ma_err rc = ma_scram_start_with_nonce(&ma_mech_scram_sha_256, &c, nonce, &st);
	CHECK((rc == MA_OK) == (creds_ok && nonce_ok));
	if (!creds_ok)
		CHECK(rc == MA_NO_MECH);
	if (rc != MA_OK) {
		CHECK(st == NULL);
		return;
	}
	/* RFC 5802 5.1: ',' and '=' in user names are sent as =2C and =3D. */
	char *want = malloc(5 + 3 * ulen + 3 + nlen + 1);
	CHECK(want != NULL);
	size_t o = 0;
	memcpy(want, "n,,n=", 5);
	o = 5;
	for (size_t i = 0; i < ulen; i++) {
		if (user[i] == ',' || user[i] == '=') {
			memcpy(want + o, user[i] == ',' ? "=2C" : "=3D", 3);
			o += 3;
		} else {
			want[o++] = user[i];
		}
	}
	memcpy(want + o, ",r=", 3);
	memcpy(want + o + 3, nonce, nlen);
	o += 3 + nlen;
	unsigned char *out = NULL;
	size_t outlen = 0;
	CHECK(step(&ma_mech_scram_sha_256, st, NULL, 0, &out, &outlen) == MA_OK);
	CHECK(same(out, outlen, want, o));
	CHECK(ma_mech_scram_sha_256.finish(st) != MA_OK);
	ma_freezero(out, outlen);
	free(want);
	ma_mech_scram_sha_256.free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned sel = data[0] % 4;
	struct fuzz_in in = { data + 1, size - 1 };
	const uint8_t *p = NULL;
	size_t len = 0;
	char *user = NULL, *pw = NULL;
	size_t pwlen = 0;

	if (!fuzz_next(&in, &p, &len))
		return 0;
	user = fuzz_strndup(p, len);            /* a C string: cut at a NUL */
	if (!fuzz_next(&in, &p, &len))
		len = 0;
	pw = fuzz_strndup(p, len);
	pwlen = len;

	if (sel == 3) {
		char *nonce = fuzz_next(&in, &p, &len) ? fuzz_strndup(p, len) : fuzz_strndup(NULL, 0);
		run_scram(user, pw, pwlen, nonce);
		free(nonce);
		goto out;
	}

	const struct ma_mech_ops *m = sel == 0 ? &ma_mech_plain : sel == 1 ? &ma_mech_login
	                            : &ma_mech_cram_md5;
	struct ma_sasl_creds c = { .authcid = user, .password = pw, .password_len = pwlen };
	void *st = NULL;
	enum ma_err rc = m->start(&c, &st);
	CHECK(rc == MA_OK && st != NULL);
	size_t ulen = strlen(user);
	int calls = 0, ok_calls = 0;
	bool all_ok = true;

	if (m->client_first) {
		/* PLAIN: message = [authzid] UTF8NUL authcid UTF8NUL passwd */
		unsigned char *out;
		size_t outlen;
		CHECK(step(m, st, NULL, 0, &out, &outlen) == MA_OK);
		CHECK(outlen == 2 + ulen + pwlen && out[0] == '\0' && same(out + 1, ulen, user, ulen) &&
		      out[1 + ulen] == '\0' && same(out + 2 + ulen, pwlen, pw, pwlen));
		ma_freezero(out, outlen);
		calls++;
		ok_calls++;
	}
	while (fuzz_next(&in, &p, &len)) {
		char *ch = fuzz_strndup(p, len);
		unsigned char *out;
		size_t outlen;
		rc = step(m, st, (const uint8_t *)ch, len, &out, &outlen);
		calls++;
		if (m == &ma_mech_plain) {
			CHECK(rc != MA_OK);     /* RFC 4616: one message only */
		} else if (m == &ma_mech_login) {
			/* the user name, then the password, whatever the prompt */
			CHECK((rc == MA_OK) == (calls <= 2));
			if (calls == 1)
				CHECK(same(out, outlen, user, ulen));
			if (calls == 2)
				CHECK(same(out, outlen, pw, pwlen));
		} else {
			/* RFC 2195: one printable challenge, answered with
			 * user SP lower-hex(HMAC-MD5(password, challenge)). */
			bool want = calls == 1 && len > 0 && printable_or_space(ch, len);
			CHECK((rc == MA_OK) == want);
			if (rc == MA_OK) {
				unsigned char mac[16];
				unsigned int ml = 0;
				char hex[33];
				CHECK(HMAC(EVP_md5(), pw, (int)pwlen, (const unsigned char *)ch, len,
				           mac, &ml) != NULL && ml == 16);
				for (int i = 0; i < 16; i++)
					snprintf(hex + 2 * i, 3, "%02x", mac[i]);
				CHECK(outlen == ulen + 33 && same(out, ulen, user, ulen) &&
				      out[ulen] == ' ' && memcmp(out + ulen + 1, hex, 32) == 0);
			}
		}
		if (rc == MA_OK)
			ok_calls++;
		else
			all_ok = false;
		ma_freezero(out, outlen);
		free(ch);
	}
	int need = m == &ma_mech_login ? 2 : 1;
	CHECK((m->finish(st) == MA_OK) == (all_ok && ok_calls == need && calls == need));
	m->free(st);
out:
	free(user);
	ma_freezero(pw, pwlen);
	return 0;
}
