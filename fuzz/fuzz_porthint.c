/*
 * fuzz_porthint.c - the wrong-port hints (lib/porthint) and the TLS
 * explanations (lib/tlsexplain) over what a server sends: its first bytes,
 * and its certificate.
 *
 * Input: byte 0 flags (bit 0: the rest is a DER certificate, else the
 * server's first bytes; bit 1: tls_min_version 1.3), bytes 1-2 the port
 * (big-endian), byte 3 picks an OpenSSL reason / X.509 error from the
 * tables below, byte 4 the size of the output buffer (1..256), the rest
 * the data.
 *
 * Invariants: the classification equals an independent reading of the TLS
 * record header (RFC 8446 5.1) and of the IMAP / SMTP / POP3 greetings;
 * every message is NUL-terminated inside its buffer and carries no control
 * or 8-bit byte (the server's bytes are escaped); a plaintext greeting in
 * a failed handshake is explained as such, with "set tls = starttls"; the
 * certificate fields are escaped and bounded, whatever the certificate.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common.h"
#include "porthint.h"
#include "tlsexplain.h"

static const int reasons[] = {
	0, SSL_R_WRONG_VERSION_NUMBER, SSL_R_UNSUPPORTED_PROTOCOL,
	SSL_R_TLSV1_ALERT_PROTOCOL_VERSION, SSL_R_EE_KEY_TOO_SMALL, SSL_R_CA_MD_TOO_WEAK,
	SSL_R_DH_KEY_TOO_SMALL, SSL_R_PACKET_LENGTH_TOO_LONG,
};

static const int verify_errors[] = {
	X509_V_OK, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
	X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
	X509_V_ERR_CERT_HAS_EXPIRED, X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_HOSTNAME_MISMATCH,
	X509_V_ERR_IP_ADDRESS_MISMATCH, X509_V_ERR_EE_KEY_TOO_SMALL, X509_V_ERR_CA_MD_TOO_WEAK,
	X509_V_ERR_CERT_REVOKED,
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
	return 0;
}

static void check_text(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	CHECK(n < cap);
	for (size_t i = 0; i < n; i++)
		CHECK((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f);
}

/* The reference reading, written apart from porthint.c. */
static enum ma_first_bytes reference(const uint8_t *b, size_t n)
{
	if (n == 0)
		return MA_FIRST_NOTHING;
	if (n >= 2 && (b[0] == 22 || b[0] == 21) && b[1] == 3 && (n == 2 || b[2] < 5))
		return MA_FIRST_TLS;
	size_t line = 0;
	for (; line < n; line++) {
		if (b[line] == '\r' || b[line] == '\n')
			break;
		if (b[line] < 32 || b[line] > 126)
			return MA_FIRST_OTHER;
	}
	if (line >= 2 && b[0] == '*' && b[1] == ' ')
		return MA_FIRST_GREETING;
	if (line >= 3 && b[0] == '+' && b[1] == 'O' && b[2] == 'K')
		return MA_FIRST_GREETING;
	if (line >= 4 && strchr("12345", b[0]) != NULL && b[0] != 0 &&
	    b[1] >= '0' && b[1] <= '9' && b[2] >= '0' && b[2] <= '9' && (b[3] == ' ' || b[3] == '-'))
		return MA_FIRST_GREETING;
	return MA_FIRST_OTHER;
}

static void fuzz_first_bytes(const uint8_t *d, size_t n, unsigned port, unsigned long err,
                             int min_version, size_t cap)
{
	char *out = malloc(cap);
	char big[600];
	CHECK(out != NULL);
	enum ma_first_bytes kind = ma_porthint_classify(d, n);
	CHECK(kind == reference(d, n));

	ma_porthint_plain_on_tls(out, cap, port, d, n);
	check_text(out, cap);
	ma_porthint_plain_on_tls(big, sizeof(big), port, d, n);
	check_text(big, sizeof(big));
	CHECK(strstr(big, "set tls = starttls") != NULL);
	ma_porthint_tls_on_plain(out, cap, port, d, n);
	check_text(out, cap);
	ma_porthint_tls_on_plain(big, sizeof(big), port, d, n);
	CHECK(strstr(big, "set tls = implicit") != NULL);
	ma_porthint_no_greeting(out, cap, port, (long)n * 1000);
	check_text(out, cap);

	struct ma_tls_failure f;
	memset(&f, 0, sizeof(f));
	f.n_first = n < sizeof(f.first) ? n : sizeof(f.first);
	memcpy(f.first, d, f.n_first);
	f.ssl_error = err;
	f.port = port;
	f.min_version = min_version;
	f.verify_name = "mail.example.org";
	bool named = ma_tlsexplain(&f, big, sizeof(big));
	check_text(big, sizeof(big));
	if (ma_porthint_classify(f.first, f.n_first) == MA_FIRST_GREETING)
		CHECK(named && strncmp(big, "port ", 5) == 0 &&
		      strstr(big, "set tls = starttls") != NULL);
	ma_tlsexplain(&f, out, cap);
	check_text(out, cap);
	free(out);
}

static void fuzz_certificate(const uint8_t *d, size_t n, int verify_error, size_t cap)
{
	const unsigned char *p = d;
	X509 *x = d2i_X509(NULL, &p, (long)n);
	if (x == NULL) {
		ERR_clear_error();
		return;
	}
	struct ma_tls_failure f;
	memset(&f, 0, sizeof(f));
	ma_tlsexplain_cert_info(x, &f.cert);
	check_text(f.cert.subject, sizeof(f.cert.subject));
	check_text(f.cert.issuer, sizeof(f.cert.issuer));
	check_text(f.cert.sans, sizeof(f.cert.sans));
	check_text(f.cert.not_before, sizeof(f.cert.not_before));
	check_text(f.cert.not_after, sizeof(f.cert.not_after));
	check_text(f.cert.key, sizeof(f.cert.key));
	f.verify_error = verify_error != X509_V_OK ? verify_error : X509_V_ERR_HOSTNAME_MISMATCH;
	f.verify_name = "mail.example.org";
	f.ca_file = "/etc/ssl/ca.pem";
	char big[600];
	CHECK(ma_tlsexplain(&f, big, sizeof(big)));
	check_text(big, sizeof(big));
	char *out = malloc(cap);
	CHECK(out != NULL);
	ma_tlsexplain(&f, out, cap);
	check_text(out, cap);
	unsigned char seen[32] = { 0 }, pins[2][32] = { { 1 }, { 2 } };
	ma_tlsexplain_pin(seen, (const unsigned char (*)[32])pins, 2, &f.cert, big, sizeof(big));
	check_text(big, sizeof(big));
	CHECK(strstr(big, "update pin") != NULL);
	free(out);
	X509_free(x);
	ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5)
		return 0;
	unsigned flags = data[0];
	unsigned port = (unsigned)data[1] << 8 | data[2];
	unsigned pick = data[3];
	size_t cap = (size_t)data[4] + 1;
	const uint8_t *d = data + 5;
	size_t n = size - 5;
	int min_version = (flags & 2) ? TLS1_3_VERSION : TLS1_2_VERSION;

	if (flags & 1) {
		fuzz_certificate(d, n, verify_errors[pick % N(verify_errors)], cap);
	} else {
		int r = reasons[pick % N(reasons)];
		unsigned long err = r != 0 ? ERR_PACK(ERR_LIB_SSL, 0, r) : 0;
		fuzz_first_bytes(d, n, port, err, min_version, cap);
	}
	return 0;
}
