/* Shapes World enrich data; see shapes_enrich.h. */
#include "text/shapes_enrich.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/shapes_describe.h"
#include "io/shapes_world.h"
#include "text/chat.h"
#include "text/textbuf.h"

static uint64_t mix(uint64_t seed, int64_t index) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ull ^ (uint64_t)index;
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ull;
  return x ^ (x >> 29);
}

static vl_shapes_scene *scene(uint64_t seed, int64_t index) {
  vl_shapes_options so = vl_shapes_default_options();
  so.n_hypotheses = 0;
  return vl_shapes_generate(seed, index, &so);
}

/* The pair of one generated scene. */
static int pair_of(const vl_shapes_scene *sc, uint64_t seed, int64_t index,
                   const vl_enrich_options *opt, char **prompt, char **target) {
  vl_enrich_options o = vl_enrich_default_options();
  if (opt)
    o = *opt;
  else {
    o.min_words = VL_SHAPES_ENRICH_MIN_WORDS;
    o.max_words = VL_SHAPES_ENRICH_MAX_WORDS;
  }
  const vl_describe_lang lang = o.lang == VL_ENRICH_ZH ? VL_DESCRIBE_ZH : VL_DESCRIBE_EN;
  *prompt = vl_enrich_user_prompt(sc->caption, &o);
  *target =
      *prompt ? vl_shapes_describe_lang(sc, VL_DESCRIBE_CAPTION, lang, mix(seed, index)) : NULL;
  if (*target) return VL_OK;
  free(*prompt);
  *prompt = NULL;
  return vl_last_error_code();
}

int vl_shapes_enrich_pair(uint64_t seed, int64_t index, const vl_enrich_options *opt, char **prompt,
                          char **target, char **caption) {
  if (!prompt || !target) return vl_error(VL_ERR_INVALID, "shapes enrich pair: no outputs");
  *prompt = *target = NULL;
  if (caption) *caption = NULL;
  vl_shapes_scene *sc = scene(seed, index);
  if (!sc) return vl_last_error_code();
  int rc = pair_of(sc, seed, index, opt, prompt, target);
  if (!rc && caption && !(*caption = strdup(sc->caption))) {
    rc = vl_error(VL_ERR_NOMEM, "shapes enrich pair: out of memory");
    free(*prompt);
    free(*target);
    *prompt = *target = NULL;
  }
  vl_shapes_free(sc);
  return rc;
}

/* The conversation as the LLM sees it: Qwen3 template, thinking off. */
static char *conversation(const char *prompt, const char *target) {
  vl_chat_message msgs[2] = {{"user", prompt, NULL}, {"assistant", target, NULL}};
  vl_chat_options co = vl_chat_default_options();
  co.add_generation_prompt = 0;
  co.enable_thinking = 0;
  return vl_chat_render(VL_CHAT_QWEN3, msgs, 2, &co);
}

/* One scene's lines in language lang (caption first for English; Chinese
 * descriptions and targets segmented into words). */
static int corpus_scene(vl_textbuf *b, const vl_shapes_scene *sc, uint64_t seed, int64_t i,
                        vl_enrich_lang lang) {
  const int zh = lang == VL_ENRICH_ZH;
  vl_enrich_options o = vl_enrich_default_options();
  o.lang = lang;
  o.min_words = zh ? VL_SHAPES_ENRICH_MIN_CHARS : VL_SHAPES_ENRICH_MIN_WORDS;
  o.max_words = zh ? VL_SHAPES_ENRICH_MAX_CHARS : VL_SHAPES_ENRICH_MAX_WORDS;
  char *prompt = NULL, *target = NULL, *chat = NULL;
  /* Chinese text one word per line (see vl_shapes_describe_zh_words) */
  char *full = zh ? vl_shapes_describe_zh_words(sc, VL_DESCRIBE_SCENE, mix(seed, i) + 1)
                  : vl_shapes_describe(sc, VL_DESCRIBE_SCENE, mix(seed, i) + 1);
  int rc = full ? pair_of(sc, seed, i, zh ? &o : NULL, &prompt, &target) : vl_last_error_code();
  if (!rc && zh) {
    free(target);
    if (!(target = vl_shapes_describe_zh_words(sc, VL_DESCRIBE_CAPTION, mix(seed, i))))
      rc = vl_last_error_code();
  }
  if (!rc && !(chat = conversation(prompt, target))) rc = vl_last_error_code();
  if (!rc && zh) vl_textbuf_printf(b, "%s\n%s\n\n", full, chat);
  if (!rc && !zh) vl_textbuf_printf(b, "%s\n%s\n%s\n\n", sc->caption, full, chat);
  free(chat);
  free(prompt);
  free(target);
  free(full);
  return rc;
}

char *vl_shapes_enrich_corpus_lang(uint64_t seed, int64_t n, int zh, size_t *len) {
  if (n < 1 || !len) {
    vl_error(VL_ERR_INVALID, "shapes corpus: need n >= 1 scenes (got %lld)", (long long)n);
    return NULL;
  }
  vl_textbuf b = {0};
  for (int64_t i = 0; i < n; i++) {
    vl_shapes_scene *sc = scene(seed, i);
    int rc = sc ? corpus_scene(&b, sc, seed, i, VL_ENRICH_EN) : vl_last_error_code();
    if (!rc && zh) rc = corpus_scene(&b, sc, seed, i, VL_ENRICH_ZH);
    vl_shapes_free(sc);
    if (rc) {
      vl_textbuf_free(&b);
      vl_error_context("shapes corpus: scene %lld", (long long)i);
      return NULL;
    }
  }
  *len = b.len;
  return vl_textbuf_take(&b);
}

char *vl_shapes_enrich_corpus(uint64_t seed, int64_t n, size_t *len) {
  return vl_shapes_enrich_corpus_lang(seed, n, 0, len);
}
