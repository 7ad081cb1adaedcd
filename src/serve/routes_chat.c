/* POST /v1/chat/completions and GET /v1/models. Text conversations go to the
 * LLM through its chat template (thinking off unless "enable_thinking" or
 * chat_template_kwargs.enable_thinking is true; the answer and the
 * reasoning are split as reasoning_content, llama.cpp's field). A conversation
 * holding an image (image_url part, data: URI) is a describe request: the
 * answer is the captioner's caption of the last image. Sampling defaults
 * are llama.cpp's: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/log.h"
#include "serve/serve_impl.h"
#include "tasks/chat_session.h"
#include "tasks/describe.h"
#include "tasks/generate.h"
#include "text/reasoning.h"

#define MAX_STOP 16
#define MAX_STOP_LEN 256
#define MAX_MESSAGES 1024

void vl_route_models(vl_server *s, vl_reply *r) {
  cJSON *d = cJSON_CreateObject(), *data;
  cJSON_AddStringToObject(d, "object", "list");
  data = cJSON_AddArrayToObject(d, "data");
  for (int k = 0; k < 2; k++) {
    const char *name = k ? s->cap_name : s->llm_name;
    if (!(k ? (void *)s->cap : (void *)s->llm)) continue;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "vlens");
    cJSON *meta = cJSON_AddObjectToObject(m, "meta");
    cJSON_AddStringToObject(meta, "role", k ? "captioner" : "llm");
    cJSON_AddStringToObject(meta, "path", k ? s->o.captioner_dir : s->o.llm_dir);
    if (!k) cJSON_AddStringToObject(meta, "chat_template", vl_chat_template_name(s->tmpl));
    cJSON_AddItemToArray(data, m);
  }
  vl_reply_json(r, 200, d);
}

/* ---- the request ------------------------------------------------------ */

typedef struct {
  vl_chat_message *msgs;
  size_t n;
  char **texts;       /* content strings joined from parts, owned */
  const cJSON *image; /* the last image_url value */
  size_t text_bytes;
} conv;

static void conv_free(conv *c) {
  for (size_t i = 0; i < c->n; i++)
    free(c->texts[i]);
  free(c->texts);
  free(c->msgs);
}

/* Content: a string, null (assistant), or an array of text / image_url parts. */
static int parse_content(conv *c, size_t i, const cJSON *content, vl_reply *r) {
  if (!content || cJSON_IsNull(content)) {
    c->texts[i] = strdup("");
  } else if (cJSON_IsString(content)) {
    c->texts[i] = strdup(content->valuestring);
  } else if (cJSON_IsArray(content)) {
    size_t len = 0, cap = 0;
    char *t = NULL;
    const cJSON *part;
    cJSON_ArrayForEach(part, content) {
      const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
      if (!cJSON_IsObject(part) || !cJSON_IsString(type)) {
        free(t);
        return vl_reply_error(
            r, 400, NULL, "messages[%zu].content: each part must be an object with a 'type'", i);
      }
      if (!strcmp(type->valuestring, "text")) {
        const cJSON *tx = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(tx)) {
          free(t);
          return vl_reply_error(r, 400, NULL, "messages[%zu].content: a text part needs 'text'", i);
        }
        size_t l = strlen(tx->valuestring);
        if (len + l + 2 > cap) {
          cap = (len + l + 2) * 2;
          char *p = realloc(t, cap);
          if (!p) {
            free(t);
            return vl_reply_error(r, 500, NULL, "out of memory");
          }
          t = p;
        }
        if (len) t[len++] = '\n';
        memcpy(t + len, tx->valuestring, l + 1);
        len += l;
      } else if (!strcmp(type->valuestring, "image_url")) {
        const cJSON *iu = cJSON_GetObjectItemCaseSensitive(part, "image_url");
        const cJSON *url = cJSON_IsObject(iu) ? cJSON_GetObjectItemCaseSensitive(iu, "url") : iu;
        if (!cJSON_IsString(url)) {
          free(t);
          return vl_reply_error(r, 400, NULL,
                                "messages[%zu].content: an image_url part needs image_url.url", i);
        }
        c->image = url;
      } else {
        vl_reply_error(r, 400, NULL, "messages[%zu].content: unsupported part type '%s'", i,
                       type->valuestring);
        free(t);
        return -1;
      }
    }
    c->texts[i] = t ? t : strdup("");
  } else {
    return vl_reply_error(r, 400, NULL,
                          "messages[%zu].content: expected a string or an array of parts", i);
  }
  if (!c->texts[i]) return vl_reply_error(r, 500, NULL, "out of memory");
  c->text_bytes += strlen(c->texts[i]);
  return 0;
}

static int parse_messages(const vl_server *s, const cJSON *req, conv *c, vl_reply *r) {
  memset(c, 0, sizeof *c);
  const cJSON *ms = cJSON_GetObjectItemCaseSensitive(req, "messages");
  if (!ms) return vl_reply_error(r, 400, NULL, "missing field 'messages'");
  if (!cJSON_IsArray(ms)) return vl_reply_error(r, 400, NULL, "'messages': expected an array");
  int n = cJSON_GetArraySize(ms);
  if (n == 0) return vl_reply_error(r, 400, NULL, "'messages' is empty");
  if (n > MAX_MESSAGES)
    return vl_reply_error(r, 400, NULL, "'messages': more than %d messages", MAX_MESSAGES);
  c->msgs = calloc((size_t)n, sizeof *c->msgs);
  c->texts = calloc((size_t)n, sizeof *c->texts);
  if (!c->msgs || !c->texts) return vl_reply_error(r, 500, NULL, "out of memory");
  const cJSON *m;
  cJSON_ArrayForEach(m, ms) {
    size_t i = c->n++;
    if (!cJSON_IsObject(m))
      return vl_reply_error(r, 400, NULL, "messages[%zu]: expected an object", i);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    if (!cJSON_IsString(role))
      return vl_reply_error(r, 400, NULL, "messages[%zu]: missing string field 'role'", i);
    const char *rl = role->valuestring;
    if (strcmp(rl, "system") && strcmp(rl, "user") && strcmp(rl, "assistant") && strcmp(rl, "tool"))
      return vl_reply_error(
          r, 400, NULL, "messages[%zu]: role '%.64s' (expected system, user, assistant or tool)", i,
          rl);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (!content && strcmp(rl, "assistant"))
      return vl_reply_error(r, 400, NULL, "messages[%zu]: missing field 'content'", i);
    if (parse_content(c, i, content, r)) return -1;
    c->msgs[i].role = rl;
    c->msgs[i].content = c->texts[i];
    const cJSON *rc = cJSON_GetObjectItemCaseSensitive(m, "reasoning_content");
    if (cJSON_IsString(rc)) c->msgs[i].reasoning_content = rc->valuestring;
  }
  if (c->text_bytes > s->o.max_prompt)
    return vl_reply_error(r, 400, NULL,
                          "the messages hold %zu bytes of text, over the limit of %zu",
                          c->text_bytes, s->o.max_prompt);
  return 0;
}

typedef struct {
  vl_generate_opts gen;
  char *stop[MAX_STOP];
  int n_stop;
  bool stream;
  int enable_thinking;
} chat_params;

static void params_free(chat_params *p) {
  for (int i = 0; i < p->n_stop; i++)
    free(p->stop[i]);
  p->n_stop = 0;
}

static int parse_params(vl_server *s, const cJSON *req, chat_params *p, vl_reply *r) {
  memset(p, 0, sizeof *p);
  p->gen.sampling = vl_sampler_defaults();
  p->gen.sampling.temperature = 0.8f;
  p->gen.sampling.top_k = 40;
  p->gen.sampling.top_p = 0.95f;
  p->gen.sampling.min_p = 0.05f;
  p->gen.max_tokens = 256 < s->o.max_tokens ? 256 : s->o.max_tokens;
  double t = p->gen.sampling.temperature, tp = p->gen.sampling.top_p, mp = p->gen.sampling.min_p,
         rp = 1, seed = -1, ignored = 0;
  int n = 1;
  if (vl_req_number(req, "temperature", 0, 100, &t, r) ||
      vl_req_number(req, "top_p", 0, 1, &tp, r) || vl_req_number(req, "min_p", 0, 1, &mp, r) ||
      vl_req_number(req, "repeat_penalty", 0.01, 100, &rp, r) ||
      vl_req_number(req, "seed", -1, 9007199254740992.0, &seed, r) ||
      vl_req_int(req, "top_k", 0, 1 << 30, &p->gen.sampling.top_k, r) ||
      vl_req_int(req, "max_tokens", 1, s->o.max_tokens, &p->gen.max_tokens, r) ||
      vl_req_int(req, "max_completion_tokens", 1, s->o.max_tokens, &p->gen.max_tokens, r) ||
      vl_req_int(req, "n", 1, 1, &n, r) ||
      vl_req_number(req, "frequency_penalty", -2, 2, &ignored, r) ||
      vl_req_number(req, "presence_penalty", -2, 2, &ignored, r) ||
      vl_req_bool(req, "stream", &p->stream, r))
    return -1;
  if (tp <= 0) return vl_reply_error(r, 400, NULL, "'top_p': must be above 0");
  p->gen.sampling.temperature = (float)t;
  p->gen.sampling.top_p = (float)tp;
  p->gen.sampling.min_p = (float)mp;
  p->gen.sampling.repeat_penalty = (float)rp;
  p->gen.sampling.seed =
      seed >= 0 ? (uint64_t)seed
                : (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull + atomic_fetch_add(&s->next_id, 1);
  bool think = false;
  const cJSON *kw = cJSON_GetObjectItemCaseSensitive(req, "chat_template_kwargs");
  if (kw && !cJSON_IsNull(kw) && !cJSON_IsObject(kw))
    return vl_reply_error(r, 400, NULL, "'chat_template_kwargs': expected an object");
  if (vl_req_bool(req, "enable_thinking", &think, r) ||
      (kw && vl_req_bool(kw, "enable_thinking", &think, r)))
    return -1;
  p->enable_thinking = think;
  const cJSON *stop = cJSON_GetObjectItemCaseSensitive(req, "stop");
  if (stop && !cJSON_IsNull(stop)) {
    if (cJSON_IsString(stop)) {
      if (strlen(stop->valuestring) > MAX_STOP_LEN || !stop->valuestring[0])
        return vl_reply_error(r, 400, NULL, "'stop': 1 to %d bytes", MAX_STOP_LEN);
      p->stop[p->n_stop++] = strdup(stop->valuestring);
    } else if (cJSON_IsArray(stop)) {
      if (cJSON_GetArraySize(stop) > MAX_STOP)
        return vl_reply_error(r, 400, NULL, "'stop': at most %d strings", MAX_STOP);
      const cJSON *e;
      cJSON_ArrayForEach(e, stop) {
        if (!cJSON_IsString(e) || !e->valuestring[0] || strlen(e->valuestring) > MAX_STOP_LEN) {
          params_free(p);
          return vl_reply_error(r, 400, NULL, "'stop': expected strings of 1 to %d bytes",
                                MAX_STOP_LEN);
        }
        p->stop[p->n_stop++] = strdup(e->valuestring);
      }
    } else {
      return vl_reply_error(r, 400, NULL, "'stop': expected a string or an array of strings");
    }
    for (int i = 0; i < p->n_stop; i++)
      if (!p->stop[i]) {
        params_free(p);
        return vl_reply_error(r, 500, NULL, "out of memory");
      }
  }
  p->gen.stop = (const char *const *)p->stop;
  p->gen.n_stop = p->n_stop;
  return 0;
}

/* ---- documents -------------------------------------------------------- */

typedef struct {
  char id[48];
  long created;
  const char *model;
} chat_ids;

static void ids_init(vl_server *s, chat_ids *c, const char *model) {
  snprintf(c->id, sizeof c->id, "chatcmpl-vlens-%lu", atomic_fetch_add(&s->next_id, 1));
  c->created = (long)time(NULL);
  c->model = model;
}

static cJSON *doc_head(const chat_ids *c, const char *object) {
  cJSON *d = cJSON_CreateObject();
  cJSON_AddStringToObject(d, "id", c->id);
  cJSON_AddStringToObject(d, "object", object);
  cJSON_AddNumberToObject(d, "created", (double)c->created);
  cJSON_AddStringToObject(d, "model", c->model);
  return d;
}

static void add_usage(cJSON *d, size_t n_prompt, size_t n_gen, double prefill_s, double decode_s) {
  cJSON *u = cJSON_AddObjectToObject(d, "usage");
  cJSON_AddNumberToObject(u, "prompt_tokens", (double)n_prompt);
  cJSON_AddNumberToObject(u, "completion_tokens", (double)n_gen);
  cJSON_AddNumberToObject(u, "total_tokens", (double)(n_prompt + n_gen));
  cJSON *t = cJSON_AddObjectToObject(d, "timings");
  cJSON_AddNumberToObject(t, "prompt_n", (double)n_prompt);
  cJSON_AddNumberToObject(t, "prompt_ms", prefill_s * 1e3);
  cJSON_AddNumberToObject(t, "predicted_n", (double)n_gen);
  cJSON_AddNumberToObject(t, "predicted_ms", decode_s * 1e3);
}

static cJSON *completion_doc(const chat_ids *c, const char *content, const char *reasoning,
                             const char *finish) {
  cJSON *d = doc_head(c, "chat.completion");
  cJSON *ch = cJSON_AddArrayToObject(d, "choices"), *c0 = cJSON_CreateObject();
  cJSON_AddItemToArray(ch, c0);
  cJSON_AddNumberToObject(c0, "index", 0);
  cJSON *msg = cJSON_AddObjectToObject(c0, "message");
  cJSON_AddStringToObject(msg, "role", "assistant");
  cJSON_AddStringToObject(msg, "content", content);
  if (reasoning && *reasoning) cJSON_AddStringToObject(msg, "reasoning_content", reasoning);
  cJSON_AddStringToObject(c0, "finish_reason", finish);
  return d;
}

/* One chunk: delta {role?, content?}, finish_reason (NULL: null). */
static cJSON *chunk_doc(const chat_ids *c, const char *role, const char *content, size_t len,
                        const char *finish) {
  cJSON *d = doc_head(c, "chat.completion.chunk");
  cJSON *ch = cJSON_AddArrayToObject(d, "choices"), *c0 = cJSON_CreateObject();
  cJSON_AddItemToArray(ch, c0);
  cJSON_AddNumberToObject(c0, "index", 0);
  cJSON *delta = cJSON_AddObjectToObject(c0, "delta");
  if (role) cJSON_AddStringToObject(delta, "role", role);
  if (content) {
    char *t = strndup(content, len);
    cJSON_AddStringToObject(delta, "content", t ? t : "");
    free(t);
  }
  if (finish)
    cJSON_AddStringToObject(c0, "finish_reason", finish);
  else
    cJSON_AddNullToObject(c0, "finish_reason");
  return d;
}

static const char *finish_reason(vl_stop_reason why) {
  return why == VL_STOP_MAX_TOKENS ? "length" : "stop";
}

/* ---- generation ------------------------------------------------------- */

static int on_token(void *user, int32_t id, const char *text, size_t len);

typedef struct {
  vl_server *srv;
  chat_params p;
  int32_t *ids;
  size_t n_ids;
  chat_ids cid;
  char *canned; /* captioner answer: sent as one piece, no generation */
  size_t canned_tokens;
  /* while generating */
  vl_sse *sse;
  vl_think_filter filter;
  char *text; /* non-streaming: the raw output */
  size_t len, cap;
  int oom;
  vl_generate_stats st;
} chat_job;

static int run_generate(void *arg) {
  chat_job *j = arg;
  return vl_generate(j->srv->llm, j->srv->tok, j->ids, j->n_ids, &j->p.gen, on_token, j, NULL, NULL,
                     &j->st);
}

typedef struct {
  const vl_blip *m;
  const vl_image *img;
  const vl_describe_opts *o;
  const vl_explain_cfg *cfg;
  vl_describe_result *res;
} describe_call;

static int run_describe(void *arg) {
  describe_call *d = arg;
  return vl_describe(d->m, d->img, d->o, d->cfg, d->res);
}

static void job_free(void *arg) {
  chat_job *j = arg;
  if (!j) return;
  params_free(&j->p);
  free(j->ids);
  free(j->canned);
  free(j->text);
  free(j);
}

static int on_token(void *user, int32_t id, const char *text, size_t len) {
  chat_job *j = user;
  (void)id;
  if (j->sse) {
    if (vl_sse_cancelled(j->sse)) return 1;
    if (!len) return 0;
    char *out = malloc(len + 17);
    if (!out) return 1;
    size_t n = vl_think_filter_feed(&j->filter, text, len, 0, out);
    if (n) vl_sse_send(j->sse, chunk_doc(&j->cid, NULL, out, n, NULL));
    free(out);
    return 0;
  }
  if (atomic_load(&j->srv->stopping)) return 1;
  if (j->len + len + 1 > j->cap) {
    size_t cap = (j->len + len + 1) * 2;
    char *t = realloc(j->text, cap);
    if (!t) return j->oom = 1;
    j->text = t;
    j->cap = cap;
  }
  memcpy(j->text + j->len, text, len);
  j->len += len;
  j->text[j->len] = 0;
  return 0;
}

static void stream_error(vl_sse *s, const char *msg) {
  cJSON *d = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(d, "error");
  cJSON_AddStringToObject(e, "message", msg);
  cJSON_AddStringToObject(e, "type", "server_error");
  cJSON_AddNumberToObject(e, "code", 500);
  vl_sse_send(s, d);
}

static void stream_run(vl_sse *s, void *arg) {
  chat_job *j = arg;
  j->sse = s;
  vl_sse_send(s, chunk_doc(&j->cid, "assistant", "", 0, NULL));
  if (j->canned) {
    vl_sse_send(s, chunk_doc(&j->cid, NULL, j->canned, strlen(j->canned), NULL));
    cJSON *fin = chunk_doc(&j->cid, NULL, NULL, 0, "stop");
    add_usage(fin, 0, j->canned_tokens, 0, 0);
    vl_sse_send(s, fin);
    vl_sse_send(s, NULL);
    return;
  }
  int rc = vl_serve_compute(run_generate, j);
  const vl_generate_stats st = j->st;
  if (rc) {
    stream_error(s, vl_last_error());
  } else if (!vl_sse_cancelled(s)) {
    char tail[32];
    size_t n = vl_think_filter_feed(&j->filter, "", 0, 1, tail);
    if (n) vl_sse_send(s, chunk_doc(&j->cid, NULL, tail, n, NULL));
    cJSON *fin = chunk_doc(&j->cid, NULL, NULL, 0, finish_reason(st.reason));
    add_usage(fin, st.n_prompt, st.n_generated, st.prefill_s, st.decode_s);
    vl_sse_send(s, fin);
  }
  vl_sse_send(s, NULL);
}

/* Image in the conversation: caption it. */
static void chat_caption(vl_server *s, const conv *c, chat_job *j, vl_reply *r) {
  if (!s->cap) {
    vl_reply_error(r, 400, NULL,
                   "the conversation holds an image but this server has no captioner "
                   "(start it with --captioner DIR)");
    return;
  }
  vl_image *img = NULL;
  if (vl_req_image(s, c->image, "image_url", &img, r)) return;
  vl_explain_cfg cfg;
  vl_describe_result res;
  memset(&res, 0, sizeof res);
  if (vl_explain_cfg_parse(&cfg, NULL)) {
    vl_reply_last_error(r, "describe");
    vl_image_free(img);
    return;
  }
  vl_describe_opts o = {.explain = "none"};
  describe_call call = {s->cap, img, &o, &cfg, &res};
  int rc = vl_serve_compute(run_describe, &call);
  vl_image_free(img);
  vl_explain_cfg_free(&cfg);
  if (rc) {
    vl_reply_last_error(r, "describe");
    return;
  }
  ids_init(s, &j->cid, s->cap_name);
  if (j->p.stream) {
    j->canned = strdup(res.text ? res.text : "");
    j->canned_tokens = (size_t)res.n_tokens;
    vl_describe_result_free(&res);
    if (!j->canned) {
      vl_reply_error(r, 500, NULL, "out of memory");
      return;
    }
    chat_job *moved = malloc(sizeof *moved);
    if (!moved) {
      vl_reply_error(r, 500, NULL, "out of memory");
      return;
    }
    *moved = *j;
    memset(j, 0, sizeof *j);
    vl_reply_sse(r, s, stream_run, job_free, moved);
    return;
  }
  cJSON *d = completion_doc(&j->cid, res.text ? res.text : "", NULL, "stop");
  add_usage(d, 0, (size_t)res.n_tokens, 0, res.ms_generate / 1e3);
  vl_describe_result_free(&res);
  vl_reply_json(r, 200, d);
}

static void chat_llm(vl_server *s, const conv *c, chat_job *j, vl_reply *r) {
  if (!s->llm) {
    vl_reply_error(r, 400, NULL,
                   "this server has no LLM for text conversations (start it with -m DIR); "
                   "send an image to have it described");
    return;
  }
  vl_chat_options co = vl_chat_default_options();
  co.enable_thinking = j->p.enable_thinking;
  char *prompt = vl_chat_render(s->tmpl, c->msgs, c->n, &co);
  if (!prompt) {
    vl_reply_last_error(r, "messages");
    return;
  }
  int rc = vl_tokenizer_encode(s->tok, prompt, strlen(prompt), 0, &j->ids, &j->n_ids);
  free(prompt);
  if (rc) {
    vl_reply_last_error(r, "messages");
    return;
  }
  size_t ctx = (size_t)(s->llm->cfg.max_pos > 0 && s->llm->cfg.max_pos < 32768 ? s->llm->cfg.max_pos
                                                                               : 32768);
  if (j->n_ids + 1 > ctx) {
    vl_reply_error(r, 400, NULL, "the prompt is %zu tokens, over the model's context of %zu tokens",
                   j->n_ids, ctx);
    return;
  }
  if (j->n_ids + (size_t)j->p.gen.max_tokens > ctx) j->p.gen.max_tokens = (int)(ctx - j->n_ids);
  ids_init(s, &j->cid, s->llm_name);
  if (j->p.stream) {
    chat_job *moved = malloc(sizeof *moved);
    if (!moved) {
      vl_reply_error(r, 500, NULL, "out of memory");
      return;
    }
    *moved = *j;
    moved->p.gen.stop = (const char *const *)moved->p.stop;
    memset(j, 0, sizeof *j);
    vl_reply_sse(r, s, stream_run, job_free, moved);
    return;
  }
  rc = vl_serve_compute(run_generate, j);
  const vl_generate_stats st = j->st;
  if (rc || j->oom) {
    if (j->oom) vl_error(VL_ERR_NOMEM, "out of memory");
    vl_reply_error(r, 500, NULL, "%s", vl_last_error());
    return;
  }
  vl_reasoning rs;
  if (vl_reasoning_split(j->text ? j->text : "", j->len, &rs)) {
    vl_reply_last_error(r, NULL);
    return;
  }
  cJSON *d = completion_doc(&j->cid, rs.answer, rs.reasoning, finish_reason(st.reason));
  vl_reasoning_free(&rs);
  add_usage(d, st.n_prompt, st.n_generated, st.prefill_s, st.decode_s);
  vl_reply_json(r, 200, d);
}

void vl_route_chat(vl_server *s, const cJSON *req, vl_reply *r) {
  conv c;
  chat_job *j = calloc(1, sizeof *j);
  if (!j) {
    vl_reply_error(r, 500, NULL, "out of memory");
    return;
  }
  j->srv = s;
  if (parse_messages(s, req, &c, r) == 0 && parse_params(s, req, &j->p, r) == 0) {
    if (c.image)
      chat_caption(s, &c, j, r);
    else
      chat_llm(s, &c, j, r);
  }
  conv_free(&c);
  job_free(j);
}
