"""h2wire.py -- raw HTTP/2 frames and HPACK for the integration tests that speak HTTP/2 byte by
byte (test_h2.py, test_h2_chaos.py, test_vendor_chaos.py): frame(), literal header fields (RFC 7541 6.2.2 and 6.2.1),
a request header block, an HPACK decoder (static and dynamic tables with eviction, table
size updates, Huffman) that keeps one connection's decoding state, and H2Conn, a raw h2c client
that reads frames on demand. Not a test file: no tests are registered here. Python standard
library only."""

import socket
import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def hpack_int(v, prefix, first=0):
    """An HPACK integer (RFC 7541 5.1) with `prefix` bits, `first` holding the bits above them."""
    mask = (1 << prefix) - 1
    if v < mask:
        return bytes([first | v])
    out = bytearray([first | mask])
    v -= mask
    while v >= 128:
        out.append((v & 0x7f) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def hpack_str(s):
    """A string literal, not Huffman coded."""
    if isinstance(s, str):
        s = s.encode("latin-1")
    return hpack_int(len(s), 7) + s


def hpack_literal(name, value, index=False):
    """A literal header field with a new name: without indexing (RFC 7541 6.2.2) or, with
    index=True, with incremental indexing (6.2.1; the peer's decoder adds it to its table)."""
    return (b"\x40" if index else b"\x00") + hpack_str(name) + hpack_str(value)


def hpack_encode(fields):
    """A header block of literal fields without indexing, new names, no Huffman (RFC 7541 6.2.2)."""
    return b"".join(hpack_literal(n, v) for n, v in fields)


def hpack_request(method, authority, path, extra=()):
    block = hpack_literal(":method", method) + hpack_literal(":scheme", "http") + \
        hpack_literal(":path", path) + hpack_literal(":authority", authority)
    for n, v in extra:
        block += hpack_literal(n, v)
    return block


def hpack_decode(block):
    """Decode one block with a fresh table."""
    return Hpack().decode(block)


class Hpack:
    STATIC = [None, (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
              (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
              (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"),
              (":status", "404"), (":status", "500")] + [(n, "") for n in (
                  "accept-charset accept-encoding accept-language accept-ranges accept "
                  "access-control-allow-origin age allow authorization cache-control "
                  "content-disposition content-encoding content-language content-length "
                  "content-location content-range content-type cookie date etag expect expires "
                  "from host if-match if-modified-since if-none-match if-range "
                  "if-unmodified-since last-modified link location max-forwards "
                  "proxy-authenticate proxy-authorization range referer refresh retry-after "
                  "server set-cookie strict-transport-security transfer-encoding user-agent vary "
                  "via www-authenticate").split()]

    def __init__(self, max_size=4096):
        self.dyn = []        # newest first
        self.size = 0        # RFC 7541 4.1: name + value + 32 per entry
        self.max_size = max_size

    def _int(self, b, i, prefix):
        mask = (1 << prefix) - 1
        v = b[i] & mask
        i += 1
        if v < mask:
            return v, i
        m = 0
        while True:
            v += (b[i] & 0x7f) << m
            m += 7
            i += 1
            if not b[i - 1] & 0x80:
                return v, i

    def _str(self, b, i):
        huff = b[i] & 0x80
        n, i = self._int(b, i, 7)
        if i + n > len(b):
            raise ValueError("hpack string beyond the block")
        s = bytes(b[i:i + n])
        return (_huffman_decode(s) if huff else s).decode("latin-1"), i + n

    def _get(self, idx):
        if idx == 0:
            raise ValueError("hpack index 0")
        if idx < len(self.STATIC):
            return self.STATIC[idx]
        if idx - len(self.STATIC) >= len(self.dyn):
            raise ValueError("hpack index %d beyond the dynamic table (%d entries)" % (idx, len(self.dyn)))
        return self.dyn[idx - len(self.STATIC)]

    def _evict(self):
        while self.size > self.max_size and self.dyn:
            n, v = self.dyn.pop()
            self.size -= len(n.encode("latin-1")) + len(v.encode("latin-1")) + 32

    def _add(self, name, value):
        self.dyn.insert(0, (name, value))
        self.size += len(name.encode("latin-1")) + len(value.encode("latin-1")) + 32
        self._evict()

    def decode(self, b):
        out = []
        i = 0
        while i < len(b):
            c = b[i]
            if c & 0x80:
                idx, i = self._int(b, i, 7)
                out.append(self._get(idx))
            elif c & 0x40 or (c & 0xf0) in (0x00, 0x10):
                incr = bool(c & 0x40)
                idx, i = self._int(b, i, 6 if incr else 4)
                name = self._get(idx)[0] if idx else None
                if name is None:
                    name, i = self._str(b, i)
                value, i = self._str(b, i)
                out.append((name, value))
                if incr:
                    self._add(name, value)
            elif c & 0x20:
                self.max_size, i = self._int(b, i, 5)  # dynamic table size update
                self._evict()
            else:
                raise ValueError("bad hpack byte %x" % c)
        return out


def _build_huffman():
    # RFC 7541 Appendix B, as (code, bits) per symbol 0..256.
    codes = """1ff8 13,7fffd8 23,fffffe2 28,fffffe3 28,fffffe4 28,fffffe5 28,fffffe6 28,fffffe7 28,
fffffe8 28,ffffea 24,3ffffffc 30,fffffe9 28,fffffea 28,3ffffffd 30,fffffeb 28,fffffec 28,
fffffed 28,fffffee 28,fffffef 28,ffffff0 28,ffffff1 28,ffffff2 28,3ffffffe 30,ffffff3 28,
ffffff4 28,ffffff5 28,ffffff6 28,ffffff7 28,ffffff8 28,ffffff9 28,ffffffa 28,ffffffb 28,
14 6,3f8 10,3f9 10,ffa 12,1ff9 13,15 6,f8 8,7fa 11,3fa 10,3fb 10,f9 8,7fb 11,fa 8,16 6,17 6,18 6,
0 5,1 5,2 5,19 6,1a 6,1b 6,1c 6,1d 6,1e 6,1f 6,5c 7,fb 8,7ffc 15,20 6,ffb 12,3fc 10,1ffa 13,
21 6,5d 7,5e 7,5f 7,60 7,61 7,62 7,63 7,64 7,65 7,66 7,67 7,68 7,69 7,6a 7,6b 7,6c 7,6d 7,6e 7,
6f 7,70 7,71 7,72 7,fc 8,73 7,fd 8,1ffb 13,7fff0 19,1ffc 13,3ffc 14,22 6,7ffd 15,3 5,23 6,4 5,
24 6,5 5,25 6,26 6,27 6,6 5,74 7,75 7,28 6,29 6,2a 6,7 5,2b 6,76 7,2c 6,8 5,9 5,2d 6,77 7,78 7,
79 7,7a 7,7b 7,7ffe 15,7fc 11,3ffd 14,1ffd 13,ffffffc 28,fffe6 20,3fffd2 22,fffe7 20,fffe8 20,
3fffd3 22,3fffd4 22,3fffd5 22,7fffd9 23,3fffd6 22,7fffda 23,7fffdb 23,7fffdc 23,7fffdd 23,
7fffde 23,ffffeb 24,7fffdf 23,ffffec 24,ffffed 24,3fffd7 22,7fffe0 23,ffffee 24,7fffe1 23,
7fffe2 23,7fffe3 23,7fffe4 23,1fffdc 21,3fffd8 22,7fffe5 23,3fffd9 22,7fffe6 23,7fffe7 23,
ffffef 24,3fffda 22,1fffdd 21,fffe9 20,3fffdb 22,3fffdc 22,7fffe8 23,7fffe9 23,1fffde 21,
7fffea 23,3fffdd 22,3fffde 22,fffff0 24,1fffdf 21,3fffdf 22,7fffeb 23,7fffec 23,1fffe0 21,
1fffe1 21,3fffe0 22,1fffe2 21,7fffed 23,3fffe1 22,7fffee 23,7fffef 23,fffea 20,3fffe2 22,
3fffe3 22,3fffe4 22,7ffff0 23,3fffe5 22,3fffe6 22,7ffff1 23,3ffffe0 26,3ffffe1 26,fffeb 20,
7fff1 19,3fffe7 22,7ffff2 23,3fffe8 22,1ffffec 25,3ffffe2 26,3ffffe3 26,3ffffe4 26,7ffffde 27,
7ffffdf 27,3ffffe5 26,fffff1 24,1ffffed 25,7fff2 19,1fffe3 21,3ffffe6 26,7ffffe0 27,7ffffe1 27,
3ffffe7 26,7ffffe2 27,fffff2 24,1fffe4 21,1fffe5 21,3ffffe8 26,3ffffe9 26,ffffffd 28,
7ffffe3 27,7ffffe4 27,7ffffe5 27,fffec 20,fffff3 24,fffed 20,1fffe6 21,3fffe9 22,1fffe7 21,
1fffe8 21,7ffff3 23,3fffea 22,3fffeb 22,1ffffee 25,1ffffef 25,fffff4 24,fffff5 24,3ffffea 26,
7ffff4 23,3ffffeb 26,7ffffe6 27,3ffffec 26,3ffffed 26,7ffffe7 27,7ffffe8 27,7ffffe9 27,
7ffffea 27,7ffffeb 27,ffffffe 28,7ffffec 27,7ffffed 27,7ffffee 27,7ffffef 27,7fffff0 27,
3ffffee 26,3fffffff 30"""
    table = {}
    for sym, item in enumerate(x.strip() for x in codes.replace("\n", "").split(",")):
        code, bits = item.split()
        table[(int(bits), int(code, 16))] = sym
    return table


_HUFF = _build_huffman()


def _huffman_decode(data):
    out = bytearray()
    code = bits = 0
    for byte in data:
        for k in range(7, -1, -1):
            code = (code << 1) | ((byte >> k) & 1)
            bits += 1
            sym = _HUFF.get((bits, code))
            if sym is not None:
                if sym == 256:
                    return bytes(out)
                out.append(sym)
                code = bits = 0
    return bytes(out)


class H2Conn:
    """A raw h2c client (prior knowledge) that reads frames on demand. It opens with a 1 GiB stream
    and connection window, so the gateway's answers are never held by it; it acknowledges the
    gateway's SETTINGS as they come. The caller closes sock (tests: h.defer(c.sock.close))."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), 5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.hpack = Hpack()
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 1 << 30)) +
                          frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30)))

    def read(self, timeout=5.0):
        """The next frame (type, flags, stream, payload; HEADERS decoded into a list of fields), or
        None at EOF or timeout."""
        self.sock.settimeout(timeout)
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            try:
                d = self.sock.recv(65536)
            except (ConnectionResetError, socket.timeout, TimeoutError):
                d = b""
            if not d:
                return None
            self.buf += d
        n = int.from_bytes(self.buf[:3], "big")
        ftype, flags, sid = self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7fffffff
        payload = bytes(self.buf[9:9 + n])
        del self.buf[:9 + n]
        if ftype == SETTINGS and not flags & ACK:
            self.sock.sendall(frame(SETTINGS, ACK, 0))
        if ftype == HEADERS:  # the gateway sends no padding, priority or CONTINUATION
            payload = self.hpack.decode(payload)
        return ftype, flags, sid, payload
