#!/usr/bin/env python3
"""test_geo_e2e.py -- issue 4 end to end: destinations classified on the address connected to.

Vendors on 127.0.0.2/.3/.4 classified DE/US/JP through a test MMDB built by mkmmdb (no
overrides); geoip.overrides beating the database; a vendor with two addresses in two countries
(pinned, and resolved through DNS: `localhost` -> 127.0.0.1 and ::1, upstreams listening on
both) connects only to the allowed one; an address in no country is `unknown` and fails closed
(451 region_mismatch). Records show dest_ip, dest_country and dest_region.
When this machine's resolver gives `localhost` only one address, the DNS test runs the gateway
in a private mount namespace (unshare -m) whose /etc/hosts maps localhost to both; nothing
outside the namespace changes. Ends with "N passed, N failed".
"""
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Failure, Gateway, Upstream, check, defer, eq, free_port, gateway_config,  # noqa: E402
                     geoip_db, have_mkmmdb, main, raw, read_records, record_files, request, scan_records,
                     test, tmpdir, upstream, vendor, wait_record)

TODAY = datetime.date.today()
BODY = json.dumps({"email": "jan.kowalski@example.com"})
JSON_H = [("Content-Type", "application/json")]


def day(delta):
    return (TODAY + datetime.timedelta(days=delta)).isoformat()


def send(gw, host, body=BODY, target="/v1/x"):
    (resp,), _ = raw(gw.port(), request("POST" if body else "GET", target, host, JSON_H if body else [], body))
    return resp


def rec_of(gw, resp):
    return wait_record(gw.cfg["records"]["path"], resp.headers.get("x-transfer-id"))


def with_db(cfg, entries, name):
    """Point cfg at a fresh mkmmdb database holding exactly `entries`."""
    check(have_mkmmdb(), "build/tests/tools/mkmmdb is not built (make)")
    cfg["geoip"] = {"database": geoip_db(entries, name)}
    return cfg


def own_records(cfg, name):
    cfg["records"]["path"] = os.path.join(tmpdir(), "records-" + name, "transfers.jsonl")
    return cfg


def dual_upstreams():
    """Test upstreams on 127.0.0.1:P and [::1]:P (the same port P)."""
    for _ in range(50):
        v4 = upstream(host="127.0.0.1")
        try:
            v6 = upstream(host="::1", port=v4.port)
            return v4, v6
        except OSError:
            v4.stop()
    raise Failure("no port free on both 127.0.0.1 and ::1")


# ---- loopback vendors through the test database ----------------------------------------------

@test
def vendors_on_loopback_classified_de_us_jp_by_the_mmdb():
    ups = {ip: upstream(host=ip) for ip in ("127.0.0.2", "127.0.0.3", "127.0.0.4")}
    scc = {"module": 2, "reference": "DPA-GEO-1", "signed": day(-10), "expires": day(300)}
    vs = [vendor("v-de", ["de.example"], ups["127.0.0.2"].port, addresses=["127.0.0.2"]),
          vendor("v-us", ["us.example"], ups["127.0.0.3"].port, addresses=["127.0.0.3"], regions=["US"], scc=scc),
          vendor("v-jp", ["jp.example"], ups["127.0.0.4"].port, addresses=["127.0.0.4"], regions=["JP"])]
    cfg = own_records(gateway_config(vs), "mmdb")
    check(have_mkmmdb() and "overrides" not in cfg["geoip"], "not the mkmmdb database: %r" % cfg["geoip"])
    gw = Gateway(cfg, name="mmdb").start()
    want = {"de.example": ("127.0.0.2", "DE", "EEA", False, "domestic"),
            "us.example": ("127.0.0.3", "US", None, True, "scc"),
            "jp.example": ("127.0.0.4", "JP", None, True, "adequacy")}
    for host, (ip, cc, region, xb, mech) in want.items():
        r = send(gw, host)
        eq(r.status, 200, host)
        eq(ups[ip].count(), 1, "%s: requests at %s" % (host, ip))
        rec = rec_of(gw, r)
        eq((rec["dest_ip"], rec["dest_country"], rec["cross_border"], rec["mechanism"]), (ip, cc, xb, mech), host)
        if region:
            eq(rec["dest_region"], region, host + " region")
        else:
            check(rec["dest_region"] not in ("EEA", "", "unknown"), "%s region %r" % (host, rec["dest_region"]))
    gw.stop()


@test
def address_outside_the_vendors_regions_is_451_region_mismatch_even_without_personal_data():
    up = upstream(host="127.0.0.3")
    v = vendor("eu-only", ["eu-only.example"], up.port, addresses=["127.0.0.3"])  # regions [EEA], lands in US
    gw = Gateway(own_records(gateway_config([v]), "mismatch"), name="mismatch").start()
    for body in (BODY, b""):
        r = send(gw, "eu-only.example", body)
        eq(r.status, 451, "status (body %r)" % body)
        p = r.json()
        eq((p["reason"], p["destination_country"]), ("region_mismatch", "US"), "problem")
        rec = rec_of(gw, r)
        eq((rec["dest_ip"], rec["dest_country"], rec["decision"], rec["reason"]),
           ("127.0.0.3", "US", "block", "region_mismatch"), "record")
    eq(up.count(), 0, "requests at the vendor")
    gw.stop()


@test
def overrides_beat_the_database():
    ups = {ip: upstream(host=ip) for ip in ("127.0.0.2", "127.0.0.3")}
    vs = [vendor("moved-de", ["moved.example"], ups["127.0.0.3"].port, addresses=["127.0.0.3"]),
          vendor("moved-us", ["away.example"], ups["127.0.0.2"].port, addresses=["127.0.0.2"])]
    cfg = own_records(gateway_config(vs), "overrides")
    cfg["geoip"] = {"database": geoip_db(), "overrides": [{"network": "127.0.0.3/32", "country": "DE"},
                                                          {"network": "127.0.0.0/30", "country": "US"}]}
    gw = Gateway(cfg, name="overrides").start()
    r = send(gw, "moved.example")  # the DB says US, the override DE
    eq(r.status, 200, "127.0.0.3 overridden to DE")
    rec = rec_of(gw, r)
    eq((rec["dest_ip"], rec["dest_country"], rec["dest_region"]), ("127.0.0.3", "DE", "EEA"), "record")
    eq(ups["127.0.0.3"].count(), 1, "forwarded")
    r = send(gw, "away.example")  # the DB says DE, the override US
    eq(r.status, 451, "127.0.0.2 overridden to US")
    eq(r.json()["destination_country"], "US", "problem destination_country")
    eq(rec_of(gw, r)["dest_country"], "US", "record")
    eq(ups["127.0.0.2"].count(), 0, "forwarded")
    gw.stop()


@test
def unknown_country_fails_closed():
    up = upstream(host="127.0.0.5")  # 127.0.0.5 is in neither the database nor an override
    vs = [vendor("nowhere", ["nowhere.example"], up.port, addresses=["127.0.0.5"], regions=["EEA", "JP"])]
    gw = Gateway(own_records(gateway_config(vs), "unknown"), name="unknown").start()
    for body in (BODY, b""):
        r = send(gw, "nowhere.example", body)
        eq(r.status, 451, "status (body %r)" % body)
        eq(r.json()["reason"], "region_mismatch", "reason")
        rec = rec_of(gw, r)
        eq((rec["dest_ip"], rec["decision"], rec["reason"], rec["cross_border"]),
           ("127.0.0.5", "block", "region_mismatch", True), "record")
        check(rec["dest_country"] in ("", "ZZ", "XX"), "dest_country %r" % rec["dest_country"])
        eq(rec["dest_region"], "unknown", "dest_region")
    eq(up.count(), 0, "requests at the vendor")
    gw.stop()


@test
def iso_quirks_and_ipv4_mapped_addresses():
    """GR (not EL) and the EU's outermost regions (GF) are inside the EEA; an IPv4-mapped IPv6
    address takes its IPv4 entry; Canada is adequate (commercial scope)."""
    ips = ("127.0.0.6", "127.0.0.7", "127.0.0.2", "127.0.0.8")
    ups = {ip: upstream(host=ip) for ip in ips}
    vs = [vendor("v-gf", ["gf.example"], ups["127.0.0.6"].port, addresses=["127.0.0.6"]),
          vendor("v-gr", ["gr.example"], ups["127.0.0.7"].port, addresses=["127.0.0.7"]),
          vendor("v-mapped", ["mapped.example"], ups["127.0.0.2"].port, addresses=["::ffff:127.0.0.2"]),
          vendor("v-ca", ["ca.example"], ups["127.0.0.8"].port, addresses=["127.0.0.8"], regions=["CA"])]
    cfg = with_db(own_records(gateway_config(vs), "quirks"),
                  {"127.0.0.6/32": "GF", "127.0.0.7/32": "GR", "127.0.0.2/32": "DE", "127.0.0.8/32": "CA"},
                  "quirks.mmdb")
    gw = Gateway(cfg, name="quirks").start()
    want = {"gf.example": ("127.0.0.6", "GF", "EEA", "domestic"), "gr.example": ("127.0.0.7", "GR", "EEA", "domestic"),
            "mapped.example": ("::ffff:127.0.0.2", "DE", "EEA", "domestic"),
            "ca.example": ("127.0.0.8", "CA", "adequate", "adequacy")}
    for host, w in want.items():
        r = send(gw, host)
        eq(r.status, 200, host)
        rec = rec_of(gw, r)
        eq((rec["dest_ip"], rec["dest_country"], rec["dest_region"], rec["mechanism"]), w, host)
    eq([ups[ip].count() for ip in ips], [1, 1, 1, 1], "requests at each vendor")
    gw.stop()


@test
def database_is_reopened_on_sighup():
    up = upstream(host="127.0.0.3")
    live = os.path.join(tmpdir(), "live.mmdb")
    shutil.copy(geoip_db({"127.0.0.3/32": "US"}, "live-us.mmdb"), live)
    cfg = own_records(gateway_config([vendor("eu", ["eu.example"], up.port, addresses=["127.0.0.3"])]), "reload")
    cfg["geoip"] = {"database": live}
    gw = Gateway(cfg, name="reload").start()
    eq(send(gw, "eu.example", b"").status, 451, "127.0.0.3 in US: outside the vendor's EEA")
    shutil.copy(geoip_db({"127.0.0.3/32": "DE"}, "live-de.mmdb"), live + ".new")
    os.rename(live + ".new", live)  # replaced atomically, as geoip-update does
    mark = gw.mark()
    gw.signal(signal.SIGHUP)
    end = time.monotonic() + 5
    while "reload" not in gw.stderr_since(mark) and time.monotonic() < end:
        time.sleep(0.05)
    r = send(gw, "eu.example", b"")
    eq(r.status, 200, "after SIGHUP the new database says DE")
    eq(rec_of(gw, r)["dest_country"], "DE", "record dest_country")
    eq(up.count(), 1, "requests at the vendor")
    gw.stop()


# ---- one vendor, two addresses, two countries -------------------------------------------------

def two_address_case(name, entries, pinned, want_ip):
    v4, v6 = dual_upstreams()
    v = vendor("dual", ["localhost"], v4.port)
    if pinned:
        v["upstream"]["addresses"] = pinned
    else:
        del v["upstream"]["addresses"]  # resolve `localhost` through DNS
    cfg = own_records(with_db(gateway_config([v]), entries, name + ".mmdb"), name)
    return v4, v6, cfg


def check_only(v4, v6, gw, want_ip, n=3):
    for i in range(n):
        r = send(gw, "localhost:%d" % v4.port)
        eq(r.status, 200, "request %d" % i)
        rec = rec_of(gw, r)
        eq(rec["dest_ip"], want_ip, "record dest_ip")
        eq(rec["dest_country"], "DE", "record dest_country")
    got4, got6 = v4.count(), v6.count()
    eq((got4, got6), (n, 0) if want_ip == "127.0.0.1" else (0, n), "requests at (127.0.0.1, ::1)")


@test
def pinned_addresses_in_two_countries_connect_only_to_the_allowed_one():
    for order in (["::1", "127.0.0.1"], ["127.0.0.1", "::1"]):
        for allowed in ("127.0.0.1", "::1"):
            entries = {"127.0.0.1/32": "DE" if allowed == "127.0.0.1" else "US",
                       "::1/128": "DE" if allowed == "::1" else "US"}
            tag = "pin-%s-%s" % ("v6first" if order[0] == "::1" else "v4first", "v4" if "." in allowed else "v6")
            v4, v6, cfg = two_address_case(tag, entries, order, allowed)
            gw = Gateway(cfg, name=tag).start()
            check_only(v4, v6, gw, allowed)
            gw.stop()
            v4.stop()
            v6.stop()


def resolves_to_both(name="localhost"):
    try:
        fams = {a[0] for a in socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)}
    except OSError:
        return False
    return socket.AF_INET in fams and socket.AF_INET6 in fams


def start_resolving_localhost_to_both(gw):
    """Start gw; when localhost does not already resolve to both 127.0.0.1 and ::1, run it in a
    private mount namespace whose /etc/hosts says so."""
    if resolves_to_both():
        return gw.start()
    text = "127.0.0.1 localhost\n::1 localhost\n"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "printf '%s' > /tmp/.bg-hosts-probe.$$ && mount --bind "
                            "/tmp/.bg-hosts-probe.$$ /etc/hosts && getent ahosts localhost; rm -f /tmp/.bg-hosts-probe.$$"
                            % text.replace("\n", "\\n")], capture_output=True, text=True, timeout=10)
    check(probe.returncode == 0 and "::1" in probe.stdout and "127.0.0.1" in probe.stdout,
          "cannot give localhost two addresses in a mount namespace: %s" % (probe.stderr or probe.stdout))
    harness.start_with_hosts(gw, text, name="hosts-dual")
    return gw


@test
def dns_name_with_two_addresses_in_two_countries_connects_only_to_the_allowed_one():
    for allowed in ("::1", "127.0.0.1"):
        entries = {"127.0.0.1/32": "DE" if allowed == "127.0.0.1" else "US",
                   "::1/128": "DE" if allowed == "::1" else "US"}
        tag = "dns-%s" % ("v4" if "." in allowed else "v6")
        v4, v6, cfg = two_address_case(tag, entries, None, allowed)
        gw = start_resolving_localhost_to_both(Gateway(cfg, name=tag))
        check_only(v4, v6, gw, allowed)
        gw.stop()
        v4.stop()
        v6.stop()


@test
def dns_name_with_no_allowed_address_is_451_and_reaches_nobody():
    v4, v6, cfg = two_address_case("dns-none", {"127.0.0.1/32": "US", "::1/128": "JP"}, None, None)
    gw = start_resolving_localhost_to_both(Gateway(cfg, name="dns-none"))
    r = send(gw, "localhost:%d" % v4.port)
    eq(r.status, 451, "status")
    eq(r.json()["reason"], "region_mismatch", "reason")
    rec = rec_of(gw, r)
    check(rec["dest_ip"] in ("127.0.0.1", "::1"), "dest_ip %r" % rec["dest_ip"])
    check(rec["dest_country"] in ("US", "JP"), "dest_country %r" % rec["dest_country"])
    eq((v4.count(), v6.count()), (0, 0), "requests at (127.0.0.1, ::1)")
    gw.stop()


@test
def records_of_this_file_carry_no_personal_data():
    recs = [r for p in record_files() for r in read_records(p)]
    check(len(recs) >= 20, "only %d records" % len(recs))
    eq(scan_records(recs), [], "findings in records")


if __name__ == "__main__":
    main()
