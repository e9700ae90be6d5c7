#!/bin/bash
# tests/hygiene/test_hygiene.sh - process hygiene (SPEC 7) in ONE long-lived host
# process: tests/hygiene/harness loads the built pam_mailauth.so through libpam
# (pam_start_confdir), as sshd or a web application does, and runs its modes:
#
#   (a) soak     1,000 authentications over every path: exact PAM results (SPEC 4),
#                descriptors identical after warm-up and at the end, heap flat, no
#                thread left behind
#   (b) valgrind a shorter soak under valgrind --leak-check=full: no definite leak,
#                no error (LeakSanitizer instead when the module is built with ASan)
#   (c) sigpipe  SIGPIPE at SIG_DFL, servers that reset the connection under our
#                writes: the process survives; negative control: with MSG_NOSIGNAL
#                stripped by the shim, the same run dies of SIGPIPE
#   (d) signals  a pending alarm(), every disposition, the mask, the timers untouched
#   (e) threads  16 threads with their own PAM handles, concurrently; the same under
#                ThreadSanitizer (tests/hygiene/build: TSan builds of module + harness)
#   (f) quiet    nothing on stdout/stderr, debug and failures included
#   (g) exports  nm: only pam_sm_* are exported; every writable global of the module's
#                objects is one of the reviewed, lock-protected ones
#   (h) scan     LD_PRELOAD scanfree.so: no freed block and no writable mapping keeps
#                the password or its base64; socket writes and close-on-exec audited;
#                negative control: with OPENSSL_cleanse() made a no-op (nocleanse.so)
#                the scan must fail and name pam_mailauth.so
#
# Built by `make test-programs` (tests/hygiene/hygiene.mk). Run by tests/run-tests.sh,
# which starts Dovecot and exports MA_TEST_*; run on its own it starts (and stops) a
# Dovecot itself. Prints "ok - ..." / "not ok - ..." lines (the harness's own included)
# and "# N passed, N failed"; exits non-zero when anything failed. Each mode's full
# output is kept in $MA_TMP/test_hygiene/. About 1.5 minutes.
#
# Environment: HYG_SOAK (1000), HYG_VALGRIND_N (110: every soak case once), HYG_THREADS (16), HYG_PER_THREAD
# (8), HYG_TSAN_PER_THREAD (4), HYG_SCAN_ROUNDS (2).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"

ma_need_dovecot
cd "$MA_ROOT" || exit 1
work=$MA_TMP/test_hygiene
rm -rf "$work"
mkdir -p "$work"
export TMPDIR=$work

H=$MA_ROOT/tests/hygiene
HARNESS=$H/harness
SHIM=$H/scanfree.so
NOCLEANSE=$H/nocleanse.so
TSAN_MODULE=$H/build/pam_mailauth.so
TSAN_HARNESS=$H/build/harness-tsan
t_start=$SECONDS

missing=()
for f in "$MA_MODULE" "$HARNESS" "$SHIM" "$NOCLEANSE" "$TSAN_MODULE" "$TSAN_HARNESS"; do
	[ -e "$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -ne 0 ]; then
	not_ok "hygiene programs are built (make test-programs)" "missing: ${missing[*]}"
	ma_done
	exit 1
fi

# A module built with AddressSanitizer (make asan) owns malloc: the LD_PRELOAD shim and
# valgrind cannot run with it.
asan=0
if readelf -d "$MA_MODULE" 2>/dev/null | grep 'NEEDED.*libasan' >/dev/null; then
	asan=1
fi

# symbolize: "pam_mailauth.so+0xOFF" frames (the module's functions are hidden from
# dladdr) get "= function file:line" from addr2line.
symbolize() {
	local line off sym
	while IFS= read -r line; do
		if [[ $line =~ pam_mailauth\.so\+0x([0-9a-f]+) ]] && command -v addr2line >/dev/null; then
			off=${BASH_REMATCH[1]}
			sym=$(addr2line -f -i -p -e "$MA_MODULE" "0x$off" 2>/dev/null | head -n 1 |
				sed "s|$MA_ROOT/||g")
			line="$line = $sym"
		fi
		printf '%s\n' "$line"
	done
}

# harness_run NAME EXPECT_STATUS CMD...: run one mode, keep its output in
# $work/NAME.log, pass its ok/not ok lines through (they count), and check how it
# ended. EXPECT_STATUS is the exit status that means "ran to the end as it should".
harness_run() {
	local name=$1 expect=$2 log=$work/$1.log rc p f
	shift 2
	timeout --kill-after=5 240 "$@" >"$log" 2>&1 </dev/null
	rc=$?
	symbolize <"$log" | grep -E '^(ok|not ok)( |$)|^#' | sed -E 's/^(ok|not ok) /\1 /'
	p=$(grep -cE '^ok( |$)' "$log")
	f=$(grep -cE '^not ok( |$)' "$log")
	MA_PASSED=$((MA_PASSED + p))
	MA_FAILED=$((MA_FAILED + f))
	# Exit status 1 with failed checks: it ran to the end and said why (counted above).
	if { [ "$rc" -eq "$expect" ] || { [ "$rc" -eq 1 ] && [ "$f" -gt 0 ]; }; } && [ $((p + f)) -gt 0 ]; then
		ok "$name: the harness ran to the end (exit status $rc)"
	elif [ "$rc" -gt 128 ] && [ "$rc" -ne 137 ]; then
		not_ok "$name: the harness was killed by signal $((rc - 128))" "$(tail -n 20 "$log")"
	elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		not_ok "$name: the harness timed out" "$(tail -n 20 "$log")"
	else
		not_ok "$name: the harness exited with status $rc ($p ok, $f not ok)" "$(tail -n 20 "$log")"
	fi
}

# --- (g) exports and globals -------------------------------------------------------

exports=$(nm -D --defined-only "$MA_MODULE" 2>/dev/null | awk '$2 ~ /^[A-Z]$/ && $2 != "A" {print $3}' | sort | tr '\n' ' ')
if [ "$exports" = "pam_sm_acct_mgmt pam_sm_authenticate pam_sm_setcred " ]; then
	ok "exports: nm -D lists exactly pam_sm_acct_mgmt, pam_sm_authenticate, pam_sm_setcred"
else
	not_ok "exports: nm -D lists exactly pam_sm_acct_mgmt, pam_sm_authenticate, pam_sm_setcred" \
		"defined dynamic symbols: $exports"
fi

# SPEC 7 wants no mutable globals. What the module has, each reviewed: the libconfuse
# lock (its lexer is not reentrant), the TLS context/session cache under cache_lock
# (cache_pid too: the process its sessions belong to, read and written under the lock),
# the pthread_once-made BIO method, the pthread_once guards of the fork handlers of
# both locks (atfork_once), and the count of outstanding DNS lookups (pending_lookups,
# only touched with __atomic builtins). Thread-local and relocated-read-only data
# (.tbss, .data.rel.ro) are not listed by the awk below. A new one must be reviewed
# for thread safety and added here.
allowed_globals="confuse_lock cache_lock ctx_cache ctx_next cache_pid method_once socket_method atfork_once pending_lookups"
objs=$(ls lib/*.o pam_mailauth.o 2>/dev/null)
globals=$(for o in $objs; do
	objdump -t "$o" 2>/dev/null | awk -v f="${o}" '$3 == "O" && $4 ~ /^\.(data|bss)(\.|$)/ &&
		$4 !~ /rel\.ro/ && $NF !~ /^__(odr_)?(asan|tsan|ubsan|odr)/ {print f ":" $NF}'
done | sort)
unexpected=$(for g in $globals; do
	case " $allowed_globals " in *" ${g#*:} "*) ;; *) echo "$g" ;; esac
done)
if [ -z "$objs" ]; then
	not_ok "globals: the module's objects (lib/*.o, pam_mailauth.o) are there"
elif [ -z "$unexpected" ]; then
	ok "globals: writable globals of the module are only the reviewed ones ($(echo "$globals" | sed 's|.*:||' | tr '\n' ' '))"
else
	not_ok "globals: writable globals of the module are only the reviewed ones" \
		"not reviewed (check thread safety, then add to allowed_globals):" "$unexpected"
fi

# --- (a) soak ----------------------------------------------------------------------

harness_run soak 0 "$HARNESS" soak "${HYG_SOAK:-1000}" fake=3

# --- (b) leaks ----------------------------------------------------------------------

if [ $asan = 0 ]; then
	if command -v valgrind >/dev/null; then
		# Errors of any kind and definite leaks fail; what OpenSSL, libpam and the
		# dynamic loader keep until exit is "still reachable" and does not.
		harness_run valgrind 0 valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite \
			--show-leak-kinds=definite --error-exitcode=99 --child-silent-after-fork=yes \
			--num-callers=30 --suppressions="$H/valgrind.supp" \
			"$HARNESS" soak "${HYG_VALGRIND_N:-110}" noheap
		if grep -q 'definitely lost\|Invalid \|uninitialised\|ERROR SUMMARY: [1-9]' "$work/valgrind.log"; then
			not_ok "valgrind: no error and no definite leak" "$(grep -E '^==' "$work/valgrind.log" | head -n 60)"
		else
			ok "valgrind: no error and no definite leak in ${HYG_VALGRIND_N:-110} authentications (every soak case at least once)"
		fi
	else
		not_ok "valgrind is installed"
	fi
else
	harness_run leaks 0 env ASAN_OPTIONS=detect_leaks=1 "$HARNESS" soak "${HYG_VALGRIND_N:-110}" noheap
fi

# --- (c) SIGPIPE ---------------------------------------------------------------------

if [ $asan = 0 ]; then
	harness_run sigpipe 0 env LD_PRELOAD="$SHIM" "$HARNESS" sigpipe
	# Negative control: the same run, with the shim clearing MSG_NOSIGNAL from every
	# send, must die of SIGPIPE; otherwise the servers never made us write into a reset
	# connection and the survival above proves nothing.
	env HYG_STRIP_NOSIGNAL=1 LD_PRELOAD="$SHIM" "$HARNESS" sigpipe >"$work/sigpipe-control.log" 2>&1 </dev/null
	rc=$?
	if [ $rc -eq $((128 + 13)) ]; then
		ok "sigpipe: negative control: without MSG_NOSIGNAL the same run dies of SIGPIPE"
	else
		not_ok "sigpipe: negative control: without MSG_NOSIGNAL the same run dies of SIGPIPE" \
			"exit status $rc" "$(tail -n 10 "$work/sigpipe-control.log")"
	fi
else
	harness_run sigpipe 0 "$HARNESS" sigpipe
fi

# --- (d) signals -----------------------------------------------------------------------

harness_run signals 0 "$HARNESS" signals

# --- (e) threads -----------------------------------------------------------------------

harness_run threads 0 "$HARNESS" threads "${HYG_THREADS:-16}" "${HYG_PER_THREAD:-8}"

if nm -D "$TSAN_MODULE" 2>/dev/null | grep ' U __tsan_' >/dev/null; then
	ok "tsan: the TSan build of the module is instrumented"
else
	not_ok "tsan: the TSan build of the module is instrumented" "no __tsan_ references in $TSAN_MODULE"
fi
# ignore_noninstrumented_modules: libssl/libcrypto/libpam are not instrumented, so
# TSan cannot see their own synchronisation (atomic reference counts): reports made
# from inside them are false positives or their own bugs (see tsan.supp). Every access
# the module's code makes is still checked.
tsan_options="halt_on_error=1 exitcode=66 ignore_noninstrumented_modules=1 suppressions=$H/tsan.supp second_deadlock_stack=1"
harness_run tsan 0 env HYG_MODULE="$TSAN_MODULE" TSAN_OPTIONS="$tsan_options" \
	"$TSAN_HARNESS" threads "${HYG_THREADS:-16}" "${HYG_TSAN_PER_THREAD:-4}"
if grep -q 'ThreadSanitizer' "$work/tsan.log"; then
	not_ok "tsan: no report from ThreadSanitizer" "$(sed -n '/WARNING: ThreadSanitizer/,/SUMMARY/p' "$work/tsan.log" | symbolize | head -n 80)"
else
	ok "tsan: no report from ThreadSanitizer (${HYG_THREADS:-16} threads x ${HYG_TSAN_PER_THREAD:-4})"
fi

# Negative control: with the same options, a race of the harness's own is reported.
env HYG_MODULE="$TSAN_MODULE" TSAN_OPTIONS="$tsan_options" "$TSAN_HARNESS" race \
	>"$work/tsan-control.log" 2>&1 </dev/null
rc=$?
if [ $rc -eq 66 ] && grep -q 'WARNING: ThreadSanitizer: data race' "$work/tsan-control.log"; then
	ok "tsan: negative control: a deliberate race is reported (exit status 66)"
else
	not_ok "tsan: negative control: a deliberate race is reported (exit status 66)" \
		"exit status $rc" "$(tail -n 10 "$work/tsan-control.log")"
fi

# --- (f) stdout / stderr ----------------------------------------------------------------

harness_run quiet 0 "$HARNESS" quiet

# --- (h) copies of the password, writes, close-on-exec -------------------------------------

if [ $asan = 0 ]; then
	# The SCRAM keys a login against fake_smtp.py derives from the test password
	# (its fixed salt and 4096 iterations: tests/fake/fake_smtp.py), as needles:
	# SaltedPassword, ClientKey, ServerKey (RFC 5802 section 3).
	HYG_SCRAM_KEYS=$(python3 -c '
import hashlib, hmac, re, sys
src = open(sys.argv[1]).read()
pw = re.search(r"#define HYG_PASSWORD \"([^\"]+)\"", src).group(1).encode()
salted = hashlib.pbkdf2_hmac("sha256", pw, b"fake-smtp-salt!!", 4096)
keys = [salted] + [hmac.new(salted, m, hashlib.sha256).digest() for m in (b"Client Key", b"Server Key")]
print(",".join(k.hex() for k in keys))' "$H/harness.c")
	export HYG_SCRAM_KEYS
	harness_run scan 0 env LD_PRELOAD="$SHIM" "$HARNESS" scan "${HYG_SCAN_ROUNDS:-2}"
	# Negative control: with OPENSSL_cleanse() wiping nothing, the module's buffers
	# reach free() with the password in them: the scan must say so.
	env LD_PRELOAD="$SHIM:$NOCLEANSE" "$HARNESS" scan 1 >"$work/scan-control.log" 2>&1 </dev/null
	if grep -q '^not ok - scan: no block freed by pam_mailauth.so held the password' "$work/scan-control.log" &&
		grep -q '^ok - scan: control: a canary' "$work/scan-control.log"; then
		ok "scan: negative control: with OPENSSL_cleanse() a no-op the scan finds the module's unwiped buffers"
	else
		not_ok "scan: negative control: with OPENSSL_cleanse() a no-op the scan finds the module's unwiped buffers" \
			"$(grep -E '^(ok|not ok)' "$work/scan-control.log")"
	fi
	# ... and among them the SCRAM keys (in OpenSSL's HMAC and PBKDF2 contexts,
	# which only OPENSSL_cleanse wipes): the needles for them can find something.
	missing_keys=
	for key in SaltedPassword ClientKey ServerKey; do
		grep -q "holding SCRAM $key" "$work/scan-control.log" || missing_keys="$missing_keys $key"
	done
	if [ -z "$missing_keys" ]; then
		ok "scan: negative control: the unwiped SCRAM SaltedPassword, ClientKey and ServerKey are found"
	else
		not_ok "scan: negative control: the unwiped SCRAM keys are found" "not found:$missing_keys"
	fi
else
	echo "# scan: not run: the module is built with AddressSanitizer, which owns malloc (make check runs it)"
fi

echo "# test_hygiene: $((SECONDS - t_start)) s"
ma_done
exit $?
