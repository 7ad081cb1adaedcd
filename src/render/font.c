#include "render/font.h"

#include <errno.h>
#include <math.h>
#include <stb/stb_truetype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/error.h"

struct vl_font {
  unsigned char *data;
  stbtt_fontinfo info;
  int ascent, descent, line_gap; /* font units */
};

static const char *const default_dirs[] = {"/usr/share/fonts/truetype/dejavu",
                                           "/usr/share/fonts/TTF", "/usr/share/fonts/dejavu"};
#define DEFAULT_FONT "DejaVuSans.ttf"
#define MAX_FONT_BYTES (64L << 20)

static unsigned char *read_all(const char *path, long *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    vl_error(errno == ENOENT ? VL_ERR_NOTFOUND : VL_ERR_IO, "%s: cannot open font: %s", path,
             strerror(errno));
    return NULL;
  }
  unsigned char *buf = NULL;
  long n = -1;
  if (fseek(fp, 0, SEEK_END) == 0) n = ftell(fp);
  if (n <= 0 || n > MAX_FONT_BYTES || fseek(fp, 0, SEEK_SET) != 0) {
    vl_error(VL_ERR_FORMAT, "%s: font file size %ld is empty or too large", path, n);
  } else if (!(buf = malloc((size_t)n))) {
    vl_error(VL_ERR_NOMEM, "%s: out of memory for font", path);
  } else if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
    vl_error(VL_ERR_IO, "%s: short read", path);
    free(buf);
    buf = NULL;
  }
  fclose(fp);
  *len = n;
  return buf;
}

vl_font *vl_font_load(const char *path) {
  char found[512];
  if (!path) {
    for (size_t i = 0; i < sizeof default_dirs / sizeof *default_dirs && !path; i++) {
      snprintf(found, sizeof found, "%s/%s", default_dirs[i], DEFAULT_FONT);
      FILE *fp = fopen(found, "rb");
      if (fp) {
        fclose(fp);
        path = found;
      }
    }
    if (!path) {
      vl_error(VL_ERR_NOTFOUND,
               "font %s not found in %s/, %s/ or %s/ (install Debian's fonts-dejavu-core)",
               DEFAULT_FONT, default_dirs[0], default_dirs[1], default_dirs[2]);
      return NULL;
    }
  }
  long len;
  unsigned char *data = read_all(path, &len);
  if (!data) return NULL;
  vl_font *f = calloc(1, sizeof *f);
  if (!f) {
    free(data);
    vl_error(VL_ERR_NOMEM, "%s: out of memory", path);
    return NULL;
  }
  f->data = data;
  int off = stbtt_GetFontOffsetForIndex(data, 0);
  /* stb_truetype trusts the tables it reads; at least refuse non-fonts. */
  if (len < 12 || off < 0 || !stbtt_InitFont(&f->info, data, off)) {
    vl_font_free(f);
    vl_error(VL_ERR_FORMAT, "%s: not a TrueType font", path);
    return NULL;
  }
  stbtt_GetFontVMetrics(&f->info, &f->ascent, &f->descent, &f->line_gap);
  if (f->ascent - f->descent <= 0) {
    vl_font_free(f);
    vl_error(VL_ERR_FORMAT, "%s: font has no vertical extent", path);
    return NULL;
  }
  return f;
}

void vl_font_free(vl_font *f) {
  if (!f) return;
  free(f->data);
  free(f);
}

/* Pixel heights are clamped to [1, VL_FONT_MAX_PX] (NaN: 1), which keeps
 * glyph bitmaps small whatever a caller passes. */
static float scale_of(const vl_font *f, float px) {
  if (!(px >= 1.f)) px = 1.f;
  if (px > VL_FONT_MAX_PX) px = VL_FONT_MAX_PX;
  return stbtt_ScaleForPixelHeight(&f->info, px);
}

int vl_font_line_height(const vl_font *f, float px) {
  return (int)ceilf((f->ascent - f->descent + f->line_gap) * scale_of(f, px));
}

/* Next code point of s (len bytes left): bytes consumed, at least 1. */
static int next_cp(const char *s, size_t len, int *cp) {
  utf8proc_int32_t c;
  utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &c);
  if (n <= 0) {
    *cp = 0xFFFD;
    return 1;
  }
  *cp = c;
  return (int)n;
}

/* Lays out one line; with img non-NULL also draws it. Returns pen advance. */
static float layout(const vl_font *f, vl_image *img, int x, int y, const char *s, size_t len,
                    float px, const uint8_t rgb[3]) {
  float scale = scale_of(f, px);
  int baseline = y + (int)lroundf(f->ascent * scale);
  float pen = 0;
  int prev = 0;
  unsigned char *buf = NULL;
  size_t buf_cap = 0;
  for (size_t i = 0; i < len;) {
    int cp;
    i += (size_t)next_cp(s + i, len - i, &cp);
    if (cp == '\n' || cp == '\r') continue;
    int g = stbtt_FindGlyphIndex(&f->info, cp);
    if (prev) pen += stbtt_GetGlyphKernAdvance(&f->info, prev, g) * scale;
    int adv, lsb;
    stbtt_GetGlyphHMetrics(&f->info, g, &adv, &lsb);
    if (img) {
      float fx = x + pen;
      int ix = (int)floorf(fx);
      int x0, y0, x1, y1;
      stbtt_GetGlyphBitmapBoxSubpixel(&f->info, g, scale, scale, fx - ix, 0, &x0, &y0, &x1, &y1);
      int gw = x1 - x0, gh = y1 - y0;
      if (gw > 0 && gh > 0) {
        if ((size_t)gw * gh > buf_cap) {
          unsigned char *nb = realloc(buf, (size_t)gw * gh);
          if (!nb) break; /* out of memory: stop drawing, keep what is drawn */
          buf = nb;
          buf_cap = (size_t)gw * gh;
        }
        stbtt_MakeGlyphBitmapSubpixel(&f->info, buf, gw, gh, gw, scale, scale, fx - ix, 0, g);
        int ch = img->channels;
        for (int r = 0; r < gh; r++) {
          int py = baseline + y0 + r;
          if (py < 0 || py >= img->height) continue;
          for (int c = 0; c < gw; c++) {
            int pxl = ix + x0 + c;
            unsigned a = buf[r * gw + c];
            if (pxl < 0 || pxl >= img->width || a == 0) continue;
            uint8_t *p = img->pixels + ((size_t)py * img->width + pxl) * ch;
            for (int k = 0; k < ch && k < 3; k++) {
              unsigned col = rgb[ch == 1 ? 0 : k];
              p[k] = (uint8_t)((p[k] * (255 - a) + col * a + 127) / 255);
            }
          }
        }
      }
    }
    pen += adv * scale;
    prev = g;
  }
  free(buf);
  return pen;
}

int vl_font_text_width(const vl_font *f, const char *utf8, float px) {
  if (!f || !utf8) return 0;
  return (int)ceilf(layout(f, NULL, 0, 0, utf8, strlen(utf8), px, NULL));
}

int vl_font_draw(const vl_font *f, vl_image *img, int x, int y, const char *utf8, float px,
                 const uint8_t rgb[3]) {
  if (!f || !img || !img->pixels || !utf8) return 0;
  return (int)ceilf(layout(f, img, x, y, utf8, strlen(utf8), px, rgb));
}

static int width_n(const vl_font *f, const char *s, size_t n, float px) {
  return (int)ceilf(layout(f, NULL, 0, 0, s, n, px, NULL));
}

static int push_line(vl_text_lines *t, int *cap, const char *s, size_t n) {
  while (n > 0 && s[n - 1] == ' ')
    n--;
  if (t->n == *cap) {
    int nc = *cap ? *cap * 2 : 8;
    char **nl = realloc(t->lines, (size_t)nc * sizeof *nl);
    if (!nl) return vl_error(VL_ERR_NOMEM, "text wrap: out of memory");
    t->lines = nl;
    *cap = nc;
  }
  char *line = malloc(n + 1);
  if (!line) return vl_error(VL_ERR_NOMEM, "text wrap: out of memory");
  memcpy(line, s, n);
  line[n] = 0;
  t->lines[t->n++] = line;
  return VL_OK;
}

int vl_font_wrap(const vl_font *f, const char *utf8, float px, int max_width, vl_text_lines *out) {
  out->lines = NULL;
  out->n = 0;
  if (!f || !utf8) return vl_error(VL_ERR_INVALID, "text wrap: no font or text");
  if (max_width <= 0) return vl_error(VL_ERR_INVALID, "text wrap: width %d", max_width);
  int cap = 0, st = VL_OK;
  const char *para = utf8;
  while (st == VL_OK) {
    size_t plen = strcspn(para, "\n");
    /* Greedy over words: [line, end) is the current line, extended word by word. */
    const char *line = para, *end = para, *pend = para + plen;
    while (line < pend && *line == ' ')
      line++;
    end = line;
    while (st == VL_OK && end < pend) {
      const char *w = end;
      while (w < pend && *w == ' ')
        w++;
      const char *we = w;
      while (we < pend && *we != ' ')
        we++;
      if (width_n(f, line, (size_t)(we - line), px) <= max_width) {
        end = we;
        continue;
      }
      if (end > line) { /* the word goes on the next line */
        st = push_line(out, &cap, line, (size_t)(end - line));
        line = end = w;
        continue;
      }
      /* A single word too wide for a line: break it between code points. */
      const char *cut = line;
      while (cut < we) {
        int cp;
        const char *nx = cut + next_cp(cut, (size_t)(we - cut), &cp);
        if (cut > line && width_n(f, line, (size_t)(nx - line), px) > max_width) break;
        cut = nx;
      }
      st = push_line(out, &cap, line, (size_t)(cut - line));
      line = end = cut;
    }
    if (st == VL_OK && (end > line || out->n == 0 || plen == 0))
      st = push_line(out, &cap, line, (size_t)(end - line));
    if (!para[plen]) break;
    para += plen + 1;
  }
  if (st) vl_text_lines_free(out);
  return st;
}

void vl_text_lines_free(vl_text_lines *t) {
  if (!t) return;
  for (int i = 0; i < t->n; i++)
    free(t->lines[i]);
  free(t->lines);
  t->lines = NULL;
  t->n = 0;
}
