/* describe / entail / explain_output on a freshly initialised tiny Shapes
 * World BLIP (tasks/train.h) and the random-weight golden blip-cap-a. */
#include <gif_lib.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "base/log.h"
#include "explain/blip_explain.h"
#include "io/safetensors.h"
#include "io/shapes_world.h"
#include "tasks/describe.h"
#include "tasks/entail.h"
#include "tasks/explain_output.h"
#include "tasks/explain_slices.h"
#include "tasks/model_paths.h"
#include "tasks/train.h"
#include "tensor/ops.h"
#include "test.h"

static const char *tiny_dir(void) {
  static char dir[1024];
  if (!dir[0]) {
    snprintf(dir, sizeof dir, "%s/tiny-blip", test_tmpdir());
    if (vl_train_init_model(dir, "tiny", 0, 7) != VL_OK) {
      printf("  init: %s\n", vl_last_error());
      dir[0] = 0;
      return NULL;
    }
  }
  return dir;
}

static vl_image *scene(int idx) {
  vl_shapes_scene *sc = vl_shapes_generate(3, idx, NULL);
  if (!sc) return NULL;
  vl_image *img = vl_image_clone(sc->image);
  vl_shapes_free(sc);
  return img;
}

/* Runs check-json.py on doc when Debian's python3 is there; else 0. */
static int check_json(cJSON *doc) {
  if (access("/usr/bin/python3", X_OK)) return 0;
  char path[1024], cmd[3000];
  snprintf(path, sizeof path, "%s/doc.json", test_tmpdir());
  char *s = cJSON_PrintUnformatted(doc);
  test_write_file(path, s, strlen(s));
  free(s);
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s > %s.out 2>&1",
           test_shared_path("tools/check-json.py"), path, path);
  int rc = system(cmd);
  if (rc) {
    snprintf(cmd, sizeof cmd, "%s.out", path);
    size_t n;
    unsigned char *o = test_read_file(cmd, &n);
    printf("  check-json: %s\n", o ? (char *)o : "?");
    free(o);
  }
  return rc;
}

static void test_describe_json_all_methods(void) {
  const char *dir = tiny_dir();
  REQUIRE(dir);
  vl_blip *m = vl_task_load_blip(dir, (char[1024]){0}, 1024);
  REQUIRE(m);
  vl_image *img = scene(0);
  REQUIRE(img);
  vl_explain_cfg cfg;
  REQUIRE(vl_explain_cfg_parse(&cfg, "all") == VL_OK);
  CHECK(cfg.n_methods == 6);
  vl_describe_opts o = {.max_length = 8};
  vl_describe_result res;
  int rc = vl_describe(m, img, &o, &cfg, &res);
  if (rc) printf("  %s\n", vl_last_error());
  REQUIRE(rc == VL_OK);
  REQUIRE(res.n_tokens >= 1 && res.n_tokens <= 7);
  CHECK(res.gw == 6 && res.gh == 6); /* 96 / patch 16 */
  /* explanations of every token and word came from ONE recorded forward,
   * one backward per token (every Shapes World word is one token) */
  CHECK(res.forwards == 1);
  CHECK(res.backwards == res.n_tokens);
  int explained = 0;
  for (int i = 0; i < res.n_tokens; i++) {
    REQUIRE(res.tokens[i].maps);
    CHECK(res.tokens[i].logprob <= 0 && res.tokens[i].logprob > -20);
    for (int k = 0; k < cfg.n_methods; k++) {
      vl_heatmap *h = res.tokens[i].maps[k];
      CHECK(h->gw == 6 && h->gh == 6 && h->image_w == 96 && h->image_h == 96);
      CHECK(!strcmp(h->method, cfg.methods[k]));
      float mx = 0;
      for (int c = 0; c < 36; c++)
        mx = h->cells[c] > mx ? h->cells[c] : mx;
      CHECK(mx == 1.0f || mx == 0.0f);
    }
  }
  for (int w = 0; w < res.n_words; w++)
    explained += res.words[w].maps != NULL;
  CHECK(explained == res.n_words);
  cJSON *doc = vl_describe_to_json(&res, &cfg, "tiny", NULL, "scene.png", 1.0);
  REQUIRE(doc);
  CHECK(!strcmp(cJSON_GetObjectItem(doc, "task")->valuestring, "describe"));
  CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "tokens")) == res.n_tokens);
  cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "tokens"), 0);
  cJSON *gc = cJSON_GetObjectItem(cJSON_GetObjectItem(t0, "explanations"), "gradcam");
  REQUIRE(gc);
  CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(gc, "cells")) == 36);
  CHECK(!strcmp(cJSON_GetObjectItem(gc, "layer")->valuestring, "vision.blocks.0"));
  CHECK(check_json(doc) == 0);
  cJSON_Delete(doc);

  /* the picture folder */
  char out[1200], path[1400];
  snprintf(out, sizeof out, "%s/pics", test_tmpdir());
  int nf = 0;
  rc = vl_explain_write_outputs(out, img, "tiny", &res, NULL, NULL, &nf);
  if (rc) printf("  %s\n", vl_last_error());
  REQUIRE(rc == VL_OK);
  /* per word: 6 overlays + figure + heads grid; the GIF; report.html */
  CHECK(nf == res.n_words * 8 + 2);
  snprintf(path, sizeof path, "%s/word_00_%s_gradcam.png", out, res.words[0].text);
  for (char *p = path + strlen(out) + 9; *p && *p != '_'; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))) *p = '_';
  vl_image *ov = vl_image_load(path, 0);
  if (!ov) printf("  %s\n", vl_last_error());
  CHECK(ov && ov->width == 192 && ov->height == 192);
  vl_image_free(ov);
  snprintf(path, sizeof path, "%s/caption.gif", out);
  int err = 0;
  GifFileType *g = DGifOpenFileName(path, &err);
  REQUIRE(g);
  CHECK(DGifSlurp(g) == GIF_OK);
  CHECK(g->ImageCount == res.n_tokens);
  CHECK(g->SWidth == 192 && g->SHeight > 192); /* the caption strip below */
  DGifCloseFile(g, &err);
  snprintf(path, sizeof path, "%s/report.html", out);
  size_t len = 0;
  char *html = (char *)test_read_file(path, &len);
  REQUIRE(html);
  CHECK(strstr(html, "data:image/png;base64,"));
  CHECK(!strstr(html, "src=\"http") && !strstr(html, "<link") && !strstr(html, "src=\"word_"));
  CHECK(strstr(html, res.words[0].text));
  free(html);
  vl_describe_result_free(&res);
  vl_explain_cfg_free(&cfg);
  vl_image_free(img);
  vl_blip_free(m);
}

/* A word of two tokens: its gradcam is Grad-CAM of the summed score; check
 * against two separate backwards (linearity) in a fresh recording. */
static void test_word_gradcam_is_sum(void) {
  const char *dir = tiny_dir();
  REQUIRE(dir);
  vl_blip *m = vl_blip_load(dir);
  REQUIRE(m);
  vl_image *img = scene(1);
  REQUIRE(img);
  int64_t ids[5] = {m->tcfg.bos, 10, 11, 12, 13};
  vl_blip_rec r;
  REQUIRE(vl_blip_record(m, img, ids, 5, &r) == VL_OK);
  int64_t q[2] = {1, 3}, id[2] = {11, 20};
  vl_blip_target t = {2, q, id};
  const char *meth[2] = {"gradcam", "attention"};
  vl_blip_explain_opts o;
  vl_blip_explain_opts_init(&o);
  o.methods = meth;
  o.n_methods = 2;
  vl_heatmap *maps[2];
  REQUIRE(vl_blip_explain(&r, &t, &o, maps) == VL_OK);
  CHECK(r.forwards == 1 && r.backwards == 1);
  /* reference: two backwards, gradients summed */
  const int Lv = (int)m->vcfg.n_layers;
  vl_tensor *x = r.run.vision_layer_in[Lv - 1];
  const int64_t N = x->shape[1], C = x->shape[2];
  float *gsum = calloc((size_t)(N * C), sizeof *gsum);
  for (int k = 0; k < 2; k++) {
    vl_blip_target one = {1, &q[k], &id[k]};
    REQUIRE(vl_blip_target_backward(&r, &one) == VL_OK);
    for (int64_t i = 0; i < N * C; i++)
      gsum[i] += x->grad[i];
  }
  double alpha[64] = {0}, cam[36];
  REQUIRE(C <= 64 && N - 1 == 36);
  for (int64_t i = 1; i < N; i++)
    for (int64_t c = 0; c < C; c++)
      alpha[c] += gsum[i * C + c] / (double)(N - 1);
  double lo = 1e30, hi = -1e30;
  for (int64_t i = 1; i < N; i++) {
    double s = 0;
    for (int64_t c = 0; c < C; c++)
      s += alpha[c] * vl_f32(x)[i * C + c];
    cam[i - 1] = s > 0 ? s : 0;
    lo = cam[i - 1] < lo ? cam[i - 1] : lo;
    hi = cam[i - 1] > hi ? cam[i - 1] : hi;
  }
  REQUIRE(hi > lo);
  for (int i = 0; i < 36; i++)
    CHECK_NEAR(maps[0]->cells[i], (cam[i] - lo) / (hi - lo), 1e-4);
  /* attention of the word: mean of its tokens' maps */
  float a0[36], a1[36];
  vl_blip_target t0 = {1, &q[0], &id[0]}, t1 = {1, &q[1], &id[1]};
  REQUIRE(vl_blip_method_raw(&r, &t0, "attention", -1, -1, 0, a0) == VL_OK);
  REQUIRE(vl_blip_method_raw(&r, &t1, "attention", -1, -1, 0, a1) == VL_OK);
  lo = 1e30, hi = -1e30;
  for (int i = 0; i < 36; i++) {
    double v = (a0[i] + a1[i]) / 2;
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  for (int i = 0; i < 36; i++)
    CHECK_NEAR(maps[1]->cells[i], ((a0[i] + a1[i]) / 2 - lo) / (hi - lo), 1e-5);
  CHECK(r.forwards == 1);
  /* per head, bad head, bad layer */
  float h0[36];
  CHECK(vl_blip_method_raw(&r, &t0, "attention", 0, 1, 0, h0) == VL_OK);
  CHECK(vl_blip_method_raw(&r, &t0, "attention", 0, 5, 0, h0) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "head 5"));
  CHECK(vl_blip_method_raw(&r, &t0, "gradcam", 3, -1, 0, h0) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "--layer 3"));
  free(gsum);
  vl_heatmap_free(maps[0]);
  vl_heatmap_free(maps[1]);
  vl_blip_rec_free(&r);
  vl_image_free(img);
  vl_blip_free(m);
}

/* Against the golden: blip-cap-a's gradcam for its target from our recorder. */
static void test_golden_gradcam(void) {
  char dir[PATH_MAX], p[PATH_MAX + 32];
  snprintf(dir, sizeof dir, "%s", test_shared_path("golden/blip-cap-a"));
  vl_blip *m = vl_blip_load(dir);
  REQUIRE(m);
  snprintf(p, sizeof p, "%s/image.png", dir);
  vl_image *img = vl_image_load(p, 0);
  REQUIRE(img);
  int64_t ids[4] = {77, 13, 23, 16}, q = 3, id = 39;
  vl_blip_rec r;
  REQUIRE(vl_blip_record(m, img, ids, 4, &r) == VL_OK);
  CHECK(r.grid_w == 4 && r.grid_h == 4);
  vl_blip_target t = {1, &q, &id};
  float cells[16];
  REQUIRE(vl_blip_target_backward(&r, &t) == VL_OK);
  REQUIRE(vl_blip_method_raw(&r, &t, "gradcam", 1, -1, 0, cells) == VL_OK);
  snprintf(p, sizeof p, "%s/golden.safetensors", dir);
  vl_safetensors *st = vl_st_open(p);
  REQUIRE(st);
  const vl_st_tensor *g = vl_st_find(st, "gradcam");
  REQUIRE(g && vl_st_numel(g) == 16);
  float want[16];
  REQUIRE(vl_st_to_f32(g, want) == VL_OK);
  CHECK(test_max_rel_err(cells, want, 16) < 1e-3);
  /* the recorded logits give the golden score */
  CHECK_NEAR(vl_f32(r.run.logits)[3 * m->tcfg.vocab + 39], 9.249329566955566, 1e-3);
  vl_st_close(st);
  vl_blip_rec_free(&r);
  vl_image_free(img);
  vl_blip_free(m);
}

static void test_entail_decision(void) {
  const char *dir = tiny_dir();
  REQUIRE(dir);
  vl_blip *m = vl_blip_load(dir);
  REQUIRE(m);
  vl_image *img = scene(2);
  REQUIRE(img);
  vl_explain_cfg cfg;
  REQUIRE(vl_explain_cfg_parse(&cfg, "gradcam,attention,relevancy") == VL_OK);
  vl_entail_result res;
  int rc = vl_entail(m, img, "there is a red circle.", &cfg, true, &res);
  if (rc) printf("  %s\n", vl_last_error());
  REQUIRE(rc == VL_OK);
  CHECK_NEAR(res.probs[0] + res.probs[1] + res.probs[2], 1.0, 1e-9);
  for (int l = 0; l < 3; l++)
    CHECK(res.probs[res.label] >= res.probs[l]);
  CHECK(res.forwards == 1 && res.backwards == 1);
  REQUIRE(res.maps && res.maps[0]);
  CHECK(res.maps[0]->gw == 6);
  cJSON *doc = vl_entail_to_json(&res, "tiny", "there is a red circle.", NULL, 96, 96, 0);
  REQUIRE(doc);
  CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "explanations"), "relevancy"));
  CHECK(check_json(doc) == 0);
  cJSON_Delete(doc);
  char out[1200];
  snprintf(out, sizeof out, "%s/entail", test_tmpdir());
  int nf = 0;
  CHECK(vl_explain_write_outputs(out, img, "tiny", NULL, "there is a red circle.", &res, &nf) ==
        VL_OK);
  CHECK(nf == 3 + 1 + 1);
  vl_entail_result_free(&res);
  vl_explain_cfg_free(&cfg);
  vl_image_free(img);
  vl_blip_free(m);
}

static void test_explain_named_words_and_errors(void) {
  const char *dir = tiny_dir();
  REQUIRE(dir);
  vl_blip *m = vl_blip_load(dir);
  REQUIRE(m);
  vl_image *img = scene(0);
  vl_explain_cfg cfg;
  CHECK(vl_explain_cfg_parse(&cfg, "gradcam,nosuch") == VL_ERR_NOTFOUND);
  CHECK(strstr(vl_last_error(), "nosuch") && strstr(vl_last_error(), "relevancy"));
  REQUIRE(vl_explain_cfg_parse(&cfg, "gradcam") == VL_OK);
  vl_describe_opts o = {.max_length = 6, .explain = "none"};
  vl_describe_result res;
  REQUIRE(vl_describe(m, img, &o, &cfg, &res) == VL_OK);
  REQUIRE(res.n_words >= 1);
  CHECK(res.backwards == 0 && !res.tokens[0].maps);
  char word[64];
  snprintf(word, sizeof word, "%s", res.words[res.n_words - 1].text);
  vl_describe_result_free(&res);
  o.explain = word;
  REQUIRE(vl_describe(m, img, &o, &cfg, &res) == VL_OK);
  int n_named = 0;
  for (int w = 0; w < res.n_words; w++) {
    CHECK((res.words[w].maps != NULL) == !strcmp(res.words[w].text, word));
    n_named += res.words[w].maps != NULL;
  }
  CHECK(n_named >= 1 && res.backwards == n_named);
  CHECK(!res.tokens[0].maps || res.n_tokens == 1 || 1); /* tokens unexplained with a list */
  for (int i = 0; i < res.n_tokens; i++)
    CHECK(res.tokens[i].maps == NULL);
  vl_describe_result_free(&res);
  o.explain = "zebra";
  CHECK(vl_describe(m, img, &o, &cfg, &res) == VL_ERR_NOTFOUND);
  CHECK(strstr(vl_last_error(), "zebra"));
  cfg.ex.layer = 9;
  o.explain = NULL;
  CHECK(vl_describe(m, img, &o, &cfg, &res) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "--layer 9"));
  vl_explain_cfg_free(&cfg);
  /* a folder that is not a model names itself */
  char buf[1024];
  CHECK(vl_task_load_blip("/nonexistent/model", buf, sizeof buf) == NULL);
  CHECK(strstr(vl_last_error(), "/nonexistent/model"));
  char **w;
  int n;
  REQUIRE(vl_split_words("a large red circle, a cube.", &w, &n) == VL_OK);
  CHECK(n == 8 && !strcmp(w[3], "circle") && !strcmp(w[4], ",") && !strcmp(w[7], "."));
  for (int i = 0; i < n; i++)
    free(w[i]);
  free(w);
  vl_image_free(img);
  vl_blip_free(m);
}

/* The embedded captioner's default length holds a 4-object caption: with
 * HF's default 20, every one was cut before its last word and full stop. */
static void test_embedded_caption_room(void) {
  char dir[4096];
  REQUIRE(vl_model_default_path(VL_DEFAULT_CAPTIONER, NULL, "-m", dir, sizeof dir) == VL_OK);
  vl_blip *m = vl_blip_load(dir);
  REQUIRE(m);
  vl_shapes_options so = vl_shapes_default_options();
  so.min_objects = so.max_objects = 4;
  so.n_hypotheses = 0;
  vl_shapes_scene *sc = vl_shapes_generate(5, 0, &so);
  REQUIRE(sc);
  int64_t *ids = NULL, n = 0;
  REQUIRE(vl_blip_prompt_ids(m, sc->caption, &ids, &n) == VL_OK);
  printf("  default max_length %lld, 4-object caption %lld tokens with [DEC] and [SEP]\n",
         (long long)m->max_length, (long long)(n + 1));
  CHECK(n + 1 <= m->max_length);
  vl_describe_opts o = {.explain = "none"};
  vl_explain_cfg cfg;
  REQUIRE(vl_explain_cfg_parse(&cfg, "attention") == VL_OK);
  vl_describe_result res;
  REQUIRE(vl_describe(m, sc->image, &o, &cfg, &res) == VL_OK);
  const size_t len = strlen(res.text);
  CHECK(len > 0 && res.text[len - 1] == '.'); /* the caption ran to its end */
  vl_describe_result_free(&res);
  vl_explain_cfg_free(&cfg);
  free(ids);
  vl_shapes_free(sc);
  vl_blip_free(m);
}

/* --faithfulness: step 0 of deletion and the last insertion step show the
 * untouched image, so both equal the target's probability in the recording. */
static void test_faithfulness_endpoints(void) {
  const char *dir = tiny_dir();
  REQUIRE(dir);
  vl_blip *m = vl_blip_load(dir);
  REQUIRE(m);
  vl_image *img = scene(4);
  REQUIRE(img);
  int64_t ids[3] = {m->tcfg.bos, 10, 11}, q[2] = {1, 2}, id[2] = {11, 12};
  vl_blip_rec r;
  REQUIRE(vl_blip_record(m, img, ids, 3, &r) == VL_OK);
  vl_blip_target t = {2, q, id};
  const char *meth[1] = {"gradcam"};
  vl_blip_explain_opts o;
  vl_blip_explain_opts_init(&o);
  o.methods = meth;
  o.n_methods = 1;
  vl_heatmap *map;
  REQUIRE(vl_blip_explain(&r, &t, &o, &map) == VL_OK);
  vl_faithfulness f;
  REQUIRE(vl_blip_faithfulness(&r, img, &t, map, 1, &f) == VL_OK);
  double p = exp(vl_blip_logprob(&r, 1, 11) + vl_blip_logprob(&r, 2, 12));
  CHECK_NEAR(f.deletion[0], p, 1e-4 * p);
  CHECK_NEAR(f.insertion[VL_FAITH_STEPS], p, 1e-4 * p);
  CHECK_NEAR(f.random_deletion[0], p, 1e-4 * p);
  CHECK(f.deletion_auc >= 0 && f.deletion_auc <= 1 && f.random_insertion_auc >= 0);
  CHECK(r.forwards == 1); /* masked images are inference forwards, not recordings */
  vl_heatmap_free(map);
  vl_blip_rec_free(&r);
  vl_image_free(img);
  vl_blip_free(m);
}

/* ---- --layer all / --heads ------------------------------------------- */

/* Adds h (its "layers" / "heads" taken out) as F[prefix], then every map
 * nested in it under prefix/layers/i, prefix/heads/i; returns how many. */
static int flatten_into(cJSON *F, const char *prefix, const cJSON *h) {
  cJSON *d = cJSON_Duplicate(h, 1);
  cJSON_DeleteItemFromObject(d, "layers");
  cJSON_DeleteItemFromObject(d, "heads");
  cJSON_AddItemToObject(F, prefix, d);
  int n = 1;
  const char *part[2] = {"layers", "heads"};
  for (int p = 0; p < 2; p++) {
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(h, part[p])) {
      char name[256];
      snprintf(name, sizeof name, "%s/%s/%d", prefix, part[p], i++);
      n += flatten_into(F, name, c);
    }
  }
  return n;
}

/* explanations with every nested map as a key of its own, so that
 * check-json.py checks each against the contract's heatmap object */
static int flatten_explanations(cJSON *owner) {
  cJSON *e = cJSON_GetObjectItem(owner, "explanations"), *F = cJSON_CreateObject();
  int n = 0;
  const cJSON *h;
  cJSON_ArrayForEach(h, e) n += flatten_into(F, h->string, h);
  cJSON_ReplaceItemInObject(owner, "explanations", F);
  return n;
}

/* The method object with "layers" / "heads" taken out equals the one of the
 * document made without --layer all / --heads: fields were only added. */
static void check_unchanged(const cJSON *with, const cJSON *without) {
  const cJSON *h;
  cJSON_ArrayForEach(h, with) {
    cJSON *d = cJSON_Duplicate(h, 1);
    cJSON_DeleteItemFromObject(d, "layers");
    cJSON_DeleteItemFromObject(d, "heads");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(without, h->string);
    CHECK(w && cJSON_Compare(d, w, 1));
    cJSON_Delete(d);
  }
}

static double max_cell_diff(const cJSON *a, const cJSON *b) {
  const cJSON *ca = cJSON_GetObjectItem(a, "cells"), *cb = cJSON_GetObjectItem(b, "cells");
  if (cJSON_GetArraySize(ca) != cJSON_GetArraySize(cb)) return 1e9;
  double mx = 0;
  for (int i = 0; i < cJSON_GetArraySize(ca); i++) {
    double d =
        fabs(cJSON_GetArrayItem(ca, i)->valuedouble - cJSON_GetArrayItem(cb, i)->valuedouble);
    mx = d > mx ? d : mx;
  }
  return mx;
}

/* One explanations object of a document with both --layer all and --heads. */
static void check_slices(const vl_blip *m, const cJSON *e) {
  const int Lv = (int)m->vcfg.n_layers, Lt = (int)m->tcfg.n_layers;
  const int H = (int)(m->tcfg.n_heads < m->vcfg.n_heads ? m->tcfg.n_heads : m->vcfg.n_heads);
  const cJSON *h;
  cJSON_ArrayForEach(h, e) {
    const char *meth = h->string;
    const cJSON *layers = cJSON_GetObjectItem(h, "layers"),
                *heads = cJSON_GetObjectItem(h, "heads");
    int want_l = !strcmp(meth, "gradcam") ? Lv : !strcmp(meth, "attention") ? Lt : 0;
    bool want_h =
        !strcmp(meth, "attention") || !strcmp(meth, "rollout") || !strcmp(meth, "relevancy");
    CHECK(vl_slices_n_layers(m, meth) == want_l);
    CHECK(vl_slices_n_heads(m, meth) == (want_h ? H : 0));
    CHECK(want_l ? cJSON_GetArraySize(layers) == want_l : layers == NULL);
    CHECK(want_h ? cJSON_GetArraySize(heads) == H : heads == NULL);
    for (int l = 0; l < want_l; l++) {
      const cJSON *x = cJSON_GetArrayItem(layers, l);
      char name[64];
      if (!strcmp(meth, "gradcam"))
        snprintf(name, sizeof name, "vision.blocks.%d", l);
      else
        snprintf(name, sizeof name, "text.layers.%d.crossattention", l);
      CHECK(!strcmp(cJSON_GetObjectItem(x, "layer")->valuestring, name));
      CHECK(cJSON_GetObjectItem(x, "layer_index")->valueint == l);
      CHECK(!strcmp(cJSON_GetObjectItem(x, "method")->valuestring, meth));
      /* attention: each layer carries its heads too */
      CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(x, "heads")) == (want_h ? H : 0));
    }
    /* the default layer is the last one: the same map as the main one */
    if (want_l) CHECK(max_cell_diff(cJSON_GetArrayItem(layers, want_l - 1), h) < 1e-4);
    for (int k = 0; want_h && k < H; k++) {
      const cJSON *x = cJSON_GetArrayItem(heads, k);
      CHECK(cJSON_GetObjectItem(x, "head")->valueint == k);
      if (want_l) /* "heads" is at the main map's layer, the last */
        CHECK(cJSON_Compare(
            x,
            cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(layers, want_l - 1), "heads"),
                               k),
            1));
    }
  }
}

static void test_layers_heads_json(void) {
  const char *dir = tiny_dir();
  REQUIRE(dir);
  vl_blip *m = vl_blip_load(dir);
  REQUIRE(m);
  vl_image *img = scene(5);
  REQUIRE(img);
  vl_explain_cfg cfg;
  REQUIRE(vl_explain_cfg_parse(&cfg, "gradcam,attention,rollout,relevancy,gradient") == VL_OK);
  vl_describe_opts o = {.max_length = 6};
  vl_describe_result res;
  REQUIRE(vl_describe(m, img, &o, &cfg, &res) == VL_OK);
  REQUIRE(res.n_tokens >= 1);
  cJSON *doc = vl_describe_to_json(&res, &cfg, "tiny", NULL, "scene.png", 1.0),
        *plain = vl_describe_to_json(&res, &cfg, "tiny", NULL, "scene.png", 1.0);
  REQUIRE(doc && plain);
  vl_slices_opts none = {false, false}, both = {true, true};
  REQUIRE(vl_describe_slices_json(m, img, NULL, &res, &cfg, &none, doc) == VL_OK);
  CHECK(cJSON_Compare(doc, plain, 1));
  int rc = vl_describe_slices_json(m, img, NULL, &res, &cfg, &both, doc);
  if (rc) printf("  %s\n", vl_last_error());
  REQUIRE(rc == VL_OK);
  const char *part[2] = {"tokens", "words"};
  for (int p = 0; p < 2; p++)
    for (int i = 0; i < cJSON_GetArraySize(cJSON_GetObjectItem(doc, part[p])); i++) {
      const cJSON *e = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, part[p]), i),
                                           "explanations"),
                  *e0 = cJSON_GetObjectItem(
                      cJSON_GetArrayItem(cJSON_GetObjectItem(plain, part[p]), i), "explanations");
      check_unchanged(e, e0);
      check_slices(m, e);
    }
  CHECK(check_json(doc) == 0);
  /* every nested map is a heatmap object of the contract */
  int nested = 0;
  for (int p = 0; p < 2; p++) {
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(doc, part[p])) nested += flatten_explanations(c);
  }
  const int Lv = (int)m->vcfg.n_layers, Lt = (int)m->tcfg.n_layers, H = (int)m->tcfg.n_heads;
  /* per explained target: 5 main maps, Lv gradcam layers, Lt attention
   * layers with H heads each, H heads of attention, rollout, relevancy */
  int per = 5 + Lv + Lt * (1 + H) + 3 * H;
  CHECK(nested == per * (res.n_tokens + res.n_words));
  CHECK(check_json(doc) == 0);
  cJSON_Delete(doc);
  cJSON_Delete(plain);

  /* entail: the decision's maps */
  vl_entail_result er;
  REQUIRE(vl_entail(m, img, "there is a red circle.", &cfg, true, &er) == VL_OK);
  doc = vl_entail_to_json(&er, "tiny", "there is a red circle.", NULL, 96, 96, 0);
  plain = vl_entail_to_json(&er, "tiny", "there is a red circle.", NULL, 96, 96, 0);
  REQUIRE(doc && plain);
  vl_slices_opts layers_only = {true, false};
  rc = vl_entail_slices_json(m, img, "there is a red circle.", &er, &cfg, &layers_only, doc);
  if (rc) printf("  %s\n", vl_last_error());
  REQUIRE(rc == VL_OK);
  cJSON *e = cJSON_GetObjectItem(doc, "explanations");
  check_unchanged(e, cJSON_GetObjectItem(plain, "explanations"));
  CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "gradcam"), "layers")) == Lv);
  CHECK(!cJSON_GetObjectItem(cJSON_GetObjectItem(e, "attention"), "heads"));
  const cJSON *al = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "attention"), "layers");
  CHECK(cJSON_GetArraySize(al) == Lt && !cJSON_GetObjectItem(cJSON_GetArrayItem(al, 0), "heads"));
  CHECK(max_cell_diff(cJSON_GetArrayItem(al, Lt - 1), cJSON_GetObjectItem(e, "attention")) < 1e-4);
  CHECK(check_json(doc) == 0);
  nested = flatten_explanations(doc);
  CHECK(nested == 5 + Lv + Lt);
  CHECK(check_json(doc) == 0);
  cJSON_Delete(doc);
  cJSON_Delete(plain);
  vl_entail_result_free(&er);
  vl_describe_result_free(&res);
  vl_explain_cfg_free(&cfg);
  vl_image_free(img);
  vl_blip_free(m);
}

int main(void) {
  vl_log_set_quiet(1);
  RUN(test_describe_json_all_methods);
  RUN(test_word_gradcam_is_sum);
  RUN(test_golden_gradcam);
  RUN(test_entail_decision);
  RUN(test_explain_named_words_and_errors);
  RUN(test_faithfulness_endpoints);
  RUN(test_layers_heads_json);
  RUN(test_embedded_caption_room);
  return test_summary();
}
