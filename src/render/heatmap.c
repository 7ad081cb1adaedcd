#include "render/heatmap.h"

#include <math.h>
#include <stdlib.h>

#include "base/error.h"
#include "render/canvas.h"

int vl_heatmap_normalize(float *v, size_t n) {
  if (!v || n == 0) return vl_error(VL_ERR_INVALID, "heatmap: empty grid");
  float lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(v[i]))
      return vl_error(VL_ERR_INVALID, "heatmap: cell %zu is not finite (%g)", i, (double)v[i]);
    if (v[i] < lo) lo = v[i];
    if (v[i] > hi) hi = v[i];
  }
  float range = hi - lo;
  for (size_t i = 0; i < n; i++)
    v[i] = range > 0 ? (v[i] - lo) / range : 0.f;
  return VL_OK;
}

static int check_grid(const float *grid, int gw, int gh, int w, int h) {
  if (!grid || gw <= 0 || gh <= 0)
    return vl_error(VL_ERR_INVALID, "heatmap: bad grid %dx%d", gw, gh);
  if (w <= 0 || h <= 0 || w > (1 << 16) || h > (1 << 16))
    return vl_error(VL_ERR_INVALID, "heatmap: bad output size %dx%d", w, h);
  for (size_t i = 0; i < (size_t)gw * gh; i++)
    if (!isfinite(grid[i]))
      return vl_error(VL_ERR_INVALID, "heatmap: cell %zu is not finite (%g)", i, (double)grid[i]);
  return VL_OK;
}

/* Source coordinate of output pixel i along an axis of n_out pixels over
 * n_in cells: index i0, neighbour i1 and weight t of i1. */
static void axis_coord(int i, int n_out, int n_in, int *i0, int *i1, double *t) {
  double s = (i + 0.5) * n_in / n_out - 0.5;
  if (s < 0) s = 0;
  if (s > n_in - 1) s = n_in - 1;
  int a = (int)floor(s);
  *i0 = a;
  *i1 = a + 1 < n_in ? a + 1 : a;
  *t = s - a;
}

int vl_heatmap_upsample(const float *grid, int gw, int gh, int w, int h, float *out) {
  int st = check_grid(grid, gw, gh, w, h);
  if (st) return st;
  if (!out) return vl_error(VL_ERR_INVALID, "heatmap: no output buffer");
  /* the columns' source cells and weights, the same for every row */
  int *c0 = malloc((size_t)w * 2 * sizeof *c0);
  double *tx = malloc((size_t)w * sizeof *tx);
  if (!c0 || !tx) {
    free(c0);
    free(tx);
    return vl_error(VL_ERR_NOMEM, "heatmap: out of memory for %dx%d", w, h);
  }
  int *c1 = c0 + w;
  for (int x = 0; x < w; x++)
    axis_coord(x, w, gw, &c0[x], &c1[x], &tx[x]);
  for (int y = 0; y < h; y++) {
    int r0, r1;
    double ty;
    axis_coord(y, h, gh, &r0, &r1, &ty);
    const float *g0 = grid + r0 * gw, *g1 = grid + r1 * gw;
    float *o = out + (size_t)y * w;
    for (int x = 0; x < w; x++) {
      double top = g0[c0[x]] * (1 - tx[x]) + g0[c1[x]] * tx[x];
      double bot = g1[c0[x]] * (1 - tx[x]) + g1[c1[x]] * tx[x];
      o[x] = (float)(top * (1 - ty) + bot * ty);
    }
  }
  free(c0);
  free(tx);
  return VL_OK;
}

static float *upsampled(const float *grid, int gw, int gh, int w, int h) {
  float *v = malloc((size_t)w * h * sizeof *v);
  if (!v) {
    vl_error(VL_ERR_NOMEM, "heatmap: out of memory for %dx%d", w, h);
    return NULL;
  }
  if (vl_heatmap_upsample(grid, gw, gh, w, h, v)) {
    free(v);
    return NULL;
  }
  return v;
}

vl_image *vl_heatmap_colorize(const float *grid, int gw, int gh, int w, int h, vl_colormap cm) {
  float *v = upsampled(grid, gw, gh, w, h);
  if (!v) return NULL;
  vl_image *out = vl_image_new(w, h, 3);
  if (out)
    for (size_t i = 0; i < (size_t)w * h; i++)
      vl_colormap_apply(cm, v[i], out->pixels + i * 3);
  free(v);
  return out;
}

vl_image *vl_heatmap_overlay(const vl_image *img, const float *grid, int gw, int gh, vl_colormap cm,
                             float alpha) {
  if (!img || !img->pixels) {
    vl_error(VL_ERR_INVALID, "heatmap overlay: no image");
    return NULL;
  }
  if (!(alpha >= 0.f && alpha <= 1.f)) {
    vl_error(VL_ERR_INVALID, "heatmap overlay: alpha %g outside [0,1]", (double)alpha);
    return NULL;
  }
  float *v = upsampled(grid, gw, gh, img->width, img->height);
  if (!v) return NULL;
  vl_image *out = vl_image_to_rgb(img);
  if (out) {
    double a = alpha;
    for (size_t i = 0; i < (size_t)img->width * img->height; i++) {
      uint8_t c[3];
      vl_colormap_apply(cm, v[i], c);
      uint8_t *p = out->pixels + i * 3;
      for (int k = 0; k < 3; k++)
        p[k] = (uint8_t)floor((1 - a) * p[k] + a * c[k] + 0.5);
    }
  }
  free(v);
  return out;
}
