/* Patch extraction for stride == kernel convolutions (ViT / Qwen-VL patch
 * embeddings). A (B, C, H, W) image is handled as (B, C, 1, H, W) with pt = 1,
 * so the 2-D and 3-D cases share one kernel. Patches are disjoint, so the
 * backward scatters each output row back to its own input elements and rows
 * can run in parallel without write conflicts. */
#include <string.h>

#include "base/error.h"
#include "base/threads.h"
#include "tensor/ops.h"

typedef struct {
  int64_t C, T, H, W;    /* input dims (T = 1 for images) */
  int64_t pt, ph, pw;    /* patch size */
  int64_t nt, nh, nw;    /* patches along each axis */
  int64_t n_patch, cols; /* per batch item: nt*nh*nw rows of C*pt*ph*pw */
  float *x, *y;          /* forward: x -> y; backward: y (grad) -> x (grad) */
  bool backward;
} patch_job;

static void patch_range(void *arg, int64_t r0, int64_t r1, int worker) {
  const patch_job *J = arg;
  for (int64_t r = r0; r < r1; r++) {
    int64_t b = r / J->n_patch, p = r % J->n_patch;
    int64_t gw = p % J->nw, gh = (p / J->nw) % J->nh, gt = p / (J->nw * J->nh);
    float *row = J->y + r * J->cols;
    for (int64_t ch = 0; ch < J->C; ch++)
      for (int64_t z = 0; z < J->pt; z++)
        for (int64_t yy = 0; yy < J->ph; yy++) {
          int64_t src =
              (((b * J->C + ch) * J->T + gt * J->pt + z) * J->H + gh * J->ph + yy) * J->W +
              gw * J->pw;
          float *seg = row + ((ch * J->pt + z) * J->ph + yy) * J->pw;
          if (J->backward)
            for (int64_t xx = 0; xx < J->pw; xx++)
              J->x[src + xx] += seg[xx];
          else
            memcpy(seg, J->x + src, (size_t)J->pw * sizeof(float));
        }
  }
}

static int setup(const vl_tensor *x, int pt, int ph, int pw, patch_job *J) {
  char s[96];
  if (x->dtype != VL_F32)
    return vl_error(VL_ERR_UNSUPPORTED, "patchify: x must be F32, got %s", vl_dtype_name(x->dtype));
  if (pt < 1 || ph < 1 || pw < 1)
    return vl_error(VL_ERR_INVALID, "patchify: patch size (%d, %d, %d) must be positive", pt, ph,
                    pw);
  if (x->ndim == 4 && pt != 1)
    return vl_error(VL_ERR_INVALID,
                    "patchify: temporal patch %d needs x as (B, C, T, H, W), got %s", pt,
                    vl_shape_str(x, s, sizeof s));
  if (x->ndim != 4 && x->ndim != 5)
    return vl_error(VL_ERR_INVALID, "patchify: x %s must be (B, C, H, W) or (B, C, T, H, W)",
                    vl_shape_str(x, s, sizeof s));
  bool vid = x->ndim == 5;
  memset(J, 0, sizeof *J);
  J->C = x->shape[1];
  J->T = vid ? x->shape[2] : 1;
  J->H = x->shape[vid ? 3 : 2];
  J->W = x->shape[vid ? 4 : 3];
  J->pt = pt;
  J->ph = ph;
  J->pw = pw;
  if (J->T % pt || J->H % ph || J->W % pw)
    return vl_error(VL_ERR_INVALID,
                    "patchify: x %s is not divisible into patches of %d x %d x %d (T x H x W)",
                    vl_shape_str(x, s, sizeof s), pt, ph, pw);
  J->nt = J->T / pt;
  J->nh = J->H / ph;
  J->nw = J->W / pw;
  J->n_patch = J->nt * J->nh * J->nw;
  J->cols = J->C * pt * ph * pw;
  return VL_OK;
}

static void patchify_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *x = n->in[0];
  patch_job J;
  if (setup(x, (int)n->i[0], (int)n->i[1], (int)n->i[2], &J)) return;
  if (!(J.x = vl_grad(c, x))) return;
  J.y = n->out->grad;
  J.backward = true;
  vl_parallel_for(x->shape[0] * J.n_patch, 16, patch_range, &J);
}

vl_tensor *vl_patchify(vl_ctx *c, vl_tensor *x, int pt, int ph, int pw) {
  if (!x) return NULL;
  patch_job J;
  if (setup(x, pt, ph, pw, &J)) return NULL;
  vl_tensor *y = vl_new_f32(c, 3, x->shape[0], J.n_patch, J.cols);
  if (!y) return NULL;
  J.x = x->data;
  J.y = y->data;
  vl_parallel_for(x->shape[0] * J.n_patch, 16, patch_range, &J);
  vl_node *n = vl_record(c, y, "patchify", patchify_backward, 1, &x);
  if (n) {
    n->i[0] = pt;
    n->i[1] = ph;
    n->i[2] = pw;
  }
  return y;
}
