/* A fixed pool of worker threads for data-parallel loops. Sized by
 * vl_threads_set() (the CLI passes --threads / VLENS_THREADS); default: all
 * online cores. */
#ifndef VL_BASE_THREADS_H
#define VL_BASE_THREADS_H

#include <stdint.h>

/* fn processes items [begin, end). Called from up to vl_threads_count()
 * threads at once; `worker` is 0..count-1, usable to index per-thread scratch. */
typedef void (*vl_range_fn)(void *arg, int64_t begin, int64_t end, int worker);

void vl_threads_set(int n); /* n <= 0: all cores (or VLENS_THREADS when set) */
/* How long an idle worker (and a caller waiting for the last chunks) spins
 * before sleeping, in microseconds; < 0: VLENS_SPIN_US, else 100. 0: sleep
 * at once. */
void vl_threads_set_spin_us(double us);
int vl_threads_count(void);

/* Splits [0, n) into contiguous chunks of at least min_chunk items and runs
 * them on the pool; returns when all are done. Nested calls run serially. */
void vl_parallel_for(int64_t n, int64_t min_chunk, vl_range_fn fn, void *arg);
/* vl_parallel_for, except that when it runs [0, n) inline (one chunk), the
 * calls nested in fn run serially too: for loops over many small items
 * whose inner products would otherwise each hand work to the pool. */
void vl_parallel_for_flat(int64_t n, int64_t min_chunk, vl_range_fn fn, void *arg);

#endif
