/* Pictures of explanations into an output folder (-o DIR):
 *  - word_NN_<word>_<method>.png : the overlay of every explained word and method;
 *  - figure_word_NN_<word>.png   : the three-panel figure (image | heatmap | overlay)
 *                                  of the word's first method;
 *  - heads_word_NN_<word>.png    : the decoder cross-attention of the word, one panel
 *                                  per layer (rows) and head (columns), the head mean last;
 *  - caption.gif                 : one frame per generated token, the caption so far
 *                                  written under the image (the token's map over it);
 *  - entail_<method>.png, figure_entail.png : the entailment decision's maps;
 *  - report.html                 : self-contained page, hover a word for its maps.
 * Images are scaled up to at least 192 px (whole factors, crisp). */
#ifndef VL_TASKS_EXPLAIN_OUTPUT_H
#define VL_TASKS_EXPLAIN_OUTPUT_H

#include "tasks/describe.h"
#include "tasks/entail.h"

/* desc and/or ent may be NULL (not shown). dir is created when missing.
 * *n_files (optional) receives how many files were written. */
int vl_explain_write_outputs(const char *dir, const vl_image *img, const char *model,
                             const vl_describe_result *desc, const char *hypothesis,
                             const vl_entail_result *ent, int *n_files);

#endif
