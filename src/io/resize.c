/* Pillow-compatible resampling; see resize.h. Every floating-point expression
 * below is written in the same order and precision as Pillow 9.4's
 * Resample.c so that the fixed-point coefficients, and therefore the output
 * bytes, are identical. */
#include "io/resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/threads.h"

#define PRECISION_BITS (32 - 8 - 2)

typedef struct {
  double (*fn)(double x);
  double support;
} filter_def;

static double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

static double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

static double hamming_filter(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * M_PI;
  return sin(x) / x * (0.54f + 0.46f * cos(x));
}

static double bicubic_filter(double x) {
  const double a = -0.5; /* Pillow's choice (Keys' cubic convolution) */
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

static double sinc_filter(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return sin(x) / x;
}

static double lanczos_filter(double x) {
  if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
  return 0.0;
}

const char *vl_resample_name(int filter) {
  switch (filter) {
  case VL_RESAMPLE_NEAREST: return "nearest";
  case VL_RESAMPLE_LANCZOS: return "lanczos";
  case VL_RESAMPLE_BILINEAR: return "bilinear";
  case VL_RESAMPLE_BICUBIC: return "bicubic";
  case VL_RESAMPLE_BOX: return "box";
  case VL_RESAMPLE_HAMMING: return "hamming";
  default: return NULL;
  }
}

static const filter_def *get_filter(vl_resample f) {
  static const filter_def box = {box_filter, 0.5}, bilinear = {bilinear_filter, 1.0},
                          hamming = {hamming_filter, 1.0}, bicubic = {bicubic_filter, 2.0},
                          lanczos = {lanczos_filter, 3.0};
  switch (f) {
  case VL_RESAMPLE_BOX: return &box;
  case VL_RESAMPLE_BILINEAR: return &bilinear;
  case VL_RESAMPLE_HAMMING: return &hamming;
  case VL_RESAMPLE_BICUBIC: return &bicubic;
  case VL_RESAMPLE_LANCZOS: return &lanczos;
  default: return NULL;
  }
}

/* Per output position: first input index, tap count, and ksize fixed-point
 * weights. */
typedef struct {
  int ksize;
  int *bounds; /* out_size * 2: xmin, count */
  int32_t *k;  /* out_size * ksize */
} coeffs;

static void coeffs_free(coeffs *c) {
  free(c->bounds);
  free(c->k);
}

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc for the box [0, in_size). */
static int precompute(int in_size, int out_size, const filter_def *f, coeffs *c) {
  float in0 = 0.0f, in1 = (float)in_size;
  double filterscale, scale;
  filterscale = scale = (double)(in1 - in0) / out_size;
  if (filterscale < 1.0) filterscale = 1.0;
  double support = f->support * filterscale;
  int ksize = (int)ceil(support) * 2 + 1;
  c->ksize = ksize;
  c->bounds = malloc((size_t)out_size * 2 * sizeof(int));
  c->k = malloc((size_t)out_size * (size_t)ksize * sizeof(int32_t));
  double *w = malloc((size_t)ksize * sizeof(double));
  if (!c->bounds || !c->k || !w) {
    free(w);
    coeffs_free(c);
    return vl_error(VL_ERR_NOMEM, "resize: out of memory for %d x %d coefficients", out_size,
                    ksize);
  }
  for (int xx = 0; xx < out_size; xx++) {
    double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0;
    double ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    int x;
    for (x = 0; x < xmax; x++) {
      double v = f->fn((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    int32_t *k = c->k + (size_t)xx * ksize;
    for (x = 0; x < xmax; x++) {
      double v = w[x];
      if (ww != 0.0) v /= ww;
      k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                   : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
    }
    for (; x < ksize; x++)
      k[x] = 0;
    c->bounds[xx * 2] = xmin;
    c->bounds[xx * 2 + 1] = xmax;
  }
  free(w);
  return VL_OK;
}

/* Pillow's clip8: the sum carries the 0.5 rounding term already; shift out
 * the fraction and clamp to a byte. */
static inline uint8_t clip8(int64_t ss) {
  if (ss < 0) return 0;
  int64_t v = ss >> PRECISION_BITS;
  return v > 255 ? 255 : (uint8_t)v;
}

/* Arguments of one pass, for vl_parallel_for over output rows. */
typedef struct {
  const uint8_t *in;
  uint8_t *out;
  int in_w, out_w, row0, ch, shift;
  const coeffs *c;
} pass_args;

/* Output rows [y_begin, y_end); row r takes input row r + row0; columns resampled. */
static void resample_h(const uint8_t *in, int in_w, uint8_t *out, int out_w, int y_begin, int y_end,
                       int row0, int ch, const coeffs *c) {
  for (int yy = y_begin; yy < y_end; yy++) {
    const uint8_t *src = in + ((size_t)(yy + row0) * in_w) * ch;
    uint8_t *dst = out + (size_t)yy * out_w * ch;
    for (int xx = 0; xx < out_w; xx++) {
      int xmin = c->bounds[xx * 2], xmax = c->bounds[xx * 2 + 1];
      const int32_t *k = c->k + (size_t)xx * c->ksize;
      for (int b = 0; b < ch; b++) {
        int64_t ss = 1 << (PRECISION_BITS - 1);
        for (int x = 0; x < xmax; x++)
          ss += (int64_t)src[(x + xmin) * ch + b] * k[x];
        dst[xx * ch + b] = clip8(ss);
      }
    }
  }
}

static void resample_v(const uint8_t *in, int w, uint8_t *out, int y_begin, int y_end, int ch,
                       const coeffs *c, int row_shift) {
  size_t stride = (size_t)w * ch;
  for (int yy = y_begin; yy < y_end; yy++) {
    int ymin = c->bounds[yy * 2] - row_shift, ymax = c->bounds[yy * 2 + 1];
    const int32_t *k = c->k + (size_t)yy * c->ksize;
    uint8_t *dst = out + (size_t)yy * stride;
    for (size_t i = 0; i < stride; i++) {
      int64_t ss = 1 << (PRECISION_BITS - 1);
      for (int y = 0; y < ymax; y++)
        ss += (int64_t)in[(size_t)(y + ymin) * stride + i] * k[y];
      dst[i] = clip8(ss);
    }
  }
}

static void run_h(void *arg, int64_t b, int64_t e, int worker) {
  const pass_args *a = arg;
  resample_h(a->in, a->in_w, a->out, a->out_w, (int)b, (int)e, a->row0, a->ch, a->c);
}

static void run_v(void *arg, int64_t b, int64_t e, int worker) {
  const pass_args *a = arg;
  resample_v(a->in, a->out_w, a->out, (int)b, (int)e, a->ch, a->c, a->shift);
}

/* Rows per task: about 64K multiply-adds, so small images stay serial. */
static int64_t min_rows(int out_w, int ch, int ksize) {
  int64_t per_row = (int64_t)out_w * ch * ksize;
  return per_row >= 65536 ? 1 : 65536 / (per_row > 0 ? per_row : 1);
}

/* Pillow's NEAREST: ImagingScaleAffine with a = (in/out scale, offset 0),
 * sampling at the pixel centre and accumulating the position in double. */
static vl_image *resize_nearest(const vl_image *img, int width, int height) {
  vl_image *out = vl_image_new(width, height, img->channels);
  int *xin = malloc((size_t)width * sizeof(int));
  if (!out || !xin) {
    vl_image_free(out);
    free(xin);
    if (out) vl_error(VL_ERR_NOMEM, "resize: out of memory");
    return NULL;
  }
  int ch = img->channels;
  double a0 = (double)((float)img->width - 0.0f) / width;
  double a4 = (double)((float)img->height - 0.0f) / height;
  double xo = 0.0 + a0 * 0.5, yo = 0.0 + a4 * 0.5;
  for (int x = 0; x < width; x++) {
    int xi = xo < 0.0 ? -1 : (int)xo;
    xin[x] = xi < img->width ? xi : -1;
    xo += a0;
  }
  for (int y = 0; y < height; y++) {
    int yi = yo < 0.0 ? -1 : (int)yo;
    yo += a4;
    if (yi < 0 || yi >= img->height) continue; /* stays zero, as Pillow's fill */
    const uint8_t *src = img->pixels + (size_t)yi * img->width * ch;
    uint8_t *dst = out->pixels + (size_t)y * width * ch;
    for (int x = 0; x < width; x++)
      if (xin[x] >= 0) memcpy(dst + (size_t)x * ch, src + (size_t)xin[x] * ch, (size_t)ch);
  }
  free(xin);
  return out;
}

vl_image *vl_image_resize(const vl_image *img, int width, int height, vl_resample filter) {
  if (!img || !img->pixels || img->width <= 0 || img->height <= 0) {
    vl_error(VL_ERR_INVALID, "resize: no input image");
    return NULL;
  }
  if (width <= 0 || height <= 0) {
    vl_error(VL_ERR_INVALID, "resize: bad target size %dx%d", width, height);
    return NULL;
  }
  if (width == img->width && height == img->height) return vl_image_clone(img);
  if (filter == VL_RESAMPLE_NEAREST) return resize_nearest(img, width, height);
  const filter_def *f = get_filter(filter);
  if (!f) {
    vl_error(VL_ERR_INVALID, "resize: unknown resampling filter %d", (int)filter);
    return NULL;
  }
  int ch = img->channels;
  int need_h = width != img->width, need_v = height != img->height;

  coeffs cv = {0, NULL, NULL};
  if (precompute(img->height, height, f, &cv) < 0) return NULL;
  /* Rows of the source the vertical pass will read. */
  int y_first = cv.bounds[0];
  int y_last = cv.bounds[height * 2 - 2] + cv.bounds[height * 2 - 1];

  const uint8_t *src = img->pixels;
  int src_w = img->width, shift = 0;
  vl_image *tmp = NULL;
  if (need_h) {
    coeffs ch_ = {0, NULL, NULL};
    if (precompute(img->width, width, f, &ch_) < 0) {
      coeffs_free(&cv);
      return NULL;
    }
    tmp = vl_image_new(width, y_last - y_first, ch);
    if (!tmp) {
      coeffs_free(&ch_);
      coeffs_free(&cv);
      return NULL;
    }
    pass_args a = {img->pixels, tmp->pixels, img->width, width, y_first, ch, 0, &ch_};
    vl_parallel_for(y_last - y_first, min_rows(width, ch, ch_.ksize), run_h, &a);
    coeffs_free(&ch_);
    src = tmp->pixels;
    src_w = width;
    shift = y_first;
  }
  vl_image *out;
  if (need_v) {
    out = vl_image_new(width, height, ch);
    if (out) {
      pass_args a = {src, out->pixels, src_w, src_w, 0, ch, shift, &cv};
      vl_parallel_for(height, min_rows(src_w, ch, cv.ksize), run_v, &a);
    }
    vl_image_free(tmp);
  } else {
    out = tmp; /* horizontal only: tmp holds every row */
  }
  coeffs_free(&cv);
  return out;
}
