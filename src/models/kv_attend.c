/* Decode attention straight over the KV cache, and F32 <-> F16 rows.
 *
 * One query position reads every cached key and value of every layer, so at
 * a long context the cache is a large part of the bytes a decode step reads
 * (Qwen3-0.6B at 576 positions: 132 MB F32, 66 MB F16). This kernel reads
 * the rows as stored (F16 widened in registers or a row-sized buffer) and
 * does all arithmetic in F32; the prefill keeps the general attention op.
 *
 * Work is split by kv head: each task reads its kv head's rows once for all
 * query heads of its group. Kernels are picked at run time (F16C + AVX2 or
 * AVX-512, else portable C), like tensor/quant.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/half.h"
#include "base/threads.h"
#include "models/kv_cache.h"
#include "tensor/vmath.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---- row kernels -------------------------------------------------------- */

typedef struct {
  void (*narrow)(const float *x, uint16_t *y, int64_t n);
  void (*widen)(const uint16_t *x, float *y, int64_t n);
  float (*dot)(const float *a, const float *b, int64_t n);
  void (*axpy)(float a, const float *x, float *y, int64_t n); /* y += a x */
} row_kernels;

static void narrow_scalar(const float *x, uint16_t *y, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    y[i] = vl_f32_to_f16(x[i]);
}

static void widen_scalar(const uint16_t *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    y[i] = vl_f16_to_f32(x[i]);
}

static float dot_scalar(const float *a, const float *b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; i++)
    s += a[i] * b[i];
  return s;
}

static void axpy_scalar(float a, const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    y[i] += a * x[i];
}

static const row_kernels k_scalar = {narrow_scalar, widen_scalar, dot_scalar, axpy_scalar};

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

T256 static float dot_avx2(const float *a, const float *b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8)
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(_mm256_add_ps(s0, s1)),
                        _mm256_extractf128_ps(_mm256_add_ps(s0, s1), 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  float r = _mm_cvtss_f32(s);
  for (; i < n; i++)
    r += a[i] * b[i];
  return r;
}

T256 static void axpy_avx2(float a, const float *x, float *y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++)
    y[i] += a * x[i];
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

T512 static float dot_avx512(const float *a, const float *b, int64_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
  }
  for (; i + 16 <= n; i += 16)
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  float r = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
  for (; i < n; i++)
    r += a[i] * b[i];
  return r;
}

T512 static void axpy_avx512(float a, const float *x, float *y, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  for (; i < n; i++)
    y[i] += a * x[i];
}

static const row_kernels k_avx2 = {narrow_avx2, widen_avx2, dot_avx2, axpy_avx2};
static const row_kernels k_avx512 = {narrow_avx512, widen_avx512, dot_avx512, axpy_avx512};
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

#define MAX_DIM 4096 /* head_dim limit of the config parser */
#define AHEAD 8      /* rows prefetched ahead: one kv head's rows are strided */

typedef struct {
  const row_kernels *rk;
  const vl_kv_cache *kv;
  int l;
  int64_t n, group;
  const float *q;
  float scale;
  float *S, *out; /* scores (heads, n); output (heads, D) */
} attend_job;

/* Row j of kv head hk of K or V (base) as F32: the cache row itself, or
 * widened into buf. */
static const float *row_f32(const attend_job *J, const void *base, int64_t j, int64_t hk,
                            float *buf) {
  const vl_kv_cache *kv = J->kv;
  const int64_t D = kv->head_dim;
  const size_t at = (size_t)((j * kv->n_kv_heads + hk) * D);
  const size_t ahead = (size_t)(AHEAD * kv->n_kv_heads * D);
  if (kv->dtype == VL_F32) {
    const float *r = (const float *)base + at;
    if (j + AHEAD < J->n)
      for (int64_t b = 0; b < D; b += 16)
        __builtin_prefetch(r + ahead + b);
    return r;
  }
  const uint16_t *r = (const uint16_t *)base + at;
  if (j + AHEAD < J->n)
    for (int64_t b = 0; b < D; b += 32)
      __builtin_prefetch(r + ahead + b);
  J->rk->widen(r, buf, D);
  return buf;
}

/* s[0..n) = softmax(s), 16 float lanes so the loops vectorise. */
VL_VEC_CLONES static void softmax_inplace(float *s, int64_t n) {
  float m[16], a[16];
  for (int i = 0; i < 16; i++)
    m[i] = -INFINITY, a[i] = 0.0f;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int i = 0; i < 16; i++)
      m[i] = s[j + i] > m[i] ? s[j + i] : m[i];
  float mx = -INFINITY;
  for (; j < n; j++)
    mx = s[j] > mx ? s[j] : mx;
  for (int i = 0; i < 16; i++)
    mx = m[i] > mx ? m[i] : mx;
  if (mx == -INFINITY) { /* every score -inf: nothing to attend to */
    for (j = 0; j < n; j++)
      s[j] = 0.0f;
    return;
  }
  for (j = 0; j + 16 <= n; j += 16)
    for (int i = 0; i < 16; i++) {
      float e = vl_expf(s[j + i] - mx);
      s[j + i] = e;
      a[i] += e;
    }
  float sum = 0.0f;
  for (; j < n; j++) {
    s[j] = vl_expf(s[j] - mx);
    sum += s[j];
  }
  for (int i = 0; i < 16; i++)
    sum += a[i];
  const float inv = 1.0f / sum;
  for (j = 0; j < n; j++)
    s[j] *= inv;
}

/* kv heads [h0, h1), each with the `group` query heads that read it. */
static void attend_range(void *arg, int64_t h0, int64_t h1, int worker) {
  const attend_job *J = arg;
  const vl_kv_cache *kv = J->kv;
  const int64_t D = kv->head_dim, n = J->n, G = J->group;
  float buf[MAX_DIM];
  (void)worker;
  for (int64_t hk = h0; hk < h1; hk++) {
    const float *q = J->q + hk * G * D;
    float *S = J->S + hk * G * n, *out = J->out + hk * G * D;
    for (int64_t j = 0; j < n; j++) {
      const float *k = row_f32(J, kv->k[J->l], j, hk, buf);
      for (int64_t g = 0; g < G; g++)
        S[g * n + j] = J->scale * J->rk->dot(q + g * D, k, D);
    }
    for (int64_t g = 0; g < G; g++)
      softmax_inplace(S + g * n, n);
    memset(out, 0, (size_t)(G * D) * sizeof *out);
    for (int64_t j = 0; j < n; j++) {
      const float *v = row_f32(J, kv->v[J->l], j, hk, buf);
      for (int64_t g = 0; g < G; g++)
        J->rk->axpy(S[g * n + j], v, out + g * D, D);
    }
  }
}

int vl_kv_attend(const vl_kv_cache *kv, int l, int64_t n, const float *q, int64_t n_heads,
                 float scale, float *scratch, float *out) {
  if (!kv || l < 0 || l >= kv->n_layers || n < 1 || n > kv->capacity || !q || !scratch || !out ||
      n_heads < kv->n_kv_heads || n_heads % kv->n_kv_heads || kv->head_dim > MAX_DIM)
    return vl_error(VL_ERR_INVALID,
                    "kv attend: layer %d, %lld positions, %lld query heads do not fit the cache", l,
                    (long long)n, (long long)n_heads);
  attend_job J = {.rk = kernels(),
                  .kv = kv,
                  .l = l,
                  .n = n,
                  .group = n_heads / kv->n_kv_heads,
                  .q = q,
                  .scale = scale,
                  .S = scratch,
                  .out = out};
  /* A pool hand-off costs tens of microseconds on shared cores: only worth
   * it when the heads read a fair amount of cache (~256 KB or more). */
  const double bytes =
      2.0 * (double)n * (double)(kv->n_kv_heads * kv->head_dim) * (double)vl_dtype_size(kv->dtype);
  if (bytes >= 262144.0)
    vl_parallel_for(kv->n_kv_heads, 1, attend_range, &J);
  else
    attend_range(&J, 0, kv->n_kv_heads, 0);
  return VL_OK;
}
