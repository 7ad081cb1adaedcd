/* Checkpoints: single files, model folders, sharded folders made here, and
 * their errors (missing shards, tensors the index promises but lacks). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/error.h"
#include "io/checkpoint.h"
#include "io/json.h"
#include "test.h"

static char dir[512];

static void path_in(char *out, size_t n, const char *sub, const char *name) {
  snprintf(out, n, "%s/%s/%s", test_tmpdir(), sub, name);
}

static void save_shard(const char *sub, const char *file, const char *const *names, int n,
                       float base) {
  vl_st_writer *w = vl_st_writer_new();
  for (int i = 0; i < n; i++) {
    float v[2] = {base + (float)i, -base};
    int64_t s[1] = {2};
    vl_st_writer_add(w, names[i], VL_F32, 1, s, v);
  }
  char p[600];
  path_in(p, sizeof p, sub, file);
  if (vl_st_writer_save(w, p) != VL_OK) printf("  save: %s\n", vl_last_error());
  vl_st_writer_free(w);
}

static void write_text(const char *sub, const char *file, const char *text) {
  char p[600];
  path_in(p, sizeof p, sub, file);
  test_write_file(p, text, strlen(text));
}

static const char *mkfolder(const char *sub) {
  snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), sub);
  mkdir(dir, 0755);
  return dir;
}

static const char *A[] = {"model.layers.0.w", "model.layers.0.b"};
static const char *B[] = {"model.layers.1.w", "lm_head.weight"};
static const char *INDEX = "{\"metadata\": {\"total_size\": 32}, \"weight_map\": {"
                           "\"model.layers.0.w\": \"model-00001-of-00002.safetensors\","
                           "\"model.layers.0.b\": \"model-00001-of-00002.safetensors\","
                           "\"model.layers.1.w\": \"model-00002-of-00002.safetensors\","
                           "\"lm_head.weight\": \"model-00002-of-00002.safetensors\"}}";

static void test_sharded_folder(void) {
  const char *d = mkfolder("sharded");
  save_shard("sharded", "model-00001-of-00002.safetensors", A, 2, 1);
  save_shard("sharded", "model-00002-of-00002.safetensors", B, 2, 10);
  write_text("sharded", "model.safetensors.index.json", INDEX);
  vl_checkpoint *ck = vl_ckpt_open(d);
  if (!ck) printf("  %s\n", vl_last_error());
  REQUIRE(ck);
  CHECK(vl_ckpt_count(ck) == 4);
  CHECK(vl_ckpt_shard_count(ck) == 2);
  CHECK(!strcmp(vl_ckpt_at(ck, 0)->name, "model.layers.0.w"));
  CHECK(!strcmp(vl_ckpt_at(ck, 3)->name, "lm_head.weight"));
  CHECK(vl_ckpt_at(ck, 4) == NULL);
  const vl_st_tensor *t = vl_ckpt_find(ck, "lm_head.weight");
  REQUIRE(t);
  float v[2];
  memcpy(v, t->data, 8);
  CHECK(v[0] == 11 && v[1] == -10);
  t = vl_ckpt_find(ck, "model.layers.0.b");
  REQUIRE(t);
  memcpy(v, t->data, 8);
  CHECK(v[0] == 2 && v[1] == -1);
  CHECK(!strcmp(vl_ckpt_dir(ck), d));
  vl_clear_error();
  CHECK(vl_ckpt_find(ck, "model.layers.9.w") == NULL);
  CHECK(vl_last_error_code() == VL_ERR_NOTFOUND && strstr(vl_last_error(), "model.layers.9.w"));
  vl_ckpt_close(ck);

  /* The index file itself also opens. */
  char p[600];
  path_in(p, sizeof p, "sharded", "model.safetensors.index.json");
  ck = vl_ckpt_open(p);
  CHECK(ck && vl_ckpt_count(ck) == 4 && !strcmp(vl_ckpt_dir(ck), d));
  vl_ckpt_close(ck);
}

static int open_fails(const char *sub, int code, const char *want) {
  char d[600];
  snprintf(d, sizeof d, "%s/%s", test_tmpdir(), sub);
  vl_clear_error();
  vl_checkpoint *ck = vl_ckpt_open(d);
  if (ck) {
    vl_ckpt_close(ck);
    printf("  %s: opened\n", sub);
    return 0;
  }
  int ok = vl_last_error_code() == code && strstr(vl_last_error(), want);
  if (!ok) printf("  %s: [%d] %s\n", sub, vl_last_error_code(), vl_last_error());
  return ok;
}

static void test_sharded_errors(void) {
  /* Shard 2 missing. */
  mkfolder("noshard");
  save_shard("noshard", "model-00001-of-00002.safetensors", A, 2, 1);
  write_text("noshard", "model.safetensors.index.json", INDEX);
  CHECK(open_fails("noshard", VL_ERR_NOTFOUND,
                   "shard 'model-00002-of-00002.safetensors' listed in the index is missing"));
  /* Index lists a tensor that its shard lacks. */
  mkfolder("lacks");
  save_shard("lacks", "model-00001-of-00002.safetensors", A, 1, 1);
  save_shard("lacks", "model-00002-of-00002.safetensors", B, 2, 10);
  write_text("lacks", "model.safetensors.index.json", INDEX);
  CHECK(open_fails("lacks", VL_ERR_NOTFOUND,
                   "tensor 'model.layers.0.b' is listed in shard "
                   "'model-00001-of-00002.safetensors' but that shard does not contain it"));
  /* The same tensor in two shards. */
  mkfolder("twice");
  save_shard("twice", "model-00001-of-00002.safetensors", A, 2, 1);
  const char *B2[] = {"model.layers.1.w", "lm_head.weight", "model.layers.0.w"};
  save_shard("twice", "model-00002-of-00002.safetensors", B2, 3, 10);
  write_text("twice", "model.safetensors.index.json", INDEX);
  CHECK(open_fails("twice", VL_ERR_FORMAT, "'model.layers.0.w' is present in two shards"));
  /* Malformed indexes. */
  mkfolder("badjson");
  write_text("badjson", "model.safetensors.index.json", "{\"weight_map\": {\"a\": }");
  CHECK(open_fails("badjson", VL_ERR_FORMAT, "index.json: JSON parse error at line 1"));
  mkfolder("nomap");
  write_text("nomap", "model.safetensors.index.json", "{\"metadata\": {}}");
  CHECK(open_fails("nomap", VL_ERR_FORMAT, "no \"weight_map\""));
  mkfolder("emptymap");
  write_text("emptymap", "model.safetensors.index.json", "{\"weight_map\": {}}");
  CHECK(open_fails("emptymap", VL_ERR_FORMAT, "empty"));
  mkfolder("nonstr");
  write_text("nonstr", "model.safetensors.index.json", "{\"weight_map\": {\"a\": 3}}");
  CHECK(open_fails("nonstr", VL_ERR_FORMAT, "'a' is not a file name"));
  mkfolder("escape");
  write_text("escape", "model.safetensors.index.json",
             "{\"weight_map\": {\"a\": \"../sharded/model-00001-of-00002.safetensors\"}}");
  CHECK(open_fails("escape", VL_ERR_FORMAT, "outside the folder"));
  /* A bad shard reports the shard's own error. */
  mkfolder("badshard");
  write_text("badshard", "model-00001-of-00001.safetensors", "\x02\x01\x01\x01\x01\x01\x01\x01[]");
  write_text("badshard", "model.safetensors.index.json",
             "{\"weight_map\": {\"a\": \"model-00001-of-00001.safetensors\"}}");
  CHECK(open_fails("badshard", VL_ERR_FORMAT, "model-00001-of-00001.safetensors: header length"));
  /* Empty folder, folder with only PyTorch weights, missing path. */
  mkfolder("empty");
  CHECK(open_fails("empty", VL_ERR_NOTFOUND, "no model.safetensors"));
  mkfolder("binonly");
  write_text("binonly", "pytorch_model.bin", "PK");
  CHECK(open_fails("binonly", VL_ERR_UNSUPPORTED, "pytorch_model.bin"));
  CHECK(open_fails("no-such-folder", VL_ERR_NOTFOUND, "no such file or folder"));
  vl_clear_error();
  CHECK(vl_ckpt_open("") == NULL && vl_last_error_code() == VL_ERR_INVALID);
}

static void test_single_file_and_golden(void) {
  mkfolder("single");
  save_shard("single", "model.safetensors", A, 2, 3);
  char p[600];
  path_in(p, sizeof p, "single", "model.safetensors");
  vl_checkpoint *ck = vl_ckpt_open(p);
  REQUIRE(ck);
  CHECK(vl_ckpt_count(ck) == 2 && vl_ckpt_find(ck, "model.layers.0.b"));
  vl_ckpt_close(ck);
  /* Trailing slash on a folder. */
  snprintf(p, sizeof p, "%s/single/", test_tmpdir());
  ck = vl_ckpt_open(p);
  CHECK(ck && vl_ckpt_count(ck) == 2);
  vl_ckpt_close(ck);

  struct stat sb;
  const char *g = test_shared_path("golden/qwen3-a");
  if (stat(g, &sb) != 0) {
    printf("  shared goldens missing\n");
    CHECK(0);
    return;
  }
  ck = vl_ckpt_open(g);
  REQUIRE(ck);
  const vl_st_tensor *t = vl_ckpt_find(ck, "model.layers.1.self_attn.q_proj.weight");
  CHECK(t && t->ndim == 2 && t->shape[0] == 4 * 32 && t->shape[1] == 64);
  t = vl_ckpt_find(ck, "model.norm.weight");
  CHECK(t && t->ndim == 1 && t->shape[0] == 64);
  CHECK(vl_ckpt_count(ck) > 20);
  vl_ckpt_close(ck);
  ck = vl_ckpt_open(test_shared_path("golden/blip-cap-a"));
  CHECK(ck && vl_ckpt_find(ck, "vision_model.embeddings.patch_embedding.weight"));
  vl_ckpt_close(ck);
}

/* Runs `vlens inspect ARGS`; returns the exit status and up to cap bytes of
 * stdout in out. -1 if vlens is not built. */
static int run_vlens(const char *args, char *out, size_t cap) {
  const char *exe = test_vlens_exe();
  if (!exe) return -1;
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "%s inspect %s 2>/dev/null", exe, args);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t got = fread(out, 1, cap - 1, p);
  out[got] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_inspect_cli(void) {
  static char out[1 << 20];
  char args[1024];
  snprintf(args, sizeof args, "%s --json", test_shared_path("golden/qwen3-a"));
  int rc = run_vlens(args, out, sizeof out);
  REQUIRE(rc != -1);
  CHECK(rc == 0);
  cJSON *j = vl_json_parse(out, strlen(out), "inspect --json output");
  REQUIRE(j);
  CHECK(vl_json_int(j, "tensor_count", 0) == 24);
  CHECK(vl_json_int(j, "files", 0) == 1);
  CHECK(!strcmp(vl_json_str(j, "metadata.format", ""), "pt"));
  CHECK(!strcmp(vl_json_str(j, "config.model_type", ""), "qwen3"));
  CHECK(!strcmp(vl_json_str(j, "tensors.0.name", ""), "model.embed_tokens.weight"));
  CHECK(vl_json_int(j, "tensors.0.shape.0", 0) == 336);
  cJSON_Delete(j);
  /* Text output of the sharded folder made above. */
  snprintf(args, sizeof args, "%s/sharded", test_tmpdir());
  CHECK(run_vlens(args, out, sizeof out) == 0);
  CHECK(strstr(out, "4 tensors in 2 files, 8 parameters, 32 bytes"));
  CHECK(strstr(out, "lm_head.weight"));
  snprintf(args, sizeof args, "%s/noshard", test_tmpdir());
  CHECK(run_vlens(args, out, sizeof out) == 1);
  CHECK(run_vlens("", out, sizeof out) == 2);
  CHECK(run_vlens("--bogus x", out, sizeof out) == 2);
}

int main(void) {
  RUN(test_sharded_folder);
  RUN(test_sharded_errors);
  RUN(test_single_file_and_golden);
  RUN(test_inspect_cli);
  return test_summary();
}
