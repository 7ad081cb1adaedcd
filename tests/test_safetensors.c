/* safetensors reader/writer: round trips, the shared golden checkpoints, and
 * a long list of malformed files that must each give a specific error. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/half.h"
#include "io/safetensors.h"
#include "test.h"

/* Builds "<8-byte len><header><data>" in a static buffer. */
static uint8_t raw[4096];
static size_t make_raw(const char *header, const void *data, size_t dlen) {
  size_t hl = strlen(header);
  for (int i = 0; i < 8; i++)
    raw[i] = (uint8_t)((uint64_t)hl >> (8 * i));
  memcpy(raw + 8, header, hl);
  if (dlen) memcpy(raw + 8 + hl, data, dlen);
  return 8 + hl + dlen;
}

/* Opens header+data from memory, expects failure with code and a message
 * containing want. */
static int expect_bad(const char *header, size_t dlen, int code, const char *want) {
  static const uint8_t zeros[256];
  size_t n = make_raw(header, zeros, dlen);
  vl_clear_error();
  vl_safetensors *st = vl_st_open_memory(raw, n, "bad.safetensors");
  if (st) {
    printf("  accepted: %s\n", header);
    vl_st_close(st);
    return 0;
  }
  int ok = vl_last_error_code() == code && strstr(vl_last_error(), want) &&
           strstr(vl_last_error(), "bad.safetensors");
  if (!ok) printf("  header %s\n  got [%d] %s\n", header, vl_last_error_code(), vl_last_error());
  return ok;
}

static void test_roundtrip_all_dtypes(void) {
  vl_st_writer *w = vl_st_writer_new();
  REQUIRE(w);
  float f32[6] = {1.5f, -2.25f, 3, 0, 1e-3f, -7};
  uint16_t f16[3] = {0x3c00, 0xc000, 0x3800}; /* 1, -2, 0.5 */
  uint16_t bf16[2] = {vl_f32_to_bf16(3.0f), vl_f32_to_bf16(-0.125f)};
  int64_t i64[2] = {INT64_C(-5), INT64_C(1) << 40};
  int32_t i32[4] = {1, -2, 3, -4};
  uint8_t u8[5] = {0, 1, 2, 254, 255};
  int64_t s23[2] = {2, 3}, s3[1] = {3}, s2[1] = {2}, s4[3] = {1, 4, 1}, s5[1] = {5}, s0[2] = {0, 4};
  CHECK(vl_st_writer_add(w, "a.f32", VL_F32, 2, s23, f32) == VL_OK);
  CHECK(vl_st_writer_add(w, "b.f16", VL_F16, 1, s3, f16) == VL_OK);
  CHECK(vl_st_writer_add(w, "c.bf16", VL_BF16, 1, s2, bf16) == VL_OK);
  CHECK(vl_st_writer_add(w, "d.i64", VL_I64, 1, s2, i64) == VL_OK);
  CHECK(vl_st_writer_add(w, "e.i32", VL_I32, 3, s4, i32) == VL_OK);
  CHECK(vl_st_writer_add(w, "f.u8", VL_U8, 1, s5, u8) == VL_OK);
  float scalar = 42;
  CHECK(vl_st_writer_add(w, "g.scalar", VL_F32, 0, NULL, &scalar) == VL_OK);
  CHECK(vl_st_writer_add(w, "h.empty", VL_F32, 2, s0, NULL) == VL_OK);
  CHECK(vl_st_writer_add(w, "a.f32", VL_F32, 1, s3, f32) == VL_ERR_INVALID); /* duplicate */
  CHECK(strstr(vl_last_error(), "a.f32"));
  int64_t neg[1] = {-1};
  CHECK(vl_st_writer_add(w, "neg", VL_F32, 1, neg, f32) == VL_ERR_INVALID);
  CHECK(vl_st_writer_set_metadata(w, "format", "pt") == VL_OK);
  CHECK(vl_st_writer_set_metadata(w, "note", "x") == VL_OK);
  CHECK(vl_st_writer_set_metadata(w, "note", "quote \" and \\ ok") == VL_OK);
  char path[512];
  snprintf(path, sizeof path, "%s/rt.safetensors", test_tmpdir());
  REQUIRE(vl_st_writer_save(w, path) == VL_OK);
  vl_st_writer_free(w);

  vl_safetensors *st = vl_st_open(path);
  REQUIRE(st);
  REQUIRE(vl_st_count(st) == 8);
  const char *order[] = {"a.f32", "b.f16", "c.bf16",   "d.i64",
                         "e.i32", "f.u8",  "g.scalar", "h.empty"};
  for (size_t i = 0; i < 8; i++)
    CHECK(!strcmp(vl_st_at(st, i)->name, order[i]));
  CHECK(vl_st_at(st, 8) == NULL);
  const vl_st_tensor *t = vl_st_find(st, "a.f32");
  REQUIRE(t);
  CHECK(t->dtype == VL_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
  CHECK(t->nbytes == 24 && !memcmp(t->data, f32, 24));
  float buf[8];
  REQUIRE(vl_st_to_f32(vl_st_find(st, "b.f16"), buf) == VL_OK);
  CHECK(buf[0] == 1 && buf[1] == -2 && buf[2] == 0.5f);
  REQUIRE(vl_st_to_f32(vl_st_find(st, "c.bf16"), buf) == VL_OK);
  CHECK(buf[0] == 3 && buf[1] == -0.125f);
  t = vl_st_find(st, "d.i64");
  CHECK(t && t->dtype == VL_I64 && !memcmp(t->data, i64, 16));
  t = vl_st_find(st, "e.i32");
  CHECK(t && t->dtype == VL_I32 && t->ndim == 3 && t->shape[1] == 4 && !memcmp(t->data, i32, 16));
  REQUIRE(vl_st_to_f32(t, buf) == VL_OK);
  CHECK(buf[3] == -4);
  t = vl_st_find(st, "f.u8");
  CHECK(t && t->dtype == VL_U8 && t->nbytes == 5 && !memcmp(t->data, u8, 5));
  t = vl_st_find(st, "g.scalar");
  CHECK(t && t->ndim == 0 && t->nbytes == 4 && vl_st_numel(t) == 1);
  t = vl_st_find(st, "h.empty");
  CHECK(t && t->nbytes == 0 && vl_st_numel(t) == 0);
  CHECK(!strcmp(vl_st_metadata(st, "format"), "pt"));
  CHECK(!strcmp(vl_st_metadata(st, "note"), "quote \" and \\ ok"));
  CHECK(vl_st_metadata(st, "missing") == NULL);
  CHECK(vl_st_metadata_count(st) == 2);
  CHECK(!strcmp(vl_st_metadata_key(st, 0), "format") && !strcmp(vl_st_metadata_key(st, 1), "note"));
  CHECK(vl_st_metadata_key(st, 2) == NULL);
  vl_clear_error();
  CHECK(vl_st_find(st, "nope") == NULL);
  CHECK(vl_last_error_code() == VL_ERR_NOTFOUND);
  CHECK(strstr(vl_last_error(), "nope") && strstr(vl_last_error(), "rt.safetensors"));
  vl_st_close(st);

  /* The temporary file was renamed away. */
  char tmpl[600];
  snprintf(tmpl, sizeof tmpl, "%s", path);
  struct stat sb;
  CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0644);
}

static void test_memory_roundtrip_and_alignment(void) {
  vl_st_writer *w = vl_st_writer_new();
  REQUIRE(w);
  uint8_t one = 7;
  float v[2] = {1, 2};
  int64_t s1[1] = {1}, s2[1] = {2};
  CHECK(vl_st_writer_add(w, "x", VL_U8, 1, s1, &one) == VL_OK);
  CHECK(vl_st_writer_add(w, "y", VL_F32, 1, s2, v) == VL_OK);
  uint8_t *buf;
  size_t len;
  REQUIRE(vl_st_writer_to_memory(w, &buf, &len) == VL_OK);
  vl_st_writer_free(w);
  vl_safetensors *st = vl_st_open_memory(buf, len, "mem");
  REQUIRE(st);
  const vl_st_tensor *y = vl_st_find(st, "y");
  REQUIRE(y);
  /* y starts one byte after x: unaligned, and vl_st_to_f32 copes. */
  CHECK(((uintptr_t)y->data & 3) != 0 || ((uintptr_t)buf & 3) != 0);
  float out[2];
  CHECK(vl_st_to_f32(y, out) == VL_OK && out[0] == 1 && out[1] == 2);
  CHECK(!strcmp(vl_st_name(st), "mem"));
  vl_st_close(st);
  free(buf);
}

static void test_empty_file_ok(void) {
  size_t n = make_raw("{}", NULL, 0);
  vl_safetensors *st = vl_st_open_memory(raw, n, "e");
  REQUIRE(st);
  CHECK(vl_st_count(st) == 0);
  vl_st_close(st);
  n = make_raw("{\"__metadata__\":{\"a\":\"b\"}}   ", NULL, 0);
  st = vl_st_open_memory(raw, n, "e");
  REQUIRE(st);
  CHECK(vl_st_count(st) == 0 && !strcmp(vl_st_metadata(st, "a"), "b"));
  vl_st_close(st);
}

static void test_bool_and_save_errors(void) {
  static const uint8_t two[2] = {1, 0};
  size_t n = make_raw("{\"m\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2]}}", two, 2);
  vl_safetensors *st = vl_st_open_memory(raw, n, "bool");
  REQUIRE(st);
  const vl_st_tensor *t = vl_st_find(st, "m");
  CHECK(t && t->dtype == VL_U8 && t->nbytes == 2 && ((const uint8_t *)t->data)[0] == 1);
  vl_st_close(st);

  vl_st_writer *w = vl_st_writer_new();
  REQUIRE(w);
  float v = 1;
  int64_t s1[1] = {1};
  CHECK(vl_st_writer_add(w, "v", VL_F32, 1, s1, &v) == VL_OK);
  CHECK(vl_st_writer_add(w, "", VL_F32, 1, s1, &v) == VL_ERR_INVALID);
  CHECK(vl_st_writer_add(w, "__metadata__", VL_F32, 1, s1, &v) == VL_ERR_INVALID);
  CHECK(vl_st_writer_add(w, "x", VL_F32, 1, s1, NULL) == VL_ERR_INVALID);
  CHECK(vl_st_writer_add(w, "x", VL_F32, 9, s1, &v) == VL_ERR_INVALID);
  vl_clear_error();
  char path[512];
  snprintf(path, sizeof path, "%s/no/such/dir/out.safetensors", test_tmpdir());
  CHECK(vl_st_writer_save(w, path) == VL_ERR_IO);
  CHECK(strstr(vl_last_error(), "no/such/dir/out.safetensors"));
  /* Saving over an existing file replaces it whole. */
  snprintf(path, sizeof path, "%s/replace.safetensors", test_tmpdir());
  REQUIRE(test_write_file(path, "garbage that is not safetensors", 31) == 0);
  CHECK(vl_st_writer_save(w, path) == VL_OK);
  st = vl_st_open(path);
  CHECK(st && vl_st_count(st) == 1);
  vl_st_close(st);
  vl_st_writer_free(w);
}

static void test_malformed_headers(void) {
  const int F = VL_ERR_FORMAT;
  CHECK(expect_bad("{\"a\"", 0, F, "header JSON parse error at byte"));
  CHECK(expect_bad("[1,2]", 0, F, "JSON object"));
  CHECK(expect_bad("\"x\"", 0, F, "JSON object"));
  CHECK(expect_bad("{\"a\":1}", 0, F, "'a': entry is not a JSON object"));
  CHECK(expect_bad("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, F, "dtype"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, F, "shape"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, F, "data_offsets"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, F,
                   "data_offsets"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, F,
                   "unknown dtype \"Q4\""));
  CHECK(expect_bad("{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
                   VL_ERR_UNSUPPORTED, "'w': dtype F64 is not supported"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, F,
                   "shape[0] is not a non-negative integer"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, F,
                   "shape[0]"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, F,
                   "shape[0]"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,2,3,4,5,6,7,8,9],"
                   "\"data_offsets\":[0,4]}}",
                   4, VL_ERR_UNSUPPORTED, "9 dimensions"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4096],"
                   "\"data_offsets\":[0,4]}}",
                   4, F, "overflows"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, F,
                   "need 8 bytes but data_offsets span 4"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, F,
                   "end 0 < begin 4"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]}}", 4, F,
                   "non-negative"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[100,104]}}", 4, F,
                   "outside the data section"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":"
                   "[18446744073709551612,18446744073709551616]}}",
                   4, F, "non-negative integers"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                   8, F, "overlaps"));
  CHECK(
      expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, F, "hole"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, F,
                   "4 bytes after the last tensor"));
  CHECK(expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                   8, F, "'a' appears twice"));
  CHECK(expect_bad("{\"__metadata__\":{\"k\":1}}", 0, F, "__metadata__ value 'k'"));
  CHECK(expect_bad("{\"__metadata__\":[]}", 0, F, "__metadata__ is not a JSON object"));
  CHECK(expect_bad("{\"__metadata__\":{},\"__metadata__\":{}}", 0, F, "twice"));
  CHECK(expect_bad("{} x", 0, F, "junk after"));
  CHECK(expect_bad("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, F,
                   "empty name"));
  CHECK(expect_bad("{\"\\u0000x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, F,
                   "control characters"));
  CHECK(expect_bad("{\"a\\tb\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, F,
                   "control characters"));
  CHECK(expect_bad(" {}", 0, F, "does not start with"));
  CHECK(expect_bad("", 0, F, "does not start with"));
}

static void test_bad_lengths(void) {
  vl_clear_error();
  uint8_t small[5] = {1, 2, 3, 4, 5};
  CHECK(vl_st_open_memory(small, sizeof small, "tiny") == NULL);
  CHECK(vl_last_error_code() == VL_ERR_FORMAT && strstr(vl_last_error(), "tiny: not a"));
  uint8_t huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
  CHECK(vl_st_open_memory(huge, sizeof huge, "huge") == NULL);
  CHECK(vl_last_error_code() == VL_ERR_FORMAT && strstr(vl_last_error(), "too large"));
  uint8_t past[16] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
  CHECK(vl_st_open_memory(past, sizeof past, "past") == NULL);
  CHECK(strstr(vl_last_error(), "past the end"));
  CHECK(vl_st_open_memory(NULL, 0, "null") == NULL);
  CHECK(vl_st_open_memory(NULL, 3, "null") == NULL && vl_last_error_code() == VL_ERR_INVALID);
}

static void test_open_errors(void) {
  char path[512];
  vl_clear_error();
  snprintf(path, sizeof path, "%s/does-not-exist.safetensors", test_tmpdir());
  CHECK(vl_st_open(path) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_NOTFOUND && strstr(vl_last_error(), "does-not-exist"));
  CHECK(vl_st_open(test_tmpdir()) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_IO && strstr(vl_last_error(), "directory"));
  snprintf(path, sizeof path, "%s/empty.safetensors", test_tmpdir());
  REQUIRE(test_write_file(path, "", 0) == 0);
  CHECK(vl_st_open(path) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_FORMAT && strstr(vl_last_error(), "empty.safetensors"));
}

/* Every prefix of a valid file must be refused cleanly (and never crash);
 * so must every single-byte corruption of the length and header. */
static void test_truncation_and_corruption(void) {
  vl_st_writer *w = vl_st_writer_new();
  REQUIRE(w);
  float v[3] = {1, 2, 3};
  int64_t s[1] = {3}, s1[1] = {1};
  uint16_t h = 0x3c00;
  CHECK(vl_st_writer_add(w, "w", VL_F32, 1, s, v) == VL_OK);
  CHECK(vl_st_writer_add(w, "h", VL_BF16, 1, s1, &h) == VL_OK);
  CHECK(vl_st_writer_set_metadata(w, "format", "pt") == VL_OK);
  uint8_t *buf;
  size_t len;
  REQUIRE(vl_st_writer_to_memory(w, &buf, &len) == VL_OK);
  vl_st_writer_free(w);
  int bad = 0;
  for (size_t n = 0; n < len; n++) {
    /* A fresh copy of exactly n bytes so ASan sees any over-read. */
    uint8_t *p = malloc(n ? n : 1);
    memcpy(p, buf, n);
    vl_clear_error();
    vl_safetensors *st = vl_st_open_memory(p, n, "trunc");
    if (st || vl_last_error_code() != VL_ERR_FORMAT || !strstr(vl_last_error(), "trunc")) {
      printf("  prefix %zu: %s\n", n, st ? "accepted" : vl_last_error());
      bad++;
    }
    vl_st_close(st);
    free(p);
  }
  CHECK(bad == 0);
  size_t hl = buf[0] | (size_t)buf[1] << 8;
  uint8_t *p = malloc(len);
  int accepted = 0;
  for (size_t i = 0; i < 8 + hl; i++) {
    for (int x = 1; x < 256; x <<= 1) {
      memcpy(p, buf, len);
      p[i] ^= (uint8_t)x;
      vl_clear_error();
      vl_safetensors *st = vl_st_open_memory(p, len, "flip");
      if (st) {
        accepted++;
        /* Whatever got through must still be self-consistent. */
        for (size_t k = 0; k < vl_st_count(st); k++) {
          const vl_st_tensor *t = vl_st_at(st, k);
          CHECK((const uint8_t *)t->data >= p + 8 &&
                (const uint8_t *)t->data + t->nbytes <= p + len);
        }
      } else {
        CHECK(vl_last_error()[0] != 0);
      }
      vl_st_close(st);
    }
  }
  CHECK(accepted < 8 * (int)(8 + hl) / 4); /* most flips must be caught */
  free(p);
  /* The intact file still opens. */
  vl_safetensors *st = vl_st_open_memory(buf, len, "ok");
  CHECK(st && vl_st_count(st) == 2);
  vl_st_close(st);
  free(buf);
}

typedef struct {
  const char *dir;
  const char *tensor;
  int64_t d0;
} golden_case;

static void test_golden_checkpoints(void) {
  static const golden_case cases[] = {
      {"golden/qwen3-a", "model.embed_tokens.weight", 336},
      {"golden/qwen2-a", "model.embed_tokens.weight", -1},
      {"golden/blip-cap-a", "vision_model.embeddings.patch_embedding.weight", 48},
      {"golden/blip-itm-a", NULL, -1},
      {"golden/clip-a", NULL, -1},
      {"golden/qwen2vl-a", NULL, -1},
      {"golden/qwen25vl-a", NULL, -1},
      {"golden/qwen3vl-a", NULL, -1},
  };
  int found = 0;
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    char rel[256];
    snprintf(rel, sizeof rel, "%s/model.safetensors", cases[c].dir);
    const char *path = test_shared_path(rel);
    struct stat sb;
    if (stat(path, &sb) != 0) continue;
    found++;
    vl_safetensors *st = vl_st_open(path);
    if (!st) printf("  %s\n", vl_last_error());
    REQUIRE(st);
    CHECK(vl_st_count(st) > 5);
    size_t total = 0;
    for (size_t i = 0; i < vl_st_count(st); i++)
      total += vl_st_at(st, i)->nbytes;
    CHECK(total > (size_t)sb.st_size / 2 && total < (size_t)sb.st_size);
    if (cases[c].tensor) {
      const vl_st_tensor *t = vl_st_find(st, cases[c].tensor);
      CHECK(t != NULL);
      if (t && cases[c].d0 >= 0) CHECK(t->shape[0] == cases[c].d0);
    }
    vl_st_close(st);
    snprintf(rel, sizeof rel, "%s/golden.safetensors", cases[c].dir);
    st = vl_st_open(test_shared_path(rel));
    CHECK(st != NULL);
    vl_st_close(st);
  }
  CHECK(found == (int)(sizeof cases / sizeof *cases));
}

int main(void) {
  RUN(test_roundtrip_all_dtypes);
  RUN(test_memory_roundtrip_and_alignment);
  RUN(test_empty_file_ok);
  RUN(test_bool_and_save_errors);
  RUN(test_malformed_headers);
  RUN(test_bad_lengths);
  RUN(test_open_errors);
  RUN(test_truncation_and_corruption);
  RUN(test_golden_checkpoints);
  return test_summary();
}
