/* Training data for the embedded enrich LLM on Shapes World: (prompt,
 * target) pairs and a text corpus for its tokenizer.
 *
 * Prompt: the user message of `vlens enrich` for the scene's caption
 * (vl_enrich_user_prompt, text/enrich_prompt.h), so the model trains on
 * exactly what it will see; the chat template is the trainer's business
 * (text/chat.h). Target: the description grammar in caption mode
 * (io/shapes_describe.h), which states only what the caption determines, so
 * the model is never taught to guess, in the language of the prompt
 * (opt->lang: English, or Chinese from the grammar's zh word table). Pair
 * (seed, index) is a pure function of those numbers and the options: scene
 * `index` of `seed`, template choices seeded by both. */
#ifndef VL_TEXT_SHAPES_ENRICH_H
#define VL_TEXT_SHAPES_ENRICH_H

#include <stddef.h>
#include <stdint.h>

#include "text/enrich_prompt.h"

/* Word range the prompt asks for by default: what the grammar writes. */
#define VL_SHAPES_ENRICH_MIN_WORDS 15
#define VL_SHAPES_ENRICH_MAX_WORDS 80
/* The same for Chinese, in CJK characters. */
#define VL_SHAPES_ENRICH_MIN_CHARS 20
#define VL_SHAPES_ENRICH_MAX_CHARS 140

/* opt NULL = enrich defaults (English) with the word range above; with
 * opt->lang VL_ENRICH_ZH the prompt and the target are Chinese. *prompt, *target
 * malloc'd (caller frees); *caption (when not NULL) gets a malloc'd copy of
 * the scene's caption. VL_OK or a negative vl_status (outputs NULL). */
int vl_shapes_enrich_pair(uint64_t seed, int64_t index, const vl_enrich_options *opt, char **prompt,
                          char **target, char **caption);

/* Tokenizer corpus: for scenes 0..n-1 of seed, the caption, the
 * scene-mode description and the training conversation (enrich prompt and
 * caption-mode target through the Qwen3 chat template, thinking off), scenes
 * separated by blank lines; with zh, the Chinese scene-mode description and
 * Chinese conversation of each scene follow the English ones, their
 * descriptions one word per line (vl_shapes_describe_zh_words: BPE then
 * learns word-sized Chinese tokens). malloc'd (len
 * without the NUL), or NULL + vl_error. */
char *vl_shapes_enrich_corpus_lang(uint64_t seed, int64_t n, int zh, size_t *len);
/* English only: vl_shapes_enrich_corpus_lang(seed, n, 0, len). */
char *vl_shapes_enrich_corpus(uint64_t seed, int64_t n, size_t *len);

#endif
