/* vlens serve: the web UI and the OpenAI-compatible HTTP API (serve/serve.h)
 * until SIGINT / SIGTERM. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "cli/cli.h"
#include "serve/serve.h"
#include "tasks/model_paths.h"

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: vlens serve [--host 127.0.0.1] [--port 8080] [-m LLM_DIR] [--captioner BLIP_DIR]\n"
      "                   [--threads N] [--max-body MB] [--max-tokens N]\n"
      "  web UI at http://HOST:PORT/, OpenAI-compatible API (llama.cpp server conventions):\n"
      "  GET /health, GET /v1/models, POST /v1/chat/completions (\"stream\": true for SSE),\n"
      "  POST /v1/describe and /v1/entail (vlens: captions and entailment with heatmaps).\n"
      "  -m, --model DIR     Qwen2/Qwen3 chat model (folder or .gguf) for text messages\n"
      "  --captioner DIR     BLIP captioner for images, /v1/describe and /v1/entail\n"
      "                      with neither: the embedded models/%s and models/%s\n"
      "  --host H            address to listen on (default 127.0.0.1)\n"
      "  --port P            port (default 8080; 0: any free port)\n"
      "  --max-body MB       request body limit in MiB (default 32)\n"
      "  --max-tokens N      cap on max_tokens of a request (default 4096)\n",
      VL_DEFAULT_LLM, VL_DEFAULT_CAPTIONER);
}

static int number(const char *opt, const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (!*s || *end || errno || v < lo || v > hi) {
    fprintf(stderr, "vlens serve: %s '%s': expected a whole number in [%ld, %ld]\n", opt, s, lo,
            hi);
    return -1;
  }
  *out = v;
  return 0;
}

int cmd_serve(int argc, char **argv) {
  vl_serve_opts o = {.host = "127.0.0.1", .port = 8080};
  long v;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool has = i + 1 < argc;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--host") && has) {
      o.host = argv[++i];
    } else if (!strcmp(a, "--port") && has) {
      if (number(a, argv[++i], 0, 65535, &v)) return 2;
      o.port = (int)v;
    } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) {
      o.llm_dir = argv[++i];
    } else if (!strcmp(a, "--captioner") && has) {
      o.captioner_dir = argv[++i];
    } else if (!strcmp(a, "--max-body") && has) {
      if (number(a, argv[++i], 1, 4096, &v)) return 2;
      o.max_body = (size_t)v << 20;
    } else if (!strcmp(a, "--max-tokens") && has) {
      if (number(a, argv[++i], 1, 1 << 20, &v)) return 2;
      o.max_tokens = (int)v;
    } else {
      fprintf(stderr, "vlens serve: unknown option or missing value: '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  static char llm[4096], cap[4096];
  if (!o.llm_dir && !o.captioner_dir) {
    if (!vl_model_default_path(VL_DEFAULT_LLM, NULL, "-m", llm, sizeof llm)) o.llm_dir = llm;
    if (!vl_model_default_path(VL_DEFAULT_CAPTIONER, NULL, "--captioner", cap, sizeof cap))
      o.captioner_dir = cap;
    if (!o.llm_dir && !o.captioner_dir) {
      vl_error(VL_ERR_NOTFOUND,
               "no model to serve: neither models/%s nor models/%s was found; "
               "pass -m LLM_DIR and/or --captioner BLIP_DIR",
               VL_DEFAULT_LLM, VL_DEFAULT_CAPTIONER);
      return cli_fail("serve");
    }
  }
  /* Blocked here, so every server thread inherits the mask; sigwait below. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  vl_server *s = vl_server_start(&o);
  if (!s) return cli_fail(NULL);
  fprintf(stderr, "vlens serve: listening on http://%s:%d/ (LLM: %s, captioner: %s)\n", o.host,
          vl_server_port(s), o.llm_dir ? o.llm_dir : "none",
          o.captioner_dir ? o.captioner_dir : "none");
  int sig = 0;
  sigwait(&set, &sig);
  fprintf(stderr, "vlens serve: %s, stopping\n", sig == SIGINT ? "interrupted" : "terminated");
  vl_server_stop(s);
  return 0;
}
