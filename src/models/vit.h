/* ViT image encoder as BLIP's vision tower builds it (transformers'
 * modeling_blip.py: BlipVisionEmbeddings, BlipEncoderLayer, BlipAttention):
 * stride == kernel conv patch embedding (vl_patchify + vl_linear), a class
 * token, learned absolute position embeddings, pre-norm blocks (LayerNorm ->
 * fused qkv attention -> projection, LayerNorm -> fc1 -> act -> fc2, both
 * residual), then post_layernorm over every token. The layer struct also
 * has separate q/k/v slots and an optional pre-norm so CLIP-style towers can
 * reuse the forward with their own loader. */
#ifndef VL_MODELS_VIT_H
#define VL_MODELS_VIT_H

#include <cjson/cJSON.h>

#include "models/weights.h"
#include "tensor/ops.h"
#include "tensor/tensor.h"

typedef enum { VL_ACT_GELU = 0, VL_ACT_GELU_TANH, VL_ACT_QUICK_GELU, VL_ACT_RELU } vl_act;

/* hidden_act string ("gelu", "gelu_new"/"gelu_pytorch_tanh", "quick_gelu",
 * "relu") to vl_act; VL_ERR_UNSUPPORTED naming what for any other. */
int vl_act_parse(const char *name, const char *what, vl_act *out);
vl_tensor *vl_act_apply(vl_ctx *c, vl_act act, vl_tensor *x);

typedef struct {
  int64_t hidden, inter, n_layers, n_heads, image_size, patch_size, channels;
  float eps;
  vl_act act;
} vl_vit_config;

typedef struct {
  vl_tensor *ln1_w, *ln1_b, *ln2_w, *ln2_b;
  vl_tensor *qkv_w, *qkv_b;                     /* fused (3D, D): BLIP; or NULL */
  vl_tensor *q_w, *q_b, *k_w, *k_b, *v_w, *v_b; /* separate: CLIP-style */
  vl_tensor *o_w, *o_b;
  vl_tensor *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} vl_vit_layer;

typedef struct {
  vl_vit_config cfg;
  vl_tensor *patch_w;         /* (D, C*p*p): the conv weight viewed 2-D */
  vl_tensor *patch_b;         /* (D) or NULL */
  vl_tensor *cls;             /* (1, 1, D) F32 */
  vl_tensor *pos;             /* (1, 1 + patches, D) F32 */
  vl_tensor *pre_w, *pre_b;   /* optional LayerNorm before the blocks */
  vl_tensor *post_w, *post_b; /* LayerNorm after the blocks (all tokens); NULL: none (CLIP) */
  vl_vit_layer *layers;       /* n_layers, malloc'd */
} vl_vit;

/* A BLIP vision_config object. what names the file in messages. */
int vl_vit_config_parse_blip(const cJSON *vc, const char *what, vl_vit_config *cfg);
/* Loads the BLIP layout under prefix ("vision_model."), weights in w->ctx.
 * Fills *m (layers malloc'd; release with vl_vit_release). */
int vl_vit_load_blip(vl_weights *w, const vl_vit_config *cfg, const char *prefix, vl_vit *m);
void vl_vit_release(vl_vit *m);

typedef struct {
  /* Optional, n_layers slots each: the hidden state entering layer l (the
   * input of its layer_norm1; Grad-CAM reads the last one), and layer l's
   * attention probabilities (B, heads, T, T). On the tape when recording. */
  vl_tensor **layer_in;
  vl_tensor **attn;
} vl_vit_fwd;

/* One pre-norm block on x (B, T, hidden): x + attn(ln1(x)), then
 * + mlp(ln2(.)). mask may be NULL (CLIP's text tower passes causal); with
 * probs_out the attention probabilities (B, heads, T, T) are handed out. */
vl_tensor *vl_vit_layer_forward(vl_ctx *c, const vl_vit_layer *L, const vl_vit_config *cfg,
                                vl_tensor *x, const vl_attn_mask *mask, vl_tensor **probs_out);

/* pixels (B, C, image_size, image_size) F32 -> (B, 1 + patches, D), CLS
 * first, after post_layernorm (none when post_w is NULL). opt may be NULL. */
vl_tensor *vl_vit_forward(vl_ctx *c, const vl_vit *m, vl_tensor *pixels, const vl_vit_fwd *opt);

#endif
