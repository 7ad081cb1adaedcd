#include "goldens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
