#include "tasks/model_paths.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"

#ifndef VLENS_DATADIR
#define VLENS_DATADIR "/usr/local/share/vlens"
#endif

static int has_config(const char *dir) {
  char p[PATH_MAX + 16];
  struct stat st;
  snprintf(p, sizeof p, "%s/config.json", dir);
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Appends "dir" to the list of places looked in (for the message). */
static void note(char *tried, size_t cap, const char *dir) {
  size_t n = strlen(tried);
  snprintf(tried + n, cap - n, "%s%s", n ? ", " : "", dir);
}

static int try_dir(const char *dir, char *out, size_t cap, char *tried, size_t tcap) {
  note(tried, tcap, dir);
  if (!has_config(dir)) return 0;
  if (strlen(dir) + 1 > cap) return 0;
  memcpy(out, dir, strlen(dir) + 1);
  return 1;
}

int vl_model_default_path(const char *name, const char *exe, const char *option, char *out,
                          size_t cap) {
  if (!name || !*name || !out || cap == 0)
    return vl_error(VL_ERR_INVALID, "default model: no name or output buffer given");
  out[0] = 0;
  char tried[4096] = "", cand[PATH_MAX + 64];
  const char *env = getenv("VLENS_MODELS");
  if (env && *env) {
    snprintf(cand, sizeof cand, "%s/%s", env, name);
    if (try_dir(cand, out, cap, tried, sizeof tried)) return VL_OK;
  }
  char self[PATH_MAX];
  char *real = realpath(exe ? exe : "/proc/self/exe", NULL);
  if (real && strlen(real) < sizeof self) {
    strcpy(self, real);
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0; /* the executable's folder */
    char dir[PATH_MAX];
    strcpy(dir, self);
    for (int up = 0; up <= 3 && dir[0]; up++) {
      snprintf(cand, sizeof cand, "%s/models/%s", dir, name);
      if (try_dir(cand, out, cap, tried, sizeof tried)) goto found;
      char *s = strrchr(dir, '/');
      if (!s) break;
      *s = 0;
    }
    snprintf(cand, sizeof cand, "%s/../share/vlens/models/%s", self, name);
    if (try_dir(cand, out, cap, tried, sizeof tried)) goto found;
  }
  snprintf(cand, sizeof cand, "%s/models/%s", VLENS_DATADIR, name);
  if (try_dir(cand, out, cap, tried, sizeof tried)) goto found;
  free(real);
  return vl_error(VL_ERR_NOTFOUND,
                  "default model folder models/%s not found (looked in: %s); it is not trained "
                  "or installed yet: pass %s DIR",
                  name, tried, option ? option : "a model folder");
found:
  free(real);
  return VL_OK;
}
