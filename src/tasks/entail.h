/* `vlens entail`: visual entailment with a captioning BLIP through the
 * OFA-style prompt the Shapes World trainer uses (tasks/train.h): ids
 * [DEC] tokens(` does the image describe " {hypothesis} "?`), then the
 * logits of yes / maybe / no at the last position decide entailment /
 * neutral / contradiction (softmax over those three gives probs). The
 * explanation is that of the decision: the chosen answer's logit at the last
 * position, from one recorded forward and one backward. */
#ifndef VL_TASKS_ENTAIL_H
#define VL_TASKS_ENTAIL_H

#include "tasks/describe.h"

typedef struct {
  int label;         /* vl_label order: 0 entailment, 1 neutral, 2 contradiction */
  double probs[3];   /* same order */
  vl_heatmap **maps; /* cfg->n_methods entries, or NULL when none asked */
  vl_faithfulness *faith;
  int n_methods;
  double ms_decide, ms_explain; /* ms_explain: the maps, faithfulness left out */
  double ms_faithfulness;       /* the curves (cfg->faithfulness), 0 without */
  int forwards, backwards;
} vl_entail_result;

/* explain: whether to explain the decision with cfg's methods. */
int vl_entail(const vl_blip *m, const vl_image *img, const char *hypothesis,
              const vl_explain_cfg *cfg, bool explain, vl_entail_result *res);
void vl_entail_result_free(vl_entail_result *res);

const char *vl_entail_label_name(int label);

/* The token ids vl_entail records for hypothesis (*ids malloc'd, n of them)
 * and the answer token of each label (vl_label order): the decision of label
 * l is the logit of answer[l] at position n - 1. */
int vl_entail_ids(const vl_blip *m, const char *hypothesis, int64_t **ids, int64_t *n,
                  int64_t answer[3]);

struct cJSON *vl_entail_to_json(const vl_entail_result *res, const char *model,
                                const char *hypothesis, const char *image_path, int image_w,
                                int image_h, double ms_load);

#endif
