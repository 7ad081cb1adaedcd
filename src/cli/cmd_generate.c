/* vlens generate: text continuation with a Qwen2/Qwen3 model folder,
 * streamed to stdout as it is produced; timings on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "cli/args.h"
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
             "  --kv-cache f32|f16     KV cache storage (default f32; f16: half the memory)\n"
             "  --activations exact|rounded   rounded: products round activations to the\n"
             "                         BF16 / Q8_0 weights' format, as llama.cpp (faster)\n");
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
    const int k = cli_generate_option("generate", argc, argv, &i, &opt);
    if (k < 0) return 2;
    if (k > 0) continue;
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
    } else if (!strcmp(a, "--stop") && has) {
      if (n_stop == MAX_STOP) {
        fprintf(stderr, "vlens generate: at most %d --stop strings\n", MAX_STOP);
        return 2;
      }
      stop[n_stop++] = argv[++i];
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
    int64_t *ids64 = NULL;
    if (cli_parse_ids("generate", prompt, INT32_MAX, &ids64, &n_ids) ||
        !(ids = malloc((n_ids ? n_ids : 1) * sizeof *ids))) {
      free(ids64);
      rc = 2;
      goto out;
    }
    for (size_t k = 0; k < n_ids; k++)
      ids[k] = (int32_t)ids64[k];
    free(ids64);
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
