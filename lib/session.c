/*
 * session.c - what the protocol clients share (curl's pingpong idea): the
 * reason of a failure, sending a line with the debug log redacted, the
 * channel binding of the session, and the mechanism a probe would choose.
 */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codes.h"
#include "log.h"
#include "sasl.h"
#include "secret.h"

enum ma_err ma_session_fail(struct ma_session *s, enum ma_err err, const char *what,
                            const char *detail, size_t dlen)
{
	char esc[160];
	snprintf(s->why, sizeof(s->why), "%s%s%s", what, detail ? ": " : "",
	         detail ? ma_escape(esc, sizeof(esc), detail, dlen) : "");
	return err;
}

/*
 * Neither protocol lets the server speak before our command: IMAP answers
 * what we send (we never pipeline), and SMTP without PIPELINING (RFC 2920)
 * replies once per command (RFC 5321 4.3.1).  A reply that is already there
 * would be read as the answer to the command we are about to send, e.g. an
 * "OK" for an AUTHENTICATE the server has not seen: a protocol error.
 */
enum ma_err ma_session_send(struct ma_session *s, const char *line, size_t len,
                            const char *shown)
{
	if (ma_stream_unsolicited(s->stream))
		return ma_session_fail(s, MA_PROTOCOL, "server sent data before our command",
		                       NULL, 0);
	return ma_session_send_last(s, line, len, shown);
}

enum ma_err ma_session_send_last(struct ma_session *s, const char *line, size_t len,
                                 const char *shown)
{
	char esc[300];
	ma_debug(s->log, "C: %s", shown != NULL ? shown
	                          : ma_escape(esc, sizeof(esc), line, len >= 2 ? len - 2 : len));
	return ma_stream_write(s->stream, line, len);
}

enum ma_err ma_session_send_secret(struct ma_session *s, const char *head,
                                   const char *secret, size_t max_line)
{
	size_t hlen = head != NULL ? strlen(head) : 0;
	size_t slen = strlen(secret);
	size_t total = hlen + (hlen > 0 ? 1 : 0) + slen + 2;
	char shown[96];

	if (total > max_line)
		return ma_session_fail(s, MA_PROTOCOL, "command too long", NULL, 0);
	char *line = malloc(total + 1);
	if (line == NULL)
		return MA_NOMEM;
	size_t o = 0;
	if (hlen > 0) {
		memcpy(line, head, hlen);
		line[hlen] = ' ';
		o = hlen + 1;
	}
	memcpy(line + o, secret, slen);
	memcpy(line + o + slen, "\r\n", 3);
	snprintf(shown, sizeof(shown), "%s%s<redacted>", hlen > 0 ? head : "", hlen > 0 ? " " : "");
	enum ma_err rc = ma_session_send(s, line, total, shown);
	ma_freezero(line, total + 1);
	return rc;
}

bool ma_session_channel_binding(struct ma_session *s, struct ma_sasl_creds *c,
                                unsigned char *buf, size_t buflen)
{
	struct ma_tls *tls = s->stream != NULL ? ma_stream_tls(s->stream) : NULL;
	c->cb_type = NULL;
	c->cb_data = NULL;
	c->cb_len = 0;
	/* channel_binding = none: no -PLUS, and non-PLUS SCRAM says "n"
	 * (cb_type NULL), never "y" (RFC 5802 section 6). */
	if (tls == NULL || ma_tls_channel_binding(tls, s->srv->channel_binding, &c->cb_type, buf,
	                                          buflen, &c->cb_len) != MA_OK) {
		c->cb_type = NULL;
		return false;
	}
	c->cb_data = buf;
	return true;
}

void ma_session_alert(struct ma_session *s, const char *text, size_t len)
{
	if (s->stream == NULL || ma_stream_tls(s->stream) == NULL)
		return;
	ma_escape(s->alert, MA_ALERT_MAX + 1, text, len);
}

void ma_session_choose_for_probe(struct ma_session *s, bool imap_login_command)
{
	enum ma_mech cand[MA_MECH_COUNT];
	unsigned char cb[64];
	struct ma_sasl_creds c = { .authcid = "" };
	bool have_cb = ma_session_channel_binding(s, &c, cb, sizeof(cb));
	size_t n = ma_sasl_candidates(s->caps_tls.mechs, s->srv->mechanisms, have_cb, cand);

	if (n > 0) {
		s->mechanism = cand[0];
		s->mechanism_set = true;
	} else if (imap_login_command && (s->srv->mechanisms & MA_MECH_BIT(MA_MECH_IMAP_LOGIN)) &&
	           !s->caps_tls.logindisabled) {
		s->mechanism = MA_MECH_IMAP_LOGIN;
		s->mechanism_set = true;
	}
	ma_wipe(cb, sizeof(cb));
}
