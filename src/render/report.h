/* report.html: one self-contained HTML page (every image embedded as a
 * base64 PNG data URI, no external files, scripts or styles) showing a
 * caption as words; hovering a word shows that word's overlay for every
 * method with its statistics, clicking pins it. An optional section shows
 * an entailment decision with its explanations. */
#ifndef VL_RENDER_REPORT_H
#define VL_RENDER_REPORT_H

#include <stddef.h>

#include "explain/heatmap.h"
#include "io/image.h"
#include "render/colormap.h"

typedef struct {
  const char *text;              /* the word, UTF-8 */
  int n_maps;                    /* one per method (may be 0) */
  const vl_heatmap *const *maps; /* method name from map->method */
} vl_report_word;

typedef struct {
  const char *hypothesis;
  const char *label; /* "entailment" | "neutral" | "contradiction" */
  double probs[3];   /* entailment, neutral, contradiction */
  int n_maps;
  const vl_heatmap *const *maps; /* explanations of the decision */
} vl_report_entail;

typedef struct {
  const char *title;     /* NULL: "vlens report" */
  const char *model;     /* shown under the title; NULL: not shown */
  const vl_image *image; /* the original image (1, 3 or 4 channels) */
  int n_words;
  const vl_report_word *words;
  const vl_report_entail *entail; /* NULL: no entailment section */
  vl_colormap cmap;               /* default (0) jet */
  float alpha;                    /* overlay opacity; <= 0: 0.5 */
  int panel;                      /* longer display side at least this (whole-number upscale, see
                                   * vl_figure_panel_size), at most twice it; <= 0: 256 */
} vl_report;

/* The page in *html (malloc'd, NUL-terminated, caller frees); maps are
 * min-max normalised for display (a copy; the caller's are untouched). A
 * map whose image size differs from the image's is refused. */
int vl_report_html(const vl_report *r, char **html, size_t *len);
/* vl_report_html written to path; errors name the path. */
int vl_report_write(const char *path, const vl_report *r);

#endif
