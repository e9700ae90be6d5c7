/*
 * bench/pamloop.c - pam_mailauth.so in one long-lived process, through the
 * real Linux-PAM library (pam_start_confdir: a private service directory,
 * nothing under /etc), the way a web application or a captive portal uses it.
 *
 *   pamloop -D CONFDIR -s SERVICE -u USER -p PASSWORD -n LOGINS
 *           [-t THREADS] [-w WARMUP] [-f] [-c N,N,...] [-q]
 *   pamloop -D CONFDIR -s SERVICE -l LIST -n LOGINS [-t THREADS] [-q]
 *
 *   -t THREADS  concurrent logins (default 1); each thread has its own PAM
 *               handle and takes the next login number from a shared counter
 *   -w WARMUP   logins per thread before measuring (not counted; default 0)
 *   -f          a fresh handle per login (pam_start_confdir, pam_authenticate,
 *               pam_end), as python-pam and most web frameworks do; default:
 *               one handle per thread, pam_authenticate in a loop
 *   -c N,...    record peak RSS (ru_maxrss) and current RSS (/proc/self/statm)
 *               after N measured logins (memory growth check)
 *   -q          print no per-login latencies
 *   -l LIST     requests from a file, one a line: USER TAB PASSWORD [TAB
 *               RHOST]; login i uses line i (modulo the number of lines),
 *               on a fresh handle (implies -f; PAM_RHOST set when given), the
 *               way a web server checks HTTP Basic credentials per request;
 *               -u and -p are not used, -w warms up with the first lines
 *
 * Prints one JSON object on stdout: logins, ok, failed, first_error, wall_s,
 * utime_s, stime_s (getrusage(RUSAGE_SELF) deltas over the measured logins),
 * maxrss_kb, rss_kb, checkpoints [{n, maxrss_kb, rss_kb}], lat_ms [...] (per
 * login, in login order), and with -l rc [...] (each login's PAM return
 * code, in login order, also with -q).  Exit status 0 when every login
 * returned PAM_SUCCESS, 1 otherwise, 2 on usage errors.
 *
 * The measured logins run inside pamloop_measured(), so that
 * `valgrind --tool=callgrind --toggle-collect=pamloop_measured` counts them
 * and nothing else (process start, module load, warm-up).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <security/pam_appl.h>

#define MAX_CHECKPOINTS 16

struct checkpoint {
	long n;
	long maxrss_kb;
	long rss_kb;
};

static const char *confdir, *service, *user, *password;
static long n_logins, n_threads = 1, warmup;
static int fresh;
static double *lat_ms;

/* -l: one request per line. */
struct cred {
	char *user, *password, *rhost;
};
static struct cred *creds;
static long n_creds;
static int *rcs;
static atomic_long next_login, done_logins, ok_logins;
static atomic_int first_error = PAM_SUCCESS;
static struct checkpoint checkpoints[MAX_CHECKPOINTS];
static int n_checkpoints;
static pthread_mutex_t cp_lock = PTHREAD_MUTEX_INITIALIZER;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static long maxrss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF || msg[i]->msg_style == PAM_PROMPT_ECHO_ON) {
			r[i].resp = strdup((const char *)data);
			if (r[i].resp == NULL) {
				for (int j = 0; j < i; j++)
					free(r[j].resp);
				free(r);
				return PAM_BUF_ERR;
			}
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

static struct pam_conv the_conv = { conv, NULL };

static int start(pam_handle_t **pamh)
{
	return pam_start_confdir(service, user, &the_conv, confdir, pamh);
}

/* Login I of a -l list: a fresh handle with that line's user, password and
 * remote host. */
static int list_login(long i)
{
	const struct cred *c = &creds[i % n_creds];
	struct pam_conv cv = { conv, c->password };
	pam_handle_t *h = NULL;
	int rc = pam_start_confdir(service, c->user, &cv, confdir, &h);
	if (rc != PAM_SUCCESS)
		return rc;
	if (c->rhost != NULL)
		rc = pam_set_item(h, PAM_RHOST, c->rhost);
	if (rc == PAM_SUCCESS)
		rc = pam_authenticate(h, 0);
	pam_end(h, rc);
	return rc;
}

/* The -l file: USER TAB PASSWORD [TAB RHOST] per line. */
static int read_list(const char *path)
{
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		fprintf(stderr, "pamloop: %s: %s\n", path, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long size = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		char *tab = strchr(line, '\t');
		if (tab == NULL) {
			fprintf(stderr, "pamloop: %s: line %ld: no TAB\n", path, n_creds + 1);
			fclose(f);
			free(line);
			return -1;
		}
		*tab = '\0';
		char *pw = tab + 1, *rhost = strchr(pw, '\t');
		if (rhost != NULL)
			*rhost++ = '\0';
		if (n_creds == size) {
			size = size ? 2 * size : 64;
			struct cred *n = realloc(creds, (size_t)size * sizeof(*n));
			if (n == NULL) {
				fclose(f);
				free(line);
				return -1;
			}
			creds = n;
		}
		creds[n_creds].user = strdup(line);
		creds[n_creds].password = strdup(pw);
		creds[n_creds].rhost = rhost != NULL && *rhost != '\0' ? strdup(rhost) : NULL;
		if (creds[n_creds].user == NULL || creds[n_creds].password == NULL) {
			fclose(f);
			free(line);
			return -1;
		}
		n_creds++;
	}
	free(line);
	fclose(f);
	if (n_creds == 0) {
		fprintf(stderr, "pamloop: %s: no requests\n", path);
		return -1;
	}
	return 0;
}

/* One login on *pamh (or on a fresh handle with -f, or line I of -l). */
static int one_login(pam_handle_t **pamh, long i)
{
	int rc;
	if (creds != NULL)
		return list_login(i);
	if (fresh) {
		pam_handle_t *h = NULL;
		rc = start(&h);
		if (rc != PAM_SUCCESS)
			return rc;
		rc = pam_authenticate(h, 0);
		pam_end(h, rc);
		return rc;
	}
	rc = pam_authenticate(*pamh, 0);
	return rc;
}

static void note_result(int rc)
{
	if (rc == PAM_SUCCESS) {
		atomic_fetch_add(&ok_logins, 1);
	} else {
		int expected = PAM_SUCCESS;
		atomic_compare_exchange_strong(&first_error, &expected, rc);
	}
	long done = atomic_fetch_add(&done_logins, 1) + 1;
	pthread_mutex_lock(&cp_lock);
	for (int i = 0; i < n_checkpoints; i++) {
		if (checkpoints[i].n == done) {
			checkpoints[i].rss_kb = rss_kb();
			checkpoints[i].maxrss_kb = maxrss_kb();
		}
	}
	pthread_mutex_unlock(&cp_lock);
}

struct worker {
	pthread_t tid;
	pam_handle_t *pamh;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (;;) {
		long i = atomic_fetch_add(&next_login, 1);
		if (i >= n_logins)
			break;
		double t0 = now_s();
		int rc = one_login(&w->pamh, i);
		lat_ms[i] = (now_s() - t0) * 1000.0;
		if (rcs != NULL)
			rcs[i] = rc;
		note_result(rc);
	}
	return NULL;
}

/* Everything measured happens in here (see the callgrind note at the top). */
__attribute__((noinline)) static void pamloop_measured(struct worker *w)
{
	if (n_threads == 1) {
		worker_main(&w[0]);
		return;
	}
	for (long t = 0; t < n_threads; t++) {
		if (pthread_create(&w[t].tid, NULL, worker_main, &w[t]) != 0) {
			fprintf(stderr, "pamloop: pthread_create: %s\n", strerror(errno));
			exit(1);
		}
	}
	for (long t = 0; t < n_threads; t++)
		pthread_join(w[t].tid, NULL);
}

static void *warm_main(void *arg)
{
	struct worker *w = arg;
	for (long i = 0; i < warmup; i++) {
		int rc = one_login(&w->pamh, i);
		if (rc != PAM_SUCCESS) {
			int expected = PAM_SUCCESS;
			atomic_compare_exchange_strong(&first_error, &expected, rc);
		}
	}
	return NULL;
}

static int usage(void)
{
	fprintf(stderr, "usage: pamloop -D CONFDIR -s SERVICE -u USER -p PASSWORD -n LOGINS "
	                "[-t THREADS] [-w WARMUP] [-f] [-c N,N,...] [-q]\n"
	                "       pamloop -D CONFDIR -s SERVICE -l LIST -n LOGINS [-t THREADS] "
	                "[-w WARMUP] [-q]\n");
	return 2;
}

static double tv(struct timeval t)
{
	return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	int opt, quiet = 0;
	const char *list = NULL;
	while ((opt = getopt(argc, argv, "D:s:u:p:n:t:w:fc:ql:")) != -1) {
		switch (opt) {
		case 'D': confdir = optarg; break;
		case 's': service = optarg; break;
		case 'u': user = optarg; break;
		case 'p': password = optarg; break;
		case 'n': n_logins = atol(optarg); break;
		case 't': n_threads = atol(optarg); break;
		case 'w': warmup = atol(optarg); break;
		case 'f': fresh = 1; break;
		case 'q': quiet = 1; break;
		case 'l': list = optarg; break;
		case 'c':
			for (char *p = optarg; *p != '\0' && n_checkpoints < MAX_CHECKPOINTS;) {
				char *end;
				long v = strtol(p, &end, 10);
				if (end == p)
					return usage();
				checkpoints[n_checkpoints++].n = v;
				p = *end == ',' ? end + 1 : end;
			}
			break;
		default: return usage();
		}
	}
	if (confdir == NULL || service == NULL ||
	    (list == NULL && (user == NULL || password == NULL)) ||
	    n_logins <= 0 || n_threads <= 0 || warmup < 0 || optind != argc)
		return usage();
	if (list != NULL) {
		if (read_list(list) != 0)
			return 1;
		fresh = 1;
		rcs = calloc((size_t)n_logins, sizeof(*rcs));
		if (rcs == NULL)
			return 1;
	}
	the_conv.appdata_ptr = (void *)(uintptr_t)password;
	lat_ms = calloc((size_t)n_logins, sizeof(*lat_ms));
	struct worker *w = calloc((size_t)n_threads, sizeof(*w));
	if (lat_ms == NULL || w == NULL)
		return 1;

	for (long t = 0; t < n_threads; t++) {
		if (!fresh) {
			int rc = start(&w[t].pamh);
			if (rc != PAM_SUCCESS) {
				fprintf(stderr, "pamloop: pam_start_confdir: %s\n", pam_strerror(NULL, rc));
				return 1;
			}
		}
	}
	if (warmup > 0) {
		if (n_threads == 1) {
			warm_main(&w[0]);
		} else {
			for (long t = 0; t < n_threads; t++)
				pthread_create(&w[t].tid, NULL, warm_main, &w[t]);
			for (long t = 0; t < n_threads; t++)
				pthread_join(w[t].tid, NULL);
		}
	}
	int warm_error = atomic_load(&first_error);

	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	double t0 = now_s();
	pamloop_measured(w);
	double wall = now_s() - t0;
	getrusage(RUSAGE_SELF, &r1);

	for (long t = 0; t < n_threads; t++)
		if (w[t].pamh != NULL)
			pam_end(w[t].pamh, PAM_SUCCESS);

	long ok = atomic_load(&ok_logins);
	int err = atomic_load(&first_error);
	if (err == PAM_SUCCESS)
		err = warm_error;
	printf("{\"logins\": %ld, \"threads\": %ld, \"fresh\": %s, \"ok\": %ld, \"failed\": %ld, "
	       "\"first_error\": \"%s\", \"wall_s\": %.6f, \"utime_s\": %.6f, \"stime_s\": %.6f, "
	       "\"maxrss_kb\": %ld, \"rss_kb\": %ld, \"checkpoints\": [",
	       n_logins, n_threads, fresh ? "true" : "false", ok, n_logins - ok,
	       err == PAM_SUCCESS ? "" : pam_strerror(NULL, err), wall,
	       tv(r1.ru_utime) - tv(r0.ru_utime), tv(r1.ru_stime) - tv(r0.ru_stime),
	       r1.ru_maxrss, rss_kb());
	for (int i = 0; i < n_checkpoints; i++)
		printf("%s{\"n\": %ld, \"maxrss_kb\": %ld, \"rss_kb\": %ld}", i ? ", " : "",
		       checkpoints[i].n, checkpoints[i].maxrss_kb, checkpoints[i].rss_kb);
	printf("], \"lat_ms\": [");
	if (!quiet)
		for (long i = 0; i < n_logins; i++)
			printf("%s%.3f", i ? ", " : "", lat_ms[i]);
	printf("]");
	if (rcs != NULL) {
		printf(", \"rc\": [");
		for (long i = 0; i < n_logins; i++)
			printf("%s%d", i ? ", " : "", rcs[i]);
		printf("]");
	}
	printf("}\n");
	for (long i = 0; i < n_creds; i++) {
		free(creds[i].user);
		if (creds[i].password != NULL)
			memset(creds[i].password, 0, strlen(creds[i].password));
		free(creds[i].password);
		free(creds[i].rhost);
	}
	free(creds);
	free(rcs);
	free(lat_ms);
	free(w);
	return ok == n_logins && err == PAM_SUCCESS ? 0 : 1;
}
