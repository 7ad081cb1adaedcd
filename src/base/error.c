#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char err_msg[1024];
static _Thread_local int err_code;

int vl_error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_msg, sizeof err_msg, fmt, ap);
  va_end(ap);
  err_code = code;
  return code;
}

int vl_error_context(const char *fmt, ...) {
  char prefix[512], old[sizeof err_msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, err_msg, sizeof old);
  size_t n = strlen(prefix);
  if (n > sizeof err_msg - 3) n = sizeof err_msg - 3;
  memcpy(err_msg, prefix, n);
  memcpy(err_msg + n, ": ", 2);
  size_t room = sizeof err_msg - n - 3, m = strlen(old);
  if (m > room) m = room;
  memcpy(err_msg + n + 2, old, m);
  err_msg[n + 2 + m] = 0;
  return err_code ? err_code : VL_ERR_INVALID;
}

const char *vl_last_error(void) { return err_msg; }
int vl_last_error_code(void) { return err_code; }

void vl_clear_error(void) {
  err_msg[0] = 0;
  err_code = 0;
}

const char *vl_status_name(int code) {
  switch (code) {
  case VL_OK: return "ok";
  case VL_ERR_IO: return "io";
  case VL_ERR_FORMAT: return "format";
  case VL_ERR_NOMEM: return "nomem";
  case VL_ERR_INVALID: return "invalid";
  case VL_ERR_UNSUPPORTED: return "unsupported";
  case VL_ERR_LIMIT: return "limit";
  case VL_ERR_NOTFOUND: return "notfound";
  default: return "unknown";
  }
}
