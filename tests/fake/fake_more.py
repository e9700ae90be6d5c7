#!/usr/bin/python3
"""fake_more.py - more hostile scenarios for the scripted fake servers, used by
tests/unit/test_hostile_pam.c and tests/unit/test_hostile_input.c.

It imports fakeserver.py (IMAP) and fake_smtp.py (SMTP), adds to them, and runs one of
them; both keep their options, record format, transcript and exit statuses:

  fake_more.py --scenario NAME [fakeserver.py options]      IMAP, NAME from either
                                                            fakeserver.py or below
  fake_more.py smtp --script TEXT [fake_smtp.py options]    SMTP, with the directives
                                                            of fake_smtp.py plus:

    drip SECONDS TEXT   send TEXT + CRLF one byte at a time, SECONDS apart (escapes as
                        for "send")
    long N PREFIX       send PREFIX followed by N bytes "x" and CRLF, in one write
    readraw             receive one chunk of raw bytes (a TLS ClientHello) without
                        recording it as application data
    driptls SECONDS     the server side of a TLS handshake whose every byte is sent
                        SECONDS apart (the client's deadline ends it)

IMAP scenarios added here (default mode in brackets; --tls overrides):

  tagged_greeting [implicit]        "a1 OK ready" as the greeting
  smtp_greeting [implicit]          "220 ... ESMTP" on the IMAP port
  ssh_greeting [implicit]           "SSH-2.0-OpenSSH_9.2p1"
  nul_greeting [implicit]           binary greeting with NUL bytes
  referral_greeting [implicit]      "* OK [REFERRAL imap://...]" greeting
  referral_ok [implicit]            AUTHENTICATE answered "<tag> OK [REFERRAL ...]"
  missing_tag [implicit]            AUTHENTICATE answered "OK Logged in" (no tag)
  untagged_verdict [implicit]       AUTHENTICATE answered "* OK Logged in", then close
  old_tag [implicit]                AUTHENTICATE answered with the CAPABILITY tag
  presend_ok [implicit]             the tagged OK for the next command sent together
                                    with the CAPABILITY reply (after TLS), before the
                                    client's AUTHENTICATE; the real verdict follows
  presend_ok_greeting [implicit]    greeting with capabilities plus "a1 OK Logged in"
                                    in the same write
  presend_ok_continuation [implicit] AUTH=PLAIN without SASL-IR: "+ " and the
                                    tagged OK in one write, before the client's
                                    response; the real verdict follows
  bye_during_auth [implicit]        AUTHENTICATE answered "* BYE", then close
  overlong_verdict [implicit]       "<tag> OK " followed by 70 KiB
  endless_untagged_caps [implicit]  CAPABILITY answered by untagged lines forever
  endless_untagged_auth [implicit]  AUTHENTICATE answered by untagged lines forever
  greeting_silent [implicit]        the handshake, then never a greeting
  reset_at_greeting [implicit]      TCP RST instead of the greeting (after the
                                    handshake in implicit mode)
  handshake_reset [implicit]        reads the ClientHello, then TCP RST
  handshake_drip [implicit]         the server's handshake bytes one per second
  starttls_silent_handshake [starttls]  STARTTLS OK, then never a handshake byte
  starttls_handshake_reset [starttls]   STARTTLS OK, ClientHello read, TCP RST
  starttls_handshake_drip [starttls]    STARTTLS OK, handshake bytes one per second
  starttls_injected_late [starttls] STARTTLS OK; once the ClientHello is in, a
                                    plaintext line instead of a ServerHello
  auth_silent [implicit]            AUTHENTICATE never answered
  auth_reset [implicit]             AUTHENTICATE answered by TCP RST
  auth_drip [implicit]              the verdict (OK when the password is right)
                                    one byte per second
  bad_b64_challenge [implicit]      AUTH=LOGIN only; the challenge is not base64
  endless_continuation [implicit]   AUTH=LOGIN only; every client line gets another
                                    "+ VXNlcm5hbWU6"
  continuation_flood [implicit]     AUTH=LOGIN only; "+ VXNlcm5hbWU6" lines forever
                                    without waiting
  scram_plain [implicit]            AUTH=SCRAM-SHA-256 AUTH=PLAIN SASL-IR; SCRAM is
                                    answered NO (a server whose hashes cannot do it),
                                    PLAIN is checked exactly
  logout_silent [implicit]          good_implicit (good_starttls with --tls starttls),
                                    but LOGOUT is never answered: the server stays
                                    silent and open for 4 s, then closes.  The client
                                    going away after the verdict without LOGOUT, or
                                    sending anything after it, is a violation
"""

import os
import re
import ssl
import sys
import time

# Importing the servers must not leave tests/fake/__pycache__ in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# pylint: disable=wrong-import-position
import fakeserver  # noqa: E402
import fake_smtp  # noqa: E402
from fakeserver import Closed, Done, HandshakeFailed, Imap, scenario  # noqa: E402

FLOOD_MAX_BYTES = 32 * 1024 * 1024


def next_tag(tag):
    """The tag a client that numbers its commands would use next: "a7" -> "a8"."""
    m = re.match(r"^(.*?)([0-9]+)$", tag)
    if not m:
        return tag + "1"
    return "%s%d" % (m.group(1), int(m.group(2)) + 1)


def flood(conn, line):
    """Send LINE (+ CRLF) over and over until the client goes away (bounded)."""
    data = (line + "\r\n").encode("latin-1")
    batch = data * max(1, 16384 // len(data))
    conn.note("flooding with %r until the client goes away" % line)
    sent = 0
    old = conn.transcript
    conn.transcript = None            # no megabytes of transcript
    try:
        while sent < FLOOD_MAX_BYTES:
            conn.send(batch)
            sent += len(batch)
    finally:
        conn.transcript = old
    conn.note("flood: %d bytes sent, client still there" % sent)


def read_client_hello(conn):
    """Receive the client's first TLS bytes, not recorded (handshake data)."""
    raw = conn._sock_recv()           # pylint: disable=protected-access
    if not raw:
        raise Closed("client closed before its ClientHello")
    conn.note("received %d bytes of TLS handshake" % len(raw))
    return raw


def drip_handshake(conn, interval):
    """Start a server-side handshake and send its output one byte per INTERVAL
    seconds; the client's deadline ends it (Closed)."""
    conn.inc = ssl.MemoryBIO()
    conn.out = ssl.MemoryBIO()
    conn.tls = conn.ctx.wrap_bio(conn.inc, conn.out, server_side=True)
    conn.inc.write(read_client_hello(conn))
    try:
        conn.tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    except ssl.SSLError as e:
        raise HandshakeFailed(str(e)) from e
    data = conn.out.read()
    conn.note("dripping %d handshake bytes, one per %.1f s" % (len(data), interval))
    for i in range(len(data)):
        conn._sock_send(data[i:i + 1])  # pylint: disable=protected-access
        conn.wait(interval)           # drains (unrecorded) what the client sends
    raise Done("handshake dripped to the end")


# ----------------------------------------------------------------------------------------
# IMAP

@scenario("tagged_greeting", "implicit")
class TaggedGreeting(Imap):
    def greet(self):
        self.c.sendline("a1 OK fake IMAP ready")


@scenario("smtp_greeting", "implicit")
class SmtpGreeting(Imap):
    def greet(self):
        self.c.sendline("220 mail.example.org ESMTP ready")


@scenario("ssh_greeting", "implicit")
class SshGreeting(Imap):
    def greet(self):
        self.c.sendline("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3")


@scenario("nul_greeting", "implicit")
class NulGreeting(Imap):
    def greet(self):
        self.c.send(b"* OK \x00\x01\x02\xff ready\r\n")


@scenario("referral_greeting", "implicit")
class ReferralGreeting(Imap):
    def greet(self):
        self.c.sendline("* OK [REFERRAL imap://mail2.example.org/] use the other server")


@scenario("referral_ok", "implicit")
class ReferralOk(Imap):
    def verdict(self, tag, ok):
        self.c.sendline("%s OK [REFERRAL imap://mail2.example.org/] Logged in elsewhere" % tag)


@scenario("missing_tag", "implicit")
class MissingTag(Imap):
    def verdict(self, tag, ok):
        self.c.sendline("OK Logged in")


@scenario("untagged_verdict", "implicit")
class UntaggedVerdict(Imap):
    def verdict(self, tag, ok):
        self.c.sendline("* OK Logged in")
        raise Done("closing after an untagged verdict")


@scenario("old_tag", "implicit")
class OldTag(Imap):
    greeting_caps = False
    cap_tag = None

    def cmd_capability(self, tag, rest):
        self.cap_tag = tag
        super().cmd_capability(tag, rest)

    def verdict(self, tag, ok):
        self.c.sendline("%s OK Logged in" % (self.cap_tag or "a0"))


@scenario("presend_ok", "implicit")
class PresendOk(Imap):
    greeting_caps = False

    def cmd_capability(self, tag, rest):
        if not self.c.tls_up:
            super().cmd_capability(tag, rest)
            return
        # One write: the capability reply, and the answer to a command the client
        # has not sent yet.
        self.c.send("* CAPABILITY %s\r\n%s OK CAPABILITY completed\r\n"
                    "%s OK [CAPABILITY IMAP4rev1] Logged in\r\n"
                    % (self.caps(), tag, next_tag(tag)))
        self.caps_known = True


@scenario("presend_ok_greeting", "implicit")
class PresendOkGreeting(Imap):
    def greet(self):
        self.c.send("* OK [CAPABILITY %s] fake IMAP ready\r\n"
                    "a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n" % self.caps())
        self.caps_known = True


@scenario("presend_ok_continuation", "implicit")
class PresendOkContinuation(Imap):
    caps_tls = "IMAP4rev1 AUTH=PLAIN"

    def auth_plain(self, tag, ir):
        if ir is not None:
            self.c.violation("initial response without SASL-IR")
        self.c.send("+ \r\n%s OK [CAPABILITY IMAP4rev1] Logged in\r\n" % tag)
        response = self.read_response(tag)
        if response is None:
            return
        payload = self.decode(tag, response)
        if payload is not None:
            self.verdict(tag, payload == b"\0" + self.user + b"\0" + self.password)


@scenario("bye_during_auth", "implicit")
class ByeDuringAuth(Imap):
    def verdict(self, tag, ok):
        self.c.sendline("* BYE server shutting down")
        raise Done("BYE during authentication")


@scenario("overlong_verdict", "implicit")
class OverlongVerdict(Imap):
    def verdict(self, tag, ok):
        head = "%s OK [CAPABILITY IMAP4rev1] Logged in " % tag
        self.c.send(head + "x" * (70 * 1024) + "\r\n")


@scenario("endless_untagged_caps", "implicit")
class EndlessUntaggedCaps(Imap):
    greeting_caps = False

    def cmd_capability(self, tag, rest):
        flood(self.c, "* OK still collecting capabilities")
        raise Done("flood over")


@scenario("endless_untagged_auth", "implicit")
class EndlessUntaggedAuth(Imap):
    def verdict(self, tag, ok):
        flood(self.c, "* OK still thinking about it")
        raise Done("flood over")


@scenario("greeting_silent", "implicit")
class GreetingSilent(Imap):
    def greet(self):
        self.c.silent()


@scenario("reset_at_greeting", "implicit")
class ResetAtGreeting(Imap):
    def greet(self):
        self.c.reset()
        raise Done("reset instead of a greeting")


@scenario("handshake_reset", "implicit")
class HandshakeReset(Imap):
    def run(self):
        read_client_hello(self.c)
        self.c.reset()
        raise Done("reset during the handshake")


@scenario("handshake_drip", "implicit")
class HandshakeDrip(Imap):
    def run(self):
        drip_handshake(self.c, 1.0)


class StarttlsOnly(Imap):
    """A STARTTLS-mode server whose answer to STARTTLS is the hook."""
    caps_plain = "IMAP4rev1 STARTTLS LOGINDISABLED"


@scenario("starttls_silent_handshake", "starttls")
class StarttlsSilentHandshake(StarttlsOnly):
    def starttls(self, tag):
        self.c.sendline("%s OK Begin TLS negotiation now" % tag)
        self.c.silent(raw=True)


@scenario("starttls_handshake_reset", "starttls")
class StarttlsHandshakeReset(StarttlsOnly):
    def starttls(self, tag):
        self.c.sendline("%s OK Begin TLS negotiation now" % tag)
        read_client_hello(self.c)
        self.c.reset()
        raise Done("reset during the handshake")


@scenario("starttls_handshake_drip", "starttls")
class StarttlsHandshakeDrip(StarttlsOnly):
    def starttls(self, tag):
        self.c.sendline("%s OK Begin TLS negotiation now" % tag)
        drip_handshake(self.c, 1.0)


@scenario("starttls_injected_late", "starttls")
class StarttlsInjectedLate(StarttlsOnly):
    def starttls(self, tag):
        self.c.sendline("%s OK Begin TLS negotiation now" % tag)
        read_client_hello(self.c)
        # Plaintext where the ServerHello belongs.
        self.c.send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n")
        self.c.wait(1.0)
        raise Done("injected after the ClientHello")


@scenario("auth_silent", "implicit")
class AuthSilent(Imap):
    def verdict(self, tag, ok):
        self.c.silent()


@scenario("auth_reset", "implicit")
class AuthReset(Imap):
    def verdict(self, tag, ok):
        self.c.reset()
        raise Done("reset instead of a verdict")


@scenario("auth_drip", "implicit")
class AuthDrip(Imap):
    def verdict(self, tag, ok):
        if ok:
            self.c.drip("%s OK [CAPABILITY IMAP4rev1] Logged in\r\n" % tag)
        else:
            self.c.drip("%s NO [AUTHENTICATIONFAILED] Authentication failed\r\n" % tag)


class LoginOnly(Imap):
    """AUTH=LOGIN only, no SASL-IR: the client must wait for challenges."""
    caps_tls = "IMAP4rev1 AUTH=LOGIN"

    def cmd_authenticate(self, tag, rest):
        self.check_secure("AUTHENTICATE")
        if (rest or b"").upper() != b"LOGIN":
            self.c.violation("AUTHENTICATE %r, only LOGIN is advertised" % rest)
            self.c.sendline("%s BAD mechanism not advertised" % tag)
            return
        self.challenges(tag)

    def challenges(self, tag):
        raise NotImplementedError


@scenario("bad_b64_challenge", "implicit")
class BadB64Challenge(LoginOnly):
    def challenges(self, tag):
        self.c.sendline("+ !!!this is not base64!!!")
        line = self.c.readline()
        if line != b"*":
            self.c.note("client answered an invalid challenge with %r" % line)
        self.c.sendline("%s BAD AUTHENTICATE cancelled" % tag)


@scenario("endless_continuation", "implicit")
class EndlessContinuation(LoginOnly):
    def challenges(self, tag):
        rounds = 0
        while True:
            self.c.sendline("+ VXNlcm5hbWU6")
            line = self.c.readline()
            rounds += 1
            if line == b"*":
                self.c.note("client cancelled after %d challenges" % rounds)
                self.c.sendline("%s BAD AUTHENTICATE cancelled" % tag)
                return


@scenario("continuation_flood", "implicit")
class ContinuationFlood(LoginOnly):
    def challenges(self, tag):
        flood(self.c, "+ VXNlcm5hbWU6")
        raise Done("flood over")


@scenario("scram_plain", "implicit")
class ScramPlain(Imap):
    caps_tls = "IMAP4rev1 SASL-IR AUTH=SCRAM-SHA-256 AUTH=PLAIN"

    def cmd_authenticate(self, tag, rest):
        mech = (rest or b"").split(b" ")[0].upper()
        if mech == b"SCRAM-SHA-256":
            self.check_secure("AUTHENTICATE")
            self.c.note("SCRAM-SHA-256 attempted")
            self.c.sendline("%s NO [AUTHENTICATIONFAILED] Authentication failed" % tag)
            return
        super().cmd_authenticate(tag, rest)


@scenario("logout_silent", "implicit")
class LogoutSilent(Imap):
    # SPEC 2: "Connections end politely (LOGOUT / QUIT) without waiting long for the
    # reply."  No reply at all: a client that waits for the BYE / tagged OK, or for
    # the server to close first, runs into its deadline (longer than this linger).
    linger = 4.0
    verdict_sent = False
    logged_out = False

    def verdict(self, tag, ok):
        self.verdict_sent = True
        super().verdict(tag, ok)

    def cmd_logout(self, tag, rest):
        self.logged_out = True
        seen = len(self.c.chunks)
        self.c.note("LOGOUT not answered: silent for %.1f s, then closing" % self.linger)
        try:
            self.c.wait(self.linger)
        finally:
            if len(self.c.chunks) > seen:
                self.c.violation("the client sent more after LOGOUT")
        raise Done("closing %.1f s after an unanswered LOGOUT" % self.linger)

    def run(self):
        try:
            super().run()
        except Closed:
            if self.verdict_sent and not self.logged_out:
                self.c.violation("the client went away after the verdict without LOGOUT")
            raise


# ----------------------------------------------------------------------------------------
# SMTP: fake_smtp.Smtp with four more directives

MORE_OPS = ("drip", "long", "readraw", "driptls")


class SmtpMore(fake_smtp.Smtp):
    def __init__(self, conn, args):
        script = args.script
        # The base class checks the directive names: hand it a script without ours,
        # then parse the full one here.
        args.script = "\n".join(l for l in script.split("\n")
                                if l.strip().partition(" ")[0] not in MORE_OPS)
        try:
            super().__init__(conn, args)
        finally:
            args.script = script
        self.script = []
        for line in script.split("\n"):
            line = line.strip("\r")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            op, _, arg = line.strip().partition(" ")
            self.script.append((op, arg))

    def run(self):
        c = self.c
        for op, arg in self.script:
            if op == "tls":
                c.starttls()
            elif op == "send":
                c.send(fake_smtp.unescape(arg) + b"\r\n")
            elif op == "raw":
                c.send(fake_smtp.unescape(arg))
            elif op in ("expect", "expect="):
                want = self.expand(arg)
                line = self.expect_line(repr(want))
                ok = line == want if op == "expect=" else line[:len(want)].upper() == want.upper()
                if not ok:
                    c.violation("expected %s%r, got %r" % (
                        "" if op == "expect=" else "a line starting with ", want, line))
                    raise Done("unexpected client line")
            elif op == "flood":
                self.flood(fake_smtp.unescape(arg) + b"\r\n")
            elif op == "sleep":
                c.wait(float(arg))
            elif op == "scram":
                self.scram(arg)
            elif op == "reset":
                c.reset()
                raise Done("reset")
            elif op == "close":
                raise Done("closed by script")
            elif op == "drip":
                interval, _, text = arg.partition(" ")
                c.drip(fake_smtp.unescape(text) + b"\r\n", float(interval))
            elif op == "long":
                n, _, prefix = arg.partition(" ")
                c.send(fake_smtp.unescape(prefix) + b"x" * int(n) + b"\r\n")
            elif op == "readraw":
                read_client_hello(c)
            elif op == "driptls":
                drip_handshake(c, float(arg))
            else:
                raise ValueError("unknown directive %r" % op)
        c.note("script over; recording until the client closes")
        while True:
            self.readline()


def main(argv):
    if argv and argv[0] == "smtp":
        fake_smtp.Smtp = SmtpMore
        return fake_smtp.main(argv[1:])
    return fakeserver.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
