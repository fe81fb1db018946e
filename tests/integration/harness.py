"""harness.py -- what bordergate's integration tests share (Python 3 standard library only).

- a tiny framework: @test, check(cond, msg), eq(got, want), defer(fn), main() which runs every
  test of the file in order, prints each failure with both values and ends with the line
  "N passed, N failed" (exit 1 on any failure);
- one temp dir per test file (removed at exit; BG_KEEP_TMP=1 keeps it), free loopback ports,
  certificates (certs/gen-certs.sh, once), a test GeoIP database (build/tests/tools/mkmmdb when
  built), a key dir, config YAML written from a Python dict;
- processes: Gateway (build/bordergate run -c CFG; BG_BUILD picks the build dir), Nginx (Debian's
  nginx as an upstream), the in-process Upstream from upstream.py; every process started is
  SIGTERMed (then SIGKILLed) at exit, even after a crash or a signal: nothing outlives the test;
- clients: curl() -> (status, headers, body), Conn for raw bytes over TCP or TLS with an HTTP/1.1
  response reader that knows Content-Length, chunked and close-delimited bodies.
- transfer records: read_records(), wait_record(path, id), record_files(), scan_records() (feeds
  records to `bordergate scan` and returns the findings, ip_address on caller/dest_ip excepted);
  start_stallable() starts a gateway whose records disk stops answering while a gate file exists;
  start_preloaded() one with other LD_PRELOAD shims.
Tests run with the project root as the working directory (relative config paths resolve there).
"""

import atexit
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from upstream import Upstream, pattern  # noqa: E402  (re-exported for tests)

warnings.filterwarnings("ignore", category=DeprecationWarning)
os.chdir(ROOT)

BUILD = os.environ.get("BG_BUILD", "build")
BUILD_DIR = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
BINARY = os.path.join(BUILD_DIR, "bordergate")
MKMMDB = os.path.join(BUILD_DIR, "tests", "tools", "mkmmdb")
TEST_TIMEOUT = int(os.environ.get("BG_TEST_TIMEOUT", "30"))  # seconds per test

# Every category of the privacy policy except `child` and `ai_interaction`, which change how a
# vendor is treated; test vendors are domestic (DE) so personal data never blocks them.
CATEGORIES = ["identifier", "device", "location", "usage", "content", "credential", "financial"]

# --------------------------------------------------------------------------------------------
# Framework


class Failure(AssertionError):
    pass


_tests = []
_cleanups = []  # per-test, LIFO
_running = [False]  # inside a test: Conn objects close themselves when it ends


def test(fn):
    """Register a test; main() runs them in file order."""
    _tests.append(fn)
    return fn


def check(cond, msg="check failed"):
    if not cond:
        raise Failure(msg)


def eq(got, want, msg=""):
    if got != want:
        raise Failure("%sgot %s, want %s" % (msg + ": " if msg else "", _short(got), _short(want)))


def _short(v, n=600):
    s = repr(v)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


def defer(fn, *args):
    """Run fn(*args) when the current test ends (pass or fail), last registered first."""
    _cleanups.append((fn, args))


def _alarm(signum, frame):
    raise Failure("test timed out after %ds" % TEST_TIMEOUT)


def main():
    """Run every registered test (or those named on the command line) and exit."""
    only = set(sys.argv[1:])
    passed = failed = 0
    signal.signal(signal.SIGALRM, _alarm)
    try:
        for fn in _tests:
            if only and fn.__name__ not in only:
                continue
            t0 = time.monotonic()
            err = None
            signal.alarm(TEST_TIMEOUT)
            _running[0] = True
            try:
                fn()
            except Failure as e:
                err = str(e)
            except Exception:
                err = traceback.format_exc().rstrip()
            finally:
                signal.alarm(0)
                _running[0] = False
                while _cleanups:
                    f, a = _cleanups.pop()
                    try:
                        f(*a)
                    except Exception as e:  # a failing cleanup fails the test
                        err = err or "cleanup %s: %s" % (getattr(f, "__name__", f), e)
            dt = time.monotonic() - t0
            if err is None:
                passed += 1
                print("ok   %s (%.2fs)" % (fn.__name__, dt), flush=True)
            else:
                failed += 1
                print("FAIL %s (%.2fs): %s" % (fn.__name__, dt, err), flush=True)
    finally:
        _cleanup_all()
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)


def once(fn):
    """Decorator for shared fixtures: the first call's result (or exception) is reused."""
    state = {}

    def wrapper():
        if "v" in state:
            return state["v"]
        if "e" in state:
            raise Failure("fixture %s failed earlier: %s" % (fn.__name__, state["e"]))
        try:
            state["v"] = fn()
            return state["v"]
        except Exception as e:
            state["e"] = str(e) if isinstance(e, Failure) else "%s: %s" % (type(e).__name__, e)
            raise
    wrapper.__name__ = fn.__name__
    return wrapper


# --------------------------------------------------------------------------------------------
# Temp dir, processes, cleanup

_tmp = None
_procs = []     # subprocess.Popen objects to stop at exit
_servers = []   # in-process Upstreams to stop at exit
_lock = threading.Lock()


def tmpdir():
    """The temp dir of this test file (created on first use, removed at exit)."""
    global _tmp
    if _tmp is None:
        _tmp = tempfile.mkdtemp(prefix="bg-it-")
    return _tmp


def _terminate(p, grace=3.0):
    if p.poll() is not None:
        return
    try:
        p.terminate()
        p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(2)
    except OSError:
        pass


def _cleanup_all():
    with _lock:
        procs, _procs[:] = list(_procs), []
        servers, _servers[:] = list(_servers), []
    for p in procs:
        _terminate(p)
    for s in servers:
        try:
            s.stop()
        except Exception:
            pass
    global _tmp
    if _tmp and not os.environ.get("BG_KEEP_TMP"):
        shutil.rmtree(_tmp, ignore_errors=True)
        _tmp = None


atexit.register(_cleanup_all)


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through finally blocks and atexit


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


def fd_count(pid):
    """Descriptors process pid has open (/proc/PID/fd)."""
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kb(pid):
    """Process pid's resident set in KiB (VmRSS), 0 once it is gone from /proc."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def spawn(argv, log_name=None, **kw):
    """Start a process tracked for cleanup; stdout+stderr go to tmp/<log_name> when given."""
    if log_name:
        f = open(os.path.join(tmpdir(), log_name), "ab")
        kw.setdefault("stdout", f)
        kw.setdefault("stderr", subprocess.STDOUT)
    p = subprocess.Popen(argv, **kw)
    with _lock:
        _procs.append(p)
    return p


def run(argv, timeout=30, input=None, **kw):
    """Run a command to completion; returns CompletedProcess with text stdout/stderr."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input,
                          cwd=kw.pop("cwd", ROOT), **kw)


def upstream(tls=None, **kw):
    """Start an in-process test upstream (upstream.Upstream), stopped at exit."""
    u = Upstream(tls=tls, **kw).start()
    with _lock:
        _servers.append(u)
    return u


# --------------------------------------------------------------------------------------------
# Ports, certificates, GeoIP, keys

_given_ports = set()


def free_port():
    """A loopback TCP port that is free now (and not handed out before by this process)."""
    for _ in range(100):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _given_ports:
            _given_ports.add(port)
            return port
    raise RuntimeError("no free port")


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    """Wait until host:port accepts a TCP connection; False on timeout or if proc exits."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection((host, port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.03)
    return False


@once
def certs():
    """Run certs/gen-certs.sh into tmp/certs once; returns the directory."""
    d = os.path.join(tmpdir(), "certs")
    r = run(["sh", os.path.join(ROOT, "certs", "gen-certs.sh"), d], timeout=60)
    if r.returncode != 0:
        raise Failure("gen-certs.sh failed (%d): %s" % (r.returncode, r.stderr))
    return d


def cert(name):
    """Path of a generated certificate or key, e.g. cert('ca.crt')."""
    return os.path.join(certs(), name)


# The loopback addresses tests may use, and their countries in the test GeoIP database.
GEO_ENTRIES = {"127.0.0.1/32": "DE", "127.0.0.2/32": "DE", "127.0.0.3/32": "US",
               "127.0.0.4/32": "JP", "::1/128": "CH"}


def have_mkmmdb():
    return os.access(MKMMDB, os.X_OK)


def geoip_db(entries=None, name="test.mmdb"):
    """Build a test GeoIP database with mkmmdb (dbip schema); returns its path, or None when the
    tool is not built."""
    if not have_mkmmdb():
        return None
    out = os.path.join(tmpdir(), name)
    if not os.path.exists(out):
        entries = entries or GEO_ENTRIES
        r = run([MKMMDB, out, "--schema", "dbip"] + ["%s=%s" % kv for kv in entries.items()])
        if r.returncode != 0:
            raise Failure("mkmmdb failed (%d): %s%s" % (r.returncode, r.stdout, r.stderr))
    return out


def geoip_config(entries=None):
    """The `geoip:` section for tests: the mkmmdb database when available, otherwise the project's
    database with the same entries as overrides (checked before the database)."""
    entries = entries or GEO_ENTRIES
    db = geoip_db(entries)
    if db:
        return {"database": db}
    return {"database": os.path.join(ROOT, "config/geoip/dbip-country-lite.mmdb"),
            "overrides": [{"network": n, "country": c} for n, c in entries.items()]}


@once
def key_dir():
    """A key dir with k1.key (certs/gen-key.sh when present, else 64 random bytes in base64)."""
    d = os.path.join(tmpdir(), "keys")
    gen = os.path.join(ROOT, "certs", "gen-key.sh")
    if os.path.exists(gen):
        r = run(["sh", gen, d, "k1"])
        if r.returncode != 0:
            raise Failure("gen-key.sh failed: %s" % r.stderr)
    else:
        os.makedirs(d, mode=0o700, exist_ok=True)
        path = os.path.join(d, "k1.key")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(os.urandom(64)).decode() + "\n")
    return d


# --------------------------------------------------------------------------------------------
# Config YAML

def _scalar(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(obj, indent=0):
    """Emit dicts/lists/scalars as simple block-style YAML with double-quoted strings."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                out.append("%s%s:\n%s" % (pad, k, to_yaml(v, indent + 1)))
            elif isinstance(v, list) and v and any(isinstance(x, (dict, list)) for x in v):
                out.append("%s%s:\n%s" % (pad, k, to_yaml(v, indent + 1)))
            elif isinstance(v, list):
                out.append("%s%s: [%s]\n" % (pad, k, ", ".join(_scalar(x) for x in v)))
            elif isinstance(v, dict):
                out.append("%s%s: {}\n" % (pad, k))
            else:
                out.append("%s%s: %s\n" % (pad, k, _scalar(v)))
        return "".join(out)
    if isinstance(obj, list):
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                body = to_yaml(item, indent + 1)
                # put the first line after the dash
                out.append(pad + "- " + body[len(pad) + 2:])
            else:
                out.append("%s- %s\n" % (pad, _scalar(item) if not isinstance(item, (dict, list))
                                        else ("{}" if isinstance(item, dict) else "[]")))
        return "".join(out)
    return pad + _scalar(obj) + "\n"


def write_config(cfg, name="bordergate.yaml"):
    """Write cfg (a dict) as YAML into the temp dir; returns the path."""
    path = os.path.join(tmpdir(), name)
    with open(path, "w") as f:
        f.write(to_yaml(cfg))
    return path


def vendor(name, hosts, port, tls=False, **kw):
    """A domestic (DE, EEA) test vendor pinned to 127.0.0.1:port. kw: `upstream` extras (ca,
    verify, addresses, client_certificate, ...) go into upstream; anything else is a vendor key."""
    up = {"addresses": ["127.0.0.1"], "port": port, "tls": tls}
    for k in ("ca", "verify", "addresses", "client_certificate", "client_key", "sni", "protocol"):
        if k in kw:
            up[k] = kw.pop(k)
    v = {"name": name, "entity": {"name": name + " GmbH", "country": "DE"}, "role": "processor",
         "hosts": list(hosts), "upstream": up, "regions": ["EEA"], "categories": list(CATEGORIES),
         "on_violation": "block"}
    v.update(kw)
    return v


def us_vendor(v):
    """Move a test vendor (from vendor()) to the US: region and entity country."""
    v["regions"] = ["US"]
    v["entity"]["country"] = "US"
    return v


def start_with_hosts(gw, hosts_text, name="hosts"):
    """Start gw in a private mount namespace whose /etc/hosts is a temp file holding hosts_text
    (unshare -m, a bind mount over /etc/hosts; root). Returns the file's path: a test may rewrite
    it while the gateway runs, and the gateway's next lookups read the new text."""
    global BINARY
    hosts = os.path.join(tmpdir(), name)
    with open(hosts, "w") as f:
        f.write(hosts_text)
    wrapper = os.path.join(tmpdir(), "bordergate-%s.sh" % name)
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec unshare -m sh -c 'h=$1; b=$2; shift 2; mount --bind \"$h\" /etc/hosts "
                "&& exec \"$b\" \"$@\"' sh %s %s \"$@\"\n" % (hosts, BINARY))
    os.chmod(wrapper, 0o755)
    real = BINARY
    BINARY = wrapper
    try:
        gw.start()
    finally:
        BINARY = real
    return hosts


def h2echo(addr="127.0.0.1", max_streams=100):
    """Start build/tests/tools/h2echo (the HTTP/2 TLS test vendor, vendor.crt) on addr; its port."""
    binary = os.path.join(BUILD_DIR, "tests", "tools", "h2echo")
    if not os.access(binary, os.X_OK):
        raise Failure("%s is not built (make)" % binary)
    port = free_port()
    p = spawn([binary, str(port), cert("vendor.crt"), cert("vendor.key"), str(max_streams), addr],
              log_name="h2echo-%d.log" % port)
    if not wait_port(port, addr, 10, p):
        raise Failure("h2echo did not start on %s:%d" % (addr, port))
    return port


def gateway_config(vendors, listen=None, limits=None, workers=1, **extra):
    """A complete config for tests: one plain loopback listener (unless `listen` is given: a
    list of listen entries, where an address of None gets a free port), an admin listener,
    the test GeoIP database, keys, records in the temp dir."""
    if listen is None:
        listen = [{"address": None}]
    ls = []
    for entry in listen:
        e = dict(entry)
        if not e.get("address"):
            e["address"] = "127.0.0.1:%d" % free_port()
        ls.append(e)
    cfg = {
        "jurisdiction": "EEA",
        "mode": "enforce",
        "listen": ls,
        "admin": {"address": "127.0.0.1:%d" % free_port()},
        "workers": workers,
        "limits": dict(limits or {}),
        "geoip": geoip_config(),
        "encryption": {"keys": key_dir(), "active_key": "k1"},
        "records": {"path": os.path.join(tmpdir(), "records", "transfers.jsonl"),
                    "fsync": "never"},
        "vendors": list(vendors),
    }
    if not cfg["limits"]:
        del cfg["limits"]
    cfg.update(extra)
    return cfg


def port_of(address):
    return int(address.rsplit(":", 1)[1])


# --------------------------------------------------------------------------------------------
# The gateway

class Gateway:
    """build/bordergate run -c CFG, with stderr captured to a file in the temp dir."""

    _n = 0

    def __init__(self, cfg, args=(), name=None):
        Gateway._n += 1
        self.name = name or "gw%d" % Gateway._n
        self.cfg = cfg
        self.args = list(args)
        self.path = write_config(cfg, self.name + ".yaml")
        self.log_path = os.path.join(tmpdir(), self.name + ".stderr")
        self.proc = None
        self.listen = [e["address"] for e in cfg.get("listen", [])]
        admin = cfg.get("admin")
        self.admin = admin.get("address") if isinstance(admin, dict) else None
        self.admin = self.admin or ("127.0.0.1:9901" if admin is None else None)

    def port(self, i=0):
        """Port of the i-th listener."""
        return port_of(self.listen[i])

    @property
    def admin_port(self):
        return port_of(self.admin) if self.admin else None

    def start(self, timeout=10.0):
        """Start and wait until every listener accepts and /healthz answers 200. Raises Failure
        (with the tail of stderr) when the binary is missing, exits, or is not ready in time."""
        if not os.access(BINARY, os.X_OK):
            raise Failure("%s is not built (make)" % BINARY)
        self.proc = spawn([BINARY] + self.args + ["run", "-c", self.path],
                          stdin=subprocess.DEVNULL, stdout=open(self.log_path, "ab"),
                          stderr=subprocess.STDOUT, cwd=ROOT)
        end = time.monotonic() + timeout
        for addr in self.listen + ([self.admin] if self.admin else []):
            host, port = addr.rsplit(":", 1)
            host = host.strip("[]")
            if not wait_port(int(port), host, max(0.1, end - time.monotonic()), self.proc):
                self._fail_start("listener %s not accepting" % addr)
        if self.admin:
            while True:
                try:
                    st = http_get(self.admin_port, "/healthz", timeout=1)[0]
                    if st == 200:
                        break
                except OSError:
                    st = None
                if self.proc.poll() is not None or time.monotonic() > end:
                    self._fail_start("/healthz answered %s" % st)
                time.sleep(0.05)
        return self

    def _fail_start(self, why):
        rc = self.proc.poll()
        if rc is None:
            _terminate(self.proc, 1)
        raise Failure("gateway did not start (%s; exit %s); stderr:\n%s"
                      % (why, rc, self.stderr()[-2000:]))

    def stderr(self):
        """Everything the gateway wrote to stderr (and stdout) so far."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def mark(self):
        """Position in stderr; pass to stderr_since()."""
        return len(self.stderr())

    def stderr_since(self, mark):
        return self.stderr()[mark:]

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10.0, expect=0):
        """SIGTERM, wait up to timeout (the drain bound) and check the exit code is `expect`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(2)
            raise Failure("gateway did not exit within %.1fs of SIGTERM" % timeout)
        if expect is not None and rc != expect:
            raise Failure("gateway exited %s, want %s; stderr tail:\n%s"
                          % (rc, expect, self.stderr()[-1500:]))
        return rc


def http_get(port, path, host="127.0.0.1", headers=None, timeout=5):
    """A plain GET with http.client; returns (status, headers dict lowercased, body)."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


# --------------------------------------------------------------------------------------------
# nginx

class Nginx:
    """Debian's nginx in the foreground as a test upstream: `return 200` with a body of
    body_size bytes, or static files from static_dir. One worker."""

    def __init__(self, port=None, body_size=1024, static_dir=None):
        self.port = port or free_port()
        self.body = ("x" * (body_size - 1) + "\n") if body_size else ""
        self.static_dir = static_dir
        self.dir = os.path.join(tmpdir(), "nginx-%d" % self.port)
        self.proc = None

    def start(self, timeout=10.0):
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        os.makedirs(self.dir, exist_ok=True)
        if self.static_dir:
            loc = "root %s;" % self.static_dir
        else:
            loc = 'default_type text/plain; return 200 "%s";' % self.body
        d = self.dir
        # as root, workers would run as nobody and could not read the 0700 temp dir
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = user + """daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    location / {{ {loc} }}
  }}
}}
""".format(d=d, port=self.port, loc=loc)
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.proc = spawn([exe, "-p", d, "-c", path, "-e", os.path.join(d, "error.log")],
                          log_name="nginx-%d.out" % self.port, stdin=subprocess.DEVNULL)
        if not wait_port(self.port, timeout=timeout, proc=self.proc):
            err = ""
            try:
                err = open(os.path.join(d, "error.log")).read()
            except OSError:
                pass
            _terminate(self.proc, 1)
            raise Failure("nginx did not start on %d: %s" % (self.port, err[-1000:]))
        return self

    def stop(self):
        if self.proc:
            _terminate(self.proc)


# --------------------------------------------------------------------------------------------
# curl

class Headers(list):
    """A list of (name, value); get() is case-insensitive and joins repeated fields."""

    def get(self, name, default=None):
        vals = self.get_all(name)
        return ", ".join(vals) if vals else default

    def get_all(self, name):
        name = name.lower()
        return [v for n, v in self if n.lower() == name]

    def __contains__(self, name):
        if isinstance(name, str):
            return bool(self.get_all(name))
        return list.__contains__(self, name)


class CurlResult:
    """status (0 when no response), headers (final response), body (bytes), rc, err."""

    def __init__(self, status, headers, body, rc, err, raw_headers):
        self.status, self.headers, self.body, self.rc, self.err = status, headers, body, rc, err
        self.raw_headers = raw_headers

    def __iter__(self):
        return iter((self.status, self.headers, self.body))

    def json(self):
        return json.loads(self.body.decode())

    def __repr__(self):
        return "<curl status=%s rc=%s err=%r body=%r>" % (self.status, self.rc, self.err.strip(),
                                                          self.body[:200])


_curl_n = 0


def curl(*args, timeout=20):
    """Run curl ARGS (-sS, a --max-time) and return CurlResult; unpacks as (status, headers, body)."""
    global _curl_n
    _curl_n += 1
    base = os.path.join(tmpdir(), "curl%d" % _curl_n)
    argv = ["curl", "-sS", "--max-time", str(timeout), "-D", base + ".h", "-o", base + ".b",
            "-w", "%{http_code}"] + [str(a) for a in args]
    r = subprocess.run(argv, capture_output=True, timeout=timeout + 10)
    try:
        status = int(r.stdout.decode().strip()[-3:] or 0)
    except ValueError:
        status = 0
    raw = b""
    body = b""
    if os.path.exists(base + ".h"):
        raw = open(base + ".h", "rb").read()
        os.unlink(base + ".h")
    if os.path.exists(base + ".b"):
        body = open(base + ".b", "rb").read()
        os.unlink(base + ".b")
    blocks = [b for b in raw.replace(b"\r\n", b"\n").split(b"\n\n") if b.strip()]
    final = [b for b in blocks if not b.startswith(b"HTTP/1.1 1") and not b.startswith(b"HTTP/2 1")]
    hdrs = Headers()
    if final:
        for line in final[-1].decode("latin-1").split("\n")[1:]:
            if ":" in line:
                n, v = line.split(":", 1)
                hdrs.append((n.strip(), v.strip()))
    return CurlResult(status, hdrs, body, r.returncode, r.stderr.decode("utf-8", "replace"), raw)


# --------------------------------------------------------------------------------------------
# Raw connections

class Response:
    def __init__(self, status, reason, headers, body, interim):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body
        self.interim = interim  # 1xx responses before this one (list of Response)

    def json(self):
        return json.loads(self.body.decode())

    def __repr__(self):
        return "<Response %s %r body=%r>" % (self.status, self.reason, self.body[:120])


class Closed(Exception):
    pass


class Conn:
    """A raw client connection (TCP, or TLS when ssl_context is given)."""

    def __init__(self, port, host="127.0.0.1", ssl_context=None, server_hostname=None, timeout=5.0):
        s = socket.create_connection((host, port), timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is not None:
            s = ssl_context.wrap_socket(s, server_hostname=server_hostname or host)
        self.sock = s
        self.buf = bytearray()
        self.timeout = timeout
        if _running[0]:
            defer(self.close)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)
        return self

    def _fill(self, timeout=None):
        self.sock.settimeout(timeout if timeout is not None else self.timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        except ssl.SSLError:
            data = b""
        if not data:
            raise Closed()
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n")
        line = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_response(self, head=False, interim=False):
        """Read one response. 1xx responses are collected into .interim unless interim=True,
        which returns the first response even when it is a 1xx. Raises Closed on EOF."""
        got = []
        while True:
            line = self._line().decode("latin-1")
            parts = line.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise Failure("bad status line %r" % line)
            status = int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            hdrs = Headers()
            while True:
                h = self._line().decode("latin-1")
                if not h:
                    break
                n, _, v = h.partition(":")
                hdrs.append((n.strip(), v.strip()))
            if 100 <= status < 200:
                r = Response(status, reason, hdrs, b"", [])
                if interim:
                    return r
                got.append(r)
                continue
            break
        body = bytearray()
        trailers = Headers()
        te = (hdrs.get("transfer-encoding") or "").lower()
        if head or status in (204, 304):
            pass
        elif "chunked" in te:
            while True:
                size = int(self._line().split(b";")[0].strip(), 16)
                if size == 0:
                    while True:
                        t = self._line().decode("latin-1")
                        if not t:
                            break
                        n, _, v = t.partition(":")
                        trailers.append((n.strip(), v.strip()))
                    break
                body += self._exact(size)
                self._exact(2)
        elif hdrs.get("content-length") is not None:
            n = int(hdrs.get("content-length"))
            while len(self.buf) < n:
                self._fill()
            body = self._exact(n)
        else:  # close-delimited
            try:
                while True:
                    self._fill()
            except Closed:
                pass
            body, self.buf = bytes(self.buf), bytearray()
        r = Response(status, reason, hdrs, bytes(body), got)
        r.trailers = trailers  # a chunked body's trailer section (empty otherwise)
        return r

    def read_until_close(self, timeout=None):
        """Read until EOF; returns the bytes (raises Failure when still open after timeout)."""
        end = time.monotonic() + (timeout or self.timeout)
        try:
            while time.monotonic() < end:
                self._fill(max(0.01, end - time.monotonic()))
        except Closed:
            out, self.buf = bytes(self.buf), bytearray()
            return out
        except socket.timeout:
            pass
        raise Failure("connection still open after %.1fs" % (timeout or self.timeout))

    def is_closed(self, timeout=1.0):
        """True when the peer closes (or resets) within timeout with no further bytes."""
        try:
            self._fill(timeout)
        except Closed:
            return not self.buf
        except (socket.timeout, TimeoutError):
            return False
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def raw(port, data, n=1, timeout=5.0, **kw):
    """Send data on a new connection, read n responses; returns (responses, conn)."""
    c = Conn(port, timeout=timeout, **kw)
    c.send(data)
    return [c.read_response() for _ in range(n)], c


def client_context(ca=None, cert=None, key=None, alpn=None, min_version=None, max_version=None,
                   verify=True):
    """An ssl.SSLContext for a TLS client (verifying against `ca` unless verify=False)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(ca or cert_path_ca())
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def cert_path_ca():
    return cert("ca.crt")


def request(method, target, host, headers=(), body=b"", version="HTTP/1.1"):
    """Build request bytes: the given headers in order after Host (host None: no Host line);
    Content-Length added for a non-empty body unless a framing header is given."""
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    names = set()
    for n, v in headers:
        lines.append("%s: %s" % (n, v))
        names.add(n.lower())
    if body and not names & {"content-length", "transfer-encoding"}:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --------------------------------------------------------------------------------------------
# Transfer records (used by the end-to-end suites)

def build_preload(name, source):
    """Compile `source` (C) into tmpdir()/NAME.so for LD_PRELOAD, with $CC or cc; returns its path
    (Failure when it does not build). Shims that stall or shift a libc call use it."""
    src = os.path.join(tmpdir(), name + ".c")
    out = os.path.join(tmpdir(), name + ".so")
    with open(src, "w") as f:
        f.write(source)
    r = run([os.environ.get("CC", "cc"), "-shared", "-fPIC", "-O1", "-o", out, src, "-ldl"])
    if r.returncode != 0:
        raise Failure("cannot build the %s shim: %s" % (name, r.stderr))
    return out


# A records disk that stops answering, for the suites that need one (records back-pressure,
# reconciliation, the order of answer and record under fsync: always).
STALL_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Descriptors opened on a path containing $BG_TEST_STALL_MATCH; while the file
 * $BG_TEST_STALL_GATE exists, write/fsync/fdatasync on them wait. */
static unsigned char marked[65536];

static void note(int fd, const char *path)
{
    const char *m = getenv("BG_TEST_STALL_MATCH");
    if (fd >= 0 && fd < 65536)
        marked[fd] = m && *m && path && strstr(path, m) != NULL;
}

static void stall(int fd)
{
    const char *gate = getenv("BG_TEST_STALL_GATE");
    struct stat st;
    if (fd < 0 || fd >= 65536 || !marked[fd] || !gate || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    int e = errno;
    struct timespec nap = {0, 10 * 1000 * 1000};
    while (stat(gate, &st) == 0)
        nanosleep(&nap, NULL);
    errno = e;
}

#define OPEN_WRAP(name)                                                          \
    int name(const char *path, int flags, ...)                                   \
    {                                                                            \
        static int (*real)(const char *, int, ...);                              \
        if (!real)                                                               \
            real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #name);     \
        mode_t mode = 0;                                                         \
        if (flags & (O_CREAT | O_TMPFILE)) {                                     \
            va_list ap;                                                          \
            va_start(ap, flags);                                                 \
            mode = (mode_t)va_arg(ap, int);                                      \
            va_end(ap);                                                          \
        }                                                                        \
        int fd = real(path, flags, mode);                                        \
        note(fd, path);                                                          \
        return fd;                                                               \
    }
OPEN_WRAP(open)
OPEN_WRAP(open64)

ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);
    if (!real)
        real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    stall(fd);
    return real(fd, buf, n);
}

int fsync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    stall(fd);
    return real(fd);
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    stall(fd);
    return real(fd);
}
"""


@once
def stall_lib():
    """The stall shim (STALL_C) built once; its path."""
    return build_preload("stall", STALL_C)


def start_preloaded(cfg, name, libs, env=None):
    """Start a Gateway with the shared objects `libs` in LD_PRELOAD and `env` (more variables) in
    its environment; the test's own environment is left as it was."""
    env = dict(env or {})
    saved = {k: os.environ.get(k) for k in ["LD_PRELOAD", "ASAN_OPTIONS"] + list(env)}
    os.environ.update(env)
    os.environ["LD_PRELOAD"] = " ".join(libs)
    # An ASan build wants its runtime first; the shims only wrap a few libc calls.
    os.environ["ASAN_OPTIONS"] = ((saved["ASAN_OPTIONS"] + ":") if saved["ASAN_OPTIONS"] else "") + \
        "verify_asan_link_order=0"
    try:
        return Gateway(cfg, name=name).start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def start_stallable(cfg, gate, name, preload=(), env=None):
    """Start a Gateway with the stall shim preloaded: while the file `gate` exists, write/fsync/
    fdatasync on its records file wait (a records disk that stopped answering). `preload`: more
    shims to load after it; `env`: more variables for the gateway's environment."""
    env = dict(env or {})
    env["BG_TEST_STALL_MATCH"] = os.path.basename(cfg["records"]["path"])
    env["BG_TEST_STALL_GATE"] = gate
    return start_preloaded(cfg, name, [stall_lib()] + list(preload), env)


def read_records(path):
    """The transfer records in a JSONL file, as dicts (a missing file reads as none). A last line
    without its newline is one the writer is still writing (a write can land in two parts while
    the test reads): it is not a record yet and is left out, so polling callers see it next time."""
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip() and line.endswith("\n")]
    except FileNotFoundError:
        return []


def wait_record(path, rid, timeout=5.0):
    """Wait until the record with id rid is in the file; returns it (Failure on timeout)."""
    end = time.monotonic() + timeout
    while True:
        for r in read_records(path):
            if r.get("id") == rid:
                return r
        if time.monotonic() > end:
            raise Failure("no record with id %s in %s after %.1fs" % (rid, path, timeout))
        time.sleep(0.05)


def record_files(root=None):
    """Every transfer record file under root (default: this test file's temp dir)."""
    out = []
    for d, _, files in os.walk(root or tmpdir()):
        out += [os.path.join(d, f) for f in files if ".jsonl" in f]
    return sorted(out)


# Record fields that hold network addresses by design (the calling service, the vendor's
# server): the ip_address detector fires on them, and they are not a data subject's value.
RECORD_ADDRESS_FIELDS = ("caller", "dest_ip")


def scan_records(records, exempt=RECORD_ADDRESS_FIELDS, batch=2000):
    """Feed records to `bordergate scan --content-type application/json` (as JSON arrays of
    up to `batch` records) and return every finding (dicts as printed) except ip_address on
    the `exempt` top-level fields. An unscannable batch is returned as a finding too."""
    found = []
    for i in range(0, len(records), batch):
        chunk = records[i:i + batch]
        body = json.dumps(chunk, separators=(",", ":"))
        r = run([BINARY, "scan", "-", "--content-type", "application/json",
                 "--max-body-scan", str(len(body) + 1024)], input=body, timeout=120)
        if r.returncode != 0:
            raise Failure("bordergate scan failed (%d): %s" % (r.returncode, r.stderr[-500:]))
        for line in r.stdout.splitlines():
            if not line.strip():
                continue
            f = json.loads(line)
            if f.get("summary"):
                if f.get("unscannable"):
                    found.append(f)
                continue
            p = f.get("path", "")
            field = p.split("]", 1)[1].lstrip(".") if p.startswith("$[") and "]" in p else p
            if f.get("detector") == "ip_address" and field in exempt:
                continue
            f["record"] = chunk[int(p[2:p.index("]")])] if p.startswith("$[") else None
            found.append(f)
    return found


def http_post(port, path, body=b"", host="127.0.0.1", headers=None, timeout=10):
    """A plain POST with http.client; returns (status, headers dict lowercased, body)."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("POST", path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def samples(text, name):
    """{frozenset(labels.items()): value} for every sample of `name` in a /metrics text (label
    values may hold commas: a label ends at '",')."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        head, _, val = line.rpartition(" ")
        lname, _, lab = head.partition("{")
        if lname != name:
            continue
        labels = {}
        for part in lab.rstrip("}").split('",'):
            if "=" in part:
                k, v = part.split("=", 1)
                labels[k.strip()] = v.strip().strip('"')
        out[frozenset(labels.items())] = float(val)
    return out


def metric(admin_port, name, labels=None):
    """The value of one sample from the admin listener's /metrics (labels: a dict that must be a
    subset of the sample's labels; the first match wins), or None when absent."""
    st, _, body = http_get(admin_port, "/metrics")
    if st != 200:
        raise Failure("/metrics answered %d" % st)
    for have, val in samples(body.decode(), name).items():
        have = dict(have)
        if all(have.get(k) == str(v) for k, v in (labels or {}).items()):
            return val
    return None


def wait_until(fn, timeout=5.0, interval=0.05, msg="condition"):
    """Poll fn() until it returns a truthy value; returns it (Failure on timeout)."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise Failure("%s not reached within %.1fs" % (msg, timeout))
        time.sleep(interval)
