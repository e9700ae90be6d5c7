/*
 * test_base64.c - strict base64 (RFC 4648) and the escaping of server text.
 */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "log.h"
#include "unit.h"

static void roundtrip(const char *raw, const char *b64)
{
	size_t n = 0;
	char *enc = ma_base64_encode((const unsigned char *)raw, strlen(raw), &n);
	ck_assert_str_eq(enc, b64);
	ck_assert_uint_eq(n, strlen(b64));
	unsigned char *dec = NULL;
	size_t dlen = 0;
	ck_assert_int_eq(ma_base64_decode(b64, strlen(b64), &dec, &dlen), 0);
	ck_assert_uint_eq(dlen, strlen(raw));
	ck_assert(memcmp(dec, raw, dlen) == 0);
	free(enc);
	free(dec);
}

START_TEST(rfc4648_vectors)
{
	roundtrip("", "");
	roundtrip("f", "Zg==");
	roundtrip("fo", "Zm8=");
	roundtrip("foo", "Zm9v");
	roundtrip("foob", "Zm9vYg==");
	roundtrip("fooba", "Zm9vYmE=");
	roundtrip("foobar", "Zm9vYmFy");
}
END_TEST

static void reject(const char *b64)
{
	unsigned char *dec = (unsigned char *)"x";
	size_t dlen = 99;
	ck_assert_msg(ma_base64_decode(b64, strlen(b64), &dec, &dlen) == -1, "accepted %s", b64);
	ck_assert_ptr_null(dec);
	ck_assert_uint_eq(dlen, 0);
}

START_TEST(strict_decoding)
{
	reject("Zg=");          /* length not a multiple of 4 */
	reject("Zg");
	reject("Z===");         /* too much padding */
	reject("Zg==Zg==");     /* padding in the middle */
	reject("Zm9v\r\n");
	reject("Zm 9");
	reject("Zh==");         /* non-zero bits under the padding */
	reject("Zm9=");
	reject("Zm9*");
	reject("=Zm9");
}
END_TEST

START_TEST(escape_control_characters)
{
	char out[64];
	ck_assert_str_eq(ma_escape(out, sizeof(out), "a\r\nb\\c\x7f", 7), "a\\x0d\\x0ab\\x5cc\\x7f");
	ck_assert_str_eq(ma_escape(out, 8, "abcdefghijkl", 12), "abcd...");
	ck_assert_str_eq(ma_escape(out, sizeof(out), "\xc3\xa9", 2), "\\xc3\\xa9");
}
END_TEST

static Suite *base64_suite(void)
{
	Suite *s = suite_create("base64");
	TCase *tc = tcase_create("codec");
	tcase_add_test(tc, rfc4648_vectors);
	tcase_add_test(tc, strict_decoding);
	tcase_add_test(tc, escape_control_characters);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ma_unit_run(base64_suite());
}
