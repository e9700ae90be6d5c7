#!/usr/bin/python3
"""bench/delayproxy.py - a TCP proxy on loopback that adds latency.

There is no netem on these kernels (../shared/FIELD-NOTES.md), so the bench
emulates a network round-trip time with this proxy:

    delayproxy.py --delay MS [--no-connect-delay] [--stats FILE] LISTEN:TARGET...

For each LISTEN:TARGET pair it listens on 127.0.0.1:LISTEN (0 = any free port)
and forwards every accepted connection to 127.0.0.1:TARGET.  Every chunk read
in either direction is written to the other side MS milliseconds after it was
read (one way), so a round trip costs 2*MS.  Order is preserved per direction
(one FIFO queue and one timer per direction); connections are independent (a
timer per queue: nothing serialises them, except that a timer wakes 1.2 ms early
and sleeps the rest, because asyncio's epoll timeouts are rounded up to whole
milliseconds; chunks are delivered within ~0.1 ms of their due time).  EOF (half-close) is
forwarded with the same delay, after the data before it.

TCP connection set-up costs a real client one round trip before it can send,
and a server-first protocol (IMAP, SMTP greetings) a further half round trip
before the server even sees the connection.  A proxy on loopback answers the
client's SYN at once, so it emulates that: the upstream connection is opened
1.5 round trips (3*MS) after the accept, and the client's bytes wait for it.
A greeting then reaches the client 2 round trips after connect(), and the
first bytes of a client-first protocol (TLS ClientHello) reach the server 1.5
round trips after connect() - as over a real link.  --no-connect-delay turns
this off (then only data is delayed).

The proxy ACKs every read at once (TCP_QUICKACK; --no-quickack: not), so that
delayed-ACK/Nagle stalls between the proxy and an endpoint do not depend on the
delay (see quickack()): latency through the proxy is round trips times RTT plus
the endpoints' processing time, at any delay including 0.

On start it prints one line per pair, "LISTEN TARGET", with the real port, then
serves until SIGTERM/SIGINT.  With --stats FILE it appends one line per closed
connection: "target=PORT c2s_bytes=N s2c_bytes=N c2s_flights=N s2c_flights=N
ms=DURATION late_ms=WORST" (late_ms: the latest any chunk was delivered after its
due time; a flight is a run of chunks in one direction not interrupted by
data in the other: s2c_flights counts server answers, greeting included).
"""
import argparse
import asyncio
import collections
import signal
import socket
import time

EARLY = 0.0012

class Direction:
    """One direction of one connection: a FIFO of (due, bytes|None) and a timer."""

    def __init__(self, loop, delay, name, on_eof):
        self.loop = loop
        self.on_eof = on_eof
        self.delay = delay
        self.name = name
        self.queue = collections.deque()
        self.timer = None
        self.dest = None          # the transport to write to (None: not yet connected)
        self.closed = False
        self.bytes = 0
        self.late = 0.0             # worst delivery lateness, seconds
        self.attached = 0.0

    def push(self, data):
        # data None = EOF.  loop.time() is monotonic: due times never decrease.
        self.queue.append((self.loop.time() + self.delay, data))
        if data is not None:
            self.bytes += len(data)
        self.arm()

    def arm(self):
        if self.timer is not None or not self.queue or self.dest is None or self.closed:
            return
        # asyncio waits in epoll_wait(), whose timeout is whole milliseconds rounded
        # up: a timer fires 0-1 ms late.  Wake up EARLY early and sleep the rest (at
        # most EARLY + 1 ms, so other connections wait at most that long).
        due = self.queue[0][0]
        self.timer = self.loop.call_at(due - EARLY, self.flush)

    def flush(self):
        self.timer = None
        now = self.loop.time()
        due = self.queue[0][0] if self.queue else now
        if now < due <= now + EARLY + 0.0011:
            time.sleep(due - now)
            now = self.loop.time()
        while self.queue and self.queue[0][0] <= now + 0.00005 and not self.closed:
            due, data = self.queue.popleft()
            self.late = max(self.late, now - max(due, self.attached))
            if data is None:
                try:
                    if self.dest.can_write_eof():
                        self.dest.write_eof()
                    else:
                        self.dest.close()
                except (OSError, RuntimeError):
                    pass
                self.closed = True
                self.on_eof()
            else:
                self.dest.write(data)
        self.arm()

    def attach(self, dest):
        self.dest = dest
        self.attached = self.loop.time()
        self.arm()


def quickack(proxy, sock):
    # ACK what we just read at once (TCP_QUICKACK is not sticky: set it after every
    # read).  Otherwise the proxy's delayed ACK holds back an endpoint whose Nagle
    # algorithm waits for it (a server writing a TLS session ticket and then its
    # greeting, each small): a 40 ms stall that depends on the proxy's own timing,
    # not on the protocol being measured.
    if proxy.quickack and sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:
            pass


class Connection:
    def __init__(self, proxy):
        self.proxy = proxy
        loop = proxy.loop
        self.c2s = Direction(loop, proxy.delay, "c2s", self.eof_delivered)
        self.s2c = Direction(loop, proxy.delay, "s2c", self.eof_delivered)
        self.client = None
        self.server = None
        self.t0 = loop.time()
        self.last = None            # direction of the last chunk: "c" or "s"
        self.c_flights = 0
        self.s_flights = 0
        self.done = 0               # both sides closed -> 2

    def note(self, side):
        if self.last != side:
            if side == "c":
                self.c_flights += 1
            else:
                self.s_flights += 1
            self.last = side

    def eof_delivered(self):
        # Both directions ended: nothing more can flow, close both sockets (close()
        # still sends what is buffered).
        if self.c2s.closed and self.s2c.closed:
            for t in (self.client, self.server):
                if t is not None:
                    t.close()

    def finished(self):
        self.done += 1
        if self.done == 2 and self.proxy.stats is not None:
            ms = (self.proxy.loop.time() - self.t0) * 1000
            self.proxy.stats.write(
                "target=%d c2s_bytes=%d s2c_bytes=%d c2s_flights=%d s2c_flights=%d ms=%.1f "
                "late_ms=%.3f\n"
                % (self.target, self.c2s.bytes, self.s2c.bytes, self.c_flights, self.s_flights, ms,
                   1000 * max(self.c2s.late, self.s2c.late)))
            self.proxy.stats.flush()


class ClientSide(asyncio.Protocol):
    def __init__(self, proxy, target):
        self.proxy = proxy
        self.target = target
        self.conn = Connection(proxy)
        self.conn.target = target

    def connection_made(self, transport):
        self.conn.client = transport
        self.sock = transport.get_extra_info("socket")
        self.conn.s2c.attach(transport)
        loop = self.proxy.loop
        wait = self.proxy.connect_delay
        if wait > 0:
            loop.call_later(wait, self.open_upstream)
        else:
            self.open_upstream()

    def open_upstream(self):
        if self.conn.client.is_closing() and self.conn.c2s.closed:
            return
        coro = self.proxy.loop.create_connection(
            lambda: ServerSide(self.conn), "127.0.0.1", self.target)
        task = self.proxy.loop.create_task(coro)
        task.add_done_callback(self.upstream_done)

    def upstream_done(self, task):
        exc = task.exception()
        if exc is not None:
            self.conn.client.close()
            return
        transport, _ = task.result()
        self.conn.server = transport
        self.conn.c2s.attach(transport)

    def data_received(self, data):
        self.conn.note("c")
        self.conn.c2s.push(data)
        quickack(self.proxy, self.sock)

    def eof_received(self):
        self.conn.c2s.push(None)
        return True                 # keep the write side open for the server's data

    def connection_lost(self, exc):
        if not self.conn.c2s.queue or self.conn.c2s.queue[-1][1] is not None:
            if not self.conn.c2s.closed:
                self.conn.c2s.push(None)
        self.conn.finished()


class ServerSide(asyncio.Protocol):
    def __init__(self, conn):
        self.conn = conn

    def connection_made(self, transport):
        self.sock = transport.get_extra_info("socket")

    def data_received(self, data):
        self.conn.note("s")
        self.conn.s2c.push(data)
        quickack(self.conn.proxy, self.sock)

    def eof_received(self):
        self.conn.s2c.push(None)
        return True

    def connection_lost(self, exc):
        if not self.conn.s2c.queue or self.conn.s2c.queue[-1][1] is not None:
            if not self.conn.s2c.closed:
                self.conn.s2c.push(None)
        self.conn.finished()


class Proxy:
    def __init__(self, loop, delay_ms, connect_delay, stats, quickack=True):
        self.loop = loop
        self.quickack = quickack
        self.delay = delay_ms / 1000.0
        self.connect_delay = 3 * self.delay if connect_delay else 0.0
        self.stats = stats


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--delay", type=float, required=True, help="one-way delay in ms")
    ap.add_argument("--no-connect-delay", action="store_true")
    ap.add_argument("--no-quickack", action="store_true",
                    help="let the kernel delay ACKs as usual (see quickack())")
    ap.add_argument("--stats", help="append per-connection statistics to this file")
    ap.add_argument("pairs", nargs="+", metavar="LISTEN:TARGET")
    args = ap.parse_args()

    loop = asyncio.get_running_loop()
    stats = open(args.stats, "a", buffering=1) if args.stats else None
    proxy = Proxy(loop, args.delay, not args.no_connect_delay, stats, not args.no_quickack)
    servers = []
    for pair in args.pairs:
        lp, tp = (int(x) for x in pair.split(":"))
        srv = await loop.create_server(lambda tp=tp: ClientSide(proxy, tp), "127.0.0.1", lp,
                                       reuse_address=True, backlog=256)
        port = srv.sockets[0].getsockname()[1]
        servers.append(srv)
        print("%d %d" % (port, tp), flush=True)
    print("ready", flush=True)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await stop
    for srv in servers:
        srv.close()


if __name__ == "__main__":
    asyncio.run(main())
