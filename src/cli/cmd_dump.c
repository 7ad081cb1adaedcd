/* vlens dump: intermediate tensors of one forward (and, with a target, one
 * backward) pass into a safetensors file, per ../shared/spec/dump.md. The
 * model family is picked from config.json's architectures. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "io/json.h"
#include "models/blip.h"
#include "models/clip.h"
#include "models/qwen_vl.h"

static void usage(FILE *f) {
  fprintf(f, "usage: vlens dump -m MODEL_DIR [--image IMG] (--prompt TEXT | --ids \"i1 i2 ...\")\n"
             "                  [--attn] [--target-pos Q --target-id ID] -o OUT.safetensors\n"
             "  -m, --model DIR     Hub model folder\n"
             "  --image IMG         input image (PNG, JPEG, BMP, GIF, WebP)\n"
             "  --prompt TEXT       text, tokenized with the model's tokenizer\n"
             "  --ids \"...\"         token ids, used verbatim\n"
             "  --attn              also write attention probabilities (attn.{l}, cross_attn.{l})\n"
             "  --target-pos Q      target score s = logits[Q, ID]: adds gradcam.* tensors\n"
             "  --target-id ID      (image-text matching always targets itm_logits[0, 1];\n"
             "                      CLIP: --target-pos 0 --target-id 0 = logits_per_image[0, 0])\n"
             "  -o, --output PATH   output .safetensors\n"
             "families: BlipForConditionalGeneration, BlipForImageTextRetrieval, CLIPModel,\n"
             "          Qwen2VLForConditionalGeneration, Qwen2_5_VLForConditionalGeneration\n");
}

static int parse_i64(const char *opt, const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (!*s || *end || errno || v < 0) {
    fprintf(stderr, "vlens dump: %s: '%s' is not a non-negative integer\n", opt, s);
    return -1;
  }
  *out = v;
  return 0;
}

int cmd_dump(int argc, char **argv) {
  const char *model = NULL, *out = NULL, *ids_text = NULL;
  vl_dump_opts o = {0};
  bool have_pos = false, have_id = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool has_val = i + 1 < argc;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--attn")) {
      o.attn = true;
    } else if (!has_val) {
      fprintf(stderr, "vlens dump: unknown option or missing value: '%s'\n", a);
      usage(stderr);
      return 2;
    } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
      model = argv[++i];
    } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
      out = argv[++i];
    } else if (!strcmp(a, "--image")) {
      o.image_path = argv[++i];
    } else if (!strcmp(a, "--prompt") || !strcmp(a, "-p")) {
      o.prompt = argv[++i];
    } else if (!strcmp(a, "--ids")) {
      ids_text = argv[++i];
    } else if (!strcmp(a, "--target-pos")) {
      if (parse_i64(a, argv[++i], &o.target_pos)) return 2;
      have_pos = true;
    } else if (!strcmp(a, "--target-id")) {
      if (parse_i64(a, argv[++i], &o.target_id)) return 2;
      have_id = true;
    } else {
      fprintf(stderr, "vlens dump: unknown option '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (!model || !out || (o.prompt && ids_text) || have_pos != have_id) {
    fprintf(stderr, "vlens dump: %s\n",
            !model                ? "-m MODEL_DIR is required"
            : !out                ? "-o OUT.safetensors is required"
            : have_pos != have_id ? "--target-pos and --target-id go together"
                                  : "give --prompt or --ids, not both");
    usage(stderr);
    return 2;
  }
  o.has_target = have_pos;
  int64_t *ids = NULL;
  if (ids_text) {
    size_t n = 0;
    if (cli_parse_ids("dump", ids_text, INT64_MAX, &ids, &n)) return 2;
    if (!n) {
      free(ids);
      fprintf(stderr, "vlens dump: --ids: no ids given\n");
      return 2;
    }
    o.n_ids = (int64_t)n;
    o.ids = ids;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", model);
  cJSON *cfg = vl_json_load(path);
  if (!cfg) {
    free(ids);
    return cli_fail("dump");
  }
  bool blip = vl_blip_is_blip_config(cfg), clip = vl_clip_is_clip_config(cfg);
  bool qvl = vl_qwen_vl_is_config(cfg);
  const char *arch = vl_json_str(cfg, "architectures.0", "(none)");
  if (!blip && !clip && !qvl) {
    fprintf(stderr, "vlens dump: %s: architecture '%s' is not supported by dump yet\n", path, arch);
    cJSON_Delete(cfg);
    free(ids);
    return 1;
  }
  cJSON_Delete(cfg);
  int rc = 1;
  if (qvl) {
    vl_qwen_vl *qm = vl_qwen_vl_load(model);
    vl_st_writer *qw = vl_st_writer_new();
    if (qm && qw && vl_qwen_vl_dump(qm, &o, qw) == VL_OK && vl_st_writer_save(qw, out) == VL_OK) {
      vl_log("dump: wrote %s", out);
      rc = 0;
    } else {
      cli_fail("dump");
    }
    vl_st_writer_free(qw);
    vl_qwen_vl_free(qm);
    free(ids);
    return rc;
  }
  if (clip) {
    vl_clip *cm = vl_clip_load(model);
    vl_st_writer *cw = vl_st_writer_new();
    if (cm && cw && vl_clip_dump(cm, &o, cw) == VL_OK && vl_st_writer_save(cw, out) == VL_OK) {
      vl_log("dump: wrote %s", out);
      rc = 0;
    } else {
      cli_fail("dump");
    }
    vl_st_writer_free(cw);
    vl_clip_free(cm);
    free(ids);
    return rc;
  }
  vl_blip *m = vl_blip_load(model);
  vl_st_writer *w = vl_st_writer_new();
  if (m && w && vl_blip_dump(m, &o, w) == VL_OK && vl_st_writer_save(w, out) == VL_OK) {
    vl_log("dump: wrote %s", out);
    rc = 0;
  } else {
    cli_fail("dump");
  }
  vl_st_writer_free(w);
  vl_blip_free(m);
  free(ids);
  return rc;
}
