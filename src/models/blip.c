/* BLIP models: config, loading, preprocessing and the forward (see blip.h;
 * greedy generation is in blip_text.c). */
#include "models/blip.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/image.h"
#include "io/json.h"
#include "models/inputs.h"
#include "tensor/ops.h"

bool vl_blip_is_blip_config(const cJSON *j) {
  const char *a = vl_json_str(j, "architectures.0", "");
  return !strcmp(a, "BlipForConditionalGeneration") || !strcmp(a, "BlipForImageTextRetrieval");
}

int vl_blip_config_parse(const cJSON *j, const char *what, vl_blip_kind *kind, vl_vit_config *vcfg,
                         vl_blip_text_config *tcfg) {
  const char *arch = NULL;
  int rc = vl_json_need_str(j, "architectures.0", what, &arch);
  if (rc) return rc;
  if (!strcmp(arch, "BlipForConditionalGeneration")) {
    *kind = VL_BLIP_CAPTION;
  } else if (!strcmp(arch, "BlipForImageTextRetrieval")) {
    *kind = VL_BLIP_ITM;
  } else {
    return vl_error(VL_ERR_UNSUPPORTED,
                    "%s: architecture '%s' is not supported here (expected "
                    "BlipForConditionalGeneration or BlipForImageTextRetrieval)",
                    what, arch);
  }
  rc = vl_vit_config_parse_blip(vl_json_get(j, "vision_config"), what, vcfg);
  if (!rc) rc = vl_blip_text_config_parse(vl_json_get(j, "text_config"), what, tcfg);
  if (rc) return rc;
  if (tcfg->enc_hidden != vcfg->hidden)
    return vl_error(VL_ERR_FORMAT,
                    "%s: text_config.encoder_hidden_size %lld differs from "
                    "vision_config.hidden_size %lld",
                    what, (long long)tcfg->enc_hidden, (long long)vcfg->hidden);
  return VL_OK;
}

void vl_blip_free(vl_blip *m) {
  if (!m) return;
  vl_vit_release(&m->vision);
  free(m->layers);
  vl_tokenizer_free(m->tok);
  vl_ctx_free(m->wctx);
  vl_ckpt_close(m->ck);
  free(m->dir);
  free(m);
}

static int load_preprocess(vl_blip *m, const char *dir) {
  char path[4096];
  const int S = (int)m->vcfg.image_size;
  vl_preprocess_cfg_default(&m->pre);
  m->pre.size_width = m->pre.size_height = S;
  int rc =
      vl_model_preprocess_load(dir, "blip", "BlipImageProcessor", S, &m->pre, path, sizeof path);
  if (rc) return rc > 0 ? VL_OK : rc;
  int w = m->pre.do_center_crop ? m->pre.crop_width : m->pre.size_width;
  int h = m->pre.do_center_crop ? m->pre.crop_height : m->pre.size_height;
  if (!m->pre.do_resize || m->pre.resize_shortest_edge || w != S || h != S)
    return vl_error(VL_ERR_UNSUPPORTED,
                    "%s: images must be resized to %dx%d (vision_config.image_size); the "
                    "config gives %s %dx%d",
                    path, S, S, m->pre.do_resize ? "" : "no resize,", w, h);
  return VL_OK;
}

/* HF's precedence: generation_config.json, else the model config's
 * max_length (GenerationConfig.from_model_config reads the top level and
 * the decoder's text_config), else 20. */
static int load_max_length(vl_blip *m, const char *dir, const cJSON *config) {
  char path[4096];
  snprintf(path, sizeof path, "%s/generation_config.json", dir);
  int64_t v = -1;
  cJSON *g = vl_json_load(path);
  if (g) {
    v = vl_json_int(g, "max_length", -1);
    cJSON_Delete(g);
  } else if (vl_last_error_code() == VL_ERR_NOTFOUND) {
    vl_clear_error();
  } else {
    return vl_last_error_code(); /* there, but not JSON */
  }
  if (v < 0) v = vl_json_int(config, "max_length", -1);
  if (v < 0) v = vl_json_int(config, "text_config.max_length", -1);
  if (v < 0) v = VL_BLIP_DEFAULT_MAX_LENGTH;
  if (v < 2 || v > 4096)
    return vl_error(VL_ERR_FORMAT, "%s: max_length %lld: expected 2..4096", dir, (long long)v);
  m->max_length = v;
  return VL_OK;
}

vl_blip *vl_blip_load(const char *dir) { return vl_blip_load_ex(dir, false); }

vl_blip *vl_blip_load_ex(const char *dir, bool trainable) {
  char path[4096];
  cJSON *j = vl_model_config(dir, path, sizeof path);
  if (!j) return NULL;
  vl_blip *m = calloc(1, sizeof *m);
  int rc = m ? vl_blip_config_parse(j, path, &m->kind, &m->vcfg, &m->tcfg)
             : vl_error(VL_ERR_NOMEM, "blip: out of memory");
  if (rc) goto fail;
  if (vl_model_open(dir, "blip", &m->dir, &m->wctx, &m->ck)) goto fail;
  vl_weights w = {.ck = m->ck, .ctx = m->wctx, .trainable = trainable};
  if (vl_vit_load_blip(&w, &m->vcfg, "vision_model.", &m->vision)) goto fail;
  const int64_t C = m->tcfg.hidden, V = m->tcfg.vocab;
  if (m->kind == VL_BLIP_CAPTION) {
    if (vl_blip_text_load(&w, m, "text_decoder.bert.")) goto fail;
    const char *p = "text_decoder.cls.predictions.";
    if (!(m->tr_w = vl_weight2(&w, 0, C, C, "%stransform.dense.weight", p)) ||
        !(m->tr_b = vl_weight1(&w, 0, C, "%stransform.dense.bias", p)) ||
        !(m->tr_ln_w = vl_weight1(&w, 0, C, "%stransform.LayerNorm.weight", p)) ||
        !(m->tr_ln_b = vl_weight1(&w, 0, C, "%stransform.LayerNorm.bias", p)) ||
        !(m->dec_w = vl_weight2(&w, 0, V, C, "%sdecoder.weight", p)))
      goto fail;
    /* decoder.bias is tied to predictions.bias in HF; checkpoints hold either or both */
    m->dec_b = vl_weight1(&w, VL_W_OPTIONAL, V, "%sbias", p);
    if (!m->dec_b && vl_last_error()[0]) goto fail;
    if (!m->dec_b && !(m->dec_b = vl_weight1(&w, 0, V, "%sdecoder.bias", p))) goto fail;
  } else {
    if (vl_blip_text_load(&w, m, "text_encoder.")) goto fail;
    if (!(m->itm_w = vl_weight2(&w, 0, 2, C, "itm_head.weight")) ||
        !(m->itm_b = vl_weight1(&w, 0, 2, "itm_head.bias")))
      goto fail;
  }
  if (load_preprocess(m, dir)) goto fail;
  if (load_max_length(m, dir, j)) goto fail;
  m->tok = vl_model_tokenizer(dir, "blip");
  cJSON_Delete(j);
  return m;
fail:
  cJSON_Delete(j);
  vl_blip_free(m);
  return NULL;
}

/* ---- parameter list ---------------------------------------------------- */

typedef struct {
  vl_tensor **p;
  int64_t n, cap;
} plist;

static int padd(plist *l, vl_tensor *t) {
  if (!t) return VL_OK; /* optional slot */
  if (l->n == l->cap) {
    int64_t cap = l->cap ? 2 * l->cap : 128;
    vl_tensor **p = realloc(l->p, (size_t)cap * sizeof *p);
    if (!p) return vl_error(VL_ERR_NOMEM, "blip: out of memory");
    l->p = p;
    l->cap = cap;
  }
  l->p[l->n++] = t;
  return VL_OK;
}

static int padd_n(plist *l, vl_tensor *const *t, int n) {
  int rc = VL_OK;
  for (int i = 0; i < n && !rc; i++)
    rc = padd(l, t[i]);
  return rc;
}

static int padd_attn(plist *l, const vl_bert_attn *a) {
  vl_tensor *t[10] = {a->q_w, a->q_b, a->k_w, a->k_b,  a->v_w,
                      a->v_b, a->o_w, a->o_b, a->ln_w, a->ln_b};
  return padd_n(l, t, 10);
}

int vl_blip_params(const vl_blip *m, vl_tensor ***params, int64_t *n) {
  *params = NULL;
  *n = 0;
  plist l = {0};
  const vl_vit *v = &m->vision;
  vl_tensor *head[] = {v->cls, v->patch_w, v->patch_b, v->pos};
  int rc = padd_n(&l, head, 4);
  for (int64_t i = 0; i < v->cfg.n_layers && !rc; i++) {
    const vl_vit_layer *L = &v->layers[i];
    vl_tensor *t[12] = {L->qkv_w, L->qkv_b, L->o_w,   L->o_b,   L->ln1_w, L->ln1_b,
                        L->fc1_w, L->fc1_b, L->fc2_w, L->fc2_b, L->ln2_w, L->ln2_b};
    rc = padd_n(&l, t, 12);
  }
  vl_tensor *mid[] = {v->post_w, v->post_b, m->word, m->pos, m->emb_ln_w, m->emb_ln_b};
  if (!rc) rc = padd_n(&l, mid, 6);
  for (int64_t i = 0; i < m->tcfg.n_layers && !rc; i++) {
    const vl_bert_layer *L = &m->layers[i];
    rc = padd_attn(&l, &L->self);
    if (!rc) rc = padd_attn(&l, &L->cross);
    vl_tensor *t[6] = {L->i_w, L->i_b, L->o_w, L->o_b, L->ln_w, L->ln_b};
    if (!rc) rc = padd_n(&l, t, 6);
  }
  vl_tensor *tail[] = {m->tr_w,  m->tr_b,  m->tr_ln_w, m->tr_ln_b,
                       m->dec_w, m->dec_b, m->itm_w,   m->itm_b};
  if (!rc) rc = padd_n(&l, tail, 8);
  if (rc) {
    free(l.p);
    return rc;
  }
  *params = l.p;
  *n = l.n;
  return VL_OK;
}

void vl_blip_param_shape(const vl_blip *m, const vl_tensor *p, int *ndim, int64_t *shape) {
  *ndim = p->ndim;
  memcpy(shape, p->shape, sizeof p->shape);
  if (p == m->vision.patch_w) { /* the conv's (D, C, P, P) */
    *ndim = 4;
    shape[1] = m->vcfg.channels;
    shape[2] = shape[3] = m->vcfg.patch_size;
  }
}

vl_tensor *vl_blip_pixels(vl_ctx *c, const vl_blip *m, const vl_image *img, vl_image **resized_u8) {
  return vl_model_pixels(c, &m->pre, img, "blip", resized_u8);
}

int vl_blip_prompt_ids(const vl_blip *m, const char *text, int64_t **ids, int64_t *n) {
  *ids = NULL;
  *n = 0;
  if (!m->tok)
    return vl_error(VL_ERR_NOTFOUND, "%s: no tokenizer (vocab.txt) to encode the prompt", m->dir);
  int rc = vl_model_encode(m->tok, text, "blip", ids, n);
  if (rc || m->kind != VL_BLIP_CAPTION) return rc;
  if (*n >= 2) (*n)--; /* drop [SEP] */
  if (*n > 0) (*ids)[0] = m->tcfg.bos;
  return VL_OK;
}

int vl_blip_forward(vl_ctx *c, const vl_blip *m, vl_blip_run *r) {
  if (!r->pixels || !r->ids) return vl_error(VL_ERR_INVALID, "blip: pixels and ids are required");
  if (vl_ctx_recording(c)) r->pixels->requires_grad = true;
  vl_vit_fwd vo = {.layer_in = r->vision_layer_in, .attn = r->vision_attn};
  r->vision_out = vl_vit_forward(c, &m->vision, r->pixels, &vo);
  if (!r->vision_out) return vl_last_error_code();
  const bool caption = m->kind == VL_BLIP_CAPTION;
  r->hidden =
      vl_blip_text_forward(c, m, r->ids, r->vision_out, caption, r->self_attn, r->cross_attn);
  if (!r->hidden) return vl_last_error_code();
  if (caption) {
    r->logits = vl_blip_lm_head(c, m, r->hidden);
    if (!r->logits) return vl_last_error_code();
  } else {
    int64_t s2[2] = {1, 2};
    r->itm_logits =
        vl_reshape(c, vl_linear(c, vl_slice(c, r->hidden, 1, 0, 1), m->itm_w, m->itm_b), 2, s2);
    if (!r->itm_logits) return vl_last_error_code();
  }
  return VL_OK;
}

int vl_blip_decode(const vl_blip *m, const int64_t *ids, int64_t n, char **text) {
  *text = NULL;
  if (!m->tok) return vl_error(VL_ERR_NOTFOUND, "%s: no tokenizer (vocab.txt) to decode", m->dir);
  int32_t *t = malloc((size_t)(n > 0 ? n : 1) * sizeof *t);
  if (!t) return vl_error(VL_ERR_NOMEM, "blip: out of memory");
  for (int64_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] > INT32_MAX) {
      free(t);
      return vl_error(VL_ERR_INVALID, "blip: token id %lld is out of range", (long long)ids[i]);
    }
    t[i] = (int32_t)ids[i];
  }
  size_t len = 0;
  int rc = vl_tokenizer_decode(m->tok, t, (size_t)n, 1, text, &len);
  free(t);
  return rc;
}
