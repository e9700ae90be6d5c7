#!/bin/bash
# tests/pkg/test_deb.sh - the Debian package builds and holds what it should.
#
# Builds `dpkg-buildpackage -us -uc -b` in a temporary copy of the source tree
# (the files git tracks or would track: nothing of the working tree's build
# products, and the working tree itself is never touched), then checks the
# binary package with dpkg-deb and lintian:
#   - the module in /lib/<multiarch>/security, the tool in /usr/bin, the three
#     manual pages, the examples, README, copyright;
#   - /etc/security/pam_mailauth.conf: a conffile, mode 0600, root:root;
#   - /usr/share/pam-configs/mailauth with "Default: no" and the Auth lines
#     pam-auth-update needs; maintainer scripts that call pam-auth-update;
#   - the packaged module exports only pam_sm_*; the packaged tool accepts the
#     packaged configuration; the packaged manual pages render without warnings;
#   - lintian reports no error ("E:" line);
#   - the build leaves no file that git would see (debian/.gitignore is complete).
#
# Needs root or fakeroot, dpkg-dev, debhelper, lintian and debian/control's
# Build-Depends.  Prints "ok - ..." / "not ok - ..." lines and
# "# N passed, N failed"; exits non-zero on failure.  Takes about 15 s.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ma-deb.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
export MA_TEST_TMP=$work
. "$root/tests/lib/common.sh"

src=$work/src
started=$SECONDS

# --- prerequisites ---------------------------------------------------------------

missing=""
for tool in dpkg-buildpackage dpkg-deb dh lintian git; do
	command -v "$tool" >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
	not_ok "build tools installed" "missing:$missing (apt-get install dpkg-dev debhelper lintian git)"
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
	if printf '%s\n' "$listing" | grep -Eq "^$mode root/root +[0-9]+ [0-9-]+ [0-9:]+ \./${path//./\\.}\$"; then
		ok "contains $mode /$path"
	else
		not_ok "contains $mode /$path" "dpkg-deb -c says:" \
			"$(printf '%s\n' "$listing" | grep -F -- "${path##*/}" || echo '(nothing of that name)')"
	fi
}
expect_file -rw-r--r-- "lib/$multiarch/security/pam_mailauth.so"
expect_file -rwxr-xr-x usr/bin/mailauth
expect_file -rw-r--r-- usr/share/man/man1/mailauth.1.gz
expect_file -rw-r--r-- usr/share/man/man5/pam_mailauth.conf.5.gz
expect_file -rw-r--r-- usr/share/man/man8/pam_mailauth.8.gz
expect_file -rw------- etc/security/pam_mailauth.conf
expect_file -rw-r--r-- usr/share/pam-configs/mailauth
expect_file -rw-r--r-- usr/share/doc/libpam-mailauth/copyright
for f in "$root"/conf/*; do
	expect_file -rw-r--r-- "usr/share/doc/libpam-mailauth/examples/$(basename "$f")"
done

conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null)
if printf '%s\n' "$conffiles" | grep -qx '/etc/security/pam_mailauth.conf'; then
	ok "conffiles lists /etc/security/pam_mailauth.conf"
else
	not_ok "conffiles lists /etc/security/pam_mailauth.conf" "conffiles: $conffiles"
fi

control=$(dpkg-deb -f "$deb")
for field in 'Package: libpam-mailauth' 'Section: admin' 'Priority: optional'; do
	if printf '%s\n' "$control" | grep -qx "$field"; then
		ok "control: $field"
	else
		not_ok "control: $field" "$control"
	fi
done
if printf '%s\n' "$control" | grep -q '^Depends:.*libpam-runtime'; then
	ok "control: Depends on libpam-runtime (pam-auth-update)"
else
	not_ok "control: Depends on libpam-runtime (pam-auth-update)" "$control"
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
if scripts_code "$ctrl/postinst" | grep -q 'pam-auth-update --package' &&
	! scripts_code "$ctrl/postinst" | grep -q 'pam-auth-update.*--enable'; then
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
if [ -n "$exports" ] && ! printf '%s\n' "$exports" | grep -qv '^pam_sm_'; then
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

for page in man1/mailauth.1 man5/pam_mailauth.conf.5 man8/pam_mailauth.8; do
	gz=$root_fs/usr/share/man/$page.gz
	out=$(zcat "$gz" >"$work/page" 2>&1 &&
		LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l "$work/page" 2>&1 >/dev/null)
	if [ $? -eq 0 ] && [ -z "$out" ]; then
		ok "packaged $page renders without warnings"
	else
		not_ok "packaged $page renders without warnings" "$out"
	fi
done

# --- lintian ----------------------------------------------------------------------

lint=$(lintian --fail-on none "$deb" 2>&1 | grep -v 'running with root privileges is not recommended')
if printf '%s\n' "$lint" | grep -q '^E: '; then
	not_ok "lintian: no errors" "$lint"
else
	ok "lintian: no errors"
fi
# Warnings and the rest, for the record.
printf '%s\n' "$lint" | grep -E '^[WIPX]: ' | sed 's/^/# lintian: /'

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
