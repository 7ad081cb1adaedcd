/* Tensors and the reverse-mode tape.
 *
 * A vl_ctx owns an arena (all tensors, gradients and saved op state of one
 * forward pass) and, when recording, a tape of the ops applied. Tensors are
 * always contiguous row-major; ops that rearrange data (permute, slice,
 * concat) copy. Activations and gradients are F32; weights may be BF16/F16
 * (kept as stored, widened inside kernels) or F32.
 *
 * Error convention: an op returns NULL on failure with vl_error() set, and an
 * op given a NULL input returns NULL at once, so model code can chain ops and
 * test once: `y = vl_add(c, vl_matmul(c, x, w, 0, 1), b); if (!y) return NULL;`
 *
 * Modes:
 *  - inference (recording off, the default): no tape, nothing saved for
 *    backward; callers may vl_ctx_mark()/vl_ctx_reset() to drop temporaries.
 *  - recording: each op whose inputs require grad pushes a node. vl_backward()
 *    walks the tape in reverse and accumulates into ->grad of every tensor on
 *    the path (so any intermediate's gradient can be read after backward).
 *    Weights get gradients only when their requires_grad is set (training);
 *    for explanations only the input / chosen activations require grad.
 */
#ifndef VL_TENSOR_TENSOR_H
#define VL_TENSOR_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"

#define VL_MAX_DIMS 6

typedef struct vl_node vl_node;
typedef struct vl_ctx vl_ctx;

typedef struct vl_tensor {
  vl_dtype dtype;
  int ndim;
  int64_t shape[VL_MAX_DIMS];
  int64_t numel;
  void *data;         /* contiguous row-major, dtype elements */
  float *grad;        /* F32 gradient, numel long; NULL until needed */
  bool requires_grad; /* leaf: wants a gradient; op output: on a grad path */
  vl_node *node;      /* op that produced it, when recorded */
  const char *name;   /* optional, for errors and dumps */
} vl_tensor;

/* Backward of one op: reads n->out->grad and accumulates (+=) into the grad
 * of each input that requires grad (use vl_grad() to get/allocate it). */
typedef void (*vl_backward_fn)(vl_ctx *ctx, vl_node *n);

#define VL_NODE_MAX_IN 4
struct vl_node {
  vl_backward_fn backward;
  const char *op; /* name, for debugging */
  vl_tensor *out;
  vl_tensor *in[VL_NODE_MAX_IN];
  int n_in;
  int64_t i[8]; /* small integer parameters (axes, flags) */
  float f[4];   /* small float parameters (eps, scale) */
  void *saved;  /* op-specific saved state, arena-allocated */
  size_t at;    /* arena offset when recorded (vl_ctx_reset drops it) */
};

/* ---- context ---------------------------------------------------------- */

vl_ctx *vl_ctx_new(void);
void vl_ctx_free(vl_ctx *ctx);
void vl_ctx_set_recording(vl_ctx *ctx, bool on);
bool vl_ctx_recording(const vl_ctx *ctx);
/* Arena bookkeeping: bytes in use now and the high-water mark. */
size_t vl_ctx_used(const vl_ctx *ctx);
size_t vl_ctx_peak(const vl_ctx *ctx);
/* Drop everything allocated after `mark` (inference temporaries); nodes
 * recorded after the mark leave the tape. */
size_t vl_ctx_mark(const vl_ctx *ctx);
void vl_ctx_reset(vl_ctx *ctx, size_t mark);
/* 64-byte aligned, zero-filled arena memory; NULL + vl_error on failure. */
void *vl_ctx_alloc(vl_ctx *ctx, size_t bytes);
/* Same without the zero fill, for buffers the caller overwrites whole. */
void *vl_ctx_alloc_uninit(vl_ctx *ctx, size_t bytes);

/* ---- tensors ---------------------------------------------------------- */

/* New zero-filled tensor in ctx. */
vl_tensor *vl_new(vl_ctx *ctx, vl_dtype dtype, int ndim, const int64_t *shape);
/* Same, contents undefined: for op outputs that a kernel writes entirely
 * (zero-filling large activations costs as much as a small GEMM). */
vl_tensor *vl_new_uninit(vl_ctx *ctx, vl_dtype dtype, int ndim, const int64_t *shape);
/* Convenience: F32 with shape given as arguments, e.g. vl_new_f32(c, 2, 3, 4). */
vl_tensor *vl_new_f32(vl_ctx *ctx, int ndim, ...);
/* Tensor header over existing memory (e.g. an mmap'd weight); no copy. */
vl_tensor *vl_wrap(vl_ctx *ctx, vl_dtype dtype, int ndim, const int64_t *shape, void *data);
/* F32 copy of src's data (any float dtype widened); not recorded. */
vl_tensor *vl_clone_f32(vl_ctx *ctx, const vl_tensor *src);

static inline float *vl_f32(const vl_tensor *t) { return (float *)t->data; }
/* Element access for non-F32 float storage. */
float vl_get(const vl_tensor *t, int64_t i);
bool vl_same_shape(const vl_tensor *a, const vl_tensor *b);
/* "[2, 3, 4]" into buf; returns buf. */
const char *vl_shape_str(const vl_tensor *t, char *buf, size_t n);

/* ---- tape ------------------------------------------------------------- */

/* For op implementations: if ctx is recording and any input requires grad,
 * marks out as requiring grad, pushes a node and returns it (the op then
 * fills n->i / n->f / n->saved); otherwise returns NULL. */
vl_node *vl_record(vl_ctx *ctx, vl_tensor *out, const char *op, vl_backward_fn backward, int n_in,
                   vl_tensor *const *in);
/* The gradient buffer of t, allocated zeroed in ctx when missing. */
float *vl_grad(vl_ctx *ctx, vl_tensor *t);
/* For a backward that writes every element of t's gradient in one go: when
 * the buffer is missing it is allocated uninitialised and *fresh is set (the
 * caller must store, not accumulate); otherwise as vl_grad, *fresh false.
 * Saves zero-filling most activation gradients. */
float *vl_grad_fresh(vl_ctx *ctx, vl_tensor *t, bool *fresh);
/* Seeds out->grad with dout (NULL: all ones) and runs the tape backward.
 * Gradients of op outputs (intermediates) are reset at the start of every
 * backward, so after it they hold d out / d t for this call alone (one
 * backward per explanation target). Leaves (tensors made by vl_new/vl_wrap
 * with requires_grad set) accumulate across calls, as in PyTorch; clear them
 * with vl_zero_grads(). */
int vl_backward(vl_ctx *ctx, vl_tensor *out, const float *dout);
/* vl_backward for the gradients of want[0..n_want) alone (NULL entries are
 * ignored; want NULL: vl_backward): ops none of whose inputs is computed from
 * a wanted tensor are skipped, and inputs not computed from one get no
 * gradient. The wanted gradients are exactly vl_backward's; other gradients
 * are left stale (undefined) until the next full vl_backward. */
int vl_backward_to(vl_ctx *ctx, vl_tensor *out, const float *dout, vl_tensor *const *want,
                   int n_want);
/* Zeroes every gradient buffer reachable from the tape (not weights kept in
 * other contexts unless they are on this tape). */
void vl_zero_grads(vl_ctx *ctx);

#endif
