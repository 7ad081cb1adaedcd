/* libFuzzer target: arbitrary bytes into the image decoder. Any result is
 * fine except a crash, a sanitizer report or a leak. A small pixel limit
 * keeps each run fast; decoded images are also resized to exercise the
 * resampler on odd shapes. */
#include <stddef.h>
#include <stdint.h>

#include "io/image.h"
#include "io/resize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vl_image *img = vl_image_decode(data, size, (int64_t)1 << 20, "fuzz");
  if (img) {
    int w = 1 + (img->width * 3) % 61, h = 1 + (img->height * 5) % 47;
    vl_image *r = vl_image_resize(img, w, h, VL_RESAMPLE_BICUBIC);
    vl_image_free(r);
    vl_image_free(img);
  }
  return 0;
}
