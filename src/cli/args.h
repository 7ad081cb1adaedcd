/* Argument parsing shared by the subcommands: numbers within a range, token
 * id lists, and the generation options of generate and chat. */
#ifndef VL_CLI_ARGS_H
#define VL_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "tasks/generate.h"

/* Whole-string number / integer of option opt in [lo, hi] into *out; else
 * -1 with the error recorded ("OPT 'S': expected ..."). s may be NULL (no
 * value). */
int cli_real(const char *opt, const char *s, double lo, double hi, double *out);
int cli_integer(const char *opt, const char *s, long long lo, long long hi, long long *out);

/* The same for generate, chat and dump, whose errors go to stderr as "vlens
 * CMD: OPT: 'S' is not a number in [lo, hi]". */
int cli_number(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);

/* "1 2, 3" -> malloc'd ids, each in 0..max; a bad entry: -1 (and *ids
 * NULL) after "vlens CMD: --ids: bad token id at '...'" on stderr. */
int cli_parse_ids(const char *cmd, const char *s, long long max, int64_t **ids, size_t *n);

/* The options generate and chat share: -n/--max-tokens, --kv-cache,
 * --temperature, --top-k, --top-p, --min-p, --repeat-penalty, --seed.
 * 1: argv[*i] and its value went into g; 0: not one of them (or its value
 * is missing); -1: a bad value, said on stderr as "vlens CMD: ...". */
int cli_generate_option(const char *cmd, int argc, char **argv, int *i, vl_generate_opts *g);

#endif
