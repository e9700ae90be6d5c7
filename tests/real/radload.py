#!/usr/bin/env python3
"""tests/real/radload.py - a minimal RADIUS authentication load generator (RFC 2865).

    radload.py --server 127.0.0.1 --port PORT --secret-file FILE --cases CASES.json \
               [-n 200] [-p 20] [--timeout 5] [--retries 2] [--no-message-authenticator]

CASES.json is a JSON array of [user, password, expected] with expected "Accept" or
"Reject". Request i (0 <= i < N) uses case i mod len(cases), so the mix of right and
wrong passwords is the list's. At most P requests are outstanding at once: P threads,
each with its own UDP socket on 127.0.0.1, sends one Access-Request and waits for its
answer before sending the next.

Each Access-Request carries User-Name, User-Password (hidden as RFC 2865 5.2 says),
NAS-IP-Address 127.0.0.1, NAS-Port (the thread), and Message-Authenticator (RFC 3579
3.2; leave it out with --no-message-authenticator). An answer is taken only when it
comes from the server's address and port, its identifier matches, its Response
Authenticator is right, and its Message-Authenticator, when present, is right;
anything else is ignored as if it had not arrived (and counted in "ignored").

Timeout and retries: each attempt waits --timeout seconds (default 5). Then the very
same packet (same identifier, same Request Authenticator, so the server's duplicate
detection recognises it, RFC 5080 2.2.1) is sent again, at most --retries times
(default 2). A request none of whose attempts got an answer counts as "timeout".
Latency is from the first transmission to the accepted answer, so a retransmitted
request shows the wait it caused. "retransmits" counts the repeated packets.

Prints one JSON object: requests, parallelism, counts accept / reject / challenge /
timeout / other, expected counts from the cases, wrong (answered with the other
verdict or not answered), retransmits, ignored, latency_ms {p50, p95, p99, max, mean}
(nearest-rank percentiles over the answered requests) and the same per verdict in
latency_ms_by_verdict {Accept, Reject}, elapsed_s, requests_per_s,
and up to 10 error messages. Exit status 0 when every request got its expected
verdict, 1 otherwise, 2 on a usage error. Standard library only.
"""

import argparse
import hashlib
import hmac
import json
import math
import os
import socket
import struct
import sys
import threading
import time

ACCESS_REQUEST, ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_CHALLENGE = 1, 2, 3, 11
USER_NAME, USER_PASSWORD, NAS_IP_ADDRESS, NAS_PORT = 1, 2, 4, 5
MESSAGE_AUTHENTICATOR = 80
VERDICT = {ACCESS_ACCEPT: "Accept", ACCESS_REJECT: "Reject", ACCESS_CHALLENGE: "Challenge"}


def attr(typ, value):
    if len(value) > 253:
        raise ValueError("attribute %d too long (%d bytes)" % (typ, len(value)))
    return struct.pack("!BB", typ, len(value) + 2) + value


def hide_password(password, secret, authenticator):
    """RFC 2865 5.2: pad to a multiple of 16 (at most 128 bytes), XOR with the MD5 chain."""
    if len(password) > 128:
        raise ValueError("User-Password longer than 128 bytes")
    pad = (-len(password)) % 16
    if not password:
        pad = 16
    padded = password + b"\0" * pad
    out = b""
    prev = authenticator
    for i in range(0, len(padded), 16):
        b = hashlib.md5(secret + prev).digest()
        c = bytes(x ^ y for x, y in zip(padded[i:i + 16], b))
        out += c
        prev = c
    return out


def build_request(ident, user, password, secret, nas_port, message_authenticator):
    authenticator = os.urandom(16)
    attrs = attr(USER_NAME, user)
    attrs += attr(USER_PASSWORD, hide_password(password, secret, authenticator))
    attrs += attr(NAS_IP_ADDRESS, socket.inet_aton("127.0.0.1"))
    attrs += attr(NAS_PORT, struct.pack("!I", nas_port))
    if message_authenticator:
        # Computed over the whole packet with the attribute's value zeroed.
        attrs += attr(MESSAGE_AUTHENTICATOR, b"\0" * 16)
    length = 20 + len(attrs)
    packet = struct.pack("!BBH", ACCESS_REQUEST, ident, length) + authenticator + attrs
    if message_authenticator:
        mac = hmac.new(secret, packet, hashlib.md5).digest()
        packet = packet[:-16] + mac
    return packet, authenticator


def parse_attrs(data):
    out = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise ValueError("truncated attribute")
        typ, ln = data[i], data[i + 1]
        if ln < 2 or i + ln > len(data):
            raise ValueError("bad attribute length")
        out.append((typ, i, data[i + 2:i + ln]))
        i += ln
    return out


def check_response(resp, ident, req_auth, secret):
    """Returns the response code, or raises ValueError for a packet to ignore."""
    if len(resp) < 20:
        raise ValueError("short packet")
    code, rid, length = struct.unpack("!BBH", resp[:4])
    if rid != ident:
        raise ValueError("identifier %d, expected %d" % (rid, ident))
    if length < 20 or length > len(resp):
        raise ValueError("bad length")
    resp = resp[:length]
    expected = hashlib.md5(resp[:4] + req_auth + resp[20:] + secret).digest()
    if not hmac.compare_digest(expected, resp[4:20]):
        raise ValueError("wrong Response Authenticator (wrong secret?)")
    for typ, off, value in parse_attrs(resp[20:]):
        if typ == MESSAGE_AUTHENTICATOR:
            if len(value) != 16:
                raise ValueError("bad Message-Authenticator length")
            zeroed = bytearray(resp)
            start = 20 + off + 2
            zeroed[start:start + 16] = b"\0" * 16
            zeroed[4:20] = req_auth
            mac = hmac.new(secret, bytes(zeroed), hashlib.md5).digest()
            if not hmac.compare_digest(mac, value):
                raise ValueError("wrong Message-Authenticator in the answer")
    return code


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
    ap.add_argument("--server", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--secret-file", required=True, help="file whose first line is the shared secret")
    ap.add_argument("--cases", required=True, help="JSON array of [user, password, Accept|Reject]")
    ap.add_argument("-n", "--requests", type=int, default=200)
    ap.add_argument("-p", "--parallelism", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds per attempt")
    ap.add_argument("--retries", type=int, default=2, help="retransmissions after a timeout")
    ap.add_argument("--no-message-authenticator", action="store_true")
    ap.add_argument("--deadline", type=float, default=600.0,
                    help="stop sending new requests after this many seconds")
    args = ap.parse_args()

    try:
        with open(args.secret_file, "rb") as f:
            secret = f.readline().rstrip(b"\r\n")
        with open(args.cases, encoding="utf-8") as f:
            cases = json.load(f)
        cases = [(u.encode(), p.encode(), e) for u, p, e in cases]
    except (OSError, ValueError, TypeError) as e:
        print("radload: %s" % e, file=sys.stderr)
        return 2
    if not secret or not cases or any(e not in ("Accept", "Reject") for _, _, e in cases):
        print("radload: need a secret and cases with expected Accept or Reject", file=sys.stderr)
        return 2
    if args.requests < 1 or args.parallelism < 1 or args.retries < 0 or args.timeout <= 0:
        print("radload: bad -n/-p/--retries/--timeout", file=sys.stderr)
        return 2

    addr = (socket.gethostbyname(args.server), args.port)
    lock = threading.Lock()
    state = {"next": 0}
    counts = {"accept": 0, "reject": 0, "challenge": 0, "timeout": 0, "other": 0}
    stats = {"wrong": 0, "retransmits": 0, "ignored": 0, "not_sent": 0}
    latencies = []
    by_verdict = {}
    errors = []
    t_start = time.monotonic()

    def note(msg):
        with lock:
            if len(errors) < 10:
                errors.append(msg)

    def worker(thread_no):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        ident = thread_no % 256
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
                user, password, expected = cases[i % len(cases)]
                ident = (ident + 1) % 256
                packet, req_auth = build_request(ident, user, password, secret, thread_no,
                                                 not args.no_message_authenticator)
                t0 = time.monotonic()
                code = None
                for attempt in range(args.retries + 1):
                    if attempt:
                        with lock:
                            stats["retransmits"] += 1
                    sock.sendto(packet, addr)
                    until = time.monotonic() + args.timeout
                    while code is None:
                        left = until - time.monotonic()
                        if left <= 0:
                            break
                        sock.settimeout(left)
                        try:
                            data, src = sock.recvfrom(4096)
                        except socket.timeout:
                            break
                        if src != addr:
                            with lock:
                                stats["ignored"] += 1
                            continue
                        try:
                            code = check_response(data, ident, req_auth, secret)
                        except ValueError as e:
                            with lock:
                                stats["ignored"] += 1
                            note("request %d: ignored an answer: %s" % (i, e))
                    if code is not None:
                        break
                elapsed = time.monotonic() - t0
                verdict = VERDICT.get(code)
                with lock:
                    if code is None:
                        counts["timeout"] += 1
                    elif verdict is None:
                        counts["other"] += 1
                    else:
                        counts[verdict.lower()] += 1
                    if code is not None:
                        latencies.append(elapsed * 1000.0)
                        by_verdict.setdefault(verdict or "other", []).append(elapsed * 1000.0)
                    if verdict != expected:
                        stats["wrong"] += 1
                if verdict != expected:
                    note("request %d: %s: expected %s, got %s" % (
                        i, user.decode(errors="replace"), expected,
                        verdict or ("timeout" if code is None else "code %d" % code)))
        finally:
            sock.close()

    threads = [threading.Thread(target=worker, args=(t,), daemon=True)
               for t in range(min(args.parallelism, args.requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t_start

    exp = {"accept": 0, "reject": 0}
    for i in range(args.requests):
        exp[cases[i % len(cases)][2].lower()] += 1
    lat = sorted(latencies)
    answered = len(lat)
    result = {
        "requests": args.requests,
        "parallelism": args.parallelism,
        **counts,
        "expected": exp,
        "wrong": stats["wrong"] + stats["not_sent"],
        "not_sent": stats["not_sent"],
        "retransmits": stats["retransmits"],
        "ignored": stats["ignored"],
        "timeout_s": args.timeout,
        "retries": args.retries,
        "message_authenticator": not args.no_message_authenticator,
        "latency_ms": summary(lat),
        "latency_ms_by_verdict": {k: summary(v) for k, v in sorted(by_verdict.items())},
        "elapsed_s": round(elapsed, 3),
        "requests_per_s": round(answered / elapsed, 1) if elapsed > 0 else None,
        "errors": errors,
    }
    print(json.dumps(result, sort_keys=True))
    return 0 if result["wrong"] == 0 and counts["timeout"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
