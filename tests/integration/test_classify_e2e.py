#!/usr/bin/env python3
"""test_classify_e2e.py -- issue 5 end to end: personal data found in every place of a request.

One request per place (header, query, JSON, form, multipart with a file, gzip-compressed JSON)
(and a body of a type without a reader, read as text)
to a vendor with no transfer basis: the 451 body names exactly the expected categories and the
record counts exactly the expected detectors; the same request to a domestic vendor arrives
byte for byte. A request with look-alikes only (request id UUID, version string, order number)
passes as no_personal_data. Bodies the classifier cannot read (malformed JSON, a gzip bomb, a
body over max_body_scan) are unscannable: blocked under `oversize_body: block`, forwarded
whole to a domestic vendor under `personal` (and still blocked to a third country).
Ends with "N passed, N failed".
"""
import gzip
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Gateway, check, eq, gateway_config, main, once, raw, read_records,  # noqa: E402
                     record_files, request, scan_records, test, tmpdir, upstream, vendor, wait_record)

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0Ijox"
       "NTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
BOUNDARY = "----bgE2EBoundary7MA4YWxkTrZu0gW"


def multipart(parts):
    out = b""
    for name, filename, ctype, data in parts:
        out += b"--" + BOUNDARY.encode() + b"\r\n"
        disp = 'form-data; name="%s"' % name + ('; filename="%s"' % filename if filename else "")
        out += ("Content-Disposition: %s\r\n" % disp).encode()
        if ctype:
            out += ("Content-Type: %s\r\n" % ctype).encode()
        out += b"\r\n" + data + b"\r\n"
    return out + b"--" + BOUNDARY.encode() + b"--\r\n"


# place: (target, headers, body, categories, detections)
CASES = {
    "header": ("/v1/h", [("X-Customer-Email", "ana.silva@example.com"), ("Authorization", "Bearer " + JWT)], b"",
               ["credential", "identifier"], {"email": 1, "jwt": 1}),
    "query": ("/v1/q?iban=DE89370400440532013000&page=2", [], b"", ["financial"], {"iban": 1}),
    "json": ("/v1/j", [("Content-Type", "application/json")],
             json.dumps({"order": {"sku": "A-1", "qty": 1},
                         "payment": {"card": "4111 1111 1111 1111"}}).encode(),
             ["financial"], {"card_number": 1}),
    "form": ("/v1/f", [("Content-Type", "application/x-www-form-urlencoded")],
             b"plan=basic&phone=%2B4915112345678&newsletter=1", ["identifier"], {"phone": 1}),
    "multipart": ("/v1/m", [("Content-Type", "multipart/form-data; boundary=" + BOUNDARY)],
                  multipart([("note", None, None, b"see attachment"),
                             ("file", "scan.pdf", "application/pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")]),
                  ["content"], {"file_upload": 1}),
    # a file is read too: an uploaded customer list is identifiers, not only content (its one
    # finding covers what is inside)
    "multipart_file": ("/v1/m2", [("Content-Type", "multipart/form-data; boundary=" + BOUNDARY)],
                       multipart([("list", "customers.csv", "text/csv",
                                   b"name,email\r\nAna Silva,ana.silva@example.com\r\n")]),
                       ["content", "identifier"], {"file_upload": 1}),
    "gzip": ("/v1/z", [("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
             gzip.compress(json.dumps({"user": {"email": "li.wei@example.org", "plan": "pro"}}).encode(), mtime=0),
             ["identifier"], {"email": 1}),
    # a type the classifier has no reader for is read as text: a protobuf message holds its strings verbatim
    "binary": ("/v1/b", [("Content-Type", "application/x-protobuf")],
               b"\x0a\x03Ann\x12\x0fann@example.com\x18\x96\x01", ["identifier"], {"email": 1}),
}


@once
def env():
    up_us = upstream(host="127.0.0.3")
    up_de = upstream(host="127.0.0.2")
    vs = [vendor("nobasis-us", ["us.example"], up_us.port, addresses=["127.0.0.3"], regions=["US"], basis="none"),
          vendor("crm-de", ["de.example"], up_de.port, addresses=["127.0.0.2"])]
    gw = Gateway(gateway_config(vs), name="classify").start()
    return gw, up_us, up_de


def send(gw, host, target, headers, body):
    (resp,), _ = raw(gw.port(), request("POST" if body else "GET", target, host, headers, body))
    return resp


def classified(place):
    gw, up_us, up_de = env()
    target, headers, body, cats, dets = CASES[place]
    r = send(gw, "us.example", target, headers, body)
    eq(r.status, 451, "%s: status (body %r)" % (place, r.body[:300]))
    p = r.json()
    eq(sorted(p["categories"]), sorted(cats), place + ": 451 categories")
    rec = wait_record(gw.cfg["records"]["path"], r.headers.get("x-transfer-id"))
    eq(rec["detections"], dets, place + ": record detections")
    eq(sorted(rec["categories"]), sorted(cats), place + ": record categories")
    eq([q for q in up_us.requests if q["target"] == target], [], place + ": reached the US vendor")
    # the same request to a domestic vendor arrives unchanged
    r = send(gw, "de.example", target, headers, body)
    eq(r.status, 200, place + ": domestic status")
    got = [q for q in up_de.requests if q["target"] == target]
    eq(len(got), 1, place + ": requests at the domestic vendor")
    eq(got[0]["body"].encode("latin-1"), body, place + ": body at the domestic vendor")
    rec = wait_record(gw.cfg["records"]["path"], r.headers.get("x-transfer-id"))
    eq((rec["decision"], rec["reason"], rec["detections"]), ("allow", "domestic", dets), place + ": domestic record")


@test
def personal_data_in_a_header():
    classified("header")


@test
def personal_data_in_the_query():
    classified("query")


@test
def personal_data_in_a_json_body():
    classified("json")


@test
def personal_data_in_a_form_body():
    classified("form")


@test
def personal_data_in_an_uploaded_file():
    classified("multipart_file")


@test
def a_file_in_a_multipart_body():
    classified("multipart")


@test
def personal_data_in_a_gzip_json_body():
    classified("gzip")


@test
def personal_data_in_a_body_of_a_binary_type():
    classified("binary")


@test
def a_binary_body_without_personal_data_passes():
    gw, up_us, _ = env()
    body = bytes((i * 197 + 61) % 256 for i in range(64 << 10))  # bytes of every value, no text
    r = send(gw, "us.example", "/v1/img", [("Content-Type", "image/png")], body)
    eq(r.status, 200, "status (body %r)" % r.body[:300])
    got = [q for q in up_us.requests if q["target"] == "/v1/img"]
    eq(len(got), 1, "requests at the US vendor")
    eq(got[0]["body"].encode("latin-1"), body, "body at the US vendor")
    rec = wait_record(gw.cfg["records"]["path"], r.headers.get("x-transfer-id"))
    eq((rec["reason"], rec["categories"]), ("no_personal_data", []), "record")


@test
def look_alikes_are_not_personal_data():
    gw, up_us, _ = env()
    body = json.dumps({"request_id": "550e8400-e29b-41d4-a716-446655440000", "version": "v=3.14.22.190",
                       "order_number": "2024061512345678", "sku": "A-1", "name": "Blue mug", "price": 12.5,
                       "created": "2024-06-15T12:34:56Z"}).encode()
    r = send(gw, "us.example", "/v1/look?build=1.2.3.4&ts=1718454896", [("Content-Type", "application/json")],
             body)
    eq(r.status, 200, "status (body %r)" % r.body[:300])
    rec = wait_record(gw.cfg["records"]["path"], r.headers.get("x-transfer-id"))
    eq((rec["reason"], rec["categories"], rec["detections"]), ("no_personal_data", [], {}), "record")


# ---- unscannable bodies ------------------------------------------------------------------

SCAN_LIMIT = 4096
UNSCANNABLE = {
    "malformed_json": ([("Content-Type", "application/json")], b'{"note": "hello", "items": [1, 2,'),
    "gzip_bomb": ([("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
                  None),  # filled lazily (64 MiB of zeros, ~64 KiB compressed)
    "over_max_body_scan": ([("Content-Type", "text/plain")], (b"lorem ipsum dolor sit amet " * 700)[:16384]),
}


def unscannable_body(kind):
    headers, body = UNSCANNABLE[kind]
    if body is None:
        body = gzip.compress(b"\0" * (64 << 20), 9, mtime=0)
        UNSCANNABLE[kind] = (headers, body)
    return headers, body


def oversize_env(policy):
    up_de = upstream(host="127.0.0.2")
    up_us = upstream(host="127.0.0.3")
    vs = [vendor("crm-de", ["de.example"], up_de.port, addresses=["127.0.0.2"]),
          vendor("nobasis-us", ["us.example"], up_us.port, addresses=["127.0.0.3"], regions=["US"], basis="none")]
    cfg = gateway_config(vs, limits={"max_body_scan": SCAN_LIMIT, "oversize_body": policy})
    cfg["records"]["path"] = os.path.join(tmpdir(), "records-" + policy, "transfers.jsonl")
    return Gateway(cfg, name="oversize-" + policy).start(), up_de, up_us


@test
def unscannable_bodies_are_blocked_under_oversize_block():
    gw, up_de, up_us = oversize_env("block")
    check(len(unscannable_body("gzip_bomb")[1]) < SCAN_LIMIT * 32, "bomb size")
    for kind in UNSCANNABLE:
        headers, body = unscannable_body(kind)
        r = send(gw, "de.example", "/v1/" + kind, headers, body)
        eq(r.status, 451, "%s: status (body %r)" % (kind, r.body[:300]))
        reason = r.json()["reason"]
        check(reason.startswith("unscannable_body"), "%s: reason %r" % (kind, reason))
        rec = wait_record(gw.cfg["records"]["path"], r.headers.get("x-transfer-id"))
        eq((rec["decision"], rec["reason"]), ("block", reason), kind + ": record")
    eq(up_de.count(), 0, "requests at the domestic vendor")
    gw.stop()


@test
def unscannable_bodies_go_to_a_domestic_vendor_under_oversize_personal():
    gw, up_de, up_us = oversize_env("personal")
    for kind in UNSCANNABLE:
        headers, body = unscannable_body(kind)
        target = "/v1/" + kind
        r = send(gw, "de.example", target, headers, body)
        eq(r.status, 200, "%s: status (body %r)" % (kind, r.body[:300]))
        got = [q for q in up_de.requests if q["target"] == target]
        eq(len(got), 1, kind + ": requests at the domestic vendor")
        eq(got[0]["body_len"], len(body), kind + ": body length at the vendor")
        check(got[0]["body"].encode("latin-1") == body, kind + ": body arrived changed")
        rec = wait_record(gw.cfg["records"]["path"], r.headers.get("x-transfer-id"))
        eq((rec["decision"], rec["reason"]), ("allow", "domestic"), kind + ": record")
        # the same body to a third country without a basis is still personal data there
        r = send(gw, "us.example", target, headers, body)
        eq(r.status, 451, kind + ": third country status")
    eq(up_us.count(), 0, "requests at the US vendor")
    gw.stop()


@test
def records_of_this_file_carry_no_personal_data():
    env()
    recs = [r for p in record_files() for r in read_records(p)]
    check(len(recs) >= 20, "only %d records" % len(recs))
    eq(scan_records(recs), [], "findings in records")


if __name__ == "__main__":
    main()
