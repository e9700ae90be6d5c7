/*
 * sasl_plain.c - PLAIN (RFC 4616): one client message,
 *   message = [authzid] UTF8NUL authcid UTF8NUL passwd
 * sent with an empty authzid (we never ask to act as someone else).
 */
#include <stdlib.h>
#include <string.h>

#include "sasl.h"
#include "secret.h"

struct plain_state {
	const struct ma_sasl_creds *creds;
	int steps;
};

static enum ma_err plain_start(const struct ma_sasl_creds *c, void **state)
{
	struct plain_state *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return MA_NOMEM;
	st->creds = c;
	*state = st;
	return MA_OK;
}

static enum ma_err plain_step(void *state, const unsigned char *in, size_t inlen,
                              unsigned char **out, size_t *outlen)
{
	struct plain_state *st = state;
	(void)in;
	(void)inlen;
	/* RFC 4616 section 2: the client sends one message; a server that
	 * challenges again is out of sequence. */
	if (st->steps++ > 0)
		return MA_PROTOCOL;
	size_t ulen = strlen(st->creds->authcid);
	size_t n = 1 + ulen + 1 + st->creds->password_len;
	unsigned char *msg = malloc(n);
	if (msg == NULL)
		return MA_NOMEM;
	msg[0] = '\0';
	memcpy(msg + 1, st->creds->authcid, ulen);
	msg[1 + ulen] = '\0';
	memcpy(msg + 2 + ulen, st->creds->password, st->creds->password_len);
	*out = msg;
	*outlen = n;
	return MA_OK;
}

static enum ma_err plain_finish(void *state)
{
	struct plain_state *st = state;
	return st->steps == 1 ? MA_OK : MA_PROTOCOL;
}

static void plain_free(void *state)
{
	ma_freezero(state, sizeof(struct plain_state));
}

const struct ma_mech_ops ma_mech_plain = {
	.id = MA_MECH_PLAIN,
	.name = "PLAIN",
	.client_first = true,
	.start = plain_start,
	.step = plain_step,
	.finish = plain_finish,
	.free = plain_free,
};
