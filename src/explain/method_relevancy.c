/* `relevancy` (Chefer et al. 2021). Decoder-only and vision-only: R = I,
 * R <- R + Ā_l R per layer, read row q; only row q is needed, so it is
 * carried as a row vector from the last layer down:
 * e_q (I + Ā_L) ... (I + Ā_1). Encoder-decoder: the bi-modal rules. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "explain/method.h"
#include "explain/relevancy.h"

int vl_explain_bimodal(const vl_explain_input *in, int use_grads, const char *M, float *cells) {
  int rc = vl_explain_check_grid(in, M);
  if (!rc) rc = vl_explain_check_stack(&in->self, use_grads, M, "decoder self");
  if (!rc) rc = vl_explain_check_stack(&in->cross, use_grads, M, "cross");
  if (rc) return rc;
  const vl_attn_stack *sa = &in->self, *ca = &in->cross, *va = &in->vision;
  int nt = sa->n_q, ni = ca->n_k;
  if (sa->n_k != nt || ca->n_q != nt || ca->n_layers != sa->n_layers)
    return vl_error(VL_ERR_INVALID,
                    "%s: decoder self-attention %dx%d (%d layers) and cross-attention %dx%d (%d "
                    "layers) do not match",
                    M, sa->n_q, sa->n_k, sa->n_layers, ca->n_q, ca->n_k, ca->n_layers);
  if (va->n_layers > 0) {
    if ((rc = vl_explain_check_stack(va, use_grads, M, "vision"))) return rc;
    if (va->n_q != ni || va->n_k != ni)
      return vl_error(VL_ERR_INVALID, "%s: vision attention %dx%d, cross-attention reads %d keys",
                      M, va->n_q, va->n_k, ni);
  }
  if ((rc = vl_explain_check_tokens(in->image_tokens, in->n_image, ni, M, "encoder tokens")))
    return rc;
  if (in->query < 0 || in->query >= nt)
    return vl_error(VL_ERR_INVALID, "%s: query %d outside the %d text tokens", M, in->query, nt);
  vl_relevancy R;
  if ((rc = vl_relevancy_init(&R, nt, ni))) return rc;
  double *cam = R.cam;
  for (int l = 0; l < va->n_layers && !rc; l++) {
    vl_relevancy_head_mean(va->probs[l], use_grads ? va->grads[l] : NULL, va->n_heads, ni, ni, cam);
    rc = vl_relevancy_self_image(&R, cam);
  }
  for (int l = 0; l < sa->n_layers && !rc; l++) {
    vl_relevancy_head_mean(sa->probs[l], use_grads ? sa->grads[l] : NULL, sa->n_heads, nt, nt, cam);
    if ((rc = vl_relevancy_self_text(&R, cam))) break;
    vl_relevancy_head_mean(ca->probs[l], use_grads ? ca->grads[l] : NULL, ca->n_heads, nt, ni, cam);
    rc = vl_relevancy_cross_text(&R, cam, 1);
  }
  if (!rc)
    for (int i = 0; i < in->n_image; i++)
      cells[i] = (float)R.R_ti[(size_t)in->query * ni + in->image_tokens[i]];
  vl_relevancy_free(&R);
  return rc;
}

/* v <- v + v * mean_h((G ⊙ A)⁺) for l = L-1 .. 0, v = e_q. */
static int relevancy_row(const vl_explain_input *in, const vl_attn_stack *s, const char *which,
                         float *cells) {
  const char *M = "relevancy";
  int rc = vl_explain_check_stack(s, 1, M, which);
  if (rc) return rc;
  int T = s->n_q;
  if (s->n_k != T)
    return vl_error(VL_ERR_INVALID, "relevancy: %s attention is %dx%d, not square", which, T,
                    s->n_k);
  if ((rc = vl_explain_check_tokens(in->image_tokens, in->n_image, T, M, "positions"))) return rc;
  if (in->query < 0 || in->query >= T)
    return vl_error(VL_ERR_INVALID, "relevancy: query %d outside the %d positions", in->query, T);
  double *v = calloc(2 * (size_t)T, sizeof(double));
  if (!v) return vl_error(VL_ERR_NOMEM, "relevancy: out of memory");
  double *nv = v + T;
  v[in->query] = 1;
  size_t hs = (size_t)T * T;
  for (int l = s->n_layers - 1; l >= 0; l--) {
    memcpy(nv, v, (size_t)T * sizeof(double));
    /* (v Ā)_k = sum_j v_j Ā_jk with Ā_jk = mean_h max(0, G A). */
    for (int j = 0; j < T; j++) {
      if (v[j] == 0) continue;
      for (int h = 0; h < s->n_heads; h++) {
        const float *a = s->probs[l] + h * hs + (size_t)j * T;
        const float *g = s->grads[l] + h * hs + (size_t)j * T;
        double w = v[j] / s->n_heads;
        for (int k = 0; k < T; k++) {
          double x = (double)g[k] * a[k];
          if (x > 0) nv[k] += w * x;
        }
      }
    }
    memcpy(v, nv, (size_t)T * sizeof(double));
  }
  for (int i = 0; i < in->n_image; i++)
    cells[i] = (float)v[in->image_tokens[i]];
  free(v);
  return VL_OK;
}

int vl_method_relevancy(const vl_explain_input *in, float *cells) {
  int rc = vl_explain_check_grid(in, "relevancy");
  if (rc) return rc;
  switch (in->arch) {
  case VL_ARCH_ENCODER_DECODER: return vl_explain_bimodal(in, 1, "relevancy", cells);
  case VL_ARCH_VISION_ONLY: return relevancy_row(in, &in->vision, "vision", cells);
  default: return relevancy_row(in, &in->self, "self", cells);
  }
}
