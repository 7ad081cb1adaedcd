/* AdamW, gradient clipping and the LR schedule (see optim.h). */
#include "tensor/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/threads.h"

vl_adamw_cfg vl_adamw_default_cfg(void) {
  vl_adamw_cfg c = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
  return c;
}

void vl_adamw_free(vl_adamw *o) {
  if (!o) return;
  for (int64_t i = 0; i < o->n; i++) {
    if (o->m) free(o->m[i]);
    if (o->v) free(o->v[i]);
  }
  free(o->m);
  free(o->v);
  free(o->decay);
  free(o->params);
  free(o);
}

vl_adamw *vl_adamw_new(vl_tensor *const *params, const bool *decay, int64_t n,
                       const vl_adamw_cfg *cfg) {
  if (n < 0 || (n > 0 && !params)) {
    vl_error(VL_ERR_INVALID, "adamw: bad parameter list");
    return NULL;
  }
  if (cfg && (!(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1) ||
              !(cfg->eps > 0) || !(cfg->weight_decay >= 0))) {
    vl_error(VL_ERR_INVALID, "adamw: betas must be in [0, 1), eps > 0, weight_decay >= 0");
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) {
    const vl_tensor *p = params[i];
    if (!p || p->dtype != VL_F32 || !p->grad) {
      vl_error(VL_ERR_INVALID, "adamw: parameter %lld ('%s') must be F32 with a gradient buffer",
               (long long)i, p && p->name ? p->name : "?");
      return NULL;
    }
  }
  vl_adamw *o = calloc(1, sizeof *o);
  size_t nn = (size_t)(n > 0 ? n : 1);
  if (!o || !(o->params = malloc(nn * sizeof *o->params)) ||
      !(o->decay = malloc(nn * sizeof *o->decay)) || !(o->m = calloc(nn, sizeof *o->m)) ||
      !(o->v = calloc(nn, sizeof *o->v))) {
    vl_adamw_free(o);
    vl_error(VL_ERR_NOMEM, "adamw: out of memory");
    return NULL;
  }
  o->n = n;
  o->cfg = cfg ? *cfg : vl_adamw_default_cfg();
  for (int64_t i = 0; i < n; i++) {
    o->params[i] = params[i];
    o->decay[i] = decay ? decay[i] : true;
    size_t bytes = (size_t)params[i]->numel * sizeof(float);
    if (!(o->m[i] = calloc(1, bytes ? bytes : 1)) || !(o->v[i] = calloc(1, bytes ? bytes : 1))) {
      vl_adamw_free(o);
      vl_error(VL_ERR_NOMEM, "adamw: out of memory for the moments");
      return NULL;
    }
  }
  return o;
}

typedef struct {
  float *p, *m, *v;
  const float *g;
  float decay_mul, b1, b2, step_size, bc2_sqrt, eps;
} adam_job;

/* torch 1.13 _single_tensor_adamw, elementwise in float as torch's CPU
 * kernels; scalars (bias corrections) in double then rounded, as Python. */
static void adam_range(void *arg, int64_t begin, int64_t end, int worker) {
  const adam_job *j = arg;
  for (int64_t i = begin; i < end; i++) {
    float p = j->p[i] * j->decay_mul;
    float g = j->g[i];
    float m = j->m[i] * j->b1 + g * (1.0f - j->b1);
    float v = j->v[i] * j->b2 + g * g * (1.0f - j->b2);
    float denom = sqrtf(v) / j->bc2_sqrt + j->eps;
    j->p[i] = p - j->step_size * (m / denom);
    j->m[i] = m;
    j->v[i] = v;
  }
}

int vl_adamw_step(vl_adamw *o, float lr) {
  if (!o) return vl_error(VL_ERR_INVALID, "adamw: no optimizer");
  if (!isfinite(lr) || lr < 0) return vl_error(VL_ERR_INVALID, "adamw: learning rate %g", lr);
  o->step++;
  const double b1 = o->cfg.beta1, b2 = o->cfg.beta2;
  const double bc1 = 1.0 - pow(b1, (double)o->step), bc2 = 1.0 - pow(b2, (double)o->step);
  for (int64_t i = 0; i < o->n; i++) {
    vl_tensor *t = o->params[i];
    adam_job j = {.p = vl_f32(t),
                  .m = o->m[i],
                  .v = o->v[i],
                  .g = t->grad,
                  .decay_mul = o->decay[i] ? (float)(1.0 - (double)lr * o->cfg.weight_decay) : 1.0f,
                  .b1 = o->cfg.beta1,
                  .b2 = o->cfg.beta2,
                  .step_size = (float)((double)lr / bc1),
                  .bc2_sqrt = (float)sqrt(bc2),
                  .eps = o->cfg.eps};
    vl_parallel_for(t->numel, 16384, adam_range, &j);
  }
  return VL_OK;
}

void vl_zero_param_grads(vl_tensor *const *params, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (params[i] && params[i]->grad)
      memset(params[i]->grad, 0, (size_t)params[i]->numel * sizeof(float));
}

double vl_clip_grad_norm(vl_tensor *const *params, int64_t n, double max_norm) {
  double ss = 0;
  for (int64_t i = 0; i < n; i++) {
    const float *g = params[i]->grad;
    if (!g) continue;
    for (int64_t k = 0; k < params[i]->numel; k++)
      ss += (double)g[k] * g[k];
  }
  const double norm = sqrt(ss);
  if (max_norm > 0 && isfinite(norm) && norm > max_norm) {
    const float coef = (float)(max_norm / (norm + 1e-6));
    for (int64_t i = 0; i < n; i++) {
      float *g = params[i]->grad;
      if (!g) continue;
      for (int64_t k = 0; k < params[i]->numel; k++)
        g[k] *= coef;
    }
  }
  return norm;
}

double vl_lr_cosine(int64_t step, int64_t total, int64_t warmup, double peak, double min_ratio) {
  if (step < 0) step = 0;
  if (warmup > 0 && step < warmup) return peak * (double)step / (double)warmup;
  const int64_t span = total - warmup > 1 ? total - warmup : 1;
  double progress = (double)(step - warmup) / (double)span;
  if (progress > 1) progress = 1;
  const double cosv = 0.5 * (1.0 + cos(M_PI * progress));
  return peak * (min_ratio + (1.0 - min_ratio) * cosv);
}
