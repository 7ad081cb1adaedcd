/* GGUF reader: see gguf.h. Layout (little-endian):
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv x (string key, u32 type, value), n_tensors x (string name, u32 n_dims,
 *   u64 dims[n_dims], u32 ggml_type, u64 offset), padding to general.alignment,
 *   tensor data. A string is u64 length + bytes; an array is u32 type + u64 n. */
#include "io/gguf.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"

typedef struct {
  char *key;
  uint32_t type;
  uint64_t off;      /* payload offset (after the type field) */
  uint32_t arr_type; /* arrays only */
  uint64_t arr_n;
  uint64_t *str_offs; /* string arrays: offset of each element's length field */
} gguf_kv;

struct vl_gguf {
  char *name;
  const uint8_t *base;
  size_t size;
  int mapped;
  uint32_t version;
  uint64_t alignment;
  uint64_t data_off;
  int64_t n_kv, n_tensors;
  gguf_kv *kv;
  vl_gguf_tensor *tensors;
};

typedef struct {
  const uint8_t *p;
  size_t size, pos;
  const char *name;
} cursor;

static int need(cursor *c, uint64_t n, const char *what) {
  if (n > c->size - c->pos)
    return vl_error(VL_ERR_FORMAT, "%s: truncated while reading %s at offset %zu", c->name, what,
                    c->pos);
  return 0;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) {
  if (need(c, 4, what)) return VL_ERR_FORMAT;
  memcpy(v, c->p + c->pos, 4);
  c->pos += 4;
  return 0;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what) {
  if (need(c, 8, what)) return VL_ERR_FORMAT;
  memcpy(v, c->p + c->pos, 8);
  c->pos += 8;
  return 0;
}

/* Skips a string, returning its offset (of the length field). */
static int rd_str(cursor *c, uint64_t *off, uint64_t *len, const char *what) {
  uint64_t n;
  size_t at = c->pos;
  if (rd_u64(c, &n, what)) return VL_ERR_FORMAT;
  if (n > c->size - c->pos)
    return vl_error(VL_ERR_FORMAT, "%s: %s at offset %zu has length %llu past the end of the file",
                    c->name, what, at, (unsigned long long)n);
  if (off) *off = at;
  if (len) *len = n;
  c->pos += n;
  return 0;
}

static char *dup_str(cursor *c, uint64_t off, uint64_t len) {
  char *s = malloc(len + 1);
  if (!s) return NULL;
  memcpy(s, c->p + off + 8, len);
  s[len] = 0;
  return s;
}

static size_t scalar_size(uint32_t t) {
  switch (t) {
  case VL_GGUF_U8:
  case VL_GGUF_I8:
  case VL_GGUF_BOOL: return 1;
  case VL_GGUF_U16:
  case VL_GGUF_I16: return 2;
  case VL_GGUF_U32:
  case VL_GGUF_I32:
  case VL_GGUF_F32: return 4;
  case VL_GGUF_U64:
  case VL_GGUF_I64:
  case VL_GGUF_F64: return 8;
  default: return 0;
  }
}

const char *vl_gguf_type_name(vl_gguf_type t) {
  static const char *names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                "bool", "string", "array", "u64", "i64", "f64"};
  return (unsigned)t < VL_GGUF_NTYPES ? names[t] : "unknown";
}

/* Block size (elements) and bytes per block of a ggml type; 0 when unknown. */
static int ggml_layout(uint32_t type, uint64_t *blck, uint64_t *bytes) {
  static const struct {
    uint32_t t;
    uint32_t blck, bytes;
    const char *name;
  } tab[] = {{VL_GGML_F32, 1, 4, "F32"},       {VL_GGML_F16, 1, 2, "F16"},
             {VL_GGML_Q4_0, 32, 18, "Q4_0"},   {VL_GGML_Q4_1, 32, 20, "Q4_1"},
             {VL_GGML_Q5_0, 32, 22, "Q5_0"},   {VL_GGML_Q5_1, 32, 24, "Q5_1"},
             {VL_GGML_Q8_0, 32, 34, "Q8_0"},   {VL_GGML_Q8_1, 32, 36, "Q8_1"},
             {VL_GGML_Q2_K, 256, 84, "Q2_K"},  {VL_GGML_Q3_K, 256, 110, "Q3_K"},
             {VL_GGML_Q4_K, 256, 144, "Q4_K"}, {VL_GGML_Q5_K, 256, 176, "Q5_K"},
             {VL_GGML_Q6_K, 256, 210, "Q6_K"}, {VL_GGML_Q8_K, 256, 292, "Q8_K"},
             {VL_GGML_I8, 1, 1, "I8"},         {VL_GGML_I16, 1, 2, "I16"},
             {VL_GGML_I32, 1, 4, "I32"},       {VL_GGML_I64, 1, 8, "I64"},
             {VL_GGML_F64, 1, 8, "F64"},       {VL_GGML_BF16, 1, 2, "BF16"}};
  for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
    if (tab[i].t == type) {
      if (blck) *blck = tab[i].blck;
      if (bytes) *bytes = tab[i].bytes;
      return 1;
    }
  }
  return 0;
}

const char *vl_ggml_type_name(uint32_t type) {
  switch (type) {
  case VL_GGML_F32: return "F32";
  case VL_GGML_F16: return "F16";
  case VL_GGML_BF16: return "BF16";
  case VL_GGML_Q8_0: return "Q8_0";
  case VL_GGML_Q4_0: return "Q4_0";
  case VL_GGML_Q4_1: return "Q4_1";
  case VL_GGML_Q5_0: return "Q5_0";
  case VL_GGML_Q5_1: return "Q5_1";
  case VL_GGML_Q8_1: return "Q8_1";
  case VL_GGML_Q2_K: return "Q2_K";
  case VL_GGML_Q3_K: return "Q3_K";
  case VL_GGML_Q4_K: return "Q4_K";
  case VL_GGML_Q5_K: return "Q5_K";
  case VL_GGML_Q6_K: return "Q6_K";
  case VL_GGML_Q8_K: return "Q8_K";
  case VL_GGML_I8: return "I8";
  case VL_GGML_I16: return "I16";
  case VL_GGML_I32: return "I32";
  case VL_GGML_I64: return "I64";
  case VL_GGML_F64: return "F64";
  default: return "unknown";
  }
}

static int parse_value(vl_gguf *g, cursor *c, gguf_kv *kv) {
  const char *k = kv->key;
  kv->off = c->pos;
  if (kv->type == VL_GGUF_STRING) {
    if (rd_str(c, NULL, NULL, "string value")) return vl_error_context("key '%s'", k);
    return 0;
  }
  if (kv->type == VL_GGUF_ARRAY) {
    if (rd_u32(c, &kv->arr_type, "array type") || rd_u64(c, &kv->arr_n, "array length"))
      return vl_error_context("key '%s'", k);
    if (kv->arr_type == VL_GGUF_STRING) {
      /* each element needs at least its 8-byte length: bounds the allocation */
      if (kv->arr_n > (c->size - c->pos) / 8)
        return vl_error(VL_ERR_FORMAT,
                        "%s: key '%s': array of %llu strings does not fit in the file", g->name, k,
                        (unsigned long long)kv->arr_n);
      kv->str_offs = malloc((kv->arr_n ? kv->arr_n : 1) * sizeof *kv->str_offs);
      if (!kv->str_offs) return vl_error(VL_ERR_NOMEM, "%s: out of memory", g->name);
      for (uint64_t j = 0; j < kv->arr_n; j++)
        if (rd_str(c, &kv->str_offs[j], NULL, "array string"))
          return vl_error_context("key '%s' element %llu", k, (unsigned long long)j);
      return 0;
    }
    size_t es = scalar_size(kv->arr_type);
    if (!es)
      return vl_error(VL_ERR_FORMAT, "%s: key '%s': unsupported array element type %u", g->name, k,
                      kv->arr_type);
    if (kv->arr_n > (c->size - c->pos) / es)
      return vl_error(VL_ERR_FORMAT, "%s: key '%s': array of %llu %s past the end of the file",
                      g->name, k, (unsigned long long)kv->arr_n, vl_gguf_type_name(kv->arr_type));
    c->pos += kv->arr_n * es;
    return 0;
  }
  size_t es = scalar_size(kv->type);
  if (!es)
    return vl_error(VL_ERR_FORMAT, "%s: key '%s': unknown value type %u", g->name, k, kv->type);
  if (need(c, es, "value")) return vl_error_context("key '%s'", k);
  c->pos += es;
  return 0;
}

static int64_t scalar_i64(const uint8_t *p, uint32_t t, int *ok) {
  *ok = 1;
  switch (t) {
  case VL_GGUF_U8:
  case VL_GGUF_BOOL: return p[0];
  case VL_GGUF_I8: return (int8_t)p[0];
  case VL_GGUF_U16: {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
  }
  case VL_GGUF_I16: {
    int16_t v;
    memcpy(&v, p, 2);
    return v;
  }
  case VL_GGUF_U32: {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
  }
  case VL_GGUF_I32: {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
  }
  case VL_GGUF_I64: {
    int64_t v;
    memcpy(&v, p, 8);
    return v;
  }
  case VL_GGUF_U64: {
    uint64_t v;
    memcpy(&v, p, 8);
    if (v > (uint64_t)INT64_MAX) *ok = 0;
    return (int64_t)v;
  }
  default: *ok = 0; return 0;
  }
}

static double scalar_f64(const uint8_t *p, uint32_t t, int *ok) {
  if (t == VL_GGUF_F32) {
    float f;
    memcpy(&f, p, 4);
    *ok = 1;
    return f;
  }
  if (t == VL_GGUF_F64) {
    double d;
    memcpy(&d, p, 8);
    *ok = 1;
    return d;
  }
  if (t == VL_GGUF_U64) {
    uint64_t v;
    memcpy(&v, p, 8);
    *ok = 1;
    return (double)v;
  }
  return (double)scalar_i64(p, t, ok);
}

static int parse(vl_gguf *g) {
  cursor c = {g->base, g->size, 0, g->name};
  uint32_t magic, version;
  if (g->size < 4 || memcmp(g->base, "GGUF", 4))
    return vl_error(VL_ERR_FORMAT, "%s: not a GGUF file (bad magic)", g->name);
  if (rd_u32(&c, &magic, "magic") || rd_u32(&c, &version, "version")) return VL_ERR_FORMAT;
  if (version != 2 && version != 3)
    return vl_error(VL_ERR_UNSUPPORTED, "%s: GGUF version %u not supported (2 and 3 are)", g->name,
                    version);
  g->version = version;
  uint64_t nt, nkv;
  if (rd_u64(&c, &nt, "tensor count") || rd_u64(&c, &nkv, "metadata count")) return VL_ERR_FORMAT;
  /* a kv takes >= 8+4+1 bytes, a tensor info >= 8+4+8+4+8: bounds allocations */
  if (nkv > (g->size - c.pos) / 13)
    return vl_error(VL_ERR_FORMAT, "%s: metadata count %llu does not fit in the file", g->name,
                    (unsigned long long)nkv);
  if (nt > (g->size - c.pos) / 32)
    return vl_error(VL_ERR_FORMAT, "%s: tensor count %llu does not fit in the file", g->name,
                    (unsigned long long)nt);
  g->kv = calloc(nkv ? nkv : 1, sizeof *g->kv);
  g->tensors = calloc(nt ? nt : 1, sizeof *g->tensors);
  if (!g->kv || !g->tensors) return vl_error(VL_ERR_NOMEM, "%s: out of memory", g->name);

  for (uint64_t i = 0; i < nkv; i++) {
    gguf_kv *kv = &g->kv[i];
    uint64_t off, len;
    if (rd_str(&c, &off, &len, "key"))
      return vl_error_context("metadata entry %llu", (unsigned long long)i);
    if (!(kv->key = dup_str(&c, off, len)))
      return vl_error(VL_ERR_NOMEM, "%s: out of memory", g->name);
    g->n_kv = (int64_t)i + 1;
    if (strlen(kv->key) != len)
      return vl_error(VL_ERR_FORMAT, "%s: metadata key %llu contains a NUL byte", g->name,
                      (unsigned long long)i);
    for (uint64_t j = 0; j < i; j++)
      if (!strcmp(g->kv[j].key, kv->key))
        return vl_error(VL_ERR_FORMAT, "%s: duplicate metadata key '%s'", g->name, kv->key);
    if (rd_u32(&c, &kv->type, "value type")) return vl_error_context("key '%s'", kv->key);
    if (parse_value(g, &c, kv)) return VL_ERR_FORMAT;
  }

  g->alignment = 32;
  int64_t ai = vl_gguf_find_key(g, "general.alignment");
  if (ai >= 0) {
    int ok;
    int64_t a =
        g->kv[ai].type == VL_GGUF_U32 ? scalar_i64(g->base + g->kv[ai].off, VL_GGUF_U32, &ok) : 0;
    if (a <= 0 || (a & (a - 1)))
      return vl_error(VL_ERR_FORMAT, "%s: general.alignment must be a power-of-two u32", g->name);
    g->alignment = (uint64_t)a;
  }

  for (uint64_t i = 0; i < nt; i++) {
    vl_gguf_tensor *t = &g->tensors[i];
    uint64_t off, len;
    if (rd_str(&c, &off, &len, "tensor name"))
      return vl_error_context("tensor info %llu", (unsigned long long)i);
    if (!(t->name = dup_str(&c, off, len)))
      return vl_error(VL_ERR_NOMEM, "%s: out of memory", g->name);
    g->n_tensors = (int64_t)i + 1;
    if (rd_u32(&c, &t->n_dims, "dimension count")) return vl_error_context("tensor '%s'", t->name);
    if (t->n_dims < 1 || t->n_dims > VL_GGUF_MAX_DIMS)
      return vl_error(VL_ERR_FORMAT, "%s: tensor '%s': %u dimensions (1..4 allowed)", g->name,
                      t->name, t->n_dims);
    uint64_t nel = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
      uint64_t v;
      if (rd_u64(&c, &v, "dimension")) return vl_error_context("tensor '%s'", t->name);
      if (v > (uint64_t)INT64_MAX || (v && nel > (uint64_t)INT64_MAX / v))
        return vl_error(VL_ERR_FORMAT, "%s: tensor '%s': element count overflows", g->name,
                        t->name);
      nel *= v;
      t->dims[d] = (int64_t)v;
    }
    for (uint32_t d = t->n_dims; d < VL_GGUF_MAX_DIMS; d++)
      t->dims[d] = 1;
    if (rd_u32(&c, &t->type, "tensor type") || rd_u64(&c, &t->offset, "tensor offset"))
      return vl_error_context("tensor '%s'", t->name);
    uint64_t blck, bpb;
    if (!ggml_layout(t->type, &blck, &bpb))
      return vl_error(VL_ERR_UNSUPPORTED, "%s: tensor '%s': unknown ggml type %u", g->name, t->name,
                      t->type);
    if (t->dims[0] % (int64_t)blck)
      return vl_error(VL_ERR_FORMAT,
                      "%s: tensor '%s': row of %lld not a multiple of the %s block (%llu)", g->name,
                      t->name, (long long)t->dims[0], vl_ggml_type_name(t->type),
                      (unsigned long long)blck);
    t->nbytes = nel / blck * bpb; /* nel < 2^63, bpb <= 292/blck... fits: checked below */
    if (nel / blck > UINT64_MAX / bpb)
      return vl_error(VL_ERR_FORMAT, "%s: tensor '%s': byte size overflows", g->name, t->name);
    if (t->offset % g->alignment)
      return vl_error(VL_ERR_FORMAT, "%s: tensor '%s': offset %llu not aligned to %llu", g->name,
                      t->name, (unsigned long long)t->offset, (unsigned long long)g->alignment);
    for (uint64_t j = 0; j < i; j++)
      if (!strcmp(g->tensors[j].name, t->name))
        return vl_error(VL_ERR_FORMAT, "%s: duplicate tensor name '%s'", g->name, t->name);
  }
  uint64_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
  g->data_off = c.pos + pad;
  for (int64_t i = 0; i < g->n_tensors; i++) {
    vl_gguf_tensor *t = &g->tensors[i];
    uint64_t avail = g->size >= g->data_off ? g->size - g->data_off : 0;
    if (t->offset > avail || t->nbytes > avail - t->offset)
      return vl_error(
          VL_ERR_FORMAT,
          "%s: tensor '%s': data [%llu, +%llu) lies outside the file (data section %llu bytes)",
          g->name, t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
          (unsigned long long)avail);
    t->data = g->base + g->data_off + t->offset;
  }
  return 0;
}

static vl_gguf *finish(vl_gguf *g) {
  if (parse(g)) {
    vl_gguf_close(g);
    return NULL;
  }
  return g;
}

vl_gguf *vl_gguf_open_memory(const void *data, size_t len, const char *name) {
  vl_gguf *g = calloc(1, sizeof *g);
  if (!g || !(g->name = strdup(name ? name : "<memory>"))) {
    free(g);
    vl_error(VL_ERR_NOMEM, "out of memory");
    return NULL;
  }
  g->base = data;
  g->size = len;
  return finish(g);
}

vl_gguf *vl_gguf_open(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    vl_error(VL_ERR_IO, "%s: cannot open", path);
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    close(fd);
    vl_error(VL_ERR_IO, "%s: not a regular file", path);
    return NULL;
  }
  vl_gguf *g = calloc(1, sizeof *g);
  if (!g || !(g->name = strdup(path))) {
    free(g);
    close(fd);
    vl_error(VL_ERR_NOMEM, "out of memory");
    return NULL;
  }
  g->size = (size_t)st.st_size;
  if (g->size) {
    void *p = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      close(fd);
      free(g->name);
      free(g);
      vl_error(VL_ERR_IO, "%s: mmap failed", path);
      return NULL;
    }
    g->base = p;
    g->mapped = 1;
  }
  close(fd);
  return finish(g);
}

void vl_gguf_close(vl_gguf *g) {
  if (!g) return;
  for (int64_t i = 0; i < g->n_kv; i++) {
    free(g->kv[i].key);
    free(g->kv[i].str_offs);
  }
  for (int64_t i = 0; i < g->n_tensors; i++)
    free(g->tensors[i].name);
  free(g->kv);
  free(g->tensors);
  if (g->mapped) munmap((void *)g->base, g->size);
  free(g->name);
  free(g);
}

uint32_t vl_gguf_version(const vl_gguf *g) { return g->version; }
uint64_t vl_gguf_alignment(const vl_gguf *g) { return g->alignment; }
const char *vl_gguf_name(const vl_gguf *g) { return g->name; }
int64_t vl_gguf_n_kv(const vl_gguf *g) { return g->n_kv; }
const char *vl_gguf_key(const vl_gguf *g, int64_t i) {
  return i >= 0 && i < g->n_kv ? g->kv[i].key : NULL;
}
vl_gguf_type vl_gguf_kv_type(const vl_gguf *g, int64_t i) {
  return i >= 0 && i < g->n_kv ? (vl_gguf_type)g->kv[i].type : VL_GGUF_NTYPES;
}

int64_t vl_gguf_find_key(const vl_gguf *g, const char *key) {
  for (int64_t i = 0; i < g->n_kv; i++)
    if (g->kv[i].key && !strcmp(g->kv[i].key, key)) return i;
  return -1;
}

static const gguf_kv *get(const vl_gguf *g, const char *key) {
  int64_t i = vl_gguf_find_key(g, key);
  if (i < 0) {
    vl_error(VL_ERR_NOTFOUND, "%s: metadata key '%s' not found", g->name, key);
    return NULL;
  }
  return &g->kv[i];
}

int vl_gguf_get_i64(const vl_gguf *g, const char *key, int64_t *out) {
  const gguf_kv *kv = get(g, key);
  if (!kv) return VL_ERR_NOTFOUND;
  int ok = 0;
  if (kv->type != VL_GGUF_BOOL) *out = scalar_i64(g->base + kv->off, kv->type, &ok);
  if (!ok)
    return vl_error(VL_ERR_FORMAT, "%s: key '%s' is %s, expected an integer", g->name, key,
                    vl_gguf_type_name(kv->type));
  return 0;
}

int vl_gguf_get_f64(const vl_gguf *g, const char *key, double *out) {
  const gguf_kv *kv = get(g, key);
  if (!kv) return VL_ERR_NOTFOUND;
  int ok = 0;
  if (kv->type != VL_GGUF_BOOL) *out = scalar_f64(g->base + kv->off, kv->type, &ok);
  if (!ok)
    return vl_error(VL_ERR_FORMAT, "%s: key '%s' is %s, expected a number", g->name, key,
                    vl_gguf_type_name(kv->type));
  return 0;
}

int vl_gguf_get_bool(const vl_gguf *g, const char *key, int *out) {
  const gguf_kv *kv = get(g, key);
  if (!kv) return VL_ERR_NOTFOUND;
  if (kv->type != VL_GGUF_BOOL)
    return vl_error(VL_ERR_FORMAT, "%s: key '%s' is %s, expected bool", g->name, key,
                    vl_gguf_type_name(kv->type));
  *out = g->base[kv->off] != 0;
  return 0;
}

int vl_gguf_get_str(const vl_gguf *g, const char *key, const char **s, size_t *len) {
  const gguf_kv *kv = get(g, key);
  if (!kv) return VL_ERR_NOTFOUND;
  if (kv->type != VL_GGUF_STRING)
    return vl_error(VL_ERR_FORMAT, "%s: key '%s' is %s, expected string", g->name, key,
                    vl_gguf_type_name(kv->type));
  uint64_t n;
  memcpy(&n, g->base + kv->off, 8);
  *s = (const char *)g->base + kv->off + 8;
  if (len) *len = (size_t)n;
  return 0;
}

vl_gguf_type vl_gguf_arr_type(const vl_gguf *g, int64_t i) {
  if (i < 0 || i >= g->n_kv || g->kv[i].type != VL_GGUF_ARRAY) return VL_GGUF_NTYPES;
  return (vl_gguf_type)g->kv[i].arr_type;
}

uint64_t vl_gguf_arr_n(const vl_gguf *g, int64_t i) {
  if (i < 0 || i >= g->n_kv || g->kv[i].type != VL_GGUF_ARRAY) return 0;
  return g->kv[i].arr_n;
}

static const uint8_t *arr_elem(const vl_gguf *g, int64_t i, uint64_t j) {
  if (i < 0 || i >= g->n_kv || g->kv[i].type != VL_GGUF_ARRAY || j >= g->kv[i].arr_n) return NULL;
  size_t es = scalar_size(g->kv[i].arr_type);
  if (!es) return NULL;
  return g->base + g->kv[i].off + 12 + j * es;
}

int64_t vl_gguf_arr_i64(const vl_gguf *g, int64_t i, uint64_t j) {
  const uint8_t *p = arr_elem(g, i, j);
  int ok;
  return p ? scalar_i64(p, g->kv[i].arr_type, &ok) : 0;
}

double vl_gguf_arr_f64(const vl_gguf *g, int64_t i, uint64_t j) {
  const uint8_t *p = arr_elem(g, i, j);
  int ok;
  return p ? scalar_f64(p, g->kv[i].arr_type, &ok) : 0;
}

const char *vl_gguf_arr_str(const vl_gguf *g, int64_t i, uint64_t j, size_t *len) {
  if (i < 0 || i >= g->n_kv || g->kv[i].type != VL_GGUF_ARRAY ||
      g->kv[i].arr_type != VL_GGUF_STRING || j >= g->kv[i].arr_n)
    return NULL;
  uint64_t n;
  memcpy(&n, g->base + g->kv[i].str_offs[j], 8);
  if (len) *len = (size_t)n;
  return (const char *)g->base + g->kv[i].str_offs[j] + 8;
}

int64_t vl_gguf_n_tensors(const vl_gguf *g) { return g->n_tensors; }

const vl_gguf_tensor *vl_gguf_tensor_at(const vl_gguf *g, int64_t i) {
  return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const vl_gguf_tensor *vl_gguf_find_tensor(const vl_gguf *g, const char *name) {
  for (int64_t i = 0; i < g->n_tensors; i++)
    if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
  return NULL;
}
