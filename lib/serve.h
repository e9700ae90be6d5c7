/*
 * serve.h - what mailauthd does with one request (SPEC 10), apart from
 * sockets and threads: the local checks, the shield (caches, throttle,
 * mechanism memory), the servers through ma_authenticate_opts() with
 * max_connections slots and the client's address, and offline logins.
 */
#ifndef MA_SERVE_H
#define MA_SERVE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "libmailauth.h"
#include "offline.h"
#include "shield.h"
#include "wire.h"

struct ma_limiter;
struct ma_flights;

/* One generation of the broker's state: made at start and at each reload
 * (SIGHUP), shared by the requests that began under it. */
struct ma_serve {
	struct ma_config *cfg;
	struct ma_shield *shield;
	struct ma_offline *offline;        /* borrowed; NULL when there is none */
	struct ma_limiter *limits;         /* max_connections of each server */
	struct ma_flights *flights;        /* server logins under way, shared */
};

/* Build the state for CFG (taken over; freed by ma_serve_free).  OFFLINE
 * is the daemon's one offline store (it outlives every generation, so
 * that two generations never write the file with different views); logins
 * are checked against it and stored in it only when cfg->offline_ttl is
 * set, but a rejection drops the user's verifier whatever offline_ttl is
 * (a verifier kept while offline logins were off must not come back with a
 * password the server refused meanwhile). */
enum ma_err ma_serve_new(struct ma_config *cfg, struct ma_offline *offline,
                         struct ma_serve **out);
void ma_serve_free(struct ma_serve **sv);

/*
 * Answer REQ (AUTH or ACCOUNT) into RESP, and log one line.  When
 * *REMEMBER is set, the caller, after sending RESP, calls
 * ma_serve_remember() with the same request: the offline verifier is
 * computed then, so the caller does not wait for scrypt.
 */
void ma_serve_request(struct ma_serve *sv, const struct ma_wire_request *req,
                      const struct ma_log *log, struct ma_wire_response *resp,
                      bool *remember);
void ma_serve_remember(struct ma_serve *sv, const struct ma_wire_request *req);

#endif
