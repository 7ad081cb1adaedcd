/* --layer all, --heads: per-layer and per-head maps in the JSON (explain_slices.h). */
#include "tasks/explain_slices.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "explain/method.h"

int vl_slices_n_layers(const vl_blip *m, const char *method) {
  if (!strcmp(method, "gradcam")) return (int)m->vcfg.n_layers;
  if (!strcmp(method, "attention")) return (int)m->tcfg.n_layers;
  return 0;
}

int vl_slices_n_heads(const vl_blip *m, const char *method) {
  const vl_explain_method *em = vl_explain_find(method);
  if (!em || !(em->needs & VL_NEEDS_ATTN)) return 0;
  /* a head index selects in every stack a method reads (as --head does) */
  return (int)(m->tcfg.n_heads < m->vcfg.n_heads ? m->tcfg.n_heads : m->vcfg.n_heads);
}

/* The heatmap object of method at (layer, head), post-processed as o says. */
static cJSON *slice(vl_blip_rec *r, const vl_blip_target *t, const vl_blip_explain_opts *o,
                    const char *method, int layer, int head) {
  char lname[VL_HEATMAP_NAME_MAX];
  vl_blip_layer_name(r, method, layer, lname, sizeof lname);
  vl_heatmap *h = vl_heatmap_new(method, lname, r->grid_w, r->grid_h, r->image_w, r->image_h);
  if (!h) return NULL;
  int rc = vl_blip_method_raw(r, t, method, layer, head, o->seed, h->cells);
  if (!rc) {
    vl_postprocess pp = {.smooth_sigma = o->smooth, .sharpen_t = o->sharpen};
    rc = vl_heatmap_postprocess(h, &pp);
  }
  cJSON *j = rc ? NULL : vl_heatmap_to_json(h);
  vl_heatmap_free(h);
  return j;
}

/* "heads": one map per head of method at layer. */
static int add_heads(vl_blip_rec *r, const vl_blip_target *t, const vl_blip_explain_opts *o,
                     const char *method, int layer, int n_heads, cJSON *obj) {
  cJSON *arr = cJSON_AddArrayToObject(obj, "heads");
  if (!arr) return vl_error(VL_ERR_NOMEM, "out of memory");
  for (int h = 0; h < n_heads; h++) {
    cJSON *j = slice(r, t, o, method, layer, h);
    if (!j) return vl_error_context("explain: %s head %d", method, h);
    cJSON_AddNumberToObject(j, "head", h);
    cJSON_AddItemToArray(arr, j);
  }
  return VL_OK;
}

int vl_slices_add(vl_blip_rec *r, const vl_blip_target *t, const vl_blip_explain_opts *o,
                  const vl_slices_opts *so, cJSON *explanations) {
  if (!so->layers && !so->heads) return VL_OK;
  bool grad = false;
  for (int k = 0; k < o->n_methods; k++) {
    const vl_explain_method *em = vl_explain_find(o->methods[k]);
    if (!em) return vl_last_error_code();
    grad |= (em->needs & (VL_NEEDS_ATTN_GRAD | VL_NEEDS_ACTS | VL_NEEDS_PIXEL_GRAD)) != 0;
  }
  int rc = grad ? vl_blip_target_backward(r, t) : VL_OK;
  for (int k = 0; !rc && k < o->n_methods; k++) {
    const char *method = o->methods[k];
    cJSON *obj = cJSON_GetObjectItemCaseSensitive(explanations, method);
    if (!cJSON_IsObject(obj)) continue;
    const int nl = so->layers ? vl_slices_n_layers(r->m, method) : 0;
    const int nh = so->heads ? vl_slices_n_heads(r->m, method) : 0;
    if (nl > 0) {
      cJSON *arr = cJSON_AddArrayToObject(obj, "layers");
      if (!arr) rc = vl_error(VL_ERR_NOMEM, "out of memory");
      for (int l = 0; !rc && l < nl; l++) {
        cJSON *j = slice(r, t, o, method, l, o->head);
        if (!j) {
          rc = vl_error_context("explain: %s layer %d", method, l);
          break;
        }
        cJSON_AddNumberToObject(j, "layer_index", l);
        cJSON_AddItemToArray(arr, j);
        if (nh > 0) rc = add_heads(r, t, o, method, l, nh, j);
      }
    }
    if (!rc && nh > 0) rc = add_heads(r, t, o, method, o->layer, nh, obj);
  }
  return rc;
}

int vl_describe_slices_json(const vl_blip *m, const vl_image *img, const char *prompt,
                            const vl_describe_result *res, const vl_explain_cfg *cfg,
                            const vl_slices_opts *so, cJSON *doc) {
  if ((!so->layers && !so->heads) || res->n_tokens == 0 || cfg->n_methods == 0) return VL_OK;
  /* the sequence describe recorded: prompt, then the generated tokens
   * (token i sits at position query + 1; the closing [SEP] is not needed) */
  int64_t *pids = NULL, np = 0;
  int rc = vl_blip_prompt_ids(m, prompt ? prompt : "", &pids, &np);
  if (rc) return rc;
  const int64_t n = res->tokens[res->n_tokens - 1].query + 2;
  int64_t *seq = malloc((size_t)(n > np ? n : np) * sizeof *seq);
  if (!seq) {
    free(pids);
    return vl_error(VL_ERR_NOMEM, "out of memory");
  }
  memcpy(seq, pids, (size_t)np * sizeof *seq);
  for (int i = 0; i < res->n_tokens; i++)
    if (res->tokens[i].query + 1 < n && res->tokens[i].query + 1 >= 0)
      seq[res->tokens[i].query + 1] = res->tokens[i].id;
  free(pids);
  vl_blip_rec rec;
  rc = vl_blip_record(m, img, seq, n, &rec);
  free(seq);
  cJSON *toks = cJSON_GetObjectItem(doc, "tokens"), *words = cJSON_GetObjectItem(doc, "words");
  for (int i = 0; !rc && i < res->n_tokens; i++) {
    if (!res->tokens[i].maps) continue;
    vl_blip_target t = {1, &res->tokens[i].query, &res->tokens[i].id};
    rc = vl_slices_add(&rec, &t, &cfg->ex, so,
                       cJSON_GetObjectItem(cJSON_GetArrayItem(toks, i), "explanations"));
  }
  for (int w = 0; !rc && w < res->n_words; w++) {
    const vl_describe_word *wd = &res->words[w];
    if (!wd->maps || wd->n_tokens == 0) continue;
    int64_t *q = malloc((size_t)wd->n_tokens * sizeof *q),
            *id = malloc((size_t)wd->n_tokens * sizeof *id);
    if (!q || !id) rc = vl_error(VL_ERR_NOMEM, "out of memory");
    for (int j = 0; !rc && j < wd->n_tokens; j++) {
      q[j] = res->tokens[wd->first + j].query;
      id[j] = res->tokens[wd->first + j].id;
    }
    vl_blip_target t = {wd->n_tokens, q, id};
    if (!rc)
      rc = vl_slices_add(&rec, &t, &cfg->ex, so,
                         cJSON_GetObjectItem(cJSON_GetArrayItem(words, w), "explanations"));
    free(q);
    free(id);
  }
  vl_blip_rec_free(&rec);
  return rc;
}

int vl_entail_slices_json(const vl_blip *m, const vl_image *img, const char *hypothesis,
                          const vl_entail_result *res, const vl_explain_cfg *cfg,
                          const vl_slices_opts *so, cJSON *doc) {
  if ((!so->layers && !so->heads) || !res->maps || cfg->n_methods == 0) return VL_OK;
  int64_t *ids = NULL, n = 0, answer[3];
  int rc = vl_entail_ids(m, hypothesis, &ids, &n, answer);
  if (rc) return rc;
  vl_blip_rec rec;
  rc = vl_blip_record(m, img, ids, n, &rec);
  free(ids);
  const int64_t q = n - 1, id = answer[res->label];
  vl_blip_target t = {1, &q, &id};
  if (!rc) rc = vl_slices_add(&rec, &t, &cfg->ex, so, cJSON_GetObjectItem(doc, "explanations"));
  vl_blip_rec_free(&rec);
  return rc;
}
