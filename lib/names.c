/*
 * names.c - what a host name or an address literal may look like, for the
 * configuration (helo_name, checked at load) and for SMTP's EHLO (checked
 * again on the wire).  Pure functions, no other layer below them.
 */
#include "names.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int ma_valid_domain(const char *name, size_t len)
{
	int ok = 0;
	size_t label = 0;

	if (name == NULL || len == 0)
		goto out;
	if (name[len - 1] == '.')
		len--;       /* an absolute name "host.example." */
	if (len == 0 || len > 253)
		goto out;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (c == '.') {
			if (label == 0 || name[i - 1] == '-')
				goto out;
			label = 0;
			continue;
		}
		if (!is_alnum(c) && !(c == '-' && label > 0))
			goto out;
		if (++label > 63)
			goto out;
	}
	if (label == 0 || name[len - 1] == '-')
		goto out;
	ok = 1;
out:
	return ok;
}

int ma_valid_address_literal(const char *name, size_t len)
{
	int ok = 0;

	/* address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
	 * General-address-literal ) "]" (RFC 5321 section 4.1.3); we accept
	 * the characters of the first two ("IPv6:" tag included). */
	if (name == NULL || len < 3 || len > MA_NAME_MAX ||
	    name[0] != '[' || name[len - 1] != ']')
		goto out;
	for (size_t i = 1; i + 1 < len; i++)
		if (!is_alnum(name[i]) && name[i] != ':' && name[i] != '.')
			goto out;
	ok = 1;
out:
	return ok;
}
