/* ViT-B/16 encoder at 224 px (12 layers, d 768, 12 heads, MLP 3072, 197
 * tokens, random F32 weights) built from vl_ ops: forward (inference mode),
 * and forward + backward to the input image (weights without gradients, as
 * for an explanation). bench/vit_torch.py is the same model in PyTorch.
 *
 * Usage: bench_vit [--threads N] [--reps R] [--layers L]
 * Prints best-of-R seconds and the model's matmul FLOPs, so bench/run.sh can
 * divide by the GEMM GFLOP/s measured in the same run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/log.h"
#include "base/threads.h"
#include "tensor/gemm.h"
#include "tensor/ops.h"

/* Process CPU seconds: on a shared machine this leaves out time spent
 * descheduled (all threads summed, so with N threads it is ~N x wall). */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum { D = 768, H = 12, HD = 64, MLP = 3072, P = 16, IMG = 224, T = 197, NP = 196 };

typedef struct {
  vl_tensor *ln1w, *ln1b, *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo, *ln2w, *ln2b, *w1, *b1, *w2, *b2;
} layer;

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static vl_tensor *param(vl_ctx *c, int64_t r, int64_t cols, float scale, float offset) {
  int64_t shape[2] = {r, cols};
  vl_tensor *t = cols ? vl_new(c, VL_F32, 2, shape) : vl_new(c, VL_F32, 1, shape);
  if (!t) return NULL;
  for (int64_t i = 0; i < t->numel; i++) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    vl_f32(t)[i] = offset + scale * ((float)(rng >> 40) / 16777216.0f * 2.0f - 1.0f);
  }
  return t;
}

static vl_tensor *reshape3(vl_ctx *c, vl_tensor *x, int64_t a, int64_t b, int64_t d) {
  int64_t s[3] = {a, b, d};
  return vl_reshape(c, x, 3, s);
}
static vl_tensor *heads(vl_ctx *c, vl_tensor *x) {
  int64_t s[4] = {1, T, H, HD};
  return vl_reshape(c, x, 4, s);
}

static vl_tensor *block(vl_ctx *c, vl_tensor *x, const layer *L) {
  vl_tensor *h = vl_layernorm(c, x, L->ln1w, L->ln1b, 1e-6f);
  vl_tensor *q = heads(c, vl_linear(c, h, L->wq, L->bq));
  vl_tensor *k = heads(c, vl_linear(c, h, L->wk, L->bk));
  vl_tensor *v = heads(c, vl_linear(c, h, L->wv, L->bv));
  vl_tensor *a = vl_attention(c, q, k, v, 1.0f / sqrtf((float)HD), NULL, NULL);
  a = vl_linear(c, reshape3(c, a, 1, T, D), L->wo, L->bo);
  x = vl_add(c, x, a);
  h = vl_layernorm(c, x, L->ln2w, L->ln2b, 1e-6f);
  h = vl_linear(c, vl_gelu(c, vl_linear(c, h, L->w1, L->b1)), L->w2, L->b2);
  return vl_add(c, x, h);
}

static vl_tensor *vit(vl_ctx *c, vl_tensor *img, vl_tensor *wp, vl_tensor *bp, vl_tensor *cls,
                      vl_tensor *pos, const layer *Ls, int nl, vl_tensor *lnw, vl_tensor *lnb) {
  vl_tensor *x = vl_linear(c, vl_patchify(c, img, 1, P, P), wp, bp); /* (1, 196, 768) */
  vl_tensor *parts[2] = {cls, x};
  x = vl_add(c, vl_concat(c, 2, parts, 1), pos);
  for (int l = 0; l < nl; l++)
    x = block(c, x, &Ls[l]);
  return vl_layernorm(c, x, lnw, lnb, 1e-6f);
}

/* A context whose first chunk holds a whole pass (peak of a warm-up run). */
static vl_ctx *sized_ctx(vl_tensor *img, vl_tensor *wp, vl_tensor *bp, vl_tensor *cls,
                         vl_tensor *pos, const layer *Ls, int nl, vl_tensor *lnw, vl_tensor *lnb,
                         bool rec) {
  vl_ctx *c = vl_ctx_new();
  if (!c) return NULL;
  vl_ctx_set_recording(c, rec);
  vl_tensor *y = vit(c, img, wp, bp, cls, pos, Ls, nl, lnw, lnb);
  if (!y || (rec && vl_backward(c, y, NULL) != VL_OK)) return NULL;
  size_t peak = vl_ctx_peak(c);
  vl_ctx_free(c);
  img->grad = NULL;
  c = vl_ctx_new();
  if (!c || !vl_ctx_alloc(c, peak + (64u << 20))) return NULL;
  vl_ctx_reset(c, 0);
  vl_ctx_set_recording(c, rec);
  return c;
}

int main(int argc, char **argv) {
  int threads = 1, reps = 3, nl = 12;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--threads"))
      threads = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--reps"))
      reps = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--layers"))
      nl = atoi(argv[i + 1]);
  }
  if (nl < 1 || nl > 12 || reps < 1) {
    fprintf(stderr, "usage: %s [--threads N] [--reps R] [--layers 1..12]\n", argv[0]);
    return 2;
  }
  vl_threads_set(threads);
  vl_ctx *wc = vl_ctx_new();
  if (!wc) return 1;
  const float ws = 0.02f;
  vl_tensor *wp = param(wc, D, 3 * P * P, ws, 0), *bp = param(wc, D, 0, ws, 0);
  int64_t cs[3] = {1, 1, D}, ps[3] = {1, T, D}, is[4] = {1, 3, IMG, IMG};
  vl_tensor *cls = vl_reshape(wc, param(wc, D, 0, ws, 0), 3, cs);
  vl_tensor *pos = vl_reshape(wc, param(wc, (int64_t)T * D, 0, ws, 0), 3, ps);
  layer Ls[12];
  for (int l = 0; l < nl; l++) {
    layer *L = &Ls[l];
    L->ln1w = param(wc, D, 0, 0.1f, 1);
    L->ln1b = param(wc, D, 0, ws, 0);
    L->wq = param(wc, D, D, ws, 0);
    L->bq = param(wc, D, 0, ws, 0);
    L->wk = param(wc, D, D, ws, 0);
    L->bk = param(wc, D, 0, ws, 0);
    L->wv = param(wc, D, D, ws, 0);
    L->bv = param(wc, D, 0, ws, 0);
    L->wo = param(wc, D, D, ws, 0);
    L->bo = param(wc, D, 0, ws, 0);
    L->ln2w = param(wc, D, 0, 0.1f, 1);
    L->ln2b = param(wc, D, 0, ws, 0);
    L->w1 = param(wc, MLP, D, ws, 0);
    L->b1 = param(wc, MLP, 0, ws, 0);
    L->w2 = param(wc, D, MLP, ws, 0);
    L->b2 = param(wc, D, 0, ws, 0);
  }
  vl_tensor *lnw = param(wc, D, 0, 0.1f, 1), *lnb = param(wc, D, 0, ws, 0);
  vl_tensor *img = vl_reshape(wc, param(wc, 3 * IMG * IMG, 0, 1.0f, 0), 4, is);
  if (!img || !lnb || !Ls[nl - 1].b2) {
    fprintf(stderr, "bench_vit: %s\n", vl_last_error());
    return 1;
  }
  img->requires_grad = true;

  /* Matmul FLOPs. Forward: patch embed, q/k/v/o, fc1, fc2, QK^T and PV.
   * Backward to the input only: each linear's dx (same as its forward), and
   * four attention products (dP, dV, dQ, dK). */
  double lin = 2.0 * T * D * (4.0 * D + 2.0 * MLP), att = 2.0 * 2.0 * H * T * T * HD;
  double patch = 2.0 * NP * D * (3.0 * P * P);
  double f_fwd = patch + nl * (lin + att), f_bwd = patch + nl * (lin + 2.0 * att);

  double best_f = 1e30, best_fb = 1e30, cpu_f = 1e30, cpu_fb = 1e30;
  float chk = 0;
  /* One context per mode, reset between repetitions: the steady state of a
   * server, arena pages already mapped. Each arena is one chunk sized from a
   * warm-up pass (so reset never has to release chunks). */
  vl_ctx *cf = sized_ctx(img, wp, bp, cls, pos, Ls, nl, lnw, lnb, false);
  vl_ctx *cb = sized_ctx(img, wp, bp, cls, pos, Ls, nl, lnw, lnb, true);
  if (!cf || !cb) {
    fprintf(stderr, "bench_vit: warm-up: %s\n", vl_last_error());
    return 1;
  }
  size_t mf = 0, mb = 0;
  for (int r = 0; r < reps; r++) {
    vl_ctx_reset(cf, mf);
    double t0 = vl_now_seconds(), u0 = cpu_now();
    vl_tensor *y = vit(cf, img, wp, bp, cls, pos, Ls, nl, lnw, lnb);
    double t1 = vl_now_seconds(), u1 = cpu_now();
    if (!y) {
      fprintf(stderr, "bench_vit: forward: %s\n", vl_last_error());
      return 1;
    }
    chk = vl_f32(y)[0];
    if (t1 - t0 < best_f) best_f = t1 - t0;
    if (u1 - u0 < cpu_f) cpu_f = u1 - u0;

    vl_ctx_reset(cb, mb);
    img->grad = NULL;
    t0 = vl_now_seconds();
    u0 = cpu_now();
    y = vit(cb, img, wp, bp, cls, pos, Ls, nl, lnw, lnb);
    int st = y ? vl_backward(cb, y, NULL) : -1;
    t1 = vl_now_seconds();
    u1 = cpu_now();
    if (st != VL_OK) {
      fprintf(stderr, "bench_vit: forward+backward: %s\n", vl_last_error());
      return 1;
    }
    if (t1 - t0 < best_fb) best_fb = t1 - t0;
    if (u1 - u0 < cpu_fb) cpu_fb = u1 - u0;
  }
  vl_ctx_free(cf);
  vl_ctx_free(cb);
  printf("vit-b16 c threads=%d layers=%d kernel=%s fwd_s=%.4f fwdbwd_s=%.4f "
         "fwd_cpu_s=%.4f fwdbwd_cpu_s=%.4f fwd_gflop=%.2f fwdbwd_gflop=%.2f y0=%.5f\n",
         threads, nl, vl_gemm_kernel_name(vl_gemm_get_kernel()), best_f, best_fb, cpu_f, cpu_fb,
         f_fwd * 1e-9, (f_fwd + f_bwd) * 1e-9, chk);
  vl_ctx_free(wc);
  return 0;
}
