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


# ---- POST /reload: the problems in the answer -------------------------------------------------

TOKEN = "s3cret-admin-token-0d1e2f"


def check_errors(path):
    """The error lines `bordergate check -c path` prints (warnings and the summary left out)."""
    r = h.run([h.BINARY, "check", "-c", path], input="")
    eq(r.returncode, 1, "check refuses %s: %r" % (path, r.stderr))
    return [ln for ln in r.stderr.splitlines() if ln.startswith(path + ":") and ": warning: " not in ln
            and not ln.startswith(path + ": invalid (")]


def post_reload(g, token=TOKEN):
    return h.http_post(g.admin_port, "/reload", headers={"Authorization": "Bearer " + token})


def assert_problem(st, hd, body, want_errors, secrets):
    eq(st, 422, "POST /reload status; body %r" % body)
    eq(hd.get("content-type"), "application/problem+json", "content type")
    text = body.decode()
    for sec in secrets:
        check(sec not in text, "the answer echoes a secret %r: %s" % (sec, text))
    p = json.loads(text)
    eq(p.get("type"), "https://bordergate.dev/problems/config-invalid", "problem type")
    eq(p.get("status"), 422, "problem status")
    check(isinstance(p.get("title"), str) and p["title"], "a title: %r" % p)
    check(isinstance(p.get("detail"), str) and "%d problem" % len(want_errors) in p["detail"], "detail: %r" % p)
    eq(p.get("reloaded"), False, "reloaded")
    eq(p.get("errors"), want_errors, "errors: the lines `check` prints")
    return p


@test
def post_reload_refused_lists_every_problem_as_check_prints_it():
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("a", ["a.test"], up.port)])
    g = h.Gateway(cfg, name="post-errors").start()  # the harness checks /healthz without a token
    cfg = dict(cfg, admin=dict(cfg["admin"], token=TOKEN))
    h.write_config(cfg, g.name + ".yaml")
    st, _, body = post_reload(g)
    eq((st, body), (200, b'{"reloaded":true}\n'), "a good reload answers as before")
    # Config errors: a mode typo, a vendor category that does not exist, a key file of the wrong
    # length, and the admin token written where `admin:` expects off or a mapping.
    keys = os.path.join(h.tmpdir(), "short-keys-post")
    os.makedirs(keys, mode=0o700, exist_ok=True)
    short_key = "c2hvcnQga2V5IG9mIDMyIGJ5dGVzIG9ubHkgLi4uLi4uLi4="
    fd = os.open(os.path.join(keys, "k1.key"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(short_key + "\n")
    bad = dict(cfg, mode="sometimes", admin=TOKEN, encryption={"keys": keys, "active_key": "k1"},
               vendors=[dict(cfg["vendors"][0], categories=["identifier", "not_a_category"])])
    h.write_config(bad, g.name + ".yaml")
    want = check_errors(g.path)
    check(len(want) >= 4, "four problems at least: %r" % want)
    assert_problem(*post_reload(g), want, [TOKEN, short_key])
    # Errors found opening files (the runtime's): a listener key that is no key, holding text that
    # must never be echoed, and a GeoIP database that is not one.
    up_files = bad_files()
    junk_key = os.path.join(h.tmpdir(), "junk.key")
    with open(junk_key, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n")
    bad = dict(cfg, geoip={"database": up_files["geo.mmdb"]},
               listen=cfg["listen"] + [{"address": "127.0.0.1:%d" % h.free_port(),
                                        "tls": {"certificate": h.cert("gateway.crt"), "key": junk_key}}])
    h.write_config(bad, g.name + ".yaml")
    want = check_errors(g.path)
    eq(len(want), 2, "two problems: %r" % want)
    assert_problem(*post_reload(g), want, [TOKEN, "TOPSECRETKEYMATERIAL"])
    eq(h.http_get(g.port(), "/echo", headers={"Host": "a.test"})[0], 200, "the old config still serves")
    st, _, metrics = h.http_get(g.admin_port, "/metrics", headers={"Authorization": "Bearer " + TOKEN})
    check('bordergate_config_reloads_total{result="error"} 2\n' in metrics.decode(), "two refusals counted")
    # Good again: as before.
    h.write_config(cfg, g.name + ".yaml")
    st, hd, body = post_reload(g)
    eq((st, body), (200, b'{"reloaded":true}\n'), "a good reload")
    eq(hd.get("content-type"), "application/json", "a good reload's content type")
    g.stop()


@test
def post_reload_refused_for_a_listener_that_cannot_bind():
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("a", ["a.test"], up.port)])
    g = h.Gateway(cfg, name="post-bind").start()
    import socket
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    h.defer(taken.close)
    addr = "127.0.0.1:%d" % taken.getsockname()[1]
    bad = dict(cfg, listen=cfg["listen"] + [{"address": addr}])
    h.write_config(bad, g.name + ".yaml")
    st, hd, body = h.http_post(g.admin_port, "/reload")
    eq(st, 422, "status: %r" % body)
    p = json.loads(body)
    line, col = where(h.to_yaml(bad), "address", addr)
    eq(p.get("errors"), ["%s:%d:%d: listen address %s: cannot listen on %s: Address already in use"
                         % (g.path, line, col, addr, addr)], "the bind error at the listener's address")
    g.stop()


@test
def reload_command_prints_the_gateways_refusal():
    # The command validates the file first, as check does, but the gateway can still refuse it
    # (here: a new listener on a port something else holds; or files its `user:` cannot read).
    # It used to SIGHUP and say "reload requested"; it now asks POST /reload and prints the
    # gateway's problems, exit 1.
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("a", ["a.test"], up.port)],
                           pid_file=os.path.join(h.tmpdir(), "reload-cmd.pid"))
    g = h.Gateway(cfg, name="reload-cmd").start()
    h.wait_until(lambda: os.path.exists(cfg["pid_file"]), msg="pid file")
    import socket
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    h.defer(taken.close)
    addr = "127.0.0.1:%d" % taken.getsockname()[1]
    bad = dict(cfg, listen=cfg["listen"] + [{"address": addr}])
    h.write_config(bad, g.name + ".yaml")
    r = h.run([h.BINARY, "reload", "-c", g.path])
    eq(r.returncode, 1, "exit code: %s%s" % (r.stdout, r.stderr))
    line, col = where(h.to_yaml(bad), "address", addr)
    want = "%s:%d:%d: listen address %s: cannot listen on %s: Address already in use\n" % (
        g.path, line, col, addr, addr)
    check(r.stderr.startswith(want), "the gateway's problem first on stderr: %r" % r.stderr)
    check("the gateway refused %s (1 error)" % g.path in r.stderr, "and a summary: %r" % r.stderr)
    eq(r.stdout, "", "nothing on stdout")
    h.write_config(cfg, g.name + ".yaml")
    r = h.run([h.BINARY, "reload", "-c", g.path])
    eq(r.returncode, 0, "a good config: %s" % r.stderr)
    eq(r.stdout, "reloaded: pid %d serves %s\n" % (g.proc.pid, g.path), "stdout")
    eq(h.metric(g.admin_port, "bordergate_config_reloads_total", {"result": "success"}), 1, "one reload done")
    g.stop()


@test
def reload_command_without_admin_listener_signals_the_pid():
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("a", ["a.test"], up.port)], admin="off",
                           pid_file=os.path.join(h.tmpdir(), "reload-hup.pid"))
    g = h.Gateway(cfg, name="reload-hup").start()
    h.wait_until(lambda: os.path.exists(cfg["pid_file"]), msg="pid file")
    m = g.mark()
    r = h.run([h.BINARY, "reload", "-c", g.path])
    eq(r.returncode, 0, "exit code: %s" % r.stderr)
    check(r.stdout.startswith("reload requested (pid %d)" % g.proc.pid), "stdout: %r" % r.stdout)
    h.wait_until(lambda: "config reloaded" in g.stderr_since(m), msg="'config reloaded' logged")
    g.stop()


@test
def reload_command_with_a_new_admin_token_falls_back_to_sighup():
    # The running gateway knows only the old token; the file brings a new one. POST /reload
    # answers 401, and the command signals instead of giving up.
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("a", ["a.test"], up.port)],
                           pid_file=os.path.join(h.tmpdir(), "reload-token.pid"))
    g = h.Gateway(cfg, name="reload-token").start()
    h.wait_until(lambda: os.path.exists(cfg["pid_file"]), msg="pid file")
    h.write_config(dict(cfg, admin=dict(cfg["admin"], token=TOKEN)), g.name + ".yaml")
    eq(h.http_post(g.admin_port, "/reload")[0], 200, "the first token")
    h.write_config(dict(cfg, admin=dict(cfg["admin"], token=TOKEN + "-new")), g.name + ".yaml")
    m = g.mark()
    r = h.run([h.BINARY, "reload", "-c", g.path])
    eq(r.returncode, 0, "exit code: %s" % r.stderr)
    check("refused the token" in r.stderr and TOKEN not in r.stderr, "stderr: %r" % r.stderr)
    check(r.stdout.startswith("reload requested (pid %d)" % g.proc.pid), "stdout: %r" % r.stdout)
    h.wait_until(lambda: "config reloaded" in g.stderr_since(m), msg="'config reloaded' logged")
    eq(post_reload(g, TOKEN + "-new")[0], 200, "the new token is the gateway's now")
    g.stop()


# ---- --log-format json: config problems are JSON log lines too ----------------------------------

def json_lines(text, what):
    """Every line of text parsed as JSON (a failure names the first line that is not)."""
    out = []
    for ln in text.splitlines():
        try:
            out.append(json.loads(ln))
        except ValueError:
            raise h.Failure("%s: a line that is not JSON: %r\n%s" % (what, ln, text[-2000:]))
    return out


@test
def json_log_format_reload_errors_are_json_lines():
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("a", ["a.test"], up.port)])
    g = h.Gateway(cfg, args=["--log-format", "json"], name="json-log").start()
    # Config errors (SIGHUP), then the runtime's errors about files (POST /reload), then a
    # listener that cannot bind (SIGHUP): every kind of refusal.
    bad1 = dict(cfg, mode="sometimes", vendors=[dict(cfg["vendors"][0], categories=["not_a_category"])])
    cfg2, _ = broken_config(up.port)
    bad2 = dict(cfg2, listen=[cfg["listen"][0]] + cfg2["listen"][1:], admin=cfg["admin"])
    import socket
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    h.defer(taken.close)
    bad3 = dict(cfg, listen=cfg["listen"] + [{"address": "127.0.0.1:%d" % taken.getsockname()[1]}])
    for n, (bad, how) in enumerate([(bad1, "SIGHUP"), (bad2, "POST"), (bad3, "SIGHUP")]):
        h.write_config(bad, g.name + ".yaml")
        want = check_errors(g.path) if bad is not bad3 else None
        m = g.mark()
        if how == "SIGHUP":
            g.signal(signal.SIGHUP)
        else:
            eq(h.http_post(g.admin_port, "/reload")[0], 422, "POST /reload")
        h.wait_until(lambda: "reload failed" in g.stderr_since(m), msg="'reload failed' logged")
        lines = json_lines(g.stderr_since(m), "stderr after bad reload %d (%s)" % (n + 1, how))
        problems = [ln for ln in lines if ln.get("msg") == "config error"]
        for ln in problems:
            eq(ln.get("level"), "error", "level of %r" % ln)
            check(isinstance(ln.get("ts"), str), "ts in %r" % ln)
        got = [ln.get("error") for ln in problems]
        if want is not None:
            eq(got, want, "reload %d: one JSON line per problem, the lines check prints" % (n + 1))
        else:
            eq(len(got), 1, "one bind problem: %r" % got)
            check(got[0].startswith(g.path + ":") and "Address already in use" in got[0], "bind problem: %r" % got)
        failed = [ln for ln in lines if ln.get("msg") == "reload failed: keeping the running config"]
        eq(len(failed), 1, "one 'reload failed' line")
        eq(failed[0].get("errors"), str(len(got)), "it counts the problems")
    eq(h.http_get(g.port(), "/echo", headers={"Host": "a.test"})[0], 200, "the old config still serves")
    json_lines(g.stderr(), "the whole log")
    g.stop()
    json_lines(g.stderr(), "the whole log after stopping")


@test
def json_log_format_start_errors_are_json_lines():
    up = h.upstream()
    cfg, want = broken_config(up.port)
    path = h.write_config(cfg, "json-start.yaml")
    r = h.run([h.BINARY, "--log-format", "json", "run", "-c", path], input="")
    eq(r.returncode, 1, "exit code; stderr %r" % r.stderr)
    lines = json_lines(r.stderr, "run's stderr")
    got = [ln["error"] for ln in lines if ln.get("msg") == "config error"]
    eq(len(got), len(want), "one line per problem: %r" % got)
    for line, exp in zip(got, expected_lines(path, cfg, want)):
        check(line.startswith(exp), "%r does not start with %r" % (line, exp))


if __name__ == "__main__":
    h.main()
