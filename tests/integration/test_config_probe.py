#!/usr/bin/env python3
"""test_config_probe.py -- the config and policy surface as a security team meets it: the real
binary's `check`, `reload` and `run` on hand-written YAML (exact FILE:LINE:COL messages and exit
codes), for the traps a review of the allowlist found: bases that contradict themselves or the
vendor, YAML tags, adequacy decisions with dates, overlapping and over-broad host patterns, a
reload the gateway would refuse. Every gateway runs on loopback ports against upstream.py.
Ends with "N passed, N failed".
"""
import datetime
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402


def head():
    """The top of every config here: jurisdiction, one loopback listener, a fresh test GeoIP
    database (no age warning) and the repository's regions file. Lines 1-4."""
    return ("jurisdiction: EEA\n"
            "listen: [{address: \"127.0.0.1:%d\"}]\n"
            "geoip: {database: \"%s\"}\n"
            "regions: config/regions.yaml\n" % (h.free_port(), h.geoip_config()["database"]))


_n = [0]


def check_text(text, name=None):
    """Write text to a fresh file and run `bordergate check -c` on it: (rc, file, stdout, stderr)."""
    _n[0] += 1
    path = os.path.join(h.tmpdir(), name or "probe%d.yaml" % _n[0])
    with open(path, "wb") as f:
        f.write(text if isinstance(text, bytes) else text.encode())
    r = h.run([h.BINARY, "check", "-c", path])
    return r.returncode, path, r.stdout, r.stderr


def refused(text, line, col, message):
    """check exits 1 naming FILE:LINE:COL: message on stderr, nothing on stdout."""
    rc, path, out, err = check_text(text)
    want = "%s:%d:%d: %s\n" % (path, line, col, message)
    eq(rc, 1, "exit code; stderr %r" % err)
    check(want in err, "stderr lacks %r: %r" % (want, err))
    eq(out, "", "stdout of an invalid config")


def accepted(text, warning=None):
    """check exits 0 with one OK line; with `warning`, a line on stderr starts with FILE: and then
    `warning` (LINE:COL: warning: ...)."""
    rc, path, out, err = check_text(text)
    eq(rc, 0, "exit code; stderr %r" % err)
    check(out.startswith(path + ": OK ("), "OK line: %r" % out)
    if warning:
        check(any(ln.startswith("%s:%s" % (path, warning)) for ln in err.splitlines()),
              "stderr lacks %r: %r" % (warning, err))
    return err


# ---- bases that contradict themselves or the vendor -------------------------------------------

@test
def dpf_certified_without_expires_is_refused():
    # The policy never counts a certification without a date: it used to pass check and then
    # block every transfer to the US as dpf_lapsed.
    refused(head() + "vendors:\n"
            "  - {name: a, hosts: [a.example], regions: [US], dpf: {certified: true}}\n",
            6, 55, "vendor 'a': dpf certified: true needs 'expires' (the date the certification must be "
            "renewed by); without it the certification is no transfer basis")
    accepted(head() + "vendors:\n"
             "  - {name: a, hosts: [a.example], regions: [US], dpf: {certified: true, expires: 2099-01-01}}\n")


@test
def scc_module_the_role_cannot_sign_is_refused():
    # Module 1 is controller to controller; the default role is processor. It used to pass check
    # and then block every transfer as scc_module_role_mismatch.
    refused(head() + "vendors:\n"
            "  - name: a\n"
            "    hosts: [a.example]\n"
            "    regions: [IN]\n"
            "    scc: {module: 1, signed: 2024-01-01, expires: 2099-01-01}\n",
            9, 19, "vendor 'a': scc module 1 (controller to controller) does not fit role processor "
            "(a processor signs module 2 or 3)")
    accepted(head() + "vendors:\n"
             "  - name: a\n"
             "    role: controller\n"
             "    hosts: [a.example]\n"
             "    regions: [IN]\n"
             "    scc: {module: 1, signed: 2024-01-01, expires: 2099-01-01}\n")


@test
def scc_signed_in_the_future_warns():
    accepted(head() + "vendors:\n"
             "  - name: a\n"
             "    hosts: [a.example]\n"
             "    regions: [IN]\n"
             "    scc: {module: 2, signed: 2098-01-01, expires: 2099-01-01}\n",
             warning="9:30: warning: vendor 'a': scc signed 2098-01-01 is in the future; it is no transfer "
             "basis before then (in ")


# ---- adequacy decisions with dates ------------------------------------------------------------

def day(delta):
    return (datetime.date.today() + datetime.timedelta(days=delta)).isoformat()


EEA = ("AT, BE, BG, HR, CY, CZ, DK, EE, FI, FR, DE, GR, HU, IE, IT, LV, LT, LU, MT, NL, PL, PT, RO, SK, "
       "SI, ES, SE, IS, LI, NO, GF, GP, MQ, RE, YT, MF, AX")


def personal_get(gw, host):
    """A GET with an e-mail address in the query (identifier) through the gateway."""
    (resp,), _ = h.raw(gw.port(), h.request("GET", "/v1/events?email=alice.martin%40example.com", host))
    return resp


@test
def adequacy_past_its_sunset_is_no_basis():
    # The regions file's `expires` (the UK decision's sunset) used to be "informative": a country
    # stayed adequate after it, and personal data went on flowing there on adequacy alone.
    regions = os.path.join(h.tmpdir(), "sunset-regions.yaml")
    with open(regions, "w") as f:
        f.write("regions:\n  EEA: [%s]\n"
                "adequacy:\n"
                "  - {country: JP, date: 2019-01-23, expires: %s}\n"
                "  - {country: CH, date: 2000-07-26}\n" % (EEA, day(-1)))
    up_jp, up_ch = h.upstream(host="127.0.0.4"), h.upstream(host="127.0.0.5")
    cfg = h.gateway_config([
        h.vendor("jp-vendor", ["jp.example"], up_jp.port, addresses=["127.0.0.4"], regions=["JP"]),
        h.vendor("ch-vendor", ["ch.example"], up_ch.port, addresses=["127.0.0.5"], regions=["CH"]),
    ], regions=regions)
    cfg["geoip"]["overrides"] = [{"network": "127.0.0.4/32", "country": "JP"},
                                 {"network": "127.0.0.5/32", "country": "CH"}]
    path = h.write_config(cfg, "sunset.yaml")
    r = h.run([h.BINARY, "check", "-c", path])
    eq(r.returncode, 0, "check: %s" % r.stderr)
    check("warning: adequacy decision for JP expired on %s; transfers there need scc or bcr" % day(-1)
          in r.stderr, "check warns of the sunset: %r" % r.stderr)
    gw = h.Gateway(cfg, name="sunset").start()
    ch = personal_get(gw, "ch.example")
    eq(ch.status, 200, "CH (adequate, no sunset)")
    jp = personal_get(gw, "jp.example")
    eq(jp.status, 451, "JP after its sunset")
    p = jp.json()
    eq(p.get("reason"), "adequacy_expired", "problem reason")
    eq(len(up_jp.requests), 0, "nothing reached the JP vendor")
    rec = h.wait_record(cfg["records"]["path"], jp.headers.get("x-transfer-id"))
    eq((rec["decision"], rec["reason"], rec["mechanism"]), ("block", "adequacy_expired", "none"), "record")
    # Dashboards group transfers by the record's region: past the sunset JP is a third country.
    eq((rec["dest_country"], rec["dest_region"], rec["cross_border"]), ("JP", "third_country", True), "record region")
    rec = h.wait_record(cfg["records"]["path"], ch.headers.get("x-transfer-id"))
    eq((rec["dest_country"], rec["dest_region"]), ("CH", "adequate"), "CH's record region")
    gw.stop()


# ---- a basis that ends while the gateway runs ---------------------------------------------------

# A clock for the gateway alone: CLOCK_REALTIME shifted by BG_TEST_CLOCK_OFFSET seconds (libuv's
# timers use CLOCK_MONOTONIC and are untouched). Built here with the compiler `make` uses.
SHIFT_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
int clock_gettime(clockid_t clk, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    if (!real)
        real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(clk, ts);
    const char *off = getenv("BG_TEST_CLOCK_OFFSET");
    if (rc == 0 && off && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE))
        ts->tv_sec += strtoll(off, NULL, 10);
    return rc;
}
"""


@h.once
def clock_shift_lib():
    return h.build_preload("clockshift", SHIFT_C)


@test
def scc_and_adequacy_ending_while_running_block_the_next_request_without_a_reload():
    # The gateway's clock is set 10 s before midnight UTC of the day an SCC and an adequacy
    # decision end; the same requests before and after that instant, with no reload between.
    end = datetime.date.today() + datetime.timedelta(days=3)
    end_s = int(datetime.datetime(end.year, end.month, end.day, tzinfo=datetime.timezone.utc).timestamp())
    offset = end_s - 10 - int(time.time())  # the instant is 10 s after now: start-up fits before it
    t0 = time.monotonic()
    regions = os.path.join(h.tmpdir(), "ending-regions.yaml")
    with open(regions, "w") as f:
        f.write("regions:\n  EEA: [%s]\n"
                "adequacy:\n  - {country: JP, date: 2019-01-23, expires: %s}\n" % (EEA, end.isoformat()))
    up_in, up_jp = h.upstream(host="127.0.0.6"), h.upstream(host="127.0.0.4")
    scc = {"module": 2, "reference": "DPA-ENDING", "signed": "2024-01-01", "expires": end.isoformat()}
    cfg = h.gateway_config([
        h.vendor("scc-in", ["in.example"], up_in.port, addresses=["127.0.0.6"], regions=["IN"], scc=scc),
        h.vendor("adq-jp", ["jp.example"], up_jp.port, addresses=["127.0.0.4"], regions=["JP"]),
    ], regions=regions)
    cfg["geoip"]["overrides"] = [{"network": "127.0.0.6/32", "country": "IN"},
                                 {"network": "127.0.0.4/32", "country": "JP"}]
    gw = h.start_preloaded(cfg, "ending", [clock_shift_lib()], {"BG_TEST_CLOCK_OFFSET": str(offset)})
    before = {host: personal_get(gw, host) for host in ("in.example", "jp.example")}
    eq(before["in.example"].status, 200, "SCC before its expiry")
    eq(before["jp.example"].status, 200, "adequacy before its sunset")
    rec = h.wait_record(cfg["records"]["path"], before["in.example"].headers.get("x-transfer-id"))
    eq((rec["reason"], rec["mechanism"]), ("scc", "scc"), "record before")
    check(rec["ts"].startswith((end - datetime.timedelta(days=1)).isoformat()), "record time %r" % rec["ts"])
    time.sleep(max(0.0, 11.0 - (time.monotonic() - t0)))
    after = {host: personal_get(gw, host) for host in ("in.example", "jp.example")}
    eq(after["in.example"].status, 451, "SCC after its expiry")
    eq(after["in.example"].json().get("reason"), "scc_expired", "SCC reason")
    eq(after["jp.example"].status, 451, "adequacy after its sunset")
    eq(after["jp.example"].json().get("reason"), "adequacy_expired", "adequacy reason")
    eq(reloads(gw, "success") + reloads(gw, "error"), 0, "no reload happened")
    eq(len(up_in.requests), 1, "the IN vendor got only the request before the expiry")
    eq(len(up_jp.requests), 1, "the JP vendor got only the request before the sunset")
    gw.stop()


# ---- reload ------------------------------------------------------------------------------------

def reloads(gw, result):
    return h.metric(gw.admin_port, "bordergate_config_reloads_total", {"result": result}) or 0


@test
def reload_command_refuses_what_the_gateway_would_refuse():
    # A key file of the wrong length loads as config but fails when the gateway opens it: the
    # command used to say "reload requested" (exit 0) and the gateway then logged "reload failed".
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("a", ["a.test"], up.port)],
                           pid_file=os.path.join(h.tmpdir(), "probe-reload.pid"))
    gw = h.Gateway(cfg, name="probe-reload").start()
    h.wait_until(lambda: os.path.exists(cfg["pid_file"]), msg="pid file")
    bad_keys = os.path.join(h.tmpdir(), "short-keys")
    os.makedirs(bad_keys, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(bad_keys, "k1.key"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("c2hvcnQga2V5IG9mIDMyIGJ5dGVzIG9ubHkgLi4uLi4uLi4=\n")  # 35 bytes, not 64
    bad = dict(cfg, encryption={"keys": bad_keys, "active_key": "k1"})
    h.write_config(bad, gw.name + ".yaml")
    r = h.run([h.BINARY, "reload", "-c", gw.path])
    eq(r.returncode, 1, "bordergate reload on a config check refuses: %s%s" % (r.stdout, r.stderr))
    check("must hold base64 of exactly 64 bytes" in r.stderr, "names the key problem: %r" % r.stderr)
    check("not reloading" in r.stderr and "reload requested" not in r.stdout, "nothing sent: %r" % r.stdout)
    eq(h.run([h.BINARY, "check", "-c", gw.path]).returncode, 1, "check agrees")
    # The gateway was never asked: no reload, good or bad, and it still serves.
    eq(reloads(gw, "error"), 0, "reloads_total{result=error}")
    eq(reloads(gw, "success"), 0, "reloads_total{result=success}")
    eq(h.http_get(gw.port(), "/echo", headers={"Host": "a.test"})[0], 200, "still serving")
    # The good config again: requested and done.
    h.write_config(cfg, gw.name + ".yaml")
    r = h.run([h.BINARY, "reload", "-c", gw.path])
    eq(r.returncode, 0, "a valid config: %s" % r.stderr)
    h.wait_until(lambda: reloads(gw, "success") == 1, msg="reload done")
    gw.stop()


@test
def reload_that_removes_a_vendor_refuses_it_on_new_requests_only_and_bad_one_keeps_it():
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("a", ["a.test"], up.port), h.vendor("b", ["b.test"], up.port)])
    gw = h.Gateway(cfg, name="probe-remove").start()
    keep = h.Conn(gw.port())
    keep.send(h.request("GET", "/echo", "b.test"))
    eq(keep.read_response().status, 200, "b.test before the reload, on a keep-alive connection")
    # A bad file first: refused with FILE:LINE:COL, b keeps being served.
    without_b = dict(cfg, vendors=[cfg["vendors"][0]])
    h.write_config(dict(without_b, vendors=[dict(cfg["vendors"][0], regions=["EEA"], scc={"module": 9})]),
                   gw.name + ".yaml")
    m = gw.mark()
    gw.signal(h.signal.SIGHUP)
    h.wait_until(lambda: "reload failed" in gw.stderr_since(m), msg="'reload failed' logged")
    log = gw.stderr_since(m)
    check(any(ln.startswith(gw.path + ":") and ln.split(":")[1].isdigit() and ln.split(":")[2].isdigit()
              and "scc" in ln for ln in log.splitlines()), "FILE:LINE:COL of the problem: %r" % log[-800:])
    eq(h.http_get(gw.port(), "/echo", headers={"Host": "b.test"})[0], 200, "b.test after the refused reload")
    # Now the good one: b is gone for every new request, on new and old connections alike.
    h.write_config(without_b, gw.name + ".yaml")
    gw.signal(h.signal.SIGHUP)
    h.wait_until(lambda: reloads(gw, "success") == 1, msg="reload done")
    eq(h.http_get(gw.port(), "/echo", headers={"Host": "b.test"})[0], 403, "b.test on a new connection")
    keep.send(h.request("GET", "/echo", "b.test"))
    eq(keep.read_response().status, 403, "b.test on the connection opened before the reload")
    eq(h.http_get(gw.port(), "/echo", headers={"Host": "a.test"})[0], 200, "a.test")
    keep.close()
    gw.stop()


# ---- host patterns -----------------------------------------------------------------------------

@test
def wildcard_over_a_public_suffix_is_refused():
    # '*.com' was refused, '*.co.uk' passed: every UK company's host would route to the vendor.
    refused(head() + "vendors:\n  - {name: a, hosts: [\"*.co.uk\"], regions: [EEA]}\n",
            6, 23, "vendor 'a': '*.co.uk' would match every host under the public suffix 'co.uk'; name the "
            "vendor's own domain (such as '*.vendor.co.uk')")
    accepted(head() + "vendors:\n  - {name: a, hosts: [\"*.acme.co.uk\"], regions: [EEA]}\n")


@test
def a_host_under_another_vendors_wildcard_is_named_in_a_warning():
    # Routing was already most-specific-wins, but nothing told the security team that adding
    # '*.example.com' to one vendor leaves api.example.com with another.
    err = accepted(head() + "vendors:\n"
                   "  - {name: wide, hosts: [\"*.example.com\"], regions: [EEA]}\n"
                   "  - {name: exact, hosts: [api.example.com], regions: [EEA]}\n",
                   warning="7:27: warning: host 'api.example.com' of vendor 'exact' is also matched by "
                   "'*.example.com' of vendor 'wide' (line 6); requests for it go to 'exact' (an exact host wins "
                   "over a wildcard)")
    eq(len(err.splitlines()), 1, "one warning: %r" % err)


# ---- encryption keys -----------------------------------------------------------------------------

@test
def a_key_the_gateway_would_refuse_is_named_at_its_line():
    # Keys were opened only by the runtime, whose errors carry no line and column ("FILE: encryption:
    # key file ..."): the team could not tell which setting was wrong.
    d = os.path.join(h.tmpdir(), "probe-keys-short")
    os.makedirs(d, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(d, "k1.key"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("c2hvcnQ=\n")
    refused(head() + "encryption:\n  keys: \"%s\"\n  active_key: k1\n" % d,
            6, 9, "encryption.keys: key file %s/k1.key: must hold base64 of exactly 64 bytes" % d)
    d2 = os.path.join(h.tmpdir(), "probe-keys-open")
    os.makedirs(d2, mode=0o700, exist_ok=True)
    with open(os.path.join(h.key_dir(), "k1.key")) as src, open(os.path.join(d2, "k1.key"), "w") as dst:
        dst.write(src.read())
    os.chmod(os.path.join(d2, "k1.key"), 0o644)
    refused(head() + "encryption:\n  keys: \"%s\"\n  active_key: k1\n" % d2,
            6, 9, "encryption.keys: key file %s/k1.key: mode 0644, must be 0600 or stricter" % d2)
    accepted(head() + "encryption:\n  keys: \"%s\"\n  active_key: k1\n" % h.key_dir())


@test
def every_unknown_detector_name_is_named_at_its_line():
    # The classifier refused only the first bad name, as "FILE: classification: unknown detector".
    rc, path, out, err = check_text(head() + "classification:\n  detectors: [email, emial, phonee]\n")
    eq(rc, 1, "exit code")
    for col, name, mean in ((22, "emial", "email"), (29, "phonee", "phone")):
        want = "%s:6:%d: classification.detectors: unknown detector '%s' (did you mean '%s'?)\n" % (
            path, col, name, mean)
        check(want in err, "stderr lacks %r: %r" % (want, err))


# ---- YAML-level traps --------------------------------------------------------------------------

@test
def yaml_tags_other_than_str_are_refused():
    # `!env NAME` (from other tools) used to be read as the literal text: an admin token anyone
    # could guess from the config file.
    refused(head() + "admin: {token: !env ADMIN_TOKEN}\n",
            5, 16, "YAML tag '!env' is not supported: bordergate reads every value as written and would "
            "ignore it (only !!str may be used, on a value)")
    refused(head() + "vendors:\n  - {name: a, hosts: [a.example], regions: !!null [EEA]}\n",
            6, 44, "YAML tag '!!null' is not supported on a list or mapping: bordergate reads every value as "
            "written and would ignore it (only !!str may be used, on a value)")
    # !!str says what bordergate does anyway (Norway stays NO, not false).
    accepted(head() + "vendors:\n  - {name: a, hosts: [a.example], regions: [!!str NO]}\n")


@test
def bytes_that_are_not_utf8_are_reported_where_they_are():
    # A Latin-1 e-acute in a comment used to be reported at 1:1.
    refused((head() + "vendors:\n  - name: a  # caf\xe9\n    hosts: [a.example]\n    regions: [EEA]\n")
            .encode("latin-1"), 6, 19, "YAML syntax error: invalid UTF-8 sequence starting with byte 0xe9")


if __name__ == "__main__":
    h.main()
