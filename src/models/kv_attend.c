/* Decode attention straight over an F16 KV cache, and F32 <-> F16 rows.
 *
 * One query position reads every cached key and value of every layer, so at
 * a long context the cache is a large part of the bytes a decode step reads
 * (Qwen3-0.6B at 576 positions: 132 MB F32, 66 MB F16). This kernel reads
 * the cache as stored, widening F16 in registers, and does all arithmetic
 * in F32; the prefill keeps the general attention op over widened copies.
 *
 * The F16 layout (kv_cache.h) makes both products whole-vector work with no
 * horizontal sums: scores for 16 positions are head_dim multiply-adds of a
 * key block's rows (transposed) by broadcast query elements; the output is
 * probability-weighted value rows added into register accumulators. Each
 * kv head's keys and values are read once, in order, for all the query
 * heads of its group; kv heads are split over the pool. Kernels are picked
 * at run time (AVX-512, else portable C; the conversions also have an
 * F16C + AVX2 kernel), like tensor/quant.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/half.h"
#include "base/threads.h"
#include "models/kv_cache.h"
#include "tensor/ops.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---- row kernels -------------------------------------------------------- */

typedef struct {
  void (*narrow)(const float *x, uint16_t *y, int64_t n);
  void (*widen)(const uint16_t *x, float *y, int64_t n);
} row_kernels;

static void narrow_scalar(const float *x, uint16_t *y, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    y[i] = vl_f32_to_f16(x[i]);
}

static void widen_scalar(const uint16_t *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    y[i] = vl_f16_to_f32(x[i]);
}

static const row_kernels k_scalar = {narrow_scalar, widen_scalar};

#if defined(__x86_64__)
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define T256 __attribute__((target("avx2,fma,f16c")))
#define RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

T256 static void narrow_avx2(const float *x, uint16_t *y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), RNE));
  for (; i < n; i++)
    y[i] = vl_f32_to_f16(x[i]);
}

T256 static void widen_avx2(const uint16_t *x, float *y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
  for (; i < n; i++)
    y[i] = vl_f16_to_f32(x[i]);
}

T512 static void narrow_avx512(const float *x, uint16_t *y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i), RNE));
  narrow_avx2(x + i, y + i, n - i);
}

T512 static void widen_avx512(const uint16_t *x, float *y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
  widen_avx2(x + i, y + i, n - i);
}

static const row_kernels k_avx2 = {narrow_avx2, widen_avx2};
static const row_kernels k_avx512 = {narrow_avx512, widen_avx512};
#endif

static int g_kernel; /* vl_kv_kernel, atomic */

static bool kernel_ok(vl_kv_kernel k) {
  switch (k) {
  case VL_KV_AUTO:
  case VL_KV_SCALAR: return true;
#if defined(__x86_64__)
  case VL_KV_AVX2:
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
  case VL_KV_AVX512:
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && kernel_ok(VL_KV_AVX2);
#else
  default: return false;
#endif
  }
  return false;
}

bool vl_kv_set_kernel(vl_kv_kernel k) {
  if (!kernel_ok(k)) return false;
  __atomic_store_n(&g_kernel, (int)k, __ATOMIC_RELAXED);
  return true;
}

static const row_kernels *kernels(void) {
  vl_kv_kernel k = (vl_kv_kernel)__atomic_load_n(&g_kernel, __ATOMIC_RELAXED);
  if (k == VL_KV_AUTO)
    k = kernel_ok(VL_KV_AVX512) ? VL_KV_AVX512 : kernel_ok(VL_KV_AVX2) ? VL_KV_AVX2 : VL_KV_SCALAR;
#if defined(__x86_64__)
  if (k == VL_KV_AVX512) return &k_avx512;
  if (k == VL_KV_AVX2) return &k_avx2;
#endif
  return &k_scalar;
}

void vl_kv_f32_to_f16(const float *x, uint16_t *y, int64_t n) { kernels()->narrow(x, y, n); }
void vl_kv_f16_to_f32(const uint16_t *x, float *y, int64_t n) { kernels()->widen(x, y, n); }

/* ---- attention ---------------------------------------------------------- */

#define B VL_KV_BLOCK

typedef struct {
  const row_kernels *rk;
  bool avx512;
  const vl_kv_cache *kv;
  int l;
  int64_t n, np, group; /* positions, n rounded up to B, query heads per kv head */
  const float *q;
  float scale;
  float *S, *out; /* scores (heads, np); output (heads, D) */
} attend_job;

/* Portable: scores of NG <= 8 queries (ldq apart) for one key block Kb (D x
 * B halves) into S (rows lds apart), B lanes each. */
static void scores_c(const row_kernels *rk, const uint16_t *Kb, int64_t D, const float *q,
                     int64_t ldq, int ng, float scale, float *S, int64_t lds) {
  float acc[8][B] = {{0}}, k[B];
  for (int64_t d = 0; d < D; d++) {
    rk->widen(Kb + d * B, k, B);
    for (int g = 0; g < ng; g++)
      for (int i = 0; i < B; i++)
        acc[g][i] += q[g * ldq + d] * k[i];
  }
  for (int g = 0; g < ng; g++)
    for (int i = 0; i < B; i++)
      S[g * lds + i] = scale * acc[g][i];
}

/* Portable: out (G rows, ldo apart) = sum_j p[g][j] V[j], n rows of D. */
static void values_c(const row_kernels *rk, const uint16_t *V, int64_t D, const float *S,
                     int64_t lds, int64_t n, int64_t G, float *out, int64_t ldo) {
  float v[4096]; /* head_dim <= 4096 */
  for (int64_t g = 0; g < G; g++)
    memset(out + g * ldo, 0, (size_t)D * sizeof *out);
  for (int64_t j = 0; j < n; j++) {
    rk->widen(V + j * D, v, D);
    for (int64_t g = 0; g < G; g++) {
      const float p = S[g * lds + j];
      for (int64_t d = 0; d < D; d++)
        out[g * ldo + d] += p * v[d];
    }
  }
}

#if defined(__x86_64__)
#define INL __attribute__((always_inline)) inline

/* scores_c for NG queries; P partial sums per query over d so that NG * P
 * independent multiply-add chains hide the latency. */
T512 static INL void scores512(const uint16_t *Kb, int64_t D, const float *q, int64_t ldq,
                               const int NG, const int P, float scale, float *S, int64_t lds) {
  __m512 acc[8][4];
#pragma GCC unroll 8
  for (int g = 0; g < NG; g++)
#pragma GCC unroll 4
    for (int p = 0; p < P; p++)
      acc[g][p] = _mm512_setzero_ps();
  int64_t d = 0;
  for (; d + P <= D; d += P)
#pragma GCC unroll 4
    for (int p = 0; p < P; p++) {
      const __m512 k = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(Kb + (d + p) * B)));
#pragma GCC unroll 8
      for (int g = 0; g < NG; g++)
        acc[g][p] = _mm512_fmadd_ps(_mm512_set1_ps(q[g * ldq + d + p]), k, acc[g][p]);
    }
  for (; d < D; d++) {
    const __m512 k = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(Kb + d * B)));
#pragma GCC unroll 8
    for (int g = 0; g < NG; g++)
      acc[g][0] = _mm512_fmadd_ps(_mm512_set1_ps(q[g * ldq + d]), k, acc[g][0]);
  }
  const __m512 sc = _mm512_set1_ps(scale);
#pragma GCC unroll 8
  for (int g = 0; g < NG; g++) {
    __m512 a = acc[g][0];
#pragma GCC unroll 4
    for (int p = 1; p < P; p++)
      a = _mm512_add_ps(a, acc[g][p]);
    _mm512_storeu_ps(S + g * lds, _mm512_mul_ps(a, sc));
  }
}

T512 static void scores_avx512(const uint16_t *Kb, int64_t D, const float *q, int64_t ldq, int ng,
                               float scale, float *S, int64_t lds) {
  switch (ng) {
  case 1: scores512(Kb, D, q, ldq, 1, 4, scale, S, lds); break;
  case 2: scores512(Kb, D, q, ldq, 2, 2, scale, S, lds); break;
  case 3: scores512(Kb, D, q, ldq, 3, 2, scale, S, lds); break;
  case 4: scores512(Kb, D, q, ldq, 4, 1, scale, S, lds); break;
  case 5: scores512(Kb, D, q, ldq, 5, 1, scale, S, lds); break;
  case 6: scores512(Kb, D, q, ldq, 6, 1, scale, S, lds); break;
  case 7: scores512(Kb, D, q, ldq, 7, 1, scale, S, lds); break;
  default: scores512(Kb, D, q, ldq, 8, 1, scale, S, lds); break;
  }
}

/* values_c for NG queries and NC 16-float columns of the output (V and out
 * point at the first column): NG * NC accumulators in registers over all n
 * rows. */
T512 static INL void values512(const uint16_t *V, int64_t ldv, const float *S, int64_t lds,
                               int64_t n, const int NG, const int NC, float *out, int64_t ldo) {
  __m512 acc[8][8];
#pragma GCC unroll 8
  for (int g = 0; g < NG; g++)
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++)
      acc[g][c] = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j++) {
    __m512 v[8];
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++)
      v[c] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(V + j * ldv + c * 16)));
#pragma GCC unroll 8
    for (int g = 0; g < NG; g++) {
      const __m512 p = _mm512_set1_ps(S[g * lds + j]);
#pragma GCC unroll 8
      for (int c = 0; c < NC; c++)
        acc[g][c] = _mm512_fmadd_ps(p, v[c], acc[g][c]);
    }
  }
#pragma GCC unroll 8
  for (int g = 0; g < NG; g++)
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++)
      _mm512_storeu_ps(out + g * ldo + c * 16, acc[g][c]);
}

/* NC columns (1, 2, 4 or 8) and NG <= 16 / NC queries at a time. */
#define VCASE(NG, NC)                                                                              \
  case NG * 16 + NC: values512(V, ldv, S, lds, n, NG, NC, out, ldo); break
T512 static void values_tile512(const uint16_t *V, int64_t ldv, const float *S, int64_t lds,
                                int64_t n, int ng, int nc, float *out, int64_t ldo) {
  switch (ng * 16 + nc) {
    VCASE(1, 8);
    VCASE(2, 8);
    VCASE(1, 4);
    VCASE(2, 4);
    VCASE(3, 4);
    VCASE(4, 4);
    VCASE(1, 2);
    VCASE(2, 2);
    VCASE(3, 2);
    VCASE(4, 2);
    VCASE(5, 2);
    VCASE(6, 2);
    VCASE(7, 2);
    VCASE(8, 2);
    VCASE(1, 1);
    VCASE(2, 1);
    VCASE(3, 1);
    VCASE(4, 1);
    VCASE(5, 1);
    VCASE(6, 1);
    VCASE(7, 1);
    VCASE(8, 1);
  default: break; /* not reached: callers pick from the cases above */
  }
}
#undef VCASE

/* values_c with D a multiple of 16. */
T512 static void values_avx512(const uint16_t *V, int64_t D, const float *S, int64_t lds, int64_t n,
                               int64_t G, float *out, int64_t ldo) {
  const int nc = D % 128 == 0 ? 8 : D % 64 == 0 ? 4 : D % 32 == 0 ? 2 : 1;
  const int gmax = nc == 8 ? 2 : nc == 4 ? 4 : 8;
  for (int64_t g0 = 0; g0 < G; g0 += gmax) {
    const int ng = (int)(G - g0 < gmax ? G - g0 : gmax);
    for (int64_t c0 = 0; c0 < D; c0 += 16 * nc)
      values_tile512(V + c0, D, S + g0 * lds, lds, n, ng, nc, out + g0 * ldo + c0, ldo);
  }
}
#endif

/* kv heads [h0, h1), each with the `group` query heads that read it. */
static void attend_range(void *arg, int64_t h0, int64_t h1, int worker) {
  const attend_job *J = arg;
  const vl_kv_cache *kv = J->kv;
  const int64_t D = kv->head_dim, G = J->group, np = J->np;
  const int64_t key_blocks = (kv->capacity + B - 1) / B;
  (void)worker;
  for (int64_t hk = h0; hk < h1; hk++) {
    const uint16_t *K = (const uint16_t *)kv->k[J->l] + hk * key_blocks * D * B;
    const uint16_t *V = (const uint16_t *)kv->v[J->l] + hk * kv->capacity * D;
    const float *q = J->q + hk * G * D;
    float *S = J->S + hk * G * np, *out = J->out + hk * G * D;
    for (int64_t j0 = 0; j0 < J->n; j0 += B)
      for (int64_t g0 = 0; g0 < G; g0 += 8) {
        const int ng = (int)(G - g0 < 8 ? G - g0 : 8);
#if defined(__x86_64__)
        if (J->avx512) {
          scores_avx512(K + j0 * D, D, q + g0 * D, D, ng, J->scale, S + g0 * np + j0, np);
          continue;
        }
#endif
        scores_c(J->rk, K + j0 * D, D, q + g0 * D, D, ng, J->scale, S + g0 * np + j0, np);
      }
    for (int64_t g = 0; g < G; g++)
      vl_softmax_inplace(S + g * np, J->n);
#if defined(__x86_64__)
    if (J->avx512 && D % 16 == 0) {
      values_avx512(V, D, S, np, J->n, G, out, D);
      continue;
    }
#endif
    values_c(J->rk, V, D, S, np, J->n, G, out, D);
  }
}

int64_t vl_kv_attend_scratch(int64_t n, int64_t n_heads) { return n_heads * ((n + B - 1) / B * B); }

int vl_kv_attend(const vl_kv_cache *kv, int l, int64_t n, const float *q, int64_t n_heads,
                 float scale, float *scratch, float *out) {
  if (!kv || kv->dtype != VL_F16 || l < 0 || l >= kv->n_layers || n < 1 || n > kv->capacity || !q ||
      !scratch || !out || n_heads < kv->n_kv_heads || n_heads % kv->n_kv_heads)
    return vl_error(VL_ERR_INVALID,
                    "kv attend: layer %d, %lld positions, %lld query heads do not fit the cache "
                    "(F16)",
                    l, (long long)n, (long long)n_heads);
  const row_kernels *rk = kernels();
  attend_job J = {
    .rk = rk,
#if defined(__x86_64__)
    .avx512 = rk == &k_avx512,
#endif
    .kv = kv,
    .l = l,
    .n = n,
    .np = (n + B - 1) / B * B,
    .group = n_heads / kv->n_kv_heads,
    .q = q,
    .scale = scale,
    .S = scratch,
    .out = out
  };
  /* Over the pool only from ~1e7 flops (Qwen3-0.6B: ~1200 positions), the
   * threshold of vl_gemm and vl_attention's head loops: below it, waking a
   * worker on shared cores costs more than it saves (bench_kv_attend at 576
   * positions, 2 threads on a busy machine: 13 ms per token instead of 3.4). */
  const double flops = 4.0 * (double)n_heads * (double)n * (double)kv->head_dim;
  if (flops >= 1e7 && kv->n_kv_heads > 1)
    vl_parallel_for(kv->n_kv_heads, 1, attend_range, &J);
  else
    attend_range(&J, 0, kv->n_kv_heads, 0);
  return VL_OK;
}
