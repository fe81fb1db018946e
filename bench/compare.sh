#!/bin/sh
# compare.sh — bordergate side by side with nginx and HAProxy as reverse proxies (issues 3, 4, 7, 8).
# On loopback: one upstream (nginx, 1 KiB body), then each proxy with one worker in front of it.
# HTTP/1.1 legs: wrk keep-alive GET and POST of a 16 KiB JSON body, for nginx, HAProxy, bordergate
# (all features on), and bordergate variants that isolate one cost each: records fsync never (records
# cannot be switched off), geo by mmdb lookup instead of an override, one detector only (detectors:
# [iban]; an empty list means all). HTTP/2 leg: h2load over TLS h2 to bordergate and to nginx (ssl http2, same certificate).
# Every leg runs BENCH_ROUNDS times, interleaved (even rounds in reverse order); the tables give the
# median, the spread (min–max) and the load average. A leg that cannot run prints "n/a".
# Env: BENCH_DURATION (10s) BENCH_CONNECTIONS (50) BENCH_THREADS (1) BENCH_ROUNDS (2) BENCH_PIN (0;
# 1: proxy on CPU 0, upstream and load generator on CPU 1) BENCH_H2_REQUESTS (unset: a timed run of
# BENCH_DURATION after a 1 s warm-up, like wrk; a number: that many requests) BENCH_H2_CLIENTS
# (32) BENCH_H2_STREAMS (16) BENCH_LEGS (all; a subset of: nginx haproxy bordergate bg-fsync-never
# bg-geo-mmdb bg-classify-iban h2-nginx h2-bordergate) BG_BUILD (build) BENCH_OUT (also write the
# tables there) BENCH_KEEP (keep the temp dir). Installs missing tools with apt-get. Everything it
# starts is stopped on exit.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
BUILD=${BG_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-50}
THREADS=${BENCH_THREADS:-1}
PIN=${BENCH_PIN:-0}
ROUNDS=${BENCH_ROUNDS:-2}
H2_N=${BENCH_H2_REQUESTS:-}
if [ -n "$H2_N" ]; then H2_RUN="-n $H2_N"; H2_DESC="-n $H2_N"
else H2_RUN="-D ${DURATION%s} --warm-up-time=1"; H2_DESC="-D ${DURATION%s} --warm-up-time=1 (a timed run)"; fi
H2_C=${BENCH_H2_CLIENTS:-32}
H2_M=${BENCH_H2_STREAMS:-16}
LEGS=${BENCH_LEGS:-"nginx haproxy bordergate bg-fsync-never bg-geo-mmdb bg-classify-iban h2-nginx h2-bordergate"}

BG_TAG=bench
. "$(dirname "$0")/lib.sh"
need wrk wrk
need haproxy haproxy
need nginx nginx-light
need python3 python3
need h2load nghttp2-client
need openssl openssl
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

bench_dir

set -- $(free_ports 8)
UP_PORT=$1 NGINX_PORT=$2 HAPROXY_PORT=$3 BG_PORT=$4 BG_ADMIN=$5 BG_TLS_PORT=$6 NGINX_H2_PORT=$7

if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  PROXY_CPU="taskset -c 0"; LOAD_CPU="taskset -c 1"; PINNING="proxy on CPU 0; upstream and load generator on CPU 1"
else
  PROXY_CPU=""; LOAD_CPU=""; PINNING="none"
fi

BODY_1K=$(head -c 1023 /dev/zero | tr '\0' x)
GEOIP_DB="$ROOT/config/geoip/dbip-country-lite.mmdb"
# The geo leg: a test database placing 127.0.0.1 in DE, looked up for every new upstream address.
GEOIP_TEST_DB=""
if [ -x "$BUILD/tests/tools/mkmmdb" ] &&
   "$BUILD/tests/tools/mkmmdb" "$DIR/bench.mmdb" --schema dbip 127.0.0.1/32=DE >/dev/null 2>&1; then
  GEOIP_TEST_DB="$DIR/bench.mmdb"
fi
[ -f "$GEOIP_DB" ] || GEOIP_DB="$GEOIP_TEST_DB"
mkdir -p "$DIR/records" "$DIR/certs"
sh "$ROOT/certs/gen-certs.sh" "$DIR/certs" || { echo "bench: gen-certs.sh failed" >&2; exit 1; }

OVERRIDE_DE='[{ network: "127.0.0.1/32", country: DE }]'
# render template output port [fsync detectors overrides geoip-db]
render() {
  sed -e "s|@DIR@|$DIR|g" -e "s|@UPSTREAM_PORT@|$UP_PORT|g" -e "s|@BODY_1K@|$BODY_1K|g" \
      -e "s|@ADMIN_PORT@|$BG_ADMIN|g" -e "s|@TLS_PORT@|$BG_TLS_PORT|g" -e "s|@PORT@|$3|g" \
      -e "s|@FSYNC@|${4:-batch}|g" -e "s|@DETECTORS@|${5:-all}|g" -e "s|@OVERRIDES@|${6:-$OVERRIDE_DE}|g" \
      -e "s|@GEOIP_DB@|${7:-$GEOIP_DB}|g" \
      "$BENCH/$1" >"$2"
}

# A 16 KiB JSON body: order events, some with an e-mail address (personal data for the
# classifier to find; the vendor is domestic, so the policy allows it).
python3 - "$DIR/body.json" <<'PY'
import json, sys
items, i = [], 0
while True:
    item = {"sku": "SKU-%06d" % i, "qty": i % 7 + 1, "price_cents": 1999 + i,
            "note": "standard shipping, gift wrap: no"}
    if i % 10 == 0:
        item["email"] = "customer%d@example.com" % i
    trial = json.dumps({"order_id": "ORD-2026-000123", "items": items + [item]})
    if len(trial) > 16384 - 40:
        break
    items.append(item); i += 1
doc = json.dumps({"order_id": "ORD-2026-000123", "items": items})
doc = doc[:-1] + ', "pad": "' + "p" * (16384 - len(doc) - 11) + '"}'
assert len(doc) == 16384, len(doc)
open(sys.argv[1], "w").write(doc)
PY
render post.lua.tmpl "$DIR/post.lua" 0


hwm_kb() { # pid → VmHWM summed over the pid and its children, in kB
  total=0
  for p in $1 $(pgrep -P "$1" 2>/dev/null); do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

to_ms() { # wrk/h2load latency like 512.00us / 1.23ms / 1.01s → ms
  echo "$1" | awk '{ v=$1; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) }
                     else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 } else { v="n/a" } ; if (v == "n/a") print v; else printf "%.2f", v }'
}

load1() { cut -d' ' -f1 /proc/loadavg; }

stop_pid() { kill "$1" 2>/dev/null; i=0; while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; kill -9 "$1" 2>/dev/null; }

check_200() { # port → 0 when a GET through it answers 200
  [ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H 'Host: bench.test' "http://127.0.0.1:$1/")" = 200 ]
}
check_200_h2() { # port → 0 when an h2 GET over TLS through it answers 200
  [ "$(curl -sk --http2 -o /dev/null -m 5 -w '%{http_code}' -H 'Host: bench.test' "https://127.0.0.1:$1/")" = 200 ]
}

# Results: one line per leg, test and round:
# leg test round rps p50_ms p99_ms mean_ms max_ms rss_kb errors load1 cpu_us_per_request
# (cpu: the proxy's user + system time over the run / requests, a figure the host's noise
# blurs less than requests/s; n/a for h2load legs)
RES="$DIR/results.tsv"
: >"$RES"
result() { echo "$*" >>"$RES"; }

# wrk_leg NAME PORT PID ROUND TESTS
wrk_leg() {
  name=$1 port=$2 pid=$3 round=$4 tests=$5
  for t in $tests; do
    if [ "$t" = post ]; then script="-s $DIR/post.lua"; else script=""; fi
    # 1 s warm-up, not measured
    BENCH_BODY="$DIR/body.json" $LOAD_CPU wrk -t"$THREADS" -c"$CONNS" -d1s $script \
      -H "Host: bench.test" "http://127.0.0.1:$port/" >/dev/null 2>&1
    l=$(load1)
    out="$DIR/wrk-$name-$t-r$round.txt"
    c0=$(cpu_ticks "$pid")
    BENCH_BODY="$DIR/body.json" $LOAD_CPU wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency $script \
      -H "Host: bench.test" "http://127.0.0.1:$port/" >"$out" 2>&1
    c1=$(cpu_ticks "$pid")
    nreq=$(awk '/requests in/ {print $1; exit}' "$out")
    cpu=$(awk -v a="$c0" -v b="$c1" -v n="${nreq:-0}" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { if (n > 0) printf "%.1f", (b - a) / hz * 1e6 / n; else print "n/a" }')
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    p50=$(to_ms "$(awk '$1=="50%" {print $2}' "$out")")
    p99=$(to_ms "$(awk '$1=="99%" {print $2}' "$out")")
    mean=$(to_ms "$(awk '$1=="Latency" {print $2; exit}' "$out")")
    max=$(to_ms "$(awk '$1=="Latency" {print $4; exit}' "$out")")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    sockerr=$(awk '/Socket errors:/ {gsub(",",""); print $4+$6+$8+$10}' "$out")
    errs=$(( ${non2xx:-0} + ${sockerr:-0} ))
    [ -n "$rps" ] || { rps=n/a; p50=n/a; p99=n/a; mean=n/a; max=n/a; }
    result "$name $t $round $rps $p50 $p99 $mean $max $(hwm_kb "$pid") $errs $l $cpu"
  done
}

# h2_leg NAME PORT PID ROUND: h2load over TLS (ALPN h2), H2_RUN -c H2_C -m H2_M, one thread.
h2_leg() {
  name=$1 port=$2 pid=$3 round=$4
  $LOAD_CPU h2load -n 5000 -c "$H2_C" -m "$H2_M" -H ':authority: bench.test' \
    "https://127.0.0.1:$port/" >/dev/null 2>&1   # warm-up, not measured
  l=$(load1)
  out="$DIR/h2load-$name-r$round.txt" log="$DIR/h2load-$name-r$round.log"
  $LOAD_CPU h2load $H2_RUN -c "$H2_C" -m "$H2_M" -H ':authority: bench.test' --log-file="$log" \
    "https://127.0.0.1:$port/" >"$out" 2>&1
  rps=$(awk '/^finished in/ {gsub(",",""); printf "%.0f", $4}' "$out")
  mean=$(to_ms "$(awk '/^time for request:/ {print $6}' "$out")")
  max=$(to_ms "$(awk '/^time for request:/ {print $5}' "$out")")
  pcts=$(python3 - "$log" <<'PY'
import sys
try:
    d = sorted(int(l.split("\t")[2]) for l in open(sys.argv[1]) if l.split("\t")[1] != "-1")
except (OSError, IndexError, ValueError):
    d = []
if not d:
    print("n/a n/a")
else:
    q = lambda p: d[min(len(d) - 1, int(p * len(d)))] / 1000.0
    print("%.2f %.2f" % (q(0.50), q(0.99)))
PY
)
  bad=$(awk '/^requests:/ {gsub(",",""); print $10+$12+$14}' "$out")
  non2xx=$(awk '/^status codes:/ {gsub(",",""); print $5+$7+$9}' "$out")
  errs=$(( ${bad:-0} + ${non2xx:-0} ))
  [ -n "$rps" ] || { rps=n/a; mean=n/a; max=n/a; pcts="n/a n/a"; }
  result "$name h2 $round $rps $pcts $mean $max $(hwm_kb "$pid") $errs $l n/a"
}

na() { # NAME ROUND TESTS REASON
  for t in $3; do result "$1 $t $2 n/a n/a n/a n/a n/a 0 0 $(load1) n/a"; done
  echo "bench: $1 (round $2): $4" >&2
}

start_bg() { # NAME [fsync detectors overrides geoip-db] → sets pid, or returns 1
  render bordergate.yaml.tmpl "$DIR/$1.yaml" "$BG_PORT" "${2:-}" "${3:-}" "${4:-}" "${5:-}"
  [ -x "$BUILD/bordergate" ] || return 1
  rm -f "$DIR"/records/*
  (cd "$ROOT" && exec $PROXY_CPU "$BUILD/bordergate" --log-level warn run -c "$DIR/$1.yaml") \
    >"$DIR/$1.out" 2>&1 &
  pid=$!; PIDS="$PIDS $pid"
  if wait_port "$BG_PORT" && wait_port "$BG_TLS_PORT" && check_200 "$BG_PORT"; then return 0; fi
  echo "bench: bordergate ($1) did not serve; its output:" >&2; tail -5 "$DIR/$1.out" >&2
  stop_pid "$pid"; return 1
}

run_leg() { # LEG ROUND
  leg=$1 r=$2
  echo "bench: round $r: $leg (load $(load1))" >&2
  case "$leg" in
  nginx)
    render nginx-proxy.conf.tmpl "$DIR/nginx-proxy.conf" "$NGINX_PORT"
    $PROXY_CPU "$NGINX" -p "$DIR" -c "$DIR/nginx-proxy.conf" -e "$DIR/nginx-proxy.error.log" >"$DIR/nginx-proxy.out" 2>&1 &
    pid=$!; PIDS="$PIDS $pid"
    if wait_port "$NGINX_PORT" && check_200 "$NGINX_PORT"; then wrk_leg nginx "$NGINX_PORT" "$pid" "$r" "get post"
    else na nginx "$r" "get post" "did not start"; fi
    stop_pid "$pid" ;;
  haproxy)
    render haproxy.cfg.tmpl "$DIR/haproxy.cfg" "$HAPROXY_PORT"
    $PROXY_CPU "$HAPROXY" -db -f "$DIR/haproxy.cfg" >"$DIR/haproxy.out" 2>&1 &
    pid=$!; PIDS="$PIDS $pid"
    if wait_port "$HAPROXY_PORT" && check_200 "$HAPROXY_PORT"; then wrk_leg haproxy "$HAPROXY_PORT" "$pid" "$r" "get post"
    else na haproxy "$r" "get post" "did not start"; fi
    stop_pid "$pid" ;;
  bordergate)       # everything on: fsync batch, all detectors, override (no mmdb lookup)
    if start_bg "$leg"; then wrk_leg "$leg" "$BG_PORT" "$pid" "$r" "get post"; stop_pid "$pid"
    else na "$leg" "$r" "get post" "not serving"; fi ;;
  bg-fsync-never)   # records written, never fsynced
    if start_bg "$leg" never; then wrk_leg "$leg" "$BG_PORT" "$pid" "$r" "get post"; stop_pid "$pid"
    else na "$leg" "$r" "get post" "not serving"; fi ;;
  bg-geo-mmdb)      # no override: the vendor address is looked up in a mkmmdb database
    if [ -n "$GEOIP_TEST_DB" ] && start_bg "$leg" batch all "[]" "$GEOIP_TEST_DB"; then
      wrk_leg "$leg" "$BG_PORT" "$pid" "$r" "get post"; stop_pid "$pid"
    else na "$leg" "$r" "get post" "not serving (or no mkmmdb)"; fi ;;
  bg-classify-iban) # detectors: [iban] — one detector (an empty list means all: classification
                    # cannot be switched off); the JSON body is still tokenized
    if start_bg "$leg" batch "[iban]"; then wrk_leg "$leg" "$BG_PORT" "$pid" "$r" "get post"; stop_pid "$pid"
    else na "$leg" "$r" "get post" "not serving"; fi ;;
  h2-nginx)
    render nginx-h2.conf.tmpl "$DIR/nginx-h2.conf" "$NGINX_H2_PORT"
    $PROXY_CPU "$NGINX" -p "$DIR" -c "$DIR/nginx-h2.conf" -e "$DIR/nginx-h2.error.log" >"$DIR/nginx-h2.out" 2>&1 &
    pid=$!; PIDS="$PIDS $pid"
    if wait_port "$NGINX_H2_PORT" && check_200_h2 "$NGINX_H2_PORT"; then h2_leg "$leg" "$NGINX_H2_PORT" "$pid" "$r"
    else na "$leg" "$r" h2 "did not start"; fi
    stop_pid "$pid" ;;
  h2-bordergate)
    if start_bg "$leg"; then
      if check_200_h2 "$BG_TLS_PORT"; then h2_leg "$leg" "$BG_TLS_PORT" "$pid" "$r"
      else na "$leg" "$r" h2 "no h2 200 on the TLS listener"; fi
      stop_pid "$pid"
    else na "$leg" "$r" h2 "not serving"; fi ;;
  *) echo "bench: unknown leg $leg" >&2 ;;
  esac
}

# Start the upstream.
render upstream-nginx.conf.tmpl "$DIR/upstream.conf" "$UP_PORT"
$LOAD_CPU "$NGINX" -p "$DIR" -c "$DIR/upstream.conf" -e "$DIR/upstream-nginx.error.log" \
  >"$DIR/upstream.out" 2>&1 &
PIDS="$PIDS $!"
wait_port "$UP_PORT" || { echo "bench: upstream nginx did not start:" >&2; cat "$DIR"/upstream* >&2; exit 1; }

REVERSED=""
for leg in $LEGS; do REVERSED="$leg $REVERSED"; done
r=1
while [ "$r" -le "$ROUNDS" ]; do
  if [ $((r % 2)) = 1 ]; then order=$LEGS; else order=$REVERSED; fi
  for leg in $order; do run_leg "$leg" "$r"; done
  r=$((r + 1))
done

python3 - "$RES" \
  "wrk -t$THREADS -c$CONNS -d$DURATION --latency (keep-alive GET; POST of a 16 KiB JSON body via post.lua), 1 s warm-up" \
  "h2load $H2_DESC -c $H2_C -m $H2_M -t 1 over TLS (ALPN h2), 5,000-request warm-up" \
  "one worker per proxy; upstream: nginx returning 1 KiB; pinning: $PINNING; $(nproc) CPUs; $ROUNDS rounds, interleaved; $(date -u +%Y-%m-%dT%H:%MZ)" \
  >"$DIR/table.md" <<'PY'
import statistics, sys
res, wrk_cmd, h2_cmd, setup = sys.argv[1:5]
runs = {}
loads = []
for line in open(res):
    f = line.split()
    if len(f) != 12:
        continue
    leg, test, rnd = f[0], f[1], int(f[2])
    def num(s):
        try:
            return float(s)
        except ValueError:
            return None
    runs.setdefault((leg, test), []).append(dict(round=rnd, rps=num(f[3]), p50=num(f[4]), p99=num(f[5]),
        mean=num(f[6]), max=num(f[7]), rss=num(f[8]), errs=int(f[9]), load=num(f[10]), cpu=num(f[11])))
    if num(f[10]) is not None:
        loads.append(num(f[10]))

def med(leg, test, key):
    v = [r[key] for r in runs.get((leg, test), []) if r[key] is not None]
    return statistics.median(v) if v else None

def peak(leg, test, key):
    v = [r[key] for r in runs.get((leg, test), []) if r[key] is not None]
    return max(v) if v else None

def spread(leg, test):
    v = [r["rps"] for r in runs.get((leg, test), []) if r["rps"] is not None]
    if not v:
        return "n/a"
    return "%s–%s" % (fmt(min(v), 0), fmt(max(v), 0))

def fmt(x, d=2):
    if x is None:
        return "n/a"
    return ("{:,.%df}" % d).format(x)

def errs(leg, test):
    return str(sum(r["errs"] for r in runs.get((leg, test), [])))

def ratio(a, b):
    return "n/a" if a is None or b is None or b == 0 else "%.2f" % (a / b)

def paired(leg_a, leg_b, test):
    """median over rounds of rps(a)/rps(b), rounds paired by number"""
    a = {r["round"]: r["rps"] for r in runs.get((leg_a, test), []) if r["rps"]}
    b = {r["round"]: r["rps"] for r in runs.get((leg_b, test), []) if r["rps"]}
    v = [a[k] / b[k] for k in a if k in b]
    return (statistics.median(v), min(v), max(v)) if v else None

print(wrk_cmd + ";")
print(h2_cmd + ";")
print(setup + ".")
if loads:
    print("Load average (1 min) at the start of each measured run: %.2f–%.2f (median %.2f)."
          % (min(loads), max(loads), statistics.median(loads)))
print()
print("### HTTP/1.1 (wrk)")
print()
print("| proxy | test | requests/s (median) | spread (min–max) | p50 ms | p99 ms | CPU µs/request | peak RSS MiB | errors |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for leg in ("nginx", "haproxy", "bordergate", "bg-fsync-never", "bg-geo-mmdb", "bg-classify-iban"):
    for t in ("get", "post"):
        if (leg, t) not in runs:
            continue
        rss = peak(leg, t, "rss")
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (leg, t, fmt(med(leg, t, "rps"), 0), spread(leg, t),
              fmt(med(leg, t, "p50")), fmt(med(leg, t, "p99")), fmt(med(leg, t, "cpu"), 1),
              fmt(rss / 1024 if rss else None, 1), errs(leg, t)))
print()
print("| ratio | test | requests/s (medians) | requests/s per round (median, range) | p99 | CPU per request |")
print("|---|---|---:|---:|---:|---:|")
for t in ("get", "post"):
    for other, label in (("haproxy", "bordergate/HAProxy"), ("nginx", "bordergate/nginx")):
        # rounds paired by number: each round runs the legs back to back (order reversed every
        # other round), so a per-round ratio is less exposed to the host drifting over the run
        p = paired("bordergate", other, t)
        print("| %s | %s | %s | %s | %s | %s |" % (label, t, ratio(med("bordergate", t, "rps"), med(other, t, "rps")),
              "n/a" if not p else "%.2f (%.2f–%.2f)" % p,
              ratio(med("bordergate", t, "p99"), med(other, t, "p99")),
              ratio(med("bordergate", t, "cpu"), med(other, t, "cpu"))))
if ("h2-bordergate", "h2") in runs or ("h2-nginx", "h2") in runs:
    print()
    print("### HTTP/2 (h2load, TLS)")
    print()
    print("| proxy | requests/s (median) | spread (min–max) | mean ms | max ms | p50 ms | p99 ms | peak RSS MiB | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for leg in ("h2-nginx", "h2-bordergate"):
        if (leg, "h2") not in runs:
            continue
        rss = peak(leg, "h2", "rss")
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (leg[3:], fmt(med(leg, "h2", "rps"), 0), spread(leg, "h2"),
              fmt(med(leg, "h2", "mean")), fmt(peak(leg, "h2", "max")), fmt(med(leg, "h2", "p50")),
              fmt(med(leg, "h2", "p99")), fmt(rss / 1024 if rss else None, 1), errs(leg, "h2")))
    p = paired("h2-bordergate", "h2-nginx", "h2")
    print()
    print("bordergate/nginx over h2: requests/s %s (medians), per-round %s; p99 %s."
          % (ratio(med("h2-bordergate", "h2", "rps"), med("h2-nginx", "h2", "rps")),
             "n/a" if not p else "%.2f (%.2f–%.2f)" % p,
             ratio(med("h2-bordergate", "h2", "p99"), med("h2-nginx", "h2", "p99"))))
print()
print("### Cost of one feature (bordergate, everything else equal)")
print()
print("| feature | test | on: requests/s | off: requests/s | on/off (per-round median, range) | cost | target | met |")
print("|---|---|---:|---:|---:|---:|---|---|")
for feat, on, off, tests, target in (
        ("records fsync batch vs never", "bordergate", "bg-fsync-never", ("get", "post"), 5.0),
        ("geo: mmdb lookup vs override", "bg-geo-mmdb", "bordergate", ("get", "post"), 3.0),
        ("classification all vs iban only", "bordergate", "bg-classify-iban", ("get", "post"), None)):
    for t in tests:
        if (on, t) not in runs or (off, t) not in runs:
            continue
        p = paired(on, off, t)
        if p:
            cost = (1 - p[0]) * 100
            # the paired ratio must be resolved better than the target: a range wider than the
            # target (in either direction) means the machine's noise hides the feature's cost
            noise = (p[2] - p[1]) * 100
            if target is None:
                met = "n/a"
            elif noise > target:
                met = "unresolved (range %.0f%% > target)" % noise
            else:
                met = "yes" if cost <= target else "no"
            print("| %s | %s | %s | %s | %.3f (%.3f–%.3f) | %+.1f%% | %s | %s |" % (feat, t, fmt(med(on, t, "rps"), 0),
                  fmt(med(off, t, "rps"), 0), p[0], p[1], p[2], cost, "≤ %g%%" % target if target else "—", met))
print()
print("CPU µs/request is the proxy's user + system time (all its threads and processes) over the measured run"
      " divided by the requests wrk completed (medians over rounds).")
print("peak RSS is the largest VmHWM over the rounds; errors = non-2xx + socket errors (h2: failed/errored/timed-out"
      " streams + non-2xx), summed over rounds; cost = 1 − on/off (positive: the feature costs throughput).")
PY
cat "$DIR/table.md"
[ -n "${BENCH_OUT:-}" ] && cp "$DIR/table.md" "$BENCH_OUT"
[ -n "${BENCH_RAW:-}" ] && cp "$RES" "$BENCH_RAW"
exit 0
