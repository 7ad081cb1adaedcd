/* Tokenizer core: vocabulary and merge tables, the encode pipeline
 * (added tokens -> normalizers -> pre-tokenizers -> BPE / WordPiece ->
 * post-processor) and decoders. Semantics follow Hugging Face `tokenizers`
 * (tokenizers/src/{normalizers,pre_tokenizers,models,decoders}). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/error.h"
#include "text/tok_impl.h"

const char *const TK_RE_GPT2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char *const TK_RE_QWEN2 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char *const TK_RE_LLAMA3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char *const TK_RE_CLIP = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|["
                               "\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

/* ---- small growable buffers ------------------------------------------- */

typedef struct {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;

static void sb_put(sbuf *b, const void *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t c = b->cap ? b->cap : 64;
    while (c < b->n + n + 1)
      c *= 2;
    char *q = realloc(b->p, c);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q;
    b->cap = c;
  }
  if (n) memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

/* Every occurrence of pat (none when empty) in t replaced by with. */
static void sb_replace_all(sbuf *t, const char *pat, const char *with) {
  const size_t pl = strlen(pat), wl = strlen(with);
  sbuf o = {0};
  for (size_t k = 0; k < t->n;) {
    if (pl && k + pl <= t->n && !memcmp(t->p + k, pat, pl)) {
      sb_put(&o, with, wl);
      k += pl;
    } else {
      sb_put(&o, t->p + k, 1);
      k++;
    }
  }
  if (!o.p) sb_put(&o, "", 0);
  free(t->p);
  *t = o;
}

typedef struct {
  int32_t *p;
  size_t n, cap;
  int oom;
} ivec;

static void iv_push(ivec *v, int32_t x) {
  if (v->oom) return;
  if (v->n == v->cap) {
    size_t c = v->cap ? v->cap * 2 : 64;
    int32_t *q = realloc(v->p, c * sizeof *q);
    if (!q) {
      v->oom = 1;
      return;
    }
    v->p = q;
    v->cap = c;
  }
  v->p[v->n++] = x;
}

/* A list of pre-token pieces stored back to back in one buffer. */
typedef struct {
  sbuf text;
  size_t *off, *len;
  size_t n, cap;
  int oom;
} pieces;

static void pc_add(pieces *p, const char *s, size_t n) {
  if (!n || p->oom) return;
  if (p->n == p->cap) {
    size_t c = p->cap ? p->cap * 2 : 16;
    size_t *o = realloc(p->off, c * sizeof *o);
    if (!o) {
      p->oom = 1;
      return;
    }
    p->off = o;
    size_t *l = realloc(p->len, c * sizeof *l);
    if (!l) {
      p->oom = 1;
      return;
    }
    p->len = l;
    p->cap = c;
  }
  p->off[p->n] = p->text.n;
  p->len[p->n] = n;
  sb_put(&p->text, s, n);
  if (p->text.oom) p->oom = 1;
  p->n++;
}

static void pc_free(pieces *p) {
  free(p->text.p);
  free(p->off);
  free(p->len);
  memset(p, 0, sizeof *p);
}

/* Decodes one UTF-8 char at s (n bytes available): returns its length and
 * sets *cp, or -1 with length 1 for an invalid byte. */
static int u8_next(const char *s, size_t n, int32_t *cp) {
  utf8proc_int32_t c;
  utf8proc_ssize_t k =
      utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)(n > 4 ? 4 : n), &c);
  if (k <= 0) {
    *cp = -1;
    return 1;
  }
  *cp = c;
  return (int)k;
}

static void u8_put(sbuf *b, int32_t cp) {
  utf8proc_uint8_t tmp[4];
  utf8proc_ssize_t k = utf8proc_encode_char(cp, tmp);
  sb_put(b, tmp, (size_t)k);
}

/* ---- byte-level alphabet (GPT-2 bytes_to_unicode) --------------------- */

static int32_t byte_cp[256];
static int16_t cp_byte[324];

static void bytelevel_init(void) {
  static int done;
  if (done) return;
  int n = 0;
  for (int b = 0; b < 256; b++) {
    int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    byte_cp[b] = keep ? b : 256 + n++;
  }
  for (int i = 0; i < 324; i++)
    cp_byte[i] = -1;
  for (int b = 0; b < 256; b++)
    cp_byte[byte_cp[b]] = (int16_t)b;
  done = 1;
}

/* ---- hash tables ------------------------------------------------------ */

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
  return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

int tk_build_vocab_map(vl_tokenizer *t) {
  uint32_t cap = 16;
  while (cap < (uint32_t)t->n_ids * 2u + 16)
    cap *= 2;
  free(t->vocab.slots);
  t->vocab.slots = calloc(cap, sizeof *t->vocab.slots);
  if (!t->vocab.slots) return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  t->vocab.mask = cap - 1;
  for (int32_t id = 0; id < t->n_ids; id++) {
    if (!t->tok[id] || (t->special[id] & 2)) continue; /* 2: added-only token */
    uint32_t h = (uint32_t)hash_bytes(t->tok[id], t->tok_len[id]) & t->vocab.mask;
    while (t->vocab.slots[h]) {
      uint32_t o = t->vocab.slots[h] - 1;
      if (t->tok_len[o] == t->tok_len[id] && !memcmp(t->tok[o], t->tok[id], t->tok_len[id]))
        break; /* duplicate string (GGUF vocabularies have some): the first id wins */
      h = (h + 1) & t->vocab.mask;
    }
    if (!t->vocab.slots[h]) t->vocab.slots[h] = (uint32_t)id + 1;
  }
  return 0;
}

int32_t tk_vocab_find(const vl_tokenizer *t, const char *s, size_t len) {
  if (!t->vocab.slots) return -1;
  uint32_t h = (uint32_t)hash_bytes(s, len) & t->vocab.mask;
  while (t->vocab.slots[h]) {
    uint32_t id = t->vocab.slots[h] - 1;
    if (t->tok_len[id] == len && !memcmp(t->tok[id], s, len)) return (int32_t)id;
    h = (h + 1) & t->vocab.mask;
  }
  return -1;
}

static int merges_grow(vl_tokenizer *t) {
  tk_merges *m = &t->merges;
  uint32_t old = m->keys ? m->mask + 1 : 0, cap = old ? old * 2 : 1024;
  tk_merges nm = {calloc(cap, 8), malloc(cap * 4), malloc(cap * 4), cap - 1};
  if (!nm.keys || !nm.rank || !nm.merged) {
    free(nm.keys);
    free(nm.rank);
    free(nm.merged);
    return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  }
  for (uint32_t i = 0; i < old; i++) {
    if (!m->keys[i]) continue;
    uint32_t h = (uint32_t)hash_u64(m->keys[i]) & nm.mask;
    while (nm.keys[h])
      h = (h + 1) & nm.mask;
    nm.keys[h] = m->keys[i];
    nm.rank[h] = m->rank[i];
    nm.merged[h] = m->merged[i];
  }
  free(m->keys);
  free(m->rank);
  free(m->merged);
  *m = nm;
  return 0;
}

static int merge_find(const vl_tokenizer *t, int32_t a, int32_t b, uint32_t *rank,
                      int32_t *merged) {
  const tk_merges *m = &t->merges;
  if (!m->keys) return 0;
  uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
  uint32_t h = (uint32_t)hash_u64(key) & m->mask;
  while (m->keys[h]) {
    if (m->keys[h] == key) {
      *rank = m->rank[h];
      *merged = (int32_t)m->merged[h];
      return 1;
    }
    h = (h + 1) & m->mask;
  }
  return 0;
}

int tk_add_merge(vl_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen,
                 uint32_t rank) {
  int32_t ia = tk_vocab_find(t, a, alen), ib = tk_vocab_find(t, b, blen);
  if (ia < 0 || ib < 0)
    return vl_error(VL_ERR_FORMAT, "%s: merge %u: token '%.*s' not in the vocabulary", t->name,
                    rank, (int)(ia < 0 ? alen : blen), ia < 0 ? a : b);
  /* merged token: a + b without b's continuing-subword prefix */
  size_t pl = t->cont_prefix ? strlen(t->cont_prefix) : 0;
  if (pl && blen >= pl && !memcmp(b, t->cont_prefix, pl)) {
    b += pl;
    blen -= pl;
  }
  char stackbuf[256];
  char *buf = alen + blen <= sizeof stackbuf ? stackbuf : malloc(alen + blen);
  if (!buf) return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  memcpy(buf, a, alen);
  memcpy(buf + alen, b, blen);
  int32_t im = tk_vocab_find(t, buf, alen + blen);
  if (buf != stackbuf) free(buf);
  if (im < 0)
    return vl_error(VL_ERR_FORMAT, "%s: merge %u: '%.*s' + '%.*s' is not in the vocabulary",
                    t->name, rank, (int)alen, a, (int)blen, b);
  tk_merges *m = &t->merges;
  /* keep load under 1/2; count occupancy lazily by probing on insert */
  if (!m->keys || rank + 1 > (m->mask + 1) / 2) {
    if (merges_grow(t)) return VL_ERR_NOMEM;
  }
  uint64_t key = (((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib) + 1;
  uint32_t h = (uint32_t)hash_u64(key) & m->mask;
  while (m->keys[h]) {
    if (m->keys[h] == key) return 0; /* duplicate merge: first (lowest rank) wins */
    h = (h + 1) & m->mask;
  }
  m->keys[h] = key;
  m->rank[h] = rank;
  m->merged[h] = (uint32_t)im;
  return 0;
}

/* ---- construction ----------------------------------------------------- */

vl_tokenizer *tk_new(const char *name) {
  vl_tokenizer *t = calloc(1, sizeof *t);
  if (!t || !(t->name = strdup(name ? name : "tokenizer"))) {
    free(t);
    vl_error(VL_ERR_NOMEM, "out of memory");
    return NULL;
  }
  t->unk = t->bos = t->eos = t->pad = -1;
  t->wp_max_chars = 100;
  bytelevel_init();
  return t;
}

static int ensure_ids(vl_tokenizer *t, int32_t id) {
  if (id < 0 || id >= (1 << 26))
    return vl_error(VL_ERR_FORMAT, "%s: token id %d out of range", t->name, id);
  if (id < t->n_ids) return 0;
  int32_t n = id + 1;
  if (n > t->cap_ids) {
    int32_t cap = 16;
    while (cap < n)
      cap *= 2;
    char **tk = realloc(t->tok, (size_t)cap * sizeof *tk);
    if (!tk) return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
    t->tok = tk;
    uint32_t *tl = realloc(t->tok_len, (size_t)cap * sizeof *tl);
    if (!tl) return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
    t->tok_len = tl;
    uint8_t *sp = realloc(t->special, (size_t)cap);
    if (!sp) return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
    t->special = sp;
    t->cap_ids = cap;
  }
  for (int32_t i = t->n_ids; i < n; i++) {
    t->tok[i] = NULL;
    t->tok_len[i] = 0;
    t->special[i] = 0;
  }
  t->n_ids = n;
  return 0;
}

int tk_set_token(vl_tokenizer *t, int32_t id, const char *s, size_t len) {
  if (ensure_ids(t, id)) return VL_ERR_FORMAT;
  if (len > (1u << 20)) return vl_error(VL_ERR_FORMAT, "%s: token %d is too long", t->name, id);
  if (t->tok[id])
    return vl_error(VL_ERR_FORMAT, "%s: two tokens have id %d ('%s' and '%.*s')", t->name, id,
                    t->tok[id], (int)len, s);
  char *c = malloc(len + 1);
  if (!c) return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  memcpy(c, s, len);
  c[len] = 0;
  t->tok[id] = c;
  t->tok_len[id] = (uint32_t)len;
  return 0;
}

int tk_add_added(vl_tokenizer *t, const char *s, size_t len, int32_t id, int special, int lstrip,
                 int rstrip, int single_word) {
  if (!len) return vl_error(VL_ERR_FORMAT, "%s: added token %d is empty", t->name, id);
  if (ensure_ids(t, id)) return VL_ERR_FORMAT;
  if (t->tok[id]) {
    if (t->tok_len[id] != len || memcmp(t->tok[id], s, len))
      return vl_error(VL_ERR_FORMAT,
                      "%s: added token '%.*s' has id %d, which is '%s' in the vocabulary", t->name,
                      (int)len, s, id, t->tok[id]);
  } else {
    if (tk_set_token(t, id, s, len)) return VL_ERR_FORMAT;
    t->special[id] = 2; /* not in the model vocabulary */
  }
  if (special) t->special[id] = t->special[id] == 2 ? 3 : 1;
  tk_added *a = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *a);
  if (!a) return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  t->added = a;
  tk_added *x = &t->added[t->n_added++];
  x->content = t->tok[id];
  x->len = len;
  x->id = id;
  x->special = special;
  x->lstrip = lstrip;
  x->rstrip = rstrip;
  x->single_word = single_word;
  return 0;
}

int tk_finish(vl_tokenizer *t) {
  /* buckets of added tokens by first byte, longest first (leftmost-longest match) */
  int counts[256] = {0};
  for (int i = 0; i < t->n_added; i++)
    counts[(uint8_t)t->added[i].content[0]]++;
  for (int c = 0; c < 256; c++) {
    free(t->added_by_byte[c]);
    t->added_by_byte[c] = NULL;
    if (!counts[c]) continue;
    int32_t *l = malloc((size_t)(counts[c] + 1) * sizeof *l);
    if (!l) return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
    int k = 0;
    for (int i = 0; i < t->n_added; i++)
      if ((uint8_t)t->added[i].content[0] == c) l[k++] = i;
    for (int i = 1; i < k; i++) /* insertion sort by length, descending */
      for (int j = i; j > 0 && t->added[l[j]].len > t->added[l[j - 1]].len; j--) {
        int32_t tmp = l[j];
        l[j] = l[j - 1];
        l[j - 1] = tmp;
      }
    l[k] = -1;
    t->added_by_byte[c] = l;
  }
  if (!t->model) return vl_error(VL_ERR_FORMAT, "%s: no tokenizer model", t->name);
  if (t->unk >= t->n_ids)
    return vl_error(VL_ERR_FORMAT, "%s: unknown-token id out of range", t->name);
  return 0;
}

#define PUSH(arr, n, kind_)                                                                        \
  do {                                                                                             \
    void *q_ = realloc(t->arr, (size_t)(t->n + 1) * sizeof *t->arr);                               \
    if (!q_) {                                                                                     \
      vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);                                        \
      return NULL;                                                                                 \
    }                                                                                              \
    t->arr = q_;                                                                                   \
    memset(&t->arr[t->n], 0, sizeof *t->arr);                                                      \
    t->arr[t->n].kind = kind_;                                                                     \
    return &t->arr[t->n++];                                                                        \
  } while (0)

tk_norm *tk_push_norm(vl_tokenizer *t, int kind) { PUSH(norm, n_norm, kind); }
tk_pre *tk_push_pre(vl_tokenizer *t, int kind) { PUSH(pre, n_pre, kind); }
tk_dec *tk_push_dec(vl_tokenizer *t, int kind) { PUSH(dec, n_dec, kind); }

int tk_push_post(vl_tokenizer *t, int suffix, int32_t id) {
  int32_t **arr = suffix ? &t->post_suffix : &t->post_prefix;
  int *n = suffix ? &t->n_post_suffix : &t->n_post_prefix;
  int32_t *q = realloc(*arr, (size_t)(*n + 1) * sizeof *q);
  if (!q) return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  q[(*n)++] = id;
  *arr = q;
  return 0;
}

pcre2_code *tk_compile(const vl_tokenizer *t, const char *pattern, size_t len, int literal) {
  int err;
  PCRE2_SIZE at;
  uint32_t opt = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opt, &err, &at, NULL);
  if (!re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    vl_error(VL_ERR_FORMAT, "%s: regex '%.*s': %s at offset %zu", t->name,
             (int)(len > 200 ? 200 : len), pattern, (const char *)msg, (size_t)at);
    return NULL;
  }
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* best effort: the interpreter is the fallback */
  return re;
}

void vl_tokenizer_free(vl_tokenizer *t) {
  if (!t) return;
  for (int32_t i = 0; i < t->n_ids; i++)
    free(t->tok[i]);
  free(t->tok);
  free(t->tok_len);
  free(t->special);
  free(t->vocab.slots);
  free(t->merges.keys);
  free(t->merges.rank);
  free(t->merges.merged);
  free(t->cont_prefix);
  free(t->eow_suffix);
  free(t->wp_prefix);
  free(t->added);
  for (int c = 0; c < 256; c++)
    free(t->added_by_byte[c]);
  for (int i = 0; i < t->n_norm; i++) {
    pcre2_code_free(t->norm[i].re);
    free(t->norm[i].content);
  }
  free(t->norm);
  for (int i = 0; i < t->n_pre; i++)
    pcre2_code_free(t->pre[i].re);
  free(t->pre);
  for (int i = 0; i < t->n_dec; i++) {
    free(t->dec[i].a);
    free(t->dec[i].b);
  }
  free(t->dec);
  free(t->post_prefix);
  free(t->post_suffix);
  free(t->name);
  free(t);
}

/* ---- regex matching --------------------------------------------------- */

typedef struct {
  size_t *s, *e;
  size_t n, cap;
} spans;

/* All non-overlapping matches of re in [p, p+n). Returns 0 or an error. */
static int find_all(const vl_tokenizer *t, pcre2_code *re, const char *p, size_t n, spans *out) {
  out->n = 0;
  pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
  if (!md) return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  size_t pos = 0;
  int rc = 0;
  while (pos <= n) {
    int r = pcre2_match(re, (PCRE2_SPTR)p, n, pos, 0, md, NULL);
    if (r == PCRE2_ERROR_NOMATCH) break;
    if (r < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(r, msg, sizeof msg);
      rc = vl_error(VL_ERR_LIMIT, "%s: regex match failed: %s", t->name, (const char *)msg);
      break;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t s = ov[0], e = ov[1];
    if (e > s) {
      if (out->n == out->cap) {
        size_t c = out->cap ? out->cap * 2 : 64;
        size_t *a = realloc(out->s, c * sizeof *a), *b;
        if (!a) {
          rc = vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
          break;
        }
        out->s = a;
        b = realloc(out->e, c * sizeof *b);
        if (!b) {
          rc = vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
          break;
        }
        out->e = b;
        out->cap = c;
      }
      out->s[out->n] = s;
      out->e[out->n++] = e;
      pos = e;
    } else { /* empty match: step one char */
      int32_t cp;
      if (s >= n) break;
      pos = s + (size_t)u8_next(p + s, n - s, &cp);
    }
  }
  pcre2_match_data_free(md);
  return rc;
}

/* HF NormalizedString::split with a SplitDelimiterBehavior. */
static void split_spans(pieces *out, const char *p, size_t n, const spans *m, int behavior,
                        int invert) {
  /* build (start, end, is_match) segments covering [0, n) */
  size_t prev = 0, pending_s = 0, pending_e = 0;
  int have_pending = 0, pending_match = 0;
  for (size_t i = 0; i <= m->n; i++) {
    size_t segs[2][2];
    int is_m[2], k = 0;
    size_t ms = i < m->n ? m->s[i] : n, me = i < m->n ? m->e[i] : n;
    if (ms > prev) {
      segs[k][0] = prev;
      segs[k][1] = ms;
      is_m[k++] = invert;
    }
    if (i < m->n) {
      segs[k][0] = ms;
      segs[k][1] = me;
      is_m[k++] = !invert;
    }
    prev = me;
    for (int j = 0; j < k; j++) {
      size_t s = segs[j][0], e = segs[j][1];
      int ism = is_m[j];
      switch (behavior) {
      case BEH_REMOVED:
        if (!ism) pc_add(out, p + s, e - s);
        break;
      case BEH_ISOLATED: pc_add(out, p + s, e - s); break;
      case BEH_CONTIGUOUS:
        if (have_pending && pending_match == ism) {
          pending_e = e;
        } else {
          if (have_pending) pc_add(out, p + pending_s, pending_e - pending_s);
          pending_s = s;
          pending_e = e;
          pending_match = ism;
          have_pending = 1;
        }
        break;
      case BEH_MERGED_PREV: /* a delimiter joins the piece before it */
        if (ism && have_pending) {
          pending_e = e;
          pc_add(out, p + pending_s, pending_e - pending_s);
          have_pending = 0;
        } else if (ism) {
          pc_add(out, p + s, e - s);
        } else {
          if (have_pending) pc_add(out, p + pending_s, pending_e - pending_s);
          pending_s = s;
          pending_e = e;
          have_pending = 1;
        }
        break;
      case BEH_MERGED_NEXT: /* a delimiter joins the piece after it */
        if (ism) {
          if (have_pending) pc_add(out, p + pending_s, pending_e - pending_s);
          pending_s = s;
          pending_e = e;
          have_pending = 1;
        } else if (have_pending) {
          pc_add(out, p + pending_s, e - pending_s);
          have_pending = 0;
        } else {
          pc_add(out, p + s, e - s);
        }
        break;
      }
    }
  }
  if (have_pending) pc_add(out, p + pending_s, pending_e - pending_s);
}

/* ---- normalizers ------------------------------------------------------ */

static int is_ws(int32_t c) {
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x85)
    return 1;
  if (c < 0x80) return 0;
  int cat = utf8proc_category(c);
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

static int is_control(int32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return 0;
  int cat = utf8proc_category(c);
  return cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
         cat == UTF8PROC_CATEGORY_CN || cat == UTF8PROC_CATEGORY_CO || cat == UTF8PROC_CATEGORY_CS;
}

static int is_punct(int32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126))
    return 1;
  int cat = utf8proc_category(c);
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

static int is_cjk(int32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Unicode normal forms via utf8proc; text that is not valid UTF-8 is left
 * as is (HF never sees it: Rust strings are valid by construction). */
static int nf(sbuf *out, const char *p, size_t n, int opts) {
  utf8proc_uint8_t *dst = NULL;
  utf8proc_ssize_t r =
      utf8proc_map((const utf8proc_uint8_t *)p, (utf8proc_ssize_t)n, &dst, (utf8proc_option_t)opts);
  if (r < 0) {
    sb_put(out, p, n);
    return r == UTF8PROC_ERROR_NOMEM ? VL_ERR_NOMEM : 0;
  }
  sb_put(out, dst, (size_t)r);
  free(dst);
  return 0;
}

static int apply_norm(const vl_tokenizer *t, const tk_norm *nm, const char *p, size_t n,
                      sbuf *out) {
  int32_t cp;
  switch (nm->kind) {
  case NORM_NFC: return nf(out, p, n, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  case NORM_NFD: return nf(out, p, n, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
  case NORM_NFKC: return nf(out, p, n, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  case NORM_NFKD: return nf(out, p, n, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  case NORM_LOWER:
    for (size_t i = 0; i < n;) {
      int k = u8_next(p + i, n - i, &cp);
      if (cp < 0)
        sb_put(out, p + i, 1);
      else
        u8_put(out, utf8proc_tolower(cp));
      i += (size_t)k;
    }
    return 0;
  case NORM_STRIP_ACCENTS: /* drops nonspacing marks (HF StripAccents, used after NFD) */
    for (size_t i = 0; i < n;) {
      int k = u8_next(p + i, n - i, &cp);
      if (cp < 0 || utf8proc_category(cp) != UTF8PROC_CATEGORY_MN) sb_put(out, p + i, (size_t)k);
      i += (size_t)k;
    }
    return 0;
  case NORM_BERT: {
    sbuf a = {0};
    for (size_t i = 0; i < n;) {
      int k = u8_next(p + i, n - i, &cp);
      if (cp < 0)
        sb_put(&a, p + i, 1);
      else if (nm->clean_text && (cp == 0 || cp == 0xFFFD || is_control(cp))) {
      } else if (nm->clean_text && is_ws(cp))
        sb_put(&a, " ", 1);
      else if (nm->chinese && is_cjk(cp)) {
        sb_put(&a, " ", 1);
        sb_put(&a, p + i, (size_t)k);
        sb_put(&a, " ", 1);
      } else
        sb_put(&a, p + i, (size_t)k);
      i += (size_t)k;
    }
    sbuf b = {0};
    const char *cur = a.p ? a.p : "";
    size_t cn = a.n;
    int rc = 0;
    if (nm->strip_accents) {
      sbuf d = {0};
      rc = nf(&d, cur, cn, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
      tk_norm sa = {.kind = NORM_STRIP_ACCENTS};
      if (!rc) rc = apply_norm(t, &sa, d.p ? d.p : "", d.n, &b);
      free(d.p);
      free(a.p);
      a = b;
      b = (sbuf){0};
      cur = a.p ? a.p : "";
      cn = a.n;
    }
    if (!rc && nm->lowercase) {
      tk_norm lo = {.kind = NORM_LOWER};
      rc = apply_norm(t, &lo, cur, cn, out);
    } else {
      sb_put(out, cur, cn);
    }
    if (a.oom || b.oom) rc = VL_ERR_NOMEM;
    free(a.p);
    free(b.p);
    return rc;
  }
  case NORM_REPLACE: {
    spans m = {0};
    int rc = find_all(t, nm->re, p, n, &m);
    size_t prev = 0;
    for (size_t i = 0; !rc && i < m.n; i++) {
      sb_put(out, p + prev, m.s[i] - prev);
      sb_put(out, nm->content, strlen(nm->content));
      prev = m.e[i];
    }
    if (!rc) sb_put(out, p + prev, n - prev);
    free(m.s);
    free(m.e);
    return rc;
  }
  case NORM_PREPEND:
    if (n) sb_put(out, nm->content, strlen(nm->content));
    sb_put(out, p, n);
    return 0;
  case NORM_STRIP: {
    size_t s = 0, e = n;
    while (nm->left && s < e && (p[s] == ' ' || p[s] == '\t' || p[s] == '\n' || p[s] == '\r'))
      s++;
    while (nm->right && e > s &&
           (p[e - 1] == ' ' || p[e - 1] == '\t' || p[e - 1] == '\n' || p[e - 1] == '\r'))
      e--;
    sb_put(out, p + s, e - s);
    return 0;
  }
  }
  return vl_error(VL_ERR_INVALID, "%s: unknown normalizer", t->name);
}

/* ---- pre-tokenizers --------------------------------------------------- */

static void bytelevel_map(pieces *out, const char *p, size_t n) {
  sbuf b = {0};
  for (size_t i = 0; i < n; i++)
    u8_put(&b, byte_cp[(uint8_t)p[i]]);
  if (b.oom) out->oom = 1;
  pc_add(out, b.p, b.n);
  free(b.p);
}

static int apply_pre(const vl_tokenizer *t, const tk_pre *pr, const char *p, size_t n,
                     pieces *out) {
  spans m = {0};
  int rc = 0;
  int32_t cp;
  switch (pr->kind) {
  case PRE_SPLIT:
    rc = find_all(t, pr->re, p, n, &m);
    if (!rc) split_spans(out, p, n, &m, pr->behavior, pr->invert);
    break;
  case PRE_WHITESPACE:
  case PRE_BYTELEVEL: {
    sbuf tmp = {0};
    if (pr->kind == PRE_BYTELEVEL && pr->add_prefix_space && !(n && p[0] == ' ')) {
      sb_put(&tmp, " ", 1);
      sb_put(&tmp, p, n);
      if (tmp.oom) return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
      p = tmp.p;
      n = tmp.n;
    }
    pieces parts = {0};
    if (pr->re) {
      rc = find_all(t, pr->re, p, n, &m);
      if (!rc)
        split_spans(pr->kind == PRE_BYTELEVEL ? &parts : out, p, n, &m,
                    pr->kind == PRE_BYTELEVEL ? BEH_ISOLATED : BEH_REMOVED,
                    pr->kind == PRE_WHITESPACE);
    } else {
      pc_add(&parts, p, n);
    }
    if (pr->kind == PRE_BYTELEVEL)
      for (size_t i = 0; i < parts.n; i++)
        bytelevel_map(out, parts.text.p + parts.off[i], parts.len[i]);
    if (parts.oom) out->oom = 1;
    pc_free(&parts);
    free(tmp.p);
    break;
  }
  case PRE_WHITESPACE_SPLIT:
  case PRE_BERT:
  case PRE_PUNCT:
  case PRE_DIGITS: {
    /* char-class splitting: whitespace removed, punctuation/digits isolated */
    size_t start = 0;
    for (size_t i = 0; i < n;) {
      int k = u8_next(p + i, n - i, &cp);
      int ws = cp >= 0 && is_ws(cp) && pr->kind != PRE_PUNCT && pr->kind != PRE_DIGITS;
      int iso = cp >= 0 && ((pr->kind == PRE_BERT || pr->kind == PRE_PUNCT) ? is_punct(cp) : 0);
      int dig = pr->kind == PRE_DIGITS && cp >= 0 && utf8proc_category(cp) == UTF8PROC_CATEGORY_ND;
      if (ws || iso || (dig && pr->individual_digits)) {
        pc_add(out, p + start, i - start);
        if (!ws) pc_add(out, p + i, (size_t)k);
        start = i + (size_t)k;
      } else if (pr->kind == PRE_DIGITS && !pr->individual_digits && i > start) {
        int32_t pc;
        size_t j = i;
        do
          j--;
        while (j > start && ((uint8_t)p[j] & 0xC0) == 0x80);
        u8_next(p + j, n - j, &pc);
        int pdig = pc >= 0 && utf8proc_category(pc) == UTF8PROC_CATEGORY_ND;
        if (pdig != dig) {
          pc_add(out, p + start, i - start);
          start = i;
        }
      }
      i += (size_t)k;
    }
    pc_add(out, p + start, n - start);
    break;
  }
  default: rc = vl_error(VL_ERR_INVALID, "%s: unknown pre-tokenizer", t->name);
  }
  free(m.s);
  free(m.e);
  if (!rc && out->oom) rc = vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  return rc;
}

/* ---- models ----------------------------------------------------------- */

typedef struct {
  int32_t id;
  int32_t prev, next; /* linked list over positions; -1 ends */
  int alive;
} sym;

typedef struct {
  uint32_t rank;
  int32_t pos; /* left symbol */
  int32_t merged;
} mcand;

static int mc_less(const mcand *a, const mcand *b) {
  return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

typedef struct {
  mcand *h;
  size_t n, cap;
} heap;

static int heap_push(heap *q, mcand c) {
  if (q->n == q->cap) {
    size_t cap = q->cap ? q->cap * 2 : 64;
    mcand *h = realloc(q->h, cap * sizeof *h);
    if (!h) return VL_ERR_NOMEM;
    q->h = h;
    q->cap = cap;
  }
  size_t i = q->n++;
  while (i && mc_less(&c, &q->h[(i - 1) / 2])) {
    q->h[i] = q->h[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  q->h[i] = c;
  return 0;
}

static mcand heap_pop(heap *q) {
  mcand top = q->h[0], last = q->h[--q->n];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const mcand *best = &last;
    if (l < q->n && mc_less(&q->h[l], best)) {
      m = l;
      best = &q->h[l];
    }
    if (r < q->n && mc_less(&q->h[r], best)) m = r;
    if (m == i) break;
    q->h[i] = q->h[m];
    i = m;
  }
  if (q->n) q->h[i] = last;
  return top;
}

static int try_pair(const vl_tokenizer *t, heap *q, const sym *s, int32_t pos) {
  if (pos < 0 || s[pos].next < 0) return 0;
  uint32_t rank;
  int32_t merged;
  if (merge_find(t, s[pos].id, s[s[pos].next].id, &rank, &merged))
    return heap_push(q, (mcand){rank, pos, merged});
  return 0;
}

static int32_t byte_token(const vl_tokenizer *t, uint8_t b) {
  char buf[8];
  snprintf(buf, sizeof buf, "<0x%02X>", b);
  return tk_vocab_find(t, buf, 6);
}

/* HF models/bpe/model.rs merge_word + word.rs merge_all (no dropout). */
static int bpe_word(const vl_tokenizer *t, const char *p, size_t n, ivec *out) {
  if (t->ignore_merges) {
    int32_t id = tk_vocab_find(t, p, n);
    if (id >= 0) {
      iv_push(out, id);
      return 0;
    }
  }
  sym *s = malloc((n + 1) * sizeof *s);
  if (!s) return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  int32_t ns = 0, last_unk = 0;
  size_t pl = t->cont_prefix ? strlen(t->cont_prefix) : 0,
         sl = t->eow_suffix ? strlen(t->eow_suffix) : 0;
  char stackbuf[64];
  for (size_t i = 0; i < n;) {
    int32_t cp;
    int k = u8_next(p + i, n - i, &cp);
    int first = i == 0, lastc = i + (size_t)k == n;
    const char *q = p + i;
    size_t ql = (size_t)k;
    if ((pl && !first) || (sl && lastc)) {
      size_t m = pl && !first ? pl : 0;
      /* checked before any copy: a tokenizer.json may carry a prefix of any length */
      if (m + ql + sl > sizeof stackbuf) {
        free(s);
        return vl_error(VL_ERR_INVALID, "%s: BPE affix too long", t->name);
      }
      if (m) memcpy(stackbuf, t->cont_prefix, pl);
      memcpy(stackbuf + m, q, ql);
      m += ql;
      if (sl && lastc) memcpy(stackbuf + m, t->eow_suffix, sl), m += sl;
      q = stackbuf;
      ql = m;
    }
    int32_t id = tk_vocab_find(t, q, ql);
    if (id < 0 && t->byte_fallback) {
      int all = 1;
      for (int b = 0; b < k; b++)
        if (byte_token(t, (uint8_t)p[i + b]) < 0) all = 0;
      if (all) {
        for (int b = 0; b < k; b++)
          s[ns++] = (sym){byte_token(t, (uint8_t)p[i + b]), 0, 0, 1};
        last_unk = 0;
        i += (size_t)k;
        continue;
      }
    }
    if (id < 0) {
      if (t->unk >= 0 && !(t->fuse_unk && last_unk)) s[ns++] = (sym){t->unk, 0, 0, 1};
      last_unk = t->unk >= 0;
    } else {
      s[ns++] = (sym){id, 0, 0, 1};
      last_unk = 0;
    }
    i += (size_t)k;
  }
  for (int32_t i = 0; i < ns; i++) {
    s[i].prev = i - 1;
    s[i].next = i + 1 < ns ? i + 1 : -1;
  }
  heap q = {0};
  int rc = 0;
  for (int32_t i = 0; i + 1 < ns && !rc; i++)
    rc = try_pair(t, &q, s, i);
  while (!rc && q.n) {
    mcand c = heap_pop(&q);
    int32_t a = c.pos;
    if (!s[a].alive || s[a].next < 0) continue;
    int32_t b = s[a].next;
    uint32_t rank;
    int32_t merged;
    if (!merge_find(t, s[a].id, s[b].id, &rank, &merged) || rank != c.rank || merged != c.merged)
      continue; /* stale candidate */
    s[a].id = merged;
    s[b].alive = 0;
    s[a].next = s[b].next;
    if (s[b].next >= 0) s[s[b].next].prev = a;
    rc = try_pair(t, &q, s, s[a].prev);
    if (!rc) rc = try_pair(t, &q, s, a);
  }
  free(q.h);
  if (rc) {
    free(s);
    return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  }
  for (int32_t i = ns ? 0 : -1; i >= 0; i = s[i].next)
    iv_push(out, s[i].id);
  free(s);
  return 0;
}

/* HF models/wordpiece: greedy longest match, "##" on continuations. */
static int wordpiece_word(const vl_tokenizer *t, const char *p, size_t n, ivec *out) {
  size_t nchars = 0;
  for (size_t i = 0; i < n; i++)
    nchars += ((uint8_t)p[i] & 0xC0) != 0x80;
  if (nchars > (size_t)t->wp_max_chars) {
    if (t->unk < 0)
      return vl_error(VL_ERR_INVALID, "%s: word too long and no [UNK] token", t->name);
    iv_push(out, t->unk);
    return 0;
  }
  size_t pl = strlen(t->wp_prefix ? t->wp_prefix : "");
  char *buf = malloc(n + pl + 1);
  if (!buf) return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  size_t mark = out->n, start = 0;
  while (start < n) {
    size_t end = n;
    int32_t found = -1;
    while (end > start) {
      size_t m = 0;
      if (start > 0) memcpy(buf, t->wp_prefix, pl), m = pl;
      memcpy(buf + m, p + start, end - start);
      found = tk_vocab_find(t, buf, m + end - start);
      if (found >= 0) break;
      do
        end--;
      while (end > start && ((uint8_t)p[end] & 0xC0) == 0x80);
    }
    if (found < 0) {
      out->n = mark;
      free(buf);
      if (t->unk < 0)
        return vl_error(VL_ERR_INVALID,
                        "%s: '%.*s' cannot be tokenized and there is no [UNK] token", t->name,
                        (int)n, p);
      iv_push(out, t->unk);
      return 0;
    }
    iv_push(out, found);
    start = end;
  }
  free(buf);
  return 0;
}

/* ---- encode ----------------------------------------------------------- */

static int encode_plain(const vl_tokenizer *t, const char *p, size_t n, ivec *out) {
  if (!n) return 0;
  sbuf cur = {0};
  sb_put(&cur, p, n);
  int rc = 0;
  for (int i = 0; i < t->n_norm && !rc; i++) {
    sbuf nx = {0};
    rc = apply_norm(t, &t->norm[i], cur.p ? cur.p : "", cur.n, &nx);
    if (nx.oom || cur.oom) rc = vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
    free(cur.p);
    cur = nx;
  }
  pieces ps = {0};
  pc_add(&ps, cur.p ? cur.p : "", cur.n);
  free(cur.p);
  for (int i = 0; i < t->n_pre && !rc; i++) {
    pieces nx = {0};
    for (size_t j = 0; j < ps.n && !rc; j++)
      rc = apply_pre(t, &t->pre[i], ps.text.p + ps.off[j], ps.len[j], &nx);
    pc_free(&ps);
    ps = nx;
  }
  if (ps.oom && !rc) rc = vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  for (size_t j = 0; j < ps.n && !rc; j++) {
    const char *w = ps.text.p + ps.off[j];
    rc = t->model == TK_BPE ? bpe_word(t, w, ps.len[j], out) : wordpiece_word(t, w, ps.len[j], out);
  }
  pc_free(&ps);
  return rc;
}

static int is_word_byte(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         c >= 0x80;
}

/* Leftmost-longest match of an added token at i; sets the span to consume. */
static int match_added(const vl_tokenizer *t, const char *p, size_t n, size_t i, size_t *ms,
                       size_t *me) {
  const int32_t *l = t->added_by_byte[(uint8_t)p[i]];
  if (!l) return -1;
  for (; *l >= 0; l++) {
    const tk_added *a = &t->added[*l];
    if (a->len > n - i || memcmp(p + i, a->content, a->len)) continue;
    if (a->single_word && ((i > 0 && is_word_byte((uint8_t)p[i - 1])) ||
                           (i + a->len < n && is_word_byte((uint8_t)p[i + a->len]))))
      continue;
    *ms = i;
    *me = i + a->len;
    if (a->lstrip)
      while (*ms > 0 &&
             (p[*ms - 1] == ' ' || p[*ms - 1] == '\t' || p[*ms - 1] == '\n' || p[*ms - 1] == '\r'))
        (*ms)--;
    if (a->rstrip)
      while (*me < n && (p[*me] == ' ' || p[*me] == '\t' || p[*me] == '\n' || p[*me] == '\r'))
        (*me)++;
    return *l;
  }
  return -1;
}

int vl_tokenizer_encode(const vl_tokenizer *t, const char *text, size_t len, int add_special,
                        int32_t **ids, size_t *n_ids) {
  *ids = NULL;
  *n_ids = 0;
  if (!text && len) return vl_error(VL_ERR_INVALID, "%s: NULL text", t->name);
  ivec out = {0};
  int rc = 0;
  if (add_special)
    for (int i = 0; i < t->n_post_prefix; i++)
      iv_push(&out, t->post_prefix[i]);
  size_t start = 0, i = 0;
  while (i < len && !rc) {
    size_t ms, me;
    int a = t->n_added ? match_added(t, text, len, i, &ms, &me) : -1;
    if (a < 0) {
      i++;
      continue;
    }
    if (ms < start) ms = start; /* lstrip never reaches into a previous token */
    rc = encode_plain(t, text + start, ms - start, &out);
    iv_push(&out, t->added[a].id);
    start = i = me;
  }
  if (!rc) rc = encode_plain(t, text + start, len - start, &out);
  if (add_special)
    for (int k = 0; k < t->n_post_suffix; k++)
      iv_push(&out, t->post_suffix[k]);
  if (!rc && out.oom) rc = vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  if (rc) {
    free(out.p);
    return rc;
  }
  if (!out.p) out.p = malloc(sizeof *out.p); /* non-NULL even when empty */
  if (!out.p) return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  *ids = out.p;
  *n_ids = out.n;
  return 0;
}

/* ---- decode ----------------------------------------------------------- */

static void wp_cleanup(sbuf *s) {
  static const char *const pairs[][2] = {{" .", "."},     {" ?", "?"},           {" !", "!"},
                                         {" ,", ","},     {" ' ", "'"},          {" n't", "n't"},
                                         {" 'm", "'m"},   {" do not", " don't"}, {" 's", "'s"},
                                         {" 've", "'ve"}, {" 're", "'re"}};
  for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
    size_t fl = strlen(pairs[k][0]), tl = strlen(pairs[k][1]);
    sbuf o = {0};
    for (size_t i = 0; i < s->n;) {
      if (i + fl <= s->n && !memcmp(s->p + i, pairs[k][0], fl)) {
        sb_put(&o, pairs[k][1], tl);
        i += fl;
      } else {
        sb_put(&o, s->p + i, 1);
        i++;
      }
    }
    free(s->p);
    *s = o;
  }
}

int vl_tokenizer_decode(const vl_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                        char **out, size_t *out_len) {
  *out = NULL;
  if (out_len) *out_len = 0;
  /* the token strings, then each decoder rewrites the list (HF decode_chain) */
  size_t cnt = 0;
  sbuf *toks = calloc(n ? n : 1, sizeof *toks);
  if (!toks) return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  for (size_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= t->n_ids || !t->tok[ids[i]]) {
      for (size_t j = 0; j < cnt; j++)
        free(toks[j].p);
      free(toks);
      return vl_error(VL_ERR_INVALID, "%s: token id %d is not in the vocabulary", t->name, ids[i]);
    }
    if (skip_special && (t->special[ids[i]] & 1)) continue;
    sb_put(&toks[cnt], t->tok[ids[i]], t->tok_len[ids[i]]);
    if (!toks[cnt].p) sb_put(&toks[cnt], "", 0);
    cnt++;
  }
  for (int d = 0; d < t->n_dec; d++) {
    const tk_dec *dc = &t->dec[d];
    switch (dc->kind) {
    case DEC_BYTELEVEL: { /* every token maps back to bytes, or stays as is */
      sbuf all = {0};
      for (size_t i = 0; i < cnt; i++) {
        sbuf b = {0};
        int ok = 1;
        for (size_t k = 0; k < toks[i].n && ok;) {
          int32_t cp;
          int l = u8_next(toks[i].p + k, toks[i].n - k, &cp);
          if (cp >= 0 && cp < 324 && cp_byte[cp] >= 0) {
            uint8_t by = (uint8_t)cp_byte[cp];
            sb_put(&b, &by, 1);
          } else {
            ok = 0;
          }
          k += (size_t)l;
        }
        if (ok)
          sb_put(&all, b.p, b.n);
        else
          sb_put(&all, toks[i].p, toks[i].n);
        free(b.p);
        free(toks[i].p);
        toks[i] = (sbuf){0};
      }
      toks[0] = all;
      if (!toks[0].p) sb_put(&toks[0], "", 0);
      cnt = cnt ? 1 : 0;
      if (!cnt) free(toks[0].p), toks[0] = (sbuf){0};
      break;
    }
    case DEC_WORDPIECE:
      for (size_t i = 0; i < cnt; i++) {
        size_t pl = strlen(dc->a);
        if (i) {
          sbuf o = {0};
          if (toks[i].n >= pl && !memcmp(toks[i].p, dc->a, pl)) {
            sb_put(&o, toks[i].p + pl, toks[i].n - pl);
          } else {
            sb_put(&o, " ", 1);
            sb_put(&o, toks[i].p, toks[i].n);
          }
          free(toks[i].p);
          toks[i] = o;
        }
        if (dc->cleanup) wp_cleanup(&toks[i]);
      }
      break;
    case DEC_BPE: /* the end-of-word suffix is a space, except in the last token */
      for (size_t i = 0; i < cnt; i++)
        sb_replace_all(&toks[i], dc->a, i + 1 < cnt ? " " : "");
      break;
    case DEC_REPLACE:
      for (size_t i = 0; i < cnt; i++)
        sb_replace_all(&toks[i], dc->a, dc->b);
      break;
    case DEC_BYTEFALLBACK:
      for (size_t i = 0; i < cnt; i++) {
        unsigned v;
        char tail;
        if (toks[i].n == 6 && sscanf(toks[i].p, "<0x%2X%c", &v, &tail) == 2 && tail == '>') {
          uint8_t by = (uint8_t)v;
          toks[i].n = 0;
          sb_put(&toks[i], &by, 1);
        }
      }
      break;
    case DEC_FUSE:
      for (size_t i = 1; i < cnt; i++) {
        sb_put(&toks[0], toks[i].p, toks[i].n);
        free(toks[i].p);
        toks[i] = (sbuf){0};
      }
      if (cnt > 1) cnt = 1;
      break;
    case DEC_STRIP:
      for (size_t i = 0; i < cnt; i++) {
        size_t s = 0, e = toks[i].n;
        for (int k = 0; k < dc->start && s < e && toks[i].p[s] == ' '; k++)
          s++;
        for (int k = 0; k < dc->stop && e > s && toks[i].p[e - 1] == ' '; k++)
          e--;
        memmove(toks[i].p, toks[i].p + s, e - s);
        toks[i].n = e - s;
        toks[i].p[e - s] = 0;
      }
      break;
    }
  }
  sbuf res = {0};
  int oom = 0;
  for (size_t i = 0; i < cnt; i++) {
    if (!t->n_dec && i) sb_put(&res, " ", 1); /* no decoder: HF joins with spaces */
    sb_put(&res, toks[i].p, toks[i].n);
    oom |= toks[i].oom;
    free(toks[i].p);
  }
  free(toks);
  sb_put(&res, "", 0);
  if (res.oom || oom) {
    free(res.p);
    return vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  }
  *out = res.p;
  if (out_len) *out_len = res.n;
  return 0;
}

/* ---- queries ---------------------------------------------------------- */

int32_t vl_tokenizer_n_vocab(const vl_tokenizer *t) { return t->n_ids; }

int32_t vl_tokenizer_token_to_id(const vl_tokenizer *t, const char *token) {
  size_t n = strlen(token);
  for (int i = 0; i < t->n_added; i++)
    if (t->added[i].len == n && !memcmp(t->added[i].content, token, n)) return t->added[i].id;
  return tk_vocab_find(t, token, n);
}

const char *vl_tokenizer_id_to_token(const vl_tokenizer *t, int32_t id) {
  return id >= 0 && id < t->n_ids ? t->tok[id] : NULL;
}

int vl_tokenizer_is_special(const vl_tokenizer *t, int32_t id) {
  return id >= 0 && id < t->n_ids && (t->special[id] & 1);
}

int32_t vl_tokenizer_bos(const vl_tokenizer *t) { return t->bos; }
int32_t vl_tokenizer_eos(const vl_tokenizer *t) { return t->eos; }
int32_t vl_tokenizer_pad(const vl_tokenizer *t) { return t->pad; }
