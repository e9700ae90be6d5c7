#!/bin/bash
# tests/demo.sh - show pam_mailauth working end to end (make demo runs it).
#
# 1. installs the Debian packages it needs when they are missing (as root; otherwise
#    it prints the apt-get command), 2. builds (make all), 3. makes a throwaway CA and
#    starts a private Dovecot on loopback with the account demo / demo-password,
# 4. writes a module configuration and a PAM service (pam_wrapper: nothing under /etc
#    is touched), 5. logs in through the real PAM stack (pamtester) over IMAP with the
#    right and a wrong password and over SMTP submission with the right one, printing
#    each outcome and the matching Dovecot log lines, 6. stops Dovecot.
#
# Everything lives in tests/tmp/demo. Ports: MA_DEMO_BASEPORT (default 20243) .. +3.
# Exit status 0 when every outcome is the expected one.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
base=${MA_DEMO_BASEPORT:-20243}

say() { printf '\n== %s\n' "$*"; }

# --- 1. packages -------------------------------------------------------------------

say "checking Debian packages"
"$root/tests/lib/install-deps.sh" demo
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: the private Dovecot has to run as root; run the demo as root" >&2
	exit 1
fi

# --- 2. build --------------------------------------------------------------------------

say "building (make all)"
buildlog=$(mktemp)
if ! make -C "$root" --no-print-directory all >"$buildlog" 2>&1; then
	cat "$buildlog" >&2
	rm -f "$buildlog"
	echo "demo: the build failed" >&2
	exit 1
fi
rm -f "$buildlog"
echo "built $root/pam_mailauth.so"

# --- 3. CA and Dovecot -------------------------------------------------------------------

export MA_TEST_TMP=$root/tests/tmp/demo
export MA_TEST_CERTS=$MA_TEST_TMP/certs
# shellcheck source=lib/common.sh
. "$root/tests/lib/common.sh"
demo=$MA_TMP
dc=$demo/dovecot
if [ -d "$dc" ]; then
	"$root/tests/real/dovecot.sh" stop "$dc" "$base" >/dev/null 2>&1 || true
fi
rm -rf "$demo"
mkdir -p "$demo"

say "test CA and server certificate for localhost ($MA_CERTS)"
"$root/tests/lib/certs.sh" "$MA_CERTS"
openssl x509 -in "$MA_CERTS/server.pem" -noout -subject -issuer -ext subjectAltName | sed 's/^/   /'

say "starting a private Dovecot (IMAPS on $((base + 1)), submission STARTTLS on $((base + 2)))"
trap '"$root/tests/real/dovecot.sh" stop "$dc" "$base" >/dev/null 2>&1 || true' EXIT
"$root/tests/real/dovecot.sh" start "$dc" "$base"
echo "   log: $dc/dovecot.log; account: demo / demo-password"

# --- 4. configuration and PAM service ----------------------------------------------

conf=$demo/pam_mailauth.conf
ma_write_config "$conf" <<EOF
# pam_mailauth demo configuration (mode 0600, owned by root)
timeout = 10
ca_file = "$MA_CERTS/ca.pem"
server imap {
  protocol = imap
  host = "localhost"
  port = $((base + 1))
  tls = implicit
}
EOF
conf_smtp=$demo/pam_mailauth-smtp.conf
ma_write_config "$conf_smtp" <<EOF
timeout = 10
ca_file = "$MA_CERTS/ca.pem"
server submission {
  protocol = smtp
  host = "localhost"
  port = $((base + 2))
  tls = starttls
}
EOF
ma_pam_service mailauth-demo "$conf"
ma_pam_service mailauth-demo-smtp "$conf_smtp"
say "module configuration $conf"
sed 's/^/   /' "$conf"
say "PAM service $(ma_pam_dir)/mailauth-demo (used through pam_wrapper)"
sed 's/^/   /' "$(ma_pam_dir)/mailauth-demo"

# --- 5. logins ---------------------------------------------------------------------------

status=0
log=$dc/dovecot.log

# attempt SERVICE PASSWORD WHAT EXPECTED_TEXT
attempt() {
	local service=$1 password=$2 what=$3 expected=$4 result
	say "$what"
	echo "   \$ echo '$password' | pamtester $service demo authenticate"
	log_mark "$log"
	ma_pamtester "$service" demo "$password"
	result=$(printf '%s\n' "$MA_PAM_OUT" | grep '^pamtester: ' | grep -v 'invoking\|performing' | tail -n 1)
	echo "   $result"
	echo "   module log (pam_syslog):"
	printf '%s\n' "$MA_PAM_OUT" | grep 'SYSLOG' | sed 's/^.*SYSLOG([0-9]*): /     /' || echo "     (none)"
	sleep 0.3
	echo "   Dovecot log:"
	log_since "$log" | grep -E 'imap-login|submission-login|auth: ' | sed 's/^/     /' || echo "     (none)"
	if [[ $result == *"$expected"* ]]; then
		echo "   -> as expected"
	else
		echo "   -> UNEXPECTED: wanted \"$expected\""
		status=1
	fi
}

attempt mailauth-demo demo-password "IMAP, implicit TLS, right password" "$MA_PAM_SUCCESS"
attempt mailauth-demo not-the-password "IMAP, implicit TLS, wrong password" "$MA_PAM_AUTH_ERR"
attempt mailauth-demo-smtp demo-password "SMTP submission, STARTTLS, right password" "$MA_PAM_SUCCESS"

# --- 6. done -----------------------------------------------------------------------------

say "stopping Dovecot"
"$root/tests/real/dovecot.sh" stop "$dc" "$base"
trap - EXIT
if [ $status -eq 0 ]; then
	echo "demo: every outcome was the expected one"
else
	echo "demo: some outcomes were not the expected ones (see above)"
fi
exit $status
