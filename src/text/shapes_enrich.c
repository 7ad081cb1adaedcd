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
  *prompt = vl_enrich_user_prompt(sc->caption, &o);
  *target = *prompt ? vl_shapes_describe(sc, VL_DESCRIBE_CAPTION, mix(seed, index)) : NULL;
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

char *vl_shapes_enrich_corpus(uint64_t seed, int64_t n, size_t *len) {
  if (n < 1 || !len) {
    vl_error(VL_ERR_INVALID, "shapes corpus: need n >= 1 scenes (got %lld)", (long long)n);
    return NULL;
  }
  vl_textbuf b = {0};
  for (int64_t i = 0; i < n; i++) {
    char *prompt, *target;
    vl_shapes_scene *sc = scene(seed, i);
    char *full = sc ? vl_shapes_describe(sc, VL_DESCRIBE_SCENE, mix(seed, i) + 1) : NULL;
    if (!full || pair_of(sc, seed, i, NULL, &prompt, &target)) {
      free(full);
      vl_shapes_free(sc);
      vl_textbuf_free(&b);
      vl_error_context("shapes corpus: scene %lld", (long long)i);
      return NULL;
    }
    /* the conversation as the LLM sees it: Qwen3 template, thinking off */
    vl_chat_message msgs[2] = {{"user", prompt, NULL}, {"assistant", target, NULL}};
    vl_chat_options co = vl_chat_default_options();
    co.add_generation_prompt = 0;
    co.enable_thinking = 0;
    char *chat = vl_chat_render(VL_CHAT_QWEN3, msgs, 2, &co);
    int ok = chat != NULL;
    if (ok) vl_textbuf_printf(&b, "%s\n%s\n%s\n\n", sc->caption, full, chat);
    free(chat);
    free(prompt);
    free(target);
    free(full);
    vl_shapes_free(sc);
    if (!ok) {
      vl_textbuf_free(&b);
      return NULL;
    }
  }
  *len = b.len;
  return vl_textbuf_take(&b);
}
