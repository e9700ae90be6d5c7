/*
 * codes.c - the one table of server refusals (codes.h).
 *
 * Sources: RFC 5530 (IMAP response codes), RFC 3463 (enhanced status
 * codes), RFC 4954 section 6 (SMTP AUTH status codes), and the replies
 * that Microsoft 365 and Google send today, byte for byte in
 * tests/unit/test_codes.c.  The first matching row wins: provider rows
 * (a code and a text) come before the generic rows of their code, and the
 * catch-all rows of each protocol come last.
 */
#include "codes.h"

#include <string.h>
#include <strings.h>

#include "sasl.h"

/* Google's remedy, shared by its IMAP and SMTP rows. */
#define GOOGLE_APP_PASSWORD \
	"the user turns on 2-Step Verification, creates an app password at " \
	"myaccount.google.com/apppasswords and uses it instead of the account password " \
	"(Google Workspace: the admin must allow app passwords); see " \
	"support.google.com/accounts/answer/185833"
#define GOOGLE_WEB_LOGIN \
	"the user signs in once at accounts.google.com in a browser to clear the block, " \
	"then uses an app password (myaccount.google.com/apppasswords); less secure apps " \
	"are off since 30 May 2022 (personal) and 30 September 2024 (Workspace); see " \
	"support.google.com/mail/answer/78754"
#define M365_ENABLE_SMTP_AUTH \
	"a Microsoft 365 admin enables SMTP AUTH for the mailbox (Set-CASMailbox -Identity " \
	"USER -SmtpClientAuthenticationDisabled $false) or the tenant (Set-TransportConfig " \
	"-SmtpClientAuthenticationDisabled $false), or the mail must go through OAuth, " \
	"which this module cannot do"

#define IMAP(id, st, code, text, when, cls, meaning, remedy) \
	{ id, MA_CODE_IMAP, st, 0, 0, code, text, when, cls, meaning, remedy }
#define SMTP(id, lo, hi, code, text, when, cls, meaning, remedy) \
	{ id, MA_CODE_SMTP, MA_CODE_ANY_STATUS, lo, hi, code, text, when, cls, meaning, remedy }

static const struct ma_code_row table[] = {
	/* ---- IMAP: providers ---- */
	IMAP("google-imap-app-password", MA_CODE_NO, "ALERT",
	     "Application-specific password required", MA_CODE_ALWAYS, MA_CODE_POLICY,
	     "Google accepts only an app password for this account over IMAP "
	     "(2-Step Verification is on)", GOOGLE_APP_PASSWORD),
	IMAP("google-imap-web-login", MA_CODE_NO, "ALERT",
	     "Please log in via your web browser", MA_CODE_ALWAYS, MA_CODE_POLICY,
	     "Google blocked this sign-in (suspicious, or a password where only app "
	     "passwords are accepted)", GOOGLE_WEB_LOGIN),
	/* ---- IMAP: RFC 5530 section 3 ---- */
	IMAP("imap-unavailable", MA_CODE_ANY_STATUS, "UNAVAILABLE", NULL, MA_CODE_ALWAYS,
	     MA_CODE_TEMPORARY, "the server cannot check passwords right now (RFC 5530 UNAVAILABLE)",
	     "temporary: the next server is tried; if it lasts, check the mail server's "
	     "authentication backend"),
	IMAP("imap-authenticationfailed", MA_CODE_ANY_STATUS, "AUTHENTICATIONFAILED", NULL,
	     MA_CODE_ALWAYS, MA_CODE_REJECTED,
	     "the server rejected the credentials (RFC 5530 AUTHENTICATIONFAILED)",
	     "check the password and the login name (login, lowercase)"),
	IMAP("imap-authorizationfailed", MA_CODE_ANY_STATUS, "AUTHORIZATIONFAILED", NULL,
	     MA_CODE_ALWAYS, MA_CODE_REJECTED,
	     "the server does not let this identity log in (RFC 5530 AUTHORIZATIONFAILED)",
	     "check the login name (login, lowercase)"),
	IMAP("imap-expired", MA_CODE_ANY_STATUS, "EXPIRED", NULL, MA_CODE_ALWAYS, MA_CODE_POLICY,
	     "the password has expired at the mail server (RFC 5530 EXPIRED)",
	     "the user sets a new password with the mail provider"),
	IMAP("imap-privacyrequired", MA_CODE_ANY_STATUS, "PRIVACYREQUIRED", NULL, MA_CODE_ALWAYS,
	     MA_CODE_POLICY,
	     "the server wants more privacy for this login (RFC 5530 PRIVACYREQUIRED), "
	     "although it came over verified TLS",
	     "ask the mail administrator which TLS version or client certificate the server "
	     "requires (tls_min_version)"),
	IMAP("imap-contactadmin", MA_CODE_ANY_STATUS, "CONTACTADMIN", NULL, MA_CODE_ALWAYS,
	     MA_CODE_POLICY, "the server refuses this account (RFC 5530 CONTACTADMIN)",
	     "the user contacts the mail provider's support"),
	IMAP("imap-noperm", MA_CODE_ANY_STATUS, "NOPERM", NULL, MA_CODE_ALWAYS, MA_CODE_POLICY,
	     "the account may not log in this way (RFC 5530 NOPERM)",
	     "the mail administrator allows IMAP logins for this account"),
	IMAP("imap-inuse", MA_CODE_ANY_STATUS, "INUSE", NULL, MA_CODE_ALWAYS, MA_CODE_TEMPORARY,
	     "the account is busy at the server (RFC 5530 INUSE)",
	     "temporary: the next server is tried; try again later"),
	IMAP("imap-limit", MA_CODE_ANY_STATUS, "LIMIT", NULL, MA_CODE_ALWAYS, MA_CODE_TEMPORARY,
	     "the server hit a limit, e.g. too many connections (RFC 5530 LIMIT)",
	     "temporary: the next server is tried; check the server's per-user connection limit"),
	IMAP("imap-serverbug", MA_CODE_ANY_STATUS, "SERVERBUG", NULL, MA_CODE_ALWAYS,
	     MA_CODE_TEMPORARY, "the server reports an internal error (RFC 5530 SERVERBUG)",
	     "temporary: the next server is tried; the mail server's log has the cause"),
	/* ---- IMAP: everything else ---- */
	IMAP("imap-bad", MA_CODE_BAD, NULL, NULL, MA_CODE_ALWAYS, MA_CODE_NEXT_MECH,
	     "the server does not take this mechanism (BAD)", "none: the next mechanism is tried"),
	IMAP("imap-no-after-credentials", MA_CODE_NO, NULL, NULL, MA_CODE_AFTER_PAYLOAD,
	     MA_CODE_REJECTED, "rejected after credentials (NO)",
	     "check the password and the login name (login, lowercase)"),
	IMAP("imap-no-before-credentials", MA_CODE_NO, NULL, NULL, MA_CODE_BEFORE_PAYLOAD,
	     MA_CODE_NEXT_MECH, "the server does not take this mechanism (NO before credentials)",
	     "none: the next mechanism is tried"),

	/* ---- SMTP: providers ---- */
	SMTP("m365-smtp-auth-disabled-tenant", 535, 535, "5.7.139",
	     "SmtpClientAuthentication is disabled for the Tenant", MA_CODE_ALWAYS, MA_CODE_POLICY,
	     "Microsoft 365: SMTP AUTH (Basic) is disabled for the whole tenant",
	     M365_ENABLE_SMTP_AUTH),
	SMTP("m365-smtp-auth-disabled-mailbox", 535, 535, "5.7.139",
	     "SmtpClientAuthentication is disabled for the Mailbox", MA_CODE_ALWAYS, MA_CODE_POLICY,
	     "Microsoft 365: SMTP AUTH (Basic) is disabled for this mailbox",
	     M365_ENABLE_SMTP_AUTH),
	SMTP("m365-smtp-basic-disabled", 535, 535, "5.7.139", "basic authentication is disabled",
	     MA_CODE_ALWAYS, MA_CODE_POLICY,
	     "Microsoft 365: Basic authentication is disabled (tenant authentication policy)",
	     "a Microsoft 365 admin allows Basic authentication for SMTP AUTH in the "
	     "authentication policy and enables SMTP AUTH for the mailbox (Set-CASMailbox "
	     "-SmtpClientAuthenticationDisabled $false), or the mail must go through OAuth"),
	SMTP("m365-smtp-security-defaults", 535, 535, "5.7.139", "security defaults",
	     MA_CODE_ALWAYS, MA_CODE_POLICY,
	     "Microsoft 365: the user is locked by the tenant's security defaults",
	     "a Microsoft 365 admin turns off security defaults (Entra ID, Properties) or "
	     "excludes the user through Conditional Access; SMTP AUTH Basic is blocked while "
	     "they are on"),
	SMTP("m365-smtp-conditional-access", 535, 535, "5.7.139", "did not meet the criteria",
	     MA_CODE_ALWAYS, MA_CODE_POLICY,
	     "Microsoft 365: a Conditional Access or MFA policy refuses this sign-in",
	     "a Microsoft 365 admin checks the Entra ID sign-in log of the user and the "
	     "Conditional Access policies; Basic authentication cannot satisfy MFA"),
	SMTP("m365-smtp-basic-retired", 550, 550, "5.7.30",
	     "Basic authentication is not supported for Client Submission", MA_CODE_ALWAYS,
	     MA_CODE_POLICY,
	     "Microsoft 365: Basic authentication for SMTP AUTH is off (disabled by default "
	     "for existing tenants from the end of December 2026)",
	     "a Microsoft 365 admin re-enables SMTP AUTH Basic authentication for the tenant "
	     "or mailbox while Microsoft still allows it (final removal date to be announced "
	     "in the second half of 2027), or the mail must go through OAuth"),
	SMTP("google-smtp-app-password", 534, 534, "5.7.9", "Application-specific password required",
	     MA_CODE_ALWAYS, MA_CODE_POLICY,
	     "Google accepts only an app password for this account (2-Step Verification is on)",
	     GOOGLE_APP_PASSWORD),
	SMTP("google-smtp-web-login", 534, 534, "5.7.14", "log in via your web browser",
	     MA_CODE_ALWAYS, MA_CODE_POLICY,
	     "Google blocked this sign-in (suspicious, or a password where only app passwords "
	     "are accepted)", GOOGLE_WEB_LOGIN),
	/* ---- SMTP: RFC 4954 section 6 ---- */
	SMTP("smtp-credentials-invalid", 535, 535, "5.7.8", NULL, MA_CODE_ALWAYS, MA_CODE_REJECTED,
	     "the server rejected the credentials (535 5.7.8)",
	     "check the password and the login name (login, lowercase)"),
	SMTP("smtp-temporary-auth-failure", 454, 454, "4.7.0", NULL, MA_CODE_ALWAYS,
	     MA_CODE_TEMPORARY, "temporary authentication failure (454 4.7.0)",
	     "temporary: the next server is tried; if it lasts, check the mail server's "
	     "authentication backend"),
	SMTP("smtp-password-transition", 432, 432, NULL, NULL, MA_CODE_ALWAYS, MA_CODE_WEAK_MECH,
	     "the server needs a password transition before this mechanism (432 4.7.12)",
	     "none while another mechanism (PLAIN) is allowed; else allow PLAIN in mechanisms"),
	SMTP("smtp-mechanism-too-weak", 534, 534, NULL, NULL, MA_CODE_ALWAYS, MA_CODE_WEAK_MECH,
	     "the server finds this mechanism too weak (534 5.7.9)",
	     "allow a stronger mechanism in mechanisms (SCRAM), or ask which one the server wants"),
	SMTP("smtp-encryption-required", 538, 538, NULL, NULL, MA_CODE_ALWAYS, MA_CODE_POLICY,
	     "the server requires encryption for this mechanism (538 5.7.11), although the "
	     "session is TLS", "ask the mail administrator what the server requires"),
	SMTP("smtp-auth-refused", 530, 530, NULL, NULL, MA_CODE_ALWAYS, MA_CODE_POLICY,
	     "the server refuses authentication here (530)",
	     "check that this is the submission port and what the server requires "
	     "before AUTH (e.g. a client certificate)"),
	SMTP("smtp-mechanism-unsupported", 504, 504, NULL, NULL, MA_CODE_ALWAYS, MA_CODE_NEXT_MECH,
	     "the server does not take this mechanism (504 5.5.4)",
	     "none: the next mechanism is tried"),
	SMTP("smtp-rejected", 535, 535, NULL, NULL, MA_CODE_ALWAYS, MA_CODE_REJECTED,
	     "rejected after credentials (535)",
	     "check the password and the login name (login, lowercase)"),
	/* ---- SMTP: everything else (RFC 5321 section 4.2.1) ---- */
	SMTP("smtp-temporary", 400, 499, NULL, NULL, MA_CODE_ALWAYS, MA_CODE_TEMPORARY,
	     "the server refused for now (4xx)", "temporary: the next server is tried"),
	SMTP("smtp-refused-after-credentials", 500, 599, NULL, NULL, MA_CODE_AFTER_PAYLOAD,
	     MA_CODE_REJECTED, "rejected after credentials (5xx)",
	     "check the password and the login name; the server's text says more"),
	SMTP("smtp-refused-before-credentials", 500, 599, NULL, NULL, MA_CODE_BEFORE_PAYLOAD,
	     MA_CODE_NEXT_MECH, "the server does not take this mechanism (5xx before credentials)",
	     "none: the next mechanism is tried"),
};

#define N_ROWS (sizeof(table) / sizeof(table[0]))

const struct ma_code_row *ma_codes_table(size_t *n)
{
	*n = N_ROWS;
	return table;
}

const char *ma_code_class_name(enum ma_code_class c)
{
	switch (c) {
	case MA_CODE_REJECTED: return "rejected";
	case MA_CODE_TEMPORARY: return "temporary";
	case MA_CODE_POLICY: return "policy";
	case MA_CODE_NEXT_MECH: return "next-mechanism";
	case MA_CODE_WEAK_MECH: return "weak-mechanism";
	}
	return "unknown";
}

int ma_codes_sasl_reply(const struct ma_code_row *r)
{
	switch (r->cls) {
	case MA_CODE_REJECTED: return MA_REPLY_REJECTED;
	case MA_CODE_TEMPORARY: return MA_REPLY_TEMPFAIL;
	case MA_CODE_POLICY: return MA_REPLY_POLICY;
	case MA_CODE_NEXT_MECH: return MA_REPLY_UNSUPPORTED;
	case MA_CODE_WEAK_MECH: return MA_REPLY_WEAK;
	}
	return MA_REPLY_REJECTED;
}

/* NEEDLE (NUL-terminated) in the LEN bytes of HAY, ignoring ASCII case. */
static bool contains(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	if (n == 0)
		return true;
	for (size_t i = 0; i + n <= len; i++)
		if (strncasecmp(hay + i, needle, n) == 0)
			return true;
	return false;
}

static bool word_is(const char *p, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(p, word, len) == 0;
}

static bool when_ok(enum ma_code_when w, bool payload_sent)
{
	return w == MA_CODE_ALWAYS || (w == MA_CODE_AFTER_PAYLOAD) == payload_sent;
}

const struct ma_code_row *ma_codes_imap(bool bad, const char *code, size_t code_len,
                                        const char *text, size_t text_len, bool payload_sent)
{
	size_t atom = 0;
	while (code != NULL && atom < code_len && code[atom] != ' ')
		atom++;
	if (text == NULL)
		text_len = 0;
	for (size_t i = 0; i < N_ROWS; i++) {
		const struct ma_code_row *r = &table[i];
		if (r->proto != MA_CODE_IMAP || !when_ok(r->when, payload_sent))
			continue;
		if (r->status != MA_CODE_ANY_STATUS && (r->status == MA_CODE_BAD) != bad)
			continue;
		if (r->code != NULL && (code == NULL || !word_is(code, atom, r->code)))
			continue;
		if (r->text != NULL && (text == NULL || !contains(text, text_len, r->text)))
			continue;
		return r;
	}
	return NULL;    /* not reached: the last rows take NO and BAD */
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* 1*3digit at P (LEN bytes left): its length, or 0. */
static size_t digits(const char *p, size_t len)
{
	size_t n = 0;
	while (n < len && n < 4 && is_digit(p[n]))
		n++;
	return n >= 1 && n <= 3 ? n : 0;
}

size_t ma_codes_enhanced(const char *text, size_t len, char class_digit)
{
	/* RFC 3463 section 2: status-code = class "." subject "." detail,
	 * class = "2" / "4" / "5", subject = 1*3digit, detail = 1*3digit;
	 * RFC 2034 section 4: it follows the reply code and its class is the
	 * reply's first digit. */
	if (text == NULL || len < 5 || text[0] != class_digit || text[1] != '.')
		return 0;
	size_t i = 2, d = digits(text + i, len - i);
	if (d == 0)
		return 0;
	i += d;
	if (i >= len || text[i] != '.')
		return 0;
	i++;
	d = digits(text + i, len - i);
	if (d == 0)
		return 0;
	i += d;
	return i == len || text[i] == ' ' ? i : 0;
}

const struct ma_code_row *ma_codes_smtp(int reply, const char *text, size_t text_len,
                                        bool payload_sent)
{
	if (reply < 400 || reply > 599)
		return NULL;
	if (text == NULL)
		text_len = 0;
	size_t elen = ma_codes_enhanced(text, text_len, (char)('0' + reply / 100));
	for (size_t i = 0; i < N_ROWS; i++) {
		const struct ma_code_row *r = &table[i];
		if (r->proto != MA_CODE_SMTP || !when_ok(r->when, payload_sent))
			continue;
		if (reply < r->reply_lo || reply > r->reply_hi)
			continue;
		if (r->code != NULL && (elen == 0 || !word_is(text, elen, r->code)))
			continue;
		if (r->text != NULL && !contains(text, text_len, r->text))
			continue;
		return r;
	}
	return NULL;    /* not reached: the last rows take 4xx and 5xx */
}
