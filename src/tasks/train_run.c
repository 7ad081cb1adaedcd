#include "tasks/train_run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"

int vl_train_mkdirs(const char *dir, const char *who) {
  char p[4096];
  if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
    return vl_error(VL_ERR_LIMIT, "%s: path too long: %s", who, dir);
  for (char *s = p + 1;; s++) {
    if (*s == '/' || !*s) {
      char c = *s;
      *s = 0;
      if (mkdir(p, 0777) != 0 && errno != EEXIST)
        return vl_error(VL_ERR_IO, "%s: cannot create folder (%s)", p, strerror(errno));
      *s = c;
      if (!c) break;
    }
  }
  return VL_OK;
}

int vl_train_write_text(const char *dir, const char *file, const char *text) {
  char path[4096], tmp[4200];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) return vl_error(VL_ERR_IO, "%s: cannot create (%s)", tmp, strerror(errno));
  size_t len = strlen(text);
  int bad = fwrite(text, 1, len, f) != len;
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, path)) {
    remove(tmp);
    return vl_error(VL_ERR_IO, "%s: cannot write", path);
  }
  return VL_OK;
}

int vl_train_write_json(const char *dir, const char *file, cJSON *j, const char *who) {
  char *text = j ? cJSON_Print(j) : NULL;
  cJSON_Delete(j);
  if (!text) return vl_error(VL_ERR_NOMEM, "%s: out of memory", who);
  int rc = vl_train_write_text(dir, file, text);
  free(text);
  return rc;
}

int64_t vl_train_argmax(const float *r, int64_t n) {
  int64_t b = 0;
  for (int64_t i = 1; i < n; i++)
    if (r[i] > r[b]) b = i;
  return b;
}

int64_t vl_train_meta_step(const vl_safetensors *st) {
  const char *s = vl_st_metadata(st, "vlens_step");
  char *end;
  long long v = s ? strtoll(s, &end, 10) : -1;
  return s && *s && !*end && v >= 0 ? v : -1;
}

int vl_train_open_state(const char *out_dir, const char *who, const char *opts_key,
                        vl_safetensors **ost, const char **opts_json, int64_t *step) {
  char path[4096];
  snprintf(path, sizeof path, "%s/optimizer.safetensors", out_dir);
  vl_safetensors *st = vl_st_open(path);
  if (!st) return vl_error_context("%s: --resume needs an earlier run in %s", who, out_dir);
  const char *oj = vl_st_metadata(st, opts_key);
  int64_t s = vl_train_meta_step(st);
  int rc = !oj || s < 0 ? vl_error(VL_ERR_FORMAT, "%s: no vlens %s state", path, who) : VL_OK;
  snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
  vl_safetensors *ms = rc ? NULL : vl_st_open(path);
  if (!rc && !ms) rc = vl_last_error_code();
  if (!rc && vl_train_meta_step(ms) != s)
    rc = vl_error(VL_ERR_FORMAT,
                  "%s: step %lld but optimizer.safetensors is at step %lld (interrupted "
                  "while saving); start again or restore a copy",
                  path, (long long)vl_train_meta_step(ms), (long long)s);
  vl_st_close(ms);
  if (rc) {
    vl_st_close(st);
    return rc;
  }
  *ost = st;
  *opts_json = oj;
  *step = s;
  return VL_OK;
}
