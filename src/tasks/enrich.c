#include "tasks/enrich.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "io/image.h"
#include "io/json.h"
#include "tasks/generate.h"
#include "tensor/ops.h"
#include "text/reasoning.h"

#define CAPTION_MAX_LENGTH 40

vl_enrich_run_opts vl_enrich_run_defaults(void) {
  vl_enrich_run_opts o;
  memset(&o, 0, sizeof o);
  o.prompt = vl_enrich_default_options();
  return o;
}

/* ---- keywords from a Shapes World manifest ----------------------------- */

int vl_enrich_manifest_keywords(const char *image_path, vl_enrich_lang lang, vl_word_list *out,
                                int *found) {
  memset(out, 0, sizeof *out);
  *found = 0;
  const char *slash = strrchr(image_path, '/');
  const char *base = slash ? slash + 1 : image_path;
  size_t dir_len = slash ? (size_t)(slash - image_path) : 0;
  char *path = malloc(dir_len + 32);
  if (!path) return vl_error(VL_ERR_NOMEM, "enrich: out of memory");
  if (slash)
    snprintf(path, dir_len + 32, "%.*s/manifest.jsonl", (int)dir_len, image_path);
  else
    strcpy(path, "manifest.jsonl");
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    free(path);
    if (e == ENOENT) return VL_OK;
    return vl_error(VL_ERR_IO, "%.*s/manifest.jsonl: %s", (int)dir_len, image_path, strerror(e));
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int rc = VL_OK, lineno = 0;
  while (!*found && (len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    if (!strstr(line, base)) continue; /* cheap filter before parsing */
    cJSON *j = vl_json_parse(line, (size_t)len, path);
    if (!j) {
      rc = vl_error_context("line %d", lineno);
      break;
    }
    const char *img = vl_json_str(j, "image", NULL);
    if (img && !strcmp(img, base)) {
      rc = vl_word_list_from_manifest_lang(line, (size_t)len, lang == VL_ENRICH_ZH, out);
      if (rc < 0)
        vl_error_context("%s: line %d", path, lineno);
      else
        *found = 1;
    }
    cJSON_Delete(j);
    if (rc < 0) break;
  }
  if (rc >= 0 && ferror(f)) rc = vl_error(VL_ERR_IO, "%s: read error", path);
  free(line);
  fclose(f);
  free(path);
  return rc < 0 ? rc : VL_OK;
}

/* ---- pipeline ---------------------------------------------------------- */

void vl_enrich_result_free(vl_enrich_result *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n && r->items; i++) {
    vl_enrich_item *it = &r->items[i];
    free(it->image);
    free(it->caption);
    vl_enrich_elements_free(&it->elements);
    free(it->prompt);
    free(it->description);
    free(it->reasoning);
    vl_word_list_free(&it->keywords);
  }
  free(r->items);
  memset(r, 0, sizeof *r);
}

static int caption_one(const vl_blip *m, const vl_image *img, const vl_enrich_run_opts *o,
                       const char *path, char **text) {
  vl_ctx *c = vl_ctx_new();
  if (!c) return vl_error(VL_ERR_NOMEM, "enrich: out of memory");
  int64_t *pids = NULL, np = 0, *seq = NULL, ns = 0;
  int rc = vl_blip_prompt_ids(m, o->caption_prompt ? o->caption_prompt : "", &pids, &np);
  vl_tensor *px = rc ? NULL : vl_blip_pixels(c, m, img, NULL);
  if (!rc && !px) rc = vl_last_error_code();
  int64_t maxlen = o->caption_max_length > 0 ? o->caption_max_length : CAPTION_MAX_LENGTH;
  if (!rc && maxlen <= np) maxlen = np + 1;
  if (!rc) rc = vl_blip_generate(m, px, pids, np, maxlen, &seq, &ns);
  if (!rc) rc = vl_blip_decode(m, seq, ns, text);
  if (rc) vl_error_context("enrich: %s: captioner", path);
  free(seq);
  free(pids);
  vl_ctx_free(c);
  return rc;
}

/* Bytes of the valid UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  size_t k = s[0] < 0x80             ? 1
             : (s[0] & 0xe0) == 0xc0 ? 2
             : (s[0] & 0xf0) == 0xe0 ? 3
             : (s[0] & 0xf8) == 0xf0 ? 4
                                     : 0;
  if (!k || k > n || (k == 2 && s[0] < 0xc2) || (k == 4 && s[0] > 0xf4)) return 0;
  for (size_t i = 1; i < k; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  if (k == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))) return 0;
  if (k == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))) return 0;
  return k;
}

/* A byte-level model may stop inside a character or emit stray bytes: they
 * become U+FFFD, so descriptions are valid UTF-8 (JSON output). malloc'd. */
static char *utf8_clean(const char *text) {
  size_t n = strlen(text), w = 0;
  char *out = malloc(n * 3 + 1);
  if (!out) return NULL;
  for (size_t i = 0; i < n;) {
    size_t k = utf8_seq((const unsigned char *)text + i, n - i);
    if (k) {
      memcpy(out + w, text + i, k);
      w += k;
      i += k;
    } else {
      memcpy(out + w, "\xef\xbf\xbd", 3);
      w += 3;
      i++;
    }
  }
  out[w] = 0;
  return out;
}

typedef struct {
  char *buf;
  size_t len, cap;
} collect;

static int collect_text(void *user, int32_t id, const char *text, size_t len) {
  collect *b = user;
  if (!len) return 0;
  if (b->len + len + 1 > b->cap) {
    size_t cap = (b->len + len + 1) * 2;
    char *p = realloc(b->buf, cap);
    if (!p) return 1; /* stops; the caller sees the short text as out of memory */
    b->buf = p;
    b->cap = cap;
  }
  memcpy(b->buf + b->len, text, len);
  b->len += len;
  b->buf[b->len] = 0;
  return 0;
}

/* Token budget for a call describing k images: the upper length anchor
 * with room (about 2 tokens per English word, 1.5 per CJK character), item
 * markers, and 1024 more for a think block. */
static int auto_max_tokens(const vl_enrich_run_opts *o, size_t k) {
  int per = o->prompt.lang == VL_ENRICH_ZH ? o->prompt.max_words * 3 / 2 : o->prompt.max_words * 2;
  int total = (int)k * (per + 24) + 32;
  if (o->prompt.enable_thinking) total += 1024;
  return total;
}

/* One LLM call over captions[0..k) -> answer split into k descriptions
 * (items[i].description, .reasoning, .prompt). */
static int llm_call(const vl_qwen_text *llm, const vl_tokenizer *tok, vl_chat_template t,
                    const vl_enrich_run_opts *o, const char *const *captions, size_t k,
                    vl_enrich_item *items, vl_enrich_result *res) {
  char *prompt = vl_enrich_chat_prompt((int)t, captions, k, &o->prompt);
  if (!prompt) return vl_last_error_code();
  int32_t *ids = NULL;
  size_t n_ids = 0;
  collect text = {0};
  vl_reasoning r = {0};
  char *split[VL_ENRICH_ITEMS_MAX] = {0};
  int rc = vl_tokenizer_encode(tok, prompt, strlen(prompt), 0, &ids, &n_ids);
  vl_generate_opts g = {.max_tokens = o->max_tokens > 0 ? o->max_tokens : auto_max_tokens(o, k)};
  g.sampling = vl_sampler_defaults();
  g.sampling.temperature = o->prompt.temperature;
  g.sampling.top_p = o->prompt.top_p;
  g.sampling.seed = o->seed + res->llm_calls;
  g.kv_dtype = o->kv_dtype;
  g.round_activations = o->round_activations;
  vl_generate_stats st = {0};
  if (!rc) rc = vl_generate(llm, tok, ids, n_ids, &g, collect_text, &text, NULL, NULL, &st);
  if (!rc && !text.buf) text.buf = strdup("");
  if (!rc && !text.buf) rc = vl_error(VL_ERR_NOMEM, "enrich: out of memory");
  if (!rc && st.reason == VL_STOP_CALLBACK) rc = vl_error(VL_ERR_NOMEM, "enrich: out of memory");
  if (!rc) rc = vl_reasoning_split(text.buf, text.len, &r);
  int found = rc ? 0 : vl_enrich_split_items(r.answer, k, split);
  if (!rc && found < 0) rc = found;
  for (size_t i = 0; !rc && i < k; i++) {
    items[i].description = utf8_clean(split[i]);
    items[i].prompt = strdup(prompt);
    if (o->keep_reasoning) items[i].reasoning = utf8_clean(r.reasoning);
    if (!items[i].description || !items[i].prompt || (o->keep_reasoning && !items[i].reasoning))
      rc = vl_error(VL_ERR_NOMEM, "enrich: out of memory");
  }
  if (!rc) {
    res->items_found += (size_t)found;
    res->llm_calls++;
    res->prompt_tokens += st.n_prompt;
    res->generated_tokens += st.n_generated;
    vl_log("enrich: LLM call %zu: %zu prompt tokens, %zu generated in %.2f s, %d of %zu items "
           "found",
           res->llm_calls, st.n_prompt, st.n_generated, st.prefill_s + st.decode_s, found, k);
  }
  for (size_t i = 0; i < k; i++)
    free(split[i]);
  vl_reasoning_free(&r);
  free(text.buf);
  free(ids);
  free(prompt);
  return rc;
}

int vl_enrich_run(const vl_blip *captioner, const vl_qwen_text *llm, const vl_tokenizer *tok,
                  vl_chat_template t, const char *const *images, size_t n,
                  const vl_enrich_run_opts *opt, vl_enrich_result *out) {
  memset(out, 0, sizeof *out);
  if (!captioner || !llm || !tok)
    return vl_error(VL_ERR_INVALID, "enrich: a captioner, an LLM and its tokenizer are required");
  if (captioner->kind != VL_BLIP_CAPTION)
    return vl_error(VL_ERR_INVALID, "enrich: %s is not a BLIP captioning model",
                    captioner->dir ? captioner->dir : "the captioner");
  if (!images || n == 0) return vl_error(VL_ERR_INVALID, "enrich: no images given");
  if (n > VL_ENRICH_ITEMS_MAX)
    return vl_error(VL_ERR_LIMIT, "enrich: %zu images, at most %d in one call", n,
                    VL_ENRICH_ITEMS_MAX);
  vl_enrich_run_opts o = opt ? *opt : vl_enrich_run_defaults();
  double t0 = vl_now_seconds();
  vl_word_list file_kw = {0};
  vl_image **imgs = calloc(n, sizeof *imgs);
  const char **caps = calloc(n, sizeof *caps);
  out->items = calloc(n, sizeof *out->items);
  int rc = VL_OK;
  if (!imgs || !caps || !out->items) {
    rc = vl_error(VL_ERR_NOMEM, "enrich: out of memory");
    goto done;
  }
  out->n = n;
  if (o.keywords_file) {
    if ((rc = vl_word_list_load(o.keywords_file, &file_kw))) goto done;
    o.prompt.keywords = (const char *const *)file_kw.words;
    o.prompt.n_keywords = file_kw.n;
  }
  /* every image and its keywords first: bad input fails before any model runs */
  for (size_t i = 0; i < n; i++) {
    vl_enrich_item *it = &out->items[i];
    if (!images[i]) {
      rc = vl_error(VL_ERR_INVALID, "enrich: image %zu: no path given", i + 1);
      goto done;
    }
    if (!(it->image = strdup(images[i]))) {
      rc = vl_error(VL_ERR_NOMEM, "enrich: out of memory");
      goto done;
    }
    if (!(imgs[i] = vl_image_load(images[i], 0))) {
      rc = vl_error_context("enrich: image %zu", i + 1);
      goto done;
    }
    it->keywords_source = "none";
    if (file_kw.n) {
      it->keywords_source = "file";
      for (size_t k = 0; k < file_kw.n && !rc; k++) {
        char **w = realloc(it->keywords.words, (it->keywords.n + 1) * sizeof *w);
        char *d = strdup(file_kw.words[k]);
        if (w) it->keywords.words = w;
        if (!w || !d) {
          free(d);
          rc = vl_error(VL_ERR_NOMEM, "enrich: out of memory");
        } else {
          w[it->keywords.n++] = d;
        }
      }
      if (rc) goto done;
    } else {
      int found = 0;
      if ((rc = vl_enrich_manifest_keywords(images[i], o.prompt.lang, &it->keywords, &found)))
        goto done;
      if (found) it->keywords_source = "manifest";
    }
  }
  /* captions and elements */
  double tc = vl_now_seconds();
  for (size_t i = 0; i < n; i++) {
    vl_enrich_item *it = &out->items[i];
    if ((rc = caption_one(captioner, imgs[i], &o, images[i], &it->caption))) goto done;
    vl_log("enrich: %s: caption \"%s\"", images[i], it->caption);
    if ((rc = vl_enrich_elements_extract(it->caption, &it->elements))) {
      vl_error_context("enrich: %s: caption \"%s\"", images[i], it->caption);
      goto done;
    }
    caps[i] = it->elements.caption;
  }
  double tg = vl_now_seconds();
  out->caption_ms = (tg - tc) * 1e3;
  /* LLM */
  if (o.separate || n == 1) {
    for (size_t i = 0; i < n; i++)
      if ((rc = llm_call(llm, tok, t, &o, &caps[i], 1, &out->items[i], out))) goto done;
  } else if ((rc = llm_call(llm, tok, t, &o, caps, n, out->items, out))) {
    goto done;
  }
  out->generate_ms = (vl_now_seconds() - tg) * 1e3;
  /* metrics */
  vl_text_metrics *ms = malloc(n * sizeof *ms);
  if (!ms) {
    rc = vl_error(VL_ERR_NOMEM, "enrich: out of memory");
    goto done;
  }
  for (size_t i = 0; i < n && !rc; i++) {
    vl_enrich_item *it = &out->items[i];
    vl_metrics_spec spec = {.keywords = (const char *const *)it->keywords.words,
                            .n_keywords = it->keywords.n,
                            .forbidden = o.prompt.forbidden,
                            .n_forbidden = o.prompt.n_forbidden,
                            .min_len = o.prompt.min_words,
                            .max_len = o.prompt.max_words,
                            .zh = o.prompt.lang == VL_ENRICH_ZH};
    rc = vl_metrics_measure(it->description, &spec, &it->metrics);
    ms[i] = it->metrics;
  }
  if (!rc) vl_metrics_aggregate(ms, n, &out->total);
  free(ms);
  out->total_ms = (vl_now_seconds() - t0) * 1e3;
done:
  for (size_t i = 0; imgs && i < n; i++)
    vl_image_free(imgs[i]);
  free(imgs);
  free(caps);
  vl_word_list_free(&file_kw);
  if (rc) vl_enrich_result_free(out);
  return rc;
}
