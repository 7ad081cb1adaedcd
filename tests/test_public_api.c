/* The public API (include/vlens.h) on the tiny goldens blip-cap-a and
 * qwen3-a (generate, chat), and on a Shapes World BLIP made with `vlens train --steps 1`:
 * only vlens.h is used (plus libc, cJSON to read the documents and the test
 * harness). Each result is compared with what the CLI (build/<variant>/vlens,
 * the task-level path) prints for the same input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "test.h"
#include "vlens.h"

#define CAP "golden/blip-cap-a"
#define LLM "golden/qwen3-a"

static const char *cap_image(void) {
  static char p[1024];
  snprintf(p, sizeof p, "%s/image.png", test_shared_path(CAP));
  return p;
}

/* stdout of `build/<variant>/vlens ARGS` (malloc'd, trailing newline
 * dropped), or NULL when the CLI is not built or fails. */
static char *run_cli(const char *args) {
  const char *exe = test_vlens_exe();
  if (!exe) return NULL;
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", exe, args);
  FILE *f = popen(cmd, "r");
  if (!f) return NULL;
  size_t cap = 4096, len = 0, k;
  char *buf = malloc(cap);
  while (buf && (k = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += k;
    if (len + 1 == cap) {
      char *p = realloc(buf, cap *= 2);
      if (!p) free(buf);
      buf = p;
    }
  }
  int st = pclose(f);
  if (!buf || !WIFEXITED(st) || WEXITSTATUS(st)) {
    free(buf);
    return NULL;
  }
  buf[len] = 0;
  if (len && buf[len - 1] == '\n') buf[len - 1] = 0;
  return buf;
}

/* `vlens ARGS`'s stdout parsed as JSON; NULL if it failed or is not JSON. */
static cJSON *cli_doc(const char *args) {
  char *out = run_cli(args);
  cJSON *doc = out ? cJSON_Parse(out) : NULL;
  free(out);
  return doc;
}

/* A Shapes World BLIP (yes/maybe/no in its vocabulary) for entail, made by
 * the CLI's trainer in one step; NULL when that fails. */
static const char *shapes_dir(void) {
  static char dir[1024];
  if (!dir[0]) {
    char args[1200];
    snprintf(dir, sizeof dir, "%s/shapes-tiny", test_tmpdir());
    snprintf(args, sizeof args, "train --steps 1 --config tiny --seed 3 --out %s", dir);
    char *o = run_cli(args);
    if (!o) {
      dir[0] = 0;
      return NULL;
    }
    free(o);
  }
  return dir;
}

static void test_model_load_and_kind(void) {
  vlens_model *c = vlens_model_load(test_shared_path(CAP));
  if (!c) printf("  %s\n", vlens_last_error());
  REQUIRE(c);
  CHECK(vlens_model_kind(c) == VLENS_KIND_CAPTIONER);
  CHECK(!strcmp(vlens_kind_name(vlens_model_kind(c)), "captioner"));
  CHECK(!strcmp(vlens_model_name(c), "blip-cap-a"));
  vlens_model_free(c);
  vlens_model *q = vlens_model_load(test_shared_path(LLM));
  REQUIRE(q);
  CHECK(vlens_model_kind(q) == VLENS_KIND_LLM);
  CHECK(!strcmp(vlens_kind_name(VLENS_KIND_LLM), "llm"));
  CHECK(!strcmp(vlens_model_name(q), "qwen3-a"));
  vlens_model_free(q);
  /* an embedded model's name goes through $VLENS_MODELS first */
  char models[1024];
  snprintf(models, sizeof models, "%s/..", test_shared_path(CAP));
  setenv("VLENS_MODELS", models, 1);
  vlens_model *e = vlens_model_load("blip-cap-a");
  unsetenv("VLENS_MODELS");
  if (!e) printf("  %s\n", vlens_last_error());
  REQUIRE(e);
  CHECK(vlens_model_kind(e) == VLENS_KIND_CAPTIONER);
  vlens_model_free(e);
}

static void test_caption_matches_cli(void) {
  vlens_model *m = vlens_model_load(test_shared_path(CAP));
  vlens_image *img = vlens_image_load(cap_image(), 0);
  REQUIRE(m && img);
  char *text = NULL;
  REQUIRE(vlens_caption(m, img, &text) == 0);
  REQUIRE(text);
  CHECK(strlen(text) > 0);
  char args[2400];
  snprintf(args, sizeof args, "describe %s -m %s --explain none", cap_image(),
           test_shared_path(CAP));
  char *cli = run_cli(args);
  REQUIRE(cli);
  char *nl = strchr(cli, '\n');
  if (nl) *nl = 0;
  CHECK(!strcmp(text, cli));
  /* the structured call without explanations gives the same text */
  vlens_describe_opts o;
  vlens_describe_opts_init(&o);
  o.explain = "none";
  vlens_description *d = vlens_describe(m, img, &o);
  REQUIRE(d);
  CHECK(!strcmp(vlens_description_text(d), text));
  CHECK(vlens_description_n_words(d) > 0);
  CHECK(vlens_description_heatmap(d, 0, NULL) == NULL);
  CHECK(strstr(vlens_last_error(), "not explained") != NULL);
  vlens_description_free(d);
  free(cli);
  vlens_free(text);
  vlens_image_free(img);
  vlens_model_free(m);
}

static const char *heatmap_keys[] = {"method", "layer", "grid", "cells", "peak", "center", "stats"};
static const char *stats_keys[] = {"mean",          "max",        "min",     "std",   "focus_area",
                                   "concentration", "top10_mass", "entropy", "region"};

static int heatmap_ok(const cJSON *h) {
  for (size_t i = 0; i < sizeof heatmap_keys / sizeof *heatmap_keys; i++)
    if (!cJSON_HasObjectItem(h, heatmap_keys[i])) return 0;
  const cJSON *st = cJSON_GetObjectItem(h, "stats");
  for (size_t i = 0; i < sizeof stats_keys / sizeof *stats_keys; i++)
    if (!cJSON_HasObjectItem(st, stats_keys[i])) return 0;
  const cJSON *g = cJSON_GetObjectItem(h, "grid");
  int gw = cJSON_GetArrayItem(g, 0)->valueint, gh = cJSON_GetArrayItem(g, 1)->valueint;
  return gw > 0 && gh > 0 && cJSON_GetArraySize(cJSON_GetObjectItem(h, "cells")) == gw * gh;
}

/* describe: the document has the contract's keys, equals the CLI's
 * --json document (timings aside), and the structured heatmaps hold the same
 * numbers as the document. */
static void test_describe_json_and_heatmaps(void) {
  vlens_model *m = vlens_model_load(test_shared_path(CAP));
  vlens_image *img = vlens_image_load(cap_image(), 0);
  REQUIRE(m && img);
  vlens_describe_opts o;
  vlens_describe_opts_init(&o);
  o.methods = "gradcam,attention";
  o.max_length = 8;
  o.smooth = 0.5;
  char *s = vlens_describe_json(m, img, &o);
  if (!s) printf("  %s\n", vlens_last_error());
  REQUIRE(s);
  cJSON *doc = cJSON_Parse(s);
  REQUIRE(doc);
  CHECK(!strcmp(cJSON_GetObjectItem(doc, "task")->valuestring, "describe"));
  CHECK(!strcmp(cJSON_GetObjectItem(doc, "model")->valuestring, "blip-cap-a"));
  const cJSON *im = cJSON_GetObjectItem(doc, "image");
  CHECK(cJSON_GetObjectItem(im, "width")->valueint == vlens_image_width(img));
  CHECK(cJSON_GetObjectItem(im, "height")->valueint == vlens_image_height(img));
  CHECK(cJSON_HasObjectItem(doc, "timing_ms") && cJSON_HasObjectItem(doc, "text"));
  const cJSON *tokens = cJSON_GetObjectItem(doc, "tokens"),
              *words = cJSON_GetObjectItem(doc, "words");
  REQUIRE(cJSON_GetArraySize(tokens) >= 1 && cJSON_GetArraySize(words) >= 1);
  const cJSON *t, *w;
  cJSON_ArrayForEach(t, tokens) {
    CHECK(cJSON_HasObjectItem(t, "id") && cJSON_HasObjectItem(t, "logprob"));
    const cJSON *ex = cJSON_GetObjectItem(t, "explanations");
    CHECK(heatmap_ok(cJSON_GetObjectItem(ex, "gradcam")));
    CHECK(heatmap_ok(cJSON_GetObjectItem(ex, "attention")));
  }
  cJSON_ArrayForEach(w, words) {
    CHECK(cJSON_HasObjectItem(w, "text") && cJSON_HasObjectItem(w, "tokens"));
    CHECK(heatmap_ok(cJSON_GetObjectItem(cJSON_GetObjectItem(w, "explanations"), "gradcam")));
  }

  /* the CLI's document for the same input */
  char args[2400];
  snprintf(args, sizeof args,
           "describe %s -m %s --json --method gradcam,attention --max-length 8 --smooth 0.5",
           cap_image(), test_shared_path(CAP));
  cJSON *cdoc = cli_doc(args);
  REQUIRE(cdoc);
  cJSON_DeleteItemFromObject(cdoc, "timing_ms");
  cJSON_DeleteItemFromObject(cdoc, "image"); /* the CLI names the path */
  cJSON *mine = cJSON_Duplicate(doc, 1);
  cJSON_DeleteItemFromObject(mine, "timing_ms");
  cJSON_DeleteItemFromObject(mine, "image");
  CHECK(cJSON_Compare(mine, cdoc, 1));
  cJSON_Delete(mine);
  cJSON_Delete(cdoc);

  /* structured: the same words and maps */
  vlens_description *d = vlens_describe(m, img, &o);
  REQUIRE(d);
  CHECK(!strcmp(vlens_description_text(d), cJSON_GetObjectItem(doc, "text")->valuestring));
  REQUIRE(vlens_description_n_words(d) == cJSON_GetArraySize(words));
  REQUIRE(vlens_description_n_methods(d) == 2);
  CHECK(!strcmp(vlens_description_method(d, 0), "gradcam"));
  CHECK(!strcmp(vlens_description_method(d, 1), "attention"));
  CHECK(vlens_description_method(d, 2) == NULL);
  CHECK(vlens_description_word(d, vlens_description_n_words(d)) == NULL);
  for (int i = 0; i < vlens_description_n_words(d); i++) {
    const cJSON *jw = cJSON_GetArrayItem(words, i);
    CHECK(!strcmp(vlens_description_word(d, i), cJSON_GetObjectItem(jw, "text")->valuestring));
    for (int k = 0; k < 2; k++) {
      const char *meth = vlens_description_method(d, k);
      const vlens_heatmap *h = vlens_description_heatmap(d, i, meth);
      REQUIRE(h);
      CHECK(!strcmp(vlens_heatmap_method(h), meth));
      const cJSON *jh = cJSON_GetObjectItem(cJSON_GetObjectItem(jw, "explanations"), meth);
      REQUIRE(jh);
      int gw = 0, gh = 0;
      REQUIRE(vlens_heatmap_grid(h, &gw, &gh) == 0);
      CHECK(gw == cJSON_GetArrayItem(cJSON_GetObjectItem(jh, "grid"), 0)->valueint);
      CHECK(gh == cJSON_GetArrayItem(cJSON_GetObjectItem(jh, "grid"), 1)->valueint);
      const float *cells = vlens_heatmap_cells(h);
      const cJSON *jc = cJSON_GetObjectItem(jh, "cells");
      REQUIRE(cells && cJSON_GetArraySize(jc) == gw * gh);
      for (int c = 0; c < gw * gh; c++)
        CHECK_NEAR(cells[c], cJSON_GetArrayItem(jc, c)->valuedouble, 1e-6);
      vlens_heatmap_stats st;
      REQUIRE(vlens_heatmap_get_stats(h, &st) == 0);
      const cJSON *js = cJSON_GetObjectItem(jh, "stats");
      CHECK_NEAR(st.entropy, cJSON_GetObjectItem(js, "entropy")->valuedouble, 1e-6);
      CHECK_NEAR(st.max, cJSON_GetObjectItem(js, "max")->valuedouble, 1e-6);
      CHECK(!strcmp(st.region, cJSON_GetObjectItem(js, "region")->valuestring));
      CHECK_NEAR(st.peak_x, cJSON_GetArrayItem(cJSON_GetObjectItem(jh, "peak"), 0)->valuedouble,
                 1e-6);
      CHECK_NEAR(st.center_y, cJSON_GetArrayItem(cJSON_GetObjectItem(jh, "center"), 1)->valuedouble,
                 1e-6);
    }
  }
  /* NULL method: the first one; a method not asked for: NULL + message */
  CHECK(vlens_description_heatmap(d, 0, NULL) == vlens_description_heatmap(d, 0, "gradcam"));
  CHECK(vlens_description_heatmap(d, 0, "rollout") == NULL);
  CHECK(strstr(vlens_last_error(), "rollout") != NULL);
  CHECK(vlens_description_heatmap(d, -1, NULL) == NULL);
  vlens_description_free(d);
  cJSON_Delete(doc);
  vlens_free(s);
  vlens_image_free(img);
  vlens_model_free(m);
}

/* explain "w": only that word gets maps. */
static void test_describe_named_word(void) {
  vlens_model *m = vlens_model_load(test_shared_path(CAP));
  vlens_image *img = vlens_image_load(cap_image(), 0);
  REQUIRE(m && img);
  vlens_describe_opts o;
  vlens_describe_opts_init(&o);
  o.explain = "none";
  o.max_length = 6;
  vlens_description *all = vlens_describe(m, img, &o);
  REQUIRE(all && vlens_description_n_words(all) >= 2);
  char word[128];
  snprintf(word, sizeof word, "%s", vlens_description_word(all, 0));
  vlens_description_free(all);
  o.explain = word;
  vlens_description *d = vlens_describe(m, img, &o);
  REQUIRE(d);
  int with = 0;
  for (int i = 0; i < vlens_description_n_words(d); i++) {
    const vlens_heatmap *h = vlens_description_heatmap(d, i, NULL);
    CHECK((h != NULL) == !strcmp(vlens_description_word(d, i), word));
    with += h != NULL;
  }
  CHECK(with >= 1);
  vlens_description_free(d);
  vlens_image_free(img);
  vlens_model_free(m);
}

static void test_entail_json(void) {
  const char *dir = shapes_dir();
  REQUIRE(dir);
  vlens_model *m = vlens_model_load(dir);
  vlens_image *img = vlens_image_load(cap_image(), 0);
  REQUIRE(m && img);
  const char *hyp = "there is a red circle.";
  vlens_describe_opts o;
  vlens_describe_opts_init(&o);
  char *s = vlens_entail_json(m, img, hyp, &o);
  if (!s) printf("  %s\n", vlens_last_error());
  REQUIRE(s);
  cJSON *doc = cJSON_Parse(s);
  REQUIRE(doc);
  CHECK(!strcmp(cJSON_GetObjectItem(doc, "task")->valuestring, "entail"));
  CHECK(!strcmp(cJSON_GetObjectItem(doc, "hypothesis")->valuestring, hyp));
  char label[32];
  snprintf(label, sizeof label, "%s", cJSON_GetObjectItem(doc, "label")->valuestring);
  CHECK(!strcmp(label, "entailment") || !strcmp(label, "neutral") ||
        !strcmp(label, "contradiction"));
  const cJSON *p = cJSON_GetObjectItem(doc, "probs");
  double sum = cJSON_GetObjectItem(p, "entailment")->valuedouble +
               cJSON_GetObjectItem(p, "neutral")->valuedouble +
               cJSON_GetObjectItem(p, "contradiction")->valuedouble;
  CHECK_NEAR(sum, 1.0, 1e-5);
  CHECK(heatmap_ok(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "explanations"), "gradcam")));
  /* same decision and map as the CLI */
  char args[3000];
  snprintf(args, sizeof args, "entail %s \"%s\" -m %s --json", cap_image(), hyp, dir);
  cJSON *cdoc = cli_doc(args);
  REQUIRE(cdoc);
  CHECK(!strcmp(label, cJSON_GetObjectItem(cdoc, "label")->valuestring));
  CHECK(cJSON_Compare(cJSON_GetObjectItem(doc, "probs"), cJSON_GetObjectItem(cdoc, "probs"), 1));
  CHECK(cJSON_Compare(cJSON_GetObjectItem(doc, "explanations"),
                      cJSON_GetObjectItem(cdoc, "explanations"), 1));
  cJSON_Delete(cdoc);
  cJSON_Delete(doc);
  vlens_free(s);
  /* explain "none": the decision alone */
  o.explain = "none";
  s = vlens_entail_json(m, img, hyp, &o);
  REQUIRE(s);
  doc = cJSON_Parse(s);
  REQUIRE(doc);
  CHECK(!strcmp(cJSON_GetObjectItem(doc, "label")->valuestring, label));
  const cJSON *ex = cJSON_GetObjectItem(doc, "explanations");
  CHECK(!ex || cJSON_GetArraySize(ex) == 0);
  cJSON_Delete(doc);
  vlens_free(s);
  vlens_image_free(img);
  vlens_model_free(m);
}

/* ---- all_layers / all_heads: the per-layer / per-head maps -------------- */

typedef struct {
  int vision_layers, text_layers, heads;
} model_dims;

/* Layer and head counts of a model folder, from its config.json: Grad-CAM's
 * layers are the vision blocks, attention's the decoder layers, and a head
 * index must exist in both stacks. 0 when the file cannot be read. */

static int read_dims(const char *dir, model_dims *d) {
  char path[1200];
  snprintf(path, sizeof path, "%s/config.json", dir);
  size_t n;
  char *text = (char *)test_read_file(path, &n);
  cJSON *c = text ? cJSON_ParseWithLength(text, n) : NULL;
  free(text);
  const cJSON *v = cJSON_GetObjectItem(c, "vision_config"),
              *t = cJSON_GetObjectItem(c, "text_config");
  const cJSON *vl = cJSON_GetObjectItem(v, "num_hidden_layers"),
              *tl = cJSON_GetObjectItem(t, "num_hidden_layers"),
              *vh = cJSON_GetObjectItem(v, "num_attention_heads"),
              *th = cJSON_GetObjectItem(t, "num_attention_heads");
  int ok = cJSON_IsNumber(vl) && cJSON_IsNumber(tl) && cJSON_IsNumber(vh) && cJSON_IsNumber(th);
  if (ok) {
    d->vision_layers = vl->valueint;
    d->text_layers = tl->valueint;
    d->heads = vh->valueint < th->valueint ? vh->valueint : th->valueint;
  }
  cJSON_Delete(c);
  return ok;
}

/* "heads" of a heatmap object: n maps with "head" 0..n-1 (n == 0: absent). */
static int heads_ok(const cJSON *obj, int n) {
  const cJSON *heads = cJSON_GetObjectItem(obj, "heads");
  if (n == 0) return heads == NULL;
  if (cJSON_GetArraySize(heads) != n) return 0;
  for (int h = 0; h < n; h++) {
    const cJSON *e = cJSON_GetArrayItem(heads, h), *idx = cJSON_GetObjectItem(e, "head");
    if (!heatmap_ok(e) || !cJSON_IsNumber(idx) || idx->valueint != h) return 0;
  }
  return 1;
}

/* Method object `method` of an "explanations" object: n_layers "layers"
 * (lowest first, each with layer_heads "heads") and n_heads "heads"; 0:
 * absent. */
static int slices_ok(const cJSON *expl, const char *method, int n_layers, int layer_heads,
                     int n_heads) {
  const cJSON *m = cJSON_GetObjectItem(expl, method), *layers = cJSON_GetObjectItem(m, "layers");
  if (!heatmap_ok(m) || !heads_ok(m, n_heads)) return 0;
  if (n_layers == 0) return layers == NULL;
  if (cJSON_GetArraySize(layers) != n_layers) return 0;
  for (int l = 0; l < n_layers; l++) {
    const cJSON *e = cJSON_GetArrayItem(layers, l), *idx = cJSON_GetObjectItem(e, "layer_index");
    if (!heatmap_ok(e) || !cJSON_IsNumber(idx) || idx->valueint != l || !heads_ok(e, layer_heads))
      return 0;
  }
  return 1;
}

/* doc without what differs from the CLI's: the timings and the image path. */
static void drop_cli_differences(cJSON *doc) {
  cJSON_DeleteItemFromObject(doc, "timing_ms");
  cJSON_DeleteItemFromObject(doc, "image");
}

/* describe with all_layers + all_heads: every explained token and word has
 * the slices (Grad-CAM: layers; attention: layers with their heads, and
 * heads; rollout: heads), the document equals the CLI's with --layer all
 * --heads, and without the flags none of them is there. */
static void test_describe_slices(void) {
  model_dims dims;
  REQUIRE(read_dims(test_shared_path(CAP), &dims));
  REQUIRE(dims.vision_layers > 0 && dims.text_layers > 0 && dims.heads > 0);
  vlens_model *m = vlens_model_load(test_shared_path(CAP));
  vlens_image *img = vlens_image_load(cap_image(), 0);
  REQUIRE(m && img);
  vlens_describe_opts o;
  vlens_describe_opts_init(&o);
  CHECK(o.all_layers == 0 && o.all_heads == 0);
  o.methods = "gradcam,attention,rollout";
  o.max_length = 6;
  for (int with = 1; with >= 0; with--) {
    o.all_layers = o.all_heads = with;
    char *s = vlens_describe_json(m, img, &o);
    if (!s) printf("  %s\n", vlens_last_error());
    REQUIRE(s);
    cJSON *doc = cJSON_Parse(s);
    REQUIRE(doc);
    const int nv = with ? dims.vision_layers : 0, nt = with ? dims.text_layers : 0,
              nh = with ? dims.heads : 0;
    int explained = 0;
    const char *lists[] = {"tokens", "words"};
    for (int k = 0; k < 2; k++) {
      const cJSON *item;
      cJSON_ArrayForEach(item, cJSON_GetObjectItem(doc, lists[k])) {
        const cJSON *ex = cJSON_GetObjectItem(item, "explanations");
        if (!ex) continue;
        explained++;
        CHECK(slices_ok(ex, "gradcam", nv, 0, 0));
        CHECK(slices_ok(ex, "attention", nt, nh, nh));
        CHECK(slices_ok(ex, "rollout", 0, 0, nh));
      }
    }
    CHECK(explained >= 2);
    if (with) { /* the same maps as the CLI's */
      char args[2400];
      snprintf(args, sizeof args,
               "describe %s -m %s --json --method gradcam,attention,rollout --max-length 6 "
               "--layer all --heads",
               cap_image(), test_shared_path(CAP));
      cJSON *cdoc = cli_doc(args);
      REQUIRE(cdoc);
      drop_cli_differences(cdoc);
      drop_cli_differences(doc);
      CHECK(cJSON_Compare(doc, cdoc, 1));
      cJSON_Delete(cdoc);
    }
    cJSON_Delete(doc);
    vlens_free(s);
  }
  vlens_image_free(img);
  vlens_model_free(m);
}

/* entail: all_layers and all_heads each add their own slices to the
 * decision's maps (as the CLI's --layer all, --heads), neither: none. */
static void test_entail_slices(void) {
  const char *dir = shapes_dir();
  REQUIRE(dir);
  model_dims dims;
  REQUIRE(read_dims(dir, &dims));
  REQUIRE(dims.vision_layers > 0 && dims.text_layers > 0 && dims.heads > 0);
  vlens_model *m = vlens_model_load(dir);
  vlens_image *img = vlens_image_load(cap_image(), 0);
  REQUIRE(m && img);
  const char *hyp = "there is a red circle.";
  vlens_describe_opts o;
  vlens_describe_opts_init(&o);
  o.methods = "gradcam,attention";
  const struct {
    int layers, heads;
    const char *cli_flags;
  } cases[] = {{1, 0, "--layer all"}, {0, 1, "--heads"}, {0, 0, ""}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    o.all_layers = cases[i].layers;
    o.all_heads = cases[i].heads;
    char *s = vlens_entail_json(m, img, hyp, &o);
    if (!s) printf("  %s\n", vlens_last_error());
    REQUIRE(s);
    cJSON *doc = cJSON_Parse(s);
    REQUIRE(doc);
    const cJSON *ex = cJSON_GetObjectItem(doc, "explanations");
    const int nh = o.all_heads ? dims.heads : 0;
    CHECK(slices_ok(ex, "gradcam", o.all_layers ? dims.vision_layers : 0, 0, 0));
    CHECK(slices_ok(ex, "attention", o.all_layers ? dims.text_layers : 0, 0, nh));
    char args[3000];
    snprintf(args, sizeof args, "entail %s \"%s\" -m %s --json --method gradcam,attention %s",
             cap_image(), hyp, dir, cases[i].cli_flags);
    cJSON *cdoc = cli_doc(args);
    REQUIRE(cdoc);
    CHECK(cJSON_Compare(ex, cJSON_GetObjectItem(cdoc, "explanations"), 1));
    cJSON_Delete(cdoc);
    cJSON_Delete(doc);
    vlens_free(s);
  }
  vlens_image_free(img);
  vlens_model_free(m);
}

typedef struct {
  char text[4096];
  size_t len;
  int calls, stop_after;
} stream;

static int on_text(void *user, const char *text, size_t len) {
  stream *s = user;
  if (s->len + len < sizeof s->text) {
    memcpy(s->text + s->len, text, len);
    s->len += len;
    s->text[s->len] = 0;
  }
  s->calls++;
  return s->stop_after && s->calls >= s->stop_after;
}

/* Greedy generation: the streamed text is the returned text, and prompt +
 * text is what `vlens generate` (greedy, the task-level decode) prints. */
static void test_generate_greedy(void) {
  vlens_model *m = vlens_model_load(test_shared_path(LLM));
  REQUIRE(m);
  vlens_gen_opts o;
  vlens_gen_opts_init(&o);
  CHECK(o.max_tokens == 128 && o.temperature == 0);
  o.max_tokens = 8;
  o.ignore_eos = 1; /* random weights: a fixed number of tokens */
  stream s = {0};
  char *out = NULL;
  const char *prompt = "Hello, what is";
  int rc = vlens_generate(m, prompt, &o, on_text, &s, &out);
  if (rc) printf("  %s\n", vlens_last_error());
  REQUIRE(rc == 0 && out);
  CHECK(!strcmp(out, s.text));
  CHECK(s.calls == 8);
  CHECK(strlen(out) > 0);
  char args[2400];
  snprintf(args, sizeof args, "generate -m %s -p \"%s\" -n 8 --ignore-eos", test_shared_path(LLM),
           prompt);
  char *cli = run_cli(args);
  REQUIRE(cli);
  char want[8192];
  snprintf(want, sizeof want, "%s%s", prompt, out);
  CHECK(!strcmp(cli, want));
  free(cli);
  /* again without a callback: the same text; a callback that stops early */
  char *again = NULL;
  REQUIRE(vlens_generate(m, prompt, &o, NULL, NULL, &again) == 0);
  CHECK(!strcmp(again, out));
  stream s2 = {.stop_after = 3};
  char *part = NULL;
  REQUIRE(vlens_generate(m, prompt, &o, on_text, &s2, &part) == 0);
  CHECK(s2.calls == 3 && !strcmp(part, s2.text));
  CHECK(!strncmp(part, out, strlen(part)) && strlen(part) <= strlen(out));
  /* an F16 KV cache: the same greedy text on this model */
  CHECK(o.kv_f16 == 0);
  o.kv_f16 = 1;
  char *f16 = NULL;
  REQUIRE(vlens_generate(m, prompt, &o, NULL, NULL, &f16) == 0);
  CHECK(!strcmp(f16, out));
  vlens_free(f16);
  o.kv_f16 = 0;
  /* NULL opts: the defaults (greedy); out NULL is allowed */
  stream s3 = {.stop_after = 2};
  CHECK(vlens_generate(m, prompt, NULL, on_text, &s3, NULL) == 0);
  CHECK(s3.calls == 2);
  vlens_free(part);
  vlens_free(again);
  vlens_free(out);
  vlens_model_free(m);
}

static void expect_error(int failed, const char *needle) {
  CHECK(failed);
  CHECK(strlen(vlens_last_error()) > 0);
  if (needle && !strstr(vlens_last_error(), needle)) {
    printf("  message '%s' lacks '%s'\n", vlens_last_error(), needle);
    CHECK(0);
  }
}

static void test_errors(void) {
  char missing[1200];
  snprintf(missing, sizeof missing, "%s/no-such-folder", test_tmpdir());
  expect_error(vlens_model_load(NULL) == NULL, NULL);
  expect_error(vlens_model_load(missing) == NULL, "no-such-folder");
  unsetenv("VLENS_MODELS");
  expect_error(vlens_model_load("no-such-model") == NULL, "models/no-such-model");
  expect_error(vlens_model_load(cap_image()) == NULL, "not a model folder");
  /* a folder of a kind the library does not serve */
  expect_error(vlens_model_load(test_shared_path("golden/clip-a")) == NULL, "clip-a");

  vlens_model *c = vlens_model_load(test_shared_path(CAP));
  vlens_model *q = vlens_model_load(test_shared_path(LLM));
  vlens_image *img = vlens_image_load(cap_image(), 0);
  REQUIRE(c && q && img);
  char *text = (char *)"x";
  expect_error(vlens_caption(NULL, img, &text) < 0, "NULL");
  CHECK(text == NULL);
  expect_error(vlens_caption(c, NULL, &text) < 0, "image");
  expect_error(vlens_caption(q, img, &text) < 0, "captioner");
  expect_error(vlens_describe_json(NULL, img, NULL) == NULL, NULL);
  expect_error(vlens_entail_json(c, img, "", NULL) == NULL, "hypothesis");
  /* entail needs yes/maybe/no in the vocabulary */
  expect_error(vlens_entail_json(c, img, "a photo", NULL) == NULL, "yes");

  vlens_describe_opts o;
  vlens_describe_opts_init(&o);
  o.methods = "nope";
  expect_error(vlens_describe_json(c, img, &o) == NULL, "nope");
  vlens_describe_opts_init(&o);
  o.layer = -5;
  expect_error(vlens_describe_json(c, img, &o) == NULL, "layer");
  o.layer = 99;
  expect_error(vlens_describe(c, img, &o) == NULL, "99");
  vlens_describe_opts_init(&o);
  o.sharpen = -1;
  expect_error(vlens_describe_json(c, img, &o) == NULL, "sharpen");
  vlens_describe_opts_init(&o);
  o.max_length = 1;
  expect_error(vlens_describe(c, img, &o) == NULL, "max_length");

  char *out = (char *)"x";
  expect_error(vlens_generate(NULL, "hi", NULL, NULL, NULL, &out) < 0, "NULL");
  CHECK(out == NULL);
  expect_error(vlens_generate(c, "hi", NULL, NULL, NULL, &out) < 0, "llm");
  expect_error(vlens_generate(q, "", NULL, NULL, NULL, &out) < 0, "prompt");
  vlens_gen_opts g;
  vlens_gen_opts_init(&g);
  g.max_tokens = 0;
  expect_error(vlens_generate(q, "hi", &g, NULL, NULL, &out) < 0, "max tokens");
  vlens_gen_opts_init(&g);
  g.top_p = 0;
  expect_error(vlens_generate(q, "hi", &g, NULL, NULL, &out) < 0, "top");
  vlens_gen_opts_init(&g);
  g.n_stop = 2;
  expect_error(vlens_generate(q, "hi", &g, NULL, NULL, &out) < 0, "stop");
  CHECK(out == NULL);

  vlens_heatmap_stats st;
  expect_error(vlens_heatmap_get_stats(NULL, &st) < 0, NULL);
  expect_error(vlens_description_heatmap(NULL, 0, NULL) == NULL, NULL);
  CHECK(vlens_model_kind(NULL) == 0 && !strcmp(vlens_model_name(NULL), ""));
  vlens_model_free(NULL);
  vlens_description_free(NULL);
  vlens_free(NULL);
  vlens_image_free(img);
  vlens_model_free(c);
  vlens_model_free(q);
}

/* Chat: turn 1's reply is what generate gives on the Qwen3 template over
 * system + user (thinking off); after a reset the same message gets the same
 * reply; a second turn streams what it returns. */
static void test_chat(void) {
  vlens_model *m = vlens_model_load(test_shared_path(LLM));
  REQUIRE(m);
  vlens_gen_opts o;
  vlens_gen_opts_init(&o);
  o.max_tokens = 6;
  o.ignore_eos = 1;
  vlens_chat *c = vlens_chat_new(m, "Be brief.", &o);
  if (!c) printf("  %s\n", vlens_last_error());
  REQUIRE(c);
  stream s = {0};
  char *r1 = NULL;
  REQUIRE(vlens_chat_send(c, "hello there", on_text, &s, &r1) == 0);
  REQUIRE(r1);
  CHECK(!strcmp(r1, s.text) && s.calls == 6);
  char *want = NULL;
  REQUIRE(vlens_generate(m,
                         "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhello "
                         "there<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
                         &o, NULL, NULL, &want) == 0);
  CHECK(!strcmp(r1, want));
  stream s2 = {0};
  char *r2 = NULL;
  REQUIRE(vlens_chat_send(c, "and again", on_text, &s2, &r2) == 0);
  CHECK(r2 && !strcmp(r2, s2.text) && s2.calls == 6);
  vlens_chat_reset(c);
  char *r3 = NULL;
  REQUIRE(vlens_chat_send(c, "hello there", NULL, NULL, &r3) == 0);
  CHECK(r3 && !strcmp(r3, r1));
  /* the same chat with an F16 KV cache */
  o.kv_f16 = 1;
  vlens_chat *c16 = vlens_chat_new(m, "Be brief.", &o);
  REQUIRE(c16);
  char *r4 = NULL;
  REQUIRE(vlens_chat_send(c16, "hello there", NULL, NULL, &r4) == 0);
  CHECK(r4 && !strcmp(r4, r1));
  vlens_free(r4);
  vlens_chat_free(c16);
  o.kv_f16 = 0;
  expect_error(vlens_chat_send(NULL, "x", NULL, NULL, NULL) < 0, "NULL");
  expect_error(vlens_chat_send(c, NULL, NULL, NULL, NULL) < 0, "message");
  o.max_tokens = 0;
  expect_error(vlens_chat_new(m, NULL, &o) == NULL, "max_tokens");
  vlens_model *cap = vlens_model_load(test_shared_path(CAP));
  REQUIRE(cap);
  expect_error(vlens_chat_new(cap, NULL, NULL) == NULL, "llm");
  vlens_model_free(cap);
  vlens_free(r1);
  vlens_free(r2);
  vlens_free(r3);
  vlens_free(want);
  vlens_chat_free(c);
  vlens_chat_free(NULL);
  vlens_model_free(m);
}

int main(void) {
  RUN(test_model_load_and_kind);
  RUN(test_caption_matches_cli);
  RUN(test_describe_json_and_heatmaps);
  RUN(test_describe_named_word);
  RUN(test_entail_json);
  RUN(test_describe_slices);
  RUN(test_entail_slices);
  RUN(test_generate_greedy);
  RUN(test_errors);
  RUN(test_chat);
  return test_summary();
}
