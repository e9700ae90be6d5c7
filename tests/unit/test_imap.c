/*
 * test_imap.c - the IMAP response-line parser, capability parser and the
 * LOGIN command's string quoting (pure functions, no sockets).
 */
#include <string.h>

#include "imap.h"
#include "unit.h"

static struct ma_imap_line parse_ok(const char *s)
{
	struct ma_imap_line l;
	ck_assert_int_eq(ma_imap_parse_line(s, strlen(s), &l), 0);
	return l;
}

static void parse_bad(const char *s)
{
	struct ma_imap_line l;
	ck_assert_msg(ma_imap_parse_line(s, strlen(s), &l) == -1, "accepted: %s", s);
}

START_TEST(greeting_with_capability_code)
{
	struct ma_imap_line l = parse_ok("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready");
	ck_assert_int_eq(l.kind, MA_IMAP_UNTAGGED);
	ck_assert_int_eq(l.status, MA_IMAP_OK);
	ck_assert_uint_eq(l.code_len, strlen("CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN"));
	ck_assert(strncmp(l.code, "CAPABILITY ", 11) == 0);
	ck_assert_uint_eq(l.text_len, 5);
}
END_TEST

START_TEST(statuses)
{
	ck_assert_int_eq(parse_ok("* PREAUTH hi").status, MA_IMAP_PREAUTH);
	ck_assert_int_eq(parse_ok("* BYE go").status, MA_IMAP_BYE);
	ck_assert_int_eq(parse_ok("* ok lower case").status, MA_IMAP_OK);
	struct ma_imap_line l = parse_ok("* CAPABILITY IMAP4rev1 STARTTLS");
	ck_assert_int_eq(l.status, MA_IMAP_NONE);
	ck_assert(strncmp(l.text, "CAPABILITY", 10) == 0);
	l = parse_ok("a1 NO [AUTHENTICATIONFAILED] Authentication failed.");
	ck_assert_int_eq(l.kind, MA_IMAP_TAGGED);
	ck_assert_uint_eq(l.tag_len, 2);
	ck_assert_int_eq(l.status, MA_IMAP_NO);
	ck_assert(strncmp(l.code, "AUTHENTICATIONFAILED", l.code_len) == 0);
	ck_assert_int_eq(parse_ok("a2 BAD what").status, MA_IMAP_BAD);
	ck_assert_int_eq(parse_ok("a3 OK").status, MA_IMAP_OK);
}
END_TEST

START_TEST(continuations)
{
	struct ma_imap_line l = parse_ok("+ ");
	ck_assert_int_eq(l.kind, MA_IMAP_CONTINUATION);
	ck_assert_uint_eq(l.text_len, 0);
	l = parse_ok("+");
	ck_assert_int_eq(l.kind, MA_IMAP_CONTINUATION);
	l = parse_ok("+ VXNlcm5hbWU6");
	ck_assert_uint_eq(l.text_len, 12);
	parse_bad("+x");
}
END_TEST

START_TEST(malformed_lines)
{
	parse_bad("");
	parse_bad("*");
	parse_bad("a1");
	parse_bad("a1 PREAUTH tagged preauth is not a thing");
	parse_bad("a1 FOO bar");
	parse_bad("* OK [CAPABILITY IMAP4rev1 unterminated");
	parse_bad("a+1 OK plus in tag");
	parse_bad("a\"1 OK quote in tag");
	parse_bad(" OK leading space");
}
END_TEST

static struct ma_caps caps_of(const char *s)
{
	struct ma_caps c;
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(ma_imap_parse_caps(s, strlen(s), &c), 0);
	return c;
}

START_TEST(capabilities_exact_tokens)
{
	struct ma_caps c = caps_of("IMAP4rev1 SASL-IR LOGIN-REFERRALS AUTH=PLAIN auth=scram-sha-256 STARTTLS");
	ck_assert(c.known && c.sasl_ir && c.starttls && !c.logindisabled);
	ck_assert_uint_eq(c.mechs, MA_MECH_BIT(MA_MECH_PLAIN) | MA_MECH_BIT(MA_MECH_SCRAM_SHA_256));
	c = caps_of("IMAP4rev1 AUTH=XPLAIN AUTH=PLAIN2 AUTH= XSTARTTLS LOGINDISABLEDX AUTH=LOGIN LOGINDISABLED");
	ck_assert_uint_eq(c.mechs, MA_MECH_BIT(MA_MECH_LOGIN));
	ck_assert(!c.starttls);
	ck_assert(c.logindisabled);
	c = caps_of("IMAP4rev1  AUTH=CRAM-MD5   AUTH=SCRAM-SHA-1-PLUS");
	ck_assert_uint_eq(c.mechs, MA_MECH_BIT(MA_MECH_CRAM_MD5) | MA_MECH_BIT(MA_MECH_SCRAM_SHA_1_PLUS));
}
END_TEST

START_TEST(capability_text_escaped)
{
	struct ma_caps c = caps_of("IMAP4rev1 \x1b[31mRED");
	ck_assert_ptr_null(strchr(c.text, '\x1b'));
	ck_assert_ptr_nonnull(strstr(c.text, "\\x1b"));
}
END_TEST

static const char *astring(const char *s, int expect)
{
	static char buf[256];
	size_t used = 0;
	ck_assert_int_eq(ma_imap_astring(s, strlen(s), buf, sizeof(buf), &used), expect);
	buf[used] = '\0';
	return buf;
}

START_TEST(login_quoting)
{
	ck_assert_str_eq(astring("alice", 1), "\"alice\"");
	ck_assert_str_eq(astring("a \"b\" \\c", 1), "\"a \\\"b\\\" \\\\c\"");
	ck_assert_str_eq(astring("{5}", 1), "\"{5}\"");
	ck_assert_str_eq(astring("", 1), "\"\"");
	/* CR, LF and 8-bit bytes cannot be quoted: literal. */
	ck_assert_str_eq(astring("p\r\nx", 2), "{4}");
	ck_assert_str_eq(astring("gr\xc3\xbc\xc3\x9f", 2), "{6}");
	char small[4];
	size_t used = 0;
	ck_assert_int_eq(ma_imap_astring("toolong", 7, small, sizeof(small), &used), -1);
}
END_TEST

static Suite *imap_suite(void)
{
	Suite *s = suite_create("imap");
	TCase *tc = tcase_create("parsers");
	tcase_add_test(tc, greeting_with_capability_code);
	tcase_add_test(tc, statuses);
	tcase_add_test(tc, continuations);
	tcase_add_test(tc, malformed_lines);
	tcase_add_test(tc, capabilities_exact_tokens);
	tcase_add_test(tc, capability_text_escaped);
	tcase_add_test(tc, login_quoting);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ma_unit_run(imap_suite());
}
