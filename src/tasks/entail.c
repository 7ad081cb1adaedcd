/* `vlens entail`: the decision from one recorded forward, then its explanation. */
#include "tasks/entail.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "base/log.h"
#include "tasks/shapes_vocab.h"

const char *vl_entail_label_name(int label) {
  static const char *const n[3] = {"entailment", "neutral", "contradiction"};
  return label >= 0 && label < 3 ? n[label] : "?";
}

void vl_entail_result_free(vl_entail_result *res) {
  if (res->maps)
    for (int k = 0; k < res->n_methods; k++)
      vl_heatmap_free(res->maps[k]);
  free(res->maps);
  free(res->faith);
  memset(res, 0, sizeof *res);
}

int vl_entail_ids(const vl_blip *m, const char *hypothesis, int64_t **ids, int64_t *n,
                  int64_t answer[3]) {
  *ids = NULL;
  *n = 0;
  if (!hypothesis || !*hypothesis) return vl_error(VL_ERR_INVALID, "entail: empty hypothesis");
  char prompt[1024];
  int rc = vl_shapes_entail_prompt(hypothesis, prompt, (int)sizeof prompt);
  if (rc) return rc;
  for (int l = 0; l < 3; l++) {
    const char *w = vl_shapes_answer_word(l);
    answer[l] = vl_tokenizer_token_to_id(m->tok, w);
    if (answer[l] < 0)
      return vl_error(VL_ERR_FORMAT,
                      "%s: the answer word '%s' is not in vocab.txt (entail needs a model trained "
                      "with the yes/maybe/no entailment prompt)",
                      m->dir, w);
  }
  if ((rc = vl_blip_prompt_ids(m, prompt, ids, n))) return rc;
  if (*n > m->tcfg.max_pos) {
    rc = vl_error(VL_ERR_LIMIT, "entail: the prompt has %lld tokens, the model takes %lld",
                  (long long)*n, (long long)m->tcfg.max_pos);
    free(*ids);
    *ids = NULL;
  }
  return rc;
}

int vl_entail(const vl_blip *m, const vl_image *img, const char *hypothesis,
              const vl_explain_cfg *cfg, bool explain, vl_entail_result *res) {
  memset(res, 0, sizeof *res);
  res->n_methods = cfg ? cfg->n_methods : 0;
  if (!hypothesis || !*hypothesis) return vl_error(VL_ERR_INVALID, "entail: empty hypothesis");
  int rc = cfg && explain ? vl_blip_explain_check(m, &cfg->ex) : VL_OK;
  if (rc) return rc;
  int64_t answer[3], *ids = NULL, n = 0;
  if ((rc = vl_entail_ids(m, hypothesis, &ids, &n, answer))) return rc;
  double t0 = vl_now_seconds();
  vl_blip_rec rec;
  rc = vl_blip_record(m, img, ids, n, &rec);
  free(ids);
  if (!rc) {
    const int64_t q = n - 1;
    double lp[3], mx = -INFINITY, s = 0;
    const float *row = vl_f32(rec.run.logits) + q * m->tcfg.vocab;
    for (int l = 0; l < 3; l++) {
      lp[l] = row[answer[l]];
      if (lp[l] > mx) mx = lp[l];
    }
    for (int l = 0; l < 3; l++)
      s += exp(lp[l] - mx);
    res->label = 0;
    for (int l = 0; l < 3; l++) {
      res->probs[l] = exp(lp[l] - mx) / s;
      if (lp[l] > lp[res->label]) res->label = l;
    }
    res->ms_decide = (vl_now_seconds() - t0) * 1e3;
    if (explain && cfg && cfg->n_methods > 0) {
      t0 = vl_now_seconds();
      int64_t id = answer[res->label];
      vl_blip_target t = {1, &q, &id};
      res->maps = calloc((size_t)cfg->n_methods, sizeof *res->maps);
      if (!res->maps) rc = vl_error(VL_ERR_NOMEM, "out of memory");
      if (!rc) rc = vl_blip_explain(&rec, &t, &cfg->ex, res->maps);
      res->ms_explain = (vl_now_seconds() - t0) * 1e3;
      if (!rc && cfg->faithfulness) {
        t0 = vl_now_seconds();
        res->faith = calloc((size_t)cfg->n_methods, sizeof *res->faith);
        if (!res->faith) rc = vl_error(VL_ERR_NOMEM, "out of memory");
        for (int k = 0; !rc && k < cfg->n_methods; k++)
          rc = vl_blip_faithfulness(&rec, img, &t, res->maps[k], cfg->ex.seed, &res->faith[k]);
        res->ms_faithfulness = (vl_now_seconds() - t0) * 1e3;
      }
    }
  }
  res->forwards = rec.forwards;
  res->backwards = rec.backwards;
  vl_blip_rec_free(&rec);
  if (rc) vl_entail_result_free(res);
  return rc;
}

cJSON *vl_entail_to_json(const vl_entail_result *res, const char *model, const char *hypothesis,
                         const char *image_path, int image_w, int image_h, double ms_load) {
  cJSON *j = cJSON_CreateObject();
  if (!j) return NULL;
  cJSON_AddStringToObject(j, "task", "entail");
  cJSON_AddStringToObject(j, "model", model);
  cJSON_AddStringToObject(j, "hypothesis", hypothesis);
  cJSON_AddStringToObject(j, "label", vl_entail_label_name(res->label));
  cJSON *p = cJSON_AddObjectToObject(j, "probs");
  for (int l = 0; l < 3; l++)
    cJSON_AddNumberToObject(p, vl_entail_label_name(l), round(res->probs[l] * 1e6) / 1e6);
  cJSON *e = cJSON_AddObjectToObject(j, "explanations");
  for (int k = 0; res->maps && k < res->n_methods; k++)
    cJSON_AddItemToObject(e, res->maps[k]->method,
                          vl_heatmap_json_faith(res->maps[k], res->faith ? &res->faith[k] : NULL));
  cJSON *img = cJSON_AddObjectToObject(j, "image");
  if (image_path) cJSON_AddStringToObject(img, "path", image_path);
  cJSON_AddNumberToObject(img, "width", image_w);
  cJSON_AddNumberToObject(img, "height", image_h);
  cJSON *tm = cJSON_AddObjectToObject(j, "timing_ms");
  cJSON_AddNumberToObject(tm, "load", round(ms_load * 10) / 10);
  cJSON_AddNumberToObject(tm, "decide", round(res->ms_decide * 10) / 10);
  cJSON_AddNumberToObject(tm, "explain", round(res->ms_explain * 10) / 10);
  if (res->faith)
    cJSON_AddNumberToObject(tm, "faithfulness", round(res->ms_faithfulness * 10) / 10);
  return j;
}
