/* Qwen2 / Qwen3 from GGUF files (models/qwen_gguf.c). The files in
 * tests/data/gguf/ were written by tools/hf_to_gguf.py from
 * ../shared/golden/qwen{2,3}-a (F32 / F16 / BF16 / Q8_0):
 *   tools/hf_to_gguf.py ../shared/golden/qwen3-a tests/data/gguf/qwen3-a-q8_0.gguf --type q8_0
 * Each must give the Hub folder's logits (F32: same numbers; 16-bit and
 * Q8_0: close, the error printed), the same config, and the same tokens from
 * the tokenizer stored in the file. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/json.h"
#include "models/qwen_text.h"
#include "tensor/ops.h"
#include "tensor/quant.h"
#include "test.h"
#include "text/tokenizer.h"

static const char *data_path(const char *model, const char *type) {
  static char buf[256];
  snprintf(buf, sizeof buf, "tests/data/gguf/%s-%s.gguf", model, type);
  return buf;
}

/* case.json's prompt and input ids (malloc'd, caller frees). */
static int32_t *case_ids(const char *model, int64_t *n, char **prompt) {
  char path[512];
  snprintf(path, sizeof path, "%s/case.json", test_shared_path(model));
  cJSON *j = vl_json_load(path);
  if (!j) return NULL;
  const cJSON *a = vl_json_get(j, "input_ids");
  *n = cJSON_GetArraySize(a);
  int32_t *ids = malloc((size_t)*n * sizeof *ids);
  int64_t i = 0;
  for (const cJSON *e = a ? a->child : NULL; e && ids; e = e->next)
    ids[i++] = (int32_t)e->valuedouble;
  if (prompt) *prompt = strdup(vl_json_str(j, "prompt", ""));
  cJSON_Delete(j);
  return ids;
}

/* Full-sequence logits of m for ids, as a malloc'd copy. */
static float *logits_of(const vl_qwen_text *m, const int32_t *ids, int64_t n) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *t = vl_new(c, VL_I32, 1, &n);
  float *out = NULL;
  if (t) {
    memcpy(t->data, ids, (size_t)n * sizeof *ids);
    vl_tensor *lg = vl_qwen_text_forward(c, m, t, NULL);
    if (!lg) printf("  %s\n", vl_last_error());
    if (lg && (out = malloc((size_t)lg->numel * sizeof *out)))
      memcpy(out, lg->data, (size_t)lg->numel * sizeof *out);
  }
  vl_ctx_free(c);
  return out;
}

static void same_config(const vl_qwen_config *a, const vl_qwen_config *b) {
  CHECK(a->kind == b->kind && a->vocab == b->vocab && a->hidden == b->hidden);
  CHECK(a->inter == b->inter && a->n_layers == b->n_layers && a->n_heads == b->n_heads);
  CHECK(a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim);
  CHECK(a->rope_theta == b->rope_theta && a->rms_eps == b->rms_eps);
  CHECK(a->tied == b->tied && a->qkv_bias == b->qkv_bias && a->o_bias == b->o_bias);
  CHECK(a->qk_norm == b->qk_norm && a->bos == b->bos);
  CHECK(a->n_eos >= 1 && b->n_eos >= 1 && a->eos[0] == b->eos[0]);
}

/* Logits from each GGUF type against the Hub folder; tol per type. */
static void parity(const char *name) {
  char model[64];
  snprintf(model, sizeof model, "golden/%s", name);
  vl_qwen_text *hub = vl_qwen_text_load(test_shared_path(model));
  REQUIRE(hub);
  int64_t n;
  int32_t *ids = case_ids(model, &n, NULL);
  REQUIRE(ids);
  float *ref = logits_of(hub, ids, n);
  REQUIRE(ref);
  const size_t nl = (size_t)(n * hub->cfg.vocab);
  static const char *const types[] = {"f32", "f16", "bf16", "q8_0"};
  /* F32 is the same arithmetic; the others are bounded by what their
   * rounding of the weights does to these logits (printed) */
  static const double tol[] = {1e-5, 5e-3, 3e-2, 6e-2};
  static const vl_dtype want[] = {VL_F32, VL_F16, VL_BF16, VL_Q8_0};
  for (int i = 0; i < 4; i++) {
    const char *p = data_path(name, types[i]);
    FILE *f = fopen(p, "rb");
    if (!f) continue; /* not every type is committed for every model */
    fclose(f);
    vl_qwen_text *m = vl_qwen_text_load(p);
    if (!m) printf("  %s\n", vl_last_error());
    REQUIRE(m);
    same_config(&m->cfg, &hub->cfg);
    CHECK(m->layers[0].wq->dtype == want[i] && m->embed->dtype == want[i]);
    float *lg = logits_of(m, ids, n);
    REQUIRE(lg);
    double e = test_max_rel_err(lg, ref, nl);
    int agree = 0;
    for (int64_t t = 0; t < n; t++) {
      const float *a = lg + t * hub->cfg.vocab, *b = ref + t * hub->cfg.vocab;
      int64_t ia = 0, ib = 0;
      for (int64_t v = 1; v < hub->cfg.vocab; v++) {
        if (a[v] > a[ia]) ia = v;
        if (b[v] > b[ib]) ib = v;
      }
      agree += ia == ib;
    }
    printf("  %s %-4s: logits max rel err %.2e (tol %.0e), argmax agrees at %d/%lld\n", name,
           types[i], e, tol[i], agree, (long long)n);
    CHECK(e <= tol[i]);
    if (i == 0) CHECK(agree == n);
    free(lg);
    vl_qwen_text_free(m);
  }
  free(ref);
  free(ids);
  vl_qwen_text_free(hub);
}

static void qwen3_gguf_matches_hub(void) { parity("qwen3-a"); }
static void qwen2_gguf_matches_hub(void) { parity("qwen2-a"); }

/* The Q8_0 file (numpy writer) holds exactly what vl_q8_0_quantize_row
 * makes of the F32 file's weights: both follow ggml's reference. */
static void q8_0_file_equals_c_quantiser(void) {
  vl_gguf *f = vl_gguf_open(data_path("qwen3-a", "f32"));
  vl_gguf *q = vl_gguf_open(data_path("qwen3-a", "q8_0"));
  REQUIRE(f && q);
  int checked = 0;
  for (int64_t i = 0; i < vl_gguf_n_tensors(q); i++) {
    const vl_gguf_tensor *tq = vl_gguf_tensor_at(q, i);
    if (tq->type != VL_GGML_Q8_0) continue;
    const vl_gguf_tensor *tf = vl_gguf_find_tensor(f, tq->name);
    REQUIRE(tf && tf->type == VL_GGML_F32);
    int64_t n = (int64_t)(tf->nbytes / 4);
    float *x = malloc((size_t)n * sizeof *x);
    uint8_t *b = malloc(tq->nbytes);
    REQUIRE(x && b);
    memcpy(x, tf->data, tf->nbytes);
    vl_q8_0_quantize_row(x, b, n);
    CHECK(tq->nbytes == (uint64_t)(n / 32 * 34) && !memcmp(b, tq->data, tq->nbytes));
    free(x);
    free(b);
    checked++;
  }
  CHECK(checked == 1 + 2 * 7); /* token_embd + 7 matrices per layer */
  vl_gguf_close(f);
  vl_gguf_close(q);
}

/* Prefill (GEMM path) + KV-cache decode (GEMV path) against the full
 * forward's last-position logits, weights of the given type: max relative
 * error over the decode steps. round: decode steps round x to the weights'
 * format (vl_qwen_fwd.round_activations). */
static double decode_vs_full(const char *type, bool round) {
  vl_qwen_text *m = vl_qwen_text_load(data_path("qwen3-a", type));
  int64_t n;
  int32_t *ids = case_ids("golden/qwen3-a", &n, NULL);
  float *full = m && ids ? logits_of(m, ids, n) : NULL;
  vl_kv_cache *kv = full ? vl_qwen_text_cache_new(m, n) : NULL;
  vl_ctx *c = vl_ctx_new();
  double worst = -1;
  if (kv && c && n > 8) {
    const int64_t V = m->cfg.vocab, T0 = n - 4;
    worst = 0;
    for (int64_t t = 0; t < n && worst >= 0;) {
      int64_t len = t == 0 ? T0 : 1;
      vl_tensor *x = vl_new(c, VL_I32, 1, &len);
      memcpy(x->data, ids + t, (size_t)len * sizeof *ids);
      vl_qwen_fwd fo = {.cache = kv, .last_only = true, .round_activations = round};
      vl_tensor *lg = vl_qwen_text_forward(c, m, x, &fo);
      t += len;
      if (!lg || lg->numel != V) {
        worst = -1;
        break;
      }
      double e = test_max_rel_err(vl_f32(lg), full + (t - 1) * V, (size_t)V);
      if (e > worst) worst = e;
    }
  }
  printf("  %s%s cached decode vs full forward: max rel err %.2e\n", type,
         round ? " (rounded x)" : "", worst);
  vl_ctx_free(c);
  vl_kv_free(kv);
  free(full);
  free(ids);
  vl_qwen_text_free(m);
  return worst;
}

static void q8_0_decode_matches_full_forward(void) {
  double e = decode_vs_full("q8_0", false);
  CHECK(e >= 0 && e <= 1e-5);
}

/* Rounded activations: close to the exact path, but not the same numbers
 * (the rounded kernels really ran). Measured: Q8_0 2.4e-2, BF16 1.05e-2 —
 * the order of the weights' own rounding (3.0e-2 / 8.1e-3 against the F32
 * Hub weights above), so the bounds are those comparisons' tolerances. */
static void rounded_decode_close_to_full_forward(void) {
  double q = decode_vs_full("q8_0", true), b = decode_vs_full("bf16", true);
  double b_exact = decode_vs_full("bf16", false);
  CHECK(q > 1e-5 && q <= 6e-2);
  CHECK(b >= 0 && b <= 3e-2 && b != b_exact);
}

/* The CLI option: accepted, and anything but exact / rounded refused. */
static void generate_activations_option(void) {
  const char *m = data_path("qwen3-a", "q8_0");
  if (!test_vlens_exe()) return;
  CHECK(test_run_vlens("generate -m %s --ids -p 1 -n 3 --activations rounded", m) == 0);
  CHECK(test_run_vlens("generate -m %s --ids -p 1 -n 3 --activations exact", m) == 0);
  int rc = test_run_vlens("generate -m %s --ids -p 1 -n 3 --activations fast", m);
  CHECK(rc != 0 && rc != 128);
}

static void tokenizer_from_gguf_matches_case(void) {
  int64_t n;
  char *prompt = NULL;
  int32_t *ids = case_ids("golden/qwen3-a", &n, &prompt);
  REQUIRE(ids && prompt);
  vl_tokenizer *tok = vl_tokenizer_load(data_path("qwen3-a", "q8_0"));
  if (!tok) printf("  %s\n", vl_last_error());
  REQUIRE(tok);
  int32_t *got = NULL;
  size_t ng = 0;
  CHECK(vl_tokenizer_encode(tok, prompt, strlen(prompt), 1, &got, &ng) == VL_OK);
  CHECK(ng == (size_t)n && got && !memcmp(got, ids, (size_t)n * sizeof *ids));
  CHECK(vl_tokenizer_eos(tok) == 318);
  free(got);
  free(prompt);
  free(ids);
  vl_tokenizer_free(tok);
}

/* A copy of a file with one byte string replaced (same length). */
static const char *patched(const char *src, const char *from, const char *to, const char *out) {
  static char path[512];
  size_t len;
  unsigned char *d = test_read_file(src, &len);
  if (!d) return NULL;
  size_t fl = strlen(from);
  for (size_t i = 0; i + fl <= len; i++)
    if (!memcmp(d + i, from, fl)) {
      memcpy(d + i, to, fl);
      break;
    }
  snprintf(path, sizeof path, "%s/%s", test_tmpdir(), out);
  int rc = test_write_file(path, d, len);
  free(d);
  return rc ? NULL : path;
}

static void broken_files_give_clear_errors(void) {
  const char *src = data_path("qwen3-a", "q8_0");
  const char *p = patched(src, "blk.1.ffn_up.weight", "blk.1.ffn_uX.weight", "missing.gguf");
  REQUIRE(p);
  CHECK(!vl_qwen_text_load(p));
  printf("  %s\n", vl_last_error());
  CHECK(strstr(vl_last_error(), "blk.1.ffn_up.weight") && strstr(vl_last_error(), "missing.gguf"));
  p = patched(src, "qwen3.block_count", "qwen3.block_cXunt", "nolayers.gguf");
  REQUIRE(p);
  CHECK(!vl_qwen_text_load(p));
  CHECK(strstr(vl_last_error(), "qwen3.block_count") != NULL);
  p = patched(src, "qwen3", "llama", "llama.gguf"); /* the first: general.architecture */
  REQUIRE(p);
  CHECK(!vl_qwen_text_load(p));
  printf("  %s\n", vl_last_error());
  CHECK(strstr(vl_last_error(), "llama") != NULL);
  CHECK(!vl_qwen_text_load("tests/data/gguf/no-such-file.gguf"));
}

int main(void) {
  RUN(qwen3_gguf_matches_hub);
  RUN(qwen2_gguf_matches_hub);
  RUN(q8_0_file_equals_c_quantiser);
  RUN(q8_0_decode_matches_full_forward);
  RUN(rounded_decode_close_to_full_forward);
  RUN(generate_activations_option);
  RUN(tokenizer_from_gguf_matches_case);
  RUN(broken_files_give_clear_errors);
  return test_summary();
}
