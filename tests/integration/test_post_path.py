#!/usr/bin/env python3
"""The request body's way to the vendor and the answer's way back, byte for byte (proxy/stream.c):
a write goes to the socket from the caller's buffer when nothing is queued before it, one made
inside the io_uring check waits (copied) for the check's next io_uring_enter, a held body goes to a
plain vendor with its head as one buffer handed over (no copy), TLS records move into an empty queue
without a copy, and whatever the socket does not take is queued. These send held bodies of sizes around those edges over one keep-alive connection, and
pipelined, to plain and TLS vendors; large bodies to vendors that read slowly (the socket takes part
of a write, the rest waits in the queue); a client that leaves while its body still waits for the
vendor; bodies that arrive in uneven pieces (Content-Length and chunked, a PUT, a head larger than
the room the held body keeps for it), one by one and pipelined; a sealed (encrypt) body over 8 KiB;
and large answers back to the client.
Every body is compared with what was sent, not only its length."""
import random
import socket
import threading
import time

import harness as h
from harness import test, check, eq

# Around 8 KiB (head included), the bench's 16 KiB, the TLS record size,
# the 64 KiB read buffer, and more than a socket takes at once.
SIZES = [0, 1, 700, 7900, 8192, 8500, 16384, 16385, 65536, 100000, 1 << 20]
OCTETS = [("Content-Type", "application/octet-stream")]


def body_of(n, seed=0):
    """n bytes that differ at every offset (a shifted, dropped or repeated block shows)."""
    return random.Random(n * 7919 + seed).randbytes(n)


@h.once
def env():
    e = type("E", (), {})()
    ca, crt, key = h.cert("ca.crt"), h.cert("vendor.crt"), h.cert("vendor.key")
    e.plain = h.upstream()
    e.tls = h.upstream(tls=(crt, key))
    # Small receive buffers: what the vendor has not read backs up into the gateway's queue.
    e.slow = h.upstream(rcvbuf=32768)
    e.tslow = h.upstream(tls=(crt, key), rcvbuf=32768)
    e.us = h.upstream(host="127.0.0.3")
    sealed = h.us_vendor(h.vendor("sealed", ["sealed.test"], e.us.port, addresses=["127.0.0.3"],
                                  basis="none", on_violation="encrypt"))
    vendors = [
        h.vendor("plain", ["plain.test"], e.plain.port),
        h.vendor("tls", ["api.vendor.test"], e.tls.port, tls=True, ca=ca),
        h.vendor("slow", ["slow.test"], e.slow.port),
        h.vendor("tslow", ["slow.vendor.test"], e.tslow.port, tls=True, ca=ca),
        sealed,
    ]
    e.pieces = pieces_vendor()
    vendors.append(h.vendor("pieces", ["pieces.test"], e.pieces))
    # Bodies are held whole for the decision (under max_body_scan), then sent with the head.
    e.g = h.Gateway(h.gateway_config(vendors, limits={"max_body_scan": "16MiB", "max_body": "32MiB"})).start()
    return e


# Answers sent in pieces, 50 ms apart (TCP_NODELAY: each piece is its own read at the gateway): the
# head split anywhere, interim (1xx) answers before it, split too, the body's first bytes in the
# head's last piece. Path -> (pieces, the body the client must get).
PIECES = {
    "/split-head": ([b"HTTP/1.1 200 OK\r\nContent-", b"Length: 5\r\n\r", b"\nhello"], b"hello"),
    "/interim-then-split": ([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2",
                             b"00 OK\r\nContent-Length: 3\r\n\r\nabc"], b"abc"),
    "/split-interim": ([b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n",
                        b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], b"ok"),
    "/interims-one-read": ([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n"
                            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nwhole"[:-1]], b"whol"),
    "/head-alone": ([b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n", b"abc", b"def"], b"abcdef"),
}


def pieces_vendor():
    """A keep-alive vendor that answers each GET with PIECES[path]; returns its port."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)

    def serve(c):
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    c.close()
                    return
                buf += d
            head, _, buf = buf.partition(b"\r\n\r\n")
            path = head.split(b" ")[1].decode()
            for piece in PIECES.get(path, ([b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"], b""))[0]:
                c.sendall(piece)
                time.sleep(0.05)

    def accept():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return ls.getsockname()[1]


def at_vendor(up, host, since):
    return [r for r in up.requests[since:] if any(n.lower() == "host" and v == host for n, v in r["headers"])]


def post(c, host, path, body, headers=OCTETS):
    c.send(h.request("POST", path, host, headers, body))
    return c.read_response()


def sizes_arrive_byte_exact(up, host):
    e = env()
    before = len(up.requests)
    c = h.Conn(e.g.port(), timeout=20)
    for n in SIZES:
        r = post(c, host, "/status/200", body_of(n))
        eq(r.status, 200, "POST of %d bytes: %r" % (n, r))
    c.close()
    got = at_vendor(up, host, before)
    eq([g["body_len"] for g in got], SIZES, "body lengths at the vendor, in order")
    for n, g in zip(SIZES, got):
        check(g["body"].encode("latin-1") == body_of(n), "the %d-byte body arrived altered" % n)
    eq(len({g["conn"] for g in got}), 1, "one vendor connection kept alive for them all")


@test
def held_bodies_of_every_size_reach_a_plain_vendor_byte_exact():
    sizes_arrive_byte_exact(env().plain, "plain.test")


@test
def held_bodies_of_every_size_reach_a_tls_vendor_byte_exact():
    sizes_arrive_byte_exact(env().tls, "api.vendor.test")


@test
def pipelined_posts_reach_the_vendor_in_order_and_byte_exact():
    """Three requests in one client write: the second and third wait in the input buffer while the
    first is answered; each body goes out whole, after its own head, in order."""
    e = env()
    sizes = [20000, 5, 70000]
    for up, host in ((e.plain, "plain.test"), (e.tls, "api.vendor.test")):
        before = len(up.requests)
        c = h.Conn(e.g.port(), timeout=20)
        c.send(b"".join(h.request("POST", "/status/200", host, OCTETS, body_of(n, 1)) for n in sizes))
        for n in sizes:
            r = c.read_response()
            eq(r.status, 200, "%s: pipelined POST of %d bytes: %r" % (host, n, r))
        c.close()
        got = at_vendor(up, host, before)
        eq([g["body_len"] for g in got], sizes, "%s: bodies at the vendor, in order" % host)
        for n, g in zip(sizes, got):
            check(g["body"].encode("latin-1") == body_of(n, 1), "%s: the %d-byte body arrived altered" % (host, n))


@test
def bodies_that_arrive_in_pieces_reach_the_vendor_byte_exact_and_in_order():
    """The held body grows read by read (its storage keeps room for the head in front of it), then
    goes to the vendor with its head as one buffer handed over: bodies sent in uneven pieces with
    pauses (Content-Length, and chunked with the chunk boundaries split too), a PUT (may be sent
    again, so its body stays: copied as before), and a head larger than the room kept for it,
    all on one client connection, then the same again pipelined in one write behind a first
    request. Every body at the vendor byte for byte, in the order sent."""
    e = env()
    rnd = random.Random(5)

    def pieces(data):
        out, i = [], 0
        while i < len(data):
            k = rnd.choice([1, 7, 300, 4096, 9000, 20000])
            out.append(data[i:i + k])
            i += k
        return out

    def chunked(data):
        out, i = b"", 0
        while i < len(data):
            k = rnd.choice([1, 100, 5000, 17000])
            out += b"%x\r\n" % len(data[i:i + k]) + data[i:i + k] + b"\r\n"
            i += k
        return out + b"0\r\n\r\n"

    big_head = OCTETS + [("X-Pad-%d" % i, "v" * 200) for i in range(45)]  # ~10 KiB: over the room
    reqs = []  # (bytes on the wire, the body the vendor must get)
    for n, seed in ((16384, 10), (70000, 11), (1, 12), (300000, 13)):
        body = body_of(n, seed)
        reqs.append((h.request("POST", "/status/200", "plain.test", OCTETS, body), body))
    body = body_of(50000, 14)
    head = h.request("POST", "/status/200", "plain.test", OCTETS + [("Transfer-Encoding", "chunked")])
    reqs.append((head + chunked(body), body))
    body = body_of(40000, 15)
    reqs.append((h.request("PUT", "/status/200", "plain.test", OCTETS, body), body))
    body = body_of(30000, 16)
    reqs.append((h.request("POST", "/status/200", "plain.test", big_head, body), body))
    before = len(e.plain.requests)
    c = h.Conn(e.g.port(), timeout=20)
    for wire, body in reqs:
        for p in pieces(wire):
            c.send(p)
            if rnd.random() < 0.3:
                time.sleep(0.01)
        r = c.read_response()
        eq(r.status, 200, "%d-byte body in pieces: %r" % (len(body), r))
    # pipelined: all in one write, itself cut in pieces
    for p in pieces(b"".join(w for w, _ in reqs)):
        c.send(p)
    for _, body in reqs:
        r = c.read_response()
        eq(r.status, 200, "pipelined %d-byte body: %r" % (len(body), r))
    c.close()
    got = at_vendor(e.plain, "plain.test", before)
    want = [b for _, b in reqs] * 2
    eq([g["body_len"] for g in got], [len(b) for b in want], "body lengths at the vendor, in order")
    for i, (b, g) in enumerate(zip(want, got)):
        check(g["body"].encode("latin-1") == b, "request %d: the %d-byte body arrived altered" % (i, len(b)))


@test
def a_large_body_to_a_slow_reading_vendor_arrives_byte_exact():
    """8 MiB to a vendor that reads 64 KiB every 5 ms through a 32 KiB receive buffer, on a new
    connection (the request goes out from its open callback, not the io_uring check): the socket
    takes a part of the head + body write (at most tcp_wmem's 4 MiB), the rest waits in the queue
    and goes out as the vendor reads (plain: copied from the held body; TLS: the records the socket
    did not take become the queue, from where it stopped)."""
    e = env()
    body = body_of(8 << 20)
    for up, host in ((e.slow, "slow.test"), (e.tslow, "slow.vendor.test")):
        before = len(up.requests)
        c = h.Conn(e.g.port(), timeout=30)
        t0 = time.monotonic()
        r = post(c, host, "/slow-read/65536/5", body)
        dt = time.monotonic() - t0
        eq(r.status, 200, "%s: %r" % (host, r))
        got = at_vendor(up, host, before)
        eq(len(got), 1, "%s: requests at the vendor" % host)
        eq(got[0]["body_len"], len(body), "%s: body length at the vendor" % host)
        check(got[0]["body"].encode("latin-1") == body, "%s: the body arrived altered" % host)
        check(dt > 0.1, "%s: the upload took %.2fs: the vendor did not read slowly" % (host, dt))
        # the same connection carries the next request whole
        small = body_of(3000, 2)
        r = post(c, host, "/status/200", small)
        eq(r.status, 200, "%s: the next request: %r" % (host, r))
        check(at_vendor(up, host, before)[-1]["body"].encode("latin-1") == small, "%s: next body" % host)
        c.close()


@test
def a_client_that_leaves_while_its_body_waits_for_the_vendor_leaves_the_gateway_serving():
    """4 MiB to a vendor that stops reading after 64 KiB: most of the body waits in the gateway's
    queue when the client closes. The exchange goes with the client, the vendor connection with
    its queue; the gateway then serves the next requests on both kinds of vendor."""
    e = env()
    body = body_of(4 << 20)
    for up, host in ((e.slow, "slow.test"), (e.tslow, "slow.vendor.test")):
        c = h.Conn(e.g.port(), timeout=20)
        c.send(h.request("POST", "/stop-read/65536", host, OCTETS, body))
        time.sleep(0.5)  # the gateway has the body and is writing it to the vendor
        c.close()
        time.sleep(0.2)
        check(e.g.proc.poll() is None, "the gateway exited after the client left (%s)" % host)
        c = h.Conn(e.g.port(), timeout=20)
        small = body_of(12000, 3)
        r = post(c, host, "/status/200", small)
        eq(r.status, 200, "%s: the next request: %r" % (host, r))
        check(up.requests[-1]["body"].encode("latin-1") == small, "%s: next body" % host)
        c.close()


@test
def a_sealed_body_over_8_kib_reaches_the_vendor_rewritten():
    """encrypt: the vendor gets the rewritten body (out_body, not the held one), whole, with its
    own Content-Length, the personal value replaced by a token and the rest untouched."""
    e = env()
    email = "erika.mustermann@example.org"
    pad = "x" * 20000
    body = ('{"user": {"email": "%s"}, "pad": "%s", "n": 7}' % (email, pad)).encode()
    before = len(e.us.requests)
    c = h.Conn(e.g.port(), timeout=20)
    r = post(c, "sealed.test", "/status/200", body, [("Content-Type", "application/json")])
    eq(r.status, 200, "status: %r" % r)
    c.close()
    got = at_vendor(e.us, "sealed.test", before)
    eq(len(got), 1, "requests at the vendor")
    wire = got[0]["body"]
    check(email not in wire, "the plaintext address reached the vendor")
    check(wire.startswith('{"user": {"email": "bgtok:v1:'), "no token in %r" % wire[:120])
    check(wire.endswith('"}, "pad": "%s", "n": 7}' % pad), "the rest of the body changed: %r" % wire[-80:])
    cl = [v for n, v in got[0]["headers"] if n.lower() == "content-length"]
    eq(cl, [str(got[0]["body_len"])], "Content-Length vs the body the vendor got")


@test
def large_answers_reach_the_client_byte_exact():
    """The answer's way back: a relayed body with its head in the check's next io_uring_enter,
    over plain and TLS, small and larger than a socket takes at once."""
    e = env()
    c = h.Conn(e.g.port(), timeout=20)
    for host in ("plain.test", "api.vendor.test"):
        for n in (100, 8000, 9000, 70000, 1 << 20):
            c.send(h.request("GET", "/bytes/%d" % n, host))
            r = c.read_response()
            eq(r.status, 200, "%s: GET /bytes/%d: %r" % (host, n, r))
            check(r.body == h.pattern(n), "%s: the %d-byte answer arrived altered" % (host, n))
    c.close()


@test
def answers_whose_head_comes_in_pieces():
    """The vendor's head is parsed where it lies: in the read (no copy) when it is whole there, else
    gathered across reads; interim answers are skipped in either place; the body's first bytes
    that came with the head's end are relayed. Every answer on one kept-alive client connection."""
    e = env()
    c = h.Conn(e.g.port(), timeout=10)
    for path, (_, want) in PIECES.items():
        c.send(h.request("GET", path, "pieces.test"))
        r = c.read_response()
        eq(r.status, 200, "%s: %r" % (path, r))
        eq(r.body, want, "%s: the body" % path)
    c.close()


if __name__ == "__main__":
    h.main()
