/* The arena, tensor headers and the tape driver. */
#include <string.h>

#include "base/error.h"
#include "base/half.h"
#include "base/threads.h"
#include "gradcheck.h"
#include "tensor/tensor.h"
#include "test.h"

static void arena_marks_and_resets(void) {
  vl_ctx *c = vl_ctx_new();
  REQUIRE(c);
  vl_tensor *a = vl_new_f32(c, 2, (int64_t)3, (int64_t)4);
  REQUIRE(a);
  CHECK(a->numel == 12 && a->ndim == 2 && a->shape[1] == 4);
  CHECK(((uintptr_t)a->data & 63) == 0);
  size_t m = vl_ctx_mark(c);
  for (int i = 0; i < 100; i++)
    CHECK(vl_new_f32(c, 1, (int64_t)100000) != NULL);
  CHECK(vl_ctx_used(c) > m + 100 * 400000);
  vl_ctx_reset(c, m);
  CHECK(vl_ctx_used(c) == m);
  CHECK(vl_ctx_peak(c) > m + 100 * 400000);
  vl_tensor *b = vl_new_f32(c, 1, (int64_t)5);
  CHECK(b && vl_f32(b)[4] == 0.0f);
  vl_ctx_free(c);
}

static void bad_shapes_are_errors(void) {
  vl_ctx *c = vl_ctx_new();
  int64_t neg[2] = {3, -1};
  CHECK(vl_new(c, VL_F32, 2, neg) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_INVALID);
  int64_t huge[3] = {INT64_C(1) << 30, INT64_C(1) << 30, INT64_C(1) << 30};
  CHECK(vl_new(c, VL_F32, 3, huge) == NULL);
  CHECK(vl_new(c, VL_F32, VL_MAX_DIMS + 1, neg) == NULL);
  vl_ctx_free(c);
}

static void half_conversions_round_trip(void) {
  const float vals[] = {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.1f};
  for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
    float h = vl_f16_to_f32(vl_f32_to_f16(vals[i]));
    CHECK_NEAR(h, vals[i], fabs(vals[i]) * 1e-3 + 1e-12);
    float b = vl_bf16_to_f32(vl_f32_to_bf16(vals[i]));
    CHECK_NEAR(b, vals[i], fabs(vals[i]) * 1e-2 + 1e-30);
  }
  CHECK(vl_f32_to_bf16(1.0f) == 0x3f80);
  CHECK(vl_f32_to_f16(1.0f) == 0x3c00);
  CHECK(vl_f32_to_f16(1e6f) == 0x7c00); /* overflow -> inf */
}

/* A hand-made op: y = 3x, to exercise vl_record / vl_backward alone. */
static void triple_backward(vl_ctx *c, vl_node *n) {
  float *gx = vl_grad(c, n->in[0]);
  for (int64_t i = 0; i < n->out->numel; i++)
    gx[i] += 3.0f * n->out->grad[i];
}

static vl_tensor *triple(vl_ctx *c, vl_tensor *x) {
  vl_tensor *y = vl_new(c, VL_F32, x->ndim, x->shape);
  for (int64_t i = 0; i < x->numel; i++)
    vl_f32(y)[i] = 3.0f * vl_f32(x)[i];
  vl_record(c, y, "triple", triple_backward, 1, &x);
  return y;
}

static void tape_accumulates_and_zeroes(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *x = vl_new_f32(c, 1, (int64_t)4);
  x->requires_grad = true;
  /* Not recording: no node, no grad path. */
  vl_tensor *y0 = triple(c, x);
  CHECK(y0->node == NULL && !y0->requires_grad);
  CHECK(vl_backward(c, y0, NULL) != VL_OK);
  vl_ctx_set_recording(c, true);
  vl_tensor *y = triple(c, triple(c, x));
  REQUIRE(y->node != NULL);
  CHECK(vl_backward(c, y, NULL) == VL_OK);
  for (int i = 0; i < 4; i++)
    CHECK_NEAR(x->grad[i], 9.0, 0);
  CHECK(vl_backward(c, y, NULL) == VL_OK); /* accumulates */
  CHECK_NEAR(x->grad[0], 18.0, 0);
  vl_zero_grads(c);
  CHECK_NEAR(x->grad[0], 0.0, 0);
  /* A reset past recorded nodes removes them from the tape. */
  size_t m = vl_ctx_mark(c);
  vl_tensor *z = triple(c, x);
  vl_ctx_reset(c, m);
  vl_tensor *w = triple(c, x);
  CHECK(vl_backward(c, w, NULL) == VL_OK);
  CHECK_NEAR(x->grad[0], 3.0, 0);
  (void)z;
  vl_ctx_free(c);
}

typedef struct {
  int64_t *hits;
} count_arg;

static void count_range(void *arg, int64_t b, int64_t e, int worker) {
  count_arg *a = arg;
  (void)worker;
  for (int64_t i = b; i < e; i++)
    a->hits[i]++;
}

typedef struct {
  int64_t *hits;
  int busy[8];    /* a worker id is never in two chunks at once (per-thread scratch) */
  int64_t misuse; /* atomic */
} stress_arg;

static void stress_range(void *arg, int64_t b, int64_t e, int worker) {
  stress_arg *a = arg;
  if (worker < 0 || worker >= 8 || __atomic_exchange_n(&a->busy[worker], 1, __ATOMIC_ACQ_REL)) {
    __atomic_add_fetch(&a->misuse, 1, __ATOMIC_RELAXED);
    return;
  }
  for (int64_t i = b; i < e; i++)
    __atomic_add_fetch(&a->hits[i], 1, __ATOMIC_RELAXED);
  __atomic_store_n(&a->busy[worker], 0, __ATOMIC_RELEASE);
}

/* Thousands of tiny jobs back to back on more threads than cores: workers wake late
 * and must neither run a chunk twice, nor miss one, nor run one of a job they did not
 * read (the caller does not wait for them to check in). */
static void tiny_jobs(double spin_us) {
  vl_threads_set_spin_us(spin_us);
  vl_threads_set(6);
  enum { N = 97 };
  static int64_t hits[N];
  stress_arg a = {.hits = hits};
  int ok = 1;
  for (int rep = 0; rep < 5000 && ok; rep++) {
    const int64_t n = 1 + rep % N;
    memset(hits, 0, sizeof hits);
    vl_parallel_for(n, 1, stress_range, &a);
    for (int64_t i = 0; i < N; i++)
      ok &= hits[i] == (i < n);
  }
  CHECK(ok);
  CHECK(a.misuse == 0);
  vl_threads_set(0);
  vl_threads_set_spin_us(-1);
}

/* Both ways a worker waits for the next job: sleeping at once, and spinning
 * first (the default), with a budget long enough to catch most jobs. */
static void parallel_for_tiny_jobs_under_oversubscription(void) {
  tiny_jobs(0);
  tiny_jobs(100);
  tiny_jobs(5000);
}

static void parallel_for_covers_range_once(void) {
  vl_threads_set(4);
  enum { N = 100003 };
  static int64_t hits[N];
  count_arg a = {hits};
  for (int rep = 0; rep < 20; rep++)
    vl_parallel_for(N, 7, count_range, &a);
  int ok = 1;
  for (int i = 0; i < N; i++)
    ok &= hits[i] == 20;
  CHECK(ok);
  vl_threads_set(0);
}

/* Inner loop of flat_range: records whether any nested chunk ran off the
 * calling thread (worker != 0). */
static void note_worker(void *arg, int64_t b, int64_t e, int worker) {
  (void)b, (void)e;
  if (worker != 0) __atomic_store_n((int *)arg, 1, __ATOMIC_RELAXED);
  volatile double s = 0; /* ~tens of microseconds: time for workers to wake */
  for (int i = 0; i < 20000; i++)
    s += i;
}

static void flat_range(void *arg, int64_t b, int64_t e, int worker) {
  (void)b, (void)e, (void)worker;
  vl_parallel_for(1000, 1, note_worker, arg);
}

/* vl_parallel_for_flat run inline (one chunk): the loops nested in it stay on
 * the calling thread; plain vl_parallel_for run inline lets them use the pool. */
static void parallel_for_flat_keeps_nested_serial(void) {
  vl_threads_set(4);
  int off_thread = 0;
  vl_parallel_for_flat(3, 10, flat_range, &off_thread);
  CHECK(off_thread == 0);
  for (int rep = 0; rep < 200 && !off_thread; rep++) /* the pool may be slow to wake */
    vl_parallel_for(3, 10, flat_range, &off_thread);
  CHECK(off_thread == 1);
  enum { N = 1000 };
  static int64_t hits[N];
  count_arg a = {hits};
  vl_parallel_for_flat(N, 7, count_range, &a); /* and over several chunks it covers the range */
  int ok = 1;
  for (int i = 0; i < N; i++)
    ok &= hits[i] == 1;
  CHECK(ok);
  vl_threads_set(0);
}

static vl_tensor *triple_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  (void)arg;
  return triple(c, triple(c, in[0]));
}

/* The finite-difference checker itself must catch a wrong backward. */
static void wrong_backward(vl_ctx *c, vl_node *n) {
  float *gx = vl_grad(c, n->in[0]);
  for (int64_t i = 0; i < n->out->numel; i++)
    gx[i] += 2.0f * n->out->grad[i];
}

static vl_tensor *wrong_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  (void)arg;
  vl_tensor *x = in[0], *y = vl_new(c, VL_F32, x->ndim, x->shape);
  for (int64_t i = 0; i < x->numel; i++)
    vl_f32(y)[i] = 3.0f * vl_f32(x)[i];
  vl_record(c, y, "wrong", wrong_backward, 1, &x);
  return y;
}

static void gradcheck_accepts_right_and_rejects_wrong(void) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *x = vl_new_f32(c, 2, (int64_t)3, (int64_t)5);
  gc_fill(x, 1, -1, 1);
  x->requires_grad = true;
  CHECK(gradcheck("triple", triple_fwd, NULL, 1, &x, 1e-2f, 1e-3) < 1e-3);
  CHECK(gradcheck("wrong (expected to fail)", wrong_fwd, NULL, 1, &x, 1e-2f, 1e9) > 0.3);
  vl_ctx_free(c);
}

int main(void) {
  RUN(gradcheck_accepts_right_and_rejects_wrong);
  RUN(arena_marks_and_resets);
  RUN(bad_shapes_are_errors);
  RUN(half_conversions_round_trip);
  RUN(tape_accumulates_and_zeroes);
  RUN(parallel_for_covers_range_once);
  RUN(parallel_for_tiny_jobs_under_oversubscription);
  RUN(parallel_for_flat_keeps_nested_serial);
  return test_summary();
}
