/* Explanation heatmaps: one value per image token on the model's grid, with
 * the post-processing, statistics and JSON object of the specs
 * (../shared/spec/explain-methods.md, ../shared/spec/cli-json.md).
 *
 * Coordinates: cell (row r, column c) of a gw x gh grid covers, in the
 * ORIGINAL image's pixels, x in [c*W/gw, (c+1)*W/gw) and y in
 * [r*H/gh, (r+1)*H/gh) (W x H = image_w x image_h), whatever resizing the
 * model did. A pixel belongs to the cell holding its centre (x+0.5, y+0.5). */
#ifndef VL_EXPLAIN_HEATMAP_H
#define VL_EXPLAIN_HEATMAP_H

#include <stdint.h>

#define VL_HEATMAP_NAME_MAX 64

typedef struct {
  char method[VL_HEATMAP_NAME_MAX]; /* "gradcam", ... */
  char layer[VL_HEATMAP_NAME_MAX];  /* "" when the method has none */
  int gw, gh;                       /* grid width, height in cells */
  float *cells;                     /* gw*gh, row-major from the top-left, owned */
  int image_w, image_h;             /* original image size, pixels */
} vl_heatmap;

/* New zero-filled map. method/layer may be NULL (empty); names longer than
 * VL_HEATMAP_NAME_MAX-1 bytes are refused. NULL + vl_error on bad sizes. */
vl_heatmap *vl_heatmap_new(const char *method, const char *layer, int gw, int gh, int image_w,
                           int image_h);
vl_heatmap *vl_heatmap_clone(const vl_heatmap *m);
void vl_heatmap_free(vl_heatmap *m);

/* ---- post-processing (explain-methods.md, in this order) -------------- */

/* Gaussian blur on the grid, sigma in cells, separable, kernel truncated at
 * 4 sigma (at least radius 1) and normalised; borders reflect about the edge
 * (d c b a | a b c d | d c b a, scipy.ndimage's "reflect"), which keeps the
 * total mass and the map's symmetries. sigma == 0: no-op; sigma < 0 or
 * non-finite: VL_ERR_INVALID. */
int vl_heatmap_smooth(vl_heatmap *m, double sigma);

/* p <- p^(1/T), renormalised to sum 1, with p = v / sum(v). Negative values
 * are first shifted up by the minimum (p must be a distribution); an
 * all-zero map stays zero. T <= 0 or non-finite: VL_ERR_INVALID. */
int vl_heatmap_sharpen(vl_heatmap *m, double T);

/* Min-max scaling to [0,1]; an all-equal map becomes all zeros.
 * VL_ERR_INVALID when a cell is NaN or infinite. */
int vl_heatmap_minmax(vl_heatmap *m);

typedef struct {
  double smooth_sigma; /* 0: off */
  double sharpen_t;    /* 0: off (1 is also the identity) */
} vl_postprocess;

/* smooth (when sigma > 0), sharpen (when T > 0), then min-max. */
int vl_heatmap_postprocess(vl_heatmap *m, const vl_postprocess *pp);

/* ---- statistics (on the normalised map) ------------------------------- */

typedef struct {
  double mean, max, min, std; /* of v; std is the population std */
  double focus_area;          /* fraction of cells with v > 0.5 */
  double top10_mass;          /* sum of the largest ceil(n/10) cells of p */
  double entropy;             /* -sum p log p / log n; 0 when n == 1 */
  double concentration;       /* 1 - entropy */
  const char *region;         /* static string, see vl_heatmap_region */
} vl_heatmap_stats;

/* With p = v / sum(v); an all-zero map is read as uniform (p = 1/n), so a
 * flat map has entropy 1 and its centre of mass in the middle. */
int vl_heatmap_stats_compute(const vl_heatmap *m, vl_heatmap_stats *st);

/* Region name for a centre of mass at fractions (fx, fy) of the width and
 * height (thirds, floor(3f) clamped to 0..2), or "diffuse" when
 * top10_mass < 0.25. */
const char *vl_heatmap_region(double fx, double fy, double top10_mass);

/* Centre of the highest cell (first in row-major order on ties), original
 * image pixels. */
void vl_heatmap_peak(const vl_heatmap *m, double *x, double *y);
/* Centre of mass of the cells (p as in stats), original image pixels. */
void vl_heatmap_center(const vl_heatmap *m, double *x, double *y);

/* Cell index (r*gw + c) of the pixel (px, py) of a w x h image. */
static inline int vl_heatmap_cell_of_pixel(int px, int py, int w, int h, int gw, int gh) {
  int c = (int)(((int64_t)(2 * px + 1) * gw) / (2 * (int64_t)w));
  int r = (int)(((int64_t)(2 * py + 1) * gh) / (2 * (int64_t)h));
  return r * gw + c;
}

/* The contract's heatmap object: method, layer (null when empty), grid
 * [gw, gh], cells, peak, center, stats. Numbers are rounded to 6 decimals.
 * NULL + vl_error on failure. Caller frees with cJSON_Delete. */
struct cJSON;
struct cJSON *vl_heatmap_to_json(const vl_heatmap *m);

#endif
