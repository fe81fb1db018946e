#!/usr/bin/env python3
"""Timeouts that move with every request (proxy/deadline.c): a deadline re-armed later only
records its new due time, and the timer under it fires early and starts again for the rest.
These check that each timeout still counts from the right moment: the idle timeout from a
keep-alive connection's last answer, the header timeout from a head's first byte even while a
longer idle deadline is pending, and the vendor's response timeout from its last bytes."""
import time

import harness as h
from harness import test, check, eq


def _get(c, path, host):
    c.send(h.request("GET", path, host, [], b""))
    return c.read_response()


@h.once
def env():
    e = type("E", (), {})()
    e.up = h.upstream()
    cfg = h.gateway_config([h.vendor("de", ["de.test"], e.up.port)],
                           limits={"idle_timeout": "1s", "header_timeout": "1s", "upstream_timeout": "1s"})
    e.g = h.Gateway(cfg).start()
    cfg2 = h.gateway_config([h.vendor("de", ["de.test"], e.up.port)],
                            limits={"idle_timeout": "5s", "header_timeout": "1s"})
    e.g2 = h.Gateway(cfg2).start()
    cfg3 = h.gateway_config([h.vendor("de", ["de.test"], e.up.port)],
                            limits={"upstream_timeout": "1s", "max_body_scan": "64KiB", "oversize_body": "personal"})
    e.g3 = h.Gateway(cfg3).start()
    return e


@test
def idle_timeout_counts_from_the_last_answer_of_a_busy_connection():
    e = env()
    c = h.Conn(e.g.port())
    # 2.4 s of requests, 0.3 s apart, on one connection: longer than idle_timeout in all, never
    # idle for as long. The deadline moved 8 times; the connection must stay open throughout.
    for i in range(8):
        eq(_get(c, "/echo", "de.test").status, 200, "request %d on the same connection" % i)
        time.sleep(0.3)
    eq(_get(c, "/echo", "de.test").status, 200, "the connection outlived idle_timeout while busy")
    t0 = time.monotonic()
    closed = c.is_closed(timeout=4.0)
    dt = time.monotonic() - t0
    check(closed, "closed once idle")
    check(0.8 <= dt < 2.2, "closed %.2fs after the last answer (idle_timeout 1s)" % dt)


@test
def header_timeout_is_not_held_back_by_a_longer_idle_deadline():
    e = env()
    c = h.Conn(e.g2.port())
    eq(_get(c, "/echo", "de.test").status, 200)
    # The idle deadline (5 s) is pending; a head that starts now must still be cut at the header
    # timeout (1 s), sooner than the timer under the deadline would fire.
    time.sleep(0.3)
    t0 = time.monotonic()
    c.send(b"GET /echo HTTP/1.1\r\nHost: de.test\r\n")
    r = c.read_response()
    dt = time.monotonic() - t0
    eq(r.status, 408)
    check(0.8 <= dt < 2.5, "408 %.2fs after the head's first byte (header_timeout 1s, idle 5s)" % dt)


@test
def response_timeout_restarts_with_each_read_from_the_vendor():
    e = env()
    c = h.Conn(e.g.port(), timeout=10)
    t0 = time.monotonic()
    r = _get(c, "/drip/7", "de.test")  # 2.1 s in all, never silent for 1 s
    dt = time.monotonic() - t0
    eq(r.status, 200)
    eq(len(r.body), 70, "every chunk arrived")
    check(dt >= 1.8, "the answer took %.2fs, longer than upstream_timeout" % dt)
    c.close()


@test
def response_timeout_on_a_reused_vendor_connection_counts_from_the_request():
    e = env()
    c = h.Conn(e.g.port(), timeout=10)
    for _ in range(3):
        eq(_get(c, "/echo", "de.test").status, 200)  # the same vendor connection each time
    time.sleep(0.6)
    t0 = time.monotonic()
    r = _get(c, "/delay/4000", "de.test")
    dt = time.monotonic() - t0
    eq(r.status, 504)
    check(0.9 <= dt < 2.0, "504 %.2fs after the request (upstream_timeout 1s)" % dt)
    c.close()



@test
def response_timeout_waits_for_a_streamed_upload_to_finish():
    """Found by test_h2_chaos.py: a body past max_body_scan streams to the vendor as it arrives;
    the vendor cannot answer before its end, so the response timeout must not run out while the
    client is still sending (it did: 504 after upstream_timeout from the head, mid-upload)."""
    e = env()
    c = h.Conn(e.g3.port(), timeout=10)
    body = h.pattern(400000)  # past max_body_scan: streamed
    c.send(h.request("POST", "/echo", "de.test", [("Content-Type", "application/octet-stream"),
                                                  ("Content-Length", str(len(body)))]))
    c.send(body[:100000])
    t0 = time.monotonic()
    rest = body[100000:]
    try:
        for i in range(0, len(rest), 30000):  # 2.5 s for the rest: longer than upstream_timeout (1 s)
            time.sleep(0.25)
            c.send(rest[i:i + 30000])
    except OSError:
        pass  # the gateway answered early and closed: read what it said
    r = c.read_response()
    eq(r.status, 200, "answered after an upload of %.1fs: %r" % (time.monotonic() - t0, r))
    eq(r.json()["body_len"], len(body))
    c.close()



@test
def an_idle_http2_connection_gets_goaway_before_the_close():
    """Found by test_h2_chaos.py: the idle timeout closed an HTTP/2 connection without a GOAWAY,
    so a request sent just then was lost without the client being told it was not processed
    (RFC 9113 9.1: the closing side SHOULD send GOAWAY first)."""
    import struct
    from h2wire import GOAWAY, PREFACE, SETTINGS, frame
    e = env()
    c = h.Conn(e.g.port(), timeout=5)
    c.send(PREFACE + frame(SETTINGS, 0, 0))
    t0 = time.monotonic()
    data = c.read_until_close(timeout=4)
    dt = time.monotonic() - t0
    check(0.8 <= dt < 3, "closed %.2fs after the last bytes (idle_timeout 1s)" % dt)
    types, goaway, i = [], None, 0
    while i + 9 <= len(data):
        n = int.from_bytes(data[i:i + 3], "big")
        types.append(data[i + 3])
        if data[i + 3] == GOAWAY:
            goaway = struct.unpack(">II", data[i + 9:i + 17])
        i += 9 + n
    check(goaway is not None, "GOAWAY before the close: frame types %r" % types)
    eq(goaway, (0, 0), "GOAWAY: last stream 0, NO_ERROR")
    c.close()

if __name__ == "__main__":
    h.main()
