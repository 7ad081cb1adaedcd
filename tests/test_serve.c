/* vlens serve: the server started in-process on 127.0.0.1 (ephemeral port)
 * with the golden tiny models, talked to by a plain socket client: health,
 * models, chat completions (plain and SSE, checked against vl_generate /
 * vl_describe run directly), describe / entail with overlays, and every
 * malformed request answered with a 4xx JSON error. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "base/log.h"
#include "io/shapes_world.h"
#include "render/png.h"
#include "serve/serve.h"
#include "serve/serve_impl.h"
#include "tasks/describe.h"
#include "tasks/explain_slices.h"
#include "tasks/generate.h"
#include "tasks/train.h"
#include "test.h"
#include "text/chat.h"
#include "text/reasoning.h"

#define MAX_BODY (64 << 10)
#define MAX_PROMPT 4096

static vl_server *srv;

typedef struct {
  int status;
  char ctype[128];
  char *body; /* NUL-terminated, chunked encoding undone */
  size_t len;
} http_resp;

static void resp_free(http_resp *r) {
  free(r->body);
  memset(r, 0, sizeof *r);
}

/* Undoes Transfer-Encoding: chunked in place; -1 when malformed. */
static int dechunk(char *b, size_t n, size_t *out) {
  size_t i = 0, k = 0;
  for (int guard = 0; guard < 1000000; guard++) {
    char *end;
    if (i >= n) return -1;
    unsigned long sz = strtoul(b + i, &end, 16);
    char *crlf = strstr(b + i, "\r\n");
    if (!crlf || end > crlf) return -1;
    i = (size_t)(crlf - b) + 2;
    if (sz == 0) {
      *out = k;
      b[k] = 0;
      return 0;
    }
    if (i + sz + 2 > n) return -1;
    memmove(b + k, b + i, sz);
    k += sz;
    i += sz + 2;
  }
  return -1;
}

/* One request on a fresh connection (Connection: close). head_extra: more
 * header lines ("X: y\r\n"), or NULL. body may be NULL. clen_override >= 0
 * sends that Content-Length whatever the body. 0, or -1 on a socket error. */
static int http_raw(const char *method, const char *path, const char *head_extra, const char *body,
                    size_t blen, long clen_override, http_resp *out) {
  memset(out, 0, sizeof *out);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct timeval tv = {.tv_sec = 120};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)vl_server_port(srv))};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
    close(fd);
    return -1;
  }
  char head[1024];
  int hn = snprintf(head, sizeof head,
                    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                    "Content-Length: %ld\r\n\r\n",
                    method, path, head_extra ? head_extra : "",
                    clen_override >= 0 ? clen_override : (long)blen);
  ssize_t w = send(fd, head, (size_t)hn, MSG_NOSIGNAL);
  for (size_t off = 0; w >= 0 && body && off < blen; off += (size_t)w)
    w = send(fd, body + off, blen - off, MSG_NOSIGNAL);
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  for (int guard = 0; buf && guard < 100000; guard++) {
    if (n + 4096 > cap) {
      char *p = realloc(buf, cap *= 2);
      if (!p) break;
      buf = p;
    }
    ssize_t k = recv(fd, buf + n, cap - n - 1, 0);
    if (k <= 0) break;
    n += (size_t)k;
  }
  close(fd);
  if (!buf || !n) {
    free(buf);
    return -1;
  }
  buf[n] = 0;
  char *sep = strstr(buf, "\r\n\r\n");
  if (!sep || sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1) {
    free(buf);
    return -1;
  }
  *sep = 0;
  const char *ct = strcasestr(buf, "\r\nContent-Type: ");
  if (ct) sscanf(ct + 16, "%127[^\r]", out->ctype);
  int chunked = strcasestr(buf, "Transfer-Encoding: chunked") != NULL;
  size_t hl = (size_t)(sep - buf) + 4;
  out->len = n - hl;
  memmove(buf, buf + hl, out->len + 1);
  out->body = buf;
  if (chunked && dechunk(out->body, out->len, &out->len)) return -1;
  return 0;
}

static int http(const char *method, const char *path, const char *body, http_resp *out) {
  return http_raw(method, path, "Content-Type: application/json\r\n", body, body ? strlen(body) : 0,
                  -1, out);
}

/* POST doc (printed, freed) and parse the JSON reply. */
static cJSON *post_json(const char *path, cJSON *doc, int *status) {
  char *s = cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  http_resp r;
  *status = -1;
  int rc = http("POST", path, s, &r);
  free(s);
  if (rc) return NULL;
  *status = r.status;
  cJSON *j = cJSON_ParseWithLength(r.body, r.len);
  if (!j) printf("  not JSON (%d): %.300s\n", r.status, r.body);
  resp_free(&r);
  return j;
}

/* A 4xx with the OpenAI error shape and code == status. */
static int is_error(const http_resp *r, int status) {
  cJSON *j = cJSON_ParseWithLength(r->body, r->len);
  cJSON *e = cJSON_GetObjectItem(j, "error");
  cJSON *m = cJSON_GetObjectItem(e, "message"), *t = cJSON_GetObjectItem(e, "type"),
        *c = cJSON_GetObjectItem(e, "code");
  int ok = r->status == status && cJSON_IsString(m) && m->valuestring[0] && cJSON_IsString(t) &&
           cJSON_IsNumber(c) && c->valueint == status && strstr(r->ctype, "application/json");
  if (!ok) printf("  expected %d error, got %d: %.300s\n", status, r->status, r->body);
  cJSON_Delete(j);
  return ok;
}

static int expect_error(const char *method, const char *path, const char *body, int status) {
  http_resp r;
  if (http(method, path, body, &r)) {
    printf("  %s %s: no reply\n", method, path);
    return 0;
  }
  int ok = is_error(&r, status);
  resp_free(&r);
  return ok;
}

static char *image_data_uri(void) {
  size_t n;
  unsigned char *png = test_read_file(test_shared_path("golden/blip-cap-a/image.png"), &n);
  if (!png) return NULL;
  char *b = vl_base64_encode(png, n);
  free(png);
  char *uri = b ? malloc(strlen(b) + 32) : NULL;
  if (uri) sprintf(uri, "data:image/png;base64,%s", b);
  free(b);
  return uri;
}

static cJSON *chat_request(const char *text, int stream) {
  cJSON *d = cJSON_CreateObject(), *ms = cJSON_AddArrayToObject(d, "messages");
  cJSON *m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "role", "user");
  cJSON_AddStringToObject(m, "content", text);
  cJSON_AddItemToArray(ms, m);
  cJSON_AddNumberToObject(d, "max_tokens", 8);
  cJSON_AddNumberToObject(d, "temperature", 0);
  if (stream) cJSON_AddTrueToObject(d, "stream");
  return d;
}

/* ---- tests ------------------------------------------------------------ */

static void test_base64(void) {
  unsigned char *o;
  size_t n;
  REQUIRE(vl_base64_decode("aGVsbG8=", 8, &o, &n) == 0);
  CHECK(n == 5 && !memcmp(o, "hello", 5));
  free(o);
  REQUIRE(vl_base64_decode("aGVs\nbG8", 8, &o, &n) == 0); /* no padding, a newline */
  CHECK(n == 5 && !memcmp(o, "hello", 5));
  free(o);
  CHECK(vl_base64_decode("aGVsbG8*", 8, &o, &n) == -1);
  CHECK(vl_base64_decode("a", 1, &o, &n) == -1);
  CHECK(vl_base64_decode("aG=VsbG8", 8, &o, &n) == -1);
  char *e = vl_base64_encode((const unsigned char *)"hello", 5);
  CHECK(e && !strcmp(e, "aGVsbG8="));
  free(e);
}

static void test_health_models_ui(void) {
  http_resp r;
  REQUIRE(http("GET", "/health", NULL, &r) == 0);
  CHECK(r.status == 200 && strstr(r.body, "\"ok\""));
  resp_free(&r);
  REQUIRE(http("GET", "/v1/models", NULL, &r) == 0);
  CHECK(r.status == 200);
  cJSON *j = cJSON_Parse(r.body), *data = cJSON_GetObjectItem(j, "data");
  CHECK(cJSON_GetArraySize(data) == 2);
  CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(data, 0), "id")->valuestring, "qwen3-a"));
  CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(data, 1), "id")->valuestring, "blip-cap-a"));
  cJSON_Delete(j);
  resp_free(&r);
  REQUIRE(http("GET", "/", NULL, &r) == 0);
  CHECK(r.status == 200 && strstr(r.ctype, "text/html"));
  CHECK(r.len > 1000 && strstr(r.body, "/v1/describe") && strstr(r.body, "</html>"));
  resp_free(&r);
}

/* The reply of the server equals greedy vl_generate over the Qwen3 template
 * (thinking off) run here. */
static void test_chat_completion(void) {
  const char *dir = test_shared_path("golden/qwen3-a");
  vl_qwen_text *m = vl_qwen_text_load(dir);
  vl_tokenizer *tok = vl_tokenizer_load(dir);
  REQUIRE(m && tok);
  vl_chat_message msg = {.role = "user", .content = "hello there"};
  vl_chat_options co = vl_chat_default_options();
  co.enable_thinking = 0;
  char *prompt = vl_chat_render(VL_CHAT_QWEN3, &msg, 1, &co);
  REQUIRE(prompt);
  int32_t *ids, *out;
  size_t n_ids, n_out;
  REQUIRE(vl_tokenizer_encode(tok, prompt, strlen(prompt), 0, &ids, &n_ids) == 0);
  vl_generate_opts go = {.sampling = vl_sampler_defaults(), .max_tokens = 8};
  REQUIRE(vl_generate(m, tok, ids, n_ids, &go, NULL, NULL, &out, &n_out, NULL) == 0);
  char *text;
  size_t tl;
  REQUIRE(vl_tokenizer_decode(tok, out, n_out, 1, &text, &tl) == 0);
  char *want = vl_reasoning_answer(text);

  int st;
  cJSON *j = post_json("/v1/chat/completions", chat_request("hello there", 0), &st);
  REQUIRE(j);
  CHECK(st == 200);
  CHECK(!strcmp(cJSON_GetObjectItem(j, "object")->valuestring, "chat.completion"));
  cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
  cJSON *msgj = cJSON_GetObjectItem(c0, "message");
  REQUIRE(cJSON_IsString(cJSON_GetObjectItem(msgj, "content")));
  CHECK(!strcmp(cJSON_GetObjectItem(msgj, "role")->valuestring, "assistant"));
  const char *got = cJSON_GetObjectItem(msgj, "content")->valuestring;
  if (strcmp(got, want)) printf("  got '%s', want '%s'\n", got, want);
  CHECK(!strcmp(got, want));
  cJSON *u = cJSON_GetObjectItem(j, "usage");
  CHECK(cJSON_GetObjectItem(u, "prompt_tokens")->valueint == (int)n_ids);
  CHECK(cJSON_GetObjectItem(u, "completion_tokens")->valueint == (int)n_out);
  const char *fin = cJSON_GetObjectItem(c0, "finish_reason")->valuestring;
  CHECK(!strcmp(fin, n_out == 8 && !vl_qwen_is_eos(&m->cfg, out[7]) ? "length" : "stop"));
  cJSON_Delete(j);

  /* streamed: valid SSE framing, chunks, a final finish_reason, [DONE]; the
   * content pieces add up to the same answer */
  cJSON *sreq = chat_request("hello there", 1);
  char *s = cJSON_PrintUnformatted(sreq);
  cJSON_Delete(sreq);
  http_resp r;
  REQUIRE(http("POST", "/v1/chat/completions", s, &r) == 0);
  free(s);
  CHECK(r.status == 200 && strstr(r.ctype, "text/event-stream"));
  char acc[4096] = "";
  int n_events = 0, done = 0, finished = 0, framing = 1;
  char *p = r.body;
  while (*p && n_events < 1000) {
    char *end = strstr(p, "\n\n");
    if (strncmp(p, "data: ", 6) || !end || done) {
      framing = 0;
      break;
    }
    *end = 0;
    n_events++;
    if (!strcmp(p + 6, "[DONE]")) {
      done = 1;
    } else {
      cJSON *ev = cJSON_Parse(p + 6);
      if (!ev || strcmp(cJSON_GetObjectItem(ev, "object")->valuestring, "chat.completion.chunk"))
        framing = 0;
      cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(ev, "choices"), 0);
      cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "delta"), "content");
      if (cJSON_IsString(c)) strncat(acc, c->valuestring, sizeof acc - strlen(acc) - 1);
      if (cJSON_IsString(cJSON_GetObjectItem(ch, "finish_reason"))) finished++;
      cJSON_Delete(ev);
    }
    p = end + 2;
  }
  CHECK(framing && done && finished == 1 && n_events >= 3);
  /* the stream drops the leading blank of the answer as the think filter does */
  if (strcmp(acc, want)) printf("  streamed '%s', want '%s'\n", acc, want);
  CHECK(!strcmp(acc, want));
  resp_free(&r);

  /* a stop string: the answer ends before it, finish_reason "stop" */
  if (strlen(want) >= 2) {
    char stop[8];
    snprintf(stop, sizeof stop, "%.2s", want + strlen(want) / 2);
    cJSON *sq = chat_request("hello there", 0);
    cJSON_AddItemToObject(sq, "stop", cJSON_CreateStringArray((const char *const[]){stop}, 1));
    j = post_json("/v1/chat/completions", sq, &st);
    REQUIRE(j && st == 200);
    c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    const char *got2 =
        cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "message"), "content")->valuestring;
    CHECK(!strcmp(cJSON_GetObjectItem(c0, "finish_reason")->valuestring, "stop"));
    CHECK(strstr(got2, stop) == NULL && !strncmp(want, got2, strlen(got2)));
    cJSON_Delete(j);
  }
  free(want);
  free(text);
  free(out);
  free(ids);
  free(prompt);
  vl_tokenizer_free(tok);
  vl_qwen_text_free(m);
}

/* describe over HTTP equals vl_describe here; overlays are PNG data URIs;
 * a chat message with the image is answered with the same caption. */
static void test_describe_entail(void) {
  char *uri = image_data_uri();
  REQUIRE(uri);
  vl_blip *m = vl_blip_load(test_shared_path("golden/blip-cap-a"));
  vl_image *img = vl_image_load(test_shared_path("golden/blip-cap-a/image.png"), 0);
  REQUIRE(m && img);
  vl_explain_cfg cfg;
  REQUIRE(vl_explain_cfg_parse(&cfg, "gradcam") == 0);
  vl_describe_opts o = {.max_length = 6};
  vl_describe_result res;
  REQUIRE(vl_describe(m, img, &o, &cfg, &res) == 0);

  cJSON *d = cJSON_CreateObject();
  cJSON_AddStringToObject(d, "image", uri);
  cJSON_AddStringToObject(d, "methods", "gradcam");
  cJSON_AddNumberToObject(d, "max_length", 6);
  cJSON_AddTrueToObject(d, "overlays");
  int st;
  cJSON *j = post_json("/v1/describe", d, &st);
  REQUIRE(j);
  CHECK(st == 200);
  CHECK(!strcmp(cJSON_GetObjectItem(j, "task")->valuestring, "describe"));
  CHECK(!strcmp(cJSON_GetObjectItem(j, "text")->valuestring, res.text));
  cJSON *words = cJSON_GetObjectItem(j, "words");
  CHECK(cJSON_GetArraySize(words) == res.n_words);
  int overlays = 0;
  cJSON *w;
  cJSON_ArrayForEach(w, words) {
    cJSON *gc = cJSON_GetObjectItem(cJSON_GetObjectItem(w, "explanations"), "gradcam");
    if (!gc) continue;
    CHECK(!cJSON_HasObjectItem(gc, "layers") && !cJSON_HasObjectItem(gc, "heads")); /* not asked */
    cJSON *grid = cJSON_GetObjectItem(gc, "grid");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(gc, "cells")) ==
          cJSON_GetArrayItem(grid, 0)->valueint * cJSON_GetArrayItem(grid, 1)->valueint);
    cJSON *ov = cJSON_GetObjectItem(gc, "overlay");
    REQUIRE(cJSON_IsString(ov) && !strncmp(ov->valuestring, "data:image/png;base64,", 22));
    unsigned char *png;
    size_t n;
    REQUIRE(vl_base64_decode(ov->valuestring + 22, strlen(ov->valuestring + 22), &png, &n) == 0);
    vl_image *oi = vl_image_decode(png, n, 0, "overlay");
    CHECK(oi && oi->width == img->width && oi->height == img->height);
    vl_image_free(oi);
    free(png);
    overlays++;
  }
  CHECK(overlays > 0);
  cJSON_Delete(j);

  /* "layer": "all", "heads": true: the per-layer / per-head maps, the same as
   * the task functions add here */
  vl_explain_cfg scfg;
  REQUIRE(vl_explain_cfg_parse(&scfg, "gradcam,attention") == 0);
  vl_describe_result sres;
  REQUIRE(vl_describe(m, img, &o, &scfg, &sres) == 0);
  cJSON *want = vl_describe_to_json(&sres, &scfg, "blip-cap-a", NULL, NULL, 0);
  const vl_slices_opts so = {.layers = true, .heads = true};
  REQUIRE(want && vl_describe_slices_json(m, img, NULL, &sres, &scfg, &so, want) == 0);
  d = cJSON_CreateObject();
  cJSON_AddStringToObject(d, "image", uri);
  cJSON_AddStringToObject(d, "methods", "gradcam,attention");
  cJSON_AddNumberToObject(d, "max_length", 6);
  cJSON_AddStringToObject(d, "layer", "all");
  cJSON_AddTrueToObject(d, "heads");
  j = post_json("/v1/describe", d, &st);
  REQUIRE(j);
  CHECK(st == 200);
  const int n_gc_layers = vl_slices_n_layers(m, "gradcam"),
            n_att_layers = vl_slices_n_layers(m, "attention"),
            n_att_heads = vl_slices_n_heads(m, "attention");
  REQUIRE(n_gc_layers > 0 && n_att_layers > 0 && n_att_heads > 0);
  int sliced = 0;
  cJSON_ArrayForEach(w, cJSON_GetObjectItem(j, "words")) {
    cJSON *ex = cJSON_GetObjectItem(w, "explanations");
    if (!ex) continue;
    cJSON *gc = cJSON_GetObjectItem(ex, "gradcam"), *att = cJSON_GetObjectItem(ex, "attention");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(gc, "layers")) == n_gc_layers);
    CHECK(!cJSON_HasObjectItem(gc, "heads")); /* Grad-CAM reads no attention */
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(att, "layers")) == n_att_layers);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(att, "heads")) == n_att_heads);
    sliced++;
  }
  CHECK(sliced > 0);
  CHECK(cJSON_Compare(cJSON_GetObjectItem(j, "words"), cJSON_GetObjectItem(want, "words"), 1));
  CHECK(cJSON_Compare(cJSON_GetObjectItem(j, "tokens"), cJSON_GetObjectItem(want, "tokens"), 1));
  cJSON_Delete(j);
  cJSON_Delete(want);
  vl_describe_result_free(&sres);
  vl_explain_cfg_free(&scfg);

  /* chat with the image: the captioner answers */
  cJSON *c = cJSON_CreateObject(), *ms = cJSON_AddArrayToObject(c, "messages");
  cJSON *msg = cJSON_CreateObject(), *parts = cJSON_CreateArray();
  cJSON_AddStringToObject(msg, "role", "user");
  cJSON *p1 = cJSON_CreateObject(), *p2 = cJSON_CreateObject();
  cJSON_AddStringToObject(p1, "type", "text");
  cJSON_AddStringToObject(p1, "text", "Describe this image.");
  cJSON_AddStringToObject(p2, "type", "image_url");
  cJSON_AddStringToObject(cJSON_AddObjectToObject(p2, "image_url"), "url", uri);
  cJSON_AddItemToArray(parts, p1);
  cJSON_AddItemToArray(parts, p2);
  cJSON_AddItemToObject(msg, "content", parts);
  cJSON_AddItemToArray(ms, msg);
  j = post_json("/v1/chat/completions", c, &st);
  REQUIRE(j);
  CHECK(st == 200);
  cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
  vl_describe_result res20;
  vl_describe_opts o20 = {.explain = "none"};
  REQUIRE(vl_describe(m, img, &o20, &cfg, &res20) == 0);
  CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "message"), "content")->valuestring,
                res20.text));
  CHECK(!strcmp(cJSON_GetObjectItem(j, "model")->valuestring, "blip-cap-a"));
  vl_describe_result_free(&res20);
  cJSON_Delete(j);

  /* entail: this golden model has no yes/maybe/no answer words */
  d = cJSON_CreateObject();
  cJSON_AddStringToObject(d, "image", uri);
  cJSON_AddStringToObject(d, "hypothesis", "a picture of a cafe");
  j = post_json("/v1/entail", d, &st);
  cJSON *em = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "message");
  CHECK(st == 400 && cJSON_IsString(em) && strstr(em->valuestring, "'yes'"));
  cJSON_Delete(j);

  vl_describe_result_free(&res);
  vl_explain_cfg_free(&cfg);
  vl_image_free(img);
  vl_blip_free(m);
  free(uri);
}

/* entail on a fresh tiny Shapes World BLIP (it has the answer words), on a
 * server of its own: the label is the argmax of probs summing to 1, and the
 * decision's map comes with its overlay. */
static void test_entail(void) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tiny-blip", test_tmpdir());
  REQUIRE(vl_train_init_model(dir, "tiny", 0, 7) == VL_OK);
  vl_shapes_scene *sc = vl_shapes_generate(3, 0, NULL);
  REQUIRE(sc);
  uint8_t *png;
  size_t n;
  REQUIRE(vl_png_encode(sc->image, &png, &n) == 0);
  vl_shapes_free(sc);
  char *b64 = vl_base64_encode(png, n);
  free(png);
  REQUIRE(b64);
  vl_server *main_srv = srv;
  srv = vl_server_start(&(vl_serve_opts){.port = 0, .captioner_dir = dir});
  REQUIRE(srv);
  cJSON *d = cJSON_CreateObject();
  cJSON_AddStringToObject(d, "image", b64); /* bare base64 is accepted too */
  cJSON_AddStringToObject(d, "hypothesis", "there is a red circle.");
  cJSON_AddStringToObject(d, "methods", "gradcam,attention");
  cJSON_AddTrueToObject(d, "overlays");
  cJSON_AddStringToObject(d, "layer", "all");
  cJSON_AddStringToObject(d, "heads", "all");
  int st;
  cJSON *j = post_json("/v1/entail", d, &st);
  vl_blip *m = vl_blip_load(dir);
  REQUIRE(m);
  const int n_gc_layers = vl_slices_n_layers(m, "gradcam"),
            n_att_layers = vl_slices_n_layers(m, "attention"),
            n_att_heads = vl_slices_n_heads(m, "attention");
  vl_blip_free(m);
  vl_server_stop(srv);
  srv = main_srv;
  free(b64);
  REQUIRE(j);
  if (st != 200) {
    char *e = cJSON_PrintUnformatted(j);
    printf("  entail: %d %.400s\n", st, e);
    free(e);
  }
  REQUIRE(st == 200);
  CHECK(!strcmp(cJSON_GetObjectItem(j, "task")->valuestring, "entail"));
  const char *label = cJSON_GetObjectItem(j, "label")->valuestring;
  const char *names[3] = {"entailment", "neutral", "contradiction"};
  cJSON *pr = cJSON_GetObjectItem(j, "probs");
  double sum = 0, best = -1;
  int arg = -1;
  for (int l = 0; l < 3; l++) {
    double p = cJSON_GetObjectItem(pr, names[l])->valuedouble;
    sum += p;
    if (p > best) best = p, arg = l;
  }
  CHECK_NEAR(sum, 1.0, 1e-5);
  CHECK(arg >= 0 && !strcmp(label, names[arg]));
  cJSON *ex = cJSON_GetObjectItem(j, "explanations");
  CHECK(cJSON_GetArraySize(ex) == 2);
  cJSON *gc = cJSON_GetObjectItem(ex, "gradcam");
  CHECK(gc && cJSON_IsString(cJSON_GetObjectItem(gc, "overlay")));
  cJSON *att = cJSON_GetObjectItem(ex, "attention");
  CHECK(cJSON_IsString(cJSON_GetObjectItem(att, "overlay")));
  /* the slices, each layer of attention with its heads; overlays on the main maps only */
  CHECK(n_gc_layers > 0 && cJSON_GetArraySize(cJSON_GetObjectItem(gc, "layers")) == n_gc_layers);
  CHECK(!cJSON_HasObjectItem(gc, "heads"));
  cJSON *layers = cJSON_GetObjectItem(att, "layers"), *heads = cJSON_GetObjectItem(att, "heads");
  CHECK(n_att_layers > 0 && cJSON_GetArraySize(layers) == n_att_layers);
  CHECK(n_att_heads > 0 && cJSON_GetArraySize(heads) == n_att_heads);
  cJSON *l;
  cJSON_ArrayForEach(l, layers) {
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(l, "heads")) == n_att_heads);
    CHECK(!cJSON_HasObjectItem(l, "overlay"));
  }
  CHECK(!cJSON_HasObjectItem(cJSON_GetArrayItem(heads, 0), "overlay"));
  cJSON_Delete(j);
}

static void test_bad_requests(void) {
  const char *chat = "/v1/chat/completions";
  CHECK(expect_error("GET", "/v1/nope", NULL, 404));
  CHECK(expect_error("POST", "/nope", "{}", 404));
  CHECK(expect_error("GET", chat, NULL, 405));
  CHECK(expect_error("POST", "/health", "{}", 405));
  CHECK(expect_error("DELETE", "/v1/models", NULL, 405));
  CHECK(expect_error("POST", chat, "", 400));
  CHECK(expect_error("POST", chat, "{\"messages\": [", 400));
  CHECK(expect_error("POST", chat, "[1, 2]", 400));
  CHECK(expect_error("POST", chat, "{}", 400));
  CHECK(expect_error("POST", chat, "{\"messages\": \"hi\"}", 400));
  CHECK(expect_error("POST", chat, "{\"messages\": []}", 400));
  CHECK(expect_error("POST", chat, "{\"messages\": [3]}", 400));
  CHECK(expect_error("POST", chat, "{\"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}",
                     400));
  CHECK(expect_error("POST", chat, "{\"messages\": [{\"role\": \"user\"}]}", 400));
  CHECK(expect_error("POST", chat, "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", 400));
  CHECK(expect_error("POST", chat,
                     "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"audio\"}]}]}",
                     400));
  const char *hi = "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]";
  char b[512];
  const char *bad_params[] = {"\"temperature\": \"hot\"",   "\"temperature\": -1",
                              "\"max_tokens\": 0",          "\"max_tokens\": 1e9",
                              "\"max_tokens\": 2.5",        "\"top_p\": 0",
                              "\"stream\": \"yes\"",        "\"stop\": 7",
                              "\"stop\": [\"\"]",           "\"n\": 2",
                              "\"chat_template_kwargs\": 1"};
  for (size_t i = 0; i < sizeof bad_params / sizeof *bad_params; i++) {
    snprintf(b, sizeof b, "{%s, %s}", hi, bad_params[i]);
    if (!expect_error("POST", chat, b, 400)) {
      printf("  for %s\n", bad_params[i]);
      CHECK(0);
    }
  }
  /* an http image URL, bad base64, bytes that are no image */
  const char *imgs[] = {"http://example.com/a.png", "data:image/png;base64,@@@@",
                        "data:image/png,rawbytes", "bm90IGFuIGltYWdl"};
  for (size_t i = 0; i < sizeof imgs / sizeof *imgs; i++) {
    snprintf(b, sizeof b,
             "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", "
             "\"image_url\": {\"url\": \"%s\"}}]}]}",
             imgs[i]);
    CHECK(expect_error("POST", chat, b, 400));
    snprintf(b, sizeof b, "{\"image\": \"%s\"}", imgs[i]);
    CHECK(expect_error("POST", "/v1/describe", b, 400));
  }
  CHECK(expect_error("POST", "/v1/describe", "{}", 400));
  CHECK(expect_error("POST", "/v1/describe", "{\"image\": 12}", 400));
  /* an image over the pixel limit (2 megapixels here): 413 */
  vl_image *big = vl_image_new(2000, 1001, 1);
  uint8_t *png;
  size_t n;
  REQUIRE(big && vl_png_encode(big, &png, &n) == 0);
  vl_image_free(big);
  char *b64 = vl_base64_encode(png, n);
  free(png);
  REQUIRE(b64 && strlen(b64) < MAX_BODY - 100);
  char *body = malloc(strlen(b64) + 64);
  sprintf(body, "{\"image\": \"%s\"}", b64);
  CHECK(expect_error("POST", "/v1/describe", body, 413));
  free(body);
  free(b64);
  /* describe / entail options */
  char *uri = image_data_uri();
  REQUIRE(uri);
  const char *bad_opts[] = {
      "\"methods\": \"nonsense\"", "\"methods\": 3",  "\"layer\": 99",
      "\"max_length\": 1000",      "\"overlays\": 1", "\"explain\": \"zebra\""};
  body = malloc(strlen(uri) + 256);
  for (size_t i = 0; i < sizeof bad_opts / sizeof *bad_opts; i++) {
    sprintf(body, "{\"image\": \"%s\", %s}", uri, bad_opts[i]);
    if (!expect_error("POST", "/v1/describe", body, 400)) {
      printf("  for %s\n", bad_opts[i]);
      CHECK(0);
    }
  }
  /* "layer" / "heads" take "all" but no other word, "heads" no number (that is
   * "head"): the message names the field */
  const char *bad_slices[][2] = {{"\"layer\": \"every\"", "'layer'"},
                                 {"\"heads\": 3", "'heads'"},
                                 {"\"heads\": \"some\"", "'heads'"},
                                 {"\"layer\": true", "'layer'"}};
  for (size_t i = 0; i < sizeof bad_slices / sizeof *bad_slices; i++) {
    sprintf(body, "{\"image\": \"%s\", %s}", uri, bad_slices[i][0]);
    int st = 0;
    cJSON *j = post_json("/v1/describe", cJSON_Parse(body), &st);
    const cJSON *msg = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "message");
    if (st != 400 || !cJSON_IsString(msg) || !strstr(msg->valuestring, bad_slices[i][1])) {
      printf("  for %s: %d\n", bad_slices[i][0], st);
      CHECK(0);
    }
    cJSON_Delete(j);
  }
  sprintf(body, "{\"image\": \"%s\"}", uri);
  CHECK(expect_error("POST", "/v1/entail", body, 400)); /* no hypothesis */
  sprintf(body, "{\"image\": \"%s\", \"hypothesis\": 4}", uri);
  CHECK(expect_error("POST", "/v1/entail", body, 400));
  free(body);
  free(uri);
  /* prompt text over the limit */
  body = malloc(MAX_PROMPT + 256);
  int k = sprintf(body, "{\"messages\": [{\"role\": \"user\", \"content\": \"");
  memset(body + k, 'a', MAX_PROMPT + 10);
  strcpy(body + k + MAX_PROMPT + 10, "\"}]}");
  CHECK(expect_error("POST", chat, body, 400));
  free(body);
  /* a body over the limit: read and refused; one far over: refused at once */
  size_t big_n = MAX_BODY + 1000;
  body = malloc(big_n);
  memset(body, ' ', big_n);
  http_resp r;
  REQUIRE(http_raw("POST", chat, NULL, body, big_n, -1, &r) == 0);
  CHECK(is_error(&r, 413));
  resp_free(&r);
  REQUIRE(http_raw("POST", chat, NULL, NULL, 0, 100L << 20, &r) == 0);
  CHECK(is_error(&r, 413));
  resp_free(&r);
  free(body);
  /* still serving */
  REQUIRE(http("GET", "/health", NULL, &r) == 0);
  CHECK(r.status == 200);
  resp_free(&r);
}

/* A server with a captioner alone refuses text chat, lists one model. */
static void test_captioner_only(void) {
  vl_serve_opts o = {.port = 0, .captioner_dir = test_shared_path("golden/blip-cap-a")};
  vl_server *main_srv = srv;
  srv = vl_server_start(&o);
  REQUIRE(srv);
  CHECK(expect_error("POST", "/v1/chat/completions",
                     "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", 400));
  http_resp r;
  if (http("GET", "/v1/models", NULL, &r) == 0) {
    cJSON *j = cJSON_Parse(r.body);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "data")) == 1);
    cJSON_Delete(j);
    resp_free(&r);
  } else {
    CHECK(0);
  }
  vl_server_stop(srv);
  srv = main_srv;
  CHECK(vl_server_start(&(vl_serve_opts){.port = 0}) == NULL); /* no model */
  CHECK(vl_last_error()[0]);
}

int main(void) {
  vl_log_set_quiet(1);
  RUN(test_base64);
  /* test_shared_path's buffer is reused: copies */
  char llm[1024], cap[1024];
  snprintf(llm, sizeof llm, "%s", test_shared_path("golden/qwen3-a"));
  snprintf(cap, sizeof cap, "%s", test_shared_path("golden/blip-cap-a"));
  vl_serve_opts o = {.host = "127.0.0.1",
                     .port = 0,
                     .llm_dir = llm,
                     .captioner_dir = cap,
                     .max_body = MAX_BODY,
                     .max_image_pixels = 2000000,
                     .max_prompt = MAX_PROMPT,
                     .max_tokens = 64};
  srv = vl_server_start(&o);
  if (!srv) {
    printf("server: %s\n", vl_last_error());
    return 1;
  }
  if (getenv("VLENS_SERVE_WAIT")) { /* manual look at the UI: port on stdout */
    printf("listening on http://127.0.0.1:%d/\n", vl_server_port(srv));
    fflush(stdout);
    sleep((unsigned)atoi(getenv("VLENS_SERVE_WAIT")));
  }
  RUN(test_health_models_ui);
  RUN(test_chat_completion);
  RUN(test_describe_entail);
  RUN(test_entail);
  RUN(test_bad_requests);
  RUN(test_captioner_only);
  vl_server_stop(srv);
  return test_summary();
}
