#include "io/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

char *vl_read_text_file(const char *path, size_t max_bytes) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    vl_error(VL_ERR_NOTFOUND, "%s: cannot open", path);
    return NULL;
  }
  char *buf = NULL;
  long n = -1;
  if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
  if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
    vl_error(VL_ERR_IO, "%s: cannot read", path);
  } else if ((size_t)n > max_bytes) {
    vl_error(VL_ERR_LIMIT, "%s: %ld bytes, over the %zu-byte limit", path, n, max_bytes);
  } else if (!(buf = malloc((size_t)n + 1))) {
    vl_error(VL_ERR_NOMEM, "%s: out of memory", path);
  } else if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
    vl_error(VL_ERR_IO, "%s: short read", path);
    free(buf);
    buf = NULL;
  } else {
    buf[n] = 0;
  }
  fclose(f);
  return buf;
}

int vl_write_text_file(const char *path, const char *text) {
  char tmp[4200];
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
