/* BLIP captioning and ITM against the independent goldens in
 * ../shared/golden/blip-{cap,itm}-a: preprocessing, every vision layer's
 * input and attention, vision_out, text self/cross-attention, hidden state,
 * logits / itm_logits, Grad-CAM (acts, grad, cam) and the `vlens dump`
 * output; greedy generation against argmax of full forwards; clear errors
 * for broken folders and bad inputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "goldens.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "models/blip.h"
#include "tensor/ops.h"
#include "test.h"

#define TOL 1e-4
#define TOL_GRAD 1e-3

static void parity(const char *model) {
  vl_blip *m = vl_blip_load(test_shared_path(model));
  if (!m) printf("  %s\n", vl_last_error());
  REQUIRE(m);
  vl_safetensors *st = vl_st_open(golden_path(model, "golden.safetensors"));
  REQUIRE(st);
  vl_ctx *c = vl_ctx_new();
  int64_t tpos = -1, tid = -1;
  vl_tensor *ids = golden_case_ids(c, model, &tpos, &tid);
  REQUIRE(ids);
  /* the processor path gives the same ids */
  cJSON *cj = vl_json_load(golden_path(model, "case.json"));
  int64_t *pids = NULL, np = 0;
  CHECK(vl_blip_prompt_ids(m, vl_json_str(cj, "text", ""), &pids, &np) == VL_OK);
  CHECK(np == ids->numel && pids && !memcmp(pids, ids->data, (size_t)np * 8));
  free(pids);
  vl_image *img = vl_image_load(golden_path(model, vl_json_str(cj, "image", "image.png")), 0);
  cJSON_Delete(cj);
  REQUIRE(img);
  vl_image *resized = NULL;
  vl_tensor *px = vl_blip_pixels(c, m, img, &resized);
  REQUIRE(px && resized);
  const vl_st_tensor *gu8 = vl_st_find(st, "preprocess.resized_u8");
  CHECK(gu8 && gu8->nbytes == (size_t)resized->width * resized->height * 3 &&
        !memcmp(gu8->data, resized->pixels, gu8->nbytes));
  CHECK(golden_cmp_tensor(st, model, "pixel_values", px) <= TOL);

  vl_ctx_set_recording(c, true);
  vl_tensor *vin[8] = {0}, *vat[8] = {0}, *sat[8] = {0}, *cat[8] = {0};
  vl_blip_run r = {.pixels = px,
                   .ids = ids,
                   .vision_layer_in = vin,
                   .vision_attn = vat,
                   .self_attn = sat,
                   .cross_attn = cat};
  int rc = vl_blip_forward(c, m, &r);
  if (rc) printf("  %s\n", vl_last_error());
  REQUIRE(rc == VL_OK);
  char name[64];
  for (int l = 0; l < (int)m->vcfg.n_layers; l++) {
    snprintf(name, sizeof name, "vision_layer_in.%d", l);
    CHECK(golden_cmp_tensor(st, model, name, vin[l]) <= TOL);
    snprintf(name, sizeof name, "vision_attn.%d", l);
    CHECK(golden_cmp_tensor(st, model, name, vat[l]) <= TOL);
  }
  CHECK(golden_cmp_tensor(st, model, "vision_out", r.vision_out) <= TOL);
  for (int l = 0; l < (int)m->tcfg.n_layers; l++) {
    snprintf(name, sizeof name, "attn.%d", l);
    CHECK(golden_cmp_tensor(st, model, name, sat[l]) <= TOL);
    snprintf(name, sizeof name, "cross_attn.%d", l);
    CHECK(golden_cmp_tensor(st, model, name, cat[l]) <= TOL);
  }
  CHECK(golden_cmp_tensor(st, model, "text_hidden", r.hidden) <= TOL);
  vl_tensor *score = r.logits ? r.logits : r.itm_logits;
  REQUIRE(score);
  CHECK(golden_cmp_tensor(st, model, r.logits ? "logits" : "itm_logits", score) <= TOL);
  /* target and Grad-CAM */
  float *dout = calloc((size_t)score->numel, sizeof *dout);
  REQUIRE(dout);
  int64_t at = r.logits ? tpos * m->tcfg.vocab + tid : 1;
  REQUIRE(at >= 0 && at < score->numel);
  dout[at] = 1;
  float s = vl_f32(score)[at];
  CHECK(golden_cmp(st, model, "target_score", &s, 1) <= TOL);
  REQUIRE(vl_backward(c, score, dout) == VL_OK);
  free(dout);
  vl_tensor *x = vin[m->vcfg.n_layers - 1];
  REQUIRE(x && x->grad);
  const int64_t N = x->shape[1] - 1, D = x->shape[2];
  CHECK(golden_cmp(st, model, "gradcam.acts", vl_f32(x) + D, N * D) <= TOL);
  CHECK(golden_cmp(st, model, "gradcam.grad", x->grad + D, N * D) <= TOL_GRAD);
  vl_clear_error();
  vl_image_free(resized);
  vl_image_free(img);
  vl_ctx_free(c);
  vl_st_close(st);
  vl_blip_free(m);
}

static void test_caption_parity(void) { parity("golden/blip-cap-a"); }
static void test_itm_parity(void) { parity("golden/blip-itm-a"); }

static const char *broken_folder(const char *tag, const char *config, const char *weights);

/* The golden target of blip-cap-a is the argmax at the last position; greedy
 * generation's tokens are the argmax of full forwards on each prefix. */
static void test_generate_greedy(void) {
  const char *model = "golden/blip-cap-a";
  vl_blip *m = vl_blip_load(test_shared_path(model));
  REQUIRE(m);
  vl_ctx *c = vl_ctx_new();
  int64_t tpos, tid;
  vl_tensor *ids = golden_case_ids(c, model, &tpos, &tid);
  vl_image *img = vl_image_load(golden_path(model, "image.png"), 0);
  REQUIRE(ids && img);
  vl_tensor *px = vl_blip_pixels(c, m, img, NULL);
  REQUIRE(px);
  int64_t *seq = NULL, n = 0;
  REQUIRE(vl_blip_generate(m, px, ids->data, ids->numel, 12, &seq, &n) == VL_OK);
  CHECK(n > ids->numel && n <= 12);
  CHECK(!memcmp(seq, ids->data, (size_t)ids->numel * 8));
  CHECK(seq[ids->numel] == tid); /* the case's target is the first greedy token */
  for (int64_t k = ids->numel; k < n; k++) {
    vl_tensor *pre = vl_wrap(c, VL_I64, 1, &k, seq);
    vl_blip_run r = {.pixels = px, .ids = pre};
    REQUIRE(vl_blip_forward(c, m, &r) == VL_OK);
    const float *row = vl_f32(r.logits) + (k - 1) * m->tcfg.vocab;
    int64_t best = 0;
    for (int64_t v = 1; v < m->tcfg.vocab; v++)
      if (row[v] > row[best]) best = v;
    CHECK(seq[k] == best);
  }
  for (int64_t k = ids->numel; k < n - 1; k++)
    CHECK(seq[k] != m->tcfg.sep);
  CHECK(n == 12 || seq[n - 1] == m->tcfg.sep);
  char *text = NULL;
  REQUIRE(vl_blip_decode(m, seq, n, &text) == VL_OK);
  CHECK(!strncmp(text, "a picture of cafe", 17)); /* [DEC] left out; 39 is "cafe" */
  printf("  generated %lld tokens: \"%s\"\n", (long long)n, text);
  free(text);
  free(seq);
  /* max_length at or below the prompt: the prompt comes back unchanged */
  REQUIRE(vl_blip_generate(m, px, ids->data, ids->numel, 2, &seq, &n) == VL_OK);
  CHECK(n == ids->numel && !memcmp(seq, ids->data, (size_t)n * 8));
  free(seq);
  /* generation stops at sep_token_id (kept): make "cafe" (39) the separator */
  char *cfg = golden_config_with("golden/blip-cap-a", "text_config.sep_token_id", "39");
  vl_blip *ms = cfg ? vl_blip_load(broken_folder("sep", cfg, NULL)) : NULL;
  free(cfg);
  REQUIRE(ms);
  REQUIRE(vl_blip_generate(ms, px, ids->data, ids->numel, VL_BLIP_DEFAULT_MAX_LENGTH, &seq, &n) ==
          VL_OK);
  CHECK(n == ids->numel + 1 && seq[n - 1] == 39);
  free(seq);
  vl_blip_free(ms);
  /* an ITM model does not generate */
  vl_blip *itm = vl_blip_load(test_shared_path("golden/blip-itm-a"));
  REQUIRE(itm);
  CHECK(vl_blip_generate(itm, px, ids->data, ids->numel, 12, &seq, &n) == VL_ERR_INVALID);
  vl_blip_free(itm);
  vl_image_free(img);
  vl_ctx_free(c);
  vl_blip_free(m);
}

/* The function behind `vlens dump`, in memory, against the golden. */
static void dump_case(const char *model, bool caption) {
  vl_blip *m = vl_blip_load(test_shared_path(model));
  REQUIRE(m);
  vl_ctx *c = vl_ctx_new();
  int64_t tpos = -1, tid = -1;
  vl_tensor *ids = golden_case_ids(c, model, &tpos, &tid);
  REQUIRE(ids);
  vl_dump_opts o = {.image_path = golden_path(model, "image.png"),
                    .ids = ids->data,
                    .n_ids = ids->numel,
                    .attn = true,
                    .has_target = caption,
                    .target_pos = tpos,
                    .target_id = tid};
  char img_path[1024];
  snprintf(img_path, sizeof img_path, "%s", o.image_path);
  o.image_path = img_path;
  vl_st_writer *w = vl_st_writer_new();
  int rc = vl_blip_dump(m, &o, w);
  if (rc) printf("  %s\n", vl_last_error());
  REQUIRE(rc == VL_OK);
  uint8_t *buf = NULL;
  vl_safetensors *out = golden_reopen(w, &buf);
  vl_safetensors *st = vl_st_open(golden_path(model, "golden.safetensors"));
  REQUIRE(out && st);
  const char *want[] = {
      "input_ids",    "pixel_values", "vision_out",   caption ? "logits" : "itm_logits",
      "attn.0",       "attn.1",       "cross_attn.0", "cross_attn.1",
      "gradcam.acts", "gradcam.grad", "gradcam"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    double tol =
        !strncmp(want[i], "gradcam", 7) && strcmp(want[i], "gradcam.acts") ? TOL_GRAD : TOL;
    CHECK(golden_dump_matches(out, st, model, want[i], want[i], tol));
  }
  const vl_st_tensor *p = vl_st_find(out, "position_ids");
  CHECK(p && p->dtype == VL_I64 && vl_st_numel(p) == ids->numel &&
        ((const int64_t *)p->data)[ids->numel - 1] == ids->numel - 1);
  vl_clear_error();
  vl_st_close(st);
  vl_st_close(out);
  free(buf);
  vl_ctx_free(c);
  vl_blip_free(m);
}

static void test_dump_caption(void) { dump_case("golden/blip-cap-a", true); }
static void test_dump_itm(void) { dump_case("golden/blip-itm-a", false); }

/* A copy of blip-cap-a in a temp folder (links), with config.json replaced
 * by `config` (NULL: linked) and model.safetensors by `weights` (NULL: linked). */
static const char *broken_folder(const char *tag, const char *config, const char *weights) {
  static const char *const files[] = {
      "config.json", "model.safetensors",     "preprocessor_config.json",
      "vocab.txt",   "tokenizer_config.json", "special_tokens_map.json"};
  const golden_override over[] = {{"config.json", config, NULL},
                                  {"model.safetensors", NULL, weights}};
  return golden_folder(tag, "golden/blip-cap-a", files, 6, over, 2);
}

static void write_file(const char *dir, const char *name, const char *text) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  REQUIRE(f);
  fputs(text, f);
  fclose(f);
}

/* generate()'s default length: generation_config.json, else config.json's
 * max_length (top level, then text_config), else 20; a broken file is an
 * error, not a silent 20. */
static void test_max_length_from_config(void) {
  vl_blip *m = vl_blip_load(test_shared_path("golden/blip-cap-a"));
  REQUIRE(m);
  CHECK(m->max_length == VL_BLIP_DEFAULT_MAX_LENGTH);
  vl_blip_free(m);
  char *cfg = golden_config_with("golden/blip-cap-a", "text_config.max_length", "17");
  REQUIRE(cfg);
  const char *dir = broken_folder("maxlen", cfg, NULL);
  free(cfg);
  m = vl_blip_load(dir);
  REQUIRE(m);
  CHECK(m->max_length == 17);
  vl_blip_free(m);
  write_file(dir, "generation_config.json", "{\"max_length\": 33, \"num_beams\": 1}");
  m = vl_blip_load(dir);
  REQUIRE(m);
  CHECK(m->max_length == 33);
  vl_blip_free(m);
  write_file(dir, "generation_config.json", "{\"num_beams\": 1}"); /* no max_length there */
  m = vl_blip_load(dir);
  REQUIRE(m);
  CHECK(m->max_length == 17);
  vl_blip_free(m);
  write_file(dir, "generation_config.json", "{\"max_length\": 1}");
  CHECK(vl_blip_load(dir) == NULL);
  CHECK(strstr(vl_last_error(), "max_length") != NULL);
  write_file(dir, "generation_config.json", "{\"max_length\": ");
  CHECK(vl_blip_load(dir) == NULL);
  CHECK(strstr(vl_last_error(), "generation_config.json") != NULL);
}

static void expect_load_error(const char *dir, int code, const char *needle) {
  vl_clear_error();
  vl_blip *m = vl_blip_load(dir);
  CHECK(!m);
  vl_blip_free(m);
  printf("  error: %s\n", vl_last_error());
  CHECK(vl_last_error_code() == code);
  CHECK(strstr(vl_last_error(), needle) != NULL);
}

static void test_errors(void) {
  char *cfg = golden_config_with("golden/blip-cap-a", "text_config.hidden_size", NULL);
  REQUIRE(cfg);
  expect_load_error(broken_folder("nokey", cfg, NULL), VL_ERR_NOTFOUND, "hidden_size");
  free(cfg);
  cfg = golden_config_with("golden/blip-cap-a", "architectures", "[\"BlipForQuestionAnswering\"]");
  expect_load_error(broken_folder("arch", cfg, NULL), VL_ERR_UNSUPPORTED,
                    "BlipForQuestionAnswering");
  free(cfg);
  cfg = golden_config_with("golden/blip-cap-a", "vision_config.hidden_act", "\"swish\"");
  expect_load_error(broken_folder("act", cfg, NULL), VL_ERR_UNSUPPORTED, "swish");
  free(cfg);
  expect_load_error("/nonexistent/blip", VL_ERR_NOTFOUND, "config.json");

  /* mis-shaped tensor: the checkpoint rewritten with one weight cut short */
  vl_safetensors *src = vl_st_open(golden_path("golden/blip-cap-a", "model.safetensors"));
  REQUIRE(src);
  vl_st_writer *w = vl_st_writer_new();
  for (size_t i = 0; i < vl_st_count(src); i++) {
    const vl_st_tensor *t = vl_st_at(src, i);
    int64_t shape[VL_ST_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    if (!strcmp(t->name, "text_decoder.bert.encoder.layer.1.crossattention.self.key.weight"))
      shape[1] -= 1;
    CHECK(vl_st_writer_add(w, t->name, t->dtype, t->ndim, shape, t->data) == VL_OK);
  }
  char wpath[1024];
  snprintf(wpath, sizeof wpath, "%s/bad.safetensors", test_tmpdir());
  CHECK(vl_st_writer_save(w, wpath) == VL_OK);
  vl_st_writer_free(w);
  vl_st_close(src);
  expect_load_error(broken_folder("shape", NULL, wpath), VL_ERR_FORMAT,
                    "layer.1.crossattention.self.key.weight': expected shape [64, 48], found "
                    "[64, 47]");

  /* bad inputs to a good model */
  vl_blip *m = vl_blip_load(test_shared_path("golden/blip-cap-a"));
  REQUIRE(m);
  vl_ctx *c = vl_ctx_new();
  vl_tensor *px = vl_new_f32(c, 4, (int64_t)1, (int64_t)3, (int64_t)32, (int64_t)32);
  int64_t T = 3;
  vl_tensor *ids = vl_new(c, VL_I64, 1, &T);
  ((int64_t *)ids->data)[1] = 79; /* vocab is 79 */
  vl_blip_run r = {.pixels = px, .ids = ids};
  CHECK(vl_blip_forward(c, m, &r) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "outside the vocabulary") != NULL);
  T = 41; /* max_position_embeddings 40 */
  r.ids = vl_new(c, VL_I64, 1, &T);
  CHECK(vl_blip_forward(c, m, &r) == VL_ERR_LIMIT);
  r.ids = ids;
  ((int64_t *)ids->data)[1] = 3;
  r.pixels = vl_new_f32(c, 4, (int64_t)1, (int64_t)3, (int64_t)16, (int64_t)32);
  CHECK(vl_blip_forward(c, m, &r) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "pixel_values") != NULL);
  /* dump: target outside the sequence, missing image */
  int64_t dids[2] = {77, 13};
  vl_dump_opts o = {.image_path = golden_path("golden/blip-cap-a", "image.png"),
                    .ids = dids,
                    .n_ids = 2,
                    .has_target = true,
                    .target_pos = 2,
                    .target_id = 3};
  vl_st_writer *dw = vl_st_writer_new();
  CHECK(vl_blip_dump(m, &o, dw) == VL_ERR_INVALID);
  o.image_path = "/nonexistent.png";
  CHECK(vl_blip_dump(m, &o, dw) != VL_OK);
  vl_st_writer_free(dw);
  vl_clear_error();
  vl_ctx_free(c);
  vl_blip_free(m);
}

/* blip-cap-a's weights stored as BF16 (A) and as F32 holding the same
 * rounded values (B): the BF16 kernels must give B's outputs. */
static void test_bf16_weights(void) {
  char pa[1024], pb[1024];
  snprintf(pa, sizeof pa, "%s/bf16.safetensors", test_tmpdir());
  snprintf(pb, sizeof pb, "%s/rounded.safetensors", test_tmpdir());
  CHECK(golden_write_bf16_copies("golden/blip-cap-a", pa, pb));
  vl_blip *ma = vl_blip_load(broken_folder("bf16", NULL, pa));
  if (!ma) printf("  %s\n", vl_last_error());
  vl_blip *mb = vl_blip_load(broken_folder("rounded", NULL, pb));
  REQUIRE(ma && mb);
  CHECK(ma->vision.layers[0].qkv_w->dtype == VL_BF16 && ma->word->dtype == VL_BF16);
  vl_ctx *c = vl_ctx_new();
  vl_tensor *ids = golden_case_ids(c, "golden/blip-cap-a", NULL, NULL);
  vl_image *img = vl_image_load(golden_path("golden/blip-cap-a", "image.png"), 0);
  REQUIRE(ids && img);
  vl_tensor *px = vl_blip_pixels(c, ma, img, NULL);
  REQUIRE(px);
  vl_blip_run ra = {.pixels = px, .ids = ids}, rb = {.pixels = px, .ids = ids};
  REQUIRE(vl_blip_forward(c, ma, &ra) == VL_OK && vl_blip_forward(c, mb, &rb) == VL_OK);
  double ev =
      test_max_rel_err(vl_f32(ra.vision_out), vl_f32(rb.vision_out), (size_t)rb.vision_out->numel);
  double el = test_max_rel_err(vl_f32(ra.logits), vl_f32(rb.logits), (size_t)rb.logits->numel);
  printf("  bf16 vs rounded f32: vision_out %.2e, logits %.2e\n", ev, el);
  CHECK(ev <= TOL && el <= TOL);
  vl_image_free(img);
  vl_ctx_free(c);
  vl_blip_free(ma);
  vl_blip_free(mb);
}

/* build/<variant>/vlens dump end to end: exit codes and the written file. */
static void test_dump_cli(void) {
  char dir[1024], img[1100], out[1100], args[4096];
  REQUIRE(realpath(test_shared_path("golden/blip-cap-a"), dir));
  snprintf(img, sizeof img, "%s/image.png", dir);
  snprintf(out, sizeof out, "%s/cli.safetensors", test_tmpdir());
  snprintf(args, sizeof args,
           "-m %s --image %s --prompt 'a picture of' --attn --target-pos 3 --target-id 39 -o %s",
           dir, img, out);
  REQUIRE(test_vlens_exe());
  CHECK(test_run_vlens("dump -q %s", args) == 0);
  vl_safetensors *st = vl_st_open(out);
  REQUIRE(st);
  CHECK(vl_st_count(st) == 12);
  const vl_st_tensor *g = vl_st_find(st, "gradcam");
  CHECK(g && g->ndim == 1 && g->shape[0] == 16);
  vl_st_close(st);
  snprintf(args, sizeof args, "-m %s --image %s --prompt x --target-pos 3 -o %s", dir, img, out);
  CHECK(test_run_vlens("dump -q %s", args) == 2); /* --target-pos without --target-id */
  snprintf(args, sizeof args, "-m %s --image %s --ids '77 13 500' -o %s", dir, img, out);
  CHECK(test_run_vlens("dump -q %s", args) == 1); /* id outside the vocabulary */
  snprintf(args, sizeof args, "-m %s --prompt x -o %s", dir, out);
  CHECK(test_run_vlens("dump -q %s", args) == 1); /* no image */
}

int main(void) {
  RUN(test_caption_parity);
  RUN(test_itm_parity);
  RUN(test_generate_greedy);
  RUN(test_max_length_from_config);
  RUN(test_dump_caption);
  RUN(test_dump_itm);
  RUN(test_errors);
  RUN(test_bf16_weights);
  RUN(test_dump_cli);
  return test_summary();
}
