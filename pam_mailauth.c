/*
 * pam_mailauth.c - the PAM entry points, and nothing else: options, user
 * and token, call the library, map its one error enum to PAM codes, wipe,
 * return.  Every entry point starts failed.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#define PAM_SM_AUTH
#define PAM_SM_ACCOUNT
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "config.h"
#include "log.h"
#include "mailauth.h"

#define EXPORT __attribute__((visibility("default")))

struct options {
	const char *config;
	bool debug;
	bool acct_ignore;
};

/* Parse module arguments.  use_first_pass / try_first_pass are honoured by
 * pam_get_authtok() itself, which reads them from the module's arguments.
 * Unknown arguments are an error: a typo must not silently change policy. */
static int parse_options(pam_handle_t *pamh, int argc, const char **argv, struct options *o)
{
	o->config = MA_CONFIG_DEFAULT_PATH;
	o->debug = false;
	o->acct_ignore = false;
	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "config=", 7) == 0 && argv[i][7] != '\0')
			o->config = argv[i] + 7;
		else if (strcmp(argv[i], "debug") == 0)
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

	(void)flags;
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
	enum ma_err err = ma_authenticate(cfg, user, password, &log, &res);
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
