/* `random`: the seeded uniform baseline. */
#include "explain/method.h"
#include "io/rng.h"

int vl_method_random(const vl_explain_input *in, float *cells) {
  int rc = vl_explain_check_grid(in, "random");
  if (rc) return rc;
  vl_rng r;
  vl_rng_seed(&r, in->seed, 0, 0x72616e646f6dULL /* "random" */);
  for (int i = 0; i < in->n_image; i++)
    cells[i] = (float)vl_rng_uniform(&r);
  return 0;
}
