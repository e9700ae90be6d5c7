/*
 * wire.h - the broker's socket protocol (SPEC 10): what the module and the
 * tool send mailauthd over its Unix socket, and what it answers.
 *
 * A frame is a 4-byte header and a body of at most MA_WIRE_MAX_BODY bytes:
 *
 *   version (1 byte, 1) | type (1 byte) | body length (2 bytes, big-endian)
 *   body: fields, each  tag (1 byte) | length (2 bytes, big-endian) | value
 *
 * Every field has a bound (user 255, password 1024, service 64, rhost 255,
 * tty 64, ruser 255 bytes; message 255, which also holds no control
 * character), appears at most once, and never holds a NUL byte; an unknown tag, a missing required field, a field of the wrong
 * type of frame or a length that does not add up is malformed.  The
 * parsers are pure functions over (buf, len), for the unit tests and
 * fuzz/fuzz_wire.c.  Structures that hold a password are wiped with
 * ma_wire_request_wipe().
 */
#ifndef MA_WIRE_H
#define MA_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include "libmailauth.h"

#define MA_WIRE_VERSION 1
#define MA_WIRE_HEADER 4
#define MA_WIRE_MAX_BODY 4096
#define MA_WIRE_MAX_FRAME (MA_WIRE_HEADER + MA_WIRE_MAX_BODY)

enum ma_wire_type {
	MA_WIRE_AUTH = 1,        /* check user + password */
	MA_WIRE_ACCOUNT = 2,     /* is user accepted and routed (no password) */
	MA_WIRE_RESULT = 0x81,   /* the broker's answer to either */
};

/* Where a verdict came from, for logs and `mailauth login -b`. */
enum ma_wire_source {
	MA_SOURCE_NETWORK = 0,   /* a mail server, just now */
	MA_SOURCE_CACHE,         /* positive cache (cache_ttl) */
	MA_SOURCE_NEGATIVE,      /* negative cache (negative_ttl) */
	MA_SOURCE_THROTTLE,      /* max_failures reached, server not asked */
	MA_SOURCE_OFFLINE,       /* every server unavailable, stored verifier */
	MA_SOURCE_BROKER,        /* refused by the broker itself (caller, request) */
	MA_SOURCE_COUNT
};

struct ma_wire_request {
	enum ma_wire_type type;
	char user[256];
	char password[1025];     /* AUTH only; secret */
	char service[65];        /* PAM_SERVICE, for logs */
	char rhost[256];         /* PAM_RHOST: logs, throttle, forward_client_ip */
	char tty[65];
	char ruser[256];
};

struct ma_wire_response {
	enum ma_err err;
	enum ma_wire_source source;
	char server[64];
	char mechanism[32];
	char tls_version[16];
	char detail[512];        /* escaped, never secret */
	char login[256];
	/* For the user (the PAM conversation): the server's [ALERT], escaped,
	 * or the meaning of a policy refusal (lib/codes.c); "" for none.  No
	 * control character (the parser refuses one). */
	char message[256];
};

/* "network", "cache", ... */
const char *ma_wire_source_name(enum ma_wire_source s);

/*
 * Encode into BUF (CAP bytes; MA_WIRE_MAX_FRAME is always enough) and set
 * *LEN.  0, or -1 when a field is over its bound or the type is wrong.
 * A request frame holds the password: the caller wipes BUF.
 */
int ma_wire_encode_request(const struct ma_wire_request *req, unsigned char *buf,
                           size_t cap, size_t *len);
int ma_wire_encode_response(const struct ma_wire_response *resp, unsigned char *buf,
                            size_t cap, size_t *len);

/* The header: 0 with *TYPE and *BODY_LEN, or -1 (wrong version, unknown
 * type, body over MA_WIRE_MAX_BODY). */
int ma_wire_parse_header(const unsigned char hdr[MA_WIRE_HEADER], enum ma_wire_type *type,
                         size_t *body_len);

/*
 * Parse a body of TYPE.  0, or -1 with a static reason in *WHY (never
 * containing request bytes).  OUT is zeroed first and wiped on failure.
 */
int ma_wire_parse_request(enum ma_wire_type type, const unsigned char *body, size_t len,
                          struct ma_wire_request *out, const char **why);
int ma_wire_parse_response(const unsigned char *body, size_t len,
                           struct ma_wire_response *out, const char **why);

/* Wipe the whole request (the password with it). */
void ma_wire_request_wipe(struct ma_wire_request *req);

#endif
