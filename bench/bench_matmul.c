/* GFLOP/s of vl_gemm at transformer shapes, each kernel side by side (ours
 * AVX-512 / AVX2 / scalar and OpenBLAS sgemm through the same entry point),
 * F32 and BF16 weights, 1 and 2 threads. Layout as in vl_linear:
 * C (M x N) = X (M x K) W^T, W stored (N x K).
 *
 * Usage: bench_matmul [--quick] [--threads 1,2]
 * Prints one line per measurement, best of several repetitions (the machine
 * is shared; best-of filters out interference), then the best F32 GFLOP/s
 * seen ("roofline" line) for bench/run.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/half.h"
#include "base/log.h"
#include "base/threads.h"
#include "tensor/gemm.h"

typedef struct {
  const char *name;
  int64_t M, N, K;
} shape;

static const shape shapes[] = {
    {"vit-b qkv   197x2304x768", 197, 2304, 768},   {"vit-b proj  197x768x768", 197, 768, 768},
    {"vit-b fc1   197x3072x768", 197, 3072, 768},   {"vit-b fc2   197x768x3072", 197, 768, 3072},
    {"vit-l fc1   577x4096x1024", 577, 4096, 1024}, {"prefill     512x3072x1024", 512, 3072, 1024},
    {"decode gemv 1x3072x1024", 1, 3072, 1024},
};

/* Process CPU seconds (all threads): leaves out time spent descheduled on a
 * shared machine; divided by the thread count it is comparable to wall. */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double time_gemm(const shape *s, const float *X, const void *W, vl_dtype wt, float *C,
                        double min_s, int min_reps, double *best_cpu) {
  vl_gemm(false, true, s->M, s->N, s->K, 1.0f, X, s->K, W, wt, s->K, 0.0f, C, s->N); /* warm */
  double best = 1e30, t_start = vl_now_seconds();
  *best_cpu = 1e30;
  for (int r = 0; r < 1000 && (r < min_reps || vl_now_seconds() - t_start < min_s); r++) {
    double t0 = vl_now_seconds(), u0 = cpu_now();
    vl_gemm(false, true, s->M, s->N, s->K, 1.0f, X, s->K, W, wt, s->K, 0.0f, C, s->N);
    double dt = vl_now_seconds() - t0, du = cpu_now() - u0;
    if (dt < best) best = dt;
    if (du < *best_cpu) *best_cpu = du;
  }
  return best;
}

int main(int argc, char **argv) {
  int quick = 0, tlist[8] = {1, 2}, nt = 2;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) {
      quick = 1;
    } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      nt = 0;
      for (char *p = strtok(argv[++i], ","); p && nt < 8; p = strtok(NULL, ","))
        tlist[nt++] = atoi(p);
    } else {
      fprintf(stderr, "usage: %s [--quick] [--threads 1,2]\n", argv[0]);
      return 2;
    }
  }
  double min_s = quick ? 0.1 : 0.4;
  int min_reps = quick ? 3 : 5;
  const vl_gemm_kernel kerns[] = {VL_GEMM_AVX512, VL_GEMM_AVX2, VL_GEMM_OPENBLAS};
  const char *cfg = getenv("OPENBLAS_CORETYPE");
  printf("# default kernel: %s; OPENBLAS_CORETYPE=%s\n", vl_gemm_kernel_name(vl_gemm_get_kernel()),
         cfg ? cfg : "(unset)");
  printf("%-28s %-4s %-9s %-5s %9s %9s %9s\n", "shape MxNxK", "thr", "kernel", "B", "ms", "GFLOP/s",
         "cpuGFLOP/s");
  double roof[8] = {0}, roof_cpu[8] = {0};
  for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
    const shape *s = &shapes[si];
    float *X = malloc((size_t)(s->M * s->K) * 4), *W = malloc((size_t)(s->N * s->K) * 4);
    uint16_t *Wb = malloc((size_t)(s->N * s->K) * 2);
    float *C = malloc((size_t)(s->M * s->N) * 4);
    if (!X || !W || !Wb || !C) return 1;
    for (int64_t i = 0; i < s->M * s->K; i++)
      X[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (int64_t i = 0; i < s->N * s->K; i++) {
      W[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
      Wb[i] = vl_f32_to_bf16(W[i]);
    }
    double flops = 2.0 * (double)s->M * (double)s->N * (double)s->K;
    for (int ti = 0; ti < nt; ti++) {
      vl_threads_set(tlist[ti]);
      for (size_t ki = 0; ki < sizeof kerns / sizeof *kerns; ki++) {
        if (!vl_gemm_set_kernel(kerns[ki])) continue;
        for (int bf = 0; bf < 2; bf++) {
          if (bf && kerns[ki] == VL_GEMM_AVX2) continue; /* keep the run short */
          double tc;
          double t = time_gemm(s, X, bf ? (const void *)Wb : W, bf ? VL_BF16 : VL_F32, C, min_s,
                               min_reps, &tc);
          double gf = flops / t * 1e-9, gc = flops / (tc / tlist[ti]) * 1e-9;
          printf("%-28s %-4d %-9s %-5s %9.3f %9.1f %9.1f\n", s->name, tlist[ti],
                 vl_gemm_kernel_name(kerns[ki]), bf ? "bf16" : "f32", t * 1e3, gf, gc);
          fflush(stdout);
          if (!bf && s->M > 1 && gf > roof[ti]) roof[ti] = gf;
          if (!bf && s->M > 1 && gc > roof_cpu[ti]) roof_cpu[ti] = gc;
        }
      }
    }
    free(X);
    free(W);
    free(Wb);
    free(C);
  }
  for (int ti = 0; ti < nt; ti++)
    printf("roofline threads=%d best_f32_gemm_gflops=%.1f best_f32_gemm_cpu_gflops=%.1f\n",
           tlist[ti], roof[ti], roof_cpu[ti]);
  vl_gemm_set_kernel(VL_GEMM_AUTO);
  return 0;
}
