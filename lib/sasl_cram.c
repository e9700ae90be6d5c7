/*
 * sasl_cram.c - CRAM-MD5 (RFC 2195), off by default (SPEC 3).  Server
 * first; one challenge, one response:
 *
 *   response = user SP lower-case-hex(HMAC-MD5(password, challenge))
 *
 * MD5 comes from OpenSSL's default provider; where it is unavailable (a
 * FIPS-only configuration) start() returns MA_NO_MECH so the selection
 * policy moves on.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sasl.h"
#include "secret.h"

#define MD5_LEN 16

struct cram_state {
	const struct ma_sasl_creds *creds;   /* outlives the exchange (sasl.c) */
	int steps;
};

static enum ma_err cram_start(const struct ma_sasl_creds *c, void **state)
{
	enum ma_err rc = MA_NO_MECH;
	struct cram_state *st = NULL;
	EVP_MD *md5 = EVP_MD_fetch(NULL, "MD5", NULL);

	*state = NULL;
	if (md5 == NULL || c->password_len > INT_MAX)
		goto out;
	rc = MA_NOMEM;
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		goto out;
	st->creds = c;
	*state = st;
	rc = MA_OK;
out:
	EVP_MD_free(md5);
	return rc;
}

static enum ma_err cram_step(void *state, const unsigned char *in, size_t inlen,
                             unsigned char **out, size_t *outlen)
{
	static const char hex[] = "0123456789abcdef";
	struct cram_state *st = state;
	enum ma_err rc = MA_PROTOCOL;
	unsigned char mac[MD5_LEN];
	unsigned int maclen = 0;
	unsigned char *msg = NULL;
	size_t ulen = strlen(st->creds->authcid), n = ulen + 1 + 2 * MD5_LEN;
	EVP_MD *md5 = NULL;

	*out = NULL;
	*outlen = 0;
	/* RFC 2195 section 2: one challenge; another one is out of sequence. */
	if (st->steps++ > 0 || in == NULL || inlen == 0)
		goto out;
	/* The challenge is a msg-id ("<1896.697170952@postoffice...>"):
	 * non-empty printable ASCII. */
	for (size_t i = 0; i < inlen; i++)
		if (in[i] < 0x20 || in[i] > 0x7e)
			goto out;
	rc = MA_NO_MECH;
	md5 = EVP_MD_fetch(NULL, "MD5", NULL);
	if (md5 == NULL)
		goto out;
	rc = MA_INTERNAL;
	if (HMAC(md5, st->creds->password, (int)st->creds->password_len, in, inlen,
	         mac, &maclen) == NULL || maclen != MD5_LEN)
		goto out;
	rc = MA_NOMEM;
	msg = malloc(n);
	if (msg == NULL)
		goto out;
	/* "the user name, followed by a space, followed by the digest in the
	 * form of 16 octets represented as lower-case hexadecimal" */
	memcpy(msg, st->creds->authcid, ulen);
	msg[ulen] = ' ';
	for (size_t i = 0; i < MD5_LEN; i++) {
		msg[ulen + 1 + 2 * i] = (unsigned char)hex[mac[i] >> 4];
		msg[ulen + 2 + 2 * i] = (unsigned char)hex[mac[i] & 15];
	}
	*out = msg;
	*outlen = n;
	rc = MA_OK;
out:
	if (rc != MA_OK)
		st->steps = 2;   /* finish() fails after any failed step */
	EVP_MD_free(md5);
	ma_wipe(mac, sizeof(mac));
	return rc;
}

static enum ma_err cram_finish(void *state)
{
	const struct cram_state *st = state;
	return st->steps == 1 ? MA_OK : MA_PROTOCOL;
}

static void cram_free(void *state)
{
	ma_freezero(state, sizeof(struct cram_state));
}

const struct ma_mech_ops ma_mech_cram_md5 = {
	.id = MA_MECH_CRAM_MD5,
	.name = "CRAM-MD5",
	.client_first = false,
	.start = cram_start,
	.step = cram_step,
	.finish = cram_finish,
	.free = cram_free,
};
