#include "explain/relevancy.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

int vl_relevancy_init(vl_relevancy *r, int nt, int ni) {
  memset(r, 0, sizeof *r);
  if (nt < 0 || ni < 0 || (nt == 0 && ni == 0) || nt > 65536 || ni > 65536)
    return vl_error(VL_ERR_INVALID, "relevancy: %d text and %d image tokens", nt, ni);
  size_t n = (size_t)nt * nt + 2 * (size_t)nt * ni + (size_t)ni * ni;
  double *buf = calloc(n ? n : 1, sizeof(double));
  if (!buf) return vl_error(VL_ERR_NOMEM, "relevancy: out of memory for %zu entries", n);
  r->nt = nt;
  r->ni = ni;
  r->R_tt = buf;
  r->R_ti = r->R_tt + (size_t)nt * nt;
  r->R_ii = r->R_ti + (size_t)nt * ni;
  r->R_it = r->R_ii + (size_t)ni * ni;
  for (int k = 0; k < nt; k++)
    r->R_tt[(size_t)k * nt + k] = 1;
  for (int k = 0; k < ni; k++)
    r->R_ii[(size_t)k * ni + k] = 1;
  return VL_OK;
}

void vl_relevancy_free(vl_relevancy *r) {
  if (!r) return;
  free(r->R_tt);
  memset(r, 0, sizeof *r);
}

void vl_relevancy_head_mean(const float *probs, const float *grad, int heads, int n_q, int n_k,
                            double *out) {
  size_t n = (size_t)n_q * n_k;
  memset(out, 0, n * sizeof(double));
  for (int h = 0; h < heads; h++) {
    const float *a = probs + (size_t)h * n;
    const float *g = grad ? grad + (size_t)h * n : NULL;
    for (size_t i = 0; i < n; i++) {
      double v = g ? (double)g[i] * a[i] : a[i];
      if (v > 0) out[i] += v;
    }
  }
  for (size_t i = 0; i < n; i++)
    out[i] /= heads;
}

/* C (M x N) = beta*C + op(A) * B, A (M x K) or, with ta, (K x M); B (K x N). */
static void gemm(int ta, int M, int N, int K, const double *A, const double *B, double beta,
                 double *C) {
  if (M == 0 || N == 0) return;
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, CblasNoTrans, M, N, K, 1.0, A,
              ta ? M : K, B, N, beta, C, N);
}

/* R += cam * R for an n x n self block, and Q += cam * Q for its n x m
 * cross block (rules 6-7). */
static int self_rules(double *R, double *Q, int n, int m, const double *cam) {
  size_t nn = (size_t)n * n, nm = (size_t)n * m;
  double *tmp = malloc((nn + nm + 1) * sizeof(double));
  if (!tmp) return vl_error(VL_ERR_NOMEM, "relevancy: out of memory");
  gemm(0, n, n, n, cam, R, 0.0, tmp);
  gemm(0, n, m, n, cam, Q, 0.0, tmp + nn);
  for (size_t k = 0; k < nn; k++)
    R[k] += tmp[k];
  for (size_t k = 0; k < nm; k++)
    Q[k] += tmp[nn + k];
  free(tmp);
  return VL_OK;
}

int vl_relevancy_self_text(vl_relevancy *r, const double *cam) {
  return self_rules(r->R_tt, r->R_ti, r->nt, r->ni, cam);
}

int vl_relevancy_self_image(vl_relevancy *r, const double *cam) {
  return self_rules(r->R_ii, r->R_it, r->ni, r->nt, cam);
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
 * add_sq = R̄_ssᵀ cam R̄_qq, add_ss = cam R_qs. */
static int mm_rules(const double *R_ss, const double *R_qq, const double *R_qs, const double *cam,
                    int ns, int nq, int normalize, double *add_sq, double *add_ss) {
  size_t need = (size_t)ns * ns + (size_t)nq * nq + (size_t)ns * nq + 1;
  double *buf = malloc(need * sizeof(double));
  if (!buf) return vl_error(VL_ERR_NOMEM, "relevancy: out of memory");
  double *ss = buf, *qq = buf + (size_t)ns * ns, *t = qq + (size_t)nq * nq;
  if (normalize) {
    vl_relevancy_normalize(R_ss, ns, ss);
    vl_relevancy_normalize(R_qq, nq, qq);
  } else {
    memcpy(ss, R_ss, (size_t)ns * ns * sizeof(double));
    memcpy(qq, R_qq, (size_t)nq * nq * sizeof(double));
  }
  gemm(0, ns, nq, nq, cam, qq, 0.0, t);    /* cam R̄_qq */
  gemm(1, ns, nq, ns, ss, t, 0.0, add_sq); /* R̄_ssᵀ (…) */
  gemm(0, ns, ns, nq, cam, R_qs, 0.0, add_ss);
  free(buf);
  return VL_OK;
}

static void add_into(double *dst, const double *src, size_t n) {
  for (size_t k = 0; k < n; k++)
    dst[k] += src[k];
}

int vl_relevancy_co_attention(vl_relevancy *r, const double *cam_ti, const double *cam_it,
                              int normalize) {
  int nt = r->nt, ni = r->ni, rc = VL_OK;
  size_t tt = (size_t)nt * nt, ti = (size_t)nt * ni, ii = (size_t)ni * ni;
  double *buf = malloc((2 * ti + tt + ii + 1) * sizeof(double));
  if (!buf) return vl_error(VL_ERR_NOMEM, "relevancy: out of memory");
  double *add_ti = buf, *add_tt = add_ti + ti, *add_it = add_tt + tt, *add_ii = add_it + ti;
  if (cam_ti) rc = mm_rules(r->R_tt, r->R_ii, r->R_it, cam_ti, nt, ni, normalize, add_ti, add_tt);
  if (!rc && cam_it)
    rc = mm_rules(r->R_ii, r->R_tt, r->R_ti, cam_it, ni, nt, normalize, add_it, add_ii);
  if (!rc && cam_ti) {
    add_into(r->R_ti, add_ti, ti);
    add_into(r->R_tt, add_tt, tt);
  }
  if (!rc && cam_it) {
    add_into(r->R_it, add_it, ti);
    add_into(r->R_ii, add_ii, ii);
  }
  free(buf);
  return rc;
}

int vl_relevancy_cross_text(vl_relevancy *r, const double *cam_ti, int normalize) {
  return vl_relevancy_co_attention(r, cam_ti, NULL, normalize);
}

int vl_relevancy_cross_image(vl_relevancy *r, const double *cam_it, int normalize) {
  return vl_relevancy_co_attention(r, NULL, cam_it, normalize);
}
