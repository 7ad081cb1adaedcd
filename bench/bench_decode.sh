#!/bin/bash
# Decode / prefill benchmark, side by side in one run (not a test):
#   vlens (BF16 Hub folder, Q8_0 GGUF), llama.cpp's llama-bench (same weights
#   as GGUF BF16 and Q8_0), PyTorch fp32 (bench/torch_decode.py), the copy
#   bandwidth (bench/bench_bandwidth.c) and peak RSS (/usr/bin/time -v).
#
#   bench/bench_decode.sh WORK_DIR [LLAMA_BENCH]
#
# WORK_DIR (outside the repository) receives the random-weight checkpoints
# (bench/make_qwen_checkpoint.py) and their GGUF files (tools/hf_to_gguf.py).
# LLAMA_BENCH: a llama-bench binary built by hand from a fetched llama.cpp
# snapshot (never part of this repository); skipped when not given. A
# snapshot that predates Qwen3 cannot load qwen3 files, so the Qwen2.5-0.5B
# config is benchmarked too. THREADS (default 2), PROMPT (512), GEN (64).
set -u
W=${1:?usage: bench/bench_decode.sh WORK_DIR [LLAMA_BENCH]}
LB=${2:-}
T=${THREADS:-2}
P=${PROMPT:-512}
N=${GEN:-64}
PY=/usr/bin/python3
cd "$(dirname "$0")/.."
make -s VARIANT=rel cli build/rel/bench/bench_bandwidth >/dev/null || exit 1
mkdir -p "$W"

for cfg in qwen3-0.6b qwen2.5-0.5b; do
  [ -f "$W/$cfg/model.safetensors" ] || $PY bench/make_qwen_checkpoint.py "$W/$cfg" --config $cfg
  for ty in bf16 q8_0; do
    [ -f "$W/$cfg-$ty.gguf" ] || $PY tools/hf_to_gguf.py "$W/$cfg" "$W/$cfg-$ty.gguf" --type $ty
  done
done

echo "== $(date -u +%F) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $T threads"
build/rel/bench/bench_bandwidth "$T" 1024
IDS=$(seq 1000 $((1000 + P - 1)) | tr '\n' ' ')

run_vlens() { # label model
  /usr/bin/time -v env VLENS_THREADS=$T build/rel/vlens generate -m "$2" --ids -p "$IDS" -n "$N" \
    --ignore-eos 2>&1 >/dev/null |
    awk -v l="$1" '/prefill/ {for (i = 1; i <= NF; i++) if ($i == "tok/s),") { v[++k] = $(i - 1) }}
      /Maximum resident/ {rss = $6} /User time/ {cpu += $4} /System time/ {cpu += $4}
      /Percent of CPU/ {pc = $7}
      END {gsub(/\(/, "", v[1]); gsub(/\(/, "", v[2]);
           printf "%-34s prefill %8s tok/s  decode %7s tok/s  peak RSS %6.0f MiB  cpu %.1f s (%s)\n", l, v[1], v[2], rss / 1024, cpu, pc}'
}

# CPU seconds per decoded token: the difference of two runs (16-token prompt,
# 8 and 72 new tokens) divided by 64, so loading and prefill cancel. On a
# shared machine this leaves out time spent descheduled (not time stalled on
# memory that other processes also use); tok/s = threads / (cpu per token)
# assumes every thread busy, so for T > 1 it is an upper bound.
cpu_of() { # model n
  /usr/bin/time -f "%U %S" env VLENS_THREADS=$T build/rel/vlens generate -m "$1" --ids \
    -p "$(seq 1000 1015 | tr '\n' ' ')" -n "$2" --ignore-eos 2>&1 >/dev/null | tail -1 |
    awk '{print $1 + $2}'
}
cpu_per_token() { # label model
  a=$(cpu_of "$2" 8) b=$(cpu_of "$2" 72)
  awk -v l="$1" -v a="$a" -v b="$b" -v t="$T" 'BEGIN {c = (b - a) / 64;
    printf "%-34s decode cpu %.1f ms/token -> %.1f tok/s at %d busy threads\n", l, c * 1e3, t / c, t}'
}

for cfg in qwen3-0.6b qwen2.5-0.5b; do
  echo "-- $cfg"
  cpu_per_token "vlens $cfg BF16 (Hub folder)" "$W/$cfg"
  cpu_per_token "vlens $cfg Q8_0 (GGUF)" "$W/$cfg-q8_0.gguf"
  run_vlens "vlens $cfg BF16 (Hub folder)" "$W/$cfg"
  run_vlens "vlens $cfg Q8_0 (GGUF)" "$W/$cfg-q8_0.gguf"
  run_vlens "vlens $cfg BF16 (GGUF)" "$W/$cfg-bf16.gguf"
  if [ -n "$LB" ]; then
    for ty in bf16 q8_0; do
      echo "llama-bench $cfg $ty:"
      "$LB" -m "$W/$cfg-$ty.gguf" -p "$P" -n "$N" -t "$T" -r 2 2>&1 | grep -E '^\|' | tail -2 ||
        echo "  (llama-bench failed on $cfg $ty)"
    done
  fi
  /usr/bin/time -v $PY bench/torch_decode.py "$W/$cfg" --threads "$T" --prompt "$P" --gen "$N" 2>&1 |
    awk '/torch fp32/ {print "torch fp32 " $0} /Maximum resident/ {printf "  torch peak RSS %.0f MiB\n", $6 / 1024}'
done
