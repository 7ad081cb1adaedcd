/* Next-token sampling from logits, following transformers' generate(): the
 * repetition penalty first, then temperature, top-k, top-p and min-p, then a
 * draw from the renormalised distribution (or argmax when greedy). Draws come
 * from a seeded xoshiro256** stream, so a seed gives the same tokens on every
 * run and machine. */
#ifndef VL_MODELS_SAMPLER_H
#define VL_MODELS_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  float temperature;    /* 0: greedy (argmax); else > 0 */
  int top_k;            /* 0: off; else keep the k most likely (ties kept) */
  float top_p;          /* 1: off; else in (0, 1]: smallest set holding mass >= top_p */
  float min_p;          /* 0: off; else in [0, 1]: drop p < min_p * max p */
  float repeat_penalty; /* 1: off; > 0: HF rule (divide positive logits, multiply negative) */
  uint64_t seed;
} vl_sampler_params;

/* Greedy, no filters, no penalty, seed 0. */
vl_sampler_params vl_sampler_defaults(void);

typedef struct vl_sampler vl_sampler;

/* Checks the parameters (VL_ERR_INVALID naming the bad one); vocab > 0. */
vl_sampler *vl_sampler_new(const vl_sampler_params *p, int64_t vocab);
void vl_sampler_free(vl_sampler *s);

/* Picks the next token from logits[vocab] (modified in place by the penalty
 * and temperature). history: the ids seen so far (prompt and generated) for
 * the repetition penalty; may be NULL when n_hist is 0. Returns the id, or a
 * negative vl_status when n does not match the vocab or no token is finite. */
int32_t vl_sampler_sample(vl_sampler *s, float *logits, int64_t n, const int32_t *history,
                          size_t n_hist);

#endif
