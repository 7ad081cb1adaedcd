/* A multi-turn chat with a Qwen2/Qwen3 model: the conversation is kept as
 * messages and every turn's prompt is the model's chat template rendered
 * over the whole history (text/chat.h), so what the model sees is exactly
 * what transformers' apply_chat_template would give it. The KV cache lives
 * across turns: a new prompt is compared token by token with what the cache
 * holds, only the part after the common prefix is prefilled.
 *
 * History: each assistant turn is stored as its answer, with the reasoning
 * (Qwen3 <think> block) kept as reasoning_content, so the template drops it
 * from earlier turns as Qwen3's own template does. */
#ifndef VL_TASKS_CHAT_SESSION_H
#define VL_TASKS_CHAT_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "tasks/generate.h"
#include "text/chat.h"

typedef struct {
  const char *system;   /* system prompt, or NULL */
  int enable_thinking;  /* Qwen3: -1 template default, 0 off, 1 on */
  vl_generate_opts gen; /* sampling, max_tokens per turn, kv_dtype (stop strings: not used) */
  int64_t context;      /* KV cache positions; 0: min(max_position_embeddings, 8192) */
} vl_chat_session_opts;

/* Greedy, 512 tokens per turn, thinking off, no system prompt. */
vl_chat_session_opts vl_chat_session_default_opts(void);

typedef struct vl_chat_session vl_chat_session;

/* m and tok stay owned by the caller and must outlive the session.
 * NULL + vl_error on bad options / no memory. */
vl_chat_session *vl_chat_session_new(const vl_qwen_text *m, const vl_tokenizer *tok,
                                     vl_chat_template t, const vl_chat_session_opts *o);
void vl_chat_session_free(vl_chat_session *s);

/* One turn: appends the user message, renders the prompt, generates (cb gets
 * each token's text as vl_generate's callback, raw: reasoning included), then
 * appends the assistant turn. *reply (may be NULL): malloc'd raw reply text.
 * On failure the history is left as it was before the call. */
int vl_chat_session_send(vl_chat_session *s, const char *user_text, vl_generate_cb cb, void *user,
                         char **reply, vl_generate_stats *stats);
/* Forgets the conversation (the system prompt stays) and the cache. */
void vl_chat_session_reset(vl_chat_session *s);

/* The messages so far (system first when set); valid until the next call. */
const vl_chat_message *vl_chat_session_messages(const vl_chat_session *s, size_t *n);
/* The prompt text of the last turn ("" before the first). */
const char *vl_chat_session_last_prompt(const vl_chat_session *s);
/* Prompt tokens of the last turn that came from the cache, not prefilled. */
size_t vl_chat_session_reused(const vl_chat_session *s);

/* Streaming filter that hides <think>...</think> from text handed out in
 * pieces (a tag may be split across pieces). */
typedef struct {
  int in_think;
  int answer_started;
  char hold[16];
  size_t n_hold;
} vl_think_filter;

/* Zero-initialise, then feed each piece: writes what may be shown to out
 * (room for len + 16 bytes) and returns its length. Leading blank space of
 * the answer is dropped. At the end call once with len 0 and flush 1 for
 * held-back bytes (a tail that could have begun a tag). */
size_t vl_think_filter_feed(vl_think_filter *f, const char *text, size_t len, int flush, char *out);

#endif
