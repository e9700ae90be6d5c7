/*
 * fuzz_codes.c - the table of server refusals (lib/codes.c) as the clients
 * reach it: an SMTP reply through ma_smtp_reply_add / ma_smtp_auth_reply,
 * an IMAP line through ma_imap_parse_line / ma_imap_auth_reply, and the
 * raw lookups ma_codes_smtp / ma_codes_imap / ma_codes_enhanced.
 *
 * Input: byte 0 bit 0 = credentials already sent (payload_sent), then
 * '\n'-separated lines (a '\r' before the '\n' is dropped, as the stream
 * does).  All lines are fed as one SMTP reply (up to its first complete
 * line set); the first line is also parsed as an IMAP line; the whole rest
 * is also handed to the raw lookups with a reply code from bytes 1-2.
 *
 * Invariants: a refusal code (4xx, 5xx) always finds a row and a tagged NO
 * or BAD always finds one; 2xx/3xx never do; the row matches what was
 * asked (protocol, reply range, IMAP status, payload condition, its code
 * and text when it names them, compared independently here); a provider
 * row (policy) needs its text; the joined SMTP text is terminated, bounded
 * and holds no CR or LF; ma_codes_enhanced returns 0 or the length of a
 * well-formed "class.subject.detail" followed by SP or the end.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codes.h"
#include "common.h"
#include "imap.h"
#include "sasl.h"
#include "smtp.h"

/* Independent reading: is NEEDLE in HAY (LEN bytes), ASCII case ignored? */
static bool has_text(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= len; i++) {
		size_t k = 0;
		while (k < n && hay[i + k] != '\0' &&
		       (hay[i + k] | 0x20) == (needle[k] | 0x20))
			k++;
		if (k == n)
			return true;
	}
	return false;
}

static void check_row(const struct ma_code_row *r, enum ma_code_proto proto, bool payload)
{
	CHECK(r->proto == proto);
	CHECK(r->id != NULL && r->meaning != NULL && r->remedy != NULL);
	CHECK(r->when == MA_CODE_ALWAYS || (r->when == MA_CODE_AFTER_PAYLOAD) == payload);
	int k = ma_codes_sasl_reply(r);
	CHECK(k == MA_REPLY_REJECTED || k == MA_REPLY_TEMPFAIL || k == MA_REPLY_POLICY ||
	      k == MA_REPLY_UNSUPPORTED || k == MA_REPLY_WEAK);
}

static void check_enhanced(const char *t, size_t len, char cls)
{
	size_t e = ma_codes_enhanced(t, len, cls);
	if (e == 0)
		return;
	CHECK(e >= 5 && e <= 9 && e <= len);
	CHECK(t[0] == cls && t[1] == '.');
	CHECK(e == len || t[e] == ' ');
	unsigned dots = 0;
	for (size_t i = 1; i < e; i++) {
		CHECK(t[i] == '.' || (t[i] >= '0' && t[i] <= '9'));
		dots += t[i] == '.';
	}
	CHECK(dots == 2);
}

static void smtp_reply(const uint8_t *p, size_t n, bool payload)
{
	struct ma_smtp_reply r;
	struct fuzz_in in = { p, n };
	const uint8_t *line;
	size_t len;
	int added = 0;
	ma_smtp_reply_init(&r);
	while (added == 0 && fuzz_next(&in, &line, &len)) {
		if (len > 0 && line[len - 1] == '\r')
			len--;
		/* The stream refuses NUL, CR and LF inside a line. */
		if (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL)
			return;
		added = ma_smtp_reply_add(&r, (const char *)line, len);
	}
	CHECK(r.joined_len < sizeof(r.joined) && r.joined[r.joined_len] == '\0');
	CHECK(strlen(r.joined) == r.joined_len);
	CHECK(memchr(r.joined, '\r', r.joined_len) == NULL && memchr(r.joined, '\n', r.joined_len) == NULL);
	if (added != 1)
		return;
	const struct ma_code_row *row = (const void *)1;
	int k = ma_smtp_auth_reply(&r, payload, &row);
	if (r.code == 334 || r.code == 235) {
		CHECK(row == NULL);
		return;
	}
	if (r.code < 400) {
		CHECK(k == -1 && row == NULL);
		return;
	}
	CHECK(row != NULL);
	check_row(row, MA_CODE_SMTP, payload);
	CHECK(k == ma_codes_sasl_reply(row));
	CHECK(r.code >= row->reply_lo && r.code <= row->reply_hi);
	if (row->code != NULL) {
		size_t e = ma_codes_enhanced(r.joined, r.joined_len, (char)('0' + r.code / 100));
		CHECK(e == strlen(row->code) && strncmp(r.joined, row->code, e) == 0);
	}
	if (row->text != NULL)
		CHECK(has_text(r.joined, r.joined_len, row->text));
	if (row->cls == MA_CODE_POLICY && strncmp(row->id, "smtp-", 5) != 0)
		CHECK(row->text != NULL);
	/* The catch-all rows: 535 is always a rejection unless a more
	 * precise row took it; 5xx after credentials never asks for the next
	 * mechanism except 504 and the "too weak" codes. */
	if (payload && r.code >= 500 && row->cls == MA_CODE_NEXT_MECH)
		CHECK(r.code == 504);
}

static void imap_line(const uint8_t *p, size_t n, bool payload)
{
	struct fuzz_in in = { p, n };
	const uint8_t *line;
	size_t len;
	if (!fuzz_next(&in, &line, &len))
		return;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	struct ma_imap_line l;
	if (ma_imap_parse_line((const char *)line, len, &l) != 0)
		return;
	const struct ma_code_row *row = (const void *)1;
	int k = ma_imap_auth_reply(&l, payload, &row);
	if (l.kind != MA_IMAP_TAGGED) {
		CHECK(row == NULL);
		CHECK(k == (l.kind == MA_IMAP_CONTINUATION ? MA_REPLY_CHALLENGE : -1));
		return;
	}
	if (l.status == MA_IMAP_OK) {
		CHECK(k == MA_REPLY_SUCCESS && row == NULL);
		return;
	}
	CHECK(row != NULL);
	check_row(row, MA_CODE_IMAP, payload);
	CHECK(k == ma_codes_sasl_reply(row));
	if (row->status != MA_CODE_ANY_STATUS)
		CHECK((row->status == MA_CODE_BAD) == (l.status == MA_IMAP_BAD));
	if (row->code != NULL) {
		size_t a = 0;
		while (a < l.code_len && l.code[a] != ' ')
			a++;
		CHECK(l.code != NULL && a == strlen(row->code) && strncasecmp(l.code, row->code, a) == 0);
	}
	if (row->text != NULL)
		CHECK(has_text(l.text, l.text_len, row->text));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	bool payload = data[0] & 1;
	int reply = 100 + (((int)data[1] << 8 | data[2]) % 600);
	const uint8_t *p = data + 3;
	size_t n = size - 3;

	smtp_reply(p, n, payload);
	imap_line(p, n, payload);

	/* The raw lookups on the whole rest. */
	const char *t = (const char *)p;
	check_enhanced(t, n, '5');
	check_enhanced(t, n, '4');
	if (memchr(p, '\0', n) == NULL) {
		const struct ma_code_row *row = ma_codes_smtp(reply, t, n, payload);
		CHECK((row != NULL) == (reply >= 400 && reply <= 599));
		if (row != NULL)
			check_row(row, MA_CODE_SMTP, payload);
		row = ma_codes_imap(data[0] & 2, t, n / 2, t + n / 2, n - n / 2, payload);
		CHECK(row != NULL);
		check_row(row, MA_CODE_IMAP, payload);
	}
	return 0;
}
