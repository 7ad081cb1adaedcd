/* Rounded-activation decode products (tensor/dot_rounded.h): x's rounding
 * is the weights' own (BF16 round-to-nearest-even, ggml's Q8_0 quantiser),
 * and every kernel this CPU has matches a double-precision product of the
 * rounded operands, for row counts and lengths that exercise each tail. */
#include <stdlib.h>
#include <string.h>

#include "base/half.h"
#include "tensor/dot_rounded.h"
#include "tensor/ops.h"
#include "tensor/quant.h"
#include "test.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { return test_frand(&rng); }

static void rounding_is_the_weights_own(void) {
  const int64_t K = 96;
  float x[96];
  for (int i = 0; i < K; i++)
    x[i] = frand() * (i < 32 ? 1e-3f : 5.0f);
  for (int i = 32; i < 64; i++)
    x[i] = 0.0f; /* a zero block: scale 0, values 0 */
  uint16_t b[96];
  vl_round_x(VL_BF16, x, K, b);
  for (int i = 0; i < K; i++)
    CHECK(b[i] == vl_f32_to_bf16(x[i]));
  unsigned char xr[3 * 4 + 96], blk[3 * VL_Q8_0_BYTES];
  REQUIRE(vl_round_x_bytes(VL_Q8_0, K) == sizeof xr);
  CHECK(vl_round_x_bytes(VL_BF16, K) == 2 * (size_t)K && vl_round_x_bytes(VL_F32, K) == 0);
  vl_round_x(VL_Q8_0, x, K, xr);
  vl_q8_0_quantize_row(x, blk, K);
  for (int k = 0; k < 3; k++) {
    uint16_t h;
    float d;
    memcpy(&h, blk + k * VL_Q8_0_BYTES, 2);
    memcpy(&d, xr + 4 * k, 4);
    CHECK(d == vl_f16_to_f32(h));
    CHECK(!memcmp(xr + 12 + 32 * k, blk + k * VL_Q8_0_BYTES + 2, 32));
  }
  CHECK(vl_rounded_dot_supports(VL_BF16, 7) && vl_rounded_dot_supports(VL_Q8_0, 64));
  CHECK(!vl_rounded_dot_supports(VL_Q8_0, 40) && !vl_rounded_dot_supports(VL_F32, 64) &&
        !vl_rounded_dot_supports(VL_F16, 64));
}

/* Weight element (r, k) and rounded-x element k as doubles. */
static double w_at(const vl_tensor *w, int64_t r, int64_t k) {
  const int64_t K = w->shape[1];
  if (w->dtype == VL_BF16) return vl_bf16_to_f32(((const uint16_t *)w->data)[r * K + k]);
  const uint8_t *b = (const uint8_t *)w->data + r * vl_dtype_bytes(VL_Q8_0, K) + (k / 32) * 34;
  uint16_t h;
  memcpy(&h, b, 2);
  return (double)vl_f16_to_f32(h) * (int8_t)b[2 + k % 32];
}

static double x_at(vl_dtype t, const void *xr, int64_t K, int64_t k) {
  if (t == VL_BF16) return vl_bf16_to_f32(((const uint16_t *)xr)[k]);
  const float *d = xr;
  const int8_t *q = (const int8_t *)(d + K / 32);
  return (double)d[k / 32] * q[k];
}

static void product_case(vl_ctx *c, vl_dtype t, int64_t out, int64_t K) {
  float *wf = malloc((size_t)(out * K) * sizeof *wf), *x = malloc((size_t)K * sizeof *x);
  float *y = malloc((size_t)out * sizeof *y);
  unsigned char *xr = malloc(vl_round_x_bytes(t, K));
  vl_tensor *w = vl_new(c, t, 2, (int64_t[]){out, K});
  REQUIRE(wf && x && y && xr && w);
  for (int64_t i = 0; i < out * K; i++)
    wf[i] = frand();
  for (int64_t k = 0; k < K; k++)
    x[k] = frand() * 3.0f;
  if (t == VL_BF16)
    for (int64_t i = 0; i < out * K; i++)
      ((uint16_t *)w->data)[i] = vl_f32_to_bf16(wf[i]);
  else
    for (int64_t r = 0; r < out; r++)
      vl_q8_0_quantize_row(wf + r * K, (uint8_t *)w->data + r * vl_dtype_bytes(t, K), K);
  vl_round_x(t, x, K, xr);
  static const vl_rdot_kernel ks[] = {VL_RDOT_SCALAR, VL_RDOT_AVX2, VL_RDOT_AVX512};
  for (int ki = 0; ki < 3; ki++) {
    if (!vl_rdot_set_kernel(ks[ki])) continue;
    for (int64_t i = 0; i < out; i++)
      y[i] = NAN;
    /* two calls: rows [0, 5) and [5, out), so a row offset is exercised */
    const int64_t split = out < 5 ? out : 5;
    vl_gemv_rows_rounded(w, 0, split, xr, y);
    vl_gemv_rows_rounded(w, split, out - split, xr, y + split);
    double worst = 0, worst_exact = 0;
    for (int64_t r = 0; r < out; r++) {
      double ref = 0, mag = 0, exact = 0;
      for (int64_t k = 0; k < K; k++) {
        ref += w_at(w, r, k) * x_at(t, xr, K, k);
        exact += w_at(w, r, k) * x[k];
        mag += fabs(w_at(w, r, k) * x[k]);
      }
      double e = fabs(y[r] - ref) / mag, ee = fabs(y[r] - exact) / mag;
      if (!(e <= worst)) worst = e; /* NaN propagates into the check */
      if (ee > worst_exact) worst_exact = ee;
    }
    if (!(worst <= 2e-6))
      printf("  %s K=%lld out=%lld kernel %d: error %.3g of sum |w x|\n", vl_dtype_name(t),
             (long long)K, (long long)out, (int)ks[ki], worst);
    CHECK(worst <= 2e-6);
    /* against the exact F32 x: only x's rounding, far below 1% of sum |w x| */
    CHECK(worst_exact < 1e-2);
  }
  vl_rdot_set_kernel(VL_RDOT_AUTO);
  free(wf);
  free(x);
  free(y);
  free(xr);
}

static void every_kernel_matches_double_reference(void) {
  vl_ctx *c = vl_ctx_new();
  REQUIRE(c);
  static const int64_t outs[] = {1, 3, 8, 13, 21};
  static const int64_t ks_bf16[] = {7, 32, 64, 96, 200, 896};
  static const int64_t ks_q8[] = {32, 64, 96, 896};
  for (int o = 0; o < 5; o++) {
    for (int k = 0; k < 6; k++)
      product_case(c, VL_BF16, outs[o], ks_bf16[k]);
    for (int k = 0; k < 4; k++)
      product_case(c, VL_Q8_0, outs[o], ks_q8[k]);
  }
  vl_ctx_free(c);
}

int main(void) {
  RUN(rounding_is_the_weights_own);
  RUN(every_kernel_matches_double_reference);
  return test_summary();
}
