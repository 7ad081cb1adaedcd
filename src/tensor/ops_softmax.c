/* Softmax, log-softmax and cross-entropy over the last dim. Every row is
 * shifted by its max before exponentiating, so large logits do not overflow;
 * a row of all -inf (fully masked) gives zeros rather than NaN in softmax. */
#include <math.h>

#include "base/error.h"
#include "base/threads.h"
#include "tensor/ops.h"

enum { PAR_MIN = 32768 };

typedef struct {
  const float *x, *g, *y;
  float *out; /* forward output or d x */
  int64_t C;
  bool log;
} sm_arg;

/* max and log(sum(exp(x - max))) of one row. */
static void row_lse(const float *x, int64_t C, float *mx, float *lse) {
  float m = -INFINITY;
  for (int64_t j = 0; j < C; j++)
    m = x[j] > m ? x[j] : m;
  float s = 0;
  if (m == -INFINITY) {
    *mx = m;
    *lse = -INFINITY;
    return;
  }
  for (int64_t j = 0; j < C; j++)
    s += expf(x[j] - m);
  *mx = m;
  *lse = logf(s);
}

static void sm_fwd(void *arg, int64_t r0, int64_t r1, int worker) {
  (void)worker;
  const sm_arg *k = arg;
  int64_t C = k->C;
  for (int64_t r = r0; r < r1; r++) {
    const float *x = k->x + r * C;
    float *y = k->out + r * C;
    float m = -INFINITY;
    for (int64_t j = 0; j < C; j++)
      m = x[j] > m ? x[j] : m;
    if (m == -INFINITY) { /* fully masked row */
      for (int64_t j = 0; j < C; j++)
        y[j] = k->log ? -INFINITY : 0.0f;
      continue;
    }
    float s = 0;
    if (k->log) {
      for (int64_t j = 0; j < C; j++)
        s += expf(x[j] - m);
      /* (x - m) - log s, not x - (m + log s): m + log s may round badly. */
      /* s >= 1 (the maximum's term is exp(0)); cppcheck assumes the loop may not run */
      /* cppcheck-suppress invalidFunctionArg */
      float l = logf(s);
      for (int64_t j = 0; j < C; j++)
        y[j] = (x[j] - m) - l;
    } else {
      for (int64_t j = 0; j < C; j++) {
        y[j] = expf(x[j] - m);
        s += y[j];
      }
      float inv = 1.0f / s;
      for (int64_t j = 0; j < C; j++)
        y[j] *= inv;
    }
  }
}

/* softmax: dx = y * (g - sum(g * y)); log_softmax: dx = g - exp(y) * sum(g). */
static void sm_bwd(void *arg, int64_t r0, int64_t r1, int worker) {
  (void)worker;
  const sm_arg *k = arg;
  int64_t C = k->C;
  for (int64_t r = r0; r < r1; r++) {
    const float *y = k->y + r * C, *g = k->g + r * C;
    float *dx = k->out + r * C, s = 0;
    if (k->log) {
      for (int64_t j = 0; j < C; j++)
        s += g[j];
      for (int64_t j = 0; j < C; j++)
        dx[j] += g[j] - expf(y[j]) * s;
    } else {
      for (int64_t j = 0; j < C; j++)
        s += g[j] * y[j];
      for (int64_t j = 0; j < C; j++)
        dx[j] += y[j] * (g[j] - s);
    }
  }
}

static void run_rows(sm_arg *k, int64_t rows, vl_range_fn fn) {
  if (rows * k->C > PAR_MIN)
    vl_parallel_for(rows, 1 + PAR_MIN / (2 * k->C), fn, k);
  else
    fn(k, 0, rows, 0);
}

static void softmax_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *x = n->in[0];
  float *dx = vl_grad(c, x);
  if (!dx) return;
  int64_t C = x->shape[x->ndim - 1];
  sm_arg k = {NULL, n->out->grad, vl_f32(n->out), dx, C, n->i[0] != 0};
  run_rows(&k, x->numel / C, sm_bwd);
}

static vl_tensor *softmax_impl(vl_ctx *c, vl_tensor *x, bool log) {
  const char *name = log ? "vl_log_softmax" : "vl_softmax";
  if (!x) return NULL;
  if (x->dtype != VL_F32) {
    vl_error(VL_ERR_UNSUPPORTED, "%s: input must be F32 (got %s)", name, vl_dtype_name(x->dtype));
    return NULL;
  }
  if (x->ndim < 1 || x->shape[x->ndim - 1] == 0) {
    vl_error(VL_ERR_INVALID, "%s: input needs a non-empty last dim", name);
    return NULL;
  }
  vl_tensor *y = vl_new_uninit(c, VL_F32, x->ndim, x->shape);
  if (!y) return NULL;
  int64_t C = x->shape[x->ndim - 1];
  sm_arg k = {vl_f32(x), NULL, NULL, vl_f32(y), C, log};
  run_rows(&k, x->numel / C, sm_fwd);
  vl_node *n = vl_record(c, y, name + 3, softmax_backward, 1, &x);
  if (n) n->i[0] = log;
  return y;
}

vl_tensor *vl_softmax(vl_ctx *c, vl_tensor *x) { return softmax_impl(c, x, false); }
vl_tensor *vl_log_softmax(vl_ctx *c, vl_tensor *x) { return softmax_impl(c, x, true); }

/* ---- cross-entropy ----------------------------------------------------- */

static int64_t target_at(const vl_tensor *t, int64_t i) {
  return t->dtype == VL_I64 ? ((const int64_t *)t->data)[i] : ((const int32_t *)t->data)[i];
}

/* d logits[i] = g / count * (softmax(logits[i]) - onehot(t_i)), from the
 * per-row max and log-sum-exp kept at forward time. */
static void ce_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *x = n->in[0], *t = n->in[1];
  float *dx = vl_grad(c, x);
  if (!dx) return;
  int64_t N = x->shape[0], V = x->shape[1], ignore = n->i[0], count = n->i[1];
  const float *st = n->saved, *xd = vl_f32(x);
  float gs = n->out->grad[0] / (float)count;
  for (int64_t i = 0; i < N; i++) {
    int64_t ti = target_at(t, i);
    if (ti == ignore) continue;
    const float *xr = xd + i * V;
    float *d = dx + i * V, m = st[2 * i], lse = st[2 * i + 1];
    for (int64_t j = 0; j < V; j++)
      d[j] += gs * expf((xr[j] - m) - lse);
    d[ti] -= gs;
  }
}

vl_tensor *vl_cross_entropy(vl_ctx *c, vl_tensor *logits, vl_tensor *targets,
                            int64_t ignore_index) {
  if (!logits || !targets) return NULL;
  char s1[96], s2[96];
  if (logits->dtype != VL_F32) {
    vl_error(VL_ERR_UNSUPPORTED, "vl_cross_entropy: logits must be F32 (got %s)",
             vl_dtype_name(logits->dtype));
    return NULL;
  }
  if (targets->dtype != VL_I64 && targets->dtype != VL_I32) {
    vl_error(VL_ERR_UNSUPPORTED, "vl_cross_entropy: targets must be I64 or I32 (got %s)",
             vl_dtype_name(targets->dtype));
    return NULL;
  }
  if (logits->ndim != 2 || targets->ndim != 1 || targets->shape[0] != logits->shape[0] ||
      logits->shape[1] == 0) {
    vl_error(VL_ERR_INVALID,
             "vl_cross_entropy: logits %s and targets %s: expected (N, V) with V > 0 and (N)",
             vl_shape_str(logits, s1, sizeof s1), vl_shape_str(targets, s2, sizeof s2));
    return NULL;
  }
  int64_t N = logits->shape[0], V = logits->shape[1], count = 0;
  for (int64_t i = 0; i < N; i++) {
    int64_t ti = target_at(targets, i);
    if (ti == ignore_index) continue;
    if (ti < 0 || ti >= V) {
      vl_error(VL_ERR_INVALID, "vl_cross_entropy: target %lld at row %lld is outside [0, %lld)",
               (long long)ti, (long long)i, (long long)V);
      return NULL;
    }
    count++;
  }
  int64_t one = 1;
  vl_tensor *y = vl_new(c, VL_F32, 1, &one);
  float *st = N ? vl_ctx_alloc(c, (size_t)(2 * N) * sizeof(float)) : NULL;
  if (!y || (N && !st)) return NULL;
  const float *xd = vl_f32(logits);
  double total = 0;
  for (int64_t i = 0; i < N; i++) {
    int64_t ti = target_at(targets, i);
    if (ti == ignore_index) continue;
    row_lse(xd + i * V, V, &st[2 * i], &st[2 * i + 1]);
    total += (double)(st[2 * i] + st[2 * i + 1]) - (double)xd[i * V + ti];
  }
  /* As PyTorch: the mean over zero counted rows is NaN. */
  vl_f32(y)[0] = count ? (float)(total / (double)count) : NAN;
  vl_tensor *in[2] = {logits, targets};
  vl_node *n = count ? vl_record(c, y, "cross_entropy", ce_backward, 2, in) : NULL;
  if (n) {
    n->i[0] = ignore_index;
    n->i[1] = count;
    n->saved = st;
  }
  return y;
}
