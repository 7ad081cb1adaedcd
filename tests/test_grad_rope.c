/* RoPE and patchify: angle tables and forward against PyTorch re-creations of
 * the transformers code (tests/data/blocks/ops.bin, tools/gen_block_goldens.py),
 * gradients against central differences, errors for bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "goldens.h"
#include "gradcheck.h"
#include "tensor/ops.h"
#include "test.h"

static golden_file G;
static int G_ok;

static int64_t *positions(const golden_tensor *t) {
  int64_t *p = malloc((size_t)t->numel * sizeof *p);
  for (int64_t i = 0; i < t->numel; i++)
    p[i] = (int64_t)t->data[i];
  return p;
}

/* cos/sin tables (T, R) as in transformers vs cos/sin of our (T, R/2) angles
 * duplicated (the cat((freqs, freqs)) of rotate_half models). */
static void check_table(const char *what, const vl_tensor *ang, const char *cos_name,
                        const char *sin_name) {
  const golden_tensor *gc = golden_get(&G, cos_name), *gs = golden_get(&G, sin_name);
  REQUIRE(ang && gc && gs);
  int64_t T = gc->shape[0], R = gc->shape[1];
  REQUIRE(ang->ndim == 2 && ang->shape[0] == T && ang->shape[1] * 2 == R);
  float *c = malloc((size_t)(T * R) * sizeof *c), *s = malloc((size_t)(T * R) * sizeof *s);
  for (int64_t t = 0; t < T; t++)
    for (int64_t j = 0; j < R; j++) {
      float a = vl_f32(ang)[t * (R / 2) + j % (R / 2)];
      c[t * R + j] = cosf(a);
      s[t * R + j] = sinf(a);
    }
  double ec = test_max_rel_err(c, gc->data, (size_t)(T * R));
  double es = test_max_rel_err(s, gs->data, (size_t)(T * R));
  if (ec > 1e-5 || es > 1e-5) printf("  %s: cos err %g, sin err %g\n", what, ec, es);
  CHECK(ec <= 1e-5 && es <= 1e-5);
  free(c);
  free(s);
}

static void angles_1d_match_transformers(void) {
  REQUIRE(G_ok);
  vl_ctx *c = vl_ctx_new();
  const golden_tensor *gp = golden_get(&G, "rope1d.pos");
  REQUIRE(gp);
  int64_t *pos = positions(gp);
  check_table("1d", vl_rope_angles_1d(c, pos, gp->numel, 16, 10000.0f), "rope1d.cos", "rope1d.sin");
  free(pos);
  vl_ctx_free(c);
}

static void angles_mrope_match_qwen2vl(void) {
  REQUIRE(G_ok);
  vl_ctx *c = vl_ctx_new();
  const golden_tensor *gp = golden_get(&G, "mrope.pos3");
  REQUIRE(gp && gp->ndim == 2 && gp->shape[0] == 3);
  int64_t *pos = positions(gp), T = gp->shape[1];
  const int sec[3] = {2, 3, 3};
  check_table("mrope", vl_rope_angles_mrope(c, pos, T, 16, 1000000.0f, sec, false), "mrope.cos",
              "mrope.sin");
  const int sec3[3] = {6, 5, 5};
  check_table("interleaved", vl_rope_angles_mrope(c, pos, T, 32, 5000000.0f, sec3, true),
              "imrope.cos", "imrope.sin");
  /* The two layouts really differ (the test would notice a mix-up). */
  vl_tensor *a = vl_rope_angles_mrope(c, pos, T, 32, 5000000.0f, sec3, false);
  vl_tensor *b = vl_rope_angles_mrope(c, pos, T, 32, 5000000.0f, sec3, true);
  REQUIRE(a && b);
  CHECK(memcmp(a->data, b->data, (size_t)a->numel * 4) != 0);
  free(pos);
  vl_ctx_free(c);
}

static void angles_2d_match_qwen2vl_vision(void) {
  REQUIRE(G_ok);
  vl_ctx *c = vl_ctx_new();
  const golden_tensor *gr = golden_get(&G, "vis.row"), *gc = golden_get(&G, "vis.col");
  REQUIRE(gr && gc);
  int64_t *row = positions(gr), *col = positions(gc);
  check_table("2d vision", vl_rope_angles_2d(c, row, col, gr->numel, 16, 10000.0f), "vis.cos",
              "vis.sin");
  free(row);
  free(col);
  vl_ctx_free(c);
}

/* q * cos + rotate_half(q) * sin on the first 16 of 20 dims, M-RoPE angles. */
static void rope_apply_matches_pytorch(void) {
  REQUIRE(G_ok);
  vl_ctx *c = vl_ctx_new();
  const golden_tensor *gp = golden_get(&G, "mrope.pos3"), *gy = golden_get(&G, "ropeapply.y");
  vl_tensor *x = golden_tensor_in(c, &G, "ropeapply.x");
  REQUIRE(gp && gy && x);
  int64_t *pos = positions(gp);
  const int sec[3] = {2, 3, 3};
  vl_tensor *ang = vl_rope_angles_mrope(c, pos, gp->shape[1], 16, 1000000.0f, sec, false);
  vl_tensor *y = vl_rope(c, x, ang);
  REQUIRE(y && y->numel == gy->numel);
  CHECK(test_max_rel_err(vl_f32(y), gy->data, (size_t)gy->numel) < 1e-5);
  /* pass-through dims are copied exactly */
  CHECK(vl_f32(y)[16] == vl_f32(x)[16] && vl_f32(y)[19] == vl_f32(x)[19]);
  free(pos);
  vl_ctx_free(c);
}

static vl_tensor *rope_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  return vl_rope(c, in[0], in[1]);
}

static void rope_grad(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t pos[3] = {0, 3, 7};
  struct {
    const char *name;
    int64_t D;
    int R;
    bool batched;
  } cases[] = {{"rope full", 4, 4, false},
               {"rope partial R<D", 6, 4, false},
               {"rope batched angles", 4, 4, true}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    vl_tensor *x = vl_new_f32(c, 4, (int64_t)2, (int64_t)3, (int64_t)1, cases[k].D);
    gc_fill(x, 40 + (unsigned)k, -1, 1);
    x->requires_grad = true;
    vl_tensor *ang;
    if (cases[k].batched) {
      ang = vl_new_f32(c, 3, (int64_t)2, (int64_t)3, (int64_t)(cases[k].R / 2));
      gc_fill(ang, 50, -3, 3);
    } else {
      ang = vl_rope_angles_1d(c, pos, 3, cases[k].R, 100.0f);
    }
    REQUIRE(x && ang);
    vl_tensor *in[2] = {x, ang};
    CHECK(gradcheck(cases[k].name, rope_fwd, NULL, 2, in, 1e-2f, 1e-3) < 1e-3);
  }
  vl_ctx_free(c);
}

/* Rotation preserves each pair's norm; position 0 is the identity. */
static void rope_is_a_rotation(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t pos[2] = {0, 5};
  vl_tensor *x = vl_new_f32(c, 4, (int64_t)1, (int64_t)2, (int64_t)1, (int64_t)8);
  gc_fill(x, 3, -1, 1);
  vl_tensor *y = vl_rope(c, x, vl_rope_angles_1d(c, pos, 2, 8, 10000.0f));
  REQUIRE(y);
  for (int i = 0; i < 8; i++)
    CHECK(vl_f32(y)[i] == vl_f32(x)[i]);
  for (int i = 0; i < 4; i++) {
    const float *a = vl_f32(x) + 8, *b = vl_f32(y) + 8;
    CHECK_NEAR(a[i] * a[i] + a[i + 4] * a[i + 4], b[i] * b[i] + b[i + 4] * b[i + 4], 1e-6);
  }
  CHECK(fabsf(vl_f32(y)[8] - vl_f32(x)[8]) > 1e-3); /* angle 5 rad really rotates pair 0 */
  vl_ctx_free(c);
}

/* patchify + (patch row . weight) == PyTorch conv2d / conv3d with stride == kernel. */
static void patch_conv_case(const char *pfx, int pt, int ph, int pw) {
  REQUIRE(G_ok);
  char nx[32], nw[32], ny[32];
  snprintf(nx, sizeof nx, "%s.x", pfx);
  snprintf(nw, sizeof nw, "%s.w", pfx);
  snprintf(ny, sizeof ny, "%s.y", pfx);
  vl_ctx *c = vl_ctx_new();
  vl_tensor *x = golden_tensor_in(c, &G, nx);
  const golden_tensor *w = golden_get(&G, nw), *gy = golden_get(&G, ny);
  REQUIRE(x && w && gy);
  vl_tensor *p = vl_patchify(c, x, pt, ph, pw);
  REQUIRE(p && p->ndim == 3 && p->shape[0] == gy->shape[0] && p->shape[1] == gy->shape[1]);
  int64_t O = w->shape[0], K = w->numel / O;
  REQUIRE(p->shape[2] == K && gy->shape[2] == O);
  float *y = malloc((size_t)gy->numel * sizeof *y);
  for (int64_t r = 0; r < p->shape[0] * p->shape[1]; r++)
    for (int64_t o = 0; o < O; o++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++)
        s += (double)vl_f32(p)[r * K + k] * w->data[o * K + k];
      y[r * O + o] = (float)s;
    }
  CHECK(test_max_rel_err(y, gy->data, (size_t)gy->numel) < 1e-5);
  free(y);
  vl_ctx_free(c);
}

static void patchify_2d_matches_conv2d(void) { patch_conv_case("patch2d", 1, 4, 4); }
static void patchify_3d_matches_conv3d(void) { patch_conv_case("patch3d", 2, 4, 4); }

typedef struct {
  int pt, ph, pw;
} patch_arg;

static vl_tensor *patch_only_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  patch_arg *a = arg;
  return vl_patchify(c, in[0], a->pt, a->ph, a->pw);
}

static void patchify_grad(void) {
  vl_ctx *c = vl_ctx_new();
  struct {
    const char *name;
    int ndim;
    int64_t shape[5];
    patch_arg a;
  } cases[] = {{"patchify 2d", 4, {2, 1, 4, 6}, {1, 2, 3}},
               {"patchify 3d", 5, {1, 2, 4, 2, 2}, {2, 1, 2}}};
  for (size_t k = 0; k < 2; k++) {
    vl_tensor *x = vl_new(c, VL_F32, cases[k].ndim, cases[k].shape);
    gc_fill(x, 60 + (unsigned)k, -1, 1);
    x->requires_grad = true;
    vl_tensor *in[1] = {x};
    CHECK(gradcheck(cases[k].name, patch_only_fwd, &cases[k].a, 1, in, 1e-2f, 1e-4) < 1e-4);
  }
  vl_ctx_free(c);
}

static void bad_inputs_are_errors(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *x = vl_new_f32(c, 4, (int64_t)1, (int64_t)3, (int64_t)2, (int64_t)8);
  const int64_t pos[3] = {0, 1, 2};
  vl_tensor *a4 = vl_rope_angles_1d(c, pos, 3, 8, 10000.0f);
  CHECK(vl_rope(c, x, a4) != NULL); /* T = 3, R = D = 8: fine */
  vl_tensor *a10 = vl_rope_angles_1d(c, pos, 3, 10, 10000.0f);
  CHECK(a4 && a10);
  CHECK(vl_rope(c, x, a10) == NULL && vl_last_error_code() == VL_ERR_INVALID); /* R > D */
  vl_tensor *a2 = vl_rope_angles_1d(c, pos, 2, 8, 10000.0f);
  CHECK(vl_rope(c, x, a2) == NULL);                              /* T mismatch */
  CHECK(vl_rope_angles_1d(c, pos, 3, 7, 10000.0f) == NULL);      /* odd R */
  CHECK(vl_rope_angles_2d(c, pos, pos, 3, 6, 10000.0f) == NULL); /* R % 4 */
  const int bad_sec[3] = {1, 1, 1};
  CHECK(vl_rope_angles_mrope(c, pos, 1, 8, 10000.0f, bad_sec, false) == NULL);
  CHECK(strstr(vl_last_error(), "sections") != NULL);
  vl_tensor *img = vl_new_f32(c, 4, (int64_t)1, (int64_t)3, (int64_t)6, (int64_t)8);
  CHECK(vl_patchify(c, img, 1, 4, 4) == NULL && vl_last_error_code() == VL_ERR_INVALID);
  CHECK(vl_patchify(c, img, 2, 2, 2) == NULL); /* temporal patch on an image */
  CHECK(vl_patchify(c, img, 1, 0, 2) == NULL);
  CHECK(vl_patchify(c, NULL, 1, 2, 2) == NULL);
  CHECK(vl_rope(c, NULL, a4) == NULL);
  vl_ctx_free(c);
}

int main(void) {
  G_ok = golden_load(&G, "tests/data/blocks/ops.bin") == 0;
  RUN(angles_1d_match_transformers);
  RUN(angles_mrope_match_qwen2vl);
  RUN(angles_2d_match_qwen2vl_vision);
  RUN(rope_apply_matches_pytorch);
  RUN(rope_grad);
  RUN(rope_is_a_rotation);
  RUN(patchify_2d_matches_conv2d);
  RUN(patchify_3d_matches_conv3d);
  RUN(patchify_grad);
  RUN(bad_inputs_are_errors);
  golden_free(&G);
  return test_summary();
}
