/*
 * auth.c - the driver behind ma_authenticate(): input checks, local account
 * policy, routing, then each routed server in order while it is unavailable
 * (SPEC 5: a rejection never moves on), one deadline for all of it.
 */
#include <errno.h>
#include <stdarg.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/ssl.h>

#include "codes.h"
#include "config.h"
#include "log.h"
#include "libmailauth.h"
#include "net.h"
#include "porthint.h"
#include "secret.h"
#include "session.h"
#include "stream.h"

/* What OpenSSH's sshd hands PAM instead of the typed password for a user
 * that does not exist (or root without PermitRootLogin), so that timing
 * does not reveal it: auth-pam.c fake_password() repeats this junk to the
 * length of the typed password.  Never worth a connection. */
static const char openssh_junk[] = "\b\n\r\177INCORRECT";

static bool is_openssh_placeholder(const char *password)
{
	size_t n = sizeof(openssh_junk) - 1;
	size_t i = 0;
	for (; password[i] != '\0'; i++)
		if (password[i] != openssh_junk[i % n])
			return false;
	return i > 0;
}

/* max_connections: a slot obtained with less time than this left is given
 * back unused (see ma_authenticate_opts). */
#define MIN_CONNECT_MS 100

/* Longest password sent to a server; PAM_MAX_RESP_SIZE is 512. */
#define MA_PASSWORD_MAX 1024
#define MA_USER_MAX 255

enum ma_err ma_check_input(const char *user, const char *password, char *why, size_t whylen)
{
	if (user == NULL || user[0] == '\0' || strlen(user) > MA_USER_MAX) {
		snprintf(why, whylen, "empty or over-long user name");
		return MA_BAD_INPUT;
	}
	/* SPEC 3: CR, LF (and NUL, which cannot occur in a C string) in a user
	 * name are rejected before connecting: they would split a command. */
	if (strpbrk(user, "\r\n") != NULL) {
		snprintf(why, whylen, "control characters in the user name");
		return MA_BAD_INPUT;
	}
	if (password == NULL || password[0] == '\0') {
		snprintf(why, whylen, "empty password");
		return MA_BAD_INPUT;
	}
	if (strlen(password) > MA_PASSWORD_MAX) {
		snprintf(why, whylen, "password longer than %d bytes", MA_PASSWORD_MAX);
		return MA_BAD_INPUT;
	}
	if (is_openssh_placeholder(password)) {
		snprintf(why, whylen, "OpenSSH placeholder password (invalid user)");
		return MA_BAD_INPUT;
	}
	return MA_OK;
}

enum ma_err ma_check_user(const struct ma_config *cfg, const char *user,
                          char *why, size_t whylen)
{
	enum ma_err rc = MA_USER_UNKNOWN;
	char *login = NULL;
	struct passwd pw, *found = NULL;
	char buf[4096];

	if (user == NULL || user[0] == '\0' || strlen(user) > MA_USER_MAX ||
	    strpbrk(user, "\r\n") != NULL) {
		snprintf(why, whylen, "invalid user name");
		return MA_BAD_INPUT;
	}
	int err = getpwnam_r(user, &pw, buf, sizeof(buf), &found);
	if (err != 0 && err != ENOENT && err != ESRCH) {
		/* Cannot tell whether this is root: fail closed. */
		snprintf(why, whylen, "cannot look up local account: %s", strerror(err));
		goto out;
	}
	if (found != NULL && (unsigned long)found->pw_uid < cfg->minimum_uid) {
		snprintf(why, whylen, "local uid %lu is below minimum_uid %lu",
		         (unsigned long)found->pw_uid, cfg->minimum_uid);
		goto out;
	}
	if (found == NULL && cfg->require_local_user) {
		snprintf(why, whylen, "no local account and require_local_user is set");
		goto out;
	}
	login = ma_config_login_name(cfg, user);
	if (login == NULL) {
		snprintf(why, whylen, "cannot build the login name");
		goto out;
	}
	for (size_t i = 0; i < cfg->n_servers; i++) {
		if (ma_config_serves(cfg, &cfg->servers[i], login)) {
			rc = MA_OK;
			goto out;
		}
	}
	snprintf(why, whylen, "no server serves the domain of this user");
out:
	ma_wipe(buf, sizeof(buf));
	free(login);
	return rc;
}

static void set_text(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src != NULL ? src : "");
}

static void fill_tls_params(const struct ma_config *cfg, const struct ma_server *srv,
                            struct ma_tls_params *p)
{
	p->verify_name = srv->verify_name;
	p->ca_file = srv->ca_file;
	p->ca_path = srv->ca_path;
	p->min_version = cfg->tls_min_version;
	p->pins = (const unsigned char (*)[32])srv->pins;
	p->n_pins = srv->n_pins;
	p->port = srv->port;
}

/*
 * A connection that was to start in plaintext (tls = starttls / none) and
 * failed before any TLS: if what the server sent first was a TLS record,
 * or it sent nothing at all until the wait ended, the port is most likely
 * an implicit-TLS one.  Replace the reason with one that says so
 * (porthint.h).  ELAPSED: how long the attempt waited.
 */
static void explain_plain_failure(struct ma_session *s, enum ma_err rc, long elapsed_ms)
{
	unsigned char first[MA_PORTHINT_BYTES];
	bool handshake = false;
	if (s->stream == NULL || s->srv->tls == MA_TLS_IMPLICIT || rc == MA_OK)
		return;
	size_t n = ma_stream_peek(s->stream, first, sizeof(first), &handshake);
	if (handshake)
		return;
	enum ma_first_bytes kind = ma_porthint_classify(first, n);
	if (kind == MA_FIRST_TLS)
		ma_porthint_tls_on_plain(s->why, sizeof(s->why), s->srv->port, first, n);
	else if (kind == MA_FIRST_NOTHING && rc == MA_TIMEOUT)
		ma_porthint_no_greeting(s->why, sizeof(s->why), s->srv->port, elapsed_ms);
}

/*
 * What the server's answer to the login meant (lib/codes.c) and its
 * [ALERT], for the caller: the meaning and remedy only for a failure that
 * a classified reply decided (a refusal before a later success, or before
 * a transport error, tells nothing about the result); the alert whatever
 * the result (RFC 9051 7.1: it "MUST be presented to the user").
 */
static void record_reply(struct ma_result *res, const struct ma_session *s, enum ma_err rc)
{
	const struct ma_code_row *row = s->code_row;
	bool decided = row != NULL && rc != MA_OK &&
	               (rc == MA_AUTH_FAILED || rc == MA_POLICY || rc == MA_UNAVAILABLE ||
	                rc == MA_NO_MECH);
	res->meaning = decided ? row->meaning : NULL;
	res->remedy = decided ? row->remedy : NULL;
	res->code_id = decided ? row->id : NULL;
	set_text(res->alert, sizeof(res->alert), s->alert);
}

/* The log line's tail for RES: meaning="..." remedy="..." alert="...".
 * The table's strings hold no '"' or control character (test_codes
 * checks it); the alert is escaped, and '"' in it is shown as \x22. */
static const char *reply_fields(const struct ma_result *res, char *buf, size_t len)
{
	char alert[4 * MA_ALERT_MAX + 4];
	size_t o = 0;
	buf[0] = '\0';
	if (res->meaning != NULL)
		(void)snprintf(buf, len, " code=%s meaning=\"%s\" remedy=\"%s\"", res->code_id,
		               res->meaning, res->remedy);
	o = strlen(buf);
	if (res->alert[0] != '\0' && o < len) {
		size_t a = 0;
		for (const char *p = res->alert; *p != '\0' && a + 5 < sizeof(alert); p++) {
			if (*p == '"') {
				memcpy(alert + a, "\\x22", 4);
				a += 4;
			} else {
				alert[a++] = *p;
			}
		}
		alert[a] = '\0';
		(void)snprintf(buf + o, len - o, " alert=\"%s\"", alert);
	}
	return buf;
}

/* Connect, start TLS for implicit mode, and run the protocol on one server. */
static enum ma_err one_server(struct ma_session *s)
{
	enum ma_err rc = MA_INTERNAL;
	const struct ma_server *srv = s->srv;

	fill_tls_params(s->cfg, srv, &s->tls);
	int fd = ma_net_connect(srv->host, srv->port, srv->tls == MA_TLS_NONE, s->dl,
	                        &rc, s->why, sizeof(s->why));
	if (fd < 0)
		return rc;
	rc = ma_stream_new(fd, s->dl, s->log, &s->stream);
	if (rc != MA_OK)
		return rc;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (srv->tls == MA_TLS_IMPLICIT) {
		rc = ma_stream_start_tls(s->stream, &s->tls, s->why, sizeof(s->why));
		if (rc != MA_OK)
			goto out;
	} else if (ma_porthint_implicit_port(srv->port)) {
		/* RFC 8314: 993 and 465 are implicit TLS, whose servers wait for
		 * our ClientHello in silence.  A plaintext greeting comes at once,
		 * so do not wait the whole timeout for one that will not come. */
		rc = ma_stream_await_data(s->stream, MA_PORTHINT_GREETING_MS);
		if (rc != MA_OK)
			goto out;
	}
	rc = srv->protocol == MA_PROTO_IMAP ? ma_imap_session(s) : ma_smtp_session(s);
	/* Fail closed: only a protocol session that ended on TLS (or on the
	 * loopback-only tls = none) may report success. */
	if (rc == MA_OK && !s->probe && srv->tls != MA_TLS_NONE &&
	    ma_stream_tls(s->stream) == NULL)
		rc = MA_INTERNAL;
out:
	explain_plain_failure(s, rc, ma_elapsed_ms(&t0));
	if (s->stream != NULL && ma_stream_tls(s->stream) != NULL) {
		struct ma_tls *tls = ma_stream_tls(s->stream);
		set_text(s->tls_version, sizeof(s->tls_version), ma_tls_version(tls));
		set_text(s->tls_cipher, sizeof(s->tls_cipher), ma_tls_cipher(tls));
		if (s->probe)
			ma_tls_describe_peer(tls, s->peer, sizeof(s->peer));
	}
	ma_stream_close(&s->stream);
	return rc;
}


/* The client's address for forward_client_ip: RHOST when it is an IPv4 or
 * IPv6 literal, printed again by inet_ntop (so nothing but digits, hex,
 * dots and colons goes on the wire); else "". */
static void client_ip(const char *rhost, char *buf, size_t len)
{
	unsigned char addr[sizeof(struct in6_addr)];
	buf[0] = '\0';
	if (rhost == NULL || strlen(rhost) > 64)
		return;
	if (inet_pton(AF_INET, rhost, addr) == 1) {
		if (inet_ntop(AF_INET, addr, buf, (socklen_t)len) == NULL)
			buf[0] = '\0';
	} else if (inet_pton(AF_INET6, rhost, addr) == 1) {
		if (inet_ntop(AF_INET6, addr, buf, (socklen_t)len) == NULL)
			buf[0] = '\0';
	}
}

enum ma_err ma_authenticate(const struct ma_config *cfg, const char *user,
                            const char *password, const struct ma_log *log,
                            struct ma_result *res)
{
	return ma_authenticate_opts(cfg, user, password, NULL, log, res);
}

enum ma_err ma_authenticate_opts(const struct ma_config *cfg, const char *user,
                                 const char *password, const struct ma_auth_opts *opts,
                                 const struct ma_log *log, struct ma_result *res)
{
	enum ma_err rc = MA_INTERNAL;
	struct ma_result local;
	struct ma_deadline dl;
	struct timespec started;
	char *login = NULL;
	bool tried = false;

	char ip[INET6_ADDRSTRLEN] = "";

	if (res == NULL)
		res = &local;
	memset(res, 0, sizeof(*res));
	res->server_index = -1;
	if (opts != NULL)
		client_ip(opts->rhost, ip, sizeof(ip));
	set_text(res->tls_version, sizeof(res->tls_version), "none");
	clock_gettime(CLOCK_MONOTONIC, &started);
	if (cfg == NULL) {
		rc = MA_CONFIG;
		goto out;
	}
	rc = ma_check_input(user, password, res->detail, sizeof(res->detail));
	if (rc != MA_OK)
		goto out;
	rc = ma_check_user(cfg, user, res->detail, sizeof(res->detail));
	if (rc != MA_OK)
		goto out;
	login = ma_config_login_name(cfg, user);
	if (login == NULL) {
		rc = MA_NOMEM;
		goto out;
	}
	set_text(res->login, sizeof(res->login), login);

	ma_deadline_start(&dl, cfg->timeout_ms);
	size_t routed = 0;
	for (size_t i = 0; i < cfg->n_servers; i++)
		routed += ma_config_serves(cfg, &cfg->servers[i], login);
	rc = MA_USER_UNKNOWN;
	for (size_t i = 0; i < cfg->n_servers; i++) {
		const struct ma_server *srv = &cfg->servers[i];
		if (!ma_config_serves(cfg, srv, login))
			continue;
		if (tried && ma_deadline_remaining_ms(&dl) == 0)
			break;
		/* One timeout for the whole login (SPEC 2), shared: each server
		 * still to try gets an equal part of what is left, so a primary
		 * that drops every packet leaves the next one time to answer. */
		struct ma_deadline share;
		ma_deadline_share(&share, &dl, (unsigned)routed--);
		struct ma_session s = {
			.cfg = cfg, .srv = srv, .log = log, .dl = &share, .login = login,
			.password = password, .password_len = strlen(password), .first_mech = -1,
			.client_ip = ip[0] != '\0' ? ip : NULL,
		};
		struct ma_server_hint hint = { false, false };
		if (opts != NULL && opts->hint != NULL)
			opts->hint(opts->arg, i, &hint);
		s.no_fallback = hint.scram_proven;
		if (hint.plain_first)
			s.first_mech = MA_MECH_PLAIN;
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		/* max_connections (the broker): wait for a slot within this
		 * server's share of the deadline, else it is unavailable. */
		bool slot = false;
		if (opts != NULL && opts->acquire != NULL) {
			rc = opts->acquire(opts->arg, i, ma_deadline_remaining_ms(&share),
			                   s.why, sizeof(s.why));
			slot = rc == MA_OK;
			/* A slot that came free at the very end is no use: a TCP
			 * and TLS handshake and a login do not fit in what is left,
			 * so do not open a connection only to abandon it. */
			if (slot && ma_deadline_remaining_ms(&share) < MIN_CONNECT_MS) {
				rc = MA_TIMEOUT;
				snprintf(s.why, sizeof(s.why), "the deadline passed while waiting for "
				         "a connection slot (max_connections)");
				if (opts->release != NULL)
					opts->release(opts->arg, i);
				slot = false;
			}
		}
		if (opts == NULL || opts->acquire == NULL || slot)
			rc = one_server(&s);
		if (slot && opts->release != NULL)
			opts->release(opts->arg, i);
		tried = true;
		res->server_index = (int)i;
		res->fell_back = s.fell_back;
		set_text(res->server, sizeof(res->server), srv->name);
		set_text(res->detail, sizeof(res->detail), rc == MA_OK ? "" : s.why);
		set_text(res->mechanism, sizeof(res->mechanism),
		         s.mechanism_set ? ma_mech_name(s.mechanism) : "none");
		set_text(res->tls_version, sizeof(res->tls_version),
		         s.tls_version[0] != '\0' ? s.tls_version : "none");
		record_reply(res, &s, rc);
		char eh[128], eu[300], more[1024];
		ma_log(log, rc == MA_OK || rc == MA_AUTH_FAILED ? LOG_INFO : LOG_WARNING,
		       "server=%s host=%s port=%u tls=%s mechanism=%s user=%s result=%s "
		       "duration=%ldms%s%s%s", srv->name,
		       ma_escape(eh, sizeof(eh), srv->host, strlen(srv->host)), srv->port,
		       res->tls_version, res->mechanism, ma_escape(eu, sizeof(eu), login, strlen(login)),
		       ma_err_name(rc),
		       ma_elapsed_ms(&t0), s.why[0] != '\0' && rc != MA_OK ? " reason=" : "",
		       rc != MA_OK ? s.why : "", reply_fields(res, more, sizeof(more)));
		if (!ma_err_unavailable(rc))
			break;
	}
out:
	res->err = rc;
	res->duration_ms = ma_elapsed_ms(&started);
	free(login);
	return rc;
}

static void printf_line(void (*print)(void *, const char *), void *arg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void printf_line(void (*print)(void *, const char *), void *arg, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	print(arg, line);
}

enum ma_err ma_probe(const struct ma_config *cfg, const char *server,
                     const struct ma_log *log,
                     void (*print)(void *arg, const char *line), void *arg)
{
	enum ma_err rc = MA_CONFIG;
	bool any = false;

	for (size_t i = 0; i < cfg->n_servers; i++) {
		const struct ma_server *srv = &cfg->servers[i];
		if (server != NULL && strcmp(server, srv->name) != 0)
			continue;
		struct ma_deadline dl;
		ma_deadline_start(&dl, cfg->timeout_ms);
		struct ma_session s = {
			.cfg = cfg, .srv = srv, .log = log, .dl = &dl, .login = "", .probe = true,
			.first_mech = -1,
		};
		char eh[128];
		printf_line(print, arg, "server %s: %s %s:%u tls=%s", srv->name,
		            srv->protocol == MA_PROTO_IMAP ? "imap" : "smtp",
		            ma_escape(eh, sizeof(eh), srv->host, strlen(srv->host)), srv->port,
		            srv->tls == MA_TLS_IMPLICIT ? "implicit"
		            : srv->tls == MA_TLS_STARTTLS ? "starttls" : "none");
		enum ma_err one = one_server(&s);
		if (s.caps_plain.known)
			printf_line(print, arg, "  capabilities before TLS: %s", s.caps_plain.text);
		if (s.tls_version[0] != '\0') {
			printf_line(print, arg, "  TLS: %s %s", s.tls_version, s.tls_cipher);
			printf_line(print, arg, "  certificate: %s", s.peer);
			printf_line(print, arg, "  verification: ok (name %s)", srv->verify_name);
		}
		if (s.caps_tls.known)
			printf_line(print, arg, "  capabilities after TLS: %s", s.caps_tls.text);
		if (one == MA_OK)
			printf_line(print, arg, "  mechanism: %s",
			            s.mechanism_set ? ma_mech_name(s.mechanism) : "none usable");
		else
			printf_line(print, arg, "  result: %s: %s", ma_err_name(one), s.why);
		if (one == MA_OK && !s.mechanism_set)
			one = MA_NO_MECH;
		if (!any || rc == MA_OK)
			rc = one;
		any = true;
	}
	if (!any)
		printf_line(print, arg, "no server named %s", server != NULL ? server : "");
	return rc;
}
