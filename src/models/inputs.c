/* Model inputs and folder pieces shared by BLIP, CLIP and Qwen-VL (see inputs.h). */
#include "models/inputs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "io/file.h"
#include "io/json.h"

int vl_model_image_chw(const vl_preprocess_cfg *pre, const vl_image *img, const char *who,
                       float **chw, int *w, int *h, vl_image **resized_u8) {
  *chw = NULL;
  if (resized_u8) *resized_u8 = NULL;
  if (!img || !img->pixels || (img->channels != 1 && img->channels != 3 && img->channels != 4))
    return vl_error(VL_ERR_INVALID, "%s: image must have 1, 3 or 4 channels", who);
  vl_image *rgb = vl_image_to_rgb(img);
  if (!rgb) return vl_last_error_code();
  int rc = vl_preprocess(pre, rgb, chw, w, h, resized_u8);
  vl_image_free(rgb);
  return rc;
}

vl_tensor *vl_model_pixels(vl_ctx *c, const vl_preprocess_cfg *pre, const vl_image *img,
                           const char *who, vl_image **resized_u8) {
  float *px = NULL;
  int w = 0, h = 0;
  if (vl_model_image_chw(pre, img, who, &px, &w, &h, resized_u8)) return NULL;
  int64_t shape[4] = {1, 3, h, w};
  vl_tensor *t = vl_new_uninit(c, VL_F32, 4, shape);
  if (t) memcpy(t->data, px, (size_t)t->numel * sizeof(float));
  free(px);
  return t;
}

int vl_model_encode(const vl_tokenizer *tok, const char *text, const char *who, int64_t **ids,
                    int64_t *n) {
  *ids = NULL;
  *n = 0;
  int32_t *t = NULL;
  size_t nt = 0;
  int rc = vl_tokenizer_encode(tok, text, strlen(text), 1, &t, &nt);
  if (rc) return rc;
  *ids = malloc((nt ? nt : 1) * sizeof **ids);
  if (!*ids) {
    free(t);
    return vl_error(VL_ERR_NOMEM, "%s: out of memory", who);
  }
  for (size_t i = 0; i < nt; i++)
    (*ids)[i] = t[i];
  free(t);
  *n = (int64_t)nt;
  return VL_OK;
}

int vl_model_preprocess_load(const char *dir, const char *who, const char *processor, int size,
                             vl_preprocess_cfg *pre, char *path, size_t path_size) {
  snprintf(path, path_size, "%s/preprocessor_config.json", dir);
  char *text = vl_read_text_file(path, 1 << 24);
  if (!text) {
    vl_log("%s: no %s; using %s defaults at %dx%d", who, path, processor, size, size);
    return 1;
  }
  int rc = vl_preprocess_cfg_parse(pre, text, path);
  free(text);
  return rc;
}

cJSON *vl_model_config(const char *dir, char *path, size_t path_size) {
  snprintf(path, path_size, "%s/config.json", dir);
  return vl_json_load(path);
}

int vl_model_open(const char *dir, const char *who, char **dir_copy, vl_ctx **wctx,
                  vl_checkpoint **ck) {
  if (!(*dir_copy = strdup(dir)) || !(*wctx = vl_ctx_new()))
    return vl_error(VL_ERR_NOMEM, "%s: out of memory", who);
  if ((*ck = vl_ckpt_open(dir))) return VL_OK;
  return vl_last_error_code() ? vl_last_error_code() : VL_ERR_IO;
}

vl_tokenizer *vl_model_tokenizer(const char *dir, const char *who) {
  vl_tokenizer *tok = vl_tokenizer_load(dir);
  if (!tok) {
    vl_log("%s: no tokenizer in %s (%s); --ids only", who, dir, vl_last_error());
    vl_clear_error();
  }
  return tok;
}
