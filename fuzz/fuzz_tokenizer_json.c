/* libFuzzer target: tokenizer.json loading must never crash; a refusal must
 * say why; a loaded tokenizer must encode and decode fixed texts and the
 * input itself without crashing, and decode only ids it produced. Built by
 * tools/fuzz-smoke.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const vl_tokenizer *t, const char *s, size_t n) {
  for (int special = 0; special < 2; special++) {
    int32_t *ids;
    size_t k;
    if (vl_tokenizer_encode(t, s, n, special, &ids, &k)) {
      if (!vl_last_error()[0]) __builtin_trap();
      continue;
    }
    char *out;
    size_t ol;
    if (vl_tokenizer_decode(t, ids, k, special, &out, &ol) == 0) {
      if (strlen(out) > ol) __builtin_trap(); /* NUL-terminated at ol */
      free(out);
    } else if (!vl_last_error()[0]) {
      __builtin_trap();
    }
    free(ids);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const texts[] = {"Hello, world! It's 2024.",
                                      "  caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87\n\n\t x",
                                      "\xff\xfe invalid \xc3", "<|endoftext|>[CLS]a##b</w>", ""};
  vl_clear_error();
  vl_tokenizer *t = vl_tokenizer_from_json((const char *)data, size, "fuzz.json");
  if (!t) {
    if (!vl_last_error()[0]) __builtin_trap();
    return 0;
  }
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
    roundtrip(t, texts[i], strlen(texts[i]));
  roundtrip(t, (const char *)data, size < 256 ? size : 256);
  int32_t n = vl_tokenizer_n_vocab(t);
  for (int32_t id = -1; id <= n && id < 64; id++) {
    const char *s = vl_tokenizer_id_to_token(t, id);
    if (s) (void)vl_tokenizer_token_to_id(t, s);
  }
  vl_tokenizer_free(t);
  return 0;
}
