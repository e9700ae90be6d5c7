#!/usr/bin/env python3
"""tests/real/httpload.py - an HTTP Basic authentication load generator.

    httpload.py --url http://127.0.0.1:PORT/private/ --cases CASES.json \
                [-n 1000] [-c 50] [--timeout 30] [--no-keepalive]

CASES.json is a JSON array of [user, password, expected] with expected 200 or 401
(a number or a string). Request i (0 <= i < N) uses case i mod len(cases), so the mix
of right and wrong passwords is the list's. C threads send the N requests, at most C
at once; each thread keeps one HTTP/1.1 connection open (keep-alive, as a browser or
an API client does; --no-keepalive opens one per request) and reads every answer to
its end before sending the next request on it.

A request whose connection fails (refused, reset, closed by the server while idle)
is sent again once on a new connection; a request that gets no complete answer
within --timeout seconds (default 30) is not repeated and counts as "timeout"
(a retry could double the load on a server that is merely slow).

Prints one JSON object: requests, concurrency, status (counts by HTTP status code,
plus "timeout" and "error"), expected (counts by the cases' expected status), wrong
(any answer other than the expected status, errors and timeouts included),
reconnects, latency_ms {p50, p95, p99, max, mean} over the answered requests
(nearest rank, from sending the request to the end of the answer) and the same per
status in latency_ms_by_status, elapsed_s,
requests_per_s, and up to 10 error messages. Exit status 0 when every request got
its expected status, 1 otherwise, 2 on a usage error. Standard library only.
"""

import argparse
import base64
import http.client
import json
import math
import socket
import sys
import threading
import time
import urllib.parse


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = max(0, math.ceil(p / 100.0 * len(sorted_values)) - 1)
    return sorted_values[k]


def summary(values):
    lat = sorted(values)
    if not lat:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    return {
        "p50": round(percentile(lat, 50), 2),
        "p95": round(percentile(lat, 95), 2),
        "p99": round(percentile(lat, 99), 2),
        "max": round(lat[-1], 2),
        "mean": round(sum(lat) / len(lat), 2),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="http://HOST:PORT/PATH")
    ap.add_argument("--cases", required=True, help="JSON array of [user, password, status]")
    ap.add_argument("-n", "--requests", type=int, default=1000)
    ap.add_argument("-c", "--concurrency", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    ap.add_argument("--no-keepalive", action="store_true")
    ap.add_argument("--deadline", type=float, default=900.0,
                    help="stop sending new requests after this many seconds")
    args = ap.parse_args()

    url = urllib.parse.urlsplit(args.url)
    if url.scheme != "http" or not url.hostname:
        print("httpload: only http://HOST[:PORT]/PATH URLs", file=sys.stderr)
        return 2
    host, port = url.hostname, url.port or 80
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    try:
        with open(args.cases, encoding="utf-8") as f:
            raw = json.load(f)
        cases = []
        for user, password, expected in raw:
            if ":" in user:
                raise ValueError("a Basic user name cannot contain ':' (%r)" % user)
            token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
            cases.append((user, "Basic " + token, int(expected)))
    except (OSError, ValueError, TypeError) as e:
        print("httpload: %s" % e, file=sys.stderr)
        return 2
    if not cases or args.requests < 1 or args.concurrency < 1 or args.timeout <= 0:
        print("httpload: need cases, -n >= 1, -c >= 1, --timeout > 0", file=sys.stderr)
        return 2

    lock = threading.Lock()
    state = {"next": 0}
    status = {}
    stats = {"wrong": 0, "reconnects": 0, "not_sent": 0}
    latencies = []
    by_status = {}
    errors = []
    t_start = time.monotonic()

    def note(msg):
        with lock:
            if len(errors) < 10:
                errors.append(msg)

    def count(key):
        with lock:
            status[key] = status.get(key, 0) + 1

    def worker():
        conn = None
        try:
            while True:
                with lock:
                    i = state["next"]
                    if i >= args.requests:
                        return
                    if time.monotonic() - t_start > args.deadline:
                        stats["not_sent"] += args.requests - i
                        state["next"] = args.requests
                        return
                    state["next"] = i + 1
                user, auth, expected = cases[i % len(cases)]
                headers = {"Authorization": auth}
                if args.no_keepalive:
                    headers["Connection"] = "close"
                got = None
                t0 = time.monotonic()
                for attempt in (0, 1):
                    fresh = conn is None
                    if conn is None:
                        conn = http.client.HTTPConnection(host, port, timeout=args.timeout)
                    try:
                        conn.request("GET", path, headers=headers)
                        resp = conn.getresponse()
                        resp.read()
                        got = resp.status
                        if args.no_keepalive or resp.will_close:
                            conn.close()
                            conn = None
                        break
                    except socket.timeout:
                        conn.close()
                        conn = None
                        got = "timeout"
                        break
                    except (OSError, http.client.HTTPException) as e:
                        conn.close()
                        conn = None
                        # A kept-alive connection the server closed meanwhile: once more.
                        if attempt == 0 and not fresh:
                            with lock:
                                stats["reconnects"] += 1
                            continue
                        got = "error"
                        note("request %d: %s: %s" % (i, user, e))
                        break
                elapsed = time.monotonic() - t0
                count(str(got))
                if isinstance(got, int):
                    with lock:
                        latencies.append(elapsed * 1000.0)
                        by_status.setdefault(str(got), []).append(elapsed * 1000.0)
                if got != expected:
                    with lock:
                        stats["wrong"] += 1
                    if got not in ("error",):
                        note("request %d: %s: expected %s, got %s" % (i, user, expected, got))
        finally:
            if conn is not None:
                conn.close()

    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(min(args.concurrency, args.requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t_start

    exp = {}
    for i in range(args.requests):
        k = str(cases[i % len(cases)][2])
        exp[k] = exp.get(k, 0) + 1
    lat = sorted(latencies)
    result = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "keepalive": not args.no_keepalive,
        "status": dict(sorted(status.items())),
        "expected": dict(sorted(exp.items())),
        "wrong": stats["wrong"] + stats["not_sent"],
        "not_sent": stats["not_sent"],
        "reconnects": stats["reconnects"],
        "latency_ms": summary(lat),
        "latency_ms_by_status": {k: summary(v) for k, v in sorted(by_status.items())},
        "elapsed_s": round(elapsed, 3),
        "requests_per_s": round(len(lat) / elapsed, 1) if elapsed > 0 else None,
        "errors": errors,
    }
    print(json.dumps(result, sort_keys=True))
    return 0 if result["wrong"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
