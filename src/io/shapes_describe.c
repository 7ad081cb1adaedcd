/* Shapes World description grammar, English, and the pieces the Chinese one
 * (shapes_describe_zh.c) shares; see shapes_describe.h. */
#include "io/shapes_describe.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/rng.h"
#include "io/shapes_describe_impl.h"

static const char *const NUM[] = {"no", "one", "two", "three", "four"};
static const char *const REGION[VL_REGION_COUNT] = {"in the top left corner",
                                                    "at the top",
                                                    "in the top right corner",
                                                    "on the left",
                                                    "in the centre",
                                                    "on the right",
                                                    "in the bottom left corner",
                                                    "at the bottom",
                                                    "in the bottom right corner"};
static const char *const VERB[] = {"sits", "is", "lies", "appears"};

vl_region vl_shapes_region(const vl_shapes_object *o) {
  int col = o->cx < 32 ? 0 : o->cx < 64 ? 1 : 2;
  int row = o->cy < 32 ? 0 : o->cy < 64 ? 1 : 2;
  return (vl_region)(row * 3 + col);
}

const char *vl_region_phrase(vl_region r) {
  return r >= 0 && r < VL_REGION_COUNT ? REGION[r] : "?";
}

/* ---- output buffer: sentences, each capitalised ---------------------- */

typedef vl_dbuf dbuf;
typedef vl_desc_ctx ctx;
#define put vl_dbuf_put /* both grammars write through it */

void vl_dbuf_put(vl_dbuf *b, const char *fmt, ...) {
  if (b->over) return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
  va_end(ap);
  if (k < 0 || (size_t)k >= sizeof b->s - b->n)
    b->over = 1;
  else
    b->n += (size_t)k;
}

static void begin(dbuf *b) {
  if (b->n) put(b, " ");
  b->sent = b->n;
}

static void end(dbuf *b) {
  put(b, ".");
  if (!b->over) b->s[b->sent] = (char)toupper((unsigned char)b->s[b->sent]);
}

int vl_desc_pick(vl_desc_ctx *c, int n) { return (int)vl_rng_int(&c->rng, 0, n - 1); }

/* ---- naming ---------------------------------------------------------- */

int vl_desc_same_csh(const vl_shapes_object *a, const vl_shapes_object *b) {
  return a->color == b->color && a->shape == b->shape;
}
int vl_desc_same_full(const vl_shapes_object *a, const vl_shapes_object *b) {
  return vl_desc_same_csh(a, b) && a->size == b->size;
}

int vl_desc_name_level(const vl_desc_ctx *c, int i) {
  int n_csh = 0, n_full = 0;
  const vl_shapes_object *o = &c->sc->objects[i];
  for (int j = 0; j < c->k; j++) {
    n_csh += vl_desc_same_csh(o, &c->sc->objects[j]);
    n_full += vl_desc_same_full(o, &c->sc->objects[j]);
  }
  return n_csh == 1 ? 1 : n_full == 1 ? 2 : 0;
}

int vl_desc_again(const vl_desc_ctx *c, int i, const int *shown, int n_shown) {
  for (int j = 0; j < n_shown; j++)
    if (vl_desc_same_full(&c->sc->objects[i], &c->sc->objects[shown[j]])) return 1;
  return 0;
}

static void full_name(dbuf *b, const vl_shapes_object *o) {
  put(b, "%s %s %s", vl_size_name(o->size), vl_color_name(o->color), vl_shape_name(o->shape));
}

/* "a large red circle", or "another large red circle" when an object of the
 * same size, colour and shape was introduced earlier in `order`. */
static void intro(dbuf *b, const ctx *c, int i, const int *shown, int n_shown) {
  put(b, "%s ", vl_desc_again(c, i, shown, n_shown) ? "another" : "a");
  full_name(b, &c->sc->objects[i]);
}

static void short_name(dbuf *b, const ctx *c, int i) {
  const vl_shapes_object *o = &c->sc->objects[i];
  if (vl_desc_name_level(c, i) == 1)
    put(b, "the %s %s", vl_color_name(o->color), vl_shape_name(o->shape));
  else {
    put(b, "the ");
    full_name(b, o);
  }
}

/* ---- sentences shared by both modes ---------------------------------- */

static void shape_groups(dbuf *b, const ctx *c) {
  int cnt[VL_SHAPE_COUNT] = {0}, order[VL_SHAPE_COUNT], n = 0;
  for (int i = 0; i < c->k; i++) {
    vl_shape s = c->sc->objects[i].shape;
    if (!cnt[s]++) order[n++] = (int)s;
  }
  for (int g = 0; g < n; g++) {
    if (g) put(b, g == n - 1 ? " and " : ", ");
    int m = cnt[order[g]];
    if (m == 1)
      put(b, "a %s", vl_shape_name((vl_shape)order[g]));
    else
      put(b, "%s %ss", NUM[m], vl_shape_name((vl_shape)order[g]));
  }
}

static void overview(dbuf *b, ctx *c) {
  begin(b);
  if (c->k == 1) {
    int v = vl_desc_pick(c, 3);
    static const char *const pre[] = {"the picture shows a single ", "a lone ",
                                      "there is just one object here: a "};
    static const char *const post[] = {" on a plain light background",
                                       " is the only object on a plain light background",
                                       " on a plain light background"};
    put(b, "%s", pre[v]);
    full_name(b, &c->sc->objects[0]);
    put(b, "%s", post[v]);
  } else {
    int v = vl_desc_pick(c, 3);
    if (v == 0) put(b, "the picture shows %s objects on a plain light background: ", NUM[c->k]);
    if (v == 1) put(b, "there are %s shapes on a plain light background: ", NUM[c->k]);
    if (v == 2) put(b, "%s shapes stand out against a plain light background: ", NUM[c->k]);
    shape_groups(b, c);
  }
  end(b);
}

/* ---- scene mode ------------------------------------------------------ */

static void place_clause(dbuf *b, ctx *c, int i, const int *shown, int n_shown) {
  intro(b, c, i, shown, n_shown);
  put(b, " %s %s", VERB[vl_desc_pick(c, 4)], REGION[vl_shapes_region(&c->sc->objects[i])]);
}

typedef vl_desc_relation relation;

static void relation_text(dbuf *b, const relation *r) {
  if (r->v) put(b, "%s", r->v < 0 ? "above" : "below");
  if (r->v && r->h) put(b, " and ");
  if (r->h) put(b, "to the %s of", r->h < 0 ? "left" : "right");
}

/* Draws up to `want` relations between nameable objects that hold by the
 * spec's 2 px rule. Returns how many. */
int vl_desc_draw_relations(vl_desc_ctx *c, vl_desc_relation *out, int want) {
  int cand[12][2], n = 0;
  for (int i = 0; i < c->k; i++)
    for (int j = i + 1; j < c->k; j++) {
      const vl_shapes_object *p = &c->sc->objects[i], *q = &c->sc->objects[j];
      if (!vl_desc_name_level(c, i) || !vl_desc_name_level(c, j)) continue;
      if (q->cx - p->cx > 2 || p->cx - q->cx > 2 || q->cy - p->cy > 2 || p->cy - q->cy > 2) {
        cand[n][0] = i;
        cand[n++][1] = j;
      }
    }
  int got = 0;
  while (got < want && n > 0) {
    int t = vl_desc_pick(c, n);
    int i = cand[t][0], j = cand[t][1];
    cand[t][0] = cand[n - 1][0];
    cand[t][1] = cand[--n][1];
    if (vl_desc_pick(c, 2)) {
      int s = i;
      i = j;
      j = s;
    }
    const vl_shapes_object *p = &c->sc->objects[i], *q = &c->sc->objects[j];
    int h = q->cx - p->cx > 2 ? -1 : p->cx - q->cx > 2 ? 1 : 0;
    int v = q->cy - p->cy > 2 ? -1 : p->cy - q->cy > 2 ? 1 : 0;
    if (h && v) {
      int w = vl_desc_pick(c, 3); /* horizontal, vertical or both */
      if (w == 0) v = 0;
      if (w == 1) h = 0;
    }
    out[got++] = (relation){i, j, h, v};
  }
  return got;
}

static void relations_sentence(dbuf *b, ctx *c, int want) {
  relation r[2];
  int n = vl_desc_draw_relations(c, r, want);
  if (!n) return;
  begin(b);
  if (vl_desc_pick(c, 3) == 0) put(b, "in relation to each other, ");
  for (int i = 0; i < n; i++) {
    if (i) put(b, ", and ");
    short_name(b, c, r[i].a);
    put(b, " is ");
    relation_text(b, &r[i]);
    put(b, " ");
    short_name(b, c, r[i].b);
  }
  end(b);
}

static void scene_mode(dbuf *b, ctx *c) {
  static const char *const suffix[] = {"", " of the canvas", " of the picture"};
  int shown[VL_SHAPES_MAX_OBJECTS], ns = 0;
  overview(b, c);
  if (c->k == 1) {
    begin(b);
    put(b, "the ");
    full_name(b, &c->sc->objects[0]);
    put(b, " %s %s%s", VERB[vl_desc_pick(c, 4)], REGION[vl_shapes_region(&c->sc->objects[0])],
        suffix[vl_desc_pick(c, 3)]);
    end(b);
    return;
  }
  /* objects in caption order, two per sentence (the third of three alone) */
  for (int i = 0; i < c->k; i += 2) {
    begin(b);
    if (i + 1 < c->k) {
      place_clause(b, c, i, shown, ns);
      shown[ns++] = i;
      put(b, "%s", vl_desc_pick(c, 2) ? ", while " : ", and ");
      place_clause(b, c, i + 1, shown, ns);
      shown[ns++] = i + 1;
    } else {
      if (vl_desc_pick(c, 2)) put(b, "finally, ");
      place_clause(b, c, i, shown, ns);
      shown[ns++] = i;
    }
    end(b);
  }
  relations_sentence(b, c, c->k == 2 ? 1 : 1 + vl_desc_pick(c, 2));
}

/* ---- caption mode ---------------------------------------------------- */

static void order_sentence(dbuf *b, ctx *c) {
  int shown[VL_SHAPES_MAX_OBJECTS], ns = 0;
  int v = vl_desc_pick(c, 3);
  begin(b);
  if (v == 0) put(b, "from left to right, there is ");
  if (v == 1) put(b, "reading from left to right, the scene shows ");
  if (v == 2) put(b, "ordered from left to right, the objects are ");
  for (int i = 0; i < c->k; i++) {
    if (i) {
      if (v == 1)
        put(b, i == c->k - 1 && c->k > 2 ? " and finally " : ", then ");
      else
        put(b, i == c->k - 1 ? " and " : ", ");
    }
    intro(b, c, i, shown, ns);
    shown[ns++] = i;
  }
  end(b);
}

static void extremes_sentence(dbuf *b, ctx *c) {
  int first = 0, last = c->k - 1, v = vl_desc_pick(c, 2);
  begin(b);
  if (v) {
    put(b, "the leftmost shape is ");
    intro(b, c, first, NULL, 0);
    put(b, ", and the rightmost is ");
  } else {
    intro(b, c, first, NULL, 0);
    put(b, " is furthest to the left, while ");
  }
  intro(b, c, last, &first, 1);
  if (!v) put(b, " is furthest to the right");
  end(b);
}

static void summary_sentence(dbuf *b, ctx *c) {
  int nsz[VL_SIZE_COUNT] = {0}, ncol[VL_COLOR_COUNT] = {0}, order[VL_COLOR_COUNT], nc = 0;
  for (int i = 0; i < c->k; i++) {
    nsz[c->sc->objects[i].size]++;
    if (!ncol[c->sc->objects[i].color]++) order[nc++] = (int)c->sc->objects[i].color;
  }
  begin(b);
  if (vl_desc_pick(c, 2)) {
    if (!nsz[VL_SIZE_SMALL] || !nsz[VL_SIZE_LARGE])
      put(b, "%s%s shapes are %s", c->k == 2 ? "both" : "all ", c->k == 2 ? "" : NUM[c->k],
          vl_size_name(nsz[VL_SIZE_LARGE] ? VL_SIZE_LARGE : VL_SIZE_SMALL));
    else
      put(b, "%s of them %s large and %s %s small", NUM[nsz[VL_SIZE_LARGE]],
          nsz[VL_SIZE_LARGE] == 1 ? "is" : "are", NUM[nsz[VL_SIZE_SMALL]],
          nsz[VL_SIZE_SMALL] == 1 ? "is" : "are");
  } else {
    if (nc == 1)
      put(b, "%s of them are %s", c->k == 2 ? "both" : "all", vl_color_name((vl_color)order[0]));
    else {
      put(b, "the colours on show are ");
      for (int i = 0; i < nc; i++)
        put(b, "%s%s", i ? (i == nc - 1 ? " and " : ", ") : "", vl_color_name((vl_color)order[i]));
    }
  }
  end(b);
}

static void caption_mode(dbuf *b, ctx *c) {
  overview(b, c);
  if (c->k == 1) {
    const vl_shapes_object *o = &c->sc->objects[0];
    begin(b);
    int v = vl_desc_pick(c, 3);
    if (v == 0)
      put(b, "it is the only shape in the picture, drawn in flat %s", vl_color_name(o->color));
    if (v == 1)
      put(b, "nothing else appears besides this %s %s", vl_size_name(o->size),
          vl_shape_name(o->shape));
    if (v == 2)
      put(b, "the %s %s stands alone, with no other objects around it", vl_color_name(o->color),
          vl_shape_name(o->shape));
    end(b);
    return;
  }
  order_sentence(b, c);
  if (c->k >= 3) extremes_sentence(b, c);
  summary_sentence(b, c);
}

void vl_describe_en(vl_dbuf *b, vl_desc_ctx *c, vl_describe_mode mode) {
  if (mode == VL_DESCRIBE_SCENE)
    scene_mode(b, c);
  else
    caption_mode(b, c);
}

static char *describe(const vl_shapes_scene *sc, vl_describe_mode mode, vl_describe_lang lang,
                      uint64_t seed, int segmented) {
  if (!sc || sc->n_objects < 1 || sc->n_objects > VL_SHAPES_MAX_OBJECTS) {
    vl_error(VL_ERR_INVALID, "shapes describe: scene %s",
             sc ? "has 0 or too many objects" : "is NULL");
    return NULL;
  }
  if (mode != VL_DESCRIBE_SCENE && mode != VL_DESCRIBE_CAPTION) {
    vl_error(VL_ERR_INVALID, "shapes describe: unknown mode %d", (int)mode);
    return NULL;
  }
  if (lang != VL_DESCRIBE_EN && lang != VL_DESCRIBE_ZH) {
    vl_error(VL_ERR_INVALID, "shapes describe: unknown language %d", (int)lang);
    return NULL;
  }
  for (int i = 0; i < sc->n_objects; i++) {
    const vl_shapes_object *o = &sc->objects[i];
    if ((unsigned)o->shape >= VL_SHAPE_COUNT || (unsigned)o->color >= VL_COLOR_COUNT ||
        (unsigned)o->size >= VL_SIZE_COUNT) {
      vl_error(VL_ERR_INVALID, "shapes describe: object %d has an unknown shape/colour/size", i);
      return NULL;
    }
  }
  ctx c = {sc, sc->n_objects, {{0}, 0, 0}};
  /* one stream per language: the English text stays what it always was */
  vl_rng_seed(&c.rng, seed, 0,
              lang == VL_DESCRIBE_ZH ? 0x7a68u /* "zh" */ : 0x64657363u /* "desc" */);
  dbuf *b = calloc(1, sizeof *b);
  if (!b) {
    vl_error(VL_ERR_NOMEM, "shapes describe: out of memory");
    return NULL;
  }
  if (lang == VL_DESCRIBE_ZH) {
    vl_describe_zh(b, &c, mode);
    if (!b->over) vl_describe_zh_finish(b, segmented);
  } else {
    vl_describe_en(b, &c, mode);
  }
  char *out = b->over ? NULL : strdup(b->s);
  if (b->over)
    vl_error(VL_ERR_LIMIT, "shapes describe: text over %d bytes", VL_DESC_MAX);
  else if (!out)
    vl_error(VL_ERR_NOMEM, "shapes describe: out of memory");
  free(b);
  return out;
}

char *vl_shapes_describe_lang(const vl_shapes_scene *sc, vl_describe_mode mode,
                              vl_describe_lang lang, uint64_t seed) {
  return describe(sc, mode, lang, seed, 0);
}

char *vl_shapes_describe_zh_words(const vl_shapes_scene *sc, vl_describe_mode mode, uint64_t seed) {
  return describe(sc, mode, VL_DESCRIBE_ZH, seed, 1);
}

char *vl_shapes_describe(const vl_shapes_scene *sc, vl_describe_mode mode, uint64_t seed) {
  return describe(sc, mode, VL_DESCRIBE_EN, seed, 0);
}
