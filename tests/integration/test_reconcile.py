#!/usr/bin/env python3
"""test_reconcile.py -- an independent reconciliation of records, metrics and what clients and
vendors saw, for every way an exchange can end.

One gateway (two workers) serves a mixed workload over HTTP/1.1 (raw sockets, so every byte each
way is known) and HTTP/2 (h2wire, raw frames), towards HTTP/1.1 vendors (upstream.py) and an
HTTP/2 vendor (h2echo). The test itself knows the outcome of each request: allowed with and
without personal data, blocked (451, also for HEAD), encrypted, report-only after a SIGHUP reload
in the middle, unknown host (403), body over the limit (413, by Content-Length and by a chunked
body), client aborts mid-upload and mid-response, HTTP/2 stream resets, a vendor refusing
connections (502), a vendor timing out (504), vendors closing mid-response (HTTP/1.1 and HTTP/2),
an HTTP/2 vendor resetting its stream (502), failover to a second address, rate-limited 429s.
A second gateway with a stalled records disk adds the records-backpressure 503.
Then, exactly: (a) one record per request that reached a vendor's routing, its id the one the
client got, its fields what happened; none for 403/429/503; (b) every /metrics counter equals
what the records and the test's own log derive (README, "Transfer records and metrics", says what
each counts); (c) `records verify` passes; (d) no record or log line holds a personal-data value
the test sent. Ends with "N passed, N failed".
"""
import collections
import json
import os
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402
from h2wire import (DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, RST_STREAM, H2Conn, frame,  # noqa: E402
                    hpack_request)

# Personal-data values the test sends (none may appear in a record or a log line).
EMAIL = "ada.reconcile@example.org"
PHONE = "+49 1512 3456789"
IBAN = "DE89370400440532013000"
CARD = "4111111111111111"
PD_VALUES = [EMAIL, PHONE, IBAN, CARD, "ada.reconcile%40example.org"]


def metrics_text(gw):
    st, _, body = h.http_get(gw.admin_port, "/metrics")
    eq(st, 200, "/metrics")
    return body.decode()


def nonzero(d):
    return {k: v for k, v in d.items() if v}


def L(**kw):
    return frozenset(kw.items())


# ---- clients that know every byte ---------------------------------------------------------

class H1Result:
    def __init__(self, status, headers, body, sent, received, complete):
        self.status, self.headers, self.body = status, headers, body
        self.sent, self.received, self.complete = sent, received, complete

    def get(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None


def _parse_h1(raw, head_req=False):
    """(status, headers, body, complete) of one response in raw (the connection has closed)."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return 0, [], b"", False
    lines = raw[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = [tuple(x.strip() for x in ln.split(":", 1)) for ln in lines[1:] if ":" in ln]
    rest = raw[end + 4:]
    hd = {n.lower(): v for n, v in headers}
    if head_req:
        return status, headers, b"", True
    if "content-length" in hd:
        n = int(hd["content-length"])
        return status, headers, rest[:n], len(rest) >= n
    if hd.get("transfer-encoding", "").lower() == "chunked":
        body, i = b"", 0
        while True:
            j = rest.find(b"\r\n", i)
            if j < 0:
                return status, headers, body, False
            size = int(rest[i:j].split(b";")[0], 16)
            if size == 0:
                return status, headers, body, rest.find(b"\r\n\r\n", j) >= 0 or rest[j:j + 4] == b"\r\n\r\n"
            body += rest[j + 2:j + 2 + size]
            if len(rest) < j + 2 + size + 2:
                return status, headers, body, False
            i = j + 2 + size + 2
    return status, headers, rest, True


def h1(port, method, target, host, headers=(), body=b"", abort_after=None, upload_partial=None, expect100=False,
       timeout=8):
    """One request on its own connection (Connection: close): every byte sent and received.
    abort_after: close once this many response bytes came; upload_partial: send only the head and
    this many body bytes, then close."""
    req = h.request(method, target, host, list(headers) + [("Connection", "close")], body)
    if upload_partial is not None:
        req = req[:len(req) - len(body) + upload_partial]
    s = socket.create_connection(("127.0.0.1", port), timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if expect100:  # the head, the gateway's 100 Continue, then the body
        head = req[:len(req) - len(body)]
        s.sendall(head)
        interim = b""
        while b"\r\n\r\n" not in interim:
            d = s.recv(1)
            if not d:
                break
            interim += d
        check(interim.startswith(b"HTTP/1.1 100 "), "no 100 Continue: %r" % interim)
        s.sendall(body)
        raw = interim
    else:
        s.sendall(req)
        raw = b""
    if upload_partial is not None:
        time.sleep(0.3)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        return H1Result(0, [], b"", len(req), b"", False)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            raw += d
            if abort_after is not None and len(raw) >= abort_after:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                break
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    final = raw
    while final.startswith(b"HTTP/1.1 1"):  # interim answers: counted in the bytes, not the status
        final = final[final.find(b"\r\n\r\n") + 4:]
    st, hd, b, complete = _parse_h1(final, method == "HEAD")
    res = H1Result(st, hd, b, len(req), raw, complete)
    res.interim = len(raw) - len(final) > 0
    return res


def h1_keepalive(port, reqs, timeout=8):
    """Several requests on one kept-alive connection, one after the other (each answer has a
    Content-Length): [(bytes sent, raw answer)] per request."""
    s = socket.create_connection(("127.0.0.1", port), timeout)
    buf, out = b"", []
    for method, target, host, headers, body in reqs:
        req = h.request(method, target, host, headers, body)
        s.sendall(req)
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                hd = {ln.split(b":", 1)[0].strip().lower(): ln.split(b":", 1)[1].strip()
                      for ln in buf[:end].split(b"\r\n")[1:] if b":" in ln}
                n = 0 if method == "HEAD" else int(hd.get(b"content-length", b"0"))
                if len(buf) >= end + 4 + n:
                    out.append((len(req), buf[:end + 4 + n]))
                    buf = buf[end + 4 + n:]
                    break
            d = s.recv(65536)
            if not d:
                raise h.Failure("connection closed during kept-alive request %s" % target)
            buf += d
    s.close()
    return out


class CurlRes:
    def __init__(self, r):
        self.status, self.headers, self.body, self.r = r.status, r.headers, r.body, r

    def get(self, name):
        return self.headers.get(name)


class H2Result:
    def __init__(self, status, headers, body, reset, hbytes, sent):
        self.status, self.headers, self.body, self.reset = status, headers, body, reset
        self.hbytes, self.sent = hbytes, sent

    def get(self, name):
        for n, v in self.headers:
            if n == name.lower():
                return v
        return None


class H2Client:
    def __init__(self, port):
        self.c = H2Conn(port)
        h.defer(self.c.sock.close)
        self.sid = 1

    def do(self, method, host, path, headers=(), body=b"", reset_after_head=False):
        sid = self.sid
        self.sid += 2
        block = hpack_request(method, host, path, list(headers) + ([("content-length", str(len(body)))] if body else []))
        self.c.sock.sendall(frame(HEADERS, END_HEADERS | (0 if body else END_STREAM), sid, block))
        for i in range(0, len(body), 16384):
            self.c.sock.sendall(frame(DATA, END_STREAM if i + 16384 >= len(body) else 0, sid, body[i:i + 16384]))
        sent = sum(len(n) + len(v) + 32 for n, v in [(":method", method), (":scheme", "http"), (":path", path),
                                                      (":authority", host)] + list(headers))
        status, hdrs, data, reset, hbytes = 0, [], b"", False, 0
        end = time.monotonic() + 8
        while time.monotonic() < end:
            f = self.c.read(timeout=max(0.1, end - time.monotonic()))
            if f is None:
                break
            ftype, flags, fsid, payload = f
            if ftype == GOAWAY:
                break
            if fsid != sid:
                continue
            if ftype == HEADERS:
                if not status:
                    hdrs = [(n.decode() if isinstance(n, bytes) else n, v.decode() if isinstance(v, bytes) else v)
                            for n, v in payload]
                    status = int(dict(hdrs)[":status"])
                hbytes += sum(len(n) + len(v) + 4 for n, v in payload)
                if reset_after_head == "close":  # the whole connection goes away
                    self.c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.c.sock.close()
                    return H2Result(status, hdrs, data, True, hbytes, sent)
                if reset_after_head:
                    self.c.sock.sendall(frame(RST_STREAM, 0, sid, struct.pack(">I", 8)))  # CANCEL
                    return H2Result(status, hdrs, data, True, hbytes, sent)
            elif ftype == DATA:
                data += payload
            elif ftype == RST_STREAM:
                reset = True
                break
            if flags & END_STREAM and ftype in (HEADERS, DATA):
                break
        return H2Result(status, hdrs, data, reset, hbytes, sent)


# ---- the workload -------------------------------------------------------------------------

def pd_headers():
    return [("Content-Type", "application/json")]


def pd_body():
    return ('{"email":"%s","phone":"%s","iban":"%s"}' % (EMAIL, PHONE, IBAN)).encode()


class Log:
    """What the test did and saw: one entry per request."""

    def __init__(self):
        self.items = []

    def add(self, **kw):
        kw.setdefault("record", True)
        kw.setdefault("upstream_errors", {})
        self.items.append(kw)
        return kw


@test
def mixed_workload_records_metrics_and_clients_agree():
    mixed_workload("never")


@test
def mixed_workload_under_fsync_always():
    """The same under records.fsync: always, where answers wait for their record on disk (the
    record is written before the last byte or the head goes out, so its counts come first)."""
    mixed_workload("always")


def mixed_workload(fsync):
    up = h.upstream()                       # crm: domestic, HTTP/1.1
    up3 = h.upstream(host="127.0.0.3")      # the US vendors (report-only forwards there)
    fo_up = h.upstream()                    # failover vendor's live address
    h2port = h.h2echo()                     # HTTP/2 vendor
    dead = h.free_port()                    # nothing listens: refused
    crm = h.vendor("crm", ["crm.example"], up.port, max_body="64KiB")
    usb = h.us_vendor(h.vendor("usb", ["usb.example"], up3.port, addresses=["127.0.0.3"], categories=[]))
    usb["basis"] = "none"
    use = h.us_vendor(h.vendor("use", ["use.example"], up3.port, addresses=["127.0.0.3"], categories=[],
                               on_violation="encrypt"))
    use["basis"] = "none"
    fo = h.vendor("fo", ["fo.example"], fo_up.port, addresses=["127.0.0.2", "127.0.0.1"])
    down = h.vendor("down", ["down.example"], dead)
    down2 = h.vendor("down2", ["down2.example"], dead)
    h2v = h.vendor("h2v", ["h2.vendor.test"], h2port, tls=True, ca=h.cert("ca.crt"))
    cfg = h.gateway_config([crm, usb, use, fo, down, down2, h2v], workers=2,
                           listen=[{"address": None}, {"address": None, "requests_per_second": 1,
                                                       "request_burst": 1},
                                   {"address": None, "tls": {"certificate": h.cert("gateway.crt"),
                                                             "key": h.cert("gateway.key")}}],
                           limits={"upstream_timeout": "1s", "max_body_scan": "1MiB",
                                   "body_timeout": "1s"})
    cfg["records"]["fsync"] = fsync
    cfg["records"]["path"] = os.path.join(h.tmpdir(), "records-" + fsync, "transfers.jsonl")
    gw = h.Gateway(cfg, name="mixed-" + fsync).start()
    port, rl_port, tls_port = gw.port(0), gw.port(1), gw.port(2)
    log = Log()

    def hx(kind, vendor, method, target, host, expect, headers=(), body=b"", **kw):
        r = h1(port, method, target, host, headers, body, **{k: kw.pop(k) for k in ("abort_after", "upload_partial",
                                                                                    "expect100") if k in kw})
        if expect is not None:
            eq(r.status, expect, kind + " status")
        return log.add(kind=kind, proto="http/1.1", vendor=vendor, res=r, **kw)

    # -- allowed, with and without personal data; HEAD; the HTTP/2 vendor
    hx("allow-pd", "crm", "POST", "/v1/users?email=" + EMAIL, "crm.example", 200, pd_headers(), pd_body(),
       decision="allow", reason="domestic", sent=True, rstatus=200, up_proto="http/1.1", dest="127.0.0.1")
    # personal data in the path: the vendor gets it, the record has the path with it redacted
    p = hx("allow-path-pd", "crm", "GET", "/v1/users/%s/profile" % EMAIL, "crm.example", 200, decision="allow",
           reason="domestic", sent=True, rstatus=200, up_proto="http/1.1", dest="127.0.0.1",
           path="/v1/users/%s/profile" % EMAIL)
    hx("allow-nopd", "crm", "GET", "/v1/ping", "crm.example", 200, decision="allow", reason="no_personal_data",
       sent=True, rstatus=200, up_proto="http/1.1", dest="127.0.0.1")
    hx("allow-h2up", "h2v", "GET", "/echo", "h2.vendor.test", 200, decision="allow", reason="no_personal_data",
       sent=True, rstatus=200, up_proto="h2", dest="127.0.0.1")
    # -- blocked: 451, nothing sent; also for HEAD (the client gets the head only)
    hx("block", "usb", "POST", "/collect", "usb.example", 451, pd_headers(), pd_body(), decision="block",
       reason="no_transfer_basis", enforced=True, sent=False, rstatus=451, dest="127.0.0.3")
    hx("block-head", "usb", "HEAD", "/collect?email=" + EMAIL, "usb.example", 451, decision="block",
       reason="no_transfer_basis", enforced=True, sent=False, rstatus=451, dest="127.0.0.3", bodiless=True)
    # -- encrypted: the vendor gets tokens
    e = hx("encrypt", "use", "POST", "/track", "use.example", 200, pd_headers(), pd_body(), decision="encrypt",
           sent=True, rstatus=200, up_proto="http/1.1", dest="127.0.0.3")
    # -- unknown host: 403, no record
    hx("unknown", None, "GET", "/", "nowhere.example", 403, record=False)
    # -- body over the limit: by Content-Length, and chunked
    hx("413-cl", "crm", "POST", "/upload", "crm.example", 413, [("Content-Length", "100000")],
       decision="block", reason="body_too_large", enforced=True, sent=False, rstatus=413, exact=False)
    big = b"".join(b"%x\r\n%s\r\n" % (8192, b"z" * 8192) for _ in range(10)) + b"0\r\n\r\n"
    hx("413-chunked", "crm", "POST", "/upload", "crm.example", 413, [("Transfer-Encoding", "chunked"),
                                                                      ("Content-Type", "text/plain")], big,
       decision="block", reason="body_too_large", enforced=True, sent=None, rstatus=413, exact=False)
    # -- client aborts: mid-upload (held for the decision: nothing sent), mid-response
    hx("abort-upload", "crm", "POST", "/upload", "crm.example", None, [("Content-Type", "text/plain")],
       b"y" * 4000, upload_partial=100, decision="block", reason="client_closed", enforced=True, sent=False,
       rstatus=499, exact=False)
    hx("abort-response", "crm", "GET", "/drip/10", "crm.example", None, abort_after=60, decision="allow",
       reason="no_personal_data", sent=True, rstatus=499, up_proto="http/1.1", dest="127.0.0.1", exact=False,
       head_seen=True)
    s408 = socket.create_connection(("127.0.0.1", port), 5)
    req408 = h.request("POST", "/slow", "crm.example", [("Content-Type", "text/plain"), ("Content-Length", "500")])
    s408.sendall(req408 + b"s" * 10)
    raw408 = b""
    s408.settimeout(5)
    try:
        while True:
            d = s408.recv(65536)
            if not d:
                break
            raw408 += d
            if b"\r\n\r\n" in raw408 and len(raw408.split(b"\r\n\r\n", 1)[1]) >= int(
                    raw408.lower().split(b"content-length: ")[1].split(b"\r\n")[0]):
                break
    except socket.timeout:
        pass
    s408.close()
    st408, hd408, _, _ = _parse_h1(raw408)
    eq(st408, 408, "a held body that stops coming")
    log.add(kind="408", proto="http/1.1", vendor="crm", res=H1Result(st408, hd408, b"", len(req408) + 10, raw408, True),
            decision="block", reason="request_timeout", enforced=True, sent=False, rstatus=408)
    # -- vendors failing: refusing (502), timing out (504), closing mid-response (502, cut)
    hx("refused", "down", "GET", "/x", "down.example", 502, decision="allow", reason="no_personal_data",
       sent=False, rstatus=502, dest="127.0.0.1", upstream_errors={("down", "connect"): 1})
    hx("timeout", "crm", "GET", "/delay/2500", "crm.example", 504, decision="allow", reason="no_personal_data",
       sent=True, rstatus=504, up_proto="http/1.1", dest="127.0.0.1", upstream_errors={("crm", "timeout"): 1})
    hx("close-mid", "crm", "GET", "/close-mid-body", "crm.example", 200, decision="allow",
       reason="no_personal_data", sent=True, rstatus=502, up_proto="http/1.1", dest="127.0.0.1", exact=False,
       cut=True, upstream_errors={("crm", "closed"): 1})
    hx("h2up-rst", "h2v", "GET", "/rst", "h2.vendor.test", 502, decision="allow", reason="no_personal_data",
       sent=True, rstatus=502, up_proto="h2", dest="127.0.0.1", upstream_errors={("h2v", "closed"): None})
    # -- failover: the first address refuses, the second answers; the record names the one used
    for i in range(2):
        hx("failover", "fo", "GET", "/f%d" % i, "fo.example", 200, decision="allow", reason="no_personal_data",
           sent=True, rstatus=200, up_proto="http/1.1", dest="127.0.0.1")
    # -- rate limited: the second listener allows one request, then 429 (no record)
    r1 = h1(rl_port, "GET", "/v1/rl", "crm.example")
    log.add(kind="rl-first", proto="http/1.1", vendor="crm", res=r1, decision="allow", reason="no_personal_data",
            sent=True, rstatus=200, up_proto="http/1.1", dest="127.0.0.1")
    r2 = h1(rl_port, "GET", "/v1/rl2", "crm.example")
    eq(r2.status, 429, "second request on the limited listener")
    log.add(kind="429", proto="http/1.1", vendor=None, res=r2, record=False)

    # -- a vendor's own error answer is relayed: no upstream error
    hx("vendor-500", "crm", "GET", "/status/500", "crm.example", 500, decision="allow", reason="no_personal_data",
       sent=True, rstatus=500, up_proto="http/1.1", dest="127.0.0.1")
    # -- Expect: 100-continue: the gateway's interim answer is part of what the client got
    hx("expect-100", "crm", "POST", "/v1/cont", "crm.example", 200, pd_headers() + [("Expect", "100-continue")],
       pd_body(), expect100=True, decision="allow", reason="domestic", sent=True, rstatus=200, up_proto="http/1.1",
       dest="127.0.0.1")
    hx("vendor-204", "crm", "GET", "/status/204", "crm.example", 204, decision="allow", reason="no_personal_data",
       sent=True, rstatus=204, up_proto="http/1.1", dest="127.0.0.1", bodiless=True)
    hx("relayed-head", "crm", "HEAD", "/v1/head", "crm.example", 200, decision="allow", reason="no_personal_data",
       sent=True, rstatus=200, up_proto="http/1.1", dest="127.0.0.1", bodiless=True)
    # -- an address failing again and again: its circuit opens (503, nothing sent), counted apart
    for i in range(30):
        r = h1(port, "GET", "/c%d" % i, "down2.example")
        check(r.status in (502, 503), "down2 status %d" % r.status)
        kind = "connect" if r.status == 502 else "circuit_open"
        log.add(kind="circuit-%d" % r.status, proto="http/1.1", vendor="down2", res=r, decision="allow",
                reason="no_personal_data", sent=False, rstatus=r.status, dest="127.0.0.1",
                upstream_errors={("down2", kind): 1})
        if r.status == 503:
            break
    check(r.status == 503, "the circuit never opened")
    # -- several requests on one kept-alive connection: each record has its own bytes
    ka = h1_keepalive(port, [("GET", "/ka/1?email=" + EMAIL, "crm.example", [], b""),
                             ("POST", "/ka/2", "crm.example", pd_headers(), pd_body()),
                             ("GET", "/ka/3?email=" + EMAIL, "usb.example", [], b""),
                             ("GET", "/ka/4", "crm.example", [], b"")])
    for i, (nsent, rawr) in enumerate(ka):
        st, hd, b, _ = _parse_h1(rawr)
        res = H1Result(st, hd, b, nsent, rawr, True)
        if i == 2:
            eq(st, 451, "kept-alive block")
            log.add(kind="ka-block", proto="http/1.1", vendor="usb", res=res, decision="block",
                    reason="no_transfer_basis", sent=False, rstatus=451, dest="127.0.0.3")
        else:
            eq(st, 200, "kept-alive request %d" % (i + 1))
            log.add(kind="ka-%d" % (i + 1), proto="http/1.1", vendor="crm", res=res, decision="allow",
                    reason="no_personal_data" if i == 3 else "domestic", sent=True, rstatus=200,
                    up_proto="http/1.1", dest="127.0.0.1")
    # -- real clients over TLS: curl with ALPN http/1.1 and h2
    for flag, proto in (("--http1.1", "http/1.1"), ("--http2", "h2")):
        r = h.curl(flag, "--cacert", h.cert("ca.crt"), "-H", "Host: crm.example", "-H", "X-Email: " + EMAIL,
                   "https://localhost:%d/tls/%s" % (tls_port, proto.replace("/", "")))
        eq(r.status, 200, "curl %s over TLS (%r)" % (flag, r))
        log.add(kind="curl-tls-" + proto, proto=proto, vendor="crm", res=CurlRes(r), decision="allow",
                reason="domestic", sent=True, rstatus=200, up_proto="http/1.1", dest="127.0.0.1", exact=False)

    # -- HTTP/2 clients
    c2 = H2Client(port)

    def h2x(kind, vendor, method, host, path, expect, headers=(), body=b"", **kw):
        r = c2.do(method, host, path, headers, body, reset_after_head=kw.pop("reset_after_head", False))
        if expect is not None:
            eq(r.status, expect, kind + " status (h2)")
        return log.add(kind=kind, proto="h2", vendor=vendor, res=r, **kw)

    h2x("h2-allow-pd", "crm", "POST", "crm.example", "/v2/users", 200, [("content-type", "application/json")],
        pd_body(), decision="allow", reason="domestic", sent=True, rstatus=200, up_proto="http/1.1",
        dest="127.0.0.1")
    h2x("h2-block", "usb", "GET", "usb.example", "/collect?email=" + EMAIL, 451, decision="block",
        reason="no_transfer_basis", enforced=True, sent=False, rstatus=451, dest="127.0.0.3")
    h2x("h2-unknown", None, "GET", "nowhere.example", "/", 403, record=False)
    h2x("h2-413", "crm", "POST", "crm.example", "/upload", 413, [("content-type", "text/plain")], b"q" * 70000,
        decision="block", reason="body_too_large", enforced=True, sent=False, rstatus=413, exact=False)
    h2x("h2-reset", "crm", "GET", "crm.example", "/drip/10", 200, reset_after_head=True, decision="allow",
        reason="no_personal_data", sent=True, rstatus=499, up_proto="http/1.1", dest="127.0.0.1", exact=False)
    # an HTTP/2 upload reset by the client while its body is held for the decision: nothing sent
    sid = c2.sid
    c2.sid += 2
    c2.c.sock.sendall(frame(HEADERS, END_HEADERS, sid, hpack_request("POST", "crm.example", "/h2up",
                                                                     [("content-type", "text/plain"),
                                                                      ("content-length", "5000")])) +
                      frame(DATA, 0, sid, b"u" * 100))
    time.sleep(0.3)
    c2.c.sock.sendall(frame(RST_STREAM, 0, sid, struct.pack(">I", 8)))
    time.sleep(0.2)
    log.add(kind="h2-abort-upload", proto="h2", vendor="crm", res=H2Result(0, [], b"", False, 0, 0),
            decision="block", reason="client_closed", enforced=True, sent=False, rstatus=499, exact=False)
    h2x("h2-head", "crm", "HEAD", "crm.example", "/v2/head", 200, decision="allow", reason="no_personal_data",
        sent=True, rstatus=200, up_proto="http/1.1", dest="127.0.0.1", bodiless=True)
    h2x("h2-h2up", "h2v", "GET", "h2.vendor.test", "/echo", 200, decision="allow", reason="no_personal_data",
        sent=True, rstatus=200, up_proto="h2", dest="127.0.0.1")
    h2x("h2-h2up-cut", "h2v", "GET", "h2.vendor.test", "/cut", 200, decision="allow", reason="no_personal_data",
        sent=True, rstatus=502, up_proto="h2", dest="127.0.0.1", exact=False, cut=True,
        upstream_errors={("h2v", "closed"): None})

    # an HTTP/2 connection that goes away mid-response (no RST_STREAM: the socket closes)
    c3 = H2Client(port)
    r = c3.do("GET", "crm.example", "/drip/10", reset_after_head="close")
    eq(r.status, 200, "h2 head before the connection went away")
    log.add(kind="h2-conn-close", proto="h2", vendor="crm", res=r, decision="allow", reason="no_personal_data",
            sent=True, rstatus=499, up_proto="http/1.1", dest="127.0.0.1", exact=False)

    # -- a SIGHUP reload in the middle: report-only from now on
    v0 = None
    cfg["mode"] = "report-only"
    with open(gw.path, "w") as f:
        f.write(h.to_yaml(cfg))
    mark = gw.mark()
    gw.signal(signal.SIGHUP)
    h.wait_until(lambda: "config reloaded" in gw.stderr_since(mark), timeout=10, msg="config reloaded")
    time.sleep(0.3)  # every worker took the new snapshot
    hx("report-only", "usb", "POST", "/collect", "usb.example", 200, pd_headers(), pd_body(), decision="block",
       reason="no_transfer_basis", enforced=False, sent=True, rstatus=200, up_proto="http/1.1", dest="127.0.0.3",
       after_reload=True)
    h2x("h2-report-only", "usb", "POST", "usb.example", "/collect", 200, [("content-type", "application/json")],
        pd_body(), decision="block", reason="no_transfer_basis", enforced=False, sent=True, rstatus=200,
        up_proto="http/1.1", dest="127.0.0.3", after_reload=True)
    hx("allow-after", "crm", "GET", "/v1/after?phone=" + PHONE.replace(" ", "%20").replace("+", "%2B"),
       "crm.example", 200, decision="allow", reason="domestic", sent=True, rstatus=200, up_proto="http/1.1",
       dest="127.0.0.1", after_reload=True, enforced=False)  # report-only: every record says enforced: false
    hx("413-report-only", "crm", "POST", "/upload", "crm.example", 413, [("Content-Length", "100000")],
       decision="block", reason="body_too_large", enforced=True, sent=False, rstatus=413, exact=False,
       after_reload=True)
    c2.c.sock.close()

    # Everything settles: no exchange in flight, no connection open (the h2 one closed above).
    time.sleep(1.5)
    h.wait_until(lambda: h.metric(gw.admin_port, "bordergate_inflight_exchanges") == 0, timeout=10,
                 msg="inflight_exchanges back to 0")
    h.wait_until(lambda: h.metric(gw.admin_port, "bordergate_open_connections") == 0, timeout=10,
                 msg="open_connections back to 0")
    path = cfg["records"]["path"]
    nrec = len([x for x in log.items if x["record"]])
    h.wait_until(lambda: len(h.read_records(path)) >= nrec, timeout=10, msg="%d records" % nrec)
    time.sleep(0.3)
    text = metrics_text(gw)
    records = h.read_records(path)

    # (a) one record per routed request, matched by X-Transfer-Id where the client got one
    by_id = {r["id"]: r for r in records}
    eq(len(by_id), len(records), "record ids are unique")
    unmatched = dict(by_id)
    problems = []
    for it in log.items:
        res = it["res"]
        tid = res.get("x-transfer-id") if res.status else None
        if not it["record"]:
            check(tid is None, "%s: no record, so no X-Transfer-Id (got %r)" % (it["kind"], tid))
            continue
        if tid is None and res.status:
            problems.append("%s: the client got a %d head without the X-Transfer-Id of its record"
                            % (it["kind"], res.status))
        if tid is None:  # no head (aborted before one, or none had the id): by vendor and status
            cands = [r for r in unmatched.values() if r["vendor"] == it["vendor"] and r["status"] == it["rstatus"]
                     and r["protocol"] == it["proto"]]
            check(len(cands) >= 1, "%s: no record without a transfer id: %r" % (it["kind"], list(unmatched.values())))
            tid = cands[0]["id"]
        check(tid in unmatched, "%s: no record (or two requests) for X-Transfer-Id %s" % (it["kind"], tid))
        rec = unmatched.pop(tid)
        it["rec"] = rec
        want = {"vendor": it["vendor"], "status": it["rstatus"], "protocol": it["proto"],
                "decision": it["decision"], "enforced": it.get("enforced", True),
                "upstream_protocol": it.get("up_proto")}
        got = {k: rec.get(k) for k in want}
        if "reason" in it:
            want["reason"], got["reason"] = it["reason"], rec["reason"]
        if "dest" in it:
            want["dest_ip"], got["dest_ip"] = it["dest"], rec["dest_ip"]
        if got != want:
            problems.append("%s (%s): record %r, want %r" % (it["kind"], it["proto"], got, want))
        # bytes each way: exact where the client's bytes are all known (HTTP/1.1, whole answers)
        if it["proto"] == "http/1.1" and it.get("exact", True):
            got_out = len(res.received)
            if (rec["bytes_in"], rec["bytes_out"]) != (res.sent, got_out):
                problems.append("%s: record bytes_in/out %d/%d, the client sent %d and got %d"
                                % (it["kind"], rec["bytes_in"], rec["bytes_out"], res.sent, len(res.received)))
        if it["proto"] == "h2" and it.get("exact", True):
            # under fsync: always too, where a bodiless answer's HEADERS leave only after its
            # record is durable (the record counts them all the same)
            h2_out = res.hbytes + len(res.body)
            if rec["bytes_out"] != h2_out:
                problems.append("%s (h2): record bytes_out %d, the client got %d header + %d body bytes"
                                % (it["kind"], rec["bytes_out"], res.hbytes, len(res.body)))
        if it.get("cut"):
            check(res.reset if it["proto"] == "h2" else not res.complete,
                  "%s: the client's answer was not cut" % it["kind"])
    eq(list(unmatched.values()), [], "records no request of the test explains")
    check(not problems, "record mismatches:\n  " + "\n  ".join(problems))
    versions = {it["rec"]["config_version"] for it in log.items if it.get("rec") and it.get("after_reload")}
    before = {it["rec"]["config_version"] for it in log.items if it.get("rec") and not it.get("after_reload")}
    eq((len(versions), len(before), versions & before), (1, 1, set()), "config_version before/after the reload")

    # the vendors saw exactly the transfers the records say went out
    sent_paths = collections.Counter()
    for it in log.items:
        if it.get("sent") and it["vendor"] in ("crm", "usb", "use", "fo"):
            sent_paths[(it["vendor"], it.get("path") or it["rec"]["path"])] += 1
    seen = collections.Counter()
    hostmap = {"crm.example": "crm", "usb.example": "usb", "use.example": "use", "fo.example": "fo"}
    for u in (up, up3, fo_up):
        for rq in u.requests:
            host = dict((k.lower(), v) for k, v in rq["headers"]).get("host", "") if isinstance(
                rq["headers"], list) else {k.lower(): v for k, v in rq["headers"].items()}.get("host", "")
            seen[(hostmap.get(host.split(":")[0], host), rq["target"].split("?")[0])] += 1
    eq(dict(seen), dict(sent_paths), "requests the HTTP/1.1 vendors got, by vendor and path")
    enc_req = [rq for rq in up3.requests if rq["target"] == "/track"]
    check(enc_req and EMAIL not in enc_req[0]["body"] and "bgtok:v1:" in enc_req[0]["body"],
          "the encrypted transfer reached the vendor sealed: %r" % enc_req[:1])
    check(e["rec"]["decision"] == "encrypt", "encrypt record")
    eq(p["rec"]["path"], "/v1/users/[redacted]/profile", "a personal-data path segment in the record")

    # (b) /metrics against the records and the test's log
    def mlabels(r):
        return L(vendor=r["vendor"], dest_country=r["dest_country"] or "unknown",
                 dest_region=r["dest_region"] or "unknown", decision=r["decision"], mechanism=r["mechanism"])

    want = collections.Counter(mlabels(r) for r in records)
    eq(nonzero(h.samples(text, "bordergate_transfers_total")), {k: float(v) for k, v in want.items()},
       "bordergate_transfers_total (one per record)")
    want = collections.Counter(r["decision"] for r in records)
    got = h.samples(text, "bordergate_request_duration_seconds_count")
    eq({dict(k)["decision"]: v for k, v in got.items() if v}, {k: float(v) for k, v in want.items()},
       "request_duration_seconds_count (one per record, by decision)")
    # _sum in seconds against the records' duration_ms (cut to whole milliseconds)
    got_sum = sum(h.samples(text, "bordergate_request_duration_seconds_sum").values())
    rec_sum = sum(r["duration_ms"] for r in records) / 1000.0
    check(rec_sum <= got_sum <= rec_sum + 0.001 * len(records) + 1e-6,
          "request_duration_seconds_sum %.4f, records' duration_ms sum to %.3f s" % (got_sum, rec_sum))
    want = collections.Counter(L(vendor=r["vendor"], reason=r["reason"].split(":")[0]) for r in records
                               if r["decision"] == "block" and r["enforced"])
    eq(nonzero(h.samples(text, "bordergate_blocks_total")), {k: float(v) for k, v in want.items()},
       "bordergate_blocks_total (records: decision block, enforced)")
    want = collections.Counter(L(vendor=r["vendor"], reason=r["reason"].split(":")[0]) for r in records
                               if r["decision"] == "block" and not r["enforced"])
    eq(nonzero(h.samples(text, "bordergate_report_only_blocks_total")), {k: float(v) for k, v in want.items()},
       "bordergate_report_only_blocks_total (records: decision block, not enforced)")
    want = collections.Counter(L(vendor=r["vendor"], category=c) for r in records for c in r["categories"])
    eq(nonzero(h.samples(text, "bordergate_transfer_categories_total")), {k: float(v) for k, v in want.items()},
       "bordergate_transfer_categories_total (records' categories)")
    want = collections.Counter()
    for r in records:
        for det, n in r["detections"].items():
            want[det] += n
    got = collections.Counter()
    for k, v in h.samples(text, "bordergate_personal_data_findings_total").items():
        got[dict(k)["detector"]] += int(v)
    eq(dict(+got), dict(want), "bordergate_personal_data_findings_total (records' detections)")
    eq(h.metric(gw.admin_port, "bordergate_records_written_total"), float(len(records)),
       "bordergate_records_written_total (lines in the file)")
    classes = collections.Counter()
    for it in log.items:
        st = it["res"].status
        if st or it.get("head_seen"):
            classes["%dxx" % ((st or 200) // 100)] += 1
        if getattr(it["res"], "interim", False):
            classes["1xx"] += 1
    got = {dict(k)["code"]: v for k, v in h.samples(text, "bordergate_http_responses_total").items() if v}
    eq(got, {k: float(v) for k, v in classes.items()}, "bordergate_http_responses_total (heads clients got)")
    want = collections.Counter()
    for it in log.items:
        for k, n in it["upstream_errors"].items():
            want[k] += 1 if n is None else n
    got = {(dict(k)["vendor"], dict(k)["kind"]): v for k, v in h.samples(text, "bordergate_upstream_errors_total").items()
           if v}
    fo_errors = {k: v for k, v in got.items() if k[0] == "fo"}
    got = {k: v for k, v in got.items() if k[0] != "fo"}
    eq(got, {k: float(v) for k, v in want.items()}, "bordergate_upstream_errors_total")
    # failover: a failure of 127.0.0.2 is counted whenever a request tried it first (round robin)
    check(set(fo_errors) <= {("fo", "connect"), ("fo", "circuit_open")} and sum(fo_errors.values()) <= 2,
          "failover's upstream errors: %r" % fo_errors)
    eq(h.metric(gw.admin_port, "bordergate_limited_total", {"scope": "listener", "kind": "requests"}), 1.0,
       "bordergate_limited_total{listener,requests}")
    eq(h.metric(gw.admin_port, "bordergate_config_reloads_total", {"result": "success"}), 1.0, "reloads")
    eq(h.metric(gw.admin_port, "bordergate_records_refused_total"), 0.0, "records_refused_total")

    # (c) SIGTERM while an exchange is in flight: it finishes, and its record is written
    import threading
    drained = {}
    t = threading.Thread(target=lambda: drained.setdefault("r", h1(port, "GET", "/delay/600", "crm.example")))
    t.start()
    h.wait_until(lambda: h.metric(gw.admin_port, "bordergate_inflight_exchanges") == 1, timeout=5, msg="in flight")
    gw.stop()
    t.join(10)
    dr = drained.get("r")
    check(dr is not None and dr.status == 200, "the exchange in flight at SIGTERM was answered: %r"
          % (dr and dr.status))
    after = h.read_records(path)
    eq(len(after), len(records) + 1, "records after SIGTERM")
    last = [r for r in after if r["id"] == dr.get("x-transfer-id")]
    check(last and (last[0]["status"], last[0]["bytes_out"]) == (200, len(dr.received)),
          "the drained exchange's record: %r" % last)
    records = after
    out = h.run([h.BINARY, "records", "verify", path])
    eq(out.returncode, 0, "records verify: %s %s" % (out.stdout, out.stderr))
    check("OK: %d records" % len(records) in out.stdout, "verify: %r" % out.stdout)

    # the Art. 30 inventory counts what happened: a report-only would-be block went out
    out = h.run([h.BINARY, "records", "report", path, "--format", "json"])
    eq(out.returncode, 0, "records report: %s" % out.stderr)
    rep = json.loads(out.stdout)
    want = {}
    for r in records:
        col = {"allow": "allowed", "encrypt": "encrypted"}.get(r["decision"]) or (
            "blocked" if r["enforced"] else "report_only")
        for cat in r["categories"] or ["none"]:
            row = want.setdefault((r["vendor"], r["dest_country"] or "unknown", r["mechanism"], cat),
                                  {"allowed": 0, "encrypted": 0, "blocked": 0, "report_only": 0})
            row[col] += 1
    got = {(x["vendor"], x["dest_country"], x["mechanism"], x["category"]):
           {k: x.get(k) for k in ("allowed", "encrypted", "blocked", "report_only")} for x in rep["rows"]}
    eq(got, want, "records report rows (Art. 30 inventory)")
    went_out = sum(1 for it in log.items if it.get("sent") and it.get("decision") == "block")
    eq(sum(x["report_only"] for x in rep["rows"] if x["category"] != "none") > 0, went_out > 0,
       "report-only transfers in the inventory")

    # (d) no personal-data value in a record or a log line
    raw = open(path, encoding="utf-8").read()
    logs = gw.stderr()
    for v in PD_VALUES:
        check(v not in raw, "a record holds %r" % v)
        check(v not in logs, "a log line holds %r" % v)
    found = h.scan_records(records)
    eq(found, [], "the gateway's detectors on its own records")


@test
def records_backpressure_503s_reconcile():
    """A stalled records disk (harness.start_stallable's shim): the 503s leave no record and
    no transfer id, and only bordergate_records_refused_total and http_responses_total{5xx} count
    them; every forwarded request has its record and its transfers_total count."""
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("crm", ["crm.example"], up.port)], workers=1)
    cfg["records"]["queue_size"] = 16
    cfg["records"]["path"] = os.path.join(h.tmpdir(), "bp-records", "bp.jsonl")
    gate = os.path.join(h.tmpdir(), "reconcile-gate")
    gw = h.start_stallable(cfg, gate, "bp")
    h.defer(lambda: os.path.exists(gate) and os.unlink(gate))
    forwarded, refused, classes = [], 0, collections.Counter()

    def one(i, proto):
        nonlocal refused
        if proto == "h2":
            c = H2Client(gw.port())
            r = c.do("GET", "crm.example", "/h2/%d?email=%s" % (i, EMAIL))
            c.c.sock.close()
        else:
            r = h1(gw.port(), "GET", "/h1/%d?email=%s" % (i, EMAIL), "crm.example")
        classes["%dxx" % (r.status // 100)] += 1
        if r.status == 503:
            refused += 1
            eq(r.get("x-transfer-id"), None, "a 503 names no transfer id")
        else:
            eq(r.status, 200, "request %d" % i)
            forwarded.append(r.get("x-transfer-id"))
        return r.status

    one(0, "http/1.1")
    h.wait_record(cfg["records"]["path"], forwarded[0])
    open(gate, "w").close()
    one(1, "http/1.1")
    time.sleep(0.3)  # the writer takes that record into a write that stalls: no slot comes free later
    for i in range(2, 100):
        if one(i, "http/1.1") == 503:
            break
    check(refused == 1, "no 503 with the records disk stalled")
    eq(one(100, "h2"), 503, "an HTTP/2 request while stalled")
    os.unlink(gate)
    h.wait_until(lambda: len(h.read_records(cfg["records"]["path"])) == len(forwarded), timeout=10,
                 msg="the writer caught up (%d forwarded, %d records)"
                 % (len(forwarded), len(h.read_records(cfg["records"]["path"]))))
    one(101, "h2")
    one(102, "http/1.1")
    h.wait_until(lambda: h.metric(gw.admin_port, "bordergate_inflight_exchanges") == 0, timeout=5, msg="inflight 0")
    h.wait_until(lambda: len(h.read_records(cfg["records"]["path"])) == len(forwarded), timeout=5, msg="records")
    text = metrics_text(gw)
    eq(h.metric(gw.admin_port, "bordergate_records_refused_total"), float(refused), "records_refused_total")
    got = {dict(k)["code"]: v for k, v in h.samples(text, "bordergate_http_responses_total").items() if v}
    eq(got, {k: float(v) for k, v in classes.items()}, "http_responses_total")
    eq(sum(h.samples(text, "bordergate_transfers_total").values()), float(len(forwarded)), "transfers_total")
    eq(h.metric(gw.admin_port, "bordergate_records_written_total"), float(len(forwarded)), "records_written_total")
    eq(h.metric(gw.admin_port, "bordergate_records_slots_used"), 0.0, "records_slots_used back to 0")
    gw.stop()
    recs = h.read_records(cfg["records"]["path"])
    eq(sorted(r["id"] for r in recs), sorted(forwarded), "one record per forwarded request, none for the 503s")
    eq(up.count(), len(forwarded), "requests the vendor got")
    out = h.run([h.BINARY, "records", "verify", cfg["records"]["path"]])
    eq(out.returncode, 0, "records verify: %s %s" % (out.stdout, out.stderr))
    for v in PD_VALUES:
        check(v not in gw.stderr() and v not in open(cfg["records"]["path"]).read(), "%r in a record or log" % v)


@test
def metrics_totals_stay_exact_past_max_series():
    """metrics.max_series: 16 and 24 vendors, each sent a request with and one without personal
    data over two workers: far more label sets than a worker may hold. transfers_total,
    transfer_categories_total, personal_data_findings_total and request_duration_seconds_count
    still sum to exactly what the records say (what found the table full is in each family's
    overflow="true" series), and bordergate_metrics_series_dropped_total moved. Before, every
    label set past 4096 was simply not counted (and the bound was fixed)."""
    up = h.upstream()
    n = 24
    cfg = h.gateway_config([h.vendor("v%02d" % i, ["v%02d.example" % i], up.port) for i in range(n)], workers=2)
    cfg["metrics"] = {"max_series": 16}
    cfg["records"]["path"] = os.path.join(h.tmpdir(), "series-records", "s.jsonl")
    gw = h.Gateway(cfg, name="series").start()
    hdr = {"Content-Type": "application/json"}
    for i in range(n):
        host = "v%02d.example" % i
        eq(h.http_post(gw.port(), "/echo", json.dumps({"email": EMAIL}).encode(), headers=dict(hdr, Host=host))[0],
           200, "a request with personal data to %s" % host)
        eq(h.http_get(gw.port(), "/plain", headers={"Host": host})[0], 200, "a request without to %s" % host)
    h.wait_until(lambda: h.metric(gw.admin_port, "bordergate_inflight_exchanges") == 0, timeout=5, msg="inflight 0")
    h.wait_until(lambda: len(h.read_records(cfg["records"]["path"])) == 2 * n, timeout=5, msg="records")
    recs = h.read_records(cfg["records"]["path"])
    text = metrics_text(gw)

    def total(name):
        return sum(h.samples(text, name).values())

    eq(total("bordergate_transfers_total"), float(len(recs)), "sum of transfers_total vs records")
    eq(total("bordergate_request_duration_seconds_count"), float(len(recs)), "request_duration_seconds_count")
    eq(total("bordergate_transfer_categories_total"), float(sum(len(r["categories"]) for r in recs)),
       "sum of transfer_categories_total vs the records' categories")
    eq(total("bordergate_personal_data_findings_total"),
       float(sum(sum(r["detections"].values()) for r in recs)), "sum of personal_data_findings_total vs detections")
    check(h.metric(gw.admin_port, "bordergate_metrics_series_dropped_total") > 0, "series_dropped_total did not move")
    over = h.samples(text, "bordergate_transfers_total").get(L(overflow="true"))
    check(over, "no transfers_total{overflow=\"true\"} sample: %r" % sorted(h.samples(text, "bordergate_transfers_total")))
    labelled = [k for k in h.samples(text, "bordergate_transfers_total") if dict(k).get("vendor")]
    check(len(labelled) <= 2 * 16, "%d labelled transfers_total series from 2 workers of 16" % len(labelled))
    gw.stop()


if __name__ == "__main__":
    h.main()
