/* Text generation with a Qwen2/Qwen3 decoder: chunked prefill of the prompt
 * into a KV cache, then token-by-token decode (inference mode, one arena
 * reset per step so memory does not grow), sampling, and streaming of the
 * decoded text through a callback. Stops at max_tokens, an EOS id of the
 * model (config.json / generation_config.json), a stop string, or when the
 * callback asks. */
#ifndef VL_TASKS_GENERATE_H
#define VL_TASKS_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/qwen_text.h"
#include "models/sampler.h"
#include "text/tokenizer.h"

typedef struct {
  vl_sampler_params sampling;
  int max_tokens;          /* > 0 */
  const char *const *stop; /* n_stop stop strings (need a tokenizer) */
  int n_stop;
  bool ignore_eos;
  vl_dtype kv_dtype; /* KV cache storage: VL_F32 (0, exact) or VL_F16 (half the bytes) */
  /* Products round activations to the weights' format first (BF16 /
   * Q8_0 on decode steps, BF16 in prefill; vl_qwen_fwd.round_activations):
   * faster, not exact. */
  bool round_activations;
} vl_generate_opts;

typedef enum {
  VL_STOP_MAX_TOKENS = 0,
  VL_STOP_EOS,
  VL_STOP_STRING,
  VL_STOP_CALLBACK,
} vl_stop_reason;

typedef struct {
  size_t n_prompt, n_generated;
  double prefill_s, decode_s;
  vl_stop_reason reason;
} vl_generate_stats;

/* Called once per generated token: id, and the text that became final with
 * it (may be empty while a possible stop string is held back, or hold
 * several tokens' text; NULL without a tokenizer). The text never includes a
 * matched stop string or special tokens. Return nonzero to stop. */
typedef int (*vl_generate_cb)(void *user, int32_t id, const char *text, size_t len);

/* tok may be NULL (ids only; then no stop strings). out_ids / n_out (may be
 * NULL): malloc'd generated ids, EOS included when it ended the run. stats
 * may be NULL. VL_OK or a negative status with vl_error set. */
int vl_generate(const vl_qwen_text *m, const vl_tokenizer *tok, const int32_t *prompt,
                size_t n_prompt, const vl_generate_opts *opt, vl_generate_cb cb, void *user,
                int32_t **out_ids, size_t *n_out, vl_generate_stats *stats);

#endif
