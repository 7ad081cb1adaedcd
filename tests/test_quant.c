/* Q8_0 blocks (tensor/quant.h): quantisation as ggml's reference (checked
 * against an independent transcription in double precision), GEMV for every
 * kernel this CPU has and the GEMM / linear / embedding ops against double
 * references. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/half.h"
#include "tensor/ops.h"
#include "tensor/quant.h"
#include "test.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) { return test_frand(&rng); }

/* ggml quantize_row_q8_0_ref, written out again: d = amax / 127 as a float,
 * id = 1/d, q = roundf(x * id). */
static void ref_quantize(const float *x, uint8_t *o, int64_t n) {
  for (int64_t b = 0; b < n / 32; b++) {
    float amax = 0;
    for (int i = 0; i < 32; i++)
      if (fabsf(x[b * 32 + i]) > amax) amax = fabsf(x[b * 32 + i]);
    float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
    uint16_t h = vl_f32_to_f16(d);
    memcpy(o + b * 34, &h, 2);
    for (int i = 0; i < 32; i++) {
      float v = x[b * 32 + i] * id;
      double a = fabs((double)v), r = floor(a + 0.5); /* exact for |v| <= 128 */
      o[b * 34 + 2 + i] = (uint8_t)(int8_t)(v < 0 ? -r : r);
    }
  }
}

static double ref_value(const uint8_t *W, size_t rs, int64_t r, int64_t k) {
  const uint8_t *b = W + r * rs + (k / 32) * 34;
  uint16_t h;
  memcpy(&h, b, 2);
  return (double)vl_f16_to_f32(h) * (int8_t)b[2 + k % 32];
}

static void quantize_matches_ggml_reference(void) {
  const int64_t n = 32 * 40;
  float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
  uint8_t *q = malloc(n / 32 * 34), *r = malloc(n / 32 * 34);
  REQUIRE(x && y && q && r);
  for (int64_t i = 0; i < n; i++)
    x[i] = frand() * (i < 64 ? 1e-3f : 3.0f);
  for (int i = 64; i < 96; i++)
    x[i] = 0.0f; /* an all-zero block: d = 0, q = 0 */
  for (int i = 96; i < 128; i++)
    x[i] = (float)(i - 96) - 15.5f; /* halves: amax 15.5 */
  x[128] = 127.0f;                  /* d = 1 exactly: x.5 rounds away from zero */
  x[129] = 2.5f;
  x[130] = -2.5f;
  x[131] = 0.5f;
  vl_q8_0_quantize_row(x, q, n);
  ref_quantize(x, r, n);
  CHECK(!memcmp(q, r, (size_t)(n / 32 * 34)));
  CHECK((int8_t)q[4 * 34 + 2 + 1] == 3 && (int8_t)q[4 * 34 + 2 + 2] == -3 &&
        (int8_t)q[4 * 34 + 2 + 3] == 1);
  for (int i = 0; i < 34; i++)
    CHECK(q[2 * 34 + i] == 0);
  vl_q8_0_dequantize_row(q, y, n);
  double worst = 0;
  for (int64_t b = 0; b < n / 32; b++) {
    uint16_t h;
    memcpy(&h, q + b * 34, 2);
    double d = vl_f16_to_f32(h);
    for (int i = 0; i < 32; i++) {
      double e = fabs((double)y[b * 32 + i] - x[b * 32 + i]);
      /* half a step, plus the f16 rounding of d (relative, or absolute
       * when subnormal) times |q| <= 127 */
      double bound = 0.5 * d + 127.0 * (d * 0x1p-11 + 0x1p-25) + 1e-12;
      if (e / bound > worst) worst = e / bound;
    }
  }
  printf("  worst round-trip error / bound: %.3f\n", worst);
  CHECK(worst <= 1.0);
  free(x);
  free(y);
  free(q);
  free(r);
}

static void gemv_case(int64_t out, int64_t in, float beta) {
  const size_t rs = (size_t)(in / 32) * 34;
  float *w = malloc((size_t)(out * in) * sizeof *w), *x = malloc((size_t)in * sizeof *x);
  float *y = malloc((size_t)out * sizeof *y), *y0 = malloc((size_t)out * sizeof *y0);
  uint8_t *W = malloc(rs * (size_t)out);
  REQUIRE(w && x && y && y0 && W);
  for (int64_t i = 0; i < out * in; i++)
    w[i] = frand();
  for (int64_t i = 0; i < in; i++)
    x[i] = frand();
  for (int64_t r = 0; r < out; r++)
    vl_q8_0_quantize_row(w + r * in, W + r * rs, in);
  static const vl_q8_kernel ks[] = {VL_Q8_SCALAR, VL_Q8_AVX2, VL_Q8_AVX512};
  for (int ki = 0; ki < 3; ki++) {
    if (!vl_q8_set_kernel(ks[ki])) continue;
    for (int64_t r = 0; r < out; r++)
      y[r] = y0[r] = frand();
    vl_q8_0_gemv(W, out, in, x, beta, y);
    double maxd = 0, maxref = 1e-12;
    for (int64_t r = 0; r < out; r++) {
      double ref = beta * (double)y0[r];
      for (int64_t k = 0; k < in; k++)
        ref += ref_value(W, rs, r, k) * x[k];
      maxd = fmax(maxd, fabs(ref - y[r]));
      maxref = fmax(maxref, fabs(ref));
    }
    if (maxd / maxref > 1e-5)
      printf("  kernel %d out %lld in %lld: rel err %.2e\n", ki, (long long)out, (long long)in,
             maxd / maxref);
    CHECK(maxd / maxref <= 1e-5);
  }
  vl_q8_set_kernel(VL_Q8_AUTO);
  free(w);
  free(x);
  free(y);
  free(y0);
  free(W);
}

static void gemv_matches_double_reference(void) {
  static const int64_t outs[] = {1, 3, 4, 7, 37, 300};
  static const int64_t ins[] = {32, 96, 320, 1024};
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < 4; j++)
      gemv_case(outs[i], ins[j], j % 2 ? 0.5f : 0.0f);
}

/* Shared by the GEMM and op tests: a random (out, in) Q8_0 weight in c. */
static vl_tensor *rand_q8(vl_ctx *c, int64_t out, int64_t in) {
  int64_t s[2] = {out, in};
  vl_tensor *w = vl_new(c, VL_Q8_0, 2, s);
  float *row = malloc((size_t)in * sizeof *row);
  if (!w || !row) return NULL;
  for (int64_t r = 0; r < out; r++) {
    for (int64_t k = 0; k < in; k++)
      row[k] = frand();
    vl_q8_0_quantize_row(row, (uint8_t *)w->data + r * (in / 32) * 34, in);
  }
  free(row);
  return w;
}

static void linear_and_backward_match_reference(void) {
  vl_ctx *c = vl_ctx_new();
  vl_ctx_set_recording(c, true);
  const int64_t M = 5, out = 300, in = 96; /* out > one 256-row GEMM block */
  vl_tensor *w = rand_q8(c, out, in), *x = vl_new_f32(c, 2, M, in), *b = vl_new_f32(c, 1, out);
  REQUIRE(w && x && b);
  x->requires_grad = true;
  for (int64_t i = 0; i < x->numel; i++)
    vl_f32(x)[i] = frand();
  for (int64_t i = 0; i < out; i++)
    vl_f32(b)[i] = frand();
  vl_tensor *y = vl_linear_any(c, x, w, b);
  REQUIRE(y && y->shape[0] == M && y->shape[1] == out);
  const size_t rs = (size_t)(in / 32) * 34;
  double maxd = 0;
  for (int64_t i = 0; i < M; i++)
    for (int64_t r = 0; r < out; r++) {
      double ref = vl_f32(b)[r];
      for (int64_t k = 0; k < in; k++)
        ref += ref_value(w->data, rs, r, k) * vl_f32(x)[i * in + k];
      maxd = fmax(maxd, fabs(ref - vl_f32(y)[i * out + r]));
    }
  CHECK(maxd < 1e-4);
  /* one row through the GEMV path gives the same numbers */
  vl_tensor *x1 = vl_slice(c, x, 0, 2, 3), *y1 = vl_linear_any(c, x1, w, b);
  REQUIRE(y1);
  for (int64_t r = 0; r < out; r++)
    CHECK_NEAR(vl_f32(y1)[r], vl_f32(y)[2 * out + r], 1e-4);
  /* d sum(y * g) / dx = g W */
  float *g = malloc((size_t)(M * out) * sizeof *g);
  REQUIRE(g);
  for (int64_t i = 0; i < M * out; i++)
    g[i] = frand();
  REQUIRE(vl_backward(c, y, g) == VL_OK);
  REQUIRE(x->grad);
  maxd = 0;
  for (int64_t i = 0; i < M; i++)
    for (int64_t k = 0; k < in; k++) {
      double ref = 0;
      for (int64_t r = 0; r < out; r++)
        ref += g[i * out + r] * ref_value(w->data, rs, r, k);
      /* x1 was sliced from row 2 and is on the tape too, but y1 is not seeded */
      maxd = fmax(maxd, fabs(ref - x->grad[i * in + k]));
    }
  CHECK(maxd < 1e-4);
  free(g);
  /* bad shapes are refused with a message */
  vl_tensor *bad = vl_new_f32(c, 2, 2, 64);
  CHECK(!vl_linear_any(c, bad, w, NULL));
  vl_ctx_free(c);
}

static void embedding_dequantises_rows(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *t = rand_q8(c, 10, 64);
  int64_t n = 3;
  vl_tensor *ids = vl_new(c, VL_I32, 1, &n);
  REQUIRE(t && ids);
  int32_t *id = ids->data;
  id[0] = 9;
  id[1] = 0;
  id[2] = 4;
  vl_tensor *e = vl_embedding_any(c, t, ids);
  REQUIRE(e && e->ndim == 2 && e->shape[0] == 3 && e->shape[1] == 64);
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 64; k++) {
      CHECK(vl_f32(e)[i * 64 + k] == (float)ref_value(t->data, 68, id[i], k));
      CHECK(vl_get(t, id[i] * 64 + k) == vl_f32(e)[i * 64 + k]);
    }
  id[1] = 10;
  CHECK(!vl_embedding_any(c, t, ids));
  vl_ctx_free(c);
}

int main(void) {
  RUN(quantize_matches_ggml_reference);
  RUN(gemv_matches_double_reference);
  RUN(linear_and_backward_match_reference);
  RUN(embedding_dequantises_rows);
  return test_summary();
}
