#!/bin/bash
# tests/real/test_callers.sh - pam_mailauth behind two real PAM callers, each a
# private instance running under its own unprivileged user, under load:
#
#   FreeRADIUS 3 (tests/real/freeradius.sh, user freerad, rlm_pam, Auth-Type PAM):
#     radload.py sends $MA_CALLERS_RADIUS_N Access-Requests (default 200) at
#     parallelism $MA_CALLERS_RADIUS_P (default 20), 30 % with a wrong password;
#   Apache 2.4 (tests/real/apache.sh, event MPM, workers as www-data,
#     mod_authnz_pam, HTTP Basic): httpload.py sends $MA_CALLERS_HTTP_N requests
#     (default 1000) at concurrency $MA_CALLERS_HTTP_C (default 50), 30 % wrong.
#
# Asserted: the exact Accept/Reject and 200/401 counts (no timeouts, no other
# status), that the daemons run as freerad / www-data (all of real, effective, saved
# and filesystem uid, every thread), that each verdict came through PAM (the
# daemons' own log lines naming PAM: rlm_pam's "Login OK" / "pam_authenticate
# failed", mod_authnz_pam's "PAM authentication failed", from www-data workers), that
# the PAM module did the work (Dovecot's "Login: user=<...>" lines: one per Accept /
# 200; with MA_HTTPD_PAM=wrapper also the module's own pam_syslog lines in Apache's
# error log), and no crashed worker or sanitizer report in Apache's logs.
# Latency (p50/p95/max) and throughput are printed as "# ..." lines, not asserted.
#
# The PAM module line of each caller is a parameter, so that the same harness runs
# the in-process module today and a broker later (no edit here):
#   MA_CALLERS_PAM         PAM line(s) for both callers, e.g.
#                          "auth required /path/pam_mailauth.so broker=/run/mailauthd.sock"
#   MA_CALLERS_PAM_RADIUS  ... for FreeRADIUS only (default: MA_CALLERS_PAM)
#   MA_CALLERS_PAM_HTTPD   ... for Apache only (default: MA_CALLERS_PAM)
# Unset (the default), each caller gets the in-process module:
#   auth required $MA_MODULE config=$MA_TMP/test_callers/<caller>.conf
# with a configuration for the private Dovecot's IMAPS port that only root and the
# caller's group can read (root:freerad / root:www-data, mode 0640). (When freerad or
# www-data cannot reach $MA_TMP or the module, the daemons' files, a copy of the
# module and of the CA go to a fresh /tmp/ma-callers.* instead, removed at the end.) An account line
# "account required pam_permit.so" is added when the lines have none (both callers
# call pam_acct_mgmt). The checks that count Dovecot logins (and the module's own log
# lines) per verdict apply to the in-process default only (a broker with a cache
# contacts Dovecot less, and logs elsewhere); with MA_CALLERS_PAM* set, they are
# printed as "# ..." lines instead.
#
# Other knobs: MA_CALLERS_FR_PAM_INSTANCES (default 64, see below),
# MA_CALLERS_RADIUS_PORT (default: Dovecot's base port + 3000, i.e. 23143 in the suite),
# MA_CALLERS_HTTP_PORT (default: base + 3001), MA_CALLERS_KEEP=1 (leave
# the daemons running at the end, for inspection; stop them with the scripts),
# MA_CALLERS_RADIUS_N/_P, MA_CALLERS_HTTP_N/_C (see the top), and the scripts' own
# variables, e.g. MA_HTTPD_PAM=wrapper (pam_wrapper instead of a mount namespace for
# Apache; see tests/real/apache.sh).
#
# PAM without /etc/pam.d: both daemons run in a private mount namespace in which their
# PAM service directory is bind-mounted on /etc/pam.d (see tests/real/freeradius.sh
# for why pam_wrapper cannot work in FreeRADIUS, tests/real/apache.sh for why it is
# not the default in Apache either).
#
# FreeRADIUS' rlm_pam is thread-unsafe: FreeRADIUS serialises the calls of each
# module instance. With one instance (a stock configuration) at parallelism 20 and the
# in-process module, every request waits for all those queued before it; a wrong
# password costs about 1 s at Dovecot here (the module's PLAIN retry after the
# SCRAM rejection meets Dovecot's delay for a second failure on a connection), so
# requests wait 7 s and more and the NAS retransmits (measured: p50 7 s, 2.8
# requests/s, 185 retransmissions for 200 requests). This test therefore runs
# MA_CALLERS_FR_PAM_INSTANCES (default 64) rlm_pam instances behind load-balance, a
# random choice, so that requests rarely queue behind one another (20 instances still
# gave a p95 of about 2 s); set it to 1 to measure the stock serialisation.
#
# With a sanitizer build (make asan) FreeRADIUS cannot run the module at all: ASan
# aborts on FreeRADIUS' RTLD_DEEPBIND dlopen of every module. The FreeRADIUS part is
# then left out, with a "# ..." line saying so; the Apache part runs.
#
# MA_CALLERS_MODE=broker (the default, unless MA_CALLERS_PAM is set) runs both callers
# through mailauthd, the way issue "[T2 2/3]" deploys them: the broker runs as nobody
# with a configuration that freerad and www-data cannot read (root:nogroup 0640,
# clients = {"freerad", "@www-data"}), FreeRADIUS keeps its stock single rlm_pam
# instance (MA_CALLERS_FR_PAM_INSTANCES defaults to 1 then), and the callers use a
# Dovecot of this test's own, so that it can be stopped. Then also asserted: the
# configuration is unreadable to the callers; each load costs Dovecot exactly one
# failed login per distinct wrong password (3) and at most one login per user plus
# one per user whose wrong password evicted the cache (8); no RADIUS request needed a
# retransmission (all answered within the NAS's 5 s); and with Dovecot stopped,
# radclient gets Access-Accept for a user seen before (offline verifier) and
# Access-Reject for a wrong password and for a user never seen.
# MA_CALLERS_MODE=inprocess runs the module in-process in both callers (above).
#
# Run by tests/run-tests.sh, or on its own (then it starts and stops a Dovecot itself).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"

if [ ! -f "$MA_MODULE" ]; then
	not_ok "$MA_MODULE is built (run make first)"
	ma_done
	exit 1
fi
missing=""
for c in freeradius apache2 python3 curl unshare; do
	command -v "$c" >/dev/null || missing="$missing $c"
done
[ -f /usr/lib/apache2/modules/mod_authnz_pam.so ] || missing="$missing mod_authnz_pam"
[ -f /usr/lib/freeradius/rlm_pam.so ] || missing="$missing rlm_pam"
if [ -n "$missing" ]; then
	not_ok "the callers are installed (tests/lib/install-deps.sh test)" "missing:$missing"
	ma_done
	exit 1
fi

own_dovecot=0
[ -n "${MA_TEST_IMAP_STARTTLS_PORT:-}" ] || own_dovecot=1
run=
ma_need_dovecot
log=$MA_TEST_DOVECOT_LOG
work=$MA_TMP/test_callers
base=$MA_TEST_IMAP_STARTTLS_PORT
radius_port=${MA_CALLERS_RADIUS_PORT:-$((base + 3000))}
http_port=${MA_CALLERS_HTTP_PORT:-$((base + 3001))}
radius_n=${MA_CALLERS_RADIUS_N:-200}
radius_p=${MA_CALLERS_RADIUS_P:-20}
http_n=${MA_CALLERS_HTTP_N:-1000}
http_c=${MA_CALLERS_HTTP_C:-50}
mode=${MA_CALLERS_MODE:-broker}
[ -z "${MA_CALLERS_PAM:-}${MA_CALLERS_PAM_RADIUS:-}${MA_CALLERS_PAM_HTTPD:-}" ] || mode=custom
if [ "$mode" = broker ]; then
	fr_instances=${MA_CALLERS_FR_PAM_INSTANCES:-1}
else
	fr_instances=${MA_CALLERS_FR_PAM_INSTANCES:-64}
fi
imaps=$MA_TEST_IMAPS_PORT
dbase=$((base + 40))
bpid=""

# Both daemons are stopped on every way out, failures and signals included; then the
# Dovecot that ma_need_dovecot started, if it did (its EXIT trap is replaced here).
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	[ -z "$loadpid" ] || kill "$loadpid" 2>/dev/null
	if [ "${MA_CALLERS_KEEP:-0}" != 1 ]; then
		"$here/freeradius.sh" stop "$run/freeradius" "$radius_port" >/dev/null 2>&1
		"$here/apache.sh" stop "$run/apache" "$http_port" >/dev/null 2>&1
		case $run in /tmp/ma-callers.*) rm -rf "$run" ;; esac
	fi
	[ -z "$bpid" ] || { kill -TERM "$bpid" 2>/dev/null; wait "$bpid" 2>/dev/null; }
	[ "$mode" != broker ] || "$here/dovecot.sh" stop "$work/dovecot" "$dbase" >/dev/null 2>&1
	[ "$own_dovecot" = 0 ] || ma_dovecot_stop >/dev/null 2>&1
}
loadpid=""
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The daemons' files: in $work, unless freerad or www-data cannot get there (a
# checkout below a private home directory); then in a fresh directory under /tmp.
# The same for the module and the CA file the in-process module reads as those users.
users_can_read() {
	local u
	for u in freerad www-data; do
		runuser -u "$u" -- test -r "$1" || return 1
		[ ! -d "$1" ] || runuser -u "$u" -- test -x "$1" || return 1
	done
}
for d in "$work" "${run:-}"; do
	[ -n "$d" ] || continue
	"$here/freeradius.sh" stop "$d/freeradius" "$radius_port" >/dev/null 2>&1
	"$here/apache.sh" stop "$d/apache" "$http_port" >/dev/null 2>&1
done
rm -rf "$work"
mkdir -p "$work"
chmod 755 "$work"
run=$work
if ! users_can_read "$work"; then
	run=$(mktemp -d /tmp/ma-callers.XXXXXX)
	chmod 755 "$run"
	printf '# %s is out of reach of freerad/www-data: daemons run in %s\n' "$work" "$run"
fi
module=$MA_MODULE
if ! users_can_read "$module"; then
	cp "$MA_MODULE" "$run/pam_mailauth.so"
	chmod 644 "$run/pam_mailauth.so"
	module=$run/pam_mailauth.so
fi
ca=$MA_CERTS/ca.pem
if ! users_can_read "$ca"; then
	cp "$MA_CERTS/ca.pem" "$run/ca.pem"
	chmod 644 "$run/ca.pem"
	ca=$run/ca.pem
fi

# --- broker mode: a Dovecot of our own, and mailauthd as nobody ---------------------

if [ "$mode" = broker ]; then
	if "$here/dovecot.sh" start "$work/dovecot" "$dbase" >"$work/dovecot-start.log" 2>&1; then
		ok "broker mode: a Dovecot of this test's own on port $dbase"
	else
		not_ok "broker mode: a Dovecot of this test's own on port $dbase" "$(tail -n 20 "$work/dovecot-start.log")"
		ma_done
		exit 1
	fi
	log=$work/dovecot/dovecot.log
	imaps=$((dbase + 1))
	bconf=$run/broker.conf
	mkdir -p "$run/broker" "$run/state"
	chown nobody:nogroup "$run/broker" "$run/state"
	chmod 755 "$run/broker"
	chmod 700 "$run/state"
	cat >"$bconf" <<CONF
timeout = 10
ca_file = "$ca"
cache_ttl = 300
negative_ttl = 300
offline_ttl = 3600
state_dir = "$run/state"
clients = {"freerad", "@www-data"}
server dovecot { host = "localhost" port = $imaps }
CONF
	chown root:nogroup "$bconf"
	chmod 640 "$bconf"
	sock=$run/broker/socket
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$MA_ROOT/mailauthd" -f -c "$bconf" \
		-s "$sock" 2>>"$work/mailauthd.log" &
	bpid=$!
	for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
	if [ -S "$sock" ]; then
		ok "broker mode: mailauthd runs as nobody on $sock"
	else
		not_ok "broker mode: mailauthd runs as nobody on $sock" "$(tail -n 20 "$work/mailauthd.log")"
	fi
	unreadable=1
	for u in freerad www-data; do
		! runuser -u "$u" -- test -r "$bconf" || unreadable=0
	done
	if [ $unreadable = 1 ]; then
		ok "broker mode: freerad and www-data cannot read the configuration"
	else
		not_ok "broker mode: freerad and www-data cannot read the configuration" "$(ls -l "$bconf")"
	fi
	MA_CALLERS_PAM="auth required $module broker=$sock"
fi

# failed_logins: Dovecot's failed login sessions since the last log_mark.
failed_logins() {
	log_since "$log" | grep -cE 'imap-login: Info: .*auth failed, [0-9]+ attempts' || true
}
# broker_costs WHAT: the mail server's side of a load through the broker (see the top).
broker_costs() {
	local what=$1 logins=0 u failed
	sleep 1
	for u in $accepted_users; do
		logins=$((logins + $(dovecot_logins "$u")))
	done
	failed=$(failed_logins)
	if [ "$failed" -eq 3 ]; then
		ok "$what: Dovecot saw exactly 3 failed logins (one per distinct wrong password)"
	else
		not_ok "$what: Dovecot saw exactly 3 failed logins (one per distinct wrong password)" \
			"failed logins: $failed" "$(log_since "$log" | grep 'auth failed' | tail -n 10)"
	fi
	if [ "$logins" -ge 5 ] && [ "$logins" -le 8 ]; then
		ok "$what: Dovecot saw $logins logins for 5 users (at most 8: one more per user whose rejection evicted the cache)"
	else
		not_ok "$what: Dovecot saw 5 to 8 logins for 5 users" "logins: $logins"
	fi
}

# --- the PAM lines: a parameter; the in-process module by default ---------------

# caller_conf FILE GROUP: the module's configuration for the private Dovecot (IMAPS,
# by name), readable by root and GROUP only.
caller_conf() {
	ma_write_config "$1" <<CONF
timeout = 10
ca_file = "$ca"
server dovecot {
  protocol = imap
  host = "localhost"
  port = $imaps
  tls = implicit
}
CONF
	chown root:"$2" "$1"
	chmod 640 "$1"
}
caller_conf "$run/radius.conf" freerad
caller_conf "$run/httpd.conf" www-data
pam_radius=${MA_CALLERS_PAM_RADIUS:-${MA_CALLERS_PAM:-}}
pam_httpd=${MA_CALLERS_PAM_HTTPD:-${MA_CALLERS_PAM:-}}
inproc_radius=0
inproc_httpd=0
if [ -z "$pam_radius" ]; then
	pam_radius="auth required $module config=$run/radius.conf"
	inproc_radius=1
fi
if [ -z "$pam_httpd" ]; then
	pam_httpd="auth required $module config=$run/httpd.conf"
	inproc_httpd=1
fi
printf '# FreeRADIUS PAM: %s\n' "$pam_radius" | head -n 3
printf '# Apache PAM: %s\n' "$pam_httpd" | head -n 3

# --- the request mix: 10 cases, 3 of them (30 %) with a wrong password ----------

# cases FILE ACCEPT REJECT: JSON [user, password, expected]; the passwords come from
# the environment, not from a command line.
cases() {
	MA_PW_ALICE=$MA_PW_ALICE MA_PW_BOB=$MA_PW_BOB MA_PW_CAROL=$MA_PW_CAROL \
		MA_PW_DAVE=$MA_PW_DAVE MA_PW_ERIN=$MA_PW_ERIN \
		python3 - "$1" "$2" "$3" <<'PY'
import json, os, sys
out, yes, no = sys.argv[1], sys.argv[2], sys.argv[3]
yes = int(yes) if yes.isdigit() else yes
no = int(no) if no.isdigit() else no
e = os.environ
c = [
    ["alice", e["MA_PW_ALICE"], yes],
    ["bob", e["MA_PW_BOB"], yes],
    ["dave@example.org", e["MA_PW_DAVE"], yes],
    ["alice", "wrong-" + e["MA_PW_ALICE"], no],
    ["erin", e["MA_PW_ERIN"], yes],
    ["carol", e["MA_PW_CAROL"], yes],
    ["bob", "wrong-" + e["MA_PW_BOB"], no],
    ["alice", e["MA_PW_ALICE"], yes],
    ["dave@example.org", "wrong-" + e["MA_PW_DAVE"], no],
    ["bob", e["MA_PW_BOB"], yes],
]
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump(c, f)
PY
}
# expected_count N KIND: how many of N requests (case i mod 10) expect KIND (yes/no).
expected_count() {
	local n=$1 kind=$2 i k=0
	for ((i = 0; i < n; i++)); do
		case $((i % 10)) in
		3 | 6 | 8) [ "$kind" = no ] && k=$((k + 1)) ;;
		*) [ "$kind" = yes ] && k=$((k + 1)) ;;
		esac
	done
	printf '%d\n' "$k"
}
accepted_users="alice bob dave@example.org erin carol"

# load CMD...: runs a load generator in the background and waits for it, so that a
# signal (the runner's timeout) reaches the trap at once; the trap stops it too.
load() {
	local rc
	"$@" &
	loadpid=$!
	wait "$loadpid"
	rc=$?
	loadpid=""
	return $rc
}

# jget FILE EXPR: a value from the load generator's JSON (EXPR indexes r, e.g.
# r["latency_ms"]["p95"]); empty when missing.
jget() {
	python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
try:
    v = eval(sys.argv[2], {"r": r})
except (KeyError, IndexError, TypeError):
    v = ""
print("" if v is None else v)' "$1" "$2" 2>/dev/null
}

# uid_check PID USER: every thread of PID has real, effective, saved and filesystem
# uid and gid of USER.
uid_check() {
	local pid=$1 user=$2 uid gid t n=0
	uid=$(id -u "$user") gid=$(id -g "$user")
	for t in /proc/"$pid"/task/*; do
		awk -v u="$uid" -v g="$gid" '
			/^Uid:/ { if ($2 != u || $3 != u || $4 != u || $5 != u) bad = 1 }
			/^Gid:/ { if ($2 != g || $3 != g || $4 != g || $5 != g) bad = 1 }
			END { exit bad }' "$t/status" || return 1
		n=$((n + 1))
	done
	[ "$n" -gt 0 ]
}

# dovecot_logins USER: successful IMAP logins of USER since the last log_mark.
dovecot_logins() {
	log_since "$log" | grep -cF "imap-login: Info: Login: user=<$1>," || true
}

# --- FreeRADIUS -----------------------------------------------------------------

if [ -n "$(ma_sanitizer_preload)" ]; then
	printf '# FreeRADIUS: not run with a sanitizer build: ASan aborts on the RTLD_DEEPBIND\n'
	printf '# dlopen() FreeRADIUS uses for every module (rlm_pam included)\n'
else
	fr=$run/freeradius
	cases "$work/radius-cases.json" Accept Reject
	exp_accept=$(expected_count "$radius_n" yes)
	exp_reject=$(expected_count "$radius_n" no)
	if out=$(MA_FR_PAM_INSTANCES=$fr_instances "$here/freeradius.sh" start "$fr" "$radius_port" \
		"$run/pam.d-radius" "$pam_radius" 2>&1); then
		ok "FreeRADIUS started on 127.0.0.1:$radius_port/udp ($fr_instances rlm_pam instances)"
		fr_pid=$(cat "$fr/run/freeradius.pid")
		if uid_check "$fr_pid" freerad; then
			ok "FreeRADIUS runs as freerad (every thread: real, effective, saved, fs uid/gid)"
		else
			not_ok "FreeRADIUS runs as freerad" "$(ps -L -o pid,lwp,ruser,euser,suser,fuser,args -p "$fr_pid" 2>&1)"
		fi

		log_mark "$log"
		load timeout 600 python3 "$here/radload.py" --server 127.0.0.1 --port "$radius_port" \
			--secret-file "$fr/secret" --cases "$work/radius-cases.json" \
			-n "$radius_n" -p "$radius_p" --timeout 5 --retries 2 \
			>"$work/radload.json" 2>"$work/radload.err"
		r=$work/radload.json
		accept=$(jget "$r" 'r["accept"]')
		reject=$(jget "$r" 'r["reject"]')
		tmo=$(jget "$r" 'r["timeout"]')
		other=$(jget "$r" 'r["other"] + r["challenge"]')
		wrong=$(jget "$r" 'r["wrong"]')
		if [ "$accept" = "$exp_accept" ] && [ "$reject" = "$exp_reject" ] &&
			[ "$tmo" = 0 ] && [ "$other" = 0 ] && [ "$wrong" = 0 ]; then
			ok "FreeRADIUS: $radius_n requests at parallelism $radius_p: exactly $exp_accept Accept, $exp_reject Reject, no timeout"
		else
			not_ok "FreeRADIUS: $radius_n requests at parallelism $radius_p: exactly $exp_accept Accept, $exp_reject Reject, no timeout" \
				"got accept=$accept reject=$reject timeout=$tmo other=$other wrong=$wrong" \
				"$(cat "$r" "$work/radload.err" 2>/dev/null)" "$(tail -n 20 "$fr/log/radius.log")"
		fi
		printf '# FreeRADIUS (%s rlm_pam instances): %s requests at parallelism %s: latency p50 %s ms, p95 %s ms, max %s ms; %s requests/s; %s retransmissions\n' \
			"$fr_instances" "$radius_n" "$radius_p" "$(jget "$r" 'r["latency_ms"]["p50"]')" \
			"$(jget "$r" 'r["latency_ms"]["p95"]')" "$(jget "$r" 'r["latency_ms"]["max"]')" \
			"$(jget "$r" 'r["requests_per_s"]')" "$(jget "$r" 'r["retransmits"]')"
		for v in Accept Reject; do
			printf '# FreeRADIUS %s: latency p50 %s ms, p95 %s ms\n' "$v" \
				"$(jget "$r" "r['latency_ms_by_verdict']['$v']['p50']")" \
				"$(jget "$r" "r['latency_ms_by_verdict']['$v']['p95']")"
		done

		# rlm_pam's verdicts in FreeRADIUS' own log: one line per request.
		n_ok=$(grep -c 'Auth: ([0-9]*) Login OK: \[' "$fr/log/radius.log" || true)
		n_bad=$(grep -cE 'Auth: \([0-9]+\) Login incorrect \(pam[0-9]+: pam_authenticate failed: ' "$fr/log/radius.log" || true)
		if [ "$n_ok" = "$exp_accept" ] && [ "$n_bad" = "$exp_reject" ]; then
			ok "FreeRADIUS: every verdict came from rlm_pam ($n_ok Login OK, $n_bad pam_authenticate failed)"
		else
			not_ok "FreeRADIUS: every verdict came from rlm_pam" \
				"Login OK lines: $n_ok (expected $exp_accept); pam_authenticate failed lines: $n_bad (expected $exp_reject)" \
				"$(tail -n 20 "$fr/log/radius.log")"
		fi
		# The module did the work: Dovecot saw the logins (Dovecot logs them through
		# its log process: give it a moment).
		sleep 1
		total=0 missing_users=""
		for u in $accepted_users; do
			c=$(dovecot_logins "$u")
			total=$((total + c))
			[ "$c" -gt 0 ] || missing_users="$missing_users $u"
		done
		if [ $inproc_radius = 1 ]; then
			if [ "$total" = "$exp_accept" ] && [ -z "$missing_users" ]; then
				ok "FreeRADIUS: Dovecot logged one IMAP login per Accept ($total), every user"
			else
				not_ok "FreeRADIUS: Dovecot logged one IMAP login per Accept" \
					"Dovecot logins: $total (expected $exp_accept); users without a login:${missing_users:- none}" \
					"$(log_since "$log" | tail -n 10)"
			fi
		else
			printf '# FreeRADIUS: Dovecot logged %s IMAP logins for %s Accepts\n' "$total" "$exp_accept"
		fi
		if [ "$mode" = broker ]; then
			broker_costs "FreeRADIUS through the broker"
			retrans=$(jget "$r" 'r["retransmits"]')
			if [ "$retrans" = 0 ]; then
				ok "FreeRADIUS through the broker: no request needed a retransmission (each answered within the NAS's 5 s)"
			else
				not_ok "FreeRADIUS through the broker: no request needed a retransmission" \
					"$retrans retransmissions; p95 $(jget "$r" 'r["latency_ms"]["p95"]') ms"
			fi
			# Offline: Dovecot stopped; radclient, the real one.  SIGHUP first
			# empties the caches (the offline verifiers stay), so that the
			# answers below cannot come from the positive cache.
			kill -HUP "$bpid"
			sleep 0.5
			"$here/dovecot.sh" stop "$work/dovecot" "$dbase" >/dev/null 2>&1
			radclient_says() { # USER PASSWORD -> Access-Accept / Access-Reject / ...
				printf 'User-Name = "%s"\nUser-Password = "%s"\n' "$1" "$2" |
					radclient -t 5 -r 1 "127.0.0.1:$radius_port" auth "$(cat "$fr/secret")" 2>&1 |
					grep -oE 'Access-(Accept|Reject)|no response' | tail -n 1
			}
			for c in "alice|$MA_PW_ALICE|Access-Accept|a user seen before gets in" \
				"alice|offline-guess|Access-Reject|a wrong password is refused" \
				"frank@example.org|some-password|Access-Reject|a user never seen is refused"; do
				IFS='|' read -r u p want what <<<"$c"
				got=$(radclient_says "$u" "$p")
				if [ "$got" = "$want" ]; then
					ok "offline (Dovecot stopped), radclient: $what ($got)"
				else
					not_ok "offline (Dovecot stopped), radclient: $what" "got: ${got:-nothing}, want $want" \
						"$(tail -n 5 "$work/mailauthd.log")"
				fi
			done
			if grep -q 'user=alice .*result=ok-offline' "$work/mailauthd.log"; then
				ok "offline: the broker logged alice's login as result=ok-offline"
			else
				not_ok "offline: the broker logged alice's login as result=ok-offline" "$(tail -n 5 "$work/mailauthd.log")"
			fi
			"$here/dovecot.sh" start "$work/dovecot" "$dbase" >/dev/null 2>&1
			# Apache starts from empty caches (the offline store stays).
			kill -HUP "$bpid"
			sleep 0.5
		fi
	else
		not_ok "FreeRADIUS started on 127.0.0.1:$radius_port/udp" "$out"
	fi
	"$here/freeradius.sh" stop "$fr" "$radius_port" >/dev/null 2>&1
fi

# --- Apache -----------------------------------------------------------------------

ap=$run/apache
cases "$work/http-cases.json" 200 401
exp_200=$(expected_count "$http_n" yes)
exp_401=$(expected_count "$http_n" no)
if out=$("$here/apache.sh" start "$ap" "$http_port" "$run/pam.d-httpd" "$pam_httpd" 2>&1); then
	ok "Apache started on 127.0.0.1:$http_port (event MPM)"
	if grep -q 'mpm_event:notice' "$ap/logs/error.log"; then
		ok "Apache runs the event MPM"
	else
		not_ok "Apache runs the event MPM" "$(head -n 5 "$ap/logs/error.log")"
	fi

	log_mark "$log"
	load timeout 900 python3 "$here/httpload.py" --url "http://127.0.0.1:$http_port/private/" \
		--cases "$work/http-cases.json" -n "$http_n" -c "$http_c" --timeout 30 \
		>"$work/httpload.json" 2>"$work/httpload.err"
	r=$work/httpload.json
	s200=$(jget "$r" 'r["status"].get("200", 0)')
	s401=$(jget "$r" 'r["status"].get("401", 0)')
	others=$(jget "$r" 'sum(v for k, v in r["status"].items() if k not in ("200", "401"))')
	wrong=$(jget "$r" 'r["wrong"]')
	if [ "$s200" = "$exp_200" ] && [ "$s401" = "$exp_401" ] && [ "$others" = 0 ] && [ "$wrong" = 0 ]; then
		ok "Apache: $http_n requests at concurrency $http_c: exactly $exp_200 x 200, $exp_401 x 401, nothing else"
	else
		not_ok "Apache: $http_n requests at concurrency $http_c: exactly $exp_200 x 200, $exp_401 x 401, nothing else" \
			"got 200: $s200, 401: $s401, other/errors/timeouts: $others, wrong: $wrong" \
			"$(cat "$r" "$work/httpload.err" 2>/dev/null)" "$(grep -v PWRAP_DEBUG "$ap/logs/error.log" | tail -n 20)"
	fi
	printf '# Apache: %s requests at concurrency %s: latency p50 %s ms, p95 %s ms, max %s ms; %s requests/s\n' \
		"$http_n" "$http_c" "$(jget "$r" 'r["latency_ms"]["p50"]')" \
		"$(jget "$r" 'r["latency_ms"]["p95"]')" "$(jget "$r" 'r["latency_ms"]["max"]')" \
		"$(jget "$r" 'r["requests_per_s"]')"
	for v in 200 401; do
		printf '# Apache %s: latency p50 %s ms, p95 %s ms\n' "$v" \
			"$(jget "$r" "r['latency_ms_by_status']['$v']['p50']")" \
			"$(jget "$r" "r['latency_ms_by_status']['$v']['p95']")"
	done

	# Who ran the requests: the parent stays root (it binds and forks), every worker
	# child is www-data.
	parent=$(cat "$ap/run/httpd.pid")
	kids=$(ps -o pid= --ppid "$parent" 2>/dev/null | tr -s ' \n' ' ')
	bad="" nk=0
	for k in $kids; do
		nk=$((nk + 1))
		uid_check "$k" www-data || bad="$bad $k"
	done
	if [ "$nk" -gt 0 ] && [ -z "$bad" ]; then
		ok "Apache: all $nk worker processes run as www-data (every thread: real, effective, saved, fs uid/gid)"
	else
		not_ok "Apache: the worker processes run as www-data" "workers: ${kids:-none}; not www-data:${bad:- none}" \
			"$(ps -L -o pid,lwp,ruser,euser,suser,fuser,args --ppid "$parent" 2>&1 | head -n 20)"
	fi
	# The PAM calls happened in those workers: the pids in mod_authnz_pam's lines
	# ("[pid N:tid M] ... PAM authentication failed") are all www-data workers'.
	pam_pids=$(grep -o 'authnz_pam:[a-z]*\] \[pid [0-9]*:' "$ap/logs/error.log" |
		grep -o '[0-9]*' | sort -un | tr '\n' ' ')
	pam_pids=${pam_pids% }
	badw=""
	for q in $pam_pids; do
		case " $kids " in *" $q "*) ;; *) badw="$badw $q" ;; esac
	done
	if [ -n "$pam_pids" ] && [ -z "$badw" ]; then
		ok "Apache: PAM ran in the www-data workers (pids $pam_pids)"
	else
		not_ok "Apache: PAM ran in the www-data workers" \
			"pids in mod_authnz_pam's lines: ${pam_pids:-none}; not a www-data worker:${badw:- none}"
	fi

	# mod_authnz_pam's own line for each refusal.
	n_bad=$(grep -c 'authnz_pam:.*PAM authentication failed for user' "$ap/logs/error.log" || true)
	n_200=$(grep -cE '"GET /private/ HTTP/1\.1" 200 ' "$ap/logs/access.log" || true)
	if [ "$n_bad" = "$exp_401" ] && [ "$n_200" = "$exp_200" ]; then
		ok "Apache: every verdict came from mod_authnz_pam ($n_bad PAM failures logged, $n_200 x 200 logged)"
	else
		not_ok "Apache: every verdict came from mod_authnz_pam" \
			"PAM failure lines: $n_bad (expected $exp_401); 200 lines in access.log: $n_200 (expected $exp_200)" \
			"$(grep -v PWRAP_DEBUG "$ap/logs/error.log" | tail -n 10)"
	fi
	sleep 1
	total=0 missing_users=""
	for u in $accepted_users; do
		c=$(dovecot_logins "$u")
		total=$((total + c))
		[ "$c" -gt 0 ] || missing_users="$missing_users $u"
	done
	n_mod=$(grep -cE 'SYSLOG\([0-9]+\): server=dovecot .* result=ok ' "$ap/logs/error.log" || true)
	if [ $inproc_httpd = 1 ]; then
		if [ "$total" = "$exp_200" ] && [ -z "$missing_users" ]; then
			ok "Apache: Dovecot logged one IMAP login per 200 ($total), every user"
		else
			not_ok "Apache: Dovecot logged one IMAP login per 200" \
				"Dovecot logins: $total (expected $exp_200); users without a login:${missing_users:- none}" \
				"$(log_since "$log" | tail -n 10)"
		fi
		# The module's own lines reach the error log only through pam_wrapper.
		if [ "${MA_HTTPD_PAM:-namespace}" = wrapper ]; then
			if [ "$n_mod" = "$exp_200" ]; then
				ok "Apache: the module logged one accepted login per 200 ($n_mod, through pam_syslog)"
			else
				not_ok "Apache: the module logged one accepted login per 200" \
					"result=ok lines: $n_mod (expected $exp_200)" "$(grep SYSLOG "$ap/logs/error.log" | tail -n 5)"
			fi
		fi
	else
		printf '# Apache: Dovecot logged %s IMAP logins for %s x 200\n' "$total" "$exp_200"
	fi
	[ "$mode" != broker ] || broker_costs "Apache through the broker"
	if [ "$mode" = broker ]; then
		printf '# broker: %s answers from the cache, %s from the negative cache, %s shared a login under way, %s from the network\n' \
			"$(grep -c 'source=cache' "$work/mailauthd.log")" "$(grep -c 'source=negative-cache' "$work/mailauthd.log")" \
			"$(grep -c 'result=ok-shared' "$work/mailauthd.log")" "$(grep -c '^.*auth service=.*source=network' "$work/mailauthd.log")"
	fi
	if grep -E 'AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:|LeakSanitizer|exit signal' \
		"$ap/logs/error.log" "$ap/logs/stdout.log" >"$work/sanitizer.txt" 2>/dev/null; then
		not_ok "Apache: no worker crashed, no sanitizer report" "$(head -n 20 "$work/sanitizer.txt")"
	else
		ok "Apache: no worker crashed, no sanitizer report"
	fi
else
	not_ok "Apache started on 127.0.0.1:$http_port" "$out"
fi

ma_done
exit $?
