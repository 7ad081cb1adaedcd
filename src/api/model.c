/* Public model handle: a folder (or an embedded default model's name) loaded
 * as the kind its config.json names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "api/internal.h"
#include "base/error.h"
#include "base/log.h"
#include "io/json.h"
#include "tasks/describe.h"
#include "tasks/model_paths.h"

void vlens_free(void *p) { free(p); }

const char *vlens_kind_name(vlens_kind k) {
  return k == VLENS_KIND_CAPTIONER ? "captioner" : k == VLENS_KIND_LLM ? "llm" : "";
}

int vl_api_need(const vlens_model *m, vlens_kind k, const char *fn) {
  if (!m) return vl_error(VL_ERR_INVALID, "%s: model is NULL", fn);
  if (m->kind != k)
    return vl_error(VL_ERR_UNSUPPORTED, "%s: %s is a %s model; this call needs a %s", fn, m->name,
                    vlens_kind_name(m->kind), vlens_kind_name(k));
  return VL_OK;
}

/* Folder of dir_or_name: an existing folder as it is; a bare name (no '/')
 * through the embedded-model search. */
static int resolve(const char *s, char *out, size_t cap) {
  struct stat st;
  if (!stat(s, &st)) {
    if (!S_ISDIR(st.st_mode))
      return vl_error(VL_ERR_INVALID, "%s: not a model folder (config.json + weights)", s);
    if ((size_t)snprintf(out, cap, "%s", s) >= cap)
      return vl_error(VL_ERR_LIMIT, "%s: path too long", s);
    return VL_OK;
  }
  if (!strchr(s, '/') && strcmp(s, ".") && strcmp(s, ".."))
    return vl_model_default_path(s, NULL, "vlens_model_load a folder", out, cap);
  return vl_error(VL_ERR_IO, "%s: no such model folder", s);
}

vlens_model *vlens_model_load(const char *dir_or_name) {
  if (!dir_or_name || !*dir_or_name) {
    vl_error(VL_ERR_INVALID, "vlens_model_load: no folder or model name given");
    return NULL;
  }
  vlens_model *m = calloc(1, sizeof *m);
  if (!m) {
    vl_error(VL_ERR_NOMEM, "vlens_model_load: out of memory");
    return NULL;
  }
  double t0 = vl_now_seconds();
  char cfg_path[4200];
  cJSON *cfg = NULL;
  if (resolve(dir_or_name, m->dir, sizeof m->dir)) goto fail;
  vl_model_name(m->dir, m->name, sizeof m->name);
  snprintf(cfg_path, sizeof cfg_path, "%s/config.json", m->dir);
  if (!(cfg = vl_json_load(cfg_path))) goto fail;
  const char *type = vl_json_str(cfg, "model_type", "");
  if (vl_blip_is_blip_config(cfg)) {
    char path[4096];
    m->kind = VLENS_KIND_CAPTIONER;
    if (!(m->blip = vl_task_load_blip(m->dir, path, sizeof path))) goto fail;
  } else if (!strcmp(type, "qwen2") || !strcmp(type, "qwen3")) {
    m->kind = VLENS_KIND_LLM;
    if (!(m->qwen = vl_qwen_text_load(m->dir))) goto fail;
    if (!(m->tok = vl_tokenizer_load(m->dir))) {
      vl_error_context("%s: tokenizer", m->dir);
      goto fail;
    }
  } else {
    vl_error(VL_ERR_UNSUPPORTED,
             "%s: model_type '%s' (architectures '%s') is not served by the C library yet "
             "(BLIP captioning and Qwen2/Qwen3 text models are)",
             cfg_path, type, vl_json_str(cfg, "architectures.0", ""));
    goto fail;
  }
  cJSON_Delete(cfg);
  m->ms_load = (vl_now_seconds() - t0) * 1e3;
  return m;
fail:
  cJSON_Delete(cfg);
  vlens_model_free(m);
  return NULL;
}

void vlens_model_free(vlens_model *m) {
  if (!m) return;
  vl_blip_free(m->blip);
  vl_qwen_text_free(m->qwen);
  vl_tokenizer_free(m->tok);
  free(m);
}

vlens_kind vlens_model_kind(const vlens_model *m) { return m ? m->kind : (vlens_kind)0; }
const char *vlens_model_name(const vlens_model *m) { return m ? m->name : ""; }
