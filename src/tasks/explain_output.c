/* Pictures of explanations and report.html into -o DIR (explain_output.h). */
#include "tasks/explain_output.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "render/canvas.h"
#include "render/figure.h"
#include "render/gif.h"
#include "render/heatmap.h"
#include "render/png.h"
#include "render/report.h"

static int mkdirs(const char *dir) {
  char p[4096];
  if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
    return vl_error(VL_ERR_LIMIT, "%s: path too long", dir);
  for (char *s = p + 1;; s++) {
    if (*s == '/' || !*s) {
      char c = *s;
      *s = 0;
      if (mkdir(p, 0777) != 0 && errno != EEXIST)
        return vl_error(VL_ERR_IO, "%s: cannot create folder: %s", p, strerror(errno));
      if (!c) break;
      *s = c;
    }
  }
  return VL_OK;
}

/* A word as a file-name part: letters and digits, others '_', at most 24. */
static void safe(const char *w, char *out) {
  int n = 0;
  for (; *w && n < 24; w++)
    out[n++] = isalnum((unsigned char)*w) ? (char)tolower((unsigned char)*w) : '_';
  out[n] = 0;
}

static vl_image *display(const vl_image *img) {
  int pw, ph;
  vl_figure_panel_size(img->width, img->height, 192, 512, &pw, &ph);
  return vl_canvas_scale(img, pw, ph);
}

static int write_overlay(const char *dir, const char *stem, const vl_image *big,
                         const vl_heatmap *m, int *nf) {
  char path[4600];
  snprintf(path, sizeof path, "%s/%s_%s.png", dir, stem, m->method);
  vl_image *ov = vl_heatmap_overlay(big, m->cells, m->gw, m->gh, VL_CMAP_JET, 0.5f);
  int rc = ov ? vl_png_write(ov, path) : vl_last_error_code();
  vl_image_free(ov);
  if (!rc) (*nf)++;
  return rc;
}

static int write_figure(const char *dir, const char *file, const vl_image *img, const vl_heatmap *m,
                        const char *title, int *nf) {
  char path[4600];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  vl_figure_opts fo;
  vl_figure_opts_init(&fo);
  fo.title = title;
  vl_image *f = vl_figure_three_panel(img, m->cells, m->gw, m->gh, &fo, NULL);
  int rc = f ? vl_png_write(f, path) : vl_last_error_code();
  vl_image_free(f);
  if (!rc) (*nf)++;
  return rc;
}

/* Layer x head grid of word w's cross-attention (mean of its tokens), each
 * panel min-max normalised, the head mean as the last column. */
static int write_heads(const char *dir, const char *stem, const vl_image *img,
                       const vl_describe_result *d, const vl_describe_word *w, int *nf) {
  const int L = d->n_layers, H = d->n_heads, n = d->gw * d->gh, cols = H + 1;
  float *g = calloc((size_t)L * cols * n, sizeof *g);
  const float **grids = calloc((size_t)L * cols, sizeof *grids);
  char **rl = calloc((size_t)L, sizeof *rl), **cl = calloc((size_t)cols, sizeof *cl);
  int rc = (!g || !grids || !rl || !cl) ? vl_error(VL_ERR_NOMEM, "out of memory") : VL_OK;
  const size_t per = (size_t)L * H * n;
  for (int l = 0; !rc && l < L; l++) {
    for (int h = 0; h < H; h++) {
      float *dst = g + ((size_t)l * cols + h) * n, *mean = g + ((size_t)l * cols + H) * n;
      for (int t = 0; t < w->n_tokens; t++) {
        const float *src = d->head_maps + per * (w->first + t) + ((size_t)l * H + h) * n;
        for (int c = 0; c < n; c++) {
          dst[c] += src[c] / w->n_tokens;
          mean[c] += src[c] / (w->n_tokens * H);
        }
      }
    }
    for (int h = 0; h < cols; h++) {
      float *p = g + ((size_t)l * cols + h) * n;
      vl_heatmap_normalize(p, (size_t)n);
      grids[l * cols + h] = p;
    }
  }
  char buf[32];
  for (int l = 0; !rc && l < L; l++) {
    snprintf(buf, sizeof buf, "layer %d", l);
    rl[l] = strdup(buf);
  }
  for (int h = 0; !rc && h < cols; h++) {
    snprintf(buf, sizeof buf, h < H ? "head %d" : "mean", h);
    cl[h] = strdup(buf);
  }
  if (!rc) {
    char title[256], path[4600];
    snprintf(title, sizeof title, "\"%s\": cross-attention per layer and head", w->text);
    vl_grid_opts go;
    vl_grid_opts_init(&go);
    go.title = title;
    go.row_labels = (const char *const *)rl;
    go.col_labels = (const char *const *)cl;
    vl_image *fig =
        vl_figure_heatmap_grid(img, grids, d->gw, d->gh, L, cols, VL_CMAP_JET, 0.5f, &go);
    snprintf(path, sizeof path, "%s/heads_%s.png", dir, stem);
    rc = fig ? vl_png_write(fig, path) : vl_last_error_code();
    vl_image_free(fig);
    if (!rc) (*nf)++;
  }
  for (int l = 0; rl && l < L; l++)
    free(rl[l]);
  for (int h = 0; cl && h < cols; h++)
    free(cl[h]);
  free(rl);
  free(cl);
  free(g);
  free(grids);
  return rc;
}

/* One frame per generated token: its first map over the image (when
 * explained), the caption so far underneath with the newest token in red. */
static int write_gif(const char *dir, const vl_image *big, const vl_describe_result *d, int *nf) {
  if (d->n_tokens == 0) return VL_OK;
  vl_image **frames = calloc((size_t)d->n_tokens, sizeof *frames);
  size_t cap = 16;
  for (int i = 0; i < d->n_tokens; i++)
    cap += strlen(d->tokens[i].text) + 1;
  char *text = calloc(cap, 1);
  int rc = (!frames || !text) ? vl_error(VL_ERR_NOMEM, "out of memory") : VL_OK;
  size_t len = 0;
  for (int i = 0; !rc && i < d->n_tokens; i++) {
    const vl_describe_token *t = &d->tokens[i];
    bool glue = i == 0 || ispunct((unsigned char)t->text[0]);
    for (int w = 0; w < d->n_words; w++) /* a word piece joins its word */
      if (d->words[w].n_tokens > 1 && i > d->words[w].first &&
          i < d->words[w].first + d->words[w].n_tokens)
        glue = true;
    int from = (int)len + (glue ? 0 : 1);
    if (t->special) /* not in the caption: the frame shows the text so far */
      from = -1;
    else
      len += (size_t)sprintf(text + len, "%s%s", glue ? "" : " ", t->text);
    vl_image *base = t->maps ? vl_heatmap_overlay(big, t->maps[0]->cells, t->maps[0]->gw,
                                                  t->maps[0]->gh, VL_CMAP_JET, 0.5f)
                             : vl_image_clone(big);
    frames[i] = base ? vl_figure_caption(base, text, from, 2, 16.f, NULL) : NULL;
    vl_image_free(base);
    if (!frames[i]) rc = vl_last_error_code();
  }
  if (!rc) {
    char path[4600];
    snprintf(path, sizeof path, "%s/caption.gif", dir);
    int *delays = malloc((size_t)d->n_tokens * sizeof *delays);
    for (int i = 0; delays && i < d->n_tokens; i++)
      delays[i] = i + 1 == d->n_tokens ? 2000 : 600;
    rc = vl_gif_write(path, (const vl_image *const *)frames, d->n_tokens, delays, 0);
    free(delays);
    if (!rc) (*nf)++;
  }
  for (int i = 0; frames && i < d->n_tokens; i++)
    vl_image_free(frames[i]);
  free(frames);
  free(text);
  return rc;
}

int vl_explain_write_outputs(const char *dir, const vl_image *img, const char *model,
                             const vl_describe_result *d, const char *hypothesis,
                             const vl_entail_result *ent, int *n_files) {
  int nf = 0;
  if (n_files) *n_files = 0;
  int rc = mkdirs(dir);
  vl_image *big = rc ? NULL : display(img);
  if (!rc && !big) rc = vl_last_error_code();
  char stem[64], ws[32], title[256];
  for (int w = 0; d && !rc && w < d->n_words; w++) {
    const vl_describe_word *wd = &d->words[w];
    if (wd->n_tokens == 0) continue;
    safe(wd->text, ws);
    snprintf(stem, sizeof stem, "word_%02d_%s", w, ws);
    for (int k = 0; wd->maps && !rc && k < d->n_methods; k++)
      rc = write_overlay(dir, stem, big, wd->maps[k], &nf);
    if (!rc && wd->maps) {
      char file[128];
      snprintf(file, sizeof file, "figure_%s.png", stem);
      snprintf(title, sizeof title, "\"%s\" in \"%s\" (%s)", wd->text, d->text,
               wd->maps[0]->method);
      rc = write_figure(dir, file, img, wd->maps[0], title, &nf);
    }
    if (!rc && wd->maps && d->head_maps) rc = write_heads(dir, stem, img, d, wd, &nf);
  }
  if (d && !rc) rc = write_gif(dir, big, d, &nf);
  for (int k = 0; ent && ent->maps && !rc && k < ent->n_methods; k++)
    rc = write_overlay(dir, "entail", big, ent->maps[k], &nf);
  if (ent && ent->maps && !rc) {
    snprintf(title, sizeof title, "\"%s\": %s (%s)", hypothesis ? hypothesis : "",
             vl_entail_label_name(ent->label), ent->maps[0]->method);
    rc = write_figure(dir, "figure_entail.png", img, ent->maps[0], title, &nf);
  }
  /* report.html */
  vl_report_word *words = NULL;
  int nw = 0;
  if (!rc && d) {
    words = calloc((size_t)(d->n_words + 1), sizeof *words);
    if (!words) rc = vl_error(VL_ERR_NOMEM, "out of memory");
    for (int w = 0; !rc && w < d->n_words; w++) {
      words[nw].text = d->words[w].text;
      words[nw].n_maps = d->words[w].maps ? d->n_methods : 0;
      words[nw].maps = (const vl_heatmap *const *)d->words[w].maps;
      nw++;
    }
  }
  if (!rc) {
    vl_report_entail re;
    if (ent) {
      re.hypothesis = hypothesis ? hypothesis : "";
      re.label = vl_entail_label_name(ent->label);
      for (int l = 0; l < 3; l++)
        re.probs[l] = ent->probs[l];
      re.n_maps = ent->maps ? ent->n_methods : 0;
      re.maps = (const vl_heatmap *const *)ent->maps;
    }
    char t[512];
    snprintf(t, sizeof t, "vlens: %s", d && d->text ? d->text : hypothesis ? hypothesis : "");
    vl_report r = {.title = t,
                   .model = model,
                   .image = img,
                   .n_words = nw,
                   .words = words,
                   .entail = ent ? &re : NULL};
    char path[4600];
    snprintf(path, sizeof path, "%s/report.html", dir);
    rc = vl_report_write(path, &r);
    if (!rc) nf++;
  }
  free(words);
  vl_image_free(big);
  if (n_files) *n_files = nf;
  return rc;
}
