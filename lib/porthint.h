/*
 * porthint.h - "wrong port" diagnostics: recognise from the first bytes a
 * server sent that it speaks TLS where a plaintext greeting was expected,
 * or plaintext where a TLS handshake was, and say which setting to change.
 *
 * Pure functions over (buf, len): the bytes are the server's (untrusted),
 * so every message quotes them escaped and bounded.  Nothing here decides
 * an outcome; the caller's verdict (a failure) stays what it was, only its
 * explanation changes.
 */
#ifndef MA_PORTHINT_H
#define MA_PORTHINT_H

#include <stdbool.h>
#include <stddef.h>

/* How many of the first bytes are kept to be looked at. */
#define MA_PORTHINT_BYTES 32

/* How long a STARTTLS / plain connection to a well-known implicit-TLS port
 * (993, 465) waits for the greeting before it is called a wrong port. */
#define MA_PORTHINT_GREETING_MS 3000

enum ma_first_bytes {
	MA_FIRST_NOTHING,     /* no byte received */
	MA_FIRST_TLS,         /* a TLS record header (handshake or alert) */
	MA_FIRST_GREETING,    /* an IMAP "* OK" / SMTP "220" style plaintext line */
	MA_FIRST_OTHER,
};

/* What BUF (the first LEN bytes from the server) looks like. */
enum ma_first_bytes ma_porthint_classify(const unsigned char *buf, size_t len);

/* Well-known ports: 993 (imaps) and 465 (submissions) expect TLS at once
 * (RFC 8314); 143, 587 and 25 greet in plaintext first. */
bool ma_porthint_implicit_port(unsigned port);
bool ma_porthint_plaintext_port(unsigned port);

/*
 * The messages.  Each writes a NUL-terminated, escaped text of at most
 * OUTLEN - 1 bytes into OUT and returns OUT.
 *
 * plain_on_tls: tls = implicit, and the server greeted in plaintext during
 *   our handshake (FIRST: its first bytes).
 * tls_on_plain: tls = starttls / none, and the server answered with a TLS
 *   record where its greeting should be.
 * no_greeting: tls = starttls / none, and nothing came within MS
 *   milliseconds (a TLS server waits for our ClientHello in silence).
 */
char *ma_porthint_plain_on_tls(char *out, size_t outlen, unsigned port,
                               const unsigned char *first, size_t len);
char *ma_porthint_tls_on_plain(char *out, size_t outlen, unsigned port,
                               const unsigned char *first, size_t len);
char *ma_porthint_no_greeting(char *out, size_t outlen, unsigned port, long ms);

/*
 * `mailauth check`: a warning when TLS ("implicit", "starttls" or "none")
 * contradicts the well-known use of PORT, else NULL.  Static text.
 */
const char *ma_porthint_check(unsigned port, const char *tls);

#endif
