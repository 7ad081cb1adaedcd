/* Public describe / entail / caption over tasks/describe.h and
 * tasks/entail.h: options checked here (the messages name the option), the
 * JSON documents of cli-json.md, and a structured result with one heatmap
 * handle per explained word and method. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api/internal.h"
#include "base/error.h"
#include "tasks/describe.h"
#include "tasks/entail.h"
#include "tasks/explain_slices.h"

struct vlens_description {
  vl_describe_result res;
  vl_explain_cfg cfg;
};

void vlens_describe_opts_init(vlens_describe_opts *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->layer = -1;
  o->head = -1;
}

/* opts -> explain configuration; NULL opts: the defaults. */
static int cfg_from(const vlens_describe_opts *o, vl_explain_cfg *cfg, const char *fn) {
  vlens_describe_opts d;
  memset(cfg, 0, sizeof *cfg);
  if (!o) {
    vlens_describe_opts_init(&d);
    o = &d;
  }
  if (o->layer < -1)
    return vl_error(VL_ERR_INVALID, "%s: layer %d: expected -1 (default) or a layer >= 0", fn,
                    o->layer);
  if (o->head < -1)
    return vl_error(VL_ERR_INVALID, "%s: head %d: expected -1 (all) or a head >= 0", fn, o->head);
  if (!(o->smooth >= 0 && o->smooth <= 1e3))
    return vl_error(VL_ERR_INVALID, "%s: smooth %g: expected a sigma in [0, 1000]", fn, o->smooth);
  if (!(o->sharpen == 0 || (o->sharpen >= 1e-3 && o->sharpen <= 1e3)))
    return vl_error(VL_ERR_INVALID, "%s: sharpen %g: expected 0 (off) or T in [0.001, 1000]", fn,
                    o->sharpen);
  if (o->max_length != 0 && (o->max_length < 2 || o->max_length > 512))
    return vl_error(VL_ERR_INVALID, "%s: max_length %d: expected 0 (the model's default) or 2..512",
                    fn, o->max_length);
  int rc = vl_explain_cfg_parse(cfg, o->methods);
  if (rc) return vl_error_context("%s: methods", fn);
  cfg->ex.layer = o->layer;
  cfg->ex.head = o->head;
  cfg->ex.smooth = o->smooth;
  cfg->ex.sharpen = o->sharpen;
  cfg->ex.seed = o->seed;
  cfg->faithfulness = o->faithfulness != 0;
  return VL_OK;
}

static int need_image(const vlens_image *img, const char *fn) {
  return img && img->img ? VL_OK : vl_error(VL_ERR_INVALID, "%s: image is NULL", fn);
}

/* all_layers / all_heads -> the CLI's --layer all / --heads. */
static vl_slices_opts slices_from(const vlens_describe_opts *o) {
  return (vl_slices_opts){o && o->all_layers, o && o->all_heads};
}

/* cJSON document -> malloc'd text (doc freed); NULL + message on failure. */
static char *print_doc(cJSON *doc, const char *fn) {
  if (!doc) return NULL;
  char *s = cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  if (!s) vl_error(VL_ERR_NOMEM, "%s: out of memory printing JSON", fn);
  return s;
}

vlens_description *vlens_describe(vlens_model *m, const vlens_image *img,
                                  const vlens_describe_opts *opts) {
  const char *fn = "vlens_describe";
  if (vl_api_need(m, VLENS_KIND_CAPTIONER, fn) || need_image(img, fn)) return NULL;
  vlens_description *d = calloc(1, sizeof *d);
  if (!d) {
    vl_error(VL_ERR_NOMEM, "%s: out of memory", fn);
    return NULL;
  }
  if (cfg_from(opts, &d->cfg, fn)) {
    free(d);
    return NULL;
  }
  vl_describe_opts o = {.prompt = opts ? opts->prompt : NULL,
                        .explain = opts ? opts->explain : NULL,
                        .max_length = opts ? opts->max_length : 0};
  if (vl_describe(m->blip, img->img, &o, &d->cfg, &d->res)) {
    vl_explain_cfg_free(&d->cfg);
    free(d);
    return NULL;
  }
  return d;
}

void vlens_description_free(vlens_description *d) {
  if (!d) return;
  vl_describe_result_free(&d->res);
  vl_explain_cfg_free(&d->cfg);
  free(d);
}

char *vlens_describe_json(vlens_model *m, const vlens_image *img, const vlens_describe_opts *opts) {
  const char *fn = "vlens_describe_json";
  vlens_description *d = vlens_describe(m, img, opts);
  if (!d) return NULL;
  const char *prompt = opts ? opts->prompt : NULL;
  const vl_slices_opts so = slices_from(opts);
  cJSON *doc = vl_describe_to_json(&d->res, &d->cfg, m->name, prompt, NULL, m->ms_load);
  if (!doc) vl_error(VL_ERR_NOMEM, "%s: out of memory", fn);
  if (doc && vl_describe_slices_json(m->blip, img->img, prompt, &d->res, &d->cfg, &so, doc)) {
    vl_error_context("%s", fn);
    cJSON_Delete(doc);
    doc = NULL;
  }
  char *s = print_doc(doc, fn);
  vlens_description_free(d);
  return s;
}

int vlens_caption(vlens_model *m, const vlens_image *img, char **text) {
  if (!text) return vl_error(VL_ERR_INVALID, "vlens_caption: text is NULL");
  *text = NULL;
  vlens_describe_opts o;
  vlens_describe_opts_init(&o);
  o.explain = "none";
  vlens_description *d = vlens_describe(m, img, &o);
  if (!d) return vl_last_error_code() ? vl_last_error_code() : VL_ERR_INVALID;
  *text = strdup(d->res.text ? d->res.text : "");
  vlens_description_free(d);
  return *text ? VL_OK : vl_error(VL_ERR_NOMEM, "vlens_caption: out of memory");
}

char *vlens_entail_json(vlens_model *m, const vlens_image *img, const char *hypothesis,
                        const vlens_describe_opts *opts) {
  const char *fn = "vlens_entail_json";
  if (vl_api_need(m, VLENS_KIND_CAPTIONER, fn) || need_image(img, fn)) return NULL;
  if (!hypothesis || !*hypothesis) {
    vl_error(VL_ERR_INVALID, "%s: no hypothesis given", fn);
    return NULL;
  }
  vl_explain_cfg cfg;
  if (cfg_from(opts, &cfg, fn)) return NULL;
  bool explain = !(opts && opts->explain && !strcmp(opts->explain, "none"));
  vl_entail_result res;
  memset(&res, 0, sizeof res);
  char *s = NULL;
  if (!vl_entail(m->blip, img->img, hypothesis, &cfg, explain, &res)) {
    const vl_slices_opts so = slices_from(opts);
    cJSON *doc = vl_entail_to_json(&res, m->name, hypothesis, NULL, img->img->width,
                                   img->img->height, m->ms_load);
    if (!doc) vl_error(VL_ERR_NOMEM, "%s: out of memory", fn);
    if (doc && vl_entail_slices_json(m->blip, img->img, hypothesis, &res, &cfg, &so, doc)) {
      vl_error_context("%s", fn);
      cJSON_Delete(doc);
      doc = NULL;
    }
    s = print_doc(doc, fn);
  }
  vl_entail_result_free(&res);
  vl_explain_cfg_free(&cfg);
  return s;
}

/* ---- structured access -------------------------------------------------- */

const char *vlens_description_text(const vlens_description *d) {
  return d && d->res.text ? d->res.text : "";
}
int vlens_description_n_words(const vlens_description *d) { return d ? d->res.n_words : 0; }
const char *vlens_description_word(const vlens_description *d, int w) {
  return d && w >= 0 && w < d->res.n_words ? d->res.words[w].text : NULL;
}
int vlens_description_n_methods(const vlens_description *d) { return d ? d->cfg.n_methods : 0; }
const char *vlens_description_method(const vlens_description *d, int k) {
  return d && k >= 0 && k < d->cfg.n_methods ? d->cfg.methods[k] : NULL;
}

/* A vlens_heatmap is the internal vl_heatmap behind an opaque type. */
const vlens_heatmap *vlens_description_heatmap(const vlens_description *d, int w,
                                               const char *method) {
  const char *fn = "vlens_description_heatmap";
  if (!d) {
    vl_error(VL_ERR_INVALID, "%s: description is NULL", fn);
    return NULL;
  }
  if (w < 0 || w >= d->res.n_words) {
    vl_error(VL_ERR_INVALID, "%s: word %d out of range (%d words)", fn, w, d->res.n_words);
    return NULL;
  }
  if (!d->res.words[w].maps) {
    vl_error(VL_ERR_NOTFOUND, "%s: word %d '%s' was not explained", fn, w, d->res.words[w].text);
    return NULL;
  }
  for (int k = 0; k < d->cfg.n_methods; k++)
    if (!method || !strcmp(method, d->cfg.methods[k]))
      return (const vlens_heatmap *)d->res.words[w].maps[k];
  vl_error(VL_ERR_NOTFOUND, "%s: method '%s' was not asked for", fn, method);
  return NULL;
}

static const vl_heatmap *hm(const vlens_heatmap *h) { return (const vl_heatmap *)h; }

const char *vlens_heatmap_method(const vlens_heatmap *h) { return h ? hm(h)->method : ""; }

int vlens_heatmap_grid(const vlens_heatmap *h, int *gw, int *gh) {
  if (!h) return vl_error(VL_ERR_INVALID, "vlens_heatmap_grid: heatmap is NULL");
  if (gw) *gw = hm(h)->gw;
  if (gh) *gh = hm(h)->gh;
  return VL_OK;
}

const float *vlens_heatmap_cells(const vlens_heatmap *h) { return h ? hm(h)->cells : NULL; }

int vlens_heatmap_get_stats(const vlens_heatmap *h, vlens_heatmap_stats *st) {
  if (!h || !st) return vl_error(VL_ERR_INVALID, "vlens_heatmap_get_stats: NULL argument");
  vl_heatmap_stats s;
  int rc = vl_heatmap_stats_compute(hm(h), &s);
  if (rc) return rc;
  *st = (vlens_heatmap_stats){.mean = s.mean,
                              .max = s.max,
                              .min = s.min,
                              .std = s.std,
                              .focus_area = s.focus_area,
                              .top10_mass = s.top10_mass,
                              .entropy = s.entropy,
                              .concentration = s.concentration,
                              .region = s.region};
  vl_heatmap_peak(hm(h), &st->peak_x, &st->peak_y);
  vl_heatmap_center(hm(h), &st->center_x, &st->center_y);
  return VL_OK;
}
