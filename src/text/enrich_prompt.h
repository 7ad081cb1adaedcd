/* The model-independent half of `vlens enrich`: a captioner's terse caption
 * -> three elements (subject, scene, state) -> the user message for a small
 * text LLM; and the LLM's answer for several images -> one description each.
 * The command chains: vl_enrich_user_prompt[_multi] -> vl_chat_render (with
 * opt.enable_thinking, text/chat.h) -> generate with opt.temperature /
 * opt.top_p -> vl_reasoning_answer (text/reasoning.h) -> vl_enrich_split_items.
 *
 * Elements. A Shapes World caption ("a large red circle, a small blue square
 * and a small green triangle.", spec shapes-world.md) is parsed exactly:
 * subject = the objects, scene = the plain single-colour background, state =
 * their sizes, colours and left-to-right arrangement. Any other caption goes
 * through a documented heuristic (lower-cased, a leading "a picture of" /
 * "an image of" / "a photo of" / "there is" / "there are" dropped):
 *   scene   = from the first scene preposition (" in ", " on ", " at ",
 *             " near ", " under ", " beside ", " next to ", " inside ",
 *             " by ", " against ", " over ", " behind ", " outside ") to
 *             the end; "not stated" when none;
 *   state   = from the first word of the rest that ends in "ing" or is
 *             "is" / "are" / "with" to the end of the rest; "not stated";
 *   subject = what is left (the whole caption when nothing splits).
 *
 * The caption is cleaned before use: control characters become spaces,
 * runs of whitespace collapse, chat special tokens "<|...|>" and the words
 * VISION_START / VISION_END are removed (so a caption cannot close the
 * visual block or open a chat turn). The markers are plain words, not
 * Qwen-VL's <|vision_start|> special tokens, which a text LLM never saw. */
#ifndef VL_TEXT_ENRICH_PROMPT_H
#define VL_TEXT_ENRICH_PROMPT_H

#include <stddef.h>

#define VL_ENRICH_CAPTION_MAX 4096 /* bytes, after cleaning */
#define VL_ENRICH_ITEMS_MAX 64     /* images in one call */

typedef enum { VL_ENRICH_EN = 0, VL_ENRICH_ZH } vl_enrich_lang;

typedef struct {
  char *caption; /* the cleaned caption */
  char *subject, *scene, *state;
  int shapes_world; /* parsed as a Shapes World caption */
} vl_enrich_elements;

typedef struct {
  const char *const *keywords; /* elements the description must mention */
  size_t n_keywords;
  const char *const *forbidden; /* words it must not use */
  size_t n_forbidden;
  int min_words, max_words; /* length anchor; zh counts CJK characters */
  vl_enrich_lang lang;
  /* Generation settings for the command (not used in the prompt text). */
  float temperature, top_p;
  int enable_thinking; /* 0: Qwen3's empty think block (thinking off) */
} vl_enrich_options;

/* No keywords or forbidden words, 60-120 words (en) / 100-200 characters
 * (zh), en, temperature 0.6, top-p 0.95, thinking off. */
vl_enrich_options vl_enrich_default_options(void);

/* "MIN-MAX" with 1 <= MIN <= MAX <= 2000, e.g. "40-80". */
int vl_enrich_parse_range(const char *s, int *min, int *max);
/* "en" or "zh". */
int vl_enrich_parse_lang(const char *s, vl_enrich_lang *out);

/* VL_OK, VL_ERR_INVALID (NULL, empty after cleaning, invalid UTF-8),
 * VL_ERR_LIMIT (too long) or VL_ERR_NOMEM. On failure *out is empty. */
int vl_enrich_elements_extract(const char *caption, vl_enrich_elements *out);
void vl_enrich_elements_free(vl_enrich_elements *e);

/* The user message for one caption / n captions (numbered items [1]..[n],
 * each in its own VISION_START/VISION_END block). malloc'd, or NULL +
 * vl_error (bad caption, bad options). opt NULL = defaults. */
char *vl_enrich_user_prompt(const char *caption, const vl_enrich_options *opt);
char *vl_enrich_user_prompt_multi(const char *const *captions, size_t n,
                                  const vl_enrich_options *opt);

/* The whole LLM prompt: the user message above as the only turn of chat
 * template t, generation prompt on, opt->enable_thinking passed (so Qwen3
 * gets its empty think block by default). malloc'd, or NULL + vl_error. */
char *vl_enrich_chat_prompt(int t, const char *const *captions, size_t n,
                            const vl_enrich_options *opt);

/* Splits an answer to a multi-item prompt into n descriptions. Items start
 * at a line that begins (after spaces, '#', '*', '-') with the next expected
 * number as "[k]", "k.", "k)", "k:", "(k)", "Item k", "Image k",
 * "Description k" or "第k"; numbers out of sequence are text. Without any
 * marker, n == 1 takes the whole answer and n > 1 takes blank-line
 * separated paragraphs when there are exactly n. items[0..n-1] are set
 * (malloc'd, "" for a missing item; trimmed, inner line breaks -> spaces).
 * Returns how many items were found (0..n), or a negative vl_status (then
 * items are all NULL). */
int vl_enrich_split_items(const char *answer, size_t n, char **items);
void vl_enrich_items_free(char **items, size_t n);

#endif
