/* Options shared by describe / entail / eval, their argument loop and model
 * loading, and the error path of task commands: one line on stderr, and with
 * --json also {"error": {"code", "message"}} on stdout
 * (../shared/spec/cli-json.md). */
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
/* A command's own options: option(argc, argv, &i, user) consumes argv[i]
 * (and its value) when it is one: 1; not one: 0; a bad value: -1 with the
 * error recorded. */
typedef struct {
  int (*option)(int argc, char **argv, int *i, void *user);
  void *user;
} cli_explain_own;
/* The argument loop of an explaining command: a (initialised here) gets the
 * shared options, own (may be NULL) the command's, and up to n_pos
 * positional arguments go to pos (more: "unexpected argument (pos_what)").
 * --json counts from the start (errors before it are JSON too). --help or
 * -h stops it with *help set. 0, or -1 with the error recorded. */
int cli_explain_parse(int argc, char **argv, const char *cmd, cli_explain_args *a,
                      const cli_explain_own *own, const char **pos, int n_pos, const char *pos_what,
                      bool *help);
/* The BLIP of -m (NULL: the embedded one), its load time in *ms_load and its
 * display name in name; NULL with the error recorded. */
vl_blip *cli_load_blip(const char *model, char *name, int cap, double *ms_load);
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
