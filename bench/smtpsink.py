#!/usr/bin/python3
"""bench/smtpsink.py PORT - the relay behind the bench's Dovecot submission service.

Dovecot's submission service connects to its relay (submission_relay_host/port) at
every login and answers the client's next command (NOOP, QUIT...) with "421 Failed to
connect to relay server" when nothing listens there, which makes clients such as curl
fail after a successful AUTH.  This sink on 127.0.0.1:PORT answers like an MTA (220,
EHLO, NOOP, RSET, MAIL, RCPT, DATA, QUIT) and discards everything.  Prints "ready"
once listening; runs until SIGTERM.
"""
import asyncio
import signal
import sys


async def session(reader, writer):
    try:
        writer.write(b"220 sink ESMTP\r\n")
        data = False
        while True:
            line = await reader.readline()
            if not line:
                break
            if data:
                if line in (b".\r\n", b".\n"):
                    data = False
                    writer.write(b"250 2.0.0 discarded\r\n")
                continue
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-sink\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n")
            elif verb == b"DATA":
                data = True
                writer.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 2.0.0 ok\r\n")
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main():
    port = int(sys.argv[1])
    server = await asyncio.start_server(session, "127.0.0.1", port, reuse_address=True,
                                        backlog=256)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with server:
        await stop


if __name__ == "__main__":
    asyncio.run(main())
