/* vlens train: trains a tiny BLIP on Shapes World (src/tasks/train.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "tasks/train.h"

static void train_usage(FILE *f) {
  fprintf(f, "usage: vlens train [--out DIR] [--steps N] [--batch B] [--lr LR] [--seed S]\n"
             "                   [--config small|tiny] [--patch P] [--resume] ...\n"
             "  trains a BLIP-architecture captioning + entailment model from scratch on\n"
             "  Shapes World scenes generated on the fly; DIR becomes a model folder that\n"
             "  every BLIP command loads, plus optimizer.safetensors for --resume.\n"
             "  --out DIR          default ~/.cache/vlens/train/<config>-s<seed>\n"
             "  --steps N          optimizer steps (default 2000)\n"
             "  --batch B          images per step (default 32)\n"
             "  --lr LR            peak learning rate (default 2e-3)\n"
             "  --warmup N         warm-up steps (default 5%% of steps)\n"
             "  --min-lr-ratio R   cosine floor as a fraction of LR (default 0)\n"
             "  --weight-decay W   AdamW decoupled weight decay (default 0.01)\n"
             "  --clip C           global gradient-norm clip, 0 = off (default 1.0)\n"
             "  --hypotheses K     entailment hypotheses per image (default 3)\n"
             "  --max-objects M    at most M objects per scene, 1..4 (default 4)\n"
             "  --object-weights W relative frequency of 1,2,3,4 objects per scene, e.g.\n"
             "                     1,2,3,4 (default 1,1,1,1: the spec's; training data\n"
             "                     only: evaluation sets keep the spec's uniform 1..4)\n"
             "  --template-weights W relative frequency of the hypothesis templates\n"
             "                     exists,exists-sized,count,relation,unknowable among\n"
             "                     those a label can take, e.g. 1,1,1,4,1 (default all 1:\n"
             "                     the spec's uniform pick; training data only)\n"
             "  --init-from DIR    start from the weights of a trained model folder of the\n"
             "                     same config and patch (fresh optimizer and schedule)\n"
             "  --no-curriculum    all object counts from the start\n"
             "  --decay-embeddings apply weight decay to embedding tables too\n"
             "  --save-every N     checkpoint period in steps (default 200)\n"
             "  --stop-after N     stop (with a checkpoint) after step N; resume later\n"
             "  --seed S           data and initialisation seed (default 0)\n"
             "  --config NAME      small (~1.6M parameters, default) or tiny\n"
             "  --patch P          ViT patch size dividing 96 (default: the config's)\n"
             "  --resume           continue the run in DIR bit-identically (its saved\n"
             "                     options win over the ones given here, except --steps:\n"
             "                     a new total reshapes the rest of the schedule)\n");
}

int cmd_train(int argc, char **argv) {
  vl_train_opts o;
  vl_train_default_opts(&o);
  long long v;
  double d;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      train_usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--resume")) {
      o.resume = true;
      continue;
    }
    if (!strcmp(a, "--no-curriculum")) {
      o.curriculum = false;
      continue;
    }
    if (!strcmp(a, "--decay-embeddings")) {
      o.decay_embeddings = true;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "vlens train: unknown option or missing value: %s\n", a);
      train_usage(stderr);
      return 2;
    }
    const char *val = argv[++i];
    int bad = 0;
    if (!strcmp(a, "--out")) {
      o.out_dir = val;
    } else if (!strcmp(a, "--config")) {
      o.config = val;
    } else if (!strcmp(a, "--steps")) {
      bad = cli_integer(a, val, 1, 1000000000LL, &v);
      o.steps = v;
      o.resume_steps = v; /* only read with --resume */
    } else if (!strcmp(a, "--batch")) {
      bad = cli_integer(a, val, 1, 1 << 20, &v);
      o.batch = v;
    } else if (!strcmp(a, "--warmup")) {
      bad = cli_integer(a, val, 0, 1000000000LL, &v);
      o.warmup = v;
    } else if (!strcmp(a, "--save-every")) {
      bad = cli_integer(a, val, 0, 1000000000LL, &v);
      o.save_every = v;
    } else if (!strcmp(a, "--stop-after")) {
      bad = cli_integer(a, val, 1, 1000000000LL, &v);
      o.stop_after = v;
    } else if (!strcmp(a, "--hypotheses")) {
      bad = cli_integer(a, val, 0, VL_TRAIN_MAX_K, &v);
      o.hypotheses = (int)v;
    } else if (!strcmp(a, "--object-weights")) {
      bad = vl_train_parse_weights(val, 4, o.object_weights, a) != VL_OK;
    } else if (!strcmp(a, "--template-weights")) {
      bad = vl_train_parse_weights(val, VL_TPL_N, o.template_weights, a) != VL_OK;
    } else if (!strcmp(a, "--init-from")) {
      o.init_from = val;
    } else if (!strcmp(a, "--max-objects")) {
      bad = cli_integer(a, val, 1, 4, &v);
      o.max_objects = (int)v;
    } else if (!strcmp(a, "--patch")) {
      bad = cli_integer(a, val, 1, 96, &v);
      o.patch = (int)v;
    } else if (!strcmp(a, "--seed")) {
      bad = cli_integer(a, val, 0, 0x7fffffffffffffffLL, &v);
      o.seed = (uint64_t)v;
    } else if (!strcmp(a, "--lr")) {
      bad = cli_real(a, val, 1e-9, 10, &d);
      o.lr = d;
    } else if (!strcmp(a, "--min-lr-ratio")) {
      bad = cli_real(a, val, 0, 1, &d);
      o.min_lr_ratio = d;
    } else if (!strcmp(a, "--weight-decay")) {
      bad = cli_real(a, val, 0, 10, &d);
      o.weight_decay = d;
    } else if (!strcmp(a, "--clip")) {
      bad = cli_real(a, val, 0, 1e9, &d);
      o.clip = d;
    } else {
      fprintf(stderr, "vlens train: unknown option: %s\n", a);
      train_usage(stderr);
      return 2;
    }
    if (bad) return cli_fail("train");
  }
  char def[4096];
  if (!o.out_dir) {
    const char *home = getenv("HOME");
    if (!home || !*home) {
      vl_error(VL_ERR_INVALID, "no --out DIR and no $HOME for the default");
      return cli_fail("train");
    }
    snprintf(def, sizeof def, "%s/.cache/vlens/train/%s-s%llu", home, o.config,
             (unsigned long long)o.seed);
    o.out_dir = def;
  }
  vl_train_report r;
  if (vl_train(&o, &r)) return cli_fail("train");
  printf("%s\nsteps %lld  loss %.4f  caption token acc %.3f  answer acc %.3f  %.1f images/s\n",
         o.out_dir, (long long)r.step, r.loss, r.caption_acc, r.answer_acc, r.images_per_s);
  return 0;
}
