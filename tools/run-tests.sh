#!/bin/sh
# Runs every test binary in the given build directories and the structural
# checks, then prints the line CI reads: "N passed, N failed".
# Each test binary ends with "RESULT passed failed"; a binary that crashes or
# prints no RESULT counts as one failure.
cd "$(dirname "$0")/.." || exit 2
passed=0
failed=0
log=$(mktemp)
for dir in "$@"; do
  for t in "$dir"/tests/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.d) continue ;; esac
    start=$(date +%s%N)
    "$t" >"$log" 2>&1
    rc=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    res=$(grep '^RESULT ' "$log" | tail -1)
    if [ -n "$res" ]; then
      p=$(echo "$res" | cut -d' ' -f2)
      f=$(echo "$res" | cut -d' ' -f3)
    else
      p=0
      f=0
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
      echo "FAIL $t (exit $rc)"
      grep -v '^ok ' "$log" | tail -40
    else
      printf 'ok   %-40s %4s checks %7s ms\n' "$t" "$p" "$ms"
    fi
  done
done
for check in check-layers; do
  if tools/$check.sh >"$log" 2>&1; then
    passed=$((passed + 1)); echo "ok   $check"
  else
    failed=$((failed + 1)); echo "FAIL $check"; cat "$log"
  fi
done
if [ -x tools/fuzz-smoke.sh ]; then
  if tools/fuzz-smoke.sh >"$log" 2>&1; then
    passed=$((passed + 1)); echo "ok   fuzz-smoke"
  else
    failed=$((failed + 1)); echo "FAIL fuzz-smoke"; tail -40 "$log"
  fi
fi
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
