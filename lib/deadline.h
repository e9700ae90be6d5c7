/*
 * deadline.h - the one overall deadline of an authentication (SPEC 2).
 * Every blocking step asks how many milliseconds remain.
 */
#ifndef MA_DEADLINE_H
#define MA_DEADLINE_H

#include <time.h>

struct ma_deadline {
	struct timespec end;   /* CLOCK_MONOTONIC */
};

void ma_deadline_start(struct ma_deadline *dl, unsigned timeout_ms);
/* Milliseconds left, 0 when passed (never negative). */
int ma_deadline_remaining_ms(const struct ma_deadline *dl);
/* Milliseconds since START (monotonic), for durations in logs. */
long ma_elapsed_ms(const struct timespec *start);

#endif
