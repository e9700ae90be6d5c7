#!/usr/bin/env python3
"""fuzz/seeds.py - writes the seed corpora fuzz/corpus/<target>/ (committed).

Run from the repository root after changing it: python3 fuzz/seeds.py
Each seed is small and realistic: Dovecot / Postfix / Gmail / Exchange lines,
the RFC 5802 / RFC 7677 / RFC 2195 examples, the example configuration,
broker frames (lib/wire.h).
The input formats are described at the top of each fuzz/fuzz_*.c.
"""
import base64
import os
import shutil
import subprocess
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# Bits of enum ma_mech (lib/config.h), in preference order.
S256P, S256, S1P, S1, CRAM, PLAIN, LOGIN, IMAPLOGIN = (1 << i for i in range(8))
DEFAULT = 0xFF & ~CRAM

# RFC 5802 section 5 and RFC 7677 section 3.
SHA1_SFIRST = b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
SHA1_SFINAL = b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="
SHA256_SFIRST = (b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                 b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
SHA256_SFINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
# RFC 2195 section 2.
CRAM_CHALLENGE = b"<1896.697170952@postoffice.reston.mci.net>"


def b64(data):
    return base64.b64encode(data)


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def lines(*ls):
    return b"\n".join(ls)


def crlf(*ls):
    return b"".join(l + b"\r\n" for l in ls)


def base64_seeds():
    for name, data in [
        ("empty", b""), ("pad2", b"AA=="), ("pad1", b"AAA="), ("plain", b"AGFsaWNlAHNlY3JldA=="),
        ("username", b"VXNlcm5hbWU6"), ("cram", b64(CRAM_CHALLENGE)),
        ("server-first", b64(SHA256_SFIRST)), ("salt", b"W22ZaJ0SNY7soEsUEjb6gQ=="),
        ("bad-pad", b"AB=A"), ("bad-bits", b"AB=="), ("space", b"QUJD REVG"),
        ("binary", bytes(range(256))),
    ]:
        write("fuzz_base64", name, data)


def imap_seeds():
    dovecot_greeting = (b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE "
                        b"LITERAL+ STARTTLS LOGINDISABLED AUTH=PLAIN] Dovecot (Debian) ready.")
    caps = (b"* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
            b"AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-1 AUTH=SCRAM-SHA-256 "
            b"AUTH=SCRAM-SHA-256-PLUS AUTH=CRAM-MD5")
    for name, data in [
        ("dovecot", lines(dovecot_greeting, caps,
                          b"a1 OK Pre-login capabilities listed, post-login capabilities have more.",
                          b"a2 OK [CAPABILITY IMAP4rev1 SASL-IR] Logged in")),
        ("gmail", lines(b"* OK Gimap ready for requests from 192.0.2.1 a1mb123456789abc",
                        b"* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN "
                        b"X-GM-EXT-1 XYZZY SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN "
                        b"AUTH=OAUTHBEARER AUTH=XOAUTH",
                        b"a1 OK Thats all she wrote! a1mb123456789abc")),
        ("exchange", lines(b"* OK The Microsoft Exchange IMAP4 service is ready.",
                           b"* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=NTLM AUTH=GSSAPI "
                           b"UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+")),
        ("rejected", lines(b"a2 NO [AUTHENTICATIONFAILED] Authentication failed.",
                           b"a3 NO [UNAVAILABLE] Temporary authentication failure.",
                           b"a4 BAD Error in IMAP command AUTHENTICATE: Unsupported mechanism")),
        ("continuation", lines(b"+ ", b"+", b"+ " + b64(SHA256_SFIRST), b"+ " + b64(SHA256_SFINAL))),
        ("hostile", lines(b"* PREAUTH [CAPABILITY IMAP4rev1] logged in already",
                          b"* BYE [ALERT] go away",
                          b"a1 OK [REFERRAL imap://user;AUTH=*@other.example/] try there",
                          b"* CAPABILITY AUTH=XPLAIN AUTH=PLAINX AUTH= AUTH=plain starttls",
                          b"a1 OK [unterminated code", b"+x", b"* ", b"*", b"a{1} OK x",
                          b"a1 PREAUTH no")),
        ("literal", lines(b"alice", b"bob pass \"quoted\" \\\\ back", b"caf\xc3\xa9 pw",
                          b"line\rbreak")),
    ]:
        write("fuzz_imap", name, data)


def smtp_seeds():
    postfix_ehlo = lines(b"250-mail.example.org", b"250-PIPELINING", b"250-SIZE 10240000",
                         b"250-VRFY", b"250-ETRN", b"250-STARTTLS", b"250-AUTH PLAIN LOGIN",
                         b"250-AUTH=PLAIN LOGIN", b"250-ENHANCEDSTATUSCODES", b"250-8BITMIME",
                         b"250-DSN", b"250-SMTPUTF8", b"250 CHUNKING")
    for name, data in [
        ("postfix", lines(b"220 mail.example.org ESMTP Postfix (Debian/GNU)", postfix_ehlo)),
        ("dovecot", lines(b"220 mail.example.org Dovecot ready.", b"250-mail.example.org",
                          b"250-8BITMIME", b"250-AUTH PLAIN SCRAM-SHA-256 SCRAM-SHA-256-PLUS",
                          b"250-BURL imap", b"250-CHUNKING", b"250-ENHANCEDSTATUSCODES",
                          b"250-SIZE", b"250 PIPELINING")),
        ("auth", lines(b"334 VXNlcm5hbWU6", b"334 UGFzc3dvcmQ6", b"334 ", b"334",
                       b"235 2.7.0 Authentication successful",
                       b"535 5.7.8 Error: authentication failed: authentication failure",
                       b"454 4.7.0 Temporary authentication failure", b"504 5.5.4 Unrecognized",
                       b"534 5.7.9 Authentication mechanism is too weak")),
        ("refusals", lines(b"554 5.7.1 No SMTP service here", b"421 4.3.2 Service shutting down",
                           b"220 2.0.0 Ready to start TLS", b"501 5.5.4 Syntax error")),
        ("malformed", lines(b"250-first", b"251 other code", b"2500 x", b"25", b"600 x", b"250\tx",
                            b"250-AUTH", b"250-AUTH=", b"250-STARTTLS=yes", b"250-XPLAIN AUTH",
                            b"250-auth plain xplain Login", b"[192.0.2.1]", b"[IPv6:2001:db8::1]",
                            b"host-.example", b"a" * 64 + b".example")),
    ]:
        write("fuzz_smtp", name, data)


def config_seeds():
    with open(os.path.join(ROOT, "..", "..", "conf", "pam_mailauth.conf"), "rb") as f:
        write("fuzz_config", "example", f.read())
    pin0 = b"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    pin1 = b"sha256//AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
    write("fuzz_config", "full", b"""timeout = 30
ca_file = "/etc/ssl/ca.pem"
ca_path = /etc/ssl/certs
tls_min_version = "1.3"
login = "%l@example.org"
lowercase = yes
helo_name = "mx1.example.org"
domains = {"example.org", "Example.NET"}
mechanism_fallback = no
minimum_uid = 500
require_local_user = true
server primary {
  protocol = smtp
  host = "smtp.example.org"
  port = 2525
  tls = starttls
  verify_name = "mx.example.org"
  ca_file = "/etc/own.pem"
  ca_path = "/etc/own"
  pin = {\"""" + pin0 + b"""\", \"""" + pin1 + b"""\"}
  mechanisms = {"scram-sha-256", PLAIN, CRAM-MD5}
  domains = {"example.net"}
  channel_binding = tls-unique
}
server second { host = "127.0.0.1" channel_binding = none }
""")
    write("fuzz_config", "tests-real", b"""timeout = 5
ca_file = "/tmp/certs/ca.pem"
server dovecot {
  protocol = imap
  host = "127.0.0.1"
  port = 20143
  tls = starttls
}
""")
    write("fuzz_config", "loopback", b"""/* plaintext, loopback only */
server local { host = "localhost" tls = none protocol = smtp port = 25 }
server v6 { host = "::1" tls = none mechanisms = {IMAP-LOGIN, "LOGIN"} }
// another comment style
server v4 { host = "127.0.0.2"  tls = "none" }  # trailing comment
""")
    write("fuzz_config", "errors", b"""timeout = 0x10
login = "fixed"
server a { host = "mail.example.org" tls = none pin = {"sha256//short"} }
server a { host = "${HOME}" }
""")


def scram_seeds():
    # flag byte: bits 0-1 SHA-256 / SHA-1 / SHA-256-PLUS / SHA-1-PLUS, bit 2 channel binding
    write("fuzz_scram", "rfc7677", b"\x00" + lines(SHA256_SFIRST, SHA256_SFINAL))
    write("fuzz_scram", "rfc5802", b"\x01" + lines(SHA1_SFIRST, SHA1_SFINAL))
    write("fuzz_scram", "rfc7677-y", b"\x04" + lines(SHA256_SFIRST, SHA256_SFINAL))
    write("fuzz_scram", "plus", b"\x06" + lines(SHA256_SFIRST, SHA256_SFINAL))
    write("fuzz_scram", "error", b"\x00" + lines(SHA256_SFIRST, b"e=invalid-proof"))
    write("fuzz_scram", "extensions", b"\x00" + lines(SHA256_SFIRST + b",x=1,y=two",
                                                      SHA256_SFINAL + b",z=3"))
    write("fuzz_scram", "mandatory-ext", b"\x00" + lines(b"m=ext," + SHA256_SFIRST, SHA256_SFINAL))
    write("fuzz_scram", "low-iter", b"\x00" + SHA256_SFIRST.replace(b"i=4096", b"i=4095"))
    write("fuzz_scram", "same-nonce", b"\x00" + b"r=rOprNGfwEbeRWgbNEkqO,s=QSXCR+Q6sek8bf92,i=4096")
    write("fuzz_scram", "extra", b"\x00" + lines(SHA256_SFIRST, SHA256_SFINAL, b"v=again"))


def mech_seeds():
    write("fuzz_mech", "plain", b"\x00" + lines(b"alice", b"secret"))
    write("fuzz_mech", "plain-again", b"\x00" + lines(b"alice", b"secret", b""))
    write("fuzz_mech", "login", b"\x01" + lines(b"alice", b"secret", b"Username:", b"Password:"))
    write("fuzz_mech", "login-third", b"\x01" + lines(b"alice", b"secret", b"", b"", b""))
    write("fuzz_mech", "cram", b"\x02" + lines(b"tim", b"tanstaaftanstaaf", CRAM_CHALLENGE))
    write("fuzz_mech", "scram", b"\x03" + lines(b"user", b"pencil", b"rOprNGfwEbeRWgbNEkqO"))
    write("fuzz_mech", "scram-escape", b"\x03" + lines(b"a,b=c", b"p w", b"n0nce"))
    write("fuzz_mech", "scram-8bit", b"\x03" + lines(b"caf\xc3\xa9", b"pw", b"n"))


def sasl_seeds():
    # header: server mechanisms, allowed, flags (1 fallback, 2 IR, 4 channel binding,
    # 8 fixed-nonce SCRAM exchange, 16 debug log), failing adapter call
    def hdr(server, allowed, flags, fail=0):
        return bytes([server, allowed, flags, fail])
    write("fuzz_sasl", "plain-ir", hdr(PLAIN, DEFAULT, 3) + b"S")
    write("fuzz_sasl", "plain-no-ir", hdr(PLAIN, DEFAULT, 1) + lines(b"C", b"S"))
    write("fuzz_sasl", "login", hdr(LOGIN, DEFAULT, 19) + lines(b"CVXNlcm5hbWU6", b"CUGFzc3dvcmQ6", b"S"))
    write("fuzz_sasl", "cram", hdr(CRAM, 0xFF, 3) + lines(b"C" + b64(CRAM_CHALLENGE), b"S"))
    write("fuzz_sasl", "fallback", hdr(S256 | PLAIN, DEFAULT, 3) + lines(b"R", b"S"))
    write("fuzz_sasl", "unsupported", hdr(0xFF, 0xFF, 7) + lines(b"U", b"U", b"U", b"U", b"S"))
    write("fuzz_sasl", "tempfail", hdr(S256 | PLAIN, DEFAULT, 3) + b"T")
    write("fuzz_sasl", "scram-fixed", hdr(S256, DEFAULT, 10) +
          lines(b"C" + b64(SHA256_SFIRST), b"C" + b64(SHA256_SFINAL), b"S"))
    write("fuzz_sasl", "scram-fixed-noir", hdr(S256, DEFAULT, 8) +
          lines(b"C", b"C" + b64(SHA256_SFIRST), b"C" + b64(SHA256_SFINAL), b"S"))
    write("fuzz_sasl", "scram-error", hdr(S256 | PLAIN, DEFAULT, 11) +
          lines(b"C" + b64(SHA256_SFIRST), b"C" + b64(b"e=invalid-proof"), b"R"))
    write("fuzz_sasl", "broken", hdr(PLAIN | LOGIN, DEFAULT, 3, 2) + b"S")
    write("fuzz_sasl", "bad-b64", hdr(LOGIN, DEFAULT, 3) + b"Cnot base64!")
    # The unbound retry: -PLUS refused with a bare rejection, the same-hash SCRAM without
    # -PLUS ("n"), then PLAIN as the fallback; without the fallback; -PLUS unsupported.
    write("fuzz_sasl", "plus-unbound-retry", hdr(S256P | S256 | PLAIN, DEFAULT, 7) +
          lines(b"R", b"R", b"S"))
    write("fuzz_sasl", "plus-unbound-nofallback", hdr(S1P | S1 | PLAIN, DEFAULT, 6) +
          lines(b"R", b"R"))
    write("fuzz_sasl", "plus-unsupported", hdr(S256P | S256, DEFAULT, 6) + lines(b"U", b"R"))
    # lib/codes.c: a policy refusal ends everything (no PLAIN fallback); "too
    # weak" moves on, and is policy when nothing is left.
    write("fuzz_sasl", "policy-no-fallback", hdr(S256 | PLAIN, DEFAULT, 3) + b"P")
    write("fuzz_sasl", "weak-then-plain", hdr(S256 | PLAIN, DEFAULT, 3) + lines(b"W", b"S"))
    write("fuzz_sasl", "weak-all", hdr(S256 | PLAIN | LOGIN, DEFAULT, 3) + lines(b"W", b"W", b"W"))
    write("fuzz_sasl", "scram-error-policy", hdr(S256 | PLAIN, DEFAULT, 11) +
          lines(b"C" + b64(b"e=other-error"), b"P"))


def alloc_seeds():
    # header: mode (0 config, 1 PLAIN, 2 LOGIN, 3 CRAM-MD5, 4 SCRAM-SHA-256, 5 policy),
    # failing allocation (0: every one in turn), flags (1 fail the rest, 2 OpenSSL too,
    # 4 IR), failing adapter call
    with open(os.path.join(ROOT, "fuzz_config", "full"), "rb") as f:
        full = f.read()
    write("fuzz_alloc", "config", bytes([0, 0, 0, 0]) + full)
    write("fuzz_alloc", "config-rest", bytes([0, 9, 1, 0]) + full)
    write("fuzz_alloc", "config-pins", bytes([0, 0, 0, 0]) +
          b'server a { host = "mail.example.org"\n pin = {"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="} }\n')
    write("fuzz_alloc", "plain", bytes([1, 0, 4, 0]) + b"S")
    write("fuzz_alloc", "plain-no-ir", bytes([1, 0, 0, 0]) + lines(b"C", b"S"))
    write("fuzz_alloc", "login", bytes([2, 0, 0, 0]) + lines(b"CUsername:", b"CPassword:", b"S"))
    write("fuzz_alloc", "cram", bytes([3, 0, 2, 0]) + lines(b"C" + CRAM_CHALLENGE, b"S"))
    write("fuzz_alloc", "scram", bytes([4, 0, 0, 0]) +
          lines(b"C", b"C" + SHA256_SFIRST, b"C" + SHA256_SFINAL, b"S"))
    write("fuzz_alloc", "scram-ir", bytes([4, 0, 6, 0]) +
          lines(b"C" + SHA256_SFIRST, b"C" + SHA256_SFINAL, b"S"))
    write("fuzz_alloc", "scram-error", bytes([4, 0, 4, 0]) +
          lines(b"C" + SHA256_SFIRST, b"Ce=other-error", b"R"))
    write("fuzz_alloc", "policy", bytes([5, 0, 4, 0]) + lines(b"R", b"S"))
    write("fuzz_alloc", "policy-broken", bytes([5, 0, 4, 3]) + lines(b"R", b"S"))


def session_seeds():
    # header: flags (1 SMTP, 2 STARTTLS, 4 probe, 8 fallback, 16 8-bit password,
    # 32 helo_name, 64 debug), allowed mechanisms, recv chunk, failing I/O call,
    # errno / send chunk, failing allocation
    def hdr(flags, allowed=0, chunk=0, io=0, err=0, alloc=0):
        return bytes([flags, allowed, chunk, io, err, alloc])
    imap_caps = b"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN AUTH=LOGIN] Dovecot ready."
    write("fuzz_session", "imap-plain", hdr(64) + crlf(imap_caps, b"a1 OK Logged in"))
    write("fuzz_session", "imap-capability", hdr(8, chunk=3) +
          crlf(b"* OK Dovecot ready.", b"* CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=SCRAM-SHA-256",
               b"a1 OK done", b"+ " + b64(SHA256_SFIRST), b"a2 NO [AUTHENTICATIONFAILED] no",
               b"a3 OK [CAPABILITY IMAP4rev1] Logged in"))
    write("fuzz_session", "imap-login-cmd", hdr(16, allowed=IMAPLOGIN) +
          crlf(b"* OK [CAPABILITY IMAP4rev1] ready", b"+ go ahead", b"a1 OK Logged in"))
    write("fuzz_session", "imap-login-quoted", hdr(0, allowed=IMAPLOGIN) +
          crlf(b"* OK [CAPABILITY IMAP4rev1] ready", b"a1 OK Logged in"))
    write("fuzz_session", "imap-authlogin", hdr(64, allowed=LOGIN) +
          crlf(b"* OK [CAPABILITY IMAP4rev1 AUTH=LOGIN] ready", b"+ VXNlcm5hbWU6",
               b"+ UGFzc3dvcmQ6", b"a1 OK Logged in"))
    write("fuzz_session", "imap-starttls", hdr(2) +
          crlf(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready",
               b"a1 OK Begin TLS negotiation now"))
    write("fuzz_session", "imap-injection", hdr(2) +
          crlf(b"* OK ready", b"* CAPABILITY IMAP4rev1 STARTTLS", b"a1 OK",
               b"a2 OK Begin TLS", b"* CAPABILITY IMAP4rev1 AUTH=PLAIN", b"a3 OK"))
    write("fuzz_session", "imap-preauth", hdr(0) + crlf(b"* PREAUTH [CAPABILITY IMAP4rev1] hi"))
    write("fuzz_session", "imap-probe", hdr(4) + crlf(imap_caps))
    write("fuzz_session", "imap-io", hdr(0, io=3, err=2) + crlf(imap_caps, b"a1 OK Logged in"))
    write("fuzz_session", "imap-eintr", hdr(0, chunk=1, io=2, err=0x50) +
          crlf(imap_caps, b"a1 OK Logged in"))
    write("fuzz_session", "imap-alloc", hdr(0, alloc=2) + crlf(imap_caps, b"a1 OK Logged in"))
    ehlo = crlf(b"250-mail.example.org", b"250-PIPELINING", b"250-SIZE 10240000",
                b"250-AUTH PLAIN LOGIN", b"250-AUTH=PLAIN LOGIN", b"250 8BITMIME")
    greet = crlf(b"220 mail.example.org ESMTP Postfix (Debian/GNU)")
    write("fuzz_session", "smtp-plain", hdr(1 | 64) + greet + ehlo +
          crlf(b"235 2.7.0 Authentication successful"))
    write("fuzz_session", "smtp-login", hdr(1, allowed=LOGIN, chunk=5) + greet + ehlo +
          crlf(b"334 VXNlcm5hbWU6", b"334 UGFzc3dvcmQ6", b"235 2.7.0 ok"))
    write("fuzz_session", "smtp-rejected", hdr(1 | 32) + greet + ehlo +
          crlf(b"535 5.7.8 Error: authentication failed: authentication failure"))
    write("fuzz_session", "smtp-starttls", hdr(1 | 2) + greet +
          crlf(b"250-mail.example.org", b"250-STARTTLS", b"250 AUTH PLAIN",
               b"220 2.0.0 Ready to start TLS"))
    write("fuzz_session", "smtp-scram", hdr(1 | 8, allowed=S256 | PLAIN) + greet +
          crlf(b"250-x", b"250 AUTH SCRAM-SHA-256 PLAIN", b"334 " + b64(SHA256_SFIRST),
               b"535 5.7.8 no", b"235 2.7.0 ok"))
    write("fuzz_session", "smtp-dovecot", hdr(1) + crlf(b"220 host Dovecot ready.", b"250-host",
                                                      b"250-AUTH PLAIN", b"250 SIZE",
                                                      b"454 4.7.0 Temporary failure"))
    write("fuzz_session", "smtp-io", hdr(1, io=4, err=3, alloc=0) + greet + ehlo +
          crlf(b"235 2.7.0 ok"))


def wire_seeds():
    # One frame each (lib/wire.h): version 1, type, 16-bit body length, then
    # fields tag, 16-bit length, value.  AUTH 1, ACCOUNT 2, RESULT 0x81.
    def tlv(tag, value):
        return bytes([tag]) + len(value).to_bytes(2, "big") + value

    def frame(ftype, *fields, version=1, length=None):
        body = b"".join(fields)
        n = len(body) if length is None else length
        return bytes([version, ftype]) + n.to_bytes(2, "big") + body

    user, pw = tlv(1, b"alice"), tlv(2, b"correct horse battery staple")
    extra = tlv(3, b"sshd") + tlv(4, b"192.0.2.7") + tlv(5, b"ssh") + tlv(6, b"bob")
    for name, data in [
        ("auth", frame(1, user, pw, extra)),
        ("auth-minimal", frame(1, tlv(1, b"u"), tlv(2, b"p"))),
        ("auth-reordered", frame(1, tlv(6, b"root"), pw, tlv(4, b"2001:db8::1"), user)),
        ("auth-bounds", frame(1, tlv(1, b"u" * 255), tlv(2, b"p" * 1024), tlv(3, b"s" * 64),
                              tlv(4, b"h" * 255), tlv(5, b"t" * 64), tlv(6, b"r" * 255))),
        ("account", frame(2, user, extra)),
        ("result-ok", frame(0x81, tlv(16, b"\x00"), tlv(17, b"\x00"), tlv(18, b"primary"),
                            tlv(19, b"SCRAM-SHA-256-PLUS"), tlv(20, b"TLSv1.3"),
                            tlv(22, b"alice@example.org"))),
        ("result-failed", frame(0x81, tlv(16, b"\x01"), tlv(17, b"\x00"), tlv(18, b"primary"),
                                tlv(21, b"a2 NO [AUTHENTICATIONFAILED] Authentication failed."))),
        ("result-cache", frame(0x81, tlv(17, b"\x01"), tlv(16, b"\x00"))),
        ("result-no-source", frame(0x81, tlv(16, b"\x04"))),
        ("result-throttle", frame(0x81, tlv(16, b"\x01"), tlv(17, b"\x03"),
                                  tlv(21, b"5 failures of this user in the last 600s"))),
        # Malformed: repeated field, password in ACCOUNT, NUL, bound + 1,
        # unknown tag, cut short, a header announcing more than 4096 bytes.
        ("repeated", frame(1, user, pw, tlv(1, b"root"))),
        ("account-password", frame(2, user, pw)),
        ("nul", frame(1, user, tlv(2, b"pass\x00word"))),
        ("over-bound", frame(1, tlv(1, b"u" * 256), pw)),
        ("unknown-tag", frame(1, user, pw, tlv(7, b"x"))),
        ("truncated", frame(1, user, pw)[:-3]),
        ("huge-header", frame(1, user, pw, length=4097)),
        ("bad-version", frame(1, user, pw, version=2)),
        ("bad-code", frame(0x81, tlv(16, b"\x0d"), tlv(17, b"\x00"))),
        # MA_POLICY (12) with the message for the user (TAG_MESSAGE 23), and a
        # message with a control character (refused).
        ("result-policy", frame(0x81, tlv(16, b"\x0c"), tlv(17, b"\x00"), tlv(18, b"m365"),
                                tlv(21, b"server: 535 5.7.139 Authentication unsuccessful, "
                                        b"SmtpClientAuthentication is disabled for the Tenant."),
                                tlv(23, b"Microsoft 365: SMTP AUTH (Basic) is disabled for the "
                                        b"whole tenant"))),
        ("result-alert", frame(0x81, tlv(16, b"\x0c"), tlv(17, b"\x00"),
                               tlv(23, b"Application-specific password required: "
                                       b"https://support.google.com/accounts/answer/185833 (Failure)"))),
        ("result-message-esc", frame(0x81, tlv(16, b"\x01"), tlv(17, b"\x00"),
                                     tlv(23, b"\x1b[2J owned"))),
        ("result-message-bound", frame(0x81, tlv(16, b"\x00"), tlv(17, b"\x00"),
                                       tlv(23, b"m" * 256))),
    ]:
        write("fuzz_wire", name, data)


def porthint_seeds():
    # Header: flags, port (2 bytes), reason / verify error pick, output size - 1.
    def hdr(flags, port, pick=0, cap=255):
        return bytes([flags, port >> 8, port & 255, pick, cap])
    for name, data in [
        ("imap-greeting", hdr(0, 143, 1) + b"* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready.\r\n"),
        ("smtp-greeting", hdr(0, 587, 1) + b"220 mail.example.org ESMTP Postfix\r\n"),
        ("smtp-multiline", hdr(0, 25, 1, 20) + b"220-mail.example.org\r\n220 ok\r\n"),
        ("pop3-greeting", hdr(0, 110, 1) + b"+OK POP3 ready\r\n"),
        ("greeting-5-bytes", hdr(0, 143, 1) + b"* OK "),
        ("hostile-greeting", hdr(0, 143, 7, 40) + b"* OK \x1b[31m\\" + b"A" * 80),
        ("tls-handshake", hdr(0, 993, 2) + b"\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03"),
        ("server-hello-tls10", hdr(0, 993, 2) + b"\x16\x03\x01\x00\x51\x02\x00\x00\x4d\x03\x01"),
        ("alert-protocol-version", hdr(2, 993, 3) + b"\x15\x03\x01\x00\x02\x02\x46"),
        ("binary", hdr(0, 465, 0, 0) + bytes(range(64))),
    ]:
        write("fuzz_porthint", name, data)
    # A certificate with SANs, made with the openssl CLI when there is one.
    try:
        with tempfile.TemporaryDirectory() as d:
            key, pem = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
                            "-subj", "/CN=localhost/O=fuzz seed", "-addext",
                            "subjectAltName=DNS:localhost,DNS:mail.example.org,IP:127.0.0.1",
                            "-keyout", key, "-out", pem], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            der = subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"],
                                 check=True, stdout=subprocess.PIPE).stdout
        for pick, name in [(6, "cert-name"), (1, "cert-chain"), (4, "cert-expired")]:
            write("fuzz_porthint", name, hdr(1, 993, pick) + der)
    except (OSError, subprocess.CalledProcessError):
        pass
def codes_seeds():
    # fuzz/fuzz_codes.c: byte 0 payload_sent, bytes 1-2 a reply code for the
    # raw lookups, then lines.  The providers' replies byte for byte.
    def hdr(payload=1, code=535):
        n = (code - 100) % 600
        return bytes([payload, n >> 8, n & 0xff])
    for name, code, data in [
        ("m365-tenant", 535, b"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication "
                             b"is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled "
                             b"for more information. [SN4PR0501CA0057.namprd05.prod.outlook.com "
                             b"2026-12-05T07:12:31.417Z 08DD1A2B3C4D5E6F]"),
        ("m365-mailbox", 535, b"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication "
                              b"is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled"),
        ("m365-basic", 535, b"535 5.7.139 Authentication unsuccessful, basic authentication is "
                            b"disabled. [AM0PR02CA0107.eurprd02.prod.outlook.com]"),
        ("m365-retired", 550, b"550 5.7.30 Basic authentication is not supported for Client "
                              b"Submission."),
        ("m365-wrong", 535, b"535 5.7.3 Authentication unsuccessful [SN4PR0501CA0057]"),
        ("google-app", 534, crlf(b"534-5.7.9 Application-specific password required. For more "
                                 b"information, go to",
                                 b"534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor "
                                 b"6a1803df08f44-8ffd82ea9casm7101606d6.42 - gsmtp")),
        ("google-web", 534, crlf(b"534-5.7.14 <https://accounts.google.com/signin/continue?x> Please "
                                 b"log in via your web browser and", b"534-5.7.14 then try again.",
                                 b"534-5.7.14  Learn more at",
                                 b"534 5.7.14  https://support.google.com/mail/answer/78754 - gsmtp")),
        ("google-bad", 535, crlf(b"535-5.7.8 Username and Password not accepted. For more "
                                 b"information, go to",
                                 b"535 5.7.8  https://support.google.com/mail/?p=BadCredentials - gsmtp")),
        ("rfc4954", 454, lines(b"454 4.7.0 Temporary authentication failure")),
        ("transition", 432, b"432 4.7.12 A password transition is needed"),
        ("weak", 534, b"534 5.7.9 Authentication mechanism is too weak"),
        ("encrypt", 538, b"538 5.7.11 Encryption required for requested authentication mechanism"),
        ("unsupported", 504, b"504 5.5.4 Unrecognized authentication type"),
        ("bare-535", 535, b"535 Authentication failed"),
        ("imap-gmail-alert", 535, b"a2 NO [ALERT] Application-specific password required: "
                                  b"https://support.google.com/accounts/answer/185833 (Failure)"),
        ("imap-gmail-web", 535, b"a1 NO [ALERT] Please log in via your web browser: "
                                b"https://support.google.com/mail/accounts/answer/78754 (Failure)"),
        ("imap-unavailable", 454, b"a2 NO [UNAVAILABLE] Temporary authentication failure."),
        ("imap-expired", 535, b"a2 NO [EXPIRED] Password expired"),
        ("imap-bad", 504, b"a2 BAD Unsupported authentication mechanism."),
        ("imap-codeless", 535, b"a2 NO AUTHENTICATE failed."),
        ("ok-alert", 235, b"a1 OK [ALERT] Your password expires in 3 days"),
        ("enhanced-edge", 535, b"535 5.7.1390 SmtpClientAuthentication is disabled for the Tenant"),
    ]:
        write("fuzz_codes", name, hdr(1, code) + data)
    write("fuzz_codes", "before-payload", hdr(0, 502) + b"502 5.5.1 Unrecognized command.")


def main():
    for target in ("fuzz_base64", "fuzz_imap", "fuzz_smtp", "fuzz_config", "fuzz_scram",
                   "fuzz_mech", "fuzz_sasl", "fuzz_alloc", "fuzz_session", "fuzz_wire",
                   "fuzz_porthint", "fuzz_codes"):
        shutil.rmtree(os.path.join(ROOT, target), ignore_errors=True)
    base64_seeds()
    imap_seeds()
    smtp_seeds()
    config_seeds()
    scram_seeds()
    mech_seeds()
    sasl_seeds()
    alloc_seeds()
    session_seeds()
    wire_seeds()
    porthint_seeds()
    codes_seeds()


if __name__ == "__main__":
    main()
