/*
 * imap.h - IMAP client for authentication only (RFC 9051 / RFC 3501), and
 * its pure parsers, exported for unit tests and fuzzers.
 */
#ifndef MA_IMAP_H
#define MA_IMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "session.h"

enum ma_imap_kind { MA_IMAP_UNTAGGED, MA_IMAP_CONTINUATION, MA_IMAP_TAGGED };
enum ma_imap_status {
	MA_IMAP_NONE,      /* untagged data, e.g. "* CAPABILITY ..." */
	MA_IMAP_OK, MA_IMAP_NO, MA_IMAP_BAD, MA_IMAP_PREAUTH, MA_IMAP_BYE,
};

/* One server line, as views into the caller's buffer (no copies). */
struct ma_imap_line {
	enum ma_imap_kind kind;
	const char *tag;   size_t tag_len;     /* tagged only */
	enum ma_imap_status status;
	const char *code;  size_t code_len;    /* inside [ ], or NULL */
	const char *text;  size_t text_len;    /* rest of the line */
};

/* Parse one line (without CRLF).  Returns 0, or -1 when malformed. */
int ma_imap_parse_line(const char *line, size_t len, struct ma_imap_line *out);

/* Parse a space-separated capability list into CAPS (adds to it).
 * Returns 0, or -1 when malformed. */
int ma_imap_parse_caps(const char *list, size_t len, struct ma_caps *caps);

/*
 * Append S as an IMAP string for the LOGIN command to BUF (size CAP, used
 * *used): a quoted string when every byte is 7-bit and not CR/LF/NUL
 * (RFC 9051 "quoted", with \" and \\ escaped), else a synchronizing literal
 * header "{N}" (the caller sends the bytes after the server's "+").
 * Returns 1 for quoted, 2 for literal, -1 when it does not fit or S has NUL.
 */
int ma_imap_astring(const char *s, size_t len, char *buf, size_t cap, size_t *used);

struct ma_code_row;

/*
 * How the SASL engine should read line L in an AUTHENTICATE exchange (or
 * the tagged answer to LOGIN), PAYLOAD_SENT telling whether any
 * credential-bearing data went out: an enum ma_sasl_reply value (sasl.h),
 * or -1 for an untagged line.  A tagged NO or BAD is read through the
 * table of lib/codes.c, whose row goes to *ROW (NULL for OK and
 * continuations).
 */
int ma_imap_auth_reply(const struct ma_imap_line *l, bool payload_sent,
                       const struct ma_code_row **row);

#endif
