/* `vlens eval DIR`: a BLIP model on a Shapes World set (manifest.jsonl,
 * ../shared/spec/shapes-world.md):
 *  - captions: greedy caption vs the gold one (exact match, word accuracy);
 *  - entailment: every hypothesis through tasks/entail.h; accuracy, per
 *    template (read from "template" when present, else from the text),
 *    confusion matrix (rows gold, columns predicted);
 *  - explanations, scored as the spec says: each colour / shape word of the
 *    gold caption (teacher forcing: one recorded forward over the caption,
 *    one backward per word) targets the object of its phrase ("caption
 *    words"); and, the targets the project's bar counts, each colour /
 *    shape word of a phrase the model generated right (its i-th phrase equal
 *    to the gold i-th phrase, explained on the model's own caption:
 *    "generated words"); the decision
 *    of a hypothesis with one referent and gold label entailment / neutral
 *    targets that referent. Pointing game and mass in box per method, next
 *    to the random method (always run) and the centre baseline, and the
 *    chance level (mean share of cell centres inside the grown boxes: what a
 *    uniformly random peak scores on average);
 *  - with cfg->faithfulness, deletion / insertion curves and AUCs
 *    (explain-methods.md "Faithfulness", explain/faithfulness.h) of every
 *    method on the first faithfulness_max caption-word targets and the first
 *    faithfulness_max decision targets, beside the same curves for the
 *    random order (one seeded permutation, the same for every method);
 *  - latency per caption, decision and explanation target. */
#ifndef VL_TASKS_EVAL_H
#define VL_TASKS_EVAL_H

#include "tasks/describe.h"

#define VL_EVAL_MAX_METHODS 16

typedef struct {
  int max_scenes;       /* 0: all */
  int max_length;       /* caption tokens in total, 0: default */
  int faithfulness_max; /* with cfg->faithfulness: targets per kind, 0: every one */
} vl_eval_opts;

typedef struct {
  double hits, mass; /* sums over targets */
  int n;
} vl_eval_score;

/* Faithfulness sums over n targets: AUCs and the curves step by step. */
typedef struct {
  double deletion_auc, insertion_auc;
  double deletion[VL_FAITH_STEPS + 1], insertion[VL_FAITH_STEPS + 1];
  int n;
} vl_eval_faith;

typedef struct {
  int scenes;
  int caption_exact, caption_words_right, caption_words;
  int caption_order_only; /* wrong captions with the gold phrases, each once, in another order */
  int scenes_by_objects[4], exact_by_objects[4]; /* by the manifest's object count 1..4 */
  int hypotheses, correct;
  int confusion[3][3];          /* [gold][predicted], vl_label order */
  int tpl_n[5], tpl_correct[5]; /* vl_template order */
  int n_methods;                /* cfg methods + random when missing */
  char methods[VL_EVAL_MAX_METHODS][64];
  vl_eval_score word[VL_EVAL_MAX_METHODS], decision[VL_EVAL_MAX_METHODS];
  vl_eval_score center_word, center_decision;
  double chance_word, chance_decision; /* sums of the chance levels */
  /* words of correctly generated phrases (no faithfulness curves) */
  vl_eval_score gen_word[VL_EVAL_MAX_METHODS], center_gen_word;
  double chance_gen_word;
  double ms_load, ms_caption, ms_decide, ms_explain;
  int explain_targets;
  /* --faithfulness (all zero without it) */
  bool faithfulness;
  int faithfulness_max;
  uint64_t faithfulness_seed;
  vl_eval_faith faith_word[VL_EVAL_MAX_METHODS], faith_decision[VL_EVAL_MAX_METHODS];
  vl_eval_faith faith_word_random, faith_decision_random; /* the random order */
  double ms_faithfulness;
  int faith_targets;
} vl_eval_result;

int vl_eval(const vl_blip *m, const char *dir, const vl_eval_opts *o, const vl_explain_cfg *cfg,
            vl_eval_result *res);

/* Template of a hypothesis text: VL_TPL_* or -1. */
int vl_eval_template_of(const char *text);
const char *vl_eval_template_name(int tpl);

/* The report as text (malloc'd) and as JSON. */
char *vl_eval_report_text(const vl_eval_result *r, const char *model, const char *dir);
struct cJSON *vl_eval_to_json(const vl_eval_result *r, const char *model, const char *dir);

/* *reordered: generated holds gold's phrases ("a {size} {colour} {shape}"),
 * as many times each, in another order (the caption's only fault is the
 * order; a caption of one phrase never is). */
int vl_eval_phrases_reordered(const char *generated, const char *gold, bool *reordered);

#endif
