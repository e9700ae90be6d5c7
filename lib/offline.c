/*
 * offline.c - scrypt verifiers for offline logins (offline.h).
 *
 * File format, one entry per line after a version line, all ASCII:
 *
 *   mailauth-offline 1
 *   <user as hex> <stored, unix seconds> <log2 N> <r> <p> <salt base64> <hash base64>
 */
#include "offline.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "base64.h"
#include "log.h"
#include "secret.h"

/*
 * Fix: the bound was 4 MiB, less than a full store takes: with user names
 * of 255 bytes a line is up to 609 bytes (510 of hex, a date of up to 19
 * digits, "20 32 4", 24 + 44 of base64, 6 spaces, the newline), so 10,000
 * of them made a file that the next start refused as too large, losing
 * every verifier.  The bound is now what MA_OFFLINE_MAX longest lines need.
 */
#define LINE_MAX_LEN 609u
#define FILE_MAX (sizeof(HEADER) + (size_t)MA_OFFLINE_MAX * LINE_MAX_LEN)
#define HEADER "mailauth-offline 1"
#define REFRESH_WRITE_S 60      /* a refreshed date alone is written at most this often */

struct entry {
	char user[256];
	time_t stored;
	unsigned log2_n, r, p;
	unsigned char salt[16];
	unsigned char hash[32];
	/* In memory only: HMAC(memo_key, password) of the password that made
	 * this verifier, so that a login with the same password refreshes the
	 * date without paying scrypt again.  Not written to the file. */
	unsigned char memo[32];
	bool memo_set;
};

struct ma_offline {
	bool disabled;                 /* state_dir unsafe or missing: no offline logins */
	pthread_mutex_t lock;
	pthread_mutex_t kdf_lock;
	pthread_cond_t kdf_cond;
	unsigned kdf_running;
	char dir[PATH_MAX];
	char path[PATH_MAX];
	const struct ma_log *log;
	unsigned char memo_key[32];
	struct entry *e;
	size_t n;
	bool dirty;
	time_t written;
};

int ma_offline_scrypt(const char *password, const unsigned char salt[16], unsigned log2_n,
                      unsigned r, unsigned p, unsigned char out[32])
{
	int rc = -1;
	/* Fix: the bounds are checked before 1 << log2_n is computed below: a
	 * shift by 64 or more is undefined (UBSan: log2_n = 64). */
	if (log2_n < 10 || log2_n > 20 || r < 1 || r > 32 || p < 1 || p > 4)
		return -1;
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_SCRYPT, NULL);
	EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
	uint64_t n = (uint64_t)1 << log2_n;
	uint32_t rr = r, pp = p;
	uint64_t maxmem = (uint64_t)128 * r * n * p + (uint64_t)128 * r * 1024 + (1u << 20);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)(uintptr_t)password,
		                                  strlen(password)),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)salt, 16),
		OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &rr),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &pp),
		OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
		OSSL_PARAM_construct_end(),
	};
	if (ctx != NULL && EVP_KDF_derive(ctx, out, 32, params) == 1)
		rc = 0;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return rc;
}

/* scrypt takes 16 MiB: at most MA_OFFLINE_PARALLEL at once. */
static int bounded_scrypt(struct ma_offline *o, const char *password, const struct entry *e,
                          unsigned char out[32])
{
	pthread_mutex_lock(&o->kdf_lock);
	while (o->kdf_running >= MA_OFFLINE_PARALLEL)
		pthread_cond_wait(&o->kdf_cond, &o->kdf_lock);
	o->kdf_running++;
	pthread_mutex_unlock(&o->kdf_lock);
	int rc = ma_offline_scrypt(password, e->salt, e->log2_n, e->r, e->p, out);
	pthread_mutex_lock(&o->kdf_lock);
	o->kdf_running--;
	pthread_cond_signal(&o->kdf_cond);
	pthread_mutex_unlock(&o->kdf_lock);
	return rc;
}

static bool memo_of(const struct ma_offline *o, const char *password, unsigned char out[32])
{
	unsigned len = 0;
	return HMAC(EVP_sha256(), o->memo_key, sizeof(o->memo_key),
	            (const unsigned char *)password, strlen(password), out, &len) != NULL &&
	       len == 32;
}

/* ---- the file ---- */

static void hex(const char *s, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (; *s != '\0'; s++) {
		*out++ = digits[(unsigned char)*s >> 4];
		*out++ = digits[(unsigned char)*s & 15];
	}
	*out = '\0';
}

static int unhex(const char *s, size_t len, char *out, size_t cap)
{
	if (len == 0 || len % 2 != 0 || len / 2 >= cap)
		return -1;
	for (size_t i = 0; i < len; i += 2) {
		int v = 0;
		for (size_t k = 0; k < 2; k++) {
			char c = s[i + k];
			int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
			if (d < 0)
				return -1;
			v = v * 16 + d;
		}
		if (v == 0)
			return -1;
		out[i / 2] = (char)v;
	}
	out[len / 2] = '\0';
	return 0;
}

/* Exactly LEN bytes of base64 in FIELD decoding to N bytes into OUT. */
static int b64_exact(const char *field, unsigned char *out, size_t n)
{
	unsigned char *raw = NULL;
	size_t rlen = 0;
	int rc = ma_base64_decode(field, strlen(field), &raw, &rlen) == 0 && rlen == n ? 0 : -1;
	if (rc == 0)
		memcpy(out, raw, n);
	ma_freezero(raw, rlen);
	return rc;
}

/* One line into E; 0, or -1 when it is not exactly an entry. */
static int parse_line(char *line, struct entry *e)
{
	char *f[8];
	size_t nf = 0;
	for (char *save = NULL, *t = strtok_r(line, " ", &save); t != NULL;
	     t = strtok_r(NULL, " ", &save)) {
		if (nf == 8)
			return -1;
		f[nf++] = t;
	}
	if (nf != 7)
		return -1;
	char *end;
	memset(e, 0, sizeof(*e));
	if (unhex(f[0], strlen(f[0]), e->user, sizeof(e->user)) != 0)
		return -1;
	errno = 0;
	long long stored = strtoll(f[1], &end, 10);
	if (errno != 0 || *end != '\0' || stored <= 0)
		return -1;
	e->stored = (time_t)stored;
	unsigned long v[3];
	for (int i = 0; i < 3; i++) {
		v[i] = strtoul(f[2 + i], &end, 10);
		if (*end != '\0' || f[2 + i][0] == '\0')
			return -1;
	}
	/* Only parameters at least as strong as ours, within sane bounds. */
	if (v[0] < MA_OFFLINE_LOG2_N || v[0] > 20 || v[1] < MA_OFFLINE_R || v[1] > 32 ||
	    v[2] < 1 || v[2] > 4)
		return -1;
	e->log2_n = (unsigned)v[0];
	e->r = (unsigned)v[1];
	e->p = (unsigned)v[2];
	if (b64_exact(f[5], e->salt, sizeof(e->salt)) != 0 ||
	    b64_exact(f[6], e->hash, sizeof(e->hash)) != 0)
		return -1;
	return 0;
}

/* Why the file or its directory must not be trusted, or NULL. */
static const char *unsafe(const struct stat *st, bool dir)
{
	if (dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
		return dir ? "not a directory" : "not a regular file";
	if (st->st_uid != geteuid() && !(dir && st->st_uid == 0))
		return "owned by another user";
	if ((st->st_mode & (dir ? (mode_t)(S_IWGRP | S_IWOTH) : (mode_t)077)) != 0)
		return dir ? "writable by group or others" : "readable or writable by group or others";
	return NULL;
}

static void load(struct ma_offline *o)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, n = 0;
	const char *why = NULL;
	struct entry *e = NULL;

	if (stat(o->dir, &st) != 0) {
		ma_log(o->log, LOG_WARNING, "offline: state_dir %s: %s: no offline logins",
		       o->dir, strerror(errno));
		o->disabled = true;
		return;
	}
	if ((why = unsafe(&st, true)) != NULL) {
		ma_log(o->log, LOG_ERR, "offline: state_dir %s is %s: not used, no offline logins",
		       o->dir, why);
		o->disabled = true;
		return;
	}
	int fd = open(o->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		if (errno != ENOENT)
			ma_log(o->log, LOG_ERR, "offline: %s: %s: ignored", o->path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) != 0 || (why = unsafe(&st, false)) != NULL ||
	    (size_t)st.st_size > FILE_MAX) {
		ma_log(o->log, LOG_ERR, "offline: %s is %s: ignored, never trusted", o->path,
		       why != NULL ? why : "too large or unreadable");
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	e = calloc(MA_OFFLINE_MAX, sizeof(*e));
	if (buf == NULL || e == NULL)
		goto out;
	ssize_t r;
	while (len < (size_t)st.st_size &&
	       (r = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)r;
	buf[len] = '\0';
	why = "not a mailauth-offline 1 file";
	/* NUL bytes first: strtok_r below puts its own. */
	if (memchr(buf, '\0', len) != NULL)
		goto bad;
	char *save = NULL, *line = strtok_r(buf, "\n", &save);
	if (line == NULL || strcmp(line, HEADER) != 0)
		goto bad;
	size_t lineno = 1;
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		lineno++;
		if (n == MA_OFFLINE_MAX || parse_line(line, &e[n]) != 0) {
			why = n == MA_OFFLINE_MAX ? "more entries than allowed" : "a malformed line";
			ma_log(o->log, LOG_ERR, "offline: %s line %zu: %s: the whole file is ignored, "
			       "never trusted", o->path, lineno, why);
			goto out;
		}
		for (size_t k = 0; k < n; k++)
			if (strcmp(e[k].user, e[n].user) == 0) {
				ma_log(o->log, LOG_ERR, "offline: %s line %zu: a user twice: the whole "
				       "file is ignored, never trusted", o->path, lineno);
				goto out;
			}
		n++;
	}
	memcpy(o->e, e, n * sizeof(*e));
	o->n = n;
	ma_log(o->log, LOG_INFO, "offline: %zu verifiers loaded from %s", n, o->path);
	goto out;
bad:
	ma_log(o->log, LOG_ERR, "offline: %s is %s: ignored, never trusted", o->path, why);
out:
	if (e != NULL)
		ma_freezero(e, MA_OFFLINE_MAX * sizeof(*e));
	if (buf != NULL)
		ma_freezero(buf, len + 1);
	close(fd);
}

/* Write every entry to a new file and rename it over the old one.
 * Called with o->lock held. */
static int persist(struct ma_offline *o, time_t now)
{
	char tmp[PATH_MAX + 16];
	int rc = -1;
	snprintf(tmp, sizeof(tmp), "%s/.offline.XXXXXX", o->dir);
	int fd = mkostemp(tmp, O_CLOEXEC);     /* mode 0600 */
	if (fd < 0) {
		ma_log(o->log, LOG_ERR, "offline: cannot write in %s: %s", o->dir, strerror(errno));
		return -1;
	}
	FILE *f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	fprintf(f, "%s\n", HEADER);
	for (size_t i = 0; i < o->n; i++) {
		char uhex[512];
		char *salt = ma_base64_encode(o->e[i].salt, sizeof(o->e[i].salt), NULL);
		char *h = ma_base64_encode(o->e[i].hash, sizeof(o->e[i].hash), NULL);
		hex(o->e[i].user, uhex);
		if (salt != NULL && h != NULL)
			fprintf(f, "%s %lld %u %u %u %s %s\n", uhex, (long long)o->e[i].stored,
			        o->e[i].log2_n, o->e[i].r, o->e[i].p, salt, h);
		free(salt);
		ma_strfreezero(h);
	}
	if (fflush(f) == 0 && fsync(fileno(f)) == 0 && !ferror(f))
		rc = 0;
	if (fclose(f) != 0)
		rc = -1;
	if (rc == 0 && rename(tmp, o->path) != 0)
		rc = -1;
	if (rc != 0) {
		ma_log(o->log, LOG_ERR, "offline: cannot write %s: %s", o->path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	int dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	o->dirty = false;
	o->written = now;
	return 0;
}

enum ma_err ma_offline_open(const char *state_dir, const struct ma_log *log,
                            struct ma_offline **out)
{
	struct ma_offline *o = calloc(1, sizeof(*o));
	*out = NULL;
	if (o == NULL)
		return MA_NOMEM;
	o->e = calloc(MA_OFFLINE_MAX, sizeof(*o->e));
	if (o->e == NULL || RAND_priv_bytes(o->memo_key, sizeof(o->memo_key)) != 1) {
		free(o->e);
		free(o);
		return MA_NOMEM;
	}
	snprintf(o->dir, sizeof(o->dir), "%s", state_dir);
	snprintf(o->path, sizeof(o->path), "%s/%s", state_dir, MA_OFFLINE_FILE);
	o->log = log;
	pthread_mutex_init(&o->lock, NULL);
	pthread_mutex_init(&o->kdf_lock, NULL);
	pthread_cond_init(&o->kdf_cond, NULL);
	load(o);
	*out = o;
	return MA_OK;
}

void ma_offline_free(struct ma_offline **op)
{
	struct ma_offline *o = *op;
	if (o == NULL)
		return;
	pthread_mutex_lock(&o->lock);
	if (o->dirty)
		(void)persist(o, time(NULL));
	pthread_mutex_unlock(&o->lock);
	pthread_mutex_destroy(&o->lock);
	pthread_mutex_destroy(&o->kdf_lock);
	pthread_cond_destroy(&o->kdf_cond);
	ma_freezero(o->e, MA_OFFLINE_MAX * sizeof(*o->e));
	ma_freezero(o, sizeof(*o));
	*op = NULL;
}

static struct entry *find(struct ma_offline *o, const char *user)
{
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->e[i].user, user) == 0)
			return &o->e[i];
	return NULL;
}

enum ma_err ma_offline_store(struct ma_offline *o, const char *user, const char *password,
                             time_t now)
{
	struct entry fresh;
	unsigned char memo[32];
	enum ma_err rc = MA_INTERNAL;

	/* Fix: an empty user was stored too, as a line with an empty first
	 * field, which the next load refused, and with it the whole file (every
	 * verifier lost).  The wire never carries an empty user; the API must
	 * not depend on it. */
	if (o->disabled)
		return MA_CONFIG;
	if (user[0] == '\0' || strlen(user) >= sizeof(fresh.user) || !memo_of(o, password, memo))
		return MA_BAD_INPUT;
	/* The same password as the stored verifier: only the date moves. */
	pthread_mutex_lock(&o->lock);
	struct entry *e = find(o, user);
	if (e != NULL && e->memo_set && CRYPTO_memcmp(e->memo, memo, sizeof(memo)) == 0) {
		e->stored = now;
		o->dirty = true;
		if (now - o->written >= REFRESH_WRITE_S)
			(void)persist(o, now);
		pthread_mutex_unlock(&o->lock);
		ma_wipe(memo, sizeof(memo));
		return MA_OK;
	}
	pthread_mutex_unlock(&o->lock);

	memset(&fresh, 0, sizeof(fresh));
	snprintf(fresh.user, sizeof(fresh.user), "%s", user);
	fresh.stored = now;
	fresh.log2_n = MA_OFFLINE_LOG2_N;
	fresh.r = MA_OFFLINE_R;
	fresh.p = MA_OFFLINE_P;
	memcpy(fresh.memo, memo, sizeof(memo));
	fresh.memo_set = true;
	if (RAND_bytes(fresh.salt, sizeof(fresh.salt)) != 1 ||
	    bounded_scrypt(o, password, &fresh, fresh.hash) != 0) {
		ma_log(o->log, LOG_ERR, "offline: scrypt failed; no verifier stored");
		goto out;
	}
	pthread_mutex_lock(&o->lock);
	e = find(o, user);
	if (e == NULL && o->n == MA_OFFLINE_MAX) {
		size_t oldest = 0;
		for (size_t i = 1; i < o->n; i++)
			if (o->e[i].stored < o->e[oldest].stored)
				oldest = i;
		e = &o->e[oldest];
	} else if (e == NULL) {
		e = &o->e[o->n++];
	}
	*e = fresh;
	o->dirty = true;
	rc = persist(o, now) == 0 ? MA_OK : MA_INTERNAL;
	pthread_mutex_unlock(&o->lock);
out:
	ma_wipe(&fresh, sizeof(fresh));
	ma_wipe(memo, sizeof(memo));
	return rc;
}

enum ma_err ma_offline_verify(struct ma_offline *o, const char *user, const char *password,
                              unsigned ttl, time_t now)
{
	struct entry copy;
	unsigned char hash[32];
	enum ma_err rc = MA_USER_UNKNOWN;

	if (o->disabled)
		return MA_USER_UNKNOWN;
	pthread_mutex_lock(&o->lock);
	struct entry *e = find(o, user);
	bool usable = e != NULL && e->stored <= now && now - e->stored <= (time_t)ttl;
	if (usable)
		copy = *e;
	pthread_mutex_unlock(&o->lock);
	if (!usable)
		return MA_USER_UNKNOWN;
	if (bounded_scrypt(o, password, &copy, hash) != 0) {
		rc = MA_INTERNAL;
		goto out;
	}
	rc = CRYPTO_memcmp(hash, copy.hash, sizeof(hash)) == 0 ? MA_OK : MA_AUTH_FAILED;
out:
	ma_wipe(&copy, sizeof(copy));
	ma_wipe(hash, sizeof(hash));
	return rc;
}

void ma_offline_forget(struct ma_offline *o, const char *user)
{
	pthread_mutex_lock(&o->lock);
	struct entry *e = find(o, user);
	if (e != NULL) {
		*e = o->e[o->n - 1];
		ma_wipe(&o->e[o->n - 1], sizeof(o->e[0]));
		o->n--;
		o->dirty = true;
		(void)persist(o, time(NULL));
	}
	pthread_mutex_unlock(&o->lock);
}

size_t ma_offline_count(struct ma_offline *o)
{
	pthread_mutex_lock(&o->lock);
	size_t n = o->n;
	pthread_mutex_unlock(&o->lock);
	return n;
}
