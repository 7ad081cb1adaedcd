/* Text tokenizers: byte-level BPE (GPT-2, Qwen2/3), BPE with an end-of-word
 * suffix (CLIP) and WordPiece (BERT/BLIP), loaded from a Hugging Face
 * tokenizer.json, from vocab.json + merges.txt or vocab.txt folders, or from
 * the tokenizer stored in a GGUF file. Encoding follows HF `tokenizers`:
 * added tokens are split out of the raw text first (always, also without
 * add_special), then normalizer -> pre-tokenizer -> model -> post-processor.
 * Text is taken as bytes: invalid UTF-8 passes through byte-level models
 * unchanged, and decode() returns raw bytes (no U+FFFD replacement) so that
 * decode(encode(x)) == x for byte-level BPE. */
#ifndef VL_TEXT_TOKENIZER_H
#define VL_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "io/gguf.h"

typedef struct vl_tokenizer vl_tokenizer;

/* path: a model folder (tokenizer.json, vocab.json + merges.txt, or
 * vocab.txt, tried in that order), a tokenizer.json file, or a .gguf file. */
vl_tokenizer *vl_tokenizer_load(const char *path);
/* A tokenizer.json document in memory; name is used in messages. */
vl_tokenizer *vl_tokenizer_from_json(const char *json, size_t len, const char *name);
/* tokenizer.ggml.* keys of an open GGUF file (model "gpt2" supported). */
vl_tokenizer *vl_tokenizer_from_gguf(const vl_gguf *g);
/* GPT-2/CLIP style folder files; config_json (tokenizer_config.json) may be NULL. */
vl_tokenizer *vl_tokenizer_from_bpe_files(const char *vocab_json, const char *merges_txt,
                                          const char *config_json);
/* BERT vocab.txt; config_json (tokenizer_config.json) may be NULL. */
vl_tokenizer *vl_tokenizer_from_vocab_txt(const char *vocab_txt, const char *config_json);
void vl_tokenizer_free(vl_tokenizer *t);

/* ids: malloc'd, caller frees. add_special adds the post-processor's
 * tokens ([CLS]/[SEP], <|startoftext|>, BOS...). */
int vl_tokenizer_encode(const vl_tokenizer *t, const char *text, size_t len, int add_special,
                        int32_t **ids, size_t *n_ids);
/* out: malloc'd and NUL-terminated; out_len excludes the NUL. Unknown ids are an error. */
int vl_tokenizer_decode(const vl_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                        char **out, size_t *out_len);

int32_t vl_tokenizer_n_vocab(const vl_tokenizer *t);                        /* highest id + 1 */
int32_t vl_tokenizer_token_to_id(const vl_tokenizer *t, const char *token); /* -1: absent */
const char *vl_tokenizer_id_to_token(const vl_tokenizer *t, int32_t id);    /* NULL: absent */
int vl_tokenizer_is_special(const vl_tokenizer *t, int32_t id);
/* Well-known ids from the files (-1 when not given). */
int32_t vl_tokenizer_bos(const vl_tokenizer *t);
int32_t vl_tokenizer_eos(const vl_tokenizer *t);
int32_t vl_tokenizer_pad(const vl_tokenizer *t);

#endif
