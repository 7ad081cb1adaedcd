/* Internal to src/api: what the public handles hold. */
#ifndef VL_API_INTERNAL_H
#define VL_API_INTERNAL_H

#include "io/image.h"
#include "models/blip.h"
#include "models/qwen_text.h"
#include "text/tokenizer.h"
#include "vlens.h"

struct vlens_image {
  vl_image *img;
};

struct vlens_model {
  vlens_kind kind;
  char dir[4096];
  char name[256];
  double ms_load;
  vl_blip *blip;      /* VLENS_KIND_CAPTIONER */
  vl_qwen_text *qwen; /* VLENS_KIND_LLM */
  vl_tokenizer *tok;  /* VLENS_KIND_LLM (BLIP keeps its own in blip->tok) */
};

/* VL_OK when m is non-NULL and of kind k; else VL_ERR_INVALID naming fn. */
int vl_api_need(const vlens_model *m, vlens_kind k, const char *fn);

#endif
