/* BLIP (transformers' modeling_blip.py, modeling_blip_text.py,
 * image_processing_blip.py, processing_blip.py):
 *  - BlipForConditionalGeneration: ViT vision tower (vit.h) + BERT text
 *    decoder (causal self-attention, cross-attention to every image token,
 *    LM head with transform and decoder bias); greedy generate() as HF.
 *  - BlipForImageTextRetrieval (use_itm_head): the same BERT layers as a
 *    bidirectional text encoder over [CLS] ... [SEP], itm_head on token 0.
 * Loaded from a Hub folder: config.json, model.safetensors (or sharded),
 * preprocessor_config.json, vocab.txt + tokenizer_config.json.
 *
 * One recorded forward hands out what explanations need: vision tokens,
 * per-layer self- and cross-attention probabilities (tape tensors), and every
 * vision layer's input (Grad-CAM reads the last one's ->grad after
 * vl_backward). */
#ifndef VL_MODELS_BLIP_H
#define VL_MODELS_BLIP_H

#include <cjson/cJSON.h>

#include "io/image.h"
#include "io/preprocess.h"
#include "io/safetensors.h"
#include "models/vit.h"
#include "text/tokenizer.h"

typedef enum { VL_BLIP_CAPTION = 1, VL_BLIP_ITM = 2 } vl_blip_kind;

typedef struct {
  int64_t vocab, hidden, inter, n_layers, n_heads, max_pos, enc_hidden;
  float eps;
  vl_act act;
  int32_t bos, pad, sep, eos;
} vl_blip_text_config;

typedef struct {
  vl_tensor *q_w, *q_b, *k_w, *k_b, *v_w, *v_b; /* self.query/key/value */
  vl_tensor *o_w, *o_b, *ln_w, *ln_b;           /* output.dense, output.LayerNorm */
} vl_bert_attn;

typedef struct {
  vl_bert_attn self, cross;
  vl_tensor *i_w, *i_b;               /* intermediate.dense */
  vl_tensor *o_w, *o_b, *ln_w, *ln_b; /* output.dense, output.LayerNorm */
} vl_bert_layer;

typedef struct {
  vl_blip_kind kind;
  vl_vit_config vcfg;
  vl_blip_text_config tcfg;
  vl_preprocess_cfg pre;
  vl_checkpoint *ck;
  vl_ctx *wctx;
  vl_tokenizer *tok; /* NULL when the folder has no tokenizer files */
  vl_vit vision;
  /* text */
  vl_tensor *word, *pos, *emb_ln_w, *emb_ln_b;
  vl_bert_layer *layers;
  /* caption: cls.predictions.transform + decoder */
  vl_tensor *tr_w, *tr_b, *tr_ln_w, *tr_ln_b, *dec_w, *dec_b;
  /* ITM */
  vl_tensor *itm_w, *itm_b;
  char *dir;
  /* generate()'s max_length when the caller gives none: generation_config.json,
   * else config.json's (top level or text_config), else GenerationConfig's 20 */
  int64_t max_length;
} vl_blip;

/* Parses config.json's object (architectures.0 picks the kind). what names
 * the file. Unknown architecture / missing keys: VL_ERR_* + message. */
int vl_blip_config_parse(const cJSON *j, const char *what, vl_blip_kind *kind, vl_vit_config *vcfg,
                         vl_blip_text_config *tcfg);
/* True when config.json's architectures.0 is a BLIP class this file runs. */
bool vl_blip_is_blip_config(const cJSON *j);

/* Internal to blip*.c: the text_config object; the BERT tensors under prefix
 * ("text_decoder.bert." / "text_encoder.") into m (m->tcfg set). */
int vl_blip_text_config_parse(const cJSON *tc, const char *what, vl_blip_text_config *cfg);
int vl_blip_text_load(vl_weights *w, vl_blip *m, const char *prefix);

vl_blip *vl_blip_load(const char *dir);
/* trainable: every weight widened to F32 with requires_grad and a gradient
 * buffer (see vl_weights), as training needs. */
vl_blip *vl_blip_load_ex(const char *dir, bool trainable);
void vl_blip_free(vl_blip *m);
/* Every weight tensor of m, each with its checkpoint name in ->name, in a
 * fixed order (vision, text, heads). *params malloc'd (free it; the tensors
 * belong to m). The patch embedding is held 2-D (D, C*P*P); its checkpoint
 * shape is 4-D (see vl_blip_param_shape). */
int vl_blip_params(const vl_blip *m, vl_tensor ***params, int64_t *n);
/* The shape parameter p has in the checkpoint file: *ndim, shape. */
void vl_blip_param_shape(const vl_blip *m, const vl_tensor *p, int *ndim, int64_t *shape);

/* Image -> (1, 3, H, W) pixel values in c, per preprocessor_config.json
 * (convert to RGB, resize, rescale, normalise). resized_u8 as vl_preprocess. */
vl_tensor *vl_blip_pixels(vl_ctx *c, const vl_blip *m, const vl_image *img, vl_image **resized_u8);

/* Text -> input ids as BlipProcessor + the model feed them: [CLS] text [SEP];
 * for captioning [CLS] is replaced by text_config.bos_token_id and the
 * trailing [SEP] dropped (BlipForConditionalGeneration.generate). *ids
 * malloc'd. */
int vl_blip_prompt_ids(const vl_blip *m, const char *text, int64_t **ids, int64_t *n);

typedef struct {
  /* inputs */
  vl_tensor *pixels; /* (1, 3, H, W) F32; requires_grad is set when recording */
  vl_tensor *ids;    /* (T) or (1, T) I64/I32 */
  /* optional slots to fill (NULL: not wanted), each vision/text n_layers long */
  vl_tensor **vision_layer_in, **vision_attn;
  vl_tensor **self_attn, **cross_attn; /* text layers: (1, heads, T, T) / (1, heads, T, N) */
  /* outputs (always set on success) */
  vl_tensor *vision_out; /* (1, N, Dv), CLS first */
  vl_tensor *hidden;     /* (1, T, Dt) last text hidden state */
  vl_tensor *logits;     /* caption: (1, T, vocab); ITM: NULL */
  vl_tensor *itm_logits; /* ITM: (1, 2); caption: NULL */
} vl_blip_run;

/* Vision tower + text side in c. VL_OK or an error (bad ids, shapes). */
int vl_blip_forward(vl_ctx *c, const vl_blip *m, vl_blip_run *r);

/* Text side only, against image tokens img (1, N, enc_hidden) (generation
 * reuses the vision output). causal: decoder (caption) vs encoder (ITM).
 * Returns the hidden state (1, T, hidden). */
vl_tensor *vl_blip_text_forward(vl_ctx *c, const vl_blip *m, vl_tensor *ids, vl_tensor *img,
                                bool causal, vl_tensor **self_attn, vl_tensor **cross_attn);
/* Batched text side (training): ids (Bt, T) I64, each text padded on the
 * right to T (any valid id); img (Bi, N, enc_hidden) with Bt = Bi * G, text
 * b reading image b / G. Cross-attention is row-wise given the image, so the
 * G texts of an image attend as one (Bi, G*T) query block (no copies of the
 * image tokens, one key/value projection per image). With causal, right
 * padding needs no mask: a real token never sees a later (padding) key, and
 * padding rows are not read. Without causal, lens (Bt real lengths; NULL:
 * all T) becomes an additive -inf mask on padding keys. Returns the hidden
 * state (Bt, T, hidden); rows at and past a text's length are undefined. */
vl_tensor *vl_blip_text_forward_batch(vl_ctx *c, const vl_blip *m, vl_tensor *ids,
                                      const int64_t *lens, vl_tensor *img, bool causal);
/* Caption LM head on hidden (..., hidden) -> (..., vocab). */
vl_tensor *vl_blip_lm_head(vl_ctx *c, const vl_blip *m, vl_tensor *hidden);

/* GenerationConfig's default max_length, which BLIP checkpoints keep when
 * they name none (vl_blip.max_length). */
#define VL_BLIP_DEFAULT_MAX_LENGTH 20

/* Greedy captioning as HF generate(): starts from prompt (already with bos,
 * see vl_blip_prompt_ids), appends argmax tokens until sep_token_id (kept)
 * or max_length tokens in total. *out malloc'd, the whole sequence. */
int vl_blip_generate(const vl_blip *m, vl_tensor *pixels, const int64_t *prompt, int64_t n_prompt,
                     int64_t max_length, int64_t **out, int64_t *n_out);
/* The same from the vision tower's output (1, N, D) computed beforehand
 * (describe reuses its recorded forward's). */
int vl_blip_generate_from_image(const vl_blip *m, vl_tensor *image_tokens, const int64_t *prompt,
                                int64_t n_prompt, int64_t max_length, int64_t **out,
                                int64_t *n_out);

/* Caption text of ids with special tokens ([DEC], [SEP], ...) left out, as
 * BlipProcessor.decode(skip_special_tokens=True). *text malloc'd. */
int vl_blip_decode(const vl_blip *m, const int64_t *ids, int64_t n, char **text);

/* ---- vlens dump (blip_dump.c) ------------------------------------------ */
typedef struct {
  const char *image_path; /* required for BLIP */
  const char *prompt;     /* or ids */
  const int64_t *ids;
  int64_t n_ids;
  bool attn;       /* attn.{l}, cross_attn.{l} */
  bool has_target; /* caption: s = logits[target_pos, target_id] */
  int64_t target_pos, target_id;
} vl_dump_opts;

/* Runs one forward (+ one backward with a target; ITM always targets
 * itm_logits[0, 1]) and adds the tensors of ../shared/spec/dump.md to w. */
int vl_blip_dump(const vl_blip *m, const vl_dump_opts *o, vl_st_writer *w);

/* Shared by the ViT families' dumps: Grad-CAM on x (1, 1 + N, C), the input
 * of the last vision layer after vl_backward, patch rows (CLS excluded):
 * alpha = mean over rows of dS/dX, cam = relu(X alpha); adds gradcam.acts,
 * gradcam.grad (N, C) and gradcam (N). */
int vl_dump_gradcam(vl_ctx *c, vl_st_writer *w, vl_tensor *x);

#endif
