/* Prefill products with BF16 weights: vl_gemm (weights widened to F32 while
 * packing, x exact) against vl_gemm_bf16_rounded (x rounded to BF16, AVX-512
 * BF16 dot products), Qwen2.5-0.5B's shapes for a 128-position chunk.
 * Prints GFLOP/s, best of R, per thread count.
 *
 * Usage: bench_gemm_bf16 [--threads 1,2] [--rows M] [--reps R] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/half.h"
#include "base/log.h"
#include "base/threads.h"
#include "tensor/gemm.h"
#include "tensor/gemm_bf16.h"

int main(int argc, char **argv) {
  int64_t M = 128;
  int reps = 5, tl[8] = {1, 2}, nt = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--rows")) {
      M = atoll(argv[i + 1]);
    } else if (!strcmp(argv[i], "--reps")) {
      reps = atoi(argv[i + 1]);
    } else if (!strcmp(argv[i], "--threads")) {
      nt = 0;
      for (char *p = argv[i + 1]; *p && nt < 8; p++) {
        tl[nt++] = (int)strtol(p, &p, 10);
        if (!*p) break;
      }
    }
  }
  if (M < 1 || reps < 1) return 2;
  if (!vl_gemm_bf16_rounded_available()) {
    printf("no AVX-512 BF16 on this CPU\n");
    return 0;
  }
  static const int64_t shapes[][2] = {{896, 896}, {4864, 896}, {896, 4864}}; /* N, K */
  for (int s = 0; s < 3; s++) {
    const int64_t N = shapes[s][0], K = shapes[s][1];
    float *X = malloc((size_t)(M * K) * 4), *C = malloc((size_t)(M * N) * 4);
    uint16_t *W = malloc((size_t)(N * K) * 2);
    if (!X || !C || !W) return 1;
    for (int64_t i = 0; i < M * K; i++)
      X[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (int64_t i = 0; i < N * K; i++)
      W[i] = vl_f32_to_bf16((float)((i * 104729) % 997) / 997.0f - 0.5f);
    for (int ti = 0; ti < nt; ti++) {
      vl_threads_set(tl[ti]);
      double best[2] = {1e30, 1e30};
      for (int r = 0; r < reps + 1; r++)
        for (int w = 0; w < 2; w++) {
          double t0 = vl_now_seconds();
          if (w == 0)
            vl_gemm(false, true, M, N, K, 1.0f, X, K, W, VL_BF16, K, 0.0f, C, N);
          else if (vl_gemm_bf16_rounded(M, N, K, X, K, W, K, 0.0f, C, N))
            return 1;
          double t = vl_now_seconds() - t0;
          if (r > 0 && t < best[w]) best[w] = t;
        }
      const double fl = 2.0 * (double)M * (double)N * (double)K;
      printf("M=%lld N=%lld K=%lld threads=%d: vl_gemm %.1f GFLOP/s, bf16 rounded %.1f GFLOP/s "
             "(%.2fx)\n",
             (long long)M, (long long)N, (long long)K, tl[ti], fl / best[0] * 1e-9,
             fl / best[1] * 1e-9, best[0] / best[1]);
    }
    free(X);
    free(C);
    free(W);
  }
  return 0;
}
