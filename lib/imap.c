/*
 * imap.c - just enough IMAP to authenticate (RFC 9051, RFC 3501):
 * greeting, CAPABILITY, STARTTLS, AUTHENTICATE (RFC 4959 SASL-IR), the LOGIN
 * command as a last resort, LOGOUT.  Never pipelines before TLS; never
 * sends a credential before the handshake; reads are bounded by the stream.
 */
#include "imap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "codes.h"
#include "log.h"
#include "sasl.h"
#include "secret.h"

/* Untagged lines tolerated while waiting for one tagged reply: enough for
 * any real server's CAPABILITY/ID chatter, not an endless stream. */
#define MAX_UNTAGGED 64

struct imap {
	struct ma_session *s;
	unsigned tagno;
	char tag[16];               /* tag of the command in flight */
	bool payload_sent;          /* a SASL response left us in this exchange */
};

/* ---- pure parsers ---- */

static bool word_is(const char *p, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(p, word, len) == 0;
}

int ma_imap_parse_line(const char *line, size_t len, struct ma_imap_line *out)
{
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return -1;
	/* continue-req = "+" SP (resp-text / base64); be lenient on the SP
	 * for an empty challenge ("+" alone), as deployed servers send it. */
	if (line[0] == '+') {
		out->kind = MA_IMAP_CONTINUATION;
		if (len == 1)
			return 0;
		if (line[1] != ' ')
			return -1;
		out->text = line + 2;
		out->text_len = len - 2;
		return 0;
	}
	size_t i = 0;
	while (i < len && line[i] != ' ')
		i++;
	if (i == 0 || i == len)
		return -1;
	if (i == 1 && line[0] == '*') {
		out->kind = MA_IMAP_UNTAGGED;
	} else {
		/* tag = 1*<any ASTRING-CHAR except "+">: no specials. */
		for (size_t k = 0; k < i; k++) {
			unsigned char c = (unsigned char)line[k];
			if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\+", c) != NULL)
				return -1;
		}
		out->kind = MA_IMAP_TAGGED;
		out->tag = line;
		out->tag_len = i;
	}
	size_t w = ++i;
	while (i < len && line[i] != ' ')
		i++;
	const char *word = line + w;
	size_t wlen = i - w;
	if (word_is(word, wlen, "OK"))
		out->status = MA_IMAP_OK;
	else if (word_is(word, wlen, "NO"))
		out->status = MA_IMAP_NO;
	else if (word_is(word, wlen, "BAD"))
		out->status = MA_IMAP_BAD;
	else if (word_is(word, wlen, "PREAUTH"))
		out->status = MA_IMAP_PREAUTH;
	else if (word_is(word, wlen, "BYE"))
		out->status = MA_IMAP_BYE;
	else
		out->status = MA_IMAP_NONE;

	if (out->kind == MA_IMAP_TAGGED &&
	    out->status != MA_IMAP_OK && out->status != MA_IMAP_NO && out->status != MA_IMAP_BAD)
		return -1;    /* response-tagged = tag SP resp-cond-state */
	if (out->status == MA_IMAP_NONE) {
		out->text = word;
		out->text_len = len - w;
		return wlen == 0 ? -1 : 0;
	}
	if (i < len)
		i++;          /* the SP after the status word */
	/* resp-text = ["[" resp-text-code "]" SP] text */
	if (i < len && line[i] == '[') {
		size_t c = i + 1;
		while (c < len && line[c] != ']')
			c++;
		if (c == len)
			return -1;
		out->code = line + i + 1;
		out->code_len = c - i - 1;
		i = c + 1;
		if (i < len && line[i] == ' ')
			i++;
	}
	out->text = line + i;
	out->text_len = len - i;
	return 0;
}

int ma_imap_parse_caps(const char *list, size_t len, struct ma_caps *caps)
{
	size_t i = 0;
	caps->known = true;
	while (i < len) {
		size_t start = i;
		while (i < len && list[i] != ' ')
			i++;
		const char *tok = list + start;
		size_t tlen = i - start;
		if (i < len)
			i++;
		if (tlen == 0)
			continue;
		/* Exact, case-insensitive tokens (SPEC 3). */
		if (tlen > 5 && strncasecmp(tok, "AUTH=", 5) == 0) {
			int m = ma_sasl_mech_from_token(tok + 5, tlen - 5);
			if (m >= 0)
				caps->mechs |= MA_MECH_BIT(m);
		} else if (word_is(tok, tlen, "STARTTLS")) {
			caps->starttls = true;
		} else if (word_is(tok, tlen, "LOGINDISABLED")) {
			caps->logindisabled = true;
		} else if (word_is(tok, tlen, "SASL-IR")) {
			caps->sasl_ir = true;
		} else if (word_is(tok, tlen, "ID")) {
			caps->id = true;
		}
	}
	ma_escape(caps->text, sizeof(caps->text), list, len);
	return 0;
}

int ma_imap_astring(const char *s, size_t len, char *buf, size_t cap, size_t *used)
{
	bool quotable = true;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\0')
			return -1;
		/* quoted = DQUOTE *QUOTED-CHAR DQUOTE; QUOTED-CHAR excludes CR, LF
		 * and 8-bit bytes (RFC 9051 section 9), so those need a literal. */
		if (c == '\r' || c == '\n' || c >= 0x80)
			quotable = false;
	}
	if (!quotable) {
		int n = snprintf(buf + *used, cap - *used, "{%zu}", len);
		if (n < 0 || (size_t)n >= cap - *used)
			return -1;
		*used += (size_t)n;
		return 2;
	}
	if (*used + 2 * len + 3 > cap)
		return -1;
	buf[(*used)++] = '"';
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf[(*used)++] = '\\';
		buf[(*used)++] = s[i];
	}
	buf[(*used)++] = '"';
	buf[*used] = '\0';
	return 1;
}

static bool code_is(const struct ma_imap_line *l, const char *word)
{
	if (l->code == NULL)
		return false;
	size_t w = 0;
	while (w < l->code_len && l->code[w] != ' ')
		w++;
	return word_is(l->code, w, word);
}

int ma_imap_auth_reply(const struct ma_imap_line *l, bool payload_sent,
                       const struct ma_code_row **row)
{
	*row = NULL;
	if (l->kind == MA_IMAP_CONTINUATION)
		return MA_REPLY_CHALLENGE;
	if (l->kind != MA_IMAP_TAGGED)
		return -1;
	if (l->status == MA_IMAP_OK)
		return MA_REPLY_SUCCESS;
	/* NO and BAD: lib/codes.c decides.  A NO after the server has seen our
	 * credentials, or any NO with an RFC 5530 verdict, is a rejection
	 * (never a second try) unless the table knows it for a temporary
	 * failure or a policy refusal; BAD, or NO before any payload: the
	 * mechanism is unsupported. */
	*row = ma_codes_imap(l->status == MA_IMAP_BAD, l->code, l->code_len, l->text,
	                     l->text_len, payload_sent);
	return *row != NULL ? ma_codes_sasl_reply(*row) : MA_REPLY_REJECTED;
}

/* ---- the dialogue ---- */

static enum ma_err fail(struct imap *im, enum ma_err err, const char *what,
                        const char *detail, size_t dlen)
{
	return ma_session_fail(im->s, err, what, detail, dlen);
}

static enum ma_err send_line(struct imap *im, const char *line, size_t len,
                             const char *shown)
{
	return ma_session_send(im->s, line, len, shown);
}

static enum ma_err command(struct imap *im, const char *cmd)
{
	char line[256];
	snprintf(im->tag, sizeof(im->tag), "a%u", ++im->tagno);
	int n = snprintf(line, sizeof(line), "%s %s\r\n", im->tag, cmd);
	if (n < 0 || (size_t)n >= sizeof(line))
		return MA_INTERNAL;
	return send_line(im, line, (size_t)n, NULL);
}

static enum ma_err read_line(struct imap *im, struct ma_imap_line *l)
{
	const char *line;
	size_t len;
	memset(l, 0, sizeof(*l));
	enum ma_err rc = ma_stream_read_line(im->s->stream, &line, &len);
	if (rc == MA_PROTOCOL)
		return fail(im, rc, "malformed or over-long line from server", NULL, 0);
	if (rc == MA_TIMEOUT)
		return fail(im, rc, "timed out waiting for the server", NULL, 0);
	if (rc != MA_OK)
		return fail(im, rc, "connection closed by server", NULL, 0);
	char esc[300];
	ma_debug(im->s->log, "S: %s", ma_escape(esc, sizeof(esc), line, len));
	if (ma_imap_parse_line(line, len, l) != 0)
		return fail(im, MA_PROTOCOL, "malformed server line", line, len);
	/* RFC 2221 referrals are never followed (SPEC 2). */
	if (l->code != NULL && l->code_len >= 8 && strncasecmp(l->code, "REFERRAL", 8) == 0)
		return fail(im, MA_PROTOCOL, "server sent a referral", line, len);
	return MA_OK;
}

static void caps_from_code(const struct ma_imap_line *l, struct ma_caps *caps)
{
	if (code_is(l, "CAPABILITY") && l->code_len > 11)
		ma_imap_parse_caps(l->code + 11, l->code_len - 11, caps);
}

/*
 * Wait for the tagged reply to the command in flight.  Untagged lines are
 * tolerated (bounded); "* CAPABILITY" is collected into CAPS when given; a
 * continuation or another tag is out of sequence; BYE ends the session.
 */
static enum ma_err await_tagged(struct imap *im, struct ma_imap_line *l, struct ma_caps *caps)
{
	for (int i = 0; i <= MAX_UNTAGGED; i++) {
		enum ma_err rc = read_line(im, l);
		if (rc != MA_OK)
			return rc;
		if (l->kind == MA_IMAP_TAGGED) {
			if (l->tag_len != strlen(im->tag) || memcmp(l->tag, im->tag, l->tag_len) != 0)
				return fail(im, MA_PROTOCOL, "reply with an unexpected tag", l->tag, l->tag_len);
			if (caps != NULL)
				caps_from_code(l, caps);
			return MA_OK;
		}
		if (l->kind == MA_IMAP_CONTINUATION)
			return fail(im, MA_PROTOCOL, "unexpected continuation", NULL, 0);
		if (l->status == MA_IMAP_BYE)
			return fail(im, MA_UNAVAILABLE, "server closed the session", l->text, l->text_len);
		if (caps != NULL && l->status == MA_IMAP_NONE && l->text_len > 11 &&
		    strncasecmp(l->text, "CAPABILITY ", 11) == 0)
			ma_imap_parse_caps(l->text + 11, l->text_len - 11, caps);
	}
	return fail(im, MA_PROTOCOL, "too many untagged lines", NULL, 0);
}

static enum ma_err capability(struct imap *im, struct ma_caps *caps)
{
	struct ma_imap_line l;
	memset(caps, 0, sizeof(*caps));
	enum ma_err rc = command(im, "CAPABILITY");
	if (rc == MA_OK)
		rc = await_tagged(im, &l, caps);
	if (rc != MA_OK)
		return rc;
	if (l.status != MA_IMAP_OK)
		return fail(im, MA_PROTOCOL, "CAPABILITY refused", l.text, l.text_len);
	if (!caps->known)
		return fail(im, MA_PROTOCOL, "no CAPABILITY in the reply", NULL, 0);
	return MA_OK;
}

static enum ma_err greeting(struct imap *im, struct ma_caps *caps)
{
	struct ma_imap_line l;
	enum ma_err rc = read_line(im, &l);
	if (rc != MA_OK)
		return rc;
	if (l.kind != MA_IMAP_UNTAGGED)
		return fail(im, MA_PROTOCOL, "greeting is not untagged", NULL, 0);
	/* SPEC 2: a PREAUTH greeting is never a success, BYE is a refusal. */
	if (l.status == MA_IMAP_PREAUTH)
		return fail(im, MA_PROTOCOL, "PREAUTH greeting refused", NULL, 0);
	if (l.status == MA_IMAP_BYE)
		return fail(im, MA_PROTOCOL, "server refused the connection", l.text, l.text_len);
	if (l.status != MA_IMAP_OK)
		return fail(im, MA_PROTOCOL, "malformed greeting", l.text, l.text_len);
	memset(caps, 0, sizeof(*caps));
	caps_from_code(&l, caps);
	return MA_OK;
}

static enum ma_err starttls(struct imap *im)
{
	struct ma_session *s = im->s;
	struct ma_imap_line l;
	enum ma_err rc;

	if (!s->caps_plain.known && (rc = capability(im, &s->caps_plain)) != MA_OK)
		return rc;
	if (!s->caps_plain.starttls)
		return fail(im, MA_UNAVAILABLE, "server does not offer STARTTLS", NULL, 0);
	if ((rc = command(im, "STARTTLS")) != MA_OK)
		return rc;
	/* Nothing may come between STARTTLS and its tagged reply. */
	if ((rc = read_line(im, &l)) != MA_OK)
		return rc;
	if (l.kind != MA_IMAP_TAGGED || l.tag_len != strlen(im->tag) ||
	    memcmp(l.tag, im->tag, l.tag_len) != 0)
		return fail(im, MA_PROTOCOL, "unexpected reply to STARTTLS", NULL, 0);
	if (l.status != MA_IMAP_OK)
		return fail(im, MA_UNAVAILABLE, "server refused STARTTLS", l.text, l.text_len);
	return ma_stream_start_tls(s->stream, &s->tls, s->why, sizeof(s->why));
}

/* ---- SASL adapter ---- */

static enum ma_err sasl_begin(void *ctx, const char *mech, const char *ir)
{
	struct imap *im = ctx;
	char head[64];
	snprintf(im->tag, sizeof(im->tag), "a%u", ++im->tagno);
	int n = snprintf(head, sizeof(head), "%s AUTHENTICATE %s", im->tag, mech);
	if (n < 0 || (size_t)n >= sizeof(head))
		return MA_INTERNAL;
	im->payload_sent = ir != NULL;
	im->s->code_row = NULL;      /* a new command, a new answer */
	if (ir == NULL) {
		char line[80];
		n = snprintf(line, sizeof(line), "%s\r\n", head);
		return send_line(im, line, (size_t)n, NULL);
	}
	/* RFC 4959 section 3: AUTHENTICATE mechanism SP initial-response. */
	return ma_session_send_secret(im->s, head, ir, MA_LINE_MAX);
}

static enum ma_err sasl_respond(void *ctx, const char *b64)
{
	struct imap *im = ctx;
	/* RFC 9051 6.2.2: "If the client wishes to cancel an authentication
	 * exchange, it issues a line consisting of a single "*"." */
	if (strcmp(b64, "*") == 0)
		return send_line(im, "*\r\n", 3, NULL);
	im->payload_sent = true;
	return ma_session_send_secret(im->s, NULL, b64, MA_LINE_MAX);
}

static enum ma_err sasl_reply(void *ctx, enum ma_sasl_reply *kind, const char **text, size_t *len)
{
	struct imap *im = ctx;
	struct ma_imap_line l;

	for (int i = 0; i <= MAX_UNTAGGED; i++) {
		enum ma_err rc = read_line(im, &l);
		if (rc != MA_OK)
			return rc;
		if (l.kind == MA_IMAP_CONTINUATION) {
			*kind = MA_REPLY_CHALLENGE;
			*text = l.text != NULL ? l.text : "";
			*len = l.text_len;
			return MA_OK;
		}
		if (code_is(&l, "ALERT"))
			ma_session_alert(im->s, l.text, l.text_len);
		if (l.kind == MA_IMAP_UNTAGGED) {
			if (l.status == MA_IMAP_BYE)
				return fail(im, MA_UNAVAILABLE, "server closed the session", l.text, l.text_len);
			continue;
		}
		if (l.tag_len != strlen(im->tag) || memcmp(l.tag, im->tag, l.tag_len) != 0)
			return fail(im, MA_PROTOCOL, "reply with an unexpected tag", l.tag, l.tag_len);
		*kind = (enum ma_sasl_reply)ma_imap_auth_reply(&l, im->payload_sent, &im->s->code_row);
		if (*kind != MA_REPLY_SUCCESS) {
			char esc[160];
			snprintf(im->s->why, sizeof(im->s->why), "server: %s",
			         ma_escape(esc, sizeof(esc), l.text, l.text_len));
		}
		return MA_OK;
	}
	return fail(im, MA_PROTOCOL, "too many untagged lines", NULL, 0);
}

/* ---- the LOGIN command, the last resort (RFC 9051 6.2.3) ---- */

static enum ma_err login_command(struct imap *im)
{
	struct ma_session *s = im->s;
	enum ma_err rc = MA_INTERNAL;
	struct ma_imap_line l;
	size_t cap = 64 + 2 * strlen(s->login) + 2 * s->password_len + 8;
	char *buf = malloc(cap);
	size_t used = 0;

	if (buf == NULL)
		return MA_NOMEM;
	s->code_row = NULL;
	snprintf(im->tag, sizeof(im->tag), "a%u", ++im->tagno);
	used = (size_t)snprintf(buf, cap, "%s LOGIN ", im->tag);

	const char *parts[2] = { s->login, s->password };
	size_t lens[2] = { strlen(s->login), s->password_len };
	for (int p = 0; p < 2; p++) {
		int kind = ma_imap_astring(parts[p], lens[p], buf, cap, &used);
		if (kind < 0) {
			rc = fail(im, MA_NO_MECH, "credentials cannot be sent with LOGIN", NULL, 0);
			goto out;
		}
		if (kind == 2) {
			/* Synchronizing literal: send up to "{N}", wait for "+". */
			memcpy(buf + used, "\r\n", 2);
			rc = send_line(im, buf, used + 2, p == 0 ? "LOGIN {literal}" : "LOGIN ... <redacted>");
			ma_wipe(buf, cap);
			used = 0;
			if (rc != MA_OK || (rc = read_line(im, &l)) != MA_OK)
				goto out;
			/* Not a verdict on the password: the server has not seen it. */
			if (l.kind != MA_IMAP_CONTINUATION) {
				rc = fail(im, MA_PROTOCOL, "literal refused", l.text, l.text_len);
				goto out;
			}
			memcpy(buf, parts[p], lens[p]);
			used = lens[p];
		}
		if (p == 0)
			buf[used++] = ' ';
	}
	memcpy(buf + used, "\r\n", 2);
	rc = send_line(im, buf, used + 2, "LOGIN <redacted>");
	if (rc != MA_OK || (rc = await_tagged(im, &l, NULL)) != MA_OK)
		goto out;
	if (code_is(&l, "ALERT"))
		ma_session_alert(s, l.text, l.text_len);
	if (l.status == MA_IMAP_OK) {
		rc = MA_OK;
	} else if (l.status == MA_IMAP_NO) {
		/* The password went out with the command: lib/codes.c tells a
		 * rejection from a temporary failure or a policy refusal. */
		int k = ma_imap_auth_reply(&l, true, &s->code_row);
		rc = k == MA_REPLY_TEMPFAIL ? MA_UNAVAILABLE : k == MA_REPLY_POLICY ? MA_POLICY
		                                                                     : MA_AUTH_FAILED;
		rc = fail(im, rc, rc == MA_UNAVAILABLE ? "server unavailable" : "server", l.text,
		          l.text_len);
	} else if (code_is(&l, "UNAVAILABLE")) {
		rc = fail(im, MA_UNAVAILABLE, "server unavailable", l.text, l.text_len);
	} else {
		rc = fail(im, MA_PROTOCOL, "LOGIN refused", l.text, l.text_len);
	}
out:
	ma_freezero(buf, cap);
	return rc;
}

static enum ma_err authenticate(struct imap *im)
{
	struct ma_session *s = im->s;
	const struct ma_caps *caps = &s->caps_tls;
	unsigned allowed = s->srv->mechanisms;
	unsigned char cb[64];
	struct ma_sasl_creds creds = {
		.authcid = s->login, .password = s->password, .password_len = s->password_len,
	};
	ma_session_channel_binding(s, &creds, cb, sizeof(cb));

	struct ma_sasl_proto proto = {
		.ctx = im,
		.initial_response = caps->sasl_ir,
		.begin = sasl_begin,
		.reply = sasl_reply,
		.respond = sasl_respond,
	};
	enum ma_mech used = MA_MECH_COUNT;    /* nothing tried yet */
	struct ma_sasl_policy policy = {
		.allowed = allowed, .fallback = s->cfg->mechanism_fallback && !s->no_fallback,
		.first = s->first_mech,
	};
	enum ma_err rc = ma_sasl_authenticate_policy(&proto, caps->mechs, &policy, &creds,
	                                             s->log, &used);
	s->fell_back = policy.fell_back;
	if (rc == MA_NO_MECH && (allowed & MA_MECH_BIT(MA_MECH_IMAP_LOGIN)) &&
	    !caps->logindisabled) {
		used = MA_MECH_IMAP_LOGIN;
		rc = login_command(im);
	} else if (rc == MA_NO_MECH && s->why[0] == '\0') {
		fail(im, rc, "no usable authentication mechanism", caps->text, strlen(caps->text));
	}
	s->mechanism = used;
	s->mechanism_set = used != MA_MECH_COUNT;
	ma_wipe(cb, sizeof(cb));
	return rc;
}

/*
 * forward_client_ip: RFC 2971 ID with Dovecot's "x-originating-ip" field
 * (honoured from login_trusted_networks), so that the server's own
 * brute-force protection and logs see the user's address, not ours.  Only
 * when the server advertises ID; its answer, whatever it is, changes
 * nothing about the login.  The address was checked and re-printed by
 * inet_ntop, so it needs no quoting beyond the DQUOTEs.
 */
static enum ma_err send_client_ip(struct imap *im)
{
	struct ma_session *s = im->s;
	struct ma_imap_line l;
	char cmd[128];

	if (!s->caps_tls.id) {
		ma_log(s->log, LOG_NOTICE, "forward_client_ip: server %s does not offer ID; "
		       "it sees this host's address", s->srv->name);
		return MA_OK;
	}
	snprintf(cmd, sizeof(cmd), "ID (\"x-originating-ip\" \"%s\")", s->client_ip);
	enum ma_err rc = command(im, cmd);
	if (rc == MA_OK)
		rc = await_tagged(im, &l, NULL);
	if (rc == MA_OK && l.status != MA_IMAP_OK)
		ma_log(s->log, LOG_NOTICE, "forward_client_ip: server %s refused ID", s->srv->name);
	return rc;
}

/* RFC 9051 6.1.3 LOGOUT, sent without waiting for its answer: the verdict
 * is known, and whatever the server still says changes nothing. */
static void logout(struct imap *im)
{
	char line[32];
	snprintf(im->tag, sizeof(im->tag), "a%u", ++im->tagno);
	int n = snprintf(line, sizeof(line), "%s LOGOUT\r\n", im->tag);
	(void)ma_session_send_last(im->s, line, (size_t)n, NULL);
}

enum ma_err ma_imap_session(struct ma_session *s)
{
	struct imap im = { .s = s };
	enum ma_err rc;

	if ((rc = greeting(&im, s->srv->tls == MA_TLS_STARTTLS ? &s->caps_plain
	                                                       : &s->caps_tls)) != MA_OK)
		goto out;
	if (s->srv->tls == MA_TLS_STARTTLS) {
		if ((rc = starttls(&im)) != MA_OK)
			goto out;
		/* SPEC 2 / RFC 9051 7.1: everything learned before TLS is discarded
		 * and asked again. */
		memset(&s->caps_tls, 0, sizeof(s->caps_tls));
	}
	if (!s->caps_tls.known && (rc = capability(&im, &s->caps_tls)) != MA_OK)
		goto out;
	if (s->probe) {
		ma_session_choose_for_probe(s, true);
		rc = MA_OK;
	} else {
		if (s->client_ip != NULL && s->srv->forward_client_ip &&
		    (rc = send_client_ip(&im)) != MA_OK)
			goto out;
		rc = authenticate(&im);
	}
	/* Say goodbye without waiting for the answer: the verdict is known. */
	if (rc == MA_OK || rc == MA_AUTH_FAILED || rc == MA_NO_MECH || rc == MA_POLICY)
		logout(&im);
out:
	return rc;
}
