/* PNG output (zlib; Paeth-filtered rows). */
#ifndef VL_RENDER_PNG_H
#define VL_RENDER_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "io/image.h"

/* PNG bytes of img (1, 3 or 4 channels) in *out (malloc'd, caller frees). */
int vl_png_encode(const vl_image *img, uint8_t **out, size_t *len);
/* Writes img as a PNG file; VL_ERR_IO naming the path and the reason. */
int vl_png_write(const vl_image *img, const char *path);

#endif
