/*
 * config.c - safe open, libconfuse schema and validation of
 * pam_mailauth.conf (SPEC section 5) into a plain struct ma_config.
 *
 * libconfuse 3.3 provides the grammar and the schema.  Three things about it
 * shape this file:
 *  - Its lexer is flex-generated with global state and its default error
 *    function prints to stderr (inside sshd: the client's session).  Every
 *    libconfuse call therefore runs under one mutex, with our own error
 *    function, which finds the caller's error buffer through a thread-local
 *    pointer set while the lock is held.
 *  - Measured on 3.3: a '#' or '//' comment advances the line counter by
 *    three, '/ *' comments by one extra; a comment inside a list is a syntax
 *    error; an unterminated '/ *' comment or a section whose '}' is missing
 *    at end of file is accepted; ${VAR} is replaced from the environment of
 *    whatever process loads the module.  prescan() runs first: it blanks
 *    every comment (keeping newlines, so line numbers stay right), refuses
 *    NUL bytes and ${, and checks that strings, comments and braces close.
 *  - Values are checked in validation callbacks while the parser still knows
 *    the line; checks that involve several options run after the parse,
 *    with the lines noted by those callbacks.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <confuse.h>
#include <openssl/tls1.h>

#include "base64.h"
#include "net.h"
#include "secret.h"
#include "names.h"

static const char *const mech_names[MA_MECH_COUNT] = {
	"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1",
	"CRAM-MD5", "PLAIN", "LOGIN", "IMAP-LOGIN",
};
/* In the order of enum ma_protocol and enum ma_tls_mode. */
static const char *const protocols[] = { "imap", "smtp" };
static const char *const tls_modes[] = { "implicit", "starttls", "none" };
/* In the order of enum ma_cb_mode. */
static const char *const cb_modes[] = { "auto", "tls-exporter", "tls-unique", "none" };

/* Server options, in schema order: the index of an option in a section. */
enum { S_PROTOCOL, S_HOST, S_PORT, S_TLS, S_VERIFY_NAME, S_CA_FILE, S_CA_PATH,
       S_PIN, S_MECHANISMS, S_DOMAINS, S_MAX_CONNECTIONS, S_FORWARD_CLIENT_IP,
       S_CHANNEL_BINDING, S_COUNT };

struct parse_ctx {
	const char *name;             /* file name for messages */
	char *err;
	size_t errlen;
	bool have_err;                /* keep the first message only */
	unsigned n_lines;             /* lines in the text, to clamp EOF errors */
	unsigned sec_line[MA_MAX_SERVERS + 1];  /* top-level sections, from prescan */
	size_t n_sec;
	struct {                      /* where each server option was set */
		const cfg_t *sec;
		unsigned line[S_COUNT];
	} srv[MA_MAX_SERVERS];
	size_t n_srv;
};

/* The one piece of process state: libconfuse's lexer is not reentrant. */
static pthread_mutex_t confuse_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local struct parse_ctx *tl_ctx;

/* A fork() while another thread parses would hand the child a lock nobody
 * will release and a lexer in mid-file: take the lock around fork() (see
 * the same handlers for the TLS cache in tls.c). */
static void confuse_prepare(void)
{
	pthread_mutex_lock(&confuse_lock);
}

static void confuse_after_fork(void)
{
	pthread_mutex_unlock(&confuse_lock);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
	pthread_atfork(confuse_prepare, confuse_after_fork, confuse_after_fork);
}

/* ASCII only: a locale (Turkish dotless i) must not change what matches. */
static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool eq_nocase(const char *a, const char *b)
{
	while (*a != '\0' && lower(*a) == lower(*b)) {
		a++;
		b++;
	}
	return lower(*a) == lower(*b);
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int word_index(const char *v, const char *const *words, int n)
{
	for (int i = 0; i < n; i++)
		if (eq_nocase(v, words[i]))
			return i;
	return -1;
}

const char *ma_cb_mode_name(enum ma_cb_mode m)
{
	return (unsigned)m < sizeof(cb_modes) / sizeof(cb_modes[0]) ? cb_modes[m] : NULL;
}

const char *ma_mech_name(enum ma_mech m)
{
	return (unsigned)m < MA_MECH_COUNT ? mech_names[m] : NULL;
}

int ma_mech_from_name(const char *name)
{
	return name != NULL ? word_index(name, mech_names, MA_MECH_COUNT) : -1;
}

/* Messages end up in syslog and on terminals: no control characters. */
__attribute__((format(printf, 5, 0)))
static void verr(char *err, size_t errlen, const char *file, unsigned line,
                 const char *fmt, va_list ap)
{
	char msg[256];

	if (err == NULL || errlen == 0)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (line > 0)
		snprintf(err, errlen, "%s:%u: %s", file, line, msg);
	else
		snprintf(err, errlen, "%s: %s", file, msg);
	for (char *p = err; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

__attribute__((format(printf, 5, 6)))
static void fail(char *err, size_t errlen, const char *file, unsigned line,
                 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verr(err, errlen, file, line, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 3, 4)))
static enum ma_err cfail(struct parse_ctx *c, unsigned line, const char *fmt, ...)
{
	va_list ap;
	if (!c->have_err) {
		va_start(ap, fmt);
		verr(c->err, c->errlen, c->name, line, fmt, ap);
		va_end(ap);
	}
	c->have_err = true;
	return MA_CONFIG;
}

/* libconfuse's error function.  EOF errors may carry the line after the
 * last one; name the last line instead. */
__attribute__((format(printf, 2, 0)))
static void on_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	struct parse_ctx *c = tl_ctx;
	unsigned line = cfg != NULL && cfg->line > 0 ? (unsigned)cfg->line : 0;

	if (c == NULL || c->have_err)
		return;
	if (line > c->n_lines && c->n_lines > 0)
		line = c->n_lines;
	verr(c->err, c->errlen, c->name, line, fmt, ap);
	c->have_err = true;
}

/*
 * Copy TEXT to OUT (LEN + 1 bytes) with comments blanked, and note the line
 * of each top-level section (a '{' not preceded by '=': lists follow '=').
 * Comment syntax as libconfuse documents it: '#' anywhere outside strings,
 * '//' at the start of a word (so /a//b stays a path), and '/ * ... * /'.
 */
static enum ma_err prescan(struct parse_ctx *c, const char *text, size_t len, char *out)
{
	enum ma_err rc = MA_CONFIG;
	enum { NORMAL, DQ, SQ, LINE_COMMENT, BLOCK } st = NORMAL;
	unsigned line = 1, st_line = 0, tok_line = 1, depth = 0, open[4] = { 0 };
	int skip = 0;                 /* 1: take the next byte as is, 2: blank it */
	char last = '\n';             /* last significant byte outside comments */

	for (size_t i = 0; i < len; i++) {
		char ch = text[i], next = i + 1 < len ? text[i + 1] : '\0';
		char prev = i > 0 ? text[i - 1] : ' ';

		out[i] = ch;
		if (ch == '\0' || (ch == '$' && next == '{' && skip == 0 && (st == NORMAL || st == DQ))) {
			cfail(c, line, "%s", ch == '\0' ? "NUL byte in the file"
			      : "${...} (environment variables) is not supported");
			goto out;
		}
		if (skip != 0) {
			if (skip == 2)
				out[i] = ' ';
			skip = 0;
		} else if (st == NORMAL) {
			if (ch == '#' || (ch == '/' && next == '/' && strchr(" \t\r\n={}(),+*\"'", prev))) {
				st = LINE_COMMENT;
				out[i] = ' ';
			} else if (ch == '/' && next == '*') {
				st = BLOCK;
				st_line = line;
				out[i] = ' ';
				skip = 2;
			} else if (ch == '"' || ch == '\'') {
				st = ch == '"' ? DQ : SQ;
				st_line = line;
			} else if (ch == '{') {
				if (depth == 0 && last != '=') {
					if (c->n_sec <= MA_MAX_SERVERS)
						c->sec_line[c->n_sec] = tok_line;
					c->n_sec++;
				}
				if (depth < 4)
					open[depth] = line;
				depth++;
			} else if (ch == '}' && depth > 0) {
				depth--;      /* a stray '}' is libconfuse's to report */
			}
			if (st == NORMAL && ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') {
				last = ch;
				tok_line = line;
			}
		} else if (st == DQ || st == SQ) {
			if (ch == '\\') {
				skip = 1;
			} else if (ch == (st == DQ ? '"' : '\'')) {
				st = NORMAL;
				last = ch;
				tok_line = line;
			}
		} else if (st == LINE_COMMENT) {
			if (ch == '\n')
				st = NORMAL;
			else
				out[i] = ' ';
		} else {
			if (ch == '*' && next == '/') {
				st = NORMAL;
				skip = 2;
			}
			if (ch != '\n')
				out[i] = ' ';
		}
		if (ch == '\n')
			line++;
	}
	out[len] = '\0';
	c->n_lines = len > 0 && text[len - 1] == '\n' ? line - 1 : line;
	if (st == DQ || st == SQ)
		cfail(c, st_line, "unterminated string");
	else if (st == BLOCK)
		cfail(c, st_line, "unterminated /* comment");
	else if (depth > 0)
		cfail(c, open[depth > 4 ? 3 : depth - 1], "this '{' is never closed");
	else
		rc = MA_OK;
out:
	return rc;
}

/* 1..MAX bytes, a letter or digit first, then letters, digits or EXTRA. */
static bool word_ok(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || !is_alnum(s[0]))
		return false;
	for (; *s != '\0'; s++)
		if (!is_alnum(*s) && strchr(extra, *s) == NULL)
			return false;
	return true;
}

/* helo_name and domains are DNS names (RFC 1123 2.1). */
static const char *check_dns_name(const char *s)
{
	return word_ok(s, 255, "-.") ? NULL
	       : "must be a host name: letters, digits, '-' and '.', a letter or digit first";
}

/* helo_name goes on the wire as it is: the rule is names.c's (smtp.c's EHLO uses the same) (RFC 5321
 * 4.1.1.1, a domain or an address literal), so that what loads here is
 * also what EHLO accepts. */
static const char *check_helo_name(const char *s)
{
	size_t n = strlen(s);
	return n == 0 || ma_valid_domain(s, n) || ma_valid_address_literal(s, n) ? NULL
	       : "must be a host name (labels of letters, digits and inner '-', at most 63 "
	         "characters each) or an address literal such as [192.0.2.1]";
}

/* host and verify_name may also be IP literals (IPv6 has ':'): refuse only
 * what can never be part of a name or an address. */
static const char *check_host(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 255)
		return "must be 1 to 255 characters";
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return "must not contain spaces or control characters";
	return NULL;
}

/* A format without %u or %l would send the same login for every user: a
 * mail password would then open every local account. */
static const char *check_login_format(const char *s)
{
	bool user = false;

	if (strlen(s) > 255)
		return "must be at most 255 characters";
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return "must not contain control characters";
		if (*s != '%')
			continue;
		s++;
		if (*s == 'u' || *s == 'l')
			user = true;
		else if (*s != 'd' && *s != '%')
			return "only %u, %l, %d and %% may follow '%'";
	}
	return user ? NULL : "must contain %u or %l";
}

/* "sha256//" + strict base64 of exactly 32 bytes (SHA-256 of the SPKI). */
static int decode_pin(const char *s, unsigned char *out)
{
	static const char prefix[] = "sha256//";
	unsigned char *raw = NULL;
	size_t n = 0;
	int rc = -1;

	if (strncmp(s, prefix, sizeof(prefix) - 1) != 0)
		goto out;
	s += sizeof(prefix) - 1;
	if (ma_base64_decode(s, strlen(s), &raw, &n) != 0 || n != MA_PIN_LEN)
		goto out;
	if (out != NULL)
		memcpy(out, raw, MA_PIN_LEN);
	rc = 0;
out:
	ma_freezero(raw, n);
	return rc;
}

/* clients = {"www-data", "@freerad"}: a user or @group name as useradd(8)
 * takes it. */
static const char *check_client(const char *s)
{
	if (s[0] == '@')
		s++;
	return word_ok(s, 32, "_.-$") || (s[0] == '_' && word_ok(s + 1, 31, "_.-$")) ? NULL
	       : "must be a user name or @group (letters, digits, '_', '.', '-')";
}

/* state_dir: an absolute path without control characters. */
static const char *check_state_dir(const char *s)
{
	if (s[0] != '/' || strlen(s) > 200)
		return "must be an absolute path of at most 200 characters";
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return "must not contain control characters";
	return NULL;
}

static const char *check_str(const char *name, const char *v)
{
	if (strcmp(name, "tls_min_version") == 0)
		return strcmp(v, "1.2") == 0 || strcmp(v, "1.3") == 0 ? NULL : "must be \"1.2\" or \"1.3\"";
	if (strcmp(name, "login") == 0)
		return check_login_format(v);
	if (strcmp(name, "helo_name") == 0)
		return check_helo_name(v);
	if (strcmp(name, "domains") == 0)
		return check_dns_name(v);
	if (strcmp(name, "protocol") == 0)
		return word_index(v, protocols, 2) >= 0 ? NULL : "must be imap or smtp";
	if (strcmp(name, "tls") == 0)
		return word_index(v, tls_modes, 3) >= 0 ? NULL : "must be implicit, starttls or none";
	if (strcmp(name, "channel_binding") == 0)
		return word_index(v, cb_modes, 4) >= 0 ? NULL
		       : "must be auto, tls-exporter, tls-unique or none";
	if (strcmp(name, "host") == 0)
		return check_host(v);
	if (strcmp(name, "verify_name") == 0)
		return v[0] == '\0' ? NULL : check_host(v);
	if (strcmp(name, "pin") == 0)
		return decode_pin(v, NULL) == 0 ? NULL : "must be \"sha256//\" and the base64 of 32 bytes";
	if (strcmp(name, "mechanisms") == 0)
		return ma_mech_from_name(v) >= 0 ? NULL : "unknown mechanism";
	if (strcmp(name, "clients") == 0)
		return check_client(v);
	if (strcmp(name, "state_dir") == 0)
		return check_state_dir(v);
	return NULL;   /* ca_file, ca_path: checked when used, at connect */
}

static const char *check_int(const char *name, long v)
{
	if (strcmp(name, "timeout") == 0 && (v < 1 || v > 300))
		return "must be 1 to 300 (seconds)";
	if (strcmp(name, "port") == 0 && (v < 1 || v > 65535))
		return "must be 1 to 65535";
	if (strcmp(name, "minimum_uid") == 0 && (long long)v > 4294967294LL)
		return "must be a uid (at most 4294967294)";
	/* The broker's keys (SPEC 10); the module in-process reads and ignores them. */
	if ((strcmp(name, "cache_ttl") == 0 || strcmp(name, "negative_ttl") == 0) &&
	    (v < 0 || v > 86400))
		return "must be 0 to 86400 (seconds; 0 = off)";
	if (strcmp(name, "max_failures") == 0 && (v < 0 || v > MA_MAX_FAILURES))
		return "must be 0 to 100 (0 = no throttle)";
	if (strcmp(name, "failure_window") == 0 && (v < 1 || v > 86400))
		return "must be 1 to 86400 (seconds)";
	if (strcmp(name, "offline_ttl") == 0 && (v < 0 || v > 31536000))
		return "must be 0 to 31536000 (seconds, a year; 0 = off)";
	if (strcmp(name, "max_connections") == 0 && (v < 0 || v > 1024))
		return "must be 0 to 1024 (0 = no limit)";
	return NULL;
}

/* libconfuse's own integers take 0x10 and 010 (octal); ours are decimal. */
static int parse_int(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	char *end = NULL;
	long v = 0;
	int rc = -1;

	if (value != NULL && value[0] >= '0' && value[0] <= '9') {
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno == 0 && *end == '\0') {
			*(long *)result = v;
			rc = 0;
		}
	}
	if (rc != 0)
		cfg_error(cfg, "%s = \"%s\": must be a decimal number", opt->name,
		          value != NULL ? value : "");
	return rc;
}

static unsigned *server_lines(struct parse_ctx *c, const cfg_t *sec, bool add)
{
	for (size_t i = 0; i < c->n_srv; i++)
		if (c->srv[i].sec == sec)
			return c->srv[i].line;
	if (!add || c->n_srv == MA_MAX_SERVERS)
		return NULL;
	c->srv[c->n_srv].sec = sec;
	return c->srv[c->n_srv++].line;
}

/* Validation callback of every option: runs after each value is stored
 * (and again at a list's closing brace), while cfg->line is its line. */
static int on_value(cfg_t *cfg, cfg_opt_t *opt)
{
	struct parse_ctx *c = tl_ctx;
	unsigned idx = UINT_MAX, n = cfg_opt_size(opt);
	unsigned *lines = NULL;
	const char *why = NULL, *v = NULL;
	long num = 0;

	for (unsigned i = 0; cfg->opts[i].name != NULL; i++)
		if (&cfg->opts[i] == opt)
			idx = i;
	/* A quoted key such as "server=a|host" reaches a section's option from
	 * outside, past that section's checks. */
	if (idx == UINT_MAX) {
		why = "must be set inside its section";
		cfg_error(cfg, "option '%s' %s", opt->name, why);
		goto out;
	}
	if (n == 0)
		goto out;
	if (c != NULL && idx < S_COUNT && strcmp(cfg->name, "server") == 0)
		lines = server_lines(c, cfg, true);
	/* The line of the assignment: a list's first value resets it. */
	if (lines != NULL && (lines[idx] == 0 || n == 1))
		lines[idx] = (unsigned)cfg->line;
	if (opt->type == CFGT_INT) {
		num = cfg_opt_getnint(opt, 0);
		why = check_int(opt->name, num);
		if (why != NULL)
			cfg_error(cfg, "%s = %ld: %s", opt->name, num, why);
	} else if (opt->type == CFGT_STR) {
		v = cfg_opt_getnstr(opt, n - 1);
		why = check_str(opt->name, v != NULL ? v : "");
		if (why == NULL && strcmp(opt->name, "pin") == 0 && n > MA_MAX_PINS)
			why = "too many pins";
		if (why != NULL)
			cfg_error(cfg, "%s = \"%s\": %s", opt->name, v != NULL ? v : "", why);
	}
out:
	return why != NULL ? -1 : 0;
}

static const char *getstr(cfg_t *sec, const char *name)
{
	const char *s = cfg_getstr(sec, name);
	return s != NULL ? s : "";
}

static void free_list(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static enum ma_err copy_list(cfg_t *sec, const char *name, char ***out, size_t *n)
{
	enum ma_err rc = MA_NOMEM;
	unsigned cnt = cfg_size(sec, name);

	*n = 0;
	*out = NULL;
	if (cnt > 0 && (*out = calloc(cnt, sizeof(**out))) == NULL)
		goto out;
	*n = cnt;     /* entries start NULL: free_list copes with a partial copy */
	for (unsigned i = 0; i < cnt; i++) {
		const char *s = cfg_getnstr(sec, name, i);
		if (((*out)[i] = strdup(s != NULL ? s : "")) == NULL)
			goto out;
	}
	rc = MA_OK;
out:
	return rc;
}

/* Effective CA setting: the server's, else the global one; "" = system. */
static enum ma_err dup_opt(const char *v, char **out)
{
	*out = v[0] != '\0' ? strdup(v) : NULL;
	return v[0] != '\0' && *out == NULL ? MA_NOMEM : MA_OK;
}

/*
 * A server's trust anchors: its own ca_file / ca_path when it sets either,
 * else the global pair.  Never a mix: an administrator who points one
 * server at a private CA means that CA, not that CA plus the global
 * directory.
 */
static enum ma_err dup_trust(cfg_t *sec, cfg_t *root, struct ma_server *s)
{
	cfg_t *from = getstr(sec, "ca_file")[0] != '\0' || getstr(sec, "ca_path")[0] != '\0'
	                    ? sec : root;
	if (dup_opt(getstr(from, "ca_file"), &s->ca_file) != MA_OK ||
	    dup_opt(getstr(from, "ca_path"), &s->ca_path) != MA_OK)
		return MA_NOMEM;
	return MA_OK;
}

/* tls = none is decided without DNS (loading the configuration must not
 * touch the network): only "localhost" and loopback literals (127.0.0.0/8,
 * ::1) qualify.  At connect time ma_net_connect(loopback_only) checks every
 * address "localhost" actually resolves to. */
static bool is_loopback_host(const char *h)
{
	return eq_nocase(h, "localhost") || ma_net_is_loopback_literal(h) == 1;
}

/* Where option IDX of a section was set, else the section's own line. */
static unsigned opt_line(const unsigned *lines, int idx, unsigned sline)
{
	return lines != NULL && lines[idx] != 0 ? lines[idx] : sline;
}

static enum ma_err get_server(struct parse_ctx *c, cfg_t *root, cfg_t *sec, size_t idx,
                              const struct ma_config *cfg, struct ma_server *s)
{
	enum ma_err rc = MA_CONFIG;
	const unsigned *lines = server_lines(c, sec, false);
	unsigned sline = idx < c->n_sec && idx <= MA_MAX_SERVERS ? c->sec_line[idx] : 0;
	const char *title = cfg_title(sec) != NULL ? cfg_title(sec) : "";
	const char *host = getstr(sec, "host"), *verify = getstr(sec, "verify_name");
	int proto = word_index(getstr(sec, "protocol"), protocols, 2);
	int tls = word_index(getstr(sec, "tls"), tls_modes, 3);
	int cb = word_index(getstr(sec, "channel_binding"), cb_modes, 4);
	unsigned n_mech = cfg_size(sec, "mechanisms"), n_pins = cfg_size(sec, "pin");
	long port = cfg_getint(sec, "port");

	s->config_line = sline;
	/* Names appear in logs and in struct ma_result.server[64]. */
	if (!word_ok(title, 63, "._-")) {
		cfail(c, sline, "server \"%s\": a name is 1 to 63 letters, digits, '.', '_' or '-'", title);
		goto out;
	}
	if (host[0] == '\0') {
		cfail(c, sline, "server %s: host is required", title);
		goto out;
	}
	if (proto < 0 || tls < 0 || cb < 0 || n_pins > MA_MAX_PINS) {  /* refused while reading */
		cfail(c, sline, "server %s: internal error", title);
		goto out;
	}
	s->protocol = (enum ma_protocol)proto;
	s->tls = (enum ma_tls_mode)tls;
	if (s->tls == MA_TLS_NONE && !is_loopback_host(host)) {
		cfail(c, opt_line(lines, S_TLS, sline), "server %s: tls = none is only allowed for "
		      "localhost or a loopback address (127.0.0.0/8, ::1), not \"%s\"", title, host);
		goto out;
	}
	if (s->tls == MA_TLS_NONE && n_pins > 0) {
		cfail(c, opt_line(lines, S_PIN, sline), "server %s: pin needs TLS, but tls = none", title);
		goto out;
	}
	/* A binding type names a TLS session; without TLS there is none to
	 * bind to, and asking for one is a contradiction worth a message.
	 * auto and none mean "no binding" there. */
	s->channel_binding = (enum ma_cb_mode)cb;
	if (s->tls == MA_TLS_NONE && (s->channel_binding == MA_CB_TLS_EXPORTER ||
	                              s->channel_binding == MA_CB_TLS_UNIQUE)) {
		cfail(c, opt_line(lines, S_CHANNEL_BINDING, sline), "server %s: channel_binding = "
		      "%s needs TLS, but tls = none", title, cb_modes[cb]);
		goto out;
	}
	if (s->tls == MA_TLS_NONE)
		s->channel_binding = MA_CB_NONE;
	/* Empty list: SPEC section 3's default.  IMAP-LOGIN is the IMAP LOGIN
	 * command, meaningless for SMTP: dropped from the default, refused when
	 * listed. */
	s->mechanisms = n_mech == 0 ? MA_MECH_DEFAULT_SET : 0;
	if (s->protocol == MA_PROTO_SMTP)
		s->mechanisms &= ~MA_MECH_BIT(MA_MECH_IMAP_LOGIN);
	for (unsigned i = 0; i < n_mech; i++) {
		int m = ma_mech_from_name(cfg_getnstr(sec, "mechanisms", i));
		if (m < 0 || (m == MA_MECH_IMAP_LOGIN && s->protocol == MA_PROTO_SMTP)) {
			cfail(c, opt_line(lines, S_MECHANISMS, sline), "server %s: IMAP-LOGIN is the "
			      "IMAP LOGIN command; it cannot be used with protocol = smtp", title);
			goto out;
		}
		s->mechanisms |= MA_MECH_BIT((unsigned)m);
	}
	/* Values were checked as they were read, so only an allocation can fail
	 * here, and a pin silently dropped would switch pinning off: fail. */
	for (unsigned i = 0; i < n_pins; i++) {
		const char *pin = cfg_getnstr(sec, "pin", i);
		if (decode_pin(pin != NULL ? pin : "", s->pins[i]) != 0) {
			rc = MA_NOMEM;
			goto out;
		}
		s->n_pins++;
	}
	s->max_connections = (unsigned)cfg_getint(sec, "max_connections");
	s->forward_client_ip = cfg_getbool(sec, "forward_client_ip") != cfg_false;
	s->port = port != 0 ? (unsigned)port
	        : s->protocol == MA_PROTO_IMAP ? (s->tls == MA_TLS_IMPLICIT ? 993u : 143u)
	                                       : (s->tls == MA_TLS_IMPLICIT ? 465u : 587u);
	rc = MA_NOMEM;
	if (copy_list(sec, "domains", &s->domains, &s->n_domains) != MA_OK)
		goto out;
	for (size_t i = 0; i < s->n_domains && cfg->n_domains > 0; i++) {
		bool found = false;
		for (size_t g = 0; g < cfg->n_domains && !found; g++)
			found = eq_nocase(s->domains[i], cfg->domains[g]);
		if (!found) {
			rc = cfail(c, opt_line(lines, S_DOMAINS, sline), "server %s: domain %s is "
			           "not in the global domains list", title, s->domains[i]);
			goto out;
		}
	}
	s->name = strdup(title);
	s->host = strdup(host);
	s->verify_name = strdup(verify[0] != '\0' ? verify : host);
	if (s->name == NULL || s->host == NULL || s->verify_name == NULL ||
	    dup_trust(sec, root, s) != MA_OK)
		goto out;
	rc = MA_OK;
out:
	return rc;
}

/* Copy everything out of libconfuse's tree (called with the lock held). */
static enum ma_err extract(struct parse_ctx *c, cfg_t *root, struct ma_config *cfg)
{
	enum ma_err rc = MA_NOMEM;
	unsigned n = cfg_size(root, "server");
	const char *helo = getstr(root, "helo_name");

	cfg->timeout_ms = (unsigned)cfg_getint(root, "timeout") * 1000u;
	cfg->tls_min_version = strcmp(getstr(root, "tls_min_version"), "1.3") == 0
	                       ? TLS1_3_VERSION : TLS1_2_VERSION;
	cfg->lowercase = cfg_getbool(root, "lowercase") != cfg_false;
	cfg->mechanism_fallback = cfg_getbool(root, "mechanism_fallback") != cfg_false;
	cfg->require_local_user = cfg_getbool(root, "require_local_user") != cfg_false;
	cfg->minimum_uid = (unsigned long)cfg_getint(root, "minimum_uid");
	cfg->cache_ttl = (unsigned)cfg_getint(root, "cache_ttl");
	cfg->negative_ttl = (unsigned)cfg_getint(root, "negative_ttl");
	cfg->max_failures = (unsigned)cfg_getint(root, "max_failures");
	cfg->failure_window = (unsigned)cfg_getint(root, "failure_window");
	cfg->offline_ttl = (unsigned)cfg_getint(root, "offline_ttl");
	cfg->state_dir = strdup(getstr(root, "state_dir"));
	if (cfg->state_dir == NULL ||
	    copy_list(root, "clients", &cfg->clients, &cfg->n_clients) != MA_OK)
		goto out;
	cfg->login_format = strdup(getstr(root, "login"));
	cfg->helo_name = helo[0] != '\0' ? strdup(helo) : NULL;
	if (cfg->login_format == NULL || (helo[0] != '\0' && cfg->helo_name == NULL) ||
	    copy_list(root, "domains", &cfg->domains, &cfg->n_domains) != MA_OK)
		goto out;
	if (n == 0) {
		rc = cfail(c, 0, "no server section: at least one is required");
		goto out;
	}
	if (n > MA_MAX_SERVERS) {
		rc = cfail(c, c->n_sec > MA_MAX_SERVERS ? c->sec_line[MA_MAX_SERVERS] : 0,
		           "too many server sections (at most %d)", MA_MAX_SERVERS);
		goto out;
	}
	cfg->servers = calloc(n, sizeof(*cfg->servers));
	if (cfg->servers == NULL)
		goto out;
	for (unsigned i = 0; i < n; i++) {
		cfg->n_servers = i + 1;     /* so that ma_config_free sees it */
		rc = get_server(c, root, cfg_getnsec(root, "server", i), i, cfg,
		                &cfg->servers[i]);
		if (rc != MA_OK)
			goto out;
	}
	rc = MA_OK;
out:
	return rc;
}

#define OPT_STR(n, d) { .name = (n), .type = CFGT_STR, .def.string = (d), .validcb = on_value }
#define OPT_LIST(n) { .name = (n), .type = CFGT_STR, .flags = CFGF_LIST, .validcb = on_value }
#define OPT_BOOL(n, d) { .name = (n), .type = CFGT_BOOL, .def.boolean = (d), .validcb = on_value }
#define OPT_INT(n, d) { .name = (n), .type = CFGT_INT, .def.number = (d), \
                        .parsecb = parse_int, .validcb = on_value }

static enum ma_err run_confuse(struct parse_ctx *c, const char *buf, struct ma_config *cfg)
{
	/* protocol defaults to imap (SPEC 5 shows it in every example).  The
	 * order must match S_PROTOCOL...S_DOMAINS.  port 0 = not given. */
	cfg_opt_t server_opts[] = {
		OPT_STR("protocol", "imap"), OPT_STR("host", ""), OPT_INT("port", 0),
		OPT_STR("tls", "implicit"), OPT_STR("verify_name", ""),
		OPT_STR("ca_file", ""), OPT_STR("ca_path", ""),
		OPT_LIST("pin"), OPT_LIST("mechanisms"), OPT_LIST("domains"),
		OPT_INT("max_connections", 8), OPT_BOOL("forward_client_ip", cfg_false),
		OPT_STR("channel_binding", "auto"),
		CFG_END()
	};
	cfg_opt_t opts[] = {
		OPT_INT("timeout", 10), OPT_STR("ca_file", ""), OPT_STR("ca_path", ""),
		OPT_STR("tls_min_version", "1.2"), OPT_STR("login", "%u"),
		OPT_BOOL("lowercase", cfg_false), OPT_STR("helo_name", ""),
		OPT_LIST("domains"), OPT_BOOL("mechanism_fallback", cfg_true),
		OPT_INT("minimum_uid", 1000), OPT_BOOL("require_local_user", cfg_false),
		OPT_INT("cache_ttl", 0), OPT_INT("negative_ttl", 300),
		OPT_INT("max_failures", 10), OPT_INT("failure_window", 300),
		OPT_INT("offline_ttl", 0), OPT_STR("state_dir", MA_STATE_DIR_DEFAULT),
		OPT_LIST("clients"),
		CFG_SEC("server", server_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
		CFG_END()
	};
	enum ma_err rc = MA_CONFIG;
	cfg_t *root = NULL;
	int prc;

	pthread_once(&atfork_once, atfork_register);
	pthread_mutex_lock(&confuse_lock);
	tl_ctx = c;
	root = cfg_init(opts, CFGF_NONE);
	if (root == NULL) {
		rc = MA_NOMEM;
		goto out;
	}
	cfg_set_error_function(root, on_error);
	prc = cfg_parse_buf(root, buf);
	if (prc != CFG_SUCCESS) {
		/* A few failures (out of memory, some lexer errors) come without
		 * a message: name the deepest line libconfuse reached. */
		unsigned line = (unsigned)root->line, ns = cfg_size(root, "server");
		cfg_t *last = ns > 0 ? cfg_getnsec(root, "server", ns - 1) : NULL;
		if (last != NULL && (unsigned)last->line > line)
			line = (unsigned)last->line;
		rc = cfail(c, line < c->n_lines ? line : c->n_lines, "syntax error");
		goto out;
	}
	rc = extract(c, root, cfg);
out:
	if (root != NULL)
		cfg_free(root);       /* also resets the lexer's global state */
	tl_ctx = NULL;
	pthread_mutex_unlock(&confuse_lock);
	return rc;
}

enum ma_err ma_config_parse(const char *text, size_t len, const char *name,
                            struct ma_config **out, char *err, size_t errlen)
{
	enum ma_err rc = MA_CONFIG;
	struct parse_ctx *c = NULL;
	struct ma_config *cfg = NULL;
	char *buf = NULL;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (name == NULL)
		name = "(configuration)";
	if (out != NULL)
		*out = NULL;
	if (out == NULL || (text == NULL && len > 0)) {
		fail(err, errlen, name, 0, "nothing to parse");
		goto out;
	}
	if (len > MA_CONFIG_MAX_SIZE) {
		fail(err, errlen, name, 0, "larger than %d bytes", MA_CONFIG_MAX_SIZE);
		goto out;
	}
	rc = MA_NOMEM;
	c = calloc(1, sizeof(*c));
	cfg = calloc(1, sizeof(*cfg));
	buf = malloc(len + 1);
	if (c == NULL || cfg == NULL || buf == NULL || (cfg->path = strdup(name)) == NULL)
		goto out;
	c->name = name;
	c->err = err;
	c->errlen = errlen;
	rc = prescan(c, text, len, buf);
	if (rc == MA_OK)
		rc = run_confuse(c, buf, cfg);
	if (rc == MA_OK) {
		*out = cfg;
		cfg = NULL;
	}
out:
	if (rc == MA_NOMEM && (c == NULL || !c->have_err))
		fail(err, errlen, name, 0, "out of memory");
	free(c);
	free(buf);
	ma_config_free(&cfg);
	return rc;
}

enum ma_err ma_config_load(const char *path, struct ma_config **out,
                           char *err, size_t errlen)
{
	enum ma_err rc = MA_CONFIG;
	struct stat st;
	char *buf = NULL, ebuf[128];
	size_t len = 0;
	ssize_t r = 0;
	int fd = -1;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (out != NULL)
		*out = NULL;
	if (path == NULL || out == NULL) {
		fail(err, errlen, "(configuration)", 0, "no file name");
		goto out;
	}
	/* O_NOFOLLOW: the checks below must be about the file itself, not
	 * about a link someone may have planted.  O_NONBLOCK: opening a FIFO
	 * must not hang a login (fstat then refuses it). */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	/* Whoever can write this file chooses where passwords are sent. */
	if (fd < 0 && errno == ELOOP)
		fail(err, errlen, path, 0, "is a symbolic link (refused)");
	else if (fd < 0)
		fail(err, errlen, path, 0, "cannot open: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
	else if (fstat(fd, &st) != 0)
		fail(err, errlen, path, 0, "cannot stat: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
	else if (!S_ISREG(st.st_mode))
		fail(err, errlen, path, 0, "not a regular file");
	else if (st.st_uid != 0 && st.st_uid != geteuid() && geteuid() == 0)
		fail(err, errlen, path, 0, "owned by uid %lu, not by root", (unsigned long)st.st_uid);
	else if (st.st_uid != 0 && st.st_uid != geteuid())
		fail(err, errlen, path, 0, "owned by uid %lu, neither by root nor by this process's "
		     "user (uid %lu)", (unsigned long)st.st_uid, (unsigned long)geteuid());
	else if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		fail(err, errlen, path, 0, "is group- or world-writable (mode %04o)",
		     (unsigned)(st.st_mode & 07777));
	else if (st.st_size > MA_CONFIG_MAX_SIZE)
		fail(err, errlen, path, 0, "larger than %d bytes", MA_CONFIG_MAX_SIZE);
	else if ((buf = malloc(MA_CONFIG_MAX_SIZE + 1)) == NULL)
		rc = MA_NOMEM;
	if (buf == NULL)
		goto out;
	/* Read to EOF, bounded: the file may have grown since fstat. */
	while (len <= MA_CONFIG_MAX_SIZE) {
		r = read(fd, buf + len, MA_CONFIG_MAX_SIZE + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	if (r < 0)
		fail(err, errlen, path, 0, "read error: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
	else if (len > MA_CONFIG_MAX_SIZE)
		fail(err, errlen, path, 0, "larger than %d bytes", MA_CONFIG_MAX_SIZE);
	else
		rc = ma_config_parse(buf, len, path, out, err, errlen);
out:
	if (rc == MA_NOMEM && err != NULL && errlen > 0 && err[0] == '\0')
		fail(err, errlen, path != NULL ? path : "(configuration)", 0, "out of memory");
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

void ma_config_free(struct ma_config **cfg)
{
	struct ma_config *c;

	if (cfg == NULL || *cfg == NULL)
		return;
	c = *cfg;
	for (size_t i = 0; i < c->n_servers; i++) {
		struct ma_server *s = &c->servers[i];
		free(s->name);
		free(s->host);
		free(s->verify_name);
		free(s->ca_file);
		free(s->ca_path);
		free_list(s->domains, s->n_domains);
	}
	free(c->servers);
	free(c->path);
	free(c->login_format);
	free(c->helo_name);
	free_list(c->domains, c->n_domains);
	free(c->state_dir);
	free_list(c->clients, c->n_clients);
	free(c);
	*cfg = NULL;
}

char *ma_config_login_name(const struct ma_config *cfg, const char *user)
{
	char buf[256];
	size_t n = 0;
	char *res = NULL;
	const char *at, *dom;
	size_t ulen, llen;

	if (cfg == NULL || user == NULL || cfg->login_format == NULL)
		goto out;
	at = strrchr(user, '@');
	ulen = strlen(user);
	llen = at != NULL ? (size_t)(at - user) : ulen;
	dom = at != NULL ? at + 1 : "";
	for (const char *f = cfg->login_format; *f != '\0'; f++) {
		const char *piece = f;
		size_t plen = 1;
		if (*f == '%') {
			f++;
			if (*f == 'u' || *f == 'l') {
				piece = user;
				plen = *f == 'u' ? ulen : llen;
			} else if (*f == 'd') {
				piece = dom;
				plen = strlen(dom);
			} else if (*f != '%') {
				goto out;     /* refused at load; never continue past NUL */
			}
		}
		if (plen > sizeof(buf) - 1 - n)
			goto out;
		memcpy(buf + n, piece, plen);
		n += plen;
	}
	buf[n] = '\0';
	for (size_t i = 0; cfg->lowercase && i < n; i++)
		buf[i] = lower(buf[i]);
	res = strdup(buf);
out:
	return res;
}

const char *ma_login_domain(const char *login)
{
	const char *at = login != NULL ? strrchr(login, '@') : NULL;
	return at != NULL ? at + 1 : "";
}

static bool domain_listed(char *const *list, size_t n, const char *domain)
{
	for (size_t i = 0; i < n; i++)
		if (eq_nocase(list[i], domain))     /* ASCII: no locale decides */
			return true;
	return false;
}

bool ma_config_serves(const struct ma_config *cfg, const struct ma_server *srv,
                      const char *login)
{
	const char *domain = ma_login_domain(login);
	if (cfg->n_domains > 0 && !domain_listed(cfg->domains, cfg->n_domains, domain))
		return false;
	return srv->n_domains == 0 || domain_listed(srv->domains, srv->n_domains, domain);
}
