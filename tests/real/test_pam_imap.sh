#!/bin/bash
# tests/real/test_pam_imap.sh - pam_mailauth.so through the real PAM stack (pam_wrapper
# + pamtester) against the private Dovecot's IMAP listeners: STARTTLS and implicit TLS.
#
# Run by tests/run-tests.sh, which starts Dovecot and exports MA_TEST_*; run on its own
# it starts (and stops) a Dovecot itself. Prints one "ok - ..." / "not ok - ..." line
# per assertion and exits non-zero when any failed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"

ma_need_dovecot
log=$MA_TEST_DOVECOT_LOG
work=$MA_TMP/test_pam_imap
rm -rf "$work"
mkdir -p "$work"

if [ ! -f "$MA_MODULE" ]; then
	not_ok "$MA_MODULE is built (run make first)"
	ma_done
	exit 1
fi

# config NAME PORT TLS HOST [EXTRA...]: NAME.conf for one IMAP server and a PAM
# service "imap-NAME" that uses it.
config() {
	local name=$1 port=$2 tls=$3 host=$4
	shift 4
	ma_write_config "$work/$name.conf" <<EOF
timeout = 5
ca_file = "$MA_CERTS/ca.pem"
server dovecot {
  protocol = imap
  host = "$host"
  port = $port
  tls = $tls
}
EOF
	ma_pam_service "imap-$name" "$work/$name.conf" "$@"
}

# Host names: the STARTTLS port by IP literal (IP SAN), the implicit one by name (DNS
# SAN, SNI); both are in server.pem.
config starttls "$MA_TEST_IMAP_STARTTLS_PORT" starttls 127.0.0.1
config implicit "$MA_TEST_IMAPS_PORT" implicit localhost
config starttls-debug "$MA_TEST_IMAP_STARTTLS_PORT" starttls 127.0.0.1 debug
down_port=$(ma_closed_port)
config down "$down_port" implicit 127.0.0.1

for mode in starttls implicit; do
	svc=imap-$mode

	log_mark "$log"
	expect_pam "$svc" alice "$MA_PW_ALICE" "$MA_PAM_SUCCESS" "$mode: alice, right password"
	expect_log "$log" 'imap-login: .*Login: user=<alice>, method=SCRAM-SHA-256, .*TLS' \
		"$mode: Dovecot logged alice in with SCRAM-SHA-256 over TLS"

	log_mark "$log"
	expect_pam "$svc" alice "wrong-$MA_PW_ALICE" "$MA_PAM_AUTH_ERR" "$mode: alice, wrong password"
	expect_log "$log" 'imap-login: .*\(auth failed, [0-9]+ attempts.*user=<alice>.*TLS' \
		"$mode: Dovecot saw alice's failed attempt over TLS"
	expect_no_log "$log" 'Login: user=<alice>' "$mode: no Dovecot login for the wrong password"

	log_mark "$log"
	expect_pam "$svc" bob "$MA_PW_BOB" "$MA_PAM_SUCCESS" "$mode: bob, password with space, quotes, backslashes"
	expect_log "$log" 'Login: user=<bob>, method=SCRAM-SHA-256' "$mode: Dovecot logged bob in"

	log_mark "$log"
	expect_pam "$svc" carol "$MA_PW_CAROL" "$MA_PAM_SUCCESS" "$mode: carol (SHA512-CRYPT stored, SCRAM impossible)"
	expect_log "$log" 'Login: user=<carol>, method=PLAIN, .*TLS' \
		"$mode: carol got in by falling back to PLAIN over TLS"

	log_mark "$log"
	expect_pam "$svc" erin "$MA_PW_ERIN" "$MA_PAM_SUCCESS" "$mode: erin (SCRAM-SHA-256 stored)"
	expect_log "$log" 'Login: user=<erin>, method=SCRAM-SHA-256' "$mode: Dovecot logged erin in with SCRAM-SHA-256"

	expect_pam "$svc" dave@example.org "$MA_PW_DAVE" "$MA_PAM_SUCCESS" "$mode: dave@example.org"

	log_mark "$log"
	expect_pam "$svc" alice "" "$MA_PAM_AUTH_ERR" "$mode: empty password is refused"
	expect_no_log "$log" '.' "$mode: empty password: no connection to Dovecot"

	log_mark "$log"
	expect_pam "$svc" nosuchuser "some-password" "$MA_PAM_AUTH_ERR" \
		"$mode: user unknown to the server -> Authentication failure"

	ma_pamtester "$svc" alice "$MA_PW_ALICE" acct_mgmt
	if [ "$MA_PAM_RC" -eq 0 ] && [[ $MA_PAM_OUT == *"$MA_PAM_ACCT_OK"* ]]; then
		ok "$mode: acct_mgmt for a routed user succeeds"
	else
		not_ok "$mode: acct_mgmt for a routed user succeeds" "exit status $MA_PAM_RC" "$MA_PAM_OUT"
	fi
done

log_mark "$log"
expect_pam imap-starttls root "some-password" "$MA_PAM_USER_UNKNOWN" \
	"root (uid 0 < minimum_uid) -> User not known"
expect_no_log "$log" '.' "root: no connection to Dovecot"

log_mark "$log"
expect_pam imap-down alice "$MA_PW_ALICE" "$MA_PAM_AUTHINFO_UNAVAIL" \
	"server down (closed port $down_port) -> PAM_AUTHINFO_UNAVAIL"
expect_no_log "$log" '.' "server down: nothing reached Dovecot"

# The module's own log (pam_syslog, printed by pam_wrapper) with `debug`: the protocol
# exchange may be there, the password and the PLAIN/SCRAM payloads must not.
expect_pam imap-starttls-debug carol "$MA_PW_CAROL" "$MA_PAM_SUCCESS" "debug: carol logs in"
plain_b64=$(printf '\0carol\0%s' "$MA_PW_CAROL" | base64 -w0)
if [[ $MA_PAM_OUT == *"$MA_PW_CAROL"* ]] || [[ $MA_PAM_OUT == *"$plain_b64"* ]] ||
	[[ $MA_PAM_OUT == *"${plain_b64:0:16}"* ]]; then
	not_ok "debug: the module's log does not contain the password or the PLAIN payload" "$MA_PAM_OUT"
elif ! printf '%s\n' "$MA_PAM_OUT" | grep -q 'SYSLOG'; then
	not_ok "debug: the module logs through pam_syslog" "$MA_PAM_OUT"
else
	ok "debug: the module logs, without the password or the PLAIN payload"
fi

# channel_binding: Dovecot 2.3 advertises no -PLUS, so every setting ends in SCRAM-SHA-256
# (GS2 flag "y" with a binding type, "n" with none, both accepted by Dovecot) and never
# in a failed attempt.  The real -PLUS peer is Cyrus: tests/real/test_cyrus.sh.
for cb in tls-unique tls-exporter none; do
	ma_write_config "$work/cb-$cb.conf" <<EOF
timeout = 5
ca_file = "$MA_CERTS/ca.pem"
server dovecot {
  protocol = imap
  host = "127.0.0.1"
  port = $MA_TEST_IMAPS_PORT
  tls = implicit
  channel_binding = $cb
}
EOF
	ma_pam_service "imap-cb-$cb" "$work/cb-$cb.conf"
	log_mark "$log"
	expect_pam "imap-cb-$cb" erin "$MA_PW_ERIN" "$MA_PAM_SUCCESS" "channel_binding = $cb: erin logs in"
	expect_log "$log" 'Login: user=<erin>, method=SCRAM-SHA-256, ' \
		"channel_binding = $cb: Dovecot logged erin in with SCRAM-SHA-256"
	expect_no_log "$log" 'auth failed' "channel_binding = $cb: no failed attempt at Dovecot"
done

ma_done
