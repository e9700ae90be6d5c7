#!/bin/bash
# tests/run-tests.sh - the whole test suite (make check runs it after building).
#
#   1. fresh tests/tmp, the test PKI (tests/lib/certs.sh), a private Dovecot
#      (tests/real/dovecot.sh) on MA_TEST_BASEPORT (default 20143) .. +3, +9;
#   2. every tests/unit/test_* program (check: "NN%: Checks: N, Failures: N, Errors: N"),
#      every tests/fake/test_*.sh or executable tests/fake/test_*, and every
#      tests/real/test_*.sh, tests/hygiene/test_*.sh and tests/pkg/test_*.sh
#      ("ok - ..." / "not ok - ..." lines), with these exported:
#        MA_TEST_ROOT MA_TEST_TMP MA_TEST_CERTS MA_TEST_DOVECOT_DIR MA_TEST_DOVECOT_LOG
#        MA_TEST_IMAP_STARTTLS_PORT MA_TEST_IMAPS_PORT MA_TEST_SUBMISSION_PORT
#        MA_TEST_SUBMISSIONS_PORT
#   3. one line per program, then "N passed, N failed" (individual checks).
#
# Exits non-zero when any check failed, a program crashed, exited non-zero, printed no
# results, was skipped (exit 77, "# SKIP"), was not built, or when nothing ran at all.
# Dovecot is always stopped. Each program's output is kept in tests/tmp/logs/.
#
# Environment: MA_TEST_BASEPORT, MA_TEST_TMP (scratch directory, default tests/tmp),
# MA_TEST_TIMEOUT (seconds per program, default 300),
# MA_TEST_EXCEPT (substrings, space-separated: programs to leave out; they are named at
# the end and count neither way),
# MA_TEST_VERBOSE=1 (print every program's output), MA_TEST_ONLY (a substring: run only
# matching programs).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
# MA_TEST_TMP (scratch directory, default tests/tmp) is kept: with another
# MA_TEST_BASEPORT, two runs can share one checkout.  The rest is derived here.
run_tmp=${MA_TEST_TMP:-}
unset MA_TEST_ROOT MA_TEST_TMP MA_TEST_CERTS MA_TEST_MODULE MA_TEST_IMAP_STARTTLS_PORT
[ -z "$run_tmp" ] || export MA_TEST_TMP=$run_tmp
# shellcheck source=lib/common.sh
. "$root/tests/lib/common.sh"

base=${MA_TEST_BASEPORT:-20143}
timeout_s=${MA_TEST_TIMEOUT:-300}
logs=$MA_TMP/logs

# A Dovecot left running by an interrupted earlier run uses the directory we are about
# to remove: stop it first (dovecot.sh finds it by its config path).
if [ -d "$MA_TMP/dovecot" ]; then
	"$root/tests/real/dovecot.sh" stop "$MA_TMP/dovecot" "$base" >/dev/null 2>&1 || true
fi
rm -rf "$MA_TMP"
mkdir -p "$logs"

total_pass=0
total_fail=0
programs=0
bad_programs=()

result() { # result NAME PASSED FAILED NOTE [SECONDS]
	local name=$1 p=$2 f=$3 note=${4:-} t=${5:+, ${5}s}
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	programs=$((programs + 1))
	if [ "$f" -eq 0 ]; then
		printf 'PASS %-34s %3d passed, %d failed%s%s\n' "$name" "$p" "$f" "$t" "${note:+ ($note)}"
	else
		printf 'FAIL %-34s %3d passed, %d failed%s%s\n' "$name" "$p" "$f" "$t" "${note:+ ($note)}"
		bad_programs+=("$name")
	fi
}

# count LOGFILE: prints "PASSED FAILED SKIPPED RESULTS" from check's summary lines and
# from ok / not ok lines. An ok with a "# SKIP" or "# TODO" directive counts as failed.
count() {
	local f=$1
	awk '
	/^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+/ {
		line = $0
		gsub(/[^0-9]+/, " ", line)
		split(line, n, " ")
		pass += n[2] - n[3] - n[4]; fail += n[3] + n[4]; results++
		next
	}
	/^not ok( |$)/ { fail++; results++; next }
	/^ok( |$)/ {
		if ($0 ~ /#[ \t]*(SKIP|TODO)/) { fail++; skipped++ } else { pass++ }
		results++
		next
	}
	END { printf "%d %d %d %d\n", pass, fail, skipped, results }
	' "$f"
}

run_program() { # run_program NAME COMMAND...
	local name=$1 out rc p f s r note="" t0
	shift
	out=$logs/$(printf '%s' "$name" | tr '/' '_').log
	t0=$SECONDS
	# In the background, so that an interrupt reaches the trap below at once.
	timeout --kill-after=10 "$timeout_s" "$@" >"$out" 2>&1 </dev/null &
	running=$!
	wait "$running"
	rc=$?
	running=
	read -r p f s r < <(count "$out")
	case $rc in
	0) ;;
	77) note="skipped (exit 77)"; f=$((f + 1)) ;;
	124 | 137) note="timed out after ${timeout_s}s"; f=$((f + 1)) ;;
	*)
		if [ "$rc" -gt 128 ]; then
			note="killed by signal $((rc - 128))"
			f=$((f + 1))
		elif [ "$f" -eq 0 ]; then
			note="exit status $rc with no failed check"
			f=$((f + 1))
		fi
		;;
	esac
	if [ "$r" -eq 0 ] && [ -z "$note" ]; then
		note="no results"
		f=$((f + 1))
	fi
	[ "$s" -eq 0 ] || note="${note:+$note, }$s skipped"
	result "$name" "$p" "$f" "$note" $((SECONDS - t0))
	if [ "${MA_TEST_VERBOSE:-0}" = 1 ]; then
		sed 's/^/    /' "$out"
	elif [ "$f" -ne 0 ]; then
		# The failing lines and what follows them; the whole output is in $out.
		grep -E -A12 '^not ok|:[EF]:|# SKIP|# TODO|ERROR|Sanitizer|runtime error' "$out" |
			head -n 60 | sed 's/^/    /'
		printf '    (full output: %s)\n' "${out#"$root"/}"
	fi
}

left_out=()
selected() {
	local x
	for x in ${MA_TEST_EXCEPT:-}; do
		if [[ $1 == *"$x"* ]]; then
			left_out+=("$1")
			return 1
		fi
	done
	[ -z "${MA_TEST_ONLY:-}" ] || [[ $1 == *"$MA_TEST_ONLY"* ]]
}

# --- environment -----------------------------------------------------------------

dovecot_ok=1
if ! "$root/tests/lib/certs.sh" "$MA_CERTS" >"$logs/certs.log" 2>&1; then
	result certs 0 1 "tests/lib/certs.sh failed"
	sed 's/^/    /' "$logs/certs.log"
	dovecot_ok=0
fi
ma_dovecot_env "$base"
running=
# shellcheck disable=SC2317 # called from the trap
interrupted() {
	if [ -n "$running" ]; then
		kill -TERM "$running" 2>/dev/null # timeout passes it on to the test
		wait "$running" 2>/dev/null
	fi
	echo "interrupted" >&2
	exit 130
}
trap 'ma_dovecot_stop >/dev/null 2>&1' EXIT
trap interrupted INT TERM
if [ $dovecot_ok = 1 ] && ! ma_dovecot_start "$base" >"$logs/dovecot-start.log" 2>&1; then
	result dovecot 0 1 "Dovecot did not start on ports $base..$((base + 3))"
	sed 's/^/    /' "$logs/dovecot-start.log" | tail -n 30
	dovecot_ok=0
fi

# --- tier 1: unit tests (check) ----------------------------------------------------

shopt -s nullglob
for src in tests/unit/test_*.c; do
	bin=${src%.c}
	selected "$bin" || continue
	if [ ! -x "$bin" ]; then
		result "$bin" 0 1 "not built"
	fi
done
for bin in tests/unit/test_*; do
	case $bin in *.c | *.h | *.o | *.d | *.log) continue ;; esac
	if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then continue; fi
	selected "$bin" || continue
	run_program "$bin" "./$bin"
done

# --- tier 2: fake servers ----------------------------------------------------------

for t in tests/fake/test_*; do
	case $t in *.c | *.h | *.o | *.d | *.log) continue ;; esac
	[ -f "$t" ] || continue
	selected "$t" || continue
	case $t in
	*.sh) run_program "$t" bash "./$t" ;;
	*) [ -x "$t" ] && run_program "$t" "./$t" ;;
	esac
done

# --- tiers 3 and 4: the real PAM stack, real servers ---------------------------------

for t in tests/real/test_*.sh; do
	selected "$t" || continue
	if [ $dovecot_ok = 1 ]; then
		run_program "$t" bash "./$t"
	else
		result "$t" 0 1 "not run: no Dovecot"
	fi
done

# --- process hygiene, packaging and installation ----------------------------------------

for t in tests/hygiene/test_*.sh tests/pkg/test_*.sh; do
	selected "$t" || continue
	if [ $dovecot_ok = 1 ]; then
		run_program "$t" bash "./$t"
	else
		result "$t" 0 1 "not run: no Dovecot"
	fi
done

# --- summary -----------------------------------------------------------------------

status=0
if [ "$programs" -eq 0 ] || [ $((total_pass + total_fail)) -eq 0 ]; then
	echo "no tests ran"
	status=1
fi
if [ "$total_fail" -ne 0 ] || [ ${#bad_programs[@]} -ne 0 ]; then
	status=1
fi
# Left out on purpose by the caller (make asan): named, never counted as passed.
[ ${#left_out[@]} -eq 0 ] ||
	printf 'not run (MA_TEST_EXCEPT): %s\n' "$(printf '%s\n' "${left_out[@]}" | sort -u | xargs)"
printf '%d passed, %d failed\n' "$total_pass" "$total_fail"
exit $status
