/*
 * common.c - helpers shared by the fuzz targets (see common.h).
 */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

void fuzz_check(bool ok, const char *expr, const char *file, int line)
{
	if (ok)
		return;
	fprintf(stderr, "\n*** invariant violated: %s (%s:%d)\n", expr, file, line);
	abort();
}

bool fuzz_next(struct fuzz_in *in, const uint8_t **piece, size_t *len)
{
	if (in->p == NULL)
		return false;
	const uint8_t *nl = memchr(in->p, '\n', in->n);
	*piece = in->p;
	if (nl == NULL) {
		*len = in->n;
		in->p = NULL;      /* the last piece has been handed out */
		in->n = 0;
	} else {
		*len = (size_t)(nl - in->p);
		in->n -= *len + 1;
		in->p = nl + 1;
	}
	return true;
}

char *fuzz_strndup(const uint8_t *p, size_t len)
{
	char *s = malloc(len + 1);
	CHECK(s != NULL);
	if (len > 0)
		memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

bool fuzz_contains(const void *hay, size_t hlen, const void *needle, size_t nlen)
{
	return nlen > 0 && hlen >= nlen && memmem(hay, hlen, needle, nlen) != NULL;
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

bool fuzz_is_base64(const char *s, size_t len)
{
	if (len % 4 != 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (b64_char(s[i]))
			continue;
		/* '=' only as the last one or two characters */
		if (s[i] != '=' || i + 2 < len || (i + 2 == len && s[len - 1] != '='))
			return false;
	}
	return true;
}

static void log_emit(void *arg, int priority, const char *line)
{
	struct fuzz_log *fl = arg;
	(void)priority;
	CHECK(line != NULL);
	fl->lines++;
	fuzz_log_check_text(fl, line, strlen(line));
}

void fuzz_log_init(struct fuzz_log *fl, struct ma_log *log, bool debug)
{
	memset(fl, 0, sizeof(*fl));
	log->emit = log_emit;
	log->arg = fl;
	log->debug = debug;
}

void fuzz_log_forbid(struct fuzz_log *fl, const char *s)
{
	CHECK(fl->n_forbidden < sizeof(fl->forbidden) / sizeof(fl->forbidden[0]));
	fl->forbidden[fl->n_forbidden++] = s;
}

void fuzz_log_check_text(const struct fuzz_log *fl, const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		/* SPEC 2: server text that reaches a log has control characters
		 * escaped. */
		CHECK(c >= 0x20 && c != 0x7f);
	}
	for (size_t k = 0; k < fl->n_forbidden; k++) {
		/* SPEC 6: never a password, a SASL payload or base64 of either. */
		CHECK(!fuzz_contains(text, len, fl->forbidden[k], strlen(fl->forbidden[k])));
	}
}

/* ---- the SCRAM oracle: RFC 5802 section 3, written from the RFC ---- */

static char *b64_encode(const unsigned char *in, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	CHECK(out != NULL);
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

/* Returns the decoded length, or -1. */
static int b64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
	if (len == 0 || len % 4 != 0 || len / 4 * 3 > cap)
		return -1;
	int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (n < 0)
		return -1;
	if (in[len - 1] == '=')
		n--;
	if (in[len - 2] == '=')
		n--;
	return n;
}

/* The value of attribute NAME at the start of *P (up to ',' or the end);
 * advances *P past the ','.  NULL when the attribute is not there. */
static const char *attr(const char **p, const char *end, char name, size_t *len)
{
	const char *s = *p;
	if (end - s < 2 || s[0] != name || s[1] != '=')
		return NULL;
	s += 2;
	const char *comma = memchr(s, ',', (size_t)(end - s));
	*len = (size_t)((comma != NULL ? comma : end) - s);
	*p = comma != NULL ? comma + 1 : end;
	return s;
}

long fuzz_scram_iterations(const uint8_t *msg, size_t len)
{
	const char *p = (const char *)msg, *end = p + len;
	size_t n = 0;
	if (attr(&p, end, 'r', &n) == NULL || attr(&p, end, 's', &n) == NULL)
		return -1;
	const char *i = attr(&p, end, 'i', &n);
	if (i == NULL || n == 0 || n > 9)
		return -1;
	long v = 0;
	for (size_t k = 0; k < n; k++) {
		if (i[k] < '0' || i[k] > '9')
			return -1;
		v = v * 10 + (i[k] - '0');
	}
	return v;
}

static void hmac(const EVP_MD *md, const unsigned char *key, size_t klen,
                 const void *data, size_t len, unsigned char *out)
{
	unsigned int n = 0;
	CHECK(HMAC(md, key, (int)klen, data, len, out, &n) != NULL);
}

bool fuzz_scram_oracle(const char *mdname, const char *password, size_t password_len,
                       const char *gs2, const unsigned char *cb, size_t cb_len,
                       const char *client_first_bare, const char *server_first,
                       size_t server_first_len, char **client_final,
                       unsigned char *sig, size_t *siglen)
{
	const EVP_MD *md = strcmp(mdname, "SHA256") == 0 ? EVP_sha256() : EVP_sha1();
	size_t dlen = (size_t)EVP_MD_get_size(md);
	const char *p = server_first, *end = server_first + server_first_len;
	size_t nonce_len = 0, salt_b64_len = 0;
	const char *nonce = attr(&p, end, 'r', &nonce_len);
	const char *salt_b64 = attr(&p, end, 's', &salt_b64_len);
	unsigned char salt[4096];
	int salt_len = salt_b64 != NULL ? b64_decode(salt_b64, salt_b64_len, salt, sizeof(salt)) : -1;
	long iter = fuzz_scram_iterations((const uint8_t *)server_first, server_first_len);

	*client_final = NULL;
	if (nonce == NULL || salt_len <= 0 || iter <= 0)
		return false;

	/* cbind-input = gs2-header [ cbind-data ] */
	size_t gs2_len = strlen(gs2);
	unsigned char *cbind = malloc(gs2_len + cb_len + 1);
	CHECK(cbind != NULL);
	memcpy(cbind, gs2, gs2_len);
	if (cb_len > 0)
		memcpy(cbind + gs2_len, cb, cb_len);
	char *cbind_b64 = b64_encode(cbind, gs2_len + cb_len);
	free(cbind);

	/* client-final-message-without-proof = "c=" base64 ",r=" nonce */
	size_t wp_len = 2 + strlen(cbind_b64) + 3 + nonce_len;
	char *wp = malloc(wp_len + 1);
	CHECK(wp != NULL);
	snprintf(wp, wp_len + 1, "c=%s,r=%.*s", cbind_b64, (int)nonce_len, nonce);
	free(cbind_b64);

	/* AuthMessage = client-first-message-bare "," server-first-message ","
	 *               client-final-message-without-proof */
	size_t bare_len = strlen(client_first_bare);
	size_t am_len = bare_len + 1 + server_first_len + 1 + wp_len;
	char *am = malloc(am_len);
	CHECK(am != NULL);
	memcpy(am, client_first_bare, bare_len);
	am[bare_len] = ',';
	memcpy(am + bare_len + 1, server_first, server_first_len);
	am[bare_len + 1 + server_first_len] = ',';
	memcpy(am + bare_len + 2 + server_first_len, wp, wp_len);

	unsigned char salted[64], ckey[64], stored[64], csig[64], proof[64], skey[64];
	unsigned int n = 0;
	CHECK(PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, salt_len, (int)iter, md,
	                        (int)dlen, salted) == 1);
	hmac(md, salted, dlen, "Client Key", 10, ckey);
	CHECK(EVP_Digest(ckey, dlen, stored, &n, md, NULL) == 1);
	hmac(md, stored, dlen, am, am_len, csig);
	for (size_t k = 0; k < dlen; k++)
		proof[k] = ckey[k] ^ csig[k];
	hmac(md, salted, dlen, "Server Key", 10, skey);
	hmac(md, skey, dlen, am, am_len, sig);
	*siglen = dlen;

	char *proof_b64 = b64_encode(proof, dlen);
	size_t cf_len = wp_len + 3 + strlen(proof_b64);
	*client_final = malloc(cf_len + 1);
	CHECK(*client_final != NULL);
	snprintf(*client_final, cf_len + 1, "%s,p=%s", wp, proof_b64);
	free(proof_b64);
	free(wp);
	free(am);
	return true;
}
