#!/usr/bin/env python3
"""test_io_uring.py -- the workers' batched socket reads (io_uring, the default) lose, reorder or
mix up nothing, and `io_uring: false` serves the same way with recv().

Several connections at once (plain and TLS), each with many pipelined requests: bodies larger
than one read (64 KiB) going up, answers of up to 1 MiB coming down, so that one check of the
loop holds reads of many streams, full buffers list their stream again, and answers are written
while other streams' results wait. Every answer must be the one for its request, whole, in order.
At exit the gateway logs its ring's counters: the batched path ran, and no completion ever came
after io_uring_enter returned (late=0: MSG_DONTWAIT makes every read complete inline).
"""

import json
import random
import re
import select
import ssl
import threading

import harness as h
from harness import check, eq, test

CONNS = 8
PIPELINE = 12


def body_of(seed, n):
    r = random.Random(seed)
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 .,;\n"
    return bytes(r.choice(alphabet) for _ in range(min(n, 4096))) * (n // 4096 + 1)


def plan(conn_id):
    """The requests of one connection: (wire bytes, check(response) -> error or None)."""
    r = random.Random(conn_id)
    out = []
    for i in range(PIPELINE):
        tag = "c%d-r%d" % (conn_id, i)
        if r.random() < 0.5:
            n = r.choice([10, 1000, 70000, 200000, 1 << 20])
            wire = ("GET /bytes/%d?t=%s HTTP/1.1\r\nHost: api.vendor.test\r\n\r\n" % (n, tag)).encode()

            def want(resp, n=n, tag=tag):
                if resp.status != 200:
                    return "%s: status %d" % (tag, resp.status)
                if resp.body != h.pattern(n):
                    return "%s: body of %d bytes differs from pattern(%d)" % (tag, len(resp.body), n)
                return None
        else:
            n = r.choice([0, 500, 65536, 65537, 150000, 400000])
            body = body_of(tag, n)[:n]
            wire = ("POST /echo?t=%s HTTP/1.1\r\nHost: api.vendor.test\r\nContent-Type: text/plain\r\n"
                    "Content-Length: %d\r\n\r\n" % (tag, n)).encode() + body

            def want(resp, n=n, tag=tag, body=body):
                if resp.status != 200:
                    return "%s: status %d" % (tag, resp.status)
                j = json.loads(resp.body)
                if j.get("target") != "/echo?t=%s" % tag:
                    return "%s: answer for %r" % (tag, j.get("target"))
                if j.get("body_len") != n or j.get("body", "").encode("latin-1") != body:
                    return "%s: vendor got %s bytes, want %d (or different bytes)" % (tag, j.get("body_len"), n)
                return None
        out.append((wire, want))
    return out


def pump(c, data):
    """Send all of data while taking in what comes back (into c.buf, for read_response): a
    pipeline this size does not fit in the socket buffers while nobody reads the answers. One
    thread: an ssl socket must not be read and written by two at once."""
    s = c.sock
    s.setblocking(False)
    off = 0
    try:
        while off < len(data):
            r, w, _ = select.select([s], [s], [], 20)
            if not r and not w:
                raise TimeoutError("pump: no progress in 20 s")
            if r:
                try:
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            raise h.Closed()
                        c.buf += chunk
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    pass
            if w:
                try:
                    off += s.send(data[off:off + 65536])
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    pass
    finally:
        s.setblocking(True)


def run_clients(port, ctx=None):
    errors = []

    def one(cid):
        try:
            c = h.Conn(port, ssl_context=ctx, server_hostname="api.vendor.test" if ctx else None, timeout=20)
            reqs = plan(cid)
            pump(c, b"".join(w for w, _ in reqs))
            for i, (_, want) in enumerate(reqs):
                resp = c.read_response()
                err = want(resp)
                if err:
                    errors.append("conn %d request %d: %s" % (cid, i, err))
                    return
        except Exception as e:  # noqa: BLE001 (reported as the test's failure)
            errors.append("conn %d: %r" % (cid, e))

    ts = [threading.Thread(target=one, args=(i,)) for i in range(CONNS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return errors


def env(io_uring):
    up = h.upstream()
    listen = [{"address": None},
              {"address": None, "tls": {"certificate": h.cert("gateway.crt"), "key": h.cert("gateway.key")}}]
    extra = {} if io_uring is None else {"io_uring": io_uring}
    cfg = h.gateway_config([h.vendor("v", ["api.vendor.test"], up.port)], listen=listen,
                           limits={"max_body_scan": "1MiB"}, **extra)
    gw = h.Gateway(cfg)
    gw.start()
    return gw


def ring_counters(gw):
    """(enters, reads, late) from the line the worker logs when its ring closes, or None."""
    m = re.search(r'io_uring reads.*?enters=(\d+).*?reads=(\d+).*?late=(\d+)', gw.stderr())
    return tuple(int(x) for x in m.groups()) if m else None


@test
def batched_reads_keep_every_byte_in_order_across_connections():
    gw = env(None)  # the default: io_uring on
    errs = run_clients(gw.port(0))
    eq(errs, [], "plain")
    errs = run_clients(gw.port(1), h.client_context(verify=False))
    eq(errs, [], "TLS")
    gw.stop()
    rc = ring_counters(gw)
    check(rc is not None, "no io_uring counters in the log (did the batched path run?): %s" % gw.stderr()[-2000:])
    enters, reads, late = rc
    check(enters > 0 and reads >= enters, "enters=%d reads=%d" % (enters, reads))
    eq(late, 0, "completions that came after io_uring_enter returned")
    print("ring: %d io_uring_enter, %d reads, %d late" % rc)


@test
def io_uring_off_serves_the_same():
    gw = env(False)
    errs = run_clients(gw.port(0))
    eq(errs, [], "plain")
    errs = run_clients(gw.port(1), h.client_context(verify=False))
    eq(errs, [], "TLS")
    gw.stop()
    eq(ring_counters(gw), None, "io_uring: false must not make a ring")


if __name__ == "__main__":
    h.main()
