/*
 * sasl_scram.c - the SCRAM client (RFC 5802) with SHA-1 and SHA-256
 * (RFC 7677), with and without channel binding (-PLUS), on OpenSSL 3
 * primitives only.  RFC 5802 section 3:
 *
 *   C: client-first   gs2-header "n=" user ",r=" c-nonce
 *   S: server-first   "r=" c-nonce s-nonce ",s=" salt ",i=" iteration-count
 *   C: client-final   "c=" b64(gs2-header [cb-data]) ",r=" nonce ",p=" proof
 *   S: server-final   "v=" b64(ServerSignature)  or  "e=" error
 *
 * finish() succeeds only once v= has been verified: a server that reports
 * success without proving it knows the password is a failure (SPEC 3).
 * Some servers send server-final as "additional data with success" (RFC
 * 4422 section 5) instead of as a challenge; the exchange driver never
 * hands that to step(), so finish() fails for them.  That is deliberate:
 * fail closed rather than accept an unproven server.
 *
 * Normalize() is SASLprep (RFC 4013, section 5.1 of RFC 5802 for the user
 * name too), which is not implemented here.  On printable ASCII and space
 * (0x20-0x7E) it is the identity: table B.1 maps nothing there, C.1.2 and
 * C.2.1 prohibit only non-ASCII spaces and controls, and NFKC leaves ASCII
 * alone.  Such passwords and user names are used unchanged; anything else
 * (non-ASCII, control characters) makes start() return MA_NO_MECH, so the
 * selection policy moves on (PLAIN sends the bytes as they are).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base64.h"
#include "sasl.h"
#include "sasl_scram.h"
#include "secret.h"

#define SCRAM_MAX_DIGEST 32      /* SHA-256 */
#define SCRAM_NONCE_BYTES 24     /* 32 base64 characters */
#define SCRAM_MAX_NONCE 64
#define SCRAM_MAX_CB_NAME 32
#define SCRAM_MAX_INPUT 4096     /* user name, password, server message */
/* SPEC 3: iteration counts outside this range are refused before hashing. */
#define SCRAM_MIN_ITER 4096L
#define SCRAM_MAX_ITER 1000000L
#define SCRAM_MAX_ITER_DIGITS 7

enum scram_stage { ST_FIRST, ST_SERVER_FIRST, ST_SERVER_FINAL, ST_DONE, ST_FAILED };

struct scram_state {
	const EVP_MD *md;
	size_t dlen;
	const struct ma_sasl_creds *creds;   /* outlives the exchange (sasl.c) */
	bool plus;
	bool verified;
	enum scram_stage stage;
	char *first;          /* client-first-message, NUL-terminated */
	size_t first_len;
	size_t gs2_len;       /* first[0, gs2_len) is the gs2-header */
	size_t cnonce_len;    /* the client nonce ends first[] */
	unsigned char server_sig[SCRAM_MAX_DIGEST];
};

struct cursor {
	const unsigned char *p;
	size_t n;
};

/* The bytes on which SASLprep is the identity (see the top of this file). */
static bool saslprep_identity(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/* RFC 5802 section 7:  printable = %x21-2B / %x2D-7E  ;; no "," */
static bool printable(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	return true;
}

/* RFC 5802 section 7:  cb-name = 1*(ALPHA / DIGIT / "." / "-") */
static bool cb_name_ok(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > SCRAM_MAX_CB_NAME)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-'))
			return false;
	return true;
}

/* Append LEN bytes at S to BUF at *O (the caller sized BUF). */
static void put(char *buf, size_t *o, const void *s, size_t len)
{
	memcpy(buf + *o, s, len);
	*o += len;
}

static void scram_free(void *state)
{
	struct scram_state *st = state;
	if (st == NULL)
		return;
	ma_freezero(st->first, st->first_len + 1);
	ma_freezero(st, sizeof(*st));
}

static enum ma_err scram_start(enum ma_mech id, const struct ma_sasl_creds *c,
                               const char *nonce, void **state)
{
	enum ma_err rc = MA_INTERNAL;
	struct scram_state *st = NULL;
	unsigned char rnd[SCRAM_NONCE_BYTES];
	char *rnd_b64 = NULL;
	size_t ulen = strlen(c->authcid), nlen = 0, o = 0;

	*state = NULL;
	if (ulen == 0 || ulen > SCRAM_MAX_INPUT || !saslprep_identity(c->authcid, ulen) ||
	    c->password_len > SCRAM_MAX_INPUT ||
	    !saslprep_identity(c->password, c->password_len)) {
		rc = MA_NO_MECH;
		goto out;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		rc = MA_NOMEM;
		goto out;
	}
	st->creds = c;
	st->plus = id == MA_MECH_SCRAM_SHA_256_PLUS || id == MA_MECH_SCRAM_SHA_1_PLUS;
	st->md = id == MA_MECH_SCRAM_SHA_256 || id == MA_MECH_SCRAM_SHA_256_PLUS ?
	         EVP_sha256() : EVP_sha1();
	int dlen = EVP_MD_get_size(st->md);
	if (dlen <= 0 || dlen > SCRAM_MAX_DIGEST)
		goto out;
	st->dlen = (size_t)dlen;
	/* -PLUS is chosen only with channel binding (ma_sasl_candidates). */
	if (st->plus && (c->cb_type == NULL || c->cb_data == NULL || c->cb_len == 0 ||
	                 !cb_name_ok(c->cb_type)))
		goto out;

	if (nonce == NULL) {
		/* RFC 5802 5.1: "a sequence of random printable ASCII characters";
		 * base64 of random bytes is printable and has no ",". */
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			goto out;
		rnd_b64 = ma_base64_encode(rnd, sizeof(rnd), NULL);
		if (rnd_b64 == NULL) {
			rc = MA_NOMEM;
			goto out;
		}
		nonce = rnd_b64;
	}
	nlen = strlen(nonce);
	if (nlen == 0 || nlen > SCRAM_MAX_NONCE || !printable((const unsigned char *)nonce, nlen))
		goto out;

	/* RFC 5802 section 7 (authzid is never sent):
	 *   gs2-cbind-flag = ("p=" cb-name) / "n" / "y"
	 *   gs2-header     = gs2-cbind-flag "," [ authzid ] ","
	 * Section 6: "y" when the client supports channel binding but thinks
	 * the server does not (a non-PLUS mechanism was chosen). */
	size_t cblen = st->plus ? strlen(c->cb_type) : 0;
	st->first = malloc(2 + cblen + 2 + 2 + 3 * ulen + 3 + nlen + 1);
	if (st->first == NULL) {
		rc = MA_NOMEM;
		goto out;
	}
	if (st->plus) {
		put(st->first, &o, "p=", 2);
		put(st->first, &o, c->cb_type, cblen);
		put(st->first, &o, ",,", 2);
	} else {
		put(st->first, &o, c->cb_type != NULL ? "y,," : "n,,", 3);
	}
	st->gs2_len = o;
	/* client-first-message-bare = [reserved-mext ","] username "," nonce
	 * Section 5.1: "The characters ',' or '=' in usernames are sent as
	 * '=2C' and '=3D' respectively."   saslname = 1*(value-safe-char /
	 * "=2C" / "=3D") */
	put(st->first, &o, "n=", 2);
	for (size_t i = 0; i < ulen; i++) {
		const char *esc = c->authcid[i] == ',' ? "=2C" : c->authcid[i] == '=' ? "=3D" : NULL;
		if (esc != NULL)
			put(st->first, &o, esc, 3);
		else
			st->first[o++] = c->authcid[i];
	}
	put(st->first, &o, ",r=", 3);
	put(st->first, &o, nonce, nlen);
	st->first[o] = '\0';
	st->first_len = o;
	st->cnonce_len = nlen;
	st->stage = ST_FIRST;
	*state = st;
	st = NULL;
	rc = MA_OK;
out:
	ma_wipe(rnd, sizeof(rnd));
	ma_strfreezero(rnd_b64);
	scram_free(st);
	return rc;
}

/*
 * RFC 5802 section 7:  attr-val = ALPHA "=" value ;  value = 1*value-char
 * Takes NAME=value and the "," after it; a "," must be followed by more.
 */
static bool take_attr(struct cursor *c, unsigned char name,
                      const unsigned char **val, size_t *len)
{
	if (c->n < 3 || c->p[0] != name || c->p[1] != '=')
		return false;
	const unsigned char *v = c->p + 2;
	const unsigned char *comma = memchr(v, ',', c->n - 2);
	*val = v;
	*len = comma != NULL ? (size_t)(comma - v) : c->n - 2;
	size_t used = 2 + *len + (comma != NULL ? 1u : 0u);
	if (*len == 0 || (comma != NULL && used == c->n))
		return false;
	c->p += used;
	c->n -= used;
	return true;
}

/* extensions = attr-val *("," attr-val): well-formed ones are ignored. */
static bool extensions_ok(struct cursor *c)
{
	while (c->n > 0) {
		const unsigned char *v;
		size_t len;
		unsigned char a = c->p[0];
		if (!((a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z')) ||
		    !take_attr(c, a, &v, &len))
			return false;
	}
	return true;
}

static bool hmac(const struct scram_state *st, const unsigned char *key,
                 const void *data, size_t len, unsigned char *mac)
{
	unsigned int n = 0;
	return HMAC(st->md, key, (int)st->dlen, data, len, mac, &n) != NULL &&
	       n == st->dlen;
}

/* Parse server-first-message, answer with client-final-message. */
static enum ma_err client_final(struct scram_state *st, const unsigned char *in,
                                size_t inlen, unsigned char **out, size_t *outlen)
{
	enum ma_err rc = MA_PROTOCOL;
	struct cursor cur = { in, inlen };
	const unsigned char *nonce, *salt_b64, *iter_s;
	size_t nonce_len, salt_b64_len, iter_len, salt_len = 0, cbind_len = 0;
	size_t cbind_b64_len = 0, proof_b64_len = 0, wp_len = 0, am_len = 0, o = 0;
	unsigned char *salt = NULL, *cbind = NULL;
	char *cbind_b64 = NULL, *proof_b64 = NULL, *wp = NULL, *am = NULL, *msg = NULL;
	struct {   /* every derived secret, wiped at the one exit */
		unsigned char salted[SCRAM_MAX_DIGEST], ckey[SCRAM_MAX_DIGEST];
		unsigned char stored[SCRAM_MAX_DIGEST], csig[SCRAM_MAX_DIGEST];
		unsigned char proof[SCRAM_MAX_DIGEST], skey[SCRAM_MAX_DIGEST];
	} k;
	unsigned int dl = 0;
	long iter = 0;

	if (in == NULL || inlen == 0 || inlen > SCRAM_MAX_INPUT || memchr(in, '\0', inlen) != NULL)
		goto out;
	/* RFC 5802 section 7, attributes in this fixed order:
	 *   server-first-message = [reserved-mext ","] nonce "," salt ","
	 *                          iteration-count ["," extensions]
	 * Section 5.1, m: "If this extension is present, the client MUST fail
	 * authentication" (the 'r' below refuses it). */
	if (!take_attr(&cur, 'r', &nonce, &nonce_len) ||
	    !take_attr(&cur, 's', &salt_b64, &salt_b64_len) ||
	    !take_attr(&cur, 'i', &iter_s, &iter_len) || !extensions_ok(&cur))
		goto out;
	/* nonce = "r=" c-nonce [s-nonce]; 5.1: the client MUST verify that
	 * the initial part is its own nonce.  A server that adds nothing has
	 * contributed no freshness: refused. */
	const char *cnonce = st->first + st->first_len - st->cnonce_len;
	if (nonce_len <= st->cnonce_len || memcmp(nonce, cnonce, st->cnonce_len) != 0 ||
	    !printable(nonce, nonce_len))
		goto out;
	/* iteration-count = "i=" posit-number ; posit-number = %x31-39 *DIGIT
	 * bounded by SPEC 3 before any hashing: no leading zero, at most 7
	 * digits, then [4096, 1000000]. */
	if (iter_len > SCRAM_MAX_ITER_DIGITS || iter_s[0] < '1' || iter_s[0] > '9')
		goto out;
	for (size_t i = 0; i < iter_len; i++) {
		if (iter_s[i] < '0' || iter_s[i] > '9')
			goto out;
		iter = iter * 10 + (iter_s[i] - '0');
	}
	if (iter < SCRAM_MIN_ITER || iter > SCRAM_MAX_ITER)
		goto out;
	/* salt = "s=" base64: strict RFC 4648, never empty. */
	if (ma_base64_decode((const char *)salt_b64, salt_b64_len, &salt, &salt_len) != 0 ||
	    salt_len == 0)
		goto out;

	/* channel-binding = "c=" base64 ;; of cbind-input
	 * cbind-input = gs2-header [ cbind-data ]  ;; only with "p=" */
	rc = MA_NOMEM;
	cbind_len = st->gs2_len + (st->plus ? st->creds->cb_len : 0);
	cbind = malloc(cbind_len);
	if (cbind == NULL)
		goto out;
	memcpy(cbind, st->first, st->gs2_len);
	if (st->plus)
		memcpy(cbind + st->gs2_len, st->creds->cb_data, st->creds->cb_len);
	cbind_b64 = ma_base64_encode(cbind, cbind_len, &cbind_b64_len);
	if (cbind_b64 == NULL)
		goto out;
	/* client-final-message-without-proof = channel-binding "," nonce */
	wp_len = 2 + cbind_b64_len + 3 + nonce_len;
	wp = malloc(wp_len);
	if (wp == NULL)
		goto out;
	put(wp, &o, "c=", 2);
	put(wp, &o, cbind_b64, cbind_b64_len);
	put(wp, &o, ",r=", 3);
	put(wp, &o, nonce, nonce_len);
	/* Section 3: AuthMessage := client-first-message-bare + "," +
	 *   server-first-message + "," + client-final-message-without-proof */
	size_t bare_len = st->first_len - st->gs2_len;
	am_len = bare_len + 1 + inlen + 1 + wp_len;
	am = malloc(am_len);
	if (am == NULL)
		goto out;
	o = 0;
	put(am, &o, st->first + st->gs2_len, bare_len);
	put(am, &o, ",", 1);
	put(am, &o, in, inlen);
	put(am, &o, ",", 1);
	put(am, &o, wp, wp_len);

	/* Section 3:
	 *   SaltedPassword  := Hi(Normalize(password), salt, i)
	 *   ClientKey       := HMAC(SaltedPassword, "Client Key")
	 *   StoredKey       := H(ClientKey)
	 *   ClientSignature := HMAC(StoredKey, AuthMessage)
	 *   ClientProof     := ClientKey XOR ClientSignature
	 *   ServerKey       := HMAC(SaltedPassword, "Server Key")
	 *   ServerSignature := HMAC(ServerKey, AuthMessage)
	 * Hi() is PBKDF2 with HMAC as the PRF (section 2.2). */
	rc = MA_INTERNAL;
	if (PKCS5_PBKDF2_HMAC(st->creds->password, (int)st->creds->password_len,
	                      salt, (int)salt_len, (int)iter, st->md, (int)st->dlen,
	                      k.salted) != 1 ||
	    !hmac(st, k.salted, "Client Key", 10, k.ckey) ||
	    EVP_Digest(k.ckey, st->dlen, k.stored, &dl, st->md, NULL) != 1 || dl != st->dlen ||
	    !hmac(st, k.stored, am, am_len, k.csig) ||
	    !hmac(st, k.salted, "Server Key", 10, k.skey) ||
	    !hmac(st, k.skey, am, am_len, st->server_sig))
		goto out;
	for (size_t i = 0; i < st->dlen; i++)
		k.proof[i] = k.ckey[i] ^ k.csig[i];
	rc = MA_NOMEM;
	proof_b64 = ma_base64_encode(k.proof, st->dlen, &proof_b64_len);
	if (proof_b64 == NULL)
		goto out;
	/* client-final-message = client-final-message-without-proof "," proof
	 * proof = "p=" base64 */
	msg = malloc(wp_len + 3 + proof_b64_len);
	if (msg == NULL)
		goto out;
	o = 0;
	put(msg, &o, wp, wp_len);
	put(msg, &o, ",p=", 3);
	put(msg, &o, proof_b64, proof_b64_len);
	*out = (unsigned char *)msg;
	*outlen = o;
	msg = NULL;
	rc = MA_OK;
out:
	ma_wipe(&k, sizeof(k));
	ma_freezero(salt, salt_len + 1);
	ma_freezero(cbind, cbind_len);
	ma_freezero(cbind_b64, cbind_b64_len);
	ma_freezero(proof_b64, proof_b64_len);
	ma_freezero(wp, wp_len);
	ma_freezero(am, am_len);
	ma_freezero(msg, wp_len + 3 + proof_b64_len);
	return rc;
}

/* Is IN (a server-final-message starting "e=") exactly the error VALUE,
 * alone or followed by extensions? */
static bool error_is(const unsigned char *in, size_t inlen, const char *value)
{
	size_t n = strlen(value);
	return inlen >= n + 2 && memcmp(in + 2, value, n) == 0 &&
	       (inlen == n + 2 || in[n + 2] == ',');
}

/* Check server-final-message; the answer is an empty response. */
static enum ma_err server_final(struct scram_state *st, const unsigned char *in,
                                size_t inlen, unsigned char **out, size_t *outlen)
{
	enum ma_err rc = MA_PROTOCOL;
	struct cursor cur = { in, inlen };
	const unsigned char *v;
	size_t vlen, siglen = 0;
	unsigned char *sig = NULL;

	if (in == NULL || inlen == 0 || inlen > SCRAM_MAX_INPUT || memchr(in, '\0', inlen) != NULL)
		goto out;
	/* RFC 5802 section 7:
	 *   server-final-message = (server-error / verifier) ["," extensions]
	 *   server-error = "e=" server-error-value
	 *   verifier     = "v=" base64  ;; base-64 encoded ServerSignature. */
	if (inlen >= 2 && in[0] == 'e' && in[1] == '=') {
		/* Two errors speak of the channel, not of the password, and end
		 * the session as MA_TLS so that no PLAIN fallback ever hands the
		 * password to that channel:
		 *  - "channel-bindings-dont-match": the server saw another TLS
		 *    session than ours, i.e. someone in between;
		 *  - "server-does-support-channel-binding": we sent GS2 flag "y"
		 *    (no -PLUS offered) to a server that does bind.  RFC 5802
		 *    section 6: "the server MUST fail authentication", because
		 *    the mechanism list the client saw was tampered with. */
		rc = error_is(in, inlen, "channel-bindings-dont-match") ||
		     error_is(in, inlen, "server-does-support-channel-binding")
			? MA_TLS : MA_AUTH_FAILED;
		goto out;
	}
	if (!take_attr(&cur, 'v', &v, &vlen) || !extensions_ok(&cur) ||
	    ma_base64_decode((const char *)v, vlen, &sig, &siglen) != 0 ||
	    siglen != st->dlen || CRYPTO_memcmp(sig, st->server_sig, st->dlen) != 0)
		goto out;
	rc = MA_NOMEM;
	*out = malloc(1);
	if (*out == NULL)
		goto out;
	*outlen = 0;
	st->verified = true;
	rc = MA_OK;
out:
	ma_freezero(sig, siglen + 1);
	return rc;
}

static enum ma_err scram_step(void *state, const unsigned char *in, size_t inlen,
                              unsigned char **out, size_t *outlen)
{
	struct scram_state *st = state;
	enum ma_err rc = MA_PROTOCOL;
	enum scram_stage stage = st->stage;

	*out = NULL;
	*outlen = 0;
	st->stage = ST_FAILED;   /* until this step succeeds */
	switch (stage) {
	case ST_FIRST:
		/* Client first: no challenge, or an empty one (RFC 4422 5). */
		if (in == NULL || inlen == 0) {
			rc = MA_NOMEM;
			*out = malloc(st->first_len);
			if (*out == NULL)
				break;
			memcpy(*out, st->first, st->first_len);
			*outlen = st->first_len;
			rc = MA_OK;
		}
		break;
	case ST_SERVER_FIRST:
		rc = client_final(st, in, inlen, out, outlen);
		break;
	case ST_SERVER_FINAL:
		rc = server_final(st, in, inlen, out, outlen);
		break;
	case ST_DONE:
	case ST_FAILED:
		/* Section 3: two round trips, nothing after server-final. */
		rc = MA_PROTOCOL;
		break;
	}
	if (rc == MA_OK)
		st->stage = (enum scram_stage)(stage + 1);
	return rc;
}

static enum ma_err scram_finish(void *state)
{
	const struct scram_state *st = state;
	return st->stage == ST_DONE && st->verified ? MA_OK : MA_PROTOCOL;
}

static enum ma_err start_sha256(const struct ma_sasl_creds *c, void **state)
{
	return scram_start(MA_MECH_SCRAM_SHA_256, c, NULL, state);
}

static enum ma_err start_sha256_plus(const struct ma_sasl_creds *c, void **state)
{
	return scram_start(MA_MECH_SCRAM_SHA_256_PLUS, c, NULL, state);
}

static enum ma_err start_sha1(const struct ma_sasl_creds *c, void **state)
{
	return scram_start(MA_MECH_SCRAM_SHA_1, c, NULL, state);
}

static enum ma_err start_sha1_plus(const struct ma_sasl_creds *c, void **state)
{
	return scram_start(MA_MECH_SCRAM_SHA_1_PLUS, c, NULL, state);
}

enum ma_err ma_scram_start_with_nonce(const struct ma_mech_ops *m,
                                      const struct ma_sasl_creds *c,
                                      const char *nonce, void **state)
{
	*state = NULL;
	if (m == NULL || nonce == NULL || m->step != scram_step)
		return MA_INTERNAL;
	return scram_start(m->id, c, nonce, state);
}

const struct ma_mech_ops ma_mech_scram_sha_256 = {
	.id = MA_MECH_SCRAM_SHA_256, .name = "SCRAM-SHA-256", .client_first = true,
	.proves_server = true,
	.start = start_sha256, .step = scram_step, .finish = scram_finish, .free = scram_free,
};

const struct ma_mech_ops ma_mech_scram_sha_256_plus = {
	.id = MA_MECH_SCRAM_SHA_256_PLUS, .name = "SCRAM-SHA-256-PLUS", .client_first = true,
	.proves_server = true,
	.start = start_sha256_plus, .step = scram_step, .finish = scram_finish, .free = scram_free,
};

const struct ma_mech_ops ma_mech_scram_sha_1 = {
	.id = MA_MECH_SCRAM_SHA_1, .name = "SCRAM-SHA-1", .client_first = true,
	.proves_server = true,
	.start = start_sha1, .step = scram_step, .finish = scram_finish, .free = scram_free,
};

const struct ma_mech_ops ma_mech_scram_sha_1_plus = {
	.id = MA_MECH_SCRAM_SHA_1_PLUS, .name = "SCRAM-SHA-1-PLUS", .client_first = true,
	.proves_server = true,
	.start = start_sha1_plus, .step = scram_step, .finish = scram_finish, .free = scram_free,
};
