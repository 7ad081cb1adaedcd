/* Qwen2 / Qwen3 from a llama.cpp GGUF file.
 *
 * llama.cpp's convert_hf_to_gguf.py writes these architectures with the
 * Hub weights unchanged apart from names (no q/k row permutation: both use
 * NeoX-style RoPE, as transformers does), so every tensor maps one-to-one:
 *   token_embd.weight -> embed_tokens, output_norm.weight -> norm,
 *   output.weight -> lm_head (absent when tied),
 *   blk.N.attn_norm / attn_q / attn_k / attn_v / attn_output /
 *   attn_q_norm / attn_k_norm / ffn_norm / ffn_gate / ffn_up / ffn_down.
 * ggml lists dims fastest first, so a (out, in) matrix has dims {in, out}.
 * Hyper-parameters come from the "<arch>.*" keys, stop ids from
 * tokenizer.ggml.*. Matrices are used in place from the mapping (F32, F16,
 * BF16, Q8_0); 1-D tensors are widened to F32. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "models/qwen_text.h"
#include "tensor/quant.h"

typedef struct {
  vl_gguf *g;
  const char *path;
  vl_ctx *ctx;
} gg_src;

static int get_size(const vl_gguf *g, const char *path, const char *arch, const char *key,
                    int64_t max, int64_t def, int64_t *out) {
  char k[128];
  snprintf(k, sizeof k, "%s.%s", arch, key);
  if (vl_gguf_find_key(g, k) < 0) {
    if (def > 0) return *out = def, VL_OK;
    return vl_error(VL_ERR_FORMAT, "%s: metadata key '%s' is missing", path, k);
  }
  int rc = vl_gguf_get_i64(g, k, out);
  if (rc) return rc;
  if (*out <= 0 || *out > max)
    return vl_error(VL_ERR_FORMAT, "%s: '%s' = %lld is outside [1, %lld]", path, k,
                    (long long)*out, (long long)max);
  return VL_OK;
}

static int get_float(const vl_gguf *g, const char *arch, const char *key, double *out) {
  char k[128];
  snprintf(k, sizeof k, "%s.%s", arch, key);
  if (vl_gguf_find_key(g, k) < 0) return VL_OK; /* keep the default */
  return vl_gguf_get_f64(g, k, out);
}

static vl_dtype dtype_of(uint32_t ggml) {
  switch (ggml) {
  case VL_GGML_F32: return VL_F32;
  case VL_GGML_F16: return VL_F16;
  case VL_GGML_BF16: return VL_BF16;
  case VL_GGML_Q8_0: return VL_Q8_0;
  default: return (vl_dtype)-1;
  }
}

/* Tensor `name` with torch-order shape (d0[, d1]); NULL + error, or NULL
 * without one when optional and absent. */
static vl_tensor *gg_weight(gg_src *s, bool optional, int ndim, int64_t d0, int64_t d1,
                            const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static vl_tensor *gg_weight(gg_src *s, bool optional, int ndim, int64_t d0, int64_t d1,
                            const char *fmt, ...) {
  char name[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  const vl_gguf_tensor *t = vl_gguf_find_tensor(s->g, name);
  if (!t) {
    if (!optional) vl_error(VL_ERR_NOTFOUND, "%s: tensor '%s' is missing", s->path, name);
    return NULL;
  }
  int64_t shape[2] = {d0, d1};
  /* ggml order is reversed; trailing 1-dims may or may not be listed */
  bool same = t->n_dims >= (uint32_t)ndim;
  for (uint32_t i = 0; same && i < t->n_dims; i++)
    same = t->dims[i] == (i < (uint32_t)ndim ? shape[ndim - 1 - (int)i] : 1);
  if (!same) {
    vl_error(VL_ERR_FORMAT,
             "%s: tensor '%s': expected ggml dims {%lld%s%lld}, found {%lld, %lld} (%u dims)",
             s->path, name, (long long)shape[ndim - 1], ndim > 1 ? ", " : "",
             ndim > 1 ? (long long)shape[0] : 0LL, (long long)t->dims[0],
             t->n_dims > 1 ? (long long)t->dims[1] : 1LL, t->n_dims);
    return NULL;
  }
  vl_dtype dt = dtype_of(t->type);
  if ((int)dt < 0 || (dt == VL_Q8_0 && shape[ndim - 1] % VL_Q8_0_BLOCK)) {
    vl_error(VL_ERR_UNSUPPORTED, "%s: tensor '%s': type %s is not supported (F32, F16, BF16, Q8_0)",
             s->path, name, vl_ggml_type_name(t->type));
    return NULL;
  }
  if (t->nbytes != vl_dtype_bytes(dt, ndim == 2 ? d0 * d1 : d0)) {
    vl_error(VL_ERR_FORMAT, "%s: tensor '%s': %llu bytes do not match its shape and type", s->path,
             name, (unsigned long long)t->nbytes);
    return NULL;
  }
  vl_tensor *w;
  if (ndim == 1 || (dt != VL_Q8_0 && (uintptr_t)t->data % vl_dtype_size(dt))) {
    /* vectors are F32 for the ops; misaligned 16/32-bit data is copied first */
    vl_tensor tmp = {.dtype = dt, .ndim = ndim, .numel = ndim == 2 ? d0 * d1 : d0};
    memcpy(tmp.shape, shape, sizeof shape);
    void *al = vl_ctx_alloc(s->ctx, t->nbytes);
    if (!al) return NULL;
    memcpy(al, t->data, t->nbytes);
    tmp.data = al;
    w = ndim == 1 && dt != VL_F32 ? vl_clone_f32(s->ctx, &tmp)
                                  : vl_wrap(s->ctx, dt, ndim, shape, al);
  } else {
    w = vl_wrap(s->ctx, dt, ndim, shape, (void *)t->data);
  }
  if (w) w->name = t->name;
  return w;
}

static int read_config(const vl_gguf *g, const char *path, vl_qwen_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  const char *a;
  size_t al;
  int rc = vl_gguf_get_str(g, "general.architecture", &a, &al);
  if (rc) return rc;
  char arch[16];
  if (al == 5 && !memcmp(a, "qwen2", 5))
    cfg->kind = VL_QWEN2;
  else if (al == 5 && !memcmp(a, "qwen3", 5))
    cfg->kind = VL_QWEN3;
  else
    return vl_error(VL_ERR_UNSUPPORTED,
                    "%s: general.architecture '%.*s' is not a Qwen2/Qwen3 text decoder", path,
                    (int)(al > 32 ? 32 : al), a);
  memcpy(arch, a, 5);
  arch[5] = 0;
  if ((rc = get_size(g, path, arch, "embedding_length", 1 << 16, 0, &cfg->hidden)) ||
      (rc = get_size(g, path, arch, "feed_forward_length", 1 << 20, 0, &cfg->inter)) ||
      (rc = get_size(g, path, arch, "block_count", 1024, 0, &cfg->n_layers)) ||
      (rc = get_size(g, path, arch, "attention.head_count", 1024, 0, &cfg->n_heads)) ||
      (rc = get_size(g, path, arch, "attention.head_count_kv", 1024, cfg->n_heads,
                     &cfg->n_kv_heads)) ||
      (rc = get_size(g, path, arch, "context_length", 1 << 24, 32768, &cfg->max_pos)))
    return rc;
  if (cfg->n_heads % cfg->n_kv_heads)
    return vl_error(VL_ERR_FORMAT, "%s: head_count %lld is not a multiple of head_count_kv %lld",
                    path, (long long)cfg->n_heads, (long long)cfg->n_kv_heads);
  int64_t def_hd = cfg->hidden % cfg->n_heads ? 0 : cfg->hidden / cfg->n_heads;
  if ((rc = get_size(g, path, arch, "attention.key_length", 4096, def_hd, &cfg->head_dim)))
    return rc;
  int64_t vlen = cfg->head_dim;
  if ((rc = get_size(g, path, arch, "attention.value_length", 4096, cfg->head_dim, &vlen)))
    return rc;
  if (vlen != cfg->head_dim || cfg->head_dim % 2)
    return vl_error(VL_ERR_UNSUPPORTED, "%s: key_length %lld / value_length %lld: need equal, even",
                    path, (long long)cfg->head_dim, (long long)vlen);
  double theta = 10000.0, eps = 1e-6;
  if ((rc = get_float(g, arch, "rope.freq_base", &theta)) ||
      (rc = get_float(g, arch, "attention.layer_norm_rms_epsilon", &eps)))
    return rc;
  if (!(theta > 1.0) || !(eps > 0.0) || eps > 1.0)
    return vl_error(VL_ERR_FORMAT, "%s: rope.freq_base %g / rms epsilon %g out of range", path,
                    theta, eps);
  cfg->rope_theta = (float)theta;
  cfg->rms_eps = (float)eps;
  char k[128];
  snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
  const char *st;
  size_t sl;
  if (vl_gguf_find_key(g, k) >= 0 && !vl_gguf_get_str(g, k, &st, &sl) &&
      !(sl == 4 && !memcmp(st, "none", 4)))
    return vl_error(VL_ERR_UNSUPPORTED, "%s: rope scaling '%.*s' is not supported", path,
                    (int)(sl > 32 ? 32 : sl), st);
  const vl_gguf_tensor *emb = vl_gguf_find_tensor(g, "token_embd.weight");
  if (!emb || emb->n_dims != 2)
    return vl_error(VL_ERR_FORMAT, "%s: tensor 'token_embd.weight' missing or not 2-D", path);
  cfg->vocab = emb->dims[1];
  cfg->qk_norm = cfg->kind == VL_QWEN3;
  cfg->qkv_bias = cfg->kind == VL_QWEN2 || vl_gguf_find_tensor(g, "blk.0.attn_q.bias");
  cfg->o_bias = cfg->kind == VL_QWEN3 && vl_gguf_find_tensor(g, "blk.0.attn_output.bias");
  cfg->tied = !vl_gguf_find_tensor(g, "output.weight");
  int64_t v;
  cfg->bos = -1;
  if (vl_gguf_find_key(g, "tokenizer.ggml.bos_token_id") >= 0 &&
      !vl_gguf_get_i64(g, "tokenizer.ggml.bos_token_id", &v) && v >= 0 && v < cfg->vocab)
    cfg->bos = (int32_t)v;
  static const char *const stops[] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"};
  for (int i = 0; i < 2; i++)
    if (vl_gguf_find_key(g, stops[i]) >= 0 && !vl_gguf_get_i64(g, stops[i], &v) && v >= 0 &&
        v < cfg->vocab && !vl_qwen_is_eos(cfg, (int32_t)v))
      cfg->eos[cfg->n_eos++] = (int32_t)v;
  vl_clear_error();
  return VL_OK;
}

vl_qwen_text *vl_qwen_text_load_gguf(const char *path) {
  vl_gguf *g = vl_gguf_open(path);
  if (!g) return NULL;
  vl_qwen_text *m = calloc(1, sizeof *m);
  if (!m) {
    vl_gguf_close(g);
    vl_error(VL_ERR_NOMEM, "%s: out of memory", path);
    return NULL;
  }
  m->gguf = g;
  if (read_config(g, path, &m->cfg)) goto fail;
  const vl_qwen_config *cfg = &m->cfg;
  m->wctx = vl_ctx_new();
  m->layers = calloc((size_t)cfg->n_layers, sizeof *m->layers);
  if (!m->wctx || !m->layers) {
    vl_error(VL_ERR_NOMEM, "%s: out of memory", path);
    goto fail;
  }
  gg_src s = {g, path, m->wctx};
  const int64_t C = cfg->hidden, F = cfg->inter, D = cfg->head_dim;
  const int64_t QD = cfg->n_heads * D, KD = cfg->n_kv_heads * D;
  if (!(m->embed = gg_weight(&s, false, 2, cfg->vocab, C, "token_embd.weight")) ||
      !(m->norm = gg_weight(&s, false, 1, C, 0, "output_norm.weight")))
    goto fail;
  m->lm_head = cfg->tied ? m->embed : gg_weight(&s, false, 2, cfg->vocab, C, "output.weight");
  if (!m->lm_head) goto fail;
  for (int l = 0; l < (int)cfg->n_layers; l++) {
    vl_qwen_layer *L = &m->layers[l];
#define W2(dst, d0, d1, name)                                                                      \
  if (!(dst = gg_weight(&s, false, 2, d0, d1, "blk.%d." name, l))) goto fail
#define W1(dst, d0, name)                                                                          \
  if (!(dst = gg_weight(&s, false, 1, d0, 0, "blk.%d." name, l))) goto fail
    W1(L->ln1, C, "attn_norm.weight");
    W1(L->ln2, C, "ffn_norm.weight");
    W2(L->wq, QD, C, "attn_q.weight");
    W2(L->wk, KD, C, "attn_k.weight");
    W2(L->wv, KD, C, "attn_v.weight");
    W2(L->wo, C, QD, "attn_output.weight");
    W2(L->gate, F, C, "ffn_gate.weight");
    W2(L->up, F, C, "ffn_up.weight");
    W2(L->down, C, F, "ffn_down.weight");
    if (cfg->qkv_bias) {
      W1(L->bq, QD, "attn_q.bias");
      W1(L->bk, KD, "attn_k.bias");
      W1(L->bv, KD, "attn_v.bias");
    }
    if (cfg->o_bias) W1(L->bo, C, "attn_output.bias");
    if (cfg->qk_norm) {
      W1(L->q_norm, D, "attn_q_norm.weight");
      W1(L->k_norm, D, "attn_k_norm.weight");
    }
#undef W1
#undef W2
  }
  vl_log("qwen: %s: %s, %lld layers, weights %s", path, cfg->kind == VL_QWEN3 ? "qwen3" : "qwen2",
         (long long)cfg->n_layers, vl_dtype_name(m->layers[0].wq->dtype));
  return m;
fail:
  vl_qwen_text_free(m);
  return NULL;
}
