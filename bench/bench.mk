# bench/bench.mk - speed figures (included by the main Makefile; not part of
# make check, asserts nothing about speed).  See bench/README.md.
#
#   make bench      a private Dovecot (+ Postfix) on BENCH_BASEPORT (30143..),
#                   then pam_mailauth (tool, in-process through libpam), curl and
#                   Python's imaplib/smtplib side by side on every path: latency
#                   on loopback and through a delaying proxy (round trips), CPU
#                   and peak RSS per login, throughput at 1/8/32 concurrent;
#                   then the broker (mailauthd as nobody) next to in-process:
#                   cache hit, cache miss, and the Dovecot logins 1,000 web
#                   requests at 50 concurrent cause either way.
#                   Table on stdout and in tests/tmp/bench/results.md.
#   make profile    callgrind over in-process IMAPS logins: instructions per
#                   login, libssl/libcrypto share vs pam_mailauth's own code;
#                   peak RSS after 100 vs 1000 logins.
#
# Knobs (environment or make variables): BENCH_BASEPORT (30143), BENCH_TMP
# (tests/tmp/bench), BENCH_SAMPLES (50 per loopback cell), BENCH_PROXY_SAMPLES
# (8), BENCH_DELAY_MS (25 each way), BENCH_POSTFIX (1 = also Postfix's two
# ports when postfix is installed), PROFILE_LOGINS (20), PROFILE_MEM (1000),
# BENCH_REPORT (copy the report there), BENCH_BROKER (0: no broker rows),
# BENCH_BROKER_SAMPLES (100), BENCH_BROKER_HIT_SAMPLES (500), BENCH_LOAD_REQUESTS
# (1000), BENCH_LOAD_CONCURRENCY (50), BENCH_LOAD_CACHE_TTL (300).

BENCH_CFLAGS = -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) $(WERROR) $(HARDEN) $(SAN) $(CFLAGS)

bench/pamloop: bench/pamloop.c
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(ALL_LDFLAGS) -lpam -lpthread

bench/spawn: bench/spawn.c
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(ALL_LDFLAGS)

bench: all bench/pamloop bench/spawn
	bench/run.sh bench

profile: all bench/pamloop bench/spawn
	bench/run.sh profile

clean-bench:
	rm -f bench/pamloop bench/spawn

clean: clean-bench

.PHONY: bench profile clean-bench
