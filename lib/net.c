/*
 * net.c - resolve and connect under the one deadline of an authentication.
 *
 * getaddrinfo() has no timeout, and a module inside sshd must not hang on a
 * dead resolver.  The lookup runs in a short-lived detached thread (all
 * signals blocked, so no process signal is ever delivered to it) that shares
 * a reference-counted job with the caller; whoever lets go last frees it.
 * On a timeout the caller simply walks away.  The module is linked with
 * -z nodelete so a late resolver thread can never return into unmapped code
 * after pam_end() dlclose()s us.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * A resolver that never answers leaves one thread behind per login until
 * getaddrinfo() gives up by itself (resolv.conf's timeout x attempts x
 * servers; much longer with a hung NSS module).  A host under a stream of
 * logins (a web application, a RADIUS server) would pile them up without
 * bound.  At most MAX_PENDING_LOOKUPS may be outstanding in a process;
 * beyond that a login is unavailable at once, like a DNS failure, until the
 * resolver answers again.
 */
#define MAX_PENDING_LOOKUPS 16
static unsigned pending_lookups;     /* __atomic: threads still in getaddrinfo */

static bool lookup_slot_take(void)
{
	unsigned n = __atomic_load_n(&pending_lookups, __ATOMIC_RELAXED);
	do {
		if (n >= MAX_PENDING_LOOKUPS)
			return false;
	} while (!__atomic_compare_exchange_n(&pending_lookups, &n, n + 1, true,
	                                      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
	return true;
}

static void lookup_slot_give(void)
{
	__atomic_sub_fetch(&pending_lookups, 1, __ATOMIC_ACQ_REL);
}

unsigned ma_net_pending_lookups(void)
{
	return __atomic_load_n(&pending_lookups, __ATOMIC_ACQUIRE);
}

struct resolve_job {
	pthread_mutex_t lock;
	int refs;                 /* caller + thread */
	int gai_err;
	struct addrinfo *result;
	int wake[2];              /* thread writes one byte when done */
	char host[256];
	char port[8];
};

static void job_release(struct resolve_job *job)
{
	pthread_mutex_lock(&job->lock);
	int last = --job->refs == 0;
	pthread_mutex_unlock(&job->lock);
	if (!last)
		return;
	if (job->result != NULL)
		freeaddrinfo(job->result);
	close(job->wake[0]);
	close(job->wake[1]);
	pthread_mutex_destroy(&job->lock);
	free(job);
}

static void *resolve_thread(void *arg)
{
	struct resolve_job *job = arg;
	struct addrinfo hints;
	struct addrinfo *res = NULL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;           /* one lookup, A and AAAA */
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
	int err = getaddrinfo(job->host, job->port, &hints, &res);

	pthread_mutex_lock(&job->lock);
	job->gai_err = err;
	job->result = err == 0 ? res : NULL;
	pthread_mutex_unlock(&job->lock);
	ssize_t w = write(job->wake[1], "", 1);
	(void)w;
	job_release(job);
	lookup_slot_give();
	return NULL;
}

/* Numeric hosts need no thread: AI_NUMERICHOST never blocks. */
static int resolve_numeric(const char *host, const char *port, struct addrinfo **out)
{
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	return getaddrinfo(host, port, &hints, out);
}

static enum ma_err resolve(const char *host, unsigned port, const struct ma_deadline *dl,
                           struct addrinfo **out, char *why, size_t whylen)
{
	enum ma_err rc = MA_UNAVAILABLE;
	struct resolve_job *job = NULL;
	char portstr[8];

	*out = NULL;
	snprintf(portstr, sizeof(portstr), "%u", port);
	if (resolve_numeric(host, portstr, out) == 0)
		return MA_OK;

	if (strlen(host) >= sizeof(job->host)) {
		snprintf(why, whylen, "host name too long");
		return MA_UNAVAILABLE;
	}
	if (!lookup_slot_take()) {
		snprintf(why, whylen, "cannot resolve %s: %d DNS lookups of this process are "
		         "still unanswered (resolver down?)", host, MAX_PENDING_LOOKUPS);
		return MA_UNAVAILABLE;
	}
	job = calloc(1, sizeof(*job));
	if (job == NULL) {
		lookup_slot_give();
		return MA_NOMEM;
	}
	if (pipe2(job->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		free(job);
		lookup_slot_give();
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return MA_UNAVAILABLE;
	}
	pthread_mutex_init(&job->lock, NULL);
	job->refs = 2;
	snprintf(job->host, sizeof(job->host), "%s", host);
	snprintf(job->port, sizeof(job->port), "%s", portstr);

	/* Block every signal in the new thread: its mask is inherited from ours
	 * at creation, and only this thread's mask is touched, briefly. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t tid;
	int perr = pthread_create(&tid, &attr, resolve_thread, job);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (perr != 0) {
		job->refs = 1;
		lookup_slot_give();
		snprintf(why, whylen, "cannot start resolver: %s", strerror(perr));
		goto out;
	}

	enum ma_err w = ma_net_wait(job->wake[0], POLLIN, dl);
	if (w != MA_OK) {
		rc = w;
		snprintf(why, whylen, "DNS lookup of %s timed out", host);
		goto out;
	}
	pthread_mutex_lock(&job->lock);
	if (job->gai_err != 0) {
		snprintf(why, whylen, "cannot resolve %s: %s", host, gai_strerror(job->gai_err));
	} else {
		*out = job->result;
		job->result = NULL;
		rc = MA_OK;
	}
	pthread_mutex_unlock(&job->lock);
out:
	job_release(job);
	return rc;
}

enum ma_err ma_net_wait(int fd, short events, const struct ma_deadline *dl)
{
	for (;;) {
		int left = ma_deadline_remaining_ms(dl);
		if (left <= 0)
			return MA_TIMEOUT;
		struct pollfd p = { .fd = fd, .events = events, .revents = 0 };
		int n = poll(&p, 1, left);
		if (n > 0)
			return MA_OK;     /* readable, writable, or an error the caller sees */
		if (n == 0)
			return MA_TIMEOUT;
		if (errno != EINTR)
			return MA_UNAVAILABLE;
	}
}

static int is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

void ma_net_quickack(int fd)
{
#ifdef TCP_QUICKACK
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
#else
	(void)fd;
#endif
}

int ma_net_is_loopback_literal(const char *host)
{
	struct addrinfo *res = NULL;
	if (resolve_numeric(host, "1", &res) != 0)
		return 0;
	int ok = 1;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
		ok = ok && is_loopback(ai->ai_addr);
	freeaddrinfo(res);
	return ok;
}

static int connect_one(const struct addrinfo *ai, const struct ma_deadline *dl,
                       enum ma_err *err, char *why, size_t whylen)
{
	char addr[INET6_ADDRSTRLEN] = "?";
	const void *a = ai->ai_family == AF_INET6
		? (const void *)&((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr
		: (const void *)&((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
	inet_ntop(ai->ai_family, a, addr, sizeof(addr));

	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
	                ai->ai_protocol);
	if (fd < 0) {
		*err = MA_UNAVAILABLE;
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	/* Commands and replies are small and strictly alternating: never let
	 * Nagle hold one back for a delayed ACK. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS) {
			*err = MA_UNAVAILABLE;
			snprintf(why, whylen, "connect to %s: %s", addr, strerror(errno));
			goto fail;
		}
		enum ma_err w = ma_net_wait(fd, POLLOUT, dl);
		if (w != MA_OK) {
			*err = w;
			snprintf(why, whylen, "connect to %s: %s", addr,
			         w == MA_TIMEOUT ? "timed out" : "poll failed");
			goto fail;
		}
		int soerr = 0;
		socklen_t len = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
			*err = MA_UNAVAILABLE;
			snprintf(why, whylen, "connect to %s: %s", addr, strerror(soerr));
			goto fail;
		}
	}
	return fd;
fail:
	close(fd);
	return -1;
}

int ma_net_connect(const char *host, unsigned port, bool loopback_only,
                   const struct ma_deadline *dl, enum ma_err *err,
                   char *why, size_t whylen)
{
	struct addrinfo *res = NULL;
	int fd = -1;

	*err = resolve(host, port, dl, &res, why, whylen);
	if (*err != MA_OK)
		goto out;
	*err = MA_UNAVAILABLE;
	snprintf(why, whylen, "no address for %s", host);
	if (loopback_only) {
		/* tls = none: SPEC 2, every address the host resolves to must be
		 * loopback, or nothing is sent at all. */
		for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
			if (!is_loopback(ai->ai_addr)) {
				snprintf(why, whylen, "tls = none but %s is not loopback", host);
				goto out;
			}
		}
	}
	unsigned n_addr = 0;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
		n_addr += ai->ai_family == AF_INET || ai->ai_family == AF_INET6;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		/* Each address still to try gets an equal part of the time left:
		 * an AAAA record that leads nowhere must not use up the deadline
		 * before the A record is tried. */
		struct ma_deadline share;
		ma_deadline_share(&share, dl, n_addr--);
		fd = connect_one(ai, &share, err, why, whylen);
		if (fd >= 0 || ma_deadline_remaining_ms(dl) == 0)
			break;
	}
	if (fd >= 0) {
		*err = MA_OK;
		why[0] = '\0';
	}
out:
	if (res != NULL)
		freeaddrinfo(res);
	return fd;
}
