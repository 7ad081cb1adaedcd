/* Elementwise binary ops with NumPy broadcasting, and scalar ops.
 *
 * Broadcasting is done with per-operand strides (0 on stretched dims) over
 * the output shape; adjacent dims that are contiguous for both operands are
 * merged first, so the common cases (same shape, bias over the last dim,
 * per-row scale) run as one tight inner loop. Backward reduces over the
 * stretched dims by accumulating through the same strides. */
#include <string.h>

#include "base/error.h"
#include "base/threads.h"
#include "tensor/ops.h"

enum { PAR_MIN = 32768 };

typedef enum { OP_ADD, OP_SUB, OP_MUL } binop;

/* Output shape and both operands' strides, dims merged where possible. */
typedef struct {
  int nd;
  int64_t shape[VL_MAX_DIMS];
  int64_t sa[VL_MAX_DIMS], sb[VL_MAX_DIMS];
  int64_t inner, rows; /* inner = shape[nd-1], rows = numel / inner */
} bcast;

static const char *const op_names[] = {"vl_add", "vl_sub", "vl_mul"};

static int broadcast_plan(const char *op, const vl_tensor *a, const vl_tensor *b, int *out_nd,
                          int64_t *out_shape, bcast *p) {
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  int64_t sa[VL_MAX_DIMS] = {0}, sb[VL_MAX_DIMS] = {0}, shape[VL_MAX_DIMS] = {0};
  int64_t ra = 1, rb = 1; /* running strides, from the right */
  for (int i = nd - 1; i >= 0; i--) {
    int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
    int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      char s1[96], s2[96];
      return vl_error(VL_ERR_INVALID, "%s: shapes %s and %s do not broadcast", op,
                      vl_shape_str(a, s1, sizeof s1), vl_shape_str(b, s2, sizeof s2));
    }
    shape[i] = da == 1 ? db : da;
    sa[i] = da == 1 ? 0 : ra;
    sb[i] = db == 1 ? 0 : rb;
    ra *= da;
    rb *= db;
  }
  *out_nd = nd;
  for (int i = 0; i < nd; i++)
    out_shape[i] = shape[i];
  /* Merge dims (drop size-1 ones, join contiguous neighbours). */
  int m = 0;
  for (int i = 0; i < nd; i++) {
    if (shape[i] == 1) continue;
    if (m > 0 && p->sa[m - 1] == sa[i] * shape[i] && p->sb[m - 1] == sb[i] * shape[i]) {
      p->shape[m - 1] *= shape[i];
      p->sa[m - 1] = sa[i];
      p->sb[m - 1] = sb[i];
      continue;
    }
    p->shape[m] = shape[i];
    p->sa[m] = sa[i];
    p->sb[m] = sb[i];
    m++;
  }
  if (m == 0) {
    p->shape[0] = 1;
    p->sa[0] = p->sb[0] = 0;
    m = 1;
  }
  p->nd = m;
  p->inner = p->shape[m - 1];
  p->rows = 1;
  for (int i = 0; i < m - 1; i++)
    p->rows *= p->shape[i];
  return VL_OK;
}

/* Offsets of row r's first element in a and b. */
static void row_offsets(const bcast *p, int64_t r, int64_t *oa, int64_t *ob) {
  int64_t a = 0, b = 0;
  for (int i = p->nd - 2; i >= 0; i--) {
    int64_t k = r % p->shape[i];
    r /= p->shape[i];
    a += k * p->sa[i];
    b += k * p->sb[i];
  }
  *oa = a;
  *ob = b;
}

typedef struct {
  const bcast *p;
  binop op;
  const float *a, *b;
  float *y;
} fwd_arg;

#define INNER_LOOP(EXPR)                                                                           \
  do {                                                                                             \
    if (sa == 1 && sb == 1)                                                                        \
      for (int64_t j = 0; j < n; j++) {                                                            \
        float x1 = a[j], x2 = b[j];                                                                \
        y[j] = EXPR;                                                                               \
      }                                                                                            \
    else if (sa == 1)                                                                              \
      for (int64_t j = 0; j < n; j++) {                                                            \
        float x1 = a[j], x2 = b[0];                                                                \
        y[j] = EXPR;                                                                               \
      }                                                                                            \
    else if (sb == 1)                                                                              \
      for (int64_t j = 0; j < n; j++) {                                                            \
        float x1 = a[0], x2 = b[j];                                                                \
        y[j] = EXPR;                                                                               \
      }                                                                                            \
    else                                                                                           \
      for (int64_t j = 0; j < n; j++) {                                                            \
        float x1 = a[0], x2 = b[0];                                                                \
        y[j] = EXPR;                                                                               \
      }                                                                                            \
  } while (0)

static void fwd_rows(void *arg, int64_t r0, int64_t r1, int worker) {
  (void)worker;
  const fwd_arg *f = arg;
  const bcast *p = f->p;
  int64_t n = p->inner, sa = p->sa[p->nd - 1], sb = p->sb[p->nd - 1];
  for (int64_t r = r0; r < r1; r++) {
    int64_t oa, ob;
    row_offsets(p, r, &oa, &ob);
    const float *restrict a = f->a + oa, *restrict b = f->b + ob;
    float *restrict y = f->y + r * n;
    switch (f->op) {
    case OP_ADD: INNER_LOOP(x1 + x2); break;
    case OP_SUB: INNER_LOOP(x1 - x2); break;
    case OP_MUL: INNER_LOOP(x1 * x2); break;
    }
  }
}

/* dst[idx] += alpha * g * (other ? other[idx_other] : 1), over the output
 * rows [r0, r1); `which` selects whether dst is operand a (0) or b (1). */
typedef struct {
  const bcast *p;
  const float *g, *other;
  float *dst;
  float alpha;
  int which;
} bwd_arg;

static void bwd_rows(void *arg, int64_t r0, int64_t r1, int worker) {
  (void)worker;
  const bwd_arg *k = arg;
  const bcast *p = k->p;
  int64_t n = p->inner;
  int64_t sd = k->which ? p->sb[p->nd - 1] : p->sa[p->nd - 1];
  int64_t so = k->which ? p->sa[p->nd - 1] : p->sb[p->nd - 1];
  float al = k->alpha;
  for (int64_t r = r0; r < r1; r++) {
    int64_t oa, ob;
    row_offsets(p, r, &oa, &ob);
    float *restrict d = k->dst + (k->which ? ob : oa);
    const float *restrict o = k->other ? k->other + (k->which ? oa : ob) : NULL;
    const float *restrict g = k->g + r * n;
    if (sd == 1) {
      if (!o)
        for (int64_t j = 0; j < n; j++)
          d[j] += al * g[j];
      else if (so == 1)
        for (int64_t j = 0; j < n; j++)
          d[j] += al * g[j] * o[j];
      else
        for (int64_t j = 0; j < n; j++)
          d[j] += al * g[j] * o[0];
    } else { /* dst stretched along the inner dim: reduce the row */
      float s = 0;
      if (!o)
        for (int64_t j = 0; j < n; j++)
          s += g[j];
      else if (so == 1)
        for (int64_t j = 0; j < n; j++)
          s += g[j] * o[j];
      else
        for (int64_t j = 0; j < n; j++)
          s += g[j] * o[0];
      d[0] += al * s;
    }
  }
}

static void binary_backward(vl_ctx *c, vl_node *nd) {
  bcast *p = nd->saved;
  binop op = (binop)nd->i[0];
  vl_tensor *a = nd->in[0], *b = nd->in[1], *y = nd->out;
  for (int w = 0; w < 2; w++) {
    vl_tensor *t = w ? b : a;
    if (!t->requires_grad) continue;
    bool fresh;
    float *gd = vl_grad_fresh(c, t, &fresh);
    if (!gd) return;
    if (fresh && op == OP_ADD && t->numel == y->numel) { /* d a = d y, same layout */
      memcpy(gd, y->grad, (size_t)y->numel * sizeof(float));
      continue;
    }
    if (fresh) memset(gd, 0, (size_t)t->numel * sizeof(float));
    bwd_arg k = {p, y->grad, NULL, gd, 1.0f, w};
    if (op == OP_SUB && w == 1) k.alpha = -1.0f;
    if (op == OP_MUL) k.other = vl_f32(w ? a : b);
    /* Rows write disjoint parts of dst only when dst is not stretched. */
    if (t->numel == y->numel && y->numel > PAR_MIN)
      vl_parallel_for(p->rows, 1 + PAR_MIN / (p->inner ? p->inner : 1), bwd_rows, &k);
    else
      bwd_rows(&k, 0, p->rows, 0);
  }
}

static vl_tensor *binary(vl_ctx *c, vl_tensor *a, vl_tensor *b, binop op) {
  if (!a || !b) return NULL;
  const char *name = op_names[op];
  if (a->dtype != VL_F32 || b->dtype != VL_F32) {
    vl_error(VL_ERR_UNSUPPORTED, "%s: operands must be F32 (got %s and %s)", name,
             vl_dtype_name(a->dtype), vl_dtype_name(b->dtype));
    return NULL;
  }
  bcast plan, *p = &plan;
  int nd = 0;
  int64_t shape[VL_MAX_DIMS];
  if (broadcast_plan(name, a, b, &nd, shape, p) != VL_OK) return NULL;
  vl_tensor *y = vl_new_uninit(c, VL_F32, nd, shape);
  if (!y) return NULL;
  if (y->numel == 0) return y;
  vl_tensor *in[2] = {a, b};
  if (vl_ctx_recording(c) && (a->requires_grad || b->requires_grad)) {
    p = vl_ctx_alloc(c, sizeof *p);
    if (!p) return NULL;
    *p = plan;
  }
  fwd_arg f = {p, op, vl_f32(a), vl_f32(b), vl_f32(y)};
  if (y->numel > PAR_MIN)
    vl_parallel_for(p->rows, 1 + PAR_MIN / p->inner, fwd_rows, &f);
  else
    fwd_rows(&f, 0, p->rows, 0);
  vl_node *n = vl_record(c, y, name + 3, binary_backward, 2, in);
  if (n) {
    n->i[0] = op;
    n->saved = p;
  }
  return y;
}

vl_tensor *vl_add(vl_ctx *c, vl_tensor *a, vl_tensor *b) { return binary(c, a, b, OP_ADD); }
vl_tensor *vl_sub(vl_ctx *c, vl_tensor *a, vl_tensor *b) { return binary(c, a, b, OP_SUB); }
vl_tensor *vl_mul(vl_ctx *c, vl_tensor *a, vl_tensor *b) { return binary(c, a, b, OP_MUL); }

/* ---- scalar ops: y = x * s + t ----------------------------------------- */

typedef struct {
  const float *x;
  float *y;
  float s, t;
} affine_arg;

static void affine_range(void *arg, int64_t b, int64_t e, int worker) {
  (void)worker;
  const affine_arg *k = arg;
  const float *restrict x = k->x;
  float *restrict y = k->y, s = k->s, t = k->t;
  for (int64_t i = b; i < e; i++)
    y[i] = x[i] * s + t;
}

static void affine_backward(vl_ctx *c, vl_node *n) {
  float *gx = vl_grad(c, n->in[0]);
  if (!gx) return;
  const float *g = n->out->grad;
  float s = n->f[0];
  for (int64_t i = 0; i < n->out->numel; i++)
    gx[i] += s * g[i];
}

static vl_tensor *affine(vl_ctx *c, vl_tensor *x, float s, float t, const char *name) {
  if (!x) return NULL;
  if (x->dtype != VL_F32) {
    vl_error(VL_ERR_UNSUPPORTED, "%s: input must be F32 (got %s)", name, vl_dtype_name(x->dtype));
    return NULL;
  }
  vl_tensor *y = vl_new_uninit(c, VL_F32, x->ndim, x->shape);
  if (!y) return NULL;
  affine_arg k = {vl_f32(x), vl_f32(y), s, t};
  if (x->numel > PAR_MIN)
    vl_parallel_for(x->numel, PAR_MIN / 2, affine_range, &k);
  else
    affine_range(&k, 0, x->numel, 0);
  vl_node *n = vl_record(c, y, name + 3, affine_backward, 1, &x);
  if (n) n->f[0] = s;
  return y;
}

vl_tensor *vl_scale(vl_ctx *c, vl_tensor *a, float s) { return affine(c, a, s, 0.0f, "vl_scale"); }
vl_tensor *vl_add_scalar(vl_ctx *c, vl_tensor *a, float s) {
  return affine(c, a, 1.0f, s, "vl_add_scalar");
}
