#!/usr/bin/python3
"""fakeserver.py - a scripted, one-connection IMAP server for pam_mailauth tests.

Listens on 127.0.0.1 (port 0: an ephemeral one), prints the port as the first line on
stdout, serves exactly one connection as the chosen --scenario dictates, and exits.
Python 3 standard library only.  See README.md next to this file.

Exit status: 0 the dialogue ended normally (the client closed or logged out),
1 the client broke a rule the scenario checks (a "violation": credentials before TLS,
a mechanism that was not advertised, LOGIN under LOGINDISABLED, ...), 2 the hard
timeout fired, 3 internal error or bad usage, 4 the TLS handshake failed (expected
in the certificate scenarios).  A violation wins over 4.
"""

import argparse
import base64
import binascii
import json
import os
import re
import select
import signal
import socket
import ssl
import struct
import sys
import time
import warnings

EXIT_OK, EXIT_VIOLATION, EXIT_HARD_TIMEOUT, EXIT_INTERNAL, EXIT_HANDSHAKE = 0, 1, 2, 3, 4
MAX_LINE = 128 * 1024          # what this server accepts from a client line


class Closed(Exception):
    """The peer closed, reset, or stayed idle too long."""


class Done(Exception):
    """The scenario is over (LOGOUT answered, connection reset on purpose...)."""


class HandshakeFailed(Exception):
    """The server-side TLS handshake failed."""


class HardTimeout(BaseException):
    """The global deadline fired (SIGALRM)."""


def printable(data, limit=300):
    """Escape bytes for the transcript; long data is shortened."""
    out = []
    for b in data[:limit]:
        if 0x20 <= b < 0x7f and b != 0x5c:
            out.append(chr(b))
        elif b == 0x5c:
            out.append("\\\\")
        else:
            out.append("\\x%02x" % b)
    s = "".join(out)
    if len(data) > limit:
        s += "...(%d bytes)" % len(data)
    return s


class Conn:
    """One client connection: plain or TLS (through memory BIOs, so that the bytes
    already buffered when STARTTLS starts are handed to the TLS layer and nothing is
    lost or read twice), with recording of everything the client sends."""

    def __init__(self, sock, args, ctx):
        self.sock = sock
        self.args = args
        self.ctx = ctx
        self.buf = b""             # application bytes received, not yet consumed
        self.tls = None            # ssl.SSLObject once a handshake started
        self.tls_up = False        # handshake completed: data is TLS application data
        self.inc = None
        self.out = None
        self.chunks = []
        self.violations = []
        self.handshake_failed = False
        self.transcript = open(args.transcript, "a", encoding="utf-8") if args.transcript else None
        self.sock.settimeout(args.idle)
        self._write_record()

    # -- bookkeeping -------------------------------------------------------------------
    def note(self, msg):
        self._tr("* " + msg)

    def violation(self, msg):
        self.violations.append(msg)
        self._tr("! VIOLATION: " + msg)

    def _tr(self, line):
        if self.args.verbose:
            sys.stderr.write("fakeserver[%s]: %s\n" % (self.args.scenario, line))
            sys.stderr.flush()
        if self.transcript:
            self.transcript.write(line + "\n")
            self.transcript.flush()

    def _record(self, data, tls):
        self.chunks.append({"tls": tls, "data": data.decode("latin-1")})
        self._tr(("C%s: " % ("" if tls else "(plain)")) + printable(data))
        self._write_record()

    def _write_record(self):
        if not self.args.record:
            return
        tmp = self.args.record + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            json.dump(self.chunks, f)
        os.replace(tmp, self.args.record)

    # -- raw socket --------------------------------------------------------------------
    def _sock_recv(self, timeout=None):
        """Bytes from the socket, b"" at EOF; Closed on reset or idle timeout."""
        t = self.args.idle if timeout is None else timeout
        try:
            r, _, _ = select.select([self.sock], [], [], t)
            if not r:
                raise Closed("idle for %.1f s" % t)
            return self.sock.recv(65536)
        except OSError as e:
            raise Closed("recv: %s" % e) from e

    def _sock_send(self, data):
        try:
            self.sock.sendall(data)
        except (OSError, socket.timeout) as e:
            raise Closed("send: %s" % e) from e

    def _flush(self):
        if self.out is not None:
            data = self.out.read()
            if data:
                self._sock_send(data)

    # -- application data --------------------------------------------------------------
    def fill(self, timeout=None):
        """Receive more application data into self.buf (and record it)."""
        if not self.tls_up:
            d = self._sock_recv(timeout)
            if not d:
                raise Closed("client closed")
            self._record(d, False)
            self.buf += d
            return
        while True:
            try:
                d = self.tls.read(65536)
            except ssl.SSLWantReadError:
                self._flush()
                raw = self._sock_recv(timeout)
                if not raw:
                    self.inc.write_eof()
                else:
                    self.inc.write(raw)
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError) as e:
                raise Closed("client closed TLS (%s)" % e.__class__.__name__) from e
            except ssl.SSLError as e:
                self._flush_quietly()
                raise Closed("TLS error: %s" % e) from e
            self._flush()
            if not d:
                raise Closed("client closed TLS")
            self._record(d, True)
            self.buf += d
            return

    def _flush_quietly(self):
        try:
            self._flush()
        except Closed:
            pass

    def readline(self):
        """One line without its CRLF.  A bare LF is accepted but is a violation."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 1:]
                if line.endswith(b"\r"):
                    line = line[:-1]
                else:
                    self.violation("line ends with a bare LF")
                return line
            if len(self.buf) > MAX_LINE:
                self.violation("client line longer than %d bytes" % MAX_LINE)
                raise Closed("over-long client line")
            self.fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self.fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def send(self, data):
        """Send DATA (str as latin-1, or bytes) in one write."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        for line in data.split(b"\r\n"):
            if line:
                self._tr("S: " + printable(line))
        if self.tls_up:
            try:
                self.tls.write(data)
            except ssl.SSLError as e:
                raise Closed("TLS write: %s" % e) from e
            self._flush()
        else:
            self._sock_send(data)

    def sendline(self, text):
        self.send(text + "\r\n")

    def wait(self, seconds):
        """Sleep SECONDS, but receive (and record) what the client sends meanwhile;
        Closed when it goes away."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                if self.tls is not None and not self.tls_up:
                    raw = self._sock_recv()
                    if not raw:
                        raise Closed("client closed")
                    continue
                self.fill()

    def drip(self, data, interval=1.0):
        """Send DATA one byte at a time, INTERVAL seconds apart."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.note("dripping %d bytes, one per %.1f s" % (len(data), interval))
        for i in range(len(data)):
            self.send(data[i:i + 1])
            self.wait(interval)

    # -- TLS ---------------------------------------------------------------------------
    def starttls(self):
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.tls = self.ctx.wrap_bio(self.inc, self.out, server_side=True)
        if self.buf:
            # The client sent bytes after its STARTTLS line without waiting for the
            # answer (recorded above as plain data).  Hand them to TLS like a naive
            # server would.
            self.violation("client pipelined %d bytes before the TLS handshake" % len(self.buf))
            self.inc.write(self.buf)
            self.buf = b""
        self.note("TLS handshake (serving %s)" % self.args.cert)
        try:
            self._handshake()
        except (ssl.SSLError, Closed) as e:
            self._flush_quietly()
            self.handshake_failed = True
            raise HandshakeFailed(str(e)) from e
        self._flush()
        self.tls_up = True
        self.note("TLS established: %s %s sni=%s" % (self.tls.version(), self.tls.cipher()[0],
                                                     getattr(self, "sni", None)))

    def _handshake(self):
        while True:
            try:
                self.tls.do_handshake()
                return
            except ssl.SSLWantReadError:
                pass
            self._flush()
            raw = self._sock_recv()
            if not raw:
                raise Closed("client closed during the handshake")
            self.inc.write(raw)

    # -- endings -----------------------------------------------------------------------
    def reset(self):
        """Abort with a TCP RST (SO_LINGER 0)."""
        self.note("resetting the connection")
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def silent(self, raw=False):
        """Never send anything; record what arrives until the client goes away.
        RAW: no TLS handshake was done (implicit mode), so what arrives is a TLS
        ClientHello, not application data: drain it without recording."""
        self.note("staying silent")
        while True:
            if raw:
                if not self._sock_recv():
                    raise Closed("client closed")
                continue
            self.fill()

    def close(self):
        if self.tls_up:
            try:
                self.tls.unwrap()
            except (ssl.SSLError, ValueError):
                pass
            self._flush_quietly()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# ----------------------------------------------------------------------------------------
# IMAP

TAG_RE = re.compile(rb"^([!#$&',\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+) ([A-Za-z]+)(?: (.*))?$", re.S)


def b64decode_strict(data):
    """RFC 4648 base64 without whitespace; '=' alone is the empty response (RFC 4959)."""
    if data == b"=":
        return b""
    if not re.fullmatch(rb"[A-Za-z0-9+/]*={0,2}", data) or len(data) % 4:
        raise ValueError("not base64")
    return base64.b64decode(data, validate=True)


class Imap:
    """A small, strict IMAP server.  Scenarios subclass it and override the hooks."""

    caps_plain = "IMAP4rev1 STARTTLS LOGINDISABLED"
    caps_tls = "IMAP4rev1 SASL-IR AUTH=PLAIN"
    greeting_caps = True                  # [CAPABILITY ...] in the greeting
    need_capability_cmd = False           # fail AUTHENTICATE unless CAPABILITY was sent

    def __init__(self, conn, args, mode):
        self.c = conn
        self.args = args
        self.mode = mode                  # "implicit" or "starttls"
        self.caps_known = False           # the client has been told the current caps
        self.user = os.fsencode(args.user)
        self.password = os.fsencode(args.password)

    # -- helpers -----------------------------------------------------------------------
    def caps(self):
        return self.caps_tls if self.c.tls_up else self.caps_plain

    def has_cap(self, name):
        return name.upper() in (t.upper() for t in self.caps().split())

    def run(self):
        if self.mode == "implicit":
            self.c.starttls()
        self.greet()
        self.loop()

    def greet(self):
        if self.greeting_caps:
            self.c.sendline("* OK [CAPABILITY %s] fake IMAP ready" % self.caps())
            self.caps_known = True
        else:
            self.c.sendline("* OK fake IMAP ready")

    def loop(self):
        while True:
            line = self.c.readline()
            m = TAG_RE.match(line)
            if not m:
                self.c.violation("malformed command line")
                self.c.sendline("* BAD malformed command")
                continue
            tag = m.group(1).decode("latin-1")
            cmd = m.group(2).decode("latin-1").upper()
            rest = m.group(3)
            handler = getattr(self, "cmd_" + cmd.lower(), None)
            if handler is None:
                self.c.sendline("%s BAD unknown command" % tag)
                continue
            handler(tag, rest)

    def check_secure(self, what):
        if not self.c.tls_up:
            self.c.violation("%s sent before TLS" % what)

    # -- commands ----------------------------------------------------------------------
    def cmd_capability(self, tag, rest):
        self.c.sendline("* CAPABILITY %s" % self.caps())
        self.c.sendline("%s OK CAPABILITY completed" % tag)
        self.caps_known = True

    def cmd_noop(self, tag, rest):
        self.c.sendline("%s OK NOOP completed" % tag)

    def cmd_logout(self, tag, rest):
        self.c.sendline("* BYE logging out")
        self.c.sendline("%s OK LOGOUT completed" % tag)
        raise Done("logout")

    def cmd_starttls(self, tag, rest):
        if self.c.tls_up or not self.has_cap("STARTTLS"):
            self.c.violation("STARTTLS sent but not advertised")
            self.c.sendline("%s BAD STARTTLS not available" % tag)
            return
        self.starttls(tag)

    def starttls(self, tag):
        self.c.sendline("%s OK Begin TLS negotiation now" % tag)
        self.c.starttls()
        self.caps_known = False          # RFC 3501 6.2.1: the client must ask again

    def cmd_authenticate(self, tag, rest):
        self.check_secure("AUTHENTICATE")
        if not self.caps_known:
            self.c.violation("AUTHENTICATE before learning the capabilities (after TLS)")
        parts = (rest or b"").split(b" ")
        if len(parts) not in (1, 2) or not parts[0]:
            self.c.violation("malformed AUTHENTICATE")
            self.c.sendline("%s BAD malformed AUTHENTICATE" % tag)
            return
        mech = parts[0].decode("latin-1").upper()
        ir = parts[1] if len(parts) == 2 else None
        if not self.has_cap("AUTH=" + mech):
            self.c.violation("AUTHENTICATE %s but that mechanism is not advertised" % mech)
            self.c.sendline("%s BAD mechanism not advertised" % tag)
            return
        if ir is not None and not self.has_cap("SASL-IR"):
            self.c.violation("initial response without SASL-IR")
            self.c.sendline("%s BAD SASL-IR not advertised" % tag)
            return
        if mech == "PLAIN":
            self.auth_plain(tag, ir)
        elif mech == "LOGIN":
            self.auth_login(tag, ir)
        else:
            self.c.sendline("%s NO [CANNOT] unsupported mechanism" % tag)

    def read_response(self, tag):
        """A client SASL response line; None when it cancelled with '*'."""
        line = self.c.readline()
        if line == b"*":
            self.c.sendline("%s BAD AUTHENTICATE cancelled" % tag)
            return None
        return line

    def decode(self, tag, data):
        try:
            return b64decode_strict(data)
        except (ValueError, binascii.Error):
            self.c.violation("SASL response is not valid base64")
            self.c.sendline("%s BAD invalid base64" % tag)
            return None

    def auth_plain(self, tag, ir):
        if ir is None:
            self.c.sendline("+ ")
            ir = self.read_response(tag)
            if ir is None:
                return
        payload = self.decode(tag, ir)
        if payload is None:
            return
        self.verdict(tag, payload == b"\0" + self.user + b"\0" + self.password)

    def auth_login(self, tag, ir):
        if ir is not None:
            user = ir                          # draft-murchison-sasl-login: may carry it
        else:
            self.c.sendline("+ VXNlcm5hbWU6")
            user = self.read_response(tag)
            if user is None:
                return
        self.c.sendline("+ UGFzc3dvcmQ6")
        pw = self.read_response(tag)
        if pw is None:
            return
        user = self.decode(tag, user)
        pw = None if user is None else self.decode(tag, pw)
        if pw is None:
            return
        self.verdict(tag, user == self.user and pw == self.password)

    def cmd_login(self, tag, rest):
        self.check_secure("LOGIN")
        if self.has_cap("LOGINDISABLED"):
            self.c.violation("LOGIN sent although LOGINDISABLED is advertised")
            self.c.sendline("%s NO [PRIVACYREQUIRED] LOGIN disabled" % tag)
            return
        if not self.caps_known:
            self.c.violation("LOGIN before learning the capabilities (after TLS)")
        args = self.parse_astrings(tag, rest or b"")
        if args is None:
            return
        if len(args) != 2:
            self.c.violation("LOGIN with %d arguments" % len(args))
            self.c.sendline("%s BAD LOGIN needs two arguments" % tag)
            return
        self.verdict(tag, args[0] == self.user and args[1] == self.password)

    def parse_astrings(self, tag, line):
        """Quoted strings and synchronizing literals (RFC 9051 4.3); atoms are refused
        because SPEC 3 says the client quotes or uses literals."""
        items = []
        i = 0
        while True:
            if i >= len(line):
                break
            if items or i > 0:
                if line[i:i + 1] != b" ":
                    self.c.violation("missing space between LOGIN arguments")
                    self.c.sendline("%s BAD syntax" % tag)
                    return None
                i += 1
            ch = line[i:i + 1]
            if ch == b'"':
                j = i + 1
                val = bytearray()
                while True:
                    if j >= len(line):
                        self.c.violation("unterminated quoted string")
                        self.c.sendline("%s BAD syntax" % tag)
                        return None
                    b = line[j:j + 1]
                    if b == b"\\":
                        nxt = line[j + 1:j + 2]
                        if nxt not in (b"\\", b'"'):
                            self.c.violation("bad escape in quoted string")
                            self.c.sendline("%s BAD syntax" % tag)
                            return None
                        val += nxt
                        j += 2
                    elif b == b'"':
                        j += 1
                        break
                    elif b[0] >= 0x80 or b[0] < 0x20:
                        self.c.violation("8-bit or control byte in a quoted string")
                        val += b
                        j += 1
                    else:
                        val += b
                        j += 1
                items.append(bytes(val))
                i = j
            elif ch == b"{":
                m = re.match(rb"\{([0-9]+)(\+?)\}$", line[i:])
                if not m:
                    self.c.violation("malformed literal")
                    self.c.sendline("%s BAD syntax" % tag)
                    return None
                n = int(m.group(1))
                if m.group(2):
                    self.c.violation("non-synchronizing literal without LITERAL+")
                else:
                    self.c.sendline("+ go ahead")
                items.append(self.c.read_exact(n))
                line = self.c.readline()
                i = 0
                if not line:
                    break
                continue
            else:
                self.c.violation("LOGIN argument neither quoted nor a literal")
                m = re.match(rb"[^ ]*", line[i:])
                items.append(m.group(0))
                i += len(m.group(0))
        return items

    def verdict(self, tag, ok):
        if ok:
            self.c.note("credentials accepted")
            self.c.sendline("%s OK [CAPABILITY IMAP4rev1] Logged in" % tag)
        else:
            self.c.note("credentials rejected")
            self.c.sendline("%s NO [AUTHENTICATIONFAILED] Authentication failed" % tag)


# ----------------------------------------------------------------------------------------
# Scenarios: name -> (default mode, class).  Mode "implicit" starts with the handshake;
# "starttls" greets in plain text and offers STARTTLS.  --tls overrides the default.

SCENARIOS = {}


def scenario(name, mode):
    def deco(cls):
        cls.scenario_name = name
        SCENARIOS[name] = (mode, cls)
        return cls
    return deco


@scenario("good_implicit", "implicit")
class GoodImplicit(Imap):
    pass


@scenario("good_starttls", "starttls")
class GoodStarttls(Imap):
    pass


@scenario("good_nocap", "implicit")
class GoodNocap(Imap):
    greeting_caps = False


@scenario("good_nocap_starttls", "starttls")
class GoodNocapStarttls(Imap):
    greeting_caps = False


@scenario("plain_continuation", "implicit")
class PlainContinuation(Imap):
    caps_tls = "IMAP4rev1 AUTH=PLAIN"


@scenario("login_mech", "implicit")
class LoginMech(Imap):
    caps_tls = "IMAP4rev1 AUTH=LOGIN"


@scenario("login_command", "implicit")
class LoginCommand(Imap):
    caps_tls = "IMAP4rev1"


@scenario("caps_differ", "starttls")
class CapsDiffer(Imap):
    caps_plain = "IMAP4rev1 STARTTLS SASL-IR AUTH=PLAIN"
    caps_tls = "IMAP4rev1 AUTH=LOGIN"


@scenario("logindisabled_after_tls", "starttls")
class LogindisabledAfterTls(Imap):
    caps_plain = "IMAP4rev1 STARTTLS SASL-IR AUTH=PLAIN"
    caps_tls = "IMAP4rev1 LOGINDISABLED"


@scenario("starttls_stripped", "starttls")
class StarttlsStripped(Imap):
    # No STARTTLS, and everything a careless client would want to see.
    caps_plain = "IMAP4rev1 SASL-IR AUTH=PLAIN"


@scenario("starttls_refused", "starttls")
class StarttlsRefused(Imap):
    caps_plain = "IMAP4rev1 STARTTLS SASL-IR AUTH=PLAIN"

    def starttls(self, tag):
        self.c.sendline("%s NO STARTTLS not available right now" % tag)


@scenario("starttls_refused_bad", "starttls")
class StarttlsRefusedBad(StarttlsRefused):
    def starttls(self, tag):
        self.c.sendline("%s BAD STARTTLS unknown" % tag)


@scenario("starttls_injected", "starttls")
class StarttlsInjected(Imap):
    def starttls(self, tag):
        # One write: the answer plus a line that a client must not read as if it came
        # over TLS (CVE-2011-0411 style response injection).
        self.c.send("%s OK Begin TLS negotiation now\r\n* OK injected\r\n" % tag)
        self.c.starttls()
        self.caps_known = False


@scenario("preauth", "implicit")
class Preauth(Imap):
    def greet(self):
        self.c.sendline("* PREAUTH [CAPABILITY %s] logged in as alice" % self.caps())
        self.caps_known = True


@scenario("bye_greeting", "implicit")
class ByeGreeting(Imap):
    def greet(self):
        self.c.sendline("* BYE server shutting down")


@scenario("bad_greeting", "implicit")
class BadGreeting(Imap):
    def greet(self):
        self.c.sendline("HELLO")


@scenario("overlong_line", "implicit")
class OverlongLine(Imap):
    def greet(self):
        # A greeting that looks valid but is 70 KiB long: a client that truncates
        # instead of failing would go on and log in.
        head = "* OK [CAPABILITY %s] " % self.caps()
        self.c.send(head + "x" * (70 * 1024 - len(head)))
        self.c.send("y" * (10 * 1024))
        self.c.send("\r\n")
        self.caps_known = True


@scenario("silent", "implicit")
class Silent(Imap):
    def run(self):
        self.c.silent(raw=self.mode == "implicit")


@scenario("tls_alert_first", "starttls")
class TlsAlertFirst(Imap):
    """A TLS endpoint that speaks first with a TLS alert record (protocol_version),
    where a plaintext greeting is expected: the client must name the port as an
    implicit-TLS one (issue [T2 3/3] wrong-port hints)."""
    def run(self):
        self.c.note("sending a TLS alert record instead of a greeting")
        self.c._sock_send(b"\x15\x03\x01\x00\x02\x02\x46")
        self.c.silent(raw=True)


@scenario("drip", "implicit")
class Drip(Imap):
    def greet(self):
        self.c.drip("* OK [CAPABILITY %s] fake IMAP ready\r\n" % self.caps())
        self.caps_known = True


@scenario("reset_after_greeting", "implicit")
class ResetAfterGreeting(Imap):
    def greet(self):
        super().greet()
        # Let the client read the greeting and send its next command, then reset.
        try:
            self.c.fill(timeout=1.0)
        except Closed:
            pass
        self.c.reset()
        raise Done("reset")


@scenario("wrong_tag", "implicit")
class WrongTag(Imap):
    def verdict(self, tag, ok):
        # A tag that starts like the client's: catches prefix matching too.
        self.c.sendline("%sX OK Logged in" % tag)


@scenario("unavailable", "implicit")
class Unavailable(Imap):
    def verdict(self, tag, ok):
        self.c.sendline("%s NO [UNAVAILABLE] Authentication backend down, try later" % tag)


@scenario("referral", "implicit")
class Referral(Imap):
    def verdict(self, tag, ok):
        self.c.sendline("%s NO [REFERRAL imap://x/] go away" % tag)


@scenario("authfail", "implicit")
class Authfail(Imap):
    def verdict(self, tag, ok):
        self.c.sendline("%s NO [AUTHENTICATIONFAILED] Authentication failed" % tag)


# ----------------------------------------------------------------------------------------

TLS_VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


def make_context(args):
    warnings.simplefilter("ignore", DeprecationWarning)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # Security level 0: this server must be able to offer what the client refuses
    # (1024-bit RSA, SHA-1 signatures, old protocol versions).
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = TLS_VERSIONS[args.tls_min]
    ctx.maximum_version = TLS_VERSIONS[args.tls_max]
    if hasattr(ctx, "num_tickets"):
        ctx.num_tickets = 0
    d = args.certs
    chain = os.path.join(d, args.cert + "-chain.pem")
    leaf = os.path.join(d, args.cert + ".pem")
    # --leaf-only is fakeserver.py's own option; fake_smtp.py and fake_more.py
    # share make_context() without it.
    leaf_only = getattr(args, "leaf_only", False)
    ctx.load_cert_chain(chain if os.path.exists(chain) and not leaf_only else leaf,
                        os.path.join(d, args.cert + ".key"))
    return ctx


def parse_args(argv):
    p = argparse.ArgumentParser(description="scripted one-connection IMAP server")
    p.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    p.add_argument("--tls", choices=("implicit", "starttls"),
                   help="override the scenario's default mode")
    p.add_argument("--certs", help="directory made by tests/lib/certs.sh")
    p.add_argument("--cert", default="server", help="NAME: serve NAME[-chain].pem, NAME.key")
    p.add_argument("--leaf-only", action="store_true",
                   help="serve NAME.pem alone, without its issuer (NAME-chain.pem)")
    p.add_argument("--record", help="write what the client sent to this JSON file")
    p.add_argument("--transcript", help="append a readable transcript to this file")
    p.add_argument("--tls-min", default="1.0", choices=sorted(TLS_VERSIONS))
    p.add_argument("--tls-max", default="1.3", choices=sorted(TLS_VERSIONS))
    p.add_argument("--user", default="alice")
    p.add_argument("--password", default="secret")
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


def serve_one(args, name, note, play, finish=None):
    """The life of every fake server (this one, fake_smtp.py, fake_more.py):
    listen on 127.0.0.1:args.port, print the port, serve ONE connection with
    play(conn), then finish(conn) if given; a hard timeout bounds it all.
    Returns the exit status (see the top of this file)."""
    def on_alarm(signum, frame):
        raise HardTimeout()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.hard_timeout)

    conn = None
    status = EXIT_OK
    try:
        ctx = make_context(args)
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", args.port))
        lsock.listen(1)
        sys.stdout.write("%d\n" % lsock.getsockname()[1])
        sys.stdout.flush()
        sock, _ = lsock.accept()
        lsock.close()
        # Each send() is one step of the script; do not let Nagle hold the second of
        # two small writes for the client's delayed ACK (40 ms per exchange).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Conn(sock, args, ctx)

        def on_sni(sslobj, sni, context):
            conn.sni = sni
        ctx.sni_callback = on_sni
        conn.note(note)
        try:
            play(conn)
        except Done as e:
            conn.note("done: %s" % e)
        except Closed as e:
            conn.note("connection over: %s" % e)
        except HandshakeFailed as e:
            conn.note("TLS handshake failed: %s" % e)
            status = EXIT_HANDSHAKE
        if finish is not None:
            finish(conn)
        try:
            conn.close()
        except (OSError, Closed):
            pass
    except HardTimeout:
        if conn:
            conn.note("hard timeout (%d s)" % args.hard_timeout)
        sys.stderr.write("%s: hard timeout\n" % name)
        status = EXIT_HARD_TIMEOUT
    except Exception as e:  # pylint: disable=broad-except
        if conn:
            conn.note("internal error: %r" % e)
        sys.stderr.write("%s: internal error: %r\n" % (name, e))
        import traceback
        traceback.print_exc()
        return EXIT_INTERNAL
    finally:
        signal.alarm(0)
    if conn and conn.violations:
        return EXIT_VIOLATION
    return status


def main(argv):
    args = parse_args(argv)
    mode, cls = SCENARIOS[args.scenario]
    if args.tls:
        mode = args.tls
    return serve_one(args, "fakeserver", "scenario %s, mode %s" % (args.scenario, mode),
                     lambda conn: cls(conn, args, mode).run())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
