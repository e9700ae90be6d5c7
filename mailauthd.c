/*
 * mailauthd.c - the broker (SPEC 10): one daemon per host that owns the
 * configuration and performs every login for the module's `broker`
 * argument and `mailauth login -b`, with a cache, a negative cache, a
 * failure throttle, offline logins and a limit on connections per server
 * (lib/serve.c does the logins; this file is sockets, threads and
 * signals).
 *
 *   mailauthd [-f] [-d] [-c CONFIG] [-s SOCKET]
 *
 * -f stays in the foreground and logs to stderr (else it detaches and logs
 * to syslog, facility authpriv); -d adds the redacted protocol exchange.
 * Under systemd socket activation (LISTEN_FDS) the socket comes from the
 * service manager.  SIGHUP reloads the configuration (a broken one is
 * refused, the running one stays) and empties the caches; SIGTERM and
 * SIGINT stop accepting, let the requests under way finish, write the
 * offline store and exit 0.
 *
 * Callers are authorised by SO_PEERCRED before a byte is read: root, this
 * daemon's own user, and the users and @groups in `clients`.  Each request
 * must arrive whole within REQUEST_MS of its first byte; a connection may
 * carry several requests, and is closed after IDLE_MS without one.
 * WORKERS threads serve connections (one woken per caller); every other
 * caller waits in the listen queue.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "config.h"
#include "deadline.h"
#include "libmailauth.h"
#include "log.h"
#include "offline.h"
#include "secret.h"
#include "serve.h"
#include "wire.h"

#define WORKERS 32
#define REQUEST_MS 2000
#define IDLE_MS 10000
#define MAX_GROUPS 256

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_CONFIG = 4, EXIT_USAGE = 64 };

/* Who may ask, resolved from `clients` when the configuration is loaded. */
struct client_rule {
	bool group;
	unsigned long id;              /* uid, or gid for a group */
	char name[64];
};

/* One configuration and what was built from it; requests hold a reference. */
struct generation {
	struct ma_serve *sv;
	struct client_rule *rules;
	size_t n_rules;
	unsigned refs;
};

static struct {
	bool foreground;
	bool debug;
	const char *config;
	const char *socket;
	int listen_fd;
	bool own_socket;               /* we bound it, so we unlink it */
	int stop_fd;                   /* eventfd: readable once stopping */
	volatile sig_atomic_t stopping;
	pthread_mutex_t gen_lock;
	struct generation *current;
	struct ma_offline *offline;    /* one store for every generation */
	char state_dir[PATH_MAX];      /* where it is */
	struct ma_log log;
	pthread_mutex_t log_lock;
} d = {
	.config = MA_CONFIG_DEFAULT_PATH,
	.socket = MA_BROKER_SOCKET_DEFAULT,
	.listen_fd = -1,
	.stop_fd = -1,
	.gen_lock = PTHREAD_MUTEX_INITIALIZER,
	.log_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* ---- logging ---- */

static void emit(void *arg, int priority, const char *line)
{
	(void)arg;
	if (!d.foreground) {
		syslog(priority, "%s", line);
		return;
	}
	static const char *const names[] = { "emerg", "alert", "crit", "err", "warning",
	                                     "notice", "info", "debug" };
	struct timespec ts;
	struct tm tm;
	char when[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	pthread_mutex_lock(&d.log_lock);
	fprintf(stderr, "%s.%03ld mailauthd[%ld]: %s: %s\n", when, ts.tv_nsec / 1000000,
	        (long)getpid(), names[priority & 7], line);
	fflush(stderr);
	pthread_mutex_unlock(&d.log_lock);
}

static void say(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(int priority, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	emit(NULL, priority, line);
}

/* ---- configuration generations ---- */

static void generation_free(struct generation *g)
{
	if (g == NULL)
		return;
	ma_serve_free(&g->sv);
	free(g->rules);
	free(g);
}

/* Resolve `clients` into rules; -1 (logged) when a name is unknown. */
static int resolve_clients(const struct ma_config *cfg, struct generation *g)
{
	g->rules = calloc(cfg->n_clients + 1, sizeof(*g->rules));
	if (g->rules == NULL)
		return -1;
	for (size_t i = 0; i < cfg->n_clients; i++) {
		const char *name = cfg->clients[i];
		struct client_rule *r = &g->rules[g->n_rules];
		char buf[4096];
		r->group = name[0] == '@';
		snprintf(r->name, sizeof(r->name), "%s", name);
		if (r->group) {
			struct group gr, *found = NULL;
			if (getgrnam_r(name + 1, &gr, buf, sizeof(buf), &found) != 0 || found == NULL) {
				say(LOG_ERR, "%s: clients: no group %s", cfg->path, name + 1);
				return -1;
			}
			r->id = (unsigned long)found->gr_gid;
		} else {
			struct passwd pw, *found = NULL;
			if (getpwnam_r(name, &pw, buf, sizeof(buf), &found) != 0 || found == NULL) {
				say(LOG_ERR, "%s: clients: no user %s", cfg->path, name);
				return -1;
			}
			r->id = (unsigned long)found->pw_uid;
		}
		g->n_rules++;
	}
	return 0;
}

static struct generation *load_generation(void)
{
	char err[512] = "";
	struct ma_config *cfg = NULL;
	struct generation *g = NULL;

	if (ma_config_load(d.config, &cfg, err, sizeof(err)) != MA_OK) {
		say(LOG_ERR, "configuration: %s", err[0] ? err : d.config);
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (g == NULL || resolve_clients(cfg, g) != 0) {
		ma_config_free(&cfg);
		generation_free(g);
		return NULL;
	}
	/* The offline store is opened once, when first needed; its place is
	 * fixed from then on (two stores on one file would overwrite each
	 * other's changes). */
	char file[PATH_MAX];
	snprintf(file, sizeof(file), "%s/%s", cfg->state_dir, MA_OFFLINE_FILE);
	bool stored = access(file, F_OK) == 0;
	if ((cfg->offline_ttl > 0 || stored) && d.offline == NULL) {
		if (ma_offline_open(cfg->state_dir, &d.log, &d.offline) != MA_OK) {
			ma_config_free(&cfg);
			generation_free(g);
			return NULL;
		}
		snprintf(d.state_dir, sizeof(d.state_dir), "%s", cfg->state_dir);
	} else if (cfg->offline_ttl > 0 && strcmp(d.state_dir, cfg->state_dir) != 0) {
		say(LOG_WARNING, "state_dir changed to %s: takes effect at the next start; "
		    "offline verifiers stay in %s", cfg->state_dir, d.state_dir);
	}
	if (ma_serve_new(cfg, d.offline, &g->sv) != MA_OK) {   /* takes cfg */
		say(LOG_ERR, "cannot set up the broker state");
		generation_free(g);
		return NULL;
	}
	g->refs = 1;                   /* the reference of d.current */
	return g;
}

static struct generation *generation_get(void)
{
	pthread_mutex_lock(&d.gen_lock);
	struct generation *g = d.current;
	g->refs++;
	pthread_mutex_unlock(&d.gen_lock);
	return g;
}

static void generation_put(struct generation *g)
{
	if (g == NULL)
		return;
	pthread_mutex_lock(&d.gen_lock);
	bool last = --g->refs == 0;
	pthread_mutex_unlock(&d.gen_lock);
	if (last)
		generation_free(g);
}

static void reload(void)
{
	struct generation *g = load_generation();
	if (g == NULL) {
		say(LOG_ERR, "reload refused: the running configuration stays");
		return;
	}
	pthread_mutex_lock(&d.gen_lock);
	struct generation *old = d.current;
	d.current = g;
	pthread_mutex_unlock(&d.gen_lock);
	generation_put(old);
	say(LOG_NOTICE, "configuration %s reloaded; caches emptied", d.config);
}

/* ---- callers ---- */

static bool in_group(uid_t uid, gid_t gid, unsigned long want)
{
	char buf[4096];
	struct passwd pw, *found = NULL;
	gid_t groups[MAX_GROUPS];
	int n = MAX_GROUPS;

	if ((unsigned long)gid == want)
		return true;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) != 0 || found == NULL)
		return false;
	if (getgrouplist(found->pw_name, found->pw_gid, groups, &n) < 0)
		n = MAX_GROUPS;        /* more than we look at: the first ones only */
	for (int i = 0; i < n; i++)
		if ((unsigned long)groups[i] == want)
			return true;
	return false;
}

/* Root, ourselves, or a rule of `clients`; WHO describes the caller. */
static bool authorised(const struct generation *g, const struct ucred *c, char *who,
                       size_t wholen)
{
	snprintf(who, wholen, "uid=%lu gid=%lu pid=%ld", (unsigned long)c->uid,
	         (unsigned long)c->gid, (long)c->pid);
	if (c->uid == 0 || c->uid == geteuid())
		return true;
	for (size_t i = 0; i < g->n_rules; i++) {
		const struct client_rule *r = &g->rules[i];
		if (r->group ? in_group(c->uid, c->gid, r->id) : (unsigned long)c->uid == r->id)
			return true;
	}
	return false;
}

/* ---- one connection ---- */

/* Wait until FD is readable (or stopping) within MS (-1: no limit); 1
 * readable, 0 not. */
static int wait_readable(int fd, int ms)
{
	struct pollfd p[2] = { { fd, POLLIN, 0 }, { d.stop_fd, POLLIN, 0 } };
	for (;;) {
		int n = poll(p, 2, ms);
		if (n < 0 && errno == EINTR)
			continue;
		return n > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !(p[1].revents & POLLIN);
	}
}

/* Read exactly LEN bytes before the deadline; 0 or -1. */
static int read_exact(int fd, unsigned char *buf, size_t len, const struct ma_deadline *dl)
{
	while (len > 0) {
		ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			return -1;
		int left = ma_deadline_remaining_ms(dl);
		if (left <= 0 || !wait_readable(fd, left))
			return -1;
	}
	return 0;
}

static void answer(int fd, const struct ma_wire_response *resp)
{
	unsigned char frame[MA_WIRE_MAX_FRAME];
	size_t len = 0;
	if (ma_wire_encode_response(resp, frame, sizeof(frame), &len) != 0)
		return;
	struct ma_deadline dl;
	ma_deadline_start(&dl, REQUEST_MS);
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(fd, frame + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return;
		struct pollfd p = { fd, POLLOUT, 0 };
		int left = ma_deadline_remaining_ms(&dl);
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return;
	}
}

static void refuse(int fd, enum ma_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void refuse(int fd, enum ma_err err, const char *fmt, ...)
{
	struct ma_wire_response resp;
	va_list ap;
	memset(&resp, 0, sizeof(resp));
	resp.err = err;
	resp.source = MA_SOURCE_BROKER;
	va_start(ap, fmt);
	vsnprintf(resp.detail, sizeof(resp.detail), fmt, ap);
	va_end(ap);
	answer(fd, &resp);
}

static void serve_connection(int fd)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	char who[96];
	unsigned char hdr[MA_WIRE_HEADER];
	unsigned char *body = malloc(MA_WIRE_MAX_BODY);
	struct ma_wire_request *req = calloc(1, sizeof(*req));

	if (body == NULL || req == NULL)
		goto out;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
		say(LOG_ERR, "SO_PEERCRED: %s", strerror(errno));
		goto out;
	}
	struct generation *g = generation_get();
	bool ok = authorised(g, &cred, who, sizeof(who));
	generation_put(g);
	if (!ok) {
		say(LOG_WARNING, "refused caller %s: not root and not in clients", who);
		refuse(fd, MA_CONFIG, "this caller (%s) is not in the broker's clients", who);
		/* Close without a reset, so that the answer is read: we will not
		 * read their request, but let it arrive (briefly, bounded). */
		shutdown(fd, SHUT_WR);
		struct ma_deadline dl;
		ma_deadline_start(&dl, 500);
		while (ma_deadline_remaining_ms(&dl) > 0 &&
		       wait_readable(fd, ma_deadline_remaining_ms(&dl)) &&
		       recv(fd, body, MA_WIRE_MAX_BODY, MSG_DONTWAIT) > 0)
			;
		goto out;
	}
	while (!d.stopping) {
		/* The next request: IDLE_MS for its first byte, then REQUEST_MS
		 * for all of it. */
		if (!wait_readable(fd, IDLE_MS))
			break;
		struct ma_deadline dl;
		ma_deadline_start(&dl, REQUEST_MS);
		enum ma_wire_type type;
		size_t blen = 0;
		ssize_t peek = recv(fd, hdr, 1, MSG_PEEK | MSG_DONTWAIT);
		if (peek <= 0)
			break;                   /* the caller closed */
		if (read_exact(fd, hdr, sizeof(hdr), &dl) != 0) {
			say(LOG_WARNING, "caller %s: request header incomplete after %d ms", who,
			    REQUEST_MS);
			break;
		}
		if (ma_wire_parse_header(hdr, &type, &blen) != 0 || type == MA_WIRE_RESULT) {
			say(LOG_WARNING, "caller %s: not a request of protocol version %d", who,
			    MA_WIRE_VERSION);
			refuse(fd, MA_PROTOCOL, "not a request of protocol version %d", MA_WIRE_VERSION);
			break;
		}
		if (read_exact(fd, body, blen, &dl) != 0) {
			say(LOG_WARNING, "caller %s: request body incomplete after %d ms", who, REQUEST_MS);
			break;
		}
		const char *why = "";
		int prc = ma_wire_parse_request(type, body, blen, req, &why);
		ma_wipe(body, blen);
		if (prc != 0) {
			say(LOG_WARNING, "caller %s: malformed request: %s", who, why);
			refuse(fd, MA_PROTOCOL, "malformed request: %s", why);
			break;
		}
		struct ma_wire_response resp;
		bool remember = false;
		g = generation_get();
		ma_serve_request(g->sv, req, &d.log, &resp, &remember);
		answer(fd, &resp);
		if (remember)
			ma_serve_remember(g->sv, req);
		generation_put(g);
		ma_wire_request_wipe(req);
	}
out:
	if (req != NULL)
		ma_freezero(req, sizeof(*req));
	ma_freezero(body, MA_WIRE_MAX_BODY);
	close(fd);
}

static void *worker(void *arg)
{
	(void)arg;
	/* Every worker waits for a caller and for the stop event in its own
	 * epoll set; EPOLLEXCLUSIVE wakes one worker per new connection, not
	 * all of them (poll() would wake WORKERS threads for each caller). */
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = d.listen_fd };
	struct epoll_event sev = { .events = EPOLLIN, .data.fd = d.stop_fd };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, d.listen_fd, &lev) != 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, d.stop_fd, &sev) != 0) {
		say(LOG_ERR, "epoll: %s: worker stops", strerror(errno));
		if (ep >= 0)
			close(ep);
		return NULL;
	}
	while (!d.stopping) {
		struct epoll_event ev[2];
		int n = epoll_wait(ep, ev, 2, -1);
		if (n <= 0)
			continue;
		int fd = accept4(d.listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (d.stopping)
				break;
			if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				say(LOG_ERR, "accept: %s", strerror(errno));
				struct timespec ts = { 0, 100 * 1000 * 1000 };
				nanosleep(&ts, NULL);
				continue;
			}
			say(LOG_ERR, "accept: %s: worker stops", strerror(errno));
			break;
		}
		serve_connection(fd);
	}
	close(ep);
	return NULL;
}

/* ---- the socket ---- */

/* systemd socket activation (sd_listen_fds(3) without libsystemd). */
static int activated_socket(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	if (pid == NULL || fds == NULL || strtol(pid, NULL, 10) != (long)getpid())
		return -1;
	if (strcmp(fds, "1") != 0) {
		say(LOG_ERR, "socket activation: expected one socket, got LISTEN_FDS=%s", fds);
		return -2;
	}
	int fd = 3;
	int flags = fcntl(fd, F_GETFD);
	if (flags < 0)
		return -2;
	fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return fd;
}

static int bind_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;

	if (strlen(d.socket) >= sizeof(sa.sun_path) || d.socket[0] != '/') {
		say(LOG_ERR, "socket %s: must be an absolute path under %zu bytes", d.socket,
		    sizeof(sa.sun_path));
		return -1;
	}
	memcpy(sa.sun_path, d.socket, strlen(d.socket) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (lstat(d.socket, &st) == 0) {
		/* A socket left by a daemon that died may go; a live one, or
		 * anything that is not a socket, stays and we stop. */
		if (!S_ISSOCK(st.st_mode)) {
			say(LOG_ERR, "%s exists and is not a socket", d.socket);
			close(fd);
			return -1;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			say(LOG_ERR, "%s: another broker is already listening", d.socket);
			close(fd);
			return -1;
		}
		unlink(d.socket);
	}
	/* The socket is for everyone to connect to (0666): callers are
	 * authorised by SO_PEERCRED, and a refusal says why. */
	mode_t old = umask(0111);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc == 0)
		rc = chmod(d.socket, 0666);
	if (rc != 0 || listen(fd, 256) != 0) {
		say(LOG_ERR, "%s: %s", d.socket, strerror(errno));
		close(fd);
		return -1;
	}
	d.own_socket = true;
	return fd;
}

/* ---- main ---- */

static int usage(void)
{
	fprintf(stderr, "usage: mailauthd [-f] [-d] [-c CONFIG] [-s SOCKET]\n"
	        "  -f  foreground, log to stderr     -d  debug (redacted protocol exchange)\n"
	        "  -c  configuration (default %s)\n  -s  socket (default %s)\n",
	        MA_CONFIG_DEFAULT_PATH, MA_BROKER_SOCKET_DEFAULT);
	return EXIT_USAGE;
}

static int detach(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (chdir("/") != 0)
		return -1;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return -1;
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
	close(null);
	return 0;
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "fdc:s:h")) != -1) {
		switch (opt) {
		case 'f': d.foreground = true; break;
		case 'd': d.debug = true; break;
		case 'c': d.config = optarg; break;
		case 's': d.socket = optarg; break;
		default: return usage();
		}
	}
	if (optind != argc)
		return usage();
	d.log.emit = emit;
	d.log.debug = d.debug;
	if (!d.foreground)
		openlog("mailauthd", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);

	/* Signals: TERM/INT/HUP are taken by sigwait() in this thread only;
	 * a caller that goes away never kills us (SIGPIPE ignored, and every
	 * send is MSG_NOSIGNAL anyway). */
	signal(SIGPIPE, SIG_IGN);
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	d.current = load_generation();
	if (d.current == NULL)
		return EXIT_CONFIG;
	d.listen_fd = activated_socket();
	if (d.listen_fd == -2)
		return EXIT_FAIL;
	if (d.listen_fd >= 0)
		d.socket = "the socket of systemd's socket activation";
	if (d.listen_fd < 0 && (d.listen_fd = bind_socket()) < 0)
		return EXIT_FAIL;
	if (!d.foreground && detach() != 0) {
		say(LOG_ERR, "cannot detach: %s", strerror(errno));
		return EXIT_FAIL;
	}
	d.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int fl = fcntl(d.listen_fd, F_GETFL);
	if (d.stop_fd < 0 || fl < 0 || fcntl(d.listen_fd, F_SETFL, fl | O_NONBLOCK) != 0)
		return EXIT_FAIL;

	pthread_t workers[WORKERS];
	size_t started = 0;
	for (; started < WORKERS; started++)
		if (pthread_create(&workers[started], NULL, worker, NULL) != 0)
			break;
	if (started == 0) {
		say(LOG_ERR, "cannot start worker threads");
		return EXIT_FAIL;
	}
	say(LOG_NOTICE, "listening on %s (configuration %s, %zu workers)", d.socket, d.config,
	    started);

	for (;;) {
		int sig = 0;
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload();
			continue;
		}
		say(LOG_NOTICE, "signal %d: stopping", sig);
		break;
	}
	d.stopping = 1;
	uint64_t one = 1;
	if (write(d.stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		say(LOG_ERR, "cannot wake the workers");
	for (size_t i = 0; i < started; i++)
		pthread_join(workers[i], NULL);
	close(d.listen_fd);
	if (d.own_socket)
		unlink(d.socket);
	generation_put(d.current);
	ma_offline_free(&d.offline);   /* writes what is pending */
	close(d.stop_fd);
	say(LOG_NOTICE, "stopped");
	return EXIT_OK;
}
