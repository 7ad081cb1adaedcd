/* Shapes World v1 generator: layout by rejection, exact pixel-centre drawing,
 * Gaussian noise, caption and balanced hypotheses. See shapes_world.h and the
 * spec (../shared/spec/shapes-world.md) for the rules implemented here. */
#include "io/shapes_world.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <stb/stb_image_write.h>

#include "base/error.h"
#include "base/log.h"
#include "base/threads.h"
#include "io/rng.h"

enum { CANVAS = VL_SHAPES_SIZE, MARGIN = 2, GROW = 3, TRIES = 100, MAX_REDRAWS = 10000 };
enum { STREAM_SCENE = 0, STREAM_HYPOTHESES = 1, NOISE_MAX = 48, GUIDE = 1024 };

static const char *const shape_names[] = {"circle", "square", "triangle"};
static const char *const color_names[] = {"red", "green", "blue", "yellow"};
static const char *const size_names[] = {"small", "large"};
static const char *const label_names[] = {"entailment", "neutral", "contradiction"};
static const char *const number_words[] = {"zero", "one", "two", "three", "four"};
static const char *const relation_words[] = {"left of", "right of", "above", "below"};
static const char *const property_words[] = {"made of wood", "made of metal", "heavy",
                                             "warm",         "new",           "old"};
static const uint8_t base_rgb[VL_COLOR_COUNT][3] = {
    {210, 40, 40}, {40, 160, 60}, {40, 70, 210}, {230, 195, 30}};

const char *vl_shape_name(vl_shape s) {
  return (unsigned)s < VL_SHAPE_COUNT ? shape_names[s] : "?";
}
const char *vl_color_name(vl_color c) {
  return (unsigned)c < VL_COLOR_COUNT ? color_names[c] : "?";
}
const char *vl_size_name(vl_size s) { return (unsigned)s < VL_SIZE_COUNT ? size_names[s] : "?"; }
const char *vl_label_name(vl_label l) {
  return (unsigned)l < VL_LABEL_COUNT ? label_names[l] : "?";
}

vl_shapes_options vl_shapes_default_options(void) {
  vl_shapes_options o = {1, VL_SHAPES_MAX_OBJECTS, 3, 0, {0}};
  for (int t = 0; t < VL_TPL_N; t++)
    o.template_weights[t] = 1;
  return o;
}

int vl_shapes_covers(const vl_shapes_object *o, int px, int py) {
  if (px < o->x0 || py < o->y0 || px >= o->x0 + o->s || py >= o->y0 + o->s) return 0;
  /* Doubled coordinates relative to the box corner keep everything integer:
   * the pixel centre is (u, v) = (2(px-x0)+1, 2(py-y0)+1), the box is [0, 2s]. */
  int s = o->s, u = 2 * (px - o->x0) + 1, v = 2 * (py - o->y0) + 1;
  switch (o->shape) {
  case VL_SHAPE_SQUARE: return 1;
  case VL_SHAPE_CIRCLE: /* |centre - (s, s)| <= s, i.e. distance <= s/2 undoubled */
    return (u - s) * (u - s) + (v - s) * (v - s) <= s * s;
  case VL_SHAPE_TRIANGLE: /* apex (s, 0), base (0, 2s)-(2s, 2s); v <= 2s holds in the box */
    return 2 * u + v >= 2 * s && 2 * u - v <= 2 * s;
  default: return 0;
  }
}

/* Grown boxes [x0-3, x0+s+3) intersect on both axes. */
static int conflicts(const vl_shapes_object *a, const vl_shapes_object *b) {
  return a->x0 - GROW < b->x0 + b->s + GROW && b->x0 - GROW < a->x0 + a->s + GROW &&
         a->y0 - GROW < b->y0 + b->s + GROW && b->y0 - GROW < a->y0 + a->s + GROW;
}

/* The spec's pairwise order: by centre x, ties (|dx| < 1) by centre y. */
static int precedes(const vl_shapes_object *a, const vl_shapes_object *b) {
  if (fabs(a->cx - b->cx) >= 1.0) return a->cx < b->cx;
  return a->cy < b->cy;
}

/* One attempt at the layout; 0 when the spec says to draw the scene again. */
static int draw_layout(vl_rng *r, const vl_shapes_options *opt, vl_shapes_scene *sc) {
  vl_shapes_object obj[VL_SHAPES_MAX_OBJECTS];
  for (int c = 0; c < 3; c++)
    sc->background[c] = (uint8_t)vl_rng_int(r, 200, 250);
  int k = (int)vl_rng_int(r, opt->min_objects, opt->max_objects);
  for (int i = 0; i < k; i++) {
    vl_shapes_object *o = &obj[i];
    o->shape = (vl_shape)vl_rng_int(r, 0, VL_SHAPE_COUNT - 1);
    o->color = (vl_color)vl_rng_int(r, 0, VL_COLOR_COUNT - 1);
    for (int c = 0; c < 3; c++)
      o->rgb[c] = (uint8_t)(base_rgb[o->color][c] + vl_rng_int(r, -15, 15));
    o->size = (vl_size)vl_rng_int(r, 0, VL_SIZE_COUNT - 1);
    o->s = (int)(o->size == VL_SIZE_SMALL ? vl_rng_int(r, 12, 16) : vl_rng_int(r, 24, 30));
    int placed = 0;
    for (int t = 0; t < TRIES && !placed; t++) {
      o->x0 = (int)vl_rng_int(r, MARGIN, CANVAS - MARGIN - o->s);
      o->y0 = (int)vl_rng_int(r, MARGIN, CANVAS - MARGIN - o->s);
      placed = 1;
      for (int j = 0; j < i && placed; j++)
        if (conflicts(o, &obj[j])) placed = 0;
    }
    if (!placed) return 0;
    o->cx = o->x0 + o->s / 2.0;
    o->cy = o->y0 + o->s / 2.0;
  }
  /* The pairwise rule is a tournament; it is one consistent order exactly
   * when the numbers of objects preceding each object are 0..k-1. */
  int taken[VL_SHAPES_MAX_OBJECTS] = {0};
  for (int i = 0; i < k; i++) {
    int rank = 0;
    for (int j = 0; j < k; j++)
      if (j != i && precedes(&obj[j], &obj[i])) rank++;
    if (taken[rank]) return 0; /* chain of ties: draw again */
    taken[rank] = 1;
    sc->objects[rank] = obj[i];
  }
  sc->n_objects = k;
  return 1;
}

static void render(vl_rng *r, vl_shapes_scene *sc, vl_image *clean) {
  uint8_t *p = clean->pixels, *m = sc->mask->pixels;
  for (int i = 0; i < CANVAS * CANVAS; i++)
    memcpy(p + 3 * i, sc->background, 3);
  memset(m, 0, CANVAS * CANVAS);
  for (int i = 0; i < sc->n_objects; i++) {
    const vl_shapes_object *o = &sc->objects[i];
    for (int py = o->y0; py < o->y0 + o->s; py++)
      for (int px = o->x0; px < o->x0 + o->s; px++)
        if (vl_shapes_covers(o, px, py)) {
          memcpy(p + 3 * (py * CANVAS + px), o->rgb, 3);
          m[py * CANVAS + px] = (uint8_t)(i + 1);
        }
  }
  /* The spec's noise is round(N(0, 6^2)); that integer has a known discrete
   * law, P(d) = Phi((d+0.5)/6) - Phi((d-0.5)/6), so it is drawn directly by
   * inverting its CDF (same distribution, ~10x faster than a Gaussian per
   * channel). |d| > NOISE_MAX (8 sigma, probability ~1e-15) is not drawn. */
  double cdf[2 * NOISE_MAX + 1];
  for (int d = -NOISE_MAX; d <= NOISE_MAX; d++)
    cdf[d + NOISE_MAX] = 0.5 * erfc(-(d + 0.5) / (6.0 * sqrt(2.0)));
  cdf[2 * NOISE_MAX] = 1.0;
  /* guide[b]: first index whose cdf exceeds b/GUIDE, so a draw scans ~1 step */
  uint8_t guide[GUIDE];
  for (int b = 0, i = 0; b < GUIDE; b++) {
    while (cdf[i] <= (double)b / GUIDE)
      i++;
    guide[b] = (uint8_t)i;
  }
  uint8_t *q = sc->image->pixels;
  for (int i = 0; i < CANVAS * CANVAS * 3; i++) {
    double u = vl_rng_uniform(r);
    int d = guide[(int)(u * GUIDE)];
    while (u >= cdf[d])
      d++; /* ends: cdf[last] = 1 > u */
    int v = (int)p[i] + d - NOISE_MAX;
    q[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
  }
}

static void build_caption(vl_shapes_scene *sc) {
  char *c = sc->caption;
  size_t cap = sizeof sc->caption, n = 0;
  c[0] = 0;
  for (int i = 0; i < sc->n_objects; i++) {
    const vl_shapes_object *o = &sc->objects[i];
    const char *sep = i == 0 ? "" : i == sc->n_objects - 1 ? " and " : ", ";
    n += (size_t)snprintf(c + n, cap - n, "%sa %s %s %s", sep, size_names[o->size],
                          color_names[o->color], shape_names[o->shape]);
  }
  snprintf(c + n, cap - n, ".");
}

/* ---- hypotheses ---------------------------------------------------------- */

typedef struct {
  uint8_t tpl, ca, sa, size, number, word, cb, sb;
} filler;

/* Objects with colour c and shape s (indices ascending), count returned. */
static int find_pair(const vl_shapes_scene *sc, vl_color c, vl_shape s, int *idx) {
  int n = 0;
  for (int i = 0; i < sc->n_objects; i++)
    if (sc->objects[i].color == c && sc->objects[i].shape == s) idx[n++] = i;
  return n;
}

/* Label and referents without the text; VL_ERR_INVALID when not emitted. */
static int evaluate(const vl_shapes_scene *sc, const filler *f, vl_shapes_hypothesis *h) {
  int idx[VL_SHAPES_MAX_OBJECTS], n = 0;
  h->tpl = (vl_template)f->tpl;
  h->n_referents = 0;
  switch (f->tpl) {
  case VL_TPL_EXISTS:
  case VL_TPL_EXISTS_SIZED:
    for (int i = 0; i < sc->n_objects; i++) {
      const vl_shapes_object *o = &sc->objects[i];
      if (o->color == f->ca && o->shape == f->sa && (f->tpl == VL_TPL_EXISTS || o->size == f->size))
        h->referents[h->n_referents++] = i;
    }
    h->label = h->n_referents ? VL_LABEL_ENTAILMENT : VL_LABEL_CONTRADICTION;
    return VL_OK;
  case VL_TPL_COUNT:
    for (int i = 0; i < sc->n_objects; i++)
      if (sc->objects[i].shape == f->sa) h->referents[h->n_referents++] = i;
    h->label = h->n_referents == f->number ? VL_LABEL_ENTAILMENT : VL_LABEL_CONTRADICTION;
    return VL_OK;
  case VL_TPL_RELATION: {
    int ib[VL_SHAPES_MAX_OBJECTS];
    if (find_pair(sc, (vl_color)f->ca, (vl_shape)f->sa, idx) != 1 ||
        find_pair(sc, (vl_color)f->cb, (vl_shape)f->sb, ib) != 1)
      return VL_ERR_INVALID;
    const vl_shapes_object *a = &sc->objects[idx[0]], *b = &sc->objects[ib[0]];
    double d = f->word < 2 ? b->cx - a->cx : b->cy - a->cy; /* > 0: a left of / above b */
    if (fabs(d) <= 2.0) return VL_ERR_INVALID;
    int holds = (f->word == 0 || f->word == 2) ? d > 0 : d < 0;
    h->label = holds ? VL_LABEL_ENTAILMENT : VL_LABEL_CONTRADICTION;
    h->n_referents = 2;
    h->referents[0] = idx[0] < ib[0] ? idx[0] : ib[0];
    h->referents[1] = idx[0] < ib[0] ? ib[0] : idx[0];
    return VL_OK;
  }
  case VL_TPL_UNKNOWABLE:
    n = find_pair(sc, (vl_color)f->ca, (vl_shape)f->sa, idx);
    if (n > 1) return VL_ERR_INVALID;
    h->label = n == 1 ? VL_LABEL_NEUTRAL : VL_LABEL_CONTRADICTION;
    h->n_referents = n;
    if (n) h->referents[0] = idx[0];
    return VL_OK;
  default: return VL_ERR_INVALID;
  }
}

static void write_text(const filler *f, vl_shapes_hypothesis *h) {
  char *t = h->text;
  size_t cap = sizeof h->text;
  const char *ca = color_names[f->ca], *sa = shape_names[f->sa];
  switch (f->tpl) {
  case VL_TPL_EXISTS: snprintf(t, cap, "there is a %s %s.", ca, sa); break;
  case VL_TPL_EXISTS_SIZED:
    snprintf(t, cap, "there is a %s %s %s.", size_names[f->size], ca, sa);
    break;
  case VL_TPL_COUNT: snprintf(t, cap, "there are %s %ss.", number_words[f->number], sa); break;
  case VL_TPL_RELATION:
    snprintf(t, cap, "the %s %s is %s the %s %s.", ca, sa, relation_words[f->word],
             color_names[f->cb], shape_names[f->sb]);
    break;
  default: snprintf(t, cap, "the %s %s is %s.", ca, sa, property_words[f->word]); break;
  }
}

int vl_shapes_make_hypothesis(const vl_shapes_scene *sc, vl_template tpl, vl_color ca, vl_shape sa,
                              vl_size size, int number, int word, vl_color cb, vl_shape sb,
                              vl_shapes_hypothesis *out) {
  if (!sc || !out || (unsigned)tpl >= VL_TPL_N || (unsigned)ca >= VL_COLOR_COUNT ||
      (unsigned)sa >= VL_SHAPE_COUNT)
    return vl_error(VL_ERR_INVALID, "shapes hypothesis: bad template or colour/shape");
  if ((tpl == VL_TPL_EXISTS_SIZED && (unsigned)size >= VL_SIZE_COUNT) ||
      (tpl == VL_TPL_COUNT && (number < 2 || number > 4)) ||
      (tpl == VL_TPL_RELATION &&
       ((unsigned)word >= VL_SHAPES_N_RELATIONS || (unsigned)cb >= VL_COLOR_COUNT ||
        (unsigned)sb >= VL_SHAPE_COUNT)) ||
      (tpl == VL_TPL_UNKNOWABLE && (unsigned)word >= VL_SHAPES_N_PROPERTIES))
    return vl_error(VL_ERR_INVALID, "shapes hypothesis: filler out of range for template %d",
                    (int)tpl);
  filler f = {(uint8_t)tpl,    (uint8_t)ca,   (uint8_t)sa, (uint8_t)size,
              (uint8_t)number, (uint8_t)word, (uint8_t)cb, (uint8_t)sb};
  if (evaluate(sc, &f, out) != VL_OK)
    return vl_error(VL_ERR_INVALID, "shapes hypothesis: not emitted for this scene "
                                    "(relation/unknowable conditions)");
  write_text(&f, out);
  return VL_OK;
}

/* Every emitted hypothesis of the scene, bucketed by (label, template). */
typedef struct {
  filler *items;
  int n;
  int start[VL_LABEL_COUNT][VL_TPL_N], count[VL_LABEL_COUNT][VL_TPL_N];
} candidates;

static int list_candidates(const vl_shapes_scene *sc, candidates *cs) {
  enum { MAX = 12 + 24 + 9 + 12 * 12 * 4 + 12 * 6 };
  filler *all = malloc(sizeof(filler) * MAX);
  int *lab = malloc(sizeof(int) * MAX);
  cs->items = malloc(sizeof(filler) * MAX);
  if (!all || !lab || !cs->items) {
    free(all);
    free(lab);
    free(cs->items);
    cs->items = NULL;
    return vl_error(VL_ERR_NOMEM, "shapes: out of memory for hypotheses");
  }
  int n = 0;
  for (int c = 0; c < VL_COLOR_COUNT; c++)
    for (int s = 0; s < VL_SHAPE_COUNT; s++) {
      all[n++] = (filler){VL_TPL_EXISTS, (uint8_t)c, (uint8_t)s, 0, 0, 0, 0, 0};
      for (int z = 0; z < VL_SIZE_COUNT; z++)
        all[n++] = (filler){VL_TPL_EXISTS_SIZED, (uint8_t)c, (uint8_t)s, (uint8_t)z, 0, 0, 0, 0};
      for (int w = 0; w < VL_SHAPES_N_PROPERTIES; w++)
        all[n++] = (filler){VL_TPL_UNKNOWABLE, (uint8_t)c, (uint8_t)s, 0, 0, (uint8_t)w, 0, 0};
      for (int c2 = 0; c2 < VL_COLOR_COUNT; c2++)
        for (int s2 = 0; s2 < VL_SHAPE_COUNT; s2++)
          for (int w = 0; w < VL_SHAPES_N_RELATIONS; w++)
            all[n++] = (filler){VL_TPL_RELATION, (uint8_t)c,  (uint8_t)s, 0, 0,
                                (uint8_t)w,      (uint8_t)c2, (uint8_t)s2};
    }
  for (int s = 0; s < VL_SHAPE_COUNT; s++)
    for (int num = 2; num <= 4; num++)
      all[n++] = (filler){VL_TPL_COUNT, 0, (uint8_t)s, 0, (uint8_t)num, 0, 0, 0};
  vl_shapes_hypothesis h;
  for (int i = 0; i < n; i++)
    lab[i] = evaluate(sc, &all[i], &h) == VL_OK ? (int)h.label : -1;
  /* Stable bucketing keeps the enumeration order, hence reproducibility. */
  cs->n = 0;
  for (int l = 0; l < VL_LABEL_COUNT; l++)
    for (int t = 0; t < VL_TPL_N; t++) {
      cs->start[l][t] = cs->n;
      for (int i = 0; i < n; i++)
        if (lab[i] == l && all[i].tpl == t) cs->items[cs->n++] = all[i];
      cs->count[l][t] = cs->n - cs->start[l][t];
    }
  free(all);
  free(lab);
  return VL_OK;
}

static int label_possible(const candidates *cs, int l) {
  for (int t = 0; t < VL_TPL_N; t++)
    if (cs->count[l][t]) return 1;
  return 0;
}

static int weights_uniform(const double *w) {
  for (int t = 1; t < VL_TPL_N; t++)
    if (w[t] != w[0]) return 0;
  return 1;
}

/* A template for `label` (uniform when w is NULL, else by the weights w >= 0;
 * a label whose templates all weigh 0 falls back to uniform), then a filler. */
static filler pick(vl_rng *r, const candidates *cs, int label, const double *w) {
  int tpls[VL_TPL_N] = {0}, nt = 0;
  double total = 0;
  for (int t = 0; t < VL_TPL_N; t++)
    if (cs->count[label][t]) {
      tpls[nt++] = t;
      total += w ? w[t] : 0;
    }
  int i;
  if (total <= 0) {
    i = vl_rng_int(r, 0, nt - 1); /* the spec's draw, bit for bit */
  } else {
    double u = vl_rng_uniform(r) * total;
    i = 0;
    while (i < nt - 1 && (u -= w[tpls[i]]) >= 0)
      i++;
    while (w[tpls[i]] <= 0) /* u landed at the edge of a zero weight */
      i--;
  }
  const int t = tpls[i];
  return cs->items[cs->start[label][t] + vl_rng_int(r, 0, cs->count[label][t] - 1)];
}

static int make_hypotheses(uint64_t seed, int64_t index, int k, const double *tpl_w,
                           vl_shapes_scene *sc) {
  if (k == 0) return VL_OK;
  if (weights_uniform(tpl_w)) tpl_w = NULL; /* the spec's pick */
  sc->hypotheses = calloc((size_t)k, sizeof *sc->hypotheses);
  if (!sc->hypotheses) return vl_error(VL_ERR_NOMEM, "shapes: out of memory for hypotheses");
  candidates cs;
  int st = list_candidates(sc, &cs);
  if (st != VL_OK) return st;
  vl_rng r;
  vl_rng_seed(&r, seed, (uint64_t)index, STREAM_HYPOTHESES);
  filler *used = malloc(sizeof(filler) * (size_t)k);
  if (!used) {
    free(cs.items);
    return vl_error(VL_ERR_NOMEM, "shapes: out of memory for hypotheses");
  }
  for (int j = 0; j < k; j++) {
    int label = (int)(((uint64_t)index * (uint64_t)k + (uint64_t)j) % VL_LABEL_COUNT);
    if (!label_possible(&cs, label)) { /* only neutral can be impossible */
      int others[2] = {0}, no = 0;
      for (int l = 0; l < VL_LABEL_COUNT; l++)
        if (l != label) others[no++] = l;
      label = others[vl_rng_int(&r, 0, 1)];
    }
    filler f = pick(&r, &cs, label, tpl_w);
    for (int attempt = 1; attempt < 20; attempt++) {
      int dup = 0;
      for (int u = 0; u < j && !dup; u++)
        dup = !memcmp(&used[u], &f, sizeof f);
      if (!dup) break;
      f = pick(&r, &cs, label, tpl_w);
    }
    used[j] = f;
    evaluate(sc, &f, &sc->hypotheses[j]);
    write_text(&f, &sc->hypotheses[j]);
  }
  sc->n_hypotheses = k;
  free(used);
  free(cs.items);
  return VL_OK;
}

/* ---- scenes ---------------------------------------------------------------- */

vl_shapes_scene *vl_shapes_generate(uint64_t seed, int64_t index, const vl_shapes_options *opt) {
  vl_shapes_options o = opt ? *opt : vl_shapes_default_options();
  if (index < 0) {
    vl_error(VL_ERR_INVALID, "shapes: scene index %lld is negative", (long long)index);
    return NULL;
  }
  if (o.min_objects < 1 || o.max_objects > VL_SHAPES_MAX_OBJECTS || o.min_objects > o.max_objects) {
    vl_error(VL_ERR_INVALID, "shapes: object count range %d..%d is not within 1..%d", o.min_objects,
             o.max_objects, VL_SHAPES_MAX_OBJECTS);
    return NULL;
  }
  if (o.n_hypotheses < 0 || o.n_hypotheses > 1000) {
    vl_error(VL_ERR_INVALID, "shapes: %d hypotheses per scene is not within 0..1000",
             o.n_hypotheses);
    return NULL;
  }
  for (int t = 0; t < VL_TPL_N; t++)
    if (!(o.template_weights[t] >= 0 && o.template_weights[t] <= 1e6)) {
      vl_error(VL_ERR_INVALID, "shapes: template weight %d is not within 0..1e6", t);
      return NULL;
    }
  vl_shapes_scene *sc = calloc(1, sizeof *sc);
  if (!sc) {
    vl_error(VL_ERR_NOMEM, "shapes: out of memory");
    return NULL;
  }
  vl_image *clean = vl_image_new(CANVAS, CANVAS, 3);
  sc->image = vl_image_new(CANVAS, CANVAS, 3);
  sc->mask = vl_image_new(CANVAS, CANVAS, 1);
  if (!clean || !sc->image || !sc->mask) {
    vl_image_free(clean);
    vl_shapes_free(sc);
    return NULL;
  }
  vl_rng r;
  vl_rng_seed(&r, seed, (uint64_t)index, STREAM_SCENE);
  while (!draw_layout(&r, &o, sc)) {
    if (++sc->redraws >= MAX_REDRAWS) { /* not reached with the spec's sizes */
      vl_error(VL_ERR_LIMIT, "shapes: scene %lld of seed %llu: no layout after %d redraws",
               (long long)index, (unsigned long long)seed, MAX_REDRAWS);
      vl_image_free(clean);
      vl_shapes_free(sc);
      return NULL;
    }
  }
  render(&r, sc, clean);
  if (o.keep_clean)
    sc->clean = clean;
  else
    vl_image_free(clean);
  build_caption(sc);
  if (make_hypotheses(seed, index, o.n_hypotheses, o.template_weights, sc) != VL_OK) {
    vl_shapes_free(sc);
    return NULL;
  }
  return sc;
}

void vl_shapes_free(vl_shapes_scene *sc) {
  if (!sc) return;
  vl_image_free(sc->image);
  vl_image_free(sc->clean);
  vl_image_free(sc->mask);
  free(sc->hypotheses);
  free(sc);
}

/* ---- files ----------------------------------------------------------------- */

char *vl_shapes_manifest_line(const vl_shapes_scene *sc, int64_t number) {
  char name[64];
  cJSON *root = cJSON_CreateObject(), *objs = NULL, *hyps = NULL;
  if (!root) goto nomem;
  snprintf(name, sizeof name, "scene_%05lld.png", (long long)number);
  if (!cJSON_AddStringToObject(root, "image", name)) goto nomem;
  snprintf(name, sizeof name, "scene_%05lld_mask.png", (long long)number);
  if (!cJSON_AddStringToObject(root, "mask", name) ||
      !cJSON_AddNumberToObject(root, "width", CANVAS) ||
      !cJSON_AddNumberToObject(root, "height", CANVAS) ||
      !(objs = cJSON_AddArrayToObject(root, "objects")))
    goto nomem;
  for (int i = 0; i < sc->n_objects; i++) {
    const vl_shapes_object *o = &sc->objects[i];
    int box[4] = {o->x0, o->y0, o->x0 + o->s, o->y0 + o->s};
    cJSON *jo = cJSON_CreateObject();
    if (!jo) goto nomem;
    cJSON_AddItemToArray(objs, jo);
    if (!cJSON_AddStringToObject(jo, "shape", shape_names[o->shape]) ||
        !cJSON_AddStringToObject(jo, "color", color_names[o->color]) ||
        !cJSON_AddStringToObject(jo, "size", size_names[o->size]))
      goto nomem;
    cJSON *jb = cJSON_CreateIntArray(box, 4);
    if (!jb) goto nomem;
    cJSON_AddItemToObject(jo, "box", jb);
  }
  if (!cJSON_AddStringToObject(root, "caption", sc->caption) ||
      !(hyps = cJSON_AddArrayToObject(root, "hypotheses")))
    goto nomem;
  for (int j = 0; j < sc->n_hypotheses; j++) {
    const vl_shapes_hypothesis *h = &sc->hypotheses[j];
    cJSON *jh = cJSON_CreateObject();
    if (!jh) goto nomem;
    cJSON_AddItemToArray(hyps, jh);
    if (!cJSON_AddStringToObject(jh, "text", h->text) ||
        !cJSON_AddStringToObject(jh, "label", label_names[h->label]))
      goto nomem;
    cJSON *jr = cJSON_CreateIntArray(h->referents, h->n_referents);
    if (!jr) goto nomem;
    cJSON_AddItemToObject(jh, "referents", jr);
  }
  char *s = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!s) vl_error(VL_ERR_NOMEM, "shapes: out of memory for a manifest line");
  return s;
nomem:
  cJSON_Delete(root);
  vl_error(VL_ERR_NOMEM, "shapes: out of memory for a manifest line");
  return NULL;
}

/* mkdir -p; errors name the folder. */
static int make_dirs(const char *dir) {
  size_t len = strlen(dir);
  if (len == 0) return vl_error(VL_ERR_INVALID, "shapes: empty output folder name");
  char *p = malloc(len + 1);
  if (!p) return vl_error(VL_ERR_NOMEM, "shapes: out of memory");
  memcpy(p, dir, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (p[i] != '/' && p[i] != 0) continue;
    char saved = p[i];
    p[i] = 0;
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      int e = errno;
      free(p);
      return vl_error(VL_ERR_IO, "%s: cannot create folder: %s", dir, strerror(e));
    }
    p[i] = saved;
  }
  free(p);
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return vl_error(VL_ERR_IO, "%s: not a folder", dir);
  return VL_OK;
}

/* One scene: generate, write both PNGs, keep its manifest line. Runs on the
 * thread pool; errors are copied out because vl_error is per thread. */
typedef struct {
  const char *dir;
  uint64_t seed;
  int64_t first;
  const vl_shapes_options *opt;
  char **lines;
  int *status;
  char (*errors)[320];
} write_job;

static int write_scene(const write_job *j, int64_t index, char **line) {
  vl_shapes_scene *sc = vl_shapes_generate(j->seed, index, j->opt);
  if (!sc) return vl_last_error_code();
  size_t plen = strlen(j->dir) + 64;
  char *path = malloc(plen);
  int st = VL_OK;
  if (!path) st = vl_error(VL_ERR_NOMEM, "shapes: out of memory");
  if (st == VL_OK) {
    snprintf(path, plen, "%s/scene_%05lld.png", j->dir, (long long)(index + 1));
    if (!stbi_write_png(path, CANVAS, CANVAS, 3, sc->image->pixels, CANVAS * 3))
      st = vl_error(VL_ERR_IO, "%s: cannot write PNG", path);
  }
  if (st == VL_OK) {
    snprintf(path, plen, "%s/scene_%05lld_mask.png", j->dir, (long long)(index + 1));
    if (!stbi_write_png(path, CANVAS, CANVAS, 1, sc->mask->pixels, CANVAS))
      st = vl_error(VL_ERR_IO, "%s: cannot write PNG", path);
  }
  if (st == VL_OK && !(*line = vl_shapes_manifest_line(sc, index + 1))) st = vl_last_error_code();
  free(path);
  vl_shapes_free(sc);
  return st;
}

static void write_range(void *arg, int64_t begin, int64_t end, int worker) {
  const write_job *j = arg;
  for (int64_t i = begin; i < end; i++) {
    j->lines[i] = NULL;
    j->status[i] = write_scene(j, j->first + i, &j->lines[i]);
    if (j->status[i] != VL_OK) snprintf(j->errors[i], sizeof j->errors[i], "%s", vl_last_error());
  }
}

int vl_shapes_write_set(const char *dir, uint64_t seed, int64_t n, const vl_shapes_options *opt) {
  enum { CHUNK = 256 };
  if (!dir) return vl_error(VL_ERR_INVALID, "shapes: no output folder");
  if (n <= 0)
    return vl_error(VL_ERR_INVALID, "shapes: number of scenes %lld must be positive", (long long)n);
  if (n > 99999999)
    return vl_error(VL_ERR_LIMIT, "shapes: %lld scenes is over the limit of 99999999",
                    (long long)n);
  /* Check the options once, before any file is made. */
  vl_shapes_scene *probe = vl_shapes_generate(seed, 0, opt);
  if (!probe) return vl_last_error_code();
  vl_shapes_free(probe);
  int st = make_dirs(dir);
  if (st != VL_OK) return st;
  size_t plen = strlen(dir) + 64;
  char *path = malloc(plen);
  write_job job = {dir,
                   seed,
                   0,
                   opt,
                   calloc(CHUNK, sizeof(char *)),
                   calloc(CHUNK, sizeof(int)),
                   calloc(CHUNK, sizeof *job.errors)};
  FILE *mf = NULL;
  if (!path || !job.lines || !job.status || !job.errors) {
    st = vl_error(VL_ERR_NOMEM, "shapes: out of memory");
  } else {
    snprintf(path, plen, "%s/manifest.jsonl", dir);
    mf = fopen(path, "w");
    if (!mf) st = vl_error(VL_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  }
  vl_progress prog;
  vl_progress_start(&prog, "shapes", n);
  for (int64_t first = 0; first < n && st == VL_OK; first += CHUNK) {
    int64_t m = n - first < CHUNK ? n - first : CHUNK;
    job.first = first;
    vl_parallel_for(m, 4, write_range, &job);
    /* Lines go out in scene order; the first failure stops the set. */
    for (int64_t i = 0; i < m; i++) {
      if (st == VL_OK && job.status[i] != VL_OK) st = vl_error(job.status[i], "%s", job.errors[i]);
      if (st == VL_OK && fprintf(mf, "%s\n", job.lines[i]) < 0)
        st = vl_error(VL_ERR_IO, "%s: write failed: %s", path, strerror(errno));
      free(job.lines[i]);
    }
    vl_progress_update(&prog, first + m, NULL);
  }
  if (mf && fclose(mf) != 0 && st == VL_OK)
    st = vl_error(VL_ERR_IO, "%s: write failed: %s", path, strerror(errno));
  if (st == VL_OK) vl_progress_end(&prog);
  free(path);
  free(job.lines);
  free(job.status);
  free(job.errors);
  return st;
}
