/* Attention: forward against an independent double-precision reference and
 * PyTorch, gradients against central differences, masking edge cases,
 * fused == unfused, and errors for bad shapes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/threads.h"
#include "goldens.h"
#include "gradcheck.h"
#include "tensor/ops.h"
#include "test.h"

/* ---- naive reference (double, straight from the definition) ------------ */

/* probs (B, Hq, Tq, Tk) from q (B, Tq, Hq, D), k (B, Tk, Hkv, D). mask4 is
 * an already broadcast (B, Hq, Tq, Tk) additive mask or NULL. */
static void ref_probs(const vl_tensor *q, const vl_tensor *k, float scale, bool causal,
                      const double *mask4, double *P) {
  int64_t B = q->shape[0], Tq = q->shape[1], Hq = q->shape[2], D = q->shape[3];
  int64_t Tk = k->shape[1], Hkv = k->shape[2], g = Hq / Hkv;
  const float *qd = q->data, *kd = k->data;
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < Hq; h++)
      for (int64_t i = 0; i < Tq; i++) {
        double *p = P + ((b * Hq + h) * Tq + i) * Tk, mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < Tk; j++) {
          double s = 0;
          for (int64_t e = 0; e < D; e++)
            s += (double)qd[((b * Tq + i) * Hq + h) * D + e] *
                 kd[((b * Tk + j) * Hkv + h / g) * D + e];
          s *= scale;
          if (mask4) s += mask4[((b * Hq + h) * Tq + i) * Tk + j];
          if (causal && j > i + Tk - Tq) s = -INFINITY;
          p[j] = s;
          if (s > mx) mx = s;
        }
        for (int64_t j = 0; j < Tk; j++) {
          p[j] = mx == -INFINITY ? 0 : exp(p[j] - mx);
          sum += p[j];
        }
        for (int64_t j = 0; j < Tk; j++)
          p[j] = sum > 0 ? p[j] / sum : 0;
      }
}

static double max_abs_diff(const float *a, const double *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs(a[i] - b[i]);
    if (!(d <= m)) m = d;
  }
  return m;
}

typedef struct {
  float scale;
  bool causal;
  int mask_in; /* index of the additive mask among the inputs, or -1 */
  int mode;    /* 0 probs(q,k), 1 apply(P,v), 2 attention(q,k,v), 3 attention + probs_out */
} attn_arg;

static vl_tensor *attn_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  attn_arg *a = arg;
  vl_attn_mask m = {a->causal, a->mask_in >= 0 ? in[a->mask_in] : NULL};
  vl_tensor *probs = NULL;
  switch (a->mode) {
  case 0: return vl_attn_probs(c, in[0], in[1], a->scale, &m);
  case 1: return vl_attn_apply(c, in[0], in[1]);
  case 2: return vl_attention(c, in[0], in[1], in[2], a->scale, &m, NULL);
  default: return vl_attention(c, in[0], in[1], in[2], a->scale, &m, &probs);
  }
}

static vl_tensor *rnd(vl_ctx *c, unsigned seed, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  vl_tensor *t = vl_new_f32(c, 4, d0, d1, d2, d3);
  if (t) {
    gc_fill(t, seed, -1, 1);
    t->requires_grad = true;
  }
  return t;
}

/* Forward of probs vs the double reference, then gradcheck of q and k. */
static void probs_case(const char *name, int64_t B, int64_t Tq, int64_t Tk, int64_t Hq, int64_t Hkv,
                       int64_t D, bool causal, vl_tensor *mask) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *in[3] = {rnd(c, 1, B, Tq, Hq, D), rnd(c, 2, B, Tk, Hkv, D), mask};
  attn_arg a = {0.7f, causal, mask ? 2 : -1, 0};
  vl_ctx *f = vl_ctx_new();
  vl_tensor *P = attn_fwd(f, in, &a);
  REQUIRE(P && P->ndim == 4 && P->shape[1] == Hq && P->shape[3] == Tk);
  double *ref = malloc((size_t)P->numel * sizeof *ref), *m4 = NULL;
  if (mask) { /* broadcast by hand: mask here is (Tq, Tk) or (B, 1, 1, Tk) */
    m4 = malloc((size_t)P->numel * sizeof *m4);
    for (int64_t b = 0; b < B; b++)
      for (int64_t h = 0; h < Hq; h++)
        for (int64_t i = 0; i < Tq; i++)
          for (int64_t j = 0; j < Tk; j++)
            m4[((b * Hq + h) * Tq + i) * Tk + j] =
                mask->ndim == 2 ? vl_f32(mask)[i * Tk + j] : vl_f32(mask)[b * Tk + j];
  }
  ref_probs(in[0], in[1], a.scale, causal, m4, ref);
  double err = max_abs_diff(vl_f32(P), ref, P->numel);
  if (err > 1e-6) printf("  %s: probs differ from reference by %g\n", name, err);
  CHECK(err <= 1e-6);
  CHECK(gradcheck(name, attn_fwd, &a, mask ? 3 : 2, in, 1e-2f, 2e-3) < 2e-3);
  free(ref);
  free(m4);
  vl_ctx_free(f);
  vl_ctx_free(c);
}

static void probs_plain(void) { probs_case("plain", 2, 2, 2, 1, 1, 3, false, NULL); }
static void probs_causal(void) { probs_case("causal", 1, 3, 3, 2, 2, 2, true, NULL); }
static void probs_causal_offset(void) {
  /* Tq < Tk (decoding with a cache): query i sees keys j <= i + 2. */
  probs_case("causal Tq<Tk", 1, 2, 4, 2, 1, 2, true, NULL);
}
static void probs_gqa(void) { probs_case("gqa 4q/2kv", 1, 3, 3, 4, 2, 2, true, NULL); }
static void probs_cross(void) { probs_case("cross Tq!=Tk", 1, 2, 5, 4, 2, 2, false, NULL); }

static void probs_additive_mask(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *m = vl_new_f32(c, 2, (int64_t)3, (int64_t)4);
  gc_fill(m, 7, -2, 2);
  vl_f32(m)[1] = -INFINITY; /* a hard-masked key */
  probs_case("mask (Tq,Tk)", 2, 3, 4, 2, 1, 2, false, m);
  vl_tensor *m2 = vl_new_f32(c, 4, (int64_t)2, (int64_t)1, (int64_t)1, (int64_t)4);
  gc_fill(m2, 8, -1, 1);
  vl_f32(m2)[4 + 3] = -INFINITY;
  probs_case("mask (B,1,1,Tk) + causal", 2, 3, 4, 2, 2, 2, true, m2);
  vl_ctx_free(c);
}

/* Every key of a row masked: that row is all zeros, no NaN anywhere, and
 * gradients stay finite and correct. */
static void fully_masked_rows_are_zero(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *q = rnd(c, 3, 1, 3, 2, 2), *k = rnd(c, 4, 1, 2, 2, 2), *v = rnd(c, 5, 1, 2, 2, 2);
  /* causal with Tq = 3 > Tk = 2: query 0 sees keys j <= -1, i.e. none. */
  attn_arg a = {0.5f, true, -1, 2};
  vl_tensor *in[3] = {q, k, v};
  vl_tensor *o = attn_fwd(c, in, &a);
  REQUIRE(o);
  for (int64_t e = 0; e < 2 * 2; e++)
    CHECK(vl_f32(o)[e] == 0.0f); /* row i = 0, both heads */
  for (int64_t e = 0; e < o->numel; e++)
    CHECK(isfinite(vl_f32(o)[e]));
  CHECK(gradcheck("fully masked (causal)", attn_fwd, &a, 3, in, 1e-2f, 2e-3) < 2e-3);
  /* Same through an additive mask of -inf on one whole row. */
  vl_tensor *m = vl_new_f32(c, 2, (int64_t)3, (int64_t)2);
  vl_f32(m)[2] = vl_f32(m)[3] = -INFINITY;
  vl_tensor *in2[4] = {q, k, v, m};
  attn_arg a2 = {0.5f, false, 3, 3};
  vl_tensor *P = NULL;
  vl_attn_mask mm = {false, m};
  vl_tensor *o2 = vl_attention(c, q, k, v, 0.5f, &mm, &P);
  REQUIRE(o2 && P);
  for (int64_t h = 0; h < 2; h++)
    for (int64_t j = 0; j < 2; j++)
      CHECK(vl_f32(P)[(h * 3 + 1) * 2 + j] == 0.0f);
  for (int64_t e = 0; e < o2->numel; e++)
    CHECK(isfinite(vl_f32(o2)[e]));
  CHECK(gradcheck("fully masked (-inf row)", attn_fwd, &a2, 4, in2, 1e-2f, 2e-3) < 2e-3);
  vl_ctx_free(c);
}

static void apply_grad(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *P = rnd(c, 9, 1, 4, 2, 3), *v = rnd(c, 10, 1, 3, 2, 2);
  vl_tensor *in[2] = {P, v};
  attn_arg a = {0, false, -1, 1};
  CHECK(gradcheck("apply (gqa, cross)", attn_fwd, &a, 2, in, 1e-2f, 1e-3) < 1e-3);
  vl_ctx_free(c);
}

static void attention_grad_all_options(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *m = vl_new_f32(c, 2, (int64_t)3, (int64_t)5);
  gc_fill(m, 11, -1, 1);
  for (int mode = 2; mode <= 3; mode++) {
    vl_tensor *in[4] = {rnd(c, 12, 1, 3, 4, 2), rnd(c, 13, 1, 5, 2, 2), rnd(c, 14, 1, 5, 2, 2), m};
    attn_arg a = {0.6f, true, 3, mode};
    CHECK(gradcheck(mode == 2 ? "attention" : "attention+probs_out", attn_fwd, &a, 4, in, 1e-2f,
                    2e-3) < 2e-3);
  }
  vl_ctx_free(c);
}

/* probs_out->grad after backward is dS/dA: compare with the gradient of a
 * leaf holding the same probabilities fed to vl_attn_apply, and with finite
 * differences through that leaf. */
static void probs_out_gradient_is_dS_dA(void) {
  vl_ctx *c = vl_ctx_new();
  vl_ctx_set_recording(c, true);
  vl_tensor *q = rnd(c, 21, 1, 3, 4, 2), *k = rnd(c, 22, 1, 3, 2, 2), *v = rnd(c, 23, 1, 3, 2, 2);
  vl_tensor *P = NULL;
  vl_attn_mask m = {true, NULL};
  vl_tensor *o = vl_attention(c, q, k, v, 0.5f, &m, &P);
  REQUIRE(o && P && P->requires_grad);
  float *R = malloc((size_t)o->numel * sizeof *R);
  for (int64_t i = 0; i < o->numel; i++)
    R[i] = (float)sin(0.37 * (double)i + 1);
  REQUIRE(vl_backward(c, o, R) == VL_OK);
  REQUIRE(P->grad);
  /* keep a copy: the next backward resets intermediates' gradients */
  float *dA = malloc((size_t)P->numel * sizeof *dA);
  memcpy(dA, P->grad, (size_t)P->numel * sizeof *dA);
  vl_tensor *Pl = vl_clone_f32(c, P);
  Pl->requires_grad = true;
  vl_tensor *o2 = vl_attn_apply(c, Pl, v);
  REQUIRE(vl_backward(c, o2, R) == VL_OK);
  CHECK(test_max_rel_err(dA, Pl->grad, (size_t)P->numel) < 1e-6);
  free(dA);
  /* and the leaf route agrees with central differences */
  vl_tensor *in[2] = {Pl, v};
  attn_arg a = {0, false, -1, 1};
  CHECK(gradcheck("dS/dA via apply", attn_fwd, &a, 2, in, 1e-2f, 1e-3) < 1e-3);
  free(R);
  vl_ctx_free(c);
}

/* The streaming inference kernel gives the same output as probs + apply. */
static void fused_matches_unfused(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *q = rnd(c, 31, 2, 7, 4, 16), *k = rnd(c, 32, 2, 9, 2, 16),
            *v = rnd(c, 33, 2, 9, 2, 16);
  vl_tensor *m = vl_new_f32(c, 4, (int64_t)2, (int64_t)1, (int64_t)7, (int64_t)9);
  gc_fill(m, 34, -3, 0);
  vl_attn_mask mask = {true, m};
  vl_tensor *P = NULL;
  size_t before = vl_ctx_used(c);
  vl_tensor *fused = vl_attention(c, q, k, v, 0.25f, &mask, NULL);
  size_t fused_bytes = vl_ctx_used(c) - before;
  vl_tensor *full = vl_attention(c, q, k, v, 0.25f, &mask, &P);
  REQUIRE(fused && full && P);
  CHECK(test_max_rel_err(vl_f32(fused), vl_f32(full), (size_t)full->numel) < 1e-6);
  /* the fused path allocates the output only (no (B, H, Tq, Tk) table) */
  CHECK(fused_bytes < (size_t)full->numel * 4 + 1024);
  /* thread count does not change results */
  vl_threads_set(1);
  vl_tensor *one = vl_attention(c, q, k, v, 0.25f, &mask, NULL);
  vl_threads_set(0);
  CHECK(one && memcmp(one->data, fused->data, (size_t)one->numel * 4) == 0);
  vl_ctx_free(c);
}

/* PyTorch: cross-attention, GQA, additive mask with -inf (tools/gen_block_goldens.py). */
static void matches_pytorch_cross_attention(void) {
  golden_file g;
  REQUIRE(golden_load(&g, "tests/data/blocks/ops.bin") == 0);
  vl_ctx *c = vl_ctx_new();
  vl_tensor *q = golden_tensor_in(c, &g, "xattn.q"), *k = golden_tensor_in(c, &g, "xattn.k");
  vl_tensor *v = golden_tensor_in(c, &g, "xattn.v"), *m = golden_tensor_in(c, &g, "xattn.mask");
  const golden_tensor *gp = golden_get(&g, "xattn.probs"), *go = golden_get(&g, "xattn.out");
  REQUIRE(q && k && v && m && gp && go);
  vl_attn_mask mask = {false, m};
  vl_tensor *P = NULL;
  vl_tensor *o = vl_attention(c, q, k, v, 0.35f, &mask, &P);
  vl_tensor *of = vl_attention(c, q, k, v, 0.35f, &mask, NULL);
  REQUIRE(o && P && of && P->numel == gp->numel && o->numel == go->numel);
  CHECK(test_max_rel_err(vl_f32(P), gp->data, (size_t)gp->numel) < 1e-5);
  CHECK(test_max_rel_err(vl_f32(o), go->data, (size_t)go->numel) < 1e-5);
  CHECK(test_max_rel_err(vl_f32(of), go->data, (size_t)go->numel) < 1e-5);
  vl_ctx_free(c);
  golden_free(&g);
}

static void bad_inputs_are_errors(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *q = rnd(c, 1, 1, 3, 3, 4), *k = rnd(c, 2, 1, 3, 2, 4), *v = rnd(c, 3, 1, 3, 2, 4);
  vl_clear_error();
  CHECK(vl_attn_probs(c, q, k, 1, NULL) == NULL); /* 3 % 2 != 0 */
  CHECK(vl_last_error_code() == VL_ERR_INVALID && strstr(vl_last_error(), "multiple"));
  vl_tensor *q4 = rnd(c, 1, 1, 3, 4, 5);
  CHECK(vl_attn_probs(c, q4, k, 1, NULL) == NULL); /* D 5 vs 4 */
  vl_tensor *q2 = rnd(c, 1, 1, 3, 4, 4);
  vl_tensor *bad = vl_new_f32(c, 2, (int64_t)2, (int64_t)3);
  vl_attn_mask m = {false, bad};
  CHECK(vl_attn_probs(c, q2, k, 1, &m) == NULL);
  CHECK(strstr(vl_last_error(), "broadcast") != NULL);
  CHECK(vl_attention(c, q2, k, q2, 1, NULL, NULL) == NULL); /* v shape != k */
  vl_tensor *P = vl_attn_probs(c, q2, k, 1, NULL);
  REQUIRE(P);
  vl_tensor *vshort = rnd(c, 4, 1, 2, 2, 4);
  CHECK(vl_attn_apply(c, P, vshort) == NULL);
  vl_tensor *k3 = vl_new_f32(c, 3, (int64_t)1, (int64_t)3, (int64_t)8);
  CHECK(vl_attn_probs(c, q2, k3, 1, NULL) == NULL);
  vl_tensor *kh = vl_new(c, VL_BF16, 4, k->shape);
  CHECK(vl_attn_probs(c, q2, kh, 1, NULL) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_UNSUPPORTED);
  vl_tensor *none = NULL;
  CHECK(vl_attention(c, q2, none, v, 1, NULL, &P) == NULL && P == NULL);
  CHECK(vl_attn_apply(c, NULL, v) == NULL);
  vl_ctx_free(c);
}

int main(void) {
  RUN(probs_plain);
  RUN(probs_causal);
  RUN(probs_causal_offset);
  RUN(probs_gqa);
  RUN(probs_cross);
  RUN(probs_additive_mask);
  RUN(fully_masked_rows_are_zero);
  RUN(apply_grad);
  RUN(attention_grad_all_options);
  RUN(probs_out_gradient_is_dS_dA);
  RUN(fused_matches_unfused);
  RUN(matches_pytorch_cross_attention);
  RUN(bad_inputs_are_errors);
  return test_summary();
}
