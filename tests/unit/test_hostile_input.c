/*
 * test_hostile_input.c - hostile LOCAL input through the real PAM stack
 * (issue "[4/6] Proof of failing closed", item 2): user names and passwords
 * with quotes, backslashes, spaces, "{5}", CR, LF, non-ASCII and invalid
 * UTF-8, passwords, user names and stacked tokens up to 1 MiB, root and system accounts,
 * use_first_pass / try_first_pass with and without a stacked token.
 *
 * Three kinds of checks:
 *   - "local": what the module refuses before connecting, through PAM
 *     (a listener that must never see a connection) and, where the
 *     boundaries are exact, through ma_authenticate();
 *   - "fake": scripted servers (tests/fake/fake_more.py) that check the
 *     credentials byte for byte and record what arrived, so that the exact
 *     wire form is asserted: quoted string or literal for the IMAP LOGIN
 *     command, base64 for SASL, one command per authentication, never a
 *     split command; SCRAM refuses non-ASCII / control characters, so PLAIN
 *     carries them;
 *   - "dovecot": the suite's real Dovecot (users of tests/lib/common.sh),
 *     over IMAP and submission, implicit TLS and STARTTLS, every row twice:
 *     the verdict is exact and deterministic, never PAM_SUCCESS for a wrong
 *     password.  Dovecot answers a wrong password only at its 0.5 s failure
 *     tick, so these run in parallel worker processes before the suite
 *     (MA_HOSTILE_JOBS, default 16) and the tests assert the results.
 *
 * Stacked tokens: tests/harness/pam_settok.so takes the token from the PAM
 * configuration line, which can carry a CR but neither a LF nor 2 KiB
 * (Linux-PAM reads lines of at most 1 KiB); those tokens are stacked by
 * pam_unix.so instead, which prompts and stores PAM_AUTHTOK as it would in
 * front of pam_mailauth in a real stack.
 *
 * Needs the runner's environment (tests/run-tests.sh: MA_TEST_CERTS,
 * MA_TEST_IMAPS_PORT, ...); without a Dovecot the "dovecot" tests FAIL.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "base64.h"
#include "config.h"
#include "libmailauth.h"
#include "sasl.h"
#include "unit.h"
#include "fake.h"

#define TIMEOUT_S 3
#define MAX_MS 3500
#define SERVER_WAIT_MS 10000
#define FAST_MS 1000                  /* refused before connecting: no network wait */
#define KIB 1024
#define PW_BOB "bob pass \"quoted\" \\\\ back"   /* tests/lib/common.sh */

static char tmpdir[PATH_MAX - 64];
static char module_path[PATH_MAX];
static char settok_path[PATH_MAX];

/* ======================================================================== */
/* Helpers                                                                  */
/* ======================================================================== */

static const char *pam_name(int rc)
{
	switch (rc) {
	case PAM_SUCCESS: return "SUCCESS";
	case PAM_AUTH_ERR: return "AUTH_ERR";
	case PAM_AUTHINFO_UNAVAIL: return "AUTHINFO_UNAVAIL";
	case PAM_USER_UNKNOWN: return "USER_UNKNOWN";
	case PAM_SERVICE_ERR: return "SERVICE_ERR";
	case PAM_BUF_ERR: return "BUF_ERR";
	case PAM_INCOMPLETE: return "INCOMPLETE";
	case PAM_AUTHTOK_RECOVERY_ERR: return "AUTHTOK_RECOVERY_ERR";
	case PAM_SYSTEM_ERR: return "SYSTEM_ERR";
	default: return "other";
	}
}

/* Printable form of hostile bytes for messages (BUF: at least 32 bytes). */
static const char *show(const char *s, char *buf, size_t len)
{
	size_t o = 0, n = strlen(s);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (o + 28 >= len) {
			snprintf(buf + o, len - o, "...(%zu bytes)", n);
			return buf;
		}
		if (c >= 0x20 && c < 0x7f && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
	}
	buf[o] = '\0';
	return buf;
}

static int write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	size_t len = strlen(text), off = 0;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	if (fchmod(fd, mode) != 0) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	ck_assert_msg(write_text(path, text, mode) == 0, "cannot write %s: %s", path,
	              strerror(errno));
}

/* The text of a configuration with one server. */
static void config_text(char *buf, size_t len, const char *proto, unsigned port,
                        const char *tls, const char *extra)
{
	const char *certs = getenv("MA_TEST_CERTS");
	snprintf(buf, len,
	         "timeout = %d\nca_file = \"%s/ca.pem\"\n%s\n"
	         "server s {\n  protocol = %s\n  host = \"127.0.0.1\"\n  port = %u\n  tls = %s\n}\n",
	         TIMEOUT_S, certs != NULL ? certs : "/nonexistent", extra != NULL ? extra : "",
	         proto, port, tls);
}

/* tmpdir/NAME.conf: one server. */
static void write_config(const char *name, const char *proto, unsigned port, const char *tls,
                         const char *extra)
{
	char path[PATH_MAX + 64], text[4096];
	snprintf(path, sizeof(path), "%s/%s.conf", tmpdir, name);
	config_text(text, sizeof(text), proto, port, tls, extra);
	write_file(path, text, 0600);
}

/* The PAM service "svc": %M the module, %C the scratch directory, %T the
 * token-setting test module (tests/harness/pam_settok.so). */
static void write_service(const char *lines)
{
	char path[PATH_MAX + 16], text[8192];
	size_t o = 0;
	for (const char *p = lines; *p != '\0' && o < sizeof(text) - PATH_MAX - 1; p++) {
		const char *sub = NULL;
		if (p[0] == '%' && p[1] == 'M')
			sub = module_path;
		else if (p[0] == '%' && p[1] == 'C')
			sub = tmpdir;
		else if (p[0] == '%' && p[1] == 'T')
			sub = settok_path;
		if (sub != NULL) {
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s", sub);
			p++;
		} else {
			text[o++] = *p;
		}
	}
	text[o] = '\0';
	snprintf(path, sizeof(path), "%s/svc", tmpdir);
	write_file(path, text, 0644);
}

struct conv_data {
	const char *password;
	int prompts;
};

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct conv_data *cd = data;
	struct pam_response *r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF ||
		    msg[i]->msg_style == PAM_PROMPT_ECHO_ON) {
			cd->prompts++;
			r[i].resp = strdup(cd->password != NULL ? cd->password : "");
			if (r[i].resp == NULL) {
				for (int k = 0; k < i; k++)
					free(r[k].resp);
				free(r);
				return PAM_BUF_ERR;
			}
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

struct outcome {
	int rc;
	int prompts;
	long ms;
};

/* pam_authenticate USER through the service SERVICE of DIR; the
 * conversation answers every prompt with PASSWORD.  -1 when PAM did not
 * start (no assertion here: also used in worker processes). */
static int pam_auth_in(const char *dir, const char *service, const char *user,
                       const char *password, struct outcome *o)
{
	struct conv_data cd = { .password = password };
	struct pam_conv c = { conv, &cd };
	pam_handle_t *pamh = NULL;
	if (pam_start_confdir(service, user, &c, dir, &pamh) != PAM_SUCCESS)
		return -1;
	long t0 = fake_now_ms();
	o->rc = pam_authenticate(pamh, 0);
	o->ms = fake_now_ms() - t0;
	pam_end(pamh, o->rc);
	o->prompts = cd.prompts;
	return 0;
}

/* pam_authenticate USER through tmpdir's service "svc". */
static struct outcome pam_auth(const char *user, const char *password)
{
	struct outcome o = { -1, 0, 0 };
	ck_assert_msg(pam_auth_in(tmpdir, "svc", user, password, &o) == 0,
	              "pam_start_confdir failed");
	return o;
}

/* A listener that must never see a connection. */
static int trap_listener(unsigned *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void assert_no_connection(int fd, const char *what)
{
	int c = accept(fd, NULL, NULL);
	if (c >= 0)
		close(c);
	ck_assert_msg(c < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
	              "%s: the module connected", what);
}

/* PATTERN repeated to LEN bytes, malloc'd; NULL when out of memory (no
 * assertion: worker processes use it outside a test). */
static char *repeat_raw(const char *pattern, size_t len)
{
	char *s = malloc(len + 1);
	size_t pl = strlen(pattern);
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		s[i] = pattern[i % pl];
	s[len] = '\0';
	return s;
}

static char *repeat_to(const char *pattern, size_t len)
{
	char *s = repeat_raw(pattern, len);
	ck_assert_ptr_nonnull(s);
	return s;
}

static void setup(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/ma-hostile-input.XXXXXX",
	         t != NULL && *t != '\0' ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	DIR *d = opendir(tmpdir);
	if (d != NULL) {
		struct dirent *e;
		char path[PATH_MAX + 300];
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(tmpdir);
}

/* ---- the fake servers ---- */

/* tests/fake/fake_more.py with ARGS ("smtp" first for the SMTP server). */
static int more_start(struct fake_server *fs, const char *const *args)
{
	return fake_spawn(fs, "fake_more.py", args, NULL);
}

struct fake_run {
	char label[200];
	struct outcome o;
	struct fake_result fr;
};

static void fake_dump_run(const struct fake_run *r)
{
	fprintf(stderr, "%s: PAM %s, %d prompts, %ld ms\n", r->label, pam_name(r->o.rc),
	        r->o.prompts, r->o.ms);
	fake_dump(r->label, &r->fr);
}

/*
 * Start fake_more.py with SERVER_ARGS, write tmpdir/fake.conf for PROTO/TLS
 * at its port, the service SERVICE (NULL: the module alone), authenticate
 * USER with PASSWORD (the conversation's answer), collect the record.
 */
static void fake_row(struct fake_run *r, const char *label, const char *const *server_args,
                     const char *proto, const char *tls, const char *service, const char *user,
                     const char *password)
{
	struct fake_server fs;
	memset(r, 0, sizeof(*r));
	snprintf(r->label, sizeof(r->label), "%s", label);
	ck_assert_msg(more_start(&fs, server_args) == 0, "%s: the fake server did not start", label);
	write_config("fake", proto, fs.port, tls, NULL);
	write_service(service != NULL ? service : "auth required %M config=%C/fake.conf\n");
	r->o = pam_auth(user, password);
	int rc = fake_finish(&fs, &r->fr, SERVER_WAIT_MS);
	if (rc != 0 || getenv("MA_FAKE_VERBOSE") != NULL)
		fake_dump_run(r);
	ck_assert_msg(rc == 0, "%s: the server's record is missing or malformed", label);
	if (r->o.ms > MAX_MS)
		fake_dump_run(r);
	ck_assert_msg(r->o.ms <= MAX_MS, "%s: took %ld ms", label, r->o.ms);
	/* Nothing secret before TLS: implicit TLS, nothing at all; STARTTLS, no
	 * AUTH / LOGIN command and not the password. */
	if (strcmp(tls, "implicit") == 0) {
		ck_assert_msg(r->fr.plain_len == 0, "%s: %zu bytes before TLS", label,
		              r->fr.plain_len);
	} else {
		ck_assert_msg(!fake_plain_contains(&r->fr, "AUTH") &&
		              !fake_plain_contains(&r->fr, "LOGIN "), "%s: AUTH before TLS", label);
		ck_assert_msg(strlen(password) < 4 || !fake_plain_contains(&r->fr, password),
		              "%s: the password before TLS", label);
	}
}

static void expect_pam(const struct fake_run *r, int want)
{
	if (r->o.rc != want)
		fake_dump_run(r);
	ck_assert_msg(r->o.rc == want, "%s: PAM %s, want %s", r->label, pam_name(r->o.rc),
	              pam_name(want));
}

static void expect_status0(const struct fake_run *r)
{
	if (r->fr.status != 0)
		fake_dump_run(r);
	ck_assert_msg(r->fr.status == 0, "%s: fake server status %d (1: the client broke a rule)",
	              r->label, r->fr.status);
}

/* CRLF-terminated lines of DATA, strictly: a CR or LF that is not part of
 * a CRLF pair, or bytes after the last CRLF, make it malformed. */
#define MAX_LINES 16
struct lines {
	size_t n;
	const char *p[MAX_LINES];
	size_t len[MAX_LINES];
	bool malformed;
};

static void split_lines(const char *d, size_t len, struct lines *l)
{
	size_t start = 0;
	memset(l, 0, sizeof(*l));
	for (size_t i = 0; i < len; i++) {
		if (d[i] == '\r' && i + 1 < len && d[i + 1] == '\n') {
			if (l->n == MAX_LINES) {
				l->malformed = true;
				return;
			}
			l->p[l->n] = d + start;
			l->len[l->n] = i - start;
			l->n++;
			start = i + 2;
			i++;
		} else if (d[i] == '\r' || d[i] == '\n') {
			l->malformed = true;
			return;
		}
	}
	if (start != len)
		l->malformed = true;
}

static bool line_starts(const struct lines *l, size_t i, const char *prefix)
{
	size_t n = strlen(prefix);
	return i < l->n && l->len[i] >= n && memcmp(l->p[i], prefix, n) == 0;
}

/* Does base64 B64 (LEN bytes) decode to exactly WANT (WLEN bytes)? */
static bool b64_is(const char *b64, size_t len, const char *want, size_t wlen)
{
	unsigned char *out = NULL;
	size_t olen = 0;
	if (ma_base64_decode(b64, len, &out, &olen) != 0)
		return false;
	bool eq = olen == wlen && memcmp(out, want, wlen) == 0;
	free(out);
	return eq;
}

/* "\0USER\0PASSWORD" into a malloc'd buffer; *len gets its length. */
static char *plain_message(const char *user, const char *password, size_t *len)
{
	size_t ul = strlen(user), pl = strlen(password);
	char *m = malloc(ul + pl + 2);
	ck_assert_ptr_nonnull(m);
	m[0] = '\0';
	memcpy(m + 1, user, ul);
	m[1 + ul] = '\0';
	memcpy(m + 2 + ul, password, pl);
	*len = ul + pl + 2;
	return m;
}

/*
 * The client's IMAP commands in DATA, with their synchronizing literals:
 * every command is "tag SP verb ... CRLF", where a line ending in {N} is
 * followed by N bytes and the rest of the same command.  Returns the
 * number of commands (VERBS: the first MAX verbs), or -1 when DATA is not a
 * sequence of well-formed commands (a split command shows up here).
 */
static int imap_commands(const char *d, size_t len, char verbs[][24], int max)
{
	size_t i = 0;
	int n = 0;
	while (i < len) {
		size_t s = i;
		while (i < len && ((d[i] >= 'a' && d[i] <= 'z') || (d[i] >= '0' && d[i] <= '9')))
			i++;
		if (i == s || i >= len || d[i] != ' ')
			return -1;
		size_t v = ++i;
		while (i < len && ((d[i] >= 'A' && d[i] <= 'Z') || (d[i] >= 'a' && d[i] <= 'z')))
			i++;
		if (i == v || i - v >= 24)
			return -1;
		if (n < max) {
			memcpy(verbs[n], d + v, i - v);
			verbs[n][i - v] = '\0';
		}
		n++;
		for (;;) {
			const char *e = memmem(d + i, len - i, "\r\n", 2);
			if (e == NULL)
				return -1;
			size_t eol = (size_t)(e - d);
			for (size_t k = i; k < eol; k++)
				if (d[k] == '\r' || d[k] == '\n')
					return -1;
			/* A literal announced at the end of this line? */
			size_t lit = 0;
			bool has_lit = false;
			if (eol > i && d[eol - 1] == '}') {
				size_t k = eol - 1;
				size_t digits = 0, mul = 1;
				while (k > i && d[k - 1] >= '0' && d[k - 1] <= '9') {
					lit += (size_t)(d[k - 1] - '0') * mul;
					mul *= 10;
					digits++;
					k--;
				}
				has_lit = digits > 0 && k > i && d[k - 1] == '{';
			}
			i = eol + 2;
			if (!has_lit)
				break;
			if (lit > len - i)
				return -1;
			i += lit;
		}
	}
	return n;
}

/* ======================================================================== */
/* Local refusals (no connection)                                           */
/* ======================================================================== */

START_TEST(password_too_long_pam)
{
	static const size_t sizes[] = { 1025, 2 * KIB, 64 * KIB, KIB * KIB };
	unsigned port;
	int fd = trap_listener(&port);
	write_config("trap", "imap", port, "implicit", NULL);
	write_service("auth required %M config=%C/trap.conf\n");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *pw = repeat_to("Long-pw\r\n\"\\{5}\xc3\xa9 ", sizes[i]);
		struct outcome o = pam_auth("alice", pw);
		ck_assert_msg(o.rc == PAM_AUTH_ERR, "%zu-byte password: PAM %s", sizes[i],
		              pam_name(o.rc));
		ck_assert_int_eq(o.prompts, 1);
		ck_assert_msg(o.ms < FAST_MS, "%zu-byte password: %ld ms", sizes[i], o.ms);
		/* The same twice: deterministic. */
		ck_assert_int_eq(pam_auth("alice", pw).rc, PAM_AUTH_ERR);
		free(pw);
	}
	assert_no_connection(fd, "over-long passwords");
	close(fd);
}
END_TEST

START_TEST(user_refused_before_prompt)
{
	/* CR/LF in a user name (SPEC 3) and user names over 255 bytes: refused
	 * before the prompt and before any connection. */
	char *u256 = repeat_to("u", 256);
	char *u1k = repeat_to("user", KIB);
	char *u4k = repeat_to("user", 4096);
	char *u64k = repeat_to("user", 64 * KIB);
	char *u1m = repeat_to("user", KIB * KIB);
	const char *users[] = {
		"alice\r\n", "alice\n", "alice\r", "\r\nalice", "al\nice",
		"alice\r\na1 LOGIN root x", "alice\r\nRCPT TO:<x@y>", u256, u1k, u4k, u64k, u1m,
	};
	unsigned port;
	char shown[120];
	int fd = trap_listener(&port);
	write_config("trap", "imap", port, "implicit", NULL);
	write_service("auth required %M config=%C/trap.conf\n");
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		struct outcome o = pam_auth(users[i], "Some-Password-1");
		ck_assert_msg(o.rc == PAM_AUTH_ERR, "user \"%s\": PAM %s",
		              show(users[i], shown, sizeof(shown)), pam_name(o.rc));
		ck_assert_msg(o.prompts == 0, "user \"%s\": prompted", show(users[i], shown,
		                                                         sizeof(shown)));
		ck_assert_int_eq(pam_auth(users[i], "Some-Password-1").rc, PAM_AUTH_ERR);
	}
	/* The same through SMTP: a user name must never split an SMTP command. */
	write_config("trap", "smtp", port, "starttls", NULL);
	for (size_t i = 0; i < 7; i++)
		ck_assert_int_eq(pam_auth(users[i], "Some-Password-1").rc, PAM_AUTH_ERR);
	assert_no_connection(fd, "hostile user names");
	close(fd);
	free(u256);
	free(u1k);
	free(u4k);
	free(u64k);
	free(u1m);
}
END_TEST

START_TEST(low_uids_unknown)
{
	/* root and system accounts: PAM_USER_UNKNOWN, no prompt, no connection,
	 * whatever the password or a stacked token. */
	static const char *const users[] = { "root", "daemon", "bin" };
	unsigned port;
	int fd = trap_listener(&port);
	write_config("trap", "imap", port, "implicit", NULL);
	write_service("auth required %M config=%C/trap.conf\n");
	for (size_t i = 0; i < 3; i++) {
		struct outcome o = pam_auth(users[i], "root-secret");
		ck_assert_msg(o.rc == PAM_USER_UNKNOWN, "%s: PAM %s", users[i], pam_name(o.rc));
		ck_assert_int_eq(o.prompts, 0);
		o = pam_auth(users[i], "pw\r\n\xff{5}");
		ck_assert_int_eq(o.rc, PAM_USER_UNKNOWN);
	}
	write_service("auth optional %T token=root-secret\n"
	              "auth required %M config=%C/trap.conf use_first_pass\n");
	for (size_t i = 0; i < 3; i++) {
		struct outcome o = pam_auth(users[i], "x");
		ck_assert_int_eq(o.rc, PAM_USER_UNKNOWN);
		ck_assert_int_eq(o.prompts, 0);
	}
	write_service("auth optional %T token=root-secret\n"
	              "auth required %M config=%C/trap.conf try_first_pass\n");
	ck_assert_int_eq(pam_auth("root", "x").rc, PAM_USER_UNKNOWN);
	assert_no_connection(fd, "root / daemon / bin");
	close(fd);
}
END_TEST

START_TEST(empty_password)
{
	unsigned port;
	int fd = trap_listener(&port);
	write_config("trap", "imap", port, "implicit", NULL);
	write_service("auth required %M config=%C/trap.conf\n");
	struct outcome o = pam_auth("alice", "");
	ck_assert_int_eq(o.rc, PAM_AUTH_ERR);
	ck_assert_int_eq(o.prompts, 1);
	assert_no_connection(fd, "empty password");
	close(fd);
}
END_TEST

START_TEST(login_template_overflow)
{
	/* A 250-byte user name is allowed, but "%u@example.org" makes a login
	 * over 255 bytes: never routed, never truncated, no connection. */
	unsigned port;
	char *user = repeat_to("a", 250);
	int fd = trap_listener(&port);
	write_config("long", "imap", port, "implicit", "login = \"%u@example.org\"");
	write_service("auth required %M config=%C/long.conf\n");
	struct outcome o = pam_auth(user, "Some-Password-1");
	ck_assert_msg(o.rc == PAM_USER_UNKNOWN, "PAM %s", pam_name(o.rc));
	ck_assert_int_eq(o.prompts, 0);
	assert_no_connection(fd, "login over 255 bytes");
	close(fd);
	free(user);
}
END_TEST

START_TEST(use_first_pass_without_token)
{
	unsigned port;
	int fd = trap_listener(&port);
	write_config("trap", "imap", port, "implicit", NULL);
	write_service("auth required %M config=%C/trap.conf use_first_pass\n");
	struct outcome o = pam_auth("alice", "Some-Password-1");
	ck_assert_msg(o.rc == PAM_AUTH_ERR, "PAM %s", pam_name(o.rc));
	ck_assert_int_eq(o.prompts, 0);
	assert_no_connection(fd, "use_first_pass without a token");
	close(fd);
}
END_TEST

START_TEST(stacked_token_too_long)
{
	/* 2 KiB, 64 KiB and 1 MiB tokens stacked by another module (pam_unix
	 * prompted for it and stored it as PAM_AUTHTOK; a PAM configuration line
	 * cannot carry 2 KiB, so pam_settok cannot): refused without a
	 * connection, not re-prompted. */
	static const size_t sizes[] = { 2 * KIB, 64 * KIB, KIB * KIB };
	unsigned port;
	char *tok = repeat_to("Stacked\r\ntoken ", sizes[_i]);
	int fd = trap_listener(&port);
	write_config("trap", "imap", port, "implicit", NULL);
	static const char *const opts[] = { "use_first_pass", "try_first_pass" };
	for (size_t i = 0; i < 2; i++) {
		char svc[512];
		snprintf(svc, sizeof(svc), "auth optional pam_unix.so nodelay\n"
		         "auth required %%M config=%%C/trap.conf %s\n", opts[i]);
		write_service(svc);
		struct outcome o = pam_auth("alice", tok);
		ck_assert_msg(o.rc == PAM_AUTH_ERR, "%zu bytes, %s: PAM %s", sizes[_i], opts[i],
		              pam_name(o.rc));
		ck_assert_msg(o.prompts == 1, "%s: %d prompts (pam_unix's only)", opts[i], o.prompts);
		ck_assert_msg(o.ms < FAST_MS, "%zu bytes, %s: %ld ms", sizes[_i], opts[i], o.ms);
	}
	assert_no_connection(fd, "over-long stacked token");
	close(fd);
	free(tok);
}
END_TEST

/* The exact boundaries, through the library: 1024-byte passwords and
 * 255-byte user names go to the server (here: a closed port, so
 * MA_UNAVAILABLE), one byte more is MA_BAD_INPUT without a connection. */
START_TEST(library_boundaries)
{
	unsigned port;
	int fd = trap_listener(&port);
	close(fd);                          /* nothing listens there now */
	char conf[1024], err[256];
	int len = snprintf(conf, sizeof(conf),
	                   "timeout = %d\nca_file = \"%s/ca.pem\"\n"
	                   "server s {\n protocol = imap\n host = \"127.0.0.1\"\n port = %u\n"
	                   " tls = implicit\n}\n", TIMEOUT_S, getenv("MA_TEST_CERTS"), port);
	struct ma_config *cfg = NULL;
	enum ma_err ce = ma_config_parse(conf, (size_t)len, "boundaries.conf", &cfg, err,
	                                 sizeof(err));
	ck_assert_msg(ce == MA_OK, "config: %s", err);
	struct ma_result res;

	char *pw1024 = repeat_to("p\r\n\"\\{5}\xff", 1024);
	char *pw1025 = repeat_to("p\r\n\"\\{5}\xff", 1025);
	ck_assert_int_eq(ma_authenticate(cfg, "alice", pw1024, NULL, &res), MA_UNAVAILABLE);
	ck_assert_int_eq(ma_authenticate(cfg, "alice", pw1025, NULL, &res), MA_BAD_INPUT);
	ck_assert_str_eq(res.detail, "password longer than 1024 bytes");
	ck_assert_str_eq(res.tls_version, "none");

	char *u255 = repeat_to("u", 255), *u256 = repeat_to("u", 256);
	ck_assert_int_eq(ma_authenticate(cfg, u255, "Some-Password-1", NULL, &res), MA_UNAVAILABLE);
	ck_assert_int_eq(ma_authenticate(cfg, u256, "Some-Password-1", NULL, &res), MA_BAD_INPUT);

	static const char *const crlf_users[] = { "a\rb", "a\nb", "a\r\nb", "\n", "\r" };
	for (size_t i = 0; i < 5; i++) {
		ck_assert_int_eq(ma_authenticate(cfg, crlf_users[i], "Some-Password-1", NULL, &res),
		                 MA_BAD_INPUT);
		ck_assert_int_eq(ma_check_user(cfg, crlf_users[i], err, sizeof(err)), MA_BAD_INPUT);
	}
	/* CR/LF in a password is no reason to refuse: it goes in base64 or a literal. */
	ck_assert_int_eq(ma_authenticate(cfg, "alice", "pw\r\nx", NULL, &res), MA_UNAVAILABLE);
	ck_assert_int_eq(ma_authenticate(cfg, "alice", "", NULL, &res), MA_BAD_INPUT);
	ck_assert_int_eq(ma_authenticate(cfg, "", "Some-Password-1", NULL, &res), MA_BAD_INPUT);
	ck_assert_int_eq(ma_authenticate(cfg, "root", "Some-Password-1", NULL, &res),
	                 MA_USER_UNKNOWN);
	free(pw1024);
	free(pw1025);
	free(u255);
	free(u256);
	ma_config_free(&cfg);
}
END_TEST

/* SCRAM without SASLprep: start() refuses what SASLprep could change
 * (non-ASCII, invalid UTF-8, control characters) with MA_NO_MECH, so that
 * the engine moves on to PLAIN, which carries the bytes as they are. */
START_TEST(library_scram_refuses)
{
	static const char *const refused[] = {
		"s\xc3\xa9" "cret", "bad\xff\xfe", "pw\r\nlf", "pw\x01x", "tab\tpw", "\x7f",
	};
	static const struct ma_mech_ops *const scram[] = {
		&ma_mech_scram_sha_256, &ma_mech_scram_sha_1,
	};
	char shown[64];
	for (size_t m = 0; m < 2; m++) {
		for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
			struct ma_sasl_creds c = { .authcid = "alice", .password = refused[i],
			                           .password_len = strlen(refused[i]) };
			void *state = NULL;
			enum ma_err rc = scram[m]->start(&c, &state);
			if (rc == MA_OK)
				scram[m]->free(state);
			ck_assert_msg(rc == MA_NO_MECH, "%s with password \"%s\": %s", scram[m]->name,
			              show(refused[i], shown, sizeof(shown)), ma_err_name(rc));
		}
		/* A non-ASCII user name too. */
		struct ma_sasl_creds u = { .authcid = "\xc3\xa5lice", .password = "Plain-Ascii-1",
		                           .password_len = 13 };
		void *state = NULL;
		enum ma_err rc = scram[m]->start(&u, &state);
		if (rc == MA_OK)
			scram[m]->free(state);
		ck_assert_int_eq(rc, MA_NO_MECH);
		/* Printable ASCII with spaces, quotes, backslashes is fine. */
		struct ma_sasl_creds ok = { .authcid = "alice", .password = PW_BOB,
		                            .password_len = strlen(PW_BOB) };
		rc = scram[m]->start(&ok, &state);
		ck_assert_int_eq(rc, MA_OK);
		scram[m]->free(state);
	}
}
END_TEST

/* ======================================================================== */
/* Fake servers: the exact bytes                                            */
/* ======================================================================== */

struct cred {
	const char *label;
	const char *user;
	const char *password;     /* NULL: a generated 1024-byte password */
};

#define PW1024_PATTERN "A\"\\ {5}\r\n\xc3\xa9\xff-"

static char *cred_password(const struct cred *c)
{
	return c->password != NULL ? strdup(c->password) : repeat_to(PW1024_PATTERN, 1024);
}

/* The IMAP LOGIN command: quoted strings or literals, one command. */
static const struct cred login_rows[] = {
	{ "plain", "alice", "Plain-Pw-1" },
	{ "dquote", "alice", "pw\"with\"quotes" },
	{ "backslash", "alice", "back\\slash\\\\" },
	{ "spaces", "alice", " with some spaces " },
	{ "literal-lookalike", "alice", "{5}" },
	{ "literal-lookalike-crlf", "alice", "{5}\r\nabcde" },
	{ "cr", "alice", "pw\rcr" },
	{ "lf", "alice", "pw\nlf" },
	{ "crlf-injection", "alice", "x\r\na9 LOGIN root secret" },
	{ "utf8", "alice", "s\xc3\xa9" "cr\xc3\xa8t-\xe2\x82\xac" },
	{ "invalid-utf8", "alice", "bad\xff\xfe\xc3(utf8" },
	{ "1024-bytes", "alice", NULL },
	{ "user-dquote", "al\"ice", "Plain-Pw-1" },
	{ "user-backslash", "al\\ice", "Plain-Pw-1" },
	{ "user-space", "al ice", "Plain-Pw-1" },
	{ "user-literal-lookalike", "{5}", "Plain-Pw-1" },
	{ "user-percent", "%u%l%d@x", "Plain-Pw-1" },
	{ "user-utf8", "\xc3\xa5lice", "Plain-Pw-1" },
	{ "user-invalid-utf8", "al\xff\xfeice", "Plain-Pw-1" },
	{ "user-and-password-literals", "\xc3\xa5lice", "pw\r\nlf" },
};
#define N_LOGIN_ROWS (sizeof(login_rows) / sizeof(login_rows[0]))

START_TEST(imap_login_command)
{
	const struct cred *c = &login_rows[_i];
	char *pw = cred_password(c);
	char label[120];
	struct fake_run r;
	snprintf(label, sizeof(label), "imap LOGIN command: %s", c->label);
	const char *args[] = { "--scenario", "login_command", "--tls", "implicit",
	                       "--user", c->user, "--password", pw, NULL };
	fake_row(&r, label, args, "imap", "implicit", NULL, c->user, pw);
	/* The server compared both strings byte for byte. */
	expect_pam(&r, PAM_SUCCESS);
	expect_status0(&r);
	char verbs[8][24];
	int n = imap_commands(r.fr.tls, r.fr.tls_len, verbs, 8);
	if (n != 2)
		fake_dump_run(&r);
	ck_assert_msg(n == 2, "%s: %d commands, want LOGIN and LOGOUT", label, n);
	ck_assert_str_eq(verbs[0], "LOGIN");
	ck_assert_str_eq(verbs[1], "LOGOUT");
	ck_assert_uint_eq(r.fr.plain_len, 0);
	ck_assert_int_eq(r.o.prompts, 1);
	fake_result_free(&r.fr);
	free(pw);
}
END_TEST

/* SASL PLAIN with SASL-IR: one AUTHENTICATE line whatever the password. */
static const struct cred plain_rows[] = {
	{ "plain", "alice", "Plain-Pw-1" },
	{ "crlf", "alice", "pw\r\nlf" },
	{ "crlf-injection", "alice", "x\r\na9 LOGIN root secret\r\n" },
	{ "lone-lf", "alice", "\n" },
	{ "controls", "alice", "\x01\x02\t\x1b[0m\x7f" },
	{ "dquote-backslash", "alice", "\"\\\"\\" },
	{ "literal-lookalike", "alice", "{5}" },
	{ "utf8", "alice", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
	{ "invalid-utf8", "alice", "\xc0\xaf\xed\xa0\x80\xff" },
	{ "1024-bytes", "alice", NULL },
	{ "user-odd", "a \"b\" \\c {5} \xc3\xa5\xff", "Plain-Pw-1" },
};
#define N_PLAIN_ROWS (sizeof(plain_rows) / sizeof(plain_rows[0]))

START_TEST(imap_plain_sasl_ir)
{
	const struct cred *c = &plain_rows[_i];
	char *pw = cred_password(c);
	char label[120];
	struct fake_run r;
	struct lines l;
	snprintf(label, sizeof(label), "imap AUTHENTICATE PLAIN: %s", c->label);
	const char *args[] = { "--scenario", "good_implicit", "--tls", "implicit",
	                       "--user", c->user, "--password", pw, NULL };
	fake_row(&r, label, args, "imap", "implicit", NULL, c->user, pw);
	expect_pam(&r, PAM_SUCCESS);
	expect_status0(&r);
	split_lines(r.fr.tls, r.fr.tls_len, &l);
	if (l.malformed || l.n != 2 || !line_starts(&l, 0, "a1 AUTHENTICATE PLAIN ") ||
	    !line_starts(&l, 1, "a2 LOGOUT"))
		fake_dump_run(&r);
	ck_assert_msg(!l.malformed && l.n == 2, "%s: %zu lines (malformed %d)", label, l.n,
	              l.malformed);
	ck_assert(line_starts(&l, 0, "a1 AUTHENTICATE PLAIN "));
	ck_assert(line_starts(&l, 1, "a2 LOGOUT"));
	size_t mlen;
	char *m = plain_message(c->user, pw, &mlen);
	ck_assert_msg(b64_is(l.p[0] + 22, l.len[0] - 22, m, mlen),
	              "%s: the PLAIN message is not exactly NUL user NUL password", label);
	free(m);
	fake_result_free(&r.fr);
	free(pw);
}
END_TEST

START_TEST(imap_plain_continuation)
{
	/* Without SASL-IR: "+ " then the response on a line of its own. */
	static const char pw[] = "pw\r\na2 LOGIN alice x\r\n";
	struct fake_run r;
	struct lines l;
	const char *args[] = { "--scenario", "plain_continuation", "--tls", "implicit",
	                       "--user", "alice", "--password", pw, NULL };
	fake_row(&r, "imap PLAIN continuation: crlf", args, "imap", "implicit", NULL, "alice", pw);
	expect_pam(&r, PAM_SUCCESS);
	expect_status0(&r);
	split_lines(r.fr.tls, r.fr.tls_len, &l);
	if (l.malformed || l.n != 3)
		fake_dump_run(&r);
	ck_assert(!l.malformed && l.n == 3);
	ck_assert(l.len[0] == strlen("a1 AUTHENTICATE PLAIN") &&
	          line_starts(&l, 0, "a1 AUTHENTICATE PLAIN"));
	size_t mlen;
	char *m = plain_message("alice", pw, &mlen);
	ck_assert(b64_is(l.p[1], l.len[1], m, mlen));
	ck_assert(line_starts(&l, 2, "a2 LOGOUT"));
	free(m);
	fake_result_free(&r.fr);
}
END_TEST

START_TEST(imap_login_mechanism)
{
	/* AUTH=LOGIN: user name and password each one base64 line. */
	static const char user[] = "al ice\xc3\xa5";
	static const char pw[] = "pw\r\n\xff{5}";
	struct fake_run r;
	struct lines l;
	const char *args[] = { "--scenario", "login_mech", "--tls", "implicit",
	                       "--user", user, "--password", pw, NULL };
	fake_row(&r, "imap AUTHENTICATE LOGIN: crlf", args, "imap", "implicit", NULL, user, pw);
	expect_pam(&r, PAM_SUCCESS);
	expect_status0(&r);
	split_lines(r.fr.tls, r.fr.tls_len, &l);
	if (l.malformed || l.n != 4)
		fake_dump_run(&r);
	ck_assert(!l.malformed && l.n == 4);
	ck_assert(line_starts(&l, 0, "a1 AUTHENTICATE LOGIN"));
	ck_assert(b64_is(l.p[1], l.len[1], user, strlen(user)));
	ck_assert(b64_is(l.p[2], l.len[2], pw, strlen(pw)));
	ck_assert(line_starts(&l, 3, "a2 LOGOUT"));
	fake_result_free(&r.fr);
}
END_TEST

/* SCRAM refuses what SASLprep would change (non-ASCII, controls): PLAIN
 * carries those bytes exactly.  The ASCII rows are the control: SCRAM is
 * tried first there (answered NO by this server), then PLAIN once. */
static const struct {
	const char *label;
	const char *user;
	const char *password;
	bool scram_expected;
} scram_rows[] = {
	{ "ascii-control", "alice", "Plain-Ascii-1", true },
	{ "utf8", "alice", "s\xc3\xa9" "cret", false },
	{ "invalid-utf8", "alice", "bad\xff\xfe", false },
	{ "crlf", "alice", "pw\r\nlf", false },
	{ "control", "alice", "pw\x01x", false },
	{ "utf8-user", "\xc3\xa5lice", "Plain-Ascii-1", false },
};
#define N_SCRAM_ROWS (sizeof(scram_rows) / sizeof(scram_rows[0]))

START_TEST(imap_scram_refuses_non_ascii)
{
	const char *user = scram_rows[_i].user, *pw = scram_rows[_i].password;
	char label[120];
	struct fake_run r;
	struct lines l;
	snprintf(label, sizeof(label), "imap SCRAM or PLAIN: %s", scram_rows[_i].label);
	const char *args[] = { "--scenario", "scram_plain", "--tls", "implicit",
	                       "--user", user, "--password", pw, NULL };
	fake_row(&r, label, args, "imap", "implicit", NULL, user, pw);
	expect_pam(&r, PAM_SUCCESS);
	expect_status0(&r);
	split_lines(r.fr.tls, r.fr.tls_len, &l);
	size_t want_lines = scram_rows[_i].scram_expected ? 3 : 2;
	if (l.malformed || l.n != want_lines)
		fake_dump_run(&r);
	ck_assert_msg(!l.malformed && l.n == want_lines, "%s: %zu lines", label, l.n);
	size_t k = 0;
	if (scram_rows[_i].scram_expected)
		ck_assert(line_starts(&l, k++, "a1 AUTHENTICATE SCRAM-SHA-256 "));
	else
		ck_assert_msg(!fake_mem_contains(r.fr.tls, r.fr.tls_len, "SCRAM"),
		              "%s: SCRAM was tried", label);
	char prefix[40];
	snprintf(prefix, sizeof(prefix), "a%zu AUTHENTICATE PLAIN ", k + 1);
	ck_assert(line_starts(&l, k, prefix));
	size_t mlen, pl = strlen(prefix);
	char *m = plain_message(user, pw, &mlen);
	ck_assert_msg(b64_is(l.p[k] + pl, l.len[k] - pl, m, mlen), "%s: PLAIN message", label);
	free(m);
	fake_result_free(&r.fr);
}
END_TEST

/* SMTP: AUTH PLAIN with the exact message, SCRAM-SHA-256 advertised too.
 * The script accepts only "AUTH PLAIN {PLAIN}" (base64 of exactly
 * NUL user NUL password) as the first AUTH. */
#define SMTP_SCRIPT_PLAIN \
	"tls\nsend 220 fake.test ESMTP\nexpect EHLO \n" \
	"send 250-fake.test\\r\\n250 AUTH SCRAM-SHA-256 PLAIN LOGIN\n" \
	"expect= AUTH PLAIN {PLAIN}\nsend 235 2.7.0 Authentication successful\nexpect= QUIT\n"

static const struct cred smtp_rows[] = {
	{ "utf8", "alice", "s\xc3\xa9" "cret" },
	{ "invalid-utf8", "alice", "bad\xff\xfe" },
	{ "crlf-injection", "alice", "x\r\nRCPT TO:<root@localhost>\r\n" },
	{ "lone-cr", "alice", "\r" },
	{ "1024-bytes", "alice", NULL },
	{ "user-odd", "a b\xc3\xa5 {5}\"\\", "s\xc3\xa9" "cret" },
};
#define N_SMTP_ROWS (sizeof(smtp_rows) / sizeof(smtp_rows[0]))

START_TEST(smtp_plain_exact)
{
	const struct cred *c = &smtp_rows[_i];
	char *pw = cred_password(c);
	char label[120];
	struct fake_run r;
	struct lines l;
	snprintf(label, sizeof(label), "smtp AUTH PLAIN: %s", c->label);
	const char *args[] = { "smtp", "--scenario", c->label, "--script", SMTP_SCRIPT_PLAIN,
	                       "--user", c->user, "--password", pw, NULL };
	fake_row(&r, label, args, "smtp", "implicit", NULL, c->user, pw);
	expect_pam(&r, PAM_SUCCESS);
	expect_status0(&r);
	split_lines(r.fr.tls, r.fr.tls_len, &l);
	if (l.malformed || l.n != 3)
		fake_dump_run(&r);
	ck_assert_msg(!l.malformed && l.n == 3, "%s: %zu lines", label, l.n);
	ck_assert(line_starts(&l, 0, "EHLO "));
	ck_assert(line_starts(&l, 1, "AUTH PLAIN "));
	ck_assert(l.len[2] == 4 && line_starts(&l, 2, "QUIT"));
	size_t mlen;
	char *m = plain_message(c->user, pw, &mlen);
	ck_assert(b64_is(l.p[1] + 11, l.len[1] - 11, m, mlen));
	free(m);
	fake_result_free(&r.fr);
	free(pw);
}
END_TEST

START_TEST(smtp_login_mechanism)
{
	static const char user[] = "al ice";
	static const char pw[] = "pw\r\n.\r\nQUIT\r\n";
	struct fake_run r;
	struct lines l;
	const char *args[] = {
		"smtp", "--scenario", "login-crlf", "--script",
		"send 220 fake.test ESMTP\nexpect EHLO \n"
		"send 250-fake.test hello\\r\\n250-PIPELINING\\r\\n250 STARTTLS\n"
		"expect= STARTTLS\nsend 220 2.0.0 go ahead\ntls\n"
		"expect EHLO \nsend 250-fake.test\\r\\n250 AUTH LOGIN\n"
		"expect= AUTH LOGIN\nsend 334 VXNlcm5hbWU6\nexpect= {USER}\n"
		"send 334 UGFzc3dvcmQ6\nexpect= {PASS}\nsend 235 2.7.0 ok\nexpect= QUIT\n",
		"--user", user, "--password", pw, NULL,
	};
	fake_row(&r, "smtp AUTH LOGIN: crlf", args, "smtp", "starttls", NULL, user, pw);
	expect_pam(&r, PAM_SUCCESS);
	expect_status0(&r);
	split_lines(r.fr.tls, r.fr.tls_len, &l);
	if (l.malformed || l.n != 5)
		fake_dump_run(&r);
	ck_assert(!l.malformed && l.n == 5);
	ck_assert(b64_is(l.p[2], l.len[2], user, strlen(user)));
	ck_assert(b64_is(l.p[3], l.len[3], pw, strlen(pw)));
	fake_result_free(&r.fr);
}
END_TEST

/* ---- use_first_pass / try_first_pass with stacked tokens ---- */

#define TOKEN "Stacked-Token-1"
#define TOKEN_CR "Cr\rToken-2"
#define TOKEN_CRLF "Lf\r\nToken-3\r\na9 LOGIN root x"

static const struct {
	const char *label;
	const char *service;      /* %T: pam_settok.so */
	const char *server_password;
	const char *conversation;  /* what the user would type */
	int want;
	int prompts;
} first_pass_rows[] = {
	{ "use_first_pass, settok token",
	  "auth optional %T token=" TOKEN "\nauth required %M config=%C/fake.conf use_first_pass\n",
	  TOKEN, "typed-not-used", PAM_SUCCESS, 0 },
	{ "use_first_pass, settok token with CR",
	  "auth optional %T token=" TOKEN_CR "\nauth required %M config=%C/fake.conf use_first_pass\n",
	  TOKEN_CR, "typed-not-used", PAM_SUCCESS, 0 },
	{ "try_first_pass, settok token with CR",
	  "auth optional %T token=" TOKEN_CR "\nauth required %M config=%C/fake.conf try_first_pass\n",
	  TOKEN_CR, "typed-not-used", PAM_SUCCESS, 0 },
	{ "try_first_pass, wrong settok token: rejected, not re-prompted",
	  "auth optional %T token=Wrong-Token\nauth required %M config=%C/fake.conf try_first_pass\n",
	  TOKEN, TOKEN, PAM_AUTH_ERR, 0 },
	{ "try_first_pass without a token: prompted",
	  "auth required %M config=%C/fake.conf try_first_pass\n",
	  TOKEN_CRLF, TOKEN_CRLF, PAM_SUCCESS, 1 },
	{ "use_first_pass, token with CR LF stacked by pam_unix",
	  "auth optional pam_unix.so nodelay\nauth required %M config=%C/fake.conf use_first_pass\n",
	  TOKEN_CRLF, TOKEN_CRLF, PAM_SUCCESS, 1 },
	{ "try_first_pass, token with CR LF stacked by pam_unix",
	  "auth optional pam_unix.so nodelay\nauth required %M config=%C/fake.conf try_first_pass\n",
	  TOKEN_CRLF, TOKEN_CRLF, PAM_SUCCESS, 1 },
	{ "use_first_pass, 1024-byte token stacked by pam_unix",
	  "auth optional pam_unix.so nodelay\nauth required %M config=%C/fake.conf use_first_pass\n",
	  NULL, NULL, PAM_SUCCESS, 1 },
};
#define N_FIRST_PASS (sizeof(first_pass_rows) / sizeof(first_pass_rows[0]))

START_TEST(first_pass_tokens)
{
	char *pw1024 = repeat_to(PW1024_PATTERN, 1024);
	const char *server_pw = first_pass_rows[_i].server_password;
	const char *typed = first_pass_rows[_i].conversation;
	if (server_pw == NULL)
		server_pw = pw1024;
	if (typed == NULL)
		typed = pw1024;
	struct fake_run r;
	struct lines l;
	const char *args[] = { "--scenario", "good_implicit", "--tls", "implicit",
	                       "--user", "alice", "--password", server_pw, NULL };
	fake_row(&r, first_pass_rows[_i].label, args, "imap", "implicit",
	         first_pass_rows[_i].service, "alice", typed);
	expect_pam(&r, first_pass_rows[_i].want);
	ck_assert_msg(r.o.prompts == first_pass_rows[_i].prompts, "%s: %d prompts, want %d",
	              r.label, r.o.prompts, first_pass_rows[_i].prompts);
	expect_status0(&r);
	split_lines(r.fr.tls, r.fr.tls_len, &l);
	ck_assert_msg(!l.malformed && l.n == 2 && line_starts(&l, 0, "a1 AUTHENTICATE PLAIN "),
	              "%s: not one AUTHENTICATE line", r.label);
	if (first_pass_rows[_i].want == PAM_SUCCESS) {
		size_t mlen;
		char *m = plain_message("alice", server_pw, &mlen);
		ck_assert(b64_is(l.p[0] + 22, l.len[0] - 22, m, mlen));
		free(m);
	}
	fake_result_free(&r.fr);
	free(pw1024);
}
END_TEST

/* ======================================================================== */
/* The real Dovecot                                                         */
/* ======================================================================== */

static const struct {
	const char *user;
	const char *password;      /* NULL: 1024 bytes */
	int want;
} dovecot_rows[] = {
	/* Controls (tests/lib/common.sh). */
	{ "alice", "alice-secret", PAM_SUCCESS },
	{ "bob", PW_BOB, PAM_SUCCESS },
	{ "carol", "carol-secret", PAM_SUCCESS },
	{ "dave@example.org", "dave-secret", PAM_SUCCESS },
	{ "erin", "erin-secret", PAM_SUCCESS },
	/* bob's password, escaped or unescaped the wrong way. */
	{ "bob", "bob pass \"quoted\" \\ back", PAM_AUTH_ERR },
	{ "bob", "bob pass \\\"quoted\\\" \\\\\\\\ back", PAM_AUTH_ERR },
	{ "bob", "bob pass quoted \\\\ back", PAM_AUTH_ERR },
	{ "bob", PW_BOB " ", PAM_AUTH_ERR },
	{ "bob", "\"" PW_BOB "\"", PAM_AUTH_ERR },
	/* alice's password with hostile additions. */
	{ "alice", "alice-secret\r\n", PAM_AUTH_ERR },
	{ "alice", "alice-secret\n", PAM_AUTH_ERR },
	{ "alice", "\ralice-secret", PAM_AUTH_ERR },
	{ "alice", "alice-secret\r\na9 LOGIN alice alice-secret", PAM_AUTH_ERR },
	{ "alice", "x\r\na9 LOGIN alice alice-secret\r\n", PAM_AUTH_ERR },
	{ "alice", "{12}\r\nalice-secret", PAM_AUTH_ERR },
	{ "alice", "{5}", PAM_AUTH_ERR },
	{ "alice", "alice secret", PAM_AUTH_ERR },
	{ "alice", "alice\"secret", PAM_AUTH_ERR },
	{ "alice", "alice\\secret", PAM_AUTH_ERR },
	{ "alice", "\xc3\xa5lice-secret", PAM_AUTH_ERR },
	{ "alice", "alice-secret\xff", PAM_AUTH_ERR },
	{ "alice", "\x01\x02\x03", PAM_AUTH_ERR },
	{ "alice", NULL, PAM_AUTH_ERR },
	/* Hostile user names with alice's password. */
	{ "al\"ice", "alice-secret", PAM_AUTH_ERR },
	{ "al\\ice", "alice-secret", PAM_AUTH_ERR },
	{ "al ice", "alice-secret", PAM_AUTH_ERR },
	{ "alice ", "alice-secret", PAM_AUTH_ERR },
	{ "{5}", "alice-secret", PAM_AUTH_ERR },
	{ "a,=b", "alice-secret", PAM_AUTH_ERR },
	{ "\xc3\xa5lice", "alice-secret", PAM_AUTH_ERR },
	{ "al\xff\xfeice", "alice-secret", PAM_AUTH_ERR },
	{ "alice\t", "alice-secret", PAM_AUTH_ERR },
	{ "*", "alice-secret", PAM_AUTH_ERR },
};
#define N_DOVECOT_ROWS (sizeof(dovecot_rows) / sizeof(dovecot_rows[0]))

static const struct {
	const char *proto;
	const char *tls;
	const char *port_env;
} dovecot_servers[] = {
	{ "imap", "implicit", "MA_TEST_IMAPS_PORT" },
	{ "imap", "starttls", "MA_TEST_IMAP_STARTTLS_PORT" },
	{ "smtp", "implicit", "MA_TEST_SUBMISSIONS_PORT" },
	{ "smtp", "starttls", "MA_TEST_SUBMISSION_PORT" },
};

#define N_DV_SERVERS (sizeof(dovecot_servers) / sizeof(dovecot_servers[0]))
#define N_ROUNDS 2

/* One authentication against Dovecot, done by a worker process. */
struct dv_result {
	int done;
	int worker_status;          /* waitpid status */
	struct outcome o;
	char error[96];
};

/* [row][server][round], in memory shared with the workers. */
static struct dv_result (*dv_results)[N_DV_SERVERS][N_ROUNDS];
static char dv_setup_error[PATH_MAX + 300];
static long dv_total_ms;

static void dv_worker(const char *dir, size_t row, size_t server, size_t round)
{
	struct dv_result *r = &dv_results[row][server][round];
	char *pw = dovecot_rows[row].password != NULL ? strdup(dovecot_rows[row].password)
	                                              : repeat_raw(PW1024_PATTERN, 1024);
	char service[32];
	alarm(60);
	snprintf(service, sizeof(service), "svc-%zu", server);
	if (pw == NULL || pam_auth_in(dir, service, dovecot_rows[row].user, pw, &r->o) != 0)
		snprintf(r->error, sizeof(r->error), "pam_start_confdir failed");
	else
		r->done = 1;
	free(pw);
	_exit(0);
}

/*
 * Every row against every Dovecot listener, twice, in parallel worker
 * processes (MA_HOSTILE_JOBS, default 16): Dovecot answers a wrong
 * password only at its next 0.5 s auth-failure tick, twice with the SCRAM
 * -> PLAIN fallback, so one after the other these would take minutes.
 * Runs before the suite; the "dovecot" tests assert the results.
 */
static void dovecot_precompute(void)
{
	char dir[PATH_MAX - 64], path[PATH_MAX], text[PATH_MAX * 2 + 512];
	const char *t = getenv("TMPDIR");

	dv_results = mmap(NULL, sizeof(*dv_results) * N_DOVECOT_ROWS, PROT_READ | PROT_WRITE,
	                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (dv_results == MAP_FAILED) {
		dv_results = NULL;
		snprintf(dv_setup_error, sizeof(dv_setup_error), "mmap: %s", strerror(errno));
		return;
	}
	snprintf(dir, sizeof(dir), "%s/ma-hostile-dovecot.XXXXXX", t != NULL && *t != '\0' ? t : "/tmp");
	if (mkdtemp(dir) == NULL) {
		snprintf(dv_setup_error, sizeof(dv_setup_error), "mkdtemp: %s", strerror(errno));
		return;
	}
	for (size_t s = 0; s < N_DV_SERVERS; s++) {
		const char *port = getenv(dovecot_servers[s].port_env);
		if (port == NULL || atoi(port) <= 0) {
			snprintf(dv_setup_error, sizeof(dv_setup_error),
			         "%s is not set: run through tests/run-tests.sh", dovecot_servers[s].port_env);
			goto out;
		}
		snprintf(path, sizeof(path), "%s/dovecot-%zu.conf", dir, s);
		config_text(text, sizeof(text), dovecot_servers[s].proto, (unsigned)atoi(port),
		            dovecot_servers[s].tls, NULL);
		if (write_text(path, text, 0600) != 0)
			goto write_error;
		snprintf(text, sizeof(text), "auth required %s config=%s\n", module_path, path);
		snprintf(path, sizeof(path), "%s/svc-%zu", dir, s);
		if (write_text(path, text, 0644) != 0)
			goto write_error;
	}

	long jobs = 16;
	const char *env = getenv("MA_HOSTILE_JOBS");
	if (env != NULL && atol(env) > 0 && atol(env) <= 64)
		jobs = atol(env);
	size_t total = N_DOVECOT_ROWS * N_DV_SERVERS * N_ROUNDS, next = 0, running = 0;
	pid_t pids[64];
	size_t which[64];
	long t0 = fake_now_ms();
	fflush(NULL);
	while (next < total || running > 0) {
		while (running < (size_t)jobs && next < total) {
			size_t k = next++;
			size_t row = k / (N_DV_SERVERS * N_ROUNDS), rest = k % (N_DV_SERVERS * N_ROUNDS);
			pid_t pid = fork();
			if (pid < 0) {
				snprintf(dv_results[row][rest / N_ROUNDS][rest % N_ROUNDS].error,
				         sizeof(dv_results[0][0][0].error), "fork: %s", strerror(errno));
				continue;
			}
			if (pid == 0)
				dv_worker(dir, row, rest / N_ROUNDS, rest % N_ROUNDS);
			pids[running] = pid;
			which[running] = k;
			running++;
		}
		if (running == 0)
			break;
		int st = 0;
		pid_t p = waitpid(-1, &st, 0);
		if (p < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (size_t j = 0; j < running; j++) {
			if (pids[j] != p)
				continue;
			size_t row = which[j] / (N_DV_SERVERS * N_ROUNDS);
			size_t rest = which[j] % (N_DV_SERVERS * N_ROUNDS);
			dv_results[row][rest / N_ROUNDS][rest % N_ROUNDS].worker_status = st;
			pids[j] = pids[running - 1];
			which[j] = which[running - 1];
			running--;
			break;
		}
	}
	dv_total_ms = fake_now_ms() - t0;
	goto out;
write_error:
	snprintf(dv_setup_error, sizeof(dv_setup_error), "cannot write %s: %s", path, strerror(errno));
out:
	for (size_t s = 0; s < N_DV_SERVERS; s++) {
		snprintf(path, sizeof(path), "%s/dovecot-%zu.conf", dir, s);
		unlink(path);
		snprintf(path, sizeof(path), "%s/svc-%zu", dir, s);
		unlink(path);
	}
	rmdir(dir);
}

START_TEST(dovecot_verdicts)
{
	const char *user = dovecot_rows[_i].user;
	char *pw = dovecot_rows[_i].password != NULL ? strdup(dovecot_rows[_i].password)
	                                             : repeat_to(PW1024_PATTERN, 1024);
	char su[120], sp[120];
	show(user, su, sizeof(su));
	show(pw, sp, sizeof(sp));
	ck_assert_msg(dv_setup_error[0] == '\0', "%s", dv_setup_error);
	ck_assert_ptr_nonnull(dv_results);
	for (size_t s = 0; s < N_DV_SERVERS; s++) {
		for (size_t round = 0; round < N_ROUNDS; round++) {
			const struct dv_result *r = &dv_results[_i][s][round];
			char where[320];
			snprintf(where, sizeof(where), "%s/%s user \"%s\" password \"%s\" (round %zu)",
			         dovecot_servers[s].proto, dovecot_servers[s].tls, su, sp, round + 1);
			ck_assert_msg(!WIFSIGNALED(r->worker_status), "%s: the worker died of signal %d",
			              where, WTERMSIG(r->worker_status));
			ck_assert_msg(r->done, "%s: the worker did not finish (status %d)%s%s", where,
			              r->worker_status, r->error[0] ? ": " : "", r->error);
			ck_assert_msg(r->o.rc == dovecot_rows[_i].want, "%s: PAM %s, want %s", where,
			              pam_name(r->o.rc), pam_name(dovecot_rows[_i].want));
			ck_assert_msg(r->o.prompts == 1, "%s: %d prompts", where, r->o.prompts);
			ck_assert_msg(r->o.ms <= MAX_MS, "%s: %ld ms", where, r->o.ms);
		}
	}
	free(pw);
}
END_TEST

START_TEST(dovecot_first_pass)
{
	const char *port = getenv("MA_TEST_IMAPS_PORT");
	ck_assert_msg(port != NULL && atoi(port) > 0, "MA_TEST_IMAPS_PORT is not set");
	write_config("dovecot", "imap", (unsigned)atoi(port), "implicit", NULL);
	/* bob's password (spaces, quotes, backslashes) stacked by pam_unix. */
	write_service("auth optional pam_unix.so nodelay\n"
	              "auth required %M config=%C/dovecot.conf use_first_pass\n");
	struct outcome o = pam_auth("bob", PW_BOB);
	ck_assert_int_eq(o.rc, PAM_SUCCESS);
	ck_assert_int_eq(o.prompts, 1);
	o = pam_auth("bob", PW_BOB "\r\n");
	ck_assert_int_eq(o.rc, PAM_AUTH_ERR);
	write_service("auth optional %T token=alice-secret\n"
	              "auth required %M config=%C/dovecot.conf use_first_pass\n");
	o = pam_auth("alice", "not-this");
	ck_assert_int_eq(o.rc, PAM_SUCCESS);
	ck_assert_int_eq(o.prompts, 0);
	write_service("auth optional %T token=alice-secret\r\n"
	              "auth required %M config=%C/dovecot.conf use_first_pass\n");
	o = pam_auth("alice", "not-this");
	ck_assert_msg(o.rc == PAM_AUTH_ERR, "token \"alice-secret\\r\": PAM %s", pam_name(o.rc));
}
END_TEST

/* ======================================================================== */

static Suite *hostile_input_suite(void)
{
	Suite *s = suite_create("hostile_input");

	TCase *tc = tcase_create("local");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, password_too_long_pam);
	tcase_add_test(tc, user_refused_before_prompt);
	tcase_add_test(tc, low_uids_unknown);
	tcase_add_test(tc, empty_password);
	tcase_add_test(tc, login_template_overflow);
	tcase_add_test(tc, use_first_pass_without_token);
	tcase_add_loop_test(tc, stacked_token_too_long, 0, 3);
	tcase_add_test(tc, library_boundaries);
	tcase_add_test(tc, library_scram_refuses);
	suite_add_tcase(s, tc);

	tc = tcase_create("fake");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, imap_login_command, 0, (int)N_LOGIN_ROWS);
	tcase_add_loop_test(tc, imap_plain_sasl_ir, 0, (int)N_PLAIN_ROWS);
	tcase_add_test(tc, imap_plain_continuation);
	tcase_add_test(tc, imap_login_mechanism);
	tcase_add_loop_test(tc, imap_scram_refuses_non_ascii, 0, (int)N_SCRAM_ROWS);
	tcase_add_loop_test(tc, smtp_plain_exact, 0, (int)N_SMTP_ROWS);
	tcase_add_test(tc, smtp_login_mechanism);
	tcase_add_loop_test(tc, first_pass_tokens, 0, (int)N_FIRST_PASS);
	suite_add_tcase(s, tc);

	tc = tcase_create("dovecot");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, dovecot_verdicts, 0, (int)N_DOVECOT_ROWS);
	tcase_add_test(tc, dovecot_first_pass);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	char root[PATH_MAX], p[PATH_MAX + 64];
	if (fake_certs_setup() == NULL) {
		fprintf(stderr, "test_hostile_input: no test certificates (set MA_TEST_CERTS)\n");
		return EXIT_FAILURE;
	}
	if (fake_root(root, sizeof(root)) != 0)
		return EXIT_FAILURE;
	snprintf(p, sizeof(p), "%s/pam_mailauth.so", root);
	if (realpath(p, module_path) == NULL) {
		fprintf(stderr, "test_hostile_input: %s: %s\n", p, strerror(errno));
		return EXIT_FAILURE;
	}
	snprintf(p, sizeof(p), "%s/tests/harness/pam_settok.so", root);
	if (realpath(p, settok_path) == NULL) {
		fprintf(stderr, "test_hostile_input: %s: %s\n", p, strerror(errno));
		return EXIT_FAILURE;
	}
	/* Only when the dovecot tests will run (CK_RUN_CASE may select others). */
	const char *only = getenv("CK_RUN_CASE");
	if (only == NULL || strcmp(only, "dovecot") == 0)
		dovecot_precompute();
	int rc = ma_unit_run(hostile_input_suite());
	if (getenv("MA_FAKE_VERBOSE") != NULL)
		fprintf(stderr, "dovecot rows: %zu authentications in %ld ms\n",
		        N_DOVECOT_ROWS * N_DV_SERVERS * N_ROUNDS, dv_total_ms);
	return rc;
}
