#!/usr/bin/env python3
"""test_trailers.py -- issue 8 (trailers): trailer fields through build/bordergate in all four
combinations of client and vendor protocol (HTTP/1.1 chunked trailer sections, HTTP/2 trailing
HEADERS), both directions. Real clients: raw HTTP/1.1 sockets (curl has no option to send
request trailers) and nghttp (`--trailer`, and its -v frame log for what came back); real
vendors: tests/integration/upstream.py (HTTP/1.1: records the trailer section it received,
answers /trailers chunked with one) and build/tests/tools/h2echo (HTTP/2 over TLS: echoes a
trailing HEADERS frame, answers /trailers with one). Covers: fields not allowed in trailers
filtered both ways, trailers dropped when the client's answer is not chunked, sections at the
header limits (exactly max_header_size bytes / max_headers fields pass; request: 431 beyond, the
same over HTTP/1.1 and HTTP/2; response: beyond, the answer is broken off like a vendor cut
mid-body, with memory bounded), trailers classified with the headers (block, encrypt), trailers
after the decision dropped (fail closed), records."""

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
    # The shipped header limits (config/bordergate.yaml does not set them: src/config.c's
    # defaults, 16 KiB and 100 fields) and the shipped max_body_scan (1 MiB).
    cfg = h.gateway_config(vendors, limits={"upstream_timeout": "5s"})
    cfg["records"]["path"] = os.path.join(h.tmpdir(), "records-default", "transfers.jsonl")
    e.records_default = cfg["records"]["path"]
    e.gw_default = h.Gateway(cfg, name="trailers-default").start()
    e.port_default = e.gw_default.port(0)
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


def h1_call(host, path, body=b"hello", trailers=(), version="HTTP/1.1", timeout=10, port=None):
    c = h.Conn(port or env().port, timeout=timeout)
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


def nghttp(host, path, body=None, trailers=(), timeout=20, port=None):
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
    argv.append("http://127.0.0.1:%d%s" % (port or env().port, path))
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
    # Over 8 KiB (the chunked decoder's old fixed bound, which answered 400 here): the header
    # limit decides, 431, as over HTTP/2.
    huge = ["X-Big%d: %s" % (i, "a" * 1000) for i in range(9)]
    r = h1_call("h1.vendor.test", "/echo", b"abc", huge)
    eq(r.status, 431, repr(r))
    r = nghttp("h2.vendor.test", "/echo", b"abc", [t.lower() for t in huge])
    eq(r.status, 431, repr(r))
    r = nghttp("h2.vendor.test", "/echo", b"abc", ["x-big: " + "a" * 5000])
    eq(r.status, 431, repr(r))
    # Too many fields counts too (max_headers, default 100).
    many = ["X-T%d: 1" % i for i in range(120)]
    r = h1_call("h1.vendor.test", "/echo", b"abc", many)
    eq(r.status, 431, repr(r))


@test
def oversize_response_trailers_fail_the_response():
    # A trailer section over max_header_size (4 KiB here) is the vendor's failure: never a
    # complete answer without them (it used to be completed with the trailers dropped).
    # Under fsync: always too, where the answer's end waits for the record.
    e = env()
    for port, records in ((e.port, e.records), (e.port_always, e.records_always)):
        for host, path in (("h1.vendor.test", "/trailers/big"), ("h2.vendor.test", "/trailers?big")):
            got = h1_broken(port, host, path, records)
            eq(got["record"]["status"], 502, "%s%s: %r" % (host, path, got["record"]))
            r = nghttp(host, path, port=port)
            check("recv RST_STREAM" in r.out, "%s%s over h2: the stream is reset: %s" % (host, path, r.out[-800:]))
    for gw in (e.gw, e.gw_always):
        log = gw.stderr_since(0)
        check("b" * 100 not in log, "trailer values in the log")


# ---- response trailer sections at the header limits (the shipped defaults) --------------------

MAX_HEADER_SIZE, MAX_HEADERS = 16384, 100  # src/config.c's defaults; config/bordergate.yaml keeps them


def parse_chunked(data):
    """A chunked body as far as it goes: (body, complete, trailers as [(name, value)])."""
    body, pos = b"", 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return body, False, []
        size = int(data[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            end = data.find(b"\r\n\r\n", pos - 2)
            if end < 0:
                return body, False, []
            lines = data[pos:end].decode("latin-1").split("\r\n") if end > pos else []
            return body, True, [tuple(x.strip() for x in ln.split(":", 1)) for ln in lines if ln]
        if len(data) < pos + size + 2:
            return body + data[pos:pos + size], False, []
        body += data[pos:pos + size]
        pos += size + 2


def h1_te_get(port, host, path):
    c = h.Conn(port, timeout=10)
    c.send(("GET %s HTTP/1.1\r\nHost: %s\r\nTE: trailers\r\n\r\n" % (path, host)).encode())
    return c


def h1_broken(port, host, path, records):
    """A GET whose answer must be broken off: the head is relayed, the chunked body never
    completes (no last chunk) and the connection closes. Returns the head, the body as far as
    it came, the transfer id and its record."""
    c = h1_te_get(port, host, path)
    raw = c.read_until_close(10)
    head, _, rest = raw.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 200"), "%s%s: the head was relayed: %r" % (host, path, raw[:200]))
    check(b"transfer-encoding: chunked" in head.lower(), repr(head))
    body, complete, trailers = parse_chunked(rest)
    check(not complete, "%s%s: the client got a complete answer: %r" % (host, path, rest[-300:]))
    tid = [ln.split(b":", 1)[1].strip().decode() for ln in head.split(b"\r\n")
           if ln.lower().startswith(b"x-transfer-id:")][0]
    return {"head": head, "body": body, "tid": tid, "record": h.wait_record(records, tid)}


def nghttp_streams(port, host, paths, timeout=20):
    """Several GETs on one HTTP/2 connection (nghttp, streams 13, 15, ...). Returns the -v log
    and, per path, {"status", "fields" (head and trailers), "reset": RST_STREAM seen}."""
    argv = ["nghttp", "-v", "-H", ":authority: " + host] + ["http://127.0.0.1:%d%s" % (port, p) for p in paths]
    out = h.run(argv, timeout=timeout).stdout
    out = re.sub(r"(?<=[^\n])(\[\s*\d+\.\d+\] (?:recv|send) )", "\n\\1", out)
    res = {}
    for i, p in enumerate(paths):
        sid = 13 + 2 * i
        fields = re.findall(r"recv \(stream_id=%d(?:, sensitive)?\) (:?[^:\s]+): (.*)" % sid, out)
        res[p] = {"fields": dict(fields), "status": dict(fields).get(":status"),
                  "reset": re.search(r"recv RST_STREAM frame <[^>]*stream_id=%d>" % sid, out) is not None}
    return out, res


def section_of(fields):
    return sum(len(n) + len(v) + 4 for n, v in fields)


@test
def response_trailers_up_to_the_header_limits_are_relayed():
    # The defect: a vendor trailer section over 8 KiB (within limits.max_header_size) aborted the
    # response; a section of exactly the limit, and exactly max_headers fields, must pass whole.
    e = env()
    cases = [("h1.vendor.test", "/trailers/section/%d" % MAX_HEADER_SIZE, "section"),
             ("h1.vendor.test", "/trailers/section/12000", "section"),
             ("h1.vendor.test", "/trailers/fields/%d" % MAX_HEADERS, "fields"),
             ("h2.vendor.test", "/trailers?section=%d" % MAX_HEADER_SIZE, "section"),
             ("h2.vendor.test", "/trailers?fields=%d" % MAX_HEADERS, "fields")]
    mark = e.gw_default.mark()
    for host, path, kind in cases:
        what = host + path
        c = h1_te_get(e.port_default, host, path)
        r = c.read_response()
        eq(r.status, 200, "%s: %r" % (what, r))
        check_resp_trailers(r.trailers, what)
        if kind == "section":
            big = r.trailers.get("x-big") or ""
            check(len(big) > 8192 and set(big) == {"b"}, "%s: X-Big relayed whole (%d bytes)" % (what, len(big)))
        else:
            eq(len([n for n, _ in r.trailers if n.lower().startswith("x-t")]), MAX_HEADERS - (12 if "h1" in host else 7),
               "%s: every X-Ti field relayed" % what)
        rec = h.wait_record(e.records_default, r.headers.get("x-transfer-id"))
        head = len("HTTP/1.1 %d %s\r\n" % (r.status, r.reason)) + section_of(r.headers) + 2
        eq((rec["status"], rec["bytes_out"]), (200, head + len(r.body) + section_of(r.trailers)), what)
        # The connection carries on.
        c.send(("GET /echo HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode())
        eq(c.read_response().status, 200, what + ": the next request on the connection")
        r = nghttp(host, path, port=e.port_default)
        eq(r.status, 200, "%s over h2: %r" % (what, r))
        check_resp_trailers(r.trailers, what + " over h2")
        if kind == "section":
            check(len(r.trailers.get("x-big", "")) > 8192, "%s over h2: x-big relayed whole" % what)
        else:
            eq(len([n for n in r.trailers if n.startswith("x-t")]), MAX_HEADERS - (12 if "h1" in host else 7),
               what + " over h2")
    log = e.gw_default.stderr_since(mark)
    check("upstream failed" not in log and "trailers dropped" not in log, log[-1500:])


@test
def response_trailers_over_the_header_limits_fail_like_a_vendor_cut_mid_body():
    e = env()
    g = e.gw_default
    over = [("h1.vendor.test", "/trailers/section/%d" % (MAX_HEADER_SIZE + 1), "section"),
            ("h1.vendor.test", "/trailers/fields/%d" % (MAX_HEADERS + 1), "fields"),
            ("h2.vendor.test", "/trailers?section=%d" % (MAX_HEADER_SIZE + 1), "section"),
            ("h2.vendor.test", "/trailers?fields=%d" % (MAX_HEADERS + 1), "fields")]
    errors = {v: h.metric(g.admin_port, "bordergate_upstream_errors_total", {"vendor": v, "kind": "protocol"}) or 0
              for v in ("h1v", "h2v")}
    mark = g.mark()
    # A vendor closing mid-body (the yardstick): HTTP/1.1 closes without the last chunk, 502 recorded.
    cut = h1_broken(e.port_default, "h1.vendor.test", "/cut-chunked/3000", e.records_default)
    eq(cut["record"]["status"], 502)
    for host, path, kind in over:
        what = host + path
        got = h1_broken(e.port_default, host, path, e.records_default)
        check(b'"trailers"' in got["body"], "%s: the body came first (%d bytes)" % (what, len(got["body"])))
        rec = got["record"]
        head = len(got["head"]) + 4
        for k in ("status", "decision", "protocol"):
            eq(rec[k], cut["record"][k], "%s: record %s as for a vendor cut mid-body" % (what, k))
        eq(rec["bytes_out"], head + len(got["body"]), "%s: bytes_out counts what the client got" % what)
        # HTTP/2: that stream is reset, the connection and its other stream carry on.
        seen = {r["id"] for r in h.read_records(e.records_default)}
        out, res = nghttp_streams(e.port_default, host, [path, "/trailers" if "h1" in host else "/trailers?x"])
        first, second = res[path], list(res.values())[1]
        check(first["reset"], "%s over h2: stream reset: %s" % (what, out[-1500:]))
        check(not second["reset"] and second["status"] == "200" and second["fields"].get("grpc-status") == "0",
              "%s over h2: the other stream completes with its trailers: %r" % (what, second))
        check("recv GOAWAY" not in out, "%s over h2: the connection was not closed: %s" % (what, out[-1500:]))
        # The two streams' records: 502 for the reset one, 200 for the other. (The reset may
        # overtake the response head, and its transfer id, when the whole answer came at once.)
        def both():
            got = [r for r in h.read_records(e.records_default) if r["id"] not in seen and r["protocol"] == "h2"]
            return got if len(got) >= 2 else None
        new = h.wait_until(both, msg="%s over h2: two records" % what)
        eq(sorted(r["status"] for r in new), [200, 502], "%s over h2: records %r" % (what, new))
        if first["fields"].get("x-transfer-id"):
            eq(h.wait_record(e.records_default, first["fields"]["x-transfer-id"])["status"], 502, what)
    log = g.stderr_since(mark)
    eq(log.count('error="response trailer section over limits.max_header_size"'), 4, log[-3000:])
    eq(log.count('error="response trailer fields over limits.max_headers"'), 4, log[-3000:])
    eq(log.count("kind=protocol"), 8, log[-3000:])
    check("b" * 64 not in log and "tttttttt" not in log, "trailer values in the log")
    for v in ("h1v", "h2v"):
        eq(h.metric(g.admin_port, "bordergate_upstream_errors_total", {"vendor": v, "kind": "protocol"}),
           errors[v] + 4, "upstream protocol errors of %s" % v)


@test
def huge_response_trailer_sections_are_not_buffered():
    # A vendor streaming megabytes of trailer fields: the gateway stops at the limit, and its
    # memory does not follow the section.
    e = env()
    g = e.gw_default
    for path in ("/trailers/section/%d" % (1 << 20), "/trailers/fields/100000"):
        h1_broken(e.port_default, "h1.vendor.test", path, e.records_default)
    rss0 = h.rss_kb(g.proc.pid)
    for _ in range(4):
        for path in ("/trailers/section/%d" % (8 << 20), "/trailers/fields/300000"):
            h1_broken(e.port_default, "h1.vendor.test", path, e.records_default)
    rss1 = h.rss_kb(g.proc.pid)
    check(rss1 - rss0 < 8 * 1024, "RSS grew from %d to %d KiB over 8 sections of 5-8 MiB" % (rss0, rss1))


# ---- request trailer sections at the header limits: HTTP/1.1 and HTTP/2 agree ----------------

@test
def request_trailers_up_to_the_header_limits_pass_both_ways():
    # Over 8 KiB, within max_header_size with the head: HTTP/1.1 answered 400 ("malformed
    # chunked body") where HTTP/2 forwarded them.
    e = env()
    big = "X-Big: " + "a" * 12000
    r = h1_call("h1.vendor.test", "/echo", b"abc", [big], port=e.port_default)
    eq(r.status, 200, repr(r))
    eq(len(h1_vendor_trailers(r.json()).get("x-big", "")), 12000, "the vendor got the trailer")
    r = nghttp("h1.vendor.test", "/echo", b"abc", [big.lower()], port=e.port_default)
    eq(r.status, 200, repr(r))
    eq(len(h1_vendor_trailers(r.json()).get("x-big", "")), 12000, "the vendor got the trailer over h2")
    r = h1_call("h2.vendor.test", "/echo", b"abc", [big], port=e.port_default)
    eq(r.status, 200, repr(r))
    eq(len(r.json()["trailers"].get("x-big", "")), 12000, "the h2 vendor got the trailer")


@test
def request_trailers_over_the_header_limits_431_both_ways():
    e = env()
    for trailers in (["X-Big: " + "a" * 17000],                        # one field over 16 KiB
                     ["X-Big%d: %s" % (i, "a" * 3000) for i in range(6)],  # 18 KiB in six
                     ["X-T%d: 1" % i for i in range(120)]):                 # over 100 fields
        what = "%d trailer fields, %d bytes" % (len(trailers), sum(len(t) for t in trailers))
        r = h1_call("h1.vendor.test", "/echo", b"abc", trailers, port=e.port_default)
        eq(r.status, 431, "HTTP/1.1, %s: %r" % (what, r))
        rec = h.wait_record(e.records_default, r.headers.get("x-transfer-id"))
        eq(rec["status"], 431, what)
        r = nghttp("h1.vendor.test", "/echo", b"abc", [t.lower() for t in trailers], port=e.port_default)
        eq(r.status, 431, "HTTP/2, %s: %r" % (what, r))
        rec = h.wait_record(e.records_default, r.headers.get("x-transfer-id"))
        eq(rec["status"], 431, what)


@test
def oversize_request_trailers_after_the_decision_are_dropped_both_ways():
    # Past max_body_scan (64 KiB) the body streams and trailers come too late to be classified:
    # dropped (fail closed), over the limit (4 KiB) or not; an HTTP/1.1 section over 8 KiB
    # used to break the exchange instead (400, with the body already streaming to the vendor).
    gw = env().gw
    mark = gw.mark()
    body = b"q" * (200 * 1024)
    big = "X-Big: " + "a" * 9000
    r = h1_call("h1.vendor.test", "/echo", body, [big])
    eq(r.status, 200, repr(r)[:300])
    eq((r.json()["body_len"], r.json()["trailers"]), (len(body), []))
    r = nghttp("h2.vendor.test", "/echo", body, [big.lower()])
    eq(r.status, 200, repr(r)[:300])
    eq((r.json()["body_len"], r.json()["trailers"]), (len(body), {}))
    log = gw.stderr_since(mark)
    eq(log.count("request trailers dropped"), 2, log[-1500:])
    check("a" * 64 not in log, "trailer values in the log")


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
    for path in (env().records, env().records_always, env().records_default):
        r = h.run([h.BINARY, "records", "verify", path])
        eq(r.returncode, 0, r.stdout[-500:] + r.stderr[-500:])


@test
def teardown():
    env().gw.stop()
    env().gw_always.stop()
    env().gw_default.stop()


if __name__ == "__main__":
    h.main()
