/* vlens generate: text continuation with a Qwen2/Qwen3 model folder,
 * streamed to stdout as it is produced; timings on stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "cli/cli.h"
#include "tasks/generate.h"

#define MAX_STOP 16

static void usage(FILE *f) {
  fprintf(f, "usage: vlens generate -m MODEL_DIR -p PROMPT [options]\n"
             "  -m, --model DIR        Hub model folder (config.json, *.safetensors, tokenizer)\n"
             "  -p, --prompt TEXT      prompt text (no chat template is applied)\n"
             "  --ids                  PROMPT is token ids (\"1 2 3\"); print generated ids\n"
             "  -n, --max-tokens N     tokens to generate (default 128)\n"
             "  --temperature T        0 = greedy (default 0)\n"
             "  --top-k K              keep the K most likely tokens (0 = off)\n"
             "  --top-p P              nucleus sampling mass (1 = off)\n"
             "  --min-p P              drop tokens below P x the top probability (0 = off)\n"
             "  --repeat-penalty R     HF repetition penalty (1 = off)\n"
             "  --seed S               sampling seed (default 0)\n"
             "  --stop TEXT            stop when TEXT is produced (repeatable)\n"
             "  --ignore-eos           do not stop at the model's EOS tokens\n"
             "  --kv-cache f32|f16     KV cache storage (default f32; f16: half the memory)\n");
}

static int parse_num(const char *opt, const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (!*s || *end || errno || !(v >= lo && v <= hi)) {
    fprintf(stderr, "vlens generate: %s: '%s' is not a number in [%g, %g]\n", opt, s, lo, hi);
    return -1;
  }
  *out = v;
  return 0;
}

/* "1 2, 3" -> ids; -1 on a bad entry. */
static int parse_ids(const char *s, int32_t **ids, size_t *n) {
  size_t cap = 16;
  *n = 0;
  *ids = malloc(cap * sizeof **ids);
  if (!*ids) return -1;
  while (*s) {
    while (*s == ' ' || *s == ',' || *s == '\t' || *s == '\n')
      s++;
    if (!*s) break;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || errno || v < 0 || v > INT32_MAX) {
      fprintf(stderr, "vlens generate: --ids: bad token id at '%s'\n", s);
      return -1;
    }
    if (*n == cap) {
      int32_t *p = realloc(*ids, (cap *= 2) * sizeof **ids);
      if (!p) return -1;
      *ids = p;
    }
    (*ids)[(*n)++] = (int32_t)v;
    s = end;
  }
  return 0;
}

static int print_piece(void *user, int32_t id, const char *text, size_t len) {
  int ids_mode = *(int *)user;
  if (ids_mode) {
    printf("%d ", id);
  } else if (len) {
    fwrite(text, 1, len, stdout);
  }
  fflush(stdout);
  return 0;
}

int cmd_generate(int argc, char **argv) {
  const char *model = NULL, *prompt = NULL, *stop[MAX_STOP];
  int n_stop = 0, ids_mode = 0;
  vl_generate_opts opt = {.sampling = vl_sampler_defaults(), .max_tokens = 128};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool has = i + 1 < argc;
    double v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) {
      model = argv[++i];
    } else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && has) {
      prompt = argv[++i];
    } else if (!strcmp(a, "--ids")) {
      ids_mode = 1;
    } else if (!strcmp(a, "--ignore-eos")) {
      opt.ignore_eos = true;
    } else if (!strcmp(a, "--kv-cache") && has) {
      const char *t = argv[++i];
      if (strcmp(t, "f32") && strcmp(t, "f16")) {
        fprintf(stderr, "vlens generate: --kv-cache: '%s' is not f32 or f16\n", t);
        return 2;
      }
      opt.kv_dtype = strcmp(t, "f16") ? VL_F32 : VL_F16;
    } else if (!strcmp(a, "--stop") && has) {
      if (n_stop == MAX_STOP) {
        fprintf(stderr, "vlens generate: at most %d --stop strings\n", MAX_STOP);
        return 2;
      }
      stop[n_stop++] = argv[++i];
    } else if ((!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) && has) {
      if (parse_num(a, argv[++i], 1, 1 << 20, &v)) return 2;
      opt.max_tokens = (int)v;
    } else if (!strcmp(a, "--temperature") && has) {
      if (parse_num(a, argv[++i], 0, 1e6, &v)) return 2;
      opt.sampling.temperature = (float)v;
    } else if (!strcmp(a, "--top-k") && has) {
      if (parse_num(a, argv[++i], 0, 1 << 30, &v)) return 2;
      opt.sampling.top_k = (int)v;
    } else if (!strcmp(a, "--top-p") && has) {
      if (parse_num(a, argv[++i], 1e-9, 1, &v)) return 2;
      opt.sampling.top_p = (float)v;
    } else if (!strcmp(a, "--min-p") && has) {
      if (parse_num(a, argv[++i], 0, 1, &v)) return 2;
      opt.sampling.min_p = (float)v;
    } else if (!strcmp(a, "--repeat-penalty") && has) {
      if (parse_num(a, argv[++i], 1e-6, 1e6, &v)) return 2;
      opt.sampling.repeat_penalty = (float)v;
    } else if (!strcmp(a, "--seed") && has) {
      char *end;
      errno = 0;
      opt.sampling.seed = strtoull(argv[++i], &end, 10);
      if (!*argv[i] || *end || errno) {
        fprintf(stderr, "vlens generate: --seed: '%s' is not a number\n", argv[i]);
        return 2;
      }
    } else {
      fprintf(stderr, "vlens generate: unknown option or missing value: '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (!model || !prompt) {
    usage(stderr);
    return 2;
  }
  opt.stop = stop;
  opt.n_stop = n_stop;

  double t0 = vl_now_seconds();
  vl_qwen_text *m = vl_qwen_text_load(model);
  if (!m) return cli_fail("generate");
  vl_tokenizer *tok = vl_tokenizer_load(model);
  int32_t *ids = NULL;
  size_t n_ids = 0;
  int rc = 0;
  if (!tok && (!ids_mode || n_stop)) {
    rc = cli_fail("generate: tokenizer");
    goto out;
  }
  if (ids_mode) {
    if (parse_ids(prompt, &ids, &n_ids)) {
      rc = 2;
      goto out;
    }
  } else if (vl_tokenizer_encode(tok, prompt, strlen(prompt), 0, &ids, &n_ids)) {
    rc = cli_fail("generate: tokenize");
    goto out;
  }
  vl_log("generate: %s (%s, %lld layers), loaded in %.2f s, prompt %zu tokens", model,
         m->cfg.kind == VL_QWEN3 ? "qwen3" : "qwen2", (long long)m->cfg.n_layers,
         vl_now_seconds() - t0, n_ids);
  vl_generate_stats st;
  if (!ids_mode) printf("%s", prompt);
  fflush(stdout);
  if (vl_generate(m, tok, ids, n_ids, &opt, print_piece, &ids_mode, NULL, NULL, &st)) {
    printf("\n");
    rc = cli_fail(NULL); /* the message starts with "generate:" */
    goto out;
  }
  printf("\n");
  static const char *const why[] = {"max tokens", "eos", "stop string", "callback"};
  vl_log("generate: prefill %zu tokens in %.3f s (%.1f tok/s), decode %zu tokens in %.3f s "
         "(%.1f tok/s), stopped: %s",
         st.n_prompt, st.prefill_s, st.prefill_s > 0 ? (double)st.n_prompt / st.prefill_s : 0,
         st.n_generated, st.decode_s, st.decode_s > 0 ? (double)st.n_generated / st.decode_s : 0,
         why[st.reason]);
out:
  free(ids);
  vl_tokenizer_free(tok);
  vl_qwen_text_free(m);
  return rc;
}
