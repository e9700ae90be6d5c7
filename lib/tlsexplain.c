/*
 * tlsexplain.c - why a TLS connection was refused, and what to change
 * (see tlsexplain.h).
 *
 * The order of the questions follows the order in which a wrong setting
 * shows itself: a certificate check that failed (OpenSSL's verify callback
 * recorded the first one), a server that spoke plaintext on the port, a
 * protocol version below what we allow, a key or digest under security
 * level 2; only then OpenSSL's own error string.
 */
#include "tlsexplain.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base64.h"
#include "log.h"
#include "secret.h"

/* ---- what is shown of a certificate ---- */

static void name_text(const X509_NAME *name, char *out, size_t outlen)
{
	char raw[256];
	int n = 0;
	out[0] = '\0';
	BIO *mem = BIO_new(BIO_s_mem());
	if (mem == NULL)
		return;
	/* RFC 2253 form; control and 8-bit bytes are left to ma_escape below
	 * (one escaping, "\x0a", rather than OpenSSL's and then ours). */
	unsigned long flags = XN_FLAG_RFC2253 & ~(unsigned long)(ASN1_STRFLGS_ESC_CTRL |
	                                                          ASN1_STRFLGS_ESC_MSB);
	if (X509_NAME_print_ex(mem, name, 0, flags) >= 0)
		n = BIO_read(mem, raw, (int)sizeof(raw) - 1);
	BIO_free(mem);
	if (n <= 0)
		return;
	ma_escape(out, outlen, raw, (size_t)n);
}

static void time_text(const ASN1_TIME *t, char *out, size_t outlen)
{
	struct tm tm;
	out[0] = '\0';
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return;
	if (strftime(out, outlen, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		out[0] = '\0';
}

/* Append ", "-separated TEXT to OUT (of OUTLEN); false when it did not fit. */
static bool append(char *out, size_t outlen, const char *text)
{
	size_t o = strlen(out);
	size_t need = (o > 0 ? 2 : 0) + strlen(text);
	if (o + need + 1 > outlen)
		return false;
	snprintf(out + o, outlen - o, "%s%s", o > 0 ? ", " : "", text);
	return true;
}

static void sans_text(X509 *x, char *out, size_t outlen)
{
	out[0] = '\0';
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	if (gens == NULL)
		return;
	int n = sk_GENERAL_NAME_num(gens);
	for (int i = 0; i < n; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char one[160], esc[140];
		one[0] = '\0';
		if (g->type == GEN_DNS) {
			const ASN1_IA5STRING *s = g->d.dNSName;
			size_t len = (size_t)ASN1_STRING_length(s);
			ma_escape(esc, sizeof(esc), (const char *)ASN1_STRING_get0_data(s),
			          len > 64 ? 64 : len);
			snprintf(one, sizeof(one), "DNS:%s%s", esc, len > 64 ? "..." : "");
		} else if (g->type == GEN_IPADD) {
			const ASN1_OCTET_STRING *s = g->d.iPAddress;
			char ip[INET6_ADDRSTRLEN] = "?";
			int len = ASN1_STRING_length(s);
			const unsigned char *d = ASN1_STRING_get0_data(s);
			if (len == 4)
				inet_ntop(AF_INET, d, ip, sizeof(ip));
			else if (len == 16)
				inet_ntop(AF_INET6, d, ip, sizeof(ip));
			snprintf(one, sizeof(one), "IP:%s", ip);
		} else {
			continue;     /* e-mail, URI...: not used for a server's name */
		}
		/* Keep room for the "... (N in all)" that says the list was cut. */
		if (!append(out, outlen > 24 ? outlen - 24 : 0, one)) {
			char more[24];
			snprintf(more, sizeof(more), "... (%d in all)", n & 0xffff);
			size_t o = strlen(out);
			snprintf(out + o, outlen - o, "%s", more);
			break;
		}
	}
	GENERAL_NAMES_free(gens);
}

static void key_text(X509 *x, char *out, size_t outlen)
{
	out[0] = '\0';
	EVP_PKEY *k = X509_get0_pubkey(x);
	if (k == NULL)
		return;
	const char *type;
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_RSA: case EVP_PKEY_RSA_PSS: type = "RSA"; break;
	case EVP_PKEY_EC: type = "EC"; break;
	case EVP_PKEY_DSA: type = "DSA"; break;
	case EVP_PKEY_ED25519: type = "Ed25519"; break;
	case EVP_PKEY_ED448: type = "Ed448"; break;
	default: type = "key"; break;
	}
	snprintf(out, outlen, "%s %d bits", type, EVP_PKEY_get_bits(k));
}

void ma_tlsexplain_cert_info(X509 *x, struct ma_cert_info *ci)
{
	memset(ci, 0, sizeof(*ci));
	if (x == NULL)
		return;
	name_text(X509_get_subject_name(x), ci->subject, sizeof(ci->subject));
	name_text(X509_get_issuer_name(x), ci->issuer, sizeof(ci->issuer));
	sans_text(x, ci->sans, sizeof(ci->sans));
	time_text(X509_get0_notBefore(x), ci->not_before, sizeof(ci->not_before));
	time_text(X509_get0_notAfter(x), ci->not_after, sizeof(ci->not_after));
	key_text(x, ci->key, sizeof(ci->key));
	ci->self_signed = X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0;
}

/* ---- the explanations ---- */

static const char *or_unknown(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : "?";
}

/* "the server's certificate" or "the CA certificate at depth N". */
static void which_cert(int depth, char *out, size_t outlen)
{
	if (depth <= 0)
		snprintf(out, outlen, "the server's certificate");
	else
		snprintf(out, outlen, "the CA certificate at depth %d of the server's chain", depth);
}

/* Where the trust anchors came from. */
static void trust_text(const struct ma_tls_failure *f, char *out, size_t outlen)
{
	char esc[160];
	if (f->ca_file != NULL)
		snprintf(out, outlen, "ca_file %s", ma_escape(esc, sizeof(esc), f->ca_file,
		                                               strlen(f->ca_file)));
	else if (f->ca_path != NULL)
		snprintf(out, outlen, "ca_path %s", ma_escape(esc, sizeof(esc), f->ca_path,
		                                               strlen(f->ca_path)));
	else
		snprintf(out, outlen, "the system's CA store");
}

static bool explain_verify(const struct ma_tls_failure *f, char *out, size_t outlen)
{
	const struct ma_cert_info *c = &f->cert;
	char which[64], trust[192], vn[160];
	which_cert(f->depth, which, sizeof(which));
	trust_text(f, trust, sizeof(trust));
	ma_escape(vn, sizeof(vn), f->verify_name != NULL ? f->verify_name : "",
	          f->verify_name != NULL ? strlen(f->verify_name) : 0);

	switch (f->verify_error) {
	/* Chain: the issuer is not among the trust anchors. */
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		snprintf(out, outlen, "certificate not trusted: the server's certificate is "
		         "self-signed (subject: %s) and not in %s: set ca_file to that "
		         "certificate, or give the server one from a CA you trust",
		         or_unknown(c->subject), trust);
		return true;
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		snprintf(out, outlen, "certificate not trusted: the server's chain ends in the "
		         "root CA \"%s\", which is not in %s: set ca_file to that CA",
		         or_unknown(c->subject), trust);
		return true;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		snprintf(out, outlen, "certificate not trusted: %s (subject: %s) was issued by a "
		         "CA that is not in %s: set ca_file to the CA that issued it (issuer: %s)",
		         which, or_unknown(c->subject), trust, or_unknown(c->issuer));
		return true;
	/* Dates. */
	case X509_V_ERR_CERT_HAS_EXPIRED:
		snprintf(out, outlen, "certificate expired: %s (subject: %s) was valid until %s "
		         "(from %s): the server needs a renewed certificate (or this host's "
		         "clock is wrong)", which, or_unknown(c->subject), or_unknown(c->not_after),
		         or_unknown(c->not_before));
		return true;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		snprintf(out, outlen, "certificate not yet valid: %s (subject: %s) is valid only "
		         "from %s (until %s): check this host's clock, or the server's certificate",
		         which, or_unknown(c->subject), or_unknown(c->not_before),
		         or_unknown(c->not_after));
		return true;
	/* RFC 6125 name check (SAN only, no CN fallback when a SAN is there). */
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		if (c->sans[0] != '\0')
			snprintf(out, outlen, "certificate name mismatch: the certificate is for %s, "
			         "not for \"%s\": set verify_name to one of them or connect by that "
			         "name", c->sans, vn);
		else
			snprintf(out, outlen, "certificate name mismatch: the certificate has no "
			         "subjectAltName (subject: %s), so it names no server, not \"%s\": "
			         "the server needs a certificate for that name",
			         or_unknown(c->subject), vn);
		return true;
	/* Security level 2 (SPEC 2). */
	case X509_V_ERR_EE_KEY_TOO_SMALL:
	case X509_V_ERR_CA_KEY_TOO_SMALL:
		snprintf(out, outlen, "certificate key too small: %s (subject: %s) has a key of %s; "
		         "security level 2 needs RSA of 2048 bits or more (EC 224): the server "
		         "needs a new certificate", which, or_unknown(c->subject), or_unknown(c->key));
		return true;
	case X509_V_ERR_CA_MD_TOO_WEAK:
		snprintf(out, outlen, "certificate signature too weak: %s (subject: %s) is signed "
		         "with a digest security level 2 refuses (SHA-1 or MD5): the server needs "
		         "a certificate signed with SHA-256 or better", which, or_unknown(c->subject));
		return true;
	default:
		snprintf(out, outlen, "certificate verification failed: %s (%s, subject: %s, "
		         "issuer: %s)", X509_verify_cert_error_string(f->verify_error), which,
		         or_unknown(c->subject), or_unknown(c->issuer));
		return true;
	}
}

static const char *version_name(unsigned v)
{
	switch (v) {
	case 0x0300: return "SSLv3";
	case 0x0301: return "TLSv1.0";
	case 0x0302: return "TLSv1.1";
	case 0x0303: return "TLSv1.2";
	case 0x0304: return "TLSv1.3";
	default: return NULL;
	}
}

/* The version a ServerHello among the first bytes chose, or 0.  TLS 1.3
 * puts 0x0303 there too (RFC 8446 4.1.3), which only matters above 1.2. */
static unsigned server_hello_version(const struct ma_tls_failure *f)
{
	const unsigned char *b = f->first;
	if (f->n_first >= 11 && b[0] == 0x16 && b[1] == 0x03 && b[5] == 0x02)
		return (unsigned)b[9] << 8 | b[10];
	return 0;
}

static bool explain_version(const struct ma_tls_failure *f, char *out, size_t outlen)
{
	int reason = ERR_GET_REASON(f->ssl_error);
	if (ERR_GET_LIB(f->ssl_error) != ERR_LIB_SSL ||
	    (reason != SSL_R_UNSUPPORTED_PROTOCOL && reason != SSL_R_TLSV1_ALERT_PROTOCOL_VERSION))
		return false;
	bool min13 = f->min_version >= TLS1_3_VERSION;
	unsigned v = server_hello_version(f);
	const char *name = version_name(v);
	if (name != NULL && v < 0x0303)
		snprintf(out, outlen, "the server offers only %s; TLS 1.2 is the lowest version "
		         "allowed (RFC 8996 retired 1.0 and 1.1): the server must enable TLS 1.2 "
		         "or 1.3", name);
	else if (min13)
		snprintf(out, outlen, "the server offers only TLSv1.2 or older, and tls_min_version "
		         "= 1.3: set tls_min_version = 1.2, or enable TLS 1.3 on the server");
	else
		snprintf(out, outlen, "the server offers only TLSv1.1 or older (it refused TLS 1.2 "
		         "and 1.3, the lowest versions allowed since RFC 8996): the server must "
		         "enable TLS 1.2 or 1.3");
	return true;
}

static bool explain_ssl_reason(const struct ma_tls_failure *f, char *out, size_t outlen)
{
	if (ERR_GET_LIB(f->ssl_error) != ERR_LIB_SSL)
		return false;
	switch (ERR_GET_REASON(f->ssl_error)) {
	case SSL_R_EE_KEY_TOO_SMALL:
	case SSL_R_CA_KEY_TOO_SMALL:
		snprintf(out, outlen, "certificate key too small for security level 2 (RSA needs "
		         "2048 bits or more): the server needs a new certificate");
		return true;
	case SSL_R_CA_MD_TOO_WEAK:
		snprintf(out, outlen, "certificate signature too weak for security level 2 (SHA-1 "
		         "or MD5): the server needs a certificate signed with SHA-256 or better");
		return true;
	case SSL_R_DH_KEY_TOO_SMALL:
		snprintf(out, outlen, "the server's Diffie-Hellman key is too small for security "
		         "level 2 (2048 bits or more): the server's TLS settings must change");
		return true;
	default:
		return false;
	}
}

bool ma_tlsexplain(const struct ma_tls_failure *f, char *out, size_t outlen)
{
	if (outlen == 0)
		return false;
	out[0] = '\0';
	if (f->verify_error != X509_V_OK)
		return explain_verify(f, out, outlen);
	if (ma_porthint_classify(f->first, f->n_first) == MA_FIRST_GREETING) {
		ma_porthint_plain_on_tls(out, outlen, f->port, f->first, f->n_first);
		return true;
	}
	if (explain_version(f, out, outlen) || explain_ssl_reason(f, out, outlen))
		return true;
	if (f->ssl_error != 0) {
		char buf[200];
		ERR_error_string_n(f->ssl_error, buf, sizeof(buf));
		snprintf(out, outlen, "TLS: %s", buf);
	} else {
		snprintf(out, outlen, "TLS handshake failed");
	}
	return false;
}

static void pin_text(const unsigned char hash[32], char *out, size_t outlen)
{
	size_t blen = 0;
	char *b64 = ma_base64_encode(hash, 32, &blen);
	snprintf(out, outlen, "sha256//%s", b64 != NULL ? b64 : "?");
	if (b64 != NULL)
		ma_freezero(b64, blen + 1);
}

void ma_tlsexplain_pin(const unsigned char seen[32], const unsigned char (*pins)[32],
                       size_t n, const struct ma_cert_info *cert, char *out, size_t outlen)
{
	char s[64], configured[160] = "";
	pin_text(seen, s, sizeof(s));
	for (size_t i = 0; i < n && i < 2; i++) {
		char one[64];
		pin_text(pins[i], one, sizeof(one));
		append(configured, sizeof(configured), one);
	}
	if (n > 2) {
		size_t o = strlen(configured);
		snprintf(configured + o, sizeof(configured) - o, " and %zu more", n - 2);
	}
	snprintf(out, outlen, "pin mismatch: the server's key is %s (subject: %s), the "
	         "configuration pins %s: if the server's key changed, update pin", s,
	         or_unknown(cert != NULL ? cert->subject : NULL), configured);
}
