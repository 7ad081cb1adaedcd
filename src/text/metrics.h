/* Text metrics for enriched descriptions: key-element recall, forbidden
 * terms, length and the length range, per item and over a set.
 *
 * Matching: ASCII letters compare case-insensitively and an ASCII keyword
 * matches whole words only ("cat" is not in "category"); a keyword of
 * several words matches those words in order separated by spaces or
 * punctuation. Simple plurals: the keyword's last word also matches with
 * "s", "es", or "y" -> "ies" added, and a keyword ending in "s" also
 * matches without it. A keyword holding non-ASCII text (e.g. Chinese) is
 * matched as a plain substring, as such text has no spaces between words.
 * Length: English counts words (runs of letters, digits, apostrophes and
 * non-ASCII bytes); Chinese counts CJK ideographs (U+3400-4DBF, U+4E00-9FFF,
 * U+F900-FAFF, U+20000-2FFFF). */
#ifndef VL_TEXT_METRICS_H
#define VL_TEXT_METRICS_H

#include <stddef.h>

typedef struct {
  const char *const *keywords; /* expected elements */
  size_t n_keywords;
  const char *const *forbidden; /* terms that must not appear */
  size_t n_forbidden;
  int min_len, max_len; /* length range; max_len 0 = no range */
  int zh;               /* length in CJK characters instead of words */
} vl_metrics_spec;

typedef struct {
  size_t n_keywords, n_found;
  double recall;         /* n_found / n_keywords; 1 when there are no keywords */
  size_t forbidden_hits; /* occurrences of all forbidden terms */
  size_t length;         /* words or CJK characters */
  int in_range;          /* min_len <= length <= max_len (1 without a range) */
} vl_text_metrics;

typedef struct {
  size_t n_items;
  double mean_recall;          /* mean of per-item recall */
  size_t keywords, found;      /* summed over items */
  double micro_recall;         /* found / keywords (1 when none) */
  size_t forbidden_hits;       /* summed */
  size_t items_with_forbidden; /* items with at least one hit */
  double mean_length;
  size_t n_in_range;
  double in_range_rate; /* n_in_range / n_items */
} vl_metrics_total;

/* VL_OK or VL_ERR_INVALID (NULL text/spec, bad range, empty term). */
int vl_metrics_measure(const char *text, const vl_metrics_spec *spec, vl_text_metrics *out);
/* Aggregates n items (n may be 0: all zero, rates 0). */
void vl_metrics_aggregate(const vl_text_metrics *items, size_t n, vl_metrics_total *out);

/* Occurrences of term in text under the matching rules above. */
size_t vl_metrics_count(const char *text, const char *term);
/* Words (zh = 0) or CJK characters (zh = 1). */
size_t vl_metrics_length(const char *text, int zh);

/* A list of owned strings. */
typedef struct {
  char **words;
  size_t n;
} vl_word_list;

/* One term per line; surrounding whitespace trimmed, empty lines and lines
 * starting with '#' skipped, case-insensitive duplicates dropped. Errors
 * name the file (missing, unreadable, invalid UTF-8 on line N). */
int vl_word_list_load(const char *path, vl_word_list *out);
/* Colour and shape words of the objects of one Shapes World manifest line
 * (objects[].color, objects[].shape), each once, in object order. */
int vl_word_list_from_manifest(const char *json, size_t len, vl_word_list *out);
/* The same; with zh, each world word as the Chinese description grammar
 * writes it (io/shapes_describe.h word table: "red" -> "红色", "circle" ->
 * "圆形"), so recall of a Chinese description counts the words it can use.
 * A word outside the table stays as it is. */
int vl_word_list_from_manifest_lang(const char *json, size_t len, int zh, vl_word_list *out);
void vl_word_list_free(vl_word_list *l);

#endif
