/* A growable NUL-terminated byte buffer for the text builders (chat
 * templates, enrich prompts). Allocation failure is sticky: later appends do
 * nothing and vl_textbuf_take() returns NULL with VL_ERR_NOMEM recorded, so
 * builders check once at the end. */
#ifndef VL_TEXT_TEXTBUF_H
#define VL_TEXT_TEXTBUF_H

#include <stddef.h>

typedef struct {
  char *data;
  size_t len, cap;
  int failed;
} vl_textbuf;

void vl_textbuf_append(vl_textbuf *b, const char *s, size_t n);
void vl_textbuf_puts(vl_textbuf *b, const char *s);
void vl_textbuf_printf(vl_textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text (malloc'd, caller frees; "" for an empty buffer) or NULL +
 * VL_ERR_NOMEM. The buffer is left empty either way. */
char *vl_textbuf_take(vl_textbuf *b);
void vl_textbuf_free(vl_textbuf *b);

#endif
