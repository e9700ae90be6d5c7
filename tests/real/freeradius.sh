#!/bin/bash
# tests/real/freeradius.sh start|stop|status DIR PORT [PAM_SERVICE_DIR [PAM_LINES]]
#
# A private FreeRADIUS 3 (Debian's freeradius package; the system's /etc/freeradius
# and its service are neither used nor touched) that sends every Access-Request to PAM:
#
#   authorize     Auth-Type := PAM, for every request
#   authenticate  Auth-Type PAM { pam0 }: rlm_pam calls pam_start(SERVICE, User-Name),
#                 answers the password prompt with User-Password, then
#                 pam_authenticate() and pam_acct_mgmt()
#
# It listens for authentication only, on 127.0.0.1:PORT (UDP), with one client,
# 127.0.0.1, whose shared secret is $MA_FR_SECRET (default below; also written to
# DIR/secret, mode 0600). It starts as root and drops to the user freerad (security
# { user, group }), as the Debian service does, and runs in the foreground (-f:
# threaded; -X would make it single-threaded and log every password) in the
# background of this script, with its working directory in DIR.
#
# Everything lives in DIR: raddb/radiusd.conf (the only configuration file), log/
# (radius.log: the server's log, one "Auth: Login OK/incorrect" line per request;
# stdout.log: whatever the daemon prints before it detaches its stdio), run/
# (freeradius.pid).
#
# PAM without touching /etc/pam.d: a private mount namespace. pam_wrapper (what
# tests/lib/common.sh uses for pamtester) does NOT work in FreeRADIUS, whatever the
# user: FreeRADIUS 3 loads its modules with dlopen(RTLD_NOW | RTLD_DEEPBIND)
# (fr_dlopenext), so rlm_pam.so's references to pam_start() & co. bind to its own
# dependency libpam.so.0 ahead of the preloaded libpam_wrapper.so; pam_wrapper is
# loaded and copies its service directory, but libpam then reads the real
# /etc/pam.d/radiusd (Debian's, @include common-auth: pam_unix, 2 s delay per failure).
# So the daemon is started by `unshare --mount --propagation private` with
# PAM_SERVICE_DIR bind-mounted on /etc/pam.d inside that namespace only (root can;
# the system's /etc/pam.d is not modified and no other process sees the mount, which
# disappears with the daemon). Service files are made world-readable: libpam reads
# them after the drop to freerad. (FreeRADIUS also points its stderr at /dev/null
# unless it runs in debug mode, so pam_wrapper's printing of the module's pam_syslog
# lines would be lost anyway; use radius.log and the mail server's log.)
#
# A sanitizer build of the module (make asan): its runtimes are preloaded first, as
# tests/lib/common.sh's ma_preload does, with ASAN_OPTIONS defaulting to
# detect_leaks=0. Note that ASan aborts any dlopen() with RTLD_DEEPBIND ("incompatible
# with sanitizer runtime"), i.e. every FreeRADIUS module: start then fails, with that
# message in log/stdout.log; tests/real/test_callers.sh does not run FreeRADIUS then.
#
# PAM_SERVICE_DIR: the service directory bind-mounted on /etc/pam.d. When PAM_LINES is
# given (one or more lines of a PAM service file, e.g.
#   "auth required /path/pam_mailauth.so config=/path/radius.conf"  or
#   "auth required /path/pam_mailauth.so broker=/run/mailauthd.sock"),
# the service file PAM_SERVICE_DIR/$MA_FR_PAM_SERVICE is written from it, with
# "account required pam_permit.so" added when it has no account line (rlm_pam calls
# pam_acct_mgmt), and "other" (deny) when missing. Without PAM_LINES the service file
# must already be there. Default PAM_SERVICE_DIR: DIR/pam.d.
#
# Environment: MA_FR_SECRET, MA_FR_PAM_SERVICE (default radiusd), MA_FR_USER (default
# freerad), MA_FR_PAM_INSTANCES (default 1, see below), MA_FR_THREADS (thread pool
# size, default 32).
#
# rlm_pam is a thread-unsafe module (RLM_TYPE_THREAD_UNSAFE, "the PAM libraries are
# not thread-safe"): FreeRADIUS 3 holds a mutex per module instance around each call,
# so one instance runs ONE PAM transaction at a time, however many threads and
# requests are waiting. MA_FR_PAM_INSTANCES=N > 1 defines N identical instances
# (pam0, pam1, ...) and spreads the requests over them with "load-balance" (random
# choice), the usual FreeRADIUS workaround; the default, 1, is what a stock
# configuration does.
#
# security.reject_delay is 0 (FreeRADIUS' default is 1 s, which would add a second to
# every Access-Reject and dominate the latency figures).
#
# start stops a stale instance for DIR first, refuses a port that is in use, and
# returns once the daemon has bound the UDP port (at most 15 s); stop sends SIGTERM
# (SIGKILL after 10 s) to the daemon named in run/freeradius.pid when its command line
# names DIR/raddb.
#
# Debian's postinst of freeradius would start the system service; under policy-rc.d
# (as on these machines) it does not, and in any case it listens on 1812/1813/18120,
# not on the ports the tests use.
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
service=${MA_FR_PAM_SERVICE:-radiusd}
secret=${MA_FR_SECRET:-mailauth-radius-secret}
run_user=${MA_FR_USER:-freerad}
instances=${MA_FR_PAM_INSTANCES:-1}
threads=${MA_FR_THREADS:-32}
raddb=$dir/raddb
pidfile=$dir/run/freeradius.pid
case $instances in '' | *[!0-9]* | 0)
	echo "$0: MA_FR_PAM_INSTANCES must be a positive number" >&2
	exit 2
	;;
esac

# pid of the daemon for DIR: run/freeradius.pid, when that process runs freeradius
# with "-d DIR/raddb" (a recycled pid is not ours).
daemon_pid() {
	local p cmdline
	[ -s "$pidfile" ] || return 1
	p=$(cat "$pidfile" 2>/dev/null) || return 1
	case $p in '' | *[!0-9]*) return 1 ;; esac
	cmdline=$({ tr '\0' '\n' <"/proc/$p/cmdline"; } 2>/dev/null) || return 1
	printf '%s\n' "$cmdline" | grep -qxF -- "$raddb" || return 1
	printf '%s\n' "$p"
}

alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

udp_bound() {
	ss -Hlun "sport = :$port" 2>/dev/null | grep -q .
}

stop() {
	local p n
	p=$(daemon_pid) || {
		rm -f "$pidfile"
		return 0
	}
	kill "$p" 2>/dev/null || true
	n=100
	while alive "$p" && [ $n -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	if alive "$p"; then
		kill -KILL "$p" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

# write_pam: the service file from PAM_LINES (and "other"), world-readable.
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
	chmod 644 "$pamdir/$service" "$pamdir/other"
	if ! runuser -u "$run_user" -- test -r "$pamdir/$service"; then
		echo "$0: $pamdir/$service is not readable by $run_user (a parent directory?)" >&2
		exit 1
	fi
}

write_conf() {
	local i pam_modules="" pam_auth
	case $secret in *'"'* | *\\* | '')
		echo "$0: MA_FR_SECRET must be non-empty, without quotes or backslashes" >&2
		exit 2
		;;
	esac
	mkdir -p "$raddb" "$dir/log" "$dir/run"
	for i in $(seq 0 $((instances - 1))); do
		pam_modules="$pam_modules	pam pam$i {
		pam_auth = \"$service\"
	}
"
	done
	if [ "$instances" -eq 1 ]; then
		pam_auth="pam0"
	else
		pam_auth="load-balance {
$(for i in $(seq 0 $((instances - 1))); do printf '\t\t\t\tpam%d\n' "$i"; done)
			}"
	fi
	cat >"$raddb/radiusd.conf" <<CONF
# Generated by tests/real/freeradius.sh: private test instance, not the system's.
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = $dir/log
raddbdir = $raddb
radacctdir = $dir/log/radacct
name = freeradius
confdir = $raddb
modconfdir = $raddb/mods-config
certdir = $raddb/certs
cadir = $raddb/certs
run_dir = $dir/run
db_dir = $dir/run
libdir = /usr/lib/freeradius
pidfile = $pidfile
correct_escapes = true
max_request_time = 30
cleanup_delay = 5
max_requests = 16384
hostname_lookups = no

log {
	destination = files
	colourise = no
	file = $dir/log/radius.log
	stripped_names = no
	auth = yes
	auth_badpass = no
	auth_goodpass = no
}

security {
	user = $run_user
	group = $run_user
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = no
}

thread pool {
	start_servers = 5
	max_servers = $threads
	min_spare_servers = 3
	max_spare_servers = $threads
	max_queue_size = 65536
	max_requests_per_server = 0
	auto_limit_acct = no
}

client localhost {
	ipaddr = 127.0.0.1
	proto = udp
	secret = "$secret"
	require_message_authenticator = no
	nas_type = other
}

modules {
$pam_modules}

policy {
}

server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = $port
	}

	authorize {
		update control {
			&Auth-Type := PAM
		}
	}

	authenticate {
		Auth-Type PAM {
			$pam_auth
		}
	}

	post-auth {
	}
}
CONF
	(umask 077 && printf '%s\n' "$secret" >"$dir/secret")
	# freerad reads the configuration (again on HUP) and writes the log and pid file.
	chown -R root:"$run_user" "$raddb"
	chmod 750 "$raddb"
	chmod 640 "$raddb/radiusd.conf"
	chown "$run_user":"$run_user" "$dir/log" "$dir/run"
	chmod 755 "$dir"
	rm -f "$dir/log/radius.log" "$dir/log/stdout.log"
}

start() {
	local pre n p
	stop
	if udp_bound; then
		echo "$0: UDP port $port is already in use:" >&2
		ss -Hlunp "sport = :$port" >&2 || true
		exit 1
	fi
	write_pam
	write_conf
	pre=$(ma_sanitizer_preload)
	# The private mount namespace (see the top), then the daemon, in the background;
	# unshare and the shell exec, so $! is the daemon. It keeps no descriptor of the
	# caller's stdio (a test runner reading our output would wait for it otherwise).
	(
		cd "$dir"
		# shellcheck disable=SC2016 # expanded by that inner shell
		exec unshare --mount --propagation private -- /bin/sh -c '
			mount --bind "$1" /etc/pam.d || exit 1
			shift
			exec "$@"' sh "$pamdir" \
			env ${pre:+LD_PRELOAD="$pre"} ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" \
			freeradius -f -P -d "$raddb" -n radiusd -l "$dir/log/radius.log" \
			</dev/null >>"$dir/log/stdout.log" 2>&1
	) &
	p=$!
	n=150
	while [ $n -gt 0 ]; do
		if udp_bound && daemon_pid >/dev/null; then
			return 0
		fi
		alive "$p" || break
		sleep 0.1
		n=$((n - 1))
	done
	echo "$0: FreeRADIUS did not start on 127.0.0.1:$port; its logs:" >&2
	tail -n 30 "$dir/log/radius.log" "$dir/log/stdout.log" >&2 2>/dev/null || true
	kill "$p" 2>/dev/null || true
	exit 1
}

case $cmd in
start) start ;;
stop) stop ;;
status)
	if p=$(daemon_pid) && alive "$p"; then
		echo "running, pid $p, 127.0.0.1:$port/udp"
	else
		echo "not running"
		exit 1
	fi
	;;
*) usage ;;
esac
