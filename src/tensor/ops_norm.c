/* LayerNorm and RMSNorm over the last dim. Statistics are computed per row in
 * float with two passes (mean, then centred sum of squares), which stays
 * accurate when |mean| >> std. Rows run in parallel for large inputs. When a
 * backward will follow, per-row mean and 1/std are kept on the arena. */
#include <math.h>

#include "base/error.h"
#include "base/threads.h"
#include "tensor/ops.h"

enum { PAR_MIN = 32768 };

typedef struct {
  const float *x, *w, *b, *g;
  float *y;           /* forward output, or d x in backward */
  float *mean, *rstd; /* per row: mean - x[row][0], 1/std; no mean for rmsnorm */
  int64_t C;
  float eps;
} norm_arg;

static int check_norm(const char *op, const vl_tensor *x, const vl_tensor *p, const char *what) {
  if (x->dtype != VL_F32)
    return vl_error(VL_ERR_UNSUPPORTED, "%s: input must be F32 (got %s)", op,
                    vl_dtype_name(x->dtype));
  if (x->ndim < 1 || x->shape[x->ndim - 1] == 0)
    return vl_error(VL_ERR_INVALID, "%s: input needs a non-empty last dim", op);
  if (!p) return VL_OK;
  char s1[96], s2[96];
  if (p->dtype != VL_F32)
    return vl_error(VL_ERR_UNSUPPORTED, "%s: %s must be F32 (got %s)", op, what,
                    vl_dtype_name(p->dtype));
  if (p->ndim != 1 || p->shape[0] != x->shape[x->ndim - 1])
    return vl_error(VL_ERR_INVALID, "%s: %s has shape %s, expected [%lld] for input %s", op, what,
                    vl_shape_str(p, s1, sizeof s1), (long long)x->shape[x->ndim - 1],
                    vl_shape_str(x, s2, sizeof s2));
  return VL_OK;
}

static bool wants_grad(vl_ctx *c, vl_tensor *const *in, int n) {
  if (!vl_ctx_recording(c)) return false;
  for (int i = 0; i < n; i++)
    if (in[i] && in[i]->requires_grad) return true;
  return false;
}

static void run_rows(norm_arg *k, int64_t rows, vl_range_fn fn) {
  if (rows * k->C > PAR_MIN)
    vl_parallel_for(rows, 1 + PAR_MIN / (2 * k->C), fn, k);
  else
    fn(k, 0, rows, 0);
}

/* Row sums with 8 independent accumulators: the compiler may not reorder a
 * float sum itself, and one serial chain would cap the loop at one add per
 * latency. */
#define LANES 8
#define LANE_SUM(EXPR)                                                                             \
  do {                                                                                             \
    float acc[LANES] = {0};                                                                        \
    int64_t j = 0;                                                                                 \
    for (; j + LANES <= C; j += LANES)                                                             \
      for (int l = 0; l < LANES; l++) {                                                            \
        float v = x[j + l];                                                                        \
        acc[l] += (EXPR);                                                                          \
      }                                                                                            \
    float t = 0;                                                                                   \
    for (; j < C; j++) {                                                                           \
      float v = x[j];                                                                              \
      t += (EXPR);                                                                                 \
    }                                                                                              \
    for (int l = 0; l < LANES; l++)                                                                \
      t += acc[l];                                                                                 \
    return t;                                                                                      \
  } while (0)

static float sum_from(const float *x, int64_t C, float x0) { LANE_SUM(v - x0); }
static float sumsq_from(const float *x, int64_t C, float x0, float m) {
  LANE_SUM(((v - x0) - m) * ((v - x0) - m));
}
static float sumsq(const float *x, int64_t C) { LANE_SUM(v * v); }

/* ---- layernorm --------------------------------------------------------- */

static void ln_fwd(void *arg, int64_t r0, int64_t r1, int worker) {
  (void)worker;
  const norm_arg *k = arg;
  int64_t C = k->C;
  for (int64_t r = r0; r < r1; r++) {
    const float *restrict x = k->x + r * C;
    float *restrict y = k->y + r * C;
    /* Centred on x[0]: mean is kept as an offset from x0 and x - x0 is exact
     * for nearby values, so |mean| >> std loses no precision. */
    float x0 = x[0], mean = sum_from(x, C, x0) / (float)C;
    float v = sumsq_from(x, C, x0, mean);
    float rstd = 1.0f / sqrtf(v / (float)C + k->eps);
    if (k->mean) {
      k->mean[r] = mean;
      k->rstd[r] = rstd;
    }
    const float *restrict w = k->w, *restrict b = k->b;
    if (w && b)
      for (int64_t j = 0; j < C; j++)
        y[j] = ((x[j] - x0) - mean) * rstd * w[j] + b[j];
    else if (w)
      for (int64_t j = 0; j < C; j++)
        y[j] = ((x[j] - x0) - mean) * rstd * w[j];
    else if (b)
      for (int64_t j = 0; j < C; j++)
        y[j] = ((x[j] - x0) - mean) * rstd + b[j];
    else
      for (int64_t j = 0; j < C; j++)
        y[j] = ((x[j] - x0) - mean) * rstd;
  }
}

/* dx = rstd * (gh - mean(gh) - xh * mean(gh * xh)), gh = g * w, xh normalised. */
static void ln_bwd_x(void *arg, int64_t r0, int64_t r1, int worker) {
  (void)worker;
  const norm_arg *k = arg;
  int64_t C = k->C;
  for (int64_t r = r0; r < r1; r++) {
    const float *restrict x = k->x + r * C, *restrict g = k->g + r * C, *restrict w = k->w;
    float *restrict dx = k->y + r * C;
    float x0 = x[0], mean = k->mean[r], rstd = k->rstd[r], s1 = 0, s2 = 0;
    for (int64_t j = 0; j < C; j++) {
      float gh = w ? g[j] * w[j] : g[j];
      s1 += gh;
      s2 += gh * ((x[j] - x0) - mean) * rstd;
    }
    s1 /= (float)C;
    s2 /= (float)C;
    for (int64_t j = 0; j < C; j++) {
      float gh = w ? g[j] * w[j] : g[j];
      dx[j] += rstd * (gh - s1 - ((x[j] - x0) - mean) * rstd * s2);
    }
  }
}

static void ln_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
  int64_t C = x->shape[x->ndim - 1], rows = x->numel / C;
  float *st = n->saved;
  norm_arg k = {vl_f32(x), w ? vl_f32(w) : NULL, NULL, n->out->grad, NULL, st, st + rows, C, 0};
  if (x->requires_grad) {
    if (!(k.y = vl_grad(c, x))) return;
    run_rows(&k, rows, ln_bwd_x);
  }
  float *dw = w && w->requires_grad ? vl_grad(c, w) : NULL;
  float *db = b && b->requires_grad ? vl_grad(c, b) : NULL;
  if (!dw && !db) return;
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = k.x + r * C, *g = k.g + r * C;
    float x0 = xr[0], mean = k.mean[r], rstd = k.rstd[r];
    if (dw)
      for (int64_t j = 0; j < C; j++)
        dw[j] += g[j] * ((xr[j] - x0) - mean) * rstd;
    if (db)
      for (int64_t j = 0; j < C; j++)
        db[j] += g[j];
  }
}

vl_tensor *vl_layernorm(vl_ctx *c, vl_tensor *x, vl_tensor *w, vl_tensor *b, float eps) {
  if (!x) return NULL;
  if (check_norm("vl_layernorm", x, w, "weight") || check_norm("vl_layernorm", x, b, "bias"))
    return NULL;
  if (!(eps >= 0)) {
    vl_error(VL_ERR_INVALID, "vl_layernorm: eps must be >= 0 (got %g)", (double)eps);
    return NULL;
  }
  vl_tensor *y = vl_new_uninit(c, VL_F32, x->ndim, x->shape);
  if (!y) return NULL;
  int64_t C = x->shape[x->ndim - 1], rows = x->numel / C;
  vl_tensor *in[3] = {x, w, b};
  float *st = NULL;
  if (wants_grad(c, in, 3) && !(st = vl_ctx_alloc(c, (size_t)(2 * rows) * sizeof(float))))
    return NULL;
  norm_arg k = {vl_f32(x),
                w ? vl_f32(w) : NULL,
                b ? vl_f32(b) : NULL,
                NULL,
                vl_f32(y),
                st,
                st ? st + rows : NULL,
                C,
                eps};
  run_rows(&k, rows, ln_fwd);
  vl_node *n = vl_record(c, y, "layernorm", ln_backward, 3, in);
  if (n) n->saved = st;
  return y;
}

/* ---- rmsnorm ----------------------------------------------------------- */

static void rms_fwd(void *arg, int64_t r0, int64_t r1, int worker) {
  (void)worker;
  const norm_arg *k = arg;
  int64_t C = k->C;
  for (int64_t r = r0; r < r1; r++) {
    const float *x = k->x + r * C;
    float *y = k->y + r * C, s = sumsq(x, C);
    float rstd = 1.0f / sqrtf(s / (float)C + k->eps);
    if (k->rstd) k->rstd[r] = rstd;
    if (k->w)
      for (int64_t j = 0; j < C; j++)
        y[j] = x[j] * rstd * k->w[j];
    else
      for (int64_t j = 0; j < C; j++)
        y[j] = x[j] * rstd;
  }
}

/* dx = rstd * (gw - x * rstd^2 * mean(gw * x)), gw = g * w. */
static void rms_bwd_x(void *arg, int64_t r0, int64_t r1, int worker) {
  (void)worker;
  const norm_arg *k = arg;
  int64_t C = k->C;
  for (int64_t r = r0; r < r1; r++) {
    const float *restrict x = k->x + r * C, *restrict g = k->g + r * C, *restrict w = k->w;
    float *restrict dx = k->y + r * C;
    float rstd = k->rstd[r], s = 0;
    for (int64_t j = 0; j < C; j++)
      s += (w ? g[j] * w[j] : g[j]) * x[j];
    float m = s / (float)C * rstd * rstd;
    for (int64_t j = 0; j < C; j++)
      dx[j] += rstd * ((w ? g[j] * w[j] : g[j]) - x[j] * m);
  }
}

static void rms_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *x = n->in[0], *w = n->in[1];
  int64_t C = x->shape[x->ndim - 1], rows = x->numel / C;
  norm_arg k = {vl_f32(x), w ? vl_f32(w) : NULL, NULL, n->out->grad, NULL, NULL, n->saved, C, 0};
  if (x->requires_grad) {
    if (!(k.y = vl_grad(c, x))) return;
    run_rows(&k, rows, rms_bwd_x);
  }
  float *dw = w && w->requires_grad ? vl_grad(c, w) : NULL;
  if (!dw) return;
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = k.x + r * C, *g = k.g + r * C;
    float rstd = k.rstd[r];
    for (int64_t j = 0; j < C; j++)
      dw[j] += g[j] * xr[j] * rstd;
  }
}

vl_tensor *vl_rmsnorm(vl_ctx *c, vl_tensor *x, vl_tensor *w, float eps) {
  if (!x) return NULL;
  if (check_norm("vl_rmsnorm", x, w, "weight")) return NULL;
  if (!(eps >= 0)) {
    vl_error(VL_ERR_INVALID, "vl_rmsnorm: eps must be >= 0 (got %g)", (double)eps);
    return NULL;
  }
  vl_tensor *y = vl_new_uninit(c, VL_F32, x->ndim, x->shape);
  if (!y) return NULL;
  int64_t C = x->shape[x->ndim - 1], rows = x->numel / C;
  vl_tensor *in[2] = {x, w};
  float *st = NULL;
  if (wants_grad(c, in, 2) && !(st = vl_ctx_alloc(c, (size_t)rows * sizeof(float)))) return NULL;
  norm_arg k = {vl_f32(x), w ? vl_f32(w) : NULL, NULL, NULL, vl_f32(y), NULL, st, C, eps};
  run_rows(&k, rows, rms_fwd);
  vl_node *n = vl_record(c, y, "rmsnorm", rms_backward, 2, in);
  if (n) n->saved = st;
  return y;
}
