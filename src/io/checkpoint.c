/* Single-file and sharded checkpoints. See checkpoint.h. */
#include "io/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "io/json.h"

struct vl_checkpoint {
  char *path, *dir;
  vl_safetensors **shards;
  size_t n_shards;
  const vl_st_tensor **all;    /* shard order, file order */
  const vl_st_tensor **sorted; /* by name */
  size_t n;
};

#define NAMEF "%.200s"

static char *join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *s = malloc(a + b + 2);
  if (!s) return NULL;
  memcpy(s, dir, a);
  s[a] = '/';
  memcpy(s + a + 1, name, b + 1);
  return s;
}

static int is_file(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

void vl_ckpt_close(vl_checkpoint *ck) {
  if (!ck) return;
  for (size_t i = 0; i < ck->n_shards; i++)
    vl_st_close(ck->shards[i]);
  free(ck->shards);
  free(ck->all);
  free(ck->sorted);
  free(ck->path);
  free(ck->dir);
  free(ck);
}

static int cmp_tensor(const void *a, const void *b) {
  return strcmp((*(const vl_st_tensor *const *)a)->name, (*(const vl_st_tensor *const *)b)->name);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Gathers the tensors of all shards and refuses names present twice. */
static int build_tables(vl_checkpoint *ck, const char *what) {
  size_t n = 0;
  for (size_t i = 0; i < ck->n_shards; i++)
    n += vl_st_count(ck->shards[i]);
  ck->all = calloc(n ? n : 1, sizeof *ck->all);
  ck->sorted = calloc(n ? n : 1, sizeof *ck->sorted);
  if (!ck->all || !ck->sorted) return vl_error(VL_ERR_NOMEM, "%s: out of memory", what);
  for (size_t i = 0; i < ck->n_shards; i++)
    for (size_t k = 0; k < vl_st_count(ck->shards[i]); k++)
      ck->all[ck->n++] = vl_st_at(ck->shards[i], k);
  memcpy(ck->sorted, ck->all, n * sizeof *ck->all);
  qsort(ck->sorted, n, sizeof *ck->sorted, cmp_tensor);
  for (size_t i = 1; i < n; i++)
    if (!strcmp(ck->sorted[i]->name, ck->sorted[i - 1]->name))
      return vl_error(VL_ERR_FORMAT, "%s: tensor '" NAMEF "' is present in two shards", what,
                      ck->sorted[i]->name);
  return VL_OK;
}

static int open_index(vl_checkpoint *ck, const char *index_path) {
  cJSON *root = vl_json_load(index_path);
  if (!root) return vl_last_error_code();
  int rc = VL_OK;
  const char **files = NULL;
  const cJSON *wm = vl_json_get(root, "weight_map");
  if (!cJSON_IsObject(wm)) {
    rc = vl_error(VL_ERR_FORMAT, "%s: no \"weight_map\" object (not a safetensors index)",
                  index_path);
    goto done;
  }
  size_t n = 0;
  for (const cJSON *c = wm->child; c; c = c->next)
    n++;
  if (n == 0) {
    rc = vl_error(VL_ERR_FORMAT, "%s: \"weight_map\" is empty", index_path);
    goto done;
  }
  files = malloc(n * sizeof *files);
  if (!files) {
    rc = vl_error(VL_ERR_NOMEM, "%s: out of memory", index_path);
    goto done;
  }
  size_t k = 0;
  for (const cJSON *c = wm->child; c; c = c->next) {
    if (!cJSON_IsString(c) || !*c->valuestring) {
      rc = vl_error(VL_ERR_FORMAT, "%s: weight_map entry '" NAMEF "' is not a file name",
                    index_path, c->string);
      goto done;
    }
    const char *f = c->valuestring;
    /* Shards live in the model folder; refuse paths that escape it. */
    if (f[0] == '/' || strstr(f, "..")) {
      rc = vl_error(VL_ERR_FORMAT, "%s: shard name '" NAMEF "' points outside the folder",
                    index_path, f);
      goto done;
    }
    files[k++] = f;
  }
  qsort(files, n, sizeof *files, cmp_str);
  size_t u = 0;
  for (size_t i = 0; i < n; i++)
    if (u == 0 || strcmp(files[i], files[u - 1])) files[u++] = files[i];
  ck->shards = calloc(u, sizeof *ck->shards);
  if (!ck->shards) {
    rc = vl_error(VL_ERR_NOMEM, "%s: out of memory", index_path);
    goto done;
  }
  for (size_t i = 0; i < u; i++) {
    char *p = join(ck->dir, files[i]);
    if (!p) {
      rc = vl_error(VL_ERR_NOMEM, "%s: out of memory", index_path);
      goto done;
    }
    if (!is_file(p)) {
      rc = vl_error(VL_ERR_NOTFOUND, "%s: shard '" NAMEF "' listed in the index is missing (%s)",
                    index_path, files[i], p);
      free(p);
      goto done;
    }
    ck->shards[i] = vl_st_open(p);
    free(p);
    if (!ck->shards[i]) {
      rc = vl_last_error_code();
      goto done;
    }
    ck->n_shards++;
  }
  /* Every tensor the index promises must be in the shard it names. */
  for (const cJSON *c = wm->child; c; c = c->next) {
    const char **hit = bsearch(&c->valuestring, files, u, sizeof *files, cmp_str);
    const vl_safetensors *sh = ck->shards[hit - files];
    if (!vl_st_find(sh, c->string)) {
      rc = vl_error(VL_ERR_NOTFOUND,
                    "%s: tensor '" NAMEF "' is listed in shard '" NAMEF "' but that shard does "
                    "not contain it",
                    index_path, c->string, c->valuestring);
      goto done;
    }
  }
  rc = build_tables(ck, index_path);
done:
  free(files);
  cJSON_Delete(root);
  return rc;
}

static int open_single(vl_checkpoint *ck, const char *file) {
  ck->shards = calloc(1, sizeof *ck->shards);
  if (!ck->shards) return vl_error(VL_ERR_NOMEM, "%s: out of memory", file);
  ck->shards[0] = vl_st_open(file);
  if (!ck->shards[0]) return vl_last_error_code();
  ck->n_shards = 1;
  return build_tables(ck, file);
}

vl_checkpoint *vl_ckpt_open(const char *path) {
  if (!path || !*path) {
    vl_error(VL_ERR_INVALID, "checkpoint: empty path");
    return NULL;
  }
  struct stat sb;
  if (stat(path, &sb) != 0) {
    vl_error(VL_ERR_NOTFOUND, "%s: no such file or folder", path);
    return NULL;
  }
  vl_checkpoint *ck = calloc(1, sizeof *ck);
  if (!ck || !(ck->path = strdup(path))) {
    free(ck);
    vl_error(VL_ERR_NOMEM, "%s: out of memory", path);
    return NULL;
  }
  int rc;
  if (S_ISDIR(sb.st_mode)) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
      len--;
    ck->dir = strndup(path, len);
    char *single = ck->dir ? join(ck->dir, "model.safetensors") : NULL;
    char *index = ck->dir ? join(ck->dir, "model.safetensors.index.json") : NULL;
    if (!single || !index) {
      rc = vl_error(VL_ERR_NOMEM, "%s: out of memory", path);
    } else if (is_file(single)) {
      rc = open_single(ck, single); /* as transformers: the single file wins */
    } else if (is_file(index)) {
      rc = open_index(ck, index);
    } else {
      char *bin = join(ck->dir, "pytorch_model.bin");
      int has_bin = bin && is_file(bin);
      free(bin);
      rc = vl_error(has_bin ? VL_ERR_UNSUPPORTED : VL_ERR_NOTFOUND,
                    "%s: no model.safetensors or model.safetensors.index.json in this folder%s",
                    path,
                    has_bin ? " (only pytorch_model.bin, which vlens does not read: convert it "
                              "to safetensors)"
                            : "");
    }
    free(single);
    free(index);
  } else {
    const char *slash = strrchr(path, '/');
    ck->dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!ck->dir)
      rc = vl_error(VL_ERR_NOMEM, "%s: out of memory", path);
    else if (ends_with(path, ".json"))
      rc = open_index(ck, path);
    else
      rc = open_single(ck, path);
  }
  if (rc) {
    vl_ckpt_close(ck);
    return NULL;
  }
  return ck;
}

size_t vl_ckpt_count(const vl_checkpoint *ck) { return ck ? ck->n : 0; }

const vl_st_tensor *vl_ckpt_at(const vl_checkpoint *ck, size_t i) {
  return ck && i < ck->n ? ck->all[i] : NULL;
}

const vl_st_tensor *vl_ckpt_find(const vl_checkpoint *ck, const char *name) {
  if (!ck || !name) {
    vl_error(VL_ERR_INVALID, "vl_ckpt_find: NULL argument");
    return NULL;
  }
  size_t lo = 0, hi = ck->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(ck->sorted[mid]->name, name);
    if (c == 0) return ck->sorted[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  vl_error(VL_ERR_NOTFOUND, "%s: no tensor named '" NAMEF "'", ck->path, name);
  return NULL;
}

const char *vl_ckpt_dir(const vl_checkpoint *ck) { return ck ? ck->dir : NULL; }
const char *vl_ckpt_path(const vl_checkpoint *ck) { return ck ? ck->path : NULL; }
size_t vl_ckpt_shard_count(const vl_checkpoint *ck) { return ck ? ck->n_shards : 0; }

const vl_safetensors *vl_ckpt_shard(const vl_checkpoint *ck, size_t i) {
  return ck && i < ck->n_shards ? ck->shards[i] : NULL;
}
