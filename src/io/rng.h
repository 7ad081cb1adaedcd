/* A small seeded, deterministic pseudo-random generator: xoshiro256** seeded
 * through splitmix64. The Shapes World spec fixes distributions, not the
 * generator, so scenes are reproducible for vlens's own (seed, index) only;
 * another correct implementation draws different scenes from the same seed.
 * Streams: vl_rng_seed(seed, index, stream) gives independent, reproducible
 * sequences, so e.g. scene index 7 never depends on scenes 0..6. */
#ifndef VL_IO_RNG_H
#define VL_IO_RNG_H

#include <stdint.h>

typedef struct {
  uint64_t s[4];
  int has_spare; /* Marsaglia polar draws normals in pairs */
  double spare;
} vl_rng;

void vl_rng_seed(vl_rng *r, uint64_t seed, uint64_t index, uint64_t stream);
uint64_t vl_rng_next(vl_rng *r);
/* Uniform integer in [a, b] (inclusive, a <= b), unbiased (rejection). */
int64_t vl_rng_int(vl_rng *r, int64_t a, int64_t b);
/* Uniform double in [0, 1) with 53 random bits. */
double vl_rng_uniform(vl_rng *r);
/* Standard normal N(0, 1), Marsaglia polar method. */
double vl_rng_normal(vl_rng *r);

#endif
