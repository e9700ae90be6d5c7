/*
 * smtp.c - just enough SMTP submission to authenticate (RFC 5321,
 * RFC 3207 STARTTLS, RFC 4954 AUTH): 220 greeting, EHLO, STARTTLS, EHLO
 * again, AUTH through the shared SASL engine, QUIT.  Never pipelines before
 * TLS; never sends a credential before the handshake; never falls back to
 * HELO; every reply is bounded (lines by the stream, replies here).
 */
#include "smtp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "names.h"
#include "sasl.h"
#include "secret.h"

/* RFC 4954 section 4: "the AUTH command is still subject to the line
 * length limitations defined in [SMTP]" and servers must accept 12288
 * octets for it.  Our user (255) and password (1024) limits stay far below;
 * this only guards against a future mechanism with a huge first message. */
#define AUTH_LINE_MAX 12288

struct smtp {
	struct ma_session *s;
	bool payload_sent;          /* credential-bearing data left in this exchange */
	bool idle;                  /* a complete reply was read, no command in flight */
};

/* ---- pure parsers ---- */

static bool word_is(const char *p, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(p, word, len) == 0;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int ma_smtp_parse_reply_line(const char *line, size_t len, int *code, bool *last,
                             const char **text, size_t *textlen)
{
	int rc = -1;

	*code = 0;
	*last = false;
	*text = NULL;
	*textlen = 0;
	if (line == NULL || len < 3)
		goto out;
	/* Reply-code = %x32-35 %x30-35 %x30-39 (RFC 5321 section 4.2). */
	if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
	    !is_digit(line[2]))
		goto out;
	if (len == 3) {
		/* "Reply-code [ SP textstring ] CRLF": a bare code is a valid
		 * last line (no text). */
		*last = true;
		*text = line + 3;
	} else if (line[3] == ' ' || line[3] == '-') {
		/* A continuation line is "Reply-code "-" [ textstring ]"; a last
		 * line "Reply-code SP textstring".  "250 " with nothing after the
		 * SP is accepted as an empty text: it carries no meaning. */
		*last = line[3] == ' ';
		*text = line + 4;
		*textlen = len - 4;
	} else {
		goto out;     /* "250x", "2500", "250\t": no separator */
	}
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	rc = 0;
out:
	return rc;
}

void ma_smtp_reply_init(struct ma_smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
}

/* Append one line's TEXT to R->joined (see struct ma_smtp_reply). */
static void join_text(struct ma_smtp_reply *r, const char *text, size_t len)
{
	size_t cap = sizeof(r->joined) - 1;
	if (r->lines == 1) {
		r->enhanced_len = ma_codes_enhanced(text, len, (char)('0' + r->code / 100));
	} else {
		size_t e = r->enhanced_len;
		if (e > 0 && len >= e && memcmp(text, r->joined, e) == 0 && (len == e || text[e] == ' ')) {
			text += e;
			len -= e;
		}
		while (len > 0 && *text == ' ') {
			text++;
			len--;
		}
		if (len == 0 || r->joined_len + 1 >= cap)
			return;
		r->joined[r->joined_len++] = ' ';
	}
	if (len > cap - r->joined_len)
		len = cap - r->joined_len;
	memcpy(r->joined + r->joined_len, text, len);
	r->joined_len += len;
	r->joined[r->joined_len] = '\0';
}

int ma_smtp_reply_add(struct ma_smtp_reply *r, const char *line, size_t len)
{
	int rc = -1;
	int code;
	bool last;
	const char *text;
	size_t textlen;

	if (r->complete)
		goto out;
	if (ma_smtp_parse_reply_line(line, len, &code, &last, &text, &textlen) != 0)
		goto out;
	/* RFC 5321 section 4.2.1: "In a multiline reply, the reply code on each
	 * of the lines MUST be the same." */
	if (r->lines > 0 && code != r->code)
		goto out;
	/* SPEC 2: the total reply is bounded; an endless "250-" stream is an
	 * attack on our time and memory, not a capability list. */
	if (r->lines >= MA_SMTP_REPLY_MAX_LINES || len + 2 > MA_SMTP_REPLY_MAX_BYTES - r->bytes)
		goto out;
	r->code = code;
	r->lines++;
	r->bytes += len + 2;
	r->text = text;
	r->text_len = textlen;
	r->complete = last;
	join_text(r, text, textlen);
	rc = last ? 1 : 0;
out:
	return rc;
}

/* Append LEN bytes of server text to CAPS->text, escaped, space-separated. */
static void caps_text_append(struct ma_caps *caps, const char *p, size_t len)
{
	size_t used = strlen(caps->text);
	if (used + 2 >= sizeof(caps->text))
		return;
	if (used > 0)
		caps->text[used++] = ' ';
	ma_escape(caps->text + used, sizeof(caps->text) - used, p, len);
}

int ma_smtp_parse_ehlo_line(const char *text, size_t len, struct ma_caps *caps)
{
	int rc = -1;
	size_t i = 0;

	caps->known = true;
	caps_text_append(caps, text, len);
	/* ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
	 * (RFC 5321 section 4.1.1.1); it ends at SP, or at "=" for the
	 * pre-standard "AUTH=PLAIN LOGIN" form that old clients needed. */
	while (i < len && (is_alnum(text[i]) || (i > 0 && text[i] == '-')))
		i++;
	if (i == 0 || (i < len && text[i] != ' ' && text[i] != '='))
		goto out;
	const char *kw = text;
	size_t kwlen = i;
	bool legacy = i < len && text[i] == '=';

	if (word_is(kw, kwlen, "XCLIENT") && !legacy) {
		caps->xclient = true;
	} else if (word_is(kw, kwlen, "STARTTLS") && !legacy) {
		/* RFC 3207 section 4: "The STARTTLS keyword is used to tell the
		 * SMTP client that the SMTP server is currently able to negotiate
		 * the use of TLS.  It takes no parameters." */
		caps->starttls = true;
	} else if (word_is(kw, kwlen, "AUTH")) {
		/* RFC 4954 section 3: "AUTH" SP mechanism *(SP mechanism); the
		 * legacy form puts "=" in place of the first SP.  Each token is
		 * matched exactly (SPEC 3). */
		caps->auth = true;
		/* RFC 4954 section 4: the initial response is always allowed. */
		caps->sasl_ir = true;
		while (i < len) {
			i++;  /* the SP or "=" */
			size_t start = i;
			while (i < len && text[i] != ' ')
				i++;
			if (i > start) {
				int m = ma_sasl_mech_from_token(text + start, i - start);
				if (m >= 0)
					caps->mechs |= MA_MECH_BIT(m);
			}
		}
	}
	rc = 0;
out:
	return rc;
}

int ma_smtp_auth_reply_kind(int code, bool payload_sent)
{
	/* RFC 4954 section 4 and 6: 334 carries a challenge, 235 ends it well;
	 * every other reply is read through the table of lib/codes.c, here
	 * without a text (no enhanced code, no provider row): 535 rejected,
	 * 504 next mechanism, 534 and 432 too weak, 538 and 530 policy, other
	 * 4xx temporary, other 5xx rejected once a credential went out. */
	struct ma_smtp_reply r;
	const struct ma_code_row *row;
	ma_smtp_reply_init(&r);
	r.code = code;
	return ma_smtp_auth_reply(&r, payload_sent, &row);
}

int ma_smtp_auth_reply(const struct ma_smtp_reply *r, bool payload_sent,
                       const struct ma_code_row **row)
{
	*row = NULL;
	if (r->code == 334)
		return MA_REPLY_CHALLENGE;
	if (r->code == 235)
		return MA_REPLY_SUCCESS;
	/* RFC 4954 section 6 and the providers' replies, in lib/codes.c. */
	*row = ma_codes_smtp(r->code, r->joined, r->joined_len, payload_sent);
	return *row != NULL ? ma_codes_sasl_reply(*row) : -1;
}

static int address_literal(const struct sockaddr *sa, socklen_t salen, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];
	int n = -1;

	if (sa != NULL && sa->sa_family == AF_INET && salen >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		if (inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr)) != NULL)
			n = snprintf(buf, len, "[%s]", addr);
	} else if (sa != NULL && sa->sa_family == AF_INET6 &&
	           salen >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr)) != NULL)
			n = snprintf(buf, len, "[IPv6:%s]", addr);
	} else {
		n = snprintf(buf, len, "[127.0.0.1]");
	}
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int ma_smtp_helo_name(const char *configured, const char *hostname,
                      const struct sockaddr *local, socklen_t local_len,
                      char *buf, size_t len)
{
	int rc = -1;

	if (len == 0)
		goto out;
	buf[0] = '\0';
	if (configured != NULL && configured[0] != '\0') {
		size_t clen = strlen(configured);
		/* A configured name goes on the wire as is: refuse anything that
		 * could split the command or is not a name (CR, LF, SP...). */
		if (!ma_valid_domain(configured, clen) &&
		    !ma_valid_address_literal(configured, clen))
			goto out;
		if (clen >= len)
			goto out;
		memcpy(buf, configured, clen + 1);
		rc = 0;
		goto out;
	}
	/* RFC 5321 4.1.1.1: "the domain name given in the EHLO command MUST be
	 * either a primary host name ... or, if the host has no name, an
	 * address literal".  We take gethostname() as it is, dotted or not:
	 * canonicalising it (getaddrinfo AI_CANONNAME) is a DNS lookup that may
	 * block outside our deadline, and submission servers take any
	 * well-formed name from an authenticating client.  A name that is not
	 * even well-formed is replaced by the literal of our own address. */
	if (hostname != NULL && ma_valid_domain(hostname, strlen(hostname)) &&
	    strlen(hostname) < len) {
		memcpy(buf, hostname, strlen(hostname) + 1);
		rc = 0;
		goto out;
	}
	rc = address_literal(local, local_len, buf, len);
out:
	return rc;
}

/* ---- the dialogue ---- */

static enum ma_err fail(struct smtp *sm, enum ma_err err, const char *what,
                        const char *detail, size_t dlen)
{
	return ma_session_fail(sm->s, err, what, detail, dlen);
}

/* Every write leaves the command boundary until a reply completes. */
static enum ma_err send_line(struct smtp *sm, const char *line, size_t len,
                             const char *shown)
{
	sm->idle = false;
	return ma_session_send(sm->s, line, len, shown);
}

static enum ma_err command(struct smtp *sm, const char *cmd)
{
	char line[MA_SMTP_HELO_MAX + 16];
	int n = snprintf(line, sizeof(line), "%s\r\n", cmd);
	if (n < 0 || (size_t)n >= sizeof(line))
		return MA_INTERNAL;
	return send_line(sm, line, (size_t)n, NULL);
}

/*
 * Read one complete reply into R.  With CAPS, the lines after the first
 * are EHLO keywords and are parsed into it (the caller discards CAPS when
 * the code is not 250).  R->text is the last line's text, valid until the
 * next read.
 */
static enum ma_err read_reply(struct smtp *sm, struct ma_smtp_reply *r, struct ma_caps *caps)
{
	ma_smtp_reply_init(r);
	for (;;) {
		const char *line;
		size_t len;
		enum ma_err rc = ma_stream_read_line(sm->s->stream, &line, &len);
		if (rc == MA_PROTOCOL)
			return fail(sm, rc, "malformed or over-long line from server", NULL, 0);
		if (rc == MA_TIMEOUT)
			return fail(sm, rc, "timed out waiting for the server", NULL, 0);
		if (rc != MA_OK)
			return fail(sm, rc, "connection closed by server", NULL, 0);
		char esc[300];
		ma_debug(sm->s->log, "S: %s", ma_escape(esc, sizeof(esc), line, len));
		int added = ma_smtp_reply_add(r, line, len);
		if (added < 0) {
			if (r->lines >= MA_SMTP_REPLY_MAX_LINES ||
			    len + 2 > MA_SMTP_REPLY_MAX_BYTES - r->bytes)
				return fail(sm, MA_PROTOCOL, "reply too long", NULL, 0);
			return fail(sm, MA_PROTOCOL, "malformed reply", line, len);
		}
		if (caps != NULL && r->lines > 1)
			(void)ma_smtp_parse_ehlo_line(r->text, r->text_len, caps);
		if (added == 1) {
			sm->idle = true;
			return MA_OK;
		}
	}
}

static enum ma_err greeting(struct smtp *sm)
{
	struct ma_smtp_reply r;
	enum ma_err rc = read_reply(sm, &r, NULL);
	if (rc != MA_OK)
		return rc;
	/* RFC 5321 section 3.1 / 4.3.2: the greeting is 220; 554 means "no SMTP
	 * service here", and a 421 asks us to come back later.  SPEC 2: a
	 * greeting that is not a well-formed 220 is a failure. */
	if (r.code != 220)
		return fail(sm, MA_UNAVAILABLE, "server refused the connection", r.text, r.text_len);
	return MA_OK;
}

static enum ma_err ehlo(struct smtp *sm, struct ma_caps *caps)
{
	struct ma_session *s = sm->s;
	char name[MA_SMTP_HELO_MAX];
	char host[MA_SMTP_HELO_MAX];
	char cmd[MA_SMTP_HELO_MAX + 8];
	struct ma_smtp_reply r;
	enum ma_err rc;

	memset(caps, 0, sizeof(*caps));
	memset(host, 0, sizeof(host));
	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = '\0';
	/* A host name that is not a valid domain falls back to the literal of
	 * our own address on this connection (see ma_smtp_helo_name). */
	struct sockaddr_storage local;
	socklen_t local_len = 0;
	const struct sockaddr *lp = NULL;
	if (ma_stream_local_address(s->stream, &local, &local_len) == 0)
		lp = (const struct sockaddr *)&local;
	if (ma_smtp_helo_name(s->cfg->helo_name, host, lp, local_len, name, sizeof(name)) != 0)
		return fail(sm, MA_CONFIG, "helo_name is not a valid domain or address literal",
		            NULL, 0);
	snprintf(cmd, sizeof(cmd), "EHLO %s", name);
	if ((rc = command(sm, cmd)) != MA_OK)
		return rc;
	if ((rc = read_reply(sm, &r, caps)) != MA_OK)
		return rc;
	if (r.code == 250) {
		caps->known = true;
		return MA_OK;
	}
	memset(caps, 0, sizeof(*caps));
	/* SPEC 2: a server that rejects EHLO is a failure; HELO is never a
	 * fallback (it cannot offer STARTTLS or AUTH anyway). */
	if (r.code >= 400 && r.code < 500)
		return fail(sm, MA_UNAVAILABLE, "EHLO refused (temporary)", r.text, r.text_len);
	return fail(sm, MA_PROTOCOL, "EHLO refused", r.text, r.text_len);
}

static enum ma_err starttls(struct smtp *sm)
{
	struct ma_session *s = sm->s;
	struct ma_smtp_reply r;
	enum ma_err rc;

	/* SPEC 2: STARTTLS missing is AUTHINFO_UNAVAIL, never plaintext. */
	if (!s->caps_plain.starttls)
		return fail(sm, MA_UNAVAILABLE, "server does not offer STARTTLS", NULL, 0);
	if ((rc = command(sm, "STARTTLS")) != MA_OK)
		return rc;
	if ((rc = read_reply(sm, &r, NULL)) != MA_OK)
		return rc;
	/* RFC 3207 section 4: "220 Ready to start TLS"; 501 and 454 (and
	 * anything else) mean no TLS, so no authentication. */
	if (r.code != 220)
		return fail(sm, MA_UNAVAILABLE, "server refused STARTTLS", r.text, r.text_len);
	/* The stream refuses bytes buffered after this reply (RFC 3207 4.2
	 * response injection) before the handshake. */
	sm->idle = false;
	return ma_stream_start_tls(s->stream, &s->tls, s->why, sizeof(s->why));
}

/* ---- SASL adapter ---- */

static enum ma_err sasl_begin(void *ctx, const char *mech, const char *ir)
{
	struct smtp *sm = ctx;
	char head[64];
	int n = snprintf(head, sizeof(head), "AUTH %s", mech);
	if (n < 0 || (size_t)n >= sizeof(head))
		return MA_INTERNAL;
	sm->payload_sent = ir != NULL;
	sm->s->code_row = NULL;      /* a new command, a new answer */
	if (ir == NULL) {
		char line[80];
		n = snprintf(line, sizeof(line), "%s\r\n", head);
		return send_line(sm, line, (size_t)n, NULL);
	}
	/* RFC 4954 section 4: AUTH mechanism [SP initial-response], "=" for an
	 * empty one (the engine passes "=" already). */
	sm->idle = false;
	return ma_session_send_secret(sm->s, head, ir, AUTH_LINE_MAX);
}

static enum ma_err sasl_respond(void *ctx, const char *b64)
{
	struct smtp *sm = ctx;
	/* RFC 4954 section 4: "If the client wishes to cancel the
	 * authentication exchange, it issues a line with a single '*'." */
	if (strcmp(b64, "*") == 0)
		return send_line(sm, "*\r\n", 3, NULL);
	sm->payload_sent = true;
	sm->idle = false;
	return ma_session_send_secret(sm->s, NULL, b64, AUTH_LINE_MAX);
}

static enum ma_err sasl_reply(void *ctx, enum ma_sasl_reply *kind, const char **text, size_t *len)
{
	struct smtp *sm = ctx;
	struct ma_smtp_reply r;
	enum ma_err rc = read_reply(sm, &r, NULL);
	if (rc != MA_OK)
		return rc;
	int k = ma_smtp_auth_reply(&r, sm->payload_sent, &sm->s->code_row);
	if (k < 0)
		return fail(sm, MA_PROTOCOL, "unexpected reply to AUTH", r.text, r.text_len);
	if (k == MA_REPLY_CHALLENGE) {
		/* RFC 4954 section 4: "A server challenge is sent as a 334 reply
		 * with the text part containing the [BASE64] encoded string": one
		 * line, so a multi-line 334 is out of sequence. */
		if (r.lines != 1)
			return fail(sm, MA_PROTOCOL, "multi-line 334 challenge", NULL, 0);
		/* A challenge is a step inside the exchange: not a place to QUIT. */
		sm->idle = false;
		*text = r.text;
		*len = r.text_len;
	} else if (k != MA_REPLY_SUCCESS) {
		char esc[200];
		snprintf(sm->s->why, sizeof(sm->s->why), "server: %d %s", r.code,
		         ma_escape(esc, sizeof(esc), r.joined, r.joined_len));
	}
	*kind = (enum ma_sasl_reply)k;
	return MA_OK;
}

static enum ma_err authenticate(struct smtp *sm)
{
	struct ma_session *s = sm->s;
	const struct ma_caps *caps = &s->caps_tls;
	unsigned char cb[64] = {0};
	enum ma_err rc = MA_NO_MECH;
	struct ma_sasl_creds creds = {
		.authcid = s->login, .password = s->password, .password_len = s->password_len,
	};

	/* SPEC 4: no AUTH after TLS is "no usable mechanism", never a success
	 * without authentication. */
	if (!caps->auth) {
		rc = fail(sm, MA_NO_MECH, "server does not offer AUTH", caps->text, strlen(caps->text));
		goto out;
	}
	ma_session_channel_binding(s, &creds, cb, sizeof(cb));

	struct ma_sasl_proto proto = {
		.ctx = sm,
		/* RFC 4954 section 4: the initial response is part of the AUTH
		 * extension itself, no separate capability is needed. */
		.initial_response = true,
		.begin = sasl_begin,
		.reply = sasl_reply,
		.respond = sasl_respond,
	};
	enum ma_mech tried = MA_MECH_COUNT;    /* nothing tried yet */
	struct ma_sasl_policy policy = {
		.allowed = s->srv->mechanisms,
		.fallback = s->cfg->mechanism_fallback && !s->no_fallback,
		.first = s->first_mech,
	};
	rc = ma_sasl_authenticate_policy(&proto, caps->mechs, &policy, &creds, s->log, &tried);
	s->fell_back = policy.fell_back;
	if (tried != MA_MECH_COUNT) {
		s->mechanism = tried;
		s->mechanism_set = true;
	}
	if (rc == MA_NO_MECH && tried == MA_MECH_COUNT)
		fail(sm, rc, "no usable authentication mechanism", caps->text, strlen(caps->text));
	else if (rc != MA_OK && s->why[0] == '\0')
		fail(sm, rc, rc == MA_NO_MECH ? "every mechanism was refused"
		                              : "authentication exchange failed", NULL, 0);
out:
	ma_wipe(cb, sizeof(cb));
	return rc;
}

/*
 * forward_client_ip: Postfix's XCLIENT (XCLIENT_README), allowed from
 * smtpd_authorized_xclient_hosts, so that the server's logs and anvil
 * limits see the user's address.  Only over TLS and only when offered;
 * "XCLIENT ADDR=..." is answered with a new 220 greeting, after which
 * the client starts again with EHLO (the session, and TLS, stay).  A
 * refusal (550 insufficient authorization) changes nothing about the
 * login: the server then sees this host's address.
 */
static enum ma_err send_client_ip(struct smtp *sm)
{
	struct ma_session *s = sm->s;
	struct ma_smtp_reply r;
	char cmd[128];
	enum ma_err rc;

	if (!s->caps_tls.xclient) {
		ma_log(s->log, LOG_NOTICE, "forward_client_ip: server %s does not offer XCLIENT; "
		       "it sees this host's address", s->srv->name);
		return MA_OK;
	}
	/* XCLIENT_README: "ADDR=IPV6:address" for IPv6. */
	snprintf(cmd, sizeof(cmd), "XCLIENT ADDR=%s%s", strchr(s->client_ip, ':') ? "IPV6:" : "",
	         s->client_ip);
	if ((rc = command(sm, cmd)) != MA_OK || (rc = read_reply(sm, &r, NULL)) != MA_OK)
		return rc;
	if (r.code != 220) {
		ma_log(s->log, LOG_NOTICE, "forward_client_ip: server %s refused XCLIENT: %d",
		       s->srv->name, r.code);
		return MA_OK;
	}
	/* A new session: what the last EHLO said is forgotten and asked again. */
	return ehlo(sm, &s->caps_tls);
}

enum ma_err ma_smtp_session(struct ma_session *s)
{
	struct smtp sm = { .s = s };
	enum ma_err rc = MA_INTERNAL;

	if ((rc = greeting(&sm)) != MA_OK)
		goto out;
	if (s->srv->tls == MA_TLS_STARTTLS) {
		if ((rc = ehlo(&sm, &s->caps_plain)) != MA_OK)
			goto out;
		if ((rc = starttls(&sm)) != MA_OK)
			goto out;
		/* RFC 3207 section 4.2: "The client MUST discard any knowledge
		 * obtained from the server, such as the list of SMTP service
		 * extensions, which was not obtained from the TLS negotiation
		 * itself.  The client SHOULD send an EHLO command as the first
		 * command after a successful TLS negotiation." */
		memset(&s->caps_tls, 0, sizeof(s->caps_tls));
	}
	if ((rc = ehlo(&sm, &s->caps_tls)) != MA_OK)
		goto out;
	if (s->probe) {
		/* SMTP has no LOGIN command; no AUTH keyword, no mechanism. */
		if (s->caps_tls.auth)
			ma_session_choose_for_probe(s, false);
		rc = MA_OK;
	} else {
		if (s->client_ip != NULL && s->srv->forward_client_ip &&
		    (rc = send_client_ip(&sm)) != MA_OK)
			goto out;
		rc = authenticate(&sm);
	}
out:
	/* RFC 5321 4.1.1.10: end with QUIT; the verdict is known, so the
	 * "221" is not awaited.  Only at a command boundary: never in the
	 * middle of a reply, an exchange or a failed STARTTLS. */
	if (sm.idle)
		(void)ma_session_send_last(s, "QUIT\r\n", 6, NULL);
	return rc;
}
