#!/usr/bin/env python3
"""Operations (issue 9): live reload (SIGHUP, POST /reload, `bordergate reload`), config_version
in records, in-flight exchanges keeping their snapshot, reloads under keep-alive traffic, SIGUSR1
reopen with a verifiable chain across files, `user:` privilege drop, pid_file, SIGTERM drain,
and slowloris against header_timeout. Every test starts its own gateway on loopback ports."""
import copy
import glob
import os
import pwd
import shutil
import signal
import socket
import tempfile
import threading
import time

import harness as h
from harness import test, check, eq


def get(port, host, path="/echo", timeout=5):
    """GET through the gateway; returns (status, headers, body)."""
    return h.http_get(port, path, headers={"Host": host}, timeout=timeout)


def base(up, extra_vendors=(), **kw):
    """A gateway config with vendor a.test (and extra vendors) on the upstream `up`."""
    vs = [h.vendor("a", ["a.test"], up.port)] + list(extra_vendors)
    cfg = h.gateway_config(vs, **kw)
    _n[0] += 1  # records of their own: a test counts and verifies only what its gateway wrote
    cfg["records"]["path"] = os.path.join(h.tmpdir(), "records%d" % _n[0], "transfers.jsonl")
    return cfg


_n = [0]


def rewrite(g, cfg):
    """Replace the running gateway's config file (same path) with cfg."""
    h.write_config(cfg, g.name + ".yaml")


def with_b(cfg, up):
    c = copy.deepcopy(cfg)
    c["vendors"].append(h.vendor("b", ["b.test"], up.port))
    return c


def reloads(g, result):
    return h.metric(g.admin_port, "bordergate_config_reloads_total", {"result": result}) or 0


def version_of(path, headers):
    return h.wait_record(path, headers["x-transfer-id"])["config_version"]


@test
def sighup_reload_routes_new_vendor_and_records_new_version():
    up = h.upstream()
    cfg = base(up)
    recs = cfg["records"]["path"]
    g = h.Gateway(cfg).start()
    st, hd, _ = get(g.port(), "a.test")
    eq(st, 200)
    v1 = version_of(recs, hd)
    eq(get(g.port(), "b.test")[0], 403, "b.test before the reload")
    rewrite(g, with_b(cfg, up))
    g.signal(signal.SIGHUP)
    h.wait_until(lambda: get(g.port(), "b.test")[0] == 200, msg="b.test routed after SIGHUP")
    st, hd, _ = get(g.port(), "b.test")
    eq(st, 200)
    v2 = version_of(recs, hd)
    check(v1 and v2 and v1 != v2, "config_version changed: %r -> %r" % (v1, v2))
    st, hd, _ = get(g.port(), "a.test")
    eq(version_of(recs, hd), v2, "a later request to the old vendor carries the new version")
    eq(reloads(g, "success"), 1, "reloads_total{result=success}")
    g.stop()


@test
def bad_config_on_sighup_keeps_old_one_serving():
    up = h.upstream()
    cfg = base(up)
    g = h.Gateway(cfg).start()
    bad = with_b(cfg, up)
    bad["vendors"][1]["on_violation"] = "shrug"        # an invalid enum value
    bad["vendors"][0]["categories"] = ["identifier", "not_a_category"]
    rewrite(g, bad)
    m = g.mark()
    g.signal(signal.SIGHUP)
    h.wait_until(lambda: "reload failed" in g.stderr_since(m), msg="'reload failed' in the log")
    log = g.stderr_since(m)
    lines = [ln for ln in log.splitlines() if ln.startswith(g.path + ":")]
    check(len(lines) >= 2, "every problem logged as FILE:LINE:COL: %r" % log[-1500:])
    for ln in lines:
        parts = ln.split(":")
        check(len(parts) >= 4 and parts[1].isdigit() and parts[2].isdigit(), "FILE:LINE:COL in %r" % ln)
    eq(get(g.port(), "a.test")[0], 200, "old config still serving a.test")
    eq(get(g.port(), "b.test")[0], 403, "b.test (only in the bad config) still refused")
    check(g.alive(), "gateway alive")
    # issue 9: counted in bordergate_config_reloads_total{result="error"}
    eq(reloads(g, "error"), 1, 'bordergate_config_reloads_total{result="error"}')
    g.stop()


@test
def post_reload_answers_200_then_422():
    up = h.upstream()
    cfg = base(up)
    g = h.Gateway(cfg).start()
    rewrite(g, with_b(cfg, up))
    st, _, body = h.http_post(g.admin_port, "/reload")
    eq(st, 200, "POST /reload with a good config: %r" % body)
    eq(get(g.port(), "b.test")[0], 200, "b.test routed right after POST /reload returned")
    bad = with_b(cfg, up)
    bad["vendorz"] = []
    rewrite(g, bad)
    st, _, body = h.http_post(g.admin_port, "/reload")
    eq(st, 422, "POST /reload with a bad config: %r" % body)
    eq(get(g.port(), "b.test")[0], 200, "the last good config keeps serving")
    eq(h.http_get(g.admin_port, "/reload")[0], 405, "GET /reload")
    g.stop()


@test
def reload_command_signals_pid_from_pid_file():
    up = h.upstream()
    cfg = base(up, pid_file=os.path.join(h.tmpdir(), "cmd.pid"))
    g = h.Gateway(cfg).start()
    h.wait_until(lambda: os.path.exists(cfg["pid_file"]), msg="pid file")
    rewrite(g, with_b(cfg, up))
    r = h.run([h.BINARY, "reload", "-c", g.path])
    eq(r.returncode, 0, "bordergate reload: %s%s" % (r.stdout, r.stderr))
    check(str(g.proc.pid) in r.stdout, "names the pid: %r" % r.stdout)
    h.wait_until(lambda: get(g.port(), "b.test")[0] == 200, msg="b.test routed after `bordergate reload`")
    bad = with_b(cfg, up)
    bad["mode"] = "sometimes"
    rewrite(g, bad)
    r = h.run([h.BINARY, "reload", "-c", g.path])
    eq(r.returncode, 1, "an invalid file is not sent: %s" % r.stderr)
    check(g.path + ":" in r.stderr, "FILE:LINE:COL on stderr: %r" % r.stderr)
    eq(reloads(g, "success"), 1, "only the good reload reached the gateway")
    g.stop()


@test
def exchange_in_flight_keeps_old_config_version():
    up = h.upstream()
    cfg = base(up)
    recs = cfg["records"]["path"]
    g = h.Gateway(cfg).start()
    v1 = version_of(recs, get(g.port(), "a.test")[1])
    out = {}

    def slow():
        try:
            out["r"] = get(g.port(), "a.test", "/delay/1500")
        except Exception as e:
            out["e"] = e
    t = threading.Thread(target=slow)
    t.start()
    h.wait_until(lambda: any(r["target"].startswith("/delay") for r in up.requests), msg="slow request upstream")
    rewrite(g, with_b(cfg, up))
    g.signal(signal.SIGHUP)
    h.wait_until(lambda: reloads(g, "success") == 1, msg="reload done")
    v2 = version_of(recs, get(g.port(), "b.test")[1])
    check(v2 != v1, "new version after the reload")
    t.join(10)
    check("r" in out, "in-flight exchange answered: %r" % out.get("e"))
    st, hd, _ = out["r"]
    eq(st, 200, "in-flight exchange status")
    eq(version_of(recs, hd), v1, "the in-flight exchange is recorded with the OLD config_version")
    g.stop()


@test
def twenty_reloads_under_keepalive_traffic_lose_nothing():
    up = h.upstream()
    cfg = base(up, workers=2)
    g = h.Gateway(cfg).start()
    cfg_b = with_b(cfg, up)
    stop = threading.Event()
    stats = {"ok": 0, "bad": []}
    lock = threading.Lock()

    def client(n):
        c = h.Conn(g.port(), timeout=5)
        i = 0
        while not stop.is_set():
            i += 1
            try:
                c.send(h.request("GET", "/echo?n=%d" % i, "a.test"))
                r = c.read_response()
                with lock:
                    if r.status == 200:
                        stats["ok"] += 1
                    else:
                        stats["bad"].append((n, i, r.status))
            except Exception as e:  # a reset or closed keep-alive connection is a failure
                with lock:
                    stats["bad"].append((n, i, repr(e)))
                c.close()
                c = h.Conn(g.port(), timeout=5)
        c.close()
    ts = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for t in ts:
        t.start()
    try:
        for i in range(20):
            time.sleep(0.5)
            rewrite(g, cfg_b if i % 2 == 0 else cfg)
            g.signal(signal.SIGHUP)
            h.wait_until(lambda: reloads(g, "success") == i + 1, msg="reload %d" % (i + 1))
    finally:
        stop.set()
        for t in ts:
            t.join(10)
    check(stats["ok"] > 200, "traffic flowed: %d ok" % stats["ok"])
    eq(stats["bad"][:10], [], "failed/reset requests among %d" % (stats["ok"] + len(stats["bad"])))
    eq(reloads(g, "success"), 20, "reloads")
    g.stop()


@test
def sigusr1_reopens_records_and_chain_verifies_across_files():
    up = h.upstream()
    cfg = base(up)
    recs = cfg["records"]["path"]
    g = h.Gateway(cfg).start()
    for i in range(5):
        eq(get(g.port(), "a.test", "/echo?i=%d" % i)[0], 200)
    h.wait_until(lambda: len(h.read_records(recs)) == 5, msg="5 records")
    old = recs + ".1"
    os.rename(recs, old)
    g.signal(signal.SIGUSR1)
    h.wait_until(lambda: os.path.exists(recs), msg="new record file after SIGUSR1")
    ids = []
    for i in range(5):
        st, hd, _ = get(g.port(), "a.test", "/echo?j=%d" % i)
        eq(st, 200)
        ids.append(hd["x-transfer-id"])
    h.wait_record(recs, ids[-1])
    eq(len(h.read_records(old)), 5, "the renamed file got no new records")
    eq([r["id"] for r in h.read_records(recs)], ids, "new records in the new file")
    g.stop()
    r = h.run([h.BINARY, "records", "verify", old, recs])
    eq(r.returncode, 0, "records verify old new: %s%s" % (r.stdout, r.stderr))
    eq(h.read_records(recs)[0]["prev"], h.read_records(old)[-1]["hash"],
       "the new file's first prev is the old file's last hash")
    r = h.run([h.BINARY, "records", "verify", recs, old])
    check(r.returncode != 0, "verify in the wrong order must fail: %s" % r.stdout)


@test
def user_nobody_serves_after_dropping_privileges():
    if os.geteuid() != 0:
        return  # needs root to drop privileges
    nobody = pwd.getpwnam("nobody")
    up = h.upstream()
    rdir = tempfile.mkdtemp(prefix="bg-ops-nobody-")
    h.defer(shutil.rmtree, rdir, True)
    os.chmod(rdir, 0o755)
    os.makedirs(os.path.join(rdir, "records"))
    os.chown(os.path.join(rdir, "records"), nobody.pw_uid, nobody.pw_gid)
    cfg = base(up, user="nobody")
    cfg["records"]["path"] = os.path.join(rdir, "records", "transfers.jsonl")
    g = h.Gateway(cfg).start()
    status = open("/proc/%d/status" % g.proc.pid).read()
    uid = [ln.split()[1:] for ln in status.splitlines() if ln.startswith("Uid:")][0]
    gid = [ln.split()[1:] for ln in status.splitlines() if ln.startswith("Gid:")][0]
    eq(uid, [str(nobody.pw_uid)] * 4, "real/effective/saved/fs uid")
    eq(gid, [str(nobody.pw_gid)] * 4, "real/effective/saved/fs gid")
    # every thread too, not just the main one
    for tid in os.listdir("/proc/%d/task" % g.proc.pid):
        st = open("/proc/%d/task/%s/status" % (g.proc.pid, tid)).read()
        check("Uid:\t%d\t%d" % (nobody.pw_uid, nobody.pw_uid) in st, "thread %s dropped too" % tid)
    st, hd, _ = get(g.port(), "a.test")
    eq(st, 200, "serves as nobody")
    h.wait_record(cfg["records"]["path"], hd["x-transfer-id"])
    g.stop()


@test
def threads_are_named_for_top_and_perf():
    """Each worker thread and the records writer carry a name (top -H, ps -L, perf show it)."""
    up = h.upstream()
    g = h.Gateway(base(up, workers=2)).start()
    names = []
    for p in glob.glob("/proc/%d/task/*/comm" % g.proc.pid):
        with open(p) as f:
            names.append(f.read().strip())
    for want in ("bg-worker-0", "bg-worker-1", "bg-records"):
        check(want in names, "thread %s among %r" % (want, sorted(names)))
    g.stop()


@test
def pid_file_written_and_removed_on_exit():
    up = h.upstream()
    pidf = os.path.join(h.tmpdir(), "gw.pid")
    g = h.Gateway(base(up, pid_file=pidf)).start()
    h.wait_until(lambda: os.path.exists(pidf), msg="pid file")
    eq(open(pidf).read().strip(), str(g.proc.pid), "pid file content")
    g.stop()
    check(not os.path.exists(pidf), "pid file removed after SIGTERM")


@test
def sigterm_with_twenty_in_flight_answers_all_and_exits_0():
    up = h.upstream()
    cfg = base(up, limits={"drain_timeout": "10s"}, workers=2)
    recs = cfg["records"]["path"]
    g = h.Gateway(cfg).start()
    res = [None] * 20

    def one(i):
        try:
            res[i] = get(g.port(), "a.test", "/delay/1200?i=%d" % i, timeout=10)[:2]
        except Exception as e:
            res[i] = repr(e)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in ts:
        t.start()
    h.wait_until(lambda: up.count() >= 20, msg="20 requests upstream")
    t0 = time.monotonic()
    g.signal(signal.SIGTERM)
    rc = g.proc.wait(15)
    dt = time.monotonic() - t0
    for t in ts:
        t.join(5)
    eq(rc, 0, "exit code after drain")
    statuses = [r[0] if isinstance(r, tuple) else r for r in res]
    eq(statuses, [200] * 20, "every in-flight request answered")
    ids = {r[1]["x-transfer-id"] for r in res}
    got = {r["id"] for r in h.read_records(recs)}
    eq(sorted(ids - got), [], "every answered exchange recorded before exit")
    check(dt < 3, "drained in %.1fs (requests of 1.2s)" % dt)


@test
def slowloris_is_cut_at_header_timeout_while_normal_requests_flow():
    up = h.upstream()
    cfg = base(up, limits={"header_timeout": "2s", "max_connections": 5000}, workers=2)
    g = h.Gateway(cfg).start()
    head = b"GET /echo HTTP/1.1\r\nHost: a.test\r\nX-Slow: " + b"a" * 64
    socks = []
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", g.port()), 5)
        s.setblocking(False)
        socks.append(s)
    h.defer(lambda: [s.close() for s in socks])
    sent_at = time.monotonic()
    closed = [None] * len(socks)
    lat = []
    bad = []
    pos = 0
    while time.monotonic() - sent_at < 6:
        # one header byte per connection per second, for as long as it stays open
        for i, s in enumerate(socks):
            if closed[i] is not None:
                continue
            try:
                s.send(head[pos:pos + 1])
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                closed[i] = time.monotonic() - sent_at
                continue
            try:
                s.recv(4096)  # EOF, or an answer (408) to a head never finished: either ends it
                closed[i] = time.monotonic() - sent_at
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                closed[i] = time.monotonic() - sent_at
        pos += 1
        tick = time.monotonic()
        while time.monotonic() - tick < 1.0:
            t0 = time.monotonic()
            try:
                st = get(g.port(), "a.test", timeout=3)[0]
                if st != 200:
                    bad.append(st)
            except Exception as e:
                bad.append(repr(e))
            lat.append(time.monotonic() - t0)
            time.sleep(0.05)
    eq(bad, [], "normal requests during the slowloris")
    lat.sort()
    p99 = lat[int(len(lat) * 0.99) - 1]
    check(len(lat) > 50 and p99 < 0.5, "normal latency bounded: %d requests, p99 %.3fs, max %.3fs"
          % (len(lat), p99, lat[-1]))
    still_open = [i for i, c in enumerate(closed) if c is None]
    eq(len(still_open), 0, "slow connections still open after 6s with header_timeout 2s")
    early = [c for c in closed if c is not None and c < 1.5]
    eq(len(early), 0, "slow connections closed before header_timeout")
    check(g.alive(), "gateway alive")
    g.stop()


def _nobody_tree():
    """A 0755 directory outside the 0700 test dir with records/ owned by nobody; returns
    (dir, nobody passwd entry)."""
    nobody = pwd.getpwnam("nobody")
    d = tempfile.mkdtemp(prefix="bg-ops-nobody-")
    h.defer(shutil.rmtree, d, True)
    os.chmod(d, 0o755)
    os.makedirs(os.path.join(d, "records"))
    os.chown(os.path.join(d, "records"), nobody.pw_uid, nobody.pw_gid)
    return d, nobody


@test
def pid_file_in_root_owned_run_dir_with_user():
    # The systemd layout: /run/bordergate is root's; the gateway starts as root, binds, drops to
    # `user:`. The pid file must still be written (before the drop, as nginx does), or
    # `bordergate reload` and logrotate's postrotate cannot find the process.
    if os.geteuid() != 0:
        return
    up = h.upstream()
    d, nobody = _nobody_tree()
    run = os.path.join(d, "run")
    os.makedirs(run, mode=0o755)
    cfg = base(up, user="nobody", pid_file=os.path.join(run, "bordergate.pid"))
    cfg["records"]["path"] = os.path.join(d, "records", "transfers.jsonl")
    g = h.Gateway(cfg).start()
    eq(get(g.port(), "a.test")[0], 200, "serving as nobody")
    time.sleep(0.2)
    check(os.path.exists(cfg["pid_file"]), "pid file written in a root-owned directory; log: %r"
          % g.stderr()[-600:])
    g.stop()


@test
def reload_after_dropping_privileges_with_readable_files():
    # After `user:` the reload re-reads config, regions, GeoIP and keys as that user: files the
    # user can read (keys owned by it, mode 0600) must reload fine.
    if os.geteuid() != 0:
        return
    up = h.upstream()
    d, nobody = _nobody_tree()
    kd = os.path.join(d, "keys")
    shutil.copytree(h.key_dir(), kd)
    for p in [kd] + [os.path.join(kd, f) for f in os.listdir(kd)]:
        os.chown(p, nobody.pw_uid, nobody.pw_gid)
    db = os.path.join(d, "geo.mmdb")
    shutil.copy(h.geoip_db(), db)
    os.chmod(db, 0o644)
    cfg = base(up, user="nobody")
    cfg["records"]["path"] = os.path.join(d, "records", "transfers.jsonl")
    cfg["encryption"] = {"keys": kd, "active_key": "k1"}
    cfg["geoip"] = {"database": db}
    g = h.Gateway(cfg, name="nobody-reload")
    g.path = os.path.join(d, "bordergate.yaml")
    with open(g.path, "w") as f:
        f.write(h.to_yaml(cfg))
    os.chmod(g.path, 0o644)
    g.start()
    with open(g.path, "w") as f:
        f.write(h.to_yaml(with_b(cfg, up)))
    m = g.mark()
    g.signal(signal.SIGHUP)
    h.wait_until(lambda: reloads(g, "success") == 1 or "reload failed" in g.stderr_since(m), msg="reload outcome")
    eq(reloads(g, "success"), 1, "reload as nobody; log: %r" % g.stderr_since(m)[-800:])
    eq(get(g.port(), "b.test")[0], 200, "b.test routed")
    g.stop()


@test
def sigterm_drain_is_bounded_by_drain_timeout():
    up = h.upstream()
    cfg = base(up, limits={"drain_timeout": "1s"})
    recs = cfg["records"]["path"]
    g = h.Gateway(cfg).start()
    c = h.Conn(g.port(), timeout=10)
    c.send(h.request("GET", "/delay/6000", "a.test"))
    h.wait_until(lambda: up.count() >= 1, msg="request upstream")
    t0 = time.monotonic()
    g.signal(signal.SIGTERM)
    rc = g.proc.wait(8)
    dt = time.monotonic() - t0
    eq(rc, 0, "exit code")
    check(dt < 2.5, "exit within drain_timeout 1s (+ slack), took %.2fs" % dt)
    check(c.is_closed(2), "the unfinished exchange's connection is closed")
    recs_ = h.read_records(recs)
    eq([r["path"] for r in recs_], ["/delay/6000"], "the cut exchange is recorded too")


@test
def slow_post_stalled_body_is_closed_at_idle_timeout():
    up = h.upstream()
    cfg = base(up, limits={"idle_timeout": "2s", "header_timeout": "2s"})
    g = h.Gateway(cfg).start()
    c = h.Conn(g.port(), timeout=6)
    c.send(h.request("POST", "/echo", "a.test", [("Content-Type", "application/json"), ("Content-Length", "100")]))
    t0 = time.monotonic()
    c.send(b'{"email":"jane')  # 14 of 100 bytes, then nothing
    got = c.read_until_close(6)
    dt = time.monotonic() - t0
    check(1.8 <= dt < 3.5, "closed after idle_timeout 2s, took %.2fs" % dt)
    check(got == b"" or got.startswith(b"HTTP/1.1 408"), "nothing or a 408: %r" % got[:80])
    eq(up.count(), 0, "nothing of the unfinished body reached the vendor")
    eq(get(g.port(), "a.test")[0], 200, "still serving")
    g.stop()


if __name__ == "__main__":
    h.main()
