/*
 * tls.h - an opaque TLS client stream on a connected, non-blocking socket.
 * Verification happens during the handshake (SSL_VERIFY_PEER, host name,
 * security level 2, minimum version); pins are checked before the handshake
 * is declared good.  Writes go through send(MSG_NOSIGNAL): no SIGPIPE.
 */
#ifndef MA_TLS_H
#define MA_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "deadline.h"
#include "libmailauth.h"

struct ma_tls;

struct ma_tls_params {
	const char *verify_name;       /* DNS name or IP literal to verify */
	const char *ca_file;           /* NULL: system default store */
	const char *ca_path;
	int min_version;               /* TLS1_2_VERSION / TLS1_3_VERSION */
	const unsigned char (*pins)[32];   /* SHA-256 of SPKI, n_pins of them */
	size_t n_pins;
	unsigned port;                 /* only for the explanations (0: unknown) */
};

/*
 * Handshake on FD (not owned) before the deadline.  On MA_OK *out is owned by
 * the caller (ma_tls_free).  On failure returns MA_TLS, MA_TIMEOUT,
 * MA_UNAVAILABLE or MA_NOMEM and fills WHY (escaped): which certificate
 * check failed and what to change (tlsexplain.h), a plaintext greeting
 * where the handshake should be (porthint.h), or OpenSSL's words.
 */
enum ma_err ma_tls_connect(int fd, const struct ma_tls_params *p,
                           const struct ma_deadline *dl, struct ma_tls **out,
                           char *why, size_t whylen);

/* Read up to LEN bytes.  >0 bytes read, 0 peer closed, -1 error (*err set). */
ssize_t ma_tls_read(struct ma_tls *t, void *buf, size_t len,
                    const struct ma_deadline *dl, enum ma_err *err);

/* True when application data from the peer is already waiting (decrypted,
 * or readable from the socket right now), without blocking or consuming
 * it.  Post-handshake messages such as session tickets are not data. */
bool ma_tls_data_waiting(struct ma_tls *t);

/* Write all LEN bytes before the deadline. */
enum ma_err ma_tls_write(struct ma_tls *t, const void *buf, size_t len,
                         const struct ma_deadline *dl);

/* How many of the server's session tickets this connection put into the
 * process-wide cache (at most a few per connection, whatever it sends). */
unsigned ma_tls_tickets_kept(const struct ma_tls *t);

/* Tests only: take (HOLD) or release the process-wide TLS cache lock, to
 * prove that fork() while another thread holds it leaves the child a
 * usable lock. */
void ma_tls_cache_lock_for_test(bool hold);

/* True when the handshake resumed an earlier session (abbreviated). */
bool ma_tls_resumed(const struct ma_tls *t);

/* "TLSv1.3" etc.; the negotiated cipher suite name. */
const char *ma_tls_version(const struct ma_tls *t);
const char *ma_tls_cipher(const struct ma_tls *t);

/*
 * Channel binding data for SCRAM -PLUS as MODE asks (enum ma_cb_mode):
 * MA_CB_AUTO: "tls-exporter" (RFC 9266) on TLS 1.3, "tls-unique" (RFC 5929)
 * on TLS 1.2; MA_CB_TLS_UNIQUE: "tls-unique" on TLS 1.3 too (Cyrus SASL);
 * MA_CB_TLS_EXPORTER: "tls-exporter" only.  On TLS 1.2 either needs the
 * extended master secret.  Copies at most BUFLEN bytes into BUF.  Returns
 * MA_OK and sets *type (static) and *outlen, or MA_TLS (no binding: MA_CB_NONE,
 * or the session cannot provide the one asked for).
 */
enum ma_err ma_tls_channel_binding(struct ma_tls *t, enum ma_cb_mode mode, const char **type,
                                   unsigned char *buf, size_t buflen,
                                   size_t *outlen);

/* Peer certificate summary for `mailauth probe` (subject, issuer, expiry). */
void ma_tls_describe_peer(const struct ma_tls *t, char *buf, size_t len);

/* Send close_notify without waiting for the peer's, free.  *t = NULL. */
void ma_tls_free(struct ma_tls **t);

#endif
