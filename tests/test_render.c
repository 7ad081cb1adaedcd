/* Rendering: colormaps, heatmap upsampling and overlay, text, figures, PNG
 * and GIF output. References are computed here from the documented
 * definitions, not taken from the code under test. */
#include <gif_lib.h>
#include <stb/stb_image.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "render/canvas.h"
#include "render/colormap.h"
#include "render/figure.h"
#include "render/font.h"
#include "render/gif.h"
#include "render/heatmap.h"
#include "render/png.h"
#include "test.h"

/* matplotlib's jet written out as explicit pieces. */
static void jet_ref(double x, double rgb[3]) {
  rgb[0] = x < 0.35 ? 0 : x < 0.66 ? (x - 0.35) / 0.31 : x < 0.89 ? 1 : 1 - 0.5 * (x - 0.89) / 0.11;
  rgb[1] = x < 0.125   ? 0
           : x < 0.375 ? (x - 0.125) / 0.25
           : x < 0.64  ? 1
           : x < 0.91  ? 1 - (x - 0.64) / 0.27
                       : 0;
  rgb[2] = x < 0.11 ? 0.5 + 0.5 * x / 0.11 : x < 0.34 ? 1 : x < 0.65 ? 1 - (x - 0.34) / 0.31 : 0;
}

static void test_jet_matches_definition(void) {
  for (int k = 0; k <= 1000; k++) {
    float v = k / 1000.f;
    int idx = (int)(v * 256.f);
    if (idx > 255) idx = 255;
    double ref[3];
    jet_ref(idx / 255.0, ref);
    float got[3];
    uint8_t got8[3];
    vl_colormap_apply_f(VL_CMAP_JET, v, got);
    vl_colormap_apply(VL_CMAP_JET, v, got8);
    for (int c = 0; c < 3; c++) {
      CHECK_NEAR(got[c], ref[c], 1e-5);
      CHECK(got8[c] == (uint8_t)floor(ref[c] * 255 + 0.5) ||
            fabs(ref[c] * 255 - floor(ref[c] * 255) - 0.5) < 1e-3);
    }
  }
  float c[3];
  vl_colormap_apply_f(VL_CMAP_JET, 0.f, c);
  CHECK_NEAR(c[0], 0, 1e-7);
  CHECK_NEAR(c[1], 0, 1e-7);
  CHECK_NEAR(c[2], 0.5, 1e-7);
  vl_colormap_apply_f(VL_CMAP_JET, 1.f, c);
  CHECK_NEAR(c[0], 0.5, 1e-7);
  CHECK_NEAR(c[1], 0, 1e-7);
  CHECK_NEAR(c[2], 0, 1e-7);
}

static void test_listed_colormaps(void) {
  float c[3];
  vl_colormap_apply_f(VL_CMAP_VIRIDIS, 0.f, c);
  CHECK_NEAR(c[0], 0.267004, 1e-6);
  CHECK_NEAR(c[1], 0.004874, 1e-6);
  CHECK_NEAR(c[2], 0.329415, 1e-6);
  vl_colormap_apply_f(VL_CMAP_VIRIDIS, 1.f, c);
  CHECK_NEAR(c[0], 0.993248, 1e-6);
  CHECK_NEAR(c[1], 0.906157, 1e-6);
  CHECK_NEAR(c[2], 0.143936, 1e-6);
  vl_colormap_apply_f(VL_CMAP_VIRIDIS, 0.5f, c); /* entry 128 of matplotlib's table */
  CHECK_NEAR(c[0], 0.127568, 1e-6);
  CHECK_NEAR(c[1], 0.566949, 1e-6);
  CHECK_NEAR(c[2], 0.550556, 1e-6);
  vl_colormap_apply_f(VL_CMAP_INFERNO, 0.f, c);
  CHECK_NEAR(c[0], 0.001462, 1e-6);
  CHECK_NEAR(c[1], 0.000466, 1e-6);
  CHECK_NEAR(c[2], 0.013866, 1e-6);
  vl_colormap_apply_f(VL_CMAP_INFERNO, 1.f, c);
  CHECK_NEAR(c[0], 0.988362, 1e-6);
  CHECK_NEAR(c[1], 0.998364, 1e-6);
  CHECK_NEAR(c[2], 0.644924, 1e-6);
  /* Both are designed with lightness rising monotonically along the map. */
  for (int cm = VL_CMAP_VIRIDIS; cm <= VL_CMAP_INFERNO; cm++) {
    double prev = -1;
    for (int i = 0; i < 256; i++) {
      vl_colormap_apply_f((vl_colormap)cm, (i + 0.5f) / 256.f, c);
      double lum = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
      CHECK(lum > prev);
      prev = lum;
    }
  }
  /* Out-of-range values clamp; NaN takes the lowest colour. */
  uint8_t lo[3], hi[3], x[3];
  vl_colormap_apply(VL_CMAP_VIRIDIS, 0.f, lo);
  vl_colormap_apply(VL_CMAP_VIRIDIS, 1.f, hi);
  vl_colormap_apply(VL_CMAP_VIRIDIS, -3.f, x);
  CHECK(memcmp(x, lo, 3) == 0);
  vl_colormap_apply(VL_CMAP_VIRIDIS, 7.f, x);
  CHECK(memcmp(x, hi, 3) == 0);
  vl_colormap_apply(VL_CMAP_VIRIDIS, NAN, x);
  CHECK(memcmp(x, lo, 3) == 0);
  CHECK(lo[0] == 68 && lo[1] == 1 && lo[2] == 84); /* round(0.267004*255) ... */
}

static void test_colormap_names(void) {
  vl_colormap cm = VL_CMAP_JET;
  CHECK(vl_colormap_from_name("inferno", &cm) == VL_OK && cm == VL_CMAP_INFERNO);
  CHECK(vl_colormap_from_name("viridis", &cm) == VL_OK && cm == VL_CMAP_VIRIDIS);
  CHECK(strcmp(vl_colormap_name(VL_CMAP_JET), "jet") == 0);
  CHECK(vl_colormap_from_name("rainbow", &cm) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "rainbow") != NULL);
}

static void test_upsample_2x2(void) {
  /* Cell centres of a 2x2 grid on a 4x4 image are at pixel coordinates 1 and 3. */
  const float grid[4] = {0, 1, 1, 0};
  float out[16];
  REQUIRE(vl_heatmap_upsample(grid, 2, 2, 4, 4, out) == VL_OK);
  CHECK_NEAR(out[0], 0, 1e-6);             /* (0,0): clamped to cell (0,0) */
  CHECK_NEAR(out[3], 1, 1e-6);             /* (3,0): clamped to cell (1,0) */
  CHECK_NEAR(out[1 * 4 + 1], 0.375, 1e-6); /* t = 0.25 both ways */
  CHECK_NEAR(out[1 * 4 + 2], 0.625, 1e-6); /* tx = 0.75, ty = 0.25 */
  CHECK_NEAR(out[2 * 4 + 2], 0.375, 1e-6);
  CHECK_NEAR(out[0 * 4 + 1], 0.25, 1e-6); /* row 0 clamped: 0 -> 1 at t=0.25 */
  CHECK_NEAR(out[3 * 4 + 1], 0.75, 1e-6); /* row 3 clamped: 1 -> 0 at t=0.25 */
}

static void test_upsample_linear_grid(void) {
  /* f(c, r) = c + 2r is reproduced exactly by bilinear interpolation between
   * centres, and held constant beyond the outer centres. */
  enum { GW = 3, GH = 2, W = 8, H = 6 };
  float grid[GW * GH], out[W * H];
  for (int r = 0; r < GH; r++)
    for (int c = 0; c < GW; c++)
      grid[r * GW + c] = (float)(c + 2 * r);
  REQUIRE(vl_heatmap_upsample(grid, GW, GH, W, H, out) == VL_OK);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      double gx = (x + 0.5) * GW / W - 0.5, gy = (y + 0.5) * GH / H - 0.5;
      gx = gx < 0 ? 0 : gx > GW - 1 ? GW - 1 : gx;
      gy = gy < 0 ? 0 : gy > GH - 1 ? GH - 1 : gy;
      CHECK_NEAR(out[y * W + x], gx + 2 * gy, 1e-5);
    }
  float bad[2] = {0, NAN};
  CHECK(vl_heatmap_upsample(bad, 2, 1, 4, 4, out) == VL_ERR_INVALID);
  CHECK(vl_heatmap_upsample(grid, 0, 2, 4, 4, out) == VL_ERR_INVALID);
  CHECK(vl_heatmap_upsample(grid, 3, 2, 0, 4, out) == VL_ERR_INVALID);
}

static void test_normalize(void) {
  float v[3] = {2, 4, 6};
  REQUIRE(vl_heatmap_normalize(v, 3) == VL_OK);
  CHECK_NEAR(v[0], 0, 1e-7);
  CHECK_NEAR(v[1], 0.5, 1e-7);
  CHECK_NEAR(v[2], 1, 1e-7);
  float k[2] = {3, 3};
  REQUIRE(vl_heatmap_normalize(k, 2) == VL_OK);
  CHECK(k[0] == 0 && k[1] == 0);
  float bad[2] = {1, INFINITY};
  CHECK(vl_heatmap_normalize(bad, 2) == VL_ERR_INVALID);
}

static vl_image *pattern_image(int w, int h, int channels, unsigned seed) {
  vl_image *img = vl_image_new(w, h, channels);
  if (!img) return NULL;
  for (size_t i = 0; i < (size_t)w * h * channels; i++) {
    seed = seed * 1103515245u + 12345u;
    img->pixels[i] = (uint8_t)(seed >> 16);
  }
  return img;
}

static void test_overlay_formula(void) {
  enum { W = 6, H = 4, GW = 3, GH = 2 };
  const float grid[GW * GH] = {0.f, 0.3f, 1.f, 0.55f, 0.8f, 0.1f};
  vl_image *img = pattern_image(W, H, 3, 7);
  REQUIRE(img);
  float v[W * H];
  REQUIRE(vl_heatmap_upsample(grid, GW, GH, W, H, v) == VL_OK);
  const float alpha = 0.4f;
  vl_image *o = vl_heatmap_overlay(img, grid, GW, GH, VL_CMAP_INFERNO, alpha);
  REQUIRE(o && o->width == W && o->height == H && o->channels == 3);
  for (int i = 0; i < W * H; i++) {
    float c[3];
    vl_colormap_apply_f(VL_CMAP_INFERNO, v[i], c);
    for (int k = 0; k < 3; k++) {
      double cm8 = floor(c[k] * 255.0 + 0.5);
      double ref = (1 - (double)alpha) * img->pixels[i * 3 + k] + (double)alpha * cm8;
      CHECK(o->pixels[i * 3 + k] == (uint8_t)floor(ref + 0.5));
    }
  }
  vl_image_free(o);
  /* alpha 0 leaves the image; alpha 1 is the colour-mapped heatmap. */
  o = vl_heatmap_overlay(img, grid, GW, GH, VL_CMAP_JET, 0.f);
  REQUIRE(o);
  CHECK(memcmp(o->pixels, img->pixels, W * H * 3) == 0);
  vl_image_free(o);
  o = vl_heatmap_overlay(img, grid, GW, GH, VL_CMAP_JET, 1.f);
  vl_image *hm = vl_heatmap_colorize(grid, GW, GH, W, H, VL_CMAP_JET);
  REQUIRE(o && hm);
  CHECK(memcmp(o->pixels, hm->pixels, W * H * 3) == 0);
  vl_image_free(o);
  vl_image_free(hm);
  /* A grey image is blended as RGB with the grey replicated. */
  vl_image *grey = pattern_image(W, H, 1, 3);
  REQUIRE(grey);
  o = vl_heatmap_overlay(grey, grid, GW, GH, VL_CMAP_VIRIDIS, 0.25f);
  REQUIRE(o && o->channels == 3);
  uint8_t c8[3];
  vl_colormap_apply(VL_CMAP_VIRIDIS, v[5], c8);
  CHECK(o->pixels[5 * 3 + 1] == (uint8_t)floor(0.75 * grey->pixels[5] + 0.25 * c8[1] + 0.5));
  vl_image_free(o);
  CHECK(vl_heatmap_overlay(img, grid, GW, GH, VL_CMAP_JET, 1.5f) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_INVALID);
  vl_image_free(grey);
  vl_image_free(img);
}

static vl_font *font(void) {
  vl_font *f = vl_font_load(NULL);
  if (!f) printf("  font: %s\n", vl_last_error());
  return f;
}

static void test_text_draws_inside_box(void) {
  vl_font *f = font();
  REQUIRE(f);
  const uint8_t white[3] = {255, 255, 255}, black[3] = {0, 0, 0};
  vl_image *img = vl_canvas_new(320, 60, white);
  REQUIRE(img);
  const char *text = "Hello, W\xC3\xB6rld gjy"; /* UTF-8 o-umlaut, descenders */
  const int x0 = 10, y0 = 12;
  int w = vl_font_text_width(f, text, 20.f);
  int lh = vl_font_line_height(f, 20.f);
  CHECK(w > 100 && w < 300);
  CHECK(lh >= 20 && lh <= 26);
  CHECK(vl_font_draw(f, img, x0, y0, text, 20.f, black) == w);
  int dark_in = 0, ink_out = 0;
  for (int y = 0; y < img->height; y++)
    for (int x = 0; x < img->width; x++) {
      uint8_t p = img->pixels[(y * img->width + x) * 3];
      int inside = x >= x0 && x < x0 + w && y >= y0 && y < y0 + lh;
      if (inside && p < 128) dark_in++;
      if (!inside && p != 255) ink_out++;
    }
  CHECK(dark_in > 150);
  CHECK(ink_out == 0);
  CHECK(vl_font_text_width(f, "", 20.f) == 0);
  CHECK(vl_font_text_width(f, "ab", 20.f) > vl_font_text_width(f, "a", 20.f));
  int w40 = vl_font_text_width(f, text, 40.f);
  CHECK(w40 > 2 * w - 8 && w40 < 2 * w + 8);
  /* Absurd heights are clamped rather than allocating giant glyphs. */
  CHECK(vl_font_text_width(f, "a", 1e9f) == vl_font_text_width(f, "a", VL_FONT_MAX_PX));
  CHECK(vl_font_text_width(f, "a", -5.f) == vl_font_text_width(f, "a", 1.f));
  /* Text partly outside the image is clipped, not written out of bounds. */
  vl_font_draw(f, img, -15, -8, text, 30.f, black);
  vl_font_draw(f, img, 300, 50, text, 30.f, black);
  vl_image_free(img);
  vl_font_free(f);
}

static void test_wrap(void) {
  vl_font *f = font();
  REQUIRE(f);
  const char *text = "the quick brown fox jumps over the lazy dog";
  vl_text_lines t;
  REQUIRE(vl_font_wrap(f, text, 16.f, 100, &t) == VL_OK);
  CHECK(t.n >= 3);
  char joined[256] = "";
  for (int i = 0; i < t.n; i++) {
    CHECK(vl_font_text_width(f, t.lines[i], 16.f) <= 100);
    if (i) strcat(joined, " ");
    strcat(joined, t.lines[i]);
  }
  CHECK(strcmp(joined, text) == 0);
  /* Greedy: the next line's first word would not have fitted. */
  for (int i = 0; i + 1 < t.n; i++) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s %.*s", t.lines[i], (int)strcspn(t.lines[i + 1], " "),
             t.lines[i + 1]);
    CHECK(vl_font_text_width(f, buf, 16.f) > 100);
  }
  vl_text_lines_free(&t);
  const char *word = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  REQUIRE(vl_font_wrap(f, word, 16.f, 50, &t) == VL_OK);
  CHECK(t.n >= 3);
  joined[0] = 0;
  for (int i = 0; i < t.n; i++) {
    CHECK(vl_font_text_width(f, t.lines[i], 16.f) <= 50);
    strcat(joined, t.lines[i]);
  }
  CHECK(strcmp(joined, word) == 0);
  vl_text_lines_free(&t);
  REQUIRE(vl_font_wrap(f, "one\ntwo", 16.f, 500, &t) == VL_OK);
  CHECK(t.n == 2 && strcmp(t.lines[0], "one") == 0 && strcmp(t.lines[1], "two") == 0);
  vl_text_lines_free(&t);
  CHECK(vl_font_wrap(f, "x", 16.f, 0, &t) == VL_ERR_INVALID);
  vl_font_free(f);
}

static void test_font_errors(void) {
  CHECK(vl_font_load("/nonexistent/dir/Font.ttf") == NULL);
  CHECK(vl_last_error_code() == VL_ERR_NOTFOUND);
  CHECK(strstr(vl_last_error(), "/nonexistent/dir/Font.ttf") != NULL);
  char path[512];
  snprintf(path, sizeof path, "%s/not-a-font.ttf", test_tmpdir());
  const char junk[] = "this is certainly not a TrueType font file";
  REQUIRE(test_write_file(path, junk, sizeof junk) == 0);
  CHECK(vl_font_load(path) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_FORMAT);
}

static int count_dark(const vl_image *img, int x0, int y0, int w, int h) {
  int n = 0;
  for (int y = y0; y < y0 + h; y++)
    for (int x = x0; x < x0 + w; x++)
      if (img->pixels[((size_t)y * img->width + x) * 3] < 100) n++;
  return n;
}

static int rects_disjoint(vl_rect a, vl_rect b) {
  return a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
}

static void test_three_panel(void) {
  vl_font *f = font();
  REQUIRE(f);
  vl_image *img = pattern_image(96, 96, 3, 11);
  REQUIRE(img);
  float grid[16];
  for (int i = 0; i < 16; i++)
    grid[i] = i / 15.f;
  vl_figure_opts o;
  vl_figure_opts_init(&o);
  o.font = f;
  o.title = "cat";
  vl_rect r[3];
  vl_image *fig = vl_figure_three_panel(img, grid, 4, 4, &o, r);
  REQUIRE(fig && fig->channels == 3);
  for (int i = 0; i < 3; i++) {
    CHECK(r[i].w == 192 && r[i].h == 192);
    CHECK(r[i].x >= 0 && r[i].y >= 0 && r[i].x + r[i].w <= fig->width &&
          r[i].y + r[i].h <= fig->height);
  }
  CHECK(rects_disjoint(r[0], r[1]) && rects_disjoint(r[1], r[2]));
  CHECK(fig->width >= 3 * 192 + 40 && fig->height >= 192 + 40);
  /* Panel 0 is the image scaled x2 by pixel repetition. */
  int same = 1;
  for (int y = 0; y < 192 && same; y++)
    for (int x = 0; x < 192 && same; x++)
      same = memcmp(fig->pixels + ((size_t)(r[0].y + y) * fig->width + r[0].x + x) * 3,
                    img->pixels + ((size_t)(y / 2) * 96 + x / 2) * 3, 3) == 0;
  CHECK(same);
  /* Panel 2 is the overlay computed at panel resolution. */
  vl_image *big = vl_canvas_scale(img, 192, 192);
  vl_image *ov = big ? vl_heatmap_overlay(big, grid, 4, 4, o.cmap, o.alpha) : NULL;
  REQUIRE(ov);
  same = 1;
  for (int y = 0; y < 192 && same; y++)
    same = memcmp(fig->pixels + ((size_t)(r[2].y + y) * fig->width + r[2].x) * 3,
                  ov->pixels + (size_t)y * 192 * 3, 192 * 3) == 0;
  CHECK(same);
  /* Titles are set above the panels; the corners stay white. */
  CHECK(count_dark(fig, r[0].x, 0, r[0].w, r[0].y) > 20);
  CHECK(count_dark(fig, r[2].x, 0, r[2].w, r[2].y) > 20);
  CHECK(fig->pixels[0] == 255 && fig->pixels[(fig->width * fig->height - 1) * 3] == 255);
  /* Colour bar labels to the right of the heatmap panel. */
  CHECK(count_dark(fig, r[1].x + r[1].w + 20, r[1].y - 8, r[2].x - r[1].x - r[1].w - 20,
                   r[1].h + 16) > 20);
  vl_image_free(ov);
  vl_image_free(big);
  vl_image_free(fig);
  /* Large images are scaled down to max_panel. */
  vl_image *wide = pattern_image(1024, 512, 3, 5);
  REQUIRE(wide);
  fig = vl_figure_three_panel(wide, grid, 4, 4, &o, r);
  REQUIRE(fig);
  CHECK(r[0].w == 512 && r[0].h == 256);
  vl_image_free(fig);
  vl_image_free(wide);
  CHECK(vl_figure_three_panel(img, grid, 0, 4, &o, r) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_INVALID);
  vl_image_free(img);
  vl_font_free(f);
}

static void test_panel_size(void) {
  int w, h;
  vl_figure_panel_size(96, 96, 192, 512, &w, &h);
  CHECK(w == 192 && h == 192);
  vl_figure_panel_size(100, 50, 192, 512, &w, &h);
  CHECK(w == 200 && h == 100);
  vl_figure_panel_size(300, 200, 192, 512, &w, &h);
  CHECK(w == 300 && h == 200);
  vl_figure_panel_size(2000, 10, 192, 500, &w, &h);
  CHECK(w == 500 && h == 3);
}

static void test_grid_figure(void) {
  vl_font *f = font();
  REQUIRE(f);
  enum { R = 2, C = 3 };
  vl_image *p[R * C];
  const uint8_t colours[R * C][3] = {{200, 0, 0},   {0, 200, 0},   {0, 0, 200},
                                     {200, 200, 0}, {0, 200, 200}, {200, 0, 200}};
  for (int i = 0; i < R * C; i++) {
    p[i] = vl_canvas_new(32, 24, colours[i]);
    REQUIRE(p[i]);
  }
  const vl_image *panels[R * C] = {p[0], p[1], p[2], p[3], NULL, p[5]};
  const char *rows[R] = {"layer 0", "layer 11"};
  const char *cols[C] = {"head 0", "head 1", "head 2"};
  vl_grid_opts o;
  vl_grid_opts_init(&o);
  o.font = f;
  o.cell = 64;
  o.row_labels = rows;
  o.col_labels = cols;
  o.title = "attention";
  vl_rect cells[R * C];
  vl_image *fig = vl_figure_grid(panels, R, C, &o, cells);
  REQUIRE(fig);
  CHECK(fig->width >= C * 64 && fig->height >= R * 64);
  for (int i = 0; i < R * C; i++) {
    if (!panels[i]) {
      CHECK(cells[i].w == 0);
      continue;
    }
    CHECK(cells[i].w == 64 && cells[i].h == 48); /* 32x24 scaled x2 */
    for (int j = 0; j < i; j++)
      if (panels[j]) CHECK(rects_disjoint(cells[i], cells[j]));
    int ok = 1;
    for (int y = cells[i].y; y < cells[i].y + cells[i].h; y++)
      for (int x = cells[i].x; x < cells[i].x + cells[i].w; x++)
        ok &= memcmp(fig->pixels + ((size_t)y * fig->width + x) * 3, colours[i], 3) == 0;
    CHECK(ok);
  }
  /* Labels left of the first column and above the first row. */
  CHECK(count_dark(fig, 0, cells[0].y, cells[0].x, 64) > 10);
  CHECK(count_dark(fig, cells[0].x, 0, 64, cells[0].y - 8) > 10);
  vl_image_free(fig);
  CHECK(vl_figure_grid(panels, 0, 3, &o, NULL) == NULL);
  for (int i = 0; i < R * C; i++)
    vl_image_free(p[i]);
  vl_font_free(f);
}

static void test_caption(void) {
  vl_font *f = font();
  REQUIRE(f);
  vl_image *img = pattern_image(200, 100, 3, 9);
  REQUIRE(img);
  int lh = vl_font_line_height(f, 16.f);
  vl_image *a = vl_figure_caption(img, "a cat", -1, 2, 16.f, f);
  vl_image *b = vl_figure_caption(
      img, "a cat sitting on a red sofa next to a window with the curtains drawn", -1, 2, 16.f, f);
  vl_image *c = vl_figure_caption(
      img, "a cat sitting on a red sofa next to a window with the curtains drawn", -1, 0, 16.f, f);
  REQUIRE(a && b && c);
  CHECK(a->width == 200 && a->height == b->height && a->height >= 100 + 2 * lh);
  CHECK(c->height > b->height);
  CHECK(memcmp(a->pixels, img->pixels, 200 * 100 * 3) == 0);
  CHECK(count_dark(a, 0, 100, 200, a->height - 100) > 20);
  CHECK(count_dark(b, 0, 100, 200, b->height - 100) > count_dark(a, 0, 100, 200, a->height - 100));
  vl_image_free(a);
  vl_image_free(b);
  vl_image_free(c);
  CHECK(vl_figure_caption(img, "x", -1, 1, 0.f, f) == NULL);
  /* Highlight: only the last word is in colour, and it is right of the rest. */
  const char *text = "a cat on the mat";
  vl_image *h = vl_figure_caption(img, text, (int)(strstr(text, "mat") - text), 1, 16.f, f);
  REQUIRE(h);
  const uint8_t hl[3] = VL_CAPTION_HIGHLIGHT_RGB;
  int mat_w = vl_font_text_width(f, "mat", 16.f), all_w = vl_font_text_width(f, text, 16.f);
  int red = 0, red_outside = 0;
  for (int y = 100; y < h->height; y++)
    for (int x = 0; x < h->width; x++) {
      const uint8_t *p = h->pixels + ((size_t)y * h->width + x) * 3;
      if (p[0] > 150 && p[1] < 110 && p[2] < 110 && p[0] > p[1] + 60) {
        red++;
        /* the caption starts at a small margin; "mat" is the last mat_w px */
        if (x < all_w - mat_w - 2 || x > all_w + 12) red_outside++;
      }
    }
  CHECK(red > 20);
  CHECK(red_outside == 0);
  CHECK(hl[0] > 150);
  vl_image_free(h);
  vl_image_free(img);
  vl_font_free(f);
}

static void test_heatmap_grid(void) {
  vl_font *f = font();
  REQUIRE(f);
  vl_image *img = pattern_image(96, 64, 3, 4);
  REQUIRE(img);
  float g0[4] = {0, 1, 0, 1}, g1[4] = {1, 0, 1, 0};
  const float *grids[4] = {g0, g1, NULL, g0};
  vl_grid_opts o;
  vl_grid_opts_init(&o);
  o.font = f;
  o.cell = 96;
  vl_image *fig = vl_figure_heatmap_grid(img, grids, 2, 2, 2, 2, VL_CMAP_JET, 0.5f, &o);
  REQUIRE(fig);
  /* Same layout as the generic grid of the same panel size. */
  vl_image *p = vl_canvas_new(96, 64, (const uint8_t[3]){0, 0, 0});
  REQUIRE(p);
  const vl_image *panels[4] = {p, p, NULL, p};
  vl_rect cells[4];
  vl_image *ref = vl_figure_grid(panels, 2, 2, &o, cells);
  REQUIRE(ref);
  CHECK(fig->width == ref->width && fig->height == ref->height);
  /* Cell 0 is the overlay of grid 0 on the (unscaled) image. */
  vl_image *ov = vl_heatmap_overlay(img, g0, 2, 2, VL_CMAP_JET, 0.5f);
  REQUIRE(ov);
  int same = 1;
  for (int y = 0; y < 64; y++)
    same &= memcmp(fig->pixels + ((size_t)(cells[0].y + y) * fig->width + cells[0].x) * 3,
                   ov->pixels + (size_t)y * 96 * 3, 96 * 3) == 0;
  CHECK(same);
  float bad[4] = {0, NAN, 0, 0};
  const float *bad_grids[1] = {bad};
  CHECK(vl_figure_heatmap_grid(img, bad_grids, 2, 2, 1, 1, VL_CMAP_JET, 0.5f, &o) == NULL);
  CHECK(strstr(vl_last_error(), "panel 0") != NULL);
  vl_image_free(ov);
  vl_image_free(ref);
  vl_image_free(p);
  vl_image_free(fig);
  vl_image_free(img);
  vl_font_free(f);
}

static void test_png_roundtrip(void) {
  char path[512];
  for (int ch = 1; ch <= 4; ch += (ch == 1 ? 2 : 1)) {
    vl_image *img = pattern_image(37, 23, ch, 100 + ch);
    REQUIRE(img);
    snprintf(path, sizeof path, "%s/rt%d.png", test_tmpdir(), ch);
    REQUIRE(vl_png_write(img, path) == VL_OK);
    int w, h, n;
    unsigned char *back = stbi_load(path, &w, &h, &n, ch);
    REQUIRE(back);
    CHECK(w == 37 && h == 23 && n == ch);
    CHECK(memcmp(back, img->pixels, (size_t)37 * 23 * ch) == 0);
    stbi_image_free(back);
    vl_image_free(img);
  }
  vl_image *img = pattern_image(4, 4, 3, 1);
  REQUIRE(img);
  uint8_t *mem;
  size_t len;
  REQUIRE(vl_png_encode(img, &mem, &len) == VL_OK);
  int w, h, n;
  unsigned char *back = stbi_load_from_memory(mem, (int)len, &w, &h, &n, 3);
  REQUIRE(back);
  CHECK(w == 4 && h == 4 && memcmp(back, img->pixels, 48) == 0);
  stbi_image_free(back);
  free(mem);
  CHECK(vl_png_write(img, "/nonexistent-dir/x.png") == VL_ERR_IO);
  CHECK(strstr(vl_last_error(), "/nonexistent-dir/x.png") != NULL);
  vl_image_free(img);
}

static const GifColorType *frame_colour(const GifFileType *g, int frame, int x, int y) {
  const SavedImage *si = &g->SavedImages[frame];
  const ColorMapObject *map = si->ImageDesc.ColorMap ? si->ImageDesc.ColorMap : g->SColorMap;
  int idx = si->RasterBits[y * si->ImageDesc.Width + x];
  return idx < map->ColorCount ? &map->Colors[idx] : NULL;
}

static void test_gif_roundtrip(void) {
  enum { W = 20, H = 10 };
  const uint8_t pal[4][3] = {{255, 0, 0}, {0, 128, 0}, {10, 20, 250}, {255, 255, 255}};
  vl_image *frames[4];
  for (int k = 0; k < 3; k++) {
    frames[k] = vl_image_new(W, H, 3);
    REQUIRE(frames[k]);
    for (int i = 0; i < W * H; i++)
      memcpy(frames[k]->pixels + i * 3, pal[(i / 7 + k) % 4], 3);
  }
  /* A smooth gradient with far more than 256 colours. */
  frames[3] = vl_image_new(W, H, 3);
  REQUIRE(frames[3]);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      uint8_t *p = frames[3]->pixels + (y * W + x) * 3;
      p[0] = (uint8_t)(x * 12);
      p[1] = (uint8_t)(y * 25);
      p[2] = (uint8_t)((x * 7 + y * 13) & 255);
    }
  const int delays[4] = {100, 250, 40, 1234};
  char path[512];
  snprintf(path, sizeof path, "%s/anim.gif", test_tmpdir());
  REQUIRE(vl_gif_write(path, (const vl_image *const *)frames, 4, delays, 0) == VL_OK);
  int err = 0;
  GifFileType *g = DGifOpenFileName(path, &err);
  REQUIRE(g);
  REQUIRE(DGifSlurp(g) == GIF_OK);
  CHECK(g->ImageCount == 4 && g->SWidth == W && g->SHeight == H);
  /* Netscape application extension with loop count 0 (forever); DGifSlurp
   * attaches extensions to the image that follows them. */
  int found_loop = 0;
  const ExtensionBlock *ext[2] = {g->ExtensionBlocks, g->SavedImages[0].ExtensionBlocks};
  const int n_ext[2] = {g->ExtensionBlockCount, g->SavedImages[0].ExtensionBlockCount};
  for (int s = 0; s < 2; s++)
    for (int i = 0; i + 1 < n_ext[s]; i++) {
      const ExtensionBlock *e = &ext[s][i], *d = &ext[s][i + 1];
      if (e->Function == APPLICATION_EXT_FUNC_CODE && e->ByteCount == 11 &&
          memcmp(e->Bytes, "NETSCAPE2.0", 11) == 0)
        found_loop = d->ByteCount == 3 && d->Bytes[0] == 1 && d->Bytes[1] == 0 && d->Bytes[2] == 0;
    }
  CHECK(found_loop);
  const int want_cs[4] = {10, 25, 4, 123};
  for (int k = 0; k < 4; k++) {
    GraphicsControlBlock gcb;
    CHECK(DGifSavedExtensionToGCB(g, k, &gcb) == GIF_OK);
    CHECK(gcb.DelayTime == want_cs[k]);
  }
  int exact = 1;
  double err_sum = 0;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      for (int k = 0; k < 3; k++) {
        const GifColorType *c = frame_colour(g, k, x, y);
        const uint8_t *p = frames[k]->pixels + (y * W + x) * 3;
        exact &= c && c->Red == p[0] && c->Green == p[1] && c->Blue == p[2];
      }
      const GifColorType *c = frame_colour(g, 3, x, y);
      const uint8_t *p = frames[3]->pixels + (y * W + x) * 3;
      if (c)
        err_sum += abs(c->Red - p[0]) + abs(c->Green - p[1]) + abs(c->Blue - p[2]);
      else
        err_sum += 1e9;
    }
  CHECK(exact);
  CHECK(err_sum / (W * H * 3) < 8.0);
  DGifCloseFile(g, &err);
  for (int k = 0; k < 4; k++)
    vl_image_free(frames[k]);
}

static void test_gif_loop_count_and_default_delay(void) {
  vl_image *a = pattern_image(5, 4, 1, 8); /* grey frames are written as RGB */
  REQUIRE(a);
  const vl_image *one[1] = {a};
  char path[512];
  snprintf(path, sizeof path, "%s/loop.gif", test_tmpdir());
  REQUIRE(vl_gif_write(path, one, 1, NULL, 300) == VL_OK);
  int err = 0;
  GifFileType *g = DGifOpenFileName(path, &err);
  REQUIRE(g);
  REQUIRE(DGifSlurp(g) == GIF_OK);
  CHECK(g->ImageCount == 1);
  const SavedImage *si = &g->SavedImages[0];
  int loops = -1;
  for (int i = 0; i + 1 < si->ExtensionBlockCount; i++)
    if (si->ExtensionBlocks[i].Function == APPLICATION_EXT_FUNC_CODE &&
        si->ExtensionBlocks[i + 1].ByteCount == 3)
      loops = si->ExtensionBlocks[i + 1].Bytes[1] | si->ExtensionBlocks[i + 1].Bytes[2] << 8;
  CHECK(loops == 300);
  GraphicsControlBlock gcb;
  CHECK(DGifSavedExtensionToGCB(g, 0, &gcb) == GIF_OK);
  CHECK(gcb.DelayTime == VL_GIF_DEFAULT_DELAY_MS / 10);
  int exact = 1;
  for (int i = 0; i < 20; i++) {
    const GifColorType *c = frame_colour(g, 0, i % 5, i / 5);
    exact &= c && c->Red == a->pixels[i] && c->Green == a->pixels[i] && c->Blue == a->pixels[i];
  }
  CHECK(exact);
  DGifCloseFile(g, &err);
  const int huge[1] = {2147483647};
  REQUIRE(vl_gif_write(path, one, 1, huge, 0) == VL_OK);
  g = DGifOpenFileName(path, &err);
  REQUIRE(g);
  REQUIRE(DGifSlurp(g) == GIF_OK);
  CHECK(DGifSavedExtensionToGCB(g, 0, &gcb) == GIF_OK && gcb.DelayTime == 65535);
  DGifCloseFile(g, &err);
  CHECK(vl_gif_write(path, one, 1, NULL, -1) == VL_ERR_INVALID);
  vl_image_free(a);
}

static void test_gif_errors(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/bad.gif", test_tmpdir());
  vl_image *a = pattern_image(8, 8, 3, 1), *b = pattern_image(8, 9, 3, 2);
  REQUIRE(a && b);
  const vl_image *two[2] = {a, b};
  CHECK(vl_gif_write(path, two, 0, NULL, 0) == VL_ERR_INVALID);
  CHECK(vl_gif_write(path, two, 2, NULL, 0) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "frame 1") != NULL);
  CHECK(access(path, F_OK) != 0);
  CHECK(vl_gif_write("/nonexistent-dir/x.gif", two, 1, NULL, 0) == VL_ERR_IO);
  CHECK(strstr(vl_last_error(), "/nonexistent-dir/x.gif") != NULL);
  const int neg[1] = {-5};
  CHECK(vl_gif_write(path, two, 1, neg, 0) == VL_ERR_INVALID);
  vl_image_free(a);
  vl_image_free(b);
}

int main(void) {
  RUN(test_jet_matches_definition);
  RUN(test_listed_colormaps);
  RUN(test_colormap_names);
  RUN(test_upsample_2x2);
  RUN(test_upsample_linear_grid);
  RUN(test_normalize);
  RUN(test_overlay_formula);
  RUN(test_text_draws_inside_box);
  RUN(test_wrap);
  RUN(test_font_errors);
  RUN(test_panel_size);
  RUN(test_three_panel);
  RUN(test_grid_figure);
  RUN(test_caption);
  RUN(test_heatmap_grid);
  RUN(test_png_roundtrip);
  RUN(test_gif_roundtrip);
  RUN(test_gif_loop_count_and_default_delay);
  RUN(test_gif_errors);
  return test_summary();
}
