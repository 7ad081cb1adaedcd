/* Sum and mean over one axis or over everything. The tensor is viewed as
 * (outer, A, inner) around the reduced axis; rows of the inner dim are added
 * with a vectorisable loop. Totals of the whole tensor accumulate in double. */
#include "base/error.h"
#include "tensor/ops.h"

static void split_axis(const vl_tensor *x, int axis, int64_t *outer, int64_t *A, int64_t *inner) {
  *outer = *inner = 1;
  for (int i = 0; i < axis; i++)
    *outer *= x->shape[i];
  for (int i = axis + 1; i < x->ndim; i++)
    *inner *= x->shape[i];
  *A = x->shape[axis];
}

/* d x[o, a, i] += scale * d y[o, i] */
static void reduce_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *x = n->in[0];
  float *gx = vl_grad(c, x);
  if (!gx) return;
  int64_t outer, A, inner;
  split_axis(x, (int)n->i[0], &outer, &A, &inner);
  const float *g = n->out->grad;
  float s = n->f[0];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t a = 0; a < A; a++) {
      float *d = gx + (o * A + a) * inner;
      const float *gi = g + o * inner;
      for (int64_t i = 0; i < inner; i++)
        d[i] += s * gi[i];
    }
}

static vl_tensor *reduce_axis(vl_ctx *c, vl_tensor *x, int axis, bool keepdim, bool mean) {
  const char *op = mean ? "vl_mean" : "vl_sum";
  if (!x) return NULL;
  char s1[96];
  if (x->dtype != VL_F32) {
    vl_error(VL_ERR_UNSUPPORTED, "%s: input must be F32 (got %s)", op, vl_dtype_name(x->dtype));
    return NULL;
  }
  if (axis < 0) axis += x->ndim;
  if (axis < 0 || axis >= x->ndim) {
    vl_error(VL_ERR_INVALID, "%s: axis out of range for %s", op, vl_shape_str(x, s1, sizeof s1));
    return NULL;
  }
  int64_t outer, A, inner;
  split_axis(x, axis, &outer, &A, &inner);
  if (mean && A == 0) {
    vl_error(VL_ERR_INVALID, "%s: mean over an empty axis of %s", op,
             vl_shape_str(x, s1, sizeof s1));
    return NULL;
  }
  int64_t shape[VL_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < x->ndim; i++) {
    if (i != axis)
      shape[nd++] = x->shape[i];
    else if (keepdim)
      shape[nd++] = 1;
  }
  vl_tensor *y = vl_new(c, VL_F32, nd, shape);
  if (!y) return NULL;
  const float *xd = vl_f32(x);
  float *yd = vl_f32(y), s = mean ? 1.0f / (float)A : 1.0f;
  for (int64_t o = 0; o < outer; o++) {
    float *d = yd + o * inner;
    if (inner == 1) { /* a contiguous row: one dot-like reduction */
      double acc = 0;
      for (int64_t a = 0; a < A; a++)
        acc += xd[o * A + a];
      d[0] = (float)acc;
    } else {
      for (int64_t a = 0; a < A; a++) {
        const float *r = xd + (o * A + a) * inner;
        for (int64_t i = 0; i < inner; i++)
          d[i] += r[i];
      }
    }
    if (mean)
      for (int64_t i = 0; i < inner; i++)
        d[i] *= s;
  }
  vl_node *n = vl_record(c, y, op + 3, reduce_backward, 1, &x);
  if (n) {
    n->i[0] = axis;
    n->f[0] = s;
  }
  return y;
}

vl_tensor *vl_sum(vl_ctx *c, vl_tensor *x, int axis, bool keepdim) {
  return reduce_axis(c, x, axis, keepdim, false);
}

vl_tensor *vl_mean(vl_ctx *c, vl_tensor *x, int axis, bool keepdim) {
  return reduce_axis(c, x, axis, keepdim, true);
}

/* ---- over everything: shape (1) --------------------------------------- */

static void reduce_all_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *x = n->in[0];
  float *gx = vl_grad(c, x);
  if (!gx) return;
  float g = n->out->grad[0] * n->f[0];
  for (int64_t i = 0; i < x->numel; i++)
    gx[i] += g;
}

static vl_tensor *reduce_all(vl_ctx *c, vl_tensor *x, bool mean) {
  const char *op = mean ? "vl_mean_all" : "vl_sum_all";
  if (!x) return NULL;
  if (x->dtype != VL_F32) {
    vl_error(VL_ERR_UNSUPPORTED, "%s: input must be F32 (got %s)", op, vl_dtype_name(x->dtype));
    return NULL;
  }
  if (mean && x->numel == 0) {
    vl_error(VL_ERR_INVALID, "%s: mean of an empty tensor", op);
    return NULL;
  }
  int64_t one = 1;
  vl_tensor *y = vl_new(c, VL_F32, 1, &one);
  if (!y) return NULL;
  /* Blocks of 8-lane float partial sums (independent chains the compiler
   * can vectorise) folded into a double. */
  const float *xd = vl_f32(x);
  double acc = 0;
  for (int64_t b = 0; b < x->numel; b += 4096) {
    int64_t e = b + 4096 < x->numel ? b + 4096 : x->numel, i = b;
    float lane[8] = {0};
    for (; i + 8 <= e; i += 8)
      for (int l = 0; l < 8; l++)
        lane[l] += xd[i + l];
    for (; i < e; i++)
      acc += xd[i];
    for (int l = 0; l < 8; l++)
      acc += lane[l];
  }
  float s = mean ? 1.0f / (float)x->numel : 1.0f;
  vl_f32(y)[0] = (float)(mean ? acc / (double)x->numel : acc);
  vl_node *n = vl_record(c, y, op + 3, reduce_all_backward, 1, &x);
  if (n) n->f[0] = s;
  return y;
}

vl_tensor *vl_sum_all(vl_ctx *c, vl_tensor *x) { return reduce_all(c, x, false); }
vl_tensor *vl_mean_all(vl_ctx *c, vl_tensor *x) { return reduce_all(c, x, true); }
