/* Request parsing helpers of the server: base64, images given as data: URIs,
 * typed optional fields. Every failure fills the reply with a 4xx naming the
 * field and what was expected. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "serve/serve_impl.h"

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

int vl_base64_decode(const char *s, size_t n, unsigned char **out, size_t *len) {
  unsigned char *o = malloc(n / 4 * 3 + 3);
  if (!o) return -1;
  size_t k = 0, pad = 0;
  uint32_t acc = 0;
  int bits = 0, q = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      pad++;
      continue;
    }
    int v = b64_value(c);
    if (v < 0 || pad) { /* bad character, or data after padding */
      free(o);
      return -1;
    }
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    q++;
    if (bits >= 8) {
      bits -= 8;
      o[k++] = (unsigned char)(acc >> bits);
    }
  }
  if (q % 4 == 1 || pad > 2 || (pad && (q + pad) % 4)) {
    free(o);
    return -1;
  }
  *out = o;
  *len = k;
  return 0;
}

char *vl_base64_encode(const unsigned char *data, size_t n) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *o = malloc((n + 2) / 3 * 4 + 1);
  if (!o) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)data[i] << 16;
    if (i + 1 < n) v |= (uint32_t)data[i + 1] << 8;
    if (i + 2 < n) v |= data[i + 2];
    o[k++] = tab[(v >> 18) & 63];
    o[k++] = tab[(v >> 12) & 63];
    o[k++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
    o[k++] = i + 2 < n ? tab[v & 63] : '=';
  }
  o[k] = 0;
  return o;
}

int vl_req_image(const vl_server *s, const cJSON *v, const char *field, vl_image **out,
                 vl_reply *r) {
  if (!cJSON_IsString(v) || !v->valuestring[0])
    return vl_reply_error(r, 400, NULL, "'%s': expected an image as a base64 string or data: URI",
                          field);
  const char *str = v->valuestring;
  if (!strncmp(str, "http://", 7) || !strncmp(str, "https://", 8))
    return vl_reply_error(r, 400, NULL,
                          "'%s': image URLs are not fetched; send a data: URI "
                          "(data:image/png;base64,...)",
                          field);
  if (!strncmp(str, "data:", 5)) {
    const char *comma = strchr(str, ',');
    if (!comma || !strstr(str, ";base64") || strstr(str, ";base64") > comma)
      return vl_reply_error(r, 400, NULL,
                            "'%s': a data: URI must be base64 (data:image/png;base64,...)", field);
    str = comma + 1;
  }
  unsigned char *bytes;
  size_t n;
  if (vl_base64_decode(str, strlen(str), &bytes, &n) || n == 0)
    return vl_reply_error(r, 400, NULL, "'%s': invalid base64", field);
  vl_image *img = vl_image_decode(bytes, n, s->o.max_image_pixels, field);
  free(bytes);
  if (!img) return vl_reply_last_error(r, "image");
  *out = img;
  return 0;
}

int vl_req_number(const cJSON *obj, const char *key, double lo, double hi, double *out,
                  vl_reply *r) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v || cJSON_IsNull(v)) return 0;
  if (!cJSON_IsNumber(v))
    return vl_reply_error(r, 400, NULL, "'%s': expected a number in [%g, %g]", key, lo, hi);
  if (!(v->valuedouble >= lo && v->valuedouble <= hi))
    return vl_reply_error(r, 400, NULL, "'%s': %g is outside [%g, %g]", key, v->valuedouble, lo,
                          hi);
  *out = v->valuedouble;
  return 0;
}

int vl_req_int(const cJSON *obj, const char *key, int lo, int hi, int *out, vl_reply *r) {
  double d = *out;
  if (vl_req_number(obj, key, lo, hi, &d, r)) return -1;
  if (d != (double)(int)d)
    return vl_reply_error(r, 400, NULL, "'%s': expected a whole number", key);
  *out = (int)d;
  return 0;
}

int vl_req_bool(const cJSON *obj, const char *key, bool *out, vl_reply *r) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v || cJSON_IsNull(v)) return 0;
  if (!cJSON_IsBool(v)) return vl_reply_error(r, 400, NULL, "'%s': expected true or false", key);
  *out = cJSON_IsTrue(v);
  return 0;
}

int vl_req_string(const cJSON *obj, const char *key, bool required, size_t max, const char **out,
                  vl_reply *r) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v || cJSON_IsNull(v)) {
    if (required) return vl_reply_error(r, 400, NULL, "missing field '%s'", key);
    return 0;
  }
  if (!cJSON_IsString(v)) return vl_reply_error(r, 400, NULL, "'%s': expected a string", key);
  if (strlen(v->valuestring) > max)
    return vl_reply_error(r, 400, NULL, "'%s': longer than the limit of %zu bytes", key, max);
  *out = v->valuestring;
  return 0;
}

int vl_req_csv(const cJSON *obj, const char *key, size_t max, char **out, vl_reply *r) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  *out = NULL;
  if (!v || cJSON_IsNull(v)) return 0;
  if (cJSON_IsString(v)) {
    if (strlen(v->valuestring) > max)
      return vl_reply_error(r, 400, NULL, "'%s': longer than the limit of %zu bytes", key, max);
    *out = strdup(v->valuestring);
    return *out ? 0 : vl_reply_error(r, 500, NULL, "out of memory");
  }
  if (!cJSON_IsArray(v))
    return vl_reply_error(r, 400, NULL, "'%s': expected a string or an array of strings", key);
  size_t n = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, v) {
    if (!cJSON_IsString(e))
      return vl_reply_error(r, 400, NULL, "'%s': expected an array of strings", key);
    n += strlen(e->valuestring) + 1;
  }
  if (n > max + 1)
    return vl_reply_error(r, 400, NULL, "'%s': longer than the limit of %zu bytes", key, max);
  char *s = malloc(n + 1);
  if (!s) return vl_reply_error(r, 500, NULL, "out of memory");
  s[0] = 0;
  size_t k = 0;
  cJSON_ArrayForEach(e, v) {
    size_t l = strlen(e->valuestring);
    if (k) s[k++] = ',';
    memcpy(s + k, e->valuestring, l);
    k += l;
    s[k] = 0;
  }
  *out = s;
  return 0;
}
