/* ViT vision tower (see vit.h). */
#include "models/vit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/json.h"
#include "tensor/ops.h"

int vl_act_parse(const char *name, const char *what, vl_act *out) {
  if (!name) return vl_error(VL_ERR_NOTFOUND, "%s: hidden_act missing", what);
  if (!strcmp(name, "gelu")) {
    *out = VL_ACT_GELU;
  } else if (!strcmp(name, "gelu_new") || !strcmp(name, "gelu_pytorch_tanh") ||
             !strcmp(name, "gelu_fast")) {
    *out = VL_ACT_GELU_TANH;
  } else if (!strcmp(name, "quick_gelu")) {
    *out = VL_ACT_QUICK_GELU;
  } else if (!strcmp(name, "relu")) {
    *out = VL_ACT_RELU;
  } else {
    return vl_error(VL_ERR_UNSUPPORTED, "%s: hidden_act '%s' is not supported", what, name);
  }
  return VL_OK;
}

vl_tensor *vl_act_apply(vl_ctx *c, vl_act act, vl_tensor *x) {
  switch (act) {
  case VL_ACT_GELU_TANH: return vl_gelu_tanh(c, x);
  case VL_ACT_QUICK_GELU: return vl_quick_gelu(c, x);
  case VL_ACT_RELU: return vl_relu(c, x);
  default: return vl_gelu(c, x);
  }
}

int vl_vit_config_parse_blip(const cJSON *vc, const char *what, vl_vit_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  if (!vc || !cJSON_IsObject(vc))
    return vl_error(VL_ERR_NOTFOUND, "%s: key 'vision_config' missing or not an object", what);
  struct {
    const char *key;
    int64_t *dst;
  } need[] = {{"hidden_size", &cfg->hidden},         {"intermediate_size", &cfg->inter},
              {"num_hidden_layers", &cfg->n_layers}, {"num_attention_heads", &cfg->n_heads},
              {"image_size", &cfg->image_size},      {"patch_size", &cfg->patch_size}};
  char w[600];
  snprintf(w, sizeof w, "%s: vision_config", what);
  for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
    int rc = vl_json_need_int(vc, need[i].key, w, need[i].dst);
    if (rc) return rc;
    if (*need[i].dst <= 0 || *need[i].dst > (1 << 20))
      return vl_error(VL_ERR_FORMAT, "%s: key '%s': %lld is out of range", w, need[i].key,
                      (long long)*need[i].dst);
  }
  cfg->channels = vl_json_int(vc, "num_channels", 3);
  if (cfg->channels != 3)
    return vl_error(VL_ERR_UNSUPPORTED, "%s: num_channels %lld (only 3 is supported)", w,
                    (long long)cfg->channels);
  if (cfg->hidden % cfg->n_heads)
    return vl_error(VL_ERR_FORMAT, "%s: hidden_size %lld is not a multiple of %lld heads", w,
                    (long long)cfg->hidden, (long long)cfg->n_heads);
  if (cfg->image_size % cfg->patch_size)
    return vl_error(VL_ERR_FORMAT, "%s: image_size %lld is not a multiple of patch_size %lld", w,
                    (long long)cfg->image_size, (long long)cfg->patch_size);
  cfg->eps = (float)vl_json_float(vc, "layer_norm_eps", 1e-5);
  return vl_act_parse(vl_json_str(vc, "hidden_act", "gelu"), w, &cfg->act);
}

void vl_vit_release(vl_vit *m) {
  if (!m) return;
  free(m->layers);
  m->layers = NULL;
}

int vl_vit_load_blip(vl_weights *w, const vl_vit_config *cfg, const char *p, vl_vit *m) {
  memset(m, 0, sizeof *m);
  m->cfg = *cfg;
  const int64_t D = cfg->hidden, F = cfg->inter, P = cfg->patch_size, C = cfg->channels;
  const int64_t np = (cfg->image_size / P) * (cfg->image_size / P);
  m->layers = calloc((size_t)cfg->n_layers, sizeof *m->layers);
  if (!m->layers) return vl_error(VL_ERR_NOMEM, "vit: out of memory");
  char name[512];
  snprintf(name, sizeof name, "%sembeddings.patch_embedding.weight", p);
  int64_t s4[4] = {D, C, P, P};
  vl_tensor *pw = vl_weight(w, name, 4, s4, 0);
  if (!pw) goto fail;
  /* The forward is a linear with the conv weight viewed (D, C*P*P): re-head
   * the loaded tensor itself, so that its name and (trainable) gradient
   * buffer are the ones the forward uses. Checkpoints keep it 4-D. */
  pw->ndim = 2;
  pw->shape[1] = C * P * P;
  pw->shape[2] = pw->shape[3] = 0;
  m->patch_w = pw;
  m->patch_b = vl_weight1(w, 0, D, "%sembeddings.patch_embedding.bias", p);
  if (!m->patch_w || !m->patch_b) goto fail;
  int64_t s3[3] = {1, 1, D};
  snprintf(name, sizeof name, "%sembeddings.class_embedding", p);
  if (!(m->cls = vl_weight(w, name, 3, s3, VL_W_F32))) goto fail;
  s3[1] = 1 + np;
  snprintf(name, sizeof name, "%sembeddings.position_embedding", p);
  if (!(m->pos = vl_weight(w, name, 3, s3, VL_W_F32))) goto fail;
  if (!(m->post_w = vl_weight1(w, 0, D, "%spost_layernorm.weight", p))) goto fail;
  if (!(m->post_b = vl_weight1(w, 0, D, "%spost_layernorm.bias", p))) goto fail;
  for (int l = 0; l < (int)cfg->n_layers; l++) {
    vl_vit_layer *L = &m->layers[l];
#define W2(dst, d0, d1, nm)                                                                        \
  if (!(dst = vl_weight2(w, 0, d0, d1, "%sencoder.layers.%d." nm, p, l))) goto fail
#define W1(dst, d0, nm)                                                                            \
  if (!(dst = vl_weight1(w, 0, d0, "%sencoder.layers.%d." nm, p, l))) goto fail
    W1(L->ln1_w, D, "layer_norm1.weight");
    W1(L->ln1_b, D, "layer_norm1.bias");
    W1(L->ln2_w, D, "layer_norm2.weight");
    W1(L->ln2_b, D, "layer_norm2.bias");
    W2(L->qkv_w, 3 * D, D, "self_attn.qkv.weight");
    W1(L->qkv_b, 3 * D, "self_attn.qkv.bias");
    W2(L->o_w, D, D, "self_attn.projection.weight");
    W1(L->o_b, D, "self_attn.projection.bias");
    W2(L->fc1_w, F, D, "mlp.fc1.weight");
    W1(L->fc1_b, F, "mlp.fc1.bias");
    W2(L->fc2_w, D, F, "mlp.fc2.weight");
    W1(L->fc2_b, D, "mlp.fc2.bias");
#undef W1
#undef W2
  }
  return VL_OK;
fail:
  vl_vit_release(m);
  return vl_last_error_code() ? vl_last_error_code() : VL_ERR_FORMAT;
}

/* (B, T, 3D) fused projection -> q, k, v each (B, T, H, Dh), in the
 * (3, heads, head_dim) order of BlipAttention's reshape. */
static int split_qkv(vl_ctx *c, vl_tensor *qkv, int64_t H, vl_tensor **q, vl_tensor **k,
                     vl_tensor **v) {
  const int64_t B = qkv->shape[0], T = qkv->shape[1], Dh = qkv->shape[2] / (3 * H);
  int64_t s5[5] = {B, T, 3, H, Dh}, s4[4] = {B, T, H, Dh};
  vl_tensor *r = vl_reshape(c, qkv, 5, s5);
  *q = vl_reshape(c, vl_slice(c, r, 2, 0, 1), 4, s4);
  *k = vl_reshape(c, vl_slice(c, r, 2, 1, 2), 4, s4);
  *v = vl_reshape(c, vl_slice(c, r, 2, 2, 3), 4, s4);
  return *q && *k && *v ? VL_OK : VL_ERR_NOMEM;
}

vl_tensor *vl_vit_layer_forward(vl_ctx *c, const vl_vit_layer *L, const vl_vit_config *cfg,
                                vl_tensor *x, const vl_attn_mask *mask, vl_tensor **probs_out) {
  if (!x) return NULL;
  const int64_t B = x->shape[0], T = x->shape[1], D = cfg->hidden, H = cfg->n_heads;
  const float scale = 1.0f / sqrtf((float)(D / H));
  vl_tensor *h = vl_layernorm(c, x, L->ln1_w, L->ln1_b, cfg->eps), *q, *k, *v;
  if (!h) return NULL;
  if (L->qkv_w) {
    if (split_qkv(c, vl_linear(c, h, L->qkv_w, L->qkv_b), H, &q, &k, &v)) return NULL;
  } else {
    int64_t s4[4] = {B, T, H, D / H};
    q = vl_reshape(c, vl_linear(c, h, L->q_w, L->q_b), 4, s4);
    k = vl_reshape(c, vl_linear(c, h, L->k_w, L->k_b), 4, s4);
    v = vl_reshape(c, vl_linear(c, h, L->v_w, L->v_b), 4, s4);
  }
  vl_tensor *a = vl_attention(c, q, k, v, scale, mask, probs_out);
  int64_t s3[3] = {B, T, D};
  x = vl_add(c, x, vl_linear(c, vl_reshape(c, a, 3, s3), L->o_w, L->o_b));
  h = vl_layernorm(c, x, L->ln2_w, L->ln2_b, cfg->eps);
  h = vl_linear(c, vl_act_apply(c, cfg->act, vl_linear(c, h, L->fc1_w, L->fc1_b)), L->fc2_w,
                L->fc2_b);
  return vl_add(c, x, h);
}

vl_tensor *vl_vit_forward(vl_ctx *c, const vl_vit *m, vl_tensor *pixels, const vl_vit_fwd *opt) {
  const vl_vit_config *cfg = &m->cfg;
  if (!pixels) return NULL;
  if (pixels->ndim != 4 || pixels->dtype != VL_F32 || pixels->shape[1] != cfg->channels ||
      pixels->shape[2] != cfg->image_size || pixels->shape[3] != cfg->image_size) {
    char b[64];
    vl_error(VL_ERR_INVALID, "vit: pixel_values %s, expected F32 (B, %lld, %lld, %lld)",
             vl_shape_str(pixels, b, sizeof b), (long long)cfg->channels,
             (long long)cfg->image_size, (long long)cfg->image_size);
    return NULL;
  }
  const int64_t B = pixels->shape[0], D = cfg->hidden;
  const int P = (int)cfg->patch_size;
  vl_tensor *x = vl_linear(c, vl_patchify(c, pixels, 1, P, P), m->patch_w, m->patch_b);
  vl_tensor *cls = vl_add(c, vl_new_f32(c, 3, B, (int64_t)1, D), m->cls);
  vl_tensor *parts[2] = {cls, x};
  x = vl_add(c, vl_concat(c, 2, parts, 1), m->pos);
  if (m->pre_w) x = vl_layernorm(c, x, m->pre_w, m->pre_b, cfg->eps);
  if (!x) return NULL;
  for (int l = 0; l < (int)cfg->n_layers; l++) {
    if (opt && opt->layer_in) opt->layer_in[l] = x;
    x = vl_vit_layer_forward(c, &m->layers[l], cfg, x, NULL,
                             opt && opt->attn ? &opt->attn[l] : NULL);
    if (!x) return NULL;
  }
  /* CLIP normalises the pooled CLS only: its towers leave post_w NULL */
  return m->post_w ? vl_layernorm(c, x, m->post_w, m->post_b, cfg->eps) : x;
}
