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
/*
 * PART ends after 1/PARTS of the time WHOLE has left (PARTS >= 1), never
 * later than WHOLE: one of several things still to try (servers,
 * addresses) may not starve the others, and the total stays the one
 * timeout.  PARTS == 1 is WHOLE itself.
 */
void ma_deadline_share(struct ma_deadline *part, const struct ma_deadline *whole,
                       unsigned parts);
/* Milliseconds left, 0 when passed (never negative). */
int ma_deadline_remaining_ms(const struct ma_deadline *dl);
/* Milliseconds since START (monotonic), for durations in logs. */
long ma_elapsed_ms(const struct timespec *start);

#endif
