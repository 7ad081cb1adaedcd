/* llama.cpp-style tokenizer conformance: each case of the .inp file (cases
 * end with "\n__ggml_vocab_test__\n") must encode, without special tokens,
 * to the ids on the matching line of the .out file; and byte-level BPE must
 * round-trip arbitrary bytes. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/gguf.h"
#include "test.h"
#include "text/tokenizer.h"

static vl_tokenizer *load_gpt2(void) {
  vl_tokenizer *t =
      vl_tokenizer_load(test_shared_path("conformance/tokenizers/ggml-vocab-gpt-2.gguf"));
  if (!t) printf("  load: %s\n", vl_last_error());
  return t;
}

static void conformance_file(const char *base) {
  char p[512];
  snprintf(p, sizeof p, "conformance/tokenizers/%s", base);
  vl_tokenizer *t = vl_tokenizer_load(test_shared_path(p));
  if (!t) printf("  load: %s\n", vl_last_error());
  REQUIRE(t);
  size_t ni, no;
  snprintf(p, sizeof p, "conformance/tokenizers/%s.inp", base);
  char *inp = (char *)test_read_file(test_shared_path(p), &ni);
  snprintf(p, sizeof p, "conformance/tokenizers/%s.out", base);
  char *out = (char *)test_read_file(test_shared_path(p), &no);
  REQUIRE(inp && out);
  const char *sep = "\n__ggml_vocab_test__\n";
  char *c = inp, *line = out;
  int cases = 0, passed = 0;
  for (;;) {
    char *e = strstr(c, sep);
    if (!e) break;
    char *nl = strchr(line, '\n');
    REQUIRE(nl); /* one .out line per case */
    *nl = 0;
    int32_t *ids;
    size_t n;
    int rc = vl_tokenizer_encode(t, c, (size_t)(e - c), 0, &ids, &n);
    CHECK(rc == 0);
    /* compare with the expected space-separated ids */
    int ok = rc == 0;
    char *q = line;
    size_t k = 0;
    for (;;) {
      while (*q == ' ')
        q++;
      if (!*q) break;
      long v = strtol(q, &q, 10);
      if (k >= n || ids[k] != v) ok = 0;
      k++;
    }
    if (k != n) ok = 0;
    if (!ok) {
      printf("  case %d '%.*s': expected [%s], got [", cases, (int)(e - c), c, line);
      for (size_t i = 0; i < n; i++)
        printf("%s%d", i ? " " : "", ids[i]);
      printf("]\n");
    }
    /* and the ids decode back to the text */
    char *dec;
    size_t dl;
    if (rc == 0 && vl_tokenizer_decode(t, ids, n, 0, &dec, &dl) == 0) {
      if (dl != (size_t)(e - c) || memcmp(dec, c, dl)) {
        ok = 0;
        printf("  case %d: decode mismatch '%s'\n", cases, dec);
      }
      free(dec);
    } else {
      ok = 0;
    }
    free(ids);
    passed += ok;
    cases++;
    c = e + strlen(sep);
    line = nl + 1;
  }
  printf("  %s: %d/%d cases\n", base, passed, cases);
  CHECK(cases > 0);
  CHECK(passed == cases);
  free(inp);
  free(out);
  vl_tokenizer_free(t);
}

static void test_gpt2_conformance(void) { conformance_file("ggml-vocab-gpt-2.gguf"); }

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 11);
}

/* decode(encode(x)) == x for random bytes, including invalid UTF-8. */
static void test_bytelevel_roundtrip_random(void) {
  vl_tokenizer *t = load_gpt2();
  REQUIRE(t);
  unsigned char buf[300];
  for (int it = 0; it < 300; it++) {
    size_t n = next_rand() % sizeof buf;
    int mode = it % 3;
    for (size_t i = 0; i < n; i++) {
      uint32_t r = next_rand();
      /* mix raw bytes with ASCII text and spaces so merges fire too */
      buf[i] = mode == 0   ? (unsigned char)r
               : mode == 1 ? (unsigned char)(" aeht\n'sX9.\xc3\xa9"[r % 13])
                           : (unsigned char)(r % 128);
    }
    int32_t *ids;
    size_t ni;
    CHECK(vl_tokenizer_encode(t, (const char *)buf, n, 0, &ids, &ni) == 0);
    char *d;
    size_t dl;
    CHECK(vl_tokenizer_decode(t, ids, ni, 0, &d, &dl) == 0);
    CHECK(dl == n && !memcmp(d, buf, n));
    if (it % 3 == 1) CHECK(ni < n || n == 0 || ni == n); /* merges never add tokens */
    free(ids);
    free(d);
  }
  vl_tokenizer_free(t);
}

int main(void) {
  RUN(test_gpt2_conformance);
  RUN(test_bytelevel_roundtrip_random);
  return test_summary();
}
