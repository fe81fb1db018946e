#!/usr/bin/env python3
"""test_errors_after_answer.py -- once any byte of an answer has gone to the client, a failure
can only break the connection (HTTP/1.1) or reset the stream (HTTP/2): never an error status
written on top of the partial answer, which the client would read as part of the body. Here the
vendor (upstream.py's /early) answers before it has read the request body, so the answer is
streaming while the client is still sending; then the client's body goes wrong (a malformed
chunk, an oversize trailer section, more than max_body, a stall past idle_timeout) and the
client must see a truncated answer and a close (or RST_STREAM, never a second HEADERS), the
record must say 499 (like any client that went away mid-answer) and /metrics must count the
one answer that started, not a second one, nor an upstream error. Also the same failures before
any answer byte (a 400 or 408, recorded as such, not a vendor 504), and a 100 Continue that
must not follow a final answer (fsync: always holds a 413's last byte for its record)."""

import json
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402

from h2wire import DATA, END_HEADERS, END_STREAM, HEADERS, RST_STREAM, H2Conn, frame, hpack_request  # noqa: E402

SCAN = 1024  # max_body_scan: a body past it is decided on its prefix and streams to the vendor


class Env:
    pass


@h.once
def env():
    e = Env()
    e.up = h.upstream()
    vendors = [h.vendor("early", ["early.test"], e.up.port, max_body="64KiB")]
    cfg = h.gateway_config(vendors, limits={"max_body_scan": "%dB" % SCAN, "oversize_body": "personal",
                                            "idle_timeout": "2s", "body_timeout": "1s",
                                            "upstream_timeout": "20s"})
    e.records = cfg["records"]["path"]
    e.gw = h.Gateway(cfg, name="errafter").start()
    e.port = e.gw.port()
    return e


def responses(e, cls):
    return h.metric(e.gw.admin_port, "bordergate_http_responses_total", {"code": cls}) or 0


def counts(e):
    return {c: responses(e, c) for c in ("2xx", "4xx", "5xx")}


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


def read_head(c):
    """The status code and fields of a response head read from a raw connection."""
    line = c._line().decode("latin-1")
    check(line.startswith("HTTP/1.1 "), "a status line: %r" % line)
    fields = h.Headers()
    while True:
        f = c._line().decode("latin-1")
        if not f:
            break
        n, _, v = f.partition(":")
        fields.append((n.strip(), v.strip()))
    return int(line.split(" ")[1]), fields


def answer_started(e, first=100):
    """A chunked POST to /early whose first chunk is past max_body_scan: decided on its prefix and
    streamed to the vendor, which answers at once. Returns (conn, transfer id) once the answer's
    head and first chunk (`first` bytes) have reached the client; the request body is not ended."""
    c = h.Conn(e.port, timeout=5)
    c.send(h.request("POST", "/early/%d" % first, "early.test",
                     [("Content-Type", "application/octet-stream"), ("Transfer-Encoding", "chunked")]))
    c.send(chunk(h.pattern(SCAN + 500)))
    status, fields = read_head(c)
    eq(status, 200, "the vendor's early answer")
    eq((fields.get("transfer-encoding") or "").lower(), "chunked")
    size = int(c._line(), 16)
    eq(size, first, "the first chunk's size")
    eq(c._exact(size + 2), h.pattern(first) + b"\r\n", "the first chunk")
    return c, fields.get("x-transfer-id")


def cut_without_second_status(c, why):
    """After the client's failure: only EOF (or a reset) follows, with no status line of a second
    answer and no last chunk (the answer must look truncated, never complete)."""
    rest = c.read_until_close(timeout=5)
    check(b"HTTP/1." not in rest, "%s: no second status line after the answer started; got %r" % (why, rest[:300]))
    check(b"0\r\n\r\n" not in rest, "%s: the cut answer does not end like a complete one: %r" % (why, rest[:300]))


def record(e, tid):
    check(tid, "X-Transfer-Id in the answer")
    return h.wait_record(e.records, tid)


def metrics_one_answer(e, before, why):
    """Exactly one answer counted since `before`: the vendor's 2xx head that went out."""
    after = h.wait_until(lambda: (lambda a: a if a["2xx"] == before["2xx"] + 1 else None)(counts(e)),
                         msg="%s: the 2xx answer counted" % why)
    eq((after["4xx"] - before["4xx"], after["5xx"] - before["5xx"]), (0, 0),
       "%s: no error answer counted after the 2xx one" % why)


# ---- HTTP/1.1 ---------------------------------------------------------------------------------

@test
def malformed_chunk_after_the_answer_started_closes_without_a_second_status():
    e = env()
    before = counts(e)
    c, tid = answer_started(e)
    c.send(b"zz\r\n")  # not a chunk size
    cut_without_second_status(c, "malformed chunk")
    eq(record(e, tid)["status"], 499, "recorded like a client that broke off mid-answer")
    metrics_one_answer(e, before, "malformed chunk")
    check(e.gw.alive(), "gateway alive")


@test
def client_eof_after_the_answer_started_is_the_reference():
    """What the others must match: a client that goes away mid-body while its answer streams."""
    e = env()
    before = counts(e)
    c, tid = answer_started(e)
    c.sock.shutdown(socket.SHUT_WR)
    cut_without_second_status(c, "client EOF")
    eq(record(e, tid)["status"], 499, "a client that went away mid-answer")
    metrics_one_answer(e, before, "client EOF")


@test
def oversize_trailer_section_after_the_answer_started_closes_without_a_second_status():
    """A trailer section past the decoder's hard bound (2 x 64 KiB) fails the body like a malformed
    chunk; after the decision its fields are dropped anyway, and the answer has begun."""
    e = env()
    before = counts(e)
    c, tid = answer_started(e)
    try:
        c.send(b"0\r\n" + b"".join(b"X-T%d: %s\r\n" % (i, b"t" * 1000) for i in range(140)) + b"\r\n")
    except OSError:
        pass  # closed while sending: read what came
    cut_without_second_status(c, "oversize trailers")
    eq(record(e, tid)["status"], 499, "recorded like a client that broke off mid-answer")
    metrics_one_answer(e, before, "oversize trailers")


@test
def body_over_max_body_after_the_answer_started_is_cut_not_answered_413():
    e = env()
    before = counts(e)
    c, tid = answer_started(e)
    try:
        for _ in range(80):  # 80 KiB more: past the vendor's max_body (64 KiB)
            c.send(chunk(b"b" * 1024))
    except OSError:
        pass
    cut_without_second_status(c, "over max_body")
    eq(record(e, tid)["status"], 499, "recorded like a client that broke off mid-answer")
    metrics_one_answer(e, before, "over max_body")



@test
def stalled_body_after_the_answer_started_is_cut_at_the_idle_timeout_not_answered_408():
    """body_timeout (1 s) bounds a body the gateway holds for its decision; once decided, the body
    streams to the vendor and only idle_timeout (2 s) between reads applies. Either way the
    answer has begun: no 408 on top of it, and the stall is the client's, not the vendor's
    (upstream_timeout is 20 s: no 502/504, no upstream error)."""
    e = env()
    before = counts(e)
    up_err = h.metric(e.gw.admin_port, "bordergate_upstream_errors_total", {"vendor": "early"}) or 0
    c, tid = answer_started(e)
    t0 = time.monotonic()
    cut_without_second_status(c, "stalled body")
    dt = time.monotonic() - t0
    check(1.5 <= dt < 4.0, "cut %.1fs into the stall (idle_timeout 2s)" % dt)
    eq(record(e, tid)["status"], 499, "recorded like a client that broke off mid-answer")
    metrics_one_answer(e, before, "stalled body")
    eq(h.metric(e.gw.admin_port, "bordergate_upstream_errors_total", {"vendor": "early"}) or 0, up_err,
       "the client's stall is no vendor error")


@test
def stalled_body_before_any_answer_is_a_408_at_the_idle_timeout():
    """The same stall while the vendor waits for the rest of the body (/echo) and nothing was
    answered: the client's silence gets its 408 (recorded so), not the vendor a 504 at
    upstream_timeout."""
    e = env()
    up_err = h.metric(e.gw.admin_port, "bordergate_upstream_errors_total", {"vendor": "early"}) or 0
    c = h.Conn(e.port, timeout=5)
    c.send(h.request("POST", "/echo/stall", "early.test",
                     [("Content-Type", "application/octet-stream"), ("Transfer-Encoding", "chunked")]))
    c.send(chunk(h.pattern(SCAN + 500)))
    t0 = time.monotonic()
    r = c.read_response()
    dt = time.monotonic() - t0
    eq(r.status, 408, repr(r))
    check(1.5 <= dt < 4.0, "408 %.1fs into the stall (idle_timeout 2s)" % dt)
    check(c.is_closed(2), "closed after the 408")
    recs = h.wait_until(lambda: [x for x in h.read_records(e.records) if x["path"] == "/echo/stall" and x["status"] == 408],
                        msg="a 408 record")
    check(recs, "recorded as 408")
    eq(h.metric(e.gw.admin_port, "bordergate_upstream_errors_total", {"vendor": "early"}) or 0, up_err,
       "the client's stall is no vendor error")


@test
def malformed_chunk_before_any_answer_is_still_a_400_and_recorded_so():
    """Control: the vendor reads the whole body before it answers (/echo), so nothing was answered
    yet when the chunk goes wrong: a 400 problem answer, and the record says 400 too."""
    e = env()
    before = counts(e)
    c = h.Conn(e.port, timeout=5)
    c.send(h.request("POST", "/echo", "early.test",
                     [("Content-Type", "application/octet-stream"), ("Transfer-Encoding", "chunked")]))
    c.send(chunk(h.pattern(SCAN + 500)))
    time.sleep(0.3)  # decided and streaming to the vendor, which waits for the rest
    c.send(b"zz\r\n")
    r = c.read_response()
    eq(r.status, 400, repr(r))
    eq(r.json()["detail"], "malformed chunked body")
    check(c.is_closed(2), "closed after the 400")
    after = h.wait_until(lambda: (lambda a: a if a["4xx"] == before["4xx"] + 1 else None)(counts(e)),
                         msg="the 400 counted")
    eq(after["2xx"], before["2xx"], "no other answer counted")
    recs = h.wait_until(lambda: [x for x in h.read_records(e.records) if x["path"] == "/echo"], msg="a record")
    eq(recs[-1]["status"], 400, "the record says what the client got")


@h.once
def env_always():
    """records.fsync: always: a gateway answer's last byte waits until its record is on disk."""
    e = Env()
    e.up = h.upstream()
    cfg = h.gateway_config([h.vendor("small", ["small.test"], e.up.port, max_body="1KiB")])
    cfg["records"]["fsync"] = "always"
    e.records = cfg["records"]["path"]
    e.gw = h.Gateway(cfg, name="errafter-always").start()
    e.port = e.gw.port()
    return e


@test
def no_100_continue_after_a_413_that_waits_for_its_record():
    """A Content-Length over max_body with Expect: 100-continue is answered 413 at once; under
    fsync: always the 413's last byte waits for the record, and the 100 Continue the codec sent
    after starting the exchange landed inside the 413's body."""
    e = env_always()
    c = h.Conn(e.port, timeout=5)
    c.send(h.request("POST", "/echo", "small.test", [("Content-Length", "5000"), ("Expect", "100-continue")]))
    data = c.read_until_close(timeout=5)  # the 413 closes: everything the client got
    check(data.startswith(b"HTTP/1.1 413 "), "a 413 first: %r" % data[:200])
    check(b"100 Continue" not in data, "no 100 Continue after the final answer: %r" % data)
    head, _, body = data.partition(b"\r\n\r\n")
    eq(len(body), int(re.search(rb"Content-Length: (\d+)", head).group(1)), "the body is its declared length")
    eq(json.loads(body)["status"], 413, "the 413's body is whole")
    eq(e.up.count(), 0, "nothing reached the vendor")


@h.once
def env_short_vendor_timeout():
    """The defaults' order: the vendor's response timeout (1 s) runs out long before the client's
    idle timeout (60 s)."""
    e = Env()
    e.up = h.upstream()
    vendors = [h.vendor("patient", ["patient.test"], e.up.port, max_body="64KiB")]
    cfg = h.gateway_config(vendors, limits={"max_body_scan": "%dB" % SCAN, "oversize_body": "personal",
                                            "idle_timeout": "60s", "upstream_timeout": "1s"})
    e.records = cfg["records"]["path"]
    e.gw = h.Gateway(cfg, name="errafter-vt").start()
    e.port = e.gw.port()
    return e


@test
def stalled_uploads_are_the_clients_408_not_the_vendors_timeout():
    """Clients that stop sending a body streaming to the vendor, which waits for the rest (/echo),
    with upstream_timeout shorter than idle_timeout: each gets a 408 at the vendor's timeout, no
    upstream error is counted, and six of them do not open the vendor's circuit breaker (five
    vendor failures would): a normal request right after is answered."""
    e = env_short_vendor_timeout()
    up_err = h.metric(e.gw.admin_port, "bordergate_upstream_errors_total", {"vendor": "patient"}) or 0
    out = []

    def stall(i):
        c = h.Conn(e.port, timeout=6)
        c.send(h.request("POST", "/echo/vt-stall%d" % i, "patient.test",
                         [("Content-Type", "application/octet-stream"), ("Transfer-Encoding", "chunked")]))
        c.send(chunk(h.pattern(SCAN + 500)))
        r = c.read_response()
        out.append((r.status, c.is_closed(2)))
    ts = [threading.Thread(target=stall, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(15)
    eq(sorted(out), [(408, True)] * 6, "each stalled upload: a 408, then the connection closes")
    eq(h.metric(e.gw.admin_port, "bordergate_upstream_errors_total", {"vendor": "patient"}) or 0, up_err,
       "a client's stall is no vendor error")
    r = h.curl("-H", "Host: patient.test", "http://127.0.0.1:%d/ok" % e.port)
    eq(r.status, 200, "the vendor's circuit is still closed")
    recs = h.wait_until(lambda: (lambda r: r if len(r) >= 6 else None)(
        [x for x in h.read_records(e.records) if x["path"].startswith("/echo/vt-stall")]), msg="six records")
    eq(sorted(x["status"] for x in recs), [408] * 6, "recorded as 408")


# ---- HTTP/2 -----------------------------------------------------------------------------------

class H2(H2Conn):
    """h2wire's raw h2c client, closed when the test ends."""

    def __init__(self, port):
        super().__init__(port)
        h.defer(self.sock.close)


def h2_answer_started(e, first=100):
    """Stream 1: a POST to /early whose first DATA is past max_body_scan, not ended. Returns the
    connection and the transfer id once the answer's HEADERS and its first DATA have come."""
    c = H2(e.port)
    c.sock.sendall(frame(HEADERS, END_HEADERS, 1, hpack_request("POST", "early.test", "/early/%d" % first,
                                                                [("content-type", "application/octet-stream")])) +
                   frame(DATA, 0, 1, h.pattern(SCAN + 500)))
    fields, body = None, b""
    while len(body) < first:
        f = c.read()
        check(f is not None, "the answer's first bytes before EOF (got %r, %d bytes)" % (fields, len(body)))
        ftype, flags, sid, payload = f
        check(ftype != RST_STREAM, "stream reset before the answer: %r" % (f,))
        if ftype == HEADERS and sid == 1:
            fields = dict(payload)
        elif ftype == DATA and sid == 1:
            body += payload
    eq(fields.get(":status"), "200", "the vendor's early answer")
    eq(body, h.pattern(first), "the answer's first bytes")
    return c, fields.get("x-transfer-id")


def h2_rest_of_stream(c, timeout=5.0):
    """Frames of stream 1 until it is reset or ended (or EOF/timeout)."""
    out = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        f = c.read(max(0.05, end - time.monotonic()))
        if f is None:
            break
        if f[2] == 1:
            out.append(f)
            if f[0] == RST_STREAM or (f[0] in (DATA, HEADERS) and f[1] & END_STREAM):
                break
    return out


@test
def h2_body_over_max_body_after_headers_is_rst_stream_not_a_second_headers():
    e = env()
    before = counts(e)
    c, tid = h2_answer_started(e)
    c.sock.sendall(b"".join(frame(DATA, 0, 1, b"b" * 16384) for _ in range(5)))  # past max_body (64 KiB)
    rest = h2_rest_of_stream(c)
    eq([f[0] for f in rest if f[0] == HEADERS], [], "no second HEADERS on the stream: %r" % rest[:3])
    check(rest and rest[-1][0] == RST_STREAM, "the stream is reset: %r" % [f[:3] for f in rest])
    check(not any(f[0] == DATA and f[1] & END_STREAM for f in rest), "the answer does not end like a complete one")
    eq(record(e, tid)["status"], 499, "recorded like a client that broke off mid-answer")
    metrics_one_answer(e, before, "h2 over max_body")


@test
def h2_stalled_body_after_headers_is_reset_at_the_idle_timeout():
    """A stream whose body stalls while its answer streams: reset at idle_timeout (2 s), never a
    second HEADERS, recorded 499; not left to the vendor's response timeout (20 s), which would
    count the client's stall against the vendor."""
    e = env()
    before = counts(e)
    up_err = h.metric(e.gw.admin_port, "bordergate_upstream_errors_total", {"vendor": "early"}) or 0
    c, tid = h2_answer_started(e)
    t0 = time.monotonic()
    rest = h2_rest_of_stream(c, timeout=8)
    dt = time.monotonic() - t0
    eq([f[0] for f in rest if f[0] == HEADERS], [], "no second HEADERS on the stream")
    check(rest and rest[-1][0] == RST_STREAM, "the stream is reset: %r" % [f[:3] for f in rest])
    check(1.5 <= dt < 4.5, "reset %.1fs into the stall (idle_timeout 2s)" % dt)
    eq(record(e, tid)["status"], 499, "recorded like a client that broke off mid-answer")
    metrics_one_answer(e, before, "h2 stalled body")
    eq(h.metric(e.gw.admin_port, "bordergate_upstream_errors_total", {"vendor": "early"}) or 0, up_err,
       "the client's stall is no vendor error")


@test
def h2_stalled_body_before_any_answer_is_a_408_on_the_stream():
    e = env()
    up_err = h.metric(e.gw.admin_port, "bordergate_upstream_errors_total", {"vendor": "early"}) or 0
    c = H2(e.port)
    c.sock.sendall(frame(HEADERS, END_HEADERS, 1, hpack_request("POST", "early.test", "/echo/h2stall",
                                                                [("content-type", "application/octet-stream")])) +
                   frame(DATA, 0, 1, h.pattern(SCAN + 500)))
    t0 = time.monotonic()
    rest = h2_rest_of_stream(c, timeout=8)
    dt = time.monotonic() - t0
    heads = [dict(f[3]) for f in rest if f[0] == HEADERS]
    eq([x.get(":status") for x in heads], ["408"], "one answer, a 408: %r" % [f[:3] for f in rest])
    check(1.5 <= dt < 4.5, "408 %.1fs into the stall (idle_timeout 2s)" % dt)
    h.wait_until(lambda: [x for x in h.read_records(e.records) if x["path"] == "/echo/h2stall" and x["status"] == 408],
                 msg="a 408 record")
    eq(h.metric(e.gw.admin_port, "bordergate_upstream_errors_total", {"vendor": "early"}) or 0, up_err,
       "the client's stall is no vendor error")


def main():
    h.main()


if __name__ == "__main__":
    main()
