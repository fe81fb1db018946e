#!/bin/sh
# leakcheck.sh — the gateway under `valgrind --leak-check=full` through a short run of everything it
# does (issue 9; not part of `make test`; stops by itself). On loopback: Debian's nginx as the vendor
# (plain, and TLS offering h2 and http/1.1 with certificates made here: the gateway speaks HTTP/2 to it), bordergate on a plain and a
# TLS listener with vendors that allow, block (451) and encrypt; traffic from curl (HTTP/1.1, h2 over
# TLS), h2load (h2c) and raw slow/aborted clients; two reloads (one bad) and SIGUSR1 in between;
# then SIGTERM. Prints valgrind's error and leak summary and exits non-zero when valgrind reports
# an error or a definite/indirect leak, or the gateway does not exit 0.
# Env: BG_BUILD (build), REQUESTS (200 per kind), BENCH_KEEP (keep the temp dir).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BG_TAG=leakcheck
. "$ROOT/bench/lib.sh"
BUILD=${BG_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN="$BUILD/bordergate"
MKMMDB="$BUILD/tests/tools/mkmmdb"
N=${REQUESTS:-200}
need valgrind valgrind
need nginx nginx-light
need curl curl
need h2load nghttp2-client
need python3 python3
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$BIN" ] && [ -x "$MKMMDB" ] || { echo "leakcheck: build first (make)" >&2; exit 1; }

bench_dir
set -- $(free_ports 5)
UP_PORT=$1 UP_TLS_PORT=$2 BG_PORT=$3 BG_TLS_PORT=$4 ADMIN_PORT=$5
sh "$ROOT/certs/gen-certs.sh" "$DIR/certs" || exit 1
sh "$ROOT/certs/gen-key.sh" "$DIR/keys" k1 >/dev/null 2>&1 || exit 1
"$MKMMDB" "$DIR/geo.mmdb" --schema dbip 127.0.0.1/32=DE 127.0.0.3/32=US >/dev/null || exit 1
mkdir -p "$DIR/records"

cat >"$DIR/upstream.conf" <<EOF
daemon off;
worker_processes 1;
pid $DIR/upstream.pid;
error_log $DIR/upstream.error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $DIR/ub; proxy_temp_path $DIR/up; fastcgi_temp_path $DIR/uf;
  uwsgi_temp_path $DIR/uu; scgi_temp_path $DIR/us;
  server {
    listen 127.0.0.1:$UP_PORT;
    listen 127.0.0.3:$UP_PORT;
    location / { default_type application/json; return 200 '{"ok":true}'; }
  }
  server {
    listen 127.0.0.1:$UP_TLS_PORT ssl http2;
    ssl_certificate $DIR/certs/vendor.crt;
    ssl_certificate_key $DIR/certs/vendor.key;
    location / { default_type application/json; return 200 '{"ok":"tls"}'; }
  }
}
EOF
"$NGINX" -p "$DIR" -c "$DIR/upstream.conf" -e "$DIR/upstream.error.log" >"$DIR/upstream.out" 2>&1 &
PIDS="$PIDS $!"
wait_port "$UP_PORT" && wait_port "$UP_TLS_PORT" || { echo "leakcheck: nginx did not start" >&2; cat "$DIR/upstream.error.log" >&2; exit 1; }

config() { # extra vendor name (or empty)
  cat <<EOF
jurisdiction: EEA
listen:
  - address: "127.0.0.1:$BG_PORT"
  - address: "127.0.0.1:$BG_TLS_PORT"
    tls: { certificate: "$DIR/certs/gateway.crt", key: "$DIR/certs/gateway.key" }
admin: { address: "127.0.0.1:$ADMIN_PORT" }
workers: 2
limits: { header_timeout: 2s, upstream_timeout: 5s, requests_per_second_per_caller: 100000 }
geoip: { database: "$DIR/geo.mmdb" }
encryption: { keys: "$DIR/keys", active_key: k1 }
records: { path: "$DIR/records/transfers.jsonl", rotate_size: 1MiB, fsync: batch }
vendors:
  - name: lk-plain
    entity: { name: "Plain GmbH", country: DE }
    role: processor
    hosts: [plain.lk.test]
    upstream: { addresses: [127.0.0.1], port: $UP_PORT, tls: false }
    regions: [EEA]
    on_violation: block
  - name: lk-tls
    entity: { name: "TLS GmbH", country: DE }
    role: processor
    hosts: [api.vendor.test]
    upstream: { addresses: [127.0.0.1], port: $UP_TLS_PORT, ca: "$DIR/certs/ca.crt" }
    regions: [EEA]
    on_violation: block
  - name: lk-block
    entity: { name: "Block Inc.", country: US }
    role: processor
    hosts: [block.lk.test]
    upstream: { addresses: [127.0.0.3], port: $UP_PORT, tls: false }
    regions: [US]
    basis: none
    on_violation: block
  - name: lk-enc
    entity: { name: "Enc Inc.", country: US }
    role: processor
    hosts: [enc.lk.test]
    upstream: { addresses: [127.0.0.3], port: $UP_PORT, tls: false }
    regions: [US]
    basis: none
    on_violation: encrypt
EOF
  [ -n "$1" ] && cat <<EOF
  - name: $1
    entity: { name: "Extra GmbH", country: DE }
    role: processor
    hosts: [$1.lk.test]
    upstream: { addresses: [127.0.0.1], port: $UP_PORT, tls: false }
    regions: [EEA]
    on_violation: block
EOF
  return 0
}
config "" >"$DIR/bordergate.yaml"
"$BIN" check -c "$DIR/bordergate.yaml" >"$DIR/check.out" 2>&1 || { cat "$DIR/check.out" >&2; exit 1; }

(cd "$ROOT" && exec valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible \
   --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --num-callers=30 \
   --log-file="$DIR/valgrind.log" "$BIN" --log-level warn run -c "$DIR/bordergate.yaml") >"$DIR/bordergate.out" 2>&1 &
GW=$!
PIDS="$PIDS $GW"
i=0; until wait_port "$BG_PORT" && wait_port "$ADMIN_PORT"; do i=$((i + 1)); [ $i -lt 12 ] || { echo "leakcheck: gateway did not start" >&2; cat "$DIR/bordergate.out" "$DIR/valgrind.log" >&2; exit 1; }; done

P="http://127.0.0.1:$BG_PORT"
T="https://127.0.0.1:$BG_TLS_PORT"
JSON='{"email":"jane@example.com","card":"4111 1111 1111 1111","name":"Jane Roe"}'
codes() { sort | uniq -c | awk '{printf "%s×%s ", $2, $1}'; }
echo "leakcheck: gateway under valgrind (pid $GW), $N requests per kind"
urls() { i=0; while [ $i -lt "$N" ]; do printf 'url = "%s?i=%d"\noutput = "/dev/null"\n' "$1" $i; i=$((i + 1)); done; }
traffic() {
  urls "$P/get" >"$DIR/get.cfg"
  echo "HTTP/1.1 GET allowed:       $(curl -s -K "$DIR/get.cfg" -H 'Host: plain.lk.test' -w '%{http_code}\n' | codes)"
  echo "HTTP/1.1 POST blocked:      $(curl -s -K "$DIR/get.cfg" -H 'Host: block.lk.test' -H 'Content-Type: application/json' --data "$JSON" -w '%{http_code}\n' | codes)"
  echo "HTTP/1.1 POST encrypted:    $(curl -s -K "$DIR/get.cfg" -H 'Host: enc.lk.test' -H 'Content-Type: application/json' --data "$JSON" -w '%{http_code}\n' | codes)"
  urls "$T/tls" >"$DIR/tls.cfg"
  echo "h2 over TLS to a TLS vendor: $(curl -s --http2 --cacert "$DIR/certs/ca.crt" -K "$DIR/tls.cfg" -H 'Host: api.vendor.test' -w '%{http_code}\n' | codes)"
  echo "h2c (h2load):              $(h2load -n "$N" -c 2 -m 8 -H ':authority: plain.lk.test' "$P/h2" 2>&1 | grep -E '^status codes:')"
  echo "h2c POST (h2load):         $(printf '%s' "$JSON" >"$DIR/post.json"; h2load -n "$N" -c 2 -m 8 -H ':authority: enc.lk.test' -H 'content-type: application/json' -d "$DIR/post.json" "$P/h2" 2>&1 | grep -E '^status codes:')"
  echo "unknown host, bad request, aborted clients: $(curl -s -o /dev/null -w '%{http_code}' -H 'Host: nowhere.test' "$P/") $(printf 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' | python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$BG_PORT)); s.sendall(sys.stdin.buffer.read()); print(s.recv(100).split(b' ')[1].decode())")"
  python3 - "$BG_PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
socks = []
for i in range(20):  # slow heads, half bodies, a TLS-less hello on the plain port; then gone
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall([b"GET / HTTP/1.1\r\nHo", b"POST /x HTTP/1.1\r\nHost: plain.lk.test\r\nContent-Length: 100\r\n\r\nabc",
               b"\x16\x03\x01\x00\x05hello"][i % 3])
    socks.append(s)
time.sleep(0.5)
for s in socks:
    s.close()
PY
}
traffic
config leak-extra >"$DIR/bordergate.yaml"; kill -HUP "$GW"; sleep 3
echo "after a good reload:        $(curl -s -o /dev/null -w '%{http_code}' -H 'Host: leak-extra.lk.test' "$P/")"
echo "jurisdiction: [" >"$DIR/bordergate.yaml"; kill -HUP "$GW"; sleep 3
kill -USR1 "$GW"; sleep 1
config leak-extra >"$DIR/bordergate.yaml"
traffic
sleep 3  # a slow head's header_timeout passes
kill -TERM "$GW"
i=0; while kill -0 "$GW" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
wait "$GW"; RC=$?
echo "gateway (valgrind) exit status: $RC (0 = no valgrind error, 99 = valgrind found one)"
echo "records written: $(cat "$DIR"/records/transfers.jsonl* | wc -l); vendor side: $(cat "$DIR"/records/transfers.jsonl* | grep -o '"upstream_protocol":"[^"]*"' | sort | uniq -c | tr -s ' \n' ' ')"
grep -E "ERROR SUMMARY|total heap usage|All heap blocks|definitely lost|indirectly lost|possibly lost|still reachable|suppressed:" "$DIR/valgrind.log" | sed 's/^==[0-9]*== */valgrind: /'
if [ "$RC" != 0 ]; then
  echo "leakcheck: FAILED; valgrind log follows" >&2
  grep -v "^==[0-9]*== *$" "$DIR/valgrind.log" | head -200 >&2
  exit 1
fi
echo "leakcheck: clean"
