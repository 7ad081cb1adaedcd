/* Decode products with the activation rounded to the weight's format first,
 * as llama.cpp computes them: BF16 weights against a BF16 copy of x (AVX-512
 * BF16 dot-product instructions), Q8_0 weights against x quantised to Q8_0
 * blocks (int8 dot products, AVX-512 VNNI). Fewer instructions per weight
 * byte than widening every weight to F32 against an exact F32 x, so a decode
 * step that was instruction-bound streams the weights faster; the price is
 * x's rounding error (BF16: 2^-9 relative per value; Q8_0: up to
 * max|block| / 254 per value), which the exact path (quant.h, gemm.h) does
 * not have. Opt-in: generation's `round_activations`. */
#ifndef VL_TENSOR_DOT_ROUNDED_H
#define VL_TENSOR_DOT_ROUNDED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor/tensor.h"

/* Whether weights of type t (2-D, rows K long) have a rounded-x product:
 * BF16 always, Q8_0 when K is a multiple of 32; F32 and F16 do not. */
bool vl_rounded_dot_supports(vl_dtype t, int64_t K);
/* Bytes of x (K values) rounded for weights of type t. */
size_t vl_round_x_bytes(vl_dtype t, int64_t K);
/* xr = x rounded for weights of type t: K BF16 values (round to nearest
 * even), or K/32 F32 block scales (ggml's d = max|x|/127, through F16)
 * followed by K int8 values (round(x/d), half away from zero). */
void vl_round_x(vl_dtype t, const float *x, int64_t K, void *xr);
/* y[r] = dot(row r0 + r of w, xr) for r < n, w (out, K) of a supported
 * type, on the calling thread only (callers split the rows over the pool). */
void vl_gemv_rows_rounded(const vl_tensor *w, int64_t r0, int64_t n, const void *xr, float *y);

typedef enum { VL_RDOT_AUTO = 0, VL_RDOT_SCALAR, VL_RDOT_AVX2, VL_RDOT_AVX512 } vl_rdot_kernel;
/* Tests and benchmarks: force a kernel family (AVX512: the BF16 / VNNI
 * instructions; AVX2: maddubs for Q8_0, F32 widening for BF16); false when
 * this CPU lacks it. */
bool vl_rdot_set_kernel(vl_rdot_kernel k);

#endif
