/*
 * test_smtp.c - the SMTP client: its pure parsers (reply lines, the reply
 * accumulator, EHLO keywords, AUTH reply codes, the EHLO name), and whole
 * dialogues through ma_authenticate() against the scripted server
 * tests/fake/fake_smtp.py (SPEC sections 2, 3, 4): good servers, stripped
 * or refused STARTTLS, response injection, floods, resets, mechanism
 * fallbacks, and what reached the wire before TLS.
 *
 * Needs MA_TEST_CERTS (tests/run-tests.sh exports it); without it main()
 * runs tests/lib/certs.sh into tests/tmp/certs (fake.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "config.h"
#include "libmailauth.h"
#include "sasl.h"
#include "names.h"
#include "smtp.h"
#include "unit.h"
#include "fake.h"

#define TIMEOUT_S 4                   /* `timeout` in every configuration here */
#define SERVER_WAIT_MS 10000          /* how long fake_finish waits for the server */
#define USER "alice"
#define PASS "s3cr3t-pw"

/* What the password looks like on the wire, in the forms a client could use. */
static const char *const secret_forms[] = {
	PASS,
	"AGFsaWNlAHMzY3IzdC1wdw==",   /* base64("\0alice\0s3cr3t-pw"): SASL PLAIN */
	"czNjcjN0LXB3",               /* base64(password): SASL LOGIN */
	"MzY3IzdC1wd",                /* the password inside base64 at the other */
	"zM2NyM3QtcH",                /* two alignments */
};
#define N_SECRET_FORMS (sizeof(secret_forms) / sizeof(secret_forms[0]))

/* ======================================================================== */
/* Pure parsers                                                             */
/* ======================================================================== */

static void line_ok(const char *s, int code, bool last, const char *text)
{
	int c;
	bool l;
	const char *t;
	size_t tl;
	ck_assert_msg(ma_smtp_parse_reply_line(s, strlen(s), &c, &l, &t, &tl) == 0,
	              "refused: \"%s\"", s);
	ck_assert_int_eq(c, code);
	ck_assert(l == last);
	ck_assert_uint_eq(tl, strlen(text));
	ck_assert(memcmp(t, text, tl) == 0);
}

static void line_bad(const char *s)
{
	int c;
	bool l;
	const char *t;
	size_t tl;
	ck_assert_msg(ma_smtp_parse_reply_line(s, strlen(s), &c, &l, &t, &tl) == -1,
	              "accepted: \"%s\"", s);
}

START_TEST(reply_line_good)
{
	line_ok("250 OK", 250, true, "OK");
	line_ok("220 mail.example.org ESMTP ready", 220, true, "mail.example.org ESMTP ready");
	line_ok("250-mail.example.org", 250, false, "mail.example.org");
	line_ok("250-", 250, false, "");
	/* RFC 5321 4.2: Reply-code [ SP textstring ] CRLF: a bare code is a
	 * valid last line. */
	line_ok("250", 250, true, "");
	line_ok("250 ", 250, true, "");
	line_ok("334 VXNlcm5hbWU6", 334, true, "VXNlcm5hbWU6");
	line_ok("535 5.7.8 Error: authentication failed", 535, true,
	        "5.7.8 Error: authentication failed");
	line_ok("559 x", 559, true, "x");
}
END_TEST

START_TEST(reply_line_bad)
{
	line_bad("");
	line_bad("2");
	line_bad("25");
	line_bad("25 OK");               /* two digits */
	line_bad("2500 OK");             /* four digits */
	line_bad("250OK");               /* no separator */
	line_bad("250\tOK");
	line_bad("250_OK");
	line_bad("abc def");             /* letters */
	line_bad("2a0 x");
	line_bad("25a x");
	line_bad(" 250 x");
	line_bad("150 x");               /* Reply-code = %x32-35 %x30-35 %x30-39 */
	line_bad("650 x");
	line_bad("260 x");
	line_bad("OK 250");
}
END_TEST

static int add(struct ma_smtp_reply *r, const char *s)
{
	return ma_smtp_reply_add(r, s, strlen(s));
}

START_TEST(reply_accumulator)
{
	struct ma_smtp_reply r;
	ma_smtp_reply_init(&r);
	ck_assert_int_eq(add(&r, "250-mail.example.org"), 0);
	ck_assert_int_eq(add(&r, "250-PIPELINING"), 0);
	ck_assert_int_eq(add(&r, "250 AUTH PLAIN"), 1);
	ck_assert(r.complete);
	ck_assert_int_eq(r.code, 250);
	ck_assert_uint_eq(r.lines, 3);
	ck_assert_uint_eq(r.text_len, strlen("AUTH PLAIN"));
	/* Nothing may be added to a complete reply. */
	ck_assert_int_eq(add(&r, "250 again"), -1);

	/* RFC 5321 4.2.1: the same code on every line. */
	ma_smtp_reply_init(&r);
	ck_assert_int_eq(add(&r, "250-a"), 0);
	ck_assert_int_eq(add(&r, "251 b"), -1);
	ma_smtp_reply_init(&r);
	ck_assert_int_eq(add(&r, "220-a"), 0);
	ck_assert_int_eq(add(&r, "250-b"), -1);
	ma_smtp_reply_init(&r);
	ck_assert_int_eq(add(&r, "250-a"), 0);
	ck_assert_int_eq(add(&r, "250 x y"), 1);

	/* A malformed continuation line ends the reply as an error. */
	ma_smtp_reply_init(&r);
	ck_assert_int_eq(add(&r, "250-a"), 0);
	ck_assert_int_eq(add(&r, "250x"), -1);
	ma_smtp_reply_init(&r);
	ck_assert_int_eq(add(&r, "250-a"), 0);
	ck_assert_int_eq(add(&r, "AUTH PLAIN"), -1);
}
END_TEST

START_TEST(reply_too_many_lines)
{
	struct ma_smtp_reply r;
	ma_smtp_reply_init(&r);
	for (int i = 0; i < MA_SMTP_REPLY_MAX_LINES - 1; i++)
		ck_assert_int_eq(add(&r, "250-x"), 0);
	ck_assert_int_eq(add(&r, "250 last"), 1);    /* exactly the limit */

	ma_smtp_reply_init(&r);
	for (int i = 0; i < MA_SMTP_REPLY_MAX_LINES; i++)
		ck_assert_int_eq(add(&r, "250-x"), 0);
	ck_assert_int_eq(add(&r, "250 one too many"), -1);
}
END_TEST

START_TEST(reply_too_many_bytes)
{
	struct ma_smtp_reply r;
	size_t big = 30 * 1024;
	char *line = malloc(big + 1);
	ck_assert_ptr_nonnull(line);
	memcpy(line, "250-", 4);
	memset(line + 4, 'a', big - 4);
	line[big] = '\0';
	ma_smtp_reply_init(&r);
	ck_assert_int_eq(ma_smtp_reply_add(&r, line, big), 0);
	ck_assert_int_eq(ma_smtp_reply_add(&r, line, big), 0);
	/* 2 * (30 KiB + CRLF) + 30 KiB > 64 KiB */
	ck_assert_int_eq(ma_smtp_reply_add(&r, line, big), -1);
	free(line);
}
END_TEST

static struct ma_caps ehlo(const char *const *lines)
{
	struct ma_caps caps;
	memset(&caps, 0, sizeof(caps));
	for (size_t i = 0; lines[i] != NULL; i++)
		(void)ma_smtp_parse_ehlo_line(lines[i], strlen(lines[i]), &caps);
	return caps;
}

#define BIT(m) MA_MECH_BIT(MA_MECH_##m)

START_TEST(ehlo_auth_forms)
{
	struct ma_caps c = ehlo((const char *const[]){ "PIPELINING", "AUTH PLAIN LOGIN",
	                                              "8BITMIME", NULL });
	ck_assert(c.known && c.auth && !c.starttls);
	ck_assert_uint_eq(c.mechs, BIT(PLAIN) | BIT(LOGIN));
	ck_assert_str_eq(c.text, "PIPELINING AUTH PLAIN LOGIN 8BITMIME");

	/* The pre-standard form some servers still send next to, or instead of,
	 * the RFC 4954 one. */
	c = ehlo((const char *const[]){ "AUTH=PLAIN LOGIN", NULL });
	ck_assert(c.auth);
	ck_assert_uint_eq(c.mechs, BIT(PLAIN) | BIT(LOGIN));
	c = ehlo((const char *const[]){ "AUTH=LOGIN", "AUTH CRAM-MD5", NULL });
	ck_assert_uint_eq(c.mechs, BIT(LOGIN) | BIT(CRAM_MD5));

	c = ehlo((const char *const[]){
		"AUTH SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1 SCRAM-SHA-1-PLUS", NULL });
	ck_assert_uint_eq(c.mechs, BIT(SCRAM_SHA_256_PLUS) | BIT(SCRAM_SHA_256) |
	                           BIT(SCRAM_SHA_1) | BIT(SCRAM_SHA_1_PLUS));
	/* Extra spaces between tokens are tolerated. */
	c = ehlo((const char *const[]){ "AUTH  PLAIN  ", NULL });
	ck_assert_uint_eq(c.mechs, BIT(PLAIN));
	/* AUTH with nothing we know: advertised, but no mechanism. */
	c = ehlo((const char *const[]){ "AUTH GSSAPI NTLM XOAUTH2", NULL });
	ck_assert(c.auth);
	ck_assert_uint_eq(c.mechs, 0);
	c = ehlo((const char *const[]){ "AUTH", NULL });
	ck_assert(c.auth);
	ck_assert_uint_eq(c.mechs, 0);
}
END_TEST

START_TEST(ehlo_exact_tokens)
{
	/* SPEC 3: XPLAIN is not PLAIN, PLAIN2 neither. */
	struct ma_caps c = ehlo((const char *const[]){ "AUTH XPLAIN PLAIN2 LOGINX", NULL });
	ck_assert(c.auth);
	ck_assert_uint_eq(c.mechs, 0);
	/* Keywords are exact too. */
	c = ehlo((const char *const[]){ "X-AUTH PLAIN", "AUTHX PLAIN", "XAUTH=PLAIN",
	                               "STARTTLSX", "X-STARTTLS", "STARTTLS=1", NULL });
	ck_assert(!c.auth && !c.starttls);
	ck_assert_uint_eq(c.mechs, 0);
	/* A malformed keyword is ignored (and reported). */
	struct ma_caps d;
	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(ma_smtp_parse_ehlo_line("-AUTH PLAIN", 11, &d), -1);
	ck_assert_int_eq(ma_smtp_parse_ehlo_line("AU_TH PLAIN", 11, &d), -1);
	ck_assert_int_eq(ma_smtp_parse_ehlo_line("", 0, &d), -1);
	ck_assert(!d.auth);
	ck_assert_uint_eq(d.mechs, 0);
}
END_TEST

START_TEST(ehlo_case_insensitive)
{
	struct ma_caps c = ehlo((const char *const[]){ "auth plain Login", "StartTLS", NULL });
	ck_assert(c.auth && c.starttls);
	ck_assert_uint_eq(c.mechs, BIT(PLAIN) | BIT(LOGIN));
	c = ehlo((const char *const[]){ "Auth=scram-sha-256", NULL });
	ck_assert_uint_eq(c.mechs, BIT(SCRAM_SHA_256));
}
END_TEST

START_TEST(ehlo_text_escaped)
{
	struct ma_caps c = ehlo((const char *const[]){ "X-\x1b[31mRED", "AUTH PLAIN", NULL });
	ck_assert(strchr(c.text, '\x1b') == NULL);
	ck_assert(strstr(c.text, "\\x1b") != NULL);
	ck_assert_uint_eq(c.mechs, BIT(PLAIN));
}
END_TEST

START_TEST(auth_reply_kinds)
{
	ck_assert_int_eq(ma_smtp_auth_reply_kind(334, false), MA_REPLY_CHALLENGE);
	ck_assert_int_eq(ma_smtp_auth_reply_kind(235, true), MA_REPLY_SUCCESS);
	ck_assert_int_eq(ma_smtp_auth_reply_kind(535, true), MA_REPLY_REJECTED);
	ck_assert_int_eq(ma_smtp_auth_reply_kind(535, false), MA_REPLY_REJECTED);
	ck_assert_int_eq(ma_smtp_auth_reply_kind(504, true), MA_REPLY_UNSUPPORTED);
	/* RFC 4954 6: 534 5.7.9 too weak and 432 4.7.12 transition needed
	 * refuse the mechanism: the next one, policy when none is accepted. */
	ck_assert_int_eq(ma_smtp_auth_reply_kind(534, true), MA_REPLY_WEAK);
	ck_assert_int_eq(ma_smtp_auth_reply_kind(454, true), MA_REPLY_TEMPFAIL);
	ck_assert_int_eq(ma_smtp_auth_reply_kind(421, false), MA_REPLY_TEMPFAIL);
	ck_assert_int_eq(ma_smtp_auth_reply_kind(432, true), MA_REPLY_WEAK);
	ck_assert_int_eq(ma_smtp_auth_reply_kind(451, true), MA_REPLY_TEMPFAIL);
	ck_assert_int_eq(ma_smtp_auth_reply_kind(538, true), MA_REPLY_POLICY);
	ck_assert_int_eq(ma_smtp_auth_reply_kind(530, false), MA_REPLY_POLICY);
	ck_assert_int_eq(ma_smtp_auth_reply_kind(501, true), MA_REPLY_REJECTED);
	ck_assert_int_eq(ma_smtp_auth_reply_kind(502, false), MA_REPLY_UNSUPPORTED);
	ck_assert_int_eq(ma_smtp_auth_reply_kind(500, false), MA_REPLY_UNSUPPORTED);
	ck_assert_int_eq(ma_smtp_auth_reply_kind(250, true), -1);
	ck_assert_int_eq(ma_smtp_auth_reply_kind(220, false), -1);
	ck_assert_int_eq(ma_smtp_auth_reply_kind(354, false), -1);
}
END_TEST

START_TEST(helo_domain_syntax)
{
	const char *good[] = { "mail", "mail.example.org", "a", "x1-2.example", "MAIL.Example.ORG",
	                       "host.example.org.", "123", NULL };
	const char *bad[] = { "", ".", "-mail", "mail-", "ma_il", "a..b", ".a", "a b",
	                      "mail.-x.org", "mail.x-.org", "host\r\nRCPT", "\xc3\xa9t\xc3\xa9",
	                      "[127.0.0.1]", NULL };
	for (size_t i = 0; good[i] != NULL; i++)
		ck_assert_msg(ma_valid_domain(good[i], strlen(good[i])), "refused %s", good[i]);
	for (size_t i = 0; bad[i] != NULL; i++)
		ck_assert_msg(!ma_valid_domain(bad[i], strlen(bad[i])), "accepted %s", bad[i]);
	char label[70];
	memset(label, 'a', 64);
	label[64] = '\0';
	ck_assert(!ma_valid_domain(label, 64));
	ck_assert(ma_valid_domain(label, 63));

	ck_assert(ma_valid_address_literal("[192.0.2.1]", 11));
	ck_assert(ma_valid_address_literal("[IPv6:2001:db8::1]", 18));
	ck_assert(!ma_valid_address_literal("[]", 2));
	ck_assert(!ma_valid_address_literal("[1.2.3.4", 8));
	ck_assert(!ma_valid_address_literal("[1.2.3.4]\r\n", 11));
	ck_assert(!ma_valid_address_literal("[1 2]", 5));
}
END_TEST

START_TEST(helo_name_choice)
{
	char buf[MA_SMTP_HELO_MAX];
	ck_assert_int_eq(ma_smtp_helo_name("client.example.org", "ignored", NULL, 0, buf,
	                                   sizeof(buf)), 0);
	ck_assert_str_eq(buf, "client.example.org");
	ck_assert_int_eq(ma_smtp_helo_name("[192.0.2.7]", "host", NULL, 0, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "[192.0.2.7]");
	/* A configured name is sent as is: nothing that could split a command. */
	ck_assert_int_eq(ma_smtp_helo_name("x\r\nRCPT TO:<a@b>", "host", NULL, 0, buf,
	                                   sizeof(buf)), -1);
	ck_assert_int_eq(ma_smtp_helo_name("two words", "host", NULL, 0, buf, sizeof(buf)), -1);

	/* Empty configuration: the host name, dotted or not. */
	ck_assert_int_eq(ma_smtp_helo_name("", "node1", NULL, 0, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "node1");
	ck_assert_int_eq(ma_smtp_helo_name(NULL, "node1.example.net", NULL, 0, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "node1.example.net");

	/* Not a valid name: the address literal of the local socket. */
	struct sockaddr_in in;
	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.1", &in.sin_addr);
	ck_assert_int_eq(ma_smtp_helo_name(NULL, "my_host", (struct sockaddr *)&in, sizeof(in),
	                                   buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "[192.0.2.1]");
	struct sockaddr_in6 in6;
	memset(&in6, 0, sizeof(in6));
	in6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
	ck_assert_int_eq(ma_smtp_helo_name(NULL, "", (struct sockaddr *)&in6, sizeof(in6),
	                                   buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "[IPv6:2001:db8::1]");
	ck_assert_int_eq(ma_smtp_helo_name(NULL, "bad host", NULL, 0, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "[127.0.0.1]");
	/* Too small a buffer is an error, never a truncated name. */
	ck_assert_int_eq(ma_smtp_helo_name("client.example.org", NULL, NULL, 0, buf, 5), -1);
}
END_TEST

/* ======================================================================== */
/* Dialogues against tests/fake/fake_smtp.py                                */
/* ======================================================================== */

struct run {
	char label[96];
	enum ma_err err;
	struct ma_result res;
	long elapsed_ms;
	struct fake_result fr;
	char log[64 * 1024];         /* every log line, debug included */
	size_t log_len;
};

static void capture_emit(void *arg, int priority, const char *line)
{
	struct run *r = arg;
	(void)priority;
	int n = snprintf(r->log + r->log_len, sizeof(r->log) - r->log_len, "%s\n", line);
	if (n > 0 && (size_t)n < sizeof(r->log) - r->log_len)
		r->log_len += (size_t)n;
}

static void dump(const struct run *r)
{
	fprintf(stderr, "%s: -> %s (%s) in %ld ms, mechanism \"%s\", tls \"%s\"\n"
	        "---- client log ----\n%s", r->label, ma_err_name(r->err), r->res.detail,
	        r->elapsed_ms, r->res.mechanism, r->res.tls_version, r->log);
	fake_dump(r->label, &r->fr);
}

/* fake_smtp.py playing SCRIPT, for the test user and password. */
static int smtp_start(struct fake_server *fs, const char *label, const char *script)
{
	const char *lead[] = { "--scenario", label, "--script", script, NULL };
	const char *extra[] = { "--user", USER, "--password", PASS, NULL };
	return fake_spawn(fs, "fake_smtp.py", lead, extra);
}

static struct ma_config *make_config(const char *label, const char *mode, unsigned port,
                                     const char *global_extra, const char *server_extra)
{
	char conf[2048], err[512];
	struct ma_config *cfg = NULL;
	int len = snprintf(conf, sizeof(conf),
	                   "timeout = %d\n"
	                   "ca_file = \"%s/ca.pem\"\n"
	                   "%s\n"
	                   "server fake {\n"
	                   "  protocol = smtp\n"
	                   "  host = \"127.0.0.1\"\n"
	                   "  port = %u\n"
	                   "  tls = %s\n"
	                   "  %s\n"
	                   "}\n",
	                   TIMEOUT_S, getenv("MA_TEST_CERTS"), global_extra ? global_extra : "",
	                   port, mode, server_extra ? server_extra : "");
	ck_assert(len > 0 && (size_t)len < sizeof(conf));
	enum ma_err ce = ma_config_parse(conf, (size_t)len, "fake-smtp.conf", &cfg, err, sizeof(err));
	ck_assert_msg(ce == MA_OK, "%s: ma_config_parse: %s: %s\n%s", label, ma_err_name(ce), err, conf);
	return cfg;
}

/*
 * Run SCRIPT on the fake server, authenticate alice/PASS in MODE against it
 * (GLOBAL / SERVER: extra configuration lines), wait for the server and load
 * its record.  Then the checks every case shares: the verdict is reported
 * consistently, and no credential byte reached the server before TLS or
 * the log.
 */
static void run_case(struct run *r, const char *label, const char *mode, const char *script,
                     const char *global, const char *server)
{
	struct fake_server fs;
	struct ma_log log = { .emit = capture_emit, .arg = r, .debug = true };

	memset(r, 0, sizeof(*r));
	snprintf(r->label, sizeof(r->label), "%s/%s", label, mode);
	ck_assert_msg(smtp_start(&fs, label, script) == 0, "%s: fake server did not start", r->label);
	struct ma_config *cfg = make_config(r->label, mode, fs.port, global, server);
	long t0 = fake_now_ms();
	r->err = ma_authenticate(cfg, USER, PASS, &log, &r->res);
	r->elapsed_ms = fake_now_ms() - t0;
	ma_config_free(&cfg);

	int rc = fake_finish(&fs, &r->fr, SERVER_WAIT_MS);
	if (rc != 0 || getenv("MA_FAKE_VERBOSE") != NULL)
		dump(r);
	ck_assert_msg(rc == 0, "%s: the server's record is missing or malformed", r->label);
	ck_assert_msg(r->res.err == r->err, "%s: res.err %s != returned %s", r->label,
	              ma_err_name(r->res.err), ma_err_name(r->err));
	ck_assert_msg(r->elapsed_ms < (TIMEOUT_S + 1) * 1000L, "%s: took %ld ms", r->label,
	              r->elapsed_ms);
	for (size_t i = 0; i < N_SECRET_FORMS; i++) {
		if (fake_plain_contains(&r->fr, secret_forms[i]) ||
		    strstr(r->log, secret_forms[i]) != NULL)
			dump(r);
		ck_assert_msg(!fake_plain_contains(&r->fr, secret_forms[i]),
		              "%s: \"%s\" reached the server before TLS", r->label, secret_forms[i]);
		ck_assert_msg(strstr(r->log, secret_forms[i]) == NULL,
		              "%s: \"%s\" reached the log", r->label, secret_forms[i]);
	}
	/* SPEC 2: no AUTH (not even the command) before TLS. */
	ck_assert_msg(!fake_plain_contains(&r->fr, "AUTH"), "%s: AUTH before TLS", r->label);
	/* SPEC 2: HELO is never a fallback. */
	ck_assert_msg(!fake_any_contains(&r->fr, "HELO "), "%s: HELO sent", r->label);
}

static void expect_err(const struct run *r, enum ma_err want)
{
	if (r->err != want)
		dump(r);
	ck_assert_msg(r->err == want, "%s: got %s (%s), want %s", r->label, ma_err_name(r->err),
	              r->res.detail, ma_err_name(want));
}

/* 0 clean, 1 the client broke a rule (see the transcript), 4 no handshake. */
static void expect_status(const struct run *r, int want)
{
	if (r->fr.status != want)
		dump(r);
	ck_assert_msg(r->fr.status == want, "%s: fake server exit status %d, want %d", r->label,
	              r->fr.status, want);
}

static void expect_mech(const struct run *r, const char *want)
{
	if (strcmp(r->res.mechanism, want) != 0)
		dump(r);
	ck_assert_str_eq(r->res.mechanism, want);
}

/* Script pieces.  In "send" arguments, \\r\\n (a backslash escape for the
 * fake server) puts several reply lines into one write. */
#define GREET "send 220 fake.test ESMTP ready\n"
#define EHLO_PLAIN_STARTTLS \
	"expect EHLO \n" \
	"send 250-fake.test hello\\r\\n250-PIPELINING\\r\\n250-SIZE 1000\\r\\n250 STARTTLS\n"
#define STARTTLS_GO \
	"expect= STARTTLS\n" \
	"send 220 2.0.0 Ready to start TLS\n" \
	"tls\n"
#define PRE_TLS GREET EHLO_PLAIN_STARTTLS STARTTLS_GO
#define EHLO_TLS(caps) \
	"expect EHLO \n" \
	"send 250-fake.test hello\\r\\n250-PIPELINING\\r\\n" caps "\n"
#define PLAIN_OK "expect= AUTH PLAIN {PLAIN}\nsend 235 2.7.0 Authentication successful\n"
#define QUIT "expect= QUIT\n"
/* AUTH LOGIN with the usual "Username:" / "Password:" prompts, up to the verdict. */
#define LOGIN_EXCHANGE \
	"expect= AUTH LOGIN\n" \
	"send 334 VXNlcm5hbWU6\n" \
	"expect= {USER}\n" \
	"send 334 UGFzc3dvcmQ6\n" \
	"expect= {PASS}\n"

START_TEST(starttls_plain_ok)
{
	static struct run r;
	/* AUTH is offered before TLS with LOGIN only, after TLS with PLAIN:
	 * the list from after TLS is the one used (RFC 3207 4.2). */
	run_case(&r, "starttls-plain", "starttls",
	         GREET
	         "expect EHLO \n"
	         "send 250-fake.test\\r\\n250-AUTH LOGIN\\r\\n250 STARTTLS\n"
	         STARTTLS_GO
	         EHLO_TLS("250 AUTH PLAIN") PLAIN_OK QUIT, NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_mech(&r, "PLAIN");
	ck_assert(fake_plain_contains(&r.fr, "EHLO "));
	ck_assert(fake_plain_contains(&r.fr, "STARTTLS\r\n"));
	ck_assert(fake_mem_contains(r.fr.tls, r.fr.tls_len, "EHLO "));
	ck_assert(fake_mem_contains(r.fr.tls, r.fr.tls_len, "QUIT\r\n"));
	/* The debug log shows the exchange, the payload redacted. */
	ck_assert(strstr(r.log, "C: AUTH PLAIN <redacted>") != NULL);
	ck_assert(strstr(r.log, "S: 235 2.7.0") != NULL);
}
END_TEST

START_TEST(implicit_plain_ok)
{
	static struct run r;
	run_case(&r, "implicit-plain", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH=PLAIN") PLAIN_OK QUIT, NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_mech(&r, "PLAIN");
	ck_assert_uint_eq(r.fr.plain_len, 0);
}
END_TEST

START_TEST(multiline_greeting)
{
	static struct run r;
	run_case(&r, "multiline-greeting", "implicit",
	         "tls\n"
	         "send 220-fake.test ESMTP\\r\\n220-Authorized use only\\r\\n220 ready\n"
	         EHLO_TLS("250 AUTH PLAIN LOGIN") PLAIN_OK QUIT, NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
}
END_TEST

START_TEST(ehlo_name_configured)
{
	static struct run r;
	run_case(&r, "helo-name", "implicit",
	         "tls\n" GREET
	         "expect= EHLO client.example.org\n"
	         "send 250-fake.test\\r\\n250 AUTH PLAIN\n" PLAIN_OK QUIT,
	         "helo_name = \"client.example.org\"", NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
}
END_TEST

START_TEST(ehlo_name_default)
{
	static struct run r;
	char host[256] = { 0 }, expect[512], script[1024];
	ck_assert_int_eq(gethostname(host, sizeof(host) - 1), 0);
	snprintf(expect, sizeof(expect), "EHLO %s",
	         ma_valid_domain(host, strlen(host)) ? host : "[127.0.0.1]");
	snprintf(script, sizeof(script), "tls\n" GREET "expect= %s\nsend 250-fake.test\\r\\n250 AUTH PLAIN\n"
	         PLAIN_OK QUIT, expect);
	run_case(&r, "helo-default", "implicit", script, NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
}
END_TEST

START_TEST(stripped_starttls)
{
	static struct run r;
	/* A man in the middle removed STARTTLS and offers AUTH in plaintext. */
	run_case(&r, "stripped-starttls", "starttls",
	         GREET
	         "expect EHLO \n"
	         "send 250-fake.test\\r\\n250-AUTH PLAIN LOGIN\\r\\n250 8BITMIME\n"
	         QUIT, NULL, NULL);
	expect_err(&r, MA_UNAVAILABLE);
	expect_status(&r, 0);
	ck_assert(!fake_plain_contains(&r.fr, "STARTTLS"));
	ck_assert_uint_eq(r.fr.tls_len, 0);
}
END_TEST

START_TEST(starttls_refused_454)
{
	static struct run r;
	run_case(&r, "starttls-454", "starttls",
	         GREET EHLO_PLAIN_STARTTLS
	         "expect= STARTTLS\n"
	         "send 454 4.7.0 TLS not available due to temporary reason\n"
	         QUIT, NULL, NULL);
	expect_err(&r, MA_UNAVAILABLE);
	expect_status(&r, 0);
	ck_assert_uint_eq(r.fr.tls_len, 0);
}
END_TEST

START_TEST(starttls_refused_502)
{
	static struct run r;
	run_case(&r, "starttls-502", "starttls",
	         GREET EHLO_PLAIN_STARTTLS
	         "expect= STARTTLS\n"
	         "send 502 5.5.1 Command not implemented\n"
	         QUIT, NULL, NULL);
	expect_err(&r, MA_UNAVAILABLE);
	expect_status(&r, 0);
}
END_TEST

START_TEST(starttls_injection)
{
	static struct run r;
	/* CVE-2011-0411 family: plaintext behind the 220, in the same write,
	 * would be read as the answer to the first command after TLS. */
	run_case(&r, "starttls-injection", "starttls",
	         GREET EHLO_PLAIN_STARTTLS
	         "expect= STARTTLS\n"
	         "send 220 Ready\\r\\n250-fake.test\\r\\n250 AUTH PLAIN\n"
	         "tls\n" EHLO_TLS("250 AUTH PLAIN") PLAIN_OK, NULL, NULL);
	expect_err(&r, MA_PROTOCOL);
	expect_status(&r, 4);           /* the client never started the handshake */
	ck_assert_uint_eq(r.fr.tls_len, 0);
	ck_assert(!fake_plain_contains(&r.fr, "QUIT"));
}
END_TEST

START_TEST(auth_only_after_tls)
{
	static struct run r;
	run_case(&r, "auth-after-tls", "starttls",
	         PRE_TLS EHLO_TLS("250 AUTH PLAIN LOGIN") PLAIN_OK QUIT, NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
}
END_TEST

START_TEST(auth_only_before_tls)
{
	static struct run r;
	/* AUTH before TLS, none after: what was learned before TLS is
	 * discarded (RFC 3207 4.2), so there is nothing to authenticate with,
	 * and success without authentication is never an option. */
	run_case(&r, "auth-before-tls-only", "starttls",
	         GREET
	         "expect EHLO \n"
	         "send 250-fake.test\\r\\n250-AUTH PLAIN LOGIN\\r\\n250 STARTTLS\n"
	         STARTTLS_GO
	         EHLO_TLS("250 8BITMIME") QUIT, NULL, NULL);
	expect_err(&r, MA_NO_MECH);
	expect_status(&r, 0);
	ck_assert(!fake_any_contains(&r.fr, "AUTH"));
}
END_TEST

START_TEST(login_standard_prompts)
{
	static struct run r;
	run_case(&r, "login-standard", "starttls",
	         PRE_TLS EHLO_TLS("250 AUTH LOGIN")
	         LOGIN_EXCHANGE
	         "send 235 2.7.0 Authentication successful\n" QUIT, NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_mech(&r, "LOGIN");
	ck_assert(strstr(r.log, "C: <redacted>") != NULL);
}
END_TEST

START_TEST(login_unusual_prompts)
{
	static struct run r;
	/* "Who are you?" / "Secret, please": the prompt text does not matter,
	 * the first answer is the user name, the second the password (SPEC 3). */
	run_case(&r, "login-unusual", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH=LOGIN")
	         "expect= AUTH LOGIN\n"
	         "send 334 V2hvIGFyZSB5b3U/\n"
	         "expect= {USER}\n"
	         "send 334 U2VjcmV0LCBwbGVhc2U=\n"
	         "expect= {PASS}\n"
	         "send 235 ok\n" QUIT, NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_mech(&r, "LOGIN");
}
END_TEST

START_TEST(login_microsoft365_style)
{
	static struct run r;
	/* smtp.office365.com:587 after STARTTLS: "250-AUTH LOGIN XOAUTH2" is all
	 * it offers; XOAUTH2 is not ours, LOGIN is, with its base64 prompts
	 * "Username:" / "Password:". */
	run_case(&r, "login-m365", "starttls",
	         PRE_TLS "expect EHLO \n"
	         "send 250-SN4PR0401CA0001.outlook.office365.com Hello [192.0.2.1]\\r\\n"
	         "250-SIZE 157286400\\r\\n250-PIPELINING\\r\\n250-AUTH LOGIN XOAUTH2\\r\\n"
	         "250 8BITMIME\n"
	         LOGIN_EXCHANGE
	         "send 235 2.7.0 Authentication successful\n" QUIT, NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_mech(&r, "LOGIN");
}
END_TEST

START_TEST(login_empty_prompts)
{
	static struct run r;
	run_case(&r, "login-empty", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH LOGIN")
	         "expect= AUTH LOGIN\n"
	         "send 334\n"
	         "expect= {USER}\n"
	         "send 334 \n"
	         "expect= {PASS}\n"
	         "send 235 ok\n" QUIT, NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
}
END_TEST

START_TEST(login_invalid_base64)
{
	static struct run r;
	/* A challenge that is not base64 is answered with "*" (RFC 4954 4). */
	run_case(&r, "login-bad-base64", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH LOGIN")
	         "expect= AUTH LOGIN\n"
	         "send 334 Username:\n"
	         "expect= *\n"
	         "send 501 5.7.0 Authentication aborted\n", NULL, NULL);
	expect_err(&r, MA_PROTOCOL);
	expect_status(&r, 0);
	ck_assert(fake_mem_contains(r.fr.tls, r.fr.tls_len, "\r\n*\r\n"));
	ck_assert(!fake_mem_contains(r.fr.tls, r.fr.tls_len, "YWxpY2U="));
}
END_TEST

START_TEST(login_third_challenge)
{
	static struct run r;
	run_case(&r, "login-third", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH LOGIN")
	         LOGIN_EXCHANGE
	         "send 334 VXNlcm5hbWU6\n"
	         "expect= *\n", NULL, NULL);
	expect_err(&r, MA_PROTOCOL);
	expect_status(&r, 0);
}
END_TEST

START_TEST(success_without_authentication)
{
	static struct run r;
	/* 235 before the mechanism ran: never a success (SPEC 4). */
	run_case(&r, "early-235", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH LOGIN")
	         "expect= AUTH LOGIN\n"
	         "send 235 welcome\n" QUIT, NULL, NULL);
	expect_err(&r, MA_PROTOCOL);
	expect_status(&r, 0);
}
END_TEST

START_TEST(rejected_535)
{
	static struct run r;
	/* A rejection is final: no second mechanism with the same password. */
	run_case(&r, "rejected-535", "starttls",
	         PRE_TLS EHLO_TLS("250 AUTH PLAIN LOGIN")
	         "expect= AUTH PLAIN {PLAIN}\n"
	         "send 535 5.7.8 Error: authentication failed: bad credentials\n" QUIT,
	         NULL, NULL);
	expect_err(&r, MA_AUTH_FAILED);
	expect_status(&r, 0);
	expect_mech(&r, "PLAIN");
	ck_assert(strstr(r.res.detail, "535") != NULL);
}
END_TEST

START_TEST(rejected_other_5xx_after_payload)
{
	static struct run r;
	run_case(&r, "rejected-501", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH PLAIN LOGIN")
	         "expect= AUTH PLAIN {PLAIN}\n"
	         "send 501 5.5.2 Cannot decode response\n" QUIT, NULL, NULL);
	expect_err(&r, MA_AUTH_FAILED);
	expect_status(&r, 0);
}
END_TEST

START_TEST(tempfail_454)
{
	static struct run r;
	run_case(&r, "tempfail-454", "starttls",
	         PRE_TLS EHLO_TLS("250 AUTH PLAIN")
	         "expect= AUTH PLAIN {PLAIN}\n"
	         "send 454 4.7.0 Temporary authentication failure\n" QUIT, NULL, NULL);
	expect_err(&r, MA_UNAVAILABLE);
	expect_status(&r, 0);
}
END_TEST

START_TEST(tempfail_421)
{
	static struct run r;
	run_case(&r, "tempfail-421", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH PLAIN")
	         "expect= AUTH PLAIN {PLAIN}\n"
	         "send 421 4.4.2 fake.test Error: timeout exceeded\n"
	         "close\n", NULL, NULL);
	expect_err(&r, MA_UNAVAILABLE);
	expect_status(&r, 0);
}
END_TEST

START_TEST(unsupported_504_then_next)
{
	static struct run r;
	run_case(&r, "504-then-login", "starttls",
	         PRE_TLS EHLO_TLS("250 AUTH PLAIN LOGIN")
	         "expect= AUTH PLAIN {PLAIN}\n"
	         "send 504 5.5.4 Unrecognized authentication type\n"
	         LOGIN_EXCHANGE
	         "send 235 ok\n" QUIT, NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_mech(&r, "LOGIN");
}
END_TEST

START_TEST(unsupported_scram_534_then_plain)
{
	static struct run r;
	/* SCRAM-SHA-256 is preferred; 534 "too weak" (before any verdict on the
	 * password) moves on to the next mechanism. */
	run_case(&r, "534-then-plain", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH SCRAM-SHA-256 PLAIN")
	         "expect AUTH SCRAM-SHA-256 \n"
	         "send 534 5.7.9 Authentication mechanism is too weak\n"
	         PLAIN_OK QUIT, NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_mech(&r, "PLAIN");
}
END_TEST

START_TEST(unsupported_all)
{
	static struct run r;
	run_case(&r, "504-all", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH PLAIN LOGIN")
	         "expect= AUTH PLAIN {PLAIN}\n"
	         "send 504 5.5.4 no\n"
	         "expect= AUTH LOGIN\n"
	         "send 502 5.5.1 no\n" QUIT, NULL, NULL);
	expect_err(&r, MA_NO_MECH);
	expect_status(&r, 0);
}
END_TEST

START_TEST(xplain_is_not_plain)
{
	static struct run r;
	run_case(&r, "xplain", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH XPLAIN PLAINX GSSAPI") QUIT, NULL, NULL);
	expect_err(&r, MA_NO_MECH);
	expect_status(&r, 0);
	ck_assert(!fake_any_contains(&r.fr, "AUTH"));
}
END_TEST

START_TEST(mechanisms_config_restricts)
{
	static struct run r;
	/* Only LOGIN allowed by the configuration: PLAIN is not tried. */
	run_case(&r, "config-login-only", "implicit",
	         "tls\n" GREET EHLO_TLS("250 auth plain login")
	         LOGIN_EXCHANGE
	         "send 235 ok\n" QUIT, NULL, "mechanisms = {\"LOGIN\"}");
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_mech(&r, "LOGIN");
}
END_TEST

START_TEST(unexpected_reply_to_auth)
{
	static struct run r;
	run_case(&r, "auth-250", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH PLAIN")
	         "expect= AUTH PLAIN {PLAIN}\n"
	         "send 250 2.0.0 OK\n", NULL, NULL);
	expect_err(&r, MA_PROTOCOL);
	expect_status(&r, 0);
}
END_TEST

START_TEST(multiline_challenge)
{
	static struct run r;
	run_case(&r, "multiline-334", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH LOGIN")
	         "expect= AUTH LOGIN\n"
	         "send 334-VXNlcm5hbWU6\\r\\n334 VXNlcm5hbWU6\n", NULL, NULL);
	expect_err(&r, MA_PROTOCOL);
	expect_status(&r, 0);
	ck_assert(!fake_mem_contains(r.fr.tls, r.fr.tls_len, "YWxpY2U="));
}
END_TEST

START_TEST(greeting_554)
{
	static struct run r;
	/* RFC 5321 3.1: "554 No SMTP service here"; QUIT is still polite. */
	run_case(&r, "greeting-554", "starttls",
	         "send 554 5.3.2 No SMTP service here\n" QUIT, NULL, NULL);
	expect_err(&r, MA_UNAVAILABLE);
	expect_status(&r, 0);
	ck_assert(!fake_any_contains(&r.fr, "EHLO"));
}
END_TEST

START_TEST(greeting_421)
{
	static struct run r;
	run_case(&r, "greeting-421", "implicit",
	         "tls\nsend 421 4.3.2 Service shutting down\nclose\n", NULL, NULL);
	expect_err(&r, MA_UNAVAILABLE);
	expect_status(&r, 0);
}
END_TEST

START_TEST(greeting_malformed)
{
	static struct run r;
	run_case(&r, "greeting-malformed", "starttls", "send 22 ready\n", NULL, NULL);
	expect_err(&r, MA_PROTOCOL);
	expect_status(&r, 0);
	ck_assert_uint_eq(r.fr.plain_len, 0);
}
END_TEST

START_TEST(greeting_not_smtp)
{
	static struct run r;
	/* An IMAP server on the submission port. */
	run_case(&r, "greeting-imap", "implicit", "tls\nsend * OK IMAP4rev1 ready\n", NULL, NULL);
	expect_err(&r, MA_PROTOCOL);
	expect_status(&r, 0);
}
END_TEST

START_TEST(ehlo_rejected_500)
{
	static struct run r;
	/* SPEC 2: EHLO refused is a failure; HELO is never a fallback. */
	run_case(&r, "ehlo-500", "starttls",
	         GREET
	         "expect EHLO \n"
	         "send 500 5.5.1 Command unrecognized\n" QUIT, NULL, NULL);
	expect_err(&r, MA_PROTOCOL);
	expect_status(&r, 0);
	ck_assert(!fake_any_contains(&r.fr, "HELO"));
}
END_TEST

START_TEST(ehlo_after_tls_421)
{
	static struct run r;
	run_case(&r, "ehlo-421", "starttls",
	         PRE_TLS
	         "expect EHLO \n"
	         "send 421 4.7.0 fake.test closing\n"
	         "close\n", NULL, NULL);
	expect_err(&r, MA_UNAVAILABLE);
	expect_status(&r, 0);
}
END_TEST

START_TEST(ehlo_mismatched_codes)
{
	static struct run r;
	run_case(&r, "ehlo-mismatch", "implicit",
	         "tls\n" GREET
	         "expect EHLO \n"
	         "send 250-fake.test\\r\\n251-AUTH PLAIN\\r\\n250 8BITMIME\n", NULL, NULL);
	expect_err(&r, MA_PROTOCOL);
	expect_status(&r, 0);
	ck_assert(!fake_any_contains(&r.fr, "AUTH"));
}
END_TEST

START_TEST(ehlo_flood)
{
	static struct run r;
	/* An endless 250- reply is bounded (SPEC 2), not read forever. */
	run_case(&r, "ehlo-flood", "starttls",
	         GREET "expect EHLO \nflood 250-PIPELINING\n", NULL, NULL);
	expect_err(&r, MA_PROTOCOL);
	ck_assert(r.elapsed_ms < 2000);
	ck_assert_str_eq(r.res.detail, "reply too long");
	ck_assert(!fake_any_contains(&r.fr, "STARTTLS"));
}
END_TEST

START_TEST(greeting_flood)
{
	static struct run r;
	run_case(&r, "greeting-flood", "implicit", "tls\nflood 220-welcome\n", NULL, NULL);
	expect_err(&r, MA_PROTOCOL);
	ck_assert(r.elapsed_ms < 2000);
	ck_assert(!fake_any_contains(&r.fr, "EHLO"));
}
END_TEST

START_TEST(reset_before_tls)
{
	static struct run r;
	run_case(&r, "reset-plain", "starttls", GREET "expect EHLO \nreset\n", NULL, NULL);
	expect_err(&r, MA_UNAVAILABLE);
	expect_status(&r, 0);
}
END_TEST

START_TEST(reset_during_auth)
{
	static struct run r;
	run_case(&r, "reset-auth", "starttls",
	         PRE_TLS EHLO_TLS("250 AUTH PLAIN") "expect= AUTH PLAIN {PLAIN}\nreset\n",
	         NULL, NULL);
	expect_err(&r, MA_UNAVAILABLE);
	expect_status(&r, 0);
}
END_TEST

START_TEST(close_after_greeting)
{
	static struct run r;
	run_case(&r, "close-greeting", "starttls", GREET "expect EHLO \nclose\n", NULL, NULL);
	expect_err(&r, MA_UNAVAILABLE);
	expect_status(&r, 0);
}
END_TEST

START_TEST(silent_server_deadline)
{
	static struct run r;
	/* One deadline for everything (SPEC 2). */
	run_case(&r, "silent", "starttls", GREET "expect EHLO \nsleep 8\n", NULL, NULL);
	expect_err(&r, MA_TIMEOUT);
	ck_assert(r.elapsed_ms >= (TIMEOUT_S * 1000L) - 100);
}
END_TEST

START_TEST(scram_sha256_ok)
{
	static struct run r;
	/* SCRAM over SMTP: server-final comes as a 334 challenge (RFC 4954 4
	 * has no additional data with 235), answered with an empty line. */
	run_case(&r, "scram-ok", "starttls",
	         PRE_TLS EHLO_TLS("250 AUTH SCRAM-SHA-256 PLAIN LOGIN")
	         "scram ok\n" QUIT, NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_mech(&r, "SCRAM-SHA-256");
	ck_assert(strstr(r.log, "C: AUTH SCRAM-SHA-256 <redacted>") != NULL);
}
END_TEST

START_TEST(scram_sha256_bad_server_signature)
{
	static struct run r;
	/* A server that cannot prove it knows the password is not believed. */
	run_case(&r, "scram-badsig", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH SCRAM-SHA-256")
	         "scram badsig\n", NULL, NULL);
	ck_assert(r.err != MA_OK);
	expect_err(&r, MA_PROTOCOL);
	expect_status(&r, 0);
}
END_TEST

START_TEST(scram_sha256_rejected_then_plain)
{
	static struct run r;
	/* SPEC 3: a SCRAM rejection retries once with PLAIN (mechanism_fallback
	 * = yes by default), on the same TLS session. */
	run_case(&r, "scram-fallback", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH SCRAM-SHA-256 PLAIN")
	         "scram wrongpass\n" PLAIN_OK QUIT, NULL, NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_mech(&r, "PLAIN");
}
END_TEST

START_TEST(scram_sha256_rejected_no_fallback)
{
	static struct run r;
	run_case(&r, "scram-nofallback", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH SCRAM-SHA-256 PLAIN")
	         "scram wrongpass\n" QUIT, "mechanism_fallback = no", NULL);
	expect_err(&r, MA_AUTH_FAILED);
	expect_status(&r, 0);
	expect_mech(&r, "SCRAM-SHA-256");
}
END_TEST

/*
 * The unbound retry over SMTP: SCRAM-SHA-256-PLUS answered with a bare 535
 * (as a server binding another channel type would) is retried once with
 * SCRAM-SHA-256 before PLAIN is considered; the fallback setting does not
 * matter, and the password itself never goes out.
 */
START_TEST(scram_plus_535_then_unbound)
{
	static struct run r;
	bool fallback = _i == 0;
	run_case(&r, fallback ? "plus-535-unbound" : "plus-535-unbound-nofallback", "implicit",
	         "tls\n" GREET EHLO_TLS("250 AUTH SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN")
	         "expect AUTH SCRAM-SHA-256-PLUS \n"
	         "send 535 5.7.8 Authentication credentials invalid\n"
	         "scram ok\n" QUIT, fallback ? NULL : "mechanism_fallback = no", NULL);
	expect_err(&r, MA_OK);
	expect_status(&r, 0);
	expect_mech(&r, "SCRAM-SHA-256");
	ck_assert_msg(strstr(r.log, "retrying once with SCRAM-SHA-256 without channel binding") != NULL,
	              "%s", r.log);
	ck_assert(strstr(r.log, "AUTH PLAIN") == NULL);
}
END_TEST

/* ---- `mailauth probe` over SMTP ---- */

struct lines {
	char buf[8192];
	size_t len;
};

static void collect(void *arg, const char *line)
{
	struct lines *l = arg;
	int n = snprintf(l->buf + l->len, sizeof(l->buf) - l->len, "%s\n", line);
	if (n > 0 && (size_t)n < sizeof(l->buf) - l->len)
		l->len += (size_t)n;
}

START_TEST(probe_starttls)
{
	struct fake_server fs;
	struct fake_result fr;
	static struct lines out;
	ck_assert_int_eq(smtp_start(&fs, "probe",
	                            GREET
	                            "expect EHLO \n"
	                            "send 250-fake.test\\r\\n250-AUTH LOGIN\\r\\n250 STARTTLS\n"
	                            STARTTLS_GO
	                            EHLO_TLS("250 AUTH PLAIN LOGIN") QUIT), 0);
	struct ma_config *cfg = make_config("probe", "starttls", fs.port, NULL, NULL);
	enum ma_err err = ma_probe(cfg, NULL, NULL, collect, &out);
	ma_config_free(&cfg);
	ck_assert_int_eq(fake_finish(&fs, &fr, SERVER_WAIT_MS), 0);
	if (err != MA_OK || fr.status != 0)
		fprintf(stderr, "%s", out.buf);
	ck_assert_int_eq(err, MA_OK);
	ck_assert_int_eq(fr.status, 0);
	ck_assert(strstr(out.buf, "capabilities before TLS: ") != NULL);
	ck_assert(strstr(out.buf, "capabilities after TLS: PIPELINING AUTH PLAIN LOGIN") != NULL);
	ck_assert(strstr(out.buf, "mechanism: PLAIN") != NULL);
	ck_assert(!fake_any_contains(&fr, "AUTH"));
	fake_result_free(&fr);
}
END_TEST

START_TEST(probe_no_auth)
{
	struct fake_server fs;
	struct fake_result fr;
	static struct lines out;
	ck_assert_int_eq(smtp_start(&fs, "probe-noauth",
	                            "tls\n" GREET EHLO_TLS("250 8BITMIME") QUIT), 0);
	struct ma_config *cfg = make_config("probe-noauth", "implicit", fs.port, NULL, NULL);
	enum ma_err err = ma_probe(cfg, NULL, NULL, collect, &out);
	ma_config_free(&cfg);
	ck_assert_int_eq(fake_finish(&fs, &fr, SERVER_WAIT_MS), 0);
	ck_assert_int_eq(err, MA_NO_MECH);
	ck_assert(strstr(out.buf, "mechanism: none usable") != NULL);
	fake_result_free(&fr);
}
END_TEST

static Suite *smtp_suite(void)
{
	Suite *s = suite_create("smtp");
	TCase *tc = tcase_create("parsers");
	tcase_add_test(tc, reply_line_good);
	tcase_add_test(tc, reply_line_bad);
	tcase_add_test(tc, reply_accumulator);
	tcase_add_test(tc, reply_too_many_lines);
	tcase_add_test(tc, reply_too_many_bytes);
	tcase_add_test(tc, ehlo_auth_forms);
	tcase_add_test(tc, ehlo_exact_tokens);
	tcase_add_test(tc, ehlo_case_insensitive);
	tcase_add_test(tc, ehlo_text_escaped);
	tcase_add_test(tc, auth_reply_kinds);
	tcase_add_test(tc, helo_domain_syntax);
	tcase_add_test(tc, helo_name_choice);
	suite_add_tcase(s, tc);

	tc = tcase_create("dialogues");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, starttls_plain_ok);
	tcase_add_test(tc, implicit_plain_ok);
	tcase_add_test(tc, multiline_greeting);
	tcase_add_test(tc, ehlo_name_configured);
	tcase_add_test(tc, ehlo_name_default);
	tcase_add_test(tc, stripped_starttls);
	tcase_add_test(tc, starttls_refused_454);
	tcase_add_test(tc, starttls_refused_502);
	tcase_add_test(tc, starttls_injection);
	tcase_add_test(tc, auth_only_after_tls);
	tcase_add_test(tc, auth_only_before_tls);
	tcase_add_test(tc, login_standard_prompts);
	tcase_add_test(tc, login_unusual_prompts);
	tcase_add_test(tc, login_microsoft365_style);
	tcase_add_test(tc, login_empty_prompts);
	tcase_add_test(tc, login_invalid_base64);
	tcase_add_test(tc, login_third_challenge);
	tcase_add_test(tc, success_without_authentication);
	tcase_add_test(tc, rejected_535);
	tcase_add_test(tc, rejected_other_5xx_after_payload);
	tcase_add_test(tc, tempfail_454);
	tcase_add_test(tc, tempfail_421);
	tcase_add_test(tc, unsupported_504_then_next);
	tcase_add_test(tc, unsupported_scram_534_then_plain);
	tcase_add_test(tc, unsupported_all);
	tcase_add_test(tc, xplain_is_not_plain);
	tcase_add_test(tc, mechanisms_config_restricts);
	tcase_add_test(tc, unexpected_reply_to_auth);
	tcase_add_test(tc, multiline_challenge);
	tcase_add_test(tc, greeting_554);
	tcase_add_test(tc, greeting_421);
	tcase_add_test(tc, greeting_malformed);
	tcase_add_test(tc, greeting_not_smtp);
	tcase_add_test(tc, ehlo_rejected_500);
	tcase_add_test(tc, ehlo_after_tls_421);
	tcase_add_test(tc, ehlo_mismatched_codes);
	tcase_add_test(tc, ehlo_flood);
	tcase_add_test(tc, greeting_flood);
	tcase_add_test(tc, reset_before_tls);
	tcase_add_test(tc, reset_during_auth);
	tcase_add_test(tc, close_after_greeting);
	tcase_add_test(tc, silent_server_deadline);
	tcase_add_test(tc, scram_sha256_ok);
	tcase_add_test(tc, scram_sha256_bad_server_signature);
	tcase_add_test(tc, scram_sha256_rejected_then_plain);
	tcase_add_test(tc, scram_sha256_rejected_no_fallback);
	tcase_add_loop_test(tc, scram_plus_535_then_unbound, 0, 2);
	tcase_add_test(tc, probe_starttls);
	tcase_add_test(tc, probe_no_auth);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (fake_certs_setup() == NULL)
		return EXIT_FAILURE;
	return ma_unit_run(smtp_suite());
}
