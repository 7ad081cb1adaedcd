/* matplotlib's published 256-entry colormap tables (generated; see
 * tools/gen_colormaps.py). */
#ifndef VL_RENDER_COLORMAP_DATA_H
#define VL_RENDER_COLORMAP_DATA_H

extern const float vl_cmap_viridis[256][3];
extern const float vl_cmap_inferno[256][3];

#endif
