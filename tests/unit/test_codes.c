/*
 * test_codes.c - lib/codes.c, the one table of server refusals: every row
 * is reached by at least one reply (byte-exact provider replies where the
 * row is a provider's), through the same parsers the clients use
 * (ma_imap_parse_line + ma_imap_auth_reply, ma_smtp_reply_add +
 * ma_smtp_auth_reply); near misses fall to the generic rows; the table's
 * strings are fit for the log line; the RFC 3463 enhanced code reader.
 */
#include <stdio.h>
#include <string.h>

#include "codes.h"
#include "imap.h"
#include "sasl.h"
#include "smtp.h"
#include "unit.h"

struct imap_case {
	const char *line;         /* one tagged line, without CRLF */
	bool payload_sent;
	const char *id;           /* expected row */
	int kind;                 /* expected enum ma_sasl_reply */
};

#define POL MA_REPLY_POLICY
#define REJ MA_REPLY_REJECTED
#define TMP MA_REPLY_TEMPFAIL
#define UNS MA_REPLY_UNSUPPORTED
#define WEAK MA_REPLY_WEAK

static const struct imap_case imap_cases[] = {
	/* Gmail, byte for byte (LOGIN and AUTHENTICATE PLAIN answer the same). */
	{ "a2 NO [ALERT] Application-specific password required: "
	  "https://support.google.com/accounts/answer/185833 (Failure)", true,
	  "google-imap-app-password", POL },
	{ "a1 NO [ALERT] Please log in via your web browser: "
	  "https://support.google.com/mail/accounts/answer/78754 (Failure)", true,
	  "google-imap-web-login", POL },
	{ "a2 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)", true,
	  "imap-authenticationfailed", REJ },
	/* Dovecot's texts. */
	{ "a2 NO [UNAVAILABLE] Temporary authentication failure. [mail:2026-12-05 07:00:00]",
	  true, "imap-unavailable", TMP },
	{ "a2 NO [AUTHENTICATIONFAILED] Authentication failed.", false,
	  "imap-authenticationfailed", REJ },
	{ "a2 NO [AUTHORIZATIONFAILED] Authorization failed", true,
	  "imap-authorizationfailed", REJ },
	{ "a2 NO [EXPIRED] Password expired", true, "imap-expired", POL },
	{ "a2 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure "
	  "(SSL/TLS) connections.", true, "imap-privacyrequired", POL },
	{ "a2 NO [CONTACTADMIN] Account disabled", true, "imap-contactadmin", POL },
	{ "a2 NO [NOPERM] IMAP access is disabled for this account", true, "imap-noperm", POL },
	{ "a2 NO [INUSE] Mailbox is locked", true, "imap-inuse", TMP },
	{ "a2 NO [LIMIT] Maximum number of connections from user+IP exceeded "
	  "(mail_max_userip_connections=10)", true, "imap-limit", TMP },
	{ "a2 NO [SERVERBUG] Internal error occurred. Refer to server log for more "
	  "information. [2026-12-05 07:00:00]", true, "imap-serverbug", TMP },
	{ "a2 BAD Unsupported authentication mechanism.", false, "imap-bad", UNS },
	{ "a2 BAD Error in IMAP command AUTHENTICATE: Invalid arguments.", true, "imap-bad", UNS },
	/* Microsoft 365 without Basic auth for IMAP: a plain NO, which cannot
	 * be told from a wrong password. */
	{ "a2 NO AUTHENTICATE failed.", true, "imap-no-after-credentials", REJ },
	{ "a2 NO LOGIN failed.", true, "imap-no-after-credentials", REJ },
	{ "a2 NO Unsupported mechanism", false, "imap-no-before-credentials", UNS },
	/* Near misses: an [ALERT] with another text changes nothing; the text
	 * without the ALERT code is no provider row; case does not matter. */
	{ "a2 NO [ALERT] Your account is locked", true, "imap-no-after-credentials", REJ },
	{ "a2 NO Application-specific password required", true, "imap-no-after-credentials", REJ },
	{ "a2 no [alert] APPLICATION-SPECIFIC password REQUIRED: x", true,
	  "google-imap-app-password", POL },
	{ "a2 NO [UNAVAILABLEX] no", true, "imap-no-after-credentials", REJ },
	{ "a2 NO [EXPIRED2] no", false, "imap-no-before-credentials", UNS },
};

START_TEST(imap_rows)
{
	const struct imap_case *c = &imap_cases[_i];
	struct ma_imap_line l;
	const struct ma_code_row *row = (const void *)1;
	ck_assert_int_eq(ma_imap_parse_line(c->line, strlen(c->line), &l), 0);
	int k = ma_imap_auth_reply(&l, c->payload_sent, &row);
	ck_assert_ptr_nonnull(row);
	ck_assert_msg(strcmp(row->id, c->id) == 0, "%s: got row %s, want %s", c->line, row->id,
	              c->id);
	ck_assert_msg(k == c->kind, "%s: kind %d, want %d", c->line, k, c->kind);
	ck_assert_int_eq(row->proto, MA_CODE_IMAP);
}
END_TEST

START_TEST(imap_not_refusals)
{
	struct ma_imap_line l;
	const struct ma_code_row *row = (const void *)1;
	ck_assert_int_eq(ma_imap_parse_line("a1 OK [ALERT] Password expires in 3 days", 40, &l), 0);
	ck_assert_int_eq(ma_imap_auth_reply(&l, true, &row), MA_REPLY_SUCCESS);
	ck_assert_ptr_null(row);
	ck_assert_int_eq(ma_imap_parse_line("+ ", 2, &l), 0);
	ck_assert_int_eq(ma_imap_auth_reply(&l, true, &row), MA_REPLY_CHALLENGE);
	ck_assert_int_eq(ma_imap_parse_line("* NO [ALERT] x", 14, &l), 0);
	ck_assert_int_eq(ma_imap_auth_reply(&l, true, &row), -1);
}
END_TEST

struct smtp_case {
	const char *reply;        /* lines separated by "\r\n", no final CRLF */
	bool payload_sent;
	const char *id;           /* expected row, NULL: none */
	int kind;
};

static const struct smtp_case smtp_cases[] = {
	/* Microsoft 365, byte for byte (the bracket is the front end and time). */
	{ "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
	  "the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. "
	  "[SN4PR0501CA0057.namprd05.prod.outlook.com 2026-12-05T07:12:31.417Z 08DD1A2B3C4D5E6F]",
	  true, "m365-smtp-auth-disabled-tenant", POL },
	{ "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
	  "the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information. "
	  "[BN9PR03CA0541.namprd03.prod.outlook.com 2026-12-05T07:12:31.417Z 08DD1A2B3C4D5E6F]",
	  true, "m365-smtp-auth-disabled-mailbox", POL },
	{ "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. "
	  "[AM0PR02CA0107.eurprd02.prod.outlook.com 2026-12-05T07:12:31.417Z 08DD1A2B3C4D5E6F]",
	  true, "m365-smtp-basic-disabled", POL },
	{ "535 5.7.139 Authentication unsuccessful, user is locked by your organization's "
	  "security defaults policy. Contact your administrator. "
	  "[MW4PR03CA0123.namprd03.prod.outlook.com 2026-12-05T07:12:31.417Z 08DD1A2B3C4D5E6F]",
	  true, "m365-smtp-security-defaults", POL },
	{ "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to "
	  "be authenticated successfully. Contact your administrator. "
	  "[DM6PR02CA0040.namprd02.prod.outlook.com 2026-12-05T07:12:31.417Z 08DD1A2B3C4D5E6F]",
	  true, "m365-smtp-conditional-access", POL },
	{ "550 5.7.30 Basic authentication is not supported for Client Submission. "
	  "[CH2PR14CA0012.namprd14.prod.outlook.com 2026-12-05T07:12:31.417Z 08DD1A2B3C4D5E6F]",
	  true, "m365-smtp-basic-retired", POL },
	/* A wrong password at Microsoft 365. */
	{ "535 5.7.3 Authentication unsuccessful "
	  "[SN4PR0501CA0057.namprd05.prod.outlook.com 2026-12-05T07:12:31.417Z 08DD1A2B3C4D5E6F]",
	  true, "smtp-rejected", REJ },
	{ "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect. "
	  "[SN4PR0501CA0057.namprd05.prod.outlook.com]", true, "smtp-rejected", REJ },
	/* Google, byte for byte (multi-line, the enhanced code on every line). */
	{ "534-5.7.9 Application-specific password required. For more information, go to\r\n"
	  "534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor "
	  "6a1803df08f44-8ffd82ea9casm7101606d6.42 - gsmtp", true,
	  "google-smtp-app-password", POL },
	{ "534-5.7.14 <https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=AKgnsbt"
	  "Xy1> Please log in via your web browser and\r\n"
	  "534-5.7.14 then try again.\r\n"
	  "534-5.7.14  Learn more at\r\n"
	  "534 5.7.14  https://support.google.com/mail/answer/78754 "
	  "d2-20020a05600c3ac200b003a5c1e916c8sm1234567wms.12 - gsmtp", true,
	  "google-smtp-web-login", POL },
	{ "535-5.7.8 Username and Password not accepted. For more information, go to\r\n"
	  "535 5.7.8  https://support.google.com/mail/?p=BadCredentials "
	  "a640c23a62f3a-a9a0f2cd1e5sm412345466b.45 - gsmtp", true,
	  "smtp-credentials-invalid", REJ },
	{ "421 4.7.0 Try again later, closing connection. (AUTH) "
	  "a640c23a62f3a-a9a0f2cd1e5sm412345466b.45 - gsmtp", true, "smtp-temporary", TMP },
	/* RFC 4954 section 6. */
	{ "454 4.7.0 Temporary authentication failure", true, "smtp-temporary-auth-failure", TMP },
	{ "432 4.7.12 A password transition is needed", false, "smtp-password-transition", WEAK },
	{ "534 5.7.9 Authentication mechanism is too weak", true, "smtp-mechanism-too-weak", WEAK },
	{ "538 5.7.11 Encryption required for requested authentication mechanism", false,
	  "smtp-encryption-required", POL },
	{ "530 5.7.0 Authentication required", false, "smtp-auth-refused", POL },
	{ "504 5.5.4 Unrecognized authentication type", false, "smtp-mechanism-unsupported", UNS },
	{ "504 5.5.4 Unrecognized authentication type", true, "smtp-mechanism-unsupported", UNS },
	/* A code-less 535 stays "rejected after credentials", as before. */
	{ "535 Authentication failed", true, "smtp-rejected", REJ },
	{ "535 Authentication failed", false, "smtp-rejected", REJ },
	{ "501 5.5.2 Cannot decode response", true, "smtp-refused-after-credentials", REJ },
	{ "502 5.5.1 Unrecognized command.", false, "smtp-refused-before-credentials", UNS },
	{ "451 4.3.0 Temporary server error", false, "smtp-temporary", TMP },
	/* Near misses: the provider's text with another code, or an enhanced
	 * code of another class (RFC 2034 4), is no provider row. */
	{ "535 5.7.8 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
	  "Tenant.", true, "smtp-credentials-invalid", REJ },
	{ "535 4.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
	  "the Tenant.", true, "smtp-rejected", REJ },
	{ "535 5.7.1390 SmtpClientAuthentication is disabled for the Tenant", true,
	  "smtp-rejected", REJ },
	{ "535 SmtpClientAuthentication is disabled for the Tenant", true, "smtp-rejected", REJ },
	{ "550 5.7.30 Relay denied", true, "smtp-refused-after-credentials", REJ },
	{ "550 5.7.1 Basic authentication is not supported for Client Submission", true,
	  "smtp-refused-after-credentials", REJ },
	/* The text on a later line of a multi-line reply still counts. */
	{ "535-5.7.139 Authentication unsuccessful,\r\n"
	  "535 5.7.139 SmtpClientAuthentication is disabled for the Tenant.", true,
	  "m365-smtp-auth-disabled-tenant", POL },
	/* Not refusals. */
	{ "235 2.7.0 Authentication successful", true, NULL, MA_REPLY_SUCCESS },
	{ "334 ", false, NULL, MA_REPLY_CHALLENGE },
	{ "250 2.0.0 OK", true, NULL, -1 },
};

/* Feed REPLY line by line into R. */
static void smtp_reply(const char *reply, struct ma_smtp_reply *r)
{
	ma_smtp_reply_init(r);
	const char *p = reply;
	for (;;) {
		const char *e = strstr(p, "\r\n");
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
		int added = ma_smtp_reply_add(r, p, n);
		ck_assert_int_eq(added, e == NULL ? 1 : 0);
		if (e == NULL)
			break;
		p = e + 2;
	}
}

START_TEST(smtp_rows)
{
	const struct smtp_case *c = &smtp_cases[_i];
	struct ma_smtp_reply r;
	const struct ma_code_row *row = (const void *)1;
	smtp_reply(c->reply, &r);
	int k = ma_smtp_auth_reply(&r, c->payload_sent, &row);
	ck_assert_msg(k == c->kind, "%s: kind %d, want %d", c->reply, k, c->kind);
	if (c->id == NULL) {
		ck_assert_ptr_null(row);
		return;
	}
	ck_assert_ptr_nonnull(row);
	ck_assert_msg(strcmp(row->id, c->id) == 0, "%s: got row %s, want %s", c->reply, row->id,
	              c->id);
	ck_assert_int_eq(row->proto, MA_CODE_SMTP);
}
END_TEST

/* Every row of the table is reached by one of the cases above. */
START_TEST(every_row_has_a_case)
{
	size_t n;
	const struct ma_code_row *t = ma_codes_table(&n);
	ck_assert_uint_ge(n, 30);
	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		for (size_t k = 0; k < sizeof(imap_cases) / sizeof(imap_cases[0]); k++)
			seen = seen || strcmp(imap_cases[k].id, t[i].id) == 0;
		for (size_t k = 0; k < sizeof(smtp_cases) / sizeof(smtp_cases[0]); k++)
			seen = seen || (smtp_cases[k].id != NULL && strcmp(smtp_cases[k].id, t[i].id) == 0);
		ck_assert_msg(seen, "row %s has no test case", t[i].id);
	}
}
END_TEST

/* The strings go into meaning="..." remedy="..." of the log line and to a
 * user's terminal: printable ASCII, no double quote, not empty, bounded;
 * ids are unique; a provider row names its provider. */
START_TEST(table_strings)
{
	size_t n;
	const struct ma_code_row *t = ma_codes_table(&n);
	for (size_t i = 0; i < n; i++) {
		const char *s[] = { t[i].id, t[i].meaning, t[i].remedy };
		for (size_t k = 0; k < 3; k++) {
			ck_assert_ptr_nonnull(s[k]);
			ck_assert_uint_gt(strlen(s[k]), 0);
			for (const char *p = s[k]; *p != '\0'; p++)
				ck_assert_msg(*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\',
				              "row %s: byte 0x%02x", t[i].id, (unsigned char)*p);
		}
		/* The meaning is what a user may see (PAM conversation, broker
		 * message): it must fit MA_ALERT_MAX and the wire's 255 bytes. */
		ck_assert_msg(strlen(t[i].meaning) <= MA_ALERT_MAX, "row %s: meaning too long", t[i].id);
		ck_assert_uint_le(strlen(t[i].remedy), 400);
		for (size_t k = i + 1; k < n; k++)
			ck_assert_msg(strcmp(t[i].id, t[k].id) != 0, "id %s twice", t[i].id);
		if (strncmp(t[i].id, "m365-", 5) == 0)
			ck_assert(strstr(t[i].meaning, "Microsoft 365") != NULL);
		if (strncmp(t[i].id, "google-", 7) == 0)
			ck_assert(strstr(t[i].meaning, "Google") != NULL);
		if (t[i].cls == MA_CODE_POLICY)
			ck_assert_msg(strstr(t[i].remedy, "next mechanism") == NULL, "%s", t[i].id);
		ck_assert_str_ne(ma_code_class_name(t[i].cls), "unknown");
	}
	/* The providers' own remedies. */
	for (size_t i = 0; i < n; i++) {
		if (strncmp(t[i].id, "google-", 7) == 0)
			ck_assert(strstr(t[i].remedy, "myaccount.google.com/apppasswords") != NULL);
		if (strncmp(t[i].id, "m365-smtp-auth-disabled", 23) == 0)
			ck_assert(strstr(t[i].remedy, "Set-CASMailbox") != NULL &&
			          strstr(t[i].remedy, "-SmtpClientAuthenticationDisabled $false") != NULL &&
			          strstr(t[i].remedy, "OAuth") != NULL);
	}
}
END_TEST

START_TEST(enhanced_codes)
{
	struct { const char *t; char cls; size_t want; } v[] = {
		{ "5.7.139 text", '5', 7 }, { "5.7.8", '5', 5 }, { "4.7.0 x", '4', 5 },
		{ "5.7.139x", '5', 0 }, { "5.7.1390 x", '5', 0 }, { "5.7. x", '5', 0 },
		{ "5..8 x", '5', 0 }, { "4.7.0 x", '5', 0 }, { "5.7.8", '4', 0 },
		{ "x.7.8", '5', 0 }, { "5.1000.8 x", '5', 0 }, { "", '5', 0 }, { "5.7", '5', 0 },
		{ "2.7.0 ok", '2', 5 },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		ck_assert_msg(ma_codes_enhanced(v[i].t, strlen(v[i].t), v[i].cls) == v[i].want,
		              "%s", v[i].t);
	ck_assert_uint_eq(ma_codes_enhanced(NULL, 5, '5'), 0);
	/* Out of range and absent. */
	ck_assert_ptr_null(ma_codes_smtp(235, "2.7.0 ok", 8, true));
	ck_assert_ptr_null(ma_codes_smtp(600, "", 0, true));
	ck_assert_ptr_nonnull(ma_codes_smtp(535, NULL, 0, true));
	ck_assert_ptr_nonnull(ma_codes_imap(false, NULL, 0, NULL, 0, true));
}
END_TEST

/* Multi-line SMTP text is joined for the table and the log: the repeated
 * enhanced code and its spaces are dropped, the text is cut, not refused. */
START_TEST(smtp_join)
{
	struct ma_smtp_reply r;
	smtp_reply("534-5.7.9 Application-specific password required. For more information, go "
	           "to\r\n534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor x - gsmtp",
	           &r);
	ck_assert_str_eq(r.joined, "5.7.9 Application-specific password required. For more "
	                 "information, go to https://support.google.com/mail/?p=InvalidSecondFactor "
	                 "x - gsmtp");
	smtp_reply("250-one\r\n250-\r\n250 two", &r);
	ck_assert_str_eq(r.joined, "one two");
	/* A code that differs on a later line stays in the text. */
	smtp_reply("535-5.7.8 a\r\n535 5.7.9 b", &r);
	ck_assert_str_eq(r.joined, "5.7.8 a 5.7.9 b");
	/* Long replies: cut at MA_CODES_TEXT_MAX - 1, still terminated. */
	static char line[1200];
	memset(line, 'x', sizeof(line) - 1);
	memcpy(line, "535-5.7.8 ", 10);
	ma_smtp_reply_init(&r);
	ck_assert_int_eq(ma_smtp_reply_add(&r, line, strlen(line)), 0);
	line[3] = ' ';
	ck_assert_int_eq(ma_smtp_reply_add(&r, line, strlen(line)), 1);
	ck_assert_uint_eq(r.joined_len, MA_CODES_TEXT_MAX - 1);
	ck_assert_uint_eq(strlen(r.joined), MA_CODES_TEXT_MAX - 1);
}
END_TEST

static Suite *codes_suite(void)
{
	Suite *s = suite_create("codes");
	TCase *tc = tcase_create("table");
	tcase_add_loop_test(tc, imap_rows, 0, (int)(sizeof(imap_cases) / sizeof(imap_cases[0])));
	tcase_add_loop_test(tc, smtp_rows, 0, (int)(sizeof(smtp_cases) / sizeof(smtp_cases[0])));
	tcase_add_test(tc, imap_not_refusals);
	tcase_add_test(tc, every_row_has_a_case);
	tcase_add_test(tc, table_strings);
	tcase_add_test(tc, enhanced_codes);
	tcase_add_test(tc, smtp_join);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ma_unit_run(codes_suite());
}
