/* `attention`: probabilities from the query to the image tokens at one
 * layer, mean over heads. */
#include <stddef.h>

#include "base/error.h"
#include "explain/method.h"

int vl_method_attention(const vl_explain_input *in, float *cells) {
  const char *M = "attention", *which;
  const vl_attn_stack *s = vl_explain_read_stack(in, &which);
  int rc = vl_explain_check_grid(in, M);
  if (!rc) rc = vl_explain_check_stack(s, 0, M, which);
  if (!rc) rc = vl_explain_check_tokens(in->image_tokens, in->n_image, s->n_k, M, "keys");
  if (rc) return rc;
  int L = in->layer < 0 ? s->n_layers - 1 : in->layer;
  if (L >= s->n_layers)
    return vl_error(VL_ERR_INVALID, "attention: layer %d, the %s stack has %d", in->layer, which,
                    s->n_layers);
  if (in->query < 0 || in->query >= s->n_q)
    return vl_error(VL_ERR_INVALID, "attention: query %d outside the %d queries", in->query,
                    s->n_q);
  size_t hs = (size_t)s->n_q * s->n_k;
  const float *row = s->probs[L] + (size_t)in->query * s->n_k;
  for (int i = 0; i < in->n_image; i++) {
    double acc = 0;
    for (int h = 0; h < s->n_heads; h++)
      acc += row[(size_t)h * hs + in->image_tokens[i]];
    cells[i] = (float)(acc / s->n_heads);
  }
  return VL_OK;
}
