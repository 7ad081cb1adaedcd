/* libFuzzer target: the GGUF reader must never read outside the buffer,
 * whatever the counts, lengths and offsets say; a refusal must say why. Every
 * key, array element and tensor byte of an accepted file is touched, and the
 * tokenizer is built from it when present. Built by tools/fuzz-smoke.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/gguf.h"
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vl_clear_error();
  vl_gguf *g = vl_gguf_open_memory(data, size, "fuzz.gguf");
  if (!g) {
    if (!vl_last_error()[0]) __builtin_trap();
    return 0;
  }
  volatile uint64_t sink = 0;
  for (int64_t i = 0; i < vl_gguf_n_kv(g); i++) {
    const char *k = vl_gguf_key(g, i);
    int64_t v;
    double d;
    int b;
    const char *s;
    size_t n;
    if (vl_gguf_get_i64(g, k, &v) == 0) sink += (uint64_t)v;
    if (vl_gguf_get_f64(g, k, &d) == 0) sink += (uint64_t)(d == d);
    if (vl_gguf_get_bool(g, k, &b) == 0) sink += (uint64_t)b;
    if (vl_gguf_get_str(g, k, &s, &n) == 0 && n) sink += (uint8_t)s[n - 1];
    uint64_t an = vl_gguf_arr_n(g, i);
    for (uint64_t j = 0; j < an && j < 4096; j++) {
      if (vl_gguf_arr_type(g, i) == VL_GGUF_STRING) {
        s = vl_gguf_arr_str(g, i, j, &n);
        if (!s) __builtin_trap();
        if (n) sink += (uint8_t)s[n - 1];
      } else {
        sink += (uint64_t)vl_gguf_arr_i64(g, i, j);
      }
    }
  }
  for (int64_t i = 0; i < vl_gguf_n_tensors(g); i++) {
    const vl_gguf_tensor *t = vl_gguf_tensor_at(g, i);
    if (vl_gguf_find_tensor(g, t->name) != t) __builtin_trap();
    if (t->nbytes)
      sink += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->nbytes - 1];
  }
  if (vl_gguf_find_key(g, "tokenizer.ggml.model") >= 0) {
    vl_tokenizer *tok = vl_tokenizer_from_gguf(g);
    if (tok) {
      int32_t *ids;
      size_t n;
      if (vl_tokenizer_encode(tok, "Hello world <|endoftext|> \xff", 27, 1, &ids, &n) == 0) {
        char *out;
        if (vl_tokenizer_decode(tok, ids, n, 0, &out, NULL) == 0) free(out);
        free(ids);
      }
      vl_tokenizer_free(tok);
    } else if (!vl_last_error()[0]) {
      __builtin_trap();
    }
  }
  (void)sink;
  vl_gguf_close(g);
  return 0;
}
