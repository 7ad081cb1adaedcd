/* CLIP (transformers' modeling_clip.py, image_processing_clip.py):
 * CLIPModel = ViT vision tower (vit.h, CLIP layout: conv without bias,
 * pre_layrnorm, separate q/k/v projections, post_layernorm on the pooled CLS
 * only) + causal text transformer (token + position embeddings,
 * final_layer_norm, pooled at the EOS position) + projections; the
 * image-text logit is exp(logit_scale) * cos(image_embeds, text_embeds).
 * Loaded from a Hub folder: config.json, model.safetensors (or sharded),
 * preprocessor_config.json, vocab.json + merges.txt (or tokenizer.json).
 *
 * One recorded forward hands out what explanations need: every vision
 * layer's input (Grad-CAM reads the last one's ->grad), the vision and text
 * attention probabilities (tape tensors), and the similarity logit as the
 * target (a vision-only readout: the CLS query of the vision tower). */
#ifndef VL_MODELS_CLIP_H
#define VL_MODELS_CLIP_H

#include <cjson/cJSON.h>

#include "io/image.h"
#include "io/preprocess.h"
#include "io/safetensors.h"
#include "models/blip.h"
#include "models/vit.h"
#include "text/tokenizer.h"

typedef struct {
  int64_t vocab, hidden, inter, n_layers, n_heads, max_pos;
  float eps;
  vl_act act;
  int32_t bos, eos, pad;
} vl_clip_text_config;

typedef struct {
  vl_vit_config vcfg;
  vl_clip_text_config tcfg;
  int64_t proj_dim;
  vl_preprocess_cfg pre;
  vl_checkpoint *ck;
  vl_ctx *wctx;
  vl_tokenizer *tok; /* NULL when the folder has no tokenizer files */
  vl_vit vision;     /* post_w NULL: the post norm applies to the pooled CLS */
  vl_tensor *vpost_w, *vpost_b;
  vl_tensor *tok_emb, *pos_emb; /* (vocab, D), (max_pos, D) */
  vl_vit_layer *tlayers;        /* text encoder layers, q/k/v separate */
  vl_vit_config tlcfg;          /* hidden/heads/eps/act of the text layers */
  vl_tensor *final_w, *final_b;
  vl_tensor *vis_proj, *txt_proj; /* (P, Dv), (P, Dt), no bias */
  float logit_scale;              /* the parameter; the logit uses exp() of it */
  char *dir;
} vl_clip;

/* True when config.json's architectures.0 is CLIPModel. */
bool vl_clip_is_clip_config(const cJSON *j);
/* Parses config.json's object; what names the file. */
int vl_clip_config_parse(const cJSON *j, const char *what, vl_vit_config *vcfg,
                         vl_clip_text_config *tcfg, int64_t *proj_dim);

vl_clip *vl_clip_load(const char *dir);
void vl_clip_free(vl_clip *m);

/* Image -> (1, 3, H, W) pixel values per preprocessor_config.json (RGB,
 * shortest-edge bicubic resize, centre crop, rescale, normalise).
 * resized_u8 as vl_preprocess. */
vl_tensor *vl_clip_pixels(vl_ctx *c, const vl_clip *m, const vl_image *img, vl_image **resized_u8);

/* Text -> ids as CLIPTokenizer(text) gives them: <|startoftext|> ... <|endoftext|>.
 * *ids malloc'd. */
int vl_clip_text_ids(const vl_clip *m, const char *text, int64_t **ids, int64_t *n);

/* The position CLIPTextTransformer pools: argmax(ids) when eos_token_id is 2
 * (old configs), else the first position holding eos_token_id (0 when none,
 * as torch's argmax over all-false). */
int64_t vl_clip_eos_position(const vl_clip *m, const int64_t *ids, int64_t n);

typedef struct {
  /* inputs */
  vl_tensor *pixels; /* (1, 3, H, W) F32; requires_grad is set when recording */
  vl_tensor *ids;    /* (T) or (1, T) I64/I32 */
  /* optional slots (NULL: not wanted): vision n_layers / text n_layers long */
  vl_tensor **vision_layer_in, **vision_attn; /* (1, N, Dv) / (1, heads, N, N) */
  vl_tensor **text_attn;                      /* (1, heads, T, T) */
  /* outputs (always set on success) */
  vl_tensor *vision_hidden;    /* (1, N, Dv) encoder output, CLS first, no post norm */
  vl_tensor *vision_pooled;    /* (1, Dv) post_layernorm(CLS) */
  vl_tensor *text_hidden;      /* (1, T, Dt) after final_layer_norm */
  vl_tensor *image_embeds;     /* (1, P) projected, not normalised */
  vl_tensor *text_embeds;      /* (1, P) projected, not normalised */
  vl_tensor *logits_per_image; /* (1, 1): the explanation target */
  int64_t eos_pos;
} vl_clip_run;

/* Both towers and the similarity logit in c. VL_OK or an error. */
int vl_clip_forward(vl_ctx *c, const vl_clip *m, vl_clip_run *r);

/* ---- vlens dump (clip_dump.c) ------------------------------------------ */
/* Needs o->image_path and o->prompt or o->ids. Writes input_ids,
 * pixel_values, position_ids, vision_out (the encoder's last hidden state:
 * CLIP's post_layernorm applies to the pooled CLS only, which goes to
 * vision_pooled), image_embeds, text_embeds, logits_per_image; attn.{l} and
 * vision_attn.{l} with o->attn; with o->has_target (the target is always
 * logits_per_image[0, 0]; target_pos/id are ignored) gradcam.*. */
int vl_clip_dump(const vl_clip *m, const vl_dump_opts *o, vl_st_writer *w);

#endif
