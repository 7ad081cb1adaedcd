#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

static uint32_t next_u32(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (uint32_t)(*s >> 33);
}

void gc_fill(vl_tensor *t, unsigned seed, float lo, float hi) {
  uint64_t s = seed * 2654435761ULL + 1;
  float *d = t->data;
  for (int64_t i = 0; i < t->numel; i++)
    d[i] = lo + (hi - lo) * (float)(next_u32(&s) & 0xffffff) / 16777216.0f;
}

static double project(const vl_tensor *out, const float *r) {
  double s = 0;
  const float *d = out->data;
  for (int64_t i = 0; i < out->numel; i++) s += (double)d[i] * r[i];
  return s;
}

static int eval_scalar(gc_forward f, void *arg, vl_tensor **in, const float *r, int64_t n_out,
                       double *s) {
  vl_ctx *c = vl_ctx_new();
  vl_tensor *out = f(c, in, arg);
  int ok = out && out->numel == n_out;
  if (ok) *s = project(out, r);
  vl_ctx_free(c);
  return ok;
}

double gradcheck(const char *name, gc_forward f, void *arg, int n_in, vl_tensor **in, float h,
                 double tol) {
  vl_ctx *c = vl_ctx_new();
  vl_ctx_set_recording(c, true);
  for (int i = 0; i < n_in; i++) in[i]->grad = NULL;
  vl_tensor *out = f(c, in, arg);
  if (!out) {
    printf("  %s: forward failed: %s\n", name, vl_last_error());
    vl_ctx_free(c);
    return INFINITY;
  }
  int64_t n_out = out->numel;
  float *r = malloc((size_t)n_out * sizeof *r);
  uint64_t seed = 12345;
  for (int64_t i = 0; i < n_out; i++) r[i] = (float)(next_u32(&seed) & 0xffff) / 65536.0f - 0.5f;
  if (vl_backward(c, out, r) != VL_OK) {
    printf("  %s: backward failed: %s\n", name, vl_last_error());
    free(r);
    vl_ctx_free(c);
    return INFINITY;
  }
  double worst = 0;
  for (int i = 0; i < n_in; i++) {
    vl_tensor *x = in[i];
    if (!x->requires_grad) continue;
    float *num = calloc((size_t)x->numel, sizeof *num);
    float *xd = x->data;
    int ok = 1;
    for (int64_t j = 0; j < x->numel && ok; j++) {
      float keep = xd[j];
      double sp = 0, sm = 0;
      xd[j] = keep + h;
      ok &= eval_scalar(f, arg, in, r, n_out, &sp);
      xd[j] = keep - h;
      ok &= eval_scalar(f, arg, in, r, n_out, &sm);
      xd[j] = keep;
      num[j] = (float)((sp - sm) / (2.0 * h));
    }
    double maxn = 1e-3, maxd = 0;
    int64_t at = 0;
    for (int64_t j = 0; j < x->numel; j++) {
      double a = x->grad ? x->grad[j] : 0.0;
      double d = fabs(a - num[j]);
      if (!(d <= maxd)) {
        maxd = d;
        at = j;
      }
      if (fabs(num[j]) > maxn) maxn = fabs(num[j]);
    }
    double err = ok ? maxd / maxn : INFINITY;
    if (err > tol || getenv("GRADCHECK_VERBOSE"))
      printf("  %s: input %d: max err %.3g (tol %.3g) at %lld: analytic %.6g numeric %.6g%s\n",
             name, i, err, tol, (long long)at, x->grad ? x->grad[at] : 0.0, num[at],
             x->grad ? "" : " (no gradient reached this input)");
    if (!(err <= worst)) worst = err;
    free(num);
  }
  for (int i = 0; i < n_in; i++) in[i]->grad = NULL;
  free(r);
  vl_ctx_free(c);
  return worst;
}
