/* What the `vlens dump` writers of the model families (blip_dump.c,
 * clip_dump.c, qwen_vl_dump.c) share: adding a produced tensor under its
 * dump name, the position ids, and the target's check and backward. */
#ifndef VL_MODELS_DUMP_COMMON_H
#define VL_MODELS_DUMP_COMMON_H

#include <stdint.h>

#include "io/safetensors.h"
#include "models/blip.h" /* vl_dump_opts */
#include "tensor/tensor.h"

/* Adds t's data under name with the given shape (the same number of
 * elements); an error names a tensor the forward did not produce. */
int vl_dump_add(vl_st_writer *w, const char *name, const vl_tensor *t, int ndim,
                const int64_t *shape);
/* 0 .. T-1 as an I64 (T) tensor in c. */
vl_tensor *vl_dump_position_ids(vl_ctx *c, int64_t T);
/* With a target: its position within the T tokens and its id within the
 * vocabulary of V, else an error prefixed by who. */
int vl_dump_check_target(const vl_dump_opts *o, int64_t T, int64_t V, const char *who);
/* Backward of score's element `at` (recording on). */
int vl_dump_backward_at(vl_ctx *c, vl_tensor *score, int64_t at);

#endif
