/* Chat templates of the Qwen text families, written out in C so that the
 * result is byte-for-byte the string Hugging Face's apply_chat_template
 * renders from the official Jinja `chat_template` (no general Jinja engine):
 *
 *   VL_CHAT_QWEN2   Qwen2-*-Instruct: every turn as <|im_start|>role\n...
 *                   <|im_end|>\n, "You are a helpful assistant." as system
 *                   prompt when the first message is not a system message.
 *   VL_CHAT_QWEN25  Qwen2.5-*-Instruct (model_type "qwen2" too): the same
 *                   turns, default system prompt "You are Qwen, created by
 *                   Alibaba Cloud. You are a helpful assistant.", tool
 *                   results grouped in one user turn as <tool_response>.
 *   VL_CHAT_QWEN3   Qwen3: no default system prompt; an assistant turn
 *                   after the last real user query keeps its reasoning as
 *                   <think>\n...\n</think>\n\n, earlier ones lose it;
 *                   enable_thinking=false appends the empty
 *                   <think>\n\n</think>\n\n to the generation prompt.
 *
 * Roles: system, user, assistant, tool. Not covered (an error, never a
 * silently different string): the `tools` list and assistant tool_calls,
 * other roles, an empty conversation. Tests: tests/test_chat.c against
 * outputs of the real templates (tools/gen_chat_goldens.py). */
#ifndef VL_TEXT_CHAT_H
#define VL_TEXT_CHAT_H

#include <stddef.h>

typedef enum { VL_CHAT_QWEN2 = 0, VL_CHAT_QWEN25, VL_CHAT_QWEN3 } vl_chat_template;

typedef struct {
  const char *role;    /* "system", "user", "assistant", "tool" */
  const char *content; /* required, may be "" */
  /* Qwen3 assistant turns: the `reasoning_content` field; NULL = not given
   * (then a "</think>" inside content is split as the template does). */
  const char *reasoning_content;
} vl_chat_message;

typedef struct {
  int add_generation_prompt; /* append "<|im_start|>assistant\n" */
  /* Qwen3's enable_thinking: -1 not passed (the template's default: think),
   * 0 false (empty think block in the generation prompt), 1 true. */
  int enable_thinking;
} vl_chat_options;

/* add_generation_prompt 1, enable_thinking -1. */
vl_chat_options vl_chat_default_options(void);

/* Which template: from the Jinja text when given (recognisable markers of
 * each official template), else from config.json's model_type ("qwen3",
 * "qwen3_moe" -> Qwen3; "qwen2" -> Qwen2.5, the instruct models current
 * under that type). Either may be NULL. VL_ERR_UNSUPPORTED with a message
 * for a template or model type it does not know. */
int vl_chat_detect(const char *jinja, const char *model_type, vl_chat_template *out);
/* Same from a model folder: tokenizer_config.json's chat_template (string,
 * or the entry named "default" of a list), else chat_template.jinja, else
 * config.json's model_type. */
int vl_chat_detect_folder(const char *dir, vl_chat_template *out);

/* The prompt text (malloc'd, caller frees) or NULL + vl_error
 * (VL_ERR_INVALID for a bad conversation). opt NULL = defaults. */
char *vl_chat_render(vl_chat_template t, const vl_chat_message *msgs, size_t n,
                     const vl_chat_options *opt);

const char *vl_chat_template_name(vl_chat_template t); /* "qwen2", "qwen2.5", "qwen3" */

#endif
