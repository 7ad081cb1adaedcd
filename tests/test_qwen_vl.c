/* Qwen2-VL, Qwen2.5-VL and Qwen3-VL against the independent goldens in
 * ../shared/golden/qwen2vl-a, qwen25vl-a, qwen3vl-a: tokenizer ids, placeholder
 * expansion, pixel_values and grid, M-RoPE position ids, vision_out (merger
 * output, Qwen3-VL's DeepStack outputs), logits, every language layer's attention, Grad-CAM on the
 * visual embeddings (acts, grad, cam) and relevancy through `vlens dump` in memory; the recorded
 * forward through the explanation plug-ins; clear errors for a prompt without the placeholder,
 * broken configs and missing tensors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "explain/method.h"
#include "goldens.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "models/qwen_vl.h"
#include "tensor/ops.h"
#include "test.h"

#define TOL 1e-4
#define TOL_GRAD 1e-3

/* Integer tensors must be equal (and same shape). */
static bool same_i64(const vl_st_tensor *a, const vl_st_tensor *b) {
  if (!a || !b || a->dtype != VL_I64 || b->dtype != VL_I64 || a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return false;
  return !memcmp(a->data, b->data, (size_t)vl_st_numel(a) * 8);
}

typedef struct {
  int64_t *ids, n, target_pos, target_id, n_image;
  char prompt[512];
} case_info;

static int load_case(const char *model, case_info *ci) {
  memset(ci, 0, sizeof *ci);
  cJSON *j = vl_json_load(golden_path(model, "case.json"));
  if (!j) return -1;
  ci->ids = golden_ids_of(j, &ci->n);
  ci->target_pos = vl_json_int(j, "target.position", -1);
  ci->target_id = vl_json_int(j, "target.token_id", -1);
  ci->n_image = vl_json_int(j, "num_image_tokens", -1);
  snprintf(ci->prompt, sizeof ci->prompt, "%s", vl_json_str(j, "prompt", ""));
  cJSON_Delete(j);
  return ci->ids ? 0 : -1;
}

/* Every tensor `vlens dump` writes, against the golden of the same name. */
static void dump_parity(const char *model) {
  vl_qwen_vl *m = vl_qwen_vl_load(test_shared_path(model));
  if (!m) printf("  %s\n", vl_last_error());
  REQUIRE(m);
  case_info ci;
  REQUIRE(load_case(model, &ci) == 0);
  /* the tokenizer gives the case's ids (special tokens included) */
  int64_t *tids = NULL, nt = 0;
  CHECK(vl_qwen_vl_text_ids(m, ci.prompt, &tids, &nt) == VL_OK);
  CHECK(nt == ci.n && tids && !memcmp(tids, ci.ids, (size_t)nt * 8));
  free(tids);
  vl_dump_opts o = {.image_path = golden_path(model, "image.png"),
                    .ids = ci.ids,
                    .n_ids = ci.n,
                    .attn = true,
                    .has_target = true,
                    .target_pos = ci.target_pos,
                    .target_id = ci.target_id};
  vl_st_writer *w = vl_st_writer_new();
  int rc = vl_qwen_vl_dump(m, &o, w);
  if (rc) printf("  %s\n", vl_last_error());
  REQUIRE(rc == VL_OK);
  uint8_t *buf = NULL;
  vl_safetensors *out = golden_reopen(w, &buf);
  vl_safetensors *st = vl_st_open(golden_path(model, "golden.safetensors"));
  REQUIRE(out && st);
  CHECK(same_i64(vl_st_find(out, "input_ids"), vl_st_find(st, "input_ids")));
  CHECK(same_i64(vl_st_find(out, "image_grid_thw"), vl_st_find(st, "image_grid_thw")));
  CHECK(same_i64(vl_st_find(out, "position_ids"), vl_st_find(st, "position_ids")));
  const vl_st_tensor *gin = vl_st_find(out, "input_ids");
  int64_t nimg = 0;
  for (int64_t i = 0; gin && i < vl_st_numel(gin); i++)
    nimg += ((const int64_t *)gin->data)[i] == m->image_token_id;
  CHECK(nimg == ci.n_image);
  /* every float tensor of the golden, produced by the dump */
  int compared = 0, want = 0;
  for (size_t i = 0; i < vl_st_count(st); i++) {
    const vl_st_tensor *g = vl_st_at(st, i);
    if (g->dtype == VL_I64) continue;
    want++;
    const bool grad = !strncmp(g->name, "gradcam", 7) || !strcmp(g->name, "relevancy");
    const vl_st_tensor *t = vl_st_find(out, g->name);
    float *a = t ? malloc((size_t)vl_st_numel(t) * sizeof *a) : NULL;
    if (!t) printf("  %s: not in the dump\n", g->name);
    if (a && !vl_st_to_f32(t, a)) {
      CHECK(golden_cmp(st, NULL, g->name, a, vl_st_numel(t)) <= (grad ? TOL_GRAD : TOL));
      compared++;
    }
    free(a);
  }
  CHECK(compared == want && want >= 9);
  vl_st_close(st);
  vl_st_close(out);
  free(buf);
  free(ci.ids);
  vl_qwen_vl_free(m);
}

static void test_qwen2vl_dump(void) { dump_parity("golden/qwen2vl-a"); }
static void test_qwen25vl_dump(void) { dump_parity("golden/qwen25vl-a"); }
static void test_qwen3vl_dump(void) { dump_parity("golden/qwen3vl-a"); }

/* The recorded forward feeding the explanation plug-ins (decoder-only):
 * gradcam and relevancy maps equal the golden's. */
static void explain_parity(const char *model) {
  vl_qwen_vl *m = vl_qwen_vl_load(test_shared_path(model));
  REQUIRE(m);
  case_info ci;
  REQUIRE(load_case(model, &ci) == 0);
  vl_ctx *c = vl_ctx_new();
  vl_image *img = vl_image_load(golden_path(model, "image.png"), 0);
  REQUIRE(c && img);
  vl_qwen_vl_run r = {0};
  r.pixels = vl_qwen_vl_pixels(c, m, img, r.grid);
  REQUIRE(r.pixels);
  int64_t *ex = NULL, T = 0;
  REQUIRE(vl_qwen_vl_expand_ids(m, ci.ids, ci.n, vl_qwen_vl_image_tokens(m, r.grid), &ex, &T) ==
          VL_OK);
  r.ids = vl_new(c, VL_I64, 1, &T);
  memcpy(r.ids->data, ex, (size_t)T * 8);
  free(ex);
  vl_tensor *attn[8] = {0};
  const int L = (int)m->lm->cfg.n_layers;
  REQUIRE(L <= 8);
  r.attn = attn;
  vl_ctx_set_recording(c, true);
  REQUIRE(vl_qwen_vl_forward(c, m, &r) == VL_OK);
  float *dout = calloc((size_t)r.logits->numel, sizeof *dout);
  dout[ci.target_pos * m->lm->cfg.vocab + ci.target_id] = 1.0f;
  REQUIRE(vl_backward(c, r.logits, dout) == VL_OK);
  free(dout);
  const float *probs[8], *grads[8];
  for (int l = 0; l < L; l++)
    probs[l] = vl_f32(attn[l]), grads[l] = attn[l]->grad;
  const int gw = (int)(r.grid[2] / m->vcfg.merge), gh = (int)(r.grid[1] / m->vcfg.merge);
  vl_explain_input in = {.arch = VL_ARCH_DECODER_ONLY,
                         .grid_w = gw,
                         .grid_h = gh,
                         .query = (int)ci.target_pos,
                         .n_image = (int)r.n_image,
                         .image_tokens = r.image_pos,
                         .self = {L, (int)m->lm->cfg.n_heads, (int)T, (int)T, probs, grads},
                         .layer = -1,
                         .acts = vl_f32(r.image_embeds),
                         .acts_grad = r.image_embeds->grad,
                         .n_tokens = (int)r.n_image,
                         .channels = (int)r.image_embeds->shape[1]};
  int *rows = malloc((size_t)r.n_image * sizeof *rows);
  for (int i = 0; i < (int)r.n_image; i++)
    rows[i] = i;
  in.act_rows = rows;
  float cells[256];
  REQUIRE(gw * gh <= 256);
  vl_safetensors *st = vl_st_open(golden_path(model, "golden.safetensors"));
  REQUIRE(st);
  CHECK(vl_explain_run("relevancy", &in, cells) == VL_OK);
  CHECK(golden_cmp(st, NULL, "relevancy", cells, gw * gh) <= TOL_GRAD);
  CHECK(vl_explain_run("gradcam", &in, cells) == VL_OK);
  CHECK(golden_cmp(st, NULL, "gradcam", cells, gw * gh) <= TOL_GRAD);
  /* attention from q to the image tokens, last layer, mean over heads */
  CHECK(vl_explain_run("attention", &in, cells) == VL_OK);
  double want[256] = {0};
  char last[32];
  snprintf(last, sizeof last, "attn.%d", L - 1);
  const vl_st_tensor *ga = vl_st_find(st, last);
  float *a = ga ? malloc((size_t)vl_st_numel(ga) * sizeof *a) : NULL;
  REQUIRE(a && !vl_st_to_f32(ga, a));
  const int H = (int)m->lm->cfg.n_heads;
  double mx = 0;
  for (int i = 0; i < (int)r.n_image; i++) {
    for (int h = 0; h < H; h++)
      want[i] += a[((size_t)h * T + ci.target_pos) * T + r.image_pos[i]] / H;
    if (want[i] > mx) mx = want[i];
  }
  double err = 0;
  for (int i = 0; i < (int)r.n_image; i++)
    if (fabs(cells[i] - want[i]) > err) err = fabs(cells[i] - want[i]);
  printf("  attention map       max rel err %.2e\n", err / mx);
  CHECK(mx > 0 && err / mx <= TOL);
  free(a);
  free(rows);
  vl_st_close(st);
  vl_image_free(img);
  vl_ctx_free(c);
  free(ci.ids);
  vl_qwen_vl_free(m);
}

static void test_qwen2vl_explain(void) { explain_parity("golden/qwen2vl-a"); }
static void test_qwen25vl_explain(void) { explain_parity("golden/qwen25vl-a"); }
static void test_qwen3vl_explain(void) { explain_parity("golden/qwen3vl-a"); }

static void test_expand_errors(void) {
  vl_qwen_vl *m = vl_qwen_vl_load(test_shared_path("golden/qwen2vl-a"));
  REQUIRE(m);
  int64_t *out = NULL, n = 0;
  const int64_t none[] = {317, 84, 82};
  CHECK(vl_qwen_vl_expand_ids(m, none, 3, 16, &out, &n) == VL_ERR_INVALID && !out);
  CHECK(strstr(vl_last_error(), "no image placeholder"));
  const int64_t two[] = {325, 328, 326, 325, 328, 326};
  CHECK(vl_qwen_vl_expand_ids(m, two, 6, 16, &out, &n) == VL_ERR_INVALID && !out);
  const int64_t bad[] = {325, 328, 9999};
  CHECK(vl_qwen_vl_expand_ids(m, bad, 3, 16, &out, &n) == VL_ERR_INVALID && !out);
  CHECK(strstr(vl_last_error(), "vocabulary"));
  const int64_t one[] = {7, 325, 328, 326, 8};
  REQUIRE(vl_qwen_vl_expand_ids(m, one, 5, 4, &out, &n) == VL_OK);
  const int64_t want[] = {7, 325, 328, 328, 328, 328, 326, 8};
  CHECK(n == 8 && !memcmp(out, want, sizeof want));
  /* position ids of that sequence for a 4x4-patch grid (2x2 merged) */
  int64_t pos[24], grid[3] = {1, 4, 4};
  REQUIRE(vl_qwen_vl_rope_index(m, out, n, grid, pos) == VL_OK);
  const int64_t wt[8] = {0, 1, 2, 2, 2, 2, 4, 5}, wh[8] = {0, 1, 2, 2, 3, 3, 4, 5},
                ww[8] = {0, 1, 2, 3, 2, 3, 4, 5};
  CHECK(!memcmp(pos, wt, sizeof wt) && !memcmp(pos + 8, wh, sizeof wh) &&
        !memcmp(pos + 16, ww, sizeof ww));
  free(out);
  /* a dump with a prompt lacking the placeholder fails clearly */
  vl_dump_opts o = {.image_path = golden_path("golden/qwen2vl-a", "image.png"), .prompt = "hello"};
  vl_st_writer *w = vl_st_writer_new();
  CHECK(vl_qwen_vl_dump(m, &o, w) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "placeholder"));
  vl_dump_opts o2 = {.prompt = "hello"};
  CHECK(vl_qwen_vl_dump(m, &o2, w) == VL_ERR_INVALID && strstr(vl_last_error(), "image"));
  vl_st_writer_free(w);
  vl_qwen_vl_free(m);
}

/* A model folder in tmp: config text, the golden's other files linked, and
 * the checkpoint minus `drop` (NULL: all tensors). */
static const char *make_folder_from(const char *model, const char *name, const char *config,
                                    const char *drop) {
  static char dir[1024];
  snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), name);
  mkdir(dir, 0755);
  char p[1200], src[1200];
  static const char *const files[] = {"preprocessor_config.json", "tokenizer.json",
                                      "tokenizer_config.json"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, files[i]);
    snprintf(src, sizeof src, "%s", golden_path(model, files[i]));
    size_t len = 0;
    unsigned char *d = test_read_file(src, &len);
    if (d) test_write_file(p, d, len);
    free(d);
  }
  snprintf(p, sizeof p, "%s/config.json", dir);
  test_write_file(p, config, strlen(config));
  vl_safetensors *st = vl_st_open(golden_path(model, "model.safetensors"));
  vl_st_writer *w = vl_st_writer_new();
  for (size_t i = 0; st && w && i < vl_st_count(st); i++) {
    const vl_st_tensor *t = vl_st_at(st, i);
    if (drop && !strcmp(t->name, drop)) continue;
    vl_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
  }
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  if (w) vl_st_writer_save(w, p);
  vl_st_writer_free(w);
  vl_st_close(st);
  return dir;
}

static const char *make_folder(const char *name, const char *config, const char *drop) {
  return make_folder_from("golden/qwen2vl-a", name, config, drop);
}

static char *golden_config(void) {
  size_t len = 0;
  return (char *)test_read_file(golden_path("golden/qwen2vl-a", "config.json"), &len);
}

/* config text with the first `from` replaced by `to` (malloc'd) */
static char *replace(const char *s, const char *from, const char *to) {
  const char *at = strstr(s, from);
  if (!at) return NULL;
  size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
  char *o = malloc(n);
  snprintf(o, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
  return o;
}

static void test_load_errors(void) {
  char *cfg = golden_config();
  REQUIRE(cfg);
  /* the copied folder loads (the checks below fail for their own reason) */
  vl_qwen_vl *m = vl_qwen_vl_load(make_folder("ok", cfg, NULL));
  CHECK(m);
  vl_qwen_vl_free(m);
  m = vl_qwen_vl_load(make_folder("miss", cfg, "visual.blocks.1.attn.qkv.weight"));
  CHECK(!m && strstr(vl_last_error(), "visual.blocks.1.attn.qkv.weight"));
  m = vl_qwen_vl_load(make_folder("missm", cfg, "visual.merger.mlp.2.bias"));
  CHECK(!m && strstr(vl_last_error(), "visual.merger.mlp.2.bias"));
  char *c2 = replace(cfg, "\"vision_config\"", "\"no_vision\"");
  m = vl_qwen_vl_load(make_folder("novis", c2, NULL));
  CHECK(!m && strstr(vl_last_error(), "vision_config"));
  free(c2);
  c2 = replace(cfg, "\"embed_dim\": 32", "\"embed_dim\": 48");
  m = vl_qwen_vl_load(make_folder("dim", c2, NULL));
  CHECK(!m && strstr(vl_last_error(), "patch_embed.proj.weight"));
  free(c2);
  c2 = replace(cfg, "\"image_token_id\": 328", "\"image_token_id\": 3280");
  m = vl_qwen_vl_load(make_folder("imgtok", c2, NULL));
  CHECK(!m && strstr(vl_last_error(), "image_token_id"));
  free(c2);
  c2 = replace(cfg, "3\n    ]", "4\n    ]");
  m = vl_qwen_vl_load(make_folder("mrope", c2, NULL));
  CHECK(c2 && !m && strstr(vl_last_error(), "mrope_section"));
  free(c2);
  c2 = replace(cfg, "\"quick_gelu\"", "\"swoosh\"");
  m = vl_qwen_vl_load(make_folder("act", c2, NULL));
  CHECK(!m && strstr(vl_last_error(), "swoosh"));
  free(c2);
  free(cfg);
  /* Qwen3-VL: a missing DeepStack merger tensor, a non-square position table */
  size_t len = 0;
  char *c3 = (char *)test_read_file(golden_path("golden/qwen3vl-a", "config.json"), &len);
  REQUIRE(c3);
  m = vl_qwen_vl_load(make_folder_from("golden/qwen3vl-a", "q3ok", c3, NULL));
  CHECK(m && m->kind == VL_QWEN3_VL && m->vcfg.n_deepstack == 2 && m->mrope_interleaved);
  vl_qwen_vl_free(m);
  m = vl_qwen_vl_load(make_folder_from("golden/qwen3vl-a", "q3ds", c3,
                                       "model.visual.deepstack_merger_list.1.norm.bias"));
  CHECK(!m && strstr(vl_last_error(), "deepstack_merger_list.1.norm.bias"));
  c2 = replace(c3, "\"num_position_embeddings\": 36", "\"num_position_embeddings\": 35");
  m = vl_qwen_vl_load(make_folder_from("golden/qwen3vl-a", "q3pos", c2, NULL));
  CHECK(c2 && !m && strstr(vl_last_error(), "not a square"));
  free(c2);
  free(c3);
}

/* build/<variant>/vlens dump end to end: exit codes and the written file. */
static void test_dump_cli(void) {
  const char *model = "golden/qwen25vl-a";
  REQUIRE(test_vlens_exe());
  case_info ci;
  REQUIRE(load_case(model, &ci) == 0);
  char dir[1024], out[1100], ids[1024] = "", args[8192];
  REQUIRE(realpath(test_shared_path(model), dir));
  snprintf(out, sizeof out, "%s/cli.safetensors", test_tmpdir());
  for (int64_t i = 0; i < ci.n; i++)
    snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%lld", i ? " " : "",
             (long long)ci.ids[i]);
  snprintf(args, sizeof args,
           "-m %s --image %s/image.png --ids '%s' --target-pos %lld --target-id %lld -o %s", dir,
           dir, ids, (long long)ci.target_pos, (long long)ci.target_id, out);
  CHECK(test_run_vlens("dump %s", args) == 0);
  vl_safetensors *st = vl_st_open(out);
  vl_safetensors *g = vl_st_open(golden_path(model, "golden.safetensors"));
  REQUIRE(st && g);
  const vl_st_tensor *t = vl_st_find(st, "logits");
  float *a = t ? malloc((size_t)vl_st_numel(t) * sizeof *a) : NULL;
  CHECK(a && !vl_st_to_f32(t, a) && golden_cmp(g, NULL, "logits", a, vl_st_numel(t)) <= TOL);
  free(a);
  CHECK(vl_st_find(st, "relevancy") && !vl_st_find(st, "attn.0")); /* no --attn */
  vl_st_close(g);
  vl_st_close(st);
  snprintf(args, sizeof args, "-m %s --image %s/image.png --ids '317 84 82' -o %s", dir, dir, out);
  CHECK(test_run_vlens("dump %s", args) == 1); /* no placeholder */
  snprintf(args, sizeof args, "-m %s --ids '325 328 326' -o %s", dir, out);
  CHECK(test_run_vlens("dump %s", args) == 1); /* no image */
  free(ci.ids);
}

int main(void) {
  RUN(test_qwen2vl_dump);
  RUN(test_qwen25vl_dump);
  RUN(test_qwen3vl_dump);
  RUN(test_qwen2vl_explain);
  RUN(test_qwen25vl_explain);
  RUN(test_qwen3vl_explain);
  RUN(test_expand_errors);
  RUN(test_load_errors);
  RUN(test_dump_cli);
  return test_summary();
}
