/* POST /v1/describe and /v1/entail: the vlens tasks over HTTP. Request:
 *   {"image": "data:image/png;base64,..." (or bare base64),
 *    "prompt": "...", "explain": "all" | "none" | "w1,w2" | ["w1", ...],   (describe)
 *    "max_length": 2..64,                                                  (describe)
 *    "hypothesis": "...", "explain": true | false,                         (entail)
 *    "methods": "gradcam,attention" | [...] | "all", "head", "smooth", "sharpen",
 *    "seed", "faithfulness": bool,
 *    "layer": L | "all",    -> "all": each method object also gets "layers", one map
 *                              per layer (as the CLI's --layer all; explain_slices.h)
 *    "heads": bool | "all", -> true / "all": "heads", one map per head (as --heads)
 *    "overlays": bool}  -> every heatmap object also gets "overlay": a PNG data URI of the
 *                          map over the image (longer side at most 384 px); the "layers"
 *                          and "heads" maps get none.
 * The reply is the task's JSON document of ../shared/spec/cli-json.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/resize.h"
#include "render/heatmap.h"
#include "render/png.h"
#include "serve/serve_impl.h"
#include "tasks/describe.h"
#include "tasks/entail.h"
#include "tasks/explain_slices.h"

#define OVERLAY_MAX_SIDE 384

typedef struct {
  const vl_blip *m;
  const vl_image *img;
  const vl_describe_opts *o;
  const char *hypothesis;
  const vl_explain_cfg *cfg;
  bool explain;
  vl_describe_result *dres;
  vl_entail_result *eres;
} task_call;

static int run_task(void *arg) {
  task_call *t = arg;
  if (t->dres) return vl_describe(t->m, t->img, t->o, t->cfg, t->dres);
  return vl_entail(t->m, t->img, t->hypothesis, t->cfg, t->explain, t->eres);
}

/* The per-layer / per-head maps run the model again: on the compute thread,
 * like the task, once its document is built. */
typedef struct {
  const task_call *task;
  const vl_slices_opts *so;
  cJSON *doc;
} slices_call;

static int run_slices(void *arg) {
  const slices_call *c = arg;
  const task_call *t = c->task;
  if (t->dres)
    return vl_describe_slices_json(t->m, t->img, t->o->prompt, t->dres, t->cfg, c->so, c->doc);
  return vl_entail_slices_json(t->m, t->img, t->hypothesis, t->eres, t->cfg, c->so, c->doc);
}

/* Adds the slices asked for to doc; on failure the reply is the error, as
 * for the task itself, and doc is freed. */
static int add_slices(const task_call *t, const vl_slices_opts *so, cJSON *doc, vl_reply *r,
                      const char *task) {
  if (!doc || (!so->layers && !so->heads)) return 0;
  slices_call c = {.task = t, .so = so, .doc = doc};
  if (!vl_serve_compute(run_slices, &c)) return 0;
  cJSON_Delete(doc);
  return vl_reply_last_error(r, task);
}

typedef struct {
  vl_image *img;
  vl_explain_cfg cfg;
  bool cfg_ok, overlays;
  vl_slices_opts slices; /* "layer": "all", "heads" */
  vl_image *disp;        /* the image the overlays are drawn on */
} explain_req;

static void req_free(explain_req *e) {
  if (e->cfg_ok) vl_explain_cfg_free(&e->cfg);
  vl_image_free(e->disp);
  vl_image_free(e->img);
}

/* "layer": a layer number, or "all" (*all set, *layer left as is). */
static int req_layer(const cJSON *req, int *layer, bool *all, vl_reply *r) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "layer");
  if (cJSON_IsString(v) && !strcmp(v->valuestring, "all")) return *all = true, 0;
  if (cJSON_IsString(v) || cJSON_IsBool(v) || cJSON_IsArray(v) || cJSON_IsObject(v))
    return vl_reply_error(r, 400, NULL, "'layer': expected a layer number or \"all\"");
  return vl_req_int(req, "layer", -1, 4096, layer, r);
}

/* "heads": true / false, or "all" (= true). A number is refused rather than
 * read as one head: that is "head". */
static int req_heads(const cJSON *req, bool *heads, vl_reply *r) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "heads");
  if (cJSON_IsString(v) && !strcmp(v->valuestring, "all")) return *heads = true, 0;
  if (v && !cJSON_IsNull(v) && !cJSON_IsBool(v))
    return vl_reply_error(r, 400, NULL,
                          "'heads': expected true, false or \"all\" (one head is \"head\": H)");
  return vl_req_bool(req, "heads", heads, r);
}

/* The fields shared by both tasks. */
static int parse_common(vl_server *s, const cJSON *req, explain_req *e, vl_reply *r) {
  memset(e, 0, sizeof *e);
  if (!s->cap)
    return vl_reply_error(r, 400, NULL,
                          "this server has no captioner (start it with --captioner DIR)");
  const cJSON *im = cJSON_GetObjectItemCaseSensitive(req, "image");
  if (!im) return vl_reply_error(r, 400, NULL, "missing field 'image'");
  char *methods = NULL;
  int layer = -1, head = -1;
  double smooth = 0, sharpen = 0, seed = 0;
  bool faith = false;
  if (vl_req_csv(req, "methods", 256, &methods, r)) return -1;
  if (req_layer(req, &layer, &e->slices.layers, r) || req_heads(req, &e->slices.heads, r) ||
      vl_req_int(req, "head", -1, 4096, &head, r) ||
      vl_req_number(req, "smooth", 0, 1e3, &smooth, r) ||
      vl_req_number(req, "sharpen", 0, 1e3, &sharpen, r) ||
      vl_req_number(req, "seed", 0, 9007199254740992.0, &seed, r) ||
      vl_req_bool(req, "faithfulness", &faith, r) ||
      vl_req_bool(req, "overlays", &e->overlays, r)) {
    free(methods);
    return -1;
  }
  int rc = vl_explain_cfg_parse(&e->cfg, methods);
  free(methods);
  if (rc) return vl_reply_last_error(r, "methods");
  e->cfg_ok = true;
  e->cfg.ex.layer = layer;
  e->cfg.ex.head = head;
  e->cfg.ex.smooth = smooth;
  e->cfg.ex.sharpen = sharpen;
  e->cfg.ex.seed = (uint64_t)seed;
  e->cfg.faithfulness = faith;
  if (vl_blip_explain_check(s->cap, &e->cfg.ex)) return vl_reply_last_error(r, "options");
  return vl_req_image(s, im, "image", &e->img, r);
}

/* "overlay" data URIs into every heatmap object of an "explanations" object. */
static int add_overlays(explain_req *e, cJSON *expl, vl_heatmap *const *maps, int n) {
  if (!e->disp) {
    int w = e->img->width, h = e->img->height, side = w > h ? w : h;
    if (side > OVERLAY_MAX_SIDE) {
      w = (int)((double)w * OVERLAY_MAX_SIDE / side + 0.5);
      h = (int)((double)h * OVERLAY_MAX_SIDE / side + 0.5);
      e->disp = vl_image_resize(e->img, w > 0 ? w : 1, h > 0 ? h : 1, VL_RESAMPLE_BILINEAR);
    } else {
      e->disp = vl_image_clone(e->img);
    }
    if (!e->disp) return -1;
  }
  for (int k = 0; maps && k < n; k++) {
    cJSON *o = cJSON_GetObjectItemCaseSensitive(expl, maps[k]->method);
    if (!o) continue;
    vl_image *ov =
        vl_heatmap_overlay(e->disp, maps[k]->cells, maps[k]->gw, maps[k]->gh, VL_CMAP_JET, 0.5f);
    uint8_t *png = NULL;
    size_t len = 0;
    int rc = ov ? vl_png_encode(ov, &png, &len) : -1;
    vl_image_free(ov);
    if (rc) return -1;
    char *b64 = vl_base64_encode(png, len);
    free(png);
    if (!b64) return -1;
    size_t n_uri = strlen(b64) + 32;
    char *uri = malloc(n_uri);
    if (uri) snprintf(uri, n_uri, "data:image/png;base64,%s", b64);
    free(b64);
    if (!uri) return -1;
    cJSON_AddStringToObject(o, "overlay", uri);
    free(uri);
  }
  return 0;
}

void vl_route_describe(vl_server *s, const cJSON *req, vl_reply *r) {
  explain_req e;
  const char *prompt = NULL;
  char *explain = NULL;
  int max_length = 0;
  vl_describe_result res;
  memset(&res, 0, sizeof res);
  if (parse_common(s, req, &e, r) || vl_req_string(req, "prompt", false, 1000, &prompt, r) ||
      vl_req_csv(req, "explain", 4096, &explain, r) ||
      vl_req_int(req, "max_length", 2, 64, &max_length, r))
    goto out;
  vl_describe_opts o = {.prompt = prompt, .explain = explain, .max_length = max_length};
  task_call call = {.m = s->cap, .img = e.img, .o = &o, .cfg = &e.cfg, .dres = &res};
  int rc = vl_serve_compute(run_task, &call);
  if (rc) {
    vl_reply_last_error(r, "describe");
    goto out;
  }
  cJSON *doc = vl_describe_to_json(&res, &e.cfg, s->cap_name, prompt, NULL, 0);
  if (add_slices(&call, &e.slices, doc, r, "describe")) goto out;
  if (doc && e.overlays) {
    cJSON *words = cJSON_GetObjectItemCaseSensitive(doc, "words"), *w;
    int i = 0;
    cJSON_ArrayForEach(w, words) {
      if (i < res.n_words && res.words[i].maps &&
          add_overlays(&e, cJSON_GetObjectItemCaseSensitive(w, "explanations"), res.words[i].maps,
                       res.n_methods)) {
        cJSON_Delete(doc);
        vl_reply_error(r, 500, NULL, "overlay: %s", vl_last_error());
        goto out;
      }
      i++;
    }
  }
  vl_reply_json(r, 200, doc);
out:
  free(explain);
  vl_describe_result_free(&res);
  req_free(&e);
}

void vl_route_entail(vl_server *s, const cJSON *req, vl_reply *r) {
  explain_req e;
  const char *hyp = NULL;
  bool explain = true;
  vl_entail_result res;
  memset(&res, 0, sizeof res);
  if (parse_common(s, req, &e, r) || vl_req_string(req, "hypothesis", true, 1000, &hyp, r) ||
      vl_req_bool(req, "explain", &explain, r))
    goto out;
  if (!hyp[0]) {
    vl_reply_error(r, 400, NULL, "'hypothesis' is empty");
    goto out;
  }
  task_call call = {.m = s->cap,
                    .img = e.img,
                    .hypothesis = hyp,
                    .cfg = &e.cfg,
                    .explain = explain,
                    .eres = &res};
  int rc = vl_serve_compute(run_task, &call);
  if (rc) {
    vl_reply_last_error(r, "entail");
    goto out;
  }
  cJSON *doc = vl_entail_to_json(&res, s->cap_name, hyp, NULL, e.img->width, e.img->height, 0);
  if (add_slices(&call, &e.slices, doc, r, "entail")) goto out;
  if (doc && e.overlays && res.maps &&
      add_overlays(&e, cJSON_GetObjectItemCaseSensitive(doc, "explanations"), res.maps,
                   res.n_methods)) {
    cJSON_Delete(doc);
    vl_reply_error(r, 500, NULL, "overlay: %s", vl_last_error());
    goto out;
  }
  vl_reply_json(r, 200, doc);
out:
  vl_entail_result_free(&res);
  req_free(&e);
}
