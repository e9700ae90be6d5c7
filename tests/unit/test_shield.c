/*
 * test_shield.c - lib/shield.c, the broker's memory: positive cache,
 * negative cache, failure throttle per user and per remote host, mechanism
 * memory, the bounded tables, and that no password is kept.  Time is
 * passed in, so nothing here sleeps.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "shield.h"
#include "unit.h"

#define T0 ((time_t)1700000000)

static struct ma_shield *sh;

static struct ma_shield *make(unsigned cache_ttl, unsigned negative_ttl, unsigned max_failures,
                              unsigned failure_window)
{
	struct ma_shield_params p = { cache_ttl, negative_ttl, max_failures, failure_window };
	struct ma_shield *s = NULL;
	ck_assert_int_eq(ma_shield_new(&p, &s), MA_OK);
	ck_assert_ptr_nonnull(s);
	return s;
}

static void teardown(void)
{
	ma_shield_free(&sh);
}

static struct ma_result result(const char *server, const char *mech, bool fell_back)
{
	struct ma_result r;
	memset(&r, 0, sizeof(r));
	snprintf(r.server, sizeof(r.server), "%s", server);
	snprintf(r.mechanism, sizeof(r.mechanism), "%s", mech);
	snprintf(r.tls_version, sizeof(r.tls_version), "TLSv1.3");
	r.fell_back = fell_back;
	r.server_index = 0;
	return r;
}

static void ok(const char *user, const char *pw, const char *rhost, time_t now)
{
	struct ma_result r = result("primary", "SCRAM-SHA-256", false);
	r.err = MA_OK;
	ma_shield_record(sh, user, pw, rhost, MA_OK, &r, now);
}

static void rejected(const char *user, const char *pw, const char *rhost, time_t now)
{
	struct ma_result r = result("primary", "SCRAM-SHA-256", false);
	r.err = MA_AUTH_FAILED;
	ma_shield_record(sh, user, pw, rhost, MA_AUTH_FAILED, &r, now);
}

static enum ma_shield_verdict check(const char *user, const char *pw, const char *rhost,
                                    time_t now)
{
	struct ma_shield_hit hit;
	memset(&hit, 0x5a, sizeof(hit));
	enum ma_shield_verdict v = ma_shield_check(sh, user, pw, rhost, now, &hit);
	if (v == MA_SHIELD_ASK) {
		/* Nothing to say: the hit is cleared, not left as it was. */
		ck_assert_str_eq(hit.server, "");
		ck_assert_str_eq(hit.why, "");
	} else {
		ck_assert_msg(hit.why[0] != '\0', "verdict %d without a reason", v);
	}
	return v;
}

#define ASK MA_SHIELD_ASK
#define ACCEPT MA_SHIELD_ACCEPT
#define REJECT MA_SHIELD_REJECT
#define THROTTLE MA_SHIELD_THROTTLE

/* ---- positive cache ---- */

START_TEST(positive_cache)
{
	struct ma_shield_hit hit;
	sh = make(300, 300, 5, 600);
	ok("alice", "right", "192.0.2.1", T0);

	ck_assert_int_eq(ma_shield_check(sh, "alice", "right", "192.0.2.1", T0, &hit), ACCEPT);
	ck_assert_str_eq(hit.server, "primary");
	ck_assert_str_eq(hit.mechanism, "SCRAM-SHA-256");
	ck_assert_str_eq(hit.tls_version, "TLSv1.3");
	ck_assert_msg(strstr(hit.why, "primary") != NULL, "why: %s", hit.why);
	ck_assert_ptr_null(strstr(hit.why, "right"));
	/* From another host or none: the cache is per user + password. */
	ck_assert_int_eq(check("alice", "right", "198.51.100.7", T0 + 1), ACCEPT);
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 2), ACCEPT);
	/* The last second of cache_ttl, and the first one after it. */
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 299), ACCEPT);
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 300), ASK);
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 301), ASK);
}
END_TEST

START_TEST(positive_cache_needs_same_user_and_password)
{
	sh = make(300, 300, 5, 600);
	ok("alice", "right", NULL, T0);
	ck_assert_int_eq(check("alice", "Right", NULL, T0 + 1), ASK);
	ck_assert_int_eq(check("alice", "right ", NULL, T0 + 1), ASK);
	ck_assert_int_eq(check("alice", "righ", NULL, T0 + 1), ASK);
	ck_assert_int_eq(check("alice", "", NULL, T0 + 1), ASK);
	ck_assert_int_eq(check("bob", "right", NULL, T0 + 1), ASK);
	ck_assert_int_eq(check("Alice", "right", NULL, T0 + 1), ASK);
	ck_assert_int_eq(check("alice ", "right", NULL, T0 + 1), ASK);
	/* Each user has their own entry. */
	ok("bob", "other", NULL, T0 + 2);
	ck_assert_int_eq(check("bob", "other", NULL, T0 + 3), ACCEPT);
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 3), ACCEPT);
	ck_assert_int_eq(check("alice", "other", NULL, T0 + 3), ASK);
	/* A new success with another password replaces the entry. */
	ok("alice", "changed", NULL, T0 + 4);
	ck_assert_int_eq(check("alice", "changed", NULL, T0 + 5), ACCEPT);
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 5), ASK);
}
END_TEST

START_TEST(no_positive_cache_when_ttl_zero)
{
	sh = make(0, 300, 5, 600);
	ok("alice", "right", NULL, T0);
	ck_assert_int_eq(check("alice", "right", NULL, T0), ASK);
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 1), ASK);
}
END_TEST

START_TEST(rejection_drops_positive_entry)
{
	sh = make(300, 300, 5, 600);
	ok("alice", "right", NULL, T0);
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 1), ACCEPT);
	/* Any rejection of alice: the password may have changed on the server. */
	rejected("alice", "guess", NULL, T0 + 2);
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 3), ASK);
	/* Another user's rejection does not touch alice's entry. */
	ok("alice", "right", NULL, T0 + 4);
	rejected("bob", "right", NULL, T0 + 5);
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 6), ACCEPT);
}
END_TEST

/* Errors other than a verdict (unavailable, TLS...) change nothing. */
START_TEST(other_errors_change_nothing)
{
	static const enum ma_err errs[] = { MA_BAD_INPUT, MA_USER_UNKNOWN, MA_UNAVAILABLE, MA_TLS,
	                                    MA_PROTOCOL, MA_TIMEOUT, MA_NO_MECH, MA_CONFIG,
	                                    MA_NOMEM, MA_INTERNAL };
	struct ma_result r = result("primary", "SCRAM-SHA-256", false);
	sh = make(300, 300, 1, 600);
	ok("alice", "right", "192.0.2.1", T0);
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		r.err = errs[i];
		ma_shield_record(sh, "alice", "right", "192.0.2.1", errs[i], &r, T0 + 1);
		ma_shield_record(sh, "alice", "wrong", "192.0.2.1", errs[i], &r, T0 + 1);
		ma_shield_record(sh, "bob", "x", "192.0.2.1", errs[i], &r, T0 + 1);
	}
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 2), ACCEPT);
	ck_assert_int_eq(check("alice", "wrong", NULL, T0 + 2), ASK);   /* not negative, not throttled */
	ck_assert_int_eq(check("bob", "x", "192.0.2.1", T0 + 2), ASK);
	ck_assert_int_eq(check("bob", "y", NULL, T0 + 2), ASK);
	struct ma_server_hint h = { true, true };
	ma_shield_hint(sh, "bob", "primary", T0 + 2, &h);
	ck_assert(!h.scram_proven && !h.plain_first);
}
END_TEST

/*
 * A policy refusal (Microsoft 365 with SMTP AUTH off, Google wanting an app
 * password): not negative-cached (once the administrator acts, the same
 * password must work at once), but it drops the positive entry (the server
 * no longer accepts these credentials) and counts in the throttle (Google
 * says "app password required" only for the right password: an oracle a
 * guesser must not have for free), and teaches no mechanism.
 */
START_TEST(policy_counts_but_is_not_cached)
{
	struct ma_result r = result("primary", "PLAIN", false);
	r.err = MA_POLICY;
	r.meaning = "Microsoft 365: SMTP AUTH (Basic) is disabled for the whole tenant";
	sh = make(300, 300, 3, 600);
	ok("alice", "right", "192.0.2.1", T0);
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 1), ACCEPT);
	ma_shield_record(sh, "alice", "right", "192.0.2.1", MA_POLICY, &r, T0 + 2);
	/* No positive entry any more, and no negative one: the server is asked. */
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 3), ASK);
	/* Two more policy refusals: three failures of alice, and of the host. */
	ma_shield_record(sh, "alice", "right", "192.0.2.1", MA_POLICY, &r, T0 + 4);
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 5), ASK);
	ma_shield_record(sh, "alice", "right", "192.0.2.1", MA_POLICY, &r, T0 + 6);
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 7), THROTTLE);
	ck_assert_int_eq(check("bob", "x", "192.0.2.1", T0 + 7), THROTTLE);
	ck_assert_int_eq(check("bob", "x", "198.51.100.1", T0 + 7), ASK);
	/* After the window, nothing remains: no negative entry was made. */
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 7 + 600), ASK);
	/* No mechanism learnt from a refusal. */
	struct ma_server_hint h = { true, true };
	ma_shield_hint(sh, "carol", "primary", T0 + 700, &h);
	ma_shield_record(sh, "carol", "pw", NULL, MA_POLICY, &r, T0 + 700);
	ma_shield_hint(sh, "carol", "primary", T0 + 701, &h);
	ck_assert(!h.scram_proven && !h.plain_first);
}
END_TEST

/* ---- negative cache ---- */

START_TEST(negative_cache)
{
	struct ma_shield_hit hit;
	sh = make(300, 120, 0, 600);              /* throttle off: only the negative cache */
	rejected("alice", "wrong1", "192.0.2.1", T0);
	ck_assert_int_eq(ma_shield_check(sh, "alice", "wrong1", "192.0.2.9", T0, &hit), REJECT);
	ck_assert_msg(strstr(hit.why, "negative_ttl") != NULL, "why: %s", hit.why);
	ck_assert_ptr_null(strstr(hit.why, "wrong1"));
	ck_assert_str_eq(hit.server, "");
	ck_assert_int_eq(check("alice", "wrong1", NULL, T0 + 119), REJECT);
	ck_assert_int_eq(check("alice", "wrong1", NULL, T0 + 120), ASK);   /* expired */
	ck_assert_int_eq(check("alice", "wrong1", NULL, T0 + 5000), ASK);
	/* Only that password of that user. */
	rejected("alice", "wrong1", NULL, T0 + 200);
	ck_assert_int_eq(check("alice", "wrong2", NULL, T0 + 201), ASK);
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 201), ASK);
	ck_assert_int_eq(check("bob", "wrong1", NULL, T0 + 201), ASK);
	ck_assert_int_eq(check("alice", "wrong1", NULL, T0 + 201), REJECT);
}
END_TEST

START_TEST(negative_cache_four_passwords_per_user)
{
	sh = make(300, 300, 0, 600);
	rejected("alice", "w1", NULL, T0);
	rejected("alice", "w2", NULL, T0 + 1);
	rejected("alice", "w3", NULL, T0 + 2);
	rejected("alice", "w4", NULL, T0 + 3);
	ck_assert_int_eq(check("alice", "w1", NULL, T0 + 4), REJECT);
	ck_assert_int_eq(check("alice", "w2", NULL, T0 + 4), REJECT);
	ck_assert_int_eq(check("alice", "w3", NULL, T0 + 4), REJECT);
	ck_assert_int_eq(check("alice", "w4", NULL, T0 + 4), REJECT);
	/* A fifth takes the place of the oldest. */
	rejected("alice", "w5", NULL, T0 + 5);
	ck_assert_int_eq(check("alice", "w5", NULL, T0 + 6), REJECT);
	ck_assert_int_eq(check("alice", "w1", NULL, T0 + 6), ASK);
	ck_assert_int_eq(check("alice", "w2", NULL, T0 + 6), REJECT);
}
END_TEST

START_TEST(no_negative_cache_when_ttl_zero)
{
	sh = make(300, 0, 0, 600);
	rejected("alice", "wrong", NULL, T0);
	ck_assert_int_eq(check("alice", "wrong", NULL, T0), ASK);
}
END_TEST

/* The password was changed on the server to one refused a moment ago: the
 * success clears that negative entry (but not the others) and the user's
 * failures. */
START_TEST(success_clears_negative_and_failures)
{
	sh = make(0, 300, 3, 600);               /* no positive cache, to see the negative */
	rejected("alice", "old", NULL, T0);
	rejected("alice", "new", NULL, T0 + 1);
	ck_assert_int_eq(check("alice", "new", NULL, T0 + 2), REJECT);
	ok("alice", "new", NULL, T0 + 3);
	ck_assert_int_eq(check("alice", "new", NULL, T0 + 4), ASK);
	ck_assert_int_eq(check("alice", "old", NULL, T0 + 4), REJECT);
	/* Two failures were counted before the success; two more now would
	 * make four >= 3 without the reset. */
	rejected("alice", "g1", NULL, T0 + 5);
	rejected("alice", "g2", NULL, T0 + 6);
	ck_assert_int_eq(check("alice", "g3", NULL, T0 + 7), ASK);
	rejected("alice", "g3", NULL, T0 + 8);
	ck_assert_int_eq(check("alice", "g4", NULL, T0 + 9), THROTTLE);
}
END_TEST

START_TEST(success_does_not_reset_host)
{
	sh = make(0, 0, 3, 600);
	rejected("alice", "a", "192.0.2.1", T0);
	rejected("bob", "b", "192.0.2.1", T0);
	rejected("carol", "c", "192.0.2.1", T0);
	ok("alice", "right", "192.0.2.1", T0 + 1);
	ck_assert_int_eq(check("dave", "d", "192.0.2.1", T0 + 2), THROTTLE);
	ck_assert_int_eq(check("alice", "x", "198.51.100.1", T0 + 2), ASK);
}
END_TEST

/* ---- throttle ---- */

START_TEST(throttle_at_max_failures)
{
	struct ma_shield_hit hit;
	sh = make(300, 0, 3, 600);
	rejected("alice", "g1", "192.0.2.1", T0);
	rejected("alice", "g2", "192.0.2.2", T0);
	ck_assert_int_eq(check("alice", "g3", "192.0.2.3", T0), ASK);   /* 2 < 3 */
	rejected("alice", "g3", "192.0.2.3", T0);
	/* Exactly max_failures: throttled, whatever the password. */
	ck_assert_int_eq(ma_shield_check(sh, "alice", "g4", "192.0.2.4", T0, &hit), THROTTLE);
	ck_assert_msg(strstr(hit.why, "user") != NULL && strstr(hit.why, "3 failures") != NULL,
	              "why: %s", hit.why);
	ck_assert_int_eq(check("alice", "right", NULL, T0 + 1), THROTTLE);
	/* Only alice; each host saw one failure. */
	ck_assert_int_eq(check("bob", "x", "192.0.2.1", T0 + 1), ASK);
}
END_TEST

START_TEST(throttle_per_rhost)
{
	struct ma_shield_hit hit;
	sh = make(300, 0, 3, 600);
	rejected("alice", "a", "192.0.2.1", T0);
	rejected("bob", "b", "192.0.2.1", T0 + 1);
	ck_assert_int_eq(check("carol", "c", "192.0.2.1", T0 + 2), ASK);
	rejected("carol", "c", "192.0.2.1", T0 + 2);
	/* Another user from the same host: throttled by the host counter. */
	ck_assert_int_eq(ma_shield_check(sh, "dave", "d", "192.0.2.1", T0 + 3, &hit), THROTTLE);
	ck_assert_msg(strstr(hit.why, "remote host") != NULL, "why: %s", hit.why);
	/* The same users from another host, or with no host: one failure each. */
	ck_assert_int_eq(check("dave", "d", "192.0.2.2", T0 + 3), ASK);
	ck_assert_int_eq(check("alice", "a2", "192.0.2.2", T0 + 3), ASK);
	ck_assert_int_eq(check("alice", "a2", NULL, T0 + 3), ASK);
	ck_assert_int_eq(check("alice", "a2", "", T0 + 3), ASK);
	/* Host names are compared exactly. */
	ck_assert_int_eq(check("dave", "d", "192.0.2.10", T0 + 3), ASK);
}
END_TEST

START_TEST(throttle_per_user_from_other_hosts)
{
	sh = make(300, 0, 3, 600);
	rejected("alice", "a", "192.0.2.1", T0);
	rejected("alice", "b", "192.0.2.2", T0);
	rejected("alice", "c", NULL, T0);
	/* The same user from yet another host: the user counter. */
	ck_assert_int_eq(check("alice", "d", "203.0.113.5", T0 + 1), THROTTLE);
	ck_assert_int_eq(check("alice", "d", NULL, T0 + 1), THROTTLE);
	/* Failures without a host count for the user only. */
	ck_assert_int_eq(check("bob", "x", "203.0.113.5", T0 + 1), ASK);
}
END_TEST

/*
 * A throttled attempt is not counted, so asking again and again while
 * throttled does not extend the lockout: with every failure at T0, the
 * lockout ends exactly failure_window seconds later.
 */
START_TEST(throttle_not_extended_by_throttled_checks)
{
	sh = make(300, 0, 3, 600);
	for (int i = 0; i < 3; i++)
		rejected("alice", i == 0 ? "a" : i == 1 ? "b" : "c", "192.0.2.1", T0);
	for (time_t t = T0; t < T0 + 600; t++) {
		ck_assert_int_eq(check("alice", "again", "192.0.2.1", t), THROTTLE);
		ck_assert_int_eq(check("mallory", "again", "192.0.2.1", t), THROTTLE);
	}
	ck_assert_int_eq(check("alice", "again", "192.0.2.1", T0 + 599), THROTTLE);
	ck_assert_int_eq(check("alice", "again", "192.0.2.1", T0 + 600), ASK);
	ck_assert_int_eq(check("mallory", "again", "192.0.2.1", T0 + 600), ASK);
	ck_assert_int_eq(check("alice", "again", "192.0.2.1", T0 + 601), ASK);
}
END_TEST

/*
 * max_failures per failure_window is a sliding window: with failures at
 * T0, T0+100 and T0+200 the user is throttled from T0+200 until
 * failure_window after the oldest of them (T0+599); then only two
 * failures lie in the window.  One more failure then throttles again
 * until failure_window after the (new) oldest of the last three.
 */
START_TEST(throttle_sliding_window)
{
	sh = make(300, 0, 3, 600);
	rejected("alice", "a", NULL, T0);
	rejected("alice", "b", NULL, T0 + 100);
	ck_assert_int_eq(check("alice", "x", NULL, T0 + 199), ASK);
	rejected("alice", "c", NULL, T0 + 200);
	ck_assert_int_eq(check("alice", "x", NULL, T0 + 200), THROTTLE);
	ck_assert_int_eq(check("alice", "x", NULL, T0 + 599), THROTTLE);
	ck_assert_int_eq(check("alice", "x", NULL, T0 + 600), ASK);
	rejected("alice", "d", NULL, T0 + 650);
	ck_assert_int_eq(check("alice", "x", NULL, T0 + 650), THROTTLE);
	ck_assert_int_eq(check("alice", "x", NULL, T0 + 699), THROTTLE);
	ck_assert_int_eq(check("alice", "x", NULL, T0 + 700), ASK);     /* b left the window */
	/* e at T0+700: c, d and e lie in the window, until c leaves it at
	 * T0+800. */
	rejected("alice", "e", NULL, T0 + 700);
	ck_assert_int_eq(check("alice", "x", NULL, T0 + 799), THROTTLE);
	ck_assert_int_eq(check("alice", "x", NULL, T0 + 800), ASK);
}
END_TEST

START_TEST(throttle_disabled_by_zero)
{
	sh = make(300, 0, 0, 600);
	for (int i = 0; i < 200; i++) {
		char pw[16];
		snprintf(pw, sizeof(pw), "g%d", i);
		rejected("alice", pw, "192.0.2.1", T0);
		ma_shield_count_failure(sh, "alice", "192.0.2.1", T0);
	}
	ck_assert_int_eq(check("alice", "x", "192.0.2.1", T0), ASK);
	ck_assert_int_eq(check("bob", "x", "192.0.2.1", T0), ASK);
}
END_TEST

/* max_failures above MA_MAX_FAILURES is clamped (the ring has that many
 * places): a limit of 1000 throttles at MA_MAX_FAILURES. */
START_TEST(throttle_clamped_to_max)
{
	sh = make(300, 0, 1000, 600);
	for (int i = 0; i < 99; i++)
		ma_shield_count_failure(sh, "alice", NULL, T0);
	ck_assert_int_eq(check("alice", "x", NULL, T0), ASK);
	ma_shield_count_failure(sh, "alice", NULL, T0);
	ck_assert_int_eq(check("alice", "x", NULL, T0), THROTTLE);
}
END_TEST

/*
 * Order: throttle, positive cache, negative cache.  While the user or the
 * host is throttled, the right password gets the same answer as a guess:
 * were a cached success answered, a throttled guesser could go on guessing
 * at any rate and would learn which guess is right (the cache an oracle).
 * The throttle's end then lets the cache answer again.
 */
START_TEST(throttle_before_the_caches)
{
	sh = make(900, 300, 3, 600);
	ok("alice", "right", "192.0.2.1", T0);
	rejected("bob", "b", "192.0.2.1", T0 + 1);
	rejected("carol", "c", "192.0.2.1", T0 + 1);
	rejected("dave", "d", "192.0.2.1", T0 + 1);
	/* The host is throttled: a cached success from it is not answered. */
	ck_assert_int_eq(check("alice", "right", "192.0.2.1", T0 + 2), THROTTLE);
	ck_assert_int_eq(check("alice", "guess", "192.0.2.1", T0 + 2), THROTTLE);
	/* From another host it is, and the entry is still there. */
	ck_assert_int_eq(check("alice", "right", "192.0.2.9", T0 + 2), ACCEPT);

	/* Throttled as a user, by failures that did not drop the entry. */
	ok("erin", "right", NULL, T0 + 3);
	for (int i = 0; i < 3; i++)
		ma_shield_count_failure(sh, "erin", NULL, T0 + 4);
	ck_assert_int_eq(check("erin", "guess", NULL, T0 + 5), THROTTLE);
	ck_assert_int_eq(check("erin", "right", NULL, T0 + 5), THROTTLE);
	/* failure_window after those failures the cache answers again. */
	ck_assert_int_eq(check("erin", "right", NULL, T0 + 4 + 600), ACCEPT);

	/* The negative cache comes after the throttle too. */
	ck_assert_int_eq(check("bob", "b", "192.0.2.1", T0 + 5), THROTTLE);
	ck_assert_int_eq(check("bob", "b", "192.0.2.9", T0 + 5), REJECT);
}
END_TEST

/*
 * A full table gives up an entry that holds nothing current before one
 * with recent failures: flooding it with other names does not wipe the
 * failures that throttle a guesser.
 */
START_TEST(flooding_the_table_keeps_recent_failures)
{
	sh = make(0, 0, 3, 600);
	for (int i = 0; i < 3; i++)
		rejected("victim", "guess", NULL, T0);
	ck_assert_int_eq(check("victim", "x", NULL, T0 + 1), THROTTLE);
	char name[32];
	for (int i = 0; i < MA_SHIELD_USERS + 100; i++) {
		snprintf(name, sizeof(name), "flood%d", i);
		ok(name, "pw", NULL, T0 + 2);   /* each makes an entry (mechanism memory) */
	}
	ck_assert_int_eq(check("victim", "x", NULL, T0 + 3), THROTTLE);
}
END_TEST

/* ---- count_failure ---- */

START_TEST(count_failure)
{
	sh = make(300, 300, 2, 600);
	ma_shield_count_failure(sh, "alice", "192.0.2.1", T0);
	ck_assert_int_eq(check("alice", "x", NULL, T0 + 1), ASK);
	ck_assert_int_eq(check("bob", "x", "192.0.2.1", T0 + 1), ASK);
	ma_shield_count_failure(sh, "alice", "192.0.2.1", T0 + 1);
	ck_assert_int_eq(check("alice", "x", NULL, T0 + 2), THROTTLE);
	ck_assert_int_eq(check("bob", "x", "192.0.2.1", T0 + 2), THROTTLE);
	/* They leave the window like any other failure. */
	ck_assert_int_eq(check("alice", "x", NULL, T0 + 599), THROTTLE);
	ck_assert_int_eq(check("alice", "x", NULL, T0 + 600), ASK);
	/* Without a host: the user only. */
	ma_shield_count_failure(sh, "carol", NULL, T0);
	ma_shield_count_failure(sh, "carol", "", T0);
	ck_assert_int_eq(check("carol", "x", NULL, T0 + 1), THROTTLE);
	ck_assert_int_eq(check("dave", "x", "", T0 + 1), ASK);
	/* A success resets those failures too. */
	ok("carol", "right", NULL, T0 + 2);
	ck_assert_int_eq(check("carol", "other", NULL, T0 + 3), ASK);
	/* It mixes with rejections in one count. */
	rejected("frank", "g", "198.51.100.1", T0);
	ma_shield_count_failure(sh, "frank", "198.51.100.2", T0);
	ck_assert_int_eq(check("frank", "h", NULL, T0 + 1), THROTTLE);
}
END_TEST

/* ---- mechanism memory ---- */

static struct ma_server_hint hint(const char *user, const char *server, time_t now)
{
	struct ma_server_hint h = { true, true };
	ma_shield_hint(sh, user, server, now, &h);
	return h;
}

static void learn(const char *user, const char *server, const char *mech, bool fell_back,
                  time_t now)
{
	struct ma_result r = result(server, mech, fell_back);
	r.err = MA_OK;
	ma_shield_record(sh, user, "pw", NULL, MA_OK, &r, now);
}

START_TEST(mechanism_memory_rules)
{
	struct ma_server_hint h;
	sh = make(0, 300, 5, 600);              /* no cache: memory works without it */

	h = hint("alice", "primary", T0);
	ck_assert(!h.scram_proven && !h.plain_first);

	learn("alice", "primary", "SCRAM-SHA-256", false, T0);
	h = hint("alice", "primary", T0 + 1);
	ck_assert(h.scram_proven && !h.plain_first);

	learn("alice", "primary", "PLAIN", true, T0 + 2);
	h = hint("alice", "primary", T0 + 3);
	ck_assert(!h.scram_proven && h.plain_first);

	/* PLAIN first, and it worked without a fallback: it stays first (else
	 * every other login would pay a failed SCRAM again). */
	learn("alice", "primary", "PLAIN", false, T0 + 4);
	h = hint("alice", "primary", T0 + 5);
	ck_assert(!h.scram_proven && h.plain_first);
	/* PLAIN without a fallback and without that memory (a server that
	 * offers no SCRAM): nothing to remember. */
	learn("bob", "primary", "PLAIN", false, T0 + 4);
	h = hint("bob", "primary", T0 + 5);
	ck_assert(!h.scram_proven && !h.plain_first);

	/* Any SCRAM variant proves SCRAM; other mechanisms prove nothing. */
	learn("alice", "primary", "SCRAM-SHA-1-PLUS", false, T0 + 6);
	ck_assert(hint("alice", "primary", T0 + 7).scram_proven);
	learn("alice", "primary", "SCRAM-SHA-256-PLUS", true, T0 + 8);
	h = hint("alice", "primary", T0 + 9);
	ck_assert(h.scram_proven && !h.plain_first);
	learn("alice", "primary", "LOGIN", true, T0 + 10);
	h = hint("alice", "primary", T0 + 11);
	ck_assert(!h.scram_proven && !h.plain_first);
	learn("alice", "primary", "CRAM-MD5", false, T0 + 12);
	h = hint("alice", "primary", T0 + 13);
	ck_assert(!h.scram_proven && !h.plain_first);
	learn("alice", "primary", "IMAP-LOGIN", false, T0 + 14);
	h = hint("alice", "primary", T0 + 15);
	ck_assert(!h.scram_proven && !h.plain_first);
}
END_TEST

START_TEST(mechanism_memory_expiry)
{
	struct ma_server_hint h;
	sh = make(300, 300, 5, 600);
	learn("alice", "primary", "SCRAM-SHA-256", false, T0);
	learn("bob", "primary", "PLAIN", true, T0);
	ck_assert(hint("alice", "primary", T0 + MA_SHIELD_MEMORY_TTL - 1).scram_proven);
	ck_assert(hint("bob", "primary", T0 + MA_SHIELD_MEMORY_TTL - 1).plain_first);
	h = hint("alice", "primary", T0 + MA_SHIELD_MEMORY_TTL);
	ck_assert(!h.scram_proven && !h.plain_first);
	h = hint("bob", "primary", T0 + MA_SHIELD_MEMORY_TTL);
	ck_assert(!h.scram_proven && !h.plain_first);
	/* A later success renews it. */
	learn("alice", "primary", "SCRAM-SHA-256", false, T0 + 1000);
	ck_assert(hint("alice", "primary", T0 + 1000 + MA_SHIELD_MEMORY_TTL - 1).scram_proven);
}
END_TEST

START_TEST(mechanism_memory_per_server_and_user)
{
	struct ma_server_hint h;
	sh = make(300, 300, 5, 600);
	learn("alice", "primary", "SCRAM-SHA-256", false, T0);
	learn("alice", "backup", "PLAIN", true, T0 + 1);
	h = hint("alice", "primary", T0 + 2);
	ck_assert(h.scram_proven && !h.plain_first);
	h = hint("alice", "backup", T0 + 2);
	ck_assert(!h.scram_proven && h.plain_first);
	h = hint("alice", "third", T0 + 2);
	ck_assert(!h.scram_proven && !h.plain_first);
	h = hint("alice", "Primary", T0 + 2);
	ck_assert(!h.scram_proven && !h.plain_first);
	h = hint("bob", "primary", T0 + 2);
	ck_assert(!h.scram_proven && !h.plain_first);
	/* Many servers: the newest is always remembered. */
	char name[16];
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		learn("carol", name, "SCRAM-SHA-256", false, T0 + 10 + i);
		ck_assert(hint("carol", name, T0 + 10 + i).scram_proven);
	}
	/* A rejection teaches nothing, and a success without a server name
	 * is not remembered. */
	struct ma_result r = result("other", "SCRAM-SHA-256", false);
	ma_shield_record(sh, "dave", "pw", NULL, MA_AUTH_FAILED, &r, T0);
	ck_assert(!hint("dave", "other", T0 + 1).scram_proven);
	r = result("", "SCRAM-SHA-256", false);
	ma_shield_record(sh, "dave", "pw", NULL, MA_OK, &r, T0);
	ck_assert(!hint("dave", "", T0 + 1).scram_proven);
}
END_TEST

/* ---- tables ---- */

static void user_name(char *buf, size_t len, const char *prefix, int i)
{
	snprintf(buf, len, "%s%d", prefix, i);
}

START_TEST(user_table_bound_and_lru)
{
	char u[32];
	sh = make(1000000, 300, 5, 600);
	for (int i = 0; i < MA_SHIELD_USERS; i++) {
		user_name(u, sizeof(u), "u", i);
		ok(u, "pw", NULL, T0 + i);
	}
	/* All there. */
	ck_assert_int_eq(check("u0", "pw", NULL, T0 + 5000), ACCEPT);   /* and u0 is now recent */
	user_name(u, sizeof(u), "u", MA_SHIELD_USERS - 1);
	ck_assert_int_eq(check(u, "pw", NULL, T0 + 5000), ACCEPT);
	/* 100 more: the 100 least recently used go, u0 (used at +5000) stays. */
	for (int i = 0; i < 100; i++) {
		user_name(u, sizeof(u), "x", i);
		ok(u, "pw", NULL, T0 + 6000 + i);
	}
	time_t t = T0 + 7000;
	for (int i = 1; i <= 100; i++) {
		user_name(u, sizeof(u), "u", i);
		ck_assert_msg(check(u, "pw", NULL, t) == ASK, "%s was not evicted", u);
	}
	ck_assert_int_eq(check("u0", "pw", NULL, t), ACCEPT);
	for (int i = 101; i < MA_SHIELD_USERS; i++) {
		user_name(u, sizeof(u), "u", i);
		ck_assert_msg(check(u, "pw", NULL, t) == ACCEPT, "%s was evicted", u);
	}
	for (int i = 0; i < 100; i++) {
		user_name(u, sizeof(u), "x", i);
		ck_assert_msg(check(u, "pw", NULL, t) == ACCEPT, "%s missing", u);
	}
	/* An evicted user comes back as new. */
	ok("u1", "pw", NULL, t + 1);
	ck_assert_int_eq(check("u1", "pw", NULL, t + 2), ACCEPT);
}
END_TEST

START_TEST(host_table_bound_and_lru)
{
	char h[32];
	sh = make(300, 300, 1, 1000000);
	for (int i = 0; i < MA_SHIELD_HOSTS; i++) {
		user_name(h, sizeof(h), "10.0.0.", i);
		ma_shield_count_failure(sh, "attacker", h, T0 + i);
	}
	ck_assert_int_eq(check("v", "pw", "10.0.0.0", T0 + 5000), THROTTLE);   /* touched */
	for (int i = 0; i < 100; i++) {
		user_name(h, sizeof(h), "10.1.0.", i);
		ma_shield_count_failure(sh, "attacker", h, T0 + 6000 + i);
	}
	time_t t = T0 + 7000;
	for (int i = 1; i <= 100; i++) {
		user_name(h, sizeof(h), "10.0.0.", i);
		ck_assert_msg(check("v", "pw", h, t) == ASK, "%s was not evicted", h);
	}
	ck_assert_int_eq(check("v", "pw", "10.0.0.0", t), THROTTLE);
	for (int i = 101; i < MA_SHIELD_HOSTS; i++) {
		user_name(h, sizeof(h), "10.0.0.", i);
		ck_assert_msg(check("v", "pw", h, t) == THROTTLE, "%s was evicted", h);
	}
	for (int i = 0; i < 100; i++) {
		user_name(h, sizeof(h), "10.1.0.", i);
		ck_assert_msg(check("v", "pw", h, t) == THROTTLE, "%s missing", h);
	}
}
END_TEST

/* Names that cannot be table entries: an empty one ("" marks a free slot)
 * and one of 256 bytes or more are not remembered, and do not disturb the
 * others. */
START_TEST(unstorable_names)
{
	char longname[300];
	memset(longname, 'l', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	sh = make(300, 300, 1, 600);
	ok("", "pw", NULL, T0);
	ck_assert_int_eq(check("", "pw", NULL, T0 + 1), ASK);
	ok(longname, "pw", NULL, T0);
	ck_assert_int_eq(check(longname, "pw", NULL, T0 + 1), ASK);
	rejected("", "pw", longname, T0);
	ma_shield_count_failure(sh, "", longname, T0);
	ck_assert_int_eq(check("", "x", longname, T0 + 1), ASK);
	/* 255 bytes is a name. */
	longname[255] = '\0';
	ok(longname, "pw", NULL, T0);
	ck_assert_int_eq(check(longname, "pw", NULL, T0 + 1), ACCEPT);
	/* The table still works across evictions after all that. */
	char u[32];
	for (int i = 0; i < MA_SHIELD_USERS + 50; i++) {
		user_name(u, sizeof(u), "u", i);
		ok(u, "pw", NULL, T0 + 10 + i);
		if (i % 7 == 0)
			ok("", "pw", NULL, T0 + 10 + i);
	}
	user_name(u, sizeof(u), "u", MA_SHIELD_USERS + 49);
	ck_assert_int_eq(check(u, "pw", NULL, T0 + 10 + MA_SHIELD_USERS + 50), ACCEPT);
	ck_assert_int_eq(check("u0", "pw", NULL, T0 + 10 + MA_SHIELD_USERS + 50), ASK);
}
END_TEST

/* ---- threads ---- */

struct worker {
	int id;
};

static void *work(void *arg)
{
	const struct worker *w = arg;
	char u[32];
	struct ma_shield_hit hit;
	struct ma_result r = result("primary", "SCRAM-SHA-256", false);
	struct ma_server_hint h;
	for (int i = 0; i < 2000; i++) {
		snprintf(u, sizeof(u), "t%d-%d", w->id, i % 50);
		ma_shield_record(sh, u, "pw", "192.0.2.1", i % 3 == 0 ? MA_AUTH_FAILED : MA_OK, &r,
		                 T0 + i);
		(void)ma_shield_check(sh, u, "pw", "192.0.2.1", T0 + i, &hit);
		ma_shield_count_failure(sh, u, "192.0.2.2", T0 + i);
		ma_shield_hint(sh, u, "primary", T0 + i, &h);
	}
	return NULL;
}

/* Concurrent callers (mailauthd's workers); meaningful under helgrind or
 * TSan, here at least that it neither crashes nor corrupts the tables. */
START_TEST(concurrent_callers)
{
	pthread_t th[4];
	struct worker w[4];
	sh = make(300, 300, 5, 600);
	for (int i = 0; i < 4; i++) {
		w[i].id = i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	ok("after", "pw", NULL, T0);
	ck_assert_int_eq(check("after", "pw", NULL, T0 + 1), ACCEPT);
}
END_TEST

START_TEST(free_is_null_safe)
{
	struct ma_shield *s = make(1, 1, 1, 1);
	ma_shield_free(&s);
	ck_assert_ptr_null(s);
	ma_shield_free(&s);
	/* Two shields have different keys: nothing carries over. */
	struct ma_shield *a = make(300, 300, 5, 600);
	sh = make(300, 300, 5, 600);
	ma_shield_record(a, "alice", "pw", NULL, MA_OK, &(struct ma_result){ .err = MA_OK }, T0);
	ck_assert_int_eq(check("alice", "pw", NULL, T0 + 1), ASK);
	ma_shield_free(&a);
}
END_TEST

/* ma_shield_mac: a name for "these credentials" under the shield's key. */
START_TEST(credential_mac)
{
	unsigned char a[32], b[32], c[32];
	sh = make(300, 300, 5, 600);
	ck_assert(ma_shield_mac(sh, "alice", "pw", a));
	ck_assert(ma_shield_mac(sh, "alice", "pw", b));
	ck_assert(memcmp(a, b, 32) == 0);
	ck_assert(ma_shield_mac(sh, "alice", "pW", b));
	ck_assert(memcmp(a, b, 32) != 0);
	ck_assert(ma_shield_mac(sh, "alicE", "pw", b));
	ck_assert(memcmp(a, b, 32) != 0);
	/* The NUL between user and password: "ab"+"c" is not "a"+"bc". */
	ck_assert(ma_shield_mac(sh, "ab", "c", b));
	ck_assert(ma_shield_mac(sh, "a", "bc", c));
	ck_assert(memcmp(b, c, 32) != 0);
	/* Another shield, another key. */
	struct ma_shield *other = make(300, 300, 5, 600);
	ck_assert(ma_shield_mac(other, "alice", "pw", b));
	ck_assert(memcmp(a, b, 32) != 0);
	ma_shield_free(&other);
}
END_TEST

/* ---- no password kept ---- */

/*
 * Count NEEDLE in every private, writable, anonymous mapping of this
 * process (the malloc heap, its arenas and mmap'ed blocks such as the
 * shield's tables, and .bss).  File mappings (.rodata, .data) and the
 * main stack ("[stack]") are not scanned.  Mappings over 1 GiB are
 * skipped: those are sanitizer shadow memory, not data.  Reads freed
 * memory on purpose, so not under ASan or valgrind.
 */
#if defined(__SANITIZE_ADDRESS__)
#define NO_ASAN __attribute__((no_sanitize_address))
#else
#define NO_ASAN
#endif

static NO_ASAN size_t count_in(const unsigned char *lo, const unsigned char *hi,
                               const char *needle, size_t nlen)
{
	size_t n = 0;
	for (const volatile unsigned char *p = lo; p + nlen <= hi; p++) {
		size_t k = 0;
		while (k < nlen && p[k] == (unsigned char)needle[k])
			k++;
		n += k == nlen;
	}
	return n;
}

static size_t scan_anonymous(const char *needle, size_t nlen, size_t *scanned)
{
	static char text[1 << 20];
	size_t len = 0, found = 0;
	ssize_t r;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	/* No ck_assert in here: each one allocates (check records where it
	 * got to), which could reuse and overwrite a freed block that still
	 * holds the password. */
	if (fd < 0)
		return SIZE_MAX;
	while (len < sizeof(text) - 1 && (r = read(fd, text + len, sizeof(text) - 1 - len)) > 0)
		len += (size_t)r;
	close(fd);
	text[len] = '\0';
	*scanned = 0;
	for (char *line = text, *next; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		unsigned long lo = 0, hi = 0, inode = 0;
		unsigned long long off = 0;
		char perms[8] = "", dev[16] = "", path[256] = "";
		int n = sscanf(line, "%lx-%lx %7s %llx %15s %lu %255s", &lo, &hi, perms, &off, dev,
		               &inode, path);
		bool anon = n == 6 || (n == 7 && strcmp(path, "[heap]") == 0);
		if (n < 6 || !anon || strncmp(perms, "rw", 2) != 0 || perms[3] != 'p' ||
		    hi - lo > (1ul << 30))
			continue;
		found += count_in((const unsigned char *)lo, (const unsigned char *)hi, needle, nlen);
		*scanned += hi - lo;
	}
	return found;
}

/* The password exists in this file only as two halves (never whole in the
 * binary), joined at run time into a static buffer that is wiped before
 * the scan; the probe lives on the stack, which is not scanned.  Besides
 * the whole password, its last 20 bytes are looked for: a freed block that
 * was not wiped has its first 16 bytes overwritten by malloc's free-list
 * pointers, which would hide a whole-password match. */
static const char *volatile half1 = "Qx7!shield-probe";
static const char *volatile half2 = "-Zr4#Kw-9vLm%Tq2";
static char secret[64];

#define TAIL 20

static size_t scan_both(const char *probe, size_t plen, size_t *scanned)
{
	size_t tail_scanned = 0;
	size_t whole = scan_anonymous(probe, plen, scanned);
	size_t tail = scan_anonymous(probe + plen - TAIL, TAIL, &tail_scanned);
	ck_assert(whole != SIZE_MAX && tail != SIZE_MAX);
	return whole + tail;
}

START_TEST(no_password_in_memory)
{
	char probe[64];
	size_t plen, scanned = 0;

	if (RUNNING_ON_VALGRIND)
		return;           /* valgrind reports every read of freed memory */

	snprintf(probe, sizeof(probe), "%s%s", half1, half2);
	plen = strlen(probe);
	ck_assert_uint_eq(plen, 32);
	sh = make(300, 300, 5, 600);

	/* The scanner finds the probe where the shield keeps its entries:
	 * a small malloc'ed block (the heap) and a big one (mmap'ed, as the
	 * tables are); whole, and by its tail. */
	char *small = malloc(plen + 1);
	char *big = malloc(8u << 20);
	ck_assert_ptr_nonnull(small);
	ck_assert_ptr_nonnull(big);
	memcpy(small, probe, plen + 1);
	memcpy(big + (4u << 20), probe, plen);
	ck_assert_uint_eq(scan_both(probe, plen, &scanned), 4);
	OPENSSL_cleanse(small, plen + 1);
	OPENSSL_cleanse(big, 8u << 20);
	free(small);
	free(big);
	ck_assert_uint_eq(scan_both(probe, plen, &scanned), 0);

	/* Every path that sees the password: success, rejection, checks. */
	memcpy(secret, probe, plen + 1);
	ok("alice", secret, "192.0.2.1", T0);
	ck_assert_int_eq(check("alice", secret, "192.0.2.1", T0 + 1), ACCEPT);
	rejected("bob", secret, "192.0.2.1", T0 + 2);
	ck_assert_int_eq(check("bob", secret, "192.0.2.1", T0 + 3), REJECT);
	ok("carol", secret, NULL, T0 + 4);
	rejected("carol", secret, NULL, T0 + 5);
	OPENSSL_cleanse(secret, sizeof(secret));

	size_t found = scan_both(probe, plen, &scanned);
	ck_assert_msg(found == 0, "the password (or its tail) is in memory %zu times", found);
	ck_assert_uint_gt(scanned, 8u << 20);     /* the tables were in the scan */
	/* The shield still works after the scan (it read nothing it changed). */
	memcpy(secret, probe, plen + 1);
	ck_assert_int_eq(check("alice", secret, NULL, T0 + 6), ACCEPT);
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(probe, sizeof(probe));
}
END_TEST

static Suite *shield_suite(void)
{
	Suite *s = suite_create("shield");
	TCase *tc = tcase_create("caches");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, positive_cache);
	tcase_add_test(tc, positive_cache_needs_same_user_and_password);
	tcase_add_test(tc, no_positive_cache_when_ttl_zero);
	tcase_add_test(tc, rejection_drops_positive_entry);
	tcase_add_test(tc, other_errors_change_nothing);
	tcase_add_test(tc, policy_counts_but_is_not_cached);
	tcase_add_test(tc, negative_cache);
	tcase_add_test(tc, negative_cache_four_passwords_per_user);
	tcase_add_test(tc, no_negative_cache_when_ttl_zero);
	tcase_add_test(tc, success_clears_negative_and_failures);
	tcase_add_test(tc, success_does_not_reset_host);
	suite_add_tcase(s, tc);

	tc = tcase_create("throttle");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, throttle_at_max_failures);
	tcase_add_test(tc, throttle_per_rhost);
	tcase_add_test(tc, throttle_per_user_from_other_hosts);
	tcase_add_test(tc, throttle_not_extended_by_throttled_checks);
	tcase_add_test(tc, throttle_sliding_window);
	tcase_add_test(tc, throttle_disabled_by_zero);
	tcase_add_test(tc, throttle_clamped_to_max);
	tcase_add_test(tc, throttle_before_the_caches);
	tcase_add_test(tc, flooding_the_table_keeps_recent_failures);
	tcase_add_test(tc, count_failure);
	suite_add_tcase(s, tc);

	tc = tcase_create("mechanism memory");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, mechanism_memory_rules);
	tcase_add_test(tc, mechanism_memory_expiry);
	tcase_add_test(tc, mechanism_memory_per_server_and_user);
	suite_add_tcase(s, tc);

	tc = tcase_create("tables");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, user_table_bound_and_lru);
	tcase_add_test(tc, host_table_bound_and_lru);
	tcase_add_test(tc, unstorable_names);
	tcase_add_test(tc, concurrent_callers);
	tcase_add_test(tc, free_is_null_safe);
	tcase_add_test(tc, credential_mac);
	tcase_add_test(tc, no_password_in_memory);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ma_unit_run(shield_suite());
}
