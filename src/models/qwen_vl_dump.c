/* `vlens dump` for Qwen2-VL / Qwen2.5-VL: one forward (and with a target one
 * backward of logits[Q, ID]), the tensors of ../shared/spec/dump.md into a
 * safetensors writer. Grad-CAM reads the visual embeddings handed to the
 * language model; relevancy is the decoder-only rule of
 * ../shared/spec/explain-methods.md over the language model's layers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "models/dump_common.h"
#include "models/qwen_vl.h"
#include "tensor/ops.h"

/* R = I, R <- R + Ā_l R (Ā_l = mean_h((dS/dA ⊙ A)+)), row q only: carried
 * from the last layer down as e_q (I + Ā_L) ... (I + Ā_1). */
static int relevancy(vl_ctx *c, vl_tensor *const *attn, int L, int64_t T, int64_t q, const int *pos,
                     int64_t n, float *out) {
  double *r = vl_ctx_alloc(c, (size_t)T * sizeof *r), *nr = vl_ctx_alloc(c, (size_t)T * sizeof *nr);
  double *a = vl_ctx_alloc(c, (size_t)(T * T) * sizeof *a);
  if (!r || !nr || !a) return vl_last_error_code();
  r[q] = 1.0;
  for (int l = L - 1; l >= 0; l--) {
    const vl_tensor *P = attn[l];
    if (!P || !P->grad)
      return vl_error(VL_ERR_INVALID, "qwen-vl: layer %d attention has no gradient", l);
    const int64_t H = P->shape[1];
    memset(a, 0, (size_t)(T * T) * sizeof *a);
    for (int64_t h = 0; h < H; h++)
      for (int64_t i = 0; i < T * T; i++) {
        double g = (double)P->grad[h * T * T + i] * vl_f32(P)[h * T * T + i];
        if (g > 0) a[i] += g / (double)H;
      }
    for (int64_t j = 0; j < T; j++) {
      double s = r[j];
      for (int64_t i = 0; i < T; i++)
        s += r[i] * a[i * T + j];
      nr[j] = s;
    }
    memcpy(r, nr, (size_t)T * sizeof *r);
  }
  for (int64_t i = 0; i < n; i++)
    out[i] = (float)r[pos[i]];
  return VL_OK;
}

static int dump_run(vl_ctx *c, const vl_qwen_vl *m, const vl_dump_opts *o, vl_qwen_vl_run *r,
                    vl_st_writer *w) {
  const int L = (int)m->lm->cfg.n_layers;
  const int64_t T = r->ids->numel, V = m->lm->cfg.vocab;
  int rc = vl_dump_check_target(o, T, V, "qwen-vl");
  if (rc) return rc;
  vl_ctx_set_recording(c, o->has_target);
  const bool need_attn = o->attn || o->has_target;
  if (need_attn && !(r->attn = vl_ctx_alloc(c, (size_t)L * sizeof(vl_tensor *))))
    return vl_last_error_code();
  if ((rc = vl_qwen_vl_forward(c, m, r))) return rc;
  const int64_t N = r->n_image, C = r->image_embeds->shape[1];
  int64_t s2[2] = {N, C}, sg[2] = {1, 3}, s3[3];
  vl_tensor *grid = vl_new(c, VL_I64, 2, sg);
  if (!grid) return vl_last_error_code();
  memcpy(grid->data, r->grid, sizeof r->grid);
  rc = vl_dump_add(w, "input_ids", r->ids, 1, &T);
  if (!rc) rc = vl_dump_add(w, "pixel_values", r->pixels, 2, r->pixels->shape);
  if (!rc) rc = vl_dump_add(w, "image_grid_thw", grid, 2, sg);
  if (!rc) rc = vl_dump_add(w, "position_ids", r->position_ids, 2, r->position_ids->shape);
  if (!rc) rc = vl_dump_add(w, "vision_out", r->image_embeds, 2, s2);
  char name[64];
  for (int k = 0; !rc && k < m->vcfg.n_deepstack; k++) {
    snprintf(name, sizeof name, "vision_deepstack.%d", k);
    rc = vl_dump_add(w, name, r->deepstack[k], 2, s2);
  }
  if (!rc) rc = vl_dump_add(w, "logits", r->logits, 2, r->logits->shape);
  for (int l = 0; o->attn && !rc && l < L; l++) {
    s3[0] = m->lm->cfg.n_heads, s3[1] = T, s3[2] = T;
    snprintf(name, sizeof name, "attn.%d", l);
    rc = vl_dump_add(w, name, r->attn[l], 3, s3);
  }
  if (rc || !o->has_target) return rc;
  if ((rc = vl_dump_backward_at(c, r->logits, o->target_pos * V + o->target_id))) return rc;
  const vl_tensor *X = r->image_embeds;
  if (!X->grad)
    return vl_error(VL_ERR_INVALID, "qwen-vl: no gradient reached the image embeddings");
  vl_tensor *grad = vl_new_f32(c, 2, N, C), *cam = vl_new_f32(c, 1, N);
  vl_tensor *rel = vl_new_f32(c, 1, N);
  double *alpha = vl_ctx_alloc(c, (size_t)C * sizeof *alpha);
  if (!grad || !cam || !rel || !alpha) return vl_last_error_code();
  memcpy(grad->data, X->grad, (size_t)(N * C) * sizeof(float));
  for (int64_t i = 0; i < N; i++)
    for (int64_t d = 0; d < C; d++)
      alpha[d] += (double)X->grad[i * C + d] / (double)N;
  for (int64_t i = 0; i < N; i++) {
    double s = 0;
    for (int64_t d = 0; d < C; d++)
      s += alpha[d] * vl_f32(X)[i * C + d];
    vl_f32(cam)[i] = s > 0 ? (float)s : 0.0f;
  }
  rc = vl_dump_add(w, "gradcam.acts", X, 2, s2);
  if (!rc) rc = vl_dump_add(w, "gradcam.grad", grad, 2, s2);
  if (!rc) rc = vl_dump_add(w, "gradcam", cam, 1, &N);
  if (!rc) rc = relevancy(c, r->attn, L, T, o->target_pos, r->image_pos, N, vl_f32(rel));
  if (!rc) rc = vl_dump_add(w, "relevancy", rel, 1, &N);
  return rc;
}

int vl_qwen_vl_dump(const vl_qwen_vl *m, const vl_dump_opts *o, vl_st_writer *w) {
  if (!o->image_path) return vl_error(VL_ERR_INVALID, "qwen-vl: an image is required (--image)");
  if (!o->ids && !o->prompt)
    return vl_error(VL_ERR_INVALID, "qwen-vl: a text is required (--prompt or --ids)");
  vl_image *img = vl_image_load(o->image_path, 0);
  if (!img) return vl_last_error_code();
  vl_ctx *c = vl_ctx_new();
  int64_t *ids = NULL, n = 0, *ex = NULL, T = 0;
  int rc = c ? VL_OK : vl_error(VL_ERR_NOMEM, "dump: out of memory");
  vl_qwen_vl_run r = {0};
  if (!rc && !(r.pixels = vl_qwen_vl_pixels(c, m, img, r.grid))) rc = vl_last_error_code();
  if (!rc && !o->ids) rc = vl_qwen_vl_text_ids(m, o->prompt, &ids, &n);
  if (!rc)
    rc = vl_qwen_vl_expand_ids(m, o->ids ? o->ids : ids, o->ids ? o->n_ids : n,
                               vl_qwen_vl_image_tokens(m, r.grid), &ex, &T);
  if (!rc && !(r.ids = vl_new(c, VL_I64, 1, &T))) rc = vl_last_error_code();
  if (!rc) {
    memcpy(r.ids->data, ex, (size_t)T * sizeof *ex);
    rc = dump_run(c, m, o, &r, w);
  }
  free(ids);
  free(ex);
  vl_ctx_free(c);
  vl_image_free(img);
  return rc;
}
