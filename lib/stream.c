/*
 * stream.c - plain-or-TLS byte stream with a strict, bounded line reader.
 *
 * The reader never truncates: a line that does not fit MA_LINE_MAX is a
 * protocol error (SPEC 2), and so are NUL bytes and a CR or LF that is not
 * part of a CRLF pair (RFC 9051 and RFC 5321 both end lines with CRLF; a
 * lone LF is how response smuggling starts).
 */
#include "stream.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "porthint.h"
#include "secret.h"

#define BUF_SIZE (MA_LINE_MAX + 1)

struct ma_stream {
	int fd;
	struct ma_tls *tls;
	const struct ma_deadline *dl;
	const struct ma_log *log;
	size_t start, end;          /* unread bytes are buf[start, end) */
	/* For the wrong-port hints: what the server said first, in plain. */
	unsigned char first[MA_PORTHINT_BYTES];
	size_t n_first;
	bool handshake;             /* a TLS handshake was started */
	char buf[BUF_SIZE];
};

enum ma_err ma_stream_new(int fd, const struct ma_deadline *dl,
                          const struct ma_log *log, struct ma_stream **out)
{
	struct ma_stream *s = malloc(sizeof(*s));
	*out = NULL;
	if (s == NULL) {
		close(fd);
		return MA_NOMEM;
	}
	s->fd = fd;
	s->tls = NULL;
	s->dl = dl;
	s->log = log;
	s->start = s->end = 0;
	s->n_first = 0;
	s->handshake = false;
	*out = s;
	return MA_OK;
}

enum ma_err ma_stream_start_tls(struct ma_stream *s, const struct ma_tls_params *p,
                                char *why, size_t whylen)
{
	if (s->tls != NULL) {
		snprintf(why, whylen, "TLS already active");
		return MA_PROTOCOL;
	}
	/* RFC 3207 section 4.2 / RFC 2595 section 3.1: the client MUST discard
	 * anything received before the handshake.  Bytes already sitting behind
	 * the server's go-ahead can only be an injection: abort instead. */
	if (s->end > s->start) {
		snprintf(why, whylen, "server sent %zu bytes after the STARTTLS reply",
		         s->end - s->start);
		return MA_PROTOCOL;
	}
	/* The same check on the socket itself, for bytes that arrived since. */
	unsigned char probe[MA_PORTHINT_BYTES];
	ssize_t n = recv(s->fd, probe, sizeof(probe), MSG_PEEK | MSG_DONTWAIT);
	if (n > 0 && s->n_first == 0 &&
	    ma_porthint_classify(probe, (size_t)n) == MA_FIRST_GREETING) {
		/* Implicit TLS, and the server greeted before our ClientHello:
		 * a plaintext port (porthint.h). */
		ma_porthint_plain_on_tls(why, whylen, p->port, probe, (size_t)n);
		return MA_TLS;
	}
	if (n > 0) {
		/* A ClientHello has not been sent yet, so the server has no reason to
		 * speak: whatever is there is plaintext injected before TLS. */
		snprintf(why, whylen, "server sent data before the TLS handshake");
		return MA_PROTOCOL;
	}
	s->start = s->end = 0;
	s->handshake = true;
	enum ma_err rc = ma_tls_connect(s->fd, p, s->dl, &s->tls, why, whylen);
	if (rc == MA_OK)
		ma_debug(s->log, "TLS established: %s %s, certificate verified for %s%s",
		         ma_tls_version(s->tls), ma_tls_cipher(s->tls), p->verify_name,
		         ma_tls_resumed(s->tls) ? ", session resumed" : "");
	return rc;
}

static enum ma_err fill(struct ma_stream *s)
{
	if (s->start > 0) {
		memmove(s->buf, s->buf + s->start, s->end - s->start);
		s->end -= s->start;
		s->start = 0;
	}
	size_t room = BUF_SIZE - s->end;
	if (room == 0)
		return MA_PROTOCOL;
	if (s->tls != NULL) {
		enum ma_err err = MA_OK;
		ssize_t n = ma_tls_read(s->tls, s->buf + s->end, room, s->dl, &err);
		if (n < 0)
			return err;
		if (n == 0)
			return MA_UNAVAILABLE;
		s->end += (size_t)n;
		return MA_OK;
	}
	for (;;) {
		ssize_t n = recv(s->fd, s->buf + s->end, room, 0);
		if (n > 0) {
			if (s->n_first < sizeof(s->first)) {
				size_t k = sizeof(s->first) - s->n_first;
				memcpy(s->first + s->n_first, s->buf + s->end, k < (size_t)n ? k : (size_t)n);
				s->n_first += k < (size_t)n ? k : (size_t)n;
			}
			s->end += (size_t)n;
			ma_net_quickack(s->fd);
			return MA_OK;
		}
		if (n == 0)
			return MA_UNAVAILABLE;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return MA_UNAVAILABLE;
		enum ma_err w = ma_net_wait(s->fd, POLLIN, s->dl);
		if (w != MA_OK)
			return w;
	}
}

enum ma_err ma_stream_read_line(struct ma_stream *s, const char **line, size_t *len)
{
	size_t scanned = 0;   /* bytes of the current line already checked */

	*line = NULL;
	*len = 0;
	for (;;) {
		char *base = s->buf + s->start;
		size_t avail = s->end - s->start;
		for (; scanned < avail; scanned++) {
			char c = base[scanned];
			if (c == '\0')
				return MA_PROTOCOL;
			if (c == '\n') {
				if (scanned == 0 || base[scanned - 1] != '\r')
					return MA_PROTOCOL;
				base[scanned - 1] = '\0';
				*line = base;
				*len = scanned - 1;
				s->start += scanned + 1;
				return MA_OK;
			}
			if (c == '\r' && scanned + 1 < avail && base[scanned + 1] != '\n')
				return MA_PROTOCOL;
		}
		if (avail >= MA_LINE_MAX)
			return MA_PROTOCOL;
		bool mid_line = avail > 0;
		enum ma_err rc = fill(s);
		if (rc == MA_UNAVAILABLE && mid_line)
			return MA_PROTOCOL;    /* EOF inside a line */
		if (rc != MA_OK)
			return rc;
	}
}

enum ma_err ma_stream_write(struct ma_stream *s, const void *buf, size_t len)
{
	if (s->tls != NULL)
		return ma_tls_write(s->tls, buf, len, s->dl);
	const char *p = buf;
	while (len > 0) {
		ssize_t n = send(s->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return MA_UNAVAILABLE;
		enum ma_err w = ma_net_wait(s->fd, POLLOUT, s->dl);
		if (w != MA_OK)
			return w;
	}
	return MA_OK;
}

bool ma_stream_unsolicited(struct ma_stream *s)
{
	if (s->end > s->start)
		return true;
	if (s->tls != NULL)
		return ma_tls_data_waiting(s->tls);
	char c;
	return recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

size_t ma_stream_buffered(const struct ma_stream *s)
{
	return s->end - s->start;
}

int ma_stream_local_address(const struct ma_stream *s, struct sockaddr_storage *addr,
                            socklen_t *len)
{
	*len = sizeof(*addr);
	return getsockname(s->fd, (struct sockaddr *)addr, len) == 0 ? 0 : -1;
}

size_t ma_stream_peek(const struct ma_stream *s, unsigned char *buf, size_t len,
                      bool *handshake)
{
	size_t n = s->n_first < len ? s->n_first : len;
	memcpy(buf, s->first, n);
	if (handshake != NULL)
		*handshake = s->handshake;
	return n;
}

enum ma_err ma_stream_await_data(struct ma_stream *s, unsigned ms)
{
	if (s->end > s->start)
		return MA_OK;
	struct ma_deadline cap;
	ma_deadline_start(&cap, ms);
	/* The earlier of the two ends. */
	const struct ma_deadline *dl = s->dl;
	if (dl == NULL || ma_deadline_remaining_ms(&cap) < ma_deadline_remaining_ms(dl))
		dl = &cap;
	return ma_net_wait(s->fd, POLLIN, dl);
}

struct ma_tls *ma_stream_tls(struct ma_stream *s)
{
	return s->tls;
}

void ma_stream_close(struct ma_stream **sp)
{
	struct ma_stream *s = *sp;
	if (s == NULL)
		return;
	ma_tls_free(&s->tls);
	close(s->fd);
	ma_freezero(s, sizeof(*s));
	*sp = NULL;
}
