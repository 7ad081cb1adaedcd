/* Chefer et al., "Generic Attention-model Explainability for Interpreting
 * Bi-Modal and Encoder-Decoder Transformers" (ICCV 2021): the relevancy
 * matrices and their update rules, in double precision, as in the paper's
 * reference code (hila-chefer/Transformer-MM-Explainability, lxmert
 * ExplanationGenerator).
 *
 * t = text tokens, i = image tokens. R_tt (nt x nt) and R_ii (ni x ni) start
 * as identities, R_ti (nt x ni) and R_it (ni x nt) as zeros.
 *  rule 5:   Ā = mean_h((∇A ⊙ A)⁺)        (vl_relevancy_head_mean)
 *  rules 6-7, self-attention among s tokens, other modality q:
 *            R_ss += Ā·R_ss,  R_sq += Ā·R_sq
 *  eqs. 8-9: R̄ = (R - I) with rows divided by their sums, + I
 *            (a row of R - I summing to 0 stays 0)
 *  rules 10-11, s queries attending to q keys:
 *            R_sq += R̄_ssᵀ·Ā·R̄_qq,  R_ss += Ā·R_qs
 * In a co-attention block both directions are computed from the matrices
 * before either update (vl_relevancy_co_attention). */
#ifndef VL_EXPLAIN_RELEVANCY_H
#define VL_EXPLAIN_RELEVANCY_H

#include <stddef.h>

typedef struct {
  int nt, ni;
  double *R_tt, *R_ti, *R_ii, *R_it; /* owned, one allocation */
  double *cam;                       /* scratch for the caller's Ā, max(nt, ni)² doubles */
  double *scratch;                   /* the rules' own */
  size_t cap;
} vl_relevancy;

int vl_relevancy_init(vl_relevancy *r, int nt, int ni);
void vl_relevancy_free(vl_relevancy *r);

/* out (n_q x n_k) = mean over heads of (grad ⊙ probs)⁺; grad NULL: plain
 * mean of probs (the no-gradient rollout variant). */
void vl_relevancy_head_mean(const float *probs, const float *grad, int heads, int n_q, int n_k,
                            double *out);

/* Rules 6-7 for text self-attention (cam nt x nt) / image self-attention
 * (cam ni x ni). */
int vl_relevancy_self_text(vl_relevancy *r, const double *cam);
int vl_relevancy_self_image(vl_relevancy *r, const double *cam);

/* Rules 10-11 for text queries over image keys (cam nt x ni) / image
 * queries over text keys (cam ni x nt). normalize: apply eqs. 8-9 to the
 * self relevancies first (the paper's default). */
int vl_relevancy_cross_text(vl_relevancy *r, const double *cam_ti, int normalize);
int vl_relevancy_cross_image(vl_relevancy *r, const double *cam_it, int normalize);
/* Both directions of one co-attention block from the same old matrices. */
int vl_relevancy_co_attention(vl_relevancy *r, const double *cam_ti, const double *cam_it,
                              int normalize);

/* Eqs. 8-9 on an n x n matrix: out = rownorm(R - I) + I. */
void vl_relevancy_normalize(const double *R, int n, double *out);

#endif
