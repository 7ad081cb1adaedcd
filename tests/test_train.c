/* Training: the Shapes World vocabulary, model initialisation through the
 * ordinary BLIP loader, a smoke run whose loss falls, every weight moving,
 * bit-identical resume, and error paths. Tiny config, 1-object scenes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "io/safetensors.h"
#include "io/shapes_world.h"
#include "models/blip.h"
#include "tasks/shapes_vocab.h"
#include "tasks/train.h"
#include "tensor/ops.h"
#include "tensor/optim.h"
#include "test.h"

static void test_vocab_covers_the_world(void) {
  const char *dir = test_tmp_path("vocab");
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
  REQUIRE(system(cmd) == 0);
  REQUIRE(vl_shapes_vocab_write(dir) == VL_OK);
  vl_tokenizer *tok = vl_tokenizer_load(dir);
  REQUIRE(tok);
  int n = 0;
  const char *const *v = vl_shapes_vocab(&n);
  CHECK(vl_tokenizer_n_vocab(tok) == n);
  CHECK(vl_shapes_vocab_id("[DEC]") == VL_SV_DEC && vl_shapes_vocab_id("maybe") == n - 1);
  int *seen = calloc((size_t)n, sizeof *seen);
  REQUIRE(seen);
  vl_shapes_options opt = vl_shapes_default_options();
  opt.n_hypotheses = 6;
  int unk = 0;
  for (int64_t i = 0; i < 300; i++) {
    vl_shapes_scene *sc = vl_shapes_generate(11, i, &opt);
    REQUIRE(sc);
    char texts[8][VL_SHAPES_TEXT_MAX + 64];
    int nt = 0;
    snprintf(texts[nt++], sizeof texts[0], "%s", sc->caption);
    for (int j = 0; j < sc->n_hypotheses; j++) {
      REQUIRE(vl_shapes_entail_prompt(sc->hypotheses[j].text, texts[nt], (int)sizeof texts[0]) ==
              VL_OK);
      nt++;
      seen[vl_shapes_vocab_id(vl_shapes_answer_word((int)sc->hypotheses[j].label))]++;
    }
    for (int k = 0; k < nt; k++) {
      int32_t *ids = NULL;
      size_t m = 0;
      REQUIRE(vl_tokenizer_encode(tok, texts[k], strlen(texts[k]), 0, &ids, &m) == VL_OK);
      for (size_t q = 0; q < m; q++) {
        unk += ids[q] < VL_SV_FIRST_WORD;
        if (ids[q] >= 0 && ids[q] < n) seen[ids[q]]++;
      }
      free(ids);
    }
    vl_shapes_free(sc);
  }
  CHECK(unk == 0);
  for (int i = VL_SV_FIRST_WORD; i < n; i++)
    if (!seen[i]) printf("  word '%s' never produced\n", v[i]);
  int dead = 0;
  for (int i = VL_SV_FIRST_WORD; i < n; i++)
    dead += !seen[i];
  CHECK(dead == 0);
  char small[16];
  CHECK(vl_shapes_entail_prompt("there is a red circle.", small, sizeof small) == VL_ERR_LIMIT);
  free(seen);
  vl_tokenizer_free(tok);
}

static void test_init_loads_with_blip_loader(void) {
  const char *dir = test_tmp_path("init");
  REQUIRE(vl_train_init_model(dir, "tiny", 0, 3) == VL_OK);
  vl_blip *m = vl_blip_load(dir);
  REQUIRE(m);
  CHECK(m->kind == VL_BLIP_CAPTION && m->vcfg.patch_size == 16 && m->tcfg.hidden == 32);
  CHECK(m->tok != NULL && m->tcfg.bos == VL_SV_DEC && m->tcfg.sep == VL_SV_SEP);
  /* generation_config.json leaves room for the longest caption, which HF's default 20 cuts */
  CHECK(m->max_length == VL_TRAIN_GEN_MAX_LENGTH);
  int64_t *ids = NULL, n = 0;
  REQUIRE(vl_blip_prompt_ids(m,
                             "a small red square, a large blue circle, a small green triangle "
                             "and a large yellow square.",
                             &ids, &n) == VL_OK);
  CHECK(n + 1 <= m->max_length && n + 1 > VL_BLIP_DEFAULT_MAX_LENGTH); /* + [SEP] */
  free(ids);
  REQUIRE(vl_blip_prompt_ids(m, "a small red circle.", &ids, &n) == VL_OK);
  CHECK(n == 6 && ids[0] == VL_SV_DEC && ids[1] == vl_shapes_vocab_id("a") &&
        ids[5] == vl_shapes_vocab_id("."));
  free(ids);
  vl_blip_free(m);
  /* the trainable loader sees every tensor, patch weight included */
  vl_tensor **p = NULL;
  int64_t np = 0;
  vl_blip *tm = vl_train_load_blip(dir, &p, &np);
  REQUIRE(tm);
  vl_safetensors *st = vl_st_open(test_tmp_path("init/model.safetensors"));
  REQUIRE(st);
  CHECK((size_t)np == vl_st_count(st));
  for (int64_t i = 0; i < np; i++)
    CHECK(vl_st_find(st, p[i]->name) != NULL && p[i]->grad);
  /* the ViT position table starts as the 2-D sine-cosine code: class row 0; the cell at
   * (row y, column x) has sin/cos(y * w_k) in its first half, sin/cos(x * w_k) in its second */
  const vl_st_tensor *pe = vl_st_find(st, "vision_model.embeddings.position_embedding");
  REQUIRE(pe && pe->ndim == 3);
  const int64_t D = pe->shape[2];
  float *tab = malloc((size_t)vl_st_numel(pe) * sizeof *tab);
  REQUIRE(tab && vl_st_to_f32(pe, tab) == VL_OK);
  const int64_t grid = 96 / 16, q = D / 4;
  CHECK(pe->shape[1] == 1 + grid * grid);
  CHECK(tab[0] == 0.0f && tab[D - 1] == 0.0f);
  const int64_t y = 2, x = 5;
  const float *cell = tab + (1 + y * grid + x) * D;
  for (int64_t k = 0; k < q; k++) {
    const double w = pow(10000.0, -(double)k / (double)q);
    CHECK_NEAR(cell[k], 0.3 * sin(y * w), 1e-6);
    CHECK_NEAR(cell[q + k], 0.3 * cos(y * w), 1e-6);
    CHECK_NEAR(cell[2 * q + k], 0.3 * sin(x * w), 1e-6);
    CHECK_NEAR(cell[3 * q + k], 0.3 * cos(x * w), 1e-6);
  }
  free(tab);
  vl_st_close(st);
  free(p);
  vl_blip_free(tm);
  CHECK(vl_train_init_model(test_tmp_path("bad"), "huge", 0, 1) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "huge") != NULL);
  CHECK(vl_train_init_model(test_tmp_path("bad"), "tiny", 7, 1) == VL_ERR_INVALID);
}

static vl_train_opts tiny_opts(const char *out, int64_t steps) {
  vl_train_opts o;
  vl_train_default_opts(&o);
  o.out_dir = out;
  o.config = "tiny";
  o.steps = steps;
  o.batch = 4;
  o.warmup = 2;
  o.hypotheses = 2;
  o.max_objects = 1;
  o.lr = 3e-3;
  o.save_every = 0;
  o.seed = 5;
  return o;
}

/* Tensors of two safetensors files equal byte for byte; returns how many differ. */
static int count_diff(const char *a, const char *b, int *n_out) {
  vl_safetensors *x = vl_st_open(a), *y = vl_st_open(b);
  if (!x || !y) {
    vl_st_close(x);
    vl_st_close(y);
    return -1;
  }
  int diff = 0;
  *n_out = (int)vl_st_count(x);
  for (size_t i = 0; i < vl_st_count(x); i++) {
    const vl_st_tensor *t = vl_st_at(x, i), *u = vl_st_find(y, t->name);
    diff += !u || u->nbytes != t->nbytes || memcmp(u->data, t->data, t->nbytes);
  }
  vl_st_close(x);
  vl_st_close(y);
  return diff;
}

static void test_smoke_run_learns_and_reloads(void) {
  const char *out = test_tmp_path("smoke");
  vl_train_opts o = tiny_opts(out, 20);
  vl_train_report r;
  REQUIRE(vl_train(&o, &r) == VL_OK);
  CHECK(r.step == 20);
  printf("  loss %.4f -> %.4f, caption acc %.3f, answer acc %.3f, %.1f images/s\n", r.loss_first,
         r.loss, r.caption_acc, r.answer_acc, r.images_per_s);
  CHECK(r.loss < 0.8 * r.loss_first);
  /* every weight moved (the patch embedding's gradient reaches it too) */
  REQUIRE(vl_train_init_model(test_tmp_path("smoke_init"), "tiny", 0, 5) == VL_OK);
  vl_safetensors *a = vl_st_open(test_tmp_path("smoke/model.safetensors"));
  vl_safetensors *b = vl_st_open(test_tmp_path("smoke_init/model.safetensors"));
  REQUIRE(a && b);
  CHECK(vl_st_count(a) == vl_st_count(b));
  for (size_t i = 0; i < vl_st_count(a); i++) {
    const vl_st_tensor *t = vl_st_at(a, i), *u = vl_st_find(b, t->name);
    REQUIRE(u && u->nbytes == t->nbytes);
    if (!memcmp(t->data, u->data, t->nbytes)) printf("  unchanged: %s\n", t->name);
    CHECK(memcmp(t->data, u->data, t->nbytes) != 0);
  }
  CHECK(strcmp(vl_st_metadata(a, "vlens_step"), "20") == 0);
  vl_st_close(a);
  vl_st_close(b);
  /* the folder is an ordinary BLIP checkpoint */
  vl_blip *m = vl_blip_load(out);
  REQUIRE(m);
  vl_shapes_scene *sc = vl_shapes_generate(99, 0, NULL);
  REQUIRE(sc);
  vl_ctx *c = vl_ctx_new();
  vl_tensor *px = vl_blip_pixels(c, m, sc->image, NULL);
  REQUIRE(px);
  int64_t bos = m->tcfg.bos, *seq = NULL, n = 0;
  CHECK(vl_blip_generate(m, px, &bos, 1, 24, &seq, &n) == VL_OK && n > 1);
  free(seq);
  vl_ctx_free(c);
  vl_shapes_free(sc);
  vl_blip_free(m);
  /* a second fresh run into the same folder is refused */
  CHECK(vl_train(&o, NULL) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "--resume") != NULL);
}

/* Non-default template weights too: the resumed half must restore them
 * from the checkpoint to draw the same hypotheses. */
static void test_resume_is_bit_identical(void) {
  vl_train_opts a = tiny_opts(test_tmp_path("straight"), 6);
  a.template_weights[VL_TPL_UNKNOWABLE] = 5;
  REQUIRE(vl_train(&a, NULL) == VL_OK);
  vl_train_opts b = tiny_opts(test_tmp_path("halves"), 6);
  b.template_weights[VL_TPL_UNKNOWABLE] = 5;
  b.stop_after = 3;
  REQUIRE(vl_train(&b, NULL) == VL_OK);
  int n = 0;
  CHECK(count_diff(test_tmp_path("straight/model.safetensors"),
                   test_tmp_path("halves/model.safetensors"), &n) > 0);
  vl_train_opts r = {0};
  r.out_dir = test_tmp_path("halves");
  r.resume = true;
  REQUIRE(vl_train(&r, NULL) == VL_OK);
  CHECK(count_diff(test_tmp_path("straight/model.safetensors"),
                   test_tmp_path("halves/model.safetensors"), &n) == 0);
  CHECK(n > 10);
  CHECK(count_diff(test_tmp_path("straight/optimizer.safetensors"),
                   test_tmp_path("halves/optimizer.safetensors"), &n) == 0);
  vl_safetensors *st = vl_st_open(test_tmp_path("halves/optimizer.safetensors"));
  REQUIRE(st);
  CHECK(!strcmp(vl_st_metadata(st, "vlens_step"), "6"));
  CHECK(!strcmp(vl_st_metadata(st, "vlens_next_scene"), "24"));
  CHECK(strstr(vl_st_metadata(st, "vlens_train_opts"), "\"config\":\"tiny\"") != NULL);
  CHECK(strstr(vl_st_metadata(st, "vlens_train_opts"), "\"template_weights\":[1,1,1,1,5]") != NULL);
  vl_st_close(st);
}

/* --resume with --steps: the run continues to the new total (the schedule's
 * remainder is reshaped); a total not beyond the step reached is refused. */
static void test_resume_with_new_total(void) {
  vl_train_opts b = tiny_opts(test_tmp_path("longer"), 6);
  b.stop_after = 3;
  REQUIRE(vl_train(&b, NULL) == VL_OK);
  vl_train_opts r = {0};
  r.out_dir = test_tmp_path("longer");
  r.resume = true;
  r.resume_steps = 3;
  CHECK(vl_train(&r, NULL) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "must exceed") != NULL);
  r.resume_steps = 8;
  REQUIRE(vl_train(&r, NULL) == VL_OK);
  vl_safetensors *st = vl_st_open(test_tmp_path("longer/optimizer.safetensors"));
  REQUIRE(st);
  CHECK(!strcmp(vl_st_metadata(st, "vlens_step"), "8"));
  CHECK(strstr(vl_st_metadata(st, "vlens_train_opts"), "\"steps\":8") != NULL);
  vl_st_close(st);
}

/* The per-image reference: for each image its own vision pass, one text
 * pass per text, loss = caption CE + mean answer CE, backward scaled 1/n
 * (how vlens train ran before batching). */
static double per_image_loss(vl_ctx *c, const vl_blip *m, const vl_train_sample *s, int64_t n) {
  double total = 0;
  for (int64_t b = 0; b < n; b++) {
    size_t mark = vl_ctx_mark(c);
    vl_tensor *px = vl_blip_pixels(c, m, s[b].image, NULL);
    vl_tensor *img = vl_vit_forward(c, &m->vision, px, NULL);
    vl_tensor *loss = NULL, *ans = NULL;
    for (int k = -1; k < s[b].n_hyp; k++) {
      const int64_t *ids = k < 0 ? s[b].cap : s[b].hyp[k];
      int64_t T = k < 0 ? s[b].cap_n : s[b].hyp_n[k], from = k < 0 ? 0 : T - 2, nr = T - 1 - from;
      vl_tensor *id = vl_wrap(c, VL_I64, 1, &T, (void *)ids);
      vl_tensor *h = vl_blip_text_forward(c, m, id, img, true, NULL, NULL);
      int64_t s2[2] = {nr, m->tcfg.vocab};
      vl_tensor *lg = vl_reshape(c, vl_blip_lm_head(c, m, vl_slice(c, h, 1, from, T - 1)), 2, s2);
      vl_tensor *tg = vl_wrap(c, VL_I64, 1, &nr, (void *)(ids + from + 1));
      vl_tensor *l = vl_cross_entropy(c, lg, tg, -100);
      if (k < 0)
        loss = l;
      else
        ans = ans ? vl_add(c, ans, l) : l;
    }
    if (ans) loss = vl_add(c, loss, vl_scale(c, ans, 1.0f / (float)s[b].n_hyp));
    if (!loss) return -1;
    float scale = 1.0f / (float)n;
    total += vl_f32(loss)[0] * scale;
    if (vl_backward(c, loss, &scale)) return -1;
    vl_ctx_reset(c, mark);
  }
  return total;
}

/* A fresh tiny model in the test folder `name`, loaded trainable. */
static vl_blip *tiny_trainable(const char *name, uint64_t seed, vl_tensor ***p, int64_t *np) {
  const char *dir = test_tmp_path(name);
  if (vl_train_init_model(dir, "tiny", 0, seed) != VL_OK) return NULL;
  return vl_train_load_blip(dir, p, np);
}

static void test_batched_equals_per_image(void) {
  vl_tensor **p = NULL;
  int64_t np = 0;
  vl_blip *m = tiny_trainable("batch_parity", 9, &p, &np);
  REQUIRE(m);
  enum { N = 4 };
  vl_train_sample s[N];
  int64_t cap_rows = 0;
  bool differ = false;
  for (int b = 0; b < N; b++) { /* up to 4 objects: captions of 7..17 tokens */
    REQUIRE(vl_train_sample_make(m, 4, b, 1, 4, 2, NULL, &s[b]) == VL_OK);
    cap_rows += s[b].cap_n - 1;
    differ |= s[b].cap_n != s[0].cap_n;
  }
  CHECK(differ);
  vl_ctx *c = vl_ctx_new();
  REQUIRE(c);
  vl_ctx_set_recording(c, true);
  vl_zero_param_grads(p, np);
  double ref = per_image_loss(c, m, s, N);
  REQUIRE(ref > 0);
  float **g = calloc((size_t)np, sizeof *g);
  REQUIRE(g);
  for (int64_t i = 0; i < np; i++) {
    g[i] = malloc((size_t)p[i]->numel * sizeof(float));
    REQUIRE(g[i]);
    memcpy(g[i], p[i]->grad, (size_t)p[i]->numel * sizeof(float));
  }
  vl_zero_param_grads(p, np);
  vl_train_stats st = {0};
  REQUIRE(vl_train_batch(c, m, s, N, &st) == VL_OK);
  printf("  loss per-image %.7f batched %.7f\n", ref, st.loss);
  CHECK(fabs(st.loss - ref) <= 1e-4 * fabs(ref));
  CHECK(st.cap_n == cap_rows && st.ans_n == 2 * N);
  /* Relative to the tensor's largest gradient, or to 1e-3 of the largest
   * overall: key biases get exactly zero gradient in exact arithmetic
   * (softmax ignores a per-row shift), so theirs is rounding noise. */
  double gmax = 0;
  for (int64_t i = 0; i < np; i++)
    for (int64_t j = 0; j < p[i]->numel; j++)
      gmax = fmax(gmax, fabs(g[i][j]));
  double worst = 0;
  const char *worst_name = "";
  for (int64_t i = 0; i < np; i++) {
    double mx = 0, d = 0;
    for (int64_t j = 0; j < p[i]->numel; j++) {
      mx = fmax(mx, fabs(g[i][j]));
      d = fmax(d, fabs(g[i][j] - p[i]->grad[j]));
    }
    CHECK(mx > 0); /* every parameter gets a gradient */
    double rel = d / fmax(mx, 1e-3 * gmax);
    if (rel > worst) {
      worst = rel;
      worst_name = p[i]->name;
    }
    free(g[i]);
  }
  printf("  worst gradient difference %.2e (relative to the tensor's max) in %s\n", worst,
         worst_name);
  CHECK(worst <= 1e-4);
  free(g);
  for (int b = 0; b < N; b++)
    vl_train_sample_free(&s[b]);
  vl_ctx_free(c);
  free(p);
  vl_blip_free(m);
}

/* vl_blip_text_forward_batch against one text at a time: causal with right
 * padding, and bidirectional with the padding-key mask (lens); two images,
 * two texts each. */
static void test_text_batch_matches_single(void) {
  const char *dir = test_tmp_path("text_batch");
  REQUIRE(vl_train_init_model(dir, "tiny", 0, 2) == VL_OK);
  vl_blip *m = vl_blip_load(dir);
  REQUIRE(m);
  vl_ctx *c = vl_ctx_new();
  vl_tensor *px[2];
  for (int b = 0; b < 2; b++) {
    vl_shapes_scene *sc = vl_shapes_generate(8, b, NULL);
    REQUIRE(sc);
    px[b] = vl_blip_pixels(c, m, sc->image, NULL);
    vl_shapes_free(sc);
    REQUIRE(px[b]);
  }
  vl_tensor *img = vl_vit_forward(c, &m->vision, vl_concat(c, 2, px, 0), NULL);
  REQUIRE(img && img->shape[0] == 2);
  enum { T = 6 };
  const int64_t len[4] = {6, 3, 4, 1};
  int64_t ids[4 * T];
  for (int i = 0; i < 4 * T; i++)
    ids[i] = i % T < len[i / T] ? 5 + (i * 7) % 20 : 0;
  int64_t sid[2] = {4, T};
  for (int causal = 0; causal < 2; causal++) {
    vl_tensor *h =
        vl_blip_text_forward_batch(c, m, vl_wrap(c, VL_I64, 2, sid, ids), len, img, causal);
    REQUIRE(h && h->shape[0] == 4 && h->shape[1] == T);
    double worst = 0;
    for (int t = 0; t < 4; t++) {
      int64_t n = len[t];
      vl_tensor *one = vl_slice(c, img, 0, t / 2, t / 2 + 1);
      vl_tensor *r = vl_blip_text_forward(c, m, vl_wrap(c, VL_I64, 1, &n, ids + t * T), one, causal,
                                          NULL, NULL);
      REQUIRE(r);
      for (int64_t i = 0; i < n * m->tcfg.hidden; i++)
        worst = fmax(worst, fabs(vl_f32(r)[i] - vl_f32(h)[t * T * m->tcfg.hidden + i]));
    }
    printf("  %s: worst difference %.2e\n", causal ? "causal" : "bidirectional", worst);
    CHECK(worst < 1e-4);
  }
  vl_ctx_free(c);
  vl_blip_free(m);
}

static void test_errors(void) {
  vl_train_opts o = tiny_opts(NULL, 5);
  CHECK(vl_train(&o, NULL) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "--out") != NULL);
  o = tiny_opts(test_tmp_path("e1"), 0);
  CHECK(vl_train(&o, NULL) == VL_ERR_INVALID);
  o = tiny_opts(test_tmp_path("e1"), 5);
  o.max_objects = 5;
  CHECK(vl_train(&o, NULL) == VL_ERR_INVALID);
  vl_train_opts r = {0};
  r.out_dir = test_tmp_path("nothing_here");
  r.resume = true;
  CHECK(vl_train(&r, NULL) < 0);
  CHECK(strstr(vl_last_error(), "--resume") != NULL);
  /* curriculum caps */
  o = tiny_opts(test_tmp_path("e1"), 90);
  o.max_objects = 4;
  CHECK(vl_train_max_objects(&o, 0) == 2 && vl_train_max_objects(&o, 10) == 3 &&
        vl_train_max_objects(&o, 20) == 4);
  o.curriculum = false;
  CHECK(vl_train_max_objects(&o, 0) == 4);
  /* object weights: default = the generator's own 1..cap draw */
  o.curriculum = true;
  int lo, hi;
  vl_train_object_range(&o, 0, 7, &lo, &hi);
  CHECK(lo == 1 && hi == 2);
  double w[4];
  CHECK(vl_train_parse_weights("0,1,2,3", 4, w, "--object-weights") == VL_OK && w[3] == 3);
  CHECK(vl_train_parse_weights("0,0,0,0", 4, w, "--object-weights") == VL_ERR_INVALID);
  CHECK(vl_train_parse_weights("1,2,3", 4, w, "--object-weights") == VL_ERR_INVALID);
  CHECK(vl_train_parse_weights("1,2,3,-4", 4, w, "--object-weights") == VL_ERR_INVALID);
  CHECK(vl_train_parse_weights("1,2,3,4x", 4, w, "--object-weights") == VL_ERR_INVALID);
  double tw[VL_TPL_N];
  CHECK(vl_train_parse_weights("1,1,1,4,0.5", VL_TPL_N, tw, "--template-weights") == VL_OK &&
        tw[VL_TPL_RELATION] == 4 && tw[VL_TPL_UNKNOWABLE] == 0.5);
  CHECK(vl_train_parse_weights("1,1,1,4", VL_TPL_N, tw, "--template-weights") == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "--template-weights") != NULL);
  o = tiny_opts(test_tmp_path("e2"), 5);
  o.max_objects = 2;
  o.object_weights[0] = o.object_weights[1] = 0;
  CHECK(vl_train(&o, NULL) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "--object-weights") != NULL);
  o = tiny_opts(test_tmp_path("e3"), 5);
  o.template_weights[VL_TPL_COUNT] = -1;
  CHECK(vl_train(&o, NULL) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "--template-weights") != NULL);
}

/* --object-weights: counts follow the weights (zero never drawn, the cap
 * respected), the same for the same scene index, and the sample's caption
 * has that many phrases (one "a" each). */
static void test_object_weights(void) {
  vl_train_opts o = tiny_opts(test_tmp_path("objw"), 90);
  o.max_objects = 4;
  o.curriculum = false;
  o.object_weights[0] = 0;
  o.object_weights[1] = 1;
  o.object_weights[2] = 1;
  o.object_weights[3] = 2;
  int seen[5] = {0};
  for (int64_t i = 0; i < 4000; i++) {
    int lo, hi, lo2, hi2;
    vl_train_object_range(&o, 50, i, &lo, &hi);
    vl_train_object_range(&o, 50, i, &lo2, &hi2);
    CHECK(lo == hi && lo == lo2 && hi == hi2 && lo >= 1 && lo <= 4);
    if (lo >= 1 && lo <= 4) seen[lo]++;
  }
  printf("  counts of 1..4 objects for weights 0,1,1,2: %d %d %d %d\n", seen[1], seen[2], seen[3],
         seen[4]);
  CHECK(seen[1] == 0);
  CHECK(seen[2] > 800 && seen[2] < 1200 && seen[3] > 800 && seen[3] < 1200);
  CHECK(seen[4] > 1800 && seen[4] < 2200);
  o.curriculum = true; /* step 0 caps at 2 */
  for (int64_t i = 0; i < 200; i++) {
    int lo, hi;
    vl_train_object_range(&o, 0, i, &lo, &hi);
    CHECK(lo == 2 && hi == 2);
  }
  vl_tensor **p = NULL;
  int64_t np = 0;
  vl_blip *m = tiny_trainable("objw_model", 9, &p, &np);
  REQUIRE(m);
  const int32_t a = vl_tokenizer_token_to_id(m->tok, "a");
  REQUIRE(a >= 0);
  o.curriculum = false;
  for (int64_t i = 0; i < 40; i++) {
    int lo, hi;
    vl_train_object_range(&o, 50, i, &lo, &hi);
    vl_train_sample s;
    REQUIRE(vl_train_sample_make(m, 4, i, lo, hi, 0, NULL, &s) == VL_OK);
    int phrases = 0;
    for (int64_t t = 0; t < s.cap_n; t++)
      phrases += s.cap[t] == a;
    CHECK(phrases == lo);
    vl_train_sample_free(&s);
  }
  free(p);
  vl_blip_free(m);
}

/* --init-from: a new run starts from the source's weights (a step at a
 * vanishing learning rate leaves them where they were, far from the fresh
 * draw of its own seed); a source of another patch size is refused. */
static void test_init_from(void) {
  const char *src = test_tmp_path("warm_src");
  REQUIRE(vl_train_init_model(src, "tiny", 0, 77) == VL_OK);
  vl_train_opts o = tiny_opts(test_tmp_path("warm_run"), 1);
  o.init_from = src;
  o.lr = 1e-9;
  o.warmup = 0;
  const int rc = vl_train(&o, NULL);
  if (rc) printf("  %s\n", vl_last_error());
  REQUIRE(rc == VL_OK);
  REQUIRE(vl_train_init_model(test_tmp_path("warm_fresh"), "tiny", 0, o.seed) == VL_OK);
  vl_safetensors *w = vl_st_open(test_tmp_path("warm_run/model.safetensors"));
  vl_safetensors *s = vl_st_open(test_tmp_path("warm_src/model.safetensors"));
  vl_safetensors *f = vl_st_open(test_tmp_path("warm_fresh/model.safetensors"));
  REQUIRE(w && s && f);
  double near_src = 0, near_fresh = 0;
  for (size_t i = 0; i < vl_st_count(w); i++) {
    const vl_st_tensor *t = vl_st_at(w, i), *u = vl_st_find(s, t->name),
                       *v = vl_st_find(f, t->name);
    REQUIRE(u && v && u->nbytes == t->nbytes && v->nbytes == t->nbytes);
    const float *x = t->data, *y = u->data, *z = v->data;
    for (int64_t k = 0; k < (int64_t)(t->nbytes / sizeof(float)); k++) {
      near_src = fmax(near_src, fabs((double)x[k] - y[k]));
      near_fresh = fmax(near_fresh, fabs((double)x[k] - z[k]));
    }
  }
  printf("  max |run - source| %.2e, max |run - fresh init| %.2e\n", near_src, near_fresh);
  CHECK(near_src < 1e-5);
  CHECK(near_fresh > 1e-2);
  vl_st_close(w);
  vl_st_close(s);
  vl_st_close(f);
  /* another patch size: the shapes differ */
  vl_train_opts bad = tiny_opts(test_tmp_path("warm_bad"), 1);
  bad.init_from = src;
  bad.warmup = 0;
  bad.patch = 12;
  CHECK(vl_train(&bad, NULL) == VL_ERR_FORMAT);
  CHECK(strstr(vl_last_error(), "another shape") != NULL);
  bad = tiny_opts(test_tmp_path("warm_missing"), 1);
  bad.warmup = 0;
  bad.init_from = test_tmp_path("no_such_model");
  CHECK(vl_train(&bad, NULL) < 0);
  CHECK(strstr(vl_last_error(), "--init-from") != NULL);
}

int main(void) {
  vl_log_set_quiet(1);
  RUN(test_vocab_covers_the_world);
  RUN(test_init_loads_with_blip_loader);
  RUN(test_text_batch_matches_single);
  RUN(test_batched_equals_per_image);
  RUN(test_smoke_run_learns_and_reloads);
  RUN(test_resume_is_bit_identical);
  RUN(test_resume_with_new_total);
  RUN(test_errors);
  RUN(test_object_weights);
  RUN(test_init_from);
  return test_summary();
}
