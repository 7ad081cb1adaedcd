/* Byte-level BPE training, as Hugging Face tokenizers' BpeTrainer with a
 * ByteLevel alphabet, and saving the result as a tokenizer.json that
 * text/tokenizer.h (and HF `tokenizers`) load.
 *
 * Pipeline of the trained tokenizer (Qwen2-style): the added (special)
 * tokens are split out of the text; a Split pre-tokenizer with the Qwen2
 * regex (TK_RE_QWEN2, behaviour Isolated); ByteLevel (no prefix space, no
 * regex) maps every byte to one character of GPT-2's bytes_to_unicode
 * alphabet; BPE; a ByteLevel decoder. No normalizer.
 *
 * Training: every text fed is pre-tokenized exactly that way and the pieces
 * ("words") counted. The vocabulary starts with the 256 byte characters,
 * ids 0..255 in code point order (which is GPT-2's order: '!' is 0). Then
 * repeatedly the adjacent pair with the highest count over all words
 * (weighted by word count) is merged into a new token; ties go to the pair
 * with the smaller (left id, right id), HF's BpeTrainer rule. A word
 * "a a a" merged on (a, a) becomes "aa a" (left to right, no overlap). Pair
 * counts are updated only in the words that contain the merged pair (a
 * pair -> words index and a max-heap with lazy deletion), so thousands of
 * merges over megabytes take seconds. A merge whose result string already
 * exists is recorded but adds no token (as HF). Training stops when the
 * vocabulary (model tokens + special tokens) reaches vocab_size or no pair
 * occurs at least min_frequency times. Special tokens get the ids after
 * the model vocabulary, in the order given (as Qwen's files). */
#ifndef VL_TEXT_BPE_TRAIN_H
#define VL_TEXT_BPE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct vl_bpe_trainer vl_bpe_trainer;

typedef struct {
  int vocab_size;             /* total, with the 256 bytes and the special tokens */
  int min_frequency;          /* a pair needs at least this count to merge (>= 1) */
  const char *const *special; /* added tokens, split out of training text too */
  int n_special;
} vl_bpe_options;

/* vocab_size 4096, min_frequency 2, Qwen's <|endoftext|>, <|im_start|>,
 * <|im_end|>, <think>, </think>. */
vl_bpe_options vl_bpe_default_options(void);

typedef struct {
  int n_tokens;  /* model vocabulary: 256 bytes + merged tokens */
  char **tokens; /* byte-level strings (what tokenizer.json holds), NUL-terminated */
  int n_merges;
  int32_t (*merges)[2]; /* rank -> (left id, right id) */
  int n_special;
  char **special; /* ids n_tokens .. n_tokens + n_special - 1 */
} vl_bpe_model;

/* opt is copied (special strings too); NULL = defaults. NULL + vl_error on
 * bad options. */
vl_bpe_trainer *vl_bpe_trainer_new(const vl_bpe_options *opt);
void vl_bpe_trainer_free(vl_bpe_trainer *t);
/* Counts the words of one text (any bytes; invalid UTF-8 is kept as
 * bytes). Call as often as needed before training. */
int vl_bpe_trainer_feed(vl_bpe_trainer *t, const char *text, size_t len);
/* A file, fed whole. */
int vl_bpe_trainer_feed_file(vl_bpe_trainer *t, const char *path);
/* Distinct words counted so far. */
size_t vl_bpe_trainer_n_words(const vl_bpe_trainer *t);
/* Runs the merges; *out owns its strings (vl_bpe_model_free). */
int vl_bpe_trainer_train(vl_bpe_trainer *t, vl_bpe_model *out);
void vl_bpe_model_free(vl_bpe_model *m);

/* tokenizer.json text (HF format: model BPE with vocab and merges, the
 * pipeline above, added_tokens with special true for <|...|> tokens and
 * false for others, as Qwen3's <think>). malloc'd, or NULL + vl_error. */
char *vl_bpe_to_json(const vl_bpe_model *m);
/* Writes dir/tokenizer.json and dir/tokenizer_config.json (eos
 * <|im_end|> and pad <|endoftext|> when those are special tokens); dir is
 * created when missing. */
int vl_bpe_save(const vl_bpe_model *m, const char *dir);

#endif
