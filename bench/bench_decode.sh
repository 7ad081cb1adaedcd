#!/bin/bash
# LLM prefill / decode benchmark, every peer side by side in one run (not a
# test): vlens (BF16 Hub folder, BF16 and Q8_0 GGUF), llama.cpp's llama-bench
# (the same weights as GGUF BF16, F16 and Q8_0, --poll 0 and 50), PyTorch
# fp32 (bench/torch_decode.py), the copy bandwidth (bench_bandwidth, before
# and after) and peak RSS (/usr/bin/time). Ends with one table: tok/s, the
# bandwidth bound and the ratios docs/benchmarks.md reports.
#
#   bench/bench_decode.sh WORK_DIR [LLAMA_BENCH]
#
# WORK_DIR (outside the repository) receives the random-weight checkpoints
# (bench/make_qwen_checkpoint.py) and their GGUF files (tools/hf_to_gguf.py).
# LLAMA_BENCH: a llama-bench binary built by hand from a fetched llama.cpp
# snapshot (never part of this repository); skipped when not given. A
# snapshot older than Qwen3 (April 2025) cannot load qwen3 files, so the
# Qwen2.5-0.5B config is the one measured against llama.cpp.
#
# Environment: THREADS (2), PROMPT (512), GEN (64), REPS (llama-bench -r, 2),
# CONFIGS ("qwen3-0.6b qwen2.5-0.5b"), PREPARE=1 (make the files, build, and
# stop: do this before any pause), TORCH=0 (skip PyTorch), TORCH_CONFIGS
# (qwen3-0.6b), LLAMA_TYPES ("q8_0 bf16"), LLAMA_GEN (GEN), LLAMA_TIMEOUT
# (75 s per llama-bench call), QUICK=1 (decode only, short: a first look),
# PAUSE_PID (a process to SIGSTOP for the measurement and SIGCONT at exit,
# whatever happens; also after MAX_PAUSE seconds, default 600, by a watchdog),
# TABLE_ONLY=1 (print the table again from WORK_DIR/bench_decode.rows and
# .rows.bw, the raw figures of the last run), KV (vlens' KV cache, f32 or f16;
# default f32), ROUNDED=0 (skip the vlens rows with --activations rounded:
# decode products against x rounded to the weights' format, as llama.cpp),
# REPEAT (1): measure every vlens / llama.cpp row REPEAT times, interleaved
# (round r runs every peer once), and print the median of each figure — on a
# shared 2-core machine one run of a row varies by 10-20 %.
#
# Decode figures. "decode@P": tokens after the P-token prompt (what a user
# sees; the KV cache is read too). "decode@0": from an empty context, what
# llama-bench's tg test measures (vlens: a one-token prompt). vlens counts
# GEN - 1 forward steps (its first token comes from the prefill logits).
# bound = copy bandwidth (bytes read per s, best of the runs in this
# invocation) / weight bytes read per token (all layer matrices + lm_head).
set -u
W=${1:?usage: bench/bench_decode.sh WORK_DIR [LLAMA_BENCH]}
LB=${2:-}
T=${THREADS:-2}
P=${PROMPT:-512}
N=${GEN:-64}
R=${REPS:-2}
CONFIGS=${CONFIGS:-qwen3-0.6b qwen2.5-0.5b}
PY=/usr/bin/python3
KV=${KV:-f32}
cd "$(dirname "$0")/.."
make -s VARIANT=rel cli build/rel/bench/bench_bandwidth >/dev/null || exit 1
mkdir -p "$W"
for cfg in $CONFIGS; do
  [ -f "$W/$cfg/model.safetensors" ] || $PY bench/make_qwen_checkpoint.py "$W/$cfg" --config $cfg
  for ty in bf16 f16 q8_0; do
    [ -f "$W/$cfg-$ty.gguf" ] || $PY tools/hf_to_gguf.py "$W/$cfg" "$W/$cfg-$ty.gguf" --type $ty
  done
done
[ "${PREPARE:-0}" = 1 ] && exit 0

OUT=$W/bench_decode.rows # kept: TABLE_ONLY=1 prints the table again from it
row() { echo "$*" >>"$OUT"; } # cfg|label|format|prefill|decode@P|decode@0|rss_mib|note
load() { echo "== $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg), $*"; }
bw() {
  local o
  o=$(build/rel/bench/bench_bandwidth "$T" 512)
  echo "$o"
  echo "$o" | awk '{for (i = 1; i <= NF; i++) if ($i == "GB/s") {print $(i - 1); exit}}' >>"$OUT.bw"
}
# Weight bytes read per decoded token: the layer matrices and the lm_head
# (tied to the embedding in both configs), from config.json.
weights_gb() { # cfg bytes_per_param
  $PY -c '
import json, sys
c = json.load(open(sys.argv[1] + "/config.json"))
C, F, L, V = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
H, KV = c["num_attention_heads"], c["num_key_value_heads"]
D = c.get("head_dim") or C // H
n = L * (C * (H * D + 2 * KV * D) + H * D * C + 3 * C * F) + V * C
print("%.6f %.9f" % (n * float(sys.argv[2]) / 1e9, L * 2 * KV * D / 1e9))' "$W/$1" "$2"
}

# vlens generate: prints "prefill_tok/s decode_tok/s rss_mib cpu%"
vlens_run() { # model prompt_len activations
  local ids
  ids=$(seq 1000 $((1000 + $2 - 1)) | tr '\n' ' ')
  /usr/bin/time -f "TIME %M %P" env VLENS_THREADS=$T build/rel/vlens generate -m "$1" --ids \
    -p "$ids" -n "$N" --ignore-eos --kv-cache "$KV" --activations "$3" 2>&1 >/dev/null |
    awk '/generate: prefill/ {for (i = 1; i <= NF; i++) {
           if ($i == "prefill") pn = $(i + 1); if ($i == "decode") dn = $(i + 1)
           if ($i == "in" && !ps) ps = $(i + 1); else if ($i == "in") ds = $(i + 1)}}
         /^TIME/ {rss = $2 / 1024; pc = $3}
         END {printf "%.1f %.2f %.0f %s\n", pn / ps, (dn - 1) / ds, rss, pc}'
}

vlens_rows() { # cfg label model format [activations]
  local a b act=${5:-exact}
  if [ "${QUICK:-0}" = 1 ]; then a="- - - -"; else a=$(vlens_run "$3" "$P" "$act"); fi
  b=$(vlens_run "$3" 1 "$act")
  echo "$2 $4: prefill, decode@$P, rss, cpu = $a; decode@0, rss, cpu = $(echo "$b" | cut -d' ' -f2-)"
  read -r pre dP rss cpu <<<"$a"
  read -r _ d0 rss0 cpu0 <<<"$b"
  [ "$rss" = - ] && rss=$rss0
  row "$1|$2|$4|$pre|$dP|$d0|$rss|cpu $cpu / $cpu0"
}

torch_rows() { # cfg
  [ "${TORCH:-1}" = 0 ] || [ "${QUICK:-0}" = 1 ] && return
  local o
  o=$(/usr/bin/time -f "TIME %M %P" $PY bench/torch_decode.py "$W/$1" --threads "$T" \
    --prompt "$P" --gen "$N" 2>&1)
  echo "$o" | grep -v '^TIME'
  echo "$o" | awk -v c="$1" '/torch fp32/ {p = $4; d = $7} /^TIME/ {r = $2 / 1024; pc = $3}
    END {printf "%s|torch fp32|F32|%s|%s|-|%.0f|cpu %s\n", c, p, d, r, pc}' >>"$OUT"
}

# llama-bench, one invocation per (format, --poll, test) under a timeout
# (LLAMA_TIMEOUT s, default 75), so a collapse on a shared machine costs
# bounded time and leaves the other figures: prompt -p P, generation -n
# LLAMA_GEN (default GEN) from an empty context, REPS repetitions.
llama_one() { # gguf poll args... -> "tok/s+-sd rss_mib cpu%" or "timeout"
  local f=$1 poll=$2 o
  shift 2
  o=$(/usr/bin/time -f "TIME %M %P" timeout "${LLAMA_TIMEOUT:-75}" "$LB" -m "$f" -t "$T" \
    -r "$R" --poll "$poll" -o csv "$@" 2>&1)
  echo "$o" | awk -F, '
    function uq(s) { gsub(/"/, "", s); return s }
    /^build_commit/ {for (i = 1; i <= NF; i++) col[uq($i)] = i; next}
    /^"/ {ts = sprintf("%.2f+-%.2f", uq($col["avg_ts"]), uq($col["stddev_ts"]))}
    /^TIME/ {r = $0; sub(/^TIME /, "", r); split(r, a, " ")}
    END {if (ts == "") ts = "timeout"; printf "%s %.0f %s\n", ts, a[1] / 1024, a[2]}'
}

llama_rows() { # cfg
  [ -n "$LB" ] || return
  local ty poll pp tg
  for ty in $LLAMA_TYPES; do
    for poll in 0 50; do
      pp="- 0 -"
      [ "${QUICK:-0}" = 1 ] || pp=$(llama_one "$W/$1-$ty.gguf" $poll -p "$P" -n 0)
      tg=$(llama_one "$W/$1-$ty.gguf" $poll -p 0 -n "${LLAMA_GEN:-$N}")
      echo "llama.cpp $ty --poll $poll: pp$P, rss, cpu = $pp; tg${LLAMA_GEN:-$N}, rss, cpu = $tg"
      set -- "$1" $pp $tg
      row "$1|llama.cpp --poll $poll|$(echo $ty | tr a-z A-Z)|${2%+-*}|-|$5|$(($3 > $6 ? $3 : $6))|cpu $4 / $7"
    done
  done
}

if [ "${TABLE_ONLY:-0}" != 1 ]; then
rm -f "$OUT" "$OUT.bw"
if [ -n "${PAUSE_PID:-}" ]; then
  trap 'exit 1' INT TERM
  (sleep "${MAX_PAUSE:-600}" && kill -CONT "$PAUSE_PID" 2>/dev/null &&
    echo "== watchdog: resumed $PAUSE_PID at $(date -u +%T), MAX_PAUSE reached") &
  WATCHDOG=$!
  trap 'kill -CONT '"$PAUSE_PID"' 2>/dev/null; kill '"$WATCHDOG"' 2>/dev/null;
        echo "== resumed $PAUSE_PID at $(date -u +%T)"' EXIT
  kill -STOP "$PAUSE_PID" && echo "== paused $PAUSE_PID at $(date -u +%T)"
fi

echo "== $(date -u +%F) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $T threads," \
  "prompt $P, gen $N"
load "start"
bw
# Peers per config: llama.cpp only where the snapshot can load the
# architecture (not qwen3); PyTorch on the first config (TORCH_CONFIGS).
LLAMA_TYPES=${LLAMA_TYPES:-q8_0 bf16}
for rep in $(seq "${REPEAT:-1}"); do
[ "${REPEAT:-1}" = 1 ] || echo "== round $rep of $REPEAT"
for cfg in $CONFIGS; do
  load "$cfg"
  if [ "$cfg" = qwen3-0.6b ]; then
    vlens_rows "$cfg" "vlens" "$W/$cfg" BF16
  else
    vlens_rows "$cfg" "vlens GGUF" "$W/$cfg-bf16.gguf" BF16
  fi
  vlens_rows "$cfg" "vlens GGUF" "$W/$cfg-q8_0.gguf" Q8_0
  if [ "${ROUNDED:-1}" = 1 ]; then
    [ "$cfg" = qwen3-0.6b ] && m="$W/$cfg" || m="$W/$cfg-bf16.gguf"
    vlens_rows "$cfg" "vlens rounded" "$m" BF16 rounded
    vlens_rows "$cfg" "vlens rounded" "$W/$cfg-q8_0.gguf" Q8_0 rounded
  fi
  [ "$cfg" = qwen3-0.6b ] || llama_rows "$cfg"
done
done
for cfg in ${TORCH_CONFIGS:-qwen3-0.6b}; do
  load "torch $cfg"
  torch_rows "$cfg"
done
load "end"
bw
fi
BW=$(sort -g "$OUT.bw" | tail -1)

echo
echo "copy bandwidth (bytes read), best of this run: $BW GB/s ($(tr '\n' ' ' <"$OUT.bw"))"
echo "bound = $BW GB/s / weight bytes per token; KV cache $KV for vlens, (P + GEN) positions"
echo
echo "| config | peer | format | weights GB | bound tok/s | prefill tok/s | decode@$P tok/s | decode@0 tok/s | decode@$P / bound | decode@0 / bound | peak RSS MiB | RSS / (weights + KV) | notes |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
# Rows measured several times (REPEAT): one line per cfg|peer|format with the
# median of each numeric field (first-seen order; the note of the first).
medians() {
  awk -F'|' '
    function med(list,   n, a, i, j, t) {
      n = split(list, a, " ")
      for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
        t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
      if (n == 0 || a[1] !~ /^[0-9]/) return a[1]
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { k = $1 "|" $2 "|" $3
      if (!(k in seen)) { seen[k] = 1; order[++n] = k; note[k] = $8 }
      for (f = 4; f <= 7; f++) { v = $f; sub(/\+-.*/, "", v); vals[k, f] = vals[k, f] " " v }
      runs[k]++ }
    END { for (i = 1; i <= n; i++) { k = order[i]
            printf "%s|%s|%s|%s|%s|%s%s\n", k, med(vals[k, 4]), med(vals[k, 5]), med(vals[k, 6]),
              med(vals[k, 7]), note[k], (runs[k] > 1 ? ", median of " runs[k] : "") } }' "$OUT"
}
while IFS='|' read -r cfg peer fmt pre dP d0 rss note; do
  case $fmt in BF16 | F16) bpp=2 ;; Q8_0) bpp=1.0625 ;; *) bpp=4 ;; esac
  read -r wgb kvpp < <(weights_gb "$cfg" $bpp)
  awk -v c="$cfg" -v p="$peer" -v f="$fmt" -v w="$wgb" -v kv="$kvpp" -v bw="$BW" -v pre="$pre" \
    -v dP="$dP" -v d0="$d0" -v rss="$rss" -v note="$note" -v pos=$((P + N)) -v kvb=$([ "$KV" = f16 ] && echo 2 || echo 4) 'BEGIN {
      b = bw / w
      rP = dP !~ /^[0-9]/ ? "-" : sprintf("%.2f", dP / b)
      r0 = d0 !~ /^[0-9]/ ? "-" : sprintf("%.2f", d0 / b)
      kvgb = kv * (p ~ /llama/ ? 2 : kvb) * pos   # llama.cpp keeps F16 keys/values
      printf "| %s | %s | %s | %.3f | %.1f | %s | %s | %s | %s | %s | %s | %.2f | %s |\n",
        c, p, f, w, b, pre, dP, d0, rP, r0, rss, rss * 1048576 / 1e9 / (w + kvgb), note}'
done < <(medians)
load "done"
