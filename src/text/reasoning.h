/* Splits a reasoning model's output into its <think>…</think> reasoning and
 * the answer. Follows Qwen3's own parsing (model card: cut after the LAST
 * "</think>", strip newlines from both parts) and also handles:
 *   - no think block at all: everything is the answer;
 *   - "</think>" without "<think>" (the prompt opened the block): the text
 *     before it is the reasoning;
 *   - "<think>" never closed (generation stopped mid-thought): everything
 *     after it is reasoning, the answer is empty and `truncated` is set;
 *   - a trailing end-of-turn marker (<|im_end|>, <|endoftext|>) is dropped.
 * Both parts are trimmed of surrounding whitespace (Qwen strips '\n'; spaces,
 * tabs and CRs at the edges go too, as the answer is used as clean text). */
#ifndef VL_TEXT_REASONING_H
#define VL_TEXT_REASONING_H

#include <stddef.h>

typedef struct {
  char *reasoning; /* malloc'd, "" when none */
  char *answer;    /* malloc'd, "" when none */
  int has_think;   /* a <think> or </think> tag was seen */
  int truncated;   /* <think> opened and never closed */
} vl_reasoning;

/* text: len bytes (NUL not needed). VL_OK, or VL_ERR_INVALID for NULL text,
 * VL_ERR_NOMEM. On failure *out holds no allocations. */
int vl_reasoning_split(const char *text, size_t len, vl_reasoning *out);
void vl_reasoning_free(vl_reasoning *r);

/* The answer alone (the default use): malloc'd, or NULL + vl_error. */
char *vl_reasoning_answer(const char *text);

#endif
