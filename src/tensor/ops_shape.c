/* Shape ops: reshape (shares data), permute / transpose, concat, slice
 * (copies). Forward works for any dtype (bytes are moved); gradients flow
 * only through F32 tensors, as everywhere. */
#include <string.h>

#include "base/error.h"
#include "base/threads.h"
#include "tensor/ops.h"

enum { PAR_MIN = 32768 };

static void add_into(float *restrict d, const float *restrict s, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    d[i] += s[i];
}

/* ---- reshape ----------------------------------------------------------- */

static void reshape_backward(vl_ctx *c, vl_node *n) {
  bool fresh;
  float *gx = vl_grad_fresh(c, n->in[0], &fresh);
  if (gx && fresh)
    memcpy(gx, n->out->grad, (size_t)n->out->numel * sizeof(float));
  else if (gx)
    add_into(gx, n->out->grad, n->out->numel);
}

vl_tensor *vl_reshape(vl_ctx *c, vl_tensor *x, int ndim, const int64_t *shape) {
  if (!x) return NULL;
  char s1[96];
  if (ndim < 0 || ndim > VL_MAX_DIMS || (ndim > 0 && !shape)) {
    vl_error(VL_ERR_INVALID, "vl_reshape: rank %d out of range (max %d)", ndim, VL_MAX_DIMS);
    return NULL;
  }
  int64_t sh[VL_MAX_DIMS], known = 1;
  int infer = -1;
  for (int i = 0; i < ndim; i++) {
    sh[i] = shape[i];
    if (shape[i] == -1 && infer < 0) {
      infer = i;
    } else if (shape[i] < 0) {
      vl_error(VL_ERR_INVALID, "vl_reshape: bad dim %lld at %d (only one -1 allowed)",
               (long long)shape[i], i);
      return NULL;
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x->numel % known) {
      vl_error(VL_ERR_INVALID, "vl_reshape: cannot infer the -1 dim of a %s tensor",
               vl_shape_str(x, s1, sizeof s1));
      return NULL;
    }
    sh[infer] = x->numel / known;
    known *= sh[infer];
  }
  if (known != x->numel) {
    vl_error(VL_ERR_INVALID, "vl_reshape: %s has %lld elements, the new shape %lld",
             vl_shape_str(x, s1, sizeof s1), (long long)x->numel, (long long)known);
    return NULL;
  }
  vl_tensor *y = vl_wrap(c, x->dtype, ndim, sh, x->data);
  if (!y) return NULL;
  if (x->dtype == VL_F32) vl_record(c, y, "reshape", reshape_backward, 1, &x);
  return y;
}

/* ---- permute ----------------------------------------------------------- */

/* Output dims with the input stride each one walks, merged where runs are
 * contiguous in the input too. */
typedef struct {
  int nd;
  int64_t shape[VL_MAX_DIMS], stride[VL_MAX_DIMS];
  int64_t inner, rows;
  size_t es;
  const unsigned char *src;
  unsigned char *dst;
  const float *g; /* backward: out grad */
  float *gx;      /* backward: in grad */
} perm_plan;

static void perm_row_offset(const perm_plan *p, int64_t r, int64_t *off) {
  int64_t o = 0;
  for (int i = p->nd - 2; i >= 0; i--) {
    o += (r % p->shape[i]) * p->stride[i];
    r /= p->shape[i];
  }
  *off = o;
}

/* Rows are taken 32 at a time and walked in column blocks of 32, so a
 * strided read (a transpose of the innermost dims) reuses the cache lines it
 * brings in across neighbouring rows. */
enum { TILE = 32 };

static void perm_fwd(void *arg, int64_t r0, int64_t r1, int worker) {
  (void)worker;
  const perm_plan *p = arg;
  int64_t n = p->inner, st = p->stride[p->nd - 1];
  size_t es = p->es;
  int64_t off[TILE];
  for (int64_t r = r0; r < r1; r += TILE) {
    int64_t rn = r1 - r < TILE ? r1 - r : TILE;
    for (int64_t i = 0; i < rn; i++)
      perm_row_offset(p, r + i, &off[i]);
    if (st == 1) {
      for (int64_t i = 0; i < rn; i++)
        memcpy(p->dst + (size_t)((r + i) * n) * es, p->src + (size_t)off[i] * es, (size_t)n * es);
      continue;
    }
    for (int64_t jb = 0; jb < n; jb += TILE) {
      int64_t je = n - jb < TILE ? n : jb + TILE;
      for (int64_t i = 0; i < rn; i++) {
        unsigned char *d = p->dst + (size_t)((r + i) * n) * es;
        const unsigned char *s = p->src + (size_t)off[i] * es;
        if (es == 4) { /* 4-byte elements copied as bits, whatever their type */
          const uint32_t *sf = (const uint32_t *)s;
          uint32_t *df = (uint32_t *)d;
          for (int64_t j = jb; j < je; j++)
            df[j] = sf[j * st];
        } else {
          for (int64_t j = jb; j < je; j++)
            memcpy(d + (size_t)j * es, s + (size_t)(j * st) * es, es);
        }
      }
    }
  }
}

static void perm_bwd(void *arg, int64_t r0, int64_t r1, int worker) {
  (void)worker;
  const perm_plan *p = arg;
  int64_t n = p->inner, st = p->stride[p->nd - 1];
  int64_t off[TILE];
  for (int64_t r = r0; r < r1; r += TILE) {
    int64_t rn = r1 - r < TILE ? r1 - r : TILE;
    for (int64_t i = 0; i < rn; i++)
      perm_row_offset(p, r + i, &off[i]);
    for (int64_t jb = 0; jb < n; jb += TILE) {
      int64_t je = n - jb < TILE ? n : jb + TILE;
      for (int64_t i = 0; i < rn; i++) {
        const float *g = p->g + (r + i) * n;
        float *d = p->gx + off[i];
        for (int64_t j = jb; j < je; j++)
          d[j * st] += g[j];
      }
    }
  }
}

static void make_perm_plan(const vl_tensor *x, const int *perm, perm_plan *p) {
  int64_t in_stride[VL_MAX_DIMS] = {0}, s = 1;
  for (int i = x->ndim - 1; i >= 0; i--) {
    in_stride[i] = s;
    s *= x->shape[i];
  }
  int m = 0;
  for (int i = 0; i < x->ndim; i++) {
    int64_t n = x->shape[perm[i]], st = in_stride[perm[i]];
    if (n == 1) continue;
    if (m > 0 && p->stride[m - 1] == st * n) {
      p->shape[m - 1] *= n;
      p->stride[m - 1] = st;
      continue;
    }
    p->shape[m] = n;
    p->stride[m] = st;
    m++;
  }
  if (m == 0) {
    p->shape[0] = 1;
    p->stride[0] = 1;
    m = 1;
  }
  p->nd = m;
  p->inner = p->shape[m - 1];
  p->rows = 1;
  for (int i = 0; i < m - 1; i++)
    p->rows *= p->shape[i];
}

static void run_perm(perm_plan *p, int64_t numel, vl_range_fn fn) {
  if (numel > PAR_MIN)
    vl_parallel_for(p->rows, 1 + PAR_MIN / (2 * p->inner), fn, p);
  else
    fn(p, 0, p->rows, 0);
}

static void permute_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *x = n->in[0];
  float *gx = vl_grad(c, x);
  if (!gx) return;
  int perm[VL_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++)
    perm[i] = (int)n->i[i];
  perm_plan p = {0};
  make_perm_plan(x, perm, &p);
  p.g = n->out->grad;
  p.gx = gx;
  run_perm(&p, x->numel, perm_bwd);
}

static vl_tensor *permute_impl(vl_ctx *c, vl_tensor *x, const int *perm, const char *op) {
  int seen[VL_MAX_DIMS] = {0};
  for (int i = 0; i < x->ndim; i++) {
    if (perm[i] < 0 || perm[i] >= x->ndim || seen[perm[i]]++) {
      char s1[96];
      vl_error(VL_ERR_INVALID, "%s: not a permutation of the %d dims of %s (entry %d is %d)", op,
               x->ndim, vl_shape_str(x, s1, sizeof s1), i, perm[i]);
      return NULL;
    }
  }
  int64_t shape[VL_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++)
    shape[i] = x->shape[perm[i]];
  vl_tensor *y = vl_new_uninit(c, x->dtype, x->ndim, shape);
  if (!y) return NULL;
  if (y->numel) {
    perm_plan p = {0};
    make_perm_plan(x, perm, &p);
    p.es = vl_dtype_size(x->dtype);
    p.src = x->data;
    p.dst = y->data;
    run_perm(&p, x->numel, perm_fwd);
  }
  if (x->dtype != VL_F32) return y;
  vl_node *n = vl_record(c, y, "permute", permute_backward, 1, &x);
  if (n)
    for (int i = 0; i < x->ndim; i++)
      n->i[i] = perm[i];
  return y;
}

vl_tensor *vl_permute(vl_ctx *c, vl_tensor *x, const int *perm) {
  if (!x) return NULL;
  if (!perm) {
    vl_error(VL_ERR_INVALID, "vl_permute: no permutation given");
    return NULL;
  }
  return permute_impl(c, x, perm, "vl_permute");
}

vl_tensor *vl_transpose(vl_ctx *c, vl_tensor *x, int d0, int d1) {
  if (!x) return NULL;
  if (d0 < 0) d0 += x->ndim;
  if (d1 < 0) d1 += x->ndim;
  if (d0 < 0 || d0 >= x->ndim || d1 < 0 || d1 >= x->ndim) {
    char s1[96];
    vl_error(VL_ERR_INVALID, "vl_transpose: dims %d, %d out of range for %s", d0, d1,
             vl_shape_str(x, s1, sizeof s1));
    return NULL;
  }
  int perm[VL_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++)
    perm[i] = i;
  perm[d0] = d1;
  perm[d1] = d0;
  return permute_impl(c, x, perm, "vl_transpose");
}

/* ---- concat and slice: (outer, axis, inner) blocks -------------------- */

static void split_axis(const vl_tensor *x, int axis, int64_t *outer, int64_t *inner) {
  *outer = *inner = 1;
  for (int i = 0; i < axis; i++)
    *outer *= x->shape[i];
  for (int i = axis + 1; i < x->ndim; i++)
    *inner *= x->shape[i];
}

static void concat_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *y = n->out;
  int axis = (int)n->i[0];
  int64_t outer, inner;
  split_axis(y, axis, &outer, &inner);
  int64_t row = y->shape[axis] * inner, off = 0;
  for (int k = 0; k < n->n_in; k++) {
    vl_tensor *x = n->in[k];
    int64_t w = x->shape[axis] * inner;
    if (x->requires_grad) {
      float *gx = vl_grad(c, x);
      if (!gx) return;
      for (int64_t o = 0; o < outer; o++)
        add_into(gx + o * w, y->grad + o * row + off, w);
    }
    off += w;
  }
}

vl_tensor *vl_concat(vl_ctx *c, int n, vl_tensor *const *xs, int axis) {
  if (n < 1 || !xs) {
    vl_error(VL_ERR_INVALID, "vl_concat: needs at least one tensor");
    return NULL;
  }
  for (int k = 0; k < n; k++)
    if (!xs[k]) return NULL;
  const vl_tensor *x0 = xs[0];
  if (axis < 0) axis += x0->ndim;
  if (axis < 0 || axis >= x0->ndim) {
    vl_error(VL_ERR_INVALID, "vl_concat: axis out of range for rank %d", x0->ndim);
    return NULL;
  }
  int64_t shape[VL_MAX_DIMS];
  for (int i = 0; i < x0->ndim; i++)
    shape[i] = x0->shape[i];
  shape[axis] = 0;
  bool grad = false;
  for (int k = 0; k < n; k++) {
    const vl_tensor *x = xs[k];
    bool ok = x->dtype == x0->dtype && x->ndim == x0->ndim;
    for (int i = 0; ok && i < x0->ndim; i++)
      ok = i == axis || x->shape[i] == x0->shape[i];
    if (!ok) {
      char s1[96], s2[96];
      vl_error(VL_ERR_INVALID,
               "vl_concat: tensor %d (%s %s) does not match tensor 0 (%s %s) off axis %d", k,
               vl_dtype_name(x->dtype), vl_shape_str(x, s1, sizeof s1), vl_dtype_name(x0->dtype),
               vl_shape_str(x0, s2, sizeof s2), axis);
      return NULL;
    }
    shape[axis] += x->shape[axis];
    grad |= x->requires_grad;
  }
  bool record = x0->dtype == VL_F32 && grad && vl_ctx_recording(c);
  if (record && n > VL_NODE_MAX_IN) {
    /* A node holds VL_NODE_MAX_IN inputs (and vl_zero_grads sees only
     * those): concatenate groups first, then the groups. */
    int groups = (n + VL_NODE_MAX_IN - 1) / VL_NODE_MAX_IN;
    vl_tensor **g = vl_ctx_alloc(c, (size_t)groups * sizeof *g);
    if (!g) return NULL;
    for (int k = 0; k < groups; k++) {
      int m = n - k * VL_NODE_MAX_IN < VL_NODE_MAX_IN ? n - k * VL_NODE_MAX_IN : VL_NODE_MAX_IN;
      if (!(g[k] = vl_concat(c, m, xs + k * VL_NODE_MAX_IN, axis))) return NULL;
    }
    return vl_concat(c, groups, g, axis);
  }
  vl_tensor *y = vl_new_uninit(c, x0->dtype, x0->ndim, shape);
  if (!y) return NULL;
  int64_t outer, inner;
  split_axis(y, axis, &outer, &inner);
  size_t es = vl_dtype_size(x0->dtype);
  int64_t row = shape[axis] * inner, off = 0;
  for (int k = 0; k < n; k++) {
    int64_t w = xs[k]->shape[axis] * inner;
    const unsigned char *s = xs[k]->data;
    unsigned char *d = y->data;
    for (int64_t o = 0; o < outer; o++)
      memcpy(d + (size_t)(o * row + off) * es, s + (size_t)(o * w) * es, (size_t)w * es);
    off += w;
  }
  if (!record) return y;
  vl_node *nd = vl_record(c, y, "concat", concat_backward, n, xs);
  if (nd) nd->i[0] = axis;
  return y;
}

static void slice_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *x = n->in[0], *y = n->out;
  float *gx = vl_grad(c, x);
  if (!gx) return;
  int axis = (int)n->i[0];
  int64_t start = n->i[1], outer, inner;
  split_axis(x, axis, &outer, &inner);
  int64_t w = y->shape[axis] * inner, row = x->shape[axis] * inner;
  for (int64_t o = 0; o < outer; o++)
    add_into(gx + o * row + start * inner, y->grad + o * w, w);
}

vl_tensor *vl_slice(vl_ctx *c, vl_tensor *x, int axis, int64_t start, int64_t end) {
  if (!x) return NULL;
  char s1[96];
  if (axis < 0) axis += x->ndim;
  if (axis < 0 || axis >= x->ndim) {
    vl_error(VL_ERR_INVALID, "vl_slice: axis out of range for %s", vl_shape_str(x, s1, sizeof s1));
    return NULL;
  }
  if (start < 0 || end < start || end > x->shape[axis]) {
    vl_error(VL_ERR_INVALID, "vl_slice: range [%lld, %lld) out of bounds for axis %d of %s",
             (long long)start, (long long)end, axis, vl_shape_str(x, s1, sizeof s1));
    return NULL;
  }
  int64_t shape[VL_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++)
    shape[i] = x->shape[i];
  shape[axis] = end - start;
  vl_tensor *y = vl_new_uninit(c, x->dtype, x->ndim, shape);
  if (!y) return NULL;
  int64_t outer, inner;
  split_axis(x, axis, &outer, &inner);
  size_t es = vl_dtype_size(x->dtype);
  int64_t w = shape[axis] * inner, row = x->shape[axis] * inner;
  const unsigned char *s = x->data;
  unsigned char *d = y->data;
  for (int64_t o = 0; o < outer; o++)
    memcpy(d + (size_t)(o * w) * es, s + (size_t)(o * row + start * inner) * es, (size_t)w * es);
  if (x->dtype != VL_F32) return y;
  vl_node *n = vl_record(c, y, "slice", slice_backward, 1, &x);
  if (n) {
    n->i[0] = axis;
    n->i[1] = start;
  }
  return y;
}
