#!/bin/sh
# Builds every libFuzzer target fuzz/fuzz_X.c with clang (ASan+UBSan) under
# build/fuzz/ and runs each for a short while from its seed corpus
# fuzz/corpus/X/. Fails on any crash, leak, sanitizer report or build error.
# FUZZ_SECONDS (default 45) is the total time, shared between the targets
# (at least 5 s each). New inputs go to build/fuzz/corpus/X/, crashes to
# build/fuzz/artifacts/; the committed corpus is only read.
# Usage: tools/fuzz-smoke.sh [X ...]   (default: all targets)
cd "$(dirname "$0")/.." || exit 2
if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz-smoke: clang not found (scripts/deps.sh test installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi
if [ $# -gt 0 ]; then
  names="$*"
else
  names=$(for f in fuzz/fuzz_*.c; do [ -e "$f" ] && basename "$f" .c | sed 's/^fuzz_//'; done)
fi
[ -n "$names" ] || { echo "fuzz-smoke: no fuzz/fuzz_*.c targets"; exit 0; }
targets=""
for n in $names; do targets="$targets build/fuzz/fuzz_$n"; done
jobs=$(nproc 2>/dev/null || echo 1)
[ "$jobs" -gt 2 ] && jobs=2
# Library objects: keep going past files clang cannot compile (reported),
# then link the targets against the ones that did.
make --no-print-directory -s -k -j"$jobs" -f fuzz/fuzz.mk objs >build/fuzz-objs.log 2>&1 ||
  echo "fuzz-smoke: warning: some library files did not compile with clang (build/fuzz-objs.log)"
ok_objs=""
for src in src/*/*.c; do
  case "$src" in src/cli/*) continue ;; esac
  obj="build/fuzz/${src%.c}.o"
  [ -f "$obj" ] && [ "$obj" -nt "$src" ] && ok_objs="$ok_objs $obj"
done
if ! make --no-print-directory -s -j"$jobs" -f fuzz/fuzz.mk LIB_OBJ_OK="$ok_objs" $targets; then
  echo "fuzz-smoke: build failed" >&2
  exit 1
fi
count=$(echo $names | wc -w)
total=${FUZZ_SECONDS:-45}
each=$((total / count))
[ "$each" -lt 5 ] && each=5
fail=0
mkdir -p build/fuzz/artifacts
for n in $names; do
  mkdir -p "build/fuzz/corpus/$n" "fuzz/corpus/$n"
  log=build/fuzz/fuzz_$n.log
  if build/fuzz/fuzz_"$n" -max_total_time="$each" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="build/fuzz/artifacts/$n-" -print_final_stats=1 \
      "build/fuzz/corpus/$n" "fuzz/corpus/$n" >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    echo "ok   fuzz_$n: ${runs:-?} runs in ${each}s"
  else
    fail=1
    echo "FAIL fuzz_$n (log: $log; crash inputs in build/fuzz/artifacts/)"
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written|#[0-9]+ +0x' "$log" | head -30
  fi
done
exit $fail
