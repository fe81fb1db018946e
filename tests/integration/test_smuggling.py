#!/usr/bin/env python3
"""test_smuggling.py -- request smuggling and desync probes, HTTP/1.1 and HTTP/2 towards the
gateway, HTTP/1.1 towards a vendor that keeps every byte it receives (RawVendor). What the
gateway classified and routed must be exactly what the vendor sees: one well-formed request per
client request, the same host, target and body, and no bytes of one caller's exchange left on a
pooled vendor connection for the next. Ambiguous input is refused with 400 and never forwarded.
The vendor side parses strictly (split_requests) so that anything a lenient server might read
two ways fails the test."""

import gzip
import os
import re
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import h2wire as w  # noqa: E402
from harness import check, eq, test  # noqa: E402


# ---- a vendor that records raw bytes ----------------------------------------------------------

TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
FIELD_RE = re.compile(rb"(" + TCHAR + rb"):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*\Z")
LINE_RE = re.compile(rb"(" + TCHAR + rb") (/[!-~]*|\*) HTTP/1\.1\Z")


class Malformed(Exception):
    pass


def _line(data, i):
    j = data.find(b"\r\n", i)
    if j < 0:
        return None, i
    line = data[i:j]
    if b"\n" in line or b"\r" in line:
        raise Malformed("bare CR or LF in %r" % line)
    return line, j + 2


def parse_one(data, i=0):
    """One strictly well-formed HTTP/1.1 request at data[i:]: (request dict, next offset), or
    (None, i) when incomplete. Raises Malformed on anything RFC 9112 does not allow or that a
    recipient could read two ways (origin-form or '*' targets only, one Host, not both CL and TE,
    only 'chunked' as a coding)."""
    line, k = _line(data, i)
    if line is None:
        return None, i
    m = LINE_RE.match(line)
    if not m:
        raise Malformed("request line %r" % line)
    fields = []
    while True:
        f, k2 = _line(data, k)
        if f is None:
            return None, i
        k = k2
        if f == b"":
            break
        fm = FIELD_RE.match(f)
        if not fm:
            raise Malformed("field line %r" % f)
        fields.append((fm.group(1).decode().lower(), fm.group(2).decode("latin-1")))
    names = [n for n, _ in fields]
    if names.count("host") != 1:
        raise Malformed("%d Host fields" % names.count("host"))
    te = [v for n, v in fields if n == "transfer-encoding"]
    cl = [v for n, v in fields if n == "content-length"]
    if te and cl:
        raise Malformed("both Transfer-Encoding and Content-Length")
    if len(cl) > 1 or len(te) > 1:
        raise Malformed("repeated framing field")
    body, trailers = b"", []
    if te:
        if te[0].lower() != "chunked":
            raise Malformed("transfer coding %r" % te[0])
        while True:
            sl, k2 = _line(data, k)
            if sl is None:
                return None, i
            if not re.fullmatch(rb"[0-9a-fA-F]+", sl):
                raise Malformed("chunk-size line %r" % sl)
            size = int(sl, 16)
            k = k2
            if size == 0:
                while True:
                    t, k2 = _line(data, k)
                    if t is None:
                        return None, i
                    k = k2
                    if t == b"":
                        break
                    tm = FIELD_RE.match(t)
                    if not tm:
                        raise Malformed("trailer line %r" % t)
                    trailers.append((tm.group(1).decode().lower(), tm.group(2).decode("latin-1")))
                break
            if len(data) < k + size + 2:
                return None, i
            if data[k + size:k + size + 2] != b"\r\n":
                raise Malformed("chunk not followed by CRLF")
            body += data[k:k + size]
            k += size + 2
    elif cl:
        if not re.fullmatch(r"[0-9]+", cl[0]):
            raise Malformed("Content-Length %r" % cl[0])
        n = int(cl[0])
        if len(data) < k + n:
            return None, i
        body = data[k:k + n]
        k += n
    req = {"method": m.group(1).decode(), "target": m.group(2).decode("latin-1"), "fields": fields,
           "body": bytes(body), "trailers": trailers}
    req["host"] = [v for n, v in fields if n == "host"][0]
    return req, k


def split_requests(data):
    """Every request in data, strictly; raises Malformed, also on bytes left over."""
    out, i = [], 0
    while i < len(data):
        r, j = parse_one(data, i)
        if r is None:
            raise Malformed("incomplete request or trailing bytes %r" % bytes(data[i:i + 200]))
        out.append(r)
        i = j
    return out


def field(req, name):
    vals = [v for n, v in req["fields"] if n == name]
    return vals[0] if len(vals) == 1 else (vals or None)


class RawVendor:
    """A vendor on loopback that keeps every byte of every connection (conns: list of bytearrays)
    and answers each request it can parse strictly with respond(req, n) (bytes; default a 200
    naming the request's number and target). A request it cannot parse: 400 and close."""

    def __init__(self, respond=None, host="127.0.0.1"):
        self.respond = respond or self.default
        self.lock = threading.Lock()
        self.conns = []  # every connection's bytes, in order of acceptance
        self.marks = []  # where each one's bytes start for requests() (clear() moves them)
        self.closed = []  # whether each one has ended
        self.n = 0
        self.errors = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @staticmethod
    def default(req, n):
        body = ("%d %s %s %d" % (n, req["method"], req["target"], len(req["body"]))).encode()
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = bytearray()
        with self.lock:
            self.conns.append(buf)
            self.marks.append(0)
            self.closed.append(False)
            idx = len(self.conns) - 1
        off = 0
        c.settimeout(10)
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                with self.lock:
                    buf += d
                while True:
                    try:
                        req, nxt = parse_one(bytes(buf), off)
                    except Malformed as e:
                        with self.lock:
                            self.errors.append(str(e))
                        c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        return
                    if req is None:
                        break
                    off = nxt
                    with self.lock:
                        self.n += 1
                        n = self.n
                    out = self.respond(req, n)
                    if out is None:
                        return
                    for k, piece in enumerate(out if isinstance(out, list) else [out]):
                        if k:
                            time.sleep(0.1)
                        c.sendall(piece)
        except OSError:
            pass
        finally:
            c.close()
            with self.lock:
                self.closed[idx] = True

    def requests(self):
        """All requests received, parsed strictly (Failure on anything malformed)."""
        with self.lock:
            conns = [bytes(b[m:]) for b, m in zip(self.conns, self.marks)]
            errors = list(self.errors)
        check(not errors, "the vendor saw malformed bytes: %r" % errors)
        out = []
        for data in conns:
            try:
                out += split_requests(data)
            except Malformed as e:
                raise h.Failure("the vendor received bytes that are not well-formed requests: %s" % e)
        return out

    def states(self):
        """(bytes since clear(), ended) of every connection."""
        with self.lock:
            return [(bytes(b[m:]), e) for b, m, e in zip(self.conns, self.marks, self.closed)]

    def clear(self):
        with self.lock:
            self.marks = [len(b) for b in self.conns]
            self.errors.clear()

    def close(self):
        self.stopped = True
        self.sock.close()


class Env:
    pass


@h.once
def env():
    e = Env()
    e.v = RawVendor()
    e.other = RawVendor()
    e.us = RawVendor(host="127.0.0.3")  # the test GeoIP database puts 127.0.0.3 in the US
    us = h.vendor("us", ["us.test"], e.us.port, addresses=["127.0.0.3"], regions=["US"], basis="none",
                  categories=["identifier", "device", "usage"])
    us["entity"]["country"] = "US"
    vendors = [h.vendor("raw", ["raw.test", "*.wild.test"], e.v.port), h.vendor("other", ["other.test"], e.other.port),
               h.vendor("small", ["small.test"], e.v.port, max_body=16),
               us]
    e.gw = h.Gateway(h.gateway_config(vendors, limits={"max_body_scan": 65536, "oversize_body": "personal"}),
                     name="smuggling").start()
    e.port = e.gw.port()
    return e


def fresh():
    """The environment, with both vendors' byte logs cleared."""
    e = env()
    time.sleep(0.05)
    e.v.clear()
    e.other.clear()
    return e


def send(data, n=1):
    """data on a new connection; up to n responses (fewer when the gateway closes), and the conn."""
    e = env()
    c = h.Conn(e.port)
    c.send(data)
    out = []
    for _ in range(n):
        try:
            out.append(c.read_response())
        except h.Closed:
            break
    return out, c


def refused(data, why, status=400):
    """data is answered `status` and the connection closed, and no byte reaches either vendor."""
    e = fresh()
    rs, c = send(data, 2)
    check(rs, "%s: no answer" % why)
    eq(rs[0].status, status, why)
    eq(len(rs), 1, "%s: answers" % why)
    check(c.is_closed(2.0), "%s: the connection stays open after the refusal" % why)
    time.sleep(0.1)
    eq(e.v.requests() + e.other.requests(), [], "%s: requests at the vendors" % why)


def forwarded(data, n=1):
    """data is answered 200 (n responses) and the vendor saw exactly n well-formed requests."""
    e = fresh()
    rs, c = send(data, n)
    eq([r.status for r in rs], [200] * n, "answers")
    time.sleep(0.1)
    reqs = e.v.requests()
    eq(len(reqs), n, "requests at the vendor")
    return reqs, rs, c


def H(*lines, body=b""):
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# ---- HTTP/1.1: framing -------------------------------------------------------------------------

@test
def framing_ambiguities_are_refused():
    base = ["POST /a HTTP/1.1", "Host: raw.test"]
    body = b"5\r\nhello\r\n0\r\n\r\n"
    cases = [
        (["Content-Length: 5", "Transfer-Encoding: chunked"], "CL + TE", 400),
        (["Transfer-Encoding: chunked", "Content-Length: 5"], "TE + CL", 400),
        (["Transfer-Encoding: chunked, identity"], "chunked, identity", 400),
        (["Transfer-Encoding: identity, chunked"], "identity, chunked", 501),
        (["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], "TE twice", 400),
        (["Transfer-Encoding: chunked, chunked"], "chunked twice", 400),
        (["Transfer-Encoding : chunked"], "space before colon", 400),
        (["Transfer-Encoding:\x0bchunked"], "VT in value", 400),
        (["Transfer-Encoding: \"chunked\""], "quoted coding", 400),
        ([" Transfer-Encoding: chunked"], "leading whitespace (obs-fold)", 400),
        (["X: y", " Transfer-Encoding: chunked"], "obs-fold", 400),
        (["Transfer-Encoding: xchunked"], "xchunked", 400),
        (["Transfer-Encoding: chunked;q=1"], "chunked with a parameter", 400),
        (["Content-Length: 5", "Content-Length: 6"], "two lengths", 400),
        (["Content-Length: 5, 6"], "length list", 400),
        (["Content-Length: +5"], "signed length", 400),
        (["Content-Length: 0x5"], "hex length", 400),
        (["Content-Length: 5 5"], "two numbers", 400),
        (["Content-Length: 99999999999999999999999"], "overflowing length", 400),
        (["Transf\x00er-Encoding: chunked"], "NUL in a name", 400),
        (["Transfer-Encoding\x7f: chunked"], "DEL in a name", 400),
        (["Tr\xe4nsfer-Encoding: chunked"], "obs-text in a name", 400),
        (["Host: raw.test"], "two Hosts", 400),
    ]
    for extra, why, st in cases:
        refused(H(*base, *extra, body=body), why, st)
    refused(H("POST /a HTTP/1.0", "Host: raw.test", "Transfer-Encoding: chunked", body=body), "TE in 1.0")
    refused(b"POST /a HTTP/1.1\r\nHost: raw.test\nTransfer-Encoding: chunked\r\n\r\n" + body, "bare LF")
    refused(b"POST /a HTTP/1.1\r\nHost: raw.test\rTransfer-Encoding: chunked\r\n\r\n" + body, "bare CR")


@test
def transfer_encoding_case_and_whitespace_are_one_meaning():
    # Coding names are case-insensitive and OWS around list elements is not part of them: these
    # are all one chunked body, forwarded as exactly one request with that body.
    for te in ("Chunked", "CHUNKED", " chunked", "chunked\t", "\tchunked ", ", chunked", "chunked,"):
        reqs, _, _ = forwarded(H("POST /te HTTP/1.1", "Host: raw.test", "Transfer-Encoding:" + te,
                                 body=b"5\r\nhello\r\n0\r\n\r\n"))
        eq(reqs[0]["body"], b"hello", "body for TE %r" % te)


@test
def chunk_syntax_tricks_are_refused():
    head = H("POST /c HTTP/1.1", "Host: raw.test", "Transfer-Encoding: chunked")
    bad = [
        (b" 5\r\nhello\r\n0\r\n\r\n", "space before size"),
        (b"5 \r\nhello\r\n0\r\n\r\n", "space after size"),
        (b"0x5\r\nhello\r\n0\r\n\r\n", "0x prefix"),
        (b"+5\r\nhello\r\n0\r\n\r\n", "sign"),
        (b"5\nhello\n0\n\n", "LF-only lines"),
        (b"5\r\nhello\n0\r\n\r\n", "LF after data"),
        (b"5\r\nhelloXX0\r\n\r\n", "no CRLF after data"),
        (b"5\rhello\r\n0\r\n\r\n", "bare CR after size"),
        (b"5;a=\"x\r\ny\"\r\nhello\r\n0\r\n\r\n", "CRLF in a quoted extension"),
        (b"5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n", "LF in a quoted extension"),
        (b"5;a\nb\r\nhello\r\n0\r\n\r\n", "LF in an extension"),
        (b"5;\x00\r\nhello\r\n0\r\n\r\n", "NUL in an extension"),
        (b"5\r\nhello\r\n0\r\nX: a\nY: b\r\n\r\n", "bare LF in trailers"),
        (b"5\r\nhello\r\n0\r\n X: a\r\n\r\n", "obs-fold in trailers"),
        (b"5\r\nhello\r\n0\r\nX : a\r\n\r\n", "space before a trailer colon"),
        (b"5\r\nhello\r\n0\r\n\n", "bare LF ending trailers"),
        (b"ffffffffffffffffff\r\n", "size overflow"),
    ]
    for body, why in bad:
        refused(head + body, why)


@test
def chunk_sizes_with_leading_zeros_and_extensions_keep_their_length():
    head = H("POST /c HTTP/1.1", "Host: raw.test", "Transfer-Encoding: chunked")
    # repeated identical lengths are one length (RFC 9110 8.6); the vendor gets one
    for cl in (["Content-Length: 5", "Content-Length: 5"], ["Content-Length: 5, 5"]):
        reqs, _, _ = forwarded(H("POST /c HTTP/1.1", "Host: raw.test", *cl, body=b"hello"))
        eq((reqs[0]["body"], field(reqs[0], "content-length")), (b"hello", "5"), "for %r" % cl)
    for body in (b"0005\r\nhello\r\n000\r\n\r\n",
                 b"5;a=b;c=\"d;e\\\"f\"\r\nhello\r\n0;z\r\n\r\n",
                 b"5 ;a\r\nhello\r\n0\r\n\r\n"):
        reqs, _, _ = forwarded(head + body)
        eq(reqs[0]["body"], b"hello", "body of %r" % body)


@test
def framing_trailers_never_reach_the_vendor():
    # A trailer section naming framing or routing fields must not become a field the vendor
    # reads (as HTTP/1.1 trailers merged into the head, or worse, as framing).
    tr = (b"Host: evil.test\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
          b"Trailer: X\r\nKeep-Alive: 1\r\nX-Ok: 1\r\n\r\n")
    reqs, _, _ = forwarded(H("POST /t HTTP/1.1", "Host: raw.test", "Transfer-Encoding: chunked")
                           + b"5\r\nhello\r\n0\r\n" + tr)
    r = reqs[0]
    eq(r["body"], b"hello", "body")
    eq(r["host"], "raw.test", "Host")
    eq(r["trailers"], [("x-ok", "1")], "trailers at the vendor")


# ---- HTTP/1.1: routing fields ------------------------------------------------------------------

@test
def absolute_form_authority_is_what_routes_and_what_the_vendor_sees():
    # RFC 9112 3.2.2: the target's authority wins over Host; the vendor must see that one.
    reqs, _, _ = forwarded(H("GET http://raw.test/p?q=1 HTTP/1.1", "Host: other.test"))
    eq((reqs[0]["host"], reqs[0]["target"]), ("raw.test", "/p?q=1"))
    eq(env().other.requests(), [], "requests at the vendor named only by Host")
    # and the other way round: the vendor named by Host is not reached
    e = fresh()
    rs, _ = send(H("GET http://other.test/p HTTP/1.1", "Host: raw.test"))
    eq(rs[0].status, 200)
    time.sleep(0.1)
    eq(len(e.other.requests()), 1, "requests at the vendor of the target's authority")
    eq(e.v.requests(), [], "requests at the vendor named only by Host")


@test
def absolute_form_without_path_is_forwarded_in_origin_form():
    # "http://h?q" has an empty path: its origin-form is "/?q" (RFC 9112 3.2.1), never "?q".
    for target, want in (("http://raw.test", "/"), ("http://raw.test?q=1", "/?q=1"),
                         ("http://raw.test:80?q=1", "/?q=1")):
        reqs, _, _ = forwarded(H("GET %s HTTP/1.1" % target, "Host: raw.test"))
        eq(reqs[0]["target"], want, "target at the vendor for %s" % target)


@test
def bad_authorities_are_refused():
    for line, host, why in (
        ("GET http://user@raw.test/ HTTP/1.1", "raw.test", "userinfo"),
        ("GET http://raw.test@other.test/ HTTP/1.1", "raw.test", "userinfo naming a vendor"),
        ("GET http:///p HTTP/1.1", "raw.test", "empty authority"),
        ("GET http://raw.test:/p HTTP/1.1", "raw.test", "empty port"),
        ("GET http://raw.test:99999/p HTTP/1.1", "raw.test", "port out of range"),
        ("GET /p HTTP/1.1", "raw.test@other.test", "userinfo in Host"),
        ("GET /p HTTP/1.1", "raw.test other.test", "space in Host"),
        ("GET /p HTTP/1.1", "raw.test/x", "slash in Host"),
        ("GET /p HTTP/1.1", "raw.test:80:80", "two ports"),
        ("GET //other.test/p HTTP/1.1", None, "no Host"),
        ("GET p HTTP/1.1", "raw.test", "relative target"),
        ("GET /p#f HTTP/1.1", "raw.test", "fragment"),
        ("GET /p q HTTP/1.1", "raw.test", "space in target"),
        ("GET /p HTTP/1.1 x", "raw.test", "junk after version"),
        ("GET  /p HTTP/1.1", "raw.test", "two spaces"),
        ("GET\t/p HTTP/1.1", "raw.test", "tab as separator"),
    ):
        lines = [line] + (["Host: " + host] if host else [])
        refused(H(*lines), why)


@test
def connection_cannot_strip_framing_or_routing():
    # Connection names fields to drop at this hop; naming Host, Content-Length or
    # Transfer-Encoding must not leave the vendor without them (or with a body it cannot frame).
    body = b"hello"
    for conn in ("close, Host", "Content-Length", "host, content-length", "Transfer-Encoding, Host"):
        e = fresh()
        rs, c = send(H("POST /h HTTP/1.1", "Host: raw.test", "Connection: " + conn,
                       "Content-Length: 5", body=body))
        eq([r.status for r in rs], [200], "answers for Connection: %s" % conn)
        time.sleep(0.1)
        reqs = e.v.requests()
        eq(len(reqs), 1, "requests for Connection: %s" % conn)
        eq((reqs[0]["host"], reqs[0]["body"]), ("raw.test", body), "for Connection: %s" % conn)
        check(field(reqs[0], "connection") is None, "Connection forwarded")
    reqs, _, _ = forwarded(H("POST /h HTTP/1.1", "Host: raw.test", "Connection: transfer-encoding",
                             "Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\n\r\n"))
    eq(reqs[0]["body"], b"hello")


@test
def hop_by_hop_and_upgrade_do_not_travel():
    reqs, rs, c = forwarded(H("GET /u HTTP/1.1", "Host: raw.test", "Connection: Upgrade, HTTP2-Settings",
                              "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA",
                              "Keep-Alive: 5", "Proxy-Connection: keep-alive", "TE: trailers",
                              "Proxy-Authorization: Basic eDp5"))
    names = [n for n, _ in reqs[0]["fields"]]
    for n in ("upgrade", "http2-settings", "keep-alive", "proxy-connection", "te", "proxy-authorization"):
        check(n not in names, "%s reached the vendor: %r" % (n, names))
    # no 101: the client's connection stays HTTP/1.1 and the next request is parsed as one
    c.send(H("GET /after HTTP/1.1", "Host: raw.test"))
    eq(c.read_response().status, 200)
    time.sleep(0.1)
    eq([r["target"] for r in env().v.requests()], ["/u", "/after"])
    # a client that took the upgrade for granted and speaks HTTP/2 next is refused, not forwarded
    e = fresh()
    rs, c = send(H("GET /u2 HTTP/1.1", "Host: raw.test", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c",
                   "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA") + w.PREFACE +
                 w.frame(w.HEADERS, w.END_HEADERS | w.END_STREAM, 1, w.hpack_encode(req2(path="/smuggled"))), 2)
    eq([r.status for r in rs][:1], [200])
    check(len(rs) == 1 or rs[1].status >= 400, "the preface after an upgrade attempt answered %r" % rs[1:])
    check(c.is_closed(2.0), "the connection stays open after an HTTP/2 preface in HTTP/1.1")
    eq([r["target"] for r in e.v.requests()], ["/u2"])
    reqs, _, c = forwarded(H("GET /ws HTTP/1.1", "Host: raw.test", "Connection: Upgrade", "Upgrade: websocket",
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"))
    check(field(reqs[0], "upgrade") is None, "Upgrade reached the vendor")


@test
def http10_keep_alive_is_framed():
    reqs, rs, c = forwarded(H("POST /a HTTP/1.0", "Host: raw.test", "Connection: keep-alive",
                              "Content-Length: 5", body=b"hello") +
                            H("GET /b HTTP/1.0", "Host: raw.test", "Connection: keep-alive"), 2)
    eq([(r["target"], r["body"]) for r in reqs], [("/a", b"hello"), ("/b", b"")])
    # an HTTP/1.0 request without keep-alive ends the connection: what follows is never forwarded
    e = fresh()
    rs, c = send(H("GET /a HTTP/1.0", "Host: raw.test") + H("GET /smuggled HTTP/1.1", "Host: raw.test"), 2)
    eq([r.status for r in rs], [200])
    time.sleep(0.1)
    eq([r["target"] for r in e.v.requests()], ["/a"])



# ---- the body the classifier reads is the body the vendor reads --------------------------------

PII_JSON = b'{"email": "anna.schmidt@example.com", "name": "Anna Schmidt"}'


def pii_cases():
    """(fields, body, why): a personal-data body to a vendor without a transfer basis, described
    by content fields a reader could take two ways (first field vs last, or the list)."""
    gz = gzip.compress(PII_JSON)
    return [
        ([("Content-Encoding", "identity"), ("Content-Encoding", "gzip")], gz, "two Content-Encoding lines"),
        ([("Content-Encoding", "gzip"), ("Content-Encoding", "identity")], gz, "two Content-Encoding lines (2)"),
        ([("Content-Encoding", "identity, gzip")], gz, "a Content-Encoding list"),
        ([("Content-Type", "text/plain"), ("Content-Encoding", "identity"), ("Content-Encoding", "gzip")], gz,
         "two Content-Encoding lines on text"),
        ([("Content-Type", "image/png"), ("Content-Type", "application/json")], PII_JSON,
         "two Content-Type lines"),
        ([("Content-Type", "application/octet-stream"), ("Content-Type", "application/json")], PII_JSON,
         "two Content-Type lines (2)"),
    ]


@test
def h1_content_fields_read_two_ways_are_refused():
    e = env()
    # the baseline: the same data described once is blocked (451)
    rs, _ = send(H("POST /pii HTTP/1.1", "Host: us.test", "Content-Type: application/json",
                   "Content-Encoding: gzip", "Content-Length: %d" % len(gzip.compress(PII_JSON)),
                   body=gzip.compress(PII_JSON)))
    eq(rs[0].status, 451, "gzip JSON with personal data")
    problems = []
    for fields, body, why in pii_cases():
        e.us.clear()
        lines = ["POST /pii HTTP/1.1", "Host: us.test"] + ["%s: %s" % f for f in fields]
        if not any(n == "Content-Type" for n, _ in fields):
            lines.append("Content-Type: application/json")
        rs, _ = send(H(*lines, "Content-Length: %d" % len(body), body=body))
        time.sleep(0.1)
        if not rs or rs[0].status not in (400, 451) or e.us.requests():
            problems.append("%s: answered %r, %d requests at the vendor" %
                            (why, rs and rs[0].status, len(e.us.requests())))
    # Connection naming them would drop them at this hop: the vendor would read the body
    # without the description it was classified under
    for conn in ("Content-Type", "close, content-encoding"):
        e.us.clear()
        rs, _ = send(H("POST /pii HTTP/1.1", "Host: us.test", "Content-Type: image/png", "Connection: " + conn,
                       "Content-Length: %d" % len(PII_JSON), body=PII_JSON))
        time.sleep(0.1)
        if not rs or rs[0].status != 400 or e.us.requests():
            problems.append("Connection: %s: answered %r, %d requests at the vendor" %
                            (conn, rs and rs[0].status, len(e.us.requests())))
    eq(problems, [])


@test
def h2_content_fields_read_two_ways_are_refused():
    e = env()
    problems = []
    for fields, body, why in pii_cases():
        e.us.clear()
        extra = [(n.lower(), v) for n, v in fields]
        if not any(n == "content-type" for n, _ in extra):
            extra.append(("content-type", "application/json"))
        got = h2_exchange(req2("POST", "/pii", "us.test", extra=extra), body=body)
        time.sleep(0.1)
        if (got[0] == "status" and got[1] not in (400, 451)) or e.us.requests():
            problems.append("%s: answered %r, %d requests at the vendor" % (why, got[:2], len(e.us.requests())))
    eq(problems, [])



# ---- HTTP/1.1: what follows an early answer ----------------------------------------------------

SMUGGLED = H("GET /smuggled HTTP/1.1", "Host: raw.test")


@test
def body_after_a_refusal_is_never_parsed_as_a_request():
    # Answered before the body was read (unknown vendor 403, body over max_body 413): the body
    # that follows, whatever it looks like, must not be taken for the next request.
    e = fresh()
    for host, why in (("unknown.test", "403"), ("small.test", "413")):
        body = SMUGGLED * 3
        for framing in ("cl", "chunked"):
            if framing == "cl":
                data = H("POST /x HTTP/1.1", "Host: " + host, "Content-Length: %d" % len(body), body=body)
            else:
                data = H("POST /x HTTP/1.1", "Host: " + host, "Transfer-Encoding: chunked",
                         body=b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            rs, c = send(data, 2)
            eq([r.status for r in rs], [int(why)], "%s (%s)" % (why, framing))
            check(c.is_closed(2.0), "the connection stays open after the early %s (%s)" % (why, framing))
    time.sleep(0.1)
    eq(e.v.requests(), [], "requests at the vendor")


@test
def pipelined_after_a_decision_on_the_whole_body():
    # 451 (and 403 without a body) answer a request whose framing was read to its end: the next
    # pipelined request is a request, and the refused body is not.
    e = fresh()
    body = b'{"email": "anna.schmidt@example.com", "x": "' + SMUGGLED.decode().replace("\r\n", " ").encode() + b'"}'
    data = (H("POST /pii HTTP/1.1", "Host: us.test", "Content-Type: application/json",
              "Content-Length: %d" % len(body), body=body) +
            H("GET /nope HTTP/1.1", "Host: unknown.test") + H("GET /next HTTP/1.1", "Host: raw.test"))
    rs, c = send(data, 3)
    eq([r.status for r in rs], [451, 403, 200])
    time.sleep(0.1)
    eq([r["target"] for r in e.v.requests()], ["/next"])


@test
def expect_continue_with_pipelined_data():
    reqs, rs, c = forwarded(H("POST /e HTTP/1.1", "Host: raw.test", "Expect: 100-continue",
                              "Content-Length: 5", body=b"hello") + H("GET /f HTTP/1.1", "Host: raw.test"), 2)
    eq([(r["target"], r["body"]) for r in reqs], [("/e", b"hello"), ("/f", b"")])
    check(all(field(r, "expect") is None for r in reqs), "Expect reached the vendor")
    # refused before the body (unknown vendor): the body sent anyway is not a request
    e = fresh()
    body = SMUGGLED
    rs, c = send(H("POST /e HTTP/1.1", "Host: unknown.test", "Expect: 100-continue",
                   "Content-Length: %d" % len(body), body=body), 2)
    eq([r.status for r in rs], [403])
    check(c.is_closed(2.0), "open after the refusal of an Expect request")
    eq(e.v.requests(), [])


# ---- vendor responses that do not end where they say ------------------------------------------

def poison_vendor():
    """A vendor whose answers to /bad/KIND leave extra bytes (a whole forged response) on its
    connection, or frame themselves ambiguously; everything else gets the default answer."""
    forged = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON"

    def respond(req, n):
        t = req["target"]
        if t == "/bad/extra":
            return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + forged
        if t == "/bad/late":
            return [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", forged]
        if t == "/bad/cl-te":
            return (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"2\r\nok\r\n0\r\n\r\n" + forged)
        if t == "/bad/204":
            return b"HTTP/1.1 204 No Content\r\nContent-Length: 47\r\n\r\n" + forged
        if t == "/bad/304":
            return b"HTTP/1.1 304 Not Modified\r\nContent-Length: 47\r\n\r\n" + forged
        if t == "/bad/100":
            return (b"HTTP/1.1 100 Continue\r\nContent-Length: 47\r\n\r\n" + forged +
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        if t == "/bad/head":
            return b"HTTP/1.1 200 OK\r\nContent-Length: 47\r\n\r\n" + forged
        if t == "/bad/chunked-extra":
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" + forged
        if t == "/bad/101":
            return b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + forged
        if t == "/bad/close":
            return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok" + forged
        if t == "/bad/http10":
            return b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok" + forged
        if t == "/bad/cl-list":
            return b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok" + forged
        if t == "/bad/te-identity":
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nok" + forged
        return RawVendor.default(req, n)
    return respond


@test
def vendor_leftovers_never_reach_the_next_caller():
    e = env()
    if not hasattr(e, "pv"):
        e.pv = RawVendor(poison_vendor())
        e.pgw = h.Gateway(h.gateway_config([h.vendor("poison", ["poison.test"], e.pv.port)], workers=1),
                          name="smuggling-poison").start()
    problems = []
    for kind in ("extra", "late", "cl-te", "204", "304", "100", "head", "chunked-extra", "te-identity", "101",
                 "close", "http10", "cl-list"):
        method = "HEAD" if kind == "head" else "GET"
        c = h.Conn(e.pgw.port())
        c.send(H("%s /bad/%s HTTP/1.1" % (method, kind), "Host: poison.test"))
        try:
            r = c.read_response(head=method == "HEAD")
            if b"POISON" in r.body:
                problems.append("%s: the caller got the bytes after the answer (%d %r)" % (kind, r.status, r.body))
        except h.Closed:
            pass
        c.close()
        time.sleep(0.3 if kind == "late" else 0.05)
        # the next callers, on other connections, get their own answers
        for i in range(3):
            c2 = h.Conn(e.pgw.port())
            c2.send(H("GET /next/%s/%d HTTP/1.1" % (kind, i), "Host: poison.test"))
            r2 = c2.read_response()
            if r2.status != 200 or not r2.body.endswith(b"GET /next/%s/%d 0" % (kind.encode(), i)):
                problems.append("after /bad/%s the next caller got %d %r" % (kind, r2.status, r2.body))
            c2.close()
    eq(problems, [])


# ---- HTTP/2 towards the gateway ----------------------------------------------------------------

def h2_exchange(fields, body=None, data_frames=None, end_with_headers=True):
    """One request on a new h2c connection, stream 1: HEADERS of `fields` (literal, in order),
    then DATA frames (body as one, or data_frames). Returns the answer: ("status", code, body),
    ("reset", error code) or ("closed", None) (GOAWAY or EOF)."""
    e = env()
    c = w.H2Conn(e.port)
    h.defer(c.sock.close)
    block = w.hpack_encode(fields)
    frames = data_frames if data_frames is not None else ([body] if body is not None else [])
    flags = w.END_HEADERS | (w.END_STREAM if not frames else 0)
    out = w.frame(w.HEADERS, flags, 1, block)
    for i, d in enumerate(frames):
        out += w.frame(w.DATA, w.END_STREAM if i == len(frames) - 1 else 0, 1, d)
    c.sock.sendall(out)
    status, rbody = None, b""
    while True:
        f = c.read()
        if f is None:
            return ("closed", None) if status is None else ("status", status, rbody)
        ftype, flags, sid, payload = f
        if ftype == w.GOAWAY and status is None:
            return ("closed", None)
        if sid != 1:
            continue
        if ftype == w.RST_STREAM:
            return ("reset", struct.unpack(">I", payload)[0]) if status is None else ("status", status, rbody)
        if ftype == w.HEADERS and status is None:
            status = int(dict(payload)[":status"])
        elif ftype == w.DATA:
            rbody += payload
        if flags & w.END_STREAM:
            return ("status", status, rbody)


def req2(method="GET", path="/h2", authority="raw.test", extra=()):
    return [(":method", method), (":scheme", "http"), (":path", path), (":authority", authority)] + list(extra)


def h2_refused(fields, why, body=None, data_frames=None):
    """Refused (400, a stream reset or the connection closed) and nothing reaches a vendor."""
    e = fresh()
    got = h2_exchange(fields, body, data_frames)
    check(got[0] in ("reset", "closed") or got[1] == 400, "%s: answered %r" % (why, got))
    time.sleep(0.1)
    eq(e.v.requests() + e.other.requests(), [], "%s: requests at the vendors" % why)
    return got


@test
def h2_connection_specific_and_framing_fields_are_refused():
    for extra, why in (
        ([("transfer-encoding", "chunked")], "transfer-encoding"),
        ([("connection", "close")], "connection"),
        ([("keep-alive", "timeout=5")], "keep-alive"),
        ([("proxy-connection", "keep-alive")], "proxy-connection"),
        ([("upgrade", "h2c")], "upgrade"),
        ([("te", "gzip")], "te: gzip"),
        ([("te", "trailers, gzip")], "te: trailers, gzip"),
        ([("content-length", "5"), ("content-length", "6")], "two content-lengths"),
        ([("content-length", "-1")], "negative content-length"),
    ):
        h2_refused(req2("POST", extra=extra), why, body=b"hello")


@test
def h2_content_length_must_match_the_data():
    h2_refused(req2("POST", extra=[("content-length", "10")]), "DATA shorter", body=b"hello")
    h2_refused(req2("POST", extra=[("content-length", "3")]), "DATA longer", body=b"hello")
    h2_refused(req2("POST", extra=[("content-length", "0")]), "DATA after 0", body=b"hello")
    h2_refused(req2("POST", extra=[("content-length", "4")]), "DATA over frames", data_frames=[b"he", b"llo"])


@test
def h2_bytes_that_would_split_the_vendors_request_are_refused():
    bad = [
        (req2(extra=[("x-a", "1\r\nX-Injected: 1")]), "CRLF in a value"),
        (req2(extra=[("x-a", "1\nX-Injected: 1")]), "LF in a value"),
        (req2(extra=[("x-a", "1\rX")]), "CR in a value"),
        (req2(extra=[("x-a", "1\x00X")]), "NUL in a value"),
        (req2(extra=[("x-a\r\nx-b", "1")]), "CRLF in a name"),
        (req2(extra=[("x a", "1")]), "space in a name"),
        (req2(extra=[("x:a", "1")]), "colon in a name"),
        (req2(extra=[("X-Upper", "1")]), "uppercase name"),
        (req2(extra=[("", "1")]), "empty name"),
        (req2(path="/a HTTP/1.1\r\nHost: other.test\r\n\r\nGET /b"), "CRLF in :path"),
        (req2(path="/a b"), "space in :path"),
        (req2(path="/a\tb"), "tab in :path"),
        (req2(path="/a#b"), "fragment in :path"),
        (req2(path="http://other.test/x"), "absolute URI in :path"),
        (req2(path="other.test/x"), "relative :path"),
        (req2(path=""), "empty :path"),
        (req2(path="*"), ":path * with GET"),
        (req2(method="GET /x HTTP/1.1\r\n"), "CRLF in :method"),
        (req2(method="G ET"), "space in :method"),
        (req2(method=""), "empty :method"),
        (req2(authority="raw.test\r\nX: 1"), "CRLF in :authority"),
        (req2(authority="raw.test other.test"), "space in :authority"),
        (req2(authority="user@raw.test"), "userinfo in :authority"),
        (req2(authority="raw.test/x"), "slash in :authority"),
        (req2() + [(":path", "/again")], "duplicate :path"),
        (req2() + [(":authority", "other.test")], "duplicate :authority"),
        (req2() + [(":method", "POST")], "duplicate :method"),
        ([(":method", "GET"), (":scheme", "http"), (":authority", "raw.test")], "no :path"),
        (req2()[:1] + [("x", "1")] + req2()[1:], "pseudo-field after a regular one"),
        (req2() + [(":foo", "1")], "unknown pseudo-field"),
        (req2(extra=[("host", "other.test")]), ":authority and host disagree"),
        (req2(extra=[("host", "raw.test"), ("host", "other.test")]), "two hosts"),
    ]
    problems = []
    for fields, why in bad:
        try:
            h2_refused(fields, why)
        except h.Failure as err:
            problems.append(str(err))
    eq(problems, [])


@test
def h2_authority_and_host_that_agree_are_one_request():
    for extra in ([("host", "raw.test")], [("host", "RAW.test")]):
        e = fresh()
        got = h2_exchange(req2(extra=extra))
        eq(got[:2], ("status", 200), "with %r" % extra)
        time.sleep(0.1)
        reqs = e.v.requests()
        eq([(r["host"], r["target"]) for r in reqs], [("raw.test", "/h2")])
    # host alone routes like :authority (RFC 9113 8.3.1)
    e = fresh()
    got = h2_exchange([(":method", "GET"), (":scheme", "http"), (":path", "/h"), ("host", "raw.test")])
    eq(got[:2], ("status", 200))
    eq([r["host"] for r in e.v.requests()], ["raw.test"])


@test
def h2_connect_is_not_tunnelled():
    e = fresh()
    got = h2_exchange([(":method", "CONNECT"), (":authority", "raw.test:443")])
    check(got[0] != "status" or got[1] in (400, 405), "CONNECT answered %r" % (got,))
    time.sleep(0.1)
    eq(e.v.requests(), [])


@test
def h2_streams_become_exactly_one_request_each():
    e = fresh()
    c = w.H2Conn(e.port)
    h.defer(c.sock.close)
    out = b""
    bodies = {1: b"", 3: b"a=1", 5: b"x" * 60000, 7: b"tail"}  # within the default windows
    for sid, body in bodies.items():
        fields = req2("POST" if body else "GET", "/s%d?q=%d" % (sid, sid), extra=[("x-sid", str(sid))])
        if sid == 7:
            fields += [("te", "trailers")]
        out += w.frame(w.HEADERS, w.END_HEADERS | (0 if body else w.END_STREAM), sid, w.hpack_encode(fields))
        for i in range(0, len(body), 16384):
            last = i + 16384 >= len(body)
            out += w.frame(w.DATA, w.END_STREAM if last and sid != 7 else 0, sid, body[i:i + 16384])
        if sid == 7:
            out += w.frame(w.HEADERS, w.END_HEADERS | w.END_STREAM, 7,
                           w.hpack_encode([("x-trailer", "t"), ("host", "other.test")]))
    c.sock.sendall(out)
    done = set()
    while len(done) < 4:
        f = c.read()
        check(f is not None, "the gateway closed after %r" % sorted(done))
        ftype, flags, sid, payload = f
        check(ftype != w.RST_STREAM, "stream %d reset" % sid)
        if flags & w.END_STREAM and ftype in (w.DATA, w.HEADERS):
            done.add(sid)
    time.sleep(0.1)
    reqs = sorted(e.v.requests(), key=lambda r: r["target"])
    eq([(r["target"], r["body"], r["host"], field(r, "x-sid")) for r in reqs],
       [("/s%d?q=%d" % (s, s), bodies[s], "raw.test", str(s)) for s in sorted(bodies)])
    eq(reqs[-1]["trailers"], [("x-trailer", "t")], "trailers of stream 7")
    check(field(reqs[-1], "te") is None, "te reached the vendor")



# ---- bodies cut short while they stream to the vendor ----------------------------------------

def cut_connections_are_closed(e, why):
    """Every vendor connection holding an incomplete request is closed by the gateway (never
    pooled: its next request would be read as the rest of the body); then a new request is
    forwarded whole."""
    def settled():
        for data, ended in e.v.states():
            if ended:
                continue
            try:
                split_requests(data)
            except Malformed:
                return False
        return True
    h.wait_until(settled, 5.0, msg="%s: a vendor connection with a cut request stays open" % why)
    for i in range(3):
        c = h.Conn(e.port)
        c.send(H("GET /after-cut/%d HTTP/1.1" % i, "Host: raw.test"))
        eq(c.read_response().status, 200, "%s: the next request" % why)
        c.close()
    time.sleep(0.1)
    got = []
    for data, ended in e.v.states():
        try:
            got += [r["target"] for r in split_requests(data)]
        except Malformed:
            check(ended, "%s: a connection with a cut request is still open" % why)
    eq([t for t in got if t.startswith("/after-cut")], ["/after-cut/%d" % i for i in range(3)], why)


@test
def h1_client_gone_mid_streamed_body():
    # Over max_body_scan, the body streams on to the vendor; the client then leaves mid-body.
    for framing in ("cl", "chunked"):
        e = fresh()
        c = h.Conn(e.port)
        part = b"x" * 100000
        if framing == "cl":
            c.send(H("POST /cut HTTP/1.1", "Host: raw.test", "Content-Length: 200000") + part)
        else:
            c.send(H("POST /cut HTTP/1.1", "Host: raw.test", "Transfer-Encoding: chunked") +
                   b"%x\r\n%s\r\n" % (len(part), part) + b"10\r\n0123")
        h.wait_until(lambda: any(len(d) > 70000 for d, _ in e.v.states()), 5.0, msg="the body streams on")
        c.close()
        cut_connections_are_closed(e, "h1 " + framing)


@test
def h2_stream_cut_or_lying_mid_streamed_body():
    for how in ("rst", "short", "long"):
        e = fresh()
        c = w.H2Conn(e.port)
        h.defer(c.sock.close)
        cl = {"rst": 200000, "short": 200000, "long": 80000}[how]
        c.sock.sendall(w.frame(w.HEADERS, w.END_HEADERS, 1, w.hpack_encode(
            req2("POST", "/cut", extra=[("content-length", str(cl))]))))
        sent = 0
        while sent < 64000:  # within the default windows, over max_body_scan after the next
            c.sock.sendall(w.frame(w.DATA, 0, 1, b"y" * 16000))
            sent += 16000
        # the gateway's SETTINGS and WINDOW_UPDATEs open more room; read them as they come
        t0 = time.monotonic()
        while sent < 96000 and time.monotonic() - t0 < 5:
            f = c.read(0.5)
            if f and f[0] == w.WINDOW_UPDATE:
                c.sock.sendall(w.frame(w.DATA, 0, 1, b"y" * 16000))
                sent += 16000
        h.wait_until(lambda: any(len(d) > 70000 for d, _ in e.v.states()), 5.0, msg="the body streams on")
        if how == "rst":
            c.sock.sendall(w.frame(w.RST_STREAM, 0, 1, struct.pack(">I", 8)))
        elif how == "short":
            c.sock.sendall(w.frame(w.DATA, w.END_STREAM, 1, b"end"))
        else:
            c.sock.sendall(w.frame(w.DATA, w.END_STREAM, 1, b"z" * 1000))
        cut_connections_are_closed(e, "h2 " + how)



# ---- fields the gateway extends, names it routes, and OPTIONS ---------------------------------

def record_at(path, timeout=3.0):
    """The record of the one exchange whose path is `path` (paths are unique per test)."""
    rpath = env().gw.cfg["records"]["path"]
    got = []

    def found():
        got[:] = [r for r in h.read_records(rpath) if r["path"] == path] if os.path.exists(rpath) else []
        return got
    h.wait_until(found, timeout, msg="a record for %s" % path)
    eq(len(got), 1, "records for %s" % path)
    return got[0]


@test
def repeated_forwarding_fields_are_one_list_at_the_vendor():
    # RFC 9110 5.3: several X-Forwarded-For (or Via) field lines are one list, in order; the
    # gateway appends its hop to all of it, not to the last line only. Each line is still
    # classified (client_ip: device data).
    xff = [("X-Forwarded-For", "203.0.113.1"), ("X-Forwarded-For", "198.51.100.2")]
    reqs, _, _ = forwarded(H("GET /xff-h1 HTTP/1.1", "Host: raw.test", "%s: %s" % xff[0], "Via: 1.0 first",
                             "X-Mid: 1", "%s: %s" % xff[1], "Via: 1.1 second"))
    eq(field(reqs[0], "x-forwarded-for"), "203.0.113.1, 198.51.100.2, 127.0.0.1", "h1 X-Forwarded-For")
    eq(field(reqs[0], "via"), "1.0 first, 1.1 second, 1.1 bordergate", "h1 Via")
    rec = record_at("/xff-h1")
    eq((rec["detections"].get("client_ip"), "device" in rec["categories"]), (2, True), "h1 record")
    e = fresh()
    got = h2_exchange(req2(path="/xff-h2", extra=[("x-forwarded-for", "203.0.113.1"), ("via", "1.0 first"),
                                                  ("x-mid", "1"), ("x-forwarded-for", "198.51.100.2")]))
    eq(got[:2], ("status", 200), "h2 answer")
    time.sleep(0.1)
    reqs = e.v.requests()
    eq(len(reqs), 1, "h2 requests at the vendor")
    eq(field(reqs[0], "x-forwarded-for"), "203.0.113.1, 198.51.100.2, 127.0.0.1", "h2 x-forwarded-for")
    eq(field(reqs[0], "via"), "1.0 first, 2 bordergate", "h2 via")
    rec = record_at("/xff-h2")
    eq((rec["detections"].get("client_ip"), "device" in rec["categories"]), (2, True), "h2 record")


# Hosts that RFC 3986's reg-name allows (sub-delims, percent-encoding) but no DNS name has: each
# would match the wildcard "*.wild.test" if it were routed.
ODD_HOSTS = ["a,b.wild.test", "a;b.wild.test", "a'b.wild.test", "a!b.wild.test", "a$b.wild.test",
             "a&b.wild.test", "a(b).wild.test", "a*b.wild.test", "a+b.wild.test", "a=b.wild.test",
             "a~b.wild.test", "a%41.wild.test", "x,raw.test", "a,b.wild.test:80"]


@test
def h1_hosts_that_are_no_dns_name_are_refused():
    problems = []
    for host in ODD_HOSTS:
        for data, why in ((H("GET /odd HTTP/1.1", "Host: " + host), "Host %s" % host),
                          (H("GET http://%s/odd HTTP/1.1" % host, "Host: raw.test"), "absolute-form %s" % host)):
            try:
                refused(data, why)
            except h.Failure as err:
                problems.append(str(err))
    eq(problems, [])
    # names that are DNS names still route: case, digits, '-', '_', a port, a trailing dot
    for host in ("API.wild.test", "a-1.wild.test", "a_b.wild.test", "x.wild.test:8080", "raw.test."):
        reqs, _, _ = forwarded(H("GET /dns HTTP/1.1", "Host: " + host))
        eq(reqs[0]["host"], host, "Host at the vendor")


@test
def h2_hosts_that_are_no_dns_name_are_refused():
    problems = []
    for host in ODD_HOSTS:
        for fields, why in ((req2(authority=host), ":authority %s" % host),
                            ([(":method", "GET"), (":scheme", "http"), (":path", "/odd"), ("host", host)],
                             "h2 host %s" % host)):
            try:
                h2_refused(fields, why)
            except h.Failure as err:
                problems.append(str(err))
    eq(problems, [])
    e = fresh()
    eq(h2_exchange(req2(authority="a_b-1.WILD.test"))[:2], ("status", 200), "a DNS name under the wildcard")


@test
def options_asks_about_the_server_in_asterisk_form():
    # RFC 9112 3.2.4: OPTIONS to an absolute-form target with an empty path and no query is
    # forwarded as "OPTIONS *"; a path or a query keeps the origin-form.
    for target, want in (("http://raw.test", "*"), ("http://raw.test:80", "*"), ("http://raw.test/", "/"),
                         ("http://raw.test?q=1", "/?q=1"), ("*", "*")):
        reqs, _, _ = forwarded(H("OPTIONS %s HTTP/1.1" % target, "Host: raw.test"))
        eq((reqs[0]["method"], reqs[0]["target"]), ("OPTIONS", want), "OPTIONS %s at the vendor" % target)
    e = fresh()
    got = h2_exchange(req2(method="OPTIONS", path="*"))
    eq(got[:2], ("status", 200), "h2 OPTIONS *")
    time.sleep(0.1)
    eq([(r["method"], r["target"]) for r in e.v.requests()], [("OPTIONS", "*")], "h2 OPTIONS * at the vendor")



@test
def gateways_exit_cleanly():
    # Last: after all of the above, SIGTERM drains and exits 0 (under SANITIZE, a report of
    # memory misuse or a leak fails here).
    e = env()
    for gw in (e.gw, getattr(e, "pgw", None)):
        if gw is not None:
            eq(gw.stop(expect=None), 0, "exit status")



if __name__ == "__main__":
    h.main()
