/*
 * sasl_login.c - the LOGIN mechanism (draft-murchison-sasl-login): the
 * server prompts twice; the first answer is the user name, the second the
 * password, whatever the prompt text says (SPEC 3: Microsoft 365 and others
 * use their own wording).  A third challenge aborts.
 */
#include <stdlib.h>
#include <string.h>

#include "sasl.h"
#include "secret.h"

struct login_state {
	const struct ma_sasl_creds *creds;
	int steps;
};

static enum ma_err login_start(const struct ma_sasl_creds *c, void **state)
{
	struct login_state *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return MA_NOMEM;
	st->creds = c;
	*state = st;
	return MA_OK;
}

static enum ma_err login_step(void *state, const unsigned char *in, size_t inlen,
                              unsigned char **out, size_t *outlen)
{
	struct login_state *st = state;
	const char *src;
	size_t n;

	(void)in;
	(void)inlen;
	switch (st->steps++) {
	case 0:
		src = st->creds->authcid;
		n = strlen(src);
		break;
	case 1:
		src = st->creds->password;
		n = st->creds->password_len;
		break;
	default:
		return MA_PROTOCOL;
	}
	unsigned char *msg = malloc(n + 1);
	if (msg == NULL)
		return MA_NOMEM;
	memcpy(msg, src, n);
	msg[n] = '\0';
	*out = msg;
	*outlen = n;
	return MA_OK;
}

static enum ma_err login_finish(void *state)
{
	struct login_state *st = state;
	return st->steps == 2 ? MA_OK : MA_PROTOCOL;
}

static void login_free(void *state)
{
	ma_freezero(state, sizeof(struct login_state));
}

const struct ma_mech_ops ma_mech_login = {
	.id = MA_MECH_LOGIN,
	.name = "LOGIN",
	.client_first = false,
	.start = login_start,
	.step = login_step,
	.finish = login_finish,
	.free = login_free,
};
