/*
 * sasl_scram.h - internal to libmailauth and its tests: start a SCRAM
 * exchange with a fixed client nonce, so the RFC 5802 / RFC 7677 examples
 * can be replayed byte for byte.  Never used by the module itself (and not
 * exported from it: the library is built with -fvisibility=hidden).
 */
#ifndef MA_SASL_SCRAM_H
#define MA_SASL_SCRAM_H

#include "sasl.h"

/*
 * Like M->start(C, STATE) for one of the four SCRAM mechanisms, but with
 * NONCE (printable, no ',', 1 to 64 characters) as the client nonce
 * instead of 24 random bytes.  The state is used and freed through M.
 * Returns MA_INTERNAL for a non-SCRAM M or a bad NONCE.
 */
enum ma_err ma_scram_start_with_nonce(const struct ma_mech_ops *m,
                                      const struct ma_sasl_creds *c,
                                      const char *nonce, void **state);

#endif
