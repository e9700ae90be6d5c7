/*
 * tls.c - the TLS client under every connection (SPEC 2).
 *
 * Verification is done by OpenSSL during the handshake: SSL_VERIFY_PEER
 * with the configured (or system) trust store, the expected DNS name or IP
 * address set on the verify parameters, security level 2 and the minimum
 * protocol version.  A handshake that completes has passed all of it; the
 * verify result and the presence of a peer certificate are checked again
 * anyway, then the optional SPKI pins.  Nothing of the application protocol
 * is written before this function returns MA_OK.
 *
 * I/O goes through a small custom BIO so that writes use
 * send(MSG_NOSIGNAL): OpenSSL's own socket BIO uses write(), which raises
 * SIGPIPE on a reset connection and would kill a host process that keeps
 * the default disposition.
 */
#include "tls.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "net.h"
#include "secret.h"

struct ma_tls {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO_METHOD *method;
	int fd;
	bool handshake_done;
	bool broken;          /* a fatal error happened: no close_notify */
};

/* ---- a socket BIO that never raises SIGPIPE ---- */

static int bio_write(BIO *b, const char *buf, int len)
{
	int fd = *(int *)BIO_get_data(b);
	BIO_clear_retry_flags(b);
	ssize_t n = send(fd, buf, (size_t)len, MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static int bio_read(BIO *b, char *buf, int len)
{
	int fd = *(int *)BIO_get_data(b);
	BIO_clear_retry_flags(b);
	ssize_t n = recv(fd, buf, (size_t)len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_read(b);
	return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b; (void)num; (void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void describe_ssl_error(struct ma_tls *t, int ret, char *why, size_t whylen)
{
	long vr = SSL_get_verify_result(t->ssl);
	if (vr != X509_V_OK) {
		snprintf(why, whylen, "certificate verification failed: %s",
		         X509_verify_cert_error_string(vr));
		return;
	}
	unsigned long e = ERR_peek_last_error();
	if (e != 0) {
		char buf[200];
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(why, whylen, "TLS: %s", buf);
	} else if (ret == 0) {
		snprintf(why, whylen, "TLS: connection closed by server");
	} else {
		snprintf(why, whylen, "TLS: %s", errno != 0 ? strerror(errno) : "failed");
	}
}

/*
 * Run an SSL operation until it completes, waiting for the socket in the
 * direction OpenSSL asks for, within the deadline.  Returns the operation's
 * result (> 0 done, <= 0 failed) and the SSL error code in *sslerr.
 */
static int drive(struct ma_tls *t, int (*op)(SSL *, void *, size_t, size_t *),
                 void *buf, size_t len, size_t *done,
                 const struct ma_deadline *dl, enum ma_err *err, int *sslerr)
{
	for (;;) {
		ERR_clear_error();
		errno = 0;
		int r = op(t->ssl, buf, len, done);
		if (r > 0)
			return r;
		*sslerr = SSL_get_error(t->ssl, r);
		short ev;
		if (*sslerr == SSL_ERROR_WANT_READ)
			ev = POLLIN;
		else if (*sslerr == SSL_ERROR_WANT_WRITE)
			ev = POLLOUT;
		else {
			*err = MA_UNAVAILABLE;
			if (*sslerr == SSL_ERROR_SSL || *sslerr == SSL_ERROR_SYSCALL)
				t->broken = true;
			return r;
		}
		enum ma_err w = ma_net_wait(t->fd, ev, dl);
		if (w != MA_OK) {
			*err = w;
			t->broken = true;
			return 0;
		}
	}
}

static int op_connect(SSL *ssl, void *buf, size_t len, size_t *done)
{
	(void)buf; (void)len; (void)done;
	return SSL_connect(ssl);
}

static int op_read(SSL *ssl, void *buf, size_t len, size_t *done)
{
	return SSL_read_ex(ssl, buf, len, done);
}

static int op_write(SSL *ssl, void *buf, size_t len, size_t *done)
{
	return SSL_write_ex(ssl, buf, len, done);
}

/* SPEC 2: `pin = {"sha256//..."}` accepts only those keys, on top of the
 * chain verification. */
static enum ma_err check_pins(struct ma_tls *t, const struct ma_tls_params *p,
                              char *why, size_t whylen)
{
	enum ma_err rc = MA_TLS;
	unsigned char *der = NULL;
	X509 *cert = SSL_get1_peer_certificate(t->ssl);
	if (cert == NULL) {
		snprintf(why, whylen, "server sent no certificate");
		goto out;
	}
	if (p->n_pins == 0) {
		rc = MA_OK;
		goto out;
	}
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	unsigned char hash[EVP_MAX_MD_SIZE];
	unsigned hashlen = 0;
	if (len <= 0 || !EVP_Digest(der, (size_t)len, hash, &hashlen, EVP_sha256(), NULL) ||
	    hashlen != 32) {
		snprintf(why, whylen, "cannot hash the server key");
		goto out;
	}
	for (size_t i = 0; i < p->n_pins; i++) {
		if (ma_secure_equal(hash, p->pins[i], 32)) {
			rc = MA_OK;
			goto out;
		}
	}
	snprintf(why, whylen, "server key matches no configured pin");
out:
	OPENSSL_free(der);
	X509_free(cert);
	return rc;
}

static enum ma_err setup(struct ma_tls *t, const struct ma_tls_params *p,
                         char *why, size_t whylen)
{
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (t->ctx == NULL)
		return MA_NOMEM;
	SSL_CTX_set_min_proto_version(t->ctx, p->min_version >= TLS1_3_VERSION
	                                      ? TLS1_3_VERSION : TLS1_2_VERSION);
	/* Level 2: no RSA/DH under 2048 bits, no SHA-1 signatures (SPEC 2). */
	if (SSL_CTX_get_security_level(t->ctx) < 2)
		SSL_CTX_set_security_level(t->ctx, 2);
	SSL_CTX_set_options(t->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	int ok = (p->ca_file != NULL || p->ca_path != NULL)
		? SSL_CTX_load_verify_locations(t->ctx, p->ca_file, p->ca_path)
		: SSL_CTX_set_default_verify_paths(t->ctx);
	if (!ok) {
		snprintf(why, whylen, "cannot load CA certificates from %s",
		         p->ca_file != NULL ? p->ca_file : p->ca_path != NULL ? p->ca_path : "the system store");
		return MA_TLS;
	}

	t->ssl = SSL_new(t->ctx);
	t->method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ma_socket");
	if (t->ssl == NULL || t->method == NULL)
		return MA_NOMEM;
	BIO_meth_set_write(t->method, bio_write);
	BIO_meth_set_read(t->method, bio_read);
	BIO_meth_set_ctrl(t->method, bio_ctrl);
	BIO_meth_set_create(t->method, bio_create);
	BIO *bio = BIO_new(t->method);
	if (bio == NULL)
		return MA_NOMEM;
	BIO_set_data(bio, &t->fd);
	SSL_set_bio(t->ssl, bio, bio);

	/* RFC 6125: check the reference identity during the handshake.  An IP
	 * literal is matched against IP SANs and is never sent as SNI
	 * (RFC 6066 section 3 allows only host names there). */
	X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
	if (X509_VERIFY_PARAM_set1_ip_asc(vp, p->verify_name) == 1)
		return MA_OK;
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set1_host(t->ssl, p->verify_name) != 1 ||
	    SSL_set_tlsext_host_name(t->ssl, p->verify_name) != 1) {
		snprintf(why, whylen, "invalid server name for TLS");
		return MA_TLS;
	}
	return MA_OK;
}

enum ma_err ma_tls_connect(int fd, const struct ma_tls_params *p,
                           const struct ma_deadline *dl, struct ma_tls **out,
                           char *why, size_t whylen)
{
	enum ma_err rc = MA_TLS;
	struct ma_tls *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (t == NULL)
		return MA_NOMEM;
	t->fd = fd;
	rc = setup(t, p, why, whylen);
	if (rc != MA_OK)
		goto out;

	enum ma_err ioerr = MA_OK;
	int sslerr = 0;
	int r = drive(t, op_connect, NULL, 0, NULL, dl, &ioerr, &sslerr);
	if (r != 1) {
		if (ioerr == MA_TIMEOUT) {
			rc = MA_TIMEOUT;
			snprintf(why, whylen, "TLS handshake timed out");
		} else {
			rc = MA_TLS;
			describe_ssl_error(t, r, why, whylen);
		}
		goto out;
	}
	t->handshake_done = true;
	/* Belt and braces: the handshake cannot succeed with SSL_VERIFY_PEER
	 * and a failed chain, but say so explicitly. */
	if (SSL_get_verify_result(t->ssl) != X509_V_OK) {
		rc = MA_TLS;
		describe_ssl_error(t, 1, why, whylen);
		goto out;
	}
	rc = check_pins(t, p, why, whylen);
	if (rc != MA_OK)
		goto out;
	*out = t;
	t = NULL;
out:
	if (t != NULL)
		t->broken = true;
	ma_tls_free(&t);
	return rc;
}

ssize_t ma_tls_read(struct ma_tls *t, void *buf, size_t len,
                    const struct ma_deadline *dl, enum ma_err *err)
{
	size_t done = 0;
	int sslerr = 0;
	*err = MA_OK;
	int r = drive(t, op_read, buf, len, &done, dl, err, &sslerr);
	if (r > 0)
		return (ssize_t)done;
	if (*err == MA_TIMEOUT)
		return -1;
	if (sslerr == SSL_ERROR_ZERO_RETURN)
		return 0;
	*err = MA_UNAVAILABLE;
	return -1;
}

enum ma_err ma_tls_write(struct ma_tls *t, const void *buf, size_t len,
                         const struct ma_deadline *dl)
{
	const unsigned char *p = buf;
	while (len > 0) {
		size_t done = 0;
		int sslerr = 0;
		enum ma_err err = MA_OK;
		int r = drive(t, op_write, (void *)(uintptr_t)p, len, &done, dl, &err, &sslerr);
		if (r <= 0)
			return err != MA_OK ? err : MA_UNAVAILABLE;
		p += done;
		len -= done;
	}
	return MA_OK;
}

const char *ma_tls_version(const struct ma_tls *t)
{
	return SSL_get_version(t->ssl);
}

const char *ma_tls_cipher(const struct ma_tls *t)
{
	return SSL_get_cipher_name(t->ssl);
}

enum ma_err ma_tls_channel_binding(struct ma_tls *t, const char **type,
                                   unsigned char *buf, size_t buflen, size_t *outlen)
{
	*type = NULL;
	*outlen = 0;
	if (SSL_version(t->ssl) >= TLS1_3_VERSION) {
		/* RFC 9266 section 2: 32 bytes of the exporter with label
		 * "EXPORTER-Channel-Binding" and no context. */
		if (buflen < 32 ||
		    SSL_export_keying_material(t->ssl, buf, 32, "EXPORTER-Channel-Binding",
		                               24, NULL, 0, 0) != 1)
			return MA_TLS;
		*type = "tls-exporter";
		*outlen = 32;
		return MA_OK;
	}
	/* RFC 5929 section 3.1: the first Finished message of the most recent
	 * handshake: ours on a full handshake, the server's on resumption.
	 * Only offered with the extended master secret (RFC 7627), without which
	 * tls-unique is open to the triple-handshake attack. */
	if (SSL_get_extms_support(t->ssl) != 1)
		return MA_TLS;
	size_t n = SSL_session_reused(t->ssl)
		? SSL_get_peer_finished(t->ssl, buf, buflen)
		: SSL_get_finished(t->ssl, buf, buflen);
	if (n == 0 || n > buflen)
		return MA_TLS;
	*type = "tls-unique";
	*outlen = n;
	return MA_OK;
}

void ma_tls_describe_peer(const struct ma_tls *t, char *buf, size_t len)
{
	X509 *cert = SSL_get1_peer_certificate(t->ssl);
	char subject[256] = "?", issuer[256] = "?", expiry[64] = "?";
	if (cert != NULL) {
		X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
		X509_NAME_oneline(X509_get_issuer_name(cert), issuer, sizeof(issuer));
		BIO *mem = BIO_new(BIO_s_mem());
		if (mem != NULL && ASN1_TIME_print(mem, X509_get0_notAfter(cert)) == 1) {
			int n = BIO_read(mem, expiry, (int)sizeof(expiry) - 1);
			expiry[n > 0 ? n : 0] = '\0';
		}
		BIO_free(mem);
		X509_free(cert);
	}
	char es[256], ei[256];
	snprintf(buf, len, "subject=%s issuer=%s expires=%s",
	         ma_escape(es, sizeof(es), subject, strlen(subject)),
	         ma_escape(ei, sizeof(ei), issuer, strlen(issuer)), expiry);
}

void ma_tls_free(struct ma_tls **tp)
{
	struct ma_tls *t = *tp;
	if (t == NULL)
		return;
	if (t->ssl != NULL) {
		/* Send our close_notify and go: waiting for the server's would
		 * only delay the login (RFC 8446 6.1 allows a unilateral close). */
		if (t->handshake_done && !t->broken) {
			ERR_clear_error();
			SSL_shutdown(t->ssl);
		}
		SSL_free(t->ssl);
	}
	SSL_CTX_free(t->ctx);
	BIO_meth_free(t->method);
	ERR_clear_error();
	free(t);
	*tp = NULL;
}
