#!/bin/sh
# ab.sh — A/B of bordergate binaries on one leg of compare.sh, alternating within each round so
# the host's drift hits every binary alike:
#   sh bench/ab.sh OLD_BINARY NEW_BINARY... [ha]      (paths absolute or relative to the repository)
# On loopback: the bench upstream (nginx, 1 KiB answer), HAProxy as compare.sh configures it (leg
# `ha`), and each binary with compare.sh's bordergate config (one worker, every detector, policy,
# records fsync batch). Per leg and round: requests/s, p99, the proxy's CPU µs per request (user +
# system, all threads), its context switches per 1000 requests and the machine's idle µs per
# request; then per binary the median and range of its per-round ratio to the first binary.
# Env: AB_ROUNDS (10) AB_DURATION (5, seconds) AB_CONNECTIONS (50) AB_KIND (get | close: a new
# connection per request | post: compare.sh's 16 KiB JSON body | tlsvendor: GET with the vendor
# over TLS and closing after every answer, so that each request opens a new TLS connection to it:
# the cost of vendor handshakes, full or resumed; not for the `ha` leg) AB_SCHED (1: also record one second
# of scheduler events (perf sched) mid-run and print who woke whom per 1000 requests: the proxy
# waking the upstream or wrk, and they waking the proxy, i.e. how often one of them was asleep
# when the other had work for it) AB_DIST (1: also print wrk's latency mean, stdev, max and
# percentiles per run). Stops what it starts.
set -u
[ $# -ge 2 ] || { echo "usage: sh bench/ab.sh BINARY BINARY... [ha]" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${AB_ROUNDS:-10} DUR=${AB_DURATION:-5} CONNS=${AB_CONNECTIONS:-50} KIND=${AB_KIND:-get}
BG_TAG=ab
. "$ROOT/bench/lib.sh"
need wrk wrk
need haproxy haproxy
need nginx nginx-light
DIR=$(mktemp -d "${TMPDIR:-/tmp}/bg-ab.XXXXXX")
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; sleep 0.5; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
mkdir -p "$DIR/records" "$DIR/certs"
BINS="$*"
set -- $(free_ports 5)
UP=$1 PORT=$2 ADMIN=$3 TLSP=$4 HAP=$5
sh "$ROOT/certs/gen-certs.sh" "$DIR/certs" >/dev/null 2>&1 || { echo "gen-certs failed" >&2; exit 1; }
cg_render upstream-nginx.conf "$DIR/upstream-nginx.conf" "$PORT"
cg_render bordergate.yaml "$DIR/bordergate.yaml" "$PORT"
cg_render haproxy.cfg "$DIR/haproxy.cfg" "$HAP"
WRK_ARGS=""
case "$KIND" in
  close) WRK_ARGS="-H Connection:close" ;;
  tlsvendor)
    # The upstream over TLS (the test vendor certificate, names *.vendor.test) and no keep-alive;
    # the gateway verifies it against the generated CA under the name api.vendor.test.
    sed -i "s|listen 127.0.0.1:$UP backlog=4096;|listen 127.0.0.1:$UP ssl backlog=4096; ssl_certificate $DIR/certs/vendor.crt; ssl_certificate_key $DIR/certs/vendor.key; keepalive_timeout 0;|" \
      "$DIR/upstream-nginx.conf"
    sed -i "s|      tls: false|      tls: true\n      ca: \"$DIR/certs/ca.crt\"\n      sni: api.vendor.test|" "$DIR/bordergate.yaml" ;;
  post)
    bench_body || exit 1
    cg_render post.lua "$DIR/post.lua" 0
    export BENCH_BODY="$DIR/body.json" # post.lua reads the body from there
    WRK_ARGS="-s $DIR/post.lua" ;;
esac
nginx -c "$DIR/upstream-nginx.conf" -p "$DIR" >/dev/null 2>&1 & NG=$!; PIDS="$PIDS $NG"
SCHED=${AB_SCHED:-0}
[ "$SCHED" = 1 ] && need perf linux-perf
haproxy -db -f "$DIR/haproxy.cfg" >"$DIR/haproxy.out" 2>&1 & HA=$!; PIDS="$PIDS $HA"
wait_port "$UP" || { echo "upstream did not start" >&2; exit 1; }
ctx_of() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {c += $2} END {print c + 0}'; }
idle_of() { awk '/^cpu / {print $5 + $6}' /proc/stat; }
# wakeups in one second of perf sched data ($1), per 1000 of $2 requests/s: proxy (pid $3) and
# upstream worker (pid $4) against each other and wrk.
wakes_of() {
  perf sched timehist -i "$1" -w 2>/dev/null | awk -v rps="$2" -v p="$3" -v u="$4" '
    function who(t) {
      if (t ~ ("/" p "\\]$") || t ~ ("\\[" p "\\]$")) return "proxy"
      if (t ~ ("\\[" u "\\]$")) return "upstream"
      if (t ~ /^wrk\[/) return "wrk"
      return ""
    }
    $4 == "awakened:" { a = who($3); b = who($5); if (a != "" && b != "" && a != b) n[a ">" b]++ }
    END { k = rps > 0 ? 1000 / rps : 0
          printf "          wakes/kreq: proxy>upstream %.1f  proxy>wrk %.1f  upstream>proxy %.1f  wrk>proxy %.1f\n",
                 n["proxy>upstream"] * k, n["proxy>wrk"] * k, n["upstream>proxy"] * k, n["wrk>proxy"] * k }'
}
: >"$DIR/results"
for r in $(seq "$ROUNDS"); do
  for b in $BINS; do
    if [ "$b" = ha ]; then P=$HAP; PID=$HA; else
      rm -rf "$DIR/records"/*
      (cd "$ROOT" && exec "$b" --log-level warn run -c "$DIR/bordergate.yaml" >"$DIR/bg.out" 2>&1) & PID=$!
      wait_port "$PORT" || { echo "$b did not start:" >&2; cat "$DIR/bg.out" >&2; exit 1; }
      P=$PORT
    fi
    wrk -t1 -c"$CONNS" -d1s $WRK_ARGS -H 'Host: bench.test' "http://127.0.0.1:$P/" >/dev/null 2>&1
    c0=$(cpu_ticks "$PID") x0=$(ctx_of "$PID") i0=$(idle_of)
    wrk -t1 -c"$CONNS" -d"${DUR}s" --latency $WRK_ARGS -H 'Host: bench.test' "http://127.0.0.1:$P/" >"$DIR/wrk.txt" 2>&1 &
    WRK=$!
    if [ "$SCHED" = 1 ]; then
      sleep "$(echo "$DUR" | awk '{print $1 / 2 - 0.5}')"
      perf sched record -q -o "$DIR/sched.data" -- sleep 1 >/dev/null 2>&1
    fi
    wait "$WRK"
    c1=$(cpu_ticks "$PID") x1=$(ctx_of "$PID") i1=$(idle_of)
    n=$(awk '/requests in/ {print $1}' "$DIR/wrk.txt")
    rps=$(awk '/Requests\/sec/ {print $2}' "$DIR/wrk.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$DIR/wrk.txt")
    hz=$(getconf CLK_TCK)
    echo "$r $b ${rps:-0} ${p99:-n/a} $c0 $c1 $x0 $x1 $i0 $i1 ${n:-0}" | awk -v hz="$hz" \
      '{ n = $11 > 0 ? $11 : 1; printf "round %-3s %-28s %9.0f req/s  p99 %-8s CPU %5.1f us/req  ctx %6.1f/kreq  idle %5.1f us/req\n",
         $1, $2, $3, $4, ($6 - $5) / hz * 1e6 / n, ($8 - $7) * 1000 / n, ($10 - $9) / hz * 1e6 / n }'
    echo "$r $b ${rps:-0}" >>"$DIR/results"
    [ "${AB_DIST:-0}" = 1 ] && awk '$1 == "Latency" && NF >= 4 {m = $2; s = $3; mx = $4}
      $1 ~ /^(50|75|90|99)%$/ {d = d " " $1 " " $2}
      END {printf "          latency: mean %s stdev %s max %s |%s\n", m, s, mx, d}' "$DIR/wrk.txt"
    [ "$SCHED" = 1 ] && wakes_of "$DIR/sched.data" "${rps:-0}" "$PID" "$(pgrep -P "$NG" | head -1)"
    [ "$b" = ha ] || { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }
    sleep 0.3
  done
done
FIRST=$(echo "$BINS" | awk '{print $1}')
echo "per-round ratio to $FIRST (median, min-max):"
for b in $BINS; do
  [ "$b" = "$FIRST" ] && continue
  awk -v f="$FIRST" -v b="$b" '$2 == f {base[$1] = $3} $2 == b {v[$1] = $3}
    END { for (r in v) if (base[r] > 0) print v[r] / base[r] }' "$DIR/results" | sort -n |
    awk -v b="$b" '{x[NR] = $1} END { if (NR) printf "  %-28s %.3f (%.3f-%.3f, %d rounds)\n", b,
      NR % 2 ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2, x[1], x[NR], NR }'
done
