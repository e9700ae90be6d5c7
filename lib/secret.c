/*
 * secret.c - wiping and comparing secrets (see secret.h).
 */
#include "secret.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

void ma_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		OPENSSL_cleanse(p, len);
}

void ma_freezero(void *p, size_t len)
{
	if (p == NULL)
		return;
	ma_wipe(p, len);
	free(p);
}

void ma_strfreezero(char *s)
{
	if (s == NULL)
		return;
	ma_freezero(s, strlen(s));
}

int ma_secure_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}
