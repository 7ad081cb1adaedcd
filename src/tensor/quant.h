/* ggml's Q8_0 weights: blocks of 32 values stored as an f16 scale d and 32
 * int8 q (34 bytes), x ~= d * q. Quantisation is ggml's reference one:
 * d = max|x| / 127, q = round-half-away(x * (1/d)) (q = 0 when d = 0).
 *
 * Kernels dequantise inside the product (activations stay F32): a GEMV for
 * decode (one row of activations, split over the pool by output rows,
 * AVX-512 / AVX2 / scalar picked at run time) and, for more rows, blocks of
 * weight rows widened to F32 and handed to vl_gemm. */
#ifndef VL_TENSOR_QUANT_H
#define VL_TENSOR_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/tensor.h"

#define VL_Q8_0_BLOCK 32
#define VL_Q8_0_BYTES 34

/* n must be a multiple of 32 in all of these. */
void vl_q8_0_quantize_row(const float *x, void *dst, int64_t n);
void vl_q8_0_dequantize_row(const void *src, float *dst, int64_t n);

/* y[j] = beta*y[j] + sum_k W[j][k] x[k] for j < out; W is out rows of in
 * Q8_0 values (row stride vl_dtype_bytes(VL_Q8_0, in)). beta 0: y not read. */
void vl_q8_0_gemv(const void *W, int64_t out, int64_t in, const float *x, float beta, float *y);
/* Y (M x out, ldy) = beta*Y + X (M x in, ldx) W^T. */
void vl_q8_0_gemm(int64_t M, const float *X, int64_t ldx, const void *W, int64_t out, int64_t in,
                  float beta, float *Y, int64_t ldy);

/* Decode: y[r] = dot(row r0 + r of w, x) for r < n, w (out, in) of any
 * weight dtype (F32/BF16/F16 through vl_gemv_rows, Q8_0 here), on the calling
 * thread only: for callers that run several weights' rows in one pass over
 * the pool. */
void vl_gemv_rows_any(const vl_tensor *w, int64_t r0, int64_t n, const float *x, float *y);

typedef enum { VL_Q8_AUTO = 0, VL_Q8_SCALAR, VL_Q8_AVX2, VL_Q8_AVX512 } vl_q8_kernel;
/* Tests and benchmarks: force a kernel; false when this CPU lacks it. */
bool vl_q8_set_kernel(vl_q8_kernel k);

/* y = x w^T + bias like vl_linear, for any weight dtype: Q8_0 here (the
 * gradient reaches x, never w), everything else through vl_linear. */
vl_tensor *vl_linear_any(vl_ctx *c, vl_tensor *x, vl_tensor *w, vl_tensor *bias);
/* Rows of a table of any weight dtype (Q8_0 here, else vl_embedding). */
vl_tensor *vl_embedding_any(vl_ctx *c, vl_tensor *table, vl_tensor *ids);

#endif
