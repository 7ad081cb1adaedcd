/* Explanations from one recorded BLIP forward (../shared/spec/explain-methods.md).
 *
 * vl_blip_record runs the model ONCE with the tape on over a whole sequence
 * (prompt + generated text, or an entailment prompt) and keeps what every
 * method reads: every vision layer's input (Grad-CAM), vision / decoder
 * self / cross attention probabilities, the pixel tensor. vl_blip_explain
 * then turns a target into heatmaps with at most ONE backward (for the
 * gradient methods) and no new forward:
 *  - a target is n (query position, token id) pairs, the score is the sum
 *    of the logits logits[q_k, id_k] (a generated token: its position - 1;
 *    a word: all its tokens; an entailment decision: the answer's logit at
 *    the last position);
 *  - gradient methods (gradcam, relevancy, gradient) use dS/d· of that sum
 *    (relevancy reads the sum of the rows of the n queries);
 *  - attention methods (attention, rollout) average the n tokens' maps;
 *  - random is seeded by (seed, first query, first id).
 * Raw maps are post-processed (smooth, sharpen) and min-max normalised. */
#ifndef VL_EXPLAIN_BLIP_EXPLAIN_H
#define VL_EXPLAIN_BLIP_EXPLAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "explain/faithfulness.h"
#include "explain/heatmap.h"
#include "models/blip.h"

typedef struct {
  const vl_blip *m;
  vl_ctx *c;
  vl_tensor *pixels, *ids;
  vl_blip_run run;
  int64_t T;               /* recorded sequence length */
  int grid_w, grid_h;      /* patch grid */
  int n_image;             /* grid_w * grid_h */
  int *image_tokens;       /* encoder positions of the patches: 1..n_image */
  int image_w, image_h;    /* original image */
  int forwards, backwards; /* counters: what explanations cost */
  bool pack_scope;         /* a vl_gemm pack-cache scope is open (closed by rec_free) */
} vl_blip_rec;

/* One recorded forward of ids (n >= 1) on img (any size; preprocessed as the
 * model says). Caption models only. r is cleared first; free it with
 * vl_blip_rec_free (also after a failure). */
int vl_blip_record(const vl_blip *m, const vl_image *img, const int64_t *ids, int64_t n,
                   vl_blip_rec *r);
/* vl_blip_record in two halves: the vision tower (r->run.vision_out, which
 * generation can start from), then the text over ids. */
int vl_blip_record_image(const vl_blip *m, const vl_image *img, vl_blip_rec *r);
int vl_blip_record_text(vl_blip_rec *r, const int64_t *ids, int64_t n);
void vl_blip_rec_free(vl_blip_rec *r);

typedef struct {
  int n;
  const int64_t *query; /* positions whose logits score the target */
  const int64_t *id;    /* token ids scored there */
} vl_blip_target;

typedef struct {
  const char *const *methods; /* --method names, validated by vl_explain_find */
  int n_methods;
  /* Layer: gradcam reads the input of vision block `layer`; attention reads
   * decoder cross-attention layer `layer`; -1 = each method's default (the
   * last). Other methods ignore it. */
  int layer;
  int head;       /* attention / rollout / relevancy on one head; -1: all heads */
  double smooth;  /* sigma in cells, 0: off */
  double sharpen; /* T, 0: off */
  uint64_t seed;  /* random */
} vl_blip_explain_opts;

void vl_blip_explain_opts_init(vl_blip_explain_opts *o);
/* Checks o against m before any work: known methods, --layer within the
 * layers the asked methods read, --head within the heads. */
int vl_blip_explain_check(const vl_blip *m, const vl_blip_explain_opts *o);

/* Layer name stored in the heatmap for method at layer (opts->layer
 * resolved): "vision.blocks.L" (gradcam), "text.layers.L.crossattention"
 * (attention), "" for the others. */
void vl_blip_layer_name(const vl_blip_rec *r, const char *method, int layer, char *buf, int cap);

/* Heatmaps of target t for every method of o, in o->methods order, into
 * maps[0..n_methods) (each new, free with vl_heatmap_free); on failure none
 * are left. One backward when a gradient method is asked for, computing only
 * the gradients these methods read (vl_backward_to): other recorded
 * gradients are stale afterwards; vl_blip_target_backward computes them all. */
int vl_blip_explain(vl_blip_rec *r, const vl_blip_target *t, const vl_blip_explain_opts *o,
                    vl_heatmap **maps);

/* Raw (not normalised) map of `method` at a given layer/head for t; the
 * backward (when needed) must already have run for t (see
 * vl_blip_target_backward). For layer x head grids. cells: n_image. */
int vl_blip_target_backward(vl_blip_rec *r, const vl_blip_target *t);
int vl_blip_method_raw(vl_blip_rec *r, const vl_blip_target *t, const char *method, int layer,
                       int head, uint64_t seed, float *cells);

/* Log-probability of id at query (log-softmax of the recorded logits). */
double vl_blip_logprob(const vl_blip_rec *r, int64_t query, int64_t id);

/* Faithfulness of map for target t: the target's probability (product over
 * its tokens, teacher forcing on the recorded ids) on masked images, each a
 * fresh inference forward. */
int vl_blip_faithfulness(vl_blip_rec *r, const vl_image *img, const vl_blip_target *t,
                         const vl_heatmap *map, uint64_t seed, vl_faithfulness *out);

#endif
