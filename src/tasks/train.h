/* `vlens train`: trains a tiny BLIP-architecture captioning model
 * (BlipForConditionalGeneration layout) on Shapes World scenes generated on
 * the fly, for two tasks sharing one text decoder:
 *  - captioning: ids [DEC] caption [SEP], teacher forcing, cross-entropy
 *    over every caption token after [DEC] (the [SEP] included);
 *  - visual entailment with OFA's prompt: ids [DEC] tokens(` does the image
 *    describe " {hypothesis} "?`) then the answer word yes / maybe / no
 *    (entailment / neutral / contradiction); loss on the answer token only.
 *    At inference: run the prompt and compare the logits of yes/no/maybe at
 *    the last position.
 * Per image: loss = caption CE + mean over its K hypotheses of answer CE;
 * the step's loss is the mean over the batch. A step is one batched
 * forward/backward (vl_train_batch): the ViT over (B, 3, H, W), the decoder
 * over the B captions and over the B * K hypotheses (each set padded to its
 * longest), each image's texts cross-attending to its tokens
 * (vl_blip_text_forward_batch). Then global-norm
 * clipping, AdamW (tensor/optim.h) with warm-up + cosine LR.
 *
 * Output folder (written outside the repo, every file atomically): a Hub
 * model folder (config.json, model.safetensors, preprocessor_config.json,
 * vocab.txt, tokenizer_config.json) that vl_blip_load() reads as any BLIP
 * checkpoint, plus optimizer.safetensors: AdamW moments ("exp_avg.<name>",
 * "exp_avg_sq.<name>") and, in __metadata__, vlens_step, vlens_next_scene
 * and vlens_train_opts (JSON) so that --resume continues bit-identically.
 * There is no other random state: the data position is a function of the
 * step (scene (seed, step * batch + b)) and the model has no dropout.
 * (Seen identical with 1 and 2 threads; kernels whose reductions split by
 * thread count could break that across machines.) model.safetensors carries the same vlens_step; a
 * mismatch (a crash between the two writes) is reported on --resume. */
#ifndef VL_TASKS_TRAIN_H
#define VL_TASKS_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "io/shapes_world.h"
#include "models/blip.h"

typedef struct {
  const char *out_dir;  /* required */
  const char *config;   /* "small" (default) or "tiny" */
  int patch;            /* ViT patch size, 0: the config's (must divide 96) */
  int64_t steps;        /* optimizer steps in total */
  int64_t batch;        /* images per step */
  int64_t warmup;       /* warm-up steps; < 0: 5% of steps */
  int64_t save_every;   /* checkpoint period in steps (0: only at the end) */
  int64_t stop_after;   /* stop (with a checkpoint) after this step; 0: run to the end */
  int64_t resume_steps; /* with resume: new total steps (reshapes the rest of the cosine
                         * schedule; no longer bit-identical to an uninterrupted run); 0: keep */
  int hypotheses;       /* K entailment hypotheses per image */
  /* Relative frequency of 1, 2, 3, 4 objects per training scene (all equal:
   * the spec's uniform draw). Training data only, to spend the images on the
   * many-object captions where the ordering is learnt; evaluation sets keep
   * the spec's 1..4. The curriculum's cap still applies. */
  double object_weights[4];
  /* Relative frequency of the hypothesis templates (exists, exists-sized,
   * count, relation, unknowable) among those a label can take in the scene
   * (vl_shapes_options.template_weights; all equal: the spec's pick).
   * Training data only, to spend hypotheses on the relations. */
  double template_weights[VL_TPL_N];
  int max_objects; /* 1..4: cap on objects per scene */
  bool curriculum; /* <=2 objects for the first 1/9, <=3 the next 1/9 */
  double lr, min_lr_ratio, weight_decay, clip;
  bool decay_embeddings; /* apply weight decay to embedding tables too */
  uint64_t seed;
  bool resume;
  const char *init_from; /* a new run starts from this trained folder's weights (same
                          * config and patch; fresh optimizer); NULL: random init */
} vl_train_opts;

void vl_train_default_opts(vl_train_opts *o);

typedef struct {
  int64_t step;        /* steps done */
  double loss;         /* mean loss of the last step */
  double loss_first;   /* mean loss of the first step of this run */
  double caption_acc;  /* running (EMA) caption token accuracy */
  double answer_acc;   /* running (EMA) answer accuracy */
  double images_per_s; /* over this run */
} vl_train_report;

/* Trains (or resumes) per o; progress bar on stderr. rep may be NULL. */
int vl_train(const vl_train_opts *o, vl_train_report *rep);

/* ---- pieces, exposed for tests ------------------------------------------ */

/* Writes a freshly initialised model folder into dir (created when
 * missing): HF BLIP _init_weights (normal(0, 0.02) matrices and
 * embeddings, zero biases, LayerNorm 1/0). */
int vl_train_init_model(const char *dir, const char *config, int patch, uint64_t seed);

/* vl_blip_load_ex(dir, trainable) for a captioning model with a tokenizer;
 * *params receives the trainable tensors (vl_blip_params: malloc'd array,
 * names set). */
vl_blip *vl_train_load_blip(const char *dir, vl_tensor ***params, int64_t *n_params);

/* Objects cap for step s of total under the curriculum. */
int vl_train_max_objects(const vl_train_opts *o, int64_t step);
/* The object-count range of training scene `index` at step s: 1..cap when
 * the weights are all equal (the spec's draw, made by the scene generator),
 * else one count k (*lo = *hi = k) drawn from the weights up to the cap, by
 * a random stream of (seed, index) so that runs stay reproducible. */
void vl_train_object_range(const vl_train_opts *o, int64_t step, int64_t index, int *lo, int *hi);
/* Parses n comma-separated weights (non-negative, not all zero) into w;
 * flag names the option in the error. */
int vl_train_parse_weights(const char *text, int n, double *w, const char *flag);

/* generation_config.json max_length of a trained folder: the longest
 * caption ([DEC] + 4 phrases + [SEP] = 22 tokens) plus room for a prompt. */
#define VL_TRAIN_GEN_MAX_LENGTH 32

/* One training example in token ids. */
#define VL_TRAIN_MAX_T 64
#define VL_TRAIN_MAX_K 8
typedef struct {
  vl_image *image; /* the scene (owned) */
  int64_t cap[VL_TRAIN_MAX_T];
  int64_t cap_n;
  int n_hyp;
  int64_t hyp[VL_TRAIN_MAX_K][VL_TRAIN_MAX_T]; /* prompt ids, answer last */
  int64_t hyp_n[VL_TRAIN_MAX_K];
} vl_train_sample;

/* Scene (seed, index) with min_objects..max_objects objects and k
 * hypotheses (templates weighted by template_weights, NULL: the spec's
 * pick), tokenized with m's tokenizer. Release with vl_train_sample_free. */
int vl_train_sample_make(const vl_blip *m, uint64_t seed, int64_t index, int min_objects,
                         int max_objects, int k, const double *template_weights,
                         vl_train_sample *s);
void vl_train_sample_free(vl_train_sample *s);

typedef struct {
  double loss;                          /* summed over calls */
  int64_t cap_ok, cap_n, ans_ok, ans_n; /* argmax hits / rows */
} vl_train_stats;

/* Forward and backward of one batch of n samples in c (recording on): the
 * loss is the mean over images of caption CE (mean over its tokens) + mean
 * over its hypotheses of answer CE; weight gradients accumulate (+=). One
 * vision pass over (n, 3, H, W), one decoder pass over the captions and one
 * over the hypotheses (padded).
 * st may be NULL. */
int vl_train_batch(vl_ctx *c, const vl_blip *m, const vl_train_sample *s, int64_t n,
                   vl_train_stats *st);

#endif
