#!/usr/bin/env python3
"""test_tls.py -- issue 3 acceptance: TLS on both sides of build/bordergate. Listeners: plain,
TLS (the generated gateway certificate) and mTLS (client_ca = the test CA). Vendors: TLS
upstreams verified against the test CA (good, wrong CA, expired, wrong host name), one with
`verify: false`. Certificates come from certs/gen-certs.sh in a temp dir."""

import os
import re
import signal
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402


class Env:
    pass


@h.once
def env():
    e = Env()
    ca = h.cert("ca.crt")
    key = h.cert("vendor.key")
    e.good = h.upstream(tls=(h.cert("vendor.crt"), key))
    e.wrongca = h.upstream(tls=(h.cert("vendor-wrongca.crt"), key))
    e.expired = h.upstream(tls=(h.cert("vendor-expired.crt"), key))
    e.wronghost = h.upstream(tls=(h.cert("vendor-wronghost.crt"), key))
    e.noverify = h.upstream(tls=(h.cert("vendor-wrongca.crt"), key))
    vendors = [
        h.vendor("good", ["api.vendor.test"], e.good.port, tls=True, ca=ca),
        h.vendor("wrongca", ["wrongca.vendor.test"], e.wrongca.port, tls=True, ca=ca),
        h.vendor("expired", ["expired.vendor.test"], e.expired.port, tls=True, ca=ca),
        h.vendor("wronghost", ["wronghost.vendor.test"], e.wronghost.port, tls=True, ca=ca),
        h.vendor("noverify", ["noverify.vendor.test"], e.noverify.port, tls=True, verify=False),
    ]
    # Vendors of their own for the resumption tests: every connection there is counted.
    e.resume13 = h.upstream(tls=(h.cert("vendor.crt"), key))
    e.resume12 = h.upstream(tls=(h.cert("vendor.crt"), key), tls_max=ssl.TLSVersion.TLSv1_2)
    e.resume13.bg_host, e.resume12.bg_host = "r13.vendor.test", "r12.vendor.test"
    vendors += [h.vendor("resume13", ["r13.vendor.test"], e.resume13.port, tls=True, ca=ca),
                h.vendor("resume12", ["r12.vendor.test"], e.resume12.port, tls=True, ca=ca)]
    tls = {"certificate": h.cert("gateway.crt"), "key": h.cert("gateway.key")}
    mtls = dict(tls, client_ca=ca)
    cfg = h.gateway_config(vendors, listen=[{"address": None}, {"address": None, "tls": tls},
                                            {"address": None, "tls": mtls}])
    e.gw = h.Gateway(cfg, name="tls").start()
    e.plain, e.tls, e.mtls = e.gw.port(0), e.gw.port(1), e.gw.port(2)
    return e


def plain(host, path, *args):
    return h.curl("-H", "Host: " + host, *args, "http://127.0.0.1:%d%s" % (env().plain, path))


def tls(host, path, *args, port=None):
    return h.curl("--cacert", h.cert("ca.crt"), "-H", "Host: " + host, *args,
                  "https://localhost:%d%s" % (port or env().tls, path))


def hdrs(rec):
    return h.Headers([tuple(x) for x in rec["headers"]])


# ---- upstream TLS (origination) ---------------------------------------------------------------

@test
def verified_vendor_200_with_sni():
    e = env()
    r = plain("api.vendor.test", "/v1/x?y=1")
    eq(r.status, 200, repr(r))
    rec = e.good.last()
    eq((rec["tls"], rec["sni"], rec["target"]), (True, "api.vendor.test", "/v1/x?y=1"))
    check(rec["tls_version"] in ("TLSv1.2", "TLSv1.3"), rec["tls_version"])
    eq(hdrs(rec).get("host"), "api.vendor.test")
    eq(hdrs(rec).get("x-forwarded-proto"), "http")


def _rejected(e, host, up, reasons=r"certif|verif|host ?name|expired|issuer"):
    mark = e.gw.mark()
    before = up.count()
    r = plain(host, "/secret")
    eq(r.status, 502, "%s: %r" % (host, r))
    time.sleep(0.1)
    eq(up.count(), before, "%s: no request was sent over the unverified connection" % host)
    log = e.gw.stderr_since(mark)
    check(re.search(reasons, log, re.I), "%s: the log should say why: %r" % (host, log[-500:]))


@test
def wrong_ca_vendor_502():
    _rejected(env(), "wrongca.vendor.test", env().wrongca)


@test
def wrong_hostname_vendor_502():
    _rejected(env(), "wronghost.vendor.test", env().wronghost)


@test
def expired_vendor_502():
    _rejected(env(), "expired.vendor.test", env().expired)


@test
def verify_false_200_with_warning_at_start():
    e = env()
    r = plain("noverify.vendor.test", "/ok")
    eq(r.status, 200, repr(r))
    eq(e.noverify.last()["sni"], "noverify.vendor.test")
    lines = [l for l in e.gw.stderr().splitlines() if "noverify" in l]
    check(any(re.search(r"warn", l, re.I) for l in lines),
          "a warning naming the vendor at start; lines: %r" % lines)


@test
def upstream_tls_connection_reused():
    e = env()
    c = h.Conn(e.plain)
    for i in range(3):
        c.send(h.request("GET", "/reuse/%d" % i, "api.vendor.test"))
        eq(c.read_response().status, 200)
    conns = {r["conn"] for r in e.good.requests if r["target"].startswith("/reuse/")}
    eq(len(conns), 1, "one TLS connection to the vendor for three requests")


def _resumptions(up, prefix, n):
    """n requests to the vendor at up, each on a new vendor connection (/close: the vendor
    closes after answering); per request (TLS version, whether the vendor saw a resumed session)."""
    for i in range(n):
        r = plain(up.bg_host, "/close/%s/%d" % (prefix, i))
        eq(r.status, 200, repr(r))
    recs = [r for r in up.requests if r["target"].startswith("/close/%s/" % prefix)]
    eq(len({r["conn"] for r in recs}), n, "one vendor connection per request")
    return [(r["tls_version"], r["tls_resumed"]) for r in recs]


@test
def upstream_tls13_sessions_resumed_on_new_connections():
    """A new connection to a vendor offers the session of an earlier one (as nginx's
    proxy_ssl_session_reuse): the vendor skips its signature, the gateway the chain check."""
    seen = _resumptions(env().resume13, "t13", 4)
    eq(seen, [("TLSv1.3", False)] + [("TLSv1.3", True)] * 3, "full handshake, then resumed ones")
    m = lambda resumed: h.metric(env().gw.admin_port, "bordergate_upstream_tls_handshakes_total",
                                 {"vendor": "resume13", "resumed": resumed})
    eq((m("false"), m("true")), (1, 3), "handshakes_total{resumed} counts what the vendor saw")


@test
def upstream_tls12_sessions_resumed_on_new_connections():
    seen = _resumptions(env().resume12, "t12", 4)
    eq(seen, [("TLSv1.2", False)] + [("TLSv1.2", True)] * 3, "full handshake, then resumed ones")


@test
def reload_with_another_ca_does_not_resume_a_session_verified_under_the_old_one():
    """Sessions belong to the vendor's TLS context: after a reload that changes the vendor's CA to
    one that did not sign its certificate, the next connection makes a full handshake and fails
    verification (502), instead of resuming a session the old CA had verified."""
    ca, key = h.cert("ca.crt"), h.cert("vendor.key")
    up = h.upstream(tls=(h.cert("vendor.crt"), key))
    vendor = h.vendor("v", ["api.vendor.test"], up.port, tls=True, ca=ca)
    cfg = h.gateway_config([vendor])
    g = h.Gateway(cfg, name="tls-resume-reload").start()
    get = lambda path: h.curl("-H", "Host: api.vendor.test", "http://127.0.0.1:%d%s" % (g.port(), path))
    for i in range(2):
        eq(get("/close/before/%d" % i).status, 200)
    eq([r["tls_resumed"] for r in up.requests], [False, True], "resumed before the reload")
    vendor["upstream"]["ca"] = h.cert("other-ca.crt")
    h.write_config(cfg, g.name + ".yaml")
    mark = g.mark()
    g.signal(signal.SIGHUP)
    h.wait_until(lambda: (h.metric(g.admin_port, "bordergate_config_reloads_total", {"result": "success"}) or 0) >= 1,
                 msg="the reload applied")
    before = up.count()
    r = get("/close/after")
    eq(r.status, 502, "the vendor's certificate is not signed by the new CA: %r" % r)
    time.sleep(0.1)
    eq(up.count(), before, "nothing was sent over the connection")
    check(re.search(r"certif|verif|issuer", g.stderr_since(mark), re.I), "the log says why")
    g.stop()


@test
def large_bodies_over_tls_both_sides():
    e = env()
    data = h.pattern(300000)
    path = os.path.join(h.tmpdir(), "tls-post.bin")
    open(path, "wb").write(data)
    r = tls("api.vendor.test", "/upload", "--data-binary", "@" + path)
    eq(r.status, 200, repr(r))
    rec = e.good.last()
    eq(rec["body_len"], len(data))
    check(rec["body"].encode("latin-1") == data, "body differs at the vendor")
    r = tls("api.vendor.test", "/bytes/500000")
    eq((r.status, len(r.body)), (200, 500000))
    check(r.body == h.pattern(500000), "response body differs")


# ---- TLS listener -----------------------------------------------------------------------------

@test
def tls_listener_serves_gateway_certificate():
    e = env()
    r = tls("api.vendor.test", "/over-tls")
    eq(r.status, 200, repr(r))
    eq(hdrs(e.good.last()).get("x-forwarded-proto"), "https", "X-Forwarded-Proto on TLS listener")
    r = h.curl("--cacert", h.cert("ca.crt"), "-H", "Host: api.vendor.test",
               "https://127.0.0.1:%d/by-ip" % e.tls)
    eq(r.status, 200, "by IP SAN: %r" % r)
    r = h.curl("--cacert", h.cert("other-ca.crt"), "-H", "Host: api.vendor.test",
               "https://localhost:%d/x" % e.tls)
    eq(r.rc, 60, "a client trusting another CA rejects the gateway")


@test
def tls12_and_tls13_accepted():
    for ver in ("1.2", "1.3"):
        r = tls("api.vendor.test", "/v" + ver, "--tlsv" + ver, "--tls-max", ver)
        eq(r.status, 200, "TLS %s: %r" % (ver, r))


def _tls11_context():
    ctx = h.client_context(verify=False, min_version=ssl.TLSVersion.TLSv1_1,
                           max_version=ssl.TLSVersion.TLSv1_1)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


@test
def tls11_client_refused():
    # Control: this client can speak TLS 1.1 to a server that allows it (so a refusal below
    # is the gateway's doing, not the client's).
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.load_cert_chain(h.cert("gateway.crt"), h.cert("gateway.key"))
    srv.minimum_version = ssl.TLSVersion.TLSv1
    srv.set_ciphers("DEFAULT:@SECLEVEL=0")
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    h.defer(ls.close)
    done = {}

    def accept():
        c, _ = ls.accept()
        try:
            done["v"] = srv.wrap_socket(c, server_side=True).version()
        except (ssl.SSLError, OSError) as ex:
            done["v"] = str(ex)
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    s = _tls11_context().wrap_socket(socket.create_connection(ls.getsockname(), 5))
    eq(s.version(), "TLSv1.1", "control handshake")
    s.close()
    t.join(5)
    e = env()
    try:
        s = _tls11_context().wrap_socket(socket.create_connection(("127.0.0.1", e.tls), 5))
        v = s.version()
        s.close()
        raise h.Failure("gateway accepted %s" % v)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        pass


@test
def alpn_http11():
    e = env()
    c = h.Conn(e.tls, ssl_context=h.client_context(alpn=["http/1.1"]), server_hostname="localhost")
    eq(c.sock.selected_alpn_protocol(), "http/1.1")
    c.send(h.request("GET", "/alpn", "api.vendor.test"))
    eq(c.read_response().status, 200)
    c2 = h.Conn(e.tls, ssl_context=h.client_context(), server_hostname="localhost")
    c2.send(h.request("GET", "/no-alpn", "api.vendor.test"))
    eq(c2.read_response().status, 200, "a client without ALPN gets HTTP/1.1")


# ---- mTLS listener ----------------------------------------------------------------------------

@test
def mtls_without_client_certificate_fails():
    e = env()
    before = e.good.count()
    r = tls("api.vendor.test", "/anon", port=e.mtls)
    check(r.rc != 0 and r.status == 0, "handshake must fail without a client cert: %r" % r)
    eq(e.good.count(), before, "nothing forwarded")


@test
def mtls_with_client_certificate_works():
    e = env()
    r = tls("api.vendor.test", "/authed", "--cert", h.cert("client.crt"), "--key",
            h.cert("client.key"), port=e.mtls)
    eq(r.status, 200, repr(r))
    eq(e.good.last()["target"], "/authed")
    # The record names the caller by its certificate subject.
    tid = r.headers.get("x-transfer-id")
    rec = h.wait_record(e.gw.cfg["records"]["path"], tid)
    check(rec["caller"].startswith("CN=svc-demo"), "caller is the mTLS subject: %r" % rec["caller"])


def _tls_get(port, ctx, path, session=None):
    """One request over a new TLS connection to the gateway; (status, headers, the session, resumed)."""
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), 5), server_hostname="localhost",
                        session=session)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: api.vendor.test\r\nConnection: close\r\n\r\n" % path).encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        hd = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in head[1:] if ":" in l}
        return int(head[0].split()[1]), hd, s.session, s.session_reused
    finally:
        s.close()


@test
def mtls_client_resumes_its_session_and_stays_the_caller():
    """A listener with client_ca resumes sessions (it has a session-id context: without one OpenSSL
    resumes nothing there, and every mTLS client paid a full handshake per connection), and the
    resumed connection keeps the client's verified certificate: the record still names it."""
    e = env()
    for ver in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        ctx = h.client_context(cert=h.cert("client.crt"), key=h.cert("client.key"), max_version=ver)
        st, _, sess, reused = _tls_get(e.mtls, ctx, "/mtls-first")
        eq((st, reused), (200, False), "%s: the first connection" % ver)
        st, hd, _, reused = _tls_get(e.mtls, ctx, "/mtls-resumed", session=sess)
        eq((st, reused), (200, True), "%s: the second connection resumes" % ver)
        rec = h.wait_record(e.gw.cfg["records"]["path"], hd.get("x-transfer-id"))
        check(rec["caller"].startswith("CN=svc-demo"), "%s: caller on the resumed connection: %r" % (ver, rec["caller"]))


@test
def session_from_the_plain_tls_listener_does_not_open_the_mtls_one():
    e = env()
    ctx = h.client_context(max_version=ssl.TLSVersion.TLSv1_2)  # TLS 1.2: the handshake fails in connect
    st, _, sess, _ = _tls_get(e.tls, ctx, "/no-cert")
    eq(st, 200)
    before = e.good.count()
    try:
        st, _, _, reused = _tls_get(e.mtls, ctx, "/no-cert-resumed", session=sess)
        check(False, "the mTLS listener answered %d (resumed=%s) without a client certificate" % (st, reused))
    except (ssl.SSLError, OSError):
        pass
    eq(e.good.count(), before, "nothing reached the vendor")


@test
def mtls_with_certificate_from_other_ca_fails():
    e = env()
    d = h.tmpdir()
    key, csr, crt = (os.path.join(d, n) for n in ("rogue.key", "rogue.csr", "rogue.crt"))
    for argv in (["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-out", key],
                 ["openssl", "req", "-new", "-key", key, "-subj", "/CN=svc-demo", "-out", csr],
                 ["openssl", "x509", "-req", "-in", csr, "-CA", h.cert("other-ca.crt"), "-CAkey",
                  h.cert("other-ca.key"), "-set_serial", "7", "-days", "30", "-out", crt]):
        r = h.run(argv)
        eq(r.returncode, 0, " ".join(argv[:2]) + ": " + r.stderr)
    before = e.good.count()
    r = tls("api.vendor.test", "/rogue", "--cert", crt, "--key", key, port=e.mtls)
    check(r.rc != 0 and r.status == 0, "a client cert from another CA must fail: %r" % r)
    eq(e.good.count(), before, "nothing forwarded")


@test
def stops_cleanly():
    e = env()
    e.gw.stop(timeout=10)


if __name__ == "__main__":
    h.main()
