/*
 * fake.h - run tests/fake/fakeserver.py from a check test and read back what
 * the client sent it.  Header-only: static inline functions, so a test that
 * uses half of them still compiles warning-free.
 *
 *   fake_certs_setup()        once, in main(): find or make the test PKI
 *   fake_start(&fs, "good_implicit", extra_args)   fs.port is then listening
 *   ... point the library at 127.0.0.1:fs.port ...
 *   fake_finish(&fs, &res, ms) waits for the server (kills it after ms),
 *                             loads its record and transcript, removes its files
 *   fake_plain_contains(&res, "secret"), res.plain_len, res.tls_len, res.status
 *   fake_result_free(&res)
 *
 * Environment:
 *   MA_TEST_ROOT    repository root (default: two levels above the test binary)
 *   MA_TEST_CERTS   certificate directory made by tests/lib/certs.sh; when unset,
 *                   fake_certs_setup() runs certs.sh into ROOT/tests/tmp/certs
 *                   (idempotent, removed by `make clean`) and exports it
 *   MA_TEST_PYTHON  interpreter (default /usr/bin/python3, else python3 in PATH)
 *   MA_FAKE_VERBOSE when set, fake_dump() output is printed for every case
 *
 * The server child gets PR_SET_PDEATHSIG(SIGKILL), so a test that dies on a
 * failed assertion never leaves it behind; the server also has its own idle
 * and hard timeouts.
 */
#ifndef MA_FAKE_H
#define MA_FAKE_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FAKE_MAX_ARGS 40
#define FAKE_START_TIMEOUT_MS 10000

struct fake_server {
	pid_t pid;
	unsigned port;
	char dir[PATH_MAX - 64];     /* private scratch directory */
	char record[PATH_MAX];       /* dir/record.json */
	char transcript[PATH_MAX];   /* dir/transcript.txt */
};

/* What one server run saw.  Owned by the caller: fake_result_free(). */
struct fake_result {
	int status;          /* server exit status (see fakeserver.py); -1 killed */
	char *plain;         /* every byte received before TLS, in order */
	size_t plain_len;
	char *tls;           /* every application byte received over TLS */
	size_t tls_len;
	size_t n_chunks;
	char *transcript;    /* readable transcript, NUL-terminated ("" if none) */
};

/* --- paths --------------------------------------------------------------------- */

/* Repository root: $MA_TEST_ROOT, else the test binary's ../.. (tests/unit/x). */
static inline int fake_root(char *buf, size_t len)
{
	const char *env = getenv("MA_TEST_ROOT");
	if (env != NULL && *env != '\0') {
		int n = snprintf(buf, len, "%s", env);
		return (n < 0 || (size_t)n >= len) ? -1 : 0;
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	for (int up = 0; up < 3; up++) {          /* strip file, unit, tests */
		char *slash = strrchr(exe, '/');
		if (slash == NULL)
			return -1;
		*slash = '\0';
	}
	int m = snprintf(buf, len, "%s", exe[0] != '\0' ? exe : "/");
	return (m < 0 || (size_t)m >= len) ? -1 : 0;
}

static inline const char *fake_python(void)
{
	const char *env = getenv("MA_TEST_PYTHON");
	if (env != NULL && *env != '\0')
		return env;
	if (access("/usr/bin/python3", X_OK) == 0)
		return "/usr/bin/python3";
	return "python3";
}

/* Run ARGV (argv[0] a path or a name looked up in PATH), wait; 0 on exit 0. */
static inline int fake_run(char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return (WIFEXITED(st) && WEXITSTATUS(st) == 0) ? 0 : -1;
}

/*
 * Make sure MA_TEST_CERTS names a certificate directory; call once from main()
 * before the suite forks its tests.  Returns the directory or NULL (with a
 * message on stderr).
 */
static inline const char *fake_certs_setup(void)
{
	const char *env = getenv("MA_TEST_CERTS");
	if (env != NULL && *env != '\0')
		return env;
	char root[PATH_MAX], script[PATH_MAX], tmp[PATH_MAX], dir[PATH_MAX];
	if (fake_root(root, sizeof(root)) != 0)
		return NULL;
	int a = snprintf(script, sizeof(script), "%s/tests/lib/certs.sh", root);
	int b = snprintf(tmp, sizeof(tmp), "%s/tests/tmp", root);
	int c = snprintf(dir, sizeof(dir), "%s/tests/tmp/certs", root);
	if (a < 0 || b < 0 || c < 0 || (size_t)a >= sizeof(script) ||
	    (size_t)b >= sizeof(tmp) || (size_t)c >= sizeof(dir))
		return NULL;
	if (access(script, R_OK) != 0) {
		fprintf(stderr, "fake: MA_TEST_CERTS unset and %s missing\n", script);
		return NULL;
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		return NULL;
	char bash[] = "bash";
	char *argv[] = { bash, script, dir, NULL };
	if (fake_run(argv) != 0) {
		fprintf(stderr, "fake: %s %s failed\n", script, dir);
		return NULL;
	}
	if (setenv("MA_TEST_CERTS", dir, 1) != 0)
		return NULL;
	return getenv("MA_TEST_CERTS");
}

/* --- start / stop --------------------------------------------------------------- */

static inline long fake_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/*
 * Run tests/fake/SCRIPT with LEAD arguments first (a sub-command, the
 * scenario...; NULL-terminated, may be NULL), then --certs, --record and
 * --transcript, then EXTRA (NULL-terminated, may be NULL).  On success
 * returns 0 and fs->port is listening; the server serves one connection.
 * Every fake server (fakeserver.py, fake_smtp.py, fake_more.py) goes
 * through here.
 */
static inline int fake_spawn(struct fake_server *fs, const char *script_name,
                             const char *const *lead, const char *const *extra)
{
	char root[PATH_MAX], script[PATH_MAX];
	const char *certs = getenv("MA_TEST_CERTS");
	int pfd[2] = { -1, -1 };

	memset(fs, 0, sizeof(*fs));
	fs->pid = -1;
	if (certs == NULL || fake_root(root, sizeof(root)) != 0)
		return -1;
	int n = snprintf(script, sizeof(script), "%s/tests/fake/%s", root, script_name);
	if (n < 0 || (size_t)n >= sizeof(script))
		return -1;
	const char *tmpdir = getenv("TMPDIR");
	n = snprintf(fs->dir, sizeof(fs->dir), "%s/ma-fake.XXXXXX",
	             tmpdir != NULL && *tmpdir != '\0' ? tmpdir : "/tmp");
	if (n < 0 || (size_t)n >= sizeof(fs->dir) || mkdtemp(fs->dir) == NULL)
		return -1;
	snprintf(fs->record, sizeof(fs->record), "%s/record.json", fs->dir);
	snprintf(fs->transcript, sizeof(fs->transcript), "%s/transcript.txt", fs->dir);

	const char *argv[FAKE_MAX_ARGS];
	size_t ac = 0;
	argv[ac++] = fake_python();
	argv[ac++] = script;
	for (size_t i = 0; lead != NULL && lead[i] != NULL; i++) {
		if (ac + 8 >= FAKE_MAX_ARGS)
			goto fail;
		argv[ac++] = lead[i];
	}
	argv[ac++] = "--certs";
	argv[ac++] = certs;
	argv[ac++] = "--record";
	argv[ac++] = fs->record;
	argv[ac++] = "--transcript";
	argv[ac++] = fs->transcript;
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		if (ac + 1 >= FAKE_MAX_ARGS)
			goto fail;
		argv[ac++] = extra[i];
	}
	argv[ac] = NULL;

	if (pipe2(pfd, O_CLOEXEC) != 0)
		goto fail;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		goto fail;
	}
	if (pid == 0) {
		/* Die with the test, even when it dies on a failed assertion. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(126);
		if (dup2(pfd[1], STDOUT_FILENO) < 0)
			_exit(126);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	fs->pid = pid;

	/* The first line on its stdout is the port. */
	char line[32] = "";
	size_t got = 0;
	long end = fake_now_ms() + FAKE_START_TIMEOUT_MS;
	while (got < sizeof(line) - 1 && memchr(line, '\n', got) == NULL) {
		long left = end - fake_now_ms();
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		ssize_t r = read(pfd[0], line + got, sizeof(line) - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(pfd[0]);
	line[got] = '\0';
	char *endp = NULL;
	unsigned long port = strtoul(line, &endp, 10);
	if (endp == line || *endp != '\n' || port == 0 || port > 65535) {
		fprintf(stderr, "fake: %s did not print a port (got \"%s\")\n", script_name, line);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fs->pid = -1;
		goto fail;
	}
	fs->port = (unsigned)port;
	return 0;
fail:
	unlink(fs->record);
	unlink(fs->transcript);
	rmdir(fs->dir);
	return -1;
}

/*
 * Start fakeserver.py's SCENARIO with EXTRA arguments (NULL-terminated, may
 * be NULL), e.g. { "--tls", "starttls", "--cert", "expired", NULL }.
 */
static inline int fake_start(struct fake_server *fs, const char *scenario,
                             const char *const *extra)
{
	const char *lead[] = { "--scenario", scenario, NULL };
	return fake_spawn(fs, "fakeserver.py", lead, extra);
}

/* Wait up to TIMEOUT_MS for the server to exit, then kill it.  Exit status,
 * or -1 when it was killed or died of a signal. */
static inline int fake_stop(struct fake_server *fs, int timeout_ms)
{
	if (fs->pid <= 0)
		return -1;
	long end = fake_now_ms() + timeout_ms;
	int st = 0;
	for (;;) {
		pid_t r = waitpid(fs->pid, &st, WNOHANG);
		if (r == fs->pid)
			break;
		if (r < 0 && errno != EINTR) {
			fs->pid = -1;
			return -1;
		}
		if (fake_now_ms() >= end) {
			fprintf(stderr, "fake: server %ld still running after %d ms, killing it\n",
			        (long)fs->pid, timeout_ms);
			kill(fs->pid, SIGKILL);
			waitpid(fs->pid, &st, 0);
			fs->pid = -1;
			return -1;
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	fs->pid = -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* --- the record ----------------------------------------------------------------- */

/* Whole file into a NUL-terminated malloc'd buffer; NULL when missing. */
static inline char *fake_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rbe");
	if (f == NULL)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf != NULL) {
		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - 1 - n, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	if (buf != NULL) {
		buf[n] = '\0';
		if (len != NULL)
			*len = n;
	}
	return buf;
}

static inline int fake_append(char **buf, size_t *len, size_t *cap, unsigned char c)
{
	if (*len + 1 >= *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		char *nb = realloc(*buf, nc);
		if (nb == NULL)
			return -1;
		*buf = nb;
		*cap = nc;
	}
	(*buf)[(*len)++] = (char)c;
	(*buf)[*len] = '\0';
	return 0;
}

static inline const char *fake_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static inline int fake_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Parse a JSON string at P (just after the opening quote) as latin-1 bytes,
 * appending to BUF (when BUF != NULL).  Returns the position after the closing
 * quote, or NULL on a syntax error or a code point above U+00FF.
 */
static inline const char *fake_json_string(const char *p, char **buf, size_t *len,
                                           size_t *cap)
{
	for (;;) {
		unsigned char c = (unsigned char)*p++;
		unsigned v;
		if (c == '\0' || c < 0x20)
			return NULL;
		if (c == '"')
			return p;
		if (c == '\\') {
			char e = *p++;
			switch (e) {
			case '"': v = '"'; break;
			case '\\': v = '\\'; break;
			case '/': v = '/'; break;
			case 'b': v = '\b'; break;
			case 'f': v = '\f'; break;
			case 'n': v = '\n'; break;
			case 'r': v = '\r'; break;
			case 't': v = '\t'; break;
			case 'u':
				v = 0;
				for (int i = 0; i < 4; i++) {
					int h = fake_hex(p[i]);
					if (h < 0)
						return NULL;
					v = v * 16u + (unsigned)h;
				}
				p += 4;
				if (v > 0xff)
					return NULL;
				break;
			default:
				return NULL;
			}
		} else {
			v = c;
		}
		if (buf != NULL && fake_append(buf, len, cap, (unsigned char)v) != 0)
			return NULL;
	}
}

/* Parse [{"tls": bool, "data": "..."}, ...] into R->plain / R->tls. */
static inline int fake_parse_record(const char *text, struct fake_result *r)
{
	size_t pcap = 0, tcap = 0;
	const char *p = fake_ws(text);
	if (*p++ != '[')
		return -1;
	p = fake_ws(p);
	if (*p == ']')
		return 0;
	for (;;) {
		int tls = -1;
		char *data = NULL;
		size_t dlen = 0, dcap = 0;
		p = fake_ws(p);
		if (*p++ != '{')
			return -1;
		for (;;) {
			p = fake_ws(p);
			if (*p++ != '"')
				goto bad;
			const char *key = p;
			p = fake_json_string(p, NULL, NULL, NULL);
			if (p == NULL)
				goto bad;
			size_t klen = (size_t)(p - key) - 1;
			p = fake_ws(p);
			if (*p++ != ':')
				goto bad;
			p = fake_ws(p);
			if (klen == 3 && memcmp(key, "tls", 3) == 0) {
				if (strncmp(p, "true", 4) == 0) {
					tls = 1;
					p += 4;
				} else if (strncmp(p, "false", 5) == 0) {
					tls = 0;
					p += 5;
				} else {
					goto bad;
				}
			} else if (klen == 4 && memcmp(key, "data", 4) == 0) {
				if (*p++ != '"')
					goto bad;
				free(data);
				data = NULL;
				dlen = dcap = 0;
				p = fake_json_string(p, &data, &dlen, &dcap);
				if (p == NULL)
					goto bad;
			} else {
				goto bad;
			}
			p = fake_ws(p);
			if (*p == ',') {
				p++;
				continue;
			}
			if (*p++ == '}')
				break;
			goto bad;
		}
		if (tls < 0)
			goto bad;
		for (size_t i = 0; i < dlen; i++) {
			int rc = tls ? fake_append(&r->tls, &r->tls_len, &tcap, (unsigned char)data[i])
			             : fake_append(&r->plain, &r->plain_len, &pcap,
			                           (unsigned char)data[i]);
			if (rc != 0)
				goto bad;
		}
		free(data);
		r->n_chunks++;
		p = fake_ws(p);
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == ']')
			return 0;
		return -1;
bad:
		free(data);
		return -1;
	}
}

static inline void fake_result_free(struct fake_result *r)
{
	free(r->plain);
	free(r->tls);
	free(r->transcript);
	memset(r, 0, sizeof(*r));
}

/*
 * Stop the server (kill after TIMEOUT_MS), load what it recorded into R,
 * remove its files.  Returns 0, or -1 when the record is missing or malformed
 * (R is still filled as far as possible and must be freed).
 */
static inline int fake_finish(struct fake_server *fs, struct fake_result *r, int timeout_ms)
{
	int rc = 0;
	memset(r, 0, sizeof(*r));
	r->status = fake_stop(fs, timeout_ms);
	char *rec = fake_slurp(fs->record, NULL);
	if (rec == NULL || fake_parse_record(rec, r) != 0)
		rc = -1;
	free(rec);
	r->transcript = fake_slurp(fs->transcript, NULL);
	if (r->transcript == NULL)
		r->transcript = strdup("");
	if (getenv("MA_FAKE_KEEP") == NULL) {
		unlink(fs->record);
		unlink(fs->transcript);
		rmdir(fs->dir);
	}
	return rc;
}

/* --- questions ------------------------------------------------------------------- */

static inline bool fake_mem_contains(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	if (hay == NULL || n == 0 || n > len)
		return false;
	return memmem(hay, len, needle, n) != NULL;
}

/* Did any byte arrive before TLS? */
static inline bool fake_any_plain(const struct fake_result *r)
{
	return r->plain_len > 0;
}

/* Does what arrived before TLS contain NEEDLE? */
static inline bool fake_plain_contains(const struct fake_result *r, const char *needle)
{
	return fake_mem_contains(r->plain, r->plain_len, needle);
}

/* Does anything the server received (plain or TLS) contain NEEDLE? */
static inline bool fake_any_contains(const struct fake_result *r, const char *needle)
{
	return fake_mem_contains(r->plain, r->plain_len, needle) ||
	       fake_mem_contains(r->tls, r->tls_len, needle);
}

/* Transcript to stderr, for a failing case. */
static inline void fake_dump(const char *what, const struct fake_result *r)
{
	fprintf(stderr, "---- fake server transcript (%s), exit status %d ----\n%s----\n",
	        what, r->status, r->transcript != NULL ? r->transcript : "");
}

#endif
