/*
 * test_fake_imap.c - ma_authenticate() against the scripted IMAP server
 * tests/fake/fakeserver.py: good dialogues, hostile servers, bad certificates,
 * deadlines (SPEC sections 2, 3, 4), and what reached the wire before TLS.
 *
 * Needs MA_TEST_CERTS (tests/run-tests.sh exports it); without it main()
 * runs tests/lib/certs.sh into tests/tmp/certs.  See tests/fake/README.md.
 */
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "config.h"
#include "libmailauth.h"
#include "unit.h"
#include "fake.h"

#define TIMEOUT_S 3                   /* `timeout` in every configuration here */
#define SERVER_WAIT_MS 10000          /* how long fake_finish waits for the server */

/* What the password looks like on the wire, in the forms a client could use. */
static const char *const secret_forms[] = {
	"secret",
	"AGFsaWNlAHNlY3JldA==",    /* base64("\0alice\0secret"): SASL PLAIN */
	"c2VjcmV0",                /* base64("secret"): SASL LOGIN, or PLAIN with 3n prefix */
	"ZWNyZXQ",                 /* base64 of "secret" at the other two alignments */
	"NlY3JldA",
};
#define N_SECRET_FORMS (sizeof(secret_forms) / sizeof(secret_forms[0]))

struct run {
	char label[96];
	enum ma_err err;
	struct ma_result res;
	long elapsed_ms;
	struct fake_result fr;
};

struct capture {
	char buf[64 * 1024];
	size_t len;
	size_t lines;
};

static void capture_emit(void *arg, int priority, const char *line)
{
	struct capture *c = arg;
	(void)priority;
	int n = snprintf(c->buf + c->len, sizeof(c->buf) - c->len, "%s\n", line);
	if (n > 0 && (size_t)n < sizeof(c->buf) - c->len)
		c->len += (size_t)n;
	c->lines++;
}

static void dump(const struct run *r)
{
	fprintf(stderr, "%s: ma_authenticate -> %s (%s) in %ld ms, mechanism \"%s\", tls \"%s\"\n",
	        r->label, ma_err_name(r->err), r->res.detail, r->elapsed_ms, r->res.mechanism,
	        r->res.tls_version);
	fake_dump(r->label, &r->fr);
}

/*
 * Start SCENARIO in MODE ("implicit" / "starttls") serving CERT (NULL:
 * "server"), with EXTRA server arguments, and authenticate alice/PASSWORD
 * against it.  The server has exited and its record is loaded on return.
 */
static void run_case(struct run *r, const char *scenario, const char *mode, const char *cert,
                     const char *password, const char *const *extra, const struct ma_log *log)
{
	struct fake_server fs;
	const char *args[24];
	size_t n = 0;
	char conf[1024], err[512];
	struct ma_config *cfg = NULL;

	memset(r, 0, sizeof(*r));
	snprintf(r->label, sizeof(r->label), "%s/%s%s%s", scenario, mode, cert ? "/" : "",
	         cert ? cert : "");
	args[n++] = "--tls";
	args[n++] = mode;
	if (cert != NULL) {
		args[n++] = "--cert";
		args[n++] = cert;
	}
	args[n++] = "--password";
	args[n++] = "secret";
	for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 22; i++)
		args[n++] = extra[i];
	args[n] = NULL;

	ck_assert_msg(fake_start(&fs, scenario, args) == 0, "%s: fake server did not start",
	              r->label);
	int len = snprintf(conf, sizeof(conf),
	                   "timeout = %d\n"
	                   "ca_file = \"%s/ca.pem\"\n"
	                   "server fake {\n"
	                   "  protocol = imap\n"
	                   "  host = \"127.0.0.1\"\n"
	                   "  port = %u\n"
	                   "  tls = %s\n"
	                   "}\n",
	                   TIMEOUT_S, getenv("MA_TEST_CERTS"), fs.port, mode);
	ck_assert(len > 0 && (size_t)len < sizeof(conf));
	enum ma_err ce = ma_config_parse(conf, (size_t)len, "fake.conf", &cfg, err, sizeof(err));
	if (ce != MA_OK) {
		fake_stop(&fs, 0);
		ck_abort_msg("%s: ma_config_parse: %s: %s\n%s", r->label, ma_err_name(ce), err, conf);
	}

	long t0 = fake_now_ms();
	r->err = ma_authenticate(cfg, "alice", password, log, &r->res);
	r->elapsed_ms = fake_now_ms() - t0;
	ma_config_free(&cfg);

	int rc = fake_finish(&fs, &r->fr, SERVER_WAIT_MS);
	if (getenv("MA_FAKE_VERBOSE") != NULL)
		dump(r);
	if (rc != 0)
		dump(r);
	ck_assert_msg(rc == 0, "%s: the server's record is missing or malformed", r->label);
	ck_assert_msg(r->res.err == r->err, "%s: res.err %s != returned %s", r->label,
	              ma_err_name(r->res.err), ma_err_name(r->err));
}

static void expect_err(const struct run *r, enum ma_err want)
{
	if (r->err != want)
		dump(r);
	ck_assert_msg(r->err == want, "%s: got %s (%s), want %s", r->label, ma_err_name(r->err),
	              r->res.detail, ma_err_name(want));
}

/* The server's exit status: 0 clean, 1 the client broke a rule (see transcript),
 * 4 the TLS handshake failed. */
static void expect_status(const struct run *r, int want)
{
	if (r->fr.status != want)
		dump(r);
	ck_assert_msg(r->fr.status == want, "%s: fake server exit status %d, want %d", r->label,
	              r->fr.status, want);
}

/* No form of the password in anything received before TLS. */
static void expect_no_secret_before_tls(const struct run *r)
{
	for (size_t i = 0; i < N_SECRET_FORMS; i++) {
		if (fake_plain_contains(&r->fr, secret_forms[i]))
			dump(r);
		ck_assert_msg(!fake_plain_contains(&r->fr, secret_forms[i]),
		              "%s: \"%s\" was sent before TLS", r->label, secret_forms[i]);
	}
}

/* No form of the password anywhere: the client must not have tried to log in. */
static void expect_no_secret_at_all(const struct run *r)
{
	expect_no_secret_before_tls(r);
	for (size_t i = 0; i < N_SECRET_FORMS; i++) {
		if (fake_any_contains(&r->fr, secret_forms[i]))
			dump(r);
		ck_assert_msg(!fake_any_contains(&r->fr, secret_forms[i]),
		              "%s: \"%s\" was sent to a server that should not get it", r->label,
		              secret_forms[i]);
	}
}

static void expect_mechanism(const struct run *r, const char *mech)
{
	if (strcmp(r->res.mechanism, mech) != 0)
		dump(r);
	ck_assert_msg(strcmp(r->res.mechanism, mech) == 0, "%s: mechanism \"%s\", want \"%s\"",
	              r->label, r->res.mechanism, mech);
}

/* ---- servers that behave ------------------------------------------------------ */

START_TEST(test_good_implicit)
{
	struct run r;
	run_case(&r, "good_implicit", "implicit", NULL, "secret", NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_mechanism(&r, "PLAIN");
	ck_assert_msg(strncmp(r.res.tls_version, "TLSv1.", 6) == 0, "tls_version \"%s\"",
	              r.res.tls_version);
	ck_assert_str_eq(r.res.server, "fake");
	ck_assert_str_eq(r.res.login, "alice");
	ck_assert_msg(!fake_any_plain(&r.fr), "bytes before TLS in implicit mode");
	/* SPEC 2: connections end politely. */
	ck_assert_msg(fake_mem_contains(r.fr.tls, r.fr.tls_len, " LOGOUT\r\n"), "no LOGOUT");
	fake_result_free(&r.fr);
}
END_TEST

START_TEST(test_good_wrong_password)
{
	struct run r;
	run_case(&r, "good_implicit", "implicit", NULL, "wrong", NULL, NULL);
	expect_err(&r, MA_AUTH_FAILED);
	expect_status(&r, 0);
	fake_result_free(&r.fr);
}
END_TEST

/* The client's bytes GOT (LEN) are WANT exactly, or start or end with it. */
enum match { EXACTLY, STARTS, ENDS };

static void expect_sent(const char *got, size_t len, enum match how, const char *want,
                        const char *where)
{
	size_t n = strlen(want);
	bool ok = how == EXACTLY ? len == n && memcmp(got, want, n) == 0
	        : len >= n && memcmp(how == STARTS ? got : got + len - n, want, n) == 0;
	ck_assert_msg(ok, "%s: sent \"%.*s\", want it %s \"%s\"", where, (int)len,
	              got != NULL ? got : "",
	              how == EXACTLY ? "to be" : how == STARTS ? "to start" : "to end", want);
}

START_TEST(test_good_starttls)
{
	struct run r;
	run_case(&r, "good_starttls", "starttls", NULL, "secret", NULL, NULL);
	expect_err(&r, MA_OK);
	/* 0: CAPABILITY asked again after TLS, nothing pipelined, no LOGIN. */
	expect_status(&r, 0);
	expect_mechanism(&r, "PLAIN");
	ck_assert_msg(fake_plain_contains(&r.fr, " STARTTLS\r\n"), "no STARTTLS before TLS");
	expect_no_secret_before_tls(&r);
	ck_assert_msg(!fake_plain_contains(&r.fr, "AUTHENTICATE"), "AUTHENTICATE before TLS");
	/* The protocol minimum, byte for byte: the greeting's capabilities
	 * name STARTTLS, so nothing but STARTTLS goes out before TLS; after
	 * it CAPABILITY is asked again (SPEC 2), then one AUTHENTICATE with
	 * SASL-IR, then LOGOUT. */
	expect_sent(r.fr.plain, r.fr.plain_len, EXACTLY, "a1 STARTTLS\r\n", "before TLS");
	expect_sent(r.fr.tls, r.fr.tls_len, STARTS, "a2 CAPABILITY\r\na3 AUTHENTICATE PLAIN ", "over TLS");
	expect_sent(r.fr.tls, r.fr.tls_len, ENDS, "\r\na4 LOGOUT\r\n", "over TLS");
	fake_result_free(&r.fr);
}
END_TEST

START_TEST(test_good_nocap_starttls)
{
	/* A greeting without capabilities costs one CAPABILITY before STARTTLS. */
	struct run r;
	run_case(&r, "good_nocap_starttls", "starttls", NULL, "secret", NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_sent(r.fr.plain, r.fr.plain_len, EXACTLY, "a1 CAPABILITY\r\na2 STARTTLS\r\n", "before TLS");
	expect_sent(r.fr.tls, r.fr.tls_len, STARTS, "a3 CAPABILITY\r\na4 AUTHENTICATE PLAIN ", "over TLS");
	fake_result_free(&r.fr);
}
END_TEST

START_TEST(test_good_nocap)
{
	struct run r;
	run_case(&r, "good_nocap", "implicit", NULL, "secret", NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	ck_assert_msg(fake_mem_contains(r.fr.tls, r.fr.tls_len, " CAPABILITY\r\n"),
	              "CAPABILITY not asked");
	fake_result_free(&r.fr);
}
END_TEST

START_TEST(test_plain_continuation)
{
	struct run r;
	run_case(&r, "plain_continuation", "implicit", NULL, "secret", NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_mechanism(&r, "PLAIN");
	fake_result_free(&r.fr);
}
END_TEST

START_TEST(test_login_mech)
{
	struct run r;
	run_case(&r, "login_mech", "implicit", NULL, "secret", NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_mechanism(&r, "LOGIN");
	fake_result_free(&r.fr);
}
END_TEST

START_TEST(test_login_command)
{
	struct run r;
	run_case(&r, "login_command", "implicit", NULL, "secret", NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_mechanism(&r, "IMAP-LOGIN");
	ck_assert_msg(fake_mem_contains(r.fr.tls, r.fr.tls_len, " LOGIN \"alice\" \"secret\"\r\n"),
	              "LOGIN arguments not quoted");
	fake_result_free(&r.fr);
}
END_TEST

/* SPEC 3: quoted strings escape '"' and '\'; 8-bit needs a literal. */
static const char *const odd_passwords[] = {
	"se\"c\\ret",
	("s\xc3\xa9" "cret"),
	"with space",
};

START_TEST(test_login_command_odd_password)
{
	struct run r;
	const char *pw = odd_passwords[_i];
	const char *extra[] = { "--password", pw, NULL };
	run_case(&r, "login_command", "implicit", NULL, pw, extra, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	fake_result_free(&r.fr);
}
END_TEST

START_TEST(test_caps_differ)
{
	struct run r;
	run_case(&r, "caps_differ", "starttls", NULL, "secret", NULL, NULL);
	/* Only the capabilities after TLS count: AUTH=LOGIN, not the PLAIN of before. */
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_mechanism(&r, "LOGIN");
	expect_no_secret_before_tls(&r);
	fake_result_free(&r.fr);
}
END_TEST

START_TEST(test_log_redaction)
{
	struct run r;
	static struct capture cap;
	struct ma_log log = { .emit = capture_emit, .arg = &cap, .debug = true };
	memset(&cap, 0, sizeof(cap));
	run_case(&r, "good_implicit", "implicit", NULL, "secret", NULL, &log);
	expect_err(&r, MA_OK);
	ck_assert_msg(cap.lines > 0, "nothing logged with debug = true");
	for (size_t i = 0; i < N_SECRET_FORMS; i++)
		ck_assert_msg(strstr(cap.buf, secret_forms[i]) == NULL,
		              "\"%s\" in the log:\n%s", secret_forms[i], cap.buf);
	ck_assert_msg(strstr(cap.buf, "redacted") != NULL, "no redacted line:\n%s", cap.buf);
	/* Every line that shows the AUTHENTICATE command shows it redacted. */
	for (const char *p = cap.buf; (p = strstr(p, "AUTHENTICATE")) != NULL; p++) {
		const char *eol = strchr(p, '\n');
		const char *bol = p;
		while (bol > cap.buf && bol[-1] != '\n')
			bol--;
		size_t n = eol ? (size_t)(eol - bol) : strlen(bol);
		ck_assert_msg(memmem(bol, n, "redacted", 8) != NULL,
		              "AUTHENTICATE line not redacted: %.*s", (int)n, bol);
	}
	fake_result_free(&r.fr);
}
END_TEST

/* ---- hostile servers -------------------------------------------------------------- */

struct hostile {
	const char *scenario;
	const char *mode;
	enum ma_err want;
	bool no_login;          /* the client must not have sent the password at all */
};

static const struct hostile hostile_cases[] = {
	/* SPEC 2: STARTTLS missing or refused -> unavailable, nothing secret sent. */
	{ "starttls_stripped", "starttls", MA_UNAVAILABLE, true },
	{ "starttls_refused", "starttls", MA_UNAVAILABLE, true },
	{ "starttls_refused_bad", "starttls", MA_UNAVAILABLE, true },
	/* Bytes after the STARTTLS answer, before the handshake: abort. */
	{ "starttls_injected", "starttls", MA_PROTOCOL, true },
	/* Greetings that are not a well-formed OK. */
	{ "preauth", "implicit", MA_PROTOCOL, true },
	{ "preauth", "starttls", MA_PROTOCOL, true },
	{ "bye_greeting", "implicit", MA_PROTOCOL, true },
	{ "bye_greeting", "starttls", MA_PROTOCOL, true },
	{ "bad_greeting", "implicit", MA_PROTOCOL, true },
	{ "bad_greeting", "starttls", MA_PROTOCOL, true },
	/* Lines are bounded at 64 KiB: a 80 KiB greeting is a protocol error. */
	{ "overlong_line", "implicit", MA_PROTOCOL, true },
	{ "overlong_line", "starttls", MA_PROTOCOL, true },
	/* Answers to AUTHENTICATE. */
	{ "wrong_tag", "implicit", MA_PROTOCOL, false },
	{ "wrong_tag", "starttls", MA_PROTOCOL, false },
	{ "referral", "implicit", MA_PROTOCOL, false },
	{ "unavailable", "implicit", MA_UNAVAILABLE, false },
	{ "authfail", "implicit", MA_AUTH_FAILED, false },
	{ "authfail", "starttls", MA_AUTH_FAILED, false },
	/* No AUTH= and LOGINDISABLED after TLS: nothing usable. */
	{ "logindisabled_after_tls", "starttls", MA_NO_MECH, true },
	/* Connection reset: unavailable. */
	{ "reset_after_greeting", "implicit", MA_UNAVAILABLE, false },
	{ "reset_after_greeting", "starttls", MA_UNAVAILABLE, true },
};
#define N_HOSTILE (sizeof(hostile_cases) / sizeof(hostile_cases[0]))

START_TEST(test_hostile)
{
	const struct hostile *h = &hostile_cases[_i];
	struct run r;
	run_case(&r, h->scenario, h->mode, NULL, "secret", NULL, NULL);
	expect_err(&r, h->want);
	expect_no_secret_before_tls(&r);
	if (h->no_login)
		expect_no_secret_at_all(&r);
	/* A violation (1) means the client did something the scenario forbids. */
	ck_assert_msg(r.fr.status != 1, "%s: the client broke a protocol rule:\n%s", r.label,
	              r.fr.transcript);
	fake_result_free(&r.fr);
}
END_TEST

/* ---- deadline --------------------------------------------------------------------- */

static const struct {
	const char *scenario;
	const char *mode;
} slow_cases[] = {
	{ "silent", "implicit" },    /* accepts, never answers the ClientHello */
	{ "silent", "starttls" },    /* accepts, never greets */
	{ "drip", "implicit" },      /* greeting one byte per second */
	{ "drip", "starttls" },
};

START_TEST(test_deadline)
{
	struct run r;
	run_case(&r, slow_cases[_i].scenario, slow_cases[_i].mode, NULL, "secret", NULL, NULL);
	expect_err(&r, MA_TIMEOUT);
	if (r.elapsed_ms < TIMEOUT_S * 1000 - 500 || r.elapsed_ms > TIMEOUT_S * 1000 + 1000)
		dump(&r);
	ck_assert_msg(r.elapsed_ms >= TIMEOUT_S * 1000 - 500, "%s: gave up after %ld ms",
	              r.label, r.elapsed_ms);
	ck_assert_msg(r.elapsed_ms <= TIMEOUT_S * 1000 + 1000,
	              "%s: returned after %ld ms, deadline was %d s", r.label, r.elapsed_ms,
	              TIMEOUT_S);
	expect_no_secret_at_all(&r);
	fake_result_free(&r.fr);
}
END_TEST

/* ---- certificates ----------------------------------------------------------------- */

static const char *const bad_certs[] = {
	"selfsigned", "unknownca", "wrongname", "expired", "notyet", "rsa1024", "sha1",
};
#define N_BAD_CERTS (sizeof(bad_certs) / sizeof(bad_certs[0]))

START_TEST(test_bad_cert_implicit)
{
	struct run r;
	run_case(&r, "good_implicit", "implicit", bad_certs[_i], "secret", NULL, NULL);
	expect_err(&r, MA_TLS);
	/* Verified during the handshake: the server sees it fail (exit 4) and never
	 * receives a single application byte. */
	expect_status(&r, 4);
	if (r.fr.n_chunks != 0)
		dump(&r);
	ck_assert_msg(r.fr.n_chunks == 0, "%s: the server received application data", r.label);
	fake_result_free(&r.fr);
}
END_TEST

START_TEST(test_bad_cert_starttls)
{
	struct run r;
	run_case(&r, "good_starttls", "starttls", bad_certs[_i], "secret", NULL, NULL);
	expect_err(&r, MA_TLS);
	expect_status(&r, 4);
	ck_assert_msg(r.fr.tls_len == 0, "%s: data sent over an unverified TLS session", r.label);
	expect_no_secret_at_all(&r);
	fake_result_free(&r.fr);
}
END_TEST

/* SPEC 2: TLS 1.2 at least. */
START_TEST(test_old_tls_version)
{
	struct run r;
	const char *extra[] = { "--tls-max", "1.1", NULL };
	run_case(&r, "good_implicit", "implicit", NULL, "secret", extra, NULL);
	expect_err(&r, MA_TLS);
	ck_assert_msg(r.fr.n_chunks == 0, "%s: the server received application data", r.label);
	fake_result_free(&r.fr);
}
END_TEST

static Suite *fake_imap_suite(void)
{
	Suite *s = suite_create("fake_imap");

	TCase *tc = tcase_create("good");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_good_implicit);
	tcase_add_test(tc, test_good_wrong_password);
	tcase_add_test(tc, test_good_starttls);
	tcase_add_test(tc, test_good_nocap);
	tcase_add_test(tc, test_good_nocap_starttls);
	tcase_add_test(tc, test_plain_continuation);
	tcase_add_test(tc, test_login_mech);
	tcase_add_test(tc, test_login_command);
	tcase_add_loop_test(tc, test_login_command_odd_password, 0,
	                    (int)(sizeof(odd_passwords) / sizeof(odd_passwords[0])));
	tcase_add_test(tc, test_caps_differ);
	tcase_add_test(tc, test_log_redaction);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_hostile, 0, (int)N_HOSTILE);
	suite_add_tcase(s, tc);

	tc = tcase_create("deadline");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_deadline, 0,
	                    (int)(sizeof(slow_cases) / sizeof(slow_cases[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("certificates");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_bad_cert_implicit, 0, (int)N_BAD_CERTS);
	tcase_add_loop_test(tc, test_bad_cert_starttls, 0, (int)N_BAD_CERTS);
	tcase_add_test(tc, test_old_tls_version);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (fake_certs_setup() == NULL) {
		fprintf(stderr, "test_fake_imap: no test certificates (set MA_TEST_CERTS)\n");
		return EXIT_FAILURE;
	}
	return ma_unit_run(fake_imap_suite());
}
