#include "explain/faithfulness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/rng.h"

static int reflect(int j, int n) {
  int p = 2 * n, m = j % p;
  if (m < 0) m += p;
  return m < n ? m : p - 1 - m;
}

vl_image *vl_image_gaussian_blur(const vl_image *img, double sigma) {
  if (!img || !img->pixels || img->width <= 0 || img->height <= 0) {
    vl_error(VL_ERR_INVALID, "blur: no image");
    return NULL;
  }
  if (!isfinite(sigma) || sigma < 0) {
    vl_error(VL_ERR_INVALID, "blur: sigma %g must be finite and >= 0", sigma);
    return NULL;
  }
  vl_image *out = vl_image_clone(img);
  if (!out || sigma == 0) return out;
  int W = img->width, H = img->height, C = img->channels;
  int rad = (int)ceil(4 * sigma);
  if (rad < 1) rad = 1;
  if (rad > 4096) rad = 4096;
  size_t npx = (size_t)W * H * C;
  double *k = malloc(sizeof(double) * (2 * (size_t)rad + 1));
  double *a = malloc(sizeof(double) * npx), *b = malloc(sizeof(double) * npx);
  if (!k || !a || !b) {
    free(k);
    free(a);
    free(b);
    vl_image_free(out);
    vl_error(VL_ERR_NOMEM, "blur: out of memory for a %dx%d image", W, H);
    return NULL;
  }
  double tot = 0;
  for (int d = -rad; d <= rad; d++)
    tot += k[d + rad] = exp(-0.5 * d * d / (sigma * sigma));
  for (int d = 0; d <= 2 * rad; d++)
    k[d] /= tot;
  for (size_t i = 0; i < npx; i++)
    a[i] = img->pixels[i];
  for (int y = 0; y < H; y++) /* along x: a -> b */
    for (int x = 0; x < W; x++)
      for (int c = 0; c < C; c++) {
        double s = 0;
        for (int d = -rad; d <= rad; d++)
          s += k[d + rad] * a[((size_t)y * W + reflect(x + d, W)) * C + c];
        b[((size_t)y * W + x) * C + c] = s;
      }
  for (int y = 0; y < H; y++) /* along y: b -> pixels */
    for (int x = 0; x < W; x++)
      for (int c = 0; c < C; c++) {
        double s = 0;
        for (int d = -rad; d <= rad; d++)
          s += k[d + rad] * b[((size_t)reflect(y + d, H) * W + x) * C + c];
        s = floor(s + 0.5);
        out->pixels[((size_t)y * W + x) * C + c] = (uint8_t)(s < 0 ? 0 : s > 255 ? 255 : s);
      }
  free(k);
  free(a);
  free(b);
  return out;
}

double vl_trapezoid_auc(const double *y, int n) {
  if (n < 2) return 0;
  double s = 0;
  for (int i = 0; i + 1 < n; i++)
    s += 0.5 * (y[i] + y[i + 1]);
  return s / (n - 1);
}

typedef struct {
  float v;
  int i;
} cell_key;

static int cmp_cell(const void *pa, const void *pb) {
  const cell_key *a = pa, *b = pb;
  if (a->v != b->v) return a->v > b->v ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}

int vl_faithfulness_order(const vl_heatmap *m, int *order) {
  if (!m || !m->cells || !order) return vl_error(VL_ERR_INVALID, "faithfulness: no map");
  int n = m->gw * m->gh;
  cell_key *k = malloc(sizeof(cell_key) * (size_t)n);
  if (!k) return vl_error(VL_ERR_NOMEM, "faithfulness: out of memory");
  for (int i = 0; i < n; i++) {
    if (!isfinite(m->cells[i])) {
      free(k);
      return vl_error(VL_ERR_INVALID, "faithfulness: cell %d is not finite", i);
    }
    k[i].v = m->cells[i];
    k[i].i = i;
  }
  qsort(k, (size_t)n, sizeof *k, cmp_cell);
  for (int i = 0; i < n; i++)
    order[i] = k[i].i;
  free(k);
  return VL_OK;
}

int vl_faithfulness_curve(const vl_image *img, const vl_image *blurred, const int *order, int gw,
                          int gh, int insertion, vl_prob_fn prob, void *arg,
                          double probs[VL_FAITH_STEPS + 1]) {
  if (!img || !blurred || !order || !prob || gw <= 0 || gh <= 0)
    return vl_error(VL_ERR_INVALID, "faithfulness: missing image, order or callback");
  if (img->width != blurred->width || img->height != blurred->height ||
      img->channels != blurred->channels)
    return vl_error(VL_ERR_INVALID, "faithfulness: blurred image differs in size");
  int W = img->width, H = img->height, C = img->channels, n = gw * gh;
  if (W < gw || H < gh)
    return vl_error(VL_ERR_INVALID, "faithfulness: %dx%d image smaller than the %dx%d grid", W, H,
                    gw, gh);
  int *rank = malloc(sizeof(int) * (size_t)n);
  vl_image *work = vl_image_clone(img);
  if (!rank || !work) {
    free(rank);
    vl_image_free(work);
    return vl_error(VL_ERR_NOMEM, "faithfulness: out of memory");
  }
  for (int i = 0; i < n; i++)
    rank[i] = -1;
  for (int i = 0; i < n; i++) {
    if (order[i] < 0 || order[i] >= n || rank[order[i]] >= 0) {
      free(rank);
      vl_image_free(work);
      return vl_error(VL_ERR_INVALID, "faithfulness: order is not a permutation of %d cells", n);
    }
    rank[order[i]] = i;
  }
  int rc = VL_OK;
  for (int k = 0; k <= VL_FAITH_STEPS; k++) {
    int m = (int)(((int64_t)k * n + VL_FAITH_STEPS / 2) / VL_FAITH_STEPS);
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        int first = rank[vl_heatmap_cell_of_pixel(x, y, W, H, gw, gh)] < m;
        /* deletion: the first m cells are blurred; insertion: only they are sharp */
        const vl_image *src = (first != insertion) ? blurred : img;
        size_t at = ((size_t)y * W + x) * C;
        memcpy(work->pixels + at, src->pixels + at, (size_t)C);
      }
    double p = prob(work, arg);
    if (!(p >= 0)) {
      char why[256]; /* copied: vl_error rewrites the buffer it comes from */
      snprintf(why, sizeof why, "%s", vl_last_error());
      rc = vl_error(VL_ERR_INVALID, "faithfulness: %s step %d: the probability callback failed%s%s",
                    insertion ? "insertion" : "deletion", k, *why ? ": " : "", why);
      break;
    }
    probs[k] = p;
  }
  free(rank);
  vl_image_free(work);
  return rc;
}

int vl_faithfulness_run(const vl_image *img, const vl_heatmap *m, vl_prob_fn prob, void *arg,
                        uint64_t seed, vl_faithfulness *out) {
  if (!img || !m || !prob || !out)
    return vl_error(VL_ERR_INVALID, "faithfulness: missing image, map or callback");
  if (img->width != m->image_w || img->height != m->image_h)
    return vl_error(VL_ERR_INVALID, "faithfulness: image %dx%d, the map was made for %dx%d",
                    img->width, img->height, m->image_w, m->image_h);
  memset(out, 0, sizeof *out);
  int n = m->gw * m->gh;
  double sigma = 0.05 * (img->width < img->height ? img->width : img->height);
  vl_image *blurred = vl_image_gaussian_blur(img, sigma);
  int *order = malloc(sizeof(int) * (size_t)n);
  int rc = (!blurred || !order) ? vl_error(VL_ERR_NOMEM, "faithfulness: out of memory") : VL_OK;
  if (!rc) rc = vl_faithfulness_order(m, order);
  if (!rc)
    rc = vl_faithfulness_curve(img, blurred, order, m->gw, m->gh, 0, prob, arg, out->deletion);
  if (!rc)
    rc = vl_faithfulness_curve(img, blurred, order, m->gw, m->gh, 1, prob, arg, out->insertion);
  if (!rc) {
    vl_rng r;
    vl_rng_seed(&r, seed, 0, 0x6661697468ULL /* "faith" */);
    for (int i = 0; i < n; i++)
      order[i] = i;
    for (int i = n - 1; i > 0; i--) {
      int j = (int)vl_rng_int(&r, 0, i), t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    rc = vl_faithfulness_curve(img, blurred, order, m->gw, m->gh, 0, prob, arg,
                               out->random_deletion);
  }
  if (!rc)
    rc = vl_faithfulness_curve(img, blurred, order, m->gw, m->gh, 1, prob, arg,
                               out->random_insertion);
  if (!rc) {
    out->deletion_auc = vl_trapezoid_auc(out->deletion, VL_FAITH_STEPS + 1);
    out->insertion_auc = vl_trapezoid_auc(out->insertion, VL_FAITH_STEPS + 1);
    out->random_deletion_auc = vl_trapezoid_auc(out->random_deletion, VL_FAITH_STEPS + 1);
    out->random_insertion_auc = vl_trapezoid_auc(out->random_insertion, VL_FAITH_STEPS + 1);
  }
  free(order);
  vl_image_free(blurred);
  return rc;
}
