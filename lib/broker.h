/*
 * broker.h - the client side of mailauthd (SPEC 10), for the module's
 * `broker` argument and `mailauth login -b`.
 */
#ifndef MA_BROKER_H
#define MA_BROKER_H

#include <stddef.h>

#include "libmailauth.h"
#include "wire.h"

#define MA_BROKER_SOCKET_DEFAULT "/run/mailauth/socket"

/*
 * Send REQ to the broker listening on the Unix socket PATH and wait for its
 * answer, all within TIMEOUT_MS.  Returns MA_OK when an answer arrived
 * (RESP->err is then the verdict), else MA_UNAVAILABLE with WHY: nothing
 * listens, the listener is not to be trusted (the socket's directory is
 * writable by others than its owner, or the peer is neither root nor that
 * owner nor the socket file's owner: whoever could put a socket there
 * could answer "yes"), no answer
 * in time, or a malformed answer.  Every buffer that held the request is
 * wiped.  Thread-safe; no signal is raised (MSG_NOSIGNAL).
 */
enum ma_err ma_broker_call(const char *path, const struct ma_wire_request *req,
                           unsigned timeout_ms, struct ma_wire_response *resp,
                           char *why, size_t whylen);

#endif
