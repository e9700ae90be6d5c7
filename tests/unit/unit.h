/*
 * unit.h - shared by the check-based unit test programs in tests/unit/.
 * Each test_*.c builds into its own program with its own main(), so one
 * suite failing to build does not hide the others.
 */
#ifndef MA_UNIT_H
#define MA_UNIT_H

#include <check.h>
#include <stdlib.h>

/* Run SUITE and return the process exit status (0 only when all passed). */
static inline int ma_unit_run(Suite *suite)
{
	SRunner *sr = srunner_create(suite);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
