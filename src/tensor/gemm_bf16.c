/* Y = X W^T with BF16 weights and X rounded to BF16, AVX-512 BF16 dot
 * products (vdpbf16ps: 32 products per instruction, twice an F32 FMA's).
 * See gemm_bf16.h. */
#include "tensor/gemm_bf16.h"

#include <immintrin.h>
#include <string.h>

#include "base/error.h"
#include "base/half.h"
#include "base/threads.h"
#include "tensor/gemm.h"

#define MR 12 /* rows of X per tile: 12 x 2 accumulators + 2 weight vectors + 1 broadcast */
#define NR 32 /* weight rows (output columns) per panel */

/* A pair of BF16 values as one 32-bit word: the even k in the low half, as
 * vdpbf16ps pairs them. */
static uint32_t pair(uint16_t lo, uint16_t hi) { return (uint32_t)lo | (uint32_t)hi << 16; }

bool vl_gemm_bf16_rounded_available(void) {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512bf16");
}

/* X (M x K) -> blocks of MR rows: word (kp, r) of block b is the pair
 * (x[b*MR + r][2kp], x[..][2kp + 1]) rounded to BF16; missing rows and an
 * odd K's last half are zeros. */
static void pack_x(const float *X, int64_t lda, int64_t M, int64_t K, uint32_t *out) {
  const int64_t KP = (K + 1) / 2;
  for (int64_t b = 0; b < (M + MR - 1) / MR; b++)
    for (int64_t kp = 0; kp < KP; kp++)
      for (int r = 0; r < MR; r++) {
        const int64_t m = b * MR + r, k = 2 * kp;
        uint32_t w = 0;
        if (m < M) {
          const float *x = X + m * lda;
          w = pair(vl_f32_to_bf16(x[k]), k + 1 < K ? vl_f32_to_bf16(x[k + 1]) : 0);
        }
        out[(b * KP + kp) * MR + r] = w;
      }
}

/* Weight rows n0..n0+nr-1 -> one panel: word (kp, j) is the pair (W[n0+j][2kp],
 * W[n0+j][2kp+1]); rows past nr and an odd K's last half are zeros. */
static void pack_w(const uint16_t *W, int64_t ldw, int64_t n0, int nr, int64_t K, uint32_t *out) {
  const int64_t KP = (K + 1) / 2;
  for (int j = 0; j < NR; j++) {
    if (j >= nr) {
      for (int64_t kp = 0; kp < KP; kp++)
        out[kp * NR + j] = 0;
      continue;
    }
    const uint16_t *w = W + (n0 + j) * ldw;
    for (int64_t kp = 0; kp < KP; kp++) {
      const int64_t k = 2 * kp;
      out[kp * NR + j] = pair(w[k], k + 1 < K ? w[k + 1] : 0);
    }
  }
}

#define TBF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))

/* C tile (rows m < mr of MR, columns j < nr of NR) = beta*C + Xp Wp^T. */
TBF16 static void kernel(int64_t KP, const uint32_t *Xp, const uint32_t *Wp, float *C, int64_t ldc,
                         int mr, int nr, float beta) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
  for (int r = 0; r < MR; r++)
    c0[r] = c1[r] = _mm512_setzero_ps();
  for (int64_t kp = 0; kp < KP; kp++, Xp += MR, Wp += NR) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(Wp),
                   b1 = (__m512bh)_mm512_loadu_si512(Wp + 16);
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32((int)Xp[r]);
      c0[r] = _mm512_dpbf16_ps(c0[r], a, b0);
      c1[r] = _mm512_dpbf16_ps(c1[r], a, b1);
    }
  }
  const __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
  const __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (1u << (nr - 16)) - 1);
  for (int r = 0; r < mr; r++) {
    float *c = C + r * ldc;
    if (beta != 0.0f) {
      c0[r] = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(m0, c), c0[r]);
      c1[r] = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(m1, c + 16), c1[r]);
    }
    _mm512_mask_storeu_ps(c, m0, c0[r]);
    _mm512_mask_storeu_ps(c + 16, m1, c1[r]);
  }
}

typedef struct {
  int64_t M, N, K, ldw, ldc;
  const uint32_t *Xp;
  const uint16_t *W;
  float *C;
  float beta;
  int failed; /* atomic: a worker could not get its panel buffer */
} job;

/* Items are panels of NR weight rows: each packed once, then run against
 * every block of X (packed before, shared). */
static void panels_range(void *arg, int64_t p0, int64_t p1, int worker) {
  const job *J = arg;
  const int64_t KP = (J->K + 1) / 2;
  (void)worker;
  /* 32-bit words in the thread's second packing buffer (gemm.h) */
  uint32_t *Wp = vl_gemm_scratch(1, (size_t)KP * NR * sizeof *Wp);
  if (!Wp) {
    __atomic_store_n(&((job *)arg)->failed, 1, __ATOMIC_RELAXED);
    return;
  }
  for (int64_t p = p0; p < p1; p++) {
    const int64_t n0 = p * NR;
    const int nr = J->N - n0 < NR ? (int)(J->N - n0) : NR;
    pack_w(J->W, J->ldw, n0, nr, J->K, Wp);
    for (int64_t b = 0; b * MR < J->M; b++) {
      const int mr = J->M - b * MR < MR ? (int)(J->M - b * MR) : MR;
      kernel(KP, J->Xp + b * KP * MR, Wp, J->C + b * MR * J->ldc + n0, J->ldc, mr, nr, J->beta);
    }
  }
}

int vl_gemm_bf16_rounded(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx,
                         const uint16_t *W, int64_t ldw, float beta, float *C, int64_t ldc) {
  if (M <= 0 || N <= 0) return VL_OK;
  if (K <= 0 || ldx < K || ldw < K || ldc < N)
    return vl_error(VL_ERR_INVALID, "gemm_bf16: K %lld, ldx %lld, ldw %lld, ldc %lld", (long long)K,
                    (long long)ldx, (long long)ldw, (long long)ldc);
  if (!vl_gemm_bf16_rounded_available())
    return vl_error(VL_ERR_UNSUPPORTED, "gemm_bf16: this CPU has no AVX-512 BF16");
  /* X packed once into the caller's first packing buffer, kept across calls
   * (a fresh malloc of a megabyte per product is an mmap and its faults) */
  const int64_t KP = (K + 1) / 2;
  uint32_t *Xp = vl_gemm_scratch(0, (size_t)((M + MR - 1) / MR * MR) * (size_t)KP * sizeof *Xp);
  if (!Xp)
    return vl_error(VL_ERR_NOMEM, "gemm_bf16: out of memory (%lld x %lld)", (long long)M,
                    (long long)K);
  pack_x(X, ldx, M, K, Xp);
  job J = {M, N, K, ldw, ldc, Xp, W, C, beta, 0};
  /* a panel against all of X is M * 32 * K products: enough per item */
  vl_parallel_for((N + NR - 1) / NR, 1, panels_range, &J);
  if (__atomic_load_n(&J.failed, __ATOMIC_RELAXED))
    return vl_error(VL_ERR_NOMEM, "gemm_bf16: out of memory (panel of %lld x %d)", (long long)K,
                    NR);
  return VL_OK;
}
