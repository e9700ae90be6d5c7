/*
 * offline.h - offline logins for the broker (SPEC 10, offline_ttl): after
 * a successful online login, a verifier of the password is kept in
 * STATE_DIR/offline; while every server is unavailable (never after a
 * rejection) a password that matches a verifier stored within offline_ttl
 * is accepted.
 *
 * The verifier is scrypt (RFC 7914, through OpenSSL's EVP_KDF) with a
 * 16-byte random salt per entry and N = 2^14, r = 8, p = 1: 16 MiB and
 * about 110 ms of one core per computation on the 2026 test machine (2^15
 * took 220 ms), so a stolen file costs an attacker that much per guess and
 * per user, and a login while the servers are down costs it once.  At most MA_OFFLINE_MAX entries (the
 * oldest goes), at most MA_OFFLINE_PARALLEL computations at once.
 *
 * The file is written atomically (a temporary file, fsync, rename, fsync of
 * the directory) with mode 0600.  When loading, a file that is not a
 * regular file owned by this process's user with no group or other
 * permission, in a directory nobody else can write to, or that does not
 * parse exactly, is ignored with a log line and never trusted.
 */
#ifndef MA_OFFLINE_H
#define MA_OFFLINE_H

#include <stddef.h>
#include <time.h>

#include "libmailauth.h"

#define MA_OFFLINE_MAX 10000
#define MA_OFFLINE_PARALLEL 2
#define MA_OFFLINE_FILE "offline"

/* Parameters of the verifier (also written into every entry). */
#define MA_OFFLINE_LOG2_N 14
#define MA_OFFLINE_R 8
#define MA_OFFLINE_P 1

struct ma_offline;

/* Open the store of STATE_DIR, loading what is there when it is safe to.
 * MA_OK (also when the file was missing or ignored), or MA_NOMEM. */
enum ma_err ma_offline_open(const char *state_dir, const struct ma_log *log,
                            struct ma_offline **out);

/* Write pending changes, wipe and free; *o = NULL.  NULL-safe. */
void ma_offline_free(struct ma_offline **o);

/* After an online success: store or refresh USER's verifier.  MA_OK, or an
 * error when it could not be computed or written (logged); MA_CONFIG when
 * the state directory was unsafe or missing at open (then the store is
 * off: nothing is stored, every verify is MA_USER_UNKNOWN). */
enum ma_err ma_offline_store(struct ma_offline *o, const char *user, const char *password,
                             time_t now);

/*
 * While every server is unavailable: MA_OK when PASSWORD matches USER's
 * verifier stored at most TTL seconds ago, MA_AUTH_FAILED when a current
 * verifier does not match, MA_USER_UNKNOWN when there is none (or it is
 * older than TTL).
 */
enum ma_err ma_offline_verify(struct ma_offline *o, const char *user, const char *password,
                              unsigned ttl, time_t now);

/* After a rejection: USER's verifier is dropped (and the file rewritten). */
void ma_offline_forget(struct ma_offline *o, const char *user);

/* Entries held (tests). */
size_t ma_offline_count(struct ma_offline *o);

/* scrypt with the parameters above: 32 bytes into OUT.  0 on success. */
int ma_offline_scrypt(const char *password, const unsigned char salt[16], unsigned log2_n,
                      unsigned r, unsigned p, unsigned char out[32]);

#endif
