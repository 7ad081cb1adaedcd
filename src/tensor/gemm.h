/* Single-precision matrix product with F32, BF16 or F16 right operands.
 *
 * C = alpha * op(A) * op(B) + beta * C, row-major, op(X) = X or X^T.
 * op(A) is M x K, op(B) is K x N, C is M x N. A and C are F32; B may be F32,
 * BF16 or F16 (weights are used as stored and widened while packing). With
 * beta == 0, C is not read (it may hold garbage or NaN).
 *
 * Kernels: our own packed-panel microkernels, picked at run time from the
 * CPU (AVX-512 12x32, AVX2+FMA 6x16, portable scalar 4x8), or OpenBLAS
 * sgemm. Work is split over the project pool (base/threads.h). Which one is
 * the default was decided by bench/bench_matmul.c (docs/benchmarks.md);
 * VLENS_GEMM=avx512|avx2|scalar|openblas overrides it. */
#ifndef VL_TENSOR_GEMM_H
#define VL_TENSOR_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"

void vl_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
             const float *A, int64_t lda, const void *B, vl_dtype b_type, int64_t ldb, float beta,
             float *C, int64_t ldc);

/* vl_gemm where B (its pointer, type, layout and values) stays the same
 * for as long as pack-cache scopes are open: called on a thread with a
 * scope open, B is packed once and reused (an explanation's backward per
 * target over the same weights); up to 64 MB of copies. Scopes nest and may
 * be open on several threads (sharing the copies, freed when the last one
 * ends). On a thread without a scope this is vl_gemm. */
void vl_gemm_const_b(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float *A, int64_t lda, const void *B, vl_dtype b_type, int64_t ldb,
                     float beta, float *C, int64_t ldc);
void vl_gemm_pack_cache_begin(void);
void vl_gemm_pack_cache_end(void);
/* Bytes of packed copies held now, all threads (tests). */
size_t vl_gemm_pack_cache_bytes(void);

/* The calling thread's packing buffer `which` (0 or 1) of at least `bytes`
 * bytes, kept and grown across calls and freed when the thread exits
 * (NULL when out of memory): for other packed kernels (gemm_bf16.c). vl_gemm
 * uses both on every thread it runs on, so none may be held across a
 * vl_gemm call on the same thread. */
void *vl_gemm_scratch(int which, size_t bytes);

/* Decode: y[r] = dot(row r of B, x) for r < n, rows ldb elements of type t
 * (F32, BF16, F16) apart, x and rows K long; the kernel vl_gemm uses for
 * M = 1, on the calling thread only (callers fusing several weights into
 * one pass over the pool split the rows themselves). */
void vl_gemv_rows(const void *B, vl_dtype t, int64_t ldb, int64_t n, const float *x, int64_t K,
                  float *y);

typedef enum {
  VL_GEMM_AUTO = 0, /* best available (see above) */
  VL_GEMM_SCALAR,
  VL_GEMM_AVX2,
  VL_GEMM_AVX512,
  VL_GEMM_OPENBLAS
} vl_gemm_kernel;

/* Selects the kernel for later calls (tests and benchmarks). Returns false
 * when this CPU cannot run it (the selection is then unchanged). */
bool vl_gemm_set_kernel(vl_gemm_kernel k);
vl_gemm_kernel vl_gemm_get_kernel(void); /* resolved, never AUTO */
bool vl_gemm_kernel_available(vl_gemm_kernel k);
const char *vl_gemm_kernel_name(vl_gemm_kernel k);

#endif
