/*
 * err.c - names of the library's one error enum (libmailauth.h), at the
 * bottom of the layers: every file may name an error without depending on
 * the driver (auth.c) above it.
 */
#include "libmailauth.h"

const char *ma_err_name(enum ma_err err)
{
	switch (err) {
	case MA_OK: return "ok";
	case MA_AUTH_FAILED: return "auth-failed";
	case MA_BAD_INPUT: return "bad-input";
	case MA_USER_UNKNOWN: return "user-unknown";
	case MA_UNAVAILABLE: return "unavailable";
	case MA_TLS: return "tls-error";
	case MA_PROTOCOL: return "protocol-error";
	case MA_TIMEOUT: return "timeout";
	case MA_NO_MECH: return "no-mechanism";
	case MA_CONFIG: return "config-error";
	case MA_NOMEM: return "out-of-memory";
	case MA_INTERNAL: return "internal-error";
	case MA_POLICY: return "policy";
	}
	return "unknown-error";
}

bool ma_err_unavailable(enum ma_err err)
{
	return err == MA_UNAVAILABLE || err == MA_TLS || err == MA_PROTOCOL ||
	       err == MA_TIMEOUT || err == MA_NO_MECH;
}
