/*
 * stream.h - a plain-or-TLS byte stream with a bounded, strict line reader
 * and the STARTTLS upgrade.  Owns its socket.
 */
#ifndef MA_STREAM_H
#define MA_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "deadline.h"
#include "libmailauth.h"
#include "tls.h"

/* SPEC 2: IMAP and SMTP lines are 64 KiB at most, CRLF included. */
#define MA_LINE_MAX (64 * 1024)

struct ma_stream;

/* Wrap connected socket FD (ownership passes to the stream, also on error). */
enum ma_err ma_stream_new(int fd, const struct ma_deadline *dl,
                          const struct ma_log *log, struct ma_stream **out);

/* Implicit TLS or STARTTLS: handshake now.  For STARTTLS the caller has just
 * read the server's go-ahead; any byte already buffered after it is a
 * response-injection attack (RFC 3207 section 4.2 / CVE-2011-0411 family)
 * and fails the upgrade with MA_PROTOCOL before the handshake. */
enum ma_err ma_stream_start_tls(struct ma_stream *s, const struct ma_tls_params *p,
                                char *why, size_t whylen);

/*
 * Read one line terminated by CRLF.  *line points into the stream's buffer
 * (without the CRLF, NUL-terminated) and stays valid until the next read.
 * A line longer than MA_LINE_MAX, a NUL byte, a bare CR or LF, or EOF in the
 * middle of a line are MA_PROTOCOL; EOF before any byte is MA_UNAVAILABLE.
 */
enum ma_err ma_stream_read_line(struct ma_stream *s, const char **line, size_t *len);

/* Write all of BUF (plain or TLS) before the deadline. */
enum ma_err ma_stream_write(struct ma_stream *s, const void *buf, size_t len);

/* True when the server has sent something we have not read: bytes in our
 * buffer, decrypted TLS data, or data waiting on the socket. */
bool ma_stream_unsolicited(struct ma_stream *s);

/* Bytes received but not yet consumed by read_line. */
size_t ma_stream_buffered(const struct ma_stream *s);

/* Our local address of the connection (for the SMTP EHLO address
 * literal).  Returns 0, or -1 when unknown. */
int ma_stream_local_address(const struct ma_stream *s, struct sockaddr_storage *addr,
                            socklen_t *len);

/*
 * The first bytes the server sent on the plain connection (before any
 * TLS), for the wrong-port hints (porthint.h): copies at most LEN of them
 * into BUF and returns how many.  *handshake (may be NULL) tells whether a
 * TLS handshake was started on this stream.
 */
size_t ma_stream_peek(const struct ma_stream *s, unsigned char *buf, size_t len,
                      bool *handshake);

/* Wait at most MS milliseconds (and never past the stream's deadline) for
 * the server's first byte: MA_OK when something is there to read,
 * MA_TIMEOUT when not, or the connection's error. */
enum ma_err ma_stream_await_data(struct ma_stream *s, unsigned ms);

/* The TLS session, or NULL while plain. */
struct ma_tls *ma_stream_tls(struct ma_stream *s);

/* Close politely and quickly (TLS close_notify, no wait), wipe buffers,
 * close the socket, free.  *s = NULL.  NULL-safe. */
void ma_stream_close(struct ma_stream **s);

#endif
