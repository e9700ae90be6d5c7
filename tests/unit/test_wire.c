/*
 * test_wire.c - lib/wire.c, the broker's socket protocol: round trips of
 * requests and responses, every field bound at its limit and one over (the
 * encoder and the parser both refuse), every malformed form the strict
 * parser must refuse, and that a refused request leaves no password bytes
 * behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "unit.h"

/* Tags of lib/wire.c (the wire format, not exported). */
enum {
	T_USER = 1, T_PASSWORD = 2, T_SERVICE = 3, T_RHOST = 4, T_TTY = 5, T_RUSER = 6,
	T_ERR = 16, T_SOURCE = 17, T_SERVER = 18, T_MECHANISM = 19, T_TLS = 20,
	T_DETAIL = 21, T_LOGIN = 22, T_MESSAGE = 23,
};

#define SECRET "pw-S3cr3t-wire"

/* ---- helpers ---- */

/* A body built by hand, field by field. */
struct body {
	unsigned char b[2 * MA_WIRE_MAX_FRAME];
	size_t n;
};

static void add(struct body *b, unsigned tag, const void *v, size_t len)
{
	ck_assert_uint_le(b->n + 3 + len, sizeof(b->b));
	b->b[b->n++] = (unsigned char)tag;
	b->b[b->n++] = (unsigned char)(len >> 8);
	b->b[b->n++] = (unsigned char)(len & 0xff);
	if (len > 0)
		memcpy(b->b + b->n, v, len);
	b->n += len;
}

static void add_str(struct body *b, unsigned tag, const char *s)
{
	add(b, tag, s, strlen(s));
}

static void add_code(struct body *b, unsigned tag, unsigned code)
{
	unsigned char c = (unsigned char)code;
	add(b, tag, &c, 1);
}

static void add_raw(struct body *b, const void *v, size_t len)
{
	ck_assert_uint_le(b->n + len, sizeof(b->b));
	memcpy(b->b + b->n, v, len);
	b->n += len;
}

/* A field of LEN bytes of C. */
static void add_fill(struct body *b, unsigned tag, int c, size_t len)
{
	char *v = malloc(len + 1);
	ck_assert_ptr_nonnull(v);
	memset(v, c, len);
	add(b, tag, v, len);
	free(v);
}

static bool all_zero(const void *p, size_t len)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		if (c[i] != 0)
			return false;
	return true;
}

static void full_request(struct ma_wire_request *r, enum ma_wire_type type)
{
	memset(r, 0, sizeof(*r));
	r->type = type;
	snprintf(r->user, sizeof(r->user), "alice@example.org");
	if (type == MA_WIRE_AUTH)
		snprintf(r->password, sizeof(r->password), "%s", SECRET " with \"spaces\" \\ and \xc3\xa9");
	snprintf(r->service, sizeof(r->service), "sshd");
	snprintf(r->rhost, sizeof(r->rhost), "2001:db8::7");
	snprintf(r->tty, sizeof(r->tty), "ssh");
	snprintf(r->ruser, sizeof(r->ruser), "bob");
}

static void full_response(struct ma_wire_response *r)
{
	memset(r, 0, sizeof(*r));
	r->err = MA_AUTH_FAILED;
	r->source = MA_SOURCE_NETWORK;
	snprintf(r->server, sizeof(r->server), "primary");
	snprintf(r->mechanism, sizeof(r->mechanism), "SCRAM-SHA-256-PLUS");
	snprintf(r->tls_version, sizeof(r->tls_version), "TLSv1.3");
	snprintf(r->detail, sizeof(r->detail), "a2 NO [AUTHENTICATIONFAILED] Authentication failed.");
	snprintf(r->login, sizeof(r->login), "alice@example.org");
	snprintf(r->message, sizeof(r->message), "Application-specific password required: "
	         "https://support.google.com/accounts/answer/185833 (Failure)");
}

static void assert_same_request(const struct ma_wire_request *a, const struct ma_wire_request *b)
{
	ck_assert_int_eq(a->type, b->type);
	ck_assert_str_eq(a->user, b->user);
	ck_assert(strcmp(a->password, b->password) == 0);   /* no secret in the message */
	ck_assert_str_eq(a->service, b->service);
	ck_assert_str_eq(a->rhost, b->rhost);
	ck_assert_str_eq(a->tty, b->tty);
	ck_assert_str_eq(a->ruser, b->ruser);
}

static void assert_same_response(const struct ma_wire_response *a,
                                 const struct ma_wire_response *b)
{
	ck_assert_int_eq(a->err, b->err);
	ck_assert_int_eq(a->source, b->source);
	ck_assert_str_eq(a->server, b->server);
	ck_assert_str_eq(a->mechanism, b->mechanism);
	ck_assert_str_eq(a->tls_version, b->tls_version);
	ck_assert_str_eq(a->detail, b->detail);
	ck_assert_str_eq(a->login, b->login);
	ck_assert_str_eq(a->message, b->message);
}

/* Encode, check the header, parse the header and the body back. */
static void request_round_trip(const struct ma_wire_request *in)
{
	unsigned char frame[MA_WIRE_MAX_FRAME];
	size_t len = 0, blen = 0;
	enum ma_wire_type type = 0;
	struct ma_wire_request out;
	const char *why = NULL;

	ck_assert_int_eq(ma_wire_encode_request(in, frame, sizeof(frame), &len), 0);
	ck_assert_uint_ge(len, MA_WIRE_HEADER);
	ck_assert_uint_le(len, MA_WIRE_MAX_FRAME);
	ck_assert_uint_eq(frame[0], MA_WIRE_VERSION);
	ck_assert_uint_eq(frame[1], (unsigned)in->type);
	ck_assert_uint_eq(((size_t)frame[2] << 8 | frame[3]), len - MA_WIRE_HEADER);
	ck_assert_int_eq(ma_wire_parse_header(frame, &type, &blen), 0);
	ck_assert_int_eq(type, in->type);
	ck_assert_uint_eq(blen, len - MA_WIRE_HEADER);
	memset(&out, 0xa5, sizeof(out));
	ck_assert_msg(ma_wire_parse_request(type, frame + MA_WIRE_HEADER, blen, &out, &why) == 0,
	              "refused: %s", why);
	assert_same_request(in, &out);
	ma_wire_request_wipe(&out);
}

static void response_round_trip(const struct ma_wire_response *in)
{
	unsigned char frame[MA_WIRE_MAX_FRAME];
	size_t len = 0, blen = 0;
	enum ma_wire_type type = 0;
	struct ma_wire_response out;
	const char *why = NULL;

	ck_assert_int_eq(ma_wire_encode_response(in, frame, sizeof(frame), &len), 0);
	ck_assert_uint_le(len, MA_WIRE_MAX_FRAME);
	ck_assert_uint_eq(frame[0], MA_WIRE_VERSION);
	ck_assert_uint_eq(frame[1], MA_WIRE_RESULT);
	ck_assert_int_eq(ma_wire_parse_header(frame, &type, &blen), 0);
	ck_assert_int_eq(type, MA_WIRE_RESULT);
	ck_assert_uint_eq(blen, len - MA_WIRE_HEADER);
	memset(&out, 0xa5, sizeof(out));
	ck_assert_msg(ma_wire_parse_response(frame + MA_WIRE_HEADER, blen, &out, &why) == 0,
	              "refused: %s", why);
	assert_same_response(in, &out);
}

/*
 * Parse BODY as a request of TYPE and expect a refusal whose reason
 * contains WHAT; the output must then hold nothing but its type (no byte
 * of a password that was read before the error).
 */
static void refuse_request(enum ma_wire_type type, const struct body *b, const char *what)
{
	struct ma_wire_request out;
	const char *why = NULL;
	memset(&out, 0xa5, sizeof(out));
	ck_assert_int_eq(ma_wire_parse_request(type, b->b, b->n, &out, &why), -1);
	ck_assert_ptr_nonnull(why);
	ck_assert_msg(strstr(why, what) != NULL, "expected '%s', got '%s'", what, why);
	ck_assert_msg(strstr(why, SECRET) == NULL, "the reason quotes the request");
	ck_assert_int_eq(out.type, type);
	ck_assert_msg(all_zero((const char *)&out + sizeof(out.type), sizeof(out) - sizeof(out.type)),
	              "a refused request left bytes in the output (%s)", what);
	ck_assert_ptr_null(memmem(&out, sizeof(out), SECRET, strlen(SECRET)));
}

static void refuse_response(const struct body *b, const char *what)
{
	struct ma_wire_response out;
	const char *why = NULL;
	memset(&out, 0xa5, sizeof(out));
	ck_assert_int_eq(ma_wire_parse_response(b->b, b->n, &out, &why), -1);
	ck_assert_ptr_nonnull(why);
	ck_assert_msg(strstr(why, what) != NULL, "expected '%s', got '%s'", what, why);
	/* Fail closed: a refused answer is never a success, and holds no text. */
	ck_assert_int_ne(out.err, MA_OK);
	ck_assert_str_eq(out.server, "");
	ck_assert_str_eq(out.mechanism, "");
	ck_assert_str_eq(out.tls_version, "");
	ck_assert_str_eq(out.detail, "");
	ck_assert_str_eq(out.login, "");
	ck_assert_str_eq(out.message, "");
}

static void accept_request(enum ma_wire_type type, const struct body *b,
                           struct ma_wire_request *out)
{
	const char *why = NULL;
	ck_assert_msg(ma_wire_parse_request(type, b->b, b->n, out, &why) == 0, "refused: %s", why);
}

/* ---- round trips ---- */

START_TEST(auth_request_round_trip)
{
	struct ma_wire_request r;
	full_request(&r, MA_WIRE_AUTH);
	request_round_trip(&r);
	/* Only user and password. */
	memset(&r, 0, sizeof(r));
	r.type = MA_WIRE_AUTH;
	snprintf(r.user, sizeof(r.user), "u");
	snprintf(r.password, sizeof(r.password), "p");
	request_round_trip(&r);
	ma_wire_request_wipe(&r);
}
END_TEST

START_TEST(account_request_round_trip)
{
	struct ma_wire_request r;
	full_request(&r, MA_WIRE_ACCOUNT);
	ck_assert_str_eq(r.password, "");
	request_round_trip(&r);
}
END_TEST

/* The exact bytes: the format is what the module and the daemon of two
 * different package versions must agree on. */
START_TEST(request_exact_bytes)
{
	static const unsigned char want[] = {
		1, 1, 0, 14,                       /* version 1, AUTH, body 14 */
		1, 0, 2, 'a', 'l',                 /* user */
		2, 0, 2, 'p', 'w',                 /* password */
		4, 0, 1, 'h',                      /* rhost */
	};
	struct ma_wire_request r = { .type = MA_WIRE_AUTH };
	unsigned char frame[MA_WIRE_MAX_FRAME];
	size_t len = 0;
	snprintf(r.user, sizeof(r.user), "al");
	snprintf(r.password, sizeof(r.password), "pw");
	snprintf(r.rhost, sizeof(r.rhost), "h");
	ck_assert_int_eq(ma_wire_encode_request(&r, frame, sizeof(frame), &len), 0);
	ck_assert_uint_eq(len, sizeof(want));
	ck_assert(memcmp(frame, want, sizeof(want)) == 0);

	static const unsigned char want_resp[] = {
		1, 0x81, 0, 13,
		16, 0, 1, MA_UNAVAILABLE,          /* ERR */
		17, 0, 1, MA_SOURCE_OFFLINE,       /* SOURCE */
		18, 0, 2, 's', '1',                /* SERVER */
	};
	struct ma_wire_response p = { .err = MA_UNAVAILABLE, .source = MA_SOURCE_OFFLINE };
	snprintf(p.server, sizeof(p.server), "s1");
	ck_assert_int_eq(ma_wire_encode_response(&p, frame, sizeof(frame), &len), 0);
	ck_assert_uint_eq(len, sizeof(want_resp));
	ck_assert(memcmp(frame, want_resp, sizeof(want_resp)) == 0);
}
END_TEST

START_TEST(response_round_trip_every_code_and_source)
{
	struct ma_wire_response r;
	full_response(&r);
	response_round_trip(&r);
	for (int e = MA_OK; e <= MA_ERR_MAX; e++) {
		for (int s = 0; s < MA_SOURCE_COUNT; s++) {
			r.err = (enum ma_err)e;
			r.source = (enum ma_wire_source)s;
			response_round_trip(&r);
		}
	}
	/* The least: a code and a source, every string empty. */
	memset(&r, 0, sizeof(r));
	r.err = MA_OK;
	r.source = MA_SOURCE_CACHE;
	response_round_trip(&r);
}
END_TEST

START_TEST(fields_in_any_order)
{
	struct body b = { .n = 0 };
	struct ma_wire_request out;
	add_str(&b, T_RUSER, "r");
	add_str(&b, T_PASSWORD, "pw");
	add_str(&b, T_TTY, "pts/1");
	add_str(&b, T_USER, "alice");
	accept_request(MA_WIRE_AUTH, &b, &out);
	ck_assert_str_eq(out.user, "alice");
	ck_assert_str_eq(out.password, "pw");
	ck_assert_str_eq(out.tty, "pts/1");
	ck_assert_str_eq(out.ruser, "r");
	ck_assert_str_eq(out.service, "");
	ck_assert_str_eq(out.rhost, "");
	ma_wire_request_wipe(&out);

	struct ma_wire_response resp;
	const char *why = NULL;
	b.n = 0;
	add_str(&b, T_LOGIN, "l");
	add_code(&b, T_SOURCE, MA_SOURCE_THROTTLE);
	add_str(&b, T_DETAIL, "d");
	add_code(&b, T_ERR, MA_AUTH_FAILED);
	ck_assert_int_eq(ma_wire_parse_response(b.b, b.n, &resp, &why), 0);
	ck_assert_int_eq(resp.err, MA_AUTH_FAILED);
	ck_assert_int_eq(resp.source, MA_SOURCE_THROTTLE);
	ck_assert_str_eq(resp.login, "l");
	ck_assert_str_eq(resp.detail, "d");
}
END_TEST

/* ---- bounds ---- */

struct bound {
	unsigned tag;
	size_t offset, bound;
	const char *name;
};

#define RQ(t, m, n) { t, offsetof(struct ma_wire_request, m), n, #m }
#define RS(t, m, n) { t, offsetof(struct ma_wire_response, m), n, #m }

/* The bounds of wire.h, written out here, not taken from the arrays. */
static const struct bound request_bounds[] = {
	RQ(T_USER, user, 255), RQ(T_PASSWORD, password, 1024), RQ(T_SERVICE, service, 64),
	RQ(T_RHOST, rhost, 255), RQ(T_TTY, tty, 64), RQ(T_RUSER, ruser, 255),
};
static const struct bound response_bounds[] = {
	RS(T_SERVER, server, 63), RS(T_MECHANISM, mechanism, 31), RS(T_TLS, tls_version, 15),
	RS(T_DETAIL, detail, 511), RS(T_LOGIN, login, 255),
	RS(T_MESSAGE, message, 255),
};

START_TEST(request_bounds_encoder)
{
	const struct bound *bd = &request_bounds[_i];
	struct ma_wire_request r;
	unsigned char frame[MA_WIRE_MAX_FRAME];
	size_t len = 99;

	/* Exactly at the bound: encoded and read back whole. */
	full_request(&r, MA_WIRE_AUTH);
	char *f = (char *)&r + bd->offset;
	memset(f, 'x', bd->bound);
	f[bd->bound] = '\0';
	request_round_trip(&r);

	/* One over: the array is full without a terminator; the encoder must
	 * not read past it nor send it. */
	memset(f, 'x', bd->bound + 1);
	ck_assert_msg(ma_wire_encode_request(&r, frame, sizeof(frame), &len) == -1,
	              "%s of %zu bytes encoded", bd->name, bd->bound + 1);
	ck_assert_uint_eq(len, 0);
	ma_wire_request_wipe(&r);
}
END_TEST

START_TEST(request_bounds_parser)
{
	const struct bound *bd = &request_bounds[_i];
	struct body b = { .n = 0 };
	struct ma_wire_request out;

	/* The password first, so that a refusal has a secret to wipe. */
	if (bd->tag != T_PASSWORD)
		add_str(&b, T_PASSWORD, SECRET);
	if (bd->tag != T_USER)
		add_str(&b, T_USER, "alice");
	size_t mark = b.n;
	add_fill(&b, bd->tag, 'y', bd->bound);
	accept_request(MA_WIRE_AUTH, &b, &out);
	const char *f = (const char *)&out + bd->offset;
	ck_assert_uint_eq(strlen(f), bd->bound);
	ck_assert_int_eq(f[0], 'y');
	ma_wire_request_wipe(&out);

	b.n = mark;
	add_fill(&b, bd->tag, 'y', bd->bound + 1);
	refuse_request(MA_WIRE_AUTH, &b, "over its bound");
	/* Far over (longer than the array holds and the biggest frame). */
	b.n = mark;
	add_fill(&b, bd->tag, 'y', MA_WIRE_MAX_BODY - mark - 3);
	refuse_request(MA_WIRE_AUTH, &b, "over its bound");
}
END_TEST

START_TEST(response_bounds_both)
{
	const struct bound *bd = &response_bounds[_i];
	struct ma_wire_response r;
	unsigned char frame[MA_WIRE_MAX_FRAME];
	size_t len = 99;

	full_response(&r);
	char *f = (char *)&r + bd->offset;
	memset(f, 'x', bd->bound);
	f[bd->bound] = '\0';
	response_round_trip(&r);
	memset(f, 'x', bd->bound + 1);
	ck_assert_int_eq(ma_wire_encode_response(&r, frame, sizeof(frame), &len), -1);
	ck_assert_uint_eq(len, 0);

	struct body b = { .n = 0 };
	add_code(&b, T_ERR, MA_OK);
	add_code(&b, T_SOURCE, MA_SOURCE_NETWORK);
	size_t mark = b.n;
	add_fill(&b, bd->tag, 'y', bd->bound);
	struct ma_wire_response out;
	const char *why = NULL;
	ck_assert_msg(ma_wire_parse_response(b.b, b.n, &out, &why) == 0, "refused: %s", why);
	ck_assert_uint_eq(strlen((const char *)&out + bd->offset), bd->bound);
	b.n = mark;
	add_fill(&b, bd->tag, 'y', bd->bound + 1);
	refuse_response(&b, "over its bound");
}
END_TEST

/* Every field at its bound still fits the frame MA_WIRE_MAX_FRAME promises. */
START_TEST(largest_frames_fit)
{
	struct ma_wire_request r = { .type = MA_WIRE_AUTH };
	unsigned char frame[MA_WIRE_MAX_FRAME];
	size_t len = 0;
	for (size_t i = 0; i < sizeof(request_bounds) / sizeof(request_bounds[0]); i++)
		memset((char *)&r + request_bounds[i].offset, 'z', request_bounds[i].bound);
	request_round_trip(&r);
	ck_assert_int_eq(ma_wire_encode_request(&r, frame, sizeof(frame), &len), 0);
	ck_assert_uint_eq(len, MA_WIRE_HEADER + 6 * 3 + 255 + 1024 + 64 + 255 + 64 + 255);

	/* The capacity: exactly enough works, one byte less does not, and
	 * nothing is written past it. */
	unsigned char *tight = malloc(len);
	ck_assert_ptr_nonnull(tight);
	size_t len2 = 0;
	ck_assert_int_eq(ma_wire_encode_request(&r, tight, len, &len2), 0);
	ck_assert_uint_eq(len2, len);
	ck_assert(memcmp(tight, frame, len) == 0);
	ck_assert_int_eq(ma_wire_encode_request(&r, tight, len - 1, &len2), -1);
	ck_assert_uint_eq(len2, 0);
	ck_assert_int_eq(ma_wire_encode_request(&r, tight, 3, &len2), -1);
	memset(tight, 0, len);
	free(tight);
	ma_wire_request_wipe(&r);

	struct ma_wire_response p = { .err = MA_INTERNAL, .source = MA_SOURCE_BROKER };
	for (size_t i = 0; i < sizeof(response_bounds) / sizeof(response_bounds[0]); i++)
		memset((char *)&p + response_bounds[i].offset, 'z', response_bounds[i].bound);
	response_round_trip(&p);
}
END_TEST

/* ---- malformed requests ---- */

START_TEST(malformed_requests)
{
	struct body b = { .n = 0 };
	static const unsigned char nul_mid[] = { 'p', 'w', 0, 'x' };

	/* A field header cut short: 1 and 2 bytes after a complete field. */
	add_str(&b, T_PASSWORD, SECRET);
	add_str(&b, T_USER, "alice");
	add_raw(&b, "\x03", 1);
	refuse_request(MA_WIRE_AUTH, &b, "truncated field header");
	b.n -= 1;
	add_raw(&b, "\x03\x00", 2);
	refuse_request(MA_WIRE_AUTH, &b, "truncated field header");

	/* A length past the end of the frame (by one byte, and by far). */
	b.n = 0;
	add_str(&b, T_PASSWORD, SECRET);
	add_raw(&b, "\x01\x00\x06" "alice", 8);
	refuse_request(MA_WIRE_AUTH, &b, "longer than the frame");
	b.n = 0;
	add_str(&b, T_PASSWORD, SECRET);
	add_raw(&b, "\x01\xff\xff" "alice", 8);
	refuse_request(MA_WIRE_AUTH, &b, "longer than the frame");

	/* A repeated field: the second value must not win, nor be refused
	 * only after overwriting the first. */
	b.n = 0;
	add_str(&b, T_PASSWORD, SECRET);
	add_str(&b, T_USER, "alice");
	add_str(&b, T_USER, "root");
	refuse_request(MA_WIRE_AUTH, &b, "repeated field");
	b.n = 0;
	add_str(&b, T_PASSWORD, SECRET);
	add_str(&b, T_USER, "alice");
	add_str(&b, T_PASSWORD, "other");
	refuse_request(MA_WIRE_AUTH, &b, "repeated field");
	b.n = 0;
	add_str(&b, T_PASSWORD, SECRET);
	add_str(&b, T_USER, "alice");
	add_str(&b, T_RHOST, "a");
	add_str(&b, T_RHOST, "a");
	refuse_request(MA_WIRE_AUTH, &b, "repeated field");

	/* Unknown tags: 0, unused ones, response tags, past the table. */
	static const unsigned unknown[] = { 0, 7, 15, T_ERR, T_SOURCE, T_SERVER, T_LOGIN, T_MESSAGE,
	                                    24, 31, 32, 0x81, 255 };
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		b.n = 0;
		add_str(&b, T_PASSWORD, SECRET);
		add_str(&b, T_USER, "alice");
		add_str(&b, unknown[i], "v");
		refuse_request(MA_WIRE_AUTH, &b, "unknown field");
		/* Also as the very first field. */
		b.n = 0;
		add_code(&b, unknown[i], 1);
		add_str(&b, T_PASSWORD, SECRET);
		add_str(&b, T_USER, "alice");
		refuse_request(MA_WIRE_AUTH, &b, "unknown field");
	}

	/* Empty fields: every string field, optional ones too. */
	for (size_t i = 0; i < sizeof(request_bounds) / sizeof(request_bounds[0]); i++) {
		b.n = 0;
		if (request_bounds[i].tag != T_PASSWORD)
			add_str(&b, T_PASSWORD, SECRET);
		if (request_bounds[i].tag != T_USER)
			add_str(&b, T_USER, "alice");
		add(&b, request_bounds[i].tag, "", 0);
		refuse_request(MA_WIRE_AUTH, &b, "empty field");
	}

	/* NUL inside a value: in the middle, first, last; in the user, a
	 * password and an optional field. */
	b.n = 0;
	add_str(&b, T_USER, "alice");
	add(&b, T_PASSWORD, nul_mid, sizeof(nul_mid));
	refuse_request(MA_WIRE_AUTH, &b, "NUL");
	b.n = 0;
	add_str(&b, T_PASSWORD, SECRET);
	add(&b, T_USER, "\0alice", 6);
	refuse_request(MA_WIRE_AUTH, &b, "NUL");
	b.n = 0;
	add_str(&b, T_PASSWORD, SECRET);
	add(&b, T_USER, "alice\0", 6);
	refuse_request(MA_WIRE_AUTH, &b, "NUL");
	b.n = 0;
	add_str(&b, T_PASSWORD, SECRET);
	add_str(&b, T_USER, "alice");
	add(&b, T_SERVICE, "ss\0h", 4);
	refuse_request(MA_WIRE_AUTH, &b, "NUL");

	/* Required fields. */
	b.n = 0;
	add_str(&b, T_PASSWORD, SECRET);
	add_str(&b, T_SERVICE, "sshd");
	refuse_request(MA_WIRE_AUTH, &b, "no user");
	b.n = 0;
	refuse_request(MA_WIRE_AUTH, &b, "no user");
	refuse_request(MA_WIRE_ACCOUNT, &b, "no user");
	b.n = 0;
	add_str(&b, T_USER, "alice");
	add_str(&b, T_SERVICE, "sshd");
	refuse_request(MA_WIRE_AUTH, &b, "no password");

	/* A password in an account request: refused, and not kept. */
	b.n = 0;
	add_str(&b, T_USER, "alice");
	add_str(&b, T_PASSWORD, SECRET);
	refuse_request(MA_WIRE_ACCOUNT, &b, "password in an account request");

	/* Not a request type. */
	b.n = 0;
	add_str(&b, T_USER, "alice");
	add_str(&b, T_PASSWORD, SECRET);
	refuse_request(MA_WIRE_RESULT, &b, "not a request");
	refuse_request((enum ma_wire_type)0, &b, "not a request");
	refuse_request((enum ma_wire_type)3, &b, "not a request");

	/* A body over MA_WIRE_MAX_BODY, whatever it holds. */
	b.n = 0;
	add_str(&b, T_USER, "alice");
	add_str(&b, T_PASSWORD, SECRET);
	add_fill(&b, T_RUSER, 'r', MA_WIRE_MAX_BODY + 1 - b.n - 3);
	ck_assert_uint_eq(b.n, MA_WIRE_MAX_BODY + 1);
	refuse_request(MA_WIRE_AUTH, &b, "not a request");
}
END_TEST

/* A valid request body still parses after each of the above: the parser
 * keeps no state between calls, and ACCOUNT with its fields is fine. */
START_TEST(account_request_fields)
{
	struct body b = { .n = 0 };
	struct ma_wire_request out;
	add_str(&b, T_USER, "alice");
	add_str(&b, T_SERVICE, "sshd");
	add_str(&b, T_RHOST, "192.0.2.1");
	accept_request(MA_WIRE_ACCOUNT, &b, &out);
	ck_assert_int_eq(out.type, MA_WIRE_ACCOUNT);
	ck_assert_str_eq(out.user, "alice");
	ck_assert_str_eq(out.password, "");
	ck_assert_str_eq(out.rhost, "192.0.2.1");
	/* The why pointer is optional. */
	ck_assert_int_eq(ma_wire_parse_request(MA_WIRE_ACCOUNT, b.b, b.n, &out, NULL), 0);
	b.n = 0;
	ck_assert_int_eq(ma_wire_parse_request(MA_WIRE_ACCOUNT, b.b, b.n, &out, NULL), -1);
}
END_TEST

/* ---- the encoder's refusals ---- */

START_TEST(encoder_refusals)
{
	struct ma_wire_request r;
	unsigned char frame[MA_WIRE_MAX_FRAME];
	size_t len = 99;

	full_request(&r, MA_WIRE_AUTH);
	r.type = MA_WIRE_RESULT;
	ck_assert_int_eq(ma_wire_encode_request(&r, frame, sizeof(frame), &len), -1);
	ck_assert_uint_eq(len, 0);
	r.type = (enum ma_wire_type)0;
	ck_assert_int_eq(ma_wire_encode_request(&r, frame, sizeof(frame), &len), -1);
	r.type = (enum ma_wire_type)3;
	ck_assert_int_eq(ma_wire_encode_request(&r, frame, sizeof(frame), &len), -1);

	full_request(&r, MA_WIRE_AUTH);
	r.user[0] = '\0';
	ck_assert_int_eq(ma_wire_encode_request(&r, frame, sizeof(frame), &len), -1);
	full_request(&r, MA_WIRE_AUTH);
	r.password[0] = '\0';
	ck_assert_int_eq(ma_wire_encode_request(&r, frame, sizeof(frame), &len), -1);
	full_request(&r, MA_WIRE_AUTH);
	r.type = MA_WIRE_ACCOUNT;       /* an account request carrying a password */
	ck_assert_int_eq(ma_wire_encode_request(&r, frame, sizeof(frame), &len), -1);
	full_request(&r, MA_WIRE_ACCOUNT);
	r.user[0] = '\0';
	ck_assert_int_eq(ma_wire_encode_request(&r, frame, sizeof(frame), &len), -1);
	ma_wire_request_wipe(&r);

	struct ma_wire_response p;
	full_response(&p);
	p.err = (enum ma_err)(MA_ERR_MAX + 1);
	ck_assert_int_eq(ma_wire_encode_response(&p, frame, sizeof(frame), &len), -1);
	p.err = (enum ma_err)-1;
	ck_assert_int_eq(ma_wire_encode_response(&p, frame, sizeof(frame), &len), -1);
	full_response(&p);
	p.source = MA_SOURCE_COUNT;
	ck_assert_int_eq(ma_wire_encode_response(&p, frame, sizeof(frame), &len), -1);
	p.source = (enum ma_wire_source)-1;
	ck_assert_int_eq(ma_wire_encode_response(&p, frame, sizeof(frame), &len), -1);
	full_response(&p);
	ck_assert_int_eq(ma_wire_encode_response(&p, frame, 3, &len), -1);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(ma_wire_encode_response(&p, frame, 20, &len), -1);
	ck_assert_uint_eq(len, 0);
}
END_TEST

/* ---- the header ---- */

static int header(unsigned v, unsigned t, unsigned n, enum ma_wire_type *type, size_t *blen)
{
	unsigned char h[MA_WIRE_HEADER] = { (unsigned char)v, (unsigned char)t,
	                                    (unsigned char)(n >> 8), (unsigned char)(n & 0xff) };
	return ma_wire_parse_header(h, type, blen);
}

START_TEST(headers)
{
	enum ma_wire_type type = 0;
	size_t blen = 99;

	ck_assert_int_eq(header(1, MA_WIRE_AUTH, 0, &type, &blen), 0);
	ck_assert_int_eq(type, MA_WIRE_AUTH);
	ck_assert_uint_eq(blen, 0);
	ck_assert_int_eq(header(1, MA_WIRE_ACCOUNT, 300, &type, &blen), 0);
	ck_assert_int_eq(type, MA_WIRE_ACCOUNT);
	ck_assert_uint_eq(blen, 300);
	ck_assert_int_eq(header(1, MA_WIRE_RESULT, MA_WIRE_MAX_BODY, &type, &blen), 0);
	ck_assert_int_eq(type, MA_WIRE_RESULT);
	ck_assert_uint_eq(blen, MA_WIRE_MAX_BODY);

	/* Wrong version. */
	ck_assert_int_eq(header(0, MA_WIRE_AUTH, 10, &type, &blen), -1);
	ck_assert_int_eq(header(2, MA_WIRE_AUTH, 10, &type, &blen), -1);
	ck_assert_int_eq(header(255, MA_WIRE_AUTH, 10, &type, &blen), -1);
	/* Unknown type. */
	static const unsigned bad_types[] = { 0, 3, 0x7f, 0x80, 0x82, 0xff };
	for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++)
		ck_assert_msg(header(1, bad_types[i], 10, &type, &blen) == -1, "type %u accepted",
		              bad_types[i]);
	/* A body over MA_WIRE_MAX_BODY announced in the header. */
	ck_assert_int_eq(header(1, MA_WIRE_AUTH, MA_WIRE_MAX_BODY + 1, &type, &blen), -1);
	ck_assert_int_eq(header(1, MA_WIRE_RESULT, 0x8000, &type, &blen), -1);
	ck_assert_int_eq(header(1, MA_WIRE_RESULT, 0xffff, &type, &blen), -1);
}
END_TEST

/* ---- malformed responses ---- */

START_TEST(malformed_responses)
{
	struct body b = { .n = 0 };

	/* No ERR at all (a source and text only; an empty body). */
	add_code(&b, T_SOURCE, MA_SOURCE_CACHE);
	add_str(&b, T_DETAIL, "ok");
	refuse_response(&b, "no valid result code");
	b.n = 0;
	refuse_response(&b, "no valid result code");

	/* Codes this version does not know. */
	static const unsigned bad_err[] = { MA_ERR_MAX + 1, 0x7f, 0x80, 0xff };
	for (size_t i = 0; i < sizeof(bad_err) / sizeof(bad_err[0]); i++) {
		b.n = 0;
		add_code(&b, T_ERR, bad_err[i]);
		add_code(&b, T_SOURCE, MA_SOURCE_NETWORK);
		refuse_response(&b, "no valid result code");
	}
	static const unsigned bad_src[] = { MA_SOURCE_COUNT, MA_SOURCE_COUNT + 1, 0x80, 0xff };
	for (size_t i = 0; i < sizeof(bad_src) / sizeof(bad_src[0]); i++) {
		b.n = 0;
		add_code(&b, T_ERR, MA_OK);
		add_code(&b, T_SOURCE, bad_src[i]);
		refuse_response(&b, "unknown source");
	}

	/* A code must be exactly one byte. */
	b.n = 0;
	add(&b, T_ERR, "", 0);
	add_code(&b, T_SOURCE, 0);
	refuse_response(&b, "malformed code");
	b.n = 0;
	add(&b, T_ERR, "\0\0", 2);
	refuse_response(&b, "malformed code");
	b.n = 0;
	add_code(&b, T_ERR, MA_OK);
	add(&b, T_SOURCE, "\x01\x01", 2);
	refuse_response(&b, "malformed code");

	/* Repeated: a second ERR must not turn a failure into a success. */
	b.n = 0;
	add_code(&b, T_ERR, MA_AUTH_FAILED);
	add_code(&b, T_SOURCE, MA_SOURCE_NETWORK);
	add_code(&b, T_ERR, MA_OK);
	refuse_response(&b, "repeated field");
	b.n = 0;
	add_code(&b, T_ERR, MA_OK);
	add_code(&b, T_SOURCE, MA_SOURCE_NETWORK);
	add_str(&b, T_SERVER, "a");
	add_str(&b, T_SERVER, "b");
	refuse_response(&b, "repeated field");

	/* Request tags and unknown tags. */
	static const unsigned unknown[] = { 0, T_USER, T_PASSWORD, T_RUSER, 7, 24, 31, 32, 255 };
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		b.n = 0;
		add_code(&b, T_ERR, MA_OK);
		add_code(&b, T_SOURCE, MA_SOURCE_NETWORK);
		add_str(&b, unknown[i], "v");
		refuse_response(&b, "unknown field");
	}

	/* Framing, emptiness and NUL, as for requests. */
	b.n = 0;
	add_code(&b, T_ERR, MA_OK);
	add_raw(&b, "\x11\x00", 2);
	refuse_response(&b, "truncated field header");
	b.n = 0;
	add_code(&b, T_ERR, MA_OK);
	add_raw(&b, "\x15\x00\x09" "detail", 9);
	refuse_response(&b, "longer than the frame");
	b.n = 0;
	add_code(&b, T_ERR, MA_OK);
	add(&b, T_DETAIL, "", 0);
	refuse_response(&b, "empty field");
	b.n = 0;
	add_code(&b, T_ERR, MA_OK);
	add(&b, T_LOGIN, "al\0ice", 6);
	refuse_response(&b, "NUL");

	/* Over MA_WIRE_MAX_BODY. */
	b.n = 0;
	add_code(&b, T_ERR, MA_OK);
	add_fill(&b, T_DETAIL, 'd', MA_WIRE_MAX_BODY + 1 - b.n - 3);
	ck_assert_uint_eq(b.n, MA_WIRE_MAX_BODY + 1);
	refuse_response(&b, "too long");

	/* With a valid ERR and SOURCE the same shape is accepted (the checks
	 * above fail for the reason they name). */
	b.n = 0;
	add_code(&b, T_ERR, MA_INTERNAL);
	add_code(&b, T_SOURCE, MA_SOURCE_COUNT - 1);
	struct ma_wire_response out;
	ck_assert_int_eq(ma_wire_parse_response(b.b, b.n, &out, NULL), 0);
	ck_assert_int_eq(out.err, MA_INTERNAL);
	ck_assert_int_eq(out.source, MA_SOURCE_BROKER);
}
END_TEST

/* The message goes to a user's terminal (PAM conversation): printable
 * text only, on both sides; the policy code travels. */
START_TEST(message_is_printable_and_policy_travels)
{
	struct ma_wire_response r;
	unsigned char frame[MA_WIRE_MAX_FRAME];
	size_t len = 99;

	full_response(&r);
	r.err = MA_POLICY;
	response_round_trip(&r);
	static const char *const bad[] = { "a\x1b[2Jb", "line\r\nInjected: yes", "tab\there",
	                                   "del\x7f", "\x01" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		full_response(&r);
		snprintf(r.message, sizeof(r.message), "%s", bad[i]);
		ck_assert_int_eq(ma_wire_encode_response(&r, frame, sizeof(frame), &len), -1);
		struct body b = { .n = 0 };
		add_code(&b, T_ERR, MA_POLICY);
		add_code(&b, T_SOURCE, MA_SOURCE_NETWORK);
		add_str(&b, T_MESSAGE, bad[i]);
		refuse_response(&b, "control character");
	}
	/* 8-bit text (escaped by the sender, but UTF-8 is not a control). */
	struct body b = { .n = 0 };
	add_code(&b, T_ERR, MA_POLICY);
	add_code(&b, T_SOURCE, MA_SOURCE_NETWORK);
	add_str(&b, T_MESSAGE, "caf\xc3\xa9 \\x1b");
	struct ma_wire_response out;
	ck_assert_int_eq(ma_wire_parse_response(b.b, b.n, &out, NULL), 0);
	ck_assert_int_eq(out.err, MA_POLICY);
	ck_assert_str_eq(out.message, "caf\xc3\xa9 \\x1b");
}
END_TEST

/* ---- wiping ---- */

START_TEST(request_wipe)
{
	struct ma_wire_request r;
	full_request(&r, MA_WIRE_AUTH);
	memset(r.password, 'P', sizeof(r.password) - 1);
	r.password[sizeof(r.password) - 1] = '\0';
	ma_wire_request_wipe(&r);
	ck_assert(all_zero(&r, sizeof(r)));

	/* A successful parse followed by the wipe leaves nothing either. */
	struct body b = { .n = 0 };
	add_str(&b, T_USER, "alice");
	add_str(&b, T_PASSWORD, SECRET);
	accept_request(MA_WIRE_AUTH, &b, &r);
	ck_assert_ptr_nonnull(memmem(&r, sizeof(r), SECRET, strlen(SECRET)));
	ma_wire_request_wipe(&r);
	ck_assert(all_zero(&r, sizeof(r)));
}
END_TEST

/* A parse over a struct that held an earlier request starts from zero:
 * nothing of the earlier password survives in a shorter new one. */
START_TEST(parse_clears_earlier_contents)
{
	struct ma_wire_request r;
	struct body b = { .n = 0 };
	add_str(&b, T_USER, "alice");
	add_str(&b, T_PASSWORD, SECRET);
	accept_request(MA_WIRE_AUTH, &b, &r);
	b.n = 0;
	add_str(&b, T_USER, "bob");
	add_str(&b, T_PASSWORD, "x");
	accept_request(MA_WIRE_AUTH, &b, &r);
	ck_assert_str_eq(r.password, "x");
	ck_assert_ptr_null(memmem(&r, sizeof(r), SECRET + 1, strlen(SECRET) - 1));
	ck_assert(all_zero(r.password + 1, sizeof(r.password) - 1));
	ma_wire_request_wipe(&r);
}
END_TEST

START_TEST(source_names)
{
	ck_assert_str_eq(ma_wire_source_name(MA_SOURCE_NETWORK), "network");
	ck_assert_str_eq(ma_wire_source_name(MA_SOURCE_CACHE), "cache");
	ck_assert_str_eq(ma_wire_source_name(MA_SOURCE_NEGATIVE), "negative-cache");
	ck_assert_str_eq(ma_wire_source_name(MA_SOURCE_THROTTLE), "throttle");
	ck_assert_str_eq(ma_wire_source_name(MA_SOURCE_OFFLINE), "offline");
	ck_assert_str_eq(ma_wire_source_name(MA_SOURCE_BROKER), "broker");
	ck_assert_str_eq(ma_wire_source_name(MA_SOURCE_COUNT), "unknown");
	ck_assert_str_eq(ma_wire_source_name((enum ma_wire_source)-1), "unknown");
}
END_TEST

static Suite *wire_suite(void)
{
	Suite *s = suite_create("wire");
	TCase *tc = tcase_create("round trips");
	tcase_add_test(tc, auth_request_round_trip);
	tcase_add_test(tc, account_request_round_trip);
	tcase_add_test(tc, request_exact_bytes);
	tcase_add_test(tc, response_round_trip_every_code_and_source);
	tcase_add_test(tc, fields_in_any_order);
	suite_add_tcase(s, tc);

	tc = tcase_create("bounds");
	tcase_add_loop_test(tc, request_bounds_encoder, 0,
	                    (int)(sizeof(request_bounds) / sizeof(request_bounds[0])));
	tcase_add_loop_test(tc, request_bounds_parser, 0,
	                    (int)(sizeof(request_bounds) / sizeof(request_bounds[0])));
	tcase_add_loop_test(tc, response_bounds_both, 0,
	                    (int)(sizeof(response_bounds) / sizeof(response_bounds[0])));
	tcase_add_test(tc, largest_frames_fit);
	suite_add_tcase(s, tc);

	tc = tcase_create("strict parsing");
	tcase_add_test(tc, malformed_requests);
	tcase_add_test(tc, account_request_fields);
	tcase_add_test(tc, encoder_refusals);
	tcase_add_test(tc, headers);
	tcase_add_test(tc, malformed_responses);
	tcase_add_test(tc, message_is_printable_and_policy_travels);
	suite_add_tcase(s, tc);

	tc = tcase_create("secrets");
	tcase_add_test(tc, request_wipe);
	tcase_add_test(tc, parse_clears_earlier_contents);
	tcase_add_test(tc, source_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ma_unit_run(wire_suite());
}
