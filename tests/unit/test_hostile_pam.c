/*
 * test_hostile_pam.c - hostile IMAP and SMTP servers through the REAL PAM
 * stack (issue "[4/6] Proof of failing closed", item 1).
 *
 * Every row of the table below starts one scripted server
 * (tests/fake/fake_more.py, which adds scenarios to fakeserver.py and
 * fake_smtp.py), points a private PAM service (pam_start_confdir) with the
 * built ./pam_mailauth.so at it (timeout = 3) and asserts:
 *   - the exact PAM code of SPEC 4 (PAM_AUTHINFO_UNAVAIL for every
 *     unavailable / TLS / protocol / timeout / no-mechanism case,
 *     PAM_AUTH_ERR for rejections, PAM_SUCCESS only on the control rows);
 *   - no credential byte before TLS: neither the password nor any base64
 *     form of it (every alignment), nor an AUTH / LOGIN command;
 *   - rows marked NO_LOGIN: the password never reached the server at all;
 *   - the time pam_authenticate() took: <= 3.5 s always, >= 2.5 s for the
 *     silent and dripping servers (the deadline, not a shortcut), and
 *     <= 1.5 s for every other row: a flood, an endless reply, an over-long
 *     line must be stopped by the rule that caps it, not by the deadline
 *     (without this bound such a row would pass in 3.0 s all the same);
 *   - the server saw no rule broken (fake server exit status 0, or 4 when its
 *     handshake failed; rows with a bad certificate or an old TLS version
 *     must end in 4 with no application data);
 *   - exactly one password prompt;
 *   - the same descriptors open after pam_end as before pam_start (SPEC 7).
 * The rows whose server answers before the command was sent (presend_*,
 * 235-before-*) use the wrong password: a client that takes the early
 * "OK" / "235" as the verdict turns it into PAM_SUCCESS.
 *
 * The rows run in parallel worker processes before the check suite (a
 * silent row costs the full 3 s); each check test then asserts one row.
 * MA_HOSTILE_JOBS sets the number of workers (default 8).  The table of
 * results goes to stderr when a row failed or MA_FAKE_VERBOSE is set.
 * Then the weak-TLS controls (see there) run one by one;
 * CK_RUN_CASE=weak_tls_controls runs only them.
 *
 * Needs MA_TEST_CERTS (tests/run-tests.sh exports it; else fake.h makes
 * the PKI) and the built pam_mailauth.so at the repository root.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <security/pam_appl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "base64.h"
#include "unit.h"
#include "fake.h"
#include "tlsflood.h"

#define TIMEOUT_S 3                   /* `timeout` in every configuration here */
#define MAX_MS 3500                   /* no row may take longer */
#define SLOW_MIN_MS 2500              /* silent / drip rows: the deadline ended them */
#define FAST_MAX_MS 1500              /* every other row: a rule ended it, not the deadline */
#define SERVER_WAIT_MS 10000          /* fake_finish: then the server is killed */
#define ROW_ALARM_S 45                /* a worker that hangs is killed by SIGALRM */
#define TRANSCRIPT_MAX 6000
#define USER "alice"
#define PASS "Gl4ss-H0use-77"         /* what the fake servers accept */
#define WRONG "N0t-The-Pw-88z"        /* the wrong password of the AUTH_ERR rows */

enum { P_IMAP, P_SMTP };

/* Row flags. */
#define SLOW 0x01u         /* silent or dripping: must run into the deadline; rows
                            * without it must end within FAST_MAX_MS */
#define NO_LOGIN 0x02u     /* the password must not reach the server at all */
#define HS_FAIL 0x04u      /* the server's handshake must fail, no application data */
#define WRONG_PW 0x08u     /* the client uses WRONG */

struct row {
	const char *name;      /* IMAP scenario, or SMTP label */
	int proto;
	const char *mode;      /* implicit | starttls */
	int want;              /* PAM code */
	unsigned flags;
	const char *script;    /* SMTP: the fake_smtp.py script */
	const char *cert;      /* NULL: the good server certificate */
	const char *tls_max;   /* NULL: 1.3 */
	const char *verify_name; /* NULL: none, the host (127.0.0.1) is checked */
};

#define IMAP(n, m, w, f) { n, P_IMAP, m, w, f, NULL, NULL, NULL, NULL }
#define IMAP_CERT(m, c) { "good_" m, P_IMAP, m, PAM_AUTHINFO_UNAVAIL, NO_LOGIN | HS_FAIL, \
                          NULL, c, NULL, NULL }
#define IMAP_OLD(m, v) { "good_" m, P_IMAP, m, PAM_AUTHINFO_UNAVAIL, NO_LOGIN | HS_FAIL, \
                         NULL, NULL, v, NULL }
/* Certificate C (NULL: the good one) checked against verify_name = VN. */
#define IMAP_NAME(m, c, vn, w, f) { "good_" m, P_IMAP, m, w, f, NULL, c, NULL, vn }
#define SMTP(n, m, w, f, s) { n, P_SMTP, m, w, f, s, NULL, NULL, NULL }
#define SMTP_CERT(m, c, s) { "good", P_SMTP, m, PAM_AUTHINFO_UNAVAIL, NO_LOGIN | HS_FAIL, \
                             s, c, NULL, NULL }
#define SMTP_OLD(m, v, s) { "good", P_SMTP, m, PAM_AUTHINFO_UNAVAIL, NO_LOGIN | HS_FAIL, \
                            s, NULL, v, NULL }
#define SMTP_NAME(m, c, vn, w, f, s) { "good", P_SMTP, m, w, f, s, c, NULL, vn }

#define UNAVAIL PAM_AUTHINFO_UNAVAIL

/* SMTP script pieces (fake_smtp.py directives; \\r\\n is unescaped by the
 * server, so "send A\\r\\nB" is two reply lines in one write). */
#define GREET "send 220 fake.test ESMTP ready\n"
#define EHLO_STARTTLS \
	"expect EHLO \n" \
	"send 250-fake.test hello\\r\\n250-PIPELINING\\r\\n250 STARTTLS\n"
#define STARTTLS_GO "expect= STARTTLS\nsend 220 2.0.0 Ready to start TLS\ntls\n"
#define UP_I "tls\n" GREET                                /* implicit: up to EHLO */
#define UP_S GREET EHLO_STARTTLS STARTTLS_GO              /* STARTTLS: up to EHLO */
#define EHLO_TLS(caps) "expect EHLO \nsend 250-fake.test hello\\r\\n" caps "\n"
#define PLAIN_OK "expect= AUTH PLAIN {PLAIN}\nsend 235 2.7.0 Authentication successful\n"
#define REJECT "expect AUTH PLAIN \nsend 535 5.7.8 Authentication credentials invalid\n"
#define QUIT "expect= QUIT\n"
/* QUIT never answered, the connection open and silent for 4 s (longer than the
 * deadline): with FAST_MAX_MS the row proves that the client did not wait for the
 * 221 (SPEC 2).  "sleep" ends early, status 0, when the client closes. */
#define QUIT_LINGER "expect= QUIT\nsleep 4\nclose\n"
#define GOOD_I UP_I EHLO_TLS("250 AUTH PLAIN LOGIN") PLAIN_OK QUIT_LINGER
#define GOOD_S UP_S EHLO_TLS("250 AUTH PLAIN LOGIN") PLAIN_OK QUIT_LINGER

static const struct row rows[] = {
	/* ==== IMAP ==================================================================== */
	/* Controls: the server's verdict, and nothing else, decides.  Their server
	 * never answers LOGOUT and stays open for 4 s: under FAST_MAX_MS they prove
	 * that the client does not wait for the reply (SPEC 2), and the server's
	 * status that LOGOUT was sent at all. */
	IMAP("logout_silent", "implicit", PAM_SUCCESS, 0),
	IMAP("logout_silent", "starttls", PAM_SUCCESS, 0),
	IMAP("logout_silent", "implicit", PAM_AUTH_ERR, WRONG_PW),
	IMAP("logout_silent", "starttls", PAM_AUTH_ERR, WRONG_PW),
	IMAP("authfail", "implicit", PAM_AUTH_ERR, 0),
	IMAP("authfail", "starttls", PAM_AUTH_ERR, 0),
	/* Capabilities differ before and after TLS: only the later ones count. */
	IMAP("caps_differ", "starttls", PAM_SUCCESS, 0),
	IMAP("logindisabled_after_tls", "starttls", UNAVAIL, NO_LOGIN),
	/* STARTTLS stripped, refused, injected into. */
	IMAP("starttls_stripped", "starttls", UNAVAIL, NO_LOGIN),
	IMAP("starttls_refused", "starttls", UNAVAIL, NO_LOGIN),
	IMAP("starttls_refused_bad", "starttls", UNAVAIL, NO_LOGIN),
	IMAP("starttls_injected", "starttls", UNAVAIL, NO_LOGIN),
	IMAP("starttls_injected_late", "starttls", UNAVAIL, NO_LOGIN),
	/* Greetings: PREAUTH, BYE, tagged, not IMAP at all, referral. */
	IMAP("preauth", "implicit", UNAVAIL, NO_LOGIN),
	IMAP("preauth", "starttls", UNAVAIL, NO_LOGIN),
	IMAP("bye_greeting", "implicit", UNAVAIL, NO_LOGIN),
	IMAP("bye_greeting", "starttls", UNAVAIL, NO_LOGIN),
	IMAP("bad_greeting", "implicit", UNAVAIL, NO_LOGIN),
	IMAP("bad_greeting", "starttls", UNAVAIL, NO_LOGIN),
	IMAP("tagged_greeting", "implicit", UNAVAIL, NO_LOGIN),
	IMAP("tagged_greeting", "starttls", UNAVAIL, NO_LOGIN),
	IMAP("smtp_greeting", "implicit", UNAVAIL, NO_LOGIN),
	IMAP("smtp_greeting", "starttls", UNAVAIL, NO_LOGIN),
	IMAP("ssh_greeting", "implicit", UNAVAIL, NO_LOGIN),
	IMAP("ssh_greeting", "starttls", UNAVAIL, NO_LOGIN),
	IMAP("nul_greeting", "implicit", UNAVAIL, NO_LOGIN),
	IMAP("nul_greeting", "starttls", UNAVAIL, NO_LOGIN),
	IMAP("referral_greeting", "implicit", UNAVAIL, NO_LOGIN),
	IMAP("referral_greeting", "starttls", UNAVAIL, NO_LOGIN),
	/* Referrals and tags in the answer to AUTHENTICATE. */
	IMAP("referral", "implicit", UNAVAIL, 0),
	IMAP("referral", "starttls", UNAVAIL, 0),
	IMAP("referral_ok", "implicit", UNAVAIL, 0),
	IMAP("wrong_tag", "implicit", UNAVAIL, 0),
	IMAP("wrong_tag", "starttls", UNAVAIL, 0),
	IMAP("missing_tag", "implicit", UNAVAIL, 0),
	IMAP("untagged_verdict", "implicit", UNAVAIL, 0),
	IMAP("old_tag", "implicit", UNAVAIL, 0),
	/* A tagged OK that arrives before the command it would answer. */
	IMAP("presend_ok", "implicit", UNAVAIL, WRONG_PW),
	IMAP("presend_ok", "starttls", UNAVAIL, WRONG_PW),
	IMAP("presend_ok_greeting", "implicit", UNAVAIL, WRONG_PW),
	/* ... before TLS: it would pass for the answer to STARTTLS. */
	IMAP("presend_ok_greeting", "starttls", UNAVAIL, WRONG_PW),
	IMAP("presend_ok_continuation", "implicit", UNAVAIL, WRONG_PW),
	/* Temporary failures. */
	IMAP("unavailable", "implicit", UNAVAIL, 0),
	IMAP("unavailable", "starttls", UNAVAIL, 0),
	IMAP("bye_during_auth", "implicit", UNAVAIL, 0),
	/* Over-long lines, endless untagged lines. */
	IMAP("overlong_line", "implicit", UNAVAIL, NO_LOGIN),
	IMAP("overlong_line", "starttls", UNAVAIL, NO_LOGIN),
	IMAP("overlong_verdict", "implicit", UNAVAIL, 0),
	IMAP("endless_untagged_caps", "implicit", UNAVAIL, NO_LOGIN),
	IMAP("endless_untagged_caps", "starttls", UNAVAIL, NO_LOGIN),
	IMAP("endless_untagged_auth", "implicit", UNAVAIL, 0),
	/* Silent, dripping, resetting: greeting. */
	IMAP("silent", "starttls", UNAVAIL, SLOW | NO_LOGIN),
	IMAP("greeting_silent", "implicit", UNAVAIL, SLOW | NO_LOGIN),
	IMAP("drip", "implicit", UNAVAIL, SLOW | NO_LOGIN),
	IMAP("drip", "starttls", UNAVAIL, SLOW | NO_LOGIN),
	IMAP("reset_at_greeting", "implicit", UNAVAIL, NO_LOGIN),
	IMAP("reset_at_greeting", "starttls", UNAVAIL, NO_LOGIN),
	IMAP("reset_after_greeting", "starttls", UNAVAIL, NO_LOGIN),
	/* ... TLS handshake (ClientHello never answered, dripped, reset). */
	IMAP("silent", "implicit", UNAVAIL, SLOW | NO_LOGIN),
	IMAP("starttls_silent_handshake", "starttls", UNAVAIL, SLOW | NO_LOGIN),
	IMAP("handshake_drip", "implicit", UNAVAIL, SLOW | NO_LOGIN),
	IMAP("starttls_handshake_drip", "starttls", UNAVAIL, SLOW | NO_LOGIN),
	IMAP("handshake_reset", "implicit", UNAVAIL, NO_LOGIN),
	IMAP("starttls_handshake_reset", "starttls", UNAVAIL, NO_LOGIN),
	/* ... authentication. */
	IMAP("auth_silent", "implicit", UNAVAIL, SLOW),
	IMAP("auth_silent", "starttls", UNAVAIL, SLOW),
	IMAP("auth_drip", "implicit", UNAVAIL, SLOW),
	IMAP("auth_reset", "implicit", UNAVAIL, 0),
	IMAP("auth_reset", "starttls", UNAVAIL, 0),
	/* SASL: invalid base64, endless continuations. */
	IMAP("bad_b64_challenge", "implicit", UNAVAIL, NO_LOGIN),
	IMAP("endless_continuation", "implicit", UNAVAIL, 0),
	IMAP("continuation_flood", "implicit", UNAVAIL, 0),
	/* Certificates, old TLS versions. */
	IMAP_CERT("implicit", "selfsigned"), IMAP_CERT("starttls", "selfsigned"),
	IMAP_CERT("implicit", "unknownca"), IMAP_CERT("starttls", "unknownca"),
	IMAP_CERT("implicit", "wrongname"), IMAP_CERT("starttls", "wrongname"),
	IMAP_CERT("implicit", "expired"), IMAP_CERT("starttls", "expired"),
	IMAP_CERT("implicit", "notyet"), IMAP_CERT("starttls", "notyet"),
	IMAP_CERT("implicit", "rsa1024"), IMAP_CERT("starttls", "rsa1024"),
	IMAP_CERT("implicit", "sha1"), IMAP_CERT("starttls", "sha1"),
	IMAP_OLD("implicit", "1.1"), IMAP_OLD("starttls", "1.1"),
	IMAP_OLD("implicit", "1.0"), IMAP_OLD("starttls", "1.0"),
	/* No CN fallback (SPEC 2, RFC 6125 6.4.4): wrongname has CN=localhost, but its
	 * only SAN is DNS:wrong.example, so checked against "localhost" it must fail
	 * (the wrongname rows above check 127.0.0.1, which no CN could match).  The
	 * controls: the same certificate IS accepted for the name in its SAN, and the
	 * good one for "localhost", so the failing rows fail for the name alone. */
	IMAP_NAME("implicit", "wrongname", "localhost", UNAVAIL, NO_LOGIN | HS_FAIL),
	IMAP_NAME("starttls", "wrongname", "localhost", UNAVAIL, NO_LOGIN | HS_FAIL),
	IMAP_NAME("implicit", "wrongname", "wrong.example", PAM_SUCCESS, 0),
	IMAP_NAME("starttls", "wrongname", "wrong.example", PAM_SUCCESS, 0),
	IMAP_NAME("implicit", NULL, "localhost", PAM_SUCCESS, 0),

	/* ==== SMTP ==================================================================== */
	SMTP("good", "implicit", PAM_SUCCESS, 0, GOOD_I),
	SMTP("good", "starttls", PAM_SUCCESS, 0, GOOD_S),
	SMTP("rejected-535", "implicit", PAM_AUTH_ERR, WRONG_PW,
	     UP_I EHLO_TLS("250 AUTH PLAIN") REJECT QUIT_LINGER),
	SMTP("rejected-535", "starttls", PAM_AUTH_ERR, WRONG_PW,
	     UP_S EHLO_TLS("250 AUTH PLAIN") REJECT QUIT_LINGER),
	/* Capabilities differ: the list after TLS is the one used. */
	SMTP("caps-login-then-plain", "starttls", PAM_SUCCESS, 0,
	     GREET "expect EHLO \nsend 250-fake.test\\r\\n250-AUTH LOGIN\\r\\n250 STARTTLS\n"
	     STARTTLS_GO EHLO_TLS("250 AUTH PLAIN") PLAIN_OK QUIT),
	SMTP("caps-auth-gone-after-tls", "starttls", UNAVAIL, NO_LOGIN,
	     GREET "expect EHLO \nsend 250-fake.test\\r\\n250-AUTH PLAIN LOGIN\\r\\n250 STARTTLS\n"
	     STARTTLS_GO EHLO_TLS("250 8BITMIME")),
	SMTP("caps-only-unknown-after-tls", "starttls", UNAVAIL, NO_LOGIN,
	     GREET "expect EHLO \nsend 250-fake.test\\r\\n250-AUTH PLAIN LOGIN\\r\\n250 STARTTLS\n"
	     STARTTLS_GO EHLO_TLS("250 AUTH XPLAIN GSSAPI")),
	/* STARTTLS stripped, refused, injected into. */
	SMTP("starttls-stripped", "starttls", UNAVAIL, NO_LOGIN,
	     GREET "expect EHLO \nsend 250-fake.test\\r\\n250-AUTH PLAIN LOGIN\\r\\n250 8BITMIME\n"),
	SMTP("starttls-454", "starttls", UNAVAIL, NO_LOGIN,
	     GREET EHLO_STARTTLS
	     "expect= STARTTLS\nsend 454 4.7.0 TLS not available due to temporary reason\n"),
	SMTP("starttls-502", "starttls", UNAVAIL, NO_LOGIN,
	     GREET EHLO_STARTTLS "expect= STARTTLS\nsend 502 5.5.1 Not implemented\n"),
	SMTP("starttls-injected", "starttls", UNAVAIL, NO_LOGIN,
	     GREET EHLO_STARTTLS
	     "expect= STARTTLS\n"
	     "send 220 2.0.0 Ready\\r\\n250-injected\\r\\n250 AUTH PLAIN\ntls\n"),
	SMTP("starttls-injected-late", "starttls", UNAVAIL, NO_LOGIN,
	     GREET EHLO_STARTTLS
	     "expect= STARTTLS\nsend 220 2.0.0 Ready\nreadraw\n"
	     "send 250 AUTH PLAIN injected\nsleep 1\n"),
	/* The go-ahead for STARTTLS in the same write as the EHLO reply, before the
	 * command: the client must refuse to send STARTTLS over an unread reply.
	 * The script then only records (QUIT is fine): a client that took the
	 * early 220 and started its handshake either pipelines (status 1) or waits
	 * for a ServerHello that never comes (FAST_MAX_MS). */
	SMTP("starttls-reply-before-command", "starttls", UNAVAIL, NO_LOGIN,
	     GREET "expect EHLO \n"
	     "send 250-fake.test hello\\r\\n250-PIPELINING\\r\\n250 STARTTLS"
	     "\\r\\n220 2.0.0 Ready to start TLS\n"),
	/* Greetings: 554, 421, not 220, not SMTP. */
	SMTP("greeting-554", "implicit", UNAVAIL, NO_LOGIN,
	     "tls\nsend 554 5.3.2 No SMTP service here\n"),
	SMTP("greeting-554", "starttls", UNAVAIL, NO_LOGIN, "send 554 5.3.2 No SMTP service here\n"),
	SMTP("greeting-421", "implicit", UNAVAIL, NO_LOGIN,
	     "tls\nsend 421 4.3.2 Service shutting down\nclose\n"),
	SMTP("greeting-421", "starttls", UNAVAIL, NO_LOGIN,
	     "send 421 4.3.2 Service shutting down\nclose\n"),
	SMTP("greeting-250", "starttls", UNAVAIL, NO_LOGIN, "send 250 fake.test hello\n"),
	SMTP("greeting-ssh", "implicit", UNAVAIL, NO_LOGIN, "tls\nsend SSH-2.0-OpenSSH_9.2p1\n"),
	SMTP("greeting-ssh", "starttls", UNAVAIL, NO_LOGIN, "send SSH-2.0-OpenSSH_9.2p1\n"),
	SMTP("greeting-imap", "starttls", UNAVAIL, NO_LOGIN, "send * OK IMAP4rev1 ready\n"),
	SMTP("greeting-binary", "implicit", UNAVAIL, NO_LOGIN, "tls\nsend 220 \\x00\\x01\\xff\n"),
	SMTP("greeting-binary", "starttls", UNAVAIL, NO_LOGIN, "send 220 \\x00\\x01\\xff\n"),
	/* EHLO refused, malformed multi-line reply. */
	SMTP("ehlo-500", "starttls", UNAVAIL, NO_LOGIN,
	     GREET "expect EHLO \nsend 500 5.5.1 Command unrecognized\n"),
	SMTP("ehlo-mixed-codes", "implicit", UNAVAIL, NO_LOGIN,
	     UP_I "expect EHLO \nsend 250-fake.test\\r\\n251-AUTH PLAIN\\r\\n250 8BITMIME\n"),
	/* A 235 that arrives before AUTH was sent. */
	SMTP("235-before-auth", "implicit", UNAVAIL, WRONG_PW,
	     UP_I "expect EHLO \n"
	     "send 250-fake.test\\r\\n250 AUTH PLAIN\\r\\n235 2.7.0 Authentication successful\n"),
	SMTP("235-before-auth", "starttls", UNAVAIL, WRONG_PW,
	     UP_S "expect EHLO \n"
	     "send 250-fake.test\\r\\n250 AUTH PLAIN\\r\\n235 2.7.0 Authentication successful\n"),
	SMTP("235-before-password", "implicit", UNAVAIL, WRONG_PW,
	     UP_I EHLO_TLS("250 AUTH LOGIN")
	     "expect= AUTH LOGIN\n"
	     "send 334 VXNlcm5hbWU6\\r\\n334 UGFzc3dvcmQ6\\r\\n235 2.7.0 Authentication successful\n"),
	/* Temporary failures, unexpected answers to AUTH. */
	SMTP("auth-454", "starttls", UNAVAIL, 0,
	     UP_S EHLO_TLS("250 AUTH PLAIN")
	     "expect AUTH PLAIN \nsend 454 4.7.0 Temporary authentication failure\n"),
	SMTP("auth-421", "implicit", UNAVAIL, 0,
	     UP_I EHLO_TLS("250 AUTH PLAIN")
	     "expect AUTH PLAIN \nsend 421 4.4.2 fake.test closing\nclose\n"),
	SMTP("auth-250", "implicit", UNAVAIL, 0,
	     UP_I EHLO_TLS("250 AUTH PLAIN") "expect AUTH PLAIN \nsend 250 2.0.0 OK\n"),
	/* Over-long lines, endless multi-line replies. */
	SMTP("greeting-80k", "implicit", UNAVAIL, NO_LOGIN, "tls\nlong 81920 220 fake.test \n"),
	SMTP("greeting-80k", "starttls", UNAVAIL, NO_LOGIN, "long 81920 220 fake.test \n"),
	SMTP("235-70k", "implicit", UNAVAIL, 0,
	     UP_I EHLO_TLS("250 AUTH PLAIN") "expect AUTH PLAIN \nlong 71680 235 2.7.0 ok \n"),
	SMTP("ehlo-endless", "implicit", UNAVAIL, NO_LOGIN,
	     UP_I "expect EHLO \nflood 250-PIPELINING\n"),
	SMTP("ehlo-endless", "starttls", UNAVAIL, NO_LOGIN, GREET "expect EHLO \nflood 250-PIPELINING\n"),
	SMTP("ehlo-endless-after-tls", "starttls", UNAVAIL, NO_LOGIN,
	     UP_S "expect EHLO \nflood 250-PIPELINING\n"),
	SMTP("greeting-endless", "implicit", UNAVAIL, NO_LOGIN, "tls\nflood 220-welcome\n"),
	SMTP("greeting-endless", "starttls", UNAVAIL, NO_LOGIN, "flood 220-welcome\n"),
	/* Silent, dripping, resetting: greeting. */
	SMTP("greeting-silent", "implicit", UNAVAIL, SLOW | NO_LOGIN, "tls\nsleep 10\n"),
	SMTP("greeting-silent", "starttls", UNAVAIL, SLOW | NO_LOGIN, "sleep 10\n"),
	SMTP("greeting-drip", "implicit", UNAVAIL, SLOW | NO_LOGIN,
	     "tls\ndrip 1 220 fake.test ESMTP ready\n"),
	SMTP("greeting-drip", "starttls", UNAVAIL, SLOW | NO_LOGIN, "drip 1 220 fake.test ESMTP ready\n"),
	SMTP("greeting-reset", "implicit", UNAVAIL, NO_LOGIN, "tls\nreset\n"),
	SMTP("greeting-reset", "starttls", UNAVAIL, NO_LOGIN, "reset\n"),
	/* ... TLS handshake. */
	SMTP("handshake-silent", "implicit", UNAVAIL, SLOW | NO_LOGIN, "readraw\nsleep 10\n"),
	SMTP("handshake-silent", "starttls", UNAVAIL, SLOW | NO_LOGIN,
	     GREET EHLO_STARTTLS "expect= STARTTLS\nsend 220 2.0.0 Ready\nreadraw\nsleep 10\n"),
	SMTP("handshake-drip", "implicit", UNAVAIL, SLOW | NO_LOGIN, "driptls 1\n"),
	SMTP("handshake-drip", "starttls", UNAVAIL, SLOW | NO_LOGIN,
	     GREET EHLO_STARTTLS "expect= STARTTLS\nsend 220 2.0.0 Ready\ndriptls 1\n"),
	SMTP("handshake-reset", "implicit", UNAVAIL, NO_LOGIN, "readraw\nreset\n"),
	SMTP("handshake-reset", "starttls", UNAVAIL, NO_LOGIN,
	     GREET EHLO_STARTTLS "expect= STARTTLS\nsend 220 2.0.0 Ready\nreadraw\nreset\n"),
	/* ... authentication. */
	SMTP("auth-silent", "implicit", UNAVAIL, SLOW,
	     UP_I EHLO_TLS("250 AUTH PLAIN") "expect AUTH PLAIN \nsleep 10\n"),
	SMTP("auth-silent", "starttls", UNAVAIL, SLOW,
	     UP_S EHLO_TLS("250 AUTH PLAIN") "expect AUTH PLAIN \nsleep 10\n"),
	SMTP("auth-drip-235", "implicit", UNAVAIL, SLOW,
	     UP_I EHLO_TLS("250 AUTH PLAIN")
	     "expect= AUTH PLAIN {PLAIN}\ndrip 1 235 2.7.0 Authentication successful\n"),
	SMTP("auth-reset", "implicit", UNAVAIL, 0,
	     UP_I EHLO_TLS("250 AUTH PLAIN") "expect AUTH PLAIN \nreset\n"),
	SMTP("auth-reset", "starttls", UNAVAIL, 0,
	     UP_S EHLO_TLS("250 AUTH PLAIN") "expect AUTH PLAIN \nreset\n"),
	/* SASL: invalid base64, endless 334. */
	SMTP("334-not-base64", "implicit", UNAVAIL, NO_LOGIN,
	     UP_I EHLO_TLS("250 AUTH LOGIN")
	     "expect= AUTH LOGIN\nsend 334 !!!not base64!!!\nexpect= *\n"
	     "send 501 5.7.0 Authentication aborted\n"),
	SMTP("334-forever", "implicit", UNAVAIL, 0,
	     UP_I EHLO_TLS("250 AUTH LOGIN") "expect= AUTH LOGIN\nflood 334 VXNlcm5hbWU6\n"),
	SMTP("334-after-plain", "starttls", UNAVAIL, 0,
	     UP_S EHLO_TLS("250 AUTH PLAIN") "expect AUTH PLAIN \nsend 334 \nexpect= *\n"),
	/* Certificates, old TLS versions. */
	SMTP_CERT("implicit", "selfsigned", GOOD_I), SMTP_CERT("starttls", "selfsigned", GOOD_S),
	SMTP_CERT("implicit", "unknownca", GOOD_I), SMTP_CERT("starttls", "unknownca", GOOD_S),
	SMTP_CERT("implicit", "wrongname", GOOD_I), SMTP_CERT("starttls", "wrongname", GOOD_S),
	SMTP_CERT("implicit", "expired", GOOD_I), SMTP_CERT("starttls", "expired", GOOD_S),
	SMTP_CERT("implicit", "notyet", GOOD_I), SMTP_CERT("starttls", "notyet", GOOD_S),
	SMTP_CERT("implicit", "rsa1024", GOOD_I), SMTP_CERT("starttls", "rsa1024", GOOD_S),
	SMTP_CERT("implicit", "sha1", GOOD_I), SMTP_CERT("starttls", "sha1", GOOD_S),
	SMTP_OLD("implicit", "1.1", GOOD_I), SMTP_OLD("starttls", "1.1", GOOD_S),
	SMTP_OLD("implicit", "1.0", GOOD_I), SMTP_OLD("starttls", "1.0", GOOD_S),
	/* No CN fallback, and its controls (see the IMAP rows). */
	SMTP_NAME("implicit", "wrongname", "localhost", UNAVAIL, NO_LOGIN | HS_FAIL, GOOD_I),
	SMTP_NAME("starttls", "wrongname", "localhost", UNAVAIL, NO_LOGIN | HS_FAIL, GOOD_S),
	SMTP_NAME("implicit", "wrongname", "wrong.example", PAM_SUCCESS, 0, GOOD_I),
	SMTP_NAME("starttls", "wrongname", "wrong.example", PAM_SUCCESS, 0, GOOD_S),
	SMTP_NAME("implicit", NULL, "localhost", PAM_SUCCESS, 0, GOOD_I),
};
#define N_ROWS (sizeof(rows) / sizeof(rows[0]))

/* What one row did; in memory shared with the worker processes. */
struct result {
	int done;                  /* the worker got to the end */
	int worker_status;         /* waitpid status of the worker */
	char setup_error[200];     /* infrastructure failure, not a module verdict */
	int pam_rc;
	long elapsed_ms;
	int prompts;
	int status;                /* fake server exit status */
	size_t plain_len, tls_len, n_chunks;
	char secret_before_tls[64];  /* the form found, "" when none */
	char secret_anywhere[64];
	char command_before_tls[16];
	int fds_before, fds_after; /* open descriptors around pam_start .. pam_end */
	char fd_change[200];       /* "" when the same ones were open, else what changed */
	char transcript[TRANSCRIPT_MAX];
};

static struct result *results;
static char module_path[PATH_MAX];

/* ---- helpers ------------------------------------------------------------------------ */

static const char *pam_name(int rc)
{
	switch (rc) {
	case PAM_SUCCESS: return "SUCCESS";
	case PAM_AUTH_ERR: return "AUTH_ERR";
	case PAM_AUTHINFO_UNAVAIL: return "AUTHINFO_UNAVAIL";
	case PAM_USER_UNKNOWN: return "USER_UNKNOWN";
	case PAM_SERVICE_ERR: return "SERVICE_ERR";
	case PAM_BUF_ERR: return "BUF_ERR";
	case PAM_CRED_INSUFFICIENT: return "CRED_INSUFFICIENT";
	case PAM_MAXTRIES: return "MAXTRIES";
	case PAM_ABORT: return "ABORT";
	case PAM_INCOMPLETE: return "INCOMPLETE";
	case PAM_PERM_DENIED: return "PERM_DENIED";
	case PAM_SYSTEM_ERR: return "SYSTEM_ERR";
	default: return "other";
	}
}

static void row_label(const struct row *w, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s/%s%s%s%s%s%s%s", w->proto == P_IMAP ? "imap" : "smtp",
	         w->name, w->mode, w->cert ? " cert=" : "", w->cert ? w->cert : "",
	         w->tls_max ? " tls-max=" : "", w->tls_max ? w->tls_max : "",
	         w->verify_name ? " name=" : "", w->verify_name ? w->verify_name : "");
}

/*
 * The forms a password takes on the wire: itself, and base64 of any stream
 * that contains it, at each of the three alignments (only the characters
 * that depend on password bytes alone).  FORMS gets up to 4 strings.
 */
static size_t secret_forms(const char *pw, char forms[4][64])
{
	size_t n = 0, len = strlen(pw);
	snprintf(forms[n++], 64, "%s", pw);
	for (size_t k = 0; k < 3; k++) {
		unsigned char buf[80];
		size_t m = k + len;
		if (m > sizeof(buf))
			continue;
		memset(buf, 'Z', k);
		memcpy(buf + k, pw, len);
		char *b64 = ma_base64_encode(buf, m, NULL);
		if (b64 == NULL)
			continue;
		size_t from = k == 0 ? 0 : 4, to = 4 * (m / 3);
		if (to > from + 4 && to - from < 64)
			snprintf(forms[n++], 64, "%.*s", (int)(to - from), b64 + from);
		free(b64);
	}
	return n;
}

static int write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	size_t len = strlen(text), off = 0;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	fchmod(fd, mode);
	return close(fd);
}

/* tests/fake/fake_more.py with ARGS ("smtp" first for the SMTP server). */
static int more_start(struct fake_server *fs, const char *const *args)
{
	return fake_spawn(fs, "fake_more.py", args, NULL);
}

/* The server of row W (the PAM run and the weak-TLS controls use the same). */
static int row_server_start(const struct row *w, struct fake_server *fs)
{
	const char *args[32];
	size_t n = 0;

	if (w->proto == P_SMTP) {
		args[n++] = "smtp";
		args[n++] = "--scenario";
		args[n++] = w->name;
		args[n++] = "--script";
		args[n++] = w->script;
	} else {
		args[n++] = "--scenario";
		args[n++] = w->name;
		args[n++] = "--tls";
		args[n++] = w->mode;
	}
	args[n++] = "--user";
	args[n++] = USER;
	args[n++] = "--password";
	args[n++] = PASS;
	if (w->cert != NULL) {
		args[n++] = "--cert";
		args[n++] = w->cert;
	}
	if (w->tls_max != NULL) {
		args[n++] = "--tls-min";
		args[n++] = "1.0";
		args[n++] = "--tls-max";
		args[n++] = w->tls_max;
	}
	args[n] = NULL;
	return more_start(fs, args);
}

struct conv_data {
	const char *password;
	int prompts;
};

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct conv_data *cd = data;
	struct pam_response *r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF ||
		    msg[i]->msg_style == PAM_PROMPT_ECHO_ON) {
			cd->prompts++;
			r[i].resp = strdup(cd->password);
			if (r[i].resp == NULL) {
				for (int k = 0; k < i; k++)
					free(r[k].resp);
				free(r);
				return PAM_BUF_ERR;
			}
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

/* ---- descriptors ---------------------------------------------------------------------- */

#define MAX_FDS 256

struct fd_snapshot {
	size_t n;
	int fd[MAX_FDS];
};

/* The descriptors this process has open (without the one that lists them);
 * -1 when /proc/self/fd cannot be read or holds more than MAX_FDS. */
static int fd_snapshot(struct fd_snapshot *s)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	s->n = 0;
	if (d == NULL)
		return -1;
	int self = dirfd(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd == self)
			continue;
		if (s->n == MAX_FDS) {
			closedir(d);
			return -1;
		}
		s->fd[s->n++] = fd;
	}
	closedir(d);
	return 0;
}

static bool fd_in(const struct fd_snapshot *s, int fd)
{
	for (size_t k = 0; k < s->n; k++)
		if (s->fd[k] == fd)
			return true;
	return false;
}

/* What differs between BEFORE and AFTER, into BUF ("" when nothing): the
 * descriptors left open (with what they point to) and those closed. */
static void fd_changes(const struct fd_snapshot *before, const struct fd_snapshot *after,
                       char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t k = 0; k < after->n && o < len; k++) {
		char link[64], target[96] = "?";
		if (fd_in(before, after->fd[k]))
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", after->fd[k]);
		ssize_t t = readlink(link, target, sizeof(target) - 1);
		if (t > 0)
			target[t] = '\0';
		int m = snprintf(buf + o, len - o, "%sfd %d left open (%s)", o ? ", " : "",
		                 after->fd[k], target);
		o = m < 0 ? len : o + (size_t)m;
	}
	for (size_t k = 0; k < before->n && o < len; k++) {
		if (fd_in(after, before->fd[k]))
			continue;
		int m = snprintf(buf + o, len - o, "%sfd %d closed", o ? ", " : "", before->fd[k]);
		o = m < 0 ? len : o + (size_t)m;
	}
}

static void setup_error(struct result *r, const char *what)
{
	snprintf(r->setup_error, sizeof(r->setup_error), "%s (errno %d)", what, errno);
}

static void remove_dir(const char *dir)
{
	static const char *const files[] = { "svc", "mailauth.conf" };
	char path[PATH_MAX + 32];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

/* ---- one row, in a worker process ----------------------------------------------------- */

static void run_row(size_t i)
{
	const struct row *w = &rows[i];
	struct result *r = &results[i];
	const char *certs = getenv("MA_TEST_CERTS");
	const char *password = (w->flags & WRONG_PW) ? WRONG : PASS;
	char dir[PATH_MAX - 64], path[PATH_MAX], text[PATH_MAX * 2 + 512];
	struct fake_server fs;
	struct fake_result fr;

	alarm(ROW_ALARM_S);
	r->pam_rc = -1;
	r->status = -100;
	const char *tmpdir = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/ma-hostile-pam.XXXXXX",
	         tmpdir != NULL && *tmpdir != '\0' ? tmpdir : "/tmp");
	if (mkdtemp(dir) == NULL) {
		setup_error(r, "mkdtemp");
		_exit(0);
	}

	if (row_server_start(w, &fs) != 0) {
		setup_error(r, "the fake server did not start");
		remove_dir(dir);
		_exit(0);
	}

	snprintf(path, sizeof(path), "%s/mailauth.conf", dir);
	snprintf(text, sizeof(text),
	         "timeout = %d\n"
	         "ca_file = \"%s/ca.pem\"\n"
	         "server fake {\n"
	         "  protocol = %s\n"
	         "  host = \"127.0.0.1\"\n"
	         "  port = %u\n"
	         "  tls = %s\n"
	         "%s%s%s"
	         "}\n",
	         TIMEOUT_S, certs, w->proto == P_IMAP ? "imap" : "smtp", fs.port, w->mode,
	         w->verify_name ? "  verify_name = \"" : "", w->verify_name ? w->verify_name : "",
	         w->verify_name ? "\"\n" : "");
	if (write_text(path, text, 0600) != 0) {
		setup_error(r, "cannot write the configuration");
		fake_stop(&fs, 0);
		remove_dir(dir);
		_exit(0);
	}
	snprintf(text, sizeof(text), "auth required %s config=%s\n", module_path, path);
	snprintf(path, sizeof(path), "%s/svc", dir);
	if (write_text(path, text, 0644) != 0) {
		setup_error(r, "cannot write the PAM service");
		fake_stop(&fs, 0);
		remove_dir(dir);
		_exit(0);
	}

	struct conv_data cd = { .password = password };
	struct pam_conv pc = { conv, &cd };
	pam_handle_t *pamh = NULL;
	struct fd_snapshot fds_before, fds_after;
	/* glibc keeps its syslog socket open after the first message (pam_syslog
	 * never calls closelog, and a module must not): connect it now, so that it
	 * is in both snapshots and not taken for the module's. */
	openlog("test_hostile_pam", LOG_NDELAY | LOG_PID, LOG_AUTHPRIV);
	if (fd_snapshot(&fds_before) != 0) {
		setup_error(r, "cannot list /proc/self/fd");
		fake_stop(&fs, 0);
		remove_dir(dir);
		_exit(0);
	}
	int rc = pam_start_confdir("svc", USER, &pc, dir, &pamh);
	if (rc != PAM_SUCCESS) {
		setup_error(r, "pam_start_confdir failed");
		fake_stop(&fs, 0);
		remove_dir(dir);
		_exit(0);
	}
	long t0 = fake_now_ms();
	rc = pam_authenticate(pamh, 0);
	r->elapsed_ms = fake_now_ms() - t0;
	pam_end(pamh, rc);
	r->pam_rc = rc;
	r->prompts = cd.prompts;
	/* SPEC 7: every descriptor closed on every path, none of the caller's touched. */
	if (fd_snapshot(&fds_after) != 0) {
		setup_error(r, "cannot list /proc/self/fd");
	} else {
		r->fds_before = (int)fds_before.n;
		r->fds_after = (int)fds_after.n;
		fd_changes(&fds_before, &fds_after, r->fd_change, sizeof(r->fd_change));
	}

	if (fake_finish(&fs, &fr, SERVER_WAIT_MS) != 0)
		snprintf(r->setup_error, sizeof(r->setup_error),
		         "the fake server's record is missing or malformed");
	r->status = fr.status;
	r->plain_len = fr.plain_len;
	r->tls_len = fr.tls_len;
	r->n_chunks = fr.n_chunks;

	char forms[8][64];
	size_t nf = secret_forms(PASS, forms);
	nf += secret_forms(WRONG, forms + nf);
	for (size_t k = 0; k < nf; k++) {
		if (r->secret_before_tls[0] == '\0' && fake_plain_contains(&fr, forms[k]))
			snprintf(r->secret_before_tls, sizeof(r->secret_before_tls), "%.63s", forms[k]);
		if (r->secret_anywhere[0] == '\0' && fake_any_contains(&fr, forms[k]))
			snprintf(r->secret_anywhere, sizeof(r->secret_anywhere), "%.63s", forms[k]);
	}
	/* No authentication command of either protocol before TLS ("LOGIN " is
	 * the IMAP command; LOGOUT and EHLO do not match). */
	static const char *const commands[] = { "AUTH", "LOGIN " };
	for (size_t k = 0; k < 2; k++)
		if (r->command_before_tls[0] == '\0' && fake_plain_contains(&fr, commands[k]))
			snprintf(r->command_before_tls, sizeof(r->command_before_tls), "%s",
			         commands[k]);
	snprintf(r->transcript, sizeof(r->transcript), "%s", fr.transcript ? fr.transcript : "");
	fake_result_free(&fr);
	remove_dir(dir);
	r->done = 1;
	_exit(0);
}

/* ---- the parallel run ----------------------------------------------------------------- */

static void run_all(void)
{
	size_t order[N_ROWS], k = 0;
	/* The slow rows first, so that the fast ones fill the gaps. */
	for (size_t i = 0; i < N_ROWS; i++)
		if (rows[i].flags & SLOW)
			order[k++] = i;
	for (size_t i = 0; i < N_ROWS; i++)
		if (!(rows[i].flags & SLOW))
			order[k++] = i;

	long jobs = 8;
	const char *env = getenv("MA_HOSTILE_JOBS");
	if (env != NULL && atol(env) > 0 && atol(env) <= 64)
		jobs = atol(env);
	pid_t pids[64];
	size_t which[64];
	size_t running = 0, next = 0;

	fflush(NULL);
	while (next < N_ROWS || running > 0) {
		while (running < (size_t)jobs && next < N_ROWS) {
			size_t i = order[next++];
			pid_t pid = fork();
			if (pid < 0) {
				snprintf(results[i].setup_error, sizeof(results[i].setup_error),
				         "fork failed");
				continue;
			}
			if (pid == 0)
				run_row(i);
			pids[running] = pid;
			which[running] = i;
			running++;
		}
		if (running == 0)
			break;
		int st = 0;
		pid_t p = waitpid(-1, &st, 0);
		if (p < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (size_t s = 0; s < running; s++) {
			if (pids[s] != p)
				continue;
			results[which[s]].worker_status = st;
			pids[s] = pids[running - 1];
			which[s] = which[running - 1];
			running--;
			break;
		}
	}
}

/* ---- assertions --------------------------------------------------------------------- */

/* true when row I passed; otherwise WHY says what went wrong. */
static bool evaluate(size_t i, char *why, size_t len)
{
	const struct row *w = &rows[i];
	const struct result *r = &results[i];
	bool implicit = strcmp(w->mode, "implicit") == 0;

	why[0] = '\0';
	if (WIFSIGNALED(r->worker_status))
		snprintf(why, len, "the worker died of signal %d (%s)", WTERMSIG(r->worker_status),
		         WTERMSIG(r->worker_status) == SIGALRM ? "hang" : "crash");
	else if (r->setup_error[0] != '\0')
		snprintf(why, len, "setup: %s", r->setup_error);
	else if (!r->done)
		snprintf(why, len, "the worker did not finish (status %d)", r->worker_status);
	else if (r->pam_rc != w->want)
		snprintf(why, len, "PAM %s, want %s", pam_name(r->pam_rc), pam_name(w->want));
	else if (r->secret_before_tls[0] != '\0')
		snprintf(why, len, "credential \"%s\" received before TLS", r->secret_before_tls);
	else if (r->command_before_tls[0] != '\0')
		snprintf(why, len, "\"%s\" command received before TLS", r->command_before_tls);
	else if ((w->flags & NO_LOGIN) && r->secret_anywhere[0] != '\0')
		snprintf(why, len, "credential \"%s\" sent to a server that must not get it",
		         r->secret_anywhere);
	else if (r->fd_change[0] != '\0')
		snprintf(why, len, "%d descriptors open before pam_start, %d after pam_end: %s",
		         r->fds_before, r->fds_after, r->fd_change);
	else if (r->prompts != 1)
		snprintf(why, len, "%d prompts, want 1", r->prompts);
	else if (r->elapsed_ms > MAX_MS)
		snprintf(why, len, "took %ld ms, the deadline is %d s", r->elapsed_ms, TIMEOUT_S);
	else if ((w->flags & SLOW) && r->elapsed_ms < SLOW_MIN_MS)
		snprintf(why, len, "gave up after %ld ms, before the deadline", r->elapsed_ms);
	else if (!(w->flags & SLOW) && r->elapsed_ms > FAST_MAX_MS)
		snprintf(why, len, "took %ld ms, over %d ms: not SLOW, so a rule and not the "
		         "deadline must end it", r->elapsed_ms, FAST_MAX_MS);
	else if ((w->flags & HS_FAIL) && r->status != 4)
		snprintf(why, len, "fake server status %d, want 4 (handshake failed)", r->status);
	else if ((w->flags & HS_FAIL) && implicit && r->n_chunks != 0)
		snprintf(why, len, "application data reached a server whose handshake failed");
	else if ((w->flags & HS_FAIL) && r->tls_len != 0)
		snprintf(why, len, "data sent over an unverified TLS session");
	else if (r->status != 0 && r->status != 4)
		snprintf(why, len, "fake server status %d (1: the client broke a protocol rule, "
		         "2: hard timeout, 3: internal error, -1: killed)", r->status);
	return why[0] == '\0';
}

START_TEST(test_row)
{
	char why[256], label[160];
	size_t i = (size_t)_i;
	row_label(&rows[i], label, sizeof(label));
	bool ok = evaluate(i, why, sizeof(why));
	if (!ok || getenv("MA_FAKE_VERBOSE") != NULL)
		fprintf(stderr, "---- %s: PAM %s in %ld ms, server status %d%s%s\n%s----\n", label,
		        pam_name(results[i].pam_rc), results[i].elapsed_ms, results[i].status,
		        ok ? "" : ": ", why, results[i].transcript);
	ck_assert_msg(ok, "%s: %s", label, why);
}
END_TEST

/* ---- weak TLS: positive controls --------------------------------------------------------
 *
 * The rows with a 1024-bit key, a SHA-1 signature or TLS 1.0 / 1.1 expect the
 * handshake to fail.  They would pass just as well if the fake server could not
 * offer that at all (an OpenSSL build without TLS 1.0, a certificate that is not
 * what its name says).  So each such row's server, started exactly as for the
 * row, is also given a deliberately permissive client (security level 0, the
 * old version forced, the test CA and the address checked) that must complete
 * the handshake, see the weakness, and then finish the server's dialogue so
 * that its exit status is 0.
 */

static bool weak_row(const struct row *w)
{
	return (w->flags & HS_FAIL) && w->verify_name == NULL &&
	       (w->tls_max != NULL ||
	        (w->cert != NULL && (strcmp(w->cert, "rsa1024") == 0 ||
	                             strcmp(w->cert, "sha1") == 0)));
}

struct ctl {
	int fd;
	SSL *ssl;              /* NULL while plain */
	char *why;
	size_t whylen;
};

__attribute__((format(printf, 2, 3)))
static bool ctl_fail(struct ctl *c, const char *fmt, ...)
{
	if (c->why[0] == '\0') {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->why, c->whylen, fmt, ap);
		va_end(ap);
	}
	return false;
}

static bool ctl_put(struct ctl *c, const char *line)
{
	size_t len = strlen(line);
	if (c->ssl != NULL) {
		size_t done = 0;
		if (SSL_write_ex(c->ssl, line, len, &done) != 1 || done != len)
			return ctl_fail(c, "TLS write of %s failed", line);
		return true;
	}
	if (send(c->fd, line, len, MSG_NOSIGNAL) != (ssize_t)len)
		return ctl_fail(c, "write of %s failed", line);
	return true;
}

/* One CRLF line into BUF (without it).  One byte at a time while plain, so that
 * nothing after a STARTTLS go-ahead is read as if it were a line. */
static bool ctl_get(struct ctl *c, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	for (;;) {
		char ch;
		if (c->ssl != NULL) {
			size_t got = 0;
			if (SSL_read_ex(c->ssl, &ch, 1, &got) != 1 || got != 1)
				return ctl_fail(c, "TLS read failed after \"%s\"", buf);
		} else if (recv(c->fd, &ch, 1, 0) != 1) {
			return ctl_fail(c, "read failed after \"%s\"", buf);
		}
		if (ch == '\n' && n > 0 && buf[n - 1] == '\r') {
			buf[n - 1] = '\0';
			return true;
		}
		if (n + 1 >= len)
			return ctl_fail(c, "line too long: %.60s", buf);
		buf[n++] = ch;
		buf[n] = '\0';
	}
}

/* Read until the line that ends the reply: tagged with TAG (IMAP), or an SMTP
 * final line ("NNN "); it must start with WANT. */
static bool ctl_reply(struct ctl *c, const char *tag, const char *want)
{
	char line[1024];
	size_t tl = tag != NULL ? strlen(tag) : 0;
	for (int k = 0; k < 50; k++) {
		if (!ctl_get(c, line, sizeof(line)))
			return false;
		bool last = tag != NULL ? strncmp(line, tag, tl) == 0 && line[tl] == ' '
		                        : strlen(line) >= 4 && line[3] == ' ';
		if (!last)
			continue;
		if (strncmp(line, want, strlen(want)) != 0)
			return ctl_fail(c, "unexpected reply \"%s\"", line);
		return true;
	}
	return ctl_fail(c, "no end of reply (want %s)", want);
}

/* The permissive handshake; on success *VERSION, *BITS, *SIG_NID describe it. */
static bool ctl_handshake(struct ctl *c, SSL_CTX *ctx, int *version, int *bits, int *sig_nid)
{
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		return ctl_fail(c, "SSL_new failed");
	X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), "127.0.0.1");
	if (SSL_connect(c->ssl) != 1) {
		char err[256];
		ERR_error_string_n(ERR_get_error(), err, sizeof(err));
		return ctl_fail(c, "the permissive handshake failed: %s", err);
	}
	if (SSL_get_verify_result(c->ssl) != X509_V_OK)
		return ctl_fail(c, "verification with the test CA failed: %s",
		                X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
	X509 *peer = SSL_get1_peer_certificate(c->ssl);
	if (peer == NULL)
		return ctl_fail(c, "no server certificate");
	*version = SSL_version(c->ssl);
	*bits = EVP_PKEY_get_bits(X509_get0_pubkey(peer));
	*sig_nid = X509_get_signature_nid(peer);
	X509_free(peer);
	return true;
}

/* What the row's server must do for a client that accepts anything: the
 * plaintext part of STARTTLS, the handshake, then the rest of its dialogue. */
static bool weak_control(const struct row *w, char *why, size_t whylen, char *seen,
                         size_t seenlen, int *server_status)
{
	const char *certs = getenv("MA_TEST_CERTS");
	bool starttls = strcmp(w->mode, "starttls") == 0;
	struct fake_server fs;
	struct fake_result fr;
	struct ctl c = { .fd = -1, .why = why, .whylen = whylen };
	SSL_CTX *ctx = NULL;
	char ca[PATH_MAX], line[1024];
	int version = 0, bits = 0, sig = NID_undef;
	bool ok = false;

	why[0] = seen[0] = '\0';
	*server_status = -100;
	if (row_server_start(w, &fs) != 0) {
		snprintf(why, whylen, "the fake server did not start");
		return false;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	snprintf(ca, sizeof(ca), "%s/ca.pem", certs);
	if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		ctl_fail(&c, "cannot load %s", ca);
		goto out;
	}
	/* Everything the module refuses: level 0 (1024-bit RSA, SHA-1), the
	 * ciphers of the old versions, and exactly the row's version. */
	SSL_CTX_set_security_level(ctx, 0);
	SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (w->tls_max != NULL) {
		int v = strcmp(w->tls_max, "1.0") == 0 ? TLS1_VERSION : TLS1_1_VERSION;
		SSL_CTX_set_min_proto_version(ctx, v);
		SSL_CTX_set_max_proto_version(ctx, v);
	} else {
		SSL_CTX_set_min_proto_version(ctx, 0);
	}

	c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)fs.port) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = { .tv_sec = 5 };
	if (c.fd < 0 || setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
	    connect(c.fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		ctl_fail(&c, "cannot connect");
		goto out;
	}
	if (w->proto == P_IMAP) {
		if (starttls && !(ctl_get(&c, line, sizeof(line)) &&
		                  ctl_put(&c, "a1 STARTTLS\r\n") && ctl_reply(&c, "a1", "a1 OK")))
			goto out;
		if (!ctl_handshake(&c, ctx, &version, &bits, &sig))
			goto out;
		if (!starttls && !ctl_get(&c, line, sizeof(line)))
			goto out;
		if (!ctl_put(&c, "a2 LOGOUT\r\n") || !ctl_reply(&c, "a2", "a2 OK"))
			goto out;
	} else {
		if (starttls && !(ctl_reply(&c, NULL, "220") && ctl_put(&c, "EHLO control.test\r\n") &&
		                  ctl_reply(&c, NULL, "250") && ctl_put(&c, "STARTTLS\r\n") &&
		                  ctl_reply(&c, NULL, "220")))
			goto out;
		if (!ctl_handshake(&c, ctx, &version, &bits, &sig))
			goto out;
		static const char creds[] = "\0" USER "\0" PASS;
		char *b64 = ma_base64_encode((const unsigned char *)creds, sizeof(creds) - 1, NULL);
		char auth[200];
		snprintf(auth, sizeof(auth), "AUTH PLAIN %s\r\n", b64 != NULL ? b64 : "");
		free(b64);
		if (!(starttls || ctl_reply(&c, NULL, "220")) ||
		    !ctl_put(&c, "EHLO control.test\r\n") || !ctl_reply(&c, NULL, "250") ||
		    !ctl_put(&c, auth) || !ctl_reply(&c, NULL, "235") || !ctl_put(&c, "QUIT\r\n"))
			goto out;
	}
	snprintf(seen, seenlen, "%s, %d-bit key, signature %s", SSL_get_version(c.ssl), bits,
	         OBJ_nid2sn(sig));
	/* What the row claims to be refused for is really there. */
	if (w->tls_max != NULL &&
	    version != (strcmp(w->tls_max, "1.0") == 0 ? TLS1_VERSION : TLS1_1_VERSION))
		ctl_fail(&c, "the server did not speak TLS %s", w->tls_max);
	else if (w->cert != NULL && strcmp(w->cert, "rsa1024") == 0 && bits != 1024)
		ctl_fail(&c, "the rsa1024 certificate's key is not 1024 bits");
	else if (w->cert != NULL && strcmp(w->cert, "sha1") == 0 &&
	         sig != NID_sha1WithRSAEncryption)
		ctl_fail(&c, "the sha1 certificate is not signed with sha1WithRSAEncryption");
	else if (w->cert == NULL && (bits < 2048 || sig != NID_sha256WithRSAEncryption))
		ctl_fail(&c, "the old-version rows must serve the good certificate");
	else
		ok = true;
out:
	if (c.ssl != NULL) {
		SSL_shutdown(c.ssl);
		SSL_free(c.ssl);
	}
	if (c.fd >= 0)
		close(c.fd);
	SSL_CTX_free(ctx);
	if (fake_finish(&fs, &fr, SERVER_WAIT_MS) != 0 && ok) {
		snprintf(why, whylen, "the fake server's record is missing or malformed");
		ok = false;
	}
	*server_status = fr.status;
	/* 0: the server's whole dialogue ran (4 would be its handshake failing). */
	if (ok && fr.status != 0) {
		snprintf(why, whylen, "fake server status %d, want 0", fr.status);
		ok = false;
	}
	if (!ok)
		fprintf(stderr, "---- weak-TLS control transcript ----\n%s----\n", fr.transcript);
	fake_result_free(&fr);
	return ok;
}

static size_t weak_rows[N_ROWS], n_weak;   /* indexes of the rows weak_row() picks */

START_TEST(test_weak_control)
{
	char why[256], seen[128], label[160];
	int status;
	size_t i = weak_rows[_i];
	row_label(&rows[i], label, sizeof(label));
	bool ok = weak_control(&rows[i], why, sizeof(why), seen, sizeof(seen), &status);
	if (!ok || getenv("MA_FAKE_VERBOSE") != NULL)
		fprintf(stderr, "weak-TLS control %s: %s%s%s\n", label, seen,
		        ok || seen[0] == '\0' ? "" : ": ", why);
	ck_assert_msg(ok, "weak-TLS control %s: %s", label, why);
}
END_TEST

/* ---- floods of records that are not application data ------------------------------------
 *
 * OpenSSL reads on inside one SSL_connect / SSL_read while records keep coming
 * that are not for the application: plaintext HelloRequests before the
 * ServerHello (anyone on the path), TLS 1.3 session tickets after the handshake
 * (a verified server).  Each server below keeps it up for 8 s, longer than the
 * 3 s deadline, which must end the login all the same (SLOW_MIN_MS..MAX_MS), as
 * PAM_AUTHINFO_UNAVAIL, with no prompt lost, no descriptor left and the
 * password never sent.  The server counts what it sent, so a row cannot pass
 * because the flood never happened.
 */
struct flood_row {
	const char *name;
	enum flood_mode mode;
	bool starttls;
};

static const struct flood_row flood_rows[] = {
	{ "HelloRequest flood before the ServerHello, implicit", FLOOD_HELLO_REQUEST, false },
	{ "HelloRequest flood before the ServerHello, STARTTLS", FLOOD_HELLO_REQUEST, true },
	{ "session-ticket flood after the handshake, implicit", FLOOD_TICKETS, false },
	{ "session-ticket flood after the handshake, STARTTLS", FLOOD_TICKETS, true },
};
#define N_FLOOD (sizeof(flood_rows) / sizeof(flood_rows[0]))
#define FLOOD_SECONDS 8.0

START_TEST(test_flood)
{
	const struct flood_row *w = &flood_rows[_i];
	char dir[] = "/tmp/ma-flood.XXXXXX", path[PATH_MAX], text[3 * PATH_MAX];
	struct flood f;
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(flood_start(&f, w->mode, w->starttls, FLOOD_SECONDS), 0);
	snprintf(path, sizeof(path), "%s/mailauth.conf", dir);
	snprintf(text, sizeof(text), "timeout = %d\nca_file = \"%s/ca.pem\"\n"
	         "server fake { host = \"127.0.0.1\" port = %u tls = %s }\n", TIMEOUT_S,
	         getenv("MA_TEST_CERTS"), f.port, w->starttls ? "starttls" : "implicit");
	ck_assert_int_eq(write_text(path, text, 0600), 0);
	snprintf(text, sizeof(text), "auth required %s config=%s\n", module_path, path);
	snprintf(path, sizeof(path), "%s/svc", dir);
	ck_assert_int_eq(write_text(path, text, 0644), 0);

	struct conv_data cd = { .password = PASS };
	struct pam_conv pc = { conv, &cd };
	pam_handle_t *pamh = NULL;
	struct fd_snapshot before, after;
	openlog("test_hostile_pam", LOG_NDELAY | LOG_PID, LOG_AUTHPRIV);
	ck_assert_int_eq(fd_snapshot(&before), 0);
	ck_assert_int_eq(pam_start_confdir("svc", USER, &pc, dir, &pamh), PAM_SUCCESS);
	long t0 = fake_now_ms();
	int rc = pam_authenticate(pamh, 0);
	long ms = fake_now_ms() - t0;
	pam_end(pamh, rc);
	ck_assert_int_eq(fd_snapshot(&after), 0);
	long sent = flood_stop(&f);
	remove_dir(dir);
	char changed[200];
	fd_changes(&before, &after, changed, sizeof(changed));
	ck_assert_msg(sent > 0, "%s: the server sent nothing (%ld)", w->name, sent);
	ck_assert_msg(rc == PAM_AUTHINFO_UNAVAIL, "%s: PAM %s", w->name, pam_name(rc));
	ck_assert_msg(ms >= SLOW_MIN_MS && ms <= MAX_MS, "%s: %ld ms, the deadline is %d s "
	              "(the server kept it up for %.0f s, %ld records)", w->name, ms, TIMEOUT_S,
	              FLOOD_SECONDS, sent);
	ck_assert_msg(cd.prompts == 1, "%s: %d prompts", w->name, cd.prompts);
	ck_assert_msg(changed[0] == '\0', "%s: descriptors: %s", w->name, changed);
}
END_TEST

static void print_table(void)
{
	char why[256], label[160];
	fprintf(stderr, "%-66s %-17s %-17s %6s %s\n", "row", "want", "got", "ms", "");
	for (size_t i = 0; i < N_ROWS; i++) {
		row_label(&rows[i], label, sizeof(label));
		bool ok = evaluate(i, why, sizeof(why));
		fprintf(stderr, "%-66s %-17s %-17s %6ld %s%s\n", label, pam_name(rows[i].want),
		        pam_name(results[i].pam_rc), results[i].elapsed_ms, ok ? "ok" : "FAIL: ",
		        why);
	}
}

static Suite *hostile_pam_suite(void)
{
	Suite *s = suite_create("hostile_pam");
	TCase *tc = tcase_create("rows");
	tcase_add_loop_test(tc, test_row, 0, (int)N_ROWS);
	suite_add_tcase(s, tc);
	for (size_t i = 0; i < N_ROWS; i++)
		if (weak_row(&rows[i]))
			weak_rows[n_weak++] = i;
	TCase *weak = tcase_create("weak_tls_controls");
	tcase_set_timeout(weak, 30);
	tcase_add_loop_test(weak, test_weak_control, 0, (int)n_weak);
	suite_add_tcase(s, weak);
	TCase *floods = tcase_create("floods");
	tcase_set_timeout(floods, 30);
	tcase_add_loop_test(floods, test_flood, 0, (int)N_FLOOD);
	suite_add_tcase(s, floods);
	return s;
}

int main(void)
{
	char root[PATH_MAX], so[PATH_MAX + 32];
	if (fake_certs_setup() == NULL) {
		fprintf(stderr, "test_hostile_pam: no test certificates (set MA_TEST_CERTS)\n");
		return EXIT_FAILURE;
	}
	if (fake_root(root, sizeof(root)) != 0) {
		fprintf(stderr, "test_hostile_pam: cannot find the repository root\n");
		return EXIT_FAILURE;
	}
	snprintf(so, sizeof(so), "%s/pam_mailauth.so", root);
	if (realpath(so, module_path) == NULL) {
		fprintf(stderr, "test_hostile_pam: %s: %s\n", so, strerror(errno));
		return EXIT_FAILURE;
	}
	results = mmap(NULL, sizeof(struct result) * N_ROWS, PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (results == MAP_FAILED) {
		perror("test_hostile_pam: mmap");
		return EXIT_FAILURE;
	}
	long t0 = fake_now_ms();
	/* CK_RUN_CASE=weak_tls_controls runs only the controls: no PAM rows then. */
	const char *only = getenv("CK_RUN_CASE");
	if (only == NULL || strcmp(only, "rows") == 0)
		run_all();
	long total = fake_now_ms() - t0;

	int rc = ma_unit_run(hostile_pam_suite());
	if (rc != EXIT_SUCCESS || getenv("MA_FAKE_VERBOSE") != NULL) {
		print_table();
		fprintf(stderr, "%zu rows in %ld ms\n", N_ROWS, total);
	}
	return rc;
}
