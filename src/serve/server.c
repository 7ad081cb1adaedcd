/* HTTP plumbing of `vlens serve` on libmicrohttpd: a thread per connection
 * (a long generation does not block /health), request bodies gathered up to
 * a limit, routing with 404 / 405, JSON replies, and SSE streams produced by
 * a thread of their own that the connection's reader callback waits on. */
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "base/error.h"
#include "base/log.h"
#include "serve/serve_impl.h"
#include "tasks/describe.h"
#include "text/chat.h"

/* ---- replies ---------------------------------------------------------- */

void vl_reply_json(vl_reply *r, int status, cJSON *doc) {
  char *s = doc ? cJSON_PrintUnformatted(doc) : NULL;
  cJSON_Delete(doc);
  if (!s) {
    static const char oom[] =
        "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"code\":500}}";
    s = strdup(oom);
    status = 500;
  }
  free(r->body);
  r->status = status;
  r->body = s;
  r->len = s ? strlen(s) : 0;
  r->ctype = "application/json";
}

static const char *error_type(int status) {
  switch (status) {
  case 404: return "not_found_error";
  case 501: return "not_supported_error";
  case 503: return "unavailable_error";
  default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

int vl_reply_error(vl_reply *r, int status, const char *type, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cJSON *d = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(d, "error");
  cJSON_AddStringToObject(e, "message", msg);
  cJSON_AddStringToObject(e, "type", type ? type : error_type(status));
  cJSON_AddNumberToObject(e, "code", status);
  vl_reply_json(r, status, d);
  return -1;
}

int vl_reply_last_error(vl_reply *r, const char *what) {
  int code = vl_last_error_code();
  int status = 500;
  if (code == VL_ERR_INVALID || code == VL_ERR_FORMAT || code == VL_ERR_NOTFOUND ||
      code == VL_ERR_UNSUPPORTED)
    status = 400;
  else if (code == VL_ERR_LIMIT)
    status = what && !strcmp(what, "image") ? 413 : 400;
  return vl_reply_error(r, status, NULL, "%s%s%s", what ? what : "", what ? ": " : "",
                        vl_last_error());
}

/* ---- the compute thread ------------------------------------------------ */

static pthread_once_t w_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t w_submit = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static pthread_mutex_t w_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t w_cv = PTHREAD_COND_INITIALIZER;
static int (*w_fn)(void *);
static void *w_arg;
static int w_rc, w_done, w_started, w_err_code;
static char w_err[1024];

static void *compute_main(void *unused) {
  (void)unused;
  pthread_mutex_lock(&w_mu);
  for (;;) {
    while (!w_fn)
      pthread_cond_wait(&w_cv, &w_mu);
    int (*fn)(void *) = w_fn;
    void *arg = w_arg;
    pthread_mutex_unlock(&w_mu);
    vl_clear_error();
    int rc = fn(arg);
    pthread_mutex_lock(&w_mu);
    w_rc = rc;
    w_err_code = vl_last_error_code();
    snprintf(w_err, sizeof w_err, "%s", vl_last_error());
    w_fn = NULL;
    w_done = 1;
    pthread_cond_broadcast(&w_cv);
  }
  return NULL;
}

static void compute_start(void) {
  pthread_t th;
  if (pthread_create(&th, NULL, compute_main, NULL) == 0) {
    pthread_detach(th);
    w_started = 1;
  }
}

int vl_serve_compute(int (*fn)(void *), void *arg) {
  pthread_once(&w_once, compute_start);
  if (!w_started) return vl_error(VL_ERR_NOMEM, "serve: cannot start the compute thread");
  pthread_mutex_lock(&w_submit);
  pthread_mutex_lock(&w_mu);
  w_fn = fn;
  w_arg = arg;
  w_done = 0;
  pthread_cond_broadcast(&w_cv);
  while (!w_done)
    pthread_cond_wait(&w_cv, &w_mu);
  int rc = w_rc, code = w_err_code;
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", w_err);
  pthread_mutex_unlock(&w_mu);
  pthread_mutex_unlock(&w_submit);
  vl_clear_error();
  if (rc || msg[0]) vl_error(code ? code : VL_ERR_INVALID, "%s", msg);
  return rc;
}

/* ---- SSE -------------------------------------------------------------- */

struct vl_sse {
  vl_server *srv;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char *buf;
  size_t len, cap, off; /* bytes [off, len) not yet handed to MHD */
  int done, cancel, started;
  pthread_t th;
  vl_sse_run run;
  void (*job_free)(void *);
  void *job;
};

void vl_sse_send(vl_sse *s, cJSON *doc) {
  char *js = doc ? cJSON_PrintUnformatted(doc) : NULL;
  cJSON_Delete(doc);
  const char *payload = js ? js : "[DONE]";
  size_t n = strlen(payload) + 8;
  pthread_mutex_lock(&s->mu);
  if (s->len + n + 1 > s->cap) {
    size_t cap = (s->len + n + 1) * 2;
    char *p = realloc(s->buf, cap);
    if (p) s->buf = p, s->cap = cap;
  }
  if (s->len + n + 1 <= s->cap) {
    snprintf(s->buf + s->len, n + 1, "data: %s\n\n", payload);
    s->len += n;
  }
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  free(js);
}

bool vl_sse_cancelled(vl_sse *s) {
  pthread_mutex_lock(&s->mu);
  bool c = s->cancel || atomic_load(&s->srv->stopping);
  pthread_mutex_unlock(&s->mu);
  return c;
}

static void *sse_thread(void *arg) {
  vl_sse *s = arg;
  s->run(s, s->job);
  pthread_mutex_lock(&s->mu);
  s->done = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
  vl_sse *s = cls;
  (void)pos;
  pthread_mutex_lock(&s->mu);
  while (s->off == s->len && !s->done)
    pthread_cond_wait(&s->cv, &s->mu);
  ssize_t n;
  if (s->off == s->len) {
    n = MHD_CONTENT_READER_END_OF_STREAM;
  } else {
    size_t k = s->len - s->off < max ? s->len - s->off : max;
    memcpy(buf, s->buf + s->off, k);
    s->off += k;
    if (s->off == s->len) s->off = s->len = 0;
    n = (ssize_t)k;
  }
  pthread_mutex_unlock(&s->mu);
  return n;
}

static void sse_free(void *cls) {
  vl_sse *s = cls;
  pthread_mutex_lock(&s->mu);
  s->cancel = 1;
  pthread_mutex_unlock(&s->mu);
  if (s->started) pthread_join(s->th, NULL);
  if (s->job_free) s->job_free(s->job);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s->buf);
  free(s);
}

int vl_reply_sse(vl_reply *r, vl_server *srv, vl_sse_run run, void (*job_free)(void *), void *job) {
  vl_sse *s = calloc(1, sizeof *s);
  if (!s) {
    if (job_free) job_free(job);
    return vl_reply_error(r, 500, NULL, "out of memory");
  }
  s->srv = srv;
  s->run = run;
  s->job_free = job_free;
  s->job = job;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  r->status = 200;
  r->sse = s;
  r->ctype = "text/event-stream";
  return 0;
}

/* ---- requests --------------------------------------------------------- */

typedef struct {
  char *buf;
  size_t len, cap;
  int too_big;
  int answered; /* a reply was queued before the body was read */
} req_state;

enum { R_UI, R_HEALTH, R_MODELS, R_CHAT, R_DESCRIBE, R_ENTAIL };
static const struct {
  const char *path, *method;
  int kind;
} routes[] = {
    {"/", "GET", R_UI},
    {"/index.html", "GET", R_UI},
    {"/health", "GET", R_HEALTH},
    {"/v1/models", "GET", R_MODELS},
    {"/models", "GET", R_MODELS},
    {"/v1/chat/completions", "POST", R_CHAT},
    {"/chat/completions", "POST", R_CHAT},
    {"/v1/describe", "POST", R_DESCRIBE},
    {"/v1/entail", "POST", R_ENTAIL},
};
enum { N_ROUTES = sizeof routes / sizeof routes[0] };

static enum MHD_Result send_reply(struct MHD_Connection *c, vl_server *srv, vl_reply *r,
                                  const char *allow) {
  struct MHD_Response *resp;
  if (r->sse) {
    vl_sse *s = r->sse;
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, s, sse_free);
    if (!resp) {
      sse_free(s);
      return MHD_NO;
    }
    if (pthread_create(&s->th, NULL, sse_thread, s) == 0) {
      s->started = 1;
    } else {
      s->done = 1;
    }
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
  } else {
    resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
      free(r->body);
      return MHD_NO;
    }
  }
  r->body = NULL;
  MHD_add_response_header(resp, "Content-Type", r->ctype ? r->ctype : "application/json");
  MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
  if (allow) MHD_add_response_header(resp, "Allow", allow);
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
  MHD_destroy_response(resp);
  (void)srv;
  return ret;
}

static void dispatch(vl_server *srv, int kind, const req_state *st, vl_reply *r) {
  if (kind == R_HEALTH) {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "status", "ok");
    vl_reply_json(r, 200, d);
    return;
  }
  if (kind == R_MODELS) {
    vl_route_models(srv, r);
    return;
  }
  if (st->too_big) {
    vl_reply_error(r, 413, NULL, "request body over the limit of %zu bytes", srv->o.max_body);
    return;
  }
  if (!st->len) {
    vl_reply_error(r, 400, NULL, "empty request body: expected a JSON object");
    return;
  }
  cJSON *req = cJSON_ParseWithLength(st->buf, st->len);
  if (!req) {
    vl_reply_error(r, 400, NULL, "malformed JSON in the request body");
    return;
  }
  if (!cJSON_IsObject(req)) {
    cJSON_Delete(req);
    vl_reply_error(r, 400, NULL, "the request body must be a JSON object");
    return;
  }
  vl_clear_error();
  if (kind == R_CHAT) vl_route_chat(srv, req, r);
  if (kind == R_DESCRIBE) vl_route_describe(srv, req, r);
  if (kind == R_ENTAIL) vl_route_entail(srv, req, r);
  cJSON_Delete(req);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  vl_server *srv = cls;
  (void)version;
  int found = -1, path_known = 0;
  const char *allow = NULL;
  const char *m = !strcmp(method, "HEAD") ? "GET" : method;
  for (int i = 0; i < N_ROUTES; i++) {
    if (strcmp(url, routes[i].path)) continue;
    path_known = 1;
    allow = routes[i].method;
    if (!strcmp(m, routes[i].method)) found = i;
  }
  req_state *st = *con_cls;
  if (!st) {
    st = calloc(1, sizeof *st);
    if (!st) return MHD_NO;
    *con_cls = st;
    vl_reply r = {0};
    if (found < 0) { /* answer at once, the body is not read */
      st->answered = 1;
      if (path_known)
        vl_reply_error(&r, 405, NULL, "method %s not allowed on %s (use %s)", method, url, allow);
      else
        vl_reply_error(&r, 404, NULL, "no endpoint %s %s", method, url);
      return send_reply(c, srv, &r, path_known ? allow : NULL);
    }
    /* A body somewhat over the limit is read and dropped, then answered (the
     * client sees the 413 rather than a reset); a far larger one is answered
     * at once and the connection closed. */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    unsigned long long clen = cl ? strtoull(cl, NULL, 10) : 0;
    if (clen > srv->o.max_body) st->too_big = 1;
    if (clen / 4 > srv->o.max_body) {
      st->answered = 1;
      vl_reply_error(&r, 413, NULL, "request body of %s bytes over the limit of %zu bytes", cl,
                     srv->o.max_body);
      return send_reply(c, srv, &r, NULL);
    }
    return MHD_YES;
  }
  if (*upload_size) {
    size_t n = *upload_size;
    *upload_size = 0;
    if (st->answered) return MHD_YES;
    if (st->too_big || st->len + n > srv->o.max_body) {
      st->too_big = 1;
      return MHD_YES;
    }
    if (st->len + n + 1 > st->cap) {
      size_t cap = st->cap ? st->cap : 4096;
      while (cap < st->len + n + 1)
        cap *= 2;
      char *p = realloc(st->buf, cap);
      if (!p) {
        st->too_big = 1;
        return MHD_YES;
      }
      st->buf = p;
      st->cap = cap;
    }
    memcpy(st->buf + st->len, upload, n);
    st->len += n;
    return MHD_YES;
  }
  if (st->answered) return MHD_YES;
  vl_reply r = {0};
  if (routes[found].kind == R_UI) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(vl_ui_html_len, (void *)vl_ui_html, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
  }
  dispatch(srv, routes[found].kind, st, &r);
  return send_reply(c, srv, &r, NULL);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls, (void)c, (void)toe;
  req_state *st = *con_cls;
  if (st) {
    free(st->buf);
    free(st);
    *con_cls = NULL;
  }
}

/* ---- life cycle ------------------------------------------------------- */

static int load_models(vl_server *s) {
  if (s->o.llm_dir) {
    vl_log("serve: loading LLM %s", s->o.llm_dir);
    if (!(s->llm = vl_qwen_text_load(s->o.llm_dir)))
      return vl_error_context("serve: LLM %s", s->o.llm_dir);
    if (!(s->tok = vl_tokenizer_load(s->o.llm_dir)))
      return vl_error_context("serve: LLM tokenizer %s", s->o.llm_dir);
    if (vl_chat_detect_folder(s->o.llm_dir, &s->tmpl))
      return vl_error_context("serve: LLM %s", s->o.llm_dir);
    vl_model_name(s->o.llm_dir, s->llm_name, sizeof s->llm_name);
  }
  if (s->o.captioner_dir) {
    vl_log("serve: loading captioner %s", s->o.captioner_dir);
    if (!(s->cap = vl_blip_load(s->o.captioner_dir)))
      return vl_error_context("serve: captioner %s", s->o.captioner_dir);
    vl_model_name(s->o.captioner_dir, s->cap_name, sizeof s->cap_name);
  }
  return VL_OK;
}

static void free_server(vl_server *s) {
  vl_blip_free(s->cap);
  vl_tokenizer_free(s->tok);
  vl_qwen_text_free(s->llm);
  free(s);
}

vl_server *vl_server_start(const vl_serve_opts *o) {
  if (!o || (!o->llm_dir && !o->captioner_dir)) {
    vl_error(VL_ERR_INVALID, "serve: no model to serve (give an LLM and/or a captioner)");
    return NULL;
  }
  if (o->port < 0 || o->port > 65535) {
    vl_error(VL_ERR_INVALID, "serve: port %d out of range 0..65535", o->port);
    return NULL;
  }
  vl_server *s = calloc(1, sizeof *s);
  if (!s) {
    vl_error(VL_ERR_NOMEM, "serve: out of memory");
    return NULL;
  }
  s->o = *o;
  if (!s->o.host) s->o.host = "127.0.0.1";
  if (!s->o.max_body) s->o.max_body = (size_t)32 << 20;
  if (s->o.max_image_pixels <= 0) s->o.max_image_pixels = INT64_C(16) * 1000 * 1000;
  if (!s->o.max_prompt) s->o.max_prompt = (size_t)64 << 10;
  if (s->o.max_tokens <= 0) s->o.max_tokens = 4096;
  if (load_models(s)) {
    free_server(s);
    return NULL;
  }
  struct addrinfo hints = {
      .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  struct addrinfo *ai = NULL;
  char port[16];
  snprintf(port, sizeof port, "%d", o->port);
  int gai = getaddrinfo(s->o.host, port, &hints, &ai);
  if (gai || !ai) {
    vl_error(VL_ERR_INVALID, "serve: host '%s': %s", s->o.host, gai_strerror(gai));
    free_server(s);
    return NULL;
  }
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  s->daemon =
      MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                       ai->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_CONNECTION_LIMIT,
                       64u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
  freeaddrinfo(ai);
  if (!s->daemon) {
    vl_error(VL_ERR_IO, "serve: cannot listen on %s port %d (in use, or not an address here)",
             s->o.host, o->port);
    free_server(s);
    return NULL;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_LISTEN_FD);
  struct sockaddr_storage sa;
  socklen_t sl = sizeof sa;
  s->port = o->port;
  if (info && !getsockname(info->listen_fd, (struct sockaddr *)&sa, &sl))
    s->port = sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&sa)->sin_port);
  return s;
}

int vl_server_port(const vl_server *s) { return s ? s->port : 0; }

void vl_server_stop(vl_server *s) {
  if (!s) return;
  atomic_store(&s->stopping, 1);
  if (s->daemon) MHD_stop_daemon(s->daemon);
  free_server(s);
}
