#!/usr/bin/env python3
"""test_config_errors.py -- what an operator is told about a config the gateway refuses, wherever
it is refused: `bordergate check`, `bordergate run`, SIGHUP, POST /reload and `bordergate
reload`. Files the config names (the GeoIP database, listener certificates, keys and client CAs,
vendor CAs and client certificates) that exist but cannot be used are reported at the exact
FILE:LINE:COL of the value naming them, like every other config error.
Each test writes its own config; gateways run on loopback ports. Ends with "N passed, N failed".
"""
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402


def put(name, text):
    path = os.path.join(h.tmpdir(), name)
    with open(path, "w") as f:
        f.write(text)
    return path


@h.once
def bad_files():
    """Files that exist and are readable but are not what their key asks for."""
    d = os.path.join(h.tmpdir(), "badfiles")
    os.makedirs(d, exist_ok=True)
    f = {}
    for name in ("geo.mmdb", "cert.pem", "ca.pem", "clientca.pem", "vcert.pem"):
        f[name] = os.path.join(d, name)
        with open(f[name], "w") as out:
            out.write("not what the config says this is\n")
    # A passphrase-protected key: OpenSSL would prompt on the terminal for it (and block a
    # reload); the gateway must refuse it instead, with a message.
    f["enc.key"] = os.path.join(d, "enc.key")
    r = subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-aes256", "-pass", "pass:secret", "-out", f["enc.key"]], capture_output=True, text=True)
    if r.returncode != 0:
        raise h.Failure("openssl genpkey: %s" % r.stderr)
    return f


def where(text, key, value):
    """(line, col), 1-based, of the value of `key: "value"` as to_yaml writes it."""
    needle = "%s: %s" % (key, json.dumps(value))
    for i, ln in enumerate(text.splitlines()):
        at = ln.find(needle)
        if at >= 0:
            return i + 1, at + len(key) + 3
    raise h.Failure("%r not in the config:\n%s" % (needle, text))


def broken_config(up_port, tls_port=None):
    """A gateway config (dict) whose every named file is wrong, and the messages it must give as
    (key, value, message) triples: the line is the one naming value under key."""
    f = bad_files()
    tls_addr = "127.0.0.1:%d" % (tls_port or h.free_port())
    v = h.vendor("a", ["a.test"], up_port, tls=True, ca=f["ca.pem"], client_certificate=f["vcert.pem"],
                 client_key=f["enc.key"])
    cfg = h.gateway_config([v], listen=[{"address": None},
                                        {"address": tls_addr,
                                         "tls": {"certificate": h.cert("gateway.crt"), "key": h.cert("client.key"),
                                                 "client_ca": f["clientca.pem"]}}])
    cfg["geoip"] = {"database": f["geo.mmdb"]}
    want = [
        ("database", f["geo.mmdb"], "geoip database '%s': not a valid MaxMind DB file (" % f["geo.mmdb"]),
        ("key", h.cert("client.key"), "listener %s: tls key: cannot load '%s': the key does not belong to the "
         "certificate" % (tls_addr, h.cert("client.key"))),
        ("client_ca", f["clientca.pem"], "listener %s: tls client_ca: cannot load '%s': no certificate or crl found"
         % (tls_addr, f["clientca.pem"])),
        ("ca", f["ca.pem"], "vendor 'a': upstream.ca: cannot load '%s': no certificate or crl found" % f["ca.pem"]),
        ("client_certificate", f["vcert.pem"], "vendor 'a': upstream.client_certificate: cannot load '%s': no start "
         "line" % f["vcert.pem"]),
        ("client_key", f["enc.key"], "vendor 'a': upstream.client_key: cannot load '%s': the key is encrypted with "
         "a passphrase (bordergate reads only unencrypted keys)" % f["enc.key"]),
    ]
    return cfg, want


def expected_lines(path, cfg, want):
    """The exact "FILE:LINE:COL: message" each problem must be reported as (a prefix for GeoIP,
    whose message ends with libmaxminddb's words)."""
    text = h.to_yaml(cfg)
    return [("%s:%d:%d: " % ((path,) + where(text, key, value))) + msg for key, value, msg in want]


def has_line(text, want):
    return any(ln.startswith(want) for ln in text.splitlines())


def assert_reported(text, lines, what):
    for want in lines:
        check(has_line(text, want), "%s lacks %r:\n%s" % (what, want, text[-3000:]))


@test
def check_reports_each_unusable_file_at_its_key():
    up = h.upstream()
    cfg, want = broken_config(up.port)
    path = h.write_config(cfg, "files-check.yaml")
    r = h.run([h.BINARY, "check", "-c", path], input="")
    eq(r.returncode, 1, "check exit code; stderr %r" % r.stderr)
    assert_reported(r.stderr, expected_lines(path, cfg, want), "check's stderr")
    check(r.stderr.rstrip().endswith("invalid (%d errors)" % len(want)), "one line per problem: %r" % r.stderr)
    # The certificate itself: a file that is no certificate, at the `certificate:` line.
    bad = bad_files()["cert.pem"]
    cfg["listen"][1]["tls"]["certificate"] = bad
    path = h.write_config(cfg, "files-check2.yaml")
    r = h.run([h.BINARY, "check", "-c", path], input="")
    line, col = where(h.to_yaml(cfg), "certificate", bad)
    want_cert = "%s:%d:%d: listener %s: tls certificate: cannot load '%s': no start line" % (
        path, line, col, cfg["listen"][1]["address"], bad)
    check(has_line(r.stderr, want_cert), "stderr lacks %r: %r" % (want_cert, r.stderr))


@test
def run_refuses_to_start_with_the_same_lines():
    up = h.upstream()
    cfg, want = broken_config(up.port)
    path = h.write_config(cfg, "files-run.yaml")
    r = h.run([h.BINARY, "run", "-c", path], input="")
    eq(r.returncode, 1, "run exit code; stderr %r" % r.stderr)
    assert_reported(r.stderr, expected_lines(path, cfg, want), "run's stderr")


@test
def sighup_reload_reports_the_same_lines_and_keeps_serving():
    up = h.upstream()
    good = h.gateway_config([h.vendor("a", ["a.test"], up.port)])
    g = h.Gateway(good, name="files-hup").start()
    cfg, want = broken_config(up.port)
    cfg["listen"][0] = good["listen"][0]
    cfg["admin"] = good["admin"]
    h.write_config(cfg, g.name + ".yaml")
    m = g.mark()
    g.signal(signal.SIGHUP)
    h.wait_until(lambda: "reload failed" in g.stderr_since(m), msg="'reload failed' logged")
    assert_reported(g.stderr_since(m), expected_lines(g.path, cfg, want), "the log after SIGHUP")
    eq(h.http_get(g.port(), "/echo", headers={"Host": "a.test"})[0], 200, "the old config still serves")
    g.stop()


if __name__ == "__main__":
    h.main()
