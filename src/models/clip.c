/* CLIP: config, loading, preprocessing and forward (see clip.h). */
#include "models/clip.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/image.h"
#include "io/json.h"
#include "models/inputs.h"
#include "tensor/ops.h"

bool vl_clip_is_clip_config(const cJSON *j) {
  return !strcmp(vl_json_str(j, "architectures.0", ""), "CLIPModel");
}

/* Required positive ints of a sub-config. */
static int need_pos(const cJSON *o, const char *key, const char *what, int64_t *out) {
  int rc = vl_json_need_int(o, key, what, out);
  if (rc) return rc;
  if (*out <= 0 || *out > (1 << 24))
    return vl_error(VL_ERR_FORMAT, "%s: key '%s': %lld is out of range", what, key,
                    (long long)*out);
  return VL_OK;
}

static int text_config_parse(const cJSON *tc, const char *what, vl_clip_text_config *t) {
  memset(t, 0, sizeof *t);
  char w[600];
  snprintf(w, sizeof w, "%s: text_config", what);
  if (!tc || !cJSON_IsObject(tc))
    return vl_error(VL_ERR_NOTFOUND, "%s: key 'text_config' missing or not an object", what);
  int rc;
  if ((rc = need_pos(tc, "vocab_size", w, &t->vocab)) ||
      (rc = need_pos(tc, "hidden_size", w, &t->hidden)) ||
      (rc = need_pos(tc, "intermediate_size", w, &t->inter)) ||
      (rc = need_pos(tc, "num_hidden_layers", w, &t->n_layers)) ||
      (rc = need_pos(tc, "num_attention_heads", w, &t->n_heads)) ||
      (rc = need_pos(tc, "max_position_embeddings", w, &t->max_pos)))
    return rc;
  if (t->hidden % t->n_heads)
    return vl_error(VL_ERR_FORMAT, "%s: hidden_size %lld is not a multiple of %lld heads", w,
                    (long long)t->hidden, (long long)t->n_heads);
  t->eps = (float)vl_json_float(tc, "layer_norm_eps", 1e-5);
  /* CLIPTextConfig's defaults */
  t->bos = (int32_t)vl_json_int(tc, "bos_token_id", 49406);
  t->eos = (int32_t)vl_json_int(tc, "eos_token_id", 49407);
  t->pad = (int32_t)vl_json_int(tc, "pad_token_id", 1);
  return vl_act_parse(vl_json_str(tc, "hidden_act", "quick_gelu"), w, &t->act);
}

int vl_clip_config_parse(const cJSON *j, const char *what, vl_vit_config *vcfg,
                         vl_clip_text_config *tcfg, int64_t *proj_dim) {
  const char *arch = NULL;
  int rc = vl_json_need_str(j, "architectures.0", what, &arch);
  if (rc) return rc;
  if (strcmp(arch, "CLIPModel"))
    return vl_error(VL_ERR_UNSUPPORTED,
                    "%s: architecture '%s' is not supported here (expected CLIPModel)", what, arch);
  const cJSON *vc = vl_json_get(j, "vision_config");
  rc = vl_vit_config_parse_blip(vc, what, vcfg);
  if (rc) return rc;
  /* CLIPVisionConfig defaults to quick_gelu where BLIP defaults to gelu */
  if (!vl_json_get(vc, "hidden_act")) vcfg->act = VL_ACT_QUICK_GELU;
  if ((rc = text_config_parse(vl_json_get(j, "text_config"), what, tcfg))) return rc;
  *proj_dim = vl_json_int(j, "projection_dim", 512);
  if (*proj_dim <= 0 || *proj_dim > (1 << 20))
    return vl_error(VL_ERR_FORMAT, "%s: key 'projection_dim': %lld is out of range", what,
                    (long long)*proj_dim);
  return VL_OK;
}

void vl_clip_free(vl_clip *m) {
  if (!m) return;
  vl_vit_release(&m->vision);
  free(m->tlayers);
  vl_tokenizer_free(m->tok);
  vl_ctx_free(m->wctx);
  vl_ckpt_close(m->ck);
  free(m->dir);
  free(m);
}

/* One CLIPEncoderLayer under "<p>encoder.layers.<l>.". */
static int load_layer(vl_weights *w, const char *p, int l, int64_t D, int64_t F, vl_vit_layer *L) {
#define W2(dst, d0, d1, nm)                                                                        \
  if (!(L->dst = vl_weight2(w, 0, d0, d1, "%sencoder.layers.%d." nm, p, l))) return -1
#define W1(dst, d0, nm)                                                                            \
  if (!(L->dst = vl_weight1(w, 0, d0, "%sencoder.layers.%d." nm, p, l))) return -1
  W1(ln1_w, D, "layer_norm1.weight");
  W1(ln1_b, D, "layer_norm1.bias");
  W1(ln2_w, D, "layer_norm2.weight");
  W1(ln2_b, D, "layer_norm2.bias");
  W2(q_w, D, D, "self_attn.q_proj.weight");
  W1(q_b, D, "self_attn.q_proj.bias");
  W2(k_w, D, D, "self_attn.k_proj.weight");
  W1(k_b, D, "self_attn.k_proj.bias");
  W2(v_w, D, D, "self_attn.v_proj.weight");
  W1(v_b, D, "self_attn.v_proj.bias");
  W2(o_w, D, D, "self_attn.out_proj.weight");
  W1(o_b, D, "self_attn.out_proj.bias");
  W2(fc1_w, F, D, "mlp.fc1.weight");
  W1(fc1_b, F, "mlp.fc1.bias");
  W2(fc2_w, D, F, "mlp.fc2.weight");
  W1(fc2_b, D, "mlp.fc2.bias");
#undef W1
#undef W2
  return 0;
}

/* CLIPVisionTransformer under "vision_model.". */
static int load_vision(vl_weights *w, vl_clip *m) {
  const vl_vit_config *cfg = &m->vcfg;
  vl_vit *v = &m->vision;
  memset(v, 0, sizeof *v);
  v->cfg = *cfg;
  const int64_t D = cfg->hidden, P = cfg->patch_size, C = cfg->channels;
  const int64_t np = (cfg->image_size / P) * (cfg->image_size / P);
  const char *p = "vision_model.";
  if (!(v->layers = calloc((size_t)cfg->n_layers, sizeof *v->layers)))
    return vl_error(VL_ERR_NOMEM, "clip: out of memory");
  char name[512];
  snprintf(name, sizeof name, "%sembeddings.patch_embedding.weight", p);
  int64_t s4[4] = {D, C, P, P}, s2[2] = {D, C * P * P}, s3[3] = {1, 1, D};
  vl_tensor *pw = vl_weight(w, name, 4, s4, 0);
  if (!pw || !(v->patch_w = vl_wrap(w->ctx, pw->dtype, 2, s2, pw->data))) return -1;
  /* class_embedding (D) and position_embedding.weight (1 + np, D), viewed
   * as the (1, 1, D) / (1, 1 + np, D) the ViT forward adds */
  vl_tensor *cls = vl_weight1(w, VL_W_F32, D, "%sembeddings.class_embedding", p);
  vl_tensor *pos = vl_weight2(w, VL_W_F32, 1 + np, D, "%sembeddings.position_embedding.weight", p);
  if (!cls || !pos) return -1;
  v->cls = vl_wrap(w->ctx, VL_F32, 3, s3, cls->data);
  s3[1] = 1 + np;
  v->pos = vl_wrap(w->ctx, VL_F32, 3, s3, pos->data);
  if (!v->cls || !v->pos) return -1;
  if (!(v->pre_w = vl_weight1(w, 0, D, "%spre_layrnorm.weight", p)) ||
      !(v->pre_b = vl_weight1(w, 0, D, "%spre_layrnorm.bias", p)) ||
      !(m->vpost_w = vl_weight1(w, 0, D, "%spost_layernorm.weight", p)) ||
      !(m->vpost_b = vl_weight1(w, 0, D, "%spost_layernorm.bias", p)))
    return -1;
  for (int l = 0; l < (int)cfg->n_layers; l++)
    if (load_layer(w, p, l, D, cfg->inter, &v->layers[l])) return -1;
  return 0;
}

/* CLIPTextTransformer under "text_model.". */
static int load_text(vl_weights *w, vl_clip *m) {
  const vl_clip_text_config *t = &m->tcfg;
  const int64_t D = t->hidden;
  const char *p = "text_model.";
  m->tlcfg = (vl_vit_config){.hidden = D,
                             .inter = t->inter,
                             .n_layers = t->n_layers,
                             .n_heads = t->n_heads,
                             .eps = t->eps,
                             .act = t->act};
  if (!(m->tlayers = calloc((size_t)t->n_layers, sizeof *m->tlayers)))
    return vl_error(VL_ERR_NOMEM, "clip: out of memory");
  if (!(m->tok_emb = vl_weight2(w, 0, t->vocab, D, "%sembeddings.token_embedding.weight", p)) ||
      !(m->pos_emb =
            vl_weight2(w, VL_W_F32, t->max_pos, D, "%sembeddings.position_embedding.weight", p)) ||
      !(m->final_w = vl_weight1(w, 0, D, "%sfinal_layer_norm.weight", p)) ||
      !(m->final_b = vl_weight1(w, 0, D, "%sfinal_layer_norm.bias", p)))
    return -1;
  for (int l = 0; l < (int)t->n_layers; l++)
    if (load_layer(w, p, l, D, t->inter, &m->tlayers[l])) return -1;
  return 0;
}

/* logit_scale: a 0-d parameter in HF checkpoints, (1) in some exports. */
static int load_logit_scale(vl_clip *m) {
  const vl_st_tensor *t = vl_ckpt_find(m->ck, "logit_scale");
  if (!t) return -1;
  if (vl_st_numel(t) != 1 || t->ndim > 1)
    return vl_error(VL_ERR_FORMAT,
                    "%s: tensor 'logit_scale': expected one element (shape [] or [1])",
                    vl_ckpt_path(m->ck));
  float v;
  if (vl_st_to_f32(t, &v)) return -1;
  if (!isfinite(v))
    return vl_error(VL_ERR_FORMAT, "%s: tensor 'logit_scale' is not finite", vl_ckpt_path(m->ck));
  m->logit_scale = v;
  return 0;
}

/* CLIPImageProcessor: resize the shortest edge (an int `size` is the
 * shortest edge in get_size_dict(default_to_square=False)), centre crop to
 * the tower's square input. */
static int load_preprocess(vl_clip *m, const char *dir) {
  char path[4096];
  const int S = (int)m->vcfg.image_size;
  vl_preprocess_cfg_default(&m->pre);
  m->pre.resize_shortest_edge = 1;
  m->pre.shortest_edge = S;
  m->pre.do_center_crop = 1;
  m->pre.crop_width = m->pre.crop_height = S;
  int rc =
      vl_model_preprocess_load(dir, "clip", "CLIPImageProcessor", S, &m->pre, path, sizeof path);
  if (rc) return rc > 0 ? VL_OK : rc;
  const vl_preprocess_cfg *q = &m->pre;
  int ok = q->do_center_crop ? q->crop_width == S && q->crop_height == S
                             : q->do_resize && !q->resize_shortest_edge && q->size_width == S &&
                                   q->size_height == S;
  if (!ok)
    return vl_error(VL_ERR_UNSUPPORTED,
                    "%s: images must come out %dx%d (vision_config.image_size); the config gives "
                    "%s %dx%d",
                    path, S, S, q->do_center_crop ? "crop_size" : "size",
                    q->do_center_crop ? q->crop_width : q->size_width,
                    q->do_center_crop ? q->crop_height : q->size_height);
  return VL_OK;
}

vl_clip *vl_clip_load(const char *dir) {
  char path[4096];
  cJSON *j = vl_model_config(dir, path, sizeof path);
  if (!j) return NULL;
  vl_clip *m = calloc(1, sizeof *m);
  int rc = m ? vl_clip_config_parse(j, path, &m->vcfg, &m->tcfg, &m->proj_dim)
             : vl_error(VL_ERR_NOMEM, "clip: out of memory");
  cJSON_Delete(j);
  if (rc) goto fail;
  if (vl_model_open(dir, "clip", &m->dir, &m->wctx, &m->ck)) goto fail;
  vl_weights w = {.ck = m->ck, .ctx = m->wctx};
  if (load_vision(&w, m) || load_text(&w, m) || load_logit_scale(m)) goto fail;
  if (!(m->vis_proj = vl_weight2(&w, 0, m->proj_dim, m->vcfg.hidden, "visual_projection.weight")) ||
      !(m->txt_proj = vl_weight2(&w, 0, m->proj_dim, m->tcfg.hidden, "text_projection.weight")))
    goto fail;
  if (load_preprocess(m, dir)) goto fail;
  m->tok = vl_model_tokenizer(dir, "clip");
  return m;
fail:
  if (!vl_last_error_code()) vl_error(VL_ERR_FORMAT, "%s: could not load the CLIP model", dir);
  vl_clip_free(m);
  return NULL;
}

vl_tensor *vl_clip_pixels(vl_ctx *c, const vl_clip *m, const vl_image *img, vl_image **resized_u8) {
  return vl_model_pixels(c, &m->pre, img, "clip", resized_u8);
}

int vl_clip_text_ids(const vl_clip *m, const char *text, int64_t **ids, int64_t *n) {
  *ids = NULL;
  *n = 0;
  if (!m->tok)
    return vl_error(VL_ERR_NOTFOUND,
                    "%s: no tokenizer (vocab.json + merges.txt) to encode the text", m->dir);
  int rc = vl_model_encode(m->tok, text, "clip", ids, n);
  if (rc || *n <= m->tcfg.max_pos) return rc;
  rc = vl_error(VL_ERR_LIMIT, "clip: the text is %lld tokens, the model takes at most %lld",
                (long long)*n, (long long)m->tcfg.max_pos);
  free(*ids);
  *ids = NULL;
  *n = 0;
  return rc;
}

int64_t vl_clip_eos_position(const vl_clip *m, const int64_t *ids, int64_t n) {
  int64_t best = 0;
  if (m->tcfg.eos == 2) { /* legacy: the highest id is the EOS token */
    for (int64_t i = 1; i < n; i++)
      if (ids[i] > ids[best]) best = i;
    return best;
  }
  for (int64_t i = 0; i < n; i++)
    if (ids[i] == m->tcfg.eos) return i;
  return 0;
}

/* ids as I64 (T), checked against the vocabulary and max positions. */
static vl_tensor *check_ids(vl_ctx *c, const vl_clip *m, const vl_tensor *ids) {
  const int64_t T = ids->numel;
  if (!(ids->ndim == 1 || (ids->ndim == 2 && ids->shape[0] == 1)) ||
      (ids->dtype != VL_I64 && ids->dtype != VL_I32) || T < 1) {
    vl_error(VL_ERR_INVALID, "clip: input ids must be a non-empty I64/I32 (T) or (1, T)");
    return NULL;
  }
  if (T > m->tcfg.max_pos) {
    vl_error(VL_ERR_LIMIT, "clip: %lld tokens, max_position_embeddings is %lld", (long long)T,
             (long long)m->tcfg.max_pos);
    return NULL;
  }
  vl_tensor *out = vl_new_uninit(c, VL_I64, 1, &T);
  if (!out) return NULL;
  int64_t *o = out->data;
  for (int64_t i = 0; i < T; i++) {
    o[i] = ids->dtype == VL_I64 ? ((const int64_t *)ids->data)[i] : ((const int32_t *)ids->data)[i];
    if (o[i] < 0 || o[i] >= m->tcfg.vocab) {
      vl_error(VL_ERR_INVALID,
               "clip: token id %lld at position %lld is outside the vocabulary of %lld",
               (long long)o[i], (long long)i, (long long)m->tcfg.vocab);
      return NULL;
    }
  }
  return out;
}

/* x (1, P) / ||x||: rmsnorm without eps is x * sqrt(P) / ||x||. */
static vl_tensor *l2_normalize(vl_ctx *c, vl_tensor *x) {
  if (!x) return NULL;
  return vl_scale(c, vl_rmsnorm(c, x, NULL, 0.0f), 1.0f / sqrtf((float)x->shape[x->ndim - 1]));
}

int vl_clip_forward(vl_ctx *c, const vl_clip *m, vl_clip_run *r) {
  if (!r->pixels || !r->ids) return vl_error(VL_ERR_INVALID, "clip: pixels and ids are required");
  if (r->pixels->ndim != 4 || r->pixels->shape[0] != 1) {
    char b[64];
    return vl_error(VL_ERR_INVALID, "clip: pixel_values %s, expected (1, 3, %lld, %lld)",
                    vl_shape_str(r->pixels, b, sizeof b), (long long)m->vcfg.image_size,
                    (long long)m->vcfg.image_size);
  }
  vl_tensor *ids = check_ids(c, m, r->ids);
  if (!ids) return vl_last_error_code();
  if (vl_ctx_recording(c)) r->pixels->requires_grad = true;
  /* vision: encoder output, then post_layernorm on the CLS row */
  vl_vit_fwd vo = {.layer_in = r->vision_layer_in, .attn = r->vision_attn};
  r->vision_hidden = vl_vit_forward(c, &m->vision, r->pixels, &vo);
  if (!r->vision_hidden) return vl_last_error_code();
  const int64_t Dv = m->vcfg.hidden, Dt = m->tcfg.hidden, T = ids->numel;
  int64_t s2[2] = {1, Dv};
  r->vision_pooled = vl_reshape(
      c,
      vl_layernorm(c, vl_slice(c, r->vision_hidden, 1, 0, 1), m->vpost_w, m->vpost_b, m->vcfg.eps),
      2, s2);
  r->image_embeds = vl_linear(c, r->vision_pooled, m->vis_proj, NULL);
  if (!r->image_embeds) return vl_last_error_code();
  /* text: token + position embeddings, causal layers, final norm */
  int64_t s3[3] = {1, T, Dt};
  vl_tensor *x = vl_reshape(c, vl_embedding(c, m->tok_emb, ids), 3, s3);
  x = vl_add(c, x, vl_slice(c, m->pos_emb, 0, 0, T));
  vl_attn_mask causal = {.causal = true};
  for (int l = 0; x && l < (int)m->tcfg.n_layers; l++)
    x = vl_vit_layer_forward(c, &m->tlayers[l], &m->tlcfg, x, &causal,
                             r->text_attn ? &r->text_attn[l] : NULL);
  r->text_hidden = vl_layernorm(c, x, m->final_w, m->final_b, m->tcfg.eps);
  r->eos_pos = vl_clip_eos_position(m, ids->data, T);
  s2[1] = Dt;
  vl_tensor *pooled =
      vl_reshape(c, vl_slice(c, r->text_hidden, 1, r->eos_pos, r->eos_pos + 1), 2, s2);
  r->text_embeds = vl_linear(c, pooled, m->txt_proj, NULL);
  /* exp(logit_scale) * cos(image_embeds, text_embeds) */
  vl_tensor *cos =
      vl_sum_all(c, vl_mul(c, l2_normalize(c, r->image_embeds), l2_normalize(c, r->text_embeds)));
  s2[0] = s2[1] = 1;
  r->logits_per_image = vl_reshape(c, vl_scale(c, cos, expf(m->logit_scale)), 2, s2);
  return r->logits_per_image ? VL_OK : vl_last_error_code();
}
