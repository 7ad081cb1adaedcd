/* Software prefetch for the decode GEMV kernels. */
#ifndef VL_TENSOR_PREFETCH_H
#define VL_TENSOR_PREFETCH_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

/* The rows a kernel reads next lie right after the group it is on (a group
 * of rows is one contiguous range): step k of nk prefetches slice k of the
 * next group, so that group starts warm. Without it each group began with
 * a cache miss per row, and rows of 1k values ran at half the bytes/s of
 * rows of 4k (bench_gemv --cols). A prefetch past the end does not fault. */
static inline void vl_prefetch_slice(const uint8_t *next, size_t bytes, int64_t k, int64_t nk) {
  const size_t a = bytes * (size_t)k / (size_t)nk, b = bytes * (size_t)(k + 1) / (size_t)nk;
  for (size_t o = a & ~(size_t)63; o < b; o += 64)
    _mm_prefetch((const char *)((uintptr_t)next + o), _MM_HINT_T0);
}

#endif
