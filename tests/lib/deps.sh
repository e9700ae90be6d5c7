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
}

case "${1:-}" in
build) build ;;
demo) demo ;;
test) tests ;;
*) echo "usage: $0 build|demo|test" >&2; exit 64 ;;
esac
