/* Optimisation for training: AdamW as torch.optim.AdamW (decoupled weight
 * decay, bias correction, single-tensor path of PyTorch 1.13), global-norm
 * gradient clipping as torch.nn.utils.clip_grad_norm_, and the linear
 * warm-up + cosine learning-rate schedule of transformers'
 * get_cosine_schedule_with_warmup. Parameters are F32 tensors with a grad
 * buffer (models/weights.h with trainable = true). */
#ifndef VL_TENSOR_OPTIM_H
#define VL_TENSOR_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "tensor/tensor.h"

typedef struct {
  float beta1, beta2, eps, weight_decay; /* torch defaults: 0.9, 0.999, 1e-8, 0.01 */
} vl_adamw_cfg;

vl_adamw_cfg vl_adamw_default_cfg(void);

typedef struct {
  vl_adamw_cfg cfg;
  int64_t n;
  vl_tensor **params; /* not owned */
  bool *decay;        /* per parameter: apply weight decay */
  float **m, **v;     /* first / second moments, numel each (malloc'd) */
  int64_t step;       /* optimizer steps taken so far */
} vl_adamw;

/* params: n F32 tensors with ->grad; decay may be NULL (decay all). NULL +
 * vl_error on a non-F32 parameter, a missing grad, or no memory. */
vl_adamw *vl_adamw_new(vl_tensor *const *params, const bool *decay, int64_t n,
                       const vl_adamw_cfg *cfg);
void vl_adamw_free(vl_adamw *o);
/* One update with learning rate lr from each parameter's ->grad (step is
 * incremented first, as torch). Gradients are left as they are. */
int vl_adamw_step(vl_adamw *o, float lr);

/* Sets every parameter's grad to zero. */
void vl_zero_param_grads(vl_tensor *const *params, int64_t n);
/* L2 norm of all gradients together (computed in double). When max_norm > 0
 * and the norm exceeds it, every gradient is scaled by
 * max_norm / (norm + 1e-6) as clip_grad_norm_. Returns the norm before
 * clipping (NaN/inf pass through so the caller can stop). */
double vl_clip_grad_norm(vl_tensor *const *params, int64_t n, double max_norm);

/* Learning rate of optimizer step `step` (0-based) out of `total`: peak *
 * step / warmup during warm-up, then peak * (min_ratio + (1 - min_ratio) *
 * 0.5 * (1 + cos(pi * progress))) with progress = (step - warmup) /
 * (total - warmup), clamped to [0, 1]. min_ratio = 0 is exactly transformers'
 * get_cosine_schedule_with_warmup (whose first step has lr 0). */
double vl_lr_cosine(int64_t step, int64_t total, int64_t warmup, double peak, double min_ratio);

#endif
