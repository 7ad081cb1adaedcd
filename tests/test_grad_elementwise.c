/* Elementwise ops and activations: forward values against PyTorch 1.13
 * (tools/ops_reference.py prints them) and every backward by gradcheck. */
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

typedef vl_tensor *(*binfn)(vl_ctx *, vl_tensor *, vl_tensor *);
static vl_tensor *bin_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  return ((binfn)arg)(c, in[0], in[1]);
}

static void check_bin(binfn f, const char *name, int na, const int64_t *sa, int nb,
                      const int64_t *sb) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *in[2] = {mk(c, na, sa, 3, true), mk(c, nb, sb, 4, true)};
  double e = gradcheck(name, bin_fwd, (void *)f, 2, in, 1e-2f, 1e-3);
  CHECK(e < 1e-3);
  vl_ctx_free(c);
}

/* Shapes kept small: every gradcheck costs two forwards per input element. */
static void broadcasting_backward(void) {
  const int64_t s232[] = {2, 3, 2}, s2[] = {2}, s31[] = {3, 1}, s132[] = {1, 3, 2},
                s211[] = {2, 1, 1}, s1[] = {1}, s212[] = {2, 1, 2};
  binfn fs[] = {vl_add, vl_mul};
  const char *names[] = {"add", "mul"};
  for (int k = 0; k < 2; k++) {
    check_bin(fs[k], names[k], 3, s232, 3, s232);
    check_bin(fs[k], names[k], 3, s232, 1, s2);
    check_bin(fs[k], names[k], 1, s2, 3, s232);
    check_bin(fs[k], names[k], 3, s232, 2, s31);
    check_bin(fs[k], names[k], 3, s132, 3, s211);
    check_bin(fs[k], names[k], 1, s1, 3, s232);
    check_bin(fs[k], names[k], 3, s212, 2, s31);
  }
  /* sub differs from add only in b's sign. */
  check_bin(vl_sub, "sub", 3, s232, 1, s2);
  check_bin(vl_sub, "sub", 3, s212, 2, s31);
}

static void broadcast_forward_values(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *a = vl_new_f32(c, 2, (int64_t)2, (int64_t)3);
  vl_tensor *b = vl_new_f32(c, 2, (int64_t)2, (int64_t)1);
  vl_tensor *r = vl_new_f32(c, 1, (int64_t)3);
  for (int i = 0; i < 6; i++)
    vl_f32(a)[i] = (float)i;
  vl_f32(b)[0] = 10;
  vl_f32(b)[1] = 20;
  for (int i = 0; i < 3; i++)
    vl_f32(r)[i] = (float)(i + 1);
  vl_tensor *s = vl_sub(c, a, b), *m = vl_mul(c, b, r), *ad = vl_add(c, r, a);
  REQUIRE(s && m && ad);
  CHECK(s->ndim == 2 && s->shape[0] == 2 && s->shape[1] == 3);
  const float want_s[] = {-10, -9, -8, -17, -16, -15}, want_m[] = {10, 20, 30, 20, 40, 60},
              want_a[] = {1, 3, 5, 4, 6, 8};
  for (int i = 0; i < 6; i++) {
    CHECK_NEAR(vl_f32(s)[i], want_s[i], 0);
    CHECK_NEAR(vl_f32(m)[i], want_m[i], 0);
    CHECK_NEAR(vl_f32(ad)[i], want_a[i], 0);
  }
  vl_tensor *sc = vl_scale(c, a, -2.0f), *as = vl_add_scalar(c, a, 0.5f);
  REQUIRE(sc && as);
  CHECK_NEAR(vl_f32(sc)[5], -10.0, 0);
  CHECK_NEAR(vl_f32(as)[5], 5.5, 0);
  vl_ctx_free(c);
}

static void large_broadcast_matches_small_path(void) {
  /* Above the threading threshold: (64, 33, 40) * (33, 1) and a bias. */
  vl_ctx *c = vl_ctx_new();
  const int64_t sx[] = {64, 33, 40}, sw[] = {33, 1}, sb[] = {40};
  vl_tensor *x = mk(c, 3, sx, 1, false), *w = mk(c, 2, sw, 2, false), *b = mk(c, 1, sb, 3, false);
  vl_tensor *y = vl_add(c, vl_mul(c, x, w), b);
  REQUIRE(y);
  int bad = 0;
  for (int64_t i = 0; i < y->numel; i++) {
    int64_t k = i % 40, t = (i / 40) % 33;
    float want = vl_f32(x)[i] * vl_f32(w)[t] + vl_f32(b)[k];
    bad += vl_f32(y)[i] != want;
  }
  CHECK(bad == 0);
  vl_ctx_free(c);
}

static vl_tensor *scale_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  (void)arg;
  return vl_add_scalar(c, vl_scale(c, in[0], -3.5f), 2.0f);
}

static void scale_backward(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {3, 5};
  vl_tensor *x = mk(c, 2, s, 7, true);
  CHECK(gradcheck("scale+add_scalar", scale_fwd, NULL, 1, &x, 1e-2f, 1e-3) < 1e-3);
  vl_ctx_free(c);
}

static void binary_errors(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *a = vl_new_f32(c, 2, (int64_t)2, (int64_t)3), *b = vl_new_f32(c, 1, (int64_t)4);
  vl_clear_error();
  CHECK(vl_add(c, a, b) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "vl_add: shapes [2, 3] and [4] do not broadcast") != NULL);
  CHECK(vl_mul(c, a, NULL) == NULL);
  CHECK(vl_scale(c, NULL, 2) == NULL);
  int64_t s = 3;
  vl_tensor *ids = vl_new(c, VL_I64, 1, &s);
  CHECK(vl_sub(c, a, ids) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_UNSUPPORTED);
  CHECK(vl_relu(c, ids) == NULL);
  CHECK(vl_swiglu(c, a, b) == NULL && strstr(vl_last_error(), "same shape"));
  vl_ctx_free(c);
}

/* ---- activations ------------------------------------------------------- */

typedef vl_tensor *(*unfn)(vl_ctx *, vl_tensor *);
static vl_tensor *un_fwd(vl_ctx *c, vl_tensor **in, void *arg) { return ((unfn)arg)(c, in[0]); }

/* Values from PyTorch 1.13 (tools/ops_reference.py) at x = -3, -1, -0.5, 0, 0.5, 1, 3. */
static const float act_x[7] = {-3, -1, -0.5f, 0, 0.5f, 1, 3};
static const struct {
  const char *name;
  unfn f;
  float y[7];
} act_ref[] = {
    {"relu",
     vl_relu,
     {0.00000000f, 0.00000000f, 0.00000000f, 0.00000000f, 0.50000000f, 1.00000000f, 3.00000000f}},
    {"gelu",
     vl_gelu,
     {-0.00404969f, -0.15865525f, -0.15426877f, 0.00000000f, 0.34573123f, 0.84134475f,
      2.99595031f}},
    {"gelu_tanh",
     vl_gelu_tanh,
     {-0.00363739f, -0.15880801f, -0.15428599f, 0.00000000f, 0.34571401f, 0.84119199f,
      2.99636261f}},
    {"quick_gelu",
     vl_quick_gelu,
     {-0.01807131f, -0.15420423f, -0.14961156f, 0.00000000f, 0.35038844f, 0.84579577f,
      2.98192869f}},
    {"silu",
     vl_silu,
     {-0.14227762f, -0.26894142f, -0.18877033f, 0.00000000f, 0.31122967f, 0.73105858f,
      2.85772238f}},
    {"sigmoid",
     vl_sigmoid,
     {0.04742587f, 0.26894142f, 0.37754067f, 0.50000000f, 0.62245933f, 0.73105858f, 0.95257413f}},
    {"tanh",
     vl_tanh,
     {-0.99505475f, -0.76159416f, -0.46211716f, 0.00000000f, 0.46211716f, 0.76159416f,
      0.99505475f}},
};

static void activation_values(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *x = vl_new_f32(c, 1, (int64_t)7);
  memcpy(x->data, act_x, sizeof act_x);
  for (size_t k = 0; k < sizeof act_ref / sizeof *act_ref; k++) {
    vl_tensor *y = act_ref[k].f(c, x);
    REQUIRE(y);
    for (int i = 0; i < 7; i++) {
      if (fabsf(vl_f32(y)[i] - act_ref[k].y[i]) > 2e-6f)
        printf("  %s(%g) = %.8g, want %.8g\n", act_ref[k].name, (double)act_x[i],
               (double)vl_f32(y)[i], (double)act_ref[k].y[i]);
      CHECK_NEAR(vl_f32(y)[i], act_ref[k].y[i], 2e-6);
    }
  }
  vl_ctx_free(c);
}

static void activation_backward(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {2, 6};
  vl_tensor *x = mk(c, 2, s, 11, true);
  for (int64_t i = 0; i < x->numel; i++)
    vl_f32(x)[i] *= 2.0f; /* [-3, 3) */
  /* relu's kink: keep points away from 0 so central differences are valid. */
  for (int64_t i = 0; i < x->numel; i++)
    if (fabsf(vl_f32(x)[i]) < 0.05f) vl_f32(x)[i] = 0.3f;
  for (size_t k = 0; k < sizeof act_ref / sizeof *act_ref; k++) {
    double e = gradcheck(act_ref[k].name, un_fwd, (void *)act_ref[k].f, 1, &x, 1e-2f, 2e-3);
    CHECK(e < 2e-3);
  }
  vl_ctx_free(c);
}

static void activation_extremes_are_finite(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *x = vl_new_f32(c, 1, (int64_t)4);
  const float v[] = {-100, -30, 30, 100};
  memcpy(x->data, v, sizeof v);
  for (size_t k = 0; k < sizeof act_ref / sizeof *act_ref; k++) {
    vl_tensor *y = act_ref[k].f(c, x);
    REQUIRE(y);
    for (int i = 0; i < 4; i++)
      CHECK(isfinite(vl_f32(y)[i]));
  }
  vl_tensor *s = vl_silu(c, x);
  CHECK_NEAR(vl_f32(s)[3], 100.0, 1e-4);
  CHECK_NEAR(vl_f32(s)[0], 0.0, 1e-30);
  vl_ctx_free(c);
}

static vl_tensor *swiglu_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  (void)arg;
  return vl_swiglu(c, in[0], in[1]);
}

static void swiglu_matches_silu_times_up(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {2, 4};
  vl_tensor *in[2] = {mk(c, 2, s, 21, true), mk(c, 2, s, 22, true)};
  vl_tensor *y = vl_swiglu(c, in[0], in[1]), *r = vl_mul(c, vl_silu(c, in[0]), in[1]);
  REQUIRE(y && r);
  CHECK(test_max_rel_err(vl_f32(y), vl_f32(r), 8) < 1e-6);
  CHECK(gradcheck("swiglu", swiglu_fwd, NULL, 2, in, 1e-2f, 1e-3) < 1e-3);
  in[1]->requires_grad = false; /* gradient to gate only */
  CHECK(gradcheck("swiglu gate only", swiglu_fwd, NULL, 2, in, 1e-2f, 1e-3) < 1e-3);
  vl_ctx_free(c);
}

static void large_activation_threads(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {300, 257};
  vl_tensor *x = mk(c, 2, s, 5, false);
  for (int64_t i = 0; i < x->numel; i++) vl_f32(x)[i] *= 4.0f; /* [-6, 6): the erf tails */
  vl_tensor *y = vl_gelu(c, x);
  REQUIRE(y);
  int bad = 0;
  for (int64_t i = 0; i < x->numel; i++) {
    float v = vl_f32(x)[i];
    bad += fabsf(vl_f32(y)[i] - 0.5f * v * (1 + erff(v / sqrtf(2)))) > 1e-6f;
  }
  CHECK(bad == 0);
  vl_ctx_free(c);
}

int main(void) {
  RUN(broadcast_forward_values);
  RUN(broadcasting_backward);
  RUN(large_broadcast_matches_small_path);
  RUN(scale_backward);
  RUN(binary_errors);
  RUN(activation_values);
  RUN(activation_backward);
  RUN(activation_extremes_are_finite);
  RUN(swiglu_matches_silu_times_up);
  RUN(large_activation_threads);
  return test_summary();
}
