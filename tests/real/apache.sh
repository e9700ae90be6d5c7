#!/bin/bash
# tests/real/apache.sh start|stop|status DIR PORT [PAM_SERVICE_DIR [PAM_LINES]]
#
# A private Apache 2.4 (Debian's apache2 and libapache2-mod-authnz-pam; the system's
# /etc/apache2 and its service are neither used nor touched) with one location behind
# HTTP Basic authentication through PAM:
#
#   GET /private/   AuthType Basic, AuthBasicProvider PAM, AuthPAMService SERVICE,
#                   Require valid-user: mod_authnz_pam calls pam_start(SERVICE, user),
#                   answers the password prompt, then pam_authenticate() and
#                   pam_acct_mgmt(); 200 and "ok" when both succeed, else 401
#   GET /           no authentication (200): is the server up
#
# on 127.0.0.1:PORT only, event MPM, started as root (-DFOREGROUND, in the background
# of this script) with its workers running as www-data (User/Group). Every request
# authenticates anew: mod_authnz_pam has no cache, and nothing here adds
# mod_authn_socache.
#
# Everything lives in DIR: httpd.conf (the only configuration file, ServerRoot is
# DIR), htdocs/, logs/ (error.log: Apache's errors, mod_authnz_pam's "PAM
# authentication failed" lines and, with MA_HTTPD_PAM=wrapper (see below), the PAM
# module's pam_syslog lines, "SYSLOG(6): server=... result=ok"; access.log:
# '%h %u %t "%r" %>s %D', %D in microseconds; stdout.log: what Apache prints before
# it opens error.log), run/ (httpd.pid, DefaultRuntimeDir).
#
# Worker sizing (environment): MA_HTTPD_THREADS threads per child (default 25),
# MA_HTTPD_SERVERS children at most (ServerLimit, default 4), StartServers 2, so 50
# threads answer at once from the start and up to SERVERS * THREADS under load.
# KeepAlive is on (unlimited requests per connection).
#
# PAM without touching /etc/pam.d: by default (MA_HTTPD_PAM=namespace) a private mount
# namespace, as in tests/real/freeradius.sh: `unshare --mount --propagation private`,
# PAM_SERVICE_DIR bind-mounted on /etc/pam.d inside it only (root can; the system's
# /etc/pam.d is not modified, no other process sees the mount, it goes away with
# Apache), and the real libpam reads it in the workers after the switch to www-data.
#
# MA_HTTPD_PAM=wrapper uses pam_wrapper instead (LD_PRELOAD=libpam_wrapper.so,
# PAM_WRAPPER=1, PAM_WRAPPER_SERVICE_DIR=PAM_SERVICE_DIR, as tests/lib/common.sh's
# ma_pamtester). It works here: Apache loads mod_authnz_pam with plain dlopen(RTLD_NOW
# | RTLD_GLOBAL) (APR; FreeRADIUS' RTLD_DEEPBIND is what defeats it there), and
# although pam_wrapper copies the service directory into a new /tmp/pam.? (mode 0755)
# when a process starts, after a fork() (pthread_atfork) the child makes its own copy
# at its first pam_start(): Apache's worker children do that AS www-data, so
# PAM_SERVICE_DIR must be readable by www-data (it is made so here). It is not the
# default because those copies share one namespace of 62 names (/tmp/pam.[0-9A-Za-z])
# with every other pam_wrapper process on the machine, and pam_wrapper ignores a
# mkdir() that fails with EEXIST: two processes starting at once can share a copy,
# and the first to exit deletes it under the other. Seen here once, most likely that:
# one worker's pam_start() failed ("no default config other": its copy was gone) in a
# 1000-request run while another test suite ran pamtester. stop removes the copies
# that killed workers left behind.
#
# In the namespace mode the PAM module's pam_syslog() lines are lost (there is no
# syslog daemon here); with pam_wrapper they go to stderr ("PWRAP_DEBUG[...] -
# SYSLOG(6): ..."), which Apache points at logs/error.log; PAM_WRAPPER_DEBUGLEVEL
# defaults to 2 (never 3, which traces PAM_AUTHTOK). Preloading libpam_wrapper.so
# without PAM_WRAPPER=1, only to get those lines, does not work: its pam_start()
# then crashes the worker (SIGSEGV).
# A sanitizer build of the module (make asan) gets its runtimes preloaded (first, and
# PAM_WRAPPER_DISABLE_DEEPBIND=1 with pam_wrapper), as tests/lib/common.sh does.
#
# PAM_SERVICE_DIR: the PAM service directory (see above). When PAM_LINES is given (one or
# more lines of a PAM service file, e.g.
#   "auth required /path/pam_mailauth.so config=/path/httpd.conf"  or
#   "auth required /path/pam_mailauth.so broker=/run/mailauthd.sock"),
# the service file PAM_SERVICE_DIR/$MA_HTTPD_PAM_SERVICE (default mailauth-httpd) is
# written from it, with "account required pam_permit.so" added when it has no account
# line (mod_authnz_pam calls pam_acct_mgmt), and "other" (deny) when missing. Without
# PAM_LINES the service file must already be there. Default PAM_SERVICE_DIR: DIR/pam.d.
# MA_HTTPD_USER: the worker user (default www-data).
#
# start stops a stale instance for DIR first, refuses a port that is in use, and
# returns once the port listens and / answers (at most 15 s); stop sends SIGTERM to
# the parent (the children follow; SIGKILL after 10 s) when its command line names
# DIR/httpd.conf, and waits until the port is free.
#
# Debian's postinst of apache2 would start the system service; under policy-rc.d (as
# on these machines) it does not, and in any case it listens on port 80, not on the
# ports the tests use.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"

usage() {
	echo "usage: $0 start|stop|status DIR PORT [PAM_SERVICE_DIR [PAM_LINES]]" >&2
	exit 2
}
if [ $# -lt 3 ] || [ $# -gt 5 ]; then
	usage
fi
cmd=$1
dir=$2
port=$3
case $port in
'' | *[!0-9]*) usage ;;
esac
if [ "$port" -lt 1024 ] || [ "$port" -gt 65535 ]; then
	echo "$0: PORT must be within 1024..65535" >&2
	exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
pamdir=${4:-$dir/pam.d}
pam_lines=${5:-}
service=${MA_HTTPD_PAM_SERVICE:-mailauth-httpd}
run_user=${MA_HTTPD_USER:-www-data}
threads=${MA_HTTPD_THREADS:-25}
servers=${MA_HTTPD_SERVERS:-4}
pam_mode=${MA_HTTPD_PAM:-namespace}
case $pam_mode in namespace | wrapper) ;; *)
	echo "$0: MA_HTTPD_PAM must be namespace or wrapper" >&2
	exit 2
	;;
esac
conf=$dir/httpd.conf
pidfile=$dir/run/httpd.pid
modules=/usr/lib/apache2/modules

# pid of the parent for DIR: run/httpd.pid, when that process runs apache2 with
# "-f DIR/httpd.conf" (a recycled pid is not ours).
daemon_pid() {
	local p cmdline
	[ -s "$pidfile" ] || return 1
	p=$(cat "$pidfile" 2>/dev/null) || return 1
	case $p in '' | *[!0-9]*) return 1 ;; esac
	cmdline=$({ tr '\0' '\n' <"/proc/$p/cmdline"; } 2>/dev/null) || return 1
	printf '%s\n' "$cmdline" | grep -qxF -- "$conf" || return 1
	printf '%s\n' "$p"
}

alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# children PID: the pids whose parent is PID.
children() {
	local s ppid
	for s in /proc/[0-9]*/stat; do
		ppid=$(awk '{print $4}' "$s" 2>/dev/null) || continue
		if [ "$ppid" = "$1" ]; then
			s=${s#/proc/}
			printf '%s\n' "${s%/stat}"
		fi
	done
}

# pam_wrapper_cleanup PIDS...: the /tmp/pam.? copies pam_wrapper made for these
# processes (named in their "pid" file), once the process is gone.
pam_wrapper_cleanup() {
	local d p q
	for d in /tmp/pam.?; do
		[ -f "$d/pid" ] || continue
		p=$(cat "$d/pid" 2>/dev/null) || continue
		for q in "$@"; do
			if [ "$p" = "$q" ] && ! alive "$p"; then
				rm -rf "$d"
			fi
		done
	done
}

stop() {
	local p n kids
	p=$(daemon_pid) || {
		rm -f "$pidfile"
		return 0
	}
	kids=$(children "$p")
	kill "$p" 2>/dev/null || true
	n=100
	while alive "$p" && [ $n -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	if alive "$p"; then
		kill -KILL "$p" 2>/dev/null || true
	fi
	for q in $kids; do
		n=30
		while alive "$q" && [ $n -gt 0 ]; do
			sleep 0.1
			n=$((n - 1))
		done
		if alive "$q"; then
			kill -KILL "$q" 2>/dev/null || true
		fi
	done
	n=50
	while ma_port_listening 127.0.0.1 "$port" && [ $n -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	sleep 0.1
	# shellcheck disable=SC2086 # a list of pids
	pam_wrapper_cleanup "$p" $kids
	rm -f "$pidfile"
}

# write_pam: the service file from PAM_LINES (and "other"), readable by the workers.
write_pam() {
	mkdir -p "$pamdir"
	chmod 755 "$pamdir"
	if [ -n "$pam_lines" ]; then
		{
			printf '%s\n' "$pam_lines"
			if ! printf '%s\n' "$pam_lines" | grep -Eq '^[[:space:]]*-?account[[:space:]]'; then
				printf 'account required pam_permit.so\n'
			fi
		} >"$pamdir/$service"
	fi
	if [ ! -f "$pamdir/other" ]; then
		printf 'auth required pam_deny.so\naccount required pam_deny.so\n' >"$pamdir/other"
	fi
	if [ ! -f "$pamdir/$service" ]; then
		echo "$0: no PAM service file $pamdir/$service (give PAM_LINES)" >&2
		exit 1
	fi
	find "$pamdir" -maxdepth 1 -type f -exec chmod 644 {} +
	if ! runuser -u "$run_user" -- test -r "$pamdir/$service"; then
		echo "$0: $pamdir/$service is not readable by $run_user (a parent directory?)" >&2
		exit 1
	fi
}

write_conf() {
	mkdir -p "$dir/htdocs/private" "$dir/logs" "$dir/run"
	printf 'up\n' >"$dir/htdocs/index.html"
	printf 'ok\n' >"$dir/htdocs/private/index.html"
	chmod -R a+rX "$dir/htdocs"
	chmod 755 "$dir"
	cat >"$conf" <<CONF
# Generated by tests/real/apache.sh: private test instance, not the system's.
ServerRoot "$dir"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$pidfile"
DefaultRuntimeDir "$dir/run"
ErrorLog "$dir/logs/error.log"
LogLevel warn
LogFormat "%h %u %t \"%r\" %>s %D" timed
User $run_user
Group $run_user

LoadModule mpm_event_module $modules/mod_mpm_event.so
LoadModule authn_core_module $modules/mod_authn_core.so
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule authz_user_module $modules/mod_authz_user.so
LoadModule auth_basic_module $modules/mod_auth_basic.so
LoadModule authnz_pam_module $modules/mod_authnz_pam.so
LoadModule dir_module $modules/mod_dir.so

CustomLog "$dir/logs/access.log" timed

StartServers 2
ServerLimit $servers
ThreadsPerChild $threads
ThreadLimit $threads
MaxRequestWorkers $((servers * threads))
MinSpareThreads $threads
MaxSpareThreads $((servers * threads))
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 5
Timeout 60

DocumentRoot "$dir/htdocs"
DirectoryIndex index.html
<Directory />
	AllowOverride None
	Require all denied
</Directory>
<Directory "$dir/htdocs">
	Require all granted
</Directory>
<Location "/private">
	AuthType Basic
	AuthName "pam_mailauth test"
	AuthBasicProvider PAM
	AuthPAMService $service
	Require valid-user
</Location>
CONF
	rm -f "$dir/logs/error.log" "$dir/logs/access.log"
}

start() {
	local pre deepbind=0 n p wrap ns
	stop
	if ma_port_listening 127.0.0.1 "$port"; then
		echo "$0: TCP port $port is already in use:" >&2
		ss -Hltnp "sport = :$port" >&2 || true
		exit 1
	fi
	write_pam
	write_conf
	if ! apache2 -d "$dir" -f "$conf" -t >"$dir/logs/configtest.log" 2>&1; then
		echo "$0: configuration test failed:" >&2
		cat "$dir/logs/configtest.log" >&2
		exit 1
	fi
	if [ "$pam_mode" = wrapper ]; then
		pre=$(ma_preload)
		[ "$pre" = libpam_wrapper.so ] || deepbind=1
		wrap=(LD_PRELOAD="$pre" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$pamdir"
			PAM_WRAPPER_DEBUGLEVEL="${PAM_WRAPPER_DEBUGLEVEL:-2}"
			PAM_WRAPPER_DISABLE_DEEPBIND="$deepbind")
		ns=()
	else
		pre=$(ma_sanitizer_preload)
		wrap=(${pre:+LD_PRELOAD="$pre"})
		# shellcheck disable=SC2016 # expanded by that inner shell
		ns=(unshare --mount --propagation private -- /bin/sh -c '
			mount --bind "$1" /etc/pam.d || exit 1
			shift
			exec "$@"' sh "$pamdir")
	fi
	# In the background (unshare and the shell exec, so $! is Apache's parent), with
	# its working directory in DIR; it keeps no descriptor of the caller's stdio (a
	# test runner reading our output would wait for it otherwise).
	(
		cd "$dir"
		exec "${ns[@]}" env "${wrap[@]}" ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" \
			apache2 -d "$dir" -f "$conf" -DFOREGROUND \
			</dev/null >>"$dir/logs/stdout.log" 2>&1
	) &
	p=$!
	n=150
	while [ $n -gt 0 ]; do
		if ma_port_listening 127.0.0.1 "$port" && daemon_pid >/dev/null &&
			curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null; then
			return 0
		fi
		alive "$p" || break
		sleep 0.1
		n=$((n - 1))
	done
	echo "$0: Apache did not start on 127.0.0.1:$port; its logs:" >&2
	tail -n 30 "$dir/logs/error.log" "$dir/logs/stdout.log" >&2 2>/dev/null || true
	kill "$p" 2>/dev/null || true
	exit 1
}

case $cmd in
start) start ;;
stop) stop ;;
status)
	if p=$(daemon_pid) && alive "$p"; then
		echo "running, pid $p, http://127.0.0.1:$port/"
	else
		echo "not running"
		exit 1
	fi
	;;
*) usage ;;
esac
