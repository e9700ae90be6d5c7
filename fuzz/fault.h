/*
 * fault.h - fault injection for the fuzz targets, the way pam-u2f does it:
 * the target is linked with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,
 *   --wrap=strndup,--wrap=recv,--wrap=send
 * so that every call the library makes goes through the __wrap_ functions
 * below, which fail the call chosen by the fuzz input.  OpenSSL's own
 * allocations (a shared library, not wrapped) are reached through
 * CRYPTO_set_mem_functions when asked for.
 *
 * Nothing fails while disarmed: the harness arms around the call under
 * test only, and must not allocate itself while armed.
 */
#ifndef MA_FUZZ_FAULT_H
#define MA_FUZZ_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct fault_plan {
	unsigned alloc_fail_at;     /* 1-based allocation that fails; 0: none */
	bool alloc_fail_rest;       /* ... and every one after it */
	bool openssl;               /* count OpenSSL's allocations too */
	unsigned io_fail_at;        /* 1-based recv/send call that fails; 0: none */
	int io_errno;               /* its errno */
	bool io_fail_rest;          /* ... and every one after it */
	size_t recv_chunk;          /* recv returns at most this much; 0: no limit */
	size_t send_chunk;          /* send writes at most this much; 0: no limit */
};

struct fault_stats {
	unsigned allocs, alloc_failures;       /* our code (wrapped symbols) */
	unsigned ssl_allocs, ssl_failures;     /* OpenSSL's, when counted */
	unsigned io_calls, io_failures;
	bool fatal_recv_failure;               /* a recv failed with a hard error */
	bool fatal_send_failure;               /* a send failed with a hard error */
	char failed_send[16];                  /* the first bytes of that send */
};

/* Install the OpenSSL hooks; call once, before OpenSSL allocates. */
void fault_init(void);
void fault_arm(const struct fault_plan *plan);
/* Stop injecting; returns what happened while armed. */
struct fault_stats fault_disarm(void);

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
ssize_t __real_recv(int fd, void *buf, size_t len, int flags);
ssize_t __real_send(int fd, const void *buf, size_t len, int flags);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags);

#endif
