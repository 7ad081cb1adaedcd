/* vlens — public C API.
 *
 * Vision-language models on CPU, and for every word a model says, a picture
 * of where in the image it looked. Handles are opaque; every call that can
 * fail returns NULL or a negative status and leaves a message for
 * vlens_last_error(). The library never exits or prints to stdout.
 */
#ifndef VLENS_H
#define VLENS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VLENS_VERSION "0.1.0"

const char *vlens_version(void);
/* Message of the last failed call on this thread ("" if none). */
const char *vlens_last_error(void);
/* Worker threads for all compute (<= 0: all cores or VLENS_THREADS). */
void vlens_set_threads(int n);

/* ---- images ------------------------------------------------------------ */
typedef struct vlens_image vlens_image;

/* Decodes PNG, JPEG, BMP, GIF (first frame) or WebP into 8-bit RGB. Images
 * over max_pixels (0: the default limit, 64 megapixels) are refused. */
vlens_image *vlens_image_load(const char *path, int64_t max_pixels);
int vlens_image_width(const vlens_image *img);
int vlens_image_height(const vlens_image *img);
/* Row-major RGB, width * height * 3 bytes, owned by the image. */
const uint8_t *vlens_image_pixels(const vlens_image *img);
int vlens_image_save_png(const vlens_image *img, const char *path);
void vlens_image_free(vlens_image *img);

/* Frees a string (or other buffer) the library handed out: vlens_*_json,
 * vlens_caption's text, vlens_generate's output. NULL is fine. */
void vlens_free(void *p);

/* ---- models ------------------------------------------------------------ */
typedef struct vlens_model vlens_model;

typedef enum {
  VLENS_KIND_CAPTIONER = 1, /* BLIP captioning: describe, entail, caption */
  VLENS_KIND_LLM = 2        /* Qwen2 / Qwen3 text decoder: generate, chat */
} vlens_kind;

/* A Hub model folder (config.json + weights + tokenizer), or the name of an
 * embedded default model ("shapes-blip", "shapes-qwen3") looked for as
 * models/<name> ($VLENS_MODELS, then next to the executable, then the
 * installed data folder). The kind comes from config.json. */
vlens_model *vlens_model_load(const char *dir_or_name);
void vlens_model_free(vlens_model *m);
/* 0 for a NULL model. */
vlens_kind vlens_model_kind(const vlens_model *m);
/* "captioner", "llm" ("" for anything else). */
const char *vlens_kind_name(vlens_kind k);
/* Last component of the folder ("shapes-blip"); "" for a NULL model. */
const char *vlens_model_name(const vlens_model *m);

/* ---- describe / entail (captioners) ------------------------------------ */
typedef struct {
  const char *prompt;  /* text the caption continues; NULL: none */
  const char *explain; /* NULL or "all": every word; "none": no maps; "w1,w2": those words */
  const char *methods; /* comma-separated, "all", or NULL: "gradcam" */
  int layer;           /* -1: each method's default (the last layer) */
  int head;            /* -1: all heads (attention methods) */
  double smooth;       /* Gaussian sigma in cells, 0: off */
  double sharpen;      /* temperature T, 0: off */
  int max_length;      /* tokens in total, prompt included; 0: the model's default
                        * (generation_config.json max_length, else 20) */
  uint64_t seed;       /* the "random" baseline method */
  int faithfulness;    /* nonzero: deletion / insertion curves per map */
  int all_layers;      /* nonzero: every layer's map too ("layers" in each method object,
                          as --layer all) */
  int all_heads;       /* nonzero: every head's map too ("heads", as --heads) */
} vlens_describe_opts;

/* Defaults (as the CLI's): gradcam, every word, last layer, no post-processing.
 * Start from these; passing NULL where opts are taken means the same. */
void vlens_describe_opts_init(vlens_describe_opts *o);

/* The JSON document of ../shared/spec/cli-json.md ("describe"; the image's
 * "path" is null). Caller frees with vlens_free. NULL + vlens_last_error(). */
char *vlens_describe_json(vlens_model *m, const vlens_image *img, const vlens_describe_opts *opts);

/* Visual entailment: is hypothesis true of the image? The "entail" document
 * of cli-json.md; opts: methods / layer / head / smooth / sharpen / seed /
 * faithfulness explain the decision, explain "none" skips the maps (prompt and
 * max_length are not used). Caller frees with vlens_free. */
char *vlens_entail_json(vlens_model *m, const vlens_image *img, const char *hypothesis,
                        const vlens_describe_opts *opts);

/* Greedy caption without explanations into *text (caller frees with
 * vlens_free). 0 or a negative status. */
int vlens_caption(vlens_model *m, const vlens_image *img, char **text);

/* Structured result of a describe: the caption, its words and, per
 * explained word and method, a heatmap. */
typedef struct vlens_description vlens_description;
typedef struct vlens_heatmap vlens_heatmap;

vlens_description *vlens_describe(vlens_model *m, const vlens_image *img,
                                  const vlens_describe_opts *opts);
void vlens_description_free(vlens_description *d);
const char *vlens_description_text(const vlens_description *d);
int vlens_description_n_words(const vlens_description *d);
/* Word w (0-based) of the caption text; NULL when out of range. */
const char *vlens_description_word(const vlens_description *d, int w);
int vlens_description_n_methods(const vlens_description *d);
const char *vlens_description_method(const vlens_description *d, int k);
/* Map of word w by method (NULL: the first method); owned by d. NULL with a
 * message when w is out of range, the word was not explained or the method
 * was not asked for. */
const vlens_heatmap *vlens_description_heatmap(const vlens_description *d, int w,
                                               const char *method);

typedef struct {
  double mean, max, min, std; /* of the cells (normalised to [0, 1]) */
  double focus_area;          /* fraction of cells > 0.5 */
  double top10_mass, entropy, concentration;
  double peak_x, peak_y;     /* centre of the highest cell, original image pixels */
  double center_x, center_y; /* centre of mass, original image pixels */
  const char *region;        /* "upper-center", ..., "diffuse" (static string) */
} vlens_heatmap_stats;

const char *vlens_heatmap_method(const vlens_heatmap *h);
/* Grid width and height in cells (either pointer may be NULL); 0 or negative. */
int vlens_heatmap_grid(const vlens_heatmap *h, int *gw, int *gh);
/* gw * gh values in [0, 1], row-major from the top-left; owned by the map.
 * Cell (r, c) covers x in [c*W/gw, (c+1)*W/gw), y likewise, of the W x H image. */
const float *vlens_heatmap_cells(const vlens_heatmap *h);
int vlens_heatmap_get_stats(const vlens_heatmap *h, vlens_heatmap_stats *st);

/* ---- text generation (Qwen2 / Qwen3) ----------------------------------- */
typedef struct {
  int max_tokens;       /* > 0 */
  float temperature;    /* 0: greedy */
  int top_k;            /* 0: off */
  float top_p;          /* 1: off */
  float min_p;          /* 0: off */
  float repeat_penalty; /* 1: off */
  uint64_t seed;
  const char *const *stop; /* n_stop strings that end the text (left out of it) */
  int n_stop;
  int ignore_eos; /* nonzero: run to max_tokens */
  int kv_f16;     /* nonzero: KV cache keys/values kept as F16 (half the memory and
                     the bytes a decode step reads; logits within ~1e-3 relative) */
  int round_activations; /* nonzero: products round activations to the format of
                            the weights first, as llama.cpp does (decode: BF16 and
                            Q8_0; prefill: BF16). Faster; adds an error of the order
                            the weights' own rounding already has */
} vlens_gen_opts;

/* Greedy, 128 tokens, no stop strings. */
void vlens_gen_opts_init(vlens_gen_opts *o);

/* Called with each piece of text as it becomes final (len may be 0); return
 * nonzero to stop. */
typedef int (*vlens_text_cb)(void *user, const char *text, size_t len);

/* Continues prompt (no chat template applied). cb may be NULL; out (may be
 * NULL) gets the generated text, prompt excluded (free with vlens_free).
 * 0 or a negative status. */
int vlens_generate(vlens_model *m, const char *prompt, const vlens_gen_opts *opts, vlens_text_cb cb,
                   void *user, char **out);

/* ---- multi-turn chat (Qwen2 / Qwen3) ----------------------------------- */
typedef struct vlens_chat vlens_chat;

/* A conversation over the model's chat template (thinking off), the KV
 * cache kept across turns. system may be NULL; opts (NULL: greedy, 128
 * tokens a turn) sets sampling and max_tokens per turn (stop strings are
 * not used). m must outlive the chat. */
vlens_chat *vlens_chat_new(vlens_model *m, const char *system, const vlens_gen_opts *opts);
/* One turn: the reply streams through cb (may be NULL) and into *reply (may
 * be NULL; free with vlens_free). On failure the history is unchanged. */
int vlens_chat_send(vlens_chat *c, const char *user_text, vlens_text_cb cb, void *user,
                    char **reply);
/* Forgets the conversation (the system prompt stays). */
void vlens_chat_reset(vlens_chat *c);
void vlens_chat_free(vlens_chat *c);

#ifdef __cplusplus
}
#endif
#endif
