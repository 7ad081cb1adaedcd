/* vlens bpe-train: trains a byte-level BPE tokenizer (text/bpe_train.h) on
 * text files or on a generated Shapes World corpus and writes
 * tokenizer.json + tokenizer_config.json. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "cli/cli.h"
#include "text/bpe_train.h"
#include "text/shapes_enrich.h"

static void bpe_usage(FILE *f) {
  fprintf(f, "usage: vlens bpe-train --vocab-size N --out DIR [--min-frequency F]\n"
             "                       (FILE... | --shapes N [--seed S] [--corpus-out FILE])\n"
             "  trains a byte-level BPE (Qwen2 pre-tokenizer, HF BpeTrainer rules) and writes\n"
             "  DIR/tokenizer.json and DIR/tokenizer_config.json. N counts every token: 256\n"
             "  bytes, the merges and the special tokens <|endoftext|> <|im_start|>\n"
             "  <|im_end|> <think> </think> (ids after the merges).\n"
             "  FILE...           text files to train on\n"
             "  --shapes N        train on N Shapes World scenes: captions, descriptions and\n"
             "                    enrich prompts (the embedded LLM's data)\n"
             "  --seed S          Shapes World seed (default 0)\n"
             "  --corpus-out FILE also save the generated corpus\n"
             "  --min-frequency F pairs seen fewer than F times are not merged (default 2)\n");
}

static int parse_ll(const char *opt, const char *s, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi)
    return vl_error(VL_ERR_INVALID, "%s '%s': expected an integer in %lld..%lld", opt, s, lo, hi);
  *out = v;
  return 0;
}

int cmd_bpe_train(int argc, char **argv) {
  long long vocab = 0, shapes = 0, seed = 0, minf = 2;
  const char *out = NULL, *corpus_out = NULL;
  const char **files = calloc((size_t)argc + 1, sizeof *files);
  int n_files = 0;
  if (!files) return cli_fail("bpe-train");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      bpe_usage(stdout);
      free(files);
      return 0;
    }
    if (a[0] != '-' || !a[1]) {
      files[n_files++] = a;
      continue;
    }
    if (i + 1 >= argc) {
      bpe_usage(stderr);
      vl_error(VL_ERR_INVALID, "'%s' needs a value or is unknown", a);
      free(files);
      return cli_fail("bpe-train");
    }
    const char *v = argv[++i];
    int rc = 0;
    if (!strcmp(a, "--vocab-size"))
      rc = parse_ll(a, v, 262, 1 << 24, &vocab);
    else if (!strcmp(a, "--shapes"))
      rc = parse_ll(a, v, 1, 10000000, &shapes);
    else if (!strcmp(a, "--seed"))
      rc = parse_ll(a, v, 0, (long long)(~0ull >> 1), &seed);
    else if (!strcmp(a, "--min-frequency"))
      rc = parse_ll(a, v, 1, 1000000000, &minf);
    else if (!strcmp(a, "--out"))
      out = v;
    else if (!strcmp(a, "--corpus-out"))
      corpus_out = v;
    else {
      bpe_usage(stderr);
      rc = vl_error(VL_ERR_INVALID, "unknown option '%s'", a);
    }
    if (rc) {
      free(files);
      return cli_fail("bpe-train");
    }
  }
  int rc = 0;
  if (!vocab || !out)
    rc = vl_error(VL_ERR_INVALID, "--vocab-size and --out are required");
  else if (!shapes == !n_files)
    rc = vl_error(VL_ERR_INVALID, "give either text files or --shapes N (one of the two)");
  else if (corpus_out && !shapes)
    rc = vl_error(VL_ERR_INVALID, "--corpus-out goes with --shapes");
  if (rc) {
    bpe_usage(stderr);
    free(files);
    return cli_fail("bpe-train");
  }
  vl_bpe_options o = vl_bpe_default_options();
  o.vocab_size = (int)vocab;
  o.min_frequency = (int)minf;
  vl_bpe_trainer *t = vl_bpe_trainer_new(&o);
  if (!t) {
    free(files);
    return cli_fail("bpe-train");
  }
  double t0 = vl_now_seconds();
  size_t bytes = 0;
  if (shapes) {
    size_t len;
    char *corpus = vl_shapes_enrich_corpus((uint64_t)seed, shapes, &len);
    if (!corpus) rc = -1;
    if (!rc) rc = vl_bpe_trainer_feed(t, corpus, len);
    if (!rc && corpus_out) {
      FILE *f = fopen(corpus_out, "wb");
      if (!f || fwrite(corpus, 1, len, f) != len)
        rc = vl_error(VL_ERR_IO, "%s: cannot write", corpus_out);
      if (f && fclose(f) && !rc) rc = vl_error(VL_ERR_IO, "%s: write error", corpus_out);
    }
    bytes = len;
    free(corpus);
  }
  for (int i = 0; i < n_files && !rc; i++) {
    FILE *f = fopen(files[i], "rb");
    if (f && !fseek(f, 0, SEEK_END)) {
      long sz = ftell(f);
      if (sz > 0) bytes += (size_t)sz;
    }
    if (f) fclose(f);
    rc = vl_bpe_trainer_feed_file(t, files[i]);
  }
  free(files);
  double t1 = vl_now_seconds();
  vl_bpe_model m;
  memset(&m, 0, sizeof m);
  if (!rc) {
    vl_log("bpe-train: %zu bytes, %zu distinct words (%.2f s)", bytes, vl_bpe_trainer_n_words(t),
           t1 - t0);
    rc = vl_bpe_trainer_train(t, &m);
  }
  double t2 = vl_now_seconds();
  if (!rc) rc = vl_bpe_save(&m, out);
  if (!rc)
    vl_log("bpe-train: %d merges, vocabulary %d + %d special (%.2f s); wrote %s/tokenizer.json",
           m.n_merges, m.n_tokens, m.n_special, t2 - t1, out);
  vl_bpe_model_free(&m);
  vl_bpe_trainer_free(t);
  return rc ? cli_fail("bpe-train") : 0;
}
