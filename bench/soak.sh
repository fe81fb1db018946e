#!/bin/sh
# soak.sh — bounded operations measurements for issue 9 (not part of `make test`; stops by itself).
# On loopback: Debian's nginx as the vendor (on 127.0.0.1 = DE and 127.0.0.3 = US in a test GeoIP
# database), bordergate in front with three vendors (allowed domestic, US without basis: blocked
# 451, US without basis and on_violation: encrypt: sealed and forwarded). Three phases:
#   1. reloads: a wrk GET run of RELOAD_SECONDS (60) with RELOADS (20) SIGHUPs spread over it,
#      alternating two configs; prints wrk's non-2xx and socket errors and the reload counters;
#   2. slow connections: wrk baseline req/s (SLOW_WRK_SECONDS, 10), then the same wrk run while
#      SLOW_CONNS (2000) connections each send one header byte per second (re-opened when the
#      gateway closes them at header_timeout); prints both req/s and the ratio (target >= 0.90);
#   3. soak: SOAK_SECONDS (300) of mixed traffic (HTTP/1.1 with wrk: allowed GET, blocked POST,
#      encrypted POST; HTTP/2 with h2load beside it: allowed GET, encrypted POST) with
#      the gateway's RSS sampled every 10 s; prints the series, statuses, and the growth after
#      warm-up (WARMUP_SECONDS, 60). Rotated record files are deleted as it goes (disk bounded).
#   4. large bodies: BIG_SECONDS (20) of wrk -cBIG_CONNS (100) POSTs of 512 KiB and 4 MiB beside
#      h2load 4 MiB uploads; prints the gateway peak RSS against the bound the limits set.
# Env also: BG_BUILD (build) WRK_CONNS (50) WORKERS (1) BENCH_KEEP (keep the temp dir).
# Everything it starts is stopped on exit. Needs: wrk, nginx, python3, curl (apt-get when missing).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BG_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN="$BUILD/bordergate"
MKMMDB="$BUILD/tests/tools/mkmmdb"
RELOAD_SECONDS=${RELOAD_SECONDS:-60}
RELOADS=${RELOADS:-20}
SLOW_CONNS=${SLOW_CONNS:-2000}
SLOW_WRK_SECONDS=${SLOW_WRK_SECONDS:-10}
SOAK_SECONDS=${SOAK_SECONDS:-300}
WARMUP_SECONDS=${WARMUP_SECONDS:-60}
BIG_SECONDS=${BIG_SECONDS:-20}
BIG_CONNS=${BIG_CONNS:-100}
CONNS=${WRK_CONNS:-50}
WORKERS=${WORKERS:-1}

BG_TAG=soak
. "$(dirname "$0")/lib.sh"
need wrk wrk
need nginx nginx-light
need python3 python3
need curl curl
need h2load nghttp2-client
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$BIN" ] || { echo "soak: $BIN is not built (make)" >&2; exit 1; }
[ -x "$MKMMDB" ] || { echo "soak: $MKMMDB is not built (make)" >&2; exit 1; }

bench_dir
ulimit -n 65536 2>/dev/null || ulimit -n 20000 2>/dev/null || true

set -- $(free_ports 3)
UP_PORT=$1 BG_PORT=$2 ADMIN_PORT=$3

metric() { # name{labels} → value (0 when absent)
  curl -s -m 5 "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v m="$1" 'index($0, m" ") == 1 {print $2; f=1} END {if (!f) print 0}'
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
wrk_errors() { # wrk output file → "non2xx sockerr"
  n=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$1")
  s=$(awk '/Socket errors:/ {gsub(",",""); print $4+$6+$8+$10}' "$1")
  echo "${n:-0} ${s:-0}"
}
rps_of() { awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$1"; }

# --- the vendor: nginx on 127.0.0.1 and 127.0.0.3, a 1 KiB answer ------------------------------
BODY_1K=$(head -c 1023 /dev/zero | tr '\0' x)
cat >"$DIR/upstream.conf" <<EOF
daemon off;
worker_processes 1;
pid $DIR/upstream.pid;
error_log $DIR/upstream.error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $DIR/ub; proxy_temp_path $DIR/up; fastcgi_temp_path $DIR/uf;
  uwsgi_temp_path $DIR/uu; scgi_temp_path $DIR/us;
  keepalive_requests 10000000;
  client_body_buffer_size 64k;
  server {
    listen 127.0.0.1:$UP_PORT backlog=4096;
    listen 127.0.0.3:$UP_PORT backlog=4096;
    location / { default_type text/plain; return 200 "$BODY_1K"; }
  }
}
EOF
"$NGINX" -p "$DIR" -c "$DIR/upstream.conf" -e "$DIR/upstream.error.log" >"$DIR/upstream.out" 2>&1 &
PIDS="$PIDS $!"
wait_port "$UP_PORT" || { echo "soak: nginx did not start" >&2; cat "$DIR/upstream.error.log" >&2; exit 1; }

# --- the gateway ----------------------------------------------------------------------------------
"$MKMMDB" "$DIR/geo.mmdb" --schema dbip 127.0.0.1/32=DE 127.0.0.3/32=US >/dev/null ||
  { echo "soak: mkmmdb failed" >&2; exit 1; }
sh "$ROOT/certs/gen-key.sh" "$DIR/keys" k1 >/dev/null 2>&1 || { echo "soak: gen-key.sh failed" >&2; exit 1; }
mkdir -p "$DIR/records"
config() { # extra vendor name (or empty) → the config on stdout
  cat <<EOF
jurisdiction: EEA
mode: enforce
listen:
  - address: "127.0.0.1:$BG_PORT"
admin:
  address: "127.0.0.1:$ADMIN_PORT"
workers: $WORKERS
limits:
  header_timeout: 5s
  idle_timeout: 60s
  max_connections: 20000
geoip:
  database: "$DIR/geo.mmdb"
encryption:
  keys: "$DIR/keys"
  active_key: k1
records:
  path: "$DIR/records/transfers.jsonl"
  rotate_size: 64MiB
  fsync: batch
vendors:
  - name: soak-de
    entity: { name: "Soak GmbH", country: DE }
    role: processor
    hosts: [de.soak.test]
    upstream: { addresses: [127.0.0.1], port: $UP_PORT, tls: false }
    regions: [EEA]
    categories: [identifier, device, location, usage, content, credential, financial]
    on_violation: block
  - name: soak-us-block
    entity: { name: "Soak Inc.", country: US }
    role: processor
    hosts: [block.soak.test]
    upstream: { addresses: [127.0.0.3], port: $UP_PORT, tls: false }
    regions: [US]
    categories: [identifier, device, usage]
    basis: none
    on_violation: block
  - name: soak-us-encrypt
    entity: { name: "Soak Crypt Inc.", country: US }
    role: processor
    hosts: [encrypt.soak.test]
    upstream: { addresses: [127.0.0.3], port: $UP_PORT, tls: false }
    regions: [US]
    categories: [identifier, device, usage]
    basis: none
    on_violation: encrypt
EOF
  if [ -n "$1" ]; then cat <<EOF
  - name: $1
    entity: { name: "Extra GmbH", country: DE }
    role: processor
    hosts: [$1.soak.test]
    upstream: { addresses: [127.0.0.1], port: $UP_PORT, tls: false }
    regions: [EEA]
    categories: [identifier]
    on_violation: block
EOF
  fi
}
config "" >"$DIR/bordergate.yaml"
"$BIN" check -c "$DIR/bordergate.yaml" >"$DIR/check.out" 2>&1 ||
  { echo "soak: config invalid:" >&2; cat "$DIR/check.out" >&2; exit 1; }
(cd "$ROOT" && exec "$BIN" --log-level warn run -c "$DIR/bordergate.yaml") >"$DIR/bordergate.out" 2>&1 &
GW=$!
PIDS="$PIDS $GW"
wait_port "$BG_PORT" || { echo "soak: gateway did not start" >&2; tail "$DIR/bordergate.out" >&2; exit 1; }
for h in de block encrypt; do
  st=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H "Host: $h.soak.test" -H 'Content-Type: application/json' \
       --data '{"email":"jane@example.com"}' "http://127.0.0.1:$BG_PORT/p")
  echo "soak: POST with an e-mail to $h.soak.test -> $st"
done

cat >"$DIR/mixed.lua" <<'EOF'
-- wrk: rotate allowed GET / blocked POST (451) / encrypted POST; count statuses per thread.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  counts = {}
  n = 0
  local body = '{"user":{"email":"jane.doe@example.com","name":"Jane Doe"},"event":"checkout","amount":1999}'
  local jh = { ["Content-Type"] = "application/json" }
  reqs = {
    wrk.format("GET", "/catalog?page=2", { ["Host"] = "de.soak.test" }),
    wrk.format("POST", "/events", { ["Host"] = "block.soak.test", ["Content-Type"] = "application/json" }, body),
    wrk.format("POST", "/events", { ["Host"] = "encrypt.soak.test", ["Content-Type"] = "application/json" }, body),
  }
end
function request()
  n = n + 1
  return reqs[(n % 3) + 1]
end
function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do total[k] = (total[k] or 0) + v end
  end
  local keys = {}
  for k in pairs(total) do table.insert(keys, k) end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do table.insert(out, k .. "=" .. total[k]) end
  io.write("statuses: " .. table.concat(out, " ") .. "\n")
end
EOF

echo "soak: gateway pid $GW, dir $DIR, workers $WORKERS, wrk -c$CONNS"

# --- 1. reloads under wrk -------------------------------------------------------------------------
echo
echo "## 1. $RELOADS reloads during a ${RELOAD_SECONDS}s wrk run"
ok0=$(metric 'bordergate_config_reloads_total{result="success"}')
wrk -t2 -c"$CONNS" -d"${RELOAD_SECONDS}s" -H "Host: de.soak.test" "http://127.0.0.1:$BG_PORT/" >"$DIR/wrk-reload.txt" 2>&1 &
WRK=$!
gap=$(awk -v s="$RELOAD_SECONDS" -v n="$RELOADS" 'BEGIN {printf "%.2f", s / (n + 1)}')
i=0
while [ $i -lt "$RELOADS" ]; do
  sleep "$gap"
  i=$((i + 1))
  if [ $((i % 2)) = 1 ]; then config "extra$i" >"$DIR/next.yaml"; else config "" >"$DIR/next.yaml"; fi
  mv "$DIR/next.yaml" "$DIR/bordergate.yaml"
  kill -HUP "$GW"
done
wait "$WRK"
sleep 0.5
ok1=$(metric 'bordergate_config_reloads_total{result="success"}')
set -- $(wrk_errors "$DIR/wrk-reload.txt")
echo "requests: $(awk '/requests in/ {print $1}' "$DIR/wrk-reload.txt")  req/s: $(rps_of "$DIR/wrk-reload.txt")"
echo "reloads sent: $RELOADS  reloads succeeded: $(awk -v a="$ok0" -v b="$ok1" 'BEGIN {print b - a}')"
echo "non-2xx: $1  socket errors: $2   (target: 0 and 0)"
RELOAD_NON2XX=$1 RELOAD_SOCKERR=$2

# --- 2. slow connections --------------------------------------------------------------------------
echo
echo "## 2. $SLOW_CONNS slow connections (one header byte per second) vs wrk"
wrk -t1 -c"$CONNS" -d2s -H "Host: de.soak.test" "http://127.0.0.1:$BG_PORT/" >/dev/null 2>&1
wrk -t1 -c"$CONNS" -d"${SLOW_WRK_SECONDS}s" -H "Host: de.soak.test" "http://127.0.0.1:$BG_PORT/" >"$DIR/wrk-base.txt" 2>&1
BASE=$(rps_of "$DIR/wrk-base.txt")
SLOW_TIME=$((SLOW_WRK_SECONDS + 12))
python3 - "$BG_PORT" "$SLOW_CONNS" "$SLOW_TIME" >"$DIR/slow.txt" 2>&1 <<'PY' &
import socket, sys, time
port, n, dur = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
head = b"GET /slow HTTP/1.1\r\nHost: de.soak.test\r\nX-Slow: " + b"s" * 4096
def conn():
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.setblocking(False)
    return s
socks, pos = [], []
t0 = time.monotonic()
for _ in range(n):
    socks.append(conn()); pos.append(0)
opened, closed, peak = n, 0, n
while time.monotonic() - t0 < dur:
    tick = time.monotonic()
    for i, s in enumerate(socks):
        try:
            s.send(head[pos[i] % len(head):pos[i] % len(head) + 1]); pos[i] += 1
            try:
                if s.recv(4096) is not None:
                    raise ConnectionResetError
            except BlockingIOError:
                continue
        except (OSError, ConnectionResetError):
            s.close(); closed += 1
            try:
                socks[i] = conn(); pos[i] = 0; opened += 1
            except OSError:
                pass
    time.sleep(max(0, 1.0 - (time.monotonic() - tick)))
print("slow connections: %d open at a time, %d opened in total, %d closed by the gateway" % (n, opened, closed))
PY
SLOWPY=$!
PIDS="$PIDS $SLOWPY"
sleep 6  # all connected and past their first bytes
SLOW_OPEN=$(ls "/proc/$GW/fd" 2>/dev/null | wc -l)
wrk -t1 -c"$CONNS" -d"${SLOW_WRK_SECONDS}s" -H "Host: de.soak.test" "http://127.0.0.1:$BG_PORT/" >"$DIR/wrk-slow.txt" 2>&1
SLOW=$(rps_of "$DIR/wrk-slow.txt")
wait "$SLOWPY"
set -- $(wrk_errors "$DIR/wrk-slow.txt")
echo "baseline req/s: $BASE   with slow connections: $SLOW   ratio: $(awk -v a="$SLOW" -v b="$BASE" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')   (target >= 0.90)"
echo "gateway fds while slow clients connected: $SLOW_OPEN   wrk non-2xx: $1  socket errors: $2"
cat "$DIR/slow.txt"

# --- 3. soak --------------------------------------------------------------------------------------
echo
echo "## 3. soak: ${SOAK_SECONDS}s of mixed traffic (HTTP/1.1 allowed GET, blocked POST, encrypted POST; HTTP/2 allowed GET, encrypted POST), RSS every 10s"
wrk -t2 -c"$CONNS" -d"${SOAK_SECONDS}s" -s "$DIR/mixed.lua" "http://127.0.0.1:$BG_PORT/" >"$DIR/wrk-soak.txt" 2>&1 &
WRK=$!
# HTTP/2 beside it (h2c by prior knowledge): allowed GETs, and encrypted POSTs carrying an e-mail.
printf '{"email":"jane@example.com","note":"soak"}' >"$DIR/h2-post.json"
h2load -D "$SOAK_SECONDS" -c 4 -m 8 -H ':authority: de.soak.test' "http://127.0.0.1:$BG_PORT/h2" >"$DIR/h2-get.txt" 2>&1 &
H2A=$!
h2load -D "$SOAK_SECONDS" -c 2 -m 4 -H ':authority: encrypt.soak.test' -H 'content-type: application/json' \
  -d "$DIR/h2-post.json" "http://127.0.0.1:$BG_PORT/h2" >"$DIR/h2-post.txt" 2>&1 &
H2B=$!
t=0
SERIES=""
printf "t_s rss_kib\n"
printf "%d %d\n" 0 "$(rss_kb "$GW")"
SERIES="0:$(rss_kb "$GW")"
while kill -0 "$WRK" 2>/dev/null; do
  sleep 10
  t=$((t + 10))
  kill -0 "$WRK" 2>/dev/null || break
  r=$(rss_kb "$GW")
  printf "%d %d\n" "$t" "$r"
  SERIES="$SERIES $t:$r"
  # keep the disk bounded: the gateway rotates by size, we drop what it rotated
  find "$DIR/records" -name 'transfers.jsonl?*' -delete 2>/dev/null
done
wait "$WRK"
wait "$H2A" "$H2B" 2>/dev/null
echo "$SERIES" | tr ' ' '\n' | awk -F: -v w="$WARMUP_SECONDS" '
  $1 >= w && !b { b = $2; bt = $1 }  { last = $2; lt = $1; if ($2 > max) max = $2 }
  END { if (b) printf "RSS after warm-up (t=%ds): %d KiB; last (t=%ds): %d KiB; max %d KiB; growth %.1f%% (target <= 5%%)\n",
                       bt, b, lt, last, max, (last - b) * 100.0 / b;
        else print "soak shorter than the warm-up: no growth figure" }'
echo "wrk: $(awk '/requests in/ {print $1, "requests,"}' "$DIR/wrk-soak.txt") $(rps_of "$DIR/wrk-soak.txt") req/s"
grep '^statuses:' "$DIR/wrk-soak.txt" || true
set -- $(wrk_errors "$DIR/wrk-soak.txt")
echo "socket errors: $2  (non-2xx $1 includes the intended 451s)"
for f in h2-get h2-post; do
  echo "h2load $f: $(grep -E '^requests:' "$DIR/$f.txt")  $(grep -E '^status codes:' "$DIR/$f.txt")"
done
# --- 4. large bodies ------------------------------------------------------------------------------
echo
echo "## 4. a flood of large bodies: ${BIG_SECONDS}s, wrk -c$BIG_CONNS POSTs of 512 KiB (held, scanned, forwarded) and 4 MiB (over max_body_scan: blocked), h2load 4 MiB uploads beside it"
cat >"$DIR/big.lua" <<'EOF'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  counts = {}
  n = 0
  local small = string.rep("lorem ipsum dolor sit amet ", 19418)   -- 512 KiB of text
  local big = string.rep("x", 4 * 1024 * 1024)
  reqs = {
    wrk.format("POST", "/upload", { ["Host"] = "de.soak.test", ["Content-Type"] = "text/plain" }, small),
    wrk.format("POST", "/upload", { ["Host"] = "de.soak.test", ["Content-Type"] = "text/plain" }, big),
  }
end
function request() n = n + 1; return reqs[(n % 2) + 1] end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do for k, v in pairs(t:get("counts")) do total[k] = (total[k] or 0) + v end end
  local out = {}
  for k, v in pairs(total) do table.insert(out, k .. "=" .. v) end
  table.sort(out)
  io.write("statuses: " .. table.concat(out, " ") .. "\n")
end
EOF
head -c 4194304 /dev/zero | tr '\0' y >"$DIR/big.bin"
HWM0=$(awk '/^VmHWM:/ {print $2}' "/proc/$GW/status")
wrk -t2 -c"$BIG_CONNS" -d"${BIG_SECONDS}s" -s "$DIR/big.lua" "http://127.0.0.1:$BG_PORT/" >"$DIR/wrk-big.txt" 2>&1 &
WB=$!
h2load -D "$BIG_SECONDS" -c 4 -m 16 -H ':authority: de.soak.test' -H 'content-type: text/plain' \
  -d "$DIR/big.bin" "http://127.0.0.1:$BG_PORT/h2big" >"$DIR/h2-big.txt" 2>&1 &
HB=$!
PEAK=0
while kill -0 "$WB" 2>/dev/null; do
  r=$(rss_kb "$GW"); [ "$r" -gt "$PEAK" ] && PEAK=$r
  sleep 1
done
wait "$WB" "$HB" 2>/dev/null
HWM1=$(awk '/^VmHWM:/ {print $2}' "/proc/$GW/status")
echo "wrk: $(awk '/requests in/ {print $1, "requests,", $5, "read"}' "$DIR/wrk-big.txt")  $(grep '^statuses:' "$DIR/wrk-big.txt")"
echo "h2load: $(grep -E '^requests:' "$DIR/h2-big.txt")  $(grep -E '^status codes:' "$DIR/h2-big.txt")"
echo "gateway RSS: peak sampled $PEAK KiB; VmHWM before $HWM0 KiB, after $HWM1 KiB; after the flood $(rss_kb "$GW") KiB"
echo "held-body bound: ($BIG_CONNS HTTP/1.1 connections + 4 h2 connections x min(16 streams, max_body_scan_per_connection)) x max_body_scan"
kill -0 "$GW" 2>/dev/null && echo "gateway alive at the end" || echo "GATEWAY DIED (see $DIR/bordergate.out)"
kill "$GW"
i=0; while kill -0 "$GW" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
wait "$GW" 2>/dev/null; echo "gateway exit status after SIGTERM: $?"
tail -3 "$DIR/bordergate.out" | sed 's/^/gateway log: /'
