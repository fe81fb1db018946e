#!/usr/bin/env python3
"""test_trailers.py -- issue 8 (trailers): trailer fields through build/bordergate in all four
combinations of client and vendor protocol (HTTP/1.1 chunked trailer sections, HTTP/2 trailing
HEADERS), both directions. Real clients: raw HTTP/1.1 sockets (curl has no option to send
request trailers) and nghttp (`--trailer`, and its -v frame log for what came back); real
vendors: tests/integration/upstream.py (HTTP/1.1: records the trailer section it received,
answers /trailers chunked with one) and build/tests/tools/h2echo (HTTP/2 over TLS: echoes a
trailing HEADERS frame, answers /trailers with one). Covers: fields not allowed in trailers
filtered both ways, trailers dropped when the client's answer is not chunked, oversize blocks
(request: 431 / 400; response: dropped and logged), trailers classified with the headers
(block, encrypt), trailers after the decision dropped (fail closed), records."""

import json
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402

EMAIL = "jane.doe@example.com"
# Fields a trailer section must not carry (the gateway drops them; see http1.c).
FORBIDDEN = ["Content-Length: 5", "Transfer-Encoding: gzip", "Host: evil.example", "Authorization: Bearer x",
             "Cookie: c=1", "Set-Cookie: s=1", "Cache-Control: no-cache", "Content-Type: text/evil",
             "Connection: close", "TE: trailers", "Proxy-Authorization: Basic eA==", "Expect: 100-continue"]
FORBIDDEN_NAMES = [f.split(":")[0].lower() for f in FORBIDDEN]


class Env:
    pass


start_echo = h.h2echo


us = h.us_vendor


@h.once
def env():
    e = Env()
    e.up = h.upstream()                                  # HTTP/1.1 vendor
    e.up_us = h.upstream(host="127.0.0.3")
    e.echo = start_echo()                                # HTTP/2 vendor
    e.echo_us = start_echo("127.0.0.3")
    h2kw = {"tls": True, "ca": h.cert("ca.crt")}
    vendors = [
        h.vendor("h1v", ["h1.vendor.test"], e.up.port),
        h.vendor("h2v", ["h2.vendor.test"], e.echo, **h2kw),
        us(h.vendor("h1-us", ["h1us.vendor.test"], e.up_us.port, addresses=["127.0.0.3"], basis="none")),
        us(h.vendor("h2-us", ["h2us.vendor.test"], e.echo_us, addresses=["127.0.0.3"], basis="none", **h2kw)),
        us(h.vendor("h1-seal", ["h1seal.vendor.test"], e.up_us.port, addresses=["127.0.0.3"], basis="none",
                    on_violation="encrypt")),
        us(h.vendor("h2-seal", ["h2seal.vendor.test"], e.echo_us, addresses=["127.0.0.3"], basis="none",
                    on_violation="encrypt", **h2kw)),
    ]
    limits = {"max_body_scan": "64KiB", "max_body": "8MiB", "max_header_size": "4KiB",
              "oversize_body": "personal", "upstream_timeout": "5s"}
    cfg = h.gateway_config(vendors, limits=limits)
    e.records = cfg["records"]["path"]
    e.gw = h.Gateway(cfg, name="trailers").start()
    e.port = e.gw.port(0)
    # The same under fsync: always (the last body byte, and the trailers behind it, wait for the record).
    cfg = h.gateway_config(vendors, limits=limits)
    cfg["records"]["fsync"] = "always"
    cfg["records"]["path"] = os.path.join(h.tmpdir(), "records-always", "transfers.jsonl")
    e.records_always = cfg["records"]["path"]
    e.gw_always = h.Gateway(cfg, name="trailers-always").start()
    e.port_always = e.gw_always.port(0)
    return e


# ---- clients ---------------------------------------------------------------------------------

def chunked_request(host, path, body, trailers, version="HTTP/1.1", headers=()):
    """A raw chunked request with a trailer section (each trailer "Name: value")."""
    lines = ["POST %s %s" % (path, version), "Host: " + host, "Transfer-Encoding: chunked",
             "Content-Type: application/octet-stream"] + ["%s: %s" % hv for hv in headers]
    out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    for i in range(0, len(body), 16384):
        piece = body[i:i + 16384]
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    out += b"0\r\n" + "".join(t + "\r\n" for t in trailers).encode("latin-1") + b"\r\n"
    return out


def h1_call(host, path, body=b"hello", trailers=(), version="HTTP/1.1", timeout=10):
    c = h.Conn(env().port, timeout=timeout)
    c.send(chunked_request(host, path, body, trailers, version))
    return c.read_response()


def h1_get(host, path, version="HTTP/1.1", port=None):
    c = h.Conn(port or env().port)
    c.send(("GET %s %s\r\nHost: %s\r\n\r\n" % (path, version, host)).encode())
    return c.read_response()


class H2Result:
    def __init__(self, status, headers, trailers, body, out):
        self.status, self.headers, self.trailers, self.body, self.out = status, headers, trailers, body, out

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<h2 %s headers=%r trailers=%r body=%r>" % (self.status, self.headers, self.trailers, self.body[:200])


def nghttp(host, path, body=None, trailers=(), timeout=20):
    """One request with nghttp (h2c by prior knowledge). Parses its -v frame log: the fields of
    the response HEADERS, the fields of a trailing HEADERS frame (after DATA), the body."""
    exe = shutil.which("nghttp")
    check(exe, "nghttp (nghttp2-client) installed")
    argv = [exe, "-v", "-H", ":authority: " + host]
    if body is not None:
        path_in = os.path.join(h.tmpdir(), "nghttp-body.bin")
        with open(path_in, "wb") as f:
            f.write(body)
        argv += ["-d", path_in]
    for t in trailers:
        argv += ["--trailer", t]
    argv.append("http://127.0.0.1:%d%s" % (env().port, path))
    r = h.run(argv, timeout=timeout)
    # The body has no newline of its own: the next frame line follows it directly.
    out = re.sub(r"(?<=[^\n])(\[\s*\d+\.\d+\] (?:recv|send) )", "\n\\1", r.stdout)
    # nghttp -v: "[ t] recv (stream_id=N) name: value" per received field ("(stream_id=N,
    # sensitive)" for one sent never-indexed, like x-transfer-id); frames as
    # "[ t] recv HEADERS frame <...>" / "recv DATA frame"; the body is printed between them.
    headers, trailers_got, seen_data, status = {}, {}, False, None
    body_parts = []
    for line in out.split("\n"):
        m = re.match(r"^\[\s*[\d.]+\] recv \(stream_id=\d+(?:, sensitive)?\) (:?[^:]+): (.*)$", line)
        if m:
            (trailers_got if seen_data else headers)[m.group(1)] = m.group(2)
            continue
        if re.match(r"^\[\s*[\d.]+\] recv DATA frame", line):
            seen_data = True
            continue
        if line.startswith("[") or line.startswith("          ") or not line.strip():
            continue
        body_parts.append(line)
    if ":status" in headers:
        status = int(headers[":status"])
    return H2Result(status, headers, trailers_got, "\n".join(body_parts), out)


def record_of(tid):
    return h.wait_record(env().records, tid)


def check_forbidden_absent(fields, where):
    low = {k.lower() for k in fields}
    for n in FORBIDDEN_NAMES:
        if n in ("host",) and where.startswith("h2 vendor"):
            continue
        check(n not in low or n in ("content-type",) and where.endswith("head"),
              "%s reached %s: %r" % (n, where, fields))


def h1_vendor_trailers(rec):
    """The trailer section upstream.py received, as {lowercased name: value}."""
    out = {}
    for t in rec["trailers"]:
        n, _, v = t.partition(":")
        out[n.strip().lower()] = v.strip()
    return out


REQ_TRAILERS = ["X-Checksum: abc123", "Grpc-Timeout: 5S"] + FORBIDDEN


# ---- request trailers, four combinations ---------------------------------------------------

@test
def h1_client_to_h1_vendor_request_trailers():
    r = h1_call("h1.vendor.test", "/echo", b"x" * 1000, REQ_TRAILERS)
    eq(r.status, 200, repr(r))
    rec = r.json()
    eq((rec["chunked"], rec["body_len"]), (True, 1000), "re-chunked with the body whole")
    tr = h1_vendor_trailers(rec)
    eq((tr.get("x-checksum"), tr.get("grpc-timeout")), ("abc123", "5S"), repr(rec["trailers"]))
    for n in FORBIDDEN_NAMES:
        check(n not in tr, "%s reached the vendor as a trailer: %r" % (n, rec["trailers"]))
    eq(rec["headers"].get("Trailer") if isinstance(rec["headers"], dict) else
       dict(rec["headers"]).get("Trailer"), "X-Checksum, Grpc-Timeout", "Trailer field announces them")
    # No trailers: the body goes with a Content-Length as before.
    r = h1_call("h1.vendor.test", "/echo", b"y" * 10, [])
    rec = r.json()
    eq((rec["chunked"], rec["body_len"], rec["trailers"]), (False, 10, []))


@test
def h1_client_to_h2_vendor_request_trailers():
    r = h1_call("h2.vendor.test", "/echo", b"x" * 70000 if False else b"x" * 5000, REQ_TRAILERS)
    eq(r.status, 200, repr(r))
    j = r.json()
    eq((j["proto"], j["body_len"], j["trailer_frame"]), ("h2", 5000, True), repr(j))
    eq((j["trailers"].get("x-checksum"), j["trailers"].get("grpc-timeout")), ("abc123", "5S"), repr(j["trailers"]))
    for n in FORBIDDEN_NAMES:
        check(n not in j["trailers"], "%s reached the h2 vendor as a trailer: %r" % (n, j["trailers"]))
    check("transfer-encoding" not in j["headers"], "no Transfer-Encoding over h2: %r" % j["headers"])
    # An empty body with trailers: DATA-less, the trailing HEADERS ends the stream.
    r = h1_call("h2.vendor.test", "/echo", b"", ["X-Checksum: none"])
    j = r.json()
    eq((j["body_len"], j["trailer_frame"], j["trailers"]), (0, True, {"x-checksum": "none"}))


@test
def h2_client_to_h1_vendor_request_trailers():
    r = nghttp("h1.vendor.test", "/echo", b"z" * 3000, ["x-checksum: abc123", "grpc-timeout: 5S",
                                                         "authorization: Bearer x", "cookie: c=1"])
    eq(r.status, 200, repr(r))
    rec = r.json()
    eq((rec["chunked"], rec["body_len"]), (True, 3000))
    tr = h1_vendor_trailers(rec)
    eq((tr.get("x-checksum"), tr.get("grpc-timeout")), ("abc123", "5S"), repr(rec["trailers"]))
    check("authorization" not in tr and "cookie" not in tr, "forbidden trailer relayed: %r" % rec["trailers"])


@test
def h2_client_to_h2_vendor_request_trailers():
    r = nghttp("h2.vendor.test", "/echo", b"z" * 3000, ["x-checksum: abc123", "grpc-timeout: 5S",
                                                         "authorization: Bearer x", "set-cookie: s=1"])
    eq(r.status, 200, repr(r))
    j = r.json()
    eq((j["proto"], j["body_len"], j["trailer_frame"]), ("h2", 3000, True), repr(j))
    eq(j["trailers"], {"x-checksum": "abc123", "grpc-timeout": "5S"})


@test
def h2_client_empty_body_with_trailers():
    """nghttp sends an empty body as HEADERS with content-length: 0, then the trailing HEADERS
    with END_STREAM: a valid request (RFC 9113 8.1). The gateway decided it at the head as
    bodiless and dropped its trailers as late. They reach both vendors, are classified with the
    head (personal data in them blocks a vendor without a basis) and sealed under encrypt."""
    r = nghttp("h1.vendor.test", "/echo", b"", ["x-checksum: abc123", "authorization: Bearer x"])
    eq(r.status, 200, repr(r))
    rec = r.json()
    eq((rec["body_len"], rec["chunked"]), (0, True), "an empty chunked body carries the trailer section")
    eq(h1_vendor_trailers(rec), {"x-checksum": "abc123"}, repr(rec["trailers"]))
    r = nghttp("h2.vendor.test", "/echo", b"", ["x-checksum: abc123", "authorization: Bearer x"])
    eq(r.status, 200, repr(r))
    j = r.json()
    eq((j["body_len"], j["trailer_frame"], j["trailers"]), (0, True, {"x-checksum": "abc123"}), repr(j))
    for host in ("h1us.vendor.test", "h2us.vendor.test"):
        r = nghttp(host, "/echo", b"", ["x-contact: " + EMAIL])
        eq(r.status, 451, "%s: %r" % (host, r))
        rec = record_of(r.headers.get("x-transfer-id"))
        eq(rec["decision"], "block")
        check(EMAIL not in json.dumps(rec), "personal data in the record")
    r = nghttp("h2seal.vendor.test", "/echo", b"", ["x-contact: " + EMAIL])
    eq(r.status, 200, repr(r))
    tr = r.json()["trailers"]
    check(tr.get("x-contact", "").startswith("bgtok:"), "sealed h2 trailer: %r" % tr)


# ---- response trailers, four combinations --------------------------------------------------

def check_resp_trailers(tr, what):
    low = {k.lower(): v for k, v in tr.items()} if isinstance(tr, dict) else {k.lower(): v for k, v in tr}
    eq((low.get("grpc-status"), low.get("grpc-message"), low.get("x-checksum")), ("0", "all good", "abc123"),
       "%s: %r" % (what, tr))
    for n in ("content-length", "transfer-encoding", "host", "set-cookie", "authorization", "cache-control",
              "content-type", "connection", "te"):
        check(n not in low, "%s: %s relayed as a trailer: %r" % (what, n, tr))


@test
def h1_vendor_response_trailers_to_h1_client():
    r = h1_get("h1.vendor.test", "/trailers")
    eq(r.status, 200, repr(r))
    eq(r.headers.get("transfer-encoding"), "chunked")
    eq(r.json()["path"] if "path" in r.json() else r.json()["target"], "/trailers")
    check_resp_trailers(r.trailers, "h1 vendor -> h1 client")
    check(r.headers.get("trailer") is None, "the vendor's Trailer field is hop-by-hop here")
    rec = record_of(r.headers.get("x-transfer-id"))
    eq((rec["status"], rec["decision"]), (200, "allow"))
    # The same connection carries on (the trailer section ended the message exactly).


@test
def h2_vendor_response_trailers_to_h1_client():
    c = h.Conn(env().port)
    c.send(b"GET /trailers HTTP/1.1\r\nHost: h2.vendor.test\r\n\r\n")
    r = c.read_response()
    eq(r.status, 200, repr(r))
    eq(r.headers.get("transfer-encoding"), "chunked")
    eq(r.json()["proto"], "h2")
    check_resp_trailers(r.trailers, "h2 vendor -> h1 client")
    # Keep-alive still in sync after the trailer section.
    c.send(b"GET /echo HTTP/1.1\r\nHost: h2.vendor.test\r\n\r\n")
    r2 = c.read_response()
    eq((r2.status, r2.json()["path"]), (200, "/echo"))


@test
def h1_vendor_response_trailers_to_h2_client():
    r = nghttp("h1.vendor.test", "/trailers")
    eq(r.status, 200, repr(r))
    check_resp_trailers(r.trailers, "h1 vendor -> h2 client")
    check("x-transfer-id" in r.headers, repr(r.headers))


@test
def h2_vendor_response_trailers_to_h2_client():
    r = nghttp("h2.vendor.test", "/trailers")
    eq(r.status, 200, repr(r))
    eq(r.json()["proto"], "h2")
    check_resp_trailers(r.trailers, "h2 vendor -> h2 client")
    # With a declared length too: HTTP/2 carries trailers whatever the length.
    r = nghttp("h2.vendor.test", "/trailers?cl")
    eq(r.status, 200, repr(r))
    check_resp_trailers(r.trailers, "h2 vendor (content-length) -> h2 client")


@test
def trailers_dropped_when_the_answer_is_not_chunked():
    # The vendor declared the length (HTTP/2 content-length): an HTTP/1.1 client gets a
    # Content-Length answer, which has nowhere to put trailers (RFC 9110 6.5.1 lets them go).
    r = h1_get("h2.vendor.test", "/trailers?cl")
    eq(r.status, 200, repr(r))
    check(r.headers.get("content-length") is not None, repr(r.headers))
    eq(len(r.trailers), 0, repr(r.trailers))
    eq(r.json()["proto"], "h2")
    # HTTP/1.0 client: no chunked answer, no trailers; the body arrives whole.
    c = h.Conn(env().port)
    c.send(b"GET /trailers HTTP/1.0\r\nHost: h1.vendor.test\r\n\r\n")
    raw = c.read_until_close()
    head, _, body = raw.partition(b"\r\n\r\n")
    check(b"chunked" not in head.lower(), repr(head))
    check(b"grpc-status" not in raw.lower(), "trailers leaked into an HTTP/1.0 answer: %r" % raw[-200:])
    eq(json.loads(body)["target"], "/trailers")


# ---- limits ----------------------------------------------------------------------------------

@test
def oversize_request_trailers_refused():
    big = "X-Big: " + "a" * 5000                     # over max_header_size (4 KiB) with the head
    r = h1_call("h1.vendor.test", "/echo", b"abc", [big])
    eq(r.status, 431, repr(r))
    huge = ["X-Big%d: %s" % (i, "a" * 1000) for i in range(9)]  # over the 8 KiB trailer section bound
    r = h1_call("h1.vendor.test", "/echo", b"abc", huge)
    eq(r.status, 400, repr(r))
    r = nghttp("h2.vendor.test", "/echo", b"abc", ["x-big: " + "a" * 5000])
    eq(r.status, 431, repr(r))
    # Too many fields counts too (max_headers, default 100).
    many = ["X-T%d: 1" % i for i in range(120)]
    r = h1_call("h1.vendor.test", "/echo", b"abc", many)
    eq(r.status, 431, repr(r))


@test
def oversize_response_trailers_dropped_and_logged():
    gw = env().gw
    mark = gw.mark()
    r = h1_get("h1.vendor.test", "/trailers/big")
    eq(r.status, 200, repr(r))
    eq(r.json()["target"], "/trailers/big")
    eq(len(r.trailers), 0, "an oversize trailer block is dropped whole: %r" % r.trailers[:3])
    r = nghttp("h2.vendor.test", "/trailers?big")
    eq(r.status, 200, repr(r))
    eq(r.json()["proto"], "h2")
    eq(r.trailers, {}, "oversize h2 trailers dropped")
    log = gw.stderr_since(mark)
    eq(log.count("response trailers dropped"), 2, log[-1500:])
    check("b" * 100 not in log, "trailer values in the log")


# ---- classification ---------------------------------------------------------------------------

@test
def trailers_are_classified_before_the_decision():
    # US vendors without a legal basis: personal data blocks. The only personal data is in a trailer.
    for host in ("h1us.vendor.test", "h2us.vendor.test"):
        r = h1_call(host, "/echo", b"nothing personal", ["X-Contact: " + EMAIL])
        eq(r.status, 451, "%s: %r" % (host, r))
        rec = record_of(r.headers.get("x-transfer-id"))
        eq(rec["decision"], "block")
        check(EMAIL not in json.dumps(rec), "personal data in the record")
        r = h1_call(host, "/echo", b"nothing personal", ["X-Checksum: abc123"])
        eq(r.status, 200, "%s: %r" % (host, r))
    r = nghttp("h2us.vendor.test", "/echo", b"nothing personal", ["x-contact: " + EMAIL])
    eq(r.status, 451, repr(r))
    r = nghttp("h1us.vendor.test", "/echo", b"nothing personal", ["x-contact: " + EMAIL])
    eq(r.status, 451, repr(r))


@test
def trailers_are_sealed_under_encrypt():
    r = h1_call("h1seal.vendor.test", "/echo", b"nothing personal", ["X-Contact: " + EMAIL, "X-Checksum: abc"])
    eq(r.status, 200, repr(r))
    tr = h1_vendor_trailers(r.json())
    check(EMAIL not in r.body.decode(), "plaintext reached the vendor: %r" % tr)
    check(tr.get("x-contact", "").startswith("bgtok:"), "sealed trailer: %r" % tr)
    eq(tr.get("x-checksum"), "abc")
    r = nghttp("h2seal.vendor.test", "/echo", b"nothing personal", ["x-contact: " + EMAIL])
    eq(r.status, 200, repr(r))
    j = r.json()
    check(j["trailers"].get("x-contact", "").startswith("bgtok:"), "sealed h2 trailer: %r" % j["trailers"])
    rec = record_of(r.headers.get("x-transfer-id"))
    eq(rec["decision"], "encrypt")


@test
def trailers_after_the_decision_are_dropped():
    # 200 KiB: past max_body_scan (64 KiB), so the decision is taken on the prefix and the body
    # streams; the trailers come after it and were never classified: dropped (fail closed).
    gw = env().gw
    mark = gw.mark()
    body = b"q" * (200 * 1024)
    r = h1_call("h1.vendor.test", "/echo", body, ["X-Contact: " + EMAIL])
    eq(r.status, 200, repr(r)[:300])
    rec = r.json()
    eq((rec["body_len"], rec["trailers"]), (len(body), []))
    r = h1_call("h2.vendor.test", "/echo", body, ["X-Contact: " + EMAIL])
    eq(r.status, 200, repr(r)[:300])
    j = r.json()
    eq((j["body_len"], j["trailer_frame"], j["trailers"]), (len(body), False, {}))
    r = nghttp("h2.vendor.test", "/echo", body, ["x-contact: " + EMAIL])
    eq(r.status, 200, repr(r)[:300])
    eq((r.json()["body_len"], r.json()["trailers"]), (len(body), {}))
    log = gw.stderr_since(mark)
    eq(log.count("request trailers dropped"), 3, log[-1500:])
    check(EMAIL not in log, "personal data in the log")


@test
def records_count_trailer_bytes():
    r = h1_call("h1.vendor.test", "/echo", b"abc", [])
    base = record_of(r.headers.get("x-transfer-id"))["bytes_in"]
    r = h1_call("h1.vendor.test", "/echo", b"abc", ["X-Checksum: " + "c" * 100])
    rec = record_of(r.headers.get("x-transfer-id"))
    check(rec["bytes_in"] >= base + 100, "bytes_in %d vs %d without trailers" % (rec["bytes_in"], base))
    r = h1_get("h1.vendor.test", "/trailers")
    rec = record_of(r.headers.get("x-transfer-id"))
    check(rec["bytes_out"] >= len(r.body) + len("grpc-status: 0"), repr(rec))


@test
def records_count_response_trailer_bytes_exactly_under_every_fsync():
    # bytes_out = the response head as sent, the body, and the trailer fields as field lines
    # ("name: value\r\n", whatever carries them; not the chunked framing). Under fsync: always
    # the record is written before the trailers go out behind the held-back last byte, and it
    # still counts them.
    e = env()
    for port, records, fsync in ((e.port, e.records, "batch"), (e.port_always, e.records_always, "always")):
        for host in ("h1.vendor.test", "h2.vendor.test"):
            r = h1_get(host, "/trailers", port=port)
            eq(r.status, 200, repr(r))
            check_resp_trailers(r.trailers, "%s under %s" % (host, fsync))
            rec = h.wait_record(records, r.headers.get("x-transfer-id"))
            head = len("HTTP/1.1 %d %s\r\n" % (r.status, r.reason)) + sum(len(n) + len(v) + 4 for n, v in r.headers) + 2
            want = head + len(r.body) + sum(len(n) + len(v) + 4 for n, v in r.trailers)
            eq(rec["bytes_out"], want, "bytes_out from %s under fsync %s" % (host, fsync))


@test
def records_chain_verifies():
    for path in (env().records, env().records_always):
        r = h.run([h.BINARY, "records", "verify", path])
        eq(r.returncode, 0, r.stdout[-500:] + r.stderr[-500:])


@test
def teardown():
    env().gw.stop()
    env().gw_always.stop()


if __name__ == "__main__":
    h.main()
