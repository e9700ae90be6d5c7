/*
 * test_guest.c - the library as a guest in a busy host process (issue
 * "[T2 1/3]", item 3):
 *   - a resolver that never answers does not pile up threads: at most 16
 *     lookups are outstanding, the logins beyond are unavailable at once, and
 *     the slots come back when the resolver answers;
 *   - fork() while another thread holds the TLS cache lock, or parses a
 *     configuration, leaves the child a lock it can take;
 *   - a server that sends 50 session tickets gets at most 4 of them into the
 *     process-wide cache.
 * getaddrinfo() is replaced in this program (the static library's calls bind
 * to it): names under .hang.test block until the test lets them go.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "fake.h"
#include "libmailauth.h"
#include "net.h"
#include "tls.h"
#include "tlsflood.h"
#include "unit.h"

#define CAP 16                   /* MAX_PENDING_LOOKUPS in lib/net.c */

static int hang[2] = { -1, -1 };

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
	typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *,
	                      struct addrinfo **);
	bool numeric = hints != NULL && (hints->ai_flags & AI_NUMERICHOST);
	if (!numeric && node != NULL && strstr(node, ".hang.test") != NULL) {
		char c;
		while (read(hang[0], &c, 1) < 0 && errno == EINTR)
			;
		return EAI_AGAIN;
	}
	gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
	return real(node, service, hints, res);
}

static int count_threads(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static struct ma_config *parse(const char *text)
{
	struct ma_config *cfg = NULL;
	char err[256];
	ck_assert_msg(ma_config_parse(text, strlen(text), "t.conf", &cfg, err, sizeof(err)) == MA_OK,
	              "%s", err);
	return cfg;
}

struct login {
	const struct ma_config *cfg;
	enum ma_err err;
	struct ma_result res;
	long ms;
};

static void *login_thread(void *arg)
{
	struct login *l = arg;
	long t0 = fake_now_ms();
	l->err = ma_authenticate(l->cfg, "alice", "secret", NULL, &l->res);
	l->ms = fake_now_ms() - t0;
	return NULL;
}

#define LOGINS 40

START_TEST(hung_resolver_does_not_pile_up_threads)
{
	ck_assert_int_eq(pipe(hang), 0);
	struct ma_config *cfg = parse("timeout = 1\nserver s { host = \"mail.hang.test\" }\n");
	int base = count_threads();
	static struct login l[LOGINS];
	pthread_t t[LOGINS];
	for (int i = 0; i < LOGINS; i++) {
		l[i].cfg = cfg;
		ck_assert_int_eq(pthread_create(&t[i], NULL, login_thread, &l[i]), 0);
	}
	for (int i = 0; i < LOGINS; i++)
		pthread_join(t[i], NULL);
	int timed_out = 0, refused = 0, after = count_threads() - base;
	for (int i = 0; i < LOGINS; i++) {
		if (l[i].err == MA_TIMEOUT)
			timed_out++;
		else if (l[i].err == MA_UNAVAILABLE && strstr(l[i].res.detail, "unanswered") != NULL &&
		         l[i].ms < 500)
			refused++;
		else
			ck_abort_msg("login %d: %s (%s) in %ld ms", i, ma_err_name(l[i].err),
			             l[i].res.detail, l[i].ms);
	}
	/* The resolver threads of the timed-out logins are still blocked. */
	ck_assert_msg(after <= CAP, "%d resolver threads left behind by %d logins", after, LOGINS);
	ck_assert_int_eq(ma_net_pending_lookups(), CAP);
	ck_assert_int_eq(timed_out, CAP);
	ck_assert_int_eq(refused, LOGINS - CAP);

	/* The resolver answers again: every slot comes back. */
	char go[LOGINS] = { 0 };
	ck_assert_int_eq(write(hang[1], go, sizeof(go)), (ssize_t)sizeof(go));
	for (int i = 0; i < 200 && ma_net_pending_lookups() > 0; i++)
		usleep(10000);
	ck_assert_int_eq(ma_net_pending_lookups(), 0);
	ma_config_free(&cfg);
	cfg = parse("timeout = 1\nserver s { host = \"localhost\" port = 1 }\n");
	struct login again = { .cfg = cfg };
	login_thread(&again);
	ck_assert_msg(again.err == MA_UNAVAILABLE && strstr(again.res.detail, "connect") != NULL,
	              "after the resolver came back: %s (%s)", ma_err_name(again.err),
	              again.res.detail);
	ma_config_free(&cfg);
}
END_TEST

/* ---- fork() with a lock held by another thread ---- */

/* Wait up to MS for PID; its status, or -1 after killing it (it hung). */
static int wait_child(pid_t pid, long ms)
{
	long end = fake_now_ms() + ms;
	int st = 0;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (fake_now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(10000);
	}
	return st;
}

static void *hold_tls_lock(void *arg)
{
	(void)arg;
	ma_tls_cache_lock_for_test(true);
	usleep(300 * 1000);
	ma_tls_cache_lock_for_test(false);
	return NULL;
}

/* The child logs in at the suite's Dovecot (which takes the TLS cache lock);
 * 0 when it got in, killed by SIGALRM when it waited for the lock forever. */
static int child_login(void)
{
	const char *port = getenv("MA_TEST_IMAPS_PORT");
	char text[1024];
	snprintf(text, sizeof(text), "timeout = 5\nca_file = \"%s/ca.pem\"\n"
	         "server d { host = \"127.0.0.1\" port = %s }\n", getenv("MA_TEST_CERTS"),
	         port != NULL ? port : "1");
	struct ma_config *cfg = NULL;
	char err[256];
	if (ma_config_parse(text, strlen(text), "t.conf", &cfg, err, sizeof(err)) != MA_OK)
		return 3;
	enum ma_err rc = ma_authenticate(cfg, "alice", "alice-secret", NULL, NULL);
	ma_config_free(&cfg);
	return rc == MA_OK ? 0 : 2;
}

START_TEST(fork_while_another_thread_holds_the_tls_cache_lock)
{
	ck_assert_msg(getenv("MA_TEST_IMAPS_PORT") != NULL, "run through tests/run-tests.sh");
	/* The parent itself logs in first: the lock and the cache are in use. */
	ck_assert_int_eq(child_login(), 0);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, hold_tls_lock, NULL), 0);
	usleep(50 * 1000);          /* the other thread has the lock now */
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(child_login());
	pthread_join(t, NULL);
	int st = wait_child(pid, 8000);
	ck_assert_msg(st != -1, "the child waited 8 s for the TLS cache lock (deadlock)");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %d", st);
}
END_TEST

static volatile int parsing = 1;

static void *parse_forever(void *arg)
{
	(void)arg;
	static const char text[] = "timeout = 5\nserver a { host = \"a.example\" }\n"
	                           "server b { host = \"b.example\" protocol = smtp }\n";
	while (parsing) {
		struct ma_config *cfg = NULL;
		char err[128];
		(void)ma_config_parse(text, sizeof(text) - 1, "busy.conf", &cfg, err, sizeof(err));
		ma_config_free(&cfg);
	}
	return NULL;
}

START_TEST(fork_while_another_thread_parses_a_configuration)
{
	/* The other thread spends nearly all its time inside libconfuse's lock:
	 * without the fork handlers most children would find it held. */
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, parse_forever, NULL), 0);
	usleep(20 * 1000);
	int stuck = 0, last = 0;
	for (int i = 0; i < 20; i++) {
		fflush(NULL);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			struct ma_config *cfg = NULL;
			char err[128];
			static const char text[] = "server c { host = \"c.example\" }\n";
			enum ma_err rc = ma_config_parse(text, sizeof(text) - 1, "child.conf", &cfg,
			                                 err, sizeof(err));
			ma_config_free(&cfg);
			if (rc != MA_OK)
				fprintf(stderr, "child: %s: %s\n", ma_err_name(rc), err);
			_exit(rc == MA_OK ? 0 : 2);
		}
		last = wait_child(pid, 5000);
		stuck += !(last != -1 && WIFEXITED(last) && WEXITSTATUS(last) == 0);
		if (stuck > 0)
			break;
	}
	parsing = 0;
	pthread_join(t, NULL);
	ck_assert_msg(last != -1, "a child could not parse in 5 s (the lock was held forever)");
	ck_assert_msg(stuck == 0, "a child failed to parse: wait status %d", last);
}
END_TEST

/* ---- session tickets ---- */

START_TEST(at_most_four_tickets_kept_per_connection)
{
	struct flood f;
	ck_assert_int_eq(flood_start_count(&f, TICKETS_THEN_GREET, false, 5.0, 50), 0);
	char ca[PATH_MAX];
	snprintf(ca, sizeof(ca), "%s/ca.pem", getenv("MA_TEST_CERTS"));
	struct ma_tls_params p = {
		.verify_name = "127.0.0.1", .ca_file = ca, .min_version = 0x0304,
	};
	struct ma_deadline dl;
	ma_deadline_start(&dl, 5000);
	enum ma_err err;
	char why[256] = "";
	int fd = ma_net_connect("127.0.0.1", f.port, false, &dl, &err, why, sizeof(why));
	ck_assert_msg(fd >= 0, "%s", why);
	struct ma_tls *t = NULL;
	ck_assert_msg(ma_tls_connect(fd, &p, &dl, &t, why, sizeof(why)) == MA_OK, "%s", why);
	char buf[64];
	size_t got = 0;
	while (got < 12) {
		ssize_t n = ma_tls_read(t, buf + got, sizeof(buf) - 1 - got, &dl, &err);
		ck_assert_msg(n > 0, "read: %zd %s", n, ma_err_name(err));
		got += (size_t)n;
	}
	buf[got] = '\0';
	ck_assert_str_eq(buf, "* OK ready\r\n");
	unsigned kept = ma_tls_tickets_kept(t);
	ma_tls_free(&t);
	close(fd);
	ck_assert_int_eq(flood_stop(&f), 50);
	ck_assert_msg(kept >= 1 && kept <= 4, "%u of 50 tickets kept", kept);
}
END_TEST

static Suite *guest_suite(void)
{
	Suite *s = suite_create("guest");
	TCase *tc = tcase_create("guest");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, hung_resolver_does_not_pile_up_threads);
	tcase_add_test(tc, fork_while_another_thread_holds_the_tls_cache_lock);
#if defined(__SANITIZE_ADDRESS__)
	/* GCC 12's libasan takes no lock around fork(): a child forked while
	 * the parsing thread is inside ASan's malloc waits on the allocator's
	 * own mutex forever, whatever our handlers do (seen under gdb:
	 * SizeClassAllocator64::GetFromAllocator).  The plain `make check`
	 * runs this row; it fails there when the handlers are removed. */
	fprintf(stderr, "not run under ASan: fork_while_another_thread_parses_a_configuration "
	                "(libasan's allocator is not fork-safe)\n");
	(void)fork_while_another_thread_parses_a_configuration;
#else
	tcase_add_test(tc, fork_while_another_thread_parses_a_configuration);
#endif
	tcase_add_test(tc, at_most_four_tickets_kept_per_connection);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (fake_certs_setup() == NULL)
		return EXIT_FAILURE;
	return ma_unit_run(guest_suite());
}
