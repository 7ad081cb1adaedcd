/* Options shared by describe / entail / eval (defined in cmd_describe.c),
 * and the error path of task commands: one line on stderr, and with --json
 * also {"error": {"code", "message"}} on stdout (../shared/spec/cli-json.md). */
#ifndef VL_CLI_EXPLAIN_ARGS_H
#define VL_CLI_EXPLAIN_ARGS_H

#include <stdbool.h>
#include <stdint.h>

#include "tasks/describe.h"

typedef struct {
  const char *model;   /* -m */
  const char *methods; /* --method */
  const char *out_dir; /* -o */
  int layer, head;
  bool all_layers, all_heads; /* --layer all, --heads: per-layer / per-head maps */
  double smooth, sharpen;
  bool faithfulness, json;
  uint64_t seed;
} cli_explain_args;

void cli_explain_args_init(cli_explain_args *a);
/* Consumes argv[*i] (and its value) when it is a shared option: 1; not one: 0;
 * a bad value: -1 with the error recorded. */
int cli_explain_arg(int argc, char **argv, int *i, cli_explain_args *a);
/* The vl_explain_cfg of a (methods parsed and checked). */
int cli_explain_cfg(const cli_explain_args *a, vl_explain_cfg *cfg);
/* Prints the error (stderr; and the JSON error document when json) and
 * returns the exit status 1. */
int cli_fail_json(bool json, const char *what);
/* Text output of --layer all / --heads: a line per layer / head map (peak,
 * region) found in a JSON "explanations" object (tasks/explain_slices.h). */
void cli_print_slices(const struct cJSON *explanations);
/* Prints a cJSON document on stdout, frees it; 1 when it could not. */
int cli_print_json(struct cJSON *doc);

#define CLI_EXPLAIN_HELP                                                                           \
  "  -m DIR             model folder (default: the embedded models/shapes-blip)\n"                 \
  "  --method M1,M2     attention, rollout, gradcam, relevancy, gradient, random, or all\n"        \
  "                     (default gradcam)\n"                                                       \
  "  --layer L          gradcam: vision block L; attention: decoder layer L (default last)\n"      \
  "  --layer all        also every layer's map (--json: \"layers\" in gradcam and attention)\n"    \
  "  --head H           attention/rollout/relevancy on head H alone (default: all heads)\n"        \
  "  --heads            also every head's map (--json: \"heads\" in attention, rollout,\n"         \
  "                     relevancy; --heads H is --head H)\n"                                       \
  "  --smooth SIGMA     Gaussian smoothing on the grid, sigma in cells\n"                          \
  "  --sharpen T        p <- p^(1/T), renormalised\n"                                              \
  "  --faithfulness     deletion/insertion curves and AUCs beside the random order\n"              \
  "  --seed S           seed of the random method and order (default 0)\n"                         \
  "  -o DIR             write pictures and report.html into DIR\n"                                 \
  "  --json             one JSON document on stdout (../shared/spec/cli-json.md)\n"

#endif
