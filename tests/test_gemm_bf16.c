/* BF16-rounded prefill GEMM (tensor/gemm_bf16.h) against a double-precision
 * product of the rounded operands: shapes with partial tiles (M not a
 * multiple of 12, N of 32), odd K, strides, beta 0 (C not read) and 1, one
 * and two threads; bad arguments are errors. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/half.h"
#include "base/threads.h"
#include "tensor/gemm_bf16.h"
#include "test.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float frand(void) { return test_frand(&rng); }

/* max |C - ref| / max sum |x w| over the output */
static double run_case(int64_t M, int64_t N, int64_t K, float beta) {
  const int64_t ldx = K + 3, ldw = K + 1, ldc = N + 2;
  float *X = malloc((size_t)(M * ldx) * sizeof *X), *C = malloc((size_t)(M * ldc) * sizeof *C);
  uint16_t *W = malloc((size_t)(N * ldw) * sizeof *W);
  double *ref = malloc((size_t)(M * ldc) * sizeof *ref);
  if (!X || !C || !W || !ref) return 1e30;
  for (int64_t i = 0; i < M * ldx; i++)
    X[i] = frand() * 2.0f;
  for (int64_t i = 0; i < N * ldw; i++)
    W[i] = vl_f32_to_bf16(frand());
  for (int64_t i = 0; i < M * ldc; i++)
    C[i] = beta != 0.0f ? frand() : NAN; /* beta 0: C must not be read */
  double worst = 0, mag = 1e-30;
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < ldc; n++) {
      double s = 0, a = 0;
      for (int64_t k = 0; n < N && k < K; k++) {
        double p =
            (double)vl_bf16_to_f32(vl_f32_to_bf16(X[m * ldx + k])) * vl_bf16_to_f32(W[n * ldw + k]);
        s += p;
        a += fabs(p);
      }
      ref[m * ldc + n] = n < N ? s + (beta != 0.0f ? beta * C[m * ldc + n] : 0.0) : C[m * ldc + n];
      if (a > mag) mag = a;
    }
  if (vl_gemm_bf16_rounded(M, N, K, X, ldx, W, ldw, beta, C, ldc)) return 1e30;
  for (int64_t i = 0; i < M * ldc; i++) {
    double d = fabs(C[i] - ref[i]);
    if (isnan(C[i]) != isnan(ref[i])) d = 1e30; /* padding columns keep their NaN */
    if (isnan(C[i]) && isnan(ref[i])) d = 0;
    if (d > worst) worst = d;
  }
  free(X);
  free(C);
  free(W);
  free(ref);
  return worst / mag;
}

static void matches_double_reference(void) {
  if (!vl_gemm_bf16_rounded_available()) {
    printf("  (no AVX-512 BF16 on this CPU)\n");
    return;
  }
  static const int64_t Ms[] = {1, 5, 12, 30}, Ns[] = {1, 31, 32, 70}, Ks[] = {1, 2, 7, 64, 129};
  for (int th = 1; th <= 2; th++) {
    vl_threads_set(th);
    int bad = 0;
    for (int mi = 0; mi < 4; mi++)
      for (int ni = 0; ni < 4; ni++)
        for (int ki = 0; ki < 5; ki++)
          for (int b = 0; b < 2; b++) {
            double e = run_case(Ms[mi], Ns[ni], Ks[ki], b ? 1.0f : 0.0f);
            if (!(e <= 1e-6) && bad++ < 5)
              printf("  M=%lld N=%lld K=%lld beta=%d threads=%d: error %.3g\n", (long long)Ms[mi],
                     (long long)Ns[ni], (long long)Ks[ki], b, th, e);
          }
    CHECK(bad == 0);
  }
  vl_threads_set(0);
}

static void bad_arguments_are_errors(void) {
  float x[4] = {0}, c[4] = {0};
  uint16_t w[4] = {0};
  CHECK(vl_gemm_bf16_rounded(1, 1, 0, x, 4, w, 4, 0.0f, c, 4) == VL_ERR_INVALID);
  CHECK(vl_gemm_bf16_rounded(1, 2, 4, x, 4, w, 4, 0.0f, c, 1) == VL_ERR_INVALID);
  CHECK(vl_gemm_bf16_rounded(0, 2, 4, x, 4, w, 4, 0.0f, c, 4) == VL_OK); /* nothing to do */
}

int main(void) {
  RUN(matches_double_reference);
  RUN(bad_arguments_are_errors);
  return test_summary();
}
