/* Public image API: an opaque handle over the internal vl_image. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image_write.h>

#include "api/internal.h"
#include "base/error.h"

vlens_image *vlens_image_load(const char *path, int64_t max_pixels) {
  if (!path) {
    vl_error(VL_ERR_INVALID, "vlens_image_load: path is NULL");
    return NULL;
  }
  vl_image *img = vl_image_load(path, max_pixels);
  if (!img) return NULL;
  vlens_image *h = malloc(sizeof *h);
  if (!h) {
    vl_image_free(img);
    vl_error(VL_ERR_NOMEM, "%s: out of memory", path);
    return NULL;
  }
  h->img = img;
  return h;
}

int vlens_image_width(const vlens_image *img) { return img ? img->img->width : 0; }
int vlens_image_height(const vlens_image *img) { return img ? img->img->height : 0; }
const uint8_t *vlens_image_pixels(const vlens_image *img) { return img ? img->img->pixels : NULL; }

int vlens_image_save_png(const vlens_image *img, const char *path) {
  if (!img || !path) return vl_error(VL_ERR_INVALID, "vlens_image_save_png: NULL argument");
  const vl_image *im = img->img;
  errno = 0;
  if (!stbi_write_png(path, im->width, im->height, im->channels, im->pixels,
                      im->width * im->channels))
    return vl_error(VL_ERR_IO, "%s: cannot write PNG%s%s", path, errno ? ": " : "",
                    errno ? strerror(errno) : "");
  return VL_OK;
}

void vlens_image_free(vlens_image *img) {
  if (!img) return;
  vl_image_free(img->img);
  free(img);
}
