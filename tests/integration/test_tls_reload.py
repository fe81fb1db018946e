#!/usr/bin/env python3
"""test_tls_reload.py -- client TLS sessions across a reload. A reload that leaves a listener's
certificate, key and client_ca as they were keeps its session ticket keys (and session-id
context), so clients keep resuming (`openssl s_client -sess_out` / `-sess_in`, "Reused"). A
reload that changes the certificate or the client CA starts afresh: no session from before may
resume, and with mTLS none may skip verification of the client certificate against the new CA.
Ends with "N passed, N failed".
"""
import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402

REQUEST = "GET /echo HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"


def s_client(port, sess_in=None, sess_out=None, version="-tls1_3", client=None):
    """One connection with openssl s_client and one request; returns (resumed, answered, output)."""
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost",
            "-CAfile", h.cert("ca.crt"), "-ign_eof", version]
    if sess_in:
        argv += ["-sess_in", sess_in]
    if sess_out:
        argv += ["-sess_out", sess_out]
    if client:
        argv += ["-cert", h.cert(client + ".crt"), "-key", h.cert(client + ".key")]
    r = subprocess.run(argv, input=REQUEST, capture_output=True, text=True, timeout=20)
    out = r.stdout + r.stderr
    reused = [ln for ln in out.splitlines() if ln.startswith(("Reused,", "New,"))]
    return (bool(reused) and reused[0].startswith("Reused,")), "HTTP/1.1 200" in out, out


def session(port, name, version, client=None):
    """A fresh session saved to a file; checks the gateway resumes it before anything else."""
    path = os.path.join(h.tmpdir(), name)
    resumed, answered, out = s_client(port, sess_out=path, version=version, client=client)
    check(answered and not resumed, "first connection: a full handshake and an answer:\n" + out[-1500:])
    resumed, answered, out = s_client(port, sess_in=path, version=version, client=client)
    check(resumed and answered, "resumed before any reload:\n" + out[-1500:])
    return path


def gateway(up, name, client_ca=None):
    tls = {"certificate": os.path.join(h.tmpdir(), name + ".crt"), "key": os.path.join(h.tmpdir(), name + ".key")}
    shutil.copy(h.cert("gateway.crt"), tls["certificate"])
    shutil.copy(h.cert("gateway.key"), tls["key"])
    if client_ca:
        tls["client_ca"] = os.path.join(h.tmpdir(), name + "-clients.crt")
        shutil.copy(h.cert(client_ca), tls["client_ca"])
    cfg = h.gateway_config([h.vendor("a", ["a.test"], up.port)], listen=[{"address": None},
                                                                         {"address": None, "tls": tls}])
    return h.Gateway(cfg, name=name).start()


def reload(g):
    m = g.mark()
    g.signal(signal.SIGHUP)
    h.wait_until(lambda: "config reloaded" in g.stderr_since(m) or "reload failed" in g.stderr_since(m),
                 msg="reload outcome")
    check("config reloaded" in g.stderr_since(m), "reloaded: %s" % g.stderr_since(m)[-1500:])


@test
def sessions_resume_across_a_reload_that_keeps_the_certificate():
    up = h.upstream()
    g = gateway(up, "tlsr-same")
    for version in ("-tls1_3", "-tls1_2"):
        path = session(g.port(1), "same%s.sess" % version, version)
        reload(g)
        resumed, answered, out = s_client(g.port(1), sess_in=path, version=version)
        check(resumed and answered, "%s: resumed after a reload that changed nothing:\n%s" % (version, out[-1500:]))
    # Another vendor in the config is a change that leaves the listener as it was.
    cfg = dict(g.cfg, vendors=g.cfg["vendors"] + [h.vendor("b", ["b.test"], up.port)])
    path = session(g.port(1), "same-vendor.sess", "-tls1_3")
    h.write_config(cfg, g.name + ".yaml")
    reload(g)
    resumed, answered, out = s_client(g.port(1), sess_in=path)
    check(resumed and answered, "resumed after a reload that added a vendor:\n" + out[-1500:])
    g.stop()


@test
def a_new_certificate_ends_every_session():
    up = h.upstream()
    g = gateway(up, "tlsr-cert")
    paths = [session(g.port(1), "cert%s.sess" % v, v) for v in ("-tls1_3", "-tls1_2")]
    # Same path, new contents: what a certificate renewal looks like.
    crt, key = g.cfg["listen"][1]["tls"]["certificate"], g.cfg["listen"][1]["tls"]["key"]
    r = h.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=localhost"])
    eq(r.returncode, 0, "openssl req: %s" % r.stderr)
    reload(g)
    for path, v in zip(paths, ("-tls1_3", "-tls1_2")):
        resumed, _, out = s_client(g.port(1), sess_in=path, version=v)
        check(not resumed, "%s: a session from before the new certificate resumed:\n%s" % (v, out[-1500:]))
    g.stop()


@test
def a_changed_client_ca_never_lets_an_old_session_skip_verification():
    up = h.upstream()
    g = gateway(up, "tlsr-mtls", client_ca="ca.crt")
    for v in ("-tls1_3", "-tls1_2"):
        session(g.port(1), "mtls%s.sess" % v, v, client="client")
    # The client CA file is replaced (same path) by one that did not sign the client's
    # certificate: a session from before must not resume, and the full handshake must fail.
    shutil.copy(h.cert("other-ca.crt"), g.cfg["listen"][1]["tls"]["client_ca"])
    reload(g)
    for v in ("-tls1_3", "-tls1_2"):
        resumed, answered, out = s_client(g.port(1), sess_in=os.path.join(h.tmpdir(), "mtls%s.sess" % v),
                                          version=v, client="client")
        check(not resumed and not answered, "%s: a client the new CA did not sign got in:\n%s" % (v, out[-1500:]))
    # Back to a CA that signed it, in a bundle with the other one (a change again): full
    # handshakes, verified, and resumption works for the sessions made after the change.
    with open(g.cfg["listen"][1]["tls"]["client_ca"], "w") as f:
        f.write(open(h.cert("other-ca.crt")).read() + open(h.cert("ca.crt")).read())
    reload(g)
    for v in ("-tls1_3", "-tls1_2"):
        path = session(g.port(1), "mtls2%s.sess" % v, v, client="client")
        reload(g)  # nothing changed: the session made under this CA resumes
        resumed, answered, out = s_client(g.port(1), sess_in=path, version=v, client="client")
        check(resumed and answered, "%s: resumed after a reload that changed nothing:\n%s" % (v, out[-1500:]))
    g.stop()


if __name__ == "__main__":
    h.main()
