/* Whole transformer blocks built from vl_ ops against PyTorch
 * (tools/gen_block_goldens.py -> tests/data/blocks/): a pre-norm ViT block and
 * a Qwen2/Qwen3-style decoder block (RMSNorm, GQA, per-head q/k RMSNorm,
 * M-RoPE, causal attention, SwiGLU). Checked: output, attention
 * probabilities, and the gradients of sum(y * R) w.r.t. the block input and
 * every weight, each to max relative error <= 1e-4 (relative to the
 * reference tensor's largest magnitude). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "goldens.h"
#include "tensor/ops.h"
#include "test.h"

#define TOL 1e-4

static const char *const VIT_PARAMS[] = {"ln1.w", "ln1.b", "q.w",   "q.b",   "k.w",   "k.b",
                                         "v.w",   "v.b",   "o.w",   "o.b",   "ln2.w", "ln2.b",
                                         "fc1.w", "fc1.b", "fc2.w", "fc2.b", NULL};
static const char *const DEC_PARAMS[] = {"ln1.w", "q.w",    "q.b",  "k.w",    "k.b",
                                         "v.w",   "v.b",    "qn.w", "kn.w",   "o.w",
                                         "ln2.w", "gate.w", "up.w", "down.w", NULL};

typedef struct {
  golden_file g;
  vl_tensor *x, *p[16];
  const char *const *names;
  int n;
} block;

static vl_tensor *param(block *b, const char *name) {
  for (int i = 0; i < b->n; i++)
    if (!strcmp(b->names[i], name)) return b->p[i];
  return NULL;
}

/* Loads x and the weights into c, all requiring grad (training-style). */
static int load_block(vl_ctx *c, block *b, const char *path, const char *const *names) {
  memset(b, 0, sizeof *b);
  if (golden_load(&b->g, path)) return -1;
  b->names = names;
  b->x = golden_tensor_in(c, &b->g, "x");
  if (!b->x) return -1;
  b->x->requires_grad = true;
  for (b->n = 0; names[b->n]; b->n++) {
    b->p[b->n] = golden_tensor_in(c, &b->g, names[b->n]);
    if (!b->p[b->n]) return -1;
    b->p[b->n]->requires_grad = true;
  }
  return 0;
}

static vl_tensor *heads(vl_ctx *c, vl_tensor *t, int64_t H) {
  if (!t) return NULL;
  int64_t s[4] = {t->shape[0], t->shape[1], H, t->shape[2] / H};
  return vl_reshape(c, t, 4, s);
}

static vl_tensor *merge_heads(vl_ctx *c, vl_tensor *t) {
  if (!t) return NULL;
  int64_t s[3] = {t->shape[0], t->shape[1], t->shape[2] * t->shape[3]};
  return vl_reshape(c, t, 3, s);
}

static vl_tensor *vit_forward(vl_ctx *c, block *b, vl_tensor **probs) {
  const int64_t H = 4;
  vl_tensor *x = b->x;
  float scale = 1.0f / sqrtf((float)(x->shape[2] / H));
  vl_tensor *h = vl_layernorm(c, x, param(b, "ln1.w"), param(b, "ln1.b"), 1e-6f);
  vl_tensor *q = heads(c, vl_linear(c, h, param(b, "q.w"), param(b, "q.b")), H);
  vl_tensor *k = heads(c, vl_linear(c, h, param(b, "k.w"), param(b, "k.b")), H);
  vl_tensor *v = heads(c, vl_linear(c, h, param(b, "v.w"), param(b, "v.b")), H);
  vl_tensor *a = merge_heads(c, vl_attention(c, q, k, v, scale, NULL, probs));
  vl_tensor *x1 = vl_add(c, x, vl_linear(c, a, param(b, "o.w"), param(b, "o.b")));
  vl_tensor *h2 = vl_layernorm(c, x1, param(b, "ln2.w"), param(b, "ln2.b"), 1e-6f);
  vl_tensor *m = vl_gelu(c, vl_linear(c, h2, param(b, "fc1.w"), param(b, "fc1.b")));
  return vl_add(c, x1, vl_linear(c, m, param(b, "fc2.w"), param(b, "fc2.b")));
}

static vl_tensor *decoder_forward(vl_ctx *c, block *b, vl_tensor **probs) {
  const int64_t Hq = 4, Hkv = 2, hd = 16;
  const float eps = 1e-6f;
  vl_tensor *x = b->x;
  const golden_tensor *gp = golden_get(&b->g, "pos3");
  if (!gp || gp->numel != 3 * x->shape[1]) return NULL;
  int64_t T = x->shape[1], pos3[3 * 64];
  if (T > 64) return NULL;
  for (int64_t i = 0; i < 3 * T; i++)
    pos3[i] = (int64_t)gp->data[i];
  const int sec[3] = {2, 3, 3};
  vl_tensor *ang = vl_rope_angles_mrope(c, pos3, T, (int)hd, 1000000.0f, sec, false);
  vl_tensor *h = vl_rmsnorm(c, x, param(b, "ln1.w"), eps);
  vl_tensor *q = heads(c, vl_linear(c, h, param(b, "q.w"), param(b, "q.b")), Hq);
  vl_tensor *k = heads(c, vl_linear(c, h, param(b, "k.w"), param(b, "k.b")), Hkv);
  vl_tensor *v = heads(c, vl_linear(c, h, param(b, "v.w"), param(b, "v.b")), Hkv);
  q = vl_rope(c, vl_rmsnorm(c, q, param(b, "qn.w"), eps), ang);
  k = vl_rope(c, vl_rmsnorm(c, k, param(b, "kn.w"), eps), ang);
  vl_attn_mask mask = {true, NULL};
  vl_tensor *a = merge_heads(c, vl_attention(c, q, k, v, 1.0f / sqrtf((float)hd), &mask, probs));
  vl_tensor *x1 = vl_add(c, x, vl_linear(c, a, param(b, "o.w"), NULL));
  vl_tensor *h2 = vl_rmsnorm(c, x1, param(b, "ln2.w"), eps);
  vl_tensor *m = vl_swiglu(c, vl_linear(c, h2, param(b, "gate.w"), NULL),
                           vl_linear(c, h2, param(b, "up.w"), NULL));
  return vl_add(c, x1, vl_linear(c, m, param(b, "down.w"), NULL));
}

static void check_close(const char *what, const float *got, const golden_tensor *ref) {
  if (!got || !ref) {
    printf("  %s: missing (%s)\n", what, got ? "reference" : "computed");
    test_current_failed = 1;
    return;
  }
  double e = test_max_rel_err(got, ref->data, (size_t)ref->numel);
  if (e > TOL || getenv("BLOCKS_VERBOSE")) printf("  %s: max rel err %.3g\n", what, e);
  CHECK(e <= TOL);
}

typedef vl_tensor *(*block_fn)(vl_ctx *, block *, vl_tensor **);

/* A gradient that is zero in exact arithmetic (the key bias without q/k norm:
 * it adds the same q.b to every score of a row, which softmax ignores). Both
 * sides hold only rounding noise, so compare each to the scale of the input
 * gradient instead of to each other. */
static void check_zero(const char *what, const vl_tensor *p, const golden_tensor *ref,
                       const golden_tensor *scale_ref) {
  REQUIRE(p->grad && ref && scale_ref);
  double mx = 0, mr = 0, ms = 0;
  for (int64_t i = 0; i < p->numel; i++) {
    mx = fmax(mx, fabs(p->grad[i]));
    mr = fmax(mr, fabs(ref->data[i]));
  }
  for (int64_t i = 0; i < scale_ref->numel; i++)
    ms = fmax(ms, fabs(scale_ref->data[i]));
  if (mx > 1e-5 * ms || mr > 1e-5 * ms || getenv("BLOCKS_VERBOSE"))
    printf("  %s (exactly 0 in theory): max |ours| %.3g, |torch| %.3g, |grad x| %.3g\n", what, mx,
           mr, ms);
  CHECK(mx <= 1e-5 * ms && mr <= 1e-5 * ms);
}

static void run_block(const char *path, const char *const *names, block_fn fwd,
                      const char *zero_grad) {
  vl_ctx *c = vl_ctx_new();
  block b;
  if (load_block(c, &b, path, names)) {
    golden_free(&b.g);
    vl_ctx_free(c);
    REQUIRE(!"golden file loads");
  }
  /* Inference (fused attention, nothing recorded) */
  vl_tensor *y0 = fwd(c, &b, NULL);
  if (!y0) printf("  forward failed: %s\n", vl_last_error());
  REQUIRE(y0);
  const golden_tensor *gy = golden_get(&b.g, "y"), *gR = golden_get(&b.g, "R");
  REQUIRE(gy && gR && gy->numel == y0->numel);
  check_close("y (inference)", vl_f32(y0), gy);
  /* Recorded, with probabilities on the tape */
  vl_ctx_set_recording(c, true);
  vl_tensor *P = NULL;
  vl_tensor *y = fwd(c, &b, &P);
  REQUIRE(y && P);
  check_close("y", vl_f32(y), gy);
  check_close("probs", vl_f32(P), golden_get(&b.g, "probs"));
  REQUIRE(vl_backward(c, y, gR->data) == VL_OK);
  check_close("grad x", b.x->grad, golden_get(&b.g, "grad.x"));
  for (int i = 0; i < b.n; i++) {
    char name[80];
    snprintf(name, sizeof name, "grad.%s", names[i]);
    if (zero_grad && !strcmp(names[i], zero_grad))
      check_zero(name, b.p[i], golden_get(&b.g, name), golden_get(&b.g, "grad.x"));
    else
      check_close(name, b.p[i]->grad, golden_get(&b.g, name));
  }
  golden_free(&b.g);
  vl_ctx_free(c);
}

static void vit_block_matches_pytorch(void) {
  run_block("tests/data/blocks/vit_block.bin", VIT_PARAMS, vit_forward, "k.b");
}

static void decoder_block_matches_pytorch(void) {
  run_block("tests/data/blocks/decoder_block.bin", DEC_PARAMS, decoder_forward, NULL);
}

int main(void) {
  RUN(vit_block_matches_pytorch);
  RUN(decoder_block_matches_pytorch);
  return test_summary();
}
