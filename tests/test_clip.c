/* CLIPModel against the independent golden in ../shared/golden/clip-a:
 * tokenizer ids, preprocessing (resized u8 bytes exactly, pixel_values),
 * every vision layer's input and attention, vision hidden state and pooled
 * output, text attention and hidden state, image/text embeddings,
 * logits_per_image, Grad-CAM of logits_per_image[0, 0] (acts, grad, cam),
 * the `vlens dump` output in memory and through the CLI; the recorded
 * forward feeding the explanation methods (vision-only readout); EOS pooling rules;
 * clear errors for broken folders and bad inputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "explain/method.h"
#include "goldens.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "models/clip.h"
#include "tensor/ops.h"
#include "test.h"

#define TOL 1e-4
#define TOL_GRAD 1e-3
#define MODEL "golden/clip-a"

static const char *gpath(const char *file) { return golden_path(MODEL, file); }

static void test_parity(void) {
  vl_clip *m = vl_clip_load(test_shared_path(MODEL));
  if (!m) printf("  %s\n", vl_last_error());
  REQUIRE(m);
  vl_safetensors *st = vl_st_open(gpath("golden.safetensors"));
  REQUIRE(st);
  vl_ctx *c = vl_ctx_new();
  vl_tensor *ids = golden_case_ids(c, MODEL, NULL, NULL);
  REQUIRE(ids && ids->numel == 9);
  /* the tokenizer gives the case's ids; the golden stores the same */
  cJSON *cj = vl_json_load(gpath("case.json"));
  REQUIRE(cj);
  int64_t *tids = NULL, nt = 0;
  CHECK(vl_clip_text_ids(m, vl_json_str(cj, "text", ""), &tids, &nt) == VL_OK);
  CHECK(nt == ids->numel && tids && !memcmp(tids, ids->data, (size_t)nt * 8));
  free(tids);
  const vl_st_tensor *gid = vl_st_find(st, "input_ids");
  CHECK(gid && gid->dtype == VL_I64 && !memcmp(gid->data, ids->data, (size_t)ids->numel * 8));
  const int64_t eos = vl_json_int(cj, "eos_position", -1);
  const double want_score = vl_json_float(cj, "target.value", 0);
  vl_image *img = vl_image_load(gpath(vl_json_str(cj, "image", "image.png")), 0);
  cJSON_Delete(cj);
  REQUIRE(img);
  /* preprocessing: old-style int size = shortest edge, crop_size int = square */
  CHECK(m->pre.resize_shortest_edge && m->pre.shortest_edge == 32 && m->pre.do_center_crop &&
        m->pre.crop_width == 32 && m->pre.crop_height == 32);
  vl_image *resized = NULL;
  vl_tensor *px = vl_clip_pixels(c, m, img, &resized);
  REQUIRE(px && resized);
  const vl_st_tensor *gu8 = vl_st_find(st, "preprocess.resized_u8");
  CHECK(gu8 && resized->width == 32 && resized->height == 32 &&
        gu8->nbytes == (size_t)resized->width * resized->height * 3 &&
        !memcmp(gu8->data, resized->pixels, gu8->nbytes));
  CHECK(golden_cmp_tensor(st, NULL, "pixel_values", px) <= TOL);

  vl_ctx_set_recording(c, true);
  vl_tensor *vin[4] = {0}, *vat[4] = {0}, *tat[4] = {0};
  vl_clip_run r = {
      .pixels = px, .ids = ids, .vision_layer_in = vin, .vision_attn = vat, .text_attn = tat};
  int rc = vl_clip_forward(c, m, &r);
  if (rc) printf("  %s\n", vl_last_error());
  REQUIRE(rc == VL_OK);
  CHECK(r.eos_pos == eos);
  char name[64];
  for (int l = 0; l < (int)m->vcfg.n_layers; l++) {
    snprintf(name, sizeof name, "vision_layer_in.%d", l);
    CHECK(golden_cmp_tensor(st, NULL, name, vin[l]) <= TOL);
    snprintf(name, sizeof name, "vision_attn.%d", l);
    CHECK(golden_cmp_tensor(st, NULL, name, vat[l]) <= TOL);
  }
  for (int l = 0; l < (int)m->tcfg.n_layers; l++) {
    snprintf(name, sizeof name, "text_attn.%d", l);
    CHECK(golden_cmp_tensor(st, NULL, name, tat[l]) <= TOL);
  }
  CHECK(golden_cmp_tensor(st, NULL, "vision_hidden", r.vision_hidden) <= TOL);
  CHECK(golden_cmp_tensor(st, NULL, "vision_pooled", r.vision_pooled) <= TOL);
  CHECK(golden_cmp_tensor(st, NULL, "text_hidden", r.text_hidden) <= TOL);
  CHECK(golden_cmp_tensor(st, NULL, "image_embeds", r.image_embeds) <= TOL);
  CHECK(golden_cmp_tensor(st, NULL, "text_embeds", r.text_embeds) <= TOL);
  CHECK(golden_cmp_tensor(st, NULL, "logits_per_image", r.logits_per_image) <= TOL);
  CHECK(golden_cmp_tensor(st, NULL, "target_score", r.logits_per_image) <= TOL);
  CHECK_NEAR(vl_f32(r.logits_per_image)[0], want_score, 1e-4 * fabs(want_score));
  /* the logit is exp(scale) * cosine of the embeddings, computed here apart */
  double dot = 0, ni = 0, nx = 0;
  for (int64_t k = 0; k < m->proj_dim; k++) {
    double a = vl_f32(r.image_embeds)[k], b = vl_f32(r.text_embeds)[k];
    dot += a * b, ni += a * a, nx += b * b;
  }
  CHECK_NEAR(vl_f32(r.logits_per_image)[0], exp(m->logit_scale) * dot / sqrt(ni * nx),
             1e-5 * fabs(want_score));
  /* Grad-CAM of logits_per_image[0, 0] at the last vision layer's input */
  REQUIRE(vl_backward(c, r.logits_per_image, NULL) == VL_OK);
  vl_tensor *x = vin[m->vcfg.n_layers - 1];
  REQUIRE(x && x->grad);
  const int64_t N = x->shape[1] - 1, D = x->shape[2];
  CHECK(golden_cmp(st, NULL, "gradcam.acts", vl_f32(x) + D, N * D) <= TOL);
  CHECK(golden_cmp(st, NULL, "gradcam.grad", x->grad + D, N * D) <= TOL_GRAD);
  /* the attention method's readout (CLS query row of the last vision layer)
   * is on the tape with a gradient */
  vl_tensor *last = vat[m->vcfg.n_layers - 1];
  CHECK(last && last->grad && last->shape[1] == m->vcfg.n_heads && last->shape[3] == N + 1);
  vl_clear_error();
  vl_image_free(resized);
  vl_image_free(img);
  vl_ctx_free(c);
  vl_st_close(st);
  vl_clip_free(m);
}

/* vl_clip_dump in memory against the golden (vision_out: the encoder's last
 * hidden state, which the golden calls vision_hidden). */
static void test_dump(void) {
  vl_clip *m = vl_clip_load(test_shared_path(MODEL));
  REQUIRE(m);
  char img_path[1024];
  snprintf(img_path, sizeof img_path, "%s", gpath("image.png"));
  vl_dump_opts o = {.image_path = img_path,
                    .prompt = "a photo of a red circle.",
                    .attn = true,
                    .has_target = true};
  vl_st_writer *w = vl_st_writer_new();
  int rc = vl_clip_dump(m, &o, w);
  if (rc) printf("  %s\n", vl_last_error());
  REQUIRE(rc == VL_OK);
  uint8_t *buf = NULL;
  vl_safetensors *out = golden_reopen(w, &buf);
  vl_safetensors *st = vl_st_open(gpath("golden.safetensors"));
  REQUIRE(out && st);
  const char *pairs[][2] = {{"input_ids", "input_ids"},
                            {"pixel_values", "pixel_values"},
                            {"vision_out", "vision_hidden"},
                            {"vision_pooled", "vision_pooled"},
                            {"image_embeds", "image_embeds"},
                            {"text_embeds", "text_embeds"},
                            {"logits_per_image", "logits_per_image"},
                            {"attn.0", "text_attn.0"},
                            {"attn.1", "text_attn.1"},
                            {"vision_attn.0", "vision_attn.0"},
                            {"vision_attn.1", "vision_attn.1"},
                            {"gradcam.acts", "gradcam.acts"},
                            {"gradcam.grad", "gradcam.grad"},
                            {"gradcam", "gradcam"}};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    double tol =
        !strcmp(pairs[i][0], "gradcam") || !strcmp(pairs[i][0], "gradcam.grad") ? TOL_GRAD : TOL;
    CHECK(golden_dump_matches(out, st, NULL, pairs[i][0], pairs[i][1], tol));
  }
  const vl_st_tensor *p = vl_st_find(out, "position_ids");
  CHECK(p && p->dtype == VL_I64 && vl_st_numel(p) == 9 && ((const int64_t *)p->data)[8] == 8);
  CHECK(vl_st_count(out) == 15);
  vl_st_close(out);
  free(buf);
  /* without attn or target: no attention, no gradcam */
  o.attn = o.has_target = false;
  w = vl_st_writer_new();
  REQUIRE(vl_clip_dump(m, &o, w) == VL_OK);
  REQUIRE((out = golden_reopen(w, &buf)));
  CHECK(vl_st_count(out) == 8 && !vl_st_find(out, "gradcam") && !vl_st_find(out, "attn.0"));
  vl_clear_error();
  vl_st_close(out);
  free(buf);
  vl_st_close(st);
  vl_clip_free(m);
}

/* The recorded forward feeds the explanation plug-ins as a vision-only
 * readout: query = CLS of the vision tower, image tokens = patches 1..N,
 * target = logits_per_image[0, 0]. gradcam and attention against the golden;
 * the other methods give finite maps. */
static void test_explain_hooks(void) {
  vl_clip *m = vl_clip_load(test_shared_path(MODEL));
  REQUIRE(m);
  vl_safetensors *st = vl_st_open(gpath("golden.safetensors"));
  vl_ctx *c = vl_ctx_new();
  vl_tensor *ids = golden_case_ids(c, MODEL, NULL, NULL);
  vl_image *img = vl_image_load(gpath("image.png"), 0);
  REQUIRE(st && ids && img);
  vl_tensor *px = vl_clip_pixels(c, m, img, NULL);
  REQUIRE(px);
  vl_ctx_set_recording(c, true);
  enum { L = 2 };
  REQUIRE(m->vcfg.n_layers == L);
  vl_tensor *vin[L] = {0}, *vat[L] = {0};
  vl_clip_run r = {.pixels = px, .ids = ids, .vision_layer_in = vin, .vision_attn = vat};
  REQUIRE(vl_clip_forward(c, m, &r) == VL_OK);
  REQUIRE(vl_backward(c, r.logits_per_image, NULL) == VL_OK);
  const int T = (int)vin[L - 1]->shape[1], N = T - 1, D = (int)vin[L - 1]->shape[2];
  const int g = (int)(m->vcfg.image_size / m->vcfg.patch_size);
  REQUIRE(g * g == N && px->grad);
  int tokens[64];
  for (int i = 0; i < N; i++)
    tokens[i] = 1 + i;
  const float *probs[L], *grads[L];
  for (int l = 0; l < L; l++) {
    REQUIRE(vat[l] && vat[l]->grad);
    probs[l] = vl_f32(vat[l]);
    grads[l] = vat[l]->grad;
  }
  vl_explain_input in = {.arch = VL_ARCH_VISION_ONLY,
                         .grid_w = g,
                         .grid_h = g,
                         .query = 0,
                         .n_image = N,
                         .image_tokens = tokens,
                         .vision = {L, (int)m->vcfg.n_heads, T, T, probs, grads},
                         .layer = -1,
                         .acts = vl_f32(vin[L - 1]),
                         .acts_grad = vin[L - 1]->grad,
                         .n_tokens = T,
                         .channels = D,
                         .pixel_grad = px->grad,
                         .pix_c = 3,
                         .pix_h = (int)px->shape[2],
                         .pix_w = (int)px->shape[3],
                         .seed = 7};
  float cells[64], want[64];
  REQUIRE(vl_explain_run("gradcam", &in, cells) == VL_OK);
  CHECK(golden_cmp(st, NULL, "gradcam", cells, N) <= TOL_GRAD);
  /* attention: CLS row of the last layer's golden probabilities, mean over heads */
  REQUIRE(vl_explain_run("attention", &in, cells) == VL_OK);
  const vl_st_tensor *ga = vl_st_find(st, "vision_attn.1");
  REQUIRE(ga && vl_st_numel(ga) == (int64_t)m->vcfg.n_heads * T * T);
  float *a = malloc((size_t)vl_st_numel(ga) * sizeof *a);
  REQUIRE(a && vl_st_to_f32(ga, a) == VL_OK);
  for (int i = 0; i < N; i++) {
    double s = 0;
    for (int h = 0; h < m->vcfg.n_heads; h++)
      s += a[(size_t)h * T * T + 1 + i];
    want[i] = (float)(s / m->vcfg.n_heads);
  }
  free(a);
  double e = test_max_rel_err(cells, want, (size_t)N);
  printf("  attention (CLS row) max rel err %.2e\n", e);
  CHECK(e <= TOL);
  const char *others[] = {"rollout", "relevancy", "gradient", "random"};
  for (size_t k = 0; k < sizeof others / sizeof others[0]; k++) {
    int rc = vl_explain_run(others[k], &in, cells);
    if (rc) printf("  %s: %s\n", others[k], vl_last_error());
    CHECK(rc == VL_OK);
    double sum = 0;
    for (int i = 0; i < N; i++)
      sum += cells[i];
    CHECK(isfinite(sum) && sum > 0);
  }
  vl_image_free(img);
  vl_ctx_free(c);
  vl_st_close(st);
  vl_clip_free(m);
}

/* Pooling position: first eos_token_id, or argmax of the ids when the config
 * is the old kind with eos_token_id == 2. */
static void test_eos_position(void) {
  vl_clip *m = vl_clip_load(test_shared_path(MODEL));
  REQUIRE(m);
  int64_t a[6] = {552, 320, 553, 519, 553, 3};
  CHECK(vl_clip_eos_position(m, a, 6) == 2);
  int64_t b[3] = {552, 320, 519};
  CHECK(vl_clip_eos_position(m, b, 3) == 0); /* none: torch argmax of all-false */
  m->tcfg.eos = 2;
  CHECK(vl_clip_eos_position(m, a, 6) == 2); /* first of the two maxima */
  CHECK(vl_clip_eos_position(m, b, 3) == 0);
  int64_t d[4] = {0, 5, 2, 1};
  CHECK(vl_clip_eos_position(m, d, 4) == 1); /* the largest id, not id 2 */
  vl_clip_free(m);
}

/* A copy of clip-a in a temp folder (links), with config.json replaced by
 * `config` (NULL: linked), model.safetensors by `weights`, and
 * preprocessor_config.json by `pre` (NULL: linked). */
static const char *folder(const char *tag, const char *config, const char *weights,
                          const char *pre) {
  static const char *const files[] = {
      "config.json", "model.safetensors",     "preprocessor_config.json", "vocab.json",
      "merges.txt",  "tokenizer_config.json", "special_tokens_map.json"};
  const golden_override over[] = {{"config.json", config, NULL},
                                  {"model.safetensors", NULL, weights},
                                  {"preprocessor_config.json", pre, NULL}};
  return golden_folder(tag, MODEL, files, 7, over, 3);
}

static void expect_load_error(const char *dir, int code, const char *needle) {
  vl_clear_error();
  vl_clip *m = dir ? vl_clip_load(dir) : NULL;
  CHECK(dir && !m);
  vl_clip_free(m);
  printf("  error: %s\n", vl_last_error());
  CHECK(vl_last_error_code() == code);
  CHECK(strstr(vl_last_error(), needle) != NULL);
}

/* clip-a's weights rewritten: `drop` left out, `cut` with its last dim one short. */
static const char *weights_without(const char *tag, const char *drop, const char *cut) {
  static char path[1024];
  vl_safetensors *src = vl_st_open(gpath("model.safetensors"));
  if (!src) return NULL;
  vl_st_writer *w = vl_st_writer_new();
  for (size_t i = 0; i < vl_st_count(src); i++) {
    const vl_st_tensor *t = vl_st_at(src, i);
    if (drop && !strcmp(t->name, drop)) continue;
    int64_t shape[VL_ST_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    if (cut && !strcmp(t->name, cut)) shape[t->ndim - 1] -= 1;
    vl_st_writer_add(w, t->name, t->dtype, t->ndim, shape, t->data);
  }
  snprintf(path, sizeof path, "%s/%s.safetensors", test_tmpdir(), tag);
  int rc = vl_st_writer_save(w, path);
  vl_st_writer_free(w);
  vl_st_close(src);
  return rc ? NULL : path;
}

static void test_errors(void) {
  char *cfg = golden_config_with(MODEL, "text_config.hidden_size", NULL);
  REQUIRE(cfg);
  expect_load_error(folder("nokey", cfg, NULL, NULL), VL_ERR_NOTFOUND, "hidden_size");
  free(cfg);
  cfg = golden_config_with(MODEL, "architectures", "[\"CLIPVisionModel\"]");
  expect_load_error(folder("arch", cfg, NULL, NULL), VL_ERR_UNSUPPORTED, "CLIPVisionModel");
  free(cfg);
  cfg = golden_config_with(MODEL, "text_config.hidden_act", "\"swish\"");
  expect_load_error(folder("act", cfg, NULL, NULL), VL_ERR_UNSUPPORTED, "swish");
  free(cfg);
  expect_load_error("/nonexistent/clip", VL_ERR_NOTFOUND, "config.json");
  expect_load_error(folder("missing", NULL,
                           weights_without("missing", "vision_model.pre_layrnorm.bias", NULL),
                           NULL),
                    VL_ERR_NOTFOUND, "vision_model.pre_layrnorm.bias");
  expect_load_error(
      folder("shape", NULL, weights_without("shape", NULL, "text_projection.weight"), NULL),
      VL_ERR_FORMAT, "text_projection.weight': expected shape [24, 32], found [24, 31]");
  expect_load_error(folder("noscale", NULL, weights_without("noscale", "logit_scale", NULL), NULL),
                    VL_ERR_NOTFOUND, "logit_scale");
  expect_load_error(
      folder("crop", NULL, NULL, "{\"size\": 32, \"crop_size\": 28, \"do_center_crop\": true}"),
      VL_ERR_UNSUPPORTED, "crop_size 28x28");

  /* bad inputs to a good model */
  vl_clip *m = vl_clip_load(test_shared_path(MODEL));
  REQUIRE(m);
  vl_ctx *c = vl_ctx_new();
  vl_tensor *px = vl_new_f32(c, 4, (int64_t)1, (int64_t)3, (int64_t)32, (int64_t)32);
  int64_t T = 3;
  vl_tensor *ids = vl_new(c, VL_I64, 1, &T);
  ((int64_t *)ids->data)[1] = 554; /* vocab is 554 */
  vl_clip_run r = {.pixels = px, .ids = ids};
  CHECK(vl_clip_forward(c, m, &r) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "outside the vocabulary") != NULL);
  T = 17; /* max_position_embeddings 16 */
  r.ids = vl_new(c, VL_I64, 1, &T);
  CHECK(vl_clip_forward(c, m, &r) == VL_ERR_LIMIT);
  ((int64_t *)ids->data)[1] = 3;
  r.ids = ids;
  r.pixels = vl_new_f32(c, 4, (int64_t)1, (int64_t)3, (int64_t)16, (int64_t)32);
  CHECK(vl_clip_forward(c, m, &r) == VL_ERR_INVALID);
  printf("  error: %s\n", vl_last_error());
  CHECK(strstr(vl_last_error(), "pixel_values") != NULL);
  r.pixels = vl_new_f32(c, 3, (int64_t)3, (int64_t)32, (int64_t)32);
  CHECK(vl_clip_forward(c, m, &r) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "pixel_values") != NULL);
  /* dump: no text, a target other than [0, 0], a missing image */
  vl_dump_opts o = {.image_path = gpath("image.png")};
  vl_st_writer *w = vl_st_writer_new();
  CHECK(vl_clip_dump(m, &o, w) == VL_ERR_INVALID);
  o.prompt = "a";
  o.has_target = true, o.target_pos = 1;
  CHECK(vl_clip_dump(m, &o, w) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "logits_per_image[0, 0]") != NULL);
  o.has_target = false;
  o.image_path = "/nonexistent.png";
  CHECK(vl_clip_dump(m, &o, w) != VL_OK);
  vl_st_writer_free(w);
  vl_clear_error();
  vl_ctx_free(c);
  vl_clip_free(m);
}

/* clip-a's weights stored as BF16 (A) and as F32 holding the same rounded
 * values (B): the BF16 paths (matrices kept BF16, vectors widened) must give
 * B's outputs. */
static void test_bf16_weights(void) {
  char pa[1024], pb[1024];
  snprintf(pa, sizeof pa, "%s/bf16.safetensors", test_tmpdir());
  snprintf(pb, sizeof pb, "%s/rounded.safetensors", test_tmpdir());
  CHECK(golden_write_bf16_copies(MODEL, pa, pb));
  vl_clip *ma = vl_clip_load(folder("bf16", NULL, pa, NULL));
  if (!ma) printf("  %s\n", vl_last_error());
  vl_clip *mb = vl_clip_load(folder("rounded", NULL, pb, NULL));
  REQUIRE(ma && mb);
  CHECK(ma->vision.layers[0].q_w->dtype == VL_BF16 && ma->tok_emb->dtype == VL_BF16 &&
        ma->vis_proj->dtype == VL_BF16);
  vl_ctx *c = vl_ctx_new();
  vl_tensor *ids = golden_case_ids(c, MODEL, NULL, NULL);
  vl_image *img = vl_image_load(gpath("image.png"), 0);
  REQUIRE(ids && img);
  vl_tensor *px = vl_clip_pixels(c, ma, img, NULL);
  REQUIRE(px);
  vl_clip_run ra = {.pixels = px, .ids = ids}, rb = {.pixels = px, .ids = ids};
  REQUIRE(vl_clip_forward(c, ma, &ra) == VL_OK && vl_clip_forward(c, mb, &rb) == VL_OK);
  double ev = test_max_rel_err(vl_f32(ra.vision_hidden), vl_f32(rb.vision_hidden),
                               (size_t)rb.vision_hidden->numel);
  double et = test_max_rel_err(vl_f32(ra.text_embeds), vl_f32(rb.text_embeds),
                               (size_t)rb.text_embeds->numel);
  double el = test_max_rel_err(vl_f32(ra.logits_per_image), vl_f32(rb.logits_per_image), 1);
  printf("  bf16 vs rounded f32: vision %.2e, text_embeds %.2e, logit %.2e\n", ev, et, el);
  CHECK(ev <= TOL && et <= TOL && el <= TOL);
  /* and BF16 rounding moved the logit at all (the check above is not vacuous) */
  vl_clip *m = vl_clip_load(test_shared_path(MODEL));
  REQUIRE(m);
  vl_clip_run r = {.pixels = px, .ids = ids};
  REQUIRE(vl_clip_forward(c, m, &r) == VL_OK);
  CHECK(vl_f32(r.logits_per_image)[0] != vl_f32(rb.logits_per_image)[0]);
  vl_clip_free(m);
  vl_image_free(img);
  vl_ctx_free(c);
  vl_clip_free(ma);
  vl_clip_free(mb);
}

/* build/<variant>/vlens dump end to end: exit codes and the written file. */
static void test_dump_cli(void) {
  char dir[1024], img[1100], out[1100], args[4096];
  REQUIRE(realpath(test_shared_path(MODEL), dir));
  snprintf(img, sizeof img, "%s/image.png", dir);
  snprintf(out, sizeof out, "%s/cli.safetensors", test_tmpdir());
  snprintf(args, sizeof args,
           "-m %s --image %s --prompt 'a photo of a red circle.' --target-pos 0 --target-id 0 "
           "-o %s",
           dir, img, out);
  REQUIRE(test_vlens_exe());
  CHECK(test_run_vlens("dump -q %s", args) == 0);
  vl_safetensors *st = vl_st_open(out);
  vl_safetensors *g = vl_st_open(gpath("golden.safetensors"));
  REQUIRE(st && g);
  CHECK(vl_st_count(st) == 11);
  const vl_st_tensor *t = vl_st_find(st, "logits_per_image");
  float v = 0;
  CHECK(t && t->ndim == 2 && vl_st_to_f32(t, &v) == VL_OK);
  CHECK(golden_cmp(g, NULL, "logits_per_image", &v, 1) <= TOL);
  t = vl_st_find(st, "gradcam");
  CHECK(t && t->ndim == 1 && t->shape[0] == 16);
  vl_st_close(g);
  vl_st_close(st);
  snprintf(args, sizeof args, "-m %s --image %s --ids '552 320 900' -o %s", dir, img, out);
  CHECK(test_run_vlens("dump -q %s", args) == 1); /* id outside the vocabulary */
  snprintf(args, sizeof args, "-m %s --prompt x -o %s", dir, out);
  CHECK(test_run_vlens("dump -q %s", args) == 1); /* no image */
}

int main(void) {
  RUN(test_parity);
  RUN(test_dump);
  RUN(test_explain_hooks);
  RUN(test_eos_position);
  RUN(test_errors);
  RUN(test_bf16_weights);
  RUN(test_dump_cli);
  return test_summary();
}
