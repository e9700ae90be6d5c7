#!/bin/bash
# bench/run.sh bench|profile - run by `make bench` / `make profile` (see bench/README.md).
#
# Starts a private Dovecot (tests/real/dovecot.sh: IMAP STARTTLS, IMAPS, submission
# STARTTLS, submissions) on BENCH_BASEPORT (default 30143) .. +3 with a few limits
# raised for 32 concurrent logins, and, when postfix is installed and BENCH_POSTFIX is
# not 0, a private Postfix (tests/real/postfix.sh) on BENCH_BASEPORT+20, +21 whose SASL
# is that Dovecot's. Then runs bench/bench.py (the measurements) and stops both servers.
# bench.py also starts mailauthd (as nobody, in BENCH_TMP/work/broker-*) for the broker
# rows and stops it; should bench.py die first, the exit trap here sends SIGTERM to the
# pids it left in BENCH_TMP/work/broker-*.pid.
# Everything lives in BENCH_TMP (default tests/tmp/bench); results in
# BENCH_TMP/results.md (table) and results.json (raw figures).
#
# Needs root (Dovecot), curl, python3 (/usr/bin/python3: the system's, on the system
# OpenSSL), valgrind for profile. Asserts nothing about speed: exits non-zero only when
# the servers cannot be started or a client cannot log in at all.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cmd=${1:-bench}
case $cmd in
bench | profile) ;;
*)
	echo "usage: $0 bench|profile" >&2
	exit 2
	;;
esac

export BENCH_TMP=${BENCH_TMP:-$root/tests/tmp/bench}
base=${BENCH_BASEPORT:-30143}
pf_base=$((base + 20))
mkdir -p "$BENCH_TMP"
BENCH_TMP=$(cd "$BENCH_TMP" && pwd)
export MA_TEST_CERTS=$BENCH_TMP/certs
export MA_TEST_TMP=$BENCH_TMP
# shellcheck source=../tests/lib/common.sh
. "$root/tests/lib/common.sh"

dv_dir=$BENCH_TMP/dovecot
pf_dir=$BENCH_TMP/postfix
PY=${BENCH_PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=$(command -v python3)

if [ "$(id -u)" != 0 ]; then
	echo "$0: needs root (it starts a private Dovecot)" >&2
	exit 1
fi
for tool in dovecot curl "$PY"; do
	if ! command -v "$tool" >/dev/null; then
		echo "$0: $tool is not installed" >&2
		exit 1
	fi
done
if [ "$cmd" = profile ] && ! command -v valgrind >/dev/null; then
	echo "$0: valgrind is not installed (apt-get install valgrind)" >&2
	exit 1
fi
for f in pam_mailauth.so mailauth bench/pamloop; do
	if [ ! -x "$f" ] && [ ! -f "$f" ]; then
		echo "$0: $f is not built (make all bench/pamloop)" >&2
		exit 1
	fi
done

use_postfix=0
if [ "$cmd" = bench ] && [ "${BENCH_POSTFIX:-1}" != 0 ] && command -v postfix >/dev/null; then
	use_postfix=1
fi

stop_brokers() {
	local f pid
	for f in "$BENCH_TMP"/work/broker-*.pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f" 2>/dev/null) || continue
		# Only the mailauthd bench.py started: its command line names our directory.
		if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mailauthd ] &&
			tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$BENCH_TMP/work/broker-"; then
			kill -TERM "$pid" 2>/dev/null || true
		fi
		rm -f "$f"
	done
}
stop_servers() {
	stop_brokers
	if [ $use_postfix = 1 ]; then
		"$root/tests/real/postfix.sh" stop "$pf_dir" "$pf_base" >/dev/null 2>&1 || true
	fi
	"$root/tests/real/dovecot.sh" stop "$dv_dir" "$base" >/dev/null 2>&1 || true
}
child=
interrupted() {
	if [ -n "$child" ]; then
		kill -TERM "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
	echo "interrupted" >&2
	exit 130
}
trap stop_servers EXIT
trap interrupted INT TERM

echo "== servers: Dovecot on 127.0.0.1:$base..$((base + 3))$([ $use_postfix = 1 ] && echo ", Postfix on $pf_base, $((pf_base + 1))") (logs in ${BENCH_TMP#"$root"/})"
"$root/tests/lib/certs.sh" "$MA_TEST_CERTS"

# dovecot.sh writes the suite's configuration and starts it; we stop it, append the
# bench's overrides (same-named sections merge in Dovecot's configuration), and start
# the same file again, so that dovecot.sh stop still finds it by its path.
"$root/tests/real/dovecot.sh" start "$dv_dir" "$base" >"$BENCH_TMP/dovecot-start.log" 2>&1 || {
	cat "$BENCH_TMP/dovecot-start.log" >&2
	exit 1
}
"$root/tests/real/dovecot.sh" stop "$dv_dir" "$base" >/dev/null 2>&1
cat >>"$dv_dir/dovecot.conf" <<'CONF'

# --- bench/run.sh overrides: room for 32 concurrent logins of one user from one IP ---
protocol imap {
  mail_max_userip_connections = 10000
}
protocol submission {
  mail_max_userip_connections = 10000
}
service imap-login {
  client_limit = 1000
}
service submission-login {
  client_limit = 1000
}
CONF
if ! doveconf -c "$dv_dir/dovecot.conf" -n >/dev/null 2>"$BENCH_TMP/doveconf.err"; then
	echo "$0: the bench's Dovecot overrides are not accepted:" >&2
	cat "$BENCH_TMP/doveconf.err" >&2
	exit 1
fi
: >"$dv_dir/dovecot.log"
dovecot -c "$dv_dir/dovecot.conf"
for p in $base $((base + 1)) $((base + 2)) $((base + 3)); do
	if ! ma_wait_port 127.0.0.1 "$p" 100; then
		echo "$0: Dovecot is not listening on $p" >&2
		cat "$dv_dir/dovecot.log" >&2
		exit 1
	fi
done
# The effective login-process settings, for the report header.
{
	printf 'dovecot %s; ' "$(dovecot --version 2>/dev/null | awk '{print $1}')"
	doveconf -c "$dv_dir/dovecot.conf" 2>/dev/null | awk '
		/^service (imap|submission)-login \{/ { s = $2; next }
		s && /^}/ { printf "%s: service_count=%s process_limit=%s process_min_avail=%s; ", s, sc, pl, pm; s = ""; next }
		s && $1 == "service_count" { sc = $3 }
		s && $1 == "process_limit" { pl = $3 }
		s && $1 == "process_min_avail" { pm = $3 }
		$1 == "auth_mechanisms" { $1 = ""; $2 = ""; mech = $0 }
		END { printf "auth_mechanisms:%s", mech }'
	echo
} >"$BENCH_TMP/server-info.txt"

if [ $use_postfix = 1 ]; then
	if ! "$root/tests/real/postfix.sh" start "$pf_dir" "$pf_base" "$dv_dir/run/auth-postfix" \
		>"$BENCH_TMP/postfix-start.log" 2>&1; then
		echo "warning: Postfix did not start; measuring Dovecot only:" >&2
		sed 's/^/    /' "$BENCH_TMP/postfix-start.log" | tail -n 10 >&2
		use_postfix=0
	else
		printf 'postfix %s\n' "$(postconf -d -h mail_version 2>/dev/null)" >>"$BENCH_TMP/server-info.txt"
	fi
fi

export BENCH_ROOT=$root BENCH_CA=$MA_TEST_CERTS/ca.pem
export BENCH_IMAP_STARTTLS_PORT=$base BENCH_IMAPS_PORT=$((base + 1))
export BENCH_SUBMISSION_PORT=$((base + 2)) BENCH_SUBMISSIONS_PORT=$((base + 3))
if [ $use_postfix = 1 ]; then
	export BENCH_PF_SUBMISSION_PORT=$pf_base BENCH_PF_SUBMISSIONS_PORT=$((pf_base + 1))
fi
export BENCH_DOVECOT_LOG=$dv_dir/dovecot.log BENCH_PYTHON=$PY
export BENCH_USER=alice BENCH_PASSWORD=$MA_PW_ALICE
# The load's users (USER TAB PASSWORD lines): the suite's Dovecot users.
BENCH_LOAD_CREDS=$(printf '%s\t%s\n' alice "$MA_PW_ALICE" bob "$MA_PW_BOB" carol "$MA_PW_CAROL" \
	dave@example.org "$MA_PW_DAVE" erin "$MA_PW_ERIN")
export BENCH_LOAD_CREDS

# In the background, so that an interrupt reaches the traps at once.
"$PY" "$root/bench/bench.py" "$cmd" &
child=$!
wait "$child"
