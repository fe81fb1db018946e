#!/usr/bin/env python3
"""h1_client.py -- drive N keep-alive HTTP/1.1 requests through one connection, one at a time.

For callgrind.sh: the gateway runs under valgrind, so throughput does not matter, only that every
request is complete and answered 200. Usage: h1_client.py PORT N get|post [BODYFILE]
Exits 1 on any non-200 answer or a short read. Standard library only; loopback only.
"""
import socket
import sys


def main():
    port, n, kind = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    if kind == "post":
        body = open(sys.argv[4], "rb").read()
        req = (b"POST /orders HTTP/1.1\r\nHost: bench.test\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body
    else:
        req = b"GET /items?page=2 HTTP/1.1\r\nHost: bench.test\r\nAccept: */*\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    for _ in range(n):
        s.sendall(req)
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                sys.exit("closed before the head")
            buf += d
        head, _, buf = buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            sys.exit("answer: %r" % head[:80])
        clen = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                clen = int(v)
        while len(buf) < clen:
            d = s.recv(65536)
            if not d:
                sys.exit("closed in the body")
            buf += d
        buf = buf[clen:]
    s.close()


if __name__ == "__main__":
    main()
