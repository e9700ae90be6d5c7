#!/bin/bash
# tests/fake/test_policy.sh - server refusals as meaning (lib/codes.c) through the real
# PAM stack (pam_wrapper + pamtester) and `mailauth login`, against scripted fake
# servers (tests/fake/fake_smtp.py, whose line directives also speak IMAP) over TLS,
# sending Microsoft 365's and Google's replies byte for byte:
#
#   - a policy refusal is PAM_AUTHINFO_UNAVAIL, logged with code= meaning= remedy=,
#     its meaning shown through the conversation (PAM_ERROR_MSG), no PLAIN fallback,
#     no other server, `mailauth login` exits 5 with the meaning and the remedy;
#   - an IMAP [ALERT] reaches the user (PAM_ERROR_MSG on failure, PAM_TEXT_INFO on
#     success), escaped and at most 200 bytes, never under PAM_SILENT, never when it
#     came without TLS (tls = none on loopback);
#   - a temporary code moves to the next server; "too weak" for every mechanism is
#     policy; a code-less NO stays a rejection.
#
# Needs no Dovecot.  Prints one "ok - ..." / "not ok - ..." line per assertion.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"

work=$MA_TMP/test_policy
rm -rf "$work"
mkdir -p "$work"
if [ ! -f "$MA_MODULE" ] || [ ! -x "$MA_TOOL" ]; then
	not_ok "$MA_MODULE and $MA_TOOL are built (run make first)"
	ma_done
	exit 1
fi
if [ ! -f "$MA_CERTS/ca.pem" ]; then
	"$MA_ROOT/tests/lib/certs.sh" "$MA_CERTS" >/dev/null
fi

PW='pw-policy-S3cret'
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# start_fake NAME SCRIPT [fake_smtp.py ARGS...]: a one-connection fake; sets PORT_<NAME>
# and PID_<NAME> (NAME: letters, digits and _ only).
start_fake() {
	local name=$1 script=$2 port="" pid
	shift 2
	python3 "$MA_ROOT/tests/fake/fake_smtp.py" --certs "$MA_CERTS" --user alice \
		--password "$PW" --scenario "$name" --script "$script" \
		--transcript "$work/$name.transcript" --hard-timeout 20 "$@" \
		>"$work/$name.port" 2>"$work/$name.err" &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 100); do [ -s "$work/$name.port" ] && break; sleep 0.05; done
	port=$(head -n 1 "$work/$name.port")
	printf -v "PORT_$name" '%s' "$port"
	printf -v "PID_$name" '%s' "$pid"
}

# service NAME [MODULE ARGS...] < server sections: configuration + PAM service NAME.
service() {
	local name=$1
	shift
	{
		printf 'timeout = 5\nca_file = "%s"\nhelo_name = "client.test"\n' "$MA_CERTS/ca.pem"
		cat
	} | ma_write_config "$work/$name.conf"
	ma_pam_service "policy-$name" "$work/$name.conf" "$@"
}

# The conversation, without the module's log lines that pam_wrapper prints too
# ("PWRAP_..." prefixed, possibly after the "Password: " prompt) and without
# pamtester's own lines.
conversation() {
	printf '%s\n' "$MA_PAM_OUT" | grep -v 'PWRAP_' | grep -v '^pamtester: ' || true
}

has() { # has DESC HAYSTACK NEEDLE (fixed string)
	if [[ $2 == *"$3"* ]]; then ok "$1"; else not_ok "$1" "missing: $3" "in: $2"; fi
}
hasnt() { # hasnt DESC HAYSTACK NEEDLE
	if [[ $2 != *"$3"* ]]; then ok "$1"; else not_ok "$1" "present: $3" "in: $2"; fi
}
# fake_ok NAME DESC: wait for the fake (not in a subshell: only this shell can wait
# for it); ok when it exited 0, i.e. every expect matched and no rule was broken (an
# AUTH it did not expect, a password before TLS...).
fake_ok() {
	local pid_var="PID_$1" st=0
	wait "${!pid_var}" 2>/dev/null || st=$?
	if [ "$st" = 0 ]; then
		ok "$2"
	else
		not_ok "$2" "fake server exit $st" "$(cat "$work/$1.transcript" 2>/dev/null)"
	fi
}

IMAP_GREETING='send * OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=LOGIN] Gimap ready for requests from 127.0.0.1 x1mb2345678qkb'
SMTP_EHLO='expect EHLO
send 250-smtp.fake.test Hello [127.0.0.1]\r\n250-SIZE 157286400\r\n250-PIPELINING\r\n250-AUTH SCRAM-SHA-256 PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8'
M365_TENANT='535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [SN4PR0501CA0057.namprd05.prod.outlook.com 2026-12-05T07:12:31.417Z 08DD1A2B3C4D5E6F]'
M365_MEANING='Microsoft 365: SMTP AUTH (Basic) is disabled for the whole tenant'
GOOGLE_ALERT='Application-specific password required: https://support.google.com/accounts/answer/185833 (Failure)'

# --- 1. Microsoft 365, SMTP AUTH off for the tenant: policy, no PLAIN after SCRAM ---------
start_fake m365 "tls
send 220 SN4PR0501CA0057.outlook.office365.com Microsoft ESMTP MAIL Service ready
$SMTP_EHLO
expect AUTH SCRAM-SHA-256 
send $M365_TENANT
expect QUIT"
service m365 <<EOF
server m365 { protocol = smtp host = "127.0.0.1" port = $PORT_m365 tls = implicit }
EOF
expect_pam policy-m365 alice "$PW" "$MA_PAM_AUTHINFO_UNAVAIL" \
	"Microsoft 365 tenant without SMTP AUTH: PAM_AUTHINFO_UNAVAIL, not AUTH_ERR"
has "M365: the log says result=policy" "$MA_PAM_OUT" "result=policy"
has "M365: the log names the row and its meaning" "$MA_PAM_OUT" \
	"code=m365-smtp-auth-disabled-tenant meaning=\"$M365_MEANING\""
has "M365: the log gives Microsoft's remedy" "$MA_PAM_OUT" \
	'remedy="a Microsoft 365 admin enables SMTP AUTH for the mailbox (Set-CASMailbox -Identity USER -SmtpClientAuthenticationDisabled $false)'
has "M365: the user is told what it means (PAM_ERROR_MSG)" "$(conversation)" "$M365_MEANING"
fake_ok m365 "M365: no AUTH PLAIN after the policy refusal of SCRAM (the next command was QUIT)"

# --- 2. the same through `mailauth login`: exit 5, meaning and remedy -------------------
start_fake m365b "tls
send 220 SN4PR0501CA0057.outlook.office365.com Microsoft ESMTP MAIL Service ready
$SMTP_EHLO
expect AUTH SCRAM-SHA-256 
send $M365_TENANT
expect QUIT"
service m365b <<EOF
server m365 { protocol = smtp host = "127.0.0.1" port = $PORT_m365b tls = implicit }
EOF
set +e
out=$(printf '%s\n' "$PW" | "$MA_TOOL" login -c "$work/m365b.conf" alice 2>&1)
rc=$?
set -e
if [ $rc -eq 5 ]; then ok "mailauth login: exit 5 for a policy refusal"; else not_ok "mailauth login: exit 5 for a policy refusal" "exit $rc" "$out"; fi
has "mailauth login: prints the meaning" "$out" "meaning: $M365_MEANING"
has "mailauth login: prints the remedy" "$out" "remedy: a Microsoft 365 admin enables SMTP AUTH"
hasnt "mailauth login: no password in the output" "$out" "$PW"
fake_ok m365b "mailauth login: the fake saw the exchange it expected"

# --- 3. a policy refusal never moves on to the next server -------------------------------
start_fake m365c "tls
send 220 fake ESMTP
$SMTP_EHLO
expect AUTH SCRAM-SHA-256 
send 550 5.7.30 Basic authentication is not supported for Client Submission. [CH2PR14CA0012.namprd14.prod.outlook.com 2026-12-05T07:12:31.417Z 08DD1A2B3C4D5E6F]
expect QUIT"
start_fake spare "tls
send * OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready
expect a1 AUTHENTICATE PLAIN
send a1 OK Logged in" --idle 3
service m365c <<EOF
server m365 { protocol = smtp host = "127.0.0.1" port = $PORT_m365c tls = implicit }
server spare { protocol = imap host = "127.0.0.1" port = $PORT_spare tls = implicit }
EOF
expect_pam policy-m365c alice "$PW" "$MA_PAM_AUTHINFO_UNAVAIL" \
	"550 5.7.30 (Basic auth retired for Client Submission): PAM_AUTHINFO_UNAVAIL"
has "550 5.7.30: code=m365-smtp-basic-retired" "$MA_PAM_OUT" "code=m365-smtp-basic-retired"
hasnt "550 5.7.30: the second server is not asked" "$MA_PAM_OUT" "server=spare"
fake_ok m365c "550 5.7.30: no other mechanism after the refusal"
kill "$PID_spare" 2>/dev/null || true
wait "$PID_spare" 2>/dev/null || true
if grep -q 'AUTHENTICATE' "$work/spare.transcript" 2>/dev/null; then
	not_ok "550 5.7.30: the spare server saw no login" "$(cat "$work/spare.transcript")"
else
	ok "550 5.7.30: the spare server saw no login"
fi

# --- 4. Google SMTP, multi-line 534 5.7.9: policy with Google's remedy ------------------
start_fake gsmtp "tls
send 220 smtp.gmail.com ESMTP a640c23a62f3a-a9a0f2cd1e5sm412345466b.45 - gsmtp
expect EHLO
send 250-smtp.gmail.com at your service, [127.0.0.1]\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8
expect= AUTH PLAIN {PLAIN}
send 534-5.7.9 Application-specific password required. For more information, go to\r\n534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor 6a1803df08f44-8ffd82ea9casm7101606d6.42 - gsmtp
expect QUIT"
service gsmtp <<EOF
server gmail { protocol = smtp host = "127.0.0.1" port = $PORT_gsmtp tls = implicit }
EOF
expect_pam policy-gsmtp alice "$PW" "$MA_PAM_AUTHINFO_UNAVAIL" \
	"Gmail SMTP 534 5.7.9 app password required: PAM_AUTHINFO_UNAVAIL"
has "Gmail SMTP: code=google-smtp-app-password" "$MA_PAM_OUT" "code=google-smtp-app-password"
has "Gmail SMTP: Google's remedy (app passwords)" "$MA_PAM_OUT" "myaccount.google.com/apppasswords"
has "Gmail SMTP: the joined two-line text is in the reason" "$MA_PAM_OUT" \
	"534 5.7.9 Application-specific password required. For more information, go to https://support.google.com/mail/?p=InvalidSecondFactor"
fake_ok gsmtp "Gmail SMTP: no AUTH LOGIN after the policy refusal of PLAIN"

# --- 5. Google IMAP [ALERT]: policy, the alert reaches the user -------------------------
start_fake gimap "tls
$IMAP_GREETING
expect= a1 AUTHENTICATE PLAIN {PLAIN}
send a1 NO [ALERT] $GOOGLE_ALERT
expect a2 LOGOUT"
service gimap <<EOF
server gmail { protocol = imap host = "127.0.0.1" port = $PORT_gimap tls = implicit }
EOF
expect_pam policy-gimap alice "$PW" "$MA_PAM_AUTHINFO_UNAVAIL" \
	"Gmail IMAP [ALERT] app password required: PAM_AUTHINFO_UNAVAIL"
has "Gmail IMAP: the ALERT text reaches the user (PAM_ERROR_MSG)" "$(conversation)" "$GOOGLE_ALERT"
has "Gmail IMAP: code=google-imap-app-password in the log" "$MA_PAM_OUT" "code=google-imap-app-password"
has "Gmail IMAP: alert=\"...\" in the log" "$MA_PAM_OUT" "alert=\"$GOOGLE_ALERT\""
fake_ok gimap "Gmail IMAP: no AUTHENTICATE LOGIN after the policy refusal (next was LOGOUT)"

# --- 6. the same under PAM_SILENT: no conversation --------------------------------------
start_fake gsilent "tls
$IMAP_GREETING
expect= a1 AUTHENTICATE PLAIN {PLAIN}
send a1 NO [ALERT] $GOOGLE_ALERT
expect a2 LOGOUT"
service gsilent <<EOF
server gmail { protocol = imap host = "127.0.0.1" port = $PORT_gsilent tls = implicit }
EOF
ma_pamtester policy-gsilent alice "$PW" 'authenticate(PAM_SILENT)'
has "PAM_SILENT: still PAM_AUTHINFO_UNAVAIL" "$MA_PAM_OUT" "$MA_PAM_AUTHINFO_UNAVAIL"
hasnt "PAM_SILENT: the ALERT is not shown" "$(conversation)" "Application-specific"
hasnt "PAM_SILENT: the meaning is not shown" "$(conversation)" "app password"
fake_ok gsilent "PAM_SILENT: the fake saw the exchange it expected"

# --- 7. an [ALERT] with a successful login: PAM_TEXT_INFO ------------------------------
start_fake okalert "tls
$IMAP_GREETING
expect= a1 AUTHENTICATE PLAIN {PLAIN}
send a1 OK [ALERT] Your password expires in 3 days: change it at https://mail.example.test/pw
expect a2 LOGOUT"
service okalert <<EOF
server mail { protocol = imap host = "127.0.0.1" port = $PORT_okalert tls = implicit }
EOF
expect_pam policy-okalert alice "$PW" "$MA_PAM_SUCCESS" "OK [ALERT]: success"
has "OK [ALERT]: the text reaches the user (PAM_TEXT_INFO)" "$(conversation)" \
	"Your password expires in 3 days: change it at https://mail.example.test/pw"
fake_ok okalert "OK [ALERT]: the fake saw the exchange it expected"

# --- 8. a hostile [ALERT]: escaped, at most 200 bytes; a code-less NO is a rejection ------
long=$(printf 'A%.0s' $(seq 300))
start_fake evil "tls
$IMAP_GREETING
expect= a1 AUTHENTICATE PLAIN {PLAIN}
send a1 NO [ALERT] \\x1b]0;owned\\x07\\x1b[2Jclear $long
expect a2 LOGOUT"
service evil <<EOF
server mail { protocol = imap host = "127.0.0.1" port = $PORT_evil tls = implicit }
EOF
expect_pam policy-evil alice "$PW" "$MA_PAM_AUTH_ERR" \
	"NO [ALERT] with another text: still a rejection (PAM_AUTH_ERR)"
conv=$(conversation)
hasnt "hostile ALERT: no raw ESC byte reaches the terminal" "$conv" $'\x1b'
hasnt "hostile ALERT: no raw BEL byte reaches the terminal" "$conv" $'\x07'
has "hostile ALERT: shown escaped" "$conv" '\x1b]0;owned\x07\x1b[2Jclear AAAA'
line=$(printf '%s\n' "$conv" | grep -F 'owned' | head -n 1)
if [ -n "$line" ] && [ ${#line} -le 200 ]; then
	ok "hostile ALERT: at most 200 bytes shown (${#line})"
else
	not_ok "hostile ALERT: at most 200 bytes shown" "length ${#line}: $line"
fi
fake_ok evil "hostile ALERT: the fake saw the exchange it expected"

# --- 9. tls = none on loopback: the ALERT is not shown (SPEC 2), the meaning is ---------
start_fake plain "$IMAP_GREETING
expect= a1 AUTHENTICATE PLAIN {PLAIN}
send a1 NO [ALERT] $GOOGLE_ALERT
expect a2 LOGOUT" --plain-auth-ok
service plain <<EOF
server gmail { protocol = imap host = "127.0.0.1" port = $PORT_plain tls = none }
EOF
expect_pam policy-plain alice "$PW" "$MA_PAM_AUTHINFO_UNAVAIL" \
	"tls = none: the Google reply is still a policy refusal"
hasnt "tls = none: the server's ALERT text does not reach the user" "$(conversation)" \
	"support.google.com/accounts/answer/185833"
has "tls = none: our own meaning does" "$(conversation)" "Google accepts only an app password"
hasnt "tls = none: no alert= in the log either" "$MA_PAM_OUT" "alert=\""
fake_ok plain "tls = none: the fake saw the exchange it expected"

# --- 10. temporary codes move to the next server ---------------------------------------
start_fake t1 "tls
$IMAP_GREETING
expect= a1 AUTHENTICATE PLAIN {PLAIN}
send a1 NO [UNAVAILABLE] Temporary authentication failure. [mail:2026-12-05 07:00:00]"
start_fake t2 "tls
send 220 fake ESMTP
$SMTP_EHLO
expect AUTH SCRAM-SHA-256 
send 454 4.7.0 Temporary authentication failure"
start_fake t3 "tls
$IMAP_GREETING
expect= a1 AUTHENTICATE PLAIN {PLAIN}
send a1 OK Logged in
expect a2 LOGOUT"
service temp <<EOF
server first { protocol = imap host = "127.0.0.1" port = $PORT_t1 tls = implicit }
server second { protocol = smtp host = "127.0.0.1" port = $PORT_t2 tls = implicit }
server third { protocol = imap host = "127.0.0.1" port = $PORT_t3 tls = implicit }
EOF
expect_pam policy-temp alice "$PW" "$MA_PAM_SUCCESS" \
	"[UNAVAILABLE] then 454 4.7.0: the third server is asked and accepts"
has "temporary: first server unavailable, imap-unavailable" "$MA_PAM_OUT" \
	"code=imap-unavailable"
has "temporary: second server unavailable, 454 4.7.0" "$MA_PAM_OUT" \
	"code=smtp-temporary-auth-failure"
has "temporary: the third server accepted" "$MA_PAM_OUT" "server=third"
fake_ok t1 "temporary: first fake saw what it expected"
fake_ok t2 "temporary: second fake saw no second AUTH after 454"
fake_ok t3 "temporary: third fake saw what it expected"

# --- 11. "too weak" for every mechanism is policy; 432 then PLAIN works -----------------
start_fake weak "tls
send 220 fake ESMTP
expect EHLO
send 250-fake\r\n250 AUTH SCRAM-SHA-256 PLAIN
expect AUTH SCRAM-SHA-256 
send 534 5.7.9 Authentication mechanism is too weak
expect= AUTH PLAIN {PLAIN}
send 534 5.7.9 Authentication mechanism is too weak
expect QUIT"
service weak <<EOF
server weak { protocol = smtp host = "127.0.0.1" port = $PORT_weak tls = implicit }
EOF
expect_pam policy-weak alice "$PW" "$MA_PAM_AUTHINFO_UNAVAIL" \
	"534 5.7.9 to every mechanism: policy (PAM_AUTHINFO_UNAVAIL)"
has "too weak: result=policy, smtp-mechanism-too-weak" "$MA_PAM_OUT" \
	"result=policy"
fake_ok weak "too weak: SCRAM, then PLAIN, then QUIT"

start_fake transition "tls
send 220 fake ESMTP
expect EHLO
send 250-fake\r\n250 AUTH SCRAM-SHA-256 PLAIN
expect AUTH SCRAM-SHA-256 
send 432 4.7.12 A password transition is needed
expect= AUTH PLAIN {PLAIN}
send 235 2.7.0 Authentication successful
expect QUIT"
service transition <<EOF
server t { protocol = smtp host = "127.0.0.1" port = $PORT_transition tls = implicit }
EOF
expect_pam policy-transition alice "$PW" "$MA_PAM_SUCCESS" \
	"432 4.7.12 password transition: PLAIN next, accepted"
hasnt "432 then success: no meaning logged" "$MA_PAM_OUT" "meaning="
fake_ok transition "432: SCRAM, then PLAIN, then QUIT"

# --- 12. through the broker (mailauthd): exit 5, the message, no negative cache, the
# throttle counts it, the offline verifier is dropped and never answers after it ------
bdir=$work/broker
bsock=$bdir/socket
blog=$work/mailauthd.log
mkdir -p "$bdir/state"
chmod 700 "$bdir" "$bdir/state"
bpid=
# broker_conf PORT: one SMTP server on PORT; negative cache on, throttle at 3 failures.
broker_conf() {
	ma_write_config "$bdir/broker.conf" <<EOF
timeout = 5
ca_file = "$MA_CERTS/ca.pem"
helo_name = "client.test"
negative_ttl = 600
max_failures = 3
failure_window = 600
offline_ttl = 3600
state_dir = "$bdir/state"
server m365 { protocol = smtp host = "127.0.0.1" port = $1 tls = implicit }
EOF
}
broker_up() {
	local n=50
	"$MA_ROOT/mailauthd" -f -c "$bdir/broker.conf" -s "$bsock" 2>>"$blog" &
	bpid=$!
	pids+=("$bpid")
	while [ $n -gt 0 ] && [ ! -S "$bsock" ]; do sleep 0.1; n=$((n - 1)); done
	[ -S "$bsock" ]
}
# login_b: `mailauth login -b` as alice; sets out and rc.
login_b() {
	set +e
	out=$(printf '%s\n' "$PW" | "$MA_TOOL" login -b "$bsock" alice 2>&1)
	rc=$?
	set -e
}
SMTP_OK="tls
send 220 fake ESMTP
expect EHLO
send 250-fake\r\n250 AUTH PLAIN
expect= AUTH PLAIN {PLAIN}
send 235 2.7.0 Authentication successful
expect QUIT"
SMTP_M365="tls
send 220 SN4PR0501CA0057.outlook.office365.com Microsoft ESMTP MAIL Service ready
expect EHLO
send 250-fake\r\n250 AUTH PLAIN
expect= AUTH PLAIN {PLAIN}
send $M365_TENANT
expect QUIT"

start_fake b1 "$SMTP_OK"
bport=$PORT_b1
broker_conf "$bport"
if broker_up; then ok "broker: mailauthd is up"; else not_ok "broker: mailauthd is up" "$(cat "$blog")"; fi
login_b
if [ $rc -eq 0 ]; then ok "broker: a first login succeeds (an offline verifier is stored)"; else not_ok "broker: a first login succeeds" "exit $rc" "$out"; fi
fake_ok b1 "broker: first fake saw one PLAIN login"
sleep 1    # the verifier is computed after the answer (ma_serve_remember)

start_fake b2 "$SMTP_M365" --port "$bport"
login_b
if [ $rc -eq 5 ]; then ok "broker: mailauth login -b exits 5 for the Microsoft 365 refusal"; else not_ok "broker: mailauth login -b exits 5 for the Microsoft 365 refusal" "exit $rc" "$out"; fi
has "broker: mailauth login -b prints the meaning" "$out" "meaning: $M365_MEANING"
has "broker: mailauth login -b prints the remedy" "$out" "remedy: a Microsoft 365 admin enables SMTP AUTH"
has "broker: source network" "$out" "source network"
fake_ok b2 "broker: the fake sent the refusal"

# The same password again: not negative-cached, the server is asked again (and this
# time through PAM: the broker's message reaches the conversation).
start_fake b3 "$SMTP_M365" --port "$bport"
{
	printf 'auth required %s broker=%s\n' "$MA_MODULE" "$bsock"
	printf 'account required %s broker=%s\n' "$MA_MODULE" "$bsock"
} >"$(ma_pam_dir)/policy-broker"
expect_pam policy-broker alice "$PW" "$MA_PAM_AUTHINFO_UNAVAIL" \
	"broker: through PAM, the policy refusal is PAM_AUTHINFO_UNAVAIL"
has "broker: through PAM, the meaning reaches the user (TAG_MESSAGE)" "$(conversation)" "$M365_MEANING"
has "broker: the module logs the message" "$MA_PAM_OUT" "message=\"$M365_MEANING\""
fake_ok b3 "broker: a policy refusal is not negative-cached (the server was asked again)"

# Every server down now.  The refusal dropped the verifier stored by the first login:
# no ok-offline for a user the server refuses by policy.
login_b
if [ $rc -eq 2 ] && [[ $out != *offline* ]]; then
	ok "broker: server down after a policy refusal: unavailable, not answered offline"
else
	not_ok "broker: server down after a policy refusal: unavailable, not answered offline" "exit $rc" "$out"
fi

# Two policy refusals so far count as two failures: one more makes max_failures (3),
# then the throttle answers without asking the server.
start_fake b4 "$SMTP_M365" --port "$bport"
login_b
if [ $rc -eq 5 ]; then ok "broker: a third policy refusal"; else not_ok "broker: a third policy refusal" "exit $rc" "$out"; fi
fake_ok b4 "broker: the fake sent the third refusal"
login_b
has "broker: after three policy refusals the throttle answers" "$out" "source throttle"
[ -z "$bpid" ] || kill -TERM "$bpid" 2>/dev/null || true

ma_done
