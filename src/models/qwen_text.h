/* Qwen2 / Qwen3 text decoders (transformers' modeling_qwen2.py /
 * modeling_qwen3.py): token embedding, N pre-norm blocks of grouped-query
 * self-attention with 1-D RoPE and a SwiGLU MLP, final RMSNorm, lm_head.
 * Qwen2 has q/k/v biases; Qwen3 has none but RMS-normalises each query and
 * key head (q_norm / k_norm) before RoPE, and takes head_dim from config.
 *
 * One forward serves three uses: a recorded pass for explanations (gradients
 * and attention probabilities on the tape), an inference pass over a whole
 * sequence, and prefill / decode steps against a KV cache. */
#ifndef VL_MODELS_QWEN_TEXT_H
#define VL_MODELS_QWEN_TEXT_H

#include <cjson/cJSON.h>

#include "io/gguf.h"
#include "models/kv_cache.h"
#include "models/weights.h"
#include "tensor/tensor.h"

#define VL_QWEN_MAX_EOS 8

typedef enum { VL_QWEN2 = 2, VL_QWEN3 = 3 } vl_qwen_kind;

typedef struct {
  vl_qwen_kind kind;
  int64_t vocab, hidden, inter, n_layers, n_heads, n_kv_heads, head_dim, max_pos;
  float rope_theta, rms_eps;
  bool tied;     /* lm_head is embed_tokens (tie_word_embeddings or no lm_head.weight) */
  bool qkv_bias; /* Qwen2, or Qwen3 with attention_bias */
  bool o_bias;   /* Qwen3 with attention_bias (Qwen2's o_proj never has one) */
  bool qk_norm;  /* Qwen3 */
  int32_t bos;   /* -1 when absent */
  int32_t eos[VL_QWEN_MAX_EOS];
  int n_eos;
} vl_qwen_config;

typedef struct {
  vl_tensor *ln1, *ln2;         /* input_layernorm, post_attention_layernorm (F32) */
  vl_tensor *wq, *wk, *wv, *wo; /* as stored (F32/BF16/F16) */
  vl_tensor *bq, *bk, *bv, *bo; /* biases (F32) or NULL */
  vl_tensor *q_norm, *k_norm;   /* Qwen3 per-head RMSNorm (F32) or NULL */
  vl_tensor *gate, *up, *down;  /* MLP */
} vl_qwen_layer;

typedef struct {
  vl_qwen_config cfg;
  vl_checkpoint *ck; /* owned when loaded from a folder */
  bool own_ck;
  vl_gguf *gguf; /* owned when loaded from a GGUF file */
  vl_ctx *wctx;  /* weight headers and widened copies */
  vl_tensor *embed, *norm, *lm_head;
  vl_qwen_layer *layers;
} vl_qwen_text;

/* Reads a text config object (config.json, or a VL model's text_config) into
 * cfg. what names the file in messages. eos_token_id may be an int or a
 * list. Unknown model_type (other than "qwen2"/"qwen3", or kind_hint when
 * model_type is absent), missing or non-positive sizes, heads not dividing
 * evenly, unsupported rope_scaling / sliding windows: VL_ERR_* + message. */
int vl_qwen_config_parse(const cJSON *j, const char *what, vl_qwen_config *cfg);

/* A Hub model folder (config.json + model.safetensors or a sharded index;
 * generation_config.json's eos_token_id, when present, adds stop ids).
 * NULL + vl_error on any problem. */
vl_qwen_text *vl_qwen_text_load(const char *dir);
/* A llama.cpp GGUF file (general.architecture qwen2 / qwen3, tensor names
 * token_embd / blk.N.attn_q ..., weights F32/F16/BF16/Q8_0; qwen_gguf.c).
 * vl_qwen_text_load() comes here for a path ending in ".gguf". */
vl_qwen_text *vl_qwen_text_load_gguf(const char *path);
/* From an open checkpoint (not owned) and a parsed config, tensors named
 * prefix + "layers.0...." (prefix e.g. "model." or "model.language_model.");
 * lm_head_name e.g. "lm_head.weight" (used when present and not tied). */
vl_qwen_text *vl_qwen_text_from(vl_checkpoint *ck, const vl_qwen_config *cfg, const char *prefix,
                                const char *lm_head_name);
void vl_qwen_text_free(vl_qwen_text *m);

typedef struct {
  /* Optional outputs. attn_probs: n_layers slots, each gets that layer's
   * probabilities (B, heads, T, Tk) (on the tape when recording). hidden:
   * the final hidden state after model.norm (B, T, hidden). */
  vl_tensor **attn_probs;
  vl_tensor **hidden;
  /* Instead of ids: (B, T, hidden) embeddings (VL models splice image
   * features in). ids is then ignored and may be NULL. */
  vl_tensor *inputs_embeds;
  /* RoPE angles (T, head_dim/2) or (B, T, head_dim/2) to use instead of
   * positions start..start+T-1 (M-RoPE callers build their own). */
  vl_tensor *angles;
  /* KV cache (batch 1, inference): keys/values of this call are appended
   * and attention reads the whole cache; positions start at cache->len. */
  vl_kv_cache *cache;
  /* Logits only for the last position (decode / prefill): (B, 1, vocab).
   * skip_logits: return the hidden state instead (no lm_head). */
  bool last_only;
  bool skip_logits;
  /* Inference (not recorded, no attn_probs): products round x to the
   * weights' format first, as llama.cpp does — on decode steps for BF16 and
   * Q8_0 weights (tensor/dot_rounded.h), in prefill for BF16 weights
   * (tensor/gemm_bf16.h): faster, not exact. Off: F32 activations. */
  bool round_activations;
  /* DeepStack (Qwen3-VL): after layer l < n_layer_add, the hidden-state rows
   * layer_add_idx (I64 over B*T) get layer_add[l] (rows, hidden) added. */
  vl_tensor *const *layer_add;
  int n_layer_add;
  vl_tensor *layer_add_idx;
} vl_qwen_fwd;

/* ids (B, T) I32/I64 -> logits (B, T, vocab) in c (or the hidden state, see
 * skip_logits). opt may be NULL. NULL + vl_error on bad ids / shapes. */
vl_tensor *vl_qwen_text_forward(vl_ctx *c, const vl_qwen_text *m, vl_tensor *ids,
                                const vl_qwen_fwd *opt);

/* A KV cache sized for this model, batch 1, up to max_tokens positions,
 * keys/values stored as dtype (VL_F32, or VL_F16: half the memory and the
 * bytes a decode step reads; see kv_cache.h). vl_qwen_text_cache_new: F32. */
vl_kv_cache *vl_qwen_text_cache_new_typed(const vl_qwen_text *m, int64_t max_tokens,
                                          vl_dtype dtype);
vl_kv_cache *vl_qwen_text_cache_new(const vl_qwen_text *m, int64_t max_tokens);

/* True when id is one of the model's EOS ids. */
bool vl_qwen_is_eos(const vl_qwen_config *cfg, int32_t id);

#endif
