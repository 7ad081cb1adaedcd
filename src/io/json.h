/* JSON config files (config.json, preprocessor_config.json,
 * tokenizer_config.json) through cJSON, with clear load errors and getters
 * that take dotted paths ("vision_config.hidden_size", "architectures.0").
 *
 * Getters with defaults: a missing key, or a JSON null, gives the default
 * (Hub configs write "rope_scaling": null for "not set"). A present value of
 * the wrong type also gives the default; use the vl_json_need_* forms where
 * a key is required, which report what is wrong and where. */
#ifndef VL_IO_JSON_H
#define VL_IO_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* Reads and parses a whole file. NULL + vl_error: VL_ERR_NOTFOUND for a
 * missing file, VL_ERR_IO for unreadable, VL_ERR_FORMAT with line and column
 * for a parse error. Free with cJSON_Delete. */
cJSON *vl_json_load(const char *path);
/* Parses len bytes of text; name is used in error messages. */
cJSON *vl_json_parse(const char *text, size_t len, const char *name);

/* The item at a dotted path, or NULL (no error recorded). Components that
 * are all digits index arrays. A NULL root gives NULL. */
const cJSON *vl_json_get(const cJSON *root, const char *path);

int64_t vl_json_int(const cJSON *root, const char *path, int64_t def);
double vl_json_float(const cJSON *root, const char *path, double def);
const char *vl_json_str(const cJSON *root, const char *path, const char *def);
int vl_json_bool(const cJSON *root, const char *path, int def);

/* Required values: VL_OK, or VL_ERR_NOTFOUND (absent or null) /
 * VL_ERR_FORMAT (wrong type, non-integer, out of range), with a message
 * "<what>: key 'path': ...". what names the file. */
int vl_json_need_int(const cJSON *root, const char *path, const char *what, int64_t *out);
int vl_json_need_float(const cJSON *root, const char *path, const char *what, double *out);
int vl_json_need_str(const cJSON *root, const char *path, const char *what, const char **out);

#endif
