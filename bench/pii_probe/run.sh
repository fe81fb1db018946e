#!/bin/sh
# run.sh — an independent probe of the classifier: labelled lines generated from faker-js values
# (npm @faker-js/faker, installed into a temp dir; not needed by `make test`) in the format of the
# PII eval set, scored with tests/tools/pii_eval.py and the eval's score.py:
#   sh bench/pii_probe/run.sh SCORE_PY [SEED (1)] [N (430)]
# SCORE_PY is ../shared/eval/pii/score.py. Positives: N values per type over 43 locales, in short
# sentence templates (phone, card, IBAN, IP, e-mail; N/2 SSNs), then N lines each of names, birth
# dates, device ids, coordinates, NINOs and tokens in JSON, form, query, header and free-text
# templates; negatives: 31 kinds of non-personal numbers and strings (order and tracking numbers,
# versions, ISBNs, prices, hashes, timestamps …), N/2 of each (kind 16, "ddd ddd dddd units sold",
# starts with 0 or 1: spaced like a NANP number, but no NANP area code), then 37 named kinds of
# look-alikes of the other types (faker_product_name, faker_uuid_headers, faker_csrf_form …).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SCORE=${1:?usage: sh bench/pii_probe/run.sh SCORE_PY [SEED] [N]}
SEED=${2:-1} N=${3:-430}
command -v node >/dev/null || { echo "needs node and npm (apt-get install -y nodejs npm)" >&2; exit 1; }
DIR=$(mktemp -d "${TMPDIR:-/tmp}/bg-piiprobe.XXXXXX")
trap 'rm -rf "$DIR"' EXIT INT TERM
cp "$ROOT/bench/pii_probe/positives.mjs" "$ROOT/bench/pii_probe/negatives.mjs" "$DIR/"
(cd "$DIR" && npm install --silent --no-audit --no-fund @faker-js/faker@10 >/dev/null)
node "$DIR/positives.mjs" "$SEED" "$N" > "$DIR/pos.jsonl"
node "$DIR/negatives.mjs" "$SEED" $((N / 2)) > "$DIR/neg.jsonl"
for f in pos neg; do
  echo "== $f ($(wc -l < "$DIR/$f.jsonl") lines, seed $SEED)"
  python3 "$ROOT/tests/tools/pii_eval.py" --gold "$DIR/$f.jsonl" --score "$SCORE" --bin "$ROOT/build/bordergate" --errors
done
