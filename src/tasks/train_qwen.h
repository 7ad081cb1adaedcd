/* `vlens train-llm`: trains the embedded enrich LLM, a tiny
 * Qwen3-architecture decoder (Qwen3ForCausalLM layout: q/k norms, grouped
 * query attention, SwiGLU; own LM head by default), on Shapes World enrich pairs
 * generated on the fly (text/shapes_enrich.h): the `vlens enrich` user
 * message for a scene's caption -> a caption-mode description, in English
 * or, for a zh_share of the examples, the `--lang zh` prompt -> the Chinese
 * description (the language of each example is drawn from (seed, index)).
 *
 * Tokenizer: a byte-level BPE trained first by text/bpe_train.h on the
 * Shapes World enrich corpus (captions, scene descriptions and the rendered
 * training conversations of tok_scenes scenes, in Chinese too when
 * zh_share > 0, so Chinese gets merged tokens), saved in the output folder
 * as tokenizer.json + tokenizer_config.json; config.json's vocab_size is
 * its size.
 *
 * Sequences: the Qwen3 chat template of the user message with the
 * generation prompt and thinking off ("<|im_start|>assistant\n<think>\n\n
 * </think>\n\n"), tokenized alone exactly as at inference, then the
 * target's tokens and <|im_end|>. Loss: mean cross-entropy over the target
 * tokens and <|im_end|> of the whole batch (the prompt is not learned).
 * A step is one (B, T) forward over the batch right-padded with
 * <|endoftext|> to its longest sequence (causal attention: padding never
 * reaches a real position), hidden rows gathered before the LM head.
 * Global-norm clipping, AdamW (tensor/optim.h), linear warm-up + cosine LR.
 * The word range stated in the prompt ("Length: about N words (between A
 * and B)") is drawn per example, so the model ignores it and `vlens enrich`
 * can pass any range.
 *
 * Output folder (every file written atomically): a Hub model folder
 * (config.json model_type "qwen3", generation_config.json,
 * model.safetensors with names model.embed_tokens.weight ...,
 * tokenizer.json, tokenizer_config.json) that vl_qwen_text_load() and
 * `vlens enrich --llm DIR` read, plus optimizer.safetensors with the AdamW
 * moments and, in __metadata__, vlens_step and vlens_train_llm_opts so that
 * --resume continues bit-identically: example b of step s is pair
 * (seed, s * batch + b) and there is no other random state. */
#ifndef VL_TASKS_TRAIN_QWEN_H
#define VL_TASKS_TRAIN_QWEN_H

#include <stdbool.h>
#include <stdint.h>

#include "io/shapes_world.h"
#include "models/qwen_text.h"
#include "text/enrich_prompt.h"
#include "text/tokenizer.h"

typedef struct {
  const char *out_dir; /* required */
  const char *config;  /* "small-untied" (default), "small", "wide", "tiny" */
  int vocab_size;      /* BPE vocabulary (bytes + merges + special tokens) */
  int64_t tok_scenes;  /* scenes in the tokenizer corpus */
  int64_t steps;       /* optimizer steps in total */
  int64_t batch;       /* sequences per step */
  int64_t warmup;      /* warm-up steps; < 0: 5% of steps */
  int64_t save_every;  /* checkpoint period in steps (0: only at the end) */
  int64_t stop_after;  /* stop (with a checkpoint) after this step; 0: run to the end */
  double lr, min_lr_ratio, weight_decay, clip;
  uint64_t seed;
  bool resume;
  /* With resume: a new total number of steps (more than the saved step);
   * the warm-up + cosine schedule is recomputed over it from there on (the
   * learning rate jumps), so the result is no longer bit-identical to any
   * straight run. 0: keep the saved total. */
  int64_t extend_steps;
  /* Share of examples in Chinese (0..1). Runs saved before it existed
   * resume with 0. */
  double zh_share;
  /* A new run starts from this trained model folder instead of random
   * weights (vl_train_llm_warm_start); NULL: from scratch. */
  const char *init_from;
} vl_train_llm_opts;

/* small-untied, 2048 vocab (English + Chinese stop near 1200), 2000 tokenizer scenes, 3000 steps x
 * 16, lr 3e-3, min lr ratio 0.1, weight decay 0.01, clip 1, save every 100, zh share 0.5. */
void vl_train_llm_default_opts(vl_train_llm_opts *o);

typedef struct {
  int64_t step;        /* steps done */
  double loss;         /* mean loss of the last step */
  double loss_first;   /* of the first step of this run */
  double token_acc;    /* running (EMA) argmax accuracy on target tokens */
  double tokens_per_s; /* all sequence tokens (prompt included) per second, this run */
} vl_train_llm_report;

/* Trains (or resumes) per o; progress bar on stderr. rep may be NULL. */
int vl_train_llm(const vl_train_llm_opts *o, vl_train_llm_report *rep);

/* ---- evaluation --------------------------------------------------------- */

/* Colour/shape mentions of a description against a scene's objects. Key
 * elements: the distinct (colour, shape) pairs of the objects, found when
 * "<colour> <shape>" occurs (text/metrics.h matching: whole words,
 * plurals). Invented: a "<colour> <shape>" pair, a shape word or a colour
 * word occurring that no object of the scene has. Chinese (lang zh): the
 * pair is "<colour><shape>" from the grammar's word table ("红色圆形",
 * io/shapes_describe.h) and invented mentions are counted for the Chinese
 * and the English words. */
typedef struct {
  int keys, found;
  int invented; /* occurrences of absent pairs / shapes / colours */
} vl_llm_mentions;

int vl_llm_mentions_check(const char *text, const vl_shapes_scene *sc, vl_enrich_lang lang,
                          vl_llm_mentions *out);

typedef struct {
  int64_t n;               /* scenes */
  int64_t keys, found;     /* summed */
  double recall;           /* found / keys */
  double mean_recall;      /* mean of per-scene recall */
  int64_t with_invented;   /* descriptions with at least one invented mention */
  double no_invented_rate; /* 1 - with_invented / n */
  double mean_words;       /* description length (zh: CJK characters) */
  int64_t gen_tokens;      /* generated, over all scenes */
  double tokens_per_s;     /* generation speed (prefill + decode) */
} vl_llm_eval;

/* Called once per scene with its caption, the generated description
 * (reasoning stripped) and its mentions; may be NULL. */
typedef void (*vl_llm_eval_cb)(void *user, int64_t index, const char *caption,
                               const char *description, const vl_llm_mentions *mn);

/* Greedy generation (at most max_tokens, <= 0: 256) for scenes 0..n-1 of
 * seed (use a seed the model was not trained on) through the same prompt as
 * training in language lang (the enrich defaults' length range: 60-120
 * words, zh 100-200 characters), reasoning stripped, then the mentions
 * above. VL_OK or a negative status. */
int vl_train_llm_eval(const vl_qwen_text *m, const vl_tokenizer *tok, uint64_t seed, int64_t n,
                      vl_enrich_lang lang, int max_tokens, vl_llm_eval_cb cb, void *user,
                      vl_llm_eval *out);

/* ---- pieces, exposed for tests ------------------------------------------ */

/* Trains the tokenizer (on the Chinese corpus too with zh) and writes a
 * freshly initialised model folder into dir (created when missing): HF
 * _init_weights (normal(0, 0.02) matrices and embedding, RMSNorm weights 1). */
int vl_train_llm_init(const char *dir, const char *config, int vocab_size, int64_t tok_scenes,
                      int zh, uint64_t seed);

/* Replaces the freshly initialised weights in dir by those of the trained
 * folder src of the same config: every tensor by name, and in the
 * embedding and LM head the row of every token whose string both
 * tokenizers have (new tokens keep their initial rows). Errors name src
 * and the tensor when the configs differ. */
int vl_train_llm_warm_start(const char *dir, const char *src);

/* vl_qwen_text_load(dir) with every weight copied to F32 with a gradient;
 * *params (malloc'd) lists them once each (the tied lm_head is the
 * embedding), names set. *tok: the folder's tokenizer. */
vl_qwen_text *vl_train_llm_load(const char *dir, vl_tensor ***params, int64_t *n_params,
                                vl_tokenizer **tok);

/* One example in token ids: ids[0..n_prompt) the prompt, then the target
 * and <|im_end|>. */
typedef struct {
  int32_t *ids; /* malloc'd */
  int64_t n, n_prompt;
} vl_llm_sample;

/* The language of example (seed, index) in a run with this zh share. */
vl_enrich_lang vl_llm_example_lang(uint64_t seed, int64_t index, double zh_share);
/* Pair (seed, index) in language lang tokenized with tok. Release with
 * vl_llm_sample_free. */
int vl_llm_sample_make(const vl_tokenizer *tok, uint64_t seed, int64_t index, vl_enrich_lang lang,
                       vl_llm_sample *s);
void vl_llm_sample_free(vl_llm_sample *s);

typedef struct {
  double loss;    /* of the batch (mean over its target tokens) */
  int64_t ok, n;  /* argmax hits / target tokens */
  int64_t tokens; /* real (unpadded) tokens in the batch */
} vl_llm_batch_stats;

/* Forward and backward of n samples in c (recording on), one (n, T) pass
 * right-padded with pad; weight gradients accumulate (+=). st may be NULL. */
int vl_train_llm_batch(vl_ctx *c, const vl_qwen_text *m, const vl_llm_sample *s, int64_t n,
                       int32_t pad, vl_llm_batch_stats *st);

#endif
