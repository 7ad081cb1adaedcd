#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

int test_current_failed;
static int n_passed, n_failed;

void test_run(const char *name, void (*fn)(void)) {
  test_current_failed = 0;
  fflush(stdout);
  fn();
  if (test_current_failed) {
    n_failed++;
    printf("FAIL %s\n", name);
  } else {
    n_passed++;
    printf("ok %s\n", name);
  }
  fflush(stdout);
}

int test_summary(void) {
  printf("RESULT %d %d\n", n_passed, n_failed);
  return n_failed ? 1 : 0;
}

float test_frand(uint64_t *state) {
  uint64_t r = *state;
  r ^= r << 13;
  r ^= r >> 7;
  r ^= r << 17;
  *state = r;
  return (float)((r >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

double test_max_rel_err(const float *a, const float *b, size_t n) {
  double maxb = 1e-12, maxd = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (d > maxd || d != d) maxd = d != d ? INFINITY : d;
    if (fabs((double)b[i]) > maxb) maxb = fabs((double)b[i]);
  }
  return maxd / maxb;
}

const char *test_shared_path(const char *rel) {
  static char buf[4096];
  const char *root = getenv("VLENS_SHARED");
  snprintf(buf, sizeof buf, "%s/%s", root && *root ? root : "../shared", rel);
  return buf;
}

const char *test_tmpdir(void) {
  static char dir[256];
  if (!dir[0]) {
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/vlens-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) {
      perror("mkdtemp");
      abort();
    }
  }
  return dir;
}

const char *test_tmp_path(const char *name) {
  static char buf[8][1024];
  static int k;
  char *b = buf[k++ % 8];
  snprintf(b, sizeof buf[0], "%s/%s", test_tmpdir(), name);
  return b;
}

unsigned char *test_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) {
    buf[n] = 0;
    if (len) *len = (size_t)n;
  }
  return buf;
}

int test_write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(data, 1, len, f);
  fclose(f);
  return w == len ? 0 : -1;
}

const char *test_vlens_exe(void) {
  static char exe[4200];
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) self[n] = 0;
  char *slash = n > 0 ? strrchr(self, '/') : NULL;
  if (slash) {
    *slash = 0; /* .../build/<variant>/tests */
    snprintf(exe, sizeof exe, "%s/../vlens", self);
    if (access(exe, X_OK) == 0) return exe;
  }
  printf("  build/<variant>/vlens not built: run make cli first\n");
  return NULL;
}

int test_run_vlens(const char *fmt, ...) {
  const char *exe = test_vlens_exe();
  if (!exe) return -1;
  char args[8192], cmd[12800];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "%s %s >/dev/null 2>&1", exe, args);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}
