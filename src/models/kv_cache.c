#include "models/kv_cache.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"

vl_kv_cache *vl_kv_new_typed(int n_layers, int64_t capacity, int64_t n_kv_heads, int64_t head_dim,
                             vl_dtype dtype) {
  if (n_layers <= 0 || capacity <= 0 || n_kv_heads <= 0 || head_dim <= 0) {
    vl_error(VL_ERR_INVALID, "kv cache: bad sizes (layers %d, capacity %lld, heads %lld, dim %lld)",
             n_layers, (long long)capacity, (long long)n_kv_heads, (long long)head_dim);
    return NULL;
  }
  if (dtype != VL_F32 && dtype != VL_F16) {
    vl_error(VL_ERR_INVALID, "kv cache: keys/values are stored as F32 or F16, not %s",
             vl_dtype_name(dtype));
    return NULL;
  }
  if (capacity > ((int64_t)1 << 40) / (n_kv_heads * head_dim * n_layers)) {
    vl_error(VL_ERR_LIMIT, "kv cache: %lld positions is too many", (long long)capacity);
    return NULL;
  }
  vl_kv_cache *kv = calloc(1, sizeof *kv);
  if (!kv) goto nomem;
  kv->n_layers = n_layers;
  kv->capacity = capacity;
  kv->n_kv_heads = n_kv_heads;
  kv->head_dim = head_dim;
  kv->dtype = dtype;
  kv->k = calloc((size_t)n_layers, sizeof *kv->k);
  kv->v = calloc((size_t)n_layers, sizeof *kv->v);
  if (!kv->k || !kv->v) goto nomem;
  size_t bytes = (size_t)(capacity * n_kv_heads * head_dim) * vl_dtype_size(dtype);
  for (int l = 0; l < n_layers; l++) {
    kv->k[l] = malloc(bytes);
    kv->v[l] = malloc(bytes);
    if (!kv->k[l] || !kv->v[l]) goto nomem;
  }
  return kv;
nomem:
  vl_kv_free(kv);
  vl_error(VL_ERR_NOMEM, "kv cache: out of memory for %lld positions", (long long)capacity);
  return NULL;
}

vl_kv_cache *vl_kv_new(int n_layers, int64_t capacity, int64_t n_kv_heads, int64_t head_dim) {
  return vl_kv_new_typed(n_layers, capacity, n_kv_heads, head_dim, VL_F32);
}

void vl_kv_free(vl_kv_cache *kv) {
  if (!kv) return;
  for (int l = 0; l < kv->n_layers; l++) {
    if (kv->k) free(kv->k[l]);
    if (kv->v) free(kv->v[l]);
  }
  free(kv->k);
  free(kv->v);
  free(kv);
}

void vl_kv_clear(vl_kv_cache *kv) { kv->len = 0; }

size_t vl_kv_bytes(const vl_kv_cache *kv) {
  return 2 * (size_t)kv->n_layers * (size_t)(kv->capacity * kv->n_kv_heads * kv->head_dim) *
         vl_dtype_size(kv->dtype);
}

/* F32 view (1, n, kv_heads, head_dim) of the first n positions of one
 * layer's keys or values: the cache itself, or a widened copy in c. */
static vl_tensor *view(const vl_kv_cache *kv, vl_ctx *c, void *data, int64_t n) {
  int64_t shape[4] = {1, n, kv->n_kv_heads, kv->head_dim};
  if (kv->dtype == VL_F32) return vl_wrap(c, VL_F32, 4, shape, data);
  vl_tensor *t = vl_new_uninit(c, VL_F32, 4, shape);
  if (t) vl_kv_f16_to_f32(data, vl_f32(t), t->numel);
  return t;
}

int vl_kv_append(vl_kv_cache *kv, vl_ctx *c, int l, const vl_tensor *k, const vl_tensor *v,
                 vl_tensor **k_all, vl_tensor **v_all) {
  if (l < 0 || l >= kv->n_layers)
    return vl_error(VL_ERR_INVALID, "kv cache: layer %d out of range", l);
  if (!k || !v || k->dtype != VL_F32 || v->dtype != VL_F32 || k->ndim != 4 ||
      !vl_same_shape(k, v) || k->shape[0] != 1 || k->shape[2] != kv->n_kv_heads ||
      k->shape[3] != kv->head_dim) {
    char buf[64];
    return vl_error(VL_ERR_INVALID, "kv cache: keys/values must be F32 (1, T, %lld, %lld), got %s",
                    (long long)kv->n_kv_heads, (long long)kv->head_dim,
                    k ? vl_shape_str(k, buf, sizeof buf) : "NULL");
  }
  int64_t T = k->shape[1];
  if (kv->len + T > kv->capacity)
    return vl_error(VL_ERR_LIMIT, "kv cache: %lld + %lld positions exceed its capacity %lld",
                    (long long)kv->len, (long long)T, (long long)kv->capacity);
  const size_t row = (size_t)(kv->n_kv_heads * kv->head_dim), at = (size_t)kv->len * row;
  if (kv->dtype == VL_F16) {
    vl_kv_f32_to_f16(k->data, (uint16_t *)kv->k[l] + at, (int64_t)((size_t)T * row));
    vl_kv_f32_to_f16(v->data, (uint16_t *)kv->v[l] + at, (int64_t)((size_t)T * row));
  } else {
    memcpy((float *)kv->k[l] + at, k->data, (size_t)T * row * sizeof(float));
    memcpy((float *)kv->v[l] + at, v->data, (size_t)T * row * sizeof(float));
  }
  if (!k_all || !v_all) return VL_OK;
  *k_all = view(kv, c, kv->k[l], kv->len + T);
  *v_all = view(kv, c, kv->v[l], kv->len + T);
  return (*k_all && *v_all) ? VL_OK : vl_last_error_code();
}

void vl_kv_advance(vl_kv_cache *kv, int64_t T) { kv->len += T; }

int vl_kv_truncate(vl_kv_cache *kv, int64_t len) {
  if (len < 0 || len > kv->len)
    return vl_error(VL_ERR_INVALID, "kv cache: cannot truncate %lld positions to %lld",
                    (long long)kv->len, (long long)len);
  kv->len = len;
  return VL_OK;
}
