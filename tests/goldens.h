/* Reader for the small float32 reference files written by
 * tools/gen_block_goldens.py (tests only). Format: per tensor an ASCII line
 * "name ndim d0 ... d{ndim-1}\n" followed by the float32 little-endian data. */
#ifndef VL_TEST_GOLDENS_H
#define VL_TEST_GOLDENS_H

#include <stdint.h>

#include "tensor/tensor.h"

typedef struct {
  char name[64];
  int ndim;
  int64_t shape[VL_MAX_DIMS];
  int64_t numel;
  float *data;
} golden_tensor;

typedef struct {
  golden_tensor *t;
  int n;
} golden_file;

/* 0 on success; prints why and returns -1 on a missing or malformed file. */
int golden_load(golden_file *g, const char *path);
void golden_free(golden_file *g);
/* The named tensor, or NULL (and a printed note) when absent. */
const golden_tensor *golden_get(const golden_file *g, const char *name);
/* An F32 copy of the named tensor in c (NULL when absent). */
vl_tensor *golden_tensor_in(vl_ctx *c, const golden_file *g, const char *name);

#endif
