#include "explain/heatmap.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

static int set_name(char *dst, const char *src, const char *what) {
  if (!src) src = "";
  size_t n = strlen(src);
  if (n >= VL_HEATMAP_NAME_MAX)
    return vl_error(VL_ERR_INVALID, "heatmap: %s name is %zu bytes, at most %d allowed", what, n,
                    VL_HEATMAP_NAME_MAX - 1);
  memcpy(dst, src, n + 1);
  return VL_OK;
}

vl_heatmap *vl_heatmap_new(const char *method, const char *layer, int gw, int gh, int image_w,
                           int image_h) {
  if (gw <= 0 || gh <= 0 || (int64_t)gw * gh > (1 << 24)) {
    vl_error(VL_ERR_INVALID, "heatmap: grid %dx%d must be positive and at most 2^24 cells", gw, gh);
    return NULL;
  }
  if (image_w <= 0 || image_h <= 0) {
    vl_error(VL_ERR_INVALID, "heatmap: image size %dx%d must be positive", image_w, image_h);
    return NULL;
  }
  vl_heatmap *m = calloc(1, sizeof *m);
  if (!m) {
    vl_error(VL_ERR_NOMEM, "heatmap: out of memory");
    return NULL;
  }
  if (set_name(m->method, method, "method") || set_name(m->layer, layer, "layer")) {
    free(m);
    return NULL;
  }
  m->cells = calloc((size_t)gw * gh, sizeof(float));
  if (!m->cells) {
    free(m);
    vl_error(VL_ERR_NOMEM, "heatmap: out of memory for %dx%d cells", gw, gh);
    return NULL;
  }
  m->gw = gw;
  m->gh = gh;
  m->image_w = image_w;
  m->image_h = image_h;
  return m;
}

vl_heatmap *vl_heatmap_clone(const vl_heatmap *m) {
  if (!m) {
    vl_error(VL_ERR_INVALID, "heatmap: clone of NULL");
    return NULL;
  }
  vl_heatmap *c = vl_heatmap_new(m->method, m->layer, m->gw, m->gh, m->image_w, m->image_h);
  if (c) memcpy(c->cells, m->cells, (size_t)m->gw * m->gh * sizeof(float));
  return c;
}

void vl_heatmap_free(vl_heatmap *m) {
  if (!m) return;
  free(m->cells);
  free(m);
}

static int check_finite(const vl_heatmap *m, const char *what) {
  if (!m || !m->cells) return vl_error(VL_ERR_INVALID, "heatmap %s: no map", what);
  size_t n = (size_t)m->gw * m->gh;
  for (size_t i = 0; i < n; i++)
    if (!isfinite(m->cells[i]))
      return vl_error(VL_ERR_INVALID, "heatmap %s: cell %zu (row %zu, column %zu) is not finite",
                      what, i, i / (size_t)m->gw, i % (size_t)m->gw);
  return VL_OK;
}

/* Index j reflected into [0, n): half-sample symmetric, period 2n. */
static int reflect(int j, int n) {
  int p = 2 * n;
  int m = j % p;
  if (m < 0) m += p;
  return m < n ? m : p - 1 - m;
}

/* One 1-D pass along rows (stride 1, count len, lines lines, line step
 * lstride) with a kernel of radius rad. */
static void blur_pass(float *v, int len, int lines, int step, int lstride, const double *k, int rad,
                      double *tmp) {
  for (int l = 0; l < lines; l++) {
    float *base = v + (size_t)l * lstride;
    for (int i = 0; i < len; i++) {
      double s = 0;
      for (int d = -rad; d <= rad; d++)
        s += k[d + rad] * base[(size_t)reflect(i + d, len) * step];
      tmp[i] = s;
    }
    for (int i = 0; i < len; i++)
      base[(size_t)i * step] = (float)tmp[i];
  }
}

int vl_heatmap_smooth(vl_heatmap *m, double sigma) {
  int rc = check_finite(m, "smooth");
  if (rc) return rc;
  if (!isfinite(sigma) || sigma < 0)
    return vl_error(VL_ERR_INVALID, "heatmap smooth: sigma %g must be finite and >= 0", sigma);
  if (sigma == 0) return VL_OK;
  double r = ceil(4.0 * sigma);
  if (r > 4096) r = 4096; /* beyond this every grid is already flattened */
  int rad = r < 1 ? 1 : (int)r;
  int longest = m->gw > m->gh ? m->gw : m->gh;
  double *k = malloc(sizeof(double) * (size_t)(2 * rad + 1 + longest));
  if (!k) return vl_error(VL_ERR_NOMEM, "heatmap smooth: out of memory");
  double tot = 0;
  for (int d = -rad; d <= rad; d++) {
    k[d + rad] = exp(-0.5 * d * d / (sigma * sigma));
    tot += k[d + rad];
  }
  for (int d = 0; d < 2 * rad + 1; d++)
    k[d] /= tot;
  double *tmp = k + 2 * rad + 1;
  blur_pass(m->cells, m->gw, m->gh, 1, m->gw, k, rad, tmp); /* along x */
  blur_pass(m->cells, m->gh, m->gw, m->gw, 1, k, rad, tmp); /* along y */
  free(k);
  return VL_OK;
}

int vl_heatmap_sharpen(vl_heatmap *m, double T) {
  int rc = check_finite(m, "sharpen");
  if (rc) return rc;
  if (!isfinite(T) || T <= 0)
    return vl_error(VL_ERR_INVALID, "heatmap sharpen: temperature %g must be finite and > 0", T);
  size_t n = (size_t)m->gw * m->gh;
  double lo = m->cells[0];
  for (size_t i = 1; i < n; i++)
    if (m->cells[i] < lo) lo = m->cells[i];
  double shift = lo < 0 ? -lo : 0, sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += m->cells[i] + shift;
  if (!(sum > 0)) return VL_OK;
  double tot = 0;
  double *q = malloc(n * sizeof(double));
  if (!q) return vl_error(VL_ERR_NOMEM, "heatmap sharpen: out of memory");
  for (size_t i = 0; i < n; i++) {
    q[i] = pow((m->cells[i] + shift) / sum, 1.0 / T);
    tot += q[i];
  }
  for (size_t i = 0; i < n; i++)
    m->cells[i] = tot > 0 ? (float)(q[i] / tot) : 0.f;
  free(q);
  return VL_OK;
}

int vl_heatmap_minmax(vl_heatmap *m) {
  int rc = check_finite(m, "normalise");
  if (rc) return rc;
  size_t n = (size_t)m->gw * m->gh;
  float lo = m->cells[0], hi = m->cells[0];
  for (size_t i = 1; i < n; i++) {
    if (m->cells[i] < lo) lo = m->cells[i];
    if (m->cells[i] > hi) hi = m->cells[i];
  }
  double range = (double)hi - lo;
  for (size_t i = 0; i < n; i++)
    m->cells[i] = range > 0 ? (float)((m->cells[i] - (double)lo) / range) : 0.f;
  return VL_OK;
}

int vl_heatmap_postprocess(vl_heatmap *m, const vl_postprocess *pp) {
  int rc;
  if (pp && pp->smooth_sigma != 0 && (rc = vl_heatmap_smooth(m, pp->smooth_sigma))) return rc;
  if (pp && pp->sharpen_t != 0 && (rc = vl_heatmap_sharpen(m, pp->sharpen_t))) return rc;
  return vl_heatmap_minmax(m);
}

/* ---- statistics ------------------------------------------------------- */

const char *vl_heatmap_region(double fx, double fy, double top10_mass) {
  static const char *names[3][3] = {{"upper-left", "upper-center", "upper-right"},
                                    {"middle-left", "center", "middle-right"},
                                    {"lower-left", "lower-center", "lower-right"}};
  if (top10_mass < 0.25) return "diffuse";
  int cx = (int)floor(fx * 3), cy = (int)floor(fy * 3);
  cx = cx < 0 ? 0 : cx > 2 ? 2 : cx;
  cy = cy < 0 ? 0 : cy > 2 ? 2 : cy;
  return names[cy][cx];
}

/* p = v / sum(v) (uniform when the sum is not positive) into p[n]. */
static void distribution(const vl_heatmap *m, double *p) {
  size_t n = (size_t)m->gw * m->gh;
  double sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += m->cells[i];
  for (size_t i = 0; i < n; i++)
    p[i] = sum > 0 ? m->cells[i] / sum : 1.0 / (double)n;
}

static int cmp_desc(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x < y) - (x > y);
}

/* Centre of mass as fractions of the width and height. */
static void center_frac(const vl_heatmap *m, const double *p, double *fx, double *fy) {
  double sx = 0, sy = 0;
  for (int r = 0; r < m->gh; r++)
    for (int c = 0; c < m->gw; c++) {
      double w = p[(size_t)r * m->gw + c];
      sx += w * (c + 0.5);
      sy += w * (r + 0.5);
    }
  *fx = sx / m->gw;
  *fy = sy / m->gh;
}

int vl_heatmap_stats_compute(const vl_heatmap *m, vl_heatmap_stats *st) {
  int rc = check_finite(m, "stats");
  if (rc) return rc;
  size_t n = (size_t)m->gw * m->gh;
  double *p = malloc(2 * n * sizeof(double));
  if (!p) return vl_error(VL_ERR_NOMEM, "heatmap stats: out of memory");
  double *sorted = p + n;
  double sum = 0, lo = m->cells[0], hi = m->cells[0];
  size_t focus = 0;
  for (size_t i = 0; i < n; i++) {
    double v = m->cells[i];
    sum += v;
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
    focus += v > 0.5;
  }
  double mean = sum / (double)n, var = 0;
  for (size_t i = 0; i < n; i++)
    var += (m->cells[i] - mean) * (m->cells[i] - mean);
  st->mean = mean;
  st->min = lo;
  st->max = hi;
  st->std = sqrt(var / (double)n);
  st->focus_area = (double)focus / (double)n;

  distribution(m, p);
  double ent = 0;
  for (size_t i = 0; i < n; i++)
    if (p[i] > 0) ent -= p[i] * log(p[i]);
  st->entropy = n > 1 ? ent / log((double)n) : 0.0;
  if (st->entropy < 0) st->entropy = 0; /* rounding of a one-hot map */
  st->concentration = 1.0 - st->entropy;
  memcpy(sorted, p, n * sizeof(double));
  qsort(sorted, n, sizeof(double), cmp_desc);
  size_t k = (n + 9) / 10;
  double top = 0;
  for (size_t i = 0; i < k; i++)
    top += sorted[i];
  st->top10_mass = top;
  double fx, fy;
  center_frac(m, p, &fx, &fy);
  st->region = vl_heatmap_region(fx, fy, top);
  free(p);
  return VL_OK;
}

void vl_heatmap_peak(const vl_heatmap *m, double *x, double *y) {
  size_t n = (size_t)m->gw * m->gh, best = 0;
  for (size_t i = 1; i < n; i++)
    if (m->cells[i] > m->cells[best]) best = i;
  int r = (int)(best / (size_t)m->gw), c = (int)(best % (size_t)m->gw);
  *x = (c + 0.5) * m->image_w / m->gw;
  *y = (r + 0.5) * m->image_h / m->gh;
}

void vl_heatmap_center(const vl_heatmap *m, double *x, double *y) {
  size_t n = (size_t)m->gw * m->gh;
  double sum = 0, sx = 0, sy = 0;
  for (size_t i = 0; i < n; i++)
    sum += m->cells[i];
  for (int r = 0; r < m->gh; r++)
    for (int c = 0; c < m->gw; c++) {
      double w = sum > 0 ? m->cells[(size_t)r * m->gw + c] / sum : 1.0 / (double)n;
      sx += w * (c + 0.5);
      sy += w * (r + 0.5);
    }
  *x = sx * m->image_w / m->gw;
  *y = sy * m->image_h / m->gh;
}

/* ---- JSON --------------------------------------------------------------- */

static double r6(double v) { return round(v * 1e6) / 1e6; }

static cJSON *pair(double a, double b) {
  cJSON *arr = cJSON_CreateArray();
  if (!arr) return NULL;
  cJSON_AddItemToArray(arr, cJSON_CreateNumber(a));
  cJSON_AddItemToArray(arr, cJSON_CreateNumber(b));
  return arr;
}

struct cJSON *vl_heatmap_to_json(const vl_heatmap *m) {
  vl_heatmap_stats st;
  if (vl_heatmap_stats_compute(m, &st)) return NULL;
  cJSON *o = cJSON_CreateObject();
  if (!o) goto nomem;
  cJSON_AddStringToObject(o, "method", m->method);
  if (m->layer[0])
    cJSON_AddStringToObject(o, "layer", m->layer);
  else
    cJSON_AddNullToObject(o, "layer");
  cJSON_AddItemToObject(o, "grid", pair(m->gw, m->gh));
  size_t n = (size_t)m->gw * m->gh;
  cJSON *cells = cJSON_AddArrayToObject(o, "cells");
  if (!cells) goto nomem;
  for (size_t i = 0; i < n; i++)
    cJSON_AddItemToArray(cells, cJSON_CreateNumber(r6(m->cells[i])));
  double x, y;
  vl_heatmap_peak(m, &x, &y);
  cJSON_AddItemToObject(o, "peak", pair(r6(x), r6(y)));
  vl_heatmap_center(m, &x, &y);
  cJSON_AddItemToObject(o, "center", pair(r6(x), r6(y)));
  cJSON *s = cJSON_AddObjectToObject(o, "stats");
  if (!s) goto nomem;
  cJSON_AddNumberToObject(s, "mean", r6(st.mean));
  cJSON_AddNumberToObject(s, "max", r6(st.max));
  cJSON_AddNumberToObject(s, "min", r6(st.min));
  cJSON_AddNumberToObject(s, "std", r6(st.std));
  cJSON_AddNumberToObject(s, "focus_area", r6(st.focus_area));
  cJSON_AddNumberToObject(s, "concentration", r6(st.concentration));
  cJSON_AddNumberToObject(s, "top10_mass", r6(st.top10_mass));
  cJSON_AddNumberToObject(s, "entropy", r6(st.entropy));
  cJSON_AddStringToObject(s, "region", st.region);
  /* cJSON drops items it could not allocate: count what arrived. */
  if (cJSON_GetArraySize(cells) != (int)n || cJSON_GetArraySize(s) != 9 ||
      cJSON_GetArraySize(o) != 7)
    goto nomem;
  return o;
nomem:
  cJSON_Delete(o);
  vl_error(VL_ERR_NOMEM, "heatmap json: out of memory");
  return NULL;
}
