#!/usr/bin/env python3
"""test_vendor_chaos.py -- a seeded randomized test of the gateway's vendor side: well-behaved
HTTP/1.1 clients, a misbehaving HTTP/1.1 vendor.

The vendor (ChaosVendor, raw sockets, one thread per connection, keep-alive) answers each
request with a plan drawn from random.Random(seed, marker, attempt): well-formed answers
(Content-Length, chunked with extensions and trailers, close-delimited, HTTP/1.0, 204/304/HEAD,
1xx interim answers first, many headers, written in small pieces with pauses, answered before
the request body was read) and malformed or ambiguous ones (Content-Length with
Transfer-Encoding, two Content-Lengths, bytes beyond the framing, bad chunk sizes, bare LF,
obs-fold, NUL, a status line that is not HTTP/1.x, a head over the gateway's limit, short
bodies, resets, silence, unsolicited bytes on an idle pooled connection). Every request
carries a unique marker; well-formed answers echo it in a header and the body. Extra bytes are
a complete response of their own ("SMUGGLED-..."), so a gateway that reuses a desynchronised
connection hands a later client someone else's answer, which the client sees.

Judged after the run, with the vendor's log of what it did for each marker:
- a well-formed answer reaches its client exactly (status, the vendor's X-* fields and
  Content-Type, body byte for byte, allowed trailers);
- an answer that is malformed before its head completes is a 502; one that breaks after the head
  was relayed leaves the client with an incomplete body and a closed connection (or a 502);
  silence is a 504; a request the vendor never answered is a 502/503, never a 200;
- no client ever sees another request's marker or a smuggled answer, and the vendor never
  receives a request on a connection after an ambiguous answer on it;
- the gateway stays up, its descriptors return to the baseline, its RSS stops growing, the
  records verify with unique ids and match /metrics, and SIGTERM exits 0.

vendor_chaos_http2 runs the same clients against a raw HTTP/2 vendor over TLS (H2ChaosVendor,
frames from h2wire.py): RST_STREAM before and mid-answer, REFUSED_STREAM, GOAWAY with streams
in flight, heads without :status, DATA beyond or short of content-length, SETTINGS, PING, answers
waiting for WINDOW_UPDATE. The deterministic cases the campaigns found come first.

CHAOS_SECONDS (default 10; CHAOS_SECONDS_H2 for the HTTP/2 vendor, default 6) and CHAOS_SEED (default: random, printed) choose the run; a failure
prints the seed, and CHAOS_SEED=that reruns the same draws (thread timing still varies).
"""
import os
import random
import re
import select
import socket
import struct
import threading
import time

import harness as h
import h2wire
from harness import check, eq, test

SECONDS = float(os.environ.get("CHAOS_SECONDS", "10"))
SECONDS_H2 = float(os.environ.get("CHAOS_SECONDS_H2", str(min(SECONDS, 6))))
SEED = int(os.environ.get("CHAOS_SEED", str(random.SystemRandom().randrange(1, 1 << 31))))
CLIENTS = int(os.environ.get("CHAOS_CLIENTS", "12"))
ASAN = "asan" in h.BUILD
UPSTREAM_TIMEOUT = 2.0
# A request that reaches a connection this long after the vendor wrote unsolicited bytes on it
# is a gateway bug (it had time to read them and drop the connection); sooner is a race that no
# HTTP/1.1 client can win.
RACE_WINDOW = 0.5
# A marker ends in "-": a body cut short inside someone's marker is not that marker.
MARKER_RE = re.compile(rb"mk\d+t\d+n\d+-")
LETTERS = b"abcdefghijklmnopqrstuvwxyz"

# Outcome classes of a plan.
EXACT = "exact"          # the client gets the answer exactly
BEFORE_HEAD = "502"      # broken before the head completed: 502
AFTER_HEAD = "broken"    # broken after the head: incomplete body + close (or 502)
TIMEOUT = "504"

# Plans after which the vendor's connection must never carry another request.
POISON = {"cl_extra", "chunked_extra", "nobody_extra", "big_extra", "silent", "bad_chunk",
          "chunk_overflow", "chunk_no_crlf"}


def _filler(rng, n):
    return bytes(rng.choice(LETTERS) for _ in range(min(n, 64))) * (n // 64 + 1) if n else b""


def body_for(rng, marker, n):
    """A body of about n bytes that starts with the marker."""
    b = marker.encode() + b"|" + _filler(rng, max(0, n))
    return b[:max(n, len(marker) + 1)]


def reason(status):
    return {100: "Continue", 103: "Early Hints", 200: "OK", 201: "Created", 203: "Non-Authoritative",
            204: "No Content", 304: "Not Modified", 404: "Not Found", 410: "Gone", 418: "Teapot",
            500: "Internal Server Error", 101: "Switching Protocols"}.get(status, "X")


def head_bytes(status, fields, version="HTTP/1.1", eol=b"\r\n"):
    lines = [("%s %d %s" % (version, status, reason(status))).encode()]
    lines += [(b"%s: %s" % (n.encode(), v.encode() if isinstance(v, str) else v)) for n, v in fields]
    return eol.join(lines) + eol + eol


def chunked(rng, body, trailers=()):
    out = bytearray()
    i = 0
    while i < len(body):
        n = rng.choice([1, 7, 100, 1000, 4096, rng.randrange(1, 20000)])
        piece = body[i:i + n]
        ext = rng.choice([b"", b"", b";x=1", b";name", b' ; q="a b"', b";a=b;c"])
        out += b"%x%s\r\n%s\r\n" % (len(piece), ext, piece)
        i += n
    out += b"0\r\n" + b"".join(b"%s: %s\r\n" % (n.encode(), v.encode()) for n, v in trailers) + b"\r\n"
    return bytes(out)


def smuggled(kind, cid):
    m = ("SMUGGLED-%s-%d" % (kind, cid)).encode()
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Marker: %s\r\n\r\n%s" % (len(m), m, m)


class Plan:
    """What the vendor does for one request: bytes to write (in pieces with pauses), what then
    (keep, close, reset, hold, unsolicited) and what the client must see."""

    def __init__(self, name, outcome):
        self.name, self.outcome = name, outcome
        self.data = b""
        self.after = "keep"
        self.early = False        # answer before reading the request body
        self.status = None
        self.fields = []          # fields the client must see (name, value)
        self.body = b""
        self.trailers = []
        self.pieces = False
        self.tail = 0             # bytes at the end that must leave with the byte before them


def draw_plan(rng, method, marker, cid):
    """The vendor's answer to one request."""
    head_req = method == "HEAD"
    status = rng.choice([200, 200, 200, 201, 203, 404, 410, 418, 500])
    size = rng.choice([0, 1, 10, 100, 1000, 5000, 20000, rng.randrange(0, 70000)])
    fields = [("X-Marker", marker), ("Content-Type", rng.choice(["text/plain", "application/octet-stream"]))]
    for i in range(rng.choice([0, 1, 3])):
        fields.append(("X-H-%d" % i, "v%d-%s" % (i, _filler(rng, 12).decode())))
    body = b"" if head_req else body_for(rng, marker, size)
    r = rng.random()
    kinds_ok = ["cl", "cl", "chunked", "chunked", "close", "http10", "nobody", "heavy", "ka_close"]
    if method == "POST":
        kinds_ok.append("early")
    kinds_bad = ["cl_te", "two_cl", "bad_cl", "te_gzip", "te_http10", "bare_lf", "obs_fold", "nul_hdr",
                 "bad_status", "huge_head", "s101", "ws_colon", "interim_body", "reset_mid_head", "silent",
                 "nobody_extra", "unsolicited"]
    if not head_req:
        kinds_bad += ["cl_extra", "chunked_extra", "big_extra", "bad_chunk", "chunk_overflow", "chunk_no_crlf",
                      "short_close", "reset_mid_body", "chunked_trunc_close"]
    kind = rng.choice(kinds_ok) if r < 0.55 else rng.choice(kinds_bad)
    if kind == "silent" and rng.random() < 0.7:
        kind = "cl"  # silence costs UPSTREAM_TIMEOUT: keep it rare
    p = Plan(kind, EXACT)
    p.status, p.body = status, body
    interim = b""
    if rng.random() < 0.15:
        for _ in range(rng.randrange(1, 4)):
            if rng.random() < 0.5:
                interim += b"HTTP/1.1 100 Continue\r\n\r\n"
            else:
                interim += b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
    conn_close = rng.random() < 0.1
    extra_fields = [("Connection", "close")] if conn_close else []
    if conn_close:
        p.after = "close"

    def cl_fields():
        # a HEAD answer carries the length a GET would have had
        return fields + [("Content-Length", str(size if head_req else len(body)))] + extra_fields

    if kind in ("cl", "ka_close", "early", "unsolicited", "cl_extra", "heavy"):
        f = cl_fields()
        if kind == "heavy":
            f = fields + [("X-Heavy-%03d" % i, "h" * rng.randrange(20, 120)) for i in range(100)] + f[len(fields):]
        p.fields = fields if kind != "heavy" else f[:-1 - len(extra_fields)]
        p.data = head_bytes(status, f) + body
        if kind == "ka_close":
            p.after = "close_later"
        elif kind == "early":
            p.early = True
        elif kind == "unsolicited" and not conn_close:
            p.after = "unsolicited"
        elif kind == "cl_extra":
            p.data += smuggled(kind, cid)
    elif kind in ("chunked", "chunked_extra"):
        trl = [("X-Trl-%d" % i, "t%d" % i) for i in range(rng.choice([0, 0, 1, 2]))]
        p.fields, p.trailers = fields, trl
        p.data = head_bytes(status, fields + [("Transfer-Encoding", "chunked")] + extra_fields)
        if not head_req:
            p.data += chunked(rng, body, trl)
        if kind == "chunked_extra":
            p.data += smuggled(kind, cid)
    elif kind == "big_extra":
        # A response that ends at (or just before) the end of the gateway's 64 KiB read, then a
        # whole response more: the extra bytes come in the next read.
        hb = head_bytes(status, fields + [("Content-Length", "00000")])
        n = 65536 - len(interim) - len(hb) - rng.choice([0, 0, 1, 2, 100])
        body = p.body = body_for(rng, marker, n)
        p.fields = fields
        p.data = head_bytes(status, fields + [("Content-Length", "%05d" % len(body))]) + body + smuggled(kind, cid)
    elif kind == "close":
        p.fields = fields
        p.data = head_bytes(status, fields)
        p.data += body
        p.after = "close"
        if head_req or status in (204, 304):
            p.name = kind = "cl"
            p.data = head_bytes(status, cl_fields()) + body
    elif kind == "http10":
        ka = rng.random() < 0.5
        f = fields + [("Content-Length", str(len(body)))] + ([("Connection", "keep-alive")] if ka else [])
        p.fields = fields
        p.data = head_bytes(status, f, version="HTTP/1.0") + body
        p.after = "keep" if ka and not conn_close else "close"
    elif kind in ("nobody", "nobody_extra"):
        st = rng.choice([204, 304]) if not head_req else status
        p.status, p.body = st, b""
        p.fields = [x for x in fields if x[0] != "Content-Type"] if st == 204 else fields
        f = list(p.fields)
        if st == 304 or head_req:
            f.append(("Content-Length", str(size)) if rng.random() < 0.7 else ("Transfer-Encoding", "chunked"))
        p.data = head_bytes(st, f + extra_fields)
        if kind == "nobody_extra":
            p.data += smuggled(kind, cid)
    elif kind in ("bad_chunk", "chunk_overflow", "chunk_no_crlf", "chunked_trunc_close"):
        p.outcome = AFTER_HEAD
        good = chunked(rng, body[:len(body) // 2])[:-5]  # without the last chunk
        bad = {"bad_chunk": b"zz\r\nxx\r\n", "chunk_overflow": b"1ffffffffffffffff\r\nabc\r\n",
               "chunk_no_crlf": b"3\r\nabcd\r\n", "chunked_trunc_close": b""}[kind]
        p.data = head_bytes(status, fields + [("Transfer-Encoding", "chunked")]) + good + bad
        p.after = "close" if kind == "chunked_trunc_close" else "keep"
    elif kind in ("short_close", "reset_mid_body"):
        p.outcome = AFTER_HEAD
        body = body or b"x"
        p.data = head_bytes(status, fields + [("Content-Length", str(len(body) + 10))]) + body[:len(body) // 2]
        p.after = "close" if kind == "short_close" else "reset"
    elif kind == "silent":
        p.outcome = TIMEOUT
        p.after = "hold"
    else:
        p.outcome = BEFORE_HEAD
        cl = ("Content-Length", str(len(body)))
        bad = {
            "cl_te": lambda: head_bytes(status, fields + [cl, ("Transfer-Encoding", "chunked")]) + chunked(rng, body),
            "two_cl": lambda: head_bytes(status, fields + [cl, ("Content-Length", str(len(body) + 1))]) + body,
            "bad_cl": lambda: head_bytes(status, fields + [("Content-Length", rng.choice(["abc", "-1", "1 2", "+5", "0x10", "99999999999999999999"]))]) + body,
            "te_gzip": lambda: head_bytes(status, fields + [("Transfer-Encoding", rng.choice(["gzip", "gzip, chunked", "chunked, gzip", "chunked, chunked", "xchunked"]))]) + chunked(rng, body),
            "te_http10": lambda: head_bytes(status, fields + [("Transfer-Encoding", "chunked")], version="HTTP/1.0") + chunked(rng, body),
            "bare_lf": lambda: head_bytes(status, fields + [cl], eol=b"\n") + body,
            "obs_fold": lambda: head_bytes(status, fields + [cl, ("X-Fold", "a\r\n  b")]) + body,
            "nul_hdr": lambda: head_bytes(status, fields + [cl, ("X-Nul", b"a\0b")]) + body,
            "bad_status": lambda: rng.choice([b"HTTP/2.0 200 OK", b"HTTP/1.2 200 OK", b"ICY 200 OK", b"HTTP/1.1 2000 OK",
                                              b"HTTP/1.1 099 X", b"HTTP/1.1 600 X", b"http/1.1 200 OK", b"HTTP/1.1 20 OK",
                                              b" HTTP/1.1 200 OK", b"\x16\x03\x01\x00\x05hello"])
            + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
            "huge_head": lambda: head_bytes(status, fields + [("X-Big-%d" % i, "b" * 1000) for i in range(70)] + [cl]) + body,
            "s101": lambda: b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n" + head_bytes(status, fields + [cl]) + body,
            "ws_colon": lambda: head_bytes(status, fields + [("Content-Length ", str(len(body)))]) + body,
            "interim_body": lambda: b"HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\nhello" + head_bytes(status, fields + [cl]) + body,
            "reset_mid_head": lambda: head_bytes(status, fields + [cl])[:rng.randrange(1, 40)],
        }[kind]
        p.data = bad()
        if kind == "reset_mid_head":
            p.after = "reset"
    p.data = interim + p.data
    if kind in ("cl_extra", "chunked_extra", "nobody_extra", "big_extra"):
        p.tail = len(smuggled(kind, cid)) + 1  # the extra bytes arrive with the answer's last byte
    p.pieces = rng.random() < 0.25
    return p


# --------------------------------------------------------------------------------------------
# The vendor

class VendorConn:
    def __init__(self, sock, cid):
        self.sock, self.cid, self.buf = sock, cid, bytearray()
        self.requests = 0
        self.poisoned = None  # (plan name, monotonic time) after an ambiguous answer


class ChaosVendor:
    """A raw-socket HTTP/1.1 vendor that answers each request by draw_plan()."""

    def __init__(self, seed):
        self.seed = seed
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1024)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.log = {}          # marker -> [plan name, ...] in order
        self.plans = {}        # marker -> the last Plan
        self.violations = []   # strings
        self.raced = set()     # markers that reached a connection just after its unsolicited bytes
        self.conns = []
        self.nconn = 0
        self.nreq = 0
        self.nreused = 0       # requests on a connection's second or later turn
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.nconn += 1
                vc = VendorConn(s, self.nconn)
                self.conns.append(vc)
            threading.Thread(target=self._serve, args=(vc,), daemon=True).start()

    def close_all(self):
        """Close every connection (the gateway's pooled ones go away)."""
        with self.lock:
            conns, self.conns = self.conns, []
        for vc in conns:
            try:
                vc.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.stopping = True
        try:
            self.lsock.close()
        except OSError:
            pass
        self.close_all()

    # -- reading requests

    def _fill(self, vc):
        d = vc.sock.recv(65536)
        if not d:
            raise EOFError()
        vc.buf += d

    def _read_head(self, vc):
        while b"\r\n\r\n" not in vc.buf:
            self._fill(vc)
        i = vc.buf.index(b"\r\n\r\n")
        head = bytes(vc.buf[:i]).decode("latin-1")
        del vc.buf[:i + 4]
        lines = head.split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        fields = [tuple(x.strip() for x in ln.split(":", 1)) for ln in lines[1:]]
        return method, target, dict((n.lower(), v) for n, v in fields)

    def _read_body(self, vc, hdrs):
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            while len(vc.buf) < n:
                self._fill(vc)
            body = bytes(vc.buf[:n])
            del vc.buf[:n]
            return body
        if "chunked" in hdrs.get("transfer-encoding", ""):
            body = bytearray()
            while True:
                while b"\r\n" not in vc.buf:
                    self._fill(vc)
                i = vc.buf.index(b"\r\n")
                n = int(bytes(vc.buf[:i]).split(b";")[0], 16)
                del vc.buf[:i + 2]
                if n == 0:
                    while True:
                        while b"\r\n" not in vc.buf:
                            self._fill(vc)
                        i = vc.buf.index(b"\r\n")
                        del vc.buf[:i + 2]
                        if i == 0:
                            return bytes(body)
                while len(vc.buf) < n + 2:
                    self._fill(vc)
                body += vc.buf[:n]
                del vc.buf[:n + 2]
        return b""

    # -- answering

    def _send(self, vc, plan, rng):
        data = plan.data
        if not plan.pieces or len(data) < 2:
            vc.sock.sendall(data)
            return
        span = range(1, max(2, len(data) - plan.tail))
        cuts = sorted(rng.sample(span, min(len(span), rng.randrange(1, 8))))
        prev = 0
        for c in cuts + [len(data)]:
            vc.sock.sendall(data[prev:c])
            prev = c
            time.sleep(rng.choice([0, 0, 0.001, 0.005, 0.02]))

    def _reset(self, vc):
        vc.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        vc.sock.close()

    def _serve(self, vc):
        try:
            while True:
                method, target, hdrs = self._read_head(vc)
                parts = target.split("/")
                marker = parts[2] if len(parts) > 2 and parts[1] == "c" else "none"
                now = time.monotonic()
                with self.lock:
                    self.nreq += 1
                    vc.requests += 1
                    if vc.requests > 1:
                        self.nreused += 1
                    if vc.poisoned:
                        kind, t = vc.poisoned
                        if kind == "unsolicited" and now - t < RACE_WINDOW:
                            self.raced.add(marker)
                        else:
                            self.violations.append(
                                "request %s reached vendor connection %d %.3fs after its %s answer"
                                % (marker, vc.cid, now - t, kind))
                    attempt = len(self.log.get(marker, []))
                if vc.poisoned:
                    self._reset(vc)
                    return
                rng = random.Random("%d/%s/%d" % (self.seed, marker, attempt))
                plan = draw_plan(rng, method, marker, vc.cid)
                if plan.after == "close_later" and rng.random() < 0.5:
                    plan.after = "keep"
                with self.lock:
                    self.log.setdefault(marker, []).append(plan.name)
                    self.plans[marker] = plan
                if not plan.early:
                    self._read_body(vc, hdrs)
                self._send(vc, plan, rng)
                if plan.early:
                    self._read_body(vc, hdrs)
                if plan.name in POISON:
                    vc.poisoned = (plan.name, time.monotonic())
                if plan.after == "close":
                    vc.sock.shutdown(socket.SHUT_WR)
                    vc.sock.settimeout(5)
                    while vc.sock.recv(65536):
                        pass
                    vc.sock.close()
                    return
                if plan.after == "reset":
                    self._reset(vc)
                    return
                if plan.after == "close_later":
                    r, _, _ = select.select([vc.sock], [], [], rng.choice([0, 0.001, 0.01, 0.03]))
                    vc.sock.close()  # a request that arrived meanwhile is never answered
                    return
                if plan.after == "unsolicited":
                    r, _, _ = select.select([vc.sock], [], [], rng.choice([0.02, 0.05, 0.1]))
                    if r:
                        vc.poisoned = None  # the next request came first: nothing unsolicited
                        continue
                    vc.sock.sendall(smuggled("unsolicited", vc.cid))
                    vc.poisoned = ("unsolicited", time.monotonic())
                if plan.after == "hold":
                    vc.sock.settimeout(UPSTREAM_TIMEOUT * 4)
                    while True:
                        d = vc.sock.recv(65536)
                        if not d:
                            break
                        vc.buf += d  # a request on a silent connection: judged on the next turn
                        break
                    if not vc.buf:
                        vc.sock.close()
                        return
        except (EOFError, OSError, ValueError):
            pass
        finally:
            try:
                vc.sock.close()
            except OSError:
                pass


# --------------------------------------------------------------------------------------------
# Clients

class Reader:
    """A client connection to the gateway with a reader that says how an answer ended."""

    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.buf = bytearray()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        try:
            d = self.sock.recv(65536)
        except ConnectionResetError:
            d = b""
        if not d:
            raise EOFError()
        self.buf += d

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n")
        ln = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return ln

    def _exact(self, n, out):
        while len(self.buf) < n:
            if self.buf:
                out += self.buf
                n -= len(self.buf)
                self.buf.clear()
            self._fill()
        out += self.buf[:n]
        del self.buf[:n]

    def response(self, head):
        """{"end": complete | mid_body | no_head | timeout, status, fields, body, trailers, close}"""
        r = {"end": "no_head", "status": None, "fields": [], "body": bytearray(), "trailers": [], "close": False}
        try:
            while True:
                line = self._line()
                st = int(line.split(b" ")[1])
                fields = []
                while True:
                    ln = self._line()
                    if not ln:
                        break
                    n, _, v = ln.decode("latin-1").partition(":")
                    fields.append((n.strip().lower(), v.strip()))
                if st >= 200:
                    break
            r.update(status=st, fields=fields, end="mid_body")
            f = dict(fields)
            r["close"] = "close" in f.get("connection", "").lower()
            if head or st in (204, 304):
                pass
            elif "chunked" in f.get("transfer-encoding", ""):
                while True:
                    n = int(self._line().split(b";")[0], 16)
                    if n == 0:
                        while True:
                            t = self._line()
                            if not t:
                                break
                            a, _, b = t.decode("latin-1").partition(":")
                            r["trailers"].append((a.strip().lower(), b.strip()))
                        break
                    self._exact(n, r["body"])
                    self._exact(2, bytearray())
            elif "content-length" in f:
                self._exact(int(f["content-length"]), r["body"])
            else:
                try:
                    while True:
                        self._fill()
                except EOFError:
                    r["body"] += self.buf
                    self.buf.clear()
                r["close"] = True
            r["end"] = "complete"
        except EOFError:
            r["close"] = True
            r["partial"] = bytes(self.buf)
        except socket.timeout:
            r["end"] = "timeout"
            r["close"] = True
        r["body"] = bytes(r["body"])
        return r


def _send_bg(sock, data):
    """Send data from a thread (a streamed body the gateway may stop reading once the vendor
    answered early); True when all of it left."""
    done = []

    def run():
        try:
            sock.sendall(data)
            done.append(True)
        except OSError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, done


def client(port, tid, deadline, seed, outcomes, errors):
    rng = random.Random(seed * 7919 + tid)
    conn = None
    n = 0
    try:
        while time.monotonic() < deadline:
            if conn is None:
                conn = Reader(port, UPSTREAM_TIMEOUT * 6)
            # One request, or two pipelined (GET/HEAD): the second must wait for the first's
            # vendor connection to be done with, whatever the vendor did to it.
            batch = []
            for _ in range(2 if rng.random() < 0.15 else 1):
                n += 1
                marker = "mk%dt%dn%d-" % (seed % 100000, tid, n)
                method = rng.choice(["GET", "GET", "GET", "POST", "POST", "HEAD"])
                if len(batch):
                    method = rng.choice(["GET", "HEAD"])
                body = b""
                hdrs = [("X-Marker", marker)]
                if method == "POST":
                    # past limits.max_body_scan (16 KiB) the body streams to the vendor
                    body = body_for(rng, marker, rng.choice([0, 10, 1000, 30000, 200000]))
                    hdrs.append(("Content-Type", "text/plain"))
                batch.append((marker, method, h.request(method, "/c/%s/x" % marker, "chaos.test", hdrs, body)))
            data = b"".join(x[2] for x in batch)
            sender = None
            if len(data) > 65536:
                sender = _send_bg(conn.sock, data)
            else:
                conn.sock.sendall(data)
            broken = False
            for marker, method, _ in batch:
                if broken:
                    outcomes.append({"marker": marker, "method": method, "tid": tid, "end": "lost", "status": None,
                                     "fields": [], "body": b"", "trailers": [], "close": True})
                    continue
                r = conn.response(method == "HEAD")
                r.update(marker=marker, method=method, tid=tid, pipelined=len(batch) > 1)
                outcomes.append(r)
                broken = r["close"] or r["end"] != "complete"
            if sender:
                sender[0].join(UPSTREAM_TIMEOUT * 6)
                if not sender[1]:
                    broken = True
            if broken:
                conn.close()
                conn = None
    except Exception as e:  # a client that cannot even talk to the gateway fails the run
        errors.append("client %d: %s: %s" % (tid, type(e).__name__, e))
    finally:
        if conn:
            conn.close()


# --------------------------------------------------------------------------------------------
# Judging

def judge(r, vendor, prev=None):
    """Why outcome r breaks an invariant, or None. prev: the outcome before it on the same client."""
    marker = r["marker"]
    seen = set(MARKER_RE.findall(r["body"] + repr(r["fields"]).encode() + r.get("partial", b"")))
    if seen - {marker.encode()}:
        return "got another request's marker %s" % sorted(seen - {marker.encode()})
    if b"SMUGGLED" in r["body"] + repr(r["fields"]).encode() and marker not in vendor.raced:
        return "got a smuggled answer: %r" % r["body"][:80]
    plans = vendor.log.get(marker)
    plan = vendor.plans.get(marker)
    st, end = r["status"], r["end"]
    if end == "lost":
        return None  # pipelined behind an answer that closed the connection: never answered
    if marker in vendor.raced:
        return None  # it reached a connection as unsolicited bytes did: no HTTP/1.1 client can tell
    if not plans:
        if end == "complete" and st in (502, 503):
            return None
        pp = prev and vendor.plans.get(prev["marker"])
        if end == "no_head" and not r.get("partial") and pp and pp.outcome == AFTER_HEAD:
            return None  # the connection was closed for the broken answer before it, which looked whole
        return "the vendor never answered, yet the client got %s/%s" % (end, st)
    what = "plan %s (log %s)" % (plan.name, plans)
    if plan.outcome == EXACT:
        if end != "complete":
            return "%s: answer ended %s (status %s), want complete" % (what, end, st)
        if st != plan.status:
            return "%s: status %s, want %s; body %r" % (what, st, plan.status, r["body"][:200])
        if r["body"] != plan.body:
            return "%s: body of %d bytes differs from the vendor's %d (first %r, want %r)" % (
                what, len(r["body"]), len(plan.body), r["body"][:60], plan.body[:60])
        got = dict(r["fields"])
        for n, v in plan.fields:
            if got.get(n.lower()) != v:
                return "%s: field %s is %r, want %r" % (what, n, got.get(n.lower()), v)
        if plan.trailers and "chunked" in got.get("transfer-encoding", ""):
            if r["trailers"] != [(n.lower(), v) for n, v in plan.trailers]:
                return "%s: trailers %r, want %r" % (what, r["trailers"], plan.trailers)
        return None
    if plan.outcome == BEFORE_HEAD:
        if end == "complete" and st == 502:
            return None
        return "%s: %s/%s, want a 502" % (what, end, st)
    if plan.outcome == AFTER_HEAD:
        if end == "complete" and st == 502:
            return None
        if end == "mid_body" and st == plan.status:
            return None
        if end == "no_head" and not r.get("partial"):
            return None
        declared = dict(r["fields"]).get("content-length")
        if (getattr(plan, "h2", None) == "beyond_cl" and end == "complete" and st == plan.status and declared and
                r["body"] == plan.body[:int(declared)]):
            return None  # the declared length was complete before the excess DATA came
        return "%s: %s/%s with %d body bytes, want an incomplete answer" % (what, end, st, len(r["body"]))
    if plan.outcome == TIMEOUT:
        if end == "complete" and st == 504:
            return None
        if getattr(plan, "h2", None) and end == "complete" and st == 502:
            return None  # the shared connection went away first (another stream's GOAWAY)
        return "%s: %s/%s, want a 504" % (what, end, st)
    return "unknown plan outcome %s" % plan.outcome


def transfers_total(admin_port):
    _, _, body = h.http_get(admin_port, "/metrics")
    total = 0
    for line in body.decode().splitlines():
        if line.startswith("bordergate_transfers_total{") or line.startswith("bordergate_transfers_total "):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def chaos_gateway(port, workers=2, max_connections=8, name=None, h2=False):
    if h2:
        v = h.vendor("chaos", ["chaos.test"], port, tls=True, ca=h.cert("ca.crt"), sni="vendor.test",
                     protocol="http2")
    else:
        v = h.vendor("chaos", ["chaos.test"], port)
    v["upstream"]["max_connections"] = max_connections
    cfg = h.gateway_config([v], workers=workers,
                           limits={"upstream_timeout": "%dms" % int(UPSTREAM_TIMEOUT * 1000),
                                   "idle_timeout": "30s", "max_body_scan": "16KiB",
                                   "oversize_body": "personal"})
    # each gateway its own records file: the checks count one gateway's records
    cfg["records"]["path"] = os.path.join(h.tmpdir(), "records-%s" % (name or "chaos"), "transfers.jsonl")
    return h.Gateway(cfg, name=name).start()


def campaign(seconds, seed, clients, workers, max_connections, h2=False):
    """Run one campaign; returns a list of problems (empty when every invariant held)."""
    vendor = H2ChaosVendor(seed) if h2 else ChaosVendor(seed)
    h.defer(vendor.stop)
    g = chaos_gateway(vendor.port, workers, max_connections, name="chaos-h2" if h2 else "chaos-h1", h2=h2)
    h.defer(lambda: g.alive() and g.proc.kill())
    pid = g.proc.pid
    fd0 = h.fd_count(pid)
    outcomes, errors, problems = [], [], []
    rss = []
    t0 = time.monotonic()
    deadline = t0 + seconds
    threads = [threading.Thread(target=client, args=(g.port(), i, deadline, seed, outcomes, errors))
               for i in range(clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(0.25)
        if g.alive():
            rss.append((time.monotonic() - t0, h.rss_kb(pid)))
    for t in threads:
        t.join()
    problems += errors
    if not g.alive():
        return problems + ["the gateway died (exit %s); stderr tail:\n%s" % (g.proc.poll(), g.stderr()[-3000:])]
    bad = []
    last = {}
    for r in outcomes:  # in each client's order
        why = judge(r, vendor, last.get(r["tid"]))
        last[r["tid"]] = r
        if why:
            bad.append("%s %s (transfer %s): %s" % (r["method"], r["marker"], dict(r["fields"]).get("x-transfer-id"), why))
    problems += bad[:15] + (["... and %d more" % (len(bad) - 15)] if len(bad) > 15 else [])
    problems += vendor.violations[:10]
    kinds = {}
    for plans in vendor.log.values():
        kinds[plans[-1]] = kinds.get(plans[-1], 0) + 1
    ends = {}
    for r in outcomes:
        k = "%s/%s" % (r["end"], r["status"])
        ends[k] = ends.get(k, 0) + 1
    print("     seed %d: %d requests from %d clients in %.1fs; vendor: %d connections, %d requests, %d on a "
          "reused connection, %d raced unsolicited bytes" % (seed, len(outcomes), clients, time.monotonic() - t0,
                                                             vendor.nconn, vendor.nreq, vendor.nreused,
                                                             len(vendor.raced)), flush=True)
    print("     answers: %s" % ", ".join("%s %d" % kv for kv in sorted(ends.items())), flush=True)
    print("     plans: %s" % ", ".join("%s %d" % kv for kv in sorted(kinds.items())), flush=True)
    if len(outcomes) < 50:
        problems.append("only %d requests in %.0fs" % (len(outcomes), seconds))
    if not h2 and vendor.nreused < len(outcomes) // 10:
        problems.append("vendor connections were hardly reused (%d of %d requests)" % (vendor.nreused, vendor.nreq))
    # The gateway still serves a plain request (the vendor's plan for it is a well-formed one
    # more often than not: retry until one is).
    # Descriptors: once the vendor closes its end, the pool empties.
    vendor.close_all()
    try:
        h.wait_until(lambda: h.fd_count(pid) <= fd0 + 2, timeout=10, msg="descriptors back to the baseline")
    except h.Failure:
        problems.append("gateway descriptors %d, %d at start" % (h.fd_count(pid), fd0))
    if not ASAN and len(rss) > 8:
        third = [kb for t, kb in rss if t > seconds / 3]
        if third and max(third) - third[0] > 24 * 1024:
            problems.append("RSS kept growing: %d KiB at a third of the run, %d KiB later"
                            % (third[0], max(third)))
    # Records: every exchange recorded once, hash chain intact, totals match /metrics.
    recfile = g.cfg["records"]["path"]

    def settled():
        n = len(h.read_records(recfile))
        return n and n == transfers_total(g.admin_port)
    try:
        h.wait_until(settled, timeout=10, msg="records matching bordergate_transfers_total")
    except h.Failure as e:
        recs = h.read_records(recfile)
        by = {}
        for x in recs:
            k = (x["decision"], x["mechanism"], x["dest_country"], x["status"])
            by[k] = by.get(k, 0) + 1
        _, _, mt = h.http_get(g.admin_port, "/metrics")
        problems.append("%s: %d records, metrics say %d\nrecords by (decision, mechanism, country, status): %r\n%s"
                        % (e, len(recs), transfers_total(g.admin_port), sorted(by.items()),
                           "\n".join(ln for ln in mt.decode().splitlines() if "transfer" in ln and not ln.startswith("#"))))
    recs = h.read_records(recfile)
    ids = [x["id"] for x in recs]
    if len(set(ids)) != len(ids):
        problems.append("%d duplicate record ids" % (len(ids) - len(set(ids))))
    if len(recs) < len(outcomes) * 0.9:
        problems.append("%d records for %d answered requests" % (len(recs), len(outcomes)))
    v = h.run([h.BINARY, "records", "verify", recfile], timeout=60)
    if v.returncode != 0:
        problems.append("records verify: %s%s" % (v.stdout[-500:], v.stderr[-500:]))
    log = g.stderr()
    for needle in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
        if needle in log:
            i = log.index(needle)
            problems.append("sanitizer report in gateway stderr:\n" + log[max(0, i - 200):i + 3000])
            break
    try:
        g.stop(timeout=15)
    except h.Failure as e:
        problems.append(str(e))
    return problems


# --------------------------------------------------------------------------------------------
# The HTTP/2 vendor (TLS, ALPN h2)

def draw_h2_plan(rng, method, marker):
    """The raw HTTP/2 vendor's answer to one stream: Plan with .h2 = kind."""
    head_req = method == "HEAD"
    status = rng.choice([200, 200, 201, 404, 418, 500])
    size = rng.choice([0, 1, 100, 5000, 16384, rng.randrange(0, 100000)])
    fields = [("x-marker", marker), ("content-type", rng.choice(["text/plain", "application/octet-stream"]))]
    for i in range(rng.choice([0, 2])):
        fields.append(("x-h-%d" % i, "v%d-%s" % (i, _filler(rng, 10).decode())))
    body = b"" if head_req else body_for(rng, marker, size)
    ok = ["ok", "ok", "ok_cl", "ok_trailers", "nobody", "interim", "settings", "ping", "goaway_after"]
    bad = ["no_status", "bad_status", "upper_name", "conn_header", "rst_before", "refused", "pseudo_after",
           "silent", "rst_mid", "beyond_cl", "short_cl", "goaway_mid"]
    kind = rng.choice(ok) if rng.random() < 0.6 else rng.choice(bad)
    if kind == "silent" and rng.random() < 0.7:
        kind = "ok"
    if head_req and kind in ("rst_mid", "beyond_cl", "short_cl", "goaway_mid"):
        kind = "ok_cl"
    p = Plan(kind, EXACT)
    p.h2 = kind
    p.status, p.fields, p.body = status, fields, body
    p.cl = kind in ("ok_cl", "beyond_cl", "short_cl") or (head_req and rng.random() < 0.5)
    p.trailers = [("x-trl-0", "t0")] if kind == "ok_trailers" else []
    if kind == "nobody":
        p.status, p.body = (rng.choice([204, 304]) if not head_req else status), b""
    if kind in ("no_status", "bad_status", "upper_name", "conn_header", "rst_before", "refused", "pseudo_after"):
        p.outcome = BEFORE_HEAD
    elif kind in ("rst_mid", "beyond_cl", "short_cl", "goaway_mid"):
        p.outcome = AFTER_HEAD
        if not p.body:
            p.body = body_for(rng, marker, 100)
    elif kind == "silent":
        p.outcome = TIMEOUT
    p.cuts = rng.choice([1, 1, 2, 5])
    return p


class H2VendorConn:
    def __init__(self, vendor, sock, cid):
        self.v, self.sock, self.cid = vendor, sock, cid
        self.buf = bytearray()
        self.dec = h2wire.Hpack()
        self.conn_win = 65535
        self.peer_init_win = 65535
        self.win = {}            # stream -> send window
        self.max_frame = 16384
        self.streams = {}        # stream -> {"fields": [...], "body": bytearray}
        self.ready = []          # streams with a whole request
        self.reset = set()
        self.gone = False        # GOAWAY sent: no more answers

    def send(self, data):
        self.sock.sendall(data)

    def _exact(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError()
            self.buf += d
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_frame(self):
        hd = self._exact(9)
        n = int.from_bytes(hd[:3], "big")
        return hd[3], hd[4], int.from_bytes(hd[5:9], "big") & 0x7fffffff, self._exact(n)

    def handle(self, ft, fl, sid, pl):
        H = h2wire
        if ft == H.SETTINGS and not fl & H.ACK:
            for i in range(0, len(pl) - 5, 6):
                ident, val = struct.unpack(">HI", pl[i:i + 6])
                if ident == 4:
                    for k in self.win:
                        self.win[k] += val - self.peer_init_win
                    self.peer_init_win = val
                elif ident == 5:
                    self.max_frame = val
            self.send(H.frame(H.SETTINGS, H.ACK, 0))
        elif ft == H.PING and not fl & H.ACK:
            self.send(H.frame(H.PING, H.ACK, 0, pl))
        elif ft == H.WINDOW_UPDATE:
            inc = struct.unpack(">I", pl)[0] & 0x7fffffff
            if sid == 0:
                self.conn_win += inc
            elif sid in self.win:
                self.win[sid] += inc
        elif ft == H.RST_STREAM:
            self.reset.add(sid)
        elif ft == H.HEADERS:
            block = pl
            if fl & H.PADDED:
                block = block[1:len(block) - block[0]]
            if fl & H.PRIORITY_FLAG:
                block = block[5:]
            end = fl & H.END_STREAM
            while not fl & H.END_HEADERS:
                ft2, fl, _, pl2 = self.read_frame()
                block += pl2
            fields = self.dec.decode(block)
            if sid in self.streams:  # request trailers
                self.streams[sid]["fields"] += fields
            else:
                self.streams[sid] = {"fields": fields, "body": bytearray()}
                self.win[sid] = self.peer_init_win
            if end:
                self.ready.append(sid)
        elif ft == H.DATA:
            data = pl
            if fl & H.PADDED:
                data = data[1:len(data) - data[0]]
            if sid in self.streams:
                self.streams[sid]["body"] += data
            if pl:
                self.send(H.frame(H.WINDOW_UPDATE, 0, 0, struct.pack(">I", len(pl))) +
                          (H.frame(H.WINDOW_UPDATE, 0, sid, struct.pack(">I", len(pl))) if not fl & H.END_STREAM else b""))
            if fl & H.END_STREAM:
                self.ready.append(sid)

    def send_data(self, sid, data, end, cuts, rng):
        H = h2wire
        pieces = max(1, cuts)
        step = max(1, len(data) // pieces + 1)
        i = 0
        if not data and end:
            self.send(H.frame(H.DATA, H.END_STREAM, sid))
            return True
        while i < len(data):
            if sid in self.reset:
                return False
            n = min(step, len(data) - i, self.max_frame, self.conn_win, self.win.get(sid, 0))
            if n <= 0:
                self.handle(*self.read_frame())  # wait for WINDOW_UPDATE
                continue
            last = i + n >= len(data)
            self.send(H.frame(H.DATA, H.END_STREAM if (last and end) else 0, sid, data[i:i + n]))
            self.conn_win -= n
            self.win[sid] -= n
            i += n
            if rng.random() < 0.1:
                time.sleep(0.002)
        return True

    def answer(self, sid):
        H = h2wire
        st = self.streams.pop(sid)
        f = dict(st["fields"])
        method, path = f.get(":method", "?"), f.get(":path", "")
        parts = path.split("/")
        marker = parts[2] if len(parts) > 2 and parts[1] == "c" else "none"
        self.nreq = getattr(self, "nreq", 0) + 1
        with self.v.lock:
            self.v.nreq += 1
            self.v.nreused += self.nreq > 1
            attempt = len(self.v.log.get(marker, []))
        rng = random.Random("h2/%d/%s/%d" % (self.v.seed, marker, attempt))
        p = draw_h2_plan(rng, method, marker)
        with self.v.lock:
            self.v.log.setdefault(marker, []).append(p.name)
            self.v.plans[marker] = p
        k = p.h2
        hdr = [(":status", str(p.status))] + p.fields
        if p.cl:
            hdr.append(("content-length", str({"beyond_cl": len(p.body) - 5, "short_cl": len(p.body) + 3}
                                              .get(k, len(p.body) if method != "HEAD" else 1234))))
        if k == "silent":
            return
        if k == "rst_before" or k == "refused":
            self.send(H.frame(H.RST_STREAM, 0, sid, struct.pack(">I", 7 if k == "refused" else 2)))
            return
        bad = {"no_status": p.fields, "bad_status": [(":status", rng.choice(["abc", "2000", "99", "20"]))] + p.fields,
               "upper_name": hdr + [("X-Upper", "1")], "conn_header": hdr + [("connection", "close")],
               "pseudo_after": p.fields + [(":status", "200")]}
        if k in bad:
            self.send(H.frame(H.HEADERS, H.END_HEADERS | H.END_STREAM, sid, h2wire.hpack_encode(bad[k])))
            return
        if k == "interim":
            self.send(H.frame(H.HEADERS, H.END_HEADERS, sid, h2wire.hpack_encode([(":status", "103"), ("link", "</a>; rel=preload")])))
        if k == "settings":
            self.send(H.frame(H.SETTINGS, 0, 0, struct.pack(">HI", 3, rng.choice([1, 10, 100])) +
                              struct.pack(">HI", 4, rng.choice([1000, 65535, 1 << 20]))))
        if k == "ping":
            self.send(H.frame(H.PING, 0, 0, b"vchaos!!"))
        bodiless = method == "HEAD" or p.status in (204, 304)
        end_now = bodiless and not p.trailers
        self.send(H.frame(H.HEADERS, H.END_HEADERS | (H.END_STREAM if end_now else 0), sid, h2wire.hpack_encode(hdr)))
        if end_now:
            return self._after(k, sid)
        if bodiless:
            data = b""
        else:
            data = p.body
        if k in ("rst_mid", "goaway_mid"):
            self.send_data(sid, data[:len(data) // 2], False, p.cuts, rng)
            if k == "rst_mid":
                self.send(H.frame(H.RST_STREAM, 0, sid, struct.pack(">I", 2)))
            else:
                self.send(H.frame(H.GOAWAY, 0, 0, struct.pack(">II", sid, 2)))
                self.gone = True
            return
        if not self.send_data(sid, data, not p.trailers, p.cuts, rng):
            return
        if p.trailers:
            self.send(H.frame(H.HEADERS, H.END_HEADERS | H.END_STREAM, sid, h2wire.hpack_encode(p.trailers)))
        self._after(k, sid)

    def _after(self, k, sid):
        if k == "goaway_after":
            self.send(h2wire.frame(h2wire.GOAWAY, 0, 0, struct.pack(">II", sid, 0)))
            self.gone = True

    def serve(self):
        H = h2wire
        try:
            if self._exact(len(H.PREFACE)) != H.PREFACE:
                return
            self.send(H.frame(H.SETTINGS, 0, 0, struct.pack(">HI", 3, 100)))
            while not self.gone:
                while not self.ready:
                    self.handle(*self.read_frame())
                sid = self.ready.pop(0)
                if sid in self.reset:
                    self.streams.pop(sid, None)
                    continue
                self.answer(sid)
            time.sleep(0.05)
        except (EOFError, OSError, ValueError, IndexError, KeyError, struct.error):
            pass
        finally:
            try:
                self.sock.close()
            except OSError:
                pass


class H2ChaosVendor:
    """A raw HTTP/2 vendor over TLS (ALPN h2) whose answer to each stream is draw_h2_plan()."""

    def __init__(self, seed):
        import ssl
        self.seed = seed
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(h.cert("vendor.crt"), h.cert("vendor.key"))
        self.ctx.set_alpn_protocols(["h2"])
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(256)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.log, self.plans, self.violations, self.raced = {}, {}, [], set()
        self.socks = []
        self.nconn = self.nreq = self.nreused = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(s,), daemon=True).start()

    def _conn(self, s):
        try:
            s.settimeout(10)
            ts = self.ctx.wrap_socket(s, server_side=True)
            ts.settimeout(None)
        except OSError:
            s.close()
            return
        with self.lock:
            self.nconn += 1
            cid = self.nconn
            self.socks.append(ts)
        H2VendorConn(self, ts, cid).serve()

    def close_all(self):
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.lsock.close()
        self.close_all()


# --------------------------------------------------------------------------------------------
# Deterministic cases found by the campaign

class ScriptListener:
    """A loopback listener that serves each accepted connection with self._serve(n, sock) on its
    own thread (n counts connections from 1); stop() (deferred) closes it and shuts them down."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()
        h.defer(self.stop)

    def stop(self):
        self.lsock.close()
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept(self):
        n = 0
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            n += 1
            self.socks.append(s)
            threading.Thread(target=self._serve, args=(n, s), daemon=True).start()


class ScriptVendor(ScriptListener):
    """A vendor that runs answer(conn_index, sock, method, target) for every request it reads
    (heads only: the cases here send no bodies); records (conn_index, target) per request."""

    def __init__(self, answer):
        self.answer = answer
        self.seen = []
        super().__init__()

    def _serve(self, n, s):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                method, target = head.decode("latin-1").split(" ")[:2]
                self.seen.append((n, target))
                self.answer(n, s, method, target)
        except OSError:
            pass


@test
def bytes_beyond_an_answer_that_fills_a_read_never_reach_a_waiting_request():
    """An answer that ends exactly where the gateway's 64 KiB read ends, followed by a whole
    second response in the same write: the connection goes back to the pool inside the read,
    and the request waiting for a connection of that vendor (max_connections: 1) took it and
    got the extra bytes as its answer. It must get its own answer."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %05d\r\n\r\n"
    body = b"f" * (65536 - len(head % 0))

    def answer(n, s, method, target):
        if target == "/first":
            time.sleep(0.5)  # /second queues behind this request meanwhile
            s.sendall(head % len(body) + body + smuggled("extra", n))
        else:
            m = target.encode()
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(m), m))
    v = ScriptVendor(answer)
    g = chaos_gateway(v.port, workers=1, max_connections=1, name="extra64k")
    h.defer(g.stop)
    out = {}

    def get(path, delay):
        time.sleep(delay)
        c = Reader(g.port(), 10)
        c.sock.sendall(h.request("GET", path, "chaos.test"))
        out[path] = c.response(False)
        c.close()
    ts = [threading.Thread(target=get, args=("/first", 0)), threading.Thread(target=get, args=("/second", 0.2))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(15)
    eq((out["/first"]["status"], len(out["/first"]["body"])), (200, len(body)), "the first answer")
    eq((out["/second"]["end"], out["/second"]["status"], out["/second"]["body"]), ("complete", 200, b"/second"),
       "the waiting request's answer")
    eq([t for n, t in v.seen], ["/first", "/second"], "requests the vendor read")
    check(v.seen[1][0] != v.seen[0][0], "the second request went on a new connection: %r" % v.seen)


class ScriptH2Vendor(ScriptListener):
    """A raw HTTP/2 vendor over TLS (ALPN h2) for deterministic cases. Requests are heads only
    (END_STREAM on HEADERS). /held/* waits until a /beyond/* stream was answered; /beyond/same
    declares content-length 10 and sends 15 bytes in one DATA frame; /beyond/next sends the 10
    declared bytes, then 5 more in a second frame; anything else gets 200 "ok" at once."""

    def __init__(self):
        import ssl
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(h.cert("vendor.crt"), h.cert("vendor.key"))
        self.ctx.set_alpn_protocols(["h2"])
        super().__init__()

    def _serve(self, n, raw):
        H = h2wire
        try:
            s = self.ctx.wrap_socket(raw, server_side=True)
            conn = H2VendorConn(None, s, 0)  # its frame reader and request bookkeeping
            if conn._exact(len(H.PREFACE)) != H.PREFACE:
                return
            s.sendall(H.frame(H.SETTINGS, 0, 0))
            held = []
            while True:
                while not conn.ready:
                    conn.handle(*conn.read_frame())
                sid = conn.ready.pop(0)
                path = dict(conn.streams.pop(sid)["fields"]).get(":path", "")

                def head(cl, sid=sid):
                    return H.frame(H.HEADERS, H.END_HEADERS, sid,
                                   H.hpack_encode([(":status", "200"), ("content-length", str(cl))]))
                if path.startswith("/held"):
                    held.append(sid)
                    continue
                if path == "/beyond/same":
                    s.sendall(head(10) + H.frame(H.DATA, H.END_STREAM, sid, b"0123456789abcde"))
                elif path == "/beyond/next":
                    s.sendall(head(10) + H.frame(H.DATA, 0, sid, b"0123456789"))
                    time.sleep(0.2)
                    s.sendall(H.frame(H.DATA, H.END_STREAM, sid, b"abcde"))
                else:
                    s.sendall(head(2) + H.frame(H.DATA, H.END_STREAM, sid, b"ok"))
                if path.startswith("/beyond"):
                    time.sleep(0.2)
                    for k in held:
                        s.sendall(head(2, k) + H.frame(H.DATA, H.END_STREAM, k, b"ok"))
                    held = []
        except (EOFError, OSError, ValueError, KeyError):
            pass


def nghttp_streams(port, authority, paths):
    """One nghttp connection with a stream per path; returns (per path {"status", "ended",
    "reset"}, whether a GOAWAY came from the gateway, nghttp's output)."""
    import shutil
    exe = shutil.which("nghttp")
    check(exe, "nghttp (nghttp2-client) installed")
    base = "http://127.0.0.1:%d" % port
    r = h.run([exe, "-v", "-t", "8", "-H", ":authority: " + authority] + [base + p for p in paths], timeout=12)
    out = re.sub(r"(?<=[^\n])(\[\s*\d+\.\d+\] (?:recv|send) )", "\n\\1", r.stdout)
    sid_path, got, last_sid = {}, {}, None
    lines = out.split("\n")
    for i, ln in enumerate(lines):
        m = re.match(r"^\[\s*[\d.]+\] send HEADERS frame <.*stream_id=(\d+)>", ln)
        if m:
            last_sid = int(m.group(1))
        m = re.match(r"^\s+:path: (.*)$", ln)
        if m and last_sid is not None and last_sid not in sid_path:
            sid_path[last_sid] = m.group(1)
            got[m.group(1)] = {"status": None, "ended": False, "reset": None}
        m = re.match(r"^\[\s*[\d.]+\] recv \(stream_id=(\d+)\) :status: (\d+)$", ln)
        if m and int(m.group(1)) in sid_path:
            got[sid_path[int(m.group(1))]]["status"] = int(m.group(2))
        m = re.match(r"^\[\s*[\d.]+\] recv (?:DATA|HEADERS) frame <.*flags=0x(\w+), stream_id=(\d+)>", ln)
        if m and int(m.group(1), 16) & 1 and int(m.group(2)) in sid_path:
            got[sid_path[int(m.group(2))]]["ended"] = True
        m = re.match(r"^\[\s*[\d.]+\] recv RST_STREAM frame <.*stream_id=(\d+)>", ln)
        if m and int(m.group(1)) in sid_path:
            code = re.search(r"error_code=(\w+)", lines[i + 1] if i + 1 < len(lines) else "")
            got[sid_path[int(m.group(1))]]["reset"] = code.group(1) if code else "?"
    return got, "recv GOAWAY" in out, out


@test
def data_beyond_an_http2_vendors_content_length_resets_only_that_stream():
    """An HTTP/2 vendor sends more DATA than its content-length (in the frame that completes it,
    or in a frame after the declared bytes): nghttp2 resets the vendor stream (RFC 9113 8.1.1,
    malformed). An HTTP/1.1 client never gets the excess: its answer is cut short, or at most
    the declared bytes, and the connection is closed. An HTTP/2 client sees RST_STREAM on that
    stream only: the streams beside it on the same client connection (one of them waiting for
    its answer on the same vendor connection while this happens) complete, and the gateway sends
    no GOAWAY. The gateway logs it as the vendor's protocol error (kind=protocol), not as a reset
    the vendor sent."""
    v = ScriptH2Vendor()
    g = chaos_gateway(v.port, workers=1, max_connections=1, name="beyondcl", h2=True)
    h.defer(g.stop)
    for mode in ("same", "next"):
        mark = g.mark()
        got, goaway, out = nghttp_streams(g.port(), "chaos.test", ["/held/" + mode, "/beyond/" + mode, "/after"])
        b = got.get("/beyond/" + mode)
        check(b and b["reset"] and not b["ended"], "%s: the excess stream is reset, not ended: %r" % (mode, got))
        for p in ("/held/" + mode, "/after"):
            eq((got[p]["status"], got[p]["ended"], got[p]["reset"]), (200, True, None),
               "%s: %s beside it on the client connection" % (mode, p))
        check(not goaway, "%s: no GOAWAY to the client:\n%s" % (mode, out[-2000:]))
        c = Reader(g.port(), 10)
        c.sock.sendall(h.request("GET", "/beyond/" + mode, "chaos.test"))
        r = c.response(False)
        check(r["end"] != "complete" or r["body"] == b"0123456789",
              "%s: HTTP/1.1 client got %s with %r" % (mode, r["end"], r["body"]))
        check(b"abcde" not in r["body"] + r.get("partial", b""), "%s: the excess reached the client" % mode)
        try:
            c._fill()
            closed = False
        except EOFError:
            closed = True
        check(closed, "%s: the HTTP/1.1 connection is closed after the broken answer" % mode)
        c.close()
        failed = [ln for ln in g.stderr_since(mark).splitlines() if "upstream failed" in ln]
        eq(len(failed), 2, "%s: one failure logged per client kind: %r" % (mode, failed))
        for ln in failed:
            check("kind=protocol" in ln and "malformed HTTP/2 response" in ln, "%s: logged as %r" % (mode, ln))


@test
def vendor_chaos_http1():
    """Many keep-alive clients, one misbehaving HTTP/1.1 vendor behind a small pool."""
    import signal
    signal.alarm(int(SECONDS * 2 + 60))  # the run itself takes SECONDS; this test owns its budget
    problems = campaign(SECONDS, SEED, CLIENTS, workers=2, max_connections=8)
    if problems:
        raise h.Failure("CHAOS_SEED=%d: %d problems:\n  %s" % (SEED, len(problems), "\n  ".join(problems)))


@test
def vendor_chaos_http2():
    """The same clients; the vendor is a raw HTTP/2 one over TLS (one shared connection per
    worker and more as streams need): RST_STREAM, GOAWAY with streams in flight, heads without
    :status, DATA beyond content-length, SETTINGS changes, PING, window waits."""
    import signal
    signal.alarm(int(SECONDS_H2 * 2 + 60))
    problems = campaign(SECONDS_H2, SEED, CLIENTS, workers=2, max_connections=4, h2=True)
    if problems:
        raise h.Failure("CHAOS_SEED=%d: %d problems:\n  %s" % (SEED, len(problems), "\n  ".join(problems)))


if __name__ == "__main__":
    print("vendor chaos: CHAOS_SEED=%d CHAOS_SECONDS=%g" % (SEED, SECONDS), flush=True)
    h.main()
