/*
 * fuzz_smtp.c - the pure SMTP parsers (lib/smtp.h): reply lines, the reply
 * accumulator with its bounds, EHLO keyword lines, the mapping of AUTH
 * reply codes, and the EHLO name checks.
 *
 * The input is split at '\n' into lines (without CRLF) that are fed, in
 * order, to one reply accumulator as read_reply() does; a finished or
 * refused reply starts a new one.  Invariants are checked against an
 * independent reading of RFC 5321 section 4.2 and RFC 4954.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "config.h"
#include "sasl.h"
#include "session.h"
#include "names.h"
#include "smtp.h"

static bool digit(char c, char lo, char hi)
{
	return c >= lo && c <= hi;
}

/* Reply-line grammar, written again from RFC 5321 4.2. */
static bool line_ok(const char *l, size_t len, int *code, bool *last)
{
	if (len < 3 || !digit(l[0], '2', '5') || !digit(l[1], '0', '5') || !digit(l[2], '0', '9'))
		return false;
	if (len > 3 && l[3] != ' ' && l[3] != '-')
		return false;
	*code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	*last = len == 3 || l[3] == ' ';
	return true;
}

static void check_reply_line(const char *line, size_t len)
{
	int code = -1, wcode = 0;
	bool last = false, wlast = false;
	const char *text = NULL;
	size_t tlen = 99;
	int rc = ma_smtp_parse_reply_line(line, len, &code, &last, &text, &tlen);
	bool ok = line_ok(line, len, &wcode, &wlast);
	CHECK((rc == 0) == ok);
	if (!ok)
		return;
	CHECK(code == wcode && last == wlast);
	CHECK(text == line + (len > 3 ? 4 : 3) && tlen == (len > 3 ? len - 4 : 0));

	/* RFC 4954 section 6 as SPEC 3/4 read it. */
	for (int sent = 0; sent < 2; sent++) {
		int k = ma_smtp_auth_reply_kind(code, sent != 0);
		if (code == 334)
			CHECK(k == MA_REPLY_CHALLENGE);
		else if (code == 235)
			CHECK(k == MA_REPLY_SUCCESS);
		else if (code == 535)
			CHECK(k == MA_REPLY_REJECTED);
		else if (code == 432 || code == 534)
			/* RFC 4954 6: transition needed / too weak: the next
			 * mechanism, policy when none is accepted (lib/codes.c) */
			CHECK(k == MA_REPLY_WEAK);
		else if (code == 530 || code == 538)
			CHECK(k == MA_REPLY_POLICY);
		else if (code >= 400 && code < 500)
			CHECK(k == MA_REPLY_TEMPFAIL);
		else if (code >= 500)
			/* never "try another mechanism" once a credential went out,
			 * except for the explicit 504 */
			CHECK(k == (sent && code != 504 ? MA_REPLY_REJECTED : MA_REPLY_UNSUPPORTED));
		else
			CHECK(k == -1);   /* other 2xx/3xx: out of sequence */
	}
}

/* Independent reading of one EHLO line into WANT (RFC 5321 4.1.1.1,
 * RFC 4954 section 3, the legacy "AUTH=" form). */
static void expected_ehlo(const char *t, size_t len, struct ma_caps *want)
{
	size_t k = 0;
	while (k < len && ((t[k] >= 'a' && t[k] <= 'z') || (t[k] >= 'A' && t[k] <= 'Z') ||
	                   (t[k] >= '0' && t[k] <= '9') || (k > 0 && t[k] == '-')))
		k++;
	if (k == 0 || (k < len && t[k] != ' ' && t[k] != '='))
		return;
	bool legacy = k < len && t[k] == '=';
	if (k == 8 && strncasecmp(t, "STARTTLS", 8) == 0 && !legacy)
		want->starttls = true;
	if (k != 4 || strncasecmp(t, "AUTH", 4) != 0)
		return;
	want->auth = want->sasl_ir = true;
	size_t i = k + 1;
	while (i <= len) {
		size_t start = i;
		while (i < len && t[i] != ' ')
			i++;
		char tok[64];
		size_t tl = i - start;
		if (tl > 0 && tl < sizeof(tok) && memchr(t + start, '\0', tl) == NULL) {
			memcpy(tok, t + start, tl);
			tok[tl] = '\0';
			for (int m = 0; m < MA_MECH_IMAP_LOGIN; m++)
				if (strcasecmp(tok, ma_mech_name((enum ma_mech)m)) == 0)
					want->mechs |= MA_MECH_BIT((unsigned)m);
		}
		i++;
	}
}

static void check_ehlo(const char *text, size_t len)
{
	struct ma_caps caps, want;
	memset(&caps, 0, sizeof(caps));
	memset(&want, 0, sizeof(want));
	(void)ma_smtp_parse_ehlo_line(text, len, &caps);
	expected_ehlo(text, len, &want);
	CHECK(caps.known);
	CHECK(caps.starttls == want.starttls && caps.auth == want.auth);
	CHECK(caps.sasl_ir == want.sasl_ir && caps.mechs == want.mechs);
	CHECK(!caps.logindisabled);
	CHECK(memchr(caps.text, '\0', sizeof(caps.text)) != NULL);
	for (const char *p = caps.text; *p != '\0'; p++)
		CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
}

/* What may go on the wire after "EHLO ": no byte that ends or splits the
 * command. */
static void check_helo(const char *name, size_t len)
{
	char buf[MA_SMTP_HELO_MAX];
	int d = ma_valid_domain(name, len);
	int a = ma_valid_address_literal(name, len);
	if (d || a) {
		for (size_t i = 0; i < len; i++)
			CHECK(name[i] > 0x20 && name[i] < 0x7f);
	}
	if (memchr(name, '\0', len) != NULL)
		return;      /* the configured name is a C string */
	if (ma_smtp_helo_name(name, "fallback.example", NULL, 0, buf, sizeof(buf)) == 0) {
		size_t n = strlen(buf);
		CHECK(n > 0 && n < sizeof(buf));
		for (size_t i = 0; i < n; i++)
			CHECK(buf[i] > 0x20 && buf[i] < 0x7f);
		CHECK(len == 0 || (n == len && memcmp(buf, name, n) == 0));
	} else {
		CHECK(len > 0 && ((!d && !a) || len >= sizeof(buf)));
	}
	/* A host name that is not a domain falls back to an address literal. */
	if (ma_smtp_helo_name(NULL, name, NULL, 0, buf, sizeof(buf)) == 0)
		CHECK(strcmp(buf, "[127.0.0.1]") == 0 || (d && strcmp(buf, name) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	const uint8_t *piece;
	size_t len;
	struct ma_smtp_reply r;
	size_t bytes = 0;
	unsigned lines = 0;

	ma_smtp_reply_init(&r);
	while (fuzz_next(&in, &piece, &len)) {
		char *line = fuzz_strndup(piece, len);
		int code = 0;
		bool last = false;
		bool ok = line_ok(line, len, &code, &last);
		struct ma_smtp_reply before = r;
		int added = ma_smtp_reply_add(&r, line, len);

		check_reply_line(line, len);
		if (ok && len > 4)
			check_ehlo(line + 4, len - 4);
		check_helo(line, len);

		/* The accumulator: grammar, one code, bounded (SPEC 2). */
		bool want_ok = ok && !before.complete && (before.lines == 0 || code == before.code) &&
		               before.lines < MA_SMTP_REPLY_MAX_LINES &&
		               bytes + len + 2 <= MA_SMTP_REPLY_MAX_BYTES;
		CHECK((added >= 0) == want_ok);
		if (added >= 0) {
			CHECK(added == (last ? 1 : 0) && r.complete == last);
			CHECK(r.code == code && r.lines == before.lines + 1 && r.lines == lines + 1);
			lines++;
			bytes += len + 2;
			CHECK(r.bytes == bytes && r.bytes <= MA_SMTP_REPLY_MAX_BYTES);
		} else {
			CHECK(memcmp(&before, &r, sizeof(r)) == 0);  /* refused: unchanged */
		}
		if (added != 0) {          /* complete or refused: the next reply */
			ma_smtp_reply_init(&r);
			bytes = 0;
			lines = 0;
		}
		free(line);
	}
	return 0;
}
