#include "explain/relevancy.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/error.h"
#include "base/threads.h"
#include "tensor/vmath.h"

/* One buffer per thread is kept between calls: one explained caption runs
 * the rules once per token, and a fresh 0.5 MB allocation each time is an
 * mmap whose page faults cost more than the arithmetic. Mapped with its
 * pages populated (faulting them one by one costs 4x more). */
static _Thread_local double *g_spare;
static _Thread_local size_t g_spare_n;

static size_t map_bytes(size_t n) { return (n * sizeof(double) + 4095) & ~(size_t)4095; }

static double *buf_get(size_t n) {
  if (g_spare && g_spare_n >= n) {
    double *p = g_spare;
    g_spare = NULL;
    return p;
  }
  void *p = mmap(NULL, map_bytes(n), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void buf_put(double *p, size_t n) {
  if (!p) return;
  if (g_spare && g_spare_n >= n) {
    munmap(p, map_bytes(n));
    return;
  }
  if (g_spare) munmap(g_spare, map_bytes(g_spare_n));
  g_spare = p;
  g_spare_n = n;
}

int vl_relevancy_init(vl_relevancy *r, int nt, int ni) {
  memset(r, 0, sizeof *r);
  if (nt < 0 || ni < 0 || (nt == 0 && ni == 0) || nt > 65536 || ni > 65536)
    return vl_error(VL_ERR_INVALID, "relevancy: %d text and %d image tokens", nt, ni);
  size_t tt = (size_t)nt * nt, ti = (size_t)nt * ni, ii = (size_t)ni * ni;
  size_t n = tt + 2 * ti + ii;
  size_t big = tt > ii ? tt : ii;
  if (ti > big) big = ti;
  /* R, then scratch: co-attention's four additions (n), mm_rules' three
   * matrices (n) and the caller's cam (big) */
  size_t total = 3 * n + big + 1;
  double *buf = buf_get(total);
  if (!buf) return vl_error(VL_ERR_NOMEM, "relevancy: out of memory for %zu entries", n);
  memset(buf, 0, n * sizeof(double));
  r->nt = nt;
  r->ni = ni;
  r->cap = total;
  r->R_tt = buf;
  r->R_ti = r->R_tt + tt;
  r->R_ii = r->R_ti + ti;
  r->R_it = r->R_ii + ii;
  r->scratch = buf + n;
  r->cam = buf + 3 * n;
  for (int k = 0; k < nt; k++)
    r->R_tt[(size_t)k * nt + k] = 1;
  for (int k = 0; k < ni; k++)
    r->R_ii[(size_t)k * ni + k] = 1;
  return VL_OK;
}

void vl_relevancy_free(vl_relevancy *r) {
  if (!r) return;
  buf_put(r->R_tt, r->cap);
  memset(r, 0, sizeof *r);
}

typedef double v8d __attribute__((vector_size(64)));
typedef double v8du __attribute__((vector_size(64), aligned(8), may_alias)); /* unaligned */
typedef float v8f __attribute__((vector_size(32)));
typedef float v8fu __attribute__((vector_size(32), aligned(4), may_alias));
typedef long long v8l __attribute__((vector_size(64)));
#define ld8(p) (*(const v8du *)(p))
#define st8(p, v) (*(v8du *)(p) = (v))

/* Eight entries at a time: each entry still sums its heads in order from
 * 0, adding nothing for a non-positive (or NaN) product. */
VL_VEC_CLONES void vl_relevancy_head_mean(const float *probs, const float *grad, int heads, int n_q,
                                          int n_k, double *out) {
  size_t n = (size_t)n_q * n_k, i = 0;
  for (; i + 8 <= n; i += 8) {
    v8d acc = {0};
    for (int h = 0; h < heads; h++) {
      v8d v = __builtin_convertvector(*(const v8fu *)(probs + (size_t)h * n + i), v8d);
      if (grad) v *= __builtin_convertvector(*(const v8fu *)(grad + (size_t)h * n + i), v8d);
      v8l pos = v > 0;
      acc += (v8d)((v8l)v & pos);
    }
    st8(out + i, acc / heads);
  }
  for (; i < n; i++) {
    double acc = 0;
    for (int h = 0; h < heads; h++) {
      double v = grad ? (double)grad[(size_t)h * n + i] * probs[(size_t)h * n + i]
                      : probs[(size_t)h * n + i];
      if (v > 0) acc += v;
    }
    out[i] = acc / heads;
  }
}

/* ---- C = op(A) B in double ------------------------------------------------
 * Panels of 16 columns of B (kept in L1) times 4 rows of op(A) at a time, in
 * 8-wide vectors; every element is the sum over k in order, whatever the
 * blocking or thread. */
typedef struct {
  int ta, M, N, K;
  const double *A, *B;
  double *C;
} dgemm_job;

static inline double a_at(const dgemm_job *g, int i, int k) {
  return g->ta ? g->A[(size_t)k * g->M + i] : g->A[(size_t)i * g->K + k];
}

/* Column panels [p0, p1) of 16 (the last one may be narrower). */
VL_VEC_CLONES static void dgemm_panels(void *arg, int64_t p0, int64_t p1, int worker) {
  (void)worker;
  const dgemm_job *g = arg;
  const int M = g->M, N = g->N, K = g->K;
  const double *B = g->B;
  for (int64_t p = p0; p < p1; p++) {
    const int j = (int)p * 16;
    if (j + 16 <= N) {
      int i = 0;
      for (; i + 4 <= M; i += 4) {
        v8d c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
        for (int k = 0; k < K; k++) {
          v8d b0 = ld8(B + (size_t)k * N + j), b1 = ld8(B + (size_t)k * N + j + 8);
          double a0 = a_at(g, i, k), a1 = a_at(g, i + 1, k), a2 = a_at(g, i + 2, k),
                 a3 = a_at(g, i + 3, k);
          c00 += a0 * b0;
          c01 += a0 * b1;
          c10 += a1 * b0;
          c11 += a1 * b1;
          c20 += a2 * b0;
          c21 += a2 * b1;
          c30 += a3 * b0;
          c31 += a3 * b1;
        }
        double *c = g->C + (size_t)i * N + j;
        st8(c, c00);
        st8(c + 8, c01);
        st8(c + N, c10);
        st8(c + N + 8, c11);
        st8(c + 2 * N, c20);
        st8(c + 2 * N + 8, c21);
        st8(c + 3 * N, c30);
        st8(c + 3 * N + 8, c31);
      }
      for (; i < M; i++) {
        v8d c0 = {0}, c1 = {0};
        for (int k = 0; k < K; k++) {
          double a = a_at(g, i, k);
          c0 += a * ld8(B + (size_t)k * N + j);
          c1 += a * ld8(B + (size_t)k * N + j + 8);
        }
        st8(g->C + (size_t)i * N + j, c0);
        st8(g->C + (size_t)i * N + j + 8, c1);
      }
    } else {
      for (int i = 0; i < M; i++)
        for (int jj = j; jj < N; jj++) {
          double s = 0;
          for (int k = 0; k < K; k++)
            s += a_at(g, i, k) * B[(size_t)k * N + jj];
          g->C[(size_t)i * N + jj] = s;
        }
    }
  }
}

/* C (M x N) = op(A) B, A (M x K) or, with ta, (K x M); B (K x N). */
static void gemm(int ta, int M, int N, int K, const double *A, const double *B, double *C) {
  if (M == 0 || N == 0) return;
  dgemm_job g = {ta, M, N, K, A, B, C};
  int64_t panels = (N + 15) / 16;
  double work = (double)M * N * K;
  vl_parallel_for(panels, work < 5e6 ? panels : 1, dgemm_panels, &g); /* as vl_gemm: ~1e7 flops */
}

static bool all_zero(const double *v, size_t n) {
  for (size_t k = 0; k < n; k++)
    if (v[k] != 0) return false;
  return true;
}

static bool identity(const double *R, int n) {
  for (int a = 0; a < n; a++)
    for (int b = 0; b < n; b++)
      if (R[(size_t)a * n + b] != (a == b)) return false;
  return true;
}

/* R += cam * R for an n x n self block, and Q += cam * Q for its n x m
 * cross block (rules 6-7). cam * I is cam and cam * 0 is 0 (cam is finite):
 * the first layer's R and a still-zero Q need no product. */
static int self_rules(vl_relevancy *r, double *R, double *Q, int n, int m, const double *cam) {
  size_t nn = (size_t)n * n, nm = (size_t)n * m;
  double *tmp = r->scratch;
  if (identity(R, n))
    memcpy(tmp, cam, nn * sizeof(double));
  else
    gemm(0, n, n, n, cam, R, tmp);
  for (size_t k = 0; k < nn; k++)
    R[k] += tmp[k];
  if (!all_zero(Q, nm)) {
    gemm(0, n, m, n, cam, Q, tmp);
    for (size_t k = 0; k < nm; k++)
      Q[k] += tmp[k];
  }
  return VL_OK;
}

int vl_relevancy_self_text(vl_relevancy *r, const double *cam) {
  return self_rules(r, r->R_tt, r->R_ti, r->nt, r->ni, cam);
}

int vl_relevancy_self_image(vl_relevancy *r, const double *cam) {
  return self_rules(r, r->R_ii, r->R_it, r->ni, r->nt, cam);
}

void vl_relevancy_normalize(const double *R, int n, double *out) {
  for (int a = 0; a < n; a++) {
    const double *row = R + (size_t)a * n;
    double *o = out + (size_t)a * n;
    double sum = 0;
    for (int b = 0; b < n; b++) {
      o[b] = row[b] - (a == b);
      sum += o[b];
    }
    for (int b = 0; b < n; b++)
      o[b] = sum != 0 ? o[b] / sum : 0.0;
    o[a] += 1;
  }
}

/* Additions of rules 10-11 for s queries (ns) attending to q keys (nq):
 * add_sq = R̄_ssᵀ cam R̄_qq, add_ss = cam R_qs (NULL when R_qs is zero). */
static void mm_rules(double *buf, const double *R_ss, const double *R_qq, const double *R_qs,
                     const double *cam, int ns, int nq, int normalize, double *add_sq,
                     double **add_ss) {
  double *ss = buf, *qq = buf + (size_t)ns * ns, *t = qq + (size_t)nq * nq;
  if (normalize) {
    vl_relevancy_normalize(R_ss, ns, ss);
    vl_relevancy_normalize(R_qq, nq, qq);
  } else {
    memcpy(ss, R_ss, (size_t)ns * ns * sizeof(double));
    memcpy(qq, R_qq, (size_t)nq * nq * sizeof(double));
  }
  gemm(0, ns, nq, nq, cam, qq, t);    /* cam R̄_qq */
  gemm(1, ns, nq, ns, ss, t, add_sq); /* R̄_ssᵀ (…) */
  if (all_zero(R_qs, (size_t)nq * ns))
    *add_ss = NULL;
  else
    gemm(0, ns, ns, nq, cam, R_qs, *add_ss);
}

static void add_into(double *dst, const double *src, size_t n) {
  for (size_t k = 0; k < n; k++)
    dst[k] += src[k];
}

int vl_relevancy_co_attention(vl_relevancy *r, const double *cam_ti, const double *cam_it,
                              int normalize) {
  int nt = r->nt, ni = r->ni;
  size_t tt = (size_t)nt * nt, ti = (size_t)nt * ni, ii = (size_t)ni * ni;
  double *add_ti = r->scratch, *add_tt = add_ti + ti, *add_it = add_tt + tt, *add_ii = add_it + ti;
  double *work = add_ii + ii; /* mm_rules' R̄_ss, R̄_qq and product: tt + ii + ti */
  if (cam_ti) mm_rules(work, r->R_tt, r->R_ii, r->R_it, cam_ti, nt, ni, normalize, add_ti, &add_tt);
  if (cam_it) mm_rules(work, r->R_ii, r->R_tt, r->R_ti, cam_it, ni, nt, normalize, add_it, &add_ii);
  if (cam_ti) {
    add_into(r->R_ti, add_ti, ti);
    if (add_tt) add_into(r->R_tt, add_tt, tt);
  }
  if (cam_it) {
    add_into(r->R_it, add_it, ti);
    if (add_ii) add_into(r->R_ii, add_ii, ii);
  }
  return VL_OK;
}

int vl_relevancy_cross_text(vl_relevancy *r, const double *cam_ti, int normalize) {
  return vl_relevancy_co_attention(r, cam_ti, NULL, normalize);
}

int vl_relevancy_cross_image(vl_relevancy *r, const double *cam_it, int normalize) {
  return vl_relevancy_co_attention(r, NULL, cam_it, normalize);
}
