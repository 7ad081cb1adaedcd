/* JSON config helpers over cJSON. See json.h. */
#include "io/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"

/* Config files are small; refuse anything absurd before reading it. */
#define VL_JSON_MAX_BYTES ((size_t)256 << 20)

cJSON *vl_json_parse(const char *text, size_t len, const char *name) {
  if (!name) name = "<json>";
  if (!text) {
    vl_error(VL_ERR_INVALID, "%s: NULL text", name);
    return NULL;
  }
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (!j) {
    size_t pos = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
    int line = 1, col = 1;
    for (size_t i = 0; i < pos; i++) {
      if (text[i] == '\n') {
        line++;
        col = 1;
      } else {
        col++;
      }
    }
    if (len == 0 || pos >= len)
      vl_error(VL_ERR_FORMAT, "%s: JSON parse error: unexpected end of input (line %d)", name,
               line);
    else
      vl_error(VL_ERR_FORMAT, "%s: JSON parse error at line %d, column %d (byte %zu)", name, line,
               col, pos);
    return NULL;
  }
  for (const char *p = end; p && p < text + len; p++) {
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
      cJSON_Delete(j);
      vl_error(VL_ERR_FORMAT, "%s: junk after the JSON value at byte %zu", name,
               (size_t)(p - text));
      return NULL;
    }
  }
  return j;
}

cJSON *vl_json_load(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    vl_error(errno == ENOENT ? VL_ERR_NOTFOUND : VL_ERR_IO, "%s: cannot open: %s", path,
             strerror(errno));
    return NULL;
  }
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    fclose(f);
    vl_error(VL_ERR_IO, "%s: not a regular file", path);
    return NULL;
  }
  if ((uint64_t)sb.st_size > VL_JSON_MAX_BYTES) {
    fclose(f);
    vl_error(VL_ERR_LIMIT, "%s: %lld bytes is too large for a JSON config", path,
             (long long)sb.st_size);
    return NULL;
  }
  size_t n = (size_t)sb.st_size;
  char *buf = malloc(n + 1);
  if (!buf) {
    fclose(f);
    vl_error(VL_ERR_NOMEM, "%s: out of memory", path);
    return NULL;
  }
  size_t got = fread(buf, 1, n, f);
  int err = ferror(f);
  fclose(f);
  if (got != n || err) {
    free(buf);
    vl_error(VL_ERR_IO, "%s: short read", path);
    return NULL;
  }
  buf[n] = 0;
  /* Skip a UTF-8 byte order mark, which some editors write. */
  size_t skip = n >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3) ? 3 : 0;
  cJSON *j = vl_json_parse(buf + skip, n - skip, path);
  free(buf);
  return j;
}

static int all_digits(const char *s, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

const cJSON *vl_json_get(const cJSON *root, const char *path) {
  if (!root || !path) return NULL;
  const cJSON *cur = root;
  const char *p = path;
  while (cur) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    const cJSON *next = NULL;
    if (cJSON_IsArray(cur) && all_digits(p, n) && n < 10) {
      next = cJSON_GetArrayItem(cur, atoi(p));
    } else if (cJSON_IsObject(cur)) {
      for (const cJSON *c = cur->child; c; c = c->next) {
        if (c->string && strlen(c->string) == n && !memcmp(c->string, p, n)) {
          next = c;
          break;
        }
      }
    }
    cur = next;
    if (!dot) break;
    p = dot + 1;
  }
  return cur;
}

/* Present and not JSON null. */
static const cJSON *get_value(const cJSON *root, const char *path) {
  const cJSON *j = vl_json_get(root, path);
  return j && !cJSON_IsNull(j) ? j : NULL;
}

static int as_int(const cJSON *j, int64_t *out) {
  if (!cJSON_IsNumber(j)) return 0;
  double d = j->valuedouble;
  if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || d != floor(d)) return 0;
  *out = (int64_t)d;
  return 1;
}

int64_t vl_json_int(const cJSON *root, const char *path, int64_t def) {
  int64_t v;
  return as_int(get_value(root, path), &v) ? v : def;
}

double vl_json_float(const cJSON *root, const char *path, double def) {
  const cJSON *j = get_value(root, path);
  return cJSON_IsNumber(j) ? j->valuedouble : def;
}

const char *vl_json_str(const cJSON *root, const char *path, const char *def) {
  const cJSON *j = get_value(root, path);
  return cJSON_IsString(j) ? j->valuestring : def;
}

int vl_json_bool(const cJSON *root, const char *path, int def) {
  const cJSON *j = get_value(root, path);
  return cJSON_IsBool(j) ? cJSON_IsTrue(j) : def;
}

static int need(const cJSON *root, const char *path, const char *what, const cJSON **out) {
  *out = get_value(root, path);
  if (!*out)
    return vl_error(VL_ERR_NOTFOUND, "%s: key '%s' is missing", what ? what : "json", path);
  return VL_OK;
}

int vl_json_need_int(const cJSON *root, const char *path, const char *what, int64_t *out) {
  const cJSON *j;
  int rc = need(root, path, what, &j);
  if (rc) return rc;
  if (!as_int(j, out))
    return vl_error(VL_ERR_FORMAT, "%s: key '%s' must be an integer", what ? what : "json", path);
  return VL_OK;
}

int vl_json_need_float(const cJSON *root, const char *path, const char *what, double *out) {
  const cJSON *j;
  int rc = need(root, path, what, &j);
  if (rc) return rc;
  if (!cJSON_IsNumber(j))
    return vl_error(VL_ERR_FORMAT, "%s: key '%s' must be a number", what ? what : "json", path);
  *out = j->valuedouble;
  return VL_OK;
}

int vl_json_need_str(const cJSON *root, const char *path, const char *what, const char **out) {
  const cJSON *j;
  int rc = need(root, path, what, &j);
  if (rc) return rc;
  if (!cJSON_IsString(j))
    return vl_error(VL_ERR_FORMAT, "%s: key '%s' must be a string", what ? what : "json", path);
  *out = j->valuestring;
  return VL_OK;
}
