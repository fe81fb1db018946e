#!/usr/bin/env python3
"""Data-plane behaviours owned by exchange.c: records under fsync: always (the answer waits
until the record is on disk), cancellation while a record is pending, and the exchange's
accounting (bytes, status) in the record."""
import json
import os
import socket
import time

import harness as h
from harness import test, check, eq


def records(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@h.once
def env():
    e = type("E", (), {})()
    e.up = h.upstream()
    us = h.vendor("us-nobasis", ["us.test"], e.up.port, addresses=["127.0.0.3"], regions=["US"],
                  entity={"name": "US Inc.", "country": "US"}, basis="none")
    de = h.vendor("de", ["de.test"], e.up.port)
    cfg = h.gateway_config([us, de])
    cfg["records"]["fsync"] = "always"
    e.records = cfg["records"]["path"]
    e.g = h.Gateway(cfg).start()
    return e


@test
def blocked_answer_waits_for_its_record():
    e = env()
    for i in range(20):
        r = h.curl("-H", "Host: us.test", "http://127.0.0.1:%d/collect?email=a%d@example.com" % (e.g.port(), i))
        eq(r.status, 451, repr(r))
        tid = r.headers.get("x-transfer-id")
        ids = [x["id"] for x in records(e.records)]
        check(tid in ids, "record %s on disk when the 451 arrived" % tid)


@test
def forwarded_answer_is_recorded_before_the_next_request():
    e = env()
    c = h.Conn(e.g.port())
    for i in range(20):
        c.send(h.request("POST", "/echo", "de.test", [("Content-Type", "application/json")],
                         b'{"email":"b%d@example.com"}' % i))
        resp = c.read_response()
        eq(resp.status, 200)
        tid = resp.headers.get("x-transfer-id")
        rec = [x for x in records(e.records) if x["id"] == tid]
        eq(len(rec), 1, "record %s written once before the answer completed" % tid)
        eq((rec[0]["status"], rec[0]["decision"], rec[0]["reason"]), (200, "allow", "domestic"))
        check(rec[0]["bytes_in"] > 0 and rec[0]["bytes_out"] > 0, "bytes counted: %r" % rec[0])
    c.close()


@test
def bodiless_and_chunked_answers_wait_too():
    e = env()
    for path, method in (("/status/204", "GET"), ("/bytes/10", "HEAD"), ("/chunked/5000", "GET")):
        c = h.Conn(e.g.port())
        c.send(h.request(method, path, "de.test"))
        resp = c.read_response(head=(method == "HEAD"))
        tid = resp.headers.get("x-transfer-id")
        check(tid in [x["id"] for x in records(e.records)], "%s %s: record on disk first" % (method, path))
        c.close()


@test
def client_gone_while_record_pending_does_not_crash():
    e = env()
    for i in range(50):
        s = socket.create_connection(("127.0.0.1", e.g.port()))
        s.sendall(b"GET /x?email=z%d@example.com HTTP/1.1\r\nHost: us.test\r\n\r\n" % i)
        s.close()
    time.sleep(0.5)
    check(e.g.alive(), "gateway alive after 50 abandoned exchanges")
    r = h.curl("-H", "Host: de.test", "http://127.0.0.1:%d/echo" % e.g.port())
    eq(r.status, 200, "still serving")


@test
def listener_vendor_routes_requests_without_host():
    up = h.upstream()
    v = h.vendor("legacy", ["legacy.test"], up.port)
    cfg = h.gateway_config([v], listen=[{"address": None, "vendor": "legacy"}, {"address": None}])
    g = h.Gateway(cfg).start()
    (r,), c = h.raw(g.port(0), b"GET /old HTTP/1.0\r\n\r\n")
    c.close()
    eq(r.status, 200, "HTTP/1.0 without Host on the vendor's listener")
    eq(up.last()["headers"][0], ["Host", "legacy.test"], "the vendor's host is the authority")
    (r,), c = h.raw(g.port(1), b"GET /old HTTP/1.0\r\n\r\n")
    c.close()
    eq(r.status, 403, "no Host and no listener vendor")
    g.stop()
    bad = h.gateway_config([v], listen=[{"address": None, "vendor": "legacyy"}])
    res = h.run([h.BINARY, "check", "-c", h.write_config(bad, "bad.yaml")])
    eq(res.returncode, 1, res.stderr)
    check("listener vendor 'legacyy' is not a vendor" in res.stderr, res.stderr)


@test
def failing_vendor_address_is_failed_fast_after_five_failures():
    dead = h.free_port()  # nothing listens there: connection refused
    cfg = h.gateway_config([h.vendor("dead", ["dead.test"], dead)])
    g = h.Gateway(cfg).start()
    statuses = [h.curl("-H", "Host: dead.test", "http://127.0.0.1:%d/x" % g.port()).status for _ in range(7)]
    eq(statuses, [502] * 5 + [503] * 2, "five refusals, then the circuit is open")
    m = h.http_get(g.admin_port, "/metrics")
    body = m[2] if isinstance(m, tuple) else m
    text = body.decode() if isinstance(body, bytes) else str(body)
    check('bordergate_upstream_errors_total{vendor="dead",kind="circuit_open"} 2' in text, text[-2000:])
    check('bordergate_upstream_errors_total{vendor="dead",kind="connect"} 5' in text, "five connect errors")
    g.stop()


@test
def a_dead_vendor_address_fails_over_to_the_next_one():
    """A vendor behind two addresses, the first refusing: every request is answered by the second
    (as nginx's proxy_next_upstream), each refusal counts against the dead address, and once its
    circuit is open requests go straight to the live one without trying it."""
    up = h.upstream()  # 127.0.0.1 only: 127.0.0.2 on the same port refuses
    cfg = h.gateway_config([h.vendor("multi", ["multi.test"], up.port, addresses=["127.0.0.2", "127.0.0.1"])])
    g = h.Gateway(cfg).start()
    for i in range(12):  # the two addresses are taken in turn: every other request meets the dead one
        r = h.curl("-H", "Host: multi.test", "http://127.0.0.1:%d/fo/%d" % (g.port(), i))
        eq(r.status, 200, "request %d: %r" % (i, r))
        rec = h.wait_record(cfg["records"]["path"], r.headers.get("x-transfer-id"))
        eq((rec["dest_ip"], rec["status"]), ("127.0.0.1", 200), "request %d: the record names the address used" % i)
    eq(up.count(), 12, "every request reached the live address once")
    eq(h.metric(g.admin_port, "bordergate_upstream_errors_total", {"vendor": "multi", "kind": "connect"}), 5,
       "five refusals by 127.0.0.2, then its circuit is open and it is skipped")
    g.stop()


@test
def requests_take_a_vendors_equivalent_addresses_in_turn():
    """Two addresses of one vendor in the same country, decided alike: the worker alternates
    between them (nginx's round robin over a name's addresses), each keeping its own pool."""
    a = h.upstream(host="127.0.0.1")
    b = h.upstream(host="127.0.0.2", port=a.port)
    cfg = h.gateway_config([h.vendor("rr", ["rr.test"], a.port, addresses=["127.0.0.1", "127.0.0.2"])])
    g = h.Gateway(cfg).start()
    c = h.Conn(g.port())
    for i in range(10):
        c.send(h.request("GET", "/rr/%d" % i, "rr.test"))
        eq(c.read_response().status, 200)
    eq((a.count(), b.count()), (5, 5), "requests per address")
    eq((len({r["conn"] for r in a.requests}), len({r["conn"] for r in b.requests})), (1, 1),
       "one kept-alive connection per address")
    g.stop()


@test
def failover_never_takes_a_request_to_an_address_decided_otherwise():
    """The live address is in the US, where this vendor's transfers of personal data are sealed
    (on_violation: encrypt); the dead one in DE, where they go as they are. A request with personal
    data built for DE is not sent to the US in clear: 502, and the US address gets nothing. A request
    without personal data is decided alike at both (no personal data), so it fails over."""
    us = h.upstream(host="127.0.0.3")
    v = h.vendor("mixed", ["mixed.test"], us.port, addresses=["127.0.0.2", "127.0.0.3"], regions=["EEA", "US"],
                 basis="none", on_violation="encrypt")
    cfg = h.gateway_config([v])
    g = h.Gateway(cfg).start()
    r = h.curl("-H", "Host: mixed.test", "-H", "Content-Type: application/json", "--data-binary",
               '{"email": "ann.lee@example.com"}', "http://127.0.0.1:%d/pd" % g.port())
    eq(r.status, 502, repr(r))
    eq(us.count(), 0, "nothing reached the US address")
    r = h.curl("-H", "Host: mixed.test", "-H", "User-Agent:", "http://127.0.0.1:%d/plain" % g.port())
    eq(r.status, 200, repr(r))
    rec = h.wait_record(cfg["records"]["path"], r.headers.get("x-transfer-id"))
    eq((rec["dest_ip"], rec["dest_country"], rec["decision"]), ("127.0.0.3", "US", "allow"), "the record")
    eq(us.count(), 1)
    g.stop()


@test
def client_that_stops_reading_is_dropped_after_idle_timeout():
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("big", ["big.test"], up.port)], limits={"idle_timeout": "1s"})
    g = h.Gateway(cfg).start()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    s.connect(("127.0.0.1", g.port()))
    s.sendall(b"GET /bytes/50000000 HTTP/1.1\r\nHost: big.test\r\n\r\n")
    time.sleep(4)  # read nothing: the gateway's queue fills, then idle_timeout runs out
    rss = int(open("/proc/%d/status" % g.proc.pid).read().split("VmRSS:")[1].split()[0])
    check(rss < 64 * 1024, "gateway RSS bounded while the client stalls: %d kB" % rss)
    got, eof, t0 = 0, False, time.time()
    s.settimeout(2)
    try:
        while time.time() - t0 < 8:
            d = s.recv(1 << 20)
            if not d:
                eof = True
                break
            got += len(d)
    except (ConnectionResetError, socket.timeout):
        eof = True
    s.close()
    check(eof, "the gateway closed the stalled connection")
    check(got < 50000000, "the stalled client did not get the whole body (%d bytes)" % got)
    recs = []
    for _ in range(50):
        recs = [r for r in records(cfg["records"]["path"]) if r["vendor"] == "big"]
        if recs:
            break
        time.sleep(0.1)
    eq([r["status"] for r in recs], [499], "recorded as a client that went away")
    check(g.alive(), "gateway alive")
    g.stop()


@test
def per_caller_connection_limit():
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("pc", ["pc.test"], up.port)], limits={"max_connections_per_caller": 3},
                           workers=2)
    g = h.Gateway(cfg).start()
    time.sleep(0.5)  # the harness's readiness probe connection must be gone before we count
    held = [h.Conn(g.port()) for _ in range(3)]
    for c in held:  # each one really is open and served
        c.send(h.request("GET", "/echo", "pc.test"))
        eq(c.read_response().status, 200)
    extra = h.Conn(g.port())
    check(extra.is_closed(timeout=2.0), "the 4th connection from the same caller is closed")
    held[0].close()
    time.sleep(0.3)
    again = h.Conn(g.port())
    again.send(h.request("GET", "/echo", "pc.test"))
    eq(again.read_response().status, 200, "a slot freed by a close is usable again")
    for c in held[1:] + [again]:
        c.close()
    g.stop()


@test
def reload_opens_new_listeners_and_closes_removed_ones():
    import signal
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("rl", ["rl.test"], up.port)], workers=2)
    g = h.Gateway(cfg).start()
    old_port = g.port()
    new_addr = "127.0.0.1:%d" % h.free_port()
    cfg["listen"] = [{"address": new_addr}]
    h.write_config(cfg, g.name + ".yaml")  # the file the gateway was started with
    mark = g.mark()
    g.signal(signal.SIGHUP)
    h.wait_port(h.port_of(new_addr), timeout=5)
    time.sleep(0.3)
    r = h.curl("-H", "Host: rl.test", "http://%s/echo" % new_addr)
    eq(r.status, 200, "the new listener serves")
    r = h.curl("-H", "Host: rl.test", "http://127.0.0.1:%d/echo" % old_port)
    check(r.status is None or r.status == 0 or r.rc != 0, "the removed listener is closed: %r" % r)
    check("config reloaded" in g.stderr_since(mark), g.stderr_since(mark))
    # A listener that cannot be bound fails the reload and keeps everything as it was.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    cfg["listen"] = [{"address": new_addr}, {"address": "127.0.0.1:%d" % blocker.getsockname()[1]}]
    h.write_config(cfg, g.name + ".yaml")
    mark = g.mark()
    g.signal(signal.SIGHUP)
    time.sleep(1.0)
    check("reload failed" in g.stderr_since(mark), g.stderr_since(mark))
    eq(h.curl("-H", "Host: rl.test", "http://%s/echo" % new_addr).status, 200, "still serving after a failed reload")
    blocker.close()
    g.stop()


@test
def connections_per_vendor_address_are_bounded_and_requests_queue():
    import threading
    up = h.upstream()
    v = h.vendor("narrow", ["narrow.test"], up.port, addresses=["127.0.0.1"])
    v["upstream"]["max_connections"] = 2
    cfg = h.gateway_config([v], limits={"upstream_connect_timeout": "2s"})
    g = h.Gateway(cfg).start()
    results = []

    def one(i):
        results.append(h.curl("-H", "Host: narrow.test", "http://127.0.0.1:%d/delay/400?i=%d" % (g.port(), i)).status)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    eq(sorted(results), [200] * 6, "every queued request was served")
    conns = {r["conn"] for r in up.requests if r["target"].startswith("/delay/400")}
    check(len(conns) <= 2, "at most 2 connections to the address: %r" % conns)
    # A request that waits longer than the connect timeout for a slot gets 503.
    results.clear()
    ts = [threading.Thread(target=lambda: results.append(h.curl(
        "-H", "Host: narrow.test", "http://127.0.0.1:%d/delay/4500" % g.port()).status)) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    eq(sorted(results), [200, 200, 503], "the third waited past the connect timeout")
    g.stop()


@test
def slow_post_is_cut_at_body_timeout():
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("sp", ["sp.test"], up.port)],
                           limits={"idle_timeout": "10s", "body_timeout": "2s"})
    g = h.Gateway(cfg).start()
    s = socket.create_connection(("127.0.0.1", g.port()))
    s.sendall(b"POST /slow HTTP/1.1\r\nHost: sp.test\r\nContent-Length: 100\r\n\r\n")
    t0, closed, answer = time.time(), False, b""
    s.settimeout(0.5)
    while time.time() - t0 < 8:
        try:
            s.sendall(b"x")  # one byte every half second: never idle, never done
        except OSError:
            closed = True
            break
        try:
            d = s.recv(4096)
            if not d:
                closed = True
                break
            answer += d
        except socket.timeout:
            pass
        except OSError:
            closed = True
            break
    took = time.time() - t0
    s.close()
    check(closed and took < 5, "closed after %.1fs (body_timeout 2s, idle 10s)" % took)
    check(answer.startswith(b"HTTP/1.1 408"), "408 before closing: %r" % answer[:40])
    eq([r["target"] for r in up.requests if r["target"] == "/slow"], [], "nothing reached the vendor")
    recs = h.wait_until(lambda: [r for r in records(cfg["records"]["path"]) if r["vendor"] == "sp"], msg="record")
    eq([r["status"] for r in recs], [408], "recorded as 408")
    g.stop()


@test
def geoip_lookups_are_counted_in_metrics():
    up = h.upstream()
    g = h.Gateway(h.gateway_config([h.vendor("geo", ["geo.test"], up.port)])).start()
    for _ in range(5):
        eq(h.curl("-H", "Host: geo.test", "http://127.0.0.1:%d/echo" % g.port()).status, 200)
    hit = h.metric(g.admin_port, "bordergate_geoip_lookups_total", {"result": "cache_hit"})
    miss = h.metric(g.admin_port, "bordergate_geoip_lookups_total", {"result": "lookup"})
    eq((hit, miss), (4.0, 1.0), "one lookup, then the worker's cache answers")
    g.stop()


if __name__ == "__main__":
    h.main()
