/*
 * nocleanse.c - negative control for `harness scan` (test_hygiene.sh): an
 * LD_PRELOAD OPENSSL_cleanse() that wipes nothing, so that every secret the
 * module "wipes" before freeing reaches free() intact.  The scan must then
 * fail and name pam_mailauth.so; if it still passed, it would prove nothing.
 * Never loaded outside that one run.
 */
#include <stddef.h>

__attribute__((visibility("default"))) void OPENSSL_cleanse(void *ptr, size_t len);

void OPENSSL_cleanse(void *ptr, size_t len)
{
	(void)ptr;
	(void)len;
}
