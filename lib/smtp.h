/*
 * smtp.h - SMTP submission client for authentication only (RFC 5321,
 * RFC 3207 STARTTLS, RFC 4954 AUTH), and its pure parsers.
 */
#ifndef MA_SMTP_H
#define MA_SMTP_H

#include "session.h"

#endif
