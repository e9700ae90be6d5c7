/*
 * fuzz_imap.c - the pure IMAP parsers (lib/imap.h): one server line, a
 * capability list, and the LOGIN-command string quoting.
 *
 * The input is split at '\n' (the stream hands lines over without CRLF,
 * never with NUL, CR or LF inside: those are refused before parsing, but
 * the parsers must not depend on it for memory safety, so the bytes are
 * passed as they are).  Invariants: every view points inside the line;
 * a tagged line has a valid tag and only OK/NO/BAD; capability bits are
 * only those of mechanisms a server can advertise; the capability text
 * is escaped; a quoted string reads back to the original.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "config.h"
#include "imap.h"
#include "session.h"

static bool inside(const char *p, size_t len, const char *line, size_t linelen)
{
	return p >= line && p + len <= line + linelen;
}

static void check_line(const char *line, size_t len)
{
	struct ma_imap_line l;
	if (ma_imap_parse_line(line, len, &l) != 0)
		return;
	CHECK(len > 0);
	switch (l.kind) {
	case MA_IMAP_CONTINUATION:
		CHECK(line[0] == '+');
		break;
	case MA_IMAP_UNTAGGED:
		CHECK(line[0] == '*' && line[1] == ' ');
		break;
	case MA_IMAP_TAGGED:
		/* response-tagged = tag SP resp-cond-state */
		CHECK(l.tag == line && l.tag_len > 0 && l.tag_len < len);
		CHECK(!(l.tag_len == 1 && line[0] == '*'));
		for (size_t i = 0; i < l.tag_len; i++) {
			unsigned char c = (unsigned char)l.tag[i];
			CHECK(c > 0x20 && c < 0x7f && strchr("(){%*\"\\+", c) == NULL);
		}
		CHECK(l.status == MA_IMAP_OK || l.status == MA_IMAP_NO || l.status == MA_IMAP_BAD);
		break;
	default:
		CHECK(false);
	}
	if (l.code != NULL) {
		CHECK(inside(l.code, l.code_len, line, len));
		CHECK(l.code[-1] == '[' && l.code + l.code_len < line + len &&
		      l.code[l.code_len] == ']');
		CHECK(memchr(l.code, ']', l.code_len) == NULL);
	}
	if (l.text != NULL)
		CHECK(inside(l.text, l.text_len, line, len));
	else
		CHECK(l.text_len == 0);
}

/* Independent reading of a capability list: space-separated tokens,
 * "AUTH=<mechanism>" and three keywords, exact and case-insensitive. */
static void expected_caps(const char *list, size_t len, struct ma_caps *want)
{
	size_t i = 0;
	while (i < len) {
		size_t start = i;
		while (i < len && list[i] != ' ')
			i++;
		size_t tlen = i - start;
		const char *tok = list + start;
		i++;
		char t[64];
		if (tlen == 0 || tlen >= sizeof(t))
			continue;
		memcpy(t, tok, tlen);
		t[tlen] = '\0';
		if (memchr(tok, '\0', tlen) != NULL)
			continue;
		if (strncasecmp(t, "AUTH=", 5) == 0) {
			for (int m = 0; m < MA_MECH_IMAP_LOGIN; m++)
				if (strcasecmp(t + 5, ma_mech_name((enum ma_mech)m)) == 0)
					want->mechs |= MA_MECH_BIT((unsigned)m);
		} else if (strcasecmp(t, "STARTTLS") == 0) {
			want->starttls = true;
		} else if (strcasecmp(t, "LOGINDISABLED") == 0) {
			want->logindisabled = true;
		} else if (strcasecmp(t, "SASL-IR") == 0) {
			want->sasl_ir = true;
		}
	}
}

static void check_caps(const char *list, size_t len)
{
	struct ma_caps caps, want;
	memset(&caps, 0, sizeof(caps));
	memset(&want, 0, sizeof(want));
	if (ma_imap_parse_caps(list, len, &caps) != 0)
		return;
	CHECK(caps.known);
	expected_caps(list, len, &want);
	/* Only SASL mechanisms: the LOGIN command is never "advertised";
	 * "XPLAIN" is not PLAIN (SPEC 3). */
	CHECK((caps.mechs & MA_MECH_BIT(MA_MECH_IMAP_LOGIN)) == 0);
	CHECK(caps.mechs == want.mechs);
	CHECK(caps.starttls == want.starttls);
	CHECK(caps.logindisabled == want.logindisabled);
	CHECK(caps.sasl_ir == want.sasl_ir);
	CHECK(memchr(caps.text, '\0', sizeof(caps.text)) != NULL);
	for (const char *p = caps.text; *p != '\0'; p++)
		CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
}

static void check_astring(const char *s, size_t len)
{
	char buf[512];
	size_t used = 3;
	memcpy(buf, "x1 ", 3);
	int kind = ma_imap_astring(s, len, buf, sizeof(buf), &used);
	if (kind < 0) {
		CHECK(memchr(s, '\0', len) != NULL || 3 + 2 * len + 3 > sizeof(buf));
		return;
	}
	CHECK(used < sizeof(buf));
	if (kind == 2) {
		/* A literal header "{N}" and nothing of the string itself. */
		CHECK(buf[3] == '{' && buf[used - 1] == '}');
		return;
	}
	CHECK(kind == 1);
	CHECK(buf[3] == '"' && buf[used - 1] == '"' && buf[used] == '\0');
	/* quoted = DQUOTE *QUOTED-CHAR DQUOTE: no CR, LF, NUL or 8-bit byte
	 * (those go as literals), and unquoting gives the string back. */
	size_t o = 0;
	for (size_t i = 4; i < used - 1; i++) {
		unsigned char c = (unsigned char)buf[i];
		CHECK(c != '\r' && c != '\n' && c != '\0' && c < 0x80);
		if (c == '\\') {
			i++;
			CHECK(i < used - 1 && (buf[i] == '"' || buf[i] == '\\'));
			c = (unsigned char)buf[i];
		} else {
			CHECK(c != '"');
		}
		CHECK(o < len && (unsigned char)s[o] == c);
		o++;
	}
	CHECK(o == len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	const uint8_t *piece;
	size_t len;

	while (fuzz_next(&in, &piece, &len)) {
		/* Own copies, so ASan sees reads past the end of each line. */
		char *line = fuzz_strndup(piece, len);
		check_line(line, len);
		/* The list after "* CAPABILITY " or inside "[CAPABILITY ...]". */
		const char *list = line;
		size_t llen = len;
		if (len > 13 && memcmp(line, "* CAPABILITY ", 13) == 0) {
			list += 13;
			llen -= 13;
		}
		char *copy = fuzz_strndup((const uint8_t *)list, llen);
		check_caps(copy, llen);
		check_astring(copy, llen);
		free(copy);
		free(line);
	}
	return 0;
}
