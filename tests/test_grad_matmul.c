/* vl_matmul / vl_linear: forward against a naive double loop, backward
 * against central differences, BF16 weights, and shape errors. */
#include <string.h>

#include "base/error.h"
#include "base/half.h"
#include "gradcheck.h"
#include "tensor/ops.h"
#include "test.h"

typedef struct {
  bool ta, tb;
} mm_arg;

static vl_tensor *mm_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  const mm_arg *m = arg;
  return vl_matmul(c, in[0], in[1], m->ta, m->tb);
}

static vl_tensor *lin_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  return vl_linear(c, in[0], in[1], arg ? in[2] : NULL);
}

static vl_tensor *mk(vl_ctx *c, int nd, const int64_t *shape, unsigned seed) {
  vl_tensor *t = vl_new(c, VL_F32, nd, shape);
  if (t) {
    gc_fill(t, seed, -1, 1);
    t->requires_grad = true;
  }
  return t;
}

/* Naive reference of one output element of a broadcast batched matmul with
 * a (Ba..., ar, ac) and b (Bb..., br, bc), both batch shapes given padded to
 * the output's nb dims. */
static double ref_elem(const vl_tensor *a, const vl_tensor *b, bool ta, bool tb, int nb,
                       const int64_t *oidx, int64_t i, int64_t j) {
  int64_t ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
  int64_t br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
  int64_t K = ta ? ar : ac, aoff = 0, boff = 0;
  for (int d = 0; d < nb; d++) {
    int da = d - (nb - (a->ndim - 2)), db = d - (nb - (b->ndim - 2));
    if (da >= 0) aoff = aoff * a->shape[da] + (a->shape[da] == 1 ? 0 : oidx[d]);
    if (db >= 0) boff = boff * b->shape[db] + (b->shape[db] == 1 ? 0 : oidx[d]);
  }
  const float *A = vl_f32(a) + aoff * ar * ac, *B = vl_f32(b) + boff * br * bc;
  double s = 0;
  for (int64_t k = 0; k < K; k++)
    s += (double)(ta ? A[k * ac + i] : A[i * ac + k]) * (tb ? B[j * bc + k] : B[k * bc + j]);
  return s;
}

static double forward_err(vl_ctx *c, vl_tensor *a, vl_tensor *b, bool ta, bool tb) {
  vl_tensor *y = vl_matmul(c, a, b, ta, tb);
  if (!y) return 1e30;
  int nb = y->ndim - 2;
  int64_t M = y->shape[nb], N = y->shape[nb + 1], nbatch = y->numel / (M * N);
  double maxd = 0;
  for (int64_t o = 0; o < nbatch; o++) {
    int64_t oidx[VL_MAX_DIMS], r = o;
    for (int d = nb - 1; d >= 0; d--) {
      oidx[d] = r % y->shape[d];
      r /= y->shape[d];
    }
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double d = fabs(vl_f32(y)[(o * M + i) * N + j] - ref_elem(a, b, ta, tb, nb, oidx, i, j));
        if (d > maxd) maxd = d;
      }
  }
  return maxd;
}

/* Every flag combination, with a's batch folded (b 2-D), b batched and
 * broadcast, and a broadcast against b's batch. */
static void matmul_all_flags_and_broadcasts(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t M = 2, K = 3, N = 3;
  for (int t = 0; t < 4; t++) {
    bool ta = t & 1, tb = t & 2;
    int64_t am[2] = {ta ? K : M, ta ? M : K}, bm[2] = {tb ? N : K, tb ? K : N};
    struct {
      int na, nb;
      int64_t ab[2], bb[2];
    } cases[] = {
        {2, 0, {2, 3}, {0}}, /* b 2-D */
        {2, 1, {2, 3}, {3}}, /* b batched, broadcast over a's first dim */
        {1, 2, {1}, {2, 1}}, /* a broadcast over b's batch, b over a's */
        {0, 1, {0}, {2}},    /* a 2-D, b batched */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
      int64_t as[4], bs[4];
      int na = cases[ci].na, nbb = cases[ci].nb;
      memcpy(as, cases[ci].ab, (size_t)na * sizeof *as);
      memcpy(as + na, am, sizeof am);
      memcpy(bs, cases[ci].bb, (size_t)nbb * sizeof *bs);
      memcpy(bs + nbb, bm, sizeof bm);
      vl_tensor *in[2] = {mk(c, na + 2, as, 11 + t), mk(c, nbb + 2, bs, 23 + t)};
      REQUIRE(in[0] && in[1]);
      char name[64];
      snprintf(name, sizeof name, "matmul ta=%d tb=%d case %zu", ta, tb, ci);
      double fe = forward_err(c, in[0], in[1], ta, tb);
      CHECK(fe < 1e-5);
      mm_arg arg = {ta, tb};
      double e = gradcheck(name, mm_fwd, &arg, 2, in, 1e-2f, 2e-3);
      CHECK(e < 2e-3);
    }
  }
  vl_ctx_free(c);
}

static void linear_with_and_without_bias(void) {
  vl_ctx *c = vl_ctx_new();
  int64_t xs[3] = {2, 3, 7}, ws[2] = {5, 7}, bs[1] = {5};
  vl_tensor *in[3] = {mk(c, 3, xs, 1), mk(c, 2, ws, 2), mk(c, 1, bs, 3)};
  REQUIRE(in[0] && in[1] && in[2]);
  /* forward against matmul(x, w^T) + bias by hand */
  vl_tensor *y = vl_linear(c, in[0], in[1], in[2]);
  REQUIRE(y && y->ndim == 3 && y->shape[2] == 5);
  double maxd = 0;
  for (int64_t r = 0; r < 6; r++)
    for (int64_t o = 0; o < 5; o++) {
      double s = vl_f32(in[2])[o];
      for (int64_t k = 0; k < 7; k++)
        s += (double)vl_f32(in[0])[r * 7 + k] * vl_f32(in[1])[o * 7 + k];
      double d = fabs(vl_f32(y)[r * 5 + o] - s);
      if (d > maxd) maxd = d;
    }
  CHECK(maxd < 1e-5);
  CHECK(gradcheck("linear+bias", lin_fwd, (void *)1, 3, in, 1e-2f, 2e-3) < 2e-3);
  CHECK(gradcheck("linear", lin_fwd, NULL, 2, in, 1e-2f, 2e-3) < 2e-3);
  vl_ctx_free(c);
}

/* Bigger than one gemm block (KC=256, MC=144): the backward products take
 * the blocked path. The formulas are already checked by finite differences
 * above, so here the gradients are compared with a direct double loop
 * (cheaper than differencing thousands of inputs). */
static void linear_grad_multi_block(void) {
  vl_ctx *c = vl_ctx_new();
  vl_ctx_set_recording(c, true);
  enum { R = 150, IN = 270, OUT = 20 };
  int64_t xs[2] = {R, IN}, ws[2] = {OUT, IN};
  vl_tensor *x = mk(c, 2, xs, 5), *w = mk(c, 2, ws, 6);
  REQUIRE(x && w);
  vl_tensor *y = vl_linear(c, x, w, NULL);
  REQUIRE(y);
  static float g[R * OUT], rx[R * IN], rw[OUT * IN];
  gc_fill(&(vl_tensor){.dtype = VL_F32, .numel = R * OUT, .data = g}, 9, -1, 1);
  REQUIRE(vl_backward(c, y, g) == VL_OK);
  for (int r = 0; r < R; r++)
    for (int k = 0; k < IN; k++) {
      double s = 0;
      for (int o = 0; o < OUT; o++)
        s += (double)g[r * OUT + o] * vl_f32(w)[o * IN + k];
      rx[r * IN + k] = (float)s;
    }
  for (int o = 0; o < OUT; o++)
    for (int k = 0; k < IN; k++) {
      double s = 0;
      for (int r = 0; r < R; r++)
        s += (double)g[r * OUT + o] * vl_f32(x)[r * IN + k];
      rw[o * IN + k] = (float)s;
    }
  CHECK(test_max_rel_err(x->grad, rx, R * IN) < 1e-5);
  CHECK(test_max_rel_err(w->grad, rw, OUT * IN) < 1e-5);
  vl_ctx_free(c);
}

/* BF16/F16 weights: forward equals F32 math on the rounded weight; gradient
 * reaches x (matching the F32 path) and the weight gets none. */
static void half_weight_forward_and_grad_to_x(void) {
  for (int half = 0; half < 2; half++) {
    vl_dtype wt = half ? VL_F16 : VL_BF16;
    vl_ctx *c = vl_ctx_new();
    vl_ctx_set_recording(c, true);
    int64_t xs[2] = {9, 40}, ws[2] = {33, 40}, bs[1] = {33};
    vl_tensor *x = mk(c, 2, xs, 7), *wf = mk(c, 2, ws, 8), *bias = mk(c, 1, bs, 9);
    vl_tensor *wh = vl_new(c, wt, 2, ws);
    REQUIRE(x && wf && bias && wh);
    wf->requires_grad = false;
    bias->requires_grad = false;
    wh->requires_grad = true; /* asked for, but no gradient for non-F32 weights */
    uint16_t *hd = wh->data;
    for (int64_t i = 0; i < wf->numel; i++) {
      hd[i] = half ? vl_f32_to_f16(vl_f32(wf)[i]) : vl_f32_to_bf16(vl_f32(wf)[i]);
      vl_f32(wf)[i] = half ? vl_f16_to_f32(hd[i]) : vl_bf16_to_f32(hd[i]);
    }
    vl_tensor *yh = vl_linear(c, x, wh, bias);
    REQUIRE(yh);
    REQUIRE(vl_backward(c, yh, NULL) == VL_OK);
    float gx[9 * 40];
    memcpy(gx, x->grad, sizeof gx);
    CHECK(wh->grad == NULL);
    vl_zero_grads(c);
    vl_tensor *yf = vl_linear(c, x, wf, bias);
    REQUIRE(yf && vl_backward(c, yf, NULL) == VL_OK);
    CHECK(test_max_rel_err(vl_f32(yh), vl_f32(yf), (size_t)yf->numel) < 1e-6);
    CHECK(test_max_rel_err(gx, x->grad, 9 * 40) < 1e-6);
    /* matmul with a transposed and a half b: the path that widens b */
    vl_zero_grads(c);
    int64_t as[2] = {40, 9};
    vl_tensor *at = mk(c, 2, as, 10);
    vl_tensor *mh = vl_matmul(c, at, wh, true, true);
    REQUIRE(mh && vl_backward(c, mh, NULL) == VL_OK);
    float ga[40 * 9];
    memcpy(ga, at->grad, sizeof ga);
    at->grad = NULL;
    vl_tensor *mf = vl_matmul(c, at, wf, true, true);
    REQUIRE(mf && vl_backward(c, mf, NULL) == VL_OK);
    CHECK(test_max_rel_err(vl_f32(mh), vl_f32(mf), (size_t)mf->numel) < 1e-6);
    CHECK(test_max_rel_err(ga, at->grad, 40 * 9) < 1e-6);
    vl_ctx_free(c);
  }
}

static void shape_errors_are_reported(void) {
  vl_ctx *c = vl_ctx_new();
  int64_t s23[2] = {2, 3}, s43[2] = {4, 3}, s4[1] = {4}, s5[1] = {5}, b23[3] = {2, 2, 3},
          b333[3] = {3, 3, 4};
  vl_tensor *a = vl_new(c, VL_F32, 2, s23), *w = vl_new(c, VL_F32, 2, s43);
  vl_tensor *v4 = vl_new(c, VL_F32, 1, s4), *v5 = vl_new(c, VL_F32, 1, s5);
  vl_clear_error();
  CHECK(vl_matmul(c, a, w, false, false) == NULL); /* K 3 vs 4 */
  CHECK(vl_last_error_code() == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "matmul") != NULL);
  CHECK(vl_matmul(c, a, w, false, true) != NULL); /* (2,3)(3,4) fine */
  CHECK(vl_matmul(c, a, v4, false, false) == NULL);
  CHECK(vl_matmul(c, vl_new(c, VL_F32, 3, b23), vl_new(c, VL_F32, 3, b333), false, false) == NULL);
  CHECK(vl_linear(c, a, w, v5) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_INVALID);
  CHECK(vl_linear(c, a, w, v4) != NULL);
  CHECK(vl_linear(c, a, v4, NULL) == NULL); /* weight must be 2-D */
  CHECK(vl_linear(c, NULL, w, NULL) == NULL);
  CHECK(vl_matmul(c, a, NULL, false, false) == NULL);
  vl_tensor *ai = vl_new(c, VL_I64, 2, s23);
  CHECK(vl_matmul(c, ai, w, false, true) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_UNSUPPORTED);
  vl_ctx_free(c);
}

int main(void) {
  RUN(matmul_all_flags_and_broadcasts);
  RUN(linear_with_and_without_bias);
  RUN(linear_grad_multi_block);
  RUN(half_weight_forward_and_grad_to_x);
  RUN(shape_errors_are_reported);
  return test_summary();
}
