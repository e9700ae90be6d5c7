/*
 * tlsflood.h - forked C servers that keep a TLS client busy with records that
 * are not application data, for the deadline rules of issue "[T2 1/3]" item 2.
 * Python's ssl module cannot send these (it has no SSL_new_session_ticket, and
 * sends no HelloRequest), hence OpenSSL here.  Header-only, like fake.h.
 *
 *   struct flood f;
 *   flood_start(&f, FLOOD_HELLO_REQUEST, starttls, seconds)  f.port listens
 *   ... point a client at 127.0.0.1:f.port ...
 *   flood_stop(&f)        -> how many records the server sent (-1: it failed)
 *
 * Modes:
 *   FLOOD_HELLO_REQUEST  read the ClientHello, then send plaintext TLS
 *                        HelloRequest records (RFC 5246 7.4.1.1) as fast as
 *                        the client takes them, for SECONDS: no certificate
 *                        needed, anyone on the path can do it
 *   FLOOD_TICKETS        a verified TLS 1.3 server (MA_TEST_CERTS/server.pem)
 *                        that, after the handshake, sends one new session
 *                        ticket after another for SECONDS, never a greeting
 *   TICKETS_THEN_GREET   TLS 1.3 with COUNT tickets after the handshake, then
 *                        "* OK ready" and close (the cap on kept tickets)
 * With STARTTLS the server first plays the IMAP part: a greeting that
 * names STARTTLS, "<tag> STARTTLS" answered OK.
 * The server child gets PR_SET_PDEATHSIG and its own alarm.
 */
#ifndef MA_TLSFLOOD_H
#define MA_TLSFLOOD_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#ifndef FLOOD_PREGENERATE
#define FLOOD_PREGENERATE 0.3
#endif

enum flood_mode { FLOOD_HELLO_REQUEST, FLOOD_TICKETS, TICKETS_THEN_GREET };

struct flood {
	pid_t pid;
	unsigned port;
	int result[2];           /* the child writes its record count here */
};

static inline double flood_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read one CRLF line (bounded) from FD; 0 on success. */
static inline int flood_readline(int fd, char *buf, size_t len)
{
	size_t n = 0;
	while (n + 1 < len) {
		if (recv(fd, buf + n, 1, 0) != 1)
			return -1;
		if (buf[n++] == '\n') {
			buf[n] = '\0';
			return 0;
		}
	}
	return -1;
}

static inline int flood_send_all(int fd, const void *p, size_t len)
{
	const char *c = p;
	while (len > 0) {
		ssize_t w = send(fd, c, len, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		c += w;
		len -= (size_t)w;
	}
	return 0;
}

static inline long flood_serve(int fd, enum flood_mode mode, bool starttls, double seconds,
                               unsigned count)
{
	long sent = 0;
	char line[512];
	if (starttls) {
		static const char greet[] = "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n";
		if (flood_send_all(fd, greet, sizeof(greet) - 1) != 0 ||
		    flood_readline(fd, line, sizeof(line)) != 0)
			return -1;
		char *sp = strchr(line, ' ');
		if (sp == NULL || strncmp(sp, " STARTTLS\r\n", 11) != 0)
			return -1;
		*sp = '\0';
		char ok[600];
		int n = snprintf(ok, sizeof(ok), "%s OK begin TLS\r\n", line);
		if (flood_send_all(fd, ok, (size_t)n) != 0)
			return -1;
	}
	double end = flood_now() + seconds;
	if (mode == FLOOD_HELLO_REQUEST) {
		/* handshake(22), version 3.3, length 4; HelloRequest(0), length 0. */
		static const unsigned char hr[9] = { 22, 3, 3, 0, 4, 0, 0, 0, 0 };
		unsigned char batch[9 * 512];
		for (size_t i = 0; i < sizeof(batch); i += sizeof(hr))
			memcpy(batch + i, hr, sizeof(hr));
		if (recv(fd, line, sizeof(line), 0) <= 0)    /* the ClientHello */
			return -1;
		while (flood_now() < end) {
			if (flood_send_all(fd, batch, sizeof(batch)) != 0)
				break;               /* the client went away */
			sent += 512;
		}
		return sent;
	}
	const char *certs = getenv("MA_TEST_CERTS");
	char cert[PATH_MAX], key[PATH_MAX];
	snprintf(cert, sizeof(cert), "%s/server-chain.pem", certs != NULL ? certs : ".");
	snprintf(key, sizeof(key), "%s/server.key", certs != NULL ? certs : ".");
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		return -1;
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_num_tickets(ctx, mode == TICKETS_THEN_GREET ? count : 0);
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1)
		return -1;
	if (mode == TICKETS_THEN_GREET) {
		sent = count;
		static const char greet[] = "* OK ready\r\n";
		if (SSL_write(ssl, greet, sizeof(greet) - 1) <= 0)
			sent = -1;
		SSL_shutdown(ssl);
	} else {
		/* Tickets are made into a memory BIO in batches and written in
		 * one piece, so that the client always finds the next one already
		 * there (one write per ticket would let it catch up and wait). */
		BIO *mem = BIO_new(BIO_s_mem());
		SSL_set0_wbio(ssl, mem);
		/* First a long run made while the client waits, sent at once. */
		double gen_end = flood_now() + seconds * FLOOD_PREGENERATE;
		while (flood_now() < gen_end) {
			if (SSL_new_session_ticket(ssl) != 1 || SSL_do_handshake(ssl) != 1)
				return -1;
			sent++;
		}
		while (flood_now() < end) {
			for (int i = 0; i < 256; i++) {
				if (SSL_new_session_ticket(ssl) != 1 || SSL_do_handshake(ssl) != 1)
					return -1;
				sent++;
			}
			char *data = NULL;
			long n = BIO_get_mem_data(mem, &data);
			if (n <= 0 || flood_send_all(fd, data, (size_t)n) != 0)
				break;               /* the client went away */
			(void)BIO_reset(mem);
		}
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return sent;
}

/* Start a server in MODE on an ephemeral loopback port; 0 when it listens. */
static inline int flood_start_count(struct flood *f, enum flood_mode mode, bool starttls,
                                    double seconds, unsigned count)
{
	memset(f, 0, sizeof(*f));
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&a, &alen) != 0 || pipe2(f->result, O_CLOEXEC) != 0)
		return -1;
	f->port = ntohs(a.sin_port);
	fflush(NULL);
	f->pid = fork();
	if (f->pid < 0)
		return -1;
	if (f->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm((unsigned)seconds + 20);
		signal(SIGPIPE, SIG_IGN);
		int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		long sent = c >= 0 ? flood_serve(c, mode, starttls, seconds, count) : -1;
		if (write(f->result[1], &sent, sizeof(sent)) != (ssize_t)sizeof(sent))
			_exit(3);
		_exit(0);
	}
	close(l);
	close(f->result[1]);
	return 0;
}

static inline int flood_start(struct flood *f, enum flood_mode mode, bool starttls,
                              double seconds)
{
	return flood_start_count(f, mode, starttls, seconds, 0);
}

/* Wait for the server (it ends when its time is up or the client left). */
static inline long flood_stop(struct flood *f)
{
	long sent = -1;
	if (read(f->result[0], &sent, sizeof(sent)) != (ssize_t)sizeof(sent))
		sent = -1;
	close(f->result[0]);
	waitpid(f->pid, NULL, 0);
	return sent;
}

#endif
