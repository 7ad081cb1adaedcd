/* `vlens serve`: an HTTP server (libmicrohttpd, one thread per connection,
 * one request computing at a time behind a model mutex) with
 *   GET  /                     the web UI (ui.html, embedded)
 *   GET  /health               {"status": "ok"}
 *   GET  /v1/models            the loaded models, OpenAI list shape
 *   POST /v1/chat/completions  OpenAI chat (llama.cpp server conventions):
 *                              text goes to the LLM through its chat
 *                              template; a message with an image_url part
 *                              (data: URI, base64 PNG/JPEG/...) is answered
 *                              with the captioner's caption; "stream": true
 *                              gives SSE chunks ending "data: [DONE]"
 *   POST /v1/describe          vlens: caption + explanations (cli-json.md)
 *   POST /v1/entail            vlens: entailment + explanation (cli-json.md)
 * Bad requests get a 4xx with {"error": {"message", "type", "code"}} where
 * code is the HTTP status (llama.cpp's shape). */
#ifndef VL_SERVE_SERVE_H
#define VL_SERVE_SERVE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *host;          /* NULL: "127.0.0.1" */
  int port;                  /* 0: an ephemeral port (see vl_server_port) */
  const char *llm_dir;       /* Qwen2/Qwen3 folder or .gguf, or NULL */
  const char *captioner_dir; /* BLIP caption folder, or NULL */
  size_t max_body;           /* request body bytes; 0: 32 MiB */
  int64_t max_image_pixels;  /* decoded image; 0: 16 megapixels */
  size_t max_prompt;         /* bytes of text in one request; 0: 64 KiB */
  int max_tokens;            /* cap on max_tokens; 0: 4096 */
} vl_serve_opts;

typedef struct vl_server vl_server;

/* Loads the models named (at least one), binds and starts serving in
 * background threads. NULL + vl_error when a model does not load or the
 * address cannot be bound. */
vl_server *vl_server_start(const vl_serve_opts *o);
/* The port actually bound (useful with port 0). */
int vl_server_port(const vl_server *s);
/* Stops accepting, ends running generations early, joins, frees. */
void vl_server_stop(vl_server *s);

#endif
