#!/bin/bash
# tests/real/test_threads.sh - pam_mailauth.so called from 16 threads of one process at
# once (a web application's use): runs tests/real/test_threads.py, which calls libpam's
# pam_start_confdir() through ctypes with the services written here, against the
# private Dovecot's IMAPS (by name: DNS SAN, SNI) and STARTTLS (by IP literal) ports.
# MA_THREADS and MA_LOGINS (default 16 and 64) are passed through.
#
# Run by tests/run-tests.sh, or on its own (then it starts and stops a Dovecot itself).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"

if [ ! -f "$MA_MODULE" ]; then
	not_ok "$MA_MODULE is built (run make first)"
	ma_done
	exit 1
fi
if ! command -v python3 >/dev/null; then
	not_ok "python3 is installed"
	ma_done
	exit 1
fi

ma_need_dovecot
work=$MA_TMP/test_threads
rm -rf "$work"
mkdir -p "$work/pam.d"

# service NAME PORT TLS HOST: NAME.conf and the PAM service NAME (auth + account) that
# uses it, in the private service directory.
service() {
	local svc=$1 port=$2 tls=$3 host=$4
	ma_write_config "$work/$svc.conf" <<CONF
timeout = 5
ca_file = "$MA_CERTS/ca.pem"
server dovecot {
  protocol = imap
  host = "$host"
  port = $port
  tls = $tls
}
CONF
	printf 'auth required %s config=%s\naccount required %s config=%s\n' \
		"$MA_MODULE" "$work/$svc.conf" "$MA_MODULE" "$work/$svc.conf" >"$work/pam.d/$svc"
}
service threads-imaps "$MA_TEST_IMAPS_PORT" implicit localhost
service threads-starttls "$MA_TEST_IMAP_STARTTLS_PORT" starttls 127.0.0.1
printf 'auth required pam_deny.so\naccount required pam_deny.so\n' >"$work/pam.d/other"

# A sanitizer build (make asan) needs its runtime loaded first; python is not
# instrumented, and leaks of the interpreter are not the module's.
pre=$(ma_preload)
pre=${pre%libpam_wrapper.so}
pre=${pre%:}

env ${pre:+LD_PRELOAD="$pre"} ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" \
	timeout --kill-after=5 90 python3 "$here/test_threads.py" "$work/pam.d" \
	"$MA_TEST_DOVECOT_LOG" "$MA_PW_ALICE" "$MA_PW_BOB" "$MA_PW_CAROL"
rc=$?
case $rc in
0 | 1) ;;
*) echo "not ok - test_threads.py ended with status $rc (crash, signal or timeout)" ;;
esac
exit $rc
