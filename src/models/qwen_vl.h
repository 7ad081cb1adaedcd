/* Qwen2-VL, Qwen2.5-VL and Qwen3-VL (transformers' modeling_qwen2_vl.py /
 * modeling_qwen2_5_vl.py / modeling_qwen3_vl.py), loaded from Hub folders
 * unchanged:
 *
 *  - vision tower (qwen_vl_vision.c): Conv3d patch embedding applied as a
 *    linear over the processor's flattened patches, 2-D vision RoPE, pre-norm
 *    blocks with a fused qkv, PatchMerger (norm + 2x2 spatial merge + MLP).
 *    Qwen2-VL: LayerNorm, fc1/act/fc2 MLP, full attention within a frame.
 *    Qwen2.5-VL: RMSNorm, gated MLP, window attention (window_index reorder,
 *    cu_window_seqlens as an additive block mask) except in
 *    fullatt_block_indexes, and the inverse reorder after the merger.
 *    Qwen3-VL: LayerNorm, patch bias, a learned position table bilinearly
 *    interpolated to the grid, fc1/act/fc2 MLP, DeepStack mergers (norm over
 *    the merged row) after deepstack_visual_indexes, whose outputs are added
 *    to the image rows after the first language layers.
 *  - the image placeholder expanded to one token per merged patch, image
 *    features scattered into inputs_embeds, M-RoPE position ids exactly as
 *    get_rope_index, and the Qwen2 language model (qwen_text.h) run with the
 *    M-RoPE angle table (Qwen3-VL: the Qwen3 decoder, interleaved M-RoPE).
 *
 * Both checkpoint layouts are accepted: "model.layers.*" + "visual.*" (the
 * original Hub files) and "model.language_model.*" + "model.visual.*"
 * (transformers >= 4.52 save_pretrained); text settings at the top level of
 * config.json or under text_config. */
#ifndef VL_MODELS_QWEN_VL_H
#define VL_MODELS_QWEN_VL_H

#include <cjson/cJSON.h>

#include "io/checkpoint.h"
#include "io/image.h"
#include "io/preprocess.h"
#include "io/safetensors.h"
#include "models/blip.h" /* vl_dump_opts */
#include "models/qwen_text.h"
#include "tensor/tensor.h"
#include "text/tokenizer.h"

typedef enum { VL_QWEN2_VL = 20, VL_QWEN25_VL = 25, VL_QWEN3_VL = 30 } vl_qwen_vl_kind;

typedef enum { VL_QVL_QUICK_GELU, VL_QVL_GELU, VL_QVL_GELU_TANH, VL_QVL_SILU } vl_qwen_vl_act;

#define VL_QWEN_VL_MAX_DEPTH 256
#define VL_QWEN_VL_MAX_DEEPSTACK 8

typedef struct {
  int64_t depth, hidden, heads, inter, out_hidden, in_chans;
  int patch, merge, temporal;
  vl_qwen_vl_act act;
  int window_size;                      /* Qwen2.5-VL, in pixels */
  bool full_attn[VL_QWEN_VL_MAX_DEPTH]; /* Qwen2.5-VL: fullatt_block_indexes */
  float eps;
  int64_t n_pos_embed; /* Qwen3-VL: learned side*side table */
  int n_deepstack;     /* Qwen3-VL: deepstack_visual_indexes */
  int deepstack[VL_QWEN_VL_MAX_DEEPSTACK];
} vl_qwen_vision_config;

typedef struct {
  vl_tensor *norm1_w, *norm1_b, *norm2_w, *norm2_b; /* b NULL for RMSNorm */
  vl_tensor *qkv_w, *qkv_b, *proj_w, *proj_b;
  vl_tensor *fc1_w, *fc1_b, *fc2_w, *fc2_b; /* Qwen2-VL */
  vl_tensor *gate_w, *gate_b, *up_w, *up_b; /* Qwen2.5-VL (fc2 = down_proj) */
} vl_qwen_vision_block;

typedef struct {
  vl_qwen_vl_kind kind;
  vl_qwen_vision_config vcfg;
  int64_t image_token_id, vision_start_id, vision_end_id;
  int mrope_sec[3];
  bool mrope_interleaved; /* Qwen3-VL */
  char *dir;
  vl_checkpoint *ck;
  vl_ctx *wctx;
  vl_qwen_text *lm;
  vl_tokenizer *tok; /* NULL when the folder has none (--ids only) */
  vl_preprocess_cfg pre;
  vl_tensor *patch_w; /* (hidden, in_chans * temporal * patch * patch) */
  vl_qwen_vision_block *blocks;
  vl_tensor *merge_ln_w, *merge_ln_b, *merge_fc1_w, *merge_fc1_b, *merge_fc2_w, *merge_fc2_b;
  /* Qwen3-VL: patch bias, learned position table, DeepStack mergers (norm
   * over the merged width) */
  vl_tensor *patch_b, *pos_embed;
  vl_tensor *ds_ln_w[VL_QWEN_VL_MAX_DEEPSTACK], *ds_ln_b[VL_QWEN_VL_MAX_DEEPSTACK];
  vl_tensor *ds_fc1_w[VL_QWEN_VL_MAX_DEEPSTACK], *ds_fc1_b[VL_QWEN_VL_MAX_DEEPSTACK];
  vl_tensor *ds_fc2_w[VL_QWEN_VL_MAX_DEEPSTACK], *ds_fc2_b[VL_QWEN_VL_MAX_DEEPSTACK];
} vl_qwen_vl;

/* config.json names a Qwen2-VL / Qwen2.5-VL / Qwen3-VL model (architectures or
 * model_type). */
bool vl_qwen_vl_is_config(const cJSON *cfg);
/* NULL + vl_error naming the file and key / tensor on any problem. */
vl_qwen_vl *vl_qwen_vl_load(const char *dir);
void vl_qwen_vl_free(vl_qwen_vl *m);

/* The image as the Qwen2VLImageProcessor gives it: pixel_values
 * (patches, C*temporal*patch*patch) and grid (t, h, w) in patches. */
vl_tensor *vl_qwen_vl_pixels(vl_ctx *c, const vl_qwen_vl *m, const vl_image *img, int64_t grid[3]);
/* Number of merged image tokens of a grid. */
int64_t vl_qwen_vl_image_tokens(const vl_qwen_vl *m, const int64_t grid[3]);

/* ids with exactly one image_token_id -> *out (malloc'd) with it repeated
 * n_image times, as the processor does; ids already holding n_image
 * consecutive placeholders are copied. No placeholder, several separate
 * ones, or ids outside the vocabulary: VL_ERR_INVALID. */
int vl_qwen_vl_expand_ids(const vl_qwen_vl *m, const int64_t *ids, int64_t n, int64_t n_image,
                          int64_t **out, int64_t *n_out);
/* M-RoPE position ids (3, T), row-major into pos3, as get_rope_index for one
 * image whose n_image placeholders are in ids (expanded). */
int vl_qwen_vl_rope_index(const vl_qwen_vl *m, const int64_t *ids, int64_t T, const int64_t grid[3],
                          int64_t *pos3);

/* Vision tower: pixels (patches, C*tp*p*p) -> merger output (tokens,
 * out_hidden), tokens in merged-grid row-major order. attn: depth slots or
 * NULL, each gets that block's probabilities (1, heads, N, N) in the
 * processor's patch order (Qwen2.5-VL: in the window order). */
vl_tensor *vl_qwen_vl_vision(vl_ctx *c, const vl_qwen_vl *m, vl_tensor *pixels,
                             const int64_t grid[3], vl_tensor **attn);
/* Same, Qwen3-VL's DeepStack outputs (tokens, out_hidden) into deepstack
 * (n_deepstack slots) when not NULL. */
vl_tensor *vl_qwen_vl_vision_ex(vl_ctx *c, const vl_qwen_vl *m, vl_tensor *pixels,
                                const int64_t grid[3], vl_tensor **attn, vl_tensor **deepstack);

/* One recorded (or inference) forward over an image and expanded ids. */
typedef struct {
  /* in */
  vl_tensor *pixels; /* from vl_qwen_vl_pixels */
  int64_t grid[3];
  vl_tensor *ids;   /* (T) I64, placeholders expanded */
  vl_tensor **attn; /* n_layers slots or NULL: LM attention (1, heads, T, T) */
  /* With recording on: the image embeddings are a leaf requiring grad (their
   * ->grad after vl_backward is dS/dX for Grad-CAM), unless pixel_grad, when
   * pixels require grad and the gradient flows through the vision tower. */
  bool pixel_grad;
  /* out */
  vl_tensor *image_embeds; /* (n_image, hidden): the visual embeddings handed to the LM */
  vl_tensor *position_ids; /* (3, T) I64 */
  vl_tensor *logits;       /* (T, vocab) */
  vl_tensor *deepstack[VL_QWEN_VL_MAX_DEEPSTACK]; /* Qwen3-VL: added after LM layers 0.. */
  int64_t n_image;
  int *image_pos; /* n_image positions of the image tokens in ids (ctx memory) */
} vl_qwen_vl_run;

int vl_qwen_vl_forward(vl_ctx *c, const vl_qwen_vl *m, vl_qwen_vl_run *r);

/* Text -> ids with the model's tokenizer (no chat template). *ids malloc'd. */
int vl_qwen_vl_text_ids(const vl_qwen_vl *m, const char *text, int64_t **ids, int64_t *n);

/* ---- vlens dump (qwen_vl_dump.c) ---------------------------------------- */
/* The tensors of ../shared/spec/dump.md for Qwen-VL: input_ids,
 * pixel_values, image_grid_thw, position_ids, vision_out, logits, attn.{l}
 * with o->attn, and with a target gradcam.acts/grad, gradcam, relevancy. */
int vl_qwen_vl_dump(const vl_qwen_vl *m, const vl_dump_opts *o, vl_st_writer *w);

#endif
