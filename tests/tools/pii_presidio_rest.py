#!/usr/bin/env python3
"""pii_presidio_rest.py — the records of dev.jsonl's main free-text source that dev left out.

  python3 tests/tools/pii_presidio_rest.py --dev ../shared/eval/pii/dev.jsonl \\
      --large presidio-research/tests/data/generated_large.json \\
      [--small presidio-research/tests/data/generated_small.json] > rest.jsonl
  python3 tests/tools/pii_eval.py --gold rest.jsonl --score ../shared/eval/pii/score.py

dev.jsonl names its sources: 400 of its lines are records of microsoft/presidio-research's
tests/data/generated_large.json (commit 7622dec1e5f7, 2,109 records), by index. The other 1,709
records (and generated_small.json's, less those also in generated_large) are text of the same
kind that the classifier's rules were never checked against: the nearest thing to the held-out
set this machine can build. This writes them in dev's format, labelled the way dev labels the
400 it took (read off dev, not chosen here): CREDIT_CARD, EMAIL_ADDRESS (as EMAIL), IBAN_CODE
(as IBAN), PHONE_NUMBER (as PHONE), US_SSN and IP_ADDRESS are entities; every other span
(PERSON, ADDRESS, LOCATION, ORGANIZATION, DATE_TIME, ...) is an ignore span; a line with no
entity is a negative line ("no_in_scope_pii"); label_scope "all", context "free_text".
The check that the mapping is dev's: for each of dev's 400 lines the same conversion must give
dev's own entities and ignore spans, else this exits 1.
Needs the presidio-research files (git clone of github.com/microsoft/presidio-research); nothing
of them is kept in this tree. Stdlib only.
"""
import argparse
import ipaddress
import json
import re
import sys

ENTITY = {"CREDIT_CARD": "CREDIT_CARD", "EMAIL_ADDRESS": "EMAIL", "IBAN_CODE": "IBAN",
          "PHONE_NUMBER": "PHONE", "US_SSN": "US_SSN", "IP_ADDRESS": "IP_ADDRESS"}


def luhn_ok(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def iban_ok(v):
    v = v.replace(" ", "").upper()
    if len(v) < 5 or not v.isalnum():
        return False
    return int("".join(str(int(ch, 36)) for ch in v[4:] + v[:4])) % 97 == 1


def ip_ok(v):
    try:
        ipaddress.ip_address(v)
        return True
    except ValueError:
        return False


def ssn_ok(v):
    d = re.sub(r"\D", "", v)
    return (len(d) == 9 and d[:3] not in ("000", "666") and d[0] != "9" and d[3:5] != "00"
            and d[5:] != "0000")


# The validity mark dev gives each entity type (all of dev's are true but one IBAN's).
MARK = {"CREDIT_CARD": ("luhn_valid", lambda v: luhn_ok(re.sub(r"\D", "", v))),
        "IBAN": ("checksum_valid", iban_ok), "IP_ADDRESS": ("parses", ip_ok), "US_SSN": ("ssa_valid", ssn_ok)}


def convert(rec):
    ents, ign = [], []
    for s in rec["spans"]:
        t = s["entity_type"]
        span = {"type": ENTITY.get(t, t), "start": s["start_position"], "end": s["end_position"]}
        if span["type"] in MARK and t in ENTITY:
            name, ok = MARK[span["type"]]
            span[name] = ok(rec["full_text"][span["start"]:span["end"]])
        (ents if t in ENTITY else ign).append(span)
    key = lambda e: (e["start"], e["end"], e["type"])
    return sorted(ents, key=key), sorted(ign, key=key)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dev", required=True)
    ap.add_argument("--large", required=True)
    ap.add_argument("--small")
    a = ap.parse_args()
    large = json.load(open(a.large, encoding="utf-8"))
    used = set()
    for line in open(a.dev, encoding="utf-8"):
        d = json.loads(line)
        m = re.search(r"generated_large\.json\[(\d+)\]", d.get("source") or "")
        if not m:
            continue
        i = int(m.group(1))
        used.add(i)
        ents, ign = convert(large[i])
        key = lambda e: (e["start"], e["end"], e["type"])
        if (large[i]["full_text"] != d["text"] or ents != sorted(d["entities"], key=key)
                or ign != sorted(d["ignore"], key=key)):
            sys.exit("dev line %s is not this conversion of generated_large.json[%d]" % (d["id"], i))
    if not used:
        sys.exit("%s names no generated_large.json record" % a.dev)
    recs = [("generated_large.json", i, r) for i, r in enumerate(large) if i not in used]
    if a.small:
        texts = {r["full_text"] for r in large}
        small = json.load(open(a.small, encoding="utf-8"))
        recs += [("generated_small.json", i, r) for i, r in enumerate(small) if r["full_text"] not in texts]
    for name, i, r in recs:
        ents, ign = convert(r)
        print(json.dumps({"id": "rest-%s-%04d" % (name.split(".")[0].split("_")[1], i), "text": r["full_text"],
                          "entities": ents, "ignore": ign, "label_scope": "all", "context": "free_text",
                          "negative_kind": None if ents else "no_in_scope_pii",
                          "source": "microsoft/presidio-research@7622dec1e5f7:tests/data/%s[%d] (template %s)"
                                    % (name, i, r.get("template_id"))}, ensure_ascii=False))


if __name__ == "__main__":
    main()
