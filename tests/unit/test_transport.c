/*
 * test_transport.c - the transport rules of SPEC 2 that are not about one
 * protocol: SPKI pins, tls_min_version, SNI, verify_name, the next address
 * and the next server while unavailable (never after a rejection), one
 * deadline for every server together, shared so that a hanging server
 * leaves the next one its part, and O_CLOEXEC on every descriptor.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "config.h"
#include "fake.h"
#include "libmailauth.h"
#include "unit.h"

struct outcome {
	enum ma_err err;
	struct ma_result res;
	long ms;
	struct fake_result fr;
};

static char *read_spki(const char *name)
{
	static char buf[128];
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s.spki", getenv("MA_TEST_CERTS"), name);
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "missing %s", path);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf;
}

/* Replace every @PORT@ and @CERTS@ in TEMPLATE. */
static void expand(char *out, size_t cap, const char *tmpl, unsigned port)
{
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%u", port);
	size_t o = 0;
	for (const char *p = tmpl; *p != '\0';) {
		const char *with = NULL;
		if (strncmp(p, "@PORT@", 6) == 0)
			with = portstr;
		else if (strncmp(p, "@CERTS@", 7) == 0)
			with = getenv("MA_TEST_CERTS");
		if (with != NULL) {
			size_t n = strlen(with);
			ck_assert(o + n < cap);
			memcpy(out + o, with, n);
			o += n;
			p += p[1] == 'P' ? 6 : 7;
		} else {
			ck_assert(o + 1 < cap);
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
}

/* Authenticate alice/secret against SCENARIO with the configuration
 * TEMPLATE (see expand). */
static void run(struct outcome *o, const char *scenario, const char *const *args,
                const char *tmpl)
{
	struct fake_server fs;
	struct ma_config *cfg = NULL;
	char text[2048], err[512];

	memset(o, 0, sizeof(*o));
	ck_assert_msg(fake_start(&fs, scenario, args) == 0, "%s did not start", scenario);
	expand(text, sizeof(text), tmpl, fs.port);
	enum ma_err ce = ma_config_parse(text, strlen(text), "t.conf", &cfg, err, sizeof(err));
	ck_assert_msg(ce == MA_OK, "config: %s\n%s", err, text);
	long t0 = fake_now_ms();
	o->err = ma_authenticate(cfg, "alice", "secret", NULL, &o->res);
	o->ms = fake_now_ms() - t0;
	ma_config_free(&cfg);
	fake_finish(&fs, &o->fr, 8000);
	if (getenv("MA_FAKE_VERBOSE") != NULL)
		fake_dump(scenario, &o->fr);
}

static const char *const implicit[] = { "--tls", "implicit", "--password", "secret", NULL };

#define SERVER(extra) \
	"timeout = 3\nca_file = \"@CERTS@/ca.pem\"\n" \
	"server s { protocol = imap host = \"127.0.0.1\" port = @PORT@ tls = implicit " extra " }\n"

START_TEST(pin_matches)
{
	struct outcome o;
	char conf[1024];
	char pins[256];
	snprintf(pins, sizeof(pins), "pin = {\"sha256//%s\", ", read_spki("other"));
	snprintf(conf, sizeof(conf), SERVER("%s\"sha256//%s\"}"), pins, read_spki("server"));
	run(&o, "good_implicit", implicit, conf);
	ck_assert_msg(o.err == MA_OK, "%s: %s", ma_err_name(o.err), o.res.detail);
	fake_result_free(&o.fr);
}
END_TEST

START_TEST(pin_mismatch_sends_nothing)
{
	struct outcome o;
	char conf[1024];
	snprintf(conf, sizeof(conf), SERVER("pin = {\"sha256//%s\"}"), read_spki("other"));
	run(&o, "good_implicit", implicit, conf);
	ck_assert_int_eq(o.err, MA_TLS);
	ck_assert_ptr_nonnull(strstr(o.res.detail, "pin"));
	ck_assert_uint_eq(o.fr.tls_len, 0);       /* not even the LOGOUT */
	fake_result_free(&o.fr);
}
END_TEST

START_TEST(tls_min_version)
{
	static const char *const tls12[] = { "--tls", "implicit", "--password", "secret",
	                                     "--tls-max", "1.2", NULL };
	struct outcome o;
	run(&o, "good_implicit", tls12, SERVER(""));
	ck_assert_msg(o.err == MA_OK, "%s: %s", ma_err_name(o.err), o.res.detail);
	ck_assert_str_eq(o.res.tls_version, "TLSv1.2");
	fake_result_free(&o.fr);
	run(&o, "good_implicit", tls12,
	    "tls_min_version = \"1.3\"\n" SERVER(""));
	ck_assert_int_eq(o.err, MA_TLS);
	ck_assert_uint_eq(o.fr.tls_len, 0);
	fake_result_free(&o.fr);
}
END_TEST

START_TEST(sni_for_names_only)
{
	struct outcome o;
	run(&o, "good_implicit", implicit,
	    "timeout = 3\nca_file = \"@CERTS@/ca.pem\"\n"
	    "server s { host = \"localhost\" port = @PORT@ }\n");
	/* "localhost" may resolve to ::1 first, where nothing listens: the next
	 * address (127.0.0.1) is tried within the same deadline. */
	ck_assert_msg(o.err == MA_OK, "%s: %s", ma_err_name(o.err), o.res.detail);
	ck_assert_ptr_nonnull(strstr(o.fr.transcript, "sni=localhost"));
	fake_result_free(&o.fr);
	run(&o, "good_implicit", implicit, SERVER(""));
	ck_assert_int_eq(o.err, MA_OK);
	ck_assert_ptr_nonnull(strstr(o.fr.transcript, "sni=None"));   /* never an IP literal */
	fake_result_free(&o.fr);
}
END_TEST

START_TEST(verify_name_is_checked)
{
	struct outcome o;
	run(&o, "good_implicit", implicit, SERVER("verify_name = \"localhost\""));
	ck_assert_int_eq(o.err, MA_OK);
	fake_result_free(&o.fr);
	run(&o, "good_implicit", implicit, SERVER("verify_name = \"mail.example.org\""));
	ck_assert_int_eq(o.err, MA_TLS);
	ck_assert_uint_eq(o.fr.tls_len, 0);
	fake_result_free(&o.fr);
}
END_TEST

static unsigned closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	close(fd);
	return ntohs(a.sin_port);
}

START_TEST(next_server_while_unavailable)
{
	struct outcome o;
	char conf[1024];
	snprintf(conf, sizeof(conf),
	         "timeout = 5\nca_file = \"@CERTS@/ca.pem\"\n"
	         "server down { host = \"127.0.0.1\" port = %u }\n"
	         "server up { host = \"127.0.0.1\" port = @PORT@ }\n", closed_port());
	run(&o, "good_implicit", implicit, conf);
	ck_assert_msg(o.err == MA_OK, "%s: %s", ma_err_name(o.err), o.res.detail);
	ck_assert_str_eq(o.res.server, "up");
	fake_result_free(&o.fr);
}
END_TEST

START_TEST(no_next_server_after_rejection)
{
	/* The second server is a listener that must never see a connection. */
	int trap = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	ck_assert_int_eq(bind(trap, (struct sockaddr *)&a, sizeof(a)), 0);
	listen(trap, 4);
	getsockname(trap, (struct sockaddr *)&a, &len);
	char conf[1024];
	snprintf(conf, sizeof(conf),
	         "timeout = 5\nca_file = \"@CERTS@/ca.pem\"\n"
	         "server first { host = \"127.0.0.1\" port = @PORT@ }\n"
	         "server second { host = \"127.0.0.1\" port = %u }\n", ntohs(a.sin_port));
	struct outcome o;
	run(&o, "authfail", implicit, conf);
	ck_assert_int_eq(o.err, MA_AUTH_FAILED);
	ck_assert_str_eq(o.res.server, "first");
	ck_assert_int_lt(accept(trap, NULL, NULL), 0);
	ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
	close(trap);
	fake_result_free(&o.fr);
}
END_TEST

/* A listener that never accepts: the kernel completes the TCP handshake,
 * then nothing ever answers, like a server that hangs. */
static int silent_listener(unsigned *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	getsockname(fd, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	return fd;
}

/* timeout = 2, two servers: "hang" (a silent listener) first, then SECOND,
 * the fake server playing SCENARIO.  Returns the listener, for the caller
 * to close after its assertions. */
static int run_after_hanging_server(struct outcome *o, const char *scenario, const char *second)
{
	unsigned port;
	int hang = silent_listener(&port);
	char conf[1024];
	snprintf(conf, sizeof(conf),
	         "timeout = 2\nca_file = \"@CERTS@/ca.pem\"\n"
	         "server hang { host = \"127.0.0.1\" port = %u }\n"
	         "server %s { host = \"127.0.0.1\" port = @PORT@ }\n", port, second);
	run(o, scenario, implicit, conf);
	return hang;
}

START_TEST(silent_server_leaves_time_for_the_next)
{
	/* timeout = 2 and two servers: the hanging first one gets half of it,
	 * then the next one answers within the same timeout. */
	struct outcome o;
	int hang = run_after_hanging_server(&o, "good_implicit", "up");
	ck_assert_msg(o.err == MA_OK, "%s: %s", ma_err_name(o.err), o.res.detail);
	ck_assert_str_eq(o.res.server, "up");
	ck_assert_int_ge(o.ms, 900);
	ck_assert_int_le(o.ms, 1700);
	close(hang);
	fake_result_free(&o.fr);
}
END_TEST

START_TEST(one_deadline_for_all_servers)
{
	/* Two hanging servers: the shares add up to the one timeout, never
	 * more, and the call ends at the deadline, not twice it. */
	struct outcome o;
	int hang = run_after_hanging_server(&o, "silent", "silent");
	ck_assert_int_eq(o.err, MA_TIMEOUT);
	ck_assert_str_eq(o.res.server, "silent");
	ck_assert_int_ge(o.ms, 1900);
	ck_assert_int_le(o.ms, 2600);
	close(hang);
	fake_result_free(&o.fr);
}
END_TEST

/* ---- every descriptor the library opens is close-on-exec ---- */

struct bg {
	struct ma_config *cfg;
	enum ma_err err;
};

static void *bg_auth(void *arg)
{
	struct bg *b = arg;
	b->err = ma_authenticate(b->cfg, "alice", "secret", NULL, NULL);
	return NULL;
}

static int count_fds(int *without_cloexec)
{
	int n = 0;
	*without_cloexec = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd == dirfd(d))
			continue;
		n++;
		int flags = fcntl(fd, F_GETFD);
		if (flags >= 0 && !(flags & FD_CLOEXEC) && fd > 2)
			(*without_cloexec)++;
	}
	closedir(d);
	return n;
}

START_TEST(descriptors_are_cloexec)
{
	struct fake_server fs;
	struct fake_result fr;
	char text[512], err[256];
	int base_open_without;
	/* OpenSSL's one-time, process-wide configuration load (openssl.cnf, at
	 * the first SSL_CTX_new of a process) opens the file with fopen(),
	 * without close-on-exec, for a moment: OpenSSL's descriptor, not the
	 * module's (tests/hygiene counts it apart).  Do it first, as any host
	 * that used TLS before has, so that the samples below see only ours. */
	ck_assert_int_eq(OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL), 1);
	int before = count_fds(&base_open_without);

	/* "localhost" goes through the resolver thread and its pipe too. */
	ck_assert_int_eq(fake_start(&fs, "silent", implicit), 0);
	int n = snprintf(text, sizeof(text), "timeout = 2\nca_file = \"%s/ca.pem\"\n"
	                 "server s { host = \"localhost\" port = %u }\n",
	                 getenv("MA_TEST_CERTS"), fs.port);
	struct bg b = { 0 };
	ck_assert_int_eq(ma_config_parse(text, (size_t)n, "t.conf", &b.cfg, err, sizeof(err)), MA_OK);
	before = count_fds(&base_open_without);
	pthread_t t;
	pthread_create(&t, NULL, bg_auth, &b);
	int most = 0, leaky = 0;
	for (int i = 0; i < 150; i++) {       /* sample during the 2 s wait */
		int without;
		int now = count_fds(&without);
		if (now > most)
			most = now;
		if (without > base_open_without)
			leaky = without - base_open_without;
		usleep(10000);
	}
	pthread_join(t, NULL);
	ck_assert_int_eq(b.err, MA_TIMEOUT);
	ck_assert_int_gt(most, before);        /* we did see its socket */
	ck_assert_int_eq(leaky, 0);
	int after_without;
	ck_assert_int_eq(count_fds(&after_without), before);   /* and it was closed */
	ma_config_free(&b.cfg);
	fake_finish(&fs, &fr, 5000);
	fake_result_free(&fr);
}
END_TEST

/* ---- TLS contexts and sessions shared by the logins of one process ---- */

struct capture {
	char text[32768];
	size_t len;
};

static void capture_emit(void *arg, int priority, const char *line)
{
	struct capture *c = arg;
	(void)priority;
	int n = snprintf(c->text + c->len, sizeof(c->text) - c->len, "%s\n", line);
	if (n > 0 && (size_t)n < sizeof(c->text) - c->len)
		c->len += (size_t)n;
}

/* Log in as alice against the suite's Dovecot with TEMPLATE (@PORT@ is the
 * IMAPS port, @CERTS@ the certificates); returns the result and whether
 * the TLS session was resumed. */
static enum ma_err dovecot_login(const char *tmpl, bool *resumed)
{
	const char *port = getenv("MA_TEST_IMAPS_PORT");
	ck_assert_msg(port != NULL, "MA_TEST_IMAPS_PORT is not set: run through tests/run-tests.sh");
	char text[2048], err[256];
	expand(text, sizeof(text), tmpl, (unsigned)atoi(port));
	struct ma_config *cfg = NULL;
	ck_assert_msg(ma_config_parse(text, strlen(text), "t.conf", &cfg, err, sizeof(err)) == MA_OK,
	              "%s", err);
	struct capture cap = { .len = 0 };
	struct ma_log log = { .emit = capture_emit, .arg = &cap, .debug = true };
	enum ma_err rc = ma_authenticate(cfg, "alice", "alice-secret", &log, NULL);
	ma_config_free(&cfg);
	ck_assert(rc != MA_OK || strstr(cap.text, "TLS established") != NULL);
	*resumed = strstr(cap.text, "session resumed") != NULL;
	return rc;
}

#define DOVECOT(extra) \
	"timeout = 5\nca_file = \"@CERTS@/ca.pem\"\n" \
	"server d { host = \"127.0.0.1\" port = @PORT@ " extra " }\n"

START_TEST(sessions_resume_for_the_same_name_only)
{
	bool resumed;
	ck_assert_int_eq(dovecot_login(DOVECOT("verify_name = \"localhost\""), &resumed), MA_OK);
	ck_assert_int_eq(dovecot_login(DOVECOT("verify_name = \"localhost\""), &resumed), MA_OK);
	ck_assert_msg(resumed, "the second login did not resume the session");
	/* Another server name: a full handshake, never the other name's session. */
	ck_assert_int_eq(dovecot_login(DOVECOT(""), &resumed), MA_OK);
	ck_assert(!resumed);
	/* A wrong name still fails, even right after a session for the host. */
	ck_assert_int_eq(dovecot_login(DOVECOT(""), &resumed), MA_OK);
	ck_assert(resumed);
	ck_assert_int_eq(dovecot_login(DOVECOT("verify_name = \"mail.example.org\""), &resumed),
	                 MA_TLS);
}
END_TEST

/* Pins are part of a session's key: a session made without pins is never
 * resumed under pins (whose check then rests on the stored certificate
 * alone), nor one made under other pins. */
START_TEST(sessions_resume_under_the_same_pins_only)
{
	bool resumed;
	char pinned[512], other[512];
	snprintf(pinned, sizeof(pinned), DOVECOT("verify_name = \"localhost\" pin = {\"sha256//%s\"}"),
	         read_spki("server"));
	snprintf(other, sizeof(other),
	         DOVECOT("verify_name = \"localhost\" pin = {\"sha256//%s\", \"sha256//%s\"}"),
	         read_spki("server"), read_spki("other"));
	ck_assert_int_eq(dovecot_login(DOVECOT("verify_name = \"localhost\""), &resumed), MA_OK);
	ck_assert_int_eq(dovecot_login(pinned, &resumed), MA_OK);
	ck_assert_msg(!resumed, "a session made without pins was resumed under a pin");
	ck_assert_int_eq(dovecot_login(other, &resumed), MA_OK);
	ck_assert_msg(!resumed, "a session made under one pin set was resumed under another");
	ck_assert_int_eq(dovecot_login(pinned, &resumed), MA_OK);
	ck_assert_msg(resumed, "the same pins did not resume (the test proves nothing)");
}
END_TEST

/* A child of fork() does not offer the parent's single-use sessions; the
 * parent still resumes its own. */
START_TEST(forked_child_does_not_reuse_sessions)
{
	bool resumed;
	const char *conf = DOVECOT("verify_name = \"localhost\"");
	ck_assert_int_eq(dovecot_login(conf, &resumed), MA_OK);
	ck_assert_int_eq(dovecot_login(conf, &resumed), MA_OK);     /* tickets for both */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		bool child_resumed = true;
		enum ma_err rc = dovecot_login(conf, &child_resumed);
		_exit(rc != MA_OK ? 2 : child_resumed ? 1 : 0);
	}
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	              "child: status %d (1: it resumed the parent's session)", status);
	ck_assert_int_eq(dovecot_login(conf, &resumed), MA_OK);
	ck_assert_msg(resumed, "the parent did not resume (the test proves nothing)");
}
END_TEST

static void copy_file(const char *from, const char *to)
{
	char cmd[3 * PATH_MAX];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s.new' && mv '%s.new' '%s'", from, to, to, to);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(changed_ca_file_is_read_again)
{
	char dir[] = "/tmp/ma-ca-XXXXXX", ca[PATH_MAX], src[PATH_MAX], tmpl[PATH_MAX + 256];
	bool resumed;
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(src, sizeof(src), "%s/ca.pem", getenv("MA_TEST_CERTS"));
	copy_file(src, ca);
	snprintf(tmpl, sizeof(tmpl), "timeout = 5\nca_file = \"%s\"\n"
	         "server d { host = \"127.0.0.1\" port = @PORT@ }\n", ca);
	ck_assert_int_eq(dovecot_login(tmpl, &resumed), MA_OK);
	ck_assert_int_eq(dovecot_login(tmpl, &resumed), MA_OK);
	/* The administrator replaces the CA: the cached context (and the
	 * sessions made under it) must not be used any more. */
	snprintf(src, sizeof(src), "%s/ca2.pem", getenv("MA_TEST_CERTS"));
	copy_file(src, ca);
	ck_assert_int_eq(dovecot_login(tmpl, &resumed), MA_TLS);
	ck_assert(!resumed);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(environment_does_not_choose_the_trust_anchors)
{
	/* No ca_file: the system store at OpenSSL's compiled-in location, never
	 * SSL_CERT_FILE / SSL_CERT_DIR (issue [T2 1/3]: a setuid caller's user
	 * would choose whom the module trusts).  tests/real/test_trust.sh proves
	 * the compiled-in location and the setuid case. */
	char ca[PATH_MAX];
	bool resumed;
	snprintf(ca, sizeof(ca), "%s/ca.pem", getenv("MA_TEST_CERTS"));
	setenv("SSL_CERT_FILE", ca, 1);
	setenv("SSL_CERT_DIR", getenv("MA_TEST_CERTS"), 1);
	ck_assert_int_eq(dovecot_login("timeout = 5\nserver d { host = \"127.0.0.1\" port = @PORT@ }\n",
	                               &resumed), MA_TLS);
	unsetenv("SSL_CERT_FILE");
	unsetenv("SSL_CERT_DIR");
	/* Control: the same server with ca_file. */
	ck_assert_int_eq(dovecot_login(DOVECOT(""), &resumed), MA_OK);
}
END_TEST

/* A certificate rewritten in place inside ca_path (same name, same
 * directory mtime) takes effect at the next login, not after the context
 * cache's 5 minutes. */
START_TEST(changed_file_in_ca_path_is_read_again)
{
	char dir[] = "/tmp/ma-capath-XXXXXX", ca[PATH_MAX], tmpl[PATH_MAX + 256];
	bool resumed;
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(ca, sizeof(ca), "%s/trusted.pem", dir);
	snprintf(tmpl, sizeof(tmpl), "timeout = 5\nca_path = \"%s\"\n"
	         "server d { host = \"127.0.0.1\" port = @PORT@ }\n", dir);
	char cmd[4 * PATH_MAX];
	snprintf(cmd, sizeof(cmd), "cat '%s/ca.pem' > '%s'", getenv("MA_TEST_CERTS"), ca);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(dovecot_login(tmpl, &resumed), MA_OK);
	ck_assert_int_eq(dovecot_login(tmpl, &resumed), MA_OK);
	struct stat before, after;
	ck_assert_int_eq(stat(dir, &before), 0);
	/* Rewritten through the same inode: the directory does not change. */
	snprintf(cmd, sizeof(cmd), "cat '%s/ca2.pem' > '%s'", getenv("MA_TEST_CERTS"), ca);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(stat(dir, &after), 0);
	ck_assert(before.st_mtim.tv_sec == after.st_mtim.tv_sec &&
	          before.st_mtim.tv_nsec == after.st_mtim.tv_nsec);
	ck_assert_int_eq(dovecot_login(tmpl, &resumed), MA_TLS);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(per_server_ca_overrides_global)
{
	/* SPEC 5: a server's ca_file replaces the global one, both ways. */
	bool resumed;
	ck_assert_int_eq(dovecot_login("timeout = 5\nca_file = \"@CERTS@/ca2.pem\"\n"
	                               "server d { host = \"127.0.0.1\" port = @PORT@ "
	                               "ca_file = \"@CERTS@/ca.pem\" }\n", &resumed), MA_OK);
	ck_assert_int_eq(dovecot_login("timeout = 5\nca_file = \"@CERTS@/ca.pem\"\n"
	                               "server d { host = \"127.0.0.1\" port = @PORT@ "
	                               "ca_file = \"@CERTS@/ca2.pem\" }\n", &resumed), MA_TLS);
}
END_TEST

START_TEST(ipv6_literal)
{
	/* The suite's Dovecot listens on ::1 too (when loopback has IPv6, as
	 * on the CI machine); the certificate carries IP:::1. */
	bool resumed;
	ck_assert_int_eq(dovecot_login("timeout = 5\nca_file = \"@CERTS@/ca.pem\"\n"
	                               "server d { host = \"::1\" port = @PORT@ }\n", &resumed),
	                 MA_OK);
}
END_TEST

static Suite *transport_suite(void)
{
	Suite *s = suite_create("transport");
	TCase *tc = tcase_create("rules");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, pin_matches);
	tcase_add_test(tc, pin_mismatch_sends_nothing);
	tcase_add_test(tc, tls_min_version);
	tcase_add_test(tc, sni_for_names_only);
	tcase_add_test(tc, verify_name_is_checked);
	tcase_add_test(tc, next_server_while_unavailable);
	tcase_add_test(tc, no_next_server_after_rejection);
	tcase_add_test(tc, silent_server_leaves_time_for_the_next);
	tcase_add_test(tc, one_deadline_for_all_servers);
	tcase_add_test(tc, descriptors_are_cloexec);
	tcase_add_test(tc, sessions_resume_for_the_same_name_only);
	tcase_add_test(tc, sessions_resume_under_the_same_pins_only);
	tcase_add_test(tc, forked_child_does_not_reuse_sessions);
	tcase_add_test(tc, changed_ca_file_is_read_again);
	tcase_add_test(tc, environment_does_not_choose_the_trust_anchors);
	tcase_add_test(tc, changed_file_in_ca_path_is_read_again);
	tcase_add_test(tc, per_server_ca_overrides_global);
	tcase_add_test(tc, ipv6_literal);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (fake_certs_setup() == NULL)
		return EXIT_FAILURE;
	return ma_unit_run(transport_suite());
}
