/* The enrich LLM trainer: the colour/shape mention check (English and
 * Chinese) on the grammar's own descriptions and on hand-written texts,
 * examples in both languages that tokenize to exactly the enrich prompt +
 * target + <|im_end|>, the language mix, the padded batch loss against
 * per-sample losses, a smoke run whose loss falls and whose folder reloads
 * through the ordinary Qwen loader and generates, warm starts from another
 * folder, bit-identical resume, and error paths. Tiny config, small
 * tokenizer corpus. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "io/safetensors.h"
#include "io/shapes_describe.h"
#include "io/shapes_world.h"
#include "models/qwen_text.h"
#include "tasks/train_qwen.h"
#include "tensor/optim.h"
#include "test.h"
#include "text/chat.h"
#include "text/enrich_prompt.h"
#include "text/shapes_enrich.h"

static vl_train_llm_opts tiny_opts(const char *dir) {
  vl_train_llm_opts o;
  vl_train_llm_default_opts(&o);
  o.out_dir = dir;
  o.config = "tiny";
  o.tok_scenes = 40;
  o.vocab_size = 400;
  o.batch = 3;
  o.steps = 20;
  o.warmup = 2;
  o.lr = 3e-3;
  o.save_every = 0;
  o.seed = 3;
  return o;
}

static void test_mentions_on_grammar_targets(void) {
  vl_shapes_options so = vl_shapes_default_options();
  so.n_hypotheses = 0;
  int keys = 0;
  for (int64_t i = 0; i < 300; i++) {
    char *prompt, *target, *caption;
    vl_enrich_options eo = vl_enrich_default_options();
    eo.lang = i % 2 ? VL_ENRICH_ZH : VL_ENRICH_EN;
    REQUIRE(vl_shapes_enrich_pair(21, i, &eo, &prompt, &target, &caption) == VL_OK);
    vl_shapes_scene *sc = vl_shapes_generate(21, i, &so);
    REQUIRE(sc);
    CHECK(!strcmp(sc->caption, caption)); /* the same scene */
    vl_llm_mentions mn;
    REQUIRE(vl_llm_mentions_check(target, sc, eo.lang, &mn) == VL_OK);
    if (mn.found != mn.keys || mn.invented)
      printf("  scene %lld: %d/%d, invented %d: %s\n", (long long)i, mn.found, mn.keys, mn.invented,
             target);
    CHECK(mn.found == mn.keys && mn.invented == 0);
    CHECK(mn.keys >= 1 && mn.keys <= sc->n_objects);
    keys += mn.keys;
    free(prompt);
    free(target);
    free(caption);
    vl_shapes_free(sc);
  }
  CHECK(keys > 300);
}

static void test_mentions_hand_written(void) {
  vl_shapes_scene sc;
  memset(&sc, 0, sizeof sc);
  sc.n_objects = 2;
  sc.objects[0].color = VL_COLOR_RED;
  sc.objects[0].shape = VL_SHAPE_CIRCLE;
  sc.objects[1].color = VL_COLOR_BLUE;
  sc.objects[1].shape = VL_SHAPE_CIRCLE;
  vl_llm_mentions mn;
  const vl_enrich_lang en = VL_ENRICH_EN, zh = VL_ENRICH_ZH;
  REQUIRE(vl_llm_mentions_check("Two circles: a red circle and a Blue Circle.", &sc, en, &mn) == 0);
  CHECK(mn.keys == 2 && mn.found == 2 && mn.invented == 0);
  REQUIRE(vl_llm_mentions_check("A red circle next to a blue square.", &sc, en, &mn) == 0);
  CHECK(mn.found == 1 && mn.invented == 2); /* "blue square" and "square" */
  REQUIRE(vl_llm_mentions_check("Some green circles.", &sc, en, &mn) == 0);
  CHECK(mn.found == 0 && mn.invented == 2); /* "green circles" and "green" */
  REQUIRE(vl_llm_mentions_check("", &sc, en, &mn) == 0);
  CHECK(mn.keys == 2 && mn.found == 0 && mn.invented == 0);
  CHECK(vl_llm_mentions_check(NULL, &sc, en, &mn) == VL_ERR_INVALID);
  /* Chinese: "<colour><shape>" pairs; invented words in either language */
  REQUIRE(vl_llm_mentions_check("两个圆形：一个大的红色圆形和一个小的蓝色圆形。", &sc, zh, &mn) ==
          0);
  CHECK(mn.keys == 2 && mn.found == 2 && mn.invented == 0);
  REQUIRE(vl_llm_mentions_check("一个红色圆形在蓝色正方形的左边。", &sc, zh, &mn) == 0);
  CHECK(mn.found == 1 && mn.invented == 2); /* "蓝色正方形" and "正方形" */
  REQUIRE(vl_llm_mentions_check("一些绿色的圆形，还有一个 yellow 的。", &sc, zh, &mn) == 0);
  CHECK(mn.found == 0 && mn.invented == 2); /* "绿色" and "yellow" */
  /* English words do not count as found in a Chinese description */
  REQUIRE(vl_llm_mentions_check("a red circle and a blue circle", &sc, zh, &mn) == 0);
  CHECK(mn.keys == 2 && mn.found == 0 && mn.invented == 0);
  REQUIRE(vl_llm_mentions_check("一个红色圆形。", &sc, en, &mn) == 0);
  CHECK(mn.found == 0 && mn.invented == 0);
}

/* A folder with a trained tokenizer and initialised weights (shared). */
static const char *init_dir(void) {
  static int done;
  const char *dir = test_tmp_path("init");
  if (!done) {
    if (vl_train_llm_init(dir, "tiny", 400, 40, 1, 3)) {
      printf("  init: %s\n", vl_last_error());
      return NULL;
    }
    done = 1;
  }
  return dir;
}

/* The init_dir() model loaded for training, n samples of seed (English,
 * Chinese, English), its padding id and a recording context. */
typedef struct {
  vl_qwen_text *m;
  vl_tensor **p;
  int64_t np;
  vl_tokenizer *tok;
  vl_llm_sample s[3];
  int n;
  int32_t pad;
  vl_ctx *c;
} fixture;

static bool fixture_open(fixture *f, int n, uint64_t seed) {
  memset(f, 0, sizeof *f);
  const char *dir = init_dir();
  if (!dir || !(f->m = vl_train_llm_load(dir, &f->p, &f->np, &f->tok))) return false;
  for (; f->n < n; f->n++)
    if (vl_llm_sample_make(f->tok, seed, f->n, f->n % 2 ? VL_ENRICH_ZH : VL_ENRICH_EN, &f->s[f->n]))
      return false;
  f->pad = vl_tokenizer_token_to_id(f->tok, "<|endoftext|>");
  if (!(f->c = vl_ctx_new())) return false;
  vl_ctx_set_recording(f->c, true);
  return true;
}

static void fixture_close(fixture *f) {
  vl_ctx_free(f->c);
  for (int i = 0; i < f->n; i++)
    vl_llm_sample_free(&f->s[i]);
  free(f->p);
  vl_tokenizer_free(f->tok);
  vl_qwen_text_free(f->m);
}

static void test_init_folder_loads(void) {
  const char *dir = init_dir();
  REQUIRE(dir);
  vl_qwen_text *m = vl_qwen_text_load(dir);
  REQUIRE(m);
  vl_tokenizer *tok = vl_tokenizer_load(dir);
  REQUIRE(tok);
  CHECK(m->cfg.kind == VL_QWEN3 && m->cfg.tied && m->cfg.qk_norm);
  CHECK(m->cfg.vocab == vl_tokenizer_n_vocab(tok));
  CHECK(m->cfg.vocab > 261 && m->cfg.vocab <= 400);
  CHECK(vl_qwen_is_eos(&m->cfg, vl_tokenizer_token_to_id(tok, "<|im_end|>")));
  vl_chat_template t;
  CHECK(vl_chat_detect_folder(dir, &t) == VL_OK && t == VL_CHAT_QWEN3);
  /* HF init: normal(0, 0.02) matrices, norm weights 1 */
  double s = 0, s2 = 0;
  const vl_tensor *w = m->layers[0].gate;
  for (int64_t i = 0; i < w->numel; i++) {
    s += vl_get(w, i);
    s2 += (double)vl_get(w, i) * vl_get(w, i);
  }
  CHECK(fabs(s / (double)w->numel) < 0.003);
  CHECK_NEAR(sqrt(s2 / (double)w->numel), 0.02, 0.002);
  CHECK(vl_get(m->layers[0].q_norm, 0) == 1.0f && vl_get(m->norm, 5) == 1.0f);
  /* trainable copies: all F32 with gradients, each listed once */
  vl_tensor **p = NULL;
  int64_t np = 0;
  vl_tokenizer *tok2 = NULL;
  vl_qwen_text *mt = vl_train_llm_load(dir, &p, &np, &tok2);
  REQUIRE(mt && tok2);
  CHECK(np == 2 + 11 * mt->cfg.n_layers);
  CHECK(mt->lm_head == mt->embed && mt->embed == p[0]);
  for (int64_t i = 0; i < np; i++)
    CHECK(p[i]->dtype == VL_F32 && p[i]->grad && p[i]->requires_grad && p[i]->name);
  free(p);
  vl_qwen_text_free(mt);
  vl_tokenizer_free(tok2);
  vl_tokenizer_free(tok);
  vl_qwen_text_free(m);
}

static void test_untied_config_has_its_own_head(void) {
  const char *dir = test_tmp_path("untied");
  REQUIRE(vl_train_llm_init(dir, "small-untied", 400, 40, 1, 3) == VL_OK);
  vl_tensor **p = NULL;
  int64_t np = 0;
  vl_qwen_text *m = vl_train_llm_load(dir, &p, &np, NULL);
  REQUIRE(m);
  CHECK(!m->cfg.tied && m->lm_head != m->embed);
  CHECK(np == 3 + 11 * m->cfg.n_layers && p[np - 1] == m->lm_head);
  CHECK(!strcmp(m->lm_head->name, "lm_head.weight") && m->lm_head->grad);
  free(p);
  vl_qwen_text_free(m);
}

static void test_sample_is_prompt_then_target(void) {
  const char *dir = init_dir();
  REQUIRE(dir);
  vl_tokenizer *tok = vl_tokenizer_load(dir);
  REQUIRE(tok);
  const int32_t im_end = vl_tokenizer_token_to_id(tok, "<|im_end|>");
  int ranges_seen = 0, last_lo = -1, langs[2] = {0};
  for (int64_t i = 0; i < 16; i++) {
    const vl_enrich_lang lang = vl_llm_example_lang(9, i, 0.5);
    const int zh = lang == VL_ENRICH_ZH;
    langs[zh]++;
    vl_llm_sample s;
    REQUIRE(vl_llm_sample_make(tok, 9, i, lang, &s) == VL_OK);
    REQUIRE(s.n_prompt > 20 && s.n > s.n_prompt + 5);
    CHECK(s.ids[s.n - 1] == im_end);
    char *ptext = NULL, *ttext = NULL;
    size_t pl, tl;
    REQUIRE(vl_tokenizer_decode(tok, s.ids, (size_t)s.n_prompt, 0, &ptext, &pl) == VL_OK);
    REQUIRE(vl_tokenizer_decode(tok, s.ids + s.n_prompt, (size_t)(s.n - s.n_prompt), 0, &ttext,
                                &tl) == VL_OK);
    /* the prompt is `vlens enrich`'s for this caption with some length range */
    int lo = 0, hi = 0;
    const char *len = strstr(ptext, zh ? "个汉字（" : "(between ");
    REQUIRE(len &&
            sscanf(len, zh ? "个汉字（%d到%d字之间）" : "(between %d and %d)", &lo, &hi) == 2);
    vl_enrich_options o = vl_enrich_default_options();
    o.min_words = lo;
    o.max_words = hi;
    o.lang = lang;
    char *prompt, *target, *caption;
    REQUIRE(vl_shapes_enrich_pair(9, i, &o, &prompt, &target, &caption) == VL_OK);
    const char *caps[1] = {caption};
    char *want = vl_enrich_chat_prompt(VL_CHAT_QWEN3, caps, 1, &o);
    REQUIRE(want);
    CHECK(!strcmp(ptext, want));
    const char *tail = "<|im_start|>assistant\n<think>\n\n</think>\n\n";
    CHECK(pl > strlen(tail) && !strcmp(ptext + pl - strlen(tail), tail));
    char buf[4096];
    snprintf(buf, sizeof buf, "%s<|im_end|>", target);
    CHECK(!strcmp(ttext, buf));
    ranges_seen += lo != last_lo;
    last_lo = lo;
    free(want);
    free(prompt);
    free(target);
    free(caption);
    free(ptext);
    free(ttext);
    vl_llm_sample_free(&s);
  }
  CHECK(ranges_seen >= 4); /* the word range varies between examples */
  CHECK(langs[0] >= 3 && langs[1] >= 3);
  vl_tokenizer_free(tok);
}

static void test_language_mix(void) {
  int zh = 0;
  for (int64_t i = 0; i < 2000; i++) {
    zh += vl_llm_example_lang(5, i, 0.5) == VL_ENRICH_ZH;
    CHECK(vl_llm_example_lang(5, i, 0.5) == vl_llm_example_lang(5, i, 0.5));
    CHECK(vl_llm_example_lang(5, i, 0) == VL_ENRICH_EN);
    CHECK(vl_llm_example_lang(5, i, 1) == VL_ENRICH_ZH);
  }
  CHECK(zh > 900 && zh < 1100);
  /* the bilingual tokenizer has word-sized Chinese tokens */
  const char *dir = test_tmp_path("tok-zh");
  REQUIRE(vl_train_llm_init(dir, "tiny", 2048, 300, 1, 3) == VL_OK);
  vl_tokenizer *tok = vl_tokenizer_load(dir);
  REQUIRE(tok);
  CHECK(vl_tokenizer_n_vocab(tok) > 900 && vl_tokenizer_n_vocab(tok) < 2048); /* stops by itself */
  static const char *const words[] = {"红色", "蓝色", "圆形", "正方形", "三角形", "一个", " red"};
  for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
    int32_t *ids;
    size_t n;
    REQUIRE(vl_tokenizer_encode(tok, words[i], strlen(words[i]), 0, &ids, &n) == VL_OK);
    CHECK(n == 1);
    free(ids);
  }
  /* a description is not fused into clause-sized tokens */
  const char *d = "从左到右依次是一个大的红色圆形和一个小的蓝色正方形。";
  int32_t *ids;
  size_t n;
  REQUIRE(vl_tokenizer_encode(tok, d, strlen(d), 0, &ids, &n) == VL_OK);
  CHECK(n >= 12);
  free(ids);
  vl_tokenizer_free(tok);
}

/* The padded batch's loss is the token-weighted mean of the samples' own
 * (unpadded, batch 1) losses: padding changes nothing. */
static void test_batch_loss_matches_singles(void) {
  fixture f;
  REQUIRE(fixture_open(&f, 3, 4));
  CHECK(f.s[0].n != f.s[1].n || f.s[1].n != f.s[2].n); /* padding is exercised */
  vl_llm_batch_stats all, one;
  vl_zero_param_grads(f.p, f.np);
  REQUIRE(vl_train_llm_batch(f.c, f.m, f.s, 3, f.pad, &all) == VL_OK);
  double wsum = 0, ok = 0;
  int64_t n = 0;
  for (int i = 0; i < 3; i++) {
    REQUIRE(vl_train_llm_batch(f.c, f.m, &f.s[i], 1, f.pad, &one) == VL_OK);
    wsum += one.loss * (double)one.n;
    n += one.n;
    ok += (double)one.ok;
  }
  CHECK(all.n == n && all.ok == (int64_t)ok);
  CHECK_NEAR(all.loss, wsum / (double)n, 1e-4);
  CHECK(all.loss > 4.0); /* untrained: about ln(vocab) */
  double g = 0;
  for (int64_t i = 0; i < f.np; i++)
    for (int64_t k = 0; k < f.p[i]->numel; k++)
      g += fabs(f.p[i]->grad[k]);
  CHECK(g > 0 && isfinite(g));
  /* a sample longer than the model's positions is refused */
  vl_llm_sample big = f.s[0];
  big.n = f.m->cfg.max_pos + 1;
  CHECK(vl_train_llm_batch(f.c, f.m, &big, 1, f.pad, NULL) == VL_ERR_LIMIT);
  CHECK(strstr(vl_last_error(), "positions") != NULL);
  fixture_close(&f);
}

/* Whole-model gradient check: the batch loss's gradient w.r.t. the largest-
 * gradient element of several weights (attention with grouped KV heads and
 * q/k norms, MLP, the tied embedding, a norm) against central differences of
 * the padded (2, T) batch loss. */
static void test_batch_gradient_matches_differences(void) {
  fixture f;
  REQUIRE(fixture_open(&f, 2, 8));
  CHECK(f.m->cfg.n_heads > f.m->cfg.n_kv_heads);
  vl_llm_batch_stats st;
  vl_zero_param_grads(f.p, f.np);
  REQUIRE(vl_train_llm_batch(f.c, f.m, f.s, 2, f.pad, &st) == VL_OK);
  vl_tensor *w[] = {f.m->embed,        f.m->layers[0].wq,   f.m->layers[0].wk,
                    f.m->layers[0].wv, f.m->layers[0].wo,   f.m->layers[0].k_norm,
                    f.m->layers[0].up, f.m->layers[0].down, f.m->layers[0].ln1,
                    f.m->norm};
  const int nw = (int)(sizeof w / sizeof *w);
  int64_t at[16];
  double g[16];
  for (int i = 0; i < nw; i++) {
    at[i] = 0;
    for (int64_t k = 1; k < w[i]->numel; k++)
      if (fabsf(w[i]->grad[k]) > fabsf(w[i]->grad[at[i]])) at[i] = k;
    g[i] = w[i]->grad[at[i]];
  }
  const float eps = 1e-2f;
  for (int i = 0; i < nw; i++) {
    float *x = vl_f32(w[i]) + at[i];
    const float x0 = *x;
    double l[2];
    for (int sgn = 0; sgn < 2; sgn++) {
      *x = x0 + (sgn ? -eps : eps);
      REQUIRE(vl_train_llm_batch(f.c, f.m, f.s, 2, f.pad, &st) == VL_OK);
      l[sgn] = st.loss;
    }
    *x = x0;
    const double fd = (l[0] - l[1]) / (2.0 * eps);
    if (getenv("VL_TEST_VERBOSE") || !(fabs(fd - g[i]) <= 0.03 * fabs(g[i]) + 2e-5))
      printf("  %s[%lld]: analytic %.6g, differences %.6g\n", w[i]->name, (long long)at[i], g[i],
             fd);
    CHECK(fabs(fd - g[i]) <= 0.03 * fabs(g[i]) + 2e-5);
    CHECK(fabs(g[i]) > 1e-4);
  }
  fixture_close(&f);
}

static int eval_calls;
static void on_eval(void *user, int64_t index, const char *caption, const char *description,
                    const vl_llm_mentions *mn) {
  (void)user;
  (void)index;
  eval_calls++;
  if (!caption || !description || mn->keys < 1) eval_calls += 1000;
}

static void test_smoke_run_reloads_and_generates(void) {
  const char *dir = test_tmp_path("smoke");
  vl_train_llm_opts o = tiny_opts(dir);
  vl_train_llm_report rep;
  REQUIRE(vl_train_llm(&o, &rep) == VL_OK);
  CHECK(rep.step == 20);
  printf("  loss %.3f -> %.3f, acc %.3f, %.0f tok/s\n", rep.loss_first, rep.loss, rep.token_acc,
         rep.tokens_per_s);
  CHECK(rep.loss < rep.loss_first - 0.5);
  CHECK(rep.token_acc > 0.0);
  vl_qwen_text *m = vl_qwen_text_load(dir);
  REQUIRE(m);
  vl_tokenizer *tok = vl_tokenizer_load(dir);
  REQUIRE(tok);
  vl_llm_eval ev;
  eval_calls = 0;
  for (int l = 0; l < 2; l++) {
    const vl_enrich_lang lang = l ? VL_ENRICH_ZH : VL_ENRICH_EN;
    REQUIRE(vl_train_llm_eval(m, tok, 12345, 2, lang, 24, on_eval, NULL, &ev) == VL_OK);
    CHECK(eval_calls == 2 * (l + 1));
    CHECK(ev.n == 2 && ev.keys >= 2 && ev.found <= ev.keys);
    CHECK(ev.gen_tokens >= 2 && ev.gen_tokens <= 48);
    CHECK(ev.recall >= 0 && ev.recall <= 1 && ev.no_invented_rate >= 0 && ev.no_invented_rate <= 1);
  }
  CHECK(vl_train_llm_eval(m, tok, 1, 0, VL_ENRICH_EN, 24, NULL, NULL, &ev) == VL_ERR_INVALID);
  vl_tokenizer_free(tok);
  vl_qwen_text_free(m);
}

/* Float i of tensor name in the folder's model.safetensors. */
static float weight_at(const char *dir, const char *name, int64_t i) {
  char path[1200];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  vl_safetensors *st = vl_st_open(path);
  const vl_st_tensor *t = st ? vl_st_find(st, name) : NULL;
  float v = NAN;
  if (t && i < vl_st_numel(t)) memcpy(&v, (const char *)t->data + i * 4, 4);
  vl_st_close(st);
  return v;
}

/* --init-from: a folder with another tokenizer starts from a trained one's
 * weights: tensors by name, vocabulary rows by token string. */
static void test_warm_start(void) {
  const char *src = test_tmp_path("smoke"); /* trained by the smoke test */
  const char *dst = test_tmp_path("warm");
  REQUIRE(vl_train_llm_init(dst, "tiny", 330, 40, 0, 11) == VL_OK); /* English-only, smaller */
  vl_tokenizer *ts = vl_tokenizer_load(src), *td = vl_tokenizer_load(dst);
  REQUIRE(ts && td);
  /* a token only the new vocabulary has keeps its fresh row */
  int32_t only_new = -1, shared = -1, shared_src = -1;
  for (int32_t id = 256; id < vl_tokenizer_n_vocab(td) && (only_new < 0 || shared < 0); id++) {
    const int32_t o = vl_tokenizer_token_to_id(ts, vl_tokenizer_id_to_token(td, id));
    if (o < 0 && only_new < 0) only_new = id;
    if (o >= 0 && o != id && shared < 0) shared = id, shared_src = o;
  }
  REQUIRE(only_new >= 0 && shared >= 0);
  const int64_t C = 32; /* tiny hidden size */
  const float fresh = weight_at(dst, "model.embed_tokens.weight", only_new * C + 3);
  REQUIRE(vl_train_llm_warm_start(dst, src) == VL_OK);
  CHECK(weight_at(dst, "model.embed_tokens.weight", only_new * C + 3) == fresh);
  CHECK(weight_at(dst, "model.embed_tokens.weight", shared * C + 5) ==
        weight_at(src, "model.embed_tokens.weight", shared_src * C + 5));
  CHECK(weight_at(dst, "model.layers.0.mlp.up_proj.weight", 17) ==
        weight_at(src, "model.layers.0.mlp.up_proj.weight", 17));
  CHECK(weight_at(dst, "model.norm.weight", 1) == weight_at(src, "model.norm.weight", 1));
  vl_qwen_text *m = vl_qwen_text_load(dst);
  CHECK(m && m->cfg.vocab == vl_tokenizer_n_vocab(td));
  vl_qwen_text_free(m);
  /* another config (hidden 128, own head): an error naming the source and the tensor */
  CHECK(vl_train_llm_warm_start(test_tmp_path("untied"), src) < 0);
  CHECK(strstr(vl_last_error(), "smoke") && strstr(vl_last_error(), "another shape"));
  vl_tokenizer_free(ts);
  vl_tokenizer_free(td);
}

static void test_resume_is_bit_identical(void) {
  const char *a = test_tmp_path("straight"), *b = test_tmp_path("resumed");
  vl_train_llm_opts o = tiny_opts(a);
  o.steps = 6;
  o.batch = 2;
  REQUIRE(vl_train_llm(&o, NULL) == VL_OK);
  o.out_dir = b;
  o.stop_after = 3;
  REQUIRE(vl_train_llm(&o, NULL) == VL_OK);
  vl_train_llm_opts r;
  vl_train_llm_default_opts(&r);
  r.out_dir = b;
  r.resume = true;
  r.steps = 999; /* ignored: the saved options win */
  vl_train_llm_report rep;
  REQUIRE(vl_train_llm(&r, &rep) == VL_OK);
  CHECK(rep.step == 6);
  const char *files[] = {"model.safetensors", "optimizer.safetensors", "tokenizer.json"};
  for (int i = 0; i < 3; i++) {
    char pa[1200], pb[1200];
    snprintf(pa, sizeof pa, "%s/%s", a, files[i]);
    snprintf(pb, sizeof pb, "%s/%s", b, files[i]);
    size_t la = 0, lb = 0;
    unsigned char *da = test_read_file(pa, &la), *db = test_read_file(pb, &lb);
    REQUIRE(da && db);
    CHECK(la == lb && !memcmp(da, db, la));
    free(da);
    free(db);
  }
  /* a finished run can be extended to a longer schedule, not shortened */
  r.extend_steps = 6;
  CHECK(vl_train_llm(&r, &rep) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "--extend") != NULL);
  r.extend_steps = 8;
  REQUIRE(vl_train_llm(&r, &rep) == VL_OK);
  CHECK(rep.step == 8);
  r.extend_steps = 0;
  REQUIRE(vl_train_llm(&r, &rep) == VL_OK); /* the saved total is now 8: nothing to do */
  CHECK(rep.step == 8);
}

static void test_errors(void) {
  vl_train_llm_opts o = tiny_opts(NULL);
  CHECK(vl_train_llm(&o, NULL) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "--out") != NULL);
  o = tiny_opts(test_tmp_path("bad"));
  o.config = "huge";
  CHECK(vl_train_llm(&o, NULL) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "huge") != NULL);
  o = tiny_opts(test_tmp_path("bad"));
  o.vocab_size = 100;
  CHECK(vl_train_llm(&o, NULL) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "vocab") != NULL);
  o = tiny_opts(test_tmp_path("bad"));
  o.lr = -1;
  CHECK(vl_train_llm(&o, NULL) == VL_ERR_INVALID);
  o = tiny_opts(test_tmp_path("bad"));
  o.zh_share = 1.5;
  CHECK(vl_train_llm(&o, NULL) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "--zh-share") != NULL);
  /* resume with nothing to resume */
  o = tiny_opts(test_tmp_path("empty"));
  o.resume = true;
  CHECK(vl_train_llm(&o, NULL) < 0);
  CHECK(strstr(vl_last_error(), "--resume") != NULL);
  /* a finished run is not overwritten */
  o = tiny_opts(test_tmp_path("straight"));
  CHECK(vl_train_llm(&o, NULL) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "already holds") != NULL);
}

int main(void) {
  vl_log_set_quiet(1);
  RUN(test_mentions_on_grammar_targets);
  RUN(test_mentions_hand_written);
  RUN(test_init_folder_loads);
  RUN(test_untied_config_has_its_own_head);
  RUN(test_sample_is_prompt_then_target);
  RUN(test_language_mix);
  RUN(test_batch_loss_matches_singles);
  RUN(test_batch_gradient_matches_differences);
  RUN(test_smoke_run_reloads_and_generates);
  RUN(test_warm_start);
  RUN(test_resume_is_bit_identical);
  RUN(test_errors);
  return test_summary();
}
