#include "tasks/generate.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "tensor/ops.h"

/* Prompt positions per prefill step: each step holds one layer of
 * activations for this many rows (qwen_text drops the rest per layer); 128
 * keeps the Qwen3-0.6B prefill peak ~30 MB lower than 256 at the same CPU
 * time (the GEMMs are already at full rate at M = 128). */
#define PREFILL_CHUNK 128

/* Text streamed so far and how much of it has been handed out. */
typedef struct {
  char *buf;
  size_t len, cap, emitted;
} text_buf;

static int text_append(text_buf *t, const char *s, size_t n) {
  if (t->len + n + 1 > t->cap) {
    size_t cap = (t->len + n + 1) * 2;
    char *b = realloc(t->buf, cap);
    if (!b) return vl_error(VL_ERR_NOMEM, "generate: out of memory");
    t->buf = b;
    t->cap = cap;
  }
  memcpy(t->buf + t->len, s, n);
  t->len += n;
  t->buf[t->len] = 0;
  return VL_OK;
}

/* Earliest stop-string match at or after `from`; -1 when none. */
static long find_stop(const text_buf *t, const vl_generate_opts *o, size_t from) {
  long best = -1;
  for (int i = 0; i < o->n_stop; i++) {
    const char *s = o->stop[i];
    if (!s || !*s) continue;
    const char *hit = memmem(t->buf + from, t->len - from, s, strlen(s));
    if (hit && (best < 0 || hit - t->buf < best)) best = hit - t->buf;
  }
  return best;
}

/* Length of the longest tail of the text that could start a stop string:
 * that much is held back until the next token decides. */
static size_t held_back(const text_buf *t, const vl_generate_opts *o) {
  size_t hold = 0;
  for (int i = 0; i < o->n_stop; i++) {
    const char *s = o->stop[i];
    size_t n = s ? strlen(s) : 0;
    for (size_t k = n ? n - 1 : 0; k > hold; k--)
      if (k <= t->len - t->emitted && !memcmp(t->buf + t->len - k, s, k)) {
        hold = k;
        break;
      }
  }
  return hold;
}

/* One forward step; copies the last position's logits into out. */
static int step(vl_ctx *c, const vl_qwen_text *m, vl_kv_cache *kv, const int32_t *ids, int64_t n,
                bool round, float *out) {
  int64_t shape[1] = {n};
  vl_tensor *t = vl_wrap(c, VL_I32, 1, shape, (void *)ids);
  vl_qwen_fwd f = {.cache = kv, .last_only = true, .round_activations = round};
  vl_tensor *lg = vl_qwen_text_forward(c, m, t, &f);
  if (!lg) return vl_last_error_code();
  memcpy(out, lg->data, (size_t)m->cfg.vocab * sizeof *out);
  return VL_OK;
}

int vl_generate(const vl_qwen_text *m, const vl_tokenizer *tok, const int32_t *prompt,
                size_t n_prompt, const vl_generate_opts *opt, vl_generate_cb cb, void *user,
                int32_t **out_ids, size_t *n_out, vl_generate_stats *stats) {
  if (out_ids) *out_ids = NULL;
  if (n_out) *n_out = 0;
  if (!prompt || n_prompt == 0) return vl_error(VL_ERR_INVALID, "generate: empty prompt");
  if (opt->max_tokens <= 0)
    return vl_error(VL_ERR_INVALID, "generate: max tokens %d must be > 0", opt->max_tokens);
  if (opt->n_stop > 0 && !tok)
    return vl_error(VL_ERR_INVALID, "generate: stop strings need a tokenizer");
  const int64_t V = m->cfg.vocab;
  for (size_t i = 0; i < n_prompt; i++)
    if (prompt[i] < 0 || prompt[i] >= V)
      return vl_error(VL_ERR_INVALID, "generate: prompt token %zu is id %d, outside [0, %lld)", i,
                      prompt[i], (long long)V);
  size_t total = n_prompt + (size_t)opt->max_tokens;
  int rc = VL_OK;
  vl_generate_stats st = {.n_prompt = n_prompt};
  vl_sampler *smp = vl_sampler_new(&opt->sampling, V);
  vl_kv_cache *kv = smp ? vl_qwen_text_cache_new_typed(m, (int64_t)total, opt->kv_dtype) : NULL;
  vl_ctx *c = kv ? vl_ctx_new() : NULL;
  int32_t *seq = malloc(total * sizeof *seq);
  float *logits = malloc((size_t)V * sizeof *logits);
  text_buf text = {0};
  if (!smp || !kv) {
    rc = vl_last_error_code();
    goto done;
  }
  if (!c || !seq || !logits) {
    rc = vl_error(VL_ERR_NOMEM, "generate: out of memory");
    goto done;
  }
  memcpy(seq, prompt, n_prompt * sizeof *seq);

  /* prefill in chunks (progress for long prompts, bounded activations) */
  double t0 = vl_now_seconds();
  vl_progress pb;
  bool show = n_prompt > PREFILL_CHUNK;
  if (show) vl_progress_start(&pb, "prefill", (int64_t)n_prompt);
  for (size_t at = 0; at < n_prompt; at += PREFILL_CHUNK) {
    size_t n = n_prompt - at < PREFILL_CHUNK ? n_prompt - at : PREFILL_CHUNK;
    vl_ctx_reset(c, 0);
    if ((rc = step(c, m, kv, seq + at, (int64_t)n, opt->round_activations, logits))) goto done;
    if (show) vl_progress_update(&pb, (int64_t)(at + n), NULL);
  }
  if (show) vl_progress_end(&pb);
  double t1 = vl_now_seconds();
  st.prefill_s = t1 - t0;

  size_t n = n_prompt;
  st.reason = VL_STOP_MAX_TOKENS;
  for (int i = 0; i < opt->max_tokens; i++) {
    int32_t id = vl_sampler_sample(smp, logits, V, seq, n);
    if (id < 0) {
      rc = id;
      goto done;
    }
    seq[n++] = id;
    st.n_generated++;
    bool eos = !opt->ignore_eos && vl_qwen_is_eos(&m->cfg, id);
    const char *emit = NULL;
    size_t emit_len = 0;
    bool stop_hit = false;
    if (tok) {
      char *piece = NULL;
      size_t plen = 0;
      if ((rc = vl_tokenizer_decode(tok, &id, 1, 1, &piece, &plen))) goto done;
      size_t before = text.len;
      rc = text_append(&text, piece, plen);
      free(piece);
      if (rc) goto done;
      size_t longest = 0;
      for (int s = 0; s < opt->n_stop; s++)
        if (opt->stop[s] && strlen(opt->stop[s]) > longest) longest = strlen(opt->stop[s]);
      size_t from = before > longest ? before - longest : 0;
      if (from < text.emitted) from = text.emitted;
      long hit = opt->n_stop ? find_stop(&text, opt, from) : -1;
      size_t upto;
      if (hit >= 0) {
        upto = (size_t)hit;
        stop_hit = true;
      } else if (eos || i + 1 == opt->max_tokens) {
        upto = text.len; /* the run ends: nothing left to wait for */
      } else {
        upto = text.len - held_back(&text, opt);
      }
      if (upto < text.emitted) upto = text.emitted;
      emit = text.buf + text.emitted;
      emit_len = upto - text.emitted;
      text.emitted = upto;
    }
    if (cb && cb(user, id, emit, emit_len)) {
      st.reason = VL_STOP_CALLBACK;
      break;
    }
    if (stop_hit) {
      st.reason = VL_STOP_STRING;
      break;
    }
    if (eos) {
      st.reason = VL_STOP_EOS;
      break;
    }
    if (i + 1 == opt->max_tokens) break;
    vl_ctx_reset(c, 0);
    if ((rc = step(c, m, kv, &seq[n - 1], 1, opt->round_activations, logits))) goto done;
  }
  st.decode_s = vl_now_seconds() - t1;
  if (out_ids) {
    size_t g = n - n_prompt;
    *out_ids = malloc((g ? g : 1) * sizeof **out_ids);
    if (!*out_ids) {
      rc = vl_error(VL_ERR_NOMEM, "generate: out of memory");
      goto done;
    }
    memcpy(*out_ids, seq + n_prompt, g * sizeof **out_ids);
    if (n_out) *n_out = g;
  }
done:
  if (stats) *stats = st;
  free(text.buf);
  free(logits);
  free(seq);
  vl_ctx_free(c);
  vl_kv_free(kv);
  vl_sampler_free(smp);
  return rc;
}
