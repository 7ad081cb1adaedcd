/* A trained byte-level BPE as Hugging Face tokenizer.json (the layout of
 * Qwen2/Qwen3's files: Split(Qwen2 regex, Isolated) + ByteLevel, BPE with
 * "a b" merges, ByteLevel decoder) and a small tokenizer_config.json. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "text/bpe_train.h"
#include "text/tok_impl.h"

static cJSON *bytelevel_obj(void) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", "ByteLevel");
  cJSON_AddBoolToObject(o, "add_prefix_space", 0);
  cJSON_AddBoolToObject(o, "trim_offsets", 0);
  cJSON_AddBoolToObject(o, "use_regex", 0);
  return o;
}

/* <|...|> tokens are special (skipped when decoding with skip_special);
 * others (<think>) are plain added tokens, as in Qwen3's tokenizer.json. */
static int is_special(const char *s) {
  size_t n = strlen(s);
  return n >= 4 && !strncmp(s, "<|", 2) && !strcmp(s + n - 2, "|>");
}

char *vl_bpe_to_json(const vl_bpe_model *m) {
  if (!m || m->n_tokens < 256 || !m->tokens) {
    vl_error(VL_ERR_INVALID, "tokenizer.json: no trained model");
    return NULL;
  }
  for (int i = 0; i < m->n_merges; i++)
    if (m->merges[i][0] < 0 || m->merges[i][0] >= m->n_tokens || m->merges[i][1] < 0 ||
        m->merges[i][1] >= m->n_tokens) {
      vl_error(VL_ERR_INVALID, "tokenizer.json: merge %d names an unknown token", i);
      return NULL;
    }
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "version", "1.0");
  cJSON_AddNullToObject(root, "truncation");
  cJSON_AddNullToObject(root, "padding");
  cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
  for (int i = 0; i < m->n_special; i++) {
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "id", m->n_tokens + i);
    cJSON_AddStringToObject(a, "content", m->special[i]);
    cJSON_AddBoolToObject(a, "single_word", 0);
    cJSON_AddBoolToObject(a, "lstrip", 0);
    cJSON_AddBoolToObject(a, "rstrip", 0);
    cJSON_AddBoolToObject(a, "normalized", 0);
    cJSON_AddBoolToObject(a, "special", is_special(m->special[i]));
    cJSON_AddItemToArray(added, a);
  }
  cJSON_AddNullToObject(root, "normalizer");
  cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
  cJSON_AddStringToObject(pre, "type", "Sequence");
  cJSON *list = cJSON_AddArrayToObject(pre, "pretokenizers");
  cJSON *split = cJSON_CreateObject();
  cJSON_AddStringToObject(split, "type", "Split");
  cJSON *pat = cJSON_AddObjectToObject(split, "pattern");
  cJSON_AddStringToObject(pat, "Regex", TK_RE_QWEN2);
  cJSON_AddStringToObject(split, "behavior", "Isolated");
  cJSON_AddBoolToObject(split, "invert", 0);
  cJSON_AddItemToArray(list, split);
  cJSON_AddItemToArray(list, bytelevel_obj());
  cJSON_AddItemToObject(root, "post_processor", bytelevel_obj());
  cJSON_AddItemToObject(root, "decoder", bytelevel_obj());
  cJSON *model = cJSON_AddObjectToObject(root, "model");
  cJSON_AddStringToObject(model, "type", "BPE");
  cJSON_AddNullToObject(model, "dropout");
  cJSON_AddNullToObject(model, "unk_token");
  cJSON_AddStringToObject(model, "continuing_subword_prefix", "");
  cJSON_AddStringToObject(model, "end_of_word_suffix", "");
  cJSON_AddBoolToObject(model, "fuse_unk", 0);
  cJSON_AddBoolToObject(model, "byte_fallback", 0);
  cJSON_AddBoolToObject(model, "ignore_merges", 0);
  cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
  for (int i = 0; i < m->n_tokens; i++)
    cJSON_AddItemToObject(vocab, m->tokens[i], cJSON_CreateNumber(i));
  cJSON *merges = cJSON_AddArrayToObject(model, "merges");
  char buf[1024];
  int bad = 0;
  for (int i = 0; i < m->n_merges && !bad; i++) {
    int k =
        snprintf(buf, sizeof buf, "%s %s", m->tokens[m->merges[i][0]], m->tokens[m->merges[i][1]]);
    if (k < 0 || (size_t)k >= sizeof buf)
      bad = 1;
    else
      cJSON_AddItemToArray(merges, cJSON_CreateString(buf));
  }
  char *s = bad ? NULL : cJSON_Print(root);
  cJSON_Delete(root);
  if (bad)
    vl_error(VL_ERR_LIMIT, "tokenizer.json: a merged token is over %zu bytes", sizeof buf / 2);
  else if (!s)
    vl_error(VL_ERR_NOMEM, "tokenizer.json: out of memory");
  return s;
}

static int write_text(const char *path, const char *s) {
  FILE *f = fopen(path, "wb");
  if (!f) return vl_error(VL_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
  size_t n = strlen(s);
  int bad = fwrite(s, 1, n, f) != n || fputc('\n', f) == EOF;
  bad |= fclose(f) != 0;
  return bad ? vl_error(VL_ERR_IO, "%s: write error", path) : 0;
}

int vl_bpe_save(const vl_bpe_model *m, const char *dir) {
  if (!dir || !*dir) return vl_error(VL_ERR_INVALID, "tokenizer: no output folder");
  struct stat st;
  if (stat(dir, &st)) {
    if (mkdir(dir, 0777) && errno != EEXIST)
      return vl_error(VL_ERR_IO, "%s: cannot create folder: %s", dir, strerror(errno));
  } else if (!S_ISDIR(st.st_mode)) {
    return vl_error(VL_ERR_IO, "%s: exists and is not a folder", dir);
  }
  char *json = vl_bpe_to_json(m);
  if (!json) return vl_last_error_code();
  size_t pl = strlen(dir) + 32;
  char *path = malloc(pl);
  if (!path) {
    free(json);
    return vl_error(VL_ERR_NOMEM, "tokenizer: out of memory");
  }
  snprintf(path, pl, "%s/tokenizer.json", dir);
  int rc = write_text(path, json);
  free(json);
  if (!rc) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "tokenizer_class", "Qwen2Tokenizer");
    cJSON_AddBoolToObject(c, "add_prefix_space", 0);
    cJSON_AddNullToObject(c, "bos_token");
    const char *eos = NULL, *pad = NULL;
    for (int i = 0; i < m->n_special; i++) {
      if (!strcmp(m->special[i], "<|im_end|>")) eos = m->special[i];
      if (!strcmp(m->special[i], "<|endoftext|>")) pad = m->special[i];
    }
    if (!eos) eos = pad;
    if (eos) cJSON_AddStringToObject(c, "eos_token", eos);
    if (pad) cJSON_AddStringToObject(c, "pad_token", pad);
    cJSON_AddNumberToObject(c, "model_max_length", 2048);
    char *cs = cJSON_Print(c);
    cJSON_Delete(c);
    snprintf(path, pl, "%s/tokenizer_config.json", dir);
    rc = cs ? write_text(path, cs) : vl_error(VL_ERR_NOMEM, "tokenizer: out of memory");
    free(cs);
  }
  free(path);
  return rc;
}
