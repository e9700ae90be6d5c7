#!/bin/bash
# tests/lib/install-deps.sh build|demo|test - make sure the Debian packages
# that use needs (tests/lib/deps.sh) are installed: as root, install the
# missing ones (Postfix preseeded to "No configuration": the tests run a
# private instance); otherwise print the apt-get command and fail.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

missing=()
for p in $("$here/deps.sh" "${1:?usage: $0 build|demo|test}"); do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "missing Debian packages: ${missing[*]}" >&2
	echo "install them as root:  apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
