/* The enrich pipeline with the tiny golden BLIP (../shared/golden/blip-cap-a)
 * as captioner and the tiny golden Qwen3 (qwen3-a) as LLM. Both have random
 * weights, so the text is gibberish: the checks are on structure (one item
 * per image, prompts holding the captions, one or several LLM calls),
 * metrics being those of the produced text, keywords from a file or a
 * Shapes World manifest, and errors for bad input. Then end to end with the
 * embedded models (models/shapes-blip, models/shapes-qwen3) and --lang zh:
 * Chinese descriptions that name the scene's colours and shapes. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/shapes_describe.h"
#include "io/shapes_world.h"
#include "tasks/enrich.h"
#include "tasks/model_paths.h"
#include "test.h"

static vl_blip *cap;
static vl_qwen_text *llm;
static vl_tokenizer *tok;
static char scene1[512], scene2[512], plain[512];

static int setup(void) {
  if (!cap) cap = vl_blip_load(test_shared_path("golden/blip-cap-a"));
  if (!llm) llm = vl_qwen_text_load(test_shared_path("golden/qwen3-a"));
  if (!tok) tok = vl_tokenizer_load(test_shared_path("golden/qwen3-a"));
  if (!scene1[0]) {
    char dir[400];
    snprintf(dir, sizeof dir, "%s/shapes", test_tmpdir());
    if (vl_shapes_write_set(dir, 7, 2, NULL)) return 0;
    snprintf(scene1, sizeof scene1, "%s/scene_00001.png", dir);
    snprintf(scene2, sizeof scene2, "%s/scene_00002.png", dir);
    snprintf(plain, sizeof plain, "%s", test_shared_path("golden/blip-cap-a/image.png"));
  }
  if (!cap || !llm || !tok) printf("  %s\n", vl_last_error());
  return cap && llm && tok;
}

static vl_enrich_run_opts small_opts(void) {
  vl_enrich_run_opts o = vl_enrich_run_defaults();
  o.prompt.min_words = 3;
  o.prompt.max_words = 30;
  o.max_tokens = 24;
  o.caption_max_length = 12;
  static const char *const forbid[] = {"the", "a"};
  o.prompt.forbidden = forbid;
  o.prompt.n_forbidden = 2;
  return o;
}

/* Strict UTF-8 (descriptions go into JSON). */
static int valid_utf8(const char *p) {
  const unsigned char *s = (const unsigned char *)p;
  while (*s) {
    int k = *s < 0x80             ? 1
            : (*s & 0xe0) == 0xc0 ? 2
            : (*s & 0xf0) == 0xe0 ? 3
            : (*s & 0xf8) == 0xf0 ? 4
                                  : 0;
    if (!k || (k == 2 && *s < 0xc2)) return 0;
    for (int i = 1; i < k; i++)
      if ((s[i] & 0xc0) != 0x80) return 0;
    s += k;
  }
  return 1;
}

/* Every item's metrics are those of its description; the totals theirs. */
static void check_metrics(const vl_enrich_result *r, const vl_enrich_run_opts *o) {
  vl_text_metrics ms[8];
  for (size_t i = 0; i < r->n && i < 8; i++) {
    const vl_enrich_item *it = &r->items[i];
    CHECK(valid_utf8(it->description));
    vl_metrics_spec spec = {.keywords = (const char *const *)it->keywords.words,
                            .n_keywords = it->keywords.n,
                            .forbidden = o->prompt.forbidden,
                            .n_forbidden = o->prompt.n_forbidden,
                            .min_len = o->prompt.min_words,
                            .max_len = o->prompt.max_words};
    REQUIRE(vl_metrics_measure(it->description, &spec, &ms[i]) == VL_OK);
    CHECK(ms[i].length == vl_metrics_length(it->description, 0));
    CHECK(it->metrics.length == ms[i].length);
    CHECK(it->metrics.n_keywords == it->keywords.n);
    CHECK(it->metrics.n_found == ms[i].n_found);
    CHECK(it->metrics.forbidden_hits ==
          vl_metrics_count(it->description, "the") + vl_metrics_count(it->description, "a"));
    CHECK(it->metrics.in_range == (ms[i].length >= 3 && ms[i].length <= 30));
  }
  vl_metrics_total tot;
  vl_metrics_aggregate(ms, r->n, &tot);
  CHECK(r->total.n_items == r->n);
  CHECK_NEAR(r->total.mean_recall, tot.mean_recall, 1e-12);
  CHECK(r->total.forbidden_hits == tot.forbidden_hits);
  CHECK_NEAR(r->total.mean_length, tot.mean_length, 1e-12);
  CHECK(r->total.n_in_range == tot.n_in_range);
}

static void test_manifest_keywords(void) {
  REQUIRE(setup());
  vl_word_list l;
  int found = -1;
  REQUIRE(vl_enrich_manifest_keywords(scene2, VL_ENRICH_EN, &l, &found) == VL_OK);
  CHECK(found == 1);
  /* the same words as the scene's own manifest line */
  vl_shapes_scene *sc = vl_shapes_generate(7, 1, NULL);
  REQUIRE(sc);
  char *line = vl_shapes_manifest_line(sc, 2);
  vl_word_list want;
  REQUIRE(line && vl_word_list_from_manifest(line, strlen(line), &want) == VL_OK);
  CHECK(strstr(line, "scene_00002.png") != NULL);
  CHECK(l.n == want.n && l.n >= 2);
  for (size_t i = 0; i < l.n && i < want.n; i++)
    CHECK(!strcmp(l.words[i], want.words[i]));
  vl_word_list_free(&want);
  vl_word_list_free(&l);
  /* --lang zh: the same objects as the Chinese grammar's words */
  REQUIRE(vl_enrich_manifest_keywords(scene2, VL_ENRICH_ZH, &l, &found) == VL_OK);
  CHECK(found == 1 && l.n >= 2);
  for (int k = 0; k < sc->n_objects; k++) {
    int c = 0, s = 0;
    for (size_t i = 0; i < l.n; i++) {
      c |= !strcmp(l.words[i], vl_color_name_zh(sc->objects[k].color));
      s |= !strcmp(l.words[i], vl_shape_name_zh(sc->objects[k].shape));
    }
    CHECK(c && s);
  }
  vl_word_list_free(&l);
  free(line);
  vl_shapes_free(sc);
  /* no manifest next to the image, or no line for it */
  REQUIRE(vl_enrich_manifest_keywords(plain, VL_ENRICH_EN, &l, &found) == VL_OK);
  CHECK(found == 0 && l.n == 0);
  char other[600];
  snprintf(other, sizeof other, "%s/shapes/scene_00099.png", test_tmpdir());
  REQUIRE(vl_enrich_manifest_keywords(other, VL_ENRICH_EN, &l, &found) == VL_OK);
  CHECK(found == 0);
  /* a broken line for the image: an error naming the manifest */
  char dir[512], path[600];
  snprintf(dir, sizeof dir, "%s/badman", test_tmpdir());
  snprintf(path, sizeof path, "mkdir -p %s", dir);
  REQUIRE(system(path) == 0);
  snprintf(path, sizeof path, "%s/manifest.jsonl", dir);
  const char *bad = "{\"image\": \"x.png\", \"objects\": [{\"shape\": \"circle\"}]}\n";
  REQUIRE(test_write_file(path, bad, strlen(bad)) == 0);
  snprintf(path, sizeof path, "%s/x.png", dir);
  CHECK(vl_enrich_manifest_keywords(path, VL_ENRICH_EN, &l, &found) < 0);
  CHECK(strstr(vl_last_error(), "manifest.jsonl") != NULL);
}

static void test_two_images_one_call(void) {
  REQUIRE(setup());
  vl_enrich_run_opts o = small_opts();
  const char *imgs[] = {scene1, plain};
  vl_enrich_result r;
  int rc = vl_enrich_run(cap, llm, tok, VL_CHAT_QWEN3, imgs, 2, &o, &r);
  if (rc) printf("  %s\n", vl_last_error());
  REQUIRE(rc == VL_OK);
  REQUIRE(r.n == 2);
  CHECK(r.llm_calls == 1);
  CHECK(r.items_found <= 2);
  CHECK(r.generated_tokens >= 1 && r.generated_tokens <= 24);
  for (size_t i = 0; i < 2; i++) {
    vl_enrich_item *it = &r.items[i];
    CHECK(!strcmp(it->image, imgs[i]));
    REQUIRE(it->caption && it->description && it->prompt);
    CHECK(it->elements.caption && it->elements.subject && it->elements.scene);
    CHECK(it->reasoning == NULL);
    /* one prompt, both captions as separate items, thinking off */
    CHECK(!strcmp(it->prompt, r.items[0].prompt));
    CHECK(strstr(it->prompt, it->elements.caption) != NULL);
    CHECK(strstr(it->prompt, "VISION_START") && strstr(it->prompt, "VISION_END"));
    CHECK(strstr(it->prompt, "[2]") != NULL);
    CHECK(strstr(it->prompt, "<think>\n\n</think>") != NULL);
  }
  CHECK(!strcmp(r.items[0].keywords_source, "manifest") && r.items[0].keywords.n >= 2);
  CHECK(!strcmp(r.items[1].keywords_source, "none") && r.items[1].keywords.n == 0);
  CHECK(r.items[1].metrics.recall == 1.0); /* no keywords */
  check_metrics(&r, &o);
  CHECK(r.total_ms >= r.caption_ms && r.caption_ms > 0 && r.generate_ms > 0);
  vl_enrich_result_free(&r);
  CHECK(r.n == 0 && r.items == NULL);
}

static void test_separate_calls(void) {
  REQUIRE(setup());
  vl_enrich_run_opts o = small_opts();
  o.separate = true;
  o.keep_reasoning = true;
  o.seed = 3;
  const char *imgs[] = {scene1, scene2, plain};
  vl_enrich_result r, r2;
  REQUIRE(vl_enrich_run(cap, llm, tok, VL_CHAT_QWEN3, imgs, 3, &o, &r) == VL_OK);
  REQUIRE(r.n == 3);
  CHECK(r.llm_calls == 3);
  for (size_t i = 0; i < 3; i++) {
    CHECK(r.items[i].reasoning != NULL);
    CHECK(strstr(r.items[i].prompt, "[2]") == NULL); /* a single-item prompt */
    CHECK(strstr(r.items[i].prompt, r.items[i].elements.caption) != NULL);
  }
  CHECK(strcmp(r.items[0].prompt, r.items[1].prompt) != 0 ||
        !strcmp(r.items[0].caption, r.items[1].caption));
  check_metrics(&r, &o);
  /* a seed gives the same text again */
  REQUIRE(vl_enrich_run(cap, llm, tok, VL_CHAT_QWEN3, imgs, 3, &o, &r2) == VL_OK);
  for (size_t i = 0; i < 3; i++) {
    CHECK(!strcmp(r.items[i].caption, r2.items[i].caption));
    CHECK(!strcmp(r.items[i].description, r2.items[i].description));
  }
  vl_enrich_result_free(&r);
  vl_enrich_result_free(&r2);
}

static void test_keywords_file(void) {
  REQUIRE(setup());
  char path[600];
  snprintf(path, sizeof path, "%s/kw.txt", test_tmpdir());
  const char *kw = "# expected\nzebra\nstriped horse\n";
  REQUIRE(test_write_file(path, kw, strlen(kw)) == 0);
  vl_enrich_run_opts o = small_opts();
  o.keywords_file = path;
  const char *imgs[] = {scene1};
  vl_enrich_result r;
  REQUIRE(vl_enrich_run(cap, llm, tok, VL_CHAT_QWEN3, imgs, 1, &o, &r) == VL_OK);
  REQUIRE(r.n == 1);
  /* the file wins over the manifest, and its words go into the prompt */
  CHECK(!strcmp(r.items[0].keywords_source, "file"));
  CHECK(r.items[0].keywords.n == 2 && r.items[0].metrics.n_keywords == 2);
  CHECK(strstr(r.items[0].prompt, "zebra") && strstr(r.items[0].prompt, "striped horse"));
  check_metrics(&r, &o);
  vl_enrich_result_free(&r);
}

static void test_errors(void) {
  REQUIRE(setup());
  vl_enrich_run_opts o = small_opts();
  vl_enrich_result r;
  char missing[600];
  snprintf(missing, sizeof missing, "%s/no-such-image.png", test_tmpdir());
  const char *imgs[] = {scene1, missing};
  CHECK(vl_enrich_run(cap, llm, tok, VL_CHAT_QWEN3, imgs, 2, &o, &r) < 0);
  CHECK(strstr(vl_last_error(), "no-such-image.png") && strstr(vl_last_error(), "image 2"));
  CHECK(r.n == 0 && r.items == NULL);
  CHECK(vl_enrich_run(cap, llm, tok, VL_CHAT_QWEN3, imgs, 0, &o, &r) == VL_ERR_INVALID);
  const char *many[VL_ENRICH_ITEMS_MAX + 1];
  for (int i = 0; i <= VL_ENRICH_ITEMS_MAX; i++)
    many[i] = scene1;
  CHECK(vl_enrich_run(cap, llm, tok, VL_CHAT_QWEN3, many, VL_ENRICH_ITEMS_MAX + 1, &o, &r) ==
        VL_ERR_LIMIT);
  o.keywords_file = missing;
  CHECK(vl_enrich_run(cap, llm, tok, VL_CHAT_QWEN3, imgs, 1, &o, &r) < 0);
  CHECK(strstr(vl_last_error(), "no-such-image.png") != NULL);
  o.keywords_file = NULL;
  CHECK(vl_enrich_run(cap, NULL, tok, VL_CHAT_QWEN3, imgs, 1, &o, &r) == VL_ERR_INVALID);
  vl_blip *itm = vl_blip_load(test_shared_path("golden/blip-itm-a"));
  REQUIRE(itm);
  CHECK(vl_enrich_run(itm, llm, tok, VL_CHAT_QWEN3, imgs, 1, &o, &r) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "captioning") != NULL);
  vl_blip_free(itm);
}

static void test_default_model_paths(void) {
  char out[1024], dir[600];
  /* VLENS_MODELS/<name> with a config.json is found first */
  snprintf(dir, sizeof dir, "mkdir -p %s/models/fake-model", test_tmpdir());
  REQUIRE(system(dir) == 0);
  snprintf(dir, sizeof dir, "%s/models/fake-model/config.json", test_tmpdir());
  REQUIRE(test_write_file(dir, "{}", 2) == 0);
  snprintf(dir, sizeof dir, "%s/models", test_tmpdir());
  setenv("VLENS_MODELS", dir, 1);
  REQUIRE(vl_model_default_path("fake-model", NULL, "--llm", out, sizeof out) == VL_OK);
  CHECK(strstr(out, "/models/fake-model") != NULL);
  /* a missing one: the error names the folder and the option */
  CHECK(vl_model_default_path("not-trained-yet", NULL, "--captioner", out, sizeof out) ==
        VL_ERR_NOTFOUND);
  CHECK(strstr(vl_last_error(), "models/not-trained-yet") != NULL);
  CHECK(strstr(vl_last_error(), "--captioner") != NULL);
  unsetenv("VLENS_MODELS");
}

static int has_word(const char *text, const char *w) {
  size_t n = strlen(w);
  for (const char *p = strstr(text, w); p; p = strstr(p + 1, w))
    if ((p == text || p[-1] == ' ') && (p[n] == ' ' || p[n] == ',' || p[n] == '.' || !p[n]))
      return 1;
  return 0;
}

/* `vlens enrich --lang zh` end to end on the embedded models: each
 * description is Chinese (CJK characters, no Latin letters) and names, in
 * the grammar's Chinese words, every colour and shape of the caption it was
 * given; where the captioner got the scene right, every colour and shape of
 * the manifest (recall 1 against the Chinese keywords). */
static void test_embedded_zh(void) {
  char cap_dir[1024], llm_dir[1024], dir[512];
  REQUIRE(vl_model_default_path(VL_DEFAULT_CAPTIONER, NULL, "--captioner", cap_dir,
                                sizeof cap_dir) == VL_OK);
  REQUIRE(vl_model_default_path(VL_DEFAULT_LLM, NULL, "--llm", llm_dir, sizeof llm_dir) == VL_OK);
  vl_blip *bc = vl_blip_load(cap_dir);
  vl_qwen_text *lm = vl_qwen_text_load(llm_dir);
  vl_tokenizer *tk = vl_tokenizer_load(llm_dir);
  vl_chat_template tmpl;
  REQUIRE(bc && lm && tk && vl_chat_detect_folder(llm_dir, &tmpl) == VL_OK);
  snprintf(dir, sizeof dir, "%s/zhset", test_tmpdir());
  enum { N = 6 };
  vl_shapes_options so = vl_shapes_default_options();
  so.max_objects = 2; /* scenes the embedded captioner often gets right */
  REQUIRE(vl_shapes_write_set(dir, 31337, N, &so) == VL_OK);
  char paths[N][600];
  const char *imgs[N];
  for (int i = 0; i < N; i++) {
    snprintf(paths[i], sizeof paths[i], "%s/scene_%05d.png", dir, i + 1);
    imgs[i] = paths[i];
  }
  vl_enrich_run_opts o = vl_enrich_run_defaults();
  o.prompt.lang = VL_ENRICH_ZH;
  o.prompt.min_words = 100; /* what the command uses for zh */
  o.prompt.max_words = 200;
  o.separate = true;
  o.seed = 5;
  vl_enrich_result r;
  int rc = vl_enrich_run(bc, lm, tk, tmpl, imgs, N, &o, &r);
  if (rc) printf("  %s\n", vl_last_error());
  REQUIRE(rc == VL_OK && r.n == N);
  int exact = 0;
  for (int i = 0; i < N; i++) {
    const vl_enrich_item *it = &r.items[i];
    vl_shapes_scene *sc = vl_shapes_generate(31337, i, &so);
    REQUIRE(sc);
    int f0 = test_current_failed;
    CHECK(strstr(it->prompt, "用中文回答") != NULL);
    CHECK(vl_metrics_length(it->description, 1) >= 20 && it->metrics.length >= 20);
    for (const char *p = it->description; *p; p++)
      CHECK(!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')));
    for (int k = 0; k < VL_COLOR_COUNT; k++)
      if (has_word(it->caption, vl_color_name((vl_color)k)))
        CHECK(strstr(it->description, vl_color_name_zh((vl_color)k)) != NULL);
    for (int k = 0; k < VL_SHAPE_COUNT; k++)
      if (has_word(it->caption, vl_shape_name((vl_shape)k)))
        CHECK(strstr(it->description, vl_shape_name_zh((vl_shape)k)) != NULL);
    CHECK(!strcmp(it->keywords_source, "manifest") && it->keywords.n >= 2);
    for (size_t k = 0; k < it->keywords.n; k++)
      CHECK((unsigned char)it->keywords.words[k][0] >= 0x80); /* Chinese keywords */
    if (!strcmp(it->caption, sc->caption)) {
      exact++;
      CHECK(it->metrics.recall == 1.0);
    }
    if (!f0 && test_current_failed)
      printf("  %s\n  caption: %s\n  -> %s\n", it->image, it->caption, it->description);
    vl_shapes_free(sc);
  }
  CHECK(exact >= 1);
  printf("  %s -> %s\n", r.items[0].caption, r.items[0].description);
  vl_enrich_result_free(&r);
  vl_blip_free(bc);
  vl_qwen_text_free(lm);
  vl_tokenizer_free(tk);
}

/* The LLM's --kv-cache / --activations options reach generation: accepted
 * (the same checks as generate's), and a value outside them is an error. */
static void test_cli_llm_options(void) {
  REQUIRE(setup());
  if (!test_vlens_exe()) return;
  CHECK(test_run_vlens("enrich %s -n 8 --kv-cache f16 --activations rounded --json", scene1) == 0);
  int rc = test_run_vlens("enrich %s -n 8 --activations fast", scene1);
  CHECK(rc != 0 && rc != 128);
  rc = test_run_vlens("enrich %s -n 8 --kv-cache f8", scene1);
  CHECK(rc != 0 && rc != 128);
}

int main(void) {
  RUN(test_manifest_keywords);
  RUN(test_two_images_one_call);
  RUN(test_separate_calls);
  RUN(test_keywords_file);
  RUN(test_errors);
  RUN(test_default_model_paths);
  RUN(test_embedded_zh);
  RUN(test_cli_llm_options);
  vl_blip_free(cap);
  vl_qwen_text_free(llm);
  vl_tokenizer_free(tok);
  return test_summary();
}
