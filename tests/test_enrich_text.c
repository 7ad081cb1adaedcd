/* The model-independent parts of `vlens enrich`: reasoning extraction,
 * caption elements, the LLM prompt, splitting multi-item answers, metrics. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/shapes_describe.h"
#include "io/shapes_world.h"
#include "test.h"
#include "text/chat.h"
#include "text/enrich_prompt.h"
#include "text/metrics.h"
#include "text/reasoning.h"

/* ---- reasoning ---- */

static int split_is(const char *text, const char *reasoning, const char *answer, int has,
                    int trunc) {
  vl_reasoning r;
  if (vl_reasoning_split(text, strlen(text), &r) != VL_OK) return 0;
  int ok = !strcmp(r.reasoning, reasoning) && !strcmp(r.answer, answer) && r.has_think == has &&
           r.truncated == trunc;
  if (!ok)
    printf("  [%s] -> reasoning [%s] answer [%s] has %d trunc %d\n", text, r.reasoning, r.answer,
           r.has_think, r.truncated);
  vl_reasoning_free(&r);
  return ok;
}

static void test_reasoning_split(void) {
  CHECK(split_is("<think>\nLet me look.\n</think>\n\nA red circle.", "Let me look.",
                 "A red circle.", 1, 0));
  /* Thinking off: the template's empty block comes back empty. */
  CHECK(split_is("<think>\n\n</think>\n\nAnswer.", "", "Answer.", 1, 0));
  CHECK(split_is("  Just an answer.\n", "", "Just an answer.", 0, 0));
  CHECK(split_is("", "", "", 0, 0));
  /* The prompt opened the block: only the close tag is generated. */
  CHECK(split_is("reasoning here</think>\n\nthe answer", "reasoning here", "the answer", 1, 0));
  /* Generation stopped mid-thought. */
  CHECK(split_is("<think>\nfirst I will", "first I will", "", 1, 1));
  CHECK(split_is("<think>", "", "", 1, 1));
  /* Qwen cuts at the last </think>. */
  CHECK(split_is("<think>a</think>b</think>\nc", "a</think>b", "c", 1, 0));
  /* End-of-turn markers left by a decoder that keeps special tokens. */
  CHECK(split_is("<think>x</think> Done.<|im_end|>\n", "x", "Done.", 1, 0));
  CHECK(split_is("Done.<|endoftext|><|im_end|>", "", "Done.", 0, 0));
  /* Length is honoured (no NUL needed). */
  vl_reasoning r;
  CHECK(vl_reasoning_split("<think>ab</think>cdXYZ", 19, &r) == VL_OK);
  CHECK(!strcmp(r.answer, "cd"));
  vl_reasoning_free(&r);
  CHECK(vl_reasoning_split(NULL, 0, &r) == VL_ERR_INVALID);
  CHECK(r.answer == NULL && r.reasoning == NULL);
  CHECK(vl_reasoning_split("x", 1, NULL) == VL_ERR_INVALID);
  char *a = vl_reasoning_answer("<think>\nhmm\n</think>\n\nThe answer.\n");
  CHECK(a && !strcmp(a, "The answer."));
  free(a);
  CHECK(vl_reasoning_answer(NULL) == NULL);
}

/* ---- elements ---- */

static void test_elements_shapes_world(void) {
  vl_enrich_elements e;
  REQUIRE(vl_enrich_elements_extract("a large red circle, a small blue square and a small green "
                                     "triangle.",
                                     &e) == VL_OK);
  CHECK(e.shapes_world == 1);
  CHECK(!strcmp(e.subject, "three objects: a red circle, a blue square and a green triangle"));
  CHECK(strstr(e.scene, "plain background"));
  CHECK(!strcmp(e.state, "sizes: circle large, square small, triangle small; colours: circle "
                         "red, square blue, triangle green; arrangement from left to right: red "
                         "circle, blue square, green triangle"));
  vl_enrich_elements_free(&e);
  REQUIRE(vl_enrich_elements_extract("a small yellow square.", &e) == VL_OK);
  CHECK(e.shapes_world && !strcmp(e.subject, "one object: a yellow square"));
  CHECK(strstr(e.state, "a single object"));
  vl_enrich_elements_free(&e);
  /* Every caption the generator writes parses as Shapes World. */
  for (int i = 0; i < 40; i++) {
    vl_shapes_options o = vl_shapes_default_options();
    o.n_hypotheses = 0;
    vl_shapes_scene *sc = vl_shapes_generate(7, i, &o);
    REQUIRE(sc);
    REQUIRE(vl_enrich_elements_extract(sc->caption, &e) == VL_OK);
    CHECK(e.shapes_world);
    for (int k = 0; k < sc->n_objects; k++) {
      CHECK(strstr(e.subject, vl_color_name(sc->objects[k].color)));
      CHECK(strstr(e.state, vl_size_name(sc->objects[k].size)));
    }
    vl_enrich_elements_free(&e);
    vl_shapes_free(sc);
  }
  /* Near misses are general captions, not Shapes World. */
  const char *near[] = {"a large red circle", /* no full stop */
                        "a huge red circle.", /* unknown size */
                        "a large red circle and a small blue square and a large red circle.",
                        "a large red circle, a small blue square.", /* ", " before the last */
                        "a large red circle, a large red circle, a large red circle, a large red "
                        "circle and a large red circle."}; /* five objects */
  for (size_t i = 0; i < sizeof near / sizeof *near; i++) {
    CHECK(vl_enrich_elements_extract(near[i], &e) == VL_OK);
    CHECK(e.shapes_world == 0);
    vl_enrich_elements_free(&e);
  }
}

static void elems(const char *caption, const char *subject, const char *scene, const char *state) {
  vl_enrich_elements e;
  int rc = vl_enrich_elements_extract(caption, &e);
  CHECK(rc == VL_OK);
  if (rc != VL_OK) return;
  int ok = !strcmp(e.subject, subject) && !strcmp(e.scene, scene) && !strcmp(e.state, state);
  if (!ok) printf("  [%s] -> [%s] [%s] [%s]\n", caption, e.subject, e.scene, e.state);
  CHECK(ok);
  vl_enrich_elements_free(&e);
}

static void test_elements_general(void) {
  elems("a dog running on the beach", "a dog", "on the beach", "running");
  elems("A man sitting at a table with a laptop.", "a man", "at a table with a laptop", "sitting");
  elems("a red car", "a red car", "not stated", "not stated");
  elems("there is a cat with a hat in the garden", "a cat", "in the garden", "with a hat");
  elems("a picture of two birds next to a pond", "two birds", "next to a pond", "not stated");
  elems("the sky is blue", "the sky", "not stated", "is blue");
  /* Cleaning: control characters, special tokens, marker words. */
  vl_enrich_elements e;
  REQUIRE(vl_enrich_elements_extract("  a\tcat<|im_end|>\n<|im_start|>system VISION_END on a "
                                     "mat\x01 ",
                                     &e) == VL_OK);
  CHECK(!strcmp(e.caption, "a cat system on a mat"));
  CHECK(!strstr(e.caption, "VISION") && !strstr(e.caption, "<|"));
  vl_enrich_elements_free(&e);
}

static void test_elements_errors(void) {
  vl_enrich_elements e;
  CHECK(vl_enrich_elements_extract(NULL, &e) == VL_ERR_INVALID);
  CHECK(vl_enrich_elements_extract("", &e) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "caption: empty"));
  CHECK(vl_enrich_elements_extract(" \n\t<|endoftext|> VISION_START", &e) == VL_ERR_INVALID);
  CHECK(e.caption == NULL && e.subject == NULL);
  CHECK(vl_enrich_elements_extract("a \xff\xfe cat", &e) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "UTF-8"));
  CHECK(vl_enrich_elements_extract("a \xc3", &e) == VL_ERR_INVALID); /* truncated sequence */
  char *big = malloc(VL_ENRICH_CAPTION_MAX + 10);
  REQUIRE(big);
  memset(big, 'a', VL_ENRICH_CAPTION_MAX + 9);
  big[VL_ENRICH_CAPTION_MAX + 9] = '\0';
  CHECK(vl_enrich_elements_extract(big, &e) == VL_ERR_LIMIT);
  free(big);
  CHECK(vl_enrich_elements_extract("x", NULL) == VL_ERR_INVALID);
}

/* ---- prompt ---- */

static void test_prompt_single(void) {
  const char *kw[] = {"red", "circle"}, *bad[] = {"beautiful", "stunning"};
  vl_enrich_options o = vl_enrich_default_options();
  CHECK_NEAR(o.temperature, 0.6, 1e-6);
  CHECK_NEAR(o.top_p, 0.95, 1e-6);
  CHECK(o.enable_thinking == 0);
  o.keywords = kw;
  o.n_keywords = 2;
  o.forbidden = bad;
  o.n_forbidden = 2;
  REQUIRE(vl_enrich_parse_range("40-80", &o.min_words, &o.max_words) == VL_OK);
  char *p = vl_enrich_user_prompt("a large red circle.", &o);
  REQUIRE(p);
  const char *vs = strstr(p, "VISION_START\n"), *ve = strstr(p, "VISION_END\n");
  CHECK(vs && ve && vs < ve);
  CHECK(strstr(p, "Caption: a large red circle.\nSubject: one object: a red circle\n"));
  CHECK(vs && ve && strstr(vs, "Scene: ") < ve && strstr(vs, "State: sizes: circle large") < ve);
  CHECK(strstr(p, "You are an expert visual describer"));
  CHECK(strstr(p, "Mention these key elements: red, circle."));
  CHECK(strstr(p, "about 60 words (between 40 and 80)"));
  CHECK(strstr(p, "Never use these words: beautiful, stunning."));
  CHECK(strstr(p, "do not invent"));
  CHECK(!strstr(p, "[1]"));
  /* Exactly one visual block. */
  CHECK(vs && !strstr(vs + 1, "VISION_START"));
  /* Into Qwen3's template with thinking off. */
  vl_chat_message m = {"user", p, NULL};
  vl_chat_options co = {1, o.enable_thinking};
  char *chat = vl_chat_render(VL_CHAT_QWEN3, &m, 1, &co);
  REQUIRE(chat);
  CHECK(!strncmp(chat, "<|im_start|>user\nYou are", 24));
  size_t n = strlen(chat);
  const char *tail = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
  CHECK(n > strlen(tail) && !strcmp(chat + n - strlen(tail), tail));
  free(chat);
  free(p);

  /* Chinese. */
  o.lang = VL_ENRICH_ZH;
  o.n_forbidden = 0;
  o.min_words = 100;
  o.max_words = 200;
  p = vl_enrich_user_prompt("a dog running on the beach", &o);
  REQUIRE(p);
  CHECK(strstr(p, "约150个汉字（100到200字之间）"));
  CHECK(strstr(p, "主体：a dog\n场景：on the beach\n状态：running\n"));
  CHECK(strstr(p, "必须提到这些要素：red、circle。"));
  CHECK(!strstr(p, "不要使用这些词"));
  CHECK(strstr(p, "用中文回答"));
  free(p);
}

static void test_prompt_multi(void) {
  const char *caps[] = {"a small green triangle.", "a cat on a sofa", "a bus in the street"};
  char *p = vl_enrich_user_prompt_multi(caps, 3, NULL);
  REQUIRE(p);
  const char *a = strstr(p, "[1]\nVISION_START\nCaption: a small green triangle.");
  const char *b = strstr(p, "[2]\nVISION_START\nCaption: a cat on a sofa\n");
  const char *c = strstr(p, "[3]\nVISION_START\nCaption: a bus in the street\n");
  CHECK(a && b && c && a < b && b < c);
  CHECK(strstr(p, "Below are 3 separate images"));
  CHECK(strstr(p, "exactly 3 descriptions"));
  CHECK(strstr(p, "about 90 words per description (between 60 and 120)"));
  int blocks = 0;
  for (const char *q = p; (q = strstr(q, "VISION_END")); q++)
    blocks++;
  CHECK(blocks == 3);
  free(p);
  /* The whole chat prompt: Qwen3 with thinking off by default. */
  char *chat = vl_enrich_chat_prompt(VL_CHAT_QWEN3, caps, 3, NULL);
  REQUIRE(chat);
  CHECK(!strncmp(chat, "<|im_start|>user\nYou are an expert", 34));
  CHECK(strstr(chat, "[3]\nVISION_START"));
  const char *tail = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
  CHECK(strlen(chat) > strlen(tail) && !strcmp(chat + strlen(chat) - strlen(tail), tail));
  free(chat);
  vl_enrich_options o = vl_enrich_default_options();
  o.enable_thinking = 1;
  chat = vl_enrich_chat_prompt(VL_CHAT_QWEN3, caps, 1, &o);
  REQUIRE(chat);
  CHECK(!strstr(chat, "<think>"));
  free(chat);
  chat = vl_enrich_chat_prompt(VL_CHAT_QWEN25, caps, 1, NULL);
  REQUIRE(chat);
  CHECK(!strncmp(chat, "<|im_start|>system\nYou are Qwen", 31) && !strstr(chat, "<think>"));
  free(chat);
  CHECK(!vl_enrich_chat_prompt(42, caps, 1, NULL));
  CHECK(!vl_enrich_chat_prompt(VL_CHAT_QWEN3, caps, 0, NULL));
}

static void test_prompt_errors(void) {
  int lo = 0, hi = 0;
  CHECK(vl_enrich_parse_range("80-40", &lo, &hi) == VL_ERR_INVALID);
  CHECK(vl_enrich_parse_range("40", &lo, &hi) == VL_ERR_INVALID);
  CHECK(vl_enrich_parse_range("-5-40", &lo, &hi) == VL_ERR_INVALID);
  CHECK(vl_enrich_parse_range("0-40", &lo, &hi) == VL_ERR_INVALID);
  CHECK(vl_enrich_parse_range("40-80x", &lo, &hi) == VL_ERR_INVALID);
  CHECK(vl_enrich_parse_range("1-99999", &lo, &hi) == VL_ERR_INVALID);
  CHECK(vl_enrich_parse_range(NULL, &lo, &hi) == VL_ERR_INVALID);
  CHECK(vl_enrich_parse_range("5-5", &lo, &hi) == VL_OK && lo == 5 && hi == 5);
  vl_enrich_lang l;
  CHECK(vl_enrich_parse_lang("zh", &l) == VL_OK && l == VL_ENRICH_ZH);
  CHECK(vl_enrich_parse_lang("fr", &l) == VL_ERR_INVALID && strstr(vl_last_error(), "fr"));
  CHECK(vl_enrich_parse_lang(NULL, &l) == VL_ERR_INVALID);

  vl_enrich_options o = vl_enrich_default_options();
  o.min_words = 50;
  o.max_words = 10;
  CHECK(!vl_enrich_user_prompt("a cat", &o));
  o = vl_enrich_default_options();
  const char *kw[] = {"cat", ""};
  o.keywords = kw;
  o.n_keywords = 2;
  CHECK(!vl_enrich_user_prompt("a cat", &o));
  CHECK(strstr(vl_last_error(), "keyword 2"));
  o.n_keywords = 1;
  o.keywords = NULL;
  CHECK(!vl_enrich_user_prompt("a cat", &o));
  CHECK(!vl_enrich_user_prompt("", NULL));
  CHECK(!vl_enrich_user_prompt(NULL, NULL));
  const char *caps[] = {"a cat", "  "};
  CHECK(!vl_enrich_user_prompt_multi(caps, 2, NULL));
  CHECK(strstr(vl_last_error(), "image 2"));
  CHECK(!vl_enrich_user_prompt_multi(caps, 0, NULL));
  CHECK(!vl_enrich_user_prompt_multi(NULL, 1, NULL));
  const char *many[VL_ENRICH_ITEMS_MAX + 1];
  for (int i = 0; i <= VL_ENRICH_ITEMS_MAX; i++)
    many[i] = "a cat";
  CHECK(!vl_enrich_user_prompt_multi(many, VL_ENRICH_ITEMS_MAX + 1, NULL));
  CHECK(vl_last_error_code() == VL_ERR_LIMIT);
}

/* ---- splitting answers ---- */

static int split_check(const char *answer, size_t n, int want_found, const char *const *want) {
  char *items[8];
  int got = vl_enrich_split_items(answer, n, items);
  int ok = got == want_found;
  for (size_t i = 0; ok && i < n; i++)
    ok = items[i] && !strcmp(items[i], want[i]);
  if (!ok) {
    printf("  split got %d:", got);
    for (size_t i = 0; got >= 0 && i < n; i++)
      printf(" [%s]", items[i]);
    printf("\n");
  }
  if (got >= 0) vl_enrich_items_free(items, n);
  return ok;
}

static void test_split_items(void) {
  const char *w3[] = {"A red circle.", "A cat, asleep.", "A bus."};
  CHECK(split_check("[1] A red circle.\n[2] A cat, asleep.\n[3] A bus.", 3, 3, w3));
  CHECK(split_check("Here you go:\n\n1. A red circle.\n\n2) A cat,\nasleep.\n\n3: A bus.\n", 3, 3,
                    w3));
  CHECK(split_check("**Item 1:** A red circle.\n**Item 2:** A cat, asleep.\n### Image 3\nA bus.", 3,
                    3, w3));
  CHECK(split_check("(1) A red circle.\n(2) A cat, asleep.\n(3) A bus.", 3, 3, w3));
  /* Numbers out of sequence stay text. */
  const char *w2[] = {"There are 3. shapes here", "Two."};
  CHECK(split_check("[1] There are\n3. shapes here\n[2] Two.", 2, 2, w2));
  /* Missing items come back empty; the count says how many were found. */
  const char *wmiss[] = {"Only one.", "", ""};
  CHECK(split_check("[1] Only one.", 3, 1, wmiss));
  /* No markers: paragraphs when they match n, the whole text for n == 1. */
  const char *wpara[] = {"First one here.", "Second one."};
  CHECK(split_check("First one\nhere.\n\n  \nSecond one.\n", 2, 2, wpara));
  const char *wnone[] = {"", "", ""};
  CHECK(split_check("One paragraph only.", 3, 0, wnone));
  const char *wone[] = {"Para one. Para two."};
  CHECK(split_check("Para one.\n\nPara two.", 1, 1, wone));
  const char *wempty[] = {""};
  CHECK(split_check("", 1, 0, wempty));
  const char *wzh[] = {"一个红色的圆。", "一只猫。"};
  CHECK(split_check("第1张：一个红色的圆。\n第2张：一只猫。", 2, 2, wzh));
  char *items[2];
  CHECK(vl_enrich_split_items(NULL, 2, items) == VL_ERR_INVALID);
  CHECK(items[0] == NULL && items[1] == NULL);
  CHECK(vl_enrich_split_items("x", 0, items) == VL_ERR_INVALID);
  CHECK(vl_enrich_split_items("x", 1, NULL) == VL_ERR_INVALID);
}

/* ---- metrics ---- */

static void test_metrics_matching(void) {
  CHECK(vl_metrics_count("A Red circle and two red squares.", "red") == 2);
  CHECK(vl_metrics_count("Categories of cats", "cat") == 1); /* plural, not "categories" */
  CHECK(vl_metrics_count("a concatenation", "cat") == 0);    /* word boundary */
  CHECK(vl_metrics_count("three boxes", "box") == 1);        /* -es */
  CHECK(vl_metrics_count("two puppies", "puppy") == 1);      /* -ies */
  CHECK(vl_metrics_count("one circle", "circles") == 1);     /* singular of a plural kw */
  CHECK(vl_metrics_count("a red, shiny circle", "red circle") == 0);
  CHECK(vl_metrics_count("a red\ncircle; red circles!", "Red Circle") == 2);
  CHECK(vl_metrics_count("dog's bowl", "dog") == 1);
  CHECK(vl_metrics_count("一个红色的圆和红色的方块", "红色") == 2);
  CHECK(vl_metrics_count("x", "") == 0);
  CHECK(vl_metrics_length("The cat's hat -- 3 times!", 0) == 5);
  CHECK(vl_metrics_length("  ", 0) == 0);
  CHECK(vl_metrics_length("一个red圆。", 1) == 3);
  CHECK(vl_metrics_length("\xff\xfe", 1) == 0); /* invalid bytes are not characters */
}

static void test_metrics_measure(void) {
  const char *kw[] = {"red", "circle", "blue", "square"}, *bad[] = {"beautiful", "very"};
  vl_metrics_spec s = {kw, 4, bad, 2, 5, 10, 0};
  vl_text_metrics m[3];
  REQUIRE(vl_metrics_measure("A very red circle sits beside a very beautiful cube.", &s, &m[0]) ==
          VL_OK);
  CHECK(m[0].n_keywords == 4 && m[0].n_found == 2);
  CHECK_NEAR(m[0].recall, 0.5, 1e-12);
  CHECK(m[0].forbidden_hits == 3);
  CHECK(m[0].length == 10 && m[0].in_range == 1);
  REQUIRE(vl_metrics_measure("Red circles, blue squares.", &s, &m[1]) == VL_OK);
  CHECK(m[1].n_found == 4 && m[1].recall == 1.0 && m[1].forbidden_hits == 0);
  CHECK(m[1].length == 4 && m[1].in_range == 0);
  vl_metrics_spec none = {NULL, 0, NULL, 0, 0, 0, 1};
  REQUIRE(vl_metrics_measure("一只猫", &none, &m[2]) == VL_OK);
  CHECK(m[2].recall == 1.0 && m[2].length == 3 && m[2].in_range == 1 && m[2].n_keywords == 0);
  vl_metrics_total t;
  vl_metrics_aggregate(m, 3, &t);
  CHECK(t.n_items == 3 && t.keywords == 8 && t.found == 6);
  CHECK_NEAR(t.micro_recall, 0.75, 1e-12);
  CHECK_NEAR(t.mean_recall, (0.5 + 1 + 1) / 3, 1e-12);
  CHECK(t.forbidden_hits == 3 && t.items_with_forbidden == 1);
  CHECK(t.n_in_range == 2);
  CHECK_NEAR(t.in_range_rate, 2.0 / 3, 1e-12);
  CHECK_NEAR(t.mean_length, 17.0 / 3, 1e-12);
  vl_metrics_aggregate(m, 0, &t);
  CHECK(t.n_items == 0 && t.mean_recall == 0 && t.micro_recall == 1.0);
  /* Errors. */
  const char *empty[] = {"  ,  "};
  vl_metrics_spec e = {empty, 1, NULL, 0, 0, 0, 0};
  CHECK(vl_metrics_measure("x", &e, &m[0]) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "keyword 1 is empty"));
  vl_metrics_spec r = {NULL, 0, NULL, 0, 10, 5, 0};
  CHECK(vl_metrics_measure("x", &r, &m[0]) == VL_ERR_INVALID);
  vl_metrics_spec nl = {NULL, 1, NULL, 0, 0, 0, 0};
  CHECK(vl_metrics_measure("x", &nl, &m[0]) == VL_ERR_INVALID);
  CHECK(vl_metrics_measure(NULL, &s, &m[0]) == VL_ERR_INVALID);
  CHECK(vl_metrics_measure("x", NULL, &m[0]) == VL_ERR_INVALID);
}

static void test_word_lists(void) {
  char path[1100];
  snprintf(path, sizeof path, "%s/kw.txt", test_tmpdir());
  const char *text = "# keywords\nred\n  Circle \n\nRED\nblue square\r\n红色\n";
  REQUIRE(test_write_file(path, text, strlen(text)) == 0);
  vl_word_list l;
  REQUIRE(vl_word_list_load(path, &l) == VL_OK);
  CHECK(l.n == 4);
  if (l.n == 4) {
    CHECK(!strcmp(l.words[0], "red") && !strcmp(l.words[1], "Circle"));
    CHECK(!strcmp(l.words[2], "blue square") && !strcmp(l.words[3], "红色"));
  }
  vl_word_list_free(&l);
  CHECK(l.words == NULL && l.n == 0);
  REQUIRE(test_write_file(path, "ok\n\xff\n", 4) == 0);
  CHECK(vl_word_list_load(path, &l) == VL_ERR_FORMAT);
  CHECK(strstr(vl_last_error(), "line 2") && strstr(vl_last_error(), "kw.txt"));
  CHECK(l.n == 0);
  REQUIRE(test_write_file(path, "", 0) == 0);
  CHECK(vl_word_list_load(path, &l) == VL_OK && l.n == 0);
  vl_word_list_free(&l);
  CHECK(vl_word_list_load("/nonexistent/kw.txt", &l) == VL_ERR_NOTFOUND);
  CHECK(strstr(vl_last_error(), "/nonexistent/kw.txt"));

  /* From a manifest line the generator writes. */
  vl_shapes_scene *sc = vl_shapes_generate(3, 5, NULL);
  REQUIRE(sc);
  char *line = vl_shapes_manifest_line(sc, 6);
  REQUIRE(line);
  REQUIRE(vl_word_list_from_manifest(line, strlen(line), &l) == VL_OK);
  CHECK(l.n >= 2 && l.n <= 2 * (size_t)sc->n_objects);
  for (int k = 0; k < sc->n_objects; k++) {
    int has_c = 0, has_s = 0;
    for (size_t i = 0; i < l.n; i++) {
      has_c |= !strcmp(l.words[i], vl_color_name(sc->objects[k].color));
      has_s |= !strcmp(l.words[i], vl_shape_name(sc->objects[k].shape));
    }
    CHECK(has_c && has_s);
  }
  /* The caption itself mentions every keyword. */
  vl_metrics_spec s = {(const char *const *)l.words, l.n, NULL, 0, 0, 0, 0};
  vl_text_metrics m;
  CHECK(vl_metrics_measure(sc->caption, &s, &m) == VL_OK && m.recall == 1.0);
  vl_word_list_free(&l);
  free(line);
  vl_shapes_free(sc);
  const char *bad[] = {"{\"objects\": 3}", "{\"objects\": [{\"color\": \"red\"}]}", "{", "[]"};
  for (size_t i = 0; i < 4; i++) {
    CHECK(vl_word_list_from_manifest(bad[i], strlen(bad[i]), &l) < 0);
    CHECK(l.n == 0 && l.words == NULL);
  }
  const char *ok = "{\"objects\": [{\"color\": \"red\", \"shape\": \"circle\"}, {\"color\": "
                   "\"red\", \"shape\": \"square\"}]}";
  REQUIRE(vl_word_list_from_manifest(ok, strlen(ok), &l) == VL_OK);
  CHECK(l.n == 3 && !strcmp(l.words[2], "square"));
  vl_word_list_free(&l);
}

/* Recall for --lang zh: the manifest's colours and shapes as the Chinese
 * grammar writes them, matched in text without spaces. */
static void test_zh_recall(void) {
  const char *ok = "{\"objects\": [{\"color\": \"red\", \"shape\": \"circle\"}, {\"color\": "
                   "\"blue\", \"shape\": \"square\"}, {\"color\": \"red\", \"shape\": "
                   "\"triangle\"}, {\"color\": \"purple\", \"shape\": \"hexagon\"}]}";
  vl_word_list l;
  REQUIRE(vl_word_list_from_manifest_lang(ok, strlen(ok), 1, &l) == VL_OK);
  static const char *const want[] = {"红色",   "圆形",   "蓝色",   "正方形",
                                     "三角形", "purple", "hexagon"};
  CHECK(l.n == 7);
  for (size_t i = 0; i < l.n && i < 7; i++)
    CHECK(!strcmp(l.words[i], want[i]));
  vl_word_list_free(&l);
  /* zh = 0 is the English list */
  REQUIRE(vl_word_list_from_manifest_lang(ok, strlen(ok), 0, &l) == VL_OK);
  CHECK(l.n == 7 && !strcmp(l.words[0], "red") && !strcmp(l.words[3], "square"));
  vl_word_list_free(&l);

  /* every object of generated scenes is found in its Chinese description */
  vl_shapes_options so = vl_shapes_default_options();
  so.n_hypotheses = 0;
  for (int i = 0; i < 40; i++) {
    vl_shapes_scene *sc = vl_shapes_generate(12, i, &so);
    REQUIRE(sc);
    char *line = vl_shapes_manifest_line(sc, i + 1);
    char *zh = vl_shapes_describe_lang(sc, VL_DESCRIBE_CAPTION, VL_DESCRIBE_ZH, (uint64_t)i);
    REQUIRE(line && zh);
    REQUIRE(vl_word_list_from_manifest_lang(line, strlen(line), 1, &l) == VL_OK);
    vl_metrics_spec spec = {.keywords = (const char *const *)l.words,
                            .n_keywords = l.n,
                            .min_len = 20,
                            .max_len = 200,
                            .zh = 1};
    vl_text_metrics m;
    REQUIRE(vl_metrics_measure(zh, &spec, &m) == VL_OK);
    CHECK(m.recall == 1.0 && m.n_keywords >= 2 && m.in_range);
    CHECK(m.length == vl_metrics_length(zh, 1) && m.length >= 20);
    /* the English caption names none of the Chinese words */
    REQUIRE(vl_metrics_measure(sc->caption, &spec, &m) == VL_OK);
    CHECK(m.n_found == 0 && m.recall == 0.0);
    vl_word_list_free(&l);
    free(line);
    free(zh);
    vl_shapes_free(sc);
  }
  /* a description missing one object's colour and shape */
  const char *two = "{\"objects\": [{\"color\": \"green\", \"shape\": \"circle\"}, {\"color\": "
                    "\"yellow\", \"shape\": \"triangle\"}]}";
  REQUIRE(vl_word_list_from_manifest_lang(two, strlen(two), 1, &l) == VL_OK);
  vl_metrics_spec spec = {.keywords = (const char *const *)l.words, .n_keywords = l.n, .zh = 1};
  vl_text_metrics m;
  REQUIRE(vl_metrics_measure("画面中只有一个大的绿色圆形。", &spec, &m) == VL_OK);
  CHECK(m.n_keywords == 4 && m.n_found == 2 && m.recall == 0.5);
  vl_word_list_free(&l);
}

int main(void) {
  RUN(test_reasoning_split);
  RUN(test_elements_shapes_world);
  RUN(test_elements_general);
  RUN(test_elements_errors);
  RUN(test_prompt_single);
  RUN(test_prompt_multi);
  RUN(test_prompt_errors);
  RUN(test_split_items);
  RUN(test_metrics_matching);
  RUN(test_metrics_measure);
  RUN(test_word_lists);
  RUN(test_zh_recall);
  return test_summary();
}
