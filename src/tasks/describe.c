/* `vlens describe`: generation, then explanations from one recorded forward. */
#include "tasks/describe.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "base/log.h"
#include "explain/method.h"
#include "tasks/model_paths.h"

/* ---- shared configuration ---------------------------------------------- */

void vl_explain_cfg_free(vl_explain_cfg *cfg) {
  for (int i = 0; i < cfg->n_methods; i++)
    free(cfg->methods[i]);
  free(cfg->methods);
  memset(cfg, 0, sizeof *cfg);
}

static int cfg_add(vl_explain_cfg *cfg, const char *name, size_t len) {
  char buf[VL_HEATMAP_NAME_MAX];
  if (len == 0 || len >= sizeof buf)
    return vl_error(VL_ERR_INVALID, "--method: empty or too long method name");
  memcpy(buf, name, len);
  buf[len] = 0;
  if (!vl_explain_find(buf)) return vl_last_error_code();
  for (int i = 0; i < cfg->n_methods; i++)
    if (!strcmp(cfg->methods[i], buf)) return VL_OK;
  char **nm = realloc(cfg->methods, (size_t)(cfg->n_methods + 1) * sizeof *nm);
  if (!nm) return vl_error(VL_ERR_NOMEM, "out of memory");
  cfg->methods = nm;
  if (!(nm[cfg->n_methods] = strdup(buf))) return vl_error(VL_ERR_NOMEM, "out of memory");
  cfg->n_methods++;
  return VL_OK;
}

int vl_explain_cfg_parse(vl_explain_cfg *cfg, const char *csv) {
  memset(cfg, 0, sizeof *cfg);
  vl_blip_explain_opts_init(&cfg->ex);
  int rc = VL_OK;
  if (csv && !strcmp(csv, "all")) {
    int n;
    const vl_explain_method *all = vl_explain_methods(&n);
    for (int i = 0; !rc && i < n; i++)
      rc = cfg_add(cfg, all[i].name, strlen(all[i].name));
  } else {
    const char *s = csv ? csv : "gradcam";
    while (!rc && *s) {
      const char *e = strchr(s, ',');
      size_t len = e ? (size_t)(e - s) : strlen(s);
      rc = cfg_add(cfg, s, len);
      s += len + (e ? 1 : 0);
    }
    if (!rc && cfg->n_methods == 0) rc = vl_error(VL_ERR_INVALID, "--method: no method given");
  }
  if (rc) {
    vl_explain_cfg_free(cfg);
    return rc;
  }
  cfg->ex.methods = (const char *const *)cfg->methods;
  cfg->ex.n_methods = cfg->n_methods;
  return VL_OK;
}

vl_blip *vl_task_load_blip(const char *dir, char *path_out, int cap) {
  if (dir) {
    snprintf(path_out, (size_t)cap, "%s", dir);
  } else if (vl_model_default_path(VL_DEFAULT_CAPTIONER, NULL, "-m", path_out, (size_t)cap)) {
    return NULL;
  }
  vl_blip *m = vl_blip_load(path_out);
  if (!m) return NULL;
  if (m->kind != VL_BLIP_CAPTION || !m->tok) {
    vl_error(VL_ERR_UNSUPPORTED,
             "%s: describe/entail need a BlipForConditionalGeneration folder with a tokenizer",
             path_out);
    vl_blip_free(m);
    return NULL;
  }
  return m;
}

void vl_model_name(const char *dir, char *buf, int cap) {
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/')
    n--;
  size_t s = n;
  while (s > 0 && dir[s - 1] != '/')
    s--;
  snprintf(buf, (size_t)cap, "%.*s", (int)(n - s), dir + s);
}

/* ---- words ------------------------------------------------------------- */

static int push_word(char ***w, int *n, const char *s, size_t len) {
  char **nw = realloc(*w, (size_t)(*n + 1) * sizeof *nw);
  if (!nw) return vl_error(VL_ERR_NOMEM, "out of memory");
  *w = nw;
  if (!(nw[*n] = strndup(s, len))) return vl_error(VL_ERR_NOMEM, "out of memory");
  (*n)++;
  return VL_OK;
}

int vl_split_words(const char *text, char ***words, int *n) {
  *words = NULL;
  *n = 0;
  int rc = VL_OK;
  const char *s = text;
  while (!rc && *s) {
    unsigned char ch = (unsigned char)*s;
    if (isspace(ch)) {
      s++;
    } else if (ch < 128 && ispunct(ch)) {
      rc = push_word(words, n, s, 1);
      s++;
    } else {
      const char *e = s;
      while (*e && !isspace((unsigned char)*e) &&
             !((unsigned char)*e < 128 && ispunct((unsigned char)*e)))
        e++;
      rc = push_word(words, n, s, (size_t)(e - s));
      s = e;
    }
  }
  return rc;
}

/* ---- describe ---------------------------------------------------------- */

static void free_maps(vl_heatmap **maps, int n) {
  if (!maps) return;
  for (int i = 0; i < n; i++)
    vl_heatmap_free(maps[i]);
  free(maps);
}

void vl_describe_result_free(vl_describe_result *res) {
  for (int i = 0; i < res->n_tokens; i++) {
    free(res->tokens[i].text);
    free_maps(res->tokens[i].maps, res->n_methods);
    free(res->tokens[i].faith);
  }
  for (int i = 0; i < res->n_words; i++) {
    free(res->words[i].text);
    free_maps(res->words[i].maps, res->n_methods);
    free(res->words[i].faith);
  }
  free(res->tokens);
  free(res->words);
  free(res->text);
  free(res->head_maps);
  memset(res, 0, sizeof *res);
}

static vl_heatmap **clone_maps(vl_heatmap *const *src, int n) {
  vl_heatmap **d = calloc((size_t)n, sizeof *d);
  if (!d) return NULL;
  for (int i = 0; i < n; i++)
    if (!(d[i] = vl_heatmap_clone(src[i]))) {
      free_maps(d, n);
      return NULL;
    }
  return d;
}

/* Whether word w is among the comma-separated names (case-insensitive). */
static bool named(const char *list, const char *w) {
  size_t wl = strlen(w);
  for (const char *s = list; *s;) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    if (len == wl && !strncasecmp(s, w, len)) return true;
    s += len + (e ? 1 : 0);
  }
  return false;
}

static int explain_target(vl_blip_rec *rec, const vl_image *img, const vl_explain_cfg *cfg,
                          const vl_blip_target *t, vl_heatmap ***maps, vl_faithfulness **faith) {
  *maps = calloc((size_t)cfg->n_methods, sizeof **maps);
  if (!*maps) return vl_error(VL_ERR_NOMEM, "out of memory");
  int rc = vl_blip_explain(rec, t, &cfg->ex, *maps);
  if (rc) {
    free(*maps);
    *maps = NULL;
    return rc;
  }
  if (faith && cfg->faithfulness) {
    *faith = calloc((size_t)cfg->n_methods, sizeof **faith);
    if (!*faith) return vl_error(VL_ERR_NOMEM, "out of memory");
    for (int k = 0; !rc && k < cfg->n_methods; k++)
      rc = vl_blip_faithfulness(rec, img, t, (*maps)[k], cfg->ex.seed, &(*faith)[k]);
  }
  return rc;
}

static int describe_words(vl_describe_result *res, const vl_blip *m, const char *prompt_text) {
  char **pw = NULL;
  int npw = 0;
  int rc = vl_split_words(prompt_text, &pw, &npw);
  /* generated words: a token not starting with "##" starts a new word */
  int cap = npw + res->n_tokens;
  res->words = calloc((size_t)(cap > 0 ? cap : 1), sizeof *res->words);
  if (!rc && !res->words) rc = vl_error(VL_ERR_NOMEM, "out of memory");
  for (int i = 0; !rc && i < npw; i++) {
    res->words[res->n_words].text = pw[i];
    pw[i] = NULL;
    res->words[res->n_words++].first = 0;
  }
  for (int i = 0; i < npw; i++)
    free(pw[i]);
  free(pw);
  for (int i = 0; !rc && i < res->n_tokens; i++) {
    /* special tokens ([PAD], [MASK]...) are generated but not in the text */
    if (res->tokens[i].special) continue;
    const char *raw = vl_tokenizer_id_to_token(m->tok, (int32_t)res->tokens[i].id);
    bool cont = raw && !strncmp(raw, "##", 2) && res->n_words > npw &&
                res->words[res->n_words - 1].first + res->words[res->n_words - 1].n_tokens == i;
    if (!cont) {
      vl_describe_word *w = &res->words[res->n_words++];
      w->first = i;
      w->n_tokens = 1;
      if (!(w->text = strdup(res->tokens[i].text))) rc = vl_error(VL_ERR_NOMEM, "out of memory");
    } else {
      vl_describe_word *w = &res->words[res->n_words - 1];
      size_t a = strlen(w->text), b = strlen(res->tokens[i].text);
      char *nt = realloc(w->text, a + b + 1);
      if (!nt) {
        rc = vl_error(VL_ERR_NOMEM, "out of memory");
        break;
      }
      memcpy(nt + a, res->tokens[i].text, b + 1);
      w->text = nt;
      w->n_tokens++;
    }
  }
  return rc;
}

int vl_describe(const vl_blip *m, const vl_image *img, const vl_describe_opts *o,
                const vl_explain_cfg *cfg, vl_describe_result *res) {
  memset(res, 0, sizeof *res);
  res->image_w = img->width;
  res->image_h = img->height;
  res->n_methods = cfg->n_methods;
  const char *prompt = o->prompt ? o->prompt : "";
  int64_t *pids = NULL, np = 0, *seq = NULL, n = 0;
  int rc = vl_blip_explain_check(m, &cfg->ex);
  if (rc) return rc;
  rc = vl_blip_prompt_ids(m, prompt, &pids, &np);
  if (rc) return rc;
  /* The vision tower runs once, recorded: generation starts from its output
   * and the explanations' forward adds the text over the caption. */
  double t0 = vl_now_seconds();
  vl_blip_rec rec;
  rc = vl_blip_record_image(m, img, &rec);
  int64_t maxlen = o->max_length > 0 ? o->max_length : m->max_length;
  if (!rc) rc = vl_blip_generate_from_image(m, rec.run.vision_out, pids, np, maxlen, &seq, &n);
  res->ms_generate = (vl_now_seconds() - t0) * 1e3;
  char *prompt_text = NULL;
  if (!rc) rc = vl_blip_decode(m, seq, n, &res->text);
  if (!rc) rc = vl_blip_decode(m, seq, np, &prompt_text);
  if (rc) goto done;
  vl_log("describe: \"%s\" (%.0f ms)", res->text, res->ms_generate);

  /* the generated tokens, the closing [SEP] left out */
  int64_t ng = n - np;
  if (ng > 0 && seq[n - 1] == m->tcfg.sep) ng--;
  res->tokens = calloc((size_t)(ng > 0 ? ng : 1), sizeof *res->tokens);
  if (!res->tokens) {
    rc = vl_error(VL_ERR_NOMEM, "out of memory");
    goto done;
  }
  res->n_tokens = (int)ng;
  for (int i = 0; i < res->n_tokens; i++) {
    vl_describe_token *tk = &res->tokens[i];
    tk->id = seq[np + i];
    tk->query = np + i - 1;
    tk->special = vl_tokenizer_is_special(m->tok, (int32_t)tk->id) != 0;
    const char *raw = vl_tokenizer_id_to_token(m->tok, (int32_t)tk->id);
    if (!raw) raw = "";
    if (!strncmp(raw, "##", 2)) raw += 2;
    if (!(tk->text = strdup(raw))) {
      rc = vl_error(VL_ERR_NOMEM, "out of memory");
      goto done;
    }
  }
  if ((rc = describe_words(res, m, prompt_text))) goto done;
  if (res->n_tokens == 0) goto done;

  /* explanations: one recorded forward over prompt + generated text */
  t0 = vl_now_seconds();
  rc = vl_blip_record_text(&rec, seq, n - 1);
  if (!rc) {
    res->gw = rec.grid_w;
    res->gh = rec.grid_h;
    res->n_layers = (int)m->tcfg.n_layers;
    res->n_heads = (int)m->tcfg.n_heads;
    size_t per = (size_t)res->n_layers * res->n_heads * rec.n_image;
    res->head_maps = malloc(per * res->n_tokens * sizeof(float));
    if (!res->head_maps) rc = vl_error(VL_ERR_NOMEM, "out of memory");
    for (int i = 0; !rc && i < res->n_tokens; i++)
      for (int l = 0; l < res->n_layers; l++) {
        const vl_tensor *A = rec.run.cross_attn[l]; /* (1, H, T, N+1) */
        const int64_t T = A->shape[2], K = A->shape[3];
        for (int h = 0; h < res->n_heads; h++)
          for (int c = 0; c < rec.n_image; c++)
            res->head_maps[per * i + ((size_t)l * res->n_heads + h) * rec.n_image + c] =
                vl_f32(A)[((int64_t)h * T + res->tokens[i].query) * K + rec.image_tokens[c]];
      }
  }
  for (int i = 0; !rc && i < res->n_tokens; i++)
    res->tokens[i].logprob = vl_blip_logprob(&rec, res->tokens[i].query, res->tokens[i].id);
  const bool all = !o->explain || !strcmp(o->explain, "all");
  const bool none = o->explain && !strcmp(o->explain, "none");
  if (!rc && !all && !none) { /* every named word must be in the caption */
    for (const char *s = o->explain; *s;) {
      const char *e = strchr(s, ',');
      size_t len = e ? (size_t)(e - s) : strlen(s);
      bool found = false;
      for (int w = 0; w < res->n_words && !found; w++)
        found = res->words[w].n_tokens > 0 && strlen(res->words[w].text) == len &&
                !strncasecmp(res->words[w].text, s, len);
      if (!found) {
        rc = vl_error(VL_ERR_NOTFOUND, "--explain: the word '%.*s' is not in the caption \"%s\"",
                      (int)len, s, res->text);
        break;
      }
      s += len + (e ? 1 : 0);
    }
  }
  if (!rc && !none && cfg->n_methods > 0) {
    if (all)
      for (int i = 0; !rc && i < res->n_tokens; i++) {
        vl_blip_target t = {1, &res->tokens[i].query, &res->tokens[i].id};
        rc = explain_target(&rec, img, cfg, &t, &res->tokens[i].maps, NULL);
      }
    for (int w = 0; !rc && w < res->n_words; w++) {
      vl_describe_word *wd = &res->words[w];
      if (wd->n_tokens == 0 || (!all && !named(o->explain, wd->text))) continue;
      if (wd->n_tokens == 1 && res->tokens[wd->first].maps && !cfg->faithfulness) {
        /* one token: the same target, its maps */
        if (!(wd->maps = clone_maps(res->tokens[wd->first].maps, cfg->n_methods)))
          rc = vl_error(VL_ERR_NOMEM, "out of memory");
        continue;
      }
      int64_t q[VL_BLIP_DEFAULT_MAX_LENGTH * 4], id[VL_BLIP_DEFAULT_MAX_LENGTH * 4];
      int k = wd->n_tokens < (int)(sizeof q / sizeof q[0]) ? wd->n_tokens
                                                           : (int)(sizeof q / sizeof q[0]);
      for (int j = 0; j < k; j++) {
        q[j] = res->tokens[wd->first + j].query;
        id[j] = res->tokens[wd->first + j].id;
      }
      vl_blip_target t = {k, q, id};
      rc = explain_target(&rec, img, cfg, &t, &wd->maps, &wd->faith);
    }
  }
  res->forwards = rec.forwards;
  res->backwards = rec.backwards;
  res->ms_explain = (vl_now_seconds() - t0) * 1e3;
done:
  vl_blip_rec_free(&rec);
  free(prompt_text);
  free(pids);
  free(seq);
  if (rc) vl_describe_result_free(res);
  return rc;
}

/* ---- JSON -------------------------------------------------------------- */

static cJSON *curve(const double *v) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; a && i <= VL_FAITH_STEPS; i++)
    cJSON_AddItemToArray(a, cJSON_CreateNumber(round(v[i] * 1e6) / 1e6));
  return a;
}

cJSON *vl_heatmap_json_faith(const vl_heatmap *m, const vl_faithfulness *f) {
  cJSON *j = vl_heatmap_to_json(m);
  if (!j || !f) return j;
  cJSON *o = cJSON_AddObjectToObject(j, "faithfulness");
  if (!o) return j;
  cJSON_AddNumberToObject(o, "deletion_auc", f->deletion_auc);
  cJSON_AddNumberToObject(o, "insertion_auc", f->insertion_auc);
  cJSON_AddNumberToObject(o, "random_deletion_auc", f->random_deletion_auc);
  cJSON_AddNumberToObject(o, "random_insertion_auc", f->random_insertion_auc);
  cJSON_AddItemToObject(o, "deletion", curve(f->deletion));
  cJSON_AddItemToObject(o, "insertion", curve(f->insertion));
  cJSON_AddItemToObject(o, "random_deletion", curve(f->random_deletion));
  cJSON_AddItemToObject(o, "random_insertion", curve(f->random_insertion));
  return j;
}

static cJSON *explanations(vl_heatmap *const *maps, const vl_faithfulness *faith, int n) {
  cJSON *e = cJSON_CreateObject();
  for (int k = 0; e && maps && k < n; k++)
    cJSON_AddItemToObject(e, maps[k]->method,
                          vl_heatmap_json_faith(maps[k], faith ? &faith[k] : NULL));
  return e;
}

cJSON *vl_describe_to_json(const vl_describe_result *res, const vl_explain_cfg *cfg,
                           const char *model, const char *prompt, const char *image_path,
                           double ms_load) {
  cJSON *j = cJSON_CreateObject();
  if (!j) return NULL;
  cJSON_AddStringToObject(j, "task", "describe");
  cJSON_AddStringToObject(j, "model", model);
  cJSON_AddStringToObject(j, "prompt", prompt ? prompt : "");
  cJSON_AddStringToObject(j, "text", res->text ? res->text : "");
  cJSON *img = cJSON_AddObjectToObject(j, "image");
  if (image_path) cJSON_AddStringToObject(img, "path", image_path);
  cJSON_AddNumberToObject(img, "width", res->image_w);
  cJSON_AddNumberToObject(img, "height", res->image_h);
  cJSON *methods = cJSON_AddArrayToObject(j, "methods");
  for (int k = 0; k < cfg->n_methods; k++)
    cJSON_AddItemToArray(methods, cJSON_CreateString(cfg->methods[k]));
  cJSON *toks = cJSON_AddArrayToObject(j, "tokens");
  for (int i = 0; i < res->n_tokens; i++) {
    const vl_describe_token *t = &res->tokens[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", i);
    cJSON_AddNumberToObject(o, "id", (double)t->id);
    cJSON_AddStringToObject(o, "text", t->text);
    cJSON_AddNumberToObject(o, "logprob", round(t->logprob * 1e6) / 1e6);
    cJSON_AddItemToObject(o, "explanations", explanations(t->maps, t->faith, res->n_methods));
    cJSON_AddItemToArray(toks, o);
  }
  cJSON *words = cJSON_AddArrayToObject(j, "words");
  for (int i = 0; i < res->n_words; i++) {
    const vl_describe_word *w = &res->words[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", i);
    cJSON_AddStringToObject(o, "text", w->text);
    cJSON *ti = cJSON_AddArrayToObject(o, "tokens");
    for (int k = 0; k < w->n_tokens; k++)
      cJSON_AddItemToArray(ti, cJSON_CreateNumber(w->first + k));
    cJSON_AddItemToObject(o, "explanations", explanations(w->maps, w->faith, res->n_methods));
    cJSON_AddItemToArray(words, o);
  }
  cJSON *tm = cJSON_AddObjectToObject(j, "timing_ms");
  cJSON_AddNumberToObject(tm, "load", round(ms_load * 10) / 10);
  cJSON_AddNumberToObject(tm, "generate", round(res->ms_generate * 10) / 10);
  cJSON_AddNumberToObject(tm, "explain", round(res->ms_explain * 10) / 10);
  cJSON *cost = cJSON_AddObjectToObject(j, "explain_cost");
  cJSON_AddNumberToObject(cost, "forwards", res->forwards);
  cJSON_AddNumberToObject(cost, "backwards", res->backwards);
  return j;
}
