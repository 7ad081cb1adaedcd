/* Animated GIF output through giflib (GIF89a, Netscape loop extension).
 * Each frame gets its own local palette: exact when the frame has at most
 * 256 distinct colours, otherwise giflib's median-cut GifQuantizeBuffer. */
#ifndef VL_RENDER_GIF_H
#define VL_RENDER_GIF_H

#include "io/image.h"

#define VL_GIF_DEFAULT_DELAY_MS 500

/* Writes n_frames images of equal size (1, 3 or 4 channels; alpha ignored).
 * delays_ms: per-frame display time, or NULL for VL_GIF_DEFAULT_DELAY_MS;
 * GIF stores hundredths of a second, so each delay is rounded to the nearest
 * 10 ms and kept within [20 ms, 655350 ms] (browsers slow down shorter ones).
 * loop_count: 0 loops forever, k > 0 plays k+1 times (Netscape semantics).
 * Errors name the path; a partly written file is removed. */
int vl_gif_write(const char *path, const vl_image *const *frames, int n_frames,
                 const int *delays_ms, int loop_count);

#endif
