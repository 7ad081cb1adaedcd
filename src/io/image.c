#include "io/image.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"

vl_image *vl_image_new(int width, int height, int channels) {
  if (width <= 0 || height <= 0 || width > (1 << 16) || height > (1 << 16) ||
      (channels != 1 && channels != 3 && channels != 4)) {
    vl_error(VL_ERR_INVALID, "bad image size %dx%d with %d channels", width, height, channels);
    return NULL;
  }
  vl_image *img = calloc(1, sizeof *img);
  size_t n = (size_t)width * (size_t)height * (size_t)channels;
  if (img) img->pixels = calloc(n, 1);
  if (!img || !img->pixels) {
    free(img);
    vl_error(VL_ERR_NOMEM, "out of memory for a %dx%d image", width, height);
    return NULL;
  }
  img->width = width;
  img->height = height;
  img->channels = channels;
  return img;
}

vl_image *vl_image_clone(const vl_image *src) {
  vl_image *img = vl_image_new(src->width, src->height, src->channels);
  if (img) memcpy(img->pixels, src->pixels, (size_t)src->width * src->height * src->channels);
  return img;
}

vl_image *vl_image_to_rgb(const vl_image *img) {
  if (!img || !img->pixels) {
    vl_error(VL_ERR_INVALID, "no image to convert");
    return NULL;
  }
  if (img->channels == 3) return vl_image_clone(img);
  vl_image *o = vl_image_new(img->width, img->height, 3);
  if (!o) return NULL;
  const size_t n = (size_t)img->width * img->height;
  for (size_t i = 0; i < n; i++)
    for (int ch = 0; ch < 3; ch++)
      o->pixels[i * 3 + ch] = img->pixels[i * img->channels + (img->channels >= 3 ? ch : 0)];
  return o;
}

void vl_image_free(vl_image *img) {
  if (!img) return;
  free(img->pixels);
  free(img);
}
