/* vlens — public C API.
 *
 * Vision-language models on CPU, and for every word a model says, a picture
 * of where in the image it looked. Handles are opaque; every call that can
 * fail returns NULL or a negative status and leaves a message for
 * vlens_last_error(). The library never exits or prints to stdout.
 */
#ifndef VLENS_H
#define VLENS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VLENS_VERSION "0.1.0"

const char *vlens_version(void);
/* Message of the last failed call on this thread ("" if none). */
const char *vlens_last_error(void);
/* Worker threads for all compute (<= 0: all cores or VLENS_THREADS). */
void vlens_set_threads(int n);

/* ---- images ------------------------------------------------------------ */
typedef struct vlens_image vlens_image;

/* Decodes PNG, JPEG, BMP, GIF (first frame) or WebP into 8-bit RGB. Images
 * over max_pixels (0: the default limit, 64 megapixels) are refused. */
vlens_image *vlens_image_load(const char *path, int64_t max_pixels);
int vlens_image_width(const vlens_image *img);
int vlens_image_height(const vlens_image *img);
/* Row-major RGB, width * height * 3 bytes, owned by the image. */
const uint8_t *vlens_image_pixels(const vlens_image *img);
int vlens_image_save_png(const vlens_image *img, const char *path);
void vlens_image_free(vlens_image *img);

#ifdef __cplusplus
}
#endif
#endif
