/* report.html: self-contained (only data: URIs), every word present and
 * escaped, one decodable PNG per word x method (+ the image and the
 * entailment section), balanced structure, clear errors. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "explain/heatmap.h"
#include "io/image.h"
#include "render/report.h"
#include "test.h"

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
    n++;
  return n;
}

static int b64val(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* Decodes base64 up to the closing quote; NULL on a bad character. */
static uint8_t *b64dec(const char *s, size_t *n) {
  size_t len = strcspn(s, "\"");
  uint8_t *out = malloc(len / 4 * 3 + 3);
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '=') break;
    int v = b64val(s[i]);
    if (v < 0) {
      free(out);
      return NULL;
    }
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (uint8_t)(acc >> bits);
    }
  }
  *n = o;
  return out;
}

static vl_heatmap *mk(const char *method, int gw, int gh, int hot, int W, int H) {
  vl_heatmap *m = vl_heatmap_new(method, "blocks.3", gw, gh, W, H);
  if (!m) return NULL;
  for (int i = 0; i < gw * gh; i++)
    m->cells[i] = (float)(i == hot ? 3.0 : 0.1 * i);
  return m;
}

static void test_report_page(void) {
  enum { W = 48, H = 32, NW = 4, NM = 2 };
  vl_image *img = vl_image_new(W, H, 3);
  REQUIRE(img);
  for (int i = 0; i < W * H * 3; i++)
    img->pixels[i] = (uint8_t)(i * 7);
  const char *texts[NW] = {"a", "red", "<b>&circle", "."};
  vl_heatmap *maps[NW][NM];
  vl_report_word words[NW];
  for (int w = 0; w < NW; w++) {
    maps[w][0] = mk("gradcam", 6, 4, w, W, H);
    maps[w][1] = mk("rollout", 3, 2, 5 - w, W, H);
    REQUIRE(maps[w][0] && maps[w][1]);
    words[w].text = texts[w];
    words[w].n_maps = NM;
    words[w].maps = (const vl_heatmap *const *)maps[w];
  }
  vl_heatmap *em = mk("relevancy", 6, 4, 9, W, H);
  REQUIRE(em);
  const vl_heatmap *emaps[1] = {em};
  vl_report_entail ent = {"there is a red circle.", "entailment", {0.9, 0.07, 0.03}, 1, emaps};
  vl_report r = {0};
  r.title = "scene 1";
  r.model = "shapes-blip";
  r.image = img;
  r.n_words = NW;
  r.words = words;
  r.entail = &ent;
  char *html = NULL;
  size_t len = 0;
  REQUIRE(vl_report_html(&r, &html, &len) == VL_OK);
  REQUIRE(html && len == strlen(html));
  CHECK(strncmp(html, "<!DOCTYPE html>", 15) == 0);
  CHECK(strstr(html, "</html>") != NULL);
  /* self-contained: no remote or file references */
  CHECK(strstr(html, "http://") == NULL && strstr(html, "https://") == NULL);
  CHECK(strstr(html, "<link") == NULL && strstr(html, "url(") == NULL);
  int srcs = count(html, "src=");
  CHECK(srcs == count(html, "src=\"data:image/png;base64,"));
  CHECK(srcs == 1 + NW * NM + 1);
  /* every word, escaped */
  CHECK(strstr(html, ">a</span>") && strstr(html, ">red</span>") && strstr(html, ">.</span>"));
  CHECK(strstr(html, "&lt;b&gt;&amp;circle") != NULL);
  CHECK(strstr(html, "<b>&circle") == NULL);
  for (int w = 0; w < NW; w++) {
    char id[32];
    snprintf(id, sizeof id, "id=\"word-%d\"", w);
    CHECK(strstr(html, id) != NULL);
  }
  CHECK(count(html, "<div") == count(html, "</div>"));
  CHECK(count(html, "<figure>") == count(html, "</figure>"));
  CHECK(count(html, "<table>") == NW * NM + 2);
  CHECK(strstr(html, "there is a red circle.") && strstr(html, "0.9000"));
  CHECK(strstr(html, "shapes-blip") != NULL);
  /* each embedded PNG decodes, at the display size (48x32: the longer side scaled by a whole 6 to
   * reach 256 -> 288x192) */
  int decoded = 0;
  for (const char *p = strstr(html, "base64,"); p; p = strstr(p + 1, "base64,")) {
    size_t n;
    uint8_t *png = b64dec(p + 7, &n);
    REQUIRE(png);
    vl_image *d = vl_image_decode(png, n, 0, "embedded");
    free(png);
    REQUIRE(d);
    CHECK(d->width == 288 && d->height == 192);
    vl_image_free(d);
    decoded++;
  }
  CHECK(decoded == srcs);
  /* the stats shown are the map's: gradcam of word 0 peaks in cell 0 */
  CHECK(strstr(html, "<td>(4.0, 4.0)</td>") != NULL);

  char path[512];
  snprintf(path, sizeof path, "%s/report.html", test_tmpdir());
  CHECK(vl_report_write(path, &r) == VL_OK);
  size_t flen;
  unsigned char *back = test_read_file(path, &flen);
  CHECK(back && flen == len && memcmp(back, html, len) == 0);
  free(back);
  if (getenv("VLENS_REPORT_OUT")) vl_report_write(getenv("VLENS_REPORT_OUT"), &r);
  free(html);

  /* errors: wrong image size, missing map, no image, bad path */
  maps[1][1]->image_w = 50;
  CHECK(vl_report_html(&r, &html, &len) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "word 1 'red'") != NULL);
  CHECK(strstr(vl_last_error(), "50x32") != NULL);
  maps[1][1]->image_w = W;
  words[2].maps = NULL;
  CHECK(vl_report_html(&r, &html, &len) == VL_ERR_INVALID);
  words[2].maps = (const vl_heatmap *const *)maps[2];
  r.image = NULL;
  CHECK(vl_report_html(&r, &html, &len) == VL_ERR_INVALID);
  r.image = img;
  CHECK(vl_report_write("/nonexistent-dir/x/report.html", &r) == VL_ERR_IO);
  CHECK(strstr(vl_last_error(), "/nonexistent-dir/x/report.html") != NULL);

  /* entailment only */
  r.n_words = 0;
  r.words = NULL;
  REQUIRE(vl_report_html(&r, &html, &len) == VL_OK);
  CHECK(count(html, "src=\"data:image/png;base64,") == 2);
  CHECK(strstr(html, "Entailment") != NULL);
  free(html);

  for (int w = 0; w < NW; w++) {
    vl_heatmap_free(maps[w][0]);
    vl_heatmap_free(maps[w][1]);
  }
  vl_heatmap_free(em);
  vl_image_free(img);
}

int main(void) {
  RUN(test_report_page);
  return test_summary();
}
