/*
 * fault.c - allocation and I/O fault injection for the fuzz targets (see
 * fault.h).  Single-threaded, like libFuzzer's runs.
 */
#include "fault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

static bool armed;
static struct fault_plan plan;
static struct fault_stats stats;

/* true when this allocation must fail. */
static bool alloc_fails(void)
{
	if (!armed)
		return false;
	unsigned n = ++stats.allocs + stats.ssl_allocs;
	if (plan.alloc_fail_at == 0 || n < plan.alloc_fail_at ||
	    (n > plan.alloc_fail_at && !plan.alloc_fail_rest))
		return false;
	stats.alloc_failures++;
	return true;
}

void *__wrap_malloc(size_t size)
{
	return alloc_fails() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return alloc_fails() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
	return alloc_fails() ? NULL : __real_realloc(p, size);
}

char *__wrap_strdup(const char *s)
{
	return alloc_fails() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
	return alloc_fails() ? NULL : __real_strndup(s, n);
}

/* OpenSSL's allocator hooks: counted in the same sequence when asked. */
static bool ssl_fails(void)
{
	if (!armed || !plan.openssl)
		return false;
	unsigned n = stats.allocs + ++stats.ssl_allocs;
	if (plan.alloc_fail_at == 0 || n < plan.alloc_fail_at ||
	    (n > plan.alloc_fail_at && !plan.alloc_fail_rest))
		return false;
	stats.ssl_failures++;
	return true;
}

static void *ssl_malloc(size_t size, const char *file, int line)
{
	(void)file;
	(void)line;
	return ssl_fails() ? NULL : __real_malloc(size);
}

static void *ssl_realloc(void *p, size_t size, const char *file, int line)
{
	(void)file;
	(void)line;
	return ssl_fails() ? NULL : __real_realloc(p, size);
}

static void ssl_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	free(p);
}

void fault_init(void)
{
	/* Fails when OpenSSL has allocated already: then it is not counted. */
	if (CRYPTO_set_mem_functions(ssl_malloc, ssl_realloc, ssl_free) != 1)
		fprintf(stderr, "fault: OpenSSL allocations cannot be failed\n");
}

/* The I/O call that fails, and with what. */
static bool io_fails(void)
{
	if (!armed)
		return false;
	unsigned n = ++stats.io_calls;
	if (plan.io_fail_at == 0 || n < plan.io_fail_at ||
	    (n > plan.io_fail_at && !plan.io_fail_rest))
		return false;
	stats.io_failures++;
	errno = plan.io_errno;
	return true;
}

static bool transient(int err)
{
	return err == EINTR || err == EAGAIN || err == EWOULDBLOCK;
}

ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags)
{
	if (io_fails()) {
		if (!transient(plan.io_errno) && !(flags & MSG_PEEK))
			stats.fatal_recv_failure = true;
		return -1;
	}
	if (armed && plan.recv_chunk > 0 && len > plan.recv_chunk)
		len = plan.recv_chunk;
	return __real_recv(fd, buf, len, flags);
}

ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags)
{
	if (io_fails()) {
		if (!transient(plan.io_errno) && !stats.fatal_send_failure) {
			stats.fatal_send_failure = true;
			size_t n = len < sizeof(stats.failed_send) - 1 ? len : sizeof(stats.failed_send) - 1;
			memcpy(stats.failed_send, buf, n);
			stats.failed_send[n] = '\0';
		}
		return -1;
	}
	if (armed && plan.send_chunk > 0 && len > plan.send_chunk)
		len = plan.send_chunk;
	return __real_send(fd, buf, len, flags);
}

void fault_arm(const struct fault_plan *p)
{
	plan = *p;
	memset(&stats, 0, sizeof(stats));
	armed = true;
}

struct fault_stats fault_disarm(void)
{
	armed = false;
	return stats;
}
