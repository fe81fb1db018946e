#!/usr/bin/env python3
"""Evaluation adapter: runs `bordergate scan --jsonl` over a labelled PII file and scores it.

  python3 tests/tools/pii_eval.py --gold ../shared/eval/pii/dev.jsonl [--bin build/bordergate]
         [--pred out.jsonl] [--score path/to/score.py] [--errors]

Each gold line's `text` is classified as its `context` says (json/form/free_text bodies, a query
target, or a header block); detector names map to the eval types; UTF-8 byte offsets become code
points. Predictions go to --pred (default: a temp file), then score.py (default: beside the gold
file) prints the per-type table. --errors lists false positives and misses for debugging.
Nothing here special-cases lines: it is a format adapter only.
"""
import argparse, json, os, subprocess, sys, tempfile

TYPES = {
    "email": "EMAIL", "phone": "PHONE", "ip_address": "IP_ADDRESS", "client_ip": "IP_ADDRESS",
    "card_number": "CREDIT_CARD", "iban": "IBAN", "us_ssn": "US_SSN", "uk_nino": "NATIONAL_ID",
    "person_name": "PERSON", "coordinates": "GEO_COORDINATE", "mac_address": "DEVICE_ID",
    "imei": "DEVICE_ID", "device_id": "DEVICE_ID", "jwt": "AUTH_TOKEN", "bearer_token": "AUTH_TOKEN",
    "api_key": "AUTH_TOKEN", "session_cookie": "AUTH_TOKEN", "date_of_birth": "DATE_OF_BIRTH",
}
CONTEXTS = {"json", "form", "free_text", "query", "headers"}


def byte_to_cp(text):
    """Map each UTF-8 byte offset (and the end) to a code-point offset."""
    m = []
    for i, ch in enumerate(text):
        m.extend([i] * len(ch.encode("utf-8")))
    m.append(len(text))
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gold", required=True)
    ap.add_argument("--bin", default=os.environ.get("BG_BIN", "build/bordergate"))
    ap.add_argument("--pred")
    ap.add_argument("--score")
    ap.add_argument("--errors", action="store_true")
    a = ap.parse_args()
    gold = [json.loads(l) for l in open(a.gold, encoding="utf-8")]
    inp = "".join(json.dumps({"text": g["text"], "context": g.get("context", "free_text")
                              if g.get("context") in CONTEXTS else "free_text"}) + "\n" for g in gold)
    r = subprocess.run([a.bin, "scan", "--jsonl"], input=inp.encode(), capture_output=True)
    if r.returncode != 0:
        sys.exit("scan failed: %s" % r.stderr.decode())
    outs = r.stdout.decode().splitlines()
    assert len(outs) == len(gold), (len(outs), len(gold))
    pred_path = a.pred or tempfile.mktemp(suffix=".jsonl")
    with open(pred_path, "w") as f:
        for g, line in zip(gold, outs):
            res = json.loads(line)
            m = byte_to_cp(g["text"])
            ents = []
            for fd in res["findings"]:
                t = TYPES.get(fd["detector"])
                if not t:
                    continue
                s = fd["text_offset"]
                e = s + fd["length"]
                if s < 0 or e >= len(m):
                    continue
                ents.append({"type": t, "start": m[s], "end": m[e]})
            f.write(json.dumps({"id": g["id"], "entities": ents}) + "\n")
    score = a.score or os.path.join(os.path.dirname(os.path.abspath(a.gold)), "score.py")
    subprocess.run([sys.executable, score, "--gold", a.gold, "--pred", pred_path])
    if a.errors:
        preds = {json.loads(l)["id"]: json.loads(l)["entities"] for l in open(pred_path)}
        for g in gold:
            scope = None if g["label_scope"] == "all" else set(g["label_scope"])
            pe = [p for p in preds[g["id"]] if scope is None or p["type"] in scope]
            ov = lambda x, y: x["start"] < y["end"] and y["start"] < x["end"]
            for p in pe:
                if not any(ov(p, e) and e["type"] == p["type"] for e in g["entities"]) and \
                        not any(ov(p, x) for x in g.get("ignore", [])):
                    print("FP %-14s %-10s %r  in %r" % (p["type"], g["context"], g["text"][p["start"]:p["end"]], g["text"][:150]))
            for e in g["entities"]:
                if not any(ov(p, e) and e["type"] == p["type"] for p in pe):
                    print("FN %-14s %-10s %r  in %r" % (e["type"], g["context"], g["text"][e["start"]:e["end"]], g["text"][:150]))


if __name__ == "__main__":
    main()
