#!/usr/bin/env python3
"""test_cli.py -- the bordergate command line (issue 2), and the integration harness itself:
certificates, the test upstream, nginx, the YAML writer, raw connections and process cleanup.
The harness tests run for real now; the command-line ones need build/bordergate."""

import json
import os
import re
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402


def bg(*args, timeout=10):
    if not os.access(h.BINARY, os.X_OK):
        raise h.Failure("%s is not built (make)" % h.BINARY)
    return h.run([h.BINARY] + list(args), timeout=timeout)


# ---- command line -----------------------------------------------------------------------------

@test
def version_prints_version_file():
    r = bg("--version")
    eq(r.returncode, 0, "exit")
    want = open(os.path.join(h.ROOT, "VERSION")).read().strip()
    eq(r.stdout.strip(), "bordergate " + want, "stdout")


@test
def help_lists_commands():
    r = bg("help")
    eq(r.returncode, 0, "exit")
    for cmd in ("run", "check", "explain", "records", "help"):
        check(re.search(r"^\s+%s\b" % cmd, r.stdout, re.M), "help lacks %r:\n%s" % (cmd, r.stdout))
    eq(bg("-h").returncode, 0, "-h exit")


@test
def help_of_help_is_the_usage():
    # README: `help [COMMAND]`, `COMMAND -h` -- for COMMAND help too (once "unknown command", exit 2).
    want = bg("help").stdout
    for args in (("help", "help"), ("help", "-h"), ("help", "--help")):
        r = bg(*args)
        eq(r.returncode, 0, "%s exit (stderr %r)" % (" ".join(args), r.stderr))
        eq(r.stdout, want, "%s stdout" % " ".join(args))
    for cmd in ("run", "check", "explain", "scan", "records", "reload"):
        r = bg("help", cmd)
        eq(r.returncode, 0, "help %s exit" % cmd)
        check(r.stdout.startswith("usage: bordergate " + cmd), "help %s: %r" % (cmd, r.stdout[:200]))


@test
def unknown_command_exits_2():
    r = bg("frobnicate")
    eq(r.returncode, 2, "exit")
    check("frobnicate" in r.stderr, "stderr should name the command: %r" % r.stderr)
    eq(r.stdout, "", "stdout")


@test
def unknown_global_flag_exits_2():
    r = bg("--frobnicate", "help")
    eq(r.returncode, 2, "exit")
    check("--frobnicate" in r.stderr, "stderr: %r" % r.stderr)


@test
def no_command_exits_2():
    eq(bg().returncode, 2, "exit")


@test
def check_help_exits_0():
    r = bg("check", "-h")
    eq(r.returncode, 0, "exit (stderr %r)" % r.stderr)
    check("-c" in r.stdout + r.stderr, "check -h should describe -c: %r" % (r.stdout + r.stderr))
    eq(bg("help", "check").returncode, 0, "help check exit")


@test
def check_unknown_flag_exits_2():
    r = bg("check", "--frobnicate")
    eq(r.returncode, 2, "exit (stderr %r)" % r.stderr)


@test
def run_help_exits_0():
    eq(bg("run", "-h").returncode, 0, "exit")


# ---- the harness ------------------------------------------------------------------------------

@test
def certs_are_made_once_with_private_keys():
    d = h.certs()
    names = ["ca.crt", "ca.key", "gateway.crt", "gateway.key", "client.crt", "client.key",
             "vendor.crt", "vendor.key", "other-ca.crt", "other-ca.key", "vendor-wrongca.crt",
             "vendor-expired.crt", "vendor-wronghost.crt"]
    for n in names:
        check(os.path.exists(os.path.join(d, n)), "missing %s" % n)
        if n.endswith(".key"):
            eq(stat.S_IMODE(os.stat(os.path.join(d, n)).st_mode), 0o600, n + " mode")
    before = {n: os.stat(os.path.join(d, n)).st_mtime_ns for n in names}
    r = h.run(["sh", "certs/gen-certs.sh", d])
    eq((r.returncode, r.stdout, r.stderr), (0, "", ""), "second run is a quiet no-op")
    after = {n: os.stat(os.path.join(d, n)).st_mtime_ns for n in names}
    eq(after, before, "mtimes")


def _verify(crt, ca="ca.crt", host=None):
    argv = ["openssl", "verify", "-CAfile", h.cert(ca)]
    if host:
        argv += ["-verify_hostname", host]
    r = h.run(argv + [h.cert(crt)])
    return r.returncode, r.stdout + r.stderr


@test
def certs_verify_as_intended():
    for crt, host in (("gateway.crt", "localhost"), ("client.crt", None),
                      ("vendor.crt", "api.vendor.test"), ("vendor.crt", "vendor.test")):
        rc, out = _verify(crt, host=host)
        eq(rc, 0, "%s for %s: %s" % (crt, host, out))
    rc, out = _verify("gateway.crt")
    r = h.run(["openssl", "verify", "-CAfile", h.cert("ca.crt"), "-verify_ip", "127.0.0.1",
               h.cert("gateway.crt")])
    eq(r.returncode, 0, "gateway.crt for 127.0.0.1: " + r.stdout + r.stderr)
    rc, out = _verify("vendor-wrongca.crt")
    check(rc != 0 and "unable to get local issuer" in out, "wrong CA should fail: " + out)
    eq(_verify("vendor-wrongca.crt", ca="other-ca.crt")[0], 0, "wrong-CA cert under its own CA")
    rc, out = _verify("vendor-expired.crt")
    check(rc != 0 and "expired" in out, "expired should fail as expired: " + out)
    rc, out = _verify("vendor-wronghost.crt", host="api.vendor.test")
    check(rc != 0 and "mismatch" in out.lower(), "wrong host should mismatch: " + out)
    r = h.run(["openssl", "x509", "-in", h.cert("client.crt"), "-noout", "-subject", "-ext",
               "extendedKeyUsage"])
    check("CN = svc-demo" in r.stdout and "Client Authentication" in r.stdout, r.stdout)
    # every vendor-*.crt pairs with vendor.key
    pub = h.run(["openssl", "pkey", "-in", h.cert("vendor.key"), "-pubout"]).stdout
    for crt in ("vendor-wrongca.crt", "vendor-expired.crt", "vendor-wronghost.crt"):
        eq(h.run(["openssl", "x509", "-in", h.cert(crt), "-noout", "-pubkey"]).stdout, pub, crt)


@test
def yaml_writer_emits_block_style():
    got = h.to_yaml({"a": "x\"y", "n": 3, "b": True, "l": ["p", 1], "e": [],
                     "d": {"k": None}, "v": [{"name": "v1", "up": {"port": 80}}, "s"]})
    want = ('a: "x\\"y"\nn: 3\nb: true\nl: ["p", 1]\ne: []\nd:\n  k: null\n'
            'v:\n  - name: "v1"\n    up:\n      port: 80\n  - "s"\n')
    eq(got, want)


@test
def free_ports_are_distinct():
    ports = [h.free_port() for _ in range(50)]
    eq(len(set(ports)), 50, "distinct")


@test
def upstream_behaviours():
    u = h.upstream()
    base = "http://127.0.0.1:%d" % u.port
    st, hd, body = h.curl(base + "/echo?q=1", "-H", "X-Test: a", "--data-binary", "hello")
    eq(st, 200, "echo status")
    rec = json.loads(body)
    eq((rec["method"], rec["target"], rec["body"]), ("POST", "/echo?q=1", "hello"))
    check(["X-Test", "a"] in rec["headers"], rec["headers"])
    eq(u.last()["body"], "hello", "recorded body")
    r = h.curl(base + "/bytes/100000")
    eq((r.status, r.body), (200, h.pattern(100000)), "bytes")
    r = h.curl(base + "/chunked/70000")
    eq((r.status, r.headers.get("transfer-encoding"), r.body), (200, "chunked", h.pattern(70000)))
    eq(h.curl(base + "/status/418").status, 418, "status")
    eq(h.curl(base + "/status/204").body, b"", "204 body")
    t0 = time.monotonic()
    eq(h.curl(base + "/delay/300").status, 200)
    check(time.monotonic() - t0 >= 0.3, "delay")
    r = h.curl(base + "/close-mid-body")
    eq((r.rc, len(r.body)), (18, 10), "curl reports a partial transfer")
    r = h.curl(base + "/reset")
    check(r.rc in (52, 56) and r.status == 0, "reset: %r" % r)
    r = h.curl(base + "/no-length/3000")
    eq((r.rc, r.body, r.headers.get("content-length")), (0, h.pattern(3000), None), "no-length")
    r = h.curl("-H", "Transfer-Encoding: chunked", "--data-binary", "abc", base + "/echo")
    eq((r.json()["chunked"], r.json()["body"]), (True, "abc"), "chunked request body")
    r = h.curl("-H", "Expect: 100-continue", "--data-binary", "x" * 5000, base + "/echo")
    eq(r.json()["body_len"], 5000, "expect body")
    check(b"100 Continue" in r.raw_headers, "100 Continue sent: %r" % r.raw_headers)


@test
def upstream_keep_alive_and_pipelining_over_raw_conn():
    u = h.upstream()
    c = h.Conn(u.port)
    c.send(h.request("GET", "/delay/200", "a") + h.request("GET", "/bytes/5", "a")
           + h.request("POST", "/echo", "a", body="xyz"))
    r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
    eq([r1.status, r2.body, r3.json()["body"]], [200, b"01234", "xyz"])
    recs = u.requests
    eq([(r["conn"], r["seq"]) for r in recs], [(recs[0]["conn"], i) for i in (1, 2, 3)])
    check(not c.is_closed(0.3), "connection kept alive")
    c.send(h.request("GET", "/x", "a", headers=[("Connection", "close")]))
    eq(c.read_response().status, 200)
    check(c.is_closed(2), "closed after Connection: close")
    c2 = h.Conn(u.port)
    c2.send(h.request("GET", "/chunked/9000", "a") + h.request("HEAD", "/bytes/10", "a"))
    eq(c2.read_response().body, h.pattern(9000))
    r = c2.read_response(head=True)
    eq((r.headers.get("content-length"), r.body), ("10", b""), "HEAD")


@test
def upstream_tls_records_sni_and_alpn():
    u = h.upstream(tls=(h.cert("vendor.crt"), h.cert("vendor.key")))
    r = h.curl("--cacert", h.cert("ca.crt"), "--resolve", "api.vendor.test:%d:127.0.0.1" % u.port,
               "https://api.vendor.test:%d/echo" % u.port)
    eq(r.status, 200, repr(r))
    rec = u.last()
    eq((rec["tls"], rec["sni"], rec["alpn"]), (True, "api.vendor.test", "http/1.1"))
    w = h.upstream(tls=(h.cert("vendor-wrongca.crt"), h.cert("vendor.key")))
    r = h.curl("--cacert", h.cert("ca.crt"), "https://127.0.0.1:%d/echo" % w.port)
    eq(r.rc, 60, "curl rejects the wrong-CA vendor certificate: %r" % r)
    eq(w.count(), 0, "nothing recorded")


@test
def upstream_script_and_control_port():
    port, ctl = h.free_port(), h.free_port()
    p = h.spawn([sys.executable, "tests/integration/upstream.py", "--port", str(port),
                 "--control-port", str(ctl)], log_name="upstream-script.out", cwd=h.ROOT)
    check(h.wait_port(port, proc=p) and h.wait_port(ctl, proc=p), "script upstream listening")
    eq(h.curl("http://127.0.0.1:%d/hop" % port).headers.get("x-up-hop"), "1")
    st, _, body = h.curl("http://127.0.0.1:%d/__log" % ctl)
    eq((st, [r["target"] for r in json.loads(body)]), (200, ["/hop"]))
    eq(h.curl("-X", "DELETE", "http://127.0.0.1:%d/__log" % ctl).status, 204)
    eq(json.loads(h.curl("http://127.0.0.1:%d/__log" % ctl).body), [])
    p.terminate()
    eq(p.wait(5), 0, "script exits 0 on SIGTERM")


@test
def nginx_upstream_serves_1k():
    n = h.Nginx().start()
    h.defer(n.stop)
    r = h.curl("http://127.0.0.1:%d/anything" % n.port)
    eq((r.status, len(r.body)), (200, 1024))
    r = h.curl("--data-binary", "@-", "http://127.0.0.1:%d/post" % n.port)  # empty stdin
    eq(r.status, 200)
    n.stop()
    eq(n.proc.poll() is not None, True, "nginx stopped")
    check(not h.wait_port(n.port, timeout=0.3), "port closed after stop")


@test
def gateway_start_reports_a_bad_config_fast():
    cfg = h.gateway_config([h.vendor("v", ["v.test"], 9)], no_such_key=1)
    g = h.Gateway(cfg)
    t0 = time.monotonic()
    try:
        g.start(timeout=8)
    except h.Failure as e:
        check("did not start" in str(e) or "not built" in str(e), str(e))
    else:
        g.stop()
        raise h.Failure("a config with an unknown key started")
    check(time.monotonic() - t0 < 8, "detected before the timeout")
    check(not g.alive(), "no process left")


@test
def children_do_not_outlive_the_harness():
    # A child harness starts a sleeping process and crashes; the process must be gone.
    code = ("import sys; sys.path.insert(0, 'tests/integration'); import harness as h; "
            "p = h.spawn(['sleep', '60']); print(p.pid, flush=True); raise RuntimeError('boom')")
    r = h.run([sys.executable, "-c", code], timeout=20)
    check(r.returncode != 0 and "boom" in r.stderr, r.stderr)
    pid = int(r.stdout.split()[0])
    time.sleep(0.2)
    try:
        os.kill(pid, 0)
        alive = open("/proc/%d/stat" % pid).read().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        alive = False
    eq(alive, False, "sleep %d still running" % pid)


if __name__ == "__main__":
    h.main()
