/* Training examples from Shapes World scenes (see train.h). */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/rng.h"
#include "io/shapes_world.h"
#include "tasks/shapes_vocab.h"
#include "tasks/train.h"

int vl_train_max_objects(const vl_train_opts *o, int64_t step) {
  int cap = o->max_objects < 1 ? 1 : o->max_objects > 4 ? 4 : o->max_objects;
  if (!o->curriculum || o->steps <= 0) return cap;
  int c = step * 9 < o->steps ? 2 : step * 9 < 2 * o->steps ? 3 : 4;
  return c < cap ? c : cap;
}

void vl_train_object_range(const vl_train_opts *o, int64_t step, int64_t index, int *lo, int *hi) {
  const int cap = vl_train_max_objects(o, step);
  const double *w = o->object_weights;
  *lo = 1;
  *hi = cap;
  if (w[0] == w[1] && w[1] == w[2] && w[2] == w[3]) return;
  double total = 0;
  for (int k = 0; k < cap; k++)
    total += w[k];
  if (total <= 0) return; /* nothing weighted under the cap: the spec's draw */
  vl_rng r;
  vl_rng_seed(&r, o->seed, (uint64_t)index, 0x6f626a77 /* "objw" */);
  double u = vl_rng_uniform(&r) * total;
  int k = 0;
  while (k < cap - 1 && (u -= w[k]) >= 0)
    k++;
  while (w[k] <= 0) /* u landed at the edge of a zero-weight count */
    k--;
  *lo = *hi = k + 1;
}

int vl_train_parse_weights(const char *text, int n, double *w, const char *flag) {
  const char *p = text;
  double total = 0;
  for (int k = 0; k < n; k++) {
    char *end = NULL;
    w[k] = strtod(p, &end);
    if (end == p || !(w[k] >= 0) || w[k] > 1e6 || (k < n - 1 ? *end != ',' : *end != 0))
      return vl_error(VL_ERR_INVALID, "train: %s '%s': %d comma-separated non-negative numbers",
                      flag, text, n);
    total += w[k];
    p = end + 1;
  }
  if (total <= 0) return vl_error(VL_ERR_INVALID, "train: %s '%s' are all 0", flag, text);
  return VL_OK;
}

void vl_train_sample_free(vl_train_sample *s) {
  if (!s) return;
  vl_image_free(s->image);
  s->image = NULL;
}

/* [DEC] tokens(text) (vl_blip_prompt_ids) into dst, with room for `extra`
 * more ids. */
static int encode(const vl_blip *m, const char *text, int64_t *dst, int64_t *n, int extra) {
  int64_t *ids = NULL, k = 0;
  int rc = vl_blip_prompt_ids(m, text, &ids, &k);
  if (rc) return rc;
  if (k + extra > VL_TRAIN_MAX_T || k + extra > m->tcfg.max_pos) {
    free(ids);
    return vl_error(VL_ERR_LIMIT, "train: '%s' is %lld tokens, more than the model's %lld", text,
                    (long long)(k + extra), (long long)m->tcfg.max_pos);
  }
  for (int64_t i = 0; i < k; i++) {
    if (ids[i] == VL_SV_UNK) {
      free(ids);
      return vl_error(VL_ERR_FORMAT, "train: '%s' has a word outside the vocabulary", text);
    }
    dst[i] = ids[i];
  }
  free(ids);
  *n = k;
  return VL_OK;
}

int vl_train_sample_make(const vl_blip *m, uint64_t seed, int64_t index, int min_objects,
                         int max_objects, int k, const double *template_weights,
                         vl_train_sample *s) {
  memset(s, 0, sizeof *s);
  if (k < 0 || k > VL_TRAIN_MAX_K)
    return vl_error(VL_ERR_INVALID, "train: %d hypotheses per image (0..%d)", k, VL_TRAIN_MAX_K);
  vl_shapes_options opt = vl_shapes_default_options();
  opt.min_objects = min_objects;
  opt.max_objects = max_objects;
  opt.n_hypotheses = k;
  if (template_weights) memcpy(opt.template_weights, template_weights, sizeof opt.template_weights);
  vl_shapes_scene *sc = vl_shapes_generate(seed, index, &opt);
  if (!sc) return vl_error_context("train: scene %lld", (long long)index);
  int rc = encode(m, sc->caption, s->cap, &s->cap_n, 1);
  if (!rc) s->cap[s->cap_n++] = m->tcfg.sep;
  for (int j = 0; !rc && j < sc->n_hypotheses; j++) {
    char prompt[VL_SHAPES_TEXT_MAX + 64];
    rc = vl_shapes_entail_prompt(sc->hypotheses[j].text, prompt, (int)sizeof prompt);
    if (!rc) rc = encode(m, prompt, s->hyp[j], &s->hyp_n[j], 1);
    if (rc) break;
    const char *ans = vl_shapes_answer_word((int)sc->hypotheses[j].label);
    int32_t id = m->tok ? vl_tokenizer_token_to_id(m->tok, ans) : -1;
    if (id < 0 || id >= m->tcfg.vocab) {
      rc = vl_error(VL_ERR_FORMAT, "train: answer word '%s' is not in %s/vocab.txt", ans, m->dir);
      break;
    }
    s->hyp[j][s->hyp_n[j]++] = id;
    s->n_hyp = j + 1;
  }
  if (!rc) {
    s->image = sc->image;
    sc->image = NULL;
  }
  vl_shapes_free(sc);
  return rc;
}
