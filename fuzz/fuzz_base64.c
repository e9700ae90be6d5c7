/*
 * fuzz_base64.c - the strict base64 decoder that reads every SASL challenge
 * (RFC 4954 / RFC 4959), SCRAM salts and signatures, and configured pins.
 *
 * Invariants: decode succeeds only on canonical input, so that
 * encode(decode(x)) == x byte for byte; the output is NUL-terminated one
 * past its length; encode(x) is canonical and decodes back to x.
 */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "common.h"
#include "secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	unsigned char *out = (unsigned char *)"sentinel";
	size_t outlen = 99;

	if (ma_base64_decode(in, size, &out, &outlen) == 0) {
		CHECK(out != NULL);
		CHECK(outlen == size / 4 * 3 - (size > 0 && in[size - 1] == '=') -
		                (size > 1 && in[size - 2] == '='));
		CHECK(out[outlen] == '\0');
		CHECK(fuzz_is_base64(in, size));
		size_t enclen = 0;
		char *enc = ma_base64_encode(out, outlen, &enclen);
		CHECK(enc != NULL);
		/* Strictness: only the canonical encoding of a value is accepted. */
		CHECK(enclen == size && memcmp(enc, in, size) == 0);
		ma_strfreezero(enc);
		ma_freezero(out, outlen + 1);
	} else {
		CHECK(out == NULL && outlen == 0);
	}

	/* The other direction, on the raw bytes. */
	size_t enclen = 0;
	char *enc = ma_base64_encode(data, size, &enclen);
	CHECK(enc != NULL);
	CHECK(enclen == (size + 2) / 3 * 4 && strlen(enc) == enclen);
	CHECK(fuzz_is_base64(enc, enclen));
	CHECK(ma_base64_decode(enc, enclen, &out, &outlen) == 0);
	CHECK(outlen == size && (size == 0 || memcmp(out, data, size) == 0));
	ma_freezero(out, outlen + 1);
	ma_strfreezero(enc);
	return 0;
}
