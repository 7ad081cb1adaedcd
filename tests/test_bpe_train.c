/* Byte-level BPE trainer and tokenizer.json writer: merges checked by hand
 * on tiny corpora, the saved file loaded by the project's loader, encode /
 * decode round trips, and a Shapes World corpus whose common words become
 * single tokens. (HF `tokenizers` is not installed for /usr/bin/python3, so
 * there is no Python comparison; the hand cases follow its BpeTrainer.) */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "test.h"
#include "text/bpe_train.h"
#include "text/shapes_enrich.h"
#include "text/tokenizer.h"

static void feed_n(vl_bpe_trainer *t, const char *w, int n) {
  for (int i = 0; i < n; i++)
    CHECK(vl_bpe_trainer_feed(t, w, strlen(w)) == 0);
}

static int merge_is(const vl_bpe_model *m, int r, const char *a, const char *b) {
  return r < m->n_merges && !strcmp(m->tokens[m->merges[r][0]], a) &&
         !strcmp(m->tokens[m->merges[r][1]], b);
}

/* Words (one per line, so each is one pre-token; "\n" pieces are single
 * bytes): hug x10, pug x5, pun x12, bun x4, hugs x5. Pair counts:
 *   u g 20, p u 17, u n 16, h u 15, g s 5, b u 4   -> merge 1: u g
 *   then u n 16 (p u fell to 12)                    -> merge 2: u n
 *   h ug 15                                         -> merge 3: h ug
 *   p un 12                                         -> merge 4: p un
 *   p ug 5 and hug s 5 tie: the smaller left id wins, 'p' (byte id 79) <
 *   'hug' (id 258), HF's rule (string order would pick "hug s")
 *                                                   -> merge 5: p ug
 *   hug s 5                                         -> merge 6: hug s
 *   b un 4                                          -> merge 7: b un
 * after which every word is one token: 7 merges, ids 256..262. */
static void test_hand_merges(void) {
  vl_bpe_options o = vl_bpe_default_options();
  o.vocab_size = 1000;
  o.min_frequency = 1;
  vl_bpe_trainer *t = vl_bpe_trainer_new(&o);
  REQUIRE(t);
  feed_n(t, "hug\n", 10);
  feed_n(t, "pug\n", 5);
  feed_n(t, "pun\n", 12);
  feed_n(t, "bun\n", 4);
  feed_n(t, "hugs\n", 5);
  CHECK(vl_bpe_trainer_n_words(t) == 6); /* five words and "\n" */
  vl_bpe_model m;
  REQUIRE(vl_bpe_trainer_train(t, &m) == 0);
  CHECK(m.n_merges == 7);
  CHECK(m.n_tokens == 263);
  CHECK(merge_is(&m, 0, "u", "g"));
  CHECK(merge_is(&m, 1, "u", "n"));
  CHECK(merge_is(&m, 2, "h", "ug"));
  CHECK(merge_is(&m, 3, "p", "un"));
  CHECK(merge_is(&m, 4, "p", "ug"));
  CHECK(merge_is(&m, 5, "hug", "s"));
  CHECK(merge_is(&m, 6, "b", "un"));
  CHECK(!strcmp(m.tokens[0], "!") && !strcmp(m.tokens[255], "\xc5\x83")); /* GPT-2 order */
  CHECK(!strcmp(m.tokens[188], "\xc4\x80"));                              /* byte 0 -> U+0100 */
  CHECK(m.n_special == 5 && !strcmp(m.special[2], "<|im_end|>"));
  vl_bpe_model_free(&m);
  vl_bpe_trainer_free(t);
}

/* Overlaps: aaaa x3 and aaa x2. (a, a) counts every window: 3*3 + 2*2 =
 * 13 -> "aa"; aaaa -> aa aa, aaa -> aa a (left to right). Then (aa, aa) 3
 * -> "aaaa", (aa, a) 2 -> "aaa". A vocab_size of 256 + 5 specials + 2 stops
 * after two merges; min_frequency 3 stops before "aaa". */
static void test_overlap_and_limits(void) {
  vl_bpe_options o = vl_bpe_default_options();
  o.vocab_size = 1000;
  o.min_frequency = 1;
  for (int run = 0; run < 3; run++) {
    if (run == 1) o.vocab_size = 256 + 5 + 2;
    if (run == 2) {
      o.vocab_size = 1000;
      o.min_frequency = 3;
    }
    vl_bpe_trainer *t = vl_bpe_trainer_new(&o);
    REQUIRE(t);
    feed_n(t, "aaaa\n", 3);
    feed_n(t, "aaa\n", 2);
    vl_bpe_model m;
    REQUIRE(vl_bpe_trainer_train(t, &m) == 0);
    CHECK(m.n_merges == (run == 0 ? 3 : 2));
    CHECK(merge_is(&m, 0, "a", "a"));
    CHECK(merge_is(&m, 1, "aa", "aa"));
    if (run == 0) CHECK(merge_is(&m, 2, "aa", "a"));
    vl_bpe_model_free(&m);
    vl_bpe_trainer_free(t);
  }
}

/* Special tokens are split out of training text: "<|im_end|>" repeated
 * many times must not produce merges such as "<|". Pre-tokens follow the
 * Qwen2 regex: " the" is one word with its space (Ġthe). */
static void test_specials_and_pretokens(void) {
  vl_bpe_options o = vl_bpe_default_options();
  o.vocab_size = 300;
  vl_bpe_trainer *t = vl_bpe_trainer_new(&o);
  REQUIRE(t);
  for (int i = 0; i < 50; i++) {
    const char *s = "<|im_start|>user\nthe cat and the hat<|im_end|>\n";
    REQUIRE(vl_bpe_trainer_feed(t, s, strlen(s)) == 0);
  }
  vl_bpe_model m;
  REQUIRE(vl_bpe_trainer_train(t, &m) == 0);
  int has_the = 0;
  for (int i = 256; i < m.n_tokens; i++) {
    CHECK(strchr(m.tokens[i], '|') == NULL);
    has_the |= !strcmp(m.tokens[i], "\xc4\xa0the"); /* "Ġthe" */
  }
  CHECK(has_the);
  vl_bpe_model_free(&m);
  vl_bpe_trainer_free(t);
}

static void test_bad_options(void) {
  vl_bpe_options o = vl_bpe_default_options();
  o.vocab_size = 100;
  CHECK(vl_bpe_trainer_new(&o) == NULL);
  CHECK(strstr(vl_last_error(), "vocab size 100") != NULL);
  o = vl_bpe_default_options();
  const char *dup[] = {"<a>", "<a>"};
  o.special = dup;
  o.n_special = 2;
  CHECK(vl_bpe_trainer_new(&o) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_INVALID);
  vl_bpe_trainer *t = vl_bpe_trainer_new(NULL);
  REQUIRE(t);
  CHECK(vl_bpe_trainer_feed_file(t, "/nonexistent/corpus.txt") == VL_ERR_IO);
  vl_bpe_trainer_free(t);
  CHECK(vl_bpe_to_json(NULL) == NULL);
}

/* A Shapes World corpus (captions, descriptions, enrich prompts): saved,
 * loaded by vl_tokenizer_load, common words single tokens, round trips. */
static void test_shapes_tokenizer(void) {
  size_t len;
  char *corpus = vl_shapes_enrich_corpus(9, 150, &len);
  REQUIRE(corpus && len > 10000);
  vl_bpe_options o = vl_bpe_default_options();
  o.vocab_size = 600;
  vl_bpe_trainer *t = vl_bpe_trainer_new(&o);
  REQUIRE(t);
  REQUIRE(vl_bpe_trainer_feed(t, corpus, len) == 0);
  vl_bpe_model m;
  REQUIRE(vl_bpe_trainer_train(t, &m) == 0);
  CHECK(m.n_tokens + m.n_special == 600);
  char dir[512];
  snprintf(dir, sizeof dir, "%s/tok", test_tmpdir());
  REQUIRE(vl_bpe_save(&m, dir) == 0);
  vl_tokenizer *tk = vl_tokenizer_load(dir);
  if (!tk) printf("  %s\n", vl_last_error());
  REQUIRE(tk);
  CHECK(vl_tokenizer_n_vocab(tk) == 600);
  CHECK(vl_tokenizer_token_to_id(tk, "<|im_end|>") == m.n_tokens + 2);
  CHECK(vl_tokenizer_eos(tk) == m.n_tokens + 2);
  CHECK(vl_tokenizer_is_special(tk, m.n_tokens + 2));
  /* common words are one token each, with their leading space */
  static const char *const words[] = {" red",    " green",    " blue",  " yellow", " circle",
                                      " square", " triangle", " small", " large",  " left",
                                      " right",  " the",      " and"};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    int32_t *ids;
    size_t n;
    REQUIRE(vl_tokenizer_encode(tk, words[i], strlen(words[i]), 0, &ids, &n) == 0);
    if (n != 1) printf("  '%s' -> %zu tokens\n", words[i], n);
    CHECK(n == 1);
    free(ids);
  }
  /* round trips: corpus lines, specials, arbitrary bytes */
  const char *texts[] = {"<|im_start|>user\na large red circle and a small blue square.<|im_end|>",
                         "Ünïcödé ☃ text, 123 numbers\r\n\ttabs  and  spaces",
                         "<think>\n\n</think>\n\nA small green triangle."};
  for (size_t i = 0; i < 3; i++) {
    int32_t *ids;
    size_t n;
    char *back;
    size_t bl;
    REQUIRE(vl_tokenizer_encode(tk, texts[i], strlen(texts[i]), 0, &ids, &n) == 0);
    REQUIRE(vl_tokenizer_decode(tk, ids, n, 0, &back, &bl) == 0);
    CHECK(bl == strlen(texts[i]) && !memcmp(back, texts[i], bl));
    if (i == 0) CHECK(ids[0] == m.n_tokens + 1); /* <|im_start|> as one id */
    free(ids);
    free(back);
  }
  char bytes[256];
  for (int i = 0; i < 256; i++)
    bytes[i] = (char)(i + 1);
  int32_t *ids;
  size_t n;
  char *back;
  size_t bl;
  REQUIRE(vl_tokenizer_encode(tk, bytes, 255, 0, &ids, &n) == 0);
  REQUIRE(vl_tokenizer_decode(tk, ids, n, 0, &back, &bl) == 0);
  CHECK(bl == 255 && !memcmp(back, bytes, 255));
  free(ids);
  free(back);
  /* the corpus compresses: far fewer tokens than bytes */
  REQUIRE(vl_tokenizer_encode(tk, corpus, len, 0, &ids, &n) == 0);
  CHECK(n * 3 < len);
  free(ids);
  vl_tokenizer_free(tk);
  vl_bpe_model_free(&m);
  vl_bpe_trainer_free(t);
  free(corpus);
}

int main(void) {
  RUN(test_hand_merges);
  RUN(test_overlap_and_limits);
  RUN(test_specials_and_pretokens);
  RUN(test_bad_options);
  RUN(test_shapes_tokenizer);
  return test_summary();
}
