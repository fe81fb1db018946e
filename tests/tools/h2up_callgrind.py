#!/usr/bin/env python3
"""h2up_callgrind.py -- instructions the gateway spends per request towards an HTTP/2 vendor
(build/tests/tools/h2echo, TLS, ALPN h2) and towards an HTTP/1.1 keep-alive vendor (upstream.py,
TLS), counted by valgrind --tool=callgrind (repeatable on a busy machine). Each leg starts the
gateway under callgrind, sends N requests with h2load (h2c, -c 1 -m 4) and stops it; a leg with
no requests gives the start/stop cost that is subtracted.
Usage (after make): python3 tests/tools/h2up_callgrind.py [N]   (default 400)"""

import glob
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness as h  # noqa: E402
import test_h2_upstream as t  # noqa: E402


def leg(host, n, vendors):
    out = os.path.join(h.tmpdir(), "cg-%s-%d" % (host, n))
    os.makedirs(out, exist_ok=True)
    wrap = os.path.join(out, "cg.sh")
    with open(wrap, "w") as f:
        f.write("#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s/cg.%%p %s \"$@\"\n"
                % (out, os.path.abspath(h.BINARY)))
    os.chmod(wrap, 0o755)
    real = h.BINARY
    h.BINARY = wrap
    try:
        gw = h.Gateway(h.gateway_config(vendors), name="cg-%s-%d" % (host.split(".")[0], n)).start(timeout=120)
    finally:
        h.BINARY = real
    if n:
        r = h.run([shutil.which("h2load"), "-n", str(n), "-c", "1", "-m", "4", "-H", ":authority: " + host,
                   "http://127.0.0.1:%d/echo" % gw.port()], timeout=900)
        if "%d succeeded" % n not in r.stdout:
            raise SystemExit("h2load failed: " + r.stdout[-800:])
    gw.stop(timeout=120)
    f = glob.glob(out + "/cg.[0-9]*")[0]
    return int([ln for ln in open(f) if ln.startswith(("summary:", "totals:"))][-1].split()[1])


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    echo = t.start_echo()
    up1 = h.upstream(tls=(h.cert("vendor.crt"), h.cert("vendor.key")))
    vendors = [t.h2vendor("h2v", "h2.vendor.test", echo), t.h2vendor("h1v", "h1.vendor.test", up1.port)]
    base = leg("h2.vendor.test", 0, vendors)
    for host, name in (("h2.vendor.test", "HTTP/2 vendor"), ("h1.vendor.test", "HTTP/1.1 vendor")):
        total = leg(host, n, vendors)
        print("%-16s %d requests: %d Ir, %d Ir/request (start/stop %d Ir subtracted)"
              % (name, n, total, (total - base) // n, base))


if __name__ == "__main__":
    main()
