/* F16 KV cache: the F32 <-> F16 row conversions (every kernel against
 * base/half.h, specials), the decode attention kernel against the general
 * attention op, decode logits against full F32 forwards on the random-weight
 * goldens (tolerance measured there: see F16_TOL), greedy continuations and
 * chat replies identical to the F32 cache on the tiny checkpoints, and the
 * cache's size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/half.h"
#include "base/threads.h"
#include "goldens.h"
#include "io/json.h"
#include "models/kv_cache.h"
#include "models/qwen_text.h"
#include "tasks/chat_session.h"
#include "tasks/generate.h"
#include "tasks/model_paths.h"
#include "tensor/ops.h"
#include "test.h"
#include "text/tokenizer.h"

/* Decode logits with the F16 cache vs the full F32 forward, max |diff| /
 * max |ref| over the vocabulary, 8 greedy steps after the case's prompt:
 * measured 7.1e-4 (qwen2-a) and 3.4e-4 (qwen3-a), the F32 cache ~1e-6; the
 * bound leaves room for other kernels and summation orders. */
#define F16_TOL 5e-3

static const vl_kv_kernel kernels_all[] = {VL_KV_SCALAR, VL_KV_AVX2, VL_KV_AVX512};
static const char *const kernel_names[] = {"scalar", "avx2", "avx512"};

static uint32_t bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Every half widens to base/half.h's value and narrows back to itself
 * (NaNs stay NaN with their sign); every float narrows as base/half.h
 * rounds it (round to nearest even, subnormals, overflow to Inf). */
static void conversions_every_kernel(void) {
  uint16_t *h = malloc(65536 * sizeof *h), *h2 = malloc(65536 * sizeof *h2);
  float *f = malloc(65536 * sizeof *f);
  enum { NR = 1 << 20 };
  float *x = malloc(NR * sizeof *x);
  uint16_t *y = malloc(NR * sizeof *y);
  REQUIRE(h && h2 && f && x && y);
  for (int i = 0; i < 65536; i++)
    h[i] = (uint16_t)i;
  uint64_t s = 0x9e3779b97f4a7c15u;
  for (int i = 0; i < NR; i++) /* random bit patterns, most in half's range */
    x[i] = from_bits(i % 2 ? (uint32_t)rng_next(&s)
                           : (uint32_t)(rng_next(&s) & 0x807fffffu) |
                                 (uint32_t)(100 + rng_next(&s) % 50) << 23);
  for (size_t k = 0; k < sizeof kernels_all / sizeof *kernels_all; k++) {
    if (!vl_kv_set_kernel(kernels_all[k])) {
      printf("  %s: not on this CPU\n", kernel_names[k]);
      continue;
    }
    int bad_widen = 0, bad_trip = 0, bad_narrow = 0;
    vl_kv_f16_to_f32(h, f, 65536);
    vl_kv_f32_to_f16(f, h2, 65536);
    for (int i = 0; i < 65536; i++) {
      float ref = vl_f16_to_f32(h[i]);
      bool nan = (h[i] & 0x7c00) == 0x7c00 && (h[i] & 0x3ff);
      if (nan) {
        bad_widen += !isnan(f[i]) || signbit(f[i]) != signbit(ref);
        bad_trip += (h2[i] & 0x7c00) != 0x7c00 || !(h2[i] & 0x3ff) || (h2[i] ^ h[i]) & 0x8000;
      } else {
        bad_widen += bits(f[i]) != bits(ref);
        bad_trip += h2[i] != h[i];
      }
    }
    vl_kv_f32_to_f16(x, y, NR);
    for (int i = 0; i < NR; i++) {
      uint16_t ref = vl_f32_to_f16(x[i]);
      bad_narrow += isnan(x[i]) ? (y[i] & 0x7fff) <= 0x7c00 || (y[i] ^ ref) & 0x8000 : y[i] != ref;
    }
    printf("  %-6s widen %d, round trip %d, narrow %d mismatches\n", kernel_names[k], bad_widen,
           bad_trip, bad_narrow);
    CHECK(bad_widen == 0 && bad_trip == 0 && bad_narrow == 0);

    /* specials, 19 values: tails shorter than a vector too */
    const float sp[] = {65504.0f,          65519.99f,  65520.0f,  1e10f,         -INFINITY,
                        INFINITY,          NAN,        -0.0f,     0x1p-14f,      0x1p-24f,
                        0x1p-25f,          0x1.8p-25f, 0x1p-26f,  -0x1.ffcp-15f, 1.0f + 0x1p-11f,
                        1.0f + 0x1.8p-11f, 0x1p-149f,  -65536.0f, 3.14159265f};
    const uint16_t want[] = {0x7bff, 0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x7c00, 0,
                             0x8000, 0x0400, 0x0001, 0x0000, 0x0001, 0x0000, 0x8400,
                             0x3c00, 0x3c01, 0x0000, 0xfc00, 0x4248};
    const int n = (int)(sizeof sp / sizeof *sp);
    uint16_t o[32];
    float back[32];
    vl_kv_f32_to_f16(sp, o, n);
    vl_kv_f16_to_f32(o, back, n);
    for (int i = 0; i < n; i++) {
      if (isnan(sp[i])) {
        CHECK((o[i] & 0x7c00) == 0x7c00 && (o[i] & 0x3ff) && isnan(back[i]));
      } else {
        if (o[i] != want[i])
          printf("  %s: %a -> 0x%04x, want 0x%04x\n", kernel_names[k], sp[i], o[i], want[i]);
        CHECK(o[i] == want[i]);
        CHECK(bits(back[i]) == bits(vl_f16_to_f32(want[i])));
      }
    }
    CHECK(back[9] == 0x1p-24f && back[1] == 65504.0f && isinf(back[2]));
  }
  vl_kv_set_kernel(VL_KV_AUTO);
  free(h);
  free(h2);
  free(f);
  free(x);
  free(y);
}

/* ---- the decode kernel against vl_attention ---------------------------- */

/* One shape: random keys/values (n positions), the F16 cache's decode
 * kernel on every kernel and thread count against vl_attention over the
 * widened (rounded) keys and values. */
static void attend_case(int64_t n, int64_t Hkv, int64_t D, int64_t Hq) {
  const int L = 2;
  vl_ctx *c = vl_ctx_new();
  REQUIRE(c);
  vl_kv_cache *kv = vl_kv_new_typed(L, n + 3, Hkv, D, VL_F16);
  REQUIRE(kv);
  uint64_t s = 7 + (uint64_t)(n * D);
  int64_t sk[4] = {1, n, Hkv, D}, sq[4] = {1, 1, Hq, D};
  vl_tensor *k = vl_new(c, VL_F32, 4, sk), *v = vl_new(c, VL_F32, 4, sk);
  vl_tensor *q = vl_new(c, VL_F32, 4, sq);
  REQUIRE(k && v && q);
  for (int64_t i = 0; i < k->numel; i++) {
    vl_f32(k)[i] = (float)((double)(rng_next(&s) % 2000) / 500.0 - 2.0);
    vl_f32(v)[i] = (float)((double)(rng_next(&s) % 2000) / 1000.0 - 1.0);
  }
  for (int64_t i = 0; i < q->numel; i++)
    vl_f32(q)[i] = (float)((double)(rng_next(&s) % 2000) / 500.0 - 2.0);
  /* layer 0 in one append, layer 1 in three (positions split at 1 and 2n/3) */
  vl_tensor *ka = NULL, *va = NULL, *kb, *vb;
  REQUIRE(vl_kv_append(kv, c, 0, k, v, &ka, &va) == VL_OK);
  const int64_t c1 = n < 1 ? n : 1, c2 = 2 * n / 3 > c1 ? 2 * n / 3 : c1;
  const int64_t cut[4] = {0, c1, c2, n};
  for (int p = 0; p < 3; p++) {
    int64_t sp[4] = {1, cut[p + 1] - cut[p], Hkv, D};
    if (sp[1] == 0) continue;
    vl_tensor *kp = vl_wrap(c, VL_F32, 4, sp, vl_f32(k) + cut[p] * Hkv * D);
    vl_tensor *vp = vl_wrap(c, VL_F32, 4, sp, vl_f32(v) + cut[p] * Hkv * D);
    REQUIRE(vl_kv_append(kv, c, 1, kp, vp, &kb, &vb) == VL_OK);
    kv->len += sp[1]; /* layer 1 alone: advance by hand, back to 0 below */
  }
  kv->len = 0;
  vl_kv_advance(kv, n);
  /* the widened views are the rounded values, in both layers */
  int bad = 0;
  for (int64_t i = 0; i < k->numel; i++) {
    float rk = vl_f16_to_f32(vl_f32_to_f16(vl_f32(k)[i]));
    float rv = vl_f16_to_f32(vl_f32_to_f16(vl_f32(v)[i]));
    bad += vl_f32(ka)[i] != rk || vl_f32(kb)[i] != rk || vl_f32(va)[i] != rv || vl_f32(vb)[i] != rv;
  }
  CHECK(bad == 0);
  const float scale = 1.0f / sqrtf((float)D);
  const vl_attn_mask mask = {.causal = true};
  vl_tensor *ref = vl_attention(c, q, ka, va, scale, &mask, NULL);
  vl_tensor *exact = vl_attention(c, q, k, v, scale, &mask, NULL);
  REQUIRE(ref && exact);
  float *S = malloc((size_t)vl_kv_attend_scratch(n, Hq) * sizeof *S);
  float *out = malloc((size_t)(Hq * D) * sizeof *out), *o2 = malloc((size_t)(Hq * D) * sizeof *o2);
  REQUIRE(S && out && o2);
  for (size_t kk = 0; kk < sizeof kernels_all / sizeof *kernels_all; kk++) {
    if (!vl_kv_set_kernel(kernels_all[kk])) continue;
    for (int l = 0; l < L; l++) {
      REQUIRE(vl_kv_attend(kv, l, n, vl_f32(q), Hq, scale, S, out) == VL_OK);
      double e = test_max_rel_err(out, vl_f32(ref), (size_t)(Hq * D));
      double ex = test_max_rel_err(out, vl_f32(exact), (size_t)(Hq * D));
      if (l == 0)
        printf("  n %3lld, %lld/%lld heads, D %3lld, %-6s: vs rounded %.1e, vs exact %.1e\n",
               (long long)n, (long long)Hq, (long long)Hkv, (long long)D, kernel_names[kk], e, ex);
      CHECK(e <= 1e-5 && ex <= 5e-3);
      for (int t = 1; t <= 3; t += 2) { /* the same for any thread count */
        vl_threads_set(t);
        REQUIRE(vl_kv_attend(kv, l, n, vl_f32(q), Hq, scale, S, o2) == VL_OK);
        CHECK(!memcmp(o2, out, (size_t)(Hq * D) * sizeof *out));
      }
      vl_threads_set(0);
    }
  }
  vl_kv_set_kernel(VL_KV_AUTO);
  /* fewer positions than the cache holds: attends to those only */
  const int64_t m = n > 5 ? 5 : n;
  REQUIRE(vl_kv_attend(kv, 0, m, vl_f32(q), Hq, scale, S, out) == VL_OK);
  int64_t sm[4] = {1, m, Hkv, D};
  vl_tensor *km = vl_new(c, VL_F32, 4, sm), *vm = vl_new(c, VL_F32, 4, sm);
  REQUIRE(km && vm);
  memcpy(km->data, ka->data, (size_t)km->numel * sizeof(float));
  memcpy(vm->data, va->data, (size_t)vm->numel * sizeof(float));
  vl_tensor *rm = vl_attention(c, q, km, vm, scale, &mask, NULL);
  REQUIRE(rm);
  CHECK(test_max_rel_err(out, vl_f32(rm), (size_t)(Hq * D)) <= 1e-5);
  /* bad arguments are refused */
  CHECK(vl_kv_attend(kv, L, n, vl_f32(q), Hq, scale, S, out) == VL_ERR_INVALID);
  CHECK(vl_kv_attend(kv, 0, n + 4, vl_f32(q), Hq, scale, S, out) == VL_ERR_INVALID);
  CHECK(vl_kv_attend(kv, 0, n, vl_f32(q), 0, scale, S, out) == VL_ERR_INVALID);
  if (Hkv > 1) CHECK(vl_kv_attend(kv, 0, n, vl_f32(q), Hkv + 1, scale, S, out) == VL_ERR_INVALID);
  vl_kv_cache *f32 = vl_kv_new(1, 4, Hkv, D);
  REQUIRE(f32);
  CHECK(vl_kv_attend(f32, 0, 1, vl_f32(q), Hq, scale, S, out) == VL_ERR_INVALID);
  vl_kv_free(f32);
  free(S);
  free(out);
  free(o2);
  vl_kv_free(kv);
  vl_ctx_free(c);
}

/* Shapes of the real configs (head_dim 128 / 64, groups of 2 and 7), odd
 * head_dims (portable paths), lengths below, at and past key blocks. */
static void attend_matches_attention(void) {
  attend_case(37, 2, 40, 6);
  attend_case(1, 2, 32, 4);
  attend_case(16, 8, 128, 16);
  attend_case(45, 8, 128, 16);
  attend_case(33, 2, 64, 14);
  attend_case(20, 1, 48, 9);
  attend_case(17, 3, 80, 3);
}

/* ---- size --------------------------------------------------------------- */

static void f16_cache_is_half_the_bytes(void) {
  vl_kv_cache *a = vl_kv_new(28, 576, 8, 128), *b = vl_kv_new_typed(28, 576, 8, 128, VL_F16);
  REQUIRE(a && b);
  CHECK(vl_kv_bytes(a) == (size_t)28 * 2 * 576 * 8 * 128 * 4); /* 132 MB: Qwen3-0.6B at 576 */
  CHECK(vl_kv_bytes(b) * 2 == vl_kv_bytes(a));
  vl_kv_cache *odd = vl_kv_new_typed(1, 17, 1, 8, VL_F16); /* keys in whole blocks of 16 */
  REQUIRE(odd);
  CHECK(vl_kv_bytes(odd) == (size_t)(32 + 17) * 8 * 2);
  vl_kv_free(odd);
  CHECK(b->dtype == VL_F16 && a->dtype == VL_F32);
  vl_kv_free(a);
  vl_kv_free(b);
  CHECK(vl_kv_new_typed(2, 8, 2, 4, VL_BF16) == NULL && vl_last_error_code() == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "F32 or F16") != NULL);
}

/* ---- whole models ------------------------------------------------------- */

static int32_t argmax(const float *x, int64_t n) {
  int64_t b = 0;
  for (int64_t i = 1; i < n; i++)
    if (x[i] > x[b]) b = i;
  return (int32_t)b;
}

/* Prefill (in two chunks: the second reads F16 rows widened) and greedy
 * decode with a dtype cache; each step's logits against a full F32 forward
 * over the sequence so far. Returns the largest relative error. */
static double cache_decode(const char *model, vl_dtype dtype) {
  vl_qwen_text *m = vl_qwen_text_load(test_shared_path(model));
  if (!m) return 1e9;
  vl_ctx *c = vl_ctx_new();
  vl_tensor *ids = golden_case_ids(c, model, NULL, NULL);
  if (!ids) return 1e9;
  const int64_t T0 = ids->numel, V = m->cfg.vocab, N = 8, half = T0 / 2;
  vl_kv_cache *kv = vl_qwen_text_cache_new_typed(m, T0 + N, dtype);
  int64_t *seq = calloc((size_t)(T0 + N), sizeof *seq);
  if (!kv || !seq) return 1e9;
  memcpy(seq, ids->data, (size_t)T0 * sizeof *seq);
  vl_qwen_fwd f = {.cache = kv, .last_only = true};
  vl_tensor *a = vl_wrap(c, VL_I64, 1, &half, seq);
  int64_t rest = T0 - half;
  vl_tensor *b = vl_wrap(c, VL_I64, 1, &rest, seq + half);
  vl_tensor *lg = vl_qwen_text_forward(c, m, a, &f) ? vl_qwen_text_forward(c, m, b, &f) : NULL;
  double worst = lg ? 0 : 1e9;
  int same = 0;
  size_t mark = vl_ctx_mark(c), used = 0;
  for (int64_t s = 0; lg && s < N; s++) {
    int64_t Tf = T0 + s;
    vl_tensor *full = vl_qwen_text_forward(c, m, vl_wrap(c, VL_I64, 1, &Tf, seq), NULL);
    if (!full) return 1e9;
    const float *ref = vl_f32(full) + (Tf - 1) * V;
    double e = test_max_rel_err(vl_f32(lg), ref, (size_t)V);
    worst = e > worst ? e : worst;
    int32_t next = argmax(vl_f32(lg), V);
    same += next == argmax(ref, V);
    seq[T0 + s] = next;
    vl_ctx_reset(c, mark);
    int64_t one = 1;
    lg = vl_qwen_text_forward(c, m, vl_wrap(c, VL_I64, 1, &one, &seq[T0 + s]), &f);
    if (s == 0) used = vl_ctx_used(c);
    CHECK(!lg || vl_ctx_used(c) == used); /* no growth per token */
  }
  printf("  %s: %s cache decode vs full F32 forward: max rel err %.2e, same argmax %d/%d\n", model,
         vl_dtype_name(dtype), worst, same, (int)N);
  CHECK(lg && same == N);
  CHECK(kv->len == T0 + N);
  free(seq);
  vl_kv_free(kv);
  vl_ctx_free(c);
  vl_qwen_text_free(m);
  return worst;
}

static void qwen2_f16_decode_close(void) {
  CHECK(cache_decode("golden/qwen2-a", VL_F32) <= 1e-4); /* for comparison */
  CHECK(cache_decode("golden/qwen2-a", VL_F16) <= F16_TOL);
}
static void qwen3_f16_decode_close(void) {
  CHECK(cache_decode("golden/qwen3-a", VL_F32) <= 1e-4);
  CHECK(cache_decode("golden/qwen3-a", VL_F16) <= F16_TOL);
}

/* Greedy continuations of a few prompts, F16 cache vs F32 cache. */
static int greedy_same(const char *dir, const int32_t *prompt, size_t n, int max_tokens) {
  vl_qwen_text *m = vl_qwen_text_load(dir);
  if (!m) return -1;
  int32_t *out[2] = {0};
  size_t nout[2] = {0};
  for (int i = 0; i < 2; i++) {
    vl_generate_opts g = {.sampling = vl_sampler_defaults(),
                          .max_tokens = max_tokens,
                          .ignore_eos = true,
                          .kv_dtype = i ? VL_F16 : VL_F32};
    if (vl_generate(m, NULL, prompt, n, &g, NULL, NULL, &out[i], &nout[i], NULL)) {
      vl_qwen_text_free(m);
      return -1;
    }
  }
  int same = nout[0] == nout[1] && !memcmp(out[0], out[1], nout[0] * sizeof *out[0]);
  free(out[0]);
  free(out[1]);
  vl_qwen_text_free(m);
  return same;
}

static void greedy_continuations_identical(void) {
  const int32_t p1[] = {317, 84, 82, 68, 81, 198, 39, 68, 75, 75, 78, 11, 220, 86};
  const int32_t p2[] = {5, 100, 200, 33};
  CHECK(greedy_same(test_shared_path("golden/qwen3-a"), p1, 14, 40) == 1);
  CHECK(greedy_same(test_shared_path("golden/qwen3-a"), p2, 4, 40) == 1);
  CHECK(greedy_same(test_shared_path("golden/qwen2-a"), p1, 14, 40) == 1);
  CHECK(greedy_same(test_shared_path("golden/qwen2-a"), p2, 4, 40) == 1);
  /* the embedded trained model, with real text */
  char dir[4096];
  REQUIRE(vl_model_default_path(VL_DEFAULT_LLM, NULL, "-m", dir, sizeof dir) == VL_OK);
  vl_tokenizer *tok = vl_tokenizer_load(dir);
  REQUIRE(tok);
  const char *texts[] = {"a red circle is", "the blue square in the upper left",
                         "there are three shapes:"};
  for (int i = 0; i < 3; i++) {
    int32_t *ids = NULL;
    size_t n = 0;
    REQUIRE(vl_tokenizer_encode(tok, texts[i], strlen(texts[i]), 0, &ids, &n) == VL_OK);
    CHECK(greedy_same(dir, ids, n, 48) == 1);
    free(ids);
  }
  vl_tokenizer_free(tok);
}

/* Two chat turns (the second reuses and extends the cache) with each cache
 * type: the same replies. */
static void chat_f16_same_replies(void) {
  char dir[4096];
  REQUIRE(vl_model_default_path(VL_DEFAULT_LLM, NULL, "-m", dir, sizeof dir) == VL_OK);
  vl_qwen_text *m = vl_qwen_text_load(dir);
  vl_tokenizer *tok = vl_tokenizer_load(dir);
  REQUIRE(m && tok);
  vl_chat_template t;
  REQUIRE(vl_chat_detect_folder(dir, &t) == VL_OK);
  char *r[2][2] = {{0}};
  for (int i = 0; i < 2; i++) {
    vl_chat_session_opts o = vl_chat_session_default_opts();
    o.gen.max_tokens = 40;
    o.gen.kv_dtype = i ? VL_F16 : VL_F32;
    o.context = 512;
    vl_chat_session *s = vl_chat_session_new(m, tok, t, &o);
    REQUIRE(s);
    CHECK(vl_chat_session_send(s, "describe a red circle", NULL, NULL, &r[i][0], NULL) == VL_OK);
    CHECK(vl_chat_session_send(s, "and a blue square?", NULL, NULL, &r[i][1], NULL) == VL_OK);
    CHECK(vl_chat_session_reused(s) > 0);
    vl_chat_session_free(s);
  }
  REQUIRE(r[0][0] && r[0][1] && r[1][0] && r[1][1]);
  printf("  f32: \"%s\" / \"%s\"\n", r[0][0], r[0][1]);
  CHECK(!strcmp(r[0][0], r[1][0]) && !strcmp(r[0][1], r[1][1]));
  for (int i = 0; i < 4; i++)
    free(r[i / 2][i % 2]);
  vl_tokenizer_free(tok);
  vl_qwen_text_free(m);
}

int main(void) {
  RUN(conversions_every_kernel);
  RUN(attend_matches_attention);
  RUN(f16_cache_is_half_the_bytes);
  RUN(qwen2_f16_decode_close);
  RUN(qwen3_f16_decode_close);
  RUN(greedy_continuations_identical);
  RUN(chat_f16_same_replies);
  return test_summary();
}
