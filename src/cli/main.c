/* vlens — command-line entry point: dispatches to src/cli/cmd_*.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "base/threads.h"
#include "cli/cli.h"
#include "vlens.h"

static const vl_command commands[] = {
    {"inspect", "list the tensors and config of a safetensors file or model folder", cmd_inspect},
    {"tokenize", "text to token ids (or --decode ids to text) with a model's tokenizer",
     cmd_tokenize},
    {"shapes", "generate a Shapes World set: scenes, masks, captions, hypotheses", cmd_shapes},
    {"generate", "continue a text prompt with a Qwen2/Qwen3 model (streamed)", cmd_generate},
    {"chat", "multi-turn chat with a Qwen2/Qwen3 model on stdin (streamed, /reset)", cmd_chat},
    {"enrich", "caption images, enrich the captions with an LLM, measure the descriptions",
     cmd_enrich},
    {"dump", "intermediate tensors of one forward/backward pass to safetensors (parity)", cmd_dump},
    {"train", "train a tiny BLIP on Shapes World (captions + entailment), resumable", cmd_train},
    {"train-llm", "train the tiny Qwen3 enrich LLM (+ BPE tokenizer) on Shapes World, resumable",
     cmd_train_llm},
    {"describe", "caption an image and show where the model looked for every word", cmd_describe},
    {"entail", "does the image entail a sentence? with the decision's explanation", cmd_entail},
    {"eval", "evaluate captions, entailment and explanations on a Shapes World set", cmd_eval},
    {"bpe-train", "train a byte-level BPE tokenizer (tokenizer.json) on files or Shapes World",
     cmd_bpe_train},
    {"serve", "web UI and OpenAI-compatible HTTP API (chat, describe, entail)", cmd_serve},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

int cli_fail(const char *what) {
  const char *msg = vl_last_error();
  fprintf(stderr, "vlens: %s%s%s\n", what ? what : "", what && *msg ? ": " : "", msg);
  return 1;
}

int cli_common_options(int argc, char **argv) {
  int out = 0;
  for (int i = 0; i < argc; i++) {
    if ((!strcmp(argv[i], "--threads") || !strcmp(argv[i], "-t")) && i + 1 < argc) {
      vl_threads_set(atoi(argv[++i]));
    } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
      vl_log_set_quiet(1);
    } else {
      argv[out++] = argv[i];
    }
  }
  argv[out] = NULL;
  return out;
}

static void usage(FILE *f) {
  fprintf(f, "vlens %s — vision-language models in C, with a picture of where they looked\n\n",
          vlens_version());
  fprintf(f, "usage: vlens COMMAND [options]\n\ncommands:\n");
  for (int i = 0; i < N_COMMANDS; i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\ncommon options: -t/--threads N (default: all cores, or VLENS_THREADS), "
             "-q/--quiet\nrun 'vlens COMMAND --help' for a command's options\n");
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
      !strcmp(argv[1], "help")) {
    usage(stdout);
    return argc < 2 ? 1 : 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("vlens %s\n", vlens_version());
    return 0;
  }
  for (int i = 0; i < N_COMMANDS; i++) {
    if (!strcmp(argv[1], commands[i].name)) {
      int n = cli_common_options(argc - 1, argv + 1);
      return commands[i].run(n, argv + 1);
    }
  }
  fprintf(stderr, "vlens: unknown command '%s' (try 'vlens --help')\n", argv[1]);
  return 2;
}
