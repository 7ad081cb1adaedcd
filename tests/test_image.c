/* Image decoding: every format against Pillow's open().convert("RGB")
 * (tests/data/images/decode.txt from tools/gen_resize_goldens.py), and bad
 * input — truncation at every length, corrupt bytes, huge headers, unknown
 * formats, missing files — always a clear error, never a crash. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/image.h"
#include "test.h"
#include "vlens.h"

#define DATA "tests/data/images/"

static void test_decode_matches_pillow(void) {
  FILE *fp = fopen(DATA "decode.txt", "r");
  REQUIRE(fp);
  char line[512], file[128], exp[160];
  int w, h, tol, n = 0;
  while (fgets(line, sizeof line, fp)) {
    if (line[0] == '#' || sscanf(line, "%127s %d %d %159s %d", file, &w, &h, exp, &tol) != 5)
      continue;
    char path[512];
    snprintf(path, sizeof path, DATA "%s", file);
    vl_image *img = vl_image_load(path, 0);
    snprintf(path, sizeof path, DATA "%s", exp);
    size_t len = 0;
    unsigned char *want = test_read_file(path, &len);
    CHECK(img && want);
    if (img && want) {
      CHECK(img->width == w && img->height == h && img->channels == 3);
      CHECK(len == (size_t)w * h * 3);
      int maxd = 0;
      for (size_t i = 0; i < len && i < (size_t)img->width * img->height * 3; i++) {
        int d = abs((int)img->pixels[i] - (int)want[i]);
        if (d > maxd) maxd = d;
      }
      printf("  %-24s max |diff| vs Pillow %d (allowed %d)\n", file, maxd, tol);
      CHECK(maxd <= tol);
    } else {
      printf("  %s: %s\n", file, vl_last_error());
    }
    n++;
    vl_image_free(img);
    free(want);
  }
  fclose(fp);
  CHECK(n >= 10);
}

/* Every prefix of every fixture must give an image or an error, never a
 * crash (ASan run) — and a prefix that drops the header must be an error. */
static void test_truncation_never_crashes(void) {
  static const char *files[] = {"dec_rgb.png",         "dec_rgb.bmp",        "dec_palette.gif",
                                "dec_transparent.gif", "dec_interlaced.gif", "dec_q90.jpg",
                                "dec_progressive.jpg", "dec_lossless.webp",  "dec_lossy.webp",
                                "dec_rgba.png"};
  for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
    char path[256];
    snprintf(path, sizeof path, DATA "%s", files[f]);
    size_t len = 0;
    unsigned char *data = test_read_file(path, &len);
    CHECK(data && len > 20);
    if (!data) continue;
    vl_image *full = vl_image_decode(data, len, 0, files[f]);
    CHECK(full != NULL);
    int fw = full ? full->width : 0, fh = full ? full->height : 0;
    vl_image_free(full);
    int named = 1;
    size_t first_ok = len;
    for (size_t cut = 0; cut < len; cut++) {
      vl_clear_error();
      vl_image *img = vl_image_decode(data, cut, 0, files[f]);
      if (!img) {
        if (!strstr(vl_last_error(), files[f])) named = 0;
      } else {
        CHECK(img->channels == 3 && img->width == fw && img->height == fh);
        if (cut < first_ok) first_ok = cut;
        vl_image_free(img);
      }
    }
    CHECK(named);
    /* No silent partial images: only cuts into a trailer that holds no
     * pixels may decode (PNG's 12-byte IEND chunk, GIF's 1-byte trailer). */
    if (first_ok + 12 < len)
      printf("  %s: cut at %zu of %zu still decodes\n", files[f], first_ok, len);
    CHECK(first_ok + 12 >= len);
    /* random byte corruption: any outcome but a crash */
    unsigned char *copy = malloc(len);
    REQUIRE(copy);
    uint32_t s = 12345u + (uint32_t)f;
    for (int trial = 0; trial < 200; trial++) {
      memcpy(copy, data, len);
      for (int k = 0; k < 4; k++) {
        s = s * 1664525u + 1013904223u;
        copy[(s >> 8) % len] = (uint8_t)(s >> 24);
      }
      vl_image *img = vl_image_decode(copy, len, 0, files[f]);
      if (img) CHECK(img->channels == 3 && img->width > 0 && img->height > 0);
      vl_image_free(img);
    }
    free(copy);
    free(data);
  }
}

static void be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static void le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static void expect_limit(const uint8_t *data, size_t len, const char *what) {
  vl_image *img = vl_image_decode(data, len, 0, what);
  CHECK(img == NULL);
  CHECK(vl_last_error_code() == VL_ERR_LIMIT);
  if (vl_last_error_code() != VL_ERR_LIMIT) printf("  %s: %s\n", what, vl_last_error());
  CHECK(strstr(vl_last_error(), what) != NULL);
  vl_image_free(img);
}

/* Headers that claim 100000x100000 (or the format's maximum) are refused
 * from the header alone; under ASan an attempt to allocate 30 GB would
 * abort, so passing here also shows nothing was allocated. */
static void test_huge_dimensions_refused(void) {
  uint8_t png[64] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  be32(png + 16, 100000);
  be32(png + 20, 100000);
  png[24] = 8; /* bit depth */
  png[25] = 2; /* RGB */
  /* CRC left zero (stb does not check it); then an IEND-less tail */
  expect_limit(png, 33, "huge.png");

  uint8_t bmp[54] = {'B', 'M'};
  le32(bmp + 2, 54);
  le32(bmp + 10, 54);
  le32(bmp + 14, 40);
  le32(bmp + 18, 100000);
  le32(bmp + 22, 100000);
  bmp[26] = 1;
  bmp[28] = 24;
  expect_limit(bmp, sizeof bmp, "huge.bmp");

  uint8_t gif[13] = {'G', 'I', 'F', '8', '9', 'a', 0xff, 0xff, 0xff, 0xff, 0x00, 0, 0};
  expect_limit(gif, sizeof gif, "huge.gif"); /* 65535x65535 */

  /* JPEG: SOI then a baseline SOF0 claiming 65500x65500, 3 components */
  uint8_t jpg[] = {0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 8, 0xff, 0xdc, 0xff, 0xdc, 3,
                   1,    0x11, 0,    2,    0x11, 0,    3, 0x11, 0,    0xff, 0xd9};
  expect_limit(jpg, sizeof jpg, "huge.jpg");

  /* WebP lossless: 16384x16384 (the format's maximum), 268 megapixels */
  uint8_t webp[30] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'L'};
  le32(webp + 4, 22);
  le32(webp + 16, 10);
  webp[20] = 0x2f;
  uint32_t bits = (16384 - 1) | ((uint32_t)(16384 - 1) << 14);
  le32(webp + 21, bits);
  expect_limit(webp, sizeof webp, "huge.webp");

  /* a configurable limit: the 13x9 fixture is refused under 100 pixels */
  vl_image *img = vl_image_load(DATA "dec_rgb.png", 100);
  CHECK(img == NULL && vl_last_error_code() == VL_ERR_LIMIT);
  CHECK(strstr(vl_last_error(), "13x9") != NULL);
  img = vl_image_load(DATA "dec_rgb.png", 117);
  CHECK(img != NULL);
  vl_image_free(img);
}

static void test_unknown_and_empty(void) {
  vl_image *img = vl_image_decode((const uint8_t *)"", 0, 0, "empty.png");
  CHECK(!img && vl_last_error_code() == VL_ERR_FORMAT && strstr(vl_last_error(), "empty.png") &&
        strstr(vl_last_error(), "empty"));
  const uint8_t tiff[] = {'I', 'I', '*', 0, 8, 0, 0, 0};
  img = vl_image_decode(tiff, sizeof tiff, 0, "x.tif");
  CHECK(!img && vl_last_error_code() == VL_ERR_UNSUPPORTED && strstr(vl_last_error(), "TIFF"));
  const uint8_t text[] = "hello world";
  img = vl_image_decode(text, sizeof text - 1, 0, "notes.txt");
  CHECK(!img && vl_last_error_code() == VL_ERR_FORMAT && strstr(vl_last_error(), "notes.txt") &&
        strstr(vl_last_error(), "68 65 6c 6c"));
  img = vl_image_load("tests/data/images/does-not-exist.png", 0);
  CHECK(!img && vl_last_error_code() == VL_ERR_IO && strstr(vl_last_error(), "does-not-exist.png"));
  img = vl_image_load("tests/data/images", 0); /* a directory */
  CHECK(!img && vl_last_error_code() == VL_ERR_IO);
  /* a PNG whose first chunk is garbage: stb's reason is quoted */
  uint8_t bad[40] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 4, 'J', 'U', 'N', 'K'};
  img = vl_image_decode(bad, sizeof bad, 0, "bad.png");
  CHECK(!img && vl_last_error_code() == VL_ERR_FORMAT && strstr(vl_last_error(), "bad.png") &&
        strstr(vl_last_error(), "PNG"));
  printf("  e.g. \"%s\"\n", vl_last_error());
}

/* Inputs that stb_image alone would turn into something (or into a huge
 * allocation) rather than an error; found partly by fuzzing. */
static void test_stb_gaps_refused(void) {
  vl_image *img = vl_image_load(DATA "bad_zlib_cut.png", 0);
  CHECK(!img && vl_last_error_code() == VL_ERR_FORMAT && strstr(vl_last_error(), "does not end") &&
        strstr(vl_last_error(), "bad_zlib_cut.png"));
  /* unknown compression 0xffffff43 and 14x53504 pixels from a 192-byte file */
  img = vl_image_load(DATA "bad_bmp_compression.bmp", 0);
  CHECK(!img && vl_last_error_code() == VL_ERR_UNSUPPORTED &&
        strstr(vl_last_error(), "compression"));
  vl_image_free(img);
}

static void test_public_api_roundtrip(void) {
  vlens_image *im = vlens_image_load(DATA "dec_rgba.png", 0);
  REQUIRE(im);
  CHECK(vlens_image_width(im) == 13 && vlens_image_height(im) == 9);
  char path[512];
  snprintf(path, sizeof path, "%s/out.png", test_tmpdir());
  REQUIRE(vlens_image_save_png(im, path) == 0);
  vlens_image *back = vlens_image_load(path, 0);
  REQUIRE(back);
  CHECK(memcmp(vlens_image_pixels(im), vlens_image_pixels(back), 13 * 9 * 3) == 0);
  CHECK(vlens_image_save_png(im, "/nonexistent-dir/x.png") < 0);
  CHECK(strstr(vlens_last_error(), "/nonexistent-dir/x.png") != NULL);
  vlens_image_free(back);
  vlens_image_free(im);
  CHECK(vlens_image_load("/nonexistent-dir/y.png", 0) == NULL);
  CHECK(strstr(vlens_last_error(), "y.png") != NULL);
}

int main(void) {
  RUN(test_decode_matches_pillow);
  RUN(test_truncation_never_crashes);
  RUN(test_huge_dimensions_refused);
  RUN(test_unknown_and_empty);
  RUN(test_stb_gaps_refused);
  RUN(test_public_api_roundtrip);
  return test_summary();
}
