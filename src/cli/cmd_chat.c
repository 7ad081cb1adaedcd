/* vlens chat: an interactive multi-turn chat with a Qwen2/Qwen3 model folder.
 * Reads one message per line from stdin (a terminal or a pipe), streams each
 * answer to stdout; /reset forgets the conversation, /quit or EOF ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/log.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "tasks/chat_session.h"
#include "tasks/model_paths.h"

static void usage(FILE *f) {
  fprintf(f, "usage: vlens chat [-m MODEL_DIR] [options]   (one message per line on stdin)\n"
             "  -m, --model DIR        Qwen2/Qwen3 chat model folder (default: the embedded\n"
             "                         models/" VL_DEFAULT_LLM ")\n"
             "  --system TEXT          system prompt\n"
             "  --think                let Qwen3 think before answering (default: thinking off)\n"
             "  --show-thinking        print the <think> reasoning too (hidden by default)\n"
             "  -n, --max-tokens N     tokens per answer (default 512)\n"
             "  --context N            KV cache size in tokens (default: model max, <= 8192)\n"
             "  --kv-cache f32|f16     KV cache storage (default f32; f16: half the memory)\n"
             "  --activations exact|rounded   rounded: products round activations to the\n"
             "                         BF16 / Q8_0 weights' format, as llama.cpp (faster)\n"
             "  --temperature T        0 = greedy (default 0)\n"
             "  --top-k K, --top-p P, --min-p P, --repeat-penalty R, --seed S   as generate\n"
             "in the chat: /reset clears the history, /quit (or end of input) ends\n");
}

typedef struct {
  int show_thinking;
  vl_think_filter filter;
} stream_state;

static int print_piece(void *user, int32_t id, const char *text, size_t len) {
  stream_state *s = user;
  if (!len) return 0;
  if (s->show_thinking) {
    fwrite(text, 1, len, stdout);
  } else {
    char *out = malloc(len + 32);
    if (!out) return 1;
    size_t w = vl_think_filter_feed(&s->filter, text, len, 0, out);
    fwrite(out, 1, w, stdout);
    free(out);
  }
  fflush(stdout);
  return 0;
}

static void trim_line(char *s) {
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
    s[--n] = 0;
}

int cmd_chat(int argc, char **argv) {
  const char *model = NULL;
  int show_thinking = 0;
  vl_chat_session_opts o = vl_chat_session_default_opts();
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool has = i + 1 < argc;
    double v;
    const int k = cli_generate_option("chat", argc, argv, &i, &o.gen);
    if (k < 0) return 2;
    if (k > 0) continue;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) {
      model = argv[++i];
    } else if (!strcmp(a, "--system") && has) {
      o.system = argv[++i];
    } else if (!strcmp(a, "--think")) {
      o.enable_thinking = 1;
    } else if (!strcmp(a, "--show-thinking")) {
      show_thinking = 1;
    } else if (!strcmp(a, "--context") && has) {
      if (cli_number("chat", a, argv[++i], 2, 1 << 24, &v)) return 2;
      o.context = (int64_t)v;
    } else {
      fprintf(stderr, "vlens chat: unknown option or missing value: '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  char def[4096];
  if (!model) {
    if (vl_model_default_path(VL_DEFAULT_LLM, NULL, "-m", def, sizeof def)) return cli_fail("chat");
    model = def;
  }
  double t0 = vl_now_seconds();
  vl_qwen_text *m = vl_qwen_text_load(model);
  if (!m) return cli_fail("chat");
  vl_tokenizer *tok = vl_tokenizer_load(model);
  vl_chat_template tmpl;
  vl_chat_session *s = NULL;
  int rc = 0;
  if (!tok) {
    rc = cli_fail("chat: tokenizer");
    goto out;
  }
  if (vl_chat_detect_folder(model, &tmpl)) {
    rc = cli_fail("chat");
    goto out;
  }
  if (!(s = vl_chat_session_new(m, tok, tmpl, &o))) {
    rc = cli_fail(NULL);
    goto out;
  }
  int tty = isatty(0);
  vl_log("chat: %s (%s template), loaded in %.2f s; /reset clears the history, /quit ends", model,
         vl_chat_template_name(tmpl), vl_now_seconds() - t0);
  char *line = NULL;
  size_t cap = 0;
  for (;;) {
    if (tty) {
      fputs("> ", stderr);
      fflush(stderr);
    }
    if (getline(&line, &cap, stdin) < 0) break;
    trim_line(line);
    if (!line[strspn(line, " \t")]) continue;
    if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) break;
    if (!strcmp(line, "/reset")) {
      vl_chat_session_reset(s);
      vl_log("chat: history cleared");
      continue;
    }
    if (line[0] == '/' && !strchr(line, ' ')) {
      fprintf(stderr, "vlens chat: unknown command '%s' (/reset, /quit)\n", line);
      continue;
    }
    stream_state ss = {.show_thinking = show_thinking};
    vl_generate_stats st;
    int err = vl_chat_session_send(s, line, print_piece, &ss, NULL, &st);
    if (!show_thinking) {
      char tail[32];
      size_t nt = vl_think_filter_feed(&ss.filter, "", 0, 1, tail);
      fwrite(tail, 1, nt, stdout);
    }
    printf("\n");
    fflush(stdout);
    if (err) {
      /* the turn is dropped; the conversation goes on (or /reset) */
      cli_fail(NULL);
      rc = 1;
      continue;
    }
    vl_log("chat: %zu prompt tokens (%zu from cache), %zu generated, %.1f tok/s", st.n_prompt,
           vl_chat_session_reused(s), st.n_generated,
           st.decode_s > 0 ? (double)st.n_generated / st.decode_s : 0);
  }
  free(line);
out:
  vl_chat_session_free(s);
  vl_tokenizer_free(tok);
  vl_qwen_text_free(m);
  return rc;
}
