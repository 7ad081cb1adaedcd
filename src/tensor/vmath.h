/* Internal to tensor/ops_*.c: branch-free float math that GCC vectorises.
 *
 * Loops calling libm's expf are never vectorised (and cost ~10 ns a call);
 * these inline versions use only arithmetic, compares and bit casts, so a
 * loop of them compiles to packed code (AVX-512 / AVX2 in the functions
 * marked VL_VEC_CLONES, which GCC dispatches at load time). */
#ifndef VL_TENSOR_VMATH_H
#define VL_TENSOR_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VL_VEC_CLONES __attribute__((target_clones("avx512f", "avx2,fma", "default")))
#else
#define VL_VEC_CLONES
#endif

/* e^x, relative error < 2e-7 (Cephes expf polynomial). Exactly 0 below
 * -87.3 (so -inf gives 0), +inf above 88.37, NaN stays NaN. */
static inline float vl_expf(float x) {
  const float hi = 88.37626f, lo = -87.33654f; /* keeps 2^n normal */
  float xc = x > hi ? hi : x;
  xc = xc < lo ? lo : xc;
  /* n = round(x / ln 2) with the 1.5 * 2^23 trick (round to nearest) */
  float fn = xc * 1.44269504088896341f + 12582912.0f;
  fn -= 12582912.0f;
  float r = xc - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t e = ((int32_t)fn + 127) << 23; /* 2^n, n in [-126, 128) */
  float s;
  memcpy(&s, &e, sizeof s);
  float y = p * s;
  y = x < lo ? 0.0f : y;
  y = x > hi ? (float)INFINITY : y;
  return x != x ? x : y;
}

#endif
