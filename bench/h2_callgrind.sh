#!/bin/sh
# h2_callgrind.sh — instructions per HTTP/2 request over TLS (downstream h2, ALPN h2) on the gateway,
# repeatable on a loaded machine (issue 8's h2 leg without the noise). Starts the bench upstream
# (nginx, HTTP/1.1, 1 KiB answer) and bordergate with the bench config (one worker, all detectors,
# policy, records fsync batch) under valgrind --tool=callgrind, warms up with h2load, zeroes the
# counters, drives N GETs with h2load over TLS (-c C -m M, one thread) and prints Ir per request:
# all gateway threads, the worker thread (the busiest), and the rest (mostly the records writer).
# CG_MODE=cpu instead runs bordergate natively next to nginx (ssl http2, bench/nginx-h2.conf.tmpl)
# and prints, per round, the CPU time (user + system, all threads and processes, from /proc) each
# proxy spent per request of an h2load run — a figure that load on a shared machine blurs far
# less than requests/s (it still inflates both a little: caches are shared).
# Env: CG_MODE (callgrind | cpu) CG_H2_N (20000; cpu: 100000) CG_H2_C (8; cpu: 32) CG_H2_M (16)
# CG_ROUNDS (cpu: 3) BG_BUILD (build) CG_OUT (keep callgrind.out.* there).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BG_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
MODE=${CG_MODE:-callgrind}
if [ "$MODE" = cpu ]; then N=${CG_H2_N:-100000}; C=${CG_H2_C:-32}; else N=${CG_H2_N:-20000}; C=${CG_H2_C:-8}; fi
ROUNDS=${CG_ROUNDS:-3}
M=${CG_H2_M:-16}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/bg-h2cg.XXXXXX")
OUT=${CG_OUT:-$DIR}
mkdir -p "$OUT" "$DIR/records" "$DIR/certs"
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; sleep 0.5; rm -rf "$DIR/records"; }
trap cleanup EXIT
BG_TAG=h2-callgrind
. "$ROOT/bench/lib.sh"
need h2load nghttp2-client
set -- $(free_ports 5)
UP=$1 PORT=$2 ADMIN=$3 TLSP=$4 NGP=$5
sh "$ROOT/certs/gen-certs.sh" "$DIR/certs" >/dev/null 2>&1 || { echo "gen-certs failed" >&2; exit 1; }
cg_render upstream-nginx.conf "$DIR/upstream-nginx.conf" "$PORT"
cg_render bordergate.yaml "$DIR/bordergate.yaml" "$PORT"
cg_render nginx-h2.conf "$DIR/nginx-h2.conf" "$NGP"
nginx -c "$DIR/upstream-nginx.conf" -p "$DIR" >/dev/null 2>&1 & PIDS="$PIDS $!"
if [ "$MODE" = cpu ]; then
  "$BUILD/bordergate" --log-level warn run -c "$DIR/bordergate.yaml" >"$DIR/bg.out" 2>&1 & BG=$!; PIDS="$PIDS $BG"
  nginx -c "$DIR/nginx-h2.conf" -p "$DIR" -e "$DIR/nginx-h2.error.log" >/dev/null 2>&1 & NG=$!; PIDS="$PIDS $NG"
  wait_port "$TLSP" && wait_port "$NGP" || { echo "a proxy did not start" >&2; cat "$DIR/bg.out" >&2; exit 1; }
  ticks() { # pid → "user system" clock ticks of it and its children (nginx's worker), all threads
    for p in $1 $(pgrep -P "$1"); do awk '{print $14, $15}' "/proc/$p/stat" 2>/dev/null; done |
      awk '{u += $1; s += $2} END {print u, s}'
  }
  HZ=$(getconf CLK_TCK)
  load() { # port n → 0 when h2load got n 2xx answers
    h2load -n "$2" -c "$C" -m "$M" -t 1 -H ':authority: bench.test' "https://127.0.0.1:$1/" >"$DIR/h2load.txt" 2>&1
    grep -q "status codes: $2 2xx" "$DIR/h2load.txt" || { echo "h2load failed:" >&2; tail -15 "$DIR/h2load.txt" >&2; exit 1; }
  }
  echo "CPU per h2 request over TLS (h2load -n $N -c $C -m $M -t 1), microseconds, all threads:"
  r=1; while [ $r -le "$ROUNDS" ]; do
    line="round $r:"
    for leg in bordergate nginx; do
      if [ $leg = bordergate ]; then port=$TLSP pid=$BG; else port=$NGP pid=$NG; fi
      load "$port" 2000
      t0=$(ticks "$pid"); load "$port" "$N"; t1=$(ticks "$pid")
      rps=$(awk '/^finished in/ {gsub(",",""); printf "%.0f", $4}' "$DIR/h2load.txt")
      line="$line $leg $(echo "$t0 $t1" | awk -v hz="$HZ" -v n="$N" '{ f = 1e6 / hz / n; u = ($3 - $1) * f; s = ($4 - $2) * f
        printf "%.1f us (user %.1f, system %.1f)", u + s, u, s }') at $rps req/s;"
    done
    echo "$line load $(cut -d' ' -f1 /proc/loadavg)"
    r=$((r + 1))
  done
  exit 0
fi
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/callgrind.out.%p" \
  "$BUILD/bordergate" --log-level warn run -c "$DIR/bordergate.yaml" >"$DIR/bg.out" 2>&1 &
VG=$!; PIDS="$PIDS $VG"
i=0; until [ "$(curl -sk --http2 -o /dev/null -w '%{http_code}' -H 'Host: bench.test' "https://127.0.0.1:$TLSP/" 2>/dev/null)" = 200 ]; do
  i=$((i+1)); [ $i -gt 300 ] && { echo "gateway did not start" >&2; cat "$DIR/bg.out" >&2; exit 1; }; sleep 0.2; done
h2() { # n → h2load over TLS, fails unless every request succeeded with 2xx
  h2load -n "$1" -c "$C" -m "$M" -t 1 -H ':authority: bench.test' "https://127.0.0.1:$TLSP/" >"$DIR/h2load.txt" 2>&1
  grep -q "requests: $1 total, $1 started, $1 done, $1 succeeded" "$DIR/h2load.txt" &&
    grep -q "status codes: $1 2xx" "$DIR/h2load.txt" || { echo "h2load failed:" >&2; tail -15 "$DIR/h2load.txt" >&2; exit 1; }
}
h2 2000
sleep 1
callgrind_control -z "$VG" >/dev/null 2>&1; sleep 0.2
h2 "$N"
sleep 1.5   # the records writer gathers bursts for 1 ms; let it finish
callgrind_control -d h2 "$VG" >/dev/null 2>&1; sleep 0.5
set -- $(for f in "$OUT"/callgrind.out.$VG.1-*; do
  grep -h '^summary:\|^totals:' "$f" | head -1 | awk '{print $2}'
done | sort -n | awk '{ t += $1; if ($1 > w) w = $1 } END { printf "%.0f %.0f %.0f\n", t, w, t - w }')
echo "h2 over TLS (h2load -c $C -m $M): N=$N Ir/request=$(($1 / N)) (busiest thread, the worker: $(($2 / N)); other threads, mostly the records writer: $(($3 / N)))"
echo "callgrind files (one per thread): $OUT/callgrind.out.$VG.1-*"
