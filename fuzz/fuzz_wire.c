/*
 * fuzz_wire.c - the broker's socket protocol (lib/wire.h): the frame
 * header, request bodies (AUTH, ACCOUNT) and response bodies.
 *
 * The input is one frame as it comes off the socket: 4 header bytes, then
 * the body.  The header is parsed; the body (everything after the first 4
 * bytes, whatever the header says, so that the body parsers are reached
 * without first guessing a header) is parsed as an AUTH request, an
 * ACCOUNT request and a response.  Inputs of fewer than 4 bytes are parsed
 * whole as bodies.
 *
 * Invariants: each verdict equals an independent reading of the format
 * (wire.h: tag, 16-bit length, value; the bounds, no repeat, no unknown
 * tag, no NUL, no empty field, the required fields per type, no password
 * in ACCOUNT, only known codes and sources, both required in a response); what parsed is re-encoded,
 * the re-encoded frame has the same length, its header parses back to the same type
 * and length, its body to the same struct byte for byte, and one byte of
 * capacity less makes the encoder refuse; a refused request leaves
 * nothing but its type in the output (no password byte), a refused
 * response is never a success and carries no text.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "wire.h"

enum {
	T_USER = 1, T_PASSWORD = 2, T_SERVICE = 3, T_RHOST = 4, T_TTY = 5, T_RUSER = 6,
	T_ERR = 16, T_SOURCE = 17, T_SERVER = 18, T_MECHANISM = 19, T_TLS = 20,
	T_DETAIL = 21, T_LOGIN = 22, T_MESSAGE = 23,
};

/* The bounds of wire.h, written out again: 0 for a tag that is not a
 * string field of that kind of frame. */
static size_t request_bound(unsigned tag)
{
	switch (tag) {
	case T_USER: return 255;
	case T_PASSWORD: return 1024;
	case T_SERVICE: return 64;
	case T_RHOST: return 255;
	case T_TTY: return 64;
	case T_RUSER: return 255;
	default: return 0;
	}
}

static size_t response_bound(unsigned tag)
{
	switch (tag) {
	case T_SERVER: return 63;
	case T_MECHANISM: return 31;
	case T_TLS: return 15;
	case T_DETAIL: return 511;
	case T_LOGIN: return 255;
	case T_MESSAGE: return 255;
	default: return 0;
	}
}

/* The independent reading: true when BODY is a well-formed frame body of
 * TYPE; *HAS_SOURCE tells whether a response carried a SOURCE field. */
static bool expected(enum ma_wire_type type, const uint8_t *b, size_t len, bool *has_source)
{
	bool seen[256] = { false };
	bool response = type == MA_WIRE_RESULT;
	if (len > MA_WIRE_MAX_BODY)
		return false;
	size_t i = 0;
	while (i < len) {
		if (len - i < 3)
			return false;
		unsigned tag = b[i];
		size_t flen = (size_t)b[i + 1] << 8 | b[i + 2];
		i += 3;
		if (flen > len - i || seen[tag])
			return false;
		seen[tag] = true;
		const uint8_t *v = b + i;
		i += flen;
		if (response && (tag == T_ERR || tag == T_SOURCE)) {
			if (flen != 1)
				return false;
			if (tag == T_ERR && v[0] > MA_ERR_MAX)
				return false;
			if (tag == T_SOURCE && v[0] >= MA_SOURCE_COUNT)
				return false;
			continue;
		}
		size_t bound = response ? response_bound(tag) : request_bound(tag);
		if (bound == 0 || flen == 0 || flen > bound || memchr(v, 0, flen) != NULL)
			return false;
		/* The message is for a terminal: no control character. */
		for (size_t k = 0; response && tag == T_MESSAGE && k < flen; k++)
			if (v[k] < 0x20 || v[k] == 0x7f)
				return false;
	}
	*has_source = seen[T_SOURCE];
	if (response)
		return seen[T_ERR] && seen[T_SOURCE];
	if (!seen[T_USER])
		return false;
	return type == MA_WIRE_AUTH ? seen[T_PASSWORD] : !seen[T_PASSWORD];
}

static bool all_zero(const void *p, size_t len)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		if (c[i] != 0)
			return false;
	return true;
}

/* A string field of OUT: terminated within its array, within its bound,
 * and what follows the terminator is zero (the struct was zeroed). */
static void check_field(const char *f, size_t size, size_t bound)
{
	size_t n = strnlen(f, size);
	CHECK(n < size && n <= bound);
	CHECK(all_zero(f + n, size - n));
}

static void check_header(const uint8_t *h)
{
	enum ma_wire_type type = (enum ma_wire_type)0;
	size_t blen = 12345;
	size_t n = (size_t)h[2] << 8 | h[3];
	bool want = h[0] == MA_WIRE_VERSION && n <= MA_WIRE_MAX_BODY &&
	            (h[1] == MA_WIRE_AUTH || h[1] == MA_WIRE_ACCOUNT || h[1] == MA_WIRE_RESULT);
	int rc = ma_wire_parse_header(h, &type, &blen);
	CHECK((rc == 0) == want);
	if (rc == 0)
		CHECK((unsigned)type == h[1] && blen == n);
}

static void check_request(enum ma_wire_type type, const uint8_t *body, size_t len)
{
	struct ma_wire_request out, again;
	const char *why = NULL;
	bool has_source = false;
	bool want = expected(type, body, len, &has_source);

	memset(&out, 0xa5, sizeof(out));
	int rc = ma_wire_parse_request(type, body, len, &out, &why);
	CHECK((rc == 0) == want);
	CHECK(out.type == type);
	if (rc != 0) {
		CHECK(why != NULL && why[0] != '\0');
		CHECK(all_zero(out.user, sizeof(out) - offsetof(struct ma_wire_request, user)));
		return;
	}
	check_field(out.user, sizeof(out.user), 255);
	check_field(out.password, sizeof(out.password), 1024);
	check_field(out.service, sizeof(out.service), 64);
	check_field(out.rhost, sizeof(out.rhost), 255);
	check_field(out.tty, sizeof(out.tty), 64);
	check_field(out.ruser, sizeof(out.ruser), 255);
	CHECK(out.user[0] != '\0');
	CHECK((out.password[0] != '\0') == (type == MA_WIRE_AUTH));
	/* Every value came from the body. */
	CHECK(fuzz_contains(body, len, out.user, strlen(out.user)));
	CHECK(type == MA_WIRE_ACCOUNT ||
	      fuzz_contains(body, len, out.password, strlen(out.password)));

	/* Re-encoded: the same fields, so the same length. */
	unsigned char frame[MA_WIRE_MAX_FRAME];
	size_t flen = 0, blen = 0;
	enum ma_wire_type t2 = (enum ma_wire_type)0;
	CHECK(ma_wire_encode_request(&out, frame, sizeof(frame), &flen) == 0);
	CHECK(flen == MA_WIRE_HEADER + len);
	CHECK(ma_wire_parse_header(frame, &t2, &blen) == 0);
	CHECK(t2 == type && blen == len);
	memset(&again, 0x5a, sizeof(again));
	CHECK(ma_wire_parse_request(t2, frame + MA_WIRE_HEADER, blen, &again, &why) == 0);
	CHECK(memcmp(&out, &again, sizeof(out)) == 0);
	/* The capacity is respected: exactly enough, and one byte short. */
	unsigned char *tight = malloc(flen);
	CHECK(tight != NULL);
	size_t tlen = 0;
	CHECK(ma_wire_encode_request(&out, tight, flen, &tlen) == 0 && tlen == flen);
	CHECK(memcmp(tight, frame, flen) == 0);
	CHECK(ma_wire_encode_request(&out, tight, flen - 1, &tlen) == -1 && tlen == 0);
	memset(tight, 0, flen);
	free(tight);
	memset(frame, 0, sizeof(frame));
	ma_wire_request_wipe(&again);
	ma_wire_request_wipe(&out);
	CHECK(all_zero(&out, sizeof(out)));
}

static void check_response(const uint8_t *body, size_t len)
{
	struct ma_wire_response out, again;
	const char *why = NULL;
	bool has_source = false;
	bool want = expected(MA_WIRE_RESULT, body, len, &has_source);

	memset(&out, 0xa5, sizeof(out));
	int rc = ma_wire_parse_response(body, len, &out, &why);
	CHECK((rc == 0) == want);
	if (rc != 0) {
		CHECK(why != NULL && why[0] != '\0');
		CHECK(out.err != MA_OK);
		CHECK(out.server[0] == '\0' && out.mechanism[0] == '\0' &&
		      out.tls_version[0] == '\0' && out.detail[0] == '\0' && out.login[0] == '\0' &&
		      out.message[0] == '\0');
		return;
	}
	CHECK((unsigned)out.err <= MA_ERR_MAX && (unsigned)out.source < MA_SOURCE_COUNT);
	CHECK(has_source);
	check_field(out.server, sizeof(out.server), 63);
	check_field(out.mechanism, sizeof(out.mechanism), 31);
	check_field(out.tls_version, sizeof(out.tls_version), 15);
	check_field(out.detail, sizeof(out.detail), 511);
	check_field(out.login, sizeof(out.login), 255);
	check_field(out.message, sizeof(out.message), 255);

	unsigned char frame[MA_WIRE_MAX_FRAME];
	size_t flen = 0, blen = 0;
	enum ma_wire_type t2 = (enum ma_wire_type)0;
	CHECK(ma_wire_encode_response(&out, frame, sizeof(frame), &flen) == 0);
	CHECK(flen == MA_WIRE_HEADER + len);
	CHECK(ma_wire_parse_header(frame, &t2, &blen) == 0);
	CHECK(t2 == MA_WIRE_RESULT && blen == flen - MA_WIRE_HEADER);
	memset(&again, 0x5a, sizeof(again));
	CHECK(ma_wire_parse_response(frame + MA_WIRE_HEADER, blen, &again, &why) == 0);
	CHECK(memcmp(&out, &again, sizeof(out)) == 0);
	unsigned char *tight = malloc(flen);
	CHECK(tight != NULL);
	size_t tlen = 0;
	CHECK(ma_wire_encode_response(&out, tight, flen, &tlen) == 0 && tlen == flen);
	CHECK(ma_wire_encode_response(&out, tight, flen - 1, &tlen) == -1 && tlen == 0);
	free(tight);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *body = data;
	size_t len = size;
	if (size >= MA_WIRE_HEADER) {
		check_header(data);
		body = data + MA_WIRE_HEADER;
		len = size - MA_WIRE_HEADER;
	}
	check_request(MA_WIRE_AUTH, body, len);
	check_request(MA_WIRE_ACCOUNT, body, len);
	check_response(body, len);
	/* Not a request type: always refused. */
	struct ma_wire_request out;
	CHECK(ma_wire_parse_request(MA_WIRE_RESULT, body, len, &out, NULL) == -1);
	CHECK(all_zero(out.user, sizeof(out) - offsetof(struct ma_wire_request, user)));
	return 0;
}
