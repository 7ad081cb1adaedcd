/* Shapes World enrich data; see shapes_enrich.h. */
#include "text/shapes_enrich.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/shapes_describe.h"
#include "io/shapes_world.h"
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

int vl_shapes_enrich_pair(uint64_t seed, int64_t index, const vl_enrich_options *opt, char **prompt,
                          char **target, char **caption) {
  if (!prompt || !target) return vl_error(VL_ERR_INVALID, "shapes enrich pair: no outputs");
  *prompt = *target = NULL;
  if (caption) *caption = NULL;
  vl_enrich_options o = vl_enrich_default_options();
  if (opt)
    o = *opt;
  else {
    o.min_words = VL_SHAPES_ENRICH_MIN_WORDS;
    o.max_words = VL_SHAPES_ENRICH_MAX_WORDS;
  }
  vl_shapes_scene *sc = scene(seed, index);
  if (!sc) return vl_last_error_code();
  char *p = vl_enrich_user_prompt(sc->caption, &o);
  char *t = p ? vl_shapes_describe(sc, VL_DESCRIBE_CAPTION, mix(seed, index)) : NULL;
  char *c = t && caption ? strdup(sc->caption) : NULL;
  vl_shapes_free(sc);
  if (!p || !t || (caption && !c)) {
    int rc = (!p || !t) ? vl_last_error_code()
                        : vl_error(VL_ERR_NOMEM, "shapes enrich pair: out of memory");
    free(p);
    free(t);
    return rc;
  }
  *prompt = p;
  *target = t;
  if (caption) *caption = c;
  return VL_OK;
}

char *vl_shapes_enrich_corpus(uint64_t seed, int64_t n, size_t *len) {
  if (n < 1 || !len) {
    vl_error(VL_ERR_INVALID, "shapes corpus: need n >= 1 scenes (got %lld)", (long long)n);
    return NULL;
  }
  vl_textbuf b = {0};
  for (int64_t i = 0; i < n; i++) {
    char *prompt, *target, *caption;
    if (vl_shapes_enrich_pair(seed, i, NULL, &prompt, &target, &caption)) {
      vl_textbuf_free(&b);
      vl_error_context("shapes corpus: scene %lld", (long long)i);
      return NULL;
    }
    vl_shapes_scene *sc = scene(seed, i);
    char *full = sc ? vl_shapes_describe(sc, VL_DESCRIBE_SCENE, mix(seed, i) + 1) : NULL;
    vl_shapes_free(sc);
    if (!full) {
      free(prompt);
      free(target);
      free(caption);
      vl_textbuf_free(&b);
      return NULL;
    }
    vl_textbuf_printf(&b, "%s\n%s\n%s\n%s\n\n", caption, target, full, prompt);
    free(prompt);
    free(target);
    free(caption);
    free(full);
  }
  *len = b.len;
  return vl_textbuf_take(&b);
}
