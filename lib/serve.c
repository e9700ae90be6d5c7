/*
 * serve.c - one broker request, from the local checks to the verdict
 * (serve.h).  The order, and why:
 *
 *   1. input and local policy (minimum_uid, routing): as in-process;
 *   2. throttle: too many failures of this user or remote host lately;
 *   3. positive cache: a recent success with this very password;
 *   4. negative cache: a recent rejection of this very password (the
 *      server is not asked the same wrong question again);
 *   5. the servers, with the mechanism memory and max_connections; a
 *      request identical to one under way (same user and password) waits
 *      for that one's verdict instead of logging in again;
 *   6. offline verifiers, only when every server was unavailable.
 *
 * The throttle comes before the caches: while a user or a host is
 * throttled, the right password gets the answer a guess gets, or a cached
 * success would tell a throttled guesser, at any rate, which guess is
 * right.
 */
#include "serve.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "deadline.h"
#include "log.h"
#include "secret.h"

#include <openssl/crypto.h>

/* ---- max_connections ---- */

struct slot {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	unsigned in_use, max;
};

struct ma_limiter {
	size_t n;
	struct slot s[];
};

static struct ma_limiter *limiter_new(const struct ma_config *cfg)
{
	struct ma_limiter *l = calloc(1, sizeof(*l) + cfg->n_servers * sizeof(struct slot));
	if (l == NULL)
		return NULL;
	l->n = cfg->n_servers;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (size_t i = 0; i < l->n; i++) {
		pthread_mutex_init(&l->s[i].lock, NULL);
		pthread_cond_init(&l->s[i].freed, &ca);
		l->s[i].max = cfg->servers[i].max_connections;
	}
	pthread_condattr_destroy(&ca);
	return l;
}

static void limiter_free(struct ma_limiter *l)
{
	for (size_t i = 0; l != NULL && i < l->n; i++) {
		pthread_mutex_destroy(&l->s[i].lock);
		pthread_cond_destroy(&l->s[i].freed);
	}
	free(l);
}

struct call {
	struct ma_serve *sv;
	const char *user;
	time_t now;
};

static enum ma_err acquire(void *arg, size_t server, int timeout_ms, char *why, size_t whylen)
{
	struct call *c = arg;
	struct slot *s = &c->sv->limits->s[server];
	enum ma_err rc = MA_OK;
	if (s->max == 0)
		return MA_OK;
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->lock);
	while (s->in_use >= s->max) {
		if (pthread_cond_timedwait(&s->freed, &s->lock, &until) == ETIMEDOUT) {
			rc = MA_TIMEOUT;
			snprintf(why, whylen, "all %u connections to this server (max_connections) "
			         "stayed busy until the deadline", s->max);
			break;
		}
	}
	if (rc == MA_OK)
		s->in_use++;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void release(void *arg, size_t server)
{
	struct call *c = arg;
	struct slot *s = &c->sv->limits->s[server];
	if (s->max == 0)
		return;
	pthread_mutex_lock(&s->lock);
	s->in_use--;
	pthread_cond_signal(&s->freed);
	pthread_mutex_unlock(&s->lock);
}

static void hint(void *arg, size_t server, struct ma_server_hint *h)
{
	struct call *c = arg;
	ma_shield_hint(c->sv->shield, c->user, c->sv->cfg->servers[server].name, c->now, h);
}

/* ---- one server login for identical concurrent requests ----
 *
 * A web application that receives fifty requests at once with the same
 * Basic credentials would make fifty server logins before the first one
 * fills the cache.  Requests with the same user and password (named by
 * their HMAC, never the password) that arrive while one is being checked
 * wait for that check and take its verdict.  At most MAX_FLIGHTS checks are
 * shared at a time; beyond that a request simply asks the server itself.
 */
#define MAX_FLIGHTS 64

struct flight {
	unsigned char key[32];
	bool used, done;
	unsigned waiters;
	enum ma_err err;
	struct ma_result res;
};

struct ma_flights {
	pthread_mutex_t lock;
	pthread_cond_t done;           /* broadcast whenever a flight lands */
	struct flight f[MAX_FLIGHTS];
};

static struct ma_flights *flights_new(void)
{
	struct ma_flights *fl = calloc(1, sizeof(*fl));
	if (fl == NULL)
		return NULL;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&fl->lock, NULL);
	pthread_cond_init(&fl->done, &ca);
	pthread_condattr_destroy(&ca);
	return fl;
}

static void flights_free(struct ma_flights *fl)
{
	if (fl == NULL)
		return;
	pthread_mutex_destroy(&fl->lock);
	pthread_cond_destroy(&fl->done);
	ma_freezero(fl, sizeof(*fl));
}

/*
 * Either join the check under way for KEY (true: *ERR and *RES are its
 * verdict, after waiting at most WAIT_MS), or become the one that makes it
 * (false, *MINE set, or NULL when every slot is taken).
 */
static bool flight_join(struct ma_flights *fl, const unsigned char key[32], int wait_ms,
                        struct flight **mine, enum ma_err *err, struct ma_result *res)
{
	struct flight *f = NULL, *free_slot = NULL;
	*mine = NULL;
	pthread_mutex_lock(&fl->lock);
	for (size_t i = 0; i < MAX_FLIGHTS; i++) {
		if (fl->f[i].used && !fl->f[i].done && CRYPTO_memcmp(fl->f[i].key, key, 32) == 0)
			f = &fl->f[i];
		else if (!fl->f[i].used && free_slot == NULL)
			free_slot = &fl->f[i];
	}
	if (f == NULL) {
		if (free_slot != NULL) {
			memset(free_slot, 0, sizeof(*free_slot));
			memcpy(free_slot->key, key, 32);
			free_slot->used = true;
			*mine = free_slot;
		}
		pthread_mutex_unlock(&fl->lock);
		return false;
	}
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	f->waiters++;
	while (!f->done && pthread_cond_timedwait(&fl->done, &fl->lock, &until) != ETIMEDOUT)
		;
	if (f->done) {
		*err = f->err;
		*res = f->res;
	} else {
		*err = MA_TIMEOUT;
		memset(res, 0, sizeof(*res));
		res->server_index = -1;
		snprintf(res->detail, sizeof(res->detail), "the same login under way did not end");
	}
	if (--f->waiters == 0 && f->done)
		f->used = false;
	pthread_mutex_unlock(&fl->lock);
	return true;
}

static void flight_land(struct ma_flights *fl, struct flight *f, enum ma_err err,
                        const struct ma_result *res)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&fl->lock);
	f->err = err;
	f->res = *res;
	f->done = true;
	if (f->waiters == 0)
		f->used = false;
	pthread_cond_broadcast(&fl->done);
	pthread_mutex_unlock(&fl->lock);
}

/* ---- the state ---- */

enum ma_err ma_serve_new(struct ma_config *cfg, struct ma_offline *offline,
                         struct ma_serve **out)
{
	enum ma_err rc = MA_NOMEM;
	struct ma_serve *sv = calloc(1, sizeof(*sv));
	*out = NULL;
	if (sv == NULL) {
		ma_config_free(&cfg);
		return MA_NOMEM;
	}
	sv->cfg = cfg;
	struct ma_shield_params p = {
		.cache_ttl = cfg->cache_ttl, .negative_ttl = cfg->negative_ttl,
		.max_failures = cfg->max_failures, .failure_window = cfg->failure_window,
	};
	if ((rc = ma_shield_new(&p, &sv->shield)) != MA_OK)
		goto out;
	rc = MA_NOMEM;
	if ((sv->limits = limiter_new(cfg)) == NULL || (sv->flights = flights_new()) == NULL)
		goto out;
	sv->offline = offline;
	rc = MA_OK;
	*out = sv;
	sv = NULL;
out:
	ma_serve_free(&sv);
	return rc;
}

void ma_serve_free(struct ma_serve **svp)
{
	struct ma_serve *sv = *svp;
	if (sv == NULL)
		return;
	ma_shield_free(&sv->shield);
	limiter_free(sv->limits);
	flights_free(sv->flights);
	ma_config_free(&sv->cfg);
	free(sv);
	*svp = NULL;
}

/* ---- one request ---- */

static void fill(struct ma_wire_response *resp, enum ma_err err, enum ma_wire_source src,
                 const char *server, const char *mech, const char *tls, const char *detail)
{
	resp->err = err;
	resp->source = src;
	snprintf(resp->server, sizeof(resp->server), "%s", server != NULL ? server : "");
	snprintf(resp->mechanism, sizeof(resp->mechanism), "%s", mech != NULL ? mech : "");
	snprintf(resp->tls_version, sizeof(resp->tls_version), "%s", tls != NULL ? tls : "");
	snprintf(resp->detail, sizeof(resp->detail), "%s", detail != NULL ? detail : "");
}

static long ms_since(const struct timespec *t0)
{
	return ma_elapsed_ms(t0);
}

/*
 * Fill RESP from what the shield knows; false when it knows nothing and the
 * servers must be asked.
 */
static bool answer_from_shield(enum ma_shield_verdict v, const struct ma_shield_hit *hit,
                               struct ma_wire_response *resp, enum ma_err *err,
                               const char **result)
{
	switch (v) {
	case MA_SHIELD_ACCEPT:
		*err = MA_OK;
		fill(resp, *err, MA_SOURCE_CACHE, hit->server, hit->mechanism, hit->tls_version,
		     hit->why);
		return true;
	case MA_SHIELD_REJECT:
		*err = MA_AUTH_FAILED;
		fill(resp, *err, MA_SOURCE_NEGATIVE, NULL, NULL, NULL, hit->why);
		return true;
	case MA_SHIELD_THROTTLE:
		*err = MA_AUTH_FAILED;
		*result = "throttled";
		fill(resp, *err, MA_SOURCE_THROTTLE, NULL, NULL, NULL, hit->why);
		return true;
	case MA_SHIELD_ASK:
		break;
	}
	return false;
}

void ma_serve_request(struct ma_serve *sv, const struct ma_wire_request *req,
                      const struct ma_log *log, struct ma_wire_response *resp, bool *remember)
{
	const struct ma_config *cfg = sv->cfg;
	struct timespec t0;
	char why[256] = "";
	struct ma_result res;
	enum ma_err err = MA_INTERNAL;
	const char *result = NULL;     /* the log's result=, when not ma_err_name(err) */

	clock_gettime(CLOCK_MONOTONIC, &t0);
	*remember = false;
	memset(resp, 0, sizeof(*resp));
	fill(resp, MA_INTERNAL, MA_SOURCE_BROKER, NULL, NULL, NULL, NULL);
	time_t now = time(NULL);

	if (req->type == MA_WIRE_ACCOUNT) {
		err = ma_check_user(cfg, req->user, why, sizeof(why));
		fill(resp, err, MA_SOURCE_BROKER, NULL, NULL, NULL, why);
		goto log;
	}
	err = ma_check_input(req->user, req->password, why, sizeof(why));
	if (err == MA_OK)
		err = ma_check_user(cfg, req->user, why, sizeof(why));
	if (err != MA_OK) {
		fill(resp, err, MA_SOURCE_BROKER, NULL, NULL, NULL, why);
		goto log;
	}

	struct ma_shield_hit hit;
	if (answer_from_shield(ma_shield_check(sv->shield, req->user, req->password, req->rhost,
	                                       now, &hit), &hit, resp, &err, &result))
		goto log;

	unsigned char key[32];
	struct flight *mine = NULL;
	bool shared = false;
	if (ma_shield_mac(sv->shield, req->user, req->password, key))
		shared = flight_join(sv->flights, key, (int)cfg->timeout_ms + 2000, &mine, &err, &res);
	ma_wipe(key, sizeof(key));
	if (!shared && mine != NULL &&
	    answer_from_shield(ma_shield_check(sv->shield, req->user, req->password, req->rhost,
	                                       now, &hit), &hit, resp, &err, &result)) {
		/* Between the first look at the shield and flight_join, the login
		 * that was under way for this password recorded its verdict and
		 * landed: asking the servers again would cost them a second login
		 * (ma_shield_record runs before flight_land, so this second look
		 * sees it).  Hand the shield's answer to anyone who joined us. */
		memset(&res, 0, sizeof(res));
		res.server_index = -1;
		snprintf(res.server, sizeof(res.server), "%s", resp->server);
		snprintf(res.mechanism, sizeof(res.mechanism), "%s", resp->mechanism);
		snprintf(res.tls_version, sizeof(res.tls_version), "%s", resp->tls_version);
		snprintf(res.detail, sizeof(res.detail), "%s", resp->detail);
		flight_land(sv->flights, mine, err, &res);
		goto log;
	}
	if (!shared) {
		struct call c = { .sv = sv, .user = req->user, .now = now };
		struct ma_auth_opts opts = {
			.rhost = req->rhost[0] != '\0' ? req->rhost : NULL, .arg = &c,
			.hint = hint, .acquire = acquire, .release = release,
		};
		err = ma_authenticate_opts(cfg, req->user, req->password, &opts, log, &res);
		ma_shield_record(sv->shield, req->user, req->password, req->rhost, err, &res, now);
		flight_land(sv->flights, mine, err, &res);
	} else {
		result = err == MA_OK ? "ok-shared" : NULL;
	}
	fill(resp, err, MA_SOURCE_NETWORK, res.server, res.mechanism, res.tls_version,
	     err == MA_OK ? "" : res.detail);
	snprintf(resp->login, sizeof(resp->login), "%s", res.login);
	/* For the user: the server's [ALERT] (escaped by the library, only
	 * over TLS), else the meaning of a policy refusal (a table constant). */
	snprintf(resp->message, sizeof(resp->message), "%s",
	         res.alert[0] != '\0' ? res.alert
	         : err == MA_POLICY && res.meaning != NULL ? res.meaning : "");
	if (sv->offline == NULL)
		goto log;
	if (err == MA_OK) {
		*remember = !shared && cfg->offline_ttl > 0;
	} else if (err == MA_AUTH_FAILED || err == MA_POLICY) {
		/* The password may have changed: the old one must not keep
		 * working offline.  A policy refusal (the provider turned
		 * password logins off for this account, [EXPIRED]...) is the
		 * server's verdict too: the account must not keep working
		 * offline against it (and ma_err_unavailable(MA_POLICY) is
		 * false, so it is never answered offline). */
		ma_offline_forget(sv->offline, req->user);
	} else if (ma_err_unavailable(err) && cfg->offline_ttl > 0) {
		/* SPEC 10: only when every server is unavailable, never after a
		 * rejection (ma_authenticate_opts stops at the first verdict). */
		enum ma_err off = ma_offline_verify(sv->offline, req->user, req->password,
		                                    cfg->offline_ttl, now);
		if (off == MA_OK) {
			char detail[256];
			snprintf(detail, sizeof(detail), "servers unavailable (%s): offline verifier",
			         ma_err_name(err));
			err = MA_OK;
			result = "ok-offline";
			fill(resp, err, MA_SOURCE_OFFLINE, NULL, NULL, NULL, detail);
		} else if (off == MA_AUTH_FAILED) {
			ma_shield_count_failure(sv->shield, req->user, req->rhost, now);
			ma_log(log, LOG_NOTICE, "user %s: offline verifier does not match", req->user);
		}
	}
log:
	{
		char eu[300], er[300], es[100];
		ma_log(log, err == MA_OK || err == MA_AUTH_FAILED ? LOG_INFO : LOG_WARNING,
		       "%s service=%s user=%s rhost=%s result=%s source=%s server=%s duration=%ldms%s%s",
		       req->type == MA_WIRE_ACCOUNT ? "account" : "auth",
		       req->service[0] ? ma_escape(es, sizeof(es), req->service, strlen(req->service)) : "-",
		       ma_escape(eu, sizeof(eu), req->user, strlen(req->user)),
		       req->rhost[0] ? ma_escape(er, sizeof(er), req->rhost, strlen(req->rhost)) : "-",
		       result != NULL ? result : ma_err_name(err), ma_wire_source_name(resp->source),
		       resp->server[0] ? resp->server : "-", ms_since(&t0),
		       resp->detail[0] && err != MA_OK ? " reason=" : "",
		       err != MA_OK ? resp->detail : "");
	}
}

void ma_serve_remember(struct ma_serve *sv, const struct ma_wire_request *req)
{
	if (sv->offline != NULL)
		(void)ma_offline_store(sv->offline, req->user, req->password, time(NULL));
}
