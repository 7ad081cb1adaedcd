/* BLIP's BERT text side (modeling_blip_text.py): BlipTextEmbeddings,
 * BlipTextLayer (self-attention, cross-attention, intermediate, output; each
 * sub-block post-norm: LayerNorm(dense(h) + input)), the LM prediction head,
 * the ITM head and greedy generation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/json.h"
#include "models/blip.h"
#include "tensor/ops.h"

int vl_blip_text_config_parse(const cJSON *tc, const char *what, vl_blip_text_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  if (!tc || !cJSON_IsObject(tc))
    return vl_error(VL_ERR_NOTFOUND, "%s: key 'text_config' missing or not an object", what);
  char w[600];
  snprintf(w, sizeof w, "%s: text_config", what);
  struct {
    const char *key;
    int64_t *dst;
  } need[] = {{"vocab_size", &cfg->vocab},
              {"hidden_size", &cfg->hidden},
              {"intermediate_size", &cfg->inter},
              {"num_hidden_layers", &cfg->n_layers},
              {"num_attention_heads", &cfg->n_heads},
              {"max_position_embeddings", &cfg->max_pos},
              {"encoder_hidden_size", &cfg->enc_hidden}};
  for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
    int rc = vl_json_need_int(tc, need[i].key, w, need[i].dst);
    if (rc) return rc;
    if (*need[i].dst <= 0 || *need[i].dst > (INT64_C(1) << 24))
      return vl_error(VL_ERR_FORMAT, "%s: key '%s': %lld is out of range", w, need[i].key,
                      (long long)*need[i].dst);
  }
  if (cfg->hidden % cfg->n_heads)
    return vl_error(VL_ERR_FORMAT, "%s: hidden_size %lld is not a multiple of %lld heads", w,
                    (long long)cfg->hidden, (long long)cfg->n_heads);
  cfg->eps = (float)vl_json_float(tc, "layer_norm_eps", 1e-12);
  cfg->bos = (int32_t)vl_json_int(tc, "bos_token_id", 30522);
  cfg->pad = (int32_t)vl_json_int(tc, "pad_token_id", 0);
  cfg->sep = (int32_t)vl_json_int(tc, "sep_token_id", 102);
  cfg->eos = (int32_t)vl_json_int(tc, "eos_token_id", 2);
  const char *pe = vl_json_str(tc, "position_embedding_type", "absolute");
  if (strcmp(pe, "absolute"))
    return vl_error(VL_ERR_UNSUPPORTED, "%s: position_embedding_type '%s' is not supported", w, pe);
  return vl_act_parse(vl_json_str(tc, "hidden_act", "gelu"), w, &cfg->act);
}

static int load_attn(vl_weights *w, const char *p, int l, const char *which, int64_t C, int64_t KV,
                     vl_bert_attn *a) {
#define A2(dst, d0, d1, nm)                                                                        \
  if (!(dst = vl_weight2(w, 0, d0, d1, "%sencoder.layer.%d.%s." nm, p, l, which)))                 \
  return vl_last_error_code()
#define A1(dst, d0, nm)                                                                            \
  if (!(dst = vl_weight1(w, 0, d0, "%sencoder.layer.%d.%s." nm, p, l, which)))                     \
  return vl_last_error_code()
  A2(a->q_w, C, C, "self.query.weight");
  A1(a->q_b, C, "self.query.bias");
  A2(a->k_w, C, KV, "self.key.weight");
  A1(a->k_b, C, "self.key.bias");
  A2(a->v_w, C, KV, "self.value.weight");
  A1(a->v_b, C, "self.value.bias");
  A2(a->o_w, C, C, "output.dense.weight");
  A1(a->o_b, C, "output.dense.bias");
  A1(a->ln_w, C, "output.LayerNorm.weight");
  A1(a->ln_b, C, "output.LayerNorm.bias");
#undef A1
#undef A2
  return VL_OK;
}

int vl_blip_text_load(vl_weights *w, vl_blip *m, const char *p) {
  const vl_blip_text_config *cfg = &m->tcfg;
  const int64_t C = cfg->hidden, F = cfg->inter;
  m->layers = calloc((size_t)cfg->n_layers, sizeof *m->layers);
  if (!m->layers) return vl_error(VL_ERR_NOMEM, "blip: out of memory");
  if (!(m->word = vl_weight2(w, 0, cfg->vocab, C, "%sembeddings.word_embeddings.weight", p)))
    return vl_last_error_code();
  if (!(m->pos =
            vl_weight2(w, VL_W_F32, cfg->max_pos, C, "%sembeddings.position_embeddings.weight", p)))
    return vl_last_error_code();
  if (!(m->emb_ln_w = vl_weight1(w, 0, C, "%sembeddings.LayerNorm.weight", p)) ||
      !(m->emb_ln_b = vl_weight1(w, 0, C, "%sembeddings.LayerNorm.bias", p)))
    return vl_last_error_code();
  for (int l = 0; l < (int)cfg->n_layers; l++) {
    vl_bert_layer *L = &m->layers[l];
    int rc = load_attn(w, p, l, "attention", C, C, &L->self);
    if (!rc) rc = load_attn(w, p, l, "crossattention", C, cfg->enc_hidden, &L->cross);
    if (rc) return rc;
#define L2(dst, d0, d1, nm)                                                                        \
  if (!(dst = vl_weight2(w, 0, d0, d1, "%sencoder.layer.%d." nm, p, l))) return vl_last_error_code()
#define L1(dst, d0, nm)                                                                            \
  if (!(dst = vl_weight1(w, 0, d0, "%sencoder.layer.%d." nm, p, l))) return vl_last_error_code()
    L2(L->i_w, F, C, "intermediate.dense.weight");
    L1(L->i_b, F, "intermediate.dense.bias");
    L2(L->o_w, C, F, "output.dense.weight");
    L1(L->o_b, C, "output.dense.bias");
    L1(L->ln_w, C, "output.LayerNorm.weight");
    L1(L->ln_b, C, "output.LayerNorm.bias");
#undef L1
#undef L2
  }
  return VL_OK;
}

/* Keys and values of kv for attention a, (B, N, H, Dh) each. */
static void attn_kv(vl_ctx *c, const vl_blip_text_config *cfg, const vl_bert_attn *a, vl_tensor *kv,
                    vl_tensor **k, vl_tensor **v) {
  *k = *v = NULL;
  if (!kv) return;
  const int64_t H = cfg->n_heads;
  int64_t sk[4] = {kv->shape[0], kv->shape[1], H, cfg->hidden / H};
  *k = vl_reshape(c, vl_linear(c, kv, a->k_w, a->k_b), 4, sk);
  *v = vl_reshape(c, vl_linear(c, kv, a->v_w, a->v_b), 4, sk);
}

/* BlipTextAttention + BlipTextSelfOutput: LayerNorm(dense(attn(x, kv)) + x).
 * pre: the keys and values of kv already computed (generation reuses the
 * image's for every step), else NULL. */
static vl_tensor *attn_block_kv(vl_ctx *c, const vl_blip_text_config *cfg, const vl_bert_attn *a,
                                vl_tensor *x, vl_tensor *kv, vl_tensor *const *pre,
                                const vl_attn_mask *mask, vl_tensor **probs_out) {
  if (!x || !kv) return NULL;
  const int64_t B = x->shape[0], T = x->shape[1], H = cfg->n_heads;
  const int64_t Dh = cfg->hidden / H;
  int64_t sq[4] = {B, T, H, Dh}, s3[3] = {B, T, cfg->hidden};
  vl_tensor *q = vl_reshape(c, vl_linear(c, x, a->q_w, a->q_b), 4, sq), *k, *v;
  if (pre) {
    k = pre[0];
    v = pre[1];
  } else {
    attn_kv(c, cfg, a, kv, &k, &v);
  }
  vl_tensor *o = vl_attention(c, q, k, v, 1.0f / sqrtf((float)Dh), mask, probs_out);
  o = vl_linear(c, vl_reshape(c, o, 3, s3), a->o_w, a->o_b);
  return vl_layernorm(c, vl_add(c, o, x), a->ln_w, a->ln_b, cfg->eps);
}

static vl_tensor *attn_block(vl_ctx *c, const vl_blip_text_config *cfg, const vl_bert_attn *a,
                             vl_tensor *x, vl_tensor *kv, const vl_attn_mask *mask,
                             vl_tensor **probs_out) {
  return attn_block_kv(c, cfg, a, x, kv, NULL, mask, probs_out);
}

/* vl_blip_text_forward; cross_kv: every layer's cross-attention keys and
 * values of img (2 per layer) or NULL. */
static vl_tensor *text_forward(vl_ctx *c, const vl_blip *m, vl_tensor *ids, vl_tensor *img,
                               bool causal, vl_tensor **self_attn, vl_tensor **cross_attn,
                               vl_tensor *const *cross_kv) {
  const vl_blip_text_config *cfg = &m->tcfg;
  if (!ids || !img) return NULL;
  if ((ids->dtype != VL_I64 && ids->dtype != VL_I32) || ids->ndim < 1 || ids->ndim > 2 ||
      (ids->ndim == 2 && ids->shape[0] != 1) || ids->numel < 1) {
    vl_error(VL_ERR_INVALID, "blip: input ids must be a non-empty I64/I32 (T) or (1, T) tensor");
    return NULL;
  }
  const int64_t T = ids->numel;
  if (T > cfg->max_pos) {
    vl_error(VL_ERR_LIMIT, "blip: %lld tokens exceed max_position_embeddings %lld", (long long)T,
             (long long)cfg->max_pos);
    return NULL;
  }
  for (int64_t i = 0; i < T; i++) {
    int64_t id =
        ids->dtype == VL_I64 ? ((const int64_t *)ids->data)[i] : ((const int32_t *)ids->data)[i];
    if (id < 0 || id >= cfg->vocab) {
      vl_error(VL_ERR_INVALID,
               "blip: token id %lld at position %lld is outside the vocabulary "
               "(0..%lld)",
               (long long)id, (long long)i, (long long)cfg->vocab - 1);
      return NULL;
    }
  }
  if (img->ndim != 3 || img->shape[0] != 1 || img->shape[2] != cfg->enc_hidden) {
    char b[64];
    vl_error(VL_ERR_INVALID, "blip: image tokens %s, expected (1, N, %lld)",
             vl_shape_str(img, b, sizeof b), (long long)cfg->enc_hidden);
    return NULL;
  }
  int64_t s3[3] = {1, T, cfg->hidden};
  vl_tensor *x = vl_reshape(c, vl_embedding(c, m->word, ids), 3, s3);
  x = vl_add(c, x, vl_slice(c, m->pos, 0, 0, T));
  x = vl_layernorm(c, x, m->emb_ln_w, m->emb_ln_b, cfg->eps);
  const vl_attn_mask cm = {.causal = true};
  for (int l = 0; l < (int)cfg->n_layers && x; l++) {
    const vl_bert_layer *L = &m->layers[l];
    x = attn_block(c, cfg, &L->self, x, x, causal ? &cm : NULL, self_attn ? &self_attn[l] : NULL);
    x = attn_block_kv(c, cfg, &L->cross, x, img, cross_kv ? &cross_kv[2 * l] : NULL, NULL,
                      cross_attn ? &cross_attn[l] : NULL);
    vl_tensor *h = vl_act_apply(c, cfg->act, vl_linear(c, x, L->i_w, L->i_b));
    h = vl_linear(c, h, L->o_w, L->o_b);
    x = vl_layernorm(c, vl_add(c, h, x), L->ln_w, L->ln_b, cfg->eps);
  }
  return x;
}

vl_tensor *vl_blip_text_forward(vl_ctx *c, const vl_blip *m, vl_tensor *ids, vl_tensor *img,
                                bool causal, vl_tensor **self_attn, vl_tensor **cross_attn) {
  return text_forward(c, m, ids, img, causal, self_attn, cross_attn, NULL);
}

static bool ids_valid(const vl_tensor *ids, int64_t vocab) {
  for (int64_t i = 0; i < ids->numel; i++) {
    int64_t id =
        ids->dtype == VL_I64 ? ((const int64_t *)ids->data)[i] : ((const int32_t *)ids->data)[i];
    if (id < 0 || id >= vocab) {
      vl_error(VL_ERR_INVALID,
               "blip: token id %lld at position %lld is outside the vocabulary "
               "(0..%lld)",
               (long long)id, (long long)i, (long long)vocab - 1);
      return false;
    }
  }
  return true;
}

vl_tensor *vl_blip_text_forward_batch(vl_ctx *c, const vl_blip *m, vl_tensor *ids,
                                      const int64_t *lens, vl_tensor *img, bool causal) {
  const vl_blip_text_config *cfg = &m->tcfg;
  if (!ids || !img) return NULL;
  char b1[64], b2[64];
  if ((ids->dtype != VL_I64 && ids->dtype != VL_I32) || ids->ndim != 2 || ids->numel < 1 ||
      img->ndim != 3 || img->shape[0] < 1 || img->shape[2] != cfg->enc_hidden ||
      ids->shape[0] % img->shape[0]) {
    vl_error(VL_ERR_INVALID,
             "blip: batched text needs ids (Bt, T) I64/I32 and image tokens (Bi, N, %lld) with "
             "Bt a multiple of Bi; got ids %s, image tokens %s",
             (long long)cfg->enc_hidden, vl_shape_str(ids, b1, sizeof b1),
             vl_shape_str(img, b2, sizeof b2));
    return NULL;
  }
  const int64_t Bt = ids->shape[0], T = ids->shape[1], Bi = img->shape[0], G = Bt / Bi;
  const int64_t C = cfg->hidden;
  if (T > cfg->max_pos) {
    vl_error(VL_ERR_LIMIT, "blip: %lld tokens exceed max_position_embeddings %lld", (long long)T,
             (long long)cfg->max_pos);
    return NULL;
  }
  if (!ids_valid(ids, cfg->vocab)) return NULL;
  vl_attn_mask self = {.causal = causal};
  if (!causal && lens) { /* -inf on padding keys, (Bt, 1, 1, T) */
    int64_t sm[4] = {Bt, 1, 1, T};
    self.add = vl_new_uninit(c, VL_F32, 4, sm);
    if (!self.add) return NULL;
    for (int64_t b = 0; b < Bt; b++) {
      if (lens[b] < 1 || lens[b] > T) {
        vl_error(VL_ERR_INVALID, "blip: text %lld has length %lld (1..%lld)", (long long)b,
                 (long long)lens[b], (long long)T);
        return NULL;
      }
      for (int64_t j = 0; j < T; j++)
        vl_f32(self.add)[b * T + j] = j < lens[b] ? 0.0f : -INFINITY;
    }
  }
  const bool use_mask = causal || self.add;
  int64_t s3[3] = {Bt, T, C}, sg[3] = {Bi, G * T, C};
  vl_tensor *x = vl_reshape(c, vl_embedding(c, m->word, ids), 3, s3);
  x = vl_add(c, x, vl_slice(c, m->pos, 0, 0, T));
  x = vl_layernorm(c, x, m->emb_ln_w, m->emb_ln_b, cfg->eps);
  for (int l = 0; l < (int)cfg->n_layers && x; l++) {
    const vl_bert_layer *L = &m->layers[l];
    x = attn_block(c, cfg, &L->self, x, x, use_mask ? &self : NULL, NULL);
    x = attn_block(c, cfg, &L->cross, vl_reshape(c, x, 3, sg), img, NULL, NULL);
    x = vl_reshape(c, x, 3, s3);
    vl_tensor *h = vl_act_apply(c, cfg->act, vl_linear(c, x, L->i_w, L->i_b));
    h = vl_linear(c, h, L->o_w, L->o_b);
    x = vl_layernorm(c, vl_add(c, h, x), L->ln_w, L->ln_b, cfg->eps);
  }
  return x;
}

vl_tensor *vl_blip_lm_head(vl_ctx *c, const vl_blip *m, vl_tensor *hidden) {
  if (!m->dec_w) {
    vl_error(VL_ERR_INVALID, "blip: this model has no language-model head");
    return NULL;
  }
  vl_tensor *h = vl_act_apply(c, m->tcfg.act, vl_linear(c, hidden, m->tr_w, m->tr_b));
  h = vl_layernorm(c, h, m->tr_ln_w, m->tr_ln_b, m->tcfg.eps);
  return vl_linear(c, h, m->dec_w, m->dec_b);
}

/* Greedy generation (blip.h). The decoder runs over the whole prefix every
 * step (no self-attention cache: BLIP captions are short), but the image's
 * cross-attention keys and values, the same for every step, are computed
 * once: they were most of a step's work (N image tokens against a few text
 * tokens), and the same products give the same logits. */
static int generate(const vl_blip *m, vl_tensor *pixels, vl_tensor *img, const int64_t *prompt,
                    int64_t n_prompt, int64_t max_length, int64_t **out, int64_t *n_out) {
  *out = NULL;
  *n_out = 0;
  if (m->kind != VL_BLIP_CAPTION)
    return vl_error(VL_ERR_INVALID, "%s: generation needs BlipForConditionalGeneration", m->dir);
  if (n_prompt < 1) return vl_error(VL_ERR_INVALID, "blip: empty prompt (needs at least bos)");
  if (max_length > m->tcfg.max_pos) max_length = m->tcfg.max_pos;
  const int L = (int)m->tcfg.n_layers;
  int64_t cap = n_prompt > max_length ? n_prompt : max_length;
  int64_t *seq = malloc((size_t)cap * sizeof *seq);
  vl_tensor **kv = calloc((size_t)(2 * L + 1), sizeof *kv);
  vl_ctx *c = vl_ctx_new();
  if (!seq || !kv || !c) {
    free(seq);
    free(kv);
    vl_ctx_free(c);
    return vl_error(VL_ERR_NOMEM, "blip: out of memory");
  }
  memcpy(seq, prompt, (size_t)n_prompt * sizeof *seq);
  int64_t n = n_prompt;
  int rc = VL_OK;
  if (!img) img = vl_vit_forward(c, &m->vision, pixels, NULL);
  for (int l = 0; img && l < L; l++)
    attn_kv(c, &m->tcfg, &m->layers[l].cross, img, &kv[2 * l], &kv[2 * l + 1]);
  if (!img || (L > 0 && !kv[2 * L - 1])) rc = vl_last_error_code();
  while (!rc && n < max_length) {
    size_t mark = vl_ctx_mark(c);
    vl_tensor *ids = vl_wrap(c, VL_I64, 1, &n, seq);
    vl_tensor *h = text_forward(c, m, ids, img, true, NULL, NULL, kv);
    vl_tensor *lg = vl_blip_lm_head(c, m, vl_slice(c, h, 1, n - 1, n));
    if (!lg) {
      rc = vl_last_error_code();
      break;
    }
    const float *row = vl_f32(lg);
    int64_t best = 0;
    for (int64_t v = 1; v < m->tcfg.vocab; v++)
      if (row[v] > row[best]) best = v;
    seq[n++] = best;
    vl_ctx_reset(c, mark);
    if (best == m->tcfg.sep) break;
  }
  vl_ctx_free(c);
  free(kv);
  if (rc) {
    free(seq);
    return rc;
  }
  *out = seq;
  *n_out = n;
  return VL_OK;
}

int vl_blip_generate(const vl_blip *m, vl_tensor *pixels, const int64_t *prompt, int64_t n_prompt,
                     int64_t max_length, int64_t **out, int64_t *n_out) {
  return generate(m, pixels, NULL, prompt, n_prompt, max_length, out, n_out);
}

int vl_blip_generate_from_image(const vl_blip *m, vl_tensor *image_tokens, const int64_t *prompt,
                                int64_t n_prompt, int64_t max_length, int64_t **out,
                                int64_t *n_out) {
  if (!image_tokens) {
    *out = NULL;
    *n_out = 0;
    return vl_error(VL_ERR_INVALID, "blip: no image tokens to generate from");
  }
  return generate(m, NULL, image_tokens, prompt, n_prompt, max_length, out, n_out);
}
