/* vlens train-llm: trains the embedded enrich LLM, a tiny Qwen3, on Shapes
 * World enrich pairs (src/tasks/train_qwen.h), and evaluates it on fresh
 * scenes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "tasks/train_qwen.h"

static void usage(FILE *f) {
  fprintf(f, "usage: vlens train-llm --out DIR [--steps N] [--batch B] [--lr LR] [--seed S]\n"
             "                       [--resume] [--config NAME] [--vocab-size V] ...\n"
             "       vlens train-llm --out DIR --eval-only [--eval N] [--eval-seed S] [--lang L]\n"
             "  trains a tiny Qwen3 from scratch to turn a Shapes World caption (the\n"
             "  `vlens enrich` prompt, English or --lang zh) into a fluent description in\n"
             "  that language. A byte-level BPE is\n"
             "  trained first and saved in DIR, which becomes a Qwen3 model folder that\n"
             "  `vlens enrich --llm DIR` and `vlens generate` load, plus\n"
             "  optimizer.safetensors for --resume.\n"
             "  --out DIR          output folder (required)\n"
             "  --steps N          optimizer steps (default 3000)\n"
             "  --batch B          sequences per step (default 16)\n"
             "  --lr LR            peak learning rate (default 3e-3)\n"
             "  --warmup N         warm-up steps (default 5%% of steps)\n"
             "  --min-lr-ratio R   cosine floor as a fraction of LR (default 0.1)\n"
             "  --weight-decay W   AdamW decoupled weight decay (default 0.01)\n"
             "  --clip C           global gradient-norm clip, 0 = off (default 1.0)\n"
             "  --save-every N     checkpoint period in steps (default 100)\n"
             "  --stop-after N     stop (with a checkpoint) after step N; resume later\n"
             "  --seed S           data, tokenizer corpus and initialisation seed (default 0)\n"
             "  --config NAME      small-untied (default: hidden 128, 4 layers, 4 heads / 2\n"
             "                     KV heads, own LM head), small (tied embeddings: the\n"
             "                     colours collapse), wide (8 heads, tied) or tiny (tests)\n"
             "  --vocab-size V     BPE vocabulary incl. 256 bytes + 5 special (default 2048;\n"
             "                     the English + Chinese corpus stops near 1200)\n"
             "  --tok-scenes N     scenes in the tokenizer corpus (default 2000)\n"
             "  --zh-share F       share of Chinese examples, 0..1 (default 0.5; 0: English\n"
             "                     only, and an English-only tokenizer corpus)\n"
             "  --init-from SRC    start from the trained model folder SRC (same --config)\n"
             "                     instead of random weights: tensors by name, embedding\n"
             "                     and LM head rows by token string\n"
             "  --resume           continue the run in DIR bit-identically (its saved\n"
             "                     options win over the ones given here)\n"
             "  --extend N         with --resume: stretch the schedule to N steps in all\n"
             "                     (the LR jumps; no longer bit-identical to a straight run)\n"
             "  --eval N           after training, describe N fresh scenes greedily and\n"
             "                     report key-element recall and invented objects\n"
             "  --eval-seed S      Shapes World seed of those scenes (default 777)\n"
             "  --lang L           language of the evaluation prompts: en (default), zh or\n"
             "                     both\n"
             "  --eval-only        evaluate the model in DIR without training\n"
             "  --show             with --eval: print every caption and description\n");
}

static void show_one(void *user, int64_t index, const char *caption, const char *description,
                     const vl_llm_mentions *mn) {
  (void)user;
  printf("[%lld] %s\n  -> %s\n  (keys %d/%d, invented %d)\n", (long long)index, caption,
         description, mn->found, mn->keys, mn->invented);
}

/* langs: bit 0 English, bit 1 Chinese. */
static int evaluate(const char *dir, long long n, unsigned long long seed, int langs, int show) {
  vl_tokenizer *tok = vl_tokenizer_load(dir);
  vl_qwen_text *m = tok ? vl_qwen_text_load(dir) : NULL;
  int rc = m ? VL_OK : vl_last_error_code();
  for (int l = 0; l < 2 && !rc; l++) {
    if (!(langs & (1 << l))) continue;
    const vl_enrich_lang lang = l ? VL_ENRICH_ZH : VL_ENRICH_EN;
    vl_llm_eval ev;
    rc = vl_train_llm_eval(m, tok, seed, n, lang, 0, show ? show_one : NULL, NULL, &ev);
    if (rc) break;
    printf("eval%s: %lld fresh scenes (seed %llu): key-element recall %.4f (%lld/%lld, mean per "
           "scene %.4f), no invented objects in %.4f (%lld with), %.1f %s, %.1f tok/s\n",
           l ? " zh" : "", (long long)ev.n, seed, ev.recall, (long long)ev.found,
           (long long)ev.keys, ev.mean_recall, ev.no_invented_rate, (long long)ev.with_invented,
           ev.mean_words, l ? "characters" : "words", ev.tokens_per_s);
  }
  vl_qwen_text_free(m);
  vl_tokenizer_free(tok);
  return rc;
}

int cmd_train_llm(int argc, char **argv) {
  vl_train_llm_opts o;
  vl_train_llm_default_opts(&o);
  long long eval_n = 0, eval_seed = 777;
  int eval_only = 0, show = 0, langs = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--resume")) {
      o.resume = true;
      continue;
    }
    if (!strcmp(a, "--eval-only")) {
      eval_only = 1;
      continue;
    }
    if (!strcmp(a, "--show")) {
      show = 1;
      continue;
    }
    if (i + 1 >= argc) {
      usage(stderr);
      vl_error(VL_ERR_INVALID, "'%s' needs a value or is unknown", a);
      return cli_fail("train-llm");
    }
    const char *v = argv[++i];
    long long ll = 0;
    double d = 0;
    int rc = 0;
    const long long big = 1000000000;
    if (!strcmp(a, "--out"))
      o.out_dir = v;
    else if (!strcmp(a, "--config"))
      o.config = v;
    else if (!strcmp(a, "--init-from"))
      o.init_from = v;
    else if (!strcmp(a, "--steps"))
      rc = cli_integer(a, v, 1, big, &ll), o.steps = ll;
    else if (!strcmp(a, "--batch"))
      rc = cli_integer(a, v, 1, 4096, &ll), o.batch = ll;
    else if (!strcmp(a, "--warmup"))
      rc = cli_integer(a, v, 0, big, &ll), o.warmup = ll;
    else if (!strcmp(a, "--save-every"))
      rc = cli_integer(a, v, 0, big, &ll), o.save_every = ll;
    else if (!strcmp(a, "--extend"))
      rc = cli_integer(a, v, 1, big, &ll), o.extend_steps = ll;
    else if (!strcmp(a, "--stop-after"))
      rc = cli_integer(a, v, 0, big, &ll), o.stop_after = ll;
    else if (!strcmp(a, "--seed"))
      rc = cli_integer(a, v, 0, (long long)(~0ull >> 1), &ll), o.seed = (uint64_t)ll;
    else if (!strcmp(a, "--vocab-size"))
      rc = cli_integer(a, v, 262, 1 << 20, &ll), o.vocab_size = (int)ll;
    else if (!strcmp(a, "--tok-scenes"))
      rc = cli_integer(a, v, 1, 10000000, &ll), o.tok_scenes = ll;
    else if (!strcmp(a, "--eval"))
      rc = cli_integer(a, v, 1, 1000000, &eval_n);
    else if (!strcmp(a, "--eval-seed"))
      rc = cli_integer(a, v, 0, (long long)(~0ull >> 1), &eval_seed);
    else if (!strcmp(a, "--lr"))
      rc = cli_real(a, v, 1e-9, 10, &d), o.lr = d;
    else if (!strcmp(a, "--min-lr-ratio"))
      rc = cli_real(a, v, 0, 1, &d), o.min_lr_ratio = d;
    else if (!strcmp(a, "--weight-decay"))
      rc = cli_real(a, v, 0, 10, &d), o.weight_decay = d;
    else if (!strcmp(a, "--clip"))
      rc = cli_real(a, v, 0, 1e6, &d), o.clip = d;
    else if (!strcmp(a, "--zh-share"))
      rc = cli_real(a, v, 0, 1, &d), o.zh_share = d;
    else if (!strcmp(a, "--lang")) {
      langs = !strcmp(v, "en") ? 1 : !strcmp(v, "zh") ? 2 : !strcmp(v, "both") ? 3 : 0;
      if (!langs) rc = vl_error(VL_ERR_INVALID, "--lang '%s': expected en, zh or both", v);
    } else {
      usage(stderr);
      rc = vl_error(VL_ERR_INVALID, "unknown option '%s'", a);
    }
    if (rc) return cli_fail("train-llm");
  }
  if (!o.out_dir) {
    usage(stderr);
    vl_error(VL_ERR_INVALID, "--out DIR is required");
    return cli_fail("train-llm");
  }
  if (eval_only) {
    if (evaluate(o.out_dir, eval_n ? eval_n : 100, (unsigned long long)eval_seed, langs, show))
      return cli_fail("train-llm");
    return 0;
  }
  vl_train_llm_report rep;
  if (vl_train_llm(&o, &rep)) return cli_fail("train-llm");
  printf("trained %s: step %lld, loss %.4f (first step of this run %.4f), target token "
         "accuracy %.3f, %.0f tokens/s\n",
         o.out_dir, (long long)rep.step, rep.loss, rep.loss_first, rep.token_acc, rep.tokens_per_s);
  if (eval_n && evaluate(o.out_dir, eval_n, (unsigned long long)eval_seed, langs, show))
    return cli_fail("train-llm");
  return 0;
}
