/* Copy bandwidth on N threads (the decode bound's denominator): each thread
 * memcpy's its own slice of a 1 GiB buffer into another, repeated; the best
 * of the repeats is reported as GB/s of bytes read (= bytes written), and
 * as read + written (STREAM "copy" counts both).
 *   build/rel/bench/bench_bandwidth [threads] [MiB] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  char *src, *dst;
  size_t n;
} slice;

static void *copy(void *arg) {
  slice *s = arg;
  memcpy(s->dst, s->src, s->n);
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  int nt = argc > 1 ? atoi(argv[1]) : 2;
  size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 1024;
  if (nt < 1 || nt > 64 || mib < 1) return 2;
  size_t n = mib << 20;
  char *a = malloc(n), *b = malloc(n);
  if (!a || !b) return 1;
  memset(a, 1, n);
  memset(b, 2, n);
  pthread_t th[64];
  slice s[64];
  double best = 1e30;
  for (int rep = 0; rep < 8; rep++) {
    double t0 = now();
    for (int i = 0; i < nt; i++) {
      s[i] = (slice){a + n / nt * i, b + n / nt * i, n / nt};
      pthread_create(&th[i], NULL, copy, &s[i]);
    }
    for (int i = 0; i < nt; i++)
      pthread_join(th[i], NULL);
    double t = now() - t0;
    if (t < best) best = t;
  }
  printf("copy bandwidth, %d threads, %zu MiB: %.2f GB/s read (%.2f GB/s read+write)\n", nt, mib,
         (double)n / best / 1e9, 2.0 * (double)n / best / 1e9);
  free(a);
  free(b);
  return 0;
}
