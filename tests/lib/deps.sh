#!/bin/sh
# tests/lib/deps.sh build|demo|test - the Debian packages each use needs, one
# per line.  The build dependencies are read from debian/control, the one
# list of them (without debhelper-compat, which only the package build
# needs); `demo` adds what `make demo` runs, `test` what `make check`,
# `make asan`, `make fuzz` and `make analyze` run.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)

build() {
	echo build-essential
	sed -n '/^Build-Depends:/,/^[^ ]/{s/^Build-Depends://;/^[^ ]/d;p}' "$root/debian/control" |
		tr ',' '\n' | sed 's/(.*)//; s/\[.*\]//; s/^[[:space:]]*//; s/[[:space:]]*$//' |
		grep -v -e '^$' -e '^debhelper-compat$'
}
demo() {
	build
	printf '%s\n' openssl iproute2 dovecot-imapd dovecot-submissiond pamtester libpam-wrapper
}
tests() {
	demo
	# PAM test libraries, Postfix, sshd end to end, the tool comparison,
	# packaging, sanitizers, fuzzing, valgrind and static analysis.
	printf '%s\n' libpamtest0-dev postfix openssh-server openssh-client sshpass \
		python3 curl git libnss-wrapper debhelper dpkg-dev lintian mandoc clang libclang-rt-14-dev \
		valgrind cppcheck
	# Real PAM callers under load (tests/real/test_callers.sh): FreeRADIUS with
	# rlm_pam, Apache with mod_authnz_pam. Their postinst would start the system
	# services (ports 1812/1813 and 80) where policy-rc.d allows it; the tests run
	# private instances on other ports and leave those services alone.
	printf '%s\n' freeradius freeradius-utils apache2 libapache2-mod-authnz-pam
}

case "${1:-}" in
build) build ;;
demo) demo ;;
test) tests ;;
*) echo "usage: $0 build|demo|test" >&2; exit 64 ;;
esac
