/* Decode products against a rounded copy of x (BF16 or Q8_0). See
 * dot_rounded.h. */
#include "tensor/dot_rounded.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "base/half.h"
#include "tensor/prefetch.h"
#include "tensor/quant.h"
#include "tensor/simd_x86.h"

bool vl_rounded_dot_supports(vl_dtype t, int64_t K) {
  return t == VL_BF16 || (t == VL_Q8_0 && K > 0 && K % VL_Q8_0_BLOCK == 0);
}

size_t vl_round_x_bytes(vl_dtype t, int64_t K) {
  if (t == VL_BF16) return (size_t)K * sizeof(uint16_t);
  if (t == VL_Q8_0) return (size_t)(K / VL_Q8_0_BLOCK) * sizeof(float) + (size_t)K;
  return 0;
}

/* Q8_0 x: nb scales, then the K int8 values right after them. */
static const int8_t *q8_values(const void *xr, int64_t nb) {
  return (const int8_t *)((const float *)xr + nb);
}

void vl_round_x(vl_dtype t, const float *x, int64_t K, void *xr) {
  if (t == VL_BF16) {
    uint16_t *o = xr;
    for (int64_t i = 0; i < K; i++)
      o[i] = vl_f32_to_bf16(x[i]);
    return;
  }
  if (t != VL_Q8_0) return;
  const int64_t nb = K / VL_Q8_0_BLOCK;
  float *d = xr;
  int8_t *q = (int8_t *)q8_values(xr, nb);
  uint8_t blk[VL_Q8_0_BYTES];
  for (int64_t b = 0; b < nb; b++) { /* the weights' quantiser, block by block */
    vl_q8_0_quantize_row(x + b * VL_Q8_0_BLOCK, blk, VL_Q8_0_BLOCK);
    uint16_t h;
    memcpy(&h, blk, 2);
    d[b] = vl_f16_to_f32(h);
    memcpy(q + b * VL_Q8_0_BLOCK, blk + 2, VL_Q8_0_BLOCK);
  }
}

/* ---- kernels ----------------------------------------------------------- */

/* y[r] = dot(row r, x) for r < n, rows rs bytes apart; K values (BF16) or
 * nb = K/32 blocks (Q8_0). */
typedef void (*rows_fn)(const uint8_t *W, size_t rs, int64_t n, const void *xr, int64_t K,
                        float *y);

static float w_scale(const uint8_t *b) {
  uint16_t h;
  memcpy(&h, b, 2);
  return vl_f16_to_f32(h);
}

static void q8_rows_scalar(const uint8_t *W, size_t rs, int64_t n, const void *xr, int64_t K,
                           float *y) {
  const int64_t nb = K / VL_Q8_0_BLOCK;
  const float *xd = xr;
  const int8_t *xq = q8_values(xr, nb);
  for (int64_t r = 0; r < n; r++) {
    const uint8_t *b = W + (size_t)r * rs;
    float acc = 0.0f;
    for (int64_t k = 0; k < nb; k++, b += VL_Q8_0_BYTES) {
      int32_t s = 0;
      for (int i = 0; i < VL_Q8_0_BLOCK; i++)
        s += (int8_t)b[2 + i] * xq[k * VL_Q8_0_BLOCK + i];
      acc += w_scale(b) * xd[k] * (float)s;
    }
    y[r] = acc;
  }
}

static void bf16_rows_scalar(const uint8_t *W, size_t rs, int64_t n, const void *xr, int64_t K,
                             float *y) {
  const uint16_t *x = xr;
  for (int64_t r = 0; r < n; r++) {
    const uint16_t *w = (const uint16_t *)(W + (size_t)r * rs);
    float acc = 0.0f;
    for (int64_t k = 0; k < K; k++)
      acc += vl_bf16_to_f32(w[k]) * vl_bf16_to_f32(x[k]);
    y[r] = acc;
  }
}

#define T256 __attribute__((target("avx2,fma,f16c")))
#define TVNNI __attribute__((target("avx512f,avx512vl,avx512vnni,avx2,fma,f16c")))
#define TBF16 __attribute__((target("avx512f,avx512bw,avx512bf16,avx2,fma")))

/* Eight int32 partial sums of w . x over a block: the sign of w moved onto
 * x so that the unsigned-times-signed multiply-add instructions apply
 * (|w| <= 127, so no pair saturates int16 in maddubs). */
T256 static inline __m256i q8_block_avx2(__m256i w, __m256i x) {
  const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

TVNNI static inline __m256i q8_block_vnni(__m256i w, __m256i x) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w),
                             _mm256_sign_epi8(x, w));
}

/* Eight rows share each x block load; eight independent row streams keep
 * enough loads in flight (as in quant.c's exact kernel). The body is the
 * same for both instruction sets, so it is written once as a macro. */
#define Q8_ROWS 8
#define Q8_ROWS_BODY(BLOCK_SUM)                                                                    \
  const int64_t nb = K / VL_Q8_0_BLOCK;                                                            \
  const float *xd = xr;                                                                            \
  const int8_t *xq = q8_values(xr, nb);                                                            \
  const size_t pf = vl_prefetch_step(Q8_ROWS * rs, nb);                                            \
  int64_t r = 0;                                                                                   \
  for (; r + Q8_ROWS <= n; r += Q8_ROWS, W += Q8_ROWS * rs) {                                      \
    __m256 a[Q8_ROWS];                                                                             \
    _Pragma("GCC unroll 8") for (int i = 0; i < Q8_ROWS; i++) a[i] = _mm256_setzero_ps();          \
    for (int64_t k = 0; k < nb; k++) {                                                             \
      const __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + k * VL_Q8_0_BLOCK));            \
      const size_t o = (size_t)k * VL_Q8_0_BYTES;                                                  \
      vl_prefetch_slice(W + Q8_ROWS * rs, pf, k);                                                  \
      _Pragma("GCC unroll 8") for (int i = 0; i < Q8_ROWS; i++) {                                  \
        const uint8_t *b = W + (size_t)i * rs + o;                                                 \
        const __m256i s = BLOCK_SUM(_mm256_loadu_si256((const __m256i *)(b + 2)), xv);             \
        a[i] = _mm256_fmadd_ps(_mm256_set1_ps(vl_f16_at(b) * xd[k]), _mm256_cvtepi32_ps(s), a[i]); \
      }                                                                                            \
    }                                                                                              \
    _Pragma("GCC unroll 8") for (int i = 0; i < Q8_ROWS; i++) y[r + i] = vl_hsum256(a[i]);         \
  }                                                                                                \
  for (; r < n; r++, W += rs) {                                                                    \
    __m256 a = _mm256_setzero_ps();                                                                \
    for (int64_t k = 0; k < nb; k++) {                                                             \
      const uint8_t *b = W + (size_t)k * VL_Q8_0_BYTES;                                            \
      const __m256i s = BLOCK_SUM(_mm256_loadu_si256((const __m256i *)(b + 2)),                    \
                                  _mm256_loadu_si256((const __m256i *)(xq + k * VL_Q8_0_BLOCK)));  \
      a = _mm256_fmadd_ps(_mm256_set1_ps(vl_f16_at(b) * xd[k]), _mm256_cvtepi32_ps(s), a);         \
    }                                                                                              \
    y[r] = vl_hsum256(a);                                                                          \
  }

T256 static void q8_rows_avx2(const uint8_t *W, size_t rs, int64_t n, const void *xr, int64_t K,
                              float *y){Q8_ROWS_BODY(q8_block_avx2)}

TVNNI static void q8_rows_vnni(const uint8_t *W, size_t rs, int64_t n, const void *xr, int64_t K,
                               float *y){Q8_ROWS_BODY(q8_block_vnni)}

/* BF16 without the dot-product instructions: both sides widened to F32. */
T256 static inline __m256 bf16x8(const uint16_t *p) {
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

T256 static void bf16_rows_avx2(const uint8_t *W, size_t rs, int64_t n, const void *xr, int64_t K,
                                float *y) {
  const uint16_t *x = xr;
  for (int64_t r = 0; r < n; r++) {
    const uint16_t *w = (const uint16_t *)(W + (size_t)r * rs);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      a0 = _mm256_fmadd_ps(bf16x8(w + k), bf16x8(x + k), a0);
      a1 = _mm256_fmadd_ps(bf16x8(w + k + 8), bf16x8(x + k + 8), a1);
    }
    float s = vl_hsum256(_mm256_add_ps(a0, a1));
    for (; k < K; k++)
      s += vl_bf16_to_f32(w[k]) * vl_bf16_to_f32(x[k]);
    y[r] = s;
  }
}

TBF16 static inline __m512bh bh_load(const uint16_t *p, __mmask32 m) {
  return (__m512bh)_mm512_maskz_loadu_epi16(m, p);
}

/* One row at a time, 128 values per step in four accumulators (they hide the
 * instruction's latency): the rows are one sequential stream for the hardware
 * prefetcher, which is what decode needs. Four rows at a time (the kernel
 * before) read four short interleaved streams and decoded Qwen2.5-0.5B at
 * 44-50 against 52-54 tok/s (docs/benchmarks.md). No software prefetch. */
TBF16 static void bf16_rows_avx512(const uint8_t *W, size_t rs, int64_t n, const void *xr,
                                   int64_t K, float *y) {
  const uint16_t *x = xr;
  const __mmask32 all = 0xFFFFFFFFu;
  for (int64_t r = 0; r < n; r++, W += rs) {
    const uint16_t *w = (const uint16_t *)W;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t k = 0;
    for (; k + 128 <= K; k += 128) {
      a0 = _mm512_dpbf16_ps(a0, bh_load(w + k, all), bh_load(x + k, all));
      a1 = _mm512_dpbf16_ps(a1, bh_load(w + k + 32, all), bh_load(x + k + 32, all));
      a2 = _mm512_dpbf16_ps(a2, bh_load(w + k + 64, all), bh_load(x + k + 64, all));
      a3 = _mm512_dpbf16_ps(a3, bh_load(w + k + 96, all), bh_load(x + k + 96, all));
    }
    for (; k < K; k += 32) {
      const __mmask32 m = K - k >= 32 ? all : (__mmask32)((1u << (K - k)) - 1);
      a0 = _mm512_dpbf16_ps(a0, bh_load(w + k, m), bh_load(x + k, m));
    }
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  }
}

/* ---- selection --------------------------------------------------------- */

static vl_rdot_kernel g_kernel;

static bool avx2_ok(void) {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
}

/* AVX512 here means both instruction extensions this file uses. */
static bool kernel_ok(vl_rdot_kernel k) {
  switch (k) {
  case VL_RDOT_SCALAR:
  case VL_RDOT_AUTO: return true;
  case VL_RDOT_AVX2: return avx2_ok();
  case VL_RDOT_AVX512:
    return avx2_ok() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
           __builtin_cpu_supports("avx512bf16");
  }
  return false;
}

bool vl_rdot_set_kernel(vl_rdot_kernel k) {
  if (!kernel_ok(k)) return false;
  __atomic_store_n(&g_kernel, k, __ATOMIC_RELAXED);
  return true;
}

static rows_fn pick(vl_dtype t) {
  vl_rdot_kernel k = __atomic_load_n(&g_kernel, __ATOMIC_RELAXED);
  if (k == VL_RDOT_AUTO)
    k = kernel_ok(VL_RDOT_AVX512) ? VL_RDOT_AVX512
        : kernel_ok(VL_RDOT_AVX2) ? VL_RDOT_AVX2
                                  : VL_RDOT_SCALAR;
  if (t == VL_BF16)
    return k == VL_RDOT_AVX512 ? bf16_rows_avx512
           : k == VL_RDOT_AVX2 ? bf16_rows_avx2
                               : bf16_rows_scalar;
  return k == VL_RDOT_AVX512 ? q8_rows_vnni : k == VL_RDOT_AVX2 ? q8_rows_avx2 : q8_rows_scalar;
}

void vl_gemv_rows_rounded(const vl_tensor *w, int64_t r0, int64_t n, const void *xr, float *y) {
  const int64_t K = w->shape[1];
  if (n <= 0 || !vl_rounded_dot_supports(w->dtype, K)) return;
  const size_t rs = vl_dtype_bytes(w->dtype, K);
  pick(w->dtype)((const uint8_t *)w->data + (size_t)r0 * rs, rs, n, xr, K, y);
}
