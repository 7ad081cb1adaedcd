/* Description metrics; see metrics.h. */
#include "text/metrics.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"
#include "io/json.h"
#include "io/shapes_describe.h"
#include "text/textbuf.h"

static int word_byte(unsigned char c) { return isalnum(c) || c >= 0x80; }

typedef struct {
  const char *p;
  size_t n;
} wspan;

/* The next word (run of word bytes) at or after *pos; 0 at the end. */
static int next_word(const char **pos, wspan *w) {
  const unsigned char *p = (const unsigned char *)*pos;
  while (*p && !word_byte(*p))
    p++;
  if (!*p) return 0;
  const unsigned char *s = p;
  while (*p && word_byte(*p))
    p++;
  w->p = (const char *)s;
  w->n = (size_t)(p - s);
  *pos = (const char *)p;
  return 1;
}

static int eq_ci(const char *a, size_t an, const char *b, size_t bn) {
  return an == bn && !strncasecmp(a, b, an);
}

/* Whether text word w is keyword word k or a simple plural/singular of it. */
static int plural_eq(wspan w, wspan k) {
  if (eq_ci(w.p, w.n, k.p, k.n)) return 1;
  if (w.n == k.n + 1 && !strncasecmp(w.p, k.p, k.n) && tolower((unsigned char)w.p[k.n]) == 's')
    return 1;
  if (w.n == k.n + 2 && !strncasecmp(w.p, k.p, k.n) && !strncasecmp(w.p + k.n, "es", 2)) return 1;
  if (k.n > 1 && tolower((unsigned char)k.p[k.n - 1]) == 'y' && w.n == k.n + 2 &&
      !strncasecmp(w.p, k.p, k.n - 1) && !strncasecmp(w.p + k.n - 1, "ies", 3))
    return 1;
  if (k.n > 1 && tolower((unsigned char)k.p[k.n - 1]) == 's' && w.n == k.n - 1 &&
      !strncasecmp(w.p, k.p, w.n))
    return 1;
  return 0;
}

static int is_ascii(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s >= 0x80) return 0;
  return 1;
}

size_t vl_metrics_count(const char *text, const char *term) {
  if (!text || !term) return 0;
  if (!is_ascii(term)) {
    size_t k = strlen(term), hits = 0;
    if (!k) return 0;
    for (const char *p = text; *p;) {
      if (!strncasecmp(p, term, k)) {
        hits++;
        p += k;
      } else {
        p++;
      }
    }
    return hits;
  }
  wspan kw[16];
  size_t nk = 0;
  const char *q = term;
  wspan w;
  while (next_word(&q, &w)) {
    if (nk == sizeof kw / sizeof *kw) return 0; /* longer terms are refused by measure */
    kw[nk++] = w;
  }
  if (!nk) return 0;
  /* Sliding window over the text's words. */
  wspan win[16];
  size_t have = 0, hits = 0;
  const char *p = text;
  while (next_word(&p, &w)) {
    if (have == nk) {
      memmove(win, win + 1, (nk - 1) * sizeof *win);
      have--;
    }
    win[have++] = w;
    if (have < nk) continue;
    int ok = 1;
    for (size_t i = 0; i + 1 < nk && ok; i++)
      ok = eq_ci(win[i].p, win[i].n, kw[i].p, kw[i].n);
    if (ok && plural_eq(win[nk - 1], kw[nk - 1])) {
      hits++;
      have = 0; /* no overlapping matches */
    }
  }
  return hits;
}

static uint32_t decode_utf8(const unsigned char **pp) {
  const unsigned char *p = *pp;
  uint32_t c = *p;
  int k = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
  if (k < 0) {
    *pp = p + 1;
    return 0xFFFD;
  }
  c &= k == 0 ? 0x7F : k == 1 ? 0x1F : k == 2 ? 0x0F : 0x07;
  for (int i = 1; i <= k; i++) {
    if ((p[i] & 0xC0) != 0x80) {
      *pp = p + i;
      return 0xFFFD;
    }
    c = (c << 6) | (p[i] & 0x3F);
  }
  *pp = p + k + 1;
  return c;
}

size_t vl_metrics_length(const char *text, int zh) {
  if (!text) return 0;
  size_t n = 0;
  if (zh) {
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
      uint32_t c = decode_utf8(&p);
      if ((c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) ||
          (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x2FFFF))
        n++;
    }
    return n;
  }
  const unsigned char *p = (const unsigned char *)text;
  while (*p) {
    while (*p && !(word_byte(*p) || *p == '\''))
      p++;
    int has = 0;
    while (*p && (word_byte(*p) || *p == '\''))
      has |= *p++ != '\'';
    n += (size_t)has;
  }
  return n;
}

static int check_terms(const char *const *t, size_t n, const char *what) {
  if (n && !t) return vl_error(VL_ERR_INVALID, "metrics: %s list missing", what);
  for (size_t i = 0; i < n; i++) {
    const char *q = t[i];
    wspan w;
    size_t words = 0;
    if (q)
      while (next_word(&q, &w))
        words++;
    if (!t[i] || !words) return vl_error(VL_ERR_INVALID, "metrics: %s %zu is empty", what, i + 1);
    if (words > 16)
      return vl_error(VL_ERR_LIMIT, "metrics: %s %zu has more than 16 words", what, i + 1);
  }
  return VL_OK;
}

int vl_metrics_measure(const char *text, const vl_metrics_spec *spec, vl_text_metrics *out) {
  if (!out) return vl_error(VL_ERR_INVALID, "metrics: no output given");
  memset(out, 0, sizeof *out);
  if (!text || !spec) return vl_error(VL_ERR_INVALID, "metrics: no text or spec given");
  if (spec->max_len && (spec->min_len < 0 || spec->max_len < spec->min_len))
    return vl_error(VL_ERR_INVALID, "metrics: bad length range %d-%d", spec->min_len,
                    spec->max_len);
  if (check_terms(spec->keywords, spec->n_keywords, "keyword") < 0 ||
      check_terms(spec->forbidden, spec->n_forbidden, "forbidden term") < 0)
    return vl_last_error_code();
  out->n_keywords = spec->n_keywords;
  for (size_t i = 0; i < spec->n_keywords; i++)
    out->n_found += vl_metrics_count(text, spec->keywords[i]) > 0;
  out->recall = spec->n_keywords ? (double)out->n_found / (double)spec->n_keywords : 1.0;
  for (size_t i = 0; i < spec->n_forbidden; i++)
    out->forbidden_hits += vl_metrics_count(text, spec->forbidden[i]);
  out->length = vl_metrics_length(text, spec->zh);
  out->in_range = !spec->max_len ||
                  (out->length >= (size_t)spec->min_len && out->length <= (size_t)spec->max_len);
  return VL_OK;
}

void vl_metrics_aggregate(const vl_text_metrics *items, size_t n, vl_metrics_total *out) {
  memset(out, 0, sizeof *out);
  out->n_items = n;
  double recall = 0, len = 0;
  for (size_t i = 0; i < n; i++) {
    recall += items[i].recall;
    out->keywords += items[i].n_keywords;
    out->found += items[i].n_found;
    out->forbidden_hits += items[i].forbidden_hits;
    out->items_with_forbidden += items[i].forbidden_hits > 0;
    len += (double)items[i].length;
    out->n_in_range += items[i].in_range != 0;
  }
  if (n) {
    out->mean_recall = recall / (double)n;
    out->mean_length = len / (double)n;
    out->in_range_rate = (double)out->n_in_range / (double)n;
  }
  out->micro_recall = out->keywords ? (double)out->found / (double)out->keywords : 1.0;
}

/* ---- word lists ------------------------------------------------------ */

static int list_add(vl_word_list *l, const char *s, size_t n) {
  for (size_t i = 0; i < l->n; i++)
    if (eq_ci(l->words[i], strlen(l->words[i]), s, n)) return VL_OK;
  char **w = realloc(l->words, (l->n + 1) * sizeof *w);
  if (!w) return vl_error(VL_ERR_NOMEM, "word list: out of memory");
  l->words = w;
  if (!(w[l->n] = strndup(s, n))) return vl_error(VL_ERR_NOMEM, "word list: out of memory");
  l->n++;
  return VL_OK;
}

static int utf8_ok(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *e = p + n;
  while (p < e) {
    int k = *p < 0x80 ? 0 : (*p >> 5) == 6 ? 1 : (*p >> 4) == 14 ? 2 : (*p >> 3) == 30 ? 3 : -1;
    if (k < 0 || (k == 1 && *p < 0xC2) || (size_t)(e - p) <= (size_t)k) return 0;
    for (int i = 1; i <= k; i++)
      if ((p[i] & 0xC0) != 0x80) return 0;
    p += k + 1;
  }
  return 1;
}

int vl_word_list_load(const char *path, vl_word_list *out) {
  if (!out) return vl_error(VL_ERR_INVALID, "word list: no output given");
  memset(out, 0, sizeof *out);
  if (!path) return vl_error(VL_ERR_INVALID, "word list: no path given");
  FILE *f = fopen(path, "rb");
  if (!f)
    return vl_error(errno == ENOENT ? VL_ERR_NOTFOUND : VL_ERR_IO, "%s: cannot open: %s", path,
                    strerror(errno));
  vl_textbuf b = {0};
  char chunk[4096];
  size_t got;
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
    vl_textbuf_append(&b, chunk, got);
  int err = ferror(f);
  fclose(f);
  char *text = vl_textbuf_take(&b);
  if (!text) return vl_error_context("%s", path);
  if (err) {
    free(text);
    return vl_error(VL_ERR_IO, "%s: read error", path);
  }
  int rc = VL_OK, line = 0;
  for (char *p = text; *p && rc == VL_OK;) {
    char *le = strchr(p, '\n');
    if (!le) le = p + strlen(p);
    line++;
    char *s = p, *e = le;
    while (s < e && isspace((unsigned char)*s))
      s++;
    while (e > s && isspace((unsigned char)e[-1]))
      e--;
    if (memchr(p, '\0', (size_t)(le - p)))
      rc = vl_error(VL_ERR_FORMAT, "%s: line %d: NUL byte", path, line);
    else if (!utf8_ok(s, (size_t)(e - s)))
      rc = vl_error(VL_ERR_FORMAT, "%s: line %d: not valid UTF-8", path, line);
    else if (e > s && *s != '#')
      rc = list_add(out, s, (size_t)(e - s));
    p = *le ? le + 1 : le;
  }
  free(text);
  if (rc < 0) vl_word_list_free(out);
  return rc;
}

/* word, or its Chinese form with zh when the world has one */
static int list_add_word(vl_word_list *l, const char *w, int zh) {
  const char *z = zh ? vl_shapes_word_zh(w) : NULL;
  if (z) w = z;
  return list_add(l, w, strlen(w));
}

int vl_word_list_from_manifest(const char *json, size_t len, vl_word_list *out) {
  return vl_word_list_from_manifest_lang(json, len, 0, out);
}

int vl_word_list_from_manifest_lang(const char *json, size_t len, int zh, vl_word_list *out) {
  if (!out) return vl_error(VL_ERR_INVALID, "manifest: no output given");
  memset(out, 0, sizeof *out);
  if (!json) return vl_error(VL_ERR_INVALID, "manifest: no text given");
  cJSON *root = vl_json_parse(json, len, "manifest line");
  if (!root) return vl_last_error_code();
  const cJSON *objs = vl_json_get(root, "objects");
  int rc = VL_OK;
  if (!cJSON_IsArray(objs)) {
    rc = vl_error(VL_ERR_FORMAT, "manifest line: 'objects' is missing or not an array");
  } else {
    int i = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, objs) {
      const char *color = vl_json_str(o, "color", NULL), *shape = vl_json_str(o, "shape", NULL);
      if (!color || !shape || !*color || !*shape) {
        rc = vl_error(VL_ERR_FORMAT, "manifest line: object %d has no color or shape string", i);
        break;
      }
      if ((rc = list_add_word(out, color, zh)) < 0) break;
      if ((rc = list_add_word(out, shape, zh)) < 0) break;
      i++;
    }
  }
  cJSON_Delete(root);
  if (rc < 0) vl_word_list_free(out);
  return rc;
}

void vl_word_list_free(vl_word_list *l) {
  if (!l) return;
  for (size_t i = 0; i < l->n; i++)
    free(l->words[i]);
  free(l->words);
  l->words = NULL;
  l->n = 0;
}
