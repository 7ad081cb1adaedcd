/* vlens describe: caption an image and explain every word (tasks/describe.h);
 * also the options and error path shared by entail and eval. */
#include <errno.h>
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

void cli_explain_args_init(cli_explain_args *a) {
  memset(a, 0, sizeof *a);
  a->layer = -1;
  a->head = -1;
}

static int num(const char *opt, const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = s ? strtod(s, &end) : 0;
  if (!s || errno || end == s || *end || !(v >= lo && v <= hi))
    return vl_error(VL_ERR_INVALID, "%s '%s': expected a number in [%g, %g]", opt, s ? s : "", lo,
                    hi);
  *out = v;
  return 0;
}

int cli_explain_arg(int argc, char **argv, int *i, cli_explain_args *a) {
  const char *o = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
  double d;
  const char **str = !strcmp(o, "-m") || !strcmp(o, "--model")           ? &a->model
                     : !strcmp(o, "--method") || !strcmp(o, "--methods") ? &a->methods
                     : !strcmp(o, "-o") || !strcmp(o, "--out")           ? &a->out_dir
                                                                         : NULL;
  if (str) {
    if (!v) return vl_error(VL_ERR_INVALID, "%s needs a value", o), -1;
    *str = v;
    (*i)++;
    return 1;
  }
  if (!strcmp(o, "--json")) return a->json = true, 1;
  if (!strcmp(o, "--faithfulness")) return a->faithfulness = true, 1;
  /* --layer all / --heads [all]: every layer / head as well (explain_slices.h);
   * --heads H stays the one head H */
  if (!strcmp(o, "--layer") && v && !strcmp(v, "all")) return (*i)++, a->all_layers = true, 1;
  if ((!strcmp(o, "--heads") || !strcmp(o, "--head")) && v && !strcmp(v, "all"))
    return (*i)++, a->all_heads = true, 1;
  if (!strcmp(o, "--heads") && (!v || num(o, v, 0, 4096, &d) || d != (int)d)) {
    vl_clear_error();
    return a->all_heads = true, 1;
  }
  if (!strcmp(o, "--heads")) o = "--head";
  if (!strcmp(o, "--layer") || !strcmp(o, "--head")) {
    if (num(o, v, 0, 4096, &d) || d != (int)d)
      return vl_error(VL_ERR_INVALID, "%s '%s': expected a layer/head number >= 0 or all", o,
                      v ? v : ""),
             -1;
    *(!strcmp(o, "--layer") ? &a->layer : &a->head) = (int)d;
  } else if (!strcmp(o, "--smooth")) {
    if (num(o, v, 0, 1e3, &a->smooth)) return -1;
  } else if (!strcmp(o, "--sharpen")) {
    if (num(o, v, 1e-3, 1e3, &a->sharpen)) return -1;
  } else if (!strcmp(o, "--seed")) {
    if (num(o, v, 0, 9e15, &d)) return -1;
    a->seed = (uint64_t)d;
  } else {
    return 0;
  }
  (*i)++;
  return 1;
}

int cli_explain_cfg(const cli_explain_args *a, vl_explain_cfg *cfg) {
  int rc = vl_explain_cfg_parse(cfg, a->methods);
  if (rc) return rc;
  cfg->ex.layer = a->layer;
  cfg->ex.head = a->head;
  cfg->ex.smooth = a->smooth;
  cfg->ex.sharpen = a->sharpen;
  cfg->ex.seed = a->seed;
  cfg->faithfulness = a->faithfulness;
  return VL_OK;
}

int cli_print_json(cJSON *doc) {
  char *s = doc ? cJSON_PrintUnformatted(doc) : NULL;
  cJSON_Delete(doc);
  if (!s) {
    fprintf(stderr, "vlens: out of memory printing JSON\n");
    return 1;
  }
  printf("%s\n", s);
  free(s);
  return 0;
}

int cli_fail_json(bool json, const char *what) {
  if (json) {
    char msg[1024];
    const char *e = vl_last_error();
    snprintf(msg, sizeof msg, "%s%s%s", what ? what : "", what && *e ? ": " : "", e);
    cJSON *d = cJSON_CreateObject(), *er = cJSON_AddObjectToObject(d, "error");
    cJSON_AddStringToObject(er, "code", vl_status_name(vl_last_error_code()));
    cJSON_AddStringToObject(er, "message", msg);
    cli_print_json(d);
  }
  return cli_fail(what);
}

/* Peak and region of one heatmap object, indented, prefixed by label. */
static void print_peak(const char *label, const cJSON *h, int indent) {
  const cJSON *pk = cJSON_GetObjectItem(h, "peak");
  const cJSON *rg = cJSON_GetObjectItem(cJSON_GetObjectItem(h, "stats"), "region");
  printf("%*s%-34s peak (%.0f, %.0f) %s\n", indent, "", label,
         cJSON_GetArrayItem(pk, 0) ? cJSON_GetArrayItem(pk, 0)->valuedouble : 0,
         cJSON_GetArrayItem(pk, 1) ? cJSON_GetArrayItem(pk, 1)->valuedouble : 0,
         cJSON_IsString(rg) ? rg->valuestring : "?");
}

static void print_heads(const char *method, const char *layer, const cJSON *heads, int indent) {
  const cJSON *h;
  cJSON_ArrayForEach(h, heads) {
    char label[160];
    snprintf(label, sizeof label, "%s%s%s head %d", method, *layer ? " " : "", layer,
             cJSON_GetObjectItem(h, "head")->valueint);
    print_peak(label, h, indent);
  }
}

void cli_print_slices(const cJSON *explanations) {
  const cJSON *m;
  cJSON_ArrayForEach(m, explanations) {
    const cJSON *l, *layer = cJSON_GetObjectItem(m, "layer");
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(m, "layers")) {
      const char *ln = cJSON_GetObjectItem(l, "layer")->valuestring;
      char label[160];
      snprintf(label, sizeof label, "%s %s", m->string, ln);
      print_peak(label, l, 4);
      print_heads(m->string, ln, cJSON_GetObjectItem(l, "heads"), 6);
    }
    print_heads(m->string, cJSON_IsString(layer) ? layer->valuestring : "",
                cJSON_GetObjectItem(m, "heads"), 4);
  }
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: vlens describe IMG [-m MODEL] [-p PROMPT] [--explain all|none|w1,w2]\n"
          "                     [--method m1,m2] [--layer L|all] [--heads] [-o DIR] [--json] ...\n"
          "  captions IMG and explains where the model looked for every word (one\n"
          "  recorded forward over prompt + caption, one backward per word).\n"
          "  -p PROMPT          text the caption continues (default: none)\n"
          "  --explain WHAT     all (default), none, or the words named\n"
          "  --max-length N     tokens in total (default 20)\n" CLI_EXPLAIN_HELP);
}

int cmd_describe(int argc, char **argv) {
  cli_explain_args a;
  cli_explain_args_init(&a);
  const char *image = NULL, *prompt = NULL, *explain = NULL;
  int max_length = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) a.json = true;
  }
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
      usage(stdout);
      return 0;
    }
    int k = cli_explain_arg(argc, argv, &i, &a);
    if (k < 0) return cli_fail_json(a.json, "describe");
    if (k > 0) continue;
    if ((!strcmp(o, "-p") || !strcmp(o, "--prompt")) && i + 1 < argc) {
      prompt = argv[++i];
    } else if (!strcmp(o, "--explain") && i + 1 < argc) {
      explain = argv[++i];
    } else if (!strcmp(o, "--max-length") && i + 1 < argc) {
      max_length = atoi(argv[++i]);
      if (max_length < 2 || max_length > 512) {
        vl_error(VL_ERR_INVALID, "--max-length '%s': expected 2..512", argv[i]);
        return cli_fail_json(a.json, "describe");
      }
    } else if (o[0] == '-' && o[1]) {
      vl_error(VL_ERR_INVALID, "unknown option '%s' (see vlens describe --help)", o);
      return cli_fail_json(a.json, "describe");
    } else if (!image) {
      image = o;
    } else {
      vl_error(VL_ERR_INVALID, "unexpected argument '%s' (one image)", o);
      return cli_fail_json(a.json, "describe");
    }
  }
  if (!image) {
    vl_error(VL_ERR_INVALID, "no image given (see vlens describe --help)");
    return cli_fail_json(a.json, "describe");
  }
  vl_explain_cfg cfg;
  if (cli_explain_cfg(&a, &cfg)) return cli_fail_json(a.json, "describe");
  int status = 1;
  char path[4096], name[256];
  vl_image *img = vl_image_load(image, 0);
  double t0 = vl_now_seconds();
  vl_blip *m = img ? vl_task_load_blip(a.model, path, sizeof path) : NULL;
  double ms_load = (vl_now_seconds() - t0) * 1e3;
  vl_describe_result res;
  memset(&res, 0, sizeof res);
  if (!img || !m) {
    status = cli_fail_json(a.json, "describe");
    goto out;
  }
  vl_model_name(path, name, sizeof name);
  vl_describe_opts o = {.prompt = prompt, .explain = explain, .max_length = max_length};
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
                   ? vl_describe_to_json(&res, &cfg, name, prompt, image, ms_load)
                   : NULL;
  if ((a.json || so.layers || so.heads) &&
      (!doc || vl_describe_slices_json(m, img, prompt, &res, &cfg, &so, doc))) {
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
