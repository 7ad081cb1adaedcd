#include "models/kv_cache.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"

/* Positions the F16 key storage holds: capacity rounded up to whole blocks. */
static int64_t key_positions(const vl_kv_cache *kv) {
  return (kv->capacity + VL_KV_BLOCK - 1) / VL_KV_BLOCK * VL_KV_BLOCK;
}

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
  const size_t row = (size_t)(n_kv_heads * head_dim) * vl_dtype_size(dtype);
  for (int l = 0; l < n_layers; l++) {
    if (dtype == VL_F32) {
      kv->k[l] = malloc((size_t)capacity * row);
      kv->v[l] = malloc((size_t)capacity * row);
    } else { /* zeroed: the unfilled lanes of a key block are read (and ignored) */
      kv->k[l] = calloc((size_t)key_positions(kv), row);
      kv->v[l] = calloc((size_t)capacity, row);
    }
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
  const int64_t key_pos = kv->dtype == VL_F16 ? key_positions(kv) : kv->capacity;
  return (size_t)kv->n_layers * (size_t)((key_pos + kv->capacity) * kv->n_kv_heads * kv->head_dim) *
         vl_dtype_size(kv->dtype);
}

/* F16 layout (kv_cache.h): key and value (j, h, 0) of layer l; a key's
 * elements are VL_KV_BLOCK apart. */
static uint16_t *key_at(const vl_kv_cache *kv, int l, int64_t j, int64_t h) {
  const int64_t D = kv->head_dim, nb = key_positions(kv) / VL_KV_BLOCK;
  return (uint16_t *)kv->k[l] + (h * nb + j / VL_KV_BLOCK) * D * VL_KV_BLOCK + j % VL_KV_BLOCK;
}

static uint16_t *value_at(const vl_kv_cache *kv, int l, int64_t j, int64_t h) {
  return (uint16_t *)kv->v[l] + (h * kv->capacity + j) * kv->head_dim;
}

/* Rows (T, kv_heads, head_dim) F32 into positions len.. of layer l (F16). */
static void put_f16(vl_kv_cache *kv, int l, const float *k, const float *v, int64_t T) {
  const int64_t H = kv->n_kv_heads, D = kv->head_dim;
  uint16_t tmp[4096]; /* head_dim <= 4096 (the config parser's limit) */
  for (int64_t t = 0; t < T; t++)
    for (int64_t h = 0; h < H; h++) {
      const int64_t j = kv->len + t, at = (t * H + h) * D;
      vl_kv_f32_to_f16(v + at, value_at(kv, l, j, h), D);
      vl_kv_f32_to_f16(k + at, tmp, D);
      uint16_t *kb = key_at(kv, l, j, h);
      for (int64_t d = 0; d < D; d++)
        kb[d * VL_KV_BLOCK] = tmp[d];
    }
}

/* F32 (1, n, kv_heads, head_dim) copies of the first n positions of layer
 * l's F16 keys and values, in c. */
static int widen_f16(const vl_kv_cache *kv, vl_ctx *c, int l, int64_t n, vl_tensor **k,
                     vl_tensor **v) {
  const int64_t H = kv->n_kv_heads, D = kv->head_dim;
  int64_t shape[4] = {1, n, H, D};
  *k = vl_new_uninit(c, VL_F32, 4, shape);
  *v = vl_new_uninit(c, VL_F32, 4, shape);
  float *blk = vl_ctx_alloc_uninit(c, (size_t)(D * VL_KV_BLOCK) * sizeof *blk);
  if (!*k || !*v || !blk) return vl_last_error_code();
  float *kd = vl_f32(*k), *vd = vl_f32(*v);
  for (int64_t h = 0; h < H; h++)
    for (int64_t j0 = 0; j0 < n; j0 += VL_KV_BLOCK) {
      vl_kv_f16_to_f32(key_at(kv, l, j0, h), blk, D * VL_KV_BLOCK);
      for (int64_t i = 0; i < VL_KV_BLOCK && j0 + i < n; i++) {
        float *dst = kd + ((j0 + i) * H + h) * D;
        for (int64_t d = 0; d < D; d++)
          dst[d] = blk[d * VL_KV_BLOCK + i];
      }
    }
  for (int64_t j = 0; j < n; j++)
    for (int64_t h = 0; h < H; h++)
      vl_kv_f16_to_f32(value_at(kv, l, j, h), vd + (j * H + h) * D, D);
  return VL_OK;
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
  if (kv->dtype == VL_F16) {
    put_f16(kv, l, vl_f32(k), vl_f32(v), T);
    return k_all && v_all ? widen_f16(kv, c, l, kv->len + T, k_all, v_all) : VL_OK;
  }
  const size_t row = (size_t)(kv->n_kv_heads * kv->head_dim), at = (size_t)kv->len * row;
  memcpy((float *)kv->k[l] + at, k->data, (size_t)T * row * sizeof(float));
  memcpy((float *)kv->v[l] + at, v->data, (size_t)T * row * sizeof(float));
  if (!k_all || !v_all) return VL_OK;
  int64_t shape[4] = {1, kv->len + T, kv->n_kv_heads, kv->head_dim};
  *k_all = vl_wrap(c, VL_F32, 4, shape, kv->k[l]);
  *v_all = vl_wrap(c, VL_F32, 4, shape, kv->v[l]);
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
