/* Element types shared by file readers (io) and tensors. */
#ifndef VL_BASE_DTYPE_H
#define VL_BASE_DTYPE_H

#include <stddef.h>
#include <stdint.h>

/* VL_Q8_0: ggml's Q8_0 blocks (an f16 scale and 32 int8 values, 34 bytes per
 * 32 elements, rows a multiple of 32); weights only (tensor/quant.h). */
typedef enum { VL_F32 = 0, VL_F16, VL_BF16, VL_I64, VL_I32, VL_U8, VL_Q8_0 } vl_dtype;

/* Bytes per element; 0 for block types (VL_Q8_0: use vl_dtype_bytes). */
size_t vl_dtype_size(vl_dtype t);
/* Bytes of n consecutive elements (n a multiple of 32 for VL_Q8_0). */
size_t vl_dtype_bytes(vl_dtype t, int64_t n);
const char *vl_dtype_name(vl_dtype t);

#endif
