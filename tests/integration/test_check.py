#!/usr/bin/env python3
"""test_check.py — `bordergate check` end to end: the real binary on real files.

Builds a temp directory holding the shared example config (tests/data/config/example.yaml),
the repository's regions file and dummy files for every path the configs name, then asserts
exit codes (0 valid, 1 invalid, 2 usage) and the exact FILE:LINE:COL messages.
Python 3 stdlib only. The binary is $BG_BUILD/bordergate (default build/).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BG_BUILD", "build")
BIN = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
BIN = os.path.join(BIN, "bordergate")

passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok", name)
    else:
        failed += 1
        print("FAIL", name, detail)


def run(args, cwd):
    p = subprocess.run([BIN] + args, cwd=cwd, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def touch(path, text="x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def setup(tmp):
    shutil.copy(os.path.join(ROOT, "tests/data/config/example.yaml"), os.path.join(tmp, "example.yaml"))
    shutil.copy(os.path.join(ROOT, "config/bordergate.yaml"), os.path.join(tmp, "default.yaml"))
    os.makedirs(os.path.join(tmp, "config"), exist_ok=True)
    shutil.copy(os.path.join(ROOT, "config/regions.yaml"), os.path.join(tmp, "config/regions.yaml"))
    # Real files: check opens what run opens (certificates, keys, the GeoIP database).
    subprocess.run(["sh", os.path.join(ROOT, "certs/gen-certs.sh"), os.path.join(tmp, "certs")], check=True,
                   capture_output=True)
    subprocess.run(["sh", os.path.join(ROOT, "certs/gen-key.sh"), os.path.join(tmp, "config/keys"), "k1"],
                   check=True, capture_output=True)
    os.makedirs(os.path.join(tmp, "config/geoip"), exist_ok=True)
    shutil.copy(os.path.join(ROOT, "config/geoip/dbip-country-lite.mmdb"),
                os.path.join(tmp, "config/geoip/dbip-country-lite.mmdb"))


def write(tmp, name, text):
    with open(os.path.join(tmp, name), "w") as f:
        f.write(text)
    return name


def main():
    if not os.access(BIN, os.X_OK):
        print("no binary at", BIN)
        print("0 passed, 1 failed")
        return 1
    tmp = tempfile.mkdtemp(prefix="bg-check-")
    try:
        setup(tmp)
        ok_line = re.compile(r"^example\.yaml: OK \(2 listeners, 3 vendors, version [0-9a-f]{12}\u2026\)\n$")

        rc, out, err = run(["check", "-c", "example.yaml"], tmp)
        check("example: exit 0", rc == 0, f"rc={rc} err={err!r}")
        check("example: one OK line", ok_line.match(out) is not None, repr(out))
        # Warnings (the example's DPF date may have passed, the GeoIP database may be old) never fail
        # and are FILE:LINE:COL: warning: (FILE: warning: for a file-wide one).
        check("example: stderr only warnings",
              all(re.match(r"^example\.yaml:(\d+:\d+:)? warning: ", l) for l in err.splitlines()), repr(err))
        # The database age warning: 61 days old warns, 10 days old does not.
        mkmmdb = os.path.join(os.path.dirname(BIN), "tests", "tools", "mkmmdb")
        import time as _t
        for days, warned in ((61, True), (10, False)):
            db = os.path.join(tmp, "config/geoip/dbip-country-lite.mmdb")
            subprocess.run([mkmmdb, db, "--schema", "dbip", "--build-epoch", str(int(_t.time()) - days * 86400),
                            "127.0.0.2/32=DE"], check=True, capture_output=True)
            rc3, _, err3 = run(["check", "-c", "example.yaml"], tmp)
            got = re.search(r"^example\.yaml: warning: the GeoIP database .* is %d days old" % days, err3, re.M)
            check("example: GeoIP database %d days old %s" % (days, "warns" if warned else "does not warn"),
                  rc3 == 0 and (got is not None) == warned, repr(err3))

        rc2, out2, _ = run(["check", "--config", "example.yaml"], tmp)
        rc3, out3, _ = run(["check", "--config=example.yaml"], tmp)
        check("--config FILE and --config=FILE", rc2 == 0 and rc3 == 0 and out2 == out == out3, f"{rc2} {rc3}")

        rc, out, err = run(["check", "-c", "default.yaml"], tmp)
        check("default config: exit 0", rc == 0, f"rc={rc} err={err!r}")
        check("default config: 2 listeners, 6 vendors", "default.yaml: OK (2 listeners, 6 vendors, version" in out,
              repr(out))

        # Invalid configs: exit 1, every message FILE:LINE:COL.
        example = open(os.path.join(tmp, "example.yaml")).read()
        bad = write(tmp, "bad1.yaml", example.replace("vendors:\n", "vendorz:\n", 1))
        rc, out, err = run(["check", "-c", bad], tmp)
        check("unknown key: exit 1", rc == 1, f"rc={rc}")
        check("unknown key: message",
              "bad1.yaml:57:1: unknown key 'vendorz' in the top level (did you mean 'vendors'?)\n" in err, repr(err))
        check("invalid: nothing on stdout", out == "", repr(out))

        bad = write(tmp, "bad2.yaml", example.replace("country: DE }", "country: EL }", 1)
                    .replace("module: 2 ", "module: 7 ", 1)
                    .replace("regions: [EEA]", "regions: [EAA]", 1))
        rc, out, err = run(["check", "-c", bad], tmp)
        check("three problems: exit 1", rc == 1, f"rc={rc}")
        check("three problems: EL",
              "bad2.yaml:79:47: entity.country: 'EL' is not an ISO 3166-1 alpha-2 country code "
              "(did you mean GR (ISO code for Greece)?)\n" in err, repr(err))
        check("three problems: scc module",
              "bad2.yaml:72:15: vendor 'acme-analytics': scc module must be 1, 2, 3 or 4 (Decision 2021/914), "
              "got '7'\n" in err, repr(err))
        check("three problems: region did-you-mean",
              "bad2.yaml:82:15: vendor 'helpdesk-eu': unknown region 'EAA' (did you mean 'EEA'?)\n" in err,
              repr(err))
        check("three problems: summary", "bad2.yaml: invalid (3 errors)\n" in err, repr(err))

        bad = write(tmp, "bad3.yaml", "jurisdiction: EEA\nlisten: [\n")
        rc, out, err = run(["check", "-c", bad], tmp)
        check("syntax error: exit 1 with libyaml's position",
              rc == 1 and re.search(r"^bad3\.yaml:3:1: YAML syntax error: ", err, re.M) is not None, repr(err))

        os.rename(os.path.join(tmp, "certs/gateway.key"), os.path.join(tmp, "certs/gateway.key.off"))
        rc, out, err = run(["check", "-c", "example.yaml"], tmp)
        os.rename(os.path.join(tmp, "certs/gateway.key.off"), os.path.join(tmp, "certs/gateway.key"))
        check("missing key file: exit 1", rc == 1, f"rc={rc}")
        check("missing key file: message",
              "example.yaml:13:12: tls key: cannot read 'certs/gateway.key': No such file or directory\n" in err,
              repr(err))

        write(tmp, "empty.yaml", "")
        rc, out, err = run(["check", "-c", "empty.yaml"], tmp)
        check("empty file", rc == 1 and "empty.yaml:1:1: empty configuration" in err, repr(err))

        rc, out, err = run(["check", "-c", "nope.yaml"], tmp)
        check("missing config: exit 1", rc == 1 and "nope.yaml: cannot read: No such file or directory" in err,
              repr(err))

        # Usage errors: exit 2.
        rc, out, err = run(["check", "--bogus"], tmp)
        check("unknown flag: exit 2", rc == 2 and "unknown flag '--bogus'" in err, f"rc={rc} {err!r}")
        rc, out, err = run(["check"], tmp)
        check("no -c: exit 2", rc == 2, f"rc={rc}")
        rc, out, err = run(["check", "-c"], tmp)
        check("-c without FILE: exit 2", rc == 2, f"rc={rc}")
        rc, out, err = run(["check", "-h"], tmp)
        check("-h: exit 0 and usage", rc == 0 and out.startswith("usage: bordergate check -c FILE"), repr(out))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
