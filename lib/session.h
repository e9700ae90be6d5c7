/*
 * session.h - one authentication against one server, shared by the protocol
 * clients (imap.c, smtp.c) and the driver (mailauth.c in lib/auth.c).
 * Internal to the library.
 */
#ifndef MA_SESSION_H
#define MA_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "deadline.h"
#include "libmailauth.h"
#include "stream.h"
#include "tls.h"

/* Capabilities learned from a server; discarded when TLS starts (SPEC 2). */
struct ma_caps {
	unsigned mechs;          /* bit set of enum ma_mech advertised */
	bool known;              /* a capability list was received */
	bool starttls;
	bool logindisabled;      /* IMAP: LOGIN command forbidden */
	bool sasl_ir;            /* IMAP RFC 4959 / SMTP: initial response allowed */
	bool auth;               /* SMTP: an AUTH keyword was advertised */
	bool id;                 /* IMAP: the ID command (RFC 2971) */
	bool xclient;            /* SMTP: XCLIENT (Postfix's XCLIENT_README) */
	char text[512];          /* escaped, for logs and `mailauth probe` */
};

struct ma_session {
	const struct ma_config *cfg;
	const struct ma_server *srv;
	const struct ma_log *log;
	const struct ma_deadline *dl;
	struct ma_stream *stream;        /* connected by the driver */
	struct ma_tls_params tls;        /* for implicit TLS or STARTTLS */
	const char *login;               /* what is sent as the user name */
	const char *password;            /* NULL in probe mode */
	size_t password_len;
	bool probe;                      /* stop after capabilities, send nothing secret */
	/* What the caller knows (the broker's mechanism memory, PAM_RHOST). */
	bool no_fallback;                /* SCRAM worked for this user: a rejection is final */
	int first_mech;                  /* enum ma_mech to try first, or -1 */
	const char *client_ip;           /* canonical IP literal of the user's client, or NULL */
	bool fell_back;                  /* out: SCRAM/CRAM rejected, then PLAIN tried */
	struct ma_caps caps_plain;       /* before TLS (STARTTLS only) */
	struct ma_caps caps_tls;         /* after TLS: the only ones used to choose */
	enum ma_mech mechanism;          /* chosen / used */
	bool mechanism_set;
	char tls_version[16];            /* of the session, once TLS is up */
	char tls_cipher[64];
	char peer[512];                  /* certificate summary, probe mode */
	char why[512];                   /* escaped reason on failure */
	/* The last refusal of the login as lib/codes.c reads it (NULL: none
	 * since the last command began), and an IMAP [ALERT] that came with
	 * the answer over TLS (escaped, at most MA_ALERT_MAX bytes). */
	const struct ma_code_row *code_row;
	char alert[256];
};

struct ma_sasl_creds;

/* Record why the session failed (DETAIL escaped) and return ERR. */
enum ma_err ma_session_fail(struct ma_session *s, enum ma_err err, const char *what,
                            const char *detail, size_t dlen);

/* Send LEN bytes of LINE (CRLF included); the debug log shows SHOWN when
 * given (a redaction), else the line itself, escaped.  Fails with
 * MA_PROTOCOL, sending nothing, when the server has already sent something
 * we have not read (a reply before the command). */
enum ma_err ma_session_send(struct ma_session *s, const char *line, size_t len,
                            const char *shown);

/* The same without that check, for LOGOUT / QUIT whose answer is never
 * read and whose failure changes nothing. */
enum ma_err ma_session_send_last(struct ma_session *s, const char *line, size_t len,
                                 const char *shown);

/* Send "HEAD SP SECRET CRLF" (or "SECRET CRLF" when HEAD is NULL), logged as
 * "HEAD <redacted>"; the line buffer is wiped.  Lines longer than MAX_LINE
 * are refused with MA_PROTOCOL. */
enum ma_err ma_session_send_secret(struct ma_session *s, const char *head,
                                   const char *secret, size_t max_line);

/* Fill C's channel binding from the session's TLS (BUF: at least 64
 * bytes, wiped by the caller).  Returns false, with C->cb_type NULL, when
 * the session cannot provide one. */
bool ma_session_channel_binding(struct ma_session *s, struct ma_sasl_creds *c,
                                unsigned char *buf, size_t buflen);

/* Record TEXT (LEN bytes) of an IMAP [ALERT] in the answer to the login:
 * escaped and cut to MA_ALERT_MAX bytes, and only when the session is
 * TLS (SPEC 2: nothing the server says before TLS reaches the user). */
void ma_session_alert(struct ma_session *s, const char *text, size_t len);

/* `mailauth probe`: record the mechanism the login would start with. */
void ma_session_choose_for_probe(struct ma_session *s, bool imap_login_command);

/* Protocol clients: run the whole dialogue on s->stream (plain, or already
 * TLS for implicit mode).  Return MA_OK only on the server's acceptance. */
enum ma_err ma_imap_session(struct ma_session *s);
enum ma_err ma_smtp_session(struct ma_session *s);

#endif
