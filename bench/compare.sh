#!/bin/sh
# compare.sh — bordergate side by side with nginx and HAProxy as reverse proxies (issue 3).
# On loopback: one upstream (nginx, 1 KiB body), then each proxy with one worker in front of it,
# driven by the same wrk settings: keep-alive GET, and POST of a 16 KiB JSON body. Prints a
# Markdown table (requests/s, p50, p99, peak RSS = VmHWM summed over the proxy's processes) and
# the ratios bordergate/HAProxy and bordergate/nginx. A leg that cannot run prints "n/a".
# Env: BENCH_DURATION (10s) BENCH_CONNECTIONS (50) BENCH_THREADS (1) BENCH_PIN (0; 1: proxy on CPU 0,
# upstream and wrk on CPU 1, when there are 2+ CPUs) BG_BUILD (build) BENCH_OUT (also write the
# table there). Installs haproxy and wrk with apt-get when missing. Everything it starts is stopped
# on exit.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
BUILD=${BG_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-50}
THREADS=${BENCH_THREADS:-1}
PIN=${BENCH_PIN:-0}

need() { # command, package
  command -v "$1" >/dev/null 2>&1 && return 0
  [ -x "/usr/sbin/$1" ] && return 0
  echo "bench: installing $2" >&2
  if [ "$(id -u)" != 0 ]; then echo "bench: not root; run: apt-get install -y $2" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "$2" >/tmp/bg-bench-deps.log 2>&1 ||
    { apt-get update >>/tmp/bg-bench-deps.log 2>&1 &&
      apt-get install -y --no-install-recommends "$2" >>/tmp/bg-bench-deps.log 2>&1; } ||
    { echo "bench: could not install $2 (see /tmp/bg-bench-deps.log)" >&2; exit 1; }
  # Debian starts the packaged service on install; the benchmark runs its own.
  (systemctl stop "$2" || service "$2" stop) >/dev/null 2>&1 || true
}
need wrk wrk
need haproxy haproxy
need nginx nginx-light
need python3 python3
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

DIR=$(mktemp -d "${TMPDIR:-/tmp}/bg-bench.XXXXXX")
PIDS=""
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null; done
  sleep 0.3
  for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
  [ -n "${BENCH_KEEP:-}" ] || rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ports=$(python3 -c 'import socket
ss=[socket.socket() for _ in range(5)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))')
set -- $ports
UP_PORT=$1 NGINX_PORT=$2 HAPROXY_PORT=$3 BG_PORT=$4 BG_ADMIN=$5

if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  PROXY_CPU="taskset -c 0"; LOAD_CPU="taskset -c 1"; PINNING="proxy on CPU 0; upstream and wrk on CPU 1"
else
  PROXY_CPU=""; LOAD_CPU=""; PINNING="none"
fi

BODY_1K=$(head -c 1023 /dev/zero | tr '\0' x)
GEOIP_DB="$ROOT/config/geoip/dbip-country-lite.mmdb"
if [ ! -f "$GEOIP_DB" ] && [ -x "$BUILD/tests/tools/mkmmdb" ]; then
  GEOIP_DB="$DIR/bench.mmdb"
  "$BUILD/tests/tools/mkmmdb" "$GEOIP_DB" --schema dbip 127.0.0.1/32=DE >/dev/null 2>&1
fi
mkdir -p "$DIR/records"

render() { # template, output
  sed -e "s|@DIR@|$DIR|g" -e "s|@UPSTREAM_PORT@|$UP_PORT|g" -e "s|@BODY_1K@|$BODY_1K|g" \
      -e "s|@ADMIN_PORT@|$BG_ADMIN|g" -e "s|@GEOIP_DB@|$GEOIP_DB|g" -e "s|@PORT@|$3|g" \
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

wait_port() { # port → 0 when it accepts within 5 s
  python3 - "$1" <<'PY'
import socket, sys, time
end = time.time() + 5
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close(); sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PY
}

hwm_kb() { # pid → VmHWM summed over the pid and its children, in kB
  total=0
  for p in $1 $(pgrep -P "$1" 2>/dev/null); do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

to_ms() { # wrk latency like 512.00us / 1.23ms / 1.01s → ms
  echo "$1" | awk '{ v=$1; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) }
                     else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 } ; printf "%.2f", v }'
}

# Start the upstream.
render upstream-nginx.conf.tmpl "$DIR/upstream.conf" "$UP_PORT"
$LOAD_CPU "$NGINX" -p "$DIR" -c "$DIR/upstream.conf" -e "$DIR/upstream-nginx.error.log" \
  >"$DIR/upstream.out" 2>&1 &
PIDS="$PIDS $!"
wait_port "$UP_PORT" || { echo "bench: upstream nginx did not start:" >&2; cat "$DIR"/upstream* >&2; exit 1; }

ROWS=""
row() { ROWS="$ROWS$1
"; }

# run_leg NAME PORT PID: wrk GET and POST against PORT; appends rows; sets RPS_<NAME>_<TEST>, P99_...
run_leg() {
  name=$1 port=$2 pid=$3
  for t in get post; do
    if [ "$t" = post ]; then script="-s $DIR/post.lua"; else script=""; fi
    # 1 s warm-up, not measured
    BENCH_BODY="$DIR/body.json" $LOAD_CPU wrk -t"$THREADS" -c"$CONNS" -d1s $script \
      -H "Host: bench.test" "http://127.0.0.1:$port/" >/dev/null 2>&1
    BENCH_BODY="$DIR/body.json" $LOAD_CPU wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency $script \
      -H "Host: bench.test" "http://127.0.0.1:$port/" >"$DIR/wrk-$name-$t.txt" 2>&1
    out="$DIR/wrk-$name-$t.txt"
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    p50=$(to_ms "$(awk '$1=="50%" {print $2}' "$out")")
    p99=$(to_ms "$(awk '$1=="99%" {print $2}' "$out")")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    sockerr=$(awk '/Socket errors:/ {gsub(",",""); print $4+$6+$8+$10}' "$out")
    errs=$(( ${non2xx:-0} + ${sockerr:-0} ))
    rss=$(hwm_kb "$pid")
    rss_mib=$(awk -v k="$rss" 'BEGIN {printf "%.1f", k/1024}')
    [ -n "$rps" ] || { rps="n/a"; p50="n/a"; p99="n/a"; }
    row "| $name | $t | $rps | $p50 | $p99 | $rss_mib | $errs |"
    eval "RPS_${name}_$t=\$rps; P99_${name}_$t=\$p99"
  done
}

na_leg() { # NAME REASON
  row "| $1 | get | n/a | n/a | n/a | n/a | $2 |"
  row "| $1 | post | n/a | n/a | n/a | n/a | $2 |"
  eval "RPS_$1_get=n/a; RPS_$1_post=n/a; P99_$1_get=n/a; P99_$1_post=n/a"
}

stop_pid() { kill "$1" 2>/dev/null; i=0; while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; kill -9 "$1" 2>/dev/null; }

check_200() { # port → 0 when a GET through it answers 200
  [ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H 'Host: bench.test' "http://127.0.0.1:$1/")" = 200 ]
}

# nginx
render nginx-proxy.conf.tmpl "$DIR/nginx-proxy.conf" "$NGINX_PORT"
$PROXY_CPU "$NGINX" -p "$DIR" -c "$DIR/nginx-proxy.conf" -e "$DIR/nginx-proxy.error.log" >"$DIR/nginx-proxy.out" 2>&1 &
pid=$!; PIDS="$PIDS $pid"
if wait_port "$NGINX_PORT" && check_200 "$NGINX_PORT"; then run_leg nginx "$NGINX_PORT" "$pid"; else na_leg nginx "did not start"; fi
stop_pid "$pid"

# HAProxy
render haproxy.cfg.tmpl "$DIR/haproxy.cfg" "$HAPROXY_PORT"
$PROXY_CPU "$HAPROXY" -db -f "$DIR/haproxy.cfg" >"$DIR/haproxy.out" 2>&1 &
pid=$!; PIDS="$PIDS $pid"
if wait_port "$HAPROXY_PORT" && check_200 "$HAPROXY_PORT"; then run_leg haproxy "$HAPROXY_PORT" "$pid"; else na_leg haproxy "did not start"; fi
stop_pid "$pid"

# bordergate
render bordergate.yaml.tmpl "$DIR/bordergate.yaml" "$BG_PORT"
if [ -x "$BUILD/bordergate" ]; then
  (cd "$ROOT" && exec $PROXY_CPU "$BUILD/bordergate" --log-level warn run -c "$DIR/bordergate.yaml") \
    >"$DIR/bordergate.out" 2>&1 &
  pid=$!; PIDS="$PIDS $pid"
  if wait_port "$BG_PORT" && check_200 "$BG_PORT"; then
    run_leg bordergate "$BG_PORT" "$pid"
  else
    na_leg bordergate "not serving"
    echo "bench: bordergate did not serve; its output:" >&2; tail -5 "$DIR/bordergate.out" >&2
  fi
  stop_pid "$pid"
else
  na_leg bordergate "not built"
fi

ratio() { # a b → a/b with 2 decimals, or n/a
  case "$1$2" in *n/a*|"") echo "n/a"; return ;; esac
  awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'
}

{
  echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency (keep-alive GET; POST of a 16 KiB JSON body via post.lua),"
  echo "one worker per proxy, upstream: nginx returning 1 KiB; pinning: $PINNING; $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "| proxy | test | requests/s | p50 ms | p99 ms | peak RSS MiB | errors |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  printf '%s' "$ROWS"
  echo
  echo "| ratio | test | requests/s | p99 |"
  echo "|---|---|---:|---:|"
  for t in get post; do
    eval "b=\$RPS_bordergate_$t h=\$RPS_haproxy_$t n=\$RPS_nginx_$t"
    eval "bp=\$P99_bordergate_$t hp=\$P99_haproxy_$t np=\$P99_nginx_$t"
    echo "| bordergate/HAProxy | $t | $(ratio "$b" "$h") | $(ratio "$bp" "$hp") |"
    echo "| bordergate/nginx | $t | $(ratio "$b" "$n") | $(ratio "$bp" "$np") |"
  done
  echo
  echo "peak RSS is VmHWM after that test (cumulative per process); errors = non-2xx + socket errors."
} >"$DIR/table.md"
cat "$DIR/table.md"
[ -n "${BENCH_OUT:-}" ] && cp "$DIR/table.md" "$BENCH_OUT"
exit 0
