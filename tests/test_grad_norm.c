/* LayerNorm, RMSNorm, softmax, log-softmax and cross-entropy: values against
 * PyTorch 1.13 (tools/ops_reference.py), invariants, and gradchecks. */
#include <string.h>

#include "base/error.h"
#include "gradcheck.h"
#include "tensor/ops.h"
#include "test.h"

static vl_tensor *mk(vl_ctx *c, int nd, const int64_t *shape, unsigned seed, bool grad) {
  vl_tensor *t = vl_new(c, VL_F32, nd, shape);
  gc_fill(t, seed, -1.5f, 1.5f);
  t->requires_grad = grad;
  return t;
}

/* The two rows tools/ops_reference.py uses. */
static const float ref_x[8] = {1, 2, 3, 4, -1, 0.5f, 0, 2.5f};
static const float ref_w[4] = {0.5f, -1, 2, 1.5f}, ref_b[4] = {0.1f, 0.2f, -0.3f, 0};

static vl_tensor *from(vl_ctx *c, const float *v, int64_t r, int64_t n) {
  vl_tensor *t = r ? vl_new_f32(c, 2, r, n) : vl_new_f32(c, 1, n);
  memcpy(t->data, v, (size_t)t->numel * sizeof(float));
  return t;
}

static void check_vals(const vl_tensor *y, const float *want, int n, double tol) {
  for (int i = 0; i < n; i++)
    CHECK_NEAR(vl_f32(y)[i], want[i], tol);
}

/* ---- layernorm / rmsnorm ---------------------------------------------- */

static void norm_values_match_torch(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *x = from(c, ref_x, 2, 4), *w = from(c, ref_w, 0, 4), *b = from(c, ref_b, 0, 4);
  const float ln[8] = {-0.57081771f, 0.64721181f, 0.59442361f,  2.01245313f,
                       -0.48834660f, 0.20000000f, -1.08446213f, 2.35338638f};
  const float rms[8] = {0.18257417f,  -0.73029669f, 2.19089008f, 2.19089008f,
                        -0.36514827f, -0.36514827f, 0.00000000f, 2.73861206f};
  vl_tensor *y = vl_layernorm(c, x, w, b, 1e-5f), *r = vl_rmsnorm(c, x, w, 1e-6f);
  REQUIRE(y && r);
  check_vals(y, ln, 8, 2e-6);
  check_vals(r, rms, 8, 2e-6);
  vl_ctx_free(c);
}

static void layernorm_normalises_with_large_offset(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {5, 64};
  vl_tensor *x = mk(c, 2, s, 3, false);
  for (int64_t i = 0; i < x->numel; i++)
    vl_f32(x)[i] += 1000.0f; /* |mean| >> std */
  vl_tensor *y = vl_layernorm(c, x, NULL, NULL, 0);
  REQUIRE(y);
  for (int r = 0; r < 5; r++) {
    double m = 0, v = 0;
    for (int j = 0; j < 64; j++)
      m += vl_f32(y)[r * 64 + j];
    m /= 64;
    for (int j = 0; j < 64; j++)
      v += (vl_f32(y)[r * 64 + j] - m) * (vl_f32(y)[r * 64 + j] - m);
    CHECK_NEAR(m, 0, 1e-5);
    CHECK_NEAR(v / 64, 1, 2e-3); /* float inputs near 1000 carry ~1e-4 rounding */
  }
  vl_ctx_free(c);
}

typedef struct {
  int which; /* 0 layernorm, 1 rmsnorm */
  bool w, b;
} norm_arg;

static vl_tensor *norm_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  const norm_arg *a = arg;
  if (a->which == 0) return vl_layernorm(c, in[0], a->w ? in[1] : NULL, a->b ? in[2] : NULL, 1e-5f);
  return vl_rmsnorm(c, in[0], a->w ? in[1] : NULL, 1e-6f);
}

static void norm_backward(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {2, 2, 5}, sw[] = {5};
  vl_tensor *in[3] = {mk(c, 3, s, 4, true), mk(c, 1, sw, 5, true), mk(c, 1, sw, 6, true)};
  const norm_arg cases[] = {{0, true, true},  {0, false, false}, {0, true, false},
                            {0, false, true}, {1, true, false},  {1, false, false}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    in[1]->requires_grad = cases[k].w;
    in[2]->requires_grad = cases[k].b;
    double e = gradcheck(cases[k].which ? "rmsnorm" : "layernorm", norm_fwd, (void *)&cases[k], 3,
                         in, 1e-2f, 1e-3);
    CHECK(e < 1e-3);
  }
  /* Weights only (input frozen): the dw / db path alone. */
  in[0]->requires_grad = false;
  in[1]->requires_grad = in[2]->requires_grad = true;
  CHECK(gradcheck("layernorm w,b only", norm_fwd, (void *)&cases[0], 3, in, 1e-2f, 1e-3) < 1e-3);
  CHECK(gradcheck("rmsnorm w only", norm_fwd, (void *)&cases[4], 3, in, 1e-2f, 1e-3) < 1e-3);
  vl_ctx_free(c);
}

static void norm_large_threads_and_errors(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {300, 200}, sw[] = {200}, bad[] = {199};
  vl_tensor *x = mk(c, 2, s, 7, false), *w = mk(c, 1, sw, 8, false);
  vl_tensor *y = vl_rmsnorm(c, x, w, 1e-6f);
  REQUIRE(y);
  double worst = 0;
  for (int r = 0; r < 300; r++) {
    double ss = 0;
    for (int j = 0; j < 200; j++)
      ss += (double)vl_f32(x)[r * 200 + j] * vl_f32(x)[r * 200 + j];
    double rs = 1 / sqrt(ss / 200 + 1e-6);
    for (int j = 0; j < 200; j++) {
      double want = vl_f32(x)[r * 200 + j] * rs * vl_f32(w)[j];
      double d = fabs(vl_f32(y)[r * 200 + j] - want);
      if (d > worst) worst = d;
    }
  }
  CHECK(worst < 1e-5);
  vl_tensor *wb = mk(c, 1, bad, 9, false);
  vl_clear_error();
  CHECK(vl_layernorm(c, x, wb, NULL, 1e-5f) == NULL);
  CHECK(strstr(vl_last_error(), "vl_layernorm: weight has shape [199], expected [200]"));
  CHECK(vl_rmsnorm(c, x, NULL, -1) == NULL);
  CHECK(vl_layernorm(c, NULL, w, NULL, 1e-5f) == NULL);
  vl_ctx_free(c);
}

/* ---- softmax ----------------------------------------------------------- */

static void softmax_values_match_torch(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *x = from(c, ref_x, 2, 4);
  const float sm[8] = {0.03205860f, 0.08714432f, 0.23688282f, 0.64391426f,
                       0.02420404f, 0.10847497f, 0.06579339f, 0.80152761f};
  const float lsm[8] = {-3.44018970f, -2.44018970f, -1.44018970f, -0.44018970f,
                        -3.72123587f, -2.22123587f, -2.72123587f, -0.22123587f};
  vl_tensor *y = vl_softmax(c, x), *l = vl_log_softmax(c, x);
  REQUIRE(y && l);
  check_vals(y, sm, 8, 1e-7);
  check_vals(l, lsm, 8, 1e-6);
  vl_ctx_free(c);
}

static void softmax_stable_and_sums_to_one(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {200, 300};
  vl_tensor *x = mk(c, 2, s, 9, false);
  for (int64_t i = 0; i < 300; i++)
    vl_f32(x)[i] = 1000.0f + (float)i; /* would overflow expf */
  for (int64_t i = 300; i < 600; i++)
    vl_f32(x)[i] = -INFINITY; /* fully masked row */
  vl_f32(x)[600] = -INFINITY; /* one masked entry */
  vl_tensor *y = vl_softmax(c, x), *l = vl_log_softmax(c, x);
  REQUIRE(y && l);
  for (int r = 0; r < 200; r++) {
    double sum = 0;
    for (int j = 0; j < 300; j++)
      sum += vl_f32(y)[r * 300 + j];
    if (r == 1)
      CHECK_NEAR(sum, 0, 0);
    else
      CHECK_NEAR(sum, 1, 1e-5);
  }
  CHECK_NEAR(vl_f32(l)[299], log(1 - exp(-1.0)), 1e-5); /* geometric series */
  CHECK(vl_f32(y)[600] == 0 && isinf(vl_f32(l)[600]));
  vl_ctx_free(c);
}

typedef vl_tensor *(*unfn)(vl_ctx *, vl_tensor *);
static vl_tensor *un_fwd(vl_ctx *c, vl_tensor **in, void *arg) { return ((unfn)arg)(c, in[0]); }

static void softmax_backward(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {2, 1, 6}, s1[] = {3, 1};
  vl_tensor *x = mk(c, 3, s, 10, true), *x1 = mk(c, 2, s1, 11, true);
  CHECK(gradcheck("softmax", un_fwd, (void *)vl_softmax, 1, &x, 1e-2f, 1e-3) < 1e-3);
  CHECK(gradcheck("log_softmax", un_fwd, (void *)vl_log_softmax, 1, &x, 1e-2f, 1e-3) < 1e-3);
  CHECK(gradcheck("softmax C=1", un_fwd, (void *)vl_softmax, 1, &x1, 1e-2f, 1e-3) < 1e-3);
  vl_ctx_free(c);
}

/* ---- cross-entropy ----------------------------------------------------- */

typedef struct {
  vl_tensor *t;
  int64_t ignore;
} ce_arg;

static vl_tensor *ce_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  const ce_arg *a = arg;
  return vl_cross_entropy(c, in[0], a->t, a->ignore);
}

static void cross_entropy_values(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *x = from(c, ref_x, 2, 4);
  int64_t two = 2;
  vl_tensor *t = vl_new(c, VL_I64, 1, &two), *t32 = vl_new(c, VL_I32, 1, &two);
  ((int64_t *)t->data)[0] = 3;
  ((int64_t *)t->data)[1] = 1;
  ((int32_t *)t32->data)[0] = -100;
  ((int32_t *)t32->data)[1] = 2;
  vl_tensor *l = vl_cross_entropy(c, x, t, -100), *l2 = vl_cross_entropy(c, x, t32, -100);
  REQUIRE(l && l2 && l->numel == 1);
  CHECK_NEAR(vl_f32(l)[0], 1.33071278, 1e-6);
  CHECK_NEAR(vl_f32(l2)[0], 2.72123587, 1e-6);
  /* Uniform logits: log V. */
  const int64_t su[] = {3, 50};
  vl_tensor *u = vl_new(c, VL_F32, 2, su);
  int64_t three = 3;
  vl_tensor *tu = vl_new(c, VL_I64, 1, &three);
  for (int i = 0; i < 3; i++)
    ((int64_t *)tu->data)[i] = i * 7;
  vl_tensor *lu = vl_cross_entropy(c, u, tu, -1);
  REQUIRE(lu);
  CHECK_NEAR(vl_f32(lu)[0], log(50.0), 1e-6);
  /* All ignored: NaN, as PyTorch's mean over nothing. */
  for (int i = 0; i < 3; i++)
    ((int64_t *)tu->data)[i] = -1;
  lu = vl_cross_entropy(c, u, tu, -1);
  CHECK(lu && isnan(vl_f32(lu)[0]));
  /* Errors. */
  ((int64_t *)tu->data)[1] = 50;
  vl_clear_error();
  CHECK(vl_cross_entropy(c, u, tu, -1) == NULL && strstr(vl_last_error(), "target 50 at row 1"));
  CHECK(vl_cross_entropy(c, x, tu, -1) == NULL && vl_last_error_code() == VL_ERR_INVALID);
  CHECK(vl_cross_entropy(c, x, x, -1) == NULL && vl_last_error_code() == VL_ERR_UNSUPPORTED);
  vl_ctx_free(c);
}

static void cross_entropy_backward(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {4, 5};
  vl_tensor *x = mk(c, 2, s, 12, true);
  int64_t n = 4;
  vl_tensor *t = vl_new(c, VL_I64, 1, &n);
  const int64_t tv[] = {0, 4, -100, 3};
  memcpy(t->data, tv, sizeof tv);
  ce_arg a = {t, -100};
  CHECK(gradcheck("cross_entropy ignore", ce_fwd, &a, 1, &x, 1e-2f, 1e-3) < 1e-3);
  vl_tensor *t32 = vl_new(c, VL_I32, 1, &n);
  for (int i = 0; i < 5; i++)
    ((int32_t *)t32->data)[i] = (int32_t)(i + 1);
  ce_arg a2 = {t32, -1};
  CHECK(gradcheck("cross_entropy i32", ce_fwd, &a2, 1, &x, 1e-2f, 1e-3) < 1e-3);
  vl_ctx_free(c);
}

/* layernorm -> gelu -> rmsnorm -> softmax * 3 -> cross_entropy, gradients
 * against PyTorch autograd (tools/ops_reference.py, "composed_*"). */
static void composed_backward_matches_torch_autograd(void) {
  vl_ctx *c = vl_ctx_new();
  vl_ctx_set_recording(c, true);
  vl_tensor *x = from(c, ref_x, 2, 4), *w = from(c, ref_w, 0, 4), *b = from(c, ref_b, 0, 4);
  x->requires_grad = w->requires_grad = b->requires_grad = true;
  int64_t two = 2;
  vl_tensor *t = vl_new(c, VL_I64, 1, &two);
  ((int64_t *)t->data)[0] = 2;
  vl_tensor *h = vl_rmsnorm(c, vl_gelu(c, vl_layernorm(c, x, w, b, 1e-5f)), NULL, 1e-6f);
  vl_tensor *loss = vl_cross_entropy(c, vl_scale(c, vl_softmax(c, h), 3.0f), t, -100);
  REQUIRE(loss);
  CHECK_NEAR(vl_f32(loss)[0], 2.11994742, 1e-6);
  REQUIRE(vl_backward(c, loss, NULL) == VL_OK);
  const float dx[8] = {0.04238231f,  0.12882532f, -0.38479685f, 0.21358922f,
                       -0.01338954f, 0.02521350f, -0.00142542f, -0.01039854f};
  const float dw[4] = {0.02198373f, 0.03422169f, -0.11662173f, 0.10558929f};
  const float db[4] = {-0.01864878f, -0.11398941f, -0.25668771f, 0.07997982f};
  REQUIRE(x->grad && w->grad && b->grad);
  CHECK(test_max_rel_err(x->grad, dx, 8) < 1e-5);
  CHECK(test_max_rel_err(w->grad, dw, 4) < 1e-5);
  CHECK(test_max_rel_err(b->grad, db, 4) < 1e-5);
  vl_ctx_free(c);
}

int main(void) {
  RUN(norm_values_match_torch);
  RUN(layernorm_normalises_with_large_offset);
  RUN(norm_backward);
  RUN(norm_large_threads_and_errors);
  RUN(softmax_values_match_torch);
  RUN(softmax_stable_and_sums_to_one);
  RUN(softmax_backward);
  RUN(cross_entropy_values);
  RUN(cross_entropy_backward);
  RUN(composed_backward_matches_torch_autograd);
  return test_summary();
}
