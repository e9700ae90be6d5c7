/*
 * fuzz_config.c - ma_config_parse (lib/config.h): comment prescan,
 * libconfuse, value callbacks and the validation of SPEC section 5.
 *
 * libconfuse itself is not instrumented (a system library), so coverage
 * guidance comes from config.c; ASan still checks every access it makes
 * through the interceptors, and LSan its allocations.
 *
 * Invariants for an accepted file: what SPEC 5 promises the rest of the
 * library (at least one server, every server with a host, a verify name,
 * a port, a mechanism set that fits its protocol, tls = none only towards
 * loopback; a login format that names the user).  For a refused file: a
 * message that names the file and carries no control character.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "config.h"

static void check_text(const char *s)
{
	for (; *s != '\0'; s++)
		CHECK((unsigned char)*s >= 0x20 && *s != 0x7f);
}

/* SPEC 2, read again: "localhost", 127.0.0.0/8 (any inet_aton form), ::1
 * or an IPv4-mapped 127.0.0.0/8, with an optional IPv6 zone. */
static bool loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	char buf[256];

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_aton(host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	snprintf(buf, sizeof(buf), "%s", host);
	buf[strcspn(buf, "%")] = '\0';
	if (inet_pton(AF_INET6, buf, &a6) != 1)
		return false;
	if (IN6_IS_ADDR_LOOPBACK(&a6))
		return true;
	return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

static void check_config(const struct ma_config *cfg)
{
	CHECK(cfg->n_servers >= 1 && cfg->n_servers <= MA_MAX_SERVERS);
	CHECK(cfg->timeout_ms >= 1000 && cfg->timeout_ms <= 300000);
	CHECK(cfg->login_format != NULL);
	CHECK(strstr(cfg->login_format, "%u") != NULL || strstr(cfg->login_format, "%l") != NULL);
	check_text(cfg->login_format);
	if (cfg->helo_name != NULL) {
		CHECK(cfg->helo_name[0] != '\0');
		for (const char *p = cfg->helo_name; *p != '\0'; p++)
			CHECK(*p > 0x20 && *p < 0x7f);
	}
	CHECK(cfg->minimum_uid <= 4294967294UL);
	for (size_t i = 0; i < cfg->n_domains; i++)
		CHECK(cfg->domains[i] != NULL && cfg->domains[i][0] != '\0');
	for (size_t i = 0; i < cfg->n_servers; i++) {
		const struct ma_server *s = &cfg->servers[i];
		CHECK(s->name != NULL && s->name[0] != '\0' && strlen(s->name) < 64);
		CHECK(s->host != NULL && s->host[0] != '\0');
		CHECK(s->verify_name != NULL && s->verify_name[0] != '\0');
		for (const char *p = s->host; *p != '\0'; p++)
			CHECK((unsigned char)*p > 0x20 && *p != 0x7f);
		CHECK(s->port >= 1 && s->port <= 65535);
		CHECK(s->protocol == MA_PROTO_IMAP || s->protocol == MA_PROTO_SMTP);
		CHECK(s->tls == MA_TLS_IMPLICIT || s->tls == MA_TLS_STARTTLS || s->tls == MA_TLS_NONE);
		/* SPEC 2: tls = none only towards loopback. */
		if (s->tls == MA_TLS_NONE) {
			CHECK(loopback(s->host));
			CHECK(s->n_pins == 0);
		}
		CHECK(s->n_pins <= MA_MAX_PINS);
		CHECK(s->mechanisms != 0 && (s->mechanisms >> MA_MECH_COUNT) == 0);
		if (s->protocol == MA_PROTO_SMTP)
			CHECK((s->mechanisms & MA_MECH_BIT(MA_MECH_IMAP_LOGIN)) == 0);
		for (size_t d = 0; d < s->n_domains; d++)
			CHECK(s->domains[d] != NULL);
		CHECK(s->ca_file == NULL || s->ca_file[0] != '\0');
		CHECK(s->ca_path == NULL || s->ca_path[0] != '\0');
	}

	/* Login names built from this format: bounded, never NULL for a
	 * short user, no byte that would split a protocol line. */
	static const char *const users[] = { "alice", "Bob@Example.ORG", "a@b@c", "" };
	for (size_t u = 0; u < sizeof(users) / sizeof(users[0]); u++) {
		char *login = ma_config_login_name(cfg, users[u]);
		if (login == NULL)
			continue;
		CHECK(strlen(login) < 256);
		for (const char *p = login; *p != '\0'; p++)
			CHECK(*p != '\r' && *p != '\n');
		if (cfg->lowercase)
			for (const char *p = login; *p != '\0'; p++)
				CHECK(!(*p >= 'A' && *p <= 'Z'));
		free(login);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ma_config *cfg = NULL;
	char err[512];

	memset(err, 'x', sizeof(err));
	enum ma_err rc = ma_config_parse((const char *)data, size, "fuzz.conf", &cfg, err, sizeof(err));
	if (rc == MA_OK) {
		CHECK(cfg != NULL);
		check_config(cfg);
		ma_config_free(&cfg);
		CHECK(cfg == NULL);
	} else {
		CHECK(cfg == NULL);
		CHECK(rc == MA_CONFIG || rc == MA_NOMEM);
		CHECK(memchr(err, '\0', sizeof(err)) != NULL);
		CHECK(strncmp(err, "fuzz.conf", 9) == 0);
		check_text(err);
	}
	return 0;
}
