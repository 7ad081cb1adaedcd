/* Minimal test harness: each tests/test_*.c is one binary whose main() runs
 * RUN(fn) for each test and returns test_summary(). A failing CHECK prints
 * file:line and marks the current test failed; REQUIRE also returns. */
#ifndef VL_TEST_H
#define VL_TEST_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int test_current_failed;
void test_run(const char *name, void (*fn)(void));
int test_summary(void);

#define RUN(fn) test_run(#fn, fn)
#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);                            \
      test_current_failed = 1;                                                                     \
    }                                                                                              \
  } while (0)
#define REQUIRE(cond)                                                                              \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      printf("  %s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond);                          \
      test_current_failed = 1;                                                                     \
      return;                                                                                      \
    }                                                                                              \
  } while (0)
#define CHECK_NEAR(a, b, tol)                                                                      \
  do {                                                                                             \
    double a_ = (double)(a), b_ = (double)(b);                                                     \
    if (!(fabs(a_ - b_) <= (tol))) {                                                               \
      printf("  %s:%d: %s = %.9g, %s = %.9g, |diff| %.3g > %.3g\n", __FILE__, __LINE__, #a, a_,    \
             #b, b_, fabs(a_ - b_), (double)(tol));                                                \
      test_current_failed = 1;                                                                     \
    }                                                                                              \
  } while (0)

/* max_i |a_i - b_i| / max(max_i |b_i|, tiny): the "relative to the tensor's
 * largest magnitude" measure used for all reference comparisons. */
double test_max_rel_err(const float *a, const float *b, size_t n);
/* xorshift64 step on *state, then a float uniform in [-1, 1): the tests'
 * deterministic random data. */
float test_frand(uint64_t *state);
/* Path under the shared folder (../shared unless VLENS_SHARED is set). */
const char *test_shared_path(const char *rel);
/* A fresh temporary directory for this test binary (removed by the OS/tmp). */
const char *test_tmpdir(void);
/* test_tmpdir()/name, in one of 8 static buffers used in turn. */
const char *test_tmp_path(const char *name);
/* Whole file into malloc'd memory (NUL-terminated); NULL if unreadable. */
unsigned char *test_read_file(const char *path, size_t *len);
int test_write_file(const char *path, const void *data, size_t len);
/* build/<variant>/vlens next to this test binary's folder, or NULL (with a
 * note) when it is not built. */
const char *test_vlens_exe(void);
/* Runs `vlens ARGS` (printf-style) with its output discarded: its exit
 * status, 128 when it did not exit, -1 when vlens is not built. */
int test_run_vlens(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
