/* Key/value cache for autoregressive decoding (batch 1): per layer, keys and
 * values after RoPE for up to capacity positions, filled front to back. A
 * decoder step appends its new rows to every layer, then advances len once
 * (vl_kv_advance) after the last layer.
 *
 * Storage is F32 (exact) or F16 (IEEE half, llama.cpp's default): half the
 * bytes, which decode reads for every token at every layer. Keys and values
 * are rounded to F16 when appended and widened back to F32 for the
 * arithmetic (vl_kv_attend for a decode step, widened views otherwise).
 *
 * Layouts. F32: (capacity, kv_heads, head_dim), the tensor layout, so views
 * are the cache itself. F16, laid out for the decode kernel's streams: each
 * kv head's rows contiguous; keys in blocks of VL_KV_BLOCK positions stored
 * transposed, (kv_heads, capacity / VL_KV_BLOCK, head_dim, VL_KV_BLOCK), so
 * one query's scores for a block are head_dim multiply-adds of whole
 * vectors; values (kv_heads, capacity, head_dim). */
#ifndef VL_MODELS_KV_CACHE_H
#define VL_MODELS_KV_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor/tensor.h"

typedef struct {
  int n_layers;
  int64_t capacity, n_kv_heads, head_dim;
  int64_t len;    /* positions filled (the same in every layer) */
  vl_dtype dtype; /* VL_F32 or VL_F16 */
  void **k, **v;  /* per layer: float * (F32) or uint16_t * (F16), see above */
} vl_kv_cache;

#define VL_KV_BLOCK 16 /* positions per transposed key block (F16) */

/* NULL + vl_error (VL_ERR_INVALID for bad sizes or a dtype other than
 * F32/F16, VL_ERR_NOMEM). vl_kv_new: F32. */
vl_kv_cache *vl_kv_new_typed(int n_layers, int64_t capacity, int64_t n_kv_heads, int64_t head_dim,
                             vl_dtype dtype);
vl_kv_cache *vl_kv_new(int n_layers, int64_t capacity, int64_t n_kv_heads, int64_t head_dim);
void vl_kv_free(vl_kv_cache *kv);
void vl_kv_clear(vl_kv_cache *kv);
/* Bytes of key/value storage the cache holds (all layers, full capacity). */
size_t vl_kv_bytes(const vl_kv_cache *kv);
/* Writes k, v (1, T, kv_heads, head_dim) F32 at positions len..len+T-1 of
 * layer l and, when k_all / v_all are not NULL, returns F32 views (1, len+T,
 * kv_heads, head_dim) over the filled part: headers in c over the cache
 * itself (F32), or widened copies in c (F16). VL_ERR_LIMIT when the cache is
 * full, VL_ERR_INVALID on shape mismatch. */
int vl_kv_append(vl_kv_cache *kv, vl_ctx *c, int l, const vl_tensor *k, const vl_tensor *v,
                 vl_tensor **k_all, vl_tensor **v_all);
/* len += T, after all layers have appended. */
void vl_kv_advance(vl_kv_cache *kv, int64_t T);
/* Drops positions >= len (e.g. to re-run a rejected suffix). */
int vl_kv_truncate(vl_kv_cache *kv, int64_t len);

/* ---- decode attention over the cache (kv_attend.c) --------------------- */

/* Attention of one query position against the first n positions of layer
 * l of an F16 cache (n <= capacity; the caller appended the query's own
 * key/value, so n = len + 1 before vl_kv_advance): for each of n_heads
 * query heads (a multiple of the cache's kv heads, grouped as Qwen's GQA:
 * head h reads kv head h / (n_heads / n_kv_heads)), softmax(scale * q_h .
 * K^T) . V, all in F32 (rows widened as read). q and out: n_heads *
 * head_dim floats (out may not alias q). scratch: vl_kv_attend_scratch(n,
 * n_heads) floats. Split by kv head over the pool from ~1e7 flops (on the
 * calling thread below); the same for any thread count. */
int vl_kv_attend(const vl_kv_cache *kv, int l, int64_t n, const float *q, int64_t n_heads,
                 float scale, float *scratch, float *out);
int64_t vl_kv_attend_scratch(int64_t n, int64_t n_heads);

/* F32 <-> F16 rows (round to nearest even; Inf and NaN kept, NaN quiet,
 * subnormal halves exact), F16C when the CPU has it, else base/half.h. */
void vl_kv_f32_to_f16(const float *x, uint16_t *y, int64_t n);
void vl_kv_f16_to_f32(const uint16_t *x, float *y, int64_t n);

typedef enum { VL_KV_AUTO = 0, VL_KV_SCALAR, VL_KV_AVX2, VL_KV_AVX512 } vl_kv_kernel;
/* Tests and benchmarks: pick the conversion / attention kernels (AUTO: the
 * best this CPU has). False when the CPU cannot run k (nothing changes). */
bool vl_kv_set_kernel(vl_kv_kernel k);

#endif
