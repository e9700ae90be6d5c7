/*
 * scanfree.c - an LD_PRELOAD shim for tests/hygiene/harness (interface:
 * shim.h).  Only while the harness has switched it on (around
 * pam_authenticate) does it look at anything; otherwise every call passes
 * straight through.
 *
 *  - free() and realloc(): scan the whole usable size of the block being
 *    released for the needles (the test password, its base64 forms).  A
 *    block still holding one when it is freed is a copy that nobody wiped:
 *    it stays readable in the heap until reused.  realloc() is done as
 *    malloc + copy + free while on, because glibc may move a block and
 *    leave the old copy behind.  The real allocator is reached through
 *    glibc's __libc_* entry points: no dlsym() and no recursion.
 *  - send()/sendto()/sendmsg()/write()/writev(): count EPIPE (the peer
 *    reset us mid-write) and every write to a stream socket that could
 *    raise SIGPIPE (a send without MSG_NOSIGNAL, any write()).
 *  - socket/socketpair/accept/accept4/pipe/pipe2/open/openat/fopen/dup...:
 *    record descriptors created without close-on-exec (SPEC 7).
 * System calls are made with syscall(2), so the shim needs no dlsym() but
 * for fopen().
 *
 * Each event keeps a backtrace; the harness resolves it with dladdr().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim.h"

#define EXPORT __attribute__((visibility("default")))

/* glibc's allocator under its internal names (exported since 2.2.5). */
extern void *__libc_malloc(size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_realloc(void *ptr, size_t size);

static atomic_int active;
static const char *const *needles;
static const size_t *needle_lens;
static size_t n_needles;

static struct hyg_event events[HYG_MAX_EVENTS];
static atomic_size_t n_events;

static atomic_ulong c_blocks, c_bytes, c_hits, c_sends, c_epipe, c_econnreset,
	c_sigpipe_sends, c_socket_writes, c_fds, c_nocloexec, c_dropped;

static _Thread_local int in_shim;     /* no events from inside the shim */

/* HYG_STRIP_NOSIGNAL=1: clear MSG_NOSIGNAL from every send, so that a test
 * can show it would catch a module that forgot it (negative control). */
static int strip_nosignal;

static FILE *(*real_fopen)(const char *, const char *);
static FILE *(*real_fopen64)(const char *, const char *);

/* Prototypes of the exported interface (the harness calls them through
 * dlsym with the typedefs of shim.h). */
EXPORT void hyg_shim_needles(const char *const *n, const size_t *lens, size_t count);
EXPORT void hyg_shim_active(int on);
EXPORT void hyg_shim_counts(struct hyg_counts *out);
EXPORT const struct hyg_event *hyg_shim_events(size_t *n);
EXPORT void hyg_shim_reset(void);

__attribute__((constructor)) static void shim_init(void)
{
	/* The first backtrace() loads libgcc_s (which allocates): do it now,
	 * not inside free(). */
	void *frames[4];
	in_shim = 1;
	(void)backtrace(frames, 4);
	real_fopen = (FILE *(*)(const char *, const char *))dlsym(RTLD_NEXT, "fopen");
	real_fopen64 = (FILE *(*)(const char *, const char *))dlsym(RTLD_NEXT, "fopen64");
	const char *strip = getenv("HYG_STRIP_NOSIGNAL");
	strip_nosignal = strip != NULL && strcmp(strip, "1") == 0;
	in_shim = 0;
}

static struct hyg_event *new_event(int kind, const char *what)
{
	size_t i = atomic_fetch_add(&n_events, 1);
	if (i >= HYG_MAX_EVENTS) {
		atomic_fetch_add(&c_dropped, 1);
		return NULL;
	}
	struct hyg_event *ev = &events[i];
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	snprintf(ev->what, sizeof(ev->what), "%s", what);
	ev->nframes = backtrace(ev->frames, HYG_MAX_FRAMES);
	return ev;
}

static void scan_block(void *p, int kind)
{
	size_t size = malloc_usable_size(p);
	atomic_fetch_add(&c_blocks, 1);
	atomic_fetch_add(&c_bytes, size);
	for (size_t i = 0; i < n_needles; i++) {
		if (needle_lens[i] == 0 || memmem(p, size, needles[i], needle_lens[i]) == NULL)
			continue;
		atomic_fetch_add(&c_hits, 1);
		struct hyg_event *ev = new_event(kind, kind == HYG_EV_FREE ? "free" : "realloc");
		if (ev != NULL) {
			ev->needle = (int)i;
			ev->size = size;
		}
		break;     /* one event per block */
	}
}

static int on(void)
{
	return atomic_load_explicit(&active, memory_order_relaxed) && !in_shim;
}

/* ---- the allocator ---- */

EXPORT void free(void *p)
{
	if (p != NULL && on()) {
		int saved = errno;
		in_shim = 1;
		scan_block(p, HYG_EV_FREE);
		in_shim = 0;
		errno = saved;
	}
	__libc_free(p);
}

EXPORT void *realloc(void *p, size_t n)
{
	if (p == NULL || !on())
		return __libc_realloc(p, n);
	int saved = errno;
	in_shim = 1;
	size_t old = malloc_usable_size(p);
	void *q = NULL;
	if (n != 0) {
		q = __libc_malloc(n);
		if (q == NULL) {
			in_shim = 0;
			return NULL;      /* p stays valid, as realloc promises */
		}
		memcpy(q, p, old < n ? old : n);
	}
	scan_block(p, HYG_EV_REALLOC);
	__libc_free(p);
	in_shim = 0;
	errno = saved;
	return q;
}

/* ---- writes: SIGPIPE hazards and EPIPE ---- */

static int stream_socket(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);
	if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
		return 0;   /* not a socket */
	return type == SOCK_STREAM || type == SOCK_SEQPACKET;
}

static void note_send(int fd, int flags, long r, int err, const char *what)
{
	if (!on())
		return;
	in_shim = 1;
	atomic_fetch_add(&c_sends, 1);
	if (r < 0 && err == EPIPE)
		atomic_fetch_add(&c_epipe, 1);
	if (r < 0 && err == ECONNRESET)
		atomic_fetch_add(&c_econnreset, 1);
	if (!(flags & MSG_NOSIGNAL) && stream_socket(fd)) {
		atomic_fetch_add(&c_sigpipe_sends, 1);
		struct hyg_event *ev = new_event(HYG_EV_SIGPIPE_SEND, what);
		if (ev != NULL)
			ev->size = (size_t)fd;
	}
	in_shim = 0;
}

static void note_write(int fd, const char *what)
{
	if (!on())
		return;
	in_shim = 1;
	if (stream_socket(fd)) {
		atomic_fetch_add(&c_socket_writes, 1);
		struct hyg_event *ev = new_event(HYG_EV_SOCKET_WRITE, what);
		if (ev != NULL)
			ev->size = (size_t)fd;
	}
	in_shim = 0;
}

EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	if (strip_nosignal)
		flags &= ~MSG_NOSIGNAL;
	long r = syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
	int err = errno;
	note_send(fd, flags, r, err, "send");
	errno = err;
	return (ssize_t)r;
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags,
                      const struct sockaddr *addr, socklen_t alen)
{
	if (strip_nosignal)
		flags &= ~MSG_NOSIGNAL;
	long r = syscall(SYS_sendto, fd, buf, len, flags, addr, alen);
	int err = errno;
	note_send(fd, flags, r, err, "sendto");
	errno = err;
	return (ssize_t)r;
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (strip_nosignal)
		flags &= ~MSG_NOSIGNAL;
	long r = syscall(SYS_sendmsg, fd, msg, flags);
	int err = errno;
	note_send(fd, flags, r, err, "sendmsg");
	errno = err;
	return (ssize_t)r;
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	long r = syscall(SYS_write, fd, buf, n);
	int err = errno;
	note_write(fd, "write");
	errno = err;
	return (ssize_t)r;
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	long r = syscall(SYS_writev, fd, iov, cnt);
	int err = errno;
	note_write(fd, "writev");
	errno = err;
	return (ssize_t)r;
}

/* ---- descriptors: close-on-exec ---- */

static void note_fd(long fd, int cloexec, const char *what)
{
	if (fd < 0 || !on())
		return;
	in_shim = 1;
	atomic_fetch_add(&c_fds, 1);
	if (!cloexec) {
		atomic_fetch_add(&c_nocloexec, 1);
		struct hyg_event *ev = new_event(HYG_EV_NOCLOEXEC, what);
		if (ev != NULL)
			ev->size = (size_t)fd;
	}
	in_shim = 0;
}

static long ret(long r, int err)
{
	errno = err;
	return r;
}

EXPORT int socket(int domain, int type, int proto)
{
	long r = syscall(SYS_socket, domain, type, proto);
	int err = errno;
	note_fd(r, type & SOCK_CLOEXEC, "socket");
	return (int)ret(r, err);
}

EXPORT int socketpair(int domain, int type, int proto, int sv[2])
{
	long r = syscall(SYS_socketpair, domain, type, proto, sv);
	int err = errno;
	if (r == 0) {
		note_fd(sv[0], type & SOCK_CLOEXEC, "socketpair");
		note_fd(sv[1], type & SOCK_CLOEXEC, "socketpair");
	}
	return (int)ret(r, err);
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *alen)
{
	long r = syscall(SYS_accept4, fd, addr, alen, 0);
	int err = errno;
	note_fd(r, 0, "accept");
	return (int)ret(r, err);
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	long r = syscall(SYS_accept4, fd, addr, alen, flags);
	int err = errno;
	note_fd(r, flags & SOCK_CLOEXEC, "accept4");
	return (int)ret(r, err);
}

EXPORT int pipe(int fds[2])
{
	long r = syscall(SYS_pipe2, fds, 0);
	int err = errno;
	if (r == 0) {
		note_fd(fds[0], 0, "pipe");
		note_fd(fds[1], 0, "pipe");
	}
	return (int)ret(r, err);
}

EXPORT int pipe2(int fds[2], int flags)
{
	long r = syscall(SYS_pipe2, fds, flags);
	int err = errno;
	if (r == 0) {
		note_fd(fds[0], flags & O_CLOEXEC, "pipe2");
		note_fd(fds[1], flags & O_CLOEXEC, "pipe2");
	}
	return (int)ret(r, err);
}

static int do_openat(int dirfd, const char *path, int flags, unsigned mode, const char *what)
{
	long r = syscall(SYS_openat, dirfd, path, flags, mode);
	int err = errno;
	note_fd(r, flags & O_CLOEXEC, what);
	return (int)ret(r, err);
}

static unsigned open_mode(int flags, va_list ap)
{
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		return va_arg(ap, unsigned);
	return 0;
}

EXPORT int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	unsigned mode = open_mode(flags, ap);
	va_end(ap);
	return do_openat(AT_FDCWD, path, flags, mode, "open");
}

EXPORT int open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	unsigned mode = open_mode(flags, ap);
	va_end(ap);
	return do_openat(AT_FDCWD, path, flags, mode, "open64");
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	unsigned mode = open_mode(flags, ap);
	va_end(ap);
	return do_openat(dirfd, path, flags, mode, "openat");
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	unsigned mode = open_mode(flags, ap);
	va_end(ap);
	return do_openat(dirfd, path, flags, mode, "openat64");
}

/* What _FORTIFY_SOURCE turns open() into when it cannot see the flags. */
EXPORT int __open_2(const char *path, int flags);
EXPORT int __open_2(const char *path, int flags)
{
	return do_openat(AT_FDCWD, path, flags, 0, "__open_2");
}

EXPORT int __open64_2(const char *path, int flags);
EXPORT int __open64_2(const char *path, int flags)
{
	return do_openat(AT_FDCWD, path, flags, 0, "__open64_2");
}

static FILE *do_fopen(FILE *(*real)(const char *, const char *), const char *path,
                      const char *mode, const char *what)
{
	if (real == NULL) {
		errno = ENOSYS;
		return NULL;
	}
	FILE *f = real(path, mode);
	int err = errno;
	if (f != NULL) {
		char desc[48];
		snprintf(desc, sizeof(desc), "%s \"%s\"", what, mode);
		note_fd(fileno(f), strchr(mode, 'e') != NULL, desc);
	}
	errno = err;
	return f;
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
	return do_fopen(real_fopen, path, mode, "fopen");
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
	return do_fopen(real_fopen64 != NULL ? real_fopen64 : real_fopen, path, mode, "fopen64");
}

EXPORT int dup(int fd)
{
	long r = syscall(SYS_dup, fd);
	int err = errno;
	note_fd(r, 0, "dup");
	return (int)ret(r, err);
}

EXPORT int dup2(int fd, int fd2)
{
	long r = fd == fd2 ? (syscall(SYS_fcntl, fd, F_GETFD) < 0 ? -1 : fd)
	                   : syscall(SYS_dup3, fd, fd2, 0);
	int err = errno;
	if (fd != fd2)
		note_fd(r, 0, "dup2");
	return (int)ret(r, err);
}

EXPORT int dup3(int fd, int fd2, int flags)
{
	long r = syscall(SYS_dup3, fd, fd2, flags);
	int err = errno;
	note_fd(r, flags & O_CLOEXEC, "dup3");
	return (int)ret(r, err);
}

/* ---- the interface (shim.h) ---- */

EXPORT void hyg_shim_needles(const char *const *n, const size_t *lens, size_t count)
{
	needles = n;
	needle_lens = lens;
	n_needles = count < HYG_MAX_NEEDLES ? count : HYG_MAX_NEEDLES;
}

EXPORT void hyg_shim_active(int value)
{
	atomic_store(&active, value);
}

EXPORT void hyg_shim_counts(struct hyg_counts *out)
{
	out->blocks_scanned = atomic_load(&c_blocks);
	out->bytes_scanned = atomic_load(&c_bytes);
	out->needle_hits = atomic_load(&c_hits);
	out->sends = atomic_load(&c_sends);
	out->sends_epipe = atomic_load(&c_epipe);
	out->sends_econnreset = atomic_load(&c_econnreset);
	out->sigpipe_sends = atomic_load(&c_sigpipe_sends);
	out->socket_writes = atomic_load(&c_socket_writes);
	out->fds_created = atomic_load(&c_fds);
	out->fds_nocloexec = atomic_load(&c_nocloexec);
	out->events_dropped = atomic_load(&c_dropped);
}

EXPORT const struct hyg_event *hyg_shim_events(size_t *n)
{
	size_t k = atomic_load(&n_events);
	*n = k < HYG_MAX_EVENTS ? k : HYG_MAX_EVENTS;
	return events;
}

EXPORT void hyg_shim_reset(void)
{
	atomic_store(&n_events, 0);
	atomic_ulong *all[] = { &c_blocks, &c_bytes, &c_hits, &c_sends, &c_epipe, &c_econnreset,
	                        &c_sigpipe_sends, &c_socket_writes, &c_fds, &c_nocloexec,
	                        &c_dropped };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		atomic_store(all[i], 0);
}
