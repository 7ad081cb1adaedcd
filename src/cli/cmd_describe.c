/* vlens describe: caption an image and explain every word (tasks/describe.h). */
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
  fprintf(f,
          "usage: vlens describe IMG [-m MODEL] [-p PROMPT] [--explain all|none|w1,w2]\n"
          "                     [--method m1,m2] [--layer L|all] [--heads] [-o DIR] [--json] ...\n"
          "  captions IMG and explains where the model looked for every word (one\n"
          "  recorded forward over prompt + caption, one backward per word).\n"
          "  -p PROMPT          text the caption continues (default: none)\n"
          "  --explain WHAT     all (default), none, or the words named\n"
          "  --max-length N     tokens in total (default: the model's generation "
          "config)\n" CLI_EXPLAIN_HELP);
}

typedef struct {
  const char *prompt, *explain;
  int max_length;
} describe_args;

static int describe_option(int argc, char **argv, int *i, void *user) {
  describe_args *d = user;
  const char *o = argv[*i];
  if (*i + 1 >= argc) return 0;
  if (!strcmp(o, "-p") || !strcmp(o, "--prompt")) {
    d->prompt = argv[++*i];
  } else if (!strcmp(o, "--explain")) {
    d->explain = argv[++*i];
  } else if (!strcmp(o, "--max-length")) {
    d->max_length = atoi(argv[++*i]);
    if (d->max_length < 2 || d->max_length > 512)
      return vl_error(VL_ERR_INVALID, "--max-length '%s': expected 2..512", argv[*i]), -1;
  } else {
    return 0;
  }
  return 1;
}

int cmd_describe(int argc, char **argv) {
  cli_explain_args a;
  describe_args d = {0};
  const cli_explain_own own = {describe_option, &d};
  const char *image = NULL;
  bool help;
  if (cli_explain_parse(argc, argv, "describe", &a, &own, &image, 1, "one image", &help))
    return cli_fail_json(a.json, "describe");
  if (help) {
    usage(stdout);
    return 0;
  }
  if (!image) {
    vl_error(VL_ERR_INVALID, "no image given (see vlens describe --help)");
    return cli_fail_json(a.json, "describe");
  }
  vl_explain_cfg cfg;
  if (cli_explain_cfg(&a, &cfg)) return cli_fail_json(a.json, "describe");
  int status = 1;
  char name[256];
  double ms_load = 0;
  vl_image *img = vl_image_load(image, 0);
  vl_blip *m = img ? cli_load_blip(a.model, name, sizeof name, &ms_load) : NULL;
  vl_describe_result res;
  memset(&res, 0, sizeof res);
  if (!img || !m) {
    status = cli_fail_json(a.json, "describe");
    goto out;
  }
  vl_describe_opts o = {.prompt = d.prompt, .explain = d.explain, .max_length = d.max_length};
  if (vl_describe(m, img, &o, &cfg, &res)) {
    status = cli_fail_json(a.json, "describe");
    goto out;
  }
  if (a.out_dir) {
    int nf = 0;
    if (vl_explain_write_outputs(a.out_dir, img, name, &res, NULL, NULL, &nf)) {
      status = cli_fail_json(a.json, "describe");
      goto out;
    }
    vl_log("describe: %d files in %s (open %s/report.html)", nf, a.out_dir, a.out_dir);
  }
  const vl_slices_opts so = {a.all_layers, a.all_heads};
  cJSON *doc = a.json || so.layers || so.heads
                   ? vl_describe_to_json(&res, &cfg, name, d.prompt, image, ms_load)
                   : NULL;
  if ((a.json || so.layers || so.heads) &&
      (!doc || vl_describe_slices_json(m, img, d.prompt, &res, &cfg, &so, doc))) {
    if (!doc) vl_error(VL_ERR_NOMEM, "out of memory");
    cJSON_Delete(doc);
    status = cli_fail_json(a.json, "describe");
    goto out;
  }
  if (a.json) {
    status = cli_print_json(doc);
  } else {
    printf("%s\n", res.text);
    for (int w = 0; w < res.n_words; w++) {
      if (!res.words[w].maps) continue;
      printf("  %-12s", res.words[w].text);
      for (int k = 0; k < cfg.n_methods; k++) {
        vl_heatmap_stats st;
        double px, py;
        vl_heatmap_stats_compute(res.words[w].maps[k], &st);
        vl_heatmap_peak(res.words[w].maps[k], &px, &py);
        printf("  %s: peak (%.0f, %.0f) %s", cfg.methods[k], px, py, st.region);
        if (res.words[w].faith)
          printf(" [deletion AUC %.3f vs random %.3f]", res.words[w].faith[k].deletion_auc,
                 res.words[w].faith[k].random_deletion_auc);
      }
      printf("\n");
      cli_print_slices(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "words"), w),
                                           "explanations"));
    }
    cJSON_Delete(doc);
    status = 0;
  }
out:
  vl_describe_result_free(&res);
  vl_explain_cfg_free(&cfg);
  vl_blip_free(m);
  vl_image_free(img);
  return status;
}
