/* Tokenizer loaders: HF tokenizer.json, GPT-2/CLIP vocab.json + merges.txt,
 * BERT vocab.txt, and the tokenizer.ggml.* keys of a GGUF file. Each builds
 * the same pipeline HF `tokenizers` (or transformers' slow-to-fast
 * converters) would. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "text/tok_impl.h"

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    vl_error(VL_ERR_IO, "%s: cannot open", path);
    return NULL;
  }
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 65536 + 1 > cap) {
      cap = cap ? cap * 2 : 131072;
      char *q = realloc(buf, cap);
      if (!q) {
        free(buf);
        fclose(f);
        vl_error(VL_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
      }
      buf = q;
    }
    size_t r = fread(buf + n, 1, 65536, f);
    n += r;
    if (r < 65536) break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    vl_error(VL_ERR_IO, "%s: read error", path);
    return NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

static vl_tokenizer *fail(vl_tokenizer *t) {
  vl_tokenizer_free(t);
  return NULL;
}

static int jbool(const cJSON *o, const char *k, int def) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
  return def;
}

static const char *jstr(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* tokenizer_config.json values are a string or {"content": ...}. */
static const char *jtoken(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (cJSON_IsString(v)) return v->valuestring;
  if (cJSON_IsObject(v)) return jstr(v, "content");
  return NULL;
}

static int jid(const vl_tokenizer *t, const cJSON *v, const char *what, int32_t *id) {
  if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= (1 << 26) ||
      v->valuedouble != (double)(int32_t)v->valuedouble)
    return vl_error(VL_ERR_FORMAT, "%s: %s: expected a token id", t->name, what);
  *id = (int32_t)v->valuedouble;
  return 0;
}

static char *xstrdup(const vl_tokenizer *t, const char *s) {
  char *c = strdup(s ? s : "");
  if (!c) vl_error(VL_ERR_NOMEM, "%s: out of memory", t->name);
  return c;
}

/* ---- tokenizer.json ---------------------------------------------------- */

static int pattern_re(vl_tokenizer *t, const cJSON *pat, pcre2_code **re, const char *what) {
  const char *s = jstr(pat, "Regex");
  int literal = 0;
  if (!s) {
    s = jstr(pat, "String");
    literal = 1;
  }
  if (!s)
    return vl_error(VL_ERR_FORMAT, "%s: %s: pattern must be {\"Regex\"|\"String\": ...}", t->name,
                    what);
  *re = tk_compile(t, s, strlen(s), literal);
  return *re ? 0 : VL_ERR_FORMAT;
}

static int load_normalizer(vl_tokenizer *t, const cJSON *n) {
  if (!n || cJSON_IsNull(n)) return 0;
  const char *ty = jstr(n, "type");
  if (!ty) return vl_error(VL_ERR_FORMAT, "%s: normalizer without a type", t->name);
  if (!strcmp(ty, "Sequence")) {
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(n, "normalizers"), *e;
    if (!cJSON_IsArray(l))
      return vl_error(VL_ERR_FORMAT, "%s: Sequence normalizer without a list", t->name);
    cJSON_ArrayForEach(e, l) if (load_normalizer(t, e)) return VL_ERR_FORMAT;
    return 0;
  }
  static const struct {
    const char *n;
    int k;
  } simple[] = {{"NFC", NORM_NFC},         {"NFD", NORM_NFD},
                {"NFKC", NORM_NFKC},       {"NFKD", NORM_NFKD},
                {"Lowercase", NORM_LOWER}, {"StripAccents", NORM_STRIP_ACCENTS}};
  for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
    if (!strcmp(ty, simple[i].n)) return tk_push_norm(t, simple[i].k) ? 0 : VL_ERR_NOMEM;
  tk_norm *nm;
  if (!strcmp(ty, "BertNormalizer")) {
    if (!(nm = tk_push_norm(t, NORM_BERT))) return VL_ERR_NOMEM;
    nm->clean_text = jbool(n, "clean_text", 1);
    nm->chinese = jbool(n, "handle_chinese_chars", 1);
    nm->lowercase = jbool(n, "lowercase", 1);
    nm->strip_accents = jbool(n, "strip_accents", nm->lowercase); /* null: follows lowercase */
    return 0;
  }
  if (!strcmp(ty, "Replace")) {
    if (!(nm = tk_push_norm(t, NORM_REPLACE))) return VL_ERR_NOMEM;
    if (!jstr(n, "content"))
      return vl_error(VL_ERR_FORMAT, "%s: Replace normalizer without content", t->name);
    if (!(nm->content = xstrdup(t, jstr(n, "content")))) return VL_ERR_NOMEM;
    return pattern_re(t, cJSON_GetObjectItemCaseSensitive(n, "pattern"), &nm->re,
                      "Replace normalizer");
  }
  if (!strcmp(ty, "Prepend")) {
    if (!jstr(n, "prepend"))
      return vl_error(VL_ERR_FORMAT, "%s: Prepend normalizer without a string", t->name);
    if (!(nm = tk_push_norm(t, NORM_PREPEND))) return VL_ERR_NOMEM;
    return (nm->content = xstrdup(t, jstr(n, "prepend"))) ? 0 : VL_ERR_NOMEM;
  }
  if (!strcmp(ty, "Strip")) {
    if (!(nm = tk_push_norm(t, NORM_STRIP))) return VL_ERR_NOMEM;
    nm->left = jbool(n, "strip_left", 1);
    nm->right = jbool(n, "strip_right", 1);
    return 0;
  }
  return vl_error(VL_ERR_UNSUPPORTED, "%s: normalizer '%s' not supported", t->name, ty);
}

static int behavior(vl_tokenizer *t, const cJSON *o, int def, int *out) {
  const char *b = jstr(o, "behavior");
  static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                "Contiguous"};
  *out = def;
  if (!b) return 0;
  for (int i = 0; i < 5; i++)
    if (!strcmp(b, names[i])) {
      *out = i;
      return 0;
    }
  return vl_error(VL_ERR_FORMAT, "%s: unknown split behavior '%s'", t->name, b);
}

static int load_pre(vl_tokenizer *t, const cJSON *n) {
  if (!n || cJSON_IsNull(n)) return 0;
  const char *ty = jstr(n, "type");
  if (!ty) return vl_error(VL_ERR_FORMAT, "%s: pre_tokenizer without a type", t->name);
  tk_pre *p;
  if (!strcmp(ty, "Sequence")) {
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(n, "pretokenizers"), *e;
    if (!cJSON_IsArray(l))
      return vl_error(VL_ERR_FORMAT, "%s: Sequence pre_tokenizer without a list", t->name);
    cJSON_ArrayForEach(e, l) if (load_pre(t, e)) return VL_ERR_FORMAT;
    return 0;
  }
  if (!strcmp(ty, "Split")) {
    if (!(p = tk_push_pre(t, PRE_SPLIT))) return VL_ERR_NOMEM;
    p->invert = jbool(n, "invert", 0);
    if (behavior(t, n, BEH_REMOVED, &p->behavior)) return VL_ERR_FORMAT;
    return pattern_re(t, cJSON_GetObjectItemCaseSensitive(n, "pattern"), &p->re,
                      "Split pre_tokenizer");
  }
  if (!strcmp(ty, "ByteLevel")) {
    if (!(p = tk_push_pre(t, PRE_BYTELEVEL))) return VL_ERR_NOMEM;
    p->add_prefix_space = jbool(n, "add_prefix_space", 1);
    p->use_regex = jbool(n, "use_regex", 1);
    if (p->use_regex && !(p->re = tk_compile(t, TK_RE_GPT2, strlen(TK_RE_GPT2), 0)))
      return VL_ERR_FORMAT;
    return 0;
  }
  if (!strcmp(ty, "Whitespace")) {
    if (!(p = tk_push_pre(t, PRE_WHITESPACE))) return VL_ERR_NOMEM;
    const char *re = "\\w+|[^\\w\\s]+";
    return (p->re = tk_compile(t, re, strlen(re), 0)) ? 0 : VL_ERR_FORMAT;
  }
  if (!strcmp(ty, "WhitespaceSplit"))
    return tk_push_pre(t, PRE_WHITESPACE_SPLIT) ? 0 : VL_ERR_NOMEM;
  if (!strcmp(ty, "BertPreTokenizer")) return tk_push_pre(t, PRE_BERT) ? 0 : VL_ERR_NOMEM;
  if (!strcmp(ty, "Punctuation")) {
    int b;
    if (behavior(t, n, BEH_ISOLATED, &b)) return VL_ERR_FORMAT;
    if (b != BEH_ISOLATED)
      return vl_error(VL_ERR_UNSUPPORTED,
                      "%s: Punctuation pre_tokenizer: only Isolated is supported", t->name);
    return tk_push_pre(t, PRE_PUNCT) ? 0 : VL_ERR_NOMEM;
  }
  if (!strcmp(ty, "Digits")) {
    if (!(p = tk_push_pre(t, PRE_DIGITS))) return VL_ERR_NOMEM;
    p->individual_digits = jbool(n, "individual_digits", 0);
    return 0;
  }
  return vl_error(VL_ERR_UNSUPPORTED, "%s: pre_tokenizer '%s' not supported", t->name, ty);
}

static int load_decoder(vl_tokenizer *t, const cJSON *n) {
  if (!n || cJSON_IsNull(n)) return 0;
  const char *ty = jstr(n, "type");
  if (!ty) return vl_error(VL_ERR_FORMAT, "%s: decoder without a type", t->name);
  tk_dec *d;
  if (!strcmp(ty, "Sequence")) {
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(n, "decoders"), *e;
    if (!cJSON_IsArray(l))
      return vl_error(VL_ERR_FORMAT, "%s: Sequence decoder without a list", t->name);
    cJSON_ArrayForEach(e, l) if (load_decoder(t, e)) return VL_ERR_FORMAT;
    return 0;
  }
  if (!strcmp(ty, "ByteLevel")) return tk_push_dec(t, DEC_BYTELEVEL) ? 0 : VL_ERR_NOMEM;
  if (!strcmp(ty, "ByteFallback")) return tk_push_dec(t, DEC_BYTEFALLBACK) ? 0 : VL_ERR_NOMEM;
  if (!strcmp(ty, "Fuse")) return tk_push_dec(t, DEC_FUSE) ? 0 : VL_ERR_NOMEM;
  if (!strcmp(ty, "WordPiece")) {
    if (!(d = tk_push_dec(t, DEC_WORDPIECE))) return VL_ERR_NOMEM;
    d->cleanup = jbool(n, "cleanup", 1);
    return (d->a = xstrdup(t, jstr(n, "prefix") ? jstr(n, "prefix") : "##")) ? 0 : VL_ERR_NOMEM;
  }
  if (!strcmp(ty, "BPEDecoder")) {
    if (!(d = tk_push_dec(t, DEC_BPE))) return VL_ERR_NOMEM;
    return (d->a = xstrdup(t, jstr(n, "suffix") ? jstr(n, "suffix") : "</w>")) ? 0 : VL_ERR_NOMEM;
  }
  if (!strcmp(ty, "Replace")) {
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(n, "pattern");
    if (!jstr(pat, "String") || !jstr(n, "content"))
      return vl_error(VL_ERR_UNSUPPORTED, "%s: Replace decoder: only a String pattern is supported",
                      t->name);
    if (!(d = tk_push_dec(t, DEC_REPLACE))) return VL_ERR_NOMEM;
    if (!(d->a = xstrdup(t, jstr(pat, "String")))) return VL_ERR_NOMEM;
    return (d->b = xstrdup(t, jstr(n, "content"))) ? 0 : VL_ERR_NOMEM;
  }
  if (!strcmp(ty, "Strip")) {
    if (!(d = tk_push_dec(t, DEC_STRIP))) return VL_ERR_NOMEM;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(n, "start"),
                *b = cJSON_GetObjectItemCaseSensitive(n, "stop");
    d->start = cJSON_IsNumber(a) && a->valueint > 0 ? a->valueint : 0;
    d->stop = cJSON_IsNumber(b) && b->valueint > 0 ? b->valueint : 0;
    return 0;
  }
  return vl_error(VL_ERR_UNSUPPORTED, "%s: decoder '%s' not supported", t->name, ty);
}

/* [CLS]/[SEP]-style pair "sep": ["[SEP]", 102] */
static int pair_id(vl_tokenizer *t, const cJSON *n, const char *k, int32_t *id) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(n, k);
  if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
    return vl_error(VL_ERR_FORMAT, "%s: post_processor '%s' must be [token, id]", t->name, k);
  return jid(t, cJSON_GetArrayItem(v, 1), k, id);
}

static int load_post(vl_tokenizer *t, const cJSON *n) {
  if (!n || cJSON_IsNull(n)) return 0;
  const char *ty = jstr(n, "type");
  if (!ty) return vl_error(VL_ERR_FORMAT, "%s: post_processor without a type", t->name);
  if (!strcmp(ty, "ByteLevel")) return 0; /* offsets only */
  if (!strcmp(ty, "Sequence")) {
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(n, "processors"), *e;
    if (!cJSON_IsArray(l))
      return vl_error(VL_ERR_FORMAT, "%s: Sequence post_processor without a list", t->name);
    cJSON_ArrayForEach(e, l) if (load_post(t, e)) return VL_ERR_FORMAT;
    return 0;
  }
  if (!strcmp(ty, "BertProcessing") || !strcmp(ty, "RobertaProcessing")) {
    int32_t cls, sep;
    if (pair_id(t, n, "cls", &cls) || pair_id(t, n, "sep", &sep)) return VL_ERR_FORMAT;
    if (tk_push_post(t, 0, cls) || tk_push_post(t, 1, sep)) return VL_ERR_NOMEM;
    return 0;
  }
  if (!strcmp(ty, "TemplateProcessing")) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(n, "single"), *e;
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(n, "special_tokens");
    if (!cJSON_IsArray(single))
      return vl_error(VL_ERR_FORMAT, "%s: TemplateProcessing without 'single'", t->name);
    int after = 0;
    cJSON_ArrayForEach(e, single) {
      if (cJSON_GetObjectItemCaseSensitive(e, "Sequence")) {
        if (after)
          return vl_error(VL_ERR_UNSUPPORTED, "%s: TemplateProcessing: two sequences in 'single'",
                          t->name);
        after = 1;
        continue;
      }
      const cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "SpecialToken");
      const char *name = jstr(st, "id");
      if (!name)
        return vl_error(VL_ERR_FORMAT, "%s: TemplateProcessing: bad item in 'single'", t->name);
      const cJSON *sp = cJSON_GetObjectItemCaseSensitive(specials, name);
      const cJSON *ids = cJSON_GetObjectItemCaseSensitive(sp, "ids"), *x;
      if (!cJSON_IsArray(ids))
        return vl_error(VL_ERR_FORMAT, "%s: TemplateProcessing: special token '%s' has no ids",
                        t->name, name);
      cJSON_ArrayForEach(x, ids) {
        int32_t id;
        if (jid(t, x, name, &id)) return VL_ERR_FORMAT;
        if (tk_push_post(t, after, id)) return VL_ERR_NOMEM;
      }
    }
    return 0;
  }
  return vl_error(VL_ERR_UNSUPPORTED, "%s: post_processor '%s' not supported", t->name, ty);
}

static int add_merge_str(vl_tokenizer *t, const char *s, size_t n, uint32_t rank) {
  const char *sp = memchr(s, ' ', n);
  if (!sp || sp == s || sp + 1 == s + n)
    return vl_error(VL_ERR_FORMAT, "%s: merge %u '%.*s' is not \"a b\"", t->name, rank,
                    (int)(n > 80 ? 80 : n), s);
  return tk_add_merge(t, s, (size_t)(sp - s), sp + 1, n - (size_t)(sp - s) - 1, rank);
}

static int load_model(vl_tokenizer *t, const cJSON *m) {
  if (!cJSON_IsObject(m)) return vl_error(VL_ERR_FORMAT, "%s: no \"model\" object", t->name);
  const char *ty = jstr(m, "type");
  const cJSON *merges = cJSON_GetObjectItemCaseSensitive(m, "merges");
  if (!ty) ty = merges ? "BPE" : "WordPiece";
  if (!strcmp(ty, "BPE"))
    t->model = TK_BPE;
  else if (!strcmp(ty, "WordPiece"))
    t->model = TK_WORDPIECE;
  else
    return vl_error(VL_ERR_UNSUPPORTED, "%s: model type '%s' not supported (BPE, WordPiece are)",
                    t->name, ty);
  const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(m, "vocab"), *e;
  if (!cJSON_IsObject(vocab))
    return vl_error(VL_ERR_FORMAT, "%s: model.vocab must be an object", t->name);
  cJSON_ArrayForEach(e, vocab) {
    int32_t id;
    if (jid(t, e, "model.vocab", &id) || tk_set_token(t, id, e->string, strlen(e->string)))
      return vl_error_context("token '%.80s'", e->string);
  }
  if (tk_build_vocab_map(t)) return VL_ERR_FORMAT;
  const char *unk = jstr(m, "unk_token");
  if (unk && (t->unk = tk_vocab_find(t, unk, strlen(unk))) < 0)
    return vl_error(VL_ERR_FORMAT, "%s: unk_token '%s' is not in the vocabulary", t->name, unk);
  if (t->model == TK_WORDPIECE) {
    if (!(t->wp_prefix =
              xstrdup(t, jstr(m, "continuing_subword_prefix") ? jstr(m, "continuing_subword_prefix")
                                                              : "##")))
      return VL_ERR_NOMEM;
    const cJSON *mx = cJSON_GetObjectItemCaseSensitive(m, "max_input_chars_per_word");
    if (cJSON_IsNumber(mx) && mx->valuedouble >= 1 && mx->valuedouble < 1e9)
      t->wp_max_chars = mx->valueint;
    return 0;
  }
  const char *cp = jstr(m, "continuing_subword_prefix"), *sf = jstr(m, "end_of_word_suffix");
  if (cp && *cp && !(t->cont_prefix = xstrdup(t, cp))) return VL_ERR_NOMEM;
  if (sf && *sf && !(t->eow_suffix = xstrdup(t, sf))) return VL_ERR_NOMEM;
  t->fuse_unk = jbool(m, "fuse_unk", 0);
  t->byte_fallback = jbool(m, "byte_fallback", 0);
  t->ignore_merges = jbool(m, "ignore_merges", 0);
  if (merges && !cJSON_IsArray(merges))
    return vl_error(VL_ERR_FORMAT, "%s: model.merges must be a list", t->name);
  uint32_t rank = 0;
  cJSON_ArrayForEach(e, merges) {
    int rc;
    if (cJSON_IsString(e)) {
      rc = add_merge_str(t, e->valuestring, strlen(e->valuestring), rank);
    } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 &&
               cJSON_IsString(cJSON_GetArrayItem(e, 0)) &&
               cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
      const char *a = cJSON_GetArrayItem(e, 0)->valuestring,
                 *b = cJSON_GetArrayItem(e, 1)->valuestring;
      rc = tk_add_merge(t, a, strlen(a), b, strlen(b), rank);
    } else {
      rc = vl_error(VL_ERR_FORMAT, "%s: merge %u must be \"a b\" or [a, b]", t->name, rank);
    }
    if (rc) return rc;
    rank++;
  }
  return 0;
}

static int load_added(vl_tokenizer *t, const cJSON *l) {
  const cJSON *e;
  if (!l || cJSON_IsNull(l)) return 0;
  if (!cJSON_IsArray(l)) return vl_error(VL_ERR_FORMAT, "%s: added_tokens must be a list", t->name);
  cJSON_ArrayForEach(e, l) {
    int32_t id;
    const char *c = jstr(e, "content");
    if (!c || jid(t, cJSON_GetObjectItemCaseSensitive(e, "id"), "added token id", &id))
      return vl_error(VL_ERR_FORMAT, "%s: added token needs \"id\" and \"content\"", t->name);
    if (tk_add_added(t, c, strlen(c), id, jbool(e, "special", 0), jbool(e, "lstrip", 0),
                     jbool(e, "rstrip", 0), jbool(e, "single_word", 0)))
      return VL_ERR_FORMAT;
  }
  return 0;
}

vl_tokenizer *vl_tokenizer_from_json(const char *json, size_t len, const char *name) {
  vl_tokenizer *t = tk_new(name);
  if (!t) return NULL;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
  if (!root) {
    vl_error(VL_ERR_FORMAT, "%s: invalid JSON near byte %zu", t->name,
             end && end >= json ? (size_t)(end - json) : 0);
    return fail(t);
  }
  int rc =
      cJSON_IsObject(root) ? 0 : vl_error(VL_ERR_FORMAT, "%s: top level is not an object", t->name);
  if (!rc) rc = load_model(t, cJSON_GetObjectItemCaseSensitive(root, "model"));
  if (!rc) rc = load_added(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"));
  if (!rc) rc = load_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"));
  if (!rc) rc = load_pre(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"));
  if (!rc) rc = load_post(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"));
  if (!rc) rc = load_decoder(t, cJSON_GetObjectItemCaseSensitive(root, "decoder"));
  cJSON_Delete(root);
  for (int i = 0; !rc && i < t->n_post_prefix; i++)
    if (!vl_tokenizer_id_to_token(t, t->post_prefix[i]))
      rc = vl_error(VL_ERR_FORMAT, "%s: post_processor id %d is not a token", t->name,
                    t->post_prefix[i]);
  for (int i = 0; !rc && i < t->n_post_suffix; i++)
    if (!vl_tokenizer_id_to_token(t, t->post_suffix[i]))
      rc = vl_error(VL_ERR_FORMAT, "%s: post_processor id %d is not a token", t->name,
                    t->post_suffix[i]);
  if (!rc) rc = tk_finish(t);
  return rc ? fail(t) : t;
}

/* ---- tokenizer_config.json: special tokens ----------------------------- */

static cJSON *read_config(const char *path) {
  if (!path) return NULL;
  size_t n;
  char *s = read_all(path, &n);
  if (!s) return NULL;
  cJSON *c = cJSON_ParseWithLength(s, n);
  free(s);
  if (!c) vl_error(VL_ERR_FORMAT, "%s: invalid JSON", path);
  return c;
}

static void config_specials(vl_tokenizer *t, const cJSON *cfg) {
  const char *b = jtoken(cfg, "bos_token"), *e = jtoken(cfg, "eos_token"),
             *p = jtoken(cfg, "pad_token");
  if (b) t->bos = vl_tokenizer_token_to_id(t, b);
  if (e) t->eos = vl_tokenizer_token_to_id(t, e);
  if (p) t->pad = vl_tokenizer_token_to_id(t, p);
}

/* Marks configured special tokens that are in the vocabulary as added tokens. */
static int config_added(vl_tokenizer *t, const cJSON *cfg, const char *const *keys,
                        const char *const *defaults) {
  for (int i = 0; keys[i]; i++) {
    const char *s = cfg ? jtoken(cfg, keys[i]) : NULL;
    if (!s) s = defaults ? defaults[i] : NULL;
    if (!s || !*s) continue;
    int32_t id = tk_vocab_find(t, s, strlen(s));
    if (id < 0 || vl_tokenizer_is_special(t, id)) continue;
    if (tk_add_added(t, s, strlen(s), id, 1, 0, 0, 0)) return VL_ERR_FORMAT;
  }
  return 0;
}

/* ---- vocab.json + merges.txt (GPT-2, CLIP) ----------------------------- */

vl_tokenizer *vl_tokenizer_from_bpe_files(const char *vocab_json, const char *merges_txt,
                                          const char *config_json) {
  vl_tokenizer *t = tk_new(vocab_json);
  if (!t) return NULL;
  cJSON *cfg = NULL;
  if (config_json && !(cfg = read_config(config_json))) return fail(t);
  size_t n;
  char *s = read_all(vocab_json, &n);
  cJSON *v = s ? cJSON_ParseWithLength(s, n) : NULL;
  free(s);
  int rc = 0;
  if (!s)
    rc = VL_ERR_IO;
  else if (!cJSON_IsObject(v))
    rc = vl_error(VL_ERR_FORMAT, "%s: expected a JSON object {token: id}", vocab_json);
  const cJSON *e;
  t->model = TK_BPE;
  if (!rc) cJSON_ArrayForEach(e, v) {
      int32_t id;
      if ((rc = jid(t, e, "vocab", &id)) ||
          (rc = tk_set_token(t, id, e->string, strlen(e->string))))
        break;
    }
  cJSON_Delete(v);
  if (!rc) rc = tk_build_vocab_map(t);
  const char *cls = cfg ? jstr(cfg, "tokenizer_class") : NULL;
  int clip = cls && strstr(cls, "CLIP");
  char *m = NULL;
  if (!rc && !(m = read_all(merges_txt, &n))) rc = VL_ERR_IO;
  if (!rc && !cls && strstr(m, "</w>")) clip = 1;
  if (!rc && clip && !(t->eow_suffix = xstrdup(t, "</w>"))) rc = VL_ERR_NOMEM;
  uint32_t rank = 0;
  for (char *line = m; !rc && line && *line;) {
    char *nl = strchr(line, '\n');
    size_t ln = nl ? (size_t)(nl - line) : strlen(line);
    while (ln && (line[ln - 1] == '\r'))
      ln--;
    if (ln && !(rank == 0 && ln >= 8 && !memcmp(line, "#version", 8))) {
      rc = add_merge_str(t, line, ln, rank);
      rank++;
    }
    line = nl ? nl + 1 : NULL;
  }
  free(m);
  if (!rc && clip) {
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "pad_token", NULL};
    static const char *const defs[] = {"<|startoftext|>", "<|endoftext|>", "<|endoftext|>", NULL,
                                       NULL};
    const char *unk = cfg && jtoken(cfg, "unk_token") ? jtoken(cfg, "unk_token") : "<|endoftext|>";
    t->unk = tk_vocab_find(t, unk, strlen(unk));
    tk_norm *nm;
    tk_pre *p;
    rc = config_added(t, cfg, keys, defs);
    /* transformers' CLIPConverter pipeline */
    if (!rc && (!tk_push_norm(t, NORM_NFC) || !(nm = tk_push_norm(t, NORM_REPLACE)) ||
                !(nm->re = tk_compile(t, "\\s+", 3, 0)) || !(nm->content = xstrdup(t, " ")) ||
                !tk_push_norm(t, NORM_LOWER) || !(p = tk_push_pre(t, PRE_SPLIT)) ||
                !(p->re = tk_compile(t, TK_RE_CLIP, strlen(TK_RE_CLIP), 0))))
      rc = VL_ERR_FORMAT;
    if (!rc) {
      p->behavior = BEH_REMOVED;
      p->invert = 1;
      if (!(p = tk_push_pre(t, PRE_BYTELEVEL)) ||
          !(p->re = tk_compile(t, TK_RE_GPT2, strlen(TK_RE_GPT2), 0)))
        rc = VL_ERR_FORMAT;
      else
        p->use_regex = 1;
    }
    const char *b = defs[0], *en = defs[1];
    if (cfg && jtoken(cfg, "bos_token")) b = jtoken(cfg, "bos_token");
    if (cfg && jtoken(cfg, "eos_token")) en = jtoken(cfg, "eos_token");
    int32_t bi = vl_tokenizer_token_to_id(t, b), ei = vl_tokenizer_token_to_id(t, en);
    if (!rc && (bi < 0 || ei < 0))
      rc = vl_error(VL_ERR_FORMAT, "%s: '%s' or '%s' not in the vocabulary", vocab_json, b, en);
    if (!rc && (tk_push_post(t, 0, bi) || tk_push_post(t, 1, ei))) rc = VL_ERR_NOMEM;
    tk_dec *d;
    if (!rc && (!tk_push_dec(t, DEC_BYTELEVEL) || !(d = tk_push_dec(t, DEC_REPLACE)) ||
                !(d->a = xstrdup(t, "</w>")) || !(d->b = xstrdup(t, " ")) ||
                !(d = tk_push_dec(t, DEC_STRIP))))
      rc = VL_ERR_NOMEM;
    if (!rc) d->start = d->stop = 1 << 30;
  } else if (!rc) {
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "pad_token", NULL};
    static const char *const defs[] = {"<|endoftext|>", NULL, NULL, NULL, NULL};
    tk_pre *p;
    rc = config_added(t, cfg, keys, defs);
    if (!rc && (!(p = tk_push_pre(t, PRE_BYTELEVEL)) ||
                !(p->re = tk_compile(t, TK_RE_GPT2, strlen(TK_RE_GPT2), 0))))
      rc = VL_ERR_FORMAT;
    if (!rc) {
      p->use_regex = 1;
      p->add_prefix_space = cfg ? jbool(cfg, "add_prefix_space", 0) : 0;
      if (!tk_push_dec(t, DEC_BYTELEVEL)) rc = VL_ERR_NOMEM;
    }
  }
  if (!rc) config_specials(t, cfg);
  cJSON_Delete(cfg);
  if (!rc) rc = tk_finish(t);
  return rc ? fail(t) : t;
}

/* ---- vocab.txt (BERT WordPiece) ---------------------------------------- */

vl_tokenizer *vl_tokenizer_from_vocab_txt(const char *vocab_txt, const char *config_json) {
  vl_tokenizer *t = tk_new(vocab_txt);
  if (!t) return NULL;
  cJSON *cfg = NULL;
  if (config_json && !(cfg = read_config(config_json))) return fail(t);
  size_t n;
  char *s = read_all(vocab_txt, &n);
  int rc = s ? 0 : VL_ERR_IO;
  int32_t id = 0;
  for (char *line = s; !rc && line && line < s + n;) {
    char *nl = memchr(line, '\n', (size_t)(s + n - line));
    size_t ln = nl ? (size_t)(nl - line) : (size_t)(s + n - line);
    if (ln && line[ln - 1] == '\r') ln--;
    if (memchr(line, 0, ln))
      rc = vl_error(VL_ERR_FORMAT, "%s: line %d contains a NUL byte", vocab_txt, id + 1);
    else if (ln)
      rc = tk_set_token(t, id, line, ln);
    id++;
    line = nl ? nl + 1 : NULL;
  }
  free(s);
  t->model = TK_WORDPIECE;
  if (!rc && !(t->wp_prefix = xstrdup(t, "##"))) rc = VL_ERR_NOMEM;
  if (!rc) rc = tk_build_vocab_map(t);
  static const char *const keys[] = {"unk_token",  "sep_token", "pad_token", "cls_token",
                                     "mask_token", "bos_token", "eos_token", NULL};
  static const char *const defs[] = {"[UNK]",  "[SEP]", "[PAD]", "[CLS]",
                                     "[MASK]", NULL,    NULL,    NULL};
  if (!rc) rc = config_added(t, cfg, keys, defs);
  const char *unk = cfg && jtoken(cfg, "unk_token") ? jtoken(cfg, "unk_token") : "[UNK]";
  const char *cls = cfg && jtoken(cfg, "cls_token") ? jtoken(cfg, "cls_token") : "[CLS]";
  const char *sep = cfg && jtoken(cfg, "sep_token") ? jtoken(cfg, "sep_token") : "[SEP]";
  if (!rc) {
    t->unk = tk_vocab_find(t, unk, strlen(unk));
    int32_t ci = tk_vocab_find(t, cls, strlen(cls)), si = tk_vocab_find(t, sep, strlen(sep));
    if (ci < 0 || si < 0)
      rc = vl_error(VL_ERR_FORMAT, "%s: '%s' or '%s' not in the vocabulary", vocab_txt, cls, sep);
    else if (tk_push_post(t, 0, ci) || tk_push_post(t, 1, si))
      rc = VL_ERR_NOMEM;
  }
  tk_norm *nm;
  tk_dec *d;
  if (!rc && (!(nm = tk_push_norm(t, NORM_BERT)) || !tk_push_pre(t, PRE_BERT) ||
              !(d = tk_push_dec(t, DEC_WORDPIECE)) || !(d->a = xstrdup(t, "##"))))
    rc = VL_ERR_NOMEM;
  if (!rc) {
    nm->clean_text = 1;
    nm->lowercase = cfg ? jbool(cfg, "do_lower_case", 1) : 1;
    nm->chinese = cfg ? jbool(cfg, "tokenize_chinese_chars", 1) : 1;
    nm->strip_accents = cfg ? jbool(cfg, "strip_accents", nm->lowercase) : nm->lowercase;
    d->cleanup = 1;
    config_specials(t, cfg);
  }
  cJSON_Delete(cfg);
  if (!rc) rc = tk_finish(t);
  return rc ? fail(t) : t;
}

/* ---- GGUF -------------------------------------------------------------- */

static int gguf_opt_id(const vl_gguf *g, const char *key, int32_t n, int32_t *out) {
  int64_t v;
  if (vl_gguf_find_key(g, key) < 0) return 0;
  if (vl_gguf_get_i64(g, key, &v)) return VL_ERR_FORMAT;
  if (v >= 0 && v < n) *out = (int32_t)v; /* llama.cpp tolerates -1 / out-of-range as "none" */
  return 0;
}

vl_tokenizer *vl_tokenizer_from_gguf(const vl_gguf *g) {
  vl_tokenizer *t = tk_new(vl_gguf_name(g));
  if (!t) return NULL;
  const char *model, *pre = "default";
  size_t ml, pl = 7;
  if (vl_gguf_get_str(g, "tokenizer.ggml.model", &model, &ml)) return fail(t);
  if (ml != 4 || memcmp(model, "gpt2", 4)) {
    vl_error(VL_ERR_UNSUPPORTED, "%s: tokenizer model '%.*s' not supported (gpt2 is)", t->name,
             (int)ml, model);
    return fail(t);
  }
  if (vl_gguf_find_key(g, "tokenizer.ggml.pre") >= 0 &&
      vl_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &pl))
    return fail(t);
  const char *re = NULL;
  static const char *const gpt2_like[] = {"default",     "gpt-2",   "gpt2",       "phi-2",
                                          "jina-es",     "jina-de", "jina-v2-es", "jina-v2-de",
                                          "roberta-bpe", NULL};
  for (int i = 0; gpt2_like[i]; i++)
    if (strlen(gpt2_like[i]) == pl && !memcmp(pre, gpt2_like[i], pl)) re = TK_RE_GPT2;
  if (pl == 5 && !memcmp(pre, "qwen2", 5)) re = TK_RE_QWEN2;
  if ((pl == 9 && !memcmp(pre, "llama-bpe", 9)) || (pl == 6 && !memcmp(pre, "llama3", 6)) ||
      (pl == 9 && !memcmp(pre, "smaug-bpe", 9)))
    re = TK_RE_LLAMA3;
  if (!re) {
    vl_error(VL_ERR_UNSUPPORTED,
             "%s: pre-tokenizer '%.*s' not supported (gpt-2, qwen2, llama-bpe are)", t->name,
             (int)(pl > 64 ? 64 : pl), pre);
    return fail(t);
  }
  int64_t ti = vl_gguf_find_key(g, "tokenizer.ggml.tokens");
  int64_t mi = vl_gguf_find_key(g, "tokenizer.ggml.merges");
  int64_t yi = vl_gguf_find_key(g, "tokenizer.ggml.token_type");
  if (ti < 0 || vl_gguf_arr_type(g, ti) != VL_GGUF_STRING) {
    vl_error(VL_ERR_FORMAT, "%s: tokenizer.ggml.tokens missing or not a string array", t->name);
    return fail(t);
  }
  if (mi >= 0 && vl_gguf_arr_type(g, mi) != VL_GGUF_STRING) {
    vl_error(VL_ERR_FORMAT, "%s: tokenizer.ggml.merges is not a string array", t->name);
    return fail(t);
  }
  uint64_t nt = vl_gguf_arr_n(g, ti);
  if (nt == 0 || nt >= (1u << 26)) {
    vl_error(VL_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries", t->name,
             (unsigned long long)nt);
    return fail(t);
  }
  if (yi >= 0 && (vl_gguf_arr_n(g, yi) != nt || vl_gguf_arr_type(g, yi) == VL_GGUF_STRING ||
                  vl_gguf_arr_type(g, yi) >= VL_GGUF_NTYPES)) {
    vl_error(VL_ERR_FORMAT, "%s: tokenizer.ggml.token_type must be %llu integers", t->name,
             (unsigned long long)nt);
    return fail(t);
  }
  t->model = TK_BPE;
  int rc = 0;
  for (uint64_t i = 0; i < nt && !rc; i++) {
    size_t l;
    const char *s = vl_gguf_arr_str(g, ti, i, &l);
    rc = tk_set_token(t, (int32_t)i, s, l);
  }
  if (!rc) rc = tk_build_vocab_map(t);
  for (uint64_t i = 0; mi >= 0 && i < vl_gguf_arr_n(g, mi) && !rc; i++) {
    size_t l;
    const char *s = vl_gguf_arr_str(g, mi, i, &l);
    rc = add_merge_str(t, s, l, (uint32_t)i);
  }
  /* control (3) and user-defined (4) tokens are matched in the text first */
  for (uint64_t i = 0; yi >= 0 && i < nt && !rc; i++) {
    int64_t ty = vl_gguf_arr_i64(g, yi, i);
    if (ty == 3 || ty == 4)
      rc = tk_add_added(t, t->tok[i], t->tok_len[i], (int32_t)i, ty == 3, 0, 0, 0);
  }
  tk_pre *p;
  if (!rc && (!(p = tk_push_pre(t, PRE_SPLIT)) || !(p->re = tk_compile(t, re, strlen(re), 0))))
    rc = VL_ERR_FORMAT;
  if (!rc) {
    p->behavior = BEH_ISOLATED;
    if (!(p = tk_push_pre(t, PRE_BYTELEVEL)) || !tk_push_dec(t, DEC_BYTELEVEL)) rc = VL_ERR_NOMEM;
  }
  if (!rc) rc = gguf_opt_id(g, "tokenizer.ggml.bos_token_id", t->n_ids, &t->bos);
  if (!rc) rc = gguf_opt_id(g, "tokenizer.ggml.eos_token_id", t->n_ids, &t->eos);
  if (!rc) rc = gguf_opt_id(g, "tokenizer.ggml.padding_token_id", t->n_ids, &t->pad);
  if (!rc) rc = gguf_opt_id(g, "tokenizer.ggml.unknown_token_id", t->n_ids, &t->unk);
  int add_bos = 0, add_eos = 0;
  if (!rc && vl_gguf_find_key(g, "tokenizer.ggml.add_bos_token") >= 0)
    rc = vl_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos);
  if (!rc && vl_gguf_find_key(g, "tokenizer.ggml.add_eos_token") >= 0)
    rc = vl_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &add_eos);
  if (!rc && add_bos && t->bos >= 0) rc = tk_push_post(t, 0, t->bos);
  if (!rc && add_eos && t->eos >= 0) rc = tk_push_post(t, 1, t->eos);
  if (!rc) rc = tk_finish(t);
  return rc ? fail(t) : t;
}

/* ---- dispatch ---------------------------------------------------------- */

static int exists(const char *path) {
  struct stat st;
  return !stat(path, &st) && S_ISREG(st.st_mode);
}

vl_tokenizer *vl_tokenizer_load(const char *path) {
  struct stat st;
  if (stat(path, &st)) {
    vl_error(VL_ERR_IO, "%s: no such file or folder", path);
    return NULL;
  }
  size_t pl = strlen(path);
  if (!S_ISDIR(st.st_mode)) {
    if (pl >= 5 && !strcmp(path + pl - 5, ".gguf")) {
      vl_gguf *g = vl_gguf_open(path);
      if (!g) return NULL;
      vl_tokenizer *t = vl_tokenizer_from_gguf(g);
      vl_gguf_close(g);
      return t;
    }
    size_t n;
    char *s = read_all(path, &n);
    if (!s) return NULL;
    vl_tokenizer *t = vl_tokenizer_from_json(s, n, path);
    free(s);
    return t;
  }
  char a[4096], b[4096], c[4096];
  snprintf(c, sizeof c, "%s/tokenizer_config.json", path);
  const char *cfg = exists(c) ? c : NULL;
  snprintf(a, sizeof a, "%s/tokenizer.json", path);
  if (exists(a)) {
    size_t n;
    char *s = read_all(a, &n);
    if (!s) return NULL;
    vl_tokenizer *t = vl_tokenizer_from_json(s, n, a);
    free(s);
    if (t && cfg) {
      cJSON *j = read_config(cfg);
      if (!j) {
        vl_tokenizer_free(t);
        return NULL;
      }
      config_specials(t, j);
      cJSON_Delete(j);
    }
    return t;
  }
  snprintf(a, sizeof a, "%s/vocab.json", path);
  snprintf(b, sizeof b, "%s/merges.txt", path);
  if (exists(a) && exists(b)) return vl_tokenizer_from_bpe_files(a, b, cfg);
  snprintf(a, sizeof a, "%s/vocab.txt", path);
  if (exists(a)) return vl_tokenizer_from_vocab_txt(a, cfg);
  vl_error(VL_ERR_NOTFOUND, "%s: no tokenizer.json, vocab.json + merges.txt, or vocab.txt", path);
  return NULL;
}
