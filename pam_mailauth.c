/*
 * pam_mailauth.c - the PAM entry points, and nothing else: options, user
 * and token, call the library, map its one error enum to PAM codes, wipe,
 * return.  Every entry point starts failed.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#define PAM_SM_AUTH
#define PAM_SM_ACCOUNT
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "broker.h"
#include "config.h"
#include "log.h"
#include "libmailauth.h"
#include "secret.h"
#include "wire.h"

#define EXPORT __attribute__((visibility("default")))

/* How long the module waits for the broker by default: it must cover the
 * broker's own `timeout` (default 10 s) and a moment in its queue. */
#define BROKER_TIMEOUT_DEFAULT 20

struct options {
	const char *config;
	bool config_given;
	bool debug;
	bool acct_ignore;
	const char *broker;          /* socket path, NULL: in-process */
	unsigned broker_timeout;     /* seconds */
};

/* Parse module arguments.  use_first_pass / try_first_pass are honoured by
 * pam_get_authtok() itself, which reads them from the module's arguments.
 * Unknown arguments are an error: a typo must not silently change policy. */
static int parse_options(pam_handle_t *pamh, int argc, const char **argv, struct options *o)
{
	o->config = MA_CONFIG_DEFAULT_PATH;
	o->config_given = false;
	o->debug = false;
	o->acct_ignore = false;
	o->broker = NULL;
	o->broker_timeout = BROKER_TIMEOUT_DEFAULT;
	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "config=", 7) == 0 && argv[i][7] != '\0') {
			o->config = argv[i] + 7;
			o->config_given = true;
		} else if (strcmp(argv[i], "broker") == 0) {
			o->broker = MA_BROKER_SOCKET_DEFAULT;
		} else if (strncmp(argv[i], "broker=", 7) == 0 && argv[i][7] == '/') {
			o->broker = argv[i] + 7;
		} else if (strncmp(argv[i], "broker_timeout=", 15) == 0) {
			char *end = NULL;
			long v = strtol(argv[i] + 15, &end, 10);
			if (end == argv[i] + 15 || *end != '\0' || v < 1 || v > 600) {
				pam_syslog(pamh, LOG_ERR, "broker_timeout must be 1 to 600 seconds: %s",
				           argv[i]);
				return -1;
			}
			o->broker_timeout = (unsigned)v;
		} else if (strcmp(argv[i], "debug") == 0)
			o->debug = true;
		else if (strcmp(argv[i], "acct_ignore") == 0)
			o->acct_ignore = true;
		else if (strcmp(argv[i], "use_first_pass") == 0 ||
		         strcmp(argv[i], "try_first_pass") == 0)
			continue;
		else {
			pam_syslog(pamh, LOG_ERR, "unknown module argument: %s", argv[i]);
			return -1;
		}
	}
	if (o->broker == NULL && o->broker_timeout != BROKER_TIMEOUT_DEFAULT) {
		pam_syslog(pamh, LOG_ERR, "broker_timeout= without broker: a mistake, refused");
		return -1;
	}
	/* With the broker the module never reads a configuration: naming one
	 * as well is a mistake that must not pass silently. */
	if (o->broker != NULL && o->config_given) {
		pam_syslog(pamh, LOG_ERR, "config= and broker exclude each other: the broker "
		           "reads the configuration");
		return -1;
	}
	return 0;
}

static void emit_syslog(void *arg, int priority, const char *line)
{
	pam_syslog((pam_handle_t *)arg, priority, "%s", line);
}

/* The one mapping from the library's errors to PAM (SPEC 4). */
static int pam_code(enum ma_err err)
{
	switch (err) {
	case MA_OK:
		return PAM_SUCCESS;
	case MA_AUTH_FAILED:
	case MA_BAD_INPUT:
		return PAM_AUTH_ERR;
	case MA_USER_UNKNOWN:
		return PAM_USER_UNKNOWN;
	case MA_UNAVAILABLE:
	case MA_TLS:
	case MA_PROTOCOL:
	case MA_TIMEOUT:
	case MA_NO_MECH:
		return PAM_AUTHINFO_UNAVAIL;
	case MA_POLICY:
		/* Beyond SPEC 4, which knows only "rejected" and "unavailable": the
		 * service refuses this way of logging in, or the account, whatever
		 * the password (Microsoft 365 with SMTP AUTH off, Google without an
		 * app password, [EXPIRED]).  Not PAM_AUTH_ERR: nothing says the
		 * password is wrong, and a user told so would only type it again;
		 * an administrator (or the user, at the provider) must act.  The
		 * authentication information is unavailable by this method. */
		return PAM_AUTHINFO_UNAVAIL;
	case MA_NOMEM:
		return PAM_BUF_ERR;
	case MA_CONFIG:
	case MA_INTERNAL:
		return PAM_SERVICE_ERR;
	}
	return PAM_SERVICE_ERR;
}

static enum ma_err load_config(pam_handle_t *pamh, const char *path, struct ma_config **cfg)
{
	char err[512] = "";
	enum ma_err rc = ma_config_load(path, cfg, err, sizeof(err));
	if (rc != MA_OK)
		pam_syslog(pamh, LOG_ERR, "configuration: %s", err[0] ? err : ma_err_name(rc));
	return rc;
}

/*
 * Show the server's word to the user through the PAM conversation: an
 * IMAP [ALERT] (RFC 9051 7.1: "MUST be presented to the user"), or, for a
 * policy refusal without one, what it means (a constant of lib/codes.c).
 * An error message on failure, information on success; nothing under
 * PAM_SILENT.  MSG is already escaped by the library (or the broker, whose
 * wire refuses control characters in it); it is cut here to MA_ALERT_MAX
 * bytes, and any control character left is replaced, so that nothing but
 * printable text reaches a terminal.  The library only records an alert
 * that came over TLS (SPEC 2).
 */
static void tell_user(pam_handle_t *pamh, int flags, enum ma_err err, const char *alert,
                      const char *meaning)
{
	char msg[MA_ALERT_MAX + 1];
	const char *text = alert != NULL && alert[0] != '\0' ? alert
	                 : err == MA_POLICY && meaning != NULL ? meaning : NULL;
	if (text == NULL || (flags & (int)PAM_SILENT) != 0)
		return;
	snprintf(msg, sizeof(msg), "%s", text);
	for (char *p = msg; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	/* pam_prompt() fails without a conversation function: nothing to do. */
	if (err == MA_OK)
		(void)pam_info(pamh, "%s", msg);
	else
		(void)pam_error(pamh, "%s", msg);
}

/* ---- the broker (SPEC 10) ---- */

static const char *item(pam_handle_t *pamh, int type)
{
	const void *v = NULL;
	return pam_get_item(pamh, type, &v) == PAM_SUCCESS && v != NULL ? v : "";
}

/* Fill a request of TYPE for USER (PASSWORD may be NULL) with the PAM items
 * the broker logs, throttles and forwards.  Over-long items are cut, as
 * they are only for logs; the user and password never are. */
static void request_init(pam_handle_t *pamh, struct ma_wire_request *req, enum ma_wire_type type,
                         const char *user, const char *password)
{
	memset(req, 0, sizeof(*req));
	req->type = type;
	snprintf(req->user, sizeof(req->user), "%s", user);
	if (password != NULL)
		snprintf(req->password, sizeof(req->password), "%s", password);
	snprintf(req->service, sizeof(req->service), "%s", item(pamh, PAM_SERVICE));
	snprintf(req->rhost, sizeof(req->rhost), "%s", item(pamh, PAM_RHOST));
	snprintf(req->tty, sizeof(req->tty), "%s", item(pamh, PAM_TTY));
	snprintf(req->ruser, sizeof(req->ruser), "%s", item(pamh, PAM_RUSER));
}

/* Ask the broker; the verdict, or MA_UNAVAILABLE (logged) when there is no
 * answer: never a silent fall back to in-process. */
static enum ma_err broker_ask(pam_handle_t *pamh, const struct options *opt,
                              const struct ma_wire_request *req, struct ma_wire_response *resp)
{
	char why[256] = "", eu[300];
	enum ma_err err = ma_broker_call(opt->broker, req, opt->broker_timeout * 1000u, resp,
	                                 why, sizeof(why));
	if (err != MA_OK) {
		pam_syslog(pamh, LOG_ERR, "user %s: %s", ma_escape(eu, sizeof(eu), req->user,
		           strlen(req->user)), why);
		return err == MA_BAD_INPUT ? MA_BAD_INPUT : MA_UNAVAILABLE;
	}
	int prio = resp->err == MA_OK || resp->err == MA_AUTH_FAILED ? LOG_INFO : LOG_WARNING;
	if (req->type == MA_WIRE_AUTH || resp->err != MA_OK)
		pam_syslog(pamh, prio, "broker: user=%s result=%s source=%s server=%s%s%s%s%s%s",
		           ma_escape(eu, sizeof(eu), req->user, strlen(req->user)),
		           ma_err_name(resp->err), ma_wire_source_name(resp->source),
		           resp->server[0] ? resp->server : "-",
		           resp->detail[0] && resp->err != MA_OK ? " reason=" : "",
		           resp->err != MA_OK ? resp->detail : "",
		           resp->message[0] ? " message=\"" : "", resp->message,
		           resp->message[0] ? "\"" : "");
	return resp->err;
}

/*
 * What both entry points need first: the user, the configuration, and the
 * local policy (minimum_uid, require_local_user, routing), which turns away
 * users this module will never accept before any password is asked for (a
 * stacked pam_unix still prompts).  Returns PAM_SUCCESS, or the code to
 * return: *user_refused says the policy refused the user.
 */
static int prepare(pam_handle_t *pamh, const struct options *opt, const char **user,
                   struct ma_config **cfg, bool *user_refused)
{
	*user_refused = false;
	int prc = pam_get_user(pamh, user, NULL);
	if (prc != PAM_SUCCESS || *user == NULL || (*user)[0] == '\0')
		return prc == PAM_CONV_AGAIN ? PAM_INCOMPLETE : PAM_USER_UNKNOWN;
	if (opt->broker != NULL) {
		/* The same local policy, decided by the broker, which has the
		 * configuration (one round trip on the local socket). */
		struct ma_wire_request req;
		struct ma_wire_response resp;
		if (strlen(*user) >= sizeof(req.user))
			return pam_code(MA_BAD_INPUT);   /* as in-process: over 255 bytes */
		request_init(pamh, &req, MA_WIRE_ACCOUNT, *user, NULL);
		enum ma_err err = broker_ask(pamh, opt, &req, &resp);
		*user_refused = err == MA_USER_UNKNOWN || err == MA_BAD_INPUT;
		return err == MA_OK ? PAM_SUCCESS : pam_code(err);
	}
	enum ma_err err = load_config(pamh, opt->config, cfg);
	if (err != MA_OK)
		return pam_code(err);
	char why[256] = "";
	err = ma_check_user(*cfg, *user, why, sizeof(why));
	if (err != MA_OK) {
		char eu[300];
		pam_syslog(pamh, LOG_NOTICE, "user %s: %s",
		           ma_escape(eu, sizeof(eu), *user, strlen(*user)), why);
		*user_refused = true;
		return pam_code(err);
	}
	return PAM_SUCCESS;
}

EXPORT int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	int rc = PAM_SERVICE_ERR;
	struct options opt;
	struct ma_config *cfg = NULL;
	const char *user = NULL;
	const char *password = NULL;
	struct ma_result res;
	bool refused;

	if (parse_options(pamh, argc, argv, &opt) != 0)
		goto out;
	struct ma_log log = { .emit = emit_syslog, .arg = pamh, .debug = opt.debug };
	/* rc stays a failure until the library's verdict is in. */
	int prc = prepare(pamh, &opt, &user, &cfg, &refused);
	if (prc != PAM_SUCCESS) {
		rc = prc;
		goto out;
	}
	prc = pam_get_authtok(pamh, PAM_AUTHTOK, &password, NULL);
	if (prc != PAM_SUCCESS || password == NULL) {
		rc = prc == PAM_CONV_AGAIN ? PAM_INCOMPLETE : PAM_AUTH_ERR;
		goto out;
	}
	/* PAM owns the token (PAM_AUTHTOK item) and wipes it in pam_end; the
	 * library copies nothing it does not wipe. */
	enum ma_err err;
	if (opt.broker != NULL) {
		/* The input rules first, here: nothing over the limits goes out. */
		char why[128];
		err = ma_check_input(user, password, why, sizeof(why));
		if (err == MA_OK) {
			struct ma_wire_request *req = malloc(sizeof(*req));
			struct ma_wire_response resp;
			memset(&resp, 0, sizeof(resp));
			err = MA_NOMEM;
			if (req != NULL) {
				request_init(pamh, req, MA_WIRE_AUTH, user, password);
				err = broker_ask(pamh, &opt, req, &resp);
				ma_freezero(req, sizeof(*req));
				/* The broker's MESSAGE is the alert, or the meaning of a
				 * policy refusal: the same rule as in-process. */
				if (err == resp.err)
					tell_user(pamh, flags, err, resp.message, NULL);
			}
		} else {
			char eu[300];
			pam_syslog(pamh, LOG_NOTICE, "user %s: %s",
			           ma_escape(eu, sizeof(eu), user, strlen(user)), why);
		}
		rc = pam_code(err);
		goto out;
	}
	/* PAM_RHOST for forward_client_ip (sent only when it is an address). */
	struct ma_auth_opts aopts = { .rhost = item(pamh, PAM_RHOST) };
	err = ma_authenticate_opts(cfg, user, password, &aopts, &log, &res);
	tell_user(pamh, flags, err, res.alert, res.meaning);
	if (err == MA_BAD_INPUT || err == MA_USER_UNKNOWN) {
		char eu[300];
		pam_syslog(pamh, LOG_NOTICE, "user %s: %s",
		           ma_escape(eu, sizeof(eu), user, strlen(user)), res.detail);
	}
	rc = pam_code(err);
out:
	ma_config_free(&cfg);
	return rc;
}

EXPORT int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	/* No credentials to establish: a mail password grants no tickets. */
	return PAM_SUCCESS;
}

EXPORT int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	int rc = PAM_SERVICE_ERR;
	struct options opt;
	struct ma_config *cfg = NULL;
	const char *user = NULL;
	bool refused;

	(void)flags;
	if (parse_options(pamh, argc, argv, &opt) != 0)
		goto out;
	if (opt.acct_ignore) {
		rc = PAM_IGNORE;
		goto out;
	}
	/* SPEC 4: PAM_SUCCESS for a user routed to a server, else unknown. */
	rc = prepare(pamh, &opt, &user, &cfg, &refused);
	if (refused)
		rc = PAM_USER_UNKNOWN;
out:
	ma_config_free(&cfg);
	return rc;
}
