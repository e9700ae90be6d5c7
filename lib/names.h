/*
 * names.h - syntax of host names and address literals (RFC 1123 2.1,
 * RFC 5321 4.1.3), shared by the configuration and the SMTP client.
 */
#ifndef MA_NAMES_H
#define MA_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* Longest name or address literal accepted, terminator excluded. */
#define MA_NAME_MAX 255

/*
 * 1 when NAME (LEN bytes) is a syntactically valid host name for EHLO:
 * labels of letters, digits and '-' (RFC 1123 section 2.1), 1..63 bytes,
 * not starting or ending with '-', separated by single dots, at most 253
 * bytes, an optional final dot excluded.  A name without a dot is valid.
 */
int ma_valid_domain(const char *name, size_t len);

/*
 * 1 when NAME is an RFC 5321 section 4.1.3 address literal as we accept it
 * in the configuration: "[" then letters, digits, ':' or '.' then "]".
 */
int ma_valid_address_literal(const char *name, size_t len);

#endif
