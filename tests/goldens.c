#include "goldens.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/half.h"
#include "io/json.h"
#include "test.h"

int golden_load(golden_file *g, const char *path) {
  memset(g, 0, sizeof *g);
  size_t len = 0;
  unsigned char *buf = test_read_file(path, &len);
  if (!buf) {
    printf("  %s: cannot read (run tools/gen_block_goldens.py)\n", path);
    return -1;
  }
  size_t at = 0;
  int cap = 0;
  while (at < len) {
    unsigned char *nl = memchr(buf + at, '\n', len - at);
    if (!nl || nl - (buf + at) > 400) goto bad;
    char line[401];
    memcpy(line, buf + at, (size_t)(nl - (buf + at)));
    line[nl - (buf + at)] = 0;
    at = (size_t)(nl - buf) + 1;
    if (g->n == cap) {
      cap = cap ? 2 * cap : 16;
      golden_tensor *t = realloc(g->t, (size_t)cap * sizeof *t);
      if (!t) goto bad;
      g->t = t;
    }
    golden_tensor *t = &g->t[g->n];
    memset(t, 0, sizeof *t);
    int off = 0;
    if (sscanf(line, "%63s %d%n", t->name, &t->ndim, &off) != 2 || t->ndim < 0 ||
        t->ndim > VL_MAX_DIMS)
      goto bad;
    t->numel = 1;
    for (int i = 0; i < t->ndim; i++) {
      long long d = 0;
      int used = 0;
      if (sscanf(line + off, "%lld%n", &d, &used) != 1 || d < 0 || d > (1 << 24)) goto bad;
      off += used;
      t->shape[i] = d;
      t->numel *= d;
    }
    size_t bytes = (size_t)t->numel * 4;
    if (t->numel > (1 << 24) || len - at < bytes) goto bad;
    t->data = malloc(bytes ? bytes : 4);
    if (!t->data) goto bad;
    memcpy(t->data, buf + at, bytes); /* little-endian hosts only */
    at += bytes;
    g->n++;
  }
  free(buf);
  return 0;
bad:
  printf("  %s: malformed golden file near byte %zu\n", path, at);
  free(buf);
  golden_free(g);
  return -1;
}

void golden_free(golden_file *g) {
  for (int i = 0; i < g->n; i++)
    free(g->t[i].data);
  free(g->t);
  memset(g, 0, sizeof *g);
}

const golden_tensor *golden_get(const golden_file *g, const char *name) {
  for (int i = 0; i < g->n; i++)
    if (!strcmp(g->t[i].name, name)) return &g->t[i];
  printf("  golden tensor '%s' missing\n", name);
  return NULL;
}

vl_tensor *golden_tensor_in(vl_ctx *c, const golden_file *g, const char *name) {
  const golden_tensor *t = golden_get(g, name);
  if (!t) return NULL;
  vl_tensor *v = vl_new(c, VL_F32, t->ndim, t->shape);
  if (v) memcpy(v->data, t->data, (size_t)t->numel * 4);
  return v;
}

/* ---- model goldens ------------------------------------------------------ */

const char *golden_path(const char *model, const char *file) {
  static char buf[1024];
  snprintf(buf, sizeof buf, "%s/%s", test_shared_path(model), file);
  return buf;
}

int64_t *golden_ids_of(const cJSON *case_json, int64_t *n) {
  const cJSON *a = vl_json_get(case_json, "input_ids");
  *n = cJSON_GetArraySize(a);
  int64_t *ids = malloc((size_t)(*n ? *n : 1) * sizeof *ids), i = 0;
  for (const cJSON *e = a ? a->child : NULL; e && ids; e = e->next)
    ids[i++] = (int64_t)e->valuedouble;
  return ids;
}

vl_tensor *golden_case_ids(vl_ctx *c, const char *model, int64_t *target_pos, int64_t *target_id) {
  cJSON *j = vl_json_load(golden_path(model, "case.json"));
  if (!j) return NULL;
  int64_t T = 0, *ids = golden_ids_of(j, &T);
  vl_tensor *t = ids ? vl_new(c, VL_I64, 1, &T) : NULL;
  if (t) memcpy(t->data, ids, (size_t)T * sizeof *ids);
  free(ids);
  if (target_pos) *target_pos = vl_json_int(j, "target.position", -1);
  if (target_id) *target_id = vl_json_int(j, "target.token_id", -1);
  cJSON_Delete(j);
  return t;
}

double golden_cmp(const vl_safetensors *st, const char *label, const char *name, const float *a,
                  int64_t n) {
  const char *sep = label ? " " : "";
  label = label ? label : "";
  const vl_st_tensor *g = vl_st_find(st, name);
  if (!g || !a || vl_st_numel(g) != n) {
    printf("  %s%s%s: missing or size mismatch (%lld vs %lld)\n", label, sep, name,
           g ? (long long)vl_st_numel(g) : -1LL, (long long)n);
    return 1e9;
  }
  float *b = malloc((size_t)n * sizeof *b);
  if (!b || vl_st_to_f32(g, b)) {
    free(b);
    return 1e9;
  }
  double e = test_max_rel_err(a, b, (size_t)n);
  printf("  %s%s%-18s max rel err %.2e\n", label, sep, name, e);
  free(b);
  return e;
}

double golden_cmp_tensor(const vl_safetensors *st, const char *label, const char *name,
                         const vl_tensor *t) {
  return golden_cmp(st, label, name, t ? vl_f32(t) : NULL, t ? t->numel : 0);
}

vl_safetensors *golden_reopen(vl_st_writer *w, uint8_t **buf) {
  size_t len = 0;
  *buf = NULL;
  int rc = vl_st_writer_to_memory(w, buf, &len);
  vl_st_writer_free(w);
  return rc ? NULL : vl_st_open_memory(*buf, len, "dump");
}

bool golden_dump_matches(const vl_safetensors *out, const vl_safetensors *st, const char *label,
                         const char *name, const char *golden_name, double tol) {
  const vl_st_tensor *t = vl_st_find(out, name), *g = vl_st_find(st, golden_name);
  if (!t || !g || t->dtype != g->dtype || t->ndim != g->ndim ||
      memcmp(t->shape, g->shape, sizeof(int64_t) * (size_t)t->ndim)) {
    printf("  %s: missing, or dtype or shape differs from the golden's %s\n", name, golden_name);
    return false;
  }
  int64_t n = vl_st_numel(t);
  float *a = malloc((size_t)(n ? n : 1) * sizeof *a);
  bool ok = a && vl_st_to_f32(t, a) == VL_OK && golden_cmp(st, label, golden_name, a, n) <= tol;
  free(a);
  return ok;
}

const char *golden_folder(const char *tag, const char *model, const char *const *files,
                          size_t n_files, const golden_override *over, size_t n_over) {
  static char dir[1024];
  snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), tag);
  mkdir(dir, 0755);
  for (size_t i = 0; i < n_files; i++) {
    char dst[1200], src[PATH_MAX];
    snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
    unlink(dst);
    const golden_override *o = NULL;
    for (size_t k = 0; k < n_over && !o; k++)
      if (!strcmp(over[k].file, files[i]) && (over[k].text || over[k].link)) o = &over[k];
    if (o && o->text) {
      test_write_file(dst, o->text, strlen(o->text));
    } else if (o) {
      if (symlink(o->link, dst)) return NULL;
    } else if (!realpath(golden_path(model, files[i]), src) || symlink(src, dst)) {
      return NULL; /* links resolve relative to their folder: the absolute path */
    }
  }
  return dir;
}

char *golden_config_with(const char *model, const char *path_key, const char *value_json) {
  size_t len;
  char *text = (char *)test_read_file(golden_path(model, "config.json"), &len);
  cJSON *j = text ? cJSON_Parse(text) : NULL;
  free(text);
  if (!j) return NULL;
  cJSON *obj = j;
  char key[128];
  snprintf(key, sizeof key, "%s", path_key);
  char *dot = strchr(key, '.');
  if (dot) {
    *dot = 0;
    obj = cJSON_GetObjectItem(j, key);
  }
  const char *leaf = dot ? dot + 1 : key;
  cJSON_DeleteItemFromObject(obj, leaf);
  if (value_json) cJSON_AddItemToObject(obj, leaf, cJSON_Parse(value_json));
  char *out = cJSON_Print(j);
  cJSON_Delete(j);
  return out;
}

bool golden_write_bf16_copies(const char *model, const char *bf16_path, const char *rounded_path) {
  vl_safetensors *src = vl_st_open(golden_path(model, "model.safetensors"));
  vl_st_writer *wa = vl_st_writer_new(), *wb = vl_st_writer_new();
  bool ok = src && wa && wb;
  for (size_t i = 0; ok && i < vl_st_count(src); i++) {
    const vl_st_tensor *t = vl_st_at(src, i);
    int64_t n = vl_st_numel(t);
    if (t->dtype != VL_F32) {
      ok = vl_st_writer_add(wa, t->name, t->dtype, t->ndim, t->shape, t->data) == VL_OK &&
           vl_st_writer_add(wb, t->name, t->dtype, t->ndim, t->shape, t->data) == VL_OK;
      continue;
    }
    float *f = malloc((size_t)(n ? n : 1) * sizeof *f);
    uint16_t *h = malloc((size_t)(n ? n : 1) * sizeof *h);
    ok = f && h && vl_st_to_f32(t, f) == VL_OK;
    for (int64_t k = 0; ok && k < n; k++) {
      h[k] = vl_f32_to_bf16(f[k]);
      f[k] = vl_bf16_to_f32(h[k]);
    }
    ok = ok && vl_st_writer_add(wa, t->name, VL_BF16, t->ndim, t->shape, h) == VL_OK &&
         vl_st_writer_add(wb, t->name, VL_F32, t->ndim, t->shape, f) == VL_OK;
    free(f);
    free(h);
  }
  vl_st_close(src);
  ok = ok && vl_st_writer_save(wa, bf16_path) == VL_OK &&
       vl_st_writer_save(wb, rounded_path) == VL_OK;
  vl_st_writer_free(wa);
  vl_st_writer_free(wb);
  return ok;
}
