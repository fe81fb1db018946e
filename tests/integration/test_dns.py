#!/usr/bin/env python3
"""test_dns.py -- vendors reached by name (no pinned addresses): the gateway resolves each name
once however many requests ask at the same time, serves an expired answer while one lookup
refreshes it, and follows the name when its address changes. The gateway runs in a private mount
namespace whose /etc/hosts the test writes (harness.start_with_hosts), so the names resolve
without a DNS server and the test can change them."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402


@h.once
def env():
    e = type("E", (), {})()
    e.a = h.upstream(host="127.0.0.1")
    e.b = h.upstream(host="127.0.0.2", port=e.a.port)
    v = h.vendor("named", ["api.named.test"], e.a.port)
    del v["upstream"]["addresses"]  # resolved, not pinned
    cfg = h.gateway_config([v], limits={"dns_ttl": "1s"})
    e.gw = h.Gateway(cfg, name="dns")
    e.hosts = h.start_with_hosts(e.gw, "127.0.0.1 api.named.test\n", name="hosts-dns")
    return e


def lookups():
    return h.metric(env().gw.admin_port, "bordergate_dns_lookups_total", {"result": "ok"}) or 0


def at_once(n, tag):
    """n requests on n connections released together; their statuses."""
    e, go, out = env(), threading.Event(), []
    conns = [h.Conn(e.gw.port()) for _ in range(n)]

    def one(i):
        go.wait()
        conns[i].send(h.request("GET", "/%s/%d" % (tag, i), "api.named.test"))
        out.append(conns[i].read_response().status)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    [t.start() for t in ts]
    go.set()
    [t.join() for t in ts]
    [c.close() for c in conns]
    return sorted(out)


@test
def thirty_requests_for_an_unresolved_name_share_one_lookup():
    eq(at_once(30, "cold"), [200] * 30)
    eq(lookups(), 1, "one lookup for the name, the other 29 requests waited on it")
    eq(at_once(10, "warm"), [200] * 10)
    eq(lookups(), 1, "fresh: no lookup")


@test
def an_expired_answer_is_refreshed_by_one_lookup_while_it_serves():
    before = lookups()
    time.sleep(1.3)  # past dns_ttl
    eq(at_once(20, "expired"), [200] * 20)
    h.wait_until(lambda: lookups() == before + 1, msg="the refresh finished")
    eq(at_once(10, "refreshed"), [200] * 10)
    eq(lookups(), before + 1, "one refresh for twenty requests after the expiry")


@test
def a_name_that_moves_is_followed_after_its_ttl():
    e = env()
    with open(e.hosts, "w") as f:
        f.write("127.0.0.2 api.named.test\n")
    n_b = e.b.count()

    def moved():
        eq(at_once(1, "moved"), [200])
        return e.b.count() > n_b
    h.wait_until(moved, timeout=5, msg="requests reach the name's new address")
    check(e.b.last()["target"].startswith("/moved/"), e.b.last()["target"])


@test
def a_name_whose_refresh_fails_keeps_its_last_addresses_for_a_bounded_time():
    """The name vanishes from DNS: the failed refreshes keep its last addresses serving (each
    request still decided on them, GeoIP included) for 10 x dns_ttl past their expiry, counted as
    bordergate_dns_lookups_total{result="stale"}; then requests are blocked (451 dns_failed, fail
    closed), and once the name is back they reach it again. Before serve-stale, the first failed
    refresh replaced the answer: 451 dns_failed from dns_ttl after the name vanished."""
    up = h.upstream(host="127.0.0.1")
    v = h.vendor("stale", ["api.stale.test"], up.port)
    del v["upstream"]["addresses"]
    gw = h.Gateway(h.gateway_config([v], limits={"dns_ttl": "500ms"}), name="dns-stale")
    hosts = h.start_with_hosts(gw, "127.0.0.1 api.stale.test\n", name="hosts-stale")
    h.defer(gw.stop)

    def status(tag):
        c = h.Conn(gw.port())
        c.send(h.request("GET", "/%s" % tag, "api.stale.test"))
        r = c.read_response()
        c.close()
        return r

    eq(status("first").status, 200, "the name resolves")
    with open(hosts, "w") as f:
        f.write("127.0.0.9 other.stale.test\n")
    gone = time.monotonic()
    n = up.count()
    for i in range(10):  # 3 s: six times dns_ttl, every refresh in it fails
        eq(status("stale-%d" % i).status, 200, "request %.1fs after the name vanished" % (time.monotonic() - gone))
        time.sleep(0.3)
    eq(up.count(), n + 10, "requests that reached the last address")
    stale = h.metric(gw.admin_port, "bordergate_dns_lookups_total", {"result": "stale"})
    check(stale and stale >= 1, "bordergate_dns_lookups_total{result=stale} = %r" % stale)
    # Bounded: 10 x 500 ms past the answer's expiry, then the failure is the answer.
    r = h.wait_until(lambda: (lambda r: r if r.status != 200 else None)(status("late")), timeout=10,
                     interval=0.2, msg="the stale answer's bound")
    dt = time.monotonic() - gone
    eq((r.status, r.json().get("reason")), (451, "dns_failed"), "a request past the stale bound (fail closed)")
    check(4.0 <= dt <= 8.0, "stale addresses served for %.1fs after the name vanished (bound 5.5 s)" % dt)
    with open(hosts, "w") as f:
        f.write("127.0.0.1 api.stale.test\n")
    h.wait_until(lambda: status("back").status == 200, timeout=8, interval=0.3, msg="the name back")


@test
def stops_cleanly():
    env().gw.stop()


if __name__ == "__main__":
    h.main()
