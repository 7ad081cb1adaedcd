/* JSON config helpers: load errors with positions, dotted-path getters. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "io/json.h"
#include "test.h"

static const char *cfg = "{\n"
                         "  \"model_type\": \"blip\",\n"
                         "  \"architectures\": [\"BlipForConditionalGeneration\", \"Other\"],\n"
                         "  \"rope_scaling\": null,\n"
                         "  \"tie_word_embeddings\": true,\n"
                         "  \"rms_norm_eps\": 1e-06,\n"
                         "  \"half\": 2.5,\n"
                         "  \"vision_config\": {\"hidden_size\": 48, \"sizes\": [3, {\"x\": 7}]},\n"
                         "  \"a.b\": 1\n"
                         "}\n";

static void test_getters(void) {
  cJSON *j = vl_json_parse(cfg, strlen(cfg), "config.json");
  REQUIRE(j);
  CHECK(!strcmp(vl_json_str(j, "model_type", NULL), "blip"));
  CHECK(!strcmp(vl_json_str(j, "architectures.0", NULL), "BlipForConditionalGeneration"));
  CHECK(!strcmp(vl_json_str(j, "architectures.1", NULL), "Other"));
  CHECK(vl_json_str(j, "architectures.2", "dflt")[0] == 'd');
  CHECK(vl_json_int(j, "vision_config.hidden_size", -1) == 48);
  CHECK(vl_json_int(j, "vision_config.sizes.0", -1) == 3);
  CHECK(vl_json_int(j, "vision_config.sizes.1.x", -1) == 7);
  CHECK(vl_json_int(j, "vision_config.missing", 5) == 5);
  CHECK(vl_json_int(j, "half", 9) == 9); /* not an integer: default */
  CHECK(vl_json_float(j, "half", 0) == 2.5);
  CHECK(vl_json_float(j, "vision_config.hidden_size", 0) == 48);
  CHECK_NEAR(vl_json_float(j, "rms_norm_eps", 0), 1e-6, 1e-15);
  CHECK(vl_json_float(j, "rope_scaling", -3) == -3); /* null = absent */
  CHECK(vl_json_get(j, "rope_scaling") != NULL);     /* but the item exists */
  CHECK(vl_json_bool(j, "tie_word_embeddings", 0) == 1);
  CHECK(vl_json_bool(j, "model_type", 7) == 7); /* wrong type: default */
  CHECK(vl_json_get(j, "model_type.x") == NULL);
  CHECK(vl_json_get(j, "") == NULL);
  CHECK(vl_json_get(NULL, "a") == NULL);
  CHECK(vl_json_int(NULL, "a", 11) == 11);
  /* Keys with dots are not reachable by dotted paths: documented limit. */
  CHECK(vl_json_get(j, "a.b") == NULL);

  int64_t v = 0;
  double d = 0;
  const char *s = NULL;
  CHECK(vl_json_need_int(j, "vision_config.hidden_size", "config.json", &v) == VL_OK && v == 48);
  CHECK(vl_json_need_int(j, "vision_config.nope", "config.json", &v) == VL_ERR_NOTFOUND);
  CHECK(strstr(vl_last_error(), "config.json: key 'vision_config.nope' is missing"));
  CHECK(vl_json_need_int(j, "half", "config.json", &v) == VL_ERR_FORMAT);
  CHECK(strstr(vl_last_error(), "'half' must be an integer"));
  CHECK(vl_json_need_int(j, "rope_scaling", "c", &v) == VL_ERR_NOTFOUND);
  CHECK(vl_json_need_float(j, "half", "c", &d) == VL_OK && d == 2.5);
  CHECK(vl_json_need_float(j, "model_type", "c", &d) == VL_ERR_FORMAT);
  CHECK(vl_json_need_str(j, "model_type", "c", &s) == VL_OK && !strcmp(s, "blip"));
  CHECK(vl_json_need_str(j, "half", "c", &s) == VL_ERR_FORMAT);
  cJSON_Delete(j);
}

static void test_parse_errors(void) {
  const char *bad = "{\n  \"a\": 1,\n  \"b\": ]\n}";
  vl_clear_error();
  CHECK(vl_json_parse(bad, strlen(bad), "x.json") == NULL);
  CHECK(vl_last_error_code() == VL_ERR_FORMAT);
  CHECK(strstr(vl_last_error(), "x.json: JSON parse error at line 3, column 8"));
  if (!strstr(vl_last_error(), "line 3")) printf("  %s\n", vl_last_error());
  CHECK(vl_json_parse("{\"a\": [1, 2", 11, "t.json") == NULL);
  CHECK(strstr(vl_last_error(), "t.json") && strstr(vl_last_error(), "parse error"));
  CHECK(vl_json_parse("", 0, "e.json") == NULL);
  CHECK(strstr(vl_last_error(), "end of input"));
  CHECK(vl_json_parse("{} {}", 5, "j.json") == NULL);
  CHECK(strstr(vl_last_error(), "junk after"));
  /* Length is honoured: no reading past len even without a NUL. */
  char nonul[4] = {'[', '1', ']', 'x'};
  cJSON *j = vl_json_parse(nonul, 3, "n");
  CHECK(j && cJSON_IsArray(j));
  cJSON_Delete(j);
  /* Every prefix of a valid document either parses or fails cleanly. */
  size_t n = strlen(cfg);
  int ok = 0;
  for (size_t i = 0; i < n; i++) {
    char *p = malloc(i + 1);
    memcpy(p, cfg, i);
    cJSON *k = vl_json_parse(p, i, "prefix");
    if (k)
      ok++;
    else
      CHECK(vl_last_error_code() == VL_ERR_FORMAT);
    cJSON_Delete(k);
    free(p);
  }
  CHECK(ok == 1); /* only the one lacking just the final newline is whole */
}

static void test_load_files(void) {
  char path[512];
  vl_clear_error();
  snprintf(path, sizeof path, "%s/missing.json", test_tmpdir());
  CHECK(vl_json_load(path) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_NOTFOUND && strstr(vl_last_error(), "missing.json"));
  CHECK(vl_json_load(test_tmpdir()) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_IO);
  snprintf(path, sizeof path, "%s/bom.json", test_tmpdir());
  REQUIRE(test_write_file(path, "\xEF\xBB\xBF{\"k\": 3}\n", 12) == 0);
  cJSON *j = vl_json_load(path);
  CHECK(j && vl_json_int(j, "k", 0) == 3);
  cJSON_Delete(j);
  snprintf(path, sizeof path, "%s/bad.json", test_tmpdir());
  REQUIRE(test_write_file(path, "{\"k\": tru}", 10) == 0);
  CHECK(vl_json_load(path) == NULL);
  CHECK(strstr(vl_last_error(), "bad.json: JSON parse error at line 1"));

  /* The shared goldens' configs load and give the expected sizes. */
  struct stat sb;
  if (stat(test_shared_path("golden/qwen3-a/config.json"), &sb) == 0) {
    j = vl_json_load(test_shared_path("golden/qwen3-a/config.json"));
    REQUIRE(j);
    CHECK(!strcmp(vl_json_str(j, "model_type", ""), "qwen3"));
    CHECK(vl_json_int(j, "hidden_size", 0) == 64);
    CHECK(vl_json_int(j, "vocab_size", 0) == 336);
    CHECK(vl_json_bool(j, "tie_word_embeddings", 0) == 1);
    cJSON_Delete(j);
    j = vl_json_load(test_shared_path("golden/blip-cap-a/config.json"));
    REQUIRE(j);
    CHECK(vl_json_int(j, "vision_config.hidden_size", 0) == 48);
    CHECK(vl_json_int(j, "text_config.vocab_size", 0) == 79);
    cJSON_Delete(j);
  } else {
    printf("  shared goldens missing: %s\n", test_shared_path("golden"));
    CHECK(0);
  }
}

int main(void) {
  RUN(test_getters);
  RUN(test_parse_errors);
  RUN(test_load_files);
  return test_summary();
}
