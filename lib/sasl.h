/*
 * sasl.h - the SASL engine (RFC 4422): a table of mechanisms, each a pure
 * step function that knows nothing of sockets, the selection policy of
 * SPEC section 3, and an exchange driver that talks to a protocol through
 * a small adapter (struct ma_sasl_proto) implemented by imap.c and smtp.c.
 */
#ifndef MA_SASL_H
#define MA_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "libmailauth.h"

struct ma_sasl_creds {
	const char *authcid;             /* login name, NUL-terminated */
	const char *password;            /* NUL-terminated, never copied unwiped */
	size_t password_len;
	/* Channel binding of the TLS session, or cb_type == NULL when the
	 * session cannot provide one. */
	const char *cb_type;             /* "tls-exporter" / "tls-unique" */
	const unsigned char *cb_data;
	size_t cb_len;
};

/*
 * One mechanism.  A step gets the decoded server challenge (in == NULL for
 * the initial response of a client-first mechanism) and returns a malloc'd
 * raw response in *out / *outlen that the caller wipes and frees
 * (ma_freezero).  An empty response is a valid, non-NULL buffer of length 0.
 * Step returns MA_OK, MA_PROTOCOL (malformed challenge: the exchange is
 * cancelled), MA_AUTH_FAILED (the server reported an authentication error
 * inside the mechanism, e.g. SCRAM e=), MA_TLS (SCRAM: the server reports a
 * channel binding mismatch; the session is abandoned, no fallback), MA_NOMEM
 * or MA_INTERNAL (a crypto primitive failed).  start() may return MA_NO_MECH when the mechanism
 * cannot carry these credentials (SCRAM and non-ASCII input): the policy
 * then moves on.  CREDS must stay valid until free().
 * finish() is asked when the server reports success: MA_OK only when the
 * mechanism is complete and, where it can, proved the server (SCRAM v=).
 * For a mechanism with proves_server set, finish() == MA_OK means exactly
 * that the server proved it knows the password.
 */
struct ma_mech_ops {
	enum ma_mech id;
	const char *name;
	bool client_first;               /* has an initial response */
	bool proves_server;              /* mutual: SCRAM's server signature */
	enum ma_err (*start)(const struct ma_sasl_creds *c, void **state);
	enum ma_err (*step)(void *state, const unsigned char *in, size_t inlen,
	                    unsigned char **out, size_t *outlen);
	enum ma_err (*finish)(void *state);
	void (*free)(void *state);       /* wipes every secret in the state */
};

/* The table entry for M, or NULL for MA_MECH_IMAP_LOGIN / unknown. */
const struct ma_mech_ops *ma_mech_ops_get(enum ma_mech m);

/* Mechanism files (sasl_*.c) each define one of these. */
extern const struct ma_mech_ops ma_mech_plain;
extern const struct ma_mech_ops ma_mech_login;
extern const struct ma_mech_ops ma_mech_cram_md5;
extern const struct ma_mech_ops ma_mech_scram_sha_256;
extern const struct ma_mech_ops ma_mech_scram_sha_256_plus;
extern const struct ma_mech_ops ma_mech_scram_sha_1;
extern const struct ma_mech_ops ma_mech_scram_sha_1_plus;

/* What the server said to one command of the exchange. */
enum ma_sasl_reply {
	MA_REPLY_CHALLENGE,     /* IMAP "+ ...", SMTP 334 */
	MA_REPLY_SUCCESS,       /* IMAP tagged OK, SMTP 235 */
	MA_REPLY_REJECTED,      /* credentials refused: IMAP NO [AUTHENTICATIONFAILED], SMTP 535 */
	MA_REPLY_UNSUPPORTED,   /* mechanism not available: IMAP BAD / NO without verdict, SMTP 504 */
	MA_REPLY_TEMPFAIL,      /* IMAP [UNAVAILABLE], SMTP 4xx */
	MA_REPLY_POLICY,        /* the service refuses this login whatever the password
	                           (lib/codes.c class policy): stop, no fallback */
	MA_REPLY_WEAK,          /* this mechanism is refused (SMTP 534 5.7.9 too weak,
	                           432 4.7.12 transition needed): try the next; policy
	                           when none is accepted */
};

/* The protocol side of an exchange (imap.c, smtp.c). */
struct ma_sasl_proto {
	void *ctx;
	bool initial_response;  /* SASL-IR (RFC 4959) / SMTP AUTH initial response */
	/* Send the command that starts MECH, with the base64 initial response
	 * IR ("=" when empty) or NULL.  IR is secret: never logged. */
	enum ma_err (*begin)(void *ctx, const char *mech, const char *ir);
	/* Read the server's next reply.  For MA_REPLY_CHALLENGE, *text / *len
	 * is the base64 challenge, valid until the next call. */
	enum ma_err (*reply)(void *ctx, enum ma_sasl_reply *kind,
	                     const char **text, size_t *len);
	/* Send one base64 response line, or "*" to cancel (RFC 4422 3.5). */
	enum ma_err (*respond)(void *ctx, const char *b64);
};

/*
 * Candidates in SPEC order: what the server advertises (bit set of
 * enum ma_mech, after TLS) intersected with ALLOWED, -PLUS only with
 * HAVE_CB.  MA_MECH_IMAP_LOGIN is never a candidate here.  Returns how many
 * were written to OUT.
 */
size_t ma_sasl_candidates(unsigned server_mechs, unsigned allowed, bool have_cb,
                          enum ma_mech out[MA_MECH_COUNT]);

/*
 * The selection policy in one place (SPEC 3): try the candidates in order;
 * an unsupported answer moves to the next; a temporary failure stops; a
 * -PLUS attempt refused with a bare rejection is retried once with the
 * same-hash SCRAM without -PLUS (see struct ma_sasl_policy); a SCRAM or
 * CRAM rejection retries once with PLAIN when FALLBACK is set and
 * the server offers PLAIN; any other rejection ends; a policy refusal ends
 * with MA_POLICY (never a PLAIN retry), and so does a list of candidates
 * that ran out after a "too weak" refusal.  Returns MA_OK, MA_AUTH_FAILED,
 * MA_UNAVAILABLE (tempfail), MA_POLICY, MA_NO_MECH (nothing usable) or a
 * transport/protocol error.  *used names the last mechanism tried.
 */
enum ma_err ma_sasl_authenticate(const struct ma_sasl_proto *proto,
                                 unsigned server_mechs, unsigned allowed,
                                 bool fallback, const struct ma_sasl_creds *c,
                                 const struct ma_log *log, enum ma_mech *used);

/* The same with the whole policy in one place: ALLOWED and FALLBACK as
 * above; FIRST (an enum ma_mech, or -1) is tried before the others when the
 * server offers it and ALLOWED has it; FELL_BACK is set when a SCRAM or
 * CRAM rejection was followed by the one PLAIN retry.
 * UNBOUND_RETRY is set when a -PLUS attempt refused with a bare rejection
 * (no SCRAM e=, no valid server signature) was retried once with the
 * same-hash SCRAM without channel binding.  That retry happens whatever
 * FALLBACK says and is not the PLAIN fallback, which may still follow it;
 * it is skipped when FIRST is that -PLUS mechanism (it worked for this user
 * before, so its rejection judges the password). */
struct ma_sasl_policy {
	unsigned allowed;
	bool fallback;
	int first;
	bool fell_back;          /* out */
	bool unbound_retry;      /* out */
};

enum ma_err ma_sasl_authenticate_policy(const struct ma_sasl_proto *proto,
                                        unsigned server_mechs, struct ma_sasl_policy *policy,
                                        const struct ma_sasl_creds *c,
                                        const struct ma_log *log, enum ma_mech *used);

/* One exchange with one mechanism (exported for tests). */
enum ma_err ma_sasl_exchange(const struct ma_sasl_proto *proto,
                             const struct ma_mech_ops *m,
                             const struct ma_sasl_creds *c,
                             const struct ma_log *log,
                             enum ma_sasl_reply *last);

/*
 * Match one advertised mechanism token (exact, case-insensitive: "PLAIN"
 * matches, "XPLAIN" does not) and return its enum ma_mech, or -1.
 */
int ma_sasl_mech_from_token(const char *tok, size_t len);

#endif
