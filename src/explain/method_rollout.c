/* `rollout` (Abnar & Zuidema 2020): Â_l = ½ mean_h(A_l) + ½ I with rows
 * renormalised, R = Â_L ... Â_1, read row q. Only row q is needed, so it is
 * carried as a row vector: e_q Â_L, then Â_{L-1}, ... Encoder-decoder
 * models: the bi-modal relevancy rules with Ā = mean_h(A). */
#include <stdlib.h>

#include "base/error.h"
#include "explain/method.h"

static int rollout_row(const vl_explain_input *in, const vl_attn_stack *s, const char *which,
                       float *cells) {
  const char *M = "rollout";
  int rc = vl_explain_check_stack(s, 0, M, which);
  if (rc) return rc;
  int T = s->n_q;
  if (s->n_k != T)
    return vl_error(VL_ERR_INVALID, "rollout: %s attention is %dx%d, not square", which, T, s->n_k);
  if ((rc = vl_explain_check_tokens(in->image_tokens, in->n_image, T, M, "positions"))) return rc;
  if (in->query < 0 || in->query >= T)
    return vl_error(VL_ERR_INVALID, "rollout: query %d outside the %d positions", in->query, T);
  double *v = calloc(3 * (size_t)T, sizeof(double));
  if (!v) return vl_error(VL_ERR_NOMEM, "rollout: out of memory");
  double *nv = v + T, *row = nv + T;
  v[in->query] = 1;
  size_t hs = (size_t)T * T;
  for (int l = s->n_layers - 1; l >= 0; l--) {
    for (int k = 0; k < T; k++)
      nv[k] = 0;
    for (int j = 0; j < T; j++) {
      if (v[j] == 0) continue;
      double sum = 0;
      for (int k = 0; k < T; k++) {
        double a = 0;
        for (int h = 0; h < s->n_heads; h++)
          a += s->probs[l][h * hs + (size_t)j * T + k];
        row[k] = 0.5 * a / s->n_heads + 0.5 * (j == k);
        sum += row[k];
      }
      double w = sum > 0 ? v[j] / sum : 0;
      for (int k = 0; k < T; k++)
        nv[k] += w * row[k];
    }
    for (int k = 0; k < T; k++)
      v[k] = nv[k];
  }
  for (int i = 0; i < in->n_image; i++)
    cells[i] = (float)v[in->image_tokens[i]];
  free(v);
  return VL_OK;
}

int vl_method_rollout(const vl_explain_input *in, float *cells) {
  int rc = vl_explain_check_grid(in, "rollout");
  if (rc) return rc;
  switch (in->arch) {
  case VL_ARCH_ENCODER_DECODER: return vl_explain_bimodal(in, 0, "rollout", cells);
  case VL_ARCH_VISION_ONLY: return rollout_row(in, &in->vision, "vision", cells);
  default: return rollout_row(in, &in->self, "self", cells);
  }
}
