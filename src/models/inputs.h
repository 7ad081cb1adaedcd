/* What the BLIP, CLIP and Qwen-VL loaders and input builders do alike: an
 * image to normalised pixels, text to int64 token ids, a folder's
 * config.json and checkpoint, preprocessor_config.json over the processor's
 * defaults, and its optional tokenizer. who ("blip", "clip", "qwen-vl") starts the
 * messages. */
#ifndef VL_MODELS_INPUTS_H
#define VL_MODELS_INPUTS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "io/checkpoint.h"
#include "io/image.h"
#include "io/preprocess.h"
#include "tensor/tensor.h"
#include "text/tokenizer.h"

/* img as PIL's convert("RGB") gives it (grey replicated, alpha dropped)
 * through vl_preprocess(pre): *chw malloc'd, 3 x *h x *w. resized_u8 as
 * vl_preprocess. Images of other than 1, 3 or 4 channels are refused. */
int vl_model_image_chw(const vl_preprocess_cfg *pre, const vl_image *img, const char *who,
                       float **chw, int *w, int *h, vl_image **resized_u8);
/* The same as a (1, 3, H, W) F32 tensor in c; NULL + vl_error on failure. */
vl_tensor *vl_model_pixels(vl_ctx *c, const vl_preprocess_cfg *pre, const vl_image *img,
                           const char *who, vl_image **resized_u8);

/* text through tok with the post-processor's special tokens, as int64:
 * *ids malloc'd (one slot even for no tokens), *n tokens. */
int vl_model_encode(const vl_tokenizer *tok, const char *text, const char *who, int64_t **ids,
                    int64_t *n);

/* dir/preprocessor_config.json parsed over *pre, which holds the defaults
 * of processor (e.g. "BlipImageProcessor") at size x size; path receives
 * the file's name for the caller's checks. 0: parsed; 1: no such file (a
 * note says the defaults are used, *pre unchanged); negative: error. */
int vl_model_preprocess_load(const char *dir, const char *who, const char *processor, int size,
                             vl_preprocess_cfg *pre, char *path, size_t path_size);

/* dir/config.json parsed (path receives its name, for messages); NULL +
 * vl_error when it cannot be read. */
cJSON *vl_model_config(const char *dir, char *path, size_t path_size);

/* The loader's own copy of dir, a context for the weights and the folder's
 * checkpoint: VL_OK, or an error (what was made is in the outputs, for the
 * model's free function). */
int vl_model_open(const char *dir, const char *who, char **dir_copy, vl_ctx **wctx,
                  vl_checkpoint **ck);

/* dir's tokenizer, or NULL with a note (the model then takes ids only). */
vl_tokenizer *vl_model_tokenizer(const char *dir, const char *who);

#endif
