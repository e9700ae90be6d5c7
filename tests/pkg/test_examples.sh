#!/bin/bash
# tests/pkg/test_examples.sh - every example under conf/ works as shipped:
#
#   - each conf/*.conf passes the real parser: `mailauth check -c FILE` on a copy
#     with mode 0600 (owned by root when run as root), exit status 0;
#   - the examples the documentation promises are all there;
#   - conf/pam.d-webapp runs through the real PAM stack (pam_wrapper + pamtester,
#     nothing under /etc is touched) with the built module: a server that is down
#     gives PAM_AUTHINFO_UNAVAIL, root is PAM_USER_UNKNOWN before any connection,
#     account management accepts a routed user and refuses root;
#   - conf/pam.d-sshd puts pam_mailauth in front of pam_unix (try_first_pass).
#
# Needs `make` first (./mailauth, ./pam_mailauth.so).  Prints "ok - ..." /
# "not ok - ..." lines and "# N passed, N failed"; exits non-zero on failure.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ma-examples.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
# Scratch space of the helpers (pam.d directory): ours, never the suite's tests/tmp.
export MA_TEST_TMP=$work
. "$root/tests/lib/common.sh"
cd "$root" || exit 1

tool=${MA_TEST_TOOL:-$root/mailauth}

if [ ! -x "$tool" ]; then
	not_ok "mailauth is built" "$tool is missing: run make first"
	ma_done
	exit 1
fi

# --- the promised examples exist --------------------------------------------------

for f in pam_mailauth.conf dovecot-local.conf postfix-submission.conf microsoft365.conf \
	gmail.conf fastmail.conf pam.d-sshd pam.d-webapp; do
	if [ -s "conf/$f" ]; then
		ok "conf/$f exists"
	else
		not_ok "conf/$f exists"
	fi
done

# --- every configuration example passes the real parser ------------------------------

shopt -s nullglob
for f in conf/*.conf; do
	copy=$work/$(basename "$f")
	(umask 077 && cp "$f" "$copy")
	chmod 0600 "$copy"
	[ "$(id -u)" -ne 0 ] || chown root:root "$copy"
	if out=$("$tool" check -c "$copy" 2>&1); then
		ok "$f: mailauth check exits 0"
	else
		not_ok "$f: mailauth check exits 0" "exit status $?" "$out"
	fi
	# Not a single server left to the defaults by mistake: every example names one.
	if printf '%s\n' "$out" | grep -q '^server '; then
		ok "$f: defines at least one server"
	else
		not_ok "$f: defines at least one server" "$out"
	fi
done

# --- conf/pam.d-sshd: mail first, then the local password ----------------------------

sshd=conf/pam.d-sshd
mail_line=$(grep -n '^auth.*pam_mailauth\.so' "$sshd" | head -n 1 | cut -d: -f1)
unix_line=$(grep -n '^auth.*pam_unix\.so.*try_first_pass' "$sshd" | head -n 1 | cut -d: -f1)
if [ -n "$mail_line" ] && [ -n "$unix_line" ] && [ "$mail_line" -lt "$unix_line" ]; then
	ok "$sshd: pam_mailauth before pam_unix try_first_pass"
else
	not_ok "$sshd: pam_mailauth before pam_unix try_first_pass"
fi
if grep -q '^@include common-auth' "$sshd"; then
	not_ok "$sshd: does not also include common-auth (two password prompts)"
else
	ok "$sshd: does not also include common-auth (two password prompts)"
fi
for v in success=done user_unknown=ignore authinfo_unavail=ignore default=die; do
	if sed -n "${mail_line:-0}p" "$sshd" | grep -q -- "$v"; then
		ok "$sshd: pam_mailauth line has $v"
	else
		not_ok "$sshd: pam_mailauth line has $v"
	fi
done

# --- conf/pam.d-webapp through the real PAM stack ------------------------------------

have_pam_wrapper() {
	command -v pamtester >/dev/null && ldconfig -p 2>/dev/null | grep 'libpam_wrapper\.so' >/dev/null
}

if [ ! -f "$MA_MODULE" ]; then
	not_ok "pam_mailauth.so is built" "$MA_MODULE is missing: run make first"
elif ! have_pam_wrapper; then
	not_ok "pamtester and pam_wrapper are installed (apt-get install pamtester libpam-wrapper)"
else
	port=$(ma_closed_port)
	ma_write_config "$work/web.conf" <<EOF
timeout = 3
server down { protocol = imap host = "127.0.0.1" port = $port tls = implicit }
EOF
	pamd=$(ma_pam_dir)
	# The example as shipped, with the built module, our configuration, and no
	# 2-second failure delay.
	sed -e "s|pam_mailauth\.so config=/etc/security/mailauth-web\.conf|$MA_MODULE config=$work/web.conf|" \
		-e 's|pam_faildelay\.so delay=[0-9]*|pam_faildelay.so delay=1|' \
		conf/pam.d-webapp >"$pamd/webapp"
	if [ "$(grep -c "$MA_MODULE config=$work/web.conf" "$pamd/webapp")" -eq 2 ]; then
		ok "pam.d-webapp: auth and account lines use the module with config="
	else
		not_ok "pam.d-webapp: auth and account lines use the module with config=" "$(cat "$pamd/webapp")"
	fi
	user=ma-example-user
	expect_pam webapp "$user" 'some password' "$MA_PAM_AUTHINFO_UNAVAIL" \
		"pam.d-webapp: server down -> PAM_AUTHINFO_UNAVAIL"
	expect_pam webapp root 'some password' "$MA_PAM_USER_UNKNOWN" \
		"pam.d-webapp: root -> PAM_USER_UNKNOWN"
	ma_pamtester webapp "$user" '' acct_mgmt
	if [ "$MA_PAM_RC" -eq 0 ] && [[ $MA_PAM_OUT == *"$MA_PAM_ACCT_OK"* ]]; then
		ok "pam.d-webapp: account management accepts a routed user"
	else
		not_ok "pam.d-webapp: account management accepts a routed user" "$MA_PAM_OUT"
	fi
	ma_pamtester webapp root '' acct_mgmt
	if [ "$MA_PAM_RC" -ne 0 ] && [[ $MA_PAM_OUT == *"$MA_PAM_USER_UNKNOWN"* ]]; then
		ok "pam.d-webapp: account management refuses root"
	else
		not_ok "pam.d-webapp: account management refuses root" "$MA_PAM_OUT"
	fi
fi

ma_done
exit $?
