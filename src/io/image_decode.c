/* Decoding image files to 8-bit RGB. PNG, JPEG, BMP and GIF go through
 * stb_image, WebP through libwebp. The header is read first so an image over
 * the pixel limit is refused before any pixel memory is allocated. Alpha is
 * dropped, not composited: that is what Pillow's convert("RGB") does, and the
 * Hugging Face processors we follow call exactly that. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>
#include <webp/decode.h>

#include "base/error.h"
#include "io/image.h"

/* Largest side we accept regardless of the pixel limit (vl_image_new's bound). */
#define VL_IMAGE_MAX_SIDE (1 << 16)

typedef enum { FMT_UNKNOWN, FMT_PNG, FMT_JPEG, FMT_BMP, FMT_GIF, FMT_WEBP } img_format;

static int has_prefix(const uint8_t *d, size_t n, const char *magic, size_t m) {
  return n >= m && memcmp(d, magic, m) == 0;
}

static img_format sniff(const uint8_t *d, size_t n) {
  if (has_prefix(d, n, "\x89PNG\r\n\x1a\n", 8)) return FMT_PNG;
  if (has_prefix(d, n, "\xff\xd8\xff", 3)) return FMT_JPEG;
  if (has_prefix(d, n, "BM", 2)) return FMT_BMP;
  if (has_prefix(d, n, "GIF87a", 6) || has_prefix(d, n, "GIF89a", 6)) return FMT_GIF;
  if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0) return FMT_WEBP;
  return FMT_UNKNOWN;
}

static const char *format_name(img_format f) {
  switch (f) {
  case FMT_PNG: return "PNG";
  case FMT_JPEG: return "JPEG";
  case FMT_BMP: return "BMP";
  case FMT_GIF: return "GIF";
  case FMT_WEBP: return "WebP";
  default: return "unknown";
  }
}

/* Names formats we recognise but do not decode, so the error says what the
 * file is rather than just "unknown". */
static const char *unsupported_name(const uint8_t *d, size_t n) {
  static const struct {
    const char *magic;
    size_t len, off;
    const char *name;
  } known[] = {
      {"II*\0", 4, 0, "TIFF"},        {"MM\0*", 4, 0, "TIFF"},
      {"8BPS", 4, 0, "Photoshop PSD"}, {"#?RADIANCE", 10, 0, "Radiance HDR"},
      {"#?RGBE", 6, 0, "Radiance HDR"}, {"\0\0\1\0", 4, 0, "ICO"},
      {"ftypavif", 8, 4, "AVIF"},       {"ftypheic", 8, 4, "HEIC"},
      {"ftypmif1", 8, 4, "HEIF"},       {"%PDF", 4, 0, "PDF"},
      {"PK\3\4", 4, 0, "ZIP archive"},  {"\xff\x0a", 2, 0, "JPEG XL"},
      {"\0\0\0\x0cJXL ", 8, 0, "JPEG XL"}, {"qoif", 4, 0, "QOI"},
      {"<svg", 4, 0, "SVG"},            {"<?xml", 5, 0, "XML/SVG"},
      {"\x1f\x8b", 2, 0, "gzip"},       {"RIFF", 4, 0, "RIFF (not WebP)"},
  };
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (n >= known[i].off + known[i].len &&
        memcmp(d + known[i].off, known[i].magic, known[i].len) == 0)
      return known[i].name;
  if (n >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '7') return "PNM/PAM";
  return NULL;
}

static int check_size(const char *name, const char *fmt, long w, long h, int64_t max_pixels) {
  if (w <= 0 || h <= 0)
    return vl_error(VL_ERR_FORMAT, "%s: %s header has invalid size %ldx%ld", name, fmt, w, h);
  if ((int64_t)w * h > max_pixels || w > VL_IMAGE_MAX_SIDE || h > VL_IMAGE_MAX_SIDE)
    return vl_error(VL_ERR_LIMIT,
                    "%s: %s image is %ldx%ld, over the limit of %lld pixels and %d per side",
                    name, fmt, w, h, (long long)max_pixels, VL_IMAGE_MAX_SIDE);
  return VL_OK;
}

static vl_image *decode_stb(const uint8_t *data, size_t len, img_format f, int64_t max_pixels,
                            const char *name) {
  const char *fmt = format_name(f);
  if (len > (size_t)0x7fffffff) {
    vl_error(VL_ERR_LIMIT, "%s: %s file of %zu bytes is too large", name, fmt, len);
    return NULL;
  }
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, (int)len, &w, &h, &comp)) {
    vl_error(VL_ERR_FORMAT, "%s: corrupt or truncated %s header (%s)", name, fmt,
             stbi_failure_reason());
    return NULL;
  }
  if (check_size(name, fmt, w, h, max_pixels) < 0) return NULL;
  int w2 = 0, h2 = 0;
  uint8_t *px = stbi_load_from_memory(data, (int)len, &w2, &h2, &comp, 3);
  if (!px) {
    const char *why = stbi_failure_reason();
    vl_error(strcmp(why ? why : "", "outofmem") == 0 ? VL_ERR_NOMEM : VL_ERR_FORMAT,
             "%s: cannot decode %s: %s (file corrupt or truncated?)", name, fmt,
             why ? why : "unknown error");
    return NULL;
  }
  /* The info pass and the decode pass read the same header; a mismatch
   * would mean our limit check did not cover what was allocated. */
  if (w2 != w || h2 != h) {
    stbi_image_free(px);
    vl_error(VL_ERR_FORMAT, "%s: %s size changed between header (%dx%d) and decode (%dx%d)",
             name, fmt, w, h, w2, h2);
    return NULL;
  }
  vl_image *img = calloc(1, sizeof *img);
  if (!img) {
    stbi_image_free(px);
    vl_error(VL_ERR_NOMEM, "%s: out of memory", name);
    return NULL;
  }
  /* stb allocates with malloc (STBI_MALLOC default), so vl_image_free's free() matches. */
  img->width = w;
  img->height = h;
  img->channels = 3;
  img->pixels = px;
  return img;
}

static const char *webp_status(VP8StatusCode s) {
  switch (s) {
  case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
  case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
  case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
  case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
  case VP8_STATUS_SUSPENDED: return "suspended";
  case VP8_STATUS_USER_ABORT: return "aborted";
  case VP8_STATUS_NOT_ENOUGH_DATA: return "not enough data (truncated)";
  default: return "unknown error";
  }
}

static vl_image *decode_webp(const uint8_t *data, size_t len, int64_t max_pixels,
                             const char *name) {
  WebPBitstreamFeatures feat;
  VP8StatusCode st = WebPGetFeatures(data, len, &feat);
  if (st != VP8_STATUS_OK) {
    vl_error(VL_ERR_FORMAT, "%s: corrupt or truncated WebP header: %s", name, webp_status(st));
    return NULL;
  }
  if (feat.has_animation) {
    vl_error(VL_ERR_UNSUPPORTED, "%s: animated WebP is not supported", name);
    return NULL;
  }
  if (check_size(name, "WebP", feat.width, feat.height, max_pixels) < 0) return NULL;
  vl_image *img = vl_image_new(feat.width, feat.height, 3);
  if (!img) return NULL;
  size_t stride = (size_t)feat.width * 3;
  size_t size = stride * (size_t)feat.height;
  if (!WebPDecodeRGBInto(data, len, img->pixels, size, (int)stride)) {
    vl_image_free(img);
    vl_error(VL_ERR_FORMAT, "%s: cannot decode WebP (file corrupt or truncated?)", name);
    return NULL;
  }
  return img;
}

vl_image *vl_image_decode(const uint8_t *data, size_t len, int64_t max_pixels,
                          const char *name) {
  if (!name) name = "<memory>";
  if (max_pixels <= 0) max_pixels = VL_IMAGE_DEFAULT_MAX_PIXELS;
  if (!data || len == 0) {
    vl_error(VL_ERR_FORMAT, "%s: empty file, not an image", name);
    return NULL;
  }
  img_format f = sniff(data, len);
  switch (f) {
  case FMT_PNG:
  case FMT_JPEG:
  case FMT_BMP:
  case FMT_GIF: return decode_stb(data, len, f, max_pixels, name);
  case FMT_WEBP: return decode_webp(data, len, max_pixels, name);
  default: break;
  }
  const char *other = unsupported_name(data, len);
  if (other)
    vl_error(VL_ERR_UNSUPPORTED,
             "%s: %s images are not supported (use PNG, JPEG, BMP, GIF or WebP)", name, other);
  else
    vl_error(VL_ERR_FORMAT,
             "%s: not a recognised image (first bytes %02x %02x %02x %02x; expected PNG, "
             "JPEG, BMP, GIF or WebP)",
             name, data[0], len > 1 ? data[1] : 0, len > 2 ? data[2] : 0,
             len > 3 ? data[3] : 0);
  return NULL;
}

/* Largest file we read: a 64-megapixel BMP is ~200 MB; allow headroom. */
#define VL_IMAGE_MAX_FILE_BYTES ((long)1 << 30)

vl_image *vl_image_load(const char *path, int64_t max_pixels) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    vl_error(VL_ERR_IO, "%s: cannot open image: %s", path, strerror(errno));
    return NULL;
  }
  long size = -1;
  if (fseek(fp, 0, SEEK_END) == 0) size = ftell(fp);
  if (size < 0 || fseek(fp, 0, SEEK_SET) != 0) {
    fclose(fp);
    vl_error(VL_ERR_IO, "%s: cannot read image (not a regular file?)", path);
    return NULL;
  }
  if (size > VL_IMAGE_MAX_FILE_BYTES) {
    fclose(fp);
    vl_error(VL_ERR_LIMIT, "%s: image file is %ld bytes, over the 1 GiB limit", path, size);
    return NULL;
  }
  uint8_t *buf = malloc(size ? (size_t)size : 1);
  if (!buf) {
    fclose(fp);
    vl_error(VL_ERR_NOMEM, "%s: out of memory reading %ld bytes", path, size);
    return NULL;
  }
  size_t got = fread(buf, 1, (size_t)size, fp);
  int err = ferror(fp);
  fclose(fp);
  if (err || got != (size_t)size) {
    free(buf);
    vl_error(VL_ERR_IO, "%s: short read (%zu of %ld bytes)", path, got, size);
    return NULL;
  }
  vl_image *img = vl_image_decode(buf, (size_t)size, max_pixels, path);
  free(buf);
  return img;
}
