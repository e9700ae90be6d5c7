/*
 * shield.c - the broker's memory of users and hosts (shield.h).
 *
 * Two bounded tables (users, remote hosts) in one allocation each, with
 * chained hash buckets by index; a full table gives up its least recently
 * used entry.
 */
#include "shield.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "config.h"
#include "secret.h"

#define MAC_LEN 32
#define NEGATIVE_PER_USER 4        /* distinct wrong passwords remembered per user */
#define MEMORY_PER_USER 4          /* servers remembered per user */
#define BUCKETS 8192               /* power of two, > both table sizes */
#define NONE UINT32_MAX

struct failures {
	time_t at[MA_MAX_FAILURES];    /* ring of the last max_failures failures */
	unsigned next;
};

struct mech_memory {
	char server[64];
	bool scram_proven, plain_first;
	time_t until;
};

/* The start of every table entry. */
struct head {
	char name[256];                /* "" = free */
	uint32_t next;                 /* bucket chain */
	time_t used;
	time_t keep_until;             /* recent failures or a cache entry: evicted last */
};

struct user_entry {
	struct head h;                 /* the user name */
	unsigned char pos_mac[MAC_LEN];
	time_t pos_until;              /* 0: no positive entry */
	char pos_server[64], pos_mech[32], pos_tls[16];
	unsigned char neg_mac[NEGATIVE_PER_USER][MAC_LEN];
	time_t neg_until[NEGATIVE_PER_USER];
	unsigned neg_next;
	struct failures fail;
	struct mech_memory mem[MEMORY_PER_USER];
};

struct host_entry {
	struct head h;                 /* the remote host (PAM_RHOST) */
	struct failures fail;
};

struct table {
	void *entries;                 /* struct user_entry[] or struct host_entry[] */
	size_t size, count;
	uint32_t bucket[BUCKETS];
};

struct ma_shield {
	pthread_mutex_t lock;
	struct ma_shield_params p;
	unsigned char key[32];
	struct table users, hosts;
};

/* ---- tables ---- */

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h & (BUCKETS - 1);
}

static struct head *at(struct table *t, size_t esize, uint32_t i)
{
	return (struct head *)(void *)((char *)t->entries + esize * i);
}

static void table_init(struct table *t)
{
	for (size_t b = 0; b < BUCKETS; b++)
		t->bucket[b] = NONE;
}

static void unlink_entry(struct table *t, size_t esize, uint32_t i)
{
	struct head *e = at(t, esize, i);
	uint32_t *link = &t->bucket[hash(e->name)];
	while (*link != NONE && *link != i)
		link = &at(t, esize, *link)->next;
	if (*link == i)
		*link = e->next;
	ma_wipe(e, esize);
	t->count--;
}

/* The entry named NAME, created (evicting the least recently used when
 * full) when CREATE; NULL when absent and not created. */
static struct head *lookup(struct table *t, size_t esize, const char *name, bool create,
                           time_t now)
{
	/* Fix: "" marks a free slot, so an entry of that name was taken for
	 * free space and handed out again while still linked into its bucket;
	 * the chains could then loop onto themselves and a lookup spin forever
	 * under the lock (seen with ma_shield_record(sh, "", ...)).  The wire
	 * never carries an empty user, but the API must not depend on it. */
	if (name[0] == '\0')
		return NULL;
	uint32_t b = hash(name);
	for (uint32_t i = t->bucket[b]; i != NONE; i = at(t, esize, i)->next) {
		struct head *e = at(t, esize, i);
		if (strcmp(e->name, name) == 0) {
			e->used = now;
			return e;
		}
	}
	if (!create || strlen(name) >= sizeof(((struct head *)0)->name))
		return NULL;
	uint32_t slot = NONE;
	if (t->count == t->size) {
		/* The least recently used entry that holds nothing current goes
		 * first: flooding the table with other names must not wipe the
		 * failures that throttle a guesser (only when every entry holds
		 * some, the least recently used of all goes). */
		time_t oldest = 0, oldest_any = 0;
		uint32_t any = NONE;
		for (uint32_t i = 0; i < t->size; i++) {
			struct head *e = at(t, esize, i);
			if (e->keep_until <= now && (slot == NONE || e->used < oldest)) {
				slot = i;
				oldest = e->used;
			}
			if (any == NONE || e->used < oldest_any) {
				any = i;
				oldest_any = e->used;
			}
		}
		if (slot == NONE)
			slot = any;
		unlink_entry(t, esize, slot);
	} else {
		for (uint32_t i = 0; i < t->size && slot == NONE; i++)
			if (at(t, esize, i)->name[0] == '\0')
				slot = i;
	}
	struct head *e = at(t, esize, slot);
	memset(e, 0, esize);
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->used = now;
	e->next = t->bucket[b];
	t->bucket[b] = slot;
	t->count++;
	return e;
}

static struct user_entry *user_entry(struct ma_shield *sh, const char *user, bool create,
                                     time_t now)
{
	struct head *h = lookup(&sh->users, sizeof(struct user_entry), user, create, now);
	return h != NULL ? (struct user_entry *)(void *)h : NULL;
}

static struct host_entry *host_entry(struct ma_shield *sh, const char *host, bool create,
                                     time_t now)
{
	if (host == NULL || host[0] == '\0')
		return NULL;
	struct head *h = lookup(&sh->hosts, sizeof(struct host_entry), host, create, now);
	return h != NULL ? (struct host_entry *)(void *)h : NULL;
}

/* ---- failures ---- */

static unsigned recent(const struct ma_shield *sh, const struct failures *f, time_t now)
{
	unsigned n = 0;
	for (unsigned i = 0; i < sh->p.max_failures; i++)
		n += f->at[i] != 0 && now - f->at[i] < (time_t)sh->p.failure_window &&
		     f->at[i] <= now;
	return n;
}

static void add_failure(const struct ma_shield *sh, struct head *h, struct failures *f,
                        time_t now)
{
	if (sh->p.max_failures == 0)
		return;
	f->at[f->next++ % sh->p.max_failures] = now;
	if (h->keep_until < now + (time_t)sh->p.failure_window)
		h->keep_until = now + (time_t)sh->p.failure_window;
}

/* ---- the API ---- */

enum ma_err ma_shield_new(const struct ma_shield_params *p, struct ma_shield **out)
{
	struct ma_shield *sh = calloc(1, sizeof(*sh));
	*out = NULL;
	if (sh == NULL)
		return MA_NOMEM;
	sh->p = *p;
	if (sh->p.max_failures > MA_MAX_FAILURES)
		sh->p.max_failures = MA_MAX_FAILURES;
	sh->users.size = MA_SHIELD_USERS;
	sh->hosts.size = MA_SHIELD_HOSTS;
	sh->users.entries = calloc(MA_SHIELD_USERS, sizeof(struct user_entry));
	sh->hosts.entries = calloc(MA_SHIELD_HOSTS, sizeof(struct host_entry));
	if (sh->users.entries == NULL || sh->hosts.entries == NULL) {
		ma_shield_free(&sh);
		return MA_NOMEM;
	}
	/* Fix: initialised before the first exit that frees with both tables
	 * allocated, since ma_shield_free then destroys the mutex (destroying
	 * one never initialised is undefined). */
	pthread_mutex_init(&sh->lock, NULL);
	if (RAND_priv_bytes(sh->key, sizeof(sh->key)) != 1) {
		ma_shield_free(&sh);
		return MA_INTERNAL;
	}
	table_init(&sh->users);
	table_init(&sh->hosts);
	*out = sh;
	return MA_OK;
}

void ma_shield_free(struct ma_shield **shp)
{
	struct ma_shield *sh = *shp;
	if (sh == NULL)
		return;
	if (sh->users.entries != NULL && sh->hosts.entries != NULL)
		pthread_mutex_destroy(&sh->lock);
	ma_freezero(sh->users.entries, sh->users.size * sizeof(struct user_entry));
	ma_freezero(sh->hosts.entries, sh->hosts.size * sizeof(struct host_entry));
	ma_freezero(sh, sizeof(*sh));
	*shp = NULL;
}

/* HMAC-SHA-256(key, user NUL password): the only trace of a password. */
static bool mac_of(const struct ma_shield *sh, const char *user, const char *password,
                   unsigned char mac[MAC_LEN])
{
	size_t ul = strlen(user), pl = strlen(password);
	unsigned char *msg = malloc(ul + 1 + pl);
	unsigned len = 0;
	bool ok = false;
	if (msg == NULL)
		return false;
	memcpy(msg, user, ul + 1);
	memcpy(msg + ul + 1, password, pl);
	ok = HMAC(EVP_sha256(), sh->key, sizeof(sh->key), msg, ul + 1 + pl, mac, &len) != NULL &&
	     len == MAC_LEN;
	ma_freezero(msg, ul + 1 + pl);
	return ok;
}

bool ma_shield_mac(const struct ma_shield *sh, const char *user, const char *password,
                   unsigned char mac[32])
{
	return mac_of(sh, user, password, mac);
}

enum ma_shield_verdict ma_shield_check(struct ma_shield *sh, const char *user,
                                       const char *password, const char *rhost, time_t now,
                                       struct ma_shield_hit *hit)
{
	enum ma_shield_verdict v = MA_SHIELD_ASK;
	unsigned char mac[MAC_LEN];

	memset(hit, 0, sizeof(*hit));
	if (!mac_of(sh, user, password, mac))
		return MA_SHIELD_ASK;
	pthread_mutex_lock(&sh->lock);
	struct user_entry *u = user_entry(sh, user, false, now);
	/* The throttle first: while a user or a host is throttled, every
	 * password gets the same answer, or a cached one would tell a guesser
	 * that this guess is right (a cache hit would be an oracle free of
	 * any limit). */
	if (sh->p.max_failures > 0) {
		struct host_entry *h = host_entry(sh, rhost, false, now);
		unsigned nu = u != NULL ? recent(sh, &u->fail, now) : 0;
		unsigned nh = h != NULL ? recent(sh, &h->fail, now) : 0;
		if (nu >= sh->p.max_failures || nh >= sh->p.max_failures) {
			snprintf(hit->why, sizeof(hit->why), "%u failures of this %s in the last %us "
			         "(max_failures)", nu >= sh->p.max_failures ? nu : nh,
			         nu >= sh->p.max_failures ? "user" : "remote host",
			         sh->p.failure_window);
			v = MA_SHIELD_THROTTLE;
			goto out;
		}
	}
	if (u != NULL && sh->p.cache_ttl > 0 && u->pos_until > now &&
	    CRYPTO_memcmp(u->pos_mac, mac, MAC_LEN) == 0) {
		snprintf(hit->server, sizeof(hit->server), "%s", u->pos_server);
		snprintf(hit->mechanism, sizeof(hit->mechanism), "%s", u->pos_mech);
		snprintf(hit->tls_version, sizeof(hit->tls_version), "%s", u->pos_tls);
		snprintf(hit->why, sizeof(hit->why), "accepted by %s %lds ago", u->pos_server,
		         (long)(now - (u->pos_until - (time_t)sh->p.cache_ttl)));
		v = MA_SHIELD_ACCEPT;
		goto out;
	}
	for (unsigned i = 0; u != NULL && sh->p.negative_ttl > 0 && i < NEGATIVE_PER_USER; i++) {
		if (u->neg_until[i] > now && CRYPTO_memcmp(u->neg_mac[i], mac, MAC_LEN) == 0) {
			snprintf(hit->why, sizeof(hit->why), "the same password was refused less "
			         "than %us ago (negative_ttl)", sh->p.negative_ttl);
			v = MA_SHIELD_REJECT;
			goto out;
		}
	}
out:
	pthread_mutex_unlock(&sh->lock);
	ma_wipe(mac, sizeof(mac));
	return v;
}

static void learn_mechanism(struct user_entry *u, const struct ma_result *res, time_t now)
{
	struct mech_memory *m = NULL;
	for (unsigned i = 0; i < MEMORY_PER_USER && m == NULL; i++)
		if (strcmp(u->mem[i].server, res->server) == 0)
			m = &u->mem[i];
	for (unsigned i = 0; i < MEMORY_PER_USER && m == NULL; i++)
		if (u->mem[i].server[0] == '\0' || u->mem[i].until <= now)
			m = &u->mem[i];
	if (m == NULL)
		m = &u->mem[0];
	bool was_plain_first = strcmp(m->server, res->server) == 0 && m->until > now &&
	                       m->plain_first;
	snprintf(m->server, sizeof(m->server), "%s", res->server);
	m->until = now + MA_SHIELD_MEMORY_TTL;
	/* SCRAM worked: its rejection is a verdict on the password.  PLAIN
	 * worked only after SCRAM was refused: the account's stored hash
	 * cannot do SCRAM, so PLAIN goes first next time, and stays first
	 * while it keeps working (it then succeeds without a fallback). */
	bool plain = strcmp(res->mechanism, "PLAIN") == 0;
	m->scram_proven = strncmp(res->mechanism, "SCRAM-", 6) == 0;
	m->plain_first = plain && (res->fell_back || was_plain_first);
}

void ma_shield_record(struct ma_shield *sh, const char *user, const char *password,
                      const char *rhost, enum ma_err err, const struct ma_result *res,
                      time_t now)
{
	unsigned char mac[MAC_LEN];
	if (err != MA_OK && err != MA_AUTH_FAILED && err != MA_POLICY)
		return;
	if (!mac_of(sh, user, password, mac))
		return;
	pthread_mutex_lock(&sh->lock);
	struct user_entry *u = user_entry(sh, user, true, now);
	if (u == NULL)
		goto out;
	if (err == MA_OK) {
		if (sh->p.cache_ttl > 0) {
			memcpy(u->pos_mac, mac, MAC_LEN);
			u->pos_until = now + (time_t)sh->p.cache_ttl;
			if (u->h.keep_until < u->pos_until)
				u->h.keep_until = u->pos_until;
			snprintf(u->pos_server, sizeof(u->pos_server), "%s", res->server);
			snprintf(u->pos_mech, sizeof(u->pos_mech), "%s", res->mechanism);
			snprintf(u->pos_tls, sizeof(u->pos_tls), "%s", res->tls_version);
		}
		for (unsigned i = 0; i < NEGATIVE_PER_USER; i++)
			if (CRYPTO_memcmp(u->neg_mac[i], mac, MAC_LEN) == 0)
				u->neg_until[i] = 0;
		memset(&u->fail, 0, sizeof(u->fail));
		if (res->server[0] != '\0')
			learn_mechanism(u, res, now);
		goto out;
	}
	/* Rejected: whatever was accepted before is no longer known good.  A
	 * policy refusal too (the provider turned password logins off), but
	 * it is not remembered in the negative cache: it is no verdict on this
	 * password, and once an administrator acts the same password must
	 * work at once, not negative_ttl later.  It still counts a failure:
	 * a policy reply can tell a guesser that a password is right (Google
	 * says "app password required" only for the right one). */
	ma_wipe(u->pos_mac, MAC_LEN);
	u->pos_until = 0;
	if (sh->p.negative_ttl > 0 && err == MA_AUTH_FAILED) {
		unsigned i = u->neg_next++ % NEGATIVE_PER_USER;
		memcpy(u->neg_mac[i], mac, MAC_LEN);
		u->neg_until[i] = now + (time_t)sh->p.negative_ttl;
	}
	add_failure(sh, &u->h, &u->fail, now);
	struct host_entry *h = host_entry(sh, rhost, true, now);
	if (h != NULL)
		add_failure(sh, &h->h, &h->fail, now);
out:
	pthread_mutex_unlock(&sh->lock);
	ma_wipe(mac, sizeof(mac));
}

void ma_shield_count_failure(struct ma_shield *sh, const char *user, const char *rhost,
                             time_t now)
{
	pthread_mutex_lock(&sh->lock);
	struct user_entry *u = user_entry(sh, user, true, now);
	if (u != NULL)
		add_failure(sh, &u->h, &u->fail, now);
	struct host_entry *h = host_entry(sh, rhost, true, now);
	if (h != NULL)
		add_failure(sh, &h->h, &h->fail, now);
	pthread_mutex_unlock(&sh->lock);
}

void ma_shield_hint(struct ma_shield *sh, const char *user, const char *server, time_t now,
                    struct ma_server_hint *h)
{
	h->scram_proven = false;
	h->plain_first = false;
	pthread_mutex_lock(&sh->lock);
	struct user_entry *u = user_entry(sh, user, false, now);
	for (unsigned i = 0; u != NULL && i < MEMORY_PER_USER; i++) {
		if (u->mem[i].until > now && strcmp(u->mem[i].server, server) == 0) {
			h->scram_proven = u->mem[i].scram_proven;
			h->plain_first = u->mem[i].plain_first;
		}
	}
	pthread_mutex_unlock(&sh->lock);
}
