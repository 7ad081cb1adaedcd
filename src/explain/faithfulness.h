/* Faithfulness of a heatmap (explain-methods.md, --faithfulness), model
 * independent: the model is a callback giving the target's probability for
 * a masked image (same text prefix, teacher forcing).
 *
 * Cells are ordered by decreasing heat (ties: lower index first). Step k of
 * 0..20 removes (deletion) or reveals (insertion) the first
 * round(k*n/20) cells (halves up). A removed / not yet revealed cell shows
 * the image blurred with a Gaussian of sigma = 5% of the shorter side; a
 * pixel belongs to the cell holding its centre (explain/heatmap.h).
 * Deletion step 0 is the original image, insertion step 0 the fully blurred
 * one. AUCs are trapezoids over x = k/20 in [0, 1]. The random order is a
 * seeded uniform permutation of the cells. */
#ifndef VL_EXPLAIN_FAITHFULNESS_H
#define VL_EXPLAIN_FAITHFULNESS_H

#include <stdint.h>

#include "explain/heatmap.h"
#include "io/image.h"

#define VL_FAITH_STEPS 20

/* Probability of the target for `masked`, in [0, 1]. A negative or NaN
 * return means failure (record it with vl_error); the run stops. */
typedef double (*vl_prob_fn)(const vl_image *masked, void *arg);

typedef struct {
  double deletion[VL_FAITH_STEPS + 1], insertion[VL_FAITH_STEPS + 1];
  double deletion_auc, insertion_auc;
  double random_deletion[VL_FAITH_STEPS + 1], random_insertion[VL_FAITH_STEPS + 1];
  double random_deletion_auc, random_insertion_auc;
} vl_faithfulness;

/* img must be the map's original image (m->image_w x m->image_h). seed
 * picks the random order. 84 calls of prob. */
int vl_faithfulness_run(const vl_image *img, const vl_heatmap *m, vl_prob_fn prob, void *arg,
                        uint64_t seed, vl_faithfulness *out);

/* The curves for one explicit cell order (order: n cell indices, a
 * permutation of 0..gw*gh-1). blurred: img blurred (same size). */
int vl_faithfulness_curve(const vl_image *img, const vl_image *blurred, const int *order, int gw,
                          int gh, int insertion, vl_prob_fn prob, void *arg,
                          double probs[VL_FAITH_STEPS + 1]);

/* Cells by decreasing value, ties by index (n = gw*gh entries). */
int vl_faithfulness_order(const vl_heatmap *m, int *order);

/* New image: separable Gaussian blur of every channel, kernel truncated at
 * 4 sigma and normalised, borders reflected, rounded to nearest. */
vl_image *vl_image_gaussian_blur(const vl_image *img, double sigma);

/* Trapezoid area of y[0..n-1] sampled at equal steps over [0, 1] (n >= 2). */
double vl_trapezoid_auc(const double *y, int n);

#endif
