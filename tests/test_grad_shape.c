/* Shape and data-movement ops: reshape, permute, transpose, concat, slice,
 * gather/scatter rows, embedding; reductions. Forward values against
 * index arithmetic done here by hand, backward by gradcheck. */
#include <string.h>

#include "base/error.h"
#include "base/half.h"
#include "gradcheck.h"
#include "tensor/ops.h"
#include "test.h"

static vl_tensor *mk(vl_ctx *c, int nd, const int64_t *shape, unsigned seed, bool grad) {
  vl_tensor *t = vl_new(c, VL_F32, nd, shape);
  gc_fill(t, seed, -1.5f, 1.5f);
  t->requires_grad = grad;
  return t;
}

/* ---- reshape ----------------------------------------------------------- */

static vl_tensor *reshape_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  (void)arg;
  const int64_t s[] = {4, -1};
  /* Multiply after the reshape so the gradient is not trivially ones. */
  return vl_mul(c, vl_reshape(c, in[0], 2, s), vl_reshape(c, in[0], 2, s));
}

static void reshape_shares_data_and_infers(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {2, 3, 4}, t[] = {-1, 6}, bad[] = {5, -1}, two[] = {-1, -1};
  vl_tensor *x = mk(c, 3, s, 1, true);
  vl_tensor *y = vl_reshape(c, x, 2, t);
  REQUIRE(y);
  CHECK(y->data == x->data && y->shape[0] == 4 && y->shape[1] == 6);
  vl_clear_error();
  CHECK(vl_reshape(c, x, 2, bad) == NULL && vl_last_error_code() == VL_ERR_INVALID);
  CHECK(vl_reshape(c, x, 2, two) == NULL);
  const int64_t s25[] = {25};
  CHECK(vl_reshape(c, x, 1, s25) == NULL && strstr(vl_last_error(), "24 elements"));
  CHECK(gradcheck("reshape", reshape_fwd, NULL, 1, &x, 1e-2f, 1e-3) < 1e-3);
  vl_ctx_free(c);
}

/* ---- permute / transpose ---------------------------------------------- */

typedef struct {
  int perm[VL_MAX_DIMS];
} perm_arg;

static vl_tensor *permute_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  return vl_permute(c, in[0], ((perm_arg *)arg)->perm);
}

static void permute_values_and_backward(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {2, 3, 4, 5};
  vl_tensor *x = mk(c, 4, s, 2, false);
  const perm_arg perms[] = {{{0, 2, 1, 3}}, {{3, 2, 1, 0}}, {{1, 0, 3, 2}},
                            {{0, 1, 3, 2}}, {{0, 1, 2, 3}}, {{2, 0, 3, 1}}};
  for (size_t k = 0; k < sizeof perms / sizeof *perms; k++) {
    const int *p = perms[k].perm;
    vl_tensor *y = vl_permute(c, x, p);
    REQUIRE(y);
    int bad = 0;
    int64_t idx[4];
    for (idx[0] = 0; idx[0] < 2; idx[0]++)
      for (idx[1] = 0; idx[1] < 3; idx[1]++)
        for (idx[2] = 0; idx[2] < 4; idx[2]++)
          for (idx[3] = 0; idx[3] < 5; idx[3]++) {
            int64_t xi = ((idx[0] * 3 + idx[1]) * 4 + idx[2]) * 5 + idx[3];
            int64_t yi = 0;
            for (int d = 0; d < 4; d++)
              yi = yi * y->shape[d] + idx[p[d]];
            bad += vl_f32(y)[yi] != vl_f32(x)[xi];
          }
    CHECK(bad == 0);
  }
  const int64_t ss[] = {2, 3, 1, 2};
  vl_tensor *xs = mk(c, 4, ss, 3, true);
  for (size_t k = 0; k < 3; k++)
    CHECK(gradcheck("permute", permute_fwd, (void *)&perms[k + 1], 1, &xs, 1e-2f, 1e-4) < 1e-4);
  /* Size-1 dims and a non-F32 dtype move too. */
  const int64_t s1[] = {1, 3, 1, 2};
  vl_tensor *ids = vl_new(c, VL_I64, 4, s1);
  for (int i = 0; i < 6; i++)
    ((int64_t *)ids->data)[i] = i;
  const int p2[] = {3, 1, 2, 0};
  vl_tensor *pi = vl_permute(c, ids, p2);
  REQUIRE(pi);
  CHECK(pi->shape[0] == 2 && pi->shape[1] == 3 && ((int64_t *)pi->data)[1] == 2 &&
        ((int64_t *)pi->data)[3] == 1);
  const int badp[] = {0, 0, 1, 2};
  vl_clear_error();
  CHECK(vl_permute(c, x, badp) == NULL && strstr(vl_last_error(), "not a permutation"));
  vl_ctx_free(c);
}

static vl_tensor *transpose_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  (void)arg;
  return vl_transpose(c, in[0], 1, -1);
}

static void transpose_large_and_backward(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {3, 130, 97};
  vl_tensor *x = mk(c, 3, s, 3, false);
  vl_tensor *y = vl_transpose(c, x, 1, 2);
  REQUIRE(y && y->shape[1] == 97 && y->shape[2] == 130);
  int bad = 0;
  for (int64_t b = 0; b < 3; b++)
    for (int64_t i = 0; i < 130; i++)
      for (int64_t j = 0; j < 97; j++)
        bad += vl_f32(y)[(b * 97 + j) * 130 + i] != vl_f32(x)[(b * 130 + i) * 97 + j];
  CHECK(bad == 0);
  const int64_t s2[] = {2, 3, 4};
  vl_tensor *z = mk(c, 3, s2, 4, true);
  CHECK(gradcheck("transpose", transpose_fwd, NULL, 1, &z, 1e-2f, 1e-4) < 1e-4);
  CHECK(vl_transpose(c, z, 0, 3) == NULL);
  vl_ctx_free(c);
}

/* ---- concat / slice ---------------------------------------------------- */

typedef struct {
  int n, axis;
} cat_arg;

static vl_tensor *concat_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  const cat_arg *a = arg;
  vl_tensor *y = vl_concat(c, a->n, in, a->axis);
  return vl_mul(c, y, y);
}

static void concat_values_and_backward(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t sa[] = {2, 1, 3}, sb[] = {2, 4, 3}, sc[] = {2, 2, 3};
  vl_tensor *in[3] = {mk(c, 3, sa, 5, true), mk(c, 3, sb, 6, false), mk(c, 3, sc, 7, true)};
  vl_tensor *y = vl_concat(c, 3, in, 1);
  REQUIRE(y && y->shape[1] == 7);
  CHECK(vl_f32(y)[0] == vl_f32(in[0])[0]);
  CHECK(vl_f32(y)[3] == vl_f32(in[1])[0]);
  CHECK(vl_f32(y)[3 * 5] == vl_f32(in[2])[0]);
  CHECK(vl_f32(y)[21 + 3 * 5 + 4] == vl_f32(in[2])[6 + 4]);
  cat_arg a = {3, 1};
  CHECK(gradcheck("concat axis 1", concat_fwd, &a, 3, in, 1e-2f, 1e-3) < 1e-3);
  /* Six inputs on the last axis: more than a node holds directly. */
  vl_tensor *six[6];
  const int64_t s6[] = {2, 2};
  for (int k = 0; k < 6; k++)
    six[k] = mk(c, 2, s6, 10 + k, true);
  cat_arg a6 = {6, -1};
  CHECK(gradcheck("concat 6", concat_fwd, &a6, 6, six, 1e-2f, 1e-3) < 1e-3);
  vl_clear_error();
  CHECK(vl_concat(c, 2, in, 0) == NULL && strstr(vl_last_error(), "does not match"));
  CHECK(vl_concat(c, 0, in, 0) == NULL);
  vl_ctx_free(c);
}

typedef struct {
  int axis;
  int64_t start, end;
} slice_arg;

static vl_tensor *slice_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  const slice_arg *a = arg;
  vl_tensor *y = vl_slice(c, in[0], a->axis, a->start, a->end);
  return vl_mul(c, y, y);
}

static void slice_values_and_backward(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {3, 5, 2};
  vl_tensor *x = mk(c, 3, s, 8, true);
  vl_tensor *y = vl_slice(c, x, 1, 1, 4);
  REQUIRE(y && y->shape[1] == 3);
  CHECK(vl_f32(y)[0] == vl_f32(x)[2]);
  CHECK(vl_f32(y)[6 + 5] == vl_f32(x)[10 + 2 * 3 + 1]);
  const slice_arg args[] = {{1, 1, 4}, {0, 2, 3}, {-1, 1, 2}};
  for (size_t k = 0; k < sizeof args / sizeof *args; k++)
    CHECK(gradcheck("slice", slice_fwd, (void *)&args[k], 1, &x, 1e-2f, 1e-3) < 1e-3);
  vl_tensor *e = vl_slice(c, x, 1, 2, 2);
  CHECK(e && e->numel == 0);
  vl_clear_error();
  CHECK(vl_slice(c, x, 1, 3, 6) == NULL && strstr(vl_last_error(), "out of bounds"));
  CHECK(vl_slice(c, x, 3, 0, 1) == NULL);
  vl_ctx_free(c);
}

/* ---- gather / scatter / embedding ------------------------------------- */

static vl_tensor *ids_of(vl_ctx *c, vl_dtype dt, int64_t n, const int64_t *v) {
  vl_tensor *t = vl_new(c, dt, 1, &n);
  for (int64_t i = 0; i < n; i++) {
    if (dt == VL_I64)
      ((int64_t *)t->data)[i] = v[i];
    else
      ((int32_t *)t->data)[i] = (int32_t)v[i];
  }
  return t;
}

static vl_tensor *gather_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  vl_tensor *y = vl_gather_rows(c, in[0], arg);
  return vl_mul(c, y, y);
}

static vl_tensor *embed_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  return vl_embedding(c, in[0], arg);
}

static void gather_and_embedding(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {5, 2, 3}, iv[] = {4, 0, 4, 2}; /* row 4 twice: grads add */
  vl_tensor *x = mk(c, 3, s, 20, true);
  vl_tensor *idx = ids_of(c, VL_I32, 4, iv);
  vl_tensor *y = vl_gather_rows(c, x, idx);
  REQUIRE(y && y->ndim == 3 && y->shape[0] == 4 && y->shape[2] == 3);
  CHECK(memcmp(vl_f32(y), vl_f32(x) + 4 * 6, 6 * sizeof(float)) == 0);
  CHECK(memcmp(vl_f32(y) + 18, vl_f32(x) + 2 * 6, 6 * sizeof(float)) == 0);
  CHECK(gradcheck("gather_rows", gather_fwd, idx, 1, &x, 1e-2f, 1e-3) < 1e-3);
  /* Embedding: ids (2, 2) I64 into a (5, 6) table. */
  const int64_t st[] = {5, 6}, si[] = {2, 2};
  vl_tensor *tab = mk(c, 2, st, 21, true);
  vl_tensor *ids = vl_new(c, VL_I64, 2, si);
  const int64_t ev[] = {1, 3, 3, 0};
  memcpy(ids->data, ev, sizeof ev);
  vl_tensor *e = vl_embedding(c, tab, ids);
  REQUIRE(e && e->ndim == 3 && e->shape[0] == 2 && e->shape[1] == 2 && e->shape[2] == 6);
  CHECK(vl_f32(e)[6 + 5] == vl_f32(tab)[3 * 6 + 5]);
  CHECK(gradcheck("embedding", embed_fwd, ids, 1, &tab, 1e-2f, 1e-3) < 1e-3);
  /* BF16 and F16 tables are widened; no gradient is recorded for them. */
  vl_tensor *tb = vl_new(c, VL_BF16, 2, st), *th = vl_new(c, VL_F16, 2, st);
  for (int i = 0; i < 30; i++) {
    ((uint16_t *)tb->data)[i] = vl_f32_to_bf16(vl_f32(tab)[i]);
    ((uint16_t *)th->data)[i] = vl_f32_to_f16(vl_f32(tab)[i]);
  }
  tb->requires_grad = true;
  vl_ctx_set_recording(c, true);
  vl_tensor *eb = vl_embedding(c, tb, ids), *eh = vl_embedding(c, th, ids);
  REQUIRE(eb && eh);
  CHECK(eb->node == NULL);
  CHECK(test_max_rel_err(vl_f32(eb), vl_f32(e), 24) < 1e-2);
  CHECK(test_max_rel_err(vl_f32(eh), vl_f32(e), 24) < 1e-3);
  CHECK(vl_f32(eb)[7] == vl_bf16_to_f32(((uint16_t *)tb->data)[3 * 6 + 1]));
  /* Errors: id out of range, wrong id dtype, wrong table rank. */
  ((int64_t *)ids->data)[2] = 5;
  vl_clear_error();
  CHECK(vl_embedding(c, tab, ids) == NULL);
  CHECK(strstr(vl_last_error(), "vl_embedding: ids[2] = 5 is outside [0, 5)"));
  ((int64_t *)ids->data)[2] = -1;
  CHECK(vl_gather_rows(c, tab, ids) == NULL && vl_last_error_code() == VL_ERR_INVALID);
  CHECK(vl_embedding(c, tab, tab) == NULL && vl_last_error_code() == VL_ERR_UNSUPPORTED);
  CHECK(vl_embedding(c, x, idx) == NULL && strstr(vl_last_error(), "(V, D)"));
  vl_ctx_free(c);
}

static vl_tensor *scatter_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  vl_tensor *y = vl_scatter_rows(c, in[0], in[1], arg);
  return vl_mul(c, y, y);
}

static void scatter_rows_values_and_backward(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t sb[] = {6, 4}, ss[] = {2, 4}, iv[] = {4, 1};
  vl_tensor *in[2] = {mk(c, 2, sb, 30, true), mk(c, 2, ss, 31, true)};
  vl_tensor *idx = ids_of(c, VL_I64, 2, iv);
  vl_tensor *y = vl_scatter_rows(c, in[0], in[1], idx);
  REQUIRE(y && vl_same_shape(y, in[0]));
  CHECK(memcmp(vl_f32(y) + 16, vl_f32(in[1]), 4 * sizeof(float)) == 0);
  CHECK(memcmp(vl_f32(y) + 4, vl_f32(in[1]) + 4, 4 * sizeof(float)) == 0);
  CHECK(memcmp(vl_f32(y), vl_f32(in[0]), 4 * sizeof(float)) == 0);
  CHECK(memcmp(vl_f32(y) + 20, vl_f32(in[0]) + 20, 4 * sizeof(float)) == 0);
  CHECK(gradcheck("scatter_rows", scatter_fwd, idx, 2, in, 1e-2f, 1e-3) < 1e-3);
  /* Errors: duplicate target row, src of the wrong size. */
  const int64_t dup[] = {3, 3};
  vl_clear_error();
  CHECK(vl_scatter_rows(c, in[0], in[1], ids_of(c, VL_I32, 2, dup)) == NULL);
  CHECK(strstr(vl_last_error(), "row 3 is targeted twice"));
  const int64_t s3[] = {3, 4};
  CHECK(vl_scatter_rows(c, in[0], mk(c, 2, s3, 1, false), idx) == NULL);
  CHECK(strstr(vl_last_error(), "does not hold 2 rows of 4"));
  vl_ctx_free(c);
}

/* ---- reductions -------------------------------------------------------- */

typedef struct {
  int axis;
  bool keep, mean;
} red_arg;

static vl_tensor *reduce_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  const red_arg *a = arg;
  vl_tensor *y = a->mean ? vl_mean(c, in[0], a->axis, a->keep) : vl_sum(c, in[0], a->axis, a->keep);
  return vl_mul(c, y, y);
}

static vl_tensor *reduce_all_fwd(vl_ctx *c, vl_tensor **in, void *arg) {
  vl_tensor *y = arg ? vl_mean_all(c, in[0]) : vl_sum_all(c, in[0]);
  return vl_mul(c, y, y);
}

static void reductions(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {2, 3, 4};
  vl_tensor *x = mk(c, 3, s, 40, false);
  const float *xd = vl_f32(x);
  vl_tensor *s1 = vl_sum(c, x, 1, false), *m2 = vl_mean(c, x, -1, true);
  vl_tensor *sa = vl_sum_all(c, x), *ma = vl_mean_all(c, x);
  REQUIRE(s1 && m2 && sa && ma);
  CHECK(s1->ndim == 2 && s1->shape[0] == 2 && s1->shape[1] == 4);
  CHECK(m2->ndim == 3 && m2->shape[2] == 1 && m2->shape[1] == 3);
  double tot = 0;
  for (int i = 0; i < 24; i++)
    tot += xd[i];
  CHECK_NEAR(vl_f32(sa)[0], tot, 1e-5);
  CHECK_NEAR(vl_f32(ma)[0], tot / 24, 1e-6);
  CHECK_NEAR(vl_f32(s1)[1 * 4 + 2], xd[12 + 2] + xd[12 + 4 + 2] + xd[12 + 8 + 2], 1e-6);
  CHECK_NEAR(vl_f32(m2)[4], (xd[16] + xd[17] + xd[18] + xd[19]) / 4, 1e-6);
  const red_arg cases[] = {
      {0, false, false}, {1, true, false}, {2, false, true}, {-1, true, true}, {1, false, true}};
  const int64_t sg[] = {2, 3, 2};
  vl_tensor *xg = mk(c, 3, sg, 42, true);
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
    CHECK(gradcheck("reduce", reduce_fwd, (void *)&cases[k], 1, &xg, 1e-2f, 1e-3) < 1e-3);
  CHECK(gradcheck("sum_all", reduce_all_fwd, NULL, 1, &xg, 1e-2f, 1e-3) < 1e-3);
  CHECK(gradcheck("mean_all", reduce_all_fwd, (void *)1, 1, &xg, 1e-2f, 1e-3) < 1e-3);
  /* Size-1 axis: sum is the identity. */
  const int64_t s31[] = {3, 1};
  vl_tensor *z = mk(c, 2, s31, 41, false), *zs = vl_sum(c, z, 1, false);
  REQUIRE(zs && zs->ndim == 1 && zs->shape[0] == 3);
  CHECK(memcmp(vl_f32(zs), vl_f32(z), 3 * sizeof(float)) == 0);
  vl_clear_error();
  CHECK(vl_sum(c, x, 3, false) == NULL && strstr(vl_last_error(), "axis out of range"));
  const int64_t s0[] = {2, 0};
  CHECK(vl_mean(c, vl_new(c, VL_F32, 2, s0), 1, false) == NULL);
  vl_ctx_free(c);
}

/* Outputs are allocated without zero-fill: poison the arena with NaN, drop
 * it, and check every op still writes every output element. */
static void outputs_fully_written_over_stale_arena(void) {
  vl_ctx *c = vl_ctx_new();
  const int64_t s[] = {3, 4, 5}, sw[] = {5}, sr[] = {4, 1}, si[] = {3};
  vl_tensor *x = mk(c, 3, s, 50, false), *w = mk(c, 1, sw, 51, false);
  vl_tensor *r = mk(c, 2, sr, 52, false), *idx = vl_new(c, VL_I64, 1, si);
  ((int64_t *)idx->data)[0] = 2;
  ((int64_t *)idx->data)[2] = 1;
  size_t m = vl_ctx_mark(c);
  vl_tensor *junk = vl_new_f32(c, 1, (int64_t)8000); /* inside the first arena chunk */
  REQUIRE(junk);
  for (int64_t i = 0; i < junk->numel; i++)
    vl_f32(junk)[i] = NAN;
  vl_ctx_reset(c, m);
  /* The poison is really there for the next allocations. */
  vl_tensor *probe = vl_new_uninit(c, VL_F32, 1, (const int64_t[]){16});
  REQUIRE(probe);
  CHECK(isnan(vl_f32(probe)[15]));
  const int p[] = {2, 0, 1};
  vl_tensor *cat_in[2] = {x, x};
  vl_tensor *x12 = vl_reshape(c, x, 2, (const int64_t[]){12, 5});
  vl_tensor *outs[] = {vl_add(c, x, r),
                       vl_mul(c, x, w),
                       vl_scale(c, x, 2),
                       vl_gelu(c, x),
                       vl_swiglu(c, x, x),
                       vl_layernorm(c, x, w, w, 1e-5f),
                       vl_rmsnorm(c, x, w, 1e-6f),
                       vl_softmax(c, x),
                       vl_log_softmax(c, x),
                       vl_permute(c, x, p),
                       vl_transpose(c, x, 0, 1),
                       vl_concat(c, 2, cat_in, 1),
                       vl_slice(c, x, 2, 1, 4),
                       vl_gather_rows(c, x, idx),
                       vl_scatter_rows(c, x12, vl_gather_rows(c, x12, idx), idx),
                       vl_sum(c, x, 1, false),
                       vl_mean(c, x, 0, true),
                       vl_sum_all(c, x)};
  for (size_t k = 0; k < sizeof outs / sizeof *outs; k++) {
    if (!outs[k]) {
      printf("  op %zu failed: %s\n", k, vl_last_error());
      CHECK(outs[k] != NULL);
      continue;
    }
    int bad = 0;
    for (int64_t i = 0; i < outs[k]->numel; i++)
      bad += !isfinite(vl_f32(outs[k])[i]);
    if (bad) printf("  op %zu: %d non-finite outputs\n", k, bad);
    CHECK(bad == 0);
  }
  vl_ctx_free(c);
}

int main(void) {
  RUN(reshape_shares_data_and_infers);
  RUN(permute_values_and_backward);
  RUN(transpose_large_and_backward);
  RUN(concat_values_and_backward);
  RUN(slice_values_and_backward);
  RUN(gather_and_embedding);
  RUN(scatter_rows_values_and_backward);
  RUN(reductions);
  RUN(outputs_fully_written_over_stale_arena);
  return test_summary();
}
