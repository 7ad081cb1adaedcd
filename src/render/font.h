/* Text in figures: DejaVu Sans through stb_truetype, antialiased, at a pixel
 * height (ascent - descent = px). Text is UTF-8; invalid bytes draw as U+FFFD.
 * Line boxes: a line drawn with its top at y occupies rows
 * [y, y + vl_font_line_height) and columns [x, x + vl_font_text_width). */
#ifndef VL_RENDER_FONT_H
#define VL_RENDER_FONT_H

#include <stdint.h>

#include "io/image.h"

typedef struct vl_font vl_font;

/* Pixel heights outside [1, VL_FONT_MAX_PX] are clamped to that range. */
#define VL_FONT_MAX_PX 1024.f

/* Loads a TrueType font. path NULL: DejaVuSans.ttf from
 * /usr/share/fonts/truetype/dejavu/ (or the other usual font folders);
 * VL_ERR_NOTFOUND naming the folders and the Debian package when missing. */
vl_font *vl_font_load(const char *path);
void vl_font_free(vl_font *f);

/* Height of one line of text at px (ascent - descent + line gap), rounded up. */
int vl_font_line_height(const vl_font *f, float px);
/* Advance width of one line of text at px, rounded up; newlines ignored. */
int vl_font_text_width(const vl_font *f, const char *utf8, float px);

/* Draws one line with its box's top-left at (x, y), clipped to the image,
 * blending rgb over the pixels by glyph coverage. Returns the text width. */
int vl_font_draw(const vl_font *f, vl_image *img, int x, int y, const char *utf8, float px,
                 const uint8_t rgb[3]);

/* Greedy word wrap to lines no wider than max_width (a word wider than that
 * is broken between characters; "\n" forces a break). */
typedef struct {
  char **lines;
  int n;
} vl_text_lines;
int vl_font_wrap(const vl_font *f, const char *utf8, float px, int max_width, vl_text_lines *out);
void vl_text_lines_free(vl_text_lines *t);

#endif
