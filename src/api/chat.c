/* Public multi-turn chat over tasks/chat_session.h (thinking off). */
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "base/error.h"
#include "tasks/chat_session.h"

struct vlens_chat {
  vl_chat_session *s;
};

typedef struct {
  vlens_text_cb cb;
  void *user;
} relay;

static int piece(void *user, int32_t id, const char *text, size_t len) {
  relay *r = user;
  return r->cb ? r->cb(r->user, text ? text : "", text ? len : 0) : 0;
}

vlens_chat *vlens_chat_new(vlens_model *m, const char *system, const vlens_gen_opts *opts) {
  if (vl_api_need(m, VLENS_KIND_LLM, "vlens_chat_new")) return NULL;
  vl_chat_template t;
  if (vl_chat_detect_folder(m->dir, &t)) return NULL;
  vl_chat_session_opts o = vl_chat_session_default_opts();
  o.system = system;
  o.enable_thinking = 0;
  if (opts) {
    o.gen.max_tokens = opts->max_tokens;
    o.gen.ignore_eos = opts->ignore_eos != 0;
    o.gen.kv_dtype = opts->kv_f16 ? VL_F16 : VL_F32;
    o.gen.round_activations = opts->round_activations != 0;
    o.gen.sampling = (vl_sampler_params){.temperature = opts->temperature,
                                         .top_k = opts->top_k,
                                         .top_p = opts->top_p,
                                         .min_p = opts->min_p,
                                         .repeat_penalty = opts->repeat_penalty,
                                         .seed = opts->seed};
  }
  if (o.gen.max_tokens <= 0) {
    vl_error(VL_ERR_INVALID, "vlens_chat_new: max_tokens %d must be > 0", o.gen.max_tokens);
    return NULL;
  }
  vlens_chat *c = calloc(1, sizeof *c);
  if (!c) {
    vl_error(VL_ERR_NOMEM, "vlens_chat_new: out of memory");
    return NULL;
  }
  if (!(c->s = vl_chat_session_new(m->qwen, m->tok, t, &o))) {
    free(c);
    return NULL;
  }
  return c;
}

int vlens_chat_send(vlens_chat *c, const char *user_text, vlens_text_cb cb, void *user,
                    char **reply) {
  if (reply) *reply = NULL;
  if (!c) return vl_error(VL_ERR_INVALID, "vlens_chat_send: chat is NULL");
  if (!user_text) return vl_error(VL_ERR_INVALID, "vlens_chat_send: message is NULL");
  relay r = {cb, user};
  return vl_chat_session_send(c->s, user_text, piece, &r, reply, NULL);
}

void vlens_chat_reset(vlens_chat *c) {
  if (c) vl_chat_session_reset(c->s);
}

void vlens_chat_free(vlens_chat *c) {
  if (!c) return;
  vl_chat_session_free(c->s);
  free(c);
}
