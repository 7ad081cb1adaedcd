/* Byte-level BPE trainer; see bpe_train.h. Tokens are handled as raw bytes
 * while training and turned into byte-level strings at the end. */
#include "text/bpe_train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "text/tok_impl.h"

typedef struct {
  char *bytes;
  size_t len;
  int64_t count;
  int32_t *sym; /* token ids while training */
  int nsym;
  int stamp; /* last merge that visited this word */
} word;

typedef struct {
  int32_t a, b;
  int64_t count;
  int32_t *where; /* words that contained the pair at some point */
  int n_where, cap_where;
  int seen; /* merge number + 1 that last listed it as touched */
} pair;

typedef struct {
  int64_t count;
  int32_t a, b;
} heap_item;

struct vl_bpe_trainer {
  vl_bpe_options opt;
  char **special;
  pcre2_code *re;
  pcre2_match_data *md;
  word *words;
  size_t n_words, cap_words;
  uint32_t *wslots; /* word index + 1 */
  size_t wmask;
};

static uint64_t fnv(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
  return h ^ (h >> 31);
}

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

vl_bpe_options vl_bpe_default_options(void) {
  static const char *const sp[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>",
                                   "</think>"};
  vl_bpe_options o = {4096, 2, sp, 5};
  return o;
}

void vl_bpe_trainer_free(vl_bpe_trainer *t) {
  if (!t) return;
  for (int i = 0; i < t->opt.n_special; i++)
    free(t->special[i]);
  free(t->special);
  for (size_t i = 0; i < t->n_words; i++) {
    free(t->words[i].bytes);
    free(t->words[i].sym);
  }
  free(t->words);
  free(t->wslots);
  if (t->md) pcre2_match_data_free(t->md);
  if (t->re) pcre2_code_free(t->re);
  free(t);
}

vl_bpe_trainer *vl_bpe_trainer_new(const vl_bpe_options *opt) {
  vl_bpe_options o = opt ? *opt : vl_bpe_default_options();
  if (o.n_special < 0 || o.n_special > 1000 || (o.n_special && !o.special)) {
    vl_error(VL_ERR_INVALID, "bpe-train: bad special token list");
    return NULL;
  }
  if (o.vocab_size < 256 + o.n_special || o.vocab_size > (1 << 24)) {
    vl_error(VL_ERR_INVALID,
             "bpe-train: vocab size %d: need 256 bytes + %d special tokens at least, at most %d",
             o.vocab_size, o.n_special, 1 << 24);
    return NULL;
  }
  if (o.min_frequency < 1) o.min_frequency = 1;
  for (int i = 0; i < o.n_special; i++) {
    if (!o.special[i] || !*o.special[i]) {
      vl_error(VL_ERR_INVALID, "bpe-train: special token %d is empty", i);
      return NULL;
    }
    for (int j = 0; j < i; j++)
      if (!strcmp(o.special[i], o.special[j])) {
        vl_error(VL_ERR_INVALID, "bpe-train: special token '%s' given twice", o.special[i]);
        return NULL;
      }
  }
  vl_bpe_trainer *t = calloc(1, sizeof *t);
  if (!t) goto nomem;
  t->opt = o;
  t->opt.n_special = 0;
  if (o.n_special && !(t->special = calloc((size_t)o.n_special, sizeof *t->special))) goto nomem;
  for (int i = 0; i < o.n_special; i++) {
    if (!(t->special[i] = strdup(o.special[i]))) goto nomem;
    t->opt.n_special++;
  }
  t->opt.special = (const char *const *)t->special;
  int err;
  PCRE2_SIZE at;
  /* the same flags as tk_compile, so training splits as encoding does */
  t->re = pcre2_compile((PCRE2_SPTR)TK_RE_QWEN2, PCRE2_ZERO_TERMINATED,
                        PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_UCP, &err, &at, NULL);
  if (!t->re) {
    vl_error(VL_ERR_UNSUPPORTED, "bpe-train: PCRE2 cannot compile the Qwen2 regex");
    vl_bpe_trainer_free(t);
    return NULL;
  }
  pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);
  if (!(t->md = pcre2_match_data_create_from_pattern(t->re, NULL))) goto nomem;
  return t;
nomem:
  vl_bpe_trainer_free(t);
  vl_error(VL_ERR_NOMEM, "bpe-train: out of memory");
  return NULL;
}

size_t vl_bpe_trainer_n_words(const vl_bpe_trainer *t) { return t ? t->n_words : 0; }

/* ---- word counting --------------------------------------------------- */

static int word_grow(vl_bpe_trainer *t) {
  size_t cap = t->wmask ? (t->wmask + 1) * 2 : 4096;
  uint32_t *s = calloc(cap, sizeof *s);
  if (!s) return vl_error(VL_ERR_NOMEM, "bpe-train: out of memory");
  for (size_t i = 0; i < t->n_words; i++) {
    size_t h = fnv(t->words[i].bytes, t->words[i].len) & (cap - 1);
    while (s[h])
      h = (h + 1) & (cap - 1);
    s[h] = (uint32_t)i + 1;
  }
  free(t->wslots);
  t->wslots = s;
  t->wmask = cap - 1;
  return 0;
}

static int add_word(vl_bpe_trainer *t, const char *p, size_t n) {
  if (!n) return 0;
  if (!t->wslots || (t->n_words + 1) * 2 > t->wmask + 1)
    if (word_grow(t)) return VL_ERR_NOMEM;
  size_t h = fnv(p, n) & t->wmask;
  for (; t->wslots[h]; h = (h + 1) & t->wmask) {
    word *w = &t->words[t->wslots[h] - 1];
    if (w->len == n && !memcmp(w->bytes, p, n)) {
      w->count++;
      return 0;
    }
  }
  if (t->n_words >= 0x7fffffff) return vl_error(VL_ERR_LIMIT, "bpe-train: too many distinct words");
  if (t->n_words == t->cap_words) {
    size_t c = t->cap_words ? t->cap_words * 2 : 1024;
    word *nw = realloc(t->words, c * sizeof *nw);
    if (!nw) return vl_error(VL_ERR_NOMEM, "bpe-train: out of memory");
    t->words = nw;
    t->cap_words = c;
  }
  word *w = &t->words[t->n_words];
  memset(w, 0, sizeof *w);
  if (!(w->bytes = malloc(n))) return vl_error(VL_ERR_NOMEM, "bpe-train: out of memory");
  memcpy(w->bytes, p, n);
  w->len = n;
  w->count = 1;
  t->wslots[h] = (uint32_t)++t->n_words;
  return 0;
}

/* Split pre-tokenizer, behaviour Isolated: matches and the text between
 * them are pieces. */
static int split_segment(vl_bpe_trainer *t, const char *p, size_t n) {
  size_t pos = 0, last = 0;
  while (pos < n) {
    int r = pcre2_match(t->re, (PCRE2_SPTR)p, n, pos, 0, t->md, NULL);
    if (r == PCRE2_ERROR_NOMATCH) break;
    if (r < 0) return vl_error(VL_ERR_LIMIT, "bpe-train: regex match failed (%d)", r);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
    size_t s = ov[0], e = ov[1];
    if (e <= s) { /* the pattern never matches empty; be safe anyway */
      pos = s + 1;
      continue;
    }
    if (s > last && add_word(t, p + last, s - last)) return VL_ERR_NOMEM;
    if (add_word(t, p + s, e - s)) return VL_ERR_NOMEM;
    pos = last = e;
  }
  return n > last ? add_word(t, p + last, n - last) : 0;
}

int vl_bpe_trainer_feed(vl_bpe_trainer *t, const char *text, size_t len) {
  if (!t || (!text && len)) return vl_error(VL_ERR_INVALID, "bpe-train: no trainer or text");
  size_t pos = 0;
  while (pos < len) {
    /* the earliest special token (longest on a tie), as added tokens split */
    size_t best = len, bl = 0;
    for (int i = 0; i < t->opt.n_special; i++) {
      size_t sl = strlen(t->special[i]);
      const char *f = memmem(text + pos, len - pos, t->special[i], sl);
      if (f && ((size_t)(f - text) < best || ((size_t)(f - text) == best && sl > bl))) {
        best = (size_t)(f - text);
        bl = sl;
      }
    }
    int rc = split_segment(t, text + pos, best - pos);
    if (rc) return rc;
    pos = best + bl;
  }
  return 0;
}

int vl_bpe_trainer_feed_file(vl_bpe_trainer *t, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return vl_error(VL_ERR_IO, "%s: cannot open", path);
  char *buf = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  for (;;) {
    if (n + 65536 > cap) {
      cap = cap ? cap * 2 : 1 << 20;
      char *q = realloc(buf, cap);
      if (!q) {
        rc = vl_error(VL_ERR_NOMEM, "%s: out of memory", path);
        break;
      }
      buf = q;
    }
    size_t r = fread(buf + n, 1, 65536, f);
    n += r;
    if (r < 65536) break;
  }
  if (!rc && ferror(f)) rc = vl_error(VL_ERR_IO, "%s: read error", path);
  fclose(f);
  if (!rc) rc = vl_bpe_trainer_feed(t, buf, n);
  if (rc) vl_error_context("%s", path);
  free(buf);
  return rc;
}

/* ---- training state -------------------------------------------------- */

typedef struct {
  vl_bpe_trainer *t;
  /* tokens as raw bytes */
  char **tok;
  size_t *tok_len;
  int n_tok, cap_tok;
  uint32_t *tslots; /* token id + 1, by bytes */
  size_t tmask;
  pair *pairs;
  int n_pairs, cap_pairs;
  uint32_t *pslots; /* pair index + 1 */
  size_t pmask;
  heap_item *heap;
  size_t n_heap, cap_heap;
  int32_t (*merges)[2];
  int n_merges, cap_merges;
  int cur; /* merge number + 1 in progress */
  int oom;
} state;

static int tok_find(const state *s, const char *p, size_t n) {
  for (size_t h = fnv(p, n) & s->tmask; s->tslots[h]; h = (h + 1) & s->tmask) {
    int id = (int)s->tslots[h] - 1;
    if (s->tok_len[id] == n && !memcmp(s->tok[id], p, n)) return id;
  }
  return -1;
}

static int tok_add(state *s, char *p, size_t n) { /* takes p */
  if (s->n_tok == s->cap_tok) {
    int c = s->cap_tok * 2;
    char **a = realloc(s->tok, (size_t)c * sizeof *a);
    if (a) s->tok = a;
    size_t *l = realloc(s->tok_len, (size_t)c * sizeof *l);
    if (l) s->tok_len = l;
    if (!a || !l) {
      free(p);
      return -1;
    }
    s->cap_tok = c;
  }
  if ((size_t)(s->n_tok + 1) * 2 > s->tmask + 1) {
    size_t cap = (s->tmask + 1) * 2;
    uint32_t *sl = calloc(cap, sizeof *sl);
    if (!sl) {
      free(p);
      return -1;
    }
    for (int i = 0; i < s->n_tok; i++) {
      size_t h = fnv(s->tok[i], s->tok_len[i]) & (cap - 1);
      while (sl[h])
        h = (h + 1) & (cap - 1);
      sl[h] = (uint32_t)i + 1;
    }
    free(s->tslots);
    s->tslots = sl;
    s->tmask = cap - 1;
  }
  int id = s->n_tok++;
  s->tok[id] = p;
  s->tok_len[id] = n;
  size_t h = fnv(p, n) & s->tmask;
  while (s->tslots[h])
    h = (h + 1) & s->tmask;
  s->tslots[h] = (uint32_t)id + 1;
  return id;
}

static uint64_t pkey(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

/* The pair's index, created (count 0) when absent; -1 on no memory. */
static int pair_get(state *s, int32_t a, int32_t b) {
  if (!s->pslots || (size_t)(s->n_pairs + 1) * 2 > s->pmask + 1) {
    size_t cap = s->pslots ? (s->pmask + 1) * 2 : 1 << 14;
    uint32_t *sl = calloc(cap, sizeof *sl);
    if (!sl) return -1;
    for (int i = 0; i < s->n_pairs; i++) {
      size_t h = mix64(pkey(s->pairs[i].a, s->pairs[i].b)) & (cap - 1);
      while (sl[h])
        h = (h + 1) & (cap - 1);
      sl[h] = (uint32_t)i + 1;
    }
    free(s->pslots);
    s->pslots = sl;
    s->pmask = cap - 1;
  }
  size_t h = mix64(pkey(a, b)) & s->pmask;
  for (; s->pslots[h]; h = (h + 1) & s->pmask) {
    pair *p = &s->pairs[s->pslots[h] - 1];
    if (p->a == a && p->b == b) return (int)s->pslots[h] - 1;
  }
  if (s->n_pairs == s->cap_pairs) {
    int c = s->cap_pairs ? s->cap_pairs * 2 : 4096;
    pair *np = realloc(s->pairs, (size_t)c * sizeof *np);
    if (!np) return -1;
    s->pairs = np;
    s->cap_pairs = c;
  }
  pair *p = &s->pairs[s->n_pairs];
  memset(p, 0, sizeof *p);
  p->a = a;
  p->b = b;
  s->pslots[h] = (uint32_t)s->n_pairs + 1;
  return s->n_pairs++;
}

static void where_add(state *s, pair *p, int32_t w) {
  if (p->n_where && p->where[p->n_where - 1] == w) return;
  if (p->n_where == p->cap_where) {
    int c = p->cap_where ? p->cap_where * 2 : 4;
    int32_t *nw = realloc(p->where, (size_t)c * sizeof *nw);
    if (!nw) {
      s->oom = 1;
      return;
    }
    p->where = nw;
    p->cap_where = c;
  }
  p->where[p->n_where++] = w;
}

static int better(const heap_item *x, const heap_item *y) {
  if (x->count != y->count) return x->count > y->count;
  return x->a != y->a ? x->a < y->a : x->b < y->b;
}

static void heap_push(state *s, int64_t count, int32_t a, int32_t b) {
  if (s->n_heap == s->cap_heap) {
    size_t c = s->cap_heap ? s->cap_heap * 2 : 4096;
    heap_item *h = realloc(s->heap, c * sizeof *h);
    if (!h) {
      s->oom = 1;
      return;
    }
    s->heap = h;
    s->cap_heap = c;
  }
  size_t i = s->n_heap++;
  heap_item it = {count, a, b};
  while (i && better(&it, &s->heap[(i - 1) / 2])) {
    s->heap[i] = s->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  s->heap[i] = it;
}

static heap_item heap_pop(state *s) {
  heap_item top = s->heap[0], last = s->heap[--s->n_heap];
  size_t i = 0, n = s->n_heap;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && better(&s->heap[c + 1], &s->heap[c])) c++;
    if (!better(&s->heap[c], &last)) break;
    s->heap[i] = s->heap[c];
    i = c;
  }
  if (n) s->heap[i] = last;
  return top;
}

static void state_free(state *s) {
  for (int i = 0; i < s->n_tok; i++)
    free(s->tok[i]);
  free(s->tok);
  free(s->tok_len);
  free(s->tslots);
  for (int i = 0; i < s->n_pairs; i++)
    free(s->pairs[i].where);
  free(s->pairs);
  free(s->pslots);
  free(s->heap);
  free(s->merges);
}

/* Adds c to the count of every adjacent pair of w (c < 0 removes); pairs
 * that contain `fresh` get w recorded and are listed in touched. */
static void count_word(state *s, int32_t wi, int64_t c, int32_t fresh, int32_t *touched,
                       int *n_touched, int max_touched) {
  word *w = &s->t->words[wi];
  for (int j = 0; j + 1 < w->nsym; j++) {
    int pi = pair_get(s, w->sym[j], w->sym[j + 1]);
    if (pi < 0) {
      s->oom = 1;
      return;
    }
    pair *p = &s->pairs[pi];
    p->count += c;
    if (c > 0 && (fresh < 0 || p->a == fresh || p->b == fresh)) {
      if (fresh >= 0 && p->seen != s->cur && *n_touched < max_touched) {
        p->seen = s->cur;
        touched[(*n_touched)++] = pi;
      }
      where_add(s, p, wi);
    }
  }
}

/* GPT-2 bytes_to_unicode: byte -> code point. */
static int32_t byte_cp(int b) {
  static int32_t cp[256];
  static int done;
  if (!done) {
    int n = 0;
    for (int i = 0; i < 256; i++) {
      int keep = (i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF);
      cp[i] = keep ? i : 256 + n++;
    }
    done = 1;
  }
  return cp[b];
}

static char *bytelevel_string(const char *p, size_t n) {
  char *s = malloc(2 * n + 1), *o = s;
  if (!s) return NULL;
  for (size_t i = 0; i < n; i++) {
    int32_t c = byte_cp((uint8_t)p[i]);
    if (c < 0x80)
      *o++ = (char)c;
    else {
      *o++ = (char)(0xC0 | (c >> 6));
      *o++ = (char)(0x80 | (c & 0x3F));
    }
  }
  *o = 0;
  return s;
}

void vl_bpe_model_free(vl_bpe_model *m) {
  if (!m) return;
  for (int i = 0; i < m->n_tokens; i++)
    free(m->tokens[i]);
  free(m->tokens);
  for (int i = 0; i < m->n_special; i++)
    free(m->special[i]);
  free(m->special);
  free(m->merges);
  memset(m, 0, sizeof *m);
}

int vl_bpe_trainer_train(vl_bpe_trainer *t, vl_bpe_model *out) {
  if (!t || !out) return vl_error(VL_ERR_INVALID, "bpe-train: no trainer or output");
  memset(out, 0, sizeof *out);
  state s;
  memset(&s, 0, sizeof s);
  s.t = t;
  s.cap_tok = 512;
  s.tok = malloc((size_t)s.cap_tok * sizeof *s.tok);
  s.tok_len = malloc((size_t)s.cap_tok * sizeof *s.tok_len);
  s.tmask = 1023;
  s.tslots = calloc(s.tmask + 1, sizeof *s.tslots);
  if (!s.tok || !s.tok_len || !s.tslots) goto nomem;
  /* ids 0..255: bytes in code point order of their byte-level characters */
  int32_t byte_id[256];
  for (int pass = 0; pass < 2; pass++)
    for (int b = 0; b < 256; b++) {
      int printable = byte_cp(b) == b;
      if (printable != (pass == 0)) continue;
      char *p = malloc(1);
      if (!p) goto nomem;
      p[0] = (char)b;
      if ((byte_id[b] = tok_add(&s, p, 1)) < 0) goto nomem;
    }
  for (size_t i = 0; i < t->n_words; i++) {
    word *w = &t->words[i];
    free(w->sym);
    if (!(w->sym = malloc(w->len * sizeof *w->sym))) goto nomem;
    for (size_t j = 0; j < w->len; j++)
      w->sym[j] = byte_id[(uint8_t)w->bytes[j]];
    w->nsym = (int)w->len;
    w->stamp = -1;
    count_word(&s, (int32_t)i, w->count, -1, NULL, NULL, 0);
  }
  if (s.oom) goto nomem;
  for (int i = 0; i < s.n_pairs; i++)
    if (s.pairs[i].count > 0) heap_push(&s, s.pairs[i].count, s.pairs[i].a, s.pairs[i].b);
  int32_t *todo = NULL, *touched = NULL;
  int cap_todo = 0, cap_touched = 0;
  while (s.n_tok + t->opt.n_special < t->opt.vocab_size && s.n_heap && !s.oom) {
    heap_item top = heap_pop(&s);
    int pi = pair_get(&s, top.a, top.b);
    if (pi < 0) {
      s.oom = 1;
      break;
    }
    int64_t actual = s.pairs[pi].count;
    if (actual != top.count) { /* stale: counts only fall after a push */
      if (actual > 0) heap_push(&s, actual, top.a, top.b);
      continue;
    }
    if (actual < t->opt.min_frequency) break;
    /* the new token */
    size_t la = s.tok_len[top.a], lb = s.tok_len[top.b];
    char *p = malloc(la + lb);
    if (!p) {
      s.oom = 1;
      break;
    }
    memcpy(p, s.tok[top.a], la);
    memcpy(p + la, s.tok[top.b], lb);
    int32_t id = tok_find(&s, p, la + lb);
    if (id >= 0)
      free(p);
    else if ((id = tok_add(&s, p, la + lb)) < 0) {
      s.oom = 1;
      break;
    }
    if (s.n_merges == s.cap_merges) {
      int c = s.cap_merges ? s.cap_merges * 2 : 1024;
      void *m = realloc(s.merges, (size_t)c * sizeof *s.merges);
      if (!m) {
        s.oom = 1;
        break;
      }
      s.merges = m;
      s.cap_merges = c;
    }
    s.merges[s.n_merges][0] = top.a;
    s.merges[s.n_merges][1] = top.b;
    int stamp = s.n_merges++;
    s.cur = stamp + 1;
    /* copy the word list: the pair table may move while we update */
    pair *pp = &s.pairs[pi];
    if (pp->n_where > cap_todo) {
      int32_t *nt = realloc(todo, (size_t)pp->n_where * sizeof *nt);
      if (!nt) {
        s.oom = 1;
        break;
      }
      todo = nt;
      cap_todo = pp->n_where;
    }
    int n_todo = pp->n_where;
    memcpy(todo, pp->where, (size_t)n_todo * sizeof *todo);
    int n_touched = 0;
    for (int k = 0; k < n_todo && !s.oom; k++) {
      word *w = &t->words[todo[k]];
      if (w->stamp == stamp) continue;
      w->stamp = stamp;
      int has = 0;
      for (int j = 0; j + 1 < w->nsym && !has; j++)
        has = w->sym[j] == top.a && w->sym[j + 1] == top.b;
      if (!has) continue;
      count_word(&s, todo[k], -w->count, -1, NULL, NULL, 0);
      int o = 0;
      for (int j = 0; j < w->nsym; j++) {
        if (j + 1 < w->nsym && w->sym[j] == top.a && w->sym[j + 1] == top.b) {
          w->sym[o++] = id;
          j++;
        } else {
          w->sym[o++] = w->sym[j];
        }
      }
      w->nsym = o;
      if (n_touched + w->nsym > cap_touched) {
        int c = (n_touched + w->nsym) * 2;
        int32_t *nt = realloc(touched, (size_t)c * sizeof *nt);
        if (!nt) {
          s.oom = 1;
          break;
        }
        touched = nt;
        cap_touched = c;
      }
      count_word(&s, todo[k], w->count, id, touched, &n_touched, cap_touched);
    }
    /* new pairs (they contain id) enter the heap once, with their count */
    for (int k = 0; k < n_touched; k++) {
      pair *q = &s.pairs[touched[k]];
      if (q->count > 0) heap_push(&s, q->count, q->a, q->b);
    }
  }
  free(todo);
  free(touched);
  if (s.oom) goto nomem;
  /* result */
  out->n_tokens = s.n_tok;
  if (!(out->tokens = calloc((size_t)s.n_tok, sizeof *out->tokens))) goto nomem_out;
  for (int i = 0; i < s.n_tok; i++)
    if (!(out->tokens[i] = bytelevel_string(s.tok[i], s.tok_len[i]))) goto nomem_out;
  out->n_merges = s.n_merges;
  out->merges = s.merges;
  s.merges = NULL;
  if (t->opt.n_special && !(out->special = calloc((size_t)t->opt.n_special, sizeof *out->special)))
    goto nomem_out;
  for (int i = 0; i < t->opt.n_special; i++) {
    if (!(out->special[i] = strdup(t->special[i]))) goto nomem_out;
    out->n_special++;
  }
  state_free(&s);
  return 0;
nomem_out:
  vl_bpe_model_free(out);
nomem:
  state_free(&s);
  return vl_error(VL_ERR_NOMEM, "bpe-train: out of memory");
}
