#include "render/report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "render/canvas.h"
#include "render/figure.h"
#include "render/heatmap.h"
#include "render/png.h"

/* ---- a growing string --------------------------------------------------- */

typedef struct {
  char *s;
  size_t len, cap;
  int failed;
} sbuf;

static void sb_reserve(sbuf *b, size_t more) {
  if (b->failed || b->len + more + 1 <= b->cap) return;
  size_t nc = b->cap ? b->cap : 65536;
  while (nc < b->len + more + 1)
    nc *= 2;
  char *ns = realloc(b->s, nc);
  if (!ns) {
    b->failed = 1;
    return;
  }
  b->s = ns;
  b->cap = nc;
}

static void sb_put(sbuf *b, const char *s, size_t n) {
  sb_reserve(b, n);
  if (b->failed) return;
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = 1;
    return;
  }
  if ((size_t)n < sizeof tmp) {
    sb_put(b, tmp, (size_t)n);
    return;
  }
  sb_reserve(b, (size_t)n);
  if (b->failed) return;
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* Text content and attribute values alike. */
static void sb_escape(sbuf *b, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '<': sb_str(b, "&lt;"); break;
    case '>': sb_str(b, "&gt;"); break;
    case '&': sb_str(b, "&amp;"); break;
    case '"': sb_str(b, "&quot;"); break;
    case '\'': sb_str(b, "&#39;"); break;
    default: sb_put(b, s, 1);
    }
  }
}

static void sb_base64(sbuf *b, const uint8_t *d, size_t n) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  sb_reserve(b, (n + 2) / 3 * 4);
  if (b->failed) return;
  char *o = b->s + b->len;
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
    *o++ = tab[v >> 18];
    *o++ = tab[(v >> 12) & 63];
    *o++ = tab[(v >> 6) & 63];
    *o++ = tab[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
    *o++ = tab[v >> 18];
    *o++ = tab[(v >> 12) & 63];
    *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  b->len = (size_t)(o - b->s);
  b->s[b->len] = 0;
}

/* <img src="data:image/png;base64,..."> */
static int sb_img(sbuf *b, const vl_image *img, const char *alt) {
  uint8_t *png;
  size_t n;
  int rc = vl_png_encode(img, &png, &n);
  if (rc) return rc;
  sb_printf(b, "<img width=\"%d\" height=\"%d\" alt=\"", img->width, img->height);
  sb_escape(b, alt);
  sb_str(b, "\" src=\"data:image/png;base64,");
  sb_base64(b, png, n);
  sb_str(b, "\">");
  free(png);
  return VL_OK;
}

/* ---- page parts ---------------------------------------------------------- */

static const char *STYLE =
    "body{font-family:DejaVu Sans,Arial,sans-serif;margin:24px;color:#222}"
    "h1{font-size:22px;margin:0 0 4px}.model{color:#666;margin:0 0 16px}"
    ".caption{font-size:22px;margin:12px 0;line-height:1.8}"
    ".w{padding:2px 5px;margin:0 1px;border-radius:4px;cursor:pointer;background:#eef}"
    ".w:hover,.w.on{background:#c8322d;color:#fff}"
    ".row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}"
    "figure{margin:0}figcaption{font-weight:bold;margin:4px 0}"
    "table{border-collapse:collapse;font-size:12px;margin-top:4px}"
    "td{border:1px solid #ccc;padding:2px 6px}td.k{color:#555}"
    ".hint{color:#888;font-size:13px}section{margin-top:28px}";

static const char *SCRIPT =
    "(function(){var pinned=0;"
    "function show(i){var ws=document.querySelectorAll('.word');"
    "for(var k=0;k<ws.length;k++)ws[k].hidden=(ws[k].id!=='word-'+i);"
    "var ss=document.querySelectorAll('.w');"
    "for(var k=0;k<ss.length;k++)ss[k].className=(ss[k].getAttribute('data-w')==String(i))"
    "?'w on':'w';}"
    "var ss=document.querySelectorAll('.w');"
    "for(var k=0;k<ss.length;k++){(function(s){var i=s.getAttribute('data-w');"
    "s.addEventListener('mouseenter',function(){show(i);});"
    "s.addEventListener('mouseleave',function(){show(pinned);});"
    "s.addEventListener('click',function(){pinned=i;show(i);});"
    "s.addEventListener('keydown',function(e){if(e.key==='Enter'){pinned=i;show(i);}});"
    "})(ss[k]);}"
    "show(0);})();";

/* One method's overlay figure with its statistics table. */
static int figure(sbuf *b, const vl_image *shown, const vl_heatmap *src, const vl_report *r) {
  if (!src || !src->cells) return vl_error(VL_ERR_INVALID, "report: a word has a missing heatmap");
  if (src->image_w != r->image->width || src->image_h != r->image->height)
    return vl_error(VL_ERR_INVALID,
                    "report: heatmap '%s' was made for a %dx%d image, the report's is %dx%d",
                    src->method, src->image_w, src->image_h, r->image->width, r->image->height);
  vl_heatmap *m = vl_heatmap_clone(src);
  if (!m) return vl_last_error_code();
  vl_heatmap_stats st;
  int rc = vl_heatmap_minmax(m);
  if (!rc) rc = vl_heatmap_stats_compute(m, &st);
  vl_image *ov = rc ? NULL
                    : vl_heatmap_overlay(shown, m->cells, m->gw, m->gh, r->cmap,
                                         r->alpha > 0 ? r->alpha : 0.5f);
  if (!rc && !ov) rc = vl_last_error_code();
  if (!rc) {
    double px, py, cx, cy;
    vl_heatmap_peak(m, &px, &py);
    vl_heatmap_center(m, &cx, &cy);
    sb_str(b, "<figure><figcaption>");
    sb_escape(b, m->method);
    if (m->layer[0]) {
      sb_str(b, " <span class=\"hint\">");
      sb_escape(b, m->layer);
      sb_str(b, "</span>");
    }
    sb_str(b, "</figcaption>");
    rc = sb_img(b, ov, m->method);
    sb_str(b, "<table>");
    sb_printf(b,
              "<tr><td class=\"k\">region</td><td>%s</td></tr>"
              "<tr><td class=\"k\">peak</td><td>(%.1f, %.1f)</td></tr>"
              "<tr><td class=\"k\">center</td><td>(%.1f, %.1f)</td></tr>"
              "<tr><td class=\"k\">concentration</td><td>%.3f</td></tr>"
              "<tr><td class=\"k\">entropy</td><td>%.3f</td></tr>"
              "<tr><td class=\"k\">top10_mass</td><td>%.3f</td></tr>"
              "<tr><td class=\"k\">focus_area</td><td>%.3f</td></tr>"
              "<tr><td class=\"k\">mean / std</td><td>%.3f / %.3f</td></tr>",
              st.region, px, py, cx, cy, st.concentration, st.entropy, st.top10_mass, st.focus_area,
              st.mean, st.std);
    sb_str(b, "</table></figure>");
  }
  vl_image_free(ov);
  vl_heatmap_free(m);
  return rc;
}

static int figures(sbuf *b, const vl_image *shown, int n, const vl_heatmap *const *maps,
                   const vl_report *r) {
  if (n > 0 && !maps)
    return vl_error(VL_ERR_INVALID, "report: %d heatmaps announced, none given", n);
  sb_str(b, "<div class=\"row\">");
  for (int k = 0; k < n; k++) {
    int rc = figure(b, shown, maps[k], r);
    if (rc) return rc;
  }
  if (n == 0) sb_str(b, "<p class=\"hint\">no explanation for this word</p>");
  sb_str(b, "</div>");
  return VL_OK;
}

int vl_report_html(const vl_report *r, char **html, size_t *len) {
  if (html) *html = NULL;
  if (len) *len = 0;
  if (!r || !html) return vl_error(VL_ERR_INVALID, "report: no report or output");
  if (!r->image || !r->image->pixels) return vl_error(VL_ERR_INVALID, "report: no image");
  if (r->n_words < 0 || (r->n_words > 0 && !r->words))
    return vl_error(VL_ERR_INVALID, "report: %d words announced, none given", r->n_words);
  int side = r->panel > 0 ? r->panel : 256, pw, ph;
  vl_figure_panel_size(r->image->width, r->image->height, side, side * 2, &pw, &ph);
  vl_image *shown = vl_canvas_scale(r->image, pw, ph);
  if (!shown) return vl_last_error_code();
  sbuf b = {0};
  int rc = VL_OK;
  const char *title = r->title ? r->title : "vlens report";
  sb_str(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
  sb_escape(&b, title);
  sb_str(&b, "</title><style>");
  sb_str(&b, STYLE);
  sb_str(&b, "</style></head><body>\n<h1>");
  sb_escape(&b, title);
  sb_str(&b, "</h1>");
  if (r->model) {
    sb_str(&b, "<p class=\"model\">model: ");
    sb_escape(&b, r->model);
    sb_str(&b, "</p>");
  }
  if (r->n_words > 0) {
    sb_str(&b, "\n<p class=\"hint\">Hover over a word to see where the model looked; click to "
               "keep it.</p><div class=\"caption\">");
    for (int i = 0; i < r->n_words; i++) {
      sb_printf(&b, "<span class=\"w\" tabindex=\"0\" data-w=\"%d\">", i);
      sb_escape(&b, r->words[i].text ? r->words[i].text : "");
      sb_str(&b, "</span> ");
    }
    sb_str(&b, "</div>\n<div class=\"row\"><figure><figcaption>image</figcaption>");
    rc = sb_img(&b, shown, "input image");
    sb_str(&b, "</figure><div>");
    for (int i = 0; i < r->n_words && !rc; i++) {
      sb_printf(&b, "\n<div class=\"word\" id=\"word-%d\"%s><h2>&ldquo;", i, i ? " hidden" : "");
      sb_escape(&b, r->words[i].text ? r->words[i].text : "");
      sb_str(&b, "&rdquo;</h2>");
      rc = figures(&b, shown, r->words[i].n_maps, r->words[i].maps, r);
      if (rc) vl_error_context("report: word %d '%s'", i, r->words[i].text ? r->words[i].text : "");
      sb_str(&b, "</div>");
    }
    sb_str(&b, "</div></div>");
  }
  if (!rc && r->entail) {
    const vl_report_entail *e = r->entail;
    static const char *names[3] = {"entailment", "neutral", "contradiction"};
    sb_str(&b, "\n<section id=\"entailment\"><h2>Entailment</h2><p>hypothesis: <b>");
    sb_escape(&b, e->hypothesis ? e->hypothesis : "");
    sb_str(&b, "</b></p><p>decision: <b>");
    sb_escape(&b, e->label ? e->label : "");
    sb_str(&b, "</b></p><table>");
    for (int k = 0; k < 3; k++)
      sb_printf(&b, "<tr><td class=\"k\">%s</td><td>%.4f</td></tr>", names[k], e->probs[k]);
    sb_str(&b, "</table>");
    if (r->n_words == 0) {
      sb_str(&b, "<div class=\"row\"><figure><figcaption>image</figcaption>");
      rc = sb_img(&b, shown, "input image");
      sb_str(&b, "</figure></div>");
    }
    if (!rc) rc = figures(&b, shown, e->n_maps, e->maps, r);
    if (rc) vl_error_context("report: entailment");
    sb_str(&b, "</section>");
  }
  sb_str(&b, "\n<script>");
  sb_str(&b, SCRIPT);
  sb_str(&b, "</script>\n</body></html>\n");
  vl_image_free(shown);
  if (!rc && b.failed) rc = vl_error(VL_ERR_NOMEM, "report: out of memory");
  if (rc) {
    free(b.s);
    return rc;
  }
  *html = b.s;
  if (len) *len = b.len;
  return VL_OK;
}

int vl_report_write(const char *path, const vl_report *r) {
  char *html;
  size_t len;
  int rc = vl_report_html(r, &html, &len);
  if (rc) return vl_error_context("%s", path ? path : "(null)");
  FILE *f = path ? fopen(path, "wb") : NULL;
  if (!f) {
    rc = vl_error(VL_ERR_IO, "%s: cannot create: %s", path ? path : "(null)", strerror(errno));
    free(html);
    return rc;
  }
  size_t w = fwrite(html, 1, len, f);
  int closed = fclose(f);
  free(html);
  if (w != len || closed != 0) {
    remove(path);
    return vl_error(VL_ERR_IO, "%s: write failed: %s", path, strerror(errno));
  }
  return VL_OK;
}
