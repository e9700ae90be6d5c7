/*
 * base64.c - strict base64 (RFC 4648 section 4).  SASL (RFC 4422 and the
 * IMAP/SMTP profiles) carries every challenge and response this way; a
 * lenient decoder would let malformed server data through, so anything
 * non-canonical is refused.
 */
#include "base64.h"

#include <stdint.h>
#include <stdlib.h>

#include "secret.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *ma_base64_encode(const unsigned char *in, size_t len, size_t *outlen)
{
	if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	size_t n = (len + 2) / 3 * 4;
	char *out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	if (outlen != NULL)
		*outlen = o;
	return out;
}

static int sextet(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int ma_base64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
	int rc = -1;
	unsigned char *buf = NULL;
	size_t o = 0;

	*out = NULL;
	*outlen = 0;
	if (len % 4 != 0)
		goto out;
	buf = malloc(len / 4 * 3 + 1);
	if (buf == NULL)
		goto out;
	for (size_t i = 0; i < len; i += 4) {
		int s[4];
		size_t pad = 0;
		for (size_t k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];
			if (c == '=') {
				/* Padding only in the last quantum, only at its end. */
				if (i + 4 != len || k < 2)
					goto out;
				pad++;
				s[k] = 0;
				continue;
			}
			if (pad > 0)
				goto out;
			s[k] = sextet(c);
			if (s[k] < 0)
				goto out;
		}
		uint32_t v = (uint32_t)s[0] << 18 | (uint32_t)s[1] << 12 |
		             (uint32_t)s[2] << 6 | (uint32_t)s[3];
		/* RFC 4648 3.5: the unused bits before padding must be zero. */
		if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0))
			goto out;
		buf[o++] = (unsigned char)(v >> 16);
		if (pad < 2)
			buf[o++] = (unsigned char)(v >> 8);
		if (pad < 1)
			buf[o++] = (unsigned char)v;
	}
	buf[o] = '\0';
	*out = buf;
	*outlen = o;
	buf = NULL;
	rc = 0;
out:
	ma_freezero(buf, len / 4 * 3 + 1);
	return rc;
}
