#include "render/figure.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "render/canvas.h"
#include "render/heatmap.h"

static const uint8_t WHITE[3] = {255, 255, 255};
static const uint8_t INK[3] = {20, 20, 20};
static const uint8_t GREY[3] = {90, 90, 90};

enum {
  PAD = 16,        /* figure margin */
  GAP = 16,        /* between panels */
  BAR_GAP = 8,     /* heatmap panel to colour bar */
  BAR_W = 14,      /* colour bar width */
  TICK = 4,        /* tick mark length */
  TICK_GAP = 3,    /* tick to its label */
  TITLE_GAP = 6,   /* title line to what is under it */
  CELL_GAP = 6,    /* between grid cells */
  CAPTION_PAD = 6, /* caption strip margin */
};
static const float TITLE_PX = 18.f, PANEL_TITLE_PX = 15.f, LABEL_PX = 12.f, GRID_LABEL_PX = 13.f;

void vl_figure_panel_size(int w, int h, int min_side, int max_side, int *pw, int *ph) {
  int longer = w > h ? w : h;
  *pw = w;
  *ph = h;
  if (longer <= 0) return;
  if (longer < min_side) {
    int k = (min_side + longer - 1) / longer;
    *pw = w * k;
    *ph = h * k;
  } else if (max_side > 0 && longer > max_side) {
    double s = (double)max_side / longer;
    *pw = (int)lround(w * s);
    *ph = (int)lround(h * s);
    if (*pw < 1) *pw = 1;
    if (*ph < 1) *ph = 1;
  }
}

/* The default font, loaded once per process (reading and parsing the
 * 750 KB file for every figure, caption frame and grid was a tenth of
 * describe -o); kept until exit. */
static pthread_mutex_t font_mu = PTHREAD_MUTEX_INITIALIZER;
static vl_font *default_font;

/* Given font, else the default one (NULL with the error set when it cannot
 * be loaded; a later call tries again). *owned: always NULL (kept for the
 * callers' vl_font_free). */
static const vl_font *use_font(const vl_font *given, vl_font **owned) {
  *owned = NULL;
  if (given) return given;
  pthread_mutex_lock(&font_mu);
  if (!default_font) default_font = vl_font_load(NULL);
  const vl_font *f = default_font;
  pthread_mutex_unlock(&font_mu);
  return f;
}

/* text, shortened with "…" until it fits max_w (malloc'd). */
static char *fit_text(const vl_font *f, const char *text, float px, int max_w) {
  size_t n = strlen(text);
  char *s = malloc(n + 4);
  if (!s) return NULL;
  memcpy(s, text, n + 1);
  if (vl_font_text_width(f, s, px) <= max_w) return s;
  while (n > 0) {
    n--;
    while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
      n--; /* code point start */
    memcpy(s + n, "\xE2\x80\xA6", 4);
    if (vl_font_text_width(f, s, px) <= max_w) break;
  }
  return s;
}

/* Draws text centred in [x, x+w) with its top at y, shortened to fit. */
static void draw_centred(const vl_font *f, vl_image *img, int x, int w, int y, const char *text,
                         float px, const uint8_t rgb[3]) {
  if (!text || !*text) return;
  char *s = fit_text(f, text, px, w);
  if (!s) return;
  int tw = vl_font_text_width(f, s, px);
  vl_font_draw(f, img, x + (w - tw) / 2, y, s, px, rgb);
  free(s);
}

void vl_figure_opts_init(vl_figure_opts *o) {
  memset(o, 0, sizeof *o);
  o->cmap = VL_CMAP_JET;
  o->alpha = 0.5f;
  o->min_panel = 192;
  o->max_panel = 512;
}

/* Vertical colour bar at (x, y) of height h with ticks 1 (top), 0.5, 0. */
static void draw_colour_bar(const vl_font *f, vl_image *fig, int x, int y, int h, vl_colormap cm) {
  for (int j = 0; j < h; j++) {
    uint8_t c[3];
    vl_colormap_apply(cm, 1.f - (j + 0.5f) / h, c);
    vl_fill_rect(fig, x, y + j, BAR_W, 1, c);
  }
  vl_fill_rect(fig, x - 1, y - 1, BAR_W + 2, 1, GREY);
  vl_fill_rect(fig, x - 1, y + h, BAR_W + 2, 1, GREY);
  vl_fill_rect(fig, x - 1, y - 1, 1, h + 2, GREY);
  vl_fill_rect(fig, x + BAR_W, y - 1, 1, h + 2, GREY);
  static const char *const labels[3] = {"1", "0.5", "0"};
  int lh = vl_font_line_height(f, LABEL_PX);
  for (int i = 0; i < 3; i++) {
    int ty = y + (i == 0 ? 0 : i == 1 ? h / 2 : h - 1);
    vl_fill_rect(fig, x + BAR_W, ty, TICK, 1, GREY);
    vl_font_draw(f, fig, x + BAR_W + TICK + TICK_GAP, ty - lh / 2, labels[i], LABEL_PX, INK);
  }
}

vl_image *vl_figure_three_panel(const vl_image *img, const float *grid, int gw, int gh,
                                const vl_figure_opts *opts, vl_rect panels[3]) {
  vl_figure_opts o;
  if (opts)
    o = *opts;
  else
    vl_figure_opts_init(&o);
  if (!img || !img->pixels) {
    vl_error(VL_ERR_INVALID, "figure: no image");
    return NULL;
  }
  vl_font *owned;
  const vl_font *f = use_font(o.font, &owned);
  if (!f) return NULL;
  int pw, ph;
  vl_figure_panel_size(img->width, img->height, o.min_panel, o.max_panel, &pw, &ph);
  vl_image *scaled = vl_canvas_scale(img, pw, ph);
  vl_image *heat = scaled ? vl_heatmap_colorize(grid, gw, gh, pw, ph, o.cmap) : NULL;
  vl_image *over = heat ? vl_heatmap_overlay(scaled, grid, gw, gh, o.cmap, o.alpha) : NULL;
  vl_image *fig = NULL;
  if (over) {
    int bar_extra = BAR_GAP + BAR_W + TICK + TICK_GAP + vl_font_text_width(f, "0.5", LABEL_PX);
    int title_h = o.title && *o.title ? vl_font_line_height(f, TITLE_PX) + TITLE_GAP : 0;
    int ptitle_h = vl_font_line_height(f, PANEL_TITLE_PX) + TITLE_GAP;
    int W = PAD + pw + GAP + pw + bar_extra + GAP + pw + PAD;
    int H = PAD + title_h + ptitle_h + ph + PAD;
    fig = vl_canvas_new(W, H, WHITE);
    if (fig) {
      int py = PAD + title_h + ptitle_h;
      vl_rect r[3] = {{PAD, py, pw, ph},
                      {PAD + pw + GAP, py, pw, ph},
                      {PAD + pw + GAP + pw + bar_extra + GAP, py, pw, ph}};
      const vl_image *content[3] = {scaled, heat, over};
      static const char *const def_titles[3] = {"image", "heatmap", "overlay"};
      if (title_h) draw_centred(f, fig, PAD, W - 2 * PAD, PAD, o.title, TITLE_PX, INK);
      for (int i = 0; i < 3; i++) {
        vl_blit(fig, content[i], r[i].x, r[i].y);
        const char *t = o.panel_titles[i] ? o.panel_titles[i] : def_titles[i];
        draw_centred(f, fig, r[i].x, pw, PAD + title_h, t, PANEL_TITLE_PX, INK);
        if (panels) panels[i] = r[i];
      }
      draw_colour_bar(f, fig, r[1].x + pw + BAR_GAP, py, ph, o.cmap);
    }
  }
  vl_image_free(scaled);
  vl_image_free(heat);
  vl_image_free(over);
  vl_font_free(owned);
  return fig;
}

void vl_grid_opts_init(vl_grid_opts *o) {
  memset(o, 0, sizeof *o);
  o->cell = 128;
}

vl_image *vl_figure_grid(const vl_image *const *panels, int rows, int cols,
                         const vl_grid_opts *opts, vl_rect *cells) {
  vl_grid_opts o;
  if (opts)
    o = *opts;
  else
    vl_grid_opts_init(&o);
  if (!panels || rows <= 0 || cols <= 0 || rows > 4096 || cols > 4096 ||
      (int64_t)rows * cols > 65536) {
    vl_error(VL_ERR_INVALID, "grid figure: bad layout %d x %d", rows, cols);
    return NULL;
  }
  if (o.cell <= 0 || o.cell > 4096) {
    vl_error(VL_ERR_INVALID, "grid figure: bad cell size %d", o.cell);
    return NULL;
  }
  if ((int64_t)(cols + 1) * (o.cell + CELL_GAP) > 60000 ||
      (int64_t)(rows + 1) * (o.cell + CELL_GAP) > 60000) {
    vl_error(VL_ERR_LIMIT, "grid figure: %d x %d cells of %d px is too large", rows, cols, o.cell);
    return NULL;
  }
  vl_font *owned;
  const vl_font *f = use_font(o.font, &owned);
  if (!f) return NULL;
  int label_w = 0;
  for (int r = 0; o.row_labels && r < rows; r++)
    if (o.row_labels[r]) {
      int w = vl_font_text_width(f, o.row_labels[r], GRID_LABEL_PX);
      if (w > label_w) label_w = w;
    }
  if (label_w > 4 * o.cell) label_w = 4 * o.cell; /* longer labels get shortened */
  int lh = vl_font_line_height(f, GRID_LABEL_PX);
  int left = PAD + (label_w ? label_w + CELL_GAP : 0);
  int title_h = o.title && *o.title ? vl_font_line_height(f, TITLE_PX) + TITLE_GAP : 0;
  int top = PAD + title_h + (o.col_labels ? lh + CELL_GAP : 0);
  int W = left + cols * o.cell + (cols - 1) * CELL_GAP + PAD;
  int H = top + rows * o.cell + (rows - 1) * CELL_GAP + PAD;
  vl_image *fig = vl_canvas_new(W, H, WHITE);
  if (!fig) {
    vl_font_free(owned);
    return NULL;
  }
  if (title_h) draw_centred(f, fig, PAD, W - 2 * PAD, PAD, o.title, TITLE_PX, INK);
  for (int c = 0; o.col_labels && c < cols; c++)
    draw_centred(f, fig, left + c * (o.cell + CELL_GAP), o.cell, PAD + title_h, o.col_labels[c],
                 GRID_LABEL_PX, INK);
  for (int r = 0; r < rows; r++) {
    int cy = top + r * (o.cell + CELL_GAP);
    if (o.row_labels && o.row_labels[r]) {
      char *s = fit_text(f, o.row_labels[r], GRID_LABEL_PX, label_w);
      if (s) {
        int tw = vl_font_text_width(f, s, GRID_LABEL_PX);
        vl_font_draw(f, fig, left - CELL_GAP - tw, cy + (o.cell - lh) / 2, s, GRID_LABEL_PX, INK);
        free(s);
      }
    }
    for (int c = 0; c < cols; c++) {
      const vl_image *p = panels[r * cols + c];
      int cx = left + c * (o.cell + CELL_GAP);
      vl_rect rect = {cx, cy, 0, 0};
      if (p && p->pixels && p->width > 0 && p->height > 0) {
        /* Fit the longer side to the cell (whole-factor enlargements repeat
         * pixels, see vl_canvas_scale). */
        int longer = p->width > p->height ? p->width : p->height;
        int pw = (int)lround((double)p->width * o.cell / longer);
        int ph = (int)lround((double)p->height * o.cell / longer);
        pw = pw < 1 ? 1 : pw;
        ph = ph < 1 ? 1 : ph;
        vl_image *s = vl_canvas_scale(p, pw, ph);
        if (!s) {
          vl_image_free(fig);
          vl_font_free(owned);
          return NULL;
        }
        rect = (vl_rect){cx + (o.cell - pw) / 2, cy + (o.cell - ph) / 2, pw, ph};
        vl_blit(fig, s, rect.x, rect.y);
        vl_image_free(s);
      }
      if (cells) cells[r * cols + c] = rect;
    }
  }
  vl_font_free(owned);
  return fig;
}

/* Byte offset of each wrapped line in the original text: wrapping only
 * drops spaces at breaks and the "\n"s, so lines are found in order. */
static void line_offsets(const char *text, const vl_text_lines *t, size_t *off) {
  size_t pos = 0, n = strlen(text);
  for (int i = 0; i < t->n; i++) {
    size_t len = strlen(t->lines[i]);
    while (pos < n && (text[pos] == ' ' || text[pos] == '\n') &&
           !(len && strncmp(text + pos, t->lines[i], len) == 0))
      pos++;
    off[i] = pos;
    pos += len;
  }
}

vl_image *vl_figure_caption(const vl_image *img, const char *text, int highlight_from, int lines,
                            float px, const vl_font *font) {
  if (!img || !img->pixels) {
    vl_error(VL_ERR_INVALID, "caption: no image");
    return NULL;
  }
  if (!(px >= 4.f && px <= 512.f)) {
    vl_error(VL_ERR_INVALID, "caption: text height %g px outside 4..512", (double)px);
    return NULL;
  }
  if (img->width <= 2 * CAPTION_PAD) {
    vl_error(VL_ERR_INVALID, "caption: image %d px wide is too narrow for text", img->width);
    return NULL;
  }
  if (lines > 1000) {
    vl_error(VL_ERR_INVALID, "caption: %d lines is too many", lines);
    return NULL;
  }
  if (!text) text = "";
  vl_font *owned;
  const vl_font *f = use_font(font, &owned);
  if (!f) return NULL;
  vl_text_lines t = {0};
  vl_image *out = NULL;
  size_t *off = NULL;
  if (vl_font_wrap(f, text, px, img->width - 2 * CAPTION_PAD, &t) == VL_OK &&
      (off = malloc((size_t)t.n * sizeof *off)) != NULL) {
    line_offsets(text, &t, off);
    static const uint8_t hl[3] = VL_CAPTION_HIGHLIGHT_RGB;
    size_t hl_from = highlight_from < 0 ? (size_t)-1 : (size_t)highlight_from;
    int lh = vl_font_line_height(f, px);
    int n_show = lines > 0 ? lines : t.n;
    int first = t.n > n_show ? t.n - n_show : 0;
    out = vl_canvas_new(img->width, img->height + 2 * CAPTION_PAD + n_show * lh, WHITE);
    if (out) {
      vl_blit(out, img, 0, 0);
      for (int i = first; i < t.n; i++) {
        int y = img->height + CAPTION_PAD + (i - first) * lh;
        size_t len = strlen(t.lines[i]);
        size_t split = hl_from <= off[i] ? 0 : hl_from - off[i] < len ? hl_from - off[i] : len;
        char save = t.lines[i][split];
        t.lines[i][split] = 0; /* black part first, then the highlighted rest */
        int w = vl_font_draw(f, out, CAPTION_PAD, y, t.lines[i], px, INK);
        t.lines[i][split] = save;
        vl_font_draw(f, out, CAPTION_PAD + w, y, t.lines[i] + split, px, hl);
      }
    }
  } else if (t.n) {
    vl_error(VL_ERR_NOMEM, "caption: out of memory");
  }
  free(off);
  vl_text_lines_free(&t);
  vl_font_free(owned);
  return out;
}

vl_image *vl_figure_heatmap_grid(const vl_image *img, const float *const *grids, int gw, int gh,
                                 int rows, int cols, vl_colormap cm, float alpha,
                                 const vl_grid_opts *o) {
  if (!img || !grids || rows <= 0 || cols <= 0 || (int64_t)rows * cols > 65536) {
    vl_error(VL_ERR_INVALID, "heatmap grid: no image/grids or bad layout %d x %d", rows, cols);
    return NULL;
  }
  int n = rows * cols, cell = o && o->cell > 0 ? o->cell : 128;
  /* Overlays are computed at cell resolution so the heatmaps stay smooth. */
  int longer = img->width > img->height ? img->width : img->height;
  int pw = (int)lround((double)img->width * cell / longer);
  int ph = (int)lround((double)img->height * cell / longer);
  vl_image *scaled = longer <= 0 ? NULL : vl_canvas_scale(img, pw < 1 ? 1 : pw, ph < 1 ? 1 : ph);
  vl_image **panels = calloc((size_t)n, sizeof *panels);
  vl_image *fig = NULL;
  int ok = scaled && panels;
  if (!ok) vl_error(VL_ERR_NOMEM, "heatmap grid: out of memory");
  for (int i = 0; ok && i < n; i++) {
    if (!grids[i]) continue;
    panels[i] = vl_heatmap_overlay(scaled, grids[i], gw, gh, cm, alpha);
    if (!panels[i]) {
      vl_error_context("heatmap grid: panel %d (row %d, column %d)", i, i / cols, i % cols);
      ok = 0;
    }
  }
  if (ok) fig = vl_figure_grid((const vl_image *const *)panels, rows, cols, o, NULL);
  for (int i = 0; panels && i < n; i++)
    vl_image_free(panels[i]);
  free(panels);
  vl_image_free(scaled);
  return fig;
}
