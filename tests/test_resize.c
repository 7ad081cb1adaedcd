/* Resize and preprocessing against Pillow 9.4 / transformers references:
 * tests/data/images/resize.txt (tools/gen_resize_goldens.py) byte for byte,
 * and the independent goldens in ../shared/golden (preprocess.resized_u8
 * exactly, pixel_values within 1e-4). */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/threads.h"
#include "goldens.h"
#include "io/image.h"
#include "io/preprocess.h"
#include "io/resize.h"
#include "io/safetensors.h"
#include "test.h"

#define DATA "tests/data/images/"

static int filter_by_name(const char *s) {
  for (int f = 0; f <= 5; f++)
    if (strcmp(vl_resample_name(f), s) == 0) return f;
  return -1;
}

static void test_pillow_goldens(void) {
  FILE *fp = fopen(DATA "resize.txt", "r");
  REQUIRE(fp);
  char line[512], src[128], filt[32], res[256];
  int w, h, n = 0, bad = 0;
  while (fgets(line, sizeof line, fp)) {
    if (line[0] == '#') continue;
    if (sscanf(line, "%127s %31s %d %d %255s", src, filt, &w, &h, res) != 5) continue;
    char path[512];
    snprintf(path, sizeof path, DATA "src_%s.png", src);
    vl_image *in = vl_image_load(path, 0);
    snprintf(path, sizeof path, DATA "resize/%s", res);
    vl_image *want = vl_image_load(path, 0);
    int f = filter_by_name(filt);
    CHECK(in && want && f >= 0);
    if (!in || !want || f < 0) {
      vl_image_free(in);
      vl_image_free(want);
      bad++;
      continue;
    }
    vl_image *got = vl_image_resize(in, w, h, (vl_resample)f);
    CHECK(got);
    if (got) {
      CHECK(got->width == w && got->height == h && want->width == w && want->height == h);
      size_t nb = (size_t)w * h * 3, diff = 0, first = nb;
      for (size_t i = 0; i < nb; i++)
        if (got->pixels[i] != want->pixels[i]) {
          if (first == nb) first = i;
          diff++;
        }
      if (diff) {
        printf("  %s: %zu of %zu bytes differ (first at %zu: %d vs Pillow %d)\n", res, diff, nb,
               first, got->pixels[first], want->pixels[first]);
        bad++;
      }
    }
    n++;
    vl_image_free(in);
    vl_image_free(want);
    vl_image_free(got);
  }
  fclose(fp);
  printf("  %d Pillow resize goldens compared, %d differ\n", n, bad);
  CHECK(n >= 100);
  CHECK(bad == 0);
}

static void test_resize_same_size_and_errors(void) {
  vl_image *in = vl_image_load(DATA "src_grad37x23.png", 0);
  REQUIRE(in);
  vl_image *same = vl_image_resize(in, 37, 23, VL_RESAMPLE_BICUBIC);
  REQUIRE(same);
  CHECK(memcmp(same->pixels, in->pixels, 37 * 23 * 3) == 0);
  vl_image_free(same);
  CHECK(vl_image_resize(in, 0, 5, VL_RESAMPLE_BICUBIC) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_INVALID);
  CHECK(vl_image_resize(in, 5, 5, (vl_resample)9) == NULL);
  CHECK(strstr(vl_last_error(), "filter") != NULL);
  CHECK(vl_image_resize(NULL, 5, 5, VL_RESAMPLE_BICUBIC) == NULL);
  vl_image_free(in);
}

/* The passes split rows over threads; the bytes must not depend on it. */
static void test_threads_same_bytes(void) {
  vl_image *in = vl_image_new(300, 200, 3);
  REQUIRE(in);
  uint32_t s = 99;
  for (size_t i = 0; i < (size_t)300 * 200 * 3; i++) {
    s = s * 1664525u + 1013904223u;
    in->pixels[i] = (uint8_t)(s >> 24);
  }
  vl_threads_set(1);
  vl_image *a = vl_image_resize(in, 517, 311, VL_RESAMPLE_BICUBIC);
  vl_image *b1 = vl_image_resize(in, 97, 41, VL_RESAMPLE_LANCZOS);
  vl_threads_set(4);
  vl_image *b = vl_image_resize(in, 517, 311, VL_RESAMPLE_BICUBIC);
  vl_image *b2 = vl_image_resize(in, 97, 41, VL_RESAMPLE_LANCZOS);
  vl_threads_set(0);
  CHECK(a && b && b1 && b2);
  if (a && b) CHECK(memcmp(a->pixels, b->pixels, (size_t)517 * 311 * 3) == 0);
  if (b1 && b2) CHECK(memcmp(b1->pixels, b2->pixels, (size_t)97 * 41 * 3) == 0);
  vl_image_free(a);
  vl_image_free(b);
  vl_image_free(b1);
  vl_image_free(b2);
  vl_image_free(in);
}

static void test_shortest_edge_size(void) {
  int w = 0, h = 0;
  CHECK(vl_shortest_edge_size(45, 45, 32, 0, &w, &h) == 0 && w == 32 && h == 32);
  /* int(224 * 480 / 640) = 168 (landscape: height is the short side) */
  CHECK(vl_shortest_edge_size(640, 480, 224, 0, &w, &h) == 0 && w == 298 && h == 224);
  CHECK(vl_shortest_edge_size(480, 640, 224, 0, &w, &h) == 0 && w == 224 && h == 298);
  /* 224 * 333 / 100 = 745.92 -> 745 (truncation, not rounding) */
  CHECK(vl_shortest_edge_size(100, 333, 224, 0, &w, &h) == 0 && w == 224 && h == 745);
  /* max_size: long side capped, short side scaled: int(500 * 224 / 745) = 150 */
  CHECK(vl_shortest_edge_size(100, 333, 224, 500, &w, &h) == 0 && w == 150 && h == 500);
  CHECK(vl_shortest_edge_size(100, 333, 224, 224, &w, &h) == VL_ERR_INVALID);
  CHECK(vl_shortest_edge_size(0, 3, 224, 0, &w, &h) == VL_ERR_INVALID);
}

static void test_center_crop(void) {
  vl_image *in = vl_image_new(5, 4, 3);
  REQUIRE(in);
  for (int i = 0; i < 5 * 4 * 3; i++)
    in->pixels[i] = (uint8_t)(i + 1);
  /* odd difference: top = (4 - 3) // 2 = 0, left = (5 - 2) // 2 = 1 */
  vl_image *c = vl_image_center_crop(in, 2, 3);
  REQUIRE(c);
  CHECK(c->width == 2 && c->height == 3);
  for (int y = 0; y < 3; y++)
    for (int x = 0; x < 2; x++)
      for (int k = 0; k < 3; k++)
        CHECK(c->pixels[(y * 2 + x) * 3 + k] == in->pixels[(y * 5 + x + 1) * 3 + k]);
  vl_image_free(c);
  /* larger than the image: zero padding, pad = ceil((8-5)/2) = 2 left, 1 top */
  c = vl_image_center_crop(in, 8, 6);
  REQUIRE(c);
  for (int y = 0; y < 6; y++)
    for (int x = 0; x < 8; x++) {
      int sy = y - 1, sx = x - 2;
      int inside = sy >= 0 && sy < 4 && sx >= 0 && sx < 5;
      uint8_t want = inside ? in->pixels[(sy * 5 + sx) * 3] : 0;
      CHECK(c->pixels[(y * 8 + x) * 3] == want);
    }
  vl_image_free(c);
  vl_image_free(in);
}

/* CLIP-style pipeline (shortest edge, odd and padding centre crops) against
 * tests/data/images/preprocess.txt, a numpy transcription of transformers. */
static void test_clip_pipeline_vs_numpy(void) {
  FILE *fp = fopen(DATA "preprocess.txt", "r");
  REQUIRE(fp);
  char line[512], src[128], res[256];
  int se, cw, chh, n = 0;
  while (fgets(line, sizeof line, fp)) {
    if (line[0] == '#' || sscanf(line, "%127s %d %d %d %255s", src, &se, &cw, &chh, res) != 5)
      continue;
    char path[512];
    snprintf(path, sizeof path, DATA "src_%s.png", src);
    vl_image *in = vl_image_load(path, 0);
    snprintf(path, sizeof path, DATA "resize/%s", res);
    size_t len = 0;
    unsigned char *ref = test_read_file(path, &len);
    vl_preprocess_cfg cfg;
    vl_preprocess_cfg_default(&cfg);
    cfg.resize_shortest_edge = 1;
    cfg.shortest_edge = se;
    cfg.do_center_crop = 1;
    cfg.crop_width = cw;
    cfg.crop_height = chh;
    float *out = NULL;
    int w = 0, h = 0;
    CHECK(in && ref && len == (size_t)3 * cw * chh * sizeof(float));
    if (in && ref && len == (size_t)3 * cw * chh * sizeof(float) &&
        vl_preprocess(&cfg, in, &out, &w, &h, NULL) == 0) {
      CHECK(w == cw && h == chh);
      float *want = malloc(len);
      REQUIRE(want);
      memcpy(want, ref, len); /* little-endian float32, as written by numpy "<f4" */
      double err = test_max_rel_err(out, want, (size_t)3 * cw * chh);
      if (err > 1e-6) printf("  %s: max rel err %.3g\n", res, err);
      CHECK(err <= 1e-6);
      free(want);
      n++;
    } else {
      CHECK(!"preprocess failed");
    }
    free(out);
    free(ref);
    vl_image_free(in);
  }
  fclose(fp);
  CHECK(n >= 4);
}

/* golden.safetensors of the shared golden model dir (NULL when missing: the
 * test is skipped), with its image.png into *img and its
 * preprocessor_config.json parsed into cfg; *ok: both loaded. */
static vl_safetensors *open_golden(const char *dir, vl_image **img, vl_preprocess_cfg *cfg,
                                   bool *ok) {
  vl_safetensors *st = vl_st_open(golden_path(dir, "golden.safetensors"));
  if (!st) {
    printf("  %s missing; skipped (%s)\n", golden_path(dir, "golden.safetensors"), vl_last_error());
    return NULL;
  }
  size_t len;
  char *json = (char *)test_read_file(golden_path(dir, "preprocessor_config.json"), &len);
  *img = vl_image_load(golden_path(dir, "image.png"), 0);
  *ok = json && *img && vl_preprocess_cfg_parse(cfg, json, "preprocessor_config.json") == 0;
  free(json);
  return st;
}

/* One shared golden: our whole pipeline from image.png and
 * preprocessor_config.json against preprocess.resized_u8 and pixel_values. */
static void check_golden(const char *dir, int want_w, int want_h) {
  vl_image *img = NULL;
  vl_preprocess_cfg cfg;
  bool ok = false;
  vl_safetensors *st = open_golden(dir, &img, &cfg, &ok);
  if (!st) return;
  CHECK(ok);
  const vl_st_tensor *u8 = vl_st_find(st, "preprocess.resized_u8");
  const vl_st_tensor *pv = vl_st_find(st, "pixel_values");
  CHECK(u8 && pv);
  float *out = NULL;
  vl_image *resized = NULL;
  int w = 0, h = 0;
  if (ok && u8 && pv && vl_preprocess(&cfg, img, &out, &w, &h, &resized) == 0) {
    CHECK(w == want_w && h == want_h);
    CHECK(u8->dtype == VL_U8 && u8->ndim == 3 && u8->shape[0] == h && u8->shape[1] == w &&
          u8->shape[2] == 3);
    CHECK(pv->ndim == 4 && pv->shape[1] == 3 && pv->shape[2] == h && pv->shape[3] == w);
    if (u8->nbytes == (size_t)w * h * 3) {
      size_t diff = 0;
      for (size_t i = 0; i < u8->nbytes; i++)
        diff += ((const uint8_t *)u8->data)[i] != resized->pixels[i];
      if (diff) printf("  %s: %zu resized bytes differ from the golden\n", dir, diff);
      CHECK(diff == 0);
    }
    if (vl_st_numel(pv) == (int64_t)3 * w * h) {
      float *ref = malloc(sizeof(float) * 3 * w * h);
      REQUIRE(ref);
      CHECK(vl_st_to_f32(pv, ref) == 0);
      double err = test_max_rel_err(out, ref, (size_t)3 * w * h);
      printf("  %s: pixel_values max rel err %.3g\n", dir, err);
      CHECK(err <= 1e-4);
      free(ref);
    }
  } else {
    CHECK(!"preprocess failed");
    printf("  %s: %s\n", dir, vl_last_error());
  }
  free(out);
  vl_image_free(resized);
  vl_image_free(img);
  vl_st_close(st);
}

static void test_golden_blip_cap(void) { check_golden("golden/blip-cap-a", 32, 32); }
static void test_golden_blip_itm(void) { check_golden("golden/blip-itm-a", 32, 32); }
static void test_golden_clip(void) { check_golden("golden/clip-a", 32, 32); }

/* Qwen2-VL / 2.5-VL / 3-VL: smart_resize, bicubic, normalise, patch layout
 * against the golden's pixel_values and image_grid_thw. */
static void check_qwen_golden(const char *dir) {
  vl_image *img = NULL;
  vl_preprocess_cfg cfg;
  bool ok = false;
  vl_safetensors *st = open_golden(dir, &img, &cfg, &ok);
  if (!st) return;
  CHECK(ok && cfg.qwen);
  const vl_st_tensor *pv = vl_st_find(st, "pixel_values");
  const vl_st_tensor *thw = vl_st_find(st, "image_grid_thw");
  float *chw = NULL;
  int w = 0, h = 0;
  if (ok && pv && thw && cfg.qwen && vl_preprocess(&cfg, img, &chw, &w, &h, NULL) == 0) {
    int p = cfg.patch_size, T = cfg.temporal_patch_size;
    float grid[3];
    CHECK(vl_st_to_f32(thw, grid) == 0);
    CHECK(grid[0] == 1 && grid[1] == h / p && grid[2] == w / p);
    size_t rows = (size_t)(h / p) * (w / p), cols = (size_t)3 * T * p * p;
    CHECK(pv->ndim == 2 && pv->shape[0] == (int64_t)rows && pv->shape[1] == (int64_t)cols);
    if (vl_st_numel(pv) == (int64_t)(rows * cols)) {
      float *got = malloc(rows * cols * sizeof(float)), *ref = malloc(rows * cols * sizeof(float));
      REQUIRE(got && ref);
      CHECK(vl_qwen_patchify(chw, h, w, p, cfg.merge_size, T, got) == 0);
      CHECK(vl_st_to_f32(pv, ref) == 0);
      double err = test_max_rel_err(got, ref, rows * cols);
      printf("  %s: %dx%d -> %dx%d, pixel_values max rel err %.3g\n", dir, img->width, img->height,
             w, h, err);
      CHECK(err <= 1e-4);
      free(got);
      free(ref);
    }
  } else {
    CHECK(!"qwen preprocess failed");
    printf("  %s: %s\n", dir, vl_last_error());
  }
  free(chw);
  vl_image_free(img);
  vl_st_close(st);
}

static void test_golden_qwen2vl(void) { check_qwen_golden("golden/qwen2vl-a"); }
static void test_golden_qwen25vl(void) { check_qwen_golden("golden/qwen25vl-a"); }
static void test_golden_qwen3vl(void) { check_qwen_golden("golden/qwen3vl-a"); }

static void test_smart_resize(void) {
  int h = 0, w = 0;
  CHECK(vl_smart_resize(100, 120, 28, 3136, 12845056, &h, &w) == 0 && h == 112 && w == 112);
  /* Python round() is half-to-even: 70/28 = 2.5 -> 2, 98/28 = 3.5 -> 4 */
  CHECK(vl_smart_resize(70, 98, 28, 1, 1 << 30, &h, &w) == 0 && h == 56 && w == 112);
  /* too many pixels: beta = sqrt(1000*1000/200000), floor(1000/beta/28)*28 = 420 */
  CHECK(vl_smart_resize(1000, 1000, 28, 3136, 200000, &h, &w) == 0 && h == 420 && w == 420);
  /* too few: beta = sqrt(3136/100), ceil(10*5.6/28)*28 = 56 */
  CHECK(vl_smart_resize(10, 10, 28, 3136, 1 << 30, &h, &w) == 0 && h == 56 && w == 56);
  CHECK(vl_smart_resize(10, 2100, 28, 3136, 1 << 30, &h, &w) == VL_ERR_INVALID);
}

static void test_cfg_parse(void) {
  vl_preprocess_cfg c;
  CHECK(vl_preprocess_cfg_parse(&c,
                                "{\"size\": 224, \"crop_size\": 224, \"do_center_crop\": "
                                "true, \"resample\": 2, \"image_mean\": [0.5,0.5,0.5]}",
                                "t.json") == 0);
  CHECK(c.resize_shortest_edge && c.shortest_edge == 224 && c.do_center_crop &&
        c.crop_width == 224 && c.crop_height == 224 && c.resample == VL_RESAMPLE_BILINEAR &&
        c.mean[1] == 0.5f);
  CHECK(vl_preprocess_cfg_parse(&c, "{\"size\": {\"height\": 384, \"width\": 320}}", "t") == 0);
  CHECK(!c.resize_shortest_edge && c.size_width == 320 && c.size_height == 384);
  CHECK(vl_preprocess_cfg_parse(&c, "{\"size\": {\"foo\": 1}}", "t.json") == VL_ERR_FORMAT);
  CHECK(strstr(vl_last_error(), "t.json") && strstr(vl_last_error(), "size"));
  CHECK(vl_preprocess_cfg_parse(&c, "{\"size\": 32, \"resample\": 17}", "t") == VL_ERR_FORMAT);
  CHECK(vl_preprocess_cfg_parse(&c, "{\"size\": 32, \"image_std\": [1, 2]}", "t") == VL_ERR_FORMAT);
  CHECK(vl_preprocess_cfg_parse(&c, "[1,", "t") == VL_ERR_FORMAT);
  CHECK(vl_preprocess_cfg_parse(&c, "{\"do_resize\": true}", "t") == VL_ERR_FORMAT);
}

static void test_to_chw_values(void) {
  vl_image *in = vl_image_new(2, 1, 3);
  REQUIRE(in);
  const uint8_t px[6] = {0, 128, 255, 10, 20, 30};
  memcpy(in->pixels, px, 6);
  float out[6], mean[3] = {0.5f, 0.25f, 0.0f}, std[3] = {0.5f, 0.25f, 2.0f};
  REQUIRE(vl_image_to_chw(in, 1.0 / 255.0, mean, std, out) == 0);
  /* channel-major: out[c*2 + x] */
  CHECK_NEAR(out[0], (0 / 255.0 - 0.5) / 0.5, 1e-6);
  CHECK_NEAR(out[1], (10 / 255.0 - 0.5) / 0.5, 1e-6);
  CHECK_NEAR(out[2], (128 / 255.0 - 0.25) / 0.25, 1e-6);
  CHECK_NEAR(out[5], (30 / 255.0) / 2.0, 1e-6);
  std[2] = 0.0f;
  CHECK(vl_image_to_chw(in, 1.0 / 255.0, mean, std, out) == VL_ERR_INVALID);
  vl_image_free(in);
}

int main(void) {
  RUN(test_pillow_goldens);
  RUN(test_resize_same_size_and_errors);
  RUN(test_threads_same_bytes);
  RUN(test_shortest_edge_size);
  RUN(test_center_crop);
  RUN(test_to_chw_values);
  RUN(test_cfg_parse);
  RUN(test_clip_pipeline_vs_numpy);
  RUN(test_golden_blip_cap);
  RUN(test_golden_blip_itm);
  RUN(test_golden_clip);
  RUN(test_smart_resize);
  RUN(test_golden_qwen2vl);
  RUN(test_golden_qwen25vl);
  RUN(test_golden_qwen3vl);
  return test_summary();
}
