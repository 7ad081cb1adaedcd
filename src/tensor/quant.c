/* Q8_0 blocks: quantise/dequantise, GEMV/GEMM kernels, linear and embedding
 * ops. See quant.h. */
#include "tensor/quant.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/half.h"
#include "base/threads.h"
#include "tensor/gemm.h"
#include "tensor/ops.h"
#include "tensor/prefetch.h"
#include "tensor/simd_x86.h"

/* ---- blocks ------------------------------------------------------------ */

static float block_scale(const uint8_t *b) {
  uint16_t d;
  memcpy(&d, b, 2);
  return vl_f16_to_f32(d);
}

void vl_q8_0_quantize_row(const float *x, void *dst, int64_t n) {
  uint8_t *o = dst;
  for (int64_t b = 0; b < n / VL_Q8_0_BLOCK; b++, x += VL_Q8_0_BLOCK, o += VL_Q8_0_BYTES) {
    float amax = 0.0f;
    for (int i = 0; i < VL_Q8_0_BLOCK; i++)
      amax = fmaxf(amax, fabsf(x[i]));
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    uint16_t h = vl_f32_to_f16(d);
    memcpy(o, &h, 2);
    for (int i = 0; i < VL_Q8_0_BLOCK; i++)
      o[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id); /* roundf: half away from zero */
  }
}

void vl_q8_0_dequantize_row(const void *src, float *dst, int64_t n) {
  const uint8_t *b = src;
  for (int64_t k = 0; k < n / VL_Q8_0_BLOCK; k++, b += VL_Q8_0_BYTES, dst += VL_Q8_0_BLOCK) {
    const float d = block_scale(b);
    for (int i = 0; i < VL_Q8_0_BLOCK; i++)
      dst[i] = d * (float)(int8_t)b[2 + i];
  }
}

/* ---- dot kernels: NR rows of W against x ------------------------------- */

/* y[r] = dot(row r, x) for r < 4 (rows rs bytes apart), nb blocks. */
typedef void (*dot4_fn)(const uint8_t *W, size_t rs, int nr, const float *x, int64_t nb, float *y);

static void dot4_scalar(const uint8_t *W, size_t rs, int nr, const float *x, int64_t nb, float *y) {
  for (int r = 0; r < nr; r++) {
    const uint8_t *b = W + (size_t)r * rs;
    float acc = 0.0f;
    for (int64_t k = 0; k < nb; k++, b += VL_Q8_0_BYTES) {
      const float *xb = x + k * VL_Q8_0_BLOCK;
      float s = 0.0f;
      for (int i = 0; i < VL_Q8_0_BLOCK; i++)
        s += (float)(int8_t)b[2 + i] * xb[i];
      acc += block_scale(b) * s;
    }
    y[r] = acc;
  }
}

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define T256 __attribute__((target("avx2,fma,f16c")))

T512 static inline __m512 q16_avx512(const uint8_t *p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

/* Eight rows at once: x is loaded once per block for all of them, and
 * eight independent row streams keep enough cache misses in flight; with
 * four, the GEMV read Q8_0 weights at half the bytes/s of BF16 (the same
 * elements/s), so Q8_0 was no faster. */
#define Q8_ROWS 8
T512 static void dot8_avx512(const uint8_t *W, size_t rs, const float *x, int64_t nb, float *y) {
  __m512 a[Q8_ROWS];
#pragma GCC unroll 8
  for (int r = 0; r < Q8_ROWS; r++)
    a[r] = _mm512_setzero_ps();
  const size_t pf = vl_prefetch_step(Q8_ROWS * rs, nb);
  for (int64_t k = 0; k < nb; k++) {
    const size_t o = (size_t)k * VL_Q8_0_BYTES;
    const __m512 x0 = _mm512_loadu_ps(x + k * VL_Q8_0_BLOCK);
    const __m512 x1 = _mm512_loadu_ps(x + k * VL_Q8_0_BLOCK + 16);
    vl_prefetch_slice(W + Q8_ROWS * rs, pf, k);
#pragma GCC unroll 8
    for (int r = 0; r < Q8_ROWS; r++) {
      const uint8_t *b = W + (size_t)r * rs + o;
      __m512 s = _mm512_mul_ps(q16_avx512(b + 2), x0);
      s = _mm512_fmadd_ps(q16_avx512(b + 18), x1, s);
      a[r] = _mm512_fmadd_ps(_mm512_set1_ps(vl_f16_at(b)), s, a[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < Q8_ROWS; r++)
    y[r] = _mm512_reduce_add_ps(a[r]);
}

/* Up to four rows (the remainder of a GEMV). */
T512 static void dot4_avx512(const uint8_t *W, size_t rs, int nr, const float *x, int64_t nb,
                             float *y) {
  for (int r = 0; r < nr; r++) {
    const uint8_t *b = W + (size_t)r * rs;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t k = 0; k < nb; k++, b += VL_Q8_0_BYTES) {
      const float *xb = x + k * VL_Q8_0_BLOCK;
      __m512 s = _mm512_mul_ps(q16_avx512(b + 2), _mm512_loadu_ps(xb));
      s = _mm512_fmadd_ps(q16_avx512(b + 18), _mm512_loadu_ps(xb + 16), s);
      acc = _mm512_fmadd_ps(_mm512_set1_ps(vl_f16_at(b)), s, acc);
    }
    y[r] = _mm512_reduce_add_ps(acc);
  }
}

T256 static inline __m256 q8_avx2(const uint8_t *p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

T256 static void dot4_avx2(const uint8_t *W, size_t rs, int nr, const float *x, int64_t nb,
                           float *y) {
  for (int r = 0; r < nr; r++) {
    const uint8_t *b = W + (size_t)r * rs;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (int64_t k = 0; k < nb; k++, b += VL_Q8_0_BYTES) {
      const float *xb = x + k * VL_Q8_0_BLOCK;
      __m256 s = _mm256_mul_ps(q8_avx2(b + 2), _mm256_loadu_ps(xb));
      s = _mm256_fmadd_ps(q8_avx2(b + 10), _mm256_loadu_ps(xb + 8), s);
      __m256 t = _mm256_mul_ps(q8_avx2(b + 18), _mm256_loadu_ps(xb + 16));
      t = _mm256_fmadd_ps(q8_avx2(b + 26), _mm256_loadu_ps(xb + 24), t);
      const __m256 d = _mm256_set1_ps(vl_f16_at(b));
      acc0 = _mm256_fmadd_ps(d, s, acc0);
      acc1 = _mm256_fmadd_ps(d, t, acc1);
    }
    y[r] = vl_hsum256(_mm256_add_ps(acc0, acc1));
  }
}

static vl_q8_kernel g_kernel;

static bool kernel_ok(vl_q8_kernel k) {
  switch (k) {
  case VL_Q8_SCALAR: return true;
  case VL_Q8_AVX2:
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
  case VL_Q8_AVX512:
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && kernel_ok(VL_Q8_AVX2);
  case VL_Q8_AUTO: return true;
  }
  return false;
}

bool vl_q8_set_kernel(vl_q8_kernel k) {
  if (!kernel_ok(k)) return false;
  __atomic_store_n(&g_kernel, k, __ATOMIC_RELAXED);
  return true;
}

static dot4_fn pick_dot(void) {
  vl_q8_kernel k = __atomic_load_n(&g_kernel, __ATOMIC_RELAXED);
  if (k == VL_Q8_AUTO)
    k = kernel_ok(VL_Q8_AVX512) ? VL_Q8_AVX512 : kernel_ok(VL_Q8_AVX2) ? VL_Q8_AVX2 : VL_Q8_SCALAR;
  return k == VL_Q8_AVX512 ? dot4_avx512 : k == VL_Q8_AVX2 ? dot4_avx2 : dot4_scalar;
}

/* ---- GEMV -------------------------------------------------------------- */

typedef struct {
  dot4_fn dot;
  const uint8_t *W;
  size_t rs;
  int64_t nb;
  const float *x;
  float beta;
  float *y;
} gemv_job;

/* Items are groups of 4 rows. */
static void gemv_range(void *arg, int64_t g0, int64_t g1, int worker) {
  const gemv_job *g = arg;
  (void)worker;
  for (int64_t r = g0 * 4; r < g1 * 4;) {
    float t[Q8_ROWS];
    int n = g->dot == dot4_avx512 && r + Q8_ROWS <= g1 * 4 ? Q8_ROWS : 4;
    if (n == Q8_ROWS)
      dot8_avx512(g->W + (size_t)r * g->rs, g->rs, g->x, g->nb, t);
    else
      g->dot(g->W + (size_t)r * g->rs, g->rs, 4, g->x, g->nb, t);
    for (int i = 0; i < n; i++)
      g->y[r + i] = t[i] + (g->beta != 0.0f ? g->beta * g->y[r + i] : 0.0f);
    r += n;
  }
}

void vl_q8_0_gemv(const void *W, int64_t out, int64_t in, const float *x, float beta, float *y) {
  if (out <= 0) return;
  gemv_job g = {pick_dot(), W, vl_dtype_bytes(VL_Q8_0, in), in / VL_Q8_0_BLOCK, x, beta, y};
  int64_t groups = out / 4, rest = out - groups * 4;
  /* ~64k multiply-adds per chunk at least, so waking a thread pays off */
  int64_t min_chunk = 16384 / (in > 0 ? in : 1) + 1;
  if (groups) vl_parallel_for(groups, min_chunk, gemv_range, &g);
  if (rest) {
    float t[4];
    int64_t r = groups * 4;
    g.dot(g.W + (size_t)r * g.rs, g.rs, (int)rest, x, g.nb, t);
    for (int64_t i = 0; i < rest; i++)
      y[r + i] = t[i] + (beta != 0.0f ? beta * y[r + i] : 0.0f);
  }
}

void vl_gemv_rows_any(const vl_tensor *w, int64_t r0, int64_t n, const float *x, float *y) {
  const int64_t in = w->shape[1];
  if (n <= 0) return;
  if (w->dtype != VL_Q8_0) {
    vl_gemv_rows((const char *)w->data + (size_t)(r0 * in) * vl_dtype_size(w->dtype), w->dtype, in,
                 n, x, in, y);
    return;
  }
  const size_t rs = vl_dtype_bytes(VL_Q8_0, in);
  gemv_job g = {
      pick_dot(), (const uint8_t *)w->data + (size_t)r0 * rs, rs, in / VL_Q8_0_BLOCK, x, 0.0f, y};
  const int64_t groups = n / 4, rest = n - groups * 4;
  gemv_range(&g, 0, groups, 0);
  if (rest) {
    float t[4];
    g.dot(g.W + (size_t)(groups * 4) * rs, rs, (int)rest, x, g.nb, t);
    memcpy(y + groups * 4, t, (size_t)rest * sizeof *t);
  }
}

/* ---- GEMM: dequantised row blocks through vl_gemm ----------------------- */

typedef struct {
  const uint8_t *W;
  size_t rs;
  int64_t in;
  float *dst;
} deq_job;

static void deq_range(void *arg, int64_t r0, int64_t r1, int worker) {
  const deq_job *d = arg;
  (void)worker;
  for (int64_t r = r0; r < r1; r++)
    vl_q8_0_dequantize_row(d->W + (size_t)r * d->rs, d->dst + r * d->in, d->in);
}

#define GEMM_ROWS 256 /* weight rows widened at once (1 MiB at in = 1024) */

/* Widens rows [r0, r0 + n) of W into buf (n x in). */
static void dequant_rows(const uint8_t *W, size_t rs, int64_t r0, int64_t n, int64_t in,
                         float *buf) {
  deq_job d = {W + (size_t)r0 * rs, rs, in, buf};
  vl_parallel_for(n, 8, deq_range, &d);
}

void vl_q8_0_gemm(int64_t M, const float *X, int64_t ldx, const void *W, int64_t out, int64_t in,
                  float beta, float *Y, int64_t ldy) {
  if (M <= 0 || out <= 0) return;
  if (M == 1) {
    vl_q8_0_gemv(W, out, in, X, beta, Y);
    return;
  }
  const size_t rs = vl_dtype_bytes(VL_Q8_0, in);
  float *buf = malloc((size_t)GEMM_ROWS * (size_t)in * sizeof *buf);
  if (!buf) { /* no memory for a block: one GEMV per row of X */
    for (int64_t i = 0; i < M; i++)
      vl_q8_0_gemv(W, out, in, X + i * ldx, beta, Y + i * ldy);
    return;
  }
  for (int64_t r0 = 0; r0 < out; r0 += GEMM_ROWS) {
    int64_t n = out - r0 < GEMM_ROWS ? out - r0 : GEMM_ROWS;
    dequant_rows(W, rs, r0, n, in, buf);
    vl_gemm(false, true, M, n, in, 1.0f, X, ldx, buf, VL_F32, in, beta, Y + r0, ldy);
  }
  free(buf);
}

/* ---- ops --------------------------------------------------------------- */

static int64_t rows_of(const vl_tensor *x) {
  int64_t m = 1;
  for (int d = 0; d < x->ndim - 1; d++)
    m *= x->shape[d];
  return m;
}

/* dx (M x in) += G (M x out) W (out x in), W widened a block of rows at a time. */
static void linear_q8_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *x = n->in[0], *w = n->in[1], *bias = n->n_in > 2 ? n->in[2] : NULL;
  const float *G = n->out->grad;
  const int64_t out = w->shape[0], in = w->shape[1], M = rows_of(x);
  if (x->requires_grad) {
    float *dx = vl_grad(c, x);
    float *buf = malloc((size_t)GEMM_ROWS * (size_t)in * sizeof *buf);
    const size_t rs = vl_dtype_bytes(VL_Q8_0, in);
    for (int64_t r0 = 0; dx && buf && r0 < out; r0 += GEMM_ROWS) {
      int64_t nr = out - r0 < GEMM_ROWS ? out - r0 : GEMM_ROWS;
      dequant_rows(w->data, rs, r0, nr, in, buf);
      vl_gemm(false, false, M, in, nr, 1.0f, G + r0, out, buf, VL_F32, in, 1.0f, dx, in);
    }
    if (!buf) vl_error(VL_ERR_NOMEM, "linear (Q8_0) backward: out of memory");
    free(buf);
  }
  if (bias && bias->requires_grad) {
    float *db = vl_grad(c, bias);
    for (int64_t r = 0; db && r < M; r++)
      for (int64_t j = 0; j < out; j++)
        db[j] += G[r * out + j];
  }
}

vl_tensor *vl_linear_any(vl_ctx *c, vl_tensor *x, vl_tensor *w, vl_tensor *bias) {
  if (!c || !x || !w) return NULL;
  if (w->dtype != VL_Q8_0) return vl_linear(c, x, w, bias);
  char sx[96], sw[96];
  if (x->dtype != VL_F32 || w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1] ||
      w->shape[1] % VL_Q8_0_BLOCK) {
    vl_error(VL_ERR_INVALID,
             "linear: x %s %s does not match Q8_0 weight %s (expected F32 x, (out, in), in a "
             "multiple of 32)",
             vl_dtype_name(x->dtype), vl_shape_str(x, sx, sizeof sx),
             vl_shape_str(w, sw, sizeof sw));
    return NULL;
  }
  const int64_t out = w->shape[0], in = w->shape[1], M = rows_of(x);
  if (bias && (bias->dtype != VL_F32 || bias->ndim != 1 || bias->shape[0] != out)) {
    vl_error(VL_ERR_INVALID, "linear: bias %s does not match weight %s (expected F32 [%lld])",
             vl_shape_str(bias, sx, sizeof sx), vl_shape_str(w, sw, sizeof sw), (long long)out);
    return NULL;
  }
  int64_t shape[VL_MAX_DIMS];
  memcpy(shape, x->shape, (size_t)x->ndim * sizeof *shape);
  shape[x->ndim - 1] = out;
  vl_tensor *y = vl_new(c, VL_F32, x->ndim, shape);
  if (!y) return NULL;
  float *yd = vl_f32(y);
  if (bias)
    for (int64_t r = 0; r < M; r++)
      memcpy(yd + r * out, bias->data, (size_t)out * sizeof(float));
  vl_q8_0_gemm(M, vl_f32(x), in, w->data, out, in, bias ? 1.0f : 0.0f, yd, out);
  vl_tensor *ins[3] = {x, w, bias};
  vl_record(c, y, "linear_q8_0", linear_q8_backward, bias ? 3 : 2, ins);
  return y;
}

vl_tensor *vl_embedding_any(vl_ctx *c, vl_tensor *table, vl_tensor *ids) {
  if (!c || !table || !ids) return NULL;
  if (table->dtype != VL_Q8_0) return vl_embedding(c, table, ids);
  char s1[96];
  if (table->ndim != 2 || table->shape[1] % VL_Q8_0_BLOCK) {
    vl_error(VL_ERR_INVALID, "vl_embedding: Q8_0 table must be (V, D), D a multiple of 32, got %s",
             vl_shape_str(table, s1, sizeof s1));
    return NULL;
  }
  if ((ids->dtype != VL_I64 && ids->dtype != VL_I32) || ids->ndim + 1 > VL_MAX_DIMS) {
    vl_error(VL_ERR_INVALID, "vl_embedding: ids must be I32/I64 with < %d dims, got %s",
             VL_MAX_DIMS, vl_dtype_name(ids->dtype));
    return NULL;
  }
  const int64_t V = table->shape[0], D = table->shape[1];
  int64_t shape[VL_MAX_DIMS];
  memcpy(shape, ids->shape, (size_t)ids->ndim * sizeof *shape);
  shape[ids->ndim] = D;
  vl_tensor *y = vl_new(c, VL_F32, ids->ndim + 1, shape);
  if (!y) return NULL;
  const size_t rs = vl_dtype_bytes(VL_Q8_0, D);
  for (int64_t i = 0; i < ids->numel; i++) {
    int64_t id =
        ids->dtype == VL_I64 ? ((const int64_t *)ids->data)[i] : ((const int32_t *)ids->data)[i];
    if (id < 0 || id >= V) {
      vl_error(VL_ERR_INVALID, "vl_embedding: id %lld at %lld is outside [0, %lld)", (long long)id,
               (long long)i, (long long)V);
      return NULL;
    }
    vl_q8_0_dequantize_row((const uint8_t *)table->data + (size_t)id * rs, vl_f32(y) + i * D, D);
  }
  return y;
}
