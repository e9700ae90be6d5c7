/*
 * mailauth.c - the command-line tool (SPEC 8) on the same library as the
 * module: check a configuration, probe servers, or log in exactly as the
 * module would.
 *
 * Exit status: 0 success, 1 rejected, 2 unavailable (network, TLS,
 * protocol, no mechanism), 3 user unknown / refused before connecting,
 * 4 configuration error, 5 refused by the server's policy (lib/codes.c:
 * the password may be right, an administrator must act), 64 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <termios.h>
#include <unistd.h>

#include "broker.h"
#include "codes.h"
#include "config.h"
#include "libmailauth.h"
#include "porthint.h"
#include "secret.h"
#include "wire.h"

enum {
	EXIT_OK = 0, EXIT_REJECTED = 1, EXIT_UNAVAILABLE = 2, EXIT_UNKNOWN = 3,
	EXIT_CONFIG = 4, EXIT_POLICY = 5, EXIT_USAGE = 64,
};

#define PASSWORD_BUF 4096

static int usage(void)
{
	fprintf(stderr,
	        "usage: mailauth check [-d] [-c FILE] [-u USER]\n"
	        "       mailauth probe [-d] [-c FILE] [SERVER]\n"
	        "       mailauth login [-d] [-c FILE] USER\n"
	        "       mailauth login -b [SOCKET] USER     (through mailauthd; default %s)\n"
	        "Password for login: from the terminal (no echo) or one line of stdin.\n"
	        "Exit: 0 ok, 1 rejected, 2 unavailable, 3 unknown user, 4 config error,\n"
	        "      5 refused by the server's policy.\n",
	        MA_BROKER_SOCKET_DEFAULT);
	return EXIT_USAGE;
}

static int exit_code(enum ma_err err)
{
	switch (err) {
	case MA_OK: return EXIT_OK;
	case MA_AUTH_FAILED: return EXIT_REJECTED;
	case MA_BAD_INPUT: return EXIT_REJECTED;
	case MA_USER_UNKNOWN: return EXIT_UNKNOWN;
	case MA_CONFIG: return EXIT_CONFIG;
	case MA_POLICY: return EXIT_POLICY;
	case MA_UNAVAILABLE: case MA_TLS: case MA_PROTOCOL: case MA_TIMEOUT:
	case MA_NO_MECH: case MA_NOMEM: case MA_INTERNAL:
		return EXIT_UNAVAILABLE;
	}
	return EXIT_UNAVAILABLE;
}

static void emit_stderr(void *arg, int priority, const char *line)
{
	(void)arg;
	fprintf(stderr, "%s: %s\n", priority == LOG_DEBUG ? "debug" : "log", line);
}

static void print_stdout(void *arg, const char *line)
{
	(void)arg;
	printf("%s\n", line);
}

static const char *tls_name(enum ma_tls_mode t)
{
	return t == MA_TLS_IMPLICIT ? "implicit" : t == MA_TLS_STARTTLS ? "starttls" : "none";
}

static void print_domains(const char *head, char *const *list, size_t n)
{
	printf("%s", head);
	for (size_t i = 0; i < n; i++)
		printf(" %s", list[i]);
	printf("%s\n", n == 0 ? " (all)" : "");
}

static void print_server(const struct ma_server *s)
{
	printf("server %s\n  protocol = %s\n  host = %s\n  port = %u\n  tls = %s\n"
	       "  verify_name = %s\n  ca_file = %s\n  ca_path = %s\n  pins = %zu\n",
	       s->name, s->protocol == MA_PROTO_IMAP ? "imap" : "smtp", s->host, s->port,
	       tls_name(s->tls), s->verify_name, s->ca_file ? s->ca_file : "(system)",
	       s->ca_path ? s->ca_path : "(system)", s->n_pins);
	printf("  max_connections = %u%s\n  forward_client_ip = %s\n", s->max_connections,
	       s->max_connections == 0 ? " (no limit)" : "", s->forward_client_ip ? "yes" : "no");
	static const char *const cb_effect[] = {
		[MA_CB_AUTO] = " (tls-exporter on TLS 1.3, tls-unique on TLS 1.2)",
		[MA_CB_TLS_EXPORTER] = " (TLS 1.3; TLS 1.2 with extended master secret)",
		[MA_CB_TLS_UNIQUE] = " (TLS 1.3 and 1.2, as Cyrus SASL binds)",
		[MA_CB_NONE] = " (no -PLUS mechanisms)",
	};
	printf("  channel_binding = %s%s\n", ma_cb_mode_name(s->channel_binding),
	       s->tls == MA_TLS_NONE ? " (tls = none)" : cb_effect[s->channel_binding]);
	printf("  mechanisms =");
	for (int m = 0; m < MA_MECH_COUNT; m++)
		if (s->mechanisms & MA_MECH_BIT(m))
			printf(" %s", ma_mech_name((enum ma_mech)m));
	printf("\n");
	print_domains("  domains =", s->domains, s->n_domains);
}

/* tls/port pairs that contradict the well-known ports (RFC 8314): a
 * warning, not an error (a server may well listen elsewhere than usual). */
static void warn_ports(const struct ma_config *cfg)
{
	for (size_t i = 0; i < cfg->n_servers; i++) {
		const struct ma_server *s = &cfg->servers[i];
		const char *w = ma_porthint_check(s->port, tls_name(s->tls));
		if (w != NULL)
			printf("warning: server %s: tls = %s on port %u: %s\n", s->name,
			       tls_name(s->tls), s->port, w);
	}
}

static int cmd_check(const struct ma_config *cfg, const char *user)
{
	printf("configuration %s: ok\n", cfg->path);
	printf("timeout = %u s\ntls_min_version = %s\nlogin = %s\nlowercase = %s\n"
	       "minimum_uid = %lu\nrequire_local_user = %s\nmechanism_fallback = %s\n",
	       cfg->timeout_ms / 1000, cfg->tls_min_version >= 0x0304 ? "1.3" : "1.2",
	       cfg->login_format, cfg->lowercase ? "yes" : "no", cfg->minimum_uid,
	       cfg->require_local_user ? "yes" : "no", cfg->mechanism_fallback ? "yes" : "no");
	printf("helo_name = %s\n", cfg->helo_name != NULL ? cfg->helo_name : "(this host's name)");
	printf("broker: cache_ttl = %u s\nbroker: negative_ttl = %u s\nbroker: max_failures = %u "
	       "per failure_window = %u s\nbroker: offline_ttl = %u s\nbroker: state_dir = %s\n",
	       cfg->cache_ttl, cfg->negative_ttl, cfg->max_failures, cfg->failure_window,
	       cfg->offline_ttl, cfg->state_dir);
	printf("broker: clients =");
	for (size_t i = 0; i < cfg->n_clients; i++)
		printf(" %s", cfg->clients[i]);
	printf("%s\n", cfg->n_clients == 0 ? " (root only)" : "");
	print_domains("domains =", cfg->domains, cfg->n_domains);
	if (user == NULL) {
		for (size_t i = 0; i < cfg->n_servers; i++)
			print_server(&cfg->servers[i]);
		warn_ports(cfg);
		return EXIT_OK;
	}
	warn_ports(cfg);
	char why[256] = "";
	enum ma_err err = ma_check_user(cfg, user, why, sizeof(why));
	if (err != MA_OK) {
		printf("user %s: not accepted: %s\n", user, why);
		return exit_code(err);
	}
	char *login = ma_config_login_name(cfg, user);
	printf("user %s: login name %s\n", user, login != NULL ? login : "?");
	for (size_t i = 0; login != NULL && i < cfg->n_servers; i++) {
		const struct ma_server *s = &cfg->servers[i];
		if (ma_config_serves(cfg, s, login))
			printf("  tries server %s (%s:%u)\n", s->name, s->host, s->port);
	}
	free(login);
	return EXIT_OK;
}

/* What the server's refusal meant and what to do (lib/codes.c), and its
 * [ALERT] text (already escaped). */
static void print_reply(const char *alert, const char *meaning, const char *remedy)
{
	if (alert != NULL && alert[0] != '\0')
		printf("server alert: %s\n", alert);
	if (meaning != NULL)
		printf("meaning: %s\n", meaning);
	if (remedy != NULL)
		printf("remedy: %s\n", remedy);
}

/* The table row whose meaning is MEANING, or NULL. */
static const struct ma_code_row *row_of_meaning(const char *meaning)
{
	size_t n;
	const struct ma_code_row *t = ma_codes_table(&n);
	for (size_t i = 0; meaning[0] != '\0' && i < n; i++)
		if (strcmp(t[i].meaning, meaning) == 0)
			return &t[i];
	return NULL;
}

/*
 * Read the password: no echo on a terminal, else one line from stdin.
 * With read(2) one byte at a time, straight into BUF: stdio would keep a
 * copy in stdin's buffer (a heap block this program never wipes), and
 * reading more than one line from a pipe would take bytes that are not
 * ours.  A password is a few dozen bytes; the syscalls do not matter.
 */
static int read_password(char *buf, size_t len)
{
	int rc = -1;
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	size_t n = 0;
	bool line_end = false;

	if (tty) {
		fprintf(stderr, "Password: ");
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	while (n + 1 < len) {
		ssize_t r = read(STDIN_FILENO, buf + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (buf[n] == '\n') {
			line_end = true;
			break;
		}
		n++;
	}
	if (n + 1 >= len && !line_end) {
		/* Longer than the buffer: refused, not cut (a cut password
		 * could be someone's shorter one). */
		ma_wipe(buf, len);
		n = 0;
		fprintf(stderr, "mailauth: password longer than %zu bytes\n", len - 2);
	} else if (n > 0 || line_end) {
		if (n > 0 && buf[n - 1] == '\r')
			n--;
		rc = 0;
	}
	buf[n] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	return rc;
}

static int cmd_login(const struct ma_config *cfg, const char *user, const struct ma_log *log)
{
	char *password = calloc(1, PASSWORD_BUF);
	struct ma_result res;
	int rc = EXIT_UNAVAILABLE;

	if (password == NULL)
		return rc;
	if (read_password(password, PASSWORD_BUF) != 0) {
		fprintf(stderr, "mailauth: no password given\n");
		rc = EXIT_USAGE;
		goto out;
	}
	enum ma_err err = ma_authenticate(cfg, user, password, log, &res);
	printf("%s: %s (server %s, %s, %s, %ld ms)%s%s\n",
	       err == MA_OK ? "accepted" : err == MA_AUTH_FAILED ? "rejected" : "failed",
	       ma_err_name(err), res.server[0] ? res.server : "-", res.tls_version,
	       res.mechanism[0] ? res.mechanism : "-", res.duration_ms,
	       res.detail[0] && err != MA_OK ? ": " : "", err != MA_OK ? res.detail : "");
	print_reply(res.alert, res.meaning, res.remedy);
	rc = exit_code(err);
out:
	ma_freezero(password, PASSWORD_BUF);
	return rc;
}

/* `mailauth login -b`: the same question to mailauthd, which answers as
 * the module in broker mode would be answered.  No configuration is read. */
static int cmd_login_broker(const char *socket_path, const char *user)
{
	struct ma_wire_request *req = calloc(1, sizeof(*req));
	char *password = calloc(1, PASSWORD_BUF);
	struct ma_wire_response resp;
	char why[256] = "";
	int rc = EXIT_UNAVAILABLE;

	if (req == NULL || password == NULL)
		goto out;
	if (read_password(password, PASSWORD_BUF) != 0) {
		fprintf(stderr, "mailauth: no password given\n");
		rc = EXIT_USAGE;
		goto out;
	}
	enum ma_err err = ma_check_input(user, password, why, sizeof(why));
	if (err != MA_OK) {
		printf("rejected: %s (not sent): %s\n", ma_err_name(err), why);
		rc = exit_code(err);
		goto out;
	}
	req->type = MA_WIRE_AUTH;
	snprintf(req->user, sizeof(req->user), "%s", user);
	snprintf(req->password, sizeof(req->password), "%s", password);
	snprintf(req->service, sizeof(req->service), "mailauth");
	err = ma_broker_call(socket_path, req, 330 * 1000, &resp, why, sizeof(why));
	if (err != MA_OK) {
		printf("failed: unavailable: %s\n", why);
		goto out;
	}
	printf("%s: %s (server %s, %s, %s, source %s)%s%s\n",
	       resp.err == MA_OK ? "accepted" : resp.err == MA_AUTH_FAILED ? "rejected" : "failed",
	       ma_err_name(resp.err), resp.server[0] ? resp.server : "-",
	       resp.tls_version[0] ? resp.tls_version : "-",
	       resp.mechanism[0] ? resp.mechanism : "-", ma_wire_source_name(resp.source),
	       resp.detail[0] && resp.err != MA_OK ? ": " : "",
	       resp.err != MA_OK ? resp.detail : "");
	/* The broker sends the alert or a policy refusal's meaning; the
	 * remedy of the row with that meaning is in this binary's table too
	 * (the broker's log has the whole line). */
	const struct ma_code_row *row = resp.err == MA_POLICY ? row_of_meaning(resp.message) : NULL;
	bool alert = row == NULL;
	if (row == NULL && resp.err == MA_POLICY) {
		/* The message is the server's [ALERT]: the table knows the
		 * providers' alerts (Google's) by their text. */
		row = ma_codes_imap(false, "ALERT", 5, resp.message, strlen(resp.message), true);
		if (row != NULL && row->cls != MA_CODE_POLICY)
			row = NULL;
	}
	print_reply(alert ? resp.message : "", row != NULL ? row->meaning : NULL,
	            row != NULL ? row->remedy : NULL);
	rc = exit_code(resp.err);
out:
	if (req != NULL)
		ma_freezero(req, sizeof(*req));
	if (password != NULL)
		ma_freezero(password, PASSWORD_BUF);
	return rc;
}

int main(int argc, char **argv)
{
	static const char default_path[] = MA_CONFIG_DEFAULT_PATH;
	const char *path = default_path;
	const char *user = NULL;
	struct ma_config *cfg = NULL;
	struct ma_log log = { .emit = emit_stderr, .arg = NULL, .debug = false };
	int rc = EXIT_USAGE;

	if (argc < 2)
		return usage();
	const char *cmd = argv[1];
	int opt;
	const char *broker = NULL;
	optind = 2;
	while ((opt = getopt(argc, argv, "c:u:dhb")) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'u': user = optarg; break;
		case 'd': log.debug = true; break;
		case 'b':
			/* -b [SOCKET]: a following absolute path that is not the
			 * last argument (the user) is the socket. */
			broker = MA_BROKER_SOCKET_DEFAULT;
			if (optind < argc - 1 && argv[optind][0] == '/')
				broker = argv[optind++];
			break;
		default: return usage();
		}
	}
	if (broker != NULL) {
		/* The broker has the configuration and its own log: -c and -d
		 * would be silently ignored, so they are refused. */
		if (strcmp(cmd, "login") != 0 || optind != argc - 1 || user != NULL ||
		    path != default_path || log.debug)
			return usage();
		return cmd_login_broker(broker, argv[optind]);
	}
	char err[512] = "";
	if (ma_config_load(path, &cfg, err, sizeof(err)) != MA_OK) {
		fprintf(stderr, "mailauth: %s\n", err[0] ? err : path);
		return EXIT_CONFIG;
	}
	if (strcmp(cmd, "check") == 0 && optind == argc) {
		rc = cmd_check(cfg, user);
	} else if (strcmp(cmd, "probe") == 0 && optind >= argc - 1 && user == NULL) {
		enum ma_err e = ma_probe(cfg, optind < argc ? argv[optind] : NULL, &log,
		                         print_stdout, NULL);
		rc = exit_code(e);
	} else if (strcmp(cmd, "login") == 0 && optind == argc - 1 && user == NULL) {
		rc = cmd_login(cfg, argv[optind], &log);
	} else {
		rc = usage();
	}
	ma_config_free(&cfg);
	return rc;
}
