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

log_mark "$dlog"
expect_pam smtp-down alice "$MA_PW_ALICE" "$MA_PAM_AUTHINFO_UNAVAIL" \
	"server down (closed port $down_port) -> PAM_AUTHINFO_UNAVAIL"
expect_no_log "$dlog" '.' "server down: nothing reached Dovecot"

ma_done
