/*
 * common.h - helpers shared by the libFuzzer targets in fuzz/ (not part of
 * libmailauth).  Every target checks invariants of the code under test and
 * aborts when one does not hold, so that libFuzzer keeps the input as a
 * crash: a wrong verdict is as much a finding as a wild write.
 */
#ifndef MA_FUZZ_COMMON_H
#define MA_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libmailauth.h"

/* libFuzzer's entry points (defined by each target). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Abort with the failed expression when OK is false. */
void fuzz_check(bool ok, const char *expr, const char *file, int line);
#define CHECK(c) fuzz_check((c), #c, __FILE__, __LINE__)

/* A view of the fuzz input that is cut into '\n'-separated pieces. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

/* Next piece (without its '\n') into *PIECE / *LEN; false when none left.
 * The last piece runs to the end of the input. */
bool fuzz_next(struct fuzz_in *in, const uint8_t **piece, size_t *len);

/* A NUL-terminated malloc'd copy of LEN bytes (the caller frees it). */
char *fuzz_strndup(const uint8_t *p, size_t len);

/* true when NEEDLE (NLEN > 0 bytes) occurs in HAY. */
bool fuzz_contains(const void *hay, size_t hlen, const void *needle, size_t nlen);

/* true when S (LEN bytes) is canonical base64 (RFC 4648 section 4). */
bool fuzz_is_base64(const char *s, size_t len);

/*
 * A log sink for struct ma_log that enforces SPEC 6: no line may contain a
 * control character (server text is escaped) nor any of the secrets
 * registered with fuzz_log_forbid (the password and its base64 forms).
 */
struct fuzz_log {
	const char *forbidden[8];
	size_t n_forbidden;
	unsigned lines;
};
void fuzz_log_init(struct fuzz_log *fl, struct ma_log *log, bool debug);
/* Registers S (a copy is not made: S must outlive the log). */
void fuzz_log_forbid(struct fuzz_log *fl, const char *s);
/* Aborts when TEXT (LEN bytes) contains a control byte or a forbidden string. */
void fuzz_log_check_text(const struct fuzz_log *fl, const char *text, size_t len);

/*
 * An independent SCRAM computation (RFC 5802 section 3) for one exchange:
 * MD is "SHA256" or "SHA1"; GS2 the gs2-header the client sent ("n,,",
 * "y,," or "p=tls-unique,,") and CB the channel binding data for "p=";
 * CLIENT_FIRST_BARE and SERVER_FIRST as sent.  Writes the expected
 * client-final-message (NUL-terminated, malloc'd) and the raw server
 * signature (SIGLEN bytes).  Returns false when SERVER_FIRST cannot be
 * parsed by this simple reader (the caller then does not compare).
 */
bool fuzz_scram_oracle(const char *md, const char *password, size_t password_len,
                       const char *gs2, const unsigned char *cb, size_t cb_len,
                       const char *client_first_bare, const char *server_first,
                       size_t server_first_len, char **client_final,
                       unsigned char *sig, size_t *siglen);

/* The iteration count of a server-first-message ("i=" attribute), or -1. */
long fuzz_scram_iterations(const uint8_t *msg, size_t len);

/* The fuzzer's budget: SCRAM iteration counts above this are skipped
 * (PBKDF2 is the only slow thing here; 4096 rounds take about 1 ms). */
#define FUZZ_SCRAM_MAX_ITER 16384L

#endif
