#!/usr/bin/env python3
"""test_h2_upstream.py -- issue 8 (upstream half): HTTP/2 from build/bordergate to vendors over
TLS (ALPN h2), against build/tests/tools/h2echo: a real nghttp2 + OpenSSL server with generated
certificates that answers each stream with JSON of what it saw (protocol, method, :path,
:authority, headers, body length and SHA-256, connection number). Real clients: curl (HTTP/1.1,
h2c by prior knowledge, h2 over TLS), nghttp (several streams on one connection), h2load (many).
Covers header translation (RFC 9113 8), bodies under flow control, multiplexing onto one vendor
connection, blocks and encryption per stream, failure mapping (RST_STREAM 502, stall 504, GOAWAY
mid-body abort, refused stream retried), `protocol: http1|http2` pins, and records naming the
vendor protocol (`upstream_protocol`) with the hash chain still verifying."""

import hashlib
import json
import re
import os
import shutil
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402

EMAIL = "jane.doe@example.com"


class Env:
    pass


start_echo = h.h2echo


def h2vendor(name, host, port, addr="127.0.0.1", max_connections=None, **kw):
    v = h.vendor(name, [host], port, tls=True, ca=h.cert("ca.crt"), addresses=[addr], **kw)
    if max_connections:
        v["upstream"]["max_connections"] = max_connections
    return v


us = h.us_vendor


@h.once
def env():
    e = Env()
    e.echo = start_echo()
    e.mux = start_echo()                         # its own, to count connections
    e.narrow = start_echo(max_streams=4)         # MAX_CONCURRENT_STREAMS 4
    e.echo_us = start_echo("127.0.0.3")
    e.cold = start_echo()                        # first contact under a burst
    e.h1 = h.upstream(tls=(h.cert("vendor.crt"), h.cert("vendor.key")))  # HTTP/1.1 only
    e.cold_auto = start_echo()                   # first contact under a burst, protocol auto
    e.cold_h1 = h.upstream(tls=(h.cert("vendor.crt"), h.cert("vendor.key")))  # ditto, HTTP/1.1 only
    e.refused = h.free_port()                    # nothing listens here
    vendors = [
        h2vendor("h2v", "h2.vendor.test", e.echo),
        h2vendor("mux", "mux.vendor.test", e.mux),
        h2vendor("narrow", "narrow.vendor.test", e.narrow, max_connections=2),
        h2vendor("pin1", "pin1.vendor.test", e.echo, protocol="http1"),
        h2vendor("pin2", "pin2.vendor.test", e.echo, protocol="http2"),
        h2vendor("cold", "cold.vendor.test", e.cold, protocol="http2"),
        h2vendor("pin2-h1only", "h1only.vendor.test", e.h1.port, protocol="http2"),
        h2vendor("cold-auto", "cold-auto.vendor.test", e.cold_auto),
        h2vendor("cold-h1", "cold-h1.vendor.test", e.cold_h1.port, max_connections=8),
        h2vendor("cold-refused", "cold-refused.vendor.test", e.refused),
        us(h2vendor("us-nobasis", "us.vendor.test", e.echo_us, "127.0.0.3", basis="none")),
        us(h2vendor("sealed", "sealed.vendor.test", e.echo_us, "127.0.0.3", basis="none",
                    on_violation="encrypt", reveal_responses=True)),
        us(h2vendor("sealed-nr", "sealed-nr.vendor.test", e.echo_us, "127.0.0.3", basis="none",
                    on_violation="encrypt")),
    ]
    tls = {"certificate": h.cert("gateway.crt"), "key": h.cert("gateway.key")}
    cfg = h.gateway_config(vendors, listen=[{"address": None}, {"address": None, "tls": tls}],
                           limits={"max_body_scan": "64KiB", "max_body": "32MiB",
                                   "oversize_body": "personal", "upstream_timeout": "2s"})
    e.records = cfg["records"]["path"]
    e.gw = h.Gateway(cfg, name="h2up").start()
    e.plain, e.tls = e.gw.port(0), e.gw.port(1)
    return e


def url(path):
    return "http://127.0.0.1:%d%s" % (env().plain, path)


def h1(host, path, *args, timeout=20):
    return h.curl("--http1.1", "-H", "Host: " + host, *args, url(path), timeout=timeout)


def h2c(host, path, *args, timeout=20):
    return h.curl("--http2-prior-knowledge", "-H", "Host: " + host, *args, url(path), timeout=timeout)


def h2tls(host, path, *args, timeout=20):
    return h.curl("--http2", "--cacert", h.cert("ca.crt"), "-H", "Host: " + host, *args,
                  "https://localhost:%d%s" % (env().tls, path), timeout=timeout)


def record_of(tid, timeout=5.0):
    return h.wait_record(env().records, tid, timeout)


def burst(authority, path, n, m, ok=True):
    """h2load: n requests, m at once, on one cleartext HTTP/2 connection to the gateway for
    authority. Checks that all n came back (2xx when ok); returns (h2load's output, seconds)."""
    out = h.run([shutil.which("h2load"), "-n", str(n), "-c", "1", "-m", str(m),
                 "-H", ":authority: " + authority, url(path)], timeout=60)
    eq(out.returncode, 0, out.stderr[-500:])
    want = "status codes: %d 2xx" % n if ok else "status codes: 0 2xx, 0 3xx, 0 4xx, %d 5xx" % n
    check(want in out.stdout and (not ok or "%d succeeded" % n in out.stdout), out.stdout[-1200:])
    # h2load writes a duration as s, ms or, under a millisecond (a burst refused at once), us
    t = re.search(r"finished in ([0-9.]+)(us|ms|s)\b", out.stdout)
    check(t, "no duration in h2load's output: " + out.stdout[-600:])
    return out.stdout, float(t.group(1)) / {"us": 1e6, "ms": 1e3, "s": 1}[t.group(2)]


def echo_stats(port, key="connections"):
    r = h.curl("--http2", "--cacert", h.cert("ca.crt"), "https://localhost:%d/_stats" % port)
    eq(r.status, 200, repr(r))
    return r.json()[key]


# ---- HTTP/1.1 clients to an HTTP/2 vendor ------------------------------------------------------

@test
def h1_get_is_translated_to_h2():
    req = h.request("GET", "/echo?x=1", "h2.vendor.test",
                    [("X-Test", "one"), ("Connection", "keep-alive, X-Hop"), ("X-Hop", "drop me"),
                     ("Keep-Alive", "timeout=5"), ("Cookie", "a=1; b=2"), ("TE", "trailers"),
                     ("Upgrade", "websocket")])
    (resp,), _ = h.raw(env().plain, req)
    eq(resp.status, 200, resp.body[:300])
    j = json.loads(resp.body)
    eq((j["proto"], j["method"], j["path"], j["authority"], j["scheme"]),
       ("h2", "GET", "/echo?x=1", "h2.vendor.test", "https"))
    hd = j["headers"]
    for gone in ("connection", "keep-alive", "x-hop", "host", "upgrade", "transfer-encoding",
                 "proxy-connection"):
        check(gone not in hd, "%s reached the h2 vendor: %r" % (gone, hd))
    eq(hd.get("x-test"), "one")
    eq(hd.get("cookie"), "a=1; b=2")
    check(hd.get("te") in (None, "trailers"), "TE other than trailers: %r" % hd.get("te"))
    eq(hd.get("via"), "1.1 bordergate")
    eq(hd.get("x-forwarded-for"), "127.0.0.1")
    eq(resp.headers.get("x-upstream"), "h2echo")
    eq(int(resp.headers.get("content-length")), len(resp.body), "Content-Length from the h2 response")
    rec = record_of(resp.headers.get("x-transfer-id"))
    eq((rec["protocol"], rec.get("upstream_protocol"), rec["status"], rec["decision"]),
       ("http/1.1", "h2", 200, "allow"))


@test
def h1_post_json_body_reaches_h2_vendor_whole():
    body = json.dumps({"note": "hello", "n": list(range(50))}).encode()
    r = h1("h2.vendor.test", "/v1/things", "-H", "Content-Type: application/json", "--data-binary", body.decode())
    eq(r.status, 200, repr(r))
    j = r.json()
    eq((j["proto"], j["method"], j["body_len"]), ("h2", "POST", len(body)))
    eq(j["body_sha256"], hashlib.sha256(body).hexdigest())
    eq(j["headers"].get("content-length"), str(len(body)))
    eq(j["headers"].get("content-type"), "application/json")


@test
def h1_chunked_large_upload_streams_under_flow_control():
    # 5 MiB, chunked, beyond max_body_scan: the rest streams as DATA frames against the vendor's
    # 64 KiB initial window.
    data = (b"0123456789abcdef" * 65536) * 5
    path = os.path.join(h.tmpdir(), "up.bin")
    with open(path, "wb") as f:
        f.write(data)
    r = h1("h2.vendor.test", "/upload", "-H", "Transfer-Encoding: chunked",
           "-H", "Content-Type: application/octet-stream", "--data-binary", "@" + path, timeout=60)
    eq(r.status, 200, repr(r))
    j = r.json()
    eq((j["proto"], j["body_len"]), ("h2", len(data)))
    eq(j["body_sha256"], hashlib.sha256(data).hexdigest())
    check("transfer-encoding" not in j["headers"], "no Transfer-Encoding over h2: %r" % j["headers"])
    # The same from an HTTP/2 client: flow control on both sides of the gateway.
    r = h2c("h2.vendor.test", "/upload", "-H", "Content-Type: application/octet-stream",
            "--data-binary", "@" + path, timeout=60)
    eq(r.status, 200, repr(r))
    j = r.json()
    eq((j["proto"], j["body_len"], j["body_sha256"]), ("h2", len(data), hashlib.sha256(data).hexdigest()))


@test
def large_download_under_back_pressure():
    n = 24 * 1024 * 1024
    r = h1("h2.vendor.test", "/big?n=%d" % n, timeout=60)
    eq(r.status, 200, repr(r)[:200])
    eq(len(r.body), n)
    eq(r.headers.get("content-length"), str(n))
    r = h2c("h2.vendor.test", "/big?n=%d" % n, timeout=60)
    eq((r.status, len(r.body)), (200, n))


@test
def slow_client_holds_the_vendor_stream_window():
    # The client reads nothing for 2 s: the gateway stops acknowledging the vendor's DATA, so
    # it buffers about a stream window plus its own back-pressure mark, not the 64 MiB body.
    e = env()
    size = 64 << 20
    c = h.Conn(e.plain, timeout=15)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    rss0 = h.rss_kb(e.gw.proc.pid)
    c.send(h.request("GET", "/big?n=%d" % size, "h2.vendor.test"))
    time.sleep(2.5)  # longer than upstream_timeout: a paused stream does not time out
    grown = h.rss_kb(e.gw.proc.pid) - rss0
    check(grown < 24 * 1024, "gateway RSS grew by %d KiB while the client did not read" % grown)
    r = c.read_response()
    eq((r.status, len(r.body)), (200, size))
    c.close()


# ---- HTTP/2 clients to an HTTP/2 vendor --------------------------------------------------------

@test
def h2_client_get_and_post_to_h2_vendor():
    r = h2c("h2.vendor.test", "/echo", "-H", "X-Test: two")
    eq(r.status, 200, repr(r))
    check(r.raw_headers.startswith(b"HTTP/2 200"), "client side h2: %r" % r.raw_headers[:30])
    j = r.json()
    eq((j["proto"], j["authority"], j["headers"].get("via"), j["headers"].get("x-test")),
       ("h2", "h2.vendor.test", "2 bordergate", "two"))
    body = b'{"note":"over h2 both ways"}'
    r = h2tls("h2.vendor.test", "/v1/x", "-H", "Content-Type: application/json", "--data-binary", body.decode())
    eq(r.status, 200, repr(r))
    j = r.json()
    eq((j["method"], j["body_len"], j["body_sha256"]), ("POST", len(body), hashlib.sha256(body).hexdigest()))
    eq(j["headers"].get("x-forwarded-proto"), "https")
    rec = record_of(r.headers.get("x-transfer-id"))
    eq((rec["protocol"], rec.get("upstream_protocol")), ("h2", "h2"))


@test
def many_streams_share_one_vendor_connection():
    e = env()
    r = h2c("mux.vendor.test", "/warm")
    eq(r.status, 200, repr(r))
    h2load = shutil.which("h2load")
    check(h2load, "h2load installed")
    out = h.run([h2load, "-n", "300", "-c", "2", "-m", "40", "-H", ":authority: mux.vendor.test",
                 url("/echo")], timeout=60)
    eq(out.returncode, 0, out.stderr[-500:])
    check("300 succeeded" in out.stdout and "status codes: 300 2xx" in out.stdout, out.stdout[-1200:])
    # One connection from the gateway for all 301 requests, plus our own /_stats connection.
    eq(echo_stats(e.mux), 2, "connections the vendor accepted")


@test
def idle_vendor_connections_get_a_goaway_when_the_gateway_stops():
    # RFC 9113 6.8: an endpoint closing a connection on purpose sends GOAWAY first. The gateway's
    # idle pooled h2 connection to the vendor is closed at SIGTERM.
    port = start_echo()
    cfg = h.gateway_config([h2vendor("bye", "bye.vendor.test", port)])
    cfg["records"]["path"] = os.path.join(os.path.dirname(cfg["records"]["path"]), "goaway.jsonl")
    gw = h.Gateway(cfg, name="h2up-goaway").start()
    r = h.curl("--http1.1", "-H", "Host: bye.vendor.test", "http://127.0.0.1:%d/echo" % gw.port(0))
    eq(r.status, 200, repr(r))
    eq(r.json().get("proto"), "h2", "the vendor saw h2")
    eq(echo_stats(port, "goaways"), 0, "GOAWAYs before the stop")
    gw.stop()
    got = h.wait_until(lambda: echo_stats(port, "goaways") or None, timeout=5,
                       msg="a GOAWAY from the stopping gateway")
    eq(got, 1, "GOAWAYs the vendor received")


@test
def a_burst_to_a_new_http2_vendor_waits_for_one_connection():
    # protocol: http2 and no connection yet: 30 streams at once do not open 30 connections;
    # they wait for the first handshake and share it.
    e = env()
    burst("cold.vendor.test", "/echo", 60, 30)
    eq(echo_stats(e.cold), 2, "connections the vendor accepted (the gateway's and ours)")


@test
def a_burst_to_a_new_auto_vendor_waits_for_its_first_handshake():
    # protocol: auto (the default) and no connection yet: the first handshake's ALPN is not known,
    # so 30 streams at once wait for it rather than opening a connection each.
    e = env()
    burst("cold-auto.vendor.test", "/echo", 60, 30)
    eq(echo_stats(e.cold_auto), 2, "connections the vendor accepted (the gateway's and ours)")


@test
def a_burst_to_a_new_auto_vendor_that_speaks_http1_spreads_after_the_handshake():
    # The same cold start against an HTTP/1.1-only vendor: the first handshake shows http/1.1 and
    # the requests that waited for it each take a connection of their own (up to max_connections),
    # rather than queueing behind one connection.
    e = env()
    _, took = burst("cold-h1.vendor.test", "/delay/300", 16, 16)
    # 16 requests of 300 ms each over 8 connections: two rounds, not sixteen.
    check(took < 2.5, "16 x 300 ms over 8 connections took %.2f s" % took)
    eq(e.cold_h1.connections, 8, "connections the HTTP/1.1 vendor accepted")


@test
def a_burst_to_a_new_auto_vendor_that_refuses_fails_fast_for_everyone():
    # The first connection fails before any handshake: the requests that waited for it try on
    # their own and fail at once (502, or 503 once the address's circuit opens), rather than
    # waiting out the queue's time limit (the connect timeout, 5 s).
    _, took = burst("cold-refused.vendor.test", "/echo", 10, 10, ok=False)
    check(took < 2.0, "10 refused requests took %.2f s" % took)


@test
def streams_beyond_the_vendor_limit_use_more_connections_up_to_max():
    e = env()
    burst("narrow.vendor.test", "/echo", 120, 30)
    n = echo_stats(e.narrow) - 1
    eq(n, 2, "connections to a vendor with MAX_CONCURRENT_STREAMS 4 under max_connections 2")


@test
def allowed_and_blocked_streams_mix_on_one_connection():
    # curl --parallel multiplexes the four onto one connection; no User-Agent (it is device data).
    urls = [url("/echo?i=1"), url("/echo?email=" + EMAIL), url("/echo?i=3"), url("/echo?i=4")]
    argv = ["curl", "-sS", "--parallel", "--parallel-immediate", "--http2-prior-knowledge",
            "-H", "Host: us.vendor.test", "-H", "User-Agent:", "-w", "%{url} %{http_code}\n"]
    for u in urls:
        argv += ["-o", "/dev/null", u]
    out = h.run(argv, timeout=30)
    eq(out.returncode, 0, out.stderr[-500:])
    got = dict(line.rsplit(" ", 1) for line in out.stdout.split("\n") if line.strip())
    eq([got.get(u) for u in urls], ["200", "451", "200", "200"], out.stdout)


@test
def encrypt_vendor_gets_tokens_over_h2_and_client_gets_plaintext():
    body = json.dumps({"user": {"email": EMAIL, "plan": "pro"}}).encode()
    # Without reveal the vendor's echo shows what it received: tokens, no plaintext.
    r = h1("sealed-nr.vendor.test", "/echo-body", "-H", "Content-Type: application/json", "--data-binary", body.decode())
    eq(r.status, 200, repr(r))
    seen = r.body.decode()
    check(EMAIL not in seen, "plaintext reached the vendor: %s" % seen)
    tok = json.loads(seen)["user"]["email"]
    check(tok.startswith("bgtok:"), "vendor got a token: %r" % tok)
    eq(json.loads(seen)["user"]["plan"], "pro")
    # With reveal_responses the same echo comes back opened, with its new length.
    r = h2c("sealed.vendor.test", "/echo-body", "-H", "Content-Type: application/json", "--data-binary", body.decode())
    eq(r.status, 200, repr(r))
    eq(json.loads(r.body)["user"]["email"], EMAIL)
    check(b"bgtok:" not in r.body, "token reached the client")
    eq(r.headers.get("content-length"), str(len(r.body)))
    rec = record_of(r.headers.get("x-transfer-id"))
    eq((rec["decision"], rec["status"], rec.get("upstream_protocol")), ("encrypt", 200, "h2"))


@test
def fsync_always_and_head_requests_over_h2():
    # A gateway of its own with fsync: always: the answer's last byte (or a bodiless head) waits
    # for the record on disk; HEAD ends at the response head even if the vendor sends DATA.
    e = env()
    cfg = h.gateway_config([h2vendor("h2v", "h2.vendor.test", e.echo)])
    cfg["records"]["fsync"] = "always"
    cfg["records"]["path"] = os.path.join(h.tmpdir(), "records-fsync", "transfers.jsonl")  # a chain of its own
    gw = h.Gateway(cfg, name="h2up-fsync").start()
    base = "http://127.0.0.1:%d" % gw.port()
    for path, n in (("/big?n=100000", 100000), ("/big?n=1", 1)):
        r = h.curl("--http1.1", "-H", "Host: h2.vendor.test", base + path)
        eq((r.status, len(r.body)), (200, n), repr(r)[:200])
        rec = h.wait_record(cfg["records"]["path"], r.headers.get("x-transfer-id"))
        eq((rec["status"], rec.get("upstream_protocol")), (200, "h2"))
        check(rec["bytes_out"] >= n, "bytes_out %d counts the %d body bytes" % (rec["bytes_out"], n))
    r = h.curl("--http2-prior-knowledge", "-H", "Host: h2.vendor.test", base + "/echo")
    eq(r.status, 200, repr(r))
    eq(r.json()["proto"], "h2")
    r = h.curl("--http1.1", "-I", "-H", "Host: h2.vendor.test", base + "/echo")
    eq(r.status, 200, repr(r))
    check(b"{" not in r.body, "no body after a HEAD answer (curl -I prints only the head): %r" % r.body)
    check(r.headers.get("content-length"), "HEAD keeps the representation's length: %r" % r.headers)
    eq(h.curl("--http1.1", "-H", "Host: h2.vendor.test", base + "/echo").status, 200, "still serving")
    gw.stop()


@test
def idle_h2_connection_leaves_the_pool():
    # idle_timeout 1s: the shared connection, idle after its stream, is closed by the sweep;
    # the next request opens a new one and works.
    e = env()
    port = start_echo()
    cfg = h.gateway_config([h2vendor("idle", "idle.vendor.test", port)], limits={"idle_timeout": "1s"})
    cfg["records"]["path"] = os.path.join(h.tmpdir(), "records-idle", "transfers.jsonl")
    gw = h.Gateway(cfg, name="h2up-idle").start()
    base = "http://127.0.0.1:%d/echo" % gw.port()
    r = h.curl("--http1.1", "-H", "Host: idle.vendor.test", base)
    eq(r.status, 200, repr(r))
    first = r.json()["conn"]
    eq(echo_stats(port, "active"), 2, "the gateway's connection (and ours) open")
    h.wait_until(lambda: echo_stats(port, "active") == 1, timeout=6, msg="idle connection closed")
    r = h.curl("--http1.1", "-H", "Host: idle.vendor.test", base)
    eq(r.status, 200, repr(r))
    check(r.json()["conn"] != first, "served on a new vendor connection, not the closed one")
    eq(r.json()["proto"], "h2")
    gw.stop()
    del e


# ---- failures ----------------------------------------------------------------------------------

@test
def vendor_rst_stream_is_502():
    for client in (h1, h2c):
        r = client("h2.vendor.test", "/rst")
        eq(r.status, 502, repr(r))
        eq(r.headers.get("content-type"), "application/problem+json")
        rec = record_of(r.headers.get("x-transfer-id"))
        eq(rec["status"], 502)
    eq(h2c("h2.vendor.test", "/after-rst").status, 200, "the connection still serves other streams")


@test
def stalled_vendor_stream_is_504():
    t0 = time.monotonic()
    r = h1("h2.vendor.test", "/stall")
    took = time.monotonic() - t0
    eq(r.status, 504, repr(r))
    check(1.5 <= took < 6, "504 after the 2 s upstream_timeout, took %.1fs" % took)
    eq(h1("h2.vendor.test", "/after-stall").status, 200, "other streams unaffected")


@test
def upload_to_a_silent_vendor_on_an_idle_connection_is_504():
    """The connection's stream tick stops when its last stream closes and acquire starts it
    again for the next stream: an upload (300 KiB, streamed past max_body_scan) that the vendor
    takes whole but never answers on such a connection still ends in 504 after upstream_timeout,
    for either client protocol."""
    path = os.path.join(h.tmpdir(), "upload-stall.bin")
    with open(path, "wb") as f:
        f.write(b"u" * (300 * 1024))
    for client in (h1, h2c):
        eq(client("h2.vendor.test", "/before-idle").status, 200)
        time.sleep(0.5)  # its stream closed: the connection has none, its tick stopped
        t0 = time.monotonic()
        r = client("h2.vendor.test", "/stall", "-H", "Content-Type: application/octet-stream",
                   "--data-binary", "@" + path)
        took = time.monotonic() - t0
        eq(r.status, 504, repr(r))
        check(1.5 <= took < 6, "504 after the 2 s upstream_timeout, took %.1fs" % took)
    eq(h1("h2.vendor.test", "/after-upload-stall").status, 200, "the connection still serves")


@test
def client_that_stalls_an_upload_to_an_h2_vendor_gets_408_not_the_vendor_a_timeout():
    """A client stops sending a body that streams (past max_body_scan) to an HTTP/2 vendor, which
    waits for the rest; upstream_timeout (2 s) is far shorter than idle_timeout (60 s): the client
    gets a 408 at the vendor's timeout and no upstream error is counted against the vendor."""
    e = env()
    err = h.metric(e.gw.admin_port, "bordergate_upstream_errors_total", {"vendor": "h2v"}) or 0
    c = h.Conn(e.plain, timeout=8)
    c.send(h.request("POST", "/client-stall", "h2.vendor.test",
                     [("Content-Type", "application/octet-stream"), ("Transfer-Encoding", "chunked")]))
    part = b"s" * (64 * 1024 + 1000)
    c.send(b"%x\r\n%s\r\n" % (len(part), part))
    t0 = time.monotonic()
    r = c.read_response()
    took = time.monotonic() - t0
    eq(r.status, 408, repr(r))
    check(1.5 <= took < 6, "408 at the 2 s upstream_timeout, took %.1fs" % took)
    eq(h.metric(e.gw.admin_port, "bordergate_upstream_errors_total", {"vendor": "h2v"}) or 0, err,
       "the client's stall is no vendor error")
    eq(h1("h2.vendor.test", "/after-client-stall").status, 200, "the vendor connection still serves")


@test
def goaway_mid_body_aborts_the_client():
    r = h1("h2.vendor.test", "/cut")
    check(r.rc != 0, "HTTP/1.1 client must see a broken body, got rc 0: %r" % r)
    r2 = h2c("h2.vendor.test", "/cut")
    check(r2.rc != 0, "HTTP/2 client must see a reset stream, got rc 0: %r" % r2)
    eq(h1("h2.vendor.test", "/after-cut").status, 200, "a new vendor connection serves the next")


@test
def refused_stream_is_retried_on_a_new_connection():
    r = h1("h2.vendor.test", "/refuse-once")
    eq(r.status, 200, repr(r))
    eq(r.json()["path"], "/refuse-once")


# ---- protocol pins -----------------------------------------------------------------------------

@test
def protocol_http1_pins_http11_against_h2_vendor():
    r = h2c("pin1.vendor.test", "/echo")
    eq(r.status, 200, repr(r))
    eq(r.json()["proto"], "http/1.1")
    rec = record_of(r.headers.get("x-transfer-id"))
    eq((rec["protocol"], rec.get("upstream_protocol")), ("h2", "http/1.1"))
    eq(h1("pin2.vendor.test", "/echo").json()["proto"], "h2", "protocol: http2 speaks h2")


@test
def protocol_http2_against_http11_only_vendor_is_502():
    r = h1("h1only.vendor.test", "/echo")
    eq(r.status, 502, repr(r))


@test
def http2_on_plain_vendor_is_a_config_error():
    v = h.vendor("plain", ["plain.test"], 80, protocol="http2")
    path = h.write_config(h.gateway_config([v]), "plain-h2.yaml")
    r = h.run([h.BINARY, "check", "-c", path])
    check(r.returncode != 0, "check must fail: %r" % r.stdout)
    out = r.stdout + r.stderr
    check("plain-h2.yaml:" in out and "upstream.protocol: http2 needs upstream tls" in out, out)


@test
def records_chain_verifies():
    e = env()
    time.sleep(0.3)
    recs = h.read_records(e.records)
    check(any(x.get("upstream_protocol") == "h2" for x in recs), "some record names h2")
    check(all("upstream_protocol" not in x for x in recs if x["status"] == 451), "blocked: nothing sent")
    r = h.run([h.BINARY, "records", "verify", e.records])
    eq(r.returncode, 0, r.stdout + r.stderr)


@test
def gateway_survived():
    check(env().gw.alive(), "gateway alive")
    env().gw.stop()


if __name__ == "__main__":
    h.main()
