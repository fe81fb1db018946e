#!/usr/bin/env python3
"""test_body_limits.py -- a request body over the vendor's max_body, and HTTP/2 upload flow control.

A body without a declared length (HTTP/1.1 chunked, HTTP/2 DATA without content-length) that
passes max_body after the gateway began forwarding it (it was decided on its max_body_scan prefix)
gets the same 413 problem answer as a Content-Length over the limit, while no byte of an answer
went out: HTTP/1.1 closes the connection after it (the rest of the body is unread), HTTP/2 answers
on that stream only. The vendor's copy of the request is incomplete, so the vendor side is dropped
(its connection closed, or its stream reset) and never reused; the record and /metrics say 413.

HTTP/2 uploads: bytes a stream receives while the gateway holds it back (the decision, a vendor
that reads slowly, a body that ended while held) keep that stream's window closed, never the
connection's: other streams on the connection keep uploading, and no timeout blames a client (408)
or a vendor (504) for a window the gateway did not reopen. The HTTP/2 client here (FlowClient)
keeps to the windows the gateway grants, as a real client must."""

import json
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402

from h2wire import (ACK, DATA, END_HEADERS, END_STREAM, HEADERS, PING, PREFACE, RST_STREAM, SETTINGS,  # noqa: E402
                    WINDOW_UPDATE, H2Conn, Hpack, frame, hpack_request)

SCAN = 1024         # max_body_scan: a longer body is decided on its prefix and streams to the vendor
MAX_BODY = 64 << 10  # the vendor's max_body
OCTETS = [("Content-Type", "application/octet-stream")]


class Env:
    pass


@h.once
def env():
    e = Env()
    e.up = h.upstream()
    e.h2port = h.h2echo()
    vendors = [h.vendor("lim", ["lim.test"], e.up.port, max_body="64KiB"),
               h.vendor("one", ["one.test"], e.up.port, max_body="64KiB"),
               h.vendor("lim2", ["lim2.vendor.test"], e.h2port, tls=True, ca=h.cert("ca.crt"), protocol="http2",
                        max_body="64KiB")]
    vendors[1]["upstream"]["max_connections"] = 1
    cfg = h.gateway_config(vendors, limits={"max_body_scan": "%dB" % SCAN, "oversize_body": "personal",
                                            "upstream_timeout": "20s"})
    e.records = cfg["records"]["path"]
    e.gw = h.Gateway(cfg, name="bodylimits").start()
    e.port = e.gw.port()
    return e


def responses(e, cls):
    return h.metric(e.gw.admin_port, "bordergate_http_responses_total", {"code": cls}) or 0


def records_of(e, path):
    return [r for r in h.read_records(e.records) if r["path"] == path]


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


def check_413(status, fields, body, why):
    eq(status, 413, why)
    eq(fields.get("content-type"), "application/problem+json", why)
    doc = json.loads(body)
    eq((doc["status"], doc["type"].rsplit("/", 1)[1], doc.get("vendor") is not None), (413, "body-too-large", True), why)
    check(doc.get("transfer_id"), "%s: the problem names its transfer id: %r" % (why, doc))
    return doc["transfer_id"]


# ---- HTTP/1.1 ---------------------------------------------------------------------------------

@test
def h1_chunked_body_over_max_body_while_streaming_is_413_then_close():
    """The body is decided on its first KiB and streams to /echo, which reads it all before it
    answers; at 64 KiB + 1 the client gets a 413 (it used to see the connection close, no answer)."""
    e = env()
    before, n_up = responses(e, "4xx"), e.up.count()
    c = h.Conn(e.port, timeout=5)
    c.send(h.request("POST", "/echo/h1-over", "lim.test", OCTETS + [("Transfer-Encoding", "chunked")]))
    c.send(chunk(h.pattern(SCAN + 500)))
    time.sleep(0.3)  # decided, and streaming to the vendor
    try:
        for _ in range(80):  # 80 KiB more: past max_body
            c.send(chunk(b"b" * 1024))
    except OSError:
        pass  # the gateway closed after its answer: what it sent is still readable
    try:
        r = c.read_response()
    except h.Closed:
        raise h.Failure("no answer: the connection closed (the client cannot tell a 413 from a crash)")
    tid = check_413(r.status, r.headers, r.body, "chunked over max_body")
    eq((r.headers.get("Connection") or "").lower(), "close", "the rest of the body is unread: the connection closes")
    check(c.is_closed(3), "closed after the 413")
    rec = h.wait_record(e.records, tid)
    eq((rec["status"], rec["upstream_protocol"]), (413, "http/1.1"), "recorded as the 413 the client got")
    h.wait_until(lambda: responses(e, "4xx") == before + 1, msg="the 413 counted in /metrics")
    eq(e.up.count(), n_up, "the vendor never got a complete request")
    # The vendor connection that carried the cut body is not reused: the next request is whole.
    r = h.curl("-H", "Host: lim.test", "--data-binary", "after", "http://127.0.0.1:%d/echo/h1-next" % e.port)
    eq((r.status, r.json()["body"]), (200, "after"), "the next request reaches the vendor intact")
    check(e.gw.alive(), "gateway alive")


@test
def h1_content_length_over_max_body_is_413_before_anything_is_forwarded():
    e = env()
    n_up = e.up.count()
    c = h.Conn(e.port, timeout=5)
    c.send(h.request("POST", "/echo/h1-cl", "lim.test", OCTETS + [("Content-Length", str(MAX_BODY + 1))]))
    r = c.read_response()
    check_413(r.status, r.headers, r.body, "Content-Length over max_body")
    time.sleep(0.2)
    eq(e.up.count(), n_up, "nothing forwarded")
    eq([x["status"] for x in records_of(e, "/echo/h1-cl")], [413])


# ---- HTTP/2 client ---------------------------------------------------------------------------

class H2(H2Conn):
    """h2wire's raw h2c client, closed when the test ends, that waits for the gateway's SETTINGS."""

    def __init__(self, port):
        super().__init__(port)
        h.defer(self.sock.close)
        # The gateway's stream window (256 KiB) holds once we acknowledged its SETTINGS: until
        # then it is the protocol's 64 KiB.
        while True:
            f = self.read()
            check(f is not None, "the gateway's SETTINGS")
            if f[0] == SETTINGS and not f[1] & ACK:
                break

    def read(self, timeout=5.0):
        f = super().read(timeout)
        if f and f[0] == HEADERS:
            f = (f[0], f[1], f[2], dict(f[3]))
        return f

    def answer(self, sid, timeout=5.0):
        """(fields, body, reset code or None) of stream sid, read until its end or reset."""
        fields, body, end = None, b"", time.monotonic() + timeout
        while time.monotonic() < end:
            f = self.read(max(0.05, end - time.monotonic()))
            if f is None:
                break
            ftype, flags, fsid, payload = f
            if fsid != sid:
                continue
            if ftype == RST_STREAM:
                return fields, body, struct.unpack(">I", payload)[0]
            if ftype == HEADERS:
                fields = payload
            elif ftype == DATA:
                body += payload
            if ftype in (HEADERS, DATA) and flags & END_STREAM:
                return fields, body, None
        return fields, body, "timeout"


def h2_over_max_body(e, host, path):
    """Stream 1 POSTs past max_body_scan (decided, streaming to the vendor), then past max_body;
    stream 3, on the same connection, then asks for something small. Returns both answers."""
    c = H2(e.port)
    c.sock.sendall(frame(HEADERS, END_HEADERS, 1, hpack_request("POST", host, path,
                                                                [("content-type", "application/octet-stream")])) +
                   frame(DATA, 0, 1, h.pattern(SCAN + 500)))
    time.sleep(0.3)  # decided, and streaming to the vendor, which waits for the rest
    c.sock.sendall(b"".join(frame(DATA, 0, 1, b"b" * 16384) for _ in range(5)))  # past 64 KiB
    first = c.answer(1)
    c.sock.sendall(frame(HEADERS, END_HEADERS | END_STREAM, 3, hpack_request("GET", host, path + "-next")))
    return first, c.answer(3)


@test
def h2_data_over_max_body_while_streaming_is_413_on_that_stream():
    e = env()
    before, n_up = responses(e, "4xx"), e.up.count()
    (fields, body, reset), (f3, _, r3) = h2_over_max_body(e, "lim.test", "/echo/h2-over")
    check(fields is not None and reset is None, "a whole answer on the stream, not a reset: %r %r" % (fields, reset))
    tid = check_413(int(fields[":status"]), fields, body, "HTTP/2 DATA over max_body")
    eq((f3 or {}).get(":status"), "200", "the connection's other streams carry on")
    rec = h.wait_record(e.records, tid)
    eq(rec["status"], 413, "recorded as the 413 the client got")
    h.wait_until(lambda: responses(e, "4xx") == before + 1, msg="the 413 counted in /metrics")
    eq(e.up.count(), n_up + 1, "the vendor got no request but stream 3's")


@test
def h2_data_over_max_body_to_an_http2_vendor_is_413_and_its_connection_carries_on():
    e = env()
    (fields, body, reset), (f3, b3, _) = h2_over_max_body(e, "lim2.vendor.test", "/echo-body")
    check(fields is not None and reset is None, "a whole answer on the stream, not a reset: %r %r" % (fields, reset))
    tid = check_413(int(fields[":status"]), fields, body, "HTTP/2 DATA over max_body, HTTP/2 vendor")
    rec = h.wait_record(e.records, tid)
    eq((rec["status"], rec["upstream_protocol"]), (413, "h2"), "recorded as the 413 the client got")
    eq((f3 or {}).get(":status"), "200", "the next stream reaches the HTTP/2 vendor: %r" % b3[:200])


@test
def h2_data_over_max_body_while_waiting_for_a_vendor_connection_is_413_and_never_forwarded():
    """The vendor address allows one connection, busy with a slow request (/delay): stream 3 is
    decided and waits for the connection while its DATA keeps coming (up to its window) and passes
    max_body. It gets its 413 there, and when the connection frees, its request is not sent."""
    e = env()
    n_up = e.up.count()
    c = H2(e.port)
    c.sock.sendall(frame(HEADERS, END_HEADERS | END_STREAM, 1, hpack_request("GET", "one.test", "/delay/1500")))
    time.sleep(0.3)  # stream 1 holds the only connection
    c.sock.sendall(frame(HEADERS, END_HEADERS, 3, hpack_request("POST", "one.test", "/echo/h2-queued",
                                                                [("content-type", "application/octet-stream")])) +
                   frame(DATA, 0, 3, h.pattern(SCAN + 500)))
    time.sleep(0.2)  # decided, waiting for the connection
    c.sock.sendall(b"".join(frame(DATA, 0, 3, b"b" * 16384) for _ in range(5)))  # past 64 KiB
    fields, body, reset = c.answer(3)
    check(fields is not None and reset is None, "a whole answer on the stream, not a reset: %r %r" % (fields, reset))
    tid = check_413(int(fields[":status"]), fields, body, "over max_body while queued")
    f1, _, _ = c.answer(1)
    eq((f1 or {}).get(":status"), "200", "stream 1's slow answer")
    # The connection is free again, for the next request: stream 3's exchange, answered, must not
    # have taken it (its body would never end, and the next request would wait, then get a 503).
    c.sock.sendall(frame(HEADERS, END_HEADERS | END_STREAM, 5, hpack_request("GET", "one.test", "/echo/h2-q-next")))
    f5, _, _ = c.answer(5, timeout=8)
    eq((f5 or {}).get(":status"), "200", "the next request gets the vendor's connection")
    eq([r["target"] for r in e.up.requests[n_up:]], ["/delay/1500", "/echo/h2-q-next"],
       "nothing of stream 3 reached the vendor")
    eq(h.wait_record(e.records, tid)["status"], 413)
    check(e.gw.alive(), "gateway alive")


@test
def h2_content_length_over_max_body_is_413_before_anything_is_forwarded():
    e = env()
    n_up = e.up.count()
    c = H2(e.port)
    c.sock.sendall(frame(HEADERS, END_HEADERS, 1, hpack_request("POST", "lim.test", "/echo/h2-cl",
                                                                [("content-length", str(MAX_BODY + 1))])))
    fields, body, reset = c.answer(1)
    check(fields is not None, "an answer before any DATA: %r" % reset)
    check_413(int(fields[":status"]), fields, body, "content-length over max_body")
    time.sleep(0.2)
    eq(e.up.count(), n_up, "nothing forwarded")
    eq([x["status"] for x in records_of(e, "/echo/h2-cl")], [413])


# ---- HTTP/2 upload flow control -----------------------------------------------------------------

class FlowClient:
    """An h2c client that keeps to the windows the gateway grants (SETTINGS, WINDOW_UPDATE), as a
    real client must, with a reader thread; send() blocks while the windows are closed."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        h.defer(self.close)
        self.cv = threading.Condition()
        self.wlock = threading.Lock()
        self.conn_win, self.init_win = 65535, 65535
        self.win, self.heads, self.bodies, self.resets = {}, {}, {}, {}
        self.ended = set()
        self.closed = False
        self.hpack = Hpack()
        # Our receive windows are large: the gateway's answers never wait for us.
        self._send(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 1 << 30)) +
                   frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30)))
        threading.Thread(target=self._reader, daemon=True).start()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _send(self, b):
        with self.wlock:
            self.sock.sendall(b)

    def _reader(self):
        buf = b""
        try:
            while True:
                d = self.sock.recv(1 << 16)
                if not d:
                    break
                buf += d
                while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                    n = int.from_bytes(buf[:3], "big")
                    self._on(buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff, buf[9:9 + n])
                    buf = buf[9 + n:]
        except OSError:
            pass
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def _on(self, ftype, flags, sid, p):
        with self.cv:
            if ftype == SETTINGS and not flags & ACK:
                for i in range(0, len(p), 6):
                    k, v = struct.unpack(">HI", p[i:i + 6])
                    if k == 4:  # INITIAL_WINDOW_SIZE applies to the open streams too
                        for st in self.win:
                            self.win[st] += v - self.init_win
                        self.init_win = v
                self._send(frame(SETTINGS, ACK, 0))
            elif ftype == WINDOW_UPDATE:
                inc = struct.unpack(">I", p)[0] & 0x7fffffff
                if sid == 0:
                    self.conn_win += inc
                elif sid in self.win:
                    self.win[sid] += inc
            elif ftype == HEADERS:
                self.heads.setdefault(sid, dict(self.hpack.decode(p)))
            elif ftype == DATA:
                self.bodies[sid] = self.bodies.get(sid, b"") + p
            elif ftype == RST_STREAM:
                self.resets[sid] = struct.unpack(">I", p)[0]
            elif ftype == PING and not flags & ACK:
                self._send(frame(PING, ACK, 0, p))
            if ftype in (HEADERS, DATA) and flags & END_STREAM:
                self.ended.add(sid)
            self.cv.notify_all()

    def open(self, sid, authority, path):
        with self.cv:
            self.win[sid] = self.init_win
        self._send(frame(HEADERS, END_HEADERS, sid, hpack_request("POST", authority, path,
                                                                  [("content-type", "application/octet-stream")])))

    def send(self, sid, data, end=False, timeout=10.0, stall=None):
        """Send data on sid as the windows allow; returns how many bytes went before the timeout,
        or before the windows stayed closed for `stall` seconds (or a reset, or the close)."""
        sent, deadline = 0, time.monotonic() + timeout
        while sent < len(data):
            with self.cv:
                blocked = time.monotonic()
                while True:
                    if sid in self.resets or self.closed:
                        return sent
                    room = min(self.conn_win, self.win[sid], 16384, len(data) - sent)
                    if room > 0:
                        break
                    now = time.monotonic()
                    if now >= deadline or (stall is not None and now - blocked >= stall):
                        return sent
                    self.cv.wait(min(deadline - now, 0.1))
                self.conn_win -= room
                self.win[sid] -= room
            last = sent + room == len(data)
            self._send(frame(DATA, END_STREAM if end and last else 0, sid, data[sent:sent + room]))
            sent += room
        return sent

    def wait(self, cond, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.cv:
            while not cond() and not self.closed and time.monotonic() < deadline:
                self.cv.wait(deadline - time.monotonic())
            return cond()

    def statuses(self):
        with self.cv:
            return {sid: f.get(":status") for sid, f in self.heads.items()}


@test
def h2_upload_that_goes_on_after_its_413_is_reset_with_no_error():
    """After the 413 the gateway discards what the client still sends (reopening the windows, so
    the client can finish and read the answer: curl stops uploading once it has it); a client that
    goes on past 16 MiB gets RST_STREAM NO_ERROR (RFC 9113 8.1) and its connection carries on."""
    e = env()
    c = FlowClient(e.port)
    c.open(1, "lim.test", "/echo/h2-goes-on")
    eq(c.send(1, h.pattern(SCAN + 500)), SCAN + 500)
    time.sleep(0.3)  # decided, and streaming to the vendor
    sent = c.send(1, b"g" * (24 << 20), timeout=20, stall=2.0)
    eq(c.statuses().get(1), "413", "the 413 first")
    eq(c.resets.get(1), 0, "then RST_STREAM NO_ERROR (sent %d bytes)" % sent)
    check((16 << 20) < sent < (24 << 20), "reset past the 16 MiB grace: %d bytes sent" % sent)
    c.open(3, "lim.test", "/echo/h2-goes-on-next")
    eq(c.send(3, b"n", end=True), 1)
    check(c.wait(lambda: 3 in c.ended), "stream 3 answered")
    eq(c.statuses().get(3), "200", "the connection carries on")


def deaf_vendor():
    """A vendor that accepts connections and never reads from them: the gateway's writes to it
    back up and its uploads are held back (paused) until upstream_timeout."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    held = []

    def accept():
        while True:
            try:
                held.append(ls.accept()[0])
            except OSError:
                return
    threading.Thread(target=accept, daemon=True).start()
    return ls.getsockname()[1]


@h.once
def env_flow():
    e = Env()
    e.up = h.upstream()
    vendors = [h.vendor("flow", ["flow.test"], e.up.port, max_body="64MiB"),
               h.vendor("deaf", ["deaf.test"], deaf_vendor(), max_body="64MiB")]
    cfg = h.gateway_config(vendors, limits={"max_body_scan": "64KiB", "oversize_body": "personal",
                                            "idle_timeout": "2s", "upstream_timeout": "20s"})
    e.records = cfg["records"]["path"]
    e.gw = h.Gateway(cfg, name="flow").start()
    e.port = e.gw.port()
    return e


@test
def bodies_that_ended_while_held_do_not_stall_the_connections_other_uploads():
    """Stream 1 streams to /echo, which waits for its whole body. Four more streams send 200 KiB
    each and end: decided on their first 64 KiB, the rest comes while they are held, and their
    vendor (/delay) answers late. Their held bytes used to keep the connection window closed
    until those answers were complete: stream 1's client could not send, and after idle_timeout
    (2 s) it got a 408 for the gateway's own window."""
    e = env_flow()
    c = FlowClient(e.port)
    c.open(1, "flow.test", "/echo/flow-1")
    eq(c.send(1, b"s" * (100 << 10), timeout=5), 100 << 10, "stream 1's first 100 KiB")
    held = [3, 5, 7, 9]
    for sid in held:
        c.open(sid, "flow.test", "/delay/5000")
        eq(c.send(sid, b"h" * (200 << 10), end=True, timeout=5), 200 << 10, "stream %d's whole body" % sid)
    eq(c.send(1, b"s" * (300 << 10), end=True, timeout=8), 300 << 10,
       "stream 1's client may send the rest of its body (statuses so far: %r)" % c.statuses())
    check(c.wait(lambda: 1 in c.ended, timeout=8), "stream 1 answered: %r" % c.statuses())
    eq(c.statuses()[1], "200", "stream 1's answer: %r" % c.bodies.get(1, b"")[:200])
    eq(json.loads(c.bodies[1])["body_len"], 400 << 10, "the vendor got stream 1's whole body")
    eq([sid for sid in held if sid in c.ended], [], "answered while the four held streams still wait")
    check(c.wait(lambda: all(sid in c.ended for sid in held), timeout=10), "the held streams' answers")
    eq([c.statuses()[sid] for sid in held], ["200"] * 4)


@test
def uploads_held_for_a_vendor_that_does_not_read_do_not_stall_the_others():
    """Five uploads to a vendor that reads nothing: each is held back (paused) once the gateway's
    queue towards the vendor is full, with up to its stream window (256 KiB) received and not
    taken. Together those used to close the connection window (1 MiB): a sixth upload, to a
    vendor that reads, could not send a byte, and uploads starved that way got a 408 at
    idle_timeout, blaming their clients. The deaf vendor's own are its 504s, after upstream_timeout."""
    e = env_flow()
    c = FlowClient(e.port)
    deaf = [3, 5, 7, 9, 11]
    sent = {}

    def upload(sid):
        sent[sid] = c.send(sid, b"d" * (16 << 20), timeout=15, stall=1.0)  # until held back
    for sid in deaf:  # opened in order: a stream id below one already open is a protocol error
        c.open(sid, "deaf.test", "/deaf/%d" % sid)
    ts = [threading.Thread(target=upload, args=(sid,)) for sid in deaf]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    check(all(sent.get(sid, 0) > (256 << 10) for sid in deaf), "each deaf upload was streaming: %r" % sent)
    c.open(13, "flow.test", "/echo/flow-13")
    eq(c.send(13, b"f" * (400 << 10), end=True, timeout=8), 400 << 10,
       "stream 13's client may send its body (statuses so far: %r)" % c.statuses())
    check(c.wait(lambda: 13 in c.ended, timeout=8), "stream 13 answered: %r" % c.statuses())
    eq(c.statuses()[13], "200")
    eq(json.loads(c.bodies[13])["body_len"], 400 << 10, "the vendor got stream 13's whole body")
    eq({sid: st for sid, st in c.statuses().items() if sid in deaf}, {}, "no answer to a deaf upload yet (no 408)")


def main():
    h.main()


if __name__ == "__main__":
    main()
