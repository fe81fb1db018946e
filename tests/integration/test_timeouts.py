#!/usr/bin/env python3
"""Timeouts that move with every request (proxy/deadline.c): a deadline re-armed later only
records its new due time, and the timer under it fires early and starts again for the rest.
These check that each timeout still counts from the right moment: the idle timeout from a
keep-alive connection's last answer, the header timeout from a head's first byte even while a
longer idle deadline is pending, and the vendor's response timeout from its last bytes, sent or
taken: a vendor reading a large upload slowly (HTTP/1.1, held or streamed, and HTTP/2) is not
silent, one that stops reading still times out."""
import os
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
    # A vendor that reads uploads slowly, through a small receive buffer: what it has not read
    # backs up into the gateway's queue. The body is held whole (under max_body_scan) and sent at once.
    e.slow = h.upstream(rcvbuf=32768)
    cfg4 = h.gateway_config([h.vendor("slow", ["slow.test"], e.slow.port)],
                            limits={"upstream_timeout": "1s", "max_body_scan": "16MiB"})
    e.g4 = h.Gateway(cfg4).start()
    # The same vendor behind a gateway that streams the body on (past max_body_scan, chunked).
    cfg5 = h.gateway_config([h.vendor("slow", ["slow.test"], e.slow.port)],
                            limits={"upstream_timeout": "1s", "max_body_scan": "64KiB", "oversize_body": "personal"})
    e.g5 = h.Gateway(cfg5).start()
    # An HTTP/2 vendor with 16 MiB windows that reads slowly: the body passes flow control at once
    # and waits in the gateway's connection queue and socket, not behind the vendor's window.
    saved = os.environ.get("H2ECHO_WINDOW")
    os.environ["H2ECHO_WINDOW"] = str((16 << 20) - 1)
    try:
        e.slow_h2 = h.h2echo()
    finally:
        if saved is None:
            os.environ.pop("H2ECHO_WINDOW", None)
        else:
            os.environ["H2ECHO_WINDOW"] = saved
    cfg6 = h.gateway_config([h.vendor("slow", ["slow.vendor.test"], e.slow_h2, tls=True, ca=h.cert("ca.crt"),
                                      protocol="http2")],
                            limits={"upstream_timeout": "1s", "max_body_scan": "16MiB"})
    e.g6 = h.Gateway(cfg6).start()
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



def _upload(port, path, body, host="slow.test", timeout=30):
    c = h.Conn(port, timeout=timeout)
    c.send(h.request("POST", path, host, [("Content-Type", "application/octet-stream")], body))
    t0 = time.monotonic()
    r = c.read_response()
    dt = time.monotonic() - t0
    c.close()
    return r, dt


@test
def response_timeout_does_not_cut_off_a_vendor_that_reads_a_large_upload_slowly():
    """A vendor that takes a 4 MiB upload at ~1.5 MiB/s (64 KiB every 40 ms) is never silent for
    upstream_timeout (1 s) and answers once it has it all, whether the gateway held the body
    whole or streams it on: the response timeout is the vendor's silence, and taking request
    bytes is not silence (it ran from the request's head: 504 after ~1 s of a ~3 s upload)."""
    e = env()
    body = h.pattern(4 << 20)
    for g, how in ((e.g4, "held whole, sent at once"), (e.g5, "streamed on, chunked")):
        r, dt = _upload(g.port(), "/slow-read/65536/40", body)
        eq(r.status, 200, "%s: after a slow upload of %.1fs: %r" % (how, dt, r))
        eq(r.json()["body_len"], len(body), "%s: body the vendor got" % how)
        check(dt > 2.0, "%s: the upload took %.2fs: not slow enough to test anything" % (how, dt))


@test
def an_http2_vendor_that_reads_a_large_upload_slowly_is_not_cut_off_either():
    """The same over HTTP/2 to a vendor whose windows let the whole body through at once: the
    stream's silence counted from the last DATA its window let through, so the time the body
    then spent in the gateway's queue and socket, going out as fast as the vendor read, ran
    against the response timeout (504 after ~1 s of a ~3 s upload)."""
    e = env()
    body = h.pattern(4 << 20)
    r, dt = _upload(e.g6.port(), "/slow-read?ms=10", body, host="slow.vendor.test")
    eq(r.status, 200, "after a slow HTTP/2 upload of %.1fs: %r" % (dt, r))
    got = r.json()
    eq((got.get("proto"), got.get("body_len")), ("h2", len(body)), "protocol and body the vendor got")
    check(dt > 2.0, "the upload took %.2fs: not slow enough to test anything" % dt)


@test
def response_timeout_still_cuts_off_a_vendor_that_stops_reading_an_upload():
    """The same upload to a vendor that takes 1 MiB and then reads nothing more: 504 about
    upstream_timeout after it stopped, not an exchange that hangs while the body waits."""
    e = env()
    body = h.pattern(4 << 20)
    for g, how in ((e.g4, "held whole, sent at once"), (e.g5, "streamed on, chunked")):
        r, dt = _upload(g.port(), "/stop-read/1048576", body)
        eq(r.status, 504, "%s: a vendor that stopped reading the upload: %r" % (how, r))
        check(dt < 4.0, "%s: 504 after %.2fs (upstream_timeout 1s)" % (how, dt))
    # HTTP/2: the vendor's thread sleeps 20 s after the first DATA it reads.
    r, dt = _upload(e.g6.port(), "/slow-read?ms=20000", body, host="slow.vendor.test")
    eq(r.status, 504, "HTTP/2: a vendor that stopped reading the upload: %r" % r)
    check(dt < 4.0, "HTTP/2: 504 after %.2fs (upstream_timeout 1s)" % dt)


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
