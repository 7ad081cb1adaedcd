/* Resizing 8-bit images bit-for-bit like Pillow 9.4's Image.resize (the
 * library the Hugging Face image processors call): separable convolution,
 * horizontal pass then vertical, the filter support widened by the scale
 * when shrinking, coefficients normalised to 22-bit fixed point and rounded
 * and clipped as src/libImaging/Resample.c does. NEAREST follows Pillow's
 * affine nearest-neighbour path (Geometry.c, ImagingScaleAffine). */
#ifndef VL_IO_RESIZE_H
#define VL_IO_RESIZE_H

#include "io/image.h"

/* Values equal Pillow's Image.Resampling numbers, so a preprocessor config's
 * "resample": 3 can be cast directly. */
typedef enum {
  VL_RESAMPLE_NEAREST = 0,
  VL_RESAMPLE_LANCZOS = 1,
  VL_RESAMPLE_BILINEAR = 2,
  VL_RESAMPLE_BICUBIC = 3,
  VL_RESAMPLE_BOX = 4,
  VL_RESAMPLE_HAMMING = 5
} vl_resample;

/* New image of width x height. Channels are resampled independently (for
 * RGBA that is without Pillow's premultiplication, so only 1- and 3-channel
 * images match Pillow exactly). NULL + vl_error on bad sizes or filter. */
vl_image *vl_image_resize(const vl_image *img, int width, int height, vl_resample filter);

/* Name for messages ("bicubic"); NULL for an unknown value. */
const char *vl_resample_name(int filter);

#endif
