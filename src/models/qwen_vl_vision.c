/* Qwen2-VL / Qwen2.5-VL vision tower (Qwen2VisionTransformerPretrainedModel,
 * Qwen2_5_VisionTransformerPretrainedModel). Patches arrive in the
 * processor's order: merge block by merge block, row-major within a block, so
 * every merge*merge consecutive rows form one merged token. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "models/qwen_vl.h"
#include "tensor/ops.h"
#include "tensor/quant.h"

/* Window layout of Qwen2.5-VL's get_window_index for one image/video:
 * order[i] = the merged token placed at position i, win[i] = its window
 * (windows numbered over all frames). */
static int window_index(const vl_qwen_vision_config *v, const int64_t grid[3], int64_t *order,
                        int64_t *win) {
  const int64_t gh = grid[1] / v->merge, gw = grid[2] / v->merge;
  const int64_t ws = v->window_size / v->merge / v->patch;
  const int64_t nwh = (gh + ws - gh % ws) / ws, nww = (gw + ws - gw % ws) / ws;
  int64_t k = 0, w = 0;
  for (int64_t t = 0; t < grid[0]; t++)
    for (int64_t a = 0; a < nwh; a++)
      for (int64_t b = 0; b < nww; b++) {
        int64_t n = 0;
        for (int64_t y = a * ws; y < a * ws + ws && y < gh; y++)
          for (int64_t x = b * ws; x < b * ws + ws && x < gw; x++) {
            order[k] = t * gh * gw + y * gw + x;
            win[k++] = w;
            n++;
          }
        if (n) w++;
      }
  return VL_OK;
}

/* Additive (N, N) mask: 0 where block[i] == block[j], -inf elsewhere. */
static vl_tensor *block_mask(vl_ctx *c, const int64_t *block, int64_t N) {
  vl_tensor *m = vl_new_f32(c, 2, N, N);
  if (!m) return NULL;
  float *d = vl_f32(m);
  for (int64_t i = 0; i < N; i++)
    for (int64_t j = 0; j < N; j++)
      d[i * N + j] = block[i] == block[j] ? 0.0f : -INFINITY;
  return m;
}

static vl_tensor *act(vl_ctx *c, vl_qwen_vl_act a, vl_tensor *x) {
  switch (a) {
  case VL_QVL_QUICK_GELU: return vl_quick_gelu(c, x);
  case VL_QVL_GELU: return vl_gelu(c, x);
  case VL_QVL_GELU_TANH: return vl_gelu_tanh(c, x);
  case VL_QVL_SILU: return vl_silu(c, x);
  }
  return NULL;
}

static vl_tensor *norm(vl_ctx *c, const vl_qwen_vl *m, vl_tensor *x, vl_tensor *w, vl_tensor *b) {
  return m->kind != VL_QWEN25_VL ? vl_layernorm(c, x, w, b, m->vcfg.eps)
                                 : vl_rmsnorm(c, x, w, m->vcfg.eps);
}

/* Qwen3-VL's fast_pos_embed_interpolate: the side x side table bilinearly
 * sampled at torch.linspace(0, side - 1, h) x linspace(0, side - 1, w) (float32),
 * weights in float32, the four corners summed in order; rows in the
 * processor's patch order, repeated per frame. */
static vl_tensor *pos_interp(vl_ctx *c, const vl_qwen_vl *m, const int64_t grid[3],
                             const int64_t *row, const int64_t *col, int64_t N) {
  const int64_t E = m->vcfg.hidden;
  const int64_t side = (int64_t)llroundf(sqrtf((float)m->vcfg.n_pos_embed));
  const int64_t h = grid[1], w = grid[2];
  float *hi = vl_ctx_alloc(c, (size_t)h * sizeof *hi),
        *wi = vl_ctx_alloc(c, (size_t)w * sizeof *wi);
  vl_tensor *out = vl_new_f32(c, 2, N, E);
  if (!hi || !wi || !out) return NULL;
  /* torch.linspace: start + i*step for the first half, end - (n-1-i)*step after */
  for (int pass = 0; pass < 2; pass++) {
    const int64_t n = pass ? w : h;
    float *o = pass ? wi : hi;
    const float end = (float)(side - 1), step = n > 1 ? end / (float)(n - 1) : 0.0f;
    for (int64_t i = 0; i < n; i++)
      o[i] = n == 1 ? 0.0f : i < n / 2 ? (float)i * step : end - (float)(n - 1 - i) * step;
  }
  const float *tab = vl_f32(m->pos_embed);
  for (int64_t p = 0; p < N; p++) {
    const float fy = hi[row[p]], fx = wi[col[p]];
    const int64_t y0 = (int64_t)fy, x0 = (int64_t)fx;
    const int64_t y1 = y0 + 1 < side ? y0 + 1 : side - 1, x1 = x0 + 1 < side ? x0 + 1 : side - 1;
    const float dy = fy - (float)y0, dx = fx - (float)x0;
    const float w00 = (1 - dy) * (1 - dx), w01 = (1 - dy) * dx, w10 = dy * (1 - dx), w11 = dy * dx;
    const float *a = tab + (y0 * side + x0) * E, *b = tab + (y0 * side + x1) * E;
    const float *cc = tab + (y1 * side + x0) * E, *d = tab + (y1 * side + x1) * E;
    float *o = vl_f32(out) + p * E;
    for (int64_t e = 0; e < E; e++)
      o[e] = a[e] * w00 + b[e] * w01 + cc[e] * w10 + d[e] * w11;
  }
  return out;
}

/* A merger over (1, N, E): norm per patch (or, postshuffle, over the merged
 * row), merge*merge rows concatenated, Linear -> GELU -> Linear. */
static vl_tensor *merger(vl_ctx *c, const vl_qwen_vl *m, vl_tensor *x, bool postshuffle,
                         vl_tensor *ln_w, vl_tensor *ln_b, vl_tensor *w1, vl_tensor *b1,
                         vl_tensor *w2, vl_tensor *b2) {
  const int64_t U = (int64_t)m->vcfg.merge * m->vcfg.merge, E = m->vcfg.hidden;
  int64_t sm[2] = {x->shape[1] / U, U * E};
  vl_tensor *h = postshuffle ? vl_layernorm(c, vl_reshape(c, x, 2, sm), ln_w, ln_b, m->vcfg.eps)
                             : vl_reshape(c, norm(c, m, x, ln_w, ln_b), 2, sm);
  h = vl_gelu(c, vl_linear_any(c, h, w1, b1));
  return vl_linear_any(c, h, w2, b2);
}

vl_tensor *vl_qwen_vl_vision(vl_ctx *c, const vl_qwen_vl *m, vl_tensor *pixels,
                             const int64_t grid[3], vl_tensor **attn) {
  return vl_qwen_vl_vision_ex(c, m, pixels, grid, attn, NULL);
}

vl_tensor *vl_qwen_vl_vision_ex(vl_ctx *c, const vl_qwen_vl *m, vl_tensor *pixels,
                                const int64_t grid[3], vl_tensor **attn, vl_tensor **deepstack) {
  const vl_qwen_vision_config *v = &m->vcfg;
  const int64_t E = v->hidden, H = v->heads, D = E / H, U = (int64_t)v->merge * v->merge;
  const int64_t K = m->patch_w->shape[1];
  char sb[64];
  if (grid[0] < 1 || grid[1] < 1 || grid[2] < 1 || grid[1] % v->merge || grid[2] % v->merge) {
    vl_error(VL_ERR_INVALID, "qwen-vl: grid %lldx%lldx%lld is not a multiple of the merge size %d",
             (long long)grid[0], (long long)grid[1], (long long)grid[2], v->merge);
    return NULL;
  }
  const int64_t N = grid[0] * grid[1] * grid[2], NM = N / U;
  if (!pixels || pixels->ndim != 2 || pixels->shape[0] != N || pixels->shape[1] != K) {
    vl_error(VL_ERR_INVALID, "qwen-vl: pixel_values %s, expected (%lld, %lld) for the grid",
             pixels ? vl_shape_str(pixels, sb, sizeof sb) : "(none)", (long long)N, (long long)K);
    return NULL;
  }
  /* patch row/col in processor order; frame id as the full-attention block */
  int64_t *row = vl_ctx_alloc(c, (size_t)N * sizeof *row);
  int64_t *col = vl_ctx_alloc(c, (size_t)N * sizeof *col);
  int64_t *frame = vl_ctx_alloc(c, (size_t)N * sizeof *frame);
  if (!row || !col || !frame) return NULL;
  {
    int64_t i = 0;
    for (int64_t t = 0; t < grid[0]; t++)
      for (int64_t hb = 0; hb < grid[1] / v->merge; hb++)
        for (int64_t wb = 0; wb < grid[2] / v->merge; wb++)
          for (int64_t a = 0; a < v->merge; a++)
            for (int64_t b = 0; b < v->merge; b++, i++) {
              row[i] = hb * v->merge + a;
              col[i] = wb * v->merge + b;
              frame[i] = t;
            }
  }
  vl_tensor *x = vl_linear_any(c, pixels, m->patch_w, m->patch_b); /* (N, E) */
  if (m->pos_embed) x = vl_add(c, x, pos_interp(c, m, grid, row, col, N));
  vl_tensor *full_mask = NULL, *win_mask = NULL, *inv = NULL;
  if (m->kind == VL_QWEN25_VL) {
    /* reorder merged tokens into windows; rows/cols/frames follow */
    int64_t *order = vl_ctx_alloc(c, (size_t)NM * sizeof *order);
    int64_t *win = vl_ctx_alloc(c, (size_t)NM * sizeof *win);
    int64_t *pwin = vl_ctx_alloc(c, (size_t)N * sizeof *pwin);
    int64_t *r2 = vl_ctx_alloc(c, (size_t)N * 3 * sizeof *r2);
    int64_t nm = NM;
    vl_tensor *idx = vl_new(c, VL_I64, 1, &nm);
    inv = vl_new(c, VL_I64, 1, &nm);
    if (!order || !win || !pwin || !r2 || !idx || !inv) return NULL;
    window_index(v, grid, order, win);
    for (int64_t i = 0; i < NM; i++) {
      ((int64_t *)idx->data)[i] = order[i];
      ((int64_t *)inv->data)[order[i]] = i;
      for (int64_t u = 0; u < U; u++) {
        const int64_t s = order[i] * U + u, d = i * U + u;
        r2[d] = row[s], r2[N + d] = col[s], r2[2 * N + d] = frame[s];
        pwin[d] = win[i];
      }
    }
    memcpy(row, r2, (size_t)N * sizeof *row);
    memcpy(col, r2 + N, (size_t)N * sizeof *col);
    memcpy(frame, r2 + 2 * N, (size_t)N * sizeof *frame);
    int64_t s3[3] = {NM, U, E}, s2[2] = {N, E};
    x = vl_reshape(c, vl_gather_rows(c, vl_reshape(c, x, 3, s3), idx), 2, s2);
    if (!(win_mask = block_mask(c, pwin, N))) return NULL;
  }
  if (grid[0] > 1 && !(full_mask = block_mask(c, frame, N))) return NULL;
  vl_tensor *ang = vl_rope_angles_2d(c, row, col, N, (int)D, 10000.0f);
  int64_t s3[3] = {1, N, E}, s4[4] = {1, N, H, D};
  x = vl_reshape(c, x, 3, s3);
  if (!x || !ang) return NULL;
  const float scale = 1.0f / sqrtf((float)D);
  for (int l = 0; l < (int)v->depth; l++) {
    const vl_qwen_vision_block *B = &m->blocks[l];
    const bool windowed = m->kind == VL_QWEN25_VL && !v->full_attn[l];
    const vl_attn_mask mask = {.add = windowed ? win_mask : full_mask};
    vl_tensor *h = norm(c, m, x, B->norm1_w, B->norm1_b);
    vl_tensor *qkv = vl_linear_any(c, h, B->qkv_w, B->qkv_b);
    vl_tensor *q = vl_rope(c, vl_reshape(c, vl_slice(c, qkv, 2, 0, E), 4, s4), ang);
    vl_tensor *k = vl_rope(c, vl_reshape(c, vl_slice(c, qkv, 2, E, 2 * E), 4, s4), ang);
    vl_tensor *vv = vl_reshape(c, vl_slice(c, qkv, 2, 2 * E, 3 * E), 4, s4);
    vl_tensor *a =
        vl_attention(c, q, k, vv, scale, mask.add ? &mask : NULL, attn ? &attn[l] : NULL);
    x = vl_add(c, x, vl_linear_any(c, vl_reshape(c, a, 3, s3), B->proj_w, B->proj_b));
    h = norm(c, m, x, B->norm2_w, B->norm2_b);
    vl_tensor *f;
    if (m->kind != VL_QWEN25_VL) {
      f = act(c, v->act, vl_linear_any(c, h, B->fc1_w, B->fc1_b));
    } else {
      vl_tensor *g = vl_linear_any(c, h, B->gate_w, B->gate_b);
      vl_tensor *u = vl_linear_any(c, h, B->up_w, B->up_b);
      f = v->act == VL_QVL_SILU ? vl_swiglu(c, g, u) : vl_mul(c, act(c, v->act, g), u);
    }
    x = vl_add(c, x, vl_linear_any(c, f, B->fc2_w, B->fc2_b));
    if (!x) return NULL;
    for (int d = 0; deepstack && d < v->n_deepstack; d++)
      if (v->deepstack[d] == l &&
          !(deepstack[d] = merger(c, m, x, true, m->ds_ln_w[d], m->ds_ln_b[d], m->ds_fc1_w[d],
                                  m->ds_fc1_b[d], m->ds_fc2_w[d], m->ds_fc2_b[d])))
        return NULL;
  }
  /* PatchMerger: norm per patch, merge*merge consecutive patches concatenated,
   * Linear -> GELU -> Linear */
  vl_tensor *h = merger(c, m, x, false, m->merge_ln_w, m->merge_ln_b, m->merge_fc1_w,
                        m->merge_fc1_b, m->merge_fc2_w, m->merge_fc2_b);
  if (inv) h = vl_gather_rows(c, h, inv);
  return h;
}
