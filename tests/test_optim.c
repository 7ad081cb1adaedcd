/* AdamW, clipping and the LR schedule against torch (tools/gen_optim_ref.py,
 * tests/data/optim/adamw.txt) and closed-form values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tensor/optim.h"
#include "test.h"

/* Gradient of mean((X W^T + b - Y)^2) by hand (independent of the ops). */
static void lsq_grad(const float *W, const float *b, float *gW, float *gb) {
  memset(gW, 0, 12 * sizeof(float));
  memset(gb, 0, 3 * sizeof(float));
  for (int n = 0; n < 5; n++)
    for (int i = 0; i < 3; i++) {
      float r = b[i] - (float)cos(n - i);
      for (int j = 0; j < 4; j++)
        r += (float)sin(n + 2 * j) * W[i * 4 + j];
      float d = 2.0f * r / 15.0f;
      gb[i] += d;
      for (int j = 0; j < 4; j++)
        gW[i * 4 + j] += d * (float)sin(n + 2 * j);
    }
}

static void test_adamw_matches_torch(void) {
  size_t len = 0;
  char *ref = (char *)test_read_file("tests/data/optim/adamw.txt", &len);
  REQUIRE(ref);
  vl_ctx *c = vl_ctx_new();
  vl_tensor *W = vl_new_f32(c, 2, (int64_t)3, (int64_t)4), *b = vl_new_f32(c, 1, (int64_t)3);
  REQUIRE(W && b);
  W->requires_grad = b->requires_grad = true;
  REQUIRE(vl_grad(c, W) && vl_grad(c, b));
  for (int i = 0; i < 3; i++) {
    vl_f32(b)[i] = 0.2f - 0.1f * (float)i;
    for (int j = 0; j < 4; j++)
      vl_f32(W)[i * 4 + j] = (float)(0.1 * (i - j) + 0.05);
  }
  vl_tensor *params[2] = {W, b};
  bool decay[2] = {true, false};
  vl_adamw_cfg cfg = {.beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-6f, .weight_decay = 0.1f};
  vl_adamw *o = vl_adamw_new(params, decay, 2, &cfg);
  REQUIRE(o);
  char *p = ref;
  double worst = 0;
  for (int s = 0; s < 6; s++) {
    lsq_grad(vl_f32(W), vl_f32(b), W->grad, b->grad);
    double norm = vl_clip_grad_norm(params, 2, 0.5);
    CHECK(vl_adamw_step(o, (float)(0.05 * (s + 1) / 6)) == VL_OK);
    double want = strtod(p, &p);
    CHECK_NEAR(norm, want, 1e-6 * want);
    for (int k = 0; k < 15; k++) {
      double w = strtod(p, &p), got = k < 12 ? vl_f32(W)[k] : vl_f32(b)[k - 12];
      if (fabs(got - w) > worst) worst = fabs(got - w);
    }
  }
  CHECK(o->step == 6);
  CHECK(worst < 2e-6);
  if (worst >= 2e-6) printf("  worst |diff| %.3g\n", worst);
  vl_adamw_free(o);
  vl_ctx_free(c);
  free(ref);
}

/* First step of Adam moves every coordinate by lr * sign(g) (bias-corrected
 * m / sqrt(v) = g / |g|), plus the decoupled decay p * lr * wd. */
static void test_adamw_first_step_formula(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *p = vl_new_f32(c, 1, (int64_t)4);
  REQUIRE(p);
  p->requires_grad = true;
  REQUIRE(vl_grad(c, p));
  const float p0[4] = {1.0f, -2.0f, 0.5f, 3.0f}, g[4] = {0.3f, -4.0f, 1e-3f, -0.2f};
  memcpy(p->data, p0, sizeof p0);
  memcpy(p->grad, g, sizeof g);
  vl_adamw_cfg cfg = vl_adamw_default_cfg();
  cfg.eps = 1e-12f;
  vl_adamw *o = vl_adamw_new(&p, NULL, 1, &cfg);
  REQUIRE(o);
  REQUIRE(vl_adamw_step(o, 0.01f) == VL_OK);
  for (int i = 0; i < 4; i++) {
    double want = p0[i] * (1 - 0.01 * 0.01) - 0.01 * (g[i] > 0 ? 1 : -1);
    CHECK_NEAR(vl_f32(p)[i], want, 1e-6);
  }
  /* zero gradient afterwards: the moment keeps moving the parameter */
  vl_zero_param_grads(&p, 1);
  for (int i = 0; i < 4; i++)
    CHECK(p->grad[i] == 0.0f);
  float before = vl_f32(p)[0];
  REQUIRE(vl_adamw_step(o, 0.01f) == VL_OK);
  CHECK(vl_f32(p)[0] < before);
  vl_adamw_free(o);
  vl_ctx_free(c);
}

static void test_adamw_rejects_bad_input(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *p = vl_new_f32(c, 1, (int64_t)4); /* no grad buffer */
  REQUIRE(p);
  CHECK(vl_adamw_new(&p, NULL, 1, NULL) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "gradient") != NULL);
  p->requires_grad = true;
  REQUIRE(vl_grad(c, p));
  vl_adamw_cfg bad = vl_adamw_default_cfg();
  bad.beta2 = 1.0f;
  CHECK(vl_adamw_new(&p, NULL, 1, &bad) == NULL);
  vl_adamw *o = vl_adamw_new(&p, NULL, 1, NULL);
  REQUIRE(o);
  CHECK(vl_adamw_step(o, NAN) == VL_ERR_INVALID);
  CHECK(vl_adamw_step(o, -1.0f) == VL_ERR_INVALID);
  CHECK(o->step == 0);
  vl_adamw_free(o);
  vl_ctx_free(c);
}

static void test_clip_grad_norm(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *a = vl_new_f32(c, 1, (int64_t)2), *b = vl_new_f32(c, 1, (int64_t)1);
  REQUIRE(a && b);
  a->requires_grad = b->requires_grad = true;
  REQUIRE(vl_grad(c, a) && vl_grad(c, b));
  a->grad[0] = 3;
  a->grad[1] = 0;
  b->grad[0] = 4; /* norm 5 */
  vl_tensor *ps[2] = {a, b};
  CHECK_NEAR(vl_clip_grad_norm(ps, 2, 10.0), 5.0, 1e-12); /* below: untouched */
  CHECK(a->grad[0] == 3.0f && b->grad[0] == 4.0f);
  CHECK_NEAR(vl_clip_grad_norm(ps, 2, 1.0), 5.0, 1e-12);
  CHECK_NEAR(a->grad[0], 3.0 / (5.0 + 1e-6), 1e-7);
  CHECK_NEAR(b->grad[0], 4.0 / (5.0 + 1e-6), 1e-7);
  CHECK_NEAR(vl_clip_grad_norm(ps, 2, 0.0), 1.0, 1e-6); /* 0: measure only */
  vl_ctx_free(c);
}

static void test_lr_schedule(void) {
  /* transformers get_cosine_schedule_with_warmup(warmup 10, total 110) */
  CHECK_NEAR(vl_lr_cosine(0, 110, 10, 1e-3, 0), 0.0, 1e-15);
  CHECK_NEAR(vl_lr_cosine(5, 110, 10, 1e-3, 0), 5e-4, 1e-15);
  CHECK_NEAR(vl_lr_cosine(10, 110, 10, 1e-3, 0), 1e-3, 1e-15);
  CHECK_NEAR(vl_lr_cosine(60, 110, 10, 1e-3, 0), 5e-4, 1e-15);
  CHECK_NEAR(vl_lr_cosine(35, 110, 10, 1e-3, 0), 1e-3 * 0.5 * (1 + cos(M_PI * 0.25)), 1e-15);
  CHECK_NEAR(vl_lr_cosine(110, 110, 10, 1e-3, 0), 0.0, 1e-15);
  CHECK_NEAR(vl_lr_cosine(500, 110, 10, 1e-3, 0), 0.0, 1e-15);
  CHECK_NEAR(vl_lr_cosine(110, 110, 10, 1e-3, 0.1), 1e-4, 1e-15);
  CHECK_NEAR(vl_lr_cosine(0, 100, 0, 2e-3, 0), 2e-3, 1e-15);
}

int main(void) {
  RUN(test_adamw_matches_torch);
  RUN(test_adamw_first_step_formula);
  RUN(test_adamw_rejects_bad_input);
  RUN(test_clip_grad_norm);
  RUN(test_lr_schedule);
  return test_summary();
}
