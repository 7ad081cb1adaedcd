/* vlens eval DIR: captions, entailment and explanation scores on a Shapes
 * World set (tasks/eval.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "cli/cli.h"
#include "cli/explain_args.h"
#include "tasks/eval.h"

/* Faithfulness targets per kind by default: 84 masked forwards per method
 * and target, so all targets of a large set would take long. */
#define EVAL_FAITH_MAX_DEFAULT 5

static void usage(FILE *f) {
  fprintf(f,
          "usage: vlens eval DIR [-m MODEL] [--methods m1,m2] [--max-scenes N]\n"
          "                  [--faithfulness [--faithfulness-max N]] [--json]\n"
          "  reads DIR/manifest.jsonl (vlens shapes --out DIR) and prints caption accuracy,\n"
          "  entailment accuracy per template with the confusion matrix, pointing game and\n"
          "  mass in box per method beside the random and centre baselines, and latency;\n"
          "  with --faithfulness also the mean deletion / insertion AUC per method beside\n"
          "  the random order's (--json: docs/json-eval.md).\n"
          "  --max-scenes N     the first N scenes only (default: all)\n"
          "  --max-length N     caption tokens in total (default: the model's)\n"
          "  --faithfulness-max N  faithfulness on the first N caption-word targets and the\n"
          "                     first N decision targets (default %d, 0: every target;\n"
          "                     each costs 84 forwards per method)\n" CLI_EXPLAIN_HELP,
          EVAL_FAITH_MAX_DEFAULT);
}

static int eval_option(int argc, char **argv, int *i, void *user) {
  vl_eval_opts *o = user;
  const char *s = argv[*i];
  if (*i + 1 >= argc) return 0;
  if (!strcmp(s, "--faithfulness-max")) {
    char *end;
    long v = strtol(argv[++*i], &end, 10);
    if (*end || end == argv[*i] || v < 0 || v > 1000000)
      return vl_error(VL_ERR_INVALID, "%s '%s': expected an integer >= 0 (0: every target)", s,
                      argv[*i]),
             -1;
    o->faithfulness_max = (int)v;
  } else if (!strcmp(s, "--max-scenes") || !strcmp(s, "--max-length")) {
    char *end;
    long v = strtol(argv[++*i], &end, 10);
    if (*end || v < (s[6] == 's' ? 1 : 2) || v > 1000000)
      return vl_error(VL_ERR_INVALID, "%s '%s': expected a positive integer", s, argv[*i]), -1;
    *(s[6] == 's' ? &o->max_scenes : &o->max_length) = (int)v;
  } else {
    return 0;
  }
  return 1;
}

int cmd_eval(int argc, char **argv) {
  cli_explain_args a;
  vl_eval_opts o = {.faithfulness_max = EVAL_FAITH_MAX_DEFAULT};
  const cli_explain_own own = {eval_option, &o};
  const char *dir = NULL;
  bool help;
  if (cli_explain_parse(argc, argv, "eval", &a, &own, &dir, 1, "one folder", &help))
    return cli_fail_json(a.json, "eval");
  if (help) {
    usage(stdout);
    return 0;
  }
  if (!dir) {
    vl_error(VL_ERR_INVALID, "no Shapes World folder given (see vlens eval --help)");
    return cli_fail_json(a.json, "eval");
  }
  if (a.all_layers || a.all_heads) {
    vl_error(VL_ERR_INVALID, "--layer all / --heads are for describe and entail (eval scores "
                             "one map per method: pick --layer L / --head H)");
    return cli_fail_json(a.json, "eval");
  }
  vl_explain_cfg cfg;
  if (cli_explain_cfg(&a, &cfg)) return cli_fail_json(a.json, "eval");
  char name[256];
  double ms_load = 0;
  vl_blip *m = cli_load_blip(a.model, name, sizeof name, &ms_load);
  vl_eval_result res;
  int status = 1;
  if (!m || vl_eval(m, dir, &o, &cfg, &res)) {
    status = cli_fail_json(a.json, "eval");
  } else {
    res.ms_load = ms_load;
    if (a.json) {
      status = cli_print_json(vl_eval_to_json(&res, name, dir));
    } else {
      char *t = vl_eval_report_text(&res, name, dir);
      if (t) fputs(t, stdout);
      status = t ? 0 : 1;
      free(t);
    }
  }
  vl_explain_cfg_free(&cfg);
  vl_blip_free(m);
  return status;
}
