/*
 * porthint.c - wrong-port diagnostics (see porthint.h).
 *
 * The two protocols a port can speak first are easy to tell apart from a
 * few bytes:
 *  - a TLS record starts with its content type (22 handshake, 21 alert),
 *    then the protocol version, whose major byte is 3 and minor byte 0..4
 *    (SSL 3.0 .. TLS 1.3's legacy value; RFC 8446 section 5.1);
 *  - an IMAP greeting is an untagged response, "* OK" / "* PREAUTH" /
 *    "* BYE" (RFC 9051 section 7.1), an SMTP one a reply line, three digits
 *    then SP or "-" (RFC 5321 section 4.2), POP3's "+OK" (RFC 1939 section 4)
 *    for good measure; all printable ASCII.
 */
#include "porthint.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

enum ma_first_bytes ma_porthint_classify(const unsigned char *buf, size_t len)
{
	if (buf == NULL || len == 0)
		return MA_FIRST_NOTHING;
	if (len >= 2 && (buf[0] == 0x16 || buf[0] == 0x15) && buf[1] == 0x03 &&
	    (len < 3 || buf[2] <= 0x04))
		return MA_FIRST_TLS;
	/* The printable part, up to the end of the first line. */
	size_t n = 0;
	while (n < len && buf[n] >= 0x20 && buf[n] < 0x7f)
		n++;
	if (n < len && buf[n] != '\r' && buf[n] != '\n')
		return MA_FIRST_OTHER;
	if (n >= 2 && buf[0] == '*' && buf[1] == ' ')
		return MA_FIRST_GREETING;
	if (n >= 3 && memcmp(buf, "+OK", 3) == 0)
		return MA_FIRST_GREETING;
	if (n >= 4 && buf[0] >= '1' && buf[0] <= '5' && buf[1] >= '0' && buf[1] <= '9' &&
	    buf[2] >= '0' && buf[2] <= '9' && (buf[3] == ' ' || buf[3] == '-'))
		return MA_FIRST_GREETING;
	return MA_FIRST_OTHER;
}

bool ma_porthint_implicit_port(unsigned port)
{
	return port == 993 || port == 465;
}

bool ma_porthint_plaintext_port(unsigned port)
{
	return port == 143 || port == 587 || port == 25;
}

/* The greeting's first line, escaped and cut to a quotable length. */
static char *quote_line(char *out, size_t outlen, const unsigned char *first, size_t len)
{
	size_t n = 0;
	while (n < len && first[n] != '\r' && first[n] != '\n')
		n++;
	const size_t max = 48;
	char esc[4 * 48 + 8];
	ma_escape(esc, sizeof(esc), (const char *)first, n > max ? max : n);
	/* "..." when the line goes on beyond what is quoted. */
	snprintf(out, outlen, "%s%s", esc, n > max || n == len ? "..." : "");
	return out;
}

char *ma_porthint_plain_on_tls(char *out, size_t outlen, unsigned port,
                               const unsigned char *first, size_t len)
{
	char q[4 * 48 + 16];
	snprintf(out, outlen, "port %u speaks plaintext first (the server greeted with \"%s\" "
	         "instead of a TLS handshake): set tls = starttls, or the port of the server's "
	         "implicit TLS (IMAP 993, SMTP 465)",
	         port, quote_line(q, sizeof(q), first, len));
	return out;
}

char *ma_porthint_tls_on_plain(char *out, size_t outlen, unsigned port,
                               const unsigned char *first, size_t len)
{
	const char *what = len > 0 && first[0] == 0x15 ? "a TLS alert" : "a TLS record";
	snprintf(out, outlen, "port %u answered with %s where a plaintext greeting was "
	         "expected: it expects TLS at once, set tls = implicit", port, what);
	return out;
}

char *ma_porthint_no_greeting(char *out, size_t outlen, unsigned port, long ms)
{
	long s = (ms + 500) / 1000;
	if (ma_porthint_implicit_port(port))
		snprintf(out, outlen, "no greeting within %ld s on port %u, which is normally "
		         "implicit TLS: set tls = implicit", s, port);
	else
		snprintf(out, outlen, "no greeting within %ld s on port %u: a server that "
		         "expects TLS at once (implicit TLS) waits in silence like this; if "
		         "this port is one, set tls = implicit", s, port);
	return out;
}

const char *ma_porthint_check(unsigned port, const char *tls)
{
	bool implicit = strcmp(tls, "implicit") == 0;
	if (implicit && port == 143)
		return "port 143 is IMAP with STARTTLS (plaintext first): tls = implicit will "
		       "fail there; use tls = starttls, or port 993";
	if (implicit && port == 587)
		return "port 587 is SMTP submission with STARTTLS (plaintext first): tls = "
		       "implicit will fail there; use tls = starttls, or port 465";
	if (implicit && port == 25)
		return "port 25 is SMTP with STARTTLS (plaintext first): tls = implicit will "
		       "fail there; use tls = starttls, or port 465";
	if (!implicit && port == 993)
		return "port 993 is IMAP over implicit TLS (RFC 8314): the server waits for a "
		       "TLS handshake and sends no plaintext greeting; use tls = implicit, or "
		       "port 143";
	if (!implicit && port == 465)
		return "port 465 is SMTP submission over implicit TLS (RFC 8314): the server "
		       "waits for a TLS handshake and sends no plaintext greeting; use tls = "
		       "implicit, or port 587";
	return NULL;
}
