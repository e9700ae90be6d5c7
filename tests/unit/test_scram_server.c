/*
 * test_scram_server.c - ma_authenticate() against an in-process IMAP server
 * that implements the SERVER side of SCRAM-SHA-256(-PLUS), SCRAM-SHA-1(-PLUS)
 * (RFC 5802, RFC 7677), PLAIN (RFC 4616) and CRAM-MD5 (RFC 2195) with
 * OpenSSL primitives, and checks the client's channel binding against its own
 * view of the TLS session: tls-exporter (RFC 9266) on TLS 1.3, tls-unique
 * (RFC 5929) on TLS 1.2.  SPEC sections 2-4.
 *
 * One test = one server thread accepting ONE connection on 127.0.0.1:0 with
 * implicit TLS (MA_TEST_CERTS/server.pem), user "alice", password
 * "pencil-Secret9".  The server writes down what it saw (struct seen); each
 * test asserts the exact enum ma_err of the client AND that record.
 * Misbehaviours (enum misbehave) turn it into a hostile or MITM-like server.
 *
 * Everything is bounded: the server polls for its connection, its socket has
 * SO_RCVTIMEO/SO_SNDTIMEO and the connection a hard budget; the client's
 * `timeout` is TIMEOUT_S.  SIGPIPE is blocked in the server thread only, so
 * the library's own SIGPIPE hygiene stays under test in the main thread.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "config.h"
#include "libmailauth.h"
#include "unit.h"
#include "fake.h"        /* fake_certs_setup(), fake_now_ms() */

#define USER "alice"
#define PASSWORD "pencil-Secret9"
#define SALT "NaCl-for-alice16"           /* 16 bytes */
#define TIMEOUT_S 3                       /* `timeout` of every configuration */
#define SERVER_BUDGET_MS 6000             /* a server connection never lives longer */
#define LINE_MAX_LEN 8192
#define MAX_AUTH 4
#define CRAM_CHALLENGE "<1896.697170952@localhost>"

/* ======================= the server ====================================== */

enum misbehave {
	MB_NONE,
	MB_CB_FLIP,       /* expect binding data with one bit flipped: what a MITM's server sees */
	MB_NONCE,         /* server-first nonce does not start with the client nonce */
	MB_BAD_V,         /* server-final v= with one bit flipped */
	MB_NO_FINAL,      /* tagged OK right after client-final: no server-final at all */
	MB_BAD_B64,       /* server-first that is not base64 */
	MB_EMPTY_FINAL,   /* "+ " (no v=), then OK whatever the client answers */
	MB_NO_AFTER_V,    /* valid v=, then NO: the account is refused, not the proof */
	MB_E_DOWNGRADE,   /* e=server-does-support-channel-binding (RFC 5802 6) */
	MB_E_PROOF,       /* e=invalid-proof whatever the proof, then NO */
};

struct srv_conf {
	int tls_max;              /* TLS1_2_VERSION or TLS1_3_VERSION */
	bool no_ems;              /* TLS 1.2 without the extended master secret */
	const char *auth;         /* "AUTH=... AUTH=..." for the greeting */
	enum misbehave mb;
	const char *iter;         /* i= as sent; NULL: "4096" */
	bool resume;              /* one server context for the whole test, with a TLS 1.2
	                             session cache: the second login can resume */
	bool cyrus;               /* Cyrus SASL's binding: tls-unique on TLS 1.3 too (the
	                             first Finished the TLS 1.2 way), and any other
	                             binding type refused with a bare NO, no e= */
};

/* What the server saw; read by the test after the thread has ended. */
struct seen {
	bool handshake;              /* TLS came up */
	bool resumed;                /* ... by resuming an earlier session */
	int n_auth;                  /* AUTHENTICATE commands */
	char mech[MAX_AUTH][32];     /* ... and their mechanisms, in order */
	char gs2[64];                /* gs2 header of the first SCRAM client-first */
	char gs2_last[64];           /* ... and of the last one */
	bool cb_checked;             /* a client-final c= was compared */
	bool cb_match;               /* ... with what this server expected */
	bool cb_true;                /* ... with the real binding of the session */
	bool proof_ok;               /* the SCRAM ClientProof verified */
	bool plain_ok, cram_ok;      /* a PLAIN / CRAM-MD5 response verified */
	bool cancel;                 /* the client sent "*" */
	bool logout;
	char error[200];             /* first complaint of the server, for messages */
};

struct srv {
	struct srv_conf conf;
	struct seen seen;
	char certs[PATH_MAX];
	int lfd, stop[2];
	unsigned port;
	pthread_t thread;
	/* the one connection */
	SSL *ssl;
	long deadline;
	char in[LINE_MAX_LEN + 1];
	size_t have, used;           /* bytes in in[]; bytes of the last line */
	const char *cb_type;         /* this session's binding, computed server-side */
	unsigned char cb[64];
	size_t cb_len;
};

__attribute__((format(printf, 2, 3)))
static void note(struct srv *s, const char *fmt, ...)
{
	if (s->seen.error[0] != '\0')
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->seen.error, sizeof(s->seen.error), fmt, ap);
	va_end(ap);
}

/* ---- base64 (OpenSSL's, made strict) ---- */

static size_t b64_encode(const void *in, size_t len, char *out, size_t cap)
{
	if (4 * ((len + 2) / 3) + 1 > cap)
		return 0;
	return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* RFC 4648 base64, nothing else (EVP_DecodeBlock alone skips blanks). */
static bool b64_decode(const char *text, unsigned char *out, size_t cap, size_t *len)
{
	size_t n = strlen(text), pad = 0;
	if (n % 4 != 0 || n / 4 * 3 > cap)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == '=' && i + 2 >= n && (i == n - 1 || text[n - 1] == '='))
			pad++;
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		           (c >= '0' && c <= '9') || c == '+' || c == '/') || pad > 0)
			return false;
	}
	int r = EVP_DecodeBlock(out, (const unsigned char *)text, (int)n);
	if (r < 0 || (size_t)r < pad)
		return false;
	*len = (size_t)r - pad;
	return true;
}

/* ---- lines over TLS ---- */

/* Retry a timed-out SSL call until the connection's budget is spent. */
static bool again(struct srv *s, int ret)
{
	int e = SSL_get_error(s->ssl, ret);
	return (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
	       fake_now_ms() < s->deadline;
}

__attribute__((format(printf, 2, 3)))
static bool srv_send(struct srv *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n <= 0 || (size_t)n >= sizeof(line))
		return false;
	int r;
	while ((r = SSL_write(s->ssl, line, n)) <= 0)
		if (!again(s, r))
			return false;
	return true;
}

/* The next line without its CRLF (valid until the next call); NULL on EOF,
 * error, budget spent, or a line over LINE_MAX_LEN. */
static char *srv_line(struct srv *s)
{
	memmove(s->in, s->in + s->used, s->have - s->used);
	s->have -= s->used;
	s->used = 0;
	for (;;) {
		char *crlf = memmem(s->in, s->have, "\r\n", 2);
		if (crlf != NULL) {
			*crlf = '\0';
			s->used = (size_t)(crlf - s->in) + 2;
			return s->in;
		}
		if (s->have >= LINE_MAX_LEN)
			return NULL;
		int r = SSL_read(s->ssl, s->in + s->have, (int)(LINE_MAX_LEN - s->have));
		if (r > 0)
			s->have += (size_t)r;
		else if (!again(s, r))
			return NULL;
	}
}

/* ---- SASL plumbing ---- */

enum rsp { RSP_DATA, RSP_CANCEL, RSP_BAD, RSP_GONE };

/* One client response (initial response or continuation answer), decoded. */
static enum rsp srv_decode(struct srv *s, const char *b64, unsigned char *buf, size_t cap,
                           size_t *len)
{
	*len = 0;
	if (strcmp(b64, "*") == 0) {
		s->seen.cancel = true;
		return RSP_CANCEL;
	}
	if (strcmp(b64, "=") == 0)       /* RFC 4959: empty initial response */
		return RSP_DATA;
	if (!b64_decode(b64, buf, cap, len)) {
		note(s, "client response is not base64");
		return RSP_BAD;
	}
	return RSP_DATA;
}

/* Send "+ TEXT" (TEXT already base64, or deliberately not) and read the answer. */
static enum rsp srv_exchange(struct srv *s, const char *text, unsigned char *buf, size_t cap,
                             size_t *len)
{
	*len = 0;
	char *line = srv_send(s, "+ %s\r\n", text) ? srv_line(s) : NULL;
	return line == NULL ? RSP_GONE : srv_decode(s, line, buf, cap, len);
}

/* The first client message: its initial response IR, or the answer to "+ ". */
static enum rsp srv_first(struct srv *s, const char *ir, unsigned char *buf, size_t cap,
                          size_t *len)
{
	return ir != NULL ? srv_decode(s, ir, buf, cap, len) : srv_exchange(s, "", buf, cap, len);
}

/* End an exchange that did not deliver data.  False: the connection is gone. */
static bool srv_abort(struct srv *s, const char *tag, enum rsp r)
{
	if (r == RSP_CANCEL)
		return srv_send(s, "%s BAD AUTHENTICATE cancelled\r\n", tag);
	if (r == RSP_BAD)
		return srv_send(s, "%s BAD invalid base64\r\n", tag);
	return false;
}

__attribute__((format(printf, 3, 4)))
static bool srv_no(struct srv *s, const char *tag, const char *fmt, ...)
{
	char why[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	note(s, "%s", why);
	return srv_send(s, "%s NO [AUTHENTICATIONFAILED] %s\r\n", tag, why);
}

static bool srv_ok(struct srv *s, const char *tag)
{
	return srv_send(s, "%s OK [CAPABILITY IMAP4rev1] Logged in\r\n", tag);
}

/* LEN bytes as a C string; false when they hold a NUL or do not fit. */
static bool to_cstr(const unsigned char *p, size_t len, char *out, size_t cap)
{
	if (len >= cap || memchr(p, '\0', len) != NULL)
		return false;
	memcpy(out, p, len);
	out[len] = '\0';
	return true;
}

/* Is MECH one of the AUTH= tokens of the greeting? */
static bool advertised(const struct srv *s, const char *mech)
{
	const char *p = s->conf.auth;
	size_t n = strlen(mech);
	while ((p = strcasestr(p, "AUTH=")) != NULL) {
		p += 5;
		if (strncasecmp(p, mech, n) == 0 && (p[n] == ' ' || p[n] == '\0'))
			return true;
	}
	return false;
}

/* ---- SCRAM, server side (RFC 5802 section 3) ---- */

struct scram_keys {
	unsigned char salted[EVP_MAX_MD_SIZE], ckey[EVP_MAX_MD_SIZE];
	unsigned char stored[EVP_MAX_MD_SIZE], skey[EVP_MAX_MD_SIZE];
};

static bool hmac(const EVP_MD *md, const unsigned char *key, size_t dlen, const void *data,
                 size_t len, unsigned char *out)
{
	unsigned int n = 0;
	return HMAC(md, key, (int)dlen, data, len, out, &n) != NULL && n == dlen;
}

/* SaltedPassword, ClientKey, StoredKey, ServerKey of alice. */
static bool scram_keys(const EVP_MD *md, size_t dlen, int iter, struct scram_keys *k)
{
	unsigned int n = 0;
	return PKCS5_PBKDF2_HMAC(PASSWORD, (int)strlen(PASSWORD), (const unsigned char *)SALT,
	                         (int)strlen(SALT), iter, md, (int)dlen, k->salted) == 1 &&
	       hmac(md, k->salted, dlen, "Client Key", 10, k->ckey) &&
	       EVP_Digest(k->ckey, dlen, k->stored, &n, md, NULL) == 1 && n == dlen &&
	       hmac(md, k->salted, dlen, "Server Key", 10, k->skey);
}

/*
 * Check the gs2 header of client-first (RFC 5802 section 6): -PLUS needs
 * "p=" with this session's binding type; without -PLUS "n" or "y", and "y"
 * while this server advertises -PLUS is a downgrade.  NULL when fine.
 */
static const char *gs2_problem(const struct srv *s, bool plus, const char *first,
                               const char *comma)
{
	size_t flag_len = (size_t)(comma - first);
	if (plus)
		return flag_len == 2 + strlen(s->cb_type) && strncmp(first, "p=", 2) == 0 &&
		       strncmp(first + 2, s->cb_type, flag_len - 2) == 0
		       ? NULL : "-PLUS without p=<this session's binding type>";
	if (flag_len != 1 || (first[0] != 'n' && first[0] != 'y'))
		return "bad gs2-cbind-flag";
	if (first[0] == 'y' && strstr(s->conf.auth, "-PLUS") != NULL)
		return "gs2 flag y although -PLUS is advertised (downgrade)";
	return NULL;
}

static bool srv_scram(struct srv *s, const char *tag, const char *mech, const char *ir)
{
	bool sha256 = strncasecmp(mech, "SCRAM-SHA-256", 13) == 0;
	bool plus = strcasestr(mech, "-PLUS") != NULL;
	const EVP_MD *md = sha256 ? EVP_sha256() : EVP_sha1();
	size_t dlen = sha256 ? 32 : 20, len = 0, cbind_len = 0, proof_len = 0, want_len = 0;
	unsigned char msg[LINE_MAX_LEN], cbind[256], want[256], proof[64], csig[64];
	unsigned char ckey[64], stored[64], ssig[64], rnd[18];
	char first[1024], sfirst[512], final[1024], b64[1024], snonce[32], salt64[32], am[3072];
	struct scram_keys k;
	const char *iter_s = s->conf.iter != NULL ? s->conf.iter : "4096";

	/* client-first-message = gs2-header client-first-message-bare */
	enum rsp r = srv_first(s, ir, msg, sizeof(msg), &len);
	if (r != RSP_DATA)
		return srv_abort(s, tag, r);
	if (!to_cstr(msg, len, first, sizeof(first)))
		return srv_no(s, tag, "client-first too long or with NUL");
	char *c1 = strchr(first, ','), *c2 = c1 != NULL ? strchr(c1 + 1, ',') : NULL;
	if (c2 == NULL)
		return srv_no(s, tag, "client-first without gs2 header");
	size_t gs2_len = (size_t)(c2 + 1 - first);
	if (s->seen.gs2[0] == '\0')
		snprintf(s->seen.gs2, sizeof(s->seen.gs2), "%.*s", (int)gs2_len, first);
	snprintf(s->seen.gs2_last, sizeof(s->seen.gs2_last), "%.*s", (int)gs2_len, first);
	const char *problem = gs2_problem(s, plus, first, c1);
	if (problem != NULL && s->conf.cyrus) {
		/* Cyrus imapd answers a binding type it does not have with its
		 * generic refusal: no SCRAM e=, no response code. */
		note(s, "%s", problem);
		return srv_send(s, "%s NO Authentication failed\r\n", tag);
	}
	if (problem != NULL)
		return srv_no(s, tag, "%s", problem);
	if (c2 != c1 + 1 && strncmp(c1 + 1, "a=" USER ",", strlen("a=" USER ",")) != 0)
		return srv_no(s, tag, "foreign authzid");
	const char *bare = c2 + 1;
	if (strncmp(bare, "n=" USER ",r=", strlen("n=" USER ",r=")) != 0)
		return srv_no(s, tag, "client-first-bare is not n=" USER ",r=...");
	const char *cnonce = bare + strlen("n=" USER ",r=");
	int cnonce_len = (int)strcspn(cnonce, ",");
	if (cnonce_len == 0)
		return srv_no(s, tag, "empty client nonce");

	/* server-first-message = "r=" c-nonce s-nonce ",s=" salt ",i=" count */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1 ||
	    b64_encode(rnd, sizeof(rnd), snonce, sizeof(snonce)) == 0 ||
	    b64_encode(SALT, strlen(SALT), salt64, sizeof(salt64)) == 0)
		return srv_no(s, tag, "server: RAND/base64 failed");
	if (s->conf.mb == MB_NONCE)
		snprintf(sfirst, sizeof(sfirst), "r=%s,s=%s,i=%s", snonce, salt64, iter_s);
	else
		snprintf(sfirst, sizeof(sfirst), "r=%.*s%s,s=%s,i=%s", cnonce_len, cnonce, snonce,
		         salt64, iter_s);
	if (s->conf.mb == MB_BAD_B64)
		snprintf(b64, sizeof(b64), "%s", "!!not*base64!!");
	else if (b64_encode(sfirst, strlen(sfirst), b64, sizeof(b64)) == 0)
		return srv_no(s, tag, "server-first too long");

	/* client-final-message = "c=" base64 ",r=" nonce ",p=" proof */
	r = srv_exchange(s, b64, msg, sizeof(msg), &len);
	if (r != RSP_DATA)
		return srv_abort(s, tag, r);
	if (!to_cstr(msg, len, final, sizeof(final)))
		return srv_no(s, tag, "client-final too long or with NUL");
	char *rr = strstr(final, ",r="), *pp = strstr(final, ",p=");
	if (strncmp(final, "c=", 2) != 0 || rr == NULL || pp == NULL || pp < rr)
		return srv_no(s, tag, "malformed client-final");
	char nonce_want[128];
	snprintf(nonce_want, sizeof(nonce_want), "%.*s%s", cnonce_len, cnonce, snonce);
	if ((size_t)(pp - rr - 3) != strlen(nonce_want) ||
	    strncmp(rr + 3, nonce_want, strlen(nonce_want)) != 0)
		return srv_no(s, tag, "client-final nonce differs");

	/* channel-binding: c= is base64(gs2-header [cbind-data]) */
	snprintf(b64, sizeof(b64), "%.*s", (int)(rr - final - 2), final + 2);
	if (!b64_decode(b64, cbind, sizeof(cbind), &cbind_len))
		return srv_no(s, tag, "c= is not base64");
	if (gs2_len + s->cb_len > sizeof(want))
		return srv_no(s, tag, "gs2 header too long");
	memcpy(want, first, gs2_len);
	want_len = gs2_len;
	if (plus) {
		memcpy(want + want_len, s->cb, s->cb_len);
		want_len += s->cb_len;
	}
	s->seen.cb_checked = true;
	s->seen.cb_true = cbind_len == want_len && memcmp(cbind, want, want_len) == 0;
	if (plus && s->conf.mb == MB_CB_FLIP)
		want[gs2_len] ^= 0x01;
	s->seen.cb_match = cbind_len == want_len && memcmp(cbind, want, want_len) == 0;

	/* AuthMessage = client-first-bare "," server-first "," client-final-without-proof;
	 * ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) == StoredKey */
	long iter = strtol(iter_s, NULL, 10);
	if (iter < 1 || iter > 100000)
		return srv_no(s, tag, "server: will not hash with i=%s", iter_s);
	snprintf(b64, sizeof(b64), "%s", pp + 3);
	int am_len = snprintf(am, sizeof(am), "%s,%s,%.*s", bare, sfirst, (int)(pp - final), final);
	unsigned int n = 0;
	if (am_len <= 0 || (size_t)am_len >= sizeof(am) || !scram_keys(md, dlen, (int)iter, &k) ||
	    !b64_decode(b64, proof, sizeof(proof), &proof_len) || proof_len != dlen ||
	    !hmac(md, k.stored, dlen, am, (size_t)am_len, csig))
		return srv_no(s, tag, "bad proof or crypto failure");
	for (size_t i = 0; i < dlen; i++)
		ckey[i] = proof[i] ^ csig[i];
	s->seen.proof_ok = EVP_Digest(ckey, dlen, stored, &n, md, NULL) == 1 && n == dlen &&
	                   CRYPTO_memcmp(stored, k.stored, dlen) == 0;

	if (s->conf.mb == MB_E_DOWNGRADE || s->conf.mb == MB_E_PROOF) {
		const char *e = s->conf.mb == MB_E_DOWNGRADE ? "e=server-does-support-channel-binding"
		                                             : "e=invalid-proof";
		b64_encode(e, strlen(e), b64, sizeof(b64));
		if (srv_exchange(s, b64, msg, sizeof(msg), &len) == RSP_GONE)
			return false;
		return srv_no(s, tag, "%s", e + 2);
	}
	if (!s->seen.cb_match) {
		/* server-error as the server-final challenge, then the verdict */
		b64_encode("e=channel-bindings-dont-match", 29, b64, sizeof(b64));
		if (srv_exchange(s, b64, msg, sizeof(msg), &len) == RSP_GONE)
			return false;
		return srv_no(s, tag, "channel bindings don't match");
	}
	if (!s->seen.proof_ok)
		return srv_no(s, tag, "invalid proof");
	if (s->conf.mb == MB_NO_FINAL)
		return srv_ok(s, tag);

	/* server-final-message = "v=" base64(HMAC(ServerKey, AuthMessage)) */
	if (!hmac(md, k.skey, dlen, am, (size_t)am_len, ssig))
		return srv_no(s, tag, "crypto failure");
	if (s->conf.mb == MB_BAD_V)
		ssig[0] ^= 0x01;
	char v[128] = "v=";
	b64_encode(ssig, dlen, v + 2, sizeof(v) - 2);
	if (s->conf.mb == MB_EMPTY_FINAL)
		b64[0] = '\0';
	else
		b64_encode(v, strlen(v), b64, sizeof(b64));
	r = srv_exchange(s, b64, msg, sizeof(msg), &len);
	if (r == RSP_GONE)
		return false;
	if (s->conf.mb == MB_NO_AFTER_V)
		return srv_no(s, tag, "account disabled");
	/* A hostile server says OK whatever the client answered. */
	if (s->conf.mb == MB_NONE && (r != RSP_DATA || len != 0))
		return r == RSP_DATA ? srv_send(s, "%s BAD expected an empty response\r\n", tag)
		                     : srv_abort(s, tag, r);
	return srv_ok(s, tag);
}

/* ---- PLAIN and CRAM-MD5 ---- */

static bool srv_plain(struct srv *s, const char *tag, const char *ir)
{
	static const char want[] = "\0" USER "\0" PASSWORD;
	static const char want_authz[] = USER "\0" USER "\0" PASSWORD;
	unsigned char msg[1024];
	size_t len = 0;
	enum rsp r = srv_first(s, ir, msg, sizeof(msg), &len);
	if (r != RSP_DATA)
		return srv_abort(s, tag, r);
	s->seen.plain_ok = (len == sizeof(want) - 1 && memcmp(msg, want, len) == 0) ||
	                   (len == sizeof(want_authz) - 1 && memcmp(msg, want_authz, len) == 0);
	return s->seen.plain_ok ? srv_ok(s, tag) : srv_no(s, tag, "PLAIN: wrong credentials");
}

/* RFC 2195: challenge, then "user SP hex(HMAC-MD5(password, challenge))". */
static bool srv_cram(struct srv *s, const char *tag, const char *ir)
{
	unsigned char msg[1024], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char b64[128], want[128];
	size_t len = 0;
	if (ir != NULL)
		return srv_send(s, "%s BAD CRAM-MD5 has no initial response\r\n", tag);
	b64_encode(CRAM_CHALLENGE, strlen(CRAM_CHALLENGE), b64, sizeof(b64));
	enum rsp r = srv_exchange(s, b64, msg, sizeof(msg), &len);
	if (r != RSP_DATA)
		return srv_abort(s, tag, r);
	if (HMAC(EVP_md5(), PASSWORD, (int)strlen(PASSWORD), (const unsigned char *)CRAM_CHALLENGE,
	         strlen(CRAM_CHALLENGE), mac, &maclen) == NULL || maclen != 16)
		return srv_no(s, tag, "server: HMAC-MD5 failed");
	int o = snprintf(want, sizeof(want), "%s ", USER);
	for (unsigned i = 0; i < maclen; i++)
		o += snprintf(want + o, sizeof(want) - (size_t)o, "%02x", mac[i]);
	s->seen.cram_ok = len == (size_t)o && memcmp(msg, want, len) == 0;
	return s->seen.cram_ok ? srv_ok(s, tag) : srv_no(s, tag, "CRAM-MD5: wrong digest");
}

/* ---- the IMAP dialogue ---- */

static bool srv_authenticate(struct srv *s, const char *tag, char *args)
{
	char *ir = strchr(args, ' ');
	if (ir != NULL)
		*ir++ = '\0';
	if (s->seen.n_auth < MAX_AUTH)
		snprintf(s->seen.mech[s->seen.n_auth], sizeof(s->seen.mech[0]), "%s", args);
	s->seen.n_auth++;
	char copy[LINE_MAX_LEN];        /* the IR lives in s->in, which the next read reuses */
	if (ir != NULL) {
		snprintf(copy, sizeof(copy), "%s", ir);
		ir = copy;
	}
	if (!advertised(s, args)) {
		note(s, "AUTHENTICATE %s: not advertised", args);
		return srv_send(s, "%s BAD unsupported mechanism\r\n", tag);
	}
	if (strncasecmp(args, "SCRAM-", 6) == 0)
		return srv_scram(s, tag, args, ir);
	if (strcasecmp(args, "PLAIN") == 0)
		return srv_plain(s, tag, ir);
	if (strcasecmp(args, "CRAM-MD5") == 0)
		return srv_cram(s, tag, ir);
	return srv_send(s, "%s BAD unsupported mechanism\r\n", tag);
}

static void srv_session(struct srv *s)
{
	char *line;
	if (!srv_send(s, "* OK [CAPABILITY IMAP4rev1 SASL-IR %s] ready\r\n", s->conf.auth))
		return;
	while ((line = srv_line(s)) != NULL) {
		char tag[32];
		char *cmd = strchr(line, ' ');
		if (cmd == NULL || cmd - line >= (long)sizeof(tag)) {
			note(s, "malformed command line");
			return;
		}
		snprintf(tag, sizeof(tag), "%.*s", (int)(cmd - line), line);
		cmd++;
		char *args = strchr(cmd, ' ');
		if (args != NULL)
			*args++ = '\0';
		bool go_on;
		if (strcasecmp(cmd, "LOGOUT") == 0) {
			s->seen.logout = true;
			srv_send(s, "* BYE logging out\r\n%s OK LOGOUT completed\r\n", tag);
			return;
		} else if (strcasecmp(cmd, "CAPABILITY") == 0) {
			go_on = srv_send(s, "* CAPABILITY IMAP4rev1 SASL-IR %s\r\n%s OK done\r\n",
			                 s->conf.auth, tag);
		} else if (strcasecmp(cmd, "AUTHENTICATE") == 0 && args != NULL) {
			go_on = srv_authenticate(s, tag, args);
		} else {
			note(s, "unexpected command %s", cmd);
			go_on = srv_send(s, "%s BAD unknown command\r\n", tag);
		}
		if (!go_on)
			return;
	}
}

static SSL_CTX *srv_ctx_new(struct srv *s);

/* The context of a resume test, kept between its connections (check runs
 * every test in a process of its own, and its connections one by one). */
static SSL_CTX *resume_ctx;

/* A context for one connection; the caller frees its reference. */
static SSL_CTX *srv_ctx(struct srv *s)
{
	if (!s->conf.resume)
		return srv_ctx_new(s);
	if (resume_ctx == NULL) {
		resume_ctx = srv_ctx_new(s);
		if (resume_ctx == NULL)
			return NULL;
		static const unsigned char sid_ctx[] = "test_scram_server";
		SSL_CTX_set_session_cache_mode(resume_ctx, SSL_SESS_CACHE_SERVER);
		SSL_CTX_set_session_id_context(resume_ctx, sid_ctx, sizeof(sid_ctx) - 1);
		/* TLS 1.3 resumes with tickets only (stateful ones here, since
		 * SSL_OP_NO_TICKET stays set): send one. */
		SSL_CTX_set_num_tickets(resume_ctx, 1);
	}
	SSL_CTX_up_ref(resume_ctx);
	return resume_ctx;
}

static SSL_CTX *srv_ctx_new(struct srv *s)
{
	char cert[PATH_MAX + 16], key[PATH_MAX + 16];
	snprintf(cert, sizeof(cert), "%s/server.pem", s->certs);
	snprintf(key, sizeof(key), "%s/server.key", s->certs);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
		return NULL;
	/* No tickets, no cache: every handshake is a full one (tls-unique). */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET |
	                    (s->conf.no_ems ? SSL_OP_NO_EXTENDED_MASTER_SECRET : 0));
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, s->conf.tls_max) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* This session's channel binding as the server sees it. */
static void srv_binding(struct srv *s)
{
	if (SSL_version(s->ssl) >= TLS1_3_VERSION && !s->conf.cyrus) {
		/* RFC 9266 2: 32 bytes, label "EXPORTER-Channel-Binding", no context */
		s->cb_type = "tls-exporter";
		if (SSL_export_keying_material(s->ssl, s->cb, 32, "EXPORTER-Channel-Binding", 24,
		                               NULL, 0, 0) == 1)
			s->cb_len = 32;
	} else {
		/* RFC 5929 3.1: the first Finished of the handshake; in a full
		 * handshake that is the client's, i.e. the server's peer's; in an
		 * abbreviated (resumed) one the server's own, which comes first.
		 * Cyrus imapd asks OpenSSL the same way on TLS 1.3 (cyrus mode). */
		s->cb_type = "tls-unique";
		s->cb_len = SSL_session_reused(s->ssl)
			? SSL_get_finished(s->ssl, s->cb, sizeof(s->cb))
			: SSL_get_peer_finished(s->ssl, s->cb, sizeof(s->cb));
	}
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	sigset_t pipe_set;
	SSL_CTX *ctx = NULL;
	int fd = -1, r;

	/* Writing to a client that has gone must not kill the test process. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);

	s->deadline = fake_now_ms() + SERVER_BUDGET_MS;
	struct pollfd p[2] = {
		{ .fd = s->lfd, .events = POLLIN }, { .fd = s->stop[0], .events = POLLIN },
	};
	if (poll(p, 2, SERVER_BUDGET_MS) <= 0 || !(p[0].revents & POLLIN) ||
	    (fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		note(s, "no connection");
		goto out;
	}
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200 * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if ((ctx = srv_ctx(s)) == NULL || (s->ssl = SSL_new(ctx)) == NULL ||
	    SSL_set_fd(s->ssl, fd) != 1) {
		note(s, "server TLS setup failed (certificates in %s?)", s->certs);
		goto out;
	}
	while ((r = SSL_accept(s->ssl)) != 1) {
		if (!again(s, r)) {
			note(s, "TLS handshake failed");
			goto out;
		}
	}
	s->seen.handshake = true;
	s->seen.resumed = SSL_session_reused(s->ssl) == 1;
	srv_binding(s);
	srv_session(s);
	/* OpenSSL drops a session from the server cache when SSL_free() comes
	 * without our close_notify ("bad session"): send it, for resume tests. */
	if (s->conf.resume)
		SSL_shutdown(s->ssl);
out:
	SSL_free(s->ssl);
	s->ssl = NULL;
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	struct timespec zero = { 0, 0 };
	while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
		;
	return NULL;
}

static int srv_start(struct srv *s, const struct srv_conf *conf)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	const char *certs = getenv("MA_TEST_CERTS");

	memset(s, 0, sizeof(*s));
	s->conf = *conf;
	s->stop[0] = s->stop[1] = -1;
	if (certs == NULL || snprintf(s->certs, sizeof(s->certs), "%s", certs) >= (int)sizeof(s->certs))
		return -1;
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(s->lfd, 1) != 0 || getsockname(s->lfd, (struct sockaddr *)&a, &alen) != 0 ||
	    pipe2(s->stop, O_CLOEXEC) != 0 || pthread_create(&s->thread, NULL, srv_main, s) != 0) {
		if (s->lfd >= 0)
			close(s->lfd);
		if (s->stop[0] >= 0) {
			close(s->stop[0]);
			close(s->stop[1]);
		}
		return -1;
	}
	s->port = ntohs(a.sin_port);
	return 0;
}

/* Wake a server still waiting for its connection, wait for it to end. */
static void srv_stop(struct srv *s)
{
	ssize_t w = write(s->stop[1], "x", 1);
	(void)w;
	pthread_join(s->thread, NULL);
	close(s->lfd);
	close(s->stop[0]);
	close(s->stop[1]);
}

/* ======================= the client side ================================= */

struct outcome {
	const char *label;
	enum ma_err err;
	struct ma_result res;
	long ms;
	struct seen seen;
	char log[16 * 1024];
	size_t loglen;
};

static void capture(void *arg, int priority, const char *line)
{
	struct outcome *o = arg;
	(void)priority;
	int n = snprintf(o->log + o->loglen, sizeof(o->log) - o->loglen, "  %s\n", line);
	if (n > 0 && (size_t)n < sizeof(o->log) - o->loglen)
		o->loglen += (size_t)n;
}

static void dump(const struct outcome *o)
{
	const struct seen *v = &o->seen;
	fprintf(stderr,
	        "---- %s: %s (%s) in %ld ms, mechanism \"%s\", %s\n"
	        "server: handshake=%d n_auth=%d mech=[%s,%s,%s] gs2=\"%s\" gs2_last=\"%s\" "
	        "cb_checked=%d "
	        "cb_match=%d cb_true=%d proof_ok=%d plain_ok=%d cram_ok=%d cancel=%d logout=%d "
	        "error=\"%s\"\nclient log:\n%s----\n",
	        o->label, ma_err_name(o->err), o->res.detail, o->ms, o->res.mechanism,
	        o->res.tls_version, v->handshake, v->n_auth, v->mech[0], v->mech[1], v->mech[2],
	        v->gs2, v->gs2_last, v->cb_checked, v->cb_match, v->cb_true, v->proof_ok, v->plain_ok,
	        v->cram_ok, v->cancel, v->logout, v->error, o->log);
}

#define expect(o, cond, ...)                                   \
	do {                                                   \
		if (!(cond))                                   \
			dump(o);                               \
		ck_assert_msg(cond, __VA_ARGS__);              \
	} while (0)

/*
 * Serve CONF, authenticate alice/PASSWORD with a configuration made of
 * GLOBAL and SERVER_EXTRA (lines for the top level and for the server
 * section, may be NULL).  The server thread has ended on return.
 */
static void run(struct outcome *o, const char *label, const struct srv_conf *conf,
                const char *global, const char *server_extra, const char *password)
{
	struct srv *s = malloc(sizeof(*s));
	char text[2048], err[512];
	struct ma_config *cfg = NULL;

	memset(o, 0, sizeof(*o));
	o->label = label;
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(srv_start(s, conf) == 0, "%s: server did not start", label);
	int n = snprintf(text, sizeof(text),
	                 "timeout = %d\n"
	                 "ca_file = \"%s/ca.pem\"\n"
	                 "%s\n"
	                 "server s {\n"
	                 "  protocol = imap\n"
	                 "  host = \"127.0.0.1\"\n"
	                 "  port = %u\n"
	                 "  tls = implicit\n"
	                 "  %s\n"
	                 "}\n",
	                 TIMEOUT_S, s->certs, global != NULL ? global : "", s->port,
	                 server_extra != NULL ? server_extra : "");
	ck_assert(n > 0 && (size_t)n < sizeof(text));
	enum ma_err ce = ma_config_parse(text, (size_t)n, "scram.conf", &cfg, err, sizeof(err));
	if (ce != MA_OK) {
		srv_stop(s);
		free(s);
		ck_abort_msg("%s: ma_config_parse: %s: %s\n%s", label, ma_err_name(ce), err, text);
	}
	struct ma_log log = { .emit = capture, .arg = o, .debug = true };
	long t0 = fake_now_ms();
	o->err = ma_authenticate(cfg, USER, password, &log, &o->res);
	o->ms = fake_now_ms() - t0;
	ma_config_free(&cfg);
	srv_stop(s);
	o->seen = s->seen;
	free(s);
	if (getenv("MA_FAKE_VERBOSE") != NULL)
		dump(o);
	expect(o, o->seen.handshake, "%s: no TLS session with the server", label);
	expect(o, o->res.err == o->err, "%s: res.err %s != returned %s", label,
	       ma_err_name(o->res.err), ma_err_name(o->err));
}

static void expect_err(const struct outcome *o, enum ma_err want)
{
	expect(o, o->err == want, "%s: got %s (%s), want %s", o->label, ma_err_name(o->err),
	       o->res.detail, ma_err_name(want));
}

static void expect_str(const struct outcome *o, const char *what, const char *got,
                       const char *want)
{
	expect(o, strcmp(got, want) == 0, "%s: %s \"%s\", want \"%s\"", o->label, what, got, want);
}

#define ADV_256 "AUTH=SCRAM-SHA-256-PLUS AUTH=SCRAM-SHA-256 AUTH=PLAIN"
#define ADV_1 "AUTH=SCRAM-SHA-1-PLUS AUTH=SCRAM-SHA-1 AUTH=PLAIN"

/* ---- 1, 2: channel binding that matches ---- */

static const struct plus_case {
	const char *label;
	int tls_max;
	const char *auth, *mech, *gs2, *tls;
} plus_cases[] = {
	{ "sha256-plus/tls1.3", TLS1_3_VERSION, ADV_256, "SCRAM-SHA-256-PLUS",
	  "p=tls-exporter,,", "TLSv1.3" },
	{ "sha256-plus/tls1.2", TLS1_2_VERSION, ADV_256, "SCRAM-SHA-256-PLUS",
	  "p=tls-unique,,", "TLSv1.2" },
	{ "sha1-plus/tls1.3", TLS1_3_VERSION, ADV_1, "SCRAM-SHA-1-PLUS",
	  "p=tls-exporter,,", "TLSv1.3" },
	{ "sha1-plus/tls1.2", TLS1_2_VERSION, ADV_1, "SCRAM-SHA-1-PLUS",
	  "p=tls-unique,,", "TLSv1.2" },
};

START_TEST(test_plus)
{
	const struct plus_case *c = &plus_cases[_i];
	struct srv_conf conf = { .tls_max = c->tls_max, .auth = c->auth };
	struct outcome o;
	run(&o, c->label, &conf, NULL, NULL, PASSWORD);
	expect_err(&o, MA_OK);
	expect_str(&o, "mechanism", o.res.mechanism, c->mech);
	expect_str(&o, "tls_version", o.res.tls_version, c->tls);
	expect_str(&o, "gs2 header", o.seen.gs2, c->gs2);
	expect(&o, o.seen.n_auth == 1, "%s: %d AUTHENTICATE commands", c->label, o.seen.n_auth);
	expect(&o, o.seen.cb_checked && o.seen.cb_match, "%s: channel binding did not match",
	       c->label);
	expect(&o, o.seen.proof_ok, "%s: client proof did not verify", c->label);
	expect(&o, o.seen.logout, "%s: no LOGOUT", c->label);
}
END_TEST

/* TLS 1.2 without the extended master secret: tls-unique is not offered
 * (triple handshake), so no -PLUS; the server does advertise -PLUS, hence
 * "n", not "y". */
START_TEST(test_tls12_no_ems)
{
	struct srv_conf conf = { .tls_max = TLS1_2_VERSION, .no_ems = true, .auth = ADV_256 };
	struct outcome o;
	run(&o, "tls1.2 without EMS", &conf, NULL, NULL, PASSWORD);
	expect_err(&o, MA_OK);
	expect_str(&o, "mechanism", o.res.mechanism, "SCRAM-SHA-256");
	expect_str(&o, "gs2 header", o.seen.gs2, "n,,");
	expect(&o, o.seen.cb_match && o.seen.proof_ok, "%s: not verified", o.label);
}
END_TEST

/* ---- 3, 4: gs2 flag y / n ---- */

START_TEST(test_no_plus_advertised)
{
	struct srv_conf conf = { .tls_max = TLS1_3_VERSION, .auth = "AUTH=SCRAM-SHA-256" };
	struct outcome o;
	run(&o, "no -PLUS advertised", &conf, NULL, NULL, PASSWORD);
	expect_err(&o, MA_OK);
	expect_str(&o, "mechanism", o.res.mechanism, "SCRAM-SHA-256");
	/* RFC 5802 6: the client could bind but the server did not offer it */
	expect_str(&o, "gs2 header", o.seen.gs2, "y,,");
	expect(&o, o.seen.cb_match && o.seen.proof_ok, "%s: not verified", o.label);
}
END_TEST

START_TEST(test_plus_excluded_by_config)
{
	struct srv_conf conf = { .tls_max = TLS1_3_VERSION, .auth = ADV_256 };
	struct outcome o;
	run(&o, "-PLUS excluded by mechanisms", &conf, NULL,
	    "mechanisms = {\"SCRAM-SHA-256\", \"PLAIN\"}", PASSWORD);
	expect_err(&o, MA_OK);
	expect_str(&o, "mechanism", o.res.mechanism, "SCRAM-SHA-256");
	/* "y" would tell a -PLUS server that it was downgraded: it must be "n" */
	expect_str(&o, "gs2 header", o.seen.gs2, "n,,");
	expect(&o, o.seen.n_auth == 1, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
}
END_TEST

/*
 * tls-unique on a resumed TLS 1.2 session is the server's Finished, not
 * ours (RFC 5929 3.1: "the first TLS Finished message sent in the most
 * recent handshake"): the client must switch sides, or a resumed login
 * fails.  The server computes its own view of it, independently.
 */
START_TEST(test_plus_tls12_resumed)
{
	struct srv_conf conf = { .tls_max = TLS1_2_VERSION, .auth = ADV_256, .resume = true };
	struct outcome o;
	run(&o, "tls1.2 full handshake", &conf, NULL, NULL, PASSWORD);
	expect_err(&o, MA_OK);
	expect(&o, !o.seen.resumed, "%s: resumed a session nobody made", o.label);
	run(&o, "tls1.2 resumed", &conf, NULL, NULL, PASSWORD);
	expect(&o, o.seen.resumed, "%s: the client did not resume (the test proves nothing)",
	       o.label);
	expect_err(&o, MA_OK);
	expect_str(&o, "mechanism", o.res.mechanism, "SCRAM-SHA-256-PLUS");
	expect(&o, o.seen.cb_checked && o.seen.cb_true && o.seen.cb_match,
	       "%s: the client's tls-unique is not the resumed session's", o.label);
}
END_TEST

/* ---- 5: a channel binding that does not match (MITM) ---- */

START_TEST(test_cb_mismatch)
{
	struct srv_conf conf = { .tls_max = _i == 0 ? TLS1_3_VERSION : TLS1_2_VERSION,
	                         .auth = ADV_256, .mb = MB_CB_FLIP };
	struct outcome o;
	run(&o, _i == 0 ? "cb mismatch/tls1.3" : "cb mismatch/tls1.2", &conf,
	    "mechanism_fallback = no", NULL, PASSWORD);
	expect_err(&o, MA_TLS);
	expect_str(&o, "mechanism", o.res.mechanism, "SCRAM-SHA-256-PLUS");
	expect(&o, o.seen.cb_checked && !o.seen.cb_match && o.seen.cb_true,
	       "%s: the client's binding should be right and the server's flipped", o.label);
	expect(&o, o.seen.cancel, "%s: e= not answered with \"*\"", o.label);
	expect(&o, o.seen.n_auth == 1, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
}
END_TEST

/* Fallback allowed but no PLAIN to fall back to: the rejection ends it. */
START_TEST(test_cb_mismatch_no_plain)
{
	struct srv_conf conf = { .tls_max = TLS1_3_VERSION, .mb = MB_CB_FLIP,
	                         .auth = "AUTH=SCRAM-SHA-256-PLUS AUTH=SCRAM-SHA-256" };
	struct outcome o;
	run(&o, "cb mismatch, no PLAIN", &conf, NULL, NULL, PASSWORD);
	expect_err(&o, MA_TLS);
	expect(&o, o.seen.n_auth == 1, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
}
END_TEST

/*
 * e=channel-bindings-dont-match means someone sits between us and the
 * server: the session is abandoned (MA_TLS, PAM_AUTHINFO_UNAVAIL) and the
 * PLAIN fallback of SPEC 3 must NOT hand the password to that channel, even
 * with mechanism_fallback = yes and PLAIN offered.
 */
START_TEST(test_cb_mismatch_fallback)
{
	struct srv_conf conf = { .tls_max = TLS1_3_VERSION, .auth = ADV_256, .mb = MB_CB_FLIP };
	struct outcome o;
	run(&o, "cb mismatch, fallback", &conf, NULL, NULL, PASSWORD);
	expect(&o, o.seen.n_auth == 1, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
	expect_str(&o, "first mechanism", o.seen.mech[0], "SCRAM-SHA-256-PLUS");
	expect(&o, o.seen.cancel && !o.seen.cb_match, "%s: no mismatch seen", o.label);
	expect_err(&o, MA_TLS);
}
END_TEST

/* ---- 6: hostile SCRAM servers ---- */

static const struct hostile_case {
	const char *label;
	enum misbehave mb;
	const char *iter;
	enum ma_err want;
	bool cancel;          /* the client must have answered "*" */
	bool fast;            /* must fail in < 1 s (no hashing) */
} hostile_cases[] = {
	{ "nonce not extending the client's", MB_NONCE, NULL, MA_PROTOCOL, true, false },
	{ "wrong v=", MB_BAD_V, NULL, MA_PROTOCOL, true, false },
	{ "OK without server-final", MB_NO_FINAL, NULL, MA_PROTOCOL, false, false },
	{ "i=0", MB_NONE, "0", MA_PROTOCOL, true, true },
	{ "i=2147483647", MB_NONE, "2147483647", MA_PROTOCOL, true, true },
	{ "i=4095", MB_NONE, "4095", MA_PROTOCOL, true, true },
	{ "i=1000001", MB_NONE, "1000001", MA_PROTOCOL, true, true },
	{ "server-first not base64", MB_BAD_B64, NULL, MA_PROTOCOL, true, false },
	{ "empty server-final then OK", MB_EMPTY_FINAL, NULL, MA_PROTOCOL, true, false },
};

START_TEST(test_hostile)
{
	const struct hostile_case *c = &hostile_cases[_i];
	struct srv_conf conf = { .tls_max = TLS1_3_VERSION, .auth = ADV_256, .mb = c->mb,
	                         .iter = c->iter };
	struct outcome o;
	run(&o, c->label, &conf, NULL, NULL, PASSWORD);
	expect(&o, o.err != MA_OK, "%s: accepted a hostile server", c->label);
	expect_err(&o, c->want);
	expect(&o, o.seen.n_auth == 1, "%s: %d AUTHENTICATE commands", c->label, o.seen.n_auth);
	if (c->cancel)
		expect(&o, o.seen.cancel, "%s: the server did not receive \"*\"", c->label);
	if (c->fast)
		expect(&o, o.ms < 1000, "%s: took %ld ms", c->label, o.ms);
}
END_TEST

/* ---- 7: wrong password ---- */

/*
 * A wrong password at a -PLUS server: the bare NO to -PLUS is retried once
 * without channel binding (the unbound retry, not the fallback), then,
 * with mechanism_fallback = yes, once with PLAIN: three failed AUTHENTICATEs
 * in all, two with mechanism_fallback = no (pam_mailauth.conf(5) says so).
 */
START_TEST(test_wrong_password_no_fallback)
{
	struct srv_conf conf = { .tls_max = TLS1_3_VERSION, .auth = ADV_256 };
	struct outcome o;
	run(&o, "wrong password, no fallback", &conf, "mechanism_fallback = no", NULL,
	    "pencil-Wrong9");
	expect_err(&o, MA_AUTH_FAILED);
	expect(&o, o.seen.n_auth == 2, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
	expect_str(&o, "first mechanism", o.seen.mech[0], "SCRAM-SHA-256-PLUS");
	expect_str(&o, "second mechanism", o.seen.mech[1], "SCRAM-SHA-256");
	expect_str(&o, "retry gs2 header", o.seen.gs2_last, "n,,");
	expect(&o, o.seen.cb_match && !o.seen.proof_ok, "%s: proof verified?", o.label);
	expect(&o, !o.seen.plain_ok, "%s: PLAIN was sent", o.label);
	expect(&o, o.seen.logout, "%s: no LOGOUT", o.label);
}
END_TEST

START_TEST(test_wrong_password_fallback)
{
	struct srv_conf conf = { .tls_max = TLS1_3_VERSION, .auth = ADV_256 };
	struct outcome o;
	run(&o, "wrong password, fallback", &conf, NULL, NULL, "pencil-Wrong9");
	expect_err(&o, MA_AUTH_FAILED);
	expect(&o, o.seen.n_auth == 3, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
	expect_str(&o, "first mechanism", o.seen.mech[0], "SCRAM-SHA-256-PLUS");
	expect_str(&o, "second mechanism", o.seen.mech[1], "SCRAM-SHA-256");
	expect_str(&o, "third mechanism", o.seen.mech[2], "PLAIN");
	expect_str(&o, "mechanism", o.res.mechanism, "PLAIN");
}
END_TEST

/* ---- 7b: a server that binds tls-unique on TLS 1.3 (Cyrus SASL) ---- */

/*
 * channel_binding = auto offers tls-exporter; Cyrus refuses it with a bare
 * NO; the one unbound retry logs in with SCRAM-SHA-256 and GS2 flag "n".
 * The password itself is never sent (no PLAIN), fallback on or off.
 */
START_TEST(test_cyrus_auto)
{
	struct srv_conf conf = { .tls_max = TLS1_3_VERSION, .auth = ADV_256, .cyrus = true };
	struct outcome o;
	run(&o, _i == 0 ? "cyrus, auto" : "cyrus, auto, no fallback", &conf,
	    _i == 0 ? NULL : "mechanism_fallback = no", NULL, PASSWORD);
	expect_err(&o, MA_OK);
	expect_str(&o, "mechanism", o.res.mechanism, "SCRAM-SHA-256");
	expect_str(&o, "tls_version", o.res.tls_version, "TLSv1.3");
	expect(&o, o.seen.n_auth == 2, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
	expect_str(&o, "first mechanism", o.seen.mech[0], "SCRAM-SHA-256-PLUS");
	expect_str(&o, "first gs2 header", o.seen.gs2, "p=tls-exporter,,");
	expect_str(&o, "second mechanism", o.seen.mech[1], "SCRAM-SHA-256");
	expect_str(&o, "retry gs2 header", o.seen.gs2_last, "n,,");
	expect(&o, o.seen.proof_ok && !o.seen.plain_ok, "%s: not SCRAM-verified", o.label);
	expect(&o, strstr(o.log, "retrying once with SCRAM-SHA-256 without channel binding") != NULL,
	       "%s: the retry is not logged", o.label);
}
END_TEST

/*
 * channel_binding = tls-unique: SCRAM-SHA-256-PLUS with Cyrus's binding on
 * TLS 1.3, first time, no failed authentication (issue 13's done-when).  The
 * server computes the binding itself (SSL_get_peer_finished on its side);
 * cb_true says the client sent exactly that.  The second row resumes the
 * TLS 1.3 session: the first Finished is then the server's.
 */
START_TEST(test_cyrus_tls_unique)
{
	struct srv_conf conf = { .tls_max = TLS1_3_VERSION, .auth = ADV_256, .cyrus = true,
	                         .resume = true };
	struct outcome o;
	for (int round = 0; round < 2; round++) {
		run(&o, round == 0 ? "cyrus, tls-unique" : "cyrus, tls-unique, resumed", &conf, NULL,
		    "channel_binding = tls-unique", PASSWORD);
		expect_err(&o, MA_OK);
		expect(&o, o.seen.resumed == (round == 1), "%s: resumed = %d", o.label, o.seen.resumed);
		expect_str(&o, "mechanism", o.res.mechanism, "SCRAM-SHA-256-PLUS");
		expect_str(&o, "tls_version", o.res.tls_version, "TLSv1.3");
		expect_str(&o, "gs2 header", o.seen.gs2, "p=tls-unique,,");
		expect(&o, o.seen.n_auth == 1, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
		expect(&o, o.seen.cb_checked && o.seen.cb_true && o.seen.cb_match && o.seen.proof_ok,
		       "%s: binding or proof not verified", o.label);
	}
}
END_TEST

/* The wrong password at Cyrus with auto: PLUS, SCRAM, PLAIN (3 failures).
 * With tls-unique the binding is right, but a bare NO to a wrong proof
 * looks the same to the client as a refused binding type, so the unbound
 * retry still runs: PLUS, SCRAM (2 with mechanism_fallback = no). */
START_TEST(test_cyrus_wrong_password)
{
	struct srv_conf conf = { .tls_max = TLS1_3_VERSION, .auth = ADV_256, .cyrus = true };
	struct outcome o;
	run(&o, "cyrus, auto, wrong password", &conf, NULL, NULL, "pencil-Wrong9");
	expect_err(&o, MA_AUTH_FAILED);
	expect(&o, o.seen.n_auth == 3, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
	expect_str(&o, "third mechanism", o.seen.mech[2], "PLAIN");
	run(&o, "cyrus, tls-unique, wrong password, no fallback", &conf, "mechanism_fallback = no",
	    "channel_binding = tls-unique", "pencil-Wrong9");
	expect_err(&o, MA_AUTH_FAILED);
	expect(&o, o.seen.n_auth == 2, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
	expect_str(&o, "first gs2 header", o.seen.gs2, "p=tls-unique,,");
	expect_str(&o, "second mechanism", o.seen.mech[1], "SCRAM-SHA-256");
}
END_TEST

/* channel_binding = none: never -PLUS, GS2 flag "n" (never "y", which a
 * -PLUS server reads as a downgrade), one AUTHENTICATE. */
START_TEST(test_channel_binding_none)
{
	struct srv_conf conf = { .tls_max = _i == 0 ? TLS1_3_VERSION : TLS1_2_VERSION,
	                         .auth = ADV_256 };
	struct outcome o;
	run(&o, _i == 0 ? "channel_binding = none/tls1.3" : "channel_binding = none/tls1.2", &conf,
	    NULL, "channel_binding = none", PASSWORD);
	expect_err(&o, MA_OK);
	expect_str(&o, "mechanism", o.res.mechanism, "SCRAM-SHA-256");
	expect_str(&o, "gs2 header", o.seen.gs2, "n,,");
	expect(&o, o.seen.n_auth == 1, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
}
END_TEST

/*
 * A forced type the server does not bind: tls-unique to an RFC 9266 server
 * on TLS 1.3, tls-exporter to a TLS 1.2 server (with the extended master
 * secret RFC 9266 allows it there).  The server refuses with NO
 * [AUTHENTICATIONFAILED] before SCRAM ends: the unbound retry logs in.
 */
START_TEST(test_forced_type_refused)
{
	struct srv_conf conf = { .tls_max = _i == 0 ? TLS1_3_VERSION : TLS1_2_VERSION,
	                         .auth = ADV_256 };
	struct outcome o;
	run(&o, _i == 0 ? "tls-unique to a tls-exporter server" : "tls-exporter on tls1.2", &conf,
	    "mechanism_fallback = no", _i == 0 ? "channel_binding = tls-unique"
	                                      : "channel_binding = tls-exporter", PASSWORD);
	expect_err(&o, MA_OK);
	expect_str(&o, "first gs2 header", o.seen.gs2,
	           _i == 0 ? "p=tls-unique,," : "p=tls-exporter,,");
	expect(&o, o.seen.n_auth == 2, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
	expect_str(&o, "mechanism", o.res.mechanism, "SCRAM-SHA-256");
	expect_str(&o, "retry gs2 header", o.seen.gs2_last, "n,,");
}
END_TEST

/* tls-exporter on TLS 1.2 without the extended master secret: no binding
 * (RFC 9266 4.2), so no -PLUS at all. */
START_TEST(test_exporter_tls12_no_ems)
{
	struct srv_conf conf = { .tls_max = TLS1_2_VERSION, .no_ems = true, .auth = ADV_256 };
	struct outcome o;
	run(&o, "tls-exporter, tls1.2 without EMS", &conf, NULL, "channel_binding = tls-exporter",
	    PASSWORD);
	expect_err(&o, MA_OK);
	expect_str(&o, "mechanism", o.res.mechanism, "SCRAM-SHA-256");
	expect_str(&o, "gs2 header", o.seen.gs2, "n,,");
	expect(&o, o.seen.n_auth == 1, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
}
END_TEST

/*
 * A server that sent a valid v= has proved it knows the password, so its NO
 * judges these very credentials (a disabled account, say): the PLAIN
 * fallback, meant for servers whose stored hash cannot do SCRAM, would only
 * send the password itself a second time.
 */
START_TEST(test_no_after_valid_signature_no_fallback)
{
	struct srv_conf conf = { .tls_max = TLS1_3_VERSION, .auth = ADV_256, .mb = MB_NO_AFTER_V };
	struct outcome o;
	run(&o, "NO after a valid v=", &conf, NULL, NULL, PASSWORD);
	expect_err(&o, MA_AUTH_FAILED);
	expect(&o, o.seen.proof_ok && o.seen.cb_match, "%s: proof or binding not verified", o.label);
	expect(&o, o.seen.n_auth == 1, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
	expect(&o, !o.seen.plain_ok, "%s: the password was sent with PLAIN", o.label);
}
END_TEST

/*
 * Our GS2 flag "y" (we bind, the server offered no -PLUS) answered with
 * e=server-does-support-channel-binding: RFC 5802 section 6's downgrade
 * signal.  The channel is suspect, like a binding mismatch: MA_TLS, and no
 * PLAIN fallback even though PLAIN is offered and the fallback is on.
 */
START_TEST(test_downgrade_signal_no_fallback)
{
	struct srv_conf conf = { .tls_max = TLS1_3_VERSION, .mb = MB_E_DOWNGRADE,
	                         .auth = "AUTH=SCRAM-SHA-256 AUTH=PLAIN" };
	struct outcome o;
	run(&o, "e=server-does-support-channel-binding", &conf, NULL, NULL, PASSWORD);
	expect_str(&o, "gs2 header", o.seen.gs2, "y,,");
	expect_err(&o, MA_TLS);
	expect(&o, o.seen.cancel, "%s: e= not answered with \"*\"", o.label);
	expect(&o, o.seen.n_auth == 1, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
}
END_TEST

/*
 * Any other server-error is a rejection of the mechanism's exchange (the
 * server may hold a hash SCRAM cannot use): "*", the server's answer, then
 * the one PLAIN retry of SPEC 3 on the same session, or none when
 * mechanism_fallback = no.
 */
START_TEST(test_server_error_then_plain)
{
	struct srv_conf conf = { .tls_max = TLS1_3_VERSION, .auth = ADV_256, .mb = MB_E_PROOF };
	struct outcome o;
	run(&o, "e=invalid-proof, fallback", &conf, NULL, NULL, PASSWORD);
	expect_err(&o, MA_OK);
	expect(&o, o.seen.cancel, "%s: e= not answered with \"*\"", o.label);
	expect(&o, o.seen.n_auth == 2, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
	expect_str(&o, "second mechanism", o.seen.mech[1], "PLAIN");
	expect(&o, o.seen.plain_ok, "%s: PLAIN not verified", o.label);

	run(&o, "e=invalid-proof, no fallback", &conf, "mechanism_fallback = no", NULL, PASSWORD);
	expect_err(&o, MA_AUTH_FAILED);
	expect(&o, o.seen.n_auth == 1, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
}
END_TEST

/* ---- 8: CRAM-MD5 only when listed ---- */

START_TEST(test_cram_not_default)
{
	struct srv_conf conf = { .tls_max = TLS1_3_VERSION, .auth = "AUTH=CRAM-MD5 AUTH=PLAIN" };
	struct outcome o;
	run(&o, "CRAM-MD5 advertised, default config", &conf, NULL, NULL, PASSWORD);
	expect_err(&o, MA_OK);
	expect_str(&o, "mechanism", o.res.mechanism, "PLAIN");
	expect(&o, o.seen.n_auth == 1 && o.seen.plain_ok, "%s: PLAIN not used", o.label);
}
END_TEST

START_TEST(test_cram_listed)
{
	struct srv_conf conf = { .tls_max = TLS1_3_VERSION, .auth = "AUTH=CRAM-MD5 AUTH=PLAIN" };
	struct outcome o;
	bool wrong = _i == 1;
	run(&o, wrong ? "CRAM-MD5 listed, wrong password" : "CRAM-MD5 listed", &conf, NULL,
	    "mechanisms = {\"CRAM-MD5\"}", wrong ? "pencil-Wrong9" : PASSWORD);
	expect_err(&o, wrong ? MA_AUTH_FAILED : MA_OK);
	expect_str(&o, "mechanism", o.res.mechanism, "CRAM-MD5");
	/* PLAIN is not in `mechanisms`: no fallback to it */
	expect(&o, o.seen.n_auth == 1, "%s: %d AUTHENTICATE commands", o.label, o.seen.n_auth);
	expect(&o, o.seen.cram_ok == !wrong, "%s: server-side digest check %d", o.label,
	       o.seen.cram_ok);
}
END_TEST

static Suite *scram_server_suite(void)
{
	Suite *s = suite_create("scram_server");
	TCase *tc = tcase_create("binding");
	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(tc, test_plus, 0, (int)(sizeof(plus_cases) / sizeof(plus_cases[0])));
	tcase_add_test(tc, test_tls12_no_ems);
	tcase_add_test(tc, test_plus_tls12_resumed);
	tcase_add_test(tc, test_no_plus_advertised);
	tcase_add_test(tc, test_plus_excluded_by_config);
	tcase_add_loop_test(tc, test_cb_mismatch, 0, 2);
	tcase_add_test(tc, test_cb_mismatch_no_plain);
	tcase_add_test(tc, test_cb_mismatch_fallback);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(tc, test_hostile, 0,
	                    (int)(sizeof(hostile_cases) / sizeof(hostile_cases[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("verdicts");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_wrong_password_no_fallback);
	tcase_add_test(tc, test_wrong_password_fallback);
	tcase_add_test(tc, test_no_after_valid_signature_no_fallback);
	tcase_add_test(tc, test_downgrade_signal_no_fallback);
	tcase_add_test(tc, test_server_error_then_plain);
	tcase_add_test(tc, test_cram_not_default);
	tcase_add_loop_test(tc, test_cram_listed, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("channel_binding");
	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(tc, test_cyrus_auto, 0, 2);
	tcase_add_test(tc, test_cyrus_tls_unique);
	tcase_add_test(tc, test_cyrus_wrong_password);
	tcase_add_loop_test(tc, test_channel_binding_none, 0, 2);
	tcase_add_loop_test(tc, test_forced_type_refused, 0, 2);
	tcase_add_test(tc, test_exporter_tls12_no_ems);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (fake_certs_setup() == NULL) {
		fprintf(stderr, "test_scram_server: no test certificates (set MA_TEST_CERTS)\n");
		return EXIT_FAILURE;
	}
	return ma_unit_run(scram_server_suite());
}
