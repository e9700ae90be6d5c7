/*
 * log.h - the library's log helpers on top of struct ma_log (libmailauth.h).
 * Everything that may contain server text goes through ma_escape first.
 */
#ifndef MA_LOG_H
#define MA_LOG_H

#include <stddef.h>

#include "libmailauth.h"

/* printf-style line at PRIORITY; nothing when log or log->emit is NULL. */
void ma_log(const struct ma_log *log, int priority, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Same at LOG_DEBUG, only when log->debug is set. */
void ma_debug(const struct ma_log *log, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Copy LEN bytes of untrusted text to DST (size DSTLEN, always terminated),
 * escaping control characters, backslash and bytes >= 0x7f as \xHH, and
 * truncating with "..." when it does not fit.  Returns DST.
 */
char *ma_escape(char *dst, size_t dstlen, const char *src, size_t len);

#endif
