/* `vlens dump` for the BLIP families: one forward (and with a target one
 * backward), the tensors of ../shared/spec/dump.md into a safetensors
 * writer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "models/blip.h"
#include "models/dump_common.h"
#include "tensor/ops.h"

int vl_dump_gradcam(vl_ctx *c, vl_st_writer *w, vl_tensor *x) {
  if (!x || !x->grad)
    return vl_error(VL_ERR_INVALID, "dump: no gradient reached the Grad-CAM layer");
  const int64_t N = x->shape[1] - 1, D = x->shape[2];
  vl_tensor *acts = vl_new_f32(c, 2, N, D), *grad = vl_new_f32(c, 2, N, D);
  vl_tensor *cam = vl_new_f32(c, 1, N);
  float *alpha = vl_ctx_alloc(c, (size_t)D * sizeof *alpha);
  if (!acts || !grad || !cam || !alpha) return vl_last_error_code();
  memcpy(acts->data, vl_f32(x) + D, (size_t)(N * D) * sizeof(float));
  memcpy(grad->data, x->grad + D, (size_t)(N * D) * sizeof(float));
  for (int64_t i = 0; i < N; i++)
    for (int64_t d = 0; d < D; d++)
      alpha[d] += vl_f32(grad)[i * D + d] / (float)N;
  for (int64_t i = 0; i < N; i++) {
    double s = 0;
    for (int64_t d = 0; d < D; d++)
      s += (double)alpha[d] * vl_f32(acts)[i * D + d];
    vl_f32(cam)[i] = s > 0 ? (float)s : 0.0f;
  }
  int64_t s2[2] = {N, D};
  int rc = vl_dump_add(w, "gradcam.acts", acts, 2, s2);
  if (!rc) rc = vl_dump_add(w, "gradcam.grad", grad, 2, s2);
  if (!rc) rc = vl_dump_add(w, "gradcam", cam, 1, &N);
  return rc;
}

static int dump_run(vl_ctx *c, const vl_blip *m, const vl_dump_opts *o, vl_tensor *pixels,
                    vl_tensor *ids, vl_st_writer *w) {
  const int Lv = (int)m->vcfg.n_layers, Lt = (int)m->tcfg.n_layers;
  const bool caption = m->kind == VL_BLIP_CAPTION;
  const bool target = caption ? o->has_target : true;
  if (!caption && o->has_target)
    vl_log("dump: image-text matching always targets itm_logits[0, 1]; "
           "--target-pos/--target-id are ignored");
  const int64_t T = ids->numel, V = m->tcfg.vocab;
  int rc = caption ? vl_dump_check_target(o, T, V, "dump") : VL_OK;
  if (rc) return rc;
  vl_ctx_set_recording(c, target);
  vl_blip_run r = {.pixels = pixels, .ids = ids};
  r.vision_layer_in = vl_ctx_alloc(c, (size_t)Lv * sizeof(vl_tensor *));
  r.self_attn = vl_ctx_alloc(c, (size_t)Lt * sizeof(vl_tensor *));
  r.cross_attn = vl_ctx_alloc(c, (size_t)Lt * sizeof(vl_tensor *));
  if (!r.vision_layer_in || !r.self_attn || !r.cross_attn) return vl_last_error_code();
  if (!o->attn) r.self_attn = r.cross_attn = NULL;
  if ((rc = vl_blip_forward(c, m, &r))) return rc;
  const int64_t N = r.vision_out->shape[1], Dv = r.vision_out->shape[2];
  int64_t pos_shape = T;
  vl_tensor *pos = vl_dump_position_ids(c, T);
  if (!pos) return vl_last_error_code();
  int64_t s2[2] = {N, Dv}, s3[3];
  rc = vl_dump_add(w, "input_ids", ids, 1, &pos_shape);
  if (!rc) rc = vl_dump_add(w, "pixel_values", pixels, 4, pixels->shape);
  if (!rc) rc = vl_dump_add(w, "position_ids", pos, 1, &pos_shape);
  if (!rc) rc = vl_dump_add(w, "vision_out", r.vision_out, 2, s2);
  if (!rc && caption) {
    int64_t sl[2] = {T, V};
    rc = vl_dump_add(w, "logits", r.logits, 2, sl);
  }
  if (!rc && !caption) rc = vl_dump_add(w, "itm_logits", r.itm_logits, 2, r.itm_logits->shape);
  char name[64];
  for (int l = 0; o->attn && !rc && l < Lt; l++) {
    const int64_t H = m->tcfg.n_heads;
    s3[0] = H, s3[1] = T, s3[2] = T;
    snprintf(name, sizeof name, "attn.%d", l);
    rc = vl_dump_add(w, name, r.self_attn[l], 3, s3);
    s3[2] = N;
    snprintf(name, sizeof name, "cross_attn.%d", l);
    if (!rc) rc = vl_dump_add(w, name, r.cross_attn[l], 3, s3);
  }
  if (rc || !target) return rc;
  vl_tensor *score = caption ? r.logits : r.itm_logits;
  rc = vl_dump_backward_at(c, score, caption ? o->target_pos * V + o->target_id : 1);
  if (rc) return rc;
  return vl_dump_gradcam(c, w, r.vision_layer_in[Lv - 1]);
}

int vl_blip_dump(const vl_blip *m, const vl_dump_opts *o, vl_st_writer *w) {
  if (!o->image_path) return vl_error(VL_ERR_INVALID, "blip: an image is required (--image)");
  vl_image *img = vl_image_load(o->image_path, 0);
  if (!img) return vl_last_error_code();
  vl_ctx *c = vl_ctx_new();
  int64_t *ids = NULL, n = 0;
  int rc = VL_OK;
  if (!c) rc = vl_error(VL_ERR_NOMEM, "dump: out of memory");
  if (!rc && o->ids) {
    n = o->n_ids;
  } else if (!rc && o->prompt) {
    rc = vl_blip_prompt_ids(m, o->prompt, &ids, &n);
  } else if (!rc && m->kind == VL_BLIP_CAPTION) {
    /* HF generate() without text: [bos] */
    ids = malloc(sizeof *ids);
    if (ids) ids[0] = m->tcfg.bos, n = 1;
  } else if (!rc) {
    rc = vl_error(VL_ERR_INVALID, "dump: image-text matching needs --prompt or --ids");
  }
  if (!rc && n < 1) rc = vl_error(VL_ERR_INVALID, "dump: no input ids");
  vl_tensor *pixels = rc ? NULL : vl_blip_pixels(c, m, img, NULL);
  vl_tensor *tids = rc ? NULL : vl_new(c, VL_I64, 1, &n);
  if (!rc && (!pixels || !tids)) rc = vl_last_error_code();
  if (!rc) {
    memcpy(tids->data, o->ids && !ids ? o->ids : ids, (size_t)n * sizeof(int64_t));
    rc = dump_run(c, m, o, pixels, tids, w);
  }
  free(ids);
  vl_ctx_free(c);
  vl_image_free(img);
  return rc;
}
