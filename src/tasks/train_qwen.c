/* `vlens train-llm`: tokenizer + model initialisation, trainable loading,
 * the training step, checkpoints, resume and evaluation (see train_qwen.h). */
#include "tasks/train_qwen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "base/log.h"
#include "io/json.h"
#include "io/rng.h"
#include "io/safetensors.h"
#include "io/shapes_describe.h"
#include "tasks/generate.h"
#include "tasks/train_run.h"
#include "tensor/ops.h"
#include "tensor/optim.h"
#include "tensor/quant.h"
#include "text/bpe_train.h"
#include "text/chat.h"
#include "text/enrich_prompt.h"
#include "text/metrics.h"
#include "text/reasoning.h"
#include "text/shapes_enrich.h"

void vl_train_llm_default_opts(vl_train_llm_opts *o) {
  memset(o, 0, sizeof *o);
  o->config = "small-untied";
  o->vocab_size = 2048;
  o->tok_scenes = 2000;
  o->steps = 3000;
  o->batch = 16;
  o->warmup = -1;
  o->save_every = 100;
  o->lr = 3e-3;
  o->min_lr_ratio = 0.1;
  o->weight_decay = 0.01;
  o->clip = 1.0;
  o->zh_share = 0.5;
}

/* ---- configs ------------------------------------------------------------ */

typedef struct {
  const char *name;
  int hidden, inter, layers, heads, kv_heads, head_dim, max_pos;
  bool untied; /* own lm_head.weight instead of the embedding */
} qarch;

static const qarch k_archs[] = {
    {"small", 128, 384, 4, 4, 2, 32, 1024, false},
    {"tiny", 32, 64, 1, 2, 1, 16, 1024, false},
    {"wide", 128, 384, 4, 8, 4, 32, 1024, false}, /* small with twice the heads */
    /* small with its own LM head: with tied embeddings, output tokens that
     * the context cannot yet tell apart (the colours) are pulled together
     * as inputs too */
    {"small-untied", 128, 384, 4, 4, 2, 32, 1024, true},
};

static const qarch *find_arch(const char *name) {
  for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++)
    if (!strcmp(k_archs[i].name, name ? name : "small")) return &k_archs[i];
  vl_error(VL_ERR_INVALID, "train-llm: unknown --config '%s' (small, small-untied, wide or tiny)",
           name ? name : "");
  return NULL;
}

/* ---- files -------------------------------------------------------------- */

static int32_t special_id(const vl_tokenizer *tok, const char *name, const char *dir) {
  int32_t id = vl_tokenizer_token_to_id(tok, name);
  if (id < 0) vl_error(VL_ERR_FORMAT, "%s/tokenizer.json: no %s token", dir, name);
  return id;
}

static int write_configs(const char *dir, const qarch *a, int64_t vocab, int32_t eot,
                         int32_t im_end) {
  cJSON *j = cJSON_CreateObject();
  cJSON *ar = cJSON_CreateArray();
  cJSON_AddItemToArray(ar, cJSON_CreateString("Qwen3ForCausalLM"));
  cJSON_AddItemToObject(j, "architectures", ar);
  cJSON_AddStringToObject(j, "model_type", "qwen3");
  cJSON_AddNumberToObject(j, "vocab_size", (double)vocab);
  cJSON_AddNumberToObject(j, "hidden_size", a->hidden);
  cJSON_AddNumberToObject(j, "intermediate_size", a->inter);
  cJSON_AddNumberToObject(j, "num_hidden_layers", a->layers);
  cJSON_AddNumberToObject(j, "num_attention_heads", a->heads);
  cJSON_AddNumberToObject(j, "num_key_value_heads", a->kv_heads);
  cJSON_AddNumberToObject(j, "head_dim", a->head_dim);
  cJSON_AddNumberToObject(j, "max_position_embeddings", a->max_pos);
  cJSON_AddNumberToObject(j, "rope_theta", 10000);
  cJSON_AddNumberToObject(j, "rms_norm_eps", 1e-6);
  cJSON_AddStringToObject(j, "hidden_act", "silu");
  cJSON_AddBoolToObject(j, "attention_bias", 0);
  cJSON_AddNumberToObject(j, "attention_dropout", 0);
  cJSON_AddBoolToObject(j, "tie_word_embeddings", !a->untied);
  cJSON_AddBoolToObject(j, "use_sliding_window", 0);
  cJSON_AddBoolToObject(j, "use_cache", 1);
  cJSON_AddNumberToObject(j, "initializer_range", 0.02);
  cJSON_AddStringToObject(j, "torch_dtype", "float32");
  cJSON_AddNumberToObject(j, "bos_token_id", eot);
  cJSON_AddNumberToObject(j, "eos_token_id", im_end);
  cJSON_AddStringToObject(j, "vlens_config", a->name);
  int rc = vl_train_write_json(dir, "config.json", j, "train-llm");
  if (rc) return rc;
  cJSON *g = cJSON_CreateObject();
  cJSON_AddNumberToObject(g, "bos_token_id", eot);
  cJSON *eos = cJSON_CreateArray();
  cJSON_AddItemToArray(eos, cJSON_CreateNumber(im_end));
  cJSON_AddItemToArray(eos, cJSON_CreateNumber(eot));
  cJSON_AddItemToObject(g, "eos_token_id", eos);
  cJSON_AddNumberToObject(g, "pad_token_id", eot);
  cJSON_AddBoolToObject(g, "do_sample", 0);
  return vl_train_write_json(dir, "generation_config.json", g, "train-llm");
}

/* ---- initialisation ----------------------------------------------------- */

/* normal(0, 0.02) matrices and vectors of ones (RMSNorm weights) */
#define MATRIX(iw, d0, d1, ...)                                                                    \
  vl_train_init_add(iw, VL_INIT_NORMAL, 2, (int64_t[]){(d0), (d1)}, __VA_ARGS__)
#define ONES(iw, d, ...) vl_train_init_add(iw, VL_INIT_ONE, 1, (int64_t[]){(d)}, __VA_ARGS__)

static int train_tokenizer(const char *dir, int vocab_size, int64_t scenes, int zh, uint64_t seed) {
  vl_bpe_options bo = vl_bpe_default_options();
  bo.vocab_size = vocab_size;
  vl_bpe_trainer *t = vl_bpe_trainer_new(&bo);
  if (!t) return vl_last_error_code();
  vl_log("train-llm: tokenizer corpus of %lld Shapes World scenes%s", (long long)scenes,
         zh ? " (English and Chinese)" : "");
  size_t len = 0;
  char *corpus = vl_shapes_enrich_corpus_lang(seed, scenes, zh, &len);
  int rc = corpus ? vl_bpe_trainer_feed(t, corpus, len) : vl_last_error_code();
  free(corpus);
  vl_bpe_model bm;
  memset(&bm, 0, sizeof bm);
  if (!rc) rc = vl_bpe_trainer_train(t, &bm);
  if (!rc) {
    vl_log("train-llm: BPE %d merges, vocabulary %d + %d special", bm.n_merges, bm.n_tokens,
           bm.n_special);
    rc = vl_bpe_save(&bm, dir);
  }
  vl_bpe_model_free(&bm);
  vl_bpe_trainer_free(t);
  return rc ? vl_error_context("train-llm: tokenizer") : VL_OK;
}

int vl_train_llm_init(const char *dir, const char *config, int vocab_size, int64_t tok_scenes,
                      int zh, uint64_t seed) {
  const qarch *a = find_arch(config);
  if (!a) return VL_ERR_INVALID;
  if (vocab_size < 262 || tok_scenes < 1)
    return vl_error(VL_ERR_INVALID,
                    "train-llm: need --vocab-size >= 262 (256 bytes + special tokens) and at "
                    "least one tokenizer scene");
  int rc = vl_train_mkdirs(dir, "train-llm");
  if (!rc) rc = train_tokenizer(dir, vocab_size, tok_scenes, zh, seed);
  if (rc) return rc;
  vl_tokenizer *tok = vl_tokenizer_load(dir);
  if (!tok) return vl_last_error_code();
  const int64_t V = vl_tokenizer_n_vocab(tok);
  const int32_t eot = special_id(tok, "<|endoftext|>", dir);
  const int32_t im_end = special_id(tok, "<|im_end|>", dir);
  vl_tokenizer_free(tok);
  if (eot < 0 || im_end < 0) return VL_ERR_FORMAT;
  if ((rc = write_configs(dir, a, V, eot, im_end))) return rc;
  vl_train_init iw;
  if ((rc = vl_train_init_begin(&iw, seed, 0x716e6974 /* "qnit" */, "train-llm"))) return rc;
  const int64_t C = a->hidden, F = a->inter, D = a->head_dim;
  const int64_t QD = a->heads * D, KD = a->kv_heads * D;
  const char *p = "model.layers";
  MATRIX(&iw, V, C, "model.embed_tokens.weight");
  for (int l = 0; l < a->layers; l++) {
    ONES(&iw, C, "%s.%d.input_layernorm.weight", p, l);
    ONES(&iw, C, "%s.%d.post_attention_layernorm.weight", p, l);
    MATRIX(&iw, QD, C, "%s.%d.self_attn.q_proj.weight", p, l);
    MATRIX(&iw, KD, C, "%s.%d.self_attn.k_proj.weight", p, l);
    MATRIX(&iw, KD, C, "%s.%d.self_attn.v_proj.weight", p, l);
    MATRIX(&iw, C, QD, "%s.%d.self_attn.o_proj.weight", p, l);
    ONES(&iw, D, "%s.%d.self_attn.q_norm.weight", p, l);
    ONES(&iw, D, "%s.%d.self_attn.k_norm.weight", p, l);
    MATRIX(&iw, F, C, "%s.%d.mlp.gate_proj.weight", p, l);
    MATRIX(&iw, F, C, "%s.%d.mlp.up_proj.weight", p, l);
    MATRIX(&iw, C, F, "%s.%d.mlp.down_proj.weight", p, l);
  }
  ONES(&iw, C, "model.norm.weight");
  if (a->untied) MATRIX(&iw, V, C, "lm_head.weight");
  return vl_train_init_save(&iw, dir);
}

/* ---- trainable loading -------------------------------------------------- */

static vl_tensor *trainable_copy(vl_ctx *c, vl_tensor *w) {
  vl_tensor *t = vl_clone_f32(c, w);
  if (!t) return NULL;
  t->name = w->name;
  t->requires_grad = true;
  return vl_grad(c, t) ? t : NULL;
}

vl_qwen_text *vl_train_llm_load(const char *dir, vl_tensor ***params, int64_t *n_params,
                                vl_tokenizer **tok) {
  *params = NULL;
  *n_params = 0;
  if (tok) *tok = NULL;
  vl_qwen_text *m = vl_qwen_text_load(dir);
  if (!m) return NULL;
  const bool tied = m->lm_head == m->embed;
  const int64_t cap = 3 + 15 * m->cfg.n_layers;
  vl_tensor ***slots = malloc((size_t)cap * sizeof *slots);
  vl_tensor **list = malloc((size_t)cap * sizeof *list);
  int64_t n = 0;
  if (!slots || !list) {
    vl_error(VL_ERR_NOMEM, "train-llm: out of memory");
    goto fail;
  }
  slots[n++] = &m->embed;
  for (int64_t l = 0; l < m->cfg.n_layers; l++) {
    vl_qwen_layer *L = &m->layers[l];
    vl_tensor **ls[] = {&L->ln1, &L->wq, &L->wk,     &L->wv,     &L->wo,  &L->bq,  &L->bk,
                        &L->bv,  &L->bo, &L->q_norm, &L->k_norm, &L->ln2, &L->gate};
    for (size_t i = 0; i < sizeof ls / sizeof *ls; i++)
      if (*ls[i]) slots[n++] = ls[i];
    slots[n++] = &L->up;
    slots[n++] = &L->down;
  }
  slots[n++] = &m->norm;
  if (!tied) slots[n++] = &m->lm_head;
  for (int64_t i = 0; i < n; i++) {
    if (!(*slots[i] = trainable_copy(m->wctx, *slots[i]))) goto fail;
    list[i] = *slots[i];
  }
  if (tied) m->lm_head = m->embed;
  free(slots);
  if (tok && !(*tok = vl_tokenizer_load(dir))) {
    free(list);
    vl_qwen_text_free(m);
    return NULL;
  }
  *params = list;
  *n_params = n;
  return m;
fail:
  free(slots);
  free(list);
  vl_qwen_text_free(m);
  return NULL;
}

/* ---- examples ----------------------------------------------------------- */

/* The prompt's length range, varied per example (a quarter each the enrich
 * default, 60-120 words / 100-200 characters, and the grammar's range, the
 * rest random; Chinese ranges in characters are the English ones x 1.5). */
static void word_range(uint64_t seed, int64_t index, int zh, int *lo, int *hi) {
  vl_rng r;
  vl_rng_seed(&r, seed, (uint64_t)index, 0x776f7264); /* "word" */
  const int64_t k = vl_rng_int(&r, 0, 3);
  if (k == 0) {
    *lo = zh ? 100 : 60, *hi = zh ? 200 : 120;
  } else if (k == 1) {
    *lo = zh ? VL_SHAPES_ENRICH_MIN_CHARS : VL_SHAPES_ENRICH_MIN_WORDS;
    *hi = zh ? VL_SHAPES_ENRICH_MAX_CHARS : VL_SHAPES_ENRICH_MAX_WORDS;
  } else {
    *lo = (int)vl_rng_int(&r, 5, 100);
    *hi = *lo + (int)vl_rng_int(&r, 10, 150);
    if (zh) *lo = *lo * 3 / 2, *hi = *hi * 3 / 2;
  }
}

vl_enrich_lang vl_llm_example_lang(uint64_t seed, int64_t index, double zh_share) {
  if (!(zh_share > 0)) return VL_ENRICH_EN; /* no draw: English-only runs as before */
  vl_rng r;
  vl_rng_seed(&r, seed, (uint64_t)index, 0x6c616e67); /* "lang" */
  return vl_rng_uniform(&r) < zh_share ? VL_ENRICH_ZH : VL_ENRICH_EN;
}

static int encode(const vl_tokenizer *tok, const char *text, int32_t **ids, size_t *n) {
  return vl_tokenizer_encode(tok, text, strlen(text), 0, ids, n);
}

/* The LLM prompt of `vlens enrich` for one caption, token ids. */
static int prompt_ids(const vl_tokenizer *tok, const char *caption, const vl_enrich_options *o,
                      int32_t **ids, size_t *n) {
  char *prompt = vl_enrich_chat_prompt(VL_CHAT_QWEN3, &caption, 1, o);
  if (!prompt) return vl_last_error_code();
  int rc = encode(tok, prompt, ids, n);
  free(prompt);
  return rc;
}

int vl_llm_sample_make(const vl_tokenizer *tok, uint64_t seed, int64_t index, vl_enrich_lang lang,
                       vl_llm_sample *s) {
  memset(s, 0, sizeof *s);
  const int32_t im_end = vl_tokenizer_token_to_id(tok, "<|im_end|>");
  if (im_end < 0) return vl_error(VL_ERR_FORMAT, "train-llm: the tokenizer has no <|im_end|>");
  vl_enrich_options o = vl_enrich_default_options();
  o.enable_thinking = 0;
  o.lang = lang;
  word_range(seed, index, lang == VL_ENRICH_ZH, &o.min_words, &o.max_words);
  char *user = NULL, *target = NULL, *caption = NULL;
  int rc = vl_shapes_enrich_pair(seed, index, &o, &user, &target, &caption);
  int32_t *p = NULL, *t = NULL;
  size_t np = 0, nt = 0;
  if (!rc) rc = prompt_ids(tok, caption, &o, &p, &np);
  if (!rc) rc = encode(tok, target, &t, &nt);
  if (!rc && !(s->ids = malloc((np + nt + 1) * sizeof *s->ids)))
    rc = vl_error(VL_ERR_NOMEM, "train-llm: out of memory");
  if (!rc) {
    memcpy(s->ids, p, np * sizeof *p);
    memcpy(s->ids + np, t, nt * sizeof *t);
    s->ids[np + nt] = im_end;
    s->n = (int64_t)(np + nt + 1);
    s->n_prompt = (int64_t)np;
  }
  free(p);
  free(t);
  free(user);
  free(target);
  free(caption);
  return rc ? vl_error_context("train-llm: example %lld", (long long)index) : VL_OK;
}

void vl_llm_sample_free(vl_llm_sample *s) {
  free(s->ids);
  memset(s, 0, sizeof *s);
}

/* ---- the training step -------------------------------------------------- */

int vl_train_llm_batch(vl_ctx *c, const vl_qwen_text *m, const vl_llm_sample *s, int64_t n,
                       int32_t pad, vl_llm_batch_stats *st) {
  if (n < 1) return vl_error(VL_ERR_INVALID, "train-llm: empty batch");
  int64_t T = 1, R = 0, real = 0;
  for (int64_t b = 0; b < n; b++) {
    if (s[b].n_prompt < 1 || s[b].n <= s[b].n_prompt)
      return vl_error(VL_ERR_INVALID, "train-llm: sample %lld has no prompt or no target",
                      (long long)b);
    if (s[b].n > m->cfg.max_pos)
      return vl_error(VL_ERR_LIMIT,
                      "train-llm: sample %lld has %lld tokens, more than the model's %lld "
                      "positions",
                      (long long)b, (long long)s[b].n, (long long)m->cfg.max_pos);
    T = s[b].n > T ? s[b].n : T;
    R += s[b].n - s[b].n_prompt;
    real += s[b].n;
  }
  const int64_t V = m->cfg.vocab;
  size_t mark = vl_ctx_mark(c);
  int64_t sid[2] = {n, T}, sr[1] = {R};
  vl_tensor *ids = vl_new_uninit(c, VL_I64, 2, sid);
  vl_tensor *rows = vl_new_uninit(c, VL_I64, 1, sr); /* hidden row per loss row */
  vl_tensor *tgt = vl_new_uninit(c, VL_I64, 1, sr);  /* target id per loss row */
  if (!ids || !rows || !tgt) goto fail;
  int64_t *id = ids->data, *rw = rows->data, *tg = tgt->data, r = 0;
  for (int64_t b = 0; b < n; b++) {
    for (int64_t i = 0; i < T; i++)
      id[b * T + i] = i < s[b].n ? s[b].ids[i] : pad;
    for (int64_t i = s[b].n_prompt - 1; i < s[b].n - 1; i++, r++) {
      rw[r] = b * T + i;
      tg[r] = s[b].ids[i + 1];
    }
  }
  const vl_qwen_fwd fo = {.skip_logits = true};
  vl_tensor *h = vl_qwen_text_forward(c, m, ids, &fo);
  int64_t s2[2] = {n * T, m->cfg.hidden};
  vl_tensor *lg =
      vl_linear_any(c, vl_gather_rows(c, vl_reshape(c, h, 2, s2), rows), m->lm_head, NULL);
  vl_tensor *loss = vl_cross_entropy(c, lg, tgt, -100);
  if (!loss) goto fail;
  if (st) {
    st->loss = (double)vl_f32(loss)[0];
    st->tokens = real;
    st->n = R;
    st->ok = 0;
    for (int64_t i = 0; i < R; i++)
      st->ok += vl_train_argmax(vl_f32(lg) + i * V, V) == tg[i];
  }
  return vl_train_backward(c, mark, loss);
fail:
  return vl_train_backward(c, mark, NULL);
}

/* ---- state, checkpoints ------------------------------------------------- */

typedef struct {
  vl_train_llm_opts o;
  vl_qwen_text *m;
  vl_tokenizer *tok;
  vl_tensor **params;
  int64_t n_params;
  vl_adamw *opt;
  int64_t step;
  int32_t pad;
  vl_ctx *c;
  vl_llm_sample *smp;    /* a batch's */
  vl_llm_batch_stats st; /* the last step's */
  double ema_acc, tokens;
} trainer;

static cJSON *opts_json(const vl_train_llm_opts *o) {
  cJSON *j = vl_train_schedule_json(&VL_TRAIN_SCHEDULE_OF(o));
  cJSON_AddNumberToObject(j, "vocab_size", o->vocab_size);
  cJSON_AddNumberToObject(j, "tok_scenes", (double)o->tok_scenes);
  cJSON_AddNumberToObject(j, "zh_share", o->zh_share);
  return j;
}

static const char *arch_name(const char *config) {
  const qarch *a = find_arch(config);
  return a ? a->name : NULL;
}

/* The saved options; out->config points into static storage. */
static int opts_parse(const char *text, const char *what, void *opts) {
  vl_train_llm_opts *o = opts;
  vl_train_schedule s;
  cJSON *j = vl_train_schedule_parse(text, what, arch_name, &s);
  if (!j) return vl_last_error_code();
  VL_TRAIN_SCHEDULE_TO(o, s);
  o->vocab_size = (int)vl_json_int(j, "vocab_size", 0);
  o->tok_scenes = vl_json_int(j, "tok_scenes", 0);
  o->zh_share = vl_json_float(j, "zh_share", 0);
  cJSON_Delete(j);
  return VL_OK;
}

static int save_checkpoint(void *u) {
  const trainer *t = u;
  const vl_train_checkpoint ck = {.out_dir = t->o.out_dir,
                                  .who = "train-llm",
                                  .opt = t->opt,
                                  .step = t->step,
                                  .opts_key = "vlens_train_llm_opts",
                                  .opts = opts_json(&t->o)};
  return vl_train_save_checkpoint(&ck);
}

/* Matrices decay, norm weights and the embedding do not (HF practice). */
static bool decays(const vl_tensor *p, const void *m) {
  return p->ndim >= 2 && p != ((const vl_qwen_text *)m)->embed;
}

/* ---- the loop ----------------------------------------------------------- */

static int check_opts(const vl_train_llm_opts *o) {
  if (!o->out_dir || !*o->out_dir)
    return vl_error(VL_ERR_INVALID, "train-llm: --out DIR is required");
  if (o->resume) return VL_OK; /* the rest comes from the checkpoint */
  int rc = vl_train_check_schedule(&VL_TRAIN_SCHEDULE_OF(o), "train-llm");
  if (rc) return rc;
  if (o->vocab_size < 262 || o->tok_scenes < 1)
    return vl_error(VL_ERR_INVALID,
                    "train-llm: --vocab-size %d must be >= 262 and --tok-scenes >= 1",
                    o->vocab_size);
  if (!(o->zh_share >= 0 && o->zh_share <= 1))
    return vl_error(VL_ERR_INVALID, "train-llm: --zh-share %g must be in [0, 1]", o->zh_share);
  return find_arch(o->config) ? VL_OK : VL_ERR_INVALID;
}

static int step_batch(void *u, int64_t s, double *loss) {
  trainer *t = u;
  t->st = (vl_llm_batch_stats){0};
  int rc = VL_OK;
  int64_t made = 0;
  for (; made < t->o.batch && !rc; made++) {
    const int64_t ix = s * t->o.batch + made;
    rc = vl_llm_sample_make(t->tok, t->o.seed, ix,
                            vl_llm_example_lang(t->o.seed, ix, t->o.zh_share), &t->smp[made]);
  }
  if (!rc) rc = vl_train_llm_batch(t->c, t->m, t->smp, t->o.batch, t->pad, &t->st);
  for (int64_t b = 0; b < made; b++)
    vl_llm_sample_free(&t->smp[b]);
  *loss = t->st.loss;
  return rc;
}

static void stepped(void *u, int64_t done, double lr, double el, char *text, size_t size) {
  trainer *t = u;
  t->tokens += (double)t->st.tokens;
  const double acc = t->st.n ? (double)t->st.ok / (double)t->st.n : 0;
  t->ema_acc = done > 1 ? 0.95 * t->ema_acc + 0.05 * acc : acc;
  snprintf(text, size, "step %lld loss %.4f acc %.3f lr %.2e %.0f tok/s", (long long)t->step,
           t->st.loss, t->ema_acc, lr, el > 0 ? t->tokens / el : 0.0);
}

int vl_train_llm(const vl_train_llm_opts *oin, vl_train_llm_report *rep) {
  int rc = check_opts(oin);
  if (rc) return rc;
  trainer t = {.o = *oin};
  vl_safetensors *ost = NULL;
  if (oin->resume) {
    if ((rc = vl_train_open_state(t.o.out_dir, "train-llm", "vlens_train_llm_opts", opts_parse,
                                  &t.o, &ost, &t.step)))
      return rc;
    if (oin->extend_steps > 0) {
      if (oin->extend_steps <= t.step) {
        vl_st_close(ost);
        return vl_error(VL_ERR_INVALID, "train-llm: --extend %lld must exceed the saved step %lld",
                        (long long)oin->extend_steps, (long long)t.step);
      }
      vl_log("train-llm: schedule extended from %lld to %lld steps", (long long)t.o.steps,
             (long long)oin->extend_steps);
      t.o.steps = oin->extend_steps;
    }
    vl_log("train-llm: resuming %s at step %lld of %lld", t.o.out_dir, (long long)t.step,
           (long long)t.o.steps);
  } else {
    if ((rc = vl_train_check_new_run(oin->out_dir, "train-llm"))) return rc;
    if (t.o.warmup < 0) t.o.warmup = t.o.steps / 20;
    if ((rc = vl_train_llm_init(t.o.out_dir, t.o.config, t.o.vocab_size, t.o.tok_scenes,
                                t.o.zh_share > 0, t.o.seed)))
      return rc;
    if (t.o.init_from && (rc = vl_train_llm_warm_start(t.o.out_dir, t.o.init_from))) return rc;
  }
  t.m = vl_train_llm_load(t.o.out_dir, &t.params, &t.n_params, &t.tok);
  if (!t.m) {
    rc = vl_last_error_code();
    goto done;
  }
  if ((t.pad = vl_tokenizer_token_to_id(t.tok, "<|endoftext|>")) < 0) {
    rc = vl_error(VL_ERR_FORMAT, "%s/tokenizer.json: no <|endoftext|> token", t.o.out_dir);
    goto done;
  }
  if (!(t.opt = vl_train_optimizer(t.params, t.n_params, t.o.weight_decay, decays, t.m, ost, t.step,
                                   "train-llm"))) {
    rc = vl_last_error_code();
    goto done;
  }
  if (!(t.c = vl_ctx_new()) || !(t.smp = calloc((size_t)t.o.batch, sizeof *t.smp))) {
    rc = vl_error(VL_ERR_NOMEM, "train-llm: out of memory");
    goto done;
  }
  vl_ctx_set_recording(t.c, true);
  vl_log("train-llm: %s Qwen3, %lld parameters, vocabulary %lld, %lld steps x %lld sequences, "
         "lr %g, %.0f%% Chinese, out %s",
         t.o.config, (long long)vl_train_count_weights(t.params, t.n_params),
         (long long)t.m->cfg.vocab, (long long)t.o.steps, (long long)t.o.batch, t.o.lr,
         100 * t.o.zh_share, t.o.out_dir);
  const vl_train_loop loop = {.who = "train-llm",
                              .sched = VL_TRAIN_SCHEDULE_OF(&t.o),
                              .stop_after = t.o.stop_after,
                              .save_every = t.o.save_every,
                              .opt = t.opt,
                              .user = &t,
                              .batch = step_batch,
                              .stepped = stepped,
                              .save = save_checkpoint};
  vl_train_loop_result res;
  rc = vl_train_loop_run(&loop, &t.step, &res);
  if (rep) {
    rep->step = t.step;
    rep->loss = res.loss;
    rep->loss_first = res.loss_first;
    rep->token_acc = t.ema_acc;
    rep->tokens_per_s = res.seconds > 0 ? t.tokens / res.seconds : 0;
  }
  if (!rc)
    vl_log("train-llm: step %lld, loss %.4f, target token acc %.3f; saved in %s", (long long)t.step,
           res.loss, t.ema_acc, t.o.out_dir);
done:
  free(t.smp);
  vl_ctx_free(t.c);
  vl_adamw_free(t.opt);
  free(t.params);
  vl_tokenizer_free(t.tok);
  vl_qwen_text_free(t.m);
  vl_st_close(ost);
  return rc;
}

/* ---- evaluation --------------------------------------------------------- */

/* Occurrences of colour k / shape s / the pair in one language. */
static size_t count_color(const char *text, int k, int zh) {
  return vl_metrics_count(text, zh ? vl_color_name_zh((vl_color)k) : vl_color_name((vl_color)k));
}
static size_t count_shape(const char *text, int s, int zh) {
  return vl_metrics_count(text, zh ? vl_shape_name_zh((vl_shape)s) : vl_shape_name((vl_shape)s));
}
static size_t count_pair(const char *text, int k, int s, int zh) {
  char kw[64];
  if (zh)
    snprintf(kw, sizeof kw, "%s%s", vl_color_name_zh((vl_color)k), vl_shape_name_zh((vl_shape)s));
  else
    snprintf(kw, sizeof kw, "%s %s", vl_color_name((vl_color)k), vl_shape_name((vl_shape)s));
  return vl_metrics_count(text, kw);
}

int vl_llm_mentions_check(const char *text, const vl_shapes_scene *sc, vl_enrich_lang lang,
                          vl_llm_mentions *out) {
  memset(out, 0, sizeof *out);
  if (!text || !sc) return vl_error(VL_ERR_INVALID, "train-llm: mentions: no text or scene");
  const int zh = lang == VL_ENRICH_ZH;
  bool pair[VL_COLOR_COUNT][VL_SHAPE_COUNT] = {{false}};
  bool col[VL_COLOR_COUNT] = {false}, shp[VL_SHAPE_COUNT] = {false};
  for (int i = 0; i < sc->n_objects; i++) {
    const vl_shapes_object *o = &sc->objects[i];
    pair[o->color][o->shape] = col[o->color] = shp[o->shape] = true;
  }
  /* Chinese text: invented mentions in either language count */
  for (int l = zh; l >= 0; l--) {
    for (int k = 0; k < VL_COLOR_COUNT; k++) {
      if (!col[k]) out->invented += (int)count_color(text, k, l);
      for (int s = 0; s < VL_SHAPE_COUNT; s++) {
        const size_t hits = count_pair(text, k, s, l);
        if (!pair[k][s])
          out->invented += (int)hits;
        else if (l == zh) {
          out->keys++;
          out->found += hits > 0;
        }
      }
    }
    for (int s = 0; s < VL_SHAPE_COUNT; s++)
      if (!shp[s]) out->invented += (int)count_shape(text, s, l);
  }
  return VL_OK;
}

typedef struct {
  char *text;
  size_t len, cap;
} textacc;

static int collect(void *user, int32_t id, const char *text, size_t len) {
  (void)id;
  textacc *a = user;
  if (!text || !len) return 0;
  if (a->len + len + 1 > a->cap) {
    size_t cap = (a->len + len + 1) * 2;
    char *p = realloc(a->text, cap);
    if (!p) return 1;
    a->text = p;
    a->cap = cap;
  }
  memcpy(a->text + a->len, text, len);
  a->len += len;
  a->text[a->len] = 0;
  return 0;
}

/* Greedy description of one scene's caption, reasoning stripped. */
static char *describe(const vl_qwen_text *m, const vl_tokenizer *tok, const char *caption,
                      vl_enrich_lang lang, int max_tokens, size_t *n_gen) {
  vl_enrich_options o = vl_enrich_default_options();
  o.enable_thinking = 0;
  if (lang == VL_ENRICH_ZH) o.lang = lang, o.min_words = 100, o.max_words = 200;
  int32_t *ids = NULL;
  size_t n = 0;
  if (prompt_ids(tok, caption, &o, &ids, &n)) return NULL;
  vl_generate_opts g = {.sampling = vl_sampler_defaults(), .max_tokens = max_tokens};
  if ((int64_t)n + max_tokens > m->cfg.max_pos) g.max_tokens = (int)(m->cfg.max_pos - (int64_t)n);
  textacc acc = {0};
  vl_generate_stats gs;
  int rc = g.max_tokens > 0 ? vl_generate(m, tok, ids, n, &g, collect, &acc, NULL, NULL, &gs)
                            : vl_error(VL_ERR_LIMIT,
                                       "train-llm: prompt of %zu tokens fills "
                                       "the context",
                                       n);
  free(ids);
  if (rc) {
    free(acc.text);
    return NULL;
  }
  *n_gen = gs.n_generated;
  char *answer = vl_reasoning_answer(acc.text ? acc.text : "");
  free(acc.text);
  return answer;
}

int vl_train_llm_eval(const vl_qwen_text *m, const vl_tokenizer *tok, uint64_t seed, int64_t n,
                      vl_enrich_lang lang, int max_tokens, vl_llm_eval_cb cb, void *user,
                      vl_llm_eval *out) {
  memset(out, 0, sizeof *out);
  if (!m || !tok || n < 1) return vl_error(VL_ERR_INVALID, "train-llm: eval needs n >= 1 scenes");
  if (max_tokens <= 0) max_tokens = 256;
  vl_shapes_options so = vl_shapes_default_options();
  so.n_hypotheses = 0;
  vl_progress pr;
  vl_progress_start(&pr, "eval-llm", n);
  const double t0 = vl_now_seconds();
  double sum_recall = 0, words = 0;
  int rc = VL_OK;
  for (int64_t i = 0; i < n && !rc; i++) {
    vl_shapes_scene *sc = vl_shapes_generate(seed, i, &so);
    if (!sc) {
      rc = vl_last_error_code();
      break;
    }
    size_t ng = 0;
    char *d = describe(m, tok, sc->caption, lang, max_tokens, &ng);
    vl_llm_mentions mn;
    rc = d ? vl_llm_mentions_check(d, sc, lang, &mn) : vl_last_error_code();
    if (!rc) {
      out->n++;
      out->keys += mn.keys;
      out->found += mn.found;
      sum_recall += mn.keys ? (double)mn.found / mn.keys : 1.0;
      out->with_invented += mn.invented > 0;
      words += (double)vl_metrics_length(d, lang == VL_ENRICH_ZH);
      out->gen_tokens += (int64_t)ng;
      if (cb) cb(user, i, sc->caption, d, &mn);
      char extra[96];
      snprintf(extra, sizeof extra, "recall %.3f invented-free %.3f",
               out->keys ? (double)out->found / (double)out->keys : 1.0,
               1.0 - (double)out->with_invented / (double)out->n);
      vl_progress_update(&pr, i + 1, extra);
    }
    free(d);
    vl_shapes_free(sc);
  }
  vl_progress_end(&pr);
  if (rc) return vl_error_context("train-llm: eval");
  const double el = vl_now_seconds() - t0;
  out->recall = out->keys ? (double)out->found / (double)out->keys : 1.0;
  out->mean_recall = sum_recall / (double)out->n;
  out->no_invented_rate = 1.0 - (double)out->with_invented / (double)out->n;
  out->mean_words = words / (double)out->n;
  out->tokens_per_s = el > 0 ? (double)out->gen_tokens / el : 0;
  return VL_OK;
}
