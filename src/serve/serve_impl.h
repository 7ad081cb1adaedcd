/* Internals of the server shared by server.c (HTTP plumbing), request.c
 * (parsing helpers), routes_chat.c and routes_explain.c (endpoints). */
#ifndef VL_SERVE_SERVE_IMPL_H
#define VL_SERVE_SERVE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "io/image.h"
#include "models/blip.h"
#include "models/qwen_text.h"
#include "serve/serve.h"
#include "text/chat.h"
#include "text/tokenizer.h"

typedef struct vl_sse vl_sse;

struct vl_server {
  vl_serve_opts o; /* defaults filled in */
  struct MHD_Daemon *daemon;
  int port;
  vl_qwen_text *llm;
  vl_tokenizer *tok;
  vl_chat_template tmpl;
  char llm_name[256];
  vl_blip *cap;
  char cap_name[256];
  atomic_int stopping;
  atomic_ulong next_id;
};

/* What a handler answers: a complete body, or an SSE stream. */
typedef struct {
  int status;
  char *body; /* malloc'd */
  size_t len;
  const char *ctype;
  vl_sse *sse; /* non-NULL: text/event-stream produced by a thread */
} vl_reply;

/* Fills r with doc printed (doc freed). */
void vl_reply_json(vl_reply *r, int status, cJSON *doc);
/* {"error": {"message", "type", "code": status}}; returns -1. type NULL:
 * chosen from status. */
int vl_reply_error(vl_reply *r, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Error from vl_last_error(): bad input (invalid, format, limit, not found)
 * -> 400 (limit: 413 when what is "image"), anything else 500. Returns -1. */
int vl_reply_last_error(vl_reply *r, const char *what);

/* Runs fn(arg) on the process's one compute thread and returns its result;
 * one call at a time (the model lock), vl_error carried over to the caller's
 * thread. Model work never runs on connection threads: the tensor code keeps
 * per-thread scratch buffers, which would be lost with every thread that
 * ends; the compute thread lives as long as the process. */
int vl_serve_compute(int (*fn)(void *), void *arg);

/* ---- SSE streams (server.c) ------------------------------------------- */

/* run is called on a thread of its own once the response starts; it
 * produces events with vl_sse_send and returns; job_free(job) afterwards. */
typedef void (*vl_sse_run)(vl_sse *s, void *job);
int vl_reply_sse(vl_reply *r, vl_server *srv, vl_sse_run run, void (*job_free)(void *), void *job);
/* Appends "data: <json>\n\n" (doc freed; NULL: "data: [DONE]\n\n"). */
void vl_sse_send(vl_sse *s, cJSON *doc);
/* True once the client went away or the server is stopping. */
bool vl_sse_cancelled(vl_sse *s);

/* ---- request helpers (request.c) -------------------------------------- */

/* Base64 (standard or URL alphabet, padding optional, whitespace skipped).
 * *out malloc'd. -1 on a bad character or length. */
int vl_base64_decode(const char *s, size_t n, unsigned char **out, size_t *len);
/* malloc'd NUL-terminated base64 of data. */
char *vl_base64_encode(const unsigned char *data, size_t n);

/* An image given as a data: URI or bare base64 string; 0, or -1 with r set. */
int vl_req_image(const vl_server *s, const cJSON *v, const char *field, vl_image **out,
                 vl_reply *r);
/* Optional typed fields; missing/null leaves *out. -1 with r set on a wrong
 * type or a value outside [lo, hi]. */
int vl_req_number(const cJSON *obj, const char *key, double lo, double hi, double *out,
                  vl_reply *r);
int vl_req_int(const cJSON *obj, const char *key, int lo, int hi, int *out, vl_reply *r);
int vl_req_bool(const cJSON *obj, const char *key, bool *out, vl_reply *r);
/* String field; *out points into obj. max: byte limit. */
int vl_req_string(const cJSON *obj, const char *key, bool required, size_t max, const char **out,
                  vl_reply *r);
/* A string or an array of strings, joined with ',' into a malloc'd *out
 * (NULL when missing). */
int vl_req_csv(const cJSON *obj, const char *key, size_t max, char **out, vl_reply *r);

/* ---- endpoints -------------------------------------------------------- */

void vl_route_models(vl_server *s, vl_reply *r);
void vl_route_chat(vl_server *s, const cJSON *req, vl_reply *r);
void vl_route_describe(vl_server *s, const cJSON *req, vl_reply *r);
void vl_route_entail(vl_server *s, const cJSON *req, vl_reply *r);

/* The embedded UI page (ui.c). */
extern const char vl_ui_html[];
extern const unsigned int vl_ui_html_len;

#endif
