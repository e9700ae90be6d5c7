/*
 * test_config.c - lib/config.c: schema, defaults, every value check with
 * file name and line, cross-option checks, comments, the safe open, login
 * name expansion and mechanism names.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/tls1.h>

#include "config.h"
#include "unit.h"

#define NAME "test.conf"
#define SRV "server a {\n  host = \"mail.example.org\"\n}\n"
/* sha256// + base64 of 32 zero bytes, and of 32 bytes 0x01..0x20 */
#define PIN0 "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define PIN1 "sha256//AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="

static char err[512];

static struct ma_config *parse_ok(const char *text)
{
	struct ma_config *cfg = NULL;
	enum ma_err rc = ma_config_parse(text, strlen(text), NAME, &cfg, err, sizeof(err));
	ck_assert_msg(rc == MA_OK, "expected success, got %d: %s\n--- text:\n%s", rc, err, text);
	ck_assert_ptr_nonnull(cfg);
	return cfg;
}

/* Fails with MA_CONFIG and err == "test.conf:LINE: ..." containing WHAT
 * (LINE 0: "test.conf: ..."). */
static void parse_err(const char *text, unsigned line, const char *what)
{
	struct ma_config *cfg = (struct ma_config *)1;
	char prefix[64];
	enum ma_err rc = ma_config_parse(text, strlen(text), NAME, &cfg, err, sizeof(err));

	ck_assert_msg(rc == MA_CONFIG, "expected MA_CONFIG, got %d (%s)\n--- text:\n%s", rc, err, text);
	ck_assert_ptr_null(cfg);
	if (line > 0)
		snprintf(prefix, sizeof(prefix), NAME ":%u: ", line);
	else
		snprintf(prefix, sizeof(prefix), NAME ": ");
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
	              "expected prefix '%s', got '%s'\n--- text:\n%s", prefix, err, text);
	ck_assert_msg(strstr(err, what) != NULL, "expected '%s' in '%s'", what, err);
}

/* One global line before a valid server section; the error is on line 1. */
static void global_err(const char *line1, const char *what)
{
	char text[4096];
	snprintf(text, sizeof(text), "%s\n" SRV, line1);
	parse_err(text, 1, what);
}

static struct ma_config *global_ok(const char *line1)
{
	char text[4096];
	snprintf(text, sizeof(text), "%s\n" SRV, line1);
	return parse_ok(text);
}

/* A server section whose body starts on line 2; errors on line LINE. */
static void server_err(const char *body, unsigned line, const char *what)
{
	char text[4096];
	snprintf(text, sizeof(text), "server a {\n%s\n}\n", body);
	parse_err(text, line, what);
}

static struct ma_config *server_ok(const char *body)
{
	char text[4096];
	snprintf(text, sizeof(text), "server a {\n%s\n}\n", body);
	return parse_ok(text);
}

START_TEST(defaults)
{
	struct ma_config *cfg = parse_ok(SRV);
	const struct ma_server *s = &cfg->servers[0];

	ck_assert_str_eq(cfg->path, NAME);
	ck_assert_uint_eq(cfg->timeout_ms, 10000);
	ck_assert_int_eq(cfg->tls_min_version, TLS1_2_VERSION);
	ck_assert_str_eq(cfg->login_format, "%u");
	ck_assert(!cfg->lowercase);
	ck_assert_ptr_null(cfg->helo_name);
	ck_assert_uint_eq(cfg->n_domains, 0);
	ck_assert(cfg->mechanism_fallback);
	ck_assert_uint_eq(cfg->minimum_uid, 1000);
	ck_assert(!cfg->require_local_user);
	ck_assert_uint_eq(cfg->n_servers, 1);
	ck_assert_str_eq(s->name, "a");
	ck_assert_int_eq(s->protocol, MA_PROTO_IMAP);
	ck_assert_str_eq(s->host, "mail.example.org");
	ck_assert_uint_eq(s->port, 993);
	ck_assert_int_eq(s->tls, MA_TLS_IMPLICIT);
	ck_assert_str_eq(s->verify_name, "mail.example.org");
	ck_assert_ptr_null(s->ca_file);
	ck_assert_ptr_null(s->ca_path);
	ck_assert_uint_eq(s->n_pins, 0);
	ck_assert_uint_eq(s->mechanisms, MA_MECH_DEFAULT_SET);
	ck_assert_uint_eq(s->n_domains, 0);
	ck_assert_uint_eq(s->config_line, 1);
	ck_assert_int_eq(s->channel_binding, MA_CB_AUTO);
	ma_config_free(&cfg);
	ck_assert_ptr_null(cfg);
	ma_config_free(&cfg);
	ma_config_free(NULL);
}
END_TEST

START_TEST(all_keys)
{
	struct ma_config *cfg = parse_ok(
		"timeout = 30\n"
		"ca_file = \"/etc/ssl/ca.pem\"\n"
		"ca_path = /etc/ssl/certs\n"
		"tls_min_version = \"1.3\"\n"
		"login = \"%l@example.org\"\n"
		"lowercase = yes\n"
		"helo_name = \"mx1.example.org\"\n"
		"domains = {\"example.org\", \"Example.NET\"}\n"
		"mechanism_fallback = no\n"
		"minimum_uid = 500\n"
		"require_local_user = true\n"
		"server primary {\n"
		"  protocol = smtp\n"
		"  host = \"smtp.example.org\"\n"
		"  port = 2525\n"
		"  tls = starttls\n"
		"  verify_name = \"mx.example.org\"\n"
		"  ca_file = \"/etc/own.pem\"\n"
		"  ca_path = \"/etc/own\"\n"
		"  pin = {\"" PIN0 "\", \"" PIN1 "\"}\n"
		"  mechanisms = {\"scram-sha-256\", PLAIN, CRAM-MD5}\n"
		"  domains = {\"example.net\"}\n"
		"}\n"
		"server second { host = \"127.0.0.1\" }\n");
	const struct ma_server *s = &cfg->servers[0], *t = &cfg->servers[1];

	ck_assert_uint_eq(cfg->timeout_ms, 30000);
	ck_assert_int_eq(cfg->tls_min_version, TLS1_3_VERSION);
	ck_assert_str_eq(cfg->login_format, "%l@example.org");
	ck_assert(cfg->lowercase);
	ck_assert_str_eq(cfg->helo_name, "mx1.example.org");
	ck_assert_uint_eq(cfg->n_domains, 2);
	ck_assert_str_eq(cfg->domains[0], "example.org");
	ck_assert_str_eq(cfg->domains[1], "Example.NET");
	ck_assert(!cfg->mechanism_fallback);
	ck_assert_uint_eq(cfg->minimum_uid, 500);
	ck_assert(cfg->require_local_user);
	ck_assert_uint_eq(cfg->n_servers, 2);
	ck_assert_str_eq(s->name, "primary");
	ck_assert_int_eq(s->protocol, MA_PROTO_SMTP);
	ck_assert_str_eq(s->host, "smtp.example.org");
	ck_assert_uint_eq(s->port, 2525);
	ck_assert_int_eq(s->tls, MA_TLS_STARTTLS);
	ck_assert_str_eq(s->verify_name, "mx.example.org");
	ck_assert_str_eq(s->ca_file, "/etc/own.pem");
	ck_assert_str_eq(s->ca_path, "/etc/own");
	ck_assert_uint_eq(s->n_pins, 2);
	ck_assert_uint_eq(s->pins[0][0], 0);
	ck_assert_uint_eq(s->pins[0][31], 0);
	ck_assert_uint_eq(s->pins[1][0], 1);
	ck_assert_uint_eq(s->pins[1][31], 32);
	ck_assert_uint_eq(s->mechanisms, MA_MECH_BIT(MA_MECH_SCRAM_SHA_256) |
	                  MA_MECH_BIT(MA_MECH_PLAIN) | MA_MECH_BIT(MA_MECH_CRAM_MD5));
	ck_assert_uint_eq(s->n_domains, 1);
	ck_assert_str_eq(s->domains[0], "example.net");
	ck_assert_uint_eq(s->config_line, 12);
	/* The second server inherits the global CA settings, in file order. */
	ck_assert_str_eq(t->name, "second");
	ck_assert_uint_eq(t->config_line, 24);
	ck_assert_str_eq(t->ca_file, "/etc/ssl/ca.pem");
	ck_assert_str_eq(t->ca_path, "/etc/ssl/certs");
	ck_assert_str_eq(t->verify_name, "127.0.0.1");
	ma_config_free(&cfg);
}
END_TEST

/* SPEC section 5's example, comments and all. */
static const char spec_text[] =
		"timeout         = 10              # seconds, whole authentication\n"
		"ca_file         = \"\"              # default: system trust store\n"
		"ca_path         = \"\"\n"
		"tls_min_version = \"1.2\"\n"
		"login           = \"%u\"            # what is sent as the login: %u PAM user, %l its local\n"
		"                                  # part, %d its domain; e.g. \"%u@example.org\"\n"
		"lowercase       = no              # lower-case the login name before sending\n"
		"helo_name       = \"\"              # SMTP EHLO name; default: this host's FQDN\n"
		"domains         = {}              # if set: only users in these domains (after `login`)\n"
		"mechanism_fallback = yes\n"
		"minimum_uid     = 1000            # local accounts below this uid (root!) are never\n"
		"                                  # authenticated by a mail server; users with no local\n"
		"                                  # account are allowed unless require_local_user = yes\n"
		"require_local_user = no\n"
		"\n"
		"server primary {                  # one or more, tried in order while UNAVAILABLE\n"
		"  protocol   = imap               # imap | smtp\n"
		"  host       = \"mail.example.org\"\n"
		"  port       = 993                # default from protocol and tls\n"
		"  tls        = implicit           # implicit | starttls | none (loopback only)\n"
		"  verify_name = \"\"                # default: host\n"
		"  ca_file    = \"\"                 # overrides the global one\n"
		"  pin        = {}\n"
		"  mechanisms = {}                 # default: the order in section 3\n"
		"  domains    = {}                 # route only these domains to this server\n"
		"}\n";

START_TEST(spec_example)
{
	char text[4096];
	struct ma_config *cfg = parse_ok(spec_text);

	ck_assert_uint_eq(cfg->timeout_ms, 10000);
	ck_assert_uint_eq(cfg->n_servers, 1);
	ck_assert_uint_eq(cfg->servers[0].config_line, 16);
	ck_assert_uint_eq(cfg->servers[0].port, 993);
	ck_assert_uint_eq(cfg->servers[0].mechanisms, MA_MECH_DEFAULT_SET);
	ma_config_free(&cfg);
	snprintf(text, sizeof(text), "%s\nserver backup { host = \"mail2.example.org\"  tls = starttls }\n"
	         "tls_min_version = 1.4   # line 29\n", spec_text);
	parse_err(text, 29, "tls_min_version = \"1.4\"");
	snprintf(text, sizeof(text), "%s\nserver backup { host = \"mail2.example.org\"  tls = none }\n",
	         spec_text);
	parse_err(text, 28, "server backup: tls = none");
}
END_TEST

START_TEST(timeout_values)
{
	struct ma_config *cfg = global_ok("timeout = 1");
	ck_assert_uint_eq(cfg->timeout_ms, 1000);
	ma_config_free(&cfg);
	cfg = global_ok("timeout = 300");
	ck_assert_uint_eq(cfg->timeout_ms, 300000);
	ma_config_free(&cfg);
	cfg = global_ok("timeout = 010");     /* decimal, not octal */
	ck_assert_uint_eq(cfg->timeout_ms, 10000);
	ma_config_free(&cfg);
	global_err("timeout = 0", "timeout = 0: must be 1 to 300");
	global_err("timeout = 301", "timeout = 301: must be 1 to 300");
	global_err("timeout = -1", "must be a decimal number");
	global_err("timeout = abc", "timeout = \"abc\": must be a decimal number");
	global_err("timeout = 1.5", "must be a decimal number");
	global_err("timeout = 0x10", "must be a decimal number");
	global_err("timeout = \"\"", "must be a decimal number");
	global_err("timeout = 99999999999999999999999", "must be a decimal number");
	global_err("timeout = {1}", "unexpected token");
	/* The error is on the line of the value, further down the file. */
	parse_err(SRV "\n\ntimeout = 500\n", 6, "timeout = 500");
}
END_TEST

START_TEST(tls_min_version_values)
{
	struct ma_config *cfg = global_ok("tls_min_version = 1.2");
	ck_assert_int_eq(cfg->tls_min_version, TLS1_2_VERSION);
	ma_config_free(&cfg);
	cfg = global_ok("tls_min_version = \"1.3\"");
	ck_assert_int_eq(cfg->tls_min_version, TLS1_3_VERSION);
	ma_config_free(&cfg);
	global_err("tls_min_version = \"1.1\"", "must be \"1.2\" or \"1.3\"");
	global_err("tls_min_version = 1.0", "must be \"1.2\" or \"1.3\"");
	global_err("tls_min_version = \"TLSv1.3\"", "must be \"1.2\" or \"1.3\"");
}
END_TEST

START_TEST(login_format_values)
{
	struct ma_config *cfg = global_ok("login = \"%u@example.org\"");
	ck_assert_str_eq(cfg->login_format, "%u@example.org");
	ma_config_free(&cfg);
	cfg = global_ok("login = \"%l+%d%%\"");
	ma_config_free(&cfg);
	global_err("login = \"%x\"", "only %u, %l, %d and %% may follow '%'");
	global_err("login = \"%u%\"", "only %u, %l, %d and %% may follow '%'");
	global_err("login = \"%U\"", "only %u");
	global_err("login = \"admin\"", "must contain %u or %l");
	global_err("login = \"%d\"", "must contain %u or %l");
	global_err("login = \"\"", "must contain %u or %l");
	global_err("login = \"%u\\n\"", "control characters");
}
END_TEST

START_TEST(bool_values)
{
	struct ma_config *cfg = global_ok("lowercase = on\nmechanism_fallback = false\n"
	                                  "require_local_user = YES");
	ck_assert(cfg->lowercase);
	ck_assert(!cfg->mechanism_fallback);
	ck_assert(cfg->require_local_user);
	ma_config_free(&cfg);
	global_err("lowercase = maybe", "lowercase");
	global_err("mechanism_fallback = 2", "mechanism_fallback");
	global_err("require_local_user = \"\"", "require_local_user");
}
END_TEST

START_TEST(helo_name_values)
{
	struct ma_config *cfg = global_ok("helo_name = mx1.example.org");
	ck_assert_str_eq(cfg->helo_name, "mx1.example.org");
	ma_config_free(&cfg);
	cfg = global_ok("helo_name = \"\"");
	ck_assert_ptr_null(cfg->helo_name);
	ma_config_free(&cfg);
	global_err("helo_name = \"bad_name\"", "helo_name = \"bad_name\": must be a host name");
	global_err("helo_name = \"a b\"", "must be a host name");
	global_err("helo_name = \"-x.org\"", "must be a host name");
	/* The rule EHLO applies on the wire (ma_valid_domain), already
	 * here: empty labels, a '-' at a label's edge, labels over 63. */
	global_err("helo_name = \"a..b\"", "must be a host name");
	global_err("helo_name = \"a-.b\"", "must be a host name");
	global_err("helo_name = \"a.b-\"", "must be a host name");
	global_err("helo_name = \"x.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org\"",
	           "must be a host name");
	global_err("helo_name = \"[127.0.0.1\"", "must be a host name");
	/* RFC 5321 4.1.1.1: a host without a name may give an address literal. */
	cfg = global_ok("helo_name = \"[192.0.2.1]\"");
	ck_assert_str_eq(cfg->helo_name, "[192.0.2.1]");
	ma_config_free(&cfg);
}
END_TEST

START_TEST(global_domains_and_uid)
{
	struct ma_config *cfg = global_ok("domains = example.org\nminimum_uid = 0");
	ck_assert_uint_eq(cfg->n_domains, 1);
	ck_assert_str_eq(cfg->domains[0], "example.org");
	ck_assert_uint_eq(cfg->minimum_uid, 0);
	ma_config_free(&cfg);
	cfg = global_ok("minimum_uid = 4294967294");
	ck_assert_uint_eq(cfg->minimum_uid, 4294967294UL);
	ma_config_free(&cfg);
	/* The bad element of a list spread over lines names its own line. */
	parse_err("domains = {\n  \"example.org\",\n  \"exa mple.org\"\n}\n" SRV, 3,
	          "domains = \"exa mple.org\": must be a host name");
	global_err("domains = {\"\"}", "domains = \"\"");
	global_err("domains = {\"user@example.org\"}", "must be a host name");
	global_err("minimum_uid = -1", "must be a decimal number");
	global_err("minimum_uid = 4294967295", "minimum_uid = 4294967295: must be a uid");
}
END_TEST

START_TEST(unknown_keys_and_sections)
{
	global_err("foo = 1", "no such option 'foo'");
	global_err("Timeout = 5", "no such option 'Timeout'");
	server_err("  host = \"h\"\n  hots = x", 3, "no such option 'hots'");
	parse_err(SRV "\nclient b {\n  host = x\n}\n", 5, "no such option 'client'");
	/* Server options are not global and vice versa. */
	global_err("host = x", "no such option 'host'");
	server_err("  host = x\n  timeout = 5", 3, "no such option 'timeout'");
	/* A quoted key path reaching into a section is refused. */
	parse_err(SRV "\"server=a|host\" = \"evil.example\"\n", 4, "must be set inside its section");
	parse_err(SRV "\"server|tls\" = none\n", 4, "must be set inside its section");
}
END_TEST

START_TEST(server_sections)
{
	struct ma_config *cfg = NULL;
	char text[4096];
	size_t n = 0;

	parse_err("timeout = 5\n", 0, "no server section");
	parse_err("", 0, "no server section");
	parse_err("# only a comment\n", 0, "no server section");
	parse_err(SRV "\nserver a {\n  host = x\n}\n", 5, "duplicate title 'a'");
	parse_err("server {\n host = x\n}\n", 1, "missing title");
	parse_err("server \"bad name\" {\n host = x\n}\n", 1, "server \"bad name\": a name is");
	parse_err("timeout = 5\n\nserver a {\n  port = 143\n}\n", 3, "server a: host is required");
	server_err("  host = \"\"", 2, "host = \"\": must be 1 to 255");
	server_err("  host = \"mail example\"", 2, "must not contain spaces");
	server_err("  host = \"mail\\texample\"", 2, "must not contain spaces");
	/* At most MA_MAX_SERVERS, kept in file order. */
	for (int i = 0; i < MA_MAX_SERVERS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "server s%d { host = h%d }\n", i, i);
	cfg = parse_ok(text);
	ck_assert_uint_eq(cfg->n_servers, MA_MAX_SERVERS);
	ck_assert_str_eq(cfg->servers[0].name, "s0");
	ck_assert_str_eq(cfg->servers[15].name, "s15");
	ck_assert_str_eq(cfg->servers[15].host, "h15");
	ck_assert_uint_eq(cfg->servers[15].config_line, 16);
	ma_config_free(&cfg);
	snprintf(text + n, sizeof(text) - n, "\nserver s16 { host = h16 }\n");
	parse_err(text, 18, "too many server sections (at most 16)");
}
END_TEST

START_TEST(tls_none_loopback_only)
{
	static const char *const ok[] = { "127.0.0.1", "127.5.6.7", "::1", "localhost", "LOCALHOST" };
	char body[256];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(body, sizeof(body), "  host = \"%s\"\n  tls = none", ok[i]);
		struct ma_config *cfg = server_ok(body);
		ck_assert_int_eq(cfg->servers[0].tls, MA_TLS_NONE);
		ck_assert_uint_eq(cfg->servers[0].port, 143);
		ma_config_free(&cfg);
	}
	server_err("  host = \"mail.example.org\"\n  tls = none", 3,
	           "server a: tls = none is only allowed for localhost or a loopback address");
	server_err("  tls = none\n  host = \"10.0.0.1\"", 2, "not \"10.0.0.1\"");
	server_err("  tls = none\n  host = \"localhost.example.org\"", 2, "tls = none");
	server_err("  host = \"128.0.0.1\"\n  tls = NONE", 3, "tls = none");
	server_err("  host = x\n  tls = ssl", 3, "tls = \"ssl\": must be implicit, starttls or none");
	server_err("  host = \"127.0.0.1\"\n  tls = none\n  pin = \"" PIN0 "\"", 4,
	           "pin needs TLS");
}
END_TEST

/* channel_binding (SCRAM -PLUS): auto by default, four words, a bad one
 * named with its line, a binding type refused without TLS. */
START_TEST(channel_binding_values)
{
	static const struct { const char *v; enum ma_cb_mode want; } ok[] = {
		{ "auto", MA_CB_AUTO }, { "tls-exporter", MA_CB_TLS_EXPORTER },
		{ "tls-unique", MA_CB_TLS_UNIQUE }, { "none", MA_CB_NONE }, { "TLS-Unique", MA_CB_TLS_UNIQUE },
	};
	char body[256];

	struct ma_config *cfg = parse_ok(SRV);
	ck_assert_int_eq(cfg->servers[0].channel_binding, MA_CB_AUTO);
	ma_config_free(&cfg);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(body, sizeof(body), "  host = x\n  channel_binding = %s", ok[i].v);
		cfg = server_ok(body);
		ck_assert_int_eq(cfg->servers[0].channel_binding, ok[i].want);
		ma_config_free(&cfg);
	}
	ck_assert_str_eq(ma_cb_mode_name(MA_CB_AUTO), "auto");
	ck_assert_str_eq(ma_cb_mode_name(MA_CB_TLS_EXPORTER), "tls-exporter");
	ck_assert_str_eq(ma_cb_mode_name(MA_CB_TLS_UNIQUE), "tls-unique");
	ck_assert_str_eq(ma_cb_mode_name(MA_CB_NONE), "none");
	ck_assert_ptr_null(ma_cb_mode_name((enum ma_cb_mode)4));
	server_err("  host = x\n  channel_binding = tls-server-end-point", 3,
	           "channel_binding = \"tls-server-end-point\": must be auto, tls-exporter, "
	           "tls-unique or none");
	server_err("  host = x\n\n  channel_binding = \"\"", 4, "channel_binding");
	server_err("  host = x\n  channel_binding = yes", 3, "must be auto");
	/* A binding type without TLS is a contradiction: named with its line. */
	server_err("  host = \"127.0.0.1\"\n  tls = none\n  channel_binding = tls-unique", 4,
	           "server a: channel_binding = tls-unique needs TLS, but tls = none");
	server_err("  channel_binding = tls-exporter\n  host = \"::1\"\n  tls = none", 2,
	           "channel_binding = tls-exporter needs TLS");
	/* auto and none mean "no binding" there: accepted, and none is what it is. */
	cfg = server_ok("  host = \"127.0.0.1\"\n  tls = none\n  channel_binding = auto");
	ck_assert_int_eq(cfg->servers[0].channel_binding, MA_CB_NONE);
	ma_config_free(&cfg);
	cfg = server_ok("  host = \"127.0.0.1\"\n  tls = none\n  channel_binding = none");
	ck_assert_int_eq(cfg->servers[0].channel_binding, MA_CB_NONE);
	ma_config_free(&cfg);
	/* Per server, not global. */
	global_err("channel_binding = none", "channel_binding");
}
END_TEST

START_TEST(port_defaults)
{
	static const struct { const char *body; unsigned port; } cases[] = {
		{ "protocol = imap\n tls = implicit", 993 },
		{ "protocol = imap\n tls = starttls", 143 },
		{ "protocol = smtp\n tls = implicit", 465 },
		{ "protocol = smtp\n tls = starttls", 587 },
		{ "protocol = IMAP\n tls = StartTLS", 143 },
		{ "protocol = smtp", 465 },
		{ "tls = starttls\n port = 10143", 10143 },
		{ "protocol = smtp\n port = 1", 1 },
		{ "port = 65535", 65535 },
	};
	char body[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(body, sizeof(body), " host = h\n %s", cases[i].body);
		struct ma_config *cfg = server_ok(body);
		ck_assert_msg(cfg->servers[0].port == cases[i].port, "%s: port %u",
		              cases[i].body, cfg->servers[0].port);
		ma_config_free(&cfg);
	}
	struct ma_config *cfg = server_ok(" host = \"::1\"\n protocol = smtp\n tls = none");
	ck_assert_uint_eq(cfg->servers[0].port, 587);
	ma_config_free(&cfg);
	server_err(" host = h\n port = 0", 3, "port = 0: must be 1 to 65535");
	server_err(" host = h\n port = 65536", 3, "port = 65536: must be 1 to 65535");
	server_err(" host = h\n port = imaps", 3, "port = \"imaps\": must be a decimal number");
	server_err(" host = h\n protocol = pop3", 3, "protocol = \"pop3\": must be imap or smtp");
}
END_TEST

START_TEST(pins)
{
	struct ma_config *cfg = server_ok(" host = h\n pin = \"" PIN1 "\"");
	ck_assert_uint_eq(cfg->servers[0].n_pins, 1);
	for (unsigned i = 0; i < MA_PIN_LEN; i++)
		ck_assert_uint_eq(cfg->servers[0].pins[0][i], i + 1);
	ma_config_free(&cfg);

	/* 31 bytes, 33 bytes */
	server_err(" host = h\n pin = \"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\"", 3,
	           "must be \"sha256//\" and the base64 of 32 bytes");
	server_err(" host = h\n pin = \"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"", 3,
	           "base64 of 32 bytes");
	/* bad alphabet, missing padding, whitespace, non-zero pad bits, no prefix */
	server_err(" host = h\n pin = \"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA*=\"", 3, "base64");
	server_err(" host = h\n pin = \"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"", 3, "base64");
	server_err(" host = h\n pin = \"sha256// AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"", 3, "base64");
	server_err(" host = h\n pin = \"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\"", 3, "base64");
	server_err(" host = h\n pin = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"", 3, "sha256//");
	server_err(" host = h\n pin = \"sha1//AAAAAAAAAAAAAAAAAAAAAAAAAAA=\"", 3, "sha256//");
	/* The second element of a list on its own line. */
	server_err(" host = h\n pin = {\n  \"" PIN0 "\",\n  \"sha256//x\"\n }", 5, "pin = \"sha256//x\"");

	char body[2048];
	size_t n = (size_t)snprintf(body, sizeof(body), " host = h\n pin = {");
	for (int i = 0; i <= MA_MAX_PINS; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"%s\"", i ? "," : "", PIN0);
	snprintf(body + n, sizeof(body) - n, "}");
	server_err(body, 3, "too many pins");
}
END_TEST

START_TEST(mechanisms)
{
	struct ma_config *cfg = server_ok(" host = h\n mechanisms = {plain, \"Scram-Sha-1-Plus\", IMAP-LOGIN}");
	ck_assert_uint_eq(cfg->servers[0].mechanisms, MA_MECH_BIT(MA_MECH_PLAIN) |
	                  MA_MECH_BIT(MA_MECH_SCRAM_SHA_1_PLUS) | MA_MECH_BIT(MA_MECH_IMAP_LOGIN));
	ma_config_free(&cfg);

	/* Default: everything but CRAM-MD5; for SMTP also without IMAP-LOGIN. */
	cfg = server_ok(" host = h\n mechanisms = {}");
	ck_assert_uint_eq(cfg->servers[0].mechanisms, MA_MECH_DEFAULT_SET);
	ck_assert_uint_eq(cfg->servers[0].mechanisms & MA_MECH_BIT(MA_MECH_CRAM_MD5), 0);
	ck_assert_uint_ne(cfg->servers[0].mechanisms & MA_MECH_BIT(MA_MECH_SCRAM_SHA_256_PLUS), 0);
	ck_assert_uint_ne(cfg->servers[0].mechanisms & MA_MECH_BIT(MA_MECH_IMAP_LOGIN), 0);
	ma_config_free(&cfg);
	cfg = server_ok(" host = h\n protocol = smtp");
	ck_assert_uint_eq(cfg->servers[0].mechanisms,
	                  MA_MECH_DEFAULT_SET & ~MA_MECH_BIT(MA_MECH_IMAP_LOGIN));
	ma_config_free(&cfg);
	cfg = server_ok(" host = h\n mechanisms = CRAM-MD5");
	ck_assert_uint_eq(cfg->servers[0].mechanisms, MA_MECH_BIT(MA_MECH_CRAM_MD5));
	ma_config_free(&cfg);

	server_err(" host = h\n mechanisms = {PLAIN, XPLAIN}", 3, "mechanisms = \"XPLAIN\": unknown mechanism");
	server_err(" host = h\n mechanisms = {\"SCRAM-SHA-512\"}", 3, "unknown mechanism");
	server_err(" host = h\n mechanisms = {\"PLAIN \"}", 3, "unknown mechanism");
	/* IMAP-LOGIN with SMTP: named on the mechanisms line, whichever comes first. */
	server_err(" host = h\n mechanisms = {PLAIN, imap-login}\n protocol = smtp", 3,
	           "IMAP-LOGIN is the IMAP LOGIN command");
	server_err(" protocol = smtp\n host = h\n\n mechanisms = IMAP-LOGIN", 5, "protocol = smtp");
}
END_TEST

START_TEST(mechanism_names)
{
	static const char *const names[MA_MECH_COUNT] = {
		"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1",
		"CRAM-MD5", "PLAIN", "LOGIN", "IMAP-LOGIN",
	};
	for (int i = 0; i < MA_MECH_COUNT; i++) {
		ck_assert_str_eq(ma_mech_name((enum ma_mech)i), names[i]);
		ck_assert_int_eq(ma_mech_from_name(names[i]), i);
	}
	ck_assert_ptr_null(ma_mech_name(MA_MECH_COUNT));
	ck_assert_ptr_null(ma_mech_name((enum ma_mech)-1));
	ck_assert_int_eq(ma_mech_from_name("scram-sha-256-plus"), MA_MECH_SCRAM_SHA_256_PLUS);
	ck_assert_int_eq(ma_mech_from_name("Login"), MA_MECH_LOGIN);
	ck_assert_int_eq(ma_mech_from_name("XPLAIN"), -1);
	ck_assert_int_eq(ma_mech_from_name("PLAI"), -1);
	ck_assert_int_eq(ma_mech_from_name("PLAINX"), -1);
	ck_assert_int_eq(ma_mech_from_name(""), -1);
	ck_assert_int_eq(ma_mech_from_name(NULL), -1);
}
END_TEST

START_TEST(server_domains)
{
	struct ma_config *cfg = parse_ok("domains = {example.org, Example.NET}\n"
	                                 "server a {\n host = h\n domains = {example.net}\n}\n");
	ck_assert_uint_eq(cfg->servers[0].n_domains, 1);
	ck_assert_str_eq(cfg->servers[0].domains[0], "example.net");
	ma_config_free(&cfg);
	/* No global list: any domain may be routed. */
	cfg = server_ok(" host = h\n domains = {a.example, b.example}");
	ck_assert_uint_eq(cfg->servers[0].n_domains, 2);
	ck_assert_str_eq(cfg->servers[0].domains[1], "b.example");
	ma_config_free(&cfg);
	/* The global list may come after the section. */
	parse_err("server a {\n host = h\n\n domains = {example.org, other.org}\n}\n"
	          "domains = {example.org}\n", 4,
	          "server a: domain other.org is not in the global domains list");
	server_err(" host = h\n domains = \"bad domain\"", 3, "must be a host name");
	/* A list spread over lines: the line of its first value. */
	parse_err("domains = example.org\nserver a {\n host = h\n domains = {\n  example.org,\n"
	          "  other.org\n }\n}\n", 5, "domain other.org is not in the global");
}
END_TEST

START_TEST(verify_name_and_ca)
{
	struct ma_config *cfg = server_ok(" host = \"10.1.2.3\"\n verify_name = \"mail.example.org\"\n"
	                                  " ca_file = \"/nonexistent/ca.pem\"");
	ck_assert_str_eq(cfg->servers[0].verify_name, "mail.example.org");
	ck_assert_str_eq(cfg->servers[0].ca_file, "/nonexistent/ca.pem");
	ck_assert_ptr_null(cfg->servers[0].ca_path);
	ma_config_free(&cfg);
	cfg = parse_ok("ca_path = /g\nserver a {\n host = h\n verify_name = \"\"\n ca_path = \"\"\n}\n");
	ck_assert_str_eq(cfg->servers[0].verify_name, "h");
	ck_assert_str_eq(cfg->servers[0].ca_path, "/g");      /* "" inherits */
	ma_config_free(&cfg);
	/* A server's own trust anchors replace the global pair, never mix
	 * with it: its ca_file alone must not also trust the global ca_path,
	 * nor its ca_path the global ca_file. */
	cfg = parse_ok("ca_file = /g.pem\nca_path = /g\n"
	               "server a {\n host = h\n ca_file = /own.pem\n}\n"
	               "server b {\n host = h\n ca_path = /own\n}\n"
	               "server c {\n host = h\n}\n");
	ck_assert_str_eq(cfg->servers[0].ca_file, "/own.pem");
	ck_assert_ptr_null(cfg->servers[0].ca_path);
	ck_assert_ptr_null(cfg->servers[1].ca_file);
	ck_assert_str_eq(cfg->servers[1].ca_path, "/own");
	ck_assert_str_eq(cfg->servers[2].ca_file, "/g.pem");
	ck_assert_str_eq(cfg->servers[2].ca_path, "/g");
	ma_config_free(&cfg);
	server_err(" host = h\n verify_name = \"a b\"", 3, "verify_name = \"a b\": must not contain spaces");
}
END_TEST

START_TEST(lexical)
{
	struct ma_config *cfg = NULL;

	/* Comments (libconfuse 3.3 miscounts them) do not shift line numbers. */
	parse_err("# one\n# two\n// three\n/* four\n five */\ntimeout = 0\n" SRV, 6, "timeout = 0");
	parse_err("timeout = 5 # comment\n\n" SRV "\nfoo = 1\n", 7, "no such option 'foo'");
	/* Comments inside a list, and '#' inside strings. */
	cfg = parse_ok("domains = {\n  example.org,   # main\n  example.net    // second\n}\n"
	               "login = \"%u#x\"\n" SRV);
	ck_assert_uint_eq(cfg->n_domains, 2);
	ck_assert_str_eq(cfg->domains[1], "example.net");
	ck_assert_str_eq(cfg->login_format, "%u#x");
	ma_config_free(&cfg);
	/* An unquoted path keeps its '//' (libconfuse reads it as one word). */
	cfg = parse_ok("ca_file = /etc//ssl/ca.pem\n" SRV);
	ck_assert_str_eq(cfg->servers[0].ca_file, "/etc//ssl/ca.pem");
	ma_config_free(&cfg);
	/* CRLF line ends, single quotes. */
	cfg = parse_ok("timeout = 7\r\nserver a {\r\n host = 'mail.example.org'\r\n}\r\n");
	ck_assert_uint_eq(cfg->timeout_ms, 7000);
	ck_assert_str_eq(cfg->servers[0].host, "mail.example.org");
	ma_config_free(&cfg);

	parse_err("timeout = 5\n/* never closed\n" SRV, 2, "unterminated /* comment");
	parse_err(SRV "timeout = 5\nlogin = \"%u\n\n", 5, "unterminated string");
	parse_err("timeout = 5\nlogin = '%u\n" SRV, 2, "unterminated string");
	parse_err("timeout = 5\nserver a {\n  host = x\n", 2, "this '{' is never closed");
	parse_err(SRV "domains = {a.org,\n", 4, "this '{' is never closed");
	parse_err(SRV "}\n", 4, "unexpected closing brace");
	parse_err("timeout = 5\nlogin = \"${USER}\"\n" SRV, 2, "${...} (environment variables)");
	parse_err("timeout = 5\n\nhelo_name = ${HOSTNAME}\n" SRV, 3, "environment variables");
	parse_err("timeout =\n", 1, "premature end of file");
	parse_err("timeout = 5 =\n" SRV, 1, "");

	static const char nul[] = "timeout = 5\nlo\0gin = x\n";
	struct ma_config *c2 = NULL;
	ck_assert_int_eq(ma_config_parse(nul, sizeof(nul) - 1, NAME, &c2, err, sizeof(err)), MA_CONFIG);
	ck_assert_str_eq(err, NAME ":2: NUL byte in the file");
	ck_assert_ptr_null(c2);
}
END_TEST

START_TEST(login_names)
{
	struct ma_config *cfg = global_ok("login = \"%u|%l|%d|%%\"");
	char *s = ma_config_login_name(cfg, "Alice@Mail@Example.ORG");
	ck_assert_str_eq(s, "Alice@Mail@Example.ORG|Alice@Mail|Example.ORG|%");
	free(s);
	s = ma_config_login_name(cfg, "bob");
	ck_assert_str_eq(s, "bob|bob||%");
	free(s);
	ck_assert_ptr_null(ma_config_login_name(cfg, NULL));
	ck_assert_ptr_null(ma_config_login_name(NULL, "bob"));
	ma_config_free(&cfg);

	cfg = global_ok("login = \"%l@example.org\"\nlowercase = yes");
	s = ma_config_login_name(cfg, "Bob.Smith@OTHER.net");
	ck_assert_str_eq(s, "bob.smith@example.org");
	free(s);
	ma_config_free(&cfg);

	/* At most 255 bytes. */
	char user[300];
	cfg = parse_ok(SRV);
	memset(user, 'x', 255);
	user[255] = '\0';
	s = ma_config_login_name(cfg, user);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(strlen(s), 255);
	free(s);
	user[255] = 'x';
	user[256] = '\0';
	ck_assert_ptr_null(ma_config_login_name(cfg, user));
	ma_config_free(&cfg);
	cfg = global_ok("login = \"%u@example.org\"");
	memset(user, 'x', 243);
	user[243] = '\0';
	s = ma_config_login_name(cfg, user);
	ck_assert_uint_eq(strlen(s), 255);
	free(s);
	user[243] = 'x';
	user[244] = '\0';
	ck_assert_ptr_null(ma_config_login_name(cfg, user));
	ma_config_free(&cfg);

	ck_assert_str_eq(ma_login_domain("a@b@c.org"), "c.org");
	ck_assert_str_eq(ma_login_domain("a@"), "");
	ck_assert_str_eq(ma_login_domain("alice"), "");
	ck_assert_str_eq(ma_login_domain(NULL), "");
}
END_TEST

/* ---- safe open ---- */

static char dir[64];
static char path[128];

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ma_config_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/pam_mailauth.conf", dir);
}

static void write_file(const char *p, const char *text, mode_t mode)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

static unsigned long owner_of(const char *p)
{
	struct stat st;
	ck_assert_int_eq(stat(p, &st), 0);
	return (unsigned long)st.st_uid;
}

static void load_err(const char *p, const char *what)
{
	struct ma_config *cfg = (struct ma_config *)1;
	char expect[256];

	ck_assert_int_eq(ma_config_load(p, &cfg, err, sizeof(err)), MA_CONFIG);
	ck_assert_ptr_null(cfg);
	snprintf(expect, sizeof(expect), "%s: %s", p, what);
	ck_assert_msg(strncmp(err, expect, strlen(expect)) == 0, "expected '%s', got '%s'", expect, err);
}

START_TEST(load_good_file)
{
	struct ma_config *cfg = NULL;

	make_dir();
	write_file(path, "timeout = 20\n" SRV, 0644);
	ck_assert_int_eq(ma_config_load(path, &cfg, err, sizeof(err)), MA_OK);
	ck_assert_str_eq(cfg->path, path);
	ck_assert_uint_eq(cfg->timeout_ms, 20000);
	ck_assert_uint_eq(cfg->servers[0].config_line, 2);
	ma_config_free(&cfg);
	/* Errors inside name the file's path and line. */
	write_file(path, "timeout = 20\n\nfoo = 1\n" SRV, 0600);
	char expect[256];
	snprintf(expect, sizeof(expect), "%s:3: no such option 'foo'", path);
	ck_assert_int_eq(ma_config_load(path, &cfg, err, sizeof(err)), MA_CONFIG);
	ck_assert_str_eq(err, expect);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(load_refusals)
{
	char p2[160], big[MA_CONFIG_MAX_SIZE + 2];

	make_dir();
	load_err(path, "cannot open: No such file or directory");

	write_file(path, SRV, 0620);
	load_err(path, "is group- or world-writable (mode 0620)");
	write_file(path, SRV, 0602);
	load_err(path, "is group- or world-writable (mode 0602)");
	write_file(path, SRV, 0666);
	load_err(path, "is group- or world-writable");

	write_file(path, SRV, 0644);
	snprintf(p2, sizeof(p2), "%s/link.conf", dir);
	ck_assert_int_eq(symlink(path, p2), 0);
	load_err(p2, "is a symbolic link (refused)");
	unlink(p2);

	snprintf(p2, sizeof(p2), "%s/sub", dir);
	ck_assert_int_eq(mkdir(p2, 0755), 0);
	load_err(p2, "not a regular file");
	rmdir(p2);

	/* A FIFO without a writer must not hang the open. */
	snprintf(p2, sizeof(p2), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(p2, 0644), 0);
	load_err(p2, "not a regular file");
	unlink(p2);

	/* Exactly the limit is fine for the open (it then fails to parse);
	 * one byte more is refused. */
	memset(big, ' ', sizeof(big));
	big[MA_CONFIG_MAX_SIZE] = '\0';
	write_file(path, big, 0644);
	load_err(path, "no server section");
	big[MA_CONFIG_MAX_SIZE] = ' ';
	big[MA_CONFIG_MAX_SIZE + 1] = '\0';
	write_file(path, big, 0644);
	load_err(path, "larger than 65536 bytes");

	load_err("/dev/null", "not a regular file");
	unlink(path);
	rmdir(dir);

	struct ma_config *cfg = (struct ma_config *)1;
	ck_assert_int_eq(ma_config_load(NULL, &cfg, err, sizeof(err)), MA_CONFIG);
	ck_assert_ptr_null(cfg);
}
END_TEST

/* A root-owned file as seen from inside a new user namespace in which only the
 * caller's uid is mapped (to 0): its owner shows as the overflow uid, neither
 * root nor the (namespace) euid, i.e. a foreign owner, without needing root.
 * Runs in a child; exit status 0: refused as expected, 1: not refused (the
 * message on stderr), 2: no user namespace here. */
static int foreign_owner_in_userns(const char *root_file)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char map[64], expect[256], e[512];
		unsigned long overflow = 65534;
		FILE *f;
		int fd, n;
		uid_t outer = geteuid();

		if (unshare(CLONE_NEWUSER) != 0)
			_exit(2);
		n = snprintf(map, sizeof(map), "0 %lu 1\n", (unsigned long)outer);
		fd = open("/proc/self/uid_map", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, map, (size_t)n) != n)
			_exit(2);
		close(fd);
		if ((f = fopen("/proc/sys/kernel/overflowuid", "re")) != NULL) {
			if (fscanf(f, "%lu", &overflow) != 1)
				overflow = 65534;
			fclose(f);
		}
		if (geteuid() != 0) {
			fprintf(stderr, "in the namespace: euid %lu, not 0\n", (unsigned long)geteuid());
			_exit(1);
		}
		struct stat st;
		if (stat(root_file, &st) != 0 || st.st_uid != (uid_t)overflow) {
			fprintf(stderr, "%s does not show as owned by the overflow uid %lu\n", root_file, overflow);
			_exit(1);
		}
		struct ma_config *cfg = NULL;
		snprintf(expect, sizeof(expect), "%s: owned by uid %lu, not by root", root_file, overflow);
		if (ma_config_load(root_file, &cfg, e, sizeof(e)) != MA_CONFIG || cfg != NULL ||
		    strncmp(e, expect, strlen(expect)) != 0) {
			fprintf(stderr, "expected '%s', got '%s'\n", expect, e);
			_exit(1);
		}
		_exit(0);
	}
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "user namespace child died (status %d)", status);
	return WEXITSTATUS(status);
}

/* Owner rule (lib/config.c): the file may be owned by root or by the user the module
 * runs as, and is never group- or world-writable; anybody else who owns it could
 * chmod it and choose where passwords are sent. Every branch asserts: as root a file
 * is given away with chown; otherwise a root-owned file is looked at from a user
 * namespace; with neither, the test fails and says why. */
START_TEST(load_foreign_owner)
{
	struct ma_config *cfg = NULL;

	make_dir();
	/* Owned by the running user (root under make check), mode 0644: accepted. */
	write_file(path, SRV, 0644);
	ck_assert_uint_eq(geteuid(), (uid_t)owner_of(path));
	ck_assert_int_eq(ma_config_load(path, &cfg, err, sizeof(err)), MA_OK);
	ma_config_free(&cfg);
	/* Being the running user's own file does not excuse group or other write. */
	write_file(path, SRV, 0664);
	load_err(path, "is group- or world-writable (mode 0664)");
	write_file(path, SRV, 0646);
	load_err(path, "is group- or world-writable (mode 0646)");

	if (geteuid() == 0) {
		write_file(path, SRV, 0644);
		ck_assert_int_eq(chown(path, 12345, 0), 0);
		load_err(path, "owned by uid 12345, not by root");
		/* Not writable by anybody but its owner changes nothing. */
		ck_assert_int_eq(chmod(path, 0600), 0);
		load_err(path, "owned by uid 12345, not by root");
		/* Group root, owner another: still refused. */
		ck_assert_int_eq(chown(path, 12345, 12345), 0);
		load_err(path, "owned by uid 12345, not by root");
		/* Owned by root again: accepted. */
		ck_assert_int_eq(chown(path, 0, 0), 0);
		ck_assert_int_eq(ma_config_load(path, &cfg, err, sizeof(err)), MA_OK);
		ma_config_free(&cfg);
	} else {
		/* A root-owned regular file that is not ours. */
		const char *root_file = "/etc/passwd";
		ck_assert_uint_eq(owner_of(root_file), 0);
		int rc = foreign_owner_in_userns(root_file);
		ck_assert_msg(rc != 2,
		              "not root (euid %lu) and no user namespace available: the foreign-owner "
		              "refusal cannot be tested here; run as root",
		              (unsigned long)geteuid());
		ck_assert_msg(rc == 0, "a root-owned file seen from a user namespace (foreign owner) "
		                       "was not refused; see stderr");
	}
	unlink(path);
	rmdir(dir);
}
END_TEST

/* ---- thread safety: the lexer is global, the lock serialises it ---- */

static void *parse_many(void *arg)
{
	long bad = (long)arg % 2;
	for (int i = 0; i < 200; i++) {
		struct ma_config *cfg = NULL;
		char e[256];
		const char *t = bad ? "timeout = 5\n\n\nbogus = 1\n" SRV : "timeout = 5 # c\n" SRV;
		enum ma_err rc = ma_config_parse(t, strlen(t), "t", &cfg, e, sizeof(e));
		if (bad ? rc != MA_CONFIG || strcmp(e, "t:4: no such option 'bogus'") != 0
		        : rc != MA_OK || cfg->timeout_ms != 5000)
			return (void *)1;
		ma_config_free(&cfg);
	}
	return NULL;
}

START_TEST(threads)
{
	pthread_t t[8];
	for (long i = 0; i < 8; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, parse_many, (void *)i), 0);
	for (int i = 0; i < 8; i++) {
		void *r = NULL;
		ck_assert_int_eq(pthread_join(t[i], &r), 0);
		ck_assert_ptr_null(r);
	}
}
END_TEST

START_TEST(error_buffer_edges)
{
	struct ma_config *cfg = NULL;
	char small[12];
	/* Truncated, still terminated; no buffer at all is fine too. */
	ck_assert_int_eq(ma_config_parse("foo = 1\n", 8, NAME, &cfg, small, sizeof(small)), MA_CONFIG);
	ck_assert_str_eq(small, "test.conf:1");
	ck_assert_int_eq(ma_config_parse("foo = 1\n", 8, NAME, &cfg, NULL, 0), MA_CONFIG);
	/* Control characters from the file never reach the message. */
	ck_assert_int_eq(ma_config_parse("\"fo\033o\" = 1\n", 11, NAME, &cfg, err, sizeof(err)), MA_CONFIG);
	ck_assert_str_eq(err, NAME ":1: no such option 'fo?o'");
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_test(tc, defaults);
	tcase_add_test(tc, all_keys);
	tcase_add_test(tc, spec_example);
	tcase_add_test(tc, timeout_values);
	tcase_add_test(tc, tls_min_version_values);
	tcase_add_test(tc, login_format_values);
	tcase_add_test(tc, bool_values);
	tcase_add_test(tc, helo_name_values);
	tcase_add_test(tc, global_domains_and_uid);
	tcase_add_test(tc, unknown_keys_and_sections);
	tcase_add_test(tc, server_sections);
	tcase_add_test(tc, tls_none_loopback_only);
	tcase_add_test(tc, channel_binding_values);
	tcase_add_test(tc, port_defaults);
	tcase_add_test(tc, pins);
	tcase_add_test(tc, mechanisms);
	tcase_add_test(tc, mechanism_names);
	tcase_add_test(tc, server_domains);
	tcase_add_test(tc, verify_name_and_ca);
	tcase_add_test(tc, lexical);
	tcase_add_test(tc, login_names);
	tcase_add_test(tc, load_good_file);
	tcase_add_test(tc, load_refusals);
	tcase_add_test(tc, load_foreign_owner);
	tcase_add_test(tc, threads);
	tcase_add_test(tc, error_buffer_edges);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ma_unit_run(config_suite());
}
