/* GGUF reader (versions 2 and 3): the file is mmapped, the header, every
 * metadata value and every tensor info is validated against the file size
 * before anything is returned, so later lookups never read out of bounds.
 * Strings inside the file are not NUL-terminated: they come back as
 * (pointer, length). Keys and tensor names are copied and NUL-terminated. */
#ifndef VL_IO_GGUF_H
#define VL_IO_GGUF_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  VL_GGUF_U8 = 0,
  VL_GGUF_I8 = 1,
  VL_GGUF_U16 = 2,
  VL_GGUF_I16 = 3,
  VL_GGUF_U32 = 4,
  VL_GGUF_I32 = 5,
  VL_GGUF_F32 = 6,
  VL_GGUF_BOOL = 7,
  VL_GGUF_STRING = 8,
  VL_GGUF_ARRAY = 9,
  VL_GGUF_U64 = 10,
  VL_GGUF_I64 = 11,
  VL_GGUF_F64 = 12,
  VL_GGUF_NTYPES
} vl_gguf_type;

/* ggml tensor element types we know the block layout of. */
enum {
  VL_GGML_F32 = 0,
  VL_GGML_F16 = 1,
  VL_GGML_Q4_0 = 2,
  VL_GGML_Q4_1 = 3,
  VL_GGML_Q5_0 = 6,
  VL_GGML_Q5_1 = 7,
  VL_GGML_Q8_0 = 8,
  VL_GGML_Q8_1 = 9,
  VL_GGML_Q2_K = 10,
  VL_GGML_Q3_K = 11,
  VL_GGML_Q4_K = 12,
  VL_GGML_Q5_K = 13,
  VL_GGML_Q6_K = 14,
  VL_GGML_Q8_K = 15,
  VL_GGML_I8 = 24,
  VL_GGML_I16 = 25,
  VL_GGML_I32 = 26,
  VL_GGML_I64 = 27,
  VL_GGML_F64 = 28,
  VL_GGML_BF16 = 30
};

#define VL_GGUF_MAX_DIMS 4

typedef struct {
  char *name;
  uint32_t n_dims;
  int64_t dims[VL_GGUF_MAX_DIMS]; /* ggml order: dims[0] is the fastest-varying */
  uint32_t type;                  /* VL_GGML_* */
  uint64_t offset;                /* relative to the data section */
  uint64_t nbytes;
  const void *data; /* inside the mapping */
} vl_gguf_tensor;

typedef struct vl_gguf vl_gguf;

/* Maps and validates the file; NULL + vl_error() on failure. */
vl_gguf *vl_gguf_open(const char *path);
/* Same over caller-owned memory (kept alive until close); name is used in messages. */
vl_gguf *vl_gguf_open_memory(const void *data, size_t len, const char *name);
void vl_gguf_close(vl_gguf *g);

uint32_t vl_gguf_version(const vl_gguf *g);
uint64_t vl_gguf_alignment(const vl_gguf *g);
const char *vl_gguf_name(const vl_gguf *g);

int64_t vl_gguf_n_kv(const vl_gguf *g);
const char *vl_gguf_key(const vl_gguf *g, int64_t i);
int64_t vl_gguf_find_key(const vl_gguf *g, const char *key); /* -1 when absent */
vl_gguf_type vl_gguf_kv_type(const vl_gguf *g, int64_t i);
const char *vl_gguf_type_name(vl_gguf_type t);

/* Scalar getters by key. Integers of any width/sign convert when the value
 * fits; returns VL_ERR_NOTFOUND / VL_ERR_FORMAT (wrong type) with a message. */
int vl_gguf_get_i64(const vl_gguf *g, const char *key, int64_t *out);
int vl_gguf_get_f64(const vl_gguf *g, const char *key, double *out); /* any number */
int vl_gguf_get_bool(const vl_gguf *g, const char *key, int *out);
int vl_gguf_get_str(const vl_gguf *g, const char *key, const char **s, size_t *len);

/* Arrays by kv index: element type, count, element access. */
vl_gguf_type vl_gguf_arr_type(const vl_gguf *g, int64_t i);
uint64_t vl_gguf_arr_n(const vl_gguf *g, int64_t i);
/* Numeric element j converted to int64/double (0 when not numeric). */
int64_t vl_gguf_arr_i64(const vl_gguf *g, int64_t i, uint64_t j);
double vl_gguf_arr_f64(const vl_gguf *g, int64_t i, uint64_t j);
/* String element j of a string array (NULL when not a string array). */
const char *vl_gguf_arr_str(const vl_gguf *g, int64_t i, uint64_t j, size_t *len);

int64_t vl_gguf_n_tensors(const vl_gguf *g);
const vl_gguf_tensor *vl_gguf_tensor_at(const vl_gguf *g, int64_t i);
const vl_gguf_tensor *vl_gguf_find_tensor(const vl_gguf *g, const char *name);
const char *vl_ggml_type_name(uint32_t type);

#endif
