/*
 * test_hints.c - the wrong-port hints (lib/porthint) and the certificate
 * explanations (lib/tlsexplain): what the first bytes of a server look
 * like, every message naming its cause and the setting to change, the
 * `mailauth check` warnings, and the certificate fields (attacker-chosen)
 * escaped and bounded.  The real handshakes are in tests/real/test_hints.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "porthint.h"
#include "tlsexplain.h"
#include "unit.h"

#define B(s) (const unsigned char *)(s), sizeof(s) - 1

static void assert_contains(const char *text, const char *part)
{
	ck_assert_msg(strstr(text, part) != NULL, "\"%s\" not in \"%s\"", part, text);
}

/* Escaped (no control or 8-bit byte), and never the remedy SPEC 2 forbids. */
static void assert_clean(const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
		ck_assert_msg(*p >= 0x20 && *p < 0x7f, "byte 0x%02x in \"%s\"", *p, text);
	ck_assert_msg(strstr(text, "disable") == NULL && strstr(text, "verify = no") == NULL &&
	              strstr(text, "insecure") == NULL, "offers to turn verification off: %s", text);
}

/* ---- porthint ---- */

START_TEST(classify_tls_records)
{
	ck_assert_int_eq(ma_porthint_classify(B("\x16\x03\x01\x02\x00\x01")), MA_FIRST_TLS);
	ck_assert_int_eq(ma_porthint_classify(B("\x16\x03\x03")), MA_FIRST_TLS);
	ck_assert_int_eq(ma_porthint_classify(B("\x15\x03\x03\x00\x02\x02\x46")), MA_FIRST_TLS);
	ck_assert_int_eq(ma_porthint_classify(B("\x15\x03\x00")), MA_FIRST_TLS);
	ck_assert_int_eq(ma_porthint_classify(B("\x16\x03\x04")), MA_FIRST_TLS);
	ck_assert_int_eq(ma_porthint_classify(B("\x16\x03")), MA_FIRST_TLS);
	/* Not TLS: minor version 5, major 2, application data, one byte. */
	ck_assert_int_eq(ma_porthint_classify(B("\x16\x03\x05")), MA_FIRST_OTHER);
	ck_assert_int_eq(ma_porthint_classify(B("\x16\x02\x01")), MA_FIRST_OTHER);
	ck_assert_int_eq(ma_porthint_classify(B("\x17\x03\x03")), MA_FIRST_OTHER);
	ck_assert_int_eq(ma_porthint_classify(B("\x16")), MA_FIRST_OTHER);
	ck_assert_int_eq(ma_porthint_classify(NULL, 0), MA_FIRST_NOTHING);
	ck_assert_int_eq(ma_porthint_classify(B("")), MA_FIRST_NOTHING);
}
END_TEST

START_TEST(classify_greetings)
{
	ck_assert_int_eq(ma_porthint_classify(B("* OK [CAPABILITY IMAP4rev1] ready\r\n")),
	                 MA_FIRST_GREETING);
	ck_assert_int_eq(ma_porthint_classify(B("* OK ")), MA_FIRST_GREETING);   /* 5 bytes */
	ck_assert_int_eq(ma_porthint_classify(B("* BYE")), MA_FIRST_GREETING);
	ck_assert_int_eq(ma_porthint_classify(B("220 mail.example.org ESMTP\r\n")), MA_FIRST_GREETING);
	ck_assert_int_eq(ma_porthint_classify(B("220-mail")), MA_FIRST_GREETING);
	ck_assert_int_eq(ma_porthint_classify(B("554 no")), MA_FIRST_GREETING);
	ck_assert_int_eq(ma_porthint_classify(B("+OK POP3")), MA_FIRST_GREETING);
	/* Not a greeting: too short, not a reply code, binary inside the line. */
	ck_assert_int_eq(ma_porthint_classify(B("220")), MA_FIRST_OTHER);
	ck_assert_int_eq(ma_porthint_classify(B("*")), MA_FIRST_OTHER);
	ck_assert_int_eq(ma_porthint_classify(B("HTTP/1.1 400")), MA_FIRST_OTHER);
	ck_assert_int_eq(ma_porthint_classify(B("620 x")), MA_FIRST_OTHER);
	ck_assert_int_eq(ma_porthint_classify(B("* OK\x01\x02")), MA_FIRST_OTHER);
	ck_assert_int_eq(ma_porthint_classify(B("220 \xff")), MA_FIRST_OTHER);
	ck_assert_int_eq(ma_porthint_classify(B("\0* OK")), MA_FIRST_OTHER);
}
END_TEST

START_TEST(well_known_ports)
{
	ck_assert(ma_porthint_implicit_port(993));
	ck_assert(ma_porthint_implicit_port(465));
	ck_assert(!ma_porthint_implicit_port(143));
	ck_assert(!ma_porthint_implicit_port(21144));
	ck_assert(ma_porthint_plaintext_port(143));
	ck_assert(ma_porthint_plaintext_port(587));
	ck_assert(ma_porthint_plaintext_port(25));
	ck_assert(!ma_porthint_plaintext_port(993));
}
END_TEST

START_TEST(message_plain_on_tls)
{
	char out[512];
	ma_porthint_plain_on_tls(out, sizeof(out), 143, B("* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n"));
	assert_contains(out, "port 143 speaks plaintext first");
	assert_contains(out, "\"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\"");
	assert_contains(out, "set tls = starttls");
	assert_clean(out);
	ma_porthint_plain_on_tls(out, sizeof(out), 587, B("220 mail.example.org ESMTP"));
	assert_contains(out, "port 587 speaks plaintext first");
	assert_contains(out, "\"220 mail.example.org ESMTP...\"");
	/* A long or hostile greeting is cut and escaped. */
	char hostile[200];
	memset(hostile, 'A', sizeof(hostile));
	memcpy(hostile, "* OK \x1b[31m\\", 11);
	ma_porthint_plain_on_tls(out, sizeof(out), 143, (const unsigned char *)hostile, sizeof(hostile));
	assert_clean(out);
	assert_contains(out, "\\x1b[31m\\x5c");
	assert_contains(out, "...\"");
	ck_assert_ptr_null(strstr(out, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	/* Bounded by the caller's buffer. */
	char small[24];
	ma_porthint_plain_on_tls(small, sizeof(small), 143, B("* OK hello"));
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
}
END_TEST

START_TEST(message_tls_on_plain)
{
	char out[512];
	ma_porthint_tls_on_plain(out, sizeof(out), 993, B("\x16\x03\x03\x00\x10"));
	ck_assert_str_eq(out, "port 993 answered with a TLS record where a plaintext greeting "
	                      "was expected: it expects TLS at once, set tls = implicit");
	ma_porthint_tls_on_plain(out, sizeof(out), 12345, B("\x15\x03\x01\x00\x02\x02\x46"));
	assert_contains(out, "port 12345 answered with a TLS alert");
	assert_contains(out, "set tls = implicit");
}
END_TEST

START_TEST(message_no_greeting)
{
	char out[512];
	ma_porthint_no_greeting(out, sizeof(out), 993, 3004);
	ck_assert_str_eq(out, "no greeting within 3 s on port 993, which is normally implicit "
	                      "TLS: set tls = implicit");
	ma_porthint_no_greeting(out, sizeof(out), 465, 2999);
	assert_contains(out, "within 3 s on port 465, which is normally implicit TLS");
	ma_porthint_no_greeting(out, sizeof(out), 21144, 10000);
	assert_contains(out, "no greeting within 10 s on port 21144");
	assert_contains(out, "implicit TLS");
	assert_contains(out, "set tls = implicit");
}
END_TEST

START_TEST(check_warnings)
{
	static const struct { unsigned port; const char *tls; const char *says; } warn[] = {
		{ 143, "implicit", "tls = starttls" }, { 587, "implicit", "tls = starttls" },
		{ 25, "implicit", "tls = starttls" }, { 993, "starttls", "tls = implicit" },
		{ 993, "none", "tls = implicit" }, { 465, "starttls", "tls = implicit" },
		{ 465, "none", "tls = implicit" },
	};
	for (size_t i = 0; i < sizeof(warn) / sizeof(warn[0]); i++) {
		const char *w = ma_porthint_check(warn[i].port, warn[i].tls);
		ck_assert_msg(w != NULL, "no warning for port %u tls %s", warn[i].port, warn[i].tls);
		assert_contains(w, warn[i].says);
		char p[16];
		snprintf(p, sizeof(p), "port %u", warn[i].port);
		assert_contains(w, p);
	}
	static const struct { unsigned port; const char *tls; } fine[] = {
		{ 143, "starttls" }, { 143, "none" }, { 587, "starttls" }, { 25, "starttls" },
		{ 993, "implicit" }, { 465, "implicit" }, { 21144, "starttls" }, { 21144, "implicit" },
	};
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++)
		ck_assert_msg(ma_porthint_check(fine[i].port, fine[i].tls) == NULL,
		              "warning for port %u tls %s", fine[i].port, fine[i].tls);
}
END_TEST

/* ---- tlsexplain: certificates made here ---- */

struct san { int type; const char *value; size_t len; };

/* A certificate with the given subject CN, issuer CN, SANs and dates,
 * signed by its own (EC P-256) key. */
static X509 *make_cert(const char *cn, size_t cnlen, const char *issuer,
                       const struct san *sans, size_t n_sans, const char *nb, const char *na)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	ck_assert(k != NULL && x != NULL);
	ck_assert(X509_set_version(x, 2) == 1);
	ck_assert(ASN1_INTEGER_set(X509_get_serialNumber(x), 7) == 1);
	ck_assert(ASN1_TIME_set_string(X509_getm_notBefore(x), nb) == 1);
	ck_assert(ASN1_TIME_set_string(X509_getm_notAfter(x), na) == 1);
	ck_assert(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", V_ASN1_UTF8STRING,
	                                     (const unsigned char *)cn, (int)cnlen, -1, 0) == 1);
	ck_assert(X509_NAME_add_entry_by_txt(X509_get_issuer_name(x), "CN", MBSTRING_ASC,
	                                     (const unsigned char *)issuer, -1, -1, 0) == 1);
	ck_assert(X509_set_pubkey(x, k) == 1);
	if (n_sans > 0) {
		GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
		for (size_t i = 0; i < n_sans; i++) {
			GENERAL_NAME *g = GENERAL_NAME_new();
			ASN1_STRING *s = sans[i].type == GEN_DNS ? ASN1_IA5STRING_new()
			                                         : ASN1_OCTET_STRING_new();
			ck_assert(ASN1_STRING_set(s, sans[i].value, (int)sans[i].len) == 1);
			GENERAL_NAME_set0_value(g, sans[i].type, s);
			sk_GENERAL_NAME_push(gens, g);
		}
		ck_assert(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1);
		GENERAL_NAMES_free(gens);
	}
	ck_assert(X509_sign(x, k, EVP_sha256()) > 0);
	EVP_PKEY_free(k);
	return x;
}

#define DNS(s) { GEN_DNS, s, sizeof(s) - 1 }

static X509 *good_cert(void)
{
	static const struct san sans[] = {
		DNS("a.example"), DNS("b.example"), { GEN_IPADD, "\xc0\x00\x02\x01", 4 },
		{ GEN_IPADD, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16 },
	};
	return make_cert("a.example", 9, "Test Issuing CA", sans, 4, "20200101000000Z",
	                 "20210101000000Z");
}

static void failure(struct ma_tls_failure *f, X509 *x, int err, int depth)
{
	memset(f, 0, sizeof(*f));
	f->verify_error = err;
	f->depth = depth;
	ma_tlsexplain_cert_info(x, &f->cert);
	f->port = 993;
	f->min_version = TLS1_2_VERSION;
	f->verify_name = "mail.example.org";
	f->ca_file = "/etc/ssl/private-ca.pem";
}

START_TEST(cert_info_fields)
{
	X509 *x = good_cert();
	struct ma_cert_info ci;
	ma_tlsexplain_cert_info(x, &ci);
	ck_assert_str_eq(ci.subject, "CN=a.example");
	ck_assert_str_eq(ci.issuer, "CN=Test Issuing CA");
	ck_assert_str_eq(ci.sans, "DNS:a.example, DNS:b.example, IP:192.0.2.1, IP:2001:db8::1");
	ck_assert_str_eq(ci.not_before, "2020-01-01 00:00:00 UTC");
	ck_assert_str_eq(ci.not_after, "2021-01-01 00:00:00 UTC");
	ck_assert_str_eq(ci.key, "EC 256 bits");
	ck_assert(!ci.self_signed);
	X509_free(x);
	ma_tlsexplain_cert_info(NULL, &ci);
	ck_assert_str_eq(ci.subject, "");
}
END_TEST

START_TEST(explain_chain)
{
	X509 *x = good_cert();
	struct ma_tls_failure f;
	char out[512];
	static const int chain_errors[] = {
		X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
		X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, X509_V_ERR_CERT_UNTRUSTED,
	};
	for (size_t i = 0; i < sizeof(chain_errors) / sizeof(chain_errors[0]); i++) {
		failure(&f, x, chain_errors[i], 0);
		ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
		assert_contains(out, "certificate not trusted: the server's certificate (subject: CN=a.example)");
		assert_contains(out, "not in ca_file /etc/ssl/private-ca.pem");
		assert_contains(out, "set ca_file to the CA that issued it (issuer: CN=Test Issuing CA)");
		assert_clean(out);
	}
	failure(&f, x, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 1);
	f.ca_file = NULL;
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "the CA certificate at depth 1");
	assert_contains(out, "not in the system's CA store");
	failure(&f, x, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, 0);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "self-signed (subject: CN=a.example)");
	assert_contains(out, "set ca_file to that certificate");
	assert_clean(out);
	failure(&f, x, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, 1);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "root CA \"CN=a.example\"");
	assert_contains(out, "set ca_file to that CA");
	X509_free(x);
}
END_TEST

START_TEST(explain_dates)
{
	X509 *x = good_cert();
	struct ma_tls_failure f;
	char out[512];
	failure(&f, x, X509_V_ERR_CERT_HAS_EXPIRED, 0);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "certificate expired: the server's certificate (subject: CN=a.example) "
	                     "was valid until 2021-01-01 00:00:00 UTC (from 2020-01-01 00:00:00 UTC)");
	assert_clean(out);
	failure(&f, x, X509_V_ERR_CERT_NOT_YET_VALID, 0);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "not yet valid");
	assert_contains(out, "valid only from 2020-01-01 00:00:00 UTC");
	failure(&f, x, X509_V_ERR_CERT_HAS_EXPIRED, 2);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "the CA certificate at depth 2");
	X509_free(x);
}
END_TEST

START_TEST(explain_name)
{
	X509 *x = good_cert();
	struct ma_tls_failure f;
	char out[512];
	failure(&f, x, X509_V_ERR_HOSTNAME_MISMATCH, 0);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	ck_assert_str_eq(out, "certificate name mismatch: the certificate is for DNS:a.example, "
	                      "DNS:b.example, IP:192.0.2.1, IP:2001:db8::1, not for "
	                      "\"mail.example.org\": set verify_name to one of them or connect "
	                      "by that name");
	failure(&f, x, X509_V_ERR_IP_ADDRESS_MISMATCH, 0);
	f.verify_name = "127.0.0.1";
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "not for \"127.0.0.1\": set verify_name");
	X509_free(x);
	/* No SAN at all: no name to suggest. */
	x = make_cert("old.example", 11, "Test Issuing CA", NULL, 0, "20200101000000Z", "20300101000000Z");
	failure(&f, x, X509_V_ERR_HOSTNAME_MISMATCH, 0);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "no subjectAltName (subject: CN=old.example)");
	assert_clean(out);
	X509_free(x);
}
END_TEST

START_TEST(explain_weak)
{
	X509 *x = good_cert();
	struct ma_tls_failure f;
	char out[512];
	failure(&f, x, X509_V_ERR_EE_KEY_TOO_SMALL, 0);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "certificate key too small");
	assert_contains(out, "EC 256 bits");
	assert_contains(out, "security level 2");
	failure(&f, x, X509_V_ERR_CA_MD_TOO_WEAK, 0);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "signature too weak");
	failure(&f, x, X509_V_ERR_CERT_REVOKED, 0);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "certificate verification failed: certificate revoked");
	assert_contains(out, "issuer: CN=Test Issuing CA");
	/* Reported by the handshake rather than the chain check. */
	failure(&f, NULL, X509_V_OK, 0);
	f.ssl_error = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_EE_KEY_TOO_SMALL);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "certificate key too small for security level 2");
	f.ssl_error = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_DH_KEY_TOO_SMALL);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "Diffie-Hellman key is too small");
	X509_free(x);
}
END_TEST

START_TEST(explain_version)
{
	struct ma_tls_failure f;
	char out[512];
	failure(&f, NULL, X509_V_OK, 0);
	f.ssl_error = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "the server offers only TLSv1.1 or older");
	/* A ServerHello that chose TLS 1.0. */
	static const unsigned char hello[] = { 0x16, 0x03, 0x01, 0x00, 0x51, 0x02, 0x00, 0x00,
	                                       0x4d, 0x03, 0x01, 0x5f };
	memcpy(f.first, hello, sizeof(hello));
	f.n_first = sizeof(hello);
	f.ssl_error = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_UNSUPPORTED_PROTOCOL);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "the server offers only TLSv1.0;");
	/* tls_min_version = 1.3 against a TLS 1.2 server. */
	failure(&f, NULL, X509_V_OK, 0);
	f.min_version = TLS1_3_VERSION;
	f.ssl_error = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_UNSUPPORTED_PROTOCOL);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "tls_min_version = 1.3: set tls_min_version = 1.2");
}
END_TEST

START_TEST(explain_plaintext_and_fallback)
{
	struct ma_tls_failure f;
	char out[512];
	failure(&f, NULL, X509_V_OK, 0);
	f.port = 587;
	memcpy(f.first, "220 mx ESMTP\r\n", 14);
	f.n_first = 14;
	f.ssl_error = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_WRONG_VERSION_NUMBER);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	ck_assert_str_eq(out, "port 587 speaks plaintext first (the server greeted with \"220 mx "
	                      "ESMTP\" instead of a TLS handshake): set tls = starttls, or the port "
	                      "of the server's implicit TLS (IMAP 993, SMTP 465)");
	/* Nothing to explain: OpenSSL's words, and false. */
	failure(&f, NULL, X509_V_OK, 0);
	f.ssl_error = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_WRONG_VERSION_NUMBER);
	ck_assert(!ma_tlsexplain(&f, out, sizeof(out)));
	assert_contains(out, "TLS: error:");
	assert_contains(out, "wrong version number");
	failure(&f, NULL, X509_V_OK, 0);
	ck_assert(!ma_tlsexplain(&f, out, sizeof(out)));
	ck_assert_str_eq(out, "TLS handshake failed");
}
END_TEST

START_TEST(explain_pin)
{
	unsigned char seen[32], pins[3][32];
	char out[512];
	memset(seen, 0, sizeof(seen));
	memset(pins, 0xff, sizeof(pins));
	struct ma_cert_info ci;
	memset(&ci, 0, sizeof(ci));
	snprintf(ci.subject, sizeof(ci.subject), "CN=mail.example.org");
	ma_tlsexplain_pin(seen, (const unsigned char (*)[32])pins, 1, &ci, out, sizeof(out));
	ck_assert_str_eq(out, "pin mismatch: the server's key is "
	                      "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= "
	                      "(subject: CN=mail.example.org), the configuration pins "
	                      "sha256////////////////////////////////////////////8=: if the "
	                      "server's key changed, update pin");
	ma_tlsexplain_pin(seen, (const unsigned char (*)[32])pins, 3, NULL, out, sizeof(out));
	assert_contains(out, "and 1 more");
	assert_contains(out, "subject: ?");
}
END_TEST

/* The certificate is the attacker's: control characters, escapes and a
 * flood of names come out escaped and bounded. */
START_TEST(hostile_certificate)
{
	struct san sans[64];
	char names[64][80];
	for (size_t i = 0; i < 64; i++) {
		int n = snprintf(names[i], sizeof(names[i]), "evil%zu.example\r\n\x1b[2J\\", i);
		sans[i].type = GEN_DNS;
		sans[i].value = names[i];
		sans[i].len = (size_t)n;
	}
	static const char cn[] = "x\n\rSYSLOG-INJECT\x00\x7f\xc3\xa9 \\ done";
	X509 *x = make_cert(cn, sizeof(cn) - 1, "CA\x1b", sans, 64, "20200101000000Z",
	                    "20210101000000Z");
	struct ma_tls_failure f;
	char out[512];
	failure(&f, x, X509_V_ERR_HOSTNAME_MISMATCH, 0);
	ck_assert(strlen(f.cert.sans) < sizeof(f.cert.sans));
	assert_contains(f.cert.sans, "in all)");
	assert_contains(f.cert.subject, "CN=x\\x0a\\x0dSYSLOG-INJECT\\x00\\x7f\\xc3\\xa9");
	assert_clean(f.cert.subject);
	ck_assert_str_eq(f.cert.issuer, "CN=CA\\x1b");
	assert_clean(f.cert.issuer);
	assert_clean(f.cert.sans);
	ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
	assert_clean(out);
	assert_contains(out, "DNS:evil0.example\\x0d\\x0a\\x1b[2J\\x5c");
	static const int all[] = {
		X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
		X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, X509_V_ERR_CERT_HAS_EXPIRED,
		X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_EE_KEY_TOO_SMALL, X509_V_ERR_CA_MD_TOO_WEAK,
		X509_V_ERR_CERT_REVOKED,
	};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		failure(&f, x, all[i], 0);
		ck_assert(ma_tlsexplain(&f, out, sizeof(out)));
		assert_clean(out);
		ck_assert(strlen(out) < sizeof(out));
		char tiny[40];
		ma_tlsexplain(&f, tiny, sizeof(tiny));
		ck_assert_uint_eq(strlen(tiny), sizeof(tiny) - 1);
	}
	X509_free(x);
}
END_TEST

static Suite *hints_suite(void)
{
	Suite *s = suite_create("hints");
	TCase *p = tcase_create("porthint");
	tcase_add_test(p, classify_tls_records);
	tcase_add_test(p, classify_greetings);
	tcase_add_test(p, well_known_ports);
	tcase_add_test(p, message_plain_on_tls);
	tcase_add_test(p, message_tls_on_plain);
	tcase_add_test(p, message_no_greeting);
	tcase_add_test(p, check_warnings);
	suite_add_tcase(s, p);
	TCase *t = tcase_create("tlsexplain");
	tcase_add_test(t, cert_info_fields);
	tcase_add_test(t, explain_chain);
	tcase_add_test(t, explain_dates);
	tcase_add_test(t, explain_name);
	tcase_add_test(t, explain_weak);
	tcase_add_test(t, explain_version);
	tcase_add_test(t, explain_plaintext_and_fallback);
	tcase_add_test(t, explain_pin);
	tcase_add_test(t, hostile_certificate);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	/* OpenSSL's error strings, as the library's first SSL_CTX loads them. */
	OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
	return ma_unit_run(hints_suite());
}
