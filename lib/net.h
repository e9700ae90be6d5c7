/*
 * net.h - resolve and connect under the authentication's deadline.
 */
#ifndef MA_NET_H
#define MA_NET_H

#include <stdbool.h>
#include <stddef.h>

#include "deadline.h"
#include "libmailauth.h"

/*
 * Resolve HOST (one lookup, A and AAAA) and connect to PORT, trying each
 * address in turn while time remains.  The socket is SOCK_CLOEXEC,
 * non-blocking and TCP_NODELAY.  With LOOPBACK_ONLY every address must be
 * loopback (tls = none).  Returns the descriptor (caller closes it), or -1
 * with *err set (MA_UNAVAILABLE, MA_TIMEOUT, MA_NOMEM) and WHY filled.
 */
int ma_net_connect(const char *host, unsigned port, bool loopback_only,
                   const struct ma_deadline *dl, enum ma_err *err,
                   char *why, size_t whylen);

/*
 * Wait until FD is readable (EVENTS = POLLIN) or writable (POLLOUT) or the
 * deadline passes.  Returns MA_OK, MA_TIMEOUT or MA_UNAVAILABLE.
 */
enum ma_err ma_net_wait(int fd, short events, const struct ma_deadline *dl);

/*
 * After each read: ask the kernel to acknowledge at once.  The dialogue is
 * strictly request/reply, and a server that writes a reply in two small
 * segments (e.g. a TLS 1.3 ticket, then its greeting) otherwise waits for
 * our delayed ACK (up to 40 ms on Linux) under Nagle's algorithm.
 * TCP_QUICKACK is not sticky, hence once per read; a no-op elsewhere.
 */
void ma_net_quickack(int fd);

/* DNS lookups of this process still running (at most a fixed cap; a
 * login beyond it is MA_UNAVAILABLE without a new thread). */
unsigned ma_net_pending_lookups(void);

/* 1 when the IPv4/IPv6 textual address HOST is a loopback literal. */
int ma_net_is_loopback_literal(const char *host);

#endif
