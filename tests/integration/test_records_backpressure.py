#!/usr/bin/env python3
"""test_records_backpressure.py -- a stalled records disk must not freeze a worker.

The gateway runs with an LD_PRELOAD shim that makes write()/fsync()/fdatasync() on the records
file block while a gate file exists (a disk that stops answering). With a small writer queue
(`records.queue_size: 64`) and one worker: requests are forwarded until the queue's slots are
taken; then a routed request gets 503 problem+json with Retry-After at once and is sent nowhere,
while the same worker still answers a 403 for an unknown host, /healthz stays 200 and /readyz
says 503 `records backlogged`. Once the gate is gone the writer catches up, /readyz is 200
again, requests are forwarded again, and after SIGTERM `bordergate records verify` finds a
record for every forwarded exchange (and none for the refused ones).
Before the reservations, the worker blocked inside bg_records_submit once the queue was full:
every request on it hung (here: a read timeout), and /readyz said 200 throughout.
Ends with "N passed, N failed".
"""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402

QUEUE = 64

# With the stall shim: the first clock_gettime(CLOCK_MONOTONIC) the gateway's own code (not
# libuv's) makes on the main thread, where /readyz is answered, once the file $BG_TEST_SLOW_CLOCK
# exists, takes that file away, lets the records disk answer (removes $BG_TEST_STALL_GATE) and
# returns the time it read only 300 ms later: the writer finishes its step in between. That
# puts the writer's progress inside /readyz's reading of the stall age, at the reading itself.
SLOW_CLOCK_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int from_executable(void *ret)
{
    Dl_info me, caller;
    return dladdr((void *)getauxval(AT_PHDR), &me) && dladdr(ret, &caller) && me.dli_fbase == caller.dli_fbase;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    if (!real)
        real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(id, ts);
    const char *trigger = getenv("BG_TEST_SLOW_CLOCK");
    if (id == CLOCK_MONOTONIC && trigger && syscall(SYS_gettid) == getpid() &&
        from_executable(__builtin_return_address(0)) && unlink(trigger) == 0) {
        const char *gate = getenv("BG_TEST_STALL_GATE");
        if (gate)
            unlink(gate);
        struct timespec nap = {0, 300 * 1000000L};
        nanosleep(&nap, NULL);
    }
    return rc;
}
"""


def readyz(gw):
    st, _, body = h.http_get(gw.admin_port, "/readyz", timeout=2)
    return st, body.decode()


@test
def stalled_records_disk_refuses_with_503_and_the_worker_keeps_serving():
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("crm", ["crm.example"], up.port)], workers=1)
    cfg["records"]["queue_size"] = QUEUE
    gate = os.path.join(h.tmpdir(), "stall-gate")
    gw = h.start_stallable(cfg, gate, "stall")
    h.defer(lambda: os.path.exists(gate) and os.unlink(gate))

    c = h.Conn(gw.port(), timeout=3)
    forwarded = []

    def get(conn, host, path):
        conn.send(h.request("GET", path, host))
        return conn.read_response()

    r = get(c, "crm.example", "/v1/first")
    eq(r.status, 200, "before the stall")
    forwarded.append(r.headers.get("x-transfer-id"))
    h.wait_record(cfg["records"]["path"], forwarded[0])
    eq(readyz(gw)[0], 200, "/readyz before the stall")

    open(gate, "w").close()
    # One record first, and time for the writer to take it into a write that stalls: from then on
    # no slot comes free, so the 503 below is not followed by room the writer made by taking a
    # batch only just after it (then a later request would be forwarded again).
    r = get(c, "crm.example", "/v1/stalling")
    eq(r.status, 200, "the first request after the stall began")
    forwarded.append(r.headers.get("x-transfer-id"))
    time.sleep(0.3)
    # The queue's slots run out after at most QUEUE records queued plus what the writer took into
    # its stalled write (at most QUEUE as well); then the next routed request is refused.
    refused = None
    for i in range(3 * QUEUE):
        try:
            r = get(c, "crm.example", "/v1/n%d" % i)
        except (OSError, h.Closed) as e:
            raise h.Failure("request %d during the stall got no answer within 3 s (%s): the worker froze" % (i, e))
        if r.status == 503:
            refused = r
            break
        eq(r.status, 200, "request %d during the stall" % i)
        forwarded.append(r.headers.get("x-transfer-id"))
    check(refused is not None, "no 503 after %d requests with the records disk stalled" % (3 * QUEUE))
    check(len(forwarded) > QUEUE, "only %d forwarded before the 503: the slots are the queue's" % len(forwarded))

    # The refusal: problem+json, Retry-After, no transfer id (there is no record), nothing forwarded.
    eq(refused.headers.get("content-type"), "application/problem+json", "503 content type")
    check(refused.headers.get("retry-after"), "503 without Retry-After: %r" % refused.headers)
    check(refused.headers.get("x-transfer-id") is None, "a 503 that leaves no record names no transfer id")
    prob = refused.json()
    eq((prob.get("status"), prob.get("type")), (503, "https://bordergate.dev/problems/records-unavailable"),
       "problem body")
    before = up.count()
    t0 = time.monotonic()
    c2 = h.Conn(gw.port(), timeout=3)
    r = get(c2, "crm.example", "/v1/refused")
    eq(r.status, 503, "another routed request while stalled")
    check(time.monotonic() - t0 < 1.0, "the 503 took %.2fs" % (time.monotonic() - t0))
    eq(up.count(), before, "requests the vendor got while refused")
    # The same worker serves what needs no record, and the admin side says why it is not ready.
    eq(get(c2, "elsewhere.example", "/").status, 403, "an unknown host while stalled")
    eq(h.http_get(gw.admin_port, "/healthz", timeout=2)[0], 200, "/healthz while stalled")
    st, body = readyz(gw)
    eq(st, 503, "/readyz while stalled (%r)" % body)
    check("records backlogged" in body, "/readyz body %r" % body)
    check(h.metric(gw.admin_port, "bordergate_records_refused_total") >= 2, "bordergate_records_refused_total")
    eq(h.metric(gw.admin_port, "bordergate_records_slots"), float(QUEUE), "bordergate_records_slots")

    os.unlink(gate)
    h.wait_until(lambda: readyz(gw)[0] == 200, timeout=10, msg="/readyz 200 after the stall")
    c3 = h.Conn(gw.port(), timeout=3)
    r = get(c3, "crm.example", "/v1/after")
    eq(r.status, 200, "forwarded again after the stall")
    forwarded.append(r.headers.get("x-transfer-id"))
    c.close(), c2.close(), c3.close()
    gw.stop()

    out = h.run([h.BINARY, "records", "verify", cfg["records"]["path"]])
    eq(out.returncode, 0, "records verify: %s %s" % (out.stdout, out.stderr))
    check("OK: %d records" % len(forwarded) in out.stdout, "verify says %r, want %d records"
          % (out.stdout.strip(), len(forwarded)))
    ids = [rec["id"] for rec in h.read_records(cfg["records"]["path"])]
    eq(sorted(ids), sorted(forwarded), "a record for every forwarded exchange, none for the refused")
    eq(up.count(), len(forwarded), "requests the vendor got")


@test
def a_writer_stalled_under_light_traffic_makes_readyz_fail_after_stall_timeout():
    """One request on a dead disk: the queue stays nearly empty (never backlogged), yet after
    records.stall_timeout without a finished write /readyz says 503 `records stalled`; it is ready
    again once the disk answers. Before the stall check /readyz said 200 until 3/4 of the 16384
    slots were taken, which light traffic never does."""
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("crm", ["crm.example"], up.port)], workers=1)
    cfg["records"]["stall_timeout"] = "1s"
    cfg["records"]["path"] = os.path.join(h.tmpdir(), "light", "transfers.jsonl")  # not the other test's file
    gate = os.path.join(h.tmpdir(), "stall-gate-light")
    gw = h.start_stallable(cfg, gate, "stall-light")
    h.defer(lambda: os.path.exists(gate) and os.unlink(gate))

    def get(path):
        c = h.Conn(gw.port(), timeout=3)
        c.send(h.request("GET", path, "crm.example"))
        r = c.read_response()
        c.close()
        return r

    ids = []
    r = get("/v1/before")
    eq(r.status, 200, "before the stall")
    ids.append(r.headers.get("x-transfer-id"))
    h.wait_record(cfg["records"]["path"], ids[0])
    # Idle for longer than the stall timeout with nothing pending is no stall.
    time.sleep(1.3)
    eq(readyz(gw), (200, "config ok\ngeoip ok\nrecords ok\n"), "/readyz idle past stall_timeout")

    open(gate, "w").close()
    t0 = time.monotonic()
    r = get("/v1/stuck")  # fsync: batch, so the answer does not wait for its record
    eq(r.status, 200, "the request whose record hits the dead disk")
    ids.append(r.headers.get("x-transfer-id"))
    st, body = readyz(gw)
    if time.monotonic() - t0 < 0.8:
        eq(st, 200, "/readyz before stall_timeout passed (%r)" % body)
    h.wait_until(lambda: readyz(gw)[0] == 503, timeout=5, msg="/readyz 503 once the writer made no progress for 1 s")
    check(time.monotonic() - t0 >= 0.9, "/readyz failed %.2fs after the stall began" % (time.monotonic() - t0))
    st, body = readyz(gw)
    check("records stalled (no write or fsync finished for " in body, "/readyz body %r" % body)
    # The age in the message is the one that made the verdict: at least stall_timeout, never a
    # second reading taken after the writer moved on ("0 ms").
    m = re.search(r"finished for (\d+) ms\)", body)
    check(m and int(m.group(1)) >= 1000, "/readyz stall age below stall_timeout: %r" % body)
    check(h.metric(gw.admin_port, "bordergate_records_slots_used") < 16384 * 3 / 4,
          "the queue is far from backlogged")
    age = h.metric(gw.admin_port, "bordergate_records_pending_age_seconds")
    check(age >= 1.0, "bordergate_records_pending_age_seconds %r while stalled" % age)
    eq(h.http_get(gw.admin_port, "/healthz", timeout=2)[0], 200, "/healthz while stalled")

    os.unlink(gate)
    h.wait_until(lambda: readyz(gw)[0] == 200, timeout=5, msg="/readyz 200 once the disk answers again")
    eq(readyz(gw)[1], "config ok\ngeoip ok\nrecords ok\n", "/readyz body after the stall")
    h.wait_until(lambda: h.metric(gw.admin_port, "bordergate_records_pending_age_seconds") == 0, timeout=5,
                 msg="bordergate_records_pending_age_seconds back to 0")
    gw.stop()
    out = h.run([h.BINARY, "records", "verify", cfg["records"]["path"]])
    eq(out.returncode, 0, "records verify: %s %s" % (out.stdout, out.stderr))
    eq(sorted(rec["id"] for rec in h.read_records(cfg["records"]["path"])), sorted(ids), "records")


@test
def readyz_reports_the_stall_age_that_made_its_verdict():
    """/readyz says `records stalled (no write or fsync finished for N ms)`. N was read a second
    time after the verdict: when the writer finished its step between the two readings, the
    answer was 503 stalled "for 0 ms". The slow-clock shim puts the writer's progress exactly
    there (inside the verdict's reading): N must still be the age that made the verdict."""
    up = h.upstream()
    cfg = h.gateway_config([h.vendor("crm", ["crm.example"], up.port)], workers=1)
    cfg["records"]["stall_timeout"] = "1s"
    cfg["records"]["path"] = os.path.join(h.tmpdir(), "age", "transfers.jsonl")
    gate = os.path.join(h.tmpdir(), "stall-gate-age")
    trigger = os.path.join(h.tmpdir(), "slow-clock")
    gw = h.start_stallable(cfg, gate, "stall-age", preload=[h.build_preload("slowclock", SLOW_CLOCK_C)],
                           env={"BG_TEST_SLOW_CLOCK": trigger})
    h.defer(lambda: os.path.exists(gate) and os.unlink(gate))
    h.defer(lambda: os.path.exists(trigger) and os.unlink(trigger))
    seen = []
    for attempt in range(4):
        open(gate, "w").close()
        c = h.Conn(gw.port(), timeout=3)
        c.send(h.request("GET", "/v1/age%d" % attempt, "crm.example"))
        eq(c.read_response().status, 200, "the request whose record hits the dead disk")
        c.close()
        h.wait_until(lambda: readyz(gw)[0] == 503, timeout=5, msg="/readyz 503 stalled")
        open(trigger, "w").close()
        st, body = readyz(gw)
        fired = not os.path.exists(trigger)  # else the gateway never read the clock: try again
        seen.append((st, body, fired))
        if fired and st == 503:
            m = re.search(r"records stalled \(no write or fsync finished for (\d+) ms\)", body)
            check(m, "/readyz body %r" % body)
            check(int(m.group(1)) >= 1000, "503 stalled, but the age it gives is below stall_timeout "
                  "(read again after the writer moved on): %r" % body)
            break
        if os.path.exists(trigger):
            os.unlink(trigger)
        if os.path.exists(gate):
            os.unlink(gate)
        h.wait_until(lambda: readyz(gw)[0] == 200, timeout=5, msg="/readyz 200 after the attempt")
    else:
        raise h.Failure("the slow clock never fired inside a stalled /readyz: %r" % seen)
    h.wait_until(lambda: readyz(gw)[0] == 200, timeout=5, msg="/readyz 200 once the disk answered")
    gw.stop()


if __name__ == "__main__":
    h.main()
