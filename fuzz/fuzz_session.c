/*
 * fuzz_session.c - the whole IMAP and SMTP clients (ma_imap_session,
 * ma_smtp_session) against a scripted server: the fuzz input is what the
 * server says, written in advance into one end of a socketpair; the client
 * runs on the other end through the real stream (bounded line reader).
 * recv/send are wrapped (fault.c) to cut reads and writes into small
 * pieces and to fail one call; allocations can fail too.
 *
 * TLS never comes up here (the CA file does not exist), which makes the
 * STARTTLS case a test of failing closed: whatever the server says before
 * TLS, no authentication command and no credential may leave.
 *
 * Input: six header bytes, then the server's bytes.
 *   byte 0  bit 0 SMTP (else IMAP), bit 1 tls = starttls (else none),
 *           bit 2 probe mode, bit 3 mechanism_fallback, bit 4 a password
 *           with 8-bit bytes (IMAP literals), bit 5 helo_name configured,
 *           bit 6 debug log
 *   byte 1  mechanisms allowed (bit set of enum ma_mech; 0: the default)
 *   byte 2  recv returns at most this many bytes (0: no limit)
 *   byte 3  the recv/send call that fails (1-based; 0: none)
 *   byte 4  bits 0-1 its errno: EINTR, EAGAIN, ECONNRESET, EPIPE;
 *           bits 4-7 send writes at most this many bytes (0: no limit)
 *   byte 5  the allocation that fails (0: none)
 *
 * Invariants: see check_transcript and the end of LLVMFuzzerTestOneInput.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/tls1.h>

#include "base64.h"
#include "common.h"
#include "config.h"
#include "fault.h"
#include "imap.h"
#include "session.h"
#include "smtp.h"

#define USER "alice"
#define MAX_SCRIPT (70 * 1024)

static const char *const passwords[2] = { "Fuzz-S3cret!pw", "Fuzz-\xc3\xa9t\xc3\xa9-pw" };
/* base64 of the password and of the PLAIN message, per password */
static char pw_b64[2][64], plain_b64[2][64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fault_init();
	for (int i = 0; i < 2; i++) {
		char plain[64];
		size_t ulen = strlen(USER), plen = strlen(passwords[i]);
		EVP_EncodeBlock((unsigned char *)pw_b64[i], (const unsigned char *)passwords[i], (int)plen);
		plain[0] = '\0';
		memcpy(plain + 1, USER, ulen);
		plain[1 + ulen] = '\0';
		memcpy(plain + 2 + ulen, passwords[i], plen);
		EVP_EncodeBlock((unsigned char *)plain_b64[i], (const unsigned char *)plain,
		                (int)(2 + ulen + plen));
	}
	return 0;
}

/* What the client sent. */
struct transcript {
	char buf[256 * 1024];
	size_t len;
};

static void read_transcript(int fd, struct transcript *t)
{
	t->len = 0;
	for (;;) {
		ssize_t n = recv(fd, t->buf + t->len, sizeof(t->buf) - 1 - t->len, MSG_DONTWAIT);
		if (n <= 0)
			break;
		t->len += (size_t)n;
	}
	t->buf[t->len] = '\0';
}

/* true when a line of T starts with WORD (case-insensitive), after an
 * IMAP tag when IMAP is set. */
static bool has_command(const struct transcript *t, bool imap, const char *word)
{
	size_t wl = strlen(word);
	for (size_t i = 0; i < t->len;) {
		const char *line = t->buf + i;
		const char *end = memchr(line, '\n', t->len - i);
		size_t ll = end != NULL ? (size_t)(end - line) : t->len - i;
		const char *p = line;
		if (imap) {
			const char *sp = memchr(line, ' ', ll);
			p = sp != NULL ? sp + 1 : line + ll;
		}
		if ((size_t)(line + ll - p) >= wl && strncasecmp(p, word, wl) == 0)
			return true;
		i += ll + 1;
	}
	return false;
}

/* true when a line of the script carries (base64) a SCRAM server-first with
 * an iteration count too expensive for the fuzzer's budget. */
static bool expensive(const uint8_t *p, size_t n)
{
	struct fuzz_in in = { p, n };
	const uint8_t *line;
	size_t len;
	while (fuzz_next(&in, &line, &len)) {
		if (len > 0 && line[len - 1] == '\r')
			len--;
		size_t k = len;
		while (k > 0 && line[k - 1] != ' ')
			k--;
		unsigned char *raw = NULL;
		size_t rawlen = 0;
		if (ma_base64_decode((const char *)line + k, len - k, &raw, &rawlen) != 0)
			continue;
		long iter = fuzz_scram_iterations(raw, rawlen);
		free(raw);
		if (iter > FUZZ_SCRAM_MAX_ITER && iter <= 1000000)
			return true;
	}
	return false;
}

/* The start of the command whose send failed: the incomplete last line of
 * the transcript followed by the failed bytes. */
static bool failed_after_verdict(const struct transcript *t, const char *failed)
{
	char head[64];
	size_t start = t->len;
	while (start > 0 && t->buf[start - 1] != '\n')
		start--;
	size_t tail = t->len - start < 32 ? t->len - start : 32;
	snprintf(head, sizeof(head), "%.*s%s", (int)tail, t->buf + start, failed);
	return strstr(head, " LOGOUT") != NULL || strncmp(head, "QUIT", 4) == 0;
}

static void check_transcript(const struct transcript *t)
{
	/* Commands are lines: no NUL, no CR or LF outside a CRLF pair (a stray
	 * one would let server data or a credential split a command). */
	for (size_t i = 0; i < t->len; i++) {
		char c = t->buf[i];
		CHECK(c != '\0');
		if (c == '\r')
			CHECK(i + 1 == t->len || t->buf[i + 1] == '\n');
		if (c == '\n')
			CHECK(i > 0 && t->buf[i - 1] == '\r');
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int errnos[4] = { EINTR, EAGAIN, ECONNRESET, EPIPE };
	static struct transcript t;
	if (size < 6 || size - 6 > MAX_SCRIPT || expensive(data + 6, size - 6))
		return 0;
	bool smtp = data[0] & 1, starttls = data[0] & 2, probe = data[0] & 4;
	int pwi = (data[0] & 16) ? 1 : 0;
	const char *password = passwords[pwi];
	struct fault_plan plan = {
		.recv_chunk = data[2],
		.io_fail_at = data[3],
		.io_errno = errnos[data[4] & 3],
		.send_chunk = data[4] >> 4,
		.alloc_fail_at = data[5],
	};

	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	/* The whole server side in advance, then EOF. */
	const uint8_t *p = data + 6;
	size_t left = size - 6;
	while (left > 0) {
		ssize_t n = send(sv[1], p, left, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0)
			break;              /* the socket buffer is full: the rest is cut */
		p += n;
		left -= (size_t)n;
	}
	CHECK(shutdown(sv[1], SHUT_WR) == 0);
	/* Like ma_net_connect's sockets. */
	CHECK(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);

	unsigned allowed = data[1] != 0 ? data[1] : MA_MECH_DEFAULT_SET;
	if (smtp)
		allowed &= ~MA_MECH_BIT(MA_MECH_IMAP_LOGIN);
	if (allowed == 0)
		allowed = MA_MECH_BIT(MA_MECH_PLAIN);
	struct ma_server srv = {
		.name = (char *)"fuzz", .protocol = smtp ? MA_PROTO_SMTP : MA_PROTO_IMAP,
		.host = (char *)"127.0.0.1", .port = smtp ? 587 : 143,
		.tls = starttls ? MA_TLS_STARTTLS : MA_TLS_NONE,
		.verify_name = (char *)"127.0.0.1", .ca_file = (char *)"/nonexistent/fuzz-ca.pem",
		.mechanisms = allowed,
	};
	struct ma_config cfg = {
		.path = (char *)"fuzz", .timeout_ms = 5000, .tls_min_version = TLS1_2_VERSION,
		.login_format = (char *)"%u", .helo_name = (data[0] & 32) ? (char *)"client.example" : NULL,
		.mechanism_fallback = (data[0] & 8) != 0, .servers = &srv, .n_servers = 1,
	};
	struct ma_log log;
	struct fuzz_log fl;
	fuzz_log_init(&fl, &log, (data[0] & 64) != 0);
	/* Secrets must not reach the log, unless the server itself said them
	 * (server text is logged, escaped). */
	const char *secrets[3] = { password, pw_b64[pwi], plain_b64[pwi] };
	for (int i = 0; i < 3; i++)
		if (!fuzz_contains(data, size, secrets[i], strlen(secrets[i])))
			fuzz_log_forbid(&fl, secrets[i]);
	struct ma_deadline dl;
	ma_deadline_start(&dl, cfg.timeout_ms);
	struct ma_session s = {
		.cfg = &cfg, .srv = &srv, .log = &log, .dl = &dl,
		.tls = { .verify_name = srv.verify_name, .ca_file = srv.ca_file,
		         .min_version = cfg.tls_min_version },
		.login = probe ? "" : USER,
		.password = probe ? NULL : password,
		.password_len = probe ? 0 : strlen(password),
		.probe = probe,
	};

	fault_arm(&plan);
	enum ma_err rc = ma_stream_new(sv[0], &dl, &log, &s.stream);
	if (rc == MA_OK)
		rc = smtp ? ma_smtp_session(&s) : ma_imap_session(&s);
	struct fault_stats st = fault_disarm();
	bool tls_up = s.stream != NULL && ma_stream_tls(s.stream) != NULL;
	ma_stream_close(&s.stream);
	read_transcript(sv[1], &t);
	close(sv[1]);

	CHECK(!tls_up);
	check_transcript(&t);
	/* SPEC 2: the reason, for logs and the tool, is escaped text. */
	CHECK(memchr(s.why, '\0', sizeof(s.why)) != NULL);
	fuzz_log_check_text(&fl, s.why, strlen(s.why));
	CHECK(memchr(s.caps_tls.text, '\0', sizeof(s.caps_tls.text)) != NULL);
	CHECK(memchr(s.caps_plain.text, '\0', sizeof(s.caps_plain.text)) != NULL);

	bool auth_cmd = has_command(&t, !smtp, smtp ? "AUTH " : "AUTHENTICATE ") ||
	                (!smtp && has_command(&t, true, "LOGIN "));
	bool sent_secret = fuzz_contains(t.buf, t.len, password, strlen(password)) ||
	                   fuzz_contains(t.buf, t.len, pw_b64[pwi], strlen(pw_b64[pwi])) ||
	                   fuzz_contains(t.buf, t.len, plain_b64[pwi], strlen(plain_b64[pwi]));
	if (starttls || probe) {
		/* SPEC 1/2: no credential byte before TLS; a probe sends none. */
		CHECK(!auth_cmd && !sent_secret);
	}
	if (starttls && !probe)
		CHECK(rc != MA_OK);      /* no TLS, no success */
	if (rc == MA_OK && !probe) {
		/* Never a success without the server having seen the password:
		 * PREAUTH, a bare OK, a 235 out of turn are not authentication.
		 * SCRAM cannot succeed: the client nonce is random. */
		CHECK(auth_cmd && s.mechanism_set);
		CHECK(s.mechanism == MA_MECH_PLAIN || s.mechanism == MA_MECH_LOGIN ||
		      s.mechanism == MA_MECH_CRAM_MD5 || s.mechanism == MA_MECH_IMAP_LOGIN);
		if (s.mechanism != MA_MECH_CRAM_MD5)
			CHECK(sent_secret);
		CHECK((srv.mechanisms & MA_MECH_BIT(s.mechanism)) != 0);
	}
	/* Fail closed: an allocation that failed, or a connection that broke
	 * before the verdict, is never a success.  The LOGOUT / QUIT after
	 * the verdict is not awaited, so its loss does not count. */
	if (st.alloc_failures > 0 || st.fatal_recv_failure)
		CHECK(rc != MA_OK);
	if (st.fatal_send_failure && !failed_after_verdict(&t, st.failed_send))
		CHECK(rc != MA_OK);
	return 0;
}
