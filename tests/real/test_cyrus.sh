#!/bin/bash
# tests/real/test_cyrus.sh - SCRAM against a real Cyrus IMAP 3.6 (Debian 12) on TLS 1.3,
# the server that binds tls-unique even on TLS 1.3 (Cyrus SASL 2.1.28) and refuses
# tls-exporter with a bare "NO bad protocol / cancel" (issue 13).
#
# Debian's cyrus-imapd conflicts with dovecot-imapd, so it is never installed: its
# packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x` into
# $MA_CYRUS_CACHE (default /var/cache/pam-mailauth-test/cyrus-3.6), reused when
# present, and run from there with LD_LIBRARY_PATH.  A failed fetch is a "not ok",
# never a skip.  The private instance: cyrmaster as root with cyrus_user = nobody, one
# imaps service on 127.0.0.1:(base + 57), TLS 1.3 only, the suite's test certificate,
# a sasldb with user carol (SCRAM-SHA-256(-PLUS) and PLAIN), failedloginpause 0.
# Cyrus logs only through syslog: tests/harness/logshim.so (LD_PRELOAD) writes its
# lines to a file, so every failed authentication Cyrus saw ("badlogin:") is counted
# there, and the module's own debug log (mailauth login -d) is counted too.
#
# Needs root (apt-get, a server dropping to nobody) and the network the first time.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"

base=${MA_TEST_BASEPORT:-20143}
port=$((base + 57))
cache=${MA_CYRUS_CACHE:-/var/cache/pam-mailauth-test/cyrus-3.6}
pkgs=(cyrus-common cyrus-imapd libxapian30 libical3 sasl2-bin)
work=$MA_TMP/test_cyrus
shim=$MA_ROOT/tests/harness/logshim.so
user=carol
pw=$MA_PW_CAROL

rm -rf "$work"
mkdir -p "$work"

bail() { # bail DESC [DETAIL...]: a "not ok" that makes the rest meaningless
	not_ok "$@"
	ma_done || true
	exit 1
}

[ "$(id -u)" -eq 0 ] || bail "runs as root (apt-get download, Cyrus dropping to nobody)"
for f in "$MA_TOOL" "$MA_MODULE" "$shim"; do
	[ -e "$f" ] || bail "$f is built (make test-programs)"
done
"$MA_ROOT/tests/lib/certs.sh" "$MA_CERTS"

# --- Cyrus binaries: fetched once, reused --------------------------------------------

cyrus_complete() {
	[ -x "$cache/usr/sbin/cyrmaster" ] && [ -x "$cache/usr/lib/cyrus/bin/imapd" ] &&
		[ -x "$cache/usr/sbin/saslpasswd2" ] && [ -f "$cache/.complete" ]
}

# apt-get download into a fresh directory; an empty or stale package list is
# refreshed (apt-get update, up to three tries) and the download tried again.
download() {
	local dl=$1 try
	(cd "$dl" && apt-get download "${pkgs[@]}") >>"$work/fetch.log" 2>&1 && return 0
	for try in 1 2 3; do
		if apt-get update >>"$work/fetch.log" 2>&1; then
			(cd "$dl" && apt-get download "${pkgs[@]}") >>"$work/fetch.log" 2>&1 && return 0
		fi
		sleep $((try * 2))
	done
	return 1
}

fetch() {
	local dl=$cache.download tmp=$cache.tmp deb
	rm -rf "$dl" "$tmp"
	mkdir -p "$dl" "$tmp"
	chmod 0755 "$dl"          # apt's _apt user writes the files when it can
	download "$dl" || return 1
	for deb in "$dl"/*.deb; do
		dpkg-deb -x "$deb" "$tmp" >>"$work/fetch.log" 2>&1 || return 1
	done
	touch "$tmp/.complete"
	rm -rf "$cache"
	mv "$tmp" "$cache"
	rm -rf "$dl"
}

if cyrus_complete; then
	ok "Cyrus 3.6 binaries reused from $cache"
elif fetch && cyrus_complete; then
	ok "Cyrus 3.6 binaries fetched (apt-get download ${pkgs[*]}) into $cache"
else
	bail "Cyrus 3.6 binaries fetched into $cache" "$(tail -n 20 "$work/fetch.log" 2>/dev/null)"
fi

libs=$cache/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
missing=$(for b in "$cache/usr/sbin/cyrmaster" "$cache/usr/lib/cyrus/bin/imapd" \
	"$cache/usr/sbin/saslpasswd2"; do ldd "$b"; done | grep 'not found' | sort -u || true)
[ -z "$missing" ] || bail "every library Cyrus needs is installed or unpacked" "$missing"
ok "every library Cyrus needs is installed or unpacked"

# --- the private instance ---------------------------------------------------------------

cy=$work/cyrus
mkdir -p "$cy/spool" "$cy/run"
for d in db socket proc log msg user quota sieve lock ptclient sync; do
	mkdir -p "$cy/conf/$d"
done
cp "$MA_CERTS/server.pem" "$MA_CERTS/server.key" "$cy/"
cat >"$cy/imapd.conf" <<EOF
configdirectory: $cy/conf
partition-default: $cy/spool
cyrus_user: nobody
cyrus_group: nogroup
servername: localhost
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: $cy/sasldb2
sasl_mech_list: SCRAM-SHA-256 PLAIN
tls_server_cert: $cy/server.pem
tls_server_key: $cy/server.key
tls_versions: tls1_3
failedloginpause: 0
master_pid_file: $cy/run/master.pid
lmtpsocket: $cy/run/lmtp
idlesocket: $cy/run/idle
notifysocket: $cy/run/notify
syslog_prefix: ma-cyrus
EOF
cat >"$cy/cyrus.conf" <<EOF
START {
}
SERVICES {
  imaps cmd="$cache/usr/lib/cyrus/bin/imapd -s -C $cy/imapd.conf" listen="127.0.0.1:$port" prefork=0
}
EVENTS {
}
DAEMON {
}
EOF
# sasldb: the realm is the servername (imapd passes no user realm).
printf '%s' "$pw" | "$cache/usr/sbin/saslpasswd2" -f "$cy/sasldb2" -u localhost -c -p "$user"
: >"$cy/syslog"
chmod 0666 "$cy/syslog"
chown -R nobody:nogroup "$cy"
if ! setpriv --reuid=nobody --regid=nogroup --clear-groups test -r "$cy/imapd.conf"; then
	bail "nobody can reach $cy (every directory above it must be searchable)"
fi

master_pid=
stop_cyrus() {
	[ -n "$master_pid" ] || return 0
	kill "$master_pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$master_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$master_pid" 2>/dev/null || true
	master_pid=
}
trap stop_cyrus EXIT

if ma_port_listening 127.0.0.1 "$port"; then
	bail "port $port (base + 57) is free for Cyrus"
fi
MA_SYSLOG_FILE=$cy/syslog LD_PRELOAD=$shim \
	"$cache/usr/sbin/cyrmaster" -C "$cy/imapd.conf" -M "$cy/cyrus.conf" -D \
	-p "$cy/run/master.pid" >"$cy/master.out" 2>&1 &
master_pid=$!
if ! ma_wait_port 127.0.0.1 "$port" 100; then
	bail "Cyrus master listens on 127.0.0.1:$port" "$(cat "$cy/master.out")" "$(tail -n 20 "$cy/syslog")"
fi
ok "Cyrus master listens on 127.0.0.1:$port (as nobody)"

# conf NAME [SERVER LINES...]: a configuration for this Cyrus.
conf() {
	local name=$1
	shift
	{
		printf 'timeout = 10\nca_file = "%s/ca.pem"\n' "$MA_CERTS"
		[ "$name" != nofallback ] || printf 'mechanism_fallback = no\n'
		printf 'server cyrus {\n  host = "127.0.0.1"\n  port = %s\n  verify_name = "localhost"\n' "$port"
		[ $# -eq 0 ] || printf '  %s\n' "$@"
		printf '}\n'
	} | ma_write_config "$work/$name.conf"
}
conf auto
conf unique "channel_binding = tls-unique"
conf none "channel_binding = none"
conf nofallback "channel_binding = tls-unique"

# login NAME PASSWORD: mailauth login -d; sets OUT (stdout+stderr), RC, AUTHS (AUTHENTICATE
# commands sent), NOS (tagged NO replies) and BAD (Cyrus's badlogin lines meanwhile).
login() {
	local name=$1 password=$2 mark
	mark=$(stat -c %s "$cy/syslog")
	set +e
	OUT=$(printf '%s\n' "$password" | timeout 30 "$MA_TOOL" login -d -c "$work/$name.conf" "$user" 2>&1)
	RC=$?
	set -e
	printf '%s\n' "$OUT" >>"$work/module.log"
	sleep 0.3     # the service process writes its last lines after our LOGOUT
	NEWLOG=$(tail -c +$((mark + 1)) "$cy/syslog")
	AUTHS=$(printf '%s\n' "$OUT" | grep -c 'C: a[0-9]* AUTHENTICATE ' || true)
	NOS=$(printf '%s\n' "$OUT" | grep -cE 'S: a[0-9]+ NO ' || true)
	BAD=$(printf '%s\n' "$NEWLOG" | grep -c 'badlogin:' || true)
}

expect_login() { # DESC RC MECH AUTHS NOS BAD
	local desc=$1
	if [ "$RC" -eq "$2" ] && [[ $OUT == *"mechanism=$3 "* ]] && [ "$AUTHS" -eq "$4" ] &&
		[ "$NOS" -eq "$5" ] && [ "$BAD" -eq "$6" ]; then
		ok "$desc"
	else
		not_ok "$desc" "want exit $2, mechanism $3, $4 AUTHENTICATE, $5 NO, $6 badlogin;" \
			"got exit $RC, $AUTHS AUTHENTICATE, $NOS NO, $BAD badlogin" "$OUT" "--- cyrus:" "$NEWLOG"
	fi
}

# --- what Cyrus offers --------------------------------------------------------------------

set +e
probe=$("$MA_TOOL" probe -c "$work/auto.conf" 2>&1)
set -e
if [[ $probe == *"TLSv1.3"* ]] && [[ $probe == *"AUTH=SCRAM-SHA-256-PLUS"* ]]; then
	ok "Cyrus advertises SCRAM-SHA-256-PLUS on TLS 1.3"
else
	not_ok "Cyrus advertises SCRAM-SHA-256-PLUS on TLS 1.3" "$probe"
fi

# --- the done-when of issue 13: SCRAM, no failed authentication ---------------------------

login unique "$pw"
expect_login "channel_binding = tls-unique: SCRAM-SHA-256-PLUS on TLS 1.3, first time, no failed AUTHENTICATE" \
	0 SCRAM-SHA-256-PLUS 1 0 0
if printf '%s\n' "$NEWLOG" | grep -q "login: .* $user SCRAM-SHA-256-PLUS+TLS User logged in"; then
	ok "Cyrus logged the login as SCRAM-SHA-256-PLUS (it verified our tls-unique binding)"
else
	not_ok "Cyrus logged the login as SCRAM-SHA-256-PLUS (it verified our tls-unique binding)" "$NEWLOG"
fi

# auto: tls-exporter first (RFC 9266), refused with a bare NO, then the one unbound retry:
# SCRAM (never PLAIN), at the cost of exactly one failed authentication.
login auto "$pw"
expect_login "channel_binding = auto: tls-exporter refused with a bare NO, SCRAM-SHA-256 without -PLUS, one failed AUTHENTICATE" \
	0 SCRAM-SHA-256 2 1 1
if printf '%s\n' "$NEWLOG" | grep -q 'Expected: tls-unique, received: tls-exporter' &&
	[[ $OUT == *"retrying once with SCRAM-SHA-256 without channel binding"* ]] &&
	[[ $OUT != *"AUTHENTICATE PLAIN"* ]] &&
	[[ $OUT == *"set channel_binding = tls-unique for it"* ]]; then
	ok "auto: Cyrus refused the binding type (not the password), the retry is logged, no PLAIN, the log says to set channel_binding = tls-unique"
else
	not_ok "auto: Cyrus refused the binding type (not the password), the retry is logged, no PLAIN, the log says to set channel_binding = tls-unique" \
		"$OUT" "--- cyrus:" "$NEWLOG"
fi

login none "$pw"
expect_login "channel_binding = none: SCRAM-SHA-256 with GS2 flag n, no failed AUTHENTICATE" \
	0 SCRAM-SHA-256 1 0 0

# --- wrong passwords: refused, and what they cost ----------------------------------------

login unique "$pw-wrong"
expect_login "wrong password (tls-unique, mechanism_fallback = yes): rejected after -PLUS, SCRAM, PLAIN (3 failed AUTHENTICATE, as documented)" \
	1 PLAIN 3 3 3
login nofallback "$pw-wrong"
expect_login "wrong password (tls-unique, mechanism_fallback = no): rejected after -PLUS and SCRAM (2 failed)" \
	1 SCRAM-SHA-256 2 2 2
if grep -qF -- "$pw" "$cy/syslog" "$work/module.log"; then
	not_ok "the password is in no log (module debug log, Cyrus's log)"
else
	ok "the password is in no log (module debug log, Cyrus's log)"
fi

# --- through PAM ------------------------------------------------------------------------

ma_pam_service cyrus-unique "$work/unique.conf"
ma_pam_service cyrus-auto "$work/auto.conf"
expect_pam cyrus-unique "$user" "$pw" "$MA_PAM_SUCCESS" "PAM, tls-unique: $user accepted by Cyrus"
expect_pam cyrus-auto "$user" "$pw" "$MA_PAM_SUCCESS" "PAM, auto: $user accepted by Cyrus (unbound retry)"
expect_pam cyrus-unique "$user" "$pw-wrong" "$MA_PAM_AUTH_ERR" "PAM, tls-unique: wrong password refused"

stop_cyrus
trap - EXIT
ma_done
