/* What the two trainers (vlens train, vlens train-llm) share: folder and
 * atomic file writes, a fresh model's weights, the schedule options both
 * keep in a checkpoint, the optimizer and the step loop, checkpoints and
 * reading back the state of an earlier run. */
#ifndef VL_TASKS_TRAIN_RUN_H
#define VL_TASKS_TRAIN_RUN_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "io/rng.h"
#include "io/safetensors.h"
#include "tensor/optim.h"

/* mkdir -p; `who` prefixes errors ("train", "train-llm"). */
int vl_train_mkdirs(const char *dir, const char *who);
/* dir/file written through a temporary file and rename. */
int vl_train_write_text(const char *dir, const char *file, const char *text);
/* Prints j into dir/file (atomically) and deletes j; j may be NULL (no memory). */
int vl_train_write_json(const char *dir, const char *file, cJSON *j, const char *who);
int64_t vl_train_argmax(const float *row, int64_t n);
/* The step a checkpoint file records ("vlens_step"), or -1. */
int64_t vl_train_meta_step(const vl_safetensors *st);
/* Opens out_dir/optimizer.safetensors of an earlier run, checks
 * model.safetensors is at the same step (else the run was interrupted while
 * saving) and hands its saved options (metadata opts_key) to
 * read_opts(json, out_dir, user); *step: the step reached. */
int vl_train_open_state(const char *out_dir, const char *who, const char *opts_key,
                        int (*read_opts)(const char *json, const char *what, void *user),
                        void *user, vl_safetensors **ost, int64_t *step);
/* An error when out_dir already holds a run (a new one would overwrite it). */
int vl_train_check_new_run(const char *out_dir, const char *who);

/* ---- starting from a trained model ------------------------------------- */

/* Called for each tensor t of the fresh folder with its namesake s in the
 * source and t's fresh values in d: returns 1 when it filled d itself
 * (e.g. remapped rows, the others kept), 0 to let the plain copy (same
 * shape) run, or a negative VL_ERR_* code. */
typedef int (*vl_warm_hook)(const char *name, const vl_st_tensor *t, const vl_st_tensor *s,
                            float *d, void *user);

/* Replaces the freshly initialised dir/model.safetensors by the weights of
 * the trained folder src of the same config, tensor by tensor by name
 * (hook may be NULL). Errors name src and the tensor when the configs
 * differ; `who` prefixes them. *copied (may be NULL): tensors copied
 * whole (not by the hook). */
int vl_train_warm_start(const char *dir, const char *src, const char *who, vl_warm_hook hook,
                        void *user, int64_t *copied);

/* ---- a fresh model's weights ------------------------------------------- */

/* How vl_train_init_add fills a tensor: normal(0, 0.02) (HF's
 * initializer_range), zeros or ones. */
typedef enum { VL_INIT_NORMAL, VL_INIT_ZERO, VL_INIT_ONE } vl_init_fill;

/* A freshly initialised model.safetensors being written; the first failure
 * stays in rc and later adds do nothing. */
typedef struct {
  vl_st_writer *w;
  vl_rng rng; /* the normal draws, in the order of the adds */
  int rc;
  const char *who;
} vl_train_init;

int vl_train_init_begin(vl_train_init *iw, uint64_t seed, uint64_t stream, const char *who);
/* Adds the F32 tensor of the given shape named by fmt. */
void vl_train_init_add(vl_train_init *iw, vl_init_fill fill, int ndim, const int64_t *shape,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Writes dir/model.safetensors (at step 0) unless an add failed; frees the
 * writer either way. */
int vl_train_init_save(vl_train_init *iw, const char *dir);

/* ---- the options both trainers have ------------------------------------- */

typedef struct {
  const char *config;
  int64_t steps, batch, warmup;
  double lr, min_lr_ratio, weight_decay, clip;
  uint64_t seed;
} vl_train_schedule;

/* The schedule fields of a trainer's options struct o (vl_train_opts,
 * vl_train_llm_opts: the same names). */
#define VL_TRAIN_SCHEDULE_OF(o)                                                                    \
  ((vl_train_schedule){(o)->config, (o)->steps, (o)->batch, (o)->warmup, (o)->lr,                  \
                       (o)->min_lr_ratio, (o)->weight_decay, (o)->clip, (o)->seed})
#define VL_TRAIN_SCHEDULE_TO(o, s)                                                                 \
  ((o)->config = (s).config, (o)->steps = (s).steps, (o)->batch = (s).batch,                       \
   (o)->warmup = (s).warmup, (o)->lr = (s).lr, (o)->min_lr_ratio = (s).min_lr_ratio,               \
   (o)->weight_decay = (s).weight_decay, (o)->clip = (s).clip, (o)->seed = (s).seed)

/* Steps and batch positive, lr, decay, clip and min lr ratio in range, the
 * warm-up within the steps. */
int vl_train_check_schedule(const vl_train_schedule *s, const char *who);
/* A JSON object holding s, for the trainer to add its own options to
 * (seed as a string: 64 bits). NULL: no memory. */
cJSON *vl_train_schedule_json(const vl_train_schedule *s);
/* Reads a schedule saved by vl_train_schedule_json; config_name maps the
 * saved config to the trainer's static name (NULL: unknown). Returns the
 * parsed object for the trainer's own options (the caller deletes it), or
 * NULL + vl_error when the text is not JSON or the schedule is incomplete. */
cJSON *vl_train_schedule_parse(const char *text, const char *what,
                               const char *(*config_name)(const char *), vl_train_schedule *s);

/* ---- the optimizer and the step loop ----------------------------------- */

/* AdamW (torch's defaults but weight_decay) over params, decays(p, user)
 * saying which decay. Resuming (from: an earlier run's
 * optimizer.safetensors) it takes that run's moments ("exp_avg.<name>",
 * "exp_avg_sq.<name>") and step. NULL + vl_error on failure. */
vl_adamw *vl_train_optimizer(vl_tensor *const *params, int64_t n, double weight_decay,
                             bool (*decays)(const vl_tensor *p, const void *user), const void *user,
                             const vl_safetensors *from, int64_t step, const char *who);
/* Backward from a step's loss (NULL: its forward failed, the error is
 * returned), then the step's tensors in c are released back to mark. */
int vl_train_backward(vl_ctx *c, size_t mark, vl_tensor *loss);
/* Number of weights in the n parameters. */
int64_t vl_train_count_weights(vl_tensor *const *params, int64_t n);

/* The step loop both trainers run: per step the cosine schedule's lr, the
 * batch's forward and backward, global-norm clipping and AdamW's update (a
 * loss or norm that is not finite is an error: the run diverged), a progress
 * line, and a checkpoint every save_every steps and at the last step. */
typedef struct {
  const char *who;
  vl_train_schedule sched;
  int64_t stop_after; /* > 0: stop after this step (with a checkpoint) */
  int64_t save_every; /* 0: checkpoint only at the last step */
  vl_adamw *opt;
  void *user;
  /* Step s's forward and backward (gradients zeroed); *loss: its loss. */
  int (*batch)(void *user, int64_t s, double *loss);
  /* After the update: folds the step's statistics in and writes the progress
   * line's text; done: steps done in this loop, seconds: since it began. */
  void (*stepped)(void *user, int64_t done, double lr, double seconds, char *text, size_t size);
  int (*save)(void *user); /* a checkpoint at the step reached */
} vl_train_loop;

typedef struct {
  double loss, loss_first; /* of the last and the first step of this loop */
  double seconds;
} vl_train_loop_result;

/* Runs L from *step, which counts the steps completed. */
int vl_train_loop_run(const vl_train_loop *L, int64_t *step, vl_train_loop_result *res);

/* A checkpoint in out_dir: the parameters into model.safetensors, AdamW's
 * moments into optimizer.safetensors, both with vlens_step; the optimizer's
 * metadata also holds opts (under opts_key) and, when extra_key is set,
 * extra_value. */
typedef struct {
  const char *out_dir, *who;
  const vl_adamw *opt; /* its parameters are the model's */
  int64_t step;
  const char *opts_key;
  cJSON *opts; /* deleted by the save; NULL: no memory */
  const char *extra_key, *extra_value;
  /* the shape a parameter is saved with; NULL: its own */
  void (*saved_shape)(const void *user, const vl_tensor *p, int *ndim, int64_t *shape);
  const void *user;
} vl_train_checkpoint;

/* Optimizer first, model second: a crash in between leaves steps that
 * differ, which vl_train_open_state reports instead of mixing states. */
int vl_train_save_checkpoint(const vl_train_checkpoint *ck);

#endif
