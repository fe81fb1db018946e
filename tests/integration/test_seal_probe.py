#!/usr/bin/env python3
"""test_seal_probe.py -- a leak probe of the encrypt action: after `encrypt`, can any value the
classifier found reach the vendor in clear, or is the vendor's request malformed by the rewrite?

The real gateway, real clients (raw HTTP/1.1 sockets, raw HTTP/2 frames from h2wire.py), and a
recording vendor (upstream.py) in the US behind vendors with no transfer basis (or an SCC that
does not cover every category) and `on_violation: encrypt`. For every detector that can fire and
every place a value travels (path segment, query -- plain, percent-encoded, `+` --, header,
Cookie pair, X-Forwarded-For, JSON -- escaped, nested, numbers --, form, multipart, text, gzip,
octet-stream, chunked, HTTP/2 DATA frames, trailers) each check asks of what the vendor received:
no value in clear in any encoding the gateway could produce (raw, percent-encoded, `+`,
JSON-escaped); every token opens (a second implementation: python `cryptography`) to a value
sent; the same value gives the same token everywhere; the framing is the rewritten body's;
JSON stays JSON; a body that cannot be rewritten field by field is JWE that opens to the body
sent; the record is `encrypt`, counts the detectors and holds no value. Also: approved categories
stay clear, unscannable bodies and requests sealing cannot cover fail closed or go sealed whole,
and `reveal_responses` opens tokens in the response body (only there). Ends "N passed, N failed".
"""

import base64
import gzip
import json
import os
import re
import socket
import struct
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402
from h2wire import ACK, DATA, END_HEADERS, END_STREAM, HEADERS, PREFACE, SETTINGS, WINDOW_UPDATE, Hpack, frame, \
    hpack_literal  # noqa: E402
from upstream import Upstream  # noqa: E402

# One value per detector, shaped so that the classifier finds it where it is placed below.
V = {
    "email": "ann.probe@example.com",
    "email2": "bob.second@example.org",
    "phone": "+4915112345678",
    "card": "4111 1111 1111 1111",
    "iban": "DE89370400440532013000",
    "ssn": "536-22-8146",
    "nino": "AB123456C",
    "ip": "203.0.113.77",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "api_key": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "lat": "52.52001",
    "lng": "13.40495",
    "device_id": "6f1c2b3a-8d4e-4f5a-9b6c-7d8e9f0a1b2c",
    "first_name": "Annegret",
    "last_name": "Probewitz",
    "dob": "1984-02-29",
    "member": "M-123456",
    "mac": "00:1A:2B:3C:4D:5E",
    "imei": "490154203237518",
}
TOKEN = re.compile(r"bgtok:v1:([A-Za-z0-9_-]+):([A-Za-z0-9_-]+)")


class Env:
    pass


class EchoHeaders(Upstream):
    """The vendor also answers /hdr-echo: the request's X-Echo header back as a response header,
    and as text/plain body (a vendor echoing a token where the README does not promise to open)."""

    def _respond(self, sock, method, path, rec, keep):
        if path.startswith("/hdr-echo"):
            val = next((v for n, v in rec["headers"] if n.lower() == "x-echo"), "")
            body = ("echo %s\n" % val).encode("latin-1")
            return self._send(sock, 200, [("X-Echo", val), ("Content-Type", "text/plain"),
                                          ("Content-Length", str(len(body)))], body, keep)
        return super()._respond(sock, method, path, rec, keep)


@h.once
def env():
    e = Env()
    e.up = EchoHeaders(host="127.0.0.3").start()
    h.defer  # noqa: B018 (the harness stops processes; the upstream thread dies with us)
    scc = {"module": 2, "reference": "DPA-PROBE", "signed": "2025-01-01", "expires": "2030-01-01"}

    def us(name, **kw):
        return h.us_vendor(h.vendor(name, [name + ".example"], e.up.port, addresses=["127.0.0.3"], **kw))

    vendors = [
        us("seal", basis="none", on_violation="encrypt", categories=[]),
        us("reveal", basis="none", on_violation="encrypt", categories=[], reveal_responses=True),
        # approved for device and location under an SCC: identifiers sealed, the rest clear
        us("narrow", scc=scc, categories=["device", "location"], on_violation="encrypt"),
        # an AI vendor approved for prompts, not for what is in them
        us("aiscc", scc=scc, categories=["ai_interaction"], on_violation="encrypt", ai=True),
    ]
    # the same over HTTP/2 to the vendor (h2echo: answers with what it saw, the body as length and hash)
    e.echo = h.h2echo("127.0.0.3")
    vendors.append(h.us_vendor(h.vendor("sealh2", ["sealh2.vendor.test"], e.echo, addresses=["127.0.0.3"],
                                        tls=True, ca=h.cert("ca.crt"), protocol="http2", basis="none",
                                        on_violation="encrypt", categories=[])))
    cfg = h.gateway_config(vendors, limits={"oversize_body": "personal", "max_body_scan": "64KiB"},
                           classification={"detectors": "all",
                                           "custom": [{"name": "member_id", "category": "identifier",
                                                       "keys": ["member"], "prefix": "M-", "digits": 6}]})
    e.gw = h.Gateway(cfg, name="sealprobe").start()
    with open(os.path.join(h.key_dir(), "k1.key")) as f:
        e.key = base64.b64decode(f.read().strip())
    return e


# ---- helpers -------------------------------------------------------------------------------

def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def open_token(e, tok):
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV
    m = TOKEN.fullmatch(tok)
    check(m, "not a token: %r" % tok)
    return AESSIV(e.key).decrypt(b64url(m.group(2)), [m.group(1).encode()]).decode("utf-8")


def open_jwe(e, jwe):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    parts = jwe.split(".")
    eq(len(parts), 5, "JWE compact parts")
    hdr = json.loads(b64url(parts[0]))
    eq((hdr["alg"], hdr["enc"], hdr["kid"], parts[1]), ("dir", "A256GCM", "k1", ""), "JWE header")
    cek = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"bordergate jwe A256GCM v1").derive(e.key)
    return AESGCM(cek).decrypt(b64url(parts[2]), b64url(parts[3]) + b64url(parts[4]), parts[0].encode("ascii"))


def seal_token(e, v):
    """The token the gateway must make for v: AES-SIV is deterministic."""
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV
    ct = AESSIV(e.key).encrypt(v.encode(), [b"k1"])
    return "bgtok:v1:k1:" + base64.urlsafe_b64encode(ct).decode().rstrip("=")


def forms(v):
    """Every encoding of v the gateway could have put on the wire in clear."""
    out = {v, urllib.parse.quote(v, safe=""), urllib.parse.quote(v), urllib.parse.quote_plus(v),
           json.dumps(v)[1:-1], v.replace("@", "\\u0040"), v.replace("@", "%40")}
    if " " in v:
        out.add(v.replace(" ", ""))
    return {f for f in out if f}


def header(rec, name):
    return [v for n, v in rec["headers"] if n.lower() == name.lower()]


def wire(rec):
    """What the vendor received, as one text: target, header fields, body, trailer fields."""
    return "\n".join([rec["target"]] + ["%s: %s" % tuple(hv) for hv in rec["headers"]] + [rec["body"]] +
                     rec["trailers"])


def send(e, host, target, headers=(), body=b"", method=None):
    method = method or ("POST" if body else "GET")
    (resp,), c = h.raw(e.gw.port(), h.request(method, target, host, headers, body), timeout=10)
    c.close()
    return resp


def last_for(e, host, before):
    e.up.wait_for(before + 1, timeout=5)
    got = [r for r in e.up.requests[before:] if header(r, "host") == [host]]
    check(got, "the vendor received nothing for %s" % host)
    return got[-1]


def check_framing(rec):
    """Content-Length (or chunked) at the vendor matches the body it got, and only one framing."""
    cl = header(rec, "content-length")
    te = header(rec, "transfer-encoding")
    check(not (cl and te), "both Content-Length and Transfer-Encoding: %r" % rec["headers"])
    check(len(cl) <= 1, "Content-Length repeated: %r" % cl)
    if cl:
        eq(int(cl[0]), rec["body_len"], "Content-Length vs the body the vendor read")
    elif rec["body_len"]:
        check(rec["chunked"], "a body with neither length nor chunked framing")


def check_sealed(e, rec, values, detectors=(), jwe=None):
    """No value in clear at the vendor; every token opens to one of the values sent (all of
    `values` among them, unless in a JWE body); returns {value: token}. jwe: the body is JWE
    that must open to these bytes."""
    text = wire(rec)
    for v in values:
        for f in forms(v):
            check(f not in text, "value %r in clear at the vendor (as %r):\n%s" % (v, f, text[:3000]))
    tokens = {}
    for m in TOKEN.finditer(text):
        tokens.setdefault(open_token(e, m.group(0)), set()).add(m.group(0))
    for pt, toks in tokens.items():
        eq(len(toks), 1, "value %r sealed to more than one token" % pt)
    if jwe is not None:
        eq(header(rec, "content-type"), ["application/jose"], "JWE Content-Type")
        eq(header(rec, "content-encoding"), [], "Content-Encoding of a JWE body")
        eq(open_jwe(e, rec["body"]), jwe, "JWE opens to the body sent")
    else:
        for v in values:
            check(v in tokens or v.replace(" ", "") in tokens,
                  "no token opens to %r; tokens open to %r" % (v, sorted(tokens)))
    check_framing(rec)
    ctype = ",".join(header(rec, "content-type"))
    if "json" in ctype and rec["body"]:
        try:
            json.loads(rec["body"])
        except ValueError as x:
            raise h.Failure("the vendor's JSON is not JSON (%s): %r" % (x, rec["body"][:500]))
    return {pt: next(iter(t)) for pt, t in tokens.items()}


def check_record(e, resp, values, detectors, decision="encrypt"):
    rid = resp.headers.get("x-transfer-id")
    check(rid, "no X-Transfer-Id")
    rec = h.wait_record(e.gw.cfg["records"]["path"], rid)
    eq(rec["decision"], decision, "record decision")
    for d in detectors:
        check(rec["detections"].get(d, 0) >= 1, "record detections lack %s: %r" % (d, rec["detections"]))
    text = json.dumps(rec)
    for v in values:
        for f in forms(v):
            check(f not in text, "record holds %r: %s" % (f, text))
    return rec


def probe(e, host, target, headers, body, values, detectors, jwe=None, method=None):
    before = e.up.count()
    resp = send(e, host, target, headers, body, method)
    eq(resp.status, 200, "status (%s)" % resp.body[:300])
    rec = last_for(e, host, before)
    toks = check_sealed(e, rec, values, detectors, jwe)
    check_record(e, resp, values, detectors)
    return rec, toks, resp


q = urllib.parse.quote


# ---- places --------------------------------------------------------------------------------

@test
def query_and_path_every_encoding():
    e = env()
    target = ("/v1/users/%s/x?email=%s&phone=%s&card=%s&iban=%s&ssn=%s&nino=%s&ip=%s&lat=%s&lng=%s"
              "&device_id=%s&first_name=%s&dob=%s&member=%s&mac=%s&imei=%s" % (
                  q(V["email2"], safe=""), q(V["email"], safe=""), q(V["phone"], safe=""),
                  V["card"].replace(" ", "+"), V["iban"], V["ssn"], V["nino"], V["ip"], V["lat"], V["lng"],
                  V["device_id"], V["first_name"], V["dob"], V["member"], q(V["mac"], safe=""), V["imei"]))
    vals = [V[k] for k in ("email2", "email", "phone", "card", "iban", "ssn", "nino", "ip", "device_id",
                           "dob", "member", "mac", "imei")]
    rec, toks, _ = probe(e, "seal.example", target, [], b"", vals,
                         ["email", "phone", "card_number", "iban", "us_ssn", "uk_nino", "ip_address",
                          "device_id", "member_id", "mac_address", "imei"])
    check(rec["target"].startswith("/v1/users/bgtok:v1:k1:"), "path segment sealed: %s" % rec["target"])
    # a `+` for a space and a percent-encoded value give the token of the decoded value
    eq(toks[V["card"]], open_token(e, toks[V["card"]]) and toks[V["card"]], "card token")


@test
def base64_json_in_a_query_value_is_sealed_whole():
    # analytics APIs send events as base64 JSON (`/track?data=…`): the personal data inside is found
    # and the value goes to the vendor as one token
    e = env()
    data = base64.b64encode(json.dumps({"event": "signup", "properties": {"$email": V["email"],
                                                                         "plan": "pro"}}).encode()).decode()
    rec, toks, _ = probe(e, "seal.example", "/track?data=%s&v=2" % q(data, safe=""), [], b"", [data], ["email"])
    check(rec["target"].startswith("/track?data=bgtok:v1:k1:") and rec["target"].endswith("&v=2"),
          "data sealed: %s" % rec["target"])


@test
def base64_json_in_json_values_and_headers_is_sealed_whole():
    # stream and queue APIs carry records as base64 JSON inside JSON (Kinesis "Data", Pub/Sub
    # "data"), some encoders escaping '/' as "\/"; services pass context so in headers too
    e = env()
    inner = {"email": V["email"], "q": "???>"}  # its base64 has a '/'
    data = base64.b64encode(json.dumps(inner, separators=(",", ":")).encode()).decode()
    check("/" in data, "the test value needs a '/': %s" % data)
    body = json.dumps({"Records": [{"Data": data, "PartitionKey": "k1"}]}).replace("/", "\\/").encode()
    ctx = base64.urlsafe_b64encode(json.dumps({"user": {"phone": V["phone"]}}).encode()).decode().rstrip("=")
    rec, toks, _ = probe(e, "seal.example", "/v1/put", [("Content-Type", "application/json"), ("X-Context", ctx)],
                         body, [data, ctx], ["email", "phone"])
    doc = json.loads(rec["body"])
    check(doc["Records"][0]["Data"].startswith("bgtok:v1:k1:"), "Data sealed: %r" % doc)
    eq(doc["Records"][0]["PartitionKey"], "k1", "the partition key stays")
    eq(header(rec, "x-context"), [toks[ctx]], "X-Context sealed whole")


@test
def plus_in_a_path_segment_is_a_plus():
    """'+' means a space in a query or form, not in a path. Before the fix a path segment with a
    %-escape was sealed with '+' decoded as a space: the token opened to another value (what
    reveal_responses gave back) and did not join with the same value's token in the query."""
    e = env()
    v = "ann+lee@example.com"
    rec, toks, _ = probe(e, "seal.example", "/v1/u/ann+lee%40example.com/x?e=ann%2Blee%40example.com", [], b"",
                         [v], ["email"])
    eq(sorted(toks), [v], "every token opens to the value sent")
    eq(rec["target"].count(toks[v]), 2, "one token in path and query: %s" % rec["target"])


@test
def headers_cookie_xff_authorization_repeated():
    e = env()
    hdrs = [("X-User-Email", V["email"]), ("X-User-Email", V["email"]),
            ("Authorization", "Bearer " + V["jwt"]), ("X-Api-Key", V["api_key"]),
            ("Cookie", "theme=dark; sessionid=Zk3x9QpL2mWv8RtY6nBa4Hs1; em=" + V["email2"]),
            ("X-Forwarded-For", V["ip"]), ("X-Phone", V["phone"])]
    rec, toks, _ = probe(e, "seal.example", "/v1/h", hdrs, b"",
                         [V["email"], V["email2"], V["jwt"], V["api_key"], V["ip"], V["phone"],
                          "Zk3x9QpL2mWv8RtY6nBa4Hs1"],
                         ["email", "jwt", "api_key", "session_cookie", "client_ip"])
    emails = header(rec, "x-user-email")
    eq(len(emails), 2, "repeated header kept")
    eq(emails[0], emails[1], "the same value, the same token")
    check("theme=dark" in header(rec, "cookie")[0], "a Cookie pair without personal data stays")


JSON_DOC = {
    "user": {"email": V["email"], "phone": V["phone"], "first_name": V["first_name"],
             "last_name": V["last_name"], "dob": V["dob"], "ssn": V["ssn"], "nino": V["nino"],
             "member": V["member"]},
    "pay": {"card": 4111111111111111, "iban": V["iban"]},
    "geo": {"lat": float(V["lat"]), "lng": float(V["lng"])},
    "dev": {"device_id": V["device_id"], "ip": V["ip"], "mac": V["mac"], "imei": V["imei"]},
    "auth": {"token": V["jwt"], "api_key": V["api_key"]},
    "deep": [[[{"contact": [V["email2"], "x"]}]]],
    "note": "caf\u00e9 \"quoted\" \\ end",
}
JSON_VALUES = [V[k] for k in ("email", "phone", "first_name", "last_name", "dob", "ssn", "nino", "member",
                              "iban", "device_id", "ip", "mac", "imei", "jwt", "api_key", "email2",
                              "lat", "lng")] + ["4111111111111111"]
JSON_DETECTORS = ["email", "phone", "person_name", "date_of_birth", "us_ssn", "uk_nino", "member_id",
                  "card_number", "iban", "coordinates", "device_id", "ip_address", "mac_address", "imei",
                  "jwt", "api_key"]


@test
def json_body_every_detector_nested_escaped_numbers():
    e = env()
    body = json.dumps(JSON_DOC).replace("@", "\\u0040").encode()  # every @ escaped
    rec, toks, _ = probe(e, "seal.example", "/v1/j", [("Content-Type", "application/json")], body,
                         JSON_VALUES, JSON_DETECTORS)
    doc = json.loads(rec["body"])
    eq(doc["note"], JSON_DOC["note"], "a value without personal data survives the rewrite")
    check(isinstance(doc["pay"]["card"], str), "a JSON number is sealed into a string token")
    # escaped and plain give the same token
    rec2, toks2, _ = probe(e, "seal.example", "/v1/j", [("Content-Type", "application/json")],
                           json.dumps({"email": V["email"]}).encode(), [V["email"]], ["email"])
    eq(toks2[V["email"]], toks[V["email"]], "\\u0040-escaped and plain e-mail, one token")


@test
def chunked_json_body_and_trailers_h1():
    e = env()
    body = json.dumps({"email": V["email"], "iban": V["iban"]}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7))
    raw = ("POST /v1/c HTTP/1.1\r\nHost: seal.example\r\nContent-Type: application/json\r\n"
           "Transfer-Encoding: chunked\r\nTrailer: X-Contact\r\n\r\n").encode() + chunks + \
        ("0\r\nX-Contact: %s\r\n\r\n" % V["email2"]).encode()
    before = e.up.count()
    (resp,), c = h.raw(e.gw.port(), raw, timeout=10)
    c.close()
    eq(resp.status, 200, "status %s" % resp.body[:300])
    rec = last_for(e, "seal.example", before)
    check_sealed(e, rec, [V["email"], V["iban"], V["email2"]])
    check(any(t.lower().startswith("x-contact: bgtok:v1:") for t in rec["trailers"]),
          "trailer sealed: %r" % rec["trailers"])
    check_record(e, resp, [V["email"], V["email2"]], ["email", "iban"])


@test
def form_body_plus_and_percent():
    e = env()
    body = ("email=%s&phone=%s&first_name=%s&card=%s&note=hello+world" % (
        q(V["email"], safe=""), q(V["phone"], safe=""), V["first_name"], V["card"].replace(" ", "+"))).encode()
    rec, toks, _ = probe(e, "seal.example", "/v1/f", [("Content-Type", "application/x-www-form-urlencoded")],
                         body, [V["email"], V["phone"], V["first_name"], V["card"]],
                         ["email", "phone", "card_number"])
    check("note=hello+world" in rec["body"], "other fields untouched: %s" % rec["body"])


def whole(e, ctype, body, vals, dets, extra=()):
    rec, _, _ = probe(e, "seal.example", "/v1/w", [("Content-Type", ctype)] + list(extra), body, vals, dets,
                      jwe=body)
    return rec


@test
def text_multipart_gzip_octet_stream_are_sealed_whole():
    e = env()
    text = ("Hi, I am %s %s, mail %s, call %s, card %s, IBAN %s, SSN %s, NINO %s, from %s" % (
        V["first_name"], V["last_name"], V["email"], V["phone"], V["card"], V["iban"], V["ssn"], V["nino"],
        V["ip"])).encode()
    whole(e, "text/plain; charset=utf-8", text, [V["email"], V["phone"], V["iban"]], ["email", "iban"])
    bnd = "XbndX"
    mp = ("--%s\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\n%s\r\n"
          "--%s\r\nContent-Disposition: form-data; name=\"cv\"; filename=\"cv.txt\"\r\n"
          "Content-Type: text/plain\r\n\r\nphone %s\r\n--%s--\r\n" % (bnd, V["email"], bnd, V["phone"], bnd)).encode()
    whole(e, "multipart/form-data; boundary=" + bnd, mp, [V["email"], V["phone"]], ["email", "file_upload"])
    gz = gzip.compress(json.dumps({"email": V["email"], "iban": V["iban"]}).encode())
    whole(e, "application/json", gz, [V["email"], V["iban"]], ["email", "iban"],
          extra=[("Content-Encoding", "gzip")])
    for b in (json.dumps({"email": V["email"]}).encode(), b"\x00\x01bin " + V["email"].encode() + b" \xff"):
        whole(e, "application/octet-stream", b, [V["email"]], ["email"])


@test
def names_that_are_values_are_sealed():
    """A JSON key, a query or form name, a bare query item that is itself personal data. Before
    the fix none of them was read: `?ann@example.com` went in clear even to a vendor that gets
    personal data only sealed (no personal data found: allow)."""
    e = env()
    body = json.dumps({V["email"]: {"plan": "pro"}, "by_ip": {V["ip"]: 3}}).encode()
    rec, toks, _ = probe(e, "seal.example", "/v1/k?%s&%s=1" % (q(V["email2"], safe=""), V["phone"].replace("+", "%2B")),
                         [("Content-Type", "application/json")], body, [V["email"], V["ip"], V["email2"], V["phone"]],
                         ["email", "ip_address", "phone"])
    doc = json.loads(rec["body"])
    eq(doc[toks[V["email"]]], {"plan": "pro"}, "the sealed key keeps its value")
    body = ("%s=1&x=y" % q(V["email"], safe="")).encode()
    rec, toks, _ = probe(e, "seal.example", "/v1/kf", [("Content-Type", "application/x-www-form-urlencoded")], body,
                         [V["email"]], ["email"])
    check(rec["body"].endswith("=1&x=y"), "the form's other bytes stay: %s" % rec["body"])


@test
def absolute_form_and_http10_targets():
    e = env()
    for version in ("HTTP/1.1", "HTTP/1.0"):
        before = e.up.count()
        raw = h.request("GET", "http://seal.example/v1/a/%s?email=%s" % (q(V["email2"], safe=""), q(V["email"], safe="")),
                        "seal.example", [("X-Forwarded-For", V["ip"])], b"", version=version)
        (resp,), c = h.raw(e.gw.port(), raw, timeout=10)
        c.close()
        eq(resp.status, 200, "status (%s)" % version)
        rec = last_for(e, "seal.example", before)
        check(rec["target"].startswith("/v1/a/bgtok:v1:"), "origin-form, sealed: %s" % rec["target"])
        check_sealed(e, rec, [V["email"], V["email2"], V["ip"]])


@test
def h2_cookie_fields_and_forwarded_headers():
    e = env()
    before = e.up.count()
    st, hd, data = h2_exchange(e.gw.port(), "seal.example", "/v1/c2", [
        ("cookie", "a=1"), ("cookie", "em=" + V["email"]), ("cookie", "sessionid=Zk3x9QpL2mWv8RtY6nBa4Hs1"),
        ("forwarded", "for=%s;proto=https" % V["ip"]), ("x-real-ip", "198.51.100.23")], b"")
    eq(st, 200, "status %s" % data[:300])
    rec = last_for(e, "seal.example", before)
    check_sealed(e, rec, [V["email"], V["ip"], "198.51.100.23", "Zk3x9QpL2mWv8RtY6nBa4Hs1"])
    check(any(c.startswith("a=1") for c in header(rec, "cookie")), "cookie pair kept: %r" % header(rec, "cookie"))


@test
def digests_of_a_rewritten_body_are_dropped():
    """Content-Digest, Repr-Digest, Digest and Content-MD5 describe the body the client sent:
    wrong for the rewritten one (a vendor checking them refuses it) and a hash of the sealed values
    (a vendor guessing them can confirm a guess). Before the fix they were forwarded as sent."""
    import hashlib
    e = env()
    body = json.dumps({"email": V["email"]}).encode()
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    digests = [("Content-MD5", md5), ("Content-Digest", "sha-256=:%s:" % sha), ("Repr-Digest", "sha-256=:%s:" % sha),
               ("Digest", "SHA-256=" + sha)]
    for ctype in ("application/json", "text/plain"):
        rec, _, _ = probe(e, "seal.example", "/v1/d", [("Content-Type", ctype)] + digests, body, [V["email"]],
                          ["email"], jwe=body if ctype == "text/plain" else None)
        for n, _ in digests:
            eq(header(rec, n), [], "%s of the client's body at the vendor (%s)" % (n, ctype))
    # a body that is not rewritten keeps them
    before = e.up.count()
    plain = b'{"page": 2}'
    r = send(e, "seal.example", "/v1/d?email=" + q(V["email"], safe=""),
             [("Content-Type", "application/json"), ("Content-MD5", "x")], plain)
    eq(r.status, 200, "status")
    rec = last_for(e, "seal.example", before)
    eq((rec["body"], header(rec, "content-md5")), (plain.decode(), ["x"]), "an untouched body keeps its digest")


@test
def same_value_in_query_header_and_body_one_token():
    e = env()
    rec, toks, _ = probe(e, "seal.example", "/v1/s?email=" + q(V["email"], safe=""),
                         [("Content-Type", "application/json"), ("X-Email", V["email"])],
                         json.dumps({"email": V["email"]}).encode(), [V["email"]], ["email"])
    tok = toks[V["email"]]
    text = wire(rec)
    eq(text.count(tok), 3, "one token in query, header and body")


# ---- HTTP/2 --------------------------------------------------------------------------------

def h2_exchange(port, authority, path, fields, body, pieces=1, trailers=()):
    """One h2c request on a new connection: HEADERS, the body in `pieces` DATA frames, optional
    trailing HEADERS. Returns (status, headers, body)."""
    s = socket.create_connection(("127.0.0.1", port), 10)
    try:
        s.sendall(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 1 << 30)) +
                  frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30)))
        block = hpack_literal(":method", "POST" if body else "GET") + hpack_literal(":scheme", "http") + \
            hpack_literal(":path", path) + hpack_literal(":authority", authority)
        for n, v in fields:
            block += hpack_literal(n, v)
        end = not body and not trailers
        out = frame(HEADERS, END_HEADERS | (END_STREAM if end else 0), 1, block)
        step = max(1, -(-len(body) // pieces)) if body else 1
        for i in range(0, len(body), step):
            last = i + step >= len(body) and not trailers
            out += frame(DATA, END_STREAM if last else 0, 1, body[i:i + step])
        if trailers:
            out += frame(HEADERS, END_HEADERS | END_STREAM, 1, b"".join(hpack_literal(n, v) for n, v in trailers))
        s.sendall(out)
        hp, buf, status, hdrs, data = Hpack(), b"", None, [], b""
        while True:
            while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
                d = s.recv(65536)
                if not d:
                    raise h.Failure("h2: connection closed before the answer ended")
                buf += d
            n = int.from_bytes(buf[:3], "big")
            ft, fl, sid, pl = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff, buf[9:9 + n]
            buf = buf[9 + n:]
            if ft == SETTINGS and not fl & ACK:
                s.sendall(frame(SETTINGS, ACK, 0))
            if sid != 1:
                continue
            if ft == HEADERS:
                f = hp.decode(pl)
                if status is None:
                    status = int(dict(f)[":status"])
                hdrs += f
            elif ft == DATA:
                data += pl
            if ft in (HEADERS, DATA) and fl & END_STREAM:
                return status, h.Headers(hdrs), data
    finally:
        s.close()


@test
def h2_body_in_many_data_frames_and_trailers():
    e = env()
    body = json.dumps(JSON_DOC).encode()
    before = e.up.count()
    st, hd, data = h2_exchange(e.gw.port(), "seal.example", "/v1/h2?email=" + q(V["email"], safe=""),
                               [("content-type", "application/json"), ("x-user-phone", V["phone"])], body,
                               pieces=37, trailers=[("x-contact", V["email2"])])
    eq(st, 200, "status %s" % data[:300])
    rec = last_for(e, "seal.example", before)
    check_sealed(e, rec, JSON_VALUES + [V["email2"]])
    check(any(t.lower().startswith("x-contact: bgtok:v1:") for t in rec["trailers"]),
          "h2 trailer sealed: %r" % rec["trailers"])
    # text over h2 in many frames: whole
    text = ("contact %s or %s" % (V["email"], V["phone"])).encode()
    before = e.up.count()
    st, hd, data = h2_exchange(e.gw.port(), "seal.example", "/v1/h2t", [("content-type", "text/plain")], text,
                               pieces=9)
    eq(st, 200, "status")
    rec = last_for(e, "seal.example", before)
    check_sealed(e, rec, [V["email"], V["phone"]], jwe=text)


@test
def h2_vendor_gets_the_sealed_request_byte_for_byte():
    """To a vendor speaking HTTP/2: the body it read is exactly the rewritten one (its length and
    SHA-256 against the body built here with the deterministic tokens), the path and fields are
    sealed, and content-length says the rewritten length."""
    import hashlib
    e = env()
    doc = {"user": {"email": V["email"], "phone": V["phone"]}, "n": 1}
    body = json.dumps(doc).encode()
    want = json.dumps({"user": {"email": seal_token(e, V["email"]), "phone": seal_token(e, V["phone"])},
                       "n": 1}).encode()
    r = send(e, "sealh2.vendor.test", "/v1/x?email=" + q(V["email"], safe=""),
             [("Content-Type", "application/json"), ("X-Contact", V["email2"])], body)
    eq(r.status, 200, "status %s" % r.body[:300])
    got = r.json()
    text = r.body.decode()
    for v in (V["email"], V["phone"], V["email2"]):
        for f in forms(v):
            check(f not in text, "%r in clear at the HTTP/2 vendor: %s" % (f, text))
    eq((got["body_len"], got["body_sha256"]), (len(want), hashlib.sha256(want).hexdigest()), "body at the vendor")
    eq(got["headers"].get("content-length"), str(len(want)), "content-length at the vendor")
    eq(got["path"], "/v1/x?email=" + seal_token(e, V["email"]), "path at the vendor")
    eq(got["headers"].get("x-contact"), seal_token(e, V["email2"]), "header at the vendor")


# ---- categories, AI prompts, fail closed ------------------------------------------------------

@test
def approved_categories_stay_clear():
    e = env()
    before = e.up.count()
    r = send(e, "narrow.example", "/v1/n?ip=%s&email=%s" % (V["ip"], q(V["email"], safe="")),
             [("Content-Type", "application/json")],
             json.dumps({"geo": {"lat": 52.52001, "lng": 13.40495}, "email": V["email"], "ip": V["ip"]}).encode())
    eq(r.status, 200, "status")
    rec = last_for(e, "narrow.example", before)
    check_sealed(e, rec, [V["email"]])
    text = wire(rec)
    check(V["ip"] in text and "52.52001" in text, "approved device/location values stay clear: %s" % text)
    check_record(e, r, [V["email"]], ["email", "ip_address"])


@test
def text_body_with_only_approved_values_is_not_sealed_whole():
    """A text body whose findings are all in approved categories goes as sent, as it would
    field by field: before the fix any body finding turned it into JWE."""
    e = env()
    before = e.up.count()
    text = ("server %s answered" % V["ip"]).encode()
    r = send(e, "narrow.example", "/v1/t?email=" + q(V["email"], safe=""), [("Content-Type", "text/plain")], text)
    eq(r.status, 200, "status")
    rec = last_for(e, "narrow.example", before)
    eq(rec["body"], text.decode(), "approved-only text body unchanged")
    eq(header(rec, "content-type"), ["text/plain"], "Content-Type kept")
    check_sealed(e, rec, [V["email"]])


@test
def email_inside_an_approved_ai_prompt_is_not_sent_in_clear():
    """The vendor may see prompts (ai_interaction), not identifiers; the classifier keeps the
    prompt span and folds the e-mail inside it into it. Before the fix only the prompt's own
    category was looked at, so the e-mail went in clear."""
    e = env()
    before = e.up.count()
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "mail me at %s please" % V["email"]}]})
    r = send(e, "aiscc.example", "/v1/chat", [("Content-Type", "application/json")], body.encode())
    eq(r.status, 200, "status")
    rec = last_for(e, "aiscc.example", before)
    check_sealed(e, rec, [], ())
    for f in forms(V["email"]):
        check(f not in wire(rec), "e-mail inside the prompt in clear: %s" % rec["body"])
    doc = json.loads(rec["body"])
    eq(open_token(e, doc["messages"][0]["content"]), "mail me at %s please" % V["email"], "prompt token")
    eq(doc["model"], "m", "the rest of the body stays")
    # a prompt with nothing unapproved in it stays clear
    before = e.up.count()
    body = json.dumps({"messages": [{"role": "user", "content": "what is the capital of France"}]})
    r = send(e, "aiscc.example", "/v1/chat", [("Content-Type", "application/json")], body.encode())
    eq(r.status, 200, "status")
    eq(last_for(e, "aiscc.example", before)["body"], body, "an approved prompt goes as sent")


@test
def unscannable_body_under_personal_is_sealed_whole():
    """oversize_body: personal + encrypt: a body the classifier could not read (malformed JSON,
    bad gzip) may hold anything. Before the fix it went in clear, values after the point where
    reading stopped (or all of it, when nothing was found before) included."""
    e = env()
    for ctype, body, extra in (
            ("application/json", ('{"a":1,,"b":"%s"}' % V["email"]).encode(), []),
            ("application/json", ('{"a":"%s",,"b":"%s"}' % (V["email2"], V["email"])).encode(), []),
            ("application/json", b"\x1f\x8b\x08\x00garbage " + V["email"].encode(), [("Content-Encoding", "gzip")])):
        before = e.up.count()
        r = send(e, "seal.example", "/v1/u", [("Content-Type", ctype)] + extra, body)
        eq(r.status, 200, "status %s" % r.body[:300])
        rec = last_for(e, "seal.example", before)
        check_sealed(e, rec, [V["email"]], jwe=body)


@test
def over_max_body_scan_fails_closed():
    e = env()
    before = e.up.count()
    body = json.dumps({"email": V["email"], "pad": "x" * (70 * 1024)}).encode()
    r = send(e, "seal.example", "/v1/big", [("Content-Type", "application/json")], body)
    eq(r.status, 451, "status")
    eq(r.json().get("reason"), "encrypt_unscannable_body", "reason")
    e.up.wait_for(before, timeout=0.5)
    eq([x for x in e.up.requests[before:] if header(x, "host") == ["seal.example"]], [], "nothing forwarded")
    check_record(e, r, [V["email"]], [], decision="block")


@test
def more_values_than_sealing_covers_fails_closed():
    e = env()
    before = e.up.count()
    body = json.dumps({"contacts": ["user%d@example.com" % i for i in range(300)]}).encode()
    r = send(e, "seal.example", "/v1/many", [("Content-Type", "application/json")], body)
    eq(r.status, 451, "status")
    eq(r.json().get("reason"), "seal_failed", "reason")
    eq([x for x in e.up.requests[before:] if header(x, "host") == ["seal.example"]], [], "nothing forwarded")


# ---- reveal --------------------------------------------------------------------------------

@test
def reveal_opens_tokens_in_the_body_only():
    e = env()
    body = json.dumps({"user": {"email": V["email"], "note": "caf\u00e9"}, "q": "x\"y"}).encode()
    r = send(e, "reveal.example", "/echo?phone=" + q(V["phone"], safe=""),
             [("Content-Type", "application/json"), ("X-User", V["email2"])], body)
    eq(r.status, 200, "status")
    text = r.body.decode()
    check("bgtok:" not in text, "a token reached the client: %s" % text[:500])
    echo = json.loads(text)  # the revealed JSON is JSON
    eq(json.loads(echo["body"]), json.loads(body), "the vendor's echo of the body, revealed")
    check(V["phone"] in echo["target"], "query value revealed in the echo: %s" % echo["target"])
    eq(int(r.headers.get("content-length")), len(r.body), "revealed Content-Length")
    # a token in a response header is not opened (README: the response body)
    before = e.up.count()
    r = send(e, "reveal.example", "/hdr-echo", [("X-Echo", V["email"])])
    eq(r.status, 200, "status")
    rec = last_for(e, "reveal.example", before)
    tok = header(rec, "x-echo")[0]
    check(TOKEN.fullmatch(tok), "sealed at the vendor: %r" % tok)
    eq(r.headers.get("x-echo"), tok, "response header stays as the vendor sent it")
    eq(r.body.decode(), "echo %s\n" % V["email"], "text body revealed")
    eq(int(r.headers.get("content-length")), len(r.body), "revealed Content-Length")


@test
def records_hold_no_value():
    e = env()
    found = h.scan_records(h.read_records(e.gw.cfg["records"]["path"]))
    eq(found, [], "findings in the transfer records")


if __name__ == "__main__":
    h.main()
