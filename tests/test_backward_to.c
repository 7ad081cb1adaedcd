/* vl_backward_to: the wanted tensors' gradients are exactly vl_backward's,
 * ops off the paths from them to the output are skipped (their tensors get
 * no gradient), and repeated backwards (one per explanation target) agree.
 *
 * Each graph is built twice, in two contexts from the same values: one
 * takes vl_backward, the other vl_backward_to, and the gradients are
 * compared bit for bit. */
#include <math.h>
#include <string.h>

#include "gradcheck.h"
#include "tensor/ops.h"
#include "tensor/tensor.h"
#include "test.h"

enum { T = 6, D = 8, H = 2 };

/* A small encoder layer with a side branch:
 *   h1 = linear(x) -> h2 = gelu -> h3 = layernorm -> attention (probs) ->
 *   h4 = h3 + proj -> h5 = layernorm(ln2_w trainable) -> h5 + h5*h5/4
 *   + side (= gelu(linear(x)), from x around the wanted tensors);
 *   dead = gelu(z) does not reach out. */
typedef struct {
  vl_ctx *c;
  vl_tensor *x, *z, *ln2_w;
  vl_tensor *h1, *h2, *h3, *probs, *h4, *side, *dead, *out;
} graph;

static vl_tensor *param(vl_ctx *c, unsigned seed, int ndim, int64_t d0, int64_t d1) {
  int64_t s[2] = {d0, d1};
  vl_tensor *t = vl_new(c, VL_F32, ndim, s);
  gc_fill(t, seed, -0.6f, 0.6f);
  return t;
}

static graph build(void) {
  graph g = {0};
  vl_ctx *c = g.c = vl_ctx_new();
  g.x = param(c, 1, 2, T, D);
  g.z = param(c, 2, 2, T, D);
  g.x->requires_grad = g.z->requires_grad = true;
  vl_tensor *w1 = param(c, 3, 2, D, D), *b1 = param(c, 4, 1, D, 0);
  vl_tensor *ln_w = param(c, 5, 1, D, 0), *ln_b = param(c, 6, 1, D, 0);
  vl_tensor *wq = param(c, 7, 2, D, D), *wk = param(c, 8, 2, D, D), *wv = param(c, 9, 2, D, D);
  vl_tensor *wo = param(c, 10, 2, D, D), *ws = param(c, 11, 2, D, D);
  g.ln2_w = param(c, 12, 1, D, 0);
  g.ln2_w->requires_grad = true; /* a trained weight after the wanted tensors */
  vl_ctx_set_recording(c, true);
  g.h1 = vl_linear(c, g.x, w1, b1);
  g.h2 = vl_gelu(c, g.h1);
  g.h3 = vl_layernorm(c, g.h2, ln_w, ln_b, 1e-5f);
  int64_t s4[4] = {1, T, H, D / H}, s2[2] = {T, D};
  vl_tensor *q = vl_reshape(c, vl_linear(c, g.h3, wq, NULL), 4, s4);
  vl_tensor *k = vl_reshape(c, vl_linear(c, g.h3, wk, NULL), 4, s4);
  vl_tensor *v = vl_reshape(c, vl_linear(c, g.h3, wv, NULL), 4, s4);
  vl_tensor *a = vl_attention(c, q, k, v, 1.0f / sqrtf(D / H), NULL, &g.probs);
  g.h4 = vl_add(c, g.h3, vl_linear(c, vl_reshape(c, a, 2, s2), wo, NULL));
  /* ln2_w as weight and bias: an input off the paths that appears twice */
  vl_tensor *h5 = vl_layernorm(c, g.h4, g.ln2_w, g.ln2_w, 1e-5f);
  vl_tensor *sq = vl_scale(c, vl_mul(c, h5, h5), 0.25f); /* one input twice */
  g.side = vl_gelu(c, vl_linear(c, g.x, ws, NULL));
  g.dead = vl_gelu(c, g.z);
  g.out = vl_add(c, vl_add(c, h5, sq), g.side);
  return g;
}

static void dout_fill(float *d, unsigned seed) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *t = param(c, seed, 2, T, D);
  memcpy(d, t->data, sizeof(float) * T * D);
  vl_ctx_free(c);
}

/* Both gradients present and equal bit for bit. */
static int same_grad(const vl_tensor *a, const vl_tensor *b) {
  return a->grad && b->grad && !memcmp(a->grad, b->grad, (size_t)a->numel * sizeof(float));
}

/* Every tensor on the output's paths (all but z and dead) has the same
 * gradient in f and p. */
static bool all_same(const graph *f, const graph *p) {
  const vl_tensor *fs[] = {f->x, f->ln2_w, f->h1, f->h2, f->h3, f->probs, f->h4, f->side};
  const vl_tensor *ps[] = {p->x, p->ln2_w, p->h1, p->h2, p->h3, p->probs, p->h4, p->side};
  bool ok = true;
  for (int i = 0; i < 8; i++)
    ok = ok && same_grad(fs[i], ps[i]);
  return ok;
}

static void graphs_free(graph *f, graph *p) {
  vl_ctx_free(f->c);
  vl_ctx_free(p->c);
}

static void wanted_gradients_are_vl_backward_s(void) {
  graph f = build(), p = build();
  REQUIRE(f.out && p.out);
  vl_tensor *want[2] = {p.h2, p.probs};
  float d[3][T * D];
  for (int i = 0; i < 3; i++)
    dout_fill(d[i], 100 + (unsigned)i);
  /* one backward per target, as an explanation runs them: the second and
   * later ones read state kept from the first (GELU's f'(x)) */
  for (int i = 0; i < 3; i++) {
    CHECK(vl_backward(f.c, f.out, d[i]) == 0);
    CHECK(vl_backward_to(p.c, p.out, d[i], want, 2) == 0);
    CHECK(same_grad(f.h2, p.h2));
    CHECK(same_grad(f.probs, p.probs));
  }
  /* the same target again: the same gradients, not accumulated */
  float h2[T * D];
  REQUIRE(p.h2->grad);
  memcpy(h2, p.h2->grad, sizeof h2);
  CHECK(vl_backward_to(p.c, p.out, d[2], want, 2) == 0);
  CHECK(!memcmp(h2, p.h2->grad, sizeof h2));
  CHECK(same_grad(f.probs, p.probs));
  graphs_free(&f, &p);
}

static void off_path_tensors_get_no_gradient(void) {
  graph f = build(), p = build();
  REQUIRE(f.out && p.out);
  CHECK(vl_backward(f.c, f.out, NULL) == 0);
  /* the full backward reaches them all (but dead) */
  CHECK(f.x->grad && f.h1->grad && f.side->grad && f.ln2_w->grad && f.h4->grad);
  CHECK(!f.z->grad && !f.dead->grad);
  vl_tensor *want[2] = {p.h2, p.probs};
  CHECK(vl_backward_to(p.c, p.out, NULL, want, 2) == 0);
  CHECK(same_grad(f.h2, p.h2));
  CHECK(same_grad(f.probs, p.probs));
  CHECK(p.h4->grad != NULL); /* on the path from h2 to out */
  /* before the wanted tensors, on the side branch, a trained weight not
   * computed from them, and the branch that does not reach out */
  CHECK(!p.x->grad);
  CHECK(!p.h1->grad);
  CHECK(!p.side->grad);
  CHECK(!p.ln2_w->grad);
  CHECK(!p.z->grad && !p.dead->grad);
  /* requires_grad is as it was (it is lowered during the op backwards) */
  CHECK(p.x->requires_grad && p.ln2_w->requires_grad && p.side->requires_grad);
  graphs_free(&f, &p);
}

/* A full backward after vl_backward_to: every gradient is vl_backward's. */
static void full_backward_afterwards_is_complete(void) {
  graph f = build(), p = build();
  REQUIRE(f.out && p.out);
  float d[T * D];
  dout_fill(d, 7);
  vl_tensor *want[2] = {p.h2, p.probs};
  CHECK(vl_backward_to(p.c, p.out, NULL, want, 2) == 0);
  CHECK(vl_backward(f.c, f.out, d) == 0);
  CHECK(vl_backward(p.c, p.out, d) == 0);
  CHECK(all_same(&f, &p));
  graphs_free(&f, &p);
}

/* A leaf wanted: the same as the full backward for it; a trained weight not
 * computed from it still gets nothing. */
static void wanted_leaf(void) {
  graph f = build(), p = build();
  REQUIRE(f.out && p.out);
  CHECK(vl_backward(f.c, f.out, NULL) == 0);
  CHECK(vl_backward_to(p.c, p.out, NULL, &p.x, 1) == 0);
  CHECK(same_grad(f.x, p.x));
  CHECK(same_grad(f.h2, p.h2)); /* computed from x: on a path */
  CHECK(same_grad(f.side, p.side));
  CHECK(!p.ln2_w->grad);
  CHECK(!p.z->grad);
  graphs_free(&f, &p);
}

/* A tensor the output does not depend on: no gradient, no error, and the
 * others asked for alongside are unaffected; NULL entries are ignored. */
static void wanted_off_the_output(void) {
  graph f = build(), p = build();
  REQUIRE(f.out && p.out);
  CHECK(vl_backward_to(p.c, p.out, NULL, &p.z, 1) == 0);
  CHECK(!p.z->grad && !p.dead->grad);
  CHECK(!p.out->grad && !p.h2->grad && !p.x->grad); /* nothing ran */
  vl_tensor *want[3] = {p.z, NULL, p.h2};
  CHECK(vl_backward(f.c, f.out, NULL) == 0);
  CHECK(vl_backward_to(p.c, p.out, NULL, want, 3) == 0);
  CHECK(same_grad(f.h2, p.h2));
  CHECK(!p.z->grad && !p.x->grad && !p.h1->grad);
  /* no tensor wanted at all */
  graph e = build();
  REQUIRE(e.out);
  CHECK(vl_backward_to(e.c, e.out, NULL, want, 0) == 0);
  CHECK(!e.out->grad && !e.h2->grad && !e.x->grad);
  vl_ctx_free(e.c);
  graphs_free(&f, &p);
}

/* want NULL is vl_backward; failures are errors as there. */
static void want_null_and_errors(void) {
  graph f = build(), p = build();
  REQUIRE(f.out && p.out);
  CHECK(vl_backward(f.c, f.out, NULL) == 0);
  CHECK(vl_backward_to(p.c, p.out, NULL, NULL, 5) == 0);
  CHECK(all_same(&f, &p));
  CHECK(vl_backward_to(p.c, NULL, NULL, &p.h2, 1) < 0);
  vl_tensor *c = vl_new_f32(p.c, 1, (int64_t)3); /* on no tape */
  CHECK(vl_backward_to(p.c, c, NULL, &p.h2, 1) < 0);
  graphs_free(&f, &p);
}

int main(void) {
  RUN(wanted_gradients_are_vl_backward_s);
  RUN(off_path_tensors_get_no_gradient);
  RUN(full_backward_afterwards_is_complete);
  RUN(wanted_leaf);
  RUN(wanted_off_the_output);
  RUN(want_null_and_errors);
  return test_summary();
}
