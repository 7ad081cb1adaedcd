/* `vlens describe`: caption an image with a BLIP model and explain every
 * generated token / word (or the words named) with the requested methods.
 *
 * Explanations reuse the generation: greedy generation first, then ONE
 * recorded forward over prompt + generated text (explain/blip_explain.h)
 * and one backward per target. A word of one token shares its token's maps
 * (no second backward). JSON: ../shared/spec/cli-json.md "describe". */
#ifndef VL_TASKS_DESCRIBE_H
#define VL_TASKS_DESCRIBE_H

#include <stdbool.h>
#include <stdint.h>

#include "explain/blip_explain.h"
#include "explain/faithfulness.h"
#include "explain/heatmap.h"
#include "models/blip.h"

/* What to explain and how, shared by describe / entail / eval. */
typedef struct {
  char **methods; /* owned, validated names */
  int n_methods;
  vl_blip_explain_opts ex; /* ex.methods points into methods */
  bool faithfulness;
} vl_explain_cfg;

/* Parses a comma-separated --method list ("all": every registered method);
 * unknown names: VL_ERR_NOTFOUND listing the known ones. cfg->ex gets the
 * defaults (last layer, all heads, no post-processing, seed 0). */
int vl_explain_cfg_parse(vl_explain_cfg *cfg, const char *methods_csv);
void vl_explain_cfg_free(vl_explain_cfg *cfg);

/* Folder of the model: dir when given, else the embedded default
 * (models/shapes-blip; the error names that folder and -m). Loads it. */
vl_blip *vl_task_load_blip(const char *dir, char *path_out, int cap);
/* Last path component of dir ("shapes-blip"), into buf. */
void vl_model_name(const char *dir, char *buf, int cap);

typedef struct {
  const char *prompt;  /* NULL or "": generation starts from [DEC] alone */
  const char *explain; /* NULL or "all": everything; "none": nothing; "w1,w2": those words */
  int max_length;      /* tokens in total, 0: the model's (vl_blip.max_length) */
} vl_describe_opts;

typedef struct {
  int64_t id, query;      /* the token, the position whose logits produced it */
  char *text;             /* decoded alone */
  bool special;           /* [PAD], [MASK]...: left out of the text and the words */
  double logprob;         /* from the recorded forward */
  vl_heatmap **maps;      /* n_methods entries, or NULL when not explained */
  vl_faithfulness *faith; /* n_methods entries with --faithfulness, else NULL */
} vl_describe_token;

typedef struct {
  char *text;
  int first, n_tokens; /* tokens[first .. first + n_tokens); n_tokens 0 for prompt words */
  vl_heatmap **maps;   /* as for tokens */
  vl_faithfulness *faith;
} vl_describe_word;

typedef struct {
  char *text; /* the caption (prompt included, as HF decodes it) */
  int image_w, image_h;
  int n_tokens, n_words;
  vl_describe_token *tokens;
  vl_describe_word *words;
  int n_methods;
  double ms_generate, ms_explain;
  int forwards, backwards; /* recorded forwards / backwards spent on explanations */
  int gw, gh;
  /* per generated token: every decoder layer x head cross-attention map
   * (raw), n_layers * n_heads * gw * gh floats, for the layer x head grid;
   * NULL when nothing was generated */
  float *head_maps;
  int n_layers, n_heads;
} vl_describe_result;

int vl_describe(const vl_blip *m, const vl_image *img, const vl_describe_opts *o,
                const vl_explain_cfg *cfg, vl_describe_result *res);
void vl_describe_result_free(vl_describe_result *res);

/* The contract's describe document (plus "faithfulness" in a heatmap when
 * measured). image_path may be NULL. */
struct cJSON *vl_describe_to_json(const vl_describe_result *res, const vl_explain_cfg *cfg,
                                  const char *model, const char *prompt, const char *image_path,
                                  double ms_load);

/* Heatmap object with "faithfulness" added when f != NULL. */
struct cJSON *vl_heatmap_json_faith(const vl_heatmap *m, const vl_faithfulness *f);

/* Splits text into words: whitespace separates, each punctuation mark is a
 * word of its own. *words malloc'd strings (free each and the array). */
int vl_split_words(const char *text, char ***words, int *n);

#endif
