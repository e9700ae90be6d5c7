/*
 * config.h - safe open, libconfuse schema and validation of
 * /etc/security/pam_mailauth.conf into a plain struct (SPEC section 5).
 */
#ifndef MA_CONFIG_H
#define MA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "libmailauth.h"

#define MA_CONFIG_DEFAULT_PATH "/etc/security/pam_mailauth.conf"
#define MA_CONFIG_MAX_SIZE (64 * 1024)   /* bytes; larger files are refused */
#define MA_MAX_SERVERS 16
#define MA_MAX_PINS 16
#define MA_PIN_LEN 32                     /* SHA-256 of the SubjectPublicKeyInfo */
#define MA_STATE_DIR_DEFAULT "/var/lib/mailauth"
#define MA_MAX_FAILURES 100               /* largest max_failures */

enum ma_protocol { MA_PROTO_IMAP, MA_PROTO_SMTP };
enum ma_tls_mode { MA_TLS_IMPLICIT, MA_TLS_STARTTLS, MA_TLS_NONE };

/*
 * Mechanisms in the preference order of SPEC section 3, strongest first.
 * The enum order IS the selection order.  CRAM-MD5 is off unless listed in
 * `mechanisms`.  MA_MECH_IMAP_LOGIN is the IMAP LOGIN command (RFC 9051
 * 6.2.3), named "IMAP-LOGIN" in the configuration; it is not a SASL mechanism.
 */
enum ma_mech {
	MA_MECH_SCRAM_SHA_256_PLUS,
	MA_MECH_SCRAM_SHA_256,
	MA_MECH_SCRAM_SHA_1_PLUS,
	MA_MECH_SCRAM_SHA_1,
	MA_MECH_CRAM_MD5,
	MA_MECH_PLAIN,
	MA_MECH_LOGIN,
	MA_MECH_IMAP_LOGIN,
	MA_MECH_COUNT
};
#define MA_MECH_BIT(m) (1u << (m))
/* Default `mechanisms`: everything but CRAM-MD5. */
#define MA_MECH_DEFAULT_SET (((1u << MA_MECH_COUNT) - 1u) & ~MA_MECH_BIT(MA_MECH_CRAM_MD5))

/*
 * `channel_binding` of a server (SCRAM -PLUS).  AUTO: tls-exporter on
 * TLS 1.3 (RFC 9266), tls-unique on TLS 1.2 with the extended master
 * secret (RFC 5929, RFC 7627).  TLS_UNIQUE: tls-unique on TLS 1.3 too, as
 * Cyrus SASL binds.  TLS_EXPORTER: tls-exporter only.  NONE: never -PLUS.
 */
enum ma_cb_mode { MA_CB_AUTO, MA_CB_TLS_EXPORTER, MA_CB_TLS_UNIQUE, MA_CB_NONE };

/* "auto", "tls-exporter", "tls-unique", "none"; NULL when out of range. */
const char *ma_cb_mode_name(enum ma_cb_mode m);

/* "SCRAM-SHA-256" etc.; NULL for an out-of-range value. */
const char *ma_mech_name(enum ma_mech m);
/* Case-insensitive exact lookup; returns -1 when unknown. */
int ma_mech_from_name(const char *name);

struct ma_server {
	char *name;                 /* section title, e.g. "primary" */
	enum ma_protocol protocol;
	char *host;
	unsigned port;              /* resolved default when not given */
	enum ma_tls_mode tls;
	char *verify_name;          /* never NULL after load: defaults to host */
	char *ca_file;              /* effective (server, else global); NULL = system store */
	char *ca_path;              /* effective (server, else global); NULL = system store */
	unsigned char pins[MA_MAX_PINS][MA_PIN_LEN];
	size_t n_pins;
	unsigned mechanisms;        /* bit set of enum ma_mech */
	char **domains;             /* route only these domains here; n_domains == 0: all */
	size_t n_domains;
	unsigned config_line;       /* line of the section, for messages */
	/* The broker's (SPEC 10); the module in-process ignores them. */
	unsigned max_connections;   /* at once to this server; 0 = no limit */
	bool forward_client_ip;     /* IMAP ID x-originating-ip / SMTP XCLIENT ADDR */
	enum ma_cb_mode channel_binding;   /* MA_CB_NONE when tls = none */
};

struct ma_config {
	char *path;                 /* file it was loaded from (or the buffer's name) */
	unsigned timeout_ms;        /* whole authentication */
	int tls_min_version;        /* TLS1_2_VERSION or TLS1_3_VERSION */
	char *login_format;         /* %u %l %d %% */
	bool lowercase;
	char *helo_name;            /* NULL = this host's FQDN */
	char **domains;
	size_t n_domains;
	bool mechanism_fallback;
	unsigned long minimum_uid;
	bool require_local_user;
	struct ma_server *servers;
	size_t n_servers;
	/* The broker's (SPEC 10): seconds, 0 = off, except failure_window. */
	unsigned cache_ttl;         /* positive cache */
	unsigned negative_ttl;      /* the same wrong password again */
	unsigned max_failures;      /* per user and per remote host ... */
	unsigned failure_window;    /* ... within this many seconds; 0 failures = off */
	unsigned offline_ttl;       /* offline verifiers */
	char *state_dir;            /* never NULL after load */
	char **clients;             /* "user" / "@group" allowed besides root */
	size_t n_clients;
};

/*
 * Open PATH safely (O_NOFOLLOW|O_CLOEXEC, regular file, owner root or the
 * effective uid, not group/world-writable, at most MA_CONFIG_MAX_SIZE), parse
 * and validate it.  On success *out is owned by the caller (ma_config_free).
 * On failure returns MA_CONFIG (or MA_NOMEM) and writes "FILE:LINE: what" to
 * err when a line is known.
 */
enum ma_err ma_config_load(const char *path, struct ma_config **out,
                           char *err, size_t errlen);

/* The same without the file checks: parse LEN bytes of TEXT named NAME. */
enum ma_err ma_config_parse(const char *text, size_t len, const char *name,
                            struct ma_config **out, char *err, size_t errlen);

/* Frees everything and sets *cfg to NULL.  NULL-safe. */
void ma_config_free(struct ma_config **cfg);

/*
 * Expand login_format for USER (%u user, %l part before the last '@',
 * %d part after it or "" , %% a percent sign), lower-casing when configured.
 * Returns a malloc'd string or NULL (out of memory / too long).
 */
char *ma_config_login_name(const struct ma_config *cfg, const char *user);

/* Domain of a login name: after the last '@', or "" when there is none. */
const char *ma_login_domain(const char *login);

/* Routing (SPEC 5): does SRV serve LOGIN (after the login format)?  The
 * global `domains`, when set, must list its domain, and so must the
 * server's own `domains` when set.  Case-insensitive. */
bool ma_config_serves(const struct ma_config *cfg, const struct ma_server *srv,
                      const char *login);

#endif
