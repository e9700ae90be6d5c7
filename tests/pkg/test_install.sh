#!/bin/bash
# tests/pkg/test_install.sh - `make install` honours DESTDIR and PREFIX and
# puts the module into the multiarch PAM directory, the broker mailauthd into
# PREFIX/sbin and its systemd units into /lib/systemd/system.
set -uo pipefail
. "$(dirname "$0")/../lib/common.sh"
cd "$MA_ROOT" || exit 1

stage=$MA_TMP/install
rm -rf "$stage"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
out=$(make -s install DESTDIR="$stage" PREFIX=/opt/ma 2>&1) || not_ok "make install" "$out"

expect_file() { # expect_file PATH MODE DESC
	if [ -f "$stage$1" ] && [ "$(stat -c %a "$stage$1")" = "$2" ]; then
		ok "$3"
	else
		not_ok "$3" "$(ls -l "$stage$1" 2>&1)"
	fi
}
expect_file "/lib/$multiarch/security/pam_mailauth.so" 644 "module in /lib/$multiarch/security"
expect_file /opt/ma/bin/mailauth 755 "tool under PREFIX/bin"
# The broker: the daemon under PREFIX/sbin, the built one; its systemd units in
# SYSTEMDUNITDIR (default /lib/systemd/system, not under PREFIX), as written in conf/.
expect_file /opt/ma/sbin/mailauthd 755 "broker mailauthd under PREFIX/sbin, mode 0755"
if cmp -s mailauthd "$stage/opt/ma/sbin/mailauthd"; then ok "installed mailauthd is the built one"; else not_ok "installed mailauthd is the built one"; fi
for unit in mailauthd.service mailauthd.socket; do
	expect_file "/lib/systemd/system/$unit" 644 "unit $unit in /lib/systemd/system, mode 0644"
	if cmp -s "conf/$unit" "$stage/lib/systemd/system/$unit"; then
		ok "installed $unit is conf/$unit"
	else
		not_ok "installed $unit is conf/$unit"
	fi
done
# The manual pages, uncompressed, under PREFIX/share/man, readable by all, as written.
for page in man1/mailauth.1 man5/pam_mailauth.conf.5 man8/pam_mailauth.8 man8/mailauthd.8; do
	expect_file "/opt/ma/share/man/$page" 644 "manual page $page under PREFIX/share/man, mode 0644"
	if cmp -s "man/${page#*/}" "$stage/opt/ma/share/man/$page"; then
		ok "installed $page is man/${page#*/}"
	else
		not_ok "installed $page is man/${page#*/}"
	fi
done
if [ -d "$stage/opt/ma/share/doc" ]; then ok "documentation under PREFIX/share"; else not_ok "documentation under PREFIX/share" "$(find "$stage" | head)"; fi
stray=$(find "$stage" -path "$stage/opt/ma" -prune -o -path "$stage/lib" -prune -o -path "$stage/etc" -prune -o -type f -print)
if [ -z "$stray" ]; then ok "nothing installed outside DESTDIR/{PREFIX,lib,etc}"; else not_ok "nothing installed outside DESTDIR/{PREFIX,lib,etc}" "$stray"; fi
# The installed module is the built one, and loadable.
if cmp -s pam_mailauth.so "$stage/lib/$multiarch/security/pam_mailauth.so"; then ok "installed module is the built one"; else not_ok "installed module is the built one"; fi
syms=$(nm -D --defined-only "$stage/lib/$multiarch/security/pam_mailauth.so" | awk '{print $3}' | sort | tr '\n' ' ')
if [ "$syms" = "pam_sm_acct_mgmt pam_sm_authenticate pam_sm_setcred " ]; then ok "installed module exports only pam_sm_*"; else not_ok "installed module exports only pam_sm_*" "$syms"; fi
rm -rf "$stage"
ma_done
