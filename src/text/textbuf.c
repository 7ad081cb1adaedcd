/* Growable text buffer; see textbuf.h. */
#include "text/textbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

static int reserve(vl_textbuf *b, size_t extra) {
  if (b->failed) return 0;
  if (extra > (size_t)-1 / 2 - b->len) {
    b->failed = 1;
    return 0;
  }
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return 1;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) {
    b->failed = 1;
    return 0;
  }
  b->data = p;
  b->cap = cap;
  return 1;
}

void vl_textbuf_append(vl_textbuf *b, const char *s, size_t n) {
  if (!reserve(b, n)) return;
  if (n) memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void vl_textbuf_puts(vl_textbuf *b, const char *s) { vl_textbuf_append(b, s, strlen(s)); }

void vl_textbuf_printf(vl_textbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = 1;
    return;
  }
  if (!reserve(b, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

char *vl_textbuf_take(vl_textbuf *b) {
  if (b->failed) {
    vl_textbuf_free(b);
    vl_error(VL_ERR_NOMEM, "text buffer: out of memory");
    return NULL;
  }
  if (!b->data && !reserve(b, 0)) {
    vl_textbuf_free(b);
    vl_error(VL_ERR_NOMEM, "text buffer: out of memory");
    return NULL;
  }
  b->data[b->len] = '\0';
  char *out = b->data;
  b->data = NULL;
  b->len = b->cap = 0;
  return out;
}

void vl_textbuf_free(vl_textbuf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}
