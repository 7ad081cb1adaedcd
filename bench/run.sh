#!/bin/sh
# Runs the benchmarks side by side in one go and prints the ratios that
# docs/benchmarks.md reports:
#   1. bench_matmul: GEMM GFLOP/s per kernel (ours vs OpenBLAS), 1 and 2 threads;
#      the best F32 figure per thread count is the "roofline".
#   2. ViT-B/16 forward and forward+backward: C (bench_vit) vs PyTorch fp32
#      (bench/vit_torch.py, Debian's /usr/bin/python3), same thread count,
#      run alternately REPS times each; best-of kept.
# Usage: bench/run.sh [threads...]   (default: 1 2). Env: REPS (default 3),
# LAYERS (default 12), QUICK=1 for a short matmul sweep.
set -eu
cd "$(dirname "$0")/.."
THREADS=${*:-1 2}
REPS=${REPS:-3}
LAYERS=${LAYERS:-12}
make --no-print-directory VARIANT=rel benches >/dev/null
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}"
tlist=$(echo "$THREADS" | tr ' ' ',')
mm=$(mktemp)
build/rel/bench/bench_matmul ${QUICK:+--quick} --threads "$tlist" | tee "$mm"
for t in $THREADS; do
  roof=$(grep "^roofline threads=$t " "$mm")
  c=$(build/rel/bench/bench_vit --threads "$t" --reps "$REPS" --layers "$LAYERS")
  p=$(/usr/bin/python3 bench/vit_torch.py --threads "$t" --reps "$REPS" --layers "$LAYERS")
  echo "$c"
  echo "$p"
  # Wall-clock ratios, and the same from process CPU time (divided by the
  # thread count), which leaves out time descheduled on a shared machine.
  echo "$c|$p|$roof" | awk -F'|' -v t="$t" '
    function get(s, k,   a, i, n) { n = split(s, a, " "); for (i = 1; i <= n; i++) if (index(a[i], k "=") == 1) return substr(a[i], length(k) + 2); return "" }
    { gf = get($1, "fwd_gflop"); gb = get($1, "fwdbwd_gflop")
      for (m = 0; m < 2; m++) {
        sfx = m ? "_cpu_s" : "_s"; div = m ? t : 1
        roof = get($3, m ? "best_f32_gemm_cpu_gflops" : "best_f32_gemm_gflops")
        cf = get($1, "fwd" sfx) / div; cb = get($1, "fwdbwd" sfx) / div
        pf = get($2, "fwd" sfx) / div; pb = get($2, "fwdbwd" sfx) / div
        rf = gf / roof; rb = gb / roof
        printf("threads=%s %s: roofline (best gemm %.1f GFLOP/s) fwd %.3fs fwd+bwd %.3fs | C fwd %.3fs fwd+bwd %.3fs | torch fwd %.3fs fwd+bwd %.3fs\n",
               t, m ? "cpu " : "wall", roof, rf, rb, cf, cb, pf, pb)
        printf("threads=%s %s: C/roofline fwd %.2fx fwd+bwd %.2fx | C/torch fwd %.2fx fwd+bwd %.2fx | C GFLOP/s fwd %.1f fwd+bwd %.1f\n",
               t, m ? "cpu " : "wall", cf / rf, cb / rb, cf / pf, cb / pb, gf / cf, gb / cb) } }'
done
rm -f "$mm"
