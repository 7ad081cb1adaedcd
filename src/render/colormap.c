#include "render/colormap.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "base/error.h"
#include "render/colormap_data.h"

/* matplotlib's _jet_data: per channel, (x, value) breakpoints with linear
 * interpolation between them (no discontinuities, so y0 == y1). */
typedef struct {
  float x, y;
} jet_point;

static const jet_point jet_red[] = {
    {0.f, 0.f}, {0.35f, 0.f}, {0.66f, 1.f}, {0.89f, 1.f}, {1.f, 0.5f}};
static const jet_point jet_green[] = {{0.f, 0.f},   {0.125f, 0.f}, {0.375f, 1.f},
                                      {0.64f, 1.f}, {0.91f, 0.f},  {1.f, 0.f}};
static const jet_point jet_blue[] = {
    {0.f, 0.5f}, {0.11f, 1.f}, {0.34f, 1.f}, {0.65f, 0.f}, {1.f, 0.f}};

static float jet_channel(const jet_point *p, int n, double x) {
  for (int i = 1; i < n; i++) {
    if (x <= p[i].x) {
      double t = (x - p[i - 1].x) / (p[i].x - p[i - 1].x);
      return (float)(p[i - 1].y + t * (p[i].y - p[i - 1].y));
    }
  }
  return p[n - 1].y;
}

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int lut_index(float v) {
  if (!(v > 0.f)) return 0; /* also NaN */
  if (v >= 1.f) return 255;
  int i = (int)(v * 256.f);
  return i > 255 ? 255 : i;
}

void vl_colormap_apply_f(vl_colormap cm, float v, float rgb[3]) {
  int i = lut_index(v);
  switch (cm) {
  case VL_CMAP_VIRIDIS: memcpy(rgb, vl_cmap_viridis[i], 3 * sizeof(float)); return;
  case VL_CMAP_INFERNO: memcpy(rgb, vl_cmap_inferno[i], 3 * sizeof(float)); return;
  case VL_CMAP_JET:
  default: {
    double x = i / 255.0;
    rgb[0] = jet_channel(jet_red, N_OF(jet_red), x);
    rgb[1] = jet_channel(jet_green, N_OF(jet_green), x);
    rgb[2] = jet_channel(jet_blue, N_OF(jet_blue), x);
    return;
  }
  }
}

/* The 8-bit colours of the 256 entries of every colormap, built once from
 * vl_colormap_apply_f (an overlay looks one up per pixel). */
static uint8_t lut8[3][256][3];
static pthread_once_t lut8_once = PTHREAD_ONCE_INIT;

static void lut8_build(void) {
  for (int cm = 0; cm < 3; cm++)
    for (int i = 0; i < 256; i++) {
      float f[3];
      vl_colormap_apply_f((vl_colormap)cm, i / 256.f + 0.5f / 256.f, f);
      for (int c = 0; c < 3; c++)
        lut8[cm][i][c] = (uint8_t)floorf(f[c] * 255.f + 0.5f);
    }
}

void vl_colormap_apply(vl_colormap cm, float v, uint8_t rgb[3]) {
  pthread_once(&lut8_once, lut8_build);
  int t = cm == VL_CMAP_VIRIDIS ? 1 : cm == VL_CMAP_INFERNO ? 2 : 0;
  memcpy(rgb, lut8[t][lut_index(v)], 3);
}

static const char *const names[] = {"jet", "viridis", "inferno"};

int vl_colormap_from_name(const char *name, vl_colormap *out) {
  for (int i = 0; i < N_OF(names); i++) {
    if (name && strcmp(name, names[i]) == 0) {
      *out = (vl_colormap)i;
      return VL_OK;
    }
  }
  return vl_error(VL_ERR_INVALID, "unknown colormap '%s' (expected jet, viridis or inferno)",
                  name ? name : "(null)");
}

const char *vl_colormap_name(vl_colormap cm) {
  return (int)cm >= 0 && (int)cm < N_OF(names) ? names[cm] : "?";
}
