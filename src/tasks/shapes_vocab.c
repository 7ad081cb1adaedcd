/* Shapes World vocabulary (see shapes_vocab.h). */
#include "tasks/shapes_vocab.h"

#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "io/file.h"

static const char *const k_vocab[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]",
    /* captions: "a {size} {colour} {shape}" joined by ", " / " and ", final "." */
    "a", "small", "large", "red", "green", "blue", "yellow", "circle", "square", "triangle", "and",
    ",", ".",
    /* hypotheses */
    "there", "is", "are", "two", "three", "four", "circles", "squares", "triangles", "the", "left",
    "right", "of", "above", "below", "made", "wood", "metal", "heavy", "warm", "new", "old",
    /* the OFA prompt and its answers */
    "does", "image", "describe", "\"", "?", "yes", "no", "maybe"};

const char *const *vl_shapes_vocab(int *n) {
  *n = (int)(sizeof k_vocab / sizeof k_vocab[0]);
  return k_vocab;
}

int32_t vl_shapes_vocab_id(const char *token) {
  for (int32_t i = 0; i < (int32_t)(sizeof k_vocab / sizeof k_vocab[0]); i++)
    if (!strcmp(k_vocab[i], token)) return i;
  return -1;
}

int vl_shapes_entail_prompt(const char *hypothesis, char *buf, int cap) {
  int n = snprintf(buf, (size_t)cap, " does the image describe \" %s \"?", hypothesis);
  if (n < 0 || n >= cap)
    return vl_error(VL_ERR_LIMIT, "shapes vocab: prompt for '%.40s...' exceeds %d bytes",
                    hypothesis, cap);
  return VL_OK;
}

const char *vl_shapes_answer_word(int label) {
  switch (label) {
  case 0: return "yes";
  case 1: return "maybe";
  default: return "no";
  }
}

int vl_shapes_vocab_write(const char *dir) {
  char path[4096], text[2048];
  size_t off = 0;
  int n = 0;
  const char *const *v = vl_shapes_vocab(&n);
  for (int i = 0; i < n; i++)
    off += (size_t)snprintf(text + off, sizeof text - off, "%s\n", v[i]);
  snprintf(path, sizeof path, "%s/vocab.txt", dir);
  int rc = vl_write_text_file(path, text);
  if (rc) return rc;
  snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
  return vl_write_text_file(
      path, "{\n  \"tokenizer_class\": \"BertTokenizer\",\n  \"do_lower_case\": true,\n"
            "  \"do_basic_tokenize\": true,\n  \"tokenize_chinese_chars\": true,\n"
            "  \"unk_token\": \"[UNK]\",\n  \"sep_token\": \"[SEP]\",\n"
            "  \"pad_token\": \"[PAD]\",\n  \"cls_token\": \"[CLS]\",\n"
            "  \"mask_token\": \"[MASK]\",\n  \"bos_token\": \"[DEC]\",\n"
            "  \"model_max_length\": 512\n}\n");
}
