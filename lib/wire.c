/*
 * wire.c - encoding and strict parsing of the broker's frames (wire.h).
 */
#include "wire.h"

#include <string.h>

#include "secret.h"

enum {
	TAG_USER = 1, TAG_PASSWORD = 2, TAG_SERVICE = 3, TAG_RHOST = 4, TAG_TTY = 5,
	TAG_RUSER = 6,
	TAG_ERR = 16, TAG_SOURCE = 17, TAG_SERVER = 18, TAG_MECHANISM = 19, TAG_TLS = 20,
	TAG_DETAIL = 21, TAG_LOGIN = 22, TAG_MESSAGE = 23,
	TAG_MAX = 32
};

/* Which frame a string field belongs to, where it goes and its bound
 * (the destination array holds one more byte for the terminator). */
struct field {
	int tag;
	enum ma_wire_type type;
	size_t offset;
	size_t size;
	bool required_auth, required_account;
};

#define REQ(t, m, a, c) { t, MA_WIRE_AUTH, offsetof(struct ma_wire_request, m), \
                          sizeof(((struct ma_wire_request *)0)->m), a, c }
#define RESP(t, m) { t, MA_WIRE_RESULT, offsetof(struct ma_wire_response, m), \
                     sizeof(((struct ma_wire_response *)0)->m), false, false }

static const struct field request_fields[] = {
	REQ(TAG_USER, user, true, true),
	REQ(TAG_PASSWORD, password, true, false),
	REQ(TAG_SERVICE, service, false, false),
	REQ(TAG_RHOST, rhost, false, false),
	REQ(TAG_TTY, tty, false, false),
	REQ(TAG_RUSER, ruser, false, false),
};

static const struct field response_fields[] = {
	RESP(TAG_SERVER, server),
	RESP(TAG_MECHANISM, mechanism),
	RESP(TAG_TLS, tls_version),
	RESP(TAG_DETAIL, detail),
	RESP(TAG_LOGIN, login),
	RESP(TAG_MESSAGE, message),
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

const char *ma_wire_source_name(enum ma_wire_source s)
{
	static const char *const names[MA_SOURCE_COUNT] = {
		"network", "cache", "negative-cache", "throttle", "offline", "broker",
	};
	return (unsigned)s < MA_SOURCE_COUNT ? names[s] : "unknown";
}

static bool has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

/* ---- encoding ---- */

struct out {
	unsigned char *buf;
	size_t cap, len;
	bool bad;
};

static void put(struct out *o, int tag, const void *value, size_t n)
{
	if (o->bad || n > 0xffff || o->len + 3 + n > o->cap ||
	    o->len + 3 + n > MA_WIRE_HEADER + MA_WIRE_MAX_BODY) {
		o->bad = true;
		return;
	}
	o->buf[o->len++] = (unsigned char)tag;
	o->buf[o->len++] = (unsigned char)(n >> 8);
	o->buf[o->len++] = (unsigned char)(n & 0xff);
	if (n > 0)
		memcpy(o->buf + o->len, value, n);
	o->len += n;
}

/* A string field: present when non-empty; its bound is its array. */
static void put_str(struct out *o, int tag, const char *s, size_t size)
{
	size_t n = strnlen(s, size);
	if (n == size) {              /* not terminated within its array */
		o->bad = true;
		return;
	}
	if (n > 0)
		put(o, tag, s, n);
}

static int finish(struct out *o, enum ma_wire_type type, size_t *len)
{
	if (o->bad || o->cap < MA_WIRE_HEADER)
		return -1;
	size_t body = o->len - MA_WIRE_HEADER;
	o->buf[0] = MA_WIRE_VERSION;
	o->buf[1] = (unsigned char)type;
	o->buf[2] = (unsigned char)(body >> 8);
	o->buf[3] = (unsigned char)(body & 0xff);
	*len = o->len;
	return 0;
}

int ma_wire_encode_request(const struct ma_wire_request *req, unsigned char *buf,
                           size_t cap, size_t *len)
{
	struct out o = { buf, cap, MA_WIRE_HEADER, cap < MA_WIRE_HEADER };
	*len = 0;
	if (req->type != MA_WIRE_AUTH && req->type != MA_WIRE_ACCOUNT)
		return -1;
	if (req->user[0] == '\0' || (req->type == MA_WIRE_AUTH && req->password[0] == '\0') ||
	    (req->type == MA_WIRE_ACCOUNT && req->password[0] != '\0'))
		return -1;
	for (size_t i = 0; i < N(request_fields); i++) {
		const struct field *f = &request_fields[i];
		put_str(&o, f->tag, (const char *)req + f->offset, f->size);
	}
	return finish(&o, req->type, len);
}

int ma_wire_encode_response(const struct ma_wire_response *resp, unsigned char *buf,
                            size_t cap, size_t *len)
{
	struct out o = { buf, cap, MA_WIRE_HEADER, cap < MA_WIRE_HEADER };
	unsigned char err = (unsigned char)resp->err, src = (unsigned char)resp->source;
	*len = 0;
	if ((unsigned)resp->err > MA_ERR_MAX || (unsigned)resp->source >= MA_SOURCE_COUNT)
		return -1;
	if (has_control(resp->message, strnlen(resp->message, sizeof(resp->message))))
		return -1;
	put(&o, TAG_ERR, &err, 1);
	put(&o, TAG_SOURCE, &src, 1);
	for (size_t i = 0; i < N(response_fields); i++) {
		const struct field *f = &response_fields[i];
		put_str(&o, f->tag, (const char *)resp + f->offset, f->size);
	}
	return finish(&o, MA_WIRE_RESULT, len);
}

/* ---- parsing ---- */

int ma_wire_parse_header(const unsigned char hdr[MA_WIRE_HEADER], enum ma_wire_type *type,
                         size_t *body_len)
{
	size_t n = ((size_t)hdr[2] << 8) | hdr[3];
	if (hdr[0] != MA_WIRE_VERSION || n > MA_WIRE_MAX_BODY)
		return -1;
	if (hdr[1] != MA_WIRE_AUTH && hdr[1] != MA_WIRE_ACCOUNT && hdr[1] != MA_WIRE_RESULT)
		return -1;
	*type = (enum ma_wire_type)hdr[1];
	*body_len = n;
	return 0;
}

/*
 * Walk the fields of BODY: string fields of TABLE go into DST; TAG_ERR and
 * TAG_SOURCE (responses) into *ERR / *SRC.  SEEN marks every tag taken.
 */
static int walk(const unsigned char *body, size_t len, const struct field *table, size_t n,
                void *dst, bool seen[TAG_MAX], int *err, int *src, const char **why)
{
	size_t i = 0;
	while (i < len) {
		if (len - i < 3) {
			*why = "truncated field header";
			return -1;
		}
		int tag = body[i];
		size_t flen = ((size_t)body[i + 1] << 8) | body[i + 2];
		i += 3;
		if (flen > len - i) {
			*why = "field longer than the frame";
			return -1;
		}
		const unsigned char *v = body + i;
		i += flen;
		if (tag <= 0 || tag >= TAG_MAX || seen[tag]) {
			*why = tag > 0 && tag < TAG_MAX ? "repeated field" : "unknown field";
			return -1;
		}
		seen[tag] = true;
		if ((tag == TAG_ERR || tag == TAG_SOURCE) && err != NULL) {
			if (flen != 1) {
				*why = "malformed code";
				return -1;
			}
			*(tag == TAG_ERR ? err : src) = v[0];
			continue;
		}
		const struct field *f = NULL;
		for (size_t k = 0; k < n && f == NULL; k++)
			if (table[k].tag == tag)
				f = &table[k];
		if (f == NULL) {
			*why = "unknown field";
			return -1;
		}
		if (flen == 0 || flen >= f->size) {
			*why = flen == 0 ? "empty field" : "field over its bound";
			return -1;
		}
		if (memchr(v, '\0', flen) != NULL) {
			*why = "NUL byte in a field";
			return -1;
		}
		/* The message goes to a user's terminal: printable text only
		 * (the broker escapes it). */
		if (tag == TAG_MESSAGE && has_control((const char *)v, flen)) {
			*why = "control character in the message";
			return -1;
		}
		char *d = (char *)dst + f->offset;
		memcpy(d, v, flen);
		d[flen] = '\0';
	}
	return 0;
}

int ma_wire_parse_request(enum ma_wire_type type, const unsigned char *body, size_t len,
                          struct ma_wire_request *out, const char **why)
{
	bool seen[TAG_MAX] = { false };
	const char *why_unread; /* a local: a shared static would be a data race */
	if (why == NULL)
		why = &why_unread;
	memset(out, 0, sizeof(*out));
	out->type = type;
	*why = "malformed request";
	if ((type != MA_WIRE_AUTH && type != MA_WIRE_ACCOUNT) || len > MA_WIRE_MAX_BODY) {
		*why = "not a request";
		goto bad;
	}
	if (walk(body, len, request_fields, N(request_fields), out, seen, NULL, NULL, why) != 0)
		goto bad;
	if (!seen[TAG_USER]) {
		*why = "no user";
		goto bad;
	}
	if (type == MA_WIRE_AUTH && !seen[TAG_PASSWORD]) {
		*why = "no password";
		goto bad;
	}
	if (type == MA_WIRE_ACCOUNT && seen[TAG_PASSWORD]) {
		*why = "a password in an account request";
		goto bad;
	}
	return 0;
bad:
	ma_wire_request_wipe(out);
	out->type = type;
	return -1;
}

int ma_wire_parse_response(const unsigned char *body, size_t len,
                           struct ma_wire_response *out, const char **why)
{
	bool seen[TAG_MAX] = { false };
	int err = -1, src = 0;
	const char *why_unread; /* a local: a shared static would be a data race */
	if (why == NULL)
		why = &why_unread;
	memset(out, 0, sizeof(*out));
	out->err = MA_INTERNAL;
	if (len > MA_WIRE_MAX_BODY) {
		*why = "response too long";
		return -1;
	}
	if (walk(body, len, response_fields, N(response_fields), out, seen, &err, &src, why) != 0)
		goto bad;
	/* Only the codes this version knows; anything else is not a verdict. */
	if (!seen[TAG_ERR] || err < MA_OK || err > MA_ERR_MAX) {
		*why = "no valid result code";
		goto bad;
	}
	if (!seen[TAG_SOURCE] || src < 0 || src >= MA_SOURCE_COUNT) {
		*why = "unknown source";
		goto bad;
	}
	out->err = (enum ma_err)err;
	out->source = (enum ma_wire_source)src;
	return 0;
bad:
	memset(out, 0, sizeof(*out));
	out->err = MA_PROTOCOL;
	return -1;
}

void ma_wire_request_wipe(struct ma_wire_request *req)
{
	ma_wipe(req, sizeof(*req));
}
