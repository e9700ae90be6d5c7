#!/bin/bash
# tests/real/test_failover.sh - the one timeout is shared between the addresses of a
# host (SPEC 2: "next address on failure while time remains"): a name whose first
# address never completes a TCP handshake still logs in through its second one.
#
# nss_wrapper (NSS_WRAPPER_HOSTS) makes "two.test" resolve to 127.0.0.2 first, then
# 127.0.0.1, without touching /etc/hosts (glibc keeps the order of two IPv4 addresses;
# Dovecot holds [::1]:PORT).  On 127.0.0.2:PORT a listener with a full accept
# queue makes Linux drop every further SYN, so connect() there hangs like a host
# behind a dropping firewall; 127.0.0.1:PORT is the suite's Dovecot (IMAPS).  With a
# timeout of 4 s the first address gets half of it, then Dovecot answers.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"

ma_need_dovecot
work=$MA_TMP/test_failover
rm -rf "$work"
mkdir -p "$work"

nsswrap=$(dpkg -L libnss-wrapper 2>/dev/null | grep -m1 '/libnss_wrapper\.so$' || true)
if [ -z "$nsswrap" ]; then
	not_ok "libnss-wrapper is installed (tests/lib/deps.sh test lists it)"
	ma_done
	exit 1
fi
port=$MA_TEST_IMAPS_PORT
printf '127.0.0.2 two.test\n127.0.0.1 two.test\n' >"$work/hosts"
wrap=(env LD_PRELOAD="$nsswrap" NSS_WRAPPER_HOSTS="$work/hosts"
	NSS_WRAPPER_PASSWD=/etc/passwd NSS_WRAPPER_GROUP=/etc/group)

# The SYN-dropping listener: backlog 0, the queue filled by connections nobody
# accepts; it prints "ready" once a further connect() no longer completes.
python3 - "$port" >"$work/dropper.out" 2>&1 <<'EOF' &
import socket, sys, time
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.2", port))
s.listen(0)
fillers = []
for _ in range(4):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.settimeout(0.3)
    try:
        c.connect(("127.0.0.2", port))
        fillers.append(c)
    except OSError:
        print("ready", flush=True)     # this connect() hung: the queue is full
        break
else:
    print("queue never filled", flush=True)
time.sleep(30)
EOF
dropper=$!
trap 'kill $dropper 2>/dev/null || true' EXIT
for _ in $(seq 50); do
	grep -q . "$work/dropper.out" 2>/dev/null && break
	sleep 0.1
done
if grep -qx ready "$work/dropper.out"; then
	ok "a connect() to 127.0.0.2:$port hangs (full accept queue)"
else
	not_ok "a connect() to 127.0.0.2:$port hangs (full accept queue)" "$(cat "$work/dropper.out")"
fi

order=$("${wrap[@]}" python3 -c '
import socket
print(" ".join(a[4][0] for a in socket.getaddrinfo("two.test", 1, socket.AF_UNSPEC,
      socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG)))')
if [ "$order" = "127.0.0.2 127.0.0.1" ]; then
	ok "two.test resolves to 127.0.0.2, then 127.0.0.1"
else
	not_ok "two.test resolves to 127.0.0.2, then 127.0.0.1 (else the test proves nothing)" "got: $order"
fi

ma_write_config "$work/two.conf" <<EOF
timeout = 4
ca_file = "$MA_CERTS/ca.pem"
server d { protocol = imap host = "two.test" port = $port tls = implicit verify_name = "localhost" }
EOF

# make asan: the tool's sanitizer runtime must come before nss_wrapper.
san=$(ma_sanitizer_preload)
tool=(env LD_PRELOAD="$san${san:+:}$nsswrap" NSS_WRAPPER_HOSTS="$work/hosts"
	NSS_WRAPPER_PASSWD=/etc/passwd NSS_WRAPPER_GROUP=/etc/group)
t0=$(date +%s%N)
rc=0
out=$("${tool[@]}" "$MA_TOOL" login -c "$work/two.conf" alice <<<"$MA_PW_ALICE" 2>&1) || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$rc" -eq 0 ]; then
	ok "login through the second address (exit 0, ${ms} ms)"
else
	not_ok "login through the second address" "exit $rc after ${ms} ms" "$out"
fi
# The first address had its half (2 s), not the whole timeout; the total stays in it.
if [ "$ms" -ge 1800 ] && [ "$ms" -lt 3800 ]; then
	ok "the hanging address got its share of the timeout, not all of it (${ms} ms of 4000)"
else
	not_ok "the hanging address got its share of the timeout, not all of it" "${ms} ms"
fi

ma_done
