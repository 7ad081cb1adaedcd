/* Scaled dot-product attention over (B, T, H, D) heads: probabilities,
 * their application to values, and a fused inference kernel.
 *
 * Masked scores (causal or -inf in the additive mask) get probability exactly
 * 0; a row with every key masked is all zeros (not NaN), so it contributes
 * nothing to the output and receives no gradient. Work is split over rows
 * (b, h, i) or, for key/value gradients, over (b, j, hkv) so that every thread
 * writes disjoint memory and results do not depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/threads.h"
#include "tensor/ops.h"

typedef struct {
  int64_t B, Tq, Tk, Hq, Hkv, D, group; /* group = Hq / Hkv */
} attn_dims;

/* Dot product with independent partial sums (lets the compiler vectorise
 * without -ffast-math). */
static float dot(const float *a, const float *b, int64_t n) {
  float s[8] = {0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int u = 0; u < 8; u++)
      s[u] += a[i + u] * b[i + u];
  float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; i++)
    t += a[i] * b[i];
  return t;
}

static void axpy(float *y, float a, const float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    y[i] += a * x[i];
}

static int need_f32_rank4(const char *op, const char *what, const vl_tensor *t) {
  if (t->dtype != VL_F32)
    return vl_error(VL_ERR_UNSUPPORTED, "%s: %s must be F32, got %s", op, what,
                    vl_dtype_name(t->dtype));
  if (t->ndim != 4) {
    char s[96];
    return vl_error(VL_ERR_INVALID, "%s: %s must be 4-D, got shape %s", op, what,
                    vl_shape_str(t, s, sizeof s));
  }
  return VL_OK;
}

/* Checks q (B, Tq, Hq, D) against k or v (B, Tk, Hkv, D). */
static int check_heads(const char *op, const vl_tensor *q, const vl_tensor *k, const char *kname,
                       attn_dims *d) {
  if (need_f32_rank4(op, "q", q) || need_f32_rank4(op, kname, k)) return vl_last_error_code();
  d->B = q->shape[0];
  d->Tq = q->shape[1];
  d->Hq = q->shape[2];
  d->D = q->shape[3];
  d->Tk = k->shape[1];
  d->Hkv = k->shape[2];
  char s1[96], s2[96];
  if (k->shape[0] != d->B || k->shape[3] != d->D || d->Hkv <= 0 || d->Hq <= 0 ||
      d->Hq % d->Hkv != 0)
    return vl_error(VL_ERR_INVALID,
                    "%s: q %s and %s %s must be (B, Tq, Hq, D) and (B, Tk, Hkv, D) with the same "
                    "B and D and Hq a multiple of Hkv",
                    op, vl_shape_str(q, s1, sizeof s1), kname, vl_shape_str(k, s2, sizeof s2));
  d->group = d->Hq / d->Hkv;
  return VL_OK;
}

/* Element strides of an additive mask broadcast to (B, Hq, Tq, Tk); 0 along
 * broadcast dims. */
static int mask_strides(const char *op, const vl_tensor *m, const attn_dims *d, int64_t st[4]) {
  const int64_t full[4] = {d->B, d->Hq, d->Tq, d->Tk};
  char s[96];
  if (m->dtype != VL_F32)
    return vl_error(VL_ERR_UNSUPPORTED, "%s: additive mask must be F32, got %s", op,
                    vl_dtype_name(m->dtype));
  if (m->ndim < 1 || m->ndim > 4)
    return vl_error(VL_ERR_INVALID, "%s: additive mask %s must have 1 to 4 dims", op,
                    vl_shape_str(m, s, sizeof s));
  int64_t stride = 1;
  for (int a = 3; a >= 0; a--) {
    int md = a - (4 - m->ndim); /* mask dim aligned with axis a, or < 0 */
    if (md < 0) {
      st[a] = 0;
      continue;
    }
    int64_t n = m->shape[md];
    if (n != 1 && n != full[a])
      return vl_error(VL_ERR_INVALID,
                      "%s: additive mask %s does not broadcast to (B, Hq, Tq, Tk) = "
                      "(%lld, %lld, %lld, %lld)",
                      op, vl_shape_str(m, s, sizeof s), (long long)d->B, (long long)d->Hq,
                      (long long)d->Tq, (long long)d->Tk);
    st[a] = n == 1 ? 0 : stride;
    stride *= n;
  }
  return VL_OK;
}

/* ---- one row of probabilities ------------------------------------------ */

typedef struct {
  attn_dims d;
  const float *q, *k, *v, *mask;
  int64_t mst[4];
  float scale;
  bool causal;
  float *probs; /* (B, Hq, Tq, Tk) or NULL (fused) */
  float *out;   /* (B, Tq, Hq, D) for fused / apply */
  int failed;   /* fused: scratch allocation failed */
} attn_job;

/* Decodes row r = ((b * Hq) + h) * Tq + i. */
static inline void row_index(const attn_dims *d, int64_t r, int64_t *b, int64_t *h, int64_t *i) {
  *i = r % d->Tq;
  *h = (r / d->Tq) % d->Hq;
  *b = r / (d->Tq * d->Hq);
}

/* Softmax probabilities of query row r over all Tk keys into p. */
static void probs_row(const attn_job *J, int64_t r, float *p) {
  const attn_dims *d = &J->d;
  int64_t b, h, i;
  row_index(d, r, &b, &h, &i);
  int64_t hk = h / d->group;
  int64_t lim = d->Tk;
  if (J->causal) {
    lim = i + (d->Tk - d->Tq) + 1;
    if (lim < 0) lim = 0;
    if (lim > d->Tk) lim = d->Tk;
  }
  const float *qr = J->q + ((b * d->Tq + i) * d->Hq + h) * d->D;
  const float *mrow = J->mask ? J->mask + b * J->mst[0] + h * J->mst[1] + i * J->mst[2] : NULL;
  float mx = -INFINITY;
  for (int64_t j = 0; j < lim; j++) {
    const float *kr = J->k + ((b * d->Tk + j) * d->Hkv + hk) * d->D;
    float s = J->scale * dot(qr, kr, d->D);
    if (mrow) s += mrow[j * J->mst[3]];
    p[j] = s;
    if (s > mx) mx = s;
  }
  for (int64_t j = lim; j < d->Tk; j++)
    p[j] = 0.0f;
  if (mx == -INFINITY) { /* nothing visible (or every score -inf): all zeros */
    for (int64_t j = 0; j < lim; j++)
      p[j] = 0.0f;
    return;
  }
  double sum = 0;
  for (int64_t j = 0; j < lim; j++) {
    float e = expf(p[j] - mx);
    p[j] = e;
    sum += e;
  }
  float inv = (float)(1.0 / sum);
  for (int64_t j = 0; j < lim; j++)
    p[j] *= inv;
}

/* out row (b, i, h) = sum_j p[j] v[b, j, hk]. */
static void apply_row(const attn_dims *d, const float *v, const float *p, int64_t r, float *out) {
  int64_t b, h, i;
  row_index(d, r, &b, &h, &i);
  int64_t hk = h / d->group;
  float *o = out + ((b * d->Tq + i) * d->Hq + h) * d->D;
  memset(o, 0, (size_t)d->D * sizeof *o);
  for (int64_t j = 0; j < d->Tk; j++)
    if (p[j] != 0.0f) axpy(o, p[j], v + ((b * d->Tk + j) * d->Hkv + hk) * d->D, d->D);
}

static void probs_range(void *arg, int64_t r0, int64_t r1, int worker) {
  const attn_job *J = arg;
  for (int64_t r = r0; r < r1; r++)
    probs_row(J, r, J->probs + r * J->d.Tk);
}

static void apply_range(void *arg, int64_t r0, int64_t r1, int worker) {
  const attn_job *J = arg;
  for (int64_t r = r0; r < r1; r++)
    apply_row(&J->d, J->v, J->probs + r * J->d.Tk, r, J->out);
}

static void fused_range(void *arg, int64_t r0, int64_t r1, int worker) {
  attn_job *J = arg;
  float *p = malloc((size_t)J->d.Tk * sizeof *p);
  if (!p) {
    __atomic_store_n(&J->failed, 1, __ATOMIC_RELAXED);
    return;
  }
  for (int64_t r = r0; r < r1; r++) {
    probs_row(J, r, p);
    apply_row(&J->d, J->v, p, r, J->out);
  }
  free(p);
}

/* Rows per parallel chunk: aim at ~64k multiply-adds per chunk. */
static int64_t row_chunk(const attn_dims *d) {
  int64_t work = d->Tk * d->D;
  if (work < 1) work = 1;
  int64_t c = 65536 / work;
  return c < 1 ? 1 : c;
}

/* ---- vl_attn_probs ------------------------------------------------------ */

typedef struct {
  attn_dims d;
  const float *q, *k, *P, *gP;
  float *dS; /* scratch (B, Hq, Tq, Tk) */
  float *gq, *gk;
  float scale;
} probs_bwd_job;

/* dS = P * (gP - <P, gP>) per row, then gq row. */
static void probs_bwd_rows(void *arg, int64_t r0, int64_t r1, int worker) {
  probs_bwd_job *J = arg;
  const attn_dims *d = &J->d;
  for (int64_t r = r0; r < r1; r++) {
    const float *p = J->P + r * d->Tk, *g = J->gP + r * d->Tk;
    float *ds = J->dS + r * d->Tk;
    double s = 0;
    for (int64_t j = 0; j < d->Tk; j++)
      s += (double)p[j] * g[j];
    for (int64_t j = 0; j < d->Tk; j++)
      ds[j] = p[j] * (g[j] - (float)s);
    if (!J->gq) continue;
    int64_t b, h, i;
    row_index(d, r, &b, &h, &i);
    int64_t hk = h / d->group;
    float *gqr = J->gq + ((b * d->Tq + i) * d->Hq + h) * d->D;
    for (int64_t j = 0; j < d->Tk; j++)
      if (ds[j] != 0.0f)
        axpy(gqr, J->scale * ds[j], J->k + ((b * d->Tk + j) * d->Hkv + hk) * d->D, d->D);
  }
}

/* gk row (b, j, hk) = scale * sum over the group's heads h and queries i of
 * dS[b, h, i, j] q[b, i, h]. */
static void probs_bwd_keys(void *arg, int64_t r0, int64_t r1, int worker) {
  probs_bwd_job *J = arg;
  const attn_dims *d = &J->d;
  for (int64_t r = r0; r < r1; r++) {
    int64_t hk = r % d->Hkv, j = (r / d->Hkv) % d->Tk, b = r / (d->Hkv * d->Tk);
    float *gkr = J->gk + r * d->D;
    for (int64_t h = hk * d->group; h < (hk + 1) * d->group; h++)
      for (int64_t i = 0; i < d->Tq; i++) {
        float ds = J->dS[((b * d->Hq + h) * d->Tq + i) * d->Tk + j];
        if (ds != 0.0f) axpy(gkr, J->scale * ds, J->q + ((b * d->Tq + i) * d->Hq + h) * d->D, d->D);
      }
  }
}

static void attn_probs_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *q = n->in[0], *k = n->in[1], *P = n->out;
  probs_bwd_job J = {.q = q->data, .k = k->data, .P = P->data, .gP = P->grad, .scale = n->f[0]};
  check_heads("attn_probs backward", q, k, "k", &J.d);
  if (q->requires_grad && !(J.gq = vl_grad(c, q))) return;
  if (k->requires_grad && !(J.gk = vl_grad(c, k))) return;
  J.dS = malloc((size_t)P->numel * sizeof(float));
  if (!J.dS) {
    vl_error(VL_ERR_NOMEM, "attn_probs backward: out of memory");
    return;
  }
  const attn_dims *d = &J.d;
  vl_parallel_for(d->B * d->Hq * d->Tq, row_chunk(d), probs_bwd_rows, &J);
  if (J.gk) vl_parallel_for(d->B * d->Tk * d->Hkv, 1, probs_bwd_keys, &J);
  free(J.dS);
}

static int setup_probs(const char *op, vl_tensor *q, vl_tensor *k, float scale,
                       const vl_attn_mask *mask, attn_job *J) {
  memset(J, 0, sizeof *J);
  if (check_heads(op, q, k, "k", &J->d)) return vl_last_error_code();
  J->q = q->data;
  J->k = k->data;
  J->scale = scale;
  if (mask) {
    J->causal = mask->causal;
    if (mask->add) {
      if (mask_strides(op, mask->add, &J->d, J->mst)) return vl_last_error_code();
      J->mask = mask->add->data;
    }
  }
  return VL_OK;
}

vl_tensor *vl_attn_probs(vl_ctx *c, vl_tensor *q, vl_tensor *k, float scale,
                         const vl_attn_mask *mask) {
  if (!q || !k) return NULL;
  attn_job J;
  if (setup_probs("attn_probs", q, k, scale, mask, &J)) return NULL;
  const attn_dims *d = &J.d;
  int64_t shape[4] = {d->B, d->Hq, d->Tq, d->Tk};
  vl_tensor *P = vl_new(c, VL_F32, 4, shape);
  if (!P) return NULL;
  J.probs = P->data;
  vl_parallel_for(d->B * d->Hq * d->Tq, row_chunk(d), probs_range, &J);
  vl_tensor *in[2] = {q, k};
  vl_node *n = vl_record(c, P, "attn_probs", attn_probs_backward, 2, in);
  if (n) n->f[0] = scale;
  return P;
}

/* ---- vl_attn_apply ------------------------------------------------------ */

typedef struct {
  attn_dims d;
  const float *P, *v, *gout;
  float *gP, *gv;
} apply_bwd_job;

/* gP[r, j] += <gout row (b, i, h), v[b, j, hk]>. */
static void apply_bwd_probs(void *arg, int64_t r0, int64_t r1, int worker) {
  apply_bwd_job *J = arg;
  const attn_dims *d = &J->d;
  for (int64_t r = r0; r < r1; r++) {
    int64_t b, h, i;
    row_index(d, r, &b, &h, &i);
    int64_t hk = h / d->group;
    const float *g = J->gout + ((b * d->Tq + i) * d->Hq + h) * d->D;
    float *gp = J->gP + r * d->Tk;
    for (int64_t j = 0; j < d->Tk; j++)
      gp[j] += dot(g, J->v + ((b * d->Tk + j) * d->Hkv + hk) * d->D, d->D);
  }
}

/* gv row (b, j, hk) += sum over group heads h and queries i of
 * P[b, h, i, j] gout[b, i, h]. */
static void apply_bwd_values(void *arg, int64_t r0, int64_t r1, int worker) {
  apply_bwd_job *J = arg;
  const attn_dims *d = &J->d;
  for (int64_t r = r0; r < r1; r++) {
    int64_t hk = r % d->Hkv, j = (r / d->Hkv) % d->Tk, b = r / (d->Hkv * d->Tk);
    float *gvr = J->gv + r * d->D;
    for (int64_t h = hk * d->group; h < (hk + 1) * d->group; h++)
      for (int64_t i = 0; i < d->Tq; i++) {
        float p = J->P[((b * d->Hq + h) * d->Tq + i) * d->Tk + j];
        if (p != 0.0f) axpy(gvr, p, J->gout + ((b * d->Tq + i) * d->Hq + h) * d->D, d->D);
      }
  }
}

/* attn_dims of probs (B, Hq, Tq, Tk) against v (B, Tk, Hkv, D). */
static int check_apply(const char *op, const vl_tensor *P, const vl_tensor *v, attn_dims *d) {
  if (need_f32_rank4(op, "probs", P) || need_f32_rank4(op, "v", v)) return vl_last_error_code();
  char s1[96], s2[96];
  d->B = P->shape[0];
  d->Hq = P->shape[1];
  d->Tq = P->shape[2];
  d->Tk = P->shape[3];
  d->Hkv = v->shape[2];
  d->D = v->shape[3];
  if (v->shape[0] != d->B || v->shape[1] != d->Tk || d->Hkv <= 0 || d->Hq % d->Hkv != 0)
    return vl_error(VL_ERR_INVALID,
                    "%s: probs %s and v %s must be (B, Hq, Tq, Tk) and (B, Tk, Hkv, D) with Hq a "
                    "multiple of Hkv",
                    op, vl_shape_str(P, s1, sizeof s1), vl_shape_str(v, s2, sizeof s2));
  d->group = d->Hq / d->Hkv;
  return VL_OK;
}

static void attn_apply_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *P = n->in[0], *v = n->in[1];
  apply_bwd_job J = {.P = P->data, .v = v->data, .gout = n->out->grad};
  if (check_apply("attn_apply backward", P, v, &J.d)) return;
  const attn_dims *d = &J.d;
  if (P->requires_grad) {
    if (!(J.gP = vl_grad(c, P))) return;
    vl_parallel_for(d->B * d->Hq * d->Tq, row_chunk(d), apply_bwd_probs, &J);
  }
  if (v->requires_grad) {
    if (!(J.gv = vl_grad(c, v))) return;
    vl_parallel_for(d->B * d->Tk * d->Hkv, 1, apply_bwd_values, &J);
  }
}

vl_tensor *vl_attn_apply(vl_ctx *c, vl_tensor *probs, vl_tensor *v) {
  if (!probs || !v) return NULL;
  attn_job J;
  memset(&J, 0, sizeof J);
  if (check_apply("attn_apply", probs, v, &J.d)) return NULL;
  const attn_dims *d = &J.d;
  int64_t shape[4] = {d->B, d->Tq, d->Hq, d->D};
  vl_tensor *out = vl_new(c, VL_F32, 4, shape);
  if (!out) return NULL;
  J.probs = probs->data;
  J.v = v->data;
  J.out = out->data;
  vl_parallel_for(d->B * d->Hq * d->Tq, row_chunk(d), apply_range, &J);
  vl_tensor *in[2] = {probs, v};
  vl_record(c, out, "attn_apply", attn_apply_backward, 2, in);
  return out;
}

/* ---- vl_attention ------------------------------------------------------- */

vl_tensor *vl_attention(vl_ctx *c, vl_tensor *q, vl_tensor *k, vl_tensor *v, float scale,
                        const vl_attn_mask *mask, vl_tensor **probs_out) {
  if (probs_out) *probs_out = NULL;
  if (!q || !k || !v) return NULL;
  if (!vl_same_shape(k, v)) {
    char s1[96], s2[96];
    vl_error(VL_ERR_INVALID, "attention: k %s and v %s must have the same shape",
             vl_shape_str(k, s1, sizeof s1), vl_shape_str(v, s2, sizeof s2));
    return NULL;
  }
  bool grad = vl_ctx_recording(c) && (q->requires_grad || k->requires_grad || v->requires_grad);
  if (probs_out || grad) {
    vl_tensor *P = vl_attn_probs(c, q, k, scale, mask);
    vl_tensor *out = vl_attn_apply(c, P, v);
    if (probs_out && out) *probs_out = P;
    return out;
  }
  /* Inference: one pass per query row, probabilities never stored. */
  attn_job J;
  if (setup_probs("attention", q, k, scale, mask, &J)) return NULL;
  if (v->dtype != VL_F32) {
    vl_error(VL_ERR_UNSUPPORTED, "attention: v must be F32, got %s", vl_dtype_name(v->dtype));
    return NULL;
  }
  const attn_dims *d = &J.d;
  int64_t shape[4] = {d->B, d->Tq, d->Hq, d->D};
  vl_tensor *out = vl_new(c, VL_F32, 4, shape);
  if (!out) return NULL;
  J.v = v->data;
  J.out = out->data;
  vl_parallel_for(d->B * d->Hq * d->Tq, row_chunk(d), fused_range, &J);
  if (J.failed) {
    vl_error(VL_ERR_NOMEM, "attention: out of memory for a score row of %lld keys",
             (long long)d->Tk);
    return NULL;
  }
  return out;
}
