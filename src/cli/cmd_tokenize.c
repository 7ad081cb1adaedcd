/* vlens tokenize: text -> token ids (and back with --decode) using the
 * tokenizer of a model folder, a tokenizer.json, or a .gguf file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "cli/cli.h"
#include "text/tokenizer.h"

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: vlens tokenize (-m MODEL_DIR | --tokenizer PATH) [--no-special] [--tokens] TEXT...\n"
      "       vlens tokenize (-m MODEL_DIR | --tokenizer PATH) [--skip-special] --decode ID...\n"
      "  -m MODEL_DIR       folder with tokenizer.json, vocab.json + merges.txt, or vocab.txt\n"
      "  --tokenizer PATH   a tokenizer.json, a .gguf, or a folder as above\n"
      "  --no-special       do not add the post-processor's special tokens ([CLS], BOS...)\n"
      "  --tokens           print one 'id<TAB>token' line per token instead of the id list\n"
      "  --decode ID...     print the text of the given ids\n"
      "  --skip-special     with --decode: leave special tokens out\n"
      "  TEXT '-'           read the text from stdin\n");
}

static char *read_stdin(size_t *len) {
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    size_t r = fread(buf + n, 1, cap - n, stdin);
    n += r;
    if (n < cap) break;
    char *q = realloc(buf, cap * 2);
    if (!q) {
      free(buf);
      return NULL;
    }
    buf = q;
    cap *= 2;
  }
  *len = n;
  return buf;
}

int cmd_tokenize(int argc, char **argv) {
  const char *path = NULL;
  int add_special = 1, decode = 0, skip_special = 0, show_tokens = 0, first = 0;
  for (int i = 1; i < argc; i++) {
    if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model") ||
         !strcmp(argv[i], "--tokenizer")) &&
        i + 1 < argc) {
      path = argv[++i];
    } else if (!strcmp(argv[i], "--no-special")) {
      add_special = 0;
    } else if (!strcmp(argv[i], "--skip-special")) {
      skip_special = 1;
    } else if (!strcmp(argv[i], "--tokens")) {
      show_tokens = 1;
    } else if (!strcmp(argv[i], "--decode")) {
      decode = 1;
    } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    } else if (argv[i][0] == '-' && argv[i][1] &&
               !(decode && argv[i][1] >= '0' && argv[i][1] <= '9')) {
      fprintf(stderr, "vlens tokenize: unknown option '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    } else {
      first = i;
      break;
    }
  }
  if (!path || !first) {
    usage(stderr);
    return 2;
  }
  vl_tokenizer *t = vl_tokenizer_load(path);
  if (!t) return cli_fail("tokenize");
  int rc = 0;
  if (decode) {
    int n = argc - first;
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    for (int i = 0; ids && i < n; i++) {
      char *end;
      long v = strtol(argv[first + i], &end, 10);
      if (*end || end == argv[first + i] || v < 0 || v > INT32_MAX) {
        fprintf(stderr, "vlens tokenize: '%s' is not a token id\n", argv[first + i]);
        free(ids);
        vl_tokenizer_free(t);
        return 2;
      }
      ids[i] = (int32_t)v;
    }
    char *text;
    size_t len;
    if (!ids || vl_tokenizer_decode(t, ids, (size_t)n, skip_special, &text, &len)) {
      rc = cli_fail("decode");
    } else {
      fwrite(text, 1, len, stdout);
      putchar('\n');
      free(text);
    }
    free(ids);
    vl_tokenizer_free(t);
    return rc;
  }
  /* the text: one argument, '-' for stdin, or several joined with spaces */
  char *text = NULL;
  size_t len = 0;
  if (argc - first == 1 && !strcmp(argv[first], "-")) {
    text = read_stdin(&len);
  } else {
    for (int i = first; i < argc; i++)
      len += strlen(argv[i]) + 1;
    text = malloc(len + 1);
    len = 0;
    for (int i = first; text && i < argc; i++) {
      size_t l = strlen(argv[i]);
      if (i > first) text[len++] = ' ';
      memcpy(text + len, argv[i], l);
      len += l;
    }
  }
  int32_t *ids;
  size_t n;
  if (!text) {
    fprintf(stderr, "vlens tokenize: out of memory\n");
    rc = 1;
  } else if (vl_tokenizer_encode(t, text, len, add_special, &ids, &n)) {
    rc = cli_fail("tokenize");
  } else {
    for (size_t i = 0; i < n; i++) {
      if (show_tokens)
        printf("%d\t%s\n", ids[i], vl_tokenizer_id_to_token(t, ids[i]));
      else
        printf("%s%d", i ? " " : "", ids[i]);
    }
    if (!show_tokens) putchar('\n');
    free(ids);
  }
  free(text);
  vl_tokenizer_free(t);
  return rc;
}
