/* Heatmaps: a grid of gw x gh cells (row-major floats, normalised to [0,1])
 * drawn at image resolution.
 *
 * Upsampling is bilinear with cell centres at ((c+0.5)*W/gw, (r+0.5)*H/gh)
 * in pixel units and pixel (x,y) sampled at its centre (x+0.5, y+0.5); beyond
 * the outermost centres the edge cells' values are held (clamped). This is
 * PyTorch's F.interpolate(mode="bilinear", align_corners=False).
 *
 * Overlay: out = (1-a)*img + a*colormap(v) per channel, with colormap(v) the
 * 8-bit colour of vl_colormap_apply, computed in double and rounded to
 * nearest as floor(x + 0.5). */
#ifndef VL_RENDER_HEATMAP_H
#define VL_RENDER_HEATMAP_H

#include <stddef.h>

#include "io/image.h"
#include "render/colormap.h"

/* Min-max scales v[0..n) to [0,1] in place; a constant grid becomes all 0.
 * VL_ERR_INVALID on NaN/inf or n == 0. */
int vl_heatmap_normalize(float *v, size_t n);

/* Bilinear upsampling of grid (gw x gh) to out (w x h floats). */
int vl_heatmap_upsample(const float *grid, int gw, int gh, int w, int h, float *out);

/* New RGB image w x h: colormap of the upsampled grid. */
vl_image *vl_heatmap_colorize(const float *grid, int gw, int gh, int w, int h, vl_colormap cm);

/* New RGB image, the size of img (1, 3 or 4 channels; alpha ignored), with
 * the upsampled, colour-mapped grid blended at opacity alpha in [0,1]. */
vl_image *vl_heatmap_overlay(const vl_image *img, const float *grid, int gw, int gh, vl_colormap cm,
                             float alpha);

#endif
