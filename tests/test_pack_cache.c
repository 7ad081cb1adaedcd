/* The packed-weight cache (vl_gemm_const_b inside vl_gemm_pack_cache_begin
 * / _end scopes): products bit for bit those of vl_gemm, at most 64 MB of
 * copies, scopes counted per thread, copies gone when the last scope ends;
 * vl_linear keeps the forward's copies for products of <= 64 rows only. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/half.h"
#include "base/threads.h"
#include "io/rng.h"
#include "tensor/gemm.h"
#include "tensor/ops.h"
#include "test.h"

static vl_rng rng;
static float frand(void) { return (float)(2.0 * vl_rng_uniform(&rng) - 1.0); }

static float *frands(int64_t n) {
  float *p = malloc((size_t)n * sizeof *p);
  for (int64_t i = 0; p && i < n; i++)
    p[i] = frand();
  return p;
}

/* n elements of type t (F32, BF16, F16), random. */
static void *brands(vl_dtype t, int64_t n) {
  if (t == VL_F32) return frands(n);
  uint16_t *p = malloc((size_t)n * sizeof *p);
  for (int64_t i = 0; p && i < n; i++)
    p[i] = t == VL_BF16 ? vl_f32_to_bf16(frand()) : vl_f32_to_f16(frand());
  return p;
}

typedef struct {
  bool ta, tb;
  int64_t M, N, K, pad;
  float alpha, beta;
  vl_dtype bt;
} gcase;

/* C (M x (N + pad)) from C0 = alpha op(A) op(B) + beta C0, cached or not. */
static float *product(const gcase *g, bool const_b, const float *A, const void *B,
                      const float *C0) {
  int64_t lda = (g->ta ? g->M : g->K) + g->pad, ldb = (g->tb ? g->K : g->N) + g->pad;
  int64_t ldc = g->N + g->pad;
  float *C = malloc((size_t)(g->M * ldc) * sizeof *C);
  memcpy(C, C0, (size_t)(g->M * ldc) * sizeof *C);
  (const_b ? vl_gemm_const_b : vl_gemm)(g->ta, g->tb, g->M, g->N, g->K, g->alpha, A, lda, B, g->bt,
                                        ldb, g->beta, C, ldc);
  return C;
}

static bool same(const float *a, const float *b, int64_t n) {
  return !memcmp(a, b, (size_t)n * sizeof *a);
}

/* Our packed kernels are the ones that use the cache (OpenBLAS packs by
 * itself); the best this CPU runs. */
static void packed_kernel(void) {
  if (!vl_gemm_set_kernel(VL_GEMM_AVX512) && !vl_gemm_set_kernel(VL_GEMM_AVX2))
    vl_gemm_set_kernel(VL_GEMM_SCALAR);
}

/* One case: two activations through the same B, first packing it, then
 * from the copy, then the first again: each equal to vl_gemm's product. */
static bool case_matches(const gcase *g) {
  int64_t arows = g->ta ? g->K : g->M, acols = (g->ta ? g->M : g->K) + g->pad;
  int64_t brows = g->tb ? g->N : g->K, bcols = (g->tb ? g->K : g->N) + g->pad;
  int64_t nc = g->M * (g->N + g->pad);
  float *A1 = frands(arows * acols), *A2 = frands(arows * acols), *C0 = frands(nc);
  void *B = brands(g->bt, brows * bcols);
  float *r1 = product(g, false, A1, B, C0), *r2 = product(g, false, A2, B, C0);
  vl_gemm_pack_cache_begin();
  float *c1 = product(g, true, A1, B, C0), *c2 = product(g, true, A2, B, C0);
  float *c3 = product(g, true, A1, B, C0);
  bool kept = vl_gemm_pack_cache_bytes() > 0;
  vl_gemm_pack_cache_end();
  bool ok = same(c1, r1, nc) && same(c2, r2, nc) && same(c3, r1, nc);
  /* a single row goes through the gemv kernel, which packs nothing */
  ok = ok && kept == (g->M > 1 && vl_gemm_get_kernel() != VL_GEMM_OPENBLAS);
  ok = ok && vl_gemm_pack_cache_bytes() == 0;
  if (!ok)
    printf("  %s t%d ta=%d tb=%d %lldx%lldx%lld %s pad %lld: differs (kept %d)\n",
           vl_gemm_kernel_name(vl_gemm_get_kernel()), vl_threads_count(), g->ta, g->tb,
           (long long)g->M, (long long)g->N, (long long)g->K, vl_dtype_name(g->bt),
           (long long)g->pad, kept);
  free(A1);
  free(A2);
  free(C0);
  free(B);
  free(r1);
  free(r2);
  free(c1);
  free(c2);
  free(c3);
  return ok;
}

/* Several KC blocks (K > 256), row tiles (M > 144), column tiles (N > 512),
 * last panels cut short, strided operands, alpha/beta, every B type. */
static const gcase cases[] = {
    {false, true, 5, 37, 300, 0, 1.0f, 0.0f, VL_F32},
    {false, true, 64, 70, 520, 1, 1.0f, 1.0f, VL_BF16},
    {false, false, 150, 33, 40, 2, 0.5f, -0.75f, VL_F16},
    {true, false, 20, 600, 70, 0, 1.0f, 0.0f, VL_F32},
    {true, true, 9, 45, 257, 3, 2.0f, 0.5f, VL_BF16},
    {false, false, 2, 530, 300, 0, 1.0f, 0.0f, VL_F32},
    {false, true, 1, 40, 30, 0, 1.0f, 0.0f, VL_F32},
};

static void cached_products_are_vl_gemm_s(void) {
  for (int k = VL_GEMM_SCALAR; k <= VL_GEMM_OPENBLAS; k++) {
    if (!vl_gemm_set_kernel((vl_gemm_kernel)k)) continue;
    for (int th = 1; th <= 2; th++) {
      vl_threads_set(th);
      for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK(case_matches(&cases[i]));
    }
  }
  vl_threads_set(0);
  vl_gemm_set_kernel(VL_GEMM_AUTO);
}

/* A copy is for one kernel's panel width: the same B through two kernels in
 * one scope gives each kernel's own product. */
static void kernels_keep_their_own_copies(void) {
  const gcase g = {false, true, 7, 50, 60, 0, 1.0f, 0.0f, VL_F32};
  float *A = frands(g.M * g.K), *B = frands(g.N * g.K), *C0 = frands(g.M * g.N);
  float *ref[3] = {NULL, NULL, NULL}, *got[3] = {NULL, NULL, NULL};
  vl_gemm_kernel ks[3] = {VL_GEMM_SCALAR, VL_GEMM_AVX2, VL_GEMM_AVX512};
  for (int i = 0; i < 3; i++)
    if (vl_gemm_set_kernel(ks[i])) ref[i] = product(&g, false, A, B, C0);
  vl_gemm_pack_cache_begin();
  for (int i = 0; i < 3; i++)
    if (ref[i] && vl_gemm_set_kernel(ks[i])) got[i] = product(&g, true, A, B, C0);
  for (int i = 0; i < 3; i++)
    if (ref[i] && vl_gemm_set_kernel(ks[i])) {
      float *again = product(&g, true, A, B, C0);
      CHECK(same(again, ref[i], g.M * g.N));
      free(again);
    }
  vl_gemm_pack_cache_end();
  for (int i = 0; i < 3; i++) {
    if (ref[i]) CHECK(same(got[i], ref[i], g.M * g.N));
    free(ref[i]);
    free(got[i]);
  }
  vl_gemm_set_kernel(VL_GEMM_AUTO);
  free(A);
  free(B);
  free(C0);
}

/* A model's layers: weights of one shape and type at other addresses, each
 * product with its own (the copies are told apart by address and stride). */
static void same_shape_weights_kept_apart(void) {
  packed_kernel();
  const gcase g = {false, true, 5, 64, 96, 0, 1.0f, 0.0f, VL_BF16};
  float *A = frands(g.M * g.K), *C0 = frands(g.M * g.N), *ref[4];
  void *B[4];
  for (int l = 0; l < 4; l++) {
    B[l] = brands(g.bt, g.N * g.K);
    ref[l] = product(&g, false, A, B[l], C0);
  }
  vl_gemm_pack_cache_begin();
  for (int round = 0; round < 2; round++)
    for (int l = 0; l < 4; l++) {
      float *got = product(&g, true, A, B[l], C0);
      CHECK(same(got, ref[l], g.M * g.N));
      free(got);
    }
  vl_gemm_pack_cache_end();
  /* the same memory read with rows further apart is another B */
  const gcase wide = {false, true, 5, 64, 96, 3, 1.0f, 0.0f, VL_BF16};
  void *Bw = brands(g.bt, g.N * (g.K + 3));
  float *Aw = frands(g.M * (g.K + 3)), *Cw = frands(g.M * (g.N + 3));
  float *rn = product(&g, false, A, Bw, C0), *rw = product(&wide, false, Aw, Bw, Cw);
  vl_gemm_pack_cache_begin();
  float *gn = product(&g, true, A, Bw, C0), *gw = product(&wide, true, Aw, Bw, Cw);
  vl_gemm_pack_cache_end();
  CHECK(same(gn, rn, g.M * g.N));
  CHECK(same(gw, rw, g.M * (g.N + 3)));
  free(Bw);
  free(Aw);
  free(Cw);
  free(rn);
  free(rw);
  free(gn);
  free(gw);
  for (int l = 0; l < 4; l++) {
    free(B[l]);
    free(ref[l]);
  }
  free(A);
  free(C0);
  vl_gemm_set_kernel(VL_GEMM_AUTO);
}

/* Packs one B of N x K BF16 weights (tb) into the cache, or not: the bytes
 * the cache grew by; *ok when the product is vl_gemm's. */
static size_t cached_weight(int64_t N, int64_t K, bool *ok) {
  const gcase g = {false, true, 3, N, K, 0, 1.0f, 0.0f, VL_BF16};
  float *A = frands(g.M * K), *C0 = frands(g.M * N);
  void *B = brands(VL_BF16, N * K);
  float *ref = product(&g, false, A, B, C0);
  size_t before = vl_gemm_pack_cache_bytes();
  float *got = product(&g, true, A, B, C0);
  size_t grew = vl_gemm_pack_cache_bytes() - before;
  *ok = same(got, ref, g.M * N);
  free(A);
  free(C0);
  free(B);
  free(ref);
  free(got);
  return grew;
}

static void at_most_64_mb_of_copies(void) {
  packed_kernel();
  const size_t cap = (size_t)64 << 20;
  bool ok;
  vl_gemm_pack_cache_begin();
  size_t a = cached_weight(10000, 1024, &ok); /* ~41 MB packed */
  CHECK(ok);
  CHECK(a >= (size_t)10000 * 1024 * 4 && a <= cap);
  size_t b = cached_weight(7000, 1024, &ok); /* ~29 MB more would pass the cap */
  CHECK(ok);
  CHECK(b == 0);
  size_t c = cached_weight(64, 64, &ok); /* what still fits is kept */
  CHECK(ok);
  CHECK(c >= (size_t)64 * 64 * 4);
  CHECK(vl_gemm_pack_cache_bytes() == a + c);
  CHECK(vl_gemm_pack_cache_bytes() <= cap);
  vl_gemm_pack_cache_end();
  /* weights over the cap on their own: multiplied as before, nothing kept */
  vl_gemm_pack_cache_begin();
  size_t d = cached_weight(16500, 1024, &ok); /* ~68 MB packed */
  CHECK(ok);
  CHECK(d == 0);
  CHECK(vl_gemm_pack_cache_bytes() == 0);
  vl_gemm_pack_cache_end();
  vl_gemm_set_kernel(VL_GEMM_AUTO);
}

/* ---- threads ---- */

typedef struct {
  bool own_scope, end_without_scope;
  bool ok;
  size_t bytes_seen; /* the cache's size after the thread's products */
} thread_job;

/* The thread's products with B changed in place between them: right each
 * time when no scope of its own is open (nothing kept for it). */
static void *thread_products(void *arg) {
  thread_job *j = arg;
  const gcase g = {false, true, 4, 40, 48, 0, 1.0f, 0.0f, VL_F32};
  float *A = frands(g.M * g.K), *B = frands(g.N * g.K), *C0 = frands(g.M * g.N);
  if (j->end_without_scope) vl_gemm_pack_cache_end(); /* not this thread's to end */
  if (j->own_scope) vl_gemm_pack_cache_begin();
  j->ok = true;
  for (int round = 0; round < (j->own_scope ? 1 : 2); round++) {
    if (round) /* new weights at the same address */
      for (int64_t i = 0; i < g.N * g.K; i++)
        B[i] = frand();
    float *ref = product(&g, false, A, B, C0), *got = product(&g, true, A, B, C0);
    j->ok = j->ok && same(got, ref, g.M * g.N);
    free(ref);
    free(got);
  }
  j->bytes_seen = vl_gemm_pack_cache_bytes();
  if (j->own_scope) vl_gemm_pack_cache_end();
  free(A);
  free(B);
  free(C0);
  return NULL;
}

static void run_thread(thread_job *j) {
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, thread_products, j) == 0);
  pthread_join(t, NULL);
}

static void scopes_count_per_thread(void) {
  packed_kernel();
  /* no scope anywhere: the thread's products keep nothing */
  thread_job j0 = {0};
  run_thread(&j0);
  CHECK(j0.ok && j0.bytes_seen == 0);
  /* this thread's scope keeps its own weights ... */
  bool ok;
  vl_gemm_pack_cache_begin();
  size_t mine = cached_weight(100, 80, &ok);
  CHECK(ok && mine > 0);
  /* ... and not those of a thread without one, nor can that thread end it */
  thread_job j1 = {.end_without_scope = true};
  run_thread(&j1);
  CHECK(j1.ok);
  CHECK(j1.bytes_seen == mine);
  CHECK(vl_gemm_pack_cache_bytes() == mine);
  /* a thread with its own scope shares the cache; its end keeps ours */
  thread_job j2 = {.own_scope = true};
  run_thread(&j2);
  CHECK(j2.ok);
  CHECK(j2.bytes_seen > mine);
  CHECK(vl_gemm_pack_cache_bytes() == j2.bytes_seen);
  vl_gemm_pack_cache_end();
  CHECK(vl_gemm_pack_cache_bytes() == 0);
  vl_gemm_set_kernel(VL_GEMM_AUTO);
}

/* The copies live until the last scope ends: weights changed after that
 * (a model freed, another loaded at the same address) are packed anew. */
static void ending_the_scope_drops_the_copies(void) {
  packed_kernel();
  const gcase g = {false, true, 6, 72, 90, 0, 1.0f, 0.0f, VL_F32};
  float *A = frands(g.M * g.K), *B = frands(g.N * g.K), *C0 = frands(g.M * g.N);
  vl_gemm_pack_cache_begin();
  vl_gemm_pack_cache_begin(); /* nested */
  float *r = product(&g, false, A, B, C0), *c = product(&g, true, A, B, C0);
  CHECK(same(c, r, g.M * g.N));
  size_t kept = vl_gemm_pack_cache_bytes();
  CHECK(kept > 0);
  free(c);
  vl_gemm_pack_cache_end();
  CHECK(vl_gemm_pack_cache_bytes() == kept); /* the outer scope is open */
  c = product(&g, true, A, B, C0);
  CHECK(same(c, r, g.M * g.N));
  free(c);
  vl_gemm_pack_cache_end();
  CHECK(vl_gemm_pack_cache_bytes() == 0);
  vl_gemm_pack_cache_end(); /* one end too many: nothing to end */
  for (int64_t i = 0; i < g.N * g.K; i++)
    B[i] = frand();
  free(r);
  r = product(&g, false, A, B, C0);
  vl_gemm_pack_cache_begin();
  c = product(&g, true, A, B, C0);
  CHECK(same(c, r, g.M * g.N));
  CHECK(vl_gemm_pack_cache_bytes() == kept);
  vl_gemm_pack_cache_end();
  CHECK(vl_gemm_pack_cache_bytes() == 0);
  free(c);
  free(r);
  free(A);
  free(B);
  free(C0);
  vl_gemm_set_kernel(VL_GEMM_AUTO);
}

/* ---- vl_linear ---- */

/* (d0, d1), or (d1) when d0 is 0. */
static vl_tensor *randt(vl_ctx *c, vl_dtype t, int64_t d0, int64_t d1) {
  int64_t s[2] = {d0, d1};
  vl_tensor *x = d0 ? vl_new(c, t, 2, s) : vl_new(c, t, 1, s + 1);
  void *v = brands(t, x->numel);
  memcpy(x->data, v, (size_t)x->numel * vl_dtype_size(t));
  free(v);
  return x;
}

/* y = linear(x, w, b) of an M x in x: the output, copied out. */
static float *linear_out(vl_ctx *c, vl_tensor *x, vl_tensor *w, vl_tensor *b) {
  vl_tensor *y = vl_linear(c, x, w, b);
  if (!y) return NULL;
  float *o = malloc((size_t)y->numel * sizeof *o);
  memcpy(o, y->data, (size_t)y->numel * sizeof *o);
  return o;
}

static void linear_keeps_few_rows_frozen_weights(void) {
  packed_kernel();
  vl_ctx *c = vl_ctx_new();
  const int64_t in = 40, out = 48;
  vl_tensor *w = randt(c, VL_BF16, out, in), *b = randt(c, VL_F32, 0, out);
  vl_tensor *x64 = randt(c, VL_F32, 64, in), *x65 = randt(c, VL_F32, 65, in);
  float *r64 = linear_out(c, x64, w, b), *r65 = linear_out(c, x65, w, NULL);
  REQUIRE(r64 && r65);
  vl_gemm_pack_cache_begin();
  /* many rows: nothing kept */
  float *y65 = linear_out(c, x65, w, NULL);
  CHECK(vl_gemm_pack_cache_bytes() == 0);
  /* a trained weight changes between products: nothing kept */
  vl_tensor *wt = randt(c, VL_F32, out, in);
  wt->requires_grad = true;
  free(linear_out(c, x64, wt, NULL));
  CHECK(vl_gemm_pack_cache_bytes() == 0);
  /* a few rows times a frozen weight: packed once, then reused */
  float *y64 = linear_out(c, x64, w, b);
  size_t kept = vl_gemm_pack_cache_bytes();
  CHECK(kept > 0);
  float *y64b = linear_out(c, x64, w, b);
  CHECK(vl_gemm_pack_cache_bytes() == kept);
  vl_gemm_pack_cache_end();
  CHECK(y65 && same(y65, r65, 65 * out));
  CHECK(y64 && same(y64, r64, 64 * out));
  CHECK(y64b && same(y64b, r64, 64 * out));
  free(r64);
  free(r65);
  free(y64);
  free(y64b);
  free(y65);
  vl_ctx_free(c);
  vl_gemm_set_kernel(VL_GEMM_AUTO);
}

/* The backward's dx = dy w of a frozen weight is kept whatever the rows
 * (one backward per explanation target); gradients as without the cache. */
static float *linear_dx(int64_t M, bool scope, size_t *grew) {
  vl_ctx *c = vl_ctx_new();
  vl_rng_seed(&rng, 12345, 0, 0); /* the same x, w and dy every time */
  /* square: the forward's copy of w (transposed) and the backward's have
   * the same sizes and differ only in layout */
  vl_tensor *x = randt(c, VL_F32, M, 48), *w = randt(c, VL_F16, 48, 48);
  vl_tensor *dy = randt(c, VL_F32, M, 48);
  x->requires_grad = true;
  vl_ctx_set_recording(c, true);
  if (scope) vl_gemm_pack_cache_begin();
  size_t before = vl_gemm_pack_cache_bytes();
  vl_tensor *y = vl_linear(c, x, w, NULL);
  float *dx = NULL;
  if (y && !vl_backward(c, y, dy->data) && !vl_backward(c, y, dy->data)) {
    dx = malloc((size_t)x->numel * sizeof *dx);
    memcpy(dx, x->grad, (size_t)x->numel * sizeof *dx);
  }
  *grew = vl_gemm_pack_cache_bytes() - before;
  if (scope) vl_gemm_pack_cache_end();
  vl_ctx_free(c);
  return dx;
}

static void linear_backward_keeps_frozen_weights(void) {
  packed_kernel();
  const int64_t rows[2] = {8, 150};
  for (int i = 0; i < 2; i++) {
    size_t g0, g1;
    float *ref = linear_dx(rows[i], false, &g0), *got = linear_dx(rows[i], true, &g1);
    CHECK(ref && got && same(got, ref, rows[i] * 48));
    CHECK(g0 == 0);
    CHECK(g1 > 0);
    free(ref);
    free(got);
  }
  CHECK(vl_gemm_pack_cache_bytes() == 0);
  vl_gemm_set_kernel(VL_GEMM_AUTO);
}

int main(void) {
  vl_rng_seed(&rng, 1, 0, 0);
  RUN(cached_products_are_vl_gemm_s);
  RUN(kernels_keep_their_own_copies);
  RUN(same_shape_weights_kept_apart);
  RUN(at_most_64_mb_of_copies);
  RUN(scopes_count_per_thread);
  RUN(ending_the_scope_drops_the_copies);
  RUN(linear_keeps_few_rows_frozen_weights);
  RUN(linear_backward_keeps_frozen_weights);
  return test_summary();
}
