/*
 * codes.h - what a server's refusal of a login means, in one table: IMAP
 * response codes (RFC 5530, and the [ALERT] texts of known providers) and
 * SMTP replies with their enhanced status codes (RFC 3463, RFC 4954, and
 * the replies of known providers).  imap.c and smtp.c classify every
 * non-success answer to AUTHENTICATE / LOGIN / AUTH here and nowhere else;
 * the SASL engine, the driver, the broker and the PAM glue act on the
 * class; the log and `mailauth login` show the meaning and the remedy.
 *
 * Pure functions over (buf, len): no state, no allocation, for the unit
 * tests and fuzz/fuzz_codes.c.  Every string of the table is a constant
 * without control characters or double quotes (it is printed inside
 * meaning="..." in the log).
 */
#ifndef MA_CODES_H
#define MA_CODES_H

#include <stdbool.h>
#include <stddef.h>

enum ma_code_proto { MA_CODE_IMAP, MA_CODE_SMTP };

/* What the client does with a reply of that row. */
enum ma_code_class {
	MA_CODE_REJECTED,    /* the credentials were refused: MA_AUTH_FAILED, stop */
	MA_CODE_TEMPORARY,   /* no verdict now: MA_UNAVAILABLE, the next server */
	MA_CODE_POLICY,      /* the service refuses this way of logging in, or the
	                        account, whatever the password: MA_POLICY, stop,
	                        no other server, no PLAIN fallback */
	MA_CODE_NEXT_MECH,   /* this mechanism is not available: try the next */
	MA_CODE_WEAK_MECH,   /* this mechanism is refused (too weak, a password
	                        transition is needed): try the next; MA_POLICY
	                        when no mechanism is accepted */
};

/* IMAP status of the tagged reply a row matches. */
enum ma_code_status { MA_CODE_ANY_STATUS, MA_CODE_NO, MA_CODE_BAD };

/* When a row applies: before or after credential-bearing data went out in
 * this exchange (a refusal before the server saw anything is about the
 * mechanism, after it about the login). */
enum ma_code_when { MA_CODE_ALWAYS, MA_CODE_BEFORE_PAYLOAD, MA_CODE_AFTER_PAYLOAD };

struct ma_code_row {
	const char *id;              /* stable name, e.g. "m365-smtp-auth-disabled-tenant" */
	enum ma_code_proto proto;
	/* Match: every field that is set must match. */
	enum ma_code_status status;  /* IMAP */
	int reply_lo, reply_hi;      /* SMTP reply code range (both 0: IMAP) */
	const char *code;            /* IMAP: response code atom ("UNAVAILABLE"),
	                                SMTP: enhanced status code ("5.7.139");
	                                NULL: any, or none */
	const char *text;            /* case-insensitive substring of the text, or NULL */
	enum ma_code_when when;
	/* Meaning. */
	enum ma_code_class cls;
	const char *meaning;         /* for the log, `mailauth login`, and (policy) the user */
	const char *remedy;          /* what to do, the provider's own remedy where known */
};

/* Longest text the SMTP classification looks at (the joined lines). */
#define MA_CODES_TEXT_MAX 1024

/*
 * The row for an IMAP tagged NO or BAD (BAD: true) to AUTHENTICATE or
 * LOGIN, with its response code (CODE / CODE_LEN: the inside of "[...]",
 * its first word is the atom; NULL when there is none) and TEXT.
 * PAYLOAD_SENT: the server has seen credential-bearing data.  Never NULL:
 * the last rows take every reply.
 */
const struct ma_code_row *ma_codes_imap(bool bad, const char *code, size_t code_len,
                                        const char *text, size_t text_len, bool payload_sent);

/*
 * The row for an SMTP reply REPLY to AUTH or to a response, whose text
 * (all lines joined, see ma_smtp_reply) is TEXT; the enhanced status code
 * (RFC 3463 section 2: class "." subject "." detail, with the class of the
 * reply code, RFC 2034 section 4) is read from its start.  NULL for the
 * codes that are not a refusal (2xx, 3xx) or not a reply code.
 */
const struct ma_code_row *ma_codes_smtp(int reply, const char *text, size_t text_len,
                                        bool payload_sent);

/*
 * Length of the RFC 3463 enhanced status code at the start of TEXT
 * ("5.7.139"), followed by SP or the end, whose class is CLASS_DIGIT; 0
 * when there is none.
 */
size_t ma_codes_enhanced(const char *text, size_t len, char class_digit);

/* The whole table, in matching order (first match wins), for the tests. */
const struct ma_code_row *ma_codes_table(size_t *n);

/* The SASL engine's reply kind (enum ma_sasl_reply, sasl.h) for row R. */
int ma_codes_sasl_reply(const struct ma_code_row *r);

/* "rejected", "temporary", "policy", "next-mechanism", "weak-mechanism". */
const char *ma_code_class_name(enum ma_code_class c);

#endif
