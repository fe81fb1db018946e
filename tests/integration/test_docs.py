#!/usr/bin/env python3
"""test_docs.py -- the README and the shipped files say what the gateway does.

- The configuration table names exactly the keys the parser accepts: the key lists in
  src/config.c (every `static const char *const ...keys[]`, mapped to its place in the config)
  against the table's keys and `{...}` sub-keys, both ways; and `bordergate check` on a config
  that holds every key of the table reports none of them as unknown (a sentinel key in each
  mapping proves that mapping's keys were looked at).
- config/bordergate.yaml and config/demo.yaml pass `bordergate check` where they are meant to
  run (the project root after `make run`; the demo's directory), and the default config
  writes out every `records.*` key, records.queue_size included.
- The /metrics list names exactly the families a running gateway exposes after traffic of
  every kind the list's labels need (allow, block, 403, 502, 429), with the labels it exposes;
  the exposition passes `promtool check metrics`; every metric the Grafana dashboard queries
  exists, and every label it groups by belongs to the metrics of that query.
- The command table names the commands `bordergate help` lists, every long flag of a
  command's usage and only those; the global usage line is the binary's.
Ends with "N passed, N failed".
"""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, eq, test  # noqa: E402

README = os.path.join(h.ROOT, "README.md")
CONFIG_C = os.path.join(h.ROOT, "src", "config.c")
DASHBOARD = os.path.join(h.ROOT, "config", "grafana", "bordergate.json")

# Where each key list of src/config.c sits in the config: (function, array) -> path prefix.
KEY_LISTS = {
    ("load", "top_keys"): "",
    ("parse_listen", "keys"): "listen[].",
    ("parse_listen", "tls_keys"): "listen[].tls.",
    ("parse_admin", "keys"): "admin.",
    ("parse_limits", "keys"): "limits.",
    ("parse_geoip", "keys"): "geoip.",
    ("parse_geoip", "okeys"): "geoip.overrides[].",
    ("parse_classification", "keys"): "classification.",
    ("parse_classification", "ckeys"): "classification.custom[].",
    ("parse_encryption", "keys"): "encryption.",
    ("parse_records", "keys"): "records.",
    ("parse_metrics", "keys"): "metrics.",
    ("parse_vendor", "keys"): "vendors[].",
    ("parse_vendor", "ekeys"): "vendors[].entity.",
    ("parse_upstream", "keys"): "vendors[].upstream.",
    ("parse_scc", "keys"): "vendors[].scc.",
    ("parse_dpf", "keys"): "vendors[].dpf.",
}
# Key lists of the regions file (config/regions.yaml, described in prose, not in the table).
REGIONS_FILE_LISTS = {("parse_region", "keys"), ("parse_adequacy", "keys"), ("load_regions", "keys")}


def readme_section(title):
    text = open(README).read()
    m = re.search(r"^## %s\n(.*?)(?=^## )" % re.escape(title), text, re.M | re.S)
    check(m, "README has no section '## %s'" % title)
    return m.group(1)


def table_rows(section):
    """The cells of each table row of a README section whose first cell starts with a backtick."""
    for line in section.splitlines():
        if line.startswith("| `"):
            yield [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def with_parents(paths):
    """paths plus every mapping or list they sit in ('listen[].tls.key' -> 'listen', 'listen[].tls')."""
    out = set()
    for p in paths:
        p = p[:-2] if p.endswith("[]") else p
        out.add(p)
        parts = p.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            out.add(parent[:-2] if parent.endswith("[]") else parent)
    return out


def readme_config_leaves():
    """Every key the configuration table names, as written (`[]` marks a list of mappings): the
    first cell's keys (`.key` continues the key before it) and the `{a, b: ...}` sub-keys a
    meaning starts with."""
    keys = set()
    for cells in table_rows(readme_section("Configuration reference")):
        last = None
        for n in re.findall(r"`([^`]+)`", cells[0]):
            if n.startswith("."):
                n = last.rsplit(".", 1)[0] + n
            keys.add(n)
            last = n
        m = re.match(r"`\{([^}]*)\}`", cells[2])
        if m:
            for item in m.group(1).split(","):
                sub = re.match(r"\s*([a-z_]+)", item)
                check(sub, "README: cannot read sub-key %r of %s" % (item, last))
                keys.add(last + "." + sub.group(1))
    return keys


def readme_config_keys():
    return with_parents(readme_config_leaves())


def parser_config_keys():
    """Every key src/config.c's key lists accept, as a path. A key list this test does not know
    fails it: say in KEY_LISTS where it belongs."""
    src = open(CONFIG_C).read()
    keys, seen = set(), set()
    func = None
    funcs = [(m.start(), m.group(1)) for m in re.finditer(r"^\w[\w \*]*?\b(\w+)\([^;]*?\)\s*\{", src, re.M)]
    for m in re.finditer(r"static const char \*const (\w*keys)\[\] = \{(.*?)\};", src, re.S):
        func = [name for pos, name in funcs if pos < m.start()][-1]
        where = (func, m.group(1))
        seen.add(where)
        if where in REGIONS_FILE_LISTS:
            continue
        check(where in KEY_LISTS, "src/config.c: key list %s in %s() is not mapped in test_docs.py KEY_LISTS"
              % where[::-1])
        for k in re.findall(r'"([^"]+)"', m.group(2)):
            keys.add(KEY_LISTS[where] + k)
    missing = (set(KEY_LISTS) | REGIONS_FILE_LISTS) - seen
    check(not missing, "key lists gone from src/config.c: %s" % sorted(missing))
    return with_parents(keys)


@test
def readme_config_table_matches_the_parser_key_lists():
    readme, parser = readme_config_keys(), parser_config_keys()
    check(len(parser) > 80, "read only %d keys from src/config.c" % len(parser))
    eq(sorted(parser - readme), [], "keys the parser accepts that the README's table lacks")
    eq(sorted(readme - parser), [], "keys in the README's table that the parser's lists lack")


SENTINEL = "zz_docs_sentinel"


def config_from_paths(paths):
    """A config holding every path (leaves get a placeholder; lists hold one mapping) and
    sentinel keys. Returns (config, number of sentinels)."""
    root = {}
    maps = [root]

    def node(parent, name, is_list):
        if name not in parent:
            if is_list:
                parent[name] = [{}]
                maps.append(parent[name][0])
            else:
                parent[name] = {}
                maps.append(parent[name])
        return parent[name][0] if is_list else parent[name]

    for p in sorted(paths):
        parts = p.split(".")
        cur = root
        for i, part in enumerate(parts):
            is_list = part.endswith("[]")
            name = part[:-2] if is_list else part
            if i == len(parts) - 1 and not is_list and not any(q.startswith(p + ".") or q.startswith(p + "[].")
                                                                 for q in paths):
                cur.setdefault(name, "x")
            else:
                cur = node(cur, name, is_list)
    # The parser skips what is under a mapping with an unknown key, so a sentinel goes only into
    # the top level and the innermost mappings: one reported there shows that every mapping on
    # the way was read and its keys checked.
    inner = [m for m in maps if m is root or not any(isinstance(v, (dict, list)) for v in m.values())]
    for m in inner:
        m[SENTINEL] = "x"
    return root, len(inner)


@test
def bordergate_check_accepts_every_key_of_the_readme_table():
    paths = readme_config_leaves()
    cfg, nmaps = config_from_paths(paths)
    path = h.write_config(cfg, "every-key.yaml")
    r = h.run([h.BINARY, "check", "-c", path])
    out = r.stdout + r.stderr
    unknown = re.findall(r"unknown key '([^']+)' in ([^\n(]+)", out)
    eq(sorted("%s in %s" % (k, w.strip()) for k, w in unknown if k != SENTINEL), [],
       "README keys `bordergate check` does not know (key, where)")
    eq(len([k for k, _ in unknown if k == SENTINEL]), nmaps,
       "sentinels reported (each shows that the mappings around it were checked):\n%s" % out[-3000:])


def shipped_config_dir():
    """A directory laid out as the project root after `make run` (certs/, config/keys/) whose
    config files are the repository's own (symlinks), plus the demo's keys/ and records/."""
    d = os.path.join(h.tmpdir(), "shipped")
    if os.path.isdir(d):
        return d
    os.makedirs(os.path.join(d, "config"))
    for name in os.listdir(os.path.join(h.ROOT, "config")):
        if name != "keys":
            os.symlink(os.path.join(h.ROOT, "config", name), os.path.join(d, "config", name))
    os.symlink(h.certs(), os.path.join(d, "certs"))
    for kd in ("config/keys", "keys"):
        r = h.run(["sh", os.path.join(h.ROOT, "certs", "gen-key.sh"), os.path.join(d, kd), "k1"])
        eq(r.returncode, 0, "gen-key.sh: %s" % r.stderr)
    os.makedirs(os.path.join(d, "records"))
    return d


@test
def shipped_configs_pass_check():
    d = shipped_config_dir()
    for name in ("config/bordergate.yaml", "config/demo.yaml"):
        r = h.run([h.BINARY, "check", "-c", name], cwd=d)
        eq(r.returncode, 0, "check %s (stderr %r)" % (name, r.stderr))
        check(re.match(r"%s: OK " % re.escape(name), r.stdout), "check %s: %r" % (name, r.stdout))
        check(" error" not in r.stderr, "check %s: %r" % (name, r.stderr))


@test
def default_config_writes_out_every_records_key():
    text = open(os.path.join(h.ROOT, "config", "bordergate.yaml")).read()
    m = re.search(r"^records:\n((?:[ #].*\n|\n)*)", text, re.M)
    check(m, "config/bordergate.yaml has no records: section")
    have = set(re.findall(r"^  ([a-z_]+):", m.group(1), re.M))
    want = {k.split(".", 1)[1] for k in readme_config_keys() if k.startswith("records.")}
    eq(sorted(want - have), [], "records keys the default config leaves out")


# ---- /metrics ---------------------------------------------------------------------------------

def readme_metrics():
    """{family: (labels or None, kind or None)} from the README's /metrics list."""
    sec = readme_section("Transfer records and metrics")
    m = re.search(r"`/metrics` \(Prometheus text format.*?\):\n(.*?)Label\s+values\s+come\s+from", sec, re.S)
    check(m, "README: the /metrics list is not where it was")
    out = {}
    for name, labels, after in re.findall(r"`(bordergate_[a-z_]+)(?:\{([a-z_,]*)\})?`( \(histogram\))?", m.group(1)):
        out[name] = (tuple(labels.split(",")) if labels else (), "histogram" if after else None)
    return out


def exposition(text):
    """({family: type}, {family: set of label tuples}) from Prometheus text."""
    types, labels = {}, {}
    for line in text.splitlines():
        t = re.match(r"# TYPE (\S+) (\S+)", line)
        if t:
            types[t.group(1)] = t.group(2)
            continue
        if not line or line.startswith("#"):
            continue
        s = re.match(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? ", line)
        name = s.group(1)
        fam = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and types.get(name[:-len(suffix)]) == "histogram":
                fam = name[:-len(suffix)]
        keys = tuple(k for k in re.findall(r'(\w+)="', s.group(2) or "") if k != "le")
        labels.setdefault(fam, set()).add(keys)
    return types, labels


_scrape = {}


def scrape_after_traffic():
    """Start a gateway (one vendor with an SCC, for the expiry gauge), send an allowed, a blocked,
    an unknown-host, a failing-vendor and a rate-limited request, and return the /metrics text
    (once per run)."""
    if "text" in _scrape:
        return _scrape["text"]
    up = h.upstream()
    dead = h.free_port()  # nothing listens there: connect refused, 502
    us = h.us_vendor(h.vendor("docs-us", ["us.docs.test"], up.port, categories=["usage"], basis="none"))
    us["upstream"]["addresses"] = ["127.0.0.3"]
    scc = h.us_vendor(h.vendor("docs-scc", ["scc.docs.test"], up.port, scc={
        "module": 2, "reference": "DPA-1", "signed": "2024-01-01", "expires": "2099-01-01"}))
    cfg = h.gateway_config(
        [h.vendor("docs-eu", ["eu.docs.test"], up.port), us, h.vendor("docs-dead", ["dead.docs.test"], dead), scc],
        listen=[{"address": None}, {"address": None, "requests_per_second": 1, "request_burst": 1}])
    gw = h.Gateway(cfg).start()
    h.defer(gw.stop)
    hdr = {"Content-Type": "application/json"}
    body = b'{"email":"ann@example.com"}'
    eq(h.http_post(gw.port(), "/echo", body, headers=dict(hdr, Host="eu.docs.test"))[0], 200, "allowed")
    eq(h.http_post(gw.port(), "/echo", body, headers=dict(hdr, Host="us.docs.test"))[0], 451, "blocked")
    eq(h.http_get(gw.port(), "/", headers={"Host": "nobody.docs.test"})[0], 403, "unknown host")
    eq(h.http_get(gw.port(), "/", headers={"Host": "dead.docs.test"})[0], 502, "dead vendor")
    codes = [h.http_get(gw.port(1), "/", headers={"Host": "eu.docs.test"})[0] for _ in range(3)]
    check(429 in codes, "no 429 from a listener at 1 request/s: %s" % codes)
    st, _, text = h.http_get(gw.admin_port, "/metrics")
    eq(st, 200, "/metrics")
    _scrape["text"] = text.decode()
    return _scrape["text"]


# Families whose samples need traffic this test does not make (report-only mode, TLS vendors).
NO_SAMPLES_EXPECTED = {"bordergate_report_only_blocks_total", "bordergate_upstream_tls_handshakes_total"}


@test
def readme_metrics_list_matches_the_exposition():
    text = scrape_after_traffic()
    types, labels = exposition(text)
    readme = readme_metrics()
    eq(sorted(set(types) - set(readme)), [], "families /metrics exposes that the README's list lacks")
    eq(sorted(set(readme) - set(types)), [], "families in the README's list that /metrics lacks")
    for fam, (want, kind) in sorted(readme.items()):
        if kind:
            eq(types[fam], kind, "%s type" % fam)
        eq(types[fam], "counter" if fam.endswith("_total") else types[fam], "%s type" % fam)
        if fam not in labels:
            check(fam in NO_SAMPLES_EXPECTED, "%s has no sample after the test's traffic" % fam)
            continue
        eq(labels[fam], {want}, "%s labels (README vs /metrics)" % fam)


@test
def metrics_pass_promtool():
    promtool = shutil.which("promtool")
    check(promtool, "promtool is not installed (make deps installs prometheus)")
    r = subprocess.run([promtool, "check", "metrics"], input=scrape_after_traffic(), capture_output=True,
                       text=True, timeout=30)
    eq((r.returncode, r.stdout + r.stderr), (0, ""), "promtool check metrics")


def dashboard_queries(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("expr", "query", "definition") and isinstance(v, str):
                yield v
            elif isinstance(v, dict) and k == "query" and isinstance(v.get("query"), str):
                yield v["query"]
            else:
                yield from dashboard_queries(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from dashboard_queries(v)


def dashboard_problems(dashboard, types, labels):
    """What in a dashboard names a metric or label /metrics does not have."""
    problems = []
    label_names = {f: {k for tup in ls for k in tup} for f, ls in labels.items()}
    for q in set(dashboard_queries(dashboard)):
        fams = set()
        for name in re.findall(r"\bbordergate_\w+", q):
            fam = name
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and types.get(name[:-len(suffix)]) == "histogram":
                    fam = name[:-len(suffix)]
            if fam not in types:
                problems.append("%s (in %s)" % (name, q))
            fams.add(fam)
        have = set().union(*(label_names.get(f, set()) for f in fams)) | {"le", "instance", "job"}
        if not all(f in label_names for f in fams):
            continue  # a family without samples: its labels cannot be checked here
        for grp in re.findall(r"\bby \(([^)]*)\)", q):
            for lab in grp.split(","):
                if lab.strip() and lab.strip() not in have:
                    problems.append("label %s (in %s)" % (lab.strip(), q))
    return sorted(problems)


@test
def grafana_dashboard_queries_only_exposed_metrics():
    types, labels = exposition(scrape_after_traffic())
    dashboard = json.load(open(DASHBOARD))
    queries = list(dashboard_queries(dashboard))
    check(len(queries) > 20, "read only %d queries from the dashboard" % len(queries))
    eq(dashboard_problems(dashboard, types, labels), [], "metrics or labels the dashboard names that /metrics lacks")
    for fam in ("bordergate_records_refused_total", "bordergate_records_slots_used", "bordergate_records_slots"):
        check(any(re.search(r"\b%s\b" % fam, q) for q in queries), "the dashboard has no panel for %s" % fam)
    # and the check bites: a dashboard naming a metric that does not exist is caught
    bad = {"panels": [{"targets": [{"expr": "sum(rate(bordergate_no_such_total[5m]))"}]}]}
    eq(len(dashboard_problems(bad, types, labels)), 1, "a missing metric in a dashboard goes unnoticed")


# ---- command line -----------------------------------------------------------------------------

def readme_commands():
    """{command: (first cell, whole row)} of the README's command table."""
    out = {}
    for cells in table_rows(readme_section("Command line")):
        first = re.match(r"`([^`]*)`", cells[0]).group(1)
        if first.startswith("help"):
            continue
        words = first.split()
        cmd = " ".join(words[:2]) if words[0] == "records" else words[0]
        out[cmd] = (first, " ".join(cells))
    return out


@test
def readme_command_table_matches_the_help():
    r = h.run([h.BINARY, "--help"])
    eq(r.returncode, 0, "--help exit")
    usage = r.stdout.splitlines()[0]
    sec = readme_section("Command line")
    m = re.search(r"```\n(bordergate \[.*)\n```", sec)
    check(m, "README: no global usage line")
    eq(m.group(1), usage[len("usage: "):], "global usage line (README vs --help)")
    listed = set()
    for line in r.stdout.splitlines():
        mm = re.match(r"  (records \w+|[a-z]+) ", line)
        if mm and mm.group(1) != "help":
            listed.add(mm.group(1))
    readme = readme_commands()
    eq(sorted(readme), sorted(listed), "commands (README table vs bordergate --help)")
    for cmd, (first, row) in sorted(readme.items()):
        r = h.run([h.BINARY] + cmd.split() + ["-h"])
        eq(r.returncode, 0, "%s -h exit" % cmd)
        block = r.stdout.split("\n\n")[0]  # the usage lines
        helps = set(re.findall(r"--[a-z][a-z-]+", block))
        eq(sorted(helps - set(re.findall(r"--[a-z][a-z-]+", row))), [],
           "%s: flags of its usage the README's row lacks" % cmd)
        eq(sorted(set(re.findall(r"--[a-z][a-z-]+", first)) - helps), [],
           "%s: flags in the README's row its usage lacks" % cmd)


if __name__ == "__main__":
    h.main()
