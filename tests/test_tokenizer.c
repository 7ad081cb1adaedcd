/* Tokenizers against the model goldens (Qwen2/3 tokenizer.json, CLIP
 * vocab.json + merges.txt, BLIP vocab.txt) and small hand-checked
 * tokenizer.json documents for the pipeline pieces; malformed files must fail
 * with a message. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "test.h"
#include "text/tokenizer.h"

static cJSON *read_case(const char *dir) {
  char p[256];
  snprintf(p, sizeof p, "golden/%s/case.json", dir);
  size_t n;
  char *s = (char *)test_read_file(test_shared_path(p), &n);
  cJSON *c = s ? cJSON_ParseWithLength(s, n) : NULL;
  free(s);
  return c;
}

static vl_tokenizer *load_dir(const char *dir) {
  char p[256];
  snprintf(p, sizeof p, "golden/%s", dir);
  vl_tokenizer *t = vl_tokenizer_load(test_shared_path(p));
  if (!t) printf("  load %s: %s\n", dir, vl_last_error());
  return t;
}

static int ids_equal(const int32_t *ids, size_t n, const cJSON *arr) {
  if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != n) return 0;
  for (size_t i = 0; i < n; i++)
    if (cJSON_GetArrayItem(arr, (int)i)->valueint != ids[i]) return 0;
  return 1;
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
  printf("  %s:", what);
  for (size_t i = 0; i < n; i++)
    printf(" %d", ids[i]);
  printf("\n");
}

/* Encode case.json's text (key tkey) with add_special and compare with the ids
 * (key ikey) and, where present, tokenizer_tokens; then decode back. */
static void golden_case(const char *dir, const char *tkey, const char *ikey, int add_special,
                        int skip_special, const char *expect_decoded) {
  cJSON *c = read_case(dir);
  REQUIRE(c);
  vl_tokenizer *t = load_dir(dir);
  if (!t) cJSON_Delete(c);
  REQUIRE(t);
  const char *text = cJSON_GetObjectItem(c, tkey)->valuestring;
  int32_t *ids;
  size_t n;
  CHECK(vl_tokenizer_encode(t, text, strlen(text), add_special, &ids, &n) == 0);
  int ok = ids_equal(ids, n, cJSON_GetObjectItem(c, ikey));
  if (!ok) print_ids("got", ids, n);
  CHECK(ok);
  const cJSON *toks = cJSON_GetObjectItem(c, "tokenizer_tokens");
  if (toks) {
    CHECK((size_t)cJSON_GetArraySize(toks) == n);
    for (size_t i = 0; i < n && i < (size_t)cJSON_GetArraySize(toks); i++) {
      const char *tk = vl_tokenizer_id_to_token(t, ids[i]);
      CHECK(tk && !strcmp(tk, cJSON_GetArrayItem(toks, (int)i)->valuestring));
    }
  }
  char *d;
  size_t dl;
  CHECK(vl_tokenizer_decode(t, ids, n, skip_special, &d, &dl) == 0);
  if (strcmp(d, expect_decoded ? expect_decoded : text)) printf("  decoded '%s'\n", d);
  CHECK(!strcmp(d, expect_decoded ? expect_decoded : text));
  free(d);
  free(ids);
  vl_tokenizer_free(t);
  cJSON_Delete(c);
}

static void test_qwen2_golden(void) { golden_case("qwen2-a", "prompt", "input_ids", 0, 0, NULL); }
/* the ByteLevel post-processor adds nothing, so add_special changes nothing */
static void test_qwen3_golden(void) { golden_case("qwen3-a", "prompt", "input_ids", 1, 0, NULL); }
/* HF tokenizers-level decode: every "</w>" becomes a space (transformers'
 * clean_up_tokenization_spaces, which would drop the one before ".", is not applied) */
static void test_clip_golden(void) {
  golden_case("clip-a", "text", "input_ids", 1, 1, "a photo of a red circle .");
}
static void test_blip_cap_golden(void) {
  golden_case("blip-cap-a", "text", "tokenizer_ids", 1, 1, NULL);
}
static void test_blip_itm_golden(void) {
  golden_case("blip-itm-a", "text", "input_ids", 1, 1, NULL);
}

static void test_special_ids(void) {
  vl_tokenizer *t = load_dir("qwen2-a");
  REQUIRE(t);
  CHECK(vl_tokenizer_eos(t) == vl_tokenizer_token_to_id(t, "<|im_end|>"));
  CHECK(vl_tokenizer_eos(t) == 318);
  CHECK(vl_tokenizer_pad(t) == 316);
  CHECK(vl_tokenizer_bos(t) == -1);
  CHECK(vl_tokenizer_is_special(t, 317));
  CHECK(!vl_tokenizer_is_special(t, 64));
  vl_tokenizer_free(t);
  t = load_dir("blip-cap-a");
  REQUIRE(t);
  CHECK(vl_tokenizer_bos(t) == vl_tokenizer_token_to_id(t, "[DEC]"));
  CHECK(vl_tokenizer_bos(t) >= 0);
  vl_tokenizer_free(t);
}

static vl_tokenizer *from_json(const char *j) {
  vl_tokenizer *t = vl_tokenizer_from_json(j, strlen(j), "inline.json");
  if (!t) printf("  inline: %s\n", vl_last_error());
  return t;
}

static int encode_is(vl_tokenizer *t, const char *text, int add_special, const int32_t *want,
                     size_t nw) {
  int32_t *ids;
  size_t n;
  if (vl_tokenizer_encode(t, text, strlen(text), add_special, &ids, &n)) {
    printf("  encode '%s': %s\n", text, vl_last_error());
    return 0;
  }
  int ok = n == nw && (!n || !memcmp(ids, want, n * sizeof *ids));
  if (!ok) {
    printf("  '%s' ->", text);
    print_ids("got", ids, n);
  }
  free(ids);
  return ok;
}

static const char *WP_JSON =
    "{\"added_tokens\":[{\"id\":0,\"content\":\"[UNK]\",\"special\":true},"
    "{\"id\":1,\"content\":\"[CLS]\",\"special\":true},{\"id\":2,\"content\":\"[SEP]\",\"special\":"
    "true}],"
    "\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":true,"
    "\"strip_accents\":null,\"lowercase\":true},"
    "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
    "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"["
    "CLS]\","
    "\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"[SEP]"
    "\","
    "\"type_id\":0}}],\"special_tokens\":{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[1],\"tokens\":[\"["
    "CLS]\"]},"
    "\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[2],\"tokens\":[\"[SEP]\"]}}},"
    "\"decoder\":{\"type\":\"WordPiece\",\"prefix\":\"##\",\"cleanup\":true},"
    "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":\"##"
    "\","
    "\"max_input_chars_per_word\":100,\"vocab\":{\"[UNK]\":0,\"[CLS]\":1,\"[SEP]\":2,\"cafe\":3,"
    "\"play\":4,\"##ing\":5,\"!\":6,\"\xe4\xb8\xad\":7,\"\xe6\x96\x87\":8,\"a\":9,\"##b\":10}}}";

static void test_wordpiece_json(void) {
  vl_tokenizer *t = from_json(WP_JSON);
  REQUIRE(t);
  /* lower-casing, accent stripping (é -> e), punctuation split, ## pieces, [UNK] */
  CHECK(encode_is(t, "Caf\xc3\xa9 PLAYING!", 1, (int32_t[]){1, 3, 4, 5, 6, 2}, 6));
  /* CJK chars split one by one; control chars dropped; "ab" = a ##b; unknown word -> [UNK] */
  CHECK(encode_is(t, "\xe4\xb8\xad\xe6\x96\x87\x01 ab xyz", 0, (int32_t[]){7, 8, 9, 10, 0}, 5));
  /* added tokens are matched in the text even without add_special */
  CHECK(encode_is(t, "[CLS]cafe", 0, (int32_t[]){1, 3}, 2));
  int32_t ids[] = {1, 3, 4, 5, 6, 9, 10, 2};
  char *d;
  CHECK(vl_tokenizer_decode(t, ids, 8, 1, &d, NULL) == 0);
  CHECK(!strcmp(d, "cafe playing! ab"));
  free(d);
  CHECK(vl_tokenizer_decode(t, ids, 2, 0, &d, NULL) == 0);
  CHECK(!strcmp(d, "[CLS] cafe"));
  free(d);
  int32_t bad = 99;
  CHECK(vl_tokenizer_decode(t, &bad, 1, 0, &d, NULL) == VL_ERR_INVALID);
  vl_tokenizer_free(t);
}

/* BPE with merges as [a, b] pairs, a Split pre-tokenizer, NFKC + Lowercase. */
static void test_bpe_pairs_and_split(void) {
  const char *j =
      "{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFKC\"},{\"type\":"
      "\"Lowercase\"}]},"
      "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\" "
      "\"},\"behavior\":\"Removed\","
      "\"invert\":false},\"decoder\":null,"
      "\"model\":{\"type\":\"BPE\",\"unk_token\":\"?\",\"vocab\":{\"?\":0,\"a\":1,\"b\":2,\"c\":3,"
      "\"ab\":4,"
      "\"abc\":5,\"bc\":6,\"fi\":7},\"merges\":[[\"a\",\"b\"],[\"b\",\"c\"],[\"ab\",\"c\"]]}}";
  vl_tokenizer *t = from_json(j);
  REQUIRE(t);
  /* "abc": a+b (rank 0) first, then ab+c; "bcab" -> bc, ab; NFKC turns U+FB01 into "fi" */
  CHECK(encode_is(t, "ABC bcab  cz", 0, (int32_t[]){5, 6, 4, 3, 0}, 5));
  CHECK(encode_is(t, "\xef\xac\x81", 0, (int32_t[]){0, 0}, 2)); /* f, i not in vocab: unk each */
  vl_tokenizer_free(t);
}

static void test_split_behaviors(void) {
  static const char *beh[] = {"Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous",
                              "Removed"};
  /* "a-b--c" split on "-": expected pieces as id lists (a=1 b=2 c=3 -=4 a-=5 -b=6 --=7 b-=8 -c=9)
   */
  static const int32_t want[][8] = {
      {1, 4, 2, 4, 4, 3}, {5, 8, 4, 3}, {1, 6, 4, 9}, {1, 4, 2, 7, 3}, {1, 2, 3}};
  static const size_t nw[] = {6, 4, 4, 5, 3};
  for (int i = 0; i < 5; i++) {
    char j[1024];
    snprintf(
        j, sizeof j,
        "{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"-\"},\"behavior\":\"%s\","
        "\"invert\":false},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":1,\"b\":2,\"c\":3,\"-\":4,"
        "\"a-\":5,\"-b\":6,\"--\":7,\"b-\":8,\"-c\":9},\"merges\":[\"a -\",\"- b\",\"- -\",\"b "
        "-\",\"- c\"]}}",
        beh[i]);
    vl_tokenizer *t = from_json(j);
    REQUIRE(t);
    /* merges would join across pieces; only within-piece merges may apply */
    int ok = encode_is(t, "a-b--c", 0, want[i], nw[i]);
    if (!ok) printf("  behavior %s\n", beh[i]);
    CHECK(ok);
    vl_tokenizer_free(t);
  }
}

static void test_malformed(void) {
  static const char *bad[] = {
      "",
      "{",
      "[]",
      "{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}",
      "{\"model\":{\"type\":\"BPE\",\"vocab\":[1,2]}}",
      "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1}}}",
      "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0}}}",
      "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a x\"]}}",
      "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a a\"]}}",
      "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"aa\"]}}",
      "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[3]}}",
      "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"pre_tokenizer\":{\"type\":\"Split\","
      "\"pattern\":{\"Regex\":\"(\"}}}",
      "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"normalizer\":{\"type\":\"Nope\"}}",
      "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"added_tokens\":[{\"id\":0,\"content\":"
      "\"b\"}]}",
      "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"added_tokens\":[{\"content\":\"b\"}]}",
      "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"post_processor\":{\"type\":"
      "\"BertProcessing\",\"cls\":[\"x\",7],\"sep\":[\"a\",0]}}",
      "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0},\"unk_token\":\"[UNK]\"}}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    vl_clear_error();
    vl_tokenizer *t = vl_tokenizer_from_json(bad[i], strlen(bad[i]), "bad.json");
    CHECK(t == NULL);
    CHECK(vl_last_error()[0] != 0);
    if (t) printf("  accepted bad document %zu\n", i);
    vl_tokenizer_free(t);
  }
  CHECK(vl_tokenizer_load("/nonexistent/dir") == NULL);
  CHECK(vl_last_error_code() == VL_ERR_IO);
}

/* The GPT-2 regex is long; encoding long runs must stay linear-ish. */
static void test_long_input(void) {
  vl_tokenizer *t = load_dir("qwen2-a");
  REQUIRE(t);
  size_t n = 200000;
  char *s = malloc(n + 1);
  REQUIRE(s);
  for (size_t i = 0; i < n; i++)
    s[i] = "hello world, the capital of France! \n"[i % 37];
  int32_t *ids;
  size_t ni;
  CHECK(vl_tokenizer_encode(t, s, n, 0, &ids, &ni) == 0);
  char *d;
  size_t dl;
  CHECK(vl_tokenizer_decode(t, ids, ni, 0, &d, &dl) == 0);
  CHECK(dl == n && !memcmp(d, s, n));
  free(d);
  free(ids);
  memset(s, 'a', n); /* one huge pre-token */
  CHECK(vl_tokenizer_encode(t, s, n, 0, &ids, &ni) == 0);
  CHECK(ni > 0 && ni <= n);
  free(ids);
  free(s);
  vl_tokenizer_free(t);
}

/* A GGUF tokenizer (committed fuzz seed, written by hand): qwen2 pre-tokenizer,
 * add_bos_token, a control token matched in the text. */
static void test_gguf_tokenizer(void) {
  vl_tokenizer *t = vl_tokenizer_load("fuzz/corpus/gguf/tokenizer.gguf");
  if (!t) printf("  %s\n", vl_last_error());
  REQUIRE(t);
  /* ids: h e l o \u0120 w r d he ll hell hello \u0120w <|endoftext|> */
  CHECK(encode_is(t, "hello world<|endoftext|>", 1, (int32_t[]){13, 11, 12, 3, 6, 2, 7, 13}, 8));
  CHECK(encode_is(t, "hello world<|endoftext|>", 0, (int32_t[]){11, 12, 3, 6, 2, 7, 13}, 7));
  CHECK(vl_tokenizer_bos(t) == 13);
  CHECK(vl_tokenizer_is_special(t, 13));
  vl_tokenizer_free(t);
}

int main(void) {
  RUN(test_qwen2_golden);
  RUN(test_qwen3_golden);
  RUN(test_clip_golden);
  RUN(test_blip_cap_golden);
  RUN(test_blip_itm_golden);
  RUN(test_special_ids);
  RUN(test_wordpiece_json);
  RUN(test_bpe_pairs_and_split);
  RUN(test_split_behaviors);
  RUN(test_malformed);
  RUN(test_long_input);
  RUN(test_gguf_tokenizer);
  return test_summary();
}
