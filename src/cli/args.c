#include "cli/args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

int cli_real(const char *opt, const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = s ? strtod(s, &end) : 0;
  if (!s || errno || end == s || *end || !(v >= lo && v <= hi))
    return vl_error(VL_ERR_INVALID, "%s '%s': expected a number in [%g, %g]", opt, s ? s : "", lo,
                    hi),
           -1;
  *out = v;
  return 0;
}

int cli_integer(const char *opt, const char *s, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = s ? strtoll(s, &end, 10) : 0;
  if (!s || errno || end == s || *end || v < lo || v > hi)
    return vl_error(VL_ERR_INVALID, "%s '%s': expected an integer in %lld..%lld", opt, s ? s : "",
                    lo, hi),
           -1;
  *out = v;
  return 0;
}

int cli_parse_ids(const char *cmd, const char *s, long long max, int64_t **ids, size_t *n) {
  size_t cap = 16;
  *n = 0;
  *ids = malloc(cap * sizeof **ids);
  if (!*ids) return -1;
  while (*s) {
    while (*s == ' ' || *s == ',' || *s == '\t' || *s == '\n')
      s++;
    if (!*s) break;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0 || v > max) {
      fprintf(stderr, "vlens %s: --ids: bad token id at '%s'\n", cmd, s);
      goto fail;
    }
    if (*n == cap) {
      int64_t *p = realloc(*ids, (cap *= 2) * sizeof **ids);
      if (!p) goto fail;
      *ids = p;
    }
    (*ids)[(*n)++] = v;
    s = end;
  }
  return 0;
fail:
  free(*ids);
  *ids = NULL;
  return -1;
}

int cli_number(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (!*s || *end || errno || !(v >= lo && v <= hi)) {
    fprintf(stderr, "vlens %s: %s: '%s' is not a number in [%g, %g]\n", cmd, opt, s, lo, hi);
    return -1;
  }
  *out = v;
  return 0;
}

int cli_generate_option(const char *cmd, int argc, char **argv, int *i, vl_generate_opts *g) {
  const char *a = argv[*i];
  if (*i + 1 >= argc) return 0;
  const char *s = argv[*i + 1];
  double v;
  vl_sampler_params *sp = &g->sampling;
  if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) {
    if (cli_number(cmd, a, s, 1, 1 << 20, &v)) return -1;
    g->max_tokens = (int)v;
  } else if (!strcmp(a, "--kv-cache")) {
    if (strcmp(s, "f32") && strcmp(s, "f16")) {
      fprintf(stderr, "vlens %s: --kv-cache: '%s' is not f32 or f16\n", cmd, s);
      return -1;
    }
    g->kv_dtype = strcmp(s, "f16") ? VL_F32 : VL_F16;
  } else if (!strcmp(a, "--activations")) {
    if (strcmp(s, "exact") && strcmp(s, "rounded")) {
      fprintf(stderr, "vlens %s: --activations: '%s' is not exact or rounded\n", cmd, s);
      return -1;
    }
    g->round_activations = !strcmp(s, "rounded");
  } else if (!strcmp(a, "--temperature")) {
    if (cli_number(cmd, a, s, 0, 1e6, &v)) return -1;
    sp->temperature = (float)v;
  } else if (!strcmp(a, "--top-k")) {
    if (cli_number(cmd, a, s, 0, 1 << 30, &v)) return -1;
    sp->top_k = (int)v;
  } else if (!strcmp(a, "--top-p")) {
    if (cli_number(cmd, a, s, 1e-9, 1, &v)) return -1;
    sp->top_p = (float)v;
  } else if (!strcmp(a, "--min-p")) {
    if (cli_number(cmd, a, s, 0, 1, &v)) return -1;
    sp->min_p = (float)v;
  } else if (!strcmp(a, "--repeat-penalty")) {
    if (cli_number(cmd, a, s, 1e-6, 1e6, &v)) return -1;
    sp->repeat_penalty = (float)v;
  } else if (!strcmp(a, "--seed")) {
    char *end;
    errno = 0;
    sp->seed = strtoull(s, &end, 10);
    if (!*s || *end || errno) {
      fprintf(stderr, "vlens %s: --seed: '%s' is not a number\n", cmd, s);
      return -1;
    }
  } else {
    return 0;
  }
  (*i)++;
  return 1;
}
