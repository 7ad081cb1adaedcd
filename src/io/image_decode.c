/* Decoding image files to 8-bit RGB. PNG, JPEG and BMP go through
 * stb_image, GIF through giflib, WebP through libwebp. The header is read first so an image over
 * the pixel limit is refused before any pixel memory is allocated. Alpha is
 * dropped, not composited: that is what Pillow's convert("RGB") does, and the
 * Hugging Face processors we follow call exactly that. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gif_lib.h>
#include <stb/stb_image.h>
#include <webp/decode.h>
#include <zlib.h>

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
      {"II*\0", 4, 0, "TIFF"},
      {"MM\0*", 4, 0, "TIFF"},
      {"8BPS", 4, 0, "Photoshop PSD"},
      {"#?RADIANCE", 10, 0, "Radiance HDR"},
      {"#?RGBE", 6, 0, "Radiance HDR"},
      {"\0\0\1\0", 4, 0, "ICO"},
      {"ftypavif", 8, 4, "AVIF"},
      {"ftypheic", 8, 4, "HEIC"},
      {"ftypmif1", 8, 4, "HEIF"},
      {"%PDF", 4, 0, "PDF"},
      {"PK\3\4", 4, 0, "ZIP archive"},
      {"\xff\x0a", 2, 0, "JPEG XL"},
      {"\0\0\0\x0cJXL ", 8, 0, "JPEG XL"},
      {"qoif", 4, 0, "QOI"},
      {"<svg", 4, 0, "SVG"},
      {"<?xml", 5, 0, "XML/SVG"},
      {"\x1f\x8b", 2, 0, "gzip"},
      {"RIFF", 4, 0, "RIFF (not WebP)"},
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
                    "%s: %s image is %ldx%ld, over the limit of %lld pixels and %d per side", name,
                    fmt, w, h, (long long)max_pixels, VL_IMAGE_MAX_SIDE);
  return VL_OK;
}

static uint32_t rd_be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t rd_le16(const uint8_t *p) { return (uint32_t)p[1] << 8 | p[0]; }
static uint32_t rd_be32(const uint8_t *p) { return rd_be16(p) << 16 | rd_be16(p + 2); }
static uint32_t rd_le32(const uint8_t *p) { return rd_le16(p + 2) << 16 | rd_le16(p); }

/* The size a header claims, read before stb sees it: stb refuses images over
 * 1 GB itself but reports them as "unknown image type", and we want a limit
 * error that says how big the image claims to be. 0 if not found. */
static int peek_size(const uint8_t *d, size_t n, img_format f, long *w, long *h) {
  switch (f) {
  case FMT_PNG:
    if (n < 24 || memcmp(d + 12, "IHDR", 4) != 0) return 0;
    *w = (long)(rd_be32(d + 16) & 0x7fffffffu), *h = (long)(rd_be32(d + 20) & 0x7fffffffu);
    return 1;
  case FMT_GIF:
    if (n < 10) return 0;
    *w = (long)rd_le16(d + 6), *h = (long)rd_le16(d + 8);
    return 1;
  case FMT_BMP: {
    if (n < 26 || rd_le32(d + 14) < 40) return 0; /* old OS/2 headers: leave to stb */
    int32_t hh = (int32_t)rd_le32(d + 22);        /* negative: top-down rows */
    *w = (long)(int32_t)rd_le32(d + 18), *h = hh < 0 ? -(long)hh : (long)hh;
    return 1;
  }
  case FMT_JPEG:
    /* walk the marker segments to the first start-of-frame */
    for (size_t i = 2; i + 9 <= n;) {
      if (d[i] != 0xff) return 0;
      uint8_t m = d[i + 1];
      if (m == 0xff) {
        i++;
        continue;
      }
      if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
        *h = (long)rd_be16(d + i + 5), *w = (long)rd_be16(d + i + 7);
        return 1;
      }
      if (m == 0xd8 || (m >= 0xd0 && m <= 0xd7) || m == 0x01) {
        i += 2;
        continue;
      }
      i += 2 + rd_be16(d + i + 2);
    }
    return 0;
  default: return 0;
  }
}

/* Skips GIF data sub-blocks starting at *i; 0 if the data ends first. */
static int gif_skip_blocks(const uint8_t *d, size_t n, size_t *i) {
  while (*i < n) {
    uint8_t sz = d[(*i)++];
    if (sz == 0) return 1;
    *i += sz;
  }
  return 0;
}

/* stb decodes a GIF whose image data is cut short into a partly blank
 * picture without complaint; walk the blocks up to the end of the first
 * image's data to catch that. Returns a message or NULL if complete. */
static const char *gif_first_frame_problem(const uint8_t *d, size_t n) {
  if (n < 13) return "header cut short";
  size_t i = 13;
  if (d[10] & 0x80) i += (size_t)3 << ((d[10] & 7) + 1);
  while (i < n) {
    uint8_t b = d[i++];
    if (b == 0x21) { /* extension: label, then sub-blocks */
      i++;
      if (!gif_skip_blocks(d, n, &i)) return "extension block cut short";
    } else if (b == 0x2c) { /* image descriptor */
      if (i + 9 > n) return "image descriptor cut short";
      uint8_t flags = d[i + 8];
      i += 9;
      if (flags & 0x80) i += (size_t)3 << ((flags & 7) + 1);
      i++; /* LZW minimum code size */
      if (i > n || !gif_skip_blocks(d, n, &i)) return "image data cut short";
      return NULL;
    } else if (b == 0x3b) {
      return "no image before the trailer";
    } else {
      return "unknown block type";
    }
  }
  return "no image data";
}

/* Bytes of filtered scanlines a PNG of this header inflates to. */
static uint64_t png_raw_size(uint64_t w, uint64_t h, unsigned bits_per_px, int interlaced) {
  if (!interlaced) return h * (1 + (w * bits_per_px + 7) / 8);
  static const int x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1};
  static const int dx[7] = {8, 8, 4, 4, 2, 2, 1}, dy[7] = {8, 8, 8, 4, 4, 2, 2};
  uint64_t total = 0;
  for (int p = 0; p < 7; p++) {
    uint64_t pw = w > (uint64_t)x0[p] ? (w - x0[p] + dx[p] - 1) / dx[p] : 0;
    uint64_t ph = h > (uint64_t)y0[p] ? (h - y0[p] + dy[p] - 1) / dy[p] : 0;
    if (pw && ph) total += ph * (1 + (pw * bits_per_px + 7) / 8);
  }
  return total;
}

/* stb_image 2.27's inflate reads zeros past the end of a truncated or
 * corrupt stream and keeps producing output, so a 200-byte PNG can make it
 * allocate gigabytes. Inflate the IDAT data with zlib first (output thrown
 * away) and refuse streams that are broken, unfinished, or longer than the
 * header allows. Returns VL_OK or an error naming the file. */
static int png_stream_check(const uint8_t *d, size_t n, const char *name) {
  size_t i = 8;
  uint64_t expect = 0, produced = 0;
  int have_ihdr = 0, ended = 0, raw_deflate = 0, rc = VL_OK;
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  uint8_t sink[1 << 14];
  while (!ended) {
    if (n - i < 12) {
      rc = vl_error(VL_ERR_FORMAT, "%s: truncated PNG (ends inside a chunk header)", name);
      break;
    }
    uint32_t clen = rd_be32(d + i);
    const uint8_t *type = d + i + 4, *body = d + i + 8;
    if (clen > n - i - 12) {
      rc = vl_error(VL_ERR_FORMAT, "%s: truncated PNG ('%.4s' chunk of %u bytes cut short)", name,
                    (const char *)type, clen);
      break;
    }
    if (memcmp(type, "CgBI", 4) == 0) raw_deflate = 1; /* Apple's variant, as stb allows */
    if (memcmp(type, "IHDR", 4) == 0 && clen >= 13 && !have_ihdr) {
      static const unsigned chans[7] = {1, 0, 3, 1, 2, 0, 4};
      unsigned ct = body[9], depth = body[8];
      if (ct > 6 || !chans[ct]) break; /* stb reports bad colour types itself */
      expect = png_raw_size(rd_be32(body), rd_be32(body + 4), depth * chans[ct], body[12] != 0);
      if (inflateInit2(&zs, raw_deflate ? -15 : 15) != Z_OK) {
        rc = vl_error(VL_ERR_NOMEM, "%s: cannot start zlib", name);
        break;
      }
      have_ihdr = 1;
    } else if (memcmp(type, "IDAT", 4) == 0 && have_ihdr) {
      zs.next_in = (Bytef *)body;
      zs.avail_in = clen;
      while (zs.avail_in > 0 && rc == VL_OK && !ended) {
        zs.next_out = sink;
        zs.avail_out = sizeof sink;
        int z = inflate(&zs, Z_NO_FLUSH);
        produced += sizeof sink - zs.avail_out;
        if (z == Z_STREAM_END)
          ended = 1;
        else if (z != Z_OK && z != Z_BUF_ERROR)
          rc = vl_error(VL_ERR_FORMAT, "%s: corrupt PNG image data (zlib: %s)", name,
                        zs.msg ? zs.msg : "error");
        else if (z == Z_BUF_ERROR && zs.avail_out == sizeof sink)
          break; /* needs more input: the next IDAT */
        if (produced > expect)
          rc = vl_error(VL_ERR_FORMAT,
                        "%s: corrupt PNG: image data inflates to more than the %llu bytes "
                        "the header allows",
                        name, (unsigned long long)expect);
      }
      if (rc < 0) break;
    } else if (memcmp(type, "IEND", 4) == 0) {
      break;
    }
    i += 12 + (size_t)clen;
  }
  if (have_ihdr) inflateEnd(&zs);
  if (rc == VL_OK && have_ihdr && !ended)
    rc = vl_error(VL_ERR_FORMAT, "%s: truncated PNG (compressed image data does not end)", name);
  return rc;
}

typedef struct {
  const uint8_t *d;
  size_t n, pos;
} gif_mem;

static int gif_read(GifFileType *g, GifByteType *buf, int want) {
  gif_mem *m = g->UserData;
  size_t k = want < 0 ? 0 : (size_t)want;
  if (k > m->n - m->pos) k = m->n - m->pos;
  memcpy(buf, m->d + m->pos, k);
  m->pos += k;
  return (int)k;
}

/* GIF, first frame, as Pillow 9.4 builds it: a canvas of the logical screen
 * (grown to hold the frame), filled with the transparent index if the frame
 * has one, else index 0; the frame's pixels painted in; indices mapped
 * through the frame's palette (local, else global) with entries past the
 * palette's end grey (i, i, i) as Pillow's palette object has them, or taken
 * as grey levels when the file has no palette. Transparency is dropped, so a
 * transparent pixel shows its palette colour — as convert("RGB") does. stb
 * paints such pixels black, which is why GIFs go through giflib. */
static vl_image *decode_gif(const uint8_t *data, size_t len, int64_t max_pixels, const char *name) {
  gif_mem mem = {data, len, 0};
  int err = 0;
  GifFileType *g = DGifOpen(&mem, gif_read, &err);
  if (!g) {
    vl_error(VL_ERR_FORMAT, "%s: corrupt or truncated GIF: %s", name, GifErrorString(err));
    return NULL;
  }
  vl_image *img = NULL;
  uint8_t *line = NULL, *idx = NULL;
  int transparent = -1;
  const char *why = NULL;
  for (;;) {
    GifRecordType rt;
    if (DGifGetRecordType(g, &rt) == GIF_ERROR) {
      why = GifErrorString(g->Error);
      break;
    }
    if (rt == EXTENSION_RECORD_TYPE) {
      int code;
      GifByteType *ext;
      if (DGifGetExtension(g, &code, &ext) == GIF_ERROR) {
        why = GifErrorString(g->Error);
        break;
      }
      if (code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] >= 4)
        transparent = (ext[1] & 1) ? ext[4] : -1;
      while (ext) {
        if (DGifGetExtensionNext(g, &ext) == GIF_ERROR) {
          why = GifErrorString(g->Error);
          break;
        }
      }
      if (why) break;
      continue;
    }
    if (rt == TERMINATE_RECORD_TYPE) {
      why = "no image in the file";
      break;
    }
    if (rt != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(g) == GIF_ERROR) {
      why = GifErrorString(g->Error);
      break;
    }
    GifImageDesc *desc = &g->Image;
    long fw = desc->Width, fh = desc->Height, x0 = desc->Left, y0 = desc->Top;
    long cw = g->SWidth > x0 + fw ? g->SWidth : x0 + fw;
    long ch = g->SHeight > y0 + fh ? g->SHeight : y0 + fh;
    if (fw <= 0 || fh <= 0) {
      why = "empty frame";
      break;
    }
    if (check_size(name, "GIF", cw, ch, max_pixels) < 0) break;
    idx = malloc((size_t)cw * ch);
    line = malloc((size_t)fw);
    if (!idx || !line) {
      vl_error(VL_ERR_NOMEM, "%s: out of memory for a %ldx%ld GIF", name, cw, ch);
      break;
    }
    memset(idx, transparent >= 0 ? transparent : 0, (size_t)cw * ch);
    static const int ioff[4] = {0, 4, 2, 1}, istep[4] = {8, 8, 4, 2};
    int passes = desc->Interlace ? 4 : 1;
    for (int p = 0; p < passes && !why; p++) {
      int start = desc->Interlace ? ioff[p] : 0, step = desc->Interlace ? istep[p] : 1;
      for (long r = start; r < fh; r += step) {
        if (DGifGetLine(g, line, (int)fw) == GIF_ERROR) {
          why = GifErrorString(g->Error);
          break;
        }
        memcpy(idx + (size_t)(y0 + r) * cw + x0, line, (size_t)fw);
      }
    }
    if (why) break;
    const ColorMapObject *cm = desc->ColorMap ? desc->ColorMap : g->SColorMap;
    img = vl_image_new((int)cw, (int)ch, 3);
    if (!img) break;
    for (size_t i = 0; i < (size_t)cw * ch; i++) {
      uint8_t v = idx[i], *o = img->pixels + i * 3;
      if (cm && v < cm->ColorCount) {
        o[0] = cm->Colors[v].Red, o[1] = cm->Colors[v].Green, o[2] = cm->Colors[v].Blue;
      } else {
        o[0] = o[1] = o[2] = v;
      }
    }
    break;
  }
  if (why) vl_error(VL_ERR_FORMAT, "%s: corrupt or truncated GIF: %s", name, why);
  free(line);
  free(idx);
  DGifCloseFile(g, &err);
  return img;
}

/* stb reads zeros past the end of a BMP instead of failing, and ignores
 * compression values it does not know: refuse both, so a 200-byte file
 * cannot turn into a large blank picture. */
static int bmp_check(const uint8_t *d, size_t n, const char *name) {
  if (n < 26) return VL_OK; /* stb reports the short header */
  uint32_t hdr = rd_le32(d + 14), bpp, comp = 0;
  uint64_t w, h;
  if (hdr == 12) { /* OS/2 BITMAPCOREHEADER: 16-bit sizes, no compression */
    w = rd_le16(d + 18), h = rd_le16(d + 20), bpp = rd_le16(d + 24);
  } else if (hdr >= 40 && n >= 34) {
    int32_t hh = (int32_t)rd_le32(d + 22);
    w = rd_le32(d + 18), h = hh < 0 ? (uint64_t)(-(int64_t)hh) : (uint64_t)hh;
    bpp = rd_le16(d + 28), comp = rd_le32(d + 30);
  } else {
    return VL_OK; /* unknown header size: stb refuses it */
  }
  if (comp == 1 || comp == 2)
    return vl_error(VL_ERR_UNSUPPORTED, "%s: RLE-compressed BMP is not supported", name);
  if (comp != 0 && comp != 3 && comp != 6)
    return vl_error(VL_ERR_UNSUPPORTED, "%s: BMP compression type %u is not supported", name, comp);
  if (bpp == 0 || bpp > 32) return VL_OK; /* stb reports bad bit depths */
  uint64_t need = rd_le32(d + 10) + ((bpp * w + 31) / 32) * 4 * h;
  if (need > n)
    return vl_error(VL_ERR_FORMAT, "%s: truncated BMP: %zu bytes, the %llux%llu pixels need %llu",
                    name, n, (unsigned long long)w, (unsigned long long)h,
                    (unsigned long long)need);
  return VL_OK;
}

static vl_image *decode_stb(const uint8_t *data, size_t len, img_format f, int64_t max_pixels,
                            const char *name) {
  const char *fmt = format_name(f);
  long pw = 0, ph = 0;
  /* Only the limit is judged here; a zero size is left to stb's message. */
  int peeked = peek_size(data, len, f, &pw, &ph) && pw > 0 && ph > 0;
  if (peeked && check_size(name, fmt, pw, ph, max_pixels) < 0) return NULL;
  if (len > (size_t)0x7fffffff) {
    vl_error(VL_ERR_LIMIT, "%s: %s file of %zu bytes is too large", name, fmt, len);
    return NULL;
  }
  if (f == FMT_BMP && bmp_check(data, len, name) < 0) return NULL;
  if (f == FMT_PNG && png_stream_check(data, len, name) < 0) return NULL;
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, (int)len, &w, &h, &comp)) {
    /* stbi_info tries every format, so its reason is "unknown image type".
     * When the size we read is within the limit, the format's own loader
     * (which fails the same way) gives the real reason. */
    const char *why = NULL;
    if (peeked) {
      uint8_t *px = stbi_load_from_memory(data, (int)len, &w, &h, &comp, 3);
      if (px)
        stbi_image_free(px);
      else
        why = stbi_failure_reason();
    }
    vl_error(VL_ERR_FORMAT, "%s: corrupt or truncated %s header%s%s%s", name, fmt, why ? " (" : "",
             why ? why : "", why ? ")" : "");
    return NULL;
  }
  if (check_size(name, fmt, w, h, max_pixels) < 0) return NULL;
  int w2 = 0, h2 = 0;
  uint8_t *px;
  if (f == FMT_PNG && len > 25 && data[24] == 16 && data[25] == 0) {
    /* 16-bit greyscale: Pillow 9.4 opens it as mode "I" and convert("RGB")
     * clips each value to 255 (it does not scale), so that is what the
     * Hugging Face processors see. Other 16-bit PNGs keep their high byte
     * in Pillow, as stb does. */
    stbi_us *g = stbi_load_16_from_memory(data, (int)len, &w2, &h2, &comp, 1);
    px = g ? malloc((size_t)w2 * h2 * 3) : NULL;
    if (px)
      for (size_t i = 0; i < (size_t)w2 * h2; i++)
        px[i * 3] = px[i * 3 + 1] = px[i * 3 + 2] = g[i] > 255 ? 255 : (uint8_t)g[i];
    else if (g)
      vl_error(VL_ERR_NOMEM, "%s: out of memory", name);
    stbi_image_free(g);
    if (g && !px) return NULL;
  } else {
    px = stbi_load_from_memory(data, (int)len, &w2, &h2, &comp, 3);
  }
  if (!px) {
    const char *why = stbi_failure_reason();
    if (why && !*why) why = NULL;
    vl_error(strcmp(why ? why : "", "outofmem") == 0 ? VL_ERR_NOMEM : VL_ERR_FORMAT,
             "%s: cannot decode %s: %s (file corrupt or truncated?)", name, fmt,
             why ? why : "unknown error");
    return NULL;
  }
  /* The info pass and the decode pass read the same header; a mismatch
   * would mean our limit check did not cover what was allocated. */
  if (w2 != w || h2 != h) {
    stbi_image_free(px);
    vl_error(VL_ERR_FORMAT, "%s: %s size changed between header (%dx%d) and decode (%dx%d)", name,
             fmt, w, h, w2, h2);
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
  WebPDecoderConfig cfg;
  if (!WebPInitDecoderConfig(&cfg)) {
    vl_image_free(img);
    vl_error(VL_ERR_UNSUPPORTED, "%s: libwebp version mismatch", name);
    return NULL;
  }
  cfg.output.colorspace = MODE_RGB;
  cfg.output.is_external_memory = 1;
  cfg.output.u.RGBA.rgba = img->pixels;
  cfg.output.u.RGBA.stride = (int)stride;
  cfg.output.u.RGBA.size = size;
  st = WebPDecode(data, len, &cfg);
  WebPFreeDecBuffer(&cfg.output); /* external memory: frees nothing of ours */
  if (st != VP8_STATUS_OK) {
    vl_image_free(img);
    vl_error(VL_ERR_FORMAT, "%s: cannot decode WebP: %s", name, webp_status(st));
    return NULL;
  }
  return img;
}

vl_image *vl_image_decode(const uint8_t *data, size_t len, int64_t max_pixels, const char *name) {
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
  case FMT_BMP: return decode_stb(data, len, f, max_pixels, name);
  case FMT_GIF: {
    /* Block walk first: it reports truncation precisely and giflib then
     * only sees complete first frames. */
    long w = 0, h = 0;
    if (peek_size(data, len, f, &w, &h) && w > 0 && h > 0 &&
        check_size(name, "GIF", w, h, max_pixels) < 0)
      return NULL;
    const char *why = gif_first_frame_problem(data, len);
    if (why) {
      vl_error(VL_ERR_FORMAT, "%s: corrupt or truncated GIF: %s", name, why);
      return NULL;
    }
    return decode_gif(data, len, max_pixels, name);
  }
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
             name, data[0], len > 1 ? data[1] : 0, len > 2 ? data[2] : 0, len > 3 ? data[3] : 0);
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
  struct stat sb;
  long size = -1;
  if (fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode) && fseek(fp, 0, SEEK_END) == 0)
    size = ftell(fp);
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
