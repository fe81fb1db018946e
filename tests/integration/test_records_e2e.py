#!/usr/bin/env python3
"""test_records_e2e.py -- issue 7 end to end: transfer records and /metrics of the real gateway.

Every field of the records of allow, block, encrypt and upstream-failure (502) exchanges, checked
for type and value against what the client sent and received (id == X-Transfer-Id, caller ==
the client's socket, path without query, exact byte counts, the SHA-256 chain recomputed here);
`bordergate records verify` passes on the written file and fails on each kind of tampering;
every record written here passes `bordergate scan` with zero findings; 10,000 keep-alive
requests then SIGTERM: records == responses (same ids) and the /metrics counters equal the
requests sent, and the output passes `promtool check metrics`; a full records disk (1 MiB tmpfs)
makes /readyz 503 and blocks new transfers with `records_unavailable`.
Ends with "N passed, N failed".
"""
import datetime
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BINARY, Failure, Gateway, Nginx, check, defer, eq, free_port,  # noqa: E402
                     gateway_config, http_get, main, once, read_records, record_files, request,
                     run, scan_records, test, tmpdir, upstream, vendor, wait_record)

TODAY = datetime.date.today()
GENESIS = "0" * 64
EMAIL = "erika.mustermann@example.com"


def day(delta):
    return (TODAY + datetime.timedelta(days=delta)).isoformat()


def exchange(port, data):
    """Send data on a new connection and read one response: returns (status, headers dict
    lowercased, body, raw bytes received, client address 'ip:port')."""
    s = socket.create_connection(("127.0.0.1", port), 5)
    try:
        me = "%s:%d" % s.getsockname()[:2]
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise Failure("closed before a response head")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        hdrs = {}
        for line in lines[1:]:
            n, _, v = line.partition(":")
            hdrs[n.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        while len(rest) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, hdrs, rest[:n], len(head) + 4 + n, me
    finally:
        s.close()


@once
def env():
    up = upstream(host="127.0.0.3")
    scc = {"module": 2, "reference": "DPA-E2E-017", "signed": day(-30), "expires": day(300)}
    vendors = [
        vendor("crm-de", ["crm.example"], upstream(host="127.0.0.2").port, addresses=["127.0.0.2"]),
        vendor("ads-us", ["ads.example"], up.port, addresses=["127.0.0.3"], regions=["US"], basis="none"),
        vendor("seal-us", ["seal.example"], up.port, addresses=["127.0.0.3"], regions=["US"], basis="none",
               on_violation="encrypt"),
        vendor("scc-us", ["scc.example"], up.port, addresses=["127.0.0.3"], regions=["US"], scc=scc,
               categories=["identifier", "device", "usage"]),
        vendor("down-de", ["down.example"], free_port(), addresses=["127.0.0.2"]),
    ]
    gw = Gateway(gateway_config(vendors), name="fields").start()
    return gw


def config_version(gw):
    m = re.search(r"config_version=([0-9a-f]+)", gw.stderr())
    check(m, "no config_version in the start log")
    return m.group(1)


def canonical_hash(line):
    """The documented chain: hash = SHA-256 of the line without its "hash" member."""
    i = line.rindex(',"hash":"')
    return hashlib.sha256((line[:i] + "}").encode()).hexdigest()


RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
FIELDS = ["ts", "id", "caller", "vendor", "host", "method", "path", "dest_ip", "dest_country", "dest_region",
          "cross_border", "categories", "detections", "mechanism", "decision", "reason", "enforced", "status",
          "bytes_in", "bytes_out", "duration_ms", "protocol", "config_version", "prev", "hash"]
TYPES = {"ts": str, "id": str, "caller": str, "vendor": str, "host": str, "method": str, "path": str,
         "dest_ip": str, "dest_country": str, "dest_region": str, "cross_border": bool, "categories": list,
         "detections": dict, "mechanism": str, "decision": str, "reason": str, "enforced": bool, "status": int,
         "bytes_in": int, "bytes_out": int, "duration_ms": int, "protocol": str, "config_version": str,
         "prev": str, "hash": str, "scc_module": int, "scc_reference": str, "upstream_protocol": str}


def check_common(rec, sent, got, t0, t1, gw):
    status, hdrs, body, nbytes, me = got
    for k in FIELDS:
        check(k in rec, "record lacks %s: %r" % (k, rec))
    for k, v in rec.items():
        check(k in TYPES, "unexpected record field %s" % k)
        check(type(v) is TYPES[k], "%s is %s, want %s" % (k, type(v).__name__, TYPES[k].__name__))
    check(RFC3339_MS.fullmatch(rec["ts"]), "ts %r" % rec["ts"])
    ts = datetime.datetime.strptime(rec["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    check(t0 - 1 <= ts <= t1 + 1, "ts %s outside the exchange [%s, %s]" % (ts, t0, t1))
    eq(rec["id"], hdrs.get("x-transfer-id"), "id vs X-Transfer-Id")
    eq(rec["caller"], me, "caller vs the client socket")
    eq(rec["status"], status, "status")
    eq(rec["bytes_in"], len(sent), "bytes_in (bytes the client sent)")
    eq(rec["bytes_out"], nbytes, "bytes_out (bytes the client received)")
    check(0 <= rec["duration_ms"] <= (t1 - t0) * 1000 + 5, "duration_ms %d" % rec["duration_ms"])
    eq(rec["protocol"], "http/1.1", "protocol")
    eq(rec["config_version"], config_version(gw), "config_version")
    eq(rec["enforced"], True, "enforced")
    check(re.fullmatch(r"[0-9a-f]{64}", rec["prev"]), "prev %r" % rec["prev"])
    check(re.fullmatch(r"[0-9a-f]{64}", rec["hash"]), "hash %r" % rec["hash"])
    check(all(type(c) is int and c > 0 for c in rec["detections"].values()), "detection counts %r" % rec["detections"])


def do(gw, method, target, host, headers=(), body=b""):
    data = request(method, target, host, list(headers), body)
    t0 = time.time()
    got = exchange(gw.port(), data)
    t1 = time.time()
    rec = wait_record(gw.cfg["records"]["path"], got[1].get("x-transfer-id"))
    check_common(rec, data, got, t0, t1, gw)
    return rec, got


JSON_H = [("Content-Type", "application/json")]
BODY = json.dumps({"contact": {"email": EMAIL}, "ip": "198.51.100.23"})


@test
def record_of_an_allowed_exchange():
    gw = env()
    rec, got = do(gw, "POST", "/v1/contacts/77?email=%s&page=2" % EMAIL.replace("@", "%40"), "crm.example",
                  JSON_H, BODY)
    eq(got[0], 200, "status")
    expect = {"vendor": "crm-de", "host": "crm.example", "method": "POST", "path": "/v1/contacts/77",
              "dest_ip": "127.0.0.2", "dest_country": "DE", "dest_region": "EEA", "cross_border": False,
              "mechanism": "domestic", "decision": "allow", "reason": "domestic"}
    eq({k: rec[k] for k in expect}, expect, "record values")
    eq(sorted(rec["categories"]), ["device", "identifier"], "categories")
    eq(rec["detections"], {"email": 2, "ip_address": 1}, "detections")
    check("scc_module" not in rec and "scc_reference" not in rec, "SCC fields without SCC")


@test
def record_of_a_blocked_exchange():
    gw = env()
    rec, got = do(gw, "PUT", "/v2/audiences?id=1", "ads.example", JSON_H, BODY)
    eq(got[0], 451, "status")
    eq(json.loads(got[2])["transfer_id"], rec["id"], "451 body transfer_id")
    expect = {"vendor": "ads-us", "host": "ads.example", "method": "PUT", "path": "/v2/audiences",
              "dest_ip": "127.0.0.3", "dest_country": "US", "cross_border": True, "mechanism": "none",
              "decision": "block", "reason": "no_transfer_basis"}
    eq({k: rec[k] for k in expect}, expect, "record values")
    check(rec["dest_region"] not in ("EEA", ""), "dest_region %r" % rec["dest_region"])
    eq(sorted(rec["categories"]), ["device", "identifier"], "categories")
    eq(rec["detections"], {"email": 1, "ip_address": 1}, "detections")


@test
def record_of_an_encrypted_exchange():
    gw = env()
    rec, got = do(gw, "POST", "/v1/sealed", "seal.example", JSON_H, BODY)
    eq(got[0], 200, "status")
    expect = {"vendor": "seal-us", "path": "/v1/sealed", "dest_country": "US", "cross_border": True,
              "decision": "encrypt", "reason": "no_transfer_basis", "mechanism": "none"}
    eq({k: rec[k] for k in expect}, expect, "record values")
    eq(rec["detections"], {"email": 1, "ip_address": 1}, "detections")


@test
def record_of_an_scc_exchange_names_module_and_reference():
    gw = env()
    rec, got = do(gw, "POST", "/v1/leads", "scc.example", JSON_H, json.dumps({"email": EMAIL}))
    eq(got[0], 200, "status")
    expect = {"vendor": "scc-us", "mechanism": "scc", "scc_module": 2, "scc_reference": "DPA-E2E-017",
              "decision": "allow", "reason": "scc", "categories": ["identifier"], "detections": {"email": 1}}
    eq({k: rec.get(k) for k in expect}, expect, "record values")


@test
def record_of_an_upstream_failure_502():
    gw = env()
    rec, got = do(gw, "GET", "/v1/health?x=1", "down.example")
    eq(got[0], 502, "status")
    expect = {"vendor": "down-de", "method": "GET", "path": "/v1/health", "dest_ip": "127.0.0.2",
              "dest_country": "DE", "decision": "allow", "categories": [], "detections": {}, "status": 502}
    eq({k: rec[k] for k in expect}, expect, "record values")


@test
def personal_data_in_the_path_is_redacted_in_the_record():
    gw = env()
    rec, got = do(gw, "GET", "/v1/users/%s/orders?x=1" % EMAIL.replace("@", "%40"), "crm.example")
    eq(got[0], 200, "status")
    check(rec["path"].startswith("/v1/users/") and rec["path"].endswith("/orders"), "path %r" % rec["path"])
    check("mustermann" not in rec["path"] and "example.com" not in rec["path"], "path %r" % rec["path"])
    eq(rec["detections"], {"email": 1}, "detections")


@test
def metrics_agree_with_the_records():
    gw = env()
    time.sleep(0.2)
    recs = read_records(gw.cfg["records"]["path"])
    m = parse_metrics(http_get(gw.admin_port, "/metrics")[2].decode())
    eq(msum(m, "bordergate_transfers_total"), len(recs), "sum of transfers_total vs records")
    for vname in sorted({r["vendor"] for r in recs}):
        for dec in ("allow", "block", "encrypt"):
            want = sum(1 for r in recs if r["vendor"] == vname and r["decision"] == dec)
            eq(msum(m, "bordergate_transfers_total", vendor=vname, decision=dec), want,
               "transfers_total{vendor=%s,decision=%s}" % (vname, dec))
    eq(msum(m, "bordergate_upstream_errors_total", vendor="down-de", kind="connect"),
       sum(1 for r in recs if r["vendor"] == "down-de" and r["status"] == 502), "upstream_errors_total{down-de,connect}")
    eq(msum(m, "bordergate_personal_data_findings_total", detector="email"),
       sum(r["detections"].get("email", 0) for r in recs), "findings_total{detector=email}")
    expires = datetime.datetime.combine(TODAY + datetime.timedelta(days=300), datetime.time(),
                                        datetime.timezone.utc).timestamp()
    eq(msum(m, "bordergate_transfer_basis_expiry_timestamp_seconds", vendor="scc-us", basis="scc"), expires,
       "transfer_basis_expiry_timestamp_seconds{scc-us,scc}")
    eq(msum(m, "bordergate_records_written_total"), len(recs), "records_written_total")
    check(msum(m, "bordergate_geoip_database_build_timestamp_seconds") > 1.5e9, "geoip build timestamp")
    st, _, body = http_get(gw.admin_port, "/readyz")
    eq(st, 200, "/readyz %r" % body)


@test
def chain_and_ids_hold_across_the_file():
    gw = env()
    lines = open(gw.cfg["records"]["path"], encoding="utf-8").read().splitlines()
    check(len(lines) >= 5, "only %d records" % len(lines))
    prev = GENESIS
    ids = []
    for i, line in enumerate(lines, 1):
        rec = json.loads(line)
        eq(rec["prev"], prev, "line %d prev" % i)
        eq(rec["hash"], canonical_hash(line), "line %d hash" % i)
        prev = rec["hash"]
        ids.append(rec["id"])
    eq(len(set(ids)), len(ids), "unique ids")
    eq(ids, sorted(ids), "ids sort in write order")


def verify(*paths):
    r = run([BINARY, "records", "verify"] + list(paths))
    return r.returncode, r.stdout + r.stderr


@test
def records_verify_passes_then_fails_on_tampering():
    gw = env()
    src = gw.cfg["records"]["path"]
    rc, out = verify(src)
    eq(rc, 0, "verify of the written file: %s" % out)
    lines = open(src, encoding="utf-8").read().splitlines(True)
    check(len(lines) >= 5, "need 5 lines")
    d = os.path.join(tmpdir(), "tamper")
    os.makedirs(d, exist_ok=True)

    def variant(name, new_lines, want_line):
        p = os.path.join(d, name + ".tampered")  # not picked up by record_files()
        with open(p, "w", encoding="utf-8") as f:
            f.write("".join(new_lines))
        rc, out = verify(p)
        eq(rc, 1, "%s: exit code (%s)" % (name, out.strip()))
        check(re.search(r"\.tampered:%d:" % want_line, out), "%s: FILE:%d: not in %r" % (name, want_line, out))

    edited = list(lines)
    edited[2] = edited[2].replace('"status":', '"status":1', 1)
    variant("edited-value", edited, 3)
    variant("deleted-line", lines[:2] + lines[3:], 3)
    variant("swapped-lines", lines[:1] + [lines[2], lines[1]] + lines[3:], 2)
    variant("cut-in-the-middle", lines[:2] + [lines[2][:40] + "\n"] + lines[3:], 3)
    # a record whose hash was recomputed after the edit still breaks the next line's prev
    rec = json.loads(lines[1])
    rec["decision"] = "allow" if rec["decision"] != "allow" else "block"
    del rec["hash"]
    body = json.dumps(rec, separators=(",", ":"), ensure_ascii=False)
    forged = body[:-1] + ',"hash":"%s"}\n' % hashlib.sha256(body.encode()).hexdigest()
    variant("rehashed-edit", lines[:1] + [forged] + lines[2:], 3)


@test
def rotation_and_sigusr1_reopen_keep_one_chain_across_files():
    up = upstream(host="127.0.0.2")
    cfg = gateway_config([vendor("crm-de", ["crm.example"], up.port, addresses=["127.0.0.2"])])
    base = os.path.join(tmpdir(), "records-rotate", "transfers.jsonl")
    cfg["records"] = {"path": base, "rotate_size": "4KiB", "fsync": "batch"}
    gw = Gateway(cfg, name="rotate").start()
    ids = []
    for i in range(30):
        ids.append(exchange(gw.port(), request("GET", "/v1/r?i=%d" % i, "crm.example"))[1]["x-transfer-id"])
    wait_record(base, ids[-1])
    # logrotate: move the file away, then SIGUSR1 makes the gateway open a new one
    moved = base + ".logrotated"
    os.rename(base, moved)
    gw.signal(signal.SIGUSR1)
    time.sleep(0.3)
    for i in range(5):
        ids.append(exchange(gw.port(), request("GET", "/v1/r2?i=%d" % i, "crm.example"))[1]["x-transfer-id"])
    gw.stop()
    rotated = sorted(p for p in glob.glob(base + ".*") if p != moved)
    check(len(rotated) >= 3, "rotate_size 4KiB made only %d rotated files" % len(rotated))
    files = rotated + [moved, base]
    for p in files:
        check(os.path.getsize(p) <= 4096 + 1024, "%s is %d bytes" % (p, os.path.getsize(p)))
    recs = [r for p in files for r in read_records(p)]
    eq([r["id"] for r in recs], ids, "records across the files, in order")
    rc, out = verify(*files)
    eq(rc, 0, "verify across %d files: %s" % (len(files), out))
    eq(read_records(base)[0]["prev"], read_records(moved)[-1]["hash"], "the reopened file continues the chain")
    rc, out = verify(*(files[:1] + files[2:]))
    eq(rc, 1, "verify with a file left out: %s" % out)


# ---- load, SIGTERM, metrics --------------------------------------------------------------

def load(port, host, total, nconn=8, depth=16):
    """total GETs over nconn keep-alive connections, `depth` pipelined at a time; returns the
    list of (status, transfer id) of the responses received."""
    out = []
    lock = threading.Lock()
    errors = []
    per = [total // nconn + (1 if i < total % nconn else 0) for i in range(nconn)]
    hre = re.compile(rb"\r\nx-transfer-id: *([^\r]+)", re.I)
    lre = re.compile(rb"\r\ncontent-length: *(\d+)", re.I)

    def worker(n, wid):
        got = []
        try:
            s = socket.create_connection(("127.0.0.1", port), 10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf = b""
            sent = 0
            while sent < n:
                k = min(depth, n - sent)
                s.sendall(b"".join(b"GET /v1/ping?w=%d&i=%d HTTP/1.1\r\nHost: %s\r\n\r\n"
                                   % (wid, sent + j, host.encode()) for j in range(k)))
                sent += k
                while k:
                    i = buf.find(b"\r\n\r\n")
                    if i < 0:
                        chunk = s.recv(262144)
                        if not chunk:
                            raise Failure("connection closed after %d responses" % len(got))
                        buf += chunk
                        continue
                    head = buf[:i + 2]
                    m = lre.search(head)
                    blen = int(m.group(1)) if m else 0
                    while len(buf) < i + 4 + blen:
                        chunk = s.recv(262144)
                        if not chunk:
                            raise Failure("closed mid-body")
                        buf += chunk
                    tid = hre.search(head)
                    got.append((int(head[9:12]), tid.group(1).decode() if tid else None))
                    buf = buf[i + 4 + blen:]
                    k -= 1
            s.close()
        except Exception as e:  # noqa: BLE001
            errors.append("%s: %s" % (type(e).__name__, e))
        with lock:
            out.extend(got)

    ts = [threading.Thread(target=worker, args=(per[i], i)) for i in range(nconn)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    if errors:
        raise Failure("load clients failed: %s" % errors[:3])
    return out


def parse_metrics(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        check(m, "bad metrics line %r" % line)
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def msum(metrics, name, **want):
    return sum(v for (n, ls), v in metrics.items()
               if n == name and all((k, w) in ls for k, w in want.items()))


FIGURES = {}


@test
def ten_thousand_requests_then_sigterm_every_record_written_and_metrics_agree():
    ng = Nginx(body_size=64).start()
    defer(ng.stop)
    cfg = gateway_config([vendor("bulk-de", ["bulk.example"], ng.port)], workers=2)
    cfg["records"]["path"] = os.path.join(tmpdir(), "records-load", "transfers.jsonl")
    gw = Gateway(cfg, name="load").start()
    n = 10000
    t0 = time.monotonic()
    res = load(gw.port(), "bulk.example", n)
    dt = time.monotonic() - t0
    FIGURES["load"] = "%d requests, 8 keep-alive connections x 16 pipelined, %.2fs, %.0f req/s" % (n, dt, n / dt)
    print("  figure: %s" % FIGURES["load"], flush=True)
    eq(len(res), n, "responses")
    eq(sum(1 for st, _ in res if st == 200), n, "200 responses")
    text = http_get(gw.admin_port, "/metrics")[2].decode()
    mpath = os.path.join(tmpdir(), "metrics-load.txt")
    with open(mpath, "w") as f:
        f.write(text)
    m = parse_metrics(text)
    eq(msum(m, "bordergate_transfers_total"), n, "sum of bordergate_transfers_total")
    eq(msum(m, "bordergate_transfers_total", vendor="bulk-de", decision="allow", dest_country="DE"), n,
       "transfers_total{vendor=bulk-de,decision=allow,dest_country=DE}")
    eq(msum(m, "bordergate_http_responses_total", code="2xx"), n, "http_responses_total{code=2xx}")
    eq(msum(m, "bordergate_request_duration_seconds_count"), n, "request_duration_seconds_count")
    # The records writer kept up with this load: it runs below the workers' weight (nice 10) once
    # a batch is small (or within its 1 s idle wake-up, had the last batch been a large one).
    deadline = time.monotonic() + 3
    while sorted(thread_nices(gw))[-1:] != [10] and time.monotonic() < deadline:
        time.sleep(0.1)
    nices = sorted(thread_nices(gw))
    eq(nices, [0] * (len(nices) - 1) + [10], "nice of the gateway's threads")
    promtool = shutil.which("promtool")
    if promtool:
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
        eq(r.returncode, 0, "promtool check metrics: %s%s" % (r.stdout, r.stderr))
    else:
        print("  note: promtool not installed, exposition format not linted", flush=True)
    gw.stop(timeout=15)
    recs = read_records(cfg["records"]["path"])
    eq(len(recs), len(res), "records vs responses")
    eq(sorted(r["id"] for r in recs), sorted(t for _, t in res), "record ids vs X-Transfer-Id")
    rc, out = verify(cfg["records"]["path"])
    eq(rc, 0, "verify: %s" % out)
    check(str(n) in out, "verify does not report the count %d: %r" % (n, out))


def thread_nices(gw):
    """The nice value of each thread of the gateway process (/proc/PID/task/*/stat field 19)."""
    out = []
    for st in glob.glob("/proc/%d/task/*/stat" % gw.proc.pid):
        try:
            with open(st) as f:
                out.append(int(f.read().rsplit(")", 1)[1].split()[16]))
        except (OSError, IndexError, ValueError):
            pass
    return out


@test
def under_fsync_always_the_records_writer_keeps_the_workers_weight():
    # Every answer waits for its record under `always`: the writer never yields (nice 0), unlike
    # under batch/never (the ten-thousand-requests test above sees it at nice 10).
    ng = Nginx(body_size=64).start()
    defer(ng.stop)
    cfg = gateway_config([vendor("always-de", ["always.example"], ng.port)])
    cfg["records"]["fsync"] = "always"
    cfg["records"]["path"] = os.path.join(tmpdir(), "records-always", "transfers.jsonl")
    gw = Gateway(cfg, name="always").start()
    res = load(gw.port(), "always.example", 200, nconn=4, depth=4)
    eq(sum(1 for st, _ in res if st == 200), 200, "200 responses")
    nices = thread_nices(gw)
    check(len(nices) >= 3, "threads seen: %r" % nices)
    eq(nices, [0] * len(nices), "nice of the gateway's threads")
    gw.stop()


@test
def sigterm_under_load_every_answered_exchange_is_recorded():
    ng = Nginx(body_size=64).start()
    defer(ng.stop)
    cfg = gateway_config([vendor("bulk-de", ["bulk.example"], ng.port)], workers=2)
    cfg["records"]["path"] = os.path.join(tmpdir(), "records-term", "transfers.jsonl")
    gw = Gateway(cfg, name="term").start()
    # each client reads whole responses only: an id counts once its response is complete
    answered = []
    hre = re.compile(r"x-transfer-id: *(\S+)", re.I)

    def client2(wid):
        try:
            s = socket.create_connection(("127.0.0.1", gw.port()), 5)
            buf = b""
            for i in range(100000):
                s.sendall(b"GET /v1/t?i=%d HTTP/1.1\r\nHost: bulk.example\r\n\r\n" % i)
                while True:
                    j = buf.find(b"\r\n\r\n")
                    if j >= 0:
                        head = buf[:j].decode("latin-1")
                        blen = int(re.search(r"content-length: *(\d+)", head, re.I).group(1))
                        if len(buf) >= j + 4 + blen:
                            m = hre.search(head)
                            answered.append(m.group(1) if m else None)
                            buf = buf[j + 4 + blen:]
                            break
                    chunk = s.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
        except OSError:
            return

    ts = [threading.Thread(target=client2, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    time.sleep(1.0)
    gw.stop(timeout=15)
    for t in ts:
        t.join(10)
    FIGURES["term"] = "%d responses answered before/while SIGTERM drained" % len(answered)
    print("  figure: %s" % FIGURES["term"], flush=True)
    check(len(answered) > 100, "only %d answered before SIGTERM" % len(answered))
    check(None not in answered, "a response without X-Transfer-Id")
    ids = {r["id"] for r in read_records(cfg["records"]["path"])}
    missing = [a for a in answered if a not in ids]
    eq(missing, [], "answered exchanges without a record (of %d answered, %d records)" % (len(answered), len(ids)))


# ---- full disk -----------------------------------------------------------------------------

@test
def full_records_disk_fails_closed_and_readyz_503():
    mnt = os.path.join(tmpdir(), "fulldisk")
    os.makedirs(mnt, exist_ok=True)
    r = run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt])
    if r.returncode != 0:
        raise Failure("cannot mount a 1 MiB tmpfs (needs root): %s" % r.stderr.strip())
    defer(lambda: run(["umount", "-l", mnt]))
    up = upstream(host="127.0.0.2")
    cfg = gateway_config([vendor("crm-de", ["crm.example"], up.port, addresses=["127.0.0.2"])])
    cfg["records"] = {"path": os.path.join(mnt, "transfers.jsonl"), "fsync": "always"}
    gw = Gateway(cfg, name="fulldisk").start()
    defer(gw.stop, 10, None)
    eq(http_get(gw.admin_port, "/readyz")[0], 200, "/readyz before the disk fills")
    with open(os.path.join(mnt, "filler"), "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    # the next record cannot be written: the writer notices, readiness drops
    first = exchange(gw.port(), request("GET", "/v1/a", "crm.example"))
    end = time.monotonic() + 5
    st = None
    while time.monotonic() < end:
        st, _, body = http_get(gw.admin_port, "/readyz")
        if st == 503:
            break
        time.sleep(0.05)
    eq(st, 503, "/readyz with a full records disk")
    before = up.count()
    status, hdrs, body, _, _ = exchange(gw.port(), request("POST", "/v1/b", "crm.example", JSON_H,
                                                           json.dumps({"email": EMAIL})))
    eq(status, 451, "a new transfer with the records disk full")
    eq(json.loads(body).get("reason"), "records_unavailable", "reason")
    eq(up.count(), before, "requests forwarded while records are unavailable")
    status, _, _, _, _ = exchange(gw.port(), request("GET", "/v1/c", "crm.example"))
    eq(status, 451, "a transfer without personal data is blocked too")
    m = parse_metrics(http_get(gw.admin_port, "/metrics")[2].decode())
    eq(msum(m, "bordergate_records_healthy"), 0, "bordergate_records_healthy")
    check(first[0] in (200, 451, 503), "first status %r" % first[0])


@test
def records_of_this_file_carry_no_personal_data():
    env()
    recs = [r for p in record_files() for r in read_records(p)]
    check(len(recs) >= 10000, "only %d records" % len(recs))
    eq(scan_records(recs), [], "findings in records")


if __name__ == "__main__":
    main()
