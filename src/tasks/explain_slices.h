/* Every layer and every head at once (--layer all, --heads): heatmaps added
 * to the JSON method objects of describe / entail (README, "JSON: every
 * layer, every head"); the method's own heatmap object stays as it is.
 *  - "layers": for the methods that read one layer (gradcam: the vision
 *    blocks; attention: the decoder cross-attention layers), one heatmap
 *    object per layer, lowest first, with "layer" (its name, as in the main
 *    map) and "layer_index";
 *  - "heads": for the methods that read attention (attention, rollout,
 *    relevancy), one heatmap object per head with "head" (its index), at the
 *    layer of the main map; with both, each "layers" entry of attention holds
 *    the "heads" of its layer.
 * Each map is the method's raw map for that layer / head (--head, when given,
 * still picks the head of the "layers" entries), post-processed like the main
 * one (--smooth, --sharpen, min-max). The maps come from one recorded forward
 * of the same sequence and one backward per target. */
#ifndef VL_TASKS_EXPLAIN_SLICES_H
#define VL_TASKS_EXPLAIN_SLICES_H

#include <stdbool.h>

#include "tasks/describe.h"
#include "tasks/entail.h"

typedef struct {
  bool layers; /* --layer all */
  bool heads;  /* --heads */
} vl_slices_opts;

struct cJSON;

/* Layers / heads of a method for model m (0: it has none to choose). */
int vl_slices_n_layers(const vl_blip *m, const char *method);
int vl_slices_n_heads(const vl_blip *m, const char *method);

/* Adds the slices of target t to the method objects of `explanations` (an
 * object keyed by the method names of o; methods missing there are
 * skipped). r: a recording of the target's sequence. */
int vl_slices_add(vl_blip_rec *r, const vl_blip_target *t, const vl_blip_explain_opts *o,
                  const vl_slices_opts *so, struct cJSON *explanations);

/* A describe document (vl_describe_to_json of res): records prompt + caption
 * once and adds the slices to every explained token and word. */
int vl_describe_slices_json(const vl_blip *m, const vl_image *img, const char *prompt,
                            const vl_describe_result *res, const vl_explain_cfg *cfg,
                            const vl_slices_opts *so, struct cJSON *doc);

/* An entail document (vl_entail_to_json of res) for hypothesis. */
int vl_entail_slices_json(const vl_blip *m, const vl_image *img, const char *hypothesis,
                          const vl_entail_result *res, const vl_explain_cfg *cfg,
                          const vl_slices_opts *so, struct cJSON *doc);

#endif
