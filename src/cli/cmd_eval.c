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
          "  --max-length N     caption tokens in total (default 20)\n"
          "  --faithfulness-max N  faithfulness on the first N caption-word targets and the\n"
          "                     first N decision targets (default %d, 0: every target;\n"
          "                     each costs 84 forwards per method)\n" CLI_EXPLAIN_HELP,
          EVAL_FAITH_MAX_DEFAULT);
}

int cmd_eval(int argc, char **argv) {
  cli_explain_args a;
  cli_explain_args_init(&a);
  const char *dir = NULL;
  vl_eval_opts o = {.faithfulness_max = EVAL_FAITH_MAX_DEFAULT};
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--json")) a.json = true;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
      usage(stdout);
      return 0;
    }
    int k = cli_explain_arg(argc, argv, &i, &a);
    if (k < 0) return cli_fail_json(a.json, "eval");
    if (k > 0) continue;
    if (!strcmp(s, "--faithfulness-max") && i + 1 < argc) {
      char *end;
      long v = strtol(argv[++i], &end, 10);
      if (*end || end == argv[i] || v < 0 || v > 1000000) {
        vl_error(VL_ERR_INVALID, "%s '%s': expected an integer >= 0 (0: every target)", s, argv[i]);
        return cli_fail_json(a.json, "eval");
      }
      o.faithfulness_max = (int)v;
    } else if ((!strcmp(s, "--max-scenes") || !strcmp(s, "--max-length")) && i + 1 < argc) {
      char *end;
      long v = strtol(argv[++i], &end, 10);
      if (*end || v < (s[6] == 's' ? 1 : 2) || v > 1000000) {
        vl_error(VL_ERR_INVALID, "%s '%s': expected a positive integer", s, argv[i]);
        return cli_fail_json(a.json, "eval");
      }
      *(s[6] == 's' ? &o.max_scenes : &o.max_length) = (int)v;
    } else if (s[0] == '-' && s[1]) {
      vl_error(VL_ERR_INVALID, "unknown option '%s' (see vlens eval --help)", s);
      return cli_fail_json(a.json, "eval");
    } else if (!dir) {
      dir = s;
    } else {
      vl_error(VL_ERR_INVALID, "unexpected argument '%s' (one folder)", s);
      return cli_fail_json(a.json, "eval");
    }
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
  char path[4096], name[256];
  double t0 = vl_now_seconds();
  vl_blip *m = vl_task_load_blip(a.model, path, sizeof path);
  double ms_load = (vl_now_seconds() - t0) * 1e3;
  vl_eval_result res;
  int status = 1;
  if (!m || vl_eval(m, dir, &o, &cfg, &res)) {
    status = cli_fail_json(a.json, "eval");
  } else {
    res.ms_load = ms_load;
    vl_model_name(path, name, sizeof name);
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
