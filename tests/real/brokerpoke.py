#!/usr/bin/python3
"""brokerpoke.py - speaks mailauthd's socket protocol (lib/wire.h) badly on purpose, for
tests/real/test_broker.sh.  Each command prints one line "RESULT ..." and exits 0 when it
could run (the test judges the result), 2 on a usage or setup error.

  auth SOCK USER PASSWORD          one well-formed AUTH request; prints the answer
  pipelined SOCK USER PASSWORD N   N AUTH requests in ONE write; prints every answer
  garbage SOCK                     a header of the wrong version; prints the answer, or
                                   "closed" when the daemon just closed
  oversize SOCK                    a header announcing a 65535-byte body
  partial SOCK SECONDS             half a request, then silence: prints after how many
                                   seconds the daemon closed ("open" if it did not)
  slowloris SOCK N SECONDS         N connections that each send one byte and then nothing,
                                   held for SECONDS
  holdserver PORTFILE STATSFILE SECONDS [CLOSE_AFTER]
                                   a TCP server on 127.0.0.1 that accepts connections and
                                   never answers, and closes each after CLOSE_AFTER
                                   seconds (default: never); writes its port to PORTFILE,
                                   and "MOST TOTAL" (the greatest number of connections
                                   open at once, and all of them) to STATSFILE, for
                                   SECONDS.  With CLOSE_AFTER the count is exact: the
                                   server itself closes before the client can come back
"""

import socket
import struct
import sys
import threading
import time

VERSION = 1
AUTH, ACCOUNT, RESULT = 1, 2, 0x81
T_USER, T_PASSWORD, T_SERVICE = 1, 2, 3
T_ERR, T_SOURCE, T_SERVER, T_MECH, T_TLS, T_DETAIL, T_LOGIN = 16, 17, 18, 19, 20, 21, 22
ERRS = ["ok", "auth-failed", "bad-input", "user-unknown", "unavailable", "tls-error",
        "protocol-error", "timeout", "no-mechanism", "config-error", "out-of-memory",
        "internal-error"]
SOURCES = ["network", "cache", "negative-cache", "throttle", "offline", "broker"]


def field(tag, value):
    return struct.pack(">BH", tag, len(value)) + value


def frame(ftype, body):
    return struct.pack(">BBH", VERSION, ftype, len(body)) + body


def auth_frame(user, password):
    return frame(AUTH, field(T_USER, user.encode()) + field(T_PASSWORD, password.encode()) +
                 field(T_SERVICE, b"brokerpoke"))


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(path)
    return s


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_answer(s):
    hdr = recv_exact(s, 4)
    if hdr is None:
        return "closed"
    ver, ftype, blen = struct.unpack(">BBH", hdr)
    body = recv_exact(s, blen)
    if ver != VERSION or ftype != RESULT or body is None:
        return "malformed"
    out, i = {}, 0
    while i < len(body):
        tag, flen = struct.unpack(">BH", body[i:i + 3])
        out[tag] = body[i + 3:i + 3 + flen]
        i += 3 + flen
    err = out.get(T_ERR, b"\xff")[0]
    src = out.get(T_SOURCE, b"\x00")[0]
    return "err=%s source=%s detail=%s" % (
        ERRS[err] if err < len(ERRS) else err, SOURCES[src] if src < len(SOURCES) else src,
        out.get(T_DETAIL, b"").decode(errors="replace").replace(" ", "_"))


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[0]
    if cmd == "auth":
        s = connect(argv[1])
        s.sendall(auth_frame(argv[2], argv[3]))
        print("RESULT", read_answer(s))
    elif cmd == "pipelined":
        s = connect(argv[1])
        n = int(argv[4])
        s.sendall(auth_frame(argv[2], argv[3]) * n)
        print("RESULT", " | ".join(read_answer(s) for _ in range(n)))
    elif cmd == "garbage":
        s = connect(argv[1])
        s.sendall(struct.pack(">BBH", 9, AUTH, 4) + b"abcd")
        print("RESULT", read_answer(s))
    elif cmd == "oversize":
        s = connect(argv[1])
        s.sendall(struct.pack(">BBH", VERSION, AUTH, 65535) + b"x" * 100)
        print("RESULT", read_answer(s))
    elif cmd == "partial":
        s = connect(argv[1])
        whole = auth_frame("alice", "not-sent-whole")
        s.sendall(whole[:len(whole) // 2])
        t0 = time.monotonic()
        s.settimeout(float(argv[2]))
        try:
            data = s.recv(100)
            print("RESULT closed after %.1f s%s" % (time.monotonic() - t0,
                                                    " (with an answer)" if data else ""))
        except socket.timeout:
            print("RESULT open after %.1f s" % (time.monotonic() - t0))
    elif cmd == "slowloris":
        n, hold = int(argv[2]), float(argv[3])
        conns = []
        for _ in range(n):
            s = connect(argv[1])
            s.sendall(b"\x01")
            conns.append(s)
        time.sleep(hold)
        print("RESULT held %d connections for %.1f s" % (n, hold))
    elif cmd == "holdserver":
        portfile, statsfile, seconds = argv[1], argv[2], float(argv[3])
        close_after = float(argv[4]) if len(argv) > 4 else 0.0
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(64)
        lock = threading.Lock()
        state = {"open": 0, "most": 0, "total": 0}

        def hold(c):
            with lock:
                state["open"] += 1
                state["total"] += 1
                state["most"] = max(state["most"], state["open"])
                with open(statsfile, "w") as f:
                    f.write("%d %d\n" % (state["most"], state["total"]))
            if close_after > 0:
                time.sleep(close_after)
                with lock:
                    state["open"] -= 1
                c.close()
                return
            try:
                while c.recv(4096):
                    pass
            except OSError:
                pass
            with lock:
                state["open"] -= 1
            c.close()

        with open(portfile + ".tmp", "w") as f:
            f.write("%d\n" % lsock.getsockname()[1])
        import os
        os.rename(portfile + ".tmp", portfile)
        with open(statsfile, "w") as f:
            f.write("0 0\n")
        lsock.settimeout(0.2)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                c, _ = lsock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=hold, args=(c,), daemon=True).start()
        print("RESULT most=%d total=%d" % (state["most"], state["total"]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
