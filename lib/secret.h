/*
 * secret.h - the one API for secrets: wipe, free-and-wipe, constant-time
 * compare.  Wiping uses OPENSSL_cleanse so the compiler cannot elide it.
 */
#ifndef MA_SECRET_H
#define MA_SECRET_H

#include <stddef.h>

/* Overwrite LEN bytes at P.  NULL-safe. */
void ma_wipe(void *p, size_t len);
/* Wipe LEN bytes at P, then free it.  NULL-safe. */
void ma_freezero(void *p, size_t len);
/* Wipe a NUL-terminated string up to its terminator, then free it. */
void ma_strfreezero(char *s);
/* 1 when the LEN bytes at A and B are equal, in constant time. */
int ma_secure_equal(const void *a, const void *b, size_t len);

#endif
