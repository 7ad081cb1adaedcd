#include "render/gif.h"

#include <errno.h>
#include <fcntl.h>
#include <gif_lib.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"

/* One frame as palette indices plus its colour map. */
typedef struct {
  GifByteType *idx;
  ColorMapObject *map;
} quantized;

static void pixel_rgb(const vl_image *img, size_t i, uint8_t rgb[3]) {
  const uint8_t *p = img->pixels + i * img->channels;
  rgb[0] = p[0];
  rgb[1] = p[img->channels == 1 ? 0 : 1];
  rgb[2] = p[img->channels == 1 ? 0 : 2];
}

static int pow2_at_least(int n) {
  int p = 2;
  while (p < n)
    p *= 2;
  return p;
}

/* Exact palette when the frame has <= 256 colours: returns 1 and fills q,
 * 0 when there are more, negative on error. Open addressing on 24-bit keys. */
static int exact_palette(const vl_image *img, quantized *q) {
  enum { SLOTS = 1024 };
  uint32_t keys[SLOTS];
  uint8_t vals[SLOTS];
  int used[SLOTS] = {0};
  GifColorType colors[256];
  int n_colors = 0;
  size_t n = (size_t)img->width * img->height;
  for (size_t i = 0; i < n; i++) {
    uint8_t c[3];
    pixel_rgb(img, i, c);
    uint32_t key = (uint32_t)c[0] << 16 | (uint32_t)c[1] << 8 | c[2];
    uint32_t h = (key * 2654435761u) >> 22; /* 10 bits */
    while (used[h] && keys[h] != key)
      h = (h + 1) & (SLOTS - 1);
    if (!used[h]) {
      if (n_colors == 256) return 0;
      used[h] = 1;
      keys[h] = key;
      vals[h] = (uint8_t)n_colors;
      colors[n_colors].Red = c[0];
      colors[n_colors].Green = c[1];
      colors[n_colors].Blue = c[2];
      n_colors++;
    }
    q->idx[i] = vals[h];
  }
  int size = pow2_at_least(n_colors);
  for (int i = n_colors; i < size; i++)
    colors[i] = (GifColorType){0, 0, 0};
  q->map = GifMakeMapObject(size, colors);
  if (!q->map) return vl_error(VL_ERR_NOMEM, "gif: out of memory for a palette");
  return 1;
}

static int median_cut(const vl_image *img, quantized *q) {
  size_t n = (size_t)img->width * img->height;
  GifByteType *ch = malloc(3 * n);
  if (!ch) return vl_error(VL_ERR_NOMEM, "gif: out of memory quantising a frame");
  for (size_t i = 0; i < n; i++) {
    uint8_t c[3];
    pixel_rgb(img, i, c);
    ch[i] = c[0];
    ch[n + i] = c[1];
    ch[2 * n + i] = c[2];
  }
  GifColorType colors[256];
  memset(colors, 0, sizeof colors);
  int size = 256;
  int ok = GifQuantizeBuffer((unsigned)img->width, (unsigned)img->height, &size, ch, ch + n,
                             ch + 2 * n, q->idx, colors);
  free(ch);
  if (ok != GIF_OK) return vl_error(VL_ERR_NOMEM, "gif: colour quantisation failed");
  q->map = GifMakeMapObject(256, colors);
  if (!q->map) return vl_error(VL_ERR_NOMEM, "gif: out of memory for a palette");
  return VL_OK;
}

static int quantize(const vl_image *img, quantized *q) {
  q->map = NULL;
  q->idx = malloc((size_t)img->width * img->height);
  if (!q->idx) return vl_error(VL_ERR_NOMEM, "gif: out of memory for a frame");
  int r = exact_palette(img, q);
  if (r == 0) r = median_cut(img, q);
  if (r < 0) {
    free(q->idx);
    q->idx = NULL;
    return r;
  }
  return VL_OK;
}

static int check_frames(const vl_image *const *frames, int n, const int *delays_ms) {
  if (!frames || n <= 0) return vl_error(VL_ERR_INVALID, "gif: no frames to write");
  for (int i = 0; i < n; i++) {
    const vl_image *f = frames[i];
    if (!f || !f->pixels || (f->channels != 1 && f->channels != 3 && f->channels != 4))
      return vl_error(VL_ERR_INVALID, "gif: frame %d is missing or has a bad channel count", i);
    if (f->width <= 0 || f->height <= 0 || f->width > 65535 || f->height > 65535)
      return vl_error(VL_ERR_INVALID, "gif: frame %d has size %dx%d (GIF allows 1..65535)", i,
                      f->width, f->height);
    if (f->width != frames[0]->width || f->height != frames[0]->height)
      return vl_error(VL_ERR_INVALID, "gif: frame %d is %dx%d but frame 0 is %dx%d", i, f->width,
                      f->height, frames[0]->width, frames[0]->height);
    if (delays_ms && delays_ms[i] < 0)
      return vl_error(VL_ERR_INVALID, "gif: frame %d has negative delay %d ms", i, delays_ms[i]);
  }
  return VL_OK;
}

/* giflib calls return GIF_OK (1) or GIF_ERROR (0); this turns a failure
 * into a vl_status naming what was being written. */
static int gif_fail(const GifFileType *gif, const char *what) {
  return vl_error(VL_ERR_IO, "writing GIF %s failed: %s", what, GifErrorString(gif->Error));
}

static int put_loop(GifFileType *gif, int loop_count) {
  unsigned char sub[3] = {1, (unsigned char)(loop_count & 0xff),
                          (unsigned char)((loop_count >> 8) & 0xff)};
  if (EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE) != GIF_OK ||
      EGifPutExtensionBlock(gif, 11, "NETSCAPE2.0") != GIF_OK ||
      EGifPutExtensionBlock(gif, 3, sub) != GIF_OK || EGifPutExtensionTrailer(gif) != GIF_OK)
    return gif_fail(gif, "loop extension");
  return VL_OK;
}

static int put_frame(GifFileType *gif, const vl_image *img, int delay_ms) {
  quantized q;
  int st = quantize(img, &q);
  if (st) return st;
  long long cs = ((long long)delay_ms + 5) / 10;
  if (cs < 2) cs = 2;
  if (cs > 65535) cs = 65535;
  GraphicsControlBlock gcb = {.DisposalMode = DISPOSE_DO_NOT,
                              .UserInputFlag = false,
                              .DelayTime = (int)cs,
                              .TransparentColor = NO_TRANSPARENT_COLOR};
  GifByteType ext[4];
  size_t ext_len = EGifGCBToExtension(&gcb, ext);
  st = VL_OK;
  if (EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, (int)ext_len, ext) != GIF_OK ||
      EGifPutImageDesc(gif, 0, 0, img->width, img->height, false, q.map) != GIF_OK)
    st = gif_fail(gif, "frame header");
  for (int y = 0; y < img->height && st == VL_OK; y++)
    if (EGifPutLine(gif, q.idx + (size_t)y * img->width, img->width) != GIF_OK)
      st = gif_fail(gif, "pixels");
  GifFreeMapObject(q.map);
  free(q.idx);
  return st;
}

int vl_gif_write(const char *path, const vl_image *const *frames, int n_frames,
                 const int *delays_ms, int loop_count) {
  if (!path) return vl_error(VL_ERR_INVALID, "gif: no output path");
  int st = check_frames(frames, n_frames, delays_ms);
  if (st) return vl_error_context("%s", path);
  if (loop_count < 0 || loop_count > 65535)
    return vl_error(VL_ERR_INVALID, "%s: loop count %d outside 0..65535", path, loop_count);
  /* Opened here rather than by EGifOpenFileName, which creates files mode
   * 0600; this leaves permissions to the umask like every other output. */
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0) return vl_error(VL_ERR_IO, "%s: cannot write GIF: %s", path, strerror(errno));
  int err = 0;
  GifFileType *gif = EGifOpenFileHandle(fd, &err);
  if (!gif) {
    close(fd);
    unlink(path);
    return vl_error(VL_ERR_IO, "%s: cannot write GIF: %s", path, GifErrorString(err));
  }
  EGifSetGifVersion(gif, true);
  int w = frames[0]->width, h = frames[0]->height;
  if (EGifPutScreenDesc(gif, w, h, 8, 0, NULL) != GIF_OK)
    st = gif_fail(gif, "screen descriptor");
  else
    st = put_loop(gif, loop_count);
  for (int i = 0; i < n_frames && st == VL_OK; i++) {
    st = put_frame(gif, frames[i], delays_ms ? delays_ms[i] : VL_GIF_DEFAULT_DELAY_MS);
    if (st) vl_error_context("frame %d", i);
  }
  if (st) vl_error_context("%s", path);
  if (EGifCloseFile(gif, &err) != GIF_OK && st == VL_OK)
    st = vl_error(VL_ERR_IO, "%s: closing GIF failed: %s", path, GifErrorString(err));
  if (st) unlink(path);
  return st;
}
