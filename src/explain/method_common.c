/* The method registry and the input checks every method shares. */
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "explain/method.h"

static const vl_explain_method methods[] = {
    {"attention", vl_method_attention, VL_NEEDS_ATTN,
     "attention probabilities from the target to the image tokens, mean over heads"},
    {"rollout", vl_method_rollout, VL_NEEDS_ATTN,
     "attention rollout (Abnar & Zuidema 2020); bi-modal rules without gradients for "
     "encoder-decoder models"},
    {"gradcam", vl_method_gradcam, VL_NEEDS_ACTS, "Grad-CAM on image-token activations"},
    {"relevancy", vl_method_relevancy, VL_NEEDS_ATTN | VL_NEEDS_ATTN_GRAD,
     "gradient-weighted attention relevancy (Chefer et al. 2021)"},
    {"gradient", vl_method_gradient, VL_NEEDS_PIXEL_GRAD,
     "|dS/dpixels| summed over channels, pooled to the grid"},
    {"random", vl_method_random, 0, "seeded uniform random map (baseline)"},
};

const vl_explain_method *vl_explain_methods(int *count) {
  if (count) *count = (int)(sizeof methods / sizeof methods[0]);
  return methods;
}

const vl_explain_method *vl_explain_find(const char *name) {
  int n;
  const vl_explain_method *m = vl_explain_methods(&n);
  for (int i = 0; i < n; i++)
    if (name && strcmp(m[i].name, name) == 0) return &m[i];
  char list[256] = "";
  for (int i = 0; i < n; i++) {
    size_t len = strlen(list);
    snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", m[i].name);
  }
  vl_error(VL_ERR_NOTFOUND, "unknown explanation method '%s' (known: %s)", name ? name : "(null)",
           list);
  return NULL;
}

int vl_explain_run(const char *name, const vl_explain_input *in, float *cells) {
  const vl_explain_method *m = vl_explain_find(name);
  if (!m) return vl_last_error_code();
  if (!in || !cells) return vl_error(VL_ERR_INVALID, "%s: no input or output", name);
  return m->run(in, cells);
}

int vl_explain_check_grid(const vl_explain_input *in, const char *method) {
  if (in->grid_w <= 0 || in->grid_h <= 0)
    return vl_error(VL_ERR_INVALID, "%s: grid %dx%d must be positive", method, in->grid_w,
                    in->grid_h);
  if ((int64_t)in->grid_w * in->grid_h != in->n_image)
    return vl_error(VL_ERR_INVALID, "%s: %d image tokens do not fill the %dx%d grid", method,
                    in->n_image, in->grid_w, in->grid_h);
  return VL_OK;
}

int vl_explain_check_stack(const vl_attn_stack *s, int need_grads, const char *method,
                           const char *which) {
  if (s->n_layers <= 0 || !s->probs)
    return vl_error(VL_ERR_INVALID, "%s: no %s attention recorded", method, which);
  if (s->n_heads <= 0 || s->n_q <= 0 || s->n_k <= 0)
    return vl_error(VL_ERR_INVALID, "%s: %s attention has %d heads of %dx%d", method, which,
                    s->n_heads, s->n_q, s->n_k);
  if (need_grads && !s->grads)
    return vl_error(VL_ERR_INVALID, "%s: %s attention has no gradients (record them)", method,
                    which);
  for (int l = 0; l < s->n_layers; l++)
    if (!s->probs[l] || (need_grads && !s->grads[l]))
      return vl_error(VL_ERR_INVALID, "%s: %s attention layer %d is missing", method, which, l);
  return VL_OK;
}

int vl_explain_check_tokens(const int *idx, int n, int limit, const char *method,
                            const char *what) {
  if (n > 0 && !idx) return vl_error(VL_ERR_INVALID, "%s: no image token positions", method);
  for (int i = 0; i < n; i++)
    if (idx[i] < 0 || idx[i] >= limit)
      return vl_error(VL_ERR_INVALID, "%s: image token %d is at %d, outside the %d %s", method, i,
                      idx[i], limit, what);
  return VL_OK;
}

const vl_attn_stack *vl_explain_read_stack(const vl_explain_input *in, const char **which) {
  switch (in->arch) {
  case VL_ARCH_ENCODER_DECODER: *which = "cross"; return &in->cross;
  case VL_ARCH_VISION_ONLY: *which = "vision"; return &in->vision;
  default: *which = "self"; return &in->self;
  }
}
