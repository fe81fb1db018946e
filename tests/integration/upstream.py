#!/usr/bin/env python3
"""upstream.py -- a small HTTP/1.1 test upstream (a stand-in vendor) for bordergate's tests.

Threaded (one thread per connection), plain or TLS, keep-alive. Records every request it
receives (method, target, headers in order, body) in memory, optionally as JSON lines in a
file, and on an optional control port at `GET /__log` (`DELETE /__log` clears it).
Behaviour is chosen per request by path (the query is ignored):

  /echo (and any other path)  200, the request as JSON
  /status/NNN                 status NNN (no body for 1xx, 204, 304 and HEAD)
  /delay/MS                   sleeps MS ms, then answers like /echo
  /bytes/N                    N bytes of pattern(N), with Content-Length
  /chunked/N                  N bytes of pattern(N), chunked (4 KiB chunks)
  /close-mid-body             promises Content-Length 1000, sends 10 bytes, closes
  /cut-chunked/N              N bytes chunked, then closes without the last chunk
  /reset-mid-body/N           N bytes delimited by the close (no length), then resets instead
  /reset                      resets the connection (RST) without answering
  /no-length[/N]              N (default 5000) bytes delimited by closing the connection
  /hop                        200 with hop-by-hop response headers (Connection: x-up-hop, ...)
  /close                      answers like /echo, then closes the connection (Connection: close)
  /trailers[/big|/length|/section/N|/fields/N]  the echo JSON chunked, then a trailer section
  /early[/N]                  answers before reading the request body: a chunked 200 head and
                              N (default 100) bytes of pattern(N) at once, then, once the whole
                              body is in, a chunk "body_len=L\n" and the last chunk; closes
  /slow-read/N/MS             reads the request body N bytes at a time, MS ms apart (a vendor
                              that takes a large upload slowly but steadily), then answers like /echo
  /stop-read/N                reads N bytes of the request body (beyond any that came with the
                              head), then stops reading (a vendor that no longer takes the upload)
With Upstream(rcvbuf=B) the listening socket's SO_RCVBUF is B (accepted connections inherit it), so
that what a slow reader has not read backs up to the sender rather than into large kernel buffers.

In-process use (tests):  u = Upstream(tls=(crt, key)).start(); u.port; u.requests; u.stop()
As a script:  python3 tests/integration/upstream.py --port N [--tls CERT KEY] [--log FILE]
              [--control-port N]
Standard library only. Not hardened: loopback test traffic only.
"""

import argparse
import itertools
import json
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time

MAX_HEAD = 1 << 20


def pattern(n):
    """The deterministic body that /bytes/N, /chunked/N and /no-length/N send."""
    unit = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
    return (unit * (n // len(unit) + 1))[:n]


class _Closed(Exception):
    pass


class _Reader:
    """Buffered reads from a (possibly TLS) socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.pace = None       # (bytes, seconds): read at most that many bytes, then pause
        self.stop_after = None  # read this many bytes more, then never again (see _one)
        self.stop_check = None  # while stopped: returns True to give up (the server stops)

    def _fill(self):
        n = 65536
        if self.stop_after is not None:
            if self.stop_after <= 0:
                end = time.monotonic() + 20  # the unread bytes hide a close: give up later
                while time.monotonic() < end and not (self.stop_check and self.stop_check()):
                    time.sleep(0.1)
                raise _Closed()
            n = min(n, self.stop_after)
        if self.pace:
            n = min(n, self.pace[0])
            time.sleep(self.pace[1])
        data = self.sock.recv(n)
        if not data:
            raise _Closed()
        if self.stop_after is not None:
            self.stop_after -= len(data)
        self.buf += data

    def until(self, delim, limit):
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                out = bytes(self.buf[: i + len(delim)])
                del self.buf[: i + len(delim)]
                return out
            if len(self.buf) > limit:
                raise ValueError("line or head too long")
            start = max(0, len(self.buf) - len(delim) + 1)
            self._fill()

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def _parse_head(head):
    text = head.decode("latin-1")
    lines = text.replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise ValueError("bad request line %r" % lines[0])
    method, target, version = parts
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        if ":" not in line:
            raise ValueError("bad header line %r" % line)
        name, value = line.split(":", 1)
        headers.append([name, value.strip(" \t")])
    return method, target, version, headers


def _get(headers, name):
    name = name.lower()
    vals = [v for n, v in headers if n.lower() == name]
    return ", ".join(vals) if vals else None


def _tokens(value):
    return [t.strip().lower() for t in (value or "").split(",") if t.strip()]


class Upstream:
    """A test upstream server. Thread-safe accessors: requests (a copy), count(), wait_for()."""

    def __init__(self, host="127.0.0.1", port=0, tls=None, log_path=None, alpn=("http/1.1",), tls_max=None,
                 rcvbuf=None):
        self.rcvbuf = rcvbuf
        self.host = host
        self.port = port
        self.tls = tls
        self.tls_max = tls_max  # e.g. ssl.TLSVersion.TLSv1_2
        self.log_path = log_path
        self.alpn = alpn
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._requests = []
        self.tls_errors = []  # handshake failures seen (e.g. the client rejected our certificate)
        self.connections = 0  # accepted TCP connections
        self._conn_ids = itertools.count(1)
        self._socks = set()
        self._stop = threading.Event()
        self._lsock = None
        self._thread = None
        self._ctx = None
        self.control_of = None  # when set, this server only answers /__log for that Upstream

    # -- lifecycle -----------------------------------------------------------------------
    def start(self):
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        s.bind((self.host, self.port))
        s.listen(512)
        self._lsock = s
        self.port = s.getsockname()[1]
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.tls[0], self.tls[1])
            if self.tls_max:
                ctx.maximum_version = self.tls_max
            if self.alpn:
                ctx.set_alpn_protocols(list(self.alpn))
            ctx.sni_callback = self._sni_cb
            self._ctx = ctx
        self._thread = threading.Thread(target=self._accept_loop, name="upstream-%d" % self.port,
                                        daemon=True)
        self._thread.start()
        return self

    def drop_connections(self):
        """Shut down both directions of every connection held now (a client pooling them then
        sees EOF); returns those sockets."""
        with self._lock:
            socks = list(self._socks)
        for c in socks:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return socks

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        for c in self.drop_connections():
            try:
                c.close()
            except OSError:
                pass
        if self._lsock:
            self._lsock.close()
            self._lsock = None

    # -- recorded requests ---------------------------------------------------------------
    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    def count(self):
        with self._lock:
            return len(self._requests)

    def clear(self):
        with self._lock:
            self._requests.clear()
            self.tls_errors.clear()

    def wait_for(self, n, timeout=5.0):
        """Wait until at least n requests were recorded; returns the list (maybe shorter)."""
        end = time.monotonic() + timeout
        with self._cond:
            while len(self._requests) < n:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self._requests)

    def last(self):
        with self._lock:
            return self._requests[-1] if self._requests else None

    # -- internals -----------------------------------------------------------------------
    @staticmethod
    def _sni_cb(sslsock, server_name, ctx):
        try:
            sslsock.bg_sni = server_name
        except AttributeError:
            pass
        return None

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([self._lsock], [], [], 0.1)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                c, addr = self._lsock.accept()
            except OSError:
                continue
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(c, addr), daemon=True).start()

    def _record(self, rec):
        line = None
        with self._cond:
            self._requests.append(rec)
            self._cond.notify_all()
            if self.log_path:
                line = json.dumps(rec)
        if line:
            with self._lock, open(self.log_path, "a") as f:
                f.write(line + "\n")

    def _serve(self, c, addr):
        conn_id = next(self._conn_ids)
        with self._lock:
            self._socks.add(c)
        sock = c
        info = {"tls": False, "sni": None, "tls_version": None, "alpn": None, "tls_resumed": False}
        try:
            c.settimeout(30)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ctx:
                try:
                    sock = self._ctx.wrap_socket(c, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    with self._lock:
                        self.tls_errors.append(str(e))
                    return
                with self._lock:
                    self._socks.add(sock)
                info = {"tls": True, "sni": getattr(sock, "bg_sni", None),
                        "tls_version": sock.version(), "alpn": sock.selected_alpn_protocol(),
                        "tls_resumed": sock.session_reused}
            rd = _Reader(sock)
            for seq in itertools.count(1):
                if not self._one(sock, rd, conn_id, seq, addr, info):
                    break
        except (_Closed, OSError, ValueError, ssl.SSLError):
            pass
        finally:
            with self._lock:
                self._socks.discard(c)
                self._socks.discard(sock)
            try:
                sock.close()
            except OSError:
                pass

    def _one(self, sock, rd, conn_id, seq, addr, info):
        """Serve one request; returns whether the connection stays open."""
        head = rd.until(b"\r\n\r\n", MAX_HEAD)
        method, target, version, headers = _parse_head(head)
        te = _tokens(_get(headers, "transfer-encoding"))
        cl = _get(headers, "content-length")
        expect = (_get(headers, "expect") or "").lower() == "100-continue"
        chunked = bool(te) and te[-1] == "chunked"
        if expect and (chunked or (cl and int(cl) > 0)):
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        path = target
        if "://" in path:
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        path = path.split("?", 1)[0]
        early = self.control_of is None and path.split("/")[1:2] == ["early"]
        if early:
            # /early/N: the answer starts before the request body is read; it ends below.
            n = path.split("/")[2] if len(path.split("/")) > 2 else ""
            n = int(n) if n.isdigit() else 100
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                         b"Connection: close\r\n\r\n"
                         + (b"%x\r\n%s\r\n" % (n, pattern(n)) if n else b""))
        trailers = []
        name = path.split("/")[1:2] if self.control_of is None else []
        args = path.split("/")[2:4]
        if name == ["slow-read"]:  # /slow-read/N/MS: N bytes every MS ms
            rd.pace = (int(args[0]) if args and args[0].isdigit() else 4096,
                       int(args[1]) / 1000.0 if len(args) > 1 and args[1].isdigit() else 0.01)
        elif name == ["stop-read"]:  # /stop-read/N: N bytes of the body (beyond what came with the head)
            rd.stop_after = int(args[0]) if args and args[0].isdigit() else 0
            rd.stop_check = self._stop.is_set
        if chunked:
            body = b""
            while True:
                line = rd.until(b"\r\n", 4096)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:
                        t = rd.until(b"\r\n", 65536)
                        if t == b"\r\n":
                            break
                        trailers.append(t.decode("latin-1").strip())
                    break
                body += rd.exactly(size)
                rd.exactly(2)
        elif cl is not None:
            body = rd.exactly(int(cl.split(",")[0].strip()))
        else:
            body = b""
        rd.pace = None
        conn_tokens = _tokens(_get(headers, "connection"))
        if version == "HTTP/1.1":
            keep = "close" not in conn_tokens
        else:
            keep = "keep-alive" in conn_tokens
        rec = {
            "conn": conn_id, "seq": seq, "peer": "%s:%d" % (addr[0], addr[1]),
            "tls": info["tls"], "sni": info["sni"], "tls_version": info["tls_version"],
            "alpn": info["alpn"], "tls_resumed": info["tls_resumed"], "method": method, "target": target, "version": version,
            "headers": headers, "body": body.decode("latin-1"), "body_len": len(body),
            "chunked": chunked, "trailers": trailers, "time": time.time(),
        }
        if self.control_of is not None:
            return self._control(sock, method, path, keep)
        self._record(rec)
        if early:
            # The rest of the answer once the whole request body is in: its length, then the end.
            tail = b"body_len=%d\n" % len(body)
            sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))
            return False
        return self._respond(sock, method, path, rec, keep)

    def _send(self, sock, status, headers, body, keep, head_only=False, reason=None):
        lines = ["HTTP/1.1 %d %s" % (status, reason or _REASONS.get(status, "Status"))]
        lines += ["%s: %s" % (n, v) for n, v in headers]
        if not keep:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not head_only:
            data += body
        sock.sendall(data)
        return keep

    def _respond(self, sock, method, path, rec, keep):
        head = method == "HEAD"
        parts = path.strip("/").split("/")
        name = parts[0]
        arg = parts[1] if len(parts) > 1 else ""
        if name == "status" and arg.isdigit():
            st = int(arg)
            body = b"" if (st < 200 or st in (204, 304)) else ("status %d\n" % st).encode()
            hdrs = [("Content-Type", "text/plain")]
            if st >= 200 and st not in (204, 304):
                hdrs.append(("Content-Length", str(len(body))))
            return self._send(sock, st, hdrs, body, keep, head)
        if name == "close":
            return self._echo(sock, rec, False, head)
        if name == "delay" and arg.isdigit():
            time.sleep(int(arg) / 1000.0)
            return self._echo(sock, rec, keep, head)
        if name == "bytes" and arg.isdigit():
            body = pattern(int(arg))
            return self._send(sock, 200, [("Content-Type", "application/octet-stream"),
                                          ("Content-Length", str(len(body)))], body, keep, head)
        if name == "chunked" and arg.isdigit():
            n = int(arg)
            sock.sendall(("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          "Transfer-Encoding: chunked\r\n%s\r\n"
                          % ("" if keep else "Connection: close\r\n")).encode())
            if not head:
                data = pattern(n)
                for i in range(0, n, 4096):
                    piece = data[i:i + 4096]
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sock.sendall(b"0\r\n\r\n")
            return keep
        if name == "trailers":
            # The echo JSON, chunked, then a trailer section: fields a client may get, and fields
            # not allowed in trailers (the gateway must drop those). /trailers/big adds a 6,000-byte
            # field; /trailers/section/N pads the section with one X-Big field to N bytes of field
            # lines ("Name: value\r\n"), /trailers/fields/N adds "X-Ti: tttttttt" fields to make N
            # in all; /trailers/length declares Content-Length instead (no trailers possible).
            body = json.dumps(rec).encode()
            if arg == "length":
                return self._send(sock, 200, [("Content-Type", "application/json"),
                                              ("Content-Length", str(len(body)))], body, keep, head)
            sock.sendall(("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          "Transfer-Encoding: chunked\r\nTrailer: Grpc-Status, Grpc-Message\r\n%s\r\n"
                          % ("" if keep else "Connection: close\r\n")).encode())
            if head:
                return keep
            half = len(body) // 2
            sock.sendall(b"%x\r\n%s\r\n%x\r\n%s\r\n" % (half, body[:half], len(body) - half, body[half:]))
            tr = ["Grpc-Status: 0", "Grpc-Message: all good", "X-Checksum: abc123",
                  "Content-Length: 5", "Transfer-Encoding: gzip", "Host: evil.example",
                  "Set-Cookie: s=1", "Authorization: Bearer x", "Cache-Control: no-cache",
                  "Content-Type: text/evil", "Connection: close", "TE: trailers"]
            if arg == "big":
                tr.append("X-Big: " + "b" * 6000)
            size = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0
            if arg == "section":
                base = sum(len(t) + 2 for t in tr) + len("X-Big: \r\n")
                tr.append("X-Big: " + "b" * max(0, size - base))
            elif arg == "fields":
                tr += ["X-T%d: %s" % (i, "t" * 8) for i in range(max(0, size - len(tr)))]
            sock.sendall(("0\r\n" + "".join(t + "\r\n" for t in tr) + "\r\n").encode())
            return keep
        if name == "drip" and arg.isdigit():
            # N chunks of 10 bytes, 300 ms apart: a slow answer that is never silent for long.
            sock.sendall(("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n%s\r\n"
                          % ("" if keep else "Connection: close\r\n")).encode())
            if not head:
                for i in range(int(arg)):
                    time.sleep(0.3)
                    sock.sendall(b"a\r\n%s\r\n" % pattern(10))
                sock.sendall(b"0\r\n\r\n")
            return keep
        if name == "close-mid-body":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n"
                         + pattern(10))
            time.sleep(0.05)
            return False
        if name == "cut-chunked":
            # N bytes chunked, then the connection closes without the last chunk.
            n = int(arg) if arg.isdigit() else 5000
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
            if not head:
                sock.sendall(b"%x\r\n%s\r\n" % (n, pattern(n)) if n else b"")
            time.sleep(0.05)
            return False
        if name == "reset-mid-body":
            # N bytes of a close-delimited body, then a reset (not a close): the body is cut.
            n = int(arg) if arg.isdigit() else 5000
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
                         + (b"" if head else pattern(n)))
            time.sleep(0.05)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if name == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if name == "no-length":
            n = int(arg) if arg.isdigit() else 5000
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
                         + (b"" if head else pattern(n)))
            return False
        if name == "hop":
            body = b"hop\n"
            return self._send(sock, 200, [("Connection", "X-Up-Hop"), ("X-Up-Hop", "1"),
                                          ("Keep-Alive", "timeout=5"), ("X-Up-End", "1"),
                                          ("Content-Length", str(len(body)))], body, keep, head)
        return self._echo(sock, rec, keep, head)

    def _echo(self, sock, rec, keep, head):
        body = json.dumps(rec).encode()
        return self._send(sock, 200, [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))], body, keep, head)

    def _control(self, sock, method, path, keep):
        target = self.control_of
        if path == "/__log" and method == "GET":
            body = json.dumps(target.requests).encode()
            return self._send(sock, 200, [("Content-Type", "application/json"),
                                          ("Content-Length", str(len(body)))], body, keep)
        if path == "/__log" and method == "DELETE":
            target.clear()
            return self._send(sock, 204, [], b"", keep)
        return self._send(sock, 404, [("Content-Length", "0")], b"", keep)


_REASONS = {100: "Continue", 200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently",
            302: "Found", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized",
            403: "Forbidden", 404: "Not Found", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


def main(argv=None):
    ap = argparse.ArgumentParser(description="bordergate test upstream (HTTP/1.1)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--log", metavar="FILE", help="append each request as a JSON line")
    ap.add_argument("--control-port", type=int, help="serve GET/DELETE /__log on this port")
    a = ap.parse_args(argv)
    up = Upstream(a.host, a.port, tls=a.tls, log_path=a.log).start()
    servers = [up]
    if a.control_port:
        ctl = Upstream(a.host, a.control_port)
        ctl.control_of = up
        servers.append(ctl.start())
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print("upstream listening on %s:%d%s" % (a.host, up.port, " (tls)" if a.tls else ""), flush=True)
    while not done.wait(0.1):
        pass
    for s in servers:
        s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
