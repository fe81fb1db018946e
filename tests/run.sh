#!/bin/sh
# Runs every unit test binary and every integration test, then prints one line
# "N passed, N failed" (the sum of each suite's own last line) and exits non-zero on any failure.
BUILD=${BUILD:-build}
total_p=0; total_f=0
run_suite() { # name, command...
  name=$1; shift
  out=$("$@" 2>&1); rc=$?
  last=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
  if [ -z "$last" ]; then
    printf '%s\n' "$out" | tail -20
    echo "$name: no result line (exit $rc)"; total_f=$((total_f + 1)); return
  fi
  p=${last%% passed*}; f=${last#*, }; f=${f%% failed*}
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
  [ "$f" != 0 ] && printf '%s\n' "$out" | grep -vE '^[0-9]+ passed' | tail -40
  echo "$name: $p passed, $f failed"
  total_p=$((total_p + p)); total_f=$((total_f + f))
}
for t in "$BUILD"/tests/unit/*; do
  [ -x "$t" ] && run_suite "unit/$(basename "$t")" "$t"
done
for t in tests/integration/test_*.py; do
  [ -f "$t" ] && run_suite "integration/$(basename "$t" .py)" env BG_BUILD="$BUILD" python3 "$t"
done
echo "$total_p passed, $total_f failed"
[ "$total_f" = 0 ]
