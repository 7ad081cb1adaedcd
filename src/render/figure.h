/* Figures people look at: the three-panel explanation figure, grids of many
 * panels (e.g. layers x heads), and a caption strip under an image (frames of
 * the word-by-word GIF). All are RGB on a white background with text in
 * DejaVu Sans. Panels of small images are scaled up by a whole factor with
 * nearest neighbour (pixels stay crisp), large ones scaled down (filtered). */
#ifndef VL_RENDER_FIGURE_H
#define VL_RENDER_FIGURE_H

#include "io/image.h"
#include "render/colormap.h"
#include "render/font.h"

typedef struct {
  int x, y, w, h;
} vl_rect;

/* Panel size for a w x h image: if its longer side is below min_side it is
 * multiplied by the smallest whole k reaching min_side (96x96 -> 192x192 for
 * 192); if above max_side it is scaled down to max_side keeping the aspect
 * (each side at least 1); otherwise unchanged. max_side <= 0: no limit. */
void vl_figure_panel_size(int w, int h, int min_side, int max_side, int *pw, int *ph);

typedef struct {
  vl_colormap cmap;            /* default jet */
  float alpha;                 /* overlay opacity, default 0.5 */
  const char *title;           /* figure title above the panels; NULL: none */
  const char *panel_titles[3]; /* NULL entries: "image", "heatmap", "overlay" */
  int min_panel, max_panel;    /* see vl_figure_panel_size; default 192, 512 */
  const vl_font *font;         /* NULL: DejaVu Sans loaded for this call */
} vl_figure_opts;

void vl_figure_opts_init(vl_figure_opts *o);

/* original | heatmap with a colour bar (ticks 0, 0.5, 1) | overlay.
 * grid: gw x gh cells normalised to [0,1] (see render/heatmap.h).
 * panels (optional, 3 entries) receives where each panel's pixels are. */
vl_image *vl_figure_three_panel(const vl_image *img, const float *grid, int gw, int gh,
                                const vl_figure_opts *o, vl_rect panels[3]);

typedef struct {
  const char *title;             /* NULL: none */
  const char *const *row_labels; /* rows entries (entries may be NULL), or NULL */
  const char *const *col_labels; /* cols entries, or NULL */
  int cell;                      /* each panel fits a cell x cell box; default 128 */
  const vl_font *font;           /* NULL: DejaVu Sans loaded for this call */
} vl_grid_opts;

void vl_grid_opts_init(vl_grid_opts *o);

/* rows x cols panels (row-major; NULL entries leave a blank cell), each
 * scaled to fit its cell keeping its aspect and centred there. cells
 * (optional, rows*cols entries) receives where each panel's pixels are. */
vl_image *vl_figure_grid(const vl_image *const *panels, int rows, int cols, const vl_grid_opts *o,
                         vl_rect *cells);

/* img with a white strip underneath holding text (px high, wrapped to the
 * image width). lines > 0 fixes the strip at that many lines, so every
 * frame of an animation has the same size; when the text needs more, the
 * last lines are shown (the newest words stay visible). lines <= 0 makes
 * the strip as tall as the text needs. Text before byte offset
 * highlight_from is black, the rest (typically the word being explained)
 * VL_CAPTION_HIGHLIGHT_RGB; highlight_from < 0 or past the end: all black.
 * font NULL: DejaVu Sans. */
#define VL_CAPTION_HIGHLIGHT_RGB                                                                   \
  { 200, 30, 30 }
vl_image *vl_figure_caption(const vl_image *img, const char *text, int highlight_from, int lines,
                            float px, const vl_font *font);

/* rows x cols overlays of the same image, one gw x gh grid each
 * (grids[r*cols + c], normalised to [0,1]; NULL leaves the cell blank),
 * laid out by vl_figure_grid. */
vl_image *vl_figure_heatmap_grid(const vl_image *img, const float *const *grids, int gw, int gh,
                                 int rows, int cols, vl_colormap cm, float alpha,
                                 const vl_grid_opts *o);

#endif
