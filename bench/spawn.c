/*
 * bench/spawn.c - run one command and report what it cost:
 *
 *   spawn OUTFILE COMMAND [ARGS...]
 *
 * forks, execs COMMAND (stdin, stdout and stderr inherited), waits with wait4()
 * and writes one line to OUTFILE:
 *
 *   WALL_MS UTIME_S STIME_S MAXRSS_KB EXIT_STATUS
 *
 * (wall time from fork to reaped; the child's rusage).  Exits with the child's
 * status (128+N for a signal).
 *
 * Why not fork from the Python driver: ru_maxrss of a child includes the memory
 * of the process it was forked from (Linux keeps the pre-exec high-water mark),
 * so every child of a 15 MB Python would report at least 15 MB.  This launcher
 * is small, so the figure is the command's own peak.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: spawn OUTFILE COMMAND [ARGS...]\n");
		return 127;
	}
	double t0 = now_ms();
	pid_t pid = fork();
	if (pid < 0) {
		perror("spawn: fork");
		return 127;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		perror("spawn: exec");
		_exit(127);
	}
	int status = 0;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("spawn: wait4");
		return 127;
	}
	double wall = now_ms() - t0;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	FILE *f = fopen(argv[1], "we");
	if (f == NULL) {
		perror("spawn: output file");
		return 127;
	}
	fprintf(f, "%.3f %ld.%06ld %ld.%06ld %ld %d\n", wall, (long)ru.ru_utime.tv_sec,
	        (long)ru.ru_utime.tv_usec, (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec,
	        ru.ru_maxrss, code);
	fclose(f);
	return code;
}
