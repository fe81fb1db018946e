#!/usr/bin/env python3
"""test_h2_chaos.py -- a seeded randomized test of the gateway's HTTP/2 side. Client threads
(h2c by prior knowledge, and h2 over TLS by ALPN) open connection after connection, each a random
sequence from random.Random(seed, client, connection) of: well-formed streams (GET/POST/HEAD,
bodies in random DATA frames with padding, header blocks split into CONTINUATION, indexed and
literal HPACK, cookies in crumbs, trailers, priorities) to an HTTP/1.1 vendor (/echo, /bytes,
/chunked, /delay, /status, /close-mid-body, /reset), an HTTP/2 vendor (h2echo), an unknown host
(403) and a blocked one (451); receive windows from 1 KiB to 1 MiB read eagerly, lazily or slowly;
legal noise (PING, SETTINGS changes mid-transfer, WINDOW_UPDATE, PRIORITY, PRIORITY_UPDATE,
unknown frame types and flags); stream faults (RST_STREAM at random points, malformed heads,
content-length mismatch, bad trailers, zero or overflowing WINDOW_UPDATE, DATA after END_STREAM,
HEADERS on a closed stream) and connection faults (abrupt close or RST mid-frame, oversized
frame, client GOAWAY, RST on an idle stream, bad SETTINGS/PING, HPACK garbage, ...).
Invariants: every well-formed stream gets exactly the right answer; a stream fault resets only
its stream (no GOAWAY); a connection fault that the protocol makes fatal gets GOAWAY and a close;
the gateway never exceeds our windows or frame size and never talks on streams we did not open;
afterwards the gateway is alive, its descriptors return to the baseline, its RSS stays bounded,
the records verify with unique ids and agree with /metrics; SIGTERM under chaos traffic drains
(GOAWAY NO_ERROR, every stream up to its last stream id answered) and exits 0, with no sanitizer
report in the gateway's stderr (BG_BUILD=build-asan).
CHAOS_SEED (default 1), CHAOS_SECONDS (default 12), CHAOS_CLIENTS (default 6) vary the run;
a failure prints the seed, client and connection to reproduce it."""

import hashlib
import json
import os
import random
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402
from h2wire import (ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PADDED,  # noqa: E402
                    PING, PREFACE, PRIORITY, PRIORITY_FLAG, PUSH_PROMISE, RST_STREAM, SETTINGS,
                    WINDOW_UPDATE, Hpack, frame, hpack_int, hpack_str)

SEED = int(os.environ.get("CHAOS_SEED", "1"))
SECONDS = float(os.environ.get("CHAOS_SECONDS", "12"))
CLIENTS = int(os.environ.get("CHAOS_CLIENTS", "6"))
ASAN = "asan" in h.BUILD
# The run is one test: let the harness's per-test alarm cover a long campaign.
h.TEST_TIMEOUT = max(h.TEST_TIMEOUT, int(SECONDS) + 60)

PRIORITY_UPDATE = 0x10
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 5, 6, 7, 8, 9
MAX_WINDOW = (1 << 31) - 1


class Env:
    pass


@h.once
def env():
    e = Env()
    e.up = h.upstream()
    e.h2port = h.h2echo()
    de = h.vendor("de", ["de.test"], e.up.port)
    us = h.vendor("us-nobasis", ["us.test"], e.up.port, addresses=["127.0.0.3"], regions=["US"],
                  entity={"name": "US Inc.", "country": "US"}, basis="none")
    h2v = h.vendor("h2v", ["h2.vendor.test"], e.h2port, tls=True, ca=h.cert("ca.crt"))
    tls = {"certificate": h.cert("gateway.crt"), "key": h.cert("gateway.key")}
    cfg = h.gateway_config([de, us, h2v], listen=[{"address": None}, {"address": None, "tls": tls}],
                           limits={"max_body_scan": "64KiB", "max_body": "32MiB",
                                   "oversize_body": "personal", "upstream_timeout": "10s",
                                   "idle_timeout": "3s"})
    e.records = cfg["records"]["path"]
    e.gw = h.Gateway(cfg, name="h2chaos").start()
    e.plain, e.tls = e.gw.port(0), e.gw.port(1)
    e.ctx = h.client_context(alpn=["h2"])
    return e


# ---- what a stream asks for and what it must get -------------------------------------------

PLAIN_KINDS = [("echo_get", 12), ("echo_post", 14), ("bytes", 10), ("chunked", 6), ("head", 3),
               ("status", 5), ("delay", 4), ("close_mid", 2), ("reset", 2), ("unknown", 3),
               ("blocked", 3), ("h2_get", 5), ("h2_post", 5), ("h2_big", 3), ("h2_echo_body", 3),
               ("trailers_h1", 2), ("trailers_h2", 2), ("nolength", 2)]
STREAM_FAULTS = [("rst_after_headers", 4), ("rst_mid_body", 4), ("rst_mid_response", 5),
                 ("bad_pseudo", 4), ("upper", 2), ("conn_specific", 3), ("cl_short", 2),
                 ("cl_long", 2), ("trailer_pseudo", 2), ("zero_wu_stream", 1), ("overflow_wu_stream", 1),
                 ("oversize_head", 2), ("self_dependency", 1), ("data_after_end", 2),
                 ("headers_after_close", 2), ("trailer_no_end", 1), ("flow_violation", 1)]
# Faults after which a connection error (GOAWAY) is a legitimate answer (RFC 9113 5.1: an
# endpoint may treat these as connection errors, and nghttp2 does for some).
CONN_OK_FAULTS = {"data_after_end", "headers_after_close", "trailer_no_end", "flow_violation", "self_dependency",
                  "zero_wu_stream"}
CONN_FAULTS = [("close", 3), ("rst", 3), ("truncated", 3), ("oversize_frame", 2), ("client_goaway", 4),
               ("rst_idle", 1), ("bad_ping_len", 1), ("bad_settings", 1), ("window_overflow", 1),
               ("data_stream0", 1), ("even_stream", 1), ("lower_stream", 1), ("interleaved_continuation", 1),
               ("hpack_garbage", 1), ("push_promise", 1), ("settings_window_overflow", 1)]
# Connection faults that the gateway must answer with GOAWAY (and these codes) and a close.
FATAL = {"oversize_frame": {FRAME_SIZE_ERROR}, "rst_idle": {PROTOCOL_ERROR}, "bad_ping_len": {FRAME_SIZE_ERROR},
         "bad_settings": {PROTOCOL_ERROR}, "window_overflow": {FLOW_CONTROL_ERROR},
         "data_stream0": {PROTOCOL_ERROR}, "even_stream": {PROTOCOL_ERROR},
         "interleaved_continuation": {PROTOCOL_ERROR}, "hpack_garbage": {COMPRESSION_ERROR},
         "push_promise": {PROTOCOL_ERROR}, "settings_window_overflow": {FLOW_CONTROL_ERROR}}


def pick(rng, table):
    total = sum(w for _, w in table)
    x = rng.uniform(0, total)
    for name, w in table:
        x -= w
        if x <= 0:
            return name
    return table[-1][0]


def body_bytes(rng, n):
    if rng.random() < 0.3:
        return rng.randbytes(n)
    return bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789-_ ") for _ in range(min(n, 64))) * (n // 64 + 1)


def size(rng, big_ok):
    r = rng.random()
    if r < 0.15:
        return 0
    if r < 0.6:
        return rng.randint(1, 2000)
    if r < 0.9 or not big_ok:
        return rng.randint(2000, 200000)
    return rng.randint(200000, 4 << 20)


class Spec:
    """One stream's request, its fault (or None) and how to judge the answer."""

    def __init__(self, rng, tag, big_ok, tls, fault=None):
        self.tag = tag
        self.kind = pick(rng, PLAIN_KINDS)
        self.fault = fault
        self.method, self.host, self.body = "GET", "de.test", b""
        self.extra = []         # regular fields
        self.cookies = []
        self.trailers = None
        self.cl = False         # send content-length
        self.use_host = rng.random() < 0.1  # host instead of :authority
        self.scheme = "https" if tls else "http"
        self.n = 0
        self.declared = None    # a wrong content-length (cl_short, cl_long)
        self.sent_cookies = None
        k = self.kind
        q = "?t=%s" % tag
        if k == "echo_get":
            self.path = "/echo" + q
        elif k == "echo_post":
            self.method, self.path = "POST", "/echo" + q
            self.body = body_bytes(rng, min(size(rng, big_ok), 300000))  # echoed back as JSON: kept small
        elif k in ("bytes", "head"):
            self.n = size(rng, big_ok)
            self.path = "/bytes/%d" % self.n
            if k == "head":
                self.method = "HEAD"
        elif k == "chunked":
            self.n = size(rng, big_ok)
            self.path = "/chunked/%d" % self.n
        elif k == "status":
            self.n = rng.choice([204, 201, 404, 500, 304])
            self.path = "/status/%d" % self.n
        elif k == "delay":
            self.path = "/delay/%d" % rng.randint(0, 400)
        elif k == "close_mid":
            self.path = "/close-mid-body"
        elif k == "reset":
            self.path = "/reset"
        elif k == "unknown":
            self.host, self.path = "nowhere.test", "/echo" + q
        elif k == "blocked":
            self.host, self.path = "us.test", "/collect?email=jane.doe@example.com&t=" + tag
        elif k == "h2_get":
            self.host, self.path = "h2.vendor.test", "/x" + q
        elif k == "h2_post":
            self.host, self.method, self.path = "h2.vendor.test", "POST", "/upload" + q
            self.body = body_bytes(rng, size(rng, big_ok))
        elif k == "h2_big":
            self.n = size(rng, big_ok)
            self.host, self.path = "h2.vendor.test", "/big?n=%d" % self.n
        elif k == "trailers_h1":
            self.path = "/trailers"
        elif k == "trailers_h2":
            self.host, self.path = "h2.vendor.test", "/trailers"
        elif k == "nolength":
            self.n = rng.randint(0, 200000)
            self.path = "/no-length/%d" % self.n
        elif k == "h2_echo_body":
            self.host, self.method, self.path = "h2.vendor.test", "POST", "/echo-body"
            self.body = body_bytes(rng, rng.randint(0, 60000))
        if self.method == "POST":
            self.cl = rng.random() < 0.6
            if rng.random() < 0.15:
                self.trailers = [("x-trailer-%d" % i, "v%d" % rng.randint(0, 999)) for i in range(rng.randint(1, 3))]
                self.cl = False
            self.extra.append(("content-type", "application/octet-stream"))
            if k == "echo_post" and rng.random() < 0.1:
                self.extra.append(("expect", "100-continue"))
        self.extra.append(("x-chaos-tag", tag))
        for i in range(rng.choice([0, 0, 1, 3, 8])):
            self.extra.append(("x-chaos-%d" % i, "v" * rng.randint(0, 300)))
        if rng.random() < 0.2:
            self.extra.append(("te", "trailers"))
        if rng.random() < 0.2:
            self.cookies = ["c%d=%d" % (i, rng.randint(0, 1 << 20)) for i in range(rng.randint(1, 4))]


def check_answer(st):
    """None when the ended stream `st` got the right answer for its spec, else why not."""
    sp = st.spec
    k = sp.kind
    body = bytes(st.body)
    status = st.status
    hd = h.Headers(st.headers)

    def want_status(*codes):
        if status not in codes:
            return "status %s, want %s (body %r)" % (status, codes, body[:200])
        return None

    cl = hd.get("content-length")
    if cl is not None and sp.method != "HEAD" and int(cl) != len(body):
        return "content-length %s but %d body bytes" % (cl, len(body))
    for n, _ in st.headers:
        if n != n.lower() or n in ("connection", "transfer-encoding", "keep-alive", "upgrade"):
            return "response field %r not allowed in HTTP/2" % n
    if k in ("echo_get", "echo_post", "delay"):
        err = want_status(200)
        if err:
            return err
        try:
            j = json.loads(body)
        except ValueError as ex:
            return "echo not JSON (%s): %r" % (ex, body[:200])
        if j["method"] != sp.method or j["target"] != sp.path:
            return "echo of %s %s is %s %s" % (sp.method, sp.path, j["method"], j["target"])
        if j["body"].encode("latin-1") != sp.body:
            return "echo body %d bytes differs from the %d sent" % (j["body_len"], len(sp.body))
        got = h.Headers([tuple(x) for x in j["headers"]])
        if got.get("x-chaos-tag") != sp.tag:
            return "x-chaos-tag %r reached the vendor, want %r" % (got.get("x-chaos-tag"), sp.tag)
        if sp.cookies and got.get_all("cookie") != ["; ".join(sp.sent_cookies)]:
            return "cookie %r, want %r" % (got.get_all("cookie"), "; ".join(sp.sent_cookies))
        if got.get("host") != sp.host:
            return "host %r, want %r" % (got.get("host"), sp.host)
        if sp.trailers and len(sp.body) < 60000:  # decided after the trailers: they go along
            seen = sorted(t.lower() for t in j["trailers"])
            want = sorted("%s: %s" % nv for nv in sp.trailers)
            if seen != want:
                return "request trailers at the vendor %r, want %r" % (seen, want)
        return None
    if k == "bytes" or k == "chunked":
        err = want_status(200)
        if err:
            return err
        if body != h.pattern(sp.n):
            return "%s/%d: %d bytes, differ at %d" % (k, sp.n, len(body), _diff(body, h.pattern(sp.n)))
        return None
    if k == "head":
        err = want_status(200)
        if err:
            return err
        if body or hd.get("content-length") != str(sp.n):
            return "HEAD /bytes/%d: body %d bytes, content-length %r" % (sp.n, len(body), hd.get("content-length"))
        return None
    if k == "status":
        err = want_status(sp.n)
        if err:
            return err
        if sp.n in (204, 304) and body:
            return "%d with a body of %d bytes" % (sp.n, len(body))
        if sp.n not in (204, 304) and body != b"status %d\n" % sp.n:
            return "status body %r" % body[:100]
        return None
    if k == "close_mid":
        # The head may have gone out (then the stream must be reset, never ended cleanly) or not.
        return want_status(502)
    if k == "reset":
        return want_status(502)
    if k == "unknown":
        return want_status(403)
    if k == "blocked":
        err = want_status(451)
        if err:
            return err
        try:
            if json.loads(body)["status"] != 451:
                return "451 problem %r" % body[:200]
        except (ValueError, KeyError):
            return "451 body not a problem JSON: %r" % body[:200]
        return None
    if k in ("h2_get", "h2_post"):
        err = want_status(200)
        if err:
            return err
        try:
            j = json.loads(body)
        except ValueError as ex:
            return "h2echo not JSON (%s): %r" % (ex, body[:200])
        if (j["method"], j["path"], j["authority"]) != (sp.method, sp.path, sp.host):
            return "h2echo saw %s %s %s" % (j["method"], j["path"], j["authority"])
        if j["body_len"] != len(sp.body) or j["body_sha256"] != hashlib.sha256(sp.body).hexdigest():
            return "h2echo body %d bytes, want %d (or digest differs)" % (j["body_len"], len(sp.body))
        if sp.trailers and len(sp.body) < 60000 and j["trailers"] != dict(sp.trailers):
            return "request trailers at the h2 vendor %r, want %r" % (j["trailers"], dict(sp.trailers))
        return None
    if k in ("trailers_h1", "trailers_h2"):
        err = want_status(200)
        if err:
            return err
        try:
            json.loads(body)
        except ValueError as ex:
            return "/trailers body not JSON (%s): %r" % (ex, body[:200])
        tr = dict(st.trailers or [])
        if (tr.get("grpc-status"), tr.get("x-checksum")) != ("0", "abc123"):
            return "response trailers %r" % (st.trailers,)
        bad = [n for n in tr if n in ("content-length", "transfer-encoding", "host", "connection", "te") or n.startswith(":")]
        if bad:
            return "fields not allowed in trailers relayed: %r" % bad
        return None
    if k == "nolength":
        err = want_status(200)
        if err:
            return err
        if body != h.pattern(sp.n):
            return "no-length/%d: %d bytes, differ at %d" % (sp.n, len(body), _diff(body, h.pattern(sp.n)))
        return None
    if k == "h2_big":
        err = want_status(200)
        if err:
            return err
        if body != b"b" * sp.n:
            return "/big?n=%d: %d bytes" % (sp.n, len(body))
        return None
    if k == "h2_echo_body":
        err = want_status(200)
        if err:
            return err
        if body != sp.body:
            return "/echo-body: %d bytes back of %d, differ at %d" % (len(body), len(sp.body), _diff(body, sp.body))
        return None
    return "unknown kind %s" % k


def _diff(a, b):
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return i
    return min(len(a), len(b))


def describe(st):
    sp = st.spec
    return "body %d sent %d cl %s trailers %s host-field %s cookies %d extra %r local_end %s" % (
        len(sp.body), st.sent, sp.cl, bool(sp.trailers), sp.use_host, len(sp.cookies),
        [(n, len(v)) for n, v in sp.extra], st.local_end)


def reset_ok(st):
    """Whether a reset by the gateway is a right answer for this well-formed stream."""
    sp = st.spec
    if sp.kind == "close_mid":
        # Head and 10 bytes out, then the vendor closed: the stream must be reset, not ended.
        return st.status in (None, 200) and h.pattern(10).startswith(bytes(st.body))
    if sp.kind == "reset":
        return st.status is None
    return False


# ---- the client ----------------------------------------------------------------------------

class Stream:
    def __init__(self, sid, spec):
        self.sid, self.spec = sid, spec
        self.status = None
        self.headers = []
        self.trailers = None
        self.body = bytearray()
        self.ended = False        # the gateway's END_STREAM
        self.reset = None         # the gateway's RST_STREAM code
        self.we_reset = False
        self.local_end = False    # our END_STREAM went out
        self.tosend = bytearray(spec.body)
        self.sent = 0
        self.send_win = 0
        self.recv_win = 0
        self.unreturned = 0       # DATA we took but whose window we have not given back
        self.stall_until = 0.0
        self.opened_at = time.monotonic()
        self.fault_done = False
        self.cut_at = None        # rst_mid_body: reset after this many body bytes

    @property
    def done(self):
        return self.reset is not None or self.we_reset or (self.ended and self.local_end)

    @property
    def answered(self):
        return self.ended or self.reset is not None or self.we_reset


class ConnError(Exception):
    pass


STATIC_INDEX = {(":authority", ""): 1, (":method", "GET"): 2, (":method", "POST"): 3, (":path", "/"): 4,
                (":scheme", "http"): 6, (":scheme", "https"): 7}
STATIC_NAMES = {n: i for i, (n, _) in reversed(list(enumerate(Hpack.STATIC[1:], 1)))}


class Encoder:
    """Our side of HPACK: static and dynamic indexes, literals with and without indexing."""

    def __init__(self, rng):
        self.rng = rng
        self.dyn = []  # newest first
        self.size = 0
        self.max = 4096

    def _add(self, n, v):
        sz = len(n) + len(v) + 32
        self.dyn.insert(0, (n, v))
        self.size += sz
        while self.size > self.max:
            on, ov = self.dyn.pop()
            self.size -= len(on) + len(ov) + 32

    def set_max(self, size):
        self.max = size
        while self.size > self.max:
            on, ov = self.dyn.pop()
            self.size -= len(on) + len(ov) + 32

    def field(self, n, v, sensitive=False):
        rng = self.rng
        key = (n, v)
        if key in STATIC_INDEX and rng.random() < 0.8:
            return hpack_int(STATIC_INDEX[key], 7, 0x80)
        if key in self.dyn and rng.random() < 0.8:
            return hpack_int(62 + self.dyn.index(key), 7, 0x80)
        r = rng.random()
        nb = n.encode("latin-1")
        vb = v.encode("latin-1")
        name_idx = STATIC_NAMES.get(n)
        if r < 0.35 and len(nb) + len(vb) + 32 <= self.max and not sensitive:
            self._add(n, v)
            if name_idx and rng.random() < 0.5:
                return hpack_int(name_idx, 6, 0x40) + hpack_str(vb)
            return b"\x40" + hpack_str(nb) + hpack_str(vb)
        first = 0x10 if (sensitive or r < 0.45) else 0x00
        if name_idx and rng.random() < 0.5:
            return hpack_int(name_idx, 4, first) + hpack_str(vb)
        return bytes([first]) + hpack_str(nb) + hpack_str(vb)


class Chaos:
    """One client connection running a random script; errors go to self.errors."""

    def __init__(self, e, rng, tls, label, deadline, tag):
        self.e, self.rng, self.tls, self.label, self.deadline = e, rng, tls, label, deadline
        self.tag = "s%d.c%d.n%d" % tag  # for paths and fields: no spaces
        self.errors = []
        self.stats = {}
        s = socket.create_connection(("127.0.0.1", e.tls if tls else e.plain), 5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            s = e.ctx.wrap_socket(s, server_hostname="localhost")
            if s.selected_alpn_protocol() != "h2":
                raise ConnError("ALPN chose %r" % s.selected_alpn_protocol())
        s.setblocking(False)
        self.sock = s
        self.rbuf = bytearray()
        self.wbuf = bytearray()
        self.eof = False
        self.eof_how = None
        self.nread = 0
        self.streams = {}
        self.next_sid = 1
        self.hpack = Hpack()
        self.enc = Encoder(rng)
        self.cont = None            # (sid, flags, block) of a header block awaiting CONTINUATION
        self.goaway = None
        self.idle_goaway = False
        self.pings = set()
        self.pings_acked = 0
        # The gateway's view of our DATA: its settings and windows.
        self.srv_init_win = 65535
        self.srv_max_frame = 16384
        self.srv_max_streams = 100
        self.send_cwin = 65535
        # Our receive side.
        self.my_init_win = rng.choice([65535, 65535, 16384, 4096, 1024, 262144, 1 << 20])
        self.my_max_frame = rng.choice([16384, 16384, 16384, 32768, 1 << 20])
        self.decreases = 0          # sum of INITIAL_WINDOW_SIZE decreases (window slack)
        self.recv_cwin = 65535
        self.c_unreturned = 0
        self.reader = rng.choice(["eager", "eager", "lazy", "slow"])
        self.slow_rate = rng.choice([4096, 32768, 262144])
        self.last_release = time.monotonic()
        self.settings_unacked = 0
        self.conn_fault = None      # the connection fault sent (or None)
        self.conn_ok = False        # a fault sent that may legitimately end the connection
        self.fatal_sent = None
        self.client_goaway = False
        # Big downloads only with windows that let them finish in time.
        self.big_ok = self.my_init_win >= 16384 and (self.reader != "slow" or self.slow_rate >= 262144)

    # -- bytes in and out --

    def err(self, msg):
        self.errors.append("%s: %s" % (self.label, msg))

    def _recv_some(self):
        try:
            d = self.sock.recv(262144)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError, InterruptedError):
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError) as ex:
            self.eof_how = "%s after %d bytes" % (type(ex).__name__, self.nread)
            self.eof = True
            return False
        if not d:
            self.eof_how = self.eof_how or "EOF after %d bytes" % self.nread
            self.eof = True
            return False
        self.nread += len(d)
        self.rbuf += d
        return True

    def pump(self, timeout=0.0):
        """Read what is there (waiting up to timeout for the first bytes) and handle frames."""
        if self.eof:
            return
        pending = self.tls and self.sock.pending()
        if not pending:
            try:
                r, _, _ = select.select([self.sock], [], [], timeout)
            except (ValueError, OSError):
                self.eof = True
                return
            if not r:
                return
        while self._recv_some():
            pass
        self._frames()

    def _drain(self):
        while True:
            try:
                d = self.sock.recv(262144)
            except OSError:
                break
            if not d:
                break
            self.rbuf += d
            self.nread += len(d)
        self._frames()

    def send(self, data):
        """Queue bytes and write them all, reading meanwhile (the gateway may wait for us to read
        before it reads more). Fails when the gateway stops reading for 15 s."""
        self.wbuf += data
        end = time.monotonic() + 15
        while self.wbuf and not self.eof:
            try:
                n = self.sock.send(self.wbuf[:262144])
                del self.wbuf[:n]
                continue
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError, InterruptedError):
                pass
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError) as ex:
                self.eof_how = self.eof_how or "%s while sending, after %d bytes read" % (type(ex).__name__, self.nread)
                self.eof = True
                self._drain()  # what the gateway said before it closed (a GOAWAY) is still readable
                break
            if time.monotonic() > end:
                raise ConnError("the gateway stopped reading for 15 s")
            try:
                r, w, _ = select.select([self.sock], [self.sock], [], 0.2)
            except (ValueError, OSError):
                self.eof = True
                break
            if r:
                while self._recv_some():
                    pass
                self._frames(sending=True)
        if self.eof:
            self.wbuf.clear()

    # -- frames from the gateway --

    def _frames(self, sending=False):
        while len(self.rbuf) >= 9:
            n = int.from_bytes(self.rbuf[:3], "big")
            if len(self.rbuf) < 9 + n:
                break
            ftype, flags = self.rbuf[3], self.rbuf[4]
            sid = int.from_bytes(self.rbuf[5:9], "big") & 0x7fffffff
            payload = bytes(self.rbuf[9:9 + n])
            del self.rbuf[:9 + n]
            if n > self.my_max_frame:
                self.err("frame type %d of %d bytes beyond our SETTINGS_MAX_FRAME_SIZE %d" % (ftype, n, self.my_max_frame))
            self._frame(ftype, flags, sid, payload, sending)

    def _stream_of(self, sid, what):
        st = self.streams.get(sid)
        if st is None and not self.eof:
            if sid % 2 == 0 or sid >= self.next_sid:
                self.err("%s on stream %d, which we never opened" % (what, sid))
        return st

    def _frame(self, ftype, flags, sid, p, sending):
        if self.cont is not None and ftype != CONTINUATION:
            self.err("frame type %d while the gateway's header block on %d awaits CONTINUATION" % (ftype, self.cont[0]))
            self.cont = None
        if ftype == SETTINGS:
            if flags & ACK:
                self.settings_unacked -= 1
                return
            for i in range(0, len(p) - 5, 6):
                ident, val = struct.unpack(">HI", p[i:i + 6])
                if ident == 4:
                    for st in self.streams.values():
                        st.send_win += val - self.srv_init_win
                    self.srv_init_win = val
                elif ident == 5:
                    self.srv_max_frame = val
                elif ident == 3:
                    self.srv_max_streams = val
            self.wbuf += frame(SETTINGS, ACK, 0)
        elif ftype == WINDOW_UPDATE:
            inc = int.from_bytes(p[:4], "big") & 0x7fffffff
            if sid == 0:
                self.send_cwin += inc
            else:
                st = self.streams.get(sid)
                if st:
                    st.send_win += inc
        elif ftype == PING:
            if flags & ACK:
                if p in self.pings:
                    self.pings.discard(p)
                    self.pings_acked += 1
                else:
                    self.err("PING ACK with a payload we never sent: %r" % p)
            else:
                self.wbuf += frame(PING, ACK, 0, p)
        elif ftype == GOAWAY:
            last = int.from_bytes(p[:4], "big") & 0x7fffffff
            code = int.from_bytes(p[4:8], "big")
            self.goaway = (last, code, p[8:200])
            # The idle timeout (3 s) may close a connection with nothing open: with GOAWAY
            # NO_ERROR naming the last stream taken, every stream up to it answered already.
            self.idle_goaway = code == NO_ERROR and all(st.done for st in self.streams.values() if st.sid <= last)
        elif ftype == RST_STREAM:
            st = self._stream_of(sid, "RST_STREAM")
            if st and st.reset is None and not st.we_reset and not (st.ended and st.local_end):
                st.reset = int.from_bytes(p[:4], "big")
        elif ftype == PUSH_PROMISE:
            self.err("PUSH_PROMISE although we disabled push (or not)")
        elif ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                if self.cont is not None:
                    self.err("HEADERS inside another header block")
                block = p
                if flags & PADDED:
                    block = block[1:len(block) - block[0]]
                if flags & PRIORITY_FLAG:
                    block = block[5:]
                self.cont = (sid, flags, bytearray(block))
            else:
                if self.cont is None or self.cont[0] != sid:
                    self.err("CONTINUATION on %d out of place" % sid)
                    return
                self.cont[2].extend(p)
            if not flags & END_HEADERS:
                return
            hsid, hflags, block = self.cont
            self.cont = None
            try:
                fields = self.hpack.decode(bytes(block))
            except (ValueError, IndexError) as ex:
                self.err("cannot decode the gateway's header block on %d: %s" % (hsid, ex))
                raise ConnError("HPACK state lost")
            st = self._stream_of(hsid, "HEADERS")
            if st is None:
                return
            if st.we_reset:
                return
            if st.ended or st.reset is not None:
                self.err("HEADERS on %d after it ended" % hsid)
                return
            if st.status is None:
                if not fields or fields[0][0] != ":status":
                    self.err("response head on %d does not start with :status: %r" % (hsid, fields[:3]))
                    return
                code = int(fields[0][1])
                if 100 <= code < 200:
                    return
                st.status = code
                st.headers = [(n, v) for n, v in fields[1:]]
                if any(n.startswith(":") for n, _ in st.headers):
                    self.err("pseudo-field after the first on %d: %r" % (hsid, st.headers))
            else:
                st.trailers = fields
                if not hflags & END_STREAM:
                    self.err("trailers on %d without END_STREAM" % hsid)
            if hflags & END_STREAM:
                st.ended = True
            self._after_response_frame(st)
        elif ftype == DATA:
            data = p
            if flags & PADDED:
                data = p[1:len(p) - p[0]]
            # Flow control: the whole payload counts, padding included.
            self.recv_cwin -= len(p)
            if self.recv_cwin < 0:
                self.err("DATA beyond the connection window by %d" % -self.recv_cwin)
            self.c_unreturned += len(p)
            st = self._stream_of(sid, "DATA")
            if st is None:
                return
            st.recv_win -= len(p)
            if st.recv_win < -self.decreases and not st.we_reset:
                self.err("DATA on %d beyond the stream window by %d" % (sid, -st.recv_win))
            st.unreturned += len(p)
            if st.we_reset:
                return
            if st.status is None:
                self.err("DATA on %d before the response head" % sid)
            if st.ended or st.reset is not None:
                self.err("DATA on %d after it ended" % sid)
                return
            st.body += data
            if flags & END_STREAM:
                st.ended = True
            self._after_response_frame(st)
        # unknown types: ignored, as the gateway may send extensions

    def _after_response_frame(self, st):
        if st.spec.fault == "rst_mid_response" and not st.fault_done and not st.ended and st.status is not None:
            if self.rng.random() < 0.5 or len(st.body) > 0:
                st.fault_done = True
                self._rst(st)

    # -- helpers to send --

    def _rst(self, st, code=None):
        if code is None:
            code = self.rng.choice([CANCEL, CANCEL, NO_ERROR, INTERNAL_ERROR, 0x1234])
        st.we_reset = True
        self.wbuf += frame(RST_STREAM, 0, st.sid, struct.pack(">I", code))

    def flush(self):
        if self.wbuf and not self.eof:
            data = bytes(self.wbuf)
            self.wbuf.clear()
            self.send(data)

    def header_block(self, sp, fault):
        f = self.enc.field
        rng = self.rng
        pseudo = [(":method", sp.method), (":scheme", sp.scheme), (":path", sp.path)]
        if not sp.use_host:
            pseudo.append((":authority", sp.host))
        rng.shuffle(pseudo)
        regular = list(sp.extra)
        if sp.use_host:
            regular.insert(0, ("host", sp.host))
        if sp.cl:
            regular.append(("content-length", str(len(sp.body))))
        if fault == "cl_short":
            sp.declared = len(sp.body) + rng.randint(1, 1000)
            regular.append(("content-length", str(sp.declared)))
        elif fault == "cl_long":
            sp.declared = max(0, len(sp.body) - rng.randint(1, 100))
            regular.append(("content-length", str(sp.declared)))
        for c in sp.cookies:
            regular.insert(rng.randint(0, len(regular)), ("cookie", c))
        if sp.sent_cookies is None:
            sp.sent_cookies = [v for n, v in regular if n == "cookie"]  # the order they went out in
        if fault == "upper":
            regular.append(("X-Upper-%d" % rng.randint(0, 9), "1"))
        elif fault == "conn_specific":
            regular.append(rng.choice([("connection", "close"), ("keep-alive", "5"), ("transfer-encoding", "chunked"),
                                       ("upgrade", "h2c"), ("proxy-connection", "x"), ("te", "gzip")]))
        elif fault == "oversize_head":
            regular += [("x-big-%d" % i, "o" * 1000) for i in range(20)]
        elif fault == "bad_pseudo":
            how = rng.choice(["no_path", "no_method", "unknown", "after_regular", "dup_path", "status", "empty_path"])
            if how == "no_path":
                pseudo = [x for x in pseudo if x[0] != ":path"]
            elif how == "no_method":
                pseudo = [x for x in pseudo if x[0] != ":method"]
            elif how == "unknown":
                pseudo.append((":chaos", "1"))
            elif how == "after_regular":
                regular.append((":path", "/late"))
                pseudo = [x for x in pseudo if x[0] != ":path"]
            elif how == "dup_path":
                pseudo.append((":path", "/again"))
            elif how == "status":
                pseudo.append((":status", "200"))
            elif how == "empty_path":
                pseudo = [x for x in pseudo if x[0] != ":path"] + [(":path", "")]
        block = b""
        if rng.random() < 0.05:
            new = rng.choice([0, 1024, 4096])  # a table size update within the gateway's 4096: legal
            block += hpack_int(new, 5, 0x20)
            self.enc.set_max(new)
        for n, v in pseudo + regular:
            block += f(n, v, sensitive=(n == "cookie" and rng.random() < 0.5))
        return block

    def send_headers(self, sid, block, end_stream, priority=None):
        """HEADERS (+ CONTINUATION when the block is split), in one write."""
        rng = self.rng
        limit = min(self.srv_max_frame, 16384)
        pieces = []
        rest = block
        first_max = limit - (5 if priority else 0)
        if rng.random() < 0.25 and len(rest) > 1:
            cut = rng.randint(1, min(len(rest), first_max))
        else:
            cut = min(len(rest), first_max)
        pieces.append(rest[:cut])
        rest = rest[cut:]
        while rest:
            if len(pieces) < 5 and len(rest) > 1 and rng.random() < 0.5:
                cut = rng.randint(1, min(len(rest), limit))
            else:
                cut = min(len(rest), limit)
            pieces.append(rest[:cut])
            rest = rest[cut:]
        out = b""
        flags = END_STREAM if end_stream else 0
        pay = pieces[0]
        if priority:
            flags |= PRIORITY_FLAG
            pay = priority + pay
        if len(pieces) == 1:
            flags |= END_HEADERS
        if rng.random() < 0.1:
            flags |= 0x2 | 0x10 | 0x40  # undefined flags: ignored
        out += frame(HEADERS, flags, sid, pay)
        for i, pc in enumerate(pieces[1:], 1):
            out += frame(CONTINUATION, END_HEADERS if i == len(pieces) - 1 else 0, sid, pc)
        self.wbuf += out

    def priority_bytes(self, sid):
        rng = self.rng
        dep = rng.choice([0, 1, max(1, sid - 2), sid + 2])
        if dep == sid:
            dep = 0  # a stream cannot depend on itself (that is the self_dependency fault)
        return struct.pack(">IB", dep | (0x80000000 if rng.random() < 0.3 else 0), rng.randint(0, 255))

    # -- the script --

    def active(self):
        return sum(1 for st in self.streams.values() if not st.done)

    def open_stream(self, fault=None):
        rng = self.rng
        sid = self.next_sid
        self.next_sid += 2
        sp = Spec(rng, "%s-%d" % (self.tag, sid), self.big_ok, self.tls, fault)
        if fault in ("rst_mid_body", "cl_short", "cl_long", "trailer_pseudo", "trailer_no_end", "flow_violation") \
                and sp.method != "POST":
            sp.method, sp.kind, sp.path = "POST", "echo_post", "/echo?t=" + sp.tag
            sp.body = body_bytes(rng, rng.randint(1, 50000) if fault != "flow_violation" else 400000)
            sp.extra.append(("content-type", "application/octet-stream"))
            sp.cl = False
        if fault in ("cl_short", "cl_long", "trailer_pseudo", "trailer_no_end"):
            sp.trailers = None if fault.startswith("cl_") else [("x-t", "1")]
            sp.cl = False
        st = Stream(sid, sp)
        st.send_win = self.srv_init_win
        st.recv_win = self.my_init_win
        self.streams[sid] = st
        block = self.header_block(sp, fault)
        prio = None
        if fault == "self_dependency":
            prio = struct.pack(">IB", sid, 16)
        elif rng.random() < 0.15:
            prio = self.priority_bytes(sid)
        end = not sp.body and not sp.trailers and sp.method != "POST"
        if sp.method == "POST" and not sp.body and not sp.trailers and rng.random() < 0.5:
            end = True
        self.send_headers(sid, block, end, prio)
        st.local_end = end
        if fault == "rst_mid_body":
            st.cut_at = rng.randint(0, len(sp.body))
        if fault == "rst_after_headers":
            self._rst(st)
        elif fault == "zero_wu_stream":
            self.wbuf += frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", 0))
        elif fault == "overflow_wu_stream":
            self.wbuf += frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", MAX_WINDOW))
        elif fault == "data_after_end" and end:
            self.wbuf += frame(DATA, rng.choice([0, END_STREAM]), sid, b"late")
            self.send_cwin -= 4
        if rng.random() < 0.3:
            st.stall_until = time.monotonic() + rng.uniform(0, 0.5)
        return st

    def send_body_step(self):
        """One DATA frame (or the trailers / end) of some stream with something left to send."""
        rng = self.rng
        cands = [st for st in self.streams.values() if not st.local_end and not st.we_reset and st.reset is None]
        if not cands:
            return False
        st = rng.choice(cands)
        sp = st.spec
        if st.tosend:
            violate = sp.fault == "flow_violation"
            room = len(st.tosend) if violate else min(st.send_win, self.send_cwin, len(st.tosend))
            maxf = min(self.srv_max_frame, 16384)
            if room <= 0:
                return False
            n = min(room, rng.choice([1, 100, 1000, 5000, maxf, maxf, maxf]), maxf)
            pad = 0
            if rng.random() < 0.1 and n + 1 + 10 <= maxf and (violate or n + 11 <= min(st.send_win, self.send_cwin)):
                pad = rng.randint(0, 10)
            if st.cut_at is not None and st.sent + n >= st.cut_at:
                n = st.cut_at - st.sent
            chunk = bytes(st.tosend[:n])
            del st.tosend[:n]
            st.sent += n
            last = not st.tosend
            end = last and not sp.trailers and rng.random() < 0.7 and sp.fault not in ("trailer_pseudo", "trailer_no_end")
            if sp.fault == "cl_long" and last:
                end = True
            flags = END_STREAM if end else 0
            payload = chunk
            if pad:
                flags |= PADDED
                payload = bytes([pad]) + chunk + b"\0" * pad
            if n or pad or end:
                self.wbuf += frame(DATA, flags, st.sid, payload)
            st.send_win -= len(payload)
            self.send_cwin -= len(payload)
            if end:
                st.local_end = True
                self._after_end(st)
            if st.cut_at is not None and st.sent >= st.cut_at and not st.local_end:
                self._rst(st)
            return True
        # Body all sent: end with trailers or an empty DATA.
        if sp.fault == "trailer_pseudo":
            block = self.enc.field("x-t", "1") + self.enc.field(":path", "/trailer")
            self.send_headers(st.sid, block, True)
        elif sp.fault == "trailer_no_end":
            self.send_headers(st.sid, self.enc.field("x-t", "1"), False)
            st.fault_done = True
            self._rst(st, CANCEL)  # it can never end now; the gateway may have ended the connection
        elif sp.trailers:
            block = b"".join(self.enc.field(n, v) for n, v in sp.trailers)
            self.send_headers(st.sid, block, True)
        else:
            self.wbuf += frame(DATA, END_STREAM, st.sid)
        st.local_end = True
        self._after_end(st)
        return True

    def _after_end(self, st):
        if st.spec.fault == "data_after_end" and not st.fault_done:
            st.fault_done = True
            self.wbuf += frame(DATA, 0, st.sid, b"x")
            self.send_cwin -= 1

    def release_windows(self, force=False):
        """Give back receive windows per the reader mode: eager (all at once), lazy (a stream's
        once half its window is used; the connection's at once) or slow (a byte budget per 10 ms
        for streams and connection alike). A stream may be stalled for a while on top."""
        now = time.monotonic()
        budget = cbudget = None
        if self.reader == "slow" and not force:
            budget = cbudget = int(self.slow_rate * (now - self.last_release) / 0.01)
            if budget <= 0:
                return
        self.last_release = now
        out = b""
        for st in self.streams.values():
            if not st.unreturned:
                continue
            if st.answered:
                st.unreturned = 0  # no window to give back on a finished stream
                continue
            if now < st.stall_until and not force:
                continue
            if self.reader == "lazy" and st.unreturned < self.my_init_win // 2 and not force:
                continue
            n = st.unreturned if budget is None else min(st.unreturned, budget)
            if n <= 0:
                continue
            if budget is not None:
                budget -= n
            st.unreturned -= n
            st.recv_win += n
            out += frame(WINDOW_UPDATE, 0, st.sid, struct.pack(">I", n))
        n = self.c_unreturned if cbudget is None else min(self.c_unreturned, cbudget)
        if n > 0:
            self.c_unreturned -= n
            self.recv_cwin += n
            out += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", n))
        self.wbuf += out

    def noise(self):
        """A legal frame that must not disturb anything."""
        rng = self.rng
        k = rng.choice(["ping", "ping", "settings", "wu_conn", "wu_stream", "unknown", "priority", "prio_update",
                        "ping_flags", "empty_settings"])
        if k == "ping":
            data = rng.randbytes(8)
            self.pings.add(data)
            self.wbuf += frame(PING, 0, 0, data)
        elif k == "ping_flags":
            data = rng.randbytes(8)
            self.pings.add(data)
            self.wbuf += frame(PING, 0xfe, 0, data)  # undefined flags, no ACK
        elif k == "settings":
            entries = []
            if rng.random() < 0.6:
                new = rng.choice([1024, 4096, 16384, 65535, 262144, 1 << 20])
                if new < self.my_init_win:
                    self.decreases += self.my_init_win - new
                for st in self.streams.values():
                    st.recv_win += new - self.my_init_win
                self.my_init_win = new
                entries.append((4, new))
            if rng.random() < 0.4:
                entries.append((1, rng.choice([0, 256, 4096, 65536])))  # our decoder's table
            if rng.random() < 0.3:
                entries.append((rng.randint(0x10, 0xffff), rng.randint(0, 1 << 31)))  # unknown: ignored
            if rng.random() < 0.3:
                entries.append((2, 0))
            if rng.random() < 0.2:
                new = rng.choice([16384, 32768])
                if new > self.my_max_frame:
                    self.my_max_frame = new  # only ever raised: frames in flight stay within the bound
                entries.append((5, new))
            self.settings_unacked += 1
            self.wbuf += frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", i, v) for i, v in entries))
        elif k == "empty_settings":
            self.settings_unacked += 1
            self.wbuf += frame(SETTINGS, 0, 0)
        elif k == "wu_conn":
            inc = rng.randint(1, 1 << 20)
            if self.recv_cwin + inc < MAX_WINDOW:
                self.recv_cwin += inc
                self.wbuf += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", inc))
        elif k == "wu_stream":
            live = [st for st in self.streams.values() if not st.answered]
            if live:
                st = rng.choice(live)
                inc = rng.randint(1, 1 << 18)
                if st.recv_win + inc < MAX_WINDOW // 2:
                    st.recv_win += inc
                    self.wbuf += frame(WINDOW_UPDATE, 0, st.sid, struct.pack(">I", inc))
        elif k == "unknown":
            sid = rng.choice([0, 1, self.next_sid, max(1, self.next_sid - 2), 12345])
            self.wbuf += frame(rng.randint(0x20, 0xff), rng.randint(0, 255), sid, rng.randbytes(rng.randint(0, 64)))
        elif k == "priority":
            sid = rng.choice([max(1, self.next_sid - 2), self.next_sid + 2 * rng.randint(0, 5)])
            if sid == self.next_sid:
                sid += 2  # never the next id we will open... it would then be idle-closed
            dep = rng.choice([0, 1, max(1, sid - 2)])
            if dep != sid:
                self.wbuf += frame(PRIORITY, 0, sid, struct.pack(">IB", dep, rng.randint(0, 255)))
        elif k == "prio_update":
            target = max(1, self.next_sid - 2 * rng.randint(1, 3))
            field = rng.choice([b"u=0", b"u=7, i", b"i", b"u=3", b"garbage;;", b""])
            self.wbuf += frame(PRIORITY_UPDATE, 0, 0, struct.pack(">I", target) + field)

    def conn_fault_now(self, kind):
        """Send connection fault `kind`; returns whether the connection is over on our side."""
        rng = self.rng
        self.conn_fault = kind
        self.stats["cf_" + kind] = self.stats.get("cf_" + kind, 0) + 1
        if kind in ("close", "rst", "truncated"):
            if kind == "truncated":
                f = frame(HEADERS, END_HEADERS, self.next_sid, b"\x82\x86\x84" + b"\x00" * 30)
                self.wbuf += f[:rng.randint(1, len(f) - 1)]
                self.flush()
            elif kind == "rst":
                self.wbuf += frame(DATA, 0, 1, b"x" * 100)[:rng.randint(0, 50)]
                self.flush()
                try:
                    self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            return True
        if kind == "client_goaway":
            self.client_goaway = True
            self.wbuf += frame(GOAWAY, 0, 0, struct.pack(">II", 0, NO_ERROR))
            return False
        if kind == "lower_stream":
            # A stream above an unused id, then the unused one (implicitly closed): RFC 9113 5.1.1
            # wants PROTOCOL_ERROR, nghttp2 ignores HEADERS on ids it cannot tell from closed
            # streams. Either is taken; the connection goes on.
            skipped = self.next_sid
            sid = skipped + 2
            self.next_sid += 4
            for x in (sid, skipped):
                sp = Spec(rng, "low", False, self.tls)
                self.streams[x] = Stream(x, sp)
                self.streams[x].we_reset = True  # never judged
                self.wbuf += frame(HEADERS, END_HEADERS | END_STREAM, x, self.header_block(sp, None))
            self.conn_ok = True
            return False
        self.fatal_sent = kind
        if kind == "oversize_frame":
            self.wbuf += frame(rng.choice([DATA, HEADERS, PING, 0x42]), 0, rng.choice([0, 1, self.next_sid]),
                               b"\0" * rng.choice([16385, 20000, 70000]))
        elif kind == "rst_idle":
            self.wbuf += frame(RST_STREAM, 0, self.next_sid + 2 * rng.randint(0, 10), struct.pack(">I", CANCEL))
        elif kind == "bad_ping_len":
            self.wbuf += frame(PING, 0, 0, b"1234567")
        elif kind == "bad_settings":
            self.wbuf += frame(SETTINGS, 0, 0, struct.pack(">HI", 2, 2))
        elif kind == "window_overflow":
            self.wbuf += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", MAX_WINDOW)) * 2
        elif kind == "data_stream0":
            self.wbuf += frame(DATA, 0, 0, b"abc")
        elif kind == "even_stream":
            self.wbuf += frame(HEADERS, END_HEADERS | END_STREAM, self.next_sid + 1,
                               self.header_block(Spec(rng, "even", False, self.tls), None))
        elif kind == "interleaved_continuation":
            sp = Spec(rng, "ic", False, self.tls)
            block = self.header_block(sp, None)
            sid = self.next_sid
            self.next_sid += 2
            self.streams[sid] = Stream(sid, sp)
            self.streams[sid].we_reset = True  # never judged
            self.wbuf += frame(HEADERS, END_STREAM, sid, block[:1]) + frame(PING, 0, 0, b"12345678") + \
                frame(CONTINUATION, END_HEADERS, sid, block[1:])
        elif kind == "hpack_garbage":
            sid = self.next_sid
            self.next_sid += 2
            sp = Spec(rng, "hg", False, self.tls)
            self.streams[sid] = Stream(sid, sp)
            self.streams[sid].we_reset = True
            self.wbuf += frame(HEADERS, END_HEADERS | END_STREAM, sid, hpack_int(9999, 7, 0x80))
        elif kind == "push_promise":
            self.wbuf += frame(PUSH_PROMISE, END_HEADERS, 1, struct.pack(">I", 2) + b"\x82")
        elif kind == "settings_window_overflow":
            self.wbuf += frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 1 << 31))
        return False

    def run(self):
        rng = self.rng
        # Preface and our SETTINGS (and maybe a larger connection window) without waiting.
        settings = struct.pack(">HI", 4, self.my_init_win) + struct.pack(">HI", 2, 0)
        if self.my_max_frame != 16384:
            settings += struct.pack(">HI", 5, self.my_max_frame)
        if rng.random() < 0.3:
            settings += struct.pack(">HI", 3, rng.randint(0, 100))
        self.settings_unacked += 1
        out = PREFACE + frame(SETTINGS, 0, 0, settings)
        if rng.random() < 0.7:
            inc = rng.choice([1 << 16, 1 << 20, 16 << 20])
            out += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", inc))
            self.recv_cwin += inc
        self.wbuf += out
        target = rng.randint(1, 40)
        cap = rng.choice([1, 4, 16, 100])
        fault_rate = rng.choice([0.0, 0.1, 0.25])
        conn_fault = pick(rng, CONN_FAULTS) if rng.random() < 0.3 else None
        fault_after = rng.randint(0, target)
        opened = 0
        conn_end = time.monotonic() + 40
        self.flush()
        while True:
            now = time.monotonic()
            if now > conn_end:
                stuck = [(st.sid, st.spec.kind, st.spec.fault, st.status, len(st.body), st.ended, st.reset,
                          st.local_end, len(st.tosend), st.send_win, st.unreturned)
                         for st in self.streams.values() if not st.done]
                raise ConnError("connection not finished after 40 s; open streams "
                                "(sid, kind, fault, status, got, ended, reset, local_end, to send, send_win, unreturned): %r; "
                                "send_cwin %d, goaway %r" % (stuck[:8], self.send_cwin, self.goaway))
            self.pump(0)
            if self.eof or (self.goaway and self.goaway[1] != NO_ERROR):
                break
            acted = False
            if conn_fault and opened >= fault_after and not self.conn_fault:
                if self.conn_fault_now(conn_fault):
                    return
                acted = True
            can_open = (opened < target and not self.client_goaway and not self.goaway and not self.fatal_sent
                        and now < self.deadline and self.active() < min(cap, self.srv_max_streams))
            if can_open and rng.random() < 0.5:
                fault = pick(rng, STREAM_FAULTS) if rng.random() < fault_rate else None
                self.open_stream(fault)
                opened += 1
                acted = True
            if rng.random() < 0.8 and not self.fatal_sent:
                acted = self.send_body_step() or acted
            if rng.random() < 0.05 and not self.fatal_sent:
                self.noise()
            for st in list(self.streams.values()):
                if st.spec.fault == "headers_after_close" and not st.fault_done and st.ended and st.local_end:
                    st.fault_done = True
                    self.send_headers(st.sid, self.header_block(st.spec, None), True)
            self.release_windows()
            self.flush()
            if self.fatal_sent:
                # The gateway must say GOAWAY and close; streams are no longer judged.
                if not self.wait_close(5):
                    self.err("no close within 5 s after fault %s (goaway %r)" % (self.fatal_sent, self.goaway))
                break
            done = opened >= target or self.client_goaway or now >= self.deadline or self.goaway
            if done and all(st.done for st in self.streams.values()):
                break
            if not acted:
                self.pump(0.01 if self.reader == "slow" else 0.05)
        self.finish()

    def wait_close(self, timeout):
        end = time.monotonic() + timeout
        while not self.eof and time.monotonic() < end:
            self.pump(0.1)
            self.wbuf.clear()  # acks for a connection that is going away
        return self.eof

    def finish(self):
        """Judge what the connection saw, then close it (politely or not)."""
        rng = self.rng
        gw = self.goaway
        if gw and gw[1] != NO_ERROR and not self.fatal_sent:
            bad = [st.spec.fault for st in self.streams.values() if st.spec.fault]
            if not any(f in CONN_OK_FAULTS for f in bad) and not (self.conn_ok and gw[1] in (PROTOCOL_ERROR,
                                                                                              STREAM_CLOSED)):
                self.err("GOAWAY %r without a connection fault (stream faults sent: %r)" % (gw, bad))
        if self.fatal_sent:
            want = FATAL[self.fatal_sent]
            if gw is None:
                self.err("fault %s answered without GOAWAY (connection ended: %s)" % (self.fatal_sent, self.eof_how))
            elif gw[1] not in want and not self.conn_ok and not any(
                    st.spec.fault in CONN_OK_FAULTS for st in self.streams.values()):
                # (an earlier fault that may end the connection can have ended it first)
                self.err("fault %s answered with GOAWAY code %d (%r), want %s" % (self.fatal_sent, gw[1], gw[2], want))
        if gw and gw[1] == NO_ERROR and not DRAIN.is_set() and not self.idle_goaway:
            self.err("GOAWAY NO_ERROR %r during the run" % (gw,))
        # (A connection still in the listen queue when the listener closes for a shutdown is
        # reset by the kernel before the gateway saw it: no bytes from the gateway at all.)
        if self.eof and not gw and not self.fatal_sent and self.conn_fault not in ("close", "rst", "truncated") \
                and not (DRAIN.is_set() and self.nread == 0):
            open_ = [st.sid for st in self.streams.values() if not st.done]
            if open_:
                self.err("the gateway closed the connection (%s) without GOAWAY, streams %r open" % (self.eof_how, open_))
        # Unanswered PINGs: only on a connection that stayed healthy.
        if not self.eof and not gw and self.pings:
            end = time.monotonic() + 3
            while self.pings and not self.eof and time.monotonic() < end:
                self.pump(0.1)
                self.flush()
            if self.pings and not self.eof:
                self.err("%d PINGs never acknowledged" % len(self.pings))
        for st in self.streams.values():
            self.judge(st)
        try:
            if rng.random() < 0.5 and not self.eof:
                self.wbuf += frame(GOAWAY, 0, 0, struct.pack(">II", self.next_sid - 2 if self.next_sid > 1 else 0,
                                                               NO_ERROR))
                self.flush()
        except ConnError:
            pass
        self.close()

    def judge(self, st):
        sp = st.spec
        f = sp.fault
        key = "fault_" + (f or "none")
        self.stats[key] = self.stats.get(key, 0) + 1
        if f or sp.kind in ("close_mid", "reset"):
            how = ("we reset" if st.we_reset else "RST %d" % st.reset if st.reset is not None
                   else "status %s" % st.status if st.ended else "no answer")
            key = "outcome %s: %s" % (f or sp.kind, how)
            self.stats[key] = self.stats.get(key, 0) + 1
        if st.we_reset:
            if st.ended and st.status is not None and f in (None, "rst_mid_response"):
                err = check_answer(st)
                if err and not (sp.kind in ("close_mid",) and st.status == 200):
                    self.err("stream %d (%s %s %s, reset by us later): %s" % (st.sid, sp.method, sp.host, sp.path, err))
            return
        # Streams may go unanswered when we broke the connection, when the gateway ended it for a
        # fault of ours, or past the last stream id of its shutdown GOAWAY; a client GOAWAY or an
        # ignored HEADERS leaves the rest of the connection working.
        died = (self.fatal_sent or self.conn_fault in ("close", "rst", "truncated") or (DRAIN.is_set() and self.nread == 0)
                or (self.goaway and self.goaway[1] != NO_ERROR)
                or (self.goaway and self.goaway[1] == NO_ERROR and (DRAIN.is_set() or self.idle_goaway)
                    and st.sid > self.goaway[0]))
        if f is None or f in ("rst_mid_response", "headers_after_close"):
            if st.ended:
                err = check_answer(st)
                if err:
                    self.err("stream %d (%s %s %s): %s [%s; stream win %d, conn win %d, faults on the connection %r]"
                             % (st.sid, sp.method, sp.host, sp.path, err, describe(st), st.send_win, self.send_cwin,
                                [(x.sid, x.spec.fault) for x in self.streams.values() if x.spec.fault]))
                else:
                    self.stats["ok"] = self.stats.get("ok", 0) + 1
            elif st.reset is not None:
                if not reset_ok(st):
                    self.err("well-formed stream %d (%s %s %s) reset by the gateway with code %d (status %s, %d bytes; %s)"
                             % (st.sid, sp.method, sp.host, sp.path, st.reset, st.status, len(st.body), describe(st)))
            elif not died:
                self.err("stream %d (%s %s %s) never answered (goaway %r, connection %s; %s)"
                         % (st.sid, sp.method, sp.host, sp.path, self.goaway, self.eof_how or "open", describe(st)))
            return
        # A stream fault: the stream gets reset (or an error answer); never a vendor answer to a
        # malformed request.
        if f in ("bad_pseudo", "upper", "conn_specific", "cl_short", "cl_long", "trailer_pseudo", "zero_wu_stream",
                 "overflow_wu_stream"):
            if st.ended and st.reset is None and st.status not in (400,) and f not in ("cl_short", "cl_long",
                                                                                   "trailer_pseudo"):
                self.err("malformed stream %d (%s) answered %s instead of a reset" % (st.sid, f, st.status))
            if not st.answered and not died:
                self.err("malformed stream %d (%s) neither reset nor answered" % (st.sid, f))
            if f in ("cl_short", "trailer_pseudo") and st.ended and st.status == 200:
                # Body shorter than declared, or bad trailers: the vendor never saw a complete
                # request, so an answer from it means the gateway completed one on its own.
                self.err("stream %d (%s) got a vendor answer: %r" % (st.sid, f, bytes(st.body[:300])))
            if f == "cl_long" and st.ended and st.status == 200:
                # Answered once the declared length arrived (the excess came after): the vendor
                # must have seen exactly the declared bytes.
                try:
                    if sp.kind == "echo_post":
                        got = json.loads(bytes(st.body))["body"].encode("latin-1")
                    elif sp.kind == "h2_echo_body":
                        got = bytes(st.body)
                    else:  # h2_post: h2echo's digest of what it got
                        j = json.loads(bytes(st.body))
                        ok = j["body_sha256"] == hashlib.sha256(sp.body[:sp.declared]).hexdigest()
                        got = sp.body[:sp.declared] if ok else ValueError("%d bytes" % j["body_len"])
                except (ValueError, KeyError) as ex:
                    got = ex
                if got != sp.body[:sp.declared]:
                    self.err("stream %d (cl_long, content-length %d of %d sent): the vendor saw %r"
                             % (st.sid, sp.declared, len(sp.body), got if isinstance(got, Exception) else len(got)))
        elif f == "oversize_head":
            if st.ended and st.status != 431:
                self.err("oversized head on %d answered %s, want 431" % (st.sid, st.status))
            if not st.answered and not died:
                self.err("oversized head on %d never answered" % st.sid)
        elif f == "self_dependency":
            if st.ended:
                err = check_answer(st)
                if err:
                    self.err("stream %d (self dependency): %s" % (st.sid, err))
            elif not st.answered and not died:
                self.err("stream %d (self dependency) never answered" % st.sid)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---- the run -------------------------------------------------------------------------------

class Run:
    def __init__(self):
        self.lock = threading.Lock()
        self.errors = []
        self.stats = {}
        self.conns = 0
        self.rss = []


def client(e, run, cid, deadline):
    n = 0
    while time.monotonic() < deadline:
        n += 1
        crng = random.Random("%d/%d/%d" % (SEED, cid, n))
        label = "seed %d client %d conn %d" % (SEED, cid, n)
        tls = crng.random() < 0.25
        c = None
        try:
            c = Chaos(e, crng, tls, label + (" tls" if tls else ""), deadline, (SEED, cid, n))
            c.run()
        except ConnError as ex:
            if c:
                c.errors.append("%s: %s" % (c.label, ex))
            else:
                with run.lock:
                    run.errors.append("%s: %s" % (label, ex))
        except OSError as ex:
            if DRAIN.is_set():
                break  # the listener closed for the shutdown
            with run.lock:
                run.errors.append("%s: connect: %s" % (label, ex))
            time.sleep(0.1)
        except Exception as ex:  # a bug in the test itself: report it with its place
            import traceback
            with run.lock:
                run.errors.append("%s: client crashed: %s\n%s" % (label, ex, traceback.format_exc()))
        finally:
            if c:
                c.close()
                with run.lock:
                    run.errors += c.errors
                    for k, v in c.stats.items():
                        run.stats[k] = run.stats.get(k, 0) + v
                    run.conns += 1
    

STATE = {}
DRAIN = threading.Event()  # set once the gateway got SIGTERM: GOAWAY NO_ERROR is expected then


@test
def chaos_streams_get_the_right_answers():
    e = env()
    pid = e.gw.proc.pid
    # Warm up (pool, TLS contexts), then the baselines.
    r = h.curl("--http2-prior-knowledge", "-H", "Host: de.test", "http://127.0.0.1:%d/echo" % e.plain)
    eq(r.status, 200, repr(r))
    time.sleep(0.2)
    STATE["fds0"] = h.fd_count(pid)
    STATE["rss0"] = h.rss_kb(pid) * 1024
    print("  seed %d, %d clients, %.0f s; baseline %d fds, RSS %.1f MiB"
          % (SEED, CLIENTS, SECONDS, STATE["fds0"], STATE["rss0"] / 1048576), flush=True)
    run = Run()
    deadline = time.monotonic() + SECONDS
    threads = [threading.Thread(target=client, args=(e, run, i, deadline), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        if e.gw.alive():
            run.rss.append(h.rss_kb(pid) * 1024)
        else:
            break
    for t in threads:
        t.join(60)
    STATE["run"] = run
    ok = run.stats.get("ok", 0)
    faults = {k[6:]: v for k, v in run.stats.items() if k.startswith("fault_") and k != "fault_none"}
    cfaults = {k[3:]: v for k, v in run.stats.items() if k.startswith("cf_")}
    print("  %d connections, %d streams answered right, stream faults %s, connection faults %s"
          % (run.conns, ok, sum(faults.values()), sum(cfaults.values())), flush=True)
    if os.environ.get("CHAOS_VERBOSE"):
        for k in sorted(x for x in run.stats if x.startswith("outcome ")):
            print("    %-60s %d" % (k[8:], run.stats[k]))
        print("    connection faults: %r" % cfaults)
    check(e.gw.alive(), "gateway died (seed %d); stderr tail:\n%s" % (SEED, e.gw.stderr()[-3000:]))
    if run.errors:
        raise h.Failure("seed %d: %d errors, first ones:\n  %s" % (SEED, len(run.errors), "\n  ".join(run.errors[:15])))
    check(ok > 20, "too few streams answered to mean anything: %d" % ok)


@test
def gateway_still_serves_and_lets_go_of_descriptors_and_memory():
    e = env()
    pid = e.gw.proc.pid
    check(e.gw.alive(), "gateway alive")
    for host, path, want in (("de.test", "/echo", 200), ("h2.vendor.test", "/x", 200), ("nowhere.test", "/", 403)):
        r = h.curl("--http2-prior-knowledge", "-H", "Host: " + host, "http://127.0.0.1:%d%s" % (e.plain, path))
        eq(r.status, want, "%s%s after the run: %r" % (host, path, r))
    fds0 = STATE.get("fds0")
    check(fds0, "baseline taken")
    # Client connections close at once; idle vendor connections after idle_timeout (3 s).
    end = time.monotonic() + 15
    while h.fd_count(pid) > fds0 + 3 and time.monotonic() < end:
        time.sleep(0.25)
    fds = h.fd_count(pid)
    check(fds <= fds0 + 3, "seed %d: %d descriptors open, baseline %d: %r"
          % (SEED, fds, fds0, sorted(os.readlink("/proc/%d/fd/%s" % (pid, f)) for f in os.listdir("/proc/%d/fd" % pid))))
    rss = h.rss_kb(pid) * 1024
    rss0 = STATE["rss0"]
    samples = STATE["run"].rss if "run" in STATE else []
    print("  descriptors %d (baseline %d), RSS %.1f MiB (baseline %.1f, peak %.1f)"
          % (fds, fds0, rss / 1048576, rss0 / 1048576, max(samples or [rss]) / 1048576), flush=True)
    bound = (1024 << 20) if ASAN else (256 << 20)
    check(rss < rss0 + bound, "RSS %.1f MiB after the run (baseline %.1f)" % (rss / 1048576, rss0 / 1048576))
    if len(samples) >= 60:
        # A long run: the last third must not sit well above what the first two thirds reached.
        k = len(samples) * 2 // 3
        early, late = max(samples[:k]), max(samples[k:])
        check(late <= early * 1.25 + (16 << 20), "RSS still growing: %.1f MiB late vs %.1f MiB earlier"
              % (late / 1048576, early / 1048576))


def msum(body, name):
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


@test
def records_verify_and_agree_with_metrics():
    e = env()

    def settled():
        recs = h.read_records(e.records)
        m = h.http_get(e.gw.admin_port, "/metrics")[2].decode()
        written = msum(m, "bordergate_records_written_total")
        transfers = msum(m, "bordergate_transfers_total")
        return (recs, m) if len(recs) == written == transfers else None
    got = None
    end = time.monotonic() + 10
    while got is None and time.monotonic() < end:
        got = settled()
        if got is None:
            time.sleep(0.2)
    recs = h.read_records(e.records)
    m = h.http_get(e.gw.admin_port, "/metrics")[2].decode()
    check(got is not None, "records %d, records_written_total %s, transfers_total %s"
          % (len(recs), msum(m, "bordergate_records_written_total"), msum(m, "bordergate_transfers_total")))
    ids = [r["id"] for r in recs]
    eq(len(set(ids)), len(ids), "record ids unique")
    check(all(r["protocol"] == "h2" for r in recs if r["vendor"] != "de" or r["path"] != "/echo"),
          "protocols %r" % sorted({r["protocol"] for r in recs}))
    out = h.run([h.BINARY, "records", "verify"] + h.record_files(os.path.dirname(e.records)), timeout=120)
    eq(out.returncode, 0, "records verify: %s%s" % (out.stdout[-500:], out.stderr[-500:]))
    print("  %d records verify" % len(recs), flush=True)


@test
def sigterm_under_traffic_drains_and_exits_0():
    """Chaos clients keep going while the gateway gets SIGTERM: each connection gets GOAWAY
    NO_ERROR, every well-formed stream up to its last stream id is answered right, and the
    gateway exits 0 once they are done; the records still verify; no sanitizer report."""
    e = env()
    run = Run()
    deadline = time.monotonic() + 4
    threads = [threading.Thread(target=client, args=(e, run, 1000 + i, deadline), daemon=True)
               for i in range(max(2, CLIENTS // 2))]
    for t in threads:
        t.start()
    time.sleep(1.5)
    DRAIN.set()
    e.gw.signal(signal.SIGTERM)
    for t in threads:
        t.join(60)
    try:
        rc = e.gw.proc.wait(40)
    except Exception:
        rc = "still running 40 s after SIGTERM"
    print("  %d connections during the drain, %d streams answered right" % (run.conns, run.stats.get("ok", 0)),
          flush=True)
    log = e.gw.stderr()
    for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer"):
        check(marker not in log, "seed %d: %s in the gateway's stderr:\n%s" % (SEED, marker, log[log.find(marker) - 200:][:4000]))
    eq(rc, 0, "exit status on SIGTERM under traffic; stderr tail:\n%s" % log[-1500:])
    if run.errors:
        raise h.Failure("seed %d: %d errors during the drain, first ones:\n  %s"
                        % (SEED, len(run.errors), "\n  ".join(run.errors[:15])))
    out = h.run([h.BINARY, "records", "verify"] + h.record_files(os.path.dirname(e.records)), timeout=120)
    eq(out.returncode, 0, "records verify after the drain: %s%s" % (out.stdout[-500:], out.stderr[-500:]))


if __name__ == "__main__":
    h.main()
