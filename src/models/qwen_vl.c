/* Qwen2-VL / Qwen2.5-VL: config, loading, preprocessing, placeholder
 * expansion, M-RoPE position ids and the multimodal forward (qwen_vl.h). */
#include "models/qwen_vl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/file.h"
#include "io/image.h"
#include "io/json.h"
#include "models/inputs.h"
#include "models/weights.h"
#include "tensor/ops.h"
#include "tensor/quant.h"

/* ---- config ------------------------------------------------------------ */

static int kind_from(const cJSON *j, vl_qwen_vl_kind *kind) {
  const char *arch = vl_json_str(j, "architectures.0", "");
  const char *type = vl_json_str(j, "model_type", "");
  if (!strcmp(arch, "Qwen2VLForConditionalGeneration") || !strcmp(type, "qwen2_vl"))
    return *kind = VL_QWEN2_VL, 1;
  if (!strcmp(arch, "Qwen2_5_VLForConditionalGeneration") || !strcmp(type, "qwen2_5_vl"))
    return *kind = VL_QWEN25_VL, 1;
  if (!strcmp(arch, "Qwen3VLForConditionalGeneration") || !strcmp(type, "qwen3_vl"))
    return *kind = VL_QWEN3_VL, 1;
  return 0;
}

bool vl_qwen_vl_is_config(const cJSON *cfg) {
  vl_qwen_vl_kind k;
  return cfg && kind_from(cfg, &k);
}

static int need_pos(const cJSON *j, const char *key, const char *what, int64_t max, int64_t *out) {
  int rc = vl_json_need_int(j, key, what, out);
  if (rc) return rc;
  if (*out <= 0 || *out > max)
    return vl_error(VL_ERR_FORMAT, "%s: key '%s': %lld is outside [1, %lld]", what, key,
                    (long long)*out, (long long)max);
  return VL_OK;
}

static int parse_act(const char *s, const char *what, vl_qwen_vl_act *act) {
  if (!strcmp(s, "quick_gelu")) return *act = VL_QVL_QUICK_GELU, VL_OK;
  if (!strcmp(s, "gelu")) return *act = VL_QVL_GELU, VL_OK;
  if (!strcmp(s, "gelu_pytorch_tanh") || !strcmp(s, "gelu_new"))
    return *act = VL_QVL_GELU_TANH, VL_OK;
  if (!strcmp(s, "silu") || !strcmp(s, "swish")) return *act = VL_QVL_SILU, VL_OK;
  return vl_error(VL_ERR_UNSUPPORTED, "%s: key 'vision_config.hidden_act': '%s' is not supported",
                  what, s);
}

/* vision_config of either family; what names config.json. */
static int parse_vision(const cJSON *root, vl_qwen_vl_kind kind, const char *what,
                        vl_qwen_vision_config *v) {
  const cJSON *j = vl_json_get(root, "vision_config");
  if (!cJSON_IsObject(j))
    return vl_error(VL_ERR_FORMAT, "%s: key 'vision_config' is missing or not an object", what);
  char w[4200];
  snprintf(w, sizeof w, "%s: vision_config", what);
  int64_t x;
  int rc;
  if ((rc = need_pos(j, "depth", w, VL_QWEN_VL_MAX_DEPTH, &v->depth)) ||
      (rc = need_pos(j, "num_heads", w, 1024, &v->heads)))
    return rc;
  v->in_chans = vl_json_int(j, "in_chans", vl_json_int(j, "in_channels", 3));
  if (v->in_chans != 3)
    return vl_error(VL_ERR_UNSUPPORTED, "%s: in_chans %lld (only RGB, 3)", w,
                    (long long)v->in_chans);
  x = vl_json_int(j, "patch_size", vl_json_int(j, "spatial_patch_size", 14));
  v->patch = (int)x;
  v->merge = (int)vl_json_int(j, "spatial_merge_size", 2);
  v->temporal = (int)vl_json_int(j, "temporal_patch_size", 2);
  if (v->patch <= 0 || v->patch > 1024 || v->merge <= 0 || v->merge > 16 || v->temporal <= 0 ||
      v->temporal > 16)
    return vl_error(VL_ERR_FORMAT,
                    "%s: patch_size %d, spatial_merge_size %d, temporal_patch_size %d must be "
                    "positive",
                    w, v->patch, v->merge, v->temporal);
  v->eps = 1e-6f;
  if (kind == VL_QWEN2_VL) {
    if ((rc = need_pos(j, "embed_dim", w, 1 << 16, &v->hidden)) ||
        (rc = need_pos(j, "hidden_size", w, 1 << 16, &v->out_hidden)))
      return rc;
    double ratio = vl_json_float(j, "mlp_ratio", 4.0);
    v->inter = (int64_t)((double)v->hidden * ratio);
    if (v->inter <= 0)
      return vl_error(VL_ERR_FORMAT, "%s: mlp_ratio %g gives no MLP width", w, ratio);
    rc = parse_act(vl_json_str(j, "hidden_act", "quick_gelu"), what, &v->act);
  } else if (kind == VL_QWEN3_VL) {
    if ((rc = need_pos(j, "hidden_size", w, 1 << 16, &v->hidden)) ||
        (rc = need_pos(j, "intermediate_size", w, 1 << 20, &v->inter)) ||
        (rc = need_pos(j, "out_hidden_size", w, 1 << 16, &v->out_hidden)) ||
        (rc = need_pos(j, "num_position_embeddings", w, 1 << 24, &v->n_pos_embed)))
      return rc;
    int64_t side = (int64_t)sqrt((double)v->n_pos_embed);
    while (side * side > v->n_pos_embed)
      side--;
    while ((side + 1) * (side + 1) <= v->n_pos_embed)
      side++;
    if (side * side != v->n_pos_embed)
      return vl_error(VL_ERR_FORMAT, "%s: num_position_embeddings %lld is not a square", w,
                      (long long)v->n_pos_embed);
    const cJSON *ds = vl_json_get(j, "deepstack_visual_indexes");
    if (ds && !cJSON_IsArray(ds))
      return vl_error(VL_ERR_FORMAT, "%s: deepstack_visual_indexes must be a list", w);
    for (const cJSON *e = ds ? ds->child : NULL; e; e = e->next) {
      if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= (double)v->depth ||
          v->n_deepstack >= VL_QWEN_VL_MAX_DEEPSTACK)
        return vl_error(VL_ERR_FORMAT,
                        "%s: deepstack_visual_indexes: %g is not a block index below depth %lld "
                        "(at most %d entries)",
                        w, cJSON_IsNumber(e) ? e->valuedouble : -1.0, (long long)v->depth,
                        VL_QWEN_VL_MAX_DEEPSTACK);
      v->deepstack[v->n_deepstack++] = (int)e->valuedouble;
    }
    rc = parse_act(vl_json_str(j, "hidden_act", "gelu_pytorch_tanh"), what, &v->act);
  } else {
    if ((rc = need_pos(j, "hidden_size", w, 1 << 16, &v->hidden)) ||
        (rc = need_pos(j, "intermediate_size", w, 1 << 20, &v->inter)) ||
        (rc = need_pos(j, "out_hidden_size", w, 1 << 16, &v->out_hidden)))
      return rc;
    rc = parse_act(vl_json_str(j, "hidden_act", "silu"), what, &v->act);
    v->window_size = (int)vl_json_int(j, "window_size", 112);
    int unit = v->patch * v->merge;
    if (v->window_size < unit || v->window_size % unit)
      return vl_error(VL_ERR_FORMAT,
                      "%s: window_size %d must be a positive multiple of patch_size * "
                      "spatial_merge_size = %d",
                      w, v->window_size, unit);
    const cJSON *fa = vl_json_get(j, "fullatt_block_indexes");
    if (fa && !cJSON_IsArray(fa))
      return vl_error(VL_ERR_FORMAT, "%s: fullatt_block_indexes must be a list", w);
    for (const cJSON *e = fa ? fa->child : NULL; e; e = e->next) {
      if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= (double)v->depth)
        return vl_error(VL_ERR_FORMAT,
                        "%s: fullatt_block_indexes holds %g, not a block index below depth %lld", w,
                        cJSON_IsNumber(e) ? e->valuedouble : -1.0, (long long)v->depth);
      v->full_attn[(int)e->valuedouble] = true;
    }
  }
  if (rc) return rc;
  if (v->hidden % v->heads || (v->hidden / v->heads) % 4)
    return vl_error(VL_ERR_FORMAT,
                    "%s: width %lld over %lld heads must give a head size divisible by 4 (2-D "
                    "RoPE)",
                    w, (long long)v->hidden, (long long)v->heads);
  return VL_OK;
}

/* Token ids and mrope_section may sit at the top level or in text_config. */
static int64_t tok_id(const cJSON *root, const cJSON *text, const char *key) {
  int64_t v = vl_json_int(root, key, -1);
  return v >= 0 ? v : vl_json_int(text, key, -1);
}

static int parse_mrope(const cJSON *text, const char *what, int64_t head_dim, int sec[3],
                       bool qwen3, bool *interleaved) {
  const cJSON *s = vl_json_get(text, "rope_scaling.mrope_section");
  if (!s) s = vl_json_get(text, "rope_parameters.mrope_section");
  if (!cJSON_IsArray(s) || cJSON_GetArraySize(s) != 3)
    return vl_error(VL_ERR_FORMAT, "%s: key 'rope_scaling.mrope_section' must be a list of 3",
                    what);
  int i = 0, sum = 0;
  for (const cJSON *e = s->child; e; e = e->next, i++) {
    if (!cJSON_IsNumber(e) || e->valuedouble < 0)
      return vl_error(VL_ERR_FORMAT, "%s: rope_scaling.mrope_section holds a bad entry", what);
    sec[i] = (int)e->valuedouble;
    sum += sec[i];
  }
  if (sum * 2 != head_dim)
    return vl_error(VL_ERR_FORMAT,
                    "%s: rope_scaling.mrope_section sums to %d, expected head_dim / 2 = %lld", what,
                    sum, (long long)head_dim / 2);
  *interleaved = vl_json_bool(text, "rope_scaling.mrope_interleaved",
                              vl_json_bool(text, "rope_parameters.mrope_interleaved", 0));
  if (*interleaved && !qwen3)
    return vl_error(VL_ERR_UNSUPPORTED, "%s: interleaved M-RoPE is Qwen3-VL's, not supported here",
                    what);
  return VL_OK;
}

/* ---- loading ------------------------------------------------------------ */

void vl_qwen_vl_free(vl_qwen_vl *m) {
  if (!m) return;
  vl_qwen_text_free(m->lm);
  vl_tokenizer_free(m->tok);
  free(m->blocks);
  vl_ctx_free(m->wctx);
  vl_ckpt_close(m->ck);
  free(m->dir);
  free(m);
}

static int load_preprocess(vl_qwen_vl *m) {
  char path[4096];
  snprintf(path, sizeof path, "%s/preprocessor_config.json", m->dir);
  char *text = vl_read_text_file(path, 1 << 24);
  if (!text) return vl_error(VL_ERR_NOTFOUND, "%s: cannot read the image processor config", path);
  vl_preprocess_cfg_default(&m->pre);
  int rc = vl_preprocess_cfg_parse(&m->pre, text, path);
  free(text);
  if (rc) return rc;
  const vl_qwen_vision_config *v = &m->vcfg;
  if (!m->pre.qwen)
    return vl_error(VL_ERR_FORMAT, "%s: not a Qwen2VLImageProcessor config (min/max_pixels)", path);
  if (m->pre.patch_size != v->patch || m->pre.merge_size != v->merge ||
      m->pre.temporal_patch_size != v->temporal)
    return vl_error(VL_ERR_FORMAT,
                    "%s: patch %d / merge %d / temporal %d disagree with config.json's "
                    "vision_config (%d / %d / %d)",
                    path, m->pre.patch_size, m->pre.merge_size, m->pre.temporal_patch_size,
                    v->patch, v->merge, v->temporal);
  return VL_OK;
}

static int load_vision(vl_qwen_vl *m, const char *vp) {
  const vl_qwen_vision_config *v = &m->vcfg;
  vl_weights w = {.ck = m->ck, .ctx = m->wctx};
  const int64_t E = v->hidden, F = v->inter, K = v->in_chans * v->temporal * v->patch * v->patch;
  int64_t ps[5] = {E, v->in_chans, v->temporal, v->patch, v->patch};
  char name[256];
  snprintf(name, sizeof name, "%spatch_embed.proj.weight", vp);
  vl_tensor *pw = vl_weight(&w, name, 5, ps, 0);
  if (!pw) return vl_last_error_code();
  int64_t s2[2] = {E, K};
  if (!(m->patch_w = vl_wrap(m->wctx, pw->dtype, 2, s2, pw->data))) return vl_last_error_code();
  const bool q3 = m->kind == VL_QWEN3_VL;
  if (q3 &&
      (!(m->patch_b = vl_weight1(&w, 0, E, "%spatch_embed.proj.bias", vp)) ||
       !(m->pos_embed = vl_weight2(&w, VL_W_F32, v->n_pos_embed, E, "%spos_embed.weight", vp))))
    return vl_last_error_code();
  m->blocks = calloc((size_t)v->depth, sizeof *m->blocks);
  if (!m->blocks) return vl_error(VL_ERR_NOMEM, "qwen-vl: out of memory");
  const bool q2 = m->kind == VL_QWEN2_VL, ln = m->kind != VL_QWEN25_VL;
  for (int l = 0; l < (int)v->depth; l++) {
    vl_qwen_vision_block *B = &m->blocks[l];
#define W2(dst, d0, d1, nm)                                                                        \
  if (!(B->dst = vl_weight2(&w, 0, d0, d1, "%sblocks.%d." nm, vp, l))) return vl_last_error_code()
#define W1(dst, d0, nm)                                                                            \
  if (!(B->dst = vl_weight1(&w, 0, d0, "%sblocks.%d." nm, vp, l))) return vl_last_error_code()
    W1(norm1_w, E, "norm1.weight");
    W1(norm2_w, E, "norm2.weight");
    if (ln) {
      W1(norm1_b, E, "norm1.bias");
      W1(norm2_b, E, "norm2.bias");
    }
    W2(qkv_w, 3 * E, E, "attn.qkv.weight");
    W1(qkv_b, 3 * E, "attn.qkv.bias");
    W2(proj_w, E, E, "attn.proj.weight");
    W1(proj_b, E, "attn.proj.bias");
    if (q3) {
      W2(fc1_w, F, E, "mlp.linear_fc1.weight");
      W1(fc1_b, F, "mlp.linear_fc1.bias");
      W2(fc2_w, E, F, "mlp.linear_fc2.weight");
      W1(fc2_b, E, "mlp.linear_fc2.bias");
    } else if (q2) {
      W2(fc1_w, F, E, "mlp.fc1.weight");
      W1(fc1_b, F, "mlp.fc1.bias");
      W2(fc2_w, E, F, "mlp.fc2.weight");
      W1(fc2_b, E, "mlp.fc2.bias");
    } else {
      W2(gate_w, F, E, "mlp.gate_proj.weight");
      W1(gate_b, F, "mlp.gate_proj.bias");
      W2(up_w, F, E, "mlp.up_proj.weight");
      W1(up_b, F, "mlp.up_proj.bias");
      W2(fc2_w, E, F, "mlp.down_proj.weight");
      W1(fc2_b, E, "mlp.down_proj.bias");
    }
#undef W1
#undef W2
  }
  const int64_t M = E * v->merge * v->merge;
  if (q3) {
    for (int k = 0; k < v->n_deepstack; k++)
      if (!(m->ds_ln_w[k] =
                vl_weight1(&w, 0, M, "%sdeepstack_merger_list.%d.norm.weight", vp, k)) ||
          !(m->ds_ln_b[k] = vl_weight1(&w, 0, M, "%sdeepstack_merger_list.%d.norm.bias", vp, k)) ||
          !(m->ds_fc1_w[k] =
                vl_weight2(&w, 0, M, M, "%sdeepstack_merger_list.%d.linear_fc1.weight", vp, k)) ||
          !(m->ds_fc1_b[k] =
                vl_weight1(&w, 0, M, "%sdeepstack_merger_list.%d.linear_fc1.bias", vp, k)) ||
          !(m->ds_fc2_w[k] = vl_weight2(&w, 0, v->out_hidden, M,
                                        "%sdeepstack_merger_list.%d.linear_fc2.weight", vp, k)) ||
          !(m->ds_fc2_b[k] = vl_weight1(&w, 0, v->out_hidden,
                                        "%sdeepstack_merger_list.%d.linear_fc2.bias", vp, k)))
        return vl_last_error_code();
    if (!(m->merge_ln_w = vl_weight1(&w, 0, E, "%smerger.norm.weight", vp)) ||
        !(m->merge_ln_b = vl_weight1(&w, 0, E, "%smerger.norm.bias", vp)) ||
        !(m->merge_fc1_w = vl_weight2(&w, 0, M, M, "%smerger.linear_fc1.weight", vp)) ||
        !(m->merge_fc1_b = vl_weight1(&w, 0, M, "%smerger.linear_fc1.bias", vp)) ||
        !(m->merge_fc2_w = vl_weight2(&w, 0, v->out_hidden, M, "%smerger.linear_fc2.weight", vp)) ||
        !(m->merge_fc2_b = vl_weight1(&w, 0, v->out_hidden, "%smerger.linear_fc2.bias", vp)))
      return vl_last_error_code();
    return VL_OK;
  }
  if (!(m->merge_ln_w = vl_weight1(&w, 0, E, "%smerger.ln_q.weight", vp)) ||
      (q2 && !(m->merge_ln_b = vl_weight1(&w, 0, E, "%smerger.ln_q.bias", vp))) ||
      !(m->merge_fc1_w = vl_weight2(&w, 0, M, M, "%smerger.mlp.0.weight", vp)) ||
      !(m->merge_fc1_b = vl_weight1(&w, 0, M, "%smerger.mlp.0.bias", vp)) ||
      !(m->merge_fc2_w = vl_weight2(&w, 0, v->out_hidden, M, "%smerger.mlp.2.weight", vp)) ||
      !(m->merge_fc2_b = vl_weight1(&w, 0, v->out_hidden, "%smerger.mlp.2.bias", vp)))
    return vl_last_error_code();
  return VL_OK;
}

vl_qwen_vl *vl_qwen_vl_load(const char *dir) {
  char path[4096];
  cJSON *j = vl_model_config(dir, path, sizeof path);
  if (!j) return NULL;
  vl_qwen_vl *m = calloc(1, sizeof *m);
  if (!m || !(m->dir = strdup(dir)) || !(m->wctx = vl_ctx_new())) {
    cJSON_Delete(j);
    vl_qwen_vl_free(m);
    vl_error(VL_ERR_NOMEM, "qwen-vl: out of memory");
    return NULL;
  }
  int rc = VL_OK;
  if (!kind_from(j, &m->kind))
    rc = vl_error(VL_ERR_UNSUPPORTED,
                  "%s: architecture '%s' / model_type '%s' is not Qwen2-VL, Qwen2.5-VL or Qwen3-VL",
                  path, vl_json_str(j, "architectures.0", "(none)"),
                  vl_json_str(j, "model_type", "(none)"));
  /* text settings: text_config when present, else the top level */
  const cJSON *text = vl_json_get(j, "text_config");
  if (!cJSON_IsObject(text)) text = j;
  vl_qwen_config tcfg;
  if (!rc) rc = parse_vision(j, m->kind, path, &m->vcfg);
  if (!rc) {
    /* text_config of new saves may lack model_type; the top one then holds */
    cJSON *t = cJSON_Duplicate(text, 1);
    if (!t) rc = vl_error(VL_ERR_NOMEM, "qwen-vl: out of memory");
    if (!rc && !vl_json_get(t, "model_type"))
      cJSON_AddStringToObject(t, "model_type",
                              m->kind == VL_QWEN3_VL   ? "qwen3_vl_text"
                              : m->kind == VL_QWEN2_VL ? "qwen2_vl"
                                                       : "qwen2_5_vl");
    if (!rc && !vl_json_get(t, "tie_word_embeddings") && vl_json_get(j, "tie_word_embeddings"))
      cJSON_AddBoolToObject(t, "tie_word_embeddings", vl_json_bool(j, "tie_word_embeddings", 0));
    if (!rc) rc = vl_qwen_config_parse(t, path, &tcfg);
    cJSON_Delete(t);
  }
  if (!rc && tcfg.kind != (m->kind == VL_QWEN3_VL ? VL_QWEN3 : VL_QWEN2))
    rc = vl_error(VL_ERR_FORMAT, "%s: the language model must be %s", path,
                  m->kind == VL_QWEN3_VL ? "Qwen3" : "Qwen2");
  if (!rc)
    rc = parse_mrope(text, path, tcfg.head_dim, m->mrope_sec, m->kind == VL_QWEN3_VL,
                     &m->mrope_interleaved);
  if (!rc) {
    m->image_token_id = tok_id(j, text, "image_token_id");
    m->vision_start_id = tok_id(j, text, "vision_start_token_id");
    m->vision_end_id = tok_id(j, text, "vision_end_token_id");
    if (m->image_token_id < 0 || m->image_token_id >= tcfg.vocab)
      rc = vl_error(VL_ERR_FORMAT, "%s: key 'image_token_id' is missing or outside the vocabulary",
                    path);
    else if (m->vision_start_id < 0)
      rc = vl_error(VL_ERR_FORMAT, "%s: key 'vision_start_token_id' is missing", path);
  }
  if (!rc && m->vcfg.out_hidden != tcfg.hidden)
    rc = vl_error(VL_ERR_FORMAT,
                  "%s: the vision merger gives %lld-wide tokens, the language model takes %lld",
                  path, (long long)m->vcfg.out_hidden, (long long)tcfg.hidden);
  cJSON_Delete(j);
  if (rc) goto fail;
  if (!(m->ck = vl_ckpt_open(dir))) goto fail;
  /* the two Hub layouts */
  const bool nested = vl_ckpt_find(m->ck, "model.language_model.embed_tokens.weight") != NULL;
  const char *lp = nested ? "model.language_model." : "model.";
  const char *vp = nested ? "model.visual." : "visual.";
  if (!(m->lm = vl_qwen_text_from(m->ck, &tcfg, lp, "lm_head.weight"))) goto fail;
  if (load_vision(m, vp) || load_preprocess(m)) goto fail;
  m->tok = vl_model_tokenizer(dir, "qwen-vl");
  return m;
fail:
  vl_qwen_vl_free(m);
  return NULL;
}

/* ---- inputs ------------------------------------------------------------- */

vl_tensor *vl_qwen_vl_pixels(vl_ctx *c, const vl_qwen_vl *m, const vl_image *img, int64_t grid[3]) {
  float *px = NULL;
  int w = 0, h = 0;
  if (vl_model_image_chw(&m->pre, img, "qwen-vl", &px, &w, &h, NULL)) return NULL;
  const vl_qwen_vision_config *v = &m->vcfg;
  grid[0] = 1, grid[1] = h / v->patch, grid[2] = w / v->patch;
  int64_t s[2] = {grid[1] * grid[2], 3LL * v->temporal * v->patch * v->patch};
  vl_tensor *t = vl_new_uninit(c, VL_F32, 2, s);
  if (t && vl_qwen_patchify(px, h, w, v->patch, v->merge, v->temporal, vl_f32(t))) t = NULL;
  free(px);
  return t;
}

int64_t vl_qwen_vl_image_tokens(const vl_qwen_vl *m, const int64_t grid[3]) {
  return grid[0] * grid[1] * grid[2] / ((int64_t)m->vcfg.merge * m->vcfg.merge);
}

int vl_qwen_vl_expand_ids(const vl_qwen_vl *m, const int64_t *ids, int64_t n, int64_t n_image,
                          int64_t **out, int64_t *n_out) {
  *out = NULL;
  *n_out = 0;
  const int64_t img = m->image_token_id, V = m->lm->cfg.vocab;
  int64_t count = 0, runs = 0, first = -1;
  for (int64_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= V)
      return vl_error(VL_ERR_INVALID,
                      "qwen-vl: token id %lld at %lld is outside the vocabulary "
                      "of %lld",
                      (long long)ids[i], (long long)i, (long long)V);
    if (ids[i] != img) continue;
    if (!count) first = i;
    if (i == 0 || ids[i - 1] != img) runs++;
    count++;
  }
  if (!count)
    return vl_error(VL_ERR_INVALID,
                    "qwen-vl: the prompt has no image placeholder (token %lld, <|image_pad|>)",
                    (long long)img);
  if (runs != 1 || (count != 1 && count != n_image))
    return vl_error(VL_ERR_INVALID,
                    "qwen-vl: the prompt must hold one image placeholder (token %lld) for the one "
                    "image; found %lld in %lld places (the image gives %lld tokens)",
                    (long long)img, (long long)count, (long long)runs, (long long)n_image);
  const int64_t T = n - count + n_image;
  *out = malloc((size_t)T * sizeof **out);
  if (!*out) return vl_error(VL_ERR_NOMEM, "qwen-vl: out of memory");
  int64_t k = 0;
  for (int64_t i = 0; i < first; i++)
    (*out)[k++] = ids[i];
  for (int64_t i = 0; i < n_image; i++)
    (*out)[k++] = img;
  for (int64_t i = first + count; i < n; i++)
    (*out)[k++] = ids[i];
  *n_out = T;
  return VL_OK;
}

int vl_qwen_vl_rope_index(const vl_qwen_vl *m, const int64_t *ids, int64_t T, const int64_t grid[3],
                          int64_t *pos3) {
  const int64_t mg = m->vcfg.merge, gt = grid[0], gh = grid[1] / mg, gw = grid[2] / mg;
  const int64_t N = gt * gh * gw;
  int64_t ed = -1;
  for (int64_t i = 0; i < T && ed < 0; i++)
    if (ids[i] == m->image_token_id) ed = i;
  if (ed < 0 || ed + N > T)
    return vl_error(VL_ERR_INVALID, "qwen-vl: the ids do not hold the image's %lld placeholders",
                    (long long)N);
  for (int64_t i = 0; i < N; i++)
    if (ids[ed + i] != m->image_token_id)
      return vl_error(VL_ERR_INVALID, "qwen-vl: the image's %lld placeholders are not contiguous",
                      (long long)N);
  /* text before: 0..ed-1 on all axes; image: (t, h, w) + ed; text after
   * continues from the largest position + 1 (get_rope_index). */
  int64_t *pt = pos3, *ph = pos3 + T, *pw = pos3 + 2 * T, mx = ed - 1;
  for (int64_t i = 0; i < ed; i++)
    pt[i] = ph[i] = pw[i] = i;
  /* Qwen2-VL / Qwen3-VL: t index; Qwen2.5-VL images: second_per_grid_t = 0,
   * so t is 0 */
  for (int64_t t = 0, i = ed; t < gt; t++)
    for (int64_t y = 0; y < gh; y++)
      for (int64_t x = 0; x < gw; x++, i++) {
        pt[i] = (m->kind == VL_QWEN25_VL ? 0 : t) + ed;
        ph[i] = y + ed;
        pw[i] = x + ed;
        if (pt[i] > mx) mx = pt[i];
        if (ph[i] > mx) mx = ph[i];
        if (pw[i] > mx) mx = pw[i];
      }
  for (int64_t i = ed + N, p = mx + 1; i < T; i++, p++)
    pt[i] = ph[i] = pw[i] = p;
  return VL_OK;
}

int vl_qwen_vl_text_ids(const vl_qwen_vl *m, const char *text, int64_t **ids, int64_t *n) {
  *ids = NULL;
  *n = 0;
  if (!m->tok)
    return vl_error(VL_ERR_NOTFOUND, "%s: no tokenizer (tokenizer.json) to encode the text",
                    m->dir);
  return vl_model_encode(m->tok, text, "qwen-vl", ids, n);
}

/* ---- forward ------------------------------------------------------------ */

int vl_qwen_vl_forward(vl_ctx *c, const vl_qwen_vl *m, vl_qwen_vl_run *r) {
  if (!r->pixels || !r->ids || r->ids->dtype != VL_I64 || r->ids->ndim != 1)
    return vl_error(VL_ERR_INVALID, "qwen-vl: forward needs pixels and (T) I64 ids");
  const int64_t T = r->ids->numel, C = m->lm->cfg.hidden;
  const int64_t *ids = r->ids->data;
  const bool rec = vl_ctx_recording(c);
  if (rec && r->pixel_grad) r->pixels->requires_grad = true;
  vl_tensor *img = vl_qwen_vl_vision_ex(c, m, r->pixels, r->grid, NULL, r->deepstack);
  if (!img) return vl_last_error_code();
  const int64_t N = img->shape[0];
  if (rec && !r->pixel_grad) {
    /* a leaf: the tape starts at the visual embeddings */
    vl_tensor *leaf = vl_clone_f32(c, img);
    if (!leaf) return vl_last_error_code();
    leaf->requires_grad = true;
    img = leaf;
  }
  r->image_embeds = img;
  r->n_image = N;
  /* placeholder positions */
  int64_t ns = N;
  vl_tensor *idx = vl_new(c, VL_I64, 1, &ns);
  r->image_pos = vl_ctx_alloc(c, (size_t)N * sizeof *r->image_pos);
  if (!idx || !r->image_pos) return vl_last_error_code();
  int64_t k = 0;
  for (int64_t i = 0; i < T; i++)
    if (ids[i] == m->image_token_id) {
      if (k < N) ((int64_t *)idx->data)[k] = i, r->image_pos[k] = (int)i;
      k++;
    }
  if (k != N)
    return vl_error(VL_ERR_INVALID,
                    "qwen-vl: the ids hold %lld image placeholders, the image gives %lld tokens",
                    (long long)k, (long long)N);
  int64_t s3[3] = {3, T, 0};
  r->position_ids = vl_new(c, VL_I64, 2, s3);
  if (!r->position_ids) return vl_last_error_code();
  int rc = vl_qwen_vl_rope_index(m, ids, T, r->grid, r->position_ids->data);
  if (rc) return rc;
  vl_tensor *ang = vl_rope_angles_mrope(c, r->position_ids->data, T, (int)m->lm->cfg.head_dim,
                                        m->lm->cfg.rope_theta, m->mrope_sec, m->mrope_interleaved);
  vl_tensor *emb = vl_embedding_any(c, m->lm->embed, r->ids);
  vl_tensor *x = vl_scatter_rows(c, emb, img, idx);
  s3[0] = 1, s3[1] = T, s3[2] = C;
  x = vl_reshape(c, x, 3, s3);
  if (!x || !ang) return vl_last_error_code();
  vl_qwen_fwd f = {.attn_probs = r->attn,
                   .inputs_embeds = x,
                   .angles = ang,
                   .layer_add = r->deepstack,
                   .n_layer_add = m->vcfg.n_deepstack,
                   .layer_add_idx = idx};
  if (m->vcfg.n_deepstack > m->lm->cfg.n_layers)
    return vl_error(VL_ERR_FORMAT, "qwen-vl: %d DeepStack outputs for %lld language layers",
                    m->vcfg.n_deepstack, (long long)m->lm->cfg.n_layers);
  vl_tensor *lg = vl_qwen_text_forward(c, m->lm, NULL, &f);
  int64_t s2[2] = {T, m->lm->cfg.vocab};
  r->logits = vl_reshape(c, lg, 2, s2);
  return r->logits ? VL_OK : vl_last_error_code();
}
