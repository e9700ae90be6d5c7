#!/bin/bash
# tests/real/test_broker.sh - mailauthd (issue "[T2 2/3]") through the real PAM stack
# (pam_wrapper + pamtester, module argument broker=SOCKET) against a private Dovecot of
# its own, which this test stops and starts (offline logins):
#
#   the broker runs as nobody, as under systemd (its configuration root:nogroup 0640,
#   its state directory and socket directory owned by nobody), and root's pamtester has
#   no configuration at all;
#   - verdicts through the broker; the account check before the prompt (root refused);
#   - positive cache: 100 successes cost Dovecot 1 login;
#   - negative cache: 10 identical wrong passwords cost it 1 failed authentication;
#   - mechanism memory: erin's first wrong password after a SCRAM login costs exactly
#     1 failed AUTH (the in-process module, the control, costs 2); carol (a hash only
#     PLAIN can use) starts with PLAIN after her first login;
#   - throttle per user and per remote host, which ends failure_window after the last
#     failure that reached the server, however often the throttled user retries;
#   - forward_client_ip: Dovecot logs the PAM_RHOST address (rip=), in both modes;
#   - offline logins with Dovecot stopped: a user seen before gets in (ok-offline),
#     a wrong password and a user never seen do not; verifiers survive a restart;
#     a rejection drops them; the state file is 0600;
#   - SO_PEERCRED: a caller not in clients is refused, added by user or @group and a
#     SIGHUP it is served; a broken configuration on SIGHUP keeps the running one;
#   - hostile callers: wrong version, oversized, partial and slow requests; pipelined
#     requests; the broker keeps serving;
#   - max_connections: a server that never answers sees at most that many connections;
#   - no broker, or a socket in a directory others can write: PAM_AUTHINFO_UNAVAIL;
#   - SIGTERM: exit 0, socket removed;
#   - a policy refusal (Microsoft 365's 535 5.7.139 from a fake server): mailauth login -b
#     exits 5 with the meaning and the remedy.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"

ma_need_dovecot
work=$MA_TMP/test_broker
rm -rf "$work"
mkdir -p "$work"
chmod 755 "$work"
for f in "$MA_MODULE" "$MA_ROOT/mailauthd" "$MA_TOOL"; do
	if [ ! -f "$f" ]; then
		not_ok "$f is built (run make first)"
		ma_done
		exit 1
	fi
done

poke() { python3 "$here/brokerpoke.py" "$@"; }

# --- a private Dovecot that this test may stop --------------------------------------
dbase=$((MA_TEST_IMAP_STARTTLS_PORT + 30))
ddir=$work/dovecot
dlog=$ddir/dovecot.log
dovecot_start() { "$MA_ROOT/tests/real/dovecot.sh" start "$ddir" "$dbase" >"$work/dovecot-start.log" 2>&1; }
dovecot_stop() { "$MA_ROOT/tests/real/dovecot.sh" stop "$ddir" "$dbase" >/dev/null 2>&1; }
if ! dovecot_start; then
	not_ok "the test's own Dovecot starts on port $dbase" "$(tail -n 20 "$work/dovecot-start.log")"
	ma_done
	exit 1
fi

# --- the broker, as nobody ------------------------------------------------------------
run=$work/run
state=$work/state
sock=$run/socket
blog=$work/mailauthd.log
mkdir -p "$run" "$state"
chown nobody:nogroup "$run" "$state"
chmod 755 "$run"
chmod 700 "$state"
conf=$work/broker.conf

# write_conf [EXTRA GLOBAL LINES...]: the broker's configuration, root:nogroup 0640.
write_conf() {
	{
		printf 'timeout = 5\nca_file = "%s/ca.pem"\n' "$MA_CERTS"
		printf 'cache_ttl = %s\nnegative_ttl = 600\nmax_failures = 3\nfailure_window = 6\n' \
			"${CACHE_TTL:-600}"
		printf 'offline_ttl = 3600\nstate_dir = "%s"\n' "$state"
		[ $# -eq 0 ] || printf '%s\n' "$@"
		printf 'server dovecot {\n  host = "127.0.0.1"\n  port = %s\n  forward_client_ip = yes\n}\n' \
			$((dbase + 1))
	} >"$conf.new"
	chown root:nogroup "$conf.new"
	chmod 640 "$conf.new"
	mv -f "$conf.new" "$conf"
}
write_conf

bpid=
broker_start() { # broker_start [SOCKET [CONF]]
	local s=${1:-$sock} c=${2:-$conf} n=50
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$MA_ROOT/mailauthd" -f -c "$c" -s "$s" 2>>"$blog" &
	bpid=$!
	while [ $n -gt 0 ] && [ ! -S "$s" ]; do
		sleep 0.1
		n=$((n - 1))
	done
	[ -S "$s" ]
}
broker_stop() { # sets broker_status
	broker_status=none
	[ -n "$bpid" ] || return 0
	kill -TERM "$bpid" 2>/dev/null
	wait "$bpid"
	broker_status=$?
	bpid=
}
cleanup() {
	[ -z "$bpid" ] || kill -TERM "$bpid" 2>/dev/null
	[ -z "${bpid2:-}" ] || kill -TERM "$bpid2" 2>/dev/null
	dovecot_stop
}
trap cleanup EXIT

if broker_start; then
	ok "mailauthd starts as nobody and listens on $sock"
else
	not_ok "mailauthd starts as nobody and listens on $sock" "$(tail -n 20 "$blog")"
	ma_done
	exit 1
fi
if [ "$(stat -c %a "$sock")" = 666 ] && [ "$(ps -o user= -p "$bpid")" = nobody ]; then
	ok "the socket is mode 0666, the daemon runs as nobody"
else
	not_ok "the socket is mode 0666, the daemon runs as nobody" "$(ls -l "$sock"; ps -o user=,args= -p "$bpid")"
fi

# The PAM service: no configuration, only the broker.
pamdir=$(ma_pam_dir)
printf 'auth required %s broker=%s\naccount required %s broker=%s\n' \
	"$MA_MODULE" "$sock" "$MA_MODULE" "$sock" >"$pamdir/brk"
# The in-process control, with the same server.
ma_write_config "$work/inproc.conf" <<EOF
timeout = 5
ca_file = "$MA_CERTS/ca.pem"
server dovecot { host = "127.0.0.1" port = $((dbase + 1)) forward_client_ip = yes }
EOF
ma_pam_service inproc "$work/inproc.conf"

# pam_rhost SERVICE USER PASSWORD RHOST: pamtester with PAM_RHOST set; sets MA_PAM_OUT
# and MA_PAM_RC like ma_pamtester.
pam_rhost() {
	local svc=$1 user=$2 pw=$3 rhost=$4 pre deepbind=0
	pre=$(ma_preload)
	[ "$pre" = libpam_wrapper.so ] || deepbind=1
	MA_PAM_OUT=$(printf '%s\n' "$pw" | timeout 60 env LD_PRELOAD="$pre" PAM_WRAPPER=1 \
		PAM_WRAPPER_SERVICE_DIR="$pamdir" PAM_WRAPPER_DEBUGLEVEL=2 \
		PAM_WRAPPER_DISABLE_DEEPBIND=$deepbind ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" \
		pamtester -v -I rhost="$rhost" "$svc" "$user" authenticate 2>&1)
	MA_PAM_RC=$?
}
pam_result() { # the pamtester verdict line of MA_PAM_OUT
	printf '%s\n' "$MA_PAM_OUT" | sed -E 's/^([A-Za-z][A-Za-z ]*: )+(pamtester: )/\2/' |
		grep '^pamtester: ' | grep -v '^pamtester: invoking' | tail -n 1
}
# count FILE REGEX: lines matching since the last log_mark FILE.
count() { log_since "$1" | grep -cE -- "$2"; }
# settle: Dovecot logs through its log process; give it a moment.
settle() { sleep 0.4; }
expect_count() { # expect_count DESC GOT WANT
	if [ "$2" -eq "$3" ]; then ok "$1 ($2)"; else not_ok "$1" "counted $2, want $3"; fi
}

# --- verdicts --------------------------------------------------------------------------
log_mark "$dlog"
log_mark "$blog"
expect_pam brk alice "$MA_PW_ALICE" "$MA_PAM_SUCCESS" "broker: alice, right password"
expect_log "$dlog" 'Login: user=<alice>, method=SCRAM-SHA-256' "broker: Dovecot saw alice's SCRAM-SHA-256 login"
expect_log "$blog" 'auth service=brk user=alice rhost=- result=ok source=network' \
	"broker: logged the verdict with its source"
expect_pam brk root "whatever" "$MA_PAM_USER_UNKNOWN" "broker: root is refused (minimum_uid)"
if [[ $MA_PAM_OUT != *"Password:"* ]]; then
	ok "broker: root is refused before any prompt (account request first)"
else
	not_ok "broker: root is refused before any prompt (account request first)" "$MA_PAM_OUT"
fi
ma_pamtester brk alice "$MA_PW_ALICE" acct_mgmt
if [ "$MA_PAM_RC" -eq 0 ]; then ok "broker: acct_mgmt for a routed user"; else not_ok "broker: acct_mgmt for a routed user" "$MA_PAM_OUT"; fi

# --- positive cache -----------------------------------------------------------------------
log_mark "$dlog"
bad=0
for _ in $(seq 100); do
	ma_pamtester brk alice "$MA_PW_ALICE"
	[ "$MA_PAM_RC" -eq 0 ] || bad=$((bad + 1))
done
settle
expect_count "cache: 100 successes through PAM" $((100 - bad)) 100
expect_count "cache: ... cost Dovecot no new login (1 in all, before)" "$(count "$dlog" 'Login: user=<alice>')" 0

# --- negative cache --------------------------------------------------------------------------
log_mark "$dlog"
bad=0
for _ in $(seq 10); do
	ma_pamtester brk bob 'not-bobs-password'
	[[ $(pam_result) == *"$MA_PAM_AUTH_ERR"* ]] || bad=$((bad + 1))
done
settle
expect_count "negative cache: 10 identical wrong passwords are refused" $((10 - bad)) 10
expect_count "negative cache: ... and cost Dovecot 1 failed login" \
	"$(count "$dlog" 'auth failed, [0-9]+ attempts.*user=<bob>')" 1

# --- mechanism memory ------------------------------------------------------------------------
log_mark "$dlog"
expect_pam brk erin "$MA_PW_ERIN" "$MA_PAM_SUCCESS" "memory: erin logs in (SCRAM-SHA-256)"
expect_pam brk erin 'not-erins-password' "$MA_PAM_AUTH_ERR" "memory: erin's wrong password"
settle
expect_count "memory: ... cost exactly 1 failed AUTH (no PLAIN retry after a proven SCRAM)" \
	"$(count "$dlog" '(scram-sha-[0-9]+|passwd-file)\(erin,.*Password mismatch')" 1
expect_log "$dlog" 'auth failed, 1 attempts.*user=<erin>' "memory: Dovecot counts 1 attempt"
log_mark "$dlog"
expect_pam inproc erin 'also-not-erins' "$MA_PAM_AUTH_ERR" "control: in-process, erin's wrong password"
settle
expect_count "control: in-process it costs 2 failed AUTHs (SCRAM, then PLAIN)" \
	"$(count "$dlog" '(scram-sha-[0-9]+|passwd-file)\(erin,.*Password mismatch')" 2

log_mark "$dlog"
expect_pam brk carol "$MA_PW_CAROL" "$MA_PAM_SUCCESS" "memory: carol's first login (SCRAM refused, PLAIN)"
settle
expect_count "memory: ... paid one SCRAM attempt her hash cannot do" \
	"$(count "$dlog" 'passwd-file\(carol,.*Requested SCRAM-SHA-256 scheme')" 1
log_mark "$dlog"
expect_pam brk carol 'not-carols' "$MA_PAM_AUTH_ERR" "memory: carol's wrong password (drops her cache entry)"
expect_pam brk carol "$MA_PW_CAROL" "$MA_PAM_SUCCESS" "memory: carol again, from the server"
# Once more from the server (another wrong password drops the cache entry again):
# PLAIN stays first while it works, not every other login.
expect_pam brk carol 'not-carols-2' "$MA_PAM_AUTH_ERR" "memory: carol's second wrong password"
expect_pam brk carol "$MA_PW_CAROL" "$MA_PAM_SUCCESS" "memory: carol a third time, from the server"
settle
expect_count "memory: ... all four started with PLAIN: no SCRAM attempt" \
	"$(count "$dlog" 'passwd-file\(carol,.*Requested SCRAM')" 0
expect_count "memory: ... and the server saw her PLAIN logins" "$(count "$dlog" 'Login: user=<carol>, method=PLAIN')" 2

# --- throttle ------------------------------------------------------------------------------
# max_failures = 3 in failure_window = 6 s.  dave@example.org: three different wrong
# passwords reach the server; then even the right one is refused without asking it,
# and retrying does not prolong that.
log_mark "$dlog"
log_mark "$blog"
for i in 1 2 3; do
	expect_pam brk dave@example.org "wrong-$i" "$MA_PAM_AUTH_ERR" "throttle: dave's wrong password $i"
done
t_last=$(date +%s.%N)
expect_pam brk dave@example.org "$MA_PW_DAVE" "$MA_PAM_AUTH_ERR" "throttle: then his right password is refused"
expect_log "$blog" 'user=dave@example.org .*result=throttled source=throttle' "throttle: logged as throttled"
# Three more tries at once: refused without the server, and they change nothing.
for i in 4 5 6; do
	ma_pamtester brk dave@example.org "wrong-$i"
done
settle
expect_count "throttle: the throttled attempts never reached the server (3 failed logins in all)" \
	"$(count "$dlog" 'auth failed, [0-9]+ attempts.*user=<dave@example.org>')" 3
# failure_window after the last counted failure, the right password works, however
# often he tried in between.
now=$(date +%s.%N)
wait_s=$(python3 -c "print(max(0.0, 6.3 - ($now - $t_last)))")
sleep "$wait_s"
expect_pam brk dave@example.org "$MA_PW_DAVE" "$MA_PAM_SUCCESS" \
	"throttle: ends failure_window after the last failure that reached the server"

# Per remote host: three users fail from 192.0.2.66; a fourth user is then refused
# from there, and not from elsewhere.
for u in alice bob erin; do
	pam_rhost brk "$u" "wrong-from-66-$u" 192.0.2.66
done
# carol's right password is in the cache, but a throttled host learns nothing from it.
pam_rhost brk carol "$MA_PW_CAROL" 192.0.2.66
if [[ $(pam_result) == *"$MA_PAM_AUTH_ERR"* ]]; then
	ok "throttle: carol's cached password from the guessing host is refused too (no oracle)"
else
	not_ok "throttle: carol's cached password from the guessing host is refused too (no oracle)" "$MA_PAM_OUT"
fi
pam_rhost brk carol "$MA_PW_CAROL" 192.0.2.77
if [[ $(pam_result) == *"$MA_PAM_SUCCESS"* ]]; then
	ok "throttle: ... and accepted from another host (from the cache)"
else
	not_ok "throttle: ... and accepted from another host (from the cache)" "$MA_PAM_OUT"
fi
log_mark "$dlog"
pam_rhost brk bob "$MA_PW_BOB" 192.0.2.66
if [[ $(pam_result) == *"$MA_PAM_AUTH_ERR"* ]]; then
	ok "throttle: bob from the guessing host is refused (3 failures of that host)"
else
	not_ok "throttle: bob from the guessing host is refused (3 failures of that host)" "$MA_PAM_OUT"
fi
pam_rhost brk bob "$MA_PW_BOB" 192.0.2.77
if [[ $(pam_result) == *"$MA_PAM_SUCCESS"* ]]; then
	ok "throttle: bob from another host gets in"
else
	not_ok "throttle: bob from another host gets in" "$MA_PAM_OUT"
fi

# --- forward_client_ip ---------------------------------------------------------------------
settle
expect_log "$dlog" 'Login: user=<bob>.*rip=192\.0\.2\.77' "forward_client_ip: broker: Dovecot logged bob's address as rip"
log_mark "$dlog"
pam_rhost inproc alice "$MA_PW_ALICE" 2001:db8::7
expect_log "$dlog" 'Login: user=<alice>.*rip=2001:db8::7' "forward_client_ip: in-process: Dovecot logged alice's IPv6 address"
log_mark "$dlog"
pam_rhost inproc alice "$MA_PW_ALICE" 'evil") (x'
expect_log "$dlog" 'Login: user=<alice>.*rip=127\.0\.0\.1' "forward_client_ip: a PAM_RHOST that is not an address is never sent"

# --- SO_PEERCRED ------------------------------------------------------------------------------
as_daemon() { setpriv --reuid=daemon --regid=daemon --clear-groups "$@"; }
out=$(printf '%s\n' "$MA_PW_ALICE" | as_daemon "$MA_TOOL" login -b "$sock" alice 2>&1)
rc=$?
if [ $rc -eq 4 ] && [[ $out == *"not in the broker's clients"* ]]; then
	ok "clients: uid daemon (not listed) is refused, told why (exit 4)"
else
	not_ok "clients: uid daemon (not listed) is refused, told why (exit 4)" "exit $rc" "$out"
fi
for rule in '"daemon"' '"@daemon"'; do
	CACHE_TTL=600 write_conf "clients = {$rule}"
	log_mark "$blog"
	kill -HUP "$bpid"
	expect_log "$blog" 'reloaded' "clients = {$rule}: SIGHUP reloads"
	out=$(printf '%s\n' "$MA_PW_ALICE" | as_daemon "$MA_TOOL" login -b "$sock" alice 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && [[ $out == accepted* ]]; then
		ok "clients = {$rule}: uid daemon is served"
	else
		not_ok "clients = {$rule}: uid daemon is served" "exit $rc" "$out"
	fi
done
# A broken configuration on SIGHUP: the running one stays.
printf 'timeout = 5\nserver broken {\n' >"$conf"
chown root:nogroup "$conf"
log_mark "$blog"
kill -HUP "$bpid"
expect_log "$blog" 'reload refused' "a broken configuration on SIGHUP is refused"
out=$(printf '%s\n' "$MA_PW_ALICE" | as_daemon "$MA_TOOL" login -b "$sock" alice 2>&1)
if [[ $out == accepted* ]]; then ok "... and the running one still serves"; else not_ok "... and the running one still serves" "$out"; fi
write_conf
kill -HUP "$bpid"
sleep 0.3

# --- hostile callers ---------------------------------------------------------------------------
res=$(poke garbage "$sock")
if [[ $res == *"err=protocol-error"* ]]; then ok "hostile: a frame of another version gets a protocol error"; else not_ok "hostile: a frame of another version gets a protocol error" "$res"; fi
res=$(poke oversize "$sock")
if [[ $res == *"err=protocol-error"* ]]; then ok "hostile: a body over 4 KiB is refused unread"; else not_ok "hostile: a body over 4 KiB is refused unread" "$res"; fi
res=$(poke partial "$sock" 6)
if [[ $res =~ closed\ after\ ([0-9.]+) ]] && python3 -c "import sys; sys.exit(0 if 1.5 <= ${BASH_REMATCH[1]} <= 3.5 else 1)"; then
	ok "hostile: half a request is dropped after its 2 s deadline ($res)"
else
	not_ok "hostile: half a request is dropped after its 2 s deadline" "$res"
fi
res=$(poke pipelined "$sock" alice "$MA_PW_ALICE" 3)
if [ "$(grep -o 'err=ok' <<<"$res" | wc -l)" -eq 3 ]; then ok "pipelined: three requests in one write, three answers"; else not_ok "pipelined: three requests in one write, three answers" "$res"; fi
# 40 connections that send one byte each and stall (more than the 32 workers): a login
# still gets through within the request deadline.
poke slowloris "$sock" 40 4 >/dev/null &
slow=$!
sleep 0.5
t0=$(date +%s%N)
expect_pam brk alice "$MA_PW_ALICE" "$MA_PAM_SUCCESS" "hostile: a login while 40 callers stall"
ms=$((($(date +%s%N) - t0) / 1000000))
if [ $ms -lt 5000 ]; then ok "hostile: ... answered in $ms ms"; else not_ok "hostile: ... answered in $ms ms (over 5 s)"; fi
wait $slow
if kill -0 "$bpid" 2>/dev/null; then ok "hostile: the broker is still running"; else not_ok "hostile: the broker is still running"; fi

# --- offline ------------------------------------------------------------------------------------
if [ "$(stat -c '%a %U' "$state/offline" 2>/dev/null)" = "600 nobody" ]; then
	ok "offline: the verifier file is 0600, owned by the daemon's user"
else
	not_ok "offline: the verifier file is 0600, owned by the daemon's user" "$(ls -l "$state")"
fi
if ! grep -qF "$MA_PW_ALICE" "$state/offline"; then ok "offline: no password in the file"; else not_ok "offline: no password in the file"; fi
dovecot_stop
log_mark "$blog"
expect_pam brk alice "$MA_PW_ALICE" "$MA_PAM_SUCCESS" "offline: Dovecot stopped, alice (cached) gets in"
CACHE_TTL=0 write_conf
kill -HUP "$bpid"
sleep 0.3
log_mark "$blog"
expect_pam brk alice "$MA_PW_ALICE" "$MA_PAM_SUCCESS" "offline: without the cache too, from her verifier"
expect_log "$blog" 'user=alice .*result=ok-offline source=offline' "offline: logged result=ok-offline"
expect_pam brk alice 'not-alices-password' "$MA_PAM_AUTHINFO_UNAVAIL" "offline: a wrong password is refused"
expect_pam brk dave@example.org "$MA_PW_DAVE" "$MA_PAM_SUCCESS" "offline: dave, seen before, gets in"
# A user who never logged in through this broker: no verifier.
expect_pam brk carol "$MA_PW_CAROL" "$MA_PAM_SUCCESS" "offline: carol, seen before, gets in"
expect_pam brk nobody-ever@example.org 'some-password' "$MA_PAM_AUTHINFO_UNAVAIL" "offline: a user never seen is refused"
# Restart: the verifiers were written; the new daemon reads them.
broker_stop
if [ "$broker_status" = 0 ] && [ ! -e "$sock" ]; then
	ok "SIGTERM: exit status 0, socket removed"
else
	not_ok "SIGTERM: exit status 0, socket removed" "status $broker_status" "$(ls -l "$run")"
fi
expect_pam brk alice "$MA_PW_ALICE" "$MA_PAM_AUTHINFO_UNAVAIL" "no broker: PAM_AUTHINFO_UNAVAIL, never in-process"
if [[ $MA_PAM_OUT == *"broker unreachable"* ]]; then ok "no broker: logged as unreachable"; else not_ok "no broker: logged as unreachable" "$MA_PAM_OUT"; fi
log_mark "$blog"
broker_start
expect_log "$blog" 'offline: [0-9]+ verifiers loaded' "offline: the restarted broker loaded the verifiers"
expect_pam brk alice "$MA_PW_ALICE" "$MA_PAM_SUCCESS" "offline: after a restart, alice's verifier is still there"
# A rejection drops the verifier: Dovecot back, a wrong password, Dovecot gone again.
dovecot_start
expect_pam brk alice 'the-new-password?' "$MA_PAM_AUTH_ERR" "offline: Dovecot back, a wrong password for alice"
dovecot_stop
expect_pam brk alice "$MA_PW_ALICE" "$MA_PAM_AUTHINFO_UNAVAIL" "offline: after that rejection her verifier is gone"
dovecot_start

# --- max_connections ------------------------------------------------------------------------------
# limit_case NAME SECONDS CLOSE_AFTER TIMEOUT N: a broker whose one server (a TCP server
# that never answers and closes each connection after CLOSE_AFTER s, or never) allows
# max_connections = 2; N logins at once.  Sets most, total and took (ms).
limit_case() {
	local name=$1 secs=$2 close_after=$3 timeout=$4 n=$5 i t0 p pids=()
	python3 "$here/brokerpoke.py" holdserver "$work/$name.port" "$work/$name.stats" "$secs" \
		"$close_after" >/dev/null &
	hold=$!
	for _ in $(seq 50); do [ -s "$work/$name.port" ] && break; sleep 0.1; done
	{
		printf 'timeout = %s\ncache_ttl = 0\nmax_failures = 0\n' "$timeout"
		printf 'server silent { host = "127.0.0.1" port = %s tls = implicit max_connections = 2 }\n' \
			"$(cat "$work/$name.port")"
	} >"$work/$name.conf"
	chown root:nogroup "$work/$name.conf"
	chmod 640 "$work/$name.conf"
	bpid_main=$bpid
	broker_start "$run/$name.socket" "$work/$name.conf"
	bpid2=$bpid
	bpid=$bpid_main
	t0=$(date +%s%N)
	for i in $(seq "$n"); do
		(printf 'x\n' | "$MA_TOOL" login -b "$run/$name.socket" "user$i" >"$work/$name.$i" 2>&1) &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	took=$((($(date +%s%N) - t0) / 1000000))
	read -r most total <"$work/$name.stats"
	kill -TERM "$bpid2"
	wait "$bpid2"
	bpid2=
	kill "$hold" 2>/dev/null
	wait "$hold" 2>/dev/null
}
# A server that drops each connection after 1 s: six logins go through two at a time,
# the later ones waiting for a slot (three rounds of about 1 s).
limit_case waves 8 1 6 6
if [ "$most" -eq 2 ] && [ "$total" -eq 6 ]; then
	ok "max_connections = 2: six logins reached the server, at most 2 at once"
else
	not_ok "max_connections = 2: six logins reached the server, at most 2 at once" "most=$most total=$total"
fi
if [ "$took" -ge 2500 ] && [ "$took" -le 5500 ]; then
	ok "max_connections: ... the others waited for a slot (${took} ms for three rounds of 1 s)"
else
	not_ok "max_connections: ... the others waited for a slot (three rounds of 1 s)" "${took} ms"
fi
# A server that holds every connection: the logins beyond the limit wait until the
# deadline (2 s), then are unavailable, and say why.
# (The count is the waves case's: here the first two connections end at the same
# moment as the wait of the others, and the server may see a close late.)
limit_case stuck 6 0 2 5
if [ "$(grep -l 'max_connections' "$work"/stuck.[0-9] | wc -l)" -ge 1 ] &&
	[ "$(grep -l '^failed: timeout' "$work"/stuck.[0-9] | wc -l)" -eq 5 ] && [ "$took" -le 3000 ]; then
	ok "max_connections: beyond the limit, unavailable at the deadline, saying why (${took} ms)"
else
	not_ok "max_connections: beyond the limit, unavailable at the deadline, saying why" \
		"${took} ms" "$(cat "$work"/stuck.[0-9])"
fi

# --- a policy refusal (lib/codes.c) through the broker ---------------------------------------------
# Microsoft 365's refusal, byte for byte, from a fake SMTP server over TLS: `mailauth login -b`
# exits 5 with the meaning and Microsoft's remedy, and the broker logs result=policy.
# (tests/fake/test_policy.sh has the rest: no negative cache, throttle, offline, PAM.)
m365_pw='m365-Pa55word'
python3 "$MA_ROOT/tests/fake/fake_smtp.py" --certs "$MA_CERTS" --user alice --password "$m365_pw" \
	--scenario m365 --transcript "$work/m365.transcript" --hard-timeout 20 --script "tls
send 220 SN4PR0501CA0057.outlook.office365.com Microsoft ESMTP MAIL Service ready
expect EHLO
send 250-SN4PR0501CA0057.outlook.office365.com Hello [127.0.0.1]\r\n250-SIZE 157286400\r\n250-AUTH LOGIN XOAUTH2\r\n250 ENHANCEDSTATUSCODES
expect= AUTH LOGIN
send 334 VXNlcm5hbWU6
expect= {USER}
send 334 UGFzc3dvcmQ6
expect= {PASS}
send 535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [SN4PR0501CA0057.namprd05.prod.outlook.com 2026-12-05T07:12:31.417Z 08DD1A2B3C4D5E6F]
expect QUIT" >"$work/m365.port" 2>"$work/m365.err" &
m365_fake=$!
for _ in $(seq 50); do [ -s "$work/m365.port" ] && break; sleep 0.1; done
{
	printf 'timeout = 5\nca_file = "%s/ca.pem"\nhelo_name = "client.test"\n' "$MA_CERTS"
	printf 'server m365 { protocol = smtp host = "127.0.0.1" port = %s tls = implicit mechanisms = {"LOGIN"} }\n' \
		"$(head -n 1 "$work/m365.port")"
} >"$work/m365.conf"
chown root:nogroup "$work/m365.conf"
chmod 640 "$work/m365.conf"
bpid_main=$bpid
log_mark "$blog"
broker_start "$run/m365.socket" "$work/m365.conf"
bpid2=$bpid
bpid=$bpid_main
out=$(printf '%s\n' "$m365_pw" | "$MA_TOOL" login -b "$run/m365.socket" alice 2>&1)
rc=$?
if [ $rc -eq 5 ]; then
	ok "policy: Microsoft 365's 535 5.7.139 through the broker: mailauth login -b exits 5"
else
	not_ok "policy: Microsoft 365's 535 5.7.139 through the broker: mailauth login -b exits 5" "exit $rc" "$out"
fi
if [[ $out == *"meaning: Microsoft 365: SMTP AUTH (Basic) is disabled for the whole tenant"* ]] &&
	[[ $out == *"remedy: a Microsoft 365 admin enables SMTP AUTH"* ]]; then
	ok "policy: ... with the meaning and Microsoft's remedy"
else
	not_ok "policy: ... with the meaning and Microsoft's remedy" "$out"
fi
expect_log "$blog" 'result=policy .*code=m365-smtp-auth-disabled-tenant meaning=' \
	"policy: the broker logs result=policy with the row"
kill -TERM "$bpid2"
wait "$bpid2"
bpid2=
if wait "$m365_fake"; then
	ok "policy: the fake saw AUTH LOGIN, the user, the password, then QUIT"
else
	not_ok "policy: the fake saw AUTH LOGIN, the user, the password, then QUIT" "$(cat "$work/m365.transcript")"
fi

# --- a socket others could have planted -------------------------------------------------------------
evil=$(mktemp -d /tmp/ma-evil.XXXXXX)
chmod 1777 "$evil"
printf 'auth required %s broker=%s/socket\n' "$MA_MODULE" "$evil" >"$pamdir/brk-evil"
bpid_main=$bpid
broker_start "$evil/socket" "$conf"
bpid2=$bpid
bpid=$bpid_main
expect_pam brk-evil alice "$MA_PW_ALICE" "$MA_PAM_AUTHINFO_UNAVAIL" \
	"a broker socket in a directory others can write is not trusted"
if [[ $MA_PAM_OUT == *"writable by others"* ]]; then ok "... and the module says why"; else not_ok "... and the module says why" "$MA_PAM_OUT"; fi
kill -TERM "$bpid2"
wait "$bpid2"
bpid2=
rm -rf "$evil"

broker_stop
ma_done
