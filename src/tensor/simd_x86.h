/* Small x86 SIMD helpers shared by the kernels in gemm_x86.c, quant.c and
 * dot_rounded.c (each compiled for several instruction sets with target
 * attributes; these need AVX2 + F16C, a subset of every caller's). */
#ifndef VL_TENSOR_SIMD_X86_H
#define VL_TENSOR_SIMD_X86_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define VL_T_AVX2 __attribute__((target("avx2,fma,f16c")))

/* Sum of the 8 lanes. */
VL_T_AVX2 static inline float vl_hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* The IEEE half stored (unaligned) at p, e.g. a Q8_0 block's scale. */
VL_T_AVX2 static inline float vl_f16_at(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

#endif
