/*
 * logshim.c - LD_PRELOAD helper for tests/real/test_cyrus.sh: syslog(3)
 * appended to the file named by $MA_SYSLOG_FILE, one line per message
 * ("IDENT[PID] <LEVEL>: text").  There is no syslog daemon on a test
 * machine, and /dev/log is not the test's to create; Cyrus logs only
 * through syslog, and its lines (badlogin, login ... SCRAM-SHA-256-PLUS)
 * are what the test counts.  Test only; never near the module.
 */
#undef _FORTIFY_SOURCE          /* syslog() itself is defined here */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* glibc's fortified entry points, which callers built with
 * _FORTIFY_SOURCE (Debian's Cyrus) reach instead of syslog(). */
void __syslog_chk(int pri, int flag, const char *fmt, ...);
void __vsyslog_chk(int pri, int flag, const char *fmt, va_list ap);

static _Thread_local const char *shim_ident = "";

void openlog(const char *ident, int option, int facility)
{
	(void)option;
	(void)facility;
	shim_ident = ident != NULL ? ident : "";
}

void closelog(void)
{
}

void vsyslog(int pri, const char *fmt, va_list ap)
{
	const char *path = getenv("MA_SYSLOG_FILE");
	char line[4096];
	if (path == NULL)
		return;
	int n = snprintf(line, sizeof(line), "%s[%d] <%d>: ", shim_ident, (int)getpid(), pri & 7);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	size_t len = strlen(line);
	line[len++] = '\n';
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	ssize_t w = write(fd, line, len);   /* O_APPEND: one line, one write */
	(void)w;
	close(fd);
}

void syslog(int pri, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsyslog(pri, fmt, ap);
	va_end(ap);
}

void __syslog_chk(int pri, int flag, const char *fmt, ...)
{
	va_list ap;
	(void)flag;
	va_start(ap, fmt);
	vsyslog(pri, fmt, ap);
	va_end(ap);
}

void __vsyslog_chk(int pri, int flag, const char *fmt, va_list ap)
{
	(void)flag;
	vsyslog(pri, fmt, ap);
}
