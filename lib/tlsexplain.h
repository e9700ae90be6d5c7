/*
 * tlsexplain.h - say why a TLS connection was refused and which setting
 * to change: the failing certificate check (chain, dates, name, key size),
 * the pin, the protocol version, or a plaintext server on the port.
 *
 * The certificate fields are chosen by whoever sent the certificate (an
 * attacker, possibly): they are copied bounded and escaped, and only ever
 * quoted.  No explanation offers to turn verification off (SPEC 2: there
 * is no such option); the remedies are ca_file, verify_name, pin,
 * tls_min_version, tls, or a new certificate on the server.
 */
#ifndef MA_TLSEXPLAIN_H
#define MA_TLSEXPLAIN_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#include "porthint.h"

/* What is shown of one certificate, escaped and bounded. */
struct ma_cert_info {
	char subject[128];
	char issuer[128];
	char sans[192];          /* "DNS:a, DNS:b, IP:127.0.0.1", "" when none */
	char not_before[32];     /* "2026-01-01 00:00:00 UTC" */
	char not_after[32];
	char key[32];            /* "RSA 1024 bits", "EC 256 bits" */
	bool self_signed;        /* subject == issuer */
};

/* Everything known about a failed handshake. */
struct ma_tls_failure {
	int verify_error;        /* first failing X509_V_ERR_*, X509_V_OK: none */
	int depth;               /* where in the chain (0: the server's own) */
	struct ma_cert_info cert;   /* the certificate at that depth */
	unsigned long ssl_error; /* OpenSSL's last error code, 0: none (a TLS alert
	                            from the server is one of its reasons) */
	unsigned char first[MA_PORTHINT_BYTES];  /* first bytes the server sent */
	size_t n_first;
	/* The settings, for the messages. */
	unsigned port;
	int min_version;         /* TLS1_2_VERSION / TLS1_3_VERSION */
	const char *verify_name;
	const char *ca_file;     /* NULL: ca_path or the system store */
	const char *ca_path;
};

/* Fill CI from X (escaped, bounded; fields stay "" when unreadable). */
void ma_tlsexplain_cert_info(X509 *x, struct ma_cert_info *ci);

/*
 * The explanation of F in OUT (at most OUTLEN - 1 bytes, NUL-terminated).
 * Returns true when it could name the cause, false when OUT only carries
 * OpenSSL's own words (or "TLS handshake failed").
 */
bool ma_tlsexplain(const struct ma_tls_failure *f, char *out, size_t outlen);

/*
 * A pin mismatch: SEEN is the SHA-256 of the server's SubjectPublicKeyInfo,
 * PINS the N configured ones.  Names both in the sha256//BASE64 form of
 * the configuration.
 */
void ma_tlsexplain_pin(const unsigned char seen[32], const unsigned char (*pins)[32],
                       size_t n, const struct ma_cert_info *cert, char *out, size_t outlen);

#endif
