#!/usr/bin/env python3
"""test_records_cli.py — `bordergate records verify|report` on the real binary.

Record files are made here with an independent implementation of the documented canonical
form (hash = SHA-256 of the line without its "hash" member; prev/hash last), so a passing
verify also proves the C encoder and this spec agree. Checks each tampering kind (exit 1 and
FILE:LINE), a torn final line reported as "truncated", links across files, and the report's
counts in md, csv and json with date filters. Ends with "N passed, N failed".
"""
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile

BUILD = os.environ.get("BG_BUILD", "build")
BIN = os.path.join(BUILD, "bordergate")
GENESIS = "0" * 64
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


def run(*args):
    p = subprocess.run([BIN, "records", *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def record(i, prev, vendor, country, mech, decision, cats, ts):
    body = {
        "ts": ts, "id": "01KB%022d" % i, "caller": "127.0.0.1:%d" % (40000 + i), "vendor": vendor,
        "host": vendor + ".example", "method": "POST", "path": "/v1/items/{id}", "dest_ip": "203.0.113.%d" % (i % 250),
        "dest_country": country, "dest_region": "third_country" if country not in ("DE", "FR") else "EEA",
        "cross_border": country not in ("DE", "FR"), "categories": cats,
        "detections": {"email": 1} if "identifier" in cats else {}, "mechanism": mech,
    }
    if mech == "scc":
        body["scc_module"] = 2
        body["scc_reference"] = "DPA-2024-017"
    body.update({"decision": decision, "reason": "ok" if decision == "allow" else "no_basis",
                 "enforced": True, "status": 200 if decision != "block" else 451, "bytes_in": 10 * i,
                 "bytes_out": 20 * i, "duration_ms": i % 7, "protocol": "h2", "config_version": "c0ffee",
                 "prev": prev})
    canon = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    h = hashlib.sha256(canon.encode()).hexdigest()
    return canon[:-1] + ',"hash":"%s"}' % h, h


PLAN = [  # vendor, country, mechanism, decision, categories, day
    ("acme", "US", "scc", "allow", ["identifier", "device"], 1),
    ("acme", "US", "scc", "allow", ["identifier"], 2),
    ("acme", "US", "scc", "block", ["identifier", "financial"], 3),
    ("llm", "US", "dpf", "encrypt", ["ai_interaction"], 3),
    ("llm", "US", "dpf", "encrypt", ["ai_interaction"], 4),
    ("helpdesk", "DE", "domestic", "allow", ["content"], 4),
    ("helpdesk", "DE", "domestic", "allow", [], 5),
    ("helpdesk", "", "none", "block", ["identifier"], 6),
]


def make_chain(n, prev=GENESIS, start=0):
    lines = []
    for i in range(start, start + n):
        v, c, m, d, cats, day = PLAN[i % len(PLAN)]
        ts = "2026-11-%02dT10:%02d:00.000Z" % (day, i % 60)
        line, prev = record(i, prev, v, c, m, d, cats, ts)
        lines.append(line)
    return lines, prev


def write(path, lines, tail=""):
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(l + "\n" for l in lines) + tail)


def main():
    if not os.access(BIN, os.X_OK):
        print(f"FAIL setup: {BIN} not built")
        print("0 passed, 1 failed")
        return 1
    d = tempfile.mkdtemp(prefix="bg-records-cli-")
    a, b, c = (os.path.join(d, n) for n in ("t.jsonl.1", "t.jsonl.2", "t.jsonl"))
    lines, head = make_chain(8)

    write(a, lines)
    rc, out, err = run("verify", a)
    check("verify ok", rc == 0 and "OK: 8 records in 1 file" in out and head in out, out + err)

    # A modified field.
    mod = list(lines)
    mod[3] = mod[3].replace('"bytes_in":30', '"bytes_in":31')
    check("modified setup", mod[3] != lines[3])
    write(a, mod)
    rc, out, _ = run("verify", a)
    check("modified field", rc == 1 and f"{a}:4: hash mismatch" in out and "3 records verified" in out, out)

    # A deleted line in the middle.
    write(a, lines[:2] + lines[3:])
    rc, out, _ = run("verify", a)
    check("deleted line", rc == 1 and f"{a}:3: broken chain" in out, out)

    # Swapped lines.
    write(a, lines[:4] + [lines[5], lines[4]] + lines[6:])
    rc, out, _ = run("verify", a)
    check("swapped lines", rc == 1 and f"{a}:5: broken chain" in out, out)

    # A bad line.
    write(a, lines[:2] + ["{not json"] + lines[2:])
    rc, out, _ = run("verify", a)
    check("bad line", rc == 1 and f"{a}:3: not a JSON object" in out, out)

    # A torn final write: reported distinctly.
    write(a, lines[:5], tail=lines[5][:80])
    rc, out, _ = run("verify", a)
    check("torn final line", rc == 1 and f"{a}:6: truncated: the final line is incomplete" in out
          and "5 records verified" in out, out)

    # Across files: a good split, a missing record at the boundary, the wrong order.
    more, head2 = make_chain(5, head, start=8)
    write(a, lines[:4]); write(b, lines[4:]); write(c, more)
    rc, out, _ = run("verify", a, b, c)
    check("three files ok", rc == 0 and "OK: 13 records in 3 files" in out and head2 in out, out)
    write(c, more[1:])
    rc, out, _ = run("verify", a, b, c)
    check("broken link across files", rc == 1 and f"{c}:1: broken link across files" in out and b in out, out)
    write(c, more)
    rc, out, _ = run("verify", b, a, c)
    check("wrong order", rc == 1 and f"{a}:1: broken link across files" in out, out)
    rc, out, _ = run("verify", a, os.path.join(d, "missing"))
    check("missing file", rc == 1 and "cannot open" in out, out)
    # An edited hash that is itself consistent still breaks the next link.
    forged = list(lines)
    f3 = json.loads(forged[3]); f3["status"] = 500; del f3["hash"]
    canon = json.dumps(f3, separators=(",", ":"))
    forged[3] = canon[:-1] + ',"hash":"%s"}' % hashlib.sha256(canon.encode()).hexdigest()
    write(a, forged)
    rc, out, _ = run("verify", a)
    check("re-hashed forgery", rc == 1 and f"{a}:5: broken chain" in out, out)

    # Usage.
    rc, _, err = run("verify")
    check("verify without files", rc == 2 and "at least one FILE" in err, err)
    rc, out, _ = run("verify", "-h")
    check("verify help", rc == 0 and "usage: bordergate records verify" in out, out)
    rc, _, err = run("frobnicate")
    check("unknown subcommand", rc == 2, err)

    # Report: expected rows computed here from the same plan.
    write(a, lines[:4]); write(b, lines[4:]); write(c, more)
    allrecs = [json.loads(l) for l in lines + more]

    def expect(recs):
        rows = {}
        for r in recs:
            for cat in r["categories"] or ["none"]:
                k = (r["vendor"], r["dest_country"] or "unknown", r["mechanism"], cat)
                e = rows.setdefault(k, {"allowed": 0, "encrypted": 0, "blocked": 0, "first": r["ts"], "last": r["ts"]})
                e[{"allow": "allowed", "encrypt": "encrypted", "block": "blocked"}[r["decision"]]] += 1
                e["first"] = min(e["first"], r["ts"]); e["last"] = max(e["last"], r["ts"])
        return rows

    rc, out, err = run("report", a, b, c, "--format", "json")
    try:
        rep = json.loads(out)
    except ValueError:
        rep = {}
    check("report json parses", rc == 0 and rep.get("records") == 13, out + err)
    want = expect(allrecs)
    got = {(r["vendor"], r["dest_country"], r["mechanism"], r["category"]):
           {"allowed": r["allowed"], "encrypted": r["encrypted"], "blocked": r["blocked"],
            "first": r["first_seen"], "last": r["last_seen"]} for r in rep.get("rows", [])}
    check("report json rows", got == want, f"\n got {got}\nwant {want}")
    check("report sorted", [r["vendor"] for r in rep.get("rows", [])] == sorted(r["vendor"] for r in rep.get("rows", [])))

    rc, out, _ = run("report", a, b, c, "--format", "csv", "--from", "2026-11-03", "--to", "2026-11-04")
    rows = list(csv.DictReader(io.StringIO(out)))
    want = expect([r for r in allrecs if "2026-11-03" <= r["ts"][:10] <= "2026-11-04"])
    got = {(r["vendor"], r["dest_country"], r["mechanism"], r["category"]):
           {"allowed": int(r["allowed"]), "encrypted": int(r["encrypted"]), "blocked": int(r["blocked"]),
            "first": r["first_seen"], "last": r["last_seen"]} for r in rows}
    check("report csv with dates", rc == 0 and got == want and len(rows) > 0, f"\n got {got}\nwant {want}")

    rc, out, _ = run("report", a, b, c)
    table = [l for l in out.splitlines() if l.startswith("| ") and not l.startswith("| Vendor")]
    check("report md", rc == 0 and "Art. 30(1)(e)" in out and "13 transfer records" in out
          and len(table) == len(expect(allrecs)) and "| llm | US | dpf | ai_interaction | 0 | 4 | 0 |" in out, out)

    write(os.path.join(d, "junk"), ["hello", lines[0]])
    rc, out, err = run("report", os.path.join(d, "junk"), "--format", "json")
    check("report skips junk", rc == 0 and json.loads(out)["records"] == 1 and "1 lines skipped" in err, out + err)
    rc, _, err = run("report", a, "--format", "xml")
    check("report bad format", rc == 2 and "unknown format" in err, err)
    rc, _, err = run("report", a, "--to", "yesterday")
    check("report bad date", rc == 2 and "not a date" in err, err)
    rc, _, err = run("report", os.path.join(d, "missing"))
    check("report missing file", rc == 1, err)
    # A file with no records yet (a new rotation): an empty inventory, not a crash (qsort of no
    # rows was handed a NULL array: undefined, and fatal under SANITIZE=undefined).
    empty = os.path.join(d, "empty.jsonl")
    open(empty, "w").close()
    rc, out, err = run("report", empty, "--format", "json")
    check("report empty file", rc == 0 and json.loads(out or "{}").get("records") == 0
          and json.loads(out).get("rows") == [], out + err)

    for n in os.listdir(d):
        os.unlink(os.path.join(d, n))
    os.rmdir(d)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
