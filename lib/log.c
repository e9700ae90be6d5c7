/*
 * log.c - formatting log lines for the caller's sink (struct ma_log).
 * Callers never pass secrets here; server text is escaped first (SPEC 2:
 * "Server text that reaches a log has control characters escaped").
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

static void emit(const struct ma_log *log, int priority, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void emit(const struct ma_log *log, int priority, const char *fmt, va_list ap)
{
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	log->emit(log->arg, priority, line);
}

void ma_log(const struct ma_log *log, int priority, const char *fmt, ...)
{
	if (log == NULL || log->emit == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	emit(log, priority, fmt, ap);
	va_end(ap);
}

void ma_debug(const struct ma_log *log, const char *fmt, ...)
{
	if (log == NULL || log->emit == NULL || !log->debug)
		return;
	va_list ap;
	va_start(ap, fmt);
	emit(log, LOG_DEBUG, fmt, ap);
	va_end(ap);
}

char *ma_escape(char *dst, size_t dstlen, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (dstlen == 0)
		return dst;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		bool plain = c >= 0x20 && c < 0x7f && c != '\\';
		size_t need = plain ? 1 : 4;
		if (o + need + 4 > dstlen) {      /* room for "..." and NUL */
			if (o + 4 <= dstlen) {
				dst[o++] = '.'; dst[o++] = '.'; dst[o++] = '.';
			}
			break;
		}
		if (plain) {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '\\'; dst[o++] = 'x';
			dst[o++] = hex[c >> 4]; dst[o++] = hex[c & 15];
		}
	}
	dst[o < dstlen ? o : dstlen - 1] = '\0';
	return dst;
}
