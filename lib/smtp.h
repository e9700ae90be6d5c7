/*
 * smtp.h - SMTP submission client for authentication only (RFC 5321,
 * RFC 3207 STARTTLS, RFC 4954 AUTH), and its pure parsers, exported for
 * unit tests and fuzzers.  The session itself is ma_smtp_session()
 * (session.h).
 */
#ifndef MA_SMTP_H
#define MA_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "codes.h"
#include "session.h"

/* Bounds of one reply (SPEC 2: "total reply: bounded").  Each line is also
 * bounded by the stream (MA_LINE_MAX, CRLF included). */
#define MA_SMTP_REPLY_MAX_LINES 100
#define MA_SMTP_REPLY_MAX_BYTES (64 * 1024)

/* Longest EHLO argument we build or accept (RFC 1035: 255 octets for a
 * name; an IPv6 address literal is shorter). */
#define MA_SMTP_HELO_MAX 256

/*
 * Parse one reply line (without CRLF), RFC 5321 section 4.2:
 *   Reply-line = *( Reply-code "-" [ textstring ] CRLF )
 *                Reply-code [ SP textstring ] CRLF
 *   Reply-code = %x32-35 %x30-35 %x30-39
 * *code is the reply code, *last is false for a "-" continuation line,
 * *text / *textlen views the text after the separator (empty for a bare
 * "250", which the grammar allows as the last line).  The text itself is
 * not checked (the stream already refuses NUL, CR and LF; 8-bit text
 * occurs in real greetings and is escaped before it is logged).
 * Returns 0, or -1 when malformed (two digits, letters, no separator...).
 */
int ma_smtp_parse_reply_line(const char *line, size_t len, int *code, bool *last,
                             const char **text, size_t *textlen);

/* A reply being read line by line.  Zero it (or ma_smtp_reply_init) first. */
struct ma_smtp_reply {
	int code;              /* of the first line; 0 before any */
	unsigned lines;        /* lines added so far */
	size_t bytes;          /* their size, CRLF included */
	bool complete;         /* the last line has been added */
	const char *text;      /* text of the line added last: a view into the
	                          caller's line, valid as long as it is */
	size_t text_len;
	/* The text of every line joined by one space, raw (escape it before
	 * it is shown), cut at MA_CODES_TEXT_MAX - 1 bytes: the enhanced
	 * status code of the first line (RFC 2034 section 4: repeated on
	 * every line) and the spaces after it are left out of the later
	 * lines, so that "534-5.7.9 a\r\n534 5.7.9  b" joins to "5.7.9 a b". */
	char joined[MA_CODES_TEXT_MAX];
	size_t joined_len;
	size_t enhanced_len;   /* of the first line's enhanced code, or 0 */
};

void ma_smtp_reply_init(struct ma_smtp_reply *r);

/*
 * Add one line (without CRLF) to R.  Enforces the line grammar, the same
 * code on every line of a multi-line reply (RFC 5321 section 4.2.1), at
 * most MA_SMTP_REPLY_MAX_LINES lines and MA_SMTP_REPLY_MAX_BYTES bytes.
 * Returns 1 when the reply is complete, 0 when more lines must follow,
 * -1 when malformed, over a bound, or added to a complete reply.
 */
int ma_smtp_reply_add(struct ma_smtp_reply *r, const char *line, size_t len);

/*
 * Parse the text of one EHLO reply line after the first (RFC 5321 4.1.1.1
 * ehlo-line = ehlo-keyword *( SP ehlo-param )) into CAPS (adds to it):
 * STARTTLS, AUTH with its mechanisms (RFC 4954 section 3) and the legacy
 * "AUTH=PLAIN LOGIN" form.  Keywords and mechanism names are matched
 * exactly and case-insensitively ("XPLAIN" is not PLAIN).  Unknown
 * keywords are ignored.  Returns 0, or -1 when the keyword is malformed
 * (the line is then ignored).
 */
int ma_smtp_parse_ehlo_line(const char *text, size_t len, struct ma_caps *caps);

/*
 * How the SASL engine should read the reply CODE to AUTH or to a response
 * (RFC 4954 section 6), PAYLOAD_SENT telling whether any credential-bearing
 * data went out in this exchange.  Returns an enum ma_sasl_reply value
 * (sasl.h), or -1 for a reply that is out of sequence (a protocol error).
 */
int ma_smtp_auth_reply_kind(int code, bool payload_sent);

/*
 * The same for a whole reply R, whose joined text is read through the
 * table of lib/codes.c (Microsoft 365's "535 5.7.139 ... disabled for the
 * Tenant" is a policy refusal, a bare 535 a rejection); the row goes to
 * *ROW (NULL for 334, 235 and replies out of sequence).
 */
int ma_smtp_auth_reply(const struct ma_smtp_reply *r, bool payload_sent,
                       const struct ma_code_row **row);

/*
 * Choose the EHLO argument into BUF (size LEN, NUL-terminated):
 * CONFIGURED when non-NULL and non-empty (it must be a valid domain or
 * address literal, else -1), else HOSTNAME when it is a valid domain, else
 * the address literal of LOCAL ("[192.0.2.1]" / "[IPv6:2001:db8::1]"),
 * else "[127.0.0.1]" when LOCAL is NULL or not IPv4/IPv6.
 * Returns 0, or -1 when CONFIGURED is invalid or BUF is too small.
 */
int ma_smtp_helo_name(const char *configured, const char *hostname,
                      const struct sockaddr *local, socklen_t local_len,
                      char *buf, size_t len);

#endif
