/* Internal to gemm*.c: one CPU-specific kernel set. The microkernel computes
 * a full MR x NR tile from packed panels (A: kc x MR, k-major; B: kc x NR,
 * k-major) and stores alpha*acc + beta*C (C not read when beta == 0). */
#ifndef VL_TENSOR_GEMM_KERNELS_H
#define VL_TENSOR_GEMM_KERNELS_H

#include <stdint.h>

#include "base/dtype.h"

typedef struct {
  int mr, nr;
  void (*kern)(int64_t kc, const float *A, const float *B, float *C, int64_t ldc, float alpha,
               float beta);
  /* dst[0..n) = (float)src[0..n), src of type t (F32, BF16, F16). */
  void (*widen)(const void *src, vl_dtype t, int64_t n, float *dst);
  float (*dot)(const float *a, const float *b, int64_t n);
  void (*axpy)(float a, const float *x, float *y, int64_t n); /* y += a x */
  /* Optional (NULL: generic loops): dst[k * ds + r] = (float)row r of src at
   * k for k < kc, r < width <= 16, zeros for r >= rows; rows ld apart. */
  void (*pack_t)(const void *src, vl_dtype t, int64_t ld, int rows, int64_t kc, float *dst,
                 int64_t ds, int width);
  /* Optional: y[r] = dot(row r of B, x), r < n, rows ldb elements of type t
   * apart, x and rows K long. */
  void (*dot_rows)(const void *B, vl_dtype t, int64_t ldb, int64_t n, const float *x, int64_t K,
                   float *y);
  /* Optional: rows [0, mr) of kern's tile for mr < mr of the set, alpha 1
   * and beta 0, bit for bit (edge tiles: M = 145 is 12 full tiles and one
   * row, which the full kernel computes as 12). */
  void (*kern_part)(int64_t kc, const float *A, const float *B, float *C, int64_t ldc, int mr);
  /* Optional: kern with A unpacked, row i of the tile at A + i * lda. */
  void (*kern_a)(int64_t kc, const float *A, int64_t lda, const float *B, float *C, int64_t ldc,
                 float alpha, float beta);
} vl_gemm_impl;

extern const vl_gemm_impl vl_gemm_impl_scalar;
#if defined(__x86_64__)
extern const vl_gemm_impl vl_gemm_impl_avx2;
extern const vl_gemm_impl vl_gemm_impl_avx512;
#endif

#endif
