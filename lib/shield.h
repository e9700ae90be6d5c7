/*
 * shield.h - what the broker remembers between logins, in memory only
 * (SPEC 10): the positive cache (cache_ttl), the negative cache
 * (negative_ttl), the failure throttle (max_failures per failure_window,
 * per user and per remote host) and the mechanism memory.
 *
 * No password is kept: entries hold HMAC-SHA-256(key, user NUL password)
 * under a key drawn at random when the shield is made and wiped with it,
 * compared in constant time.  Sizes are bounded (MA_SHIELD_USERS users,
 * MA_SHIELD_HOSTS remote hosts; the least recently used goes first).
 * Thread-safe: one mutex, never held while hashing.  Time is passed in,
 * so the tests can move it.
 */
#ifndef MA_SHIELD_H
#define MA_SHIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "libmailauth.h"

#define MA_SHIELD_USERS 4096
#define MA_SHIELD_HOSTS 4096
#define MA_SHIELD_MEMORY_TTL 86400       /* mechanism memory: one day */

struct ma_shield_params {
	unsigned cache_ttl;                  /* 0: no positive cache */
	unsigned negative_ttl;               /* 0: no negative cache */
	unsigned max_failures;               /* 0: no throttle */
	unsigned failure_window;
};

struct ma_shield;

/* A new shield (fresh random key).  MA_OK, MA_NOMEM or MA_INTERNAL. */
enum ma_err ma_shield_new(const struct ma_shield_params *p, struct ma_shield **out);

/* Wipe and free; *sh = NULL.  NULL-safe. */
void ma_shield_free(struct ma_shield **sh);

enum ma_shield_verdict {
	MA_SHIELD_ASK,        /* nothing known: ask the servers */
	MA_SHIELD_ACCEPT,     /* positive cache: these credentials succeeded lately */
	MA_SHIELD_REJECT,     /* negative cache: this very password was refused lately */
	MA_SHIELD_THROTTLE,   /* the user or the host failed too often lately */
};

/* What a cache hit or a throttle says, for the answer and the log. */
struct ma_shield_hit {
	char server[64];
	char mechanism[32];
	char tls_version[16];
	char why[160];
};

/*
 * Before any network: what is known of USER with PASSWORD from RHOST (may
 * be NULL or "")?  Order: throttle, positive cache, negative cache.  The
 * throttle comes first so that a throttled guesser learns nothing, not even
 * from a cached success.  A throttled attempt is not counted, so the
 * throttle of a user ends at most failure_window seconds after the last
 * counted failure (a rejection by a server, or an offline verifier that
 * did not match).  A full table gives up first the least recently used
 * entry without recent failures or a cache entry, so that flooding it with
 * other names does not wipe a guesser's failures.
 */
enum ma_shield_verdict ma_shield_check(struct ma_shield *sh, const char *user,
                                       const char *password, const char *rhost, time_t now,
                                       struct ma_shield_hit *hit);

/*
 * After the servers: ERR is the verdict of ma_authenticate_opts (MA_OK,
 * MA_AUTH_FAILED, MA_POLICY, or another error, which changes nothing) and
 * RES what it did.  Success fills the positive cache, forgets this password
 * in the negative cache, resets the user's failures and learns the
 * mechanism.  A rejection drops the user's positive entry, adds the
 * negative one and counts a failure for the user and the host.  A policy
 * refusal does the same but for the negative entry (it is no verdict on
 * the password, and must not outlive the administrator's fix).
 */
void ma_shield_record(struct ma_shield *sh, const char *user, const char *password,
                      const char *rhost, enum ma_err err, const struct ma_result *res,
                      time_t now);

/* A failure that reached no server (an offline verifier that did not match). */
void ma_shield_count_failure(struct ma_shield *sh, const char *user, const char *rhost,
                             time_t now);

/* HMAC-SHA-256(key, user NUL password) into MAC (32 bytes), the shield's
 * key: a name for "these credentials" that holds no password (the broker
 * uses it to share one server login among identical concurrent requests).
 * False when it cannot be computed. */
bool ma_shield_mac(const struct ma_shield *sh, const char *user, const char *password,
                   unsigned char mac[32]);

/* The mechanism memory of USER at server SERVER (a server section name). */
void ma_shield_hint(struct ma_shield *sh, const char *user, const char *server, time_t now,
                    struct ma_server_hint *h);

#endif
