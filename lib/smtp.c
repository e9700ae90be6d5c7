/*
 * smtp.c - SMTP submission client (stub, being implemented).
 */
#include "smtp.h"

enum ma_err ma_smtp_session(struct ma_session *s)
{
	(void)s;
	return MA_INTERNAL;
}
