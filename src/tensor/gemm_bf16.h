/* Prefill products with BF16 weights against activations rounded to BF16,
 * as llama.cpp computes them (generation's round_activations): Y = beta*Y
 * + round_bf16(X) W^T with AVX-512 BF16 dot-product instructions, twice the
 * products per instruction of the F32 kernels in gemm.c (which widen the
 * weights and keep X exact). Rounding X costs 2^-9 relative per value. */
#ifndef VL_TENSOR_GEMM_BF16_H
#define VL_TENSOR_GEMM_BF16_H

#include <stdbool.h>
#include <stdint.h>

/* Whether this CPU has the instructions (AVX-512 F, BW and BF16). */
bool vl_gemm_bf16_rounded_available(void);

/* C (M x N, row stride ldc) = beta*C + X (M x K, F32, stride ldx, rounded
 * to BF16) times W^T, W (N x K, BF16, stride ldw). beta 0: C not read. Work
 * split over the pool by 32-row panels of W. VL_ERR_UNSUPPORTED without
 * the instructions, VL_ERR_INVALID / VL_ERR_NOMEM otherwise. */
int vl_gemm_bf16_rounded(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx,
                         const uint16_t *W, int64_t ldw, float beta, float *C, int64_t ldc);

#endif
