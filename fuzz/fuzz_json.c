/* libFuzzer target: JSON config loading (vl_json_parse) and the dotted-path
 * getters must never crash on any input, and a refusal must say why. Built
 * by tools/fuzz-smoke.sh. */
#include <stdint.h>
#include <string.h>

#include "base/error.h"
#include "io/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const paths[] = {"model_type",
                                      "architectures.0",
                                      "vision_config.hidden_size",
                                      "text_config.rope_scaling.type",
                                      "a.0.b.1",
                                      "0",
                                      "weight_map",
                                      "",
                                      ".",
                                      "x..y"};
  cJSON *j = vl_json_parse((const char *)data, size, "fuzz.json");
  if (!j) {
    if (!vl_last_error()[0]) __builtin_trap();
    return 0;
  }
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
    int64_t v;
    double d;
    const char *s;
    (void)vl_json_get(j, paths[i]);
    (void)vl_json_int(j, paths[i], 0);
    (void)vl_json_float(j, paths[i], 0);
    const char *str = vl_json_str(j, paths[i], NULL);
    if (str) (void)strlen(str);
    (void)vl_json_bool(j, paths[i], 0);
    if (vl_json_need_int(j, paths[i], "fuzz", &v) && !vl_last_error()[0]) __builtin_trap();
    (void)vl_json_need_float(j, paths[i], "fuzz", &d);
    (void)vl_json_need_str(j, paths[i], "fuzz", &s);
  }
  cJSON_Delete(j);
  return 0;
}
