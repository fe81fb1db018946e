#!/bin/sh
# syscalls.sh — system calls per request of each bordergate binary on ab.sh's GET leg (the bench
# upstream nginx, one worker, wrk -t1 -c50 for 5 s): perf counts the proxy's syscall tracepoints
# for 3 s mid-run, divided by wrk's requests/s times 3.
#   sh bench/syscalls.sh BINARY...        (SYS_NOURING=1 adds `io_uring: false` to the config)
# Prints, per binary, requests/s and per request: all syscalls, then recvfrom, sendto, sendmsg,
# epoll_wait, io_uring_enter and the rest that occurred. Needs perf (linux-perf). Stops what it starts.
set -u
[ $# -ge 1 ] || { echo "usage: sh bench/syscalls.sh BINARY..." >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BG_TAG=syscalls
. "$ROOT/bench/lib.sh"
need wrk wrk
need nginx nginx-light
need perf linux-perf
bench_dir
mkdir -p "$DIR/records" "$DIR/certs"
BINS="$*"
set -- $(free_ports 5)
UP=$1 PORT=$2 ADMIN=$3 TLSP=$4
sh "$ROOT/certs/gen-certs.sh" "$DIR/certs" >/dev/null 2>&1 || { echo "gen-certs failed" >&2; exit 1; }
cg_render upstream-nginx.conf "$DIR/upstream-nginx.conf" "$PORT"
cg_render bordergate.yaml "$DIR/bordergate.yaml" "$PORT"
[ -n "${SYS_NOURING:-}" ] && echo "io_uring: false" >>"$DIR/bordergate.yaml"
nginx -c "$DIR/upstream-nginx.conf" -p "$DIR" >/dev/null 2>&1 & PIDS="$PIDS $!"
wait_port "$UP" || { echo "upstream did not start" >&2; exit 1; }
EV=raw_syscalls:sys_enter
for s in recvfrom sendto sendmsg writev epoll_wait epoll_pwait epoll_ctl io_uring_enter read write; do
  EV="$EV,syscalls:sys_enter_$s"
done
for b in $BINS; do
  rm -rf "$DIR/records"/*
  (cd "$ROOT" && exec "$b" --log-level warn run -c "$DIR/bordergate.yaml" >"$DIR/bg.out" 2>&1) & PID=$!
  wait_port "$PORT" || { echo "$b did not start:" >&2; cat "$DIR/bg.out" >&2; exit 1; }
  wrk -t1 -c50 -d1s -H 'Host: bench.test' "http://127.0.0.1:$PORT/" >/dev/null 2>&1
  wrk -t1 -c50 -d5s -H 'Host: bench.test' "http://127.0.0.1:$PORT/" >"$DIR/wrk.txt" 2>&1 & W=$!
  sleep 1
  perf stat -x, -e "$EV" -p "$PID" -- sleep 3 2>"$DIR/perf.txt"
  wait "$W"
  rps=$(awk '/Requests\/sec/ {print $2}' "$DIR/wrk.txt")
  echo "$b: ${rps:-0} req/s"
  awk -F, -v rps="${rps:-0}" '{ e = $3; sub(/^syscalls:sys_enter_|^raw_syscalls:sys_enter/, "", e); if (e == "") e = "all"
      if ($1 + 0 > 0 && rps > 0) printf "  %-16s %6.2f per request\n", e, $1 / (rps * 3) }' "$DIR/perf.txt"
  kill "$PID"; wait "$PID" 2>/dev/null
done
