# shellcheck shell=bash disable=SC2034
# tests/lib/common.sh - shell helpers for the script tests. Source it from bash:
#
#   . "$(dirname "$0")/../lib/common.sh"
#
# Paths
#   MA_ROOT      repository root (from this file's location, or $MA_TEST_ROOT)
#   MA_MODULE    $MA_ROOT/pam_mailauth.so (override: MA_TEST_MODULE)
#   MA_TOOL      $MA_ROOT/mailauth
#   MA_TMP       scratch directory: $MA_TEST_TMP, else $MA_ROOT/tests/tmp
#   MA_CERTS     test PKI (tests/lib/certs.sh): $MA_TEST_CERTS, else $MA_TMP/certs
#
# Test accounts on the private Dovecot (tests/real/dovecot.sh); use these variables
# rather than retyping the passwords:
#   alice            MA_PW_ALICE  {PLAIN}
#   bob              MA_PW_BOB    {PLAIN}; space, double quotes, two backslashes
#   carol            MA_PW_CAROL  SHA512-CRYPT: only PLAIN/LOGIN can work
#   dave@example.org MA_PW_DAVE   {PLAIN}
#   erin             MA_PW_ERIN   SCRAM-SHA-256: SCRAM-SHA-256 and PLAIN/LOGIN work
#
# Assertions (each prints exactly one line "ok - DESC" or "not ok - DESC"):
#   ok DESC / not_ok DESC [DETAIL...]   record a result by hand
#   check DESC CMD [ARGS...]            ok when CMD succeeds
#   expect_pam SERVICE USER PASSWORD EXPECTED_TEXT [DESC]
#   expect_log LOGFILE REGEX DESC       REGEX (grep -E) among the lines added since the
#                                       last log_mark LOGFILE
#   expect_no_log LOGFILE REGEX DESC    ... and its opposite
#   ma_done                             prints "# N passed, N failed"; returns 1 if any
#                                       failed or none ran (use: ma_done; exit $?)
#
# PAM (pam_wrapper + pamtester, nothing under /etc is touched):
#   ma_pam_dir                          the service directory ($MA_TMP/pam.d, created)
#   ma_pam_service NAME CONF [ARGS...]  writes service NAME: auth and account lines for
#                                       $MA_MODULE config=CONF ARGS
#   ma_write_config FILE                module configuration from stdin, mode 0600
#   ma_pamtester SERVICE USER PASSWORD [OPS...]
#                                       runs pamtester (OPS default: authenticate),
#                                       password on stdin; sets MA_PAM_RC and MA_PAM_OUT
#                                       (stdout+stderr, including the module's
#                                       pam_syslog lines that pam_wrapper prints at
#                                       PAM_WRAPPER_DEBUGLEVEL=2, the default here;
#                                       never use 3: it traces PAM_AUTHTOK)
#
# Logs:
#   log_mark FILE                       remember FILE's size; log_since FILE prints what
#                                       was appended after the mark
#
# The private Dovecot (tests/real/dovecot.sh in $MA_TMP/dovecot):
#   ma_dovecot_start [BASEPORT]         certificates + Dovecot, exports MA_TEST_* (ports
#                                       BASEPORT..+3, MA_TEST_DOVECOT_LOG, ...)
#   ma_dovecot_stop
#   ma_need_dovecot                     in a test script: start one (and stop it on exit)
#                                       unless the runner already did
#
# Ports: ma_wait_port HOST PORT [TENTHS], ma_port_listening HOST PORT, ma_closed_port.
#
# pamtester prints "pamtester: successfully authenticated" on success, otherwise
# "pamtester: " followed by pam_strerror():
#   PAM_AUTH_ERR          Authentication failure
#   PAM_AUTHINFO_UNAVAIL  Authentication service cannot retrieve authentication info
#   (not "Authentication information cannot be recovered": that is PAM_AUTHTOK_RECOVERY_ERR)
#   PAM_USER_UNKNOWN      User not known to the underlying authentication module
#   PAM_SERVICE_ERR       Error in service module
# The MA_PAM_* variables below hold these texts.

MA_ROOT=${MA_TEST_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MA_MODULE=${MA_TEST_MODULE:-$MA_ROOT/pam_mailauth.so}
MA_TOOL=$MA_ROOT/mailauth
MA_TMP=${MA_TEST_TMP:-$MA_ROOT/tests/tmp}
MA_CERTS=${MA_TEST_CERTS:-$MA_TMP/certs}

MA_PW_ALICE='alice-secret'
MA_PW_BOB='bob pass "quoted" \\ back'
MA_PW_CAROL='carol-secret'
MA_PW_DAVE='dave-secret'
MA_PW_ERIN='erin-secret'

MA_PAM_SUCCESS='successfully authenticated'
MA_PAM_AUTH_ERR='Authentication failure'
MA_PAM_AUTHINFO_UNAVAIL='Authentication service cannot retrieve authentication info'
MA_PAM_USER_UNKNOWN='User not known to the underlying authentication module'
MA_PAM_SERVICE_ERR='Error in service module'
MA_PAM_ACCT_OK='account management done'

MA_PASSED=0
MA_FAILED=0

ok() {
	MA_PASSED=$((MA_PASSED + 1))
	printf 'ok - %s\n' "$1"
}

# not_ok DESC [DETAIL...]: details go out as "#" comment lines after the result.
not_ok() {
	local line
	MA_FAILED=$((MA_FAILED + 1))
	printf 'not ok - %s\n' "$1"
	shift
	for line in "$@"; do
		printf '%s\n' "$line" | sed 's/^/#   /'
	done
}

check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc" "command failed: $*" "$out"
	fi
}

ma_done() {
	printf '# %d passed, %d failed\n' "$MA_PASSED" "$MA_FAILED"
	[ "$MA_FAILED" -eq 0 ] && [ "$MA_PASSED" -gt 0 ]
}

# --- PAM -------------------------------------------------------------------------

ma_pam_dir() {
	local d=$MA_TMP/pam.d
	mkdir -p "$d"
	# pam_wrapper falls back to "other" for unknown services; make that deny, quietly.
	if [ ! -f "$d/other" ]; then
		printf 'auth required pam_deny.so\naccount required pam_deny.so\n' >"$d/other"
	fi
	printf '%s\n' "$d"
}

# ma_pam_service NAME CONF [MODULE ARGS...]
ma_pam_service() {
	local name=$1 conf=$2 d
	shift 2
	d=$(ma_pam_dir)
	{
		printf 'auth required %s config=%s' "$MA_MODULE" "$conf"
		[ $# -eq 0 ] || printf ' %s' "$@"
		printf '\naccount required %s config=%s' "$MA_MODULE" "$conf"
		[ $# -eq 0 ] || printf ' %s' "$@"
		printf '\n'
	} >"$d/$name"
}

# ma_write_config FILE < text: the module refuses group/world-writable files.
ma_write_config() {
	local f=$1
	mkdir -p "$(dirname "$f")"
	(umask 077 && cat >"$f")
	chmod 600 "$f"
}

# When the module is built with sanitizers (make asan), their runtimes must be loaded
# before anything else in pamtester, which is not instrumented, and before any other
# preloaded library (nss_wrapper) in the tool.  ma_sanitizer_preload prints them
# (colon-separated, empty for a normal build).  MA_PAM_NO_SANITIZER=1 leaves them out
# of ma_preload, for a PAM stack without the module: ASan's crypt() interceptor
# calls a null pointer when pam_unix brings libcrypt in after start-up.
ma_sanitizer_preload() {
	local pre="" lib path
	for lib in libasan.so libubsan.so; do
		if readelf -d "$MA_MODULE" 2>/dev/null | grep "NEEDED.*\[$lib" >/dev/null; then
			path=$(${CC:-cc} -print-file-name="$lib" 2>/dev/null)
			[ -e "$path" ] && pre="$pre${pre:+:}$path"
		fi
	done
	printf '%s\n' "$pre"
}

ma_preload() {
	local pre=""
	[ "${MA_PAM_NO_SANITIZER:-0}" = 1 ] || pre=$(ma_sanitizer_preload)
	printf '%s\n' "$pre${pre:+:}libpam_wrapper.so"
}

ma_pamtester() {
	local service=$1 user=$2 password=$3 pre deepbind=0 errexit=0
	shift 3
	[ $# -gt 0 ] || set -- authenticate
	pre=$(ma_preload)
	[ "$pre" = libpam_wrapper.so ] || deepbind=1
	# pamtester's failure is a result here, not an error; the caller's errexit setting
	# is put back as it was (a script without set -e must not get it from here).
	case $- in *e*) errexit=1 ;; esac
	set +e
	MA_PAM_OUT=$(printf '%s\n' "$password" |
		timeout 60 env LD_PRELOAD="$pre" PAM_WRAPPER=1 \
			PAM_WRAPPER_SERVICE_DIR="$(ma_pam_dir)" \
			PAM_WRAPPER_DEBUGLEVEL="${PAM_WRAPPER_DEBUGLEVEL:-2}" \
			PAM_WRAPPER_DISABLE_DEEPBIND=$deepbind \
			ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" \
			pamtester -v "$service" "$user" "$@" 2>&1)
	MA_PAM_RC=$?
	[ $errexit = 0 ] || set -e
}

# expect_pam SERVICE USER PASSWORD EXPECTED_TEXT [DESC]
# EXPECTED_TEXT is matched as a fixed string against the pamtester result line;
# "successfully authenticated" additionally requires exit status 0, any other text a
# non-zero one.
expect_pam() {
	local service=$1 user=$2 password=$3 expected=$4
	local desc=${5:-"$service: $user -> $expected"} result
	ma_pamtester "$service" "$user" "$password"
	# A prompt the module printed without a newline ("Password: ", pam_unix on success)
	# may precede the result on its line.
	result=$(printf '%s\n' "$MA_PAM_OUT" | sed -E 's/^([A-Za-z][A-Za-z ]*: )+(pamtester: )/\2/' |
		grep '^pamtester: ' | grep -v '^pamtester: invoking' | tail -n 1)
	if [ "$expected" = "$MA_PAM_SUCCESS" ]; then
		if [ "$MA_PAM_RC" -eq 0 ] && [[ $result == *"$expected"* ]]; then
			ok "$desc"
			return 0
		fi
	elif [ "$MA_PAM_RC" -ne 0 ] && [ "$MA_PAM_RC" -ne 124 ] && [[ $result == *"$expected"* ]]; then
		ok "$desc"
		return 0
	fi
	not_ok "$desc" "expected: $expected" "exit status $MA_PAM_RC; pamtester said:" "$MA_PAM_OUT"
	return 0
}

# --- logs ------------------------------------------------------------------------

# log_mark FILE: later expect_log / log_since look only at lines written after this.
declare -A MA_LOG_MARK=()
log_mark() {
	local f=$1
	MA_LOG_MARK[$f]=$(stat -c %s "$f" 2>/dev/null || echo 0)
}

log_since() {
	local f=$1 from=${MA_LOG_MARK[$1]:-0}
	[ -f "$f" ] || return 0
	tail -c +$((from + 1)) "$f"
}

# Dovecot writes its log through a separate process, so lines arrive shortly after
# the client is done: expect_log polls for up to 3 s, expect_no_log waits 0.3 s first.
expect_log() {
	local f=$1 re=$2 desc=$3 n=30
	while [ $n -gt 0 ]; do
		if log_since "$f" | grep -E -- "$re" >/dev/null; then
			ok "$desc"
			return 0
		fi
		sleep 0.1
		n=$((n - 1))
	done
	not_ok "$desc" "no line matching /$re/ in $f since the mark; new lines:" "$(log_since "$f" | tail -n 20)"
}

expect_no_log() {
	local f=$1 re=$2 desc=$3
	sleep 0.3
	if log_since "$f" | grep -E -- "$re" >/dev/null; then
		not_ok "$desc" "unexpected line(s) matching /$re/ in $f:" "$(log_since "$f" | grep -E -- "$re" | tail -n 5)"
	else
		ok "$desc"
	fi
}

# --- the private Dovecot ---------------------------------------------------------

# ma_dovecot_env BASEPORT: exports the MA_TEST_* variables that describe the Dovecot
# that tests/real/dovecot.sh runs in $MA_TMP/dovecot on BASEPORT.
ma_dovecot_env() {
	local base=$1
	export MA_TEST_ROOT=$MA_ROOT MA_TEST_TMP=$MA_TMP MA_TEST_CERTS=$MA_CERTS
	export MA_TEST_DOVECOT_DIR=$MA_TMP/dovecot
	export MA_TEST_DOVECOT_LOG=$MA_TMP/dovecot/dovecot.log
	export MA_TEST_IMAP_STARTTLS_PORT=$base
	export MA_TEST_IMAPS_PORT=$((base + 1))
	export MA_TEST_SUBMISSION_PORT=$((base + 2))
	export MA_TEST_SUBMISSIONS_PORT=$((base + 3))
}

# ma_dovecot_start [BASEPORT]: certificates, then Dovecot; default port
# $MA_TEST_BASEPORT or 20143.
ma_dovecot_start() {
	local base=${1:-${MA_TEST_BASEPORT:-20143}}
	"$MA_ROOT/tests/lib/certs.sh" "$MA_CERTS"
	ma_dovecot_env "$base"
	"$MA_ROOT/tests/real/dovecot.sh" start "$MA_TEST_DOVECOT_DIR" "$base"
}

ma_dovecot_stop() {
	[ -n "${MA_TEST_DOVECOT_DIR:-}" ] || return 0
	"$MA_ROOT/tests/real/dovecot.sh" stop "$MA_TEST_DOVECOT_DIR" "$MA_TEST_IMAP_STARTTLS_PORT"
}

# ma_need_dovecot: for a test script run on its own. When the runner has not started
# Dovecot (MA_TEST_IMAP_STARTTLS_PORT unset), start one and stop it on exit.
ma_need_dovecot() {
	if [ -z "${MA_TEST_IMAP_STARTTLS_PORT:-}" ]; then
		ma_dovecot_start "${MA_TEST_BASEPORT:-20143}" >&2
		trap ma_dovecot_stop EXIT
	fi
}

# --- misc ------------------------------------------------------------------------

# ma_wait_port HOST PORT [TENTHS]: wait until something listens (default 10 s).
ma_wait_port() {
	local host=$1 port=$2 n=${3:-100}
	while [ "$n" -gt 0 ]; do
		if ma_port_listening "$host" "$port"; then
			return 0
		fi
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# ma_port_listening HOST PORT: a TCP listener is bound there (no connection is made,
# so servers do not log a spurious client).
ma_port_listening() {
	local host=$1 port=$2
	case $host in
	*:*) host="[$host]" ;;
	esac
	ss -Hltn "src $host:$port" 2>/dev/null | grep . >/dev/null ||
		ss -Hltn "sport = :$port" 2>/dev/null | grep -E "(\*|0\.0\.0\.0|\[::\]):$port\b" >/dev/null
}

# ma_closed_port: prints a loopback TCP port on which nothing listens right now.
ma_closed_port() {
	local p
	for p in $(seq 29990 -7 20000); do
		if ! ss -Hltn "sport = :$p" 2>/dev/null | grep . >/dev/null; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	return 1
}
