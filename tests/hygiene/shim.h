/*
 * shim.h - the interface between tests/hygiene/harness.c and the LD_PRELOAD
 * shim tests/hygiene/scanfree.so.
 *
 * The shim interposes free()/realloc() (to scan every block released while
 * the harness says "active" for the password and its base64 forms), the
 * socket write calls (to count EPIPE and writes that could raise SIGPIPE)
 * and the calls that create descriptors (to find ones opened without
 * close-on-exec).  The harness finds these functions with
 * dlsym(RTLD_DEFAULT, ...) so that it runs, with fewer checks, without the
 * shim too.
 */
#ifndef HYG_SHIM_H
#define HYG_SHIM_H

#include <stddef.h>

#define HYG_MAX_NEEDLES 12
#define HYG_MAX_FRAMES 24
#define HYG_MAX_EVENTS 256

enum hyg_event_kind {
	HYG_EV_FREE,          /* free() of a block that held a needle */
	HYG_EV_REALLOC,       /* realloc() left a needle behind in the old block */
	HYG_EV_NOCLOEXEC,     /* a descriptor was created without close-on-exec */
	HYG_EV_SIGPIPE_SEND,  /* send/sendto/sendmsg on a stream socket without MSG_NOSIGNAL */
	HYG_EV_SOCKET_WRITE,  /* write()/writev() on a socket (write cannot pass MSG_NOSIGNAL) */
};

struct hyg_event {
	int kind;             /* enum hyg_event_kind */
	int needle;           /* HYG_EV_FREE / HYG_EV_REALLOC: which needle */
	size_t size;          /* block size, or the descriptor number */
	char what[48];        /* the interposed call ("fopen r", "socket", ...) */
	int nframes;
	void *frames[HYG_MAX_FRAMES];   /* frames[0] is inside the shim */
};

struct hyg_counts {
	unsigned long blocks_scanned;   /* frees/reallocs scanned while active */
	unsigned long bytes_scanned;
	unsigned long needle_hits;      /* HYG_EV_FREE + HYG_EV_REALLOC events */
	unsigned long sends;            /* send/sendto/sendmsg calls while active */
	unsigned long sends_epipe;      /* ... that failed with EPIPE */
	unsigned long sends_econnreset; /* ... that failed with ECONNRESET */
	unsigned long sigpipe_sends;    /* stream-socket sends without MSG_NOSIGNAL */
	unsigned long socket_writes;    /* write()/writev() on sockets */
	unsigned long fds_created;      /* descriptors created while active */
	unsigned long fds_nocloexec;    /* ... without close-on-exec */
	unsigned long events_dropped;   /* events beyond HYG_MAX_EVENTS */
};

/* Needles are referenced, not copied: they must stay valid while active. */
typedef void hyg_shim_needles_fn(const char *const *needles, const size_t *lens, size_t n);
typedef void hyg_shim_active_fn(int on);
typedef void hyg_shim_counts_fn(struct hyg_counts *out);
/* Events recorded so far; *n is their number.  Valid until hyg_shim_reset. */
typedef const struct hyg_event *hyg_shim_events_fn(size_t *n);
typedef void hyg_shim_reset_fn(void);

#endif
