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
 * rows of 4k (bench_gemv --cols). A prefetch past the end does not fault.
 * The slice size is computed once per call (vl_prefetch_step): computing
 * the slice bounds in the loop put two 64-bit divisions in every step. */
static inline size_t vl_prefetch_step(size_t bytes, int64_t nk) {
  return nk > 0 ? ((bytes + (size_t)nk - 1) / (size_t)nk + 63) & ~(size_t)63 : 0;
}

/* Slice k: the whole lines from k * step on (step from vl_prefetch_step). */
static inline void vl_prefetch_slice(const uint8_t *next, size_t step, int64_t k) {
  /* step is whole lines: one prefetch per line */
  const uintptr_t a = (uintptr_t)next + step * (size_t)k;
  for (size_t o = 0; o < step; o += 64)
    _mm_prefetch((const char *)(a + o), _MM_HINT_T0);
}

#endif
