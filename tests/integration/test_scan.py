#!/usr/bin/env python3
"""Integration: `bordergate scan` (the real binary) classifies personal data in every place a
request carries it — header, query, path, JSON, form, multipart, gzip — prints exact offsets and
never a value, flags unreadable bodies, and keeps its exit codes. Ends with `N passed, N failed`."""
import gzip, json, os, subprocess, sys, tempfile, zlib

BUILD = os.environ.get("BG_BUILD", "build")
BIN = os.path.join(BUILD, "bordergate")
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL %s %s" % (name, detail), file=sys.stderr)


def scan(args, stdin=b""):
    r = subprocess.run([BIN, "scan"] + args, input=stdin, capture_output=True, timeout=60)
    lines = [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]
    return r.returncode, lines, r.stdout


def findings(lines):
    return [l for l in lines if not l.get("summary")]


def summary(lines):
    s = [l for l in lines if l.get("summary")]
    return s[-1] if s else {}


def tmpfile(data):
    f = tempfile.NamedTemporaryFile(delete=False)
    f.write(data)
    f.close()
    return f.name


def test_json_body():
    body = b'{"user":{"first_name":"Audie","email":"rosalee@example.com"},"card":"4111 1111 1111 1111"}'
    rc, lines, raw = scan(["--content-type", "application/json", tmpfile(body)])
    check("json rc", rc == 0, rc)
    f = {x["detector"]: x for x in findings(lines)}
    check("json email", "email" in f and body[f["email"]["offset"]:f["email"]["offset"] + f["email"]["length"]] == b"rosalee@example.com", f)
    check("json path", f.get("email", {}).get("path") == "$.user.email", f)
    check("json card", f.get("card_number", {}).get("category") == "financial", f)
    check("json name", f.get("person_name", {}).get("where") == "body", f)
    s = summary(lines)
    check("json summary", s.get("findings") == 3 and set(s.get("categories", [])) == {"identifier", "financial"}, s)
    check("no value printed", b"rosalee" not in raw and b"4111" not in raw and b"Audie" not in raw, raw)


def test_headers_and_query():
    hdr = (b"Host: api.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
           b"X-Forwarded-For: 203.0.113.9\r\nAuthorization: Bearer abcdefghijklmnop123456\r\n"
           b"X-Request-Id: 620476c1-43ad-4d5c-a7a6-c5780eb765ef\r\n")
    rc, lines, raw = scan(["--headers", tmpfile(hdr), "--query", "/u/ann%40example.com?phone=%2B14155550132&v=1.2.3.4"])
    check("hq rc", rc == 0, rc)
    got = sorted((x["detector"], x["where"]) for x in findings(lines))
    want = sorted([("user_agent", "header"), ("client_ip", "header"), ("bearer_token", "header"),
                   ("email", "path"), ("phone", "query")])
    check("hq findings", got == want, got)
    ip = [x for x in findings(lines) if x["detector"] == "client_ip"]
    check("hq ip offset", ip and ip[0]["offset"] == 0 and ip[0]["length"] == 11 and ip[0]["path"] == "X-Forwarded-For", ip)
    check("hq no value", b"203.0.113.9" not in raw and b"14155550132" not in raw, raw)


def test_form_multipart():
    rc, lines, _ = scan(["--content-type", "application/x-www-form-urlencoded", "-"],
                        b"name=Giovanna+Casper&email=g%40example.com&ssn=183-62-1047")
    dets = sorted(x["detector"] for x in findings(lines))
    check("form", dets == ["email", "person_name", "us_ssn"], dets)
    mp = (b"--B\r\nContent-Disposition: form-data; name=\"phone\"\r\n\r\n+44 20 7946 0958\r\n"
          b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nhello\r\n--B--\r\n")
    rc, lines, _ = scan(["--content-type", "multipart/form-data; boundary=B", "-"], mp)
    dets = sorted(x["detector"] for x in findings(lines))
    check("multipart", dets == ["file_upload", "phone"], dets)
    check("multipart content", "content" in summary(lines).get("categories", []), summary(lines))


def test_gzip_and_bomb():
    plain = b'{"contact":{"email":"zoe@example.org"}}'
    rc, lines, _ = scan(["--content-type", "application/json", "--content-encoding", "gzip", "-"], gzip.compress(plain))
    f = findings(lines)
    check("gzip email", len(f) == 1 and f[0]["detector"] == "email" and f[0]["offset"] == plain.index(b"zoe"), f)
    bomb = gzip.compress(b"\0" * (64 << 20))
    rc, lines, _ = scan(["--content-type", "application/json", "--content-encoding", "gzip", "-"], bomb)
    s = summary(lines)
    check("bomb", rc == 0 and s.get("unscannable") is True and s.get("reason") == "inflate_limit", s)
    rc, lines, _ = scan(["--content-type", "application/json", "--content-encoding", "br", "-"], b"xx")
    check("unknown encoding", summary(lines).get("reason") == "unknown_encoding", summary(lines))
    rc, lines, _ = scan(["--content-type", "application/json", "-"], b'{"a": [1, 2')
    check("malformed json", summary(lines).get("reason") == "malformed_json", summary(lines))
    rc, lines, _ = scan(["--content-type", "application/json", "--max-body-scan", "10", "-"], b'{"email": "a@b.example"}')
    check("too large", summary(lines).get("reason") == "body_too_large", summary(lines))


def test_ai_and_text():
    body = b'{"messages":[{"role":"user","content":"hello there"}]}'
    rc, lines, _ = scan(["--content-type", "application/json", "--ai", "-"], body)
    dets = [x["detector"] for x in findings(lines)]
    check("ai", dets == ["ai_prompt"], dets)
    rc, lines, _ = scan(["--content-type", "application/json", "-"], body)
    check("not ai", findings(lines) == [], lines)
    rc, lines, _ = scan(["--content-type", "text/plain", "-"], b"version 1.2.3.4.5 order 4111111111111112 at 12:34:56")
    check("lookalikes", findings(lines) == [], lines)


def test_jsonl_and_usage():
    inp = b'{"text": "mail x@example.com", "context": "free_text"}\n{"text": "a=1", "context": "query"}\n'
    rc, lines, _ = scan(["--jsonl"], inp)
    check("jsonl", rc == 0 and len(lines) == 2 and lines[0]["findings"][0]["text_offset"] == 5, lines)
    r = subprocess.run([BIN, "scan", "--bogus"], capture_output=True)
    check("usage exit 2", r.returncode == 2, r.returncode)
    r = subprocess.run([BIN, "scan", "/nonexistent/file"], capture_output=True)
    check("missing file exit 1", r.returncode == 1, r.returncode)
    r = subprocess.run([BIN, "scan", "-h"], capture_output=True)
    check("help exit 0", r.returncode == 0 and b"usage" in r.stdout, r.returncode)


def test_custom_detector_from_config():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cfg = tmpfile(("jurisdiction: EEA\nlisten: [{address: \"127.0.0.1:1\"}]\n"
                   "geoip: {database: %s/config/geoip/dbip-country-lite.mmdb}\n"
                   "regions: %s/config/regions.yaml\n"
                   "classification:\n  custom:\n    - {name: customer_number, category: identifier, "
                   "keys: [customer_no], prefix: \"CUST-\", digits: 8}\nvendors: []\n" % (root, root)).encode())
    rc, lines, _ = scan(["-c", cfg, "--content-type", "application/json"],
                     b'{"customer_no":"CUST-12345678","other":"CUST-12345678","customer_no2":"CUST-1234"}')
    f = findings(lines)
    check("custom detector found once, by key", rc == 0 and [(x["detector"], x["path"], x["offset"], x["length"])
                                                              for x in f] == [("customer_number", "$.customer_no", 16, 13)], f)
    rc, lines, _ = scan(["--content-type", "application/json"], b'{"customer_no":"CUST-12345678"}')
    check("without -c the custom detector is absent", rc == 0 and findings(lines) == [], lines)
    bad = tmpfile(b"jurisdiction: [\n")
    rc, _, _ = scan(["-c", bad], b"{}")
    check("bad config exit 1", rc == 1, rc)


if __name__ == "__main__":
    if not os.path.exists(BIN):
        print("missing %s (run make)" % BIN, file=sys.stderr)
        print("0 passed, 1 failed")
        sys.exit(1)
    for t in [test_json_body, test_headers_and_query, test_form_multipart, test_gzip_and_bomb, test_ai_and_text,
              test_jsonl_and_usage, test_custom_detector_from_config]:
        try:
            t()
        except Exception as e:  # a crash in one test is one failure, the rest still run
            failed += 1
            print("FAIL %s: %r" % (t.__name__, e), file=sys.stderr)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
