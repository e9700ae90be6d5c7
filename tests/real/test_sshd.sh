#!/bin/bash
# tests/real/test_sshd.sh - the main use case end to end: a real OpenSSH sshd whose PAM
# stack puts pam_mailauth.so in front of pam_unix, an ssh client (sshpass) logging in
# with the mail password kept by the private Dovecot. The auth stack is the one shipped
# in conf/pam.d-sshd (its auth lines, with only the module's path and config= put in
# by sed), so the shipped example is what is proven; account: pam_unix, as there.
#
# What is real: /usr/sbin/sshd (privilege separation, re-exec, keyboard-interactive in
# its PAM child, password authentication in the monitor), local accounts in
# /etc/passwd, the module, Dovecot. What is not: the PAM configuration directory.
# sshd always uses the PAM service "sshd"; pam_wrapper (LD_PRELOAD on sshd, inherited
# through its re-exec) points it at $MA_TMP/test_sshd/pam.d, so /etc/pam.d and /etc/ssh
# are never touched. sshd listens on 127.0.0.1 only, port Dovecot's base + 20 (or the
# next free one), with its own host key, config and pid file.
#
# sshd only logs in users that exist locally, so for the duration of the test:
#   alice  uid 2001 (or the next free uid)  a normal account: mail password works;
#                                           local (pam_unix) password: the WRONG mail
#                                           password the test uses, so that only
#                                           default=die stops pam_unix accepting it
#   erin   a free uid below 1000            a system-range account: refused by
#                                           minimum_uid even with the right mail
#                                           password; her local password works
# Both are created with useradd (no home, GECOS marker "pam_mailauth test_sshd"), get
# their local password with chpasswd, and are removed on exit, even on failure (userdel
# takes the shadow entries with them); the backups useradd, chpasswd and userdel leave
# (/etc/passwd-, /etc/shadow- ...) are put back, and the test checks that the account
# files are byte-identical afterwards. Accounts with these names that the test did not
# create are used as they are and never deleted nor given a password (then the checks
# that need the local password fail, saying so). bob and dave@example.org have Dovecot
# accounts but no local one: sshd hands PAM OpenSSH's placeholder password instead of
# theirs, and the module must refuse without contacting Dovecot.
#
# Needs root, openssh-server, openssh-client, sshpass, libpam-wrapper. Run by
# tests/run-tests.sh, or on its own (then it starts and stops a Dovecot itself).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"

SSHD=/usr/sbin/sshd
MARK="pam_mailauth test_sshd"
work=$MA_TMP/test_sshd
t_start=$SECONDS

own_dovecot=0
[ -n "${MA_TEST_IMAP_STARTTLS_PORT:-}" ] || own_dovecot=1

# --- preconditions ---------------------------------------------------------------------

missing=()
[ "$(id -u)" -eq 0 ] || missing+=("root (sshd and useradd)")
[ -x "$SSHD" ] || missing+=("openssh-server ($SSHD)")
command -v ssh >/dev/null || missing+=("openssh-client (ssh)")
command -v ssh-keygen >/dev/null || missing+=("openssh-client (ssh-keygen)")
command -v sshpass >/dev/null || missing+=("sshpass")
command -v useradd >/dev/null || missing+=("passwd (useradd)")
[ -f "$MA_MODULE" ] || missing+=("$MA_MODULE (run make first)")
if [ ${#missing[@]} -gt 0 ]; then
	not_ok "test_sshd prerequisites" "missing: ${missing[*]}" \
		"install: apt-get install openssh-server openssh-client sshpass libpam-wrapper"
	ma_done
	exit 1
fi

# Two runs of this test at once (two work trees, two engineers) would share the
# accounts and the backups of the account files: one at a time on this machine.
lockdir=/run/lock
[ -d "$lockdir" ] && [ -w "$lockdir" ] || lockdir=/tmp
exec 9>>"$lockdir/mailauth-test-sshd.lock"
if ! flock -w 150 9; then
	not_ok "another tests/real/test_sshd.sh is running on this machine (waited 150 s)"
	ma_done
	exit 1
fi

ma_need_dovecot
dlog=$MA_TEST_DOVECOT_LOG
rm -rf "$work"
mkdir -p "$work/pam.d"
chmod 755 "$work"
slog=$work/sshd.log
: >"$slog"

# --- cleanup (also on failure and on signals) -------------------------------------------

sshd_pid=""
created_run_sshd=0
etc_files="passwd group shadow gshadow subuid subgid"
run_id="$$-$(date +%s%N)"

# Directories pam_wrapper made for our sshd processes (/tmp/pam.X): they hold a copy of
# our service directory, marker file included. sshd's children end with _exit(), so
# pam_wrapper's destructor never removes theirs.
remove_pwrap_dirs() {
	local d pid
	for d in /tmp/pam.?; do
		[ -f "$d/zz-mailauth-test-sshd" ] || continue
		pid=$(cat "$d/pid" 2>/dev/null || true)
		if [ -n "$pid" ] && [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
			continue
		fi
		rm -rf "$d"
	done
}

stop_sshd() {
	local p n
	[ -n "$sshd_pid" ] || return 0
	# Connection processes still around (there should be none): by parent pid.
	for p in $(pgrep -P "$sshd_pid" 2>/dev/null); do
		kill "$p" 2>/dev/null || true
	done
	kill "$sshd_pid" 2>/dev/null || true
	n=50
	while kill -0 "$sshd_pid" 2>/dev/null && [ $n -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	kill -KILL "$sshd_pid" 2>/dev/null || true
	wait "$sshd_pid" 2>/dev/null || true
	sshd_pid=""
}

# Only accounts carrying our marker: an earlier alice or erin is never touched.
ours() {
	getent passwd "$1" | cut -d: -f5 | grep "^$MARK" >/dev/null
}

remove_users() {
	local u p
	for u in alice erin; do
		ours "$u" || continue
		# userdel refuses while the user runs processes: end them (by uid).
		for p in $(pgrep -U "$u" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null || true
		done
		userdel "$u" >/dev/null 2>&1 || userdel -f "$u" >/dev/null 2>&1 || true
	done
}

# After userdel the account files are as before; put back the "-" backups useradd and
# userdel rewrote, but only when the main file is indeed unchanged.
restore_etc_backups() {
	local f
	for f in $etc_files; do
		if [ -e "/etc/$f" ] && [ -e "$work/etc-before/$f" ] && cmp -s "/etc/$f" "$work/etc-before/$f" &&
			[ -e "$work/etc-before/$f-" ] && ! cmp -s "/etc/$f-" "$work/etc-before/$f-"; then
			cp -p "$work/etc-before/$f-" "/etc/$f-"
		fi
	done
}

broker_pid=""
cleanup() {
	if [ -n "$broker_pid" ]; then
		kill -TERM "$broker_pid" 2>/dev/null
		wait "$broker_pid" 2>/dev/null
		broker_pid=""
	fi
	"$here/dovecot.sh" stop "$work/broker/dovecot" $((MA_TEST_IMAP_STARTTLS_PORT + 50)) >/dev/null 2>&1
	stop_sshd
	remove_users
	restore_etc_backups
	if [ $created_run_sshd = 1 ]; then
		rmdir /run/sshd 2>/dev/null || true
		created_run_sshd=0
	fi
	remove_pwrap_dirs
}

# Accounts left by an interrupted earlier run go first; then the account files as they
# are now, to compare and restore at the end.
remove_users
mkdir -p "$work/etc-before"
for f in $etc_files; do
	for g in "/etc/$f" "/etc/$f-"; do
		[ -e "$g" ] && cp -p "$g" "$work/etc-before/"
	done
done

on_exit() {
	cleanup
	if [ $own_dovecot = 1 ]; then
		ma_dovecot_stop >/dev/null 2>&1 || true
	fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# --- local accounts ----------------------------------------------------------------------

free_uid() { # free_uid FROM TO STEP
	local u
	for u in $(seq "$1" "$3" "$2"); do
		if ! getent passwd "$u" >/dev/null && ! getent group "$u" >/dev/null; then
			echo "$u"
			return 0
		fi
	done
	return 1
}

# local_user NAME UID_FROM UID_TO STEP: make sure NAME is a local account; prints its uid.
local_user() {
	local name=$1 uid entry
	entry=$(getent passwd "$name" || true)
	if [ -n "$entry" ]; then
		echo "# $name is already a local account; using it as it is" >&2
		echo "$entry" | cut -d: -f3
		return 0
	fi
	uid=$(free_uid "$2" "$3" "$4") || return 1
	useradd -M -N -g users -l -d / -s /bin/sh -u "$uid" -c "$MARK (temporary)" "$name" >&2 || return 1
	echo "$uid"
}

alice_uid=$(local_user alice 2001 2999 1)
erin_uid=$(local_user erin 999 500 -1)
if [ -n "${alice_uid:-}" ] && [ "$alice_uid" -ge 1000 ]; then
	ok "local account alice (uid $alice_uid) for the test"
else
	not_ok "local account alice (uid >= 1000) for the test" "uid: ${alice_uid:-none}"
fi
erin_ok=0
if [ -n "${erin_uid:-}" ] && [ "$erin_uid" -lt 1000 ]; then
	erin_ok=1
	ok "local account erin (uid $erin_uid, below minimum_uid) for the test"
else
	not_ok "local account erin (uid < 1000) for the test" "uid: ${erin_uid:-none}"
fi

# Local (pam_unix) passwords, for our accounts only. alice's is the wrong mail password
# used below: a rejected mail password is final only if pam_unix never gets to try it.
ALICE_LOCAL_PW="wrong-$MA_PW_ALICE"
ERIN_LOCAL_PW="erin-local-$$"
alice_local=0
erin_local=0
set_local_password() { # set_local_password USER PASSWORD
	ours "$1" || return 1
	printf '%s:%s\n' "$1" "$2" | chpasswd >&2
}
if set_local_password alice "$ALICE_LOCAL_PW"; then
	alice_local=1
	ok "alice's local password is set to the wrong mail password used below"
else
	not_ok "alice's local password is set to the wrong mail password used below" \
		"alice is not an account this test created (or chpasswd failed): not changed"
fi
if [ $erin_ok = 1 ] && set_local_password erin "$ERIN_LOCAL_PW"; then
	erin_local=1
	ok "erin's local password is set"
else
	not_ok "erin's local password is set" "erin is not an account this test created (or chpasswd failed)"
fi

nolocal=()
for u in bob dave@example.org; do
	if getent passwd "$u" >/dev/null; then
		echo "# $u is a local account here: not used as the no-local-account case"
	else
		nolocal+=("$u")
	fi
done

# --- module configuration, PAM service, sshd -------------------------------------------

conf=$work/pam_mailauth.conf
ma_write_config "$conf" <<EOF
timeout = 5
ca_file = "$MA_CERTS/ca.pem"
server dovecot {
  protocol = imap
  host = "127.0.0.1"
  port = $MA_TEST_IMAPS_PORT
  tls = implicit
}
EOF

# The sshd stack shipped in conf/pam.d-sshd: mail password first and final when wrong
# (default=die), local password (pam_unix) as the fallback when the mail server is
# unavailable, the configuration broken, or the user not one of its. Its auth lines as
# they are (pam_unix's 2 s failure delay included), the module's path and config= put
# in; its account part includes common-account (pam_unix), so: pam_unix.
shipped=$MA_ROOT/conf/pam.d-sshd
{
	grep -E '^auth[[:space:]]' "$shipped" | sed "s|[^[:space:]]*pam_mailauth\.so|$MA_MODULE config=$conf|"
	printf '%s\n' 'account  required  pam_unix.so' 'session  required  pam_permit.so' \
		'password required  pam_deny.so'
} >"$work/pam.d/sshd"
shipped_auth=$(grep -cE '^auth[[:space:]]' "$shipped")
if [ "$shipped_auth" -ge 2 ] &&
	[ "$(grep -cE '^auth[[:space:]]' "$work/pam.d/sshd")" -eq "$shipped_auth" ] &&
	grep -E "^auth[[:space:]]+\[[^]]*default=die[^]]*\][[:space:]]+$MA_MODULE config=$conf\$" "$work/pam.d/sshd" >/dev/null &&
	grep -E '^auth[[:space:]]+\[success=1 default=ignore\][[:space:]]+pam_unix\.so .*try_first_pass' "$work/pam.d/sshd" >/dev/null; then
	ok "sshd's PAM stack: the $shipped_auth auth lines of conf/pam.d-sshd, with the built module"
else
	not_ok "sshd's PAM stack: the auth lines of conf/pam.d-sshd, with the built module" "$(cat "$work/pam.d/sshd")"
fi
# pam_unix alone, to check the local passwords themselves (pamtester + pam_wrapper, in
# the helpers' service directory).
printf 'auth required pam_unix.so nodelay\naccount required pam_unix.so\n' >"$(ma_pam_dir)/sshd-unix-only"
printf 'auth required pam_deny.so\naccount required pam_deny.so\nsession required pam_deny.so\npassword required pam_deny.so\n' \
	>"$work/pam.d/other"
echo "$run_id" >"$work/pam.d/zz-mailauth-test-sshd"

port=""
for p in $(seq $((MA_TEST_IMAP_STARTTLS_PORT + 20)) $((MA_TEST_IMAP_STARTTLS_PORT + 29))); do
	if ! ma_port_listening 127.0.0.1 "$p"; then
		port=$p
		break
	fi
done

ssh-keygen -q -t ed25519 -N '' -C mailauth-test-sshd -f "$work/hostkey" </dev/null
sconf=$work/sshd_config
cat >"$sconf" <<EOF
# Private sshd for tests/real/test_sshd.sh; not the system's.
ListenAddress 127.0.0.1:${port:-0}
HostKey $work/hostkey
PidFile $work/sshd.pid
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication yes
PubkeyAuthentication no
AuthorizedKeysFile none
HostbasedAuthentication no
GSSAPIAuthentication no
PermitRootLogin no
PermitEmptyPasswords no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
MaxAuthTries 3
LoginGraceTime 30
LogLevel VERBOSE
EOF
# OpenSSH 9.8+ penalises addresses whose logins fail: every client here is 127.0.0.1.
if "$SSHD" -T -f "$sconf" 2>/dev/null | grep -i '^persourcepenalties' >/dev/null; then
	echo "PerSourcePenalties no" >>"$sconf"
fi

if [ ! -d /run/sshd ]; then
	mkdir -m 755 /run/sshd && created_run_sshd=1
fi

if [ -z "$port" ]; then
	not_ok "a free port for sshd" "ports $((MA_TEST_IMAP_STARTTLS_PORT + 20))..+9 all in use"
elif ! out=$("$SSHD" -t -f "$sconf" 2>&1); then
	not_ok "sshd accepts the private configuration" "$out" "$(cat "$sconf")"
else
	pre=$(ma_preload)
	deepbind=0
	[ "$pre" = libpam_wrapper.so ] || deepbind=1
	# sshd re-execs itself per connection with the same environment, so pam_wrapper is
	# in every process that calls PAM. PAM_WRAPPER_DEBUGLEVEL=2 prints the module's
	# pam_syslog lines into sshd's log (never 3: it traces PAM_AUTHTOK). sshd clears
	# the environment of its keyboard-interactive PAM child, so only the password
	# method's module lines show there.
	env LD_PRELOAD="$pre" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$work/pam.d" \
		PAM_WRAPPER_DEBUGLEVEL=2 PAM_WRAPPER_DISABLE_DEEPBIND=$deepbind \
		ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" \
		"$SSHD" -D -e -f "$sconf" </dev/null >>"$slog" 2>&1 9>&- &
	sshd_pid=$!
	if ma_wait_port 127.0.0.1 "$port" 100 && kill -0 "$sshd_pid" 2>/dev/null; then
		ok "sshd (pid $sshd_pid) listens on 127.0.0.1:$port with the module in its PAM stack"
	else
		not_ok "sshd listens on 127.0.0.1:$port" "$(tail -n 20 "$slog")"
		sshd_pid_dead=1
	fi
fi

if [ -z "$sshd_pid" ] || [ -n "${sshd_pid_dead:-}" ]; then
	cleanup
	ma_done
	exit 1
fi

# --- the ssh client ----------------------------------------------------------------------

# ssh_login METHOD USER PASSWORD: one login running a command; sets SSH_RC, SSH_OUT.
# METHOD is keyboard-interactive (sshd asks PAM's questions) or password.
ssh_login() {
	local method=$1 user=$2 password=$3
	# shellcheck disable=SC2016 # $(id -un) is for the remote shell
	SSH_OUT=$(SSHPASS=$password timeout 20 sshpass -e \
		ssh -F /dev/null -T \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
		-o PubkeyAuthentication=no -o GSSAPIAuthentication=no \
		-o PreferredAuthentications="$method" -o NumberOfPasswordPrompts=1 \
		-o ConnectTimeout=10 -p "$port" -l "$user" 127.0.0.1 \
		'echo "logged-in-as-$(id -un)"' 2>&1 </dev/null 9>&-)
	SSH_RC=$?
}

# expect_login METHOD USER PASSWORD DESC: the command ran as USER.
expect_login() {
	local t0=$SECONDS
	ssh_login "$1" "$2" "$3"
	if [ "$SSH_RC" -eq 0 ] && [[ $SSH_OUT == *"logged-in-as-$2"* ]]; then
		ok "$4 ($((SECONDS - t0))s)"
	else
		not_ok "$4" "ssh exit status $SSH_RC; output:" "$SSH_OUT" "sshd log:" "$(log_since "$slog" | tail -n 15)"
	fi
}

# expect_refused METHOD USER PASSWORD DESC: ssh says "Permission denied", exit 255, and
# the command did not run.
expect_refused() {
	local t0=$SECONDS
	ssh_login "$1" "$2" "$3"
	if [ "$SSH_RC" -eq 255 ] && [[ $SSH_OUT == *"Permission denied"* ]] && [[ $SSH_OUT != *logged-in-as* ]]; then
		ok "$4 ($((SECONDS - t0))s)"
	else
		not_ok "$4" "ssh exit status $SSH_RC (expected 255, Permission denied); output:" "$SSH_OUT" \
			"sshd log:" "$(log_since "$slog" | tail -n 15)"
	fi
}

mark() {
	log_mark "$dlog"
	log_mark "$slog"
}

# Dovecot logs every connection its login process handled as "imap-login: ...".
NO_CONTACT='imap-login:'

# --- alice: a local account with a mail password -----------------------------------------

for method in keyboard-interactive password; do
	mark
	expect_login "$method" alice "$MA_PW_ALICE" "$method: alice, right mail password: the command runs as alice"
	expect_log "$dlog" 'imap-login: .*Login: user=<alice>, method=SCRAM-SHA-256, .*TLS' \
		"$method: Dovecot logged alice in over TLS"
	expect_log "$slog" "Accepted $method(/pam)? for alice from 127\.0\.0\.1" \
		"$method: sshd: Accepted $method for alice"

	mark
	expect_refused "$method" alice "wrong-$MA_PW_ALICE" \
		"$method: alice, wrong mail password (= her local password): Permission denied"
	expect_log "$dlog" 'imap-login: .*\(auth failed, [0-9]+ attempts.*user=<alice>' \
		"$method: Dovecot saw alice's failed attempt"
	expect_no_log "$dlog" 'Login: user=<alice>' "$method: no Dovecot login for the wrong password"
	expect_log "$slog" "Failed $method(/pam)? for alice from 127\.0\.0\.1" \
		"$method: sshd: Failed $method for alice"
done

# With the password method PAM runs in sshd's monitor, whose environment keeps
# pam_wrapper's log level: the module's own lines are in sshd's log.
mark
expect_login password alice "$MA_PW_ALICE" "password: alice again"
expect_log "$slog" 'SYSLOG\(6\): server=dovecot host=127\.0\.0\.1 .*tls=TLSv1\.[23] mechanism=SCRAM-SHA-256 user=alice result=ok' \
	"sshd log: the module's line for alice (server, TLS, SCRAM-SHA-256, result=ok)"
mark
expect_refused password alice "wrong-$MA_PW_ALICE" "password: alice, wrong password again"
expect_log "$slog" 'SYSLOG\(6\): server=dovecot .*user=alice result=auth-failed' \
	"sshd log: the module's line for alice's rejection (result=auth-failed)"
# pam_unix logs "authentication failure; ..." or "check pass; ..." whenever it runs and
# fails, nothing when it succeeds: its absence and the refusal together say it never ran.
expect_no_log "$slog" 'SYSLOG\([0-9]\): (check pass;|authentication failure; logname=)' \
	"sshd log: after the mail server's rejection pam_unix never ran (default=die)"

# The local password is indeed alice's (pam_unix alone accepts it), so the refusals
# above are the stack's doing: with default=ignore, pam_unix would have let her in.
if [ $alice_local = 1 ]; then
	MA_PAM_NO_SANITIZER=1 expect_pam sshd-unix-only alice "$ALICE_LOCAL_PW" "$MA_PAM_SUCCESS" \
		"pam_unix alone accepts alice's local password (the wrong mail password)"
	MA_PAM_NO_SANITIZER=1 expect_pam sshd-unix-only alice "$MA_PW_ALICE" "$MA_PAM_AUTH_ERR" \
		"pam_unix alone refuses alice's mail password (not her local one)"
fi
if grep -qF -- "$MA_PW_ALICE" "$slog"; then
	not_ok "sshd log does not contain alice's password" "$(grep -nF -- "$MA_PW_ALICE" "$slog" | head -n 3)"
else
	ok "sshd log does not contain alice's password"
fi

# --- mail users without a local account: OpenSSH's placeholder password --------------------

for u in "${nolocal[@]}"; do
	case $u in
	bob) pw=$MA_PW_BOB ;;
	*) pw=$MA_PW_DAVE ;;
	esac
	for method in keyboard-interactive password; do
		mark
		expect_refused "$method" "$u" "$pw" \
			"$method: $u (Dovecot account, right password, no local account): refused"
		expect_log "$slog" "Invalid user $u from 127\.0\.0\.1" "$method: sshd: Invalid user $u"
		expect_no_log "$dlog" "$NO_CONTACT" "$method: $u: the placeholder never reached Dovecot"
	done
	# The password method's module line names the reason.
	if log_since "$slog" | grep "SYSLOG(5): user $u: OpenSSH placeholder password" >/dev/null; then
		ok "sshd log: the module recognised OpenSSH's placeholder for $u"
	else
		not_ok "sshd log: the module recognised OpenSSH's placeholder for $u" "$(log_since "$slog" | tail -n 15)"
	fi
done

# --- root and a system-range account: minimum_uid -------------------------------------------

for method in keyboard-interactive password; do
	mark
	expect_refused "$method" root "some-password" "$method: root: refused"
	expect_no_log "$dlog" "$NO_CONTACT" "$method: root: no connection to Dovecot"
done
expect_log "$slog" 'SYSLOG\(5\): user root: local uid 0 is below minimum_uid' \
	"sshd log: the module turned root away (minimum_uid)"

if [ $erin_ok = 1 ]; then
	for method in keyboard-interactive password; do
		mark
		expect_refused "$method" erin "$MA_PW_ERIN" \
			"$method: erin (uid $erin_uid < 1000) with the right mail password: refused"
		expect_no_log "$dlog" "$NO_CONTACT" "$method: erin: no connection to Dovecot"
	done
	expect_log "$slog" "SYSLOG\\(5\\): user erin: local uid $erin_uid is below minimum_uid 1000" \
		"sshd log: the module turned erin away (minimum_uid)"
	# user_unknown=ignore: pam_unix takes over, with the local password.
	if [ $erin_local = 1 ]; then
		for method in keyboard-interactive password; do
			mark
			expect_login "$method" erin "$ERIN_LOCAL_PW" \
				"$method: erin with her local password: logged in by pam_unix (user_unknown=ignore)"
			expect_no_log "$dlog" "$NO_CONTACT" "$method: erin, local password: no connection to Dovecot"
		done
	fi
fi

# --- the same sshd through mailauthd (issue "[T2 2/3]") ------------------------------------
# The module line becomes broker=SOCKET (sshd re-execs per connection, and pam_wrapper
# copies the service directory at each start, so new connections take it). The broker
# runs as nobody against a Dovecot of this test's own, which is then stopped: alice,
# who logged in before, still gets in from her offline verifier; a password that is
# neither her mail nor her local one does not.
bdbase=$((MA_TEST_IMAP_STARTTLS_PORT + 50))
bdir=$work/broker
bsock=$bdir/run/socket
bdlog=$bdir/dovecot/dovecot.log
blog=$bdir/mailauthd.log
mkdir -p "$bdir/run" "$bdir/state"
chown nobody:nogroup "$bdir/run" "$bdir/state"
chmod 755 "$bdir" "$bdir/run"
chmod 700 "$bdir/state"
touch "$blog"
if "$here/dovecot.sh" start "$bdir/dovecot" "$bdbase" >"$bdir/dovecot-start.log" 2>&1; then
	printf '%s\n' 'timeout = 5' "ca_file = \"$MA_CERTS/ca.pem\"" 'cache_ttl = 0' 'offline_ttl = 3600' \
		"state_dir = \"$bdir/state\"" "server dovecot { host = \"127.0.0.1\" port = $((bdbase + 1)) }" \
		>"$bdir/broker.conf"
	chown root:nogroup "$bdir/broker.conf"
	chmod 640 "$bdir/broker.conf"
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$MA_ROOT/mailauthd" -f \
		-c "$bdir/broker.conf" -s "$bsock" 2>>"$blog" &
	broker_pid=$!
	for _ in $(seq 50); do [ -S "$bsock" ] && break; sleep 0.1; done
	sed -i "s|$MA_MODULE config=$conf|$MA_MODULE broker=$bsock|" "$work/pam.d/sshd"
	if [ -S "$bsock" ] && grep -q "pam_mailauth.so broker=$bsock\$" "$work/pam.d/sshd"; then
		ok "broker: mailauthd (as nobody) serves sshd's shipped stack, module argument broker="
	else
		not_ok "broker: mailauthd (as nobody) serves sshd's shipped stack" "$(tail -n 5 "$blog")" \
			"$(cat "$work/pam.d/sshd")"
	fi
	mark
	log_mark "$bdlog"
	log_mark "$blog"
	# The wrong password first: a rejection drops the user's offline verifier, and
	# the right one below stores it again.
	expect_refused keyboard-interactive alice "wrong-$MA_PW_ALICE" \
		"broker: alice's wrong mail password (= her local one) is final (default=die)"
	expect_login password alice "$MA_PW_ALICE" "broker: alice logs in over ssh through the broker"
	expect_log "$bdlog" 'Login: user=<alice>, method=SCRAM-SHA-256' "broker: the broker's Dovecot logged alice in"
	expect_log "$blog" 'auth service=sshd user=alice rhost=127\.0\.0\.1 result=ok source=network' \
		"broker: the broker logged sshd's request with PAM_RHOST"
	sleep 0.5     # the verifier is computed after the answer (scrypt)
	"$here/dovecot.sh" stop "$bdir/dovecot" "$bdbase" >/dev/null 2>&1
	log_mark "$blog"
	expect_login keyboard-interactive alice "$MA_PW_ALICE" \
		"broker, Dovecot stopped: alice gets in with her mail password (offline)"
	expect_log "$blog" 'user=alice .*result=ok-offline source=offline' "broker: logged result=ok-offline"
	expect_refused password alice "neither-$MA_PW_ALICE" \
		"broker, Dovecot stopped: a password that is neither her mail nor her local one is refused"
	kill -TERM "$broker_pid" 2>/dev/null
	wait "$broker_pid" 2>/dev/null
	broker_pid=""
	expect_refused password alice "neither-$MA_PW_ALICE" \
		"broker gone: refused (the local fallback still asks pam_unix, which says no)"
	sed -i "s|$MA_MODULE broker=$bsock|$MA_MODULE config=$conf|" "$work/pam.d/sshd"
else
	not_ok "broker: a Dovecot of the test's own on port $bdbase" "$(tail -n 20 "$bdir/dovecot-start.log")"
fi

# --- sshd survived all of it ------------------------------------------------------------

mark
expect_login keyboard-interactive alice "$MA_PW_ALICE" "keyboard-interactive: alice once more at the end"
if kill -0 "$sshd_pid" 2>/dev/null && ma_port_listening 127.0.0.1 "$port"; then
	ok "sshd still running and listening"
else
	not_ok "sshd still running and listening" "$(tail -n 20 "$slog")"
fi
# (pam_wrapper prints the module's LOG_ERR lines as "PWRAP_ERROR ... SYSLOG(3)": those
# are log lines, not pam_wrapper's own errors.)
crash='segmentation|signal 11|abort|stack smashing|double free|AddressSanitizer|runtime error|PWRAP_ERROR'
if grep -Ei "$crash" "$slog" | grep -v '\] - SYSLOG([0-9])' | grep -q .; then
	not_ok "sshd log: no crash, sanitizer or pam_wrapper error" \
		"$(grep -Ei "$crash" "$slog" | grep -v '\] - SYSLOG([0-9])' | head -n 10)"
else
	ok "sshd log: no crash, sanitizer or pam_wrapper error"
fi

# --- nothing left behind ---------------------------------------------------------------

cleanup
leftover=""
for f in $etc_files; do
	if [ -e "$work/etc-before/$f" ] && ! cmp -s "/etc/$f" "$work/etc-before/$f"; then
		leftover="$leftover /etc/$f"
	fi
done
for u in alice erin; do
	if ours "$u"; then
		leftover="$leftover account:$u"
	fi
done
if [ -n "$leftover" ]; then
	not_ok "local accounts removed, account files as before" "changed:$leftover"
else
	ok "local accounts removed, /etc/passwd, group, shadow, gshadow, subuid, subgid as before"
fi
if pgrep -f -- "-f $sconf" >/dev/null 2>&1; then
	not_ok "no sshd process left" "$(pgrep -af -- "-f $sconf")"
else
	ok "no sshd process left"
fi
left_dirs=$(grep -l -x -F "$run_id" /tmp/pam.?/zz-mailauth-test-sshd 2>/dev/null || true)
if [ -n "$left_dirs" ]; then
	not_ok "no pam_wrapper directory left in /tmp" "$left_dirs"
else
	ok "no pam_wrapper directory left in /tmp"
fi
echo "# test_sshd took $((SECONDS - t_start))s"

ma_done
