/* Packed-panel GEMM driver (Goto/BLIS loop order), kernel selection, GEMV
 * path for single-row products, and the OpenBLAS route.
 *
 * Work is split into tasks of (column tile <= NC_MAX) x (group of MC row
 * tiles) on the pool; each task packs its B slice per KC block (widened to
 * F32, NR-wide panels) and its A blocks, then runs the microkernel. */
#include "tensor/gemm.h"

#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/half.h"
#include "base/threads.h"
#include "tensor/gemm_kernels.h"
#include "tensor/tensor.h"

#define KC 256
#define MC 144 /* multiple of every MR (12, 6, 4) */

/* ---- portable scalar kernel set ---------------------------------------- */

static void kern_scalar(int64_t kc, const float *A, const float *B, float *C, int64_t ldc,
                        float alpha, float beta) {
  float acc[4][8] = {{0}};
  for (int64_t k = 0; k < kc; k++, A += 4, B += 8)
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 8; j++)
        acc[i][j] += A[i] * B[j];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 8; j++)
      C[i * ldc + j] = alpha * acc[i][j] + (beta != 0.0f ? beta * C[i * ldc + j] : 0.0f);
}

static void widen_scalar(const void *src, vl_dtype t, int64_t n, float *dst) {
  if (t == VL_F32) {
    memcpy(dst, src, (size_t)n * sizeof(float));
    return;
  }
  const uint16_t *s = src;
  if (t == VL_BF16)
    for (int64_t i = 0; i < n; i++)
      dst[i] = vl_bf16_to_f32(s[i]);
  else
    for (int64_t i = 0; i < n; i++)
      dst[i] = vl_f16_to_f32(s[i]);
}

static float dot_scalar(const float *a, const float *b, int64_t n) {
  float s[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; j++)
      s[j] += a[i + j] * b[i + j];
  for (; i < n; i++)
    s[0] += a[i] * b[i];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

static void axpy_scalar(float a, const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    y[i] += a * x[i];
}

const vl_gemm_impl vl_gemm_impl_scalar = {.mr = 4,
                                          .nr = 8,
                                          .kern = kern_scalar,
                                          .widen = widen_scalar,
                                          .dot = dot_scalar,
                                          .axpy = axpy_scalar};

/* ---- kernel selection -------------------------------------------------- */

static int g_kernel; /* vl_gemm_kernel, atomic; AUTO until first use */

bool vl_gemm_kernel_available(vl_gemm_kernel k) {
  switch (k) {
  case VL_GEMM_AUTO:
  case VL_GEMM_SCALAR:
  case VL_GEMM_OPENBLAS: return true;
#if defined(__x86_64__)
  case VL_GEMM_AVX2:
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
  case VL_GEMM_AVX512:
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("f16c");
#else
  default: return false;
#endif
  }
  return false;
}

const char *vl_gemm_kernel_name(vl_gemm_kernel k) {
  static const char *names[] = {"auto", "scalar", "avx2", "avx512", "openblas"};
  return (unsigned)k < 5 ? names[k] : "?";
}

static vl_gemm_kernel resolve_auto(void) {
  const char *env = getenv("VLENS_GEMM");
  if (env)
    for (int k = VL_GEMM_SCALAR; k <= VL_GEMM_OPENBLAS; k++)
      if (!strcmp(env, vl_gemm_kernel_name((vl_gemm_kernel)k)) &&
          vl_gemm_kernel_available((vl_gemm_kernel)k))
        return (vl_gemm_kernel)k;
  if (vl_gemm_kernel_available(VL_GEMM_AVX512)) return VL_GEMM_AVX512;
  if (vl_gemm_kernel_available(VL_GEMM_AVX2)) return VL_GEMM_AVX2;
  return VL_GEMM_SCALAR;
}

bool vl_gemm_set_kernel(vl_gemm_kernel k) {
  if ((unsigned)k > VL_GEMM_OPENBLAS || !vl_gemm_kernel_available(k)) return false;
  if (k == VL_GEMM_AUTO) k = resolve_auto();
  __atomic_store_n(&g_kernel, (int)k, __ATOMIC_RELAXED);
  return true;
}

vl_gemm_kernel vl_gemm_get_kernel(void) {
  int k = __atomic_load_n(&g_kernel, __ATOMIC_RELAXED);
  if (k == VL_GEMM_AUTO) {
    k = (int)resolve_auto();
    __atomic_store_n(&g_kernel, k, __ATOMIC_RELAXED);
  }
  return (vl_gemm_kernel)k;
}

static const vl_gemm_impl *impl_for(vl_gemm_kernel k) {
#if defined(__x86_64__)
  if (k == VL_GEMM_AVX512) return &vl_gemm_impl_avx512;
  if (k == VL_GEMM_AVX2 || (k == VL_GEMM_OPENBLAS && vl_gemm_kernel_available(VL_GEMM_AVX2)))
    return &vl_gemm_impl_avx2;
#endif
  (void)k;
  return &vl_gemm_impl_scalar;
}

/* ---- shared helpers ---------------------------------------------------- */

static void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++)
      C[i * ldc + j] = beta != 0.0f ? beta * C[i * ldc + j] : 0.0f;
}

static const void *elem(const void *B, vl_dtype t, int64_t idx) {
  return (const char *)B + (size_t)idx * vl_dtype_size(t);
}

/* Last resort when scratch memory cannot be had: slow but exact. */
static void gemm_naive(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const void *B, vl_dtype bt, int64_t ldb,
                       float beta, float *C, int64_t ldc) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      float s = 0;
      for (int64_t k = 0; k < K; k++) {
        float b;
        widen_scalar(elem(B, bt, tb ? j * ldb + k : k * ldb + j), bt, 1, &b);
        s += A[ta ? k * lda + i : i * lda + k] * b;
      }
      float *c = &C[i * ldc + j];
      *c = alpha * s + (beta != 0.0f ? beta * *c : 0.0f);
    }
}

/* ---- GEMV: M == 1 ------------------------------------------------------ */

#define GV_CHUNK 512
typedef struct {
  const vl_gemm_impl *im;
  bool tb;
  int64_t N, K, ldb;
  float alpha, beta;
  const float *a; /* K, contiguous */
  const void *B;
  vl_dtype bt;
  float *c;
} gemv_job;

static void gemv_range(void *arg, int64_t j0, int64_t j1, int worker) {
  const gemv_job *g = arg;
  float buf[GV_CHUNK], acc[GV_CHUNK];
  (void)worker;
  if (g->tb && g->im->dot_rows) { /* rows widened in registers, 4 at a time */
    for (int64_t c0 = j0; c0 < j1; c0 += GV_CHUNK) {
      int64_t n = j1 - c0 < GV_CHUNK ? j1 - c0 : GV_CHUNK;
      g->im->dot_rows(elem(g->B, g->bt, c0 * g->ldb), g->bt, g->ldb, n, g->a, g->K, acc);
      for (int64_t j = 0; j < n; j++)
        g->c[c0 + j] = g->alpha * acc[j] + (g->beta != 0.0f ? g->beta * g->c[c0 + j] : 0.0f);
    }
    return;
  }
  if (g->tb) { /* c[j] = dot(a, B row j) */
    for (int64_t j = j0; j < j1; j++) {
      float s = 0;
      for (int64_t k0 = 0; k0 < g->K; k0 += GV_CHUNK) {
        int64_t n = g->K - k0 < GV_CHUNK ? g->K - k0 : GV_CHUNK;
        const float *row;
        if (g->bt == VL_F32) {
          row = (const float *)g->B + j * g->ldb + k0;
        } else {
          g->im->widen(elem(g->B, g->bt, j * g->ldb + k0), g->bt, n, buf);
          row = buf;
        }
        s += g->im->dot(g->a + k0, row, n);
      }
      g->c[j] = g->alpha * s + (g->beta != 0.0f ? g->beta * g->c[j] : 0.0f);
    }
    return;
  }
  for (int64_t c0 = j0; c0 < j1; c0 += GV_CHUNK) { /* c[j] = sum_k a[k] B[k][j] */
    int64_t n = j1 - c0 < GV_CHUNK ? j1 - c0 : GV_CHUNK;
    memset(acc, 0, (size_t)n * sizeof(float));
    for (int64_t k = 0; k < g->K; k++) {
      const float *row;
      if (g->bt == VL_F32) {
        row = (const float *)g->B + k * g->ldb + c0;
      } else {
        g->im->widen(elem(g->B, g->bt, k * g->ldb + c0), g->bt, n, buf);
        row = buf;
      }
      g->im->axpy(g->a[k], row, acc, n);
    }
    for (int64_t j = 0; j < n; j++)
      g->c[c0 + j] = g->alpha * acc[j] + (g->beta != 0.0f ? g->beta * g->c[c0 + j] : 0.0f);
  }
}

void vl_gemv_rows(const void *B, vl_dtype t, int64_t ldb, int64_t n, const float *x, int64_t K,
                  float *y) {
  if (n <= 0) return;
  gemv_job g = {impl_for(vl_gemm_get_kernel()), true, n, K, ldb, 1.0f, 0.0f, x, B, t, y};
  gemv_range(&g, 0, n, 0);
}

static bool gemv(const vl_gemm_impl *im, bool ta, bool tb, int64_t N, int64_t K, float alpha,
                 const float *A, int64_t lda, const void *B, vl_dtype bt, int64_t ldb, float beta,
                 float *C) {
  float *a = NULL;
  if (ta) { /* op(A) is 1 x K read down a column of A (K x 1, stride lda) */
    a = malloc((size_t)K * sizeof *a);
    if (!a) return false;
    for (int64_t k = 0; k < K; k++)
      a[k] = A[k * lda];
  }
  gemv_job g = {im, tb, N, K, ldb, alpha, beta, a ? a : A, B, bt, C};
  /* Chunks of work at least ~32k multiply-adds so threads are worth waking. */
  int64_t min_chunk = 32768 / (K > 0 ? K : 1) + 1;
  vl_parallel_for(N, min_chunk, gemv_range, &g);
  free(a);
  return true;
}

/* ---- packed GEMM ------------------------------------------------------- */

/* Packing buffers, kept per pool worker and grown on demand: a fresh malloc
 * of megabytes per call is an mmap whose page faults cost as much as a small
 * product. Thread-local because vl_gemm may itself run inside pool workers.
 * The memory stays with its thread and is freed when the thread exits (a
 * key's destructor: callers' own threads come and go). */
static _Thread_local void *g_scratch[2];
static _Thread_local size_t g_scratch_n[2];
static pthread_key_t g_scratch_key;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;
static bool g_scratch_keyed;

static void scratch_release(void *unused) {
  (void)unused;
  for (int i = 0; i < 2; i++) {
    free(g_scratch[i]);
    g_scratch[i] = NULL;
    g_scratch_n[i] = 0;
  }
}

static void scratch_key_init(void) {
  g_scratch_keyed = pthread_key_create(&g_scratch_key, scratch_release) == 0;
}

void *vl_gemm_scratch(int which, size_t bytes) {
  if (g_scratch_n[which] < bytes) {
    if (!g_scratch[0] && !g_scratch[1]) { /* this thread's first: free it at exit */
      pthread_once(&g_scratch_once, scratch_key_init);
      if (g_scratch_keyed) pthread_setspecific(g_scratch_key, g_scratch_n);
    }
    free(g_scratch[which]);
    g_scratch[which] = malloc(bytes);
    g_scratch_n[which] = g_scratch[which] ? bytes : 0;
  }
  return g_scratch[which];
}

#define NC_MAX 512 /* columns of B packed at once: KC x NC_MAX floats = 512 KiB (L2) */

typedef struct {
  const vl_gemm_impl *im;
  bool ta, tb;
  int64_t M, N, K, lda, ldb, ldc;
  float alpha, beta;
  const float *A;
  const void *B;
  vl_dtype bt;
  float *C;
  int64_t nct, ntiles;  /* column tiles (multiple of NR, <= NC_MAX) */
  int64_t mtiles, mper; /* MC row tiles, per task */
  int64_t mgroups;      /* tasks per column tile */
  const float *bpacked; /* all of op(B) packed (the cache below), or NULL */
} gemm_job;

/* Packs op(B)[k0:k0+kc, j0:j1] into NR-wide panels (kc x NR, k-major),
 * widening to F32 and zero-padding the last panel. */
static void pack_b(const gemm_job *g, int64_t k0, int64_t kc, int64_t j0, int64_t j1, float *dst) {
  const vl_gemm_impl *im = g->im;
  const int64_t NR = im->nr;
  float tmp[KC];
  for (int64_t jb = j0; jb < j1; jb += NR, dst += kc * NR) {
    int64_t nr = j1 - jb < NR ? j1 - jb : NR;
    if (!g->tb && g->bt == VL_F32 && nr == NR && (NR == 32 || NR == 16)) {
      /* F32 full panels: constant-size copies (inlined, no libc call per row) */
      const float *src = (const float *)g->B + k0 * g->ldb + jb;
      for (int64_t k = 0; k < kc; k++, src += g->ldb)
        if (NR == 32)
          memcpy(dst + k * 32, src, 32 * sizeof(float));
        else
          memcpy(dst + k * 16, src, 16 * sizeof(float));
    } else if (!g->tb) { /* B is K x N: rows of nr contiguous values */
      for (int64_t k = 0; k < kc; k++) {
        im->widen(elem(g->B, g->bt, (k0 + k) * g->ldb + jb), g->bt, nr, dst + k * NR);
        for (int64_t j = nr; j < NR; j++)
          dst[k * NR + j] = 0;
      }
    } else if (im->pack_t && NR % 16 == 0) { /* B is N x K: transpose 16 rows at a time */
      for (int64_t j = 0; j < NR; j += 16) {
        int64_t rows = nr - j < 0 ? 0 : nr - j < 16 ? nr - j : 16;
        im->pack_t(elem(g->B, g->bt, (jb + (rows ? j : 0)) * g->ldb + k0), g->bt, g->ldb, (int)rows,
                   kc, dst + j, NR, 16);
      }
    } else { /* B is N x K: column j of op(B) is a contiguous row */
      for (int64_t j = 0; j < NR; j++) {
        if (j < nr) im->widen(elem(g->B, g->bt, (jb + j) * g->ldb + k0), g->bt, kc, tmp);
        for (int64_t k = 0; k < kc; k++)
          dst[k * NR + j] = j < nr ? tmp[k] : 0.0f;
      }
    }
  }
}

/* Rows of A into dst k-major, MR rows at a time: contiguous stores, MR
 * sequential read streams; spelt out for MR 12 and 6 (the compiler does not
 * unroll the generic loop at -O2, and packing costs as much as the
 * multiply-adds when N is ~128). */
static void pack_rows12(const float *const *s, int64_t kc, float *dst) {
  const float *s0 = s[0], *s1 = s[1], *s2 = s[2], *s3 = s[3], *s4 = s[4], *s5 = s[5];
  const float *s6 = s[6], *s7 = s[7], *s8 = s[8], *s9 = s[9], *s10 = s[10], *s11 = s[11];
  for (int64_t k = 0; k < kc; k++, dst += 12) {
    dst[0] = s0[k], dst[1] = s1[k], dst[2] = s2[k], dst[3] = s3[k];
    dst[4] = s4[k], dst[5] = s5[k], dst[6] = s6[k], dst[7] = s7[k];
    dst[8] = s8[k], dst[9] = s9[k], dst[10] = s10[k], dst[11] = s11[k];
  }
}

static void pack_rows6(const float *const *s, int64_t kc, float *dst) {
  const float *s0 = s[0], *s1 = s[1], *s2 = s[2], *s3 = s[3], *s4 = s[4], *s5 = s[5];
  for (int64_t k = 0; k < kc; k++, dst += 6) {
    dst[0] = s0[k], dst[1] = s1[k], dst[2] = s2[k];
    dst[3] = s3[k], dst[4] = s4[k], dst[5] = s5[k];
  }
}

static const float g_zero_row[KC];

static void pack_a(const gemm_job *g, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float *dst) {
  const int64_t MR = g->im->mr;
  for (int64_t ir = 0; ir < mc; ir += MR, dst += kc * MR) {
    int64_t mr = mc - ir < MR ? mc - ir : MR;
    if (!g->ta && g->im->pack_t && MR <= 16) {
      g->im->pack_t(g->A + (i0 + ir) * g->lda + k0, VL_F32, g->lda, (int)mr, kc, dst, MR, (int)MR);
    } else if (!g->ta) {
      const float *src[12];
      for (int64_t i = 0; i < MR; i++)
        src[i] = i < mr ? g->A + (i0 + ir + i) * g->lda + k0 : g_zero_row;
      if (MR == 12) {
        pack_rows12(src, kc, dst);
      } else if (MR == 6) {
        pack_rows6(src, kc, dst);
      } else {
        for (int64_t k = 0; k < kc; k++)
          for (int64_t i = 0; i < MR; i++)
            dst[k * MR + i] = src[i][k];
      }
    } else {
      for (int64_t k = 0; k < kc; k++) {
        const float *src = g->A + (k0 + k) * g->lda + i0 + ir;
        if (mr == MR && MR == 12) { /* constant size: inlined, no libc call */
          memcpy(dst + k * 12, src, 12 * sizeof(float));
          continue;
        }
        for (int64_t i = 0; i < MR; i++)
          dst[k * MR + i] = i < mr ? src[i] : 0.0f;
      }
    }
  }
}

/* Task t: column tile t / mgroups, a group of row tiles. Loop order as in
 * BLIS: k block -> pack B slice (L2) -> row tile: pack A (L2) -> NR panel
 * (B micro-panel in L1) -> MR micro-tile. B is packed just before use, so
 * it is read from memory once and the packed copy never leaves the cache. */
static void gemm_tasks(void *arg, int64_t t0, int64_t t1, int worker) {
  gemm_job *g = arg;
  const vl_gemm_impl *im = g->im;
  const int64_t MR = im->mr, NR = im->nr;
  float *Bp = vl_gemm_scratch(0, (size_t)KC * (size_t)g->nct * sizeof(float)),
        *Ap = vl_gemm_scratch(1, (size_t)MC * KC * sizeof(float));
  float tile[12 * 32];
  (void)worker;
  for (int64_t t = t0; t < t1; t++) {
    int64_t j0 = (t / g->mgroups) * g->nct, mt0 = (t % g->mgroups) * g->mper;
    int64_t j1 = j0 + g->nct < g->N ? j0 + g->nct : g->N;
    int64_t mt1 = mt0 + g->mper < g->mtiles ? mt0 + g->mper : g->mtiles;
    if (!Bp || !Ap) { /* no scratch memory: this task's block the slow way */
      int64_t r0 = mt0 * MC, r1 = mt1 * MC < g->M ? mt1 * MC : g->M;
      gemm_naive(g->ta, g->tb, r1 - r0, j1 - j0, g->K, g->alpha, g->A + (g->ta ? r0 : r0 * g->lda),
                 g->lda, elem(g->B, g->bt, g->tb ? j0 * g->ldb : j0), g->bt, g->ldb, g->beta,
                 g->C + r0 * g->ldc + j0, g->ldc);
      continue;
    }
    for (int64_t k0 = 0; k0 < g->K; k0 += KC) {
      int64_t kc = g->K - k0 < KC ? g->K - k0 : KC;
      float beta = k0 == 0 ? g->beta : 1.0f;
      const float *bk = Bp;
      if (g->bpacked) /* k block k0 of every panel, then this tile's first panel */
        bk = g->bpacked + k0 * ((g->N + NR - 1) / NR) * NR + j0 / NR * kc * NR;
      else
        pack_b(g, k0, kc, j0, j1, Bp);
      for (int64_t mt = mt0; mt < mt1; mt++) {
        int64_t i0 = mt * MC, mc = g->M - i0 < MC ? g->M - i0 : MC;
        /* Row-major A is read in place by kern_a; only a last partial row
         * tile is packed (zero-padded), into the first panel of Ap. */
        const bool direct = !g->ta && im->kern_a;
        const int64_t full = direct ? mc / MR * MR : 0;
        if (!direct)
          pack_a(g, i0, mc, k0, kc, Ap);
        else if (full < mc)
          pack_a(g, i0 + full, mc - full, k0, kc, Ap);
        for (int64_t j = j0; j < j1; j += NR) {
          const float *bp = bk + ((j - j0) / NR) * kc * NR;
          int64_t nr = j1 - j < NR ? j1 - j : NR;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            int64_t mr = mc - ir < MR ? mc - ir : MR;
            float *c = g->C + (i0 + ir) * g->ldc + j;
            const float *ap = Ap + (ir - full) / MR * kc * MR;
            const float *ad = g->A + (i0 + ir) * g->lda + k0;
            if (mr == MR && nr == NR) {
              if (ir < full)
                im->kern_a(kc, ad, g->lda, bp, c, g->ldc, g->alpha, beta);
              else
                im->kern(kc, ap, bp, c, g->ldc, g->alpha, beta);
              continue;
            }
            if (ir < full)
              im->kern_a(kc, ad, g->lda, bp, tile, NR, 1.0f, 0.0f);
            else if (im->kern_part && mr <= MR / 3) /* a few rows: skip the padding */
              im->kern_part(kc, ap, bp, tile, NR, (int)mr);
            else
              im->kern(kc, ap, bp, tile, NR, 1.0f, 0.0f);
            for (int64_t i = 0; i < mr; i++)
              for (int64_t jj = 0; jj < nr; jj++) {
                float *o = &c[i * g->ldc + jj];
                *o = g->alpha * tile[i * NR + jj] + (beta != 0.0f ? beta * *o : 0.0f);
              }
          }
        }
      }
    }
  }
}

/* ---- packed constant B ------------------------------------------------- *
 * An explanation runs one backward per target over the same weights: while
 * a scope is open on the calling thread (vl_gemm_pack_cache_begin), a B
 * passed to vl_gemm_const_b is packed once, whole (every KC block of every
 * NR panel, as pack_b lays them out), and reused by later products with the
 * same B. Packing the weights again for every product was ~10 % of an
 * explained caption. The copies are shared by the threads with a scope open
 * (the same weights) and freed when the last scope ends; at most
 * BCACHE_MAX bytes (a large model's weights are packed per product as
 * before: its products are big enough for packing not to matter). */
typedef struct {
  const void *B;
  vl_dtype bt;
  bool tb;
  int64_t ldb, K, N, nr;
  float *packed;
} bcache_entry;

enum { BCACHE_MAX = 64 << 20 };

static pthread_mutex_t bcache_mu = PTHREAD_MUTEX_INITIALIZER;
static int bcache_scopes;           /* all threads */
static _Thread_local int my_scopes; /* this thread */
static bcache_entry *bcache;
static int bcache_n, bcache_cap;
static size_t bcache_bytes;
static vl_ctx *bcache_mem; /* the packed copies: arena memory is pooled (no page faults) */

void vl_gemm_pack_cache_begin(void) {
  pthread_mutex_lock(&bcache_mu);
  bcache_scopes++;
  my_scopes++;
  pthread_mutex_unlock(&bcache_mu);
}

void vl_gemm_pack_cache_end(void) {
  pthread_mutex_lock(&bcache_mu);
  if (my_scopes > 0) {
    my_scopes--;
    if (--bcache_scopes == 0) {
      vl_ctx_free(bcache_mem);
      free(bcache);
      bcache_mem = NULL;
      bcache = NULL;
      bcache_n = bcache_cap = 0;
      bcache_bytes = 0;
    }
  }
  pthread_mutex_unlock(&bcache_mu);
}

size_t vl_gemm_pack_cache_bytes(void) {
  pthread_mutex_lock(&bcache_mu);
  size_t n = bcache_bytes;
  pthread_mutex_unlock(&bcache_mu);
  return n;
}

/* The whole packed op(B) of g from the cache, packed now if missing; NULL
 * when this thread has no scope open, the cache is full or memory is short
 * (the caller packs as usual). */
static const float *bcache_get(const gemm_job *g) {
  if (!my_scopes) return NULL;
  const int64_t NR = g->im->nr, npan = (g->N + NR - 1) / NR;
  const size_t bytes = (size_t)(g->K * npan * NR) * sizeof(float);
  const float *hit = NULL;
  pthread_mutex_lock(&bcache_mu);
  for (int i = 0; i < bcache_n && !hit; i++) {
    const bcache_entry *e = &bcache[i];
    if (e->B == g->B && e->bt == g->bt && e->tb == g->tb && e->ldb == g->ldb && e->K == g->K &&
        e->N == g->N && e->nr == NR)
      hit = e->packed;
  }
  if (!hit && bcache_bytes + bytes <= BCACHE_MAX) {
    if (!bcache_mem) bcache_mem = vl_ctx_new();
    float *p = bcache_mem ? vl_ctx_alloc_uninit(bcache_mem, bytes) : NULL;
    if (p && bcache_n == bcache_cap) {
      int cap = bcache_cap ? 2 * bcache_cap : 64;
      bcache_entry *ne = realloc(bcache, (size_t)cap * sizeof *ne);
      if (ne) {
        bcache = ne;
        bcache_cap = cap;
      }
    }
    if (p && bcache_n < bcache_cap) {
      for (int64_t k0 = 0; k0 < g->K; k0 += KC) {
        int64_t kc = g->K - k0 < KC ? g->K - k0 : KC;
        pack_b(g, k0, kc, 0, g->N, p + k0 * npan * NR);
      }
      bcache[bcache_n++] = (bcache_entry){g->B, g->bt, g->tb, g->ldb, g->K, g->N, NR, p};
      bcache_bytes += bytes;
      hit = p;
    }
  }
  pthread_mutex_unlock(&bcache_mu);
  return hit;
}

static void gemm_packed(const vl_gemm_impl *im, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                        float alpha, const float *A, int64_t lda, const void *B, vl_dtype bt,
                        int64_t ldb, float beta, float *C, int64_t ldc, bool const_b) {
  int nt = vl_threads_count();
  int64_t NR = im->nr, npan = (N + NR - 1) / NR, mtiles = (M + MC - 1) / MC;
  /* Column tiles of at most NC_MAX, and at least ~2 tasks per thread when
   * there is enough work: more column tiles first (B packed once), then
   * split the rows of each (B slice packed once per row group). */
  int64_t ntiles = (npan * NR + NC_MAX - 1) / NC_MAX;
  /* Tall products (activations times a small weight: M in the thousands, N
   * a few hundred) split rows only: each column tile repacks all of A, which
   * for N ~ 128 costs as much as the multiply-adds. */
  if (nt > 1 && ntiles < 2 * nt && mtiles < 2 * nt) ntiles = npan < 2 * nt ? npan : 2 * nt;
  int64_t pan_per = (npan + ntiles - 1) / ntiles;
  gemm_job g = {im, ta, tb,           M, N,      K,      lda, ldb, ldc, alpha, beta, A, B,
                bt, C,  pan_per * NR, 0, mtiles, mtiles, 1,   NULL};
  g.ntiles = (N + g.nct - 1) / g.nct;
  if (nt > 1 && g.ntiles < 2 * nt && mtiles > 1) {
    int64_t groups = (2 * nt + g.ntiles - 1) / g.ntiles;
    if (groups > mtiles) groups = mtiles;
    g.mper = (mtiles + groups - 1) / groups;
    g.mgroups = (mtiles + g.mper - 1) / g.mper;
  }
  int64_t ntask = g.ntiles * g.mgroups;
  if (const_b) g.bpacked = bcache_get(&g);
  /* Small products stay on the calling thread: below ~1e7 flops (~50 us
   * here) handing half to a pool thread saves little, and on busy cores
   * waiting for it to be scheduled cost more than the product (an explained
   * caption's 145-row products: 10 % more CPU, slower). */
  double flops = 2.0 * (double)M * (double)N * (double)K;
  vl_parallel_for(ntask, flops < 1e7 ? ntask : 1, gemm_tasks, &g);
}

/* ---- OpenBLAS ---------------------------------------------------------- */

/* OpenBLAS (pthread build) starts a server thread per core when it is
 * loaded, before main, and each spins on sched_yield for ~0.1 s waiting for
 * work that only the OpenBLAS kernel would give it: on 2 busy cores that was
 * ~30 ms of CPU in every short vlens run. Stop them at start-up; OpenBLAS
 * starts them again by itself on its first threaded call (as after a
 * fork). Looked up, not linked: other OpenBLAS builds lack the symbol. */
__attribute__((constructor)) static void quiet_openblas_threads(void) {
  void (*shutdown)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "blas_thread_shutdown_");
  if (shutdown) shutdown();
}

static bool gemm_openblas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                          const float *A, int64_t lda, const void *B, vl_dtype bt, int64_t ldb,
                          float beta, float *C, int64_t ldc) {
  static int threads_set;
  int nt = vl_threads_count();
  if (__atomic_load_n(&threads_set, __ATOMIC_RELAXED) != nt) {
    openblas_set_num_threads(nt); /* same budget as our pool, never both busy */
    __atomic_store_n(&threads_set, nt, __ATOMIC_RELAXED);
  }
  float *wide = NULL;
  const float *Bf = B;
  if (bt != VL_F32) { /* widen the stored B, then plain sgemm */
    int64_t rows = tb ? N : K, cols = tb ? K : N;
    wide = malloc((size_t)(rows * cols) * sizeof(float));
    if (!wide) return false;
    const vl_gemm_impl *im = impl_for(VL_GEMM_OPENBLAS);
    for (int64_t r = 0; r < rows; r++)
      im->widen(elem(B, bt, r * ldb), bt, cols, wide + r * cols);
    Bf = wide;
    ldb = cols;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M,
              (int)N, (int)K, alpha, A, (int)lda, Bf, (int)ldb, beta, C, (int)ldc);
  free(wide);
  return true;
}

/* ---- entry ------------------------------------------------------------- */

static void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                 const float *A, int64_t lda, const void *B, vl_dtype b_type, int64_t ldb,
                 float beta, float *C, int64_t ldc, bool const_b) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  vl_gemm_kernel k = vl_gemm_get_kernel();
  const vl_gemm_impl *im = impl_for(k);
  bool done = true; /* false: scratch memory failed before anything was written */
  bool fits_int = M < INT32_MAX && N < INT32_MAX && K < INT32_MAX && lda < INT32_MAX &&
                  ldb < INT32_MAX && ldc < INT32_MAX;
  if (k == VL_GEMM_OPENBLAS && fits_int)
    done = gemm_openblas(trans_a, trans_b, M, N, K, alpha, A, lda, B, b_type, ldb, beta, C, ldc);
  else if (M == 1)
    done = gemv(im, trans_a, trans_b, N, K, alpha, A, lda, B, b_type, ldb, beta, C);
  else
    gemm_packed(im, trans_a, trans_b, M, N, K, alpha, A, lda, B, b_type, ldb, beta, C, ldc,
                const_b);
  if (!done) gemm_naive(trans_a, trans_b, M, N, K, alpha, A, lda, B, b_type, ldb, beta, C, ldc);
}

void vl_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
             const float *A, int64_t lda, const void *B, vl_dtype b_type, int64_t ldb, float beta,
             float *C, int64_t ldc) {
  gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, b_type, ldb, beta, C, ldc, false);
}

void vl_gemm_const_b(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float *A, int64_t lda, const void *B, vl_dtype b_type, int64_t ldb,
                     float beta, float *C, int64_t ldc) {
  gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, b_type, ldb, beta, C, ldc, true);
}
