/* GGUF reader: the GPT-2 vocabulary file from the conformance set, synthetic
 * v2/v3 files written here with every metadata type, and corrupted or
 * truncated variants that must fail with a message. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/gguf.h"
#include "test.h"

typedef struct {
  unsigned char b[8192];
  size_t n;
} wbuf;

static void put(wbuf *w, const void *p, size_t n) {
  memcpy(w->b + w->n, p, n);
  w->n += n;
}
static void u32(wbuf *w, uint32_t v) { put(w, &v, 4); }
static void u64(wbuf *w, uint64_t v) { put(w, &v, 8); }
static void str(wbuf *w, const char *s) {
  u64(w, strlen(s));
  put(w, s, strlen(s));
}
static void key(wbuf *w, const char *k, uint32_t type) {
  str(w, k);
  u32(w, type);
}

/* Offsets of interesting fields, for the corruption tests. */
static size_t off_align_val, off_t0_type, off_t0_offset, off_t1_dim0, off_str_len;

/* v3 (or v2) file: 13 kv of every type, tensors "w" F32 [3,2] and "q" Q8_0 [64], "h" BF16 [5]. */
static void build(wbuf *w, uint32_t version, uint32_t alignment) {
  w->n = 0;
  put(w, "GGUF", 4);
  u32(w, version);
  u64(w, 3);  /* tensors */
  u64(w, 14); /* kv */
  key(w, "general.architecture", VL_GGUF_STRING);
  off_str_len = w->n;
  str(w, "test");
  key(w, "general.alignment", VL_GGUF_U32);
  off_align_val = w->n;
  u32(w, alignment);
  key(w, "k.u8", VL_GGUF_U8);
  put(w, "\xff", 1);
  key(w, "k.i8", VL_GGUF_I8);
  put(w, "\xfe", 1);
  key(w, "k.u16", VL_GGUF_U16);
  put(w, "\x34\x12", 2);
  key(w, "k.i16", VL_GGUF_I16);
  put(w, "\xff\xff", 2);
  key(w, "k.i32", VL_GGUF_I32);
  u32(w, (uint32_t)-7);
  float f = 1.5f;
  key(w, "k.f32", VL_GGUF_F32);
  put(w, &f, 4);
  key(w, "k.bool", VL_GGUF_BOOL);
  put(w, "\x01", 1);
  key(w, "k.u64", VL_GGUF_U64);
  u64(w, 1ull << 40);
  key(w, "k.i64", VL_GGUF_I64);
  u64(w, (uint64_t)-5);
  double d = -2.25;
  key(w, "k.f64", VL_GGUF_F64);
  put(w, &d, 8);
  key(w, "k.arr_i32", VL_GGUF_ARRAY);
  u32(w, VL_GGUF_I32);
  u64(w, 3);
  for (int i = 0; i < 3; i++)
    u32(w, (uint32_t)(i * 10 - 5));
  key(w, "k.arr_str", VL_GGUF_ARRAY);
  u32(w, VL_GGUF_STRING);
  u64(w, 3);
  str(w, "alpha");
  str(w, "");
  str(w, "g\xc3\xa9");
  /* tensor infos */
  str(w, "w");
  u32(w, 2);
  u64(w, 3);
  u64(w, 2);
  off_t0_type = w->n;
  u32(w, VL_GGML_F32);
  off_t0_offset = w->n;
  u64(w, 0);
  str(w, "q");
  u32(w, 1);
  off_t1_dim0 = w->n;
  u64(w, 64);
  u32(w, VL_GGML_Q8_0);
  uint64_t o1 = (24 + alignment - 1) / alignment * alignment;
  u64(w, o1);
  str(w, "h");
  u32(w, 1);
  u64(w, 5);
  u32(w, VL_GGML_BF16);
  uint64_t o2 = (o1 + 68 + alignment - 1) / alignment * alignment;
  u64(w, o2);
  while (w->n % alignment)
    put(w, "\0", 1);
  size_t data = w->n;
  for (int i = 0; i < 6; i++) {
    float v = (float)i + 0.5f;
    put(w, &v, 4);
  }
  while (w->n < data + o1)
    put(w, "\0", 1);
  for (int i = 0; i < 68; i++)
    put(w, "\x11", 1);
  while (w->n < data + o2)
    put(w, "\0", 1);
  for (int i = 0; i < 10; i++)
    put(w, "\x22", 1);
}

static void test_gpt2_vocab_file(void) {
  vl_gguf *g = vl_gguf_open(test_shared_path("conformance/tokenizers/ggml-vocab-gpt-2.gguf"));
  if (!g) printf("  %s\n", vl_last_error());
  REQUIRE(g);
  CHECK(vl_gguf_version(g) == 3);
  const char *s;
  size_t n;
  CHECK(vl_gguf_get_str(g, "general.architecture", &s, &n) == 0 && n == 4 && !memcmp(s, "gpt2", 4));
  CHECK(vl_gguf_get_str(g, "tokenizer.ggml.model", &s, &n) == 0 && n == 4 && !memcmp(s, "gpt2", 4));
  int64_t ti = vl_gguf_find_key(g, "tokenizer.ggml.tokens");
  REQUIRE(ti >= 0);
  CHECK(vl_gguf_kv_type(g, ti) == VL_GGUF_ARRAY);
  CHECK(vl_gguf_arr_type(g, ti) == VL_GGUF_STRING);
  CHECK(vl_gguf_arr_n(g, ti) == 50257);
  s = vl_gguf_arr_str(g, ti, 0, &n);
  CHECK(s && n == 1 && s[0] == '!');
  s = vl_gguf_arr_str(g, ti, 50256, &n);
  CHECK(s && n == 13 && !memcmp(s, "<|endoftext|>", 13));
  CHECK(vl_gguf_arr_str(g, ti, 50257, &n) == NULL);
  int64_t v;
  CHECK(vl_gguf_get_i64(g, "gpt2.block_count", &v) == 0 && v > 0);
  CHECK(vl_gguf_get_i64(g, "no.such.key", &v) == VL_ERR_NOTFOUND);
  CHECK(vl_gguf_get_i64(g, "general.architecture", &v) == VL_ERR_FORMAT);
  CHECK(vl_gguf_n_tensors(g) == 0);
  vl_gguf_close(g);
}

static void check_synthetic(vl_gguf *g, uint32_t version, uint64_t alignment) {
  CHECK(vl_gguf_version(g) == version);
  CHECK(vl_gguf_alignment(g) == alignment);
  CHECK(vl_gguf_n_kv(g) == 14);
  int64_t v;
  double d;
  int b;
  CHECK(vl_gguf_get_i64(g, "k.u8", &v) == 0 && v == 255);
  CHECK(vl_gguf_get_i64(g, "k.i8", &v) == 0 && v == -2);
  CHECK(vl_gguf_get_i64(g, "k.u16", &v) == 0 && v == 0x1234);
  CHECK(vl_gguf_get_i64(g, "k.i16", &v) == 0 && v == -1);
  CHECK(vl_gguf_get_i64(g, "k.i32", &v) == 0 && v == -7);
  CHECK(vl_gguf_get_i64(g, "k.u64", &v) == 0 && v == (1ll << 40));
  CHECK(vl_gguf_get_i64(g, "k.i64", &v) == 0 && v == -5);
  CHECK(vl_gguf_get_f64(g, "k.f32", &d) == 0 && d == 1.5);
  CHECK(vl_gguf_get_f64(g, "k.f64", &d) == 0 && d == -2.25);
  CHECK(vl_gguf_get_f64(g, "k.i32", &d) == 0 && d == -7);
  CHECK(vl_gguf_get_bool(g, "k.bool", &b) == 0 && b == 1);
  CHECK(vl_gguf_get_bool(g, "k.u8", &b) == VL_ERR_FORMAT);
  CHECK(vl_gguf_get_i64(g, "k.f32", &v) == VL_ERR_FORMAT);
  int64_t ai = vl_gguf_find_key(g, "k.arr_i32");
  CHECK(vl_gguf_arr_type(g, ai) == VL_GGUF_I32 && vl_gguf_arr_n(g, ai) == 3);
  CHECK(vl_gguf_arr_i64(g, ai, 0) == -5 && vl_gguf_arr_i64(g, ai, 2) == 15);
  CHECK(vl_gguf_arr_f64(g, ai, 1) == 5.0);
  CHECK(vl_gguf_arr_str(g, ai, 0, NULL) == NULL);
  int64_t si = vl_gguf_find_key(g, "k.arr_str");
  size_t n;
  const char *s = vl_gguf_arr_str(g, si, 2, &n);
  CHECK(s && n == 3 && !memcmp(s, "g\xc3\xa9", 3));
  s = vl_gguf_arr_str(g, si, 1, &n);
  CHECK(s && n == 0);
  REQUIRE(vl_gguf_n_tensors(g) == 3);
  const vl_gguf_tensor *t = vl_gguf_find_tensor(g, "w");
  REQUIRE(t);
  CHECK(t->n_dims == 2 && t->dims[0] == 3 && t->dims[1] == 2 && t->dims[2] == 1);
  CHECK(t->type == VL_GGML_F32 && t->nbytes == 24);
  float f;
  memcpy(&f, (const char *)t->data + 20, 4);
  CHECK(f == 5.5f);
  t = vl_gguf_find_tensor(g, "q");
  REQUIRE(t);
  CHECK(t->type == VL_GGML_Q8_0 && t->nbytes == 68 && ((const unsigned char *)t->data)[67] == 0x11);
  CHECK(!strcmp(vl_ggml_type_name(t->type), "Q8_0"));
  t = vl_gguf_find_tensor(g, "h");
  REQUIRE(t);
  CHECK(t->type == VL_GGML_BF16 && t->nbytes == 10 && ((const unsigned char *)t->data)[9] == 0x22);
  CHECK(t->offset % alignment == 0);
  CHECK(vl_gguf_find_tensor(g, "nope") == NULL);
}

static void test_synthetic_v3_v2(void) {
  static wbuf w;
  uint32_t versions[] = {3, 2}, aligns[] = {32, 64};
  for (int i = 0; i < 2; i++) {
    build(&w, versions[i], aligns[i]);
    vl_gguf *g = vl_gguf_open_memory(w.b, w.n, "synthetic.gguf");
    if (!g) printf("  %s\n", vl_last_error());
    REQUIRE(g);
    check_synthetic(g, versions[i], aligns[i]);
    vl_gguf_close(g);
  }
  /* and through the file path (mmap) */
  char path[512];
  snprintf(path, sizeof path, "%s/s.gguf", test_tmpdir());
  REQUIRE(test_write_file(path, w.b, w.n) == 0);
  vl_gguf *g = vl_gguf_open(path);
  REQUIRE(g);
  check_synthetic(g, 2, 64);
  vl_gguf_close(g);
}

static void test_truncated(void) {
  static wbuf w;
  build(&w, 3, 32);
  int failures = 0;
  for (size_t n = 0; n < w.n; n++) {
    vl_clear_error();
    vl_gguf *g = vl_gguf_open_memory(w.b, n, "cut.gguf");
    if (g) {
      printf("  prefix of %zu bytes accepted\n", n);
      vl_gguf_close(g);
    } else if (vl_last_error()[0]) {
      failures++;
    }
  }
  CHECK(failures == (int)w.n);
}

static int rejects(wbuf *w, const char *want) {
  vl_clear_error();
  vl_gguf *g = vl_gguf_open_memory(w->b, w->n, "bad.gguf");
  if (g) {
    vl_gguf_close(g);
    printf("  accepted (expected '%s')\n", want);
    return 0;
  }
  if (!strstr(vl_last_error(), want)) {
    printf("  message '%s' lacks '%s'\n", vl_last_error(), want);
    return 0;
  }
  return 1;
}

static void test_corrupt(void) {
  static wbuf w;
  build(&w, 3, 32);
  w.b[0] = 'X';
  CHECK(rejects(&w, "bad magic"));
  build(&w, 1, 32);
  CHECK(rejects(&w, "version 1"));
  build(&w, 3, 32);
  memset(w.b + 8, 0xff, 8); /* tensor count */
  CHECK(rejects(&w, "tensor count"));
  build(&w, 3, 32);
  memset(w.b + 16, 0x7f, 8); /* kv count */
  CHECK(rejects(&w, "metadata count"));
  build(&w, 3, 32);
  memset(w.b + off_str_len, 0xff, 8);
  CHECK(rejects(&w, "past the end"));
  build(&w, 3, 32);
  w.b[off_align_val] = 3;
  CHECK(rejects(&w, "power-of-two"));
  build(&w, 3, 32);
  w.b[off_t0_type] = 77;
  CHECK(rejects(&w, "unknown ggml type 77"));
  build(&w, 3, 32);
  w.b[off_t0_offset] = 4;
  CHECK(rejects(&w, "not aligned"));
  build(&w, 3, 32);
  w.b[off_t0_offset + 1] = 1; /* offset 256: data past the end */
  CHECK(rejects(&w, "outside the file"));
  build(&w, 3, 32);
  w.b[off_t1_dim0] = 48; /* Q8_0 row of 48: not a multiple of 32 */
  CHECK(rejects(&w, "block"));
  build(&w, 3, 32);
  {
    uint64_t huge = 0x7fffffffffffffe0ull; /* a valid Q8_0 row count, far beyond the file */
    memcpy(w.b + off_t1_dim0, &huge, 8);
    CHECK(rejects(&w, "outside the file"));
    build(&w, 3, 32);
    huge = 1ull << 62; /* w: [2^62, 2] elements overflow int64 */
    memcpy(w.b + off_t0_type - 16, &huge, 8);
    CHECK(rejects(&w, "overflows"));
    build(&w, 3, 32);
  }
  { /* duplicate key: rename "k.i8" to "k.u8" */
    unsigned char *p = memmem(w.b, w.n, "k.i8", 4);
    REQUIRE(p);
    p[2] = 'u';
    CHECK(rejects(&w, "duplicate metadata key"));
  }
  CHECK(vl_gguf_open("/nonexistent.gguf") == NULL);
  CHECK(vl_last_error_code() == VL_ERR_IO);
}

int main(void) {
  RUN(test_gpt2_vocab_file);
  RUN(test_synthetic_v3_v2);
  RUN(test_truncated);
  RUN(test_corrupt);
  return test_summary();
}
