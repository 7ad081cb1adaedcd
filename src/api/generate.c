/* Public text generation over tasks/generate.h: the prompt is tokenized as
 * is (no chat template), the text streams through the caller's callback and
 * is collected for *out. */
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "base/error.h"
#include "tasks/generate.h"

void vlens_gen_opts_init(vlens_gen_opts *o) {
  if (!o) return;
  vl_sampler_params s = vl_sampler_defaults();
  *o = (vlens_gen_opts){.max_tokens = 128,
                        .temperature = s.temperature,
                        .top_k = s.top_k,
                        .top_p = s.top_p,
                        .min_p = s.min_p,
                        .repeat_penalty = s.repeat_penalty,
                        .seed = s.seed};
}

typedef struct {
  vlens_text_cb cb;
  void *user;
  char *buf; /* NULL when the caller wants no *out */
  size_t len, cap;
  int oom;
} sink;

static int piece(void *user, int32_t id, const char *text, size_t len) {
  sink *s = user;
  if (s->buf && len) {
    if (s->len + len + 1 > s->cap) {
      size_t cap = (s->len + len + 1) * 2;
      char *p = realloc(s->buf, cap);
      if (!p) return s->oom = 1;
      s->buf = p;
      s->cap = cap;
    }
    memcpy(s->buf + s->len, text, len);
    s->len += len;
    s->buf[s->len] = 0;
  }
  return s->cb ? s->cb(s->user, text ? text : "", text ? len : 0) : 0;
}

int vlens_generate(vlens_model *m, const char *prompt, const vlens_gen_opts *opts, vlens_text_cb cb,
                   void *user, char **out) {
  const char *fn = "vlens_generate";
  if (out) *out = NULL;
  int rc = vl_api_need(m, VLENS_KIND_LLM, fn);
  if (rc) return rc;
  if (!prompt || !*prompt) return vl_error(VL_ERR_INVALID, "%s: empty prompt", fn);
  vlens_gen_opts d;
  if (!opts) {
    vlens_gen_opts_init(&d);
    opts = &d;
  }
  if (opts->n_stop < 0 || (opts->n_stop > 0 && !opts->stop))
    return vl_error(VL_ERR_INVALID, "%s: n_stop %d without stop strings", fn, opts->n_stop);
  for (int i = 0; i < opts->n_stop; i++)
    if (!opts->stop[i] || !*opts->stop[i])
      return vl_error(VL_ERR_INVALID, "%s: stop string %d is empty", fn, i);
  vl_generate_opts g = {.sampling = {.temperature = opts->temperature,
                                     .top_k = opts->top_k,
                                     .top_p = opts->top_p,
                                     .min_p = opts->min_p,
                                     .repeat_penalty = opts->repeat_penalty,
                                     .seed = opts->seed},
                        .max_tokens = opts->max_tokens,
                        .stop = opts->stop,
                        .n_stop = opts->n_stop,
                        .ignore_eos = opts->ignore_eos != 0,
                        .kv_dtype = opts->kv_f16 ? VL_F16 : VL_F32,
                        .round_activations = opts->round_activations != 0};
  int32_t *ids = NULL;
  size_t n_ids = 0;
  rc = vl_tokenizer_encode(m->tok, prompt, strlen(prompt), 0, &ids, &n_ids);
  if (rc) return vl_error_context("%s: tokenize", fn);
  sink s = {.cb = cb, .user = user};
  if (out && !(s.buf = calloc(1, s.cap = 64))) {
    free(ids);
    return vl_error(VL_ERR_NOMEM, "%s: out of memory", fn);
  }
  rc = vl_generate(m->qwen, m->tok, ids, n_ids, &g, piece, &s, NULL, NULL, NULL);
  free(ids);
  if (!rc && s.oom) rc = vl_error(VL_ERR_NOMEM, "%s: out of memory collecting the text", fn);
  if (rc) {
    free(s.buf);
    return rc;
  }
  if (out) *out = s.buf;
  return VL_OK;
}
