/* Reference data for tests. First, the reader for the small float32 files
 * written by tools/gen_block_goldens.py. Format: per tensor an ASCII line
 * "name ndim d0 ... d{ndim-1}\n" followed by the float32 little-endian data.
 * Second, helpers for the independent model goldens in ../shared/golden/<m>
 * (case.json, golden.safetensors, the model's files): comparisons, `vlens
 * dump` output read back, and altered copies of a model folder. */
#ifndef VL_TEST_GOLDENS_H
#define VL_TEST_GOLDENS_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "io/safetensors.h"
#include "tensor/tensor.h"

typedef struct {
  char name[64];
  int ndim;
  int64_t shape[VL_MAX_DIMS];
  int64_t numel;
  float *data;
} golden_tensor;

typedef struct {
  golden_tensor *t;
  int n;
} golden_file;

/* 0 on success; prints why and returns -1 on a missing or malformed file. */
int golden_load(golden_file *g, const char *path);
void golden_free(golden_file *g);
/* The named tensor, or NULL (and a printed note) when absent. */
const golden_tensor *golden_get(const golden_file *g, const char *name);
/* An F32 copy of the named tensor in c (NULL when absent). */
vl_tensor *golden_tensor_in(vl_ctx *c, const golden_file *g, const char *name);

/* ---- model goldens ------------------------------------------------------ */

/* test_shared_path(model)/file, in a static buffer (overwritten by the next
 * call). */
const char *golden_path(const char *model, const char *file);
/* case.json's input_ids as an I64 (T) tensor in c; its target position and
 * token id (-1: none) when asked for. NULL when unreadable. */
vl_tensor *golden_case_ids(vl_ctx *c, const char *model, int64_t *target_pos, int64_t *target_id);
/* The input_ids array of a parsed case.json (malloc'd, count in *n). */
int64_t *golden_ids_of(const cJSON *case_json, int64_t *n);

/* Max relative error of the n floats a against tensor `name` of st, printed
 * after label (NULL: none); 1e9 when missing or of another size. */
double golden_cmp(const vl_safetensors *st, const char *label, const char *name, const float *a,
                  int64_t n);
double golden_cmp_tensor(const vl_safetensors *st, const char *label, const char *name,
                         const vl_tensor *t);
/* What a dump wrote into w (freed), opened in memory; the file's bytes are
 * in *buf, to be freed after the close. NULL on failure. */
vl_safetensors *golden_reopen(vl_st_writer *w, uint8_t **buf);
/* Tensor `name` of a dump against golden_name of st: the same dtype and
 * shape, values within tol (printed). */
bool golden_dump_matches(const vl_safetensors *out, const vl_safetensors *st, const char *label,
                         const char *name, const char *golden_name, double tol);

/* A folder tmp/tag holding links to the files of golden model `model`,
 * except those named in `over`: written from text, or linked to link. */
typedef struct {
  const char *file, *text, *link;
} golden_override;
const char *golden_folder(const char *tag, const char *model, const char *const *files,
                          size_t n_files, const golden_override *over, size_t n_over);
/* model's config.json with path_key ("a" or "a.b") set to the JSON value
 * (NULL: deleted); malloc'd text. */
char *golden_config_with(const char *model, const char *path_key, const char *value_json);
/* model's weights written twice: as BF16 into bf16_path and, rounded the
 * same way, as F32 into rounded_path (other dtypes copied). */
bool golden_write_bf16_copies(const char *model, const char *bf16_path, const char *rounded_path);

#endif
