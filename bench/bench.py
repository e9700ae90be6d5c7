#!/usr/bin/python3
"""bench/bench.py bench|profile - the measurements behind `make bench` and `make profile`.

Run by bench/run.sh, which starts the servers and exports BENCH_* (ports, CA, log,
password).  See bench/README.md for what is measured and how to read it.  Standard
library only.
"""
import collections
import grp
import json
import os
import platform
import pwd
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ENV = os.environ
ROOT = ENV["BENCH_ROOT"]
TMP = ENV["BENCH_TMP"]
CA = ENV["BENCH_CA"]
USER = ENV["BENCH_USER"]
PASSWORD = ENV["BENCH_PASSWORD"]
PY = ENV.get("BENCH_PYTHON", sys.executable)
DOVECOT_LOG = ENV.get("BENCH_DOVECOT_LOG", "")
MODULE = os.path.join(ROOT, "pam_mailauth.so")
TOOL = os.path.join(ROOT, "mailauth")
PAMLOOP = os.path.join(ROOT, "bench", "pamloop")
PYCLIENT = os.path.join(ROOT, "bench", "pyclient.py")
PROXY = os.path.join(ROOT, "bench", "delayproxy.py")
SPAWN = os.path.join(ROOT, "bench", "spawn")
SINK = os.path.join(ROOT, "bench", "smtpsink.py")
MAILAUTHD = os.path.join(ROOT, "mailauthd")

SAMPLES = int(ENV.get("BENCH_SAMPLES", "50"))
PROXY_SAMPLES = int(ENV.get("BENCH_PROXY_SAMPLES", "8"))
DELAY_MS = float(ENV.get("BENCH_DELAY_MS", "25"))
RTT_MS = 2 * DELAY_MS
CONCURRENCY = [int(x) for x in ENV.get("BENCH_CONCURRENCY", "1,8,32").split(",")]
TPUT_LOGINS = int(ENV.get("BENCH_TPUT_LOGINS", "64"))
PROFILE_LOGINS = int(ENV.get("PROFILE_LOGINS", "20"))
PROFILE_MEM = int(ENV.get("PROFILE_MEM", "1000"))
BROKER = ENV.get("BENCH_BROKER", "1") != "0"
BROKER_SAMPLES = int(ENV.get("BENCH_BROKER_SAMPLES", "100"))
BROKER_HIT_SAMPLES = int(ENV.get("BENCH_BROKER_HIT_SAMPLES", "500"))
BROKER_ROUNDS = max(1, int(ENV.get("BENCH_BROKER_ROUNDS", "4")))
LOAD_REQUESTS = int(ENV.get("BENCH_LOAD_REQUESTS", "1000"))
LOAD_CONCURRENCY = int(ENV.get("BENCH_LOAD_CONCURRENCY", "50"))
LOAD_CACHE_TTL = int(ENV.get("BENCH_LOAD_CACHE_TTL", "300"))
LOAD_SEED = int(ENV.get("BENCH_LOAD_SEED", "20261204"))
PAM_SUCCESS, PAM_AUTH_ERR = 0, 7

WORK = os.path.join(TMP, "work")
PAMD = os.path.join(WORK, "pam.d")


def log(msg):
    print(msg, flush=True)


# --- paths and clients ------------------------------------------------------------

class Path:
    def __init__(self, key, title, server, proto, tls, port):
        self.key, self.title, self.server = key, title, server
        self.proto, self.tls, self.direct_port = proto, tls, port
        self.via = {None: port}     # how to reach it: None direct, "proxy", "proxy0"

    def port(self, via):
        return self.via.get(via)


def paths():
    ps = [
        Path("imaps", "IMAP, implicit TLS (IMAPS)", "dovecot", "imap", "implicit",
             int(ENV["BENCH_IMAPS_PORT"])),
        Path("imap+starttls", "IMAP, STARTTLS", "dovecot", "imap", "starttls",
             int(ENV["BENCH_IMAP_STARTTLS_PORT"])),
        Path("smtps", "SMTP submission, implicit TLS (submissions)", "dovecot", "smtp",
             "implicit", int(ENV["BENCH_SUBMISSIONS_PORT"])),
        Path("smtp+starttls", "SMTP submission, STARTTLS", "dovecot", "smtp", "starttls",
             int(ENV["BENCH_SUBMISSION_PORT"])),
    ]
    if ENV.get("BENCH_PF_SUBMISSION_PORT"):
        ps += [
            Path("pf-smtps", "SMTP submission, implicit TLS (submissions)", "postfix",
                 "smtp", "implicit", int(ENV["BENCH_PF_SUBMISSIONS_PORT"])),
            Path("pf-smtp+starttls", "SMTP submission, STARTTLS", "postfix", "smtp",
                 "starttls", int(ENV["BENCH_PF_SUBMISSION_PORT"])),
        ]
    return ps


# Client key -> (label, kind).  kind: "proc" (one process per login), "loop" (one
# long-lived process).  Throughput: "proc" clients run N processes in parallel,
# "loop" clients N threads.
CLIENTS = collections.OrderedDict([
    ("tool", ("pam_mailauth: mailauth login (process per login)", "proc")),
    ("pam", ("pam_mailauth: libpam in-process (handle per thread)", "loop")),
    ("pam-fresh", ("pam_mailauth: libpam in-process, new handle per login", "loop")),
    ("pam-plain", ("pam_mailauth: libpam in-process, mechanisms = PLAIN", "loop")),
    ("curl", ("curl -sS --ssl-reqd --cacert -u -X NOOP (process per login; LOGOUT/QUIT "
              "answer awaited)", "proc")),
    ("py-proc", ("Python imaplib/smtplib with a verifying SSLContext, login + logout/quit "
                 "(process per login)", "proc")),
    ("py-loop", ("the same in one process, one SSLContext, N threads", "loop")),
])
SHORT = {
    "tool": "mailauth tool", "pam": "pam in-process", "pam-fresh": "pam, new handle",
    "pam-plain": "pam, PLAIN", "curl": "curl", "py-proc": "Python process",
    "py-loop": "Python in-process",
}
# The broker rows (IMAPS only, measured next to the in-process rows "tool", "pam" and
# "pam-fresh" in the same section): SOCKETS[...] is filled when the brokers start.
BROKER_CLIENTS = collections.OrderedDict([
    ("pam-bmiss", ("pam_mailauth: libpam, handle per thread, broker=SOCKET, cache_ttl = 0 "
                   "(every login goes to the server)", "loop", "miss")),
    ("pam-bhit", ("pam_mailauth: libpam, handle per thread, broker=SOCKET, answered from the "
                  "broker's positive cache", "loop", "hit")),
    ("pam-fresh-bhit", ("pam_mailauth: libpam, new handle per login, broker=SOCKET, positive "
                        "cache", "loop", "hit")),
    ("tool-bmiss", ("mailauth login -b SOCKET (process per login), cache_ttl = 0", "proc",
                    "miss")),
    ("tool-bhit", ("mailauth login -b SOCKET (process per login), positive cache", "proc",
                   "hit")),
])
SHORT.update({
    "pam-bmiss": "pam via broker, miss", "pam-bhit": "pam via broker, hit",
    "pam-fresh-bhit": "pam new handle via broker, hit", "tool-bmiss": "mailauth -b, miss",
    "tool-bhit": "mailauth -b, hit",
})
BROKER_SOCKETS = {}


def client_kind(client):
    return (CLIENTS.get(client) or BROKER_CLIENTS[client])[1]


PROXY_CLIENTS = ["tool", "pam", "pam-plain", "curl", "py-proc", "py-loop"]
TPUT_CLIENTS = ["tool", "pam", "pam-plain", "curl", "py-loop"]


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def config_name(path, via, variant=""):
    return "%s%s%s" % (path.key, "-" + via if via else "", variant)


def write_configs(ps, timeout=10):
    """One pam_mailauth configuration and PAM service per path, direct and proxied."""
    os.makedirs(PAMD, exist_ok=True)
    with open(os.path.join(PAMD, "other"), "w") as f:
        f.write("auth required pam_deny.so\naccount required pam_deny.so\n")
    for p in ps:
        for via, port in p.via.items():
            for variant, mech in (("", ""), ("-plain", '  mechanisms = {"PLAIN"}\n')):
                name = config_name(p, via, variant)
                conf = os.path.join(WORK, name + ".conf")
                write_private(conf, (
                    'timeout = %d\nca_file = "%s"\nhelo_name = "localhost"\n'
                    'server bench {\n  protocol = %s\n  host = "127.0.0.1"\n  port = %d\n'
                    '  tls = %s\n%s}\n') % (timeout, CA, p.proto, port, p.tls, mech))
                with open(os.path.join(PAMD, name), "w") as f:
                    f.write("auth required %s config=%s\n" % (MODULE, conf))


# --- running clients ----------------------------------------------------------------

_spawn_out = threading.local()


def spawn_file():
    if not hasattr(_spawn_out, "path"):
        fd, _spawn_out.path = tempfile.mkstemp(prefix="spawn-", dir=WORK)
        os.close(fd)
    return _spawn_out.path


def run_proc(argv, stdin_data=None, env=None):
    """One child process through bench/spawn: (ok, wall_ms, cpu_s, maxrss_kb, stderr)."""
    out = spawn_file()
    r = subprocess.run([SPAWN, out] + argv, input=stdin_data, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=env)
    try:
        with open(out) as f:
            wall, ut, st, rss, code = f.read().split()
        wall, cpu, rss, code = float(wall), float(ut) + float(st), int(rss), int(code)
    except ValueError:
        wall, cpu, rss, code = float("nan"), 0.0, 0, r.returncode
    text = r.stderr.decode("utf-8", "replace").strip()
    return (code == 0, wall, cpu, rss, text or "exit status %d" % code)


def proc_argv(client, path, via):
    """argv, stdin bytes, env for one login by a per-process client."""
    port = path.port(via)
    if client == "tool":
        conf = os.path.join(WORK, config_name(path, via) + ".conf")
        return [TOOL, "login", "-c", conf, USER], (PASSWORD + "\n").encode(), None
    if client in BROKER_CLIENTS:
        sock = BROKER_SOCKETS[BROKER_CLIENTS[client][2]]
        return [TOOL, "login", "-b", sock, USER], (PASSWORD + "\n").encode(), None
    if client == "curl":
        if path.proto == "imap":
            scheme = "imaps" if path.tls == "implicit" else "imap"
        else:
            scheme = "smtps" if path.tls == "implicit" else "smtp"
        # curl has no "log in and quit": one NOOP after AUTH (IMAP: tagged NOOP; SMTP:
        # NOOP instead of the default HELP), then LOGOUT / QUIT.
        return (["curl", "-sS", "--ssl-reqd", "--cacert", CA, "-u", "%s:%s" % (USER, PASSWORD),
                 "--max-time", "20", "-X", "NOOP", "%s://127.0.0.1:%d/" % (scheme, port)],
                None, None)
    if client == "py-proc":
        return ([PY, PYCLIENT, path.proto, path.tls, str(port), CA, USER], None,
                dict(ENV, BENCH_PASSWORD=PASSWORD))
    raise ValueError(client)


def loop_argv(client, path, via, n, threads, warmup, quiet=False):
    port = path.port(via)
    if client in ("pam", "pam-fresh", "pam-plain"):
        svc = config_name(path, via, "-plain" if client == "pam-plain" else "")
        argv = [PAMLOOP, "-D", PAMD, "-s", svc, "-u", USER, "-p", PASSWORD,
                "-n", str(n), "-t", str(threads), "-w", str(warmup)]
        if client == "pam-fresh":
            argv.append("-f")
        if quiet:
            argv.append("-q")
        return argv, None
    if client in BROKER_CLIENTS:
        argv = [PAMLOOP, "-D", PAMD, "-s", "broker-" + BROKER_CLIENTS[client][2], "-u", USER,
                "-p", PASSWORD, "-n", str(n), "-t", str(threads), "-w", str(warmup)]
        if client.startswith("pam-fresh"):
            argv.append("-f")
        if quiet:
            argv.append("-q")
        return argv, None
    if client == "py-loop":
        return ([PY, PYCLIENT, path.proto, path.tls, str(port), CA, USER, "-n", str(n),
                 "-t", str(threads), "-w", str(warmup)], dict(ENV, BENCH_PASSWORD=PASSWORD))
    raise ValueError(client)


def run_loop(argv, env=None):
    """One long-lived client process (through bench/spawn: see spawn.c for why)."""
    r = subprocess.run([SPAWN, spawn_file()] + argv, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=900)
    try:
        return json.loads(r.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"logins": 0, "ok": 0, "failed": 1, "lat_ms": [],
                "first_error": (r.stderr.decode(errors="replace").strip() or
                                "exit status %d, no result" % r.returncode)[-300:]}


def percentile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


class Cell:
    """What one client did on one path in one setting."""

    def __init__(self):
        self.lat = []
        self.cpu_s = 0.0
        self.maxrss_kb = 0
        self.n = 0
        self.ok = 0
        self.errors = []
        self.wall_s = 0.0
        self.mechs = collections.Counter()
        self.flights = None
        self.broker_cpu_s = None    # broker rows: the daemon's CPU over the cell
        self.server_logins = None   # broker section: Dovecot's Login lines in the cell
        self.sources = None         # broker rows: result/source of its answers
        self.performed = None       # logins made, warm-up included

    @property
    def median(self):
        return statistics.median(self.lat) if self.lat else float("nan")

    @property
    def p95(self):
        return percentile(self.lat, 0.95)

    @property
    def cpu_ms(self):
        return self.cpu_s * 1000 / self.n if self.n else float("nan")

    @property
    def rate(self):
        return self.n / self.wall_s if self.wall_s else float("nan")

    def fail_note(self):
        if self.ok == self.n:
            return ""
        return "%d of %d failed: %s" % (self.n - self.ok, self.n, self.errors[0] if self.errors
                                        else "?")


def measure(client, path, via, n, concurrency=1):
    """n logins by client on path (via None: directly; "proxy", "proxy0": through the
    delaying / the zero-delay proxy)."""
    if not os.path.isdir(WORK):
        sys.exit("bench: %s has disappeared (did a `make check` remove tests/tmp?); "
                 "run again, with BENCH_TMP elsewhere" % WORK)
    kind = client_kind(client)
    cell = Cell()
    if kind == "proc":
        argv, stdin, env = proc_argv(client, path, via)
        counter = iter(range(n))
        lock = threading.Lock()
        results = []

        def worker():
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                r = run_proc(argv, stdin, env)
                with lock:
                    results.append(r)

        # One warm-up login (page cache, Dovecot's first auth of the run); not counted.
        # Not through the delaying proxy: the loopback cells ran just before.
        if via != "proxy":
            run_proc(argv, stdin, env)
        t0 = time.perf_counter()
        ts = [threading.Thread(target=worker) for _ in range(concurrency)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        cell.wall_s = time.perf_counter() - t0
        for ok, wall, cpu, rss, err in results:
            cell.n += 1
            cell.ok += ok
            cell.lat.append(wall)
            cell.cpu_s += cpu
            cell.maxrss_kb = max(cell.maxrss_kb, rss)
            if not ok:
                cell.errors.append(err.splitlines()[-1] if err else "?")
    else:
        argv, env = loop_argv(client, path, via, n, concurrency, 1, quiet=concurrency > 1)
        r = run_loop(argv, env)
        cell.n = r.get("logins", 0) or n
        cell.ok = r.get("ok", 0)
        cell.lat = r.get("lat_ms", [])
        cell.cpu_s = r.get("utime_s", 0) + r.get("stime_s", 0)
        cell.maxrss_kb = r.get("maxrss_kb", 0)
        cell.wall_s = r.get("wall_s", 0)
        if r.get("first_error"):
            cell.errors.append(r["first_error"])
    return cell


# --- servers' view: which mechanism, how many flights --------------------------------

class LogTail:
    def __init__(self, path):
        self.path = path
        self.pos = os.path.getsize(path) if path and os.path.exists(path) else 0

    def new(self):
        if not self.path or not os.path.exists(self.path):
            return ""
        with open(self.path, "rb") as f:
            f.seek(self.pos)
            data = f.read()
        self.pos += len(data)
        return data.decode("utf-8", "replace")


def mechanisms_in(text):
    return collections.Counter(re.findall(r"-login: Info: Login: user=<[^>]*>, method=([A-Z0-9-]+)",
                                          text))


def flights_in(text):
    rows = [dict(kv.split("=") for kv in line.split()) for line in text.splitlines() if line]
    if not rows:
        return None
    return (statistics.median(int(r["c2s_flights"]) for r in rows),
            statistics.median(int(r["s2c_flights"]) for r in rows),
            statistics.median(int(r["s2c_bytes"]) for r in rows) / 1024)


# --- the proxy and the relay sink ---------------------------------------------------------

class Proxy:
    def __init__(self, ps, via, delay_ms, stats=None):
        pairs = ["0:%d" % p.direct_port for p in ps]
        argv = [PY, PROXY, "--delay", str(delay_ms)]
        if delay_ms == 0:
            argv.append("--no-connect-delay")
        if stats:
            argv += ["--stats", stats]
        self.proc = subprocess.Popen(argv + pairs, stdout=subprocess.PIPE, text=True)
        for p in ps:
            line = self.proc.stdout.readline().split()
            assert int(line[1]) == p.direct_port, line
            p.via[via] = int(line[0])
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def start_sink():
    """Dovecot's submission relay (see smtpsink.py): 127.0.0.1:IMAP_STARTTLS_PORT+9."""
    port = int(ENV["BENCH_IMAP_STARTTLS_PORT"]) + 9
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return None             # something already answers there
    p = subprocess.Popen([PY, SINK, str(port)], stdout=subprocess.PIPE, text=True)
    p.stdout.readline()
    return p


# --- the broker (mailauthd, SPEC 10) -------------------------------------------------

LOGIN_RE = re.compile(r"imap-login: Info: Login: user=<([^>]*)>")
FAILED_RE = re.compile(r"auth failed, (\d+) attempts.*?user=<([^>]*)>")
BROKER_AUTH_RE = re.compile(r"\bauth service=\S* user=.*? result=(\S+) source=(\S+)")


class Broker:
    """mailauthd as tests/real/test_broker.sh runs it: as nobody through setpriv, its
    configuration root:nogroup 0640, its socket in a directory it owns (0755), its
    state directory 0700; everything in WORK/broker-NAME.  One server: the bench's
    Dovecot on PORT (IMAPS), with the in-process configurations' settings."""

    def __init__(self, name, port, cache_ttl):
        self.name, self.cache_ttl = name, cache_ttl
        self.dir = os.path.join(WORK, "broker-" + name)
        run, state = os.path.join(self.dir, "run"), os.path.join(self.dir, "state")
        os.makedirs(run)
        os.makedirs(state)
        os.chmod(self.dir, 0o755)
        uid, gid = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
        for d, mode in ((run, 0o755), (state, 0o700)):
            os.chown(d, uid, gid)
            os.chmod(d, mode)
        self.sock = os.path.join(run, "socket")
        self.conf = os.path.join(self.dir, "mailauthd.conf")
        write_private(self.conf, (
            'timeout = 10\nca_file = "%s"\nhelo_name = "localhost"\ncache_ttl = %d\n'
            'state_dir = "%s"\n'
            'server bench {\n  protocol = imap\n  host = "127.0.0.1"\n  port = %d\n'
            '  tls = implicit\n}\n') % (CA, cache_ttl, state, port))
        os.chown(self.conf, 0, gid)
        os.chmod(self.conf, 0o640)
        self.log_path = os.path.join(self.dir, "mailauthd.log")
        self.pidfile = os.path.join(WORK, "broker-%s.pid" % name)
        self.status = None
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", MAILAUTHD,
                 "-f", "-c", self.conf, "-s", self.sock],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=logf)
        with open(self.pidfile, "w") as f:     # for run.sh's exit trap, should we die
            f.write("%d\n" % self.proc.pid)
        self.log = LogTail(self.log_path)
        self.log.pos = 0
        deadline = time.monotonic() + 5
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                with open(self.log_path, errors="replace") as f:
                    tail = f.read()[-1500:]
                raise RuntimeError("mailauthd (%s) did not start:\n%s" % (name, tail))
            time.sleep(0.05)

    def cpu_s(self):
        """CPU time of all its threads so far (schedstat: nanoseconds; the worker
        threads live as long as the daemon, so none is lost between two readings)."""
        total = 0
        task = "/proc/%d/task" % self.proc.pid
        try:
            tids = os.listdir(task)
        except OSError:
            return float("nan")
        for t in tids:
            try:
                with open("%s/%s/schedstat" % (task, t)) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        return total / 1e9

    def rss_kb(self):
        """(VmHWM, VmRSS) in kB."""
        got = {}
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("VmHWM", "VmRSS"):
                        got[k] = int(v.split()[0])
        except (OSError, ValueError):
            pass
        return got.get("VmHWM", 0), got.get("VmRSS", 0)

    def stop(self):
        """SIGTERM, as its unit would; its exit status (0 expected)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.status = self.proc.returncode
        try:
            os.unlink(self.pidfile)
        except OSError:
            pass
        return self.status


def sources_in(text):
    """Broker log: Counter of result/source of its auth requests."""
    return collections.Counter("%s/%s" % m for m in BROKER_AUTH_RE.findall(text))


def answered_by(sources):
    """"ok: cache 110, shared 60, network 6; refused: network 22, negative-cache 2"."""
    if not sources:
        return "–"
    ok, refused, other = (collections.Counter() for _ in range(3))
    for k, v in sources.items():
        result, source = k.split("/")
        if result in ("ok", "ok-shared", "ok-offline"):
            ok["shared" if result == "ok-shared" else source] += v
        elif result == "auth-failed":
            refused[source] += v
        else:
            other["%s %s" % (result, source)] += v
    parts = []
    for name, c in (("ok", ok), ("refused", refused), ("other", other)):
        if c:
            parts.append("%s: %s" % (name, ", ".join("%s %d" % kv for kv in c.most_common())))
    return "; ".join(parts)


def load_creds():
    """The users of the load: BENCH_LOAD_CREDS, lines USER TAB PASSWORD (run.sh)."""
    creds = []
    for line in ENV.get("BENCH_LOAD_CREDS", "").splitlines():
        if "\t" in line:
            creds.append(tuple(line.split("\t", 1)))
    return creds or [(USER, PASSWORD)]


def load_requests(creds):
    """LOAD_REQUESTS HTTP-Basic-style requests: (user, password, rhost, right?).  The
    first user sends 35% of them, the others share the rest; 90% carry the right
    password, 9% the user's previous password (a stale saved credential, the same
    wrong password again and again), 1% a one-off typo.  One client address per user."""
    rng = random.Random(LOAD_SEED)
    weights = [0.35] + [0.65 / (len(creds) - 1)] * (len(creds) - 1) if len(creds) > 1 else [1]
    reqs = []
    for i in range(LOAD_REQUESTS):
        j = rng.choices(range(len(creds)), weights)[0]
        user, pw = creds[j]
        x = rng.random()
        if x < 0.90:
            password, right = pw, True
        elif x < 0.99:
            password, right = pw + "-2025", False
        else:
            password, right = "%s-typo%d" % (pw[:-1], i), False
        reqs.append((user, password, "192.0.2.%d" % (10 + j), right))
    return reqs


def run_load(svc, reqs, listfile, broker=None):
    """The requests through pamloop -l (a new PAM handle per request), LOAD_CONCURRENCY
    threads; what the clients saw, what Dovecot logged, what the broker answered from."""
    dlog = LogTail(DOVECOT_LOG)
    cpu0 = broker.cpu_s() if broker else None
    argv = [PAMLOOP, "-D", PAMD, "-s", svc, "-l", listfile, "-n", str(len(reqs)),
            "-t", str(LOAD_CONCURRENCY)]
    r = run_loop(argv)
    cpu1 = broker.cpu_s() if broker else None
    time.sleep(1.0)                 # Dovecot logs through its log process
    text = dlog.new()
    logins = LOGIN_RE.findall(text)
    failed = FAILED_RE.findall(text)
    rcs = r.get("rc", [])
    lat = r.get("lat_ms", [])
    wall = r.get("wall_s", 0)
    out = {
        "svc": svc, "requests": len(reqs), "threads": LOAD_CONCURRENCY,
        "right": sum(1 for q in reqs if q[3]), "completed": len(rcs),
        "as_expected": sum(1 for rc, q in zip(rcs, reqs) if (rc == PAM_SUCCESS) == q[3]),
        "rc": dict(collections.Counter(rcs)), "wall_s": wall,
        "rate": len(rcs) / wall if wall else float("nan"),
        "p50": percentile(lat, 0.5), "p95": percentile(lat, 0.95),
        "max": max(lat) if lat else float("nan"),
        "server_logins": len(logins), "server_failed": len(failed),
        "server_failed_attempts": sum(int(n) for n, _ in failed),
        "logins_by_user": dict(collections.Counter(logins)),
        "failed_by_user": dict(collections.Counter(u for _, u in failed)),
        "client_cpu_ms": 1000 * (r.get("utime_s", 0) + r.get("stime_s", 0)) / max(1, len(rcs)),
        "broker_cpu_ms": 1000 * (cpu1 - cpu0) / max(1, len(rcs)) if broker else None,
        "sources": dict(sources_in(broker.log.new())) if broker else None,
        "error": "" if rcs else r.get("first_error", "no result"),
    }
    return out


def merge_cells(a, b):
    """One row from blocks measured at different times."""
    if a is None:
        return b
    a.lat += b.lat
    a.cpu_s += b.cpu_s
    a.maxrss_kb = max(a.maxrss_kb, b.maxrss_kb)
    a.n += b.n
    a.ok += b.ok
    a.errors += b.errors
    a.wall_s += b.wall_s
    a.mechs += b.mechs
    if a.broker_cpu_s is not None:
        a.broker_cpu_s += b.broker_cpu_s
    a.server_logins += b.server_logins
    if a.sources is not None:
        a.sources += b.sources
    a.performed += b.performed
    return a


def broker_note(cell, nb):
    return "CPU %s ms/login%s" % (
        fmt(cell.cpu_ms, 2),
        " + broker %s" % fmt(cell.broker_cpu_s * 1000 / nb, 2) if cell.broker_cpu_s is not None
        else "")


def run_broker(ps, results):
    """The broker section (IMAPS): cache hit and miss next to the same logins
    in-process, then the load.  Returns what render_broker needs, or None."""
    p = ps[0]
    if not BROKER:
        return None
    if not os.access(MAILAUTHD, os.X_OK) or shutil.which("setpriv") is None:
        log("== broker: skipped (%s)" % ("mailauthd is not built" if not os.access(
            MAILAUTHD, os.X_OK) else "setpriv is not installed"))
        return None
    info = {"path": p, "port": p.direct_port, "brokers": {}}
    brokers = {}
    try:
        brokers["miss"] = Broker("miss", p.direct_port, 0)
        brokers["hit"] = Broker("hit", p.direct_port, LOAD_CACHE_TTL)
        for k, b in brokers.items():
            BROKER_SOCKETS[k] = b.sock
            with open(os.path.join(PAMD, "broker-" + k), "w") as f:
                f.write("auth required %s broker=%s\n" % (MODULE, b.sock))
        # Fill the positive cache: every login of the hit rows is then a hit.
        ok, _, _, _, err = run_proc([TOOL, "login", "-b", brokers["hit"].sock, USER],
                                    (PASSWORD + "\n").encode())
        if not ok:
            log("   broker: the first login failed: %s" % err)
        # Rows compared with each other run in alternating blocks (in-process, miss,
        # hit, in-process, ...), so that other work on the machine hits them alike.
        groups = [[("pam", None, BROKER_SAMPLES), ("pam-bmiss", "miss", BROKER_SAMPLES),
                   ("pam-bhit", "hit", BROKER_HIT_SAMPLES)],
                  [("pam-fresh", None, BROKER_SAMPLES),
                   ("pam-fresh-bhit", "hit", BROKER_HIT_SAMPLES)],
                  [("tool", None, BROKER_SAMPLES), ("tool-bmiss", "miss", BROKER_SAMPLES),
                   ("tool-bhit", "hit", BROKER_SAMPLES)]]
        log("== broker (mailauthd as nobody, %s): cache hit and miss next to in-process, "
            "IMAPS, %d alternating blocks per row" % (
                ", ".join("%s: cache_ttl = %d" % (k, b.cache_ttl) for k, b in brokers.items()),
                BROKER_ROUNDS))
        dlog = LogTail(DOVECOT_LOG)
        i = 0
        n_rows = sum(len(g) for g in groups)
        for group in groups:
            t0 = time.perf_counter()
            cells = collections.OrderedDict()
            for r in range(BROKER_ROUNDS):
                for c, bk, n in group:
                    b = brokers.get(bk)
                    block = max(1, n // BROKER_ROUNDS)
                    dlog.new()
                    if b:
                        b.log.new()
                    cpu0 = b.cpu_s() if b else None
                    part = measure(c, p, None, block)
                    part.broker_cpu_s = b.cpu_s() - cpu0 if b else None
                    time.sleep(0.3)         # Dovecot logs through its log process
                    text = dlog.new()
                    part.mechs = mechanisms_in(text)
                    part.server_logins = len(LOGIN_RE.findall(text))
                    part.sources = sources_in(b.log.new()) if b else None
                    part.performed = block + 1  # one warm-up login, not timed
                    cells[c] = merge_cells(cells.get(c), part)
            for c, cell in cells.items():
                i += 1
                results[(p.key, c, "broker")] = cell
                note = cell.fail_note()
                log("[b%2d/%d] %-17s %-30s %4d logins: median %s ms, p95 %s ms, %s; Dovecot "
                    "logins %d%s" % (
                        i, n_rows, p.key, SHORT[c], cell.n, fmt(cell.median), fmt(cell.p95),
                        broker_note(cell, cell.performed), cell.server_logins,
                        "  ** " + note if note else ""))
            log("        (%.1f s)" % (time.perf_counter() - t0))
        for k, b in brokers.items():
            info["brokers"][k] = {"cache_ttl": b.cache_ttl, "rss_kb": b.rss_kb()}

        # The load: the same requests in-process, then through a fresh broker.
        creds = load_creds()
        reqs = load_requests(creds)
        listfile = os.path.join(WORK, "load.txt")
        write_private(listfile, "".join("%s\t%s\t%s\n" % q[:3] for q in reqs))
        wrong = {(q[0], q[1]) for q in reqs if not q[3]}
        info["load_mix"] = {
            "users": len(creds), "right": sum(1 for q in reqs if q[3]),
            "wrong": sum(1 for q in reqs if not q[3]), "distinct_wrong": len(wrong),
            "by_user": dict(collections.Counter(q[0] for q in reqs)),
        }
        log("== load: %d requests, %d threads, %d users, %d right / %d wrong (%d distinct "
            "wrong passwords)" % (len(reqs), LOAD_CONCURRENCY, len(creds),
                                  info["load_mix"]["right"], info["load_mix"]["wrong"],
                                  len(wrong)))
        loads = collections.OrderedDict()
        for key, svc in (("in-process", config_name(p, None)), ("broker", "broker-load")):
            t0 = time.perf_counter()
            b = None
            if key == "broker":
                b = brokers["load"] = Broker("load", p.direct_port, LOAD_CACHE_TTL)
                with open(os.path.join(PAMD, svc), "w") as f:
                    f.write("auth required %s broker=%s\n" % (MODULE, b.sock))
            ld = run_load(svc, reqs, listfile, b)
            if b:
                ld["broker_rss_kb"] = b.rss_kb()
            loads[key] = ld
            log("   %-10s %d requests in %.2f s: %s req/s, p50 %s ms, p95 %s ms; Dovecot: %d "
                "logins, %d failed (%d attempts); verdicts as expected %d/%d; %s (%.1f s)%s" % (
                    key, ld["completed"], ld["wall_s"], fmt(ld["rate"]), fmt(ld["p50"]),
                    fmt(ld["p95"]), ld["server_logins"], ld["server_failed"],
                    ld["server_failed_attempts"], ld["as_expected"], ld["requests"],
                    answered_by(ld["sources"]) if b else "no broker",
                    time.perf_counter() - t0, "  ** " + ld["error"] if ld["error"] else ""))
        info["load"] = loads
    finally:
        for k, b in brokers.items():
            st = b.stop()
            info["brokers"].setdefault(k, {"cache_ttl": b.cache_ttl})["exit"] = st
    return info


# --- formatting ---------------------------------------------------------------------

def fmt(x, digits=1):
    if x is None or x != x:
        return "–"
    if abs(x) >= 100:
        return "%.0f" % x
    return ("%%.%df" % digits) % x


def ratio(a, b):
    if a is None or b is None or a != a or b != b or b == 0:
        return "–"
    return "%.2f" % (a / b)


def table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    out = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    return "\n".join(out)


def versions():
    def first_line(argv):
        try:
            return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            return "?"
    git = first_line(["git", "-C", ROOT, "describe", "--always", "--dirty"])
    curl = " ".join(first_line(["curl", "--version"]).split()[:4])
    py = first_line([PY, "-c", "import ssl,sys; print('Python', sys.version.split()[0], ssl.OPENSSL_VERSION)"])
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = ""
    p = os.path.join(TMP, "server-info.txt")
    if os.path.exists(p):
        info = open(p).read().strip().replace("\n", "; ")
    return git, curl, py, "%s, %d CPUs, Linux %s" % (cpu, os.cpu_count(), platform.release()), info


# --- bench --------------------------------------------------------------------------

def bench():
    t_start = time.time()
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    ps = paths()
    stats_file = os.path.join(WORK, "proxy-stats.txt")
    open(stats_file, "w").close()
    sink = start_sink()
    proxies = [Proxy(ps, "proxy", DELAY_MS, stats_file), Proxy(ps, "proxy0", 0)]
    load0 = os.getloadavg()
    try:
        write_configs(ps)
        results = run_bench(ps, stats_file)
        broker = run_broker(ps, results)
    finally:
        for proxy in proxies:
            proxy.stop()
        if sink is not None:
            sink.terminate()
            sink.wait()
    report = render(ps, results, time.time() - t_start, load0, os.getloadavg(), broker)
    out = os.path.join(TMP, "results.md")
    with open(out, "w") as f:
        f.write(report + "\n")
    raw = {"%s|%s|%s" % k: {"n": c.n, "ok": c.ok, "median_ms": c.median,
                             "p95_ms": c.p95, "cpu_ms": c.cpu_ms,
                             "maxrss_kb": c.maxrss_kb, "rate": c.rate,
                             "lat_ms": c.lat, "mechs": dict(c.mechs),
                             "flights": c.flights, "errors": c.errors[:3],
                             "broker_cpu_s": c.broker_cpu_s, "server_logins": c.server_logins,
                             "sources": dict(c.sources) if c.sources else None,
                             "performed": c.performed}
           for k, c in results.items()}
    if broker and broker.get("load"):
        raw["load"] = broker["load"]
        raw["load_mix"] = broker["load_mix"]
    with open(os.path.join(TMP, "results.json"), "w") as f:
        json.dump(raw, f, indent=1)
    log("")
    log(report)
    log("")
    log("(written to %s and results.json)" % out)
    copy = ENV.get("BENCH_REPORT")
    if copy:
        shutil.copyfile(out, copy)
        log("(and copied to %s)" % copy)
    failed = [(k, c) for k, c in results.items() if c.ok != c.n]
    for k, c in failed:
        log("FAILED LOGINS: %s %s %s: %s" % (k[0], k[1], k[2], c.fail_note()))
    for k, ld in ((broker or {}).get("load") or {}).items():
        if ld["as_expected"] != ld["requests"]:
            failed.append(k)
            log("LOAD VERDICTS: %s: %d of %d requests not as expected (PAM codes %s)%s"
                % (k, ld["requests"] - ld["as_expected"], ld["requests"], ld["rc"],
                   ": " + ld["error"] if ld["error"] else ""))
    for k, b in ((broker or {}).get("brokers") or {}).items():
        if b.get("exit") != 0:
            failed.append(k)
            log("BROKER %s: exit status %s after SIGTERM (0 expected)" % (k, b.get("exit")))
    return 1 if failed else 0


def run_bench(ps, stats_file):
    results = {}
    dlog = LogTail(DOVECOT_LOG)
    stats = LogTail(stats_file)
    plan = []
    for p in ps:
        for c in CLIENTS:
            plan.append((p, c, "loopback", SAMPLES, 1))
    for p in ps:
        for c in PROXY_CLIENTS:
            plan.append((p, c, "proxy0", PROXY_SAMPLES, 1))
            plan.append((p, c, "proxy", PROXY_SAMPLES, 1))
    for p in ps:
        for c in TPUT_CLIENTS:
            for conc in CONCURRENCY:
                if conc > 1:        # 1: the loopback cell is that measurement
                    plan.append((p, c, "c%d" % conc, max(TPUT_LOGINS, 4 * conc), conc))
    log("== %d measurements: %d logins per loopback cell, %d through the proxy "
        "(%g ms each way, RTT %g ms), throughput at %s concurrent"
        % (len(plan), SAMPLES, PROXY_SAMPLES, DELAY_MS, RTT_MS,
           "/".join(map(str, CONCURRENCY))))
    for i, (p, c, setting, n, conc) in enumerate(plan, 1):
        t0 = time.perf_counter()
        dlog.new()
        stats.new()
        cell = measure(c, p, setting if setting.startswith("proxy") else None, n, conc)
        cell.mechs = mechanisms_in(dlog.new())
        if setting == "proxy":
            cell.flights = flights_in(stats.new())
        results[(p.key, c, setting)] = cell
        what = ("median %s ms, p95 %s ms" % (fmt(cell.median), fmt(cell.p95))
                if setting in ("loopback", "proxy", "proxy0") else "%s logins/s" % fmt(cell.rate))
        note = cell.fail_note()
        log("[%3d/%d] %-17s %-18s %-8s %4d logins: %s, CPU %s ms/login (%.1f s)%s"
            % (i, len(plan), p.key, SHORT[c], setting, n, what, fmt(cell.cpu_ms, 2),
               time.perf_counter() - t0, "  ** " + note if note else ""))
    if 1 in CONCURRENCY:
        for p in ps:
            for c in TPUT_CLIENTS:
                if (p.key, c, "loopback") in results:
                    results[(p.key, c, "c1")] = results[(p.key, c, "loopback")]
    return results


def mech_label(results, p, c, ps):
    cell = results.get((p.key, c, "loopback"))
    if c in ("py-proc", "py-loop") and p.proto == "imap":
        return "LOGIN cmd"          # Dovecot logs the IMAP LOGIN command as PLAIN
    if cell is not None and cell.mechs:
        return "/".join(m for m, _ in cell.mechs.most_common(2))
    if p.server == "postfix":       # Postfix's SASL is Dovecot's: same offer as submission
        for q in ps:
            if q.server == "dovecot" and q.proto == p.proto and q.tls == p.tls:
                return mech_label(results, q, c, ps)
    return "?"


def round_trips(results, p, c):
    """(raw, net): proxy median / RTT, and (proxy - zero-delay proxy) median / RTT."""
    lo = results.get((p.key, c, "proxy0"))
    px = results.get((p.key, c, "proxy"))
    if lo is None or px is None or not px.lat or not lo.lat:
        return None, None
    return px.median / RTT_MS, (px.median - lo.median) / RTT_MS


def render(ps, results, elapsed, load0, load1, broker=None):
    git, curl, py, machine, servers = versions()
    out = []
    out.append("# pam_mailauth benchmark")
    out.append("")
    out.append("- date: %s; run took %.0f s; load average %.2f at the start, %.2f at the end "
               "(other work on the machine shows as noise)"
               % (time.strftime("%Y-%m-%d %H:%M:%S %z"), elapsed, load0[0], load1[0]))
    out.append("- machine: %s" % machine)
    out.append("- pam_mailauth %s; %s; %s" % (git, curl, py))
    out.append("- servers: %s" % servers)
    out.append("- loopback: %d logins per cell (after 1 warm-up login); proxy: %d logins per "
               "cell through bench/delayproxy.py, %g ms each way (RTT %g ms), TCP connect "
               "emulated (1 RTT)" % (SAMPLES, PROXY_SAMPLES, DELAY_MS, RTT_MS))
    out.append("- round trips = (median through the %g ms proxy - median through the same proxy "
               "at 0 ms) / RTT: the latency the RTT adds, in RTTs; raw median / RTT in "
               "parentheses" % DELAY_MS)
    out.append("- CPU = user+sys per login of the client only (per-process clients: the "
               "whole child incl. exec and start-up, from wait4; in-process: getrusage "
               "delta over the measured logins); peak RSS = ru_maxrss of that process")
    out.append("- throughput: logins/s with %s concurrent logins (%d, or 4 per thread): threads "
               "of one process for in-process clients, parallel processes for the others; @1 is "
               "the loopback latency cell run back to back" % (
                   "/".join(map(str, CONCURRENCY)), TPUT_LOGINS))
    out.append("- the proxy ACKs at once (TCP_QUICKACK), so no delayed-ACK/Nagle stall "
               "happens through it; direct loopback figures keep whatever stalls the "
               "endpoints cause each other")
    out.append("- all logins are successful ones (user %s); only the client differs:" % USER)
    for c, (label, _) in CLIENTS.items():
        out.append("  - %s: %s" % (SHORT[c], label))
    if broker:
        out.append("- broker: mailauthd as nobody (setpriv), IMAPS only, measured after the "
                   "tables above; see the last two sections")
    for p in ps:
        out.append("")
        out.append("## %s - %s 127.0.0.1:%d" % (p.title, p.server.capitalize(), p.direct_port))
        out.append("")
        header = ["client", "mechanism", "median ms", "p95 ms", "via proxy ms",
                  "round trips", "CPU ms/login", "peak RSS MB"] + \
                 ["logins/s @%d" % c for c in CONCURRENCY] + \
                 ["peak RSS MB @%d" % CONCURRENCY[-1]]
        rows = []
        for c in CLIENTS:
            lo = results.get((p.key, c, "loopback"))
            px = results.get((p.key, c, "proxy"))
            raw, net = round_trips(results, p, c)
            row = [SHORT[c] + (" (threads)" if CLIENTS[c][1] == "loop" and c in TPUT_CLIENTS
                               else " (procs)" if c in TPUT_CLIENTS else ""),
                   mech_label(results, p, c, ps),
                   fmt(lo.median) if lo else "–", fmt(lo.p95) if lo else "–",
                   fmt(px.median) if px else "–",
                   ("%s (%s)" % (fmt(net), fmt(raw))) if net is not None else "–",
                   fmt(lo.cpu_ms, 2) if lo else "–",
                   fmt(lo.maxrss_kb / 1024) if lo else "–"]
            for conc in CONCURRENCY:
                t = results.get((p.key, c, "c%d" % conc))
                row.append(fmt(t.rate) if t else "–")
            t = results.get((p.key, c, "c%d" % CONCURRENCY[-1]))
            row.append(fmt(t.maxrss_kb / 1024) if t else "–")
            bad = [s for s in ("loopback", "proxy") + tuple("c%d" % x for x in CONCURRENCY)
                   if (p.key, c, s) in results and results[(p.key, c, s)].ok != results[(p.key, c, s)].n]
            if bad:
                row[0] += " [FAILED: %s]" % ",".join(bad)
            rows.append(row)
        out.append(table(header, rows))

    # Round trips, one table.
    out.append("")
    out.append("## Round trips per login (RTT %g ms; (proxy at %g ms - proxy at 0 ms) / RTT)"
               % (RTT_MS, DELAY_MS))
    out.append("")
    header = ["client"] + ["%s%s" % ("Postfix " if p.server == "postfix" else "", p.key.replace("pf-", ""))
                           for p in ps]
    rows = []
    for c in PROXY_CLIENTS:
        row = [SHORT[c]]
        for p in ps:
            _, net = round_trips(results, p, c)
            px = results.get((p.key, c, "proxy"))
            fl = px.flights if px is not None else None
            row.append(fmt(net) + (" [%g/%g %.1fK]" % tuple(fl) if fl else ""))
        rows.append(row)
    out.append(table(header, rows))
    out.append("")
    out.append("[c/s nK] = median client->server / server->client flights per connection seen "
               "by the proxy (a flight: data in one direction uninterrupted by the other), and "
               "median KiB from the server: a full TLS handshake with this certificate chain is "
               "about 2 KiB more than a resumed one.")

    # Ratios.
    out.append("")
    out.append("## Ratios: pam_mailauth / other client, same run (latency, round trips, CPU, "
               "RSS: < 1 = pam_mailauth better; throughput: > 1 = pam_mailauth better)")
    out.append("")
    metrics = [("median", lambda k: results[k].median if k in results else None, "loopback"),
               ("p95", lambda k: results[k].p95 if k in results else None, "loopback"),
               ("proxy", lambda k: results[k].median if k in results else None, "proxy"),
               ("RT", None, "rt"),
               ("CPU", lambda k: results[k].cpu_ms if k in results else None, "loopback"),
               ("RSS", lambda k: results[k].maxrss_kb if k in results else None, "loopback")]
    metrics += [("tput@%d" % c, lambda k: results[k].rate if k in results else None, "c%d" % c)
                for c in CONCURRENCY]
    pairs = [("tool", "curl"), ("tool", "py-proc"), ("pam", "curl"), ("pam", "py-loop"),
             ("pam-plain", "py-loop")]
    header = ["path", "pam_mailauth vs"] + [m[0] for m in metrics]
    rows = []
    geo = collections.defaultdict(list)
    for p in ps:
        for a, b in pairs:
            row = [p.key, "%s / %s" % (SHORT[a], SHORT[b])]
            for name, get, setting in metrics:
                if setting == "rt":
                    va = round_trips(results, p, a)[1]
                    vb = round_trips(results, p, b)[1]
                else:
                    va = get((p.key, a, setting))
                    vb = get((p.key, b, setting))
                r = ratio(va, vb)
                row.append(r)
                if r != "–" and float(r) > 0:
                    geo[(a, b, name)].append(float(r))
            rows.append(row)
    for a, b in pairs:
        row = ["all (geomean)", "%s / %s" % (SHORT[a], SHORT[b])]
        for name, _, _ in metrics:
            xs = geo.get((a, b, name))
            row.append("%.2f" % statistics.geometric_mean(xs) if xs else "–")
        rows.append(row)
    out.append(table(header, rows))
    if broker:
        out += render_broker(results, broker)
    return "\n".join(out)


def render_broker(results, info):
    """The broker's two sections: hit / miss next to in-process, and the load."""
    p = info["path"]
    out = ["", "## Broker (mailauthd) vs in-process: cache hit and miss - %s, Dovecot "
           "127.0.0.1:%d" % (p.title, p.direct_port), ""]
    bk = info["brokers"]
    out.append("mailauthd -f as nobody (setpriv), configuration root:nogroup 0640, socket in "
               "a directory it owns; two daemons side by side: *miss* with cache_ttl = 0 "
               "(every login goes to Dovecot), *hit* with cache_ttl = %d (filled by one login "
               "before its rows). Module argument `broker=SOCKET` instead of `config=`: an "
               "account request and an auth request per login on the Unix socket. Rows "
               "compared with each other ran in %d alternating blocks (in-process, miss, hit, "
               "in-process, ...), each block a new client process with one untimed warm-up "
               "login; %d timed logins per row (%d for the pamloop hit rows). Default "
               "max_connections (8), negative_ttl, max_failures."
               % (bk.get("hit", {}).get("cache_ttl", LOAD_CACHE_TTL), BROKER_ROUNDS,
                  BROKER_SAMPLES, BROKER_HIT_SAMPLES))
    out.append("")
    header = ["client", "mechanism", "answered by", "median ms", "p95 ms", "CPU ms/login",
              "broker CPU ms/login", "CPU ms/login total", "peak RSS MB", "logins/s @1",
              "Dovecot logins per login"]
    order = ["pam", "pam-bmiss", "pam-bhit", "pam-fresh", "pam-fresh-bhit", "tool",
             "tool-bmiss", "tool-bhit"]
    rows = []
    for c in order:
        cell = results.get((p.key, c, "broker"))
        if cell is None:
            continue
        nb = cell.performed or cell.n
        bcpu = cell.broker_cpu_s * 1000 / nb if cell.broker_cpu_s is not None else None
        mech = "/".join(m for m, _ in cell.mechs.most_common(2)) if cell.mechs else "–"
        row = [SHORT[c], mech,
               answered_by(cell.sources) if c in BROKER_CLIENTS else "in-process",
               fmt(cell.median), fmt(cell.p95), fmt(cell.cpu_ms, 2),
               fmt(bcpu, 2) if bcpu is not None else "–",
               fmt(cell.cpu_ms + (bcpu or 0), 2), fmt(cell.maxrss_kb / 1024), fmt(cell.rate),
               "%.2f (%d of %d)" % (cell.server_logins / nb, cell.server_logins, nb)
               if cell.server_logins is not None else "–"]
        if cell.ok != cell.n:
            row[0] += " [FAILED: %s]" % cell.fail_note()
        rows.append(row)
    out.append(table(header, rows))
    out.append("")
    out.append("CPU ms/login: the client process (as in the tables above); broker CPU: "
               "mailauthd's threads over the row (/proc/PID/task/*/schedstat), divided by "
               "the logins it served, warm-ups included; total = both. Mechanism and Dovecot "
               "logins: from Dovecot's log during the row (warm-ups included). Broker peak "
               "RSS (VmHWM) after these rows: %s."
               % ", ".join("%s %s MB" % (k, fmt(v["rss_kb"][0] / 1024))
                           for k, v in bk.items() if v.get("rss_kb")))
    out.append("")
    header = ["broker / in-process", "median", "p95", "Δ median ms", "CPU (client)",
              "CPU (total)", "RSS (client)"]
    rows = []
    for a, b in (("pam-bmiss", "pam"), ("pam-bhit", "pam"), ("pam-fresh-bhit", "pam-fresh"),
                 ("tool-bmiss", "tool"), ("tool-bhit", "tool")):
        ca, cb = results.get((p.key, a, "broker")), results.get((p.key, b, "broker"))
        if ca is None or cb is None:
            continue
        tot = ca.cpu_ms + (ca.broker_cpu_s * 1000 / (ca.performed or ca.n)
                           if ca.broker_cpu_s is not None else 0)
        rows.append(["%s / %s" % (SHORT[a], SHORT[b]), ratio(ca.median, cb.median),
                     ratio(ca.p95, cb.p95), "%+.2f" % (ca.median - cb.median),
                     ratio(ca.cpu_ms, cb.cpu_ms), ratio(tot, cb.cpu_ms),
                     ratio(ca.maxrss_kb, cb.maxrss_kb)])
    out.append(table(header, rows))

    loads = info.get("load")
    if not loads:
        return out
    mix = info["load_mix"]
    n = next(iter(loads.values()))["requests"]
    out.append("")
    out.append("## Load the mail server sees: %s HTTP-Basic-style requests, %d concurrent - "
               "%s, Dovecot 127.0.0.1:%d" % ("{:,}".format(n), LOAD_CONCURRENCY, p.title,
                                             p.direct_port))
    out.append("")
    out.append("pamloop -l: %d threads, a new PAM handle per request (pam_start, "
               "pam_authenticate, pam_end, PAM_RHOST = one address per user), the same %d "
               "requests in the same order both times: %d users (%s), %d right passwords, "
               "%d wrong: the user's previous password, repeated, and one-off typos, %d "
               "distinct wrong passwords in all (seed %d). In-process: `config=`; broker: a "
               "fresh mailauthd with cache_ttl = %d (negative cache, coalescing of identical "
               "concurrent requests, throttle and max_connections at their defaults). Dovecot "
               "figures are its log lines during the run: `imap-login: Info: Login: user=<...>` "
               "and `auth failed, N attempts` (N summed in parentheses)."
               % (LOAD_CONCURRENCY, n, mix["users"],
                  ", ".join("%s %d" % kv for kv in sorted(mix["by_user"].items(),
                                                          key=lambda kv: -kv[1])),
                  mix["right"], mix["wrong"], mix["distinct_wrong"], LOAD_SEED, LOAD_CACHE_TTL))
    out.append("")
    header = ["path", "verdicts as expected", "wall s", "requests/s", "p50 ms", "p95 ms",
              "max ms", "Dovecot logins", "Dovecot failed logins", "client CPU ms/req",
              "broker CPU ms/req", "answered by"]
    rows = []
    for k, ld in loads.items():
        rows.append([
            "in-process (config=)" if k == "in-process"
            else "broker (cache_ttl = %d)" % LOAD_CACHE_TTL,
            "%d/%d" % (ld["as_expected"], ld["requests"]) +
            ("" if ld["as_expected"] == ld["requests"] else " (PAM codes %s)" % ld["rc"]),
            "%.2f" % ld["wall_s"], fmt(ld["rate"]), fmt(ld["p50"]), fmt(ld["p95"]),
            fmt(ld["max"]), str(ld["server_logins"]),
            "%d (%d)" % (ld["server_failed"], ld["server_failed_attempts"]),
            fmt(ld["client_cpu_ms"], 2),
            fmt(ld["broker_cpu_ms"], 2) if ld["broker_cpu_ms"] is not None else "–",
            answered_by(ld["sources"]) if ld["sources"] is not None else "Dovecot, every one"])
    out.append(table(header, rows))
    out.append("")
    for k, ld in loads.items():
        out.append("- %s: Dovecot logins by user: %s; failed logins by user: %s" % (
            k, ", ".join("%s %d" % kv for kv in sorted(ld["logins_by_user"].items())) or "none",
            ", ".join("%s %d" % kv for kv in sorted(ld["failed_by_user"].items())) or "none"))
    if "in-process" in loads and "broker" in loads:
        a, b = loads["in-process"], loads["broker"]
        out.append("- broker / in-process: Dovecot logins %s, failed logins %s, wall time %s, "
                   "p50 %s, p95 %s" % (ratio(b["server_logins"], a["server_logins"]),
                                       ratio(b["server_failed"], a["server_failed"]),
                                       ratio(b["wall_s"], a["wall_s"]), ratio(b["p50"], a["p50"]),
                                       ratio(b["p95"], a["p95"])))
        if b.get("broker_rss_kb"):
            out.append("- the load's broker: peak RSS (VmHWM) %s MB" % fmt(b["broker_rss_kb"][0] / 1024))
    out.append("- answered by (the broker's log, result and source of each auth request): "
               "network = Dovecot's verdict; shared = a success taken from an identical "
               "request under way (a rejection shared that way logs as network too, so "
               "refused/network can exceed Dovecot's failed logins); cache / negative-cache = "
               "positive / negative cache; throttle = max_failures")
    return out


# --- profile ------------------------------------------------------------------------

def parse_callgrind(path):
    """Self cost per (object, function) and inclusive cost per function name, from a
    callgrind output file (event Ir only)."""
    names = {"ob": {}, "fn": {}, "fl": {}}
    self_cost = collections.Counter()
    incl_calls = collections.Counter()   # cost of calls made by fn (to other fns)
    ob = fn = None
    in_call = False
    call_target = None
    total = 0

    def name(kind, val):
        m = re.match(r"\((\d+)\)(?: (.*))?$", val)
        if not m:
            return val
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
            return m.group(2)
        return names[kind].get(m.group(1), "?")

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c0 = line[0]
            if c0.isdigit() or c0 in "+-*":
                parts = line.split()
                if len(parts) < 2:
                    continue
                cost = int(parts[1])
                if in_call:
                    if call_target != fn:
                        incl_calls[fn] += cost
                    in_call = False
                else:
                    self_cost[(ob, fn)] += cost
                    total += cost
                continue
            key, _, val = line.partition("=")
            if key == "ob":
                ob = name("ob", val)
            elif key == "fn":
                fn = name("fn", val)
            elif key == "cob":
                name("ob", val)
            elif key in ("cfn", "cfi", "cfl"):
                if key == "cfn":
                    call_target = name("fn", val)
                else:
                    name("fl", val)
            elif key in ("fl", "fi", "fe"):
                name("fl", val)
            elif key == "calls":
                in_call = True
    by_fn_self = collections.Counter()
    for (o, f_), c in self_cost.items():
        by_fn_self[f_] += c
    incl = collections.Counter()
    for f_ in set(by_fn_self) | set(incl_calls):
        incl[f_] = by_fn_self[f_] + incl_calls[f_]
    return total, self_cost, incl


OWN_OBJECTS = ("pam_mailauth.so", "mailauth")


def callgrind(argv, out, toggle=True):
    """Run argv under callgrind; returns (returncode, stdout, stderr, seconds)."""
    vg = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]
    if toggle:
        vg.append("--toggle-collect=pamloop_measured")
    t0 = time.perf_counter()
    r = subprocess.run(vg + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       input=PASSWORD + "\n")
    return r, time.perf_counter() - t0


def shares(total, self_cost, incl):
    by_obj = collections.Counter()
    for (o, f_), c in self_cost.items():
        by_obj[os.path.basename(o or "?")] += c
    tls = sum(c for o, c in by_obj.items() if o.startswith(("libssl", "libcrypto")))
    own = sum(c for o, c in by_obj.items() if o in OWN_OBJECTS)

    def inc(*names):
        return max([incl.get(n, 0) for n in names] + [0])
    return {
        "by_obj": by_obj, "tls": tls, "own": own,
        "pbkdf2": inc("PKCS5_PBKDF2_HMAC"),
        "handshake": inc("SSL_do_handshake", "SSL_connect"),
        "verify": inc("X509_verify_cert"),
        # lib/tls.c's own names first (static functions: the symbols are there).
        "ca": inc("load_trust", "load_ca_file", "SSL_CTX_load_verify_locations",
                  "SSL_CTX_load_verify_file", "X509_STORE_load_file",
                  "X509_STORE_load_locations", "SSL_CTX_set_default_verify_paths"),
        "ctx": inc("ctx_create", "SSL_CTX_new"),
        "config": inc("ma_config_load"),
        "libc_start": inc("_dl_start", "_dl_init", "OPENSSL_init_ssl", "OPENSSL_init_crypto"),
    }


def pct(x, total):
    return "%.1f%%" % (100.0 * x / total) if total else "–"


def profile():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    p = paths()[0]                  # IMAPS
    write_configs([p], timeout=120)
    svc = config_name(p, None)
    n = PROFILE_LOGINS
    loop = [PAMLOOP, "-D", PAMD, "-u", USER, "-p", PASSWORD, "-q"]
    runs = [
        ("warm", "in-process, logins 2..%d of one process (default mechanisms: SCRAM-SHA-256)"
         % (n + 1), loop + ["-s", svc, "-n", str(n), "-w", "1"], n, True),
        ("warm-plain", "in-process, logins 2..%d, mechanisms = PLAIN" % (n + 1),
         loop + ["-s", svc + "-plain", "-n", str(n), "-w", "1"], n, True),
        ("cold", "in-process, the first login of a process (nothing cached yet)",
         loop + ["-s", svc, "-n", "1", "-w", "0"], 1, True),
        ("tool", "`mailauth login`: the whole process (start-up, config, one login, exit)",
         [TOOL, "login", "-c", os.path.join(WORK, svc + ".conf"), USER], 1, False),
    ]
    parsed = {}
    for key, what, argv, logins, toggle in runs:
        out = os.path.join(WORK, "callgrind.%s.out" % key)
        log("== callgrind %-10s %s" % (key, what))
        r, secs = callgrind(argv, out, toggle)
        ok = r.returncode == 0
        if key != "tool":
            try:
                ok = ok and json.loads(r.stdout.strip().splitlines()[-1]).get("ok") == logins
            except (ValueError, IndexError):
                ok = False
        log("   %.0f s under valgrind%s" % (secs, "" if ok else ", FAILED:\n" + r.stderr[-1500:]))
        if not ok:
            return 1
        parsed[key] = (what, logins, out) + parse_callgrind(out)

    lines = ["# pam_mailauth profile (callgrind, IMAPS to the bench's Dovecot, through libpam)",
             "",
             "Instructions (Ir) per login; shares of all instructions counted in that run "
             "(self cost for objects, inclusive for functions).",
             ""]
    rows = []
    for key, (what, logins, out, total, self_cost, incl) in parsed.items():
        sh = shares(total, self_cost, incl)
        rows.append([key, "{:,}".format(total // logins), pct(sh["tls"], total),
                     pct(sh["own"], total), pct(sh["pbkdf2"], total),
                     pct(sh["handshake"], total), pct(sh["verify"], total),
                     pct(sh["ctx"], total), pct(sh["ca"], total), pct(sh["config"], total)])
    lines.append(table(["run", "Ir per login", "libssl+libcrypto (self)",
                        "pam_mailauth own code (self)", "PBKDF2 (SCRAM)",
                        "TLS handshake", "X509_verify_cert", "TLS context", "CA loading",
                        "config load"], rows))
    lines.append("")
    for key, (what, logins, out, total, self_cost, incl) in parsed.items():
        lines.append("- %s: %s" % (key, what))
    lines.append("")
    lines.append("Own code = self cost in pam_mailauth.so (the tool: the mailauth binary, which "
                 "links the same lib/ statically); libcrypto's internal functions have no "
                 "symbols in Debian's build and show as addresses.")

    what, logins, out, total, self_cost, incl = parsed["warm"]
    sh = shares(total, self_cost, incl)
    lines.append("")
    lines.append("## warm run: self cost by object")
    lines.append("")
    rows = [[o, "{:,}".format(c // logins), pct(c, total)]
            for o, c in sh["by_obj"].most_common(10)]
    lines.append(table(["object", "Ir per login", "share"], rows))
    lines.append("")
    lines.append("## warm run: inclusive cost of selected functions")
    lines.append("")
    wanted = [
        ("pam_authenticate", "one login through libpam, everything"),
        ("pam_sm_authenticate", "the module's entry point"),
        ("ma_config_load", "reading the configuration (every login)"),
        ("ma_authenticate", "library: connect, TLS, protocol, SASL"),
        ("ctx_get", "lib/tls.c: cached TLS context lookup"),
        ("ctx_create", "lib/tls.c: TLS context creation (incl. CA)"),
        ("load_trust", "lib/tls.c: CA loading"),
        ("SSL_CTX_new", "TLS context creation"),
        ("SSL_CTX_load_verify_locations", "CA loading (OpenSSL)"),
        ("SSL_do_handshake", "TLS handshake"),
        ("X509_verify_cert", "certificate chain verification"),
        ("PKCS5_PBKDF2_HMAC", "SCRAM key derivation (PBKDF2, i= from the server)"),
        ("SSL_read", "TLS record reads"),
        ("SSL_write", "TLS record writes"),
        ("SSL_free", "connection teardown"),
        ("OPENSSL_cleanse", "wiping (incl. inside PBKDF2's HMAC)"),
        ("getaddrinfo", "name resolution"),
        ("getpwnam_r", "local account lookup (minimum_uid)"),
    ]
    rows = [[f_, w, "{:,}".format(incl[f_] // logins), pct(incl[f_], total)]
            for f_, w in wanted if incl.get(f_)]
    lines.append(table(["function", "what", "Ir per login", "share"], rows))
    lines.append("")
    lines.append("## warm run: top 15 functions by self cost")
    lines.append("")
    rows = [[f_, os.path.basename(o or "?"), "{:,}".format(c // logins), pct(c, total)]
            for (o, f_), c in self_cost.most_common(15)]
    lines.append(table(["function", "object", "Ir per login", "share"], rows))
    lines.append("")
    lines.append("## warm run: pam_mailauth.so's own functions by self cost")
    lines.append("")
    ours = sorted(((k, c) for k, c in self_cost.items()
                   if os.path.basename(k[0] or "") in OWN_OBJECTS), key=lambda kc: -kc[1])
    rows = [[f_, "{:,}".format(c // logins), "%.2f%%" % (100.0 * c / total),
             "{:,}".format(incl.get(f_, 0) // logins)] for (o, f_), c in ours[:12]]
    lines.append(table(["function", "self Ir per login", "self share",
                        "inclusive Ir per login"], rows))
    lines.append("")
    lines.append("Full profiles: callgrind_annotate %s/callgrind.{warm,warm-plain,cold,tool}.out"
                 % WORK)
    log("")
    log("\n".join(lines))

    # Memory: peak RSS after 100 vs PROFILE_MEM logins in one process.
    mem_lines = ["", "## Memory: one process, %d in-process IMAPS logins (no valgrind)"
                 % PROFILE_MEM, ""]
    rows = []
    for threads in (1, 8):
        cps = sorted({min(100, PROFILE_MEM), PROFILE_MEM // 2, PROFILE_MEM})
        argv = [PAMLOOP, "-D", PAMD, "-s", svc, "-u", USER, "-p", PASSWORD, "-n",
                str(PROFILE_MEM), "-t", str(threads), "-q", "-c", ",".join(map(str, cps))]
        log("== memory: %d logins, %d thread(s)..." % (PROFILE_MEM, threads))
        t0 = time.perf_counter()
        res = run_loop(argv)
        log("   %.1f s, %s of %d ok" % (time.perf_counter() - t0, res.get("ok"), PROFILE_MEM))
        for cp in res.get("checkpoints", []):
            rows.append([str(threads), str(cp["n"]), "%.1f" % (cp["maxrss_kb"] / 1024),
                         "%.1f" % (cp["rss_kb"] / 1024)])
        if res.get("ok") != PROFILE_MEM:
            rows.append([str(threads), "FAILED", res.get("first_error", "?"), ""])
    mem_lines.append(table(["threads", "after N logins", "peak RSS MB (ru_maxrss)",
                            "current RSS MB (statm)"], rows))
    log("\n".join(mem_lines))
    with open(os.path.join(TMP, "profile.md"), "w") as f:
        f.write("\n".join(lines + mem_lines) + "\n")
    log("")
    log("(written to %s)" % os.path.join(TMP, "profile.md"))
    return 0


def main():
    # SIGTERM (run.sh interrupted) unwinds like an exception, so that the proxies and
    # the relay sink started here are stopped by the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cmd = sys.argv[1] if len(sys.argv) > 1 else "bench"
    if cmd == "bench":
        return bench()
    if cmd == "profile":
        return profile()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
