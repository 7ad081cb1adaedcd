/* Key/value cache for autoregressive decoding (batch 1): per layer, keys and
 * values after RoPE, (capacity, kv_heads, head_dim) F32, filled front to
 * back. A decoder step appends its new rows to every layer, then advances
 * len once (vl_kv_advance) after the last layer. */
#ifndef VL_MODELS_KV_CACHE_H
#define VL_MODELS_KV_CACHE_H

#include <stdint.h>

#include "tensor/tensor.h"

typedef struct {
  int n_layers;
  int64_t capacity, n_kv_heads, head_dim;
  int64_t len; /* positions filled (the same in every layer) */
  float **k, **v;
} vl_kv_cache;

/* NULL + vl_error (VL_ERR_INVALID for bad sizes, VL_ERR_NOMEM). */
vl_kv_cache *vl_kv_new(int n_layers, int64_t capacity, int64_t n_kv_heads, int64_t head_dim);
void vl_kv_free(vl_kv_cache *kv);
void vl_kv_clear(vl_kv_cache *kv);
/* Writes k, v (1, T, kv_heads, head_dim) F32 at positions len..len+T-1 of
 * layer l and returns views (1, len+T, kv_heads, head_dim) over the filled
 * part in *k_all / *v_all (headers in c; data stays in the cache).
 * VL_ERR_LIMIT when the cache is full, VL_ERR_INVALID on shape mismatch. */
int vl_kv_append(vl_kv_cache *kv, vl_ctx *c, int l, const vl_tensor *k, const vl_tensor *v,
                 vl_tensor **k_all, vl_tensor **v_all);
/* len += T, after all layers have appended. */
void vl_kv_advance(vl_kv_cache *kv, int64_t T);
/* Drops positions >= len (e.g. to re-run a rejected suffix). */
int vl_kv_truncate(vl_kv_cache *kv, int64_t len);

#endif
