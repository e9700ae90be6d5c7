/*
 * pamlogin.c - a minimal PAM application for tests that cannot use
 * pam_wrapper: tests/real/test_trust.sh installs a setuid-root copy of it,
 * the way su is installed, and runs it as an unprivileged user with a
 * hostile environment.  LD_PRELOAD (pam_wrapper) is ignored in a setuid
 * process, so the PAM service comes from pam_start_confdir() instead.
 *
 *   pamlogin CONFDIR SERVICE USER      password: one line of stdin
 *   pamlogin --tls-defaults            what SSL_CTX_new() gives a client in this
 *                                      process ("min=0x303 seclevel=2"): shows
 *                                      whether an OPENSSL_CONF took effect
 *
 * Prints "pamlogin: <pam_strerror>" and exits with the PAM code of
 * pam_authenticate() (0 = PAM_SUCCESS), 100 on a usage or setup error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <security/pam_appl.h>

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	const char *password = data;
	struct pam_response *r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF && (r[i].resp = strdup(password)) == NULL) {
			for (int k = 0; k < i; k++)
				free(r[k].resp);
			free(r);
			return PAM_BUF_ERR;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

int main(int argc, char **argv)
{
	char password[1100];
	if (argc == 2 && strcmp(argv[1], "--tls-defaults") == 0) {
		SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
		if (ctx == NULL)
			return 100;
		printf("min=0x%lx seclevel=%d\n", (unsigned long)SSL_CTX_get_min_proto_version(ctx),
		       SSL_CTX_get_security_level(ctx));
		SSL_CTX_free(ctx);
		return 0;
	}
	if (argc != 4 || fgets(password, sizeof(password), stdin) == NULL) {
		fprintf(stderr, "usage: pamlogin CONFDIR SERVICE USER < password\n");
		return 100;
	}
	password[strcspn(password, "\r\n")] = '\0';
	struct pam_conv pc = { conv, password };
	pam_handle_t *pamh = NULL;
	int rc = pam_start_confdir(argv[2], argv[3], &pc, argv[1], &pamh);
	if (rc != PAM_SUCCESS) {
		fprintf(stderr, "pamlogin: pam_start_confdir: %d\n", rc);
		return 100;
	}
	rc = pam_authenticate(pamh, 0);
	printf("pamlogin: %s (uid %lu, euid %lu)\n", rc == PAM_SUCCESS ? "successfully authenticated"
	       : pam_strerror(pamh, rc), (unsigned long)getuid(), (unsigned long)geteuid());
	pam_end(pamh, rc);
	return rc;
}
