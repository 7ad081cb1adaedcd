/* `vlens enrich`: image -> captioner (BLIP) -> three elements (subject,
 * scene, state) -> LLM prompt (text/enrich_prompt.h: the caption inside
 * VISION_START/VISION_END, role and constraints, length anchor, forbidden
 * words, thinking off by default) -> Qwen2/Qwen3 generation (temperature 0.6
 * / top-p 0.95 by default) -> reasoning stripped -> one description per
 * image -> metrics (text/metrics.h) per image and over the set.
 *
 * Several images: by default one LLM call whose prompt holds the captions as
 * numbered, separated items; the answer is split back into one description
 * per image (vl_enrich_split_items; an item the model did not write comes
 * back as ""). With `separate`, one call per image.
 *
 * Expected key elements for the recall metric: the keywords file when given
 * (the same list for every image; its words also go into the prompt as
 * elements to mention); otherwise, for a Shapes World image, the colours and
 * shapes of its objects from the manifest.jsonl next to it (the line whose
 * "image" is the file's name; ground truth, never shown to the LLM), as
 * Chinese words ("红色", "圆形") with --lang zh. */
#ifndef VL_TASKS_ENRICH_H
#define VL_TASKS_ENRICH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/blip.h"
#include "models/qwen_text.h"
#include "text/chat.h"
#include "text/enrich_prompt.h"
#include "text/metrics.h"
#include "text/tokenizer.h"

typedef struct {
  vl_enrich_options prompt;   /* lang, word range, forbidden words, temperature, top-p, thinking
                                 (its keywords are set from keywords_file) */
  const char *keywords_file;  /* NULL: manifest lookup only */
  const char *caption_prompt; /* BLIP text prefix; NULL = "" (unconditional) */
  int caption_max_length;     /* BLIP tokens in total; 0 = 40 */
  int max_tokens;             /* LLM tokens per call; 0 = from the word range (see enrich.c) */
  uint64_t seed;
  vl_dtype kv_dtype;      /* LLM KV cache: VL_F32 (0) or VL_F16 (generate.h) */
  bool round_activations; /* LLM products on rounded activations (generate.h) */
  bool separate;          /* one LLM call per image */
  bool keep_reasoning;    /* return the <think> text */
} vl_enrich_run_opts;

/* vl_enrich_default_options() for the prompt, everything else 0 / NULL. */
vl_enrich_run_opts vl_enrich_run_defaults(void);

typedef struct {
  char *image;   /* the path given */
  char *caption; /* the captioner's text */
  vl_enrich_elements elements;
  char *prompt;      /* the whole LLM prompt (chat template applied) */
  char *description; /* "" when the model wrote nothing for this image */
  char *reasoning;   /* keep_reasoning: the call's reasoning ("" when none); else NULL */
  vl_word_list keywords;
  const char *keywords_source; /* "file", "manifest" or "none" */
  vl_text_metrics metrics;
} vl_enrich_item;

typedef struct {
  vl_enrich_item *items;
  size_t n;
  size_t items_found; /* descriptions found in the answers (the rest are "") */
  size_t llm_calls, prompt_tokens, generated_tokens;
  vl_metrics_total total;
  double caption_ms, generate_ms, total_ms;
} vl_enrich_result;

/* Runs the pipeline on n image paths (1..VL_ENRICH_ITEMS_MAX). captioner: a
 * BLIP captioning model; llm + tok: the text model and its tokenizer; t: its
 * chat template. Every image is decoded before any model runs, so a missing
 * or broken image fails fast. VL_OK, or a negative status with a message
 * naming the image / file; *out is then empty. */
int vl_enrich_run(const vl_blip *captioner, const vl_qwen_text *llm, const vl_tokenizer *tok,
                  vl_chat_template t, const char *const *images, size_t n,
                  const vl_enrich_run_opts *opt, vl_enrich_result *out);
void vl_enrich_result_free(vl_enrich_result *r);

/* Expected objects of a Shapes World image from the manifest.jsonl in its
 * folder, in lang's words (vl_word_list_from_manifest_lang). VL_OK with
 * *found = 1 and the words, VL_OK with *found = 0 when there is no manifest
 * or no line for the file, or an error naming the manifest (unreadable, a
 * bad line for this image). */
int vl_enrich_manifest_keywords(const char *image_path, vl_enrich_lang lang, vl_word_list *out,
                                int *found);

#endif
