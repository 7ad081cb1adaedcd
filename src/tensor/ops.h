/* Differentiable ops over vl_tensor. Each has a forward and a backward
 * (registered on the tape when recording); each backward is checked against
 * central finite differences in tests/test_grad_*.c.
 *
 * Conventions:
 *  - F32 activations; `w` arguments of linear/matmul(b)/embedding may also be
 *    BF16/F16 (widened in the kernel). Norm weights and biases are F32.
 *  - Sequence activations are (B, T, C). Attention heads live in (B, T, H, D)
 *    so that a linear's output reshapes to heads for free.
 *  - Broadcasting follows NumPy: shapes aligned on the right, size-1 dims
 *    stretch.
 *  - NULL in, NULL out (see tensor.h). */
#ifndef VL_TENSOR_OPS_H
#define VL_TENSOR_OPS_H

#include "tensor/tensor.h"

/* ---- elementwise and broadcasting (ops_elementwise.c) ----------------- */
vl_tensor *vl_add(vl_ctx *c, vl_tensor *a, vl_tensor *b);
vl_tensor *vl_sub(vl_ctx *c, vl_tensor *a, vl_tensor *b);
vl_tensor *vl_mul(vl_ctx *c, vl_tensor *a, vl_tensor *b);
vl_tensor *vl_scale(vl_ctx *c, vl_tensor *a, float s);
vl_tensor *vl_add_scalar(vl_ctx *c, vl_tensor *a, float s);

/* ---- activations (ops_activation.c) ----------------------------------- */
vl_tensor *vl_relu(vl_ctx *c, vl_tensor *x);
vl_tensor *vl_gelu(vl_ctx *c, vl_tensor *x);       /* exact, erf */
vl_tensor *vl_gelu_tanh(vl_ctx *c, vl_tensor *x);  /* tanh approximation */
vl_tensor *vl_quick_gelu(vl_ctx *c, vl_tensor *x); /* x * sigmoid(1.702 x) */
vl_tensor *vl_silu(vl_ctx *c, vl_tensor *x);
vl_tensor *vl_sigmoid(vl_ctx *c, vl_tensor *x);
vl_tensor *vl_tanh(vl_ctx *c, vl_tensor *x);
/* silu(gate) * up, same shapes. */
vl_tensor *vl_swiglu(vl_ctx *c, vl_tensor *gate, vl_tensor *up);

/* ---- normalisation (ops_norm.c): over the last dim -------------------- */
/* w, b: (C) F32 or NULL. */
vl_tensor *vl_layernorm(vl_ctx *c, vl_tensor *x, vl_tensor *w, vl_tensor *b, float eps);
/* x * rsqrt(mean(x^2) + eps) * w ; w (C) F32 or NULL. */
vl_tensor *vl_rmsnorm(vl_ctx *c, vl_tensor *x, vl_tensor *w, float eps);

/* ---- softmax and losses (ops_softmax.c): over the last dim ------------ */
vl_tensor *vl_softmax(vl_ctx *c, vl_tensor *x);
vl_tensor *vl_log_softmax(vl_ctx *c, vl_tensor *x);
/* Mean cross-entropy of logits (N, V) against targets (N) I64 or I32;
 * rows whose target == ignore_index are skipped. Returns shape (1). */
vl_tensor *vl_cross_entropy(vl_ctx *c, vl_tensor *logits, vl_tensor *targets, int64_t ignore_index);

/* ---- matrix products (ops_matmul.c, kernels in gemm.c) --------------- */
/* a (..., M, K) [or (..., K, M) with trans_a] times b (..., K, N) [or
 * (..., N, K) with trans_b]; b's batch dims broadcast against a's (b is often
 * 2-D). b may be BF16/F16 (not differentiated then unless F32). */
vl_tensor *vl_matmul(vl_ctx *c, vl_tensor *a, vl_tensor *b, bool trans_a, bool trans_b);
/* x (..., in) @ w^T + bias; w (out, in) as stored by PyTorch; bias (out) F32
 * or NULL. */
vl_tensor *vl_linear(vl_ctx *c, vl_tensor *x, vl_tensor *w, vl_tensor *bias);

/* ---- shape and data movement (ops_shape.c) ---------------------------- */
/* Same data, new shape (numel must match; one dim may be -1). */
vl_tensor *vl_reshape(vl_ctx *c, vl_tensor *x, int ndim, const int64_t *shape);
vl_tensor *vl_permute(vl_ctx *c, vl_tensor *x, const int *perm);
vl_tensor *vl_transpose(vl_ctx *c, vl_tensor *x, int d0, int d1);
vl_tensor *vl_concat(vl_ctx *c, int n, vl_tensor *const *xs, int axis);
/* Elements [start, end) along axis. */
vl_tensor *vl_slice(vl_ctx *c, vl_tensor *x, int axis, int64_t start, int64_t end);
/* Rows idx[i] of x viewed as (N, D) (D = product of trailing dims). */
vl_tensor *vl_gather_rows(vl_ctx *c, vl_tensor *x, vl_tensor *idx);
/* Copy of base (N, D) with rows idx[i] replaced by src[i] (M, D): how image
 * embeddings are placed into a text sequence. */
vl_tensor *vl_scatter_rows(vl_ctx *c, vl_tensor *base, vl_tensor *src, vl_tensor *idx);
/* table (V, D) F32/BF16/F16, ids I64/I32 of any shape -> (ids..., D). */
vl_tensor *vl_embedding(vl_ctx *c, vl_tensor *table, vl_tensor *ids);

/* ---- reductions (ops_reduce.c) --------------------------------------- */
vl_tensor *vl_sum(vl_ctx *c, vl_tensor *x, int axis, bool keepdim);
vl_tensor *vl_mean(vl_ctx *c, vl_tensor *x, int axis, bool keepdim);
vl_tensor *vl_sum_all(vl_ctx *c, vl_tensor *x);  /* shape (1) */
vl_tensor *vl_mean_all(vl_ctx *c, vl_tensor *x); /* shape (1) */

/* ---- patch embedding (ops_patch.c) ----------------------------------- */
/* x (B, C, H, W) -> (B, (H/ph)*(W/pw), C*ph*pw), each row in the order of a
 * Conv2d weight (C, ph, pw), patches row-major. With pt > 1, x is
 * (B, C, T, H, W) and rows are (C, pt, ph, pw) as for Conv3d. Followed by a
 * linear with the conv weight reshaped to (out, C*[pt*]ph*pw) this is the
 * stride == kernel convolution of ViT and Qwen-VL patch embeddings. */
vl_tensor *vl_patchify(vl_ctx *c, vl_tensor *x, int pt, int ph, int pw);

/* ---- rotary position embedding (ops_rope.c) --------------------------- */
/* x (B, T, H, D). angles (T, R/2) F32, or (B, T, R/2) when positions differ
 * per batch item; R = rotary dims (even, <= D): rotates the first R dims
 * rotate_half style (pairs i and i + R/2 share angle i), the rest pass
 * through. The angle table encodes the variant (1-D, M-RoPE
 * sections, 2-D vision) and is built by the helpers below. Not
 * differentiated w.r.t. angles. */
vl_tensor *vl_rope(vl_ctx *c, vl_tensor *x, vl_tensor *angles);
/* angles[t][j] = pos[t] * theta^(-2j/R). pos: T positions. */
vl_tensor *vl_rope_angles_1d(vl_ctx *c, const int64_t *pos, int64_t T, int R, float theta);
/* Multimodal RoPE (Qwen2-VL): pos3 is (3, T) (temporal, height, width); the
 * R/2 frequencies are split into consecutive sections (sec[0], sec[1], sec[2])
 * taking their position from axis 0, 1, 2. interleaved (Qwen3-VL): frequency
 * j takes axis 1 if j % 3 == 1 and j < 3*sec[1], axis 2 if j % 3 == 2 and
 * j < 3*sec[2], else axis 0, as transformers' apply_interleaved_mrope. */
vl_tensor *vl_rope_angles_mrope(vl_ctx *c, const int64_t *pos3, int64_t T, int R, float theta,
                                const int sec[3], bool interleaved);
/* 2-D vision RoPE (Qwen2-VL vision tower): for patch t at (row[t], col[t]),
 * the first R/4 angles use row, the next R/4 use col, with frequencies
 * theta^(-2j/(R/2)), j < R/4. */
vl_tensor *vl_rope_angles_2d(vl_ctx *c, const int64_t *row, const int64_t *col, int64_t T, int R,
                             float theta);

/* ---- attention (ops_attention.c) -------------------------------------- */
/* s[0..n) = softmax(s) in place, no gradient (inference kernels); every
 * score -inf gives all zeros. */
void vl_softmax_inplace(float *s, int64_t n);
typedef struct {
  bool causal;    /* query i sees keys j <= i + (Tk - Tq) */
  vl_tensor *add; /* optional additive mask, broadcast to (B, Hq, Tq, Tk) */
} vl_attn_mask;

/* q (B, Tq, Hq, D), k (B, Tk, Hkv, D) with Hq % Hkv == 0 (grouped-query:
 * query head h reads kv head h / (Hq/Hkv)). Returns probabilities
 * (B, Hq, Tq, Tk) = softmax(scale * q k^T + mask). mask may be NULL. A row
 * whose keys are all masked (causal with Tq > Tk, or -inf everywhere) has
 * probabilities 0, not NaN. Gradients flow to q and k, never to the mask. */
vl_tensor *vl_attn_probs(vl_ctx *c, vl_tensor *q, vl_tensor *k, float scale,
                         const vl_attn_mask *mask);
/* probs (B, Hq, Tq, Tk), v (B, Tk, Hkv, D) -> (B, Tq, Hq, D). */
vl_tensor *vl_attn_apply(vl_ctx *c, vl_tensor *probs, vl_tensor *v);
/* Both in one call. With probs_out, the probabilities are handed out as a
 * tensor on the tape: its ->grad after vl_backward is dS/dA (relevancy);
 * without, a fused kernel may be used and nothing is kept in inference. */
vl_tensor *vl_attention(vl_ctx *c, vl_tensor *q, vl_tensor *k, vl_tensor *v, float scale,
                        const vl_attn_mask *mask, vl_tensor **probs_out);

#endif
