/* safetensors files: a validating reader over mmap'd (or caller-owned) bytes,
 * and a writer for dumps, training checkpoints and goldens.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON header
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {"k": "v"}}, then the data section. Offsets are relative to
 * the data section.
 *
 * Everything in the header is checked on open (the file is untrusted input):
 * sizes, offsets inside the data section, no overlaps or holes (as the
 * reference Rust implementation), known dtypes, no duplicate names.
 *
 * Alignment: tensor data pointers point straight into the file and are NOT
 * guaranteed to be aligned for their dtype (the header length decides the
 * base). Consumers copy or widen them (vl_st_to_f32, memcpy), never cast. */
#ifndef VL_IO_SAFETENSORS_H
#define VL_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"

#define VL_ST_MAX_DIMS 8
/* Headers longer than this are refused (VL_ERR_LIMIT); the Rust reference
 * uses the same 100 MB bound. */
#define VL_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef struct {
  const char *name;
  vl_dtype dtype; /* BOOL files are read as VL_U8 */
  int ndim;
  int64_t shape[VL_ST_MAX_DIMS];
  const void *data; /* possibly unaligned; valid until vl_st_close */
  size_t nbytes;
} vl_st_tensor;

typedef struct vl_safetensors vl_safetensors;

/* mmap + full header validation; NULL + vl_error naming the file. */
vl_safetensors *vl_st_open(const char *path);
/* Same over a caller-owned buffer that must outlive the handle (fuzzing,
 * tests, embedded models). name is used in error messages. */
vl_safetensors *vl_st_open_memory(const void *data, size_t len, const char *name);
void vl_st_close(vl_safetensors *st);

const char *vl_st_name(const vl_safetensors *st); /* path or name given at open */
size_t vl_st_count(const vl_safetensors *st);
/* In file (header) order; NULL if i is out of range. */
const vl_st_tensor *vl_st_at(const vl_safetensors *st, size_t i);
/* NULL + VL_ERR_NOTFOUND error naming file and tensor. */
const vl_st_tensor *vl_st_find(const vl_safetensors *st, const char *name);
/* __metadata__ string or NULL. */
const char *vl_st_metadata(const vl_safetensors *st, const char *key);
/* The __metadata__ keys in file order: i < vl_st_metadata_count, else NULL. */
size_t vl_st_metadata_count(const vl_safetensors *st);
const char *vl_st_metadata_key(const vl_safetensors *st, size_t i);

/* Number of elements (product of the shape; 1 for a scalar). */
int64_t vl_st_numel(const vl_st_tensor *t);
/* Widens (F32, F16, BF16) or converts (I64, I32, U8) the tensor into out,
 * which holds vl_st_numel(t) floats. Handles unaligned data. */
int vl_st_to_f32(const vl_st_tensor *t, float *out);

/* ---- writer ------------------------------------------------------------ */
typedef struct vl_st_writer vl_st_writer;

vl_st_writer *vl_st_writer_new(void);
/* Copies name, shape and data (numel * dtype size bytes; data may be NULL
 * only when that is 0). Duplicate names are refused (VL_ERR_INVALID). */
int vl_st_writer_add(vl_st_writer *w, const char *name, vl_dtype dtype, int ndim,
                     const int64_t *shape, const void *data);
int vl_st_writer_set_metadata(vl_st_writer *w, const char *key, const char *value);
/* Atomic: writes a temporary file next to path, then renames it. Tensors are
 * stored in the order they were added. */
int vl_st_writer_save(vl_st_writer *w, const char *path);
/* The whole file in malloc'd memory (*len bytes), for tests and fuzz seeds. */
int vl_st_writer_to_memory(vl_st_writer *w, uint8_t **out, size_t *len);
void vl_st_writer_free(vl_st_writer *w);

#endif
