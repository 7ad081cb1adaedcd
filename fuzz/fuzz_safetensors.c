/* libFuzzer target: the safetensors reader must refuse bad input with an
 * error and never crash; whatever it accepts must be self-consistent and
 * survive a write/read round trip unchanged. Built by tools/fuzz-smoke.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vl_safetensors *st = vl_st_open_memory(data, size, "fuzz");
  if (!st) {
    if (!vl_last_error()[0]) abort(); /* a refusal must say why */
    return 0;
  }
  vl_st_writer *w = vl_st_writer_new();
  for (size_t i = 0; i < vl_st_count(st); i++) {
    const vl_st_tensor *t = vl_st_at(st, i);
    const uint8_t *p = t->data;
    if (p < data || p + t->nbytes > data + size) abort();
    if (vl_st_find(st, t->name) != t) abort();
    if ((size_t)vl_st_numel(t) * vl_dtype_size(t->dtype) != t->nbytes) abort();
    if (t->nbytes <= 4096) {
      float *f = malloc((size_t)vl_st_numel(t) * sizeof *f + 1);
      if (vl_st_to_f32(t, f) != VL_OK) abort();
      free(f);
    }
    if (w && vl_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data) != VL_OK) abort();
  }
  (void)vl_st_metadata(st, "format");
  uint8_t *buf = NULL;
  size_t len = 0;
  if (w && vl_st_writer_to_memory(w, &buf, &len) == VL_OK) {
    vl_safetensors *again = vl_st_open_memory(buf, len, "roundtrip");
    if (!again || vl_st_count(again) != vl_st_count(st)) abort();
    for (size_t i = 0; i < vl_st_count(st); i++) {
      const vl_st_tensor *a = vl_st_at(st, i), *b = vl_st_at(again, i);
      if (strcmp(a->name, b->name) || a->dtype != b->dtype || a->ndim != b->ndim ||
          a->nbytes != b->nbytes || memcmp(a->shape, b->shape, sizeof a->shape) ||
          memcmp(a->data, b->data, a->nbytes))
        abort();
    }
    vl_st_close(again);
    free(buf);
  }
  vl_st_writer_free(w);
  vl_st_close(st);
  return 0;
}
