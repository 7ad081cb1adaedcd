#include "render/canvas.h"

#include <string.h>

#include "base/error.h"
#include "io/resize.h"

vl_image *vl_canvas_new(int width, int height, const uint8_t rgb[3]) {
  vl_image *img = vl_image_new(width, height, 3);
  if (img) vl_fill_rect(img, 0, 0, width, height, rgb);
  return img;
}

vl_image *vl_canvas_scale(const vl_image *img, int width, int height) {
  vl_image *rgb = vl_image_to_rgb(img);
  if (!rgb || (width == rgb->width && height == rgb->height)) return rgb;
  int whole = width % rgb->width == 0 && height % rgb->height == 0;
  vl_image *out =
      vl_image_resize(rgb, width, height, whole ? VL_RESAMPLE_NEAREST : VL_RESAMPLE_BICUBIC);
  vl_image_free(rgb);
  return out;
}

void vl_fill_rect(vl_image *img, int x, int y, int w, int h, const uint8_t rgb[3]) {
  int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
  int x1 = x + w > img->width ? img->width : x + w;
  int y1 = y + h > img->height ? img->height : y + h;
  int ch = img->channels;
  if (ch == 3 && x1 > x0 && y1 > y0) { /* the first row, then copies of it */
    const size_t stride = (size_t)img->width * 3, n = (size_t)(x1 - x0) * 3;
    uint8_t *first = img->pixels + (size_t)y0 * stride + (size_t)x0 * 3;
    for (int xx = 0; xx < x1 - x0; xx++)
      memcpy(first + 3 * xx, rgb, 3);
    for (int yy = y0 + 1; yy < y1; yy++)
      memcpy(first + (size_t)(yy - y0) * stride, first, n);
    return;
  }
  for (int yy = y0; yy < y1; yy++)
    for (int xx = x0; xx < x1; xx++) {
      uint8_t *p = img->pixels + ((size_t)yy * img->width + xx) * ch;
      for (int c = 0; c < ch; c++)
        p[c] = c < 3 ? rgb[ch == 1 ? 0 : c] : 255;
    }
}

void vl_blit(vl_image *dst, const vl_image *src, int x, int y) {
  int sc = src->channels, dc = dst->channels;
  if (sc == 3 && dc == 3) { /* rows are plain copies of the visible span */
    int sx0 = x < 0 ? -x : 0, sx1 = x + src->width > dst->width ? dst->width - x : src->width;
    for (int sy = 0; sx1 > sx0 && sy < src->height; sy++) {
      int dy = y + sy;
      if (dy < 0 || dy >= dst->height) continue;
      memcpy(dst->pixels + ((size_t)dy * dst->width + x + sx0) * 3,
             src->pixels + ((size_t)sy * src->width + sx0) * 3, (size_t)(sx1 - sx0) * 3);
    }
    return;
  }
  for (int sy = 0; sy < src->height; sy++) {
    int dy = y + sy;
    if (dy < 0 || dy >= dst->height) continue;
    for (int sx = 0; sx < src->width; sx++) {
      int dx = x + sx;
      if (dx < 0 || dx >= dst->width) continue;
      const uint8_t *s = src->pixels + ((size_t)sy * src->width + sx) * sc;
      uint8_t *d = dst->pixels + ((size_t)dy * dst->width + dx) * dc;
      uint8_t rgb[3] = {s[0], s[sc == 1 ? 0 : 1], s[sc == 1 ? 0 : 2]};
      for (int c = 0; c < dc; c++)
        d[c] = c < 3 ? rgb[dc == 1 ? 0 : c] : 255;
    }
  }
}
