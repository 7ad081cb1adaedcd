/* Qwen chat templates in C; see chat.h. Each branch below mirrors a line of
 * the official Jinja template (quoted in tools/gen_chat_goldens.py). */
#include "text/chat.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/file.h"
#include "io/json.h"
#include "text/textbuf.h"

#define QWEN2_DEFAULT_SYSTEM "You are a helpful assistant."
#define QWEN25_DEFAULT_SYSTEM "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

vl_chat_options vl_chat_default_options(void) {
  vl_chat_options o = {1, -1};
  return o;
}

const char *vl_chat_template_name(vl_chat_template t) {
  switch (t) {
  case VL_CHAT_QWEN2: return "qwen2";
  case VL_CHAT_QWEN25: return "qwen2.5";
  case VL_CHAT_QWEN3: return "qwen3";
  }
  return "?";
}

/* ---- detection ------------------------------------------------------- */

int vl_chat_detect(const char *jinja, const char *model_type, vl_chat_template *out) {
  if (!out) return vl_error(VL_ERR_INVALID, "chat template: no output given");
  if (jinja && *jinja) {
    int chatml = strstr(jinja, "<|im_start|>") != NULL;
    if (chatml && strstr(jinja, "reasoning_content") && strstr(jinja, "last_query_index")) {
      *out = VL_CHAT_QWEN3;
      return VL_OK;
    }
    if (chatml && strstr(jinja, QWEN25_DEFAULT_SYSTEM) && strstr(jinja, "tool_response")) {
      *out = VL_CHAT_QWEN25;
      return VL_OK;
    }
    if (chatml && strstr(jinja, "'<|im_start|>system\\n" QWEN2_DEFAULT_SYSTEM "<|im_end|>\\n'") &&
        strstr(jinja, "loop.first and messages[0]['role'] != 'system'") && !strstr(jinja, "tool")) {
      *out = VL_CHAT_QWEN2;
      return VL_OK;
    }
    return vl_error(VL_ERR_UNSUPPORTED,
                    "chat template: not one of the known templates (Qwen2, Qwen2.5, Qwen3 "
                    "instruct); starts with \"%.40s\"",
                    jinja);
  }
  if (model_type && *model_type) {
    if (!strcmp(model_type, "qwen3") || !strcmp(model_type, "qwen3_moe")) {
      *out = VL_CHAT_QWEN3;
      return VL_OK;
    }
    if (!strcmp(model_type, "qwen2")) {
      *out = VL_CHAT_QWEN25;
      return VL_OK;
    }
    return vl_error(VL_ERR_UNSUPPORTED,
                    "chat template: model_type '%s' has no known chat template (known: qwen2, "
                    "qwen3, qwen3_moe)",
                    model_type);
  }
  return vl_error(VL_ERR_NOTFOUND, "chat template: neither a template nor a model_type given");
}

int vl_chat_detect_folder(const char *dir, vl_chat_template *out) {
  if (!dir) return vl_error(VL_ERR_INVALID, "chat template: no folder given");
  char path[4096];
  snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
  cJSON *tc = vl_json_load(path);
  if (!tc && vl_last_error_code() != VL_ERR_NOTFOUND) return vl_last_error_code();
  if (tc) {
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(tc, "chat_template");
    const char *jinja = NULL;
    if (cJSON_IsString(ct)) {
      jinja = ct->valuestring;
    } else if (cJSON_IsArray(ct)) {
      const cJSON *e;
      cJSON_ArrayForEach(e, ct) {
        const char *name = vl_json_str(e, "name", NULL);
        if (name && !strcmp(name, "default")) jinja = vl_json_str(e, "template", NULL);
      }
    }
    if (jinja) {
      int rc = vl_chat_detect(jinja, NULL, out);
      cJSON_Delete(tc);
      return rc < 0 ? vl_error_context("%s", path) : rc;
    }
    cJSON_Delete(tc);
  }
  snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
  char *jinja = vl_read_text_file(path, 1 << 24);
  if (jinja) {
    int rc = vl_chat_detect(jinja, NULL, out);
    free(jinja);
    return rc < 0 ? vl_error_context("%s", path) : rc;
  }
  snprintf(path, sizeof path, "%s/config.json", dir);
  cJSON *cfg = vl_json_load(path);
  if (!cfg) return vl_error_context("%s: no chat template found", dir);
  const char *mt = vl_json_str(cfg, "model_type", NULL);
  int rc = mt ? vl_chat_detect(NULL, mt, out)
              : vl_error(VL_ERR_NOTFOUND, "no chat_template and no model_type");
  cJSON_Delete(cfg);
  return rc < 0 ? vl_error_context("%s", path) : rc;
}

/* ---- rendering ------------------------------------------------------- */

typedef struct {
  const char *p;
  size_t n;
} span;

static int is_role(const vl_chat_message *m, const char *r) { return !strcmp(m->role, r); }

static int check_messages(const vl_chat_message *msgs, size_t n) {
  if (!msgs || n == 0) return vl_error(VL_ERR_INVALID, "chat: empty conversation");
  for (size_t i = 0; i < n; i++) {
    const vl_chat_message *m = &msgs[i];
    if (!m->role) return vl_error(VL_ERR_INVALID, "chat: message %zu has no role", i);
    if (!m->content) return vl_error(VL_ERR_INVALID, "chat: message %zu has no content", i);
    if (!is_role(m, "system") && !is_role(m, "user") && !is_role(m, "assistant") &&
        !is_role(m, "tool"))
      return vl_error(VL_ERR_INVALID,
                      "chat: message %zu: role '%s' is not system, user, assistant or tool", i,
                      m->role);
  }
  return VL_OK;
}

static void turn(vl_textbuf *b, const char *role, const char *content) {
  vl_textbuf_puts(b, "<|im_start|>");
  vl_textbuf_puts(b, role);
  vl_textbuf_puts(b, "\n");
  vl_textbuf_puts(b, content);
  vl_textbuf_puts(b, "<|im_end|>\n");
}

/* Shared tool-result grouping of Qwen2.5 and Qwen3. */
static void tool_turn(vl_textbuf *b, const vl_chat_message *msgs, size_t n, size_t i) {
  if (i == 0 || !is_role(&msgs[i - 1], "tool")) vl_textbuf_puts(b, "<|im_start|>user");
  vl_textbuf_puts(b, "\n<tool_response>\n");
  vl_textbuf_puts(b, msgs[i].content);
  vl_textbuf_puts(b, "\n</tool_response>");
  if (i + 1 == n || !is_role(&msgs[i + 1], "tool")) vl_textbuf_puts(b, "<|im_end|>\n");
}

static void render_qwen2(vl_textbuf *b, const vl_chat_message *msgs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i == 0 && !is_role(&msgs[0], "system"))
      vl_textbuf_puts(b, "<|im_start|>system\n" QWEN2_DEFAULT_SYSTEM "<|im_end|>\n");
    turn(b, msgs[i].role, msgs[i].content);
  }
}

static void render_qwen25(vl_textbuf *b, const vl_chat_message *msgs, size_t n) {
  if (is_role(&msgs[0], "system"))
    turn(b, "system", msgs[0].content);
  else
    vl_textbuf_puts(b, "<|im_start|>system\n" QWEN25_DEFAULT_SYSTEM "<|im_end|>\n");
  for (size_t i = 0; i < n; i++) {
    const vl_chat_message *m = &msgs[i];
    if (is_role(m, "user") || (is_role(m, "system") && i > 0) || is_role(m, "assistant"))
      turn(b, m->role, m->content);
    else if (is_role(m, "tool"))
      tool_turn(b, msgs, n, i);
  }
}

/* Python's str.strip/lstrip/rstrip('\n') on a span. */
static span lstrip_nl(span s) {
  while (s.n && *s.p == '\n')
    s.p++, s.n--;
  return s;
}
static span rstrip_nl(span s) {
  while (s.n && s.p[s.n - 1] == '\n')
    s.n--;
  return s;
}

/* Last occurrence of needle in s, or NULL. */
static const char *last_of(span s, const char *needle) {
  size_t k = strlen(needle);
  const char *hit = NULL;
  for (size_t i = 0; i + k <= s.n; i++)
    if (!memcmp(s.p + i, needle, k)) hit = s.p + i;
  return hit;
}
static const char *first_of(span s, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= s.n; i++)
    if (!memcmp(s.p + i, needle, k)) return s.p + i;
  return NULL;
}

static int starts_ends(const char *s, const char *pre, const char *suf) {
  size_t n = strlen(s), a = strlen(pre), z = strlen(suf);
  return n >= a && n >= z && !memcmp(s, pre, a) && !memcmp(s + n - z, suf, z);
}

static void render_qwen3(vl_textbuf *b, const vl_chat_message *msgs, size_t n) {
  if (is_role(&msgs[0], "system")) turn(b, "system", msgs[0].content);
  /* The last user message that is not a wrapped tool response. */
  size_t last_query = n - 1;
  for (size_t k = n; k-- > 0;) {
    if (is_role(&msgs[k], "user") &&
        !starts_ends(msgs[k].content, "<tool_response>", "</tool_response>")) {
      last_query = k;
      break;
    }
  }
  for (size_t i = 0; i < n; i++) {
    const vl_chat_message *m = &msgs[i];
    if (is_role(m, "user") || (is_role(m, "system") && i > 0)) {
      turn(b, m->role, m->content);
    } else if (is_role(m, "assistant")) {
      span content = {m->content, strlen(m->content)};
      span reasoning = {"", 0};
      if (m->reasoning_content) {
        reasoning.p = m->reasoning_content;
        reasoning.n = strlen(m->reasoning_content);
      } else {
        const char *end = first_of(content, "</think>");
        if (end) {
          /* content.split('</think>')[-1].lstrip('\n') */
          const char *last_end = last_of(content, "</think>") + strlen("</think>");
          span after = {last_end, (size_t)(content.p + content.n - last_end)};
          /* .split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
          span before = rstrip_nl((span){content.p, (size_t)(end - content.p)});
          const char *open = last_of(before, "<think>");
          if (open) {
            open += strlen("<think>");
            before.n -= (size_t)(open - before.p);
            before.p = open;
          }
          reasoning = lstrip_nl(before);
          content = lstrip_nl(after);
        }
      }
      vl_textbuf_puts(b, "<|im_start|>assistant\n");
      if (i > last_query && (i + 1 == n || reasoning.n > 0)) {
        span r = rstrip_nl(lstrip_nl(reasoning));
        vl_textbuf_puts(b, "<think>\n");
        vl_textbuf_append(b, r.p, r.n);
        vl_textbuf_puts(b, "\n</think>\n\n");
        content = lstrip_nl(content);
      }
      vl_textbuf_append(b, content.p, content.n);
      vl_textbuf_puts(b, "<|im_end|>\n");
    } else if (is_role(m, "tool")) {
      tool_turn(b, msgs, n, i);
    }
  }
}

char *vl_chat_render(vl_chat_template t, const vl_chat_message *msgs, size_t n,
                     const vl_chat_options *opt) {
  vl_chat_options o = opt ? *opt : vl_chat_default_options();
  if (check_messages(msgs, n) < 0) return NULL;
  vl_textbuf b = {0};
  switch (t) {
  case VL_CHAT_QWEN2: render_qwen2(&b, msgs, n); break;
  case VL_CHAT_QWEN25: render_qwen25(&b, msgs, n); break;
  case VL_CHAT_QWEN3: render_qwen3(&b, msgs, n); break;
  default: vl_error(VL_ERR_INVALID, "chat: unknown template id %d", (int)t); return NULL;
  }
  if (o.add_generation_prompt) {
    vl_textbuf_puts(&b, "<|im_start|>assistant\n");
    if (t == VL_CHAT_QWEN3 && o.enable_thinking == 0)
      vl_textbuf_puts(&b, "<think>\n\n</think>\n\n");
  }
  return vl_textbuf_take(&b);
}
