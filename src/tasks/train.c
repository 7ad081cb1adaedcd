/* `vlens train`: model initialisation, trainable loading, the training step,
 * checkpoints and resume (see train.h). */
#include "tasks/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "base/log.h"
#include "io/json.h"
#include "io/rng.h"
#include "io/safetensors.h"
#include "io/shapes_world.h"
#include "tasks/shapes_vocab.h"
#include "tasks/train_run.h"
#include "tensor/ops.h"
#include "tensor/optim.h"

void vl_train_default_opts(vl_train_opts *o) {
  memset(o, 0, sizeof *o);
  o->config = "small";
  o->steps = 2000;
  o->batch = 32;
  o->warmup = -1;
  o->save_every = 200;
  o->hypotheses = 3;
  for (int k = 0; k < 4; k++)
    o->object_weights[k] = 1;
  for (int k = 0; k < VL_TPL_N; k++)
    o->template_weights[k] = 1;
  o->max_objects = 4;
  o->curriculum = true;
  o->lr = 2e-3;
  o->weight_decay = 0.01;
  o->clip = 1.0;
}

/* ---- configs ------------------------------------------------------------ */

typedef struct {
  const char *name;
  int v_hidden, v_inter, v_layers, v_heads, patch;
  int t_hidden, t_inter, t_layers, t_heads, max_pos;
} arch;

static const arch k_archs[] = {
    {"small", 128, 512, 4, 4, 12, 128, 512, 3, 4, 48},
    {"tiny", 32, 64, 1, 2, 16, 32, 64, 1, 2, 48},
};

static const arch *find_arch(const char *name) {
  for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++)
    if (!strcmp(k_archs[i].name, name ? name : "small")) return &k_archs[i];
  vl_error(VL_ERR_INVALID, "train: unknown --config '%s' (small or tiny)", name ? name : "");
  return NULL;
}

/* ---- files -------------------------------------------------------------- */

static int write_folder_files(const char *dir, const arch *a, int patch, int vocab) {
  cJSON *j = cJSON_CreateObject(), *vc = cJSON_CreateObject(), *tc = cJSON_CreateObject();
  cJSON *ar = cJSON_CreateArray();
  cJSON_AddItemToArray(ar, cJSON_CreateString("BlipForConditionalGeneration"));
  cJSON_AddItemToObject(j, "architectures", ar);
  cJSON_AddStringToObject(j, "model_type", "blip");
  cJSON_AddNumberToObject(j, "initializer_range", 0.02);
  cJSON_AddBoolToObject(j, "tie_word_embeddings", 0);
  cJSON_AddStringToObject(j, "vlens_config", a->name);
  cJSON_AddStringToObject(vc, "model_type", "blip_vision_model");
  cJSON_AddNumberToObject(vc, "hidden_size", a->v_hidden);
  cJSON_AddNumberToObject(vc, "intermediate_size", a->v_inter);
  cJSON_AddNumberToObject(vc, "num_hidden_layers", a->v_layers);
  cJSON_AddNumberToObject(vc, "num_attention_heads", a->v_heads);
  cJSON_AddNumberToObject(vc, "image_size", VL_SHAPES_SIZE);
  cJSON_AddNumberToObject(vc, "patch_size", patch);
  cJSON_AddNumberToObject(vc, "num_channels", 3);
  cJSON_AddStringToObject(vc, "hidden_act", "gelu");
  cJSON_AddNumberToObject(vc, "layer_norm_eps", 1e-5);
  cJSON_AddItemToObject(j, "vision_config", vc);
  cJSON_AddStringToObject(tc, "model_type", "blip_text_model");
  cJSON_AddNumberToObject(tc, "vocab_size", vocab);
  cJSON_AddNumberToObject(tc, "hidden_size", a->t_hidden);
  cJSON_AddNumberToObject(tc, "intermediate_size", a->t_inter);
  cJSON_AddNumberToObject(tc, "num_hidden_layers", a->t_layers);
  cJSON_AddNumberToObject(tc, "num_attention_heads", a->t_heads);
  cJSON_AddNumberToObject(tc, "max_position_embeddings", a->max_pos);
  cJSON_AddNumberToObject(tc, "encoder_hidden_size", a->v_hidden);
  cJSON_AddStringToObject(tc, "hidden_act", "gelu");
  cJSON_AddNumberToObject(tc, "layer_norm_eps", 1e-12);
  cJSON_AddNumberToObject(tc, "bos_token_id", VL_SV_DEC);
  cJSON_AddNumberToObject(tc, "pad_token_id", VL_SV_PAD);
  cJSON_AddNumberToObject(tc, "sep_token_id", VL_SV_SEP);
  cJSON_AddNumberToObject(tc, "eos_token_id", VL_SV_SEP);
  cJSON_AddBoolToObject(tc, "tie_word_embeddings", 0);
  cJSON_AddItemToObject(j, "text_config", tc);
  int rc = vl_train_write_json(dir, "config.json", j, "train");
  if (rc) return rc;
  char pre[1024];
  snprintf(pre, sizeof pre,
           "{\n  \"image_processor_type\": \"BlipImageProcessor\",\n"
           "  \"processor_class\": \"BlipProcessor\",\n  \"do_convert_rgb\": true,\n"
           "  \"do_resize\": true,\n  \"size\": {\"height\": %d, \"width\": %d},\n"
           "  \"resample\": 3,\n  \"do_rescale\": true,\n"
           "  \"rescale_factor\": 0.00392156862745098,\n  \"do_normalize\": true,\n"
           "  \"image_mean\": [0.48145466, 0.4578275, 0.40821073],\n"
           "  \"image_std\": [0.26862954, 0.26130258, 0.27577711]\n}\n",
           VL_SHAPES_SIZE, VL_SHAPES_SIZE);
  rc = vl_train_write_text(dir, "preprocessor_config.json", pre);
  /* generate()'s default max_length of 20 tokens would cut every 4-object
   * caption ([DEC] + 20 words and marks + [SEP]) */
  char gen[256];
  snprintf(gen, sizeof gen,
           "{\n  \"max_length\": %d,\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n"
           "  \"pad_token_id\": %d\n}\n",
           VL_TRAIN_GEN_MAX_LENGTH, VL_SV_DEC, VL_SV_SEP, VL_SV_PAD);
  if (!rc) rc = vl_train_write_text(dir, "generation_config.json", gen);
  return rc ? rc : vl_shapes_vocab_write(dir);
}

/* ---- initialisation ----------------------------------------------------- */

/* ViT position table (1, 1 + g*g, D) initialised with MAE's fixed 2-D sine-cosine code
 * (first half of the channels encodes the row, second half the column; class token 0),
 * scaled to the patch embedding's initial magnitude. A 0.02 normal draw starts the model
 * with almost no position signal, and where objects sit is what captions are ordered by. */
static void add_pos2d(vl_train_init *iw, int64_t g, int64_t D, const char *name) {
  if (iw->rc) return;
  const int64_t n = (1 + g * g) * D, quarter = D / 4;
  float *d = calloc((size_t)n, sizeof *d);
  if (!d) {
    iw->rc = vl_error(VL_ERR_NOMEM, "train: out of memory");
    return;
  }
  for (int64_t y = 0; y < g; y++)
    for (int64_t x = 0; x < g; x++) {
      float *row = d + (1 + y * g + x) * D;
      for (int64_t k = 0; k < quarter; k++) {
        const double omega = pow(10000.0, -(double)k / (double)quarter);
        row[k] = (float)(0.3 * sin(y * omega));
        row[quarter + k] = (float)(0.3 * cos(y * omega));
        row[2 * quarter + k] = (float)(0.3 * sin(x * omega));
        row[3 * quarter + k] = (float)(0.3 * cos(x * omega));
      }
    }
  iw->rc = vl_st_writer_add(iw->w, name, VL_F32, 3, ((int64_t[]){1, 1 + g * g, D}), d);
  free(d);
}

#define S1(a) ((int64_t[]){(a)})
#define S2(a, b) ((int64_t[]){(a), (b)})
#define LIN(iw, o, i, pre, ...)                                                                    \
  do {                                                                                             \
    vl_train_init_add(iw, VL_INIT_NORMAL, 2, S2(o, i), pre ".weight", __VA_ARGS__);                \
    vl_train_init_add(iw, VL_INIT_ZERO, 1, S1(o), pre ".bias", __VA_ARGS__);                       \
  } while (0)
#define LN(iw, d, pre, ...)                                                                        \
  do {                                                                                             \
    vl_train_init_add(iw, VL_INIT_ONE, 1, S1(d), pre ".weight", __VA_ARGS__);                      \
    vl_train_init_add(iw, VL_INIT_ZERO, 1, S1(d), pre ".bias", __VA_ARGS__);                       \
  } while (0)

static void init_bert_attn(vl_train_init *iw, const arch *a, int l, const char *which, int kv) {
  const int64_t C = a->t_hidden;
  const char *p = "text_decoder.bert.encoder.layer";
  LIN(iw, C, C, "%s.%d.%s.self.query", p, l, which);
  LIN(iw, C, kv, "%s.%d.%s.self.key", p, l, which);
  LIN(iw, C, kv, "%s.%d.%s.self.value", p, l, which);
  LIN(iw, C, C, "%s.%d.%s.output.dense", p, l, which);
  LN(iw, C, "%s.%d.%s.output.LayerNorm", p, l, which);
}

int vl_train_init_model(const char *dir, const char *config, int patch, uint64_t seed) {
  const arch *a = find_arch(config);
  if (!a) return VL_ERR_INVALID;
  if (patch <= 0) patch = a->patch;
  if (patch > VL_SHAPES_SIZE || VL_SHAPES_SIZE % patch)
    return vl_error(VL_ERR_INVALID, "train: --patch %d must divide the image size %d", patch,
                    VL_SHAPES_SIZE);
  int rc = vl_train_mkdirs(dir, "train");
  if (rc) return rc;
  int vocab = 0;
  vl_shapes_vocab(&vocab);
  if ((rc = write_folder_files(dir, a, patch, vocab))) return rc;
  vl_train_init iw;
  if ((rc = vl_train_init_begin(&iw, seed, 0x696e6974 /* "init" */, "train"))) return rc;
  const int64_t D = a->v_hidden, F = a->v_inter;
  const char *v = "vision_model";
  vl_train_init_add(&iw, VL_INIT_NORMAL, 3, ((int64_t[]){1, 1, D}), "%s.embeddings.class_embedding",
                    v);
  vl_train_init_add(&iw, VL_INIT_NORMAL, 4, ((int64_t[]){D, 3, patch, patch}),
                    "%s.embeddings.patch_embedding.weight", v);
  vl_train_init_add(&iw, VL_INIT_ZERO, 1, S1(D), "%s.embeddings.patch_embedding.bias", v);
  add_pos2d(&iw, VL_SHAPES_SIZE / patch, D, "vision_model.embeddings.position_embedding");
  for (int l = 0; l < a->v_layers; l++) {
    LIN(&iw, 3 * D, D, "%s.encoder.layers.%d.self_attn.qkv", v, l);
    LIN(&iw, D, D, "%s.encoder.layers.%d.self_attn.projection", v, l);
    LN(&iw, D, "%s.encoder.layers.%d.layer_norm1", v, l);
    LIN(&iw, F, D, "%s.encoder.layers.%d.mlp.fc1", v, l);
    LIN(&iw, D, F, "%s.encoder.layers.%d.mlp.fc2", v, l);
    LN(&iw, D, "%s.encoder.layers.%d.layer_norm2", v, l);
  }
  LN(&iw, D, "%s.post_layernorm", v);
  const int64_t C = a->t_hidden, TF = a->t_inter, V = vocab;
  const char *t = "text_decoder.bert";
  vl_train_init_add(&iw, VL_INIT_NORMAL, 2, S2(V, C), "%s.embeddings.word_embeddings.weight", t);
  vl_train_init_add(&iw, VL_INIT_NORMAL, 2, S2(a->max_pos, C),
                    "%s.embeddings.position_embeddings.weight", t);
  LN(&iw, C, "%s.embeddings.LayerNorm", t);
  for (int l = 0; l < a->t_layers; l++) {
    init_bert_attn(&iw, a, l, "attention", (int)C);
    init_bert_attn(&iw, a, l, "crossattention", (int)D);
    LIN(&iw, TF, C, "%s.encoder.layer.%d.intermediate.dense", t, l);
    LIN(&iw, C, TF, "%s.encoder.layer.%d.output.dense", t, l);
    LN(&iw, C, "%s.encoder.layer.%d.output.LayerNorm", t, l);
  }
  const char *h = "text_decoder.cls.predictions";
  LIN(&iw, C, C, "%s.transform.dense", h);
  LN(&iw, C, "%s.transform.LayerNorm", h);
  vl_train_init_add(&iw, VL_INIT_NORMAL, 2, S2(V, C), "%s.decoder.weight", h);
  vl_train_init_add(&iw, VL_INIT_ZERO, 1, S1(V), "%s.bias", h);
  return vl_train_init_save(&iw, dir);
}

/* ---- trainable loading -------------------------------------------------- */

vl_blip *vl_train_load_blip(const char *dir, vl_tensor ***params, int64_t *n_params) {
  *params = NULL;
  *n_params = 0;
  vl_blip *m = vl_blip_load_ex(dir, true);
  if (!m) return NULL;
  if (m->kind != VL_BLIP_CAPTION) {
    vl_error(VL_ERR_UNSUPPORTED, "%s/config.json: training needs BlipForConditionalGeneration",
             dir);
  } else if (!m->tok) {
    vl_error(VL_ERR_NOTFOUND, "%s: training needs the tokenizer (vocab.txt)", dir);
  } else if (!vl_blip_params(m, params, n_params)) {
    return m;
  }
  vl_blip_free(m);
  return NULL;
}

/* ---- the training step -------------------------------------------------- */

/* Pixel values of the n scenes, (n, 3, H, W). */
static vl_tensor *batch_pixels(vl_ctx *c, const vl_blip *m, const vl_train_sample *s, int64_t n) {
  const int64_t S = m->vcfg.image_size, one = 3 * S * S;
  int64_t shape[4] = {n, 3, S, S};
  vl_tensor *px = vl_new_uninit(c, VL_F32, 4, shape);
  for (int64_t b = 0; b < n && px; b++) {
    size_t mark = vl_ctx_mark(c);
    vl_tensor *p = vl_blip_pixels(c, m, s[b].image, NULL);
    if (!p) return NULL;
    if (p->numel != one) {
      vl_error(VL_ERR_INVALID, "train: scene %lld preprocesses to %lld values, expected %lld",
               (long long)b, (long long)p->numel, (long long)one);
      return NULL;
    }
    memcpy(vl_f32(px) + b * one, p->data, (size_t)one * sizeof(float));
    vl_ctx_reset(c, mark);
  }
  return px;
}

/* The texts of one kind (captions: G = 1; hypotheses: G = most per image,
 * a sample with fewer gets 1-token filler texts without loss), padded to
 * their longest, through the decoder against img; returns the hidden rows of
 * the loss positions (every caption position but the last, the answer
 * position of each hypothesis) and fills tg / w (target, -weight) for them
 * from *r on. */
static vl_tensor *text_rows(vl_ctx *c, const vl_blip *m, const vl_train_sample *s, int64_t n,
                            vl_tensor *img, bool caps, int G, int64_t *tg, float *w, int64_t *r) {
  int64_t T = 1, R = 0;
  for (int64_t b = 0; b < n; b++)
    for (int g = 0; g < (caps ? 1 : s[b].n_hyp); g++) {
      const int64_t len = caps ? s[b].cap_n : s[b].hyp_n[g];
      T = len > T ? len : T;
      R += caps ? len - 1 : 1;
    }
  const int64_t Bt = n * G;
  int64_t sid[2] = {Bt, T}, sr[1] = {R};
  vl_tensor *ids = vl_new_uninit(c, VL_I64, 2, sid);
  vl_tensor *rows = vl_new_uninit(c, VL_I64, 1, sr);
  if (!ids || !rows) return NULL;
  int64_t *id = ids->data, *rw = rows->data, k = 0;
  for (int64_t b = 0; b < n; b++) {
    for (int g = 0; g < G; g++) {
      const int64_t t = b * G + g;
      const int64_t *src = caps ? s[b].cap : g < s[b].n_hyp ? s[b].hyp[g] : NULL;
      const int64_t len = caps ? s[b].cap_n : src ? s[b].hyp_n[g] : 1;
      for (int64_t i = 0; i < T; i++)
        id[t * T + i] = src && i < len ? src[i] : m->tcfg.pad;
      if (!src) {
        id[t * T] = m->tcfg.bos;
        continue;
      }
      const float wk = caps ? 1.0f / (float)((len - 1) * n) : 1.0f / (float)(s[b].n_hyp * n);
      for (int64_t i = caps ? 0 : len - 2; i < len - 1; i++, k++, (*r)++) {
        rw[k] = t * T + i;
        tg[*r] = src[i + 1];
        w[*r] = -wk;
      }
    }
  }
  vl_tensor *h = vl_blip_text_forward_batch(c, m, ids, NULL, img, true);
  int64_t s2[2] = {Bt * T, m->tcfg.hidden};
  return vl_gather_rows(c, vl_reshape(c, h, 2, s2), rows);
}

/* One vision pass over the n images; one decoder pass over all captions and
 * one over all hypotheses, each padded to its own longest text (captions
 * vary more, so sharing one length would pad more); the loss rows are
 * gathered before the LM head. Each row's cross-entropy is weighted so that
 * the sum is the mean over images of (mean caption CE + mean answer CE), as
 * per-image passes would give. */
int vl_train_batch(vl_ctx *c, const vl_blip *m, const vl_train_sample *s, int64_t n,
                   vl_train_stats *st) {
  if (n < 1) return vl_error(VL_ERR_INVALID, "train: empty batch");
  int K = 0;
  int64_t R = 0, Rc = 0;
  for (int64_t b = 0; b < n; b++) {
    if (s[b].cap_n < 2)
      return vl_error(VL_ERR_INVALID, "train: sample %lld has no caption", (long long)b);
    K = s[b].n_hyp > K ? s[b].n_hyp : K;
    Rc += s[b].cap_n - 1;
    R += s[b].cap_n - 1 + s[b].n_hyp;
    for (int k = 0; k < s[b].n_hyp; k++)
      if (s[b].hyp_n[k] < 2)
        return vl_error(VL_ERR_INVALID, "train: sample %lld hypothesis %d is empty", (long long)b,
                        k);
  }
  const int64_t V = m->tcfg.vocab;
  size_t mark = vl_ctx_mark(c);
  int64_t sr[1] = {R}, srw[2] = {R, 1};
  vl_tensor *tgt = vl_new_uninit(c, VL_I64, 1, sr); /* target id per loss row */
  vl_tensor *wt = vl_new_uninit(c, VL_F32, 2, srw); /* -weight per loss row */
  vl_tensor *pick = vl_new_uninit(c, VL_I64, 1, sr);
  if (!tgt || !wt || !pick) goto fail;
  int64_t *tg = tgt->data, r = 0;
  vl_tensor *img = vl_vit_forward(c, &m->vision, batch_pixels(c, m, s, n), NULL);
  vl_tensor *sel = text_rows(c, m, s, n, img, true, 1, tg, vl_f32(wt), &r);
  if (K > 0) {
    vl_tensor *parts[2] = {sel, text_rows(c, m, s, n, img, false, K, tg, vl_f32(wt), &r)};
    sel = parts[0] && parts[1] ? vl_concat(c, 2, parts, 0) : NULL;
  }
  vl_tensor *lg = vl_blip_lm_head(c, m, sel);
  vl_tensor *lp = vl_log_softmax(c, lg);
  if (!lp) goto fail;
  /* log p[r, tgt[r]]: row r * V + tgt[r] of lp viewed (R * V, 1) */
  for (int64_t i = 0; i < R; i++) {
    if (tg[i] < 0 || tg[i] >= V) {
      vl_error(VL_ERR_INVALID, "train: target id %lld outside the vocabulary", (long long)tg[i]);
      goto fail;
    }
    ((int64_t *)pick->data)[i] = i * V + tg[i];
  }
  int64_t s1[2] = {R * V, 1};
  vl_tensor *loss = vl_sum_all(c, vl_mul(c, vl_gather_rows(c, vl_reshape(c, lp, 2, s1), pick), wt));
  if (!loss) goto fail;
  if (st) {
    st->loss += (double)vl_f32(loss)[0];
    for (int64_t i = 0; i < R; i++) {
      const bool ok = vl_train_argmax(vl_f32(lg) + i * V, V) == tg[i];
      if (i < Rc) {
        st->cap_ok += ok;
        st->cap_n++;
      } else {
        st->ans_ok += ok;
        st->ans_n++;
      }
    }
  }
  return vl_train_backward(c, mark, loss);
fail:
  return vl_train_backward(c, mark, NULL);
}

/* ---- state, checkpoints ------------------------------------------------- */

typedef struct {
  vl_train_opts o;
  vl_blip *m;
  vl_tensor **params;
  int64_t n_params;
  vl_adamw *opt;
  int64_t step;
  vl_ctx *c;
  vl_train_sample *smp; /* a batch's */
  vl_train_stats st;    /* the last step's */
  double ema_cap, ema_ans;
} trainer;

static cJSON *opts_json(const vl_train_opts *o) {
  cJSON *j = vl_train_schedule_json(&VL_TRAIN_SCHEDULE_OF(o));
  cJSON_AddNumberToObject(j, "patch", o->patch);
  cJSON_AddNumberToObject(j, "hypotheses", o->hypotheses);
  cJSON_AddItemToObject(j, "object_weights", cJSON_CreateDoubleArray(o->object_weights, 4));
  cJSON_AddItemToObject(j, "template_weights",
                        cJSON_CreateDoubleArray(o->template_weights, VL_TPL_N));
  cJSON_AddNumberToObject(j, "max_objects", o->max_objects);
  cJSON_AddBoolToObject(j, "curriculum", o->curriculum);
  cJSON_AddBoolToObject(j, "decay_embeddings", o->decay_embeddings);
  return j;
}

static const char *arch_name(const char *config) {
  const arch *a = find_arch(config);
  return a ? a->name : NULL;
}

/* n weights saved under key; 1 for each one missing (runs saved before the
 * option existed). */
static void saved_weights(const cJSON *j, const char *key, double *w, int n) {
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, key);
  for (int k = 0; k < n; k++) {
    const cJSON *v = cJSON_GetArrayItem(a, k);
    w[k] = cJSON_IsNumber(v) ? v->valuedouble : 1;
  }
}

/* The saved options; out->config points into static storage. */
static int opts_parse(const char *text, const char *what, void *opts) {
  vl_train_opts *o = opts;
  vl_train_schedule s;
  cJSON *j = vl_train_schedule_parse(text, what, arch_name, &s);
  if (!j) return vl_last_error_code();
  VL_TRAIN_SCHEDULE_TO(o, s);
  o->patch = (int)vl_json_int(j, "patch", 0);
  o->hypotheses = (int)vl_json_int(j, "hypotheses", 3);
  saved_weights(j, "object_weights", o->object_weights, 4);
  saved_weights(j, "template_weights", o->template_weights, VL_TPL_N);
  o->max_objects = (int)vl_json_int(j, "max_objects", 4);
  o->curriculum = vl_json_bool(j, "curriculum", 1);
  o->decay_embeddings = vl_json_bool(j, "decay_embeddings", 0);
  cJSON_Delete(j);
  return VL_OK;
}

static void saved_shape(const void *m, const vl_tensor *p, int *ndim, int64_t *shape) {
  vl_blip_param_shape(m, p, ndim, shape);
}

static int save_checkpoint(void *u) {
  const trainer *t = u;
  /* The data position (informative: it is step * batch by construction). */
  char next[32];
  snprintf(next, sizeof next, "%lld", (long long)(t->step * t->o.batch));
  const vl_train_checkpoint ck = {.out_dir = t->o.out_dir,
                                  .who = "train",
                                  .opt = t->opt,
                                  .step = t->step,
                                  .opts_key = "vlens_train_opts",
                                  .opts = opts_json(&t->o),
                                  .extra_key = "vlens_next_scene",
                                  .extra_value = next,
                                  .saved_shape = saved_shape,
                                  .user = t->m};
  return vl_train_save_checkpoint(&ck);
}

static bool is_embedding(const char *name) {
  return strstr(name, "embeddings.word_embeddings") || strstr(name, "position_embedding") ||
         strstr(name, "class_embedding");
}

static bool decays(const vl_tensor *p, const void *o) {
  return p->ndim >= 2 && (((const vl_train_opts *)o)->decay_embeddings || !is_embedding(p->name));
}

/* ---- the loop ----------------------------------------------------------- */

static int check_opts(const vl_train_opts *o) {
  if (!o->out_dir || !*o->out_dir) return vl_error(VL_ERR_INVALID, "train: --out DIR is required");
  if (o->resume) return VL_OK; /* the rest comes from the checkpoint */
  int rc = vl_train_check_schedule(&VL_TRAIN_SCHEDULE_OF(o), "train");
  if (rc) return rc;
  if (o->hypotheses < 0 || o->hypotheses > VL_TRAIN_MAX_K)
    return vl_error(VL_ERR_INVALID, "train: --hypotheses %d (0..%d)", o->hypotheses,
                    VL_TRAIN_MAX_K);
  if (o->max_objects < 1 || o->max_objects > VL_SHAPES_MAX_OBJECTS)
    return vl_error(VL_ERR_INVALID, "train: --max-objects %d (1..4)", o->max_objects);
  double weighted = 0;
  for (int k = 0; k < o->max_objects; k++) {
    if (!(o->object_weights[k] >= 0))
      return vl_error(VL_ERR_INVALID, "train: --object-weights: negative weight");
    weighted += o->object_weights[k];
  }
  if (weighted <= 0)
    return vl_error(VL_ERR_INVALID,
                    "train: --object-weights give no weight to 1..--max-objects %d objects",
                    o->max_objects);
  for (int k = 0; k < VL_TPL_N; k++)
    if (!(o->template_weights[k] >= 0 && o->template_weights[k] <= 1e6))
      return vl_error(VL_ERR_INVALID, "train: --template-weights: weight %d not within 0..1e6", k);
  return find_arch(o->config) ? VL_OK : VL_ERR_INVALID;
}

static int step_batch(void *u, int64_t s, double *loss) {
  trainer *t = u;
  t->st = (vl_train_stats){0};
  int rc = VL_OK;
  int64_t made = 0;
  for (; made < t->o.batch && !rc; made++) {
    const int64_t index = s * t->o.batch + made;
    int lo, hi;
    vl_train_object_range(&t->o, s, index, &lo, &hi);
    rc = vl_train_sample_make(t->m, t->o.seed, index, lo, hi, t->o.hypotheses,
                              t->o.template_weights, &t->smp[made]);
  }
  if (!rc) rc = vl_train_batch(t->c, t->m, t->smp, t->o.batch, &t->st);
  for (int64_t b = 0; b < made; b++)
    vl_train_sample_free(&t->smp[b]);
  *loss = t->st.loss;
  return rc;
}

static void stepped(void *u, int64_t done, double lr, double el, char *text, size_t size) {
  trainer *t = u;
  const vl_train_stats *st = &t->st;
  const double ca = st->cap_n ? (double)st->cap_ok / (double)st->cap_n : 0;
  const double aa = st->ans_n ? (double)st->ans_ok / (double)st->ans_n : 0;
  t->ema_cap = done > 1 ? 0.95 * t->ema_cap + 0.05 * ca : ca;
  t->ema_ans = done > 1 ? 0.95 * t->ema_ans + 0.05 * aa : aa;
  snprintf(text, size, "step %lld loss %.4f cap %.3f ans %.3f lr %.2e %.1f img/s",
           (long long)t->step, st->loss, t->ema_cap, t->ema_ans, lr,
           el > 0 ? (double)done * (double)t->o.batch / el : 0.0);
}

int vl_train(const vl_train_opts *oin, vl_train_report *rep) {
  int rc = check_opts(oin);
  if (rc) return rc;
  trainer t = {.o = *oin};
  vl_safetensors *ost = NULL;
  if (oin->resume) {
    if ((rc = vl_train_open_state(t.o.out_dir, "train", "vlens_train_opts", opts_parse, &t.o, &ost,
                                  &t.step)))
      return rc;
    if (oin->resume_steps > 0) {
      if (oin->resume_steps <= t.step || oin->resume_steps < t.o.warmup) {
        vl_st_close(ost);
        return vl_error(VL_ERR_INVALID,
                        "train: --steps %lld on resume must exceed the step reached (%lld) and "
                        "the warm-up (%lld)",
                        (long long)oin->resume_steps, (long long)t.step, (long long)t.o.warmup);
      }
      t.o.steps = oin->resume_steps;
    }
    vl_log("train: resuming %s at step %lld of %lld", t.o.out_dir, (long long)t.step,
           (long long)t.o.steps);
  } else {
    if ((rc = vl_train_check_new_run(oin->out_dir, "train"))) return rc;
    if (t.o.warmup < 0) t.o.warmup = t.o.steps / 20;
    if ((rc = vl_train_init_model(t.o.out_dir, t.o.config, t.o.patch, t.o.seed))) return rc;
    int64_t copied = 0;
    if (t.o.init_from) {
      if ((rc = vl_train_warm_start(t.o.out_dir, t.o.init_from, "train", NULL, NULL, &copied)))
        return rc;
      vl_log("train: started from %s: %lld tensors copied", t.o.init_from, (long long)copied);
    }
  }
  t.m = vl_train_load_blip(t.o.out_dir, &t.params, &t.n_params);
  if (!t.m || !(t.opt = vl_train_optimizer(t.params, t.n_params, t.o.weight_decay, decays, &t.o,
                                           ost, t.step, "train"))) {
    rc = vl_last_error_code();
    goto done;
  }
  if (!(t.c = vl_ctx_new())) {
    rc = vl_error(VL_ERR_NOMEM, "train: out of memory");
    goto done;
  }
  vl_ctx_set_recording(t.c, true);
  if (!(t.smp = calloc((size_t)t.o.batch, sizeof *t.smp))) {
    rc = vl_error(VL_ERR_NOMEM, "train: out of memory");
    goto done;
  }
  vl_log("train: %s BLIP, %lld parameters, %lld steps x %lld images, lr %g, out %s", t.o.config,
         (long long)vl_train_count_weights(t.params, t.n_params), (long long)t.o.steps,
         (long long)t.o.batch, t.o.lr, t.o.out_dir);
  const vl_train_loop loop = {.who = "train",
                              .sched = VL_TRAIN_SCHEDULE_OF(&t.o),
                              .stop_after = t.o.stop_after,
                              .save_every = t.o.save_every,
                              .opt = t.opt,
                              .user = &t,
                              .batch = step_batch,
                              .stepped = stepped,
                              .save = save_checkpoint};
  const int64_t first = t.step;
  vl_train_loop_result res;
  rc = vl_train_loop_run(&loop, &t.step, &res);
  if (rep) {
    rep->step = t.step;
    rep->loss = res.loss;
    rep->loss_first = res.loss_first;
    rep->caption_acc = t.ema_cap;
    rep->answer_acc = t.ema_ans;
    rep->images_per_s =
        res.seconds > 0 ? (double)(t.step - first) * (double)t.o.batch / res.seconds : 0;
  }
  if (!rc)
    vl_log("train: step %lld, loss %.4f, caption token acc %.3f, answer acc %.3f; saved in %s",
           (long long)t.step, res.loss, t.ema_cap, t.ema_ans, t.o.out_dir);
done:
  free(t.smp);
  vl_ctx_free(t.c);
  vl_adamw_free(t.opt);
  free(t.params);
  vl_blip_free(t.m);
  vl_st_close(ost);
  return rc;
}
