#!/bin/sh
# Installs the Debian packages given as arguments when any is missing (make deps).
# Does nothing when all are present; says clearly what it could not install.
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
if [ "$(id -u)" != 0 ]; then
  echo "deps: not root; install these as root: apt-get install -y$missing" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Another apt run (a second `make test` in a worktree, unattended upgrades) may hold the dpkg lock:
# wait for it instead of failing.
APT_LOCK="-o DPkg::Lock::Timeout=600"
if ! apt-get $APT_LOCK install -y --no-install-recommends $missing >/tmp/bg-deps.log 2>&1; then
  apt-get $APT_LOCK update >>/tmp/bg-deps.log 2>&1
  if ! apt-get $APT_LOCK install -y --no-install-recommends $missing >>/tmp/bg-deps.log 2>&1; then
    echo "deps: could not install:$missing (see /tmp/bg-deps.log)" >&2; tail -5 /tmp/bg-deps.log >&2; exit 1
  fi
fi
# Debian starts nginx on install; the tests run their own, so the system one must not hold port 80.
# Same for prometheus (installed for promtool only).
if echo "$missing" | grep -q nginx; then
  (systemctl stop nginx || service nginx stop || nginx -s stop) >/dev/null 2>&1 || true
fi
if echo "$missing" | grep -q prometheus; then
  (systemctl stop prometheus || service prometheus stop || pkill -x prometheus) >/dev/null 2>&1 || true
fi
echo "deps: installed:$missing"
