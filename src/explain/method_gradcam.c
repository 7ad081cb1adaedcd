/* `gradcam` (Selvaraju et al. 2017) on token activations:
 * alpha_c = mean over image tokens of dS/dX_ic, cam_i = ReLU(sum_c alpha_c X_ic). */
#include <stdlib.h>

#include "base/error.h"
#include "explain/method.h"

int vl_method_gradcam(const vl_explain_input *in, float *cells) {
  const char *M = "gradcam";
  int rc = vl_explain_check_grid(in, M);
  if (rc) return rc;
  if (!in->acts || !in->acts_grad || in->n_tokens <= 0 || in->channels <= 0)
    return vl_error(VL_ERR_INVALID, "gradcam: no activations/gradients recorded (%d x %d)",
                    in->n_tokens, in->channels);
  const int *rows = in->act_rows ? in->act_rows : in->image_tokens;
  if ((rc = vl_explain_check_tokens(rows, in->n_image, in->n_tokens, M, "activation rows")))
    return rc;
  int C = in->channels;
  double *alpha = calloc((size_t)C, sizeof(double));
  if (!alpha) return vl_error(VL_ERR_NOMEM, "gradcam: out of memory");
  for (int i = 0; i < in->n_image; i++) {
    const float *g = in->acts_grad + (size_t)rows[i] * C;
    for (int c = 0; c < C; c++)
      alpha[c] += g[c];
  }
  for (int c = 0; c < C; c++)
    alpha[c] /= in->n_image;
  for (int i = 0; i < in->n_image; i++) {
    const float *x = in->acts + (size_t)rows[i] * C;
    double s = 0;
    for (int c = 0; c < C; c++)
      s += alpha[c] * x[c];
    cells[i] = s > 0 ? (float)s : 0.f;
  }
  free(alpha);
  return VL_OK;
}
