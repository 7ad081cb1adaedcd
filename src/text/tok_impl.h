/* Internals shared by the tokenizer core (tokenizer.c) and its loaders
 * (tok_load.c). Not part of the text layer's interface. */
#ifndef VL_TEXT_TOK_IMPL_H
#define VL_TEXT_TOK_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "text/tokenizer.h"

enum { TK_BPE = 1, TK_WORDPIECE = 2 };

enum {
  NORM_NFC = 1,
  NORM_NFD,
  NORM_NFKC,
  NORM_NFKD,
  NORM_LOWER,
  NORM_STRIP_ACCENTS,
  NORM_BERT,
  NORM_REPLACE,
  NORM_PREPEND,
  NORM_STRIP
};

enum {
  PRE_SPLIT = 1,
  PRE_BYTELEVEL,
  PRE_WHITESPACE,
  PRE_WHITESPACE_SPLIT,
  PRE_BERT,
  PRE_PUNCT,
  PRE_DIGITS
};

/* HF SplitDelimiterBehavior */
enum { BEH_REMOVED = 0, BEH_ISOLATED, BEH_MERGED_PREV, BEH_MERGED_NEXT, BEH_CONTIGUOUS };

enum {
  DEC_BYTELEVEL = 1,
  DEC_WORDPIECE,
  DEC_BPE,
  DEC_REPLACE,
  DEC_FUSE,
  DEC_STRIP,
  DEC_BYTEFALLBACK
};

typedef struct {
  int kind;
  int clean_text, chinese, strip_accents, lowercase; /* NORM_BERT */
  int left, right;                                   /* NORM_STRIP */
  pcre2_code *re;                                    /* NORM_REPLACE */
  char *content;                                     /* REPLACE / PREPEND */
} tk_norm;

typedef struct {
  int kind;
  pcre2_code *re; /* PRE_SPLIT, PRE_BYTELEVEL with use_regex */
  int behavior, invert;
  int add_prefix_space, use_regex; /* PRE_BYTELEVEL */
  int individual_digits;           /* PRE_DIGITS */
} tk_pre;

typedef struct {
  int kind;
  char *a, *b; /* WORDPIECE prefix; BPE suffix; REPLACE pattern/content */
  int cleanup;
  int start, stop; /* STRIP */
} tk_dec;

typedef struct {
  char *content;
  size_t len;
  int32_t id;
  int special, lstrip, rstrip, single_word;
} tk_added;

typedef struct {
  uint32_t *slots; /* id + 1, 0 = empty */
  uint32_t mask;
} tk_map;

typedef struct {
  uint64_t *keys; /* (a << 32 | b) + 1, 0 = empty */
  uint32_t *rank, *merged;
  uint32_t mask;
} tk_merges;

struct vl_tokenizer {
  char *name;
  int model;
  /* id -> token (model vocab and added tokens); NULL where no token */
  char **tok;
  uint32_t *tok_len;
  uint8_t *special; /* per id */
  int32_t n_ids, cap_ids;
  tk_map vocab; /* model vocabulary only */
  tk_merges merges;
  int32_t unk;
  int fuse_unk, byte_fallback, ignore_merges;
  char *cont_prefix, *eow_suffix; /* BPE continuing_subword_prefix, end_of_word_suffix */
  char *wp_prefix;                /* WordPiece "##" */
  int wp_max_chars;
  tk_added *added;
  int n_added;
  int32_t *added_by_byte[256]; /* indices into added, longest first, -1 ended */
  tk_norm *norm;
  int n_norm;
  tk_pre *pre;
  int n_pre;
  tk_dec *dec;
  int n_dec;
  int32_t *post_prefix, *post_suffix;
  int n_post_prefix, n_post_suffix;
  int32_t bos, eos, pad;
};

/* Builders used by the loaders. All return 0 or a vl_status with a message. */
vl_tokenizer *tk_new(const char *name);
int tk_set_token(vl_tokenizer *t, int32_t id, const char *s, size_t len); /* model vocab */
int tk_build_vocab_map(vl_tokenizer *t);
int32_t tk_vocab_find(const vl_tokenizer *t, const char *s, size_t len);
int tk_add_merge(vl_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen,
                 uint32_t rank);
int tk_add_added(vl_tokenizer *t, const char *s, size_t len, int32_t id, int special, int lstrip,
                 int rstrip, int single_word);
int tk_finish(vl_tokenizer *t); /* indexes added tokens */
tk_norm *tk_push_norm(vl_tokenizer *t, int kind);
tk_pre *tk_push_pre(vl_tokenizer *t, int kind);
tk_dec *tk_push_dec(vl_tokenizer *t, int kind);
int tk_push_post(vl_tokenizer *t, int suffix, int32_t id);
/* PCRE2 regex in UTF+UCP mode; literal != 0 matches the text as is. */
pcre2_code *tk_compile(const vl_tokenizer *t, const char *pattern, size_t len, int literal);

extern const char *const TK_RE_GPT2;
extern const char *const TK_RE_QWEN2;
extern const char *const TK_RE_LLAMA3;
extern const char *const TK_RE_CLIP;

#endif
