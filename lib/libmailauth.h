/*
 * libmailauth.h - the face of libmailauth (named apart from the mailauth
 * tool): check a user's password against an
 * IMAP or SMTP submission server over verified TLS.
 *
 * Data flows one way: caller -> config -> route -> connect -> TLS -> protocol
 * -> SASL mechanism -> verdict.  Nothing in lib/ knows about PAM; the PAM glue
 * (pam_mailauth.c) and the tool (mailauth.c) map enum ma_err to their own
 * return codes.
 */
#ifndef LIBMAILAUTH_H
#define LIBMAILAUTH_H

#include <stdbool.h>
#include <stddef.h>

/* The one error model of the library.  MA_OK is the only success. */
enum ma_err {
	MA_OK = 0,
	MA_AUTH_FAILED,   /* the server rejected the credentials */
	MA_BAD_INPUT,     /* refused before connecting (empty password, CR/LF in
	                     the user name, over-long input, OpenSSH placeholder) */
	MA_USER_UNKNOWN,  /* not routed to any server, or local uid too low */
	MA_UNAVAILABLE,   /* DNS, connect, server said "try later" */
	MA_TLS,           /* handshake, certificate or pin failure */
	MA_PROTOCOL,      /* malformed, over-long or out-of-sequence reply */
	MA_TIMEOUT,       /* the one deadline of this authentication passed */
	MA_NO_MECH,       /* no mechanism both sides allow */
	MA_CONFIG,        /* configuration missing or invalid */
	MA_NOMEM,
	MA_INTERNAL,
	MA_POLICY,        /* the service refuses this way of logging in, or the
	                     account, whatever the password (Microsoft 365 with
	                     SMTP AUTH off, Google without an app password,
	                     RFC 5530 [EXPIRED]...): an administrator or the user
	                     must act; no other server is asked (lib/codes.c) */
};
/* The highest value (the broker's wire checks it).  A macro, not an
 * enumerator, so that -Wswitch still asks every switch for each error. */
#define MA_ERR_MAX MA_POLICY

/* Static, human-readable name of an error ("auth-failed", "tls", ...). */
const char *ma_err_name(enum ma_err err);

/*
 * Where the library's log lines go.  priority is a syslog priority
 * (LOG_INFO, LOG_DEBUG, LOG_ERR...).  Lines handed to emit never contain a
 * password, a SASL payload or base64 of either; server text in them has
 * control characters escaped.  emit may be NULL (no logging).
 */
struct ma_log {
	void (*emit)(void *arg, int priority, const char *line);
	void *arg;
	bool debug;            /* also emit the redacted protocol exchange */
};

/* Longest server [ALERT] text shown to a user or logged (escaped bytes). */
#define MA_ALERT_MAX 200

/* What one authentication did, for the caller's one log line. */
struct ma_result {
	enum ma_err err;
	char server[64];       /* name of the server section that gave the verdict */
	char login[256];       /* login name sent (not secret) */
	char tls_version[16];  /* "TLSv1.3", or "none" */
	char mechanism[32];    /* "SCRAM-SHA-256", "PLAIN", "IMAP-LOGIN"... */
	char detail[512];      /* why it failed, escaped, never secret */
	long duration_ms;
	int server_index;      /* cfg->servers[] that gave the verdict, -1 none */
	bool fell_back;        /* a SCRAM/CRAM rejection, then PLAIN on that server */
	/* The server's refusal as lib/codes.c reads it (static strings of its
	 * table, or NULL when the verdict was not a classified server reply). */
	const char *meaning;
	const char *remedy;
	const char *code_id;   /* the table row, e.g. "m365-smtp-auth-disabled-tenant" */
	/* The text of an IMAP [ALERT] in the answer to the login (RFC 9051
	 * 7.1: "MUST be presented to the user"), escaped, at most MA_ALERT_MAX
	 * (200) bytes; only when it came over TLS; "" otherwise. */
	char alert[256];
};

/* What a caller (the broker) remembers of a user at one server. */
struct ma_server_hint {
	bool scram_proven;     /* SCRAM succeeded before: a rejection is final */
	bool plain_first;      /* only PLAIN worked before: start with it */
};

/*
 * Everything an authentication may take besides user and password; every
 * field may be 0 / NULL.
 */
struct ma_auth_opts {
	/* PAM_RHOST: sent to servers with forward_client_ip when it is an IPv4
	 * or IPv6 literal (anything else is never sent). */
	const char *rhost;
	void *arg;             /* for the callbacks */
	/* Fill H for USER at cfg->servers[SERVER] (called before connecting). */
	void (*hint)(void *arg, size_t server, struct ma_server_hint *h);
	/* max_connections: take a slot for cfg->servers[SERVER] within
	 * TIMEOUT_MS (MA_OK), or give up (MA_UNAVAILABLE / MA_TIMEOUT, with a
	 * reason in WHY); release() gives it back after the attempt. */
	enum ma_err (*acquire)(void *arg, size_t server, int timeout_ms,
	                       char *why, size_t whylen);
	void (*release)(void *arg, size_t server);
};

struct ma_config;

/*
 * Authenticate USER with PASSWORD (NUL-terminated; the library never keeps
 * a copy beyond this call and wipes every buffer it derived from it).
 * Runs the local checks (minimum_uid, require_local_user), routing, then the
 * configured servers in order while they are unavailable; a rejection never
 * moves on.  Returns MA_OK only when a server accepted the credentials over
 * a verified TLS session (or tls = none on loopback) and the mechanism
 * proved the server where it can.  res is always filled (may be NULL).
 */
enum ma_err ma_authenticate(const struct ma_config *cfg, const char *user,
                            const char *password, const struct ma_log *log,
                            struct ma_result *res);

/* The same with OPTS (may be NULL: exactly ma_authenticate). */
enum ma_err ma_authenticate_opts(const struct ma_config *cfg, const char *user,
                                 const char *password, const struct ma_auth_opts *opts,
                                 const struct ma_log *log, struct ma_result *res);

/*
 * The input checks of ma_authenticate that need no configuration: user
 * name (1..255 bytes, no CR/LF), password (1..1024 bytes, not OpenSSH's
 * placeholder).  MA_OK or MA_BAD_INPUT with WHY.
 */
enum ma_err ma_check_input(const char *user, const char *password, char *why, size_t whylen);

/* True for the errors that say "no server could give a verdict" (DNS,
 * connect, TLS, protocol, deadline, no mechanism): the next server is tried,
 * and the broker may answer offline. */
bool ma_err_unavailable(enum ma_err err);

/*
 * Checks that need no network: is USER allowed by minimum_uid /
 * require_local_user, and is it routed to a server?  Returns MA_OK,
 * MA_USER_UNKNOWN or MA_BAD_INPUT.
 */
enum ma_err ma_check_user(const struct ma_config *cfg, const char *user,
                          char *why, size_t whylen);

/*
 * `mailauth probe`: connect to every server of the configuration (or only
 * the one named SERVER), and report through PRINT, one line per call: TLS
 * version and cipher, the certificate and its verification, capabilities
 * before and after TLS, and the mechanism that would be chosen.  Never sends
 * a credential.  Returns MA_OK when every probed server was fine.
 */
enum ma_err ma_probe(const struct ma_config *cfg, const char *server,
                     const struct ma_log *log,
                     void (*print)(void *arg, const char *line), void *arg);

#endif
