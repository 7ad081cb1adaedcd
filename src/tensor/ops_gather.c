/* Row gathers and scatters: gather_rows, scatter_rows, embedding. Index
 * tensors are I64 or I32 and every index is range-checked before any data
 * moves, so a bad token id is an error, not a stray read. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/half.h"
#include "tensor/ops.h"

static int64_t idx_at(const vl_tensor *t, int64_t i) {
  return t->dtype == VL_I64 ? ((const int64_t *)t->data)[i] : ((const int32_t *)t->data)[i];
}

/* Checks dtype and that every index is in [0, n). */
static int check_idx(const char *op, const char *what, const vl_tensor *idx, int64_t n) {
  if (idx->dtype != VL_I64 && idx->dtype != VL_I32)
    return vl_error(VL_ERR_UNSUPPORTED, "%s: %s must be I64 or I32 (got %s)", op, what,
                    vl_dtype_name(idx->dtype));
  for (int64_t i = 0; i < idx->numel; i++) {
    int64_t v = idx_at(idx, i);
    if (v < 0 || v >= n)
      return vl_error(VL_ERR_INVALID, "%s: %s[%lld] = %lld is outside [0, %lld)", op, what,
                      (long long)i, (long long)v, (long long)n);
  }
  return VL_OK;
}

/* Output shape (idx..., trailing dims of x). */
static int rows_shape(const char *op, const vl_tensor *x, const vl_tensor *idx, int *nd,
                      int64_t *shape) {
  if (x->ndim < 1) return vl_error(VL_ERR_INVALID, "%s: table must have at least one dim", op);
  *nd = idx->ndim + x->ndim - 1;
  if (*nd > VL_MAX_DIMS)
    return vl_error(VL_ERR_INVALID, "%s: result would have %d dims (max %d)", op, *nd, VL_MAX_DIMS);
  for (int i = 0; i < idx->ndim; i++)
    shape[i] = idx->shape[i];
  for (int i = 1; i < x->ndim; i++)
    shape[idx->ndim + i - 1] = x->shape[i];
  return VL_OK;
}

/* d table[idx[i]] += d out[i], serially (indices may repeat). */
static void gather_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *x = n->in[0], *idx = n->in[1];
  float *gx = vl_grad(c, x);
  if (!gx) return;
  int64_t D = x->shape[0] ? x->numel / x->shape[0] : 0;
  const float *g = n->out->grad;
  for (int64_t i = 0; i < idx->numel; i++) {
    float *d = gx + idx_at(idx, i) * D;
    const float *s = g + i * D;
    for (int64_t j = 0; j < D; j++)
      d[j] += s[j];
  }
}

static vl_tensor *gather_impl(vl_ctx *c, vl_tensor *x, vl_tensor *idx, const char *op,
                              const char *what) {
  if (!x || !idx) return NULL;
  if (x->dtype != VL_F32 && x->dtype != VL_BF16 && x->dtype != VL_F16) {
    vl_error(VL_ERR_UNSUPPORTED, "%s: table must be F32, BF16 or F16 (got %s)", op,
             vl_dtype_name(x->dtype));
    return NULL;
  }
  int nd = 0;
  int64_t shape[VL_MAX_DIMS];
  if (rows_shape(op, x, idx, &nd, shape) || check_idx(op, what, idx, x->shape[0])) return NULL;
  vl_tensor *y = vl_new_uninit(c, VL_F32, nd, shape);
  if (!y) return NULL;
  int64_t D = x->shape[0] ? x->numel / x->shape[0] : 0;
  float *yd = vl_f32(y);
  for (int64_t i = 0; i < idx->numel; i++) {
    int64_t r = idx_at(idx, i);
    float *d = yd + i * D;
    if (x->dtype == VL_F32) {
      memcpy(d, vl_f32(x) + r * D, (size_t)D * sizeof(float));
    } else {
      const uint16_t *s = (const uint16_t *)x->data + r * D;
      if (x->dtype == VL_BF16)
        for (int64_t j = 0; j < D; j++)
          d[j] = vl_bf16_to_f32(s[j]);
      else
        for (int64_t j = 0; j < D; j++)
          d[j] = vl_f16_to_f32(s[j]);
    }
  }
  /* Only an F32 table can receive a gradient. */
  if (x->dtype == VL_F32) {
    vl_tensor *in[2] = {x, idx};
    vl_record(c, y, op + 3, gather_backward, 2, in);
  }
  return y;
}

vl_tensor *vl_gather_rows(vl_ctx *c, vl_tensor *x, vl_tensor *idx) {
  return gather_impl(c, x, idx, "vl_gather_rows", "idx");
}

vl_tensor *vl_embedding(vl_ctx *c, vl_tensor *table, vl_tensor *ids) {
  if (table && table->ndim != 2) {
    char s1[96];
    vl_error(VL_ERR_INVALID, "vl_embedding: table must be (V, D), got %s",
             vl_shape_str(table, s1, sizeof s1));
    return NULL;
  }
  return gather_impl(c, table, ids, "vl_embedding", "ids");
}

/* ---- scatter_rows ------------------------------------------------------ */

static void scatter_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *base = n->in[0], *src = n->in[1], *idx = n->in[2];
  int64_t N = base->shape[0], D = N ? base->numel / N : 0;
  const float *g = n->out->grad;
  if (base->requires_grad) {
    float *gb = vl_grad(c, base);
    if (!gb) return;
    const unsigned char *replaced = n->saved;
    for (int64_t r = 0; r < N; r++)
      if (!replaced[r])
        for (int64_t j = 0; j < D; j++)
          gb[r * D + j] += g[r * D + j];
  }
  if (src->requires_grad) {
    float *gs = vl_grad(c, src);
    if (!gs) return;
    for (int64_t i = 0; i < idx->numel; i++) {
      const float *s = g + idx_at(idx, i) * D;
      for (int64_t j = 0; j < D; j++)
        gs[i * D + j] += s[j];
    }
  }
}

vl_tensor *vl_scatter_rows(vl_ctx *c, vl_tensor *base, vl_tensor *src, vl_tensor *idx) {
  if (!base || !src || !idx) return NULL;
  char s1[96], s2[96];
  if (base->dtype != VL_F32 || src->dtype != VL_F32) {
    vl_error(VL_ERR_UNSUPPORTED, "vl_scatter_rows: base and src must be F32 (got %s and %s)",
             vl_dtype_name(base->dtype), vl_dtype_name(src->dtype));
    return NULL;
  }
  if (base->ndim < 1) {
    vl_error(VL_ERR_INVALID, "vl_scatter_rows: base must have at least one dim");
    return NULL;
  }
  int64_t N = base->shape[0], D = N ? base->numel / N : 0;
  if (src->numel != idx->numel * D) {
    vl_error(VL_ERR_INVALID, "vl_scatter_rows: src %s does not hold %lld rows of %lld (base %s)",
             vl_shape_str(src, s1, sizeof s1), (long long)idx->numel, (long long)D,
             vl_shape_str(base, s2, sizeof s2));
    return NULL;
  }
  if (check_idx("vl_scatter_rows", "idx", idx, N)) return NULL;
  /* A row written twice would make the result depend on order: refuse. */
  unsigned char *replaced = vl_ctx_alloc(c, (size_t)N + 1);
  if (!replaced) return NULL;
  for (int64_t i = 0; i < idx->numel; i++) {
    int64_t r = idx_at(idx, i);
    if (replaced[r]) {
      vl_error(VL_ERR_INVALID, "vl_scatter_rows: row %lld is targeted twice", (long long)r);
      return NULL;
    }
    replaced[r] = 1;
  }
  vl_tensor *y = vl_new_uninit(c, VL_F32, base->ndim, base->shape);
  if (!y) return NULL;
  memcpy(y->data, base->data, (size_t)base->numel * sizeof(float));
  for (int64_t i = 0; i < idx->numel; i++)
    memcpy(vl_f32(y) + idx_at(idx, i) * D, vl_f32(src) + i * D, (size_t)D * sizeof(float));
  vl_tensor *in[3] = {base, src, idx};
  vl_node *n = vl_record(c, y, "scatter_rows", scatter_backward, 3, in);
  if (n) n->saved = replaced;
  return y;
}
