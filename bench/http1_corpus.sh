#!/bin/sh
# Runs the shared HTTP/1.1 robustness corpus (../shared/eval/http1, not part of the project)
# through bordergate: one vendor whose hosts are every Host the corpus uses, pinned to the
# corpus runner's strict backend on 127.0.0.1:9099, no personal data checks in the way
# (domestic destination). Usage: sh bench/http1_corpus.sh [EVAL_DIR] [extra run_corpus args]
set -eu
EVAL=${1:-../shared/eval/http1}
[ $# -gt 0 ] && shift
BUILD=${BUILD:-build}
T=$(mktemp -d)
trap 'kill $(cat $T/pid 2>/dev/null) 2>/dev/null; rm -rf $T' EXIT
PORT=18080
cat > $T/bg.yaml <<YAML
jurisdiction: EEA
listen: [{ address: "127.0.0.1:$PORT", vendor: corpus-backend }]
admin: { address: "127.0.0.1:18081" }
workers: 1
limits: { oversize_body: personal }   # a body it cannot read (e.g. Content-Encoding: chunked) counts as personal data; the vendor is domestic
geoip:
  database: config/geoip/dbip-country-lite.mmdb
  overrides: [{ network: 127.0.0.0/8, country: DE }]
records: { path: $T/records.jsonl }
vendors:
  - name: corpus-backend
    entity: { name: "Corpus Backend", country: DE }
    role: processor
    hosts: [localhost, a, example.org, hypnotoad.o, hypnotoad.org, www.example.com, github.com, foo, example.o, example.com]
    upstream: { addresses: [127.0.0.1], port: 9099, tls: false }
    regions: [EEA]
    categories: [identifier, device, location, usage, content, credential, ai_interaction, financial, child]
YAML
$BUILD/bordergate run -c $T/bg.yaml 2>$T/log & echo $! > $T/pid
sleep 0.5
python3 "$EVAL/run_corpus.py" --proxy 127.0.0.1:$PORT --backend-port 9099 "$@"
