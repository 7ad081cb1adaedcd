/* Decode attention over the KV cache, per token (every layer once): the F32
 * cache through vl_attention (what a decode step runs with --kv-cache f32)
 * against the F16 cache through vl_kv_attend (--kv-cache f16). Default
 * shapes: Qwen3-0.6B (28 layers, 16 query / 8 kv heads, head_dim 128) at
 * 576 positions (caches of 132 / 66 MB). Between layers, as a decode step's
 * weights would (42.6 MB per layer of Qwen3-0.6B BF16), EVICT MB of other
 * memory are read so the layer's cache rows come from memory, not from a
 * large L3 (not timed). Prints ms per token, wall and process CPU, best of
 * R, and the cache bytes read per second of wall.
 *
 * Usage: bench_kv_attend [--threads T] [--n POSITIONS] [--reps R] [--evict MB] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/threads.h"
#include "models/kv_cache.h"
#include "tensor/ops.h"

enum { L = 28, HQ = 16, HKV = 8, D = 128 };

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  int64_t n = 576;
  int reps = 10, threads = 2;
  double evict_mb = 42.6;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--n"))
      n = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "--reps"))
      reps = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--threads"))
      threads = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--evict"))
      evict_mb = atof(argv[i + 1]);
  }
  if (n < 1 || reps < 1 || threads < 1 || evict_mb < 0) {
    fprintf(stderr, "usage: %s [--threads T] [--n POSITIONS] [--reps R] [--evict MB]\n", argv[0]);
    return 2;
  }
  vl_threads_set(threads);
  vl_kv_cache *kv[2] = {vl_kv_new(L, n, HKV, D), vl_kv_new_typed(L, n, HKV, D, VL_F16)};
  vl_ctx *c = vl_ctx_new();
  int64_t sk[4] = {1, n, HKV, D}, sq[4] = {1, 1, HQ, D};
  vl_tensor *k = c ? vl_new(c, VL_F32, 4, sk) : NULL, *v = c ? vl_new(c, VL_F32, 4, sk) : NULL;
  vl_tensor *q = c ? vl_new(c, VL_F32, 4, sq) : NULL;
  float *S = malloc((size_t)vl_kv_attend_scratch(n, HQ) * sizeof *S),
        *out = malloc(HQ * D * sizeof *out);
  const size_t n_evict = (size_t)(evict_mb * 1e6 / 8);
  uint64_t *ev = malloc((n_evict ? n_evict : 1) * sizeof *ev), sink = 0;
  if (!kv[0] || !kv[1] || !k || !v || !q || !S || !out || !ev) return 1;
  for (size_t i = 0; i < n_evict; i++)
    ev[i] = i;
  uint64_t s = 88172645463325252ULL;
  for (int64_t i = 0; i < k->numel; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    vl_f32(k)[i] = (float)(s >> 40) / 16777216.0f - 0.5f;
    vl_f32(v)[i] = (float)((s >> 20) & 0xfffff) / 1048576.0f - 0.5f;
  }
  for (int64_t i = 0; i < q->numel; i++)
    vl_f32(q)[i] = (float)i / (float)q->numel - 0.5f;
  vl_tensor *views[L][2];
  for (int t = 0; t < 2; t++) {
    for (int l = 0; l < L; l++)
      if (vl_kv_append(kv[t], c, l, k, v, t ? NULL : &views[l][0], t ? NULL : &views[l][1]))
        return 1;
    vl_kv_advance(kv[t], n);
  }
  const float scale = 1.0f / sqrtf((float)D);
  const vl_attn_mask mask = {.causal = true};
  const char *name[2] = {"f32 (vl_attention)", "f16 (vl_kv_attend)"};
  printf("decode attention, %d layers, %d/%d heads, head_dim %d, %lld positions, %d threads, "
         "%.1f MB read between layers\n",
         L, HQ, HKV, D, (long long)n, threads, evict_mb);
  for (int t = 0; t < 2; t++) {
    double best_w = 1e30, best_c = 1e30;
    for (int r = 0; r < reps; r++) {
      size_t mark = vl_ctx_mark(c);
      double w = 0, cp = 0;
      for (int l = 0; l < L; l++) {
        for (size_t i = 0; i < n_evict; i += 8) /* one word per cache line */
          sink += ev[i];
        double w0 = vl_now_seconds(), c0 = cpu_now();
        if (t == 0) {
          if (!vl_attention(c, q, views[l][0], views[l][1], scale, &mask, NULL)) return 1;
          vl_ctx_reset(c, mark);
        } else if (vl_kv_attend(kv[1], l, n, vl_f32(q), HQ, scale, S, out)) {
          return 1;
        }
        w += vl_now_seconds() - w0;
        cp += cpu_now() - c0;
      }
      best_w = w < best_w ? w : best_w;
      best_c = cp < best_c ? cp : best_c;
    }
    double bytes = (double)vl_kv_bytes(kv[t]);
    printf("  %-20s %7.2f ms wall %7.2f ms CPU per token, %5.1f MB read, %5.1f GB/s\n", name[t],
           1e3 * best_w, 1e3 * best_c, bytes / 1e6, bytes / best_w / 1e9);
  }
  if (sink == 1) printf("\n"); /* keeps the eviction reads */
  free(ev);
  free(S);
  free(out);
  vl_kv_free(kv[0]);
  vl_kv_free(kv[1]);
  vl_ctx_free(c);
  return 0;
}
