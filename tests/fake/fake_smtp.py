#!/usr/bin/python3
"""fake_smtp.py - a scripted, one-connection SMTP submission server for pam_mailauth
tests (tests/unit/test_smtp.c).

Listens on 127.0.0.1 (an ephemeral port unless --port), prints the port as the first
line on stdout, serves exactly one connection by following --script, and exits.
Python 3 standard library only.  Connection handling, TLS through memory BIOs, the
JSON record of every byte the client sent (with its TLS flag) and the transcript come
from fakeserver.py (Conn), so tests/unit/fake.h reads both servers' records.

The script is a list of directives, one per line ('#' starts a comment line):

  tls               TLS handshake now (first line for implicit TLS; after the 220
                    answer to STARTTLS otherwise)
  send TEXT         send TEXT + CRLF in one write; \\r \\n \\\\ \\xHH are unescaped,
                    so "send 220 Ready\\r\\n250 injected" sends two lines at once
  raw TEXT          the same without the final CRLF
  expect PREFIX     read one client line; it must start with PREFIX (ASCII
                    case-insensitive) or it is a violation and the dialogue ends;
                    the client closing instead is a violation too
  expect= LINE      read one client line; it must be exactly LINE
  flood TEXT        send TEXT + CRLF over and over until the client goes away
  sleep SECONDS     wait (recording what arrives)
  scram MODE        the server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) over
                    SMTP AUTH (RFC 4954): expects "AUTH SCRAM-SHA-256 <client-first>",
                    answers server-first and server-final as 334 challenges, then
                    235 after the client's empty response.  MODE: "ok"; "badsig"
                    (a wrong v=, the client must cancel with "*"); "wrongpass"
                    (the proof is checked against another password: 535)
  reset             abort with a TCP RST and end
  close             close politely and end
In expect/expect= arguments {PLAIN} is base64("\\0USER\\0PASSWORD"), {USER} and
{PASS} are base64 of the user name and of the password.

After the last directive the server records whatever the client still sends until it
closes (or --idle passes).  Always checked, as violations (exit status 1):
- a line or a byte of the password (raw or in any of the base64 forms above) received
  before TLS, unless --plain-auth-ok (tls = none tests);
- the client sending a line before the server answered the previous one (SMTP without
  PIPELINING, RFC 2920), i.e. more bytes buffered after a line read by expect;
- a HELO command (SPEC 2: HELO is never a fallback).

Exit status as fakeserver.py: 0 fine, 1 violation, 2 hard timeout, 3 internal error or
bad usage, 4 TLS handshake failed.
"""

import argparse
import base64
import hashlib
import hmac
import os
import sys

# Importing fakeserver must not leave tests/fake/__pycache__ in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# pylint: disable=wrong-import-position
from fakeserver import Closed, Done, serve_one  # noqa: E402

FLOOD_MAX_BYTES = 32 * 1024 * 1024     # a flood ends by itself after this much


def unescape(text):
    """\\r \\n \\t \\\\ \\xHH in a script argument; returns bytes."""
    out = bytearray()
    i = 0
    raw = text.encode("latin-1")
    while i < len(raw):
        c = raw[i]
        if c == 0x5c and i + 1 < len(raw):
            e = chr(raw[i + 1])
            if e == "r":
                out += b"\r"
            elif e == "n":
                out += b"\n"
            elif e == "t":
                out += b"\t"
            elif e == "\\":
                out += b"\\"
            elif e == "x" and i + 3 < len(raw):
                out.append(int(raw[i + 2:i + 4], 16))
                i += 2
            else:
                raise ValueError("bad escape \\%s" % e)
            i += 2
            continue
        out.append(c)
        i += 1
    return bytes(out)


class Smtp:
    """Follows the script on one connection."""

    def __init__(self, conn, args):
        self.c = conn
        self.args = args
        user = os.fsencode(args.user)
        password = os.fsencode(args.password)
        self.password = password
        self.macros = {
            "{PLAIN}": base64.b64encode(b"\0" + user + b"\0" + password),
            "{USER}": base64.b64encode(user),
            "{PASS}": base64.b64encode(password),
        }
        self.script = []
        for n, line in enumerate(args.script.split("\n"), 1):
            line = line.strip("\r")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            op, _, arg = line.strip().partition(" ")
            if op not in ("tls", "send", "raw", "expect", "expect=", "flood", "sleep",
                          "reset", "close", "scram"):
                raise ValueError("script line %d: unknown directive %r" % (n, op))
            self.script.append((op, arg))

    def expand(self, arg):
        data = unescape(arg)
        for k, v in self.macros.items():
            data = data.replace(k.encode("ascii"), v)
        return data

    def readline(self):
        line = self.c.readline()
        if line[:5].upper() == b"HELO " or line.upper() == b"HELO":
            self.c.violation("HELO sent (never a fallback)")
        if not self.c.tls_up and not self.args.plain_auth_ok and line[:4].upper() == b"AUTH":
            self.c.violation("AUTH before TLS")
        if self.c.buf:
            self.c.violation("client pipelined %d bytes without waiting for the reply"
                             % len(self.c.buf))
        return line

    def run(self):
        for op, arg in self.script:
            if op == "tls":
                self.c.starttls()
            elif op == "send":
                self.c.send(unescape(arg) + b"\r\n")
            elif op == "raw":
                self.c.send(unescape(arg))
            elif op in ("expect", "expect="):
                want = self.expand(arg)
                # The script says what the client must still send (QUIT
                # included): going away instead is a failure too.
                line = self.expect_line(repr(want))
                ok = line == want if op == "expect=" else line[:len(want)].upper() == want.upper()
                if not ok:
                    self.c.violation("expected %s%r, got %r" % (
                        "" if op == "expect=" else "a line starting with ", want, line))
                    raise Done("unexpected client line")
            elif op == "flood":
                self.flood(unescape(arg) + b"\r\n")
            elif op == "sleep":
                self.c.wait(float(arg))
            elif op == "scram":
                self.scram(arg)
            elif op == "reset":
                self.c.reset()
                raise Done("reset")
            elif op == "close":
                raise Done("closed by script")
        self.c.note("script over; recording until the client closes")
        while True:
            self.readline()

    def expect_line(self, what):
        try:
            return self.readline()
        except Closed as e:
            self.c.violation("expected %s, but the connection ended (%s)" % (what, e))
            raise Done("client gone") from e

    def scram(self, mode):
        """Server side of SCRAM-SHA-256 without channel binding."""
        def b64(data):
            return base64.b64encode(data).decode("ascii")

        def h(key, msg):
            return hmac.new(key, msg, hashlib.sha256).digest()

        line = self.expect_line("AUTH SCRAM-SHA-256")
        prefix = b"AUTH SCRAM-SHA-256 "
        if line[:len(prefix)].upper() != prefix:
            self.c.violation("expected AUTH SCRAM-SHA-256 with an initial response, got %r" % line)
            raise Done("unexpected client line")
        first = base64.b64decode(line[len(prefix):], validate=True)
        gs2, _, rest = first.partition(b",")
        authz, _, bare = rest.partition(b",")
        if gs2 not in (b"n", b"y") or authz != b"":
            self.c.violation("unexpected gs2 header in %r" % first)
            raise Done("bad client-first")
        attrs = dict(a.split(b"=", 1) for a in bare.split(b","))
        if attrs.get(b"n") != os.fsencode(self.args.user):
            self.c.violation("SCRAM user %r" % attrs.get(b"n"))
        nonce = attrs[b"r"] + b"fakeServerNonce0123456789"
        salt = b"fake-smtp-salt!!"
        iters = 4096
        server_first = b"r=" + nonce + b",s=" + b64(salt).encode() + b",i=" + str(iters).encode()
        self.c.sendline("334 " + b64(server_first))

        final = base64.b64decode(self.expect_line("client-final"), validate=True)
        without_proof, _, proof = final.rpartition(b",p=")
        fattrs = dict(a.split(b"=", 1) for a in without_proof.split(b","))
        if fattrs.get(b"r") != nonce or fattrs.get(b"c") != base64.b64encode(gs2 + b",,"):
            self.c.violation("client-final with a wrong nonce or channel binding: %r" % final)
        password = self.password if mode != "wrongpass" else b"not-the-password"
        salted = hashlib.pbkdf2_hmac("sha256", password, salt, iters)
        client_key = h(salted, b"Client Key")
        auth_message = bare + b"," + server_first + b"," + without_proof
        signature = h(hashlib.sha256(client_key).digest(), auth_message)
        expected = bytes(a ^ b for a, b in zip(client_key, signature))
        if base64.b64decode(proof, validate=True) != expected:
            self.c.note("SCRAM proof does not match")
            self.c.sendline("535 5.7.8 Authentication credentials invalid")
            return
        server_sig = h(h(salted, b"Server Key"), auth_message)
        if mode == "badsig":
            server_sig = bytes(32)
        # RFC 4954 4: no additional data with 235; server-final is a 334.
        self.c.sendline("334 " + b64(b"v=" + b64(server_sig).encode()))
        answer = self.expect_line("the empty response to server-final")
        if mode == "badsig":
            if answer != b"*":
                self.c.violation("client answered %r to a wrong server signature" % answer)
            self.c.sendline("501 5.7.0 Authentication aborted")
            return
        if answer != b"":
            self.c.violation("expected an empty response, got %r" % answer)
        self.c.sendline("235 2.7.0 Authentication successful")

    def flood(self, line):
        self.c.note("flooding with %r until the client goes away" % line)
        batch = line * max(1, 16384 // len(line))
        sent = 0
        old = self.c.transcript
        self.c.transcript = None          # do not write megabytes of transcript
        try:
            while sent < FLOOD_MAX_BYTES:
                self.c.send(batch)
                sent += len(batch)
        finally:
            self.c.transcript = old
        self.c.note("flood: %d bytes sent, client still there" % sent)

    def check_plaintext(self):
        """No credential byte before TLS (SPEC 2)."""
        if self.args.plain_auth_ok:
            return
        plain = b"".join(ch["data"].encode("latin-1") for ch in self.c.chunks if not ch["tls"])
        secrets = [self.password] + [v for k, v in self.macros.items() if k != "{USER}"]
        for s in secrets:
            if s and s in plain:
                self.c.violation("credential bytes received before TLS")
                return


def parse_args(argv):
    p = argparse.ArgumentParser(description="scripted one-connection SMTP server")
    p.add_argument("--script", required=True, help="directives, newline-separated")
    p.add_argument("--scenario", default="smtp", help="name for the transcript")
    p.add_argument("--certs", help="directory made by tests/lib/certs.sh")
    p.add_argument("--cert", default="server", help="NAME: serve NAME[-chain].pem, NAME.key")
    p.add_argument("--record", help="write what the client sent to this JSON file")
    p.add_argument("--transcript", help="append a readable transcript to this file")
    p.add_argument("--tls-min", default="1.2")
    p.add_argument("--tls-max", default="1.3")
    p.add_argument("--user", default="alice")
    p.add_argument("--password", default="secret")
    p.add_argument("--plain-auth-ok", action="store_true",
                   help="tls = none test: credentials in plaintext are expected")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--idle", type=float, default=5.0,
                   help="give up after this many seconds without client data")
    p.add_argument("--hard-timeout", type=int, default=20,
                   help="exit after this many seconds whatever happens")
    p.add_argument("--verbose", action="store_true", help="transcript on stderr too")
    args = p.parse_args(argv)
    if not args.certs:
        p.error("--certs DIR is required")
    return args


def main(argv):
    args = parse_args(argv)
    state = {}

    def play(conn):
        state["smtp"] = Smtp(conn, args)
        state["smtp"].run()

    def finish(conn):
        if "smtp" in state:
            state["smtp"].check_plaintext()

    return serve_one(args, "fake_smtp", "scenario %s" % args.scenario, play, finish)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
