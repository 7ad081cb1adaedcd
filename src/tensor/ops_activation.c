/* Pointwise activations. Forward and backward are plain loops over the flat
 * data (split across threads for large tensors); backward recomputes what it
 * needs from the saved input instead of keeping extra buffers. */
#include <math.h>
#include <stdbool.h>

#include "base/error.h"
#include "base/threads.h"
#include "tensor/ops.h"
#include "tensor/vmath.h"

enum { PAR_MIN = 32768 };

typedef enum { A_RELU, A_GELU, A_GELU_TANH, A_QUICK_GELU, A_SILU, A_SIGMOID, A_TANH } act;

static const char *const act_names[] = {"vl_relu", "vl_gelu",    "vl_gelu_tanh", "vl_quick_gelu",
                                        "vl_silu", "vl_sigmoid", "vl_tanh"};

#define SQRT1_2 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f
#define SQRT_2_PI 0.79788456080286536f
#define GELU_C 0.044715f

static inline float sigm(float x) { return 1.0f / (1.0f + vl_expf(-x)); }

/* erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), the formula
 * PyTorch's vectorised CPU kernels use; several times faster than erff. */
static inline float erf_as(float x) {
  float a = fabsf(x), t = 1.0f / (1.0f + 0.3275911f * a);
  float p = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t +
             0.254829592f) *
            t;
  float r = 1.0f - p * vl_expf(-a * a);
  return copysignf(r, x);
}

typedef struct {
  act kind;
  const float *x, *g;
  float *y; /* forward: output; backward: d input (accumulated) */
} act_arg;

VL_VEC_CLONES static void fwd_range(void *arg, int64_t b, int64_t e, int worker) {
  (void)worker;
  const act_arg *k = arg;
  const float *x = k->x;
  float *y = k->y;
  switch (k->kind) {
  case A_RELU:
    for (int64_t i = b; i < e; i++)
      y[i] = x[i] > 0 ? x[i] : 0.0f;
    break;
  case A_GELU:
    for (int64_t i = b; i < e; i++)
      y[i] = 0.5f * x[i] * (1.0f + erf_as(x[i] * SQRT1_2));
    break;
  case A_GELU_TANH:
    for (int64_t i = b; i < e; i++) {
      float v = x[i];
      y[i] = 0.5f * v * (1.0f + tanhf(SQRT_2_PI * (v + GELU_C * v * v * v)));
    }
    break;
  case A_QUICK_GELU:
    for (int64_t i = b; i < e; i++)
      y[i] = x[i] * sigm(1.702f * x[i]);
    break;
  case A_SILU:
    for (int64_t i = b; i < e; i++)
      y[i] = x[i] * sigm(x[i]);
    break;
  case A_SIGMOID:
    for (int64_t i = b; i < e; i++)
      y[i] = sigm(x[i]);
    break;
  case A_TANH:
    for (int64_t i = b; i < e; i++)
      y[i] = tanhf(x[i]);
    break;
  }
}

/* f'(x) of the kinds whose backward is d += g * f'(x): one expression each, used by
 * the fused backward and by deriv_range alike, so both give the same floats. */
static inline float gelu_deriv(float v) {
  float cdf = 0.5f * (1.0f + erf_as(v * SQRT1_2));
  float pdf = INV_SQRT_2PI * vl_expf(-0.5f * v * v);
  return cdf + v * pdf;
}
static inline float gelu_tanh_deriv(float v) {
  float t = tanhf(SQRT_2_PI * (v + GELU_C * v * v * v));
  float du = SQRT_2_PI * (1.0f + 3.0f * GELU_C * v * v);
  return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du;
}
static inline float quick_gelu_deriv(float v) {
  float s = sigm(1.702f * v);
  return s + 1.702f * v * s * (1.0f - s);
}
static inline float tanh_deriv(float v) {
  float t = tanhf(v);
  return 1.0f - t * t;
}

VL_VEC_CLONES static void bwd_range(void *arg, int64_t b, int64_t e, int worker) {
  (void)worker;
  const act_arg *k = arg;
  const float *x = k->x, *g = k->g;
  float *d = k->y;
  switch (k->kind) {
  case A_RELU:
    for (int64_t i = b; i < e; i++)
      d[i] += x[i] > 0 ? g[i] : 0.0f;
    break;
  case A_GELU:
    for (int64_t i = b; i < e; i++)
      d[i] += g[i] * gelu_deriv(x[i]);
    break;
  case A_GELU_TANH:
    for (int64_t i = b; i < e; i++)
      d[i] += g[i] * gelu_tanh_deriv(x[i]);
    break;
  case A_QUICK_GELU:
    for (int64_t i = b; i < e; i++)
      d[i] += g[i] * quick_gelu_deriv(x[i]);
    break;
  case A_SILU:
    for (int64_t i = b; i < e; i++) {
      float s = sigm(x[i]);
      d[i] += g[i] * s * (1.0f + x[i] * (1.0f - s));
    }
    break;
  case A_SIGMOID:
    for (int64_t i = b; i < e; i++) {
      float s = sigm(x[i]);
      d[i] += g[i] * s * (1.0f - s);
    }
    break;
  case A_TANH:
    for (int64_t i = b; i < e; i++)
      d[i] += g[i] * tanh_deriv(x[i]);
    break;
  }
}

static void run(act_arg *k, int64_t n, vl_range_fn fn) {
  if (n > PAR_MIN)
    vl_parallel_for(n, PAR_MIN / 2, fn, k);
  else
    fn(k, 0, n, 0);
}

/* The derivative f'(x) of the kinds whose backward is d += g * f'(x), into
 * k->y (the helpers bwd_range multiplies by). */
VL_VEC_CLONES static void deriv_range(void *arg, int64_t b, int64_t e, int worker) {
  (void)worker;
  const act_arg *k = arg;
  const float *x = k->x;
  float *d = k->y;
  switch (k->kind) {
  case A_GELU:
    for (int64_t i = b; i < e; i++)
      d[i] = gelu_deriv(x[i]);
    break;
  case A_GELU_TANH:
    for (int64_t i = b; i < e; i++)
      d[i] = gelu_tanh_deriv(x[i]);
    break;
  case A_QUICK_GELU:
    for (int64_t i = b; i < e; i++)
      d[i] = quick_gelu_deriv(x[i]);
    break;
  case A_TANH:
    for (int64_t i = b; i < e; i++)
      d[i] = tanh_deriv(x[i]);
    break;
  default: break;
  }
}

/* d += g * f'(x) with f'(x) already in k->x. */
static void mul_range(void *arg, int64_t b, int64_t e, int worker) {
  (void)worker;
  const act_arg *k = arg;
  for (int64_t i = b; i < e; i++)
    k->y[i] += k->g[i] * k->x[i];
}

/* An explanation runs one backward per target over the same tape: from the
 * second backward of a node on, f'(x) (a function of the saved input alone)
 * is kept in the arena beside the node (n->saved) instead of being
 * recomputed (erf, exp) every time; a training step's single backward keeps
 * the fused loop and no extra buffer. n->i[1] counts the backwards. */
static void act_backward(vl_ctx *c, vl_node *n) {
  float *gx = vl_grad(c, n->in[0]);
  if (!gx) return;
  const act kind = (act)n->i[0];
  const int64_t N = n->out->numel;
  act_arg k = {kind, vl_f32(n->in[0]), n->out->grad, gx};
  const bool keep = kind == A_GELU || kind == A_GELU_TANH || kind == A_QUICK_GELU || kind == A_TANH;
  if (keep && !n->saved && n->i[1]++ >= 1 &&
      (n->saved = vl_ctx_alloc_uninit(c, (size_t)N * sizeof(float)))) {
    act_arg dk = {kind, vl_f32(n->in[0]), NULL, n->saved};
    run(&dk, N, deriv_range);
  }
  if (n->saved) {
    k.x = n->saved;
    run(&k, N, mul_range);
  } else { /* first backward (or no memory for the buffer) */
    run(&k, N, bwd_range);
  }
}

static vl_tensor *activation(vl_ctx *c, vl_tensor *x, act kind) {
  if (!x) return NULL;
  if (x->dtype != VL_F32) {
    vl_error(VL_ERR_UNSUPPORTED, "%s: input must be F32 (got %s)", act_names[kind],
             vl_dtype_name(x->dtype));
    return NULL;
  }
  vl_tensor *y = vl_new_uninit(c, VL_F32, x->ndim, x->shape);
  if (!y) return NULL;
  act_arg k = {kind, vl_f32(x), NULL, vl_f32(y)};
  run(&k, x->numel, fwd_range);
  vl_node *n = vl_record(c, y, act_names[kind] + 3, act_backward, 1, &x);
  if (n) n->i[0] = kind;
  return y;
}

vl_tensor *vl_relu(vl_ctx *c, vl_tensor *x) { return activation(c, x, A_RELU); }
vl_tensor *vl_gelu(vl_ctx *c, vl_tensor *x) { return activation(c, x, A_GELU); }
vl_tensor *vl_gelu_tanh(vl_ctx *c, vl_tensor *x) { return activation(c, x, A_GELU_TANH); }
vl_tensor *vl_quick_gelu(vl_ctx *c, vl_tensor *x) { return activation(c, x, A_QUICK_GELU); }
vl_tensor *vl_silu(vl_ctx *c, vl_tensor *x) { return activation(c, x, A_SILU); }
vl_tensor *vl_sigmoid(vl_ctx *c, vl_tensor *x) { return activation(c, x, A_SIGMOID); }
vl_tensor *vl_tanh(vl_ctx *c, vl_tensor *x) { return activation(c, x, A_TANH); }

/* ---- swiglu: silu(gate) * up ------------------------------------------- */

typedef struct {
  const float *gate, *up, *g;
  float *y, *dgate, *dup;
} swiglu_arg;

static void swiglu_fwd(void *arg, int64_t b, int64_t e, int worker) {
  (void)worker;
  const swiglu_arg *k = arg;
  for (int64_t i = b; i < e; i++) {
    float v = k->gate[i];
    k->y[i] = v * sigm(v) * k->up[i];
  }
}

static void swiglu_bwd(void *arg, int64_t b, int64_t e, int worker) {
  (void)worker;
  const swiglu_arg *k = arg;
  for (int64_t i = b; i < e; i++) {
    float v = k->gate[i], s = sigm(v), g = k->g[i];
    if (k->dgate) k->dgate[i] += g * k->up[i] * s * (1.0f + v * (1.0f - s));
    if (k->dup) k->dup[i] += g * v * s;
  }
}

static void swiglu_backward(vl_ctx *c, vl_node *n) {
  swiglu_arg k = {vl_f32(n->in[0]), vl_f32(n->in[1]), n->out->grad, NULL, NULL, NULL};
  if (n->in[0]->requires_grad && !(k.dgate = vl_grad(c, n->in[0]))) return;
  if (n->in[1]->requires_grad && !(k.dup = vl_grad(c, n->in[1]))) return;
  int64_t N = n->out->numel;
  if (N > PAR_MIN)
    vl_parallel_for(N, PAR_MIN / 2, swiglu_bwd, &k);
  else
    swiglu_bwd(&k, 0, N, 0);
}

vl_tensor *vl_swiglu(vl_ctx *c, vl_tensor *gate, vl_tensor *up) {
  if (!gate || !up) return NULL;
  if (gate->dtype != VL_F32 || up->dtype != VL_F32) {
    vl_error(VL_ERR_UNSUPPORTED, "vl_swiglu: inputs must be F32 (got %s and %s)",
             vl_dtype_name(gate->dtype), vl_dtype_name(up->dtype));
    return NULL;
  }
  if (!vl_same_shape(gate, up)) {
    char s1[96], s2[96];
    vl_error(VL_ERR_INVALID, "vl_swiglu: gate %s and up %s must have the same shape",
             vl_shape_str(gate, s1, sizeof s1), vl_shape_str(up, s2, sizeof s2));
    return NULL;
  }
  vl_tensor *y = vl_new_uninit(c, VL_F32, gate->ndim, gate->shape);
  if (!y) return NULL;
  swiglu_arg k = {vl_f32(gate), vl_f32(up), NULL, vl_f32(y), NULL, NULL};
  if (y->numel > PAR_MIN)
    vl_parallel_for(y->numel, PAR_MIN / 2, swiglu_fwd, &k);
  else
    swiglu_fwd(&k, 0, y->numel, 0);
  vl_tensor *in[2] = {gate, up};
  vl_record(c, y, "swiglu", swiglu_backward, 2, in);
  return y;
}
