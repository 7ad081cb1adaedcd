#include "base/dtype.h"

size_t vl_dtype_size(vl_dtype t) {
  switch (t) {
  case VL_F32: case VL_I32: return 4;
  case VL_F16: case VL_BF16: return 2;
  case VL_I64: return 8;
  case VL_U8: return 1;
  case VL_Q8_0: return 0;
  }
  return 0;
}

const char *vl_dtype_name(vl_dtype t) {
  static const char *names[] = {"F32", "F16", "BF16", "I64", "I32", "U8", "Q8_0"};
  return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

size_t vl_dtype_bytes(vl_dtype t, int64_t n) {
  if (t == VL_Q8_0) return (size_t)(n / 32) * 34;
  return (size_t)n * vl_dtype_size(t);
}
