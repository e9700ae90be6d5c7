/*
 * deadline.c - one monotonic deadline per authentication (SPEC 2): a server
 * that drips one byte a second does not extend it, because every wait asks
 * for the time left rather than starting its own timer.
 */
#include "deadline.h"

#include <limits.h>

void ma_deadline_start(struct ma_deadline *dl, unsigned timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, &dl->end);
	dl->end.tv_sec += (time_t)(timeout_ms / 1000);
	dl->end.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl->end.tv_nsec >= 1000000000L) {
		dl->end.tv_sec++;
		dl->end.tv_nsec -= 1000000000L;
	}
}

void ma_deadline_share(struct ma_deadline *part, const struct ma_deadline *whole,
                       unsigned parts)
{
	if (parts <= 1) {
		*part = *whole;
		return;
	}
	ma_deadline_start(part, (unsigned)ma_deadline_remaining_ms(whole) / parts);
}

int ma_deadline_remaining_ms(const struct ma_deadline *dl)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ms = (long long)(dl->end.tv_sec - now.tv_sec) * 1000LL +
	               (dl->end.tv_nsec - now.tv_nsec) / 1000000L;
	if (ms <= 0)
		return 0;
	if (ms > INT_MAX)
		return INT_MAX;
	return (int)ms;
}

long ma_elapsed_ms(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - start->tv_sec) * 1000L +
	       (now.tv_nsec - start->tv_nsec) / 1000000L;
}
