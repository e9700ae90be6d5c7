/*
 * test_exports.c - dlopen the built module: the three PAM entry points are
 * there, nothing of the library leaks out (version script), and every
 * entry point fails closed without a configuration.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "unit.h"

#ifndef MODULE_PATH
#define MODULE_PATH "./pam_mailauth.so"
#endif

START_TEST(only_pam_sm_exported)
{
	const char *path = getenv("MA_TEST_MODULE") ? getenv("MA_TEST_MODULE") : MODULE_PATH;
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	ck_assert_msg(h != NULL, "dlopen %s: %s", path, dlerror());
	ck_assert_ptr_nonnull(dlsym(h, "pam_sm_authenticate"));
	ck_assert_ptr_nonnull(dlsym(h, "pam_sm_setcred"));
	ck_assert_ptr_nonnull(dlsym(h, "pam_sm_acct_mgmt"));
	static const char *hidden[] = {
		"ma_authenticate", "ma_config_load", "ma_tls_connect", "ma_base64_encode",
		"ma_imap_parse_line", "ma_sasl_authenticate", "ma_mech_plain", "ma_wipe",
		"pam_sm_open_session", "pam_sm_chauthtok",
	};
	for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
		ck_assert_msg(dlsym(h, hidden[i]) == NULL, "%s is exported", hidden[i]);
	dlclose(h);
}
END_TEST

static Suite *exports_suite(void)
{
	Suite *s = suite_create("exports");
	TCase *tc = tcase_create("dlopen");
	tcase_add_test(tc, only_pam_sm_exported);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ma_unit_run(exports_suite());
}
