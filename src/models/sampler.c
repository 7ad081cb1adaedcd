#include "models/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/rng.h"

struct vl_sampler {
  vl_sampler_params p;
  int64_t vocab;
  vl_rng rng;
  int32_t *idx;  /* candidate ids */
  float *prob;   /* per candidate */
  uint8_t *seen; /* repetition-penalty marks */
};

vl_sampler_params vl_sampler_defaults(void) {
  return (vl_sampler_params){
      .temperature = 0, .top_k = 0, .top_p = 1, .min_p = 0, .repeat_penalty = 1, .seed = 0};
}

vl_sampler *vl_sampler_new(const vl_sampler_params *p, int64_t vocab) {
  if (vocab <= 0 || vocab > INT32_MAX) {
    vl_error(VL_ERR_INVALID, "sampler: vocabulary size %lld", (long long)vocab);
    return NULL;
  }
  if (!(p->temperature >= 0) || !isfinite(p->temperature)) {
    vl_error(VL_ERR_INVALID, "sampler: temperature %g must be >= 0 (0: greedy)",
             (double)p->temperature);
    return NULL;
  }
  if (p->top_k < 0) {
    vl_error(VL_ERR_INVALID, "sampler: top-k %d must be >= 0 (0: off)", p->top_k);
    return NULL;
  }
  if (!(p->top_p > 0 && p->top_p <= 1)) {
    vl_error(VL_ERR_INVALID, "sampler: top-p %g must be in (0, 1] (1: off)", (double)p->top_p);
    return NULL;
  }
  if (!(p->min_p >= 0 && p->min_p <= 1)) {
    vl_error(VL_ERR_INVALID, "sampler: min-p %g must be in [0, 1] (0: off)", (double)p->min_p);
    return NULL;
  }
  if (!(p->repeat_penalty > 0) || !isfinite(p->repeat_penalty)) {
    vl_error(VL_ERR_INVALID, "sampler: repetition penalty %g must be > 0 (1: off)",
             (double)p->repeat_penalty);
    return NULL;
  }
  vl_sampler *s = calloc(1, sizeof *s);
  if (s) {
    s->idx = malloc((size_t)vocab * sizeof *s->idx);
    s->prob = malloc((size_t)vocab * sizeof *s->prob);
    s->seen = calloc((size_t)vocab, 1);
  }
  if (!s || !s->idx || !s->prob || !s->seen) {
    vl_sampler_free(s);
    vl_error(VL_ERR_NOMEM, "sampler: out of memory for %lld tokens", (long long)vocab);
    return NULL;
  }
  s->p = *p;
  s->vocab = vocab;
  vl_rng_seed(&s->rng, p->seed, 0, 0);
  return s;
}

void vl_sampler_free(vl_sampler *s) {
  if (!s) return;
  free(s->idx);
  free(s->prob);
  free(s->seen);
  free(s);
}

/* Descending by logit, ties by id (a stable, reproducible order). */
static int by_logit_desc(const void *a, const void *b, void *ctx) {
  const float *logits = ctx;
  int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
  float x = logits[i], y = logits[j];
  if (x != y) return x > y ? -1 : 1;
  return (i > j) - (i < j);
}

int32_t vl_sampler_sample(vl_sampler *s, float *logits, int64_t n, const int32_t *history,
                          size_t n_hist) {
  if (n != s->vocab)
    return vl_error(VL_ERR_INVALID, "sampler: %lld logits for a vocabulary of %lld", (long long)n,
                    (long long)s->vocab);
  const vl_sampler_params *p = &s->p;
  if (p->repeat_penalty != 1 && history) {
    for (size_t i = 0; i < n_hist; i++) {
      int32_t id = history[i];
      if (id < 0 || id >= n || s->seen[id]) continue;
      s->seen[id] = 1;
      float *x = &logits[id];
      *x = *x < 0 ? *x * p->repeat_penalty : *x / p->repeat_penalty;
    }
    for (size_t i = 0; i < n_hist; i++)
      if (history[i] >= 0 && history[i] < n) s->seen[history[i]] = 0;
  }
  /* candidates: finite logits (NaN and -inf never win) */
  int64_t m = 0, best = -1;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(logits[i])) continue;
    s->idx[m++] = (int32_t)i;
    if (best < 0 || logits[i] > logits[best]) best = i;
  }
  if (m == 0) return vl_error(VL_ERR_INVALID, "sampler: no token has a finite logit");
  if (p->temperature == 0 || p->top_k == 1) return (int32_t)best;

  for (int64_t i = 0; i < m; i++)
    logits[s->idx[i]] /= p->temperature;
  qsort_r(s->idx, (size_t)m, sizeof *s->idx, by_logit_desc, logits);
  if (p->top_k > 0 && p->top_k < m) { /* keep ties with the k-th */
    float kth = logits[s->idx[p->top_k - 1]];
    int64_t k = p->top_k;
    while (k < m && logits[s->idx[k]] == kth)
      k++;
    m = k;
  }
  double sum = 0, top = logits[s->idx[0]];
  for (int64_t i = 0; i < m; i++)
    sum += s->prob[i] = (float)exp(logits[s->idx[i]] - top);
  for (int64_t i = 0; i < m; i++)
    s->prob[i] = (float)(s->prob[i] / sum);
  if (p->top_p < 1) { /* keep a token while the mass ranked above it is < top_p */
    double above = 0;
    int64_t k = 0;
    while (k < m && above < p->top_p)
      above += s->prob[k++];
    m = k > 0 ? k : 1;
  }
  if (p->min_p > 0) { /* probabilities as after top-k/top-p renormalisation differ only by a
                         constant factor, so the ratio test is the same */
    float cut = p->min_p * s->prob[0];
    int64_t k = 1;
    while (k < m && s->prob[k] >= cut)
      k++;
    m = k;
  }
  sum = 0;
  for (int64_t i = 0; i < m; i++)
    sum += s->prob[i];
  double u = vl_rng_uniform(&s->rng) * sum, acc = 0;
  for (int64_t i = 0; i < m; i++) {
    acc += s->prob[i];
    if (u < acc) return s->idx[i];
  }
  return s->idx[m - 1];
}
