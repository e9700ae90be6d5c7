/*
 * harness.c - process hygiene of the built pam_mailauth.so (SPEC 7), seen
 * from inside ONE long-lived host process, the way sshd, a web server or a
 * Python program carries the module: libpam's pam_start_confdir() loads it
 * from a private service directory, a conversation function answers the
 * password prompt, and nothing else of the module is linked in.
 *
 *   harness soak N [noheap] [fake=K]  N authentications over every path
 *                                     (exact PAM results, SPEC 4); descriptors
 *                                     identical after warm-up and at the end,
 *                                     heap flat, no thread left behind
 *   harness sigpipe                   SIGPIPE at SIG_DFL and servers that reset
 *                                     the connection under our writes
 *   harness signals                   a pending alarm(), every disposition and
 *                                     the signal mask are left alone
 *   harness threads T N               T threads, N authentications each, each
 *                                     with its own PAM handle
 *   harness quiet                     nothing on stdout/stderr, debug included
 *   harness scan R                    with scanfree.so preloaded: no freed
 *                                     block and no writable mapping still holds
 *                                     the password; writes and descriptors audit
 *   harness race                      a deliberate data race of the harness's
 *                                     own (ThreadSanitizer's negative control)
 *
 * Prints "ok - ..." / "not ok - ..." lines (and "# ..." details); exits 1
 * when any check failed.
 *
 * Servers: the suite's Dovecot (MA_TEST_IMAPS_PORT, MA_TEST_IMAP_STARTTLS_PORT,
 * MA_TEST_SUBMISSIONS_PORT, MA_TEST_SUBMISSION_PORT, MA_TEST_CERTS), a closed
 * port, and hostile loopback servers run by a child process forked at
 * start (so that their descriptors, memory and threads are not ours): an
 * implicit-TLS server that resets as soon as the connection is up, a
 * STARTTLS server that resets right after its go-ahead (the ClientHello
 * goes into a dead connection), a plain (tls = none) server that resets
 * after its greeting (so does AUTHENTICATE), and plain servers that accept
 * the test password with PLAIN, AUTH=LOGIN or the LOGIN command.
 * tests/fake/fakeserver.py adds a reset inside an established TLS session
 * (soak, sigpipe) and a TLS login (scan).
 *
 * Environment: HYG_MODULE (default ./pam_mailauth.so), MA_TEST_*.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "fake.h"
#include "shim.h"

/* Distinctive: any copy of it in memory is ours to find. */
#define HYG_PASSWORD "Zq7-hygiene-S3cret-Zq7"
/* Not a local account (the module looks it up: no root, no minimum_uid). */
#define LOCAL_USER "hyg-user"
#define OPENSSH_PLACEHOLDER "\b\n\r\177INCORRECT"

/* Dovecot's accounts (tests/lib/common.sh).  Not erin or carol: tests/real/
 * test_sshd.sh makes erin a local system-range account while it runs, and
 * carol's SHA512-CRYPT hash is slow. */
#define PW_ALICE "alice-secret"
#define PW_BOB "bob pass \"quoted\" \\\\ back"
#define PW_DAVE "dave-secret"

/* ---- results ---- */

static unsigned n_pass, n_fail;

__attribute__((format(printf, 2, 3)))
static bool check(bool pass, const char *fmt, ...)
{
	va_list ap;
	fputs(pass ? "ok - " : "not ok - ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	if (pass)
		n_pass++;
	else
		n_fail++;
	return pass;
}

__attribute__((format(printf, 1, 2)))
static void note(const char *fmt, ...)
{
	va_list ap;
	fputs("#   ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static const char *rc_name(int rc)
{
	switch (rc) {
	case PAM_SUCCESS: return "PAM_SUCCESS";
	case PAM_AUTH_ERR: return "PAM_AUTH_ERR";
	case PAM_USER_UNKNOWN: return "PAM_USER_UNKNOWN";
	case PAM_AUTHINFO_UNAVAIL: return "PAM_AUTHINFO_UNAVAIL";
	case PAM_SERVICE_ERR: return "PAM_SERVICE_ERR";
	case PAM_BUF_ERR: return "PAM_BUF_ERR";
	case PAM_SYSTEM_ERR: return "PAM_SYSTEM_ERR";
	case PAM_CONV_ERR: return "PAM_CONV_ERR";
	case PAM_INCOMPLETE: return "PAM_INCOMPLETE";
	case PAM_ABORT: return "PAM_ABORT";
	case PAM_IGNORE: return "PAM_IGNORE";
	default: return "another PAM code";
	}
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- base64 (needles, and the plain servers' SASL decoding) ---- */

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_encode(const unsigned char *in, size_t len, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		if (o + 5 > cap)
			return 0;
		out[o++] = b64chars[(v >> 18) & 63];
		out[o++] = b64chars[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64chars[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

static long b64_decode(const char *in, unsigned char *out, size_t cap)
{
	size_t o = 0;
	unsigned v = 0;
	int bits = 0;
	for (const char *p = in; *p != '\0' && *p != '='; p++) {
		const char *k = strchr(b64chars, *p);
		if (k == NULL)
			return -1;
		v = (v << 6) | (unsigned)(k - b64chars);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -1;
			out[o++] = (unsigned char)((v >> bits) & 0xff);
		}
	}
	return (long)o;
}

/* ---- the hostile / plain loopback servers (a forked child) ---- */

enum listener { L_TLSRESET, L_STARTTLSRESET, L_PLAINRESET, L_PLAIN, L_LOGINMECH,
                L_LOGINCMD, L_COUNT };

/* What each plain server advertises in its greeting. */
static const char *const l_caps[L_COUNT] = {
	[L_STARTTLSRESET] = "IMAP4rev1 STARTTLS LOGINDISABLED",
	[L_PLAINRESET] = "IMAP4rev1 SASL-IR AUTH=PLAIN",
	[L_PLAIN] = "IMAP4rev1 SASL-IR AUTH=PLAIN",
	[L_LOGINMECH] = "IMAP4rev1 AUTH=LOGIN",
	[L_LOGINCMD] = "IMAP4rev1",
};

static int l_port[L_COUNT];
static pid_t server_pid = -1;

struct sconn {
	int fd;
	size_t len;
	char buf[8192];
};

static void srv_put(int fd, const char *s)
{
	size_t len = strlen(s);
	while (len > 0) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

/* One CRLF line (without it) into LINE; -1 on EOF, error or 3 s of silence. */
static int srv_line(struct sconn *c, char *line, size_t cap)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl != NULL) {
			size_t n = (size_t)(nl - c->buf) + 1;
			size_t l = n - 1;
			if (l > 0 && c->buf[l - 1] == '\r')
				l--;
			if (l >= cap)
				l = cap - 1;
			memcpy(line, c->buf, l);
			line[l] = '\0';
			memmove(c->buf, c->buf + n, c->len - n);
			c->len -= n;
			return (int)l;
		}
		if (c->len == sizeof(c->buf))
			return -1;
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		if (poll(&p, 1, 3000) <= 0)
			return -1;
		ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (r <= 0)
			return -1;
		c->len += (size_t)r;
	}
}

/*
 * End the connection so that the client's next write fails with EPIPE:
 * LAST (may be NULL) and our FIN leave in one segment (MSG_MORE corks
 * it), then SO_LINGER 0 makes close() send a RST.  A client that got the
 * FIN is in CLOSE_WAIT, so the RST sets EPIPE on its socket: its next
 * send raises SIGPIPE unless MSG_NOSIGNAL is given.
 */
static void srv_slam(int fd, const char *last)
{
	if (last != NULL)
		(void)send(fd, last, strlen(last), MSG_MORE | MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* The next astring of an IMAP LOGIN command (quoted or atom). */
static bool srv_astring(const char **p, char *out, size_t cap)
{
	const char *s = *p;
	size_t o = 0;
	while (*s == ' ')
		s++;
	if (*s == '"') {
		for (s++; *s != '"'; s++) {
			if (*s == '\0')
				return false;
			if (*s == '\\' && s[1] != '\0')
				s++;
			if (o + 1 >= cap)
				return false;
			out[o++] = *s;
		}
		s++;
	} else {
		while (*s != '\0' && *s != ' ' && o + 1 < cap)
			out[o++] = *s++;
	}
	out[o] = '\0';
	*p = s;
	return o > 0;
}

static void srv_verdict(int fd, const char *tag, const char *user, const char *pw)
{
	char reply[256];
	(void)user;
	if (strcmp(pw, HYG_PASSWORD) == 0)
		snprintf(reply, sizeof(reply), "%s OK [CAPABILITY IMAP4rev1] Logged in\r\n", tag);
	else
		snprintf(reply, sizeof(reply),
		         "%s NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", tag);
	srv_put(fd, reply);
}

/* A small IMAP server for tls = none: PLAIN (with SASL-IR), LOGIN, the
 * LOGIN command, CAPABILITY, LOGOUT. */
static void srv_imap(struct sconn *c, const char *caps)
{
	char line[4096], reply[4400], resp[4096], user[512], pw[512];
	unsigned char raw[4096];

	snprintf(reply, sizeof(reply), "* OK [CAPABILITY %s] hygiene test server ready\r\n", caps);
	srv_put(c->fd, reply);
	for (int round = 0; round < 16; round++) {
		if (srv_line(c, line, sizeof(line)) < 0)
			return;
		char *cmd = strchr(line, ' ');
		if (cmd == NULL)
			return;
		*cmd++ = '\0';
		const char *tag = line;
		if (strcasecmp(cmd, "CAPABILITY") == 0) {
			snprintf(reply, sizeof(reply), "* CAPABILITY %s\r\n%s OK done\r\n", caps, tag);
			srv_put(c->fd, reply);
		} else if (strncasecmp(cmd, "AUTHENTICATE PLAIN", 18) == 0) {
			const char *ir = cmd[18] == ' ' ? cmd + 19 : NULL;
			if (ir == NULL) {
				srv_put(c->fd, "+ \r\n");
				if (srv_line(c, resp, sizeof(resp)) < 0)
					return;
				ir = resp;
			}
			long n = b64_decode(ir, raw, sizeof(raw) - 1);
			if (n < 0) {
				snprintf(reply, sizeof(reply), "%s BAD invalid base64\r\n", tag);
				srv_put(c->fd, reply);
				continue;
			}
			raw[n] = '\0';
			/* authzid NUL authcid NUL passwd */
			const char *authcid = memchr(raw, '\0', (size_t)n);
			const char *passwd = authcid != NULL
				? memchr(authcid + 1, '\0', (size_t)n - (size_t)(authcid + 1 - (char *)raw))
				: NULL;
			srv_verdict(c->fd, tag, authcid != NULL ? authcid + 1 : "",
			            passwd != NULL ? passwd + 1 : "");
		} else if (strcasecmp(cmd, "AUTHENTICATE LOGIN") == 0) {
			srv_put(c->fd, "+ VXNlcm5hbWU6\r\n");
			if (srv_line(c, resp, sizeof(resp)) < 0)
				return;
			long n = b64_decode(resp, (unsigned char *)user, sizeof(user) - 1);
			user[n > 0 ? n : 0] = '\0';
			srv_put(c->fd, "+ UGFzc3dvcmQ6\r\n");
			if (srv_line(c, resp, sizeof(resp)) < 0)
				return;
			n = b64_decode(resp, (unsigned char *)pw, sizeof(pw) - 1);
			pw[n > 0 ? n : 0] = '\0';
			srv_verdict(c->fd, tag, user, pw);
		} else if (strncasecmp(cmd, "LOGIN ", 6) == 0) {
			const char *p = cmd + 6;
			if (!srv_astring(&p, user, sizeof(user)) || !srv_astring(&p, pw, sizeof(pw))) {
				snprintf(reply, sizeof(reply), "%s BAD syntax\r\n", tag);
				srv_put(c->fd, reply);
				continue;
			}
			srv_verdict(c->fd, tag, user, pw);
		} else if (strcasecmp(cmd, "LOGOUT") == 0) {
			snprintf(reply, sizeof(reply), "* BYE logging out\r\n%s OK bye\r\n", tag);
			srv_put(c->fd, reply);
			return;
		} else {
			snprintf(reply, sizeof(reply), "%s BAD unexpected command\r\n", tag);
			srv_put(c->fd, reply);
		}
	}
}

static void serve(enum listener kind, int fd)
{
	static struct sconn c;
	char line[1024], reply[1100];

	memset(&c, 0, offsetof(struct sconn, buf));
	c.fd = fd;
	switch (kind) {
	case L_TLSRESET:
		/* Implicit TLS: gone before the ClientHello is written. */
		srv_slam(fd, NULL);
		break;
	case L_STARTTLSRESET:
		snprintf(reply, sizeof(reply), "* OK [CAPABILITY %s] hygiene\r\n", l_caps[kind]);
		srv_put(fd, reply);
		if (srv_line(&c, line, sizeof(line)) < 0)
			break;
		/* The go-ahead, then gone before the ClientHello. */
		snprintf(reply, sizeof(reply), "%.40s OK Begin TLS negotiation now\r\n", strtok(line, " "));
		srv_slam(fd, reply);
		break;
	case L_PLAINRESET:
		/* Let the client finish connecting and wait for the greeting; then
		 * greeting, FIN and RST at once (see server_priority): its
		 * AUTHENTICATE goes into a reset connection. */
		sleep_ms(10);
		snprintf(reply, sizeof(reply), "* OK [CAPABILITY %s] hygiene\r\n", l_caps[kind]);
		srv_slam(fd, reply);
		break;
	case L_PLAIN:
	case L_LOGINMECH:
	case L_LOGINCMD:
		srv_imap(&c, l_caps[kind]);
		break;
	case L_COUNT:
		break;
	}
	close(fd);
}

/*
 * The resetting servers race the client: its next write must come after our
 * RST.  The server child runs as a real-time task on one CPU: a client pinned
 * to the same CPU (mode sigpipe) then cannot run between our FIN and our
 * RST.  Set by the parent, so that it knows (server_rt) whether the race is
 * decided; without the privilege the test still runs, with fewer checks.
 */
static int server_cpu = -1;
static bool server_rt;

static void server_priority(pid_t pid)
{
	cpu_set_t set;
	struct sched_param sp = { .sched_priority = 1 };
	if (server_cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET((size_t)server_cpu, &set);
	server_rt = sched_setaffinity(pid, sizeof(set), &set) == 0 &&
	            sched_setscheduler(pid, SCHED_FIFO, &sp) == 0;
}

static void server_main(const int *lfd)
{
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		struct pollfd p[L_COUNT];
		for (int i = 0; i < L_COUNT; i++)
			p[i] = (struct pollfd){ .fd = lfd[i], .events = POLLIN };
		if (poll(p, L_COUNT, -1) < 0 && errno != EINTR)
			_exit(3);
		for (int i = 0; i < L_COUNT; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			int c = accept4(lfd[i], NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0)
				serve((enum listener)i, c);
		}
	}
}

static int loopback_listener(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int one = 1;
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 128) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static bool servers_start(void)
{
	int lfd[L_COUNT];
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int c = 0; c < CPU_SETSIZE && server_cpu < 0; c++)
			if (CPU_ISSET((size_t)c, &set))
				server_cpu = c;
	for (int i = 0; i < L_COUNT; i++) {
		lfd[i] = loopback_listener(&l_port[i]);
		if (lfd[i] < 0)
			return false;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t parent = getpid();
	server_pid = fork();
	if (server_pid < 0)
		return false;
	if (server_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		server_main(lfd);
		_exit(0);
	}
	for (int i = 0; i < L_COUNT; i++)
		close(lfd[i]);
	server_priority(server_pid);
	return true;
}

static void servers_stop(void)
{
	if (server_pid > 0) {
		kill(server_pid, SIGKILL);
		waitpid(server_pid, NULL, 0);
		server_pid = -1;
	}
}

/* ---- the PAM side: services, configurations, one authentication ---- */

enum svc { SV_IMAPS, SV_IMAP, SV_SMTPS, SV_SMTP, SV_DOWN, SV_WRONGCA, SV_TLSRESET,
           SV_STARTTLSRESET, SV_PLAINRESET, SV_PLAIN, SV_LOGINMECH, SV_LOGINCMD,
           SV_FAKE, SV_FAKESMTP, SV_MISSING, SV_BADARG, SV_BADCONF, SV_COUNT };

struct svcdef {
	const char *name;
	const char *protocol;
	const char *host;
	const char *tls;
	const char *ca;            /* file in MA_TEST_CERTS */
	const char *port_env;      /* Dovecot's port, or NULL */
	int listener;              /* enum listener, or -1 */
};

static const struct svcdef svcs[SV_COUNT] = {
	/* Host names for implicit TLS (the resolver thread, DNS SANs, SNI), IP
	 * literals for STARTTLS (IP SANs), as the real tests do. */
	[SV_IMAPS] = { "imaps", "imap", "localhost", "implicit", "ca.pem", "MA_TEST_IMAPS_PORT", -1 },
	[SV_IMAP] = { "imap", "imap", "127.0.0.1", "starttls", "ca.pem", "MA_TEST_IMAP_STARTTLS_PORT", -1 },
	[SV_SMTPS] = { "smtps", "smtp", "localhost", "implicit", "ca.pem", "MA_TEST_SUBMISSIONS_PORT", -1 },
	[SV_SMTP] = { "smtp", "smtp", "127.0.0.1", "starttls", "ca.pem", "MA_TEST_SUBMISSION_PORT", -1 },
	[SV_DOWN] = { "down", "imap", "127.0.0.1", "implicit", "ca.pem", NULL, -1 },
	/* ca2 did not sign Dovecot's certificate. */
	[SV_WRONGCA] = { "wrongca", "imap", "127.0.0.1", "implicit", "ca2.pem", "MA_TEST_IMAPS_PORT", -1 },
	[SV_TLSRESET] = { "tlsreset", "imap", "127.0.0.1", "implicit", "ca.pem", NULL, L_TLSRESET },
	[SV_STARTTLSRESET] = { "starttlsreset", "imap", "127.0.0.1", "starttls", "ca.pem", NULL, L_STARTTLSRESET },
	[SV_PLAINRESET] = { "plainreset", "imap", "127.0.0.1", "none", "ca.pem", NULL, L_PLAINRESET },
	[SV_PLAIN] = { "plain", "imap", "127.0.0.1", "none", "ca.pem", NULL, L_PLAIN },
	[SV_LOGINMECH] = { "loginmech", "imap", "127.0.0.1", "none", "ca.pem", NULL, L_LOGINMECH },
	[SV_LOGINCMD] = { "logincmd", "imap", "127.0.0.1", "none", "ca.pem", NULL, L_LOGINCMD },
	[SV_FAKE] = { "fake", "imap", "127.0.0.1", "implicit", "ca.pem", NULL, -1 },
	/* fake_smtp.py: SCRAM-SHA-256 with a fixed salt, for the scan's needles. */
	[SV_FAKESMTP] = { "fakesmtp", "smtp", "127.0.0.1", "implicit", "ca.pem", NULL, -1 },
	[SV_MISSING] = { "missing", NULL, NULL, NULL, NULL, NULL, -1 },
	[SV_BADARG] = { "badarg", NULL, NULL, NULL, NULL, NULL, -1 },
	/* An unknown key and a bad value: libconfuse's own error printer would
	 * write to stderr. */
	[SV_BADCONF] = { "badconf", NULL, NULL, NULL, NULL, NULL, -1 },
};

static char confdir[PATH_MAX];
static char module_path[PATH_MAX];
static const char *certs;
static int down_port;

static bool write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return false;
	size_t len = strlen(text);
	bool ok = write(fd, text, len) == (ssize_t)len;
	ok = close(fd) == 0 && ok;
	return ok && chmod(path, mode) == 0;
}

static bool write_config(enum svc s, int port)
{
	const struct svcdef *d = &svcs[s];
	char path[PATH_MAX + 32], text[2048];
	snprintf(path, sizeof(path), "%s/%s.conf", confdir, d->name);
	snprintf(text, sizeof(text),
	         "timeout = 5\n"
	         "ca_file = \"%s/%s\"\n"
	         "server hygiene {\n"
	         "  protocol = %s\n  host = \"%s\"\n  port = %d\n  tls = %s\n"
	         "}\n", certs, d->ca, d->protocol, d->host, port, d->tls);
	return write_file(path, text, 0600);
}

static bool write_services(enum svc s)
{
	const struct svcdef *d = &svcs[s];
	char path[PATH_MAX + 32], text[PATH_MAX * 5];
	for (int debug = 0; debug < 2; debug++) {
		const char *conf = s == SV_BADARG ? "imap" : d->name;
		const char *extra = s == SV_BADARG ? " no_such_option" : "";
		snprintf(path, sizeof(path), "%s/%s%s", confdir, d->name, debug ? "-debug" : "");
		snprintf(text, sizeof(text),
		         "auth required %s config=%s/%s.conf%s%s\n"
		         "account required %s config=%s/%s.conf%s%s\n",
		         module_path, confdir, conf, debug ? " debug" : "", extra,
		         module_path, confdir, conf, debug ? " debug" : "", extra);
		if (!write_file(path, text, 0644))
			return false;
	}
	return true;
}

static void remove_confdir(void)
{
	if (confdir[0] == '\0')
		return;
	DIR *d = opendir(confdir);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char path[PATH_MAX + 300];
			snprintf(path, sizeof(path), "%s/%s", confdir, e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(confdir);
	confdir[0] = '\0';
}

static int closed_port(void)
{
	int port = 0;
	int fd = loopback_listener(&port);
	if (fd < 0)
		return -1;
	close(fd);      /* nothing listens there now */
	return port;
}

static bool setup(void)
{
	const char *mod = getenv("HYG_MODULE");
	if (realpath(mod != NULL && *mod != '\0' ? mod : "./pam_mailauth.so", module_path) == NULL) {
		check(false, "the module %s exists", mod != NULL ? mod : "./pam_mailauth.so");
		return false;
	}
	certs = getenv("MA_TEST_CERTS");
	const char *need[] = { "MA_TEST_CERTS", "MA_TEST_IMAPS_PORT", "MA_TEST_IMAP_STARTTLS_PORT",
	                       "MA_TEST_SUBMISSIONS_PORT", "MA_TEST_SUBMISSION_PORT" };
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		const char *v = getenv(need[i]);
		if (v == NULL || *v == '\0') {
			check(false, "%s is set (run through tests/run-tests.sh or test_hygiene.sh)", need[i]);
			return false;
		}
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(confdir, sizeof(confdir), "%s/ma-hygiene-XXXXXX",
	         tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(confdir) == NULL) {
		check(false, "mkdtemp %s: %s", confdir, strerror(errno));
		confdir[0] = '\0';
		return false;
	}
	down_port = closed_port();
	if (down_port <= 0 || !servers_start()) {
		check(false, "loopback test servers started");
		return false;
	}
	for (int s = 0; s < SV_COUNT; s++) {
		const struct svcdef *d = &svcs[s];
		int port = d->port_env != NULL ? atoi(getenv(d->port_env))
		         : d->listener >= 0 ? l_port[d->listener]
		         : s == SV_DOWN ? down_port : 1;
		char bad[PATH_MAX + 32];
		snprintf(bad, sizeof(bad), "%s/badconf.conf", confdir);
		if ((s == SV_BADCONF &&
		     !write_file(bad, "timeout = 5\nno_such_key = 1\nserver x { port = \"many\" }\n", 0600)) ||
		    (d->protocol != NULL && !write_config((enum svc)s, port)) ||
		    !write_services((enum svc)s)) {
			check(false, "writing the test configuration in %s", confdir);
			return false;
		}
	}
	return true;
}

static void teardown(void)
{
	servers_stop();
	remove_confdir();
}

/* The scan shim, when preloaded (NULL otherwise). */
static hyg_shim_needles_fn *shim_needles;
static hyg_shim_active_fn *shim_active;
static hyg_shim_counts_fn *shim_counts;
static hyg_shim_events_fn *shim_events;
static hyg_shim_reset_fn *shim_reset;

static void shim_find(void)
{
	shim_needles = (hyg_shim_needles_fn *)dlsym(RTLD_DEFAULT, "hyg_shim_needles");
	shim_active = (hyg_shim_active_fn *)dlsym(RTLD_DEFAULT, "hyg_shim_active");
	shim_counts = (hyg_shim_counts_fn *)dlsym(RTLD_DEFAULT, "hyg_shim_counts");
	shim_events = (hyg_shim_events_fn *)dlsym(RTLD_DEFAULT, "hyg_shim_events");
	shim_reset = (hyg_shim_reset_fn *)dlsym(RTLD_DEFAULT, "hyg_shim_reset");
	if (!shim_needles || !shim_active || !shim_counts || !shim_events || !shim_reset)
		shim_active = NULL;
}

struct conv_data {
	const char *password;
	int prompts;
};

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct conv_data *d = data;
	struct pam_response *r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		if (msg[i]->msg_style != PAM_PROMPT_ECHO_OFF && msg[i]->msg_style != PAM_PROMPT_ECHO_ON)
			continue;
		d->prompts++;
		/* libpam copies the answer into PAM_AUTHTOK, then wipes and
		 * frees this one (pam_vprompt / pam_get_authtok). */
		r[i].resp = strdup(d->password != NULL ? d->password : "");
		if (r[i].resp == NULL) {
			for (int k = 0; k < i; k++)
				free(r[k].resp);
			free(r);
			return PAM_BUF_ERR;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

enum op { OP_AUTH, OP_ACCT, OP_SETCRED };

/* One PAM transaction, exactly as a host application runs it. */
static int pam_once(const char *service, const char *user, const char *password,
                    enum op op, bool scan, int *prompts)
{
	struct conv_data cd = { .password = password, .prompts = 0 };
	struct pam_conv c = { conv, &cd };
	pam_handle_t *pamh = NULL;
	int rc = pam_start_confdir(service, user, &c, confdir, &pamh);
	if (rc != PAM_SUCCESS)
		return -1000 - rc;
	if (scan && shim_active != NULL)
		shim_active(1);
	switch (op) {
	case OP_AUTH: rc = pam_authenticate(pamh, 0); break;
	case OP_ACCT: rc = pam_acct_mgmt(pamh, 0); break;
	case OP_SETCRED: rc = pam_setcred(pamh, PAM_ESTABLISH_CRED); break;
	}
	if (scan && shim_active != NULL)
		shim_active(0);
	pam_end(pamh, rc);
	if (prompts != NULL)
		*prompts = cd.prompts;
	return rc;
}

struct acase {
	const char *label;
	enum svc svc;
	bool debug;
	const char *user;
	const char *password;
	int expect;
	int prompts;         /* expected prompts, or -1 */
	unsigned every;      /* soak: only every EVERY-th round (0: every round) */
};

static void service_name(const struct acase *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", svcs[c->svc].name, c->debug ? "-debug" : "");
}

/* Run C; true when the PAM result (and the prompt count) is as expected. */
static bool run_case(const struct acase *c, bool scan, int *got)
{
	char service[64];
	int prompts = 0;
	service_name(c, service, sizeof(service));
	int rc = pam_once(service, c->user, c->password, OP_AUTH, scan, &prompts);
	if (got != NULL)
		*got = rc;
	return rc == c->expect && (c->prompts < 0 || prompts == c->prompts);
}

/* ---- process state: descriptors, threads, heap ---- */

#define MAX_FDS 512

struct fdsnap {
	int n;
	int fd[MAX_FDS];
	char target[MAX_FDS][80];
};

static void fd_snapshot(struct fdsnap *s)
{
	s->n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return;
	int self = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL && s->n < MAX_FDS) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd == self)
			continue;
		char link[64];
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		ssize_t k = readlink(link, s->target[s->n], sizeof(s->target[0]) - 1);
		s->target[s->n][k > 0 ? k : 0] = '\0';
		s->fd[s->n++] = fd;
	}
	closedir(d);
}

static bool fd_same(const struct fdsnap *a, const struct fdsnap *b)
{
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n; i++) {
		bool found = false;
		for (int k = 0; k < b->n && !found; k++)
			found = a->fd[i] == b->fd[k];
		if (!found)
			return false;
	}
	return true;
}

static void fd_diff(const struct fdsnap *before, const struct fdsnap *after)
{
	for (int i = 0; i < after->n; i++) {
		bool found = false;
		for (int k = 0; k < before->n && !found; k++)
			found = after->fd[i] == before->fd[k];
		if (!found)
			note("new descriptor %d -> %s", after->fd[i], after->target[i]);
	}
	for (int i = 0; i < before->n; i++) {
		bool found = false;
		for (int k = 0; k < after->n && !found; k++)
			found = before->fd[i] == after->fd[k];
		if (!found)
			note("descriptor %d (%s) is gone", before->fd[i], before->target[i]);
	}
}

static int thread_count(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return -1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Bytes in use on the heap: AddressSanitizer's own count when the harness
 * runs under it (mallinfo2() then says 0), else glibc's. */
static size_t heap_in_use(void)
{
	static size_t (*asan_bytes)(void);
	static bool looked;
	if (!looked) {
		asan_bytes = (size_t (*)(void))dlsym(RTLD_DEFAULT,
		                                     "__sanitizer_get_current_allocated_bytes");
		looked = true;
	}
	return asan_bytes != NULL ? asan_bytes() : mallinfo2().uordblks;
}

/* Threads before any authentication: 1, or 2 under ThreadSanitizer (its
 * background thread). */
static int base_threads = 1;

/* The module's resolver thread is detached and may still be on its way out
 * for a moment after pam_authenticate returned. */
static int settle_threads(int want, long max_ms)
{
	long end = now_ms() + max_ms;
	int n;
	while ((n = thread_count()) > want && now_ms() < end)
		sleep_ms(10);
	return n;
}

/* ---- (a) soak ---- */

#define MAX_CASES 40

struct tally {
	unsigned runs, bad;
	long ms;
	int last_bad_rc;
	unsigned first_bad;
};

static const struct acase soak_cases[] = {
	{ "imap implicit TLS, right password", SV_IMAPS, false, "alice", PW_ALICE, PAM_SUCCESS, 1, 0 },
	{ "imap STARTTLS, wrong password", SV_IMAP, false, "alice", HYG_PASSWORD, PAM_AUTH_ERR, 1, 18 },
	{ "smtp implicit TLS, right password", SV_SMTPS, false, "bob", PW_BOB, PAM_SUCCESS, 1, 0 },
	{ "smtp STARTTLS, wrong password", SV_SMTP, false, "dave@example.org", HYG_PASSWORD, PAM_AUTH_ERR, 1, 18 },
	{ "imap STARTTLS, right password, quotes and backslashes", SV_IMAP, false, "bob", PW_BOB, PAM_SUCCESS, 1, 0 },
	{ "imap implicit TLS, wrong password, user@domain", SV_IMAPS, true, "dave@example.org", HYG_PASSWORD, PAM_AUTH_ERR, 1, 18 },
	{ "smtp STARTTLS, right password, user@domain", SV_SMTP, false, "dave@example.org", PW_DAVE, PAM_SUCCESS, 1, 0 },
	{ "server down (closed port)", SV_DOWN, false, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
	{ "TLS failure: ca_file did not sign the server", SV_WRONGCA, false, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
	{ "implicit TLS server resets before the handshake", SV_TLSRESET, false, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
	{ "STARTTLS server resets after its go-ahead", SV_STARTTLSRESET, false, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
	{ "tls = none server resets after its greeting", SV_PLAINRESET, true, LOCAL_USER, HYG_PASSWORD, PAM_AUTHINFO_UNAVAIL, 1, 0 },
	{ "tls = none, PLAIN accepted", SV_PLAIN, false, LOCAL_USER, HYG_PASSWORD, PAM_SUCCESS, 1, 0 },
	{ "tls = none, AUTH=LOGIN rejected", SV_LOGINMECH, false, LOCAL_USER, PW_ALICE, PAM_AUTH_ERR, 1, 0 },
	{ "tls = none, LOGIN command accepted", SV_LOGINCMD, false, LOCAL_USER, HYG_PASSWORD, PAM_SUCCESS, 1, 0 },
	{ "empty password", SV_IMAPS, false, "alice", "", PAM_AUTH_ERR, 1, 0 },
	{ "OpenSSH invalid-user placeholder", SV_IMAPS, false, "alice", OPENSSH_PLACEHOLDER, PAM_AUTH_ERR, 1, 0 },
	{ "root (below minimum_uid), never prompted", SV_IMAPS, false, "root", PW_ALICE, PAM_USER_UNKNOWN, 0, 0 },
	{ "configuration file missing", SV_MISSING, false, "alice", PW_ALICE, PAM_SERVICE_ERR, 0, 0 },
	{ "unknown module argument", SV_BADARG, false, "alice", PW_ALICE, PAM_SERVICE_ERR, 0, 0 },
};
#define N_SOAK (sizeof(soak_cases) / sizeof(soak_cases[0]))

/* One tests/fake/fakeserver.py run: reset inside an established TLS session. */
static bool fake_reset_once(int *got)
{
	struct fake_server fs;
	struct fake_result r;
	*got = -1;
	if (fake_start(&fs, "reset_after_greeting", NULL) != 0)
		return false;
	bool ok = write_config(SV_FAKE, (int)fs.port);
	if (ok) {
		int prompts = 0;
		*got = pam_once("fake", "alice", PW_ALICE, OP_AUTH, false, &prompts);
		ok = *got == PAM_AUTHINFO_UNAVAIL;
	}
	fake_finish(&fs, &r, 5000);
	fake_result_free(&r);
	return ok;
}

static void mode_soak(unsigned n, bool heapcheck, unsigned nfake)
{
	static struct tally t[N_SOAK];
	struct tally tf = { 0, 0, 0, 0, 0 };
	static struct fdsnap fd_warm, fd_end;
	unsigned warm = n >= 200 ? 100 : n / 2;
	/* Measured: uordblks is a sawtooth here, ~12 KiB up for a few dozen
	 * authentications and back down (bounded caches refilled after a partial
	 * flush; OpenSSL 3's method/property-query cache works that way).  So
	 * compare the lowest value over a window after warm-up with the lowest
	 * over the last window: a leak raises every value, the minimum too. */
	size_t heap_warm = SIZE_MAX, heap_end = SIZE_MAX;
	unsigned window = n >= warm + 200 ? 100 : 1;
	int threads_warm = 0;
	long t0 = now_ms();
	const char *only = getenv("HYG_SOAK_ONLY");     /* diagnostics: one case, by index */
	bool trace = getenv("HYG_HEAP_TRACE") != NULL;  /* diagnostics: heap every 50 */

	/* Dovecot answers a wrong password only at its next 0.5 s auth-failure
	 * tick (auth_failure_delay = 0 notwithstanding), twice with the SCRAM ->
	 * PLAIN fallback: those cases run every EVERY-th round (phase k), the
	 * rest every round.  Fast wrong passwords come from the plain servers. */
	static unsigned char sched[4096];
	if (n > sizeof(sched))
		n = sizeof(sched);
	for (unsigned i = 0, round = 0; i < n; round++)
		for (unsigned k = 0; k < N_SOAK && i < n; k++)
			if ((only == NULL || (unsigned)atoi(only) == k) &&
			    (soak_cases[k].every == 0 || round % soak_cases[k].every == k % soak_cases[k].every))
				sched[i++] = (unsigned char)k;

	for (unsigned i = 0; i < n; i++) {
		if (i == warm) {
			threads_warm = settle_threads(base_threads, 2000);
			fd_snapshot(&fd_warm);
		}
		if (i >= warm && i < warm + window) {
			size_t u = heap_in_use();
			heap_warm = u < heap_warm ? u : heap_warm;
		}
		if (trace && i % 50 == 0)
			printf("# heap trace: %u authentications, %zu bytes in use\n", i, heap_in_use());
		const struct acase *c = &soak_cases[sched[i]];
		struct tally *x = &t[sched[i]];
		int got;
		x->runs++;
		long c0 = now_ms();
		bool good = run_case(c, false, &got);
		x->ms += now_ms() - c0;
		if (i + window >= n && i + 1 < n) {
			size_t u = heap_in_use();
			heap_end = u < heap_end ? u : heap_end;
		}
		if (!good) {
			if (x->bad++ == 0)
				x->first_bad = i;
			x->last_bad_rc = got;
		}
		/* The fake server forks python: spread K runs over the middle. */
		if (nfake > 0 && i >= warm && i < n - 1 &&
		    (i - warm) % ((n - warm) / nfake + 1) == (n - warm) / (2 * nfake)) {
			tf.runs++;
			if (!fake_reset_once(&got)) {
				tf.bad++;
				tf.last_bad_rc = got;
			}
		}
	}
	int threads_end = settle_threads(base_threads, 3000);
	{
		size_t u = heap_in_use();
		heap_end = u < heap_end ? u : heap_end;
	}
	fd_snapshot(&fd_end);
	long ms = now_ms() - t0;

	for (size_t k = 0; k < N_SOAK; k++) {
		const struct acase *c = &soak_cases[k];
		if (check(t[k].bad == 0, "soak: %s: %u/%u -> %s (%ld ms each)", c->label,
		          t[k].runs - t[k].bad, t[k].runs, rc_name(c->expect),
		          t[k].runs ? t[k].ms / (long)t[k].runs : 0L))
			continue;
		note("first wrong result at iteration %u, last one: %s (%d)", t[k].first_bad,
		     rc_name(t[k].last_bad_rc), t[k].last_bad_rc);
	}
	if (nfake > 0)
		check(tf.bad == 0 && tf.runs > 0,
		      "soak: fakeserver.py resets inside the TLS session: %u/%u -> PAM_AUTHINFO_UNAVAIL%s",
		      tf.runs - tf.bad, tf.runs, tf.bad ? " (see the last result below)" : "");
	if (tf.bad)
		note("last wrong result: %s (%d)", rc_name(tf.last_bad_rc), tf.last_bad_rc);
	printf("# soak: %u authentications in %ld ms\n", n, ms);

	if (check(fd_same(&fd_warm, &fd_end),
	          "soak: open descriptors after warm-up (%d, iteration %u) and at the end (%d) are the same",
	          fd_warm.n, warm, fd_end.n))
		;
	else
		fd_diff(&fd_warm, &fd_end);
	check(threads_end == base_threads,
	      "soak: no thread left behind (%d before, %d at warm-up, %d at the end)",
	      base_threads, threads_warm, threads_end);
	if (heapcheck) {
		long growth = (long)heap_end - (long)heap_warm;
		check(growth < 16 * 1024,
		      "soak: heap flat: lowest bytes in use over %u authentications after "
		      "%u: %zu, over the last %u: %zu (%+ld bytes, limit 16 KiB)", window, warm,
		      heap_warm, window, heap_end, growth);
	}
}

/* ---- (c) SIGPIPE ---- */

/* A naive client (plain write(), no MSG_NOSIGNAL) against listener KIND:
 * does it die of SIGPIPE?  Proves that the servers provoke what the
 * module must survive. */
static bool naive_writer_dies(enum listener kind)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = { .sin_family = AF_INET,
		                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		                         .sin_port = htons((uint16_t)l_port[kind]) };
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
			_exit(2);
		char buf[512];
		if (kind == L_PLAINRESET)
			(void)!read(fd, buf, sizeof(buf));
		sleep_ms(100);
		for (int i = 0; i < 3; i++)
			(void)!write(fd, "a1 CAPABILITY\r\n", 15);
		_exit(0);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE;
}

static void mode_sigpipe(void)
{
	static const struct acase cases[] = {
		{ "STARTTLS: reset after the go-ahead, under the ClientHello", SV_STARTTLSRESET, false, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
		{ "STARTTLS (debug): reset after the go-ahead", SV_STARTTLSRESET, true, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
		{ "tls = none: reset after the greeting, under AUTHENTICATE", SV_PLAINRESET, false, LOCAL_USER, HYG_PASSWORD, PAM_AUTHINFO_UNAVAIL, 1, 0 },
		{ "tls = none (debug): reset after the greeting", SV_PLAINRESET, true, LOCAL_USER, HYG_PASSWORD, PAM_AUTHINFO_UNAVAIL, 1, 0 },
		/* Gone as soon as the connection is up: usually seen at connect
		 * (SO_ERROR), sometimes under the ClientHello. */
		{ "implicit TLS: reset at once", SV_TLSRESET, false, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
		{ "implicit TLS (debug): reset at once", SV_TLSRESET, true, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
	};
	/* Cases whose every run must write into the reset connection. */
	const size_t n_decided = 4;
	const int rounds = 10;
	sigset_t pipe_set;

	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_UNBLOCK, &pipe_set, NULL);

	/* Share the servers' CPU (see server_priority). */
	if (server_cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET((size_t)server_cpu, &set);
		(void)sched_setaffinity(0, sizeof(set), &set);
	}
	check(naive_writer_dies(L_PLAINRESET),
	      "sigpipe: control: a plain write() after the reset greeting dies of SIGPIPE");
	check(naive_writer_dies(L_TLSRESET),
	      "sigpipe: control: a plain write() to the resetting TLS port dies of SIGPIPE");

	if (shim_active != NULL)
		shim_reset();
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		unsigned bad = 0;
		int got = 0, last = 0;
		struct hyg_counts k0 = { 0 }, k1 = { 0 };
		if (shim_active != NULL)
			shim_counts(&k0);
		for (int r = 0; r < rounds; r++) {
			if (!run_case(&cases[k], true, &got)) {
				bad++;
				last = got;
			}
		}
		if (shim_active != NULL)
			shim_counts(&k1);
		if (!check(bad == 0, "sigpipe: %s: survived, %d/%d -> %s", cases[k].label,
		           rounds - (int)bad, rounds, rc_name(cases[k].expect)))
			note("last wrong result: %s (%d)", rc_name(last), last);
		if (shim_active == NULL)
			continue;
		unsigned long epipe = k1.sends_epipe - k0.sends_epipe;
		if (k < n_decided && server_rt)
			check(epipe == (unsigned long)rounds,
			      "sigpipe: %s: each run wrote into the reset connection (EPIPE %lu/%d)",
			      cases[k].label, epipe, rounds);
		else
			printf("#   EPIPE in %lu of %d runs\n", epipe, rounds);
	}
	int got;
	bool fake_ok = fake_reset_once(&got);
	check(fake_ok, "sigpipe: fakeserver.py reset_after_greeting (inside TLS): survived -> %s",
	      rc_name(got));

	struct sigaction sa;
	sigaction(SIGPIPE, NULL, &sa);
	check(sa.sa_handler == SIG_DFL, "sigpipe: SIGPIPE still at SIG_DFL, and we are alive");
	if (shim_active != NULL) {
		struct hyg_counts k;
		shim_counts(&k);
		check(k.sends_epipe > 0,
		      "sigpipe: the module's sends hit EPIPE %lu times (of %lu sends): the peer was "
		      "gone mid-write, and MSG_NOSIGNAL kept the process alive", k.sends_epipe, k.sends);
		check(k.sigpipe_sends == 0 && k.socket_writes == 0,
		      "sigpipe: every socket write was send(MSG_NOSIGNAL) (%lu without, %lu write())",
		      k.sigpipe_sends, k.socket_writes);
	}
}

/* ---- (d) signals and alarms ---- */

#define MAX_SIG 65

struct sigsnap {
	int rc[MAX_SIG];
	struct sigaction act[MAX_SIG];
	sigset_t mask, pending;
	struct itimerval real, virt, prof;
};

static volatile sig_atomic_t alarm_hits, hup_hits;

static void on_alarm(int sig)
{
	(void)sig;
	alarm_hits++;
}

static void on_hup(int sig, siginfo_t *info, void *uctx)
{
	(void)sig; (void)info; (void)uctx;
	hup_hits++;
}

static void sig_snapshot(struct sigsnap *s)
{
	memset(s, 0, sizeof(*s));
	for (int sig = 1; sig < MAX_SIG; sig++)
		s->rc[sig] = sigaction(sig, NULL, &s->act[sig]);
	pthread_sigmask(SIG_SETMASK, NULL, &s->mask);
	sigpending(&s->pending);
	getitimer(ITIMER_VIRTUAL, &s->virt);
	getitimer(ITIMER_PROF, &s->prof);
}

static bool sets_equal(const sigset_t *a, const sigset_t *b)
{
	for (int sig = 1; sig < MAX_SIG; sig++)
		if (sigismember(a, sig) != sigismember(b, sig))
			return false;
	return true;
}

static void *handler_of(const struct sigaction *a)
{
	return (a->sa_flags & SA_SIGINFO) ? (void *)(uintptr_t)a->sa_sigaction
	                                  : (void *)(uintptr_t)a->sa_handler;
}

static void mode_signals(void)
{
	static const struct acase cases[] = {
		{ "imaps (resolver thread)", SV_IMAPS, false, "alice", PW_ALICE, PAM_SUCCESS, 1, 0 },
		{ "imap STARTTLS wrong", SV_IMAP, true, "alice", HYG_PASSWORD, PAM_AUTH_ERR, 1, 0 },
		{ "smtps", SV_SMTPS, false, "bob", PW_BOB, PAM_SUCCESS, 1, 0 },
		{ "smtp STARTTLS wrong", SV_SMTP, false, "dave@example.org", HYG_PASSWORD, PAM_AUTH_ERR, 1, 0 },
		{ "down", SV_DOWN, false, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
		{ "wrong CA", SV_WRONGCA, false, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
		{ "TLS reset", SV_TLSRESET, false, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
		{ "plain reset", SV_PLAINRESET, false, LOCAL_USER, HYG_PASSWORD, PAM_AUTHINFO_UNAVAIL, 1, 0 },
		{ "plain PLAIN", SV_PLAIN, false, LOCAL_USER, HYG_PASSWORD, PAM_SUCCESS, 1, 0 },
		{ "root", SV_IMAPS, false, "root", PW_ALICE, PAM_USER_UNKNOWN, 0, 0 },
		{ "empty password", SV_IMAPS, false, "alice", "", PAM_AUTH_ERR, 1, 0 },
	};
	static struct sigsnap before, after;

	/* A host with opinions: an alarm handler and a pending alarm, an ignored
	 * and a SA_SIGINFO disposition, SIGPIPE at its default, blocked signals. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR1);
	sigaction(SIGALRM, &sa, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_hup;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGUSR1, SIG_IGN);
	signal(SIGPIPE, SIG_DFL);
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	alarm(100);

	sig_snapshot(&before);
	struct itimerval real_before;
	getitimer(ITIMER_REAL, &real_before);
	unsigned bad = 0;
	for (int round = 0; round < 2; round++) {
		for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
			int got;
			if (!run_case(&cases[k], false, &got)) {
				bad++;
				note("%s: %s (%d), expected %s", cases[k].label, rc_name(got), got,
				     rc_name(cases[k].expect));
			}
		}
	}
	settle_threads(base_threads, 2000);
	sig_snapshot(&after);
	struct itimerval real_after;
	getitimer(ITIMER_REAL, &real_after);
	unsigned left = alarm(0);

	check(bad == 0, "signals: %zu authentications with an alarm pending, all results as expected",
	      2 * sizeof(cases) / sizeof(cases[0]));
	check(left > 90 && left <= 100,
	      "signals: the pending alarm(100) is untouched: alarm(0) returned %u", left);
	check(real_after.it_interval.tv_sec == real_before.it_interval.tv_sec &&
	      real_after.it_interval.tv_usec == real_before.it_interval.tv_usec,
	      "signals: ITIMER_REAL's interval unchanged");
	check(alarm_hits == 0 && hup_hits == 0, "signals: no handler of ours ran (SIGALRM %d, SIGHUP %d)",
	      (int)alarm_hits, (int)hup_hits);
	int changed = 0;
	for (int sig = 1; sig < MAX_SIG; sig++) {
		const struct sigaction *a = &before.act[sig], *b = &after.act[sig];
		if (before.rc[sig] != after.rc[sig] ||
		    (before.rc[sig] == 0 &&
		     (handler_of(a) != handler_of(b) || a->sa_flags != b->sa_flags ||
		      !sets_equal(&a->sa_mask, &b->sa_mask)))) {
			changed++;
			note("signal %d (%s): disposition changed", sig, strsignal(sig));
		}
	}
	check(changed == 0, "signals: the disposition of every signal 1..%d is unchanged", MAX_SIG - 1);
	check(sets_equal(&before.mask, &after.mask), "signals: the signal mask is unchanged");
	check(sets_equal(&before.pending, &after.pending), "signals: no signal left pending");
	check(memcmp(&before.virt, &after.virt, sizeof(before.virt)) == 0 &&
	      memcmp(&before.prof, &after.prof, sizeof(before.prof)) == 0,
	      "signals: ITIMER_VIRTUAL and ITIMER_PROF untouched");
}

/* ---- (e) threads ---- */

static const struct acase thread_cases[] = {
	{ "imap implicit TLS, right", SV_IMAPS, false, "alice", PW_ALICE, PAM_SUCCESS, 1, 0 },
	{ "imap STARTTLS, wrong", SV_IMAP, false, "alice", HYG_PASSWORD, PAM_AUTH_ERR, 1, 0 },
	{ "smtp implicit TLS, right", SV_SMTPS, false, "bob", PW_BOB, PAM_SUCCESS, 1, 0 },
	{ "smtp STARTTLS, wrong", SV_SMTP, false, "dave@example.org", HYG_PASSWORD, PAM_AUTH_ERR, 1, 0 },
	{ "imap STARTTLS, right", SV_IMAP, true, "bob", PW_BOB, PAM_SUCCESS, 1, 0 },
	{ "imap implicit TLS, wrong", SV_IMAPS, false, "dave@example.org", HYG_PASSWORD, PAM_AUTH_ERR, 1, 0 },
	{ "smtp STARTTLS, right", SV_SMTP, false, "dave@example.org", PW_DAVE, PAM_SUCCESS, 1, 0 },
	{ "tls = none, PLAIN accepted", SV_PLAIN, false, LOCAL_USER, HYG_PASSWORD, PAM_SUCCESS, 1, 0 },
	{ "server down", SV_DOWN, false, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
	{ "wrong CA", SV_WRONGCA, false, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
	{ "TLS reset", SV_TLSRESET, false, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
	{ "root", SV_IMAPS, false, "root", PW_ALICE, PAM_USER_UNKNOWN, 0, 0 },
};
#define N_THREAD_CASES (sizeof(thread_cases) / sizeof(thread_cases[0]))

struct worker {
	pthread_t tid;
	int id;
	unsigned n;
	pthread_barrier_t *barrier;
	unsigned runs[N_THREAD_CASES], bad[N_THREAD_CASES];
	int last_bad_rc[N_THREAD_CASES];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	pthread_barrier_wait(w->barrier);
	for (unsigned k = 0; k < w->n; k++) {
		size_t c = ((size_t)w->id * 5 + k) % N_THREAD_CASES;
		int got;
		w->runs[c]++;
		if (!run_case(&thread_cases[c], false, &got)) {
			w->bad[c]++;
			w->last_bad_rc[c] = got;
		}
	}
	return NULL;
}

static void mode_threads(unsigned nthreads, unsigned per)
{
	static struct worker w[64];
	pthread_barrier_t barrier;
	if (nthreads > 64)
		nthreads = 64;
	pthread_barrier_init(&barrier, NULL, nthreads);
	long t0 = now_ms();
	unsigned started = 0;
	for (unsigned i = 0; i < nthreads; i++) {
		w[i] = (struct worker){ .id = (int)i, .n = per, .barrier = &barrier };
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0)
			break;
		started++;
	}
	if (!check(started == nthreads, "threads: %u threads started", nthreads)) {
		/* The barrier would never open: nothing sensible is left to do. */
		teardown();
		exit(1);
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(w[i].tid, NULL);
	long ms = now_ms() - t0;
	pthread_barrier_destroy(&barrier);

	unsigned total = 0, total_bad = 0;
	for (size_t c = 0; c < N_THREAD_CASES; c++) {
		unsigned runs = 0, bad = 0;
		int last = 0;
		for (unsigned i = 0; i < started; i++) {
			runs += w[i].runs[c];
			bad += w[i].bad[c];
			if (w[i].bad[c])
				last = w[i].last_bad_rc[c];
		}
		total += runs;
		total_bad += bad;
		if (runs == 0)
			continue;
		if (!check(bad == 0, "threads: %s: %u/%u -> %s", thread_cases[c].label, runs - bad,
		           runs, rc_name(thread_cases[c].expect)))
			note("a wrong result: %s (%d)", rc_name(last), last);
	}
	check(total_bad == 0 && total == nthreads * per,
	      "threads: %u threads x %u authentications concurrently, all %u results right (%ld ms)",
	      nthreads, per, total, ms);
	int left = settle_threads(base_threads, 3000);
	check(left == base_threads, "threads: no thread of the module left behind (%d, %d before)",
	      left, base_threads);
}

/* ---- (f) stdout / stderr ---- */

static void mode_quiet(void)
{
	static const struct acase cases[] = {
		{ "imaps debug right", SV_IMAPS, true, "alice", PW_ALICE, PAM_SUCCESS, 1, 0 },
		{ "imap debug wrong", SV_IMAP, true, "alice", HYG_PASSWORD, PAM_AUTH_ERR, 1, 0 },
		{ "smtps debug right", SV_SMTPS, true, "bob", PW_BOB, PAM_SUCCESS, 1, 0 },
		{ "smtp debug wrong", SV_SMTP, true, "dave@example.org", HYG_PASSWORD, PAM_AUTH_ERR, 1, 0 },
		{ "down debug", SV_DOWN, true, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
		{ "wrong CA debug", SV_WRONGCA, true, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
		{ "TLS reset debug", SV_TLSRESET, true, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
		{ "STARTTLS reset debug", SV_STARTTLSRESET, true, "alice", PW_ALICE, PAM_AUTHINFO_UNAVAIL, 1, 0 },
		{ "plain reset debug", SV_PLAINRESET, true, LOCAL_USER, HYG_PASSWORD, PAM_AUTHINFO_UNAVAIL, 1, 0 },
		{ "plain LOGIN mech debug", SV_LOGINMECH, true, LOCAL_USER, HYG_PASSWORD, PAM_SUCCESS, 1, 0 },
		{ "plain LOGIN command debug", SV_LOGINCMD, true, LOCAL_USER, PW_ALICE, PAM_AUTH_ERR, 1, 0 },
		{ "root debug", SV_IMAPS, true, "root", PW_ALICE, PAM_USER_UNKNOWN, 0, 0 },
		{ "empty password debug", SV_IMAPS, true, "alice", "", PAM_AUTH_ERR, 1, 0 },
		{ "user with a newline", SV_IMAPS, true, "ali\nce", PW_ALICE, PAM_AUTH_ERR, -1, 0 },
		{ "missing configuration", SV_MISSING, true, "alice", PW_ALICE, PAM_SERVICE_ERR, 0, 0 },
		{ "unknown module argument", SV_BADARG, true, "alice", PW_ALICE, PAM_SERVICE_ERR, 0, 0 },
		{ "broken configuration file", SV_BADCONF, true, "alice", PW_ALICE, PAM_SERVICE_ERR, 0, 0 },
	};
	enum { N = sizeof(cases) / sizeof(cases[0]) };
	int got[N + 3];
	char outp[PATH_MAX + 16], errp[PATH_MAX + 16];

	snprintf(outp, sizeof(outp), "%s/stdout", confdir);
	snprintf(errp, sizeof(errp), "%s/stderr", confdir);
	int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int save1 = fcntl(1, F_DUPFD_CLOEXEC, 10), save2 = fcntl(2, F_DUPFD_CLOEXEC, 10);
	if (!check(o >= 0 && e >= 0 && save1 >= 0 && save2 >= 0, "quiet: capture files ready"))
		return;
	fflush(stdout);
	fflush(stderr);
	dup2(o, 1);
	dup2(e, 2);
	/* From here to the restore, nothing of ours is printed. */
	for (int i = 0; i < N; i++)
		(void)run_case(&cases[i], false, &got[i]);
	got[N] = pam_once("imaps-debug", "alice", NULL, OP_ACCT, false, NULL);
	got[N + 1] = pam_once("imaps-debug", "root", NULL, OP_ACCT, false, NULL);
	got[N + 2] = pam_once("imaps-debug", "alice", NULL, OP_SETCRED, false, NULL);
	fflush(stdout);
	fflush(stderr);
	dup2(save1, 1);
	dup2(save2, 2);
	close(save1);
	close(save2);

	struct stat so, se;
	fstat(o, &so);
	fstat(e, &se);
	close(o);
	close(e);
	unsigned bad = 0;
	for (int i = 0; i < N; i++) {
		if (got[i] != cases[i].expect) {
			bad++;
			note("%s: %s (%d), expected %s", cases[i].label, rc_name(got[i]), got[i],
			     rc_name(cases[i].expect));
		}
	}
	check(bad == 0, "quiet: %d authentications with debug, failures included, results as expected", N);
	check(got[N] == PAM_SUCCESS && got[N + 1] == PAM_USER_UNKNOWN && got[N + 2] == PAM_SUCCESS,
	      "quiet: acct_mgmt (alice %s, root %s) and setcred (%s)", rc_name(got[N]),
	      rc_name(got[N + 1]), rc_name(got[N + 2]));
	const char *paths[2] = { outp, errp };
	const off_t sizes[2] = { so.st_size, se.st_size };
	for (int k = 0; k < 2; k++) {
		if (check(sizes[k] == 0, "quiet: the module wrote nothing to %s (%lld bytes)",
		          k == 0 ? "stdout" : "stderr", (long long)sizes[k]))
			continue;
		FILE *f = fopen(paths[k], "re");
		char line[512];
		for (int n = 0; f != NULL && n < 10 && fgets(line, sizeof(line), f) != NULL; n++) {
			line[strcspn(line, "\n")] = '\0';
			note("%s: %s", k == 0 ? "stdout" : "stderr", line);
		}
		if (f != NULL)
			fclose(f);
	}
}

/* ---- (h) no copy of the password left behind ---- */

/*
 * What counts.  libpam copies the password (the conversation's answer into
 * PAM_AUTHTOK) and wipes both copies itself (pam_vprompt, pam_get_authtok,
 * pam_end: _pam_overwrite before free), so the module's share is judged on
 *  - every block freed while pam_authenticate runs, attributed by the first
 *    caller outside the shim: the module itself (ma_freezero, OPENSSL_free
 *    from its code...), OpenSSL or libc working for it (the module is on the
 *    stack: record buffers, BIOs, SCRAM/HMAC contexts), libpam, or the
 *    harness;
 *  - after pam_end: every private writable mapping of the process (heap,
 *    thread arenas, stacks below the current frame, .data/.bss), for copies
 *    that were never freed or were freed by a path the shim does not see.
 * Needles: the password, base64 of the PLAIN message for each user the cases
 * use, base64 of the password alone (AUTH=LOGIN).  Two controls prove the
 * detectors work: a canary freed unwiped by the harness must be reported by
 * both.  TLS sessions with the password come from Dovecot (SCRAM rejected,
 * then PLAIN over TLS) and from fakeserver.py (PLAIN accepted over TLS);
 * tls = none servers take PLAIN, AUTH=LOGIN and the LOGIN command.
 */
#define CANARY "Zq7-canary-not-the-password-Zq7"

enum { NEEDLE_MAX = 160 };
static char needle_buf[HYG_MAX_NEEDLES][NEEDLE_MAX];
static const char *needle_ptr[HYG_MAX_NEEDLES];
static size_t needle_len[HYG_MAX_NEEDLES];
static const char *needle_what[HYG_MAX_NEEDLES];
static size_t n_needles;
static int canary_needle = -1;

static void add_needle(const char *what, const void *data, size_t len)
{
	if (n_needles >= HYG_MAX_NEEDLES || len >= NEEDLE_MAX)
		return;
	memcpy(needle_buf[n_needles], data, len);
	needle_ptr[n_needles] = needle_buf[n_needles];
	needle_len[n_needles] = len;
	needle_what[n_needles] = what;
	n_needles++;
}

static int hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * SPEC 7 wants the keys SCRAM derives from the password wiped too.
 * test_hygiene.sh computes them (Python's hashlib: this harness links
 * libpam only) for fake_smtp.py's fixed salt and iteration count and
 * passes them as HYG_SCRAM_KEYS, three hex strings separated by commas:
 * SaltedPassword, ClientKey, ServerKey.
 */
static void add_scram_needles(void)
{
	static const char *const whats[] = { "SCRAM SaltedPassword", "SCRAM ClientKey",
	                                     "SCRAM ServerKey" };
	const char *p = getenv("HYG_SCRAM_KEYS");
	for (size_t k = 0; p != NULL && k < 3; k++) {
		unsigned char key[32];
		size_t n = 0;
		while (n < sizeof(key) && hex_digit(p[0]) >= 0 && hex_digit(p[1]) >= 0) {
			key[n++] = (unsigned char)(hex_digit(p[0]) * 16 + hex_digit(p[1]));
			p += 2;
		}
		if (n == sizeof(key))
			add_needle(whats[k], key, n);
		explicit_bzero(key, sizeof(key));
		p = *p == ',' ? p + 1 : NULL;
	}
}

/* The password, the base64 of every SASL message that carries it, and the
 * SCRAM keys derived from it (add_scram_needles). */
static void make_needles(void)
{
	static const char *const users[] = { "alice", "bob", "dave@example.org", LOCAL_USER };
	static const char *const whats[] = { "base64 PLAIN for alice", "base64 PLAIN for bob",
	                                     "base64 PLAIN for dave",
	                                     "base64 PLAIN for " LOCAL_USER };
	unsigned char msg[128];
	char b64[NEEDLE_MAX];
	add_needle("the password", HYG_PASSWORD, strlen(HYG_PASSWORD));
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		size_t ul = strlen(users[i]), pl = strlen(HYG_PASSWORD);
		msg[0] = '\0';
		memcpy(msg + 1, users[i], ul);
		msg[1 + ul] = '\0';
		memcpy(msg + 2 + ul, HYG_PASSWORD, pl);
		size_t n = b64_encode(msg, 2 + ul + pl, b64, sizeof(b64));
		add_needle(whats[i], b64, n);
	}
	size_t n = b64_encode((const unsigned char *)HYG_PASSWORD, strlen(HYG_PASSWORD), b64, sizeof(b64));
	add_needle("base64 of the password (AUTH=LOGIN)", b64, n);
	add_scram_needles();
	canary_needle = (int)n_needles;
	add_needle("the control canary", CANARY, strlen(CANARY));
	explicit_bzero(msg, sizeof(msg));
	explicit_bzero(b64, sizeof(b64));
}

static const void *module_base, *shim_base;

/* "lib.so+0xOFF (symbol+0xOFF)" for a return address (minus one: the call
 * site).  The module's own functions are hidden, so for it only the offset
 * is given: test_hygiene.sh resolves those with addr2line. */
static void describe_frame(void *addr, char *buf, size_t len)
{
	Dl_info info;
	uintptr_t a = (uintptr_t)addr - 1;
	if (dladdr((void *)a, &info) == 0 || info.dli_fname == NULL) {
		snprintf(buf, len, "%p", addr);
		return;
	}
	const char *base = strrchr(info.dli_fname, '/');
	base = base != NULL ? base + 1 : info.dli_fname;
	unsigned long off = (unsigned long)(a - (uintptr_t)info.dli_fbase);
	if (info.dli_sname != NULL && info.dli_fbase != module_base)
		snprintf(buf, len, "%s+0x%lx (%s+0x%lx)", base, off, info.dli_sname,
		         (unsigned long)(a - (uintptr_t)info.dli_saddr));
	else
		snprintf(buf, len, "%s+0x%lx", base, off);
}

static const void *dso_base(const void *addr)
{
	Dl_info info;
	return dladdr(addr, &info) != 0 ? info.dli_fbase : NULL;
}

static const char *dso_name(const void *addr)
{
	Dl_info info;
	if (dladdr(addr, &info) == 0 || info.dli_fname == NULL)
		return "?";
	const char *base = strrchr(info.dli_fname, '/');
	return base != NULL ? base + 1 : info.dli_fname;
}

/* Is a function named NAME (an exported one) on the event's stack? */
static bool on_stack(const struct hyg_event *ev, const char *name)
{
	for (int i = 0; i < ev->nframes; i++) {
		Dl_info info;
		if (dladdr(ev->frames[i], &info) != 0 && info.dli_sname != NULL &&
		    strcmp(info.dli_sname, name) == 0)
			return true;
	}
	return false;
}

enum who { WHO_MODULE, WHO_OPENSSL, WHO_LIBPAM, WHO_OTHER_FOR_MODULE, WHO_OUTSIDE, WHO_COUNT };
static const char *const who_name[WHO_COUNT] = {
	"pam_mailauth.so itself", "OpenSSL, called by the module", "libpam",
	"another library, called by the module", "outside the module (libpam's audit, the harness)",
};

/* Who released / created it: the first frame outside the shim, and whether
 * the module is anywhere on the stack. */
static enum who classify(const struct hyg_event *ev, int *caller_idx)
{
	int first = -1;
	bool module_on_stack = false;
	for (int i = 0; i < ev->nframes; i++) {
		const void *b = dso_base(ev->frames[i]);
		if (b == shim_base)
			continue;
		if (first < 0)
			first = i;
		if (b == module_base)
			module_on_stack = true;
	}
	*caller_idx = first;
	if (first < 0)
		return WHO_OUTSIDE;
	const char *cn = dso_name(ev->frames[first]);
	if (dso_base(ev->frames[first]) == module_base)
		return WHO_MODULE;
	if (!module_on_stack)
		return strncmp(cn, "libpam.so", 9) == 0 ? WHO_LIBPAM : WHO_OUTSIDE;
	if (strncmp(cn, "libssl", 6) == 0 || strncmp(cn, "libcrypto", 9) == 0)
		return WHO_OPENSSL;
	return WHO_OTHER_FOR_MODULE;
}

static void print_event(const struct hyg_event *ev, int caller)
{
	char frame[300];
	for (int i = caller < 0 ? 0 : caller, shown = 0; i < ev->nframes && shown < 14; i++, shown++) {
		describe_frame(ev->frames[i], frame, sizeof(frame));
		note("    #%d %s", shown, frame);
	}
}

struct remnant {
	uintptr_t addr;
	int needle;
	char where[64];
};

#define MAX_REMNANTS 64

/* Every private writable mapping of this process, searched for the needles
 * (our own needle storage excluded). */
static size_t sweep(struct remnant *out, size_t max)
{
	size_t n = 0;
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	uintptr_t skip_lo = (uintptr_t)needle_buf, skip_hi = skip_lo + sizeof(needle_buf);
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;
		char perms[8] = "", path[256] = "";
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255[^\n]", &lo, &hi, perms, path) < 3)
			continue;
		if (perms[0] != 'r' || perms[1] != 'w' || strstr(path, "[vvar") != NULL)
			continue;
		for (size_t k = 0; k < n_needles; k++) {
			const char *p = (const char *)lo, *end = (const char *)hi;
			while (p < end) {
				const char *hit = memmem(p, (size_t)(end - p), needle_ptr[k], needle_len[k]);
				if (hit == NULL)
					break;
				if (((uintptr_t)hit < skip_lo || (uintptr_t)hit >= skip_hi) && n < max) {
					out[n].addr = (uintptr_t)hit;
					out[n].needle = (int)k;
					snprintf(out[n].where, sizeof(out[n].where), "%.63s",
					         path[0] != '\0' ? path : "[anonymous]");
					n++;
				}
				p = hit + 1;
			}
		}
	}
	fclose(f);
	return n;
}

/* Remnants in NOW not yet in SEEN are added to SEEN and counted per needle
 * kind: *password (the real needles) and *canary. */
static void new_remnants(const struct remnant *now, size_t k, struct remnant *seen,
                         size_t *n_seen, const char *after, unsigned *password,
                         unsigned *canary)
{
	for (size_t a = 0; a < k; a++) {
		bool known = false;
		for (size_t b = 0; b < *n_seen && !known; b++)
			known = seen[b].addr == now[a].addr && seen[b].needle == now[a].needle;
		if (known || *n_seen >= MAX_REMNANTS)
			continue;
		seen[(*n_seen)++] = now[a];
		if (now[a].needle == canary_needle) {
			(*canary)++;
			continue;
		}
		(*password)++;
		note("after \"%s\": %s at %#lx in %s", after, needle_what[now[a].needle],
		     (unsigned long)now[a].addr, now[a].where);
	}
}

/* One login of LOCAL_USER with the test password through service SVC
 * against a fake server (SCRIPT_NAME with LEAD arguments); its PAM result.
 * The server's record of what we sent is not read back: that would put
 * copies of the secrets in our own heap. */
static int fake_login(const char *script_name, const char *const *lead, enum svc svc)
{
	const char *extra[] = { "--user", LOCAL_USER, "--password", HYG_PASSWORD, NULL };
	struct fake_server fs;
	int got = -1, prompts = 0;
	if (fake_spawn(&fs, script_name, lead, extra) != 0)
		return got;
	if (write_config(svc, (int)fs.port))
		got = pam_once(svcs[svc].name, LOCAL_USER, HYG_PASSWORD, OP_AUTH, true, &prompts);
	fake_stop(&fs, 5000);
	unlink(fs.record);
	unlink(fs.transcript);
	rmdir(fs.dir);
	return got;
}

/* PLAIN over implicit TLS against fakeserver.py. */
static int fake_tls_login(void)
{
	const char *lead[] = { "--scenario", "good_implicit", NULL };
	return fake_login("fakeserver.py", lead, SV_FAKE);
}

/* SCRAM-SHA-256 over SMTPS against fake_smtp.py (fixed salt): a login
 * that derives exactly the keys of add_scram_needles. */
static int fake_scram_login(void)
{
	static const char script[] =
		"tls\nsend 220 fake.test ESMTP ready\n"
		"expect EHLO \nsend 250-fake.test\\r\\n250 AUTH SCRAM-SHA-256\n"
		"scram ok\nexpect= QUIT\n";
	const char *lead[] = { "--scenario", "scan-scram", "--script", script, NULL };
	return fake_login("fake_smtp.py", lead, SV_FAKESMTP);
}

static void mode_scan(unsigned rounds)
{
	static const struct acase cases[] = {
		{ "imap implicit TLS, SCRAM rejected, PLAIN fallback rejected", SV_IMAPS, false, "alice", HYG_PASSWORD, PAM_AUTH_ERR, 1, 0 },
		{ "imap STARTTLS (debug), rejected", SV_IMAP, true, "alice", HYG_PASSWORD, PAM_AUTH_ERR, 1, 0 },
		{ "smtp implicit TLS, rejected", SV_SMTPS, false, "bob", HYG_PASSWORD, PAM_AUTH_ERR, 1, 0 },
		{ "smtp STARTTLS (debug), rejected", SV_SMTP, true, "dave@example.org", HYG_PASSWORD, PAM_AUTH_ERR, 1, 0 },
		{ "tls = none, PLAIN accepted", SV_PLAIN, false, LOCAL_USER, HYG_PASSWORD, PAM_SUCCESS, 1, 0 },
		{ "tls = none (debug), AUTH=LOGIN accepted", SV_LOGINMECH, true, LOCAL_USER, HYG_PASSWORD, PAM_SUCCESS, 1, 0 },
		{ "tls = none, LOGIN command accepted", SV_LOGINCMD, false, LOCAL_USER, HYG_PASSWORD, PAM_SUCCESS, 1, 0 },
		{ "tls = none, reset under AUTHENTICATE", SV_PLAINRESET, false, LOCAL_USER, HYG_PASSWORD, PAM_AUTHINFO_UNAVAIL, 1, 0 },
		{ "server down", SV_DOWN, false, "alice", HYG_PASSWORD, PAM_AUTHINFO_UNAVAIL, 1, 0 },
		{ "TLS failure (wrong CA)", SV_WRONGCA, false, "alice", HYG_PASSWORD, PAM_AUTHINFO_UNAVAIL, 1, 0 },
	};
	enum { N = sizeof(cases) / sizeof(cases[0]) };
	static struct remnant seen[MAX_REMNANTS], now[MAX_REMNANTS];
	size_t n_seen = 0;
	unsigned per_who[WHO_COUNT] = { 0 };
	unsigned remnants = 0, canary_remnants = 0, canary_frees = 0, bad_results = 0;
	int prompts;

	if (!check(shim_active != NULL, "scan: scanfree.so is preloaded (LD_PRELOAD)"))
		return;
	make_needles();
	shim_needles(needle_ptr, needle_len, n_needles);
	shim_reset();

	/* The module's and the shim's load addresses, for attribution. */
	pam_once("imaps", "root", "", OP_AUTH, false, &prompts);
	void *h = dlopen(module_path, RTLD_NOW | RTLD_NOLOAD);
	module_base = h != NULL ? dso_base(dlsym(h, "pam_sm_authenticate")) : NULL;
	if (h != NULL)
		dlclose(h);
	shim_base = dso_base((const void *)(uintptr_t)shim_active);
	if (!check(module_base != NULL, "scan: the module is loaded (-z nodelete) at a known address"))
		return;

	/* What is there before any password was typed (there should be nothing). */
	n_seen = sweep(seen, MAX_REMNANTS);
	remnants = (unsigned)n_seen;

	/* Control: a block holding the canary, freed unwiped while the shim
	 * watches, must be reported by both detectors. */
	{
		/* Through a volatile pointer: the compiler must not drop the pair.
		 * At offset 32: free() stores its list pointers in the first 16
		 * bytes of a chunk (the sweep cannot see a secret there; the free
		 * scan does). */
		void (*volatile release)(void *) = free;
		char *c = malloc(96);
		if (c != NULL) {
			memset(c, 0, 32);
			memcpy(c + 32, CANARY, sizeof(CANARY));
			__asm__ volatile("" : : "r"(c) : "memory");
			shim_active(1);
			release(c);
			shim_active(0);
		}
		size_t k = sweep(now, MAX_REMNANTS);
		new_remnants(now, k, seen, &n_seen, "control", &remnants, &canary_remnants);
	}

	/* Last two: TLS logins that succeed (fakeserver.py with PLAIN,
	 * fake_smtp.py with SCRAM-SHA-256). */
	for (int i = 0; i <= N + 1; i++) {
		bool fake = i == N, scram = i == N + 1;
		const char *label = fake ? "fakeserver.py TLS login, PLAIN accepted"
		                  : scram ? "fake_smtp.py TLS login, SCRAM-SHA-256 accepted"
		                  : cases[i].label;
		for (unsigned r = 0; r < rounds; r++) {
			int got = 0;
			bool ok;
			if (fake || scram) {
				got = fake ? fake_tls_login() : fake_scram_login();
				ok = got == PAM_SUCCESS;
			} else {
				ok = run_case(&cases[i], true, &got);
			}
			if (!ok) {
				bad_results++;
				note("%s: %s (%d)", label, rc_name(got), got);
			}
			settle_threads(base_threads, 1000);
			size_t k = sweep(now, MAX_REMNANTS);
			new_remnants(now, k, seen, &n_seen, label, &remnants, &canary_remnants);
		}
	}

	check(bad_results == 0, "scan: %u authentications with the test password, results as expected",
	      (N + 2) * rounds);
	check(n_needles == 10, "scan: %zu needles: the password, 5 base64 forms, 3 SCRAM keys "
	      "(HYG_SCRAM_KEYS), the canary", n_needles);

	struct hyg_counts k;
	shim_counts(&k);
	size_t nev = 0;
	const struct hyg_event *ev = shim_events(&nev);
	unsigned nocloexec_module = 0, nocloexec_ca = 0, nocloexec_conf = 0, nocloexec_outside = 0;
	for (size_t e = 0; e < nev; e++) {
		int caller;
		enum who w = classify(&ev[e], &caller);
		if (ev[e].kind == HYG_EV_FREE || ev[e].kind == HYG_EV_REALLOC) {
			if (ev[e].needle == canary_needle) {
				canary_frees++;
				continue;
			}
			per_who[w]++;
			note("%s of a %zu-byte block holding %s, by %s:",
			     ev[e].kind == HYG_EV_FREE ? "free()" : "realloc()", ev[e].size,
			     needle_what[ev[e].needle], who_name[w]);
			print_event(&ev[e], caller);
		} else if (ev[e].kind == HYG_EV_NOCLOEXEC) {
			if (w == WHO_OUTSIDE || w == WHO_LIBPAM) {
				nocloexec_outside++;
				continue;
			}
			/* OpenSSL's one-time, process-wide configuration load
			 * (openssl.cnf, at the first SSL_CTX_new of the process). */
			bool conf = on_stack(&ev[e], "CONF_modules_load_file_ex") ||
			            on_stack(&ev[e], "CONF_modules_load_file");
			if (w == WHO_MODULE)
				nocloexec_module++;
			else if (conf)
				nocloexec_conf++;
			else
				nocloexec_ca++;
			note("descriptor %zu made by %s without close-on-exec, by %s%s:", ev[e].size,
			     ev[e].what, who_name[w], conf ? " (OpenSSL's configuration file)" : "");
			print_event(&ev[e], caller);
		} else {
			note("%s on socket %zu can raise SIGPIPE, by %s:", ev[e].what, ev[e].size, who_name[w]);
			print_event(&ev[e], caller);
		}
	}
	printf("# scan: %lu blocks (%lu bytes) freed during pam_authenticate were searched for %zu needles\n",
	       k.blocks_scanned, k.bytes_scanned, n_needles);
	/* At least once: malloc hands the canary's chunk out again without
	 * clearing it, so a later block may carry the stale copy into free(). */
	check(canary_frees >= 1 && canary_remnants >= 1,
	      "scan: control: a canary freed unwiped is seen by the free scan (%u) and by the memory "
	      "sweep (%u)", canary_frees, canary_remnants);
	check(k.blocks_scanned > 0 && k.events_dropped == 0, "scan: the shim saw the frees (%lu) and "
	      "dropped no event (%lu)", k.blocks_scanned, k.events_dropped);
	check(per_who[WHO_MODULE] == 0,
	      "scan: no block freed by pam_mailauth.so held the password, its base64 or a SCRAM key (%u)",
	      per_who[WHO_MODULE]);
	check(per_who[WHO_OPENSSL] == 0 && per_who[WHO_OTHER_FOR_MODULE] == 0,
	      "scan: no block freed by OpenSSL or libc on the module's behalf held it (TLS record "
	      "buffers, SCRAM and HMAC contexts...) (OpenSSL %u, other %u)", per_who[WHO_OPENSSL],
	      per_who[WHO_OTHER_FOR_MODULE]);
	check(per_who[WHO_LIBPAM] == 0 && per_who[WHO_OUTSIDE] == 0,
	      "scan: no block freed by libpam or the harness during pam_authenticate held it "
	      "(libpam %u, outside %u)", per_who[WHO_LIBPAM], per_who[WHO_OUTSIDE]);
	check(remnants == 0,
	      "scan: after pam_end no writable mapping (heap, stacks, data) holds the password or "
	      "its base64 (%u copies)", remnants);
	check(k.sigpipe_sends == 0 && k.socket_writes == 0,
	      "scan: every socket write during pam_authenticate used send(MSG_NOSIGNAL) "
	      "(%lu sends; %lu without MSG_NOSIGNAL, %lu write())", k.sends, k.sigpipe_sends,
	      k.socket_writes);
	check(nocloexec_module == 0,
	      "scan: every descriptor the module opened itself is close-on-exec (%lu opened during "
	      "pam_authenticate, %u not by the module)", k.fds_created, nocloexec_module);
	check(nocloexec_ca == 0,
	      "scan: every descriptor OpenSSL opened for the module (CA file/directory) is "
	      "close-on-exec (%u not)", nocloexec_ca);
	if (nocloexec_conf > 0 || nocloexec_outside > 0)
		printf("# scan: not counted: %u descriptor(s) without close-on-exec from OpenSSL's one-time "
		       "configuration load, %u from libpam/libaudit (audit socket)\n", nocloexec_conf,
		       nocloexec_outside);
}

/* ---- a race of our own: does ThreadSanitizer report (test_hygiene.sh)? ---- */

static long race_counter;

static void *race_thread(void *arg)
{
	for (int i = 0; i < 100000; i++)
		race_counter++;
	return arg;
}

static void mode_race(void)
{
	pthread_t a, b;
	pthread_create(&a, NULL, race_thread, NULL);
	pthread_create(&b, NULL, race_thread, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	check(race_counter > 0, "race: two threads raced on a counter (%ld)", race_counter);
}

/* ---- main ---- */

static void *noop_thread(void *arg)
{
	return arg;
}

static void usage(void)
{
	fprintf(stderr, "usage: harness soak N [noheap] [fake=K] | sigpipe | signals | "
	                "threads T N | quiet | scan R | race\n");
}

/*
 * glibc's per-thread cache (tcache) keeps up to 7 freed chunks of each small
 * size, and mallinfo2() counts them as in use: uordblks then creeps up by
 * a few hundred KiB as the cache fills, which says nothing about leaks.  The
 * heap check runs with the cache off; re-exec once to get that.
 */
static void heap_reexec(char **argv)
{
	const char *t = getenv("GLIBC_TUNABLES");
	if (t != NULL && strstr(t, "glibc.malloc.tcache_count=0") != NULL)
		return;
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s%sglibc.malloc.tcache_count=0", t != NULL ? t : "",
	         t != NULL && *t != '\0' ? ":" : "");
	if (setenv("GLIBC_TUNABLES", buf, 1) == 0)
		execv("/proc/self/exe", argv);
	/* Could not: run anyway, the heap check may then be noisy. */
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage();
		return 2;
	}
	if (strcmp(argv[1], "soak") == 0) {
		bool heap = true;
		for (int i = 3; i < argc; i++)
			heap = heap && strcmp(argv[i], "noheap") != 0;
		if (heap)
			heap_reexec(argv);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	shim_find();
	/* ThreadSanitizer starts its background thread with the first
	 * pthread_create: have that happen before counting. */
	pthread_t t0;
	if (pthread_create(&t0, NULL, noop_thread, NULL) == 0)
		pthread_join(t0, NULL);
	/* pthread_join() may return while the kernel still lists the exiting
	 * thread in /proc/self/task: count once that has settled (1, or 2
	 * with ThreadSanitizer's own thread, which then stays). */
	base_threads = settle_threads(1, 500);
	if (!setup()) {
		teardown();
		return 1;
	}
	const char *mode = argv[1];
	if (strcmp(mode, "soak") == 0 && argc >= 3) {
		bool heap = true;
		unsigned nfake = 0;
		for (int i = 3; i < argc; i++) {
			if (strcmp(argv[i], "noheap") == 0)
				heap = false;
			else if (strncmp(argv[i], "fake=", 5) == 0)
				nfake = (unsigned)atoi(argv[i] + 5);
		}
		mode_soak((unsigned)atoi(argv[2]), heap, nfake);
	} else if (strcmp(mode, "sigpipe") == 0) {
		mode_sigpipe();
	} else if (strcmp(mode, "signals") == 0) {
		mode_signals();
	} else if (strcmp(mode, "threads") == 0 && argc >= 4) {
		mode_threads((unsigned)atoi(argv[2]), (unsigned)atoi(argv[3]));
	} else if (strcmp(mode, "quiet") == 0) {
		mode_quiet();
	} else if (strcmp(mode, "race") == 0) {
		mode_race();
	} else if (strcmp(mode, "scan") == 0) {
		mode_scan(argc >= 3 ? (unsigned)atoi(argv[2]) : 2);
	} else {
		usage();
		teardown();
		return 2;
	}
	teardown();
	printf("# harness %s: %u passed, %u failed\n", mode, n_pass, n_fail);
	int status = n_fail == 0 && n_pass > 0 ? 0 : 1;
	/* Diagnostics: skip the atexit handlers (OpenSSL's cleanup) so that a
	 * leak checker sees what caches hold at the end of the run. */
	if (getenv("HYG_QUICK_EXIT") != NULL) {
		fflush(stdout);
		_exit(status);
	}
	return status;
}
