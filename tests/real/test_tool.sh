#!/bin/bash
# tests/real/test_tool.sh - the `mailauth` tool (SPEC 8) against the suite's
# Dovecot: check, check -u, probe, login, and its exit statuses.
set -uo pipefail
. "$(dirname "$0")/../lib/common.sh"
ma_need_dovecot

dir=$MA_TMP/tool
mkdir -p "$dir"
conf=$dir/imap.conf
ma_write_config "$conf" <<EOF
timeout = 5
ca_file = "$MA_CERTS/ca.pem"
server imaps { protocol = imap host = "127.0.0.1" port = $MA_TEST_IMAPS_PORT tls = implicit }
server imap  { protocol = imap host = "localhost" port = $MA_TEST_IMAP_STARTTLS_PORT tls = starttls }
EOF
down=$dir/down.conf
ma_write_config "$down" <<EOF
timeout = 3
ca_file = "$MA_CERTS/ca.pem"
server gone { protocol = imap host = "127.0.0.1" port = $(ma_closed_port) tls = implicit }
EOF
local=$dir/local.conf
ma_write_config "$local" <<EOF
login = "%l"
lowercase = yes
server imaps { protocol = imap host = "127.0.0.1" port = $MA_TEST_IMAPS_PORT }
EOF
# Domains are matched on the login name, after the login format.
routed=$dir/routed.conf
ma_write_config "$routed" <<EOF
domains = {"example.org", "example.net"}
ca_file = "$MA_CERTS/ca.pem"
server org { host = "127.0.0.1" port = $MA_TEST_IMAPS_PORT domains = {"example.org"} }
server net { host = "127.0.0.1" port = $MA_TEST_IMAPS_PORT domains = {"example.net"} }
EOF

# expect_exit DESC STATUS CMD...: runs CMD, keeps its output in $out.
expect_exit() {
	local desc=$1 want=$2 rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -eq "$want" ]; then ok "$desc"; else not_ok "$desc" "exit $rc, wanted $want" "$out"; fi
}
expect_out() { # expect_out DESC REGEX (in $out)
	if grep -Eq -- "$2" <<<"$out"; then ok "$1"; else not_ok "$1" "no match for: $2" "$out"; fi
}

expect_exit "check: valid configuration" 0 "$MA_TOOL" check -c "$conf"
expect_out "check: prints the servers with effective ports" "port = $MA_TEST_IMAP_STARTTLS_PORT"
expect_out "check: default mechanisms without CRAM-MD5" "mechanisms = SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN LOGIN IMAP-LOGIN$"
expect_out "check: the effective channel_binding (default auto)" \
	"^  channel_binding = auto \\(tls-exporter on TLS 1.3, tls-unique on TLS 1.2\\)$"
cbconf=$dir/cb.conf
ma_write_config "$cbconf" <<EOF
ca_file = "$MA_CERTS/ca.pem"
server cyrus { host = "127.0.0.1" port = $MA_TEST_IMAPS_PORT channel_binding = tls-unique }
server plain { host = "127.0.0.1" port = $MA_TEST_IMAP_STARTTLS_PORT tls = none }
EOF
expect_exit "check: channel_binding per server" 0 "$MA_TOOL" check -c "$cbconf"
expect_out "check: channel_binding = tls-unique is printed" "^  channel_binding = tls-unique \\("
expect_out "check: tls = none has no channel binding" "^  channel_binding = none \\(tls = none\\)$"

expect_out "check: helo_name default" "^helo_name = \\(this host's name\\)$"
expect_exit "check: routed configuration" 0 "$MA_TOOL" check -c "$routed"
expect_out "check: the global domains" "^domains = example.org example.net$"
expect_out "check: a server's own domains" "^  domains = example.net$"
expect_exit "check -u: routed user" 0 "$MA_TOOL" check -c "$routed" -u dave@example.org
expect_out "check -u: login name" "login name dave@example.org$"
expect_out "check -u: the server for its domain" "tries server org"
if grep -q "tries server net" <<<"$out"; then not_ok "check -u: other domain's server not listed" "$out"; else ok "check -u: other domain's server not listed"; fi
expect_exit "check -u: %l format" 0 "$MA_TOOL" check -c "$local" -u Dave@Example.ORG
expect_out "check -u: %l, lower-cased" "login name dave$"
expect_exit "check -u: unrouted domain" 3 "$MA_TOOL" check -c "$routed" -u eve@example.com
expect_exit "check -u: root is refused (minimum_uid)" 3 "$MA_TOOL" check -c "$conf" -u root

# tls/port pairs against the well-known ports (RFC 8314): warnings, exit status 0.
ports=$dir/ports.conf
ma_write_config "$ports" <<EOF
ca_file = "$MA_CERTS/ca.pem"
server imap-implicit { protocol = imap host = "127.0.0.1" port = 143 tls = implicit }
server imaps-starttls { protocol = imap host = "127.0.0.1" port = 993 tls = starttls }
server sub-implicit { protocol = smtp host = "127.0.0.1" port = 587 tls = implicit }
server subs-none { protocol = smtp host = "127.0.0.1" port = 465 tls = none }
server fine { protocol = imap host = "127.0.0.1" port = 993 tls = implicit }
EOF
expect_exit "check: contradicting tls/port pairs are warnings, not errors" 0 "$MA_TOOL" check -c "$ports"
expect_out "check: warns about tls = implicit on port 143" \
	"^warning: server imap-implicit: tls = implicit on port 143: .*use tls = starttls, or port 993"
expect_out "check: warns about tls = starttls on port 993" \
	"^warning: server imaps-starttls: tls = starttls on port 993: .*implicit TLS.*use tls = implicit"
expect_out "check: warns about tls = implicit on port 587" \
	"^warning: server sub-implicit: tls = implicit on port 587: .*use tls = starttls, or port 465"
expect_out "check: warns about tls = none on port 465" \
	"^warning: server subs-none: tls = none on port 465: .*use tls = implicit"
if grep -q "warning: server fine" <<<"$out"; then not_ok "check: no warning for tls = implicit on 993" "$out"; else ok "check: no warning for tls = implicit on 993"; fi
expect_exit "check -u: the warnings too" 0 "$MA_TOOL" check -c "$ports" -u alice
expect_out "check -u: warns about tls = starttls on port 993" "^warning: server imaps-starttls: "
expect_exit "check: the suite's configuration has no warning" 0 "$MA_TOOL" check -c "$conf"
if grep -q "^warning:" <<<"$out"; then not_ok "check: no warning for usual pairs" "$out"; else ok "check: no warning for usual pairs"; fi

bad=$dir/bad.conf
ma_write_config "$bad" <<EOF
timeout = 5
server x {
  host = "127.0.0.1"
  tls = sometimes
}
EOF
expect_exit "check: invalid configuration exits 4" 4 "$MA_TOOL" check -c "$bad"
expect_out "check: error names file and line" "bad.conf:4"
expect_exit "check: missing configuration exits 4" 4 "$MA_TOOL" check -c "$dir/nonexistent.conf"
expect_exit "usage error exits 64" 64 "$MA_TOOL" frobnicate -c "$conf"

log_mark "$MA_TEST_DOVECOT_LOG"
expect_exit "probe: both servers fine" 0 "$MA_TOOL" probe -c "$conf"
expect_out "probe: TLS version and cipher" "TLS: TLSv1\.[23] "
expect_out "probe: certificate subject and issuer" "certificate: subject=.* issuer=.*expires="
expect_out "probe: capabilities before STARTTLS" "capabilities before TLS: .*STARTTLS"
expect_out "probe: capabilities after TLS" "capabilities after TLS: .*AUTH=PLAIN"
expect_out "probe: chosen mechanism" "mechanism: SCRAM-SHA-256"
expect_no_log "$MA_TEST_DOVECOT_LOG" "auth.*(passdb|login|mech)" "probe: no authentication reached Dovecot"
expect_exit "probe SERVER: only that one" 0 "$MA_TOOL" probe -c "$conf" imap
if grep -q "server imaps" <<<"$out"; then not_ok "probe SERVER: other server not probed" "$out"; else ok "probe SERVER: other server not probed"; fi
expect_exit "probe: server down exits 2" 2 "$MA_TOOL" probe -c "$down"

expect_exit "login: right password exits 0" 0 "$MA_TOOL" login -c "$conf" alice <<<"$MA_PW_ALICE"
expect_out "login: says accepted with the mechanism" "^accepted: ok \(server imaps, TLSv1\.[23], SCRAM-SHA-256"
expect_exit "login: wrong password exits 1" 1 "$MA_TOOL" login -c "$conf" alice <<<"wrong-password"
expect_exit "login: server down exits 2" 2 "$MA_TOOL" login -c "$down" alice <<<"$MA_PW_ALICE"
expect_exit "login: root exits 3" 3 "$MA_TOOL" login -c "$conf" root <<<"whatever"
expect_exit "login: bad configuration exits 4" 4 "$MA_TOOL" login -c "$bad" alice <<<"$MA_PW_ALICE"
expect_exit "login -d: debug log" 0 "$MA_TOOL" login -d -c "$conf" alice <<<"$MA_PW_ALICE"
expect_out "login -d: the exchange is shown" "debug: C: a[0-9]+ AUTHENTICATE SCRAM-SHA-256"
if grep -Fq -- "$MA_PW_ALICE" <<<"$out"; then not_ok "login -d: no password in the output" "$out"; else ok "login -d: no password in the output"; fi

# The same for SMTP submission (SPEC 8): Dovecot's submission service.
smtp=$dir/smtp.conf
ma_write_config "$smtp" <<EOF
timeout = 5
ca_file = "$MA_CERTS/ca.pem"
helo_name = "client.example.org"
server submission  { protocol = smtp host = "localhost" port = $MA_TEST_SUBMISSION_PORT tls = starttls }
server submissions { protocol = smtp host = "127.0.0.1" port = $MA_TEST_SUBMISSIONS_PORT tls = implicit }
EOF
expect_exit "smtp probe: both servers fine" 0 "$MA_TOOL" probe -c "$smtp"
expect_out "smtp probe: EHLO keywords before STARTTLS" "capabilities before TLS: .*STARTTLS"
expect_out "smtp probe: AUTH after TLS" "capabilities after TLS: .*AUTH"
expect_out "smtp probe: TLS and certificate" "certificate: subject=.*"
expect_out "smtp probe: chosen mechanism" "mechanism: SCRAM-SHA-256"
expect_exit "smtp login: right password exits 0" 0 "$MA_TOOL" login -c "$smtp" alice <<<"$MA_PW_ALICE"
expect_out "smtp login: accepted by the first server" "^accepted: ok \(server submission, TLSv1\.[23], SCRAM-SHA-256"
expect_exit "smtp login: wrong password exits 1" 1 "$MA_TOOL" login -c "$smtp" alice <<<"wrong-password"
expect_exit "smtp login -d: debug" 0 "$MA_TOOL" login -d -c "$smtp" carol <<<"$MA_PW_CAROL"
ehlos=$(grep -cx "debug: C: EHLO client\.example\.org" <<<"$out")
starttls_line=$(grep -n "debug: C: STARTTLS" <<<"$out" | cut -d: -f1)
second_ehlo=$(grep -nx "debug: C: EHLO client\.example\.org" <<<"$out" | sed -n 2p | cut -d: -f1)
if [ "$ehlos" = 2 ] && [ -n "$starttls_line" ] && [ "${second_ehlo:-0}" -gt "$starttls_line" ]; then
	ok "smtp login -d: EHLO with the configured name, again after TLS"
else
	not_ok "smtp login -d: EHLO with the configured name, again after TLS" "$out"
fi
expect_out "smtp login -d: PLAIN fallback for a SHA512-CRYPT user" "falling back to PLAIN"
if grep -Fq -- "$MA_PW_CAROL" <<<"$out"; then not_ok "smtp login -d: no password in the output" "$out"; else ok "smtp login -d: no password in the output"; fi

# The password is read with read(2) straight into the tool's own buffer, which is
# wiped: no copy stays in stdio's stdin buffer (issue [T2 1/3]).  heapscan.so looks
# for it in the process's heap when the tool exits.  Not under the sanitizers, whose
# allocator keeps memory where heapscan does not look (their own build of the test
# would prove nothing, so it is not run there and not counted).
if [ -z "$(ma_sanitizer_preload)" ]; then
	marker='Heap-Scan-Marker-7Q2'
	printf '%s\n' "$marker" | MA_HEAPSCAN_SECRET=$marker MA_HEAPSCAN_OUT=$dir/heapscan.out \
		LD_PRELOAD=$MA_ROOT/tests/harness/heapscan.so "$MA_TOOL" login -c "$down" alice >/dev/null 2>&1
	scan=$(cat "$dir/heapscan.out" 2>/dev/null || echo "no result")
	if [[ $scan == clean:* ]]; then
		ok "login: no copy of the password left in the heap at exit ($scan)"
	else
		not_ok "login: no copy of the password left in the heap at exit" "$scan"
	fi
	# Control: the scan finds what is there (a copy the program leaves: cat's buffer).
	printf '%s\n' "$marker" | MA_HEAPSCAN_SECRET=$marker MA_HEAPSCAN_OUT=$dir/heapscan.out \
		LD_PRELOAD=$MA_ROOT/tests/harness/heapscan.so sed -n p >/dev/null 2>&1
	scan=$(cat "$dir/heapscan.out" 2>/dev/null || echo "no result")
	if [[ $scan == found* ]]; then
		ok "control: the heap scan finds a password that sed left in its buffers ($scan)"
	else
		not_ok "control: the heap scan finds a password that sed left in its buffers" "$scan"
	fi
fi
# A password longer than the buffer is refused, not cut.
expect_exit "login: a 5000-byte password is refused, not cut" 64 \
	bash -c 'head -c 5000 /dev/zero | tr "\\0" x | "$1" login -c "$2" alice' _ "$MA_TOOL" "$down"
expect_out "login: says the password is too long" 'password longer than'

ma_done
