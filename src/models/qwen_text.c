#include "models/qwen_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "base/threads.h"
#include "io/json.h"
#include "tensor/dot_rounded.h"
#include "tensor/gemm_bf16.h"
#include "tensor/ops.h"
#include "tensor/quant.h"

/* ---- config ------------------------------------------------------------ */

static int kind_of(const char *type, vl_qwen_kind *kind) {
  static const char *const q2[] = {"qwen2", "qwen2_vl", "qwen2_vl_text", "qwen2_5_vl",
                                   "qwen2_5_vl_text"};
  static const char *const q3[] = {"qwen3", "qwen3_vl", "qwen3_vl_text"};
  for (size_t i = 0; i < sizeof q2 / sizeof *q2; i++)
    if (!strcmp(type, q2[i])) return *kind = VL_QWEN2, 1;
  for (size_t i = 0; i < sizeof q3 / sizeof *q3; i++)
    if (!strcmp(type, q3[i])) return *kind = VL_QWEN3, 1;
  return 0;
}

static int need_size(const cJSON *j, const char *key, const char *what, int64_t max, int64_t *out) {
  int rc = vl_json_need_int(j, key, what, out);
  if (rc) return rc;
  if (*out <= 0 || *out > max)
    return vl_error(VL_ERR_FORMAT, "%s: key '%s': %lld is outside [1, %lld]", what, key,
                    (long long)*out, (long long)max);
  return VL_OK;
}

/* eos_token_id: an int or a list of ints; adds to cfg's list (no repeats). */
static int add_eos(const cJSON *item, const char *what, vl_qwen_config *cfg) {
  if (!item || cJSON_IsNull(item)) return VL_OK;
  const cJSON *one = cJSON_IsArray(item) ? item->child : item;
  for (; one; one = cJSON_IsArray(item) ? one->next : NULL) {
    if (!cJSON_IsNumber(one) || one->valuedouble < 0 || one->valuedouble > INT32_MAX ||
        one->valuedouble != floor(one->valuedouble))
      return vl_error(VL_ERR_FORMAT,
                      "%s: key 'eos_token_id': expected a token id or a list of them", what);
    int32_t id = (int32_t)one->valuedouble;
    bool seen = false;
    for (int i = 0; i < cfg->n_eos; i++)
      seen |= cfg->eos[i] == id;
    if (!seen && cfg->n_eos < VL_QWEN_MAX_EOS) cfg->eos[cfg->n_eos++] = id;
  }
  return VL_OK;
}

int vl_qwen_config_parse(const cJSON *j, const char *what, vl_qwen_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  if (!cJSON_IsObject(j)) return vl_error(VL_ERR_FORMAT, "%s: expected a JSON object", what);
  const char *type = vl_json_str(j, "model_type", NULL);
  if (!type) return vl_error(VL_ERR_FORMAT, "%s: key 'model_type' is missing", what);
  if (!kind_of(type, &cfg->kind))
    return vl_error(VL_ERR_UNSUPPORTED,
                    "%s: model_type '%s' is not a Qwen2/Qwen3 text decoder (expected 'qwen2' "
                    "or 'qwen3')",
                    what, type);
  int rc;
  if ((rc = need_size(j, "vocab_size", what, 1 << 24, &cfg->vocab)) ||
      (rc = need_size(j, "hidden_size", what, 1 << 16, &cfg->hidden)) ||
      (rc = need_size(j, "intermediate_size", what, 1 << 20, &cfg->inter)) ||
      (rc = need_size(j, "num_hidden_layers", what, 1024, &cfg->n_layers)) ||
      (rc = need_size(j, "num_attention_heads", what, 1024, &cfg->n_heads)))
    return rc;
  cfg->n_kv_heads = cfg->n_heads;
  if (vl_json_get(j, "num_key_value_heads") &&
      !cJSON_IsNull(vl_json_get(j, "num_key_value_heads")) &&
      (rc = need_size(j, "num_key_value_heads", what, 1024, &cfg->n_kv_heads)))
    return rc;
  if (cfg->n_heads % cfg->n_kv_heads)
    return vl_error(VL_ERR_FORMAT,
                    "%s: num_attention_heads %lld is not a multiple of num_key_value_heads %lld",
                    what, (long long)cfg->n_heads, (long long)cfg->n_kv_heads);
  const cJSON *hd = vl_json_get(j, "head_dim");
  if (hd && !cJSON_IsNull(hd)) {
    if ((rc = need_size(j, "head_dim", what, 4096, &cfg->head_dim))) return rc;
  } else {
    if (cfg->hidden % cfg->n_heads)
      return vl_error(VL_ERR_FORMAT,
                      "%s: hidden_size %lld is not a multiple of num_attention_heads %lld", what,
                      (long long)cfg->hidden, (long long)cfg->n_heads);
    cfg->head_dim = cfg->hidden / cfg->n_heads;
  }
  if (cfg->head_dim % 2)
    return vl_error(VL_ERR_FORMAT, "%s: head_dim %lld must be even for RoPE", what,
                    (long long)cfg->head_dim);
  cfg->max_pos = vl_json_int(j, "max_position_embeddings", 32768);
  double theta = 10000.0, eps = 1e-6;
  const char *tkey = vl_json_get(j, "rope_theta") ? "rope_theta" : "rope_parameters.rope_theta";
  if (vl_json_get(j, tkey) && !cJSON_IsNull(vl_json_get(j, tkey)) &&
      (rc = vl_json_need_float(j, tkey, what, &theta)))
    return rc;
  if (vl_json_get(j, "rms_norm_eps") && !cJSON_IsNull(vl_json_get(j, "rms_norm_eps")) &&
      (rc = vl_json_need_float(j, "rms_norm_eps", what, &eps)))
    return rc;
  if (!(theta > 1.0) || !isfinite(theta))
    return vl_error(VL_ERR_FORMAT, "%s: rope_theta %g must be a number > 1", what, theta);
  if (!(eps > 0.0) || eps > 1.0)
    return vl_error(VL_ERR_FORMAT, "%s: rms_norm_eps %g must be in (0, 1]", what, eps);
  cfg->rope_theta = (float)theta;
  cfg->rms_eps = (float)eps;
  /* Scaled RoPE variants change the angles; M-RoPE equals plain RoPE for
   * text-only positions (all three axes the same). */
  const char *rs =
      vl_json_str(j, "rope_scaling.rope_type", vl_json_str(j, "rope_scaling.type", NULL));
  if (!rs) rs = vl_json_str(j, "rope_parameters.rope_type", NULL);
  if (rs && strcmp(rs, "default") && strcmp(rs, "mrope"))
    return vl_error(VL_ERR_UNSUPPORTED, "%s: rope scaling type '%s' is not supported", what, rs);
  if (vl_json_bool(j, "use_sliding_window", 0))
    return vl_error(VL_ERR_UNSUPPORTED, "%s: use_sliding_window = true is not supported", what);
  const char *act = vl_json_str(j, "hidden_act", "silu");
  if (strcmp(act, "silu"))
    return vl_error(VL_ERR_UNSUPPORTED, "%s: hidden_act '%s' is not supported (expected silu)",
                    what, act);
  cfg->tied = vl_json_bool(j, "tie_word_embeddings", 0);
  cfg->qkv_bias = cfg->kind == VL_QWEN2 || vl_json_bool(j, "attention_bias", 0);
  cfg->o_bias = cfg->kind == VL_QWEN3 && vl_json_bool(j, "attention_bias", 0);
  cfg->qk_norm = cfg->kind == VL_QWEN3;
  cfg->bos = (int32_t)vl_json_int(j, "bos_token_id", -1);
  return add_eos(vl_json_get(j, "eos_token_id"), what, cfg);
}

bool vl_qwen_is_eos(const vl_qwen_config *cfg, int32_t id) {
  for (int i = 0; i < cfg->n_eos; i++)
    if (cfg->eos[i] == id) return true;
  return false;
}

/* ---- weights ----------------------------------------------------------- */

void vl_qwen_text_free(vl_qwen_text *m) {
  if (!m) return;
  free(m->layers);
  vl_ctx_free(m->wctx);
  if (m->own_ck) vl_ckpt_close(m->ck);
  vl_gguf_close(m->gguf);
  free(m);
}

vl_qwen_text *vl_qwen_text_from(vl_checkpoint *ck, const vl_qwen_config *cfg, const char *prefix,
                                const char *lm_head_name) {
  vl_qwen_text *m = calloc(1, sizeof *m);
  if (!m) {
    vl_error(VL_ERR_NOMEM, "qwen: out of memory");
    return NULL;
  }
  m->cfg = *cfg;
  m->ck = ck;
  m->wctx = vl_ctx_new();
  m->layers = calloc((size_t)cfg->n_layers, sizeof *m->layers);
  if (!m->wctx || !m->layers) {
    vl_qwen_text_free(m);
    vl_error(VL_ERR_NOMEM, "qwen: out of memory");
    return NULL;
  }
  vl_weights w = {.ck = ck, .ctx = m->wctx};
  const int64_t C = cfg->hidden, F = cfg->inter, D = cfg->head_dim;
  const int64_t QD = cfg->n_heads * D, KD = cfg->n_kv_heads * D;
  m->embed = vl_weight2(&w, 0, cfg->vocab, C, "%sembed_tokens.weight", prefix);
  if (!m->embed) goto fail;
  m->norm = vl_weight1(&w, 0, C, "%snorm.weight", prefix);
  if (!m->norm) goto fail;
  m->lm_head = NULL;
  if (!cfg->tied && lm_head_name) {
    m->lm_head = vl_weight2(&w, VL_W_OPTIONAL, cfg->vocab, C, "%s", lm_head_name);
    if (!m->lm_head && vl_last_error()[0]) goto fail; /* present but wrong */
    if (!m->lm_head) vl_log("qwen: no %s, using the tied embedding as lm_head", lm_head_name);
  }
  if (!m->lm_head) {
    m->lm_head = m->embed;
    m->cfg.tied = true;
  }
  for (int l = 0; l < (int)cfg->n_layers; l++) {
    vl_qwen_layer *L = &m->layers[l];
    const char *p = prefix;
    /* one at a time, so the message names the first bad tensor */
#define W2(dst, d0, d1, name)                                                                      \
  if (!(dst = vl_weight2(&w, 0, d0, d1, "%slayers.%d." name, p, l))) goto fail
#define W1(dst, d0, name)                                                                          \
  if (!(dst = vl_weight1(&w, 0, d0, "%slayers.%d." name, p, l))) goto fail
    W1(L->ln1, C, "input_layernorm.weight");
    W1(L->ln2, C, "post_attention_layernorm.weight");
    W2(L->wq, QD, C, "self_attn.q_proj.weight");
    W2(L->wk, KD, C, "self_attn.k_proj.weight");
    W2(L->wv, KD, C, "self_attn.v_proj.weight");
    W2(L->wo, C, QD, "self_attn.o_proj.weight");
    W2(L->gate, F, C, "mlp.gate_proj.weight");
    W2(L->up, F, C, "mlp.up_proj.weight");
    W2(L->down, C, F, "mlp.down_proj.weight");
    if (cfg->qkv_bias) {
      W1(L->bq, QD, "self_attn.q_proj.bias");
      W1(L->bk, KD, "self_attn.k_proj.bias");
      W1(L->bv, KD, "self_attn.v_proj.bias");
    }
    if (cfg->o_bias) W1(L->bo, C, "self_attn.o_proj.bias");
    if (cfg->qk_norm) {
      W1(L->q_norm, D, "self_attn.q_norm.weight");
      W1(L->k_norm, D, "self_attn.k_norm.weight");
    }
#undef W1
#undef W2
  }
  return m;
fail:
  vl_qwen_text_free(m);
  return NULL;
}

vl_qwen_text *vl_qwen_text_load(const char *dir) {
  size_t dl = strlen(dir);
  if (dl >= 5 && !strcmp(dir + dl - 5, ".gguf")) return vl_qwen_text_load_gguf(dir);
  vl_checkpoint *ck = vl_ckpt_open(dir);
  if (!ck) return NULL;
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", vl_ckpt_dir(ck));
  cJSON *j = vl_json_load(path);
  if (!j) {
    vl_ckpt_close(ck);
    return NULL;
  }
  vl_qwen_config cfg;
  int rc = vl_qwen_config_parse(j, path, &cfg);
  cJSON_Delete(j);
  if (!rc) {
    snprintf(path, sizeof path, "%s/generation_config.json", vl_ckpt_dir(ck));
    cJSON *g = vl_json_load(path);
    if (g) {
      rc = add_eos(vl_json_get(g, "eos_token_id"), path, &cfg);
      cJSON_Delete(g);
    } else if (vl_last_error_code() == VL_ERR_NOTFOUND) {
      vl_clear_error();
    } else {
      rc = vl_last_error_code();
    }
  }
  if (rc) {
    vl_ckpt_close(ck);
    return NULL;
  }
  vl_qwen_text *m = vl_qwen_text_from(ck, &cfg, "model.", "lm_head.weight");
  if (!m) {
    vl_ckpt_close(ck);
    return NULL;
  }
  m->own_ck = true;
  return m;
}

vl_kv_cache *vl_qwen_text_cache_new_typed(const vl_qwen_text *m, int64_t max_tokens,
                                          vl_dtype dtype) {
  return vl_kv_new_typed((int)m->cfg.n_layers, max_tokens, m->cfg.n_kv_heads, m->cfg.head_dim,
                         dtype);
}

vl_kv_cache *vl_qwen_text_cache_new(const vl_qwen_text *m, int64_t max_tokens) {
  return vl_qwen_text_cache_new_typed(m, max_tokens, VL_F32);
}

/* ---- forward ----------------------------------------------------------- */

static vl_tensor *reshape4(vl_ctx *c, vl_tensor *x, int64_t B, int64_t T, int64_t H, int64_t D) {
  int64_t s[4] = {B, T, H, D};
  return vl_reshape(c, x, 4, s);
}

/* Decode step over an F16 cache: the new key/value row is appended (as
 * F16) and q (1, 1, H, D) attends to every cached row, read as stored;
 * returns (1, 1, H, D). The F32 cache keeps the general attention op. */
static vl_tensor *attend_cached(vl_ctx *c, vl_kv_cache *kv, int l, vl_tensor *q, vl_tensor *k,
                                vl_tensor *v, float scale) {
  if (vl_kv_append(kv, c, l, k, v, NULL, NULL)) return NULL;
  const int64_t n = kv->len + 1, H = q->shape[2];
  vl_tensor *out = vl_new_uninit(c, VL_F32, 4, q->shape);
  float *S = vl_ctx_alloc_uninit(c, (size_t)vl_kv_attend_scratch(n, H) * sizeof(float));
  if (!out || !S || vl_kv_attend(kv, l, n, vl_f32(q), H, scale, S, vl_f32(out))) return NULL;
  return out;
}

/* ---- decode: products sharing an input in one pass over the pool ------- */

/* For one position (decode), q/k/v and gate/up each run as one
 * vl_parallel_for over their rows put end to end instead of one call per
 * weight: 5 hand-offs to the pool per layer instead of 8. Each hand-off
 * wakes the workers and waits for all of them, which costs far more than
 * the arithmetic of a small GEMV when the cores are shared. */
#define FUSE_MAX 3
typedef struct {
  int n;
  const vl_tensor *w[FUSE_MAX];
  const void *xr[FUSE_MAX]; /* x rounded for w[i] (round_activations), or NULL */
  float *y[FUSE_MAX];
  int64_t end[FUSE_MAX]; /* rows of w[0..i] together */
  const float *x;
} fused_gemv;

static void fused_range(void *arg, int64_t r0, int64_t r1, int worker) {
  const fused_gemv *f = arg;
  (void)worker;
  int64_t start = 0;
  for (int i = 0; i < f->n; start = f->end[i++]) {
    int64_t a = r0 > start ? r0 : start, b = r1 < f->end[i] ? r1 : f->end[i];
    if (a >= b) continue;
    if (f->xr[i])
      vl_gemv_rows_rounded(f->w[i], a - start, b - a, f->xr[i], f->y[i] + (a - start));
    else
      vl_gemv_rows_any(f->w[i], a - start, b - a, f->x, f->y[i] + (a - start));
  }
}

static bool fusable(const vl_tensor *w, int64_t K) {
  return w->ndim == 2 && w->shape[1] == K &&
         (w->dtype == VL_F32 || w->dtype == VL_BF16 || w->dtype == VL_F16 ||
          (w->dtype == VL_Q8_0 && K % VL_Q8_0_BLOCK == 0));
}

/* x rounded for weights of type t, made once per call and shared by the
 * weights of that type (at most one copy per format). */
static const void *rounded_x(vl_ctx *c, const float *x, int64_t K, vl_dtype t, const void **made) {
  const int slot = t == VL_BF16 ? 0 : 1;
  if (!made[slot]) {
    void *xr = vl_ctx_alloc_uninit(c, vl_round_x_bytes(t, K));
    if (!xr) return NULL;
    vl_round_x(t, x, K, xr);
    made[slot] = xr;
  }
  return made[slot];
}

/* out[i] = x w[i]^T + b[i] (b[i] may be NULL) for x of one row (1, 1, K);
 * the same values as vl_linear_any (or, with round, x rounded per weight
 * format), never recorded (inference only). */
static int linear_fused(vl_ctx *c, vl_tensor *x, int n, vl_tensor *const *w, vl_tensor *const *b,
                        bool round, vl_tensor **out) {
  const int64_t K = x->shape[x->ndim - 1];
  bool ok = x->dtype == VL_F32 && x->numel == K;
  for (int i = 0; i < n; i++)
    ok = ok && fusable(w[i], K);
  if (!ok) { /* not the shapes this is for: one product at a time */
    for (int i = 0; i < n; i++)
      if (!(out[i] = vl_linear_any(c, x, w[i], b[i]))) return vl_last_error_code();
    return VL_OK;
  }
  fused_gemv f = {.n = n, .x = vl_f32(x)};
  const void *made[2] = {NULL, NULL};
  int64_t rows = 0;
  for (int i = 0; i < n; i++) {
    int64_t s[3] = {1, 1, w[i]->shape[0]};
    if (!(out[i] = vl_new_uninit(c, VL_F32, 3, s))) return vl_last_error_code();
    f.w[i] = w[i];
    f.y[i] = vl_f32(out[i]);
    f.end[i] = rows += w[i]->shape[0];
    if (round && vl_rounded_dot_supports(w[i]->dtype, K) &&
        !(f.xr[i] = rounded_x(c, f.x, K, w[i]->dtype, made)))
      return vl_last_error_code();
  }
  vl_parallel_for(rows, 16384 / K + 1, fused_range, &f);
  for (int i = 0; i < n; i++) {
    if (!b[i]) continue;
    const float *bd = vl_f32(b[i]);
    for (int64_t j = 0; j < w[i]->shape[0]; j++)
      f.y[i][j] += bd[j];
  }
  return VL_OK;
}

/* x w^T + b with BF16 w, x rounded to BF16 (tensor/gemm_bf16.h), not
 * recorded; NULL when that does not apply (shapes, dtypes, CPU). */
static vl_tensor *linear_bf16_rounded(vl_ctx *c, vl_tensor *x, vl_tensor *w, vl_tensor *b) {
  const int64_t K = x->shape[x->ndim - 1];
  if (w->dtype != VL_BF16 || w->ndim != 2 || w->shape[1] != K || x->dtype != VL_F32 ||
      (b && (b->dtype != VL_F32 || b->numel != w->shape[0])) || !vl_gemm_bf16_rounded_available())
    return NULL;
  const int64_t N = w->shape[0], M = x->numel / K;
  int64_t shape[VL_MAX_DIMS];
  memcpy(shape, x->shape, (size_t)x->ndim * sizeof *shape);
  shape[x->ndim - 1] = N;
  vl_tensor *y = vl_new_uninit(c, VL_F32, x->ndim, shape);
  if (!y) return NULL;
  for (int64_t r = 0; b && r < M; r++)
    memcpy(vl_f32(y) + r * N, b->data, (size_t)N * sizeof(float));
  if (vl_gemm_bf16_rounded(M, N, K, vl_f32(x), K, w->data, K, b ? 1.0f : 0.0f, vl_f32(y), N))
    return NULL;
  return y;
}

/* One product x w^T + b: on a decode step fused (one pool pass, x rounded
 * to the weight's format with round); with round, a prefill product with
 * BF16 weights through the BF16 GEMM; else vl_linear_any. */
static vl_tensor *linear_step(vl_ctx *c, bool one, bool round, vl_tensor *x, vl_tensor *w,
                              vl_tensor *b) {
  vl_tensor *out;
  if (!x) return NULL;
  if (one) return linear_fused(c, x, 1, &w, &b, round, &out) ? NULL : out;
  if (round && (out = linear_bf16_rounded(c, x, w, b))) return out;
  return vl_linear_any(c, x, w, b);
}

vl_tensor *vl_qwen_text_forward(vl_ctx *c, const vl_qwen_text *m, vl_tensor *ids,
                                const vl_qwen_fwd *opt) {
  static const vl_qwen_fwd none;
  if (!opt) opt = &none;
  const vl_qwen_config *cfg = &m->cfg;
  const int64_t C = cfg->hidden, H = cfg->n_heads, Hkv = cfg->n_kv_heads, D = cfg->head_dim;
  char sb[96];
  vl_tensor *x;
  if (opt->inputs_embeds) {
    x = opt->inputs_embeds;
    if (x->ndim != 3 || x->shape[2] != C || x->dtype != VL_F32 || x->shape[1] < 1) {
      vl_error(VL_ERR_INVALID, "qwen: inputs_embeds %s must be F32 (B, T, %lld)",
               vl_shape_str(x, sb, sizeof sb), (long long)C);
      return NULL;
    }
  } else {
    if (!ids) {
      vl_error(VL_ERR_INVALID, "qwen: no input ids");
      return NULL;
    }
    if ((ids->ndim != 1 && ids->ndim != 2) || ids->numel < 1) {
      vl_error(VL_ERR_INVALID, "qwen: input ids %s must be (T) or (B, T) and not empty",
               vl_shape_str(ids, sb, sizeof sb));
      return NULL;
    }
    x = vl_embedding_any(c, m->embed, ids); /* checks dtype and id range */
    if (!x) return NULL;
    if (ids->ndim == 1) {
      int64_t s[3] = {1, ids->shape[0], C};
      x = vl_reshape(c, x, 3, s);
    }
  }
  const int64_t B = x->shape[0], T = x->shape[1];
  vl_kv_cache *kv = opt->cache;
  if (kv &&
      (B != 1 || kv->n_layers != cfg->n_layers || kv->n_kv_heads != Hkv || kv->head_dim != D)) {
    vl_error(VL_ERR_INVALID, "qwen: the KV cache is for another model shape or batch %lld != 1",
             (long long)B);
    return NULL;
  }
  const int64_t start = kv ? kv->len : 0;
  if (kv && start + T > kv->capacity) {
    vl_error(VL_ERR_LIMIT, "qwen: %lld + %lld positions exceed the KV cache capacity %lld",
             (long long)start, (long long)T, (long long)kv->capacity);
    return NULL;
  }
  vl_tensor *ang = opt->angles;
  if (!ang) {
    int64_t *pos = vl_ctx_alloc(c, (size_t)T * sizeof *pos);
    if (!pos) return NULL;
    for (int64_t t = 0; t < T; t++)
      pos[t] = start + t;
    ang = vl_rope_angles_1d(c, pos, T, (int)D, cfg->rope_theta);
    if (!ang) return NULL;
  }
  const vl_attn_mask mask = {.causal = true};
  const float scale = 1.0f / sqrtf((float)D), eps = cfg->rms_eps;
  /* Inference: each layer's output is copied to one buffer made before the
   * loop and the layer's temporaries are dropped, so the arena holds one
   * layer's worth (a 256-token prefill chunk of Qwen3-0.6B: ~20 MB instead
   * of ~600 MB over 28 layers). */
  const bool drop = !vl_ctx_recording(c) && !opt->attn_probs;
  const bool one = drop && B * T == 1;               /* decode step: fused products */
  const bool round = drop && opt->round_activations; /* inference only */
  vl_tensor *xres = NULL;
  size_t mark = 0;
  if (drop) {
    if (!(xres = vl_new_uninit(c, VL_F32, x->ndim, x->shape))) return NULL;
    memcpy(xres->data, x->data, (size_t)x->numel * sizeof(float));
    x = xres;
    mark = vl_ctx_mark(c);
  }
  for (int l = 0; l < (int)cfg->n_layers; l++) {
    const vl_qwen_layer *L = &m->layers[l];
    vl_tensor *h = vl_rmsnorm(c, x, L->ln1, eps), *q, *k, *v;
    if (one && h) {
      vl_tensor *w[3] = {L->wq, L->wk, L->wv}, *b[3] = {L->bq, L->bk, L->bv}, *o[3];
      if (linear_fused(c, h, 3, w, b, round, o)) return NULL;
      q = reshape4(c, o[0], B, T, H, D);
      k = reshape4(c, o[1], B, T, Hkv, D);
      v = reshape4(c, o[2], B, T, Hkv, D);
    } else {
      q = reshape4(c, linear_step(c, false, round, h, L->wq, L->bq), B, T, H, D);
      k = reshape4(c, linear_step(c, false, round, h, L->wk, L->bk), B, T, Hkv, D);
      v = reshape4(c, linear_step(c, false, round, h, L->wv, L->bv), B, T, Hkv, D);
    }
    if (cfg->qk_norm) {
      q = vl_rmsnorm(c, q, L->q_norm, eps);
      k = vl_rmsnorm(c, k, L->k_norm, eps);
    }
    q = vl_rope(c, q, ang);
    k = vl_rope(c, k, ang);
    if (!q || !k || !v) return NULL;
    vl_tensor *a;
    if (kv && one && kv->dtype == VL_F16) {
      if (!(a = attend_cached(c, kv, l, q, k, v, scale))) return NULL;
    } else {
      if (kv && vl_kv_append(kv, c, l, k, v, &k, &v)) return NULL;
      a = vl_attention(c, q, k, v, scale, &mask, opt->attn_probs ? &opt->attn_probs[l] : NULL);
    }
    int64_t s3[3] = {B, T, H * D};
    vl_tensor *o = linear_step(c, one, round, vl_reshape(c, a, 3, s3), L->wo, L->bo);
    x = vl_add(c, x, o);
    vl_tensor *h2 = vl_rmsnorm(c, x, L->ln2, eps), *f;
    if (one && h2) {
      vl_tensor *w[2] = {L->gate, L->up}, *b[2] = {NULL, NULL}, *gu[2];
      if (linear_fused(c, h2, 2, w, b, round, gu)) return NULL;
      f = vl_swiglu(c, gu[0], gu[1]);
    } else {
      f = vl_swiglu(c, linear_step(c, false, round, h2, L->gate, NULL),
                    linear_step(c, false, round, h2, L->up, NULL));
    }
    x = vl_add(c, x, linear_step(c, one, round, f, L->down, NULL));
    if (l < opt->n_layer_add && opt->layer_add[l]) {
      int64_t s2[2] = {B * T, C}, s3b[3] = {B, T, C};
      vl_tensor *x2 = vl_reshape(c, x, 2, s2);
      vl_tensor *rows = vl_add(c, vl_gather_rows(c, x2, opt->layer_add_idx), opt->layer_add[l]);
      x = vl_reshape(c, vl_scatter_rows(c, x2, rows, opt->layer_add_idx), 3, s3b);
    }
    if (!x) return NULL;
    if (drop) {
      memcpy(xres->data, x->data, (size_t)x->numel * sizeof(float));
      vl_ctx_reset(c, mark);
      x = xres;
    }
  }
  if (kv) vl_kv_advance(kv, T);
  x = vl_rmsnorm(c, x, m->norm, eps);
  if (!x) return NULL;
  if (opt->hidden) *opt->hidden = x;
  if (opt->last_only && T > 1) x = vl_slice(c, x, 1, T - 1, T);
  if (opt->skip_logits) return x;
  return linear_step(c, one, round, x, m->lm_head, NULL);
}
