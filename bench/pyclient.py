#!/usr/bin/python3
"""bench/pyclient.py - the Python standard library's way to check a mail password,
for comparison with pam_mailauth (bench/bench.py runs it).

    pyclient.py PROTO TLS PORT CAFILE USER [-n LOGINS] [-t THREADS] [-w WARMUP]

PROTO imap|smtp, TLS implicit|starttls; host 127.0.0.1 (the test certificate has
that IP in its SAN); the password is read from the environment (BENCH_PASSWORD).
One login: connect with a verifying context (ssl.create_default_context(cafile=...):
chain, host name, TLS >= 1.2), (STARTTLS), log in with the library's default
method (imaplib: the IMAP LOGIN command; smtplib: the first of CRAM-MD5, PLAIN,
LOGIN that the server offers), then log out (LOGOUT / QUIT, waiting for the reply
as the libraries do).

Without -n: one login, exit status 0 on success (the per-process measurement).
With -n: an in-process loop of LOGINS logins over THREADS threads sharing one
SSLContext (as an application would), after WARMUP logins per thread; prints a
JSON object like bench/pamloop's (latencies, getrusage deltas, peak RSS).
"""
import imaplib
import os
import smtplib
import ssl
import sys


def make_login(proto, tls, port, cafile, user, password):
    ctx = ssl.create_default_context(cafile=cafile)
    host = "127.0.0.1"
    if proto == "imap":
        if tls == "implicit":
            def login():
                c = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=10)
                try:
                    c.login(user, password)
                finally:
                    c.logout()
        else:
            def login():
                c = imaplib.IMAP4(host, port, timeout=10)
                try:
                    c.starttls(ssl_context=ctx)
                    c.login(user, password)
                finally:
                    c.logout()
    else:
        if tls == "implicit":
            def login():
                c = smtplib.SMTP_SSL(host, port, local_hostname="localhost", context=ctx,
                                     timeout=10)
                try:
                    c.login(user, password)
                finally:
                    c.quit()
        else:
            def login():
                c = smtplib.SMTP(host, port, local_hostname="localhost", timeout=10)
                try:
                    c.starttls(context=ctx)
                    c.login(user, password)
                finally:
                    c.quit()
    return login


def main():
    args = sys.argv[1:]
    opts = {"-n": 0, "-t": 1, "-w": 0}
    pos = []
    i = 0
    while i < len(args):
        if args[i] in opts:
            opts[args[i]] = int(args[i + 1])
            i += 2
        else:
            pos.append(args[i])
            i += 1
    if len(pos) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    proto, tls, port, cafile, user = pos
    login = make_login(proto, tls, int(port), cafile, user, os.environ["BENCH_PASSWORD"])
    if opts["-n"] == 0:
        login()
        return 0
    return loop(login, opts["-n"], opts["-t"], opts["-w"])


def loop(login, n, threads, warmup):
    import json
    import resource
    import threading
    import time

    lat = [0.0] * n
    state = {"next": 0, "ok": 0, "error": ""}
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= n:
                return
            t0 = time.perf_counter()
            try:
                login()
                ok = True
            except Exception as e:  # noqa: BLE001 - any failure is reported, not raised
                ok = False
                err = "%s: %s" % (type(e).__name__, e)
            lat[i] = (time.perf_counter() - t0) * 1000
            with lock:
                if ok:
                    state["ok"] += 1
                elif not state["error"]:
                    state["error"] = err

    def warm():
        for _ in range(warmup):
            try:
                login()
            except Exception as e:  # noqa: BLE001
                state["error"] = state["error"] or "warm-up: %s" % e

    def run(fn):
        if threads == 1:
            fn()
            return
        ts = [threading.Thread(target=fn) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    run(warm)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    run(work)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "logins": n, "threads": threads, "ok": state["ok"], "failed": n - state["ok"],
        "first_error": state["error"], "wall_s": wall,
        "utime_s": r1.ru_utime - r0.ru_utime, "stime_s": r1.ru_stime - r0.ru_stime,
        "maxrss_kb": r1.ru_maxrss, "lat_ms": lat,
    }
    print(json.dumps(out))
    return 0 if state["ok"] == n else 1


if __name__ == "__main__":
    sys.exit(main())
