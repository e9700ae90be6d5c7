#!/bin/bash
# tests/real/test_trust.sh - the trust anchors are the configuration's or OpenSSL's
# compiled-in defaults, never the caller's environment (issue "[T2 1/3]", item 1).
#
# The attacker is a local user who runs a setuid PAM application (su) with their own
# environment, or anyone who can set the environment of a non-setuid caller.  The
# "attacker CA" here is the test CA that signed the private Dovecot's certificate:
# whoever can make the module trust it can impersonate the mail server.
#
#  1. controls: with ca_file the login succeeds; with the system store it is refused
#     (the test CA is not in it), so every refusal below is about the environment;
#  2. SSL_CERT_FILE, SSL_CERT_DIR and OPENSSL_CONF (a system_default section with
#     VerifyCAFile, MinProtocol TLSv1 and SECLEVEL 0) in a non-setuid caller (pamtester)
#     do not make the module trust the test CA, nor accept TLS 1.0 or a 1024-bit key;
#  3. the compiled-in default is what is used: in a private mount namespace the test CA
#     is bind-mounted over OpenSSL's default bundle file, and the login succeeds;
#  4. a setuid-root copy of tests/harness/pamlogin, run as nobody with all three
#     variables set, refuses the server; the same helper with ca_file succeeds (it
#     really runs the module setuid).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"

ma_need_dovecot
work=$MA_TMP/test_trust
rm -rf "$work"
mkdir -p "$work"
helper=$MA_ROOT/tests/harness/pamlogin
for f in "$MA_MODULE" "$helper"; do
	if [ ! -x "$f" ] && [ ! -f "$f" ]; then
		not_ok "$f is built (run make test-programs first)"
		ma_done
		exit 1
	fi
done

# config NAME [GLOBAL LINES...]: NAME.conf for Dovecot's IMAPS port by name.
config() {
	local name=$1
	shift
	{
		printf 'timeout = 5\n'
		[ $# -eq 0 ] || printf '%s\n' "$@"
		printf 'server dovecot {\n  host = "localhost"\n  port = %s\n  tls = implicit\n}\n' \
			"$MA_TEST_IMAPS_PORT"
	} | ma_write_config "$work/$name.conf"
	ma_pam_service "trust-$name" "$work/$name.conf"
}
config cafile "ca_file = \"$MA_CERTS/ca.pem\""
config system

# The attacker's material: a CA bundle, a hashed directory, an OpenSSL configuration.
mkdir -p "$work/evil-dir"
cp "$MA_CERTS/ca.pem" "$work/evil-dir/"
openssl rehash "$work/evil-dir" >/dev/null 2>&1 || c_rehash "$work/evil-dir" >/dev/null
cat >"$work/evil-openssl.cnf" <<EOF2
openssl_conf = evil_init
[evil_init]
ssl_conf = evil_ssl
[evil_ssl]
system_default = evil_default
[evil_default]
VerifyCAFile = $MA_CERTS/ca.pem
MinProtocol = TLSv1
CipherString = DEFAULT:@SECLEVEL=0
EOF2
chmod -R go+rX "$work"

# --- 1. controls -------------------------------------------------------------------
expect_pam trust-cafile alice "$MA_PW_ALICE" "$MA_PAM_SUCCESS" \
	"control: ca_file naming the test CA: alice gets in"
expect_pam trust-system alice "$MA_PW_ALICE" "$MA_PAM_AUTHINFO_UNAVAIL" \
	"control: the system store does not hold the test CA"
if printf '%s\n' "$MA_PAM_OUT" | grep -q "certificate not trusted: .*not in the system's CA store"; then
	ok "control: the refusal is a certificate verification failure"
else
	not_ok "control: the refusal is a certificate verification failure" "$MA_PAM_OUT"
fi

# --- 2. the environment of a non-setuid caller ---------------------------------------
# expect_pam_env DESC VAR=VALUE...: pamtester with these variables set (exported for
# the one call, then removed: a subshell would lose the count of results).
expect_pam_env() {
	local desc=$1 a
	shift
	for a in "$@"; do export "${a?}"; done
	expect_pam trust-system alice "$MA_PW_ALICE" "$MA_PAM_AUTHINFO_UNAVAIL" "$desc"
	for a in "$@"; do unset "${a%%=*}"; done
}
expect_pam_env "SSL_CERT_FILE naming the attacker CA is ignored" \
	SSL_CERT_FILE="$MA_CERTS/ca.pem"
expect_pam_env "SSL_CERT_DIR naming the attacker's hashed directory is ignored" \
	SSL_CERT_FILE=/nonexistent SSL_CERT_DIR="$work/evil-dir"
expect_pam_env "OPENSSL_CONF with VerifyCAFile changes no trust anchor" \
	OPENSSL_CONF="$work/evil-openssl.cnf"
expect_pam_env "all three together are ignored" SSL_CERT_FILE="$MA_CERTS/ca.pem" \
	SSL_CERT_DIR="$work/evil-dir" OPENSSL_CONF="$work/evil-openssl.cnf"

# OPENSSL_CONF's system_default section is applied by SSL_CTX_new() in every process
# that is not setuid (control: the helper's own context gets TLS 1.0 and level 0).  It
# cannot set trust anchors (OpenSSL refuses certificate commands there), but it can
# lower the minimum version and the security level: the module sets both again.
defaults=$(OPENSSL_CONF="$work/evil-openssl.cnf" "$helper" --tls-defaults 2>&1 || true)
if [ "$defaults" = "min=0x301 seclevel=0" ]; then
	ok "control: the attacker configuration lowers OpenSSL's defaults in this process"
else
	not_ok "control: the attacker configuration lowers OpenSSL's defaults in this process" \
		"helper said: $defaults"
fi
# weak_server NAME FAKESERVER-ARGS...: a fake IMAPS server offering a weakness, a PAM
# service for it with ca_file, and a login under the attacker configuration.
weak_server() {
	local name=$1 port pid
	shift
	python3 "$MA_ROOT/tests/fake/fakeserver.py" --certs "$MA_CERTS" --scenario good_implicit \
		--password "$MA_PW_ALICE" --hard-timeout 15 "$@" >"$work/$name.port" 2>"$work/$name.log" &
	pid=$!
	for _ in $(seq 50); do [ -s "$work/$name.port" ] && break; sleep 0.1; done
	port=$(head -n 1 "$work/$name.port")
	ma_write_config "$work/$name.conf" <<EOF2
timeout = 5
ca_file = "$MA_CERTS/ca.pem"
server fake { host = "127.0.0.1" port = $port tls = implicit }
EOF2
	ma_pam_service "trust-$name" "$work/$name.conf"
	export OPENSSL_CONF="$work/evil-openssl.cnf"
	expect_pam "trust-$name" alice "$MA_PW_ALICE" "$MA_PAM_AUTHINFO_UNAVAIL" \
		"OPENSSL_CONF lowering the defaults: $name still refused"
	unset OPENSSL_CONF
	if [[ $MA_PAM_OUT == *"result=tls-error"* ]]; then
		ok "$name: refused by the TLS handshake (the server was there)"
	else
		not_ok "$name: refused by the TLS handshake (the server was there)" "$MA_PAM_OUT"
	fi
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
weak_server rsa1024 --cert rsa1024
weak_server tls10 --tls-max 1.0

# --- 3. the compiled-in default location -----------------------------------------------
default_file=$(openssl version -d | sed -E 's/^OPENSSLDIR: "(.*)"$/\1/')/cert.pem
set +e
out=$(printf '%s\n' "$MA_PW_ALICE" | unshare -m bash -c '
	mount --bind "$1" "$(readlink -f "$2")" || exit 99
	exec env LD_PRELOAD="$3" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$4" \
		PAM_WRAPPER_DISABLE_DEEPBIND="$5" ASAN_OPTIONS=detect_leaks=0 \
		pamtester -v trust-system alice authenticate' _ "$MA_CERTS/ca.pem" "$default_file" \
	"$(ma_preload)" "$(ma_pam_dir)" "$([ "$(ma_preload)" = libpam_wrapper.so ] && echo 0 || echo 1)" 2>&1)
rc=$?
set -e
if [ $rc -eq 0 ] && [[ $out == *"$MA_PAM_SUCCESS"* ]]; then
	ok "OpenSSL's compiled-in bundle ($default_file) is the system store"
else
	not_ok "OpenSSL's compiled-in bundle ($default_file) is the system store" "exit $rc" "$out"
fi

# --- 4. setuid ------------------------------------------------------------------------
# A setuid-root copy of the helper where an unprivileged user can run it, as su is.
suid_dir=$(mktemp -d /tmp/ma-suid.XXXXXX)
trap 'rm -rf "$suid_dir"' EXIT
cp "$helper" "$suid_dir/pamlogin"
chown root:root "$suid_dir/pamlogin"
chmod 4755 "$suid_dir/pamlogin"
chmod 755 "$suid_dir"
pamdir=$(ma_pam_dir)

# suid_login SERVICE VAR=VALUE...: the setuid helper as nobody; sets out and rc.
suid_login() {
	local svc=$1
	shift
	set +e
	out=$(printf '%s\n' "$MA_PW_ALICE" | setpriv --reuid=nobody --regid=nogroup --clear-groups \
		env -i PATH=/usr/bin:/bin "$@" "$suid_dir/pamlogin" "$pamdir" "$svc" alice 2>&1)
	rc=$?
	set -e
}
suid_login trust-cafile
if [ $rc -eq 0 ] && [[ $out == *"$MA_PAM_SUCCESS"*"uid 65534, euid 0"* ]]; then
	ok "control: the setuid helper, run by nobody, logs in with ca_file"
else
	not_ok "control: the setuid helper, run by nobody, logs in with ca_file" "exit $rc" "$out"
fi
suid_login trust-system SSL_CERT_FILE="$MA_CERTS/ca.pem" SSL_CERT_DIR="$work/evil-dir" \
	OPENSSL_CONF="$work/evil-openssl.cnf"
if [ $rc -ne 0 ] && [[ $out == *"$MA_PAM_AUTHINFO_UNAVAIL"*"euid 0"* ]]; then
	ok "setuid: SSL_CERT_FILE, SSL_CERT_DIR and OPENSSL_CONF of the caller do not make the server trusted"
else
	not_ok "setuid: SSL_CERT_FILE, SSL_CERT_DIR and OPENSSL_CONF of the caller do not make the server trusted" \
		"exit $rc" "$out"
fi
suid_login trust-system SSL_CERT_FILE="$MA_CERTS/ca.pem"
if [ $rc -ne 0 ] && [[ $out == *"$MA_PAM_AUTHINFO_UNAVAIL"* ]]; then
	ok "setuid: SSL_CERT_FILE alone (the reported attack) is refused"
else
	not_ok "setuid: SSL_CERT_FILE alone (the reported attack) is refused" "exit $rc" "$out"
fi

ma_done
