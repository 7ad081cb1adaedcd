/* `vlens train-llm --init-from DIR`: a fresh run folder starts from the
 * weights of a trained model of the same config (see train_qwen.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "io/safetensors.h"
#include "tasks/train_qwen.h"
#include "tasks/train_run.h"
#include "text/tokenizer.h"

static int is_vocab_matrix(const char *name) {
  return !strcmp(name, "model.embed_tokens.weight") || !strcmp(name, "lm_head.weight");
}

/* Row r of the new vocabulary matrix from the source's row of the same
 * token string, when the source has it. Returns how many rows came over. */
static int64_t map_rows(float *dst, const vl_st_tensor *src, const vl_tokenizer *tn,
                        const vl_tokenizer *to, int64_t rows, int64_t cols) {
  int64_t got = 0;
  float *row = malloc((size_t)cols * sizeof *row);
  if (!row) return -1;
  for (int64_t r = 0; r < rows; r++) {
    const char *s = vl_tokenizer_id_to_token(tn, (int32_t)r);
    const int32_t o = s ? vl_tokenizer_token_to_id(to, s) : -1;
    if (o < 0 || o >= src->shape[0]) continue;
    memcpy(row, (const char *)src->data + (size_t)o * (size_t)cols * sizeof(float),
           (size_t)cols * sizeof(float)); /* the mapping may be unaligned */
    memcpy(dst + r * cols, row, (size_t)cols * sizeof(float));
    got++;
  }
  free(row);
  return got;
}

typedef struct {
  const vl_tokenizer *tn, *to;
  int64_t rows, mapped;
} vocab_map;

/* The embedding and LM head: row by token string (vl_warm_hook). */
static int map_vocab(const char *name, const vl_st_tensor *t, const vl_st_tensor *s, float *d,
                     void *user) {
  vocab_map *v = user;
  if (!is_vocab_matrix(name) || t->ndim != 2 || s->ndim != 2 || s->shape[1] != t->shape[1] ||
      s->dtype != VL_F32)
    return 0;
  const int64_t got = map_rows(d, s, v->tn, v->to, t->shape[0], t->shape[1]);
  if (got < 0) return vl_error(VL_ERR_NOMEM, "train-llm: out of memory");
  v->rows += t->shape[0];
  v->mapped += got;
  return 1;
}

int vl_train_llm_warm_start(const char *dir, const char *src_dir) {
  vocab_map v = {0};
  vl_tokenizer *tn = vl_tokenizer_load(dir), *to = tn ? vl_tokenizer_load(src_dir) : NULL;
  v.tn = tn;
  v.to = to;
  int64_t copied = 0;
  int rc = to ? vl_train_warm_start(dir, src_dir, "train-llm", map_vocab, &v, &copied)
              : vl_error_context("train-llm: --init-from %s", src_dir);
  if (!rc)
    vl_log("train-llm: started from %s: %lld tensors copied, %lld of %lld vocabulary rows "
           "mapped by token",
           src_dir, (long long)copied, (long long)v.mapped, (long long)v.rows);
  vl_tokenizer_free(tn);
  vl_tokenizer_free(to);
  return rc;
}
