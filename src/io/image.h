/* 8-bit images in memory, and decoding them from files. */
#ifndef VL_IO_IMAGE_H
#define VL_IO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int width, height;
  int channels;     /* 1 (grey), 3 (RGB) or 4 (RGBA) */
  uint8_t *pixels;  /* row-major, interleaved, width*height*channels bytes, owned */
} vl_image;

/* Default refusal limit for decoded images: 64 megapixels. */
#define VL_IMAGE_DEFAULT_MAX_PIXELS (INT64_C(64) * 1000 * 1000)

/* New zero-filled image; NULL + vl_error on bad size or no memory. */
vl_image *vl_image_new(int width, int height, int channels);
vl_image *vl_image_clone(const vl_image *img);
void vl_image_free(vl_image *img);
/* A 3-channel copy: grey replicated, alpha dropped (Pillow's convert("RGB"),
 * which Hugging Face processors call). */
vl_image *vl_image_to_rgb(const vl_image *img);

/* Decodes PNG, JPEG, BMP, GIF (first frame) or WebP to RGB (3 channels).
 * max_pixels <= 0 means VL_IMAGE_DEFAULT_MAX_PIXELS. Errors name the file. */
vl_image *vl_image_load(const char *path, int64_t max_pixels);
vl_image *vl_image_decode(const uint8_t *data, size_t len, int64_t max_pixels,
                          const char *name_for_errors);

#endif
