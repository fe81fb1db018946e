#!/usr/bin/env python3
"""test_demo.py -- `make demo` (tests/tools/demo.sh) runs to the end on loopback, exits 0, prints
the decision announced for each request and what the encrypt vendor received, and leaves
nothing running. Skips (passes with a note) only when the demo's fixed ports are taken."""

import os
import re
import signal
import subprocess
import time

from harness import BUILD_DIR, ROOT, check, eq, main, test

DEMO = os.path.join(ROOT, "tests", "tools", "demo.sh")
PORTS = (("127.0.0.1", 18480), ("127.0.0.1", 18481), ("127.0.0.2", 18482), ("127.0.0.3", 18482),
         ("127.0.0.4", 18482))


def listening(host, port):
    import socket
    s = socket.socket()
    s.settimeout(0.3)
    try:
        return s.connect_ex((host, port)) == 0
    finally:
        s.close()


@test
def demo_runs_and_behaves_as_announced():
    busy = [hp for hp in PORTS if listening(*hp)]
    if busy:
        print("note: demo ports in use %r: not run" % busy)
        return
    signal.alarm(100)  # the harness's 30 s per test is for single requests; the demo is allowed 60 s
    t0 = time.monotonic()
    r = subprocess.run(["sh", DEMO], capture_output=True, text=True, timeout=90, cwd=ROOT,
                       env=dict(os.environ, BUILD=BUILD_DIR))
    dt = time.monotonic() - t0
    out = r.stdout
    eq(r.returncode, 0, "demo exit (stderr %r, tail %r)" % (r.stderr[-800:], out[-1500:]))
    check(dt < 60, "the demo took %.1fs" % dt)
    check(out.rstrip().endswith("demo: every step behaved as announced"), out[-500:])
    # Each request's decision, as the summary states it.
    for what in ("allow domestic", "allow adequacy", "block dpf_lapsed", "encrypt dpf_lapsed",
                 "allow no_personal_data", "allow scc"):
        check(re.search(r"(?m)^   ok +.*\s%s$" % re.escape(what), out), "summary lacks ok ... %s:\n%s"
              % (what, out[-1500:]))
    check("FAILED" not in out and "UNEXPECTED" not in out, out[-1500:])
    check(re.search(r"(?m)^   client got   HTTP 451, X-Transfer-Id [0-9A-Z]{26}$", out), "no 451 step")
    # The encrypt step: the vendor's log line shows tokens, never the card number.
    m = re.search(r"== 4\..*?vendor got   POST /v1/charges\n +(\S.*)\n", out, re.S)
    check(m is not None, "no vendor body for step 4")
    check("bgtok:v1:k1:" in m.group(1) and "4111 1111 1111 1111" not in m.group(1), m.group(1))
    check(re.search(r"(?m)^     bordergate_transfers_total\{vendor=\"tokenpay-us\".*decision=\"encrypt\".*\} 1$", out),
          "no metrics line for the encrypt step")
    check("chain intact" in out, "records verify did not pass")
    # Everything it started is gone.
    time.sleep(0.2)
    left = [hp for hp in PORTS if listening(*hp)]
    eq(left, [], "still listening after the demo")


if __name__ == "__main__":
    main()
