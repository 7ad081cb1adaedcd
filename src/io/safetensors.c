/* safetensors reader (validating) and writer. See safetensors.h. */
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/half.h"

struct vl_safetensors {
  char *name;
  void *map; /* non-NULL when we own an mmap */
  size_t map_len;
  const uint8_t *data; /* data section */
  size_t data_len;
  size_t n;
  vl_st_tensor *t; /* file order */
  size_t *by_name; /* indices sorted by name, for vl_st_find */
  size_t n_meta;
  char **meta; /* key, value, key, value, ... */
};

/* Tensor and metadata names can be long and hostile: keep messages short. */
#define NAMEF "%.200s"

static int parse_dtype(const char *s, vl_dtype *out) {
  static const struct {
    const char *name;
    int dtype; /* -1: a real safetensors dtype we do not handle */
  } tab[] = {
      {"F32", VL_F32}, {"F16", VL_F16}, {"BF16", VL_BF16}, {"I64", VL_I64}, {"I32", VL_I32},
      {"U8", VL_U8},   {"BOOL", VL_U8}, {"F64", -1},       {"I8", -1},      {"I16", -1},
      {"U16", -1},     {"U32", -1},     {"U64", -1},       {"F8_E4M3", -1}, {"F8_E5M2", -1},
      {"F8_E8M0", -1}, {"F6_E2M3", -1}, {"F6_E3M2", -1},   {"F4", -1},      {"C64", -1},
  };
  for (size_t i = 0; i < sizeof tab / sizeof *tab; i++) {
    if (!strcmp(s, tab[i].name)) {
      if (tab[i].dtype < 0) return VL_ERR_UNSUPPORTED;
      *out = (vl_dtype)tab[i].dtype;
      return VL_OK;
    }
  }
  return VL_ERR_FORMAT;
}

/* Non-empty, no control characters (cJSON lets raw ones through, and an
 * escaped NUL would silently cut the name short). */
static int valid_name(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if ((unsigned char)*s < 0x20) return 0;
  return 1;
}

/* A JSON number that is a non-negative integer exactly representable. */
static int json_uint(const cJSON *j, uint64_t *out) {
  if (!cJSON_IsNumber(j)) return 0;
  double d = j->valuedouble;
  if (!(d >= 0) || d > 9007199254740992.0 || d != (double)(uint64_t)d) return 0;
  *out = (uint64_t)d;
  return 1;
}

typedef struct {
  const char *name;
  size_t idx;
} named;
static int cmp_name(const void *a, const void *b) {
  return strcmp(((const named *)a)->name, ((const named *)b)->name);
}

typedef struct {
  uint64_t begin, end;
  size_t idx;
} span;
static int cmp_span(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

void vl_st_close(vl_safetensors *st) {
  if (!st) return;
  for (size_t i = 0; i < st->n; i++)
    free((char *)st->t[i].name);
  for (size_t i = 0; i < 2 * st->n_meta; i++)
    free(st->meta[i]);
  free(st->meta);
  free(st->t);
  free(st->by_name);
  if (st->map) munmap(st->map, st->map_len);
  free(st->name);
  free(st);
}

static int parse_metadata(vl_safetensors *st, const cJSON *m) {
  const char *fn = st->name;
  if (!cJSON_IsObject(m))
    return vl_error(VL_ERR_FORMAT, "%s: __metadata__ is not a JSON object", fn);
  size_t n = 0;
  for (const cJSON *c = m->child; c; c = c->next)
    n++;
  st->meta = calloc(2 * n + 1, sizeof *st->meta);
  if (!st->meta) return vl_error(VL_ERR_NOMEM, "%s: out of memory", fn);
  for (const cJSON *c = m->child; c; c = c->next) {
    if (!cJSON_IsString(c))
      return vl_error(VL_ERR_FORMAT, "%s: __metadata__ value '" NAMEF "' is not a string", fn,
                      c->string);
    st->meta[2 * st->n_meta] = strdup(c->string);
    st->meta[2 * st->n_meta + 1] = strdup(c->valuestring);
    st->n_meta++;
    if (!st->meta[2 * st->n_meta - 2] || !st->meta[2 * st->n_meta - 1])
      return vl_error(VL_ERR_NOMEM, "%s: out of memory", fn);
  }
  return VL_OK;
}

static int parse_entry(vl_safetensors *st, const cJSON *e, vl_st_tensor *t, span *sp) {
  const char *fn = st->name, *tn = e->string;
  if (!cJSON_IsObject(e))
    return vl_error(VL_ERR_FORMAT, "%s: tensor '" NAMEF "': entry is not a JSON object", fn, tn);
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
  const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
  const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
  if (!cJSON_IsString(dt))
    return vl_error(VL_ERR_FORMAT, "%s: tensor '" NAMEF "': missing or non-string \"dtype\"", fn,
                    tn);
  if (!cJSON_IsArray(sh))
    return vl_error(VL_ERR_FORMAT, "%s: tensor '" NAMEF "': missing or non-array \"shape\"", fn,
                    tn);
  if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
    return vl_error(VL_ERR_FORMAT,
                    "%s: tensor '" NAMEF "': \"data_offsets\" must be an array [begin, end]", fn,
                    tn);
  int rc = parse_dtype(dt->valuestring, &t->dtype);
  if (rc == VL_ERR_UNSUPPORTED)
    return vl_error(rc, "%s: tensor '" NAMEF "': dtype %.32s is not supported", fn, tn,
                    dt->valuestring);
  if (rc)
    return vl_error(rc, "%s: tensor '" NAMEF "': unknown dtype \"%.32s\"", fn, tn, dt->valuestring);
  int ndim = cJSON_GetArraySize(sh);
  if (ndim > VL_ST_MAX_DIMS)
    return vl_error(VL_ERR_UNSUPPORTED, "%s: tensor '" NAMEF "': %d dimensions (at most %d)", fn,
                    tn, ndim, VL_ST_MAX_DIMS);
  t->ndim = ndim;
  uint64_t numel = 1;
  int d = 0;
  for (const cJSON *c = sh->child; c; c = c->next, d++) {
    uint64_t v;
    if (!json_uint(c, &v) || v > INT64_MAX)
      return vl_error(VL_ERR_FORMAT,
                      "%s: tensor '" NAMEF "': shape[%d] is not a non-negative integer", fn, tn, d);
    t->shape[d] = (int64_t)v;
    if (__builtin_mul_overflow(numel, v, &numel))
      return vl_error(VL_ERR_FORMAT, "%s: tensor '" NAMEF "': shape overflows", fn, tn);
  }
  uint64_t nbytes;
  if (__builtin_mul_overflow(numel, (uint64_t)vl_dtype_size(t->dtype), &nbytes))
    return vl_error(VL_ERR_FORMAT, "%s: tensor '" NAMEF "': shape overflows", fn, tn);
  uint64_t b, en;
  if (!json_uint(off->child, &b) || !json_uint(off->child->next, &en))
    return vl_error(VL_ERR_FORMAT,
                    "%s: tensor '" NAMEF "': data_offsets are not non-negative integers", fn, tn);
  if (en < b)
    return vl_error(VL_ERR_FORMAT, "%s: tensor '" NAMEF "': data_offsets end %llu < begin %llu", fn,
                    tn, (unsigned long long)en, (unsigned long long)b);
  if (en > st->data_len)
    return vl_error(VL_ERR_FORMAT,
                    "%s: tensor '" NAMEF
                    "': data_offsets [%llu, %llu] outside the data section (%zu bytes; "
                    "file truncated?)",
                    fn, tn, (unsigned long long)b, (unsigned long long)en, st->data_len);
  if (en - b != nbytes)
    return vl_error(VL_ERR_FORMAT,
                    "%s: tensor '" NAMEF "': shape and dtype %s need %llu bytes but "
                    "data_offsets span %llu",
                    fn, tn, vl_dtype_name(t->dtype), (unsigned long long)nbytes,
                    (unsigned long long)(en - b));
  t->data = st->data + b;
  t->nbytes = (size_t)nbytes;
  sp->begin = b;
  sp->end = en;
  return VL_OK;
}

static int parse_header(vl_safetensors *st, const uint8_t *buf, size_t len) {
  const char *fn = st->name;
  if (len < 8)
    return vl_error(VL_ERR_FORMAT,
                    "%s: not a safetensors file: %zu bytes, shorter than the 8-byte header "
                    "length",
                    fn, len);
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--)
    hl = hl << 8 | buf[i];
  if (hl > VL_ST_MAX_HEADER)
    return vl_error(hl > len ? VL_ERR_FORMAT : VL_ERR_LIMIT,
                    "%s: header length %llu is too large (limit %llu; not a safetensors file?)", fn,
                    (unsigned long long)hl, (unsigned long long)VL_ST_MAX_HEADER);
  if (hl > len - 8)
    return vl_error(VL_ERR_FORMAT,
                    "%s: header length %llu runs past the end of the file (%zu bytes; "
                    "truncated?)",
                    fn, (unsigned long long)hl, len);
  if (hl < 2 || buf[8] != '{')
    return vl_error(VL_ERR_FORMAT, "%s: header does not start with a JSON object '{'", fn);
  st->data = buf + 8 + hl;
  st->data_len = len - 8 - (size_t)hl;

  const char *text = (const char *)buf + 8, *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)hl, &end, 0);
  if (!root) {
    size_t pos = end && end >= text ? (size_t)(end - text) : 0;
    return vl_error(VL_ERR_FORMAT, "%s: header JSON parse error at byte %zu of %llu", fn, pos,
                    (unsigned long long)hl);
  }
  /* The writer pads with spaces; anything else after the object is junk. */
  for (const char *p = end; p < text + hl; p++) {
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
      cJSON_Delete(root);
      return vl_error(VL_ERR_FORMAT, "%s: junk after the header JSON object at byte %zu", fn,
                      (size_t)(p - text));
    }
  }
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return vl_error(VL_ERR_FORMAT, "%s: header is not a JSON object", fn);
  }
  size_t n = 0;
  for (const cJSON *c = root->child; c; c = c->next)
    n += strcmp(c->string, "__metadata__") != 0;
  st->t = calloc(n ? n : 1, sizeof *st->t);
  st->by_name = calloc(n ? n : 1, sizeof *st->by_name);
  span *sp = calloc(n ? n : 1, sizeof *sp);
  int rc = VL_OK;
  if (!st->t || !st->by_name || !sp) rc = vl_error(VL_ERR_NOMEM, "%s: out of memory", fn);
  int seen_meta = 0;
  for (const cJSON *c = root->child; c && !rc; c = c->next) {
    if (!strcmp(c->string, "__metadata__")) {
      if (seen_meta++)
        rc = vl_error(VL_ERR_FORMAT, "%s: __metadata__ appears twice", fn);
      else
        rc = parse_metadata(st, c);
      continue;
    }
    if (!valid_name(c->string)) {
      rc = vl_error(VL_ERR_FORMAT, "%s: tensor %zu has an empty name or control characters in it",
                    fn, st->n);
      break;
    }
    vl_st_tensor *t = &st->t[st->n];
    rc = parse_entry(st, c, t, &sp[st->n]);
    if (rc) break;
    if (!(t->name = strdup(c->string))) {
      rc = vl_error(VL_ERR_NOMEM, "%s: out of memory", fn);
      break;
    }
    sp[st->n].idx = st->n;
    st->by_name[st->n] = st->n;
    st->n++;
  }
  cJSON_Delete(root);
  if (!rc && st->n) {
    named *nm = malloc(st->n * sizeof *nm);
    if (!nm) {
      free(sp);
      return vl_error(VL_ERR_NOMEM, "%s: out of memory", fn);
    }
    for (size_t i = 0; i < st->n; i++)
      nm[i] = (named){st->t[i].name, i};
    qsort(nm, st->n, sizeof *nm, cmp_name);
    for (size_t i = 0; i < st->n; i++)
      st->by_name[i] = nm[i].idx;
    free(nm);
    for (size_t i = 1; i < st->n && !rc; i++) {
      if (!strcmp(st->t[st->by_name[i]].name, st->t[st->by_name[i - 1]].name))
        rc = vl_error(VL_ERR_FORMAT, "%s: tensor '" NAMEF "' appears twice in the header", fn,
                      st->t[st->by_name[i]].name);
    }
  }
  if (!rc) {
    /* Like the reference implementation: the tensors tile the data section
     * exactly, with no overlaps, holes or trailing bytes. */
    qsort(sp, st->n, sizeof *sp, cmp_span);
    uint64_t at = 0;
    for (size_t i = 0; i < st->n && !rc; i++) {
      const char *tn = st->t[sp[i].idx].name;
      if (sp[i].begin < at)
        rc = vl_error(VL_ERR_FORMAT, "%s: tensor '" NAMEF "' overlaps tensor '" NAMEF "'", fn, tn,
                      st->t[sp[i - 1].idx].name);
      else if (sp[i].begin > at)
        rc = vl_error(VL_ERR_FORMAT,
                      "%s: tensor '" NAMEF "': %llu unused bytes before its data (hole in the "
                      "data section)",
                      fn, tn, (unsigned long long)(sp[i].begin - at));
      at = sp[i].end;
    }
    if (!rc && at != st->data_len)
      rc = vl_error(VL_ERR_FORMAT,
                    "%s: data section has %llu bytes after the last tensor (expected %zu "
                    "bytes in all)",
                    fn, (unsigned long long)(st->data_len - at), (size_t)at);
  }
  free(sp);
  return rc;
}

static vl_safetensors *open_bytes(const uint8_t *buf, size_t len, const char *name, void *map) {
  vl_safetensors *st = calloc(1, sizeof *st);
  if (st) st->name = strdup(name ? name : "<memory>");
  if (!st || !st->name) {
    free(st);
    if (map) munmap(map, len);
    vl_error(VL_ERR_NOMEM, "%s: out of memory", name ? name : "<memory>");
    return NULL;
  }
  st->map = map;
  st->map_len = len;
  if (parse_header(st, buf, len)) {
    vl_st_close(st);
    return NULL;
  }
  return st;
}

vl_safetensors *vl_st_open_memory(const void *data, size_t len, const char *name) {
  if (!data && len) {
    vl_error(VL_ERR_INVALID, "%s: NULL buffer", name ? name : "<memory>");
    return NULL;
  }
  static const uint8_t empty[1];
  return open_bytes(data ? data : empty, len, name, NULL);
}

vl_safetensors *vl_st_open(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    vl_error(errno == ENOENT ? VL_ERR_NOTFOUND : VL_ERR_IO, "%s: cannot open: %s", path,
             strerror(errno));
    return NULL;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    int e = errno;
    close(fd);
    vl_error(VL_ERR_IO, "%s: %s", path, S_ISDIR(sb.st_mode) ? "is a directory" : strerror(e));
    return NULL;
  }
  size_t len = (size_t)sb.st_size;
  if (len < 8) {
    close(fd);
    vl_error(VL_ERR_FORMAT,
             "%s: not a safetensors file: %zu bytes, shorter than the 8-byte header length", path,
             len);
    return NULL;
  }
  void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  close(fd);
  if (map == MAP_FAILED) {
    vl_error(VL_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
    return NULL;
  }
  return open_bytes(map, len, path, map);
}

const char *vl_st_name(const vl_safetensors *st) { return st ? st->name : NULL; }
size_t vl_st_count(const vl_safetensors *st) { return st ? st->n : 0; }

const vl_st_tensor *vl_st_at(const vl_safetensors *st, size_t i) {
  return st && i < st->n ? &st->t[i] : NULL;
}

const vl_st_tensor *vl_st_find(const vl_safetensors *st, const char *name) {
  if (!st || !name) {
    vl_error(VL_ERR_INVALID, "vl_st_find: NULL argument");
    return NULL;
  }
  size_t lo = 0, hi = st->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(st->t[st->by_name[mid]].name, name);
    if (c == 0) return &st->t[st->by_name[mid]];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  vl_error(VL_ERR_NOTFOUND, "%s: no tensor named '" NAMEF "'", st->name, name);
  return NULL;
}

const char *vl_st_metadata(const vl_safetensors *st, const char *key) {
  if (!st || !key) return NULL;
  for (size_t i = 0; i < st->n_meta; i++)
    if (!strcmp(st->meta[2 * i], key)) return st->meta[2 * i + 1];
  return NULL;
}

size_t vl_st_metadata_count(const vl_safetensors *st) { return st ? st->n_meta : 0; }

const char *vl_st_metadata_key(const vl_safetensors *st, size_t i) {
  return st && i < st->n_meta ? st->meta[2 * i] : NULL;
}

int64_t vl_st_numel(const vl_st_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= t->shape[i];
  return n;
}

int vl_st_to_f32(const vl_st_tensor *t, float *out) {
  if (!t || (!out && t->nbytes)) return vl_error(VL_ERR_INVALID, "vl_st_to_f32: NULL argument");
  size_t n = t->nbytes / vl_dtype_size(t->dtype);
  const uint8_t *p = t->data;
  for (size_t i = 0; i < n; i++) {
    switch (t->dtype) {
    case VL_F32: memcpy(&out[i], p + 4 * i, 4); break;
    case VL_F16: {
      uint16_t h;
      memcpy(&h, p + 2 * i, 2);
      out[i] = vl_f16_to_f32(h);
      break;
    }
    case VL_BF16: {
      uint16_t h;
      memcpy(&h, p + 2 * i, 2);
      out[i] = vl_bf16_to_f32(h);
      break;
    }
    case VL_I64: {
      int64_t v;
      memcpy(&v, p + 8 * i, 8);
      out[i] = (float)v;
      break;
    }
    case VL_I32: {
      int32_t v;
      memcpy(&v, p + 4 * i, 4);
      out[i] = (float)v;
      break;
    }
    case VL_U8: out[i] = p[i]; break;
    case VL_Q8_0: out[i] = 0; break; /* never in a safetensors file */
    }
  }
  return VL_OK;
}

/* ---- writer ------------------------------------------------------------ */

typedef struct {
  char *name;
  vl_dtype dtype;
  int ndim;
  int64_t shape[VL_ST_MAX_DIMS];
  void *data;
  size_t nbytes;
} w_entry;

struct vl_st_writer {
  w_entry *e;
  size_t n, cap;
  char **meta; /* key, value pairs */
  size_t n_meta;
};

vl_st_writer *vl_st_writer_new(void) {
  vl_st_writer *w = calloc(1, sizeof *w);
  if (!w) vl_error(VL_ERR_NOMEM, "safetensors writer: out of memory");
  return w;
}

void vl_st_writer_free(vl_st_writer *w) {
  if (!w) return;
  for (size_t i = 0; i < w->n; i++) {
    free(w->e[i].name);
    free(w->e[i].data);
  }
  for (size_t i = 0; i < 2 * w->n_meta; i++)
    free(w->meta[i]);
  free(w->meta);
  free(w->e);
  free(w);
}

int vl_st_writer_add(vl_st_writer *w, const char *name, vl_dtype dtype, int ndim,
                     const int64_t *shape, const void *data) {
  if (!w || !name)
    return vl_error(VL_ERR_INVALID, "safetensors writer: NULL writer or tensor name");
  if (!strcmp(name, "__metadata__") || !valid_name(name))
    return vl_error(VL_ERR_INVALID, "safetensors writer: invalid tensor name '" NAMEF "'", name);
  if (!vl_dtype_size(dtype))
    return vl_error(VL_ERR_INVALID, "safetensors writer: tensor '" NAMEF "': bad dtype %d", name,
                    (int)dtype);
  if (ndim < 0 || ndim > VL_ST_MAX_DIMS || (ndim && !shape))
    return vl_error(VL_ERR_INVALID, "safetensors writer: tensor '" NAMEF "': bad ndim %d", name,
                    ndim);
  uint64_t numel = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0 || __builtin_mul_overflow(numel, (uint64_t)shape[i], &numel))
      return vl_error(VL_ERR_INVALID, "safetensors writer: tensor '" NAMEF "': bad shape", name);
  }
  uint64_t nbytes;
  if (__builtin_mul_overflow(numel, (uint64_t)vl_dtype_size(dtype), &nbytes) ||
      nbytes > SIZE_MAX / 2)
    return vl_error(VL_ERR_INVALID, "safetensors writer: tensor '" NAMEF "': too large", name);
  if (nbytes && !data)
    return vl_error(VL_ERR_INVALID, "safetensors writer: tensor '" NAMEF "': NULL data", name);
  for (size_t i = 0; i < w->n; i++)
    if (!strcmp(w->e[i].name, name))
      return vl_error(VL_ERR_INVALID, "safetensors writer: tensor '" NAMEF "' added twice", name);
  if (w->n == w->cap) {
    size_t cap = w->cap ? 2 * w->cap : 16;
    w_entry *ne = realloc(w->e, cap * sizeof *ne);
    if (!ne) return vl_error(VL_ERR_NOMEM, "safetensors writer: out of memory");
    w->e = ne;
    w->cap = cap;
  }
  w_entry *e = &w->e[w->n];
  memset(e, 0, sizeof *e);
  e->name = strdup(name);
  e->data = malloc(nbytes ? (size_t)nbytes : 1);
  if (!e->name || !e->data) {
    free(e->name);
    free(e->data);
    return vl_error(VL_ERR_NOMEM, "safetensors writer: out of memory");
  }
  if (nbytes) memcpy(e->data, data, (size_t)nbytes);
  e->dtype = dtype;
  e->ndim = ndim;
  for (int i = 0; i < ndim; i++)
    e->shape[i] = shape[i];
  e->nbytes = (size_t)nbytes;
  w->n++;
  return VL_OK;
}

int vl_st_writer_set_metadata(vl_st_writer *w, const char *key, const char *value) {
  if (!w || !key || !value)
    return vl_error(VL_ERR_INVALID, "safetensors writer: NULL metadata key or value");
  for (size_t i = 0; i < w->n_meta; i++) {
    if (!strcmp(w->meta[2 * i], key)) {
      char *v = strdup(value);
      if (!v) return vl_error(VL_ERR_NOMEM, "safetensors writer: out of memory");
      free(w->meta[2 * i + 1]);
      w->meta[2 * i + 1] = v;
      return VL_OK;
    }
  }
  char **nm = realloc(w->meta, (2 * w->n_meta + 2) * sizeof *nm);
  if (!nm) return vl_error(VL_ERR_NOMEM, "safetensors writer: out of memory");
  w->meta = nm;
  nm[2 * w->n_meta] = strdup(key);
  nm[2 * w->n_meta + 1] = strdup(value);
  if (!nm[2 * w->n_meta] || !nm[2 * w->n_meta + 1]) {
    free(nm[2 * w->n_meta]);
    free(nm[2 * w->n_meta + 1]);
    return vl_error(VL_ERR_NOMEM, "safetensors writer: out of memory");
  }
  w->n_meta++;
  return VL_OK;
}

/* Header JSON padded with spaces so the data section starts 8-aligned. */
static char *build_header(vl_st_writer *w, size_t *hlen) {
  cJSON *root = cJSON_CreateObject();
  int ok = root != NULL;
  if (ok && w->n_meta) {
    cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
    ok = m != NULL;
    for (size_t i = 0; ok && i < w->n_meta; i++)
      ok = cJSON_AddStringToObject(m, w->meta[2 * i], w->meta[2 * i + 1]) != NULL;
  }
  uint64_t at = 0;
  for (size_t i = 0; ok && i < w->n; i++) {
    cJSON *t = cJSON_AddObjectToObject(root, w->e[i].name);
    cJSON *sh = cJSON_CreateArray(), *off = cJSON_CreateArray();
    ok = t && sh && off && cJSON_AddStringToObject(t, "dtype", vl_dtype_name(w->e[i].dtype));
    if (ok) cJSON_AddItemToObject(t, "shape", sh), sh = NULL;
    if (ok) cJSON_AddItemToObject(t, "data_offsets", off), off = NULL;
    cJSON_Delete(sh);
    cJSON_Delete(off);
    for (int d = 0; ok && d < w->e[i].ndim; d++)
      ok = cJSON_AddItemToArray(cJSON_GetObjectItem(t, "shape"),
                                cJSON_CreateNumber((double)w->e[i].shape[d]));
    cJSON *o = ok ? cJSON_GetObjectItem(t, "data_offsets") : NULL;
    ok = ok && cJSON_AddItemToArray(o, cJSON_CreateNumber((double)at));
    at += w->e[i].nbytes;
    ok = ok && cJSON_AddItemToArray(o, cJSON_CreateNumber((double)at));
  }
  char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  if (!s) return NULL;
  size_t n = strlen(s), padded = (n + 7) / 8 * 8;
  char *p = realloc(s, padded + 1);
  if (!p) {
    free(s);
    return NULL;
  }
  memset(p + n, ' ', padded - n);
  p[padded] = 0;
  *hlen = padded;
  return p;
}

int vl_st_writer_to_memory(vl_st_writer *w, uint8_t **out, size_t *len) {
  if (!w || !out || !len) return vl_error(VL_ERR_INVALID, "safetensors writer: NULL argument");
  size_t hl;
  char *h = build_header(w, &hl);
  if (!h) return vl_error(VL_ERR_NOMEM, "safetensors writer: out of memory");
  size_t total = 8 + hl;
  for (size_t i = 0; i < w->n; i++)
    total += w->e[i].nbytes;
  uint8_t *buf = malloc(total);
  if (!buf) {
    free(h);
    return vl_error(VL_ERR_NOMEM, "safetensors writer: out of memory (%zu bytes)", total);
  }
  for (int i = 0; i < 8; i++)
    buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
  memcpy(buf + 8, h, hl);
  free(h);
  size_t at = 8 + hl;
  for (size_t i = 0; i < w->n; i++) {
    memcpy(buf + at, w->e[i].data, w->e[i].nbytes);
    at += w->e[i].nbytes;
  }
  *out = buf;
  *len = total;
  return VL_OK;
}

static int write_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t k = write(fd, b, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    b += k;
    n -= (size_t)k;
  }
  return 0;
}

int vl_st_writer_save(vl_st_writer *w, const char *path) {
  if (!w || !path) return vl_error(VL_ERR_INVALID, "safetensors writer: NULL argument");
  size_t hl;
  char *h = build_header(w, &hl);
  if (!h) return vl_error(VL_ERR_NOMEM, "%s: out of memory", path);
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  if (!tmp) {
    free(h);
    return vl_error(VL_ERR_NOMEM, "%s: out of memory", path);
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp.XXXXXX", 12);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int e = errno;
    free(h);
    free(tmp);
    return vl_error(VL_ERR_IO, "%s: cannot create temporary file: %s", path, strerror(e));
  }
  uint8_t len8[8];
  for (int i = 0; i < 8; i++)
    len8[i] = (uint8_t)((uint64_t)hl >> (8 * i));
  int bad = write_all(fd, len8, 8) || write_all(fd, h, hl);
  for (size_t i = 0; !bad && i < w->n; i++)
    bad = write_all(fd, w->e[i].data, w->e[i].nbytes);
  int e = errno;
  free(h);
  /* 0644 like any other output file; mkstemp creates 0600. */
  if (!bad && fchmod(fd, 0644) != 0) {
    bad = 1;
    e = errno;
  }
  if (close(fd) != 0 && !bad) {
    bad = 1;
    e = errno;
  }
  if (!bad && rename(tmp, path) != 0) {
    bad = 1;
    e = errno;
  }
  if (bad) {
    unlink(tmp);
    free(tmp);
    return vl_error(VL_ERR_IO, "%s: write failed: %s", path, strerror(e));
  }
  free(tmp);
  return VL_OK;
}
