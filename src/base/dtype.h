/* Element types shared by file readers (io) and tensors. */
#ifndef VL_BASE_DTYPE_H
#define VL_BASE_DTYPE_H

#include <stddef.h>

typedef enum { VL_F32 = 0, VL_F16, VL_BF16, VL_I64, VL_I32, VL_U8 } vl_dtype;

size_t vl_dtype_size(vl_dtype t);
const char *vl_dtype_name(vl_dtype t);

#endif
