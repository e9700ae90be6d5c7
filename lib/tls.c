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

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "net.h"
#include "secret.h"
#include "tlsexplain.h"

struct ma_tls {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	/* The deadline of the operation under way; the BIO refuses to read or
	 * write once it has passed (NULL: none, while closing). */
	const struct ma_deadline *dl;
	bool expired;         /* the BIO stopped because dl passed */
	unsigned tickets;     /* session tickets the server sent on this connection */
	unsigned tickets_kept;
	bool handshake_done;
	bool verified;        /* chain, name and pins all passed */
	char session_key[320];
	bool broken;          /* a fatal error happened: no close_notify */
	/* For the explanation of a failed handshake: the first bytes the
	 * server sent and the first certificate check that failed. */
	struct ma_tls_failure fail;
};

/* ---- a socket BIO that never raises SIGPIPE, and knows the deadline ----
 *
 * OpenSSL loops inside one SSL_connect / SSL_read for as long as records
 * keep arriving that are not for the application: plaintext HelloRequest
 * messages before the ServerHello (which RFC 5246 7.4.1.1 tells a client to
 * ignore, and anyone on the path can send), or one TLS 1.3 session ticket
 * after another.  It only comes back to us when the socket is empty, so a
 * deadline checked between calls is never looked at while a sender keeps
 * going.  The deadline therefore travels with the BIO: every read and write
 * fails once it has passed, and drive() reports MA_TIMEOUT.
 */

static bool bio_expired(struct ma_tls *t)
{
	if (t->dl == NULL || ma_deadline_remaining_ms(t->dl) > 0)
		return false;
	t->expired = true;
	errno = ETIMEDOUT;
	return true;
}

static int bio_write(BIO *b, const char *buf, int len)
{
	struct ma_tls *t = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (bio_expired(t))
		return -1;
	ssize_t n = send(t->fd, buf, (size_t)len, MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static int bio_read(BIO *b, char *buf, int len)
{
	struct ma_tls *t = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (bio_expired(t))
		return -1;
	ssize_t n = recv(t->fd, buf, (size_t)len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_read(b);
	else if (n > 0)
		ma_net_quickack(t->fd);
	/* Keep the first bytes of the handshake: "* OK" or "220 " there
	 * means a plaintext port (porthint.h), a ServerHello's version field
	 * which TLS version the server chose. */
	if (n > 0 && !t->handshake_done && t->fail.n_first < sizeof(t->fail.first)) {
		size_t k = sizeof(t->fail.first) - t->fail.n_first;
		if (k > (size_t)n)
			k = (size_t)n;
		memcpy(t->fail.first + t->fail.n_first, buf, k);
		t->fail.n_first += k;
	}
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

/*
 * The verify callback only watches: it records the first check that failed
 * (error, depth, that certificate) for the explanation, and returns
 * OpenSSL's own verdict unchanged, so verification stays OpenSSL's.
 */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct ma_tls *t = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
	if (!ok && t != NULL && t->fail.verify_error == X509_V_OK) {
		int e = X509_STORE_CTX_get_error(xs);
		t->fail.verify_error = e != X509_V_OK ? e : X509_V_ERR_UNSPECIFIED;
		t->fail.depth = X509_STORE_CTX_get_error_depth(xs);
		ma_tlsexplain_cert_info(X509_STORE_CTX_get_current_cert(xs), &t->fail.cert);
	}
	return ok;
}

static void describe_ssl_error(struct ma_tls *t, const struct ma_tls_params *p, int ret,
                               char *why, size_t whylen)
{
	struct ma_tls_failure *f = &t->fail;
	long vr = SSL_get_verify_result(t->ssl);
	if (vr != X509_V_OK && f->verify_error == X509_V_OK) {
		X509 *cert = SSL_get1_peer_certificate(t->ssl);
		f->verify_error = (int)vr;
		f->depth = 0;
		ma_tlsexplain_cert_info(cert, &f->cert);
		X509_free(cert);
	}
	f->ssl_error = ERR_peek_last_error();
	f->port = p->port;
	f->min_version = p->min_version;
	f->verify_name = p->verify_name;
	f->ca_file = p->ca_file;
	f->ca_path = p->ca_path;
	enum ma_first_bytes kind = ma_porthint_classify(f->first, f->n_first);
	if (kind == MA_FIRST_GREETING && f->n_first < sizeof(f->first)) {
		/* OpenSSL stopped at the 5-byte "record header": read a little
		 * more of the greeting to quote it.  The connection is lost
		 * anyway; nothing waits. */
		ssize_t n = recv(t->fd, f->first + f->n_first, sizeof(f->first) - f->n_first,
		                 MSG_DONTWAIT);
		if (n > 0)
			f->n_first += (size_t)n;
	}
	if (f->verify_error != X509_V_OK || f->ssl_error != 0 || kind == MA_FIRST_GREETING) {
		ma_tlsexplain(f, why, whylen);
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
	t->dl = dl;
	for (;;) {
		ERR_clear_error();
		errno = 0;
		int r = op(t->ssl, buf, len, done);
		if (r > 0)
			return r;
		*sslerr = SSL_get_error(t->ssl, r);
		if (t->expired) {
			*err = MA_TIMEOUT;
			t->broken = true;
			return r < 0 ? r : 0;
		}
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
	ma_tlsexplain_cert_info(cert, &t->fail.cert);
	ma_tlsexplain_pin(hash, p->pins, p->n_pins, &t->fail.cert, why, whylen);
out:
	OPENSSL_free(der);
	X509_free(cert);
	return rc;
}

/* ---- contexts and sessions, shared by the logins of one process ----
 *
 * Loading the trust store costs more CPU than the rest of a login, and a
 * resumed TLS session saves the server a full handshake.  Long-lived hosts
 * (web applications, portals) therefore share, under one mutex:
 *  - an SSL_CTX per (ca_file, ca_path, minimum version), rebuilt when a CA
 *    file or directory changes (device, inode, size, mtime) or after
 *    CTX_TTL seconds, at most CTX_CACHE of them;
 *  - per context, the last TLS sessions (at most SESSIONS_PER_KEY) of each
 *    (verify_name, pins): each is used once (RFC 8446 C.4) and replaced by
 *    the tickets of the new connection, and none is ever offered to another
 *    server name or under other CA settings, because both are its key.
 * A resumed session carries the peer certificate and the verification
 * result of the full handshake that created it, under the same key; pins
 * are checked again on the stored certificate.
 */
#define CTX_CACHE 8
#define CTX_TTL 300
#define SESSIONS_PER_CTX 16
#define SESSIONS_PER_KEY 2
#define MAX_TICKETS_PER_CONNECTION 4

struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	uint64_t entries;             /* directories: see dir_identity() */
};

struct cached_session {
	char key[320];
	SSL_SESSION *sess;
};

struct ctx_entry {
	SSL_CTX *ctx;                 /* one reference held by the cache */
	char key[2 * PATH_MAX + 16];
	struct file_id ids[2];        /* CA file and directory (or the defaults) */
	time_t created;
	struct cached_session sessions[SESSIONS_PER_CTX];
	unsigned next_session;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ctx_entry ctx_cache[CTX_CACHE];
static unsigned ctx_next;
static pid_t cache_pid;           /* the process the cached sessions belong to */

/*
 * fork() copies the lock as it is.  In a multithreaded host (a web server
 * that forks a CGI helper, a daemon with a worker pool) another thread may
 * hold it at that moment, and the child, which has only the forking thread,
 * would wait for it forever at its first login.  The usual remedy: the
 * lock is taken before fork() and released on both sides after it, so the
 * child gets it free and the cache in a consistent state.  Registered once,
 * on first use; the module is linked -z nodelete, so the handlers stay
 * mapped after pam_end() dlclose()s it.
 */
static void cache_prepare(void)
{
	pthread_mutex_lock(&cache_lock);
}

static void cache_after_fork(void)
{
	pthread_mutex_unlock(&cache_lock);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
	pthread_atfork(cache_prepare, cache_after_fork, cache_after_fork);
}

void ma_tls_cache_lock_for_test(bool hold)
{
	pthread_once(&atfork_once, atfork_register);
	if (hold)
		pthread_mutex_lock(&cache_lock);
	else
		pthread_mutex_unlock(&cache_lock);
}

static void file_identity(const char *path, struct file_id *id)
{
	struct stat st;
	memset(id, 0, sizeof(*id));
	if (path != NULL && stat(path, &st) == 0) {
		id->dev = st.st_dev;
		id->ino = st.st_ino;
		id->size = st.st_size;
		id->mtime = st.st_mtim;
	}
}

/*
 * A CA directory's identity covers its entries, not only the directory: a
 * certificate rewritten in place (same name) changes neither the
 * directory's mtime nor its size, and must still take effect at the next
 * login.  Each entry adds a hash of its name and of what stat() says of its
 * target (inode, size, mtime, ctime; ctime cannot be set back); the sum
 * does not depend on readdir's order.  Not a security boundary (whoever can
 * write the directory chooses the trust anchors anyway), only freshness.
 */
static uint64_t fnv1a(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void dir_identity(const char *dir, struct file_id *id)
{
	file_identity(dir, id);
	DIR *d = dir != NULL ? opendir(dir) : NULL;   /* O_CLOEXEC in glibc */
	if (d == NULL)
		return;
	uint64_t sum = 0, count = 0;
	struct dirent *e;
	// cppcheck-suppress readdirCalled
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, 0) != 0)
			continue;
		uint64_t h = fnv1a(14695981039346656037ULL, e->d_name, strlen(e->d_name));
		h = fnv1a(h, &st.st_ino, sizeof(st.st_ino));
		h = fnv1a(h, &st.st_size, sizeof(st.st_size));
		h = fnv1a(h, &st.st_mtim, sizeof(st.st_mtim));
		h = fnv1a(h, &st.st_ctim, sizeof(st.st_ctim));
		sum += h;
		count++;
	}
	closedir(d);
	id->entries = sum ^ (count << 48);
}

/*
 * The trust anchors come from the configuration (ca_file / ca_path) or, when
 * neither is set, from the locations compiled into OpenSSL
 * (X509_get_default_cert_file/dir: /usr/lib/ssl/cert.pem and /usr/lib/ssl/certs
 * on Debian, which lead to /etc/ssl).  Never from the environment: the module
 * runs inside su and other setuid programs with the calling user's
 * environment, and SSL_CERT_FILE=/home/me/ca.pem would let that user choose
 * whom the module trusts (OpenSSL's own loader ignores these variables in
 * setuid processes; the module read them with getenv until 0.1.1).  Not
 * secure_getenv either: a root sshd's environment is not the administrator's
 * choice of trust anchors.
 */
static const char *system_ca_file(void)
{
	return X509_get_default_cert_file();
}

static const char *system_ca_dir(void)
{
	return X509_get_default_cert_dir();
}

static void ca_identity(const struct ma_tls_params *p, struct file_id ids[2])
{
	if (p->ca_file != NULL || p->ca_path != NULL) {
		file_identity(p->ca_file, &ids[0]);
		if (p->ca_path != NULL)
			dir_identity(p->ca_path, &ids[1]);
		else
			file_identity(NULL, &ids[1]);
		return;
	}
	/* The system store: the bundle file, or the hashed directory when
	 * there is no bundle (load_trust below uses the same rule). */
	file_identity(system_ca_file(), &ids[0]);
	if (ids[0].ino == 0 || ids[0].size == 0)
		dir_identity(system_ca_dir(), &ids[1]);
	else
		file_identity(system_ca_dir(), &ids[1]);
}

static void entry_clear(struct ctx_entry *e)
{
	for (size_t i = 0; i < SESSIONS_PER_CTX; i++) {
		SSL_SESSION_free(e->sessions[i].sess);
		e->sessions[i].sess = NULL;
	}
	SSL_CTX_free(e->ctx);
	memset(e, 0, sizeof(*e));
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess);

/*
 * Trust anchors are read here rather than by SSL_CTX_load_verify_locations:
 * OpenSSL opens CA files with fopen("r") and hashed directories lazily
 * during each verification, neither close-on-exec, and a host process that
 * forks and execs from another thread would inherit them (SPEC 7).  Every
 * certificate of the file, or of every file in the directory, goes into
 * the store; returns how many.
 */
static size_t load_ca_file(X509_STORE *store, const char *path)
{
	size_t n = 0;
	if (path == NULL)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return 0;
	struct stat st;
	FILE *f = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? fdopen(fd, "r") : NULL;
	if (f == NULL) {
		close(fd);
		return 0;
	}
	BIO *bio = BIO_new_fp(f, BIO_CLOSE);
	if (bio == NULL) {
		fclose(f);
		return 0;
	}
	STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
	for (int i = 0; infos != NULL && i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *info = sk_X509_INFO_value(infos, i);
		if (info->x509 != NULL && X509_STORE_add_cert(store, info->x509) == 1)
			n++;
		if (info->crl != NULL)
			X509_STORE_add_crl(store, info->crl);
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(bio);
	ERR_clear_error();     /* duplicates and non-PEM files are not errors */
	return n;
}

static size_t load_ca_dir(X509_STORE *store, const char *dir)
{
	size_t n = 0;
	DIR *d = dir != NULL ? opendir(dir) : NULL;   /* glibc opens directories O_CLOEXEC */
	if (d == NULL)
		return 0;
	struct dirent *e;
	/* readdir() on a DIR of our own is thread-safe in glibc; readdir_r()
	 * is the deprecated one (readdir(3)). */
	// cppcheck-suppress readdirCalled
	while ((e = readdir(d)) != NULL) {
		char path[PATH_MAX];
		if (e->d_name[0] == '.')
			continue;
		int len = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (len > 0 && (size_t)len < sizeof(path))
			n += load_ca_file(store, path);
	}
	closedir(d);
	return n;
}

static size_t load_trust(X509_STORE *store, const struct ma_tls_params *p)
{
	size_t n = 0;
	if (p->ca_file != NULL || p->ca_path != NULL) {
		if (p->ca_file != NULL)
			n += load_ca_file(store, p->ca_file);
		if (p->ca_path != NULL)
			n += load_ca_dir(store, p->ca_path);
		return n;
	}
	/* The system store (see system_ca_file): OpenSSL's compiled-in
	 * bundle file, else its hashed directory. */
	n = load_ca_file(store, system_ca_file());
	if (n == 0)
		n = load_ca_dir(store, system_ca_dir());
	return n;
}

static SSL_CTX *ctx_create(const struct ma_tls_params *p, char *why, size_t whylen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		return NULL;
	/*
	 * SSL_CTX_new() has applied the "system_default" section of OpenSSL's
	 * configuration file, which OPENSSL_CONF names in any process that is
	 * not setuid.  That section may set a separate verification store
	 * (VerifyCAFile, VerifyCAPath, VerifyCAStore) that would replace the
	 * trust anchors below, and options that weaken the connection.  Every
	 * setting that decides whom we trust is therefore set here again,
	 * after it: the configuration may make TLS stricter (a higher minimum
	 * version or security level, fewer ciphers), never looser.
	 */
	SSL_CTX_set1_verify_cert_store(ctx, NULL);
	SSL_CTX_set_min_proto_version(ctx, p->min_version >= TLS1_3_VERSION
	                                   ? TLS1_3_VERSION : TLS1_2_VERSION);
	/* Level 2: no RSA/DH under 2048 bits, no SHA-1 signatures (SPEC 2). */
	if (SSL_CTX_get_security_level(ctx) < 2)
		SSL_CTX_set_security_level(ctx, 2);
	SSL_CTX_clear_options(ctx, SSL_OP_LEGACY_SERVER_CONNECT |
	                      SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION |
	                      SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	/* Hand every record that is not application data back to drive(),
	 * which looks at the deadline, instead of reading on (see bio_read). */
	SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	X509_VERIFY_PARAM_clear_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN |
	                              X509_V_FLAG_NO_CHECK_TIME | X509_V_FLAG_ALLOW_PROXY_CERTS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	if (load_trust(store, p) == 0) {
		snprintf(why, whylen, "cannot load CA certificates from %s",
		         p->ca_file != NULL ? p->ca_file : p->ca_path != NULL ? p->ca_path : "the system store");
		SSL_CTX_free(ctx);
		ERR_clear_error();
		return NULL;
	}
	/* OpenSSL fills each certificate's extension cache on first use, and
	 * two handshakes sharing this context could race on it (an OpenSSL
	 * issue seen under ThreadSanitizer): fill it now, while only this
	 * thread can see the context. */
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
		if (x != NULL)
			X509_check_purpose(x, -1, 0);
	}
	ERR_clear_error();
	return ctx;
}

/* A referenced SSL_CTX for P (the caller frees it), or NULL with WHY. */
static SSL_CTX *ctx_get(const struct ma_tls_params *p, char *why, size_t whylen)
{
	char key[sizeof(ctx_cache[0].key)];
	struct file_id ids[2];
	SSL_CTX *ctx = NULL;
	time_t now = time(NULL);

	pthread_once(&atfork_once, atfork_register);
	snprintf(key, sizeof(key), "%s|%s|%d", p->ca_file ? p->ca_file : "",
	         p->ca_path ? p->ca_path : "", p->min_version);
	ca_identity(p, ids);
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < CTX_CACHE; i++) {
		struct ctx_entry *e = &ctx_cache[i];
		if (e->ctx == NULL || strcmp(e->key, key) != 0)
			continue;
		if (memcmp(e->ids, ids, sizeof(ids)) != 0 || now - e->created > CTX_TTL ||
		    now < e->created) {
			entry_clear(e);          /* the CA changed, or too old */
			continue;
		}
		SSL_CTX_up_ref(e->ctx);
		ctx = e->ctx;
		break;
	}
	pthread_mutex_unlock(&cache_lock);
	if (ctx != NULL)
		return ctx;

	ctx = ctx_create(p, why, whylen);     /* slow: outside the lock */
	if (ctx == NULL)
		return NULL;
	pthread_mutex_lock(&cache_lock);
	struct ctx_entry *e = &ctx_cache[ctx_next++ % CTX_CACHE];
	entry_clear(e);
	e->ctx = ctx;
	SSL_CTX_up_ref(ctx);
	snprintf(e->key, sizeof(e->key), "%s", key);
	memcpy(e->ids, ids, sizeof(ids));
	e->created = now;
	pthread_mutex_unlock(&cache_lock);
	return ctx;
}

/* verify_name plus a digest of the pins: a session is only ever offered
 * to the same name under the same pins (and, by its context, CA). */
static void session_key(const struct ma_tls_params *p, char *key, size_t len)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	size_t o = (size_t)snprintf(key, len, "%s|", p->verify_name);
	if (p->n_pins == 0 || o >= len)
		return;
	if (!EVP_Digest(p->pins, p->n_pins * 32, d, &dlen, EVP_sha256(), NULL))
		dlen = 0;
	for (unsigned i = 0; i < dlen && o + 3 <= len; i++, o += 2)
		snprintf(key + o, len - o, "%02x", d[i]);
}

/*
 * A host that forks after logging in (a pre-forking web server, a daemon
 * that loaded the module before fork()) hands every child a copy of the
 * cache: each would offer the same "single-use" tickets, which RFC 8446
 * C.4 forbids (they link the children's connections).  Sessions belong to
 * the process that made them; a child drops its copies on first use.
 * Called with cache_lock held.
 */
static void sessions_forget_after_fork(void)
{
	pid_t me = getpid();
	if (cache_pid == me)
		return;
	for (size_t i = 0; i < CTX_CACHE; i++) {
		for (size_t k = 0; k < SESSIONS_PER_CTX; k++) {
			SSL_SESSION_free(ctx_cache[i].sessions[k].sess);
			ctx_cache[i].sessions[k].sess = NULL;
		}
	}
	cache_pid = me;
}

/* Take (remove) the cached session for T's key: used at most once. */
static SSL_SESSION *session_take(SSL_CTX *ctx, const char *key)
{
	SSL_SESSION *sess = NULL;
	pthread_mutex_lock(&cache_lock);
	sessions_forget_after_fork();
	for (size_t i = 0; i < CTX_CACHE && sess == NULL; i++) {
		struct ctx_entry *e = &ctx_cache[i];
		if (e->ctx != ctx)
			continue;
		for (size_t k = 0; k < SESSIONS_PER_CTX; k++) {
			if (e->sessions[k].sess != NULL && strcmp(e->sessions[k].key, key) == 0) {
				sess = e->sessions[k].sess;
				e->sessions[k].sess = NULL;
				break;
			}
		}
	}
	pthread_mutex_unlock(&cache_lock);
	return sess;
}

/* Keep SESS (one reference, taken over) under T's key; 1 when kept. */
static int session_store(struct ma_tls *t, SSL_SESSION *sess)
{
	SSL_CTX *ctx = SSL_get_SSL_CTX(t->ssl);
	int kept = 0;

	if (!t->verified || !SSL_SESSION_is_resumable(sess))
		return 0;
	pthread_mutex_lock(&cache_lock);
	sessions_forget_after_fork();
	for (size_t i = 0; i < CTX_CACHE && !kept; i++) {
		struct ctx_entry *e = &ctx_cache[i];
		if (e->ctx != ctx)
			continue;
		/* Up to SESSIONS_PER_KEY per key: servers send two tickets after a
		 * full handshake and none after a resumed one (Postfix), so keeping
		 * both saves a full handshake every other login. */
		struct cached_session *slot = NULL, *same = NULL;
		size_t n_same = 0;
		for (size_t k = 0; k < SESSIONS_PER_CTX; k++) {
			if (e->sessions[k].sess != NULL && strcmp(e->sessions[k].key, t->session_key) == 0) {
				n_same++;
				if (same == NULL)
					same = &e->sessions[k];
			}
		}
		if (n_same >= SESSIONS_PER_KEY)
			slot = same;
		for (size_t k = 0; k < SESSIONS_PER_CTX && slot == NULL; k++)
			if (e->sessions[k].sess == NULL)
				slot = &e->sessions[k];
		if (slot == NULL)
			slot = &e->sessions[e->next_session++ % SESSIONS_PER_CTX];
		SSL_SESSION_free(slot->sess);
		slot->sess = sess;
		snprintf(slot->key, sizeof(slot->key), "%s", t->session_key);
		kept = 1;
	}
	pthread_mutex_unlock(&cache_lock);
	return kept;
}

/* OpenSSL hands us each new session: TLS 1.3 tickets arrive after the
 * handshake (and after our checks); a TLS 1.2 session is announced during
 * the handshake, before the pins are checked, so it is refused here and
 * stored by ma_tls_connect() once everything passed. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct ma_tls *t = SSL_get_app_data(ssl);
	if (t == NULL)
		return 0;
	/* RFC 8446 4.6.1 lets a server send tickets at any time, as many as it
	 * likes; each costs us a parse and the process-wide lock.  Servers send
	 * one or two after a handshake (OpenSSL two, Postfix one): keep the
	 * first MAX_TICKETS_PER_CONNECTION and drop the rest unseen. */
	if (++t->tickets > MAX_TICKETS_PER_CONNECTION)
		return 0;
	int kept = session_store(t, sess);
	t->tickets_kept += (unsigned)kept;
	return kept;
}

static pthread_once_t method_once = PTHREAD_ONCE_INIT;
static BIO_METHOD *socket_method;   /* immutable once made; lives as long as the process */

static void method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ma_socket");
	if (m == NULL)
		return;
	BIO_meth_set_write(m, bio_write);
	BIO_meth_set_read(m, bio_read);
	BIO_meth_set_ctrl(m, bio_ctrl);
	BIO_meth_set_create(m, bio_create);
	socket_method = m;
}

static enum ma_err setup(struct ma_tls *t, const struct ma_tls_params *p,
                         char *why, size_t whylen)
{
	t->ctx = ctx_get(p, why, whylen);
	if (t->ctx == NULL)
		return why[0] != '\0' ? MA_TLS : MA_NOMEM;
	pthread_once(&method_once, method_init);
	if (socket_method == NULL)
		return MA_NOMEM;
	session_key(p, t->session_key, sizeof(t->session_key));

	t->ssl = SSL_new(t->ctx);
	if (t->ssl == NULL)
		return MA_NOMEM;
	SSL_set_app_data(t->ssl, t);
	/* The context's mode (SSL_VERIFY_PEER) with a callback that records
	 * what failed, for the explanation. */
	SSL_set_verify(t->ssl, SSL_VERIFY_PEER, verify_cb);
	BIO *bio = BIO_new(socket_method);
	if (bio == NULL)
		return MA_NOMEM;
	BIO_set_data(bio, t);
	SSL_set_bio(t->ssl, bio, bio);
	SSL_SESSION *sess = session_take(t->ctx, t->session_key);
	if (sess != NULL) {
		SSL_set_session(t->ssl, sess);
		SSL_SESSION_free(sess);
	}

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
			describe_ssl_error(t, p, r, why, whylen);
		}
		goto out;
	}
	t->handshake_done = true;
	/* Belt and braces: the handshake cannot succeed with SSL_VERIFY_PEER
	 * and a failed chain, but say so explicitly. */
	if (SSL_get_verify_result(t->ssl) != X509_V_OK) {
		rc = MA_TLS;
		describe_ssl_error(t, p, 1, why, whylen);
		goto out;
	}
	rc = check_pins(t, p, why, whylen);
	if (rc != MA_OK)
		goto out;
	t->verified = true;
	if (SSL_version(t->ssl) < TLS1_3_VERSION) {
		SSL_SESSION *sess = SSL_get1_session(t->ssl);
		if (sess != NULL && !session_store(t, sess))
			SSL_SESSION_free(sess);
	}
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

bool ma_tls_data_waiting(struct ma_tls *t)
{
	char c;
	size_t n = 0;
	if (SSL_pending(t->ssl) > 0)
		return true;
	/* The socket is non-blocking: SSL_peek processes whatever records
	 * have arrived (tickets included) and reports WANT_READ otherwise. */
	ERR_clear_error();
	int r = SSL_peek_ex(t->ssl, &c, 1, &n);
	ERR_clear_error();
	return r == 1 && n > 0;
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

unsigned ma_tls_tickets_kept(const struct ma_tls *t)
{
	return t->tickets_kept;
}

bool ma_tls_resumed(const struct ma_tls *t)
{
	return SSL_session_reused(t->ssl) == 1;
}

const char *ma_tls_version(const struct ma_tls *t)
{
	return SSL_get_version(t->ssl);
}

const char *ma_tls_cipher(const struct ma_tls *t)
{
	return SSL_get_cipher_name(t->ssl);
}

/* RFC 9266 section 2: 32 bytes of the exporter with label
 * "EXPORTER-Channel-Binding" and no context. */
static enum ma_err cb_exporter(struct ma_tls *t, const char **type, unsigned char *buf,
                               size_t buflen, size_t *outlen)
{
	if (buflen < 32 ||
	    SSL_export_keying_material(t->ssl, buf, 32, "EXPORTER-Channel-Binding",
	                               24, NULL, 0, 0) != 1)
		return MA_TLS;
	*type = "tls-exporter";
	*outlen = 32;
	return MA_OK;
}

/* RFC 5929 section 3.1: "the first TLS Finished message sent (note: the
 * Finished struct, not the TLSPlaintext record it is enclosed in) in the
 * most recent TLS handshake": ours on a full handshake, the server's on
 * resumption.  On TLS 1.3 the server's Finished comes first in every
 * handshake, and tls-unique is not defined there (RFC 8446 appendix C.5,
 * RFC 9266 section 1); but Cyrus SASL (and every OpenSSL server that asks
 * SSL_get_finished / SSL_get_peer_finished the TLS 1.2 way) binds exactly
 * this on TLS 1.3, so the same choice is what interoperates.  It is still unique to the
 * connection: a TLS 1.3 Finished is a MAC over the whole transcript. */
static enum ma_err cb_unique(struct ma_tls *t, const char **type, unsigned char *buf,
                             size_t buflen, size_t *outlen)
{
	size_t n = SSL_session_reused(t->ssl)
		? SSL_get_peer_finished(t->ssl, buf, buflen)
		: SSL_get_finished(t->ssl, buf, buflen);
	if (n == 0 || n > buflen)
		return MA_TLS;
	*type = "tls-unique";
	*outlen = n;
	return MA_OK;
}

enum ma_err ma_tls_channel_binding(struct ma_tls *t, enum ma_cb_mode mode, const char **type,
                                   unsigned char *buf, size_t buflen, size_t *outlen)
{
	*type = NULL;
	*outlen = 0;
	if (mode == MA_CB_NONE)
		return MA_TLS;
	if (SSL_version(t->ssl) >= TLS1_3_VERSION)
		return mode == MA_CB_TLS_UNIQUE ? cb_unique(t, type, buf, buflen, outlen)
		                                : cb_exporter(t, type, buf, buflen, outlen);
	/* TLS 1.2: both types only with the extended master secret (RFC 7627):
	 * without it tls-unique is open to the triple-handshake attack, and
	 * RFC 9266 section 4.2 allows tls-exporter on TLS 1.2 only with it. */
	if (SSL_get_extms_support(t->ssl) != 1)
		return MA_TLS;
	return mode == MA_CB_TLS_EXPORTER ? cb_exporter(t, type, buf, buflen, outlen)
	                                  : cb_unique(t, type, buf, buflen, outlen);
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
			t->dl = NULL;        /* one non-blocking send, whatever the time */
			SSL_shutdown(t->ssl);
		}
		SSL_free(t->ssl);
	}
	SSL_CTX_free(t->ctx);
	ERR_clear_error();
	free(t);
	*tp = NULL;
}
