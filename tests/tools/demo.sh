#!/bin/sh
# demo.sh — `make demo`: bordergate end to end in under a minute, on loopback only, for a newcomer.
# Starts the gateway with config/demo.yaml (listener 127.0.0.1:18480, admin :18481) in a fresh
# temp dir (key from certs/gen-key.sh, records), three stand-in vendors (tests/integration/
# upstream.py on 127.0.0.2, .3, .4 port 18482, placed in DE, JP and US by geoip.overrides), sends
# six realistic requests with curl through the gateway and shows for each the decision and
# reason (its transfer record, found by X-Transfer-Id), what the vendor actually received, and
# the matching /metrics lines; then `bordergate explain` on one of them and `records verify`.
# Stops everything it started (trap). Exits non-zero if any step did not behave as announced.
# Env: BUILD (build dir, default build), BG_KEEP_TMP=1 keeps the temp dir.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) BIN=$BUILD/bordergate ;; *) BIN=$ROOT/$BUILD/bordergate ;; esac
GW=127.0.0.1:18480
ADMIN=127.0.0.1:18481
VPORT=18482

die() { echo "demo: $*" >&2; exit 1; }
[ -x "$BIN" ] || die "$BIN is not built (run make)"
for tool in curl python3 openssl; do
  command -v "$tool" >/dev/null 2>&1 || die "needs $tool (make deps)"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bordergate-demo.XXXXXX")
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  if [ -n "${BG_KEEP_TMP:-}" ]; then echo "demo: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Nothing may already listen where the demo wants to: curl exits 7 when nothing accepts.
for hp in 127.0.0.1:18480 127.0.0.1:18481 127.0.0.2:$VPORT 127.0.0.3:$VPORT 127.0.0.4:$VPORT; do
  rc=0
  curl -s -o /dev/null --max-time 1 "http://$hp/" 2>/dev/null || rc=$?
  [ "$rc" = 7 ] || die "$hp is in use: stop what listens there and retry"
done

# The gateway runs from the temp dir: config/ is the project's, keys/ and records/ are new.
ln -s "$ROOT/config" "$tmp/config"
sh "$ROOT/certs/gen-key.sh" "$tmp/keys" k1 2>/dev/null || die "certs/gen-key.sh failed"
(cd "$tmp" && "$BIN" check -c config/demo.yaml) >"$tmp/check.out" 2>&1 || {
  cat "$tmp/check.out" >&2
  die "config/demo.yaml is not valid"
}

echo "== starting three stand-in vendors and the gateway"
for v in de:127.0.0.2 jp:127.0.0.3 us:127.0.0.4; do
  : >"$tmp/vendor-${v%%:*}.jsonl"
  python3 "$ROOT/tests/integration/upstream.py" --host "${v#*:}" --port $VPORT --log "$tmp/vendor-${v%%:*}.jsonl" \
    >"$tmp/vendor-${v%%:*}.out" 2>&1 &
  pids="$pids $!"
done
(cd "$tmp" && exec "$BIN" run -c config/demo.yaml) >"$tmp/gateway.log" 2>&1 &
gwpid=$!
pids="$gwpid $pids"
# Ready: /healthz answers and each vendor said it listens (probing them would log a request).
i=0
until curl -fsS -o /dev/null "http://$ADMIN/healthz" 2>/dev/null &&
      [ "$(cat "$tmp"/vendor-*.out | grep -c 'listening on')" = 3 ]; do
  i=$((i + 1))
  if [ $i -gt 200 ] || ! kill -0 "$gwpid" 2>/dev/null; then
    tail -n 20 "$tmp/gateway.log" "$tmp"/vendor-*.out >&2
    die "the gateway or a vendor did not start"
  fi
  sleep 0.1
done
echo "   gateway  http://$GW (services use it as their HTTP proxy), admin http://$ADMIN/metrics"
echo "   vendors  127.0.0.2:$VPORT (DE)  127.0.0.3:$VPORT (JP)  127.0.0.4:$VPORT (US), placed by geoip.overrides"

n=0
: >"$tmp/steps.tsv"
EMAIL=anna.schmidt@example.de
CARD="4111 1111 1111 1111"

# step TITLE EXPECT_STATUS EXPECT_DECISION EXPECT_REASON VENDOR(de|jp|us) AT_VENDOR(clear|tokens|nothing)
#      VALUES(a|b) VENDOR_NAME -- curl args
# Sends one request through the gateway and saves what the report needs. The services here send
# no User-Agent: the classifier counts any User-Agent as device data.
step() {
  title=$1 es=$2 ed=$3 er=$4 vkey=$5 ev=$6 values=$7 vname=$8
  shift 9
  n=$((n + 1))
  echo "   $n. $title"
  cmd=$(printf 'curl -x http://%s' "$GW"; for a in "$@"; do printf " '%s'" "$a"; done)
  from=$(wc -l <"$tmp/vendor-$vkey.jsonl")
  st=$(curl -sS --max-time 10 -x "http://$GW" -H 'User-Agent:' -D "$tmp/h$n" -o "$tmp/b$n" -w '%{http_code}' "$@") ||
    st=000
  to=$(wc -l <"$tmp/vendor-$vkey.jsonl") # the vendor logs a request before it answers
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$title" "$cmd" "$es" "$ed" "$er" "$vkey" \
    "$ev" "$values" "$vname" "$from" "$to" "$st" >>"$tmp/steps.tsv"
}

echo
echo "== sending six requests through the gateway"
step "Analytics event with an email, to the DE vendor" 200 allow domestic de clear "$EMAIL" analytics-eu -- \
  -H 'Content-Type: application/json' \
  --data '{"event":"signup_completed","user_id":"u-48213","email":"'"$EMAIL"'","properties":{"plan":"pro"}}' \
  http://events.analytics-eu.demo/v1/track

step "AI prompt about a customer, to the JP vendor" 200 allow adequacy jp clear "$EMAIL" assistant-jp -- \
  -H 'Content-Type: application/json' \
  --data '{"model":"kotoba-1","messages":[{"role":"user","content":"Summarise the complaint from '"$EMAIL"' about order 1182 in two sentences."}]}' \
  http://api.assistant-jp.demo/v1/chat/completions

PAY='{"amount":4999,"currency":"EUR","card":{"number":"'"$CARD"'","exp":"12/29"},"receipt_email":"'"$EMAIL"'"}'
step "Card payment to a US vendor with no basis (DPF lapsed)" 451 block dpf_lapsed us nothing "" payments-us -- \
  -H 'Content-Type: application/json' --data "$PAY" http://api.payments-us.demo/v1/charges

step "The same payment to a US vendor with on_violation: encrypt" 200 encrypt dpf_lapsed us tokens "$CARD|$EMAIL" \
  tokenpay-us -- -H 'Content-Type: application/json' --data "$PAY" http://api.tokenpay-us.demo/v1/charges

step "Exchange rates, no personal data, to the no-basis US vendor" 200 allow no_personal_data us clear "" \
  payments-us -- 'http://api.payments-us.demo/v1/exchange-rates?base=EUR&symbols=USD,JPY'

step "New contact to a US CRM with signed SCCs (module 2)" 200 allow scc us clear "$EMAIL" crm-us -- \
  -H 'Content-Type: application/json' --data '{"email":"'"$EMAIL"'","lifecycle_stage":"lead"}' \
  http://api.crm-us.demo/v1/contacts

curl -fsS "http://$ADMIN/metrics" >"$tmp/metrics.txt" || die "GET /metrics failed"

# The report: every step from what was saved (one python start; python is slow to start on a
# loaded machine), each checked against what was announced. Records hold no values to print.
cat >"$tmp/report.py" <<'PYEOF'
import json, re, sys, time
tmp = sys.argv[1]
metrics = open(tmp + "/metrics.txt").read().splitlines()
steps = [l.rstrip("\n").split("\t") for l in open(tmp + "/steps.tsv")]
ids = {}
for st in steps:
    hdrs = open("%s/h%s" % (tmp, st[0]), "rb").read().decode("latin-1")
    ids[st[0]] = (re.findall(r"(?im)^x-transfer-id:\s*(\S+)", hdrs) or [""])[-1]
records = {}
end = time.monotonic() + 5
while True:  # fsync: always, but the writer is a thread: give it a moment
    records.clear()
    try:
        for line in open(tmp + "/records/transfers.jsonl"):
            r = json.loads(line)
            records[r["id"]] = r
    except FileNotFoundError:
        pass
    if {i for i in ids.values() if i} <= set(records) or time.monotonic() > end:
        break
    time.sleep(0.05)
results = open(tmp + "/results.txt", "w")
for n, title, cmd, es, ed, er, vkey, ev, values, vname, vfrom, vto, status in steps:
    bad = []
    def want(cond, msg):
        if not cond:
            bad.append(msg)
    print("\n== %s. %s" % (n, title))
    print("   $ " + cmd)
    status, tid = int(status), ids[n]
    rec = records.get(tid)
    want(status == int(es), "status %d, expected %s" % (status, es))
    want(rec is not None, "no transfer record with id %r" % tid)
    print("   client got   HTTP %d, X-Transfer-Id %s" % (status, tid or "-"))
    if rec:
        mech = rec.get("mechanism")
        if rec.get("scc_reference"):
            mech += " (SCC module %s, %s)" % (rec.get("scc_module"), rec.get("scc_reference"))
        print("   decision     %s   reason: %s   mechanism: %s" % (rec["decision"], rec["reason"], mech))
        print("   destination  %s (%s, region %s), categories: %s" % (rec.get("dest_ip"), rec.get("dest_country"),
              rec.get("dest_region"), ",".join(rec.get("categories") or []) or "none"))
        want(rec["decision"] == ed, "decision %s, expected %s" % (rec["decision"], ed))
        want(rec["reason"] == er, "reason %s, expected %s" % (rec["reason"], er))
    body = open("%s/b%s" % (tmp, n), "rb").read()
    if status == 451:
        p = json.loads(body)
        print("   451 problem  %s" % json.dumps(p))
        want(p.get("transfer_id") == tid, "the problem body names another transfer id")
    # What the vendor saw: the requests its log gained during this step.
    log = open("%s/vendor-%s.jsonl" % (tmp, vkey)).read().splitlines()
    got_all = [json.loads(l) for l in log[int(vfrom):int(vto)]]
    values = [x for x in values.split("|") if x]
    if ev == "nothing":
        print("   vendor got   nothing (the request never left the gateway)")
        want(not got_all, "the vendor received %d request(s)" % len(got_all))
    else:
        want(len(got_all) == 1, "the vendor received %d requests, expected 1" % len(got_all))
        for got in got_all[:1]:
            print("   vendor got   %s %s" % (got["method"], got["target"]))
            if got["body"]:
                print("                %s" % got["body"])
            seen = got["target"] + "\n" + "\n".join("%s: %s" % tuple(h) for h in got["headers"]) + "\n" + got["body"]
            if ev == "tokens":
                want("bgtok:v1:" in seen, "no bgtok:v1 token reached the vendor")
                for x in values:
                    want(x not in seen, "the vendor saw a value in clear")
                if got["body"]:
                    try:
                        json.loads(got["body"])
                    except ValueError:
                        bad.append("the sealed body is not valid JSON")
                # The test vendor echoes what it got; the gateway opened the tokens for the client.
                back = body.decode("utf-8", "replace")
                opened = all(x in back for x in values) and "bgtok:v1:" not in back
                print("   client got   the vendor's echo, tokens opened again (reveal_responses): %s"
                      % ("yes" if opened else "NO"))
                want(opened, "the response was not revealed")
            else:
                for x in values:
                    want(x in seen, "the vendor did not get the request as sent")
    if rec:
        print("   record       " + json.dumps(rec, indent=2).replace("\n", "\n                "))
    print("   metrics")
    pat = r'bordergate_(transfers|blocks)_total\{.*vendor="%s"' % re.escape(vname)
    ml = [m for m in metrics if re.match(pat, m)]
    for m in ml or ["(none)"]:
        print("     " + m)
    want(ml, "no /metrics line for vendor %s" % vname)
    for b in bad:
        print("   UNEXPECTED:  " + b)
    results.write("%s\t%s\t%s %s\n" % ("FAILED" if bad else "ok", title, ed, er))
results.close()
PYEOF
python3 "$tmp/report.py" "$tmp" || die "the step report failed"

fails=0
summary=""
tab=$(printf '\t')
while IFS="$tab" read -r ok title what; do
  [ "$ok" = ok ] || fails=$((fails + 1))
  summary="$summary$(printf '\n   %-7s %-60s %s' "$ok" "$title" "$what")"
done <"$tmp/results.txt"
if [ "$(wc -l <"$tmp/results.txt")" != "$n" ]; then
  fails=$((fails + 1))
  echo "demo: not every step was reported" >&2
fi

echo
echo "== $((n + 1)). The same decision without sending anything: bordergate explain"
printf '%s' "$PAY" >"$tmp/pay.json"
echo "   \$ bordergate explain -c config/demo.yaml --url http://api.payments-us.demo/v1/charges \\"
echo "       --content-type application/json --body pay.json"
if (cd "$tmp" && "$BIN" explain -c config/demo.yaml --url http://api.payments-us.demo/v1/charges \
      --content-type application/json --body pay.json) >"$tmp/explain.out" 2>"$tmp/explain.err" &&
   grep -q '^decision: *block' "$tmp/explain.out" && grep -q '^reason: *dpf_lapsed' "$tmp/explain.out"; then
  sed 's/^/   /' "$tmp/explain.out"
  summary="$summary$(printf '\n   %-7s %-60s %s' ok "explain agrees with the gateway" "block dpf_lapsed")"
else
  cat "$tmp/explain.out" "$tmp/explain.err" | sed 's/^/   /'
  echo "   UNEXPECTED:  explain did not say block / dpf_lapsed"
  fails=$((fails + 1))
  summary="$summary$(printf '\n   %-7s %s' FAILED "explain agrees with the gateway")"
fi

echo
echo "   \$ bordergate explain -c config/demo.yaml --address 127.0.0.3 --address 127.0.0.4"
if (cd "$tmp" && "$BIN" explain -c config/demo.yaml --address 127.0.0.3 --address 127.0.0.4) >"$tmp/where.out" 2>&1 &&
   grep -q '^127.0.0.3: country JP, region adequate' "$tmp/where.out" &&
   grep -q '^127.0.0.4: country US, region adequate (adequate, scope dpf)' "$tmp/where.out"; then
  sed 's/^/   /' "$tmp/where.out"
  summary="$summary$(printf '\n   %-7s %s' ok "explain --address: JP adequate, US adequate only under the DPF")"
else
  sed 's/^/   /' "$tmp/where.out"
  echo "   UNEXPECTED:  explain --address did not place 127.0.0.3 in JP and 127.0.0.4 in the US"
  fails=$((fails + 1))
  summary="$summary$(printf '\n   %-7s %s' FAILED "explain --address")"
fi

echo
echo "== $((n + 2)). The transfer records are hash-chained: bordergate records verify"
if (cd "$tmp" && "$BIN" records verify records/transfers.jsonl) >"$tmp/verify.out" 2>&1; then
  sed 's/^/   /' "$tmp/verify.out"
  summary="$summary$(printf '\n   %-7s %s' ok "records verify: chain intact")"
else
  sed 's/^/   /' "$tmp/verify.out"
  fails=$((fails + 1))
  summary="$summary$(printf '\n   %-7s %s' FAILED "records verify")"
fi

echo
echo "== stopping the gateway (SIGTERM: it drains and writes every record)"
kill "$gwpid" 2>/dev/null || true
rc=0
wait "$gwpid" 2>/dev/null || rc=$?
if [ "$rc" != 0 ]; then
  echo "   UNEXPECTED:  the gateway exited $rc"
  tail -5 "$tmp/gateway.log" | sed 's/^/   /'
  fails=$((fails + 1))
fi
echo
echo "== summary$summary"
if [ "$fails" != 0 ]; then
  echo "demo: $fails step(s) did not behave as announced" >&2
  exit 1
fi
echo "demo: every step behaved as announced"
