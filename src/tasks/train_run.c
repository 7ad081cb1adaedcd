#include "tasks/train_run.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/log.h"
#include "io/file.h"
#include "io/json.h"

int vl_train_mkdirs(const char *dir, const char *who) {
  char p[4096];
  if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
    return vl_error(VL_ERR_LIMIT, "%s: path too long: %s", who, dir);
  for (char *s = p + 1;; s++) {
    if (*s == '/' || !*s) {
      char c = *s;
      *s = 0;
      if (mkdir(p, 0777) != 0 && errno != EEXIST)
        return vl_error(VL_ERR_IO, "%s: cannot create folder (%s)", p, strerror(errno));
      *s = c;
      if (!c) break;
    }
  }
  return VL_OK;
}

int vl_train_write_text(const char *dir, const char *file, const char *text) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  return vl_write_text_file(path, text);
}

int vl_train_write_json(const char *dir, const char *file, cJSON *j, const char *who) {
  char *text = j ? cJSON_Print(j) : NULL;
  cJSON_Delete(j);
  if (!text) return vl_error(VL_ERR_NOMEM, "%s: out of memory", who);
  int rc = vl_train_write_text(dir, file, text);
  free(text);
  return rc;
}

int64_t vl_train_argmax(const float *r, int64_t n) {
  int64_t b = 0;
  for (int64_t i = 1; i < n; i++)
    if (r[i] > r[b]) b = i;
  return b;
}

int64_t vl_train_meta_step(const vl_safetensors *st) {
  const char *s = vl_st_metadata(st, "vlens_step");
  char *end;
  long long v = s ? strtoll(s, &end, 10) : -1;
  return s && *s && !*end && v >= 0 ? v : -1;
}

int vl_train_open_state(const char *out_dir, const char *who, const char *opts_key,
                        int (*read_opts)(const char *json, const char *what, void *user),
                        void *user, vl_safetensors **ost, int64_t *step) {
  char path[4096];
  snprintf(path, sizeof path, "%s/optimizer.safetensors", out_dir);
  vl_safetensors *st = vl_st_open(path);
  if (!st) return vl_error_context("%s: --resume needs an earlier run in %s", who, out_dir);
  const char *oj = vl_st_metadata(st, opts_key);
  int64_t s = vl_train_meta_step(st);
  int rc = !oj || s < 0 ? vl_error(VL_ERR_FORMAT, "%s: no vlens %s state", path, who) : VL_OK;
  snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
  vl_safetensors *ms = rc ? NULL : vl_st_open(path);
  if (!rc && !ms) rc = vl_last_error_code();
  if (!rc && vl_train_meta_step(ms) != s)
    rc = vl_error(VL_ERR_FORMAT,
                  "%s: step %lld but optimizer.safetensors is at step %lld (interrupted "
                  "while saving); start again or restore a copy",
                  path, (long long)vl_train_meta_step(ms), (long long)s);
  vl_st_close(ms);
  if (!rc) rc = read_opts(oj, out_dir, user);
  if (rc) {
    vl_st_close(st);
    return rc;
  }
  *ost = st;
  *step = s;
  return VL_OK;
}

int vl_train_check_new_run(const char *out_dir, const char *who) {
  char path[4096];
  snprintf(path, sizeof path, "%s/optimizer.safetensors", out_dir);
  FILE *f = fopen(path, "rb");
  if (!f) return VL_OK;
  fclose(f);
  return vl_error(VL_ERR_INVALID,
                  "%s: %s already holds a training run; pass --resume to continue it or "
                  "choose another --out",
                  who, out_dir);
}

/* ---- a fresh model's weights ------------------------------------------- */

int vl_train_init_begin(vl_train_init *iw, uint64_t seed, uint64_t stream, const char *who) {
  *iw = (vl_train_init){.w = vl_st_writer_new(), .who = who};
  if (!iw->w) return vl_error(VL_ERR_NOMEM, "%s: out of memory", who);
  vl_rng_seed(&iw->rng, seed, 0, stream);
  return VL_OK;
}

void vl_train_init_add(vl_train_init *iw, vl_init_fill fill, int ndim, const int64_t *shape,
                       const char *fmt, ...) {
  if (iw->rc) return;
  char name[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  float *d = malloc((size_t)n * sizeof *d);
  if (!d) {
    iw->rc = vl_error(VL_ERR_NOMEM, "%s: out of memory", iw->who);
    return;
  }
  for (int64_t i = 0; i < n; i++)
    d[i] = fill == VL_INIT_NORMAL ? (float)(0.02 * vl_rng_normal(&iw->rng))
           : fill == VL_INIT_ONE  ? 1.0f
                                  : 0.0f;
  iw->rc = vl_st_writer_add(iw->w, name, VL_F32, ndim, shape, d);
  free(d);
}

int vl_train_init_save(vl_train_init *iw, const char *dir) {
  int rc = iw->rc;
  if (!rc) rc = vl_st_writer_set_metadata(iw->w, "format", "pt");
  if (!rc) rc = vl_st_writer_set_metadata(iw->w, "vlens_step", "0");
  char path[4096];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  if (!rc) rc = vl_st_writer_save(iw->w, path);
  vl_st_writer_free(iw->w);
  iw->w = NULL;
  return rc;
}

/* ---- the options both trainers have ------------------------------------- */

int vl_train_check_schedule(const vl_train_schedule *s, const char *who) {
  if (s->steps <= 0 || s->batch <= 0)
    return vl_error(VL_ERR_INVALID, "%s: --steps and --batch must be positive", who);
  if (!(s->lr > 0) || !(s->lr < 10) || !(s->weight_decay >= 0) || !(s->clip >= 0) ||
      !(s->min_lr_ratio >= 0 && s->min_lr_ratio <= 1))
    return vl_error(VL_ERR_INVALID,
                    "%s: need 0 < lr < 10, weight decay >= 0, clip >= 0, min lr ratio in [0, 1]",
                    who);
  if (s->warmup > s->steps)
    return vl_error(VL_ERR_INVALID, "%s: --warmup %lld exceeds --steps %lld", who,
                    (long long)s->warmup, (long long)s->steps);
  return VL_OK;
}

cJSON *vl_train_schedule_json(const vl_train_schedule *s) {
  cJSON *j = cJSON_CreateObject();
  char seed[32];
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed);
  cJSON_AddStringToObject(j, "config", s->config);
  cJSON_AddNumberToObject(j, "steps", (double)s->steps);
  cJSON_AddNumberToObject(j, "batch", (double)s->batch);
  cJSON_AddNumberToObject(j, "warmup", (double)s->warmup);
  cJSON_AddNumberToObject(j, "lr", s->lr);
  cJSON_AddNumberToObject(j, "min_lr_ratio", s->min_lr_ratio);
  cJSON_AddNumberToObject(j, "weight_decay", s->weight_decay);
  cJSON_AddNumberToObject(j, "clip", s->clip);
  cJSON_AddStringToObject(j, "seed", seed);
  return j;
}

cJSON *vl_train_schedule_parse(const char *text, const char *what,
                               const char *(*config_name)(const char *), vl_train_schedule *s) {
  cJSON *j = vl_json_parse(text, strlen(text), what);
  if (!j) return NULL;
  const char *cfg = config_name(vl_json_str(j, "config", ""));
  const char *seed = vl_json_str(j, "seed", NULL);
  s->steps = vl_json_int(j, "steps", 0);
  s->batch = vl_json_int(j, "batch", 0);
  if (!cfg || !seed || s->steps <= 0 || s->batch <= 0) {
    cJSON_Delete(j);
    vl_error(VL_ERR_FORMAT, "%s: training options are incomplete", what);
    return NULL;
  }
  s->config = cfg;
  s->warmup = vl_json_int(j, "warmup", 0);
  s->lr = vl_json_float(j, "lr", 0);
  s->min_lr_ratio = vl_json_float(j, "min_lr_ratio", 0);
  s->weight_decay = vl_json_float(j, "weight_decay", 0);
  s->clip = vl_json_float(j, "clip", 0);
  s->seed = strtoull(seed, NULL, 10);
  return j;
}

/* ---- the optimizer ------------------------------------------------------ */

static int load_moments(vl_adamw *opt, const vl_safetensors *st) {
  const char *what = vl_st_name(st);
  for (int64_t i = 0; i < opt->n; i++) {
    const vl_tensor *p = opt->params[i];
    char nm[300];
    for (int k = 0; k < 2; k++) {
      snprintf(nm, sizeof nm, "%s.%s", k ? "exp_avg_sq" : "exp_avg", p->name);
      const vl_st_tensor *s = vl_st_find(st, nm);
      if (!s) return vl_last_error_code();
      if (s->dtype != VL_F32 || vl_st_numel(s) != p->numel)
        return vl_error(VL_ERR_FORMAT, "%s: tensor '%s' does not match the model", what, nm);
      memcpy(k ? opt->v[i] : opt->m[i], s->data, (size_t)p->numel * sizeof(float));
    }
  }
  return VL_OK;
}

vl_adamw *vl_train_optimizer(vl_tensor *const *params, int64_t n, double weight_decay,
                             bool (*decays)(const vl_tensor *p, const void *user), const void *user,
                             const vl_safetensors *from, int64_t step, const char *who) {
  bool *decay = malloc((size_t)n * sizeof *decay);
  if (!decay) {
    vl_error(VL_ERR_NOMEM, "%s: out of memory", who);
    return NULL;
  }
  for (int64_t i = 0; i < n; i++)
    decay[i] = decays(params[i], user);
  vl_adamw_cfg cfg = vl_adamw_default_cfg();
  cfg.weight_decay = (float)weight_decay;
  vl_adamw *opt = vl_adamw_new(params, decay, n, &cfg);
  free(decay);
  if (opt && from) {
    if (load_moments(opt, from)) {
      vl_adamw_free(opt);
      return NULL;
    }
    opt->step = step;
  }
  return opt;
}

int vl_train_backward(vl_ctx *c, size_t mark, vl_tensor *loss) {
  int rc = loss ? vl_backward(c, loss, NULL)
                : (vl_last_error_code() ? vl_last_error_code() : VL_ERR_NOMEM);
  vl_ctx_reset(c, mark);
  return rc;
}

int64_t vl_train_count_weights(vl_tensor *const *params, int64_t n) {
  int64_t total = 0;
  for (int64_t i = 0; i < n; i++)
    total += params[i]->numel;
  return total;
}

static int update(vl_adamw *opt, double clip, double lr, double loss, int64_t step,
                  const char *who) {
  const double norm = vl_clip_grad_norm(opt->params, opt->n, clip);
  if (!isfinite(norm) || !isfinite(loss))
    return vl_error(VL_ERR_INVALID,
                    "%s: step %lld: loss %g, gradient norm %g (diverged; lower --lr)", who,
                    (long long)step, loss, norm);
  return vl_adamw_step(opt, (float)lr);
}

int vl_train_loop_run(const vl_train_loop *L, int64_t *step, vl_train_loop_result *res) {
  const vl_train_schedule *sc = &L->sched;
  const int64_t end = L->stop_after > 0 && L->stop_after < sc->steps ? L->stop_after : sc->steps;
  vl_progress pr;
  vl_progress_start(&pr, L->who, end - *step);
  const double t0 = vl_now_seconds();
  const int64_t first = *step;
  *res = (vl_train_loop_result){0};
  int rc = VL_OK;
  while (*step < end && !rc) {
    const int64_t s = *step;
    const double lr = vl_lr_cosine(s, sc->steps, sc->warmup, sc->lr, sc->min_lr_ratio);
    vl_zero_param_grads(L->opt->params, L->opt->n);
    double loss = 0;
    rc = L->batch(L->user, s, &loss);
    if (rc || (rc = update(L->opt, sc->clip, lr, loss, s, L->who))) break;
    *step = s + 1;
    res->loss = loss;
    if (s == first) res->loss_first = loss;
    char text[160];
    L->stepped(L->user, *step - first, lr, vl_now_seconds() - t0, text, sizeof text);
    vl_progress_update(&pr, *step - first, text);
    if ((L->save_every > 0 && *step % L->save_every == 0) || *step == end) rc = L->save(L->user);
  }
  vl_progress_end(&pr);
  res->seconds = vl_now_seconds() - t0;
  return rc;
}

int vl_train_save_checkpoint(const vl_train_checkpoint *ck) {
  const vl_adamw *opt = ck->opt;
  char path[4096], stepbuf[32];
  snprintf(stepbuf, sizeof stepbuf, "%lld", (long long)ck->step);
  char *ojs = ck->opts ? cJSON_PrintUnformatted(ck->opts) : NULL;
  cJSON_Delete(ck->opts);
  vl_st_writer *mw = vl_st_writer_new(), *ow = vl_st_writer_new();
  int rc = (!ojs || !mw || !ow) ? vl_error(VL_ERR_NOMEM, "%s: out of memory", ck->who) : VL_OK;
  for (int64_t i = 0; i < opt->n && !rc; i++) {
    const vl_tensor *p = opt->params[i];
    int ndim = p->ndim;
    int64_t shape[VL_MAX_DIMS];
    memcpy(shape, p->shape, sizeof shape);
    if (ck->saved_shape) ck->saved_shape(ck->user, p, &ndim, shape);
    char nm[300];
    rc = vl_st_writer_add(mw, p->name, VL_F32, ndim, shape, p->data);
    snprintf(nm, sizeof nm, "exp_avg.%s", p->name);
    if (!rc) rc = vl_st_writer_add(ow, nm, VL_F32, ndim, shape, opt->m[i]);
    snprintf(nm, sizeof nm, "exp_avg_sq.%s", p->name);
    if (!rc) rc = vl_st_writer_add(ow, nm, VL_F32, ndim, shape, opt->v[i]);
  }
  if (!rc) rc = vl_st_writer_set_metadata(mw, "format", "pt");
  if (!rc) rc = vl_st_writer_set_metadata(mw, "vlens_step", stepbuf);
  if (!rc) rc = vl_st_writer_set_metadata(ow, "vlens_step", stepbuf);
  if (!rc) rc = vl_st_writer_set_metadata(ow, ck->opts_key, ojs);
  if (!rc && ck->extra_key) rc = vl_st_writer_set_metadata(ow, ck->extra_key, ck->extra_value);
  snprintf(path, sizeof path, "%s/optimizer.safetensors", ck->out_dir);
  if (!rc) rc = vl_st_writer_save(ow, path);
  snprintf(path, sizeof path, "%s/model.safetensors", ck->out_dir);
  if (!rc) rc = vl_st_writer_save(mw, path);
  vl_st_writer_free(mw);
  vl_st_writer_free(ow);
  free(ojs);
  return rc ? vl_error_context("%s: checkpoint at step %lld", ck->who, (long long)ck->step) : VL_OK;
}

/* ---- starting from a trained model ------------------------------------- */

int vl_train_warm_start(const char *dir, const char *src, const char *who, vl_warm_hook hook,
                        void *user, int64_t *copied) {
  char pn[4096], po[4096];
  snprintf(pn, sizeof pn, "%s/model.safetensors", dir);
  snprintf(po, sizeof po, "%s/model.safetensors", src);
  vl_safetensors *sn = vl_st_open(pn), *so = sn ? vl_st_open(po) : NULL;
  vl_st_writer *w = so ? vl_st_writer_new() : NULL;
  int rc = w ? VL_OK : vl_last_error_code() ? vl_last_error_code() : VL_ERR_NOMEM;
  int64_t n_copied = 0;
  for (size_t i = 0; !rc && i < vl_st_count(sn); i++) {
    const vl_st_tensor *t = vl_st_at(sn, i), *s = vl_st_find(so, t->name);
    if (!s) {
      rc = vl_error(VL_ERR_FORMAT, "%s: no tensor '%s': not the same config as %s", po, t->name,
                    dir);
      break;
    }
    const int64_t n = vl_st_numel(t);
    float *d = malloc((size_t)n * sizeof *d);
    if (!d) {
      rc = vl_error(VL_ERR_NOMEM, "%s: out of memory", who);
      break;
    }
    /* the fresh values only matter to a hook that keeps some of them */
    const int h = hook && !(rc = vl_st_to_f32(t, d)) ? hook(t->name, t, s, d, user) : 0;
    if (h < 0) {
      rc = h;
    } else if (h == 0 && !rc) {
      int same = s->ndim == t->ndim;
      for (int k = 0; same && k < t->ndim; k++)
        same = s->shape[k] == t->shape[k];
      if (!same)
        rc = vl_error(VL_ERR_FORMAT, "%s: tensor '%s' has another shape than in %s", po, t->name,
                      dir);
      else
        rc = vl_st_to_f32(s, d);
      n_copied++;
    }
    if (!rc) rc = vl_st_writer_add(w, t->name, VL_F32, t->ndim, t->shape, d);
    free(d);
  }
  vl_st_close(so);
  vl_st_close(sn); /* before the file is replaced */
  if (!rc) rc = vl_st_writer_set_metadata(w, "format", "pt");
  if (!rc) rc = vl_st_writer_save(w, pn);
  vl_st_writer_free(w);
  if (copied) *copied = n_copied;
  return rc ? vl_error_context("%s: --init-from %s", who, src) : VL_OK;
}
