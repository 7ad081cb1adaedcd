/* vl_gemm against a double-precision naive product: every kernel this CPU
 * runs, all transpose combinations, odd sizes, padded strides, alpha/beta,
 * BF16 and F16 right operands, 1 and 2 threads. */
#include <stdlib.h>
#include <string.h>

#include "base/half.h"
#include "base/threads.h"
#include "tensor/gemm.h"
#include "test.h"

static uint64_t rng = 88172645463325252ULL;
static float frand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (float)((rng >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

/* B as stored: rows x cols with leading dim ld, in dtype bt; bf holds the
 * exact F32 value of each stored element (for the reference). */
typedef struct {
  void *data;
  float *bf;
} bmat;

static bmat make_b(vl_dtype bt, int64_t rows, int64_t ld) {
  bmat m;
  m.bf = malloc((size_t)(rows * ld) * sizeof(float));
  m.data = malloc((size_t)(rows * ld) * 4);
  for (int64_t i = 0; i < rows * ld; i++) {
    float v = frand();
    if (bt == VL_F32) {
      ((float *)m.data)[i] = v;
      m.bf[i] = v;
    } else if (bt == VL_BF16) {
      uint16_t h = vl_f32_to_bf16(v);
      ((uint16_t *)m.data)[i] = h;
      m.bf[i] = vl_bf16_to_f32(h);
    } else {
      uint16_t h = vl_f32_to_f16(v);
      ((uint16_t *)m.data)[i] = h;
      m.bf[i] = vl_f16_to_f32(h);
    }
  }
  return m;
}

/* One case; returns max error relative to the largest |reference|. */
static double run_case(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, float beta,
                       vl_dtype bt, int pad) {
  int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
  int64_t arows = ta ? K : M, brows = tb ? N : K;
  float *A = malloc((size_t)(arows * lda) * sizeof(float));
  for (int64_t i = 0; i < arows * lda; i++)
    A[i] = frand();
  bmat B = make_b(bt, brows, ldb);
  float *C = malloc((size_t)(M * ldc) * sizeof(float));
  double *ref = malloc((size_t)(M * ldc) * sizeof(double));
  for (int64_t i = 0; i < M * ldc; i++) {
    C[i] = frand();
    ref[i] = C[i];
  }
  if (beta == 0.0f) /* C must not be read: NaN there must not leak */
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++)
        C[i * ldc + j] = NAN;
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++)
        s += (double)A[ta ? k * lda + i : i * lda + k] * B.bf[tb ? j * ldb + k : k * ldb + j];
      ref[i * ldc + j] = alpha * s + (beta != 0.0f ? beta * ref[i * ldc + j] : 0.0);
    }
  vl_gemm(ta, tb, M, N, K, alpha, A, lda, B.data, bt, ldb, beta, C, ldc);
  double maxr = 1e-6, maxd = 0;
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < ldc; j++) {
      double r = ref[i * ldc + j], d = fabs(C[i * ldc + j] - r);
      if (j >= N) d = C[i * ldc + j] == (float)r ? 0 : 1e30; /* padding untouched */
      if (isnan(C[i * ldc + j])) d = 1e30;
      if (fabs(r) > maxr) maxr = fabs(r);
      if (d > maxd) maxd = d;
    }
  free(A);
  free(B.data);
  free(B.bf);
  free(C);
  free(ref);
  return maxd / maxr;
}

static const int64_t sizes[] = {1, 3, 17, 64, 129};

static void sweep(vl_gemm_kernel kern, vl_dtype bt, int threads) {
  if (!vl_gemm_set_kernel(kern)) {
    printf("  (kernel %s not available on this CPU)\n", vl_gemm_kernel_name(kern));
    return;
  }
  vl_threads_set(threads);
  int bad = 0;
  for (int t = 0; t < 4; t++)
    for (int mi = 0; mi < 5; mi++)
      for (int ni = 0; ni < 5; ni++)
        for (int ki = 0; ki < 5; ki++) {
          bool ta = t & 1, tb = t & 2;
          int pad = (mi + ni + ki) % 3;
          float alpha = (ki & 1) ? 0.5f : 1.0f, beta = (mi + ni) % 3 == 0 ? 0.0f : -0.75f;
          double e = run_case(ta, tb, sizes[mi], sizes[ni], sizes[ki], alpha, beta, bt, pad);
          if (!(e < 2e-6 * (1 + sizes[ki] / 32.0))) {
            if (bad++ < 5)
              printf("  %s %s t%d ta=%d tb=%d M=%lld N=%lld K=%lld: rel err %.3g\n",
                     vl_gemm_kernel_name(kern), vl_dtype_name(bt), threads, ta, tb,
                     (long long)sizes[mi], (long long)sizes[ni], (long long)sizes[ki], e);
          }
        }
  CHECK(bad == 0);
  vl_threads_set(0);
  vl_gemm_set_kernel(VL_GEMM_AUTO);
}

static void each_kernel(vl_dtype bt) {
  for (int k = VL_GEMM_SCALAR; k <= VL_GEMM_OPENBLAS; k++)
    for (int th = 1; th <= 2; th++)
      sweep((vl_gemm_kernel)k, bt, th);
}

static void gemm_f32_all_kernels(void) { each_kernel(VL_F32); }
static void gemm_bf16_all_kernels(void) { each_kernel(VL_BF16); }
static void gemm_f16_all_kernels(void) { each_kernel(VL_F16); }

/* Larger than one KC/MC block in every dimension, so the k-loop (beta=1 on
 * later blocks) and multi-task splitting are exercised. */
static void gemm_multi_block(void) {
  for (int k = VL_GEMM_SCALAR; k <= VL_GEMM_AVX512; k++) {
    if (!vl_gemm_set_kernel((vl_gemm_kernel)k)) continue;
    vl_threads_set(2);
    double e1 = run_case(false, true, 300, 97, 600, 1.0f, 0.5f, VL_BF16, 1);
    double e2 = run_case(true, false, 150, 270, 520, 2.0f, 0.0f, VL_F32, 0);
    double e3 = run_case(false, false, 400, 20, 300, 1.0f, 1.0f, VL_F16, 2); /* row groups */
    /* decode GEMV on BF16 rows of a model's width: K a multiple of 32 (the
     * in-lane widening kernel) and not (the generic one) */
    double e5 = run_case(false, true, 1, 37, 896, 1.0f, 0.0f, VL_BF16, 1);
    double e6 = run_case(false, true, 1, 37, 900, 1.0f, 0.0f, VL_BF16, 0);
    vl_threads_set(1);
    double e4 = run_case(false, true, 20, 600, 40, 1.0f, 0.0f, VL_F32, 0); /* > NC_MAX cols */
    CHECK(e1 < 2e-5);
    CHECK(e2 < 2e-5);
    CHECK(e3 < 2e-5);
    CHECK(e5 < 2e-5 && e6 < 2e-5);
    CHECK(e4 < 2e-5);
    if (!(e1 < 2e-5 && e2 < 2e-5))
      printf("  %s: %.3g %.3g\n", vl_gemm_kernel_name((vl_gemm_kernel)k), e1, e2);
  }
  vl_threads_set(0);
  vl_gemm_set_kernel(VL_GEMM_AUTO);
}

/* alpha == 0 or K == 0: C = beta C, no read of A/B; beta == 0 zeroes NaN. */
static void gemm_degenerate(void) {
  float C[6] = {1, 2, 3, NAN, 5, 6};
  vl_gemm(false, false, 2, 3, 0, 1.0f, NULL, 1, NULL, VL_F32, 1, 2.0f, C, 3);
  CHECK(C[0] == 2 && C[5] == 12 && isnan(C[3]));
  vl_gemm(false, false, 2, 3, 0, 1.0f, NULL, 1, NULL, VL_F32, 1, 0.0f, C, 3);
  CHECK(C[0] == 0 && C[3] == 0 && C[5] == 0);
  vl_gemm(false, false, 0, 3, 4, 1.0f, NULL, 1, NULL, VL_F32, 1, 0.0f, NULL, 3); /* no-op */
}

static void kernel_names_and_selection(void) {
  CHECK(vl_gemm_set_kernel(VL_GEMM_SCALAR));
  CHECK(vl_gemm_get_kernel() == VL_GEMM_SCALAR);
  CHECK(!vl_gemm_set_kernel((vl_gemm_kernel)99));
  CHECK(vl_gemm_get_kernel() == VL_GEMM_SCALAR);
  CHECK(vl_gemm_set_kernel(VL_GEMM_AUTO));
  CHECK(vl_gemm_get_kernel() != VL_GEMM_AUTO);
  printf("  default kernel: %s\n", vl_gemm_kernel_name(vl_gemm_get_kernel()));
}

int main(void) {
  RUN(kernel_names_and_selection);
  RUN(gemm_degenerate);
  RUN(gemm_f32_all_kernels);
  RUN(gemm_bf16_all_kernels);
  RUN(gemm_f16_all_kernels);
  RUN(gemm_multi_block);
  return test_summary();
}
