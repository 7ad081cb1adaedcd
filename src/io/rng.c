#include "io/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void vl_rng_seed(vl_rng *r, uint64_t seed, uint64_t index, uint64_t stream) {
  /* Fold the three words through splitmix64 one after another so that
   * nearby (seed, index, stream) triples give unrelated states. */
  uint64_t x = seed;
  uint64_t h = splitmix64(&x);
  x = h ^ index;
  h = splitmix64(&x);
  x = h ^ (stream * 0xd1b54a32d192ed03ull);
  for (int i = 0; i < 4; i++)
    r->s[i] = splitmix64(&x);
  if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1; /* all-zero state is fixed */
  r->has_spare = 0;
  r->spare = 0;
}

uint64_t vl_rng_next(vl_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

int64_t vl_rng_int(vl_rng *r, int64_t a, int64_t b) {
  if (b <= a) return a;
  uint64_t range = (uint64_t)b - (uint64_t)a; /* values 0..range */
  if (range == UINT64_MAX) return (int64_t)vl_rng_next(r);
  uint64_t n = range + 1;
  /* Reject the lowest (2^64 mod n) values so every residue is equally likely. */
  uint64_t thresh = (0 - n) % n, x;
  do {
    x = vl_rng_next(r);
  } while (x < thresh);
  return (int64_t)((uint64_t)a + x % n); /* wraps, never signed overflow */
}

double vl_rng_uniform(vl_rng *r) { return (double)(vl_rng_next(r) >> 11) * 0x1.0p-53; }

double vl_rng_normal(vl_rng *r) {
  if (r->has_spare) {
    r->has_spare = 0;
    return r->spare;
  }
  double u, v, q;
  do {
    u = 2.0 * vl_rng_uniform(r) - 1.0;
    v = 2.0 * vl_rng_uniform(r) - 1.0;
    q = u * u + v * v;
  } while (q >= 1.0 || q == 0.0);
  double f = sqrt(-2.0 * log(q) / q);
  r->spare = v * f;
  r->has_spare = 1;
  return u * f;
}
