/* Colormaps: a value in [0,1] to an RGB colour.
 *
 * All three behave like matplotlib's 256-entry lookup tables: entry i holds
 * the colour at x = i/255, and a value v picks entry min(255, floor(v*256))
 * (values below 0 clamp to entry 0, above 1 to 255, NaN maps to entry 0).
 * viridis and inferno are matplotlib's published tables; jet is matplotlib's
 * piecewise-linear segment definition sampled at those 256 points.
 * 8-bit output rounds each channel to nearest: (uint8)floor(c*255 + 0.5). */
#ifndef VL_RENDER_COLORMAP_H
#define VL_RENDER_COLORMAP_H

#include <stdint.h>

typedef enum { VL_CMAP_JET = 0, VL_CMAP_VIRIDIS, VL_CMAP_INFERNO } vl_colormap;

/* Colour for v as floats in [0,1]. */
void vl_colormap_apply_f(vl_colormap cm, float v, float rgb[3]);
/* Colour for v as 8-bit RGB. */
void vl_colormap_apply(vl_colormap cm, float v, uint8_t rgb[3]);

/* "jet", "viridis", "inferno" -> *out; VL_ERR_INVALID naming the bad name. */
int vl_colormap_from_name(const char *name, vl_colormap *out);
const char *vl_colormap_name(vl_colormap cm);

#endif
