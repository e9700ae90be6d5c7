/*
 * base64.h - strict RFC 4648 section 4 base64, as SASL (RFC 4422) uses it.
 * Buffers returned here may carry secrets: free them with ma_freezero.
 */
#ifndef MA_BASE64_H
#define MA_BASE64_H

#include <stddef.h>

/* Encode LEN bytes; returns a malloc'd NUL-terminated string (length in
 * *outlen when non-NULL), or NULL when out of memory. */
char *ma_base64_encode(const unsigned char *in, size_t len, size_t *outlen);

/*
 * Decode exactly the canonical alphabet with '=' padding to a multiple of
 * four.  Whitespace, missing or misplaced padding, or any other byte is an
 * error.  Returns 0 and a malloc'd buffer (always NUL-terminated one past
 * *outlen) or -1.
 */
int ma_base64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen);

#endif
