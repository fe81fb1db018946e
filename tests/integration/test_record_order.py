#!/usr/bin/env python3
"""test_record_order.py -- under records.fsync: always no answer is complete at the client before
its transfer record is on disk (README: "an answer waits until its record is on disk").

The gateway runs with harness.start_stallable's shim: while a gate file exists, the records
writer's write/fsync hang (a disk that does not answer). Each case starts a real client (curl,
HTTP/1.1 or h2c by prior knowledge) with the gate in place, waits, and wants the client still
waiting: its answer may not be complete while its record cannot be durable. Then the gate goes,
and the client gets the whole answer and the record is there.

Vendors: build/tests/tools/h2echo (HTTP/2 over TLS), whose /empty answers with a head declaring
content-length: 0 but ends its stream later (an empty DATA frame, or trailers); the HTTP/1.1
test upstream (Content-Length: 0, 204, 304, HEAD); and sealed US vendors with reveal_responses,
whose answer the gateway rebuilds (opened tokens, a new length) before relaying it. Last, a
client that resets its HTTP/2 stream while a content-length: 0 head waits for the vendor's end is
recorded as gone (499), not as answered, and so is an HTTP/1.1 client that closes (or half-closes:
the two look alike) meanwhile. Trailers behind such a head reach an HTTP/2 client (an HTTP/1.1
client's Content-Length: 0 answer has no place for them). A vendor that resets its stream after
such a head has sent the client nothing yet: the client gets a whole 502 and the record says 502;
an HTTP/1.1 vendor's Content-Length: 0 head is its whole answer, whatever the vendor does next.
Ends with "N passed, N failed".
"""
import json
import os
import socket
import struct
import threading
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402
from h2wire import DATA, END_HEADERS, END_STREAM, HEADERS, RST_STREAM, H2Conn, frame, hpack_request  # noqa: E402

HOLD = 0.8  # seconds the record's write is held while the client must still be waiting
EMAIL = "jane.doe@example.com"
PROTO = {"h1": "--http1.1", "h2": "--http2-prior-knowledge"}


def h2vendor(name, host, port, addr="127.0.0.1", **kw):
    return h.vendor(name, [host], port, tls=True, ca=h.cert("ca.crt"), addresses=[addr], **kw)


def cut_vendor():
    """An HTTP/1.1 vendor that answers every request with a Content-Length: 0 head and then
    resets its connection (SO_LINGER 0). Its port."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)  # open until the process exits (env is made once; h.defer is per test)

    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            got = b""
            c.settimeout(5)
            try:
                while b"\r\n\r\n" not in got:
                    d = c.recv(65536)
                    if not d:
                        break
                    got += d
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                time.sleep(0.05)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    return ls.getsockname()[1]


@h.once
def env():
    e = type("E", (), {})()
    e.echo = h.h2echo()
    e.echo_us = h.h2echo("127.0.0.3")
    e.up = h.upstream()
    e.up_us = h.upstream(host="127.0.0.3")
    sealed = {"basis": "none", "on_violation": "encrypt", "reveal_responses": True}
    vendors = [
        h2vendor("h2v", "h2.vendor.test", e.echo),
        h.vendor("h1v", ["h1.vendor.test"], e.up.port),
        h.vendor("h1cut", ["h1cut.vendor.test"], cut_vendor()),
        h.us_vendor(h2vendor("sealed-h2", "sealed-h2.vendor.test", e.echo_us, "127.0.0.3", **sealed)),
        h.us_vendor(h.vendor("sealed-h1", ["sealed-h1.vendor.test"], e.up_us.port, addresses=["127.0.0.3"],
                             **sealed)),
    ]
    cfg = h.gateway_config(vendors)
    cfg["records"]["fsync"] = "always"
    e.records = cfg["records"]["path"]
    e.gate = os.path.join(h.tmpdir(), "record-gate")
    e.gw = h.start_stallable(cfg, e.gate, "order")
    e.n = 0
    return e


def parse_head(path):
    """The last response head curl wrote with -D: (status, {lowercased name: value})."""
    with open(path, "rb") as f:
        text = f.read().decode("latin-1")
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if b.startswith("HTTP/")]
    if not blocks:
        return None, {}
    lines = blocks[-1].split("\n")
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), fields


def answer_waits(proto, host, path, method="GET", body=None):
    """One exchange with the records disk held: the client must still wait after HOLD seconds
    and no record may be on disk yet; once the disk answers, the client completes and the
    record is there. Returns (status, fields, body bytes, record)."""
    e = env()
    e.n += 1
    what = "%s %s%s over %s" % (method, host, path, proto)
    hdr = os.path.join(h.tmpdir(), "order-%d.head" % e.n)
    out = os.path.join(h.tmpdir(), "order-%d.body" % e.n)
    args = ["curl", "-s", "-S", "--max-time", "20", PROTO[proto], "-H", "Host: " + host, "-D", hdr, "-o", out]
    if method == "HEAD":
        args.append("-I")
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", body]
    args.append("http://127.0.0.1:%d%s" % (e.gw.port(), path))
    before = len(h.read_records(e.records))
    open(e.gate, "w").close()
    h.defer(lambda: os.path.exists(e.gate) and os.unlink(e.gate))
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    h.defer(lambda: p.poll() is None and p.kill())
    time.sleep(HOLD)
    if p.poll() is not None:
        status, fields = parse_head(hdr) if os.path.exists(hdr) else (None, {})
        raise h.Failure("%s: the client had its whole answer (curl exit %d, status %s, content-length %s) "
                        "while its record could not be written" % (what, p.returncode, status,
                                                                   fields.get("content-length")))
    eq(len(h.read_records(e.records)), before, "%s: records on disk while the gate held" % what)
    os.unlink(e.gate)
    try:
        _, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        raise h.Failure("%s: no answer within 10 s once the records disk answered" % what)
    eq(p.returncode, 0, "%s: curl exit (%s)" % (what, err.decode(errors="replace").strip()))
    status, fields = parse_head(hdr)
    got = b""
    if os.path.exists(out):  # curl makes no file for an empty body
        with open(out, "rb") as f:
            got = f.read()
    tid = fields.get("x-transfer-id")
    check(tid, "%s: no x-transfer-id in %r" % (what, fields))
    rec = h.wait_record(e.records, tid)
    eq(rec["status"], status, "%s: the record's status" % what)
    return status, fields, got, rec


def every(cases, one):
    """Run one(*case) for each case; fail with every failing case's message, not the first only."""
    bad = []
    for case in cases:
        try:
            one(*case)
        except h.Failure as err:
            bad.append(str(err))
    check(not bad, "%d of %d cases:\n  %s" % (len(bad), len(cases), "\n  ".join(bad)))


@test
def h2_vendor_head_declaring_no_body_but_ending_later_waits_for_the_record():
    """The vendor's HEADERS say content-length: 0 without END_STREAM; the stream ends 300 ms
    later (an empty DATA frame, or trailers), or at once after the head. The head is the whole
    answer to either client (HTTP/1.1 Content-Length: 0; HTTP/2 HEADERS with END_STREAM): it may
    leave only once the record is on disk, as every other answer under fsync: always."""
    def one(proto, path):
        status, fields, body, rec = answer_waits(proto, "h2.vendor.test", path)
        what = "%s over %s" % (path, proto)
        eq((status, body), (200, b""), what)
        eq(fields.get("content-length"), "0", "%s: the declared length" % what)
        eq((rec["upstream_protocol"], rec["status"]), ("h2", 200), "%s: record" % what)
    every([(proto, path) for proto in ("h1", "h2") for path in ("/empty?ms=300", "/empty?ms=300&trailers", "/empty")],
          one)


@test
def bodiless_and_held_tail_answers_wait_for_the_record():
    """The other answers that are whole from their head, or all but their last byte: HTTP/1.1
    vendor Content-Length: 0, 204, 304, HEAD; HTTP/2 vendor HEAD; a body (its last byte held)."""
    cases = [("h1.vendor.test", "/bytes/0", "GET", 200), ("h1.vendor.test", "/status/204", "GET", 204),
             ("h1.vendor.test", "/status/304", "GET", 304), ("h1.vendor.test", "/bytes/10", "HEAD", 200),
             ("h1.vendor.test", "/bytes/10", "GET", 200), ("h2.vendor.test", "/echo", "HEAD", 200),
             ("h2.vendor.test", "/big?n=10", "GET", 200)]
    def one(proto, host, path, method, want):
        status, fields, body, rec = answer_waits(proto, host, path, method)
        what = "%s %s%s over %s" % (method, host, path, proto)
        eq(status, want, what)
        if method == "GET":  # (curl -I writes the head where the body would go)
            eq(len(body), 10 if path.endswith("10") else 0, "%s: body" % what)
    every([(proto,) + case for proto in ("h1", "h2") for case in cases], one)


@test
def revealed_answer_waits_for_the_record():
    """reveal_responses: the vendor's answer is buffered, its tokens opened, and sent with the new
    length; its last byte too waits for the record."""
    doc = json.dumps({"user": {"email": EMAIL, "plan": "pro"}})
    def one(host, path, proto):
        status, fields, body, rec = answer_waits(proto, host, path, "POST", doc)
        what = "%s%s over %s" % (host, path, proto)
        eq(status, 200, what)
        check(EMAIL.encode() in body and b"bgtok:" not in body, "%s: opened: %r" % (what, body[:300]))
        eq(fields.get("content-length"), str(len(body)), "%s: the revealed length" % what)
        eq(rec["decision"], "encrypt", "%s: record" % what)
    every([(host, path, proto) for host, path in (("sealed-h1.vendor.test", "/echo"),
                                                   ("sealed-h2.vendor.test", "/echo-body"))
           for proto in ("h1", "h2")], one)


@test
def client_reset_while_a_head_without_body_waits_for_the_vendor_is_499():
    """The head declaring content-length: 0 is held until the vendor's stream ends (2 s here). An
    HTTP/2 client that resets its stream meanwhile never got its answer: the record says 499 at
    once, as for any answer a client left before it was complete, not 200 once the vendor ends,
    and counts no bytes out: the held head never left. (HTTP/1.1: the next case.)"""
    e = env()

    def record_of_path(path):
        got = [r for r in h.read_records(e.records) if r.get("path") == path]
        return got[0] if got else None

    c = H2Conn(e.gw.port())
    h.defer(c.sock.close)
    c.sock.sendall(frame(HEADERS, END_STREAM | END_HEADERS, 1,
                         hpack_request("GET", "h2.vendor.test", "/empty-reset?ms=2000")))
    time.sleep(0.5)
    c.sock.sendall(frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))  # CANCEL
    t0 = time.monotonic()
    h.wait_until(lambda: record_of_path("/empty-reset"), timeout=5, msg="a record for the reset stream")
    dt = time.monotonic() - t0
    rec = record_of_path("/empty-reset")
    eq(rec["status"], 499, "HTTP/2 stream reset while its head was held: record %r" % rec)
    eq(rec["bytes_out"], 0, "the held head never left: record %r" % rec)
    check(dt < 1.2, "the record came %.1fs after the reset (at the vendor's end?)" % dt)
    time.sleep(max(0.0, 1.6 - dt))  # h2echo's connection thread sleeps until the vendor's end


@test
def http1_client_gone_while_a_head_without_body_waits_for_the_vendor_is_499():
    """The HTTP/1.1 side of the case above. A client that closes its connection while the head
    declaring content-length: 0 waits for the vendor's end never gets its answer: 499 at once,
    nothing sent, not 200 once the vendor ends. A client that only shuts its write side down
    sends the very same FIN, so it is treated alike; what it sees is what the record says: the
    connection closes with no answer."""
    e = env()
    for how in ("close", "shutdown"):
        path = "/empty-h1-%s" % how
        c = h.Conn(e.gw.port())
        h.defer(c.close)
        c.send(b"GET %s?ms=2000 HTTP/1.1\r\nHost: h2.vendor.test\r\n\r\n" % path.encode())
        time.sleep(0.5)
        if how == "close":
            c.close()
        else:
            c.sock.shutdown(socket.SHUT_WR)
        t0 = time.monotonic()
        h.wait_until(lambda: [r for r in h.read_records(e.records) if r.get("path") == path], timeout=5,
                     msg="a record for the HTTP/1.1 client that %s" % how)
        dt = time.monotonic() - t0
        rec = [r for r in h.read_records(e.records) if r.get("path") == path][0]
        eq((rec["status"], rec["bytes_out"]), (499, 0), "HTTP/1.1 client %s while its head was held: %r" % (how, rec))
        check(dt < 1.2, "%s: the record came %.1fs after the client left (at the vendor's end?)" % (how, dt))
        if how == "shutdown":
            eq(c.read_until_close(3), b"", "the half-closed client's view")
        time.sleep(max(0.0, 1.6 - dt))  # h2echo's connection thread sleeps until the vendor's end


def h2_answer(c, sid, timeout=10):
    """The frames of stream sid until its END_STREAM or RST_STREAM (None at EOF or timeout)."""
    got = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        f = c.read(max(0.05, end - time.monotonic()))
        if f is None:
            break
        if f[2] != sid:
            continue
        got.append(f)
        if f[0] == RST_STREAM or (f[0] in (HEADERS, DATA) and f[1] & END_STREAM):
            break
    return got


def field_bytes(fields):
    """What the gateway counts for HTTP/2 fields in bytes_out: name + value + 4 each."""
    return sum(len(n) + len(v) + 4 for n, v in fields)


@test
def trailers_behind_a_head_without_body_reach_the_client():
    """The vendor's head says content-length: 0 and its stream ends with trailers. An HTTP/2
    client gets them (HEADERS, then the trailers' HEADERS with END_STREAM), both held until the
    record is durable and counted in it. An HTTP/1.1 client gets Content-Length: 0 and no
    trailers, as for any answer whose length is declared (RFC 9110 6.5.1; test_trailers)."""
    e = env()
    open(e.gate, "w").close()
    h.defer(lambda: os.path.exists(e.gate) and os.unlink(e.gate))
    c = H2Conn(e.gw.port())
    h.defer(c.sock.close)
    c.sock.sendall(frame(HEADERS, END_STREAM | END_HEADERS, 1,
                         hpack_request("GET", "h2.vendor.test", "/empty?ms=300&trailers")))
    early = h2_answer(c, 1, HOLD)
    check(not early, "frames of the answer while its record could not be written: %r" % early)
    os.unlink(e.gate)
    got = h2_answer(c, 1)
    kinds = [(f[0], bool(f[1] & END_STREAM)) for f in got]
    eq(kinds, [(HEADERS, False), (HEADERS, True)], "the frames: the head, then the trailers")
    head, trailers = dict(got[0][3]), dict(got[1][3])
    eq((head.get(":status"), head.get("content-length")), ("200", "0"), "the head %r" % head)
    eq((trailers.get("grpc-status"), trailers.get("grpc-message"), trailers.get("x-checksum")),
       ("0", "all good", "abc123"), "the trailers %r" % trailers)
    check("set-cookie" not in trailers and "content-type" not in trailers, "filtered: %r" % trailers)
    rec = h.wait_record(e.records, head.get("x-transfer-id"))
    eq((rec["status"], rec["bytes_out"]), (200, field_bytes(got[0][3]) + field_bytes(got[1][3])),
       "record (bytes_out: the head's and the trailers' fields)")
    # HTTP/1.1: the declared length stays, the trailers go; bytes_out is the head that went.
    c1 = h.Conn(e.gw.port())
    h.defer(c1.close)
    c1.send(b"GET /empty?ms=300&trailers HTTP/1.1\r\nHost: h2.vendor.test\r\nConnection: close\r\n\r\n")
    raw = c1.read_until_close(10)
    head1, sep, rest = raw.partition(b"\r\n\r\n")
    check(sep and rest == b"", "one head and nothing after it: %r" % raw)
    check(b"content-length: 0\r\n" in head1.lower() + b"\r\n", "Content-Length: 0 in %r" % head1)
    check(b"grpc-status" not in raw.lower(), "a trailer in an answer with a declared length: %r" % raw)
    tid = [ln.split(b":", 1)[1].strip().decode() for ln in head1.split(b"\r\n") if ln.lower().startswith(b"x-transfer-id:")]
    check(tid, "no x-transfer-id in %r" % head1)
    rec = h.wait_record(e.records, tid[0])
    eq((rec["status"], rec["bytes_out"]), (200, len(raw)), "HTTP/1.1 record")


@test
def vendor_reset_after_a_head_without_body_is_a_whole_502():
    """The HTTP/2 vendor's head says content-length: 0, then it resets the stream. Nothing of
    that head has left (it waits for the stream's end): the client gets a whole 502 (problem
    JSON), as for a vendor that fails before its head, and the record says 502 and counts what
    went. Neither a 200 passed off as complete, nor a reset the record calls 502."""
    def answers():
        port = env().gw.admin_port
        return [h.metric(port, "bordergate_http_responses_total", {"code": c}) or 0 for c in ("2xx", "5xx")]

    def one(proto):
        before = answers()
        status, fields, body, rec = answer_waits(proto, "h2.vendor.test", "/empty-rst?ms=300&rst")
        what = "vendor reset after a content-length: 0 head, over %s" % proto
        after = answers()
        eq((after[0] - before[0], after[1] - before[1]), (0, 1), "%s: answers counted (2xx, 5xx)" % what)
        eq(status, 502, what)
        eq(fields.get("content-type"), "application/problem+json", what)
        doc = json.loads(body)
        eq((doc.get("type"), doc.get("transfer_id")),
           ("https://bordergate.dev/problems/upstream-failed", fields.get("x-transfer-id")), "%s: %r" % (what, doc))
        eq(rec["status"], 502, what)
        if proto == "h1":  # curl -D wrote the head as it came
            with open(os.path.join(h.tmpdir(), "order-%d.head" % env().n), "rb") as f:
                eq(rec["bytes_out"], len(f.read()) + len(body), "%s: bytes_out" % what)
    every([("h1",), ("h2",)], one)


@test
def http1_vendor_closing_after_a_content_length_0_head_was_complete():
    """An HTTP/1.1 vendor's Content-Length: 0 head is its whole answer: a reset after it breaks
    nothing. The client gets the 200 (once the record is durable) and the record says 200."""
    def one(proto):
        status, fields, body, rec = answer_waits(proto, "h1cut.vendor.test", "/after-head")
        eq((status, body, fields.get("content-length")), (200, b"", "0"), proto)
        eq((rec["status"], rec["upstream_protocol"]), (200, "http/1.1"), proto)
    every([("h1",), ("h2",)], one)


if __name__ == "__main__":
    h.main()
