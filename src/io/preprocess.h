/* Image preprocessing as the Hugging Face "slow" image processors do it
 * (BlipImageProcessor, CLIPImageProcessor): resize with Pillow (resize.h),
 * centre crop, rescale by 1/255, normalise per channel, then channels-first
 * float. Each step mirrors a function of transformers' image_transforms.py;
 * the names say which. */
#ifndef VL_IO_PREPROCESS_H
#define VL_IO_PREPROCESS_H

#include "io/image.h"
#include "io/resize.h"

/* get_resize_output_image_size(size=shortest, default_to_square=False,
 * max_size): the shorter side becomes `shortest`, the longer one keeps the
 * aspect ratio truncated to an integer; max_size <= 0 means none. */
int vl_shortest_edge_size(int width, int height, int shortest, int max_size, int *out_width,
                          int *out_height);

/* center_crop: top = (H - crop_h) // 2 (floor), likewise left; parts of the
 * window outside the image are zero, as transformers pads. */
vl_image *vl_image_center_crop(const vl_image *img, int crop_width, int crop_height);

/* rescale + normalize + to channels-first: out[c][y][x] =
 * (float(pixel * rescale) - mean[c]) / std[c], with the product in double and
 * the rest in float32, as numpy does there. mean/std may be NULL (no
 * normalisation). img must have 3 channels; out holds 3*H*W floats. */
int vl_image_to_chw(const vl_image *img, double rescale, const float mean[3], const float std[3],
                    float *out);

/* What a preprocessor_config.json asks for. */
typedef struct {
  int do_resize;
  int resize_shortest_edge; /* 1: size is {"shortest_edge"} (CLIP); 0: fixed height x width */
  int size_width, size_height, shortest_edge;
  vl_resample resample;
  int do_center_crop, crop_width, crop_height;
  int do_rescale;
  double rescale_factor;
  int do_normalize;
  float mean[3], std[3];
  /* Qwen2-VL family (image_processor_type Qwen2VLImageProcessor): "size" is
   * {shortest_edge: min_pixels, longest_edge: max_pixels} and the resize is
   * smart_resize to multiples of patch_size * merge_size. */
  int qwen;
  int64_t min_pixels, max_pixels;
  int patch_size, merge_size, temporal_patch_size;
} vl_preprocess_cfg;

/* Qwen2-VL's smart_resize: both sides rounded (half to even, as Python's
 * round) to multiples of factor, then scaled into [min_pixels, max_pixels]
 * keeping the aspect ratio. Aspect ratios over 200 are refused. */
int vl_smart_resize(int height, int width, int factor, int64_t min_pixels, int64_t max_pixels,
                    int *out_height, int *out_width);

/* Qwen2-VL's pixel_values layout from one CHW image (the frame repeated
 * temporal times): rows (H/patch)*(W/patch) ordered by merge block, then
 * within the block; columns 3*temporal*patch*patch ordered (c, t, y, x).
 * H and W must be multiples of patch*merge. */
int vl_qwen_patchify(const float *chw, int height, int width, int patch, int merge, int temporal,
                     float *out);

/* Defaults of the BLIP/CLIP processors: bicubic, 1/255, OpenAI CLIP mean/std;
 * the caller sets the sizes. */
void vl_preprocess_cfg_default(vl_preprocess_cfg *cfg);

/* Parses a preprocessor_config.json text (keys: do_resize, size as int or
 * {height,width} or {shortest_edge}, resample, do_center_crop, crop_size,
 * do_rescale, rescale_factor, do_normalize, image_mean, image_std).
 * name_for_errors names the file in messages. */
int vl_preprocess_cfg_parse(vl_preprocess_cfg *cfg, const char *json, const char *name_for_errors);

/* Runs the whole pipeline (for Qwen: smart_resize, no crop; the caller
 * applies vl_qwen_patchify to the CHW result). On success *out is a malloc'd (1,3,H,W) float
 * buffer (free with free()) and *out_w, *out_h its size. If resized_u8 is not
 * NULL it receives the 8-bit image after resize and crop (caller frees). */
int vl_preprocess(const vl_preprocess_cfg *cfg, const vl_image *img, float **out, int *out_w,
                  int *out_h, vl_image **resized_u8);

#endif
