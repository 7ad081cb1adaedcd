/* Rotary position embedding, rotate_half convention, and the angle tables of
 * its 1-D, multimodal (Qwen2-VL sections, Qwen3-VL interleaved) and 2-D
 * vision variants. The tables follow transformers' float32 arithmetic:
 * inv_freq = 1 / theta^(2j/dim) and angle = (float)pos * inv_freq. */
#include <math.h>
#include <string.h>

#include "base/error.h"
#include "base/threads.h"
#include "tensor/ops.h"

/* ---- vl_rope ------------------------------------------------------------ */

typedef struct {
  const float *x, *ang;
  float *y;
  int64_t T, H, D, half; /* half = R / 2 */
  int64_t ang_bstride;   /* 0 for a (T, R/2) table, T * R/2 for (B, T, R/2) */
  int sign;              /* +1 forward, -1 backward (inverse rotation) */
} rope_job;

/* Rows are (b, t); each holds H heads of D. For i < R/2 with a = angle:
 *   y[i]       = x[i] cos a - x[i + R/2] sin a
 *   y[i + R/2] = x[i + R/2] cos a + x[i] sin a
 * The backward is the same with -a (a rotation's transpose), accumulated. */
static void rope_range(void *arg, int64_t r0, int64_t r1, int worker) {
  const rope_job *J = arg;
  for (int64_t r = r0; r < r1; r++) {
    int64_t b = r / J->T, t = r % J->T;
    const float *a = J->ang + b * J->ang_bstride + t * J->half;
    for (int64_t h = 0; h < J->H; h++) {
      const float *x = J->x + (r * J->H + h) * J->D;
      float *y = J->y + (r * J->H + h) * J->D;
      for (int64_t i = 0; i < J->half; i++) {
        float cs = cosf(a[i]), sn = (float)J->sign * sinf(a[i]);
        float x0 = x[i], x1 = x[i + J->half];
        float y0 = x0 * cs - x1 * sn, y1 = x1 * cs + x0 * sn;
        if (J->sign > 0) {
          y[i] = y0;
          y[i + J->half] = y1;
        } else {
          y[i] += y0;
          y[i + J->half] += y1;
        }
      }
      for (int64_t i = 2 * J->half; i < J->D; i++)
        y[i] = J->sign > 0 ? x[i] : y[i] + x[i];
    }
  }
}

static void rope_backward(vl_ctx *c, vl_node *n) {
  vl_tensor *x = n->in[0], *ang = n->in[1];
  float *gx = vl_grad(c, x);
  if (!gx) return;
  rope_job J = {.x = n->out->grad,
                .ang = ang->data,
                .y = gx,
                .T = x->shape[1],
                .H = x->shape[2],
                .D = x->shape[3],
                .half = n->i[0],
                .ang_bstride = n->i[1],
                .sign = -1};
  vl_parallel_for(x->shape[0] * J.T, 16, rope_range, &J);
}

vl_tensor *vl_rope(vl_ctx *c, vl_tensor *x, vl_tensor *angles) {
  if (!x || !angles) return NULL;
  char s1[96], s2[96];
  if (x->dtype != VL_F32 || angles->dtype != VL_F32) {
    vl_error(VL_ERR_UNSUPPORTED, "rope: x and angles must be F32 (got %s and %s)",
             vl_dtype_name(x->dtype), vl_dtype_name(angles->dtype));
    return NULL;
  }
  if (x->ndim != 4 || (angles->ndim != 2 && angles->ndim != 3)) {
    vl_error(VL_ERR_INVALID,
             "rope: x %s must be (B, T, H, D) and angles %s (T, R/2) or (B, T, R/2)",
             vl_shape_str(x, s1, sizeof s1), vl_shape_str(angles, s2, sizeof s2));
    return NULL;
  }
  int64_t B = x->shape[0], T = x->shape[1], D = x->shape[3];
  int64_t half = angles->shape[angles->ndim - 1];
  int64_t at = angles->shape[angles->ndim - 2];
  bool batched = angles->ndim == 3;
  if (at != T || 2 * half > D || (batched && angles->shape[0] != B)) {
    vl_error(VL_ERR_INVALID,
             "rope: angles %s do not fit x %s: need T rows (and B batches when 3-D) of R/2 "
             "angles with R <= D",
             vl_shape_str(angles, s2, sizeof s2), vl_shape_str(x, s1, sizeof s1));
    return NULL;
  }
  vl_tensor *y = vl_new(c, VL_F32, 4, x->shape);
  if (!y) return NULL;
  rope_job J = {.x = x->data,
                .ang = angles->data,
                .y = y->data,
                .T = T,
                .H = x->shape[2],
                .D = D,
                .half = half,
                .ang_bstride = batched ? T * half : 0,
                .sign = 1};
  vl_parallel_for(B * T, 16, rope_range, &J);
  vl_tensor *in[2] = {x, angles};
  vl_node *n = vl_record(c, y, "rope", rope_backward, 2, in);
  if (n) {
    n->i[0] = half;
    n->i[1] = J.ang_bstride;
  }
  return y;
}

/* ---- angle tables ------------------------------------------------------- */

/* inv_freq[j] = 1 / theta^(2j / dim), j < n, rounded to float as in
 * transformers (float32 exponent, then the division). */
static float inv_freq(float theta, int64_t j, int dim) {
  float e = (float)(2 * j) / (float)dim;
  return 1.0f / powf(theta, e);
}

static int check_rotary(const char *op, int64_t T, int R, int mult, float theta) {
  if (T < 0 || R <= 0 || R % mult != 0 || !(theta > 0))
    return vl_error(VL_ERR_INVALID,
                    "%s: need T >= 0, rotary dims R > 0 and a multiple of %d, theta > 0 (got T "
                    "%lld, R %d, theta %g)",
                    op, mult, (long long)T, R, (double)theta);
  return VL_OK;
}

vl_tensor *vl_rope_angles_1d(vl_ctx *c, const int64_t *pos, int64_t T, int R, float theta) {
  if (check_rotary("rope_angles_1d", T, R, 2, theta)) return NULL;
  if (!pos && T > 0) {
    vl_error(VL_ERR_INVALID, "rope_angles_1d: no positions given");
    return NULL;
  }
  vl_tensor *a = vl_new_f32(c, 2, T, (int64_t)(R / 2));
  if (!a) return NULL;
  float *d = a->data;
  for (int64_t t = 0; t < T; t++)
    for (int64_t j = 0; j < R / 2; j++)
      d[t * (R / 2) + j] = (float)pos[t] * inv_freq(theta, j, R);
  return a;
}

vl_tensor *vl_rope_angles_mrope(vl_ctx *c, const int64_t *pos3, int64_t T, int R, float theta,
                                const int sec[3], bool interleaved) {
  if (check_rotary("rope_angles_mrope", T, R, 2, theta)) return NULL;
  if (!sec || sec[0] < 0 || sec[1] < 0 || sec[2] < 0 || sec[0] + sec[1] + sec[2] != R / 2) {
    vl_error(VL_ERR_INVALID,
             "rope_angles_mrope: sections (%d, %d, %d) must be >= 0 and sum to R/2 = %d",
             sec ? sec[0] : -1, sec ? sec[1] : -1, sec ? sec[2] : -1, R / 2);
    return NULL;
  }
  if (!pos3 && T > 0) {
    vl_error(VL_ERR_INVALID, "rope_angles_mrope: no positions given");
    return NULL;
  }
  int64_t half = R / 2;
  vl_tensor *a = vl_new_f32(c, 2, T, half);
  if (!a) return NULL;
  float *d = a->data;
  for (int64_t j = 0; j < half; j++) {
    int axis;
    if (interleaved) /* transformers apply_interleaved_mrope */
      axis = (j % 3 == 1 && j < 3 * sec[1]) ? 1 : (j % 3 == 2 && j < 3 * sec[2]) ? 2 : 0;
    else /* apply_multimodal_rotary_pos_emb: consecutive sections */
      axis = j < sec[0] ? 0 : j < sec[0] + sec[1] ? 1 : 2;
    float f = inv_freq(theta, j, R);
    for (int64_t t = 0; t < T; t++)
      d[t * half + j] = (float)pos3[axis * T + t] * f;
  }
  return a;
}

vl_tensor *vl_rope_angles_2d(vl_ctx *c, const int64_t *row, const int64_t *col, int64_t T, int R,
                             float theta) {
  if (check_rotary("rope_angles_2d", T, R, 4, theta)) return NULL;
  if ((!row || !col) && T > 0) {
    vl_error(VL_ERR_INVALID, "rope_angles_2d: no positions given");
    return NULL;
  }
  int64_t q = R / 4;
  vl_tensor *a = vl_new_f32(c, 2, T, 2 * q);
  if (!a) return NULL;
  float *d = a->data;
  /* VisionRotaryEmbedding(dim = R/2): inv_freq over R/2 dims, R/4 values. */
  for (int64_t t = 0; t < T; t++)
    for (int64_t j = 0; j < q; j++) {
      float f = inv_freq(theta, j, R / 2);
      d[t * 2 * q + j] = (float)row[t] * f;
      d[t * 2 * q + q + j] = (float)col[t] * f;
    }
  return a;
}
