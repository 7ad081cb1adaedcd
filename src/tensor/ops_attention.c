/* Scaled dot-product attention over (B, T, H, D) heads: probabilities,
 * their application to values, and a fused inference kernel.
 *
 * Masked scores (causal or -inf in the additive mask) get probability exactly
 * 0; a row with every key masked is all zeros (not NaN), so it contributes
 * nothing to the output and receives no gradient. Each head is a few
 * vl_gemm calls on strided views of the (B, T, H, D) tensors (no copies);
 * key/value gradients sum over the heads of a group in a fixed order, so
 * results do not depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/threads.h"
#include "tensor/gemm.h"
#include "tensor/ops.h"
#include "tensor/vmath.h"

typedef struct {
  int64_t B, Tq, Tk, Hq, Hkv, D, group; /* group = Hq / Hkv */
} attn_dims;

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

/* ---- heads -------------------------------------------------------------- */

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

typedef void (*head_fn)(void *arg, int64_t b, int64_t h);
typedef struct {
  head_fn fn;
  void *arg;
  int64_t H;
} heads_job;

static void heads_range(void *arg, int64_t r0, int64_t r1, int worker) {
  const heads_job *J = arg;
  for (int64_t r = r0; r < r1; r++)
    J->fn(J->arg, r / J->H, r % J->H);
}

/* Runs fn over B x H heads. Much work (~1e7 flops, vl_gemm's threshold)
 * and many heads: one per task (vl_gemm inside then runs serially); much
 * work, few (large) heads: one after another, each vl_gemm using the pool;
 * little work (a decode step): heads split over the pool in chunks of at
 * least ~64k flops, their products serial — one hand-off to the pool
 * instead of two per head (Qwen3-0.6B at 512 positions: 896 per token,
 * which cost more than the arithmetic). Every output element is produced
 * by the same arithmetic either way, so results do not depend on the
 * thread count. */
static void for_heads(int64_t B, int64_t H, head_fn fn, void *arg, const attn_dims *d) {
  heads_job J = {fn, arg, H};
  const double flops = 2.0 * (double)(B * H) * (double)d->Tq * (double)d->Tk * (double)d->D;
  if (B * H >= 2 * vl_threads_count() && flops >= 1e7) {
    vl_parallel_for(B * H, 1, heads_range, &J);
  } else if (flops >= 1e7) {
    heads_range(&J, 0, B * H, 0);
  } else {
    const double per_head = flops / (double)(B * H) + 1.0;
    vl_parallel_for_flat(B * H, (int64_t)(65536.0 / per_head) + 1, heads_range, &J);
  }
}

static inline const float *qrow(const attn_job *J, int64_t b, int64_t i, int64_t h) {
  const attn_dims *d = &J->d;
  return J->q + ((b * d->Tq + i) * d->Hq + h) * d->D;
}

/* ops.h. 16 float lanes so the max/sum loops vectorise (GCC does not
 * reorder a scalar FP sum). */
VL_VEC_CLONES void vl_softmax_inplace(float *s, int64_t n) {
  float m[16], a[16];
  for (int l = 0; l < 16; l++)
    m[l] = -INFINITY, a[l] = 0.0f;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int l = 0; l < 16; l++)
      m[l] = s[j + l] > m[l] ? s[j + l] : m[l];
  float mx = -INFINITY;
  for (; j < n; j++)
    mx = s[j] > mx ? s[j] : mx;
  for (int l = 0; l < 16; l++)
    mx = m[l] > mx ? m[l] : mx;
  if (mx == -INFINITY) { /* nothing visible (or every score -inf): all zeros */
    for (j = 0; j < n; j++)
      s[j] = 0.0f;
    return;
  }
  for (j = 0; j + 16 <= n; j += 16)
    for (int l = 0; l < 16; l++) {
      float e = vl_expf(s[j + l] - mx);
      s[j + l] = e;
      a[l] += e;
    }
  float sum = 0.0f;
  for (; j < n; j++) {
    s[j] = vl_expf(s[j] - mx);
    sum += s[j];
  }
  for (int l = 0; l < 16; l++)
    sum += a[l];
  const float inv = 1.0f / sum;
  for (j = 0; j < n; j++)
    s[j] *= inv;
}

/* Row i of head (b, h): s holds scale * q.k for all Tk keys; adds the mask,
 * applies the causal limit and turns it into probabilities in place. */
static void softmax_row(const attn_job *J, int64_t b, int64_t h, int64_t i, float *s) {
  const attn_dims *d = &J->d;
  int64_t lim = d->Tk;
  if (J->causal) {
    lim = i + (d->Tk - d->Tq) + 1;
    if (lim < 0) lim = 0;
    if (lim > d->Tk) lim = d->Tk;
  }
  if (J->mask) {
    const float *mrow = J->mask + b * J->mst[0] + h * J->mst[1] + i * J->mst[2];
    for (int64_t j = 0; j < lim; j++)
      s[j] += mrow[j * J->mst[3]];
  }
  for (int64_t j = lim; j < d->Tk; j++)
    s[j] = 0.0f;
  vl_softmax_inplace(s, lim);
}

/* Probabilities of query rows [i0, i0 + n) of head (b, h) into P (n x Tk). */
static void probs_rows(const attn_job *J, int64_t b, int64_t h, int64_t i0, int64_t n, float *P) {
  const attn_dims *d = &J->d;
  int64_t hk = h / d->group;
  vl_gemm(false, true, n, d->Tk, d->D, J->scale, qrow(J, b, i0, h), d->Hq * d->D,
          J->k + (b * d->Tk * d->Hkv + hk) * d->D, VL_F32, d->Hkv * d->D, 0.0f, P, d->Tk);
  for (int64_t r = 0; r < n; r++)
    softmax_row(J, b, h, i0 + r, P + r * d->Tk);
}

/* out rows [i0, i0 + n) of head (b, h) = P (n x Tk) @ v[b, :, hk]. */
static void apply_rows(const attn_dims *d, const float *v, const float *P, int64_t b, int64_t h,
                       int64_t i0, int64_t n, float *out) {
  int64_t hk = h / d->group;
  vl_gemm(false, false, n, d->D, d->Tk, 1.0f, P, d->Tk, v + (b * d->Tk * d->Hkv + hk) * d->D,
          VL_F32, d->Hkv * d->D, 0.0f, out + ((b * d->Tq + i0) * d->Hq + h) * d->D, d->Hq * d->D);
}

static float *head_probs(const attn_job *J, int64_t b, int64_t h) {
  return J->probs + (b * J->d.Hq + h) * J->d.Tq * J->d.Tk;
}

static void probs_head(void *arg, int64_t b, int64_t h) {
  const attn_job *J = arg;
  probs_rows(J, b, h, 0, J->d.Tq, head_probs(J, b, h));
}

static void apply_head(void *arg, int64_t b, int64_t h) {
  const attn_job *J = arg;
  apply_rows(&J->d, J->v, head_probs(J, b, h), b, h, 0, J->d.Tq, J->out);
}

/* Score tile of the fused kernel, kept per thread and grown on demand: a
 * malloc/free of a 155 KB tile per head is an mmap/munmap pair, and its page
 * faults cost more than the head's softmax. Reachable until the thread exits. */
static _Thread_local float *g_scores;
static _Thread_local size_t g_scores_n;

static float *score_scratch(size_t n) {
  if (g_scores_n < n) {
    free(g_scores);
    g_scores = malloc(n * sizeof *g_scores);
    g_scores_n = g_scores ? n : 0;
  }
  return g_scores;
}

/* Fused: tiles of query rows, the score tile (at most ~4 MB) freed after. */
static void fused_head(void *arg, int64_t b, int64_t h) {
  attn_job *J = arg;
  const attn_dims *d = &J->d;
  int64_t tile = ((int64_t)1 << 20) / (d->Tk > 0 ? d->Tk : 1);
  if (tile < 1) tile = 1;
  if (tile > d->Tq) tile = d->Tq;
  float *S = score_scratch((size_t)(tile * d->Tk));
  if (!S) {
    __atomic_store_n(&J->failed, 1, __ATOMIC_RELAXED);
    return;
  }
  for (int64_t i0 = 0; i0 < d->Tq; i0 += tile) {
    int64_t n = d->Tq - i0 < tile ? d->Tq - i0 : tile;
    probs_rows(J, b, h, i0, n, S);
    apply_rows(d, J->v, S, b, h, i0, n, J->out);
  }
}

/* ---- vl_attn_probs ------------------------------------------------------ */

typedef struct {
  attn_dims d;
  const float *q, *k, *P, *gP;
  float *dS; /* scratch (B, Hq, Tq, Tk) */
  float *gq, *gk;
  float scale;
} probs_bwd_job;

typedef float v8f __attribute__((vector_size(32)));
typedef float v8fu __attribute__((vector_size(32), aligned(4), may_alias)); /* unaligned */

/* ds[0..n) = p * (g - s), eight lanes at a time. */
VL_VEC_CLONES static void scale_diff(const float *p, const float *g, float s, int64_t n,
                                     float *ds) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    *(v8fu *)(ds + j) = *(const v8fu *)(p + j) * (*(const v8fu *)(g + j) - s);
  for (; j < n; j++)
    ds[j] = p[j] * (g[j] - s);
}

/* dS = P * (gP - <P, gP>) per row. Each row's dot product is summed in
 * order in double; four rows at a time so the four sums overlap (one alone
 * waits on every add). */
static void probs_bwd_rows(void *arg, int64_t r0, int64_t r1, int worker) {
  probs_bwd_job *J = arg;
  const int64_t Tk = J->d.Tk;
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) {
    const float *p = J->P + r * Tk, *g = J->gP + r * Tk;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t j = 0; j < Tk; j++) {
      s0 += (double)p[j] * g[j];
      s1 += (double)p[Tk + j] * g[Tk + j];
      s2 += (double)p[2 * Tk + j] * g[2 * Tk + j];
      s3 += (double)p[3 * Tk + j] * g[3 * Tk + j];
    }
    const double s[4] = {s0, s1, s2, s3};
    for (int k = 0; k < 4; k++)
      scale_diff(p + k * Tk, g + k * Tk, (float)s[k], Tk, J->dS + (r + k) * Tk);
  }
  for (; r < r1; r++) {
    const float *p = J->P + r * Tk, *g = J->gP + r * Tk;
    double s = 0;
    for (int64_t j = 0; j < Tk; j++)
      s += (double)p[j] * g[j];
    scale_diff(p, g, (float)s, Tk, J->dS + r * Tk);
  }
}

/* gq[b, :, h] += scale * dS_bh @ k[b, :, hk]. */
static void probs_bwd_q(void *arg, int64_t b, int64_t h) {
  probs_bwd_job *J = arg;
  const attn_dims *d = &J->d;
  int64_t hk = h / d->group;
  vl_gemm(false, false, d->Tq, d->D, d->Tk, J->scale, J->dS + (b * d->Hq + h) * d->Tq * d->Tk,
          d->Tk, J->k + (b * d->Tk * d->Hkv + hk) * d->D, VL_F32, d->Hkv * d->D, 1.0f,
          J->gq + (b * d->Tq * d->Hq + h) * d->D, d->Hq * d->D);
}

/* gk[b, :, hk] += scale * sum over the group's heads of dS_bh^T @ q[b, :, h]. */
static void probs_bwd_k(void *arg, int64_t b, int64_t hk) {
  probs_bwd_job *J = arg;
  const attn_dims *d = &J->d;
  for (int64_t h = hk * d->group; h < (hk + 1) * d->group; h++)
    vl_gemm(true, false, d->Tk, d->D, d->Tq, J->scale, J->dS + (b * d->Hq + h) * d->Tq * d->Tk,
            d->Tk, J->q + (b * d->Tq * d->Hq + h) * d->D, VL_F32, d->Hq * d->D, 1.0f,
            J->gk + (b * d->Tk * d->Hkv + hk) * d->D, d->Hkv * d->D);
}

static void attn_probs_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *q = n->in[0], *k = n->in[1], *P = n->out;
  probs_bwd_job J = {.q = q->data, .k = k->data, .P = P->data, .gP = P->grad, .scale = n->f[0]};
  if (check_heads("attn_probs backward", q, k, "k", &J.d)) return;
  if (q->requires_grad && !(J.gq = vl_grad(c, q))) return;
  if (k->requires_grad && !(J.gk = vl_grad(c, k))) return;
  /* per-thread scratch, as the fused kernel's score tile (a fresh malloc of
   * this size is an mmap, its pages faulted in again on every call) */
  static _Thread_local float *g_ds;
  static _Thread_local size_t g_ds_n;
  if (g_ds_n < (size_t)P->numel + 1) {
    free(g_ds);
    g_ds = malloc(((size_t)P->numel + 1) * sizeof(float));
    g_ds_n = g_ds ? (size_t)P->numel + 1 : 0;
  }
  J.dS = g_ds;
  if (!J.dS) {
    vl_error(VL_ERR_NOMEM, "attn_probs backward: out of memory");
    return;
  }
  const attn_dims *d = &J.d;
  vl_parallel_for(d->B * d->Hq * d->Tq, 64, probs_bwd_rows, &J);
  if (J.gq) for_heads(d->B, d->Hq, probs_bwd_q, &J, d);
  if (J.gk) for_heads(d->B, d->Hkv, probs_bwd_k, &J, d);
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
  if (P->numel) for_heads(d->B, d->Hq, probs_head, &J, d);
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

/* gP_bh += gout[b, :, h] @ v[b, :, hk]^T. */
static void apply_bwd_probs(void *arg, int64_t b, int64_t h) {
  apply_bwd_job *J = arg;
  const attn_dims *d = &J->d;
  int64_t hk = h / d->group;
  vl_gemm(false, true, d->Tq, d->Tk, d->D, 1.0f, J->gout + (b * d->Tq * d->Hq + h) * d->D,
          d->Hq * d->D, J->v + (b * d->Tk * d->Hkv + hk) * d->D, VL_F32, d->Hkv * d->D, 1.0f,
          J->gP + (b * d->Hq + h) * d->Tq * d->Tk, d->Tk);
}

/* gv[b, :, hk] += sum over the group's heads of P_bh^T @ gout[b, :, h]. */
static void apply_bwd_values(void *arg, int64_t b, int64_t hk) {
  apply_bwd_job *J = arg;
  const attn_dims *d = &J->d;
  for (int64_t h = hk * d->group; h < (hk + 1) * d->group; h++)
    vl_gemm(true, false, d->Tk, d->D, d->Tq, 1.0f, J->P + (b * d->Hq + h) * d->Tq * d->Tk, d->Tk,
            J->gout + (b * d->Tq * d->Hq + h) * d->D, VL_F32, d->Hq * d->D, 1.0f,
            J->gv + (b * d->Tk * d->Hkv + hk) * d->D, d->Hkv * d->D);
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
    for_heads(d->B, d->Hq, apply_bwd_probs, &J, d);
  }
  if (v->requires_grad) {
    if (!(J.gv = vl_grad(c, v))) return;
    for_heads(d->B, d->Hkv, apply_bwd_values, &J, d);
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
  if (out->numel) for_heads(d->B, d->Hq, apply_head, &J, d);
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
  if (out->numel) for_heads(d->B, d->Hq, fused_head, &J, d);
  if (J.failed) {
    vl_error(VL_ERR_NOMEM, "attention: out of memory for a score row of %lld keys",
             (long long)d->Tk);
    return NULL;
  }
  return out;
}
