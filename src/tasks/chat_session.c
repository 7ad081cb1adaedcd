#include "tasks/chat_session.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "tensor/ops.h"
#include "text/reasoning.h"

#define PREFILL_CHUNK 256

struct vl_chat_session {
  const vl_qwen_text *m;
  const vl_tokenizer *tok;
  vl_chat_template tmpl;
  vl_chat_session_opts o;
  char *system;
  vl_chat_message *msgs; /* strings owned (role points at literals) */
  size_t n_msgs, cap_msgs;
  vl_kv_cache *kv;
  int32_t *cached; /* the tokens whose keys/values the cache holds */
  size_t n_cached;
  char *last_prompt;
  size_t reused;
};

vl_chat_session_opts vl_chat_session_default_opts(void) {
  vl_chat_session_opts o;
  memset(&o, 0, sizeof o);
  o.gen.sampling = vl_sampler_defaults();
  o.gen.max_tokens = 512;
  o.enable_thinking = 0;
  return o;
}

static void free_msg(vl_chat_message *m) {
  free((char *)m->content);
  free((char *)m->reasoning_content);
}

static int push_msg(vl_chat_session *s, const char *role, const char *content,
                    const char *reasoning) {
  if (s->n_msgs == s->cap_msgs) {
    size_t cap = s->cap_msgs ? s->cap_msgs * 2 : 8;
    vl_chat_message *p = realloc(s->msgs, cap * sizeof *p);
    if (!p) return vl_error(VL_ERR_NOMEM, "chat: out of memory");
    s->msgs = p;
    s->cap_msgs = cap;
  }
  vl_chat_message *m = &s->msgs[s->n_msgs];
  m->role = role;
  m->content = strdup(content);
  m->reasoning_content = reasoning ? strdup(reasoning) : NULL;
  if (!m->content || (reasoning && !m->reasoning_content)) {
    free_msg(m);
    return vl_error(VL_ERR_NOMEM, "chat: out of memory");
  }
  s->n_msgs++;
  return VL_OK;
}

static void pop_msg(vl_chat_session *s) {
  if (s->n_msgs) free_msg(&s->msgs[--s->n_msgs]);
}

vl_chat_session *vl_chat_session_new(const vl_qwen_text *m, const vl_tokenizer *tok,
                                     vl_chat_template t, const vl_chat_session_opts *o) {
  if (!m || !tok) {
    vl_error(VL_ERR_INVALID, "chat: a model and its tokenizer are required");
    return NULL;
  }
  vl_chat_session_opts opt = o ? *o : vl_chat_session_default_opts();
  if (opt.gen.max_tokens <= 0) {
    vl_error(VL_ERR_INVALID, "chat: max tokens %d must be > 0", opt.gen.max_tokens);
    return NULL;
  }
  if (opt.context <= 0) opt.context = m->cfg.max_pos < 8192 ? m->cfg.max_pos : 8192;
  if (opt.context <= 1) {
    vl_error(VL_ERR_INVALID, "chat: context of %lld tokens is too small", (long long)opt.context);
    return NULL;
  }
  vl_sampler *probe = vl_sampler_new(&opt.gen.sampling, m->cfg.vocab); /* checks the params */
  if (!probe) return NULL;
  vl_sampler_free(probe);
  vl_chat_session *s = calloc(1, sizeof *s);
  if (!s) {
    vl_error(VL_ERR_NOMEM, "chat: out of memory");
    return NULL;
  }
  s->m = m;
  s->tok = tok;
  s->tmpl = t;
  s->o = opt;
  s->kv = vl_qwen_text_cache_new_typed(m, opt.context, opt.gen.kv_dtype);
  s->cached = malloc((size_t)opt.context * sizeof *s->cached);
  s->last_prompt = strdup("");
  if (opt.system) s->system = strdup(opt.system);
  if (!s->kv || !s->cached || !s->last_prompt || (opt.system && !s->system)) {
    if (s->kv) vl_error(VL_ERR_NOMEM, "chat: out of memory");
    vl_chat_session_free(s);
    return NULL;
  }
  s->o.system = s->system;
  if (s->system && push_msg(s, "system", s->system, NULL)) {
    vl_chat_session_free(s);
    return NULL;
  }
  return s;
}

void vl_chat_session_free(vl_chat_session *s) {
  if (!s) return;
  while (s->n_msgs)
    pop_msg(s);
  free(s->msgs);
  vl_kv_free(s->kv);
  free(s->cached);
  free(s->last_prompt);
  free(s->system);
  free(s);
}

void vl_chat_session_reset(vl_chat_session *s) {
  if (!s) return;
  while (s->n_msgs > (s->system ? 1u : 0u))
    pop_msg(s);
  vl_kv_clear(s->kv);
  s->n_cached = 0;
  s->reused = 0;
}

const vl_chat_message *vl_chat_session_messages(const vl_chat_session *s, size_t *n) {
  *n = s ? s->n_msgs : 0;
  return s ? s->msgs : NULL;
}

const char *vl_chat_session_last_prompt(const vl_chat_session *s) {
  return s && s->last_prompt ? s->last_prompt : "";
}

size_t vl_chat_session_reused(const vl_chat_session *s) { return s ? s->reused : 0; }

/* Feeds ids into the cache (recording them) and leaves the last position's
 * logits in out. */
static int feed(vl_chat_session *s, vl_ctx *c, const int32_t *ids, size_t n, float *out) {
  for (size_t at = 0; at < n; at += PREFILL_CHUNK) {
    size_t k = n - at < PREFILL_CHUNK ? n - at : PREFILL_CHUNK;
    vl_ctx_reset(c, 0);
    int64_t shape[1] = {(int64_t)k};
    vl_tensor *t = vl_wrap(c, VL_I32, 1, shape, (void *)(ids + at));
    vl_qwen_fwd f = {
        .cache = s->kv, .last_only = true, .round_activations = s->o.gen.round_activations};
    vl_tensor *lg = t ? vl_qwen_text_forward(c, s->m, t, &f) : NULL;
    if (!lg) {
      /* the cache may hold part of this chunk: forget it all */
      vl_kv_clear(s->kv);
      s->n_cached = 0;
      return vl_last_error_code();
    }
    memcpy(s->cached + s->n_cached, ids + at, k * sizeof *ids);
    s->n_cached += k;
    memcpy(out, lg->data, (size_t)s->m->cfg.vocab * sizeof *out);
  }
  return VL_OK;
}

typedef struct {
  char *buf;
  size_t len, cap;
} sbuf;

static int sbuf_add(sbuf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = (b->len + n + 1) * 2;
    char *p = realloc(b->buf, cap);
    if (!p) return vl_error(VL_ERR_NOMEM, "chat: out of memory");
    b->buf = p;
    b->cap = cap;
  }
  memcpy(b->buf + b->len, s, n);
  b->len += n;
  b->buf[b->len] = 0;
  return VL_OK;
}

/* Prompt ids -> prefill what the cache lacks, then decode. */
static int run_turn(vl_chat_session *s, const int32_t *ids, size_t n, vl_generate_cb cb, void *user,
                    sbuf *text, vl_generate_stats *st) {
  const vl_qwen_text *m = s->m;
  const int64_t V = m->cfg.vocab;
  if (n == 0) return vl_error(VL_ERR_INVALID, "chat: the prompt has no tokens");
  if ((int64_t)n >= s->o.context)
    return vl_error(VL_ERR_LIMIT,
                    "chat: the conversation is %zu tokens, the context holds %lld; /reset to start "
                    "over",
                    n, (long long)s->o.context);
  for (size_t i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= V)
      return vl_error(VL_ERR_INVALID, "chat: prompt token %zu is id %d, outside [0, %lld)", i,
                      ids[i], (long long)V);
  /* common prefix with the cache; at least one token is fed for logits */
  size_t keep = 0;
  while (keep < n && keep < s->n_cached && s->cached[keep] == ids[keep])
    keep++;
  if (keep == n) keep--;
  int rc = vl_kv_truncate(s->kv, (int64_t)keep);
  if (rc) return rc;
  s->n_cached = keep;
  s->reused = keep;
  size_t room = (size_t)s->o.context - n;
  int max_tokens = s->o.gen.max_tokens;
  if ((size_t)max_tokens > room) max_tokens = (int)room;

  vl_sampler *smp = vl_sampler_new(&s->o.gen.sampling, V);
  vl_ctx *c = smp ? vl_ctx_new() : NULL;
  float *logits = malloc((size_t)V * sizeof *logits);
  int32_t *hist = malloc((n + (size_t)max_tokens) * sizeof *hist);
  if (!smp) {
    rc = vl_last_error_code();
    goto done;
  }
  if (!c || !logits || !hist) {
    rc = vl_error(VL_ERR_NOMEM, "chat: out of memory");
    goto done;
  }
  memcpy(hist, ids, n * sizeof *ids);
  double t0 = vl_now_seconds();
  if ((rc = feed(s, c, ids + keep, n - keep, logits))) goto done;
  double t1 = vl_now_seconds();
  st->n_prompt = n;
  st->prefill_s = t1 - t0;
  st->reason = VL_STOP_MAX_TOKENS;
  size_t nh = n;
  for (int i = 0; i < max_tokens; i++) {
    int32_t id = vl_sampler_sample(smp, logits, V, hist, nh);
    if (id < 0) {
      rc = id;
      goto done;
    }
    hist[nh++] = id;
    st->n_generated++;
    bool eos = !s->o.gen.ignore_eos && vl_qwen_is_eos(&m->cfg, id);
    char *piece = NULL;
    size_t plen = 0;
    if ((rc = vl_tokenizer_decode(s->tok, &id, 1, 1, &piece, &plen))) goto done;
    rc = sbuf_add(text, piece, plen);
    if (!rc && cb && cb(user, id, piece, plen)) st->reason = VL_STOP_CALLBACK;
    free(piece);
    if (rc) goto done;
    if (st->reason == VL_STOP_CALLBACK) break;
    if (eos) {
      st->reason = VL_STOP_EOS;
      break;
    }
    if (i + 1 == max_tokens) break;
    if ((rc = feed(s, c, &id, 1, logits))) goto done;
  }
  st->decode_s = vl_now_seconds() - t1;
done:
  free(hist);
  free(logits);
  vl_ctx_free(c);
  vl_sampler_free(smp);
  return rc;
}

int vl_chat_session_send(vl_chat_session *s, const char *user_text, vl_generate_cb cb, void *user,
                         char **reply, vl_generate_stats *stats) {
  if (reply) *reply = NULL;
  vl_generate_stats st = {0};
  if (stats) *stats = st;
  if (!s || !user_text) return vl_error(VL_ERR_INVALID, "chat: no session or message given");
  int rc = push_msg(s, "user", user_text, NULL);
  if (rc) return rc;
  vl_chat_options co = {1, s->o.enable_thinking};
  char *prompt = vl_chat_render(s->tmpl, s->msgs, s->n_msgs, &co);
  if (!prompt) {
    pop_msg(s);
    return vl_last_error_code();
  }
  free(s->last_prompt);
  s->last_prompt = prompt;
  int32_t *ids = NULL;
  size_t n = 0;
  sbuf text = {0};
  vl_reasoning r = {0};
  rc = vl_tokenizer_encode(s->tok, prompt, strlen(prompt), 0, &ids, &n);
  if (!rc) rc = run_turn(s, ids, n, cb, user, &text, &st);
  if (!rc) rc = sbuf_add(&text, "", 0); /* a NUL-terminated buffer even when empty */
  if (!rc) rc = vl_reasoning_split(text.buf, text.len, &r);
  if (!rc) rc = push_msg(s, "assistant", r.answer, r.has_think ? r.reasoning : NULL);
  if (rc) {
    pop_msg(s); /* the user message */
  } else if (reply) {
    *reply = text.buf;
    text.buf = NULL;
  }
  if (stats) *stats = st;
  vl_reasoning_free(&r);
  free(text.buf);
  free(ids);
  return rc;
}

/* ---- think filter ------------------------------------------------------ */

/* Longest tail of s[0..n) that is a proper prefix of tag. */
static size_t partial_tail(const char *s, size_t n, const char *tag) {
  size_t tl = strlen(tag);
  for (size_t k = tl - 1; k > 0; k--)
    if (k <= n && !memcmp(s + n - k, tag, k)) return k;
  return 0;
}

size_t vl_think_filter_feed(vl_think_filter *f, const char *text, size_t len, int flush,
                            char *out) {
  char *buf = malloc(f->n_hold + len + 1);
  if (!buf) return 0;
  memcpy(buf, f->hold, f->n_hold);
  if (len) memcpy(buf + f->n_hold, text, len);
  size_t n = f->n_hold + len, at = 0, w = 0;
  f->n_hold = 0;
  while (at < n) {
    const char *tag = f->in_think ? "</think>" : "<think>";
    size_t tl = strlen(tag);
    const char *hit = memmem(buf + at, n - at, tag, tl);
    size_t upto = hit ? (size_t)(hit - buf) : n;
    size_t hold = 0;
    if (!hit && !flush) hold = partial_tail(buf + at, n - at, tag);
    if (!f->in_think) {
      for (size_t i = at; i < upto - hold; i++) {
        if (!f->answer_started && isspace((unsigned char)buf[i])) continue;
        f->answer_started = 1;
        out[w++] = buf[i];
      }
    }
    if (hit) {
      f->in_think = !f->in_think;
      at = upto + tl;
    } else {
      memcpy(f->hold, buf + upto - hold, hold);
      f->n_hold = hold;
      at = n;
    }
  }
  free(buf);
  return w;
}
