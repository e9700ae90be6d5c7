/*
 * test_pam.c - the module through the real Linux-PAM library: a private
 * service directory (pam_start_confdir, Linux-PAM >= 1.4) loads the built
 * pam_mailauth.so, and the conversation answers its password prompt.
 *
 * Needs the suite's Dovecot (tests/run-tests.sh exports MA_TEST_IMAPS_PORT,
 * MA_TEST_IMAP_STARTTLS_PORT and MA_TEST_CERTS); without them the
 * tests that need a server FAIL, they are never skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "unit.h"

static char tmpdir[PATH_MAX];
static char module[PATH_MAX];
static char settok[PATH_MAX];
static int prompts;            /* how often the conversation was asked */

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF || msg[i]->msg_style == PAM_PROMPT_ECHO_ON) {
			prompts++;
			r[i].resp = strdup(data != NULL ? data : "");
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

static const char *env_or_fail(const char *name)
{
	const char *v = getenv(name);
	ck_assert_msg(v != NULL && v[0] != '\0', "%s is not set: run through tests/run-tests.sh", name);
	return v;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

/* A config for one IMAP server on PORT with TLS mode TLS. */
static void write_config(const char *name, int port, const char *tls, const char *extra)
{
	char path[PATH_MAX + 64], text[4096];
	snprintf(path, sizeof(path), "%s/%s.conf", tmpdir, name);
	snprintf(text, sizeof(text),
	         "timeout = 5\nca_file = \"%s/ca.pem\"\n%s\n"
	         "server dovecot {\n protocol = imap\n host = \"127.0.0.1\"\n port = %d\n tls = %s\n}\n",
	         getenv("MA_TEST_CERTS") ? getenv("MA_TEST_CERTS") : "/nonexistent", extra, port, tls);
	write_file(path, text, 0600);
}

/* The PAM service "svc" with the given auth lines (%M = module path,
 * %C = config dir, %T = token module). */
static void write_service(const char *lines)
{
	char path[PATH_MAX + 16], text[16384];
	size_t o = 0;
	for (const char *p = lines; *p && o < sizeof(text) - PATH_MAX; p++) {
		if (p[0] == '%' && p[1] == 'M') {
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s", module); p++;
		} else if (p[0] == '%' && p[1] == 'C') {
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s", tmpdir); p++;
		} else if (p[0] == '%' && p[1] == 'T') {
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s", settok); p++;
		} else {
			text[o++] = *p;
		}
	}
	text[o] = '\0';
	snprintf(path, sizeof(path), "%s/svc", tmpdir);
	write_file(path, text, 0644);
}

static int pam_run(const char *user, const char *password, int (*op)(pam_handle_t *, int))
{
	struct pam_conv c = { conv, (void *)(uintptr_t)password };
	pam_handle_t *pamh = NULL;
	prompts = 0;
	int rc = pam_start_confdir("svc", user, &c, tmpdir, &pamh);
	ck_assert_int_eq(rc, PAM_SUCCESS);
	rc = op(pamh, 0);
	pam_end(pamh, rc);
	return rc;
}

static int auth(const char *user, const char *password)
{
	return pam_run(user, password, pam_authenticate);
}

/* A listener that must never see a connection. */
static int listener(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	getsockname(fd, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	return fd;
}

static void assert_no_connection(int fd)
{
	int c = accept(fd, NULL, NULL);
	ck_assert_msg(c < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "the module connected");
	close(fd);
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ma-pam-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_ptr_nonnull(realpath("pam_mailauth.so", module));
	ck_assert_ptr_nonnull(realpath("tests/harness/pam_settok.so", settok));
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(real_dovecot_verdicts)
{
	int ports[2] = { atoi(env_or_fail("MA_TEST_IMAPS_PORT")),
	                 atoi(env_or_fail("MA_TEST_IMAP_STARTTLS_PORT")) };
	const char *modes[2] = { "implicit", "starttls" };
	write_service("auth required %M config=%C/ok.conf\n");
	for (int i = 0; i < 2; i++) {
		write_config("ok", ports[i], modes[i], "");
		ck_assert_int_eq(auth("alice", "alice-secret"), PAM_SUCCESS);
		ck_assert_int_eq(prompts, 1);
		ck_assert_int_eq(auth("alice", "wrong-secret"), PAM_AUTH_ERR);
		ck_assert_int_eq(auth("bob", "bob pass \"quoted\" \\\\ back"), PAM_SUCCESS);
		ck_assert_int_eq(auth("carol", "carol-secret"), PAM_SUCCESS);
		ck_assert_int_eq(auth("nobody-here", "x-secret"), PAM_AUTH_ERR);
	}
}
END_TEST

START_TEST(server_down_is_unavailable)
{
	int port;
	int fd = listener(&port);
	close(fd);                        /* nothing listens there now */
	write_config("down", port, "implicit", "");
	write_service("auth required %M config=%C/down.conf\n");
	ck_assert_int_eq(auth("alice", "alice-secret"), PAM_AUTHINFO_UNAVAIL);
}
END_TEST

START_TEST(refused_without_connecting)
{
	int port;
	int fd = listener(&port);
	write_config("trap", port, "implicit", "");
	write_service("auth required %M config=%C/trap.conf\n");
	ck_assert_int_eq(auth("alice", ""), PAM_AUTH_ERR);
	ck_assert_int_eq(auth("alice", "\b\n\r\177INCORRECT"), PAM_AUTH_ERR);
	/* sshd repeats or cuts the junk to the length of the typed password. */
	ck_assert_int_eq(auth("alice", "\b\n\r\177INC"), PAM_AUTH_ERR);
	ck_assert_int_eq(auth("alice", "\b\n\r\177INCORRECT\b\n\r\177INCORRECT\b\n"), PAM_AUTH_ERR);
	/* root (uid 0 < minimum_uid 1000): refused before the prompt. */
	ck_assert_int_eq(auth("root", "whatever-secret"), PAM_USER_UNKNOWN);
	ck_assert_int_eq(prompts, 0);
	ck_assert_int_eq(auth("daemon", "whatever-secret"), PAM_USER_UNKNOWN);
	assert_no_connection(fd);
}
END_TEST

START_TEST(require_local_user_and_domains)
{
	int port;
	int fd = listener(&port);
	write_config("local", port, "implicit", "require_local_user = yes\n");
	write_service("auth required %M config=%C/local.conf\n"
	              "account required %M config=%C/local.conf\n");
	ck_assert_int_eq(auth("no-such-local-user", "pw-secret"), PAM_USER_UNKNOWN);
	ck_assert_int_eq(pam_run("no-such-local-user", "", pam_acct_mgmt), PAM_USER_UNKNOWN);
	write_config("dom", port, "implicit", "domains = {\"example.org\"}\n");
	write_service("auth required %M config=%C/dom.conf\n"
	              "account required %M config=%C/dom.conf\n");
	ck_assert_int_eq(auth("mallory@evil.example", "pw-secret"), PAM_USER_UNKNOWN);
	ck_assert_int_eq(pam_run("mallory@evil.example", "", pam_acct_mgmt), PAM_USER_UNKNOWN);
	ck_assert_int_eq(pam_run("dave@example.org", "", pam_acct_mgmt), PAM_SUCCESS);
	write_service("account required %M config=%C/dom.conf acct_ignore\n"
	              "account required pam_permit.so\n");
	/* PAM_IGNORE from the only-then module: pam_permit decides. */
	ck_assert_int_eq(pam_run("mallory@evil.example", "", pam_acct_mgmt), PAM_SUCCESS);
	assert_no_connection(fd);
}
END_TEST

START_TEST(configuration_errors)
{
	write_service("auth required %M config=%C/missing.conf\n");
	ck_assert_int_eq(auth("alice", "alice-secret"), PAM_SERVICE_ERR);
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/bad.conf", tmpdir);
	write_file(path, "timeout = 5\nno_such_key = 1\n", 0600);
	write_service("auth required %M config=%C/bad.conf\n");
	ck_assert_int_eq(auth("alice", "alice-secret"), PAM_SERVICE_ERR);
	write_file(path, "timeout = 5\nserver x { host = \"127.0.0.1\" }\n", 0666);
	ck_assert_int_eq(auth("alice", "alice-secret"), PAM_SERVICE_ERR);   /* world-writable */
	write_config("ok", 1, "implicit", "");
	write_service("auth required %M config=%C/ok.conf no_such_option\n");
	ck_assert_int_eq(auth("alice", "alice-secret"), PAM_SERVICE_ERR);
}
END_TEST

START_TEST(setcred_succeeds)
{
	write_config("ok", 1, "implicit", "");
	write_service("auth required %M config=%C/ok.conf\n");
	ck_assert_int_eq(pam_run("alice", "", pam_setcred), PAM_SUCCESS);
}
END_TEST

START_TEST(first_pass_options)
{
	int port = atoi(env_or_fail("MA_TEST_IMAPS_PORT"));
	write_config("ok", port, "implicit", "");
	/* use_first_pass: the stacked token is used, no prompt. */
	write_service("auth optional %T token=alice-secret\n"
	              "auth required %M config=%C/ok.conf use_first_pass\n");
	ck_assert_int_eq(auth("alice", "not-this"), PAM_SUCCESS);
	ck_assert_int_eq(prompts, 0);
	/* use_first_pass without a stacked token: fail, never prompt. */
	write_service("auth required %M config=%C/ok.conf use_first_pass\n");
	ck_assert_int_ne(auth("alice", "alice-secret"), PAM_SUCCESS);
	ck_assert_int_eq(prompts, 0);
	/* try_first_pass: a wrong stacked token is tried (and rejected by the
	 * server); with none, the user is prompted. */
	write_service("auth optional %T token=wrong-one\n"
	              "auth required %M config=%C/ok.conf try_first_pass\n");
	ck_assert_int_eq(auth("alice", "alice-secret"), PAM_AUTH_ERR);
	write_service("auth required %M config=%C/ok.conf try_first_pass\n");
	ck_assert_int_eq(auth("alice", "alice-secret"), PAM_SUCCESS);
	ck_assert_int_eq(prompts, 1);
}
END_TEST

static Suite *pam_suite(void)
{
	Suite *s = suite_create("pam");
	TCase *tc = tcase_create("stack");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, real_dovecot_verdicts);
	tcase_add_test(tc, server_down_is_unavailable);
	tcase_add_test(tc, refused_without_connecting);
	tcase_add_test(tc, require_local_user_and_domains);
	tcase_add_test(tc, configuration_errors);
	tcase_add_test(tc, setcred_succeeds);
	tcase_add_test(tc, first_pass_options);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ma_unit_run(pam_suite());
}
