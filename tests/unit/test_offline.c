/*
 * test_offline.c - lib/offline.c, the broker's offline verifiers: store,
 * verify, forget and their TTL; the file (format, mode 0600, no password,
 * persistence across a restart); every way a file or its directory must
 * not be trusted (tampered contents, foreign owner, group or other
 * permissions, a symlink, an unsafe state_dir), each ignored as a whole
 * with a log line; the MA_OFFLINE_MAX bound; the memo that spares scrypt;
 * at most MA_OFFLINE_PARALLEL computations at once; scrypt itself against
 * RFC 7914 and an independent implementation.
 *
 * Every test works in a fresh state directory (mode 0700) under
 * $MA_TEST_TMP (else /tmp).  scrypt with N = 2^14 costs about 110 ms, so
 * the tests count their computations.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <malloc.h>

#include <openssl/evp.h>
#include <openssl/kdf.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "offline.h"
#include "unit.h"

#define T0 ((time_t)1700000000)
#define TTL 3600u
#define HEADER "mailauth-offline 1\n"
#define NOBODY 65534

static char dir[512];           /* the state directory of the test */
static char path[600];          /* dir/offline */
static char logbuf[16384];
static struct ma_offline *o;

static void emit(void *arg, int priority, const char *line)
{
	(void)arg;
	size_t n = strlen(logbuf);
	snprintf(logbuf + n, sizeof(logbuf) - n, "%d: %s\n", priority, line);
}

static const struct ma_log logger = { emit, NULL, false };

static void remove_tree(const char *d)
{
	DIR *dp = opendir(d);
	if (dp == NULL)
		return;
	struct dirent *de;
	char p[1024];
	while ((de = readdir(dp)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", d, de->d_name);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			remove_tree(p);
		} else {
			unlink(p);
		}
	}
	closedir(dp);
	rmdir(d);
}

static void setup(void)
{
	const char *base = getenv("MA_TEST_TMP");
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	(void)mkdir(base, 0700);
	snprintf(dir, sizeof(dir), "%s/offline-XXXXXX", base);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/offline", dir);
	logbuf[0] = '\0';
	o = NULL;
}

static void teardown(void)
{
	ma_offline_free(&o);
	remove_tree(dir);
}

static struct ma_offline *open_store(void)
{
	struct ma_offline *s = NULL;
	ck_assert_int_eq(ma_offline_open(dir, &logger, &s), MA_OK);
	ck_assert_ptr_nonnull(s);
	return s;
}

static void reopen(void)
{
	ma_offline_free(&o);
	ck_assert_ptr_null(o);
	o = open_store();
}

static bool logged(const char *what)
{
	return strstr(logbuf, what) != NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_all(const char *p, size_t *len)
{
	FILE *f = fopen(p, "rb");
	ck_assert_msg(f != NULL, "%s: %s", p, strerror(errno));
	char *buf = malloc(16u << 20);
	ck_assert_ptr_nonnull(buf);
	*len = fread(buf, 1, (16u << 20) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* Write TEXT (LEN bytes) to dir/NAME with exactly MODE, whatever the umask. */
static void write_file(const char *name, const char *text, size_t len, mode_t mode)
{
	char p[700];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	unlink(p);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

/* ---- the file format, written here independently of lib/offline.c ---- */

static void to_hex(const char *s, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (; *s != '\0'; s++) {
		*out++ = digits[(unsigned char)*s >> 4];
		*out++ = digits[(unsigned char)*s & 15];
	}
	*out = '\0';
}

static void to_b64(const unsigned char *in, int len, char *out)
{
	ck_assert_int_gt(EVP_EncodeBlock((unsigned char *)out, in, len), 0);
}

/* A fixed salt and a hash that matches no password. */
static const unsigned char salt0[16] = "0123456789abcdef";
static const unsigned char nohash[32] = "no password hashes to this ....";

/* One entry line (with its '\n') into OUT: "<user hex> <stored> <log2 N> <r> <p>
 * <salt> <hash>". */
static void entry(char *out, size_t cap, const char *user, long long stored, unsigned log2n,
                  unsigned r, unsigned p, const unsigned char salt[16],
                  const unsigned char hash[32])
{
	char uhex[600], s64[32], h64[64];
	to_hex(user, uhex);
	to_b64(salt, 16, s64);
	to_b64(hash, 32, h64);
	int n = snprintf(out, cap, "%s %lld %u %u %u %s %s\n", uhex, stored, log2n, r, p, s64, h64);
	ck_assert(n > 0 && (size_t)n < cap);
}

/* An independent verifier: OpenSSL's one-shot EVP_PBE_scrypt (not the
 * EVP_KDF that lib/offline.c uses). */
static void reference_scrypt(const char *pw, const unsigned char *salt, size_t saltlen,
                             uint64_t n, uint64_t r, uint64_t p, unsigned char *out,
                             size_t outlen)
{
	uint64_t maxmem = 128 * r * (n + 2) * p + (1u << 20);
	ck_assert_int_eq(EVP_PBE_scrypt(pw, strlen(pw), salt, saltlen, n, r, p, maxmem, out, outlen),
	                 1);
}

/* ---- store, verify, forget ---- */

START_TEST(store_then_verify)
{
	o = open_store();
	ck_assert_uint_eq(ma_offline_count(o), 0);
	ck_assert_int_eq(ma_offline_store(o, "alice", "correct horse", T0), MA_OK);
	ck_assert_uint_eq(ma_offline_count(o), 1);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "correct horse", TTL, T0 + 10), MA_OK);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "correct horsE", TTL, T0 + 10),
	                 MA_AUTH_FAILED);
	/* Unknown users: no verifier, and not a prefix match either. */
	ck_assert_int_eq(ma_offline_verify(o, "bob", "correct horse", TTL, T0 + 10),
	                 MA_USER_UNKNOWN);
	ck_assert_int_eq(ma_offline_verify(o, "alic", "correct horse", TTL, T0 + 10),
	                 MA_USER_UNKNOWN);
	ck_assert_int_eq(ma_offline_verify(o, "alice2", "correct horse", TTL, T0 + 10),
	                 MA_USER_UNKNOWN);
	/* The TTL: stored at T0, usable through T0 + TTL, not one second more. */
	ck_assert_int_eq(ma_offline_verify(o, "alice", "correct horse", TTL, T0 + TTL), MA_OK);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "correct horse", TTL, T0 + TTL + 1),
	                 MA_USER_UNKNOWN);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "wrong", TTL, T0 + TTL + 1),
	                 MA_USER_UNKNOWN);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "correct horse", 60, T0 + 61),
	                 MA_USER_UNKNOWN);
	/* A verifier dated in the future (the clock went back) is not used. */
	ck_assert_int_eq(ma_offline_verify(o, "alice", "correct horse", TTL, T0 - 1),
	                 MA_USER_UNKNOWN);
	/* A second user beside the first. */
	ck_assert_int_eq(ma_offline_store(o, "bob", "correct horse", T0 + 5), MA_OK);
	ck_assert_uint_eq(ma_offline_count(o), 2);
	ck_assert_int_eq(ma_offline_verify(o, "bob", "correct horse", TTL, T0 + TTL + 1), MA_OK);
}
END_TEST

START_TEST(store_refuses_unstorable_user)
{
	char user[300];
	o = open_store();
	memset(user, 'u', 256);
	user[256] = '\0';
	ck_assert_int_eq(ma_offline_store(o, user, "pw", T0), MA_BAD_INPUT);
	ck_assert_uint_eq(ma_offline_count(o), 0);
	ck_assert_int_ne(access(path, F_OK), 0);
	/* An empty name neither: its line would make the file unreadable. */
	ck_assert_int_eq(ma_offline_store(o, "", "pw", T0), MA_BAD_INPUT);
	ck_assert_uint_eq(ma_offline_count(o), 0);
	ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

START_TEST(forget)
{
	o = open_store();
	ck_assert_int_eq(ma_offline_store(o, "alice", "pw-a", T0), MA_OK);
	ck_assert_int_eq(ma_offline_store(o, "bob", "pw-b", T0), MA_OK);
	ck_assert_int_eq(ma_offline_store(o, "carol", "pw-c", T0), MA_OK);
	ma_offline_forget(o, "alice");
	ck_assert_uint_eq(ma_offline_count(o), 2);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "pw-a", TTL, T0 + 1), MA_USER_UNKNOWN);
	ck_assert_int_eq(ma_offline_verify(o, "carol", "pw-c", TTL, T0 + 1), MA_OK);
	ma_offline_forget(o, "nobody-here");
	ck_assert_uint_eq(ma_offline_count(o), 2);
	ma_offline_forget(o, "carol");           /* the last entry */
	ck_assert_uint_eq(ma_offline_count(o), 1);
	/* Forgotten in the file at once, not only in memory. */
	size_t len;
	char uhex[64];
	char *text = read_all(path, &len);
	to_hex("alice", uhex);
	ck_assert_ptr_null(strstr(text, uhex));
	to_hex("carol", uhex);
	ck_assert_ptr_null(strstr(text, uhex));
	to_hex("bob", uhex);
	ck_assert_ptr_nonnull(strstr(text, uhex));
	free(text);
	reopen();
	ck_assert_uint_eq(ma_offline_count(o), 1);
	ck_assert_int_eq(ma_offline_verify(o, "bob", "pw-b", TTL, T0 + 1), MA_OK);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "pw-a", TTL, T0 + 1), MA_USER_UNKNOWN);
	ma_offline_forget(o, "bob");
	ck_assert_uint_eq(ma_offline_count(o), 0);
	reopen();
	ck_assert_uint_eq(ma_offline_count(o), 0);
	ck_assert_msg(!logged("ignored"), "an empty store was refused: %s", logbuf);
}
END_TEST

/* A restart: a new process has a new memo key, so only the file can say. */
START_TEST(persistence)
{
	char user[256];
	memset(user, 'z', 255);
	user[255] = '\0';
	o = open_store();
	ck_assert_int_eq(ma_offline_store(o, "alice", "pw \"with\" spaces\\", T0), MA_OK);
	ck_assert_int_eq(ma_offline_store(o, user, "caf\xc3\xa9", T0 + 1), MA_OK);
	/* Names with the format's separators in them (hex in the file). */
	ck_assert_int_eq(ma_offline_store(o, "a b\tc\nd\r", "sep", T0 + 2), MA_OK);
	reopen();
	ck_assert_uint_eq(ma_offline_count(o), 3);
	ck_assert_msg(logged("3 verifiers loaded"), "log: %s", logbuf);
	ck_assert_int_eq(ma_offline_verify(o, "a b\tc\nd\r", "sep", TTL, T0 + 100), MA_OK);
	ck_assert_int_eq(ma_offline_verify(o, "a b", "sep", TTL, T0 + 100), MA_USER_UNKNOWN);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "pw \"with\" spaces\\", TTL, T0 + 100),
	                 MA_OK);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "pw", TTL, T0 + 100), MA_AUTH_FAILED);
	ck_assert_int_eq(ma_offline_verify(o, user, "caf\xc3\xa9", TTL, T0 + 100), MA_OK);
	/* The dates came back too. */
	ck_assert_int_eq(ma_offline_verify(o, "alice", "x", TTL, T0 + TTL + 1), MA_USER_UNKNOWN);
	/* Nothing left behind but the file. */
	DIR *dp = opendir(dir);
	struct dirent *de;
	int files = 0;
	while ((de = readdir(dp)) != NULL)
		if (de->d_name[0] != '.' || strncmp(de->d_name, ".offline", 8) == 0)
			files++;
	closedir(dp);
	ck_assert_int_eq(files, 1);
}
END_TEST

/* ma_offline_free writes what changed since the last write. */
START_TEST(free_writes_pending_changes)
{
	o = open_store();
	ck_assert_int_eq(ma_offline_store(o, "alice", "pw", T0), MA_OK);
	/* The same password 30 s later: only the date moves, and it is not
	 * written at once (at most one write a minute for a refresh)... */
	ck_assert_int_eq(ma_offline_store(o, "alice", "pw", T0 + 30), MA_OK);
	/* ...but when the store is closed. */
	reopen();
	ck_assert_int_eq(ma_offline_verify(o, "alice", "pw", 600, T0 + 630), MA_OK);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "pw", 600, T0 + 631), MA_USER_UNKNOWN);
}
END_TEST

/* ---- the file ---- */

START_TEST(file_mode_owner_and_contents)
{
	static const char pw1[] = "Sup3r-Secret-Passw0rd";
	static const char pw2[] = "another one, longer than the first";
	mode_t old = umask(0);                    /* 0600 must not come from the umask */
	o = open_store();
	ck_assert_int_eq(ma_offline_store(o, "alice", pw1, T0), MA_OK);
	ck_assert_int_eq(ma_offline_store(o, "bob@example.org", pw2, T0 + 7), MA_OK);
	umask(old);

	struct stat st;
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_uint_eq(st.st_uid, geteuid());
	ck_assert_uint_eq(st.st_nlink, 1);

	size_t len;
	char *text = read_all(path, &len);
	/* No password in any form: raw, hex, base64. */
	char form[128];
	ck_assert_ptr_null(memmem(text, len, pw1, strlen(pw1)));
	ck_assert_ptr_null(memmem(text, len, pw2, strlen(pw2)));
	ck_assert_ptr_null(memmem(text, len, "Secret", 6));
	to_hex(pw1, form);
	ck_assert_ptr_null(memmem(text, len, form, strlen(form)));
	to_b64((const unsigned char *)pw1, (int)strlen(pw1), form);
	ck_assert_ptr_null(memmem(text, len, form, 16));

	/* The documented format, line by line. */
	ck_assert_msg(strncmp(text, HEADER, strlen(HEADER)) == 0, "header: %.40s", text);
	ck_assert_int_eq(text[len - 1], '\n');
	char *save = NULL, *line = strtok_r(text + strlen(HEADER), "\n", &save);
	int lines = 0;
	for (; line != NULL; line = strtok_r(NULL, "\n", &save), lines++) {
		char u[600], s64[64], h64[64];
		long long stored;
		unsigned n, r, p;
		int end = 0;
		ck_assert_int_eq(sscanf(line, "%599s %lld %u %u %u %63s %63s%n", u, &stored, &n, &r, &p,
		                        s64, h64, &end), 7);
		ck_assert_uint_eq((size_t)end, strlen(line));
		ck_assert_uint_eq(n, MA_OFFLINE_LOG2_N);
		ck_assert_uint_eq(r, MA_OFFLINE_R);
		ck_assert_uint_eq(p, MA_OFFLINE_P);
		ck_assert_uint_eq(strlen(s64), 24);          /* 16 bytes */
		ck_assert_uint_eq(strlen(h64), 44);          /* 32 bytes */
		char want[64];
		to_hex(lines == 0 ? "alice" : "bob@example.org", want);
		ck_assert_str_eq(u, want);
		ck_assert_int_eq(stored, lines == 0 ? T0 : T0 + 7);
	}
	ck_assert_int_eq(lines, 2);
	free(text);
}
END_TEST

/* Two users with the same password: different salts, different hashes. */
START_TEST(salt_per_entry)
{
	o = open_store();
	ck_assert_int_eq(ma_offline_store(o, "alice", "same", T0), MA_OK);
	ck_assert_int_eq(ma_offline_store(o, "bob", "same", T0), MA_OK);
	size_t len;
	char *text = read_all(path, &len);
	char s1[64], s2[64], h1[64], h2[64];
	char *l2 = strchr(strchr(text, '\n') + 1, '\n') + 1;
	ck_assert_int_eq(sscanf(strchr(text, '\n') + 1, "%*s %*s %*s %*s %*s %63s %63s", s1, h1), 2);
	ck_assert_int_eq(sscanf(l2, "%*s %*s %*s %*s %*s %63s %63s", s2, h2), 2);
	ck_assert_str_ne(s1, s2);
	ck_assert_str_ne(h1, h2);
	free(text);
}
END_TEST

/* A file written here by hand, with verifiers computed by the reference:
 * the format is the documented one, and each entry's own parameters are
 * used (2^15 is stronger than ours, so it is accepted). */
START_TEST(hand_written_file)
{
	unsigned char h14[32], h15[32], salt1[16];
	char text[2048];
	memcpy(salt1, "fedcba9876543210", 16);
	reference_scrypt("pw-alice", salt0, 16, 1u << 14, 8, 1, h14, sizeof(h14));
	reference_scrypt("pw-bob", salt1, 16, 1u << 15, 8, 1, h15, sizeof(h15));
	size_t n = (size_t)snprintf(text, sizeof(text), HEADER);
	entry(text + n, sizeof(text) - n, "alice", T0, 14, 8, 1, salt0, h14);
	n = strlen(text);
	entry(text + n, sizeof(text) - n, "bob", T0 + 1, 15, 8, 1, salt1, h15);
	write_file("offline", text, strlen(text), 0600);
	o = open_store();
	ck_assert_uint_eq(ma_offline_count(o), 2);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "pw-alice", TTL, T0 + 1), MA_OK);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "pw-bob", TTL, T0 + 1), MA_AUTH_FAILED);
	ck_assert_int_eq(ma_offline_verify(o, "bob", "pw-bob", TTL, T0 + 1), MA_OK);
	/* A rewrite keeps bob's own parameters. */
	ma_offline_forget(o, "alice");
	size_t len;
	char *back = read_all(path, &len);
	char want[200];
	entry(want, sizeof(want), "bob", T0 + 1, 15, 8, 1, salt1, h15);
	ck_assert(strncmp(back, HEADER, strlen(HEADER)) == 0);
	ck_assert_msg(strcmp(back + strlen(HEADER), want) == 0, "rewritten as: %s", back);
	free(back);
}
END_TEST

/* ---- files that must not be trusted ---- */

struct tamper {
	const char *name;
	const char *line;               /* alice's line; NULL: hers with an 8th field */
	const char *log;                /* expected in the log; NULL: must load */
};

/* Good lines for alice and bob (alice's hash matches nothing). */
static char good_alice[200], good_bob[200];

static void make_good_lines(void)
{
	entry(good_alice, sizeof(good_alice), "alice", T0, 14, 8, 1, salt0, nohash);
	entry(good_bob, sizeof(good_bob), "bob", T0, 14, 8, 1, salt0, nohash);
}

/* alice's line with field I (0-based) replaced by VALUE. */
static const char *alice_with(int i, const char *value)
{
	static char out[40][300];
	static size_t next;
	char copy[200], *f[8], *save = NULL;
	int n = 0;
	snprintf(copy, sizeof(copy), "%s", good_alice);
	copy[strcspn(copy, "\n")] = '\0';
	for (char *t = strtok_r(copy, " ", &save); t != NULL && n < 8; t = strtok_r(NULL, " ", &save))
		f[n++] = t;
	ck_assert_int_eq(n, 7);
	f[i] = (char *)(uintptr_t)value;
	ck_assert_uint_lt(next, sizeof(out) / sizeof(out[0]));   /* each case its own line */
	char *o_ = out[next++];
	snprintf(o_, 300, "%s %s %s %s %s %s %s\n", f[0], f[1], f[2], f[3], f[4], f[5], f[6]);
	return o_;
}

/* Expect the file TEXT to be ignored as a whole: nothing loaded (bob's
 * good line neither), a log line, and verify says "unknown" (no scrypt). */
static void expect_ignored(const char *what, const char *text, size_t len, const char *log)
{
	logbuf[0] = '\0';
	write_file("offline", text, len, 0600);
	o = open_store();
	ck_assert_msg(ma_offline_count(o) == 0, "%s: %zu entries loaded", what,
	              ma_offline_count(o));
	ck_assert_msg(logged(log), "%s: expected '%s' in the log: %s", what, log, logbuf);
	ck_assert_msg(strstr(logbuf, "3: ") != NULL, "%s: not logged as an error: %s", what, logbuf);
	ck_assert_int_eq(ma_offline_verify(o, "bob", "x", TTL, T0 + 1), MA_USER_UNKNOWN);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "x", TTL, T0 + 1), MA_USER_UNKNOWN);
	ma_offline_free(&o);
}

static void expect_loaded(const char *what, const char *text, size_t n)
{
	logbuf[0] = '\0';
	write_file("offline", text, strlen(text), 0600);
	o = open_store();
	ck_assert_msg(ma_offline_count(o) == n, "%s: %zu entries loaded, %zu expected (%s)", what,
	              ma_offline_count(o), n, logbuf);
	ma_offline_free(&o);
}

START_TEST(tampered_lines)
{
	make_good_lines();
	char zero_b64[64], b64_12[64], b64_31[64], b64_33[64], longuser[300], longhex[600];
	unsigned char zeros[33] = { 0 };
	to_b64(zeros, 12, b64_12);
	to_b64(zeros, 31, b64_31);
	to_b64(zeros, 33, b64_33);
	to_b64(zeros, 16, zero_b64);
	memset(longuser, 'u', 256);
	longuser[256] = '\0';
	to_hex(longuser, longhex);
	char salt_bits[64];
	memcpy(salt_bits, zero_b64, sizeof(salt_bits));
	salt_bits[21] = 'B';                   /* "AAB=="-style: bits under the padding */
	ck_assert_int_eq(salt_bits[22], '=');

	const struct tamper cases[] = {
		{ "control: good lines", good_alice, NULL },
		{ "6 fields", "616c696365 1700000000 14 8 1 MDEyMzQ1Njc4OWFiY2RlZg==\n",
		  "malformed line" },
		{ "8 fields", NULL, "malformed line" },
		{ "garbage", "hello world\n", "malformed line" },
		{ "user odd hex", alice_with(0, "616c69636"), "malformed line" },
		{ "user upper-case hex", alice_with(0, "616C696365"), "malformed line" },
		{ "user not hex", alice_with(0, "zz6c696365"), "malformed line" },
		{ "user with NUL", alice_with(0, "00616c6963"), "malformed line" },
		{ "user of 256 bytes", alice_with(0, longhex), "malformed line" },
		{ "stored 0", alice_with(1, "0"), "malformed line" },
		{ "stored negative", alice_with(1, "-5"), "malformed line" },
		{ "stored not a number", alice_with(1, "17000000x0"), "malformed line" },
		{ "stored overflows", alice_with(1, "99999999999999999999999"),
		  "malformed line" },
		{ "N weaker", alice_with(2, "13"), "malformed line" },
		{ "N far weaker", alice_with(2, "1"), "malformed line" },
		{ "N absurd", alice_with(2, "21"), "malformed line" },
		{ "N negative", alice_with(2, "-14"), "malformed line" },
		{ "N not a number", alice_with(2, "14x"), "malformed line" },
		{ "r weaker", alice_with(3, "7"), "malformed line" },
		{ "r absurd", alice_with(3, "33"), "malformed line" },
		{ "p zero", alice_with(4, "0"), "malformed line" },
		{ "p absurd", alice_with(4, "5"), "malformed line" },
		{ "salt not base64", alice_with(5, "!!!!MDEyMzQ1Njc4OWFiY2Rl"),
		  "malformed line" },
		{ "salt of 12 bytes", alice_with(5, b64_12), "malformed line" },
		{ "salt not canonical", alice_with(5, salt_bits), "malformed line" },
		{ "hash of 31 bytes", alice_with(6, b64_31), "malformed line" },
		{ "hash of 33 bytes", alice_with(6, b64_33), "malformed line" },
		{ "hash unpadded", alice_with(6, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
		  "malformed line" },
	};
	char text[4096], line8[300];
	snprintf(line8, sizeof(line8), "%.*s extra\n", (int)strlen(good_alice) - 1, good_alice);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *line = cases[i].line != NULL ? cases[i].line : line8;
		snprintf(text, sizeof(text), HEADER "%s%s", good_bob, line);
		if (cases[i].log == NULL) {
			expect_loaded(cases[i].name, text, 2);
			continue;
		}
		expect_ignored(cases[i].name, text, strlen(text), cases[i].log);
		/* And the same line first, before the good one. */
		snprintf(text, sizeof(text), HEADER "%s%s", line, good_bob);
		expect_ignored(cases[i].name, text, strlen(text), "line 2");
	}
}
END_TEST

/* Concatenate the strings after TEXT (NULL-terminated list) into TEXT. */
static void cat(char *text, size_t cap, ...)
{
	va_list ap;
	const char *part;
	text[0] = '\0';
	va_start(ap, cap);
	while ((part = va_arg(ap, const char *)) != NULL) {
		size_t n = strlen(text);
		ck_assert_uint_lt(n + strlen(part), cap);
		memcpy(text + n, part, strlen(part) + 1);
	}
	va_end(ap);
}

START_TEST(tampered_files)
{
	make_good_lines();
	char text[4096], alice_crlf[300];
	snprintf(alice_crlf, sizeof(alice_crlf), "%.*s\r\n", (int)strlen(good_alice) - 1,
	         good_alice);
	const char *bad_header = "not a mailauth-offline 1 file";

	cat(text, sizeof(text), HEADER, good_alice, good_bob, good_alice, NULL);
	expect_ignored("duplicate user", text, strlen(text), "a user twice");
	cat(text, sizeof(text), "mailauth-offline 2\n", good_alice, good_bob, NULL);
	expect_ignored("header version 2", text, strlen(text), bad_header);
	cat(text, sizeof(text), "Mailauth-offline 1\n", good_alice, good_bob, NULL);
	expect_ignored("header case", text, strlen(text), bad_header);
	cat(text, sizeof(text), "mailauth-offline 1 \n", good_alice, good_bob, NULL);
	expect_ignored("header trailing space", text, strlen(text), bad_header);
	cat(text, sizeof(text), "mailauth-offline 1\r\n", good_alice, good_bob, NULL);
	expect_ignored("header CRLF", text, strlen(text), bad_header);
	cat(text, sizeof(text), good_alice, good_bob, NULL);
	expect_ignored("no header", text, strlen(text), bad_header);
	cat(text, sizeof(text), HEADER, HEADER, good_alice, good_bob, NULL);
	expect_ignored("header twice", text, strlen(text), "malformed line");
	cat(text, sizeof(text), HEADER, alice_crlf, good_bob, NULL);
	expect_ignored("CRLF lines", text, strlen(text), "malformed line");
	cat(text, sizeof(text), HEADER, good_bob, "616c696365\t1700000000 14 8 1 a b\n", NULL);
	expect_ignored("tab separated", text, strlen(text), "malformed line");

	/* An empty file, and a NUL byte inside an otherwise good file. */
	expect_ignored("empty file", "", 0, bad_header);
	cat(text, sizeof(text), HEADER, good_bob, good_alice, NULL);
	size_t len = strlen(text);
	text[strlen(HEADER) + 3] = '\0';
	expect_ignored("NUL byte", text, len, "ignored, never trusted");
	text[len - 1] = '\0';                    /* a NUL for the last newline */
	text[strlen(HEADER) + 3] = good_bob[3];
	expect_ignored("NUL at the end", text, len, "ignored, never trusted");
	/* The control: the same lines, well formed. */
	cat(text, sizeof(text), HEADER, good_bob, good_alice, NULL);
	expect_loaded("control", text, 2);
}
END_TEST

/* What is written over an ignored file holds only what is known now. */
START_TEST(ignored_file_is_replaced)
{
	char text[1024];
	make_good_lines();
	snprintf(text, sizeof(text), HEADER "%sgarbage\n", good_bob);
	write_file("offline", text, strlen(text), 0600);
	o = open_store();
	ck_assert_uint_eq(ma_offline_count(o), 0);
	ck_assert_int_eq(ma_offline_store(o, "carol", "pw", T0), MA_OK);
	reopen();
	ck_assert_uint_eq(ma_offline_count(o), 1);
	ck_assert_int_eq(ma_offline_verify(o, "bob", "x", TTL, T0 + 1), MA_USER_UNKNOWN);
}
END_TEST

START_TEST(unsafe_file)
{
	char text[1024], real[700];
	make_good_lines();
	snprintf(text, sizeof(text), HEADER "%s%s", good_alice, good_bob);

	/* Group- or other-readable or -writable. */
	static const mode_t modes[] = { 0640, 0620, 0604, 0602, 0660, 0644, 0666 };
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char what[32];
		logbuf[0] = '\0';
		snprintf(what, sizeof(what), "mode %04o", (unsigned)modes[i]);
		write_file("offline", text, strlen(text), modes[i]);
		o = open_store();
		ck_assert_msg(ma_offline_count(o) == 0, "%s: loaded", what);
		ck_assert_msg(logged("readable or writable by group or others: ignored"), "%s: %s",
		              what, logbuf);
		ma_offline_free(&o);
	}
	/* 0400 and 0700 are the owner's business. */
	write_file("offline", text, strlen(text), 0400);
	o = open_store();
	ck_assert_uint_eq(ma_offline_count(o), 2);
	ma_offline_free(&o);

	/* Owned by someone else (root can read it: the code must refuse). */
	if (geteuid() == 0) {
		logbuf[0] = '\0';
		write_file("offline", text, strlen(text), 0600);
		ck_assert_int_eq(chown(path, NOBODY, NOBODY), 0);
		o = open_store();
		ck_assert_uint_eq(ma_offline_count(o), 0);
		ck_assert_msg(logged("owned by another user: ignored"), "log: %s", logbuf);
		ck_assert_int_eq(ma_offline_verify(o, "alice", "x", TTL, T0 + 1), MA_USER_UNKNOWN);
		ma_offline_free(&o);
		/* Owned by our user but another group: fine. */
		ck_assert_int_eq(chown(path, geteuid(), NOBODY), 0);
		o = open_store();
		ck_assert_uint_eq(ma_offline_count(o), 2);
		ma_offline_free(&o);
	} else {
		fprintf(stderr, "unsafe_file: not root, foreign owner not tested\n");
	}

	/* A symlink to a good file: not followed. */
	logbuf[0] = '\0';
	unlink(path);
	write_file("real", text, strlen(text), 0600);
	snprintf(real, sizeof(real), "%s/real", dir);
	ck_assert_int_eq(symlink(real, path), 0);
	o = open_store();
	ck_assert_uint_eq(ma_offline_count(o), 0);
	ck_assert_msg(logged("ignored"), "log: %s", logbuf);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "x", TTL, T0 + 1), MA_USER_UNKNOWN);
	ma_offline_free(&o);
	unlink(path);

	/* Not a regular file: a directory, a FIFO (open must not block). */
	logbuf[0] = '\0';
	ck_assert_int_eq(mkdir(path, 0700), 0);
	o = open_store();
	ck_assert_uint_eq(ma_offline_count(o), 0);
	ck_assert_msg(logged("not a regular file: ignored"), "log: %s", logbuf);
	ma_offline_free(&o);
	rmdir(path);
	logbuf[0] = '\0';
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	o = open_store();
	ck_assert_uint_eq(ma_offline_count(o), 0);
	ck_assert_msg(logged("not a regular file: ignored"), "log: %s", logbuf);
	ma_offline_free(&o);
	unlink(path);
}
END_TEST

START_TEST(unsafe_state_dir)
{
	char text[1024];
	make_good_lines();
	snprintf(text, sizeof(text), HEADER "%s%s", good_alice, good_bob);
	write_file("offline", text, strlen(text), 0600);

	static const mode_t modes[] = { 0770, 0730, 0720, 0702, 0707, 0777, 01777, 01770 };
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		logbuf[0] = '\0';
		ck_assert_int_eq(chmod(dir, modes[i]), 0);
		o = open_store();
		ck_assert_msg(ma_offline_count(o) == 0, "dir mode %04o: loaded", (unsigned)modes[i]);
		ck_assert_msg(logged("writable by group or others: not used"), "dir mode %04o: %s",
		              (unsigned)modes[i], logbuf);
		ck_assert_int_eq(ma_offline_verify(o, "alice", "x", TTL, T0 + 1), MA_USER_UNKNOWN);
		/* An unsafe directory is not written to either: a store there
		 * is refused, and a verifier it would make is never used. */
		ck_assert_int_eq(ma_offline_store(o, "mallory", "pw", T0 + 1), MA_CONFIG);
		ck_assert_int_eq(ma_offline_verify(o, "mallory", "pw", TTL, T0 + 2), MA_USER_UNKNOWN);
		ma_offline_free(&o);
	}
	/* Readable and searchable by others is fine. */
	ck_assert_int_eq(chmod(dir, 0755), 0);
	o = open_store();
	ck_assert_uint_eq(ma_offline_count(o), 2);
	ma_offline_free(&o);
	ck_assert_int_eq(chmod(dir, 0700), 0);

	if (geteuid() == 0) {
		logbuf[0] = '\0';
		ck_assert_int_eq(chown(dir, NOBODY, NOBODY), 0);
		o = open_store();
		ck_assert_uint_eq(ma_offline_count(o), 0);
		ck_assert_msg(logged("owned by another user: not used"), "log: %s", logbuf);
		ma_offline_free(&o);
		ck_assert_int_eq(chown(dir, 0, 0), 0);
	}

	/* state_dir is a file; state_dir does not exist. */
	char sub[700];
	snprintf(sub, sizeof(sub), "%s/offline", dir);
	logbuf[0] = '\0';
	ck_assert_int_eq(ma_offline_open(sub, &logger, &o), MA_OK);
	ck_assert_uint_eq(ma_offline_count(o), 0);
	ck_assert_msg(logged("not a directory: not used"), "log: %s", logbuf);
	ma_offline_free(&o);
	snprintf(sub, sizeof(sub), "%s/missing", dir);
	logbuf[0] = '\0';
	ck_assert_int_eq(ma_offline_open(sub, &logger, &o), MA_OK);
	ck_assert_uint_eq(ma_offline_count(o), 0);
	ck_assert_msg(logged("No such file or directory: no offline logins"), "log: %s", logbuf);
	/* The store is off: nothing is stored, nothing verifies. */
	ck_assert_int_eq(ma_offline_store(o, "alice", "pw", T0), MA_CONFIG);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "pw", TTL, T0 + 1), MA_USER_UNKNOWN);
	ma_offline_free(&o);
}
END_TEST

/* ---- MA_OFFLINE_MAX ---- */

/* A file of N entries, user I named by NAME (I), stored at T0 + I + 10
 * except OLDEST, stored at T0. */
static void big_file(size_t n, size_t oldest, bool long_names)
{
	size_t cap = n * 640 + 64, len = 0;
	char *text = malloc(cap), user[300];
	ck_assert_ptr_nonnull(text);
	len = (size_t)snprintf(text, cap, HEADER);
	for (size_t i = 0; i < n; i++) {
		snprintf(user, sizeof(user), "user%05zu", i);
		if (long_names) {
			size_t l = strlen(user);
			memset(user + l, 'x', 255 - l);
			user[255] = '\0';
		}
		entry(text + len, cap - len, user, i == oldest ? (long long)T0 : (long long)T0 + 10 + (long long)i,
		      14, 8, 1, salt0, nohash);
		len += strlen(text + len);
	}
	write_file("offline", text, len, 0600);
	free(text);
}

/*
 * The full MA_OFFLINE_MAX (10,000) verifiers are made by hand (writing
 * them through ma_offline_store would take 10,000 scrypts, about 20
 * minutes): a file of exactly that many loads, one more is refused as a
 * whole; with the store full, a new user takes the place of the oldest
 * entry; the rewritten file loads again.  User names of 255 bytes make the
 * longest lines the format allows.
 */
START_TEST(max_entries)
{
	big_file(MA_OFFLINE_MAX, 5000, false);
	o = open_store();
	ck_assert_uint_eq(ma_offline_count(o), MA_OFFLINE_MAX);
	ma_offline_free(&o);

	logbuf[0] = '\0';
	big_file(MA_OFFLINE_MAX + 1, 5000, false);
	o = open_store();
	ck_assert_uint_eq(ma_offline_count(o), 0);
	ck_assert_msg(logged("more entries than allowed"), "log: %s", logbuf);
	ma_offline_free(&o);
}
END_TEST

START_TEST(max_entries_long_names_and_eviction)
{
	char user[300];
	logbuf[0] = '\0';
	big_file(MA_OFFLINE_MAX, 4321, true);
	o = open_store();
	ck_assert_msg(ma_offline_count(o) == MA_OFFLINE_MAX,
	              "a full store of 255-byte names was not loaded: %s", logbuf);

	/* Full: a new user replaces the oldest entry (by date, not place). */
	ck_assert_int_eq(ma_offline_store(o, "newcomer", "pw-new", T0 + 20000), MA_OK);
	ck_assert_uint_eq(ma_offline_count(o), MA_OFFLINE_MAX);
	snprintf(user, sizeof(user), "user%05d", 4321);
	memset(user + 9, 'x', 255 - 9);
	user[255] = '\0';
	ck_assert_int_eq(ma_offline_verify(o, user, "x", 1000000, T0 + 20001), MA_USER_UNKNOWN);
	snprintf(user, sizeof(user), "user%05d", 0);          /* the next oldest: still there */
	memset(user + 9, 'x', 255 - 9);
	ck_assert_int_eq(ma_offline_verify(o, user, "x", 1000000, T0 + 20001), MA_AUTH_FAILED);
	ck_assert_int_eq(ma_offline_verify(o, "newcomer", "pw-new", TTL, T0 + 20001), MA_OK);
	/* An existing user is refreshed in place, nobody is evicted. */
	reopen();
	ck_assert_msg(ma_offline_count(o) == MA_OFFLINE_MAX, "the rewritten file was refused: %s",
	              logbuf);
	ck_assert_int_eq(ma_offline_verify(o, "newcomer", "pw-new", TTL, T0 + 20001), MA_OK);
}
END_TEST

/* ---- the memo ---- */

START_TEST(memo_skips_scrypt)
{
	o = open_store();
	double t0 = now_s();
	ck_assert_int_eq(ma_offline_store(o, "alice", "pw-memo", T0), MA_OK);
	double first = now_s() - t0;
	/* 30 s later: within a minute of the last write, so the refresh is not
	 * written yet either (no fsync in the measure). */
	t0 = now_s();
	ck_assert_int_eq(ma_offline_store(o, "alice", "pw-memo", T0 + 30), MA_OK);
	double second = now_s() - t0;
	ck_assert_msg(second < first / 2, "second store %.1f ms, first %.1f ms", second * 1e3,
	              first * 1e3);
	/* It moved the date: verifiable until T0 + 30 + TTL. */
	ck_assert_int_eq(ma_offline_verify(o, "alice", "pw-memo", TTL, T0 + 30 + TTL), MA_OK);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "pw-memo", TTL, T0 + 31 + TTL),
	                 MA_USER_UNKNOWN);
	/* Another password is not the memo: a new verifier, the old one gone. */
	t0 = now_s();
	ck_assert_int_eq(ma_offline_store(o, "alice", "pw-changed", T0 + 2000), MA_OK);
	double third = now_s() - t0;
	ck_assert_msg(third > second * 2, "new password %.1f ms, memo %.1f ms", third * 1e3,
	              second * 1e3);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "pw-memo", TTL, T0 + 2001), MA_AUTH_FAILED);
	ck_assert_int_eq(ma_offline_verify(o, "alice", "pw-changed", TTL, T0 + 2001), MA_OK);
	/* Another user with the same password is not the memo either. */
	ck_assert_int_eq(ma_offline_store(o, "bob", "pw-changed", T0 + 2002), MA_OK);
	ck_assert_int_eq(ma_offline_verify(o, "bob", "pw-changed", TTL, T0 + 2003), MA_OK);
	fprintf(stderr, "memo: first store %.1f ms, same password %.3f ms, new password %.1f ms\n",
	        first * 1e3, second * 1e3, third * 1e3);
}
END_TEST

/* ---- at most MA_OFFLINE_PARALLEL at once ---- */

static void *verify_thread(void *arg)
{
	char user[16];
	snprintf(user, sizeof(user), "u%d", *(int *)arg);
	(void)ma_offline_verify(o, user, "not the password", TTL, T0 + 1);
	return NULL;
}

static long maxrss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/*
 * Each scrypt takes 128 * r * N = 16 MiB.  Eight verifications at once
 * would need 128 MiB; bounded to MA_OFFLINE_PARALLEL (2), the peak of
 * resident memory grows by about 32 MiB.  In a child process, with malloc
 * told to give big blocks back at once (else its arenas keep them and the
 * peak says nothing).  Not under valgrind or ASan (their allocators keep
 * freed memory).
 */
START_TEST(parallel_bound)
{
#if defined(__SANITIZE_ADDRESS__)
	return;
#endif
	if (RUNNING_ON_VALGRIND)
		return;
	char text[4096];
	size_t len = (size_t)snprintf(text, sizeof(text), HEADER);
	for (int i = 0; i < 8; i++) {
		char user[16];
		snprintf(user, sizeof(user), "u%d", i);
		entry(text + len, sizeof(text) - len, user, T0, 14, 8, 1, salt0, nohash);
		len += strlen(text + len);
	}
	write_file("offline", text, len, 0600);
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		mallopt(M_MMAP_THRESHOLD, 1 << 20);
		mallopt(M_TRIM_THRESHOLD, 1 << 20);
		o = open_store();
		pthread_t th[8];
		int ids[8];
		long before = maxrss_kib();
		for (int i = 0; i < 8; i++) {
			ids[i] = i;
			if (pthread_create(&th[i], NULL, verify_thread, &ids[i]) != 0)
				_exit(2);
		}
		for (int i = 0; i < 8; i++)
			pthread_join(th[i], NULL);
		long grew = maxrss_kib() - before;
		if (write(fds[1], &grew, sizeof(grew)) != (ssize_t)sizeof(grew))
			_exit(3);
		_exit(0);
	}
	close(fds[1]);
	long grew = -1;
	ck_assert_int_eq(read(fds[0], &grew, sizeof(grew)), (ssize_t)sizeof(grew));
	close(fds[0]);
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	fprintf(stderr, "parallel_bound: peak grew by %ld KiB for 8 verifications\n", grew);
	ck_assert_msg(grew >= 16 * 1024, "scrypt's memory not seen (%ld KiB)", grew);
	ck_assert_msg(grew < 48 * 1024, "more than 2 scrypt at once (%ld KiB)", grew);
}
END_TEST

/* ---- scrypt ---- */

static void unhex(const char *h, unsigned char *out)
{
	for (size_t i = 0; h[2 * i] != '\0'; i++) {
		unsigned v = 0;
		ck_assert_int_eq(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (unsigned char)v;
	}
}

/*
 * RFC 7914 section 12.  ma_offline_scrypt takes a 16-byte salt and p <= 4,
 * so none of the RFC's vectors can go through it as they are ("NaCl" and
 * "SodiumChloride" are 4 and 14 bytes, the N = 1024 vector has p = 16).
 * They check the reference here instead (OpenSSL's separate one-shot
 * EVP_PBE_scrypt), and ma_offline_scrypt is held to vectors with 16-byte
 * salts computed by an independent pure-Python scrypt (itself checked
 * against the RFC's first two vectors) and to the reference.
 */
START_TEST(scrypt_rfc7914_reference)
{
	unsigned char out[64], want[64];
	reference_scrypt("password", (const unsigned char *)"NaCl", 4, 1024, 8, 16, out, 64);
	unhex("fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
	      "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640", want);
	ck_assert(memcmp(out, want, 64) == 0);
	reference_scrypt("pleaseletmein", (const unsigned char *)"SodiumChloride", 14, 16384, 8, 1,
	                 out, 64);
	unhex("7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
	      "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887", want);
	ck_assert(memcmp(out, want, 64) == 0);
}
END_TEST

START_TEST(scrypt_known_answers)
{
	static const struct {
		const char *pw, *salt;
		unsigned log2n, r, p;
		const char *hex;
	} kat[] = {
		/* Pure Python (RFC 7914's algorithm) and Python's hashlib.scrypt agree. */
		{ "password", "NaClNaClNaClNaCl", 10, 8, 1,
		  "02e8215bd3907488dbf18ed6df21995c4e445f9f22d1c8925d9c6d129589bdd5" },
		{ "pleaseletmein", "SodiumChloride!!", 10, 8, 2,
		  "7521a029282daa43c89fed3f2946ae4363385f1c8d5ebcc8c50930edc6e37ebe" },
		{ "pleaseletmein", "SodiumChloride!!", 14, 8, 1,
		  "5266323433bf611b859ac800e892b96da335a93270d5b16f5f66ab7b50f63817" },
	};
	unsigned char out[32], want[32];
	for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
		memset(out, 0, sizeof(out));
		ck_assert_int_eq(ma_offline_scrypt(kat[i].pw, (const unsigned char *)kat[i].salt,
		                                   kat[i].log2n, kat[i].r, kat[i].p, out), 0);
		unhex(kat[i].hex, want);
		ck_assert_msg(memcmp(out, want, 32) == 0, "vector %zu", i);
	}
	/* 8-bit password, binary salt, r = 4, N = 2^11. */
	unsigned char salt[16];
	for (int i = 0; i < 16; i++)
		salt[i] = (unsigned char)i;
	ck_assert_int_eq(ma_offline_scrypt("caf\xc3\xa9 pw", salt, 11, 4, 1, out), 0);
	unhex("b0da55522923268cfec2dcaea0f30a3fd26276b26fd6d195f355c4547a189ab4", want);
	ck_assert(memcmp(out, want, 32) == 0);
}
END_TEST

/* Against the reference, over the parameters ma_offline_scrypt accepts. */
START_TEST(scrypt_matches_reference)
{
	static const unsigned params[][3] = {
		{ 10, 1, 1 }, { 10, 8, 1 }, { 10, 8, 4 }, { 10, 32, 1 }, { 11, 3, 2 }, { 12, 8, 3 },
		{ MA_OFFLINE_LOG2_N, MA_OFFLINE_R, MA_OFFLINE_P },
	};
	unsigned char out[32], want[32];
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		ck_assert_int_eq(ma_offline_scrypt("pw", salt0, params[i][0], params[i][1], params[i][2],
		                                   out), 0);
		reference_scrypt("pw", salt0, 16, (uint64_t)1 << params[i][0], params[i][1],
		                 params[i][2], want, 32);
		ck_assert_msg(memcmp(out, want, 32) == 0, "log2 N %u r %u p %u", params[i][0],
		              params[i][1], params[i][2]);
	}
}
END_TEST

START_TEST(scrypt_refuses_out_of_range)
{
	static const unsigned bad[][3] = {
		{ 9, 8, 1 }, { 0, 8, 1 }, { 21, 8, 1 }, { 63, 8, 1 }, { 64, 8, 1 }, { 200, 8, 1 },
		{ 10, 0, 1 }, { 10, 33, 1 }, { 10, 8, 0 }, { 10, 8, 5 }, { 10, 0xffffffffu, 1 },
	};
	unsigned char out[32];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(out, 0x5a, sizeof(out));
		ck_assert_msg(ma_offline_scrypt("pw", salt0, bad[i][0], bad[i][1], bad[i][2], out) == -1,
		              "log2 N %u r %u p %u accepted", bad[i][0], bad[i][1], bad[i][2]);
	}
}
END_TEST

static Suite *offline_suite(void)
{
	Suite *s = suite_create("offline");
	TCase *tc = tcase_create("store");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, store_then_verify);
	tcase_add_test(tc, store_refuses_unstorable_user);
	tcase_add_test(tc, forget);
	tcase_add_test(tc, persistence);
	tcase_add_test(tc, free_writes_pending_changes);
	tcase_add_test(tc, memo_skips_scrypt);
	tcase_add_test(tc, parallel_bound);
	suite_add_tcase(s, tc);

	tc = tcase_create("file");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, file_mode_owner_and_contents);
	tcase_add_test(tc, salt_per_entry);
	tcase_add_test(tc, hand_written_file);
	tcase_add_test(tc, tampered_lines);
	tcase_add_test(tc, tampered_files);
	tcase_add_test(tc, ignored_file_is_replaced);
	tcase_add_test(tc, unsafe_file);
	tcase_add_test(tc, unsafe_state_dir);
	tcase_add_test(tc, max_entries);
	tcase_add_test(tc, max_entries_long_names_and_eviction);
	suite_add_tcase(s, tc);

	tc = tcase_create("scrypt");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, scrypt_rfc7914_reference);
	tcase_add_test(tc, scrypt_known_answers);
	tcase_add_test(tc, scrypt_matches_reference);
	tcase_add_test(tc, scrypt_refuses_out_of_range);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ma_unit_run(offline_suite());
}
