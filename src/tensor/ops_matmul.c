/* vl_matmul and vl_linear, forward and backward, on top of vl_gemm.
 *
 * Gradients (G = dL/dC, C = op(A) op(B)):
 *   dop(A) = G op(B)^T,  dop(B) = op(A)^T G,
 * written per stored layout so every product is one vl_gemm call with the
 * right transpose flags. A BF16/F16 b gets no gradient (inference weights)
 * but still carries the gradient through to a. */
#include <string.h>

#include "base/error.h"
#include "tensor/gemm.h"
#include "tensor/ops.h"

static bool float_dtype(vl_dtype t) { return t == VL_F32 || t == VL_BF16 || t == VL_F16; }

/* ---- matmul ------------------------------------------------------------ */

/* Batch geometry shared by forward and backward (recomputed from shapes). */
typedef struct {
  bool ta, tb;
  int64_t M, N, K, lda, ldb;
  int nb;                                             /* output batch dims */
  int64_t bshape[VL_MAX_DIMS];                        /* output batch shape */
  int64_t astride[VL_MAX_DIMS], bstride[VL_MAX_DIMS]; /* in matrices, 0 = broadcast */
  int64_t nbatch, a_batches, b_batches;
} mm_geom;

static int mm_setup(mm_geom *g, const vl_tensor *a, const vl_tensor *b, bool ta, bool tb) {
  char sa[96], sb[96];
  if (a->ndim < 2 || b->ndim < 2)
    return vl_error(VL_ERR_INVALID, "matmul: operands need >= 2 dims, got %s and %s",
                    vl_shape_str(a, sa, sizeof sa), vl_shape_str(b, sb, sizeof sb));
  g->ta = ta;
  g->tb = tb;
  int64_t ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
  int64_t br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
  g->M = ta ? ac : ar;
  g->K = ta ? ar : ac;
  g->N = tb ? br : bc;
  int64_t kb = tb ? bc : br;
  g->lda = ac;
  g->ldb = bc;
  if (kb != g->K)
    return vl_error(VL_ERR_INVALID,
                    "matmul: inner dims differ: a %s%s has K=%lld, b %s%s has K=%lld",
                    vl_shape_str(a, sa, sizeof sa), ta ? "^T" : "", (long long)g->K,
                    vl_shape_str(b, sb, sizeof sb), tb ? "^T" : "", (long long)kb);
  int na = a->ndim - 2, nbb = b->ndim - 2;
  g->nb = na > nbb ? na : nbb;
  g->nbatch = 1;
  g->a_batches = 1;
  g->b_batches = 1;
  int64_t sa_acc = 1, sb_acc = 1;
  for (int d = g->nb - 1; d >= 0; d--) { /* right-aligned broadcasting */
    int ia = d - (g->nb - na), ib = d - (g->nb - nbb);
    int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
    if (da != db && da != 1 && db != 1)
      return vl_error(VL_ERR_INVALID, "matmul: batch dims of %s and %s do not broadcast",
                      vl_shape_str(a, sa, sizeof sa), vl_shape_str(b, sb, sizeof sb));
    g->bshape[d] = da > db ? da : db;
    g->astride[d] = da == 1 ? 0 : sa_acc;
    g->bstride[d] = db == 1 ? 0 : sb_acc;
    sa_acc *= da;
    sb_acc *= db;
    g->nbatch *= g->bshape[d];
  }
  g->a_batches = sa_acc;
  g->b_batches = sb_acc;
  return VL_OK;
}

/* Matrix indices in a and b of output batch o. */
static void mm_batch(const mm_geom *g, int64_t o, int64_t *ia, int64_t *ib) {
  int64_t ra = 0, rb = 0;
  for (int d = g->nb - 1; d >= 0; d--) {
    int64_t i = o % g->bshape[d];
    o /= g->bshape[d];
    ra += i * g->astride[d];
    rb += i * g->bstride[d];
  }
  *ia = ra;
  *ib = rb;
}

/* b's batches all the same matrix and a not transposed: fold a's batch into
 * M, one big product (the common activation @ weight case). */
static bool mm_foldable(const mm_geom *g) { return g->b_batches == 1 && !g->ta; }

static const void *mat_at(const vl_tensor *t, int64_t idx, int64_t elems) {
  return (const char *)t->data + (size_t)(idx * elems) * vl_dtype_size(t->dtype);
}

static void matmul_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *a = n->in[0], *b = n->in[1];
  const float *G = n->out->grad;
  mm_geom g;
  if (mm_setup(&g, a, b, n->i[0], n->i[1]) != VL_OK) return;
  bool want_a = a->requires_grad, want_b = b->requires_grad && b->dtype == VL_F32;
  float *da = want_a ? vl_grad(c, a) : NULL, *db = want_b ? vl_grad(c, b) : NULL;
  if ((want_a && !da) || (want_b && !db)) return; /* out of memory, error recorded */
  /* dA with a transposed puts b in gemm's A slot, which must be F32. */
  vl_tensor *bf = b;
  if (want_a && g.ta && b->dtype != VL_F32) {
    bf = vl_clone_f32(c, b);
    if (!bf) return;
  }
  int64_t M = g.M, N = g.N, K = g.K, MK = M * K, KN = K * N, MN = M * N;
  int64_t nmat = g.nbatch;
  if (mm_foldable(&g)) { /* one product over all rows */
    M *= g.nbatch;
    nmat = 1;
  }
  for (int64_t o = 0; o < nmat; o++) {
    int64_t ia = 0, ib = 0;
    if (nmat > 1) mm_batch(&g, o, &ia, &ib);
    const float *A = mat_at(a, ia, MK), *Go = G + o * MN;
    const void *B = mat_at(b, ib, KN);
    if (da && !g.ta) /* dA (M x K) = G op(B)^T */
      vl_gemm(false, !g.tb, M, K, N, 1.0f, Go, N, B, b->dtype, g.ldb, 1.0f, da + ia * MK, K);
    else if (da) /* dA stored K x M = op(B) G^T */
      vl_gemm(g.tb, true, K, M, N, 1.0f, (const float *)mat_at(bf, ib, KN), g.ldb, Go, VL_F32, N,
              1.0f, da + ia * MK, M);
    if (db && !g.tb) /* dB (K x N) = op(A)^T G */
      vl_gemm(!g.ta, false, K, N, M, 1.0f, A, g.lda, Go, VL_F32, N, 1.0f, db + ib * KN, N);
    else if (db) /* dB stored N x K = G^T op(A) */
      vl_gemm(true, g.ta, N, K, M, 1.0f, Go, N, A, VL_F32, g.lda, 1.0f, db + ib * KN, K);
  }
}

vl_tensor *vl_matmul(vl_ctx *c, vl_tensor *a, vl_tensor *b, bool trans_a, bool trans_b) {
  if (!c || !a || !b) return NULL;
  if (a->dtype != VL_F32 || !float_dtype(b->dtype)) {
    vl_error(VL_ERR_UNSUPPORTED, "matmul: a must be F32 and b F32/BF16/F16, got %s and %s",
             vl_dtype_name(a->dtype), vl_dtype_name(b->dtype));
    return NULL;
  }
  mm_geom g;
  if (mm_setup(&g, a, b, trans_a, trans_b) != VL_OK) return NULL;
  int64_t shape[VL_MAX_DIMS];
  if (g.nb + 2 > VL_MAX_DIMS) {
    vl_error(VL_ERR_LIMIT, "matmul: result would have more than %d dims", VL_MAX_DIMS);
    return NULL;
  }
  memcpy(shape, g.bshape, (size_t)g.nb * sizeof *shape);
  shape[g.nb] = g.M;
  shape[g.nb + 1] = g.N;
  vl_tensor *y = vl_new_uninit(c, VL_F32, g.nb + 2, shape);
  if (!y) return NULL;
  int64_t MK = g.M * g.K, KN = g.K * g.N, MN = g.M * g.N;
  if (mm_foldable(&g)) {
    vl_gemm(false, trans_b, g.M * g.nbatch, g.N, g.K, 1.0f, vl_f32(a), g.lda, b->data, b->dtype,
            g.ldb, 0.0f, vl_f32(y), g.N);
  } else {
    for (int64_t o = 0; o < g.nbatch; o++) {
      int64_t ia, ib;
      mm_batch(&g, o, &ia, &ib);
      vl_gemm(trans_a, trans_b, g.M, g.N, g.K, 1.0f, mat_at(a, ia, MK), g.lda, mat_at(b, ib, KN),
              b->dtype, g.ldb, 0.0f, vl_f32(y) + o * MN, g.N);
    }
  }
  vl_tensor *in[2] = {a, b};
  vl_node *n = vl_record(c, y, "matmul", matmul_backward, 2, in);
  if (n) {
    n->i[0] = trans_a;
    n->i[1] = trans_b;
  }
  return y;
}

/* ---- linear ------------------------------------------------------------ */

static int64_t rows_of(const vl_tensor *x) { /* product of all dims but the last */
  int64_t m = 1;
  for (int d = 0; d < x->ndim - 1; d++)
    m *= x->shape[d];
  return m;
}

static void linear_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *x = n->in[0], *w = n->in[1], *bias = n->n_in > 2 ? n->in[2] : NULL;
  const float *G = n->out->grad;
  int64_t out = w->shape[0], in = w->shape[1], M = rows_of(x);
  if (x->requires_grad) { /* dx (M x in) = G (M x out) w (out x in) */
    bool fresh;
    float *dx = vl_grad_fresh(c, x, &fresh);
    /* a frozen weight is the same for every backward of an explanation: its
     * packed copy is kept while a pack-cache scope is open */
    if (dx)
      (w->requires_grad ? vl_gemm : vl_gemm_const_b)(false, false, M, in, out, 1.0f, G, out,
                                                     w->data, w->dtype, in, fresh ? 0.0f : 1.0f, dx,
                                                     in);
  }
  if (w->requires_grad && w->dtype == VL_F32) { /* dw (out x in) = G^T x */
    float *dw = vl_grad(c, w);
    if (dw) vl_gemm(true, false, out, in, M, 1.0f, G, out, x->data, VL_F32, in, 1.0f, dw, in);
  }
  if (bias && bias->requires_grad) {
    float *dbias = vl_grad(c, bias);
    if (dbias)
      for (int64_t r = 0; r < M; r++)
        for (int64_t j = 0; j < out; j++)
          dbias[j] += G[r * out + j];
  }
}

vl_tensor *vl_linear(vl_ctx *c, vl_tensor *x, vl_tensor *w, vl_tensor *bias) {
  if (!c || !x || !w) return NULL;
  char sx[96], sw[96];
  if (x->dtype != VL_F32 || !float_dtype(w->dtype)) {
    vl_error(VL_ERR_UNSUPPORTED, "linear: x must be F32 and w F32/BF16/F16, got %s and %s",
             vl_dtype_name(x->dtype), vl_dtype_name(w->dtype));
    return NULL;
  }
  if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1]) {
    vl_error(VL_ERR_INVALID, "linear: x %s does not match weight %s (expected (out, in))",
             vl_shape_str(x, sx, sizeof sx), vl_shape_str(w, sw, sizeof sw));
    return NULL;
  }
  int64_t out = w->shape[0], in = w->shape[1];
  if (bias && (bias->dtype != VL_F32 || bias->ndim != 1 || bias->shape[0] != out)) {
    vl_error(VL_ERR_INVALID, "linear: bias %s %s does not match weight %s (expected F32 [%lld])",
             vl_dtype_name(bias->dtype), vl_shape_str(bias, sx, sizeof sx),
             vl_shape_str(w, sw, sizeof sw), (long long)out);
    return NULL;
  }
  int64_t shape[VL_MAX_DIMS];
  memcpy(shape, x->shape, (size_t)x->ndim * sizeof *shape);
  shape[x->ndim - 1] = out;
  vl_tensor *y = vl_new_uninit(c, VL_F32, x->ndim, shape);
  if (!y) return NULL;
  int64_t M = rows_of(x);
  float *yd = vl_f32(y);
  if (bias)
    for (int64_t r = 0; r < M; r++)
      memcpy(yd + r * out, bias->data, (size_t)out * sizeof(float));
  /* frozen weights times a few rows (a caption's decoder steps, again and
   * again): packed once while a pack-cache scope is open; many rows (a
   * vision tower's single forward) gain nothing from a kept copy */
  (w->requires_grad || M > 64 ? vl_gemm : vl_gemm_const_b)(false, true, M, out, in, 1.0f, vl_f32(x),
                                                           in, w->data, w->dtype, in,
                                                           bias ? 1.0f : 0.0f, yd, out);
  vl_tensor *ins[3] = {x, w, bias};
  vl_record(c, y, "linear", linear_backward, bias ? 3 : 2, ins);
  return y;
}
