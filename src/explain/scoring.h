/* Scoring explanations on Shapes World (../shared/spec/shapes-world.md,
 * "Scoring explanations on this world"): the pointing game and the mass in
 * the target's box, each with a centre baseline. */
#ifndef VL_EXPLAIN_SCORING_H
#define VL_EXPLAIN_SCORING_H

#include "explain/heatmap.h"
#include "io/shapes_world.h"

#define VL_SCORE_GROW_PX 4.0

/* A box in continuous pixel coordinates: [x0, x1] x [y0, y1]. An object's
 * box covers pixels [x0, x0+s) so its continuous box is [x0, x0+s]. */
typedef struct {
  double x0, y0, x1, y1;
} vl_box;

vl_box vl_box_of_object(const vl_shapes_object *o);
/* Every side moved out by px (the spec grows boxes by VL_SCORE_GROW_PX). */
vl_box vl_box_grow(vl_box b, double px);

/* Whether (x, y) lies in b, borders included. */
int vl_box_contains(vl_box b, double x, double y);

/* Pointing game: 1 when the map's peak (vl_heatmap_peak) lies in box. */
int vl_pointing_hit(const vl_heatmap *m, vl_box box);

/* Share of sum(v - min(v)) that falls in box, each cell weighted by the
 * fraction of its area inside the box. A flat map (nothing left after
 * min-subtraction) counts as uniform: the covered share of the image. */
double vl_mass_in_box(const vl_heatmap *m, vl_box box);

/* Centre baseline: the pointing game with the image centre as the peak, and
 * the mass in box of vl_center_baseline_map. */
int vl_center_pointing_hit(int image_w, int image_h, vl_box box);
/* New gw x gh map (method "center"), cell value exp(-d^2 / (2 s^2)) with d
 * the distance of the cell centre from the image centre in pixels and
 * s = min(W, H) / 4. */
vl_heatmap *vl_center_baseline_map(int gw, int gh, int image_w, int image_h);

#endif
