/* `vlens train-llm --init-from DIR`: a fresh run folder starts from the
 * weights of a trained model of the same config (see train_qwen.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "io/safetensors.h"
#include "tasks/train_qwen.h"
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

int vl_train_llm_warm_start(const char *dir, const char *src_dir) {
  char pn[4096], po[4096];
  snprintf(pn, sizeof pn, "%s/model.safetensors", dir);
  snprintf(po, sizeof po, "%s/model.safetensors", src_dir);
  vl_tokenizer *tn = vl_tokenizer_load(dir), *to = tn ? vl_tokenizer_load(src_dir) : NULL;
  vl_safetensors *sn = to ? vl_st_open(pn) : NULL, *so = sn ? vl_st_open(po) : NULL;
  vl_st_writer *w = so ? vl_st_writer_new() : NULL;
  int rc = w ? VL_OK : vl_last_error_code() ? vl_last_error_code() : VL_ERR_NOMEM;
  int64_t rows = 0, mapped = 0, copied = 0;
  for (size_t i = 0; !rc && i < vl_st_count(sn); i++) {
    const vl_st_tensor *t = vl_st_at(sn, i), *s = vl_st_find(so, t->name);
    if (!s) {
      rc = vl_error(VL_ERR_FORMAT, "%s: no tensor '%s': not the same config as %s", po, t->name,
                    dir);
      break;
    }
    const int64_t n = vl_st_numel(t);
    float *d = malloc((size_t)n * sizeof *d);
    if (!d) {
      rc = vl_error(VL_ERR_NOMEM, "train-llm: out of memory");
      break;
    }
    rc = vl_st_to_f32(t, d);
    const int vocab = is_vocab_matrix(t->name) && t->ndim == 2 && s->ndim == 2 &&
                      s->shape[1] == t->shape[1] && s->dtype == VL_F32;
    if (!rc && vocab) {
      const int64_t got = map_rows(d, s, tn, to, t->shape[0], t->shape[1]);
      if (got < 0) rc = vl_error(VL_ERR_NOMEM, "train-llm: out of memory");
      rows += t->shape[0];
      mapped += got;
    } else if (!rc) {
      if (vl_st_numel(s) != n || s->ndim != t->ndim)
        rc = vl_error(VL_ERR_FORMAT, "%s: tensor '%s' has another shape than in %s", po, t->name,
                      dir);
      else
        rc = vl_st_to_f32(s, d);
      copied++;
    }
    if (!rc) rc = vl_st_writer_add(w, t->name, VL_F32, t->ndim, t->shape, d);
    free(d);
  }
  vl_st_close(so);
  vl_st_close(sn); /* before the file is replaced */
  if (!rc) rc = vl_st_writer_set_metadata(w, "format", "pt");
  if (!rc) rc = vl_st_writer_save(w, pn);
  if (!rc)
    vl_log("train-llm: started from %s: %lld tensors copied, %lld of %lld vocabulary rows "
           "mapped by token",
           src_dir, (long long)copied, (long long)mapped, (long long)rows);
  vl_st_writer_free(w);
  vl_tokenizer_free(tn);
  vl_tokenizer_free(to);
  return rc ? vl_error_context("train-llm: --init-from %s", src_dir) : VL_OK;
}
