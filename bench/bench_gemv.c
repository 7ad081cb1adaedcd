/* Decode GEMV: y = W x with W far larger than the caches (default 151936 x
 * 1024, Qwen3-0.6B's lm_head), stored BF16 (vl_gemm, M = 1) or Q8_0
 * (vl_q8_0_gemv), each also against x rounded to the weights' format
 * (tensor/dot_rounded.h, "-rounded"; rows split over the pool). Prints GB/s of weights read, from
 * wall and from process CPU time (bytes / (CPU s / threads): the rate if every thread were on a
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
#include "tensor/dot_rounded.h"
#include "tensor/gemm.h"
#include "tensor/quant.h"

typedef struct {
  const vl_tensor *w;
  const void *xr;
  float *y;
} rounded_job;

static void rounded_range(void *arg, int64_t r0, int64_t r1, int worker) {
  const rounded_job *j = arg;
  (void)worker;
  vl_gemv_rows_rounded(j->w, r0, r1 - r0, j->xr, j->y + r0);
}

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
  const double bytes[4] = {(double)N * (double)K * 2.0, (double)N * (double)(K / 32) * 34.0,
                           (double)N * (double)K * 2.0, (double)N * (double)(K / 32) * 34.0};
  const char *names[4] = {"bf16", "q8_0", "bf16-rounded", "q8_0-rounded"};
  vl_ctx *c = vl_ctx_new();
  vl_tensor *tw[2] = {c ? vl_wrap(c, VL_BF16, 2, (int64_t[]){N, K}, wb) : NULL,
                      c ? vl_wrap(c, VL_Q8_0, 2, (int64_t[]){N, K}, wq) : NULL};
  void *xr[2] = {malloc(vl_round_x_bytes(VL_BF16, K)), malloc(vl_round_x_bytes(VL_Q8_0, K))};
  if (!tw[0] || !tw[1] || !xr[0] || !xr[1]) return 1;
  for (int ti = 0; ti < nt; ti++) {
    vl_threads_set(tl[ti]);
    for (int w = 0; w < 4; w++) {
      double best = 1e30, best_cpu = 1e30;
      for (int r = 0; r < reps + 1; r++) {
        double t0 = vl_now_seconds(), c0 = cpu_now();
        if (w == 0) {
          vl_gemm(false, true, 1, N, K, 1.0f, x, K, wb, VL_BF16, K, 0.0f, y, N);
        } else if (w == 1) {
          vl_q8_0_gemv(wq, N, K, x, 0.0f, y);
        } else { /* rounding x is part of the product's cost */
          rounded_job j = {tw[w - 2], xr[w - 2], y};
          vl_round_x(tw[w - 2]->dtype, x, K, xr[w - 2]);
          vl_parallel_for(N, 16384 / K + 1, rounded_range, &j);
        }
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
  free(xr[0]);
  free(xr[1]);
  vl_ctx_free(c);
  free(wb);
  free(wq);
  free(x);
  free(y);
  free(row);
  return 0;
}
