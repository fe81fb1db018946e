#!/usr/bin/env python3
"""Connection and request-rate limits per listener and per caller (issue 9): the bound is exact
across worker threads, a refused request is a 429 problem+json with Retry-After that never
reaches the vendor, other listeners and other callers are not affected, the limiter refills,
HTTP/2 streams are counted like HTTP/1.1 requests, and every refusal is in /metrics."""
import json
import socket
import struct
import subprocess
import threading
import time

import harness as h
from harness import test, check, eq


def conn_from(src, port):
    """A raw client connection from source address `src` (another caller on loopback)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(5.0)
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c = h.Conn.__new__(h.Conn)
    c.sock, c.buf, c.timeout = s, bytearray(), 5.0
    h.defer(c.close)
    return c


def burst(c, n, host):
    """n keep-alive GETs on c, one after the other: the list of responses."""
    out = []
    for i in range(n):
        c.send(h.request("GET", "/echo?i=%d" % i, host))
        out.append(c.read_response())
    return out


def limited(admin_port, scope, kind):
    return h.metric(admin_port, "bordergate_limited_total", {"scope": scope, "kind": kind}) or 0


@test
def listener_request_rate_is_exact_across_workers_and_refills():
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("rl", ["rl.test"], up.port)], workers=2,
                           listen=[{"address": None, "requests_per_second": 2, "request_burst": 6},
                                   {"address": None}])
    g = h.Gateway(cfg).start()
    # Three connections land on both workers (SO_REUSEPORT); together they get exactly the burst.
    conns = [h.Conn(g.port()) for _ in range(3)]
    got = []
    for _ in range(4):
        for c in conns:
            got += burst(c, 1, "rl.test")
    statuses = [r.status for r in got]
    eq(statuses.count(200), 6, "exactly the burst passes: %r" % statuses)
    eq(statuses.count(429), 6, "the rest is refused: %r" % statuses)
    eq(up.count(), 6, "a refused request never reaches the vendor")
    r = next(r for r in got if r.status == 429)
    eq(r.headers.get("Content-Type"), "application/problem+json")
    eq(r.headers.get("Cache-Control"), "no-store")
    ra = int(r.headers.get("Retry-After"))
    check(1 <= ra <= 1, "Retry-After is the seconds until the next slot (2/s → 1): %r" % ra)
    body = r.json()
    eq(body["status"], 429)
    eq(body["limit"], "listener")
    # The connection stays usable (a 429 is an answer, not an error).
    time.sleep(0.6)  # 2/s: one slot back after 0.5 s
    eq(burst(conns[0], 1, "rl.test")[0].status, 200, "the limiter refills at its rate")
    eq(burst(conns[0], 1, "rl.test")[0].status, 429, "... and only at its rate")
    # The other listener has no limit.
    other = h.Conn(g.port(1))
    eq([r.status for r in burst(other, 10, "rl.test")], [200] * 10, "the second listener is not limited")
    eq(limited(g.admin_port, "listener", "requests"), 7)
    eq(limited(g.admin_port, "caller", "requests"), 0)
    g.stop()


@test
def caller_request_rate_limits_one_caller_not_the_others():
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("cr", ["cr.test"], up.port)], workers=2,
                           limits={"requests_per_second_per_caller": 1, "request_burst_per_caller": 5})
    g = h.Gateway(cfg).start()
    a1, a2 = conn_from("127.0.0.1", g.port()), conn_from("127.0.0.1", g.port())
    got = burst(a1, 4, "cr.test") + burst(a2, 4, "cr.test")
    statuses = [r.status for r in got]
    eq(statuses.count(200), 5, "one caller over two connections gets its burst: %r" % statuses)
    eq(statuses.count(429), 3, statuses)
    eq(next(r for r in got if r.status == 429).json()["limit"], "caller")
    b = conn_from("127.0.0.9", g.port())
    eq([r.status for r in burst(b, 5, "cr.test")], [200] * 5, "another caller has its own budget")
    eq(burst(b, 1, "cr.test")[0].status, 429, "... which runs out too")
    eq(limited(g.admin_port, "caller", "requests"), 4)
    eq(up.count(), 10)
    g.stop()


@test
def http2_streams_count_as_requests():
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("h2", ["h2.test"], up.port)],
                           limits={"requests_per_second_per_caller": 1, "request_burst_per_caller": 5})
    g = h.Gateway(cfg).start()
    # nghttp speaks h2c by prior knowledge and sends all eight streams on one connection.
    r = subprocess.run(["nghttp", "-v", "-n", "-H", ":authority: h2.test"] +
                       ["http://127.0.0.1:%d/echo?s=%d" % (g.port(), i) for i in range(8)],
                       capture_output=True, text=True, timeout=30)
    codes = [line.split()[-1] for line in r.stdout.splitlines() if ":status:" in line]
    eq(len(codes), 8, "an answer on every stream: %r %s" % (codes, r.stderr[-500:]))
    eq(codes.count("200"), 5, repr(codes))
    eq(codes.count("429"), 3, repr(codes))
    eq(up.count(), 5)
    eq(limited(g.admin_port, "caller", "requests"), 3)
    g.stop()


def h2_frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def hpack_literal(name, value):
    """A header field as an HPACK literal without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    def s(b):
        assert len(b) < 127
        return bytes([len(b)]) + b
    return b"\x00" + s(name.encode()) + s(value.encode())


@test
def http2_bodies_held_per_connection_are_bounded():
    """Five streams each send 200 KiB and wait: over the 512 KiB connection budget the largest
    holders are decided on what they have (unscannable → blocked, fail closed); the ones that fit
    finish normally. Nothing deadlocks and nothing waits for a timeout."""
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("hb", ["hb.test"], up.port)],
                           limits={"max_body_scan": "256KiB", "max_body_scan_per_connection": "512KiB"})
    g = h.Gateway(cfg).start()
    def hb_records():
        return [r for r in h.read_records(cfg["records"]["path"]) if r["vendor"] == "hb"]
    s = socket.create_connection(("127.0.0.1", g.port()), 10)
    frames = []
    def reader():
        buf = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    return
                buf += d
                while len(buf) >= 9:
                    n = int.from_bytes(buf[:3], "big")
                    if len(buf) < 9 + n:
                        break
                    frames.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF))
                    buf = buf[9 + n:]
        except OSError:
            return
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    # Big receive windows: the answers (echoing 192 KiB) must not wait for our WINDOW_UPDATEs.
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0, struct.pack(">HI", 4, 0x7FFFFFFF)) +
              h2_frame(8, 0, 0, struct.pack(">I", 0x7FFFFFFF - 65535)))
    ids = [1, 3, 5, 7, 9]
    chunk = b"a" * 16384
    for sid in ids:
        block = (hpack_literal(":method", "POST") + hpack_literal(":scheme", "http") +
                 hpack_literal(":authority", "hb.test") + hpack_literal(":path", "/echo?s=%d" % sid) +
                 hpack_literal("content-type", "text/plain"))
        s.sendall(h2_frame(1, 0x4, sid, block))  # END_HEADERS, no END_STREAM
        for _ in range(12):  # 192 KiB, within the stream window (256 KiB)
            s.sendall(h2_frame(0, 0, sid, chunk))
    time.sleep(0.5)
    recs = hb_records()
    blocked = [r for r in recs if r.get("decision") == "block"]
    eq(len(blocked), 3, "three streams were over the connection budget: %r" % recs)
    for r in blocked:
        check("unscannable" in r.get("reason", ""), r)
    eq(up.count(), 0, "nothing forwarded yet: the two that fit still wait for their bodies")
    for sid in ids:
        s.sendall(h2_frame(0, 0x1, sid))  # END_STREAM on every stream (the blocked ones are answered)
    h.wait_until(lambda: up.count() == 2, timeout=15, msg="the two streams within the budget reach the vendor")
    h.wait_until(lambda: len(hb_records()) == 5, timeout=15,
                 msg="five records")
    statuses = sorted(r["status"] for r in hb_records())
    eq(statuses, [200, 200, 451, 451, 451])
    eq(sorted(len(r["body"]) if isinstance(r.get("body"), str) else r.get("body_len") for r in up.requests),
       [192 * 1024, 192 * 1024], "the two bodies arrived whole")
    s.close()
    check(g.alive(), "gateway alive")
    g.stop()


@test
def bodies_held_by_all_connections_are_bounded():
    """max_body_scan_total bounds what every exchange together holds for classification: three
    HTTP/1.1 clients each send 400 KiB of a 600 KiB body against a 1 MiB total; the one that would
    pass the bound is decided on what it sent (unscannable → 451), the others finish normally."""
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("tb", ["tb.test"], up.port)],
                           limits={"max_body_scan": "768KiB", "max_body_scan_total": "1MiB"})
    g = h.Gateway(cfg).start()
    head = h.request("POST", "/up", "tb.test", headers=[("Content-Type", "text/plain"),
                                                       ("Content-Length", str(600 * 1024))])
    conns = [h.Conn(g.port()) for _ in range(3)]
    for c in conns:
        c.send(head + b"a" * (400 * 1024))
        time.sleep(0.3)
    r3 = conns[2].read_response()
    eq(r3.status, 451, "the third body passes the total bound: %r" % r3)
    check("unscannable" in r3.json().get("reason", ""), r3.json())
    for c in conns[:2]:
        c.send(b"a" * (200 * 1024))
        eq(c.read_response().status, 200, "the bodies within the bound complete")
    eq(up.count(), 2)
    # Memory came back: the next body is scanned whole again.
    c = h.Conn(g.port())
    c.send(head + b"a" * (600 * 1024))
    eq(c.read_response().status, 200)
    g.stop()


@test
def listener_connection_limit_is_exact_across_workers():
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("lc", ["lc.test"], up.port)], workers=2,
                           listen=[{"address": None, "max_connections": 3}, {"address": None}])
    g = h.Gateway(cfg).start()
    time.sleep(0.5)  # the readiness probe's connection must be gone before we count
    held = [h.Conn(g.port()) for _ in range(3)]
    for c in held:
        eq(burst(c, 1, "lc.test")[0].status, 200)
    extra = h.Conn(g.port())
    check(extra.is_closed(timeout=2.0), "the 4th connection on the listener is closed")
    other = h.Conn(g.port(1))
    eq(burst(other, 1, "lc.test")[0].status, 200, "another listener is not affected")
    held[0].close()
    time.sleep(0.3)
    again = h.Conn(g.port())
    eq(burst(again, 1, "lc.test")[0].status, 200, "a slot freed by a close is usable again")
    eq(limited(g.admin_port, "listener", "connections"), 1)
    g.stop()


@test
def limits_survive_a_reload_and_follow_the_new_config():
    import signal
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("rr", ["rr.test"], up.port)],
                           listen=[{"address": None, "requests_per_second": 1, "request_burst": 2}])
    g = h.Gateway(cfg).start()
    c = h.Conn(g.port())
    eq([r.status for r in burst(c, 3, "rr.test")], [200, 200, 429])
    cfg["listen"][0]["request_burst"] = 50
    cfg["listen"][0]["requests_per_second"] = 50
    h.write_config(cfg, g.name + ".yaml")
    mark = g.mark()
    g.signal(signal.SIGHUP)
    h.wait_until(lambda: "config reloaded" in g.stderr_since(mark), msg="reload")
    statuses = [r.status for r in burst(c, 20, "rr.test")]
    eq(statuses.count(200), 20, "the new, higher limit applies: %r" % statuses)
    g.stop()


@test
def config_errors_name_the_place():
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("ce", ["ce.test"], up.port)],
                           listen=[{"address": None, "request_burst": 0, "max_connections": -1}],
                           limits={"requests_per_second_per_caller": "fast"})
    path = h.write_config(cfg, "bad-limits.yaml")
    r = h.run([h.BINARY, "check", "-c", path])
    out = r.stdout + r.stderr
    check(r.returncode != 0, "check fails: %s" % out)
    for what in ("listener request_burst", "listener max_connections", "limits.requests_per_second_per_caller"):
        check(any(what in line and line.startswith(path + ":") for line in out.splitlines()),
              "an error with FILE:LINE:COL names %s:\n%s" % (what, out))


if __name__ == "__main__":
    h.main()
