#!/usr/bin/env python3
"""test_policy_e2e.py -- issue 6 end to end: the real gateway, a test GeoIP database (mkmmdb:
127.0.0.2 DE, 127.0.0.3 US, 127.0.0.4 JP), one recording upstream per loopback address.

The same request to vendors in DE, JP and US gets allow, allow and 451 (RFC 7725 headers, RFC
9457 body whose transfer_id is X-Transfer-Id, nothing reaches the US upstream); an `encrypt`
vendor gets bgtok:v1 tokens in place of every value (query, headers, JSON, form) and the client
gets the plaintext back (reveal_responses); a text body arrives as JWE compact; report-only
forwards and records enforced=false; SCC valid vs expired, DPF valid vs lapsed and a category
not approved, with dates relative to today. Tokens and JWE are opened again here with a second
implementation (python `cryptography`, when installed). Ends with "N passed, N failed".
"""
import base64
import datetime
import json
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Conn, Failure, Gateway, check, eq, gateway_config, key_dir, main, metric, once, raw,  # noqa: E402
                     read_records, record_files, request, scan_records, test, upstream, vendor,
                     wait_record)

TODAY = datetime.date.today()


def day(delta):
    return (TODAY + datetime.timedelta(days=delta)).isoformat()


US_CATS = ["identifier", "device", "usage"]


def us_vendor(name, port, **kw):
    kw.setdefault("regions", ["US"])
    kw.setdefault("categories", list(US_CATS))
    v = vendor(name, [name + ".example"], port, addresses=["127.0.0.3"], **kw)
    v["entity"]["country"] = "US"
    return v


@once
def env():
    ups = {ip: upstream(host=ip) for ip in ("127.0.0.2", "127.0.0.3", "127.0.0.4")}
    de, us, jp = ups["127.0.0.2"].port, ups["127.0.0.3"].port, ups["127.0.0.4"].port
    scc = lambda signed, expires, ref: {"module": 2, "reference": ref, "signed": day(signed),  # noqa: E731
                                        "expires": day(expires)}
    vendors = [
        vendor("helpdesk-de", ["de.example"], de, addresses=["127.0.0.2"]),
        vendor("support-jp", ["jp.example"], jp, addresses=["127.0.0.4"], regions=["JP"]),
        us_vendor("nobasis-us", us, basis="none"),
        us_vendor("sealed-us", us, basis="none", on_violation="encrypt", reveal_responses=True),
        us_vendor("sealed-noreveal", us, basis="none", on_violation="encrypt"),
        us_vendor("scc-valid", us, scc=scc(-100, 100, "DPA-E2E-VALID")),
        us_vendor("scc-expired", us, scc=scc(-400, -1, "DPA-E2E-OLD")),
        us_vendor("scc-narrow", us, scc=scc(-100, 100, "DPA-E2E-NARROW"), categories=["usage"]),
        us_vendor("dpf-ok", us, dpf={"certified": True, "expires": day(100)}),
        us_vendor("dpf-lapsed", us, dpf={"certified": True, "expires": day(-1)}),
    ]
    gw = Gateway(gateway_config(vendors), name="policy").start()
    return gw, ups


def send(gw, host, target="/v1/events", headers=(), body=b"", method=None):
    method = method or ("POST" if body else "GET")
    (resp,), _ = raw(gw.port(), request(method, target, host, headers, body))
    return resp


def records_path(gw):
    return gw.cfg["records"]["path"]


def received(up, host):
    return [r for r in up.requests if any(n.lower() == "host" and v == host for n, v in r["headers"])]


def header(rec, name):
    vals = [v for n, v in rec["headers"] if n.lower() == name.lower()]
    return vals[0] if vals else None


EMAIL = "alice.martin@example.com"
JSON_BODY = json.dumps({"user": {"email": EMAIL, "plan": "pro"}, "event": "signup"}).encode()
JSON_H = [("Content-Type", "application/json")]


def check_451(resp, gw, vendor_name, country, reason, categories):
    """Every part of a 451 the issue names; returns the record."""
    eq(resp.status, 451, "status")
    link = resp.headers.get("link") or ""
    check(re.fullmatch(r'<[^<>]+>;\s*rel="?blocked-by"?', link), "Link header %r" % link)
    eq(resp.headers.get("cache-control"), "no-store", "Cache-Control")
    eq((resp.headers.get("content-type") or "").split(";")[0], "application/problem+json", "Content-Type")
    p = resp.json()
    for k in ("type", "title", "reason", "vendor", "destination_country", "categories", "transfer_id"):
        check(k in p, "problem+json lacks %s: %r" % (k, p))
    check(p["type"].startswith("https://") or p["type"].startswith("urn:"), "type %r" % p["type"])
    check(p["title"], "empty title")
    eq(p["reason"], reason, "reason")
    eq(p["vendor"], vendor_name, "vendor")
    eq(p["destination_country"], country, "destination_country")
    eq(sorted(p["categories"]), sorted(categories), "categories")
    tid = resp.headers.get("x-transfer-id")
    check(tid, "no X-Transfer-Id")
    eq(p["transfer_id"], tid, "transfer_id vs X-Transfer-Id")
    check(EMAIL not in resp.body.decode(), "the 451 body carries the personal value")
    rec = wait_record(records_path(gw), tid)
    eq(rec["decision"], "block", "record decision")
    eq(rec["reason"], reason, "record reason")
    eq(rec["status"], 451, "record status")
    eq(rec["enforced"], True, "record enforced")
    return rec


# ---- three vendors, three countries ------------------------------------------------------

@test
def same_request_de_jp_us_allow_allow_451():
    gw, ups = env()
    got = {}
    for host in ("de.example", "jp.example", "nobasis-us.example"):
        got[host] = send(gw, host, "/v1/events?plan=pro", JSON_H, JSON_BODY)
    eq(got["de.example"].status, 200, "DE")
    eq(got["jp.example"].status, 200, "JP")
    eq(len(received(ups["127.0.0.2"], "de.example")), 1, "DE upstream requests")
    eq(len(received(ups["127.0.0.4"], "jp.example")), 1, "JP upstream requests")
    eq(received(ups["127.0.0.2"], "de.example")[0]["body"], JSON_BODY.decode(), "DE got the body as sent")
    rec = check_451(got["nobasis-us.example"], gw, "nobasis-us", "US", "no_transfer_basis", ["identifier"])
    eq(received(ups["127.0.0.3"], "nobasis-us.example"), [], "the US upstream received")
    eq(rec["dest_country"], "US", "record dest_country")
    r_de = wait_record(records_path(gw), got["de.example"].headers.get("x-transfer-id"))
    r_jp = wait_record(records_path(gw), got["jp.example"].headers.get("x-transfer-id"))
    eq((r_de["decision"], r_de["mechanism"], r_de["reason"], r_de["dest_country"]),
       ("allow", "domestic", "domestic", "DE"), "DE record")
    eq((r_jp["decision"], r_jp["mechanism"], r_jp["reason"], r_jp["dest_country"]),
       ("allow", "adequacy", "adequacy", "JP"), "JP record")


@test
def no_personal_data_to_the_us_is_allowed_and_recorded():
    gw, ups = env()
    r = send(gw, "nobasis-us.example", "/v1/ping?page=2")
    eq(r.status, 200, "status")
    eq(len(received(ups["127.0.0.3"], "nobasis-us.example")), 1, "forwarded")
    rec = wait_record(records_path(gw), r.headers.get("x-transfer-id"))
    eq((rec["decision"], rec["reason"], rec["categories"]), ("allow", "no_personal_data", []), "record")


# ---- encrypt -------------------------------------------------------------------------------

def _crypto():
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESSIV, AESGCM  # noqa: F401
        return True
    except ImportError:
        return False


def _key():
    with open(os.path.join(key_dir(), "k1.key")) as f:
        return base64.b64decode(f.read().strip())


def _b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


TOKEN = re.compile(r"bgtok:v1:([A-Za-z0-9_-]+):([A-Za-z0-9_-]+)")


def open_token(tok):
    """A second implementation of the token format: AES-256-SIV, AD = kid, tag || ciphertext."""
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV
    m = TOKEN.fullmatch(tok)
    check(m, "not a token: %r" % tok)
    return AESSIV(_key()).decrypt(_b64url(m.group(2)), [m.group(1).encode()]).decode()


ENC_PERSONAL = {
    "query_email": "bob.query@example.org",
    "hdr_email": "carol.header@example.net",
    "json_email": EMAIL,
    "json_phone": "+4915112345678",
    "json_ip": "203.0.113.77",
}


@test
def encrypt_vendor_receives_tokens_for_every_value_and_client_gets_them_revealed():
    gw, ups = env()
    body = json.dumps({"user": {"email": ENC_PERSONAL["json_email"], "phone": ENC_PERSONAL["json_phone"],
                                "plan": "pro"},
                       "client": {"ip": ENC_PERSONAL["json_ip"]},
                       "items": [{"sku": "A-1", "qty": 2}], "note": "caf\u00e9 \"quoted\""}).encode()
    target = "/v1/events?email=%s&page=2" % urllib.parse.quote(ENC_PERSONAL["query_email"], safe="")
    resp = send(gw, "sealed-us.example", target,
                JSON_H + [("X-User-Email", ENC_PERSONAL["hdr_email"])], body)
    eq(resp.status, 200, "status")
    got = received(ups["127.0.0.3"], "sealed-us.example")
    eq(len(got), 1, "requests at the vendor")
    up = got[0]
    wire = json.dumps(up)
    for k, v in ENC_PERSONAL.items():
        check(v not in wire and urllib.parse.quote(v, safe="") not in wire,
              "plaintext %s (%s) reached the vendor: %s" % (k, v, wire[:800]))
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(up["target"]).query)
    eq(q.get("page"), ["2"], "non-personal query parameter")
    check(TOKEN.fullmatch(q["email"][0]), "query email %r" % q["email"])
    check(TOKEN.fullmatch(header(up, "X-User-Email") or ""), "header %r" % header(up, "X-User-Email"))
    eq(int(header(up, "Content-Length")), up["body_len"], "Content-Length vs body")
    doc = json.loads(up["body"].encode("latin-1").decode("utf-8"))  # still JSON
    for path, val in ((("user", "email"), doc["user"]["email"]), (("user", "phone"), doc["user"]["phone"]),
                      (("client", "ip"), doc["client"]["ip"])):
        check(isinstance(val, str) and TOKEN.fullmatch(val), "%s not a token: %r" % (".".join(path), val))
    eq(doc["user"]["plan"], "pro", "untouched string")
    eq(doc["items"], [{"sku": "A-1", "qty": 2}], "untouched array")
    eq(doc["note"], "caf\u00e9 \"quoted\"", "untouched escaped string")
    if _crypto():
        eq(open_token(doc["user"]["email"]), ENC_PERSONAL["json_email"], "token opened (second implementation)")
        eq(open_token(q["email"][0]), ENC_PERSONAL["query_email"], "query token opened")
        eq(open_token(header(up, "X-User-Email")), ENC_PERSONAL["hdr_email"], "header token opened")
    # reveal_responses: the echo carries the tokens, the client reads the values again
    text = resp.body.decode("utf-8")
    check("bgtok:" not in text, "a token reached the client: %s" % text[:500])
    for k in ("json_email", "json_phone", "hdr_email"):
        check(ENC_PERSONAL[k] in text or json.dumps(ENC_PERSONAL[k])[1:-1] in text,
              "revealed response lacks %s: %s" % (k, text[:500]))
    eq(int(resp.headers.get("content-length")), len(resp.body), "revealed Content-Length")
    rec = wait_record(records_path(gw), resp.headers.get("x-transfer-id"))
    eq((rec["decision"], rec["enforced"], rec["status"]), ("encrypt", True, 200), "record")


@test
def encrypt_is_deterministic_so_the_vendor_can_join():
    gw, ups = env()
    before = len(received(ups["127.0.0.3"], "sealed-noreveal.example"))
    for _ in range(2):
        r = send(gw, "sealed-noreveal.example", "/v1/x", JSON_H, JSON_BODY)
        eq(r.status, 200, "status")
    got = received(ups["127.0.0.3"], "sealed-noreveal.example")[before:]
    eq(len(got), 2, "requests at the vendor")
    t1, t2 = (json.loads(g["body"])["user"]["email"] for g in got)
    check(TOKEN.fullmatch(t1), "not a token %r" % t1)
    eq(t1, t2, "same value, same token")
    # without reveal_responses the client sees the tokens the vendor echoed
    check(t1 in r.body.decode(), "tokens not in the unrevealed echo")


@test
def encrypt_form_body_values_are_tokens_and_length_is_right():
    gw, ups = env()
    phone = "+4915187654321"
    body = "email=%s&phone=%s&plan=pro" % (urllib.parse.quote("dave@example.com", safe=""),
                                           urllib.parse.quote(phone, safe=""))
    before = len(received(ups["127.0.0.3"], "sealed-noreveal.example"))
    r = send(gw, "sealed-noreveal.example", "/v1/form",
             [("Content-Type", "application/x-www-form-urlencoded")], body)
    eq(r.status, 200, "status")
    up = received(ups["127.0.0.3"], "sealed-noreveal.example")[before]
    check("dave" not in up["body"] and "4915187654321" not in up["body"], "plaintext in %r" % up["body"])
    form = urllib.parse.parse_qs(up["body"])
    eq(form.get("plan"), ["pro"], "untouched field")
    check(TOKEN.fullmatch(form["email"][0]), "email %r" % form.get("email"))
    check(TOKEN.fullmatch(form["phone"][0]), "phone %r" % form.get("phone"))
    eq(int(header(up, "Content-Length")), up["body_len"], "Content-Length")
    if _crypto():
        eq(open_token(form["email"][0]), "dave@example.com", "form token opened")


@test
def encrypt_text_body_is_sealed_whole_as_jwe():
    gw, ups = env()
    text = "Hello, please call Alice Martin at +49 151 12345678 or write to %s. Thanks" % EMAIL
    before = len(received(ups["127.0.0.3"], "sealed-noreveal.example"))
    r = send(gw, "sealed-noreveal.example", "/v1/tickets", [("Content-Type", "text/plain")], text)
    eq(r.status, 200, "status")
    up = received(ups["127.0.0.3"], "sealed-noreveal.example")[before]
    eq(header(up, "Content-Type"), "application/jose", "Content-Type")
    eq(int(header(up, "Content-Length")), up["body_len"], "Content-Length")
    parts = up["body"].split(".")
    eq(len(parts), 5, "JWE compact parts")
    check(EMAIL not in up["body"], "plaintext in the JWE")
    hdr = json.loads(_b64url(parts[0]))
    eq((hdr.get("alg"), hdr.get("enc")), ("dir", "A256GCM"), "JWE header")
    eq(parts[1], "", "alg dir has an empty encrypted key")
    if _crypto():
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
        cek = HKDF(hashes.SHA256(), 32, None, b"bordergate jwe A256GCM v1").derive(_key())
        plain = AESGCM(cek).decrypt(_b64url(parts[2]), _b64url(parts[3]) + _b64url(parts[4]),
                                    parts[0].encode())
        eq(plain.decode(), text, "JWE opened (second implementation)")


@test
def encrypt_seals_client_ip_headers_too():
    """X-Forwarded-For / X-Real-IP from the caller are `device` data (client_ip): under encrypt
    the vendor must not receive them in clear (the gateway may append its own hop). An
    X-Forwarded-For chain sent as two field lines reaches the vendor whole, each part sealed."""
    gw, ups = env()
    before = len(received(ups["127.0.0.3"], "sealed-noreveal.example"))
    r = send(gw, "sealed-noreveal.example", "/v1/x",
             [("X-Forwarded-For", "198.51.100.7"), ("X-Real-IP", "198.51.100.8"),
              ("X-Forwarded-For", "198.51.100.9")])
    eq(r.status, 200, "status")
    rec = wait_record(records_path(gw), r.headers.get("x-transfer-id"))
    eq((rec["decision"], rec["detections"].get("client_ip")), ("encrypt", 3), "record")
    up = received(ups["127.0.0.3"], "sealed-noreveal.example")[before]
    eq(header(up, "X-Real-IP")[:9], "bgtok:v1:", "X-Real-IP")
    chain = [p.strip() for p in header(up, "X-Forwarded-For").split(",")]
    eq([p[:9] for p in chain[:2]] + chain[2:], ["bgtok:v1:", "bgtok:v1:", "127.0.0.1"], "X-Forwarded-For %r" % chain)
    check(chain[0] != chain[1], "two addresses, two tokens: %r" % chain)
    leaked = [(n, v) for n, v in up["headers"] if any("198.51.100.%d" % i in v for i in (7, 8, 9))]
    eq(leaked, [], "client addresses the vendor received in clear")


# ---- report-only ---------------------------------------------------------------------------

@test
def report_only_forwards_a_would_be_block_and_records_it():
    _, ups = env()
    cfg = gateway_config([us_vendor("nobasis-us", ups["127.0.0.3"].port, basis="none")], mode="report-only")
    cfg["records"]["path"] = os.path.join(os.path.dirname(cfg["records"]["path"]), "report-only.jsonl")
    gw = Gateway(cfg, name="reportonly").start()
    before = len(received(ups["127.0.0.3"], "nobasis-us.example"))
    r = send(gw, "nobasis-us.example", "/v1/events", JSON_H, JSON_BODY)
    eq(r.status, 200, "status")
    got = received(ups["127.0.0.3"], "nobasis-us.example")[before:]
    eq(len(got), 1, "forwarded")
    eq(got[0]["body"], JSON_BODY.decode(), "forwarded unchanged")
    rec = wait_record(records_path(gw), r.headers.get("x-transfer-id"))
    eq((rec["decision"], rec["enforced"], rec["reason"], rec["status"]),
       ("block", False, "no_transfer_basis", 200), "record")
    # nothing was stopped: a would-be block has its own counter, not bordergate_blocks_total
    eq(metric(gw.admin_port, "bordergate_blocks_total", {"vendor": "nobasis-us"}), None, "blocks_total")
    eq(metric(gw.admin_port, "bordergate_report_only_blocks_total",
              {"vendor": "nobasis-us", "reason": "no_transfer_basis"}), 1.0, "report_only_blocks_total")
    gw.stop()


# ---- bases ---------------------------------------------------------------------------------

@test
def scc_valid_allows_with_module_and_reference():
    gw, ups = env()
    r = send(gw, "scc-valid.example", "/v1/events", JSON_H, JSON_BODY)
    eq(r.status, 200, "status")
    eq(len(received(ups["127.0.0.3"], "scc-valid.example")), 1, "forwarded")
    rec = wait_record(records_path(gw), r.headers.get("x-transfer-id"))
    eq((rec["decision"], rec["reason"], rec["mechanism"], rec.get("scc_module"), rec.get("scc_reference")),
       ("allow", "scc", "scc", 2, "DPA-E2E-VALID"), "record")


@test
def scc_expired_yesterday_is_451_scc_expired():
    gw, ups = env()
    r = send(gw, "scc-expired.example", "/v1/events", JSON_H, JSON_BODY)
    rec = check_451(r, gw, "scc-expired", "US", "scc_expired", ["identifier"])
    eq(received(ups["127.0.0.3"], "scc-expired.example"), [], "forwarded")
    eq(rec["mechanism"], "none", "record mechanism")
    check("scc_module" not in rec, "an expired SCC named as the basis: %r" % rec)


@test
def dpf_certified_allows_and_lapsed_is_451():
    gw, ups = env()
    r = send(gw, "dpf-ok.example", "/v1/events", JSON_H, JSON_BODY)
    eq(r.status, 200, "dpf-ok status")
    rec = wait_record(records_path(gw), r.headers.get("x-transfer-id"))
    eq((rec["decision"], rec["mechanism"]), ("allow", "dpf"), "dpf-ok record")
    r = send(gw, "dpf-lapsed.example", "/v1/events", JSON_H, JSON_BODY)
    check_451(r, gw, "dpf-lapsed", "US", "dpf_lapsed", ["identifier"])
    eq(received(ups["127.0.0.3"], "dpf-lapsed.example"), [], "forwarded")


@test
def category_not_approved_is_451_naming_the_category():
    gw, ups = env()
    r = send(gw, "scc-narrow.example", "/v1/events", JSON_H, JSON_BODY)
    check_451(r, gw, "scc-narrow", "US", "category_not_approved: identifier", ["identifier"])
    eq(received(ups["127.0.0.3"], "scc-narrow.example"), [], "forwarded")
    # data in approved categories only (none here) goes through
    r = send(gw, "scc-narrow.example", "/v1/events?page=3")
    eq(r.status, 200, "no personal data")


@test
def head_request_blocked_451_has_no_body_and_keeps_the_connection_in_sync():
    """RFC 9110 9.3.2: a response to HEAD has no content. A 451 to HEAD that carries its
    problem body desynchronises every keep-alive client: the next response is read from the
    middle of the JSON."""
    gw, ups = env()
    c = Conn(gw.port())
    c.send(request("HEAD", "/v1/events?email=%s" % urllib.parse.quote(EMAIL, safe=""), "nobasis-us.example")
           + request("GET", "/v1/ping", "nobasis-us.example"))
    first = c.read_response(head=True)
    eq(first.status, 451, "HEAD status")
    check(first.headers.get("x-transfer-id"), "HEAD 451 without X-Transfer-Id")
    try:
        second = c.read_response()
    except Failure as e:
        raise Failure("the response after HEAD 451 is unreadable (body sent to HEAD?): %s" % e)
    eq(second.status, 200, "the request after HEAD")


@test
def records_of_this_file_carry_no_personal_data():
    env()
    recs = [r for p in record_files() for r in read_records(p)]
    check(len(recs) >= 10, "only %d records" % len(recs))
    found = scan_records(recs)
    eq(found, [], "findings in records")


if __name__ == "__main__":
    main()
