/* Errors as values: every fallible library call returns a status (or NULL)
 * and leaves a human-readable message in a thread-local buffer. Only the CLI
 * exits. Modelled on SQLite's errmsg discipline. */
#ifndef VL_BASE_ERROR_H
#define VL_BASE_ERROR_H

typedef enum {
  VL_OK = 0,
  VL_ERR_IO = -1,          /* file missing, unreadable, short read */
  VL_ERR_FORMAT = -2,      /* malformed or truncated file contents */
  VL_ERR_NOMEM = -3,       /* allocation failed */
  VL_ERR_INVALID = -4,     /* bad argument: shape mismatch, bad option */
  VL_ERR_UNSUPPORTED = -5, /* valid input we do not handle (dtype, model) */
  VL_ERR_LIMIT = -6,       /* input beyond a configured limit */
  VL_ERR_NOTFOUND = -7     /* named tensor / key / file not present */
} vl_status;

/* Records a message (printf-style) and returns code, so callers can write
 * `return vl_error(VL_ERR_FORMAT, "%s: bad header", path);`. */
int vl_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Same, but prepends context to the message already recorded:
 * "ctx: previous message". Returns the last recorded code. */
int vl_error_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

const char *vl_last_error(void); /* "" when none */
int vl_last_error_code(void);
void vl_clear_error(void);
const char *vl_status_name(int code); /* "io", "format", ... */

#endif
