/*
 * broker.c - one request to mailauthd over its Unix socket (broker.h).
 */
#include "broker.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "deadline.h"
#include "net.h"
#include "secret.h"

/*
 * Whom we talk to: only a process that could have created the socket, i.e.
 * root, the owner of the socket's directory or of the socket file, and only
 * when nobody else can write to that directory (no planted socket, no
 * rename over ours).
 */
static bool trusted_listener(int fd, const char *path, char *why, size_t whylen)
{
	char copy[PATH_MAX];
	struct stat dir;
	struct ucred peer;
	socklen_t plen = sizeof(peer);

	snprintf(copy, sizeof(copy), "%s", path);
	const char *d = dirname(copy);
	if (stat(d, &dir) != 0 || !S_ISDIR(dir.st_mode)) {
		snprintf(why, whylen, "broker socket directory %s: %s", d, strerror(errno));
		return false;
	}
	if ((dir.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		snprintf(why, whylen, "broker socket directory %s is writable by others "
		         "(mode %04o): refused", d, (unsigned)(dir.st_mode & 07777));
		return false;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &plen) != 0) {
		snprintf(why, whylen, "broker: SO_PEERCRED: %s", strerror(errno));
		return false;
	}
	/* Only the directory's owner or root can have made the socket file in
	 * it, so its owner is theirs to choose too (systemd's SocketUser=). */
	struct stat sock;
	bool sock_owner = lstat(path, &sock) == 0 && S_ISSOCK(sock.st_mode) &&
	                  peer.uid == sock.st_uid;
	if (peer.uid != 0 && peer.uid != dir.st_uid && !sock_owner) {
		snprintf(why, whylen, "broker socket %s is served by uid %lu, neither root nor "
		         "the owner of the socket or its directory (uid %lu): refused", path,
		         (unsigned long)peer.uid, (unsigned long)dir.st_uid);
		return false;
	}
	return true;
}

static enum ma_err send_all(int fd, const unsigned char *p, size_t len,
                            const struct ma_deadline *dl)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return MA_UNAVAILABLE;
		enum ma_err w = ma_net_wait(fd, POLLOUT, dl);
		if (w != MA_OK)
			return w;
	}
	return MA_OK;
}

static enum ma_err recv_all(int fd, unsigned char *p, size_t len, const struct ma_deadline *dl)
{
	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return MA_UNAVAILABLE;
		if (errno != EAGAIN && errno != EINTR)
			return MA_UNAVAILABLE;
		enum ma_err w = ma_net_wait(fd, POLLIN, dl);
		if (w != MA_OK)
			return w;
	}
	return MA_OK;
}

enum ma_err ma_broker_call(const char *path, const struct ma_wire_request *req,
                           unsigned timeout_ms, struct ma_wire_response *resp,
                           char *why, size_t whylen)
{
	enum ma_err rc = MA_UNAVAILABLE;
	unsigned char frame[MA_WIRE_MAX_FRAME];
	size_t flen = 0;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ma_deadline dl;
	int fd = -1;

	memset(resp, 0, sizeof(*resp));
	resp->err = MA_UNAVAILABLE;
	why[0] = '\0';
	ma_deadline_start(&dl, timeout_ms);
	if (path == NULL || strlen(path) >= sizeof(sa.sun_path) || path[0] != '/') {
		snprintf(why, whylen, "broker socket must be an absolute path shorter than %zu bytes",
		         sizeof(sa.sun_path));
		goto out;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (ma_wire_encode_request(req, frame, sizeof(frame), &flen) != 0) {
		rc = MA_BAD_INPUT;
		snprintf(why, whylen, "request fields over their bounds");
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		goto out;
	}
	/* A Unix socket connects at once or not at all, unless the listen
	 * queue is full (EAGAIN): then wait for room within the deadline. */
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && ma_deadline_remaining_ms(&dl) > 0) {
			struct timespec ts = { 0, 5 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			continue;
		}
		snprintf(why, whylen, "broker unreachable: connect %s: %s", path, strerror(errno));
		goto out;
	}
	if (!trusted_listener(fd, path, why, whylen))
		goto out;
	enum ma_err io = send_all(fd, frame, flen, &dl);
	ma_wipe(frame, sizeof(frame));
	unsigned char hdr[MA_WIRE_HEADER];
	enum ma_wire_type type;
	size_t blen = 0;
	/* Even when sending failed, the broker may have answered already (a
	 * caller it refuses is told so at once). */
	if (io != MA_TIMEOUT)
		io = recv_all(fd, hdr, sizeof(hdr), &dl);
	if (io != MA_OK) {
		snprintf(why, whylen, "broker %s: %s", path,
		         io == MA_TIMEOUT ? "no answer in time" : "connection lost");
		rc = io == MA_TIMEOUT ? MA_TIMEOUT : MA_UNAVAILABLE;
		goto out;
	}
	if (ma_wire_parse_header(hdr, &type, &blen) != 0 || type != MA_WIRE_RESULT) {
		snprintf(why, whylen, "broker %s: malformed answer", path);
		goto out;
	}
	io = recv_all(fd, frame, blen, &dl);
	const char *perr = "";
	if (io != MA_OK || ma_wire_parse_response(frame, blen, resp, &perr) != 0) {
		snprintf(why, whylen, "broker %s: %s", path,
		         io != MA_OK ? "answer cut short" : perr);
		resp->err = MA_UNAVAILABLE;
		goto out;
	}
	rc = MA_OK;
out:
	ma_wipe(frame, sizeof(frame));
	if (fd >= 0)
		close(fd);
	return rc;
}
