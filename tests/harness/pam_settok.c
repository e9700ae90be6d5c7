/*
 * pam_settok.c - test-only PAM module standing in for a module stacked
 * above pam_mailauth: it stores token=VALUE as PAM_AUTHTOK, as pam_unix
 * does after prompting, so use_first_pass / try_first_pass can be tested.
 */
#include <string.h>

#include <security/pam_modules.h>

int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv);
int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv);

int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)flags;
	for (int i = 0; i < argc; i++)
		if (strncmp(argv[i], "token=", 6) == 0)
			pam_set_item(pamh, PAM_AUTHTOK, argv[i] + 6);
	return PAM_IGNORE;
}

int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_IGNORE;
}
