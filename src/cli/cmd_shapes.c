/* vlens shapes: writes a Shapes World set (PNG scenes, masks, manifest.jsonl). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "io/shapes_world.h"

static void shapes_usage(FILE *f) {
  fprintf(f, "usage: vlens shapes --seed S --n N --out DIR [--hypotheses K] [--max-objects M]\n"
             "  writes N Shapes World scenes (spec: shared/spec/shapes-world.md) into DIR\n"
             "  (created when missing): scene_00001.png, scene_00001_mask.png, ... and\n"
             "  manifest.jsonl. Scene i is a pure function of (S, i).\n"
             "  --hypotheses K   balanced entailment hypotheses per scene (default 3)\n"
             "  --min-objects M, --max-objects M   object count range within 1..4\n");
}

static int parse_seed(const char *s, unsigned long long *out) {
  char *end;
  errno = 0;
  if (*s == '-') {
    vl_error(VL_ERR_INVALID, "--seed '%s': expected a non-negative integer", s);
    return -1;
  }
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end) {
    vl_error(VL_ERR_INVALID, "--seed '%s': expected a non-negative integer", s);
    return -1;
  }
  *out = v;
  return 0;
}

int cmd_shapes(int argc, char **argv) {
  unsigned long long seed = 0;
  long long n = 0, v;
  const char *out = NULL;
  int have_seed = 0, have_n = 0;
  vl_shapes_options opt = vl_shapes_default_options();
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      shapes_usage(stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      shapes_usage(stderr);
      vl_error(VL_ERR_INVALID, "'%s' needs a value or is unknown", a);
      return cli_fail("shapes");
    }
    const char *val = argv[++i];
    if (!strcmp(a, "--seed")) {
      if (parse_seed(val, &seed)) return cli_fail("shapes");
      have_seed = 1;
    } else if (!strcmp(a, "--n")) {
      if (cli_integer(a, val, 1, 99999999, &n)) return cli_fail("shapes");
      have_n = 1;
    } else if (!strcmp(a, "--out")) {
      out = val;
    } else if (!strcmp(a, "--hypotheses")) {
      if (cli_integer(a, val, 0, 1000, &v)) return cli_fail("shapes");
      opt.n_hypotheses = (int)v;
    } else if (!strcmp(a, "--max-objects")) {
      if (cli_integer(a, val, 1, VL_SHAPES_MAX_OBJECTS, &v)) return cli_fail("shapes");
      opt.max_objects = (int)v;
    } else if (!strcmp(a, "--min-objects")) {
      if (cli_integer(a, val, 1, VL_SHAPES_MAX_OBJECTS, &v)) return cli_fail("shapes");
      opt.min_objects = (int)v;
    } else {
      shapes_usage(stderr);
      vl_error(VL_ERR_INVALID, "unknown option '%s'", a);
      return cli_fail("shapes");
    }
  }
  if (!have_seed || !have_n || !out) {
    shapes_usage(stderr);
    vl_error(VL_ERR_INVALID, "--seed, --n and --out are required");
    return cli_fail("shapes");
  }
  if (opt.min_objects > opt.max_objects) {
    vl_error(VL_ERR_INVALID, "--min-objects %d is more than --max-objects %d", opt.min_objects,
             opt.max_objects);
    return cli_fail("shapes");
  }
  if (vl_shapes_write_set(out, seed, n, &opt) != VL_OK) return cli_fail("shapes");
  return 0;
}
