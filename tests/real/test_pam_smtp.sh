#!/bin/bash
# tests/real/test_pam_smtp.sh - pam_mailauth.so through the real PAM stack (pam_wrapper
# + pamtester) against SMTP submission servers: the private Dovecot's submission
# listeners (STARTTLS and implicit TLS), and a private Postfix (tests/real/postfix.sh,
# started and stopped here) whose SASL is that Dovecot's auth-postfix socket.
#
# Postfix listens on MA_TEST_POSTFIX_PORT (default: the IMAP STARTTLS port + 20) and +1.
# Prints one "ok - ..." / "not ok - ..." line per assertion; exits non-zero on failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"

ma_need_dovecot
dlog=$MA_TEST_DOVECOT_LOG
work=$MA_TMP/test_pam_smtp
pf_dir=$MA_TMP/postfix
pf_port=${MA_TEST_POSTFIX_PORT:-$((MA_TEST_IMAP_STARTTLS_PORT + 20))}
plog=$pf_dir/postfix.log
rm -rf "$work"
mkdir -p "$work"

if [ ! -f "$MA_MODULE" ]; then
	not_ok "$MA_MODULE is built (run make first)"
	ma_done
	exit 1
fi

cleanup() {
	"$here/postfix.sh" stop "$pf_dir" "$pf_port" >/dev/null 2>&1 || true
	if [ "${MA_STARTED_DOVECOT:-0}" = 1 ]; then
		ma_dovecot_stop
	fi
}
# ma_need_dovecot may have set an EXIT trap to stop its Dovecot; keep that duty.
if trap -p EXIT | grep ma_dovecot_stop >/dev/null; then
	MA_STARTED_DOVECOT=1
fi
trap cleanup EXIT

postfix_ok=1
if ! pf_out=$("$here/postfix.sh" start "$pf_dir" "$pf_port" \
	"$MA_TEST_DOVECOT_DIR/run/auth-postfix" 2>&1); then
	postfix_ok=0
fi
if [ $postfix_ok = 1 ]; then
	ok "private Postfix started on $pf_port, $((pf_port + 1))"
else
	not_ok "private Postfix started on $pf_port, $((pf_port + 1))" "$pf_out"
fi

config() { # config NAME PORT TLS HOST [MODULE ARGS...]
	local name=$1 port=$2 tls=$3 host=$4
	shift 4
	ma_write_config "$work/$name.conf" <<EOF
timeout = 5
ca_file = "$MA_CERTS/ca.pem"
helo_name = "client.test"
server submission {
  protocol = smtp
  host = "$host"
  port = $port
  tls = $tls
}
EOF
	ma_pam_service "smtp-$name" "$work/$name.conf" "$@"
}

config dovecot-starttls "$MA_TEST_SUBMISSION_PORT" starttls 127.0.0.1
config dovecot-implicit "$MA_TEST_SUBMISSIONS_PORT" implicit localhost
config postfix-starttls "$pf_port" starttls localhost
config postfix-implicit "$((pf_port + 1))" implicit 127.0.0.1
down_port=$(ma_closed_port)
config down "$down_port" starttls 127.0.0.1

# Dovecot's submission-login logs the mechanism; its submission process then fails to
# reach the (absent) relay, which does not matter for AUTH.
for mode in starttls implicit; do
	svc=smtp-dovecot-$mode
	what="dovecot $mode"

	log_mark "$dlog"
	expect_pam "$svc" alice "$MA_PW_ALICE" "$MA_PAM_SUCCESS" "$what: alice, right password"
	expect_log "$dlog" 'submission-login: .*Login: user=<alice>, method=SCRAM-SHA-256, .*TLS' \
		"$what: Dovecot logged alice in with SCRAM-SHA-256 over TLS"

	log_mark "$dlog"
	expect_pam "$svc" alice "wrong-$MA_PW_ALICE" "$MA_PAM_AUTH_ERR" "$what: alice, wrong password"
	expect_no_log "$dlog" 'Login: user=<alice>' "$what: no Dovecot login for the wrong password"

	expect_pam "$svc" bob "$MA_PW_BOB" "$MA_PAM_SUCCESS" "$what: bob, password with space, quotes, backslashes"

	log_mark "$dlog"
	expect_pam "$svc" carol "$MA_PW_CAROL" "$MA_PAM_SUCCESS" "$what: carol (SHA512-CRYPT stored)"
	expect_log "$dlog" 'submission-login: .*Login: user=<carol>, method=PLAIN, .*TLS' \
		"$what: carol got in by falling back to PLAIN over TLS"

	log_mark "$dlog"
	expect_pam "$svc" erin "$MA_PW_ERIN" "$MA_PAM_SUCCESS" "$what: erin (SCRAM-SHA-256 stored)"
	expect_log "$dlog" 'submission-login: .*Login: user=<erin>, method=SCRAM-SHA-256, .*TLS' \
		"$what: Dovecot logged erin in with SCRAM-SHA-256 over TLS"

	log_mark "$dlog"
	expect_pam "$svc" alice "" "$MA_PAM_AUTH_ERR" "$what: empty password is refused"
	expect_no_log "$dlog" 'submission-login' "$what: empty password: no connection to Dovecot"
done

# Postfix's disconnect line counts every command of the session (only the non-zero ones;
# "auth=0/2": 0 of 2 succeeded; "commands=" is the total, so nothing else was sent):
#   STARTTLS  EHLO, STARTTLS, EHLO again (capabilities are asked again after TLS), AUTH,
#             QUIT                                    ehlo=2 starttls=1 auth=1 quit=1
#   implicit  EHLO, AUTH, QUIT                        ehlo=1 auth=1 quit=1
# A wrong password: the SCRAM rejection is retried once with PLAIN
# (mechanism_fallback), then QUIT: auth=0/2.
if [ $postfix_ok = 1 ]; then
	for mode in starttls implicit; do
		svc=smtp-postfix-$mode
		what="postfix $mode"
		case $mode in
		starttls)
			counts_ok='ehlo=2 starttls=1 auth=1 quit=1 commands=5'
			counts_bad='ehlo=2 starttls=1 auth=0/2 quit=1 commands=4/6'
			;;
		implicit)
			counts_ok='ehlo=1 auth=1 quit=1 commands=3'
			counts_bad='ehlo=1 auth=0/2 quit=1 commands=2/4'
			;;
		esac

		log_mark "$plog"
		expect_pam "$svc" alice "$MA_PW_ALICE" "$MA_PAM_SUCCESS" "$what: alice, right password"
		expect_log "$plog" 'disconnect from .* ehlo=[0-9]+ .*auth=1 ' "$what: Postfix counted one successful AUTH"
		expect_log "$plog" "disconnect from [^ ]+ $counts_ok\$" \
			"$what: Postfix counted exactly $counts_ok"
		expect_log "$plog" 'TLS connection established' "$what: over TLS"

		log_mark "$plog"
		expect_pam "$svc" alice "wrong-$MA_PW_ALICE" "$MA_PAM_AUTH_ERR" "$what: alice, wrong password"
		expect_log "$plog" 'authentication failed' "$what: Postfix logged the failed AUTH"
		expect_log "$plog" "disconnect from [^ ]+ $counts_bad\$" \
			"$what: wrong password: Postfix counted exactly $counts_bad (one PLAIN retry, then QUIT)"

		expect_pam "$svc" bob "$MA_PW_BOB" "$MA_PAM_SUCCESS" "$what: bob, password with space, quotes, backslashes"
		expect_pam "$svc" carol "$MA_PW_CAROL" "$MA_PAM_SUCCESS" "$what: carol (SHA512-CRYPT stored)"
	done
fi

# forward_client_ip: XCLIENT ADDR= after TLS, then a new greeting and EHLO; the server
# logs the PAM_RHOST address, not ours (in-process here; test_broker.sh does IMAP
# through the broker).
forward_config() { # forward_config NAME PORT TLS
	ma_write_config "$work/$1.conf" <<EOF
timeout = 5
ca_file = "$MA_CERTS/ca.pem"
helo_name = "client.test"
server submission { protocol = smtp host = "127.0.0.1" port = $2 tls = $3 forward_client_ip = yes }
EOF
	ma_pam_service "smtp-$1" "$work/$1.conf"
}
# pam_rhost SERVICE USER PASSWORD RHOST: pamtester with PAM_RHOST; sets MA_PAM_RC/OUT.
pam_rhost() {
	local pre deepbind=0
	pre=$(ma_preload)
	[ "$pre" = libpam_wrapper.so ] || deepbind=1
	MA_PAM_OUT=$(printf '%s\n' "$3" | timeout 60 env LD_PRELOAD="$pre" PAM_WRAPPER=1 \
		PAM_WRAPPER_SERVICE_DIR="$(ma_pam_dir)" PAM_WRAPPER_DEBUGLEVEL=2 \
		PAM_WRAPPER_DISABLE_DEEPBIND=$deepbind ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" \
		pamtester -v -I rhost="$4" "$1" "$2" authenticate 2>&1)
	MA_PAM_RC=$?
}
if [ $postfix_ok = 1 ]; then
	forward_config postfix-forward "$pf_port" starttls
	log_mark "$plog"
	pam_rhost smtp-postfix-forward alice "$MA_PW_ALICE" 192.0.2.7
	if [ "$MA_PAM_RC" -eq 0 ]; then ok "postfix forward_client_ip: alice gets in"; else not_ok "postfix forward_client_ip: alice gets in" "$MA_PAM_OUT"; fi
	# Postfix counts the session's commands on the disconnect line, under the address
	# XCLIENT gave it: EHLO, STARTTLS, EHLO, XCLIENT, EHLO (the new session), AUTH, QUIT.
	expect_log "$plog" 'disconnect from [^ ]*\[192\.0\.2\.7\] ehlo=3 xclient=[0-9/]+ starttls=1 auth=1 quit=1 ' \
		"postfix forward_client_ip: Postfix took alice's AUTH as coming from 192.0.2.7 (XCLIENT, then EHLO again)"
	log_mark "$plog"
	pam_rhost smtp-postfix-forward alice "$MA_PW_ALICE" 'not-an-address'
	expect_log "$plog" 'disconnect from localhost\[127\.0\.0\.1\] ehlo=2 starttls=1 auth=1 quit=1 commands=5$' \
		"postfix forward_client_ip: a PAM_RHOST that is not an address: no XCLIENT at all"
fi

log_mark "$dlog"
expect_pam smtp-down alice "$MA_PW_ALICE" "$MA_PAM_AUTHINFO_UNAVAIL" \
	"server down (closed port $down_port) -> PAM_AUTHINFO_UNAVAIL"
expect_no_log "$dlog" '.' "server down: nothing reached Dovecot"

ma_done
