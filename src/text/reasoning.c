/* Reasoning / answer split; see reasoning.h. */
#include "text/reasoning.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"

static int is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

static const char *find(const char *p, size_t n, const char *needle, int last) {
  size_t k = strlen(needle);
  const char *hit = NULL;
  for (size_t i = 0; i + k <= n; i++) {
    if (!memcmp(p + i, needle, k)) {
      hit = p + i;
      if (!last) break;
    }
  }
  return hit;
}

static char *trimmed_copy(const char *p, size_t n) {
  while (n && is_ws(*p))
    p++, n--;
  while (n && is_ws(p[n - 1]))
    n--;
  char *s = malloc(n + 1);
  if (!s) return NULL;
  if (n) memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

/* Drops trailing whitespace and end-of-turn markers, repeatedly. */
static size_t strip_end_markers(const char *p, size_t n) {
  static const char *markers[] = {"<|im_end|>", "<|endoftext|>"};
  for (;;) {
    while (n && is_ws(p[n - 1]))
      n--;
    int cut = 0;
    for (size_t m = 0; m < sizeof markers / sizeof *markers; m++) {
      size_t k = strlen(markers[m]);
      if (n >= k && !memcmp(p + n - k, markers[m], k)) {
        n -= k;
        cut = 1;
      }
    }
    if (!cut) return n;
  }
}

int vl_reasoning_split(const char *text, size_t len, vl_reasoning *out) {
  if (!out) return vl_error(VL_ERR_INVALID, "reasoning: no output given");
  memset(out, 0, sizeof *out);
  if (!text) return vl_error(VL_ERR_INVALID, "reasoning: no text given");
  len = strip_end_markers(text, len);
  const char *r = NULL, *a = text;
  size_t rn = 0, an = len;
  const char *close = find(text, len, "</think>", 1);
  const char *open = find(text, len, "<think>", 0);
  if (close) {
    /* Reasoning: up to the last </think>, minus the first <think> (before it). */
    r = text;
    rn = (size_t)(close - text);
    if (open && open < close) {
      rn -= (size_t)(open + strlen("<think>") - text);
      r = open + strlen("<think>");
    }
    a = close + strlen("</think>");
    an = (size_t)(text + len - a);
    out->has_think = 1;
  } else if (open) {
    /* Unterminated: any text before <think> is kept as the answer. */
    r = open + strlen("<think>");
    rn = (size_t)(text + len - r);
    an = (size_t)(open - text);
    out->has_think = 1;
    out->truncated = 1;
  }
  out->reasoning = trimmed_copy(r ? r : "", rn);
  out->answer = trimmed_copy(a, an);
  if (!out->reasoning || !out->answer) {
    vl_reasoning_free(out);
    return vl_error(VL_ERR_NOMEM, "reasoning: out of memory");
  }
  return VL_OK;
}

void vl_reasoning_free(vl_reasoning *r) {
  if (!r) return;
  free(r->reasoning);
  free(r->answer);
  r->reasoning = r->answer = NULL;
}

char *vl_reasoning_answer(const char *text) {
  vl_reasoning r;
  if (vl_reasoning_split(text, text ? strlen(text) : 0, &r) < 0) return NULL;
  free(r.reasoning);
  return r.answer;
}
