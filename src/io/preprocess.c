/* Hugging Face image-processor steps; see preprocess.h. */
#include "io/preprocess.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

int vl_shortest_edge_size(int width, int height, int shortest, int max_size, int *out_width,
                          int *out_height) {
  if (width <= 0 || height <= 0 || shortest <= 0)
    return vl_error(VL_ERR_INVALID, "shortest-edge resize: bad sizes (image %dx%d, edge %d)", width,
                    height, shortest);
  int sh = width <= height ? width : height, lo = width <= height ? height : width;
  /* Python: int(requested_new_short * long / short), a true division. */
  double new_long_d = (double)((int64_t)shortest * lo) / sh;
  if (new_long_d > (double)(1 << 30))
    return vl_error(VL_ERR_LIMIT, "shortest-edge resize: %dx%d to edge %d is too large", width,
                    height, shortest);
  int new_short = shortest, new_long = (int)new_long_d;
  if (max_size > 0) {
    if (max_size <= shortest)
      return vl_error(VL_ERR_INVALID, "max_size %d must be greater than the shortest edge %d",
                      max_size, shortest);
    if (new_long > max_size) {
      new_short = (int)((double)((int64_t)max_size * new_short) / new_long);
      new_long = max_size;
    }
  }
  if (new_short <= 0 || new_long <= 0)
    return vl_error(VL_ERR_INVALID, "shortest-edge resize of %dx%d gives an empty image", width,
                    height);
  *out_width = width <= height ? new_short : new_long;
  *out_height = width <= height ? new_long : new_short;
  return VL_OK;
}

int vl_smart_resize(int height, int width, int factor, int64_t min_pixels, int64_t max_pixels,
                    int *out_height, int *out_width) {
  if (height <= 0 || width <= 0 || factor <= 0)
    return vl_error(VL_ERR_INVALID, "smart_resize: bad sizes %dx%d, factor %d", width, height,
                    factor);
  int hi = height > width ? height : width, lo = height > width ? width : height;
  if ((double)hi / lo > 200)
    return vl_error(VL_ERR_INVALID, "smart_resize: aspect ratio of %dx%d is over 200", width,
                    height);
  /* rint: round half to even under the default rounding mode, as Python's round() */
  double h_bar = rint((double)height / factor) * factor;
  double w_bar = rint((double)width / factor) * factor;
  if (h_bar < factor) h_bar = factor;
  if (w_bar < factor) w_bar = factor;
  if (max_pixels > 0 && h_bar * w_bar > (double)max_pixels) {
    double beta = sqrt((double)height * width / (double)max_pixels);
    h_bar = fmax(factor, floor(height / beta / factor) * factor);
    w_bar = fmax(factor, floor(width / beta / factor) * factor);
  } else if (min_pixels > 0 && h_bar * w_bar < (double)min_pixels) {
    double beta = sqrt((double)min_pixels / ((double)height * width));
    h_bar = ceil(height * beta / factor) * factor;
    w_bar = ceil(width * beta / factor) * factor;
  }
  if (h_bar > 65536 || w_bar > 65536)
    return vl_error(VL_ERR_LIMIT, "smart_resize: %dx%d would become %.0fx%.0f", width, height,
                    w_bar, h_bar);
  *out_height = (int)h_bar;
  *out_width = (int)w_bar;
  return VL_OK;
}

int vl_qwen_patchify(const float *chw, int height, int width, int patch, int merge, int temporal,
                     float *out) {
  if (patch <= 0 || merge <= 0 || temporal <= 0 || height % (patch * merge) ||
      width % (patch * merge))
    return vl_error(VL_ERR_INVALID, "qwen patchify: %dx%d is not a multiple of %d x %d", width,
                    height, patch, merge);
  int gh = height / patch, gw = width / patch;
  size_t cols = (size_t)3 * temporal * patch * patch, row = 0;
  for (int bh = 0; bh < gh / merge; bh++)
    for (int bw = 0; bw < gw / merge; bw++)
      for (int mh = 0; mh < merge; mh++)
        for (int mw = 0; mw < merge; mw++, row++) {
          float *o = out + row * cols;
          int y0 = (bh * merge + mh) * patch, x0 = (bw * merge + mw) * patch;
          for (int c = 0; c < 3; c++)
            for (int t = 0; t < temporal; t++)
              for (int py = 0; py < patch; py++) {
                const float *src = chw + ((size_t)c * height + y0 + py) * width + x0;
                memcpy(o, src, (size_t)patch * sizeof(float));
                o += patch;
              }
        }
  return VL_OK;
}

/* Python floor division, for a negative numerator too. */
static int floor_div2(int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

vl_image *vl_image_center_crop(const vl_image *img, int crop_width, int crop_height) {
  if (!img || crop_width <= 0 || crop_height <= 0) {
    vl_error(VL_ERR_INVALID, "centre crop: bad crop size %dx%d", crop_width, crop_height);
    return NULL;
  }
  vl_image *out = vl_image_new(crop_width, crop_height, img->channels);
  if (!out) return NULL;
  int top = floor_div2(img->height - crop_height), left = floor_div2(img->width - crop_width);
  int ch = img->channels;
  for (int y = 0; y < crop_height; y++) {
    int sy = y + top;
    if (sy < 0 || sy >= img->height) continue; /* zero padding */
    int x0 = left < 0 ? -left : 0;
    int x1 = img->width - left < crop_width ? img->width - left : crop_width;
    if (x1 <= x0) continue;
    memcpy(out->pixels + ((size_t)y * crop_width + x0) * ch,
           img->pixels + ((size_t)sy * img->width + (x0 + left)) * ch, (size_t)(x1 - x0) * ch);
  }
  return out;
}

int vl_image_to_chw(const vl_image *img, double rescale, const float mean[3], const float std[3],
                    float *out) {
  if (!img || img->channels != 3 || !out)
    return vl_error(VL_ERR_INVALID, "to CHW: need a 3-channel image");
  if (std)
    for (int c = 0; c < 3; c++)
      if (!(std[c] != 0.0f)) return vl_error(VL_ERR_INVALID, "normalise: std[%d] is 0", c);
  size_t hw = (size_t)img->width * img->height;
  for (int c = 0; c < 3; c++) {
    float *o = out + (size_t)c * hw;
    for (size_t i = 0; i < hw; i++) {
      float v = (float)((double)img->pixels[i * 3 + c] * rescale);
      if (mean && std) v = (v - mean[c]) / std[c];
      o[i] = v;
    }
  }
  return VL_OK;
}

void vl_preprocess_cfg_default(vl_preprocess_cfg *cfg) {
  static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  memset(cfg, 0, sizeof *cfg);
  cfg->do_resize = 1;
  cfg->resample = VL_RESAMPLE_BICUBIC;
  cfg->do_rescale = 1;
  cfg->rescale_factor = 1.0 / 255.0;
  cfg->do_normalize = 1;
  memcpy(cfg->mean, mean, sizeof mean);
  memcpy(cfg->std, std, sizeof std);
}

/* Reads an optional boolean; absent keeps *dst. */
static int get_bool(const cJSON *root, const char *key, int *dst, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!v || cJSON_IsNull(v)) return VL_OK;
  if (!cJSON_IsBool(v)) return vl_error(VL_ERR_FORMAT, "%s: '%s' must be true or false", name, key);
  *dst = cJSON_IsTrue(v);
  return VL_OK;
}

static int get_int(const cJSON *v, int *dst, const char *key, const char *name) {
  if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 65536 ||
      v->valuedouble != (double)(int)v->valuedouble)
    return vl_error(VL_ERR_FORMAT, "%s: '%s' must be an integer in 1..65536", name, key);
  *dst = (int)v->valuedouble;
  return VL_OK;
}

static int get_triple(const cJSON *root, const char *key, float dst[3], const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!v || cJSON_IsNull(v)) return VL_OK;
  if (cJSON_IsNumber(v)) { /* a single value for all channels */
    dst[0] = dst[1] = dst[2] = (float)v->valuedouble;
    return VL_OK;
  }
  if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3)
    return vl_error(VL_ERR_FORMAT, "%s: '%s' must be a list of 3 numbers", name, key);
  for (int i = 0; i < 3; i++) {
    const cJSON *e = cJSON_GetArrayItem(v, i);
    if (!cJSON_IsNumber(e))
      return vl_error(VL_ERR_FORMAT, "%s: '%s'[%d] is not a number", name, key, i);
    dst[i] = (float)e->valuedouble;
  }
  return VL_OK;
}

/* size: int (shortest edge unless square_default), {"height","width"} or
 * {"shortest_edge"} — transformers' get_size_dict. */
static int get_size(const cJSON *v, int square_default, int *w, int *h, int *shortest,
                    const char *key, const char *name) {
  if (cJSON_IsNumber(v)) {
    int s = 0;
    if (get_int(v, &s, key, name) < 0) return VL_ERR_FORMAT;
    if (square_default) {
      *w = *h = s;
      *shortest = 0;
    } else {
      *shortest = s;
    }
    return VL_OK;
  }
  if (cJSON_IsObject(v)) {
    const cJSON *se = cJSON_GetObjectItemCaseSensitive(v, "shortest_edge");
    const cJSON *hh = cJSON_GetObjectItemCaseSensitive(v, "height");
    const cJSON *ww = cJSON_GetObjectItemCaseSensitive(v, "width");
    if (hh && ww) {
      *shortest = 0;
      if (get_int(hh, h, "height", name) < 0 || get_int(ww, w, "width", name) < 0)
        return VL_ERR_FORMAT;
      return VL_OK;
    }
    if (se) return get_int(se, shortest, "shortest_edge", name);
  }
  return vl_error(VL_ERR_FORMAT, "%s: '%s' must be an integer, {height, width} or {shortest_edge}",
                  name, key);
}

int vl_preprocess_cfg_parse(vl_preprocess_cfg *cfg, const char *json, const char *name) {
  if (!name) name = "preprocessor_config.json";
  vl_preprocess_cfg_default(cfg);
  cJSON *root = cJSON_Parse(json ? json : "");
  if (!root || !cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return vl_error(VL_ERR_FORMAT, "%s: not a JSON object", name);
  }
  int rc = VL_OK;
  if ((rc = get_bool(root, "do_resize", &cfg->do_resize, name)) < 0 ||
      (rc = get_bool(root, "do_center_crop", &cfg->do_center_crop, name)) < 0 ||
      (rc = get_bool(root, "do_rescale", &cfg->do_rescale, name)) < 0 ||
      (rc = get_bool(root, "do_normalize", &cfg->do_normalize, name)) < 0 ||
      (rc = get_triple(root, "image_mean", cfg->mean, name)) < 0 ||
      (rc = get_triple(root, "image_std", cfg->std, name)) < 0)
    goto done;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "resample");
  if (v && !cJSON_IsNull(v)) {
    if (!cJSON_IsNumber(v) || !vl_resample_name((int)v->valuedouble) ||
        v->valuedouble != (double)(int)v->valuedouble) {
      rc = vl_error(VL_ERR_FORMAT, "%s: 'resample' must be a Pillow filter number 0..5", name);
      goto done;
    }
    cfg->resample = (vl_resample)(int)v->valuedouble;
  }
  v = cJSON_GetObjectItemCaseSensitive(root, "rescale_factor");
  if (v && !cJSON_IsNull(v)) {
    if (!cJSON_IsNumber(v)) {
      rc = vl_error(VL_ERR_FORMAT, "%s: 'rescale_factor' must be a number", name);
      goto done;
    }
    cfg->rescale_factor = v->valuedouble;
  }
  v = cJSON_GetObjectItemCaseSensitive(root, "image_processor_type");
  if (cJSON_IsString(v) && strstr(v->valuestring, "Qwen2VL")) {
    /* min/max pixels: top-level keys, else size.shortest_edge/longest_edge */
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(root, "size");
    const cJSON *mn = cJSON_GetObjectItemCaseSensitive(root, "min_pixels");
    const cJSON *mx = cJSON_GetObjectItemCaseSensitive(root, "max_pixels");
    if (!mn && cJSON_IsObject(sz)) mn = cJSON_GetObjectItemCaseSensitive(sz, "shortest_edge");
    if (!mx && cJSON_IsObject(sz)) mx = cJSON_GetObjectItemCaseSensitive(sz, "longest_edge");
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(root, "patch_size");
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(root, "merge_size");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "temporal_patch_size");
    if (!cJSON_IsNumber(mn) || !cJSON_IsNumber(mx) || mn->valuedouble < 1 ||
        mx->valuedouble < mn->valuedouble) {
      rc = vl_error(VL_ERR_FORMAT, "%s: Qwen2-VL config needs min_pixels <= max_pixels", name);
      goto done;
    }
    cfg->qwen = 1;
    cfg->min_pixels = (int64_t)mn->valuedouble;
    cfg->max_pixels = (int64_t)mx->valuedouble;
    cfg->patch_size = 14, cfg->merge_size = 2, cfg->temporal_patch_size = 2;
    if ((ps && get_int(ps, &cfg->patch_size, "patch_size", name) < 0) ||
        (ms && get_int(ms, &cfg->merge_size, "merge_size", name) < 0) ||
        (ts && get_int(ts, &cfg->temporal_patch_size, "temporal_patch_size", name) < 0)) {
      rc = VL_ERR_FORMAT;
      goto done;
    }
    goto done;
  }
  v = cJSON_GetObjectItemCaseSensitive(root, "size");
  if (cfg->do_resize) {
    if (!v) {
      rc = vl_error(VL_ERR_FORMAT, "%s: do_resize is set but 'size' is missing", name);
      goto done;
    }
    if ((rc = get_size(v, 0, &cfg->size_width, &cfg->size_height, &cfg->shortest_edge, "size",
                       name)) < 0)
      goto done;
    cfg->resize_shortest_edge = cfg->shortest_edge > 0;
  }
  if (cfg->do_center_crop) {
    int dummy = 0;
    v = cJSON_GetObjectItemCaseSensitive(root, "crop_size");
    if (!v) {
      rc = vl_error(VL_ERR_FORMAT, "%s: do_center_crop is set but 'crop_size' is missing", name);
      goto done;
    }
    if ((rc = get_size(v, 1, &cfg->crop_width, &cfg->crop_height, &dummy, "crop_size", name)) < 0)
      goto done;
    if (dummy) {
      rc = vl_error(VL_ERR_FORMAT, "%s: 'crop_size' must give height and width", name);
      goto done;
    }
  }
done:
  cJSON_Delete(root);
  return rc;
}

int vl_preprocess(const vl_preprocess_cfg *cfg, const vl_image *img, float **out, int *out_w,
                  int *out_h, vl_image **resized_u8) {
  *out = NULL;
  if (resized_u8) *resized_u8 = NULL;
  if (!img || img->channels != 3)
    return vl_error(VL_ERR_INVALID, "preprocess: need a 3-channel RGB image");
  vl_image *cur = vl_image_clone(img);
  if (!cur) return vl_last_error_code();
  if (cfg->do_resize) {
    int w = cfg->size_width, h = cfg->size_height;
    if (cfg->qwen && vl_smart_resize(cur->height, cur->width, cfg->patch_size * cfg->merge_size,
                                     cfg->min_pixels, cfg->max_pixels, &h, &w) < 0) {
      vl_image_free(cur);
      return vl_last_error_code();
    }
    if (!cfg->qwen && cfg->resize_shortest_edge &&
        vl_shortest_edge_size(cur->width, cur->height, cfg->shortest_edge, 0, &w, &h) < 0) {
      vl_image_free(cur);
      return vl_last_error_code();
    }
    vl_image *r = vl_image_resize(cur, w, h, cfg->resample);
    vl_image_free(cur);
    if (!r) return vl_last_error_code();
    cur = r;
  }
  if (cfg->do_center_crop) {
    vl_image *r = vl_image_center_crop(cur, cfg->crop_width, cfg->crop_height);
    vl_image_free(cur);
    if (!r) return vl_last_error_code();
    cur = r;
  }
  float *buf = malloc((size_t)3 * cur->width * cur->height * sizeof(float));
  if (!buf) {
    vl_image_free(cur);
    return vl_error(VL_ERR_NOMEM, "preprocess: out of memory");
  }
  int rc = vl_image_to_chw(cur, cfg->do_rescale ? cfg->rescale_factor : 1.0,
                           cfg->do_normalize ? cfg->mean : NULL,
                           cfg->do_normalize ? cfg->std : NULL, buf);
  if (rc < 0) {
    free(buf);
    vl_image_free(cur);
    return rc;
  }
  *out = buf;
  *out_w = cur->width;
  *out_h = cur->height;
  if (resized_u8)
    *resized_u8 = cur;
  else
    vl_image_free(cur);
  return VL_OK;
}
