/* The word-level vocabulary of Shapes World (../shared/spec/shapes-world.md):
 * every word and punctuation mark its captions, hypotheses, the OFA
 * entailment prompt ` does the image describe " {hypothesis} "?` and the
 * answers yes / no / maybe can produce, written as a BERT vocab.txt (+
 * tokenizer_config.json) so that a trained model folder loads through the
 * ordinary WordPiece tokenizer (lower-casing, punctuation split). Each word is
 * one token; plurals ("circles") are whole words. */
#ifndef VL_TASKS_SHAPES_VOCAB_H
#define VL_TASKS_SHAPES_VOCAB_H

#include <stdint.h>

/* Special tokens first, as BLIP's BertTokenizer ([DEC] is its bos). */
enum {
  VL_SV_PAD = 0,
  VL_SV_UNK = 1,
  VL_SV_CLS = 2,
  VL_SV_SEP = 3,
  VL_SV_MASK = 4,
  VL_SV_DEC = 5,
  VL_SV_FIRST_WORD = 6
};

/* Tokens in id order; *n receives the count. */
const char *const *vl_shapes_vocab(int *n);
/* Id of a token, -1 when absent. */
int32_t vl_shapes_vocab_id(const char *token);
/* The entailment prompt for a hypothesis into buf (NUL-terminated);
 * VL_ERR_LIMIT when it does not fit. */
int vl_shapes_entail_prompt(const char *hypothesis, char *buf, int cap);
/* "yes" / "maybe" / "no" for entailment / neutral / contradiction
 * (vl_label order of io/shapes_world.h). */
const char *vl_shapes_answer_word(int label);

/* Writes dir/vocab.txt and dir/tokenizer_config.json (each atomically:
 * temporary file + rename). dir must exist. */
int vl_shapes_vocab_write(const char *dir);

#endif
