/* The explain layer's model-independent core: heatmap post-processing and
 * statistics, the methods over hand-made tensors (checked against direct
 * matrix computations written independently here), faithfulness with a fake
 * model, and Shapes World scoring. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "explain/faithfulness.h"
#include "explain/heatmap.h"
#include "explain/method.h"
#include "explain/relevancy.h"
#include "explain/scoring.h"
#include "io/rng.h"
#include "io/shapes_world.h"
#include "test.h"

static vl_heatmap *map_of(int gw, int gh, int W, int H, const float *v) {
  vl_heatmap *m = vl_heatmap_new("test", "layer.1", gw, gh, W, H);
  if (m && v) memcpy(m->cells, v, sizeof(float) * (size_t)gw * gh);
  return m;
}

/* ---- statistics ------------------------------------------------------- */

static void test_stats_one_hot(void) {
  vl_heatmap *m = map_of(4, 3, 40, 30, NULL);
  REQUIRE(m);
  m->cells[0 * 4 + 3] = 5.f; /* row 0, column 3: upper-right */
  REQUIRE(vl_heatmap_postprocess(m, NULL) == VL_OK);
  CHECK(m->cells[3] == 1.f && m->cells[0] == 0.f);
  vl_heatmap_stats st;
  REQUIRE(vl_heatmap_stats_compute(m, &st) == VL_OK);
  CHECK_NEAR(st.entropy, 0, 1e-12);
  CHECK_NEAR(st.concentration, 1, 1e-12);
  CHECK_NEAR(st.top10_mass, 1, 1e-12);
  CHECK_NEAR(st.mean, 1.0 / 12, 1e-9);
  CHECK_NEAR(st.std, sqrt(1.0 / 12 - 1.0 / 144), 1e-9);
  CHECK_NEAR(st.focus_area, 1.0 / 12, 1e-12);
  CHECK(st.max == 1 && st.min == 0);
  CHECK(strcmp(st.region, "upper-right") == 0);
  double x, y;
  vl_heatmap_peak(m, &x, &y);
  CHECK_NEAR(x, 35, 1e-9);
  CHECK_NEAR(y, 5, 1e-9);
  vl_heatmap_center(m, &x, &y);
  CHECK_NEAR(x, 35, 1e-9);
  CHECK_NEAR(y, 5, 1e-9);
  vl_heatmap_free(m);
}

static void test_stats_uniform(void) {
  float v[12];
  for (int i = 0; i < 12; i++)
    v[i] = 0.7f;
  vl_heatmap *m = map_of(4, 3, 40, 30, v);
  REQUIRE(m);
  REQUIRE(vl_heatmap_postprocess(m, NULL) == VL_OK);
  for (int i = 0; i < 12; i++)
    CHECK(m->cells[i] == 0.f); /* all-equal -> zeros */
  vl_heatmap_stats st;
  REQUIRE(vl_heatmap_stats_compute(m, &st) == VL_OK);
  CHECK_NEAR(st.entropy, 1, 1e-12);
  CHECK_NEAR(st.concentration, 0, 1e-12);
  CHECK_NEAR(st.top10_mass, 2.0 / 12, 1e-12); /* ceil(12/10) = 2 cells */
  CHECK(strcmp(st.region, "diffuse") == 0);
  double x, y;
  vl_heatmap_center(m, &x, &y);
  CHECK_NEAR(x, 20, 1e-9);
  CHECK_NEAR(y, 15, 1e-9);
  vl_heatmap_free(m);
}

static void test_stats_two_cells(void) {
  /* 5x2 grid: 1.0 at (1,0), 0.5 at (1,4); the rest 0. */
  float v[10] = {0};
  v[5] = 1.f;
  v[9] = 0.5f;
  vl_heatmap *m = map_of(5, 2, 100, 20, v);
  REQUIRE(m && vl_heatmap_postprocess(m, NULL) == VL_OK);
  CHECK_NEAR(m->cells[9], 0.5, 1e-7);
  vl_heatmap_stats st;
  REQUIRE(vl_heatmap_stats_compute(m, &st) == VL_OK);
  double a = 2.0 / 3, b = 1.0 / 3;
  double ent = -(a * log(a) + b * log(b)) / log(10.0);
  CHECK_NEAR(st.entropy, ent, 1e-9);
  CHECK_NEAR(st.concentration, 1 - ent, 1e-9);
  CHECK_NEAR(st.top10_mass, a, 1e-9); /* ceil(10/10) = 1 cell */
  CHECK_NEAR(st.focus_area, 0.1, 1e-12);
  CHECK_NEAR(st.mean, 0.15, 1e-9);
  /* centre of mass: x = (2/3*0.5 + 1/3*4.5)/5 of the width = 0.3667 -> "center"
   * column; y = 1.5/2 = 0.75 -> lower. */
  CHECK(strcmp(st.region, "lower-center") == 0);
  double x, y;
  vl_heatmap_center(m, &x, &y);
  CHECK_NEAR(x, (a * 0.5 + b * 4.5) * 20, 1e-6);
  CHECK_NEAR(y, 15, 1e-6);
  vl_heatmap_free(m);
}

static void test_region_thirds(void) {
  CHECK(strcmp(vl_heatmap_region(0.1, 0.1, 1), "upper-left") == 0);
  CHECK(strcmp(vl_heatmap_region(0.5, 0.1, 1), "upper-center") == 0);
  CHECK(strcmp(vl_heatmap_region(0.9, 0.1, 1), "upper-right") == 0);
  CHECK(strcmp(vl_heatmap_region(0.1, 0.5, 1), "middle-left") == 0);
  CHECK(strcmp(vl_heatmap_region(0.5, 0.5, 1), "center") == 0);
  CHECK(strcmp(vl_heatmap_region(0.9, 0.5, 1), "middle-right") == 0);
  CHECK(strcmp(vl_heatmap_region(0.1, 0.9, 1), "lower-left") == 0);
  CHECK(strcmp(vl_heatmap_region(0.5, 0.9, 1), "lower-center") == 0);
  CHECK(strcmp(vl_heatmap_region(0.9, 0.9, 1), "lower-right") == 0);
  CHECK(strcmp(vl_heatmap_region(1.0, 1.0, 1), "lower-right") == 0);
  CHECK(strcmp(vl_heatmap_region(0.5, 0.5, 0.2499), "diffuse") == 0);
  CHECK(strcmp(vl_heatmap_region(0.5, 0.5, 0.25), "center") == 0);
}

static void test_peak_non_square(void) {
  /* 5x3 grid on a 97x50 image (neither divisible). */
  vl_heatmap *m = map_of(5, 3, 97, 50, NULL);
  REQUIRE(m);
  m->cells[2 * 5 + 4] = 1.f;
  m->cells[0 * 5 + 1] = 1.f; /* tie: the first in row-major order wins */
  double x, y;
  vl_heatmap_peak(m, &x, &y);
  CHECK_NEAR(x, 1.5 * 97 / 5, 1e-9);
  CHECK_NEAR(y, 0.5 * 50 / 3, 1e-9);
  m->cells[1] = 0.25f;
  vl_heatmap_peak(m, &x, &y);
  CHECK_NEAR(x, 4.5 * 97 / 5, 1e-9); /* 87.3 */
  CHECK_NEAR(y, 2.5 * 50 / 3, 1e-9);
  vl_heatmap_center(m, &x, &y);
  CHECK_NEAR(x, (0.8 * 4.5 + 0.2 * 1.5) * 97 / 5, 1e-6);
  CHECK_NEAR(y, (0.8 * 2.5 + 0.2 * 0.5) * 50 / 3, 1e-6);
  /* pixel -> cell: pixel 19 of 97 has its centre 19.5 < 19.4*1? 97/5 = 19.4:
   * centre 19.5 lies in cell 1; pixel 18 (centre 18.5) in cell 0. */
  CHECK(vl_heatmap_cell_of_pixel(18, 0, 97, 50, 5, 3) == 0);
  CHECK(vl_heatmap_cell_of_pixel(19, 0, 97, 50, 5, 3) == 1);
  CHECK(vl_heatmap_cell_of_pixel(96, 49, 97, 50, 5, 3) == 14);
  CHECK(vl_heatmap_cell_of_pixel(0, 16, 97, 50, 5, 3) == 0); /* 16.5 < 16.67 */
  CHECK(vl_heatmap_cell_of_pixel(0, 17, 97, 50, 5, 3) == 5);
  vl_heatmap_free(m);
}

/* Direct 2-D Gaussian with mirrored indices, written without the library's
 * separable passes. */
static int mirror(int j, int n) {
  while (j < 0 || j >= n)
    j = j < 0 ? -j - 1 : 2 * n - j - 1;
  return j;
}

static void test_smooth(void) {
  int gw = 7, gh = 5;
  float v[35], want[35];
  vl_rng r;
  vl_rng_seed(&r, 3, 0, 0);
  for (int i = 0; i < 35; i++)
    v[i] = (float)vl_rng_uniform(&r);
  double sigma = 1.3;
  int rad = (int)ceil(4 * sigma);
  double k1[64], ksum = 0;
  for (int d = -rad; d <= rad; d++)
    ksum += k1[d + rad] = exp(-d * d / (2 * sigma * sigma));
  double mass = 0;
  for (int y = 0; y < gh; y++)
    for (int x = 0; x < gw; x++) {
      double s = 0;
      for (int dy = -rad; dy <= rad; dy++)
        for (int dx = -rad; dx <= rad; dx++)
          s += k1[dy + rad] * k1[dx + rad] / (ksum * ksum) *
               v[mirror(y + dy, gh) * gw + mirror(x + dx, gw)];
      want[y * gw + x] = (float)s;
      mass += v[y * gw + x];
    }
  vl_heatmap *m = map_of(gw, gh, 70, 50, v);
  REQUIRE(m && vl_heatmap_smooth(m, sigma) == VL_OK);
  double got_mass = 0;
  for (int i = 0; i < 35; i++)
    got_mass += m->cells[i];
  CHECK_NEAR(got_mass, mass, 1e-5);
  CHECK(test_max_rel_err(m->cells, want, 35) < 1e-5);
  vl_heatmap_free(m);

  /* A left-right symmetric map stays symmetric; mass kept. */
  float s[35] = {0};
  s[2 * gw + 1] = s[2 * gw + 5] = 1.f;
  s[0] = s[6] = 0.5f;
  m = map_of(gw, gh, 70, 50, s);
  REQUIRE(m && vl_heatmap_smooth(m, 0.8) == VL_OK);
  double tot = 0;
  for (int y = 0; y < gh; y++)
    for (int x = 0; x < gw; x++) {
      CHECK_NEAR(m->cells[y * gw + x], m->cells[y * gw + gw - 1 - x], 1e-6);
      tot += m->cells[y * gw + x];
    }
  CHECK_NEAR(tot, 3.0, 1e-5);
  CHECK(m->cells[2 * gw + 1] < 1.f && m->cells[2 * gw + 0] > 0.f);
  CHECK(vl_heatmap_smooth(m, -1) == VL_ERR_INVALID);
  CHECK(vl_heatmap_smooth(m, NAN) == VL_ERR_INVALID);
  vl_heatmap_free(m);
}

static void test_sharpen(void) {
  float v[4] = {1, 2, 3, 4};
  vl_heatmap *m = map_of(2, 2, 2, 2, v);
  REQUIRE(m && vl_heatmap_sharpen(m, 0.5) == VL_OK);
  CHECK_NEAR(m->cells[0], 1.0 / 30, 1e-7); /* (v/10)^2 renormalised */
  CHECK_NEAR(m->cells[3], 16.0 / 30, 1e-7);
  /* T = 2 after minmax: p = (0, 1/3, 2/3, 1)/2 -> sqrt, renormalised */
  memcpy(m->cells, v, sizeof v);
  vl_postprocess pp = {0, 2.0};
  REQUIRE(vl_heatmap_postprocess(m, &pp) == VL_OK);
  double q1 = sqrt(0.2), q2 = sqrt(0.3), q3 = sqrt(0.4), q0 = sqrt(0.1);
  CHECK_NEAR(m->cells[1], (q1 - q0) / (q3 - q0), 1e-6);
  CHECK_NEAR(m->cells[2], (q2 - q0) / (q3 - q0), 1e-6);
  CHECK(m->cells[0] == 0 && m->cells[3] == 1);
  CHECK(vl_heatmap_sharpen(m, 0) == VL_ERR_INVALID);
  m->cells[1] = NAN;
  CHECK(vl_heatmap_postprocess(m, NULL) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "cell 1") != NULL);
  vl_heatmap_free(m);
}

static void test_heatmap_errors(void) {
  CHECK(vl_heatmap_new("gradcam", NULL, 0, 3, 10, 10) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_INVALID);
  CHECK(vl_heatmap_new("gradcam", NULL, 3, 3, 10, -1) == NULL);
  char longname[100];
  memset(longname, 'x', 99);
  longname[99] = 0;
  CHECK(vl_heatmap_new(longname, NULL, 3, 3, 10, 10) == NULL);
  CHECK(strstr(vl_last_error(), "method name") != NULL);
}

static double jnum(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void test_heatmap_json(void) {
  float v[6] = {0, 3, 1, 2, 0.5f, 0};
  vl_heatmap *m = map_of(3, 2, 50, 31, v);
  REQUIRE(m && vl_heatmap_postprocess(m, NULL) == VL_OK);
  cJSON *o = vl_heatmap_to_json(m);
  REQUIRE(o);
  CHECK(cJSON_GetArraySize(o) == 7);
  CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(o, "method")->valuestring, "test") == 0);
  CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(o, "layer")->valuestring, "layer.1") == 0);
  const cJSON *g = cJSON_GetObjectItemCaseSensitive(o, "grid");
  CHECK(cJSON_GetArraySize(g) == 2 && cJSON_GetArrayItem(g, 0)->valueint == 3 &&
        cJSON_GetArrayItem(g, 1)->valueint == 2);
  const cJSON *cells = cJSON_GetObjectItemCaseSensitive(o, "cells");
  REQUIRE(cJSON_GetArraySize(cells) == 6);
  double want[6] = {0, 1, 1.0 / 3, 2.0 / 3, 0.5 / 3, 0};
  for (int i = 0; i < 6; i++)
    CHECK_NEAR(cJSON_GetArrayItem(cells, i)->valuedouble, want[i], 1e-6);
  const cJSON *pk = cJSON_GetObjectItemCaseSensitive(o, "peak");
  CHECK_NEAR(cJSON_GetArrayItem(pk, 0)->valuedouble, 1.5 * 50 / 3, 1e-6);
  CHECK_NEAR(cJSON_GetArrayItem(pk, 1)->valuedouble, 0.5 * 31 / 2, 1e-6);
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "stats");
  CHECK(cJSON_GetArraySize(st) == 9);
  double tot = 0;
  for (int i = 0; i < 6; i++)
    tot += want[i];
  double ent = 0;
  for (int i = 0; i < 6; i++)
    if (want[i] > 0) ent -= want[i] / tot * log(want[i] / tot);
  ent /= log(6.0);
  CHECK_NEAR(jnum(st, "entropy"), ent, 2e-6);
  CHECK_NEAR(jnum(st, "concentration"), 1 - ent, 2e-6);
  CHECK_NEAR(jnum(st, "top10_mass"), 1 / tot, 2e-6);
  CHECK_NEAR(jnum(st, "mean"), tot / 6, 2e-6);
  CHECK_NEAR(jnum(st, "focus_area"), 2.0 / 6, 2e-6);
  CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(st, "region")));

  /* The shared checker, on an entail document around this heatmap, when
   * Python is there (make test itself needs no Python). */
  const char *checker = test_shared_path("tools/check-json.py");
  if (access("/usr/bin/python3", X_OK) == 0 && access(checker, R_OK) == 0) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "task", "entail");
    cJSON_AddStringToObject(doc, "label", "entailment");
    cJSON *pr = cJSON_AddObjectToObject(doc, "probs");
    cJSON_AddNumberToObject(pr, "entailment", 0.7);
    cJSON_AddNumberToObject(pr, "neutral", 0.2);
    cJSON_AddNumberToObject(pr, "contradiction", 0.1);
    cJSON_AddItemToObject(cJSON_AddObjectToObject(doc, "explanations"), "test", o);
    cJSON *img = cJSON_AddObjectToObject(doc, "image");
    cJSON_AddNumberToObject(img, "width", 50);
    cJSON_AddNumberToObject(img, "height", 31);
    cJSON_AddObjectToObject(doc, "timing_ms");
    char *text = cJSON_PrintUnformatted(doc);
    char path[512], cmd[1200];
    snprintf(path, sizeof path, "%s/heatmap_doc.json", test_tmpdir());
    REQUIRE(text && test_write_file(path, text, strlen(text)) == 0);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' > /dev/null", checker, path);
    CHECK(system(cmd) == 0);
    free(text);
    cJSON_Delete(doc); /* owns o */
  } else {
    cJSON_Delete(o);
  }
  /* empty layer -> null */
  m->layer[0] = 0;
  o = vl_heatmap_to_json(m);
  REQUIRE(o);
  CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "layer")));
  cJSON_Delete(o);
  vl_heatmap_free(m);
}

/* ---- methods ----------------------------------------------------------- */

/* L layers of H heads of random row-stochastic T x T attention, and random
 * gradients. */
typedef struct {
  int L, H, T;
  float *probs[4], *grads[4];
} attn_fixture;

static void fixture_make(attn_fixture *f, int L, int H, int Tq, int Tk, uint64_t seed) {
  vl_rng r;
  vl_rng_seed(&r, seed, 0, 1);
  f->L = L;
  f->H = H;
  f->T = Tq;
  for (int l = 0; l < L; l++) {
    f->probs[l] = malloc(sizeof(float) * (size_t)H * Tq * Tk);
    f->grads[l] = malloc(sizeof(float) * (size_t)H * Tq * Tk);
    for (int h = 0; h < H; h++)
      for (int i = 0; i < Tq; i++) {
        double s = 0;
        float *row = f->probs[l] + ((size_t)h * Tq + i) * Tk;
        for (int j = 0; j < Tk; j++)
          s += row[j] = (float)(vl_rng_uniform(&r) + 0.05);
        for (int j = 0; j < Tk; j++)
          row[j] = (float)(row[j] / s);
      }
    for (int i = 0; i < H * Tq * Tk; i++)
      f->grads[l][i] = (float)(vl_rng_uniform(&r) * 2 - 1);
  }
}

static void fixture_free(attn_fixture *f) {
  for (int l = 0; l < f->L; l++) {
    free(f->probs[l]);
    free(f->grads[l]);
  }
}

static void matmul(const double *A, const double *B, double *C, int n, int k, int m) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < m; j++) {
      double s = 0;
      for (int t = 0; t < k; t++)
        s += A[i * k + t] * B[t * m + j];
      C[i * m + j] = s;
    }
}

static void test_rollout_decoder(void) {
  enum { L = 3, H = 2, T = 6 };
  attn_fixture f;
  fixture_make(&f, L, H, T, T, 11);
  int img[4] = {1, 2, 3, 4};
  /* Direct: R = Â_L ⋯ Â_1 as full matrices. */
  double R[T * T], A[T * T], tmp[T * T];
  for (int i = 0; i < T * T; i++)
    R[i] = (i / T == i % T);
  for (int l = 0; l < L; l++) {
    for (int i = 0; i < T; i++) {
      double s = 0;
      for (int j = 0; j < T; j++) {
        double a = 0;
        for (int h = 0; h < H; h++)
          a += f.probs[l][(h * T + i) * T + j];
        A[i * T + j] = 0.5 * a / H + 0.5 * (i == j);
        s += A[i * T + j];
      }
      for (int j = 0; j < T; j++)
        A[i * T + j] /= s;
    }
    matmul(A, R, tmp, T, T, T); /* R <- Â_l R */
    memcpy(R, tmp, sizeof R);
  }
  vl_explain_input in = {0};
  in.arch = VL_ARCH_DECODER_ONLY;
  in.grid_w = 2;
  in.grid_h = 2;
  in.n_image = 4;
  in.image_tokens = img;
  in.query = 5;
  in.self = (vl_attn_stack){L, H, T, T, (const float *const *)f.probs, NULL};
  float cells[4];
  REQUIRE(vl_explain_run("rollout", &in, cells) == VL_OK);
  for (int i = 0; i < 4; i++)
    CHECK_NEAR(cells[i], R[5 * T + img[i]], 1e-6);
  /* attention method: mean over heads of the last layer's row q */
  in.layer = -1;
  REQUIRE(vl_explain_run("attention", &in, cells) == VL_OK);
  for (int i = 0; i < 4; i++)
    CHECK_NEAR(
        cells[i],
        (f.probs[L - 1][(0 * T + 5) * T + img[i]] + f.probs[L - 1][(1 * T + 5) * T + img[i]]) / 2,
        1e-7);
  in.layer = 0;
  REQUIRE(vl_explain_run("attention", &in, cells) == VL_OK);
  CHECK_NEAR(cells[0], (f.probs[0][5 * T + 1] + f.probs[0][(T + 5) * T + 1]) / 2, 1e-7);
  in.layer = 3;
  CHECK(vl_explain_run("attention", &in, cells) == VL_ERR_INVALID);
  fixture_free(&f);
}

static void test_relevancy_decoder(void) {
  enum { L = 3, H = 2, T = 7 };
  attn_fixture f;
  fixture_make(&f, L, H, T, T, 12);
  int img[6] = {1, 2, 3, 4, 5, 6};
  double R[T * T], A[T * T], tmp[T * T];
  for (int i = 0; i < T * T; i++)
    R[i] = (i / T == i % T);
  for (int l = 0; l < L; l++) {
    for (int i = 0; i < T * T; i++) {
      double a = 0;
      for (int h = 0; h < H; h++) {
        double x = (double)f.grads[l][h * T * T + i] * f.probs[l][h * T * T + i];
        a += x > 0 ? x : 0;
      }
      A[i] = a / H;
    }
    matmul(A, R, tmp, T, T, T);
    for (int i = 0; i < T * T; i++)
      R[i] += tmp[i]; /* R <- R + Ā R */
  }
  vl_explain_input in = {0};
  in.arch = VL_ARCH_DECODER_ONLY;
  in.grid_w = 3;
  in.grid_h = 2;
  in.n_image = 6;
  in.image_tokens = img;
  in.query = 6;
  in.self =
      (vl_attn_stack){L, H, T, T, (const float *const *)f.probs, (const float *const *)f.grads};
  float cells[6];
  REQUIRE(vl_explain_run("relevancy", &in, cells) == VL_OK);
  for (int i = 0; i < 6; i++)
    CHECK_NEAR(cells[i], R[6 * T + img[i]], 1e-6);
  /* Errors: no gradients, query out of range, token out of range. */
  in.self.grads = NULL;
  CHECK(vl_explain_run("relevancy", &in, cells) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "gradients") != NULL);
  in.self.grads = (const float *const *)f.grads;
  in.query = 7;
  CHECK(vl_explain_run("relevancy", &in, cells) == VL_ERR_INVALID);
  in.query = 6;
  img[5] = 9;
  CHECK(vl_explain_run("relevancy", &in, cells) == VL_ERR_INVALID);
  img[5] = 6;
  in.n_image = 5;
  CHECK(vl_explain_run("relevancy", &in, cells) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "do not fill") != NULL);
  CHECK(vl_explain_run("nosuch", &in, cells) == VL_ERR_NOTFOUND);
  CHECK(strstr(vl_last_error(), "gradcam") != NULL);
  fixture_free(&f);
}

/* Hand example of rules 6-7 and 10-11: one text token, two image tokens, no
 * vision layers. Self cam [a]: R_tt = 1 + a. Cross cam [c1 c2]: R̄_tt =
 * (a / a) + 1 = 2, R̄_ii = I, so R_ti = 2 [c1 c2]. */
static void test_relevancy_rules_hand(void) {
  vl_relevancy R;
  REQUIRE(vl_relevancy_init(&R, 1, 2) == VL_OK);
  double a = 0.3, cam[2] = {0.2, 0.6};
  REQUIRE(vl_relevancy_self_text(&R, &a) == VL_OK);
  CHECK_NEAR(R.R_tt[0], 1.3, 1e-12);
  REQUIRE(vl_relevancy_cross_text(&R, cam, 1) == VL_OK);
  CHECK_NEAR(R.R_ti[0], 0.4, 1e-12);
  CHECK_NEAR(R.R_ti[1], 1.2, 1e-12);
  CHECK_NEAR(R.R_tt[0], 1.3, 1e-12); /* rule 11 adds cam R_it = 0 */
  /* without normalisation: R_tt^T cam R_ii = 1.3 [c1 c2] added */
  REQUIRE(vl_relevancy_cross_text(&R, cam, 0) == VL_OK);
  CHECK_NEAR(R.R_ti[0], 0.4 + 1.3 * 0.2, 1e-12);
  vl_relevancy_free(&R);

  /* eqs. 8-9 by hand: R = [[1.5, .5], [.25, 1]] -> R - I = [[.5 .5] [.25 0]]
   * rows / sums -> [[.5 .5] [1 0]] + I. */
  double M[4] = {1.5, 0.5, 0.25, 1}, N[4];
  vl_relevancy_normalize(M, 2, N);
  CHECK_NEAR(N[0], 1.5, 1e-12);
  CHECK_NEAR(N[1], 0.5, 1e-12);
  CHECK_NEAR(N[2], 1.0, 1e-12);
  CHECK_NEAR(N[3], 1.0, 1e-12);
}

/* Naive version of the bi-modal procedure for the encoder-decoder check. */
static void naive_norm(const double *R, int n, double *out) {
  for (int i = 0; i < n; i++) {
    double s = 0;
    for (int j = 0; j < n; j++)
      s += R[i * n + j] - (i == j);
    for (int j = 0; j < n; j++)
      out[i * n + j] = (s != 0 ? (R[i * n + j] - (i == j)) / s : 0) + (i == j);
  }
}

static void head_mean(const float *p, const float *g, int H, int n, double *out) {
  for (int i = 0; i < n; i++) {
    double a = 0;
    for (int h = 0; h < H; h++) {
      double x = g ? (double)g[h * n + i] * p[h * n + i] : p[h * n + i];
      a += x > 0 ? x : 0;
    }
    out[i] = a / H;
  }
}

static void test_relevancy_encoder_decoder(void) {
  enum { L = 2, H = 2, NT = 3, NI = 5, LV = 2 };
  attn_fixture sa, ca, va;
  fixture_make(&sa, L, H, NT, NT, 21);
  fixture_make(&ca, L, H, NT, NI, 22);
  fixture_make(&va, LV, H, NI, NI, 23);
  for (int use_grads = 0; use_grads <= 1; use_grads++) {
    double Rtt[NT * NT] = {0}, Rti[NT * NI] = {0}, Rii[NI * NI] = {0}, cam[NI * NI], t1[NI * NI],
                    t2[NI * NI], nt_[NT * NT], ni_[NI * NI];
    for (int i = 0; i < NT; i++)
      Rtt[i * NT + i] = 1;
    for (int i = 0; i < NI; i++)
      Rii[i * NI + i] = 1;
    for (int l = 0; l < LV; l++) { /* R_ii += Ā R_ii */
      head_mean(va.probs[l], use_grads ? va.grads[l] : NULL, H, NI * NI, cam);
      matmul(cam, Rii, t1, NI, NI, NI);
      for (int i = 0; i < NI * NI; i++)
        Rii[i] += t1[i];
    }
    for (int l = 0; l < L; l++) {
      head_mean(sa.probs[l], use_grads ? sa.grads[l] : NULL, H, NT * NT, cam);
      matmul(cam, Rtt, t1, NT, NT, NT);
      matmul(cam, Rti, t2, NT, NT, NI);
      for (int i = 0; i < NT * NT; i++)
        Rtt[i] += t1[i];
      for (int i = 0; i < NT * NI; i++)
        Rti[i] += t2[i];
      head_mean(ca.probs[l], use_grads ? ca.grads[l] : NULL, H, NT * NI, cam);
      naive_norm(Rtt, NT, nt_);
      naive_norm(Rii, NI, ni_);
      matmul(cam, ni_, t1, NT, NI, NI);
      double ntT[NT * NT];
      for (int i = 0; i < NT; i++)
        for (int j = 0; j < NT; j++)
          ntT[i * NT + j] = nt_[j * NT + i];
      matmul(ntT, t1, t2, NT, NT, NI);
      for (int i = 0; i < NT * NI; i++)
        Rti[i] += t2[i];
    }
    int img[4] = {1, 2, 3, 4}; /* encoder token 0 is a CLS */
    vl_explain_input in = {0};
    in.arch = VL_ARCH_ENCODER_DECODER;
    in.grid_w = 4;
    in.grid_h = 1;
    in.n_image = 4;
    in.image_tokens = img;
    in.query = 2;
    in.self = (vl_attn_stack){
        L, H, NT, NT, (const float *const *)sa.probs, (const float *const *)sa.grads};
    in.cross = (vl_attn_stack){
        L, H, NT, NI, (const float *const *)ca.probs, (const float *const *)ca.grads};
    in.vision = (vl_attn_stack){
        LV, H, NI, NI, (const float *const *)va.probs, (const float *const *)va.grads};
    float cells[4];
    REQUIRE(vl_explain_run(use_grads ? "relevancy" : "rollout", &in, cells) == VL_OK);
    for (int i = 0; i < 4; i++)
      CHECK_NEAR(cells[i], Rti[2 * NI + img[i]], 1e-6);
    /* attention reads the cross stack */
    if (!use_grads) {
      in.layer = -1;
      REQUIRE(vl_explain_run("attention", &in, cells) == VL_OK);
      CHECK_NEAR(cells[0], (ca.probs[1][2 * NI + 1] + ca.probs[1][(NT + 2) * NI + 1]) / 2, 1e-7);
    }
    in.cross.n_layers = 1; /* mismatched layer counts */
    CHECK(vl_explain_run("relevancy", &in, cells) == VL_ERR_INVALID);
  }
  /* Co-attention: both directions from the old matrices (rule 11 with a
   * non-zero R_it). */
  vl_relevancy R;
  REQUIRE(vl_relevancy_init(&R, 1, 1) == VL_OK);
  R.R_it[0] = 0.5;
  R.R_ti[0] = 0.25;
  double cti = 0.4, cit = 0.8;
  REQUIRE(vl_relevancy_co_attention(&R, &cti, &cit, 1) == VL_OK);
  /* R̄ of 1x1 identities is 1: R_ti += 0.4, R_tt += 0.4*0.5;
   * R_it += 0.8, R_ii += 0.8*0.25 (old R_ti). */
  CHECK_NEAR(R.R_ti[0], 0.65, 1e-12);
  CHECK_NEAR(R.R_tt[0], 1.2, 1e-12);
  CHECK_NEAR(R.R_it[0], 1.3, 1e-12);
  CHECK_NEAR(R.R_ii[0], 1.2, 1e-12);
  vl_relevancy_free(&R);
  fixture_free(&sa);
  fixture_free(&ca);
  fixture_free(&va);
}

static void test_vision_only(void) {
  enum { L = 2, H = 3, T = 5 };
  attn_fixture f;
  fixture_make(&f, L, H, T, T, 31);
  int img[4] = {1, 2, 3, 4};
  vl_explain_input in = {0};
  in.arch = VL_ARCH_VISION_ONLY;
  in.grid_w = in.grid_h = 2;
  in.n_image = 4;
  in.image_tokens = img;
  in.query = 0;
  in.vision =
      (vl_attn_stack){L, H, T, T, (const float *const *)f.probs, (const float *const *)f.grads};
  float a[4], b[4];
  REQUIRE(vl_explain_run("rollout", &in, a) == VL_OK);
  /* same numbers through the decoder-only path */
  in.arch = VL_ARCH_DECODER_ONLY;
  in.self = in.vision;
  REQUIRE(vl_explain_run("rollout", &in, b) == VL_OK);
  for (int i = 0; i < 4; i++)
    CHECK(a[i] == b[i] && a[i] > 0);
  fixture_free(&f);
}

static void test_gradcam(void) {
  /* 4 token rows (row 0 a CLS, excluded), 2 channels. */
  float X[8] = {9, 9, 1, 2, 3, -1, 0, 4};
  float G[8] = {100, 100, 1, 0, 2, -3, 0, 0};
  int img[3] = {1, 2, 3};
  vl_explain_input in = {0};
  in.grid_w = 3;
  in.grid_h = 1;
  in.n_image = 3;
  in.image_tokens = img;
  in.acts = X;
  in.acts_grad = G;
  in.n_tokens = 4;
  in.channels = 2;
  float cells[3];
  REQUIRE(vl_explain_run("gradcam", &in, cells) == VL_OK);
  /* alpha = (1, -1): cam = relu(1-2, 3+1, 0-4) = (0, 4, 0) */
  CHECK_NEAR(cells[0], 0, 1e-7);
  CHECK_NEAR(cells[1], 4, 1e-6);
  CHECK_NEAR(cells[2], 0, 1e-7);
  int rows[3] = {3, 2, 1};
  in.act_rows = rows;
  REQUIRE(vl_explain_run("gradcam", &in, cells) == VL_OK);
  /* alpha unchanged (same rows), order reversed */
  CHECK_NEAR(cells[1], 4, 1e-6);
  rows[0] = 4;
  CHECK(vl_explain_run("gradcam", &in, cells) == VL_ERR_INVALID);
  in.acts_grad = NULL;
  CHECK(vl_explain_run("gradcam", &in, cells) == VL_ERR_INVALID);
}

static void test_gradient_and_random(void) {
  /* 2 channels of 3x5 pixels onto a 2x1 grid: cell 0 holds pixel columns
   * whose centre < 2.5 (0,1,2 -> centre 2.5 is cell 1), i.e. columns 0-1. */
  float g[2 * 3 * 5];
  for (int c = 0; c < 2; c++)
    for (int y = 0; y < 3; y++)
      for (int x = 0; x < 5; x++)
        g[(c * 3 + y) * 5 + x] = (float)((c ? -1 : 1) * (x + 1));
  vl_explain_input in = {0};
  in.grid_w = 2;
  in.grid_h = 1;
  in.n_image = 2;
  in.pixel_grad = g;
  in.pix_c = 2;
  in.pix_h = 3;
  in.pix_w = 5;
  float cells[2];
  REQUIRE(vl_explain_run("gradient", &in, cells) == VL_OK);
  CHECK_NEAR(cells[0], 2 * (1 + 2) / 2.0, 1e-6);     /* |x+1| twice, columns 0,1 */
  CHECK_NEAR(cells[1], 2 * (3 + 4 + 5) / 3.0, 1e-6); /* columns 2,3,4 */
  in.pix_w = 1;
  CHECK(vl_explain_run("gradient", &in, cells) == VL_ERR_INVALID);

  float r1[12], r2[12], r3[12];
  vl_explain_input ri = {0};
  ri.grid_w = 4;
  ri.grid_h = 3;
  ri.n_image = 12;
  ri.seed = 5;
  REQUIRE(vl_explain_run("random", &ri, r1) == VL_OK);
  REQUIRE(vl_explain_run("random", &ri, r2) == VL_OK);
  ri.seed = 6;
  REQUIRE(vl_explain_run("random", &ri, r3) == VL_OK);
  int same = 1, diff = 0;
  for (int i = 0; i < 12; i++) {
    same &= r1[i] == r2[i];
    diff |= r1[i] != r3[i];
    CHECK(r1[i] >= 0 && r1[i] < 1);
  }
  CHECK(same && diff);
}

/* ---- faithfulness ------------------------------------------------------ */

/* A 40x40 grey image: black background, a checkerboard object in
 * [8,24) x [8,24) (blurring changes every object pixel). The fake model's
 * probability is the fraction of the object's pixels shown unchanged. */
typedef struct {
  const vl_image *orig;
  int calls;
} fake_model;

static double fake_prob(const vl_image *im, void *arg) {
  fake_model *f = arg;
  f->calls++;
  int seen = 0;
  for (int y = 8; y < 24; y++)
    for (int x = 8; x < 24; x++)
      seen += im->pixels[y * 40 + x] == f->orig->pixels[y * 40 + x];
  return seen / 256.0;
}

static double failing_prob(const vl_image *im, void *arg) {
  (void)im;
  (void)arg;
  vl_error(VL_ERR_IO, "model went away");
  return -1;
}

static void test_faithfulness(void) {
  vl_image *img = vl_image_new(40, 40, 1);
  REQUIRE(img);
  for (int y = 8; y < 24; y++)
    for (int x = 8; x < 24; x++)
      img->pixels[y * 40 + x] = ((x + y) & 1) ? 255 : 0;
  vl_image *bl = vl_image_gaussian_blur(img, 2.0);
  REQUIRE(bl);
  for (int y = 8; y < 24; y++)
    for (int x = 8; x < 24; x++)
      REQUIRE(bl->pixels[y * 40 + x] != img->pixels[y * 40 + x]);
  vl_image_free(bl);

  /* 5x5 grid of 8 px cells; the object is cells rows 1-2, columns 1-2. */
  vl_heatmap *m = vl_heatmap_new("test", NULL, 5, 5, 40, 40);
  REQUIRE(m);
  for (int r = 1; r <= 2; r++)
    for (int c = 1; c <= 2; c++)
      m->cells[r * 5 + c] = 1.f - 0.1f * (r + c);
  fake_model f = {img, 0};
  vl_faithfulness out;
  REQUIRE(vl_faithfulness_run(img, m, fake_prob, &f, 7, &out) == VL_OK);
  CHECK(f.calls == 4 * 21);
  CHECK(out.deletion[0] == 1 && out.deletion[20] == 0);
  CHECK(out.insertion[0] == 0 && out.insertion[20] == 1);
  /* Step k removes round(25k/20) cells; the 4 object cells go first: by k = 3
   * (4 cells) the object is gone. */
  CHECK_NEAR(out.deletion[1], 0.75, 1e-12); /* 1 cell removed */
  CHECK_NEAR(out.deletion[2], 0.25, 1e-12); /* round(2.5) = 3 cells */
  CHECK(out.deletion[3] == 0);
  double trap = 0;
  for (int k = 0; k < 20; k++)
    trap += (out.deletion[k] + out.deletion[k + 1]) / 2 / 20;
  CHECK_NEAR(out.deletion_auc, trap, 1e-12);
  CHECK(out.deletion_auc < out.random_deletion_auc);
  CHECK(out.insertion_auc > out.random_insertion_auc);
  CHECK(out.deletion_auc < 0.1 && out.insertion_auc > 0.9);
  /* errors: failing model, size mismatch */
  CHECK(vl_faithfulness_run(img, m, failing_prob, NULL, 7, &out) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "model went away") != NULL);
  m->image_w = 41;
  CHECK(vl_faithfulness_run(img, m, fake_prob, &f, 7, &out) == VL_ERR_INVALID);
  double y2[2] = {0, 1};
  CHECK_NEAR(vl_trapezoid_auc(y2, 2), 0.5, 1e-12);
  vl_heatmap_free(m);
  vl_image_free(img);
}

/* ---- scoring ----------------------------------------------------------- */

static void test_scoring_hand(void) {
  vl_shapes_object o = {0};
  o.x0 = 10;
  o.y0 = 20;
  o.s = 20;
  vl_box b = vl_box_grow(vl_box_of_object(&o), VL_SCORE_GROW_PX); /* [6,34] x [16,44] */
  CHECK(b.x0 == 6 && b.x1 == 34 && b.y0 == 16 && b.y1 == 44);
  vl_heatmap *m = vl_heatmap_new("t", NULL, 12, 12, 96, 96); /* 8 px cells */
  REQUIRE(m);
  m->cells[3 * 12 + 2] = 1; /* peak (20, 28): inside */
  CHECK(vl_pointing_hit(m, b) == 1);
  CHECK_NEAR(vl_mass_in_box(m, b), 1.0, 1e-12);
  m->cells[3 * 12 + 2] = 0;
  m->cells[2 * 12 + 0] = 1;          /* cell x [0,8), y [16,24): 2x8 of 64 px inside */
  CHECK(vl_pointing_hit(m, b) == 0); /* peak (4, 20) */
  CHECK_NEAR(vl_mass_in_box(m, b), 0.25, 1e-12);
  /* min-subtraction: adding a constant changes nothing */
  for (int i = 0; i < 144; i++)
    m->cells[i] += 0.5f;
  CHECK_NEAR(vl_mass_in_box(m, b), 0.25, 1e-6);
  /* flat map: the box's share of the image, 28*28/96^2 */
  for (int i = 0; i < 144; i++)
    m->cells[i] = 0.3f;
  CHECK_NEAR(vl_mass_in_box(m, b), 28.0 * 28 / (96 * 96), 1e-9);
  /* a grown box reaching past the border counts only what is inside */
  vl_box edge = {-10, -10, 4, 4};
  m->cells[0] = 1;
  CHECK_NEAR(vl_mass_in_box(m, edge), 16.0 / 64, 1e-6);
  CHECK(vl_center_pointing_hit(96, 96, b) == 0);
  vl_box mid = {40, 40, 56, 56};
  CHECK(vl_center_pointing_hit(96, 96, mid) == 1);
  vl_heatmap_free(m);
  vl_heatmap *c = vl_center_baseline_map(5, 5, 96, 96);
  REQUIRE(c);
  double x, y;
  vl_heatmap_peak(c, &x, &y);
  CHECK_NEAR(x, 48, 1e-9);
  CHECK_NEAR(y, 48, 1e-9);
  CHECK(vl_mass_in_box(c, mid) > vl_mass_in_box(c, b));
  vl_heatmap_free(c);
}

/* On generated scenes: a map made from an object's mask points at it and
 * puts (nearly) all its mass in the grown box. */
static void test_scoring_scenes(void) {
  for (int64_t idx = 0; idx < 3; idx++) {
    vl_shapes_scene *sc = vl_shapes_generate(42, idx, NULL);
    REQUIRE(sc);
    for (int i = 0; i < sc->n_objects; i++) {
      vl_heatmap *m = vl_heatmap_new("mask", NULL, 24, 24, 96, 96);
      REQUIRE(m);
      for (int y = 0; y < 96; y++)
        for (int x = 0; x < 96; x++)
          if (sc->mask->pixels[y * 96 + x] == i + 1)
            m->cells[vl_heatmap_cell_of_pixel(x, y, 96, 96, 24, 24)] += 1;
      vl_box b = vl_box_grow(vl_box_of_object(&sc->objects[i]), VL_SCORE_GROW_PX);
      CHECK(vl_pointing_hit(m, b) == 1);
      CHECK(vl_mass_in_box(m, b) > 0.999);
      vl_heatmap_free(m);
    }
    vl_shapes_free(sc);
  }
}

int main(void) {
  RUN(test_stats_one_hot);
  RUN(test_stats_uniform);
  RUN(test_stats_two_cells);
  RUN(test_region_thirds);
  RUN(test_peak_non_square);
  RUN(test_smooth);
  RUN(test_sharpen);
  RUN(test_heatmap_errors);
  RUN(test_heatmap_json);
  RUN(test_rollout_decoder);
  RUN(test_relevancy_decoder);
  RUN(test_relevancy_rules_hand);
  RUN(test_relevancy_encoder_decoder);
  RUN(test_vision_only);
  RUN(test_gradcam);
  RUN(test_gradient_and_random);
  RUN(test_faithfulness);
  RUN(test_scoring_hand);
  RUN(test_scoring_scenes);
  return test_summary();
}
