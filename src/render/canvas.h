/* Small drawing helpers on vl_image used by figures: RGB conversion,
 * resizing, rectangles and copying one image into another. */
#ifndef VL_RENDER_CANVAS_H
#define VL_RENDER_CANVAS_H

#include <stdint.h>

#include "io/image.h"


/* New RGB image of width x height filled with rgb. */
vl_image *vl_canvas_new(int width, int height, const uint8_t rgb[3]);

/* New RGB image of the given size for display (io/resize.h does the work).
 * Whole-number upscales repeat pixels (nearest neighbour), so small scenes
 * stay crisp; every other size is resampled bicubic (antialiased when
 * shrinking). */
vl_image *vl_canvas_scale(const vl_image *img, int width, int height);

/* Fills the rectangle clipped to the image (any channel count; the first
 * channel of a grey image gets rgb[0]). */
void vl_fill_rect(vl_image *img, int x, int y, int w, int h, const uint8_t rgb[3]);

/* Copies src (converted to dst's channels) with its top-left at (x,y),
 * clipped to dst. */
void vl_blit(vl_image *dst, const vl_image *src, int x, int y);

#endif
