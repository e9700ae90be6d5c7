#!/bin/bash
# tests/real/test_hints.sh - every misconfiguration says what is wrong and what to
# change (issue [T2 3/3]), against the suite's real Dovecot, through `mailauth login`,
# `mailauth probe` and the PAM module (pam_wrapper + pamtester; the module's log line
# is printed by pam_wrapper):
#   - tls = implicit on the STARTTLS ports (IMAP and SMTP submission): "port N speaks
#     plaintext first ...: set tls = starttls", within 2 s;
#   - tls = starttls / none on the implicit ports, behind the well-known ports 993 and
#     465 (tests/real/portfwd.py on a loopback address of our own): "no greeting within
#     3 s on port 993 ...: set tls = implicit" after 3 s, not after `timeout`; on the
#     suite's own (unusual) port number, the timeout names implicit TLS;
#   - a CA made here in ca_file: "certificate not trusted ... set ca_file", naming the
#     real issuer;
#   - verify_name that the certificate does not carry: the certificate's SANs and
#     "set verify_name";
#   - a pin of another key: both keys and "update pin";
#   - a TLS record where the greeting should be, a leaf certificate alone from an
#     unknown CA, an expired certificate and a TLS 1.1-only server
#     (tests/fake/fakeserver.py: the real server cannot do these here).
# Every row looks for the explanation itself: without it, the row fails.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"
ma_need_dovecot

work=$MA_TMP/test_hints
rm -rf "$work"
mkdir -p "$work"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}
trap 'cleanup; ma_dovecot_stop >/dev/null 2>&1 || true' EXIT
# ma_need_dovecot's trap is replaced above: stop Dovecot only when we started it.
if [ -n "${MA_TEST_DOVECOT_DIR:-}" ]; then trap cleanup EXIT; fi

for f in "$MA_TOOL" "$MA_MODULE"; do
	if [ ! -x "$f" ] && [ ! -f "$f" ]; then
		not_ok "$f is built (run make first)"
		ma_done
		exit 1
	fi
done

now_ms() { date +%s%3N; }

# conf NAME < body: $work/NAME.conf and a PAM service "hints-NAME" using it.
conf() {
	ma_write_config "$work/$1.conf"
	ma_pam_service "hints-$1" "$work/$1.conf"
}

# login NAME: `mailauth login` as alice; sets out, rc, ms.
login() {
	local t0
	t0=$(now_ms)
	out=$("$MA_TOOL" login -c "$work/$1.conf" alice <<<"$MA_PW_ALICE" 2>&1)
	rc=$?
	ms=$(($(now_ms) - t0))
}

# expect_text DESC TEXT...: every TEXT (fixed strings) is in $out.
expect_text() {
	local desc=$1 t
	shift
	for t in "$@"; do
		if ! grep -Fq -- "$t" <<<"$out"; then
			not_ok "$desc" "missing: $t" "$out"
			return
		fi
	done
	ok "$desc"
}

# expect_fast DESC LIMIT_MS: the last login took less than LIMIT_MS.
expect_fast() {
	if [ "$ms" -lt "$2" ]; then ok "$1 (${ms} ms)"; else not_ok "$1" "took ${ms} ms, limit $2" "$out"; fi
}

# row NAME DESC LIMIT_MS TEXT...: mailauth login (exit 2 = unavailable, the
# explanation, within LIMIT_MS), mailauth probe (the same explanation), and PAM
# (PAM_AUTHINFO_UNAVAIL, the explanation in the module's log line).
row() {
	local name=$1 desc=$2 limit=$3
	shift 3
	login "$name"
	if [ "$rc" -eq 2 ]; then ok "$desc: login fails as unavailable"; else not_ok "$desc: login fails as unavailable" "exit $rc" "$out"; fi
	expect_text "$desc: login says why and what to change" "$@"
	expect_fast "$desc: login answers quickly" "$limit"
	out=$("$MA_TOOL" probe -c "$work/$name.conf" 2>/dev/null)
	expect_text "$desc: probe says why and what to change" "result: " "$@"
	expect_pam "hints-$name" alice "$MA_PW_ALICE" "$MA_PAM_AUTHINFO_UNAVAIL" "$desc: PAM says unavailable"
	out=$MA_PAM_OUT
	expect_text "$desc: the module's log line says why and what to change" "reason=" "$@"
}

imap=$MA_TEST_IMAP_STARTTLS_PORT
imaps=$MA_TEST_IMAPS_PORT
sub=$MA_TEST_SUBMISSION_PORT
subs=$MA_TEST_SUBMISSIONS_PORT

# --- wrong ports -----------------------------------------------------------------

conf implicit-on-imap <<EOF
timeout = 10
ca_file = "$MA_CERTS/ca.pem"
server dovecot { protocol = imap host = "127.0.0.1" port = $imap tls = implicit }
EOF
row implicit-on-imap "tls = implicit on the IMAP STARTTLS port" 2000 \
	"port $imap speaks plaintext first" '(the server greeted with "* OK ' "set tls = starttls"

conf implicit-on-submission <<EOF
timeout = 10
ca_file = "$MA_CERTS/ca.pem"
server dovecot { protocol = smtp host = "127.0.0.1" port = $sub tls = implicit }
EOF
row implicit-on-submission "tls = implicit on the SMTP submission port" 2000 \
	"port $sub speaks plaintext first" '(the server greeted with "220 ' "set tls = starttls"

# The implicit-TLS ports under their well-known numbers: a relay on 127.x.y.9:993 and
# :465 (x.y from our base port, so that parallel suites do not meet) to Dovecot's.
addr=127.$(((imap >> 8) & 255)).$((imap & 255)).9
start_relay() { # start_relay PORT TARGET
	python3 "$here/portfwd.py" "$addr" "$1" "$2" >"$work/relay-$1.out" 2>&1 &
	pids+=($!)
	for _ in $(seq 50); do grep -q ready "$work/relay-$1.out" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
if [ "$(id -u)" != 0 ]; then
	not_ok "relays on the well-known ports 993 and 465 (needs root, as Dovecot does)" "uid $(id -u)"
elif ! start_relay 993 "$imaps" || ! start_relay 465 "$subs"; then
	not_ok "relays on $addr:993 and :465 started" "$(cat "$work"/relay-*.out)"
else
	ok "relays on $addr:993 and :465 to Dovecot's implicit-TLS ports"
	conf starttls-on-993 <<EOF
timeout = 10
ca_file = "$MA_CERTS/ca.pem"
server dovecot { protocol = imap host = "$addr" port = 993 tls = starttls verify_name = "localhost" }
EOF
	row starttls-on-993 "tls = starttls on port 993" 4000 \
		"no greeting within 3 s on port 993, which is normally implicit TLS: set tls = implicit"
	# Not before the 3 s either: the wait is for a greeting, not a guess.
	login starttls-on-993
	if [ "$ms" -ge 2900 ] && [ "$ms" -lt 4000 ]; then
		ok "tls = starttls on port 993: the answer after 3 s, not after timeout = 10 (${ms} ms)"
	else
		not_ok "tls = starttls on port 993: the answer after 3 s, not after timeout = 10" "${ms} ms" "$out"
	fi
	conf none-on-465 <<EOF
timeout = 10
ca_file = "$MA_CERTS/ca.pem"
server dovecot { protocol = smtp host = "$addr" port = 465 tls = none }
EOF
	row none-on-465 "tls = none on port 465" 4000 \
		"no greeting within 3 s on port 465, which is normally implicit TLS: set tls = implicit"
	# Control: the relay works, with the right setting the login succeeds through it.
	conf implicit-on-993 <<EOF
timeout = 10
ca_file = "$MA_CERTS/ca.pem"
server dovecot { protocol = imap host = "$addr" port = 993 tls = implicit verify_name = "localhost" }
EOF
	login implicit-on-993
	if [ "$rc" -eq 0 ]; then ok "control: tls = implicit through the 993 relay logs in"; else not_ok "control: tls = implicit through the 993 relay logs in" "$out"; fi
fi

# On an unusual port number nothing is assumed: the whole timeout, then a message that
# names implicit TLS.
conf starttls-on-imaps <<EOF
timeout = 3
ca_file = "$MA_CERTS/ca.pem"
server dovecot { protocol = imap host = "127.0.0.1" port = $imaps tls = starttls }
EOF
row starttls-on-imaps "tls = starttls on the suite's IMAPS port" 4500 \
	"no greeting within 3 s on port $imaps" "(implicit TLS)" "set tls = implicit"

# --- certificates ----------------------------------------------------------------

# A CA of our own, which did not issue Dovecot's certificate.
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
	-subj "/CN=hints test other CA" -keyout "$work/otherca.key" -out "$work/otherca.pem" \
	>"$work/otherca.log" 2>&1; then
	not_ok "a second CA is made" "$(cat "$work/otherca.log")"
fi
conf wrong-ca <<EOF
timeout = 10
ca_file = "$work/otherca.pem"
server dovecot { protocol = imap host = "127.0.0.1" port = $imaps tls = implicit }
EOF
row wrong-ca "ca_file with another CA" 2000 \
	"certificate not trusted" "pam_mailauth test CA" "not in ca_file $work/otherca.pem" \
	"set ca_file to"

conf wrong-name <<EOF
timeout = 10
ca_file = "$MA_CERTS/ca.pem"
server dovecot { protocol = imap host = "127.0.0.1" port = $imaps tls = implicit verify_name = "mail.example.org" }
EOF
row wrong-name "verify_name the certificate does not carry" 2000 \
	'certificate name mismatch: the certificate is for DNS:localhost, IP:127.0.0.1, IP:::1, not for "mail.example.org": set verify_name to one of them'

conf wrong-pin <<EOF
timeout = 10
ca_file = "$MA_CERTS/ca.pem"
server dovecot { protocol = smtp host = "127.0.0.1" port = $subs tls = implicit pin = {"sha256//$(cat "$MA_CERTS/other.spki")"} }
EOF
row wrong-pin "a pin of another key" 2000 \
	"pin mismatch: the server's key is sha256//$(cat "$MA_CERTS/server.spki")" \
	"the configuration pins sha256//$(cat "$MA_CERTS/other.spki")" "update pin"

# Control: the same server with the right settings logs in (the rows above failed for
# the reason they name, not because Dovecot was away).
conf right <<EOF
timeout = 10
ca_file = "$MA_CERTS/ca.pem"
server dovecot { protocol = imap host = "127.0.0.1" port = $imaps tls = implicit pin = {"sha256//$(cat "$MA_CERTS/server.spki")"} }
EOF
login right
if [ "$rc" -eq 0 ]; then ok "control: the right ca_file, name and pin log in"; else not_ok "control: the right ca_file, name and pin log in" "$out"; fi

# What the real server cannot do here: an expired certificate, an old TLS version.
# fakeserver.py serves one connection: one for the tool, one for PAM.
fake() { # fake NAME ARGS...: a fake IMAPS server; its configuration NAME
	local name=$1 port
	shift
	python3 "$MA_ROOT/tests/fake/fakeserver.py" --certs "$MA_CERTS" --scenario good_implicit \
		--password "$MA_PW_ALICE" --hard-timeout 15 --idle 5 "$@" \
		>"$work/$name.port" 2>"$work/$name.log" &
	pids+=($!)
	for _ in $(seq 50); do [ -s "$work/$name.port" ] && break; sleep 0.1; done
	port=$(head -n 1 "$work/$name.port")
	conf "$name" <<EOF
timeout = 10
ca_file = "$MA_CERTS/ca.pem"
server fake { protocol = imap host = "127.0.0.1" port = ${port:-1} tls = implicit }
EOF
}
# A server that speaks TLS first where the greeting should be (a TLS alert record).
fake tls-first --scenario tls_alert_first
sed -i 's/tls = implicit/tls = starttls/' "$work/tls-first.conf"
login tls-first
expect_text "a TLS record instead of the greeting: login names the port as implicit TLS" \
	"answered with a TLS alert where a plaintext greeting was expected: it expects TLS at once, set tls = implicit"
expect_fast "a TLS record instead of the greeting: login answers quickly" 2000
fake tls-first-pam --scenario tls_alert_first
sed -i 's/tls = implicit/tls = starttls/' "$work/tls-first-pam.conf"
expect_pam hints-tls-first-pam alice "$MA_PW_ALICE" "$MA_PAM_AUTHINFO_UNAVAIL" \
	"a TLS record instead of the greeting: PAM says unavailable"
out=$MA_PAM_OUT
expect_text "a TLS record instead of the greeting: the module's log line says so" \
	"reason=port " "answered with a TLS alert" "set tls = implicit"

# A leaf alone from a CA we do not trust (the usual case: a private CA's server
# certificate): the issuer is named.
fake leafonly --cert unknownca --leaf-only
login leafonly
expect_text "leaf from an unknown CA, no chain: login names the issuer and ca_file" \
	"certificate not trusted: the server's certificate (subject: O=pam_mailauth test unknownca,CN=localhost) was issued by a CA that is not in ca_file $MA_CERTS/ca.pem" \
	"set ca_file to the CA that issued it (issuer: CN=pam_mailauth untrusted CA)"
fake leafonly-pam --cert unknownca --leaf-only
expect_pam hints-leafonly-pam alice "$MA_PW_ALICE" "$MA_PAM_AUTHINFO_UNAVAIL" \
	"leaf from an unknown CA, no chain: PAM says unavailable"
out=$MA_PAM_OUT
expect_text "leaf from an unknown CA, no chain: the module's log line names the issuer" \
	"reason=certificate not trusted" "(issuer: CN=pam_mailauth untrusted CA)"

fake expired --cert expired
login expired
expect_text "expired certificate: login names the dates" \
	"certificate expired: the server's certificate (subject: O=pam_mailauth test expired,CN=localhost)" \
	"valid until 2021-01-01 00:00:00 UTC (from 2020-01-01 00:00:00 UTC)"
expect_fast "expired certificate: login answers quickly" 2000
fake expired-pam --cert expired
expect_pam hints-expired-pam alice "$MA_PW_ALICE" "$MA_PAM_AUTHINFO_UNAVAIL" "expired certificate: PAM says unavailable"
out=$MA_PAM_OUT
expect_text "expired certificate: the module's log line names the dates" "reason=certificate expired" \
	"valid until 2021-01-01 00:00:00 UTC"

fake tls11 --tls-max 1.1
login tls11
expect_text "TLS 1.1-only server: login names the version" "the server offers only TLSv1.1 or older" \
	"enable TLS 1.2 or 1.3"
fake tls11-pam --tls-max 1.1
expect_pam hints-tls11-pam alice "$MA_PW_ALICE" "$MA_PAM_AUTHINFO_UNAVAIL" "TLS 1.1-only server: PAM says unavailable"
out=$MA_PAM_OUT
expect_text "TLS 1.1-only server: the module's log line names the version" \
	"reason=the server offers only TLSv1.1 or older"

ma_done
