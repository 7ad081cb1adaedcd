/* vlens eval on a tiny generated Shapes World set, and the task commands'
 * error path through the CLI binary (build/<variant>/vlens). */
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "base/log.h"
#include "io/shapes_world.h"
#include "tasks/eval.h"
#include "tasks/model_paths.h"
#include "tasks/train.h"
#include "test.h"

static char g_model[1024], g_set[1024];

static int setup(void) {
  if (g_model[0]) return 1;
  snprintf(g_model, sizeof g_model, "%s/tiny", test_tmpdir());
  snprintf(g_set, sizeof g_set, "%s/set", test_tmpdir());
  if (vl_train_init_model(g_model, "tiny", 0, 11) || vl_shapes_write_set(g_set, 9, 10, NULL)) {
    printf("  setup: %s\n", vl_last_error());
    g_model[0] = 0;
    return 0;
  }
  return 1;
}

static void test_eval_numbers_consistent(void) {
  REQUIRE(setup());
  vl_blip *m = vl_blip_load(g_model);
  REQUIRE(m);
  vl_explain_cfg cfg;
  REQUIRE(vl_explain_cfg_parse(&cfg, "gradcam,attention") == VL_OK);
  vl_eval_opts o = {.max_scenes = 0};
  vl_eval_result r;
  int rc = vl_eval(m, g_set, &o, &cfg, &r);
  if (rc) printf("  %s\n", vl_last_error());
  REQUIRE(rc == VL_OK);
  CHECK(r.scenes == 10);
  CHECK(r.hypotheses == 30);
  int sum = 0, diag = 0, tpl = 0;
  for (int g = 0; g < 3; g++)
    for (int p = 0; p < 3; p++) {
      sum += r.confusion[g][p];
      diag += g == p ? r.confusion[g][p] : 0;
    }
  for (int t = 0; t < 5; t++)
    tpl += r.tpl_n[t];
  CHECK(sum == r.hypotheses && diag == r.correct && tpl == r.hypotheses);
  /* random was added as the baseline; every method saw every target */
  CHECK(r.n_methods == 3 && !strcmp(r.methods[2], "random"));
  /* expected targets from the scenes themselves */
  int words = 0, decisions = 0;
  for (int i = 0; i < 10; i++) {
    vl_shapes_scene *sc = vl_shapes_generate(9, i, NULL);
    REQUIRE(sc);
    words += 2 * sc->n_objects; /* colour + shape word of each phrase */
    for (int h = 0; h < sc->n_hypotheses; h++)
      decisions +=
          sc->hypotheses[h].n_referents == 1 && sc->hypotheses[h].label != VL_LABEL_CONTRADICTION;
    vl_shapes_free(sc);
  }
  for (int k = 0; k < r.n_methods; k++) {
    CHECK(r.word[k].n == words);
    CHECK(r.decision[k].n == decisions);
    CHECK(r.word[k].hits >= 0 && r.word[k].hits <= r.word[k].n);
    CHECK(r.word[k].mass >= 0 && r.word[k].mass <= r.word[k].n + 1e-9);
  }
  CHECK(r.center_word.n == words);
  /* captions by object count, from the scenes themselves */
  int by_objects[4] = {0}, exact_sum = 0, scene_sum = 0;
  for (int i = 0; i < 10; i++) {
    vl_shapes_scene *sc = vl_shapes_generate(9, i, NULL);
    REQUIRE(sc);
    by_objects[sc->n_objects - 1]++;
    vl_shapes_free(sc);
  }
  for (int k = 0; k < 4; k++) {
    CHECK(r.scenes_by_objects[k] == by_objects[k]);
    CHECK(r.exact_by_objects[k] >= 0 && r.exact_by_objects[k] <= r.scenes_by_objects[k]);
    exact_sum += r.exact_by_objects[k];
    scene_sum += r.scenes_by_objects[k];
  }
  CHECK(exact_sum == r.caption_exact && scene_sum == r.scenes);
  CHECK(r.caption_order_only >= 0 && r.caption_order_only <= r.scenes - r.caption_exact);
  /* a random peak lands in the box about as often as the box's share of cells */
  double chance = r.chance_word / words, rnd = r.word[2].hits / words;
  CHECK(chance > 0.02 && chance < 0.5);
  CHECK(fabs(rnd - chance) < 0.2);
  char *txt = vl_eval_report_text(&r, "tiny", g_set);
  REQUIRE(txt);
  const char *want[] = {"caption: exact match",
                        "entailment: accuracy",
                        "per template",
                        "relation",
                        "confusion matrix",
                        "pointing game",
                        "gradcam",
                        "random",
                        "center",
                        "chance",
                        "latency"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    CHECK(strstr(txt, want[i]));
  free(txt);
  cJSON *j = vl_eval_to_json(&r, "tiny", g_set);
  REQUIRE(j);
  cJSON *mat = cJSON_GetObjectItem(
      cJSON_GetObjectItem(cJSON_GetObjectItem(j, "entailment"), "confusion"), "matrix");
  CHECK(cJSON_GetArraySize(mat) == 3);
  CHECK(cJSON_GetObjectItem(
      cJSON_GetObjectItem(cJSON_GetObjectItem(j, "explanations"), "caption_words"), "random"));
  cJSON_Delete(j);
  o.max_scenes = 2;
  REQUIRE(vl_eval(m, g_set, &o, &cfg, &r) == VL_OK);
  CHECK(r.scenes == 2 && r.hypotheses == 6);
  CHECK(vl_eval(m, "/nonexistent-set", &o, &cfg, &r) == VL_ERR_IO);
  CHECK(strstr(vl_last_error(), "/nonexistent-set/manifest.jsonl"));
  CHECK(vl_eval_template_of("there is a small red circle.") == VL_TPL_EXISTS_SIZED);
  /* order-only caption errors */
  bool re = true;
  const char *gold = "a small red circle, a large blue square and a small red circle.";
  CHECK(vl_eval_phrases_reordered("a large blue square, a small red circle and a small red "
                                  "circle.",
                                  gold, &re) == VL_OK &&
        re);
  CHECK(vl_eval_phrases_reordered(gold, gold, &re) == VL_OK && !re); /* same order */
  CHECK(vl_eval_phrases_reordered("a large blue square, a large blue square and a small red "
                                  "circle.",
                                  gold, &re) == VL_OK &&
        !re); /* not the same phrases, counted with multiplicity */
  CHECK(vl_eval_phrases_reordered("a large blue square and a small red circle.", gold, &re) ==
            VL_OK &&
        !re); /* a phrase missing */
  CHECK(vl_eval_phrases_reordered("a small red circle.", "a small red circle.", &re) == VL_OK &&
        !re);
  CHECK(vl_eval_template_of("the red circle is left of the blue square.") == VL_TPL_RELATION);
  CHECK(vl_eval_template_of("the red circle is heavy.") == VL_TPL_UNKNOWABLE);
  vl_explain_cfg_free(&cfg);
  vl_blip_free(m);
}

/* ---- --faithfulness with the embedded model ---------------------------- */

static const char *const k_kinds[2] = {"caption_words", "decisions"};

/* The mean curves of n targets: points and AUCs in [0, 1], and step 0 of
 * deletion and the last step of insertion both show the untouched image. */
static void check_faith(const vl_eval_faith *f, int n) {
  CHECK(f->n == n);
  if (n == 0) return;
  double del = f->deletion_auc / n, ins = f->insertion_auc / n;
  CHECK(del >= 0 && del <= 1 && ins >= 0 && ins <= 1);
  for (int i = 0; i <= VL_FAITH_STEPS; i++)
    CHECK(f->deletion[i] >= 0 && f->deletion[i] <= n + 1e-9 && f->insertion[i] >= 0 &&
          f->insertion[i] <= n + 1e-9);
  CHECK_NEAR(f->deletion[0], f->insertion[VL_FAITH_STEPS], 1e-6 * n);
  CHECK_NEAR(del, vl_trapezoid_auc(f->deletion, VL_FAITH_STEPS + 1) / n, 1e-9);
}

static int min_i(int a, int b) { return a < b ? a : b; }

/* JSON of an eval with faithfulness on two scenes of the embedded model
 * (made once, shared by the tests below); NULL when it failed. */
static cJSON *g_faith_doc;

static void test_eval_faithfulness_embedded(void) {
  char model[1024], set[1200];
  REQUIRE(vl_model_default_path(VL_DEFAULT_CAPTIONER, NULL, "-m", model, sizeof model) == VL_OK);
  snprintf(set, sizeof set, "%s/faith-set", test_tmpdir());
  REQUIRE(vl_shapes_write_set(set, 21, 2, NULL) == VL_OK);
  vl_blip *m = vl_blip_load(model);
  REQUIRE(m);
  vl_explain_cfg cfg;
  REQUIRE(vl_explain_cfg_parse(&cfg, "gradcam") == VL_OK);
  cfg.faithfulness = true;
  vl_eval_opts o = {.faithfulness_max = 2};
  vl_eval_result r;
  int rc = vl_eval(m, set, &o, &cfg, &r);
  if (rc) printf("  %s\n", vl_last_error());
  REQUIRE(rc == VL_OK);
  CHECK(r.scenes == 2 && r.n_methods == 2 && r.faithfulness && r.faithfulness_max == 2);
  /* the first 2 targets of each kind (both scenes have more words; the
   * decisions may be fewer) */
  const int nw = min_i(2, r.word[0].n), nd = min_i(2, r.decision[0].n);
  CHECK(nw == 2);
  CHECK(r.faith_targets == nw + nd);
  for (int k = 0; k < r.n_methods; k++) {
    check_faith(&r.faith_word[k], nw);
    check_faith(&r.faith_decision[k], nd);
    /* the same targets: the untouched image gives every method the same start */
    CHECK_NEAR(r.faith_word[k].deletion[0], r.faith_word_random.deletion[0], 1e-9);
  }
  check_faith(&r.faith_word_random, nw);
  check_faith(&r.faith_decision_random, nd);
  CHECK(r.ms_faithfulness > 0);
  char *txt = vl_eval_report_text(&r, "shapes-blip", set);
  REQUIRE(txt);
  CHECK(strstr(txt, "faithfulness: mean deletion / insertion AUC"));
  CHECK(strstr(txt, "random order") && strstr(txt, "word del") && strstr(txt, "dec ins"));
  CHECK(strstr(txt, "faithfulness") && strstr(txt, "ms/target"));
  free(txt);
  cJSON *j = vl_eval_to_json(&r, "shapes-blip", set);
  REQUIRE(j);
  cJSON *fj = cJSON_GetObjectItem(j, "faithfulness");
  REQUIRE(fj);
  CHECK(cJSON_GetObjectItem(fj, "steps")->valueint == VL_FAITH_STEPS);
  CHECK(cJSON_GetObjectItem(fj, "max_targets")->valueint == 2);
  for (int kind = 0; kind < 2; kind++) {
    cJSON *kj = cJSON_GetObjectItem(fj, k_kinds[kind]);
    REQUIRE(kj);
    CHECK(cJSON_GetObjectItem(kj, "targets")->valueint == (kind ? nd : nw));
    cJSON *rows[3] = {
        cJSON_GetObjectItem(cJSON_GetObjectItem(kj, "methods"), "gradcam"),
        cJSON_GetObjectItem(cJSON_GetObjectItem(kj, "methods"), "random"),
        cJSON_GetObjectItem(kj, "random_order"),
    };
    for (int i = 0; i < 3; i++) {
      REQUIRE(rows[i]);
      double d = cJSON_GetObjectItem(rows[i], "deletion_auc")->valuedouble,
             in = cJSON_GetObjectItem(rows[i], "insertion_auc")->valuedouble;
      CHECK(d >= 0 && d <= 1 && in >= 0 && in <= 1);
      CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(rows[i], "deletion")) == VL_FAITH_STEPS + 1);
      CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(rows[i], "insertion")) == VL_FAITH_STEPS + 1);
    }
  }
  g_faith_doc = j;
  /* without --faithfulness the document has no such object */
  vl_eval_result r0;
  cfg.faithfulness = false;
  o.max_scenes = 1;
  REQUIRE(vl_eval(m, set, &o, &cfg, &r0) == VL_OK);
  CHECK(!r0.faithfulness && r0.faith_targets == 0 && r0.faith_word[0].n == 0);
  cJSON *j0 = vl_eval_to_json(&r0, "shapes-blip", set);
  CHECK(j0 && !cJSON_GetObjectItem(j0, "faithfulness"));
  cJSON_Delete(j0);
  vl_explain_cfg_free(&cfg);
  vl_blip_free(m);
}

/* Phrases of a caption as the spec writes it ("P1, P2 and P3."): the
 * strings between the joiners, an independent reading of eval.c's rule. */
static int split_phrases(const char *caption, char out[][64], int max) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s", caption);
  size_t len = strlen(buf);
  if (len && buf[len - 1] == '.') buf[len - 1] = 0;
  int n = 0;
  for (char *p = buf; *p && n < max;) {
    char *comma = strstr(p, ", "), *and = strstr(p, " and "), *e = comma;
    if (!e || (and&&and < e)) e = and;
    size_t k = e ? (size_t)(e - p) : strlen(p);
    snprintf(out[n++], 64, "%.*s", (int)k, p);
    p = e ? e + (e == comma ? 2 : 5) : p + k;
  }
  return n;
}

/* generated_words: the colour and shape word of every phrase the model got
 * right at its position, nothing else; with the embedded model on scenes of
 * up to three objects, where it gets some phrases right and some not. */
static void test_eval_generated_words(void) {
  char cap_dir[1024], dir[600];
  REQUIRE(vl_model_default_path(VL_DEFAULT_CAPTIONER, NULL, "--captioner", cap_dir,
                                sizeof cap_dir) == VL_OK);
  vl_blip *m = vl_blip_load(cap_dir);
  REQUIRE(m);
  snprintf(dir, sizeof dir, "%s/genset", test_tmpdir());
  vl_shapes_options so = vl_shapes_default_options();
  so.max_objects = 3; /* some phrases right, some not */
  enum { N = 10 };
  REQUIRE(vl_shapes_write_set(dir, 4242, N, &so) == VL_OK);
  vl_explain_cfg cfg;
  REQUIRE(vl_explain_cfg_parse(&cfg, "attention") == VL_OK);
  vl_eval_opts o = {.max_scenes = 0};
  vl_eval_result r;
  REQUIRE(vl_eval(m, dir, &o, &cfg, &r) == VL_OK);
  int expected = 0;
  for (int i = 0; i < N; i++) {
    vl_shapes_scene *sc = vl_shapes_generate(4242, i, &so);
    char path[700];
    snprintf(path, sizeof path, "%s/scene_%05d.png", dir, i + 1);
    vl_image *img = vl_image_load(path, 0);
    REQUIRE(sc && img);
    vl_describe_opts d = {.explain = "none"};
    vl_explain_cfg none = {0};
    vl_describe_result dr;
    REQUIRE(vl_describe(m, img, &d, &none, &dr) == VL_OK);
    char gold[8][64], gen[8][64];
    int ng = split_phrases(sc->caption, gold, 8), nd = split_phrases(dr.text, gen, 8);
    for (int k = 0; k < nd && k < ng; k++)
      expected += 2 * !strcmp(gold[k], gen[k]);
    vl_describe_result_free(&dr);
    vl_image_free(img);
    vl_shapes_free(sc);
  }
  printf("  %d generated-word targets (%d gold caption words)\n", expected, r.word[0].n);
  CHECK(expected > 0 && expected <= r.word[0].n);
  for (int k = 0; k < r.n_methods; k++)
    CHECK(r.gen_word[k].n == expected);
  CHECK(r.center_gen_word.n == expected);
  CHECK(r.gen_word[0].hits >= 0 && r.gen_word[0].hits <= expected);
  cJSON *j = vl_eval_to_json(&r, "shapes-blip", dir);
  REQUIRE(j);
  const cJSON *g = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "explanations"), "generated_words");
  CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(g, "attention"), "targets")->valueint == expected);
  cJSON_Delete(j);
  vl_explain_cfg_free(&cfg);
  vl_blip_free(m);
}

/* faithfulness_max 0: every target of one scene (the tiny model is cheap) */
static void test_eval_faithfulness_all_targets(void) {
  REQUIRE(setup());
  vl_blip *m = vl_blip_load(g_model);
  REQUIRE(m);
  vl_explain_cfg cfg;
  REQUIRE(vl_explain_cfg_parse(&cfg, "attention,random") == VL_OK);
  cfg.faithfulness = true;
  vl_eval_opts o = {.max_scenes = 1, .faithfulness_max = 0};
  vl_eval_result r;
  REQUIRE(vl_eval(m, g_set, &o, &cfg, &r) == VL_OK);
  CHECK(r.n_methods == 2); /* random asked for: not added twice */
  CHECK(r.faith_word_random.n == r.word[0].n && r.faith_decision_random.n == r.decision[0].n);
  CHECK(r.faith_targets == r.explain_targets);
  check_faith(&r.faith_word[0], r.word[0].n);
  check_faith(&r.faith_decision[1], r.decision[0].n);
  vl_explain_cfg_free(&cfg);
  vl_blip_free(m);
}

/* ---- docs/json-eval.md lists exactly the document's fields ------------- */

typedef struct {
  char path[256], type[128];
} doc_field;

/* The rows "| `path` | type | meaning |" of the table in docs/json-eval.md. */
static int read_doc_fields(doc_field *f, int cap) {
  size_t len;
  char *s = (char *)test_read_file("docs/json-eval.md", &len);
  if (!s) return -1;
  int n = 0;
  for (char *line = strtok(s, "\n"); line && n < cap; line = strtok(NULL, "\n")) {
    if (strncmp(line, "| `", 3)) continue;
    char *p = line + 3, *e = strchr(p, '`');
    if (!e) continue;
    snprintf(f[n].path, sizeof f[n].path, "%.*s", (int)(e - p), p);
    char *t = strchr(e, '|'), *te = t ? strchr(t + 1, '|') : NULL;
    if (!t || !te) continue;
    for (t++; *t == ' '; t++)
      ;
    while (te > t && te[-1] == ' ')
      te--;
    snprintf(f[n].type, sizeof f[n].type, "%.*s", (int)(te - t), t);
    n++;
  }
  free(s);
  return n;
}

/* Names a placeholder stands for in doc (NULL: not a placeholder). */
static int placeholder(const cJSON *doc, const char *seg, const char **names, int cap) {
  static const char *const tpl[5] = {"exists", "exists-sized", "count", "relation", "unknowable"};
  int n = 0;
  if (!strcmp(seg, "{kind}")) {
    names[n++] = k_kinds[0];
    names[n++] = k_kinds[1];
  } else if (!strcmp(seg, "{target}")) {
    names[n++] = k_kinds[0];
    names[n++] = "generated_words";
    names[n++] = k_kinds[1];
  } else if (!strcmp(seg, "{template}")) {
    for (int i = 0; i < 5; i++)
      names[n++] = tpl[i];
  } else if (!strcmp(seg, "{method}")) {
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(doc, "methods")) if (n < cap) names[n++] =
        m->valuestring;
  } else {
    return -1;
  }
  return n;
}

static bool type_ok(const cJSON *v, const char *type) {
  if (!strcmp(type, "string")) return cJSON_IsString(v);
  if (!strcmp(type, "number")) return cJSON_IsNumber(v);
  if (!strcmp(type, "integer")) return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble);
  if (!strcmp(type, "object")) return cJSON_IsObject(v);
  if (!strncmp(type, "array", 5)) {
    int want = 0;
    if (!cJSON_IsArray(v)) return false;
    return sscanf(type, "array of %d", &want) != 1 || cJSON_GetArraySize(v) == want;
  }
  printf("  docs/json-eval.md: unknown type '%s'\n", type);
  return false;
}

/* Every expansion of the documented path exists with the documented type. */
static void check_documented(const cJSON *doc, const cJSON *node, const char *path,
                             const char *type, const char *full) {
  const char *dot = strchr(path, '.');
  char seg[128];
  snprintf(seg, sizeof seg, "%.*s", dot ? (int)(dot - path) : (int)strlen(path), path);
  const char *names[32];
  int n = placeholder(doc, seg, names, 32);
  if (n < 0) {
    names[0] = seg;
    n = 1;
  }
  for (int i = 0; i < n; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(node, names[i]);
    if (!v) {
      printf("  %s: '%s' missing from the document\n", full, names[i]);
      CHECK(v);
    } else if (dot) {
      check_documented(doc, v, dot + 1, type, full);
    } else if (!type_ok(v, type)) {
      printf("  %s: not of type '%s'\n", full, type);
      CHECK(0);
    }
  }
}

/* Whether concrete path (segments) matches documented path pattern. */
static bool path_matches(const cJSON *doc, const char *pattern, const char *const *seg, int n) {
  char pat[256];
  snprintf(pat, sizeof pat, "%s", pattern);
  int i = 0;
  for (char *save = NULL, *p = strtok_r(pat, ".", &save); p; p = strtok_r(NULL, ".", &save), i++) {
    if (i >= n) return false;
    const char *names[32];
    int k = placeholder(doc, p, names, 32);
    bool ok = k < 0 && !strcmp(p, seg[i]);
    for (int j = 0; j < k && !ok; j++)
      ok = !strcmp(names[j], seg[i]);
    if (!ok) return false;
  }
  return i == n;
}

/* Every member of every object of the document is documented. */
static void check_listed(const cJSON *doc, const cJSON *node, const char **seg, int depth,
                         const doc_field *f, int nf) {
  const cJSON *c;
  cJSON_ArrayForEach(c, node) {
    seg[depth] = c->string;
    bool found = false;
    for (int i = 0; i < nf && !found; i++)
      found = path_matches(doc, f[i].path, seg, depth + 1);
    if (!found) {
      printf("  field '");
      for (int d = 0; d <= depth; d++)
        printf("%s%s", d ? "." : "", seg[d]);
      printf("' is not in docs/json-eval.md\n");
      CHECK(found);
    }
    if (cJSON_IsObject(c) && depth < 15) check_listed(doc, c, seg, depth + 1, f, nf);
  }
}

static void test_eval_json_matches_doc(void) {
  REQUIRE(g_faith_doc);
  doc_field f[128];
  int nf = read_doc_fields(f, 128);
  REQUIRE(nf > 40);
  for (int i = 0; i < nf; i++)
    check_documented(g_faith_doc, g_faith_doc, f[i].path, f[i].type, f[i].path);
  const char *seg[16];
  check_listed(g_faith_doc, g_faith_doc, seg, 0, f, nf);
  /* the counts agree with the rates */
  cJSON *c = cJSON_GetObjectItem(g_faith_doc, "caption");
  CHECK_NEAR(cJSON_GetObjectItem(c, "word_accuracy")->valuedouble,
             cJSON_GetObjectItem(c, "words_right")->valuedouble /
                 cJSON_GetObjectItem(c, "words")->valuedouble,
             1e-9);
  cJSON_Delete(g_faith_doc);
  g_faith_doc = NULL;
}

/* Runs the CLI; stdout / stderr into buffers; returns the exit status. */
static int run_cli(const char *args, char *out, size_t on, char *err, size_t en) {
  const char *exe = test_vlens_exe();
  if (!exe) return -1;
  char cmd[8192], fo[1200], fe[1200];
  snprintf(fo, sizeof fo, "%s/cli.out", test_tmpdir());
  snprintf(fe, sizeof fe, "%s/cli.err", test_tmpdir());
  snprintf(cmd, sizeof cmd, "%s %s > %s 2> %s", exe, args, fo, fe);
  int st = system(cmd);
  size_t n;
  unsigned char *b = test_read_file(fo, &n);
  snprintf(out, on, "%s", b ? (char *)b : "");
  free(b);
  b = test_read_file(fe, &n);
  snprintf(err, en, "%s", b ? (char *)b : "");
  free(b);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* non-zero exit, ONE line on stderr containing `needle`, and with --json
 * the error document on stdout */
static void expect_error(const char *args, const char *needle) {
  char out[8192], err[8192];
  int st = run_cli(args, out, sizeof out, err, sizeof err);
  CHECK(st > 0);
  const char *nl = strchr(err, '\n');
  CHECK(nl && nl[1] == 0);
  if (!strstr(err, needle)) printf("  '%s' not in: %s", needle, err);
  CHECK(strstr(err, needle));
  if (strstr(args, "--json")) {
    cJSON *j = cJSON_Parse(out);
    CHECK(j && cJSON_GetObjectItem(j, "error"));
    cJSON *e = cJSON_GetObjectItem(j, "error");
    CHECK(e && cJSON_IsString(cJSON_GetObjectItem(e, "code")) &&
          strstr(cJSON_GetObjectItem(e, "message")->valuestring, needle));
    cJSON_Delete(j);
  }
}

static void test_cli_errors_and_json(void) {
  REQUIRE(setup());
  char a[4096];
  snprintf(a, sizeof a, "describe /nonexistent/img.png -m %s --json", g_model);
  expect_error(a, "/nonexistent/img.png");
  snprintf(a, sizeof a, "describe %s/scene_00001.png -m /nonexistent/model --json", g_set);
  expect_error(a, "/nonexistent/model");
  snprintf(a, sizeof a, "describe %s/scene_00001.png -m %s --method gradcam,bogus --json", g_set,
           g_model);
  expect_error(a, "bogus");
  snprintf(a, sizeof a, "describe %s/scene_00001.png -m %s --layer 7 --json", g_set, g_model);
  expect_error(a, "--layer 7");
  snprintf(a, sizeof a, "entail %s/scene_00001.png -m %s", g_set, g_model);
  expect_error(a, "sentence");
  snprintf(a, sizeof a, "eval /nonexistent-set -m %s --json", g_model);
  expect_error(a, "manifest.jsonl");
  char def[1024];
  if (vl_model_default_path(VL_DEFAULT_CAPTIONER, NULL, "-m", def, sizeof def) != VL_OK) {
    snprintf(a, sizeof a, "describe %s/scene_00001.png --json", g_set);
    expect_error(a, "models/shapes-blip");
    expect_error(a, "-m DIR");
  }
  /* the happy paths print one valid document */
  char out[1 << 16], err[8192];
  snprintf(a, sizeof a, "entail %s/scene_00001.png \"there is a red circle.\" -m %s --json -q",
           g_set, g_model);
  REQUIRE(run_cli(a, out, sizeof out, err, sizeof err) == 0);
  cJSON *j = cJSON_Parse(out);
  REQUIRE(j);
  CHECK(!strcmp(cJSON_GetObjectItem(j, "task")->valuestring, "entail"));
  CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "explanations"), "gradcam"));
  cJSON_Delete(j);
  snprintf(a, sizeof a, "eval %s -m %s --max-scenes 1", g_set, g_model);
  REQUIRE(run_cli(a, out, sizeof out, err, sizeof err) == 0);
  CHECK(strstr(out, "confusion matrix") && strstr(out, "pointing game"));
  snprintf(a, sizeof a, "eval %s -m %s --max-scenes 1 --faithfulness --faithfulness-max 1", g_set,
           g_model);
  REQUIRE(run_cli(a, out, sizeof out, err, sizeof err) == 0);
  CHECK(strstr(out, "faithfulness: mean deletion / insertion AUC") && strstr(out, "random order"));
  snprintf(a, sizeof a, "eval %s -m %s --faithfulness-max -1 --json", g_set, g_model);
  expect_error(a, "--faithfulness-max '-1'");
  /* --layer all / --heads: per-layer and per-head maps added to the method
   * objects (tasks/explain_slices.h, test_describe checks the maps) */
  snprintf(a, sizeof a,
           "describe %s/scene_00001.png -m %s --method gradcam,attention,relevancy --layer all "
           "--heads --explain none --json",
           g_set, g_model);
  REQUIRE(run_cli(a, out, sizeof out, err, sizeof err) == 0);
  j = cJSON_Parse(out);
  REQUIRE(j);
  cJSON_Delete(j);
  snprintf(a, sizeof a,
           "entail %s/scene_00001.png \"there is a red circle.\" -m %s --method "
           "gradcam,attention,relevancy --layer all --heads --json",
           g_set, g_model);
  REQUIRE(run_cli(a, out, sizeof out, err, sizeof err) == 0);
  j = cJSON_Parse(out);
  REQUIRE(j);
  cJSON *e = cJSON_GetObjectItem(j, "explanations");
  cJSON *gl = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "gradcam"), "layers");
  CHECK(cJSON_GetArraySize(gl) >= 1);
  CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(gl, 0), "layer_index")->valueint == 0);
  cJSON *ah = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "attention"), "heads");
  CHECK(cJSON_GetArraySize(ah) >= 2);
  CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(ah, 1), "head")->valueint == 1);
  CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "relevancy"), "heads"));
  CHECK(!cJSON_GetObjectItem(cJSON_GetObjectItem(e, "relevancy"), "layers"));
  cJSON_Delete(j);
  /* --heads H is still the one head H; the text output lists every layer
   * (the tiny model has one vision block) */
  snprintf(a, sizeof a,
           "entail %s/scene_00001.png \"there is a red circle.\" -m %s --method attention "
           "--heads 1 --json",
           g_set, g_model);
  REQUIRE(run_cli(a, out, sizeof out, err, sizeof err) == 0);
  j = cJSON_Parse(out);
  REQUIRE(j);
  CHECK(!cJSON_GetObjectItem(
      cJSON_GetObjectItem(cJSON_GetObjectItem(j, "explanations"), "attention"), "heads"));
  cJSON_Delete(j);
  snprintf(
      a, sizeof a,
      "entail %s/scene_00001.png \"there is a red circle.\" -m %s --method gradcam --layer all",
      g_set, g_model);
  REQUIRE(run_cli(a, out, sizeof out, err, sizeof err) == 0);
  CHECK(strstr(out, "    gradcam vision.blocks.0 ") && strstr(out, " peak ("));
  snprintf(a, sizeof a, "eval %s -m %s --layer all --json", g_set, g_model);
  expect_error(a, "--layer all");
  snprintf(a, sizeof a, "describe %s/scene_00001.png -m %s --layer some --json", g_set, g_model);
  expect_error(a, "--layer 'some'");
}

int main(void) {
  vl_log_set_quiet(1);
  RUN(test_eval_numbers_consistent);
  RUN(test_eval_faithfulness_embedded);
  RUN(test_eval_faithfulness_all_targets);
  RUN(test_eval_generated_words);
  RUN(test_eval_json_matches_doc);
  RUN(test_cli_errors_and_json);
  return test_summary();
}
