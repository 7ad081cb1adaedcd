/* Decode GEMV: y = W x with W far larger than the caches (default 151936 x
 * 1024, Qwen3-0.6B's lm_head), stored BF16 (vl_gemm, M = 1) or Q8_0
 * (vl_q8_0_gemv). Prints GB/s of weights read, from wall and from process
 * CPU time (bytes / (CPU s / threads): the rate if every thread were on a
 * core all the time), best of R, per thread count: the figure to put next to the copy
 * bandwidth of bench_bandwidth.
 *
 * Usage: bench_gemv [--threads 1,2] [--rows N] [--cols K] [--reps R] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/half.h"
#include "base/log.h"
#include "base/threads.h"
#include "tensor/gemm.h"
#include "tensor/quant.h"

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  int64_t N = 151936, K = 1024;
  int reps = 5, tl[8] = {1, 2}, nt = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--rows"))
      N = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "--cols"))
      K = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "--reps"))
      reps = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--threads")) {
      nt = 0;
      for (char *p = argv[i + 1]; *p && nt < 8; p++) {
        tl[nt++] = (int)strtol(p, &p, 10);
        if (!*p) break;
      }
    }
  }
  if (N < 1 || K < 32 || K % 32 || reps < 1) {
    fprintf(stderr, "usage: %s [--threads 1,2] [--rows N] [--cols K, multiple of 32] [--reps R]\n",
            argv[0]);
    return 2;
  }
  uint16_t *wb = malloc((size_t)(N * K) * 2);
  uint8_t *wq = malloc((size_t)N * (size_t)(K / 32) * 34);
  float *x = malloc((size_t)K * 4), *y = malloc((size_t)N * 4), *row = malloc((size_t)K * 4);
  if (!wb || !wq || !x || !y || !row) return 1;
  uint64_t s = 88172645463325252ULL;
  for (int64_t i = 0; i < N; i++) {
    for (int64_t k = 0; k < K; k++) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      row[k] = ((float)(s >> 40) / 16777216.0f - 0.5f) * 0.04f;
      wb[i * K + k] = vl_f32_to_bf16(row[k]);
    }
    vl_q8_0_quantize_row(row, wq + (size_t)i * (size_t)(K / 32) * 34, K);
  }
  for (int64_t k = 0; k < K; k++)
    x[k] = (float)(k % 7) - 3.0f;
  const double bytes[2] = {(double)N * (double)K * 2.0, (double)N * (double)(K / 32) * 34.0};
  const char *names[2] = {"bf16", "q8_0"};
  for (int ti = 0; ti < nt; ti++) {
    vl_threads_set(tl[ti]);
    for (int w = 0; w < 2; w++) {
      double best = 1e30, best_cpu = 1e30;
      for (int r = 0; r < reps + 1; r++) {
        double t0 = vl_now_seconds(), c0 = cpu_now();
        if (w == 0)
          vl_gemm(false, true, 1, N, K, 1.0f, x, K, wb, VL_BF16, K, 0.0f, y, N);
        else
          vl_q8_0_gemv(wq, N, K, x, 0.0f, y);
        double t1 = vl_now_seconds(), c1 = cpu_now();
        if (r == 0) continue; /* first pass: page faults */
        if (t1 - t0 < best) best = t1 - t0;
        if (c1 - c0 < best_cpu) best_cpu = c1 - c0;
      }
      printf("gemv %s %lldx%lld threads=%d kernel=%s weights_mb=%.0f ms=%.2f cpu_ms=%.2f "
             "gbps=%.2f cpu_gbps=%.2f y0=%.4f\n",
             names[w], (long long)N, (long long)K, tl[ti],
             vl_gemm_kernel_name(vl_gemm_get_kernel()), bytes[w] * 1e-6, best * 1e3, best_cpu * 1e3,
             bytes[w] / best * 1e-9, bytes[w] / (best_cpu / tl[ti]) * 1e-9, y[0]);
    }
  }
  free(wb);
  free(wq);
  free(x);
  free(y);
  free(row);
  return 0;
}
