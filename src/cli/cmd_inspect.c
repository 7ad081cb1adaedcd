/* vlens inspect PATH: the tensors of a safetensors file or model folder
 * (name, dtype, shape, totals) and, for a folder, the main config.json
 * fields. --json prints the same as one JSON object. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/dtype.h"
#include "base/error.h"
#include "cli/cli.h"
#include "io/checkpoint.h"
#include "io/json.h"

/* The sizes worth showing, looked up at the top level and in the usual
 * sub-configs of vision-language models. */
static const char *const size_keys[] = {"hidden_size",
                                        "intermediate_size",
                                        "num_hidden_layers",
                                        "num_attention_heads",
                                        "num_key_value_heads",
                                        "head_dim",
                                        "vocab_size",
                                        "max_position_embeddings",
                                        "image_size",
                                        "patch_size",
                                        "spatial_merge_size",
                                        "out_hidden_size",
                                        "depth",
                                        "embed_dim",
                                        "num_heads",
                                        "projection_dim",
                                        "rope_theta",
                                        "torch_dtype",
                                        "tie_word_embeddings"};
static const char *const sections[] = {"", "text_config", "vision_config"};

static void usage(FILE *f) {
  fprintf(f, "usage: vlens inspect PATH [--json] [--filter TEXT]\n"
             "  PATH      a .safetensors file, a model.safetensors.index.json, or a model folder\n"
             "  --json    machine-readable output on stdout\n"
             "  --filter  only list tensors whose name contains TEXT (totals stay whole)\n");
}

static void shape_str(const vl_st_tensor *t, char *buf, size_t n) {
  size_t at = (size_t)snprintf(buf, n, "[");
  for (int d = 0; d < t->ndim && at < n; d++)
    at += (size_t)snprintf(buf + at, n - at, "%s%" PRId64, d ? ", " : "", t->shape[d]);
  if (at < n) snprintf(buf + at, n - at, "]");
}

static void print_value(const char *key, const cJSON *v) {
  if (cJSON_IsString(v))
    printf("  %-36s %s\n", key, v->valuestring);
  else if (cJSON_IsBool(v))
    printf("  %-36s %s\n", key, cJSON_IsTrue(v) ? "true" : "false");
  else if (cJSON_IsNumber(v))
    printf("  %-36s %.10g\n", key, v->valuedouble);
}

static void print_config(const cJSON *cfg, const char *path) {
  printf("config: %s\n", path);
  print_value("model_type", vl_json_get(cfg, "model_type"));
  const cJSON *arch = vl_json_get(cfg, "architectures");
  if (cJSON_IsArray(arch)) {
    printf("  %-36s", "architectures");
    for (const cJSON *a = arch->child; a; a = a->next)
      if (cJSON_IsString(a)) printf(" %s", a->valuestring);
    printf("\n");
  }
  for (size_t s = 0; s < sizeof sections / sizeof *sections; s++) {
    if (*sections[s]) {
      const cJSON *sub = vl_json_get(cfg, sections[s]);
      if (!cJSON_IsObject(sub)) continue;
      char key[128];
      snprintf(key, sizeof key, "%s.model_type", sections[s]);
      print_value(key, vl_json_get(cfg, key));
    }
    for (size_t k = 0; k < sizeof size_keys / sizeof *size_keys; k++) {
      char key[128];
      snprintf(key, sizeof key, "%s%s%s", sections[s], *sections[s] ? "." : "", size_keys[k]);
      print_value(key, vl_json_get(cfg, key));
    }
  }
}

/* config.json of a model folder: NULL without error when there is none; a
 * present but broken one is an error. */
static int load_config(const vl_checkpoint *ck, const char *path, cJSON **cfg, char *cfg_path,
                       size_t n) {
  *cfg = NULL;
  struct stat sb;
  if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) return VL_OK;
  snprintf(cfg_path, n, "%s/config.json", vl_ckpt_dir(ck));
  if (stat(cfg_path, &sb) != 0) return VL_OK;
  *cfg = vl_json_load(cfg_path);
  return *cfg ? VL_OK : vl_last_error_code();
}

static int print_json(const vl_checkpoint *ck, const char *path, cJSON *cfg, const char *filter,
                      int64_t params, uint64_t bytes) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "path", path);
  cJSON_AddNumberToObject(root, "files", (double)vl_ckpt_shard_count(ck));
  cJSON_AddNumberToObject(root, "tensor_count", (double)vl_ckpt_count(ck));
  cJSON_AddNumberToObject(root, "parameters", (double)params);
  cJSON_AddNumberToObject(root, "bytes", (double)bytes);
  cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
  const vl_safetensors *first = vl_ckpt_shard(ck, 0);
  for (size_t i = 0; i < vl_st_metadata_count(first); i++) {
    const char *k = vl_st_metadata_key(first, i);
    cJSON_AddStringToObject(meta, k, vl_st_metadata(first, k));
  }
  cJSON *arr = cJSON_AddArrayToObject(root, "tensors");
  for (size_t i = 0; i < vl_ckpt_count(ck); i++) {
    const vl_st_tensor *t = vl_ckpt_at(ck, i);
    if (filter && !strstr(t->name, filter)) continue;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddStringToObject(o, "dtype", vl_dtype_name(t->dtype));
    cJSON *sh = cJSON_AddArrayToObject(o, "shape");
    for (int d = 0; d < t->ndim; d++)
      cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
    cJSON_AddNumberToObject(o, "bytes", (double)t->nbytes);
    cJSON_AddItemToArray(arr, o);
  }
  if (cfg) cJSON_AddItemReferenceToObject(root, "config", cfg);
  char *s = cJSON_Print(root);
  cJSON_Delete(root);
  if (!s) return vl_error(VL_ERR_NOMEM, "out of memory");
  puts(s);
  free(s);
  return VL_OK;
}

int cmd_inspect(int argc, char **argv) {
  const char *path = NULL, *filter = NULL;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (!strcmp(argv[i], "--filter") && i + 1 < argc) {
      filter = argv[++i];
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "vlens inspect: unknown option '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    } else if (!path) {
      path = argv[i];
    } else {
      fprintf(stderr, "vlens inspect: more than one PATH ('%s')\n", argv[i]);
      return 2;
    }
  }
  if (!path) {
    usage(stderr);
    return 2;
  }
  vl_checkpoint *ck = vl_ckpt_open(path);
  if (!ck) return cli_fail("inspect");
  cJSON *cfg = NULL;
  char cfg_path[4096];
  if (load_config(ck, path, &cfg, cfg_path, sizeof cfg_path)) {
    vl_ckpt_close(ck);
    return cli_fail("inspect");
  }
  int64_t params = 0;
  uint64_t bytes = 0;
  size_t name_w = 8;
  for (size_t i = 0; i < vl_ckpt_count(ck); i++) {
    const vl_st_tensor *t = vl_ckpt_at(ck, i);
    params += vl_st_numel(t);
    bytes += t->nbytes;
    if (strlen(t->name) > name_w && strlen(t->name) < 80) name_w = strlen(t->name);
  }
  int rc = 0;
  if (json) {
    if (print_json(ck, path, cfg, filter, params, bytes)) rc = cli_fail("inspect");
  } else {
    printf("%s: %zu tensors in %zu file%s, %" PRId64 " parameters, %" PRIu64 " bytes\n", path,
           vl_ckpt_count(ck), vl_ckpt_shard_count(ck), vl_ckpt_shard_count(ck) == 1 ? "" : "s",
           params, bytes);
    const vl_safetensors *first = vl_ckpt_shard(ck, 0);
    for (size_t i = 0; i < vl_st_metadata_count(first); i++) {
      const char *k = vl_st_metadata_key(first, i);
      printf("metadata: %s = %.200s\n", k, vl_st_metadata(first, k));
    }
    if (cfg) print_config(cfg, cfg_path);
    printf("%-*s  %-5s  %-20s  %s\n", (int)name_w, "tensor", "dtype", "shape", "elements");
    for (size_t i = 0; i < vl_ckpt_count(ck); i++) {
      const vl_st_tensor *t = vl_ckpt_at(ck, i);
      if (filter && !strstr(t->name, filter)) continue;
      char shape[256];
      shape_str(t, shape, sizeof shape);
      printf("%-*s  %-5s  %-20s  %" PRId64 "\n", (int)name_w, t->name, vl_dtype_name(t->dtype),
             shape, vl_st_numel(t));
    }
  }
  cJSON_Delete(cfg);
  vl_ckpt_close(ck);
  return rc;
}
