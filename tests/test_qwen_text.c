/* Qwen2 / Qwen3 text decoders against the independent goldens in
 * ../shared/golden/qwen{2,3}-a (logits, every layer's attention, final
 * hidden state), KV-cache decode against full forwards, BF16 weights, and
 * clear errors for broken folders. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/half.h"
#include "goldens.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "models/qwen_text.h"
#include "tasks/generate.h"
#include "tensor/ops.h"
#include "test.h"
#include "text/tokenizer.h"

#define TOL 1e-4

static double cmp_golden(const char *model, const char *name, const vl_tensor *t) {
  vl_safetensors *st = vl_st_open(golden_path(model, "golden.safetensors"));
  double e = st ? golden_cmp_tensor(st, model, name, t) : 1e9;
  vl_st_close(st);
  return e;
}

static void parity(const char *model, bool recording) {
  vl_qwen_text *m = vl_qwen_text_load(test_shared_path(model));
  if (!m) printf("  %s\n", vl_last_error());
  REQUIRE(m);
  vl_ctx *c = vl_ctx_new();
  vl_ctx_set_recording(c, recording);
  vl_tensor *ids = golden_case_ids(c, model, NULL, NULL);
  REQUIRE(ids);
  vl_tensor *probs[8] = {0}, *hidden = NULL;
  REQUIRE(m->cfg.n_layers <= 8);
  vl_qwen_fwd f = {.attn_probs = probs, .hidden = &hidden};
  vl_tensor *emb = NULL;
  if (recording) { /* explanations differentiate w.r.t. the input embeddings */
    int64_t s3[3] = {1, ids->numel, m->cfg.hidden};
    vl_ctx_set_recording(c, false);
    emb = vl_reshape(c, vl_clone_f32(c, vl_embedding(c, m->embed, ids)), 3, s3);
    vl_ctx_set_recording(c, true);
    REQUIRE(emb);
    emb->requires_grad = true;
    f.inputs_embeds = emb;
  }
  vl_tensor *logits = vl_qwen_text_forward(c, m, ids, &f);
  if (!logits) printf("  %s\n", vl_last_error());
  REQUIRE(logits);
  CHECK(logits->ndim == 3 && logits->shape[1] == ids->numel && logits->shape[2] == m->cfg.vocab);
  CHECK(cmp_golden(model, "logits", logits) <= TOL);
  CHECK(cmp_golden(model, "hidden.final", hidden) <= TOL);
  for (int l = 0; l < (int)m->cfg.n_layers; l++) {
    char name[32];
    snprintf(name, sizeof name, "attn.%d", l);
    CHECK(probs[l] && probs[l]->shape[1] == m->cfg.n_heads);
    CHECK(cmp_golden(model, name, probs[l]) <= TOL);
  }
  if (recording) {
    /* The tape reaches the attention probabilities: d logit / d A exists. */
    int64_t T = ids->numel, V = m->cfg.vocab;
    float *dout = calloc((size_t)(T * V), sizeof *dout);
    REQUIRE(dout);
    dout[(T - 1) * V + 7] = 1.0f;
    CHECK(vl_backward(c, logits, dout) == VL_OK);
    double s = 0;
    for (int64_t i = 0; probs[0] && probs[0]->grad && i < probs[0]->numel; i++)
      s += fabs(probs[0]->grad[i]);
    CHECK(s > 0);
    /* d logit / d embedding against central differences (inference passes) */
    REQUIRE(emb->grad);
    vl_ctx *c2 = vl_ctx_new();
    const int64_t probe[3] = {0, (T / 2) * m->cfg.hidden + 5, T * m->cfg.hidden - 1};
    for (int i = 0; i < 3; i++) {
      float *x = vl_f32(emb), x0 = x[probe[i]], h = 1e-2f, lp[2];
      for (int sgn = 0; sgn < 2; sgn++) {
        x[probe[i]] = x0 + (sgn ? -h : h);
        vl_qwen_fwd g = {.inputs_embeds = emb};
        size_t mk = vl_ctx_mark(c2);
        vl_tensor *o = vl_qwen_text_forward(c2, m, NULL, &g);
        lp[sgn] = o ? vl_f32(o)[(T - 1) * V + 7] : NAN;
        vl_ctx_reset(c2, mk);
      }
      x[probe[i]] = x0;
      double fd = (lp[0] - lp[1]) / (2 * h);
      CHECK_NEAR(emb->grad[probe[i]], fd, 2e-3 + 2e-2 * fabs(fd));
    }
    vl_ctx_free(c2);
    free(dout);
  }
  vl_ctx_free(c);
  vl_qwen_text_free(m);
}

static void qwen2_matches_golden(void) { parity("golden/qwen2-a", false); }
static void qwen3_matches_golden(void) { parity("golden/qwen3-a", false); }
static void qwen2_recorded_matches_golden(void) { parity("golden/qwen2-a", true); }
static void qwen3_recorded_matches_golden(void) { parity("golden/qwen3-a", true); }

static int32_t argmax(const float *x, int64_t n) {
  int64_t b = 0;
  for (int64_t i = 1; i < n; i++)
    if (x[i] > x[b]) b = i;
  return (int32_t)b;
}

/* Prefill + greedy decode with the KV cache; every step's logits must equal a
 * full forward over the whole sequence so far. */
static void kv_decode(const char *model) {
  vl_qwen_text *m = vl_qwen_text_load(test_shared_path(model));
  REQUIRE(m);
  vl_ctx *c = vl_ctx_new();
  vl_tensor *ids = golden_case_ids(c, model, NULL, NULL);
  REQUIRE(ids);
  const int64_t T0 = ids->numel, V = m->cfg.vocab, N = 6;
  vl_kv_cache *kv = vl_qwen_text_cache_new(m, T0 + N);
  REQUIRE(kv);
  int64_t *seq = calloc((size_t)(T0 + N), sizeof *seq);
  REQUIRE(seq);
  memcpy(seq, ids->data, (size_t)T0 * sizeof *seq);
  vl_qwen_fwd f = {.cache = kv, .last_only = true};
  vl_tensor *lg = vl_qwen_text_forward(c, m, ids, &f);
  REQUIRE(lg && lg->numel == V);
  size_t mark = vl_ctx_mark(c), used_after_first = 0;
  for (int64_t s = 0; s < N; s++) {
    int32_t next = argmax(vl_f32(lg), V);
    seq[T0 + s] = next;
    /* full forward over seq[0..T0+s] (its last position predicts the same
     * token as the cache step that produced lg) */
    int64_t Tf = T0 + s;
    vl_tensor *full_ids = vl_wrap(c, VL_I64, 1, &Tf, seq);
    vl_tensor *full = vl_qwen_text_forward(c, m, full_ids, NULL);
    REQUIRE(full);
    double e = test_max_rel_err(vl_f32(lg), vl_f32(full) + (Tf - 1) * V, (size_t)V);
    CHECK(e <= TOL);
    CHECK(argmax(vl_f32(full) + (Tf - 1) * V, V) == next);
    vl_ctx_reset(c, mark);
    int64_t one = 1;
    vl_tensor *step = vl_wrap(c, VL_I64, 1, &one, &seq[T0 + s]);
    lg = vl_qwen_text_forward(c, m, step, &f);
    REQUIRE(lg && lg->numel == V);
    if (s == 0)
      used_after_first = vl_ctx_used(c);
    else
      CHECK(vl_ctx_used(c) == used_after_first); /* no growth per token */
  }
  CHECK(kv->len == T0 + N);
  /* The cache is full now: one more step is refused, not overrun. */
  int64_t one = 1;
  vl_tensor *step = vl_wrap(c, VL_I64, 1, &one, &seq[0]);
  CHECK(vl_qwen_text_forward(c, m, step, &f) == NULL && vl_last_error_code() == VL_ERR_LIMIT);
  free(seq);
  vl_kv_free(kv);
  vl_ctx_free(c);
  vl_qwen_text_free(m);
}

static void qwen2_kv_decode_matches_full(void) { kv_decode("golden/qwen2-a"); }
static void qwen3_kv_decode_matches_full(void) { kv_decode("golden/qwen3-a"); }

/* ---- folders made in the test ------------------------------------------ */

/* dir/<name> with config.json (text) and model.safetensors from src, each
 * 2-D weight converted to dtype; drop: a tensor left out; reshape: a tensor
 * whose shape is given a wrong first dim. */
static const char *make_folder(const char *name, const char *config, vl_dtype dtype,
                               const char *drop, const char *reshape) {
  static char dir[512];
  char path[600];
  snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), name);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  if (system(cmd)) return NULL;
  snprintf(path, sizeof path, "%s/config.json", dir);
  if (test_write_file(path, config, strlen(config))) return NULL;
  snprintf(path, sizeof path, "%s/model.safetensors", test_shared_path("golden/qwen3-a"));
  vl_safetensors *st = vl_st_open(path);
  if (!st) return NULL;
  vl_st_writer *w = vl_st_writer_new();
  for (size_t i = 0; i < vl_st_count(st); i++) {
    const vl_st_tensor *t = vl_st_at(st, i);
    if (drop && !strcmp(t->name, drop)) continue;
    int64_t n = vl_st_numel(t);
    float *f = malloc((size_t)n * sizeof *f);
    uint16_t *h = malloc((size_t)n * sizeof *h);
    vl_st_to_f32(t, f);
    int64_t shape[8];
    memcpy(shape, t->shape, sizeof shape);
    if (reshape && !strcmp(t->name, reshape)) shape[0] /= 2, n /= 2;
    if (t->ndim == 2 && dtype == VL_BF16) {
      for (int64_t k = 0; k < n; k++)
        h[k] = vl_f32_to_bf16(f[k]);
      vl_st_writer_add(w, t->name, VL_BF16, t->ndim, shape, h);
    } else {
      vl_st_writer_add(w, t->name, VL_F32, t->ndim, shape, f);
    }
    free(f);
    free(h);
  }
  vl_st_close(st);
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  int rc = vl_st_writer_save(w, path);
  vl_st_writer_free(w);
  return rc ? NULL : dir;
}

static char *qwen3_config(void) {
  char path[512];
  size_t n;
  snprintf(path, sizeof path, "%s/config.json", test_shared_path("golden/qwen3-a"));
  return (char *)test_read_file(path, &n);
}

/* config.json of qwen3-a with `from` replaced by `to` (first occurrence). */
static char *edited_config(const char *from, const char *to) {
  char *cfg = qwen3_config();
  if (!cfg) return NULL;
  char *at = strstr(cfg, from);
  if (!at) {
    free(cfg);
    return NULL;
  }
  char *out = malloc(strlen(cfg) + strlen(to) + 1);
  size_t pre = (size_t)(at - cfg);
  memcpy(out, cfg, pre);
  strcpy(out + pre, to);
  strcat(out, at + strlen(from));
  free(cfg);
  return out;
}

static void bf16_weights_stay_close(void) {
  char *cfg = qwen3_config();
  REQUIRE(cfg);
  const char *dir = make_folder("bf16", cfg, VL_BF16, NULL, NULL);
  free(cfg);
  REQUIRE(dir);
  vl_qwen_text *m32 = vl_qwen_text_load(test_shared_path("golden/qwen3-a"));
  vl_qwen_text *m16 = vl_qwen_text_load(dir);
  if (!m16) printf("  %s\n", vl_last_error());
  REQUIRE(m32 && m16);
  CHECK(m16->embed->dtype == VL_BF16 && m16->layers[0].wq->dtype == VL_BF16);
  CHECK(m16->layers[0].q_norm->dtype == VL_F32);
  vl_ctx *c = vl_ctx_new();
  vl_tensor *ids = golden_case_ids(c, "golden/qwen3-a", NULL, NULL);
  vl_tensor *a = vl_qwen_text_forward(c, m32, ids, NULL);
  vl_tensor *b = vl_qwen_text_forward(c, m16, ids, NULL);
  REQUIRE(a && b);
  double e = test_max_rel_err(vl_f32(b), vl_f32(a), (size_t)a->numel);
  printf("  bf16 vs f32 logits: max rel err %.2e\n", e);
  CHECK(e > 0 && e < 5e-2);
  vl_ctx_free(c);
  vl_qwen_text_free(m32);
  vl_qwen_text_free(m16);
}

static void expect_load_error(const char *name, const char *config, const char *drop,
                              const char *reshape, int code, const char *needle) {
  const char *dir = config ? make_folder(name, config, VL_F32, drop, reshape) : NULL;
  if (!dir) printf("  %s: could not make the folder\n", name);
  CHECK(dir);
  if (!dir) return;
  vl_clear_error();
  vl_qwen_text *m = vl_qwen_text_load(dir);
  CHECK(m == NULL);
  if (m) vl_qwen_text_free(m);
  if (vl_last_error_code() != code || !strstr(vl_last_error(), needle)) {
    printf("  %s: got %d '%s', wanted %d with '%s'\n", name, vl_last_error_code(), vl_last_error(),
           code, needle);
    test_current_failed = 1;
  }
}

static void broken_folders_give_clear_errors(void) {
  char *c1 = edited_config("\"model_type\": \"qwen3\"", "\"model_type\": \"llama\"");
  char *c2 = edited_config("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3");
  char *c3 = edited_config("\"hidden_size\": 64", "\"hidden_size\": -64");
  char *c4 = edited_config("\"rms_norm_eps\": 1e-06", "\"rms_norm_eps\": \"x\"");
  char *c5 = edited_config("\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"yarn\"}");
  char *c6 = edited_config("\"eos_token_id\": 318", "\"eos_token_id\": [318, 2]");
  char *c7 = edited_config("\"hidden_size\": 64", "\"hidden_size\": 65");
  char *c8 = edited_config("\"attention_bias\": false", "\"attention_bias\": true");
  char *c0 = qwen3_config();
  REQUIRE(c8 && c1 && c2 && c3 && c4 && c5 && c6 && c7 && c0);
  expect_load_error("type", c1, NULL, NULL, VL_ERR_UNSUPPORTED, "llama");
  expect_load_error("kvheads", c2, NULL, NULL, VL_ERR_FORMAT, "num_key_value_heads");
  expect_load_error("hidden", c3, NULL, NULL, VL_ERR_FORMAT, "hidden_size");
  expect_load_error("eps", c4, NULL, NULL, VL_ERR_FORMAT, "rms_norm_eps");
  expect_load_error("rope", c5, NULL, NULL, VL_ERR_UNSUPPORTED, "yarn");
  expect_load_error("shape", c7, NULL, NULL, VL_ERR_FORMAT, "embed_tokens");
  expect_load_error("missing", c0, "model.layers.1.self_attn.k_norm.weight", NULL, VL_ERR_NOTFOUND,
                    "layers.1.self_attn.k_norm.weight");
  expect_load_error("misshaped", c0, NULL, "model.layers.0.mlp.up_proj.weight", VL_ERR_FORMAT,
                    "up_proj.weight");
  expect_load_error("bias", c8, NULL, NULL, VL_ERR_NOTFOUND, "q_proj.bias");
  expect_load_error("noconfig", "", NULL, NULL, VL_ERR_FORMAT, "config.json");
  /* eos as a list */
  const char *dir = make_folder("eoslist", c6, VL_F32, NULL, NULL);
  vl_qwen_text *m = dir ? vl_qwen_text_load(dir) : NULL;
  REQUIRE(m);
  CHECK(m->cfg.n_eos == 2 && vl_qwen_is_eos(&m->cfg, 318) && vl_qwen_is_eos(&m->cfg, 2));
  CHECK(!vl_qwen_is_eos(&m->cfg, 317));
  /* bad ids are an error, not a crash */
  vl_ctx *c = vl_ctx_new();
  int64_t T = 3, bad[3] = {1, 336, 2};
  CHECK(vl_qwen_text_forward(c, m, vl_wrap(c, VL_I64, 1, &T, bad), NULL) == NULL);
  CHECK(strstr(vl_last_error(), "336") != NULL);
  CHECK(vl_qwen_text_forward(c, m, NULL, NULL) == NULL);
  vl_ctx_free(c);
  vl_qwen_text_free(m);
  CHECK(vl_qwen_text_load("/nonexistent/model") == NULL && vl_last_error()[0]);
  free(c8), free(c0), free(c1), free(c2), free(c3), free(c4), free(c5), free(c6), free(c7);
}

/* ---- generation ---------------------------------------------------------- */

typedef struct {
  char text[4096];
  size_t len;
  int calls;
} sink;

static int collect(void *user, int32_t id, const char *text, size_t len) {
  sink *k = user;
  k->calls++;
  if (text && k->len + len < sizeof k->text) {
    memcpy(k->text + k->len, text, len);
    k->len += len;
    k->text[k->len] = 0;
  }
  return 0;
}

static void generate_greedy_stops_and_seeds(void) {
  const char *model = "golden/qwen2-a"; /* its greedy run varies early on */
  vl_qwen_text *m = vl_qwen_text_load(test_shared_path(model));
  vl_tokenizer *tok = vl_tokenizer_load(test_shared_path(model));
  REQUIRE(m && tok);
  vl_ctx *c = vl_ctx_new();
  vl_tensor *ids64 = golden_case_ids(c, model, NULL, NULL);
  REQUIRE(ids64);
  const size_t T0 = (size_t)ids64->numel, N = 12;
  int32_t prompt[64];
  REQUIRE(T0 <= 64);
  for (size_t i = 0; i < T0; i++)
    prompt[i] = (int32_t)((int64_t *)ids64->data)[i];

  /* greedy: each token is the argmax of a full forward over the sequence so far */
  vl_generate_opts o = {
      .sampling = vl_sampler_defaults(), .max_tokens = (int)N, .ignore_eos = true};
  sink k = {0};
  int32_t *out = NULL;
  size_t n_out = 0;
  vl_generate_stats st;
  REQUIRE(vl_generate(m, tok, prompt, T0, &o, collect, &k, &out, &n_out, &st) == VL_OK);
  CHECK(n_out == N && st.n_generated == N && st.reason == VL_STOP_MAX_TOKENS && k.calls == (int)N);
  int64_t seq[64 + 16];
  for (size_t i = 0; i < T0; i++)
    seq[i] = prompt[i];
  for (size_t i = 0; i < N; i++)
    seq[T0 + i] = out[i];
  int64_t Tf = (int64_t)(T0 + N - 1);
  vl_tensor *full = vl_qwen_text_forward(c, m, vl_wrap(c, VL_I64, 1, &Tf, seq), NULL);
  REQUIRE(full);
  for (size_t i = 0; i < N; i++)
    CHECK(argmax(vl_f32(full) + (T0 - 1 + i) * m->cfg.vocab, m->cfg.vocab) == out[i]);
  /* the streamed text is the decoded ids */
  char *dec = NULL;
  size_t dlen = 0;
  REQUIRE(vl_tokenizer_decode(tok, out, n_out, 1, &dec, &dlen) == VL_OK);
  CHECK(dlen == k.len && !memcmp(dec, k.text, dlen));

  /* a stop string (the text of the fifth token) ends the run before it */
  char *piece = NULL;
  size_t plen = 0;
  REQUIRE(vl_tokenizer_decode(tok, &out[4], 1, 1, &piece, &plen) == VL_OK && plen > 0);
  const char *stops[2] = {"never-produced", piece};
  size_t at = (size_t)(strstr(dec, piece) - dec);
  CHECK(at > 0);
  vl_generate_opts o2 = o;
  o2.stop = stops;
  o2.n_stop = 2;
  sink k2 = {0};
  REQUIRE(vl_generate(m, tok, prompt, T0, &o2, collect, &k2, NULL, NULL, &st) == VL_OK);
  CHECK(st.reason == VL_STOP_STRING && st.n_generated < N);
  CHECK(k2.len == at && !memcmp(k2.text, dec, at));
  free(piece);
  free(dec);

  /* EOS: make the fifth greedy token an EOS id */
  vl_qwen_config saved = m->cfg;
  m->cfg.eos[0] = out[4];
  m->cfg.n_eos = 1;
  o.ignore_eos = false;
  int32_t *out2 = NULL;
  size_t n2 = 0;
  REQUIRE(vl_generate(m, tok, prompt, T0, &o, NULL, NULL, &out2, &n2, &st) == VL_OK);
  size_t first = 0;
  while (out[first] != out[4])
    first++;
  CHECK(first > 0 && st.reason == VL_STOP_EOS && n2 == first + 1 && out2[n2 - 1] == out[4]);
  free(out2);
  m->cfg = saved;

  /* sampling with a seed is reproducible; another seed differs */
  vl_generate_opts o3 = {.max_tokens = 16, .ignore_eos = true};
  o3.sampling = vl_sampler_defaults();
  o3.sampling.temperature = 1.5f;
  o3.sampling.seed = 7;
  int32_t *a = NULL, *b = NULL, *d = NULL;
  size_t na, nb, nd;
  REQUIRE(vl_generate(m, NULL, prompt, T0, &o3, NULL, NULL, &a, &na, NULL) == VL_OK);
  REQUIRE(vl_generate(m, NULL, prompt, T0, &o3, NULL, NULL, &b, &nb, NULL) == VL_OK);
  o3.sampling.seed = 8;
  REQUIRE(vl_generate(m, NULL, prompt, T0, &o3, NULL, NULL, &d, &nd, NULL) == VL_OK);
  CHECK(na == 16 && nb == 16 && nd == 16 && !memcmp(a, b, 16 * sizeof *a));
  CHECK(memcmp(a, d, 16 * sizeof *a) != 0);
  free(a), free(b), free(d);

  /* bad requests are errors */
  int32_t bad[2] = {1, (int32_t)m->cfg.vocab};
  CHECK(vl_generate(m, NULL, bad, 2, &o3, NULL, NULL, NULL, NULL, NULL) == VL_ERR_INVALID);
  CHECK(vl_generate(m, NULL, prompt, 0, &o3, NULL, NULL, NULL, NULL, NULL) == VL_ERR_INVALID);
  o3.max_tokens = 0;
  CHECK(vl_generate(m, NULL, prompt, T0, &o3, NULL, NULL, NULL, NULL, NULL) == VL_ERR_INVALID);
  o3.max_tokens = 4;
  o3.sampling.top_p = 2;
  CHECK(vl_generate(m, NULL, prompt, T0, &o3, NULL, NULL, NULL, NULL, NULL) == VL_ERR_INVALID);
  free(out);
  vl_ctx_free(c);
  vl_tokenizer_free(tok);
  vl_qwen_text_free(m);
}

int main(void) {
  RUN(qwen2_matches_golden);
  RUN(qwen3_matches_golden);
  RUN(qwen2_recorded_matches_golden);
  RUN(qwen3_recorded_matches_golden);
  RUN(qwen2_kv_decode_matches_full);
  RUN(qwen3_kv_decode_matches_full);
  RUN(bf16_weights_stay_close);
  RUN(broken_folders_give_clear_errors);
  RUN(generate_greedy_stops_and_seeds);
  return test_summary();
}
