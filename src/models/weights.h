/* Model weights: checkpoint tensors wrapped as vl_tensor, checked against the
 * shape the config implies. Large matrices stay as stored (BF16/F16/F32,
 * zero-copy from the mmap when aligned); small vectors (norm weights, biases)
 * are widened to F32 because the ops take them as F32. */
#ifndef VL_MODELS_WEIGHTS_H
#define VL_MODELS_WEIGHTS_H

#include "io/checkpoint.h"
#include "tensor/tensor.h"

typedef struct {
  vl_checkpoint *ck; /* not owned */
  vl_ctx *ctx;       /* where headers and copies live, for the model's lifetime */
  bool trainable;    /* copy every weight to F32 with requires_grad and a grad buffer */
} vl_weights;

enum {
  VL_W_F32 = 1,      /* always widen to F32 (vectors, embeddings read per row) */
  VL_W_OPTIONAL = 2, /* missing: return NULL with no error (e.g. bias=False) */
};

/* The tensor `name`, which must have exactly the expected shape (ndim dims).
 * NULL + vl_error naming the checkpoint, the tensor, and expected vs found
 * shape or dtype. */
vl_tensor *vl_weight(vl_weights *w, const char *name, int ndim, const int64_t *shape, int flags);
/* printf-style names for 2-D and 1-D weights: vl_weight2(w, 0, out, in, "layers.%d.q.weight", l). */
vl_tensor *vl_weight2(vl_weights *w, int flags, int64_t d0, int64_t d1, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
vl_tensor *vl_weight1(vl_weights *w, int flags, int64_t d0, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
