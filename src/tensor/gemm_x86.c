/* AVX2+FMA and AVX-512 gemm kernels. Compiled for any x86-64 (no -march):
 * each function carries its own target attribute and gemm.c calls them only
 * after __builtin_cpu_supports says the CPU has the features. */
#if defined(__x86_64__)

#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#include "base/half.h"
#include "tensor/gemm_kernels.h"
#include "tensor/simd_x86.h"

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define T256 __attribute__((target("avx2,fma,f16c")))

/* ---- AVX-512: 12 x 32 tile, 24 zmm accumulators ------------------------- */

#define MR5 12
/* C (12 x 32 tile) = alpha * acc + beta * C: the write-back both 12x32 kernels share. */
T512 static inline __attribute__((always_inline)) void store_tile_avx512(const __m512 *c0,
                                                                         const __m512 *c1, float *C,
                                                                         int64_t ldc, float alpha,
                                                                         float beta) {
  __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
  for (int i = 0; i < MR5; i++) {
    float *c = C + i * ldc;
    __m512 r0 = _mm512_mul_ps(va, c0[i]), r1 = _mm512_mul_ps(va, c1[i]);
    if (beta != 0.0f) {
      r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c + 16), r1);
    }
    _mm512_storeu_ps(c, r0);
    _mm512_storeu_ps(c + 16, r1);
  }
}

T512 static void kern_avx512(int64_t kc, const float *A, const float *B, float *C, int64_t ldc,
                             float alpha, float beta) {
  __m512 c0[MR5], c1[MR5];
#pragma GCC unroll 12
  for (int i = 0; i < MR5; i++)
    c0[i] = c1[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    __m512 b0 = _mm512_loadu_ps(B), b1 = _mm512_loadu_ps(B + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR5; i++) {
      __m512 a = _mm512_set1_ps(A[i]);
      c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
    }
    A += MR5;
    B += 32;
  }
  store_tile_avx512(c0, c1, C, ldc, alpha, beta);
}

/* kern_avx512 reading A where it lies (row i of the tile at A + i * lda,
 * k contiguous) instead of from a packed panel: the same multiply-adds on
 * the same values. Packing (transposing) A cost about a quarter of the
 * multiply-adds when M is ~145, and with two threads every column tile
 * repacked it. */
T512 static void kern_a_avx512(int64_t kc, const float *A, int64_t lda, const float *B, float *C,
                               int64_t ldc, float alpha, float beta) {
  __m512 c0[MR5], c1[MR5];
#pragma GCC unroll 12
  for (int i = 0; i < MR5; i++)
    c0[i] = c1[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    __m512 b0 = _mm512_loadu_ps(B), b1 = _mm512_loadu_ps(B + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR5; i++) {
      __m512 a = _mm512_set1_ps(A[i * lda + k]);
      c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
    }
    B += 32;
  }
  store_tile_avx512(c0, c1, C, ldc, alpha, beta);
}

/* The first mr (< MR5) rows of a tile, two at a time: tile rows = the
 * accumulators kern_avx512 would hold for them (the same multiply-adds in
 * the same order), without the multiply-adds of the padding rows. */
T512 static void kern_part_avx512(int64_t kc, const float *A, const float *B, float *C, int64_t ldc,
                                  int mr) {
  for (int i = 0; i < mr; i += 2) {
    const bool two = i + 1 < mr;
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00;
    const float *a = A + i, *b = B;
    for (int64_t k = 0; k < kc; k++, a += MR5, b += 32) {
      __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
      __m512 a0 = _mm512_set1_ps(a[0]);
      c00 = _mm512_fmadd_ps(a0, b0, c00);
      c01 = _mm512_fmadd_ps(a0, b1, c01);
      if (two) {
        __m512 a1 = _mm512_set1_ps(a[1]);
        c10 = _mm512_fmadd_ps(a1, b0, c10);
        c11 = _mm512_fmadd_ps(a1, b1, c11);
      }
    }
    _mm512_storeu_ps(C + i * ldc, c00);
    _mm512_storeu_ps(C + i * ldc + 16, c01);
    if (two) {
      _mm512_storeu_ps(C + (i + 1) * ldc, c10);
      _mm512_storeu_ps(C + (i + 1) * ldc + 16, c11);
    }
  }
}

T512 static void widen_avx512(const void *src, vl_dtype t, int64_t n, float *dst) {
  int64_t i = 0;
  if (t == VL_F32) {
    memcpy(dst, src, (size_t)n * sizeof(float));
    return;
  }
  const uint16_t *s = src;
  if (t == VL_BF16) {
    for (; i + 16 <= n; i += 16) {
      __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + i)));
      _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
    }
    for (; i < n; i++)
      dst[i] = vl_bf16_to_f32(s[i]);
  } else {
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + i))));
    for (; i < n; i++)
      dst[i] = vl_f16_to_f32(s[i]);
  }
}

T512 static float dot_avx512(const float *a, const float *b, int64_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
  }
  if (i + 16 <= n) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    i += 16;
  }
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

T512 static void axpy_avx512(float a, const float *x, float *y, int64_t n) {
  __m512 va = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  for (; i < n; i++)
    y[i] += a * x[i];
}

/* 16 values of row p from k on (m: which of them), widened to F32. */
T512 static inline __m512 load16(const void *p, vl_dtype t, int64_t k, __mmask16 m) {
  if (t == VL_F32) return _mm512_maskz_loadu_ps(m, (const float *)p + k);
  __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)p + k);
  if (t == VL_F16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* dst[k * ds + r] = row r of src (rows `ld` elements apart) at k, for
 * k < kc and r < width <= 16; rows >= `rows` give zeros. Blocks of 16 x 16
 * transposed in registers: packing a weight panel this way instead of one
 * strided store per element took pack time from ~15 % of a ViT pass to ~3 %. */
T512 static void pack_t_avx512(const void *src, vl_dtype t, int64_t ld, int rows, int64_t kc,
                               float *dst, int64_t ds, int width) {
  const size_t es = vl_dtype_size(t);
  const __mmask16 wm = (__mmask16)((1u << width) - 1);
  for (int64_t k = 0; k < kc; k += 16) {
    const int rem = kc - k < 16 ? (int)(kc - k) : 16;
    const __mmask16 km = (__mmask16)((1u << rem) - 1);
    __m512 r[16], u[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
      r[i] = i < rows ? load16((const char *)src + (size_t)i * (size_t)ld * es, t, k, km)
                      : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
      u[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      u[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
      r[4 * i] = _mm512_shuffle_ps(u[4 * i], u[4 * i + 2], 0x44);
      r[4 * i + 1] = _mm512_shuffle_ps(u[4 * i], u[4 * i + 2], 0xEE);
      r[4 * i + 2] = _mm512_shuffle_ps(u[4 * i + 1], u[4 * i + 3], 0x44);
      r[4 * i + 3] = _mm512_shuffle_ps(u[4 * i + 1], u[4 * i + 3], 0xEE);
    }
    /* r[4i + c] holds column 4l + c of rows 4i..4i+3 in 128-bit lane l */
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
      __m512 v0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
      __m512 v1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
      __m512 w0 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
      __m512 w1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
      u[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
      u[8 + c] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
      u[4 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
      u[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
    }
    for (int i = 0; i < rem; i++)
      _mm512_mask_storeu_ps(dst + (k + i) * ds, wm, u[i]);
  }
}

/* y[r] = dot(row r of B, x) for r < n, rows ldb elements apart, B of type
 * t widened register by register (never to a buffer). One row at a time, so
 * the rows (contiguous) are read as one sequential stream that the hardware
 * prefetcher follows; four accumulators hide the FMA latency. Four rows at a
 * time with a software prefetch of the next group (the kernel before) read
 * four short interleaved streams instead: Qwen2.5-0.5B BF16 decode went 38-40
 * -> 44-48 tok/s with this one (docs/benchmarks.md). */
T512 static void dot_rows_avx512(const void *B, vl_dtype t, int64_t ldb, int64_t n, const float *x,
                                 int64_t K, float *y) {
  const size_t es = vl_dtype_size(t), rs = (size_t)ldb * es;
  const char *b = B;
  for (int64_t r = 0; r < n; r++, b += rs) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t k = 0;
    for (; k + 64 <= K; k += 64) {
      a0 = _mm512_fmadd_ps(load16(b, t, k, 0xFFFF), _mm512_loadu_ps(x + k), a0);
      a1 = _mm512_fmadd_ps(load16(b, t, k + 16, 0xFFFF), _mm512_loadu_ps(x + k + 16), a1);
      a2 = _mm512_fmadd_ps(load16(b, t, k + 32, 0xFFFF), _mm512_loadu_ps(x + k + 32), a2);
      a3 = _mm512_fmadd_ps(load16(b, t, k + 48, 0xFFFF), _mm512_loadu_ps(x + k + 48), a3);
    }
    for (; k < K; k += 16) {
      const __mmask16 m = (__mmask16)(K - k >= 16 ? 0xFFFF : (1u << (K - k)) - 1);
      a0 = _mm512_fmadd_ps(load16(b, t, k, m), _mm512_maskz_loadu_ps(m, x + k), a0);
    }
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  }
}

const vl_gemm_impl vl_gemm_impl_avx512 = {.mr = MR5,
                                          .nr = 32,
                                          .kern = kern_avx512,
                                          .widen = widen_avx512,
                                          .dot = dot_avx512,
                                          .axpy = axpy_avx512,
                                          .pack_t = pack_t_avx512,
                                          .dot_rows = dot_rows_avx512,
                                          .kern_part = kern_part_avx512,
                                          .kern_a = kern_a_avx512};

/* ---- AVX2 + FMA: 6 x 16 tile, 12 ymm accumulators ---------------------- */

#define MR2 6
T256 static void kern_avx2(int64_t kc, const float *A, const float *B, float *C, int64_t ldc,
                           float alpha, float beta) {
  __m256 c0[MR2], c1[MR2];
#pragma GCC unroll 6
  for (int i = 0; i < MR2; i++)
    c0[i] = c1[i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    __m256 b0 = _mm256_loadu_ps(B), b1 = _mm256_loadu_ps(B + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR2; i++) {
      __m256 a = _mm256_broadcast_ss(A + i);
      c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
    }
    A += MR2;
    B += 16;
  }
  __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
  for (int i = 0; i < MR2; i++) {
    float *c = C + i * ldc;
    __m256 r0 = _mm256_mul_ps(va, c0[i]), r1 = _mm256_mul_ps(va, c1[i]);
    if (beta != 0.0f) {
      r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), r0);
      r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), r1);
    }
    _mm256_storeu_ps(c, r0);
    _mm256_storeu_ps(c + 8, r1);
  }
}

T256 static void widen_avx2(const void *src, vl_dtype t, int64_t n, float *dst) {
  int64_t i = 0;
  if (t == VL_F32) {
    memcpy(dst, src, (size_t)n * sizeof(float));
    return;
  }
  const uint16_t *s = src;
  if (t == VL_BF16) {
    for (; i + 8 <= n; i += 8) {
      __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i)));
      _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    }
    for (; i < n; i++)
      dst[i] = vl_bf16_to_f32(s[i]);
  } else {
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    for (; i < n; i++)
      dst[i] = vl_f16_to_f32(s[i]);
  }
}

T256 static float dot_avx2(const float *a, const float *b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  float s = vl_hsum256(_mm256_add_ps(s0, s1));
  for (; i < n; i++)
    s += a[i] * b[i];
  return s;
}

T256 static void axpy_avx2(float a, const float *x, float *y, int64_t n) {
  __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++)
    y[i] += a * x[i];
}

const vl_gemm_impl vl_gemm_impl_avx2 = {.mr = MR2,
                                        .nr = 16,
                                        .kern = kern_avx2,
                                        .widen = widen_avx2,
                                        .dot = dot_avx2,
                                        .axpy = axpy_avx2};

#else
typedef int vl_gemm_x86_unused; /* ISO C forbids an empty translation unit */
#endif
