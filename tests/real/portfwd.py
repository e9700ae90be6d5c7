#!/usr/bin/python3
"""portfwd.py LISTEN_ADDR LISTEN_PORT TARGET_PORT - relay TCP connections from
LISTEN_ADDR:LISTEN_PORT to 127.0.0.1:TARGET_PORT, byte for byte, both ways.

test_hints.sh uses it to put the suite's Dovecot behind a well-known port (993, 465)
on a loopback address of its own (127.x.y.z), where the module's port-specific
behaviour applies.  Prints "ready" once listening; runs until killed.
Python 3 standard library only.
"""

import socket
import sys
import threading


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (dst, src):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(conn, target):
    try:
        up = socket.create_connection(("127.0.0.1", target), timeout=10)
        up.settimeout(None)
    except OSError:
        conn.close()
        return
    threading.Thread(target=pump, args=(up, conn), daemon=True).start()
    pump(conn, up)


def main():
    addr, port, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn, target), daemon=True).start()


if __name__ == "__main__":
    main()
