#!/bin/bash
# tests/pkg/test_deb.sh - the Debian package builds and holds what it should.
#
# Builds `dpkg-buildpackage -us -uc -b` in a temporary copy of the source tree
# (the files git tracks or would track: nothing of the working tree's build
# products, and the working tree itself is never touched), then checks the
# binary package with dpkg-deb and lintian:
#   - the module in /lib/<multiarch>/security, the tool in /usr/bin, the broker in
#     /usr/sbin/mailauthd, its units mailauthd.service and mailauthd.socket in
#     /lib/systemd/system, the four manual pages, the examples, README, copyright;
#   - /etc/security/pam_mailauth.conf: a conffile, mode 0600, root:root;
#   - Depends on adduser (the postinst makes the user _mailauth); the service file has
#     the hardening keys (User=_mailauth, NoNewPrivileges=yes, an empty
#     CapabilityBoundingSet=, ProtectSystem=strict, StateDirectory=mailauth,
#     RuntimeDirectory=mailauth);
#   - /usr/share/pam-configs/mailauth with "Default: no" and the Auth lines
#     pam-auth-update needs; maintainer scripts that call pam-auth-update;
#   - the packaged module exports only pam_sm_*; the packaged tool accepts the
#     packaged configuration; the packaged manual pages render without warnings;
#   - the packaged profile through the real pam-auth-update (--root: a private
#     /etc/pam.d, /var/lib/pam and debconf database; the system's are never
#     touched): not in common-auth after the postinst's `--package`, in it after
#     `--enable mailauth`, out again after the prerm's `--remove mailauth`; the
#     generated common-auth, with the packaged module, runs through the real PAM
#     stack (pam_wrapper + pamtester): the private Dovecot accepts a password
#     (success=end jumps to pam_permit), a server that is down or a rejected
#     password falls through to pam_unix (PAM_AUTHINFO_UNAVAIL, PAM_AUTH_ERR are
#     "ignore"), never PAM_SERVICE_ERR from a control pam(8) cannot parse;
#   - lintian --fail-on error exits 0 (no error, and lintian itself worked) and
#     reports no error ("E:" line);
#   - installed on this system with dpkg -i (only when it can be undone exactly: as
#     root, libpam-mailauth neither installed nor left as configuration files, no
#     /etc/security/pam_mailauth.conf, no statoverride for it, no /var/lib/mailauth;
#     otherwise that is a failure, and nothing is installed): the system user and group
#     _mailauth exist (home /var/lib/mailauth, no shell), /var/lib/mailauth is
#     _mailauth 0700, the configuration is root:_mailauth 0640 after this first
#     installation (a dpkg-statoverride) and _mailauth can load it (nobody cannot),
#     the units are installed but not enabled (systemctl is-enabled, no symlink in
#     /etc/systemd/system), systemd-analyze verify accepts them, and the installed
#     service file has the hardening keys; a reinstallation (the upgrade path) keeps
#     an owner and mode the administrator chose instead; then dpkg --purge removes the
#     package, the configuration, the override, /var/lib/mailauth and
#     deb-systemd-helper's state, leaves /etc/pam.d/common-* as they were and keeps
#     the user (Debian keeps system users); the test then removes the user and group
#     if it created them, and puts back /var/lib/pam/seen (pam-auth-update adds the
#     profile's name to it). An EXIT trap purges and removes them on any failure too;
#   - the build leaves no file that git would see (debian/.gitignore is complete).
#
# Needs root (fakeroot is enough without the installation part), dpkg-dev, debhelper,
# lintian, systemd (systemd-analyze, systemctl; no running systemd needed), adduser and
# debian/control's Build-Depends.  Prints "ok - ..." / "not ok - ..." lines and
# "# N passed, N failed"; exits non-zero on failure.  Takes about 15 s.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ma-deb.XXXXXX") || exit 1
# mktemp makes it 0700: a Dovecot of our own (ma_need_dovecot, when the runner started
# none) reads its users file there as user dovecot.
chmod 0755 "$work"
# cleanup: what this test did to the system is undone here, on every exit (see
# deb_undo below); the Dovecot it may have started is stopped.
stop_dovecot=0
deb_installed=0
created_user=0
created_group=0
cleanup() {
	if declare -F deb_undo >/dev/null; then deb_undo; fi
	if [ "$stop_dovecot" = 1 ]; then ma_dovecot_stop >/dev/null 2>&1; fi
	rm -rf "$work"
}
trap cleanup EXIT
export MA_TEST_TMP=$work
. "$root/tests/lib/common.sh"

src=$work/src
started=$SECONDS

# --- prerequisites ---------------------------------------------------------------

missing=""
for tool in dpkg-buildpackage dpkg-deb dh lintian git pam-auth-update pamtester; do
	command -v "$tool" >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
	not_ok "build tools installed" "missing:$missing (apt-get install dpkg-dev debhelper lintian git libpam-runtime pamtester)"
	ma_done
	exit 1
fi
ok "build tools installed"

# --- a clean copy of the tree, as a git repository of its own ------------------------

mkdir -p "$src"
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
	# Tracked and new (not ignored) files as they are in the working tree.
	(cd "$root" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		tar --null -T - -cf -) | tar -xf - -C "$src"
else
	(cd "$root" && tar --exclude=.git --exclude=./tests/tmp -cf - .) | tar -xf - -C "$src"
fi
if [ -f "$src/debian/control" ] && [ -x "$src/debian/rules" ]; then
	ok "source tree copied ($(cd "$src" && find . -type f | wc -l) files)"
else
	not_ok "source tree copied" "no debian/control or executable debian/rules in the copy"
	ma_done
	exit 1
fi
# Its own repository: after the build, `git status` shows what the build left behind.
git -C "$src" init -q &&
	git -C "$src" add -A &&
	git -C "$src" -c user.name=test -c user.email=test@invalid commit -qm tree ||
	not_ok "git snapshot of the copy"

# --- build -----------------------------------------------------------------------

if out=$(cd "$src" && dpkg-checkbuilddeps 2>&1); then
	ok "Build-Depends of debian/control satisfied"
else
	not_ok "Build-Depends of debian/control satisfied" "$out"
fi

t0=$SECONDS
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
	ok "dpkg-buildpackage -us -uc -b ($((SECONDS - t0)) s)"
else
	not_ok "dpkg-buildpackage -us -uc -b" "exit status $rc; last lines of the log:" "$(tail -n 40 "$work/build.log")"
	ma_done
	exit 1
fi

arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
deb=$(ls "$work"/libpam-mailauth_*_"$arch".deb 2>/dev/null | head -n 1)
if [ -n "$deb" ] && [ -f "$deb" ]; then
	ok "built $(basename "$deb")"
else
	not_ok "built libpam-mailauth_*_$arch.deb" "$(ls "$work")"
	ma_done
	exit 1
fi

if grep -q '^100%: Checks: [0-9]*, Failures: 0, Errors: 0' "$work/build.log"; then
	ok "unit tests ran during the build ($(grep -c '^100%: Checks' "$work/build.log") programs)"
else
	not_ok "unit tests ran during the build" "$(grep -E '^[0-9]+%: Checks' "$work/build.log")"
fi

# --- contents --------------------------------------------------------------------

listing=$(dpkg-deb -c "$deb")
# expect_file MODE PATH: a line of `dpkg-deb -c` with that mode, owner and path.
expect_file() {
	local mode=$1 path=$2
	if printf '%s\n' "$listing" | grep -E "^$mode root/root +[0-9]+ [0-9-]+ [0-9:]+ \./${path//./\\.}\$" >/dev/null; then
		ok "contains $mode /$path"
	else
		not_ok "contains $mode /$path" "dpkg-deb -c says:" \
			"$(printf '%s\n' "$listing" | grep -F -- "${path##*/}" || echo '(nothing of that name)')"
	fi
}
expect_file -rw-r--r-- "lib/$multiarch/security/pam_mailauth.so"
expect_file -rwxr-xr-x usr/bin/mailauth
expect_file -rwxr-xr-x usr/sbin/mailauthd
expect_file -rw-r--r-- lib/systemd/system/mailauthd.service
expect_file -rw-r--r-- lib/systemd/system/mailauthd.socket
expect_file -rw-r--r-- usr/share/man/man1/mailauth.1.gz
expect_file -rw-r--r-- usr/share/man/man5/pam_mailauth.conf.5.gz
expect_file -rw-r--r-- usr/share/man/man8/pam_mailauth.8.gz
expect_file -rw-r--r-- usr/share/man/man8/mailauthd.8.gz
expect_file -rw------- etc/security/pam_mailauth.conf
expect_file -rw-r--r-- usr/share/pam-configs/mailauth
expect_file -rw-r--r-- usr/share/doc/libpam-mailauth/copyright
# The examples are conf/'s configurations and PAM files (the units are installed as
# units, above).
for f in "$root"/conf/*.conf "$root"/conf/pam.d-*; do
	expect_file -rw-r--r-- "usr/share/doc/libpam-mailauth/examples/$(basename "$f")"
done

conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null)
if printf '%s\n' "$conffiles" | grep -x '/etc/security/pam_mailauth.conf' >/dev/null; then
	ok "conffiles lists /etc/security/pam_mailauth.conf"
else
	not_ok "conffiles lists /etc/security/pam_mailauth.conf" "conffiles: $conffiles"
fi

control=$(dpkg-deb -f "$deb")
for field in 'Package: libpam-mailauth' 'Section: admin' 'Priority: optional'; do
	if printf '%s\n' "$control" | grep -x "$field" >/dev/null; then
		ok "control: $field"
	else
		not_ok "control: $field" "$control"
	fi
done
if printf '%s\n' "$control" | grep '^Depends:.*libpam-runtime' >/dev/null; then
	ok "control: Depends on libpam-runtime (pam-auth-update)"
else
	not_ok "control: Depends on libpam-runtime (pam-auth-update)" "$control"
fi
if printf '%s\n' "$control" | grep -E '^Depends:(.*[ ,])?adduser([ ,(]|$)' >/dev/null; then
	ok "control: Depends on adduser (the postinst makes _mailauth)"
else
	not_ok "control: Depends on adduser (the postinst makes _mailauth)" "$control"
fi

# --- the pam-auth-update profile and the maintainer scripts ---------------------------

root_fs=$work/root
mkdir -p "$root_fs"
dpkg-deb -x "$deb" "$root_fs"
profile=$root_fs/usr/share/pam-configs/mailauth
if grep -qx 'Default: no' "$profile" 2>/dev/null; then
	ok "pam-configs/mailauth: Default: no (not enabled on installation)"
else
	not_ok "pam-configs/mailauth: Default: no (not enabled on installation)" "$(cat "$profile" 2>&1)"
fi
for field in 'Name: ' 'Priority: [0-9]+$' 'Auth-Type: Primary$'; do
	if grep -Eq "^$field" "$profile" 2>/dev/null; then
		ok "pam-configs/mailauth: ${field%%:*}"
	else
		not_ok "pam-configs/mailauth: ${field%%:*}" "$(cat "$profile" 2>&1)"
	fi
done
# pam-auth-update: "Auth:" and "Auth-Initial:" are each followed by an indented
# line "CONTROL pam_mailauth.so ...".
for section in Auth Auth-Initial; do
	line=$(awk -v s="$section:" '$0 == s { getline; print; exit }' "$profile" 2>/dev/null)
	if [[ $line =~ ^[[:space:]]+\[success=end[^]]*\][[:space:]]+pam_mailauth\.so ]]; then
		ok "pam-configs/mailauth: $section: $(printf '%s' "$line" | tr -s '\t ' ' ')"
	else
		not_ok "pam-configs/mailauth: $section line with [success=end ...] pam_mailauth.so" "$(cat "$profile" 2>&1)"
	fi
done

ctrl=$work/control
mkdir -p "$ctrl"
dpkg-deb -e "$deb" "$ctrl"
scripts_code() { grep -v '^[[:space:]]*#' "$1" 2>/dev/null; }
if scripts_code "$ctrl/postinst" | grep 'pam-auth-update --package' >/dev/null &&
	! scripts_code "$ctrl/postinst" | grep 'pam-auth-update.*--enable' >/dev/null; then
	ok "postinst: pam-auth-update --package, never --enable"
else
	not_ok "postinst: pam-auth-update --package, never --enable" "$(cat "$ctrl/postinst" 2>&1)"
fi
if grep -q 'pam-auth-update --package --remove mailauth' "$ctrl/prerm" 2>/dev/null; then
	ok "prerm: pam-auth-update --package --remove mailauth"
else
	not_ok "prerm: pam-auth-update --package --remove mailauth" "$(cat "$ctrl/prerm" 2>&1)"
fi

# --- the packaged binaries and pages work ---------------------------------------------

module=$root_fs/lib/$multiarch/security/pam_mailauth.so
exports=$(nm -D --defined-only "$module" 2>/dev/null | awk '$2 ~ /^[TDBRW]$/ { print $3 }' | sort)
if [ -n "$exports" ] && ! printf '%s\n' "$exports" | grep -v '^pam_sm_' >/dev/null; then
	ok "packaged module exports only pam_sm_* ($(printf '%s\n' "$exports" | tr '\n' ' '))"
else
	not_ok "packaged module exports only pam_sm_*" "$exports"
fi

conf=$root_fs/etc/security/pam_mailauth.conf
if out=$("$root_fs/usr/bin/mailauth" check -c "$conf" 2>&1); then
	ok "packaged mailauth accepts the packaged configuration"
else
	not_ok "packaged mailauth accepts the packaged configuration" "$out"
fi

for page in man1/mailauth.1 man5/pam_mailauth.conf.5 man8/pam_mailauth.8 man8/mailauthd.8; do
	gz=$root_fs/usr/share/man/$page.gz
	out=$(zcat "$gz" >"$work/page" 2>&1 &&
		LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l "$work/page" 2>&1 >/dev/null)
	if [ $? -eq 0 ] && [ -z "$out" ]; then
		ok "packaged $page renders without warnings"
	else
		not_ok "packaged $page renders without warnings" "$out"
	fi
done

# --- the profile through pam-auth-update and the real PAM stack -----------------------

# pam-auth-update --root R reads R/usr/share/pam-configs and writes R/etc/pam.d and
# R/var/lib/pam; its debconf answers go to the database DEBCONF_SYSTEMRC names. Never
# the system's: with an empty --root it would rewrite /etc/pam.d.
pau=$work/pau
pau_root=$pau/root
mkdir -p "$pau_root/usr/share/pam-configs" "$pau_root/etc/pam.d" "$pau_root/var/lib/pam" "$pau/debconf"
cp "$profile" "$pau_root/usr/share/pam-configs/mailauth"
cp /usr/share/pam-configs/unix "$pau_root/usr/share/pam-configs/unix"
printf '%s\n' 'Config: configdb' 'Templates: templatedb' '' \
	'Name: configdb' 'Driver: File' 'Mode: 600' "Filename: $pau/debconf/config.dat" '' \
	'Name: templatedb' 'Driver: File' 'Mode: 600' "Filename: $pau/debconf/templates.dat" \
	>"$pau/debconf.conf"
pau_run() { # pau_run ARGS...: pam-auth-update --root on the private tree
	local out rc
	case $pau_root in
	"$work"/?*) ;;
	*)
		not_ok "pam-auth-update $*" "refusing --root '$pau_root' (not under $work)"
		return 1
		;;
	esac
	if [ ! -s "$pau/debconf.conf" ]; then
		not_ok "pam-auth-update $*" "no private debconf configuration"
		return 1
	fi
	out=$(DEBCONF_SYSTEMRC=$pau/debconf.conf DEBIAN_FRONTEND=noninteractive \
		pam-auth-update --root "$pau_root" "$@" 2>&1 </dev/null)
	rc=$?
	if [ $rc -eq 0 ] && [ -s "$pau_root/etc/pam.d/common-auth" ] &&
		! printf '%s\n' "$out" | grep 'not updating' >/dev/null; then
		ok "pam-auth-update $*: writes the private common-auth"
		return 0
	fi
	not_ok "pam-auth-update $*: writes the private common-auth" "exit status $rc" "$out"
	return 1
}
auth_lines() { grep -E '^auth[[:space:]]' "$pau_root/etc/pam.d/common-auth" 2>/dev/null; }

# As the postinst runs it on a fresh system (--force: the private tree has no saved
# state to compare with): Default: no keeps it out of common-auth.
if pau_run --package --force; then
	if auth_lines | grep pam_mailauth >/dev/null; then
		not_ok "common-auth after the postinst's pam-auth-update --package: no pam_mailauth (Default: no)" "$(auth_lines)"
	else
		ok "common-auth after the postinst's pam-auth-update --package: no pam_mailauth (Default: no)"
	fi
fi
generated=""
if pau_run --package --enable mailauth; then
	generated=$(auth_lines)
	# Priority 384 > pam_unix's 256: first, with the Auth-Initial line; pam_unix next
	# with its Auth line (try_first_pass).
	if printf '%s\n' "$generated" | sed -n 1p | grep -E '^auth[[:space:]]+\[success=2 default=ignore\][[:space:]]+pam_mailauth\.so[[:space:]]*$' >/dev/null &&
		printf '%s\n' "$generated" | sed -n 2p | grep -E '^auth[[:space:]]+\[success=1 default=ignore\][[:space:]]+pam_unix\.so .*try_first_pass' >/dev/null; then
		ok "common-auth after --enable mailauth: pam_mailauth first ([success=2 default=ignore]), then pam_unix try_first_pass"
	else
		not_ok "common-auth after --enable mailauth: pam_mailauth first ([success=2 default=ignore]), then pam_unix try_first_pass" "$generated"
	fi
	# The answer went to the private database (the system's has no mailauth profile).
	if grep -qx 'Value: mailauth, unix' "$pau/debconf/config.dat" 2>/dev/null; then
		ok "pam-auth-update kept its answers in the private debconf database"
	else
		not_ok "pam-auth-update kept its answers in the private debconf database" "$(cat "$pau/debconf/config.dat" 2>&1)"
	fi
fi
if pau_run --package --remove mailauth; then
	if auth_lines | grep pam_mailauth >/dev/null; then
		not_ok "common-auth after the prerm's pam-auth-update --package --remove mailauth: no pam_mailauth" "$(auth_lines)"
	else
		ok "common-auth after the prerm's pam-auth-update --package --remove mailauth: no pam_mailauth"
	fi
fi

# The generated common-auth (as enabled) with the packaged module and a configuration
# of ours, through pam_wrapper + pamtester. Dovecot: the suite's, or one of our own.
have_pam_wrapper() { ldconfig -p 2>/dev/null | grep 'libpam_wrapper\.so' >/dev/null; }
module=$root_fs/lib/$multiarch/security/pam_mailauth.so
if [ -z "$generated" ]; then
	not_ok "the generated common-auth runs through PAM" "no common-auth with pam_mailauth was generated"
elif ! have_pam_wrapper; then
	not_ok "pam_wrapper is installed (apt-get install libpam-wrapper)"
else
	ma_need_dovecot
	# ma_need_dovecot replaces the EXIT trap when it starts a Dovecot of its own.
	if trap -p EXIT | grep ma_dovecot_stop >/dev/null; then
		stop_dovecot=1
	fi
	trap cleanup EXIT
	MA_MODULE=$module
	down_port=$(ma_closed_port)
	printf '%s\n' 'timeout = 3' \
		"server down { protocol = imap host = \"127.0.0.1\" port = $down_port tls = implicit }" |
		ma_write_config "$pau/down.conf"
	printf '%s\n' 'timeout = 5' "ca_file = \"$MA_CERTS/ca.pem\"" \
		"server dovecot { protocol = imap host = \"127.0.0.1\" port = ${MA_TEST_IMAPS_PORT:-0} tls = implicit }" |
		ma_write_config "$pau/up.conf"
	pamd=$(ma_pam_dir)
	for which in down up; do
		{
			printf '%s\n' "$generated" | sed "s|pam_mailauth\.so|$module config=$pau/$which.conf|"
			printf 'account required pam_permit.so\n'
		} >"$pamd/pau-$which"
	done
	if [ "$(grep -c "pam_mailauth" "$pamd/pau-down")" -eq 1 ] && grep -q "$module config=" "$pamd/pau-down"; then
		ok "generated common-auth uses the packaged module with config="
	else
		not_ok "generated common-auth uses the packaged module with config=" "$(cat "$pamd/pau-down")"
	fi
	user=ma-deb-nouser
	if getent passwd "$user" >/dev/null; then
		not_ok "no local account $user (pam_unix must not know it)"
	fi

	# pam_unix's own log lines (pam_wrapper prints them without the module name) show
	# that it ran; pam_deny (requisite) then fails the stack.
	unix_ran='SYSLOG\([0-9]\): (check pass; user unknown|authentication failure; logname=)'
	expect_pam pau-down "$user" 'some password' "$MA_PAM_AUTH_ERR" \
		"common-auth, server down: PAM_AUTH_ERR from pam_deny after pam_unix, not PAM_SERVICE_ERR"
	if printf '%s\n' "$MA_PAM_OUT" | grep 'result=unavailable' >/dev/null &&
		printf '%s\n' "$MA_PAM_OUT" | grep -E "$unix_ran" >/dev/null; then
		ok "common-auth, server down: pam_mailauth unavailable, then pam_unix ran (authinfo_unavail -> ignore)"
	else
		not_ok "common-auth, server down: pam_mailauth unavailable, then pam_unix ran (authinfo_unavail -> ignore)" "$MA_PAM_OUT"
	fi

	expect_pam pau-up alice "$MA_PW_ALICE" "$MA_PAM_SUCCESS" \
		"common-auth, Dovecot accepts alice: PAM_SUCCESS (success=2 jumps over pam_unix and pam_deny)"
	if printf '%s\n' "$MA_PAM_OUT" | grep -E "$unix_ran" >/dev/null; then
		not_ok "common-auth, alice accepted: pam_unix never ran" "$MA_PAM_OUT"
	else
		ok "common-auth, alice accepted: pam_unix never ran"
	fi

	expect_pam pau-up alice "wrong-$MA_PW_ALICE" "$MA_PAM_AUTH_ERR" \
		"common-auth, Dovecot rejects a wrong password: PAM_AUTH_ERR"
	if printf '%s\n' "$MA_PAM_OUT" | grep 'result=auth-failed' >/dev/null &&
		printf '%s\n' "$MA_PAM_OUT" | grep -E "$unix_ran" >/dev/null; then
		ok "common-auth, wrong mail password: pam_unix tried it as the local one (default=ignore, as pam_mailauth(8) says)"
	else
		not_ok "common-auth, wrong mail password: pam_unix tried it as the local one (default=ignore, as pam_mailauth(8) says)" "$MA_PAM_OUT"
	fi
fi

# --- lintian ----------------------------------------------------------------------

# Non-zero exit status (lintian 2.116: 2 for an error tag or an unreadable file, 1 when
# it could not unpack the package): not a clean result, whatever it printed.
lint=$(lintian --fail-on error "$deb" 2>&1)
lint_rc=$?
lint=$(printf '%s\n' "$lint" | grep -v 'running with root privileges is not recommended')
if [ $lint_rc -eq 0 ]; then
	ok "lintian --fail-on error: exit status 0"
else
	not_ok "lintian --fail-on error: exit status 0" "exit status $lint_rc; lintian said:" "$lint"
fi
if printf '%s\n' "$lint" | grep '^E: ' >/dev/null; then
	not_ok "lintian: no errors" "$lint"
else
	ok "lintian: no errors"
fi
# Warnings and the rest, for the record.
printf '%s\n' "$lint" | grep -E '^[WIPX]: ' | sed 's/^/# lintian: /'

# --- installed on this system, then purged ------------------------------------------

conf_path=/etc/security/pam_mailauth.conf
state_dir=/var/lib/mailauth
unit_dir=/lib/systemd/system
units="mailauthd.service mailauthd.socket"

# dpkg_run ARGS...: dpkg, waiting up to 120 s while another process holds its lock (a
# test suite installing its packages); sets DPKG_OUT.
dpkg_run() {
	local n=120 rc
	while :; do
		DPKG_OUT=$(DEBIAN_FRONTEND=noninteractive dpkg "$@" 2>&1 </dev/null)
		rc=$?
		if [ $rc -ne 0 ] && [ $n -gt 0 ] && printf '%s\n' "$DPKG_OUT" | grep -i 'lock' >/dev/null; then
			sleep 1
			n=$((n - 1))
			continue
		fi
		return $rc
	done
}
pkg_status() { dpkg-query -W -f='${db:Status-Abbrev}' libpam-mailauth 2>/dev/null | tr -d ' '; }
pam_state() { (cd / && md5sum etc/pam.d/common-* 2>/dev/null); }
dsh_state() { find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked -name 'mailauthd*' 2>/dev/null; }

# deb_undo: purge the package if this test installed it, remove the user and group if
# this test created them, put back /var/lib/pam/seen. Idempotent, no results: the test
# checks the outcome itself, and the EXIT trap calls it to clean up after a failure.
deb_undo() {
	if [ "$deb_installed" = 1 ]; then
		deb_installed=0
		if [ -n "$(pkg_status)" ] && [ "$(pkg_status)" != un ] && [ "$(pkg_status)" != pn ]; then
			dpkg_run --purge libpam-mailauth
		fi
	fi
	if [ "$created_user" = 1 ] && getent passwd _mailauth >/dev/null; then
		userdel _mailauth >/dev/null 2>&1
	fi
	if [ "$created_group" = 1 ] && getent group _mailauth >/dev/null; then
		groupdel _mailauth >/dev/null 2>&1
	fi
	created_user=0
	created_group=0
	if [ -f "$work/pam-seen" ] && [ -f /var/lib/pam/seen ] &&
		[ "$(grep -vx mailauth /var/lib/pam/seen)" = "$(cat "$work/pam-seen")" ]; then
		cat "$work/pam-seen" >/var/lib/pam/seen
	fi
	return 0
}

# Only where this can be undone exactly.
inst_ok=1
why_not=()
[ "$(id -u)" -eq 0 ] || why_not+=("not root")
for tool in dpkg-statoverride adduser userdel groupdel systemctl systemd-analyze setpriv; do
	command -v "$tool" >/dev/null || why_not+=("no $tool")
done
case $(pkg_status) in
'' | un | pn) ;;
*) why_not+=("libpam-mailauth is on this system already (dpkg: $(pkg_status)): not touched") ;;
esac
[ ! -e "$conf_path" ] || why_not+=("$conf_path exists (a purge would remove it)")
[ -z "$(dpkg-statoverride --list "$conf_path" 2>/dev/null)" ] || why_not+=("a statoverride for $conf_path exists")
[ ! -e "$state_dir" ] || why_not+=("$state_dir exists (a purge would remove it)")
if [ ${#why_not[@]} -eq 0 ]; then
	ok "this system can take the package and be put back exactly (root, no libpam-mailauth, no $conf_path, no $state_dir)"
else
	not_ok "this system can take the package and be put back exactly" "${why_not[@]}"
	inst_ok=0
fi

if [ $inst_ok = 1 ]; then
	getent passwd _mailauth >/dev/null || created_user=1
	getent group _mailauth >/dev/null || created_group=1
	pam_before=$(pam_state)
	[ ! -f /var/lib/pam/seen ] || cp /var/lib/pam/seen "$work/pam-seen"

	deb_installed=1
	if dpkg_run -i "$deb" && [ "$(pkg_status)" = ii ]; then
		ok "dpkg -i $(basename "$deb"): installed"
	else
		not_ok "dpkg -i $(basename "$deb"): installed" "status: $(pkg_status)" "$DPKG_OUT"
	fi

	# The broker's user and group.
	uid= gid= home= shell=
	IFS=: read -r _ _ uid gid _ home shell < <(getent passwd _mailauth)
	if [ -n "${uid:-}" ] && [ "$uid" -lt 1000 ] && [ "$home" = "$state_dir" ] &&
		[ "$shell" = /usr/sbin/nologin ] && [ "$(getent group "$gid" | cut -d: -f1)" = _mailauth ]; then
		ok "system user _mailauth (uid $uid), group _mailauth, home $state_dir, shell /usr/sbin/nologin"
	else
		not_ok "system user _mailauth, group _mailauth, home $state_dir, shell /usr/sbin/nologin" \
			"passwd: $(getent passwd _mailauth)" "group: $(getent group _mailauth)"
	fi
	if [ "$(stat -c '%U:%G %a' "$state_dir" 2>&1)" = "_mailauth:_mailauth 700" ]; then
		ok "$state_dir: _mailauth:_mailauth 0700"
	else
		not_ok "$state_dir: _mailauth:_mailauth 0700" "$(ls -ld "$state_dir" 2>&1)"
	fi

	# The configuration after this first installation.
	if [ "$(stat -c '%U:%G %a' "$conf_path" 2>&1)" = "root:_mailauth 640" ]; then
		ok "first installation: $conf_path is root:_mailauth 0640"
	else
		not_ok "first installation: $conf_path is root:_mailauth 0640" "$(ls -l "$conf_path" 2>&1)"
	fi
	if [ "$(dpkg-statoverride --list "$conf_path" 2>&1)" = "root _mailauth 640 $conf_path" ]; then
		ok "first installation: dpkg-statoverride keeps root _mailauth 0640 for it"
	else
		not_ok "first installation: dpkg-statoverride keeps root _mailauth 0640 for it" \
			"$(dpkg-statoverride --list "$conf_path" 2>&1)"
	fi
	if out=$(setpriv --reuid=_mailauth --regid=_mailauth --init-groups /usr/bin/mailauth check -c "$conf_path" 2>&1); then
		ok "_mailauth loads the installed configuration (mailauth check as _mailauth)"
	else
		not_ok "_mailauth loads the installed configuration (mailauth check as _mailauth)" "$out"
	fi
	if out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/mailauth check -c "$conf_path" 2>&1); then
		not_ok "nobody cannot read the installed configuration" "$out"
	elif printf '%s\n' "$out" | grep 'Permission denied' >/dev/null; then
		ok "nobody cannot read the installed configuration (Permission denied)"
	else
		not_ok "nobody cannot read the installed configuration (Permission denied)" "$out"
	fi

	# The units: installed, not enabled, accepted by systemd-analyze, hardened.
	for unit in $units; do
		state=$(systemctl is-enabled "$unit" 2>&1)
		if [ -f "$unit_dir/$unit" ] && [ "$state" = disabled ]; then
			ok "$unit_dir/$unit installed, not enabled (systemctl is-enabled: disabled)"
		else
			not_ok "$unit_dir/$unit installed, not enabled" "systemctl is-enabled: $state" "$(ls -l "$unit_dir/$unit" 2>&1)"
		fi
	done
	links=$(find /etc/systemd/system -lname '*mailauthd*' 2>/dev/null; find /etc/systemd/system -name 'mailauthd*' 2>/dev/null)
	if [ -z "$links" ]; then
		ok "no mailauthd unit or symlink under /etc/systemd/system"
	else
		not_ok "no mailauthd unit or symlink under /etc/systemd/system" "$links"
	fi
	# Messages about other units (systemd-analyze loads what they depend on) are shown,
	# not counted; anything about ours, or a non-zero status, fails.
	out=$(systemd-analyze verify "$unit_dir/mailauthd.service" "$unit_dir/mailauthd.socket" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && ! printf '%s\n' "$out" | grep -i 'mailauth' >/dev/null; then
		ok "systemd-analyze verify accepts $unit_dir/mailauthd.service and mailauthd.socket"
		[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/# systemd-analyze (other units): /'
	else
		not_ok "systemd-analyze verify accepts $unit_dir/mailauthd.service and mailauthd.socket" "exit status $rc" "$out"
	fi
	for key in User=_mailauth NoNewPrivileges=yes CapabilityBoundingSet= ProtectSystem=strict \
		StateDirectory=mailauth RuntimeDirectory=mailauth 'ExecStart=/usr/sbin/mailauthd -f'; do
		if grep -x -- "$key" "$unit_dir/mailauthd.service" >/dev/null 2>&1; then
			ok "installed mailauthd.service: $key"
		else
			not_ok "installed mailauthd.service: $key" "$(grep -E "^${key%%=*}=" "$unit_dir/mailauthd.service" 2>&1 || echo '(no such key)')"
		fi
	done

	# The upgrade path (a reinstallation: postinst configure with the old version) leaves
	# an owner and mode the administrator chose alone, and sets no override again.
	dpkg-statoverride --remove "$conf_path" >/dev/null 2>&1
	chown root:root "$conf_path" && chmod 0600 "$conf_path"
	if dpkg_run -i "$deb" && [ "$(pkg_status)" = ii ] &&
		[ "$(stat -c '%U:%G %a' "$conf_path" 2>&1)" = "root:root 600" ] &&
		[ -z "$(dpkg-statoverride --list "$conf_path" 2>/dev/null)" ]; then
		ok "reinstallation keeps the administrator's root:root 0600 and adds no statoverride"
	else
		not_ok "reinstallation keeps the administrator's root:root 0600 and adds no statoverride" \
			"$(ls -l "$conf_path" 2>&1)" "override: $(dpkg-statoverride --list "$conf_path" 2>&1)" "$DPKG_OUT"
	fi

	# Purge: everything goes but the system user.
	if dpkg_run --purge libpam-mailauth && [ -z "$(pkg_status | grep -v -x -e un -e pn)" ]; then
		ok "dpkg --purge libpam-mailauth"
		deb_installed=0
	else
		not_ok "dpkg --purge libpam-mailauth" "status: $(pkg_status)" "$DPKG_OUT"
	fi
	left=""
	for f in "$conf_path" "$state_dir" /usr/sbin/mailauthd "$unit_dir/mailauthd.service" "$unit_dir/mailauthd.socket"; do
		[ ! -e "$f" ] || left="$left $f"
	done
	[ -z "$(dpkg-statoverride --list "$conf_path" 2>/dev/null)" ] || left="$left statoverride:$conf_path"
	[ -z "$(dsh_state)" ] || left="$left $(dsh_state | tr '\n' ' ')"
	if [ -z "$left" ]; then
		ok "purge removes the configuration, its statoverride, $state_dir, the broker and its units, deb-systemd-helper's state"
	else
		not_ok "purge removes the configuration, its statoverride, $state_dir, the broker and its units, deb-systemd-helper's state" "left:$left"
	fi
	if [ "$(pam_state)" = "$pam_before" ]; then
		ok "/etc/pam.d/common-* as they were before the installation"
	else
		not_ok "/etc/pam.d/common-* as they were before the installation" "before:" "$pam_before" "after:" "$(pam_state)"
	fi
	if getent passwd _mailauth >/dev/null; then
		ok "purge keeps the system user _mailauth"
	else
		not_ok "purge keeps the system user _mailauth"
	fi

	# Put the system back: the user and group this test made, /var/lib/pam/seen.
	want_user=$((1 - created_user)) want_group=$((1 - created_group))
	deb_undo
	have_user=0 have_group=0
	getent passwd _mailauth >/dev/null && have_user=1
	getent group _mailauth >/dev/null && have_group=1
	if [ $have_user = $want_user ] && [ $have_group = $want_group ]; then
		ok "user and group _mailauth as before the installation (user: $have_user, group: $have_group)"
	else
		not_ok "user and group _mailauth as before the installation" \
			"user there before: $want_user, now: $have_user; group there before: $want_group, now: $have_group"
	fi
	if [ ! -f "$work/pam-seen" ] || cmp -s "$work/pam-seen" /var/lib/pam/seen; then
		ok "/var/lib/pam/seen as it was before the installation"
	else
		not_ok "/var/lib/pam/seen as it was before the installation" "$(diff "$work/pam-seen" /var/lib/pam/seen)"
	fi
fi

# --- nothing left behind ---------------------------------------------------------

left=$(git -C "$src" status --porcelain --untracked-files=all 2>&1)
if [ -z "$left" ]; then
	ok "the build leaves nothing git would see in the source tree"
else
	not_ok "the build leaves nothing git would see in the source tree" "$left"
fi

printf '# duration: %d s\n' $((SECONDS - started))
ma_done
exit $?
