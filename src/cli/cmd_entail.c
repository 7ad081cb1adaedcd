/* vlens entail IMG "SENTENCE": entailment decision and its explanation
 * (tasks/entail.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "base/log.h"
#include "cli/cli.h"
#include "cli/explain_args.h"
#include "tasks/explain_output.h"
#include "tasks/explain_slices.h"

static void usage(FILE *f) {
  fprintf(f, "usage: vlens entail IMG \"SENTENCE\" [-m MODEL] [--method m1,m2] [--layer L|all]\n"
             "                   [--heads] [-o DIR] [--json]\n"
             "  does IMG entail, contradict or leave open SENTENCE? The explanation is that\n"
             "  of the decision (the chosen answer's logit).\n"
             "  --no-explain       the decision alone\n" CLI_EXPLAIN_HELP);
}

static int entail_option(int argc, char **argv, int *i, void *explain) {
  if (strcmp(argv[*i], "--no-explain")) return 0;
  *(bool *)explain = false;
  return 1;
}

int cmd_entail(int argc, char **argv) {
  cli_explain_args a;
  bool explain = true, help;
  const cli_explain_own own = {entail_option, &explain};
  const char *pos[2] = {NULL, NULL};
  if (cli_explain_parse(argc, argv, "entail", &a, &own, pos, 2, "an image and one sentence", &help))
    return cli_fail_json(a.json, "entail");
  if (help) {
    usage(stdout);
    return 0;
  }
  const char *image = pos[0], *hyp = pos[1];
  if (!image || !hyp) {
    vl_error(VL_ERR_INVALID, "an image and a sentence are required (see vlens entail --help)");
    return cli_fail_json(a.json, "entail");
  }
  vl_explain_cfg cfg;
  if (cli_explain_cfg(&a, &cfg)) return cli_fail_json(a.json, "entail");
  int status = 1;
  char name[256];
  double ms_load = 0;
  vl_image *img = vl_image_load(image, 0);
  vl_blip *m = img ? cli_load_blip(a.model, name, sizeof name, &ms_load) : NULL;
  vl_entail_result res;
  memset(&res, 0, sizeof res);
  if (!img || !m || vl_entail(m, img, hyp, &cfg, explain, &res)) {
    status = cli_fail_json(a.json, "entail");
    goto out;
  }
  if (a.out_dir) {
    int nf = 0;
    if (vl_explain_write_outputs(a.out_dir, img, name, NULL, hyp, &res, &nf)) {
      status = cli_fail_json(a.json, "entail");
      goto out;
    }
    vl_log("entail: %d files in %s", nf, a.out_dir);
  }
  const vl_slices_opts so = {a.all_layers, a.all_heads};
  const bool want_doc = a.json || so.layers || so.heads;
  cJSON *doc =
      want_doc ? vl_entail_to_json(&res, name, hyp, image, img->width, img->height, ms_load) : NULL;
  if (want_doc && (!doc || vl_entail_slices_json(m, img, hyp, &res, &cfg, &so, doc))) {
    if (!doc) vl_error(VL_ERR_NOMEM, "out of memory");
    cJSON_Delete(doc);
    status = cli_fail_json(a.json, "entail");
    goto out;
  }
  if (a.json) {
    status = cli_print_json(doc);
  } else {
    printf("%s (entailment %.3f, neutral %.3f, contradiction %.3f)\n",
           vl_entail_label_name(res.label), res.probs[0], res.probs[1], res.probs[2]);
    for (int k = 0; res.maps && k < res.n_methods; k++) {
      vl_heatmap_stats st;
      double px, py;
      vl_heatmap_stats_compute(res.maps[k], &st);
      vl_heatmap_peak(res.maps[k], &px, &py);
      printf("  %s: peak (%.0f, %.0f) %s\n", cfg.methods[k], px, py, st.region);
    }
    cli_print_slices(cJSON_GetObjectItem(doc, "explanations"));
    cJSON_Delete(doc);
    status = 0;
  }
out:
  vl_entail_result_free(&res);
  vl_explain_cfg_free(&cfg);
  vl_blip_free(m);
  vl_image_free(img);
  return status;
}
