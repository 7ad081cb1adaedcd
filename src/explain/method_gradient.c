/* `gradient`: saliency |dS/dpixels| summed over channels, then averaged over
 * the pixels of each cell (a pixel belongs to the cell holding its centre). */
#include <math.h>
#include <stdlib.h>

#include "base/error.h"
#include "explain/heatmap.h"
#include "explain/method.h"

int vl_method_gradient(const vl_explain_input *in, float *cells) {
  int rc = vl_explain_check_grid(in, "gradient");
  if (rc) return rc;
  int C = in->pix_c, H = in->pix_h, W = in->pix_w;
  if (!in->pixel_grad || C <= 0 || H <= 0 || W <= 0)
    return vl_error(VL_ERR_INVALID, "gradient: no pixel gradient recorded (%dx%dx%d)", C, H, W);
  if (W < in->grid_w || H < in->grid_h)
    return vl_error(VL_ERR_INVALID, "gradient: %dx%d pixels cannot fill a %dx%d grid", W, H,
                    in->grid_w, in->grid_h);
  double *sum = calloc((size_t)in->n_image, sizeof(double));
  int *cnt = calloc((size_t)in->n_image, sizeof(int));
  if (!sum || !cnt) {
    free(sum);
    free(cnt);
    return vl_error(VL_ERR_NOMEM, "gradient: out of memory");
  }
  size_t plane = (size_t)H * W;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      double s = 0;
      for (int c = 0; c < C; c++)
        s += fabs(in->pixel_grad[c * plane + (size_t)y * W + x]);
      int k = vl_heatmap_cell_of_pixel(x, y, W, H, in->grid_w, in->grid_h);
      sum[k] += s;
      cnt[k]++;
    }
  for (int i = 0; i < in->n_image; i++)
    cells[i] = cnt[i] ? (float)(sum[i] / cnt[i]) : 0.f;
  free(sum);
  free(cnt);
  return VL_OK;
}
