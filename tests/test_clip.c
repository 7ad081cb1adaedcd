/* CLIPModel against the independent golden in ../shared/golden/clip-a:
 * tokenizer ids, preprocessing (resized u8 bytes exactly, pixel_values),
 * every vision layer's input and attention, vision hidden state and pooled
 * output, text attention and hidden state, image/text embeddings,
 * logits_per_image, Grad-CAM of logits_per_image[0, 0] (acts, grad, cam),
 * the `vlens dump` output in memory and through the CLI; the recorded
 * forward feeding the explanation methods (vision-only readout); EOS pooling rules;
 * clear errors for broken folders and bad inputs. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/error.h"
#include "base/half.h"
#include "explain/method.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "models/clip.h"
#include "tensor/ops.h"
#include "test.h"

#define TOL 1e-4
#define TOL_GRAD 1e-3
#define MODEL "golden/clip-a"

static const char *gpath(const char *file) {
  static char buf[1024];
  snprintf(buf, sizeof buf, "%s/%s", test_shared_path(MODEL), file);
  return buf;
}

/* case.json's input_ids as I64 (T) in c. */
static vl_tensor *case_ids(vl_ctx *c) {
  cJSON *j = vl_json_load(gpath("case.json"));
  if (!j) return NULL;
  const cJSON *a = vl_json_get(j, "input_ids");
  int64_t T = cJSON_GetArraySize(a), i = 0;
  vl_tensor *ids = vl_new(c, VL_I64, 1, &T);
  for (const cJSON *e = a ? a->child : NULL; e && ids; e = e->next)
    ((int64_t *)ids->data)[i++] = (int64_t)e->valuedouble;
  cJSON_Delete(j);
  return ids;
}

/* Max relative error of a against golden tensor `name` (1e9: missing). */
static double cmp(const vl_safetensors *st, const char *name, const float *a, int64_t n) {
  const vl_st_tensor *g = vl_st_find(st, name);
  if (!g || !a || vl_st_numel(g) != n) {
    printf("  %s: missing or size mismatch (%lld vs %lld)\n", name,
           g ? (long long)vl_st_numel(g) : -1LL, (long long)n);
    return 1e9;
  }
  float *b = malloc((size_t)n * sizeof *b);
  if (!b || vl_st_to_f32(g, b)) {
    free(b);
    return 1e9;
  }
  double e = test_max_rel_err(a, b, (size_t)n);
  printf("  %-18s max rel err %.2e\n", name, e);
  free(b);
  return e;
}

static double cmp_t(const vl_safetensors *st, const char *name, const vl_tensor *t) {
  return cmp(st, name, t ? vl_f32(t) : NULL, t ? t->numel : 0);
}

static void test_parity(void) {
  vl_clip *m = vl_clip_load(test_shared_path(MODEL));
  if (!m) printf("  %s\n", vl_last_error());
  REQUIRE(m);
  vl_safetensors *st = vl_st_open(gpath("golden.safetensors"));
  REQUIRE(st);
  vl_ctx *c = vl_ctx_new();
  vl_tensor *ids = case_ids(c);
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
  CHECK(cmp_t(st, "pixel_values", px) <= TOL);

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
    CHECK(cmp_t(st, name, vin[l]) <= TOL);
    snprintf(name, sizeof name, "vision_attn.%d", l);
    CHECK(cmp_t(st, name, vat[l]) <= TOL);
  }
  for (int l = 0; l < (int)m->tcfg.n_layers; l++) {
    snprintf(name, sizeof name, "text_attn.%d", l);
    CHECK(cmp_t(st, name, tat[l]) <= TOL);
  }
  CHECK(cmp_t(st, "vision_hidden", r.vision_hidden) <= TOL);
  CHECK(cmp_t(st, "vision_pooled", r.vision_pooled) <= TOL);
  CHECK(cmp_t(st, "text_hidden", r.text_hidden) <= TOL);
  CHECK(cmp_t(st, "image_embeds", r.image_embeds) <= TOL);
  CHECK(cmp_t(st, "text_embeds", r.text_embeds) <= TOL);
  CHECK(cmp_t(st, "logits_per_image", r.logits_per_image) <= TOL);
  CHECK(cmp_t(st, "target_score", r.logits_per_image) <= TOL);
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
  CHECK(cmp(st, "gradcam.acts", vl_f32(x) + D, N * D) <= TOL);
  CHECK(cmp(st, "gradcam.grad", x->grad + D, N * D) <= TOL_GRAD);
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
  size_t len = 0;
  REQUIRE(vl_st_writer_to_memory(w, &buf, &len) == VL_OK);
  vl_st_writer_free(w);
  vl_safetensors *out = vl_st_open_memory(buf, len, "dump");
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
    const vl_st_tensor *t = vl_st_find(out, pairs[i][0]);
    const vl_st_tensor *g = vl_st_find(st, pairs[i][1]);
    CHECK(t && g);
    if (!t || !g) continue;
    CHECK(t->dtype == g->dtype && t->ndim == g->ndim &&
          !memcmp(t->shape, g->shape, sizeof(int64_t) * (size_t)t->ndim));
    int64_t n = vl_st_numel(t);
    float *a = malloc((size_t)n * sizeof *a);
    REQUIRE(a && vl_st_to_f32(t, a) == VL_OK);
    double tol =
        !strcmp(pairs[i][0], "gradcam") || !strcmp(pairs[i][0], "gradcam.grad") ? TOL_GRAD : TOL;
    CHECK(cmp(st, pairs[i][1], a, n) <= tol);
    free(a);
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
  REQUIRE(vl_st_writer_to_memory(w, &buf, &len) == VL_OK);
  vl_st_writer_free(w);
  out = vl_st_open_memory(buf, len, "dump");
  REQUIRE(out);
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
  vl_tensor *ids = case_ids(c);
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
  CHECK(cmp(st, "gradcam", cells, N) <= TOL_GRAD);
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
  static char dir[1024];
  snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), tag);
  mkdir(dir, 0755);
  const char *files[] = {
      "config.json", "model.safetensors",     "preprocessor_config.json", "vocab.json",
      "merges.txt",  "tokenizer_config.json", "special_tokens_map.json"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char dst[1200], src[PATH_MAX];
    snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
    unlink(dst);
    if (i == 0 && config) {
      test_write_file(dst, config, strlen(config));
    } else if (i == 2 && pre) {
      test_write_file(dst, pre, strlen(pre));
    } else if (i == 1 && weights) {
      if (symlink(weights, dst)) return NULL;
    } else if (!realpath(gpath(files[i]), src) || symlink(src, dst)) {
      return NULL;
    }
  }
  return dir;
}

/* clip-a's config.json with path_key ("a" or "a.b") replaced (NULL: deleted). */
static char *config_with(const char *path_key, const char *new_value_json) {
  size_t len;
  char *text = (char *)test_read_file(gpath("config.json"), &len);
  cJSON *j = text ? cJSON_Parse(text) : NULL;
  free(text);
  if (!j) return NULL;
  cJSON *obj = j;
  char key[128];
  snprintf(key, sizeof key, "%s", path_key);
  char *dot = strchr(key, '.');
  if (dot) {
    *dot = 0;
    obj = cJSON_GetObjectItem(j, key);
  }
  const char *leaf = dot ? dot + 1 : key;
  cJSON_DeleteItemFromObject(obj, leaf);
  if (new_value_json) cJSON_AddItemToObject(obj, leaf, cJSON_Parse(new_value_json));
  char *out = cJSON_Print(j);
  cJSON_Delete(j);
  return out;
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
  char *cfg = config_with("text_config.hidden_size", NULL);
  REQUIRE(cfg);
  expect_load_error(folder("nokey", cfg, NULL, NULL), VL_ERR_NOTFOUND, "hidden_size");
  free(cfg);
  cfg = config_with("architectures", "[\"CLIPVisionModel\"]");
  expect_load_error(folder("arch", cfg, NULL, NULL), VL_ERR_UNSUPPORTED, "CLIPVisionModel");
  free(cfg);
  cfg = config_with("text_config.hidden_act", "\"swish\"");
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
  vl_safetensors *src = vl_st_open(gpath("model.safetensors"));
  REQUIRE(src);
  vl_st_writer *wa = vl_st_writer_new(), *wb = vl_st_writer_new();
  for (size_t i = 0; i < vl_st_count(src); i++) {
    const vl_st_tensor *t = vl_st_at(src, i);
    int64_t n = vl_st_numel(t);
    if (t->dtype != VL_F32) {
      CHECK(vl_st_writer_add(wa, t->name, t->dtype, t->ndim, t->shape, t->data) == VL_OK);
      CHECK(vl_st_writer_add(wb, t->name, t->dtype, t->ndim, t->shape, t->data) == VL_OK);
      continue;
    }
    float *f = malloc((size_t)n * sizeof *f);
    uint16_t *h = malloc((size_t)n * sizeof *h);
    REQUIRE(f && h && vl_st_to_f32(t, f) == VL_OK);
    for (int64_t k = 0; k < n; k++) {
      h[k] = vl_f32_to_bf16(f[k]);
      f[k] = vl_bf16_to_f32(h[k]);
    }
    CHECK(vl_st_writer_add(wa, t->name, VL_BF16, t->ndim, t->shape, h) == VL_OK);
    CHECK(vl_st_writer_add(wb, t->name, VL_F32, t->ndim, t->shape, f) == VL_OK);
    free(f);
    free(h);
  }
  vl_st_close(src);
  char pa[1024], pb[1024];
  snprintf(pa, sizeof pa, "%s/bf16.safetensors", test_tmpdir());
  snprintf(pb, sizeof pb, "%s/rounded.safetensors", test_tmpdir());
  CHECK(vl_st_writer_save(wa, pa) == VL_OK && vl_st_writer_save(wb, pb) == VL_OK);
  vl_st_writer_free(wa);
  vl_st_writer_free(wb);
  vl_clip *ma = vl_clip_load(folder("bf16", NULL, pa, NULL));
  if (!ma) printf("  %s\n", vl_last_error());
  vl_clip *mb = vl_clip_load(folder("rounded", NULL, pb, NULL));
  REQUIRE(ma && mb);
  CHECK(ma->vision.layers[0].q_w->dtype == VL_BF16 && ma->tok_emb->dtype == VL_BF16 &&
        ma->vis_proj->dtype == VL_BF16);
  vl_ctx *c = vl_ctx_new();
  vl_tensor *ids = case_ids(c);
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
static int run_vlens(const char *args) {
  char exe[1024], cmd[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return -1;
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (!slash) return -1;
  *slash = 0;
  snprintf(cmd, sizeof cmd, "%s/../vlens", exe);
  if (access(cmd, X_OK) != 0) return -1;
  snprintf(cmd, sizeof cmd, "%s/../vlens dump -q %s >/dev/null 2>&1", exe, args);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_dump_cli(void) {
  char dir[1024], img[1100], out[1100], args[4096];
  REQUIRE(realpath(test_shared_path(MODEL), dir));
  snprintf(img, sizeof img, "%s/image.png", dir);
  snprintf(out, sizeof out, "%s/cli.safetensors", test_tmpdir());
  snprintf(args, sizeof args,
           "-m %s --image %s --prompt 'a photo of a red circle.' --target-pos 0 --target-id 0 "
           "-o %s",
           dir, img, out);
  int rc = run_vlens(args);
  if (rc == -1) {
    printf("  build/<variant>/vlens not built: run make cli first\n");
    CHECK(0);
    return;
  }
  CHECK(rc == 0);
  vl_safetensors *st = vl_st_open(out);
  vl_safetensors *g = vl_st_open(gpath("golden.safetensors"));
  REQUIRE(st && g);
  CHECK(vl_st_count(st) == 11);
  const vl_st_tensor *t = vl_st_find(st, "logits_per_image");
  float v = 0;
  CHECK(t && t->ndim == 2 && vl_st_to_f32(t, &v) == VL_OK);
  CHECK(cmp(g, "logits_per_image", &v, 1) <= TOL);
  t = vl_st_find(st, "gradcam");
  CHECK(t && t->ndim == 1 && t->shape[0] == 16);
  vl_st_close(g);
  vl_st_close(st);
  snprintf(args, sizeof args, "-m %s --image %s --ids '552 320 900' -o %s", dir, img, out);
  CHECK(run_vlens(args) == 1); /* id outside the vocabulary */
  snprintf(args, sizeof args, "-m %s --prompt x -o %s", dir, out);
  CHECK(run_vlens(args) == 1); /* no image */
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
