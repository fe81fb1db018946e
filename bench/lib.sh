# lib.sh — shell helpers shared by the bench/ scripts (sourced, not run). Set BG_TAG (the
# script's name for messages) before sourcing. Provides: need CMD PKG (apt-get install when
# missing, then stop the packaged service), wait_port PORT (0 when 127.0.0.1:PORT accepts
# within 5 s), free_ports N (N free loopback ports on one line), bench_dir (mktemp a work dir in
# $DIR; PIDS listed there are killed and the dir removed on exit unless BENCH_KEEP is set),
# cg_render TEMPLATE OUT PORT (a bench/TEMPLATE.tmpl filled in as the callgrind scripts run it),
# bench_body (compare.sh's 16 KiB JSON POST body into $DIR/body.json), cpu_ticks PID (user +
# system clock ticks of the process's threads and its children's).
BG_TAG=${BG_TAG:-bench}

need() { # command, package
  command -v "$1" >/dev/null 2>&1 && return 0
  [ -x "/usr/sbin/$1" ] && return 0
  echo "$BG_TAG: installing $2" >&2
  if [ "$(id -u)" != 0 ]; then echo "$BG_TAG: not root; run: apt-get install -y $2" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$2" >"/tmp/bg-$BG_TAG-deps.log" 2>&1 ||
    { apt-get -o DPkg::Lock::Timeout=600 update >>"/tmp/bg-$BG_TAG-deps.log" 2>&1 &&
      apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$2" >>"/tmp/bg-$BG_TAG-deps.log" 2>&1; } ||
    { echo "$BG_TAG: could not install $2 (see /tmp/bg-$BG_TAG-deps.log)" >&2; exit 1; }
  # Debian starts the packaged service on install; the scripts run their own.
  (systemctl stop "$2" || service "$2" stop) >/dev/null 2>&1 || true
}

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

free_ports() { # n → n free loopback ports
  python3 -c 'import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
[s.bind(("127.0.0.1", 0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

bench_dir() {
  DIR=$(mktemp -d "${TMPDIR:-/tmp}/bg-$BG_TAG.XXXXXX")
  PIDS=""
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}
bench_cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null; done
  sleep 0.3
  for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
  [ -n "${BENCH_KEEP:-}" ] || rm -rf "$DIR"
}

cg_render() { # template (bench/NAME.tmpl without .tmpl), output file, listening port
  # The callgrind scripts' settings: $DIR, $UP, $ADMIN, $TLSP from the caller; records fsync batch,
  # all detectors, 127.0.0.1 placed in DE by an override, the shipped GeoIP database.
  sed -e "s|@DIR@|$DIR|g" -e "s|@UPSTREAM_PORT@|$UP|g" -e "s|@BODY_1K@|$(head -c 1023 /dev/zero | tr '\0' x)|g" \
      -e "s|@ADMIN_PORT@|$ADMIN|g" -e "s|@TLS_PORT@|$TLSP|g" -e "s|@PORT@|$3|g" \
      -e "s|@FSYNC@|batch|g" -e "s|@DETECTORS@|all|g" \
      -e "s|@OVERRIDES@|[{ network: \"127.0.0.1/32\", country: DE }]|g" \
      -e "s|@GEOIP_DB@|$ROOT/config/geoip/dbip-country-lite.mmdb|g" "$ROOT/bench/$1.tmpl" >"$2"
}
bench_body() { # → $DIR/body.json: compare.sh's 16 KiB JSON POST body, made by compare.sh's own snippet
  sed -n '/^python3 - "\$DIR\/body.json"/,/^PY$/p' "$ROOT/bench/compare.sh" |
    sed '1s/.*/python3 - "$DIR\/body.json" <<'"'"'PY'"'"'/' >"$DIR/mkbody.sh"
  DIR="$DIR" sh "$DIR/mkbody.sh" || { echo "body failed" >&2; return 1; }
}
cpu_ticks() { # pid → user + system clock ticks of the pid's threads and its children's (nginx workers)
  for p in $1 $(pgrep -P "$1" 2>/dev/null); do cat /proc/"$p"/task/*/stat 2>/dev/null; done |
    awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { printf "%d", t }'
}
