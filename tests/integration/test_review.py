#!/usr/bin/env python3
"""test_review.py -- reproductions of the data-plane review's findings (review branch). Each test
fails on the bug it names and passes once it is fixed:
- a non-idempotent request (POST) is re-sent to the vendor after a reused connection breaks
  (RFC 9110 9.2.2: a proxy must not retry it automatically; the vendor sees the transfer twice);
- hop-by-hop fields nominated by any Connection field line are removed, not only by the last one;
- a reload that turns TLS verification on must not keep reusing pooled connections that were
  established without it;
- report-only mode with a vendor whose name does not resolve: the exchange forwards with
  chosen == -1 and start_forward reads ex->dests[-1] (heap out of bounds; ASan: SEGV);
- an HTTP/2 stream whose request body stalls is bounded by limits.body_timeout like HTTP/1.1's
  slow POST (the connection's idle timer is re-armed forever while a stream is open).
"""
import os
import signal
import socket
import struct
import time

import harness as h
from harness import test, check, eq


def _sighup(g):
    m = g.mark()
    g.signal(signal.SIGHUP)
    h.wait_until(lambda: "config reloaded" in g.stderr_since(m) or "reload failed" in g.stderr_since(m),
                 msg="reload outcome")
    check("config reloaded" in g.stderr_since(m), "reload ok: %r" % g.stderr_since(m)[-800:])


@test
def post_is_not_retried_after_a_reused_connection_breaks():
    up = h.upstream()
    g = h.Gateway(h.gateway_config([h.vendor("de", ["de.test"], up.port)])).start()
    defer_stop = g
    c = h.Conn(g.port())
    # 1: pools a keep-alive connection to the vendor.
    c.send(h.request("GET", "/echo", "de.test"))
    eq(c.read_response().status, 200)
    up.clear()
    # 2: a POST on the pooled connection; the vendor reads it, then resets without answering.
    c.send(h.request("POST", "/reset", "de.test", [("Content-Type", "text/plain")], b"charge 100 EUR"))
    resp = c.read_response()
    time.sleep(0.3)
    posts = [r for r in up.requests if r["method"] == "POST"]
    check(resp.status >= 500, "the client is told the vendor failed: %r" % resp.status)
    eq(len(posts), 1, "the vendor received the POST this many times")
    c.close()
    defer_stop.stop()


@test
def every_connection_field_line_nominates_hop_by_hop_fields():
    up = h.upstream()
    g = h.Gateway(h.gateway_config([h.vendor("de", ["de.test"], up.port)])).start()
    for conn_lines in (["x-internal", "close"], ["close", "x-internal"], ["x-internal, close"]):
        up.clear()
        hdrs = [("Connection", v) for v in conn_lines] + [("X-Internal", "secret-token")]
        c = h.Conn(g.port())
        c.send(h.request("GET", "/echo", "de.test", hdrs))
        eq(c.read_response().status, 200)
        c.close()
        got = up.wait_for(1)[-1]
        names = [n.lower() for n, _ in got["headers"]]
        check("x-internal" not in names, "Connection lines %r: X-Internal forwarded: %r" % (conn_lines, got["headers"]))
    g.stop()


@test
def reload_enabling_tls_verification_drops_pooled_unverified_connections():
    key = h.cert("vendor.key")
    bad = h.upstream(tls=(h.cert("vendor-wrongca.crt"), key))
    ca = h.cert("ca.crt")
    v = h.vendor("tv", ["api.vendor.test"], bad.port, tls=True, ca=ca, verify=False)
    cfg = h.gateway_config([v], limits={"idle_timeout": "60s"})
    g = h.Gateway(cfg).start()
    c = h.Conn(g.port())
    c.send(h.request("GET", "/echo", "api.vendor.test"))
    eq(c.read_response().status, 200, "verify: false accepts the wrong CA")
    c.close()
    # The operator turns verification on.
    cfg["vendors"][0]["upstream"]["verify"] = True
    with open(g.path, "w") as f:
        f.write(h.to_yaml(cfg))
    _sighup(g)
    bad.clear()
    c = h.Conn(g.port())
    c.send(h.request("GET", "/echo", "api.vendor.test"))
    st = c.read_response().status
    c.close()
    eq((st, bad.count()), (502, 0), "after the reload the unverified vendor gets nothing (status, requests)")
    g.stop()


@test
def report_only_vendor_without_addresses_is_not_forwarded_to_garbage():
    up = h.upstream()
    v = h.vendor("ghost", ["ghost.invalid"], up.port)
    v["upstream"].pop("addresses")  # resolved by DNS: .invalid never resolves
    g = h.Gateway(h.gateway_config([v], mode="report-only")).start()
    m = g.mark()
    r = h.curl("-sS", "-m", "10", "-H", "Host: ghost.invalid", "http://127.0.0.1:%d/echo" % g.port())
    time.sleep(0.3)
    check(g.alive(), "gateway alive after a report-only request to an unresolvable vendor; stderr: %r"
          % g.stderr_since(m)[-1500:])
    check(r.status >= 500, "answered with an error: %r" % (r,))
    log = g.stderr_since(m)
    check('msg="upstream failed"' not in log,
          "no connection may be attempted when there is no destination address; log: %r" % log[-800:])
    g.stop()


def _frame(t, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload


def _lit(name, value):
    return b"\x10" + bytes([len(name)]) + name + bytes([len(value)]) + value  # literal, never indexed


@test
def h2_stalled_request_body_is_bounded_by_body_timeout():
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("de", ["de.test"], up.port)],
                           limits={"idle_timeout": "1s", "body_timeout": "1s", "header_timeout": "1s"})
    g = h.Gateway(cfg).start()
    s = socket.create_connection(("127.0.0.1", g.port()), 5)
    blk = (_lit(b":method", b"POST") + _lit(b":scheme", b"http") + _lit(b":path", b"/echo") +
           _lit(b":authority", b"de.test") + _lit(b"content-length", b"1000"))
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0) + _frame(1, 4, 1, blk) + _frame(0, 0, 1, b"x" * 10))
    # Then silence. Within a few seconds the stream must be answered (408) or reset, or the
    # connection closed; reading what the gateway sends (SETTINGS, ACKs) until then.
    s.settimeout(0.5)
    end = time.monotonic() + 6
    got, closed = b"", False
    while time.monotonic() < end and not closed:
        try:
            d = s.recv(65536)
            if not d:
                closed = True
            got += d
        except socket.timeout:
            pass
        except OSError:
            closed = True
    # Frames for stream 1: HEADERS (type 1) or RST_STREAM (type 3) or GOAWAY (type 7 on 0).
    answered = False
    i = 0
    while i + 9 <= len(got):
        ln = int.from_bytes(got[i:i + 3], "big")
        typ, sid = got[i + 3], int.from_bytes(got[i + 5:i + 9], "big") & 0x7FFFFFFF
        if (sid == 1 and typ in (1, 3)) or typ == 7:
            answered = True
        i += 9 + ln
    s.close()
    check(answered or closed, "after 6 s of a stalled body (body_timeout 1s) the stream is neither answered nor "
                              "reset and the connection is open; up got %d requests" % up.count())
    g.stop()


if __name__ == "__main__":
    h.main()
