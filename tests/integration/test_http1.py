#!/usr/bin/env python3
"""test_http1.py -- issue 3 acceptance: the HTTP/1.1 data plane end to end. Real clients (curl,
raw sockets) against build/bordergate, with real upstreams (upstream.py and Debian's nginx) on
loopback. Covers methods and framing, keep-alive, pipelining, 100-continue, absolute-form,
routing (exact, wildcard, unknown host, CONNECT), proxy headers, limits, ambiguous framing,
upstream failures (refused, reset, timeout, close mid-body) and SIGTERM draining."""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402


class Env:
    pass


@h.once
def env():
    e = Env()
    e.up = h.upstream()
    e.nginx = h.Nginx().start()
    e.refused = h.free_port()  # nothing listens there
    vendors = [
        h.vendor("echo", ["echo.test", "*.wild.test"], e.up.port),
        h.vendor("nginx", ["nginx.test"], e.nginx.port),
        h.vendor("refused", ["refused.test"], e.refused),
    ]
    e.gw = h.Gateway(h.gateway_config(vendors, workers=2), name="http1").start()
    e.port = e.gw.port()
    e.url = "http://127.0.0.1:%d" % e.port
    return e


def via(host, path, *args, **kw):
    """curl through the gateway's plain listener with Host: host."""
    e = env()
    return h.curl("-H", "Host: " + host, *args, e.url + path, **kw)


def quiet(e, before, why=""):
    """Nothing reached the upstream since `before` requests."""
    time.sleep(0.2)
    eq(e.up.count(), before, "requests that reached the upstream" + (" (%s)" % why if why else ""))


def hdrs(rec):
    return h.Headers([tuple(x) for x in rec["headers"]])


# ---- methods, bodies, framing -----------------------------------------------------------------

@test
def get_is_forwarded_in_origin_form():
    e = env()
    r = via("echo.test", "/v1/items?id=7", "-H", "X-Req: 1")
    eq(r.status, 200, repr(r))
    rec = r.json()
    eq((rec["method"], rec["target"], rec["version"]), ("GET", "/v1/items?id=7", "HTTP/1.1"))
    eq(hdrs(rec).get("host"), "echo.test", "Host at the vendor")
    eq(hdrs(rec).get("x-req"), "1", "end-to-end header")
    eq(e.up.last()["target"], "/v1/items?id=7")


@test
def get_through_nginx_upstream():
    r = via("nginx.test", "/index")
    eq((r.status, len(r.body), r.body[:4]), (200, 1024, b"xxxx"))


@test
def post_content_length_body():
    body = os.urandom(100000).hex().encode()[:150000]
    path = os.path.join(h.tmpdir(), "post.bin")
    open(path, "wb").write(body)
    r = via("echo.test", "/post", "--data-binary", "@" + path, "-H", "Content-Type: text/plain")
    eq(r.status, 200, repr(r))
    rec = env().up.last()
    eq((rec["method"], rec["body_len"]), ("POST", len(body)))
    check(rec["body"].encode("latin-1") == body, "body differs at the vendor")


@test
def post_to_nginx_16k_json():
    items, body = [], ""
    while len(body) < 16384:  # a valid JSON document of about 16 KiB (a cut one is unscannable: 451)
        items.append({"sku": "A-%05d" % len(items), "qty": len(items) % 5})
        body = json.dumps({"items": items})
    r = via("nginx.test", "/ingest", "-H", "Content-Type: application/json", "--data-binary", body)
    eq((r.status, len(r.body)), (200, 1024), repr(r))


@test
def chunked_request_body():
    e = env()
    data = h.pattern(200000)
    path = os.path.join(h.tmpdir(), "chunked.bin")
    open(path, "wb").write(data)
    r = via("echo.test", "/chunked-in", "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + path)
    eq(r.status, 200, repr(r))
    rec = e.up.last()
    eq(rec["body_len"], len(data), "length at the vendor")
    check(rec["body"].encode("latin-1") == data, "body differs")
    # raw chunked with extensions and a trailer
    c = h.Conn(e.port)
    c.send("POST /raw-chunked HTTP/1.1\r\nHost: echo.test\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    eq(c.read_response().status, 200)
    eq(e.up.last()["body"], "hello world")


@test
def head_and_status_passthrough():
    c = h.Conn(env().port)
    c.send(h.request("HEAD", "/bytes/500", "echo.test") + h.request("GET", "/bytes/3", "echo.test"))
    r = c.read_response(head=True)
    eq((r.status, r.headers.get("content-length")), (200, "500"), "HEAD")
    eq(c.read_response().body, b"012", "the next response follows the bodiless HEAD response")
    for st in (201, 404, 503):
        eq(via("echo.test", "/status/%d" % st).status, st, "status %d passed through" % st)
    r = via("echo.test", "/status/204")
    eq((r.status, r.body), (204, b""))


@test
def response_bodies_arrive_whole():
    r = via("echo.test", "/bytes/1000000")
    eq((r.rc, r.status, len(r.body)), (0, 200, 1000000))
    check(r.body == h.pattern(1000000), "content-length body differs")
    r = via("echo.test", "/chunked/300000")
    eq((r.rc, r.status, len(r.body)), (0, 200, 300000))
    check(r.body == h.pattern(300000), "chunked body differs")
    r = via("echo.test", "/no-length/200000")
    eq((r.rc, r.status, len(r.body)), (0, 200, 200000))
    check(r.body == h.pattern(200000), "close-delimited body differs")


@test
def keep_alive_client_and_upstream_connection_reused():
    e = env()
    c = h.Conn(e.port)
    for i in range(3):
        c.send(h.request("GET", "/ka/%d" % i, "echo.test"))
        r = c.read_response()
        eq((r.status, r.json()["target"]), (200, "/ka/%d" % i))
    check(not c.is_closed(0.3), "client connection kept alive")
    recs = [r for r in e.up.requests if r["target"].startswith("/ka/")]
    eq(len(recs), 3)
    eq(len({r["conn"] for r in recs}), 1, "one upstream connection reused for the three")


@test
def curl_reuses_the_connection():
    e = env()
    r = h.run(["curl", "-sv", "--max-time", "10", "-H", "Host: echo.test", "-o", os.devnull,
               e.url + "/c", "-o", os.devnull, e.url + "/d"])
    eq(r.returncode, 0, "curl exit (%s)" % r.stderr[-300:])
    eq(r.stderr.count("< HTTP/1.1 200"), 2, "two 200 responses")
    check("Re-using existing connection" in r.stderr, "curl did not reuse the connection")


@test
def pipelined_requests_answered_in_order():
    e = env()
    c = h.Conn(e.port, timeout=8)
    c.send(h.request("GET", "/delay/300?n=1", "echo.test")
           + h.request("POST", "/echo?n=2", "echo.test", body="abc")
           + h.request("GET", "/bytes/7", "echo.test")
           + h.request("GET", "/echo?n=4", "echo.test"))
    r1, r2, r3, r4 = [c.read_response() for _ in range(4)]
    eq(r1.json()["target"], "/delay/300?n=1", "first")
    eq((r2.json()["target"], r2.json()["body"]), ("/echo?n=2", "abc"), "second")
    eq(r3.body, b"0123456", "third")
    eq(r4.json()["target"], "/echo?n=4", "fourth")


@test
def expect_100_continue():
    e = env()
    c = h.Conn(e.port)
    c.send("POST /expect HTTP/1.1\r\nHost: echo.test\r\nContent-Length: 11\r\n"
           "Expect: 100-continue\r\n\r\n")
    r = c.read_response(interim=True)
    eq(r.status, 100, "interim response before the body is sent")
    c.send("hello world")
    r = c.read_response()
    eq(r.status, 200)
    eq(e.up.last()["body"], "hello world")
    r = via("echo.test", "/expect-curl", "-H", "Expect: 100-continue", "--data-binary", "y" * 40000)
    eq((r.status, e.up.last()["body_len"]), (200, 40000))
    # The body sent along with the head (no wait for the 100): no interim answer, only the final
    # one, and the next request on the connection is read from the right place.
    c = h.Conn(e.port)
    c.send(b"POST /expect-eager HTTP/1.1\r\nHost: echo.test\r\nContent-Length: 11\r\n"
           b"Expect: 100-continue\r\n\r\nhello world")
    r = c.read_response(interim=True)
    eq(r.status, 200, "final answer first (no 100 once the body came)")
    eq((r.json()["target"], r.json()["body"]), ("/expect-eager", "hello world"))
    c.send(h.request("GET", "/after", "echo.test"))
    r = c.read_response(interim=True)
    eq((r.status, r.json()["target"]), (200, "/after"))


def _vendor_sees(rec, target, body, extra=()):
    """The echo upstream's record rec is exactly this request: target, body, and of the fields
    the client sent only X-* ones named in extra (nothing from an earlier request)."""
    eq(rec["target"], target, "target at the vendor")
    eq((rec["body_len"], rec["body"].encode("latin-1")), (len(body), body), "body at the vendor (%s)" % target)
    xs = [(n.lower(), v) for n, v in rec["headers"] if n.lower().startswith("x-t-")]
    eq(xs, [(n.lower(), v) for n, v in extra], "X-T- fields at the vendor (%s)" % target)


@test
def bodies_arrive_whole_however_the_reads_fall():
    """Content-Length bodies are taken straight from the read buffer when nothing is buffered:
    whole request, head alone then the body in pieces, a body split with the next request glued
    to its tail, pipelined requests of different sizes. The vendor gets exactly each request."""
    e = env()
    big, small = pattern_bytes(20000), b"tiny"
    c = h.Conn(e.port, timeout=8)
    # 1: three pipelined requests in one write: a large POST, a small POST, a GET.
    c.send(h.request("POST", "/s/1", "echo.test", [("X-T-A", "1"), ("X-T-B", "2")], body=big)
           + h.request("POST", "/s/2", "echo.test", body=small)
           + h.request("GET", "/s/3", "echo.test", [("X-T-C", "3")]))
    for target in ("/s/1", "/s/2", "/s/3"):
        r = c.read_response()
        eq(r.status, 200, target)
    recs = {r["target"]: r for r in e.up.requests if r["target"].startswith("/s/")}
    _vendor_sees(recs["/s/1"], "/s/1", big, [("X-T-A", "1"), ("X-T-B", "2")])
    _vendor_sees(recs["/s/2"], "/s/2", small)
    _vendor_sees(recs["/s/3"], "/s/3", b"", [("X-T-C", "3")])
    # 2: the head alone, then the body in three pieces (separate reads, each fed as it comes).
    req = h.request("POST", "/s/4", "echo.test", body=big)
    cut = req.index(b"\r\n\r\n") + 4
    for piece in (req[:cut], req[cut:cut + 7], req[cut + 7:cut + 9000], req[cut + 9000:]):
        c.send(piece)
        time.sleep(0.05)
    r = c.read_response()
    eq((r.status, r.json()["target"], r.json()["body_len"]), (200, "/s/4", len(big)))
    # 3: the head and half of the body, then the rest with the next request behind it.
    req = h.request("POST", "/s/5", "echo.test", body=big)
    half = len(req) - len(big) // 2
    c.send(req[:half])
    time.sleep(0.05)
    c.send(req[half:] + h.request("POST", "/s/6", "echo.test", [("X-T-D", "4")], body=small))
    r5, r6 = c.read_response(), c.read_response()
    eq((r5.status, r6.status), (200, 200))
    eq((r5.json()["body"].encode("latin-1"), r6.json()["body"]), (big, "tiny"))
    _vendor_sees(r6.json(), "/s/6", small, [("X-T-D", "4")])
    # 4: a head cut in the middle (buffered), then its end and the body.
    req = h.request("POST", "/s/7", "echo.test", [("X-T-E", "5")], body=small)
    c.send(req[:20])
    time.sleep(0.05)
    c.send(req[20:])
    r = c.read_response()
    _vendor_sees(r.json(), "/s/7", small, [("X-T-E", "5")])
    check(not c.is_closed(0.2), "connection kept alive through it all")


@test
def recycled_exchanges_carry_nothing_over():
    """Exchanges and their buffers are reused on a worker: a long head with many fields and a
    large body, then a short request, must reach the vendor without a byte of the first."""
    e = env()
    c = h.Conn(e.port, timeout=8)
    many = [("X-T-%02d" % i, "v%d-" % i + "z" * 300) for i in range(20)]
    c.send(h.request("PUT", "/r/long/" + "p" * 3000 + "?q=" + "w" * 2000, "echo.test", many,
                     body=pattern_bytes(30000)))
    r = c.read_response()
    eq((r.status, r.json()["body_len"]), (200, 30000))
    _vendor_sees(r.json(), "/r/long/" + "p" * 3000 + "?q=" + "w" * 2000, pattern_bytes(30000), many)
    for i in range(3):
        c.send(h.request("POST", "/r/short/%d" % i, "echo.test", body=b"ab"))
        r = c.read_response()
        eq(r.status, 200)
        _vendor_sees(r.json(), "/r/short/%d" % i, b"ab")
        eq(len(r.body), int(r.headers.get("content-length")), "answer length")
    c.send(h.request("GET", "/r/get", "echo.test"))
    _vendor_sees(c.read_response().json(), "/r/get", b"")


def pattern_bytes(n):
    return bytes((i * 7 + i // 251) % 94 + 33 for i in range(n))


@test
def absolute_form_is_forwarded_in_origin_form():
    e = env()
    r = h.curl("-x", e.url, "http://echo.test/abs/path?q=1")
    eq(r.status, 200, repr(r))
    rec = e.up.last()
    eq(rec["target"], "/abs/path?q=1", "origin-form at the vendor")
    eq(hdrs(rec).get("host"), "echo.test")
    check("proxy-connection" not in hdrs(rec), "Proxy-Connection removed: %r" % rec["headers"])


@test
def http10_client():
    r = via("echo.test", "/old", "-0")
    eq(r.status, 200, repr(r))


@test
def connection_close_is_honoured():
    e = env()
    c = h.Conn(e.port)
    c.send(h.request("GET", "/bye", "echo.test", headers=[("Connection", "close")]))
    eq(c.read_response().status, 200)
    check(c.is_closed(2), "gateway closes after Connection: close")


# ---- routing ----------------------------------------------------------------------------------

@test
def host_matching_exact_wildcard_case_port():
    e = env()
    for host in ("echo.test", "ECHO.Test", "echo.test:80", "api.wild.test", "a-b.wild.test"):
        r = via(host, "/route")
        eq(r.status, 200, "Host %s" % host)
    before = e.up.count()
    for host in ("wild.test", "echo.test.evil", "xecho.test"):
        eq(via(host, "/route").status, 403, "Host %s" % host)
    quiet(e, before)


@test
def unknown_host_403_problem_json_nothing_forwarded():
    e = env()
    before = e.up.count()
    r = via("evil.example", "/steal?x=1")
    eq(r.status, 403, repr(r))
    check((r.headers.get("content-type") or "").startswith("application/problem+json"),
          "content-type %r" % r.headers.get("content-type"))
    doc = r.json()
    check(isinstance(doc, dict) and "title" in doc, "problem document: %r" % doc)
    check("evil.example" in json.dumps(doc), "problem names the host: %r" % doc)
    # an address as Host, or absolute-form to a literal address: no open proxying
    eq(via("127.0.0.1:%d" % e.up.port, "/").status, 403, "address as Host")
    c = h.Conn(e.port)
    c.send("GET http://127.0.0.1:%d/x HTTP/1.1\r\nHost: echo.test\r\n\r\n" % e.up.port)
    st = c.read_response().status
    check(st in (400, 403), "absolute-form to an unlisted authority: %d" % st)
    quiet(e, before)


@test
def connect_is_405():
    e = env()
    before = e.up.count()
    c = h.Conn(e.port)
    c.send("CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n")
    eq(c.read_response().status, 405)
    c2 = h.Conn(e.port)
    c2.send("CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (e.up.port, e.up.port))
    eq(c2.read_response().status, 405)
    quiet(e, before)


# ---- proxy headers ----------------------------------------------------------------------------

@test
def hop_by_hop_removed_and_forwarding_headers_set():
    e = env()
    c = h.Conn(e.port)
    c.send(h.request("GET", "/hdrs", "echo.test", headers=[
        ("Connection", "keep-alive, X-Hop-A"), ("X-Hop-A", "secret"), ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"), ("TE", "trailers"), ("Upgrade", "foo/1"),
        ("Proxy-Authorization", "Basic Zm9vOmJhcg=="), ("X-End", "kept"),
        ("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https"),
        ("Via", "1.0 client-proxy")]))
    r = c.read_response()
    eq(r.status, 200)
    got = hdrs(e.up.last())
    for name in ("x-hop-a", "keep-alive", "proxy-connection", "te", "upgrade",
                 "proxy-authorization"):
        check(name not in got, "%s reached the vendor: %r" % (name, list(got)))
    check("x-hop-a" not in (got.get("connection") or "").lower(), "Connection: %r" % got.get("connection"))
    eq(got.get("x-end"), "kept")
    eq(got.get("x-forwarded-for"), "203.0.113.9, 127.0.0.1", "X-Forwarded-For appended")
    eq(got.get_all("x-forwarded-proto"), ["http"], "X-Forwarded-Proto set (not trusted from client)")
    vias = [v.strip() for v in got.get("via", "").split(",")]
    eq(vias[0], "1.0 client-proxy", "client's Via kept first")
    check(len(vias) == 2 and re.match(r"^1\.1 \S+", vias[1]), "Via appended: %r" % vias)


@test
def hop_by_hop_names_from_several_connection_fields_removed():
    # Names listed across two Connection fields, more of them than the gateway reads ahead
    # (16): each named field is removed, in any case and at any place in the lists.
    e = env()
    names = ["X-Conn-%02d" % i for i in range(20)]
    hs = [("Connection", "keep-alive, " + ", ".join(names[:10])), ("X-Keep", "1"),
          ("Connection", " , ".join(n.lower() for n in names[10:]))]
    hs += [(n, "v") for n in names]
    c = h.Conn(e.port)
    c.send(h.request("GET", "/hdrs", "echo.test", headers=hs))
    eq(c.read_response().status, 200)
    got = hdrs(e.up.last())
    gone = [n for n in names if n.lower() not in got]
    eq(len(gone), 20, "listed fields removed: %r" % sorted(k for k, _ in got if k.startswith("x-conn")))
    eq(got.get("x-keep"), "1")
    # Fewer names than that: the ones read ahead are removed, a field that only resembles one kept.
    c.send(h.request("GET", "/hdrs", "echo.test", headers=[
        ("Connection", "X-A, x-bb"), ("X-A", "1"), ("X-BB", "2"), ("X-B", "3"), ("X-AA", "4")]))
    eq(c.read_response().status, 200)
    got = hdrs(e.up.last())
    check("x-a" not in got and "x-bb" not in got, "listed fields reached the vendor: %r" % list(got))
    eq((got.get("x-b"), got.get("x-aa")), ("3", "4"), "fields not listed are kept")
    c.close()


@test
def forwarding_headers_without_client_values():
    e = env()
    eq(via("echo.test", "/xff").status, 200)
    got = hdrs(e.up.last())
    eq(got.get("x-forwarded-for"), "127.0.0.1")
    eq(got.get("x-forwarded-proto"), "http")
    check(re.match(r"^1\.1 \S+$", got.get("via") or ""), "Via %r" % got.get("via"))


@test
def response_hop_by_hop_removed():
    r = via("echo.test", "/hop")
    eq(r.status, 200)
    check("x-up-hop" not in r.headers, "X-Up-Hop reached the client: %r" % list(r.headers))
    check("keep-alive" not in r.headers or r.headers.get("keep-alive") != "timeout=5",
          "vendor Keep-Alive reached the client")
    eq(r.headers.get("x-up-end"), "1")


# ---- limits -----------------------------------------------------------------------------------

def _status_of(e, data, close=True):
    c = h.Conn(e.port)
    try:
        c.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = c.read_response()
    if close:
        check(c.is_closed(2), "connection closed after %d" % r.status)
    return r.status


@test
def uri_too_long_414():
    e = env()
    eq(_status_of(e, h.request("GET", "/echo?" + "a" * 7000, "echo.test"), close=False), 200,
       "7000-byte URI is fine")
    before = e.up.count()
    eq(_status_of(e, h.request("GET", "/echo?" + "a" * 9000, "echo.test")), 414)
    quiet(e, before)


@test
def header_block_too_large_431():
    e = env()
    eq(_status_of(e, h.request("GET", "/ok", "echo.test", headers=[("X-Big", "b" * 12000)]),
                  close=False), 200, "12 KB header is fine")
    before = e.up.count()
    eq(_status_of(e, h.request("GET", "/big", "echo.test", headers=[("X-Big", "b" * 17000)])), 431)
    quiet(e, before)


@test
def too_many_headers_431():
    e = env()
    eq(_status_of(e, h.request("GET", "/ok", "echo.test",
                               headers=[("X-H%d" % i, "v") for i in range(90)]), close=False), 200,
       "90 headers are fine")
    before = e.up.count()
    eq(_status_of(e, h.request("GET", "/many", "echo.test",
                               headers=[("X-H%d" % i, "v") for i in range(120)])), 431)
    quiet(e, before)


@test
def body_over_vendor_max_body_413():
    # its own gateway: a vendor with `max_body: 64KiB`
    e = Env()
    e.up = h.upstream()
    e.gw = h.Gateway(h.gateway_config([h.vendor("small", ["small.test"], e.up.port,
                                                 max_body="64KiB")]), name="maxbody").start()
    h.defer(e.gw.stop)
    e.port = e.gw.port()
    r = h.curl("-H", "Host: small.test", "--data-binary", "z" * 60000,
               "http://127.0.0.1:%d/fits" % e.port)
    eq((r.status, e.up.last()["body_len"] if e.up.count() else None), (200, 60000),
       "60000 bytes under 64 KiB")
    before = e.up.count()
    eq(_status_of(e, h.request("POST", "/cl", "small.test", body="z" * 70000)), 413, "Content-Length")
    big = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in [b"z" * 10000] * 7) + b"0\r\n\r\n"
    eq(_status_of(e, h.request("POST", "/chunked", "small.test",
                               headers=[("Transfer-Encoding", "chunked")]) + big), 413, "chunked")
    quiet(e, before)


# ---- ambiguous framing: 400, connection closed, nothing forwarded -----------------------------

G = "GET /echo HTTP/1.1\r\nHost: echo.test\r\n"
P = "POST /echo HTTP/1.1\r\nHost: echo.test\r\n"
BAD = [
    ("cl_and_te", P + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("te_and_cl", P + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
    ("duplicate_differing_cl", P + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
    ("cl_list_differing", P + "Content-Length: 5, 6\r\n\r\nhello!"),
    ("cl_plus_sign", P + "Content-Length: +5\r\n\r\nhello"),
    ("cl_hex", P + "Content-Length: 0x5\r\n\r\nhello"),
    ("cl_negative", P + "Content-Length: -1\r\n\r\n"),
    ("cl_overflow", P + "Content-Length: 99999999999999999999999\r\n\r\n"),
    ("te_chunked_not_final", P + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
    ("te_chunked_twice", P + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
    ("obs_fold", G + "X-A: a\r\n b\r\n\r\n"),
    ("space_before_colon", G + "X-A : b\r\n\r\n"),
    ("bare_lf_line_endings", "GET /echo HTTP/1.1\nHost: echo.test\n\n"),
    ("bare_lf_in_headers", G + "X-A: b\nX-B: c\r\n\r\n"),
    ("bare_cr_in_value", G + "X-A: a\rb\r\n\r\n"),
    ("nul_in_value", G + "X-A: a\x00b\r\n\r\n"),
    ("bad_token_in_name", G + "X(A): b\r\n\r\n"),
    ("empty_name", G + ": b\r\n\r\n"),
    ("missing_host", "GET /echo HTTP/1.1\r\nX-A: b\r\n\r\n"),
    ("duplicate_host", G + "Host: echo.test\r\n\r\n"),
    ("chunk_size_overflow", P + "Transfer-Encoding: chunked\r\n\r\n"
     "FFFFFFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n"),
    ("chunk_size_not_hex", P + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
    ("chunk_missing_crlf", P + "Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n"),
]


@test
def ambiguous_framing_is_400_and_nothing_forwarded():
    e = env()
    fails = []
    for name, data in BAD:
        before = e.up.count()
        try:
            c = h.Conn(e.port)
            c.send(data)
            r = c.read_response()
            closed = c.is_closed(2)
            time.sleep(0.05)
            forwarded = e.up.count() - before
            if r.status != 400 or not closed or forwarded:
                fails.append("%s: status %d, closed %s, forwarded %d"
                             % (name, r.status, closed, forwarded))
        except (h.Closed, OSError) as ex:
            fails.append("%s: no response (%s)" % (name, type(ex).__name__))
    eq(fails, [], "cases that were not a clean 400")


@test
def unknown_transfer_coding_rejected():
    e = env()
    before = e.up.count()
    st = _status_of(e, P + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
    check(st in (400, 501), "gzip, chunked: %d" % st)
    quiet(e, before)


# ---- upstream failures ------------------------------------------------------------------------

@test
def upstream_refused_502():
    eq(via("refused.test", "/x").status, 502)


@test
def upstream_reset_502():
    eq(via("echo.test", "/reset").status, 502)


@test
def upstream_close_mid_body_is_a_transfer_error():
    r = via("echo.test", "/close-mid-body")
    check(r.rc != 0, "curl must report a transfer error, got rc 0 with %d bytes" % len(r.body))
    check(r.rc in (18, 56, 92), "curl rc %d (%s)" % (r.rc, r.err.strip()))
    check(len(r.body) < 1000, "no complete body")
    eq(via("echo.test", "/after").status, 200, "gateway still serves")


@test
def upstream_timeout_504():
    up = h.upstream()
    g = h.Gateway(h.gateway_config([h.vendor("slow", ["slow.test"], up.port)],
                                   limits={"upstream_timeout": "1s", "header_timeout": "1s"}),
                  name="timeout").start()
    h.defer(g.stop)
    t0 = time.monotonic()
    r = h.curl("-H", "Host: slow.test", "http://127.0.0.1:%d/delay/3000" % g.port())
    dt = time.monotonic() - t0
    eq(r.status, 504, repr(r))
    check(0.8 <= dt < 2.8, "504 after %.2fs (timeout 1s)" % dt)
    eq(h.curl("-H", "Host: slow.test", "http://127.0.0.1:%d/quick" % g.port()).status, 200)
    # a client that never finishes its head is dropped after header_timeout (1s)
    c = h.Conn(g.port(), timeout=5)
    c.send("GET /slowloris HTTP/1.1\r\nHost: slow.test\r\nX-A: ")
    t0 = time.monotonic()
    try:
        rest = c.read_until_close(timeout=4)
    except (ConnectionResetError, h.Closed):
        rest = b""
    dt = time.monotonic() - t0
    check(dt < 3, "incomplete head dropped after %.2fs (header_timeout 1s)" % dt)
    check(rest == b"" or rest.startswith(b"HTTP/1.1 408"), "only a 408 or nothing: %r" % rest[:80])


@test
def concurrent_clients():
    e = env()
    results = []

    def worker(i):
        try:
            c = h.Conn(e.port, timeout=10)
            for j in range(5):
                c.send(h.request("GET", "/par/%d/%d" % (i, j), "echo.test"))
                r = c.read_response()
                results.append((r.status, r.json()["target"] == "/par/%d/%d" % (i, j)))
            c.close()
        except Exception as ex:  # recorded as a failure below
            results.append((repr(ex), False))
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    eq(len(results), 200, "responses")
    eq([r for r in results if r != (200, True)], [], "bad responses")


@test
def slow_client_does_not_make_the_gateway_buffer():
    static = os.path.join(h.tmpdir(), "static")
    os.makedirs(static, exist_ok=True)
    size = 64 << 20
    with open(os.path.join(static, "big.bin"), "wb") as f:
        f.truncate(size)
    n = h.Nginx(static_dir=static).start()
    h.defer(n.stop)
    g = h.Gateway(h.gateway_config([h.vendor("static", ["static.test"], n.port)]),
                  name="backpressure").start()
    h.defer(g.stop)
    c = h.Conn(g.port(), timeout=10)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    rss0 = h.rss_kb(g.proc.pid)
    c.send(h.request("GET", "/big.bin", "static.test"))
    time.sleep(2)  # the client reads nothing
    grown = h.rss_kb(g.proc.pid) - rss0
    check(grown < 24 * 1024, "gateway RSS grew by %d KiB while the client did not read" % grown)
    r = c.read_response()
    eq((r.status, len(r.body)), (200, size))


@test
def sigterm_drains_in_flight_request():
    up = h.upstream()
    g = h.Gateway(h.gateway_config([h.vendor("d", ["d.test"], up.port)]), name="drain").start()
    argv = ["curl", "-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}", "-H",
            "Host: d.test", "http://127.0.0.1:%d/delay/1500" % g.port()]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    h.defer(lambda: p.poll() is None and p.kill())
    got = up.wait_for(1, timeout=5)
    eq(len(got), 1, "request reached the vendor before SIGTERM")
    t0 = time.monotonic()
    g.signal(15)
    out, err = p.communicate(timeout=20)
    eq(out.decode().rsplit("\n", 1)[-1], "200", "in-flight request completed (%s)" % err.decode())
    check(json.loads(out.decode().rsplit("\n", 1)[0])["target"] == "/delay/1500", "full body")
    rc = g.proc.wait(10)
    eq(rc, 0, "exit code after drain")
    check(time.monotonic() - t0 < 10, "drained promptly")
    check(not h.wait_port(g.port(), timeout=0.3), "listener closed after exit")


@test
def main_gateway_exits_0_on_sigterm():
    env().gw.stop(timeout=10)


if __name__ == "__main__":
    h.main()
