/* Options, argument loop, model loading, error path and slice printing of
 * the explaining task commands (describe, entail, eval). */
#include "cli/explain_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "base/log.h"
#include "cli/args.h"
#include "cli/cli.h"

void cli_explain_args_init(cli_explain_args *a) {
  memset(a, 0, sizeof *a);
  a->layer = -1;
  a->head = -1;
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
  if (!strcmp(o, "--heads") && (!v || cli_real(o, v, 0, 4096, &d) || d != (int)d)) {
    vl_clear_error();
    return a->all_heads = true, 1;
  }
  if (!strcmp(o, "--heads")) o = "--head";
  if (!strcmp(o, "--layer") || !strcmp(o, "--head")) {
    if (cli_real(o, v, 0, 4096, &d) || d != (int)d)
      return vl_error(VL_ERR_INVALID, "%s '%s': expected a layer/head number >= 0 or all", o,
                      v ? v : ""),
             -1;
    *(!strcmp(o, "--layer") ? &a->layer : &a->head) = (int)d;
  } else if (!strcmp(o, "--smooth")) {
    if (cli_real(o, v, 0, 1e3, &a->smooth)) return -1;
  } else if (!strcmp(o, "--sharpen")) {
    if (cli_real(o, v, 1e-3, 1e3, &a->sharpen)) return -1;
  } else if (!strcmp(o, "--seed")) {
    if (cli_real(o, v, 0, 9e15, &d)) return -1;
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

int cli_explain_parse(int argc, char **argv, const char *cmd, cli_explain_args *a,
                      const cli_explain_own *own, const char **pos, int n_pos, const char *pos_what,
                      bool *help) {
  cli_explain_args_init(a);
  *help = false;
  for (int i = 1; i < argc; i++) /* errors before --json is reached are JSON too */
    if (!strcmp(argv[i], "--json")) a->json = true;
  int got = 0;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
      *help = true;
      return VL_OK;
    }
    int k = cli_explain_arg(argc, argv, &i, a);
    if (!k && own) k = own->option(argc, argv, &i, own->user);
    if (k < 0) return -1;
    if (k > 0) continue;
    if (o[0] == '-' && o[1])
      return vl_error(VL_ERR_INVALID, "unknown option '%s' (see vlens %s --help)", o, cmd), -1;
    if (got == n_pos)
      return vl_error(VL_ERR_INVALID, "unexpected argument '%s' (%s)", o, pos_what), -1;
    pos[got++] = o;
  }
  return VL_OK;
}

vl_blip *cli_load_blip(const char *model, char *name, int cap, double *ms_load) {
  char path[4096];
  double t0 = vl_now_seconds();
  vl_blip *m = vl_task_load_blip(model, path, sizeof path);
  *ms_load = (vl_now_seconds() - t0) * 1e3;
  if (m) vl_model_name(path, name, cap);
  return m;
}
