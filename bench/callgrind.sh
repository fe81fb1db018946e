#!/bin/sh
# callgrind.sh — instructions per HTTP/1.1 request on the gateway, repeatable on a loaded machine.
# Starts the bench upstream (nginx, 1 KiB answer) and bordergate with the bench config (one worker,
# all detectors, policy, records fsync batch) under valgrind --tool=callgrind, warms up, zeroes the
# counters, drives N keep-alive GETs then (separately) N POSTs of the bench's 16 KiB JSON body from
# one connection, and prints Ir per request for each (all gateway threads, the records writer too;
# the worker's with and without bg_classify, whose inclusive cost callgrind_annotate reports).
# Env: CG_GET_N (20000) CG_POST_N (5000) BG_BUILD (build) CG_OUT (keep callgrind.out.* there).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BG_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
GET_N=${CG_GET_N:-20000}
POST_N=${CG_POST_N:-5000}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/bg-cg.XXXXXX")
OUT=${CG_OUT:-$DIR}
mkdir -p "$OUT" "$DIR/records" "$DIR/certs"
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; sleep 0.5; rm -rf "$DIR/records"; }
trap cleanup EXIT
BG_TAG=callgrind
. "$ROOT/bench/lib.sh"
set -- $(free_ports 4)
UP=$1 PORT=$2 ADMIN=$3 TLSP=$4
sh "$ROOT/certs/gen-certs.sh" "$DIR/certs" >/dev/null 2>&1 || { echo "gen-certs failed" >&2; exit 1; }
cg_render upstream-nginx.conf "$DIR/upstream-nginx.conf" "$PORT"
cg_render bordergate.yaml "$DIR/bordergate.yaml" "$PORT"
# the same 16 KiB JSON body as compare.sh
bench_body || exit 1
nginx -c "$DIR/upstream-nginx.conf" -p "$DIR" >/dev/null 2>&1 & PIDS="$PIDS $!"
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/callgrind.out.%p" \
  "$BUILD/bordergate" --log-level warn run -c "$DIR/bordergate.yaml" >"$DIR/bg.out" 2>&1 &
VG=$!; PIDS="$PIDS $VG"
i=0; until curl -s -o /dev/null -H 'Host: bench.test' "http://127.0.0.1:$PORT/" 2>/dev/null; do
  i=$((i+1)); [ $i -gt 200 ] && { echo "gateway did not start" >&2; cat "$DIR/bg.out" >&2; exit 1; }; sleep 0.2; done
dump() { # part → prints "total worker-thread other-threads classifier" Ir of that part (one file per
  # thread; classifier: bg_classify's inclusive cost on the worker, the part that is not the data plane)
  callgrind_control -d "$1" "$VG" >/dev/null 2>&1; sleep 0.5
  for f in "$OUT"/callgrind.out.$VG.$2-*; do # a dump is complete once its totals: line is out
    i=0; until grep -q '^totals:' "$f" || [ $i -gt 100 ]; do i=$((i+1)); sleep 0.1; done
  done
  # the worker is the thread that ran proxy/worker.c's thread_main (under valgrind, whose SHA-256
  # runs without SHA-NI, the records writer can be the busier one); else the busiest thread
  for f in "$OUT"/callgrind.out.$VG.$2-*; do
    printf '%s %s %s\n' "$(grep -h '^summary:\|^totals:' "$f" | head -1 | awk '{print $2}')" "$f" \
      "$(grep -c ' thread_main$' "$f")"
  done | sort -n | awk '{ t += $1; if ($3 > 0) { w = $1; wf = $2; found = 1 } else if (!found && $1 > w) { w = $1; wf = $2 } }
    END { printf "%.0f %.0f %.0f %s\n", t, w, t - w, wf }' |
  while read -r t w o wf; do
    # (from /: run inside the tree, callgrind_annotate splits a function by how its file is spelt)
    c=$(cd / && callgrind_annotate --inclusive=yes "$wf" 2>/dev/null | awk '/[:]bg_classify [[]/ { gsub(",", "", $1); print $1; exit }')
    echo "$t $w $o ${c:-0}"
  done
}
PART=0
run() { # kind n
  python3 "$ROOT/bench/h1_client.py" "$PORT" 300 "$1" "$DIR/body.json" || exit 1
  callgrind_control -z "$VG" >/dev/null 2>&1; sleep 0.2
  python3 "$ROOT/bench/h1_client.py" "$PORT" "$2" "$1" "$DIR/body.json" || exit 1
  sleep 1.5   # the records writer gathers bursts for 1 ms; let it finish
  PART=$((PART + 1))
  set -- "$1" "$2" $(dump "$1" "$PART")
  echo "$1: N=$2 Ir/request=$(($3 / $2)) (the worker thread: $(($4 / $2)), of which the classifier $(($6 / $2)), the rest $((($4 - $6) / $2)); other threads, mostly the records writer's SHA-256 chain: $(($5 / $2)))"
}
run get "$GET_N"
run post "$POST_N"
echo "callgrind files (one per thread and part): $OUT/callgrind.out.$VG.*"
