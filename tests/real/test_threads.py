#!/usr/bin/env python3
"""tests/real/test_threads.py - pam_mailauth.so inside one multi-threaded process, the
way a web application or a captive portal uses it: many threads of one Python process
call PAM at the same time (pam_start_confdir, pam_authenticate, pam_acct_mgmt, pam_end),
with right and wrong passwords for alice, bob and carol over IMAPS and STARTTLS.

libpam is called directly through ctypes (no extra package, no pam_wrapper):
pam_start_confdir() reads the PAM services from a private directory. Run by
tests/real/test_threads.sh, which starts Dovecot when needed and writes the services.

  test_threads.py CONFDIR DOVECOT_LOG PW_ALICE PW_BOB PW_CAROL

Environment: MA_THREADS (default 16), MA_LOGINS (total, default 64).
Prints "ok - ..." / "not ok - ..." lines and "# N passed, N failed"; exit status 1 when
anything failed.
"""

import ctypes
import ctypes.util
import os
import random
import re
import sys
import threading
import time

PAM_SUCCESS = 0
PAM_AUTH_ERR = 7
PAM_PROMPT_ECHO_OFF = 1
PAM_PROMPT_ECHO_ON = 2
PAM_ERROR_MSG = 3
PAM_TEXT_INFO = 4
PAM_BUF_ERR = 5
PAM_CONV_ERR = 19

NAMES = {0: "PAM_SUCCESS", 7: "PAM_AUTH_ERR", 9: "PAM_AUTHINFO_UNAVAIL",
         10: "PAM_USER_UNKNOWN", 3: "PAM_SERVICE_ERR", 5: "PAM_BUF_ERR",
         19: "PAM_CONV_ERR", 6: "PAM_PERM_DENIED", 4: "PAM_SYSTEM_ERR"}

passed = 0
failed = 0
out_lock = threading.Lock()


def ok(desc):
    global passed
    with out_lock:
        passed += 1
        print("ok - " + desc, flush=True)


def not_ok(desc, *details):
    global failed
    with out_lock:
        failed += 1
        print("not ok - " + desc, flush=True)
        for d in details:
            for line in str(d).splitlines():
                print("#   " + line, flush=True)


def done():
    print("# %d passed, %d failed" % (passed, failed), flush=True)
    return 0 if failed == 0 and passed > 0 else 1


def name(rc):
    return "%s (%d)" % (NAMES.get(rc, "?"), rc)


# --- libpam through ctypes ---------------------------------------------------------------

class PamMessage(ctypes.Structure):
    _fields_ = [("msg_style", ctypes.c_int), ("msg", ctypes.c_char_p)]


class PamResponse(ctypes.Structure):
    _fields_ = [("resp", ctypes.c_void_p), ("resp_retcode", ctypes.c_int)]


CONV_FUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int,
                             ctypes.POINTER(ctypes.POINTER(PamMessage)),
                             ctypes.POINTER(ctypes.POINTER(PamResponse)),
                             ctypes.c_void_p)


class PamConv(ctypes.Structure):
    _fields_ = [("conv", CONV_FUNC), ("appdata_ptr", ctypes.c_void_p)]


# The conversation's answers are freed by libpam with free(): allocate them
# with the process's malloc as the dynamic linker resolves it (CDLL(None)),
# which is the sanitizer's when `make asan` preloads libasan, not libc's own.
libc = ctypes.CDLL(None, use_errno=True)
libc.calloc.restype = ctypes.c_void_p
libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
libc.strdup.restype = ctypes.c_void_p
libc.strdup.argtypes = [ctypes.c_char_p]

libpam = ctypes.CDLL("libpam.so.0")
libpam.pam_start_confdir.restype = ctypes.c_int
libpam.pam_start_confdir.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                     ctypes.POINTER(PamConv), ctypes.c_char_p,
                                     ctypes.POINTER(ctypes.c_void_p)]
for fn in ("pam_authenticate", "pam_acct_mgmt", "pam_end"):
    getattr(libpam, fn).restype = ctypes.c_int
    getattr(libpam, fn).argtypes = [ctypes.c_void_p, ctypes.c_int]
libpam.pam_strerror.restype = ctypes.c_char_p
libpam.pam_strerror.argtypes = [ctypes.c_void_p, ctypes.c_int]

# The conversation of each PAM handle: appdata_ptr is a key into this table (the
# callback itself is one C function for every thread, as in a real application).
conversations = {}
conv_lock = threading.Lock()


@CONV_FUNC
def conversation(n, msgs, resps, appdata):
    with conv_lock:
        c = conversations.get(appdata)
    if c is None or n <= 0:
        return PAM_CONV_ERR
    arr = libc.calloc(n, ctypes.sizeof(PamResponse))
    if not arr:
        return PAM_BUF_ERR
    out = ctypes.cast(arr, ctypes.POINTER(PamResponse))
    for i in range(n):
        style = msgs[i].contents.msg_style
        text = msgs[i].contents.msg or b""
        c["messages"].append((style, text.decode("utf-8", "replace")))
        if style == PAM_PROMPT_ECHO_OFF:
            out[i].resp = libc.strdup(c["password"])
        elif style == PAM_PROMPT_ECHO_ON:
            out[i].resp = libc.strdup(c["user"])
    resps[0] = out
    return PAM_SUCCESS


def login(confdir, service, user, password, key):
    """One application login: returns (authenticate rc, acct_mgmt rc or None, prompts)."""
    c = {"user": user.encode(), "password": password.encode(), "messages": []}
    with conv_lock:
        conversations[key] = c
    conv = PamConv(conversation, key)
    h = ctypes.c_void_p()
    try:
        rc = libpam.pam_start_confdir(service.encode(), user.encode(), ctypes.byref(conv),
                                      confdir.encode(), ctypes.byref(h))
        if rc != PAM_SUCCESS:
            return ("pam_start_confdir", rc), None, c["messages"]
        arc = libpam.pam_authenticate(h, 0)
        mrc = libpam.pam_acct_mgmt(h, 0) if arc == PAM_SUCCESS else None
        libpam.pam_end(h, arc)
        return arc, mrc, c["messages"]
    finally:
        with conv_lock:
            del conversations[key]


# --- process state that the module must leave alone ----------------------------------

def open_fds():
    return sorted(int(f) for f in os.listdir("/proc/self/fd"))


def fd_targets(fds):
    res = []
    for f in fds:
        try:
            res.append("%d -> %s" % (f, os.readlink("/proc/self/fd/%d" % f)))
        except OSError:
            pass
    return res


def signal_masks():
    masks = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("SigIgn", "SigCgt", "SigBlk"):
                masks[k] = v.strip()
    return masks


def dovecot_lines_since(path, offset):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


# --- the test -------------------------------------------------------------------------

def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    confdir, dlog = sys.argv[1], sys.argv[2]
    passwords = {"alice": sys.argv[3], "bob": sys.argv[4], "carol": sys.argv[5]}
    nthreads = int(os.environ.get("MA_THREADS", "16"))
    nlogins = int(os.environ.get("MA_LOGINS", "64"))
    services = ("threads-imaps", "threads-starttls")
    t_start = time.monotonic()

    # Every combination of user, right/wrong and transport, repeated to nlogins and
    # shuffled so that each thread gets a mix.
    combos = [(u, right, s) for u in sorted(passwords) for right in (True, False)
              for s in services]
    cases = [combos[i % len(combos)] for i in range(nlogins)]
    random.Random(4242).shuffle(cases)

    # One login first, alone: it loads the module's libraries (OpenSSL opens what it
    # keeps open), so the descriptor count after it is the baseline.
    arc, mrc, msgs = login(confdir, services[0], "alice", passwords["alice"], 1)
    if arc == PAM_SUCCESS and mrc == PAM_SUCCESS:
        ok("warm-up: alice logs in over IMAPS, one thread")
    else:
        not_ok("warm-up: alice logs in over IMAPS, one thread",
               "authenticate: %s, acct_mgmt: %s, prompts: %r"
               % (arc if isinstance(arc, tuple) else name(arc), mrc, msgs))
        return done()

    fds_before = open_fds()
    sig_before = signal_masks()
    log_offset = os.path.getsize(dlog) if os.path.exists(dlog) else 0

    barrier = threading.Barrier(nthreads)
    results = [None] * nthreads
    spans = []
    spans_lock = threading.Lock()

    def worker(t):
        mine = []
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            pass
        for j, (user, right, service) in enumerate(cases[t::nthreads]):
            pw = passwords[user] if right else "wrong-" + passwords[user]
            t0 = time.monotonic()
            try:
                arc, mrc, msgs = login(confdir, service, user, pw, 1000 + t * 1000 + j)
            except Exception as e:  # a ctypes failure must not hide the others
                arc, mrc, msgs = ("exception", repr(e)), None, []
            t1 = time.monotonic()
            with spans_lock:
                spans.append((t0, t1))
            mine.append((user, right, service, arc, mrc, msgs, t1 - t0))
        results[t] = mine

    threads = [threading.Thread(target=worker, args=(t,), daemon=True)
               for t in range(nthreads)]
    t_run = time.monotonic()
    for th in threads:
        th.start()
    deadline = t_run + 45
    for th in threads:
        th.join(max(0.1, deadline - time.monotonic()))
    elapsed = time.monotonic() - t_run
    hung = [i for i, th in enumerate(threads) if th.is_alive()]
    if hung:
        not_ok("all %d threads finished within 45 s" % nthreads,
               "still running: threads %s" % hung)
        # A thread stuck inside the module cannot be cancelled: report and leave.
        rc = done()
        os._exit(rc or 1)
    ok("%d threads x %d logins finished in %.1f s" % (nthreads, nlogins // nthreads, elapsed))

    # Each thread's exact results.
    total = right_ok = 0
    for t in range(nthreads):
        bad = []
        for (user, right, service, arc, mrc, msgs, dur) in results[t] or []:
            total += 1
            want = PAM_SUCCESS if right else PAM_AUTH_ERR
            what = "%s, %s password, %s" % (user, "right" if right else "wrong",
                                            service.split("-")[1])
            prompts = [m for m in msgs if m[0] == PAM_PROMPT_ECHO_OFF]
            if arc != want:
                bad.append("%s: authenticate returned %s, expected %s (%.2f s)"
                           % (what, arc if isinstance(arc, tuple) else name(arc),
                              name(want), dur))
            elif right and mrc != PAM_SUCCESS:
                bad.append("%s: acct_mgmt returned %s" % (what, name(mrc)))
            elif len(prompts) != 1 or len(msgs) != 1:
                bad.append("%s: expected exactly one password prompt, got %r" % (what, msgs))
            elif right:
                right_ok += 1
        n = len(results[t] or [])
        if bad:
            not_ok("thread %d: %d logins, each with the expected PAM result" % (t, n), *bad)
        else:
            ok("thread %d: %d logins, each with the expected PAM result" % (t, n))
    if total == nlogins:
        ok("all %d logins ran (%d with the right password)"
           % (total, sum(1 for c in cases if c[1])))
    else:
        not_ok("all %d logins ran" % nlogins, "only %d" % total)

    # They did overlap: the module ran in several threads at the same time.
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    cur = peak = 0
    for _, d in events:
        cur += d
        peak = max(peak, cur)
    if peak >= min(4, nthreads):
        ok("logins overlapped: up to %d at the same time" % peak)
    else:
        not_ok("logins overlapped (at least %d at the same time)" % min(4, nthreads),
               "peak concurrency %d" % peak)

    # Dovecot saw exactly the successful logins, and every wrong password fail (it
    # logs asynchronously: poll for up to 5 s).
    want_logins = sum(1 for c in cases if c[1])
    wrong = nlogins - want_logins
    got = failures = 0
    text = ""
    for _ in range(50):
        text = dovecot_lines_since(dlog, log_offset)
        got = len(re.findall(r"imap-login: .*Login: user=<(alice|bob|carol)>", text))
        failures = len(re.findall(r"imap-login: .*\(auth failed, .*user=<(alice|bob|carol)>", text))
        if got >= want_logins and failures >= wrong:
            break
        time.sleep(0.1)
    if got == want_logins:
        ok("Dovecot logged %d successful logins, one per right password" % got)
    else:
        not_ok("Dovecot logged %d successful logins" % want_logins, "it logged %d" % got,
               "\n".join(text.splitlines()[-10:]))
    if failures == wrong:
        ok("Dovecot logged %d failed logins, one per wrong password" % wrong)
    else:
        not_ok("Dovecot logged %d failed logins" % wrong, "it logged %d" % failures,
               "\n".join(text.splitlines()[-10:]))

    # Nothing leaked, nothing changed.
    fds_after = open_fds()
    if fds_after == fds_before:
        ok("no file descriptor leaked (%d open before and after)" % len(fds_before))
    else:
        not_ok("no file descriptor leaked",
               "before: %s" % fd_targets(fds_before), "after: %s" % fd_targets(fds_after))
    sig_after = signal_masks()
    if sig_after == sig_before:
        ok("signal dispositions unchanged (%s)" % ", ".join(
            "%s=%s" % kv for kv in sorted(sig_after.items())))
    else:
        not_ok("signal dispositions unchanged", "before: %r" % sig_before,
               "after: %r" % sig_after)
    if threading.active_count() == 1:
        ok("no thread left behind by the module")
    else:
        not_ok("no thread left behind", "%d threads alive" % threading.active_count())

    # And the process still works.
    arc, mrc, msgs = login(confdir, services[1], "bob", passwords["bob"], 2)
    if arc == PAM_SUCCESS and mrc == PAM_SUCCESS:
        ok("after the storm: bob logs in over STARTTLS in the same process")
    else:
        not_ok("after the storm: bob logs in over STARTTLS in the same process",
               "authenticate: %s, acct_mgmt: %s" % (arc, mrc))
    print("# test_threads.py took %.1fs" % (time.monotonic() - t_start), flush=True)
    return done()


if __name__ == "__main__":
    sys.exit(main())
