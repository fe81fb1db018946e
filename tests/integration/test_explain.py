#!/usr/bin/env python3
"""test_explain.py -- `bordergate explain` (the real binary, no network): allow / 451 / encrypt
decisions with --address and --at, the JSON object (trail, mechanism, problem, rewritten request
with tokens and no plaintext), text output, vendor-pinned and multiple addresses, report-only,
--address alone (an address's country and region), bad config (exit 1, FILE:LINE:COL) and usage
errors (exit 2)."""

import json
import os
import re

from harness import (BINARY, Failure, check, eq, geoip_config, key_dir, main, run, test, tmpdir, to_yaml,
                     vendor)

EMAIL = "maria.rossi@example.it"
CARD = "4111 1111 1111 1111"
PAY = json.dumps({"amount": 1250, "card": {"number": CARD}, "email": EMAIL, "note": "order 77"})


def config(vendors, name="explain.yaml", **extra):
    """An explain config: no listener is ever bound, but the config must still be valid."""
    cfg = {
        "jurisdiction": "EEA",
        "mode": "enforce",
        "listen": [{"address": "127.0.0.1:1"}],
        "admin": {"address": "127.0.0.1:2"},
        "workers": 1,
        "geoip": geoip_config(),
        "encryption": {"keys": key_dir(), "active_key": "k1"},
        "records": {"path": os.path.join(tmpdir(), "records", "t.jsonl")},
        "vendors": vendors,
    }
    cfg.update(extra)
    path = os.path.join(tmpdir(), name)
    with open(path, "w") as f:
        f.write(to_yaml(cfg))
    return path


def us_vendor(name, host, **kw):
    """A US vendor (127.0.0.3 is US in the test database) with SCCs from 2024-01-01 to 2026-01-01."""
    v = vendor(name, [host], 443, tls=True, addresses=["127.0.0.3"], entity={"name": name + " Inc.", "country": "US"},
               regions=["US"], categories=["identifier"],
               scc={"module": 2, "reference": "DPA-%s" % name, "signed": "2024-01-01", "expires": "2026-01-01"})
    v.update(kw)
    return v


def cfg_main():
    return config([
        vendor("eu-analytics", ["events.eu.test"], 80, categories=["identifier", "usage"]),
        us_vendor("us-crm", "api.crm.test"),
        us_vendor("us-pay", "api.pay.test", on_violation="encrypt", categories=["identifier"]),
        vendor("jp-ai", ["api.ai.test"], 443, addresses=["127.0.0.4"], regions=["JP"],
               categories=["identifier", "ai_interaction"], entity={"name": "AI K.K.", "country": "JP"}),
        vendor("split", ["split.test"], 80, addresses=["127.0.0.3", "127.0.0.1"], regions=["DE"]),
    ])


def body_file(text, name):
    p = os.path.join(tmpdir(), name)
    with open(p, "w") as f:
        f.write(text)
    return p


def explain(*args, cfg=None, want_rc=0):
    r = run([BINARY, "explain", "-c", cfg or cfg_main()] + [str(a) for a in args])
    if want_rc is not None and r.returncode != want_rc:
        raise Failure("explain %s: exit %d, want %d\nstdout: %s\nstderr: %s"
                      % (" ".join(map(str, args)), r.returncode, want_rc, r.stdout[-1500:], r.stderr[-1500:]))
    return r


def explain_json(*args, cfg=None):
    r = explain(*(list(args) + ["--json"]), cfg=cfg)
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        raise Failure("explain --json printed no JSON object (%s): %r" % (e, r.stdout[:500]))


@test
def allow_domestic_json():
    d = explain_json("--url", "http://events.eu.test/v1/track", "--body",
                     body_file(json.dumps({"event": "signup", "email": EMAIL}), "ev.json"),
                     "--content-type", "application/json", "--address", "127.0.0.1")
    eq(d["vendor"]["name"], "eu-analytics")
    eq(d["decision"], "allow")
    eq(d["action"], "allow")
    eq(d["reason"], "domestic")
    eq(d["mechanism"], "domestic")
    eq(d["enforced"], True)
    eq(d["outcome"], "forward")
    eq(d["status"], None)
    eq(d["categories"], ["identifier"])
    eq(d["detections"], {"email": 1})
    eq([(f["detector"], f["where"], f["path"]) for f in d["findings"]], [("email", "body", "$.email")])
    eq([(x["address"], x["country"], x["region"], x["kind"]) for x in d["destinations"]],
       [("127.0.0.1", "DE", "EEA", "domestic")])
    check(len(d["trail"]) >= 3, "trail too short: %r" % d["trail"])
    check(d["trail"][0].startswith("rule 1:"), "trail starts with %r" % d["trail"][0])
    check(any("jurisdiction" in t for t in d["trail"]), "no rule 3 in the trail: %r" % d["trail"])
    check("rewritten_request" not in d, "an allowed request is not rewritten")
    check(EMAIL not in json.dumps(d["findings"]), "a finding printed the value")


@test
def scc_allow_then_expired_451_with_at():
    args = ["--url", "http://api.crm.test/v1/contacts?email=" + EMAIL, "--address", "127.0.0.3"]
    d = explain_json(*(args + ["--at", "2025-06-01"]))
    eq(d["at"], "2025-06-01T00:00:00.000Z")
    eq((d["decision"], d["reason"], d["mechanism"]), ("allow", "scc", "scc"))
    eq((d["scc_module"], d["scc_reference"]), (2, "DPA-us-crm"))
    eq(d["destinations"][0]["country"], "US")
    eq([(f["detector"], f["where"]) for f in d["findings"]], [("email", "query")])
    d = explain_json(*(args + ["--at", "2026-03-01T12:00:00Z"]))
    eq((d["decision"], d["reason"], d["status"], d["outcome"]), ("block", "scc_expired", 451, "block"))
    check(any("expired" in t for t in d["trail"]), "trail does not say expired: %r" % d["trail"])
    eq(d["problem"]["status"], 451)
    eq(d["problem"]["reason"], "scc_expired")
    eq(d["problem"]["vendor"], "us-crm")
    eq(d["problem"]["destination_country"], "US")
    check(re.fullmatch(r"[0-9A-Z]{26}", d["problem"]["transfer_id"]), "transfer id %r" % d["problem"]["transfer_id"])
    check(EMAIL not in json.dumps(d["problem"]), "the problem body holds the value")
    # Before the clauses were signed: no basis either.
    d = explain_json(*(args + ["--at", "2023-12-31"]))
    eq((d["decision"], d["reason"]), ("block", "scc_not_yet_signed"))


@test
def category_not_approved_451():
    d = explain_json("--url", "http://api.crm.test/v1/pay", "--body", body_file(PAY, "pay.json"),
                     "--content-type", "application/json", "--address", "127.0.0.3", "--at", "2025-06-01")
    eq((d["decision"], d["reason"], d["mechanism"]), ("block", "category_not_approved: financial", "scc"))
    eq(d["categories"], ["identifier", "financial"])
    eq(d["detections"], {"email": 1, "card_number": 1})


@test
def encrypt_rewrites_json_body_and_query():
    d = explain_json("--url", "http://api.pay.test/v1/charges?receipt=" + EMAIL, "--body", body_file(PAY, "pay.json"),
                     "--content-type", "application/json", "-H", "X-Customer-Email: " + EMAIL,
                     "--address", "127.0.0.3", "--at", "2026-06-01")
    eq((d["decision"], d["action"], d["reason"], d["outcome"]), ("encrypt", "encrypt", "scc_expired", "forward"))
    check("financial" in d["seal_categories"] and "identifier" in d["seal_categories"],
          "seal_categories %r" % d["seal_categories"])
    rw = d["rewritten_request"]
    head, body = rw["head"], rw["body"]
    eq(head.split("\r\n")[0].split(" ")[0], "POST")
    check(head.split("\r\n")[0].startswith("POST /v1/charges?receipt=bgtok:v1:k1:"), "request line %r"
          % head.split("\r\n")[0])
    check("\r\nHost: api.pay.test\r\n" in head, "no Host line: %r" % head)
    check("X-Customer-Email: bgtok:v1:k1:" in head, "header value not sealed: %r" % head)
    check("bgtok:v1:" in body, "no token in the body: %r" % body)
    for secret in (EMAIL, CARD, CARD.replace(" ", "")):
        check(secret not in head and secret not in body, "plaintext %r left in the rewritten request" % secret)
    sealed = json.loads(body)  # still JSON
    check(sealed["card"]["number"].startswith("bgtok:v1:k1:"), "card %r" % sealed["card"]["number"])
    eq(sealed["amount"], 1250)
    eq(sealed["note"], "order 77")
    m = re.search(r"\r\nContent-Length: (\d+)\r\n", head)
    check(m is not None, "no Content-Length: %r" % head)
    eq(int(m.group(1)), len(body.encode()))
    # Deterministic tokens: the same value gives the same token wherever it is.
    toks = re.findall(r"bgtok:v1:k1:[A-Za-z0-9_-]+", head + body)
    email_tok = sealed["email"]
    eq(toks.count(email_tok), 3, "the email's token in query, header and body")


@test
def text_output():
    r = explain("--url", "http://api.pay.test/v1/charges", "--body", body_file(PAY, "pay.json"),
                "--content-type", "application/json", "--address", "127.0.0.3", "--at", "2026-06-01")
    out = r.stdout
    for pat in (r"(?m)^vendor: +us-pay ", r"(?m)^categories: +identifier,financial$",
                r"(?m)^detections: .*card_number 1 \(financial\)", r"(?m)^destination: 127\.0\.0\.3: country US",
                r"(?m)^policy:$", r"(?m)^  1\. rule 1: ", r"(?m)^decision: +encrypt$", r"(?m)^reason: +scc_expired$",
                r"(?m)^mechanism: +none$", r"(?m)^rewritten request", r"(?m)^  POST /v1/charges HTTP/1\.1$",
                r"bgtok:v1:k1:"):
        check(re.search(pat, out), "text output lacks %r:\n%s" % (pat, out))
    check(EMAIL not in out and CARD not in out, "plaintext in the text output:\n" + out)
    r = explain("--url", "http://api.crm.test/x?email=" + EMAIL, "--address", "127.0.0.3", "--at", "2026-06-01")
    check(re.search(r"(?m)^decision: +block$", r.stdout), r.stdout)
    check(re.search(r"(?m)^answer: +451 Unavailable For Legal Reasons", r.stdout), r.stdout)


@test
def adequacy_and_pinned_addresses():
    # No --address: the vendor's pinned upstream.addresses (127.0.0.4 = JP) are used.
    d = explain_json("--url", "https://api.ai.test/v1/chat", "--body",
                     body_file(json.dumps({"messages": [{"role": "user", "content": "write to " + EMAIL}]}), "ai.json"),
                     "--content-type", "application/json")
    eq((d["decision"], d["reason"], d["mechanism"]), ("allow", "adequacy", "adequacy"))
    eq([(x["address"], x["country"], x["region"]) for x in d["destinations"]], [("127.0.0.4", "JP", "adequate")])
    check("ai_interaction" in d["categories"], "categories %r" % d["categories"])


@test
def several_addresses_choose_the_allowed_one():
    d = explain_json("--url", "http://split.test/p?email=" + EMAIL)
    eq([(x["address"], x["decision"], x["chosen"]) for x in d["destinations"]],
       [("127.0.0.3", "block", False), ("127.0.0.1", "allow", True)])
    eq(d["destinations"][0]["reason"], "region_mismatch")
    eq((d["decision"], d["reason"]), ("allow", "domestic"))


@test
def region_mismatch_whatever_the_data():
    d = explain_json("--url", "http://events.eu.test/health", "--address", "127.0.0.3")
    eq((d["decision"], d["reason"], d["status"]), ("block", "region_mismatch", 451))
    eq(d["categories"], [])


@test
def no_personal_data_to_third_country():
    d = explain_json("--url", "http://api.crm.test/v1/rates?base=EUR", "--address", "127.0.0.3", "--at", "2030-01-01")
    eq((d["decision"], d["reason"]), ("allow", "no_personal_data"))


@test
def report_only_decides_but_forwards():
    cfg = config([us_vendor("us-crm", "api.crm.test")], name="ro.yaml", mode="report-only")
    d = explain_json("--url", "http://api.crm.test/x?email=" + EMAIL, "--address", "127.0.0.3", "--at", "2027-01-01",
                     cfg=cfg)
    eq((d["decision"], d["action"], d["enforced"], d["outcome"]), ("block", "allow", False, "forward"))
    check(any("report-only" in t for t in d["trail"]), "trail %r" % d["trail"])


@test
def unknown_host_is_403():
    d = explain_json("--url", "http://evil.example/x?email=" + EMAIL, "--address", "127.0.0.1")
    eq((d["vendor"], d["outcome"], d["status"]), (None, "no_vendor", 403))
    r = explain("--url", "http://evil.example/x")
    check("no vendor" in r.stdout or "none" in r.stdout, r.stdout)
    check("403" in r.stdout, r.stdout)


@test
def no_address_is_an_error_unless_resolve():
    cfg = config([us_vendor("dns-vendor", "api.dns.test", upstream={"port": 443})], name="dns.yaml")
    r = explain("--url", "http://api.dns.test/x", cfg=cfg, want_rc=1)
    check("--address" in r.stderr and "--resolve" in r.stderr, r.stderr)
    d = json.loads(explain("--url", "http://api.dns.test/x", "--json", cfg=cfg, want_rc=1).stdout)
    eq(d["outcome"], "need_address")
    eq(d["destinations"], [])
    check("decision" not in d, "decided without an address: %r" % d)


@test
def resolve_uses_getaddrinfo_only_when_asked():
    # `localhost` resolves from /etc/hosts: no network needed.
    v = vendor("local", ["localhost"], 80, regions=["EEA"])
    del v["upstream"]["addresses"]
    cfg = config([v], name="resolve.yaml")
    explain("--url", "http://localhost/x", cfg=cfg, want_rc=1)
    d = explain_json("--url", "http://localhost/x?email=" + EMAIL, "--resolve", cfg=cfg)
    addrs = [x["address"] for x in d["destinations"]]
    check("127.0.0.1" in addrs or "::1" in addrs, "localhost resolved to %r" % addrs)
    eq(d["decision"], "allow")


@test
def address_alone():
    d = explain_json("--address", "127.0.0.4", "--address", "127.0.0.1", "--address", "::1")
    eq([(a["address"], a["country"], a["region"], a["kind"]) for a in d["addresses"]],
       [("127.0.0.4", "JP", "adequate", "adequate"), ("127.0.0.1", "DE", "EEA", "domestic"),
        ("::1", "CH", "adequate", "adequate")])
    eq(d["addresses"][1]["in_regions"], ["EU", "EEA"])
    r = explain("--address", "127.0.0.3")
    check(re.search(r"^127\.0\.0\.3: country US, region adequate \(adequate, scope dpf\)", r.stdout), r.stdout)
    # An override wins over the database, and says so.
    cfg = config([vendor("eu", ["eu.test"], 80)], name="ov.yaml",
                 geoip=dict(geoip_config(), overrides=[{"network": "127.0.0.0/24", "country": "BR"}]))
    d = explain_json("--address", "127.0.0.3", cfg=cfg)
    eq((d["addresses"][0]["country"], d["addresses"][0]["source"]), ("BR", "override 127.0.0.0/24"))


@test
def bad_config_exit_1_with_positions():
    path = os.path.join(tmpdir(), "bad.yaml")
    with open(path, "w") as f:
        f.write("jurisdiction: EEA\nmode: enforce\nbogus_key: 1\nvendors: []\n")
    r = explain("--url", "http://x.test/", "--address", "127.0.0.1", cfg=path, want_rc=1)
    check(re.search(r"(?m)^%s:\d+:\d+: " % re.escape(path), r.stderr), "no FILE:LINE:COL in %r" % r.stderr)
    eq(r.stdout, "")
    r = explain("--address", "127.0.0.1", cfg=os.path.join(tmpdir(), "missing.yaml"), want_rc=1)
    check(r.stderr.strip(), "no message for a missing config")


@test
def usage_errors_exit_2():
    cfg = cfg_main()
    cases = [
        [BINARY, "explain", "--url", "http://events.eu.test/"],                       # no -c
        [BINARY, "explain", "-c", cfg],                                                 # nothing to explain
        [BINARY, "explain", "-c", cfg, "--url", "http://a.test/", "--bogus"],
        [BINARY, "explain", "-c", cfg, "--url", "ftp://a.test/", "--address", "127.0.0.1"],
        [BINARY, "explain", "-c", cfg, "--url", "http://a.test/", "--at", "2026-02-30"],
        [BINARY, "explain", "-c", cfg, "--url", "http://a.test/", "--at", "tomorrow"],
        [BINARY, "explain", "-c", cfg, "--url", "http://a.test/", "--address", "not-an-ip"],
        [BINARY, "explain", "-c", cfg, "--url", "http://events.eu.test/", "-H", "no colon", "--address", "127.0.0.1"],
        [BINARY, "explain", "-c", cfg, "--url"],
        [BINARY, "explain", "-c", cfg, "--address", "127.0.0.1", "--method", "POST"],
    ]
    for argv in cases:
        r = run(argv)
        eq(r.returncode, 2, "exit of %r (stderr %r)" % (argv[2:], r.stderr))
        check(r.stderr.startswith("bordergate: "), "no message for %r: %r" % (argv[2:], r.stderr))
    r = run([BINARY, "explain", "-h"])
    eq(r.returncode, 0)
    check("--address" in r.stdout and "--json" in r.stdout, r.stdout)


if __name__ == "__main__":
    main()
