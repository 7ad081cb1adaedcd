/* `vlens dump` for CLIPModel: one forward (and with a target one backward of
 * logits_per_image[0, 0]), the tensors of ../shared/spec/dump.md into a
 * safetensors writer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "models/clip.h"
#include "models/dump_common.h"
#include "tensor/ops.h"

static int dump_run(vl_ctx *c, const vl_clip *m, const vl_dump_opts *o, vl_tensor *pixels,
                    vl_tensor *ids, vl_st_writer *w) {
  const int Lv = (int)m->vcfg.n_layers, Lt = (int)m->tcfg.n_layers;
  if (o->has_target && (o->target_pos != 0 || o->target_id != 0))
    return vl_error(VL_ERR_INVALID,
                    "dump: CLIP's score is logits_per_image[0, 0] (one image, one text): give "
                    "--target-pos 0 --target-id 0, not %lld / %lld",
                    (long long)o->target_pos, (long long)o->target_id);
  vl_ctx_set_recording(c, o->has_target);
  vl_clip_run r = {.pixels = pixels, .ids = ids};
  r.vision_layer_in = vl_ctx_alloc(c, (size_t)Lv * sizeof(vl_tensor *));
  r.vision_attn = vl_ctx_alloc(c, (size_t)Lv * sizeof(vl_tensor *));
  r.text_attn = vl_ctx_alloc(c, (size_t)Lt * sizeof(vl_tensor *));
  if (!r.vision_layer_in || !r.vision_attn || !r.text_attn) return vl_last_error_code();
  if (!o->attn) r.vision_attn = r.text_attn = NULL;
  int rc = vl_clip_forward(c, m, &r);
  if (rc) return rc;
  const int64_t T = ids->numel, N = r.vision_hidden->shape[1], Dv = m->vcfg.hidden;
  vl_tensor *pos = vl_dump_position_ids(c, T);
  if (!pos) return vl_last_error_code();
  int64_t s2[2] = {N, Dv}, s3[3];
  rc = vl_dump_add(w, "input_ids", ids, 1, &T);
  if (!rc) rc = vl_dump_add(w, "pixel_values", pixels, 4, pixels->shape);
  if (!rc) rc = vl_dump_add(w, "position_ids", pos, 1, &T);
  if (!rc) rc = vl_dump_add(w, "vision_out", r.vision_hidden, 2, s2);
  if (!rc) rc = vl_dump_add(w, "vision_pooled", r.vision_pooled, 2, r.vision_pooled->shape);
  if (!rc) rc = vl_dump_add(w, "image_embeds", r.image_embeds, 2, r.image_embeds->shape);
  if (!rc) rc = vl_dump_add(w, "text_embeds", r.text_embeds, 2, r.text_embeds->shape);
  if (!rc)
    rc = vl_dump_add(w, "logits_per_image", r.logits_per_image, 2, r.logits_per_image->shape);
  char name[64];
  for (int l = 0; o->attn && !rc && l < Lt; l++) {
    s3[0] = m->tcfg.n_heads, s3[1] = T, s3[2] = T;
    snprintf(name, sizeof name, "attn.%d", l);
    rc = vl_dump_add(w, name, r.text_attn[l], 3, s3);
  }
  for (int l = 0; o->attn && !rc && l < Lv; l++) {
    s3[0] = m->vcfg.n_heads, s3[1] = N, s3[2] = N;
    snprintf(name, sizeof name, "vision_attn.%d", l);
    rc = vl_dump_add(w, name, r.vision_attn[l], 3, s3);
  }
  if (rc || !o->has_target) return rc;
  rc = vl_backward(c, r.logits_per_image, NULL);
  if (rc) return rc;
  return vl_dump_gradcam(c, w, r.vision_layer_in[Lv - 1]);
}

int vl_clip_dump(const vl_clip *m, const vl_dump_opts *o, vl_st_writer *w) {
  if (!o->image_path) return vl_error(VL_ERR_INVALID, "clip: an image is required (--image)");
  if (!o->ids && !o->prompt)
    return vl_error(VL_ERR_INVALID, "clip: a text is required (--prompt or --ids)");
  vl_image *img = vl_image_load(o->image_path, 0);
  if (!img) return vl_last_error_code();
  vl_ctx *c = vl_ctx_new();
  int64_t *ids = NULL, n = 0;
  int rc = VL_OK;
  if (!c) rc = vl_error(VL_ERR_NOMEM, "dump: out of memory");
  if (!rc && o->ids) {
    n = o->n_ids;
  } else if (!rc) {
    rc = vl_clip_text_ids(m, o->prompt, &ids, &n);
  }
  if (!rc && n < 1) rc = vl_error(VL_ERR_INVALID, "dump: no input ids");
  vl_tensor *pixels = rc ? NULL : vl_clip_pixels(c, m, img, NULL);
  vl_tensor *tids = rc ? NULL : vl_new(c, VL_I64, 1, &n);
  if (!rc && (!pixels || !tids)) rc = vl_last_error_code();
  if (!rc) {
    memcpy(tids->data, ids ? ids : o->ids, (size_t)n * sizeof(int64_t));
    rc = dump_run(c, m, o, pixels, tids, w);
  }
  free(ids);
  vl_ctx_free(c);
  vl_image_free(img);
  return rc;
}
