/*
 * heapscan.c - LD_PRELOAD helper for tests/real/test_tool.sh: when the
 * program exits, look for the bytes of $MA_HEAPSCAN_SECRET in every
 * writable private anonymous mapping of the process (the malloc heap and
 * arenas: where stdio keeps stdin's buffer) and write "found N" or "clean"
 * to $MA_HEAPSCAN_OUT.  The environment itself (on the stack) is not
 * scanned.  Not for sanitizer builds: their allocators live elsewhere.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((destructor)) static void heapscan_at_exit(void)
{
	const char *secret = getenv("MA_HEAPSCAN_SECRET");
	const char *out = getenv("MA_HEAPSCAN_OUT");
	if (secret == NULL || out == NULL || secret[0] == '\0')
		return;
	size_t slen = strlen(secret);
	unsigned long found = 0, scanned = 0;
	int maps = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (maps < 0)
		return;
	/* Read the whole map first: scanning must not allocate in between. */
	static char text[1 << 20];
	size_t len = 0;
	ssize_t r;
	while (len < sizeof(text) - 1 && (r = read(maps, text + len, sizeof(text) - 1 - len)) > 0)
		len += (size_t)r;
	close(maps);
	text[len] = '\0';
	for (char *line = text; line != NULL && *line != '\0';) {
		char *next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		unsigned long lo = 0, hi = 0;
		char perms[8] = "", path[256] = "";
		unsigned long long off = 0;
		unsigned inode = 0;
		char dev[16];
		int n = sscanf(line, "%lx-%lx %7s %llx %15s %u %255s", &lo, &hi, perms, &off, dev,
		               &inode, path);
		bool anon = n == 6 || (n == 7 && strcmp(path, "[heap]") == 0);
		if (n >= 6 && anon && perms[0] == 'r' && perms[1] == 'w' && perms[3] == 'p') {
			const char *p = (const char *)lo, *end = (const char *)hi;
			scanned += hi - lo;
			for (; p + slen <= end; p++)
				if (*p == secret[0] && memcmp(p, secret, slen) == 0)
					found++;
		}
		line = next;
	}
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	char msg[96];
	int m = found ? snprintf(msg, sizeof(msg), "found %lu in %lu bytes\n", found, scanned)
	              : snprintf(msg, sizeof(msg), "clean: %lu bytes scanned\n", scanned);
	if (m > 0 && write(fd, msg, (size_t)m) < 0)
		m = 0;
	close(fd);
}
