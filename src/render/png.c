#include "render/png.h"

#include <errno.h>
#include <stb/stb_image_write.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

typedef struct {
  uint8_t *data;
  size_t len, cap;
  int failed;
} membuf;

static void append(void *ctx, void *data, int size) {
  membuf *m = ctx;
  if (m->failed || size <= 0) return;
  if (m->len + (size_t)size > m->cap) {
    size_t nc = m->cap ? m->cap * 2 : 4096;
    while (nc < m->len + (size_t)size)
      nc *= 2;
    uint8_t *nd = realloc(m->data, nc);
    if (!nd) {
      m->failed = 1;
      return;
    }
    m->data = nd;
    m->cap = nc;
  }
  memcpy(m->data + m->len, data, (size_t)size);
  m->len += (size_t)size;
}

int vl_png_encode(const vl_image *img, uint8_t **out, size_t *len) {
  *out = NULL;
  *len = 0;
  if (!img || !img->pixels || img->width <= 0 || img->height <= 0 ||
      (img->channels != 1 && img->channels != 3 && img->channels != 4))
    return vl_error(VL_ERR_INVALID, "png: no image or bad image shape");
  membuf m = {0};
  int ok = stbi_write_png_to_func(append, &m, img->width, img->height, img->channels, img->pixels,
                                  img->width * img->channels);
  if (!ok || m.failed) {
    free(m.data);
    return vl_error(VL_ERR_NOMEM, "png: encoding %dx%d failed", img->width, img->height);
  }
  *out = m.data;
  *len = m.len;
  return VL_OK;
}

int vl_png_write(const vl_image *img, const char *path) {
  if (!path) return vl_error(VL_ERR_INVALID, "png: no output path");
  uint8_t *data;
  size_t len;
  int st = vl_png_encode(img, &data, &len);
  if (st) return vl_error_context("%s", path);
  FILE *fp = fopen(path, "wb");
  if (!fp) {
    st = vl_error(VL_ERR_IO, "%s: cannot write PNG: %s", path, strerror(errno));
  } else {
    size_t n = fwrite(data, 1, len, fp);
    int e = errno;
    if (fclose(fp) != 0 || n != len)
      st = vl_error(VL_ERR_IO, "%s: writing PNG failed: %s", path, strerror(e ? e : errno));
  }
  free(data);
  return st;
}
