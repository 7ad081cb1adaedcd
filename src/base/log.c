#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static int quiet;

void vl_log_set_quiet(int q) { quiet = q; }
int vl_log_quiet(void) { return quiet; }

void vl_log(const char *fmt, ...) {
  if (quiet) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

double vl_now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void vl_progress_start(vl_progress *p, const char *label, int64_t total) {
  p->label = label;
  p->total = total > 0 ? total : 1;
  p->start_s = vl_now_seconds();
  p->last_draw_s = 0;
}

void vl_progress_update(vl_progress *p, int64_t done, const char *extra) {
  if (quiet) return;
  double now = vl_now_seconds();
  /* Redraw at most 10 times a second, and always at the end. */
  if (done < p->total && now - p->last_draw_s < 0.1) return;
  p->last_draw_s = now;
  const int width = 24;
  int filled = (int)(width * (double)done / (double)p->total);
  if (filled > width) filled = width;
  char bar[32];
  for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : ' ';
  bar[width] = 0;
  double elapsed = now - p->start_s;
  double eta = done > 0 ? elapsed * (double)(p->total - done) / (double)done : 0;
  fprintf(stderr, "\r%s [%s] %lld/%lld ETA %.0fs %s\033[K", p->label, bar, (long long)done,
          (long long)p->total, eta, extra ? extra : "");
  fflush(stderr);
}

void vl_progress_end(vl_progress *p) {
  if (quiet) return;
  fprintf(stderr, "\r%s done in %.1fs\033[K\n", p->label, vl_now_seconds() - p->start_s);
}
