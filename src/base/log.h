/* Progress and log lines on stderr. Library code reports progress through
 * these so the CLI can silence it (--quiet) without touching callers. */
#ifndef VL_BASE_LOG_H
#define VL_BASE_LOG_H

#include <stdint.h>

void vl_log_set_quiet(int quiet);
int vl_log_quiet(void);
void vl_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A one-line progress bar redrawn in place: "label [#####    ] 42/100 ETA 3s extra". */
typedef struct {
  const char *label;
  int64_t total;
  double start_s;
  double last_draw_s;
} vl_progress;

void vl_progress_start(vl_progress *p, const char *label, int64_t total);
void vl_progress_update(vl_progress *p, int64_t done, const char *extra);
void vl_progress_end(vl_progress *p);

double vl_now_seconds(void); /* monotonic clock */

#endif
