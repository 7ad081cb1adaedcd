/* Explanation methods as plug-ins over one shared input (the pytorch-grad-cam
 * pattern): a model fills a vl_explain_input with what its forward/backward
 * produced for one target (attention probabilities and their gradients,
 * token activations and gradients, the pixel gradient), and every method is
 * one function from that input to raw cell values. Methods never see a
 * model; adding a method is adding one file and one registry line
 * (registry.c). Definitions: ../shared/spec/explain-methods.md.
 *
 * All matrices are F32 row-major arrays. An attention stack holds one entry
 * per layer, each (heads, n_q, n_k) = the probabilities of vl_attn_probs for
 * batch item 0, and optionally dS/dA of the same shape (probs_out's ->grad). */
#ifndef VL_EXPLAIN_METHOD_H
#define VL_EXPLAIN_METHOD_H

#include <stdint.h>

typedef struct {
  int n_layers, n_heads, n_q, n_k;
  const float *const *probs; /* n_layers entries, or NULL when n_layers == 0 */
  const float *const *grads; /* same, dS/dA; NULL when not recorded */
} vl_attn_stack;

typedef enum {
  /* One self-attention stack over the joint sequence (Qwen-VL): `self`,
   * image_tokens index its positions. */
  VL_ARCH_DECODER_ONLY = 0,
  /* Text decoder with self- and cross-attention into an image encoder
   * (BLIP, OFA): `self` (n_q = n_k = text length), `cross` (text queries,
   * encoder keys, same number of layers as `self`), optionally `vision`
   * (encoder self-attention); image_tokens index encoder positions. */
  VL_ARCH_ENCODER_DECODER,
  /* A readout from the vision tower alone (CLIP, ITM): `vision`, read at
   * query (the CLS position). */
  VL_ARCH_VISION_ONLY
} vl_explain_arch;

typedef struct {
  vl_explain_arch arch;
  int grid_w, grid_h; /* image-token grid; grid_w*grid_h == n_image */

  /* The target: the query position q whose output is scored, and where the
   * image tokens sit among the keys (grid row-major order). */
  int query;
  int n_image;
  const int *image_tokens;

  vl_attn_stack self, cross, vision;
  int layer; /* `attention`: which layer of the read stack; -1: the last */

  /* gradcam: activations X and dS/dX of n_tokens x channels; the rows of
   * the image tokens are image_tokens (same indexing as above) unless
   * act_rows is given. */
  const float *acts, *acts_grad;
  int n_tokens, channels;
  const int *act_rows; /* n_image entries or NULL */

  /* gradient: dS/d(model input pixels), (channels, height, width). */
  const float *pixel_grad;
  int pix_c, pix_h, pix_w;

  uint64_t seed; /* random */
} vl_explain_input;

/* Writes grid_w*grid_h raw (not normalised) values to cells. */
typedef int (*vl_explain_fn)(const vl_explain_input *in, float *cells);

enum { VL_NEEDS_ATTN = 1, VL_NEEDS_ATTN_GRAD = 2, VL_NEEDS_ACTS = 4, VL_NEEDS_PIXEL_GRAD = 8 };

typedef struct {
  const char *name; /* the --method value */
  vl_explain_fn run;
  unsigned needs;    /* VL_NEEDS_* : what the model must record */
  const char *about; /* one line for --help */
} vl_explain_method;

/* The registry: NULL-terminated by count. */
const vl_explain_method *vl_explain_methods(int *count);
/* By name; NULL + VL_ERR_NOTFOUND listing the known names. */
const vl_explain_method *vl_explain_find(const char *name);
/* Runs `name` on in into cells (grid_w*grid_h). */
int vl_explain_run(const char *name, const vl_explain_input *in, float *cells);

/* The methods (each in its own file). */
int vl_method_attention(const vl_explain_input *in, float *cells);
int vl_method_rollout(const vl_explain_input *in, float *cells);
int vl_method_relevancy(const vl_explain_input *in, float *cells);
int vl_method_gradcam(const vl_explain_input *in, float *cells);
int vl_method_gradient(const vl_explain_input *in, float *cells);
int vl_method_random(const vl_explain_input *in, float *cells);

/* Shared checks (method_common.c). */
int vl_explain_check_grid(const vl_explain_input *in, const char *method);
int vl_explain_check_stack(const vl_attn_stack *s, int need_grads, const char *method,
                           const char *which);
/* Every image token index in [0, limit); `what` names the indexed thing. */
int vl_explain_check_tokens(const int *idx, int n, int limit, const char *method, const char *what);
/* Encoder-decoder relevancy (relevancy.h rules): vision self-attention
 * (rule 6 on R_ii), then per decoder layer self-attention (rules 6-7) and
 * cross-attention (rules 10-11 with eqs. 8-9); reads R_ti[query, image
 * tokens]. use_grads 0: Ā = mean_h(A) (rollout's variant). */
int vl_explain_bimodal(const vl_explain_input *in, int use_grads, const char *method, float *cells);
/* The stack a method reads for in->arch (self, cross or vision). */
const vl_attn_stack *vl_explain_read_stack(const vl_explain_input *in, const char **which);

#endif
