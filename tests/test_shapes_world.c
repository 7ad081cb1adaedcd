/* Shapes World: every invariant of ../shared/spec/shapes-world.md checked over
 * many generated scenes, with labels, masks and order recomputed here from
 * the spec's formulas (floating point, independent of the generator's
 * integer arithmetic). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <stb/stb_image.h>

#include "base/error.h"
#include "base/log.h"
#include "base/threads.h"
#include "io/rng.h"
#include "io/shapes_world.h"
#include "test.h"

enum { N_SCENES = 2000, W = 96 };

static const int base_rgb[4][3] = {{210, 40, 40}, {40, 160, 60}, {40, 70, 210}, {230, 195, 30}};
static const char *shapes[] = {"circle", "square", "triangle"};
static const char *colors[] = {"red", "green", "blue", "yellow"};
static const char *sizes[] = {"small", "large"};
static const char *labels[] = {"entailment", "neutral", "contradiction"};

static int lookup(const char *w, const char **names, int n) {
  for (int i = 0; i < n; i++)
    if (!strcmp(w, names[i])) return i;
  return -1;
}

/* The spec's drawing rule, literally, in doubles. */
static int inside(const vl_shapes_object *o, int px, int py) {
  double x = px + 0.5, y = py + 0.5, s = o->s, x0 = o->x0, y0 = o->y0;
  if (x < x0 || x >= x0 + s || y < y0 || y >= y0 + s) return 0;
  if (o->shape == VL_SHAPE_SQUARE) return 1;
  if (o->shape == VL_SHAPE_CIRCLE) {
    double dx = x - (x0 + s / 2), dy = y - (y0 + s / 2);
    return dx * dx + dy * dy <= (s / 2) * (s / 2);
  }
  /* triangle: same side of each edge as the opposite vertex */
  double ax = x0 + s / 2, ay = y0, bx = x0, by = y0 + s, cx = x0 + s, cy = y0 + s;
  double d1 = (bx - ax) * (y - ay) - (by - ay) * (x - ax);
  double d2 = (cx - bx) * (y - by) - (cy - by) * (x - bx);
  double d3 = (ax - cx) * (y - cy) - (ay - cy) * (x - cx);
  return (d1 <= 0 && d2 <= 0 && d3 <= 0) || (d1 >= 0 && d2 >= 0 && d3 >= 0);
}

static vl_shapes_scene *gen(uint64_t seed, int64_t index, int k_hyp, int clean) {
  vl_shapes_options o = vl_shapes_default_options();
  o.n_hypotheses = k_hyp;
  o.keep_clean = clean;
  return vl_shapes_generate(seed, index, &o);
}

/* ---- rng ------------------------------------------------------------------ */

static void rng_ranges_and_moments(void) {
  vl_rng r, r2;
  vl_rng_seed(&r, 42, 0, 0);
  vl_rng_seed(&r2, 42, 0, 0);
  int hist[31] = {0};
  for (int i = 0; i < 62000; i++) {
    int64_t v = vl_rng_int(&r, -15, 15);
    REQUIRE(v >= -15 && v <= 15);
    hist[v + 15]++;
    CHECK(vl_rng_int(&r2, -15, 15) == v);
  }
  for (int i = 0; i < 31; i++)
    CHECK(hist[i] > 1700 && hist[i] < 2300); /* expected 2000 */
  double sum = 0, sq = 0;
  for (int i = 0; i < 100000; i++) {
    double g = vl_rng_normal(&r);
    sum += g;
    sq += g * g;
  }
  CHECK_NEAR(sum / 1e5, 0.0, 0.02);
  CHECK_NEAR(sq / 1e5, 1.0, 0.02);
  vl_rng a, b;
  vl_rng_seed(&a, 1, 0, 0);
  vl_rng_seed(&b, 1, 1, 0);
  CHECK(vl_rng_next(&a) != vl_rng_next(&b));
  CHECK(vl_rng_int(&a, 7, 7) == 7);
}

/* ---- scenes ----------------------------------------------------------------- */

static void canvas_objects_and_mask(void) {
  int k_hist[5] = {0}, shape_hist[3] = {0}, color_hist[4] = {0}, size_hist[2] = {0};
  long mask_mismatch = 0;
  for (int64_t n = 0; n < N_SCENES; n++) {
    vl_shapes_scene *sc = gen(7, n, 0, 1);
    REQUIRE(sc);
    REQUIRE(sc->image && sc->clean && sc->mask);
    CHECK(sc->image->width == W && sc->image->height == W && sc->image->channels == 3);
    CHECK(sc->mask->width == W && sc->mask->height == W && sc->mask->channels == 1);
    for (int c = 0; c < 3; c++)
      CHECK(sc->background[c] >= 200 && sc->background[c] <= 250);
    int k = sc->n_objects;
    REQUIRE(k >= 1 && k <= 4);
    k_hist[k]++;
    for (int i = 0; i < k; i++) {
      const vl_shapes_object *o = &sc->objects[i];
      shape_hist[o->shape]++;
      color_hist[o->color]++;
      size_hist[o->size]++;
      for (int c = 0; c < 3; c++)
        CHECK(abs((int)o->rgb[c] - base_rgb[o->color][c]) <= 15);
      if (o->size == VL_SIZE_SMALL)
        CHECK(o->s >= 12 && o->s <= 16);
      else
        CHECK(o->s >= 24 && o->s <= 30);
      CHECK(o->x0 >= 2 && o->x0 + o->s <= 94 && o->y0 >= 2 && o->y0 + o->s <= 94);
      CHECK(o->cx == o->x0 + o->s / 2.0 && o->cy == o->y0 + o->s / 2.0);
      for (int j = 0; j < i; j++) { /* grown boxes [x0-3, x0+s+3) disjoint */
        const vl_shapes_object *p = &sc->objects[j];
        int ox = o->x0 - 3 < p->x0 + p->s + 3 && p->x0 - 3 < o->x0 + o->s + 3;
        int oy = o->y0 - 3 < p->y0 + p->s + 3 && p->y0 - 3 < o->y0 + o->s + 3;
        CHECK(!(ox && oy));
      }
    }
    /* mask and clean image, pixel by pixel, from the spec's formulas */
    for (int py = 0; py < W; py++)
      for (int px = 0; px < W; px++) {
        int want = 0;
        for (int i = 0; i < k; i++)
          if (inside(&sc->objects[i], px, py)) want = i + 1;
        int got = sc->mask->pixels[py * W + px];
        if (got != want) mask_mismatch++;
        const uint8_t *rgb = want ? sc->objects[want - 1].rgb : sc->background;
        if (memcmp(sc->clean->pixels + 3 * (py * W + px), rgb, 3)) mask_mismatch++;
      }
    /* every object is visible in its mask */
    for (int i = 0; i < k; i++) {
      int cnt = 0;
      for (int p = 0; p < W * W; p++)
        cnt += sc->mask->pixels[p] == i + 1;
      CHECK(cnt > 0);
    }
    vl_shapes_free(sc);
  }
  CHECK(mask_mismatch == 0);
  /* Uniform draws (placement rejection slightly favours small scenes). */
  for (int k = 1; k <= 4; k++)
    CHECK(k_hist[k] > 400 && k_hist[k] < 600);
  int total = shape_hist[0] + shape_hist[1] + shape_hist[2];
  for (int i = 0; i < 3; i++)
    CHECK_NEAR(shape_hist[i] / (double)total, 1 / 3.0, 0.03);
  for (int i = 0; i < 4; i++)
    CHECK_NEAR(color_hist[i] / (double)total, 0.25, 0.03);
  CHECK_NEAR(size_hist[0] / (double)total, 0.5, 0.04);
}

static void shape_pixels_match_known_cases(void) {
  /* Hand-checked: a 12 px square has 144 pixels; a circle of extent 12 has
   * the pixels with (2i+1-12)^2 + (2j+1-12)^2 <= 144; the triangle's bottom
   * row is full and its apex row empty. */
  vl_shapes_object o = {VL_SHAPE_SQUARE, VL_COLOR_RED, VL_SIZE_SMALL, 10, 20, 12, {0}, 16, 26};
  int n = 0;
  for (int y = 0; y < W; y++)
    for (int x = 0; x < W; x++)
      n += vl_shapes_covers(&o, x, y);
  CHECK(n == 144);
  o.shape = VL_SHAPE_CIRCLE;
  CHECK(vl_shapes_covers(&o, 15, 20) && vl_shapes_covers(&o, 16, 20));
  CHECK(!vl_shapes_covers(&o, 10, 20) && !vl_shapes_covers(&o, 21, 31));
  CHECK(vl_shapes_covers(&o, 10, 26)); /* (1-12)^2 + (13-12)^2 = 122 <= 144 */
  o.shape = VL_SHAPE_TRIANGLE;
  n = 0; /* apex row: the triangle is 0.5 px wide at y = 20.5, between centres */
  for (int x = 0; x < W; x++)
    n += vl_shapes_covers(&o, x, 20);
  CHECK(n == 0);
  n = 0; /* y = 21.5: x in [15.25, 16.75] */
  for (int x = 0; x < W; x++)
    n += vl_shapes_covers(&o, x, 21);
  CHECK(n == 2 && vl_shapes_covers(&o, 15, 21) && vl_shapes_covers(&o, 16, 21));
  n = 0;
  for (int x = 0; x < W; x++)
    n += vl_shapes_covers(&o, x, 31);
  CHECK(n == 12);
  for (int y = 0; y < W; y++)
    for (int x = 0; x < W; x++)
      for (int s = 0; s < 3; s++) {
        o.shape = (vl_shape)s;
        CHECK(vl_shapes_covers(&o, x, y) == inside(&o, x, y));
      }
}

static void noise_statistics(void) {
  double sum = 0, sq = 0;
  long n = 0, within = 0, bad = 0;
  for (int64_t i = 0; i < 200; i++) {
    vl_shapes_scene *sc = gen(11, i, 0, 1);
    REQUIRE(sc);
    for (int p = 0; p < W * W; p++) {
      if (sc->mask->pixels[p]) continue;
      for (int c = 0; c < 3; c++) {
        int clean = sc->clean->pixels[3 * p + c], noisy = sc->image->pixels[3 * p + c];
        if (clean != sc->background[c]) bad++;
        if (clean > 230) continue; /* keep clipping at 255 out of the statistics */
        double d = noisy - clean;
        sum += d;
        sq += d * d;
        n++;
        within += fabs(d) <= 6;
      }
    }
    vl_shapes_free(sc);
  }
  REQUIRE(n > 100000);
  CHECK(bad == 0);
  double mean = sum / n, sd = sqrt(sq / n - mean * mean);
  CHECK_NEAR(mean, 0.0, 0.05);
  CHECK_NEAR(sd, sqrt(36.0 + 1.0 / 12), 0.06);  /* rounding adds 1/12 */
  CHECK_NEAR(within / (double)n, 0.7213, 0.01); /* P(|N(0,36)| < 6.5) */
}

static int precedes(const vl_shapes_object *a, const vl_shapes_object *b) {
  double ax = a->x0 + a->s / 2.0, bx = b->x0 + b->s / 2.0;
  if (fabs(ax - bx) >= 1) return ax < bx;
  return a->y0 + a->s / 2.0 < b->y0 + b->s / 2.0;
}

static void order_and_caption(void) {
  int seen_k[5] = {0}, ties = 0;
  for (int64_t n = 0; n < N_SCENES; n++) {
    vl_shapes_scene *sc = gen(3, n, 0, 0);
    REQUIRE(sc);
    int k = sc->n_objects;
    seen_k[k] = 1;
    for (int i = 0; i < k; i++)
      for (int j = i + 1; j < k; j++) {
        CHECK(precedes(&sc->objects[i], &sc->objects[j]));
        CHECK(!precedes(&sc->objects[j], &sc->objects[i]));
        ties += fabs(sc->objects[i].cx - sc->objects[j].cx) < 1;
      }
    /* caption rebuilt from the grammar */
    char want[256] = "";
    for (int i = 0; i < k; i++) {
      const vl_shapes_object *o = &sc->objects[i];
      if (i > 0) strcat(want, i == k - 1 ? " and " : ", ");
      strcat(want, "a ");
      strcat(want, sizes[o->size]);
      strcat(want, " ");
      strcat(want, colors[o->color]);
      strcat(want, " ");
      strcat(want, shapes[o->shape]);
    }
    strcat(want, ".");
    CHECK(!strcmp(sc->caption, want));
    size_t len = strlen(sc->caption);
    CHECK(len > 0 && sc->caption[len - 1] == '.');
    CHECK(!strstr(sc->caption, "  "));
    int ands = 0, commas = 0;
    for (const char *p = sc->caption; *p; p++) {
      CHECK((*p >= 'a' && *p <= 'z') || *p == ' ' || *p == ',' || *p == '.');
      commas += *p == ',';
    }
    for (const char *p = strstr(sc->caption, " and "); p; p = strstr(p + 1, " and "))
      ands++;
    CHECK(ands == (k > 1) && commas == (k > 2 ? k - 2 : 0));
    vl_shapes_free(sc);
  }
  for (int k = 1; k <= 4; k++)
    CHECK(seen_k[k]);
  CHECK(ties > 0); /* the tie rule was exercised */
}

static void hypotheses_on_hand_made_scene(void) {
  /* The objects of the spec's caption example, placed by hand. */
  vl_shapes_scene *sc = gen(1, 0, 0, 0);
  REQUIRE(sc);
  sc->n_objects = 3;
  vl_shapes_object a = {VL_SHAPE_CIRCLE, VL_COLOR_RED, VL_SIZE_LARGE, 2, 2, 24, {0}, 14, 14};
  vl_shapes_object b = {VL_SHAPE_SQUARE, VL_COLOR_BLUE, VL_SIZE_SMALL, 40, 2, 12, {0}, 46, 8};
  vl_shapes_object c = {VL_SHAPE_TRIANGLE, VL_COLOR_GREEN, VL_SIZE_SMALL, 70, 2, 12, {0}, 76, 8};
  sc->objects[0] = a;
  sc->objects[1] = b;
  sc->objects[2] = c;
  vl_shapes_hypothesis h;
  /* hypotheses on the hand-made scene, labels from the spec's table */
  CHECK(vl_shapes_make_hypothesis(sc, VL_TPL_EXISTS, VL_COLOR_RED, VL_SHAPE_CIRCLE, 0, 0, 0, 0, 0,
                                  &h) == VL_OK);
  CHECK(!strcmp(h.text, "there is a red circle.") && h.label == VL_LABEL_ENTAILMENT &&
        h.n_referents == 1 && h.referents[0] == 0);
  CHECK(vl_shapes_make_hypothesis(sc, VL_TPL_EXISTS_SIZED, VL_COLOR_BLUE, VL_SHAPE_SQUARE,
                                  VL_SIZE_LARGE, 0, 0, 0, 0, &h) == VL_OK);
  CHECK(!strcmp(h.text, "there is a large blue square.") && h.label == VL_LABEL_CONTRADICTION &&
        h.n_referents == 0);
  CHECK(vl_shapes_make_hypothesis(sc, VL_TPL_COUNT, 0, VL_SHAPE_SQUARE, 0, 2, 0, 0, 0, &h) ==
        VL_OK);
  CHECK(!strcmp(h.text, "there are two squares.") && h.label == VL_LABEL_CONTRADICTION &&
        h.n_referents == 1 && h.referents[0] == 1);
  CHECK(vl_shapes_make_hypothesis(sc, VL_TPL_RELATION, VL_COLOR_RED, VL_SHAPE_CIRCLE, 0, 0, 0,
                                  VL_COLOR_GREEN, VL_SHAPE_TRIANGLE, &h) == VL_OK);
  CHECK(!strcmp(h.text, "the red circle is left of the green triangle.") &&
        h.label == VL_LABEL_ENTAILMENT && h.n_referents == 2 && h.referents[0] == 0 &&
        h.referents[1] == 2);
  CHECK(vl_shapes_make_hypothesis(sc, VL_TPL_RELATION, VL_COLOR_RED, VL_SHAPE_CIRCLE, 0, 0, 3,
                                  VL_COLOR_GREEN, VL_SHAPE_TRIANGLE, &h) == VL_OK);
  CHECK(!strcmp(h.text, "the red circle is below the green triangle.") &&
        h.label == VL_LABEL_ENTAILMENT); /* 14 vs 8: circle centre lower */
  /* blue square and green triangle: same centre y, so no above/below */
  CHECK(vl_shapes_make_hypothesis(sc, VL_TPL_RELATION, VL_COLOR_BLUE, VL_SHAPE_SQUARE, 0, 0, 2,
                                  VL_COLOR_GREEN, VL_SHAPE_TRIANGLE, &h) == VL_ERR_INVALID);
  CHECK(vl_shapes_make_hypothesis(sc, VL_TPL_UNKNOWABLE, VL_COLOR_BLUE, VL_SHAPE_SQUARE, 0, 0, 2, 0,
                                  0, &h) == VL_OK);
  CHECK(!strcmp(h.text, "the blue square is heavy.") && h.label == VL_LABEL_NEUTRAL &&
        h.n_referents == 1 && h.referents[0] == 1);
  CHECK(vl_shapes_make_hypothesis(sc, VL_TPL_UNKNOWABLE, VL_COLOR_YELLOW, VL_SHAPE_SQUARE, 0, 0, 0,
                                  0, 0, &h) == VL_OK);
  CHECK(!strcmp(h.text, "the yellow square is made of wood.") &&
        h.label == VL_LABEL_CONTRADICTION && h.n_referents == 0);
  CHECK(vl_shapes_make_hypothesis(sc, VL_TPL_COUNT, 0, VL_SHAPE_SQUARE, 0, 5, 0, 0, 0, &h) ==
        VL_ERR_INVALID);
  vl_shapes_free(sc);
}

/* Parses a hypothesis text and recomputes label and referents from the
 * objects; returns 0 when the text matches no template or the spec would not
 * emit it. */
static int recompute(const vl_shapes_scene *sc, const char *text, int *label, int *refs,
                     int *n_refs) {
  char buf[256], *w[12];
  int nw = 0;
  size_t len = strlen(text);
  if (len == 0 || len >= sizeof buf || text[len - 1] != '.') return 0;
  memcpy(buf, text, len - 1);
  buf[len - 1] = 0;
  for (char *t = strtok(buf, " "); t && nw < 12; t = strtok(NULL, " "))
    w[nw++] = t;
  const vl_shapes_object *o = sc->objects;
  int k = sc->n_objects;
  *n_refs = 0;
  if (nw >= 5 && !strcmp(w[0], "there") && !strcmp(w[1], "is") && !strcmp(w[2], "a")) {
    int sized = nw == 6, z = sized ? lookup(w[3], sizes, 2) : -1;
    int c = lookup(w[3 + sized], colors, 4), s = lookup(w[4 + sized], shapes, 3);
    if (nw > 6 || c < 0 || s < 0 || (sized && z < 0)) return 0;
    for (int i = 0; i < k; i++)
      if ((int)o[i].color == c && (int)o[i].shape == s && (!sized || (int)o[i].size == z))
        refs[(*n_refs)++] = i;
    *label = *n_refs ? 0 : 2;
    return 1;
  }
  if (nw == 4 && !strcmp(w[0], "there") && !strcmp(w[1], "are")) {
    static const char *nums[] = {"two", "three", "four"};
    int num = lookup(w[2], nums, 3) + 2, s = -1;
    for (int i = 0; i < 3; i++) {
      char pl[32];
      snprintf(pl, sizeof pl, "%ss", shapes[i]);
      if (!strcmp(w[3], pl)) s = i;
    }
    if (num < 2 || s < 0) return 0;
    for (int i = 0; i < k; i++)
      if ((int)o[i].shape == s) refs[(*n_refs)++] = i;
    *label = *n_refs == num ? 0 : 2;
    return 1;
  }
  if (nw >= 5 && !strcmp(w[0], "the") && !strcmp(w[3], "is")) {
    int c = lookup(w[1], colors, 4), s = lookup(w[2], shapes, 3);
    if (c < 0 || s < 0) return 0;
    int a = -1, na = 0;
    for (int i = 0; i < k; i++)
      if ((int)o[i].color == c && (int)o[i].shape == s) a = i, na++;
    /* relation: "the C S is left of|right of|above|below the C S" */
    int rel = -1, at = 4;
    if (nw == 9 && !strcmp(w[5], "of") && !strcmp(w[4], "left")) rel = 0, at = 6;
    if (nw == 9 && !strcmp(w[5], "of") && !strcmp(w[4], "right")) rel = 1, at = 6;
    if (nw == 8 && !strcmp(w[4], "above")) rel = 2, at = 5;
    if (nw == 8 && !strcmp(w[4], "below")) rel = 3, at = 5;
    if (rel >= 0) {
      if (strcmp(w[at], "the")) return 0;
      int c2 = lookup(w[at + 1], colors, 4), s2 = lookup(w[at + 2], shapes, 3), b = -1, nb = 0;
      if (c2 < 0 || s2 < 0) return 0;
      for (int i = 0; i < k; i++)
        if ((int)o[i].color == c2 && (int)o[i].shape == s2) b = i, nb++;
      if (na != 1 || nb != 1) return 0;
      double ax = o[a].x0 + o[a].s / 2.0, ay = o[a].y0 + o[a].s / 2.0;
      double bx = o[b].x0 + o[b].s / 2.0, by = o[b].y0 + o[b].s / 2.0;
      double d = rel < 2 ? ax - bx : ay - by;
      if (!(fabs(d) > 2)) return 0;
      int holds = rel == 0 ? ax < bx : rel == 1 ? ax > bx : rel == 2 ? ay < by : ay > by;
      *label = holds ? 0 : 2;
      refs[0] = a < b ? a : b;
      refs[1] = a < b ? b : a;
      *n_refs = 2;
      return 1;
    }
    static const char *props[] = {"made of wood", "made of metal", "heavy", "warm", "new", "old"};
    char prop[64] = "";
    for (int i = 4; i < nw; i++) {
      if (i > 4) strcat(prop, " ");
      if (strlen(prop) + strlen(w[i]) > 40) return 0;
      strcat(prop, w[i]);
    }
    if (lookup(prop, props, 6) < 0 || na > 1) return 0;
    *label = na == 1 ? 1 : 2;
    if (na == 1) refs[(*n_refs)++] = a;
    return 1;
  }
  return 0;
}

static void hypothesis_labels_recomputed(void) {
  int label_count[3] = {0}, tpl_count[VL_TPL_N][3] = {{0}}, total = 0;
  for (int64_t n = 0; n < N_SCENES; n++) {
    vl_shapes_scene *sc = gen(5, n, 3, 0);
    REQUIRE(sc);
    REQUIRE(sc->n_hypotheses == 3);
    for (int j = 0; j < 3; j++) {
      const vl_shapes_hypothesis *h = &sc->hypotheses[j];
      int label = -1, refs[8], nr = 0;
      int ok = recompute(sc, h->text, &label, refs, &nr);
      CHECK(ok);
      if (!ok) {
        printf("  unparsed or not emittable: '%s' (caption '%s')\n", h->text, sc->caption);
        continue;
      }
      CHECK((int)h->label == label);
      CHECK(h->n_referents == nr);
      for (int r = 0; r < nr && r < h->n_referents; r++)
        CHECK(h->referents[r] == refs[r]);
      label_count[h->label]++;
      tpl_count[h->tpl][h->label]++;
      total++;
      for (int u = 0; u < j; u++)
        CHECK(strcmp(h->text, sc->hypotheses[u].text) != 0);
    }
    vl_shapes_free(sc);
  }
  /* balanced: each label close to a third */
  for (int l = 0; l < 3; l++)
    CHECK_NEAR(label_count[l] / (double)total, 1 / 3.0, 0.02);
  /* every template produced its labels */
  CHECK(tpl_count[VL_TPL_EXISTS][0] && tpl_count[VL_TPL_EXISTS][2]);
  CHECK(tpl_count[VL_TPL_EXISTS_SIZED][0] && tpl_count[VL_TPL_EXISTS_SIZED][2]);
  CHECK(tpl_count[VL_TPL_COUNT][0] && tpl_count[VL_TPL_COUNT][2]);
  CHECK(tpl_count[VL_TPL_RELATION][0] && tpl_count[VL_TPL_RELATION][2]);
  CHECK(tpl_count[VL_TPL_UNKNOWABLE][1] && tpl_count[VL_TPL_UNKNOWABLE][2]);
  CHECK(!tpl_count[VL_TPL_EXISTS][1] && !tpl_count[VL_TPL_COUNT][1] &&
        !tpl_count[VL_TPL_RELATION][1]);
}

/* Every filler combination through the public builder: emitted exactly when
 * the spec's conditions hold, with the recomputed label. */
static void all_fillers_follow_emission_rules(void) {
  long checked = 0, refused = 0;
  for (int64_t n = 0; n < 150; n++) {
    vl_shapes_scene *sc = gen(9, n, 0, 0);
    REQUIRE(sc);
    for (int t = 0; t < VL_TPL_N; t++)
      for (int c = 0; c < 4; c++)
        for (int s = 0; s < 3; s++)
          for (int x = 0; x < 6; x++)
            for (int c2 = 0; c2 < (t == VL_TPL_RELATION ? 4 : 1); c2++)
              for (int s2 = 0; s2 < (t == VL_TPL_RELATION ? 3 : 1); s2++) {
                int size = x % 2, number = 2 + x % 3, word = t == VL_TPL_RELATION ? x % 4 : x;
                if ((t == VL_TPL_RELATION && x >= 4) || (t == VL_TPL_COUNT && x >= 3) ||
                    (t == VL_TPL_EXISTS_SIZED && x >= 2) || (t == VL_TPL_EXISTS && x >= 1))
                  continue;
                vl_shapes_hypothesis h;
                int st = vl_shapes_make_hypothesis(sc, (vl_template)t, (vl_color)c, (vl_shape)s,
                                                   (vl_size)size, number, word, (vl_color)c2,
                                                   (vl_shape)s2, &h);
                int label, refs[8], nr;
                int emit = 0;
                if (st == VL_OK) {
                  emit = recompute(sc, h.text, &label, refs, &nr);
                  CHECK(emit);
                  if (emit) {
                    CHECK((int)h.label == label && h.n_referents == nr);
                    for (int r = 0; r < nr && r < h.n_referents; r++)
                      CHECK(h.referents[r] == refs[r]);
                  }
                  checked++;
                } else {
                  /* the same text, built here, must not be emittable */
                  char txt[128];
                  if (t == VL_TPL_RELATION) {
                    static const char *rel[] = {"left of", "right of", "above", "below"};
                    snprintf(txt, sizeof txt, "the %s %s is %s the %s %s.", colors[c], shapes[s],
                             rel[word], colors[c2], shapes[s2]);
                  } else {
                    static const char *props[] = {"made of wood", "made of metal", "heavy",
                                                  "warm",         "new",           "old"};
                    snprintf(txt, sizeof txt, "the %s %s is %s.", colors[c], shapes[s],
                             t == VL_TPL_UNKNOWABLE ? props[word] : "?");
                  }
                  CHECK(t == VL_TPL_RELATION || t == VL_TPL_UNKNOWABLE);
                  CHECK(!recompute(sc, txt, &label, refs, &nr));
                  refused++;
                }
              }
    vl_shapes_free(sc);
  }
  CHECK(checked > 10000 && refused > 1000);
}

static void determinism(void) {
  vl_shapes_scene *a = gen(123, 17, 5, 0), *b = gen(123, 17, 5, 0), *c = gen(124, 17, 5, 0),
                  *d = gen(123, 18, 5, 0), *e = gen(123, 17, 0, 0);
  REQUIRE(a && b && c && d && e);
  CHECK(!memcmp(a->image->pixels, b->image->pixels, W * W * 3));
  CHECK(!memcmp(a->mask->pixels, b->mask->pixels, W * W));
  CHECK(!strcmp(a->caption, b->caption));
  for (int j = 0; j < 5; j++) {
    CHECK(!strcmp(a->hypotheses[j].text, b->hypotheses[j].text));
    CHECK(a->hypotheses[j].label == b->hypotheses[j].label);
  }
  CHECK(memcmp(a->image->pixels, c->image->pixels, W * W * 3) != 0);
  CHECK(memcmp(a->image->pixels, d->image->pixels, W * W * 3) != 0);
  /* the number of hypotheses does not change the picture */
  CHECK(!memcmp(a->image->pixels, e->image->pixels, W * W * 3));
  CHECK(!strcmp(a->caption, e->caption) && e->n_hypotheses == 0);
  vl_shapes_free(a);
  vl_shapes_free(b);
  vl_shapes_free(c);
  vl_shapes_free(d);
  vl_shapes_free(e);
}

static void curriculum_and_bad_options(void) {
  vl_shapes_options o = vl_shapes_default_options();
  o.max_objects = 1;
  for (int64_t n = 0; n < 50; n++) {
    vl_shapes_scene *sc = vl_shapes_generate(2, n, &o);
    REQUIRE(sc);
    CHECK(sc->n_objects == 1);
    vl_shapes_free(sc);
  }
  o.min_objects = 4;
  o.max_objects = 4;
  for (int64_t n = 0; n < 50; n++) {
    vl_shapes_scene *sc = vl_shapes_generate(2, n, &o);
    REQUIRE(sc);
    CHECK(sc->n_objects == 4);
    vl_shapes_free(sc);
  }
  o.max_objects = 5;
  CHECK(vl_shapes_generate(2, 0, &o) == NULL && vl_last_error_code() == VL_ERR_INVALID);
  o = vl_shapes_default_options();
  o.min_objects = 0;
  CHECK(vl_shapes_generate(2, 0, &o) == NULL && strstr(vl_last_error(), "object count"));
  o = vl_shapes_default_options();
  o.n_hypotheses = -1;
  CHECK(vl_shapes_generate(2, 0, &o) == NULL);
  CHECK(vl_shapes_generate(2, -1, NULL) == NULL && strstr(vl_last_error(), "negative"));
}

/* Template weights (training data only): all equal is the spec's pick,
 * bit for bit; a heavy relation weight raises the share of relations; a
 * zero weight is never picked while the label has another template; labels
 * stay balanced; negative weights are refused. */
static void template_weights(void) {
  vl_shapes_options u = vl_shapes_default_options(), d = u, r = u, z = u;
  u.n_hypotheses = d.n_hypotheses = r.n_hypotheses = z.n_hypotheses = 6;
  for (int t = 0; t < VL_TPL_N; t++) {
    u.template_weights[t] = 2.5; /* equal, so uniform */
    r.template_weights[t] = t == VL_TPL_RELATION ? 20 : 1;
    z.template_weights[t] = t == VL_TPL_EXISTS_SIZED ? 0 : 1;
  }
  int rel_d = 0, rel_r = 0, sized_z = 0, total = 0, same = 1, labels_r[VL_LABEL_COUNT] = {0};
  for (int64_t n = 0; n < 300; n++) {
    vl_shapes_scene *a = vl_shapes_generate(5, n, &d), *b = vl_shapes_generate(5, n, &u);
    vl_shapes_scene *c = vl_shapes_generate(5, n, &r), *e = vl_shapes_generate(5, n, &z);
    REQUIRE(a && b && c && e);
    for (int j = 0; j < 6; j++) {
      same &= !strcmp(a->hypotheses[j].text, b->hypotheses[j].text);
      rel_d += a->hypotheses[j].tpl == VL_TPL_RELATION;
      rel_r += c->hypotheses[j].tpl == VL_TPL_RELATION;
      sized_z += e->hypotheses[j].tpl == VL_TPL_EXISTS_SIZED;
      labels_r[c->hypotheses[j].label]++;
      total++;
    }
    CHECK(!strcmp(a->caption, c->caption));
    vl_shapes_free(a);
    vl_shapes_free(b);
    vl_shapes_free(c);
    vl_shapes_free(e);
  }
  printf("  relations among %d hypotheses: %d (uniform), %d (weight 20)\n", total, rel_d, rel_r);
  CHECK(same);
  CHECK(rel_r > 2 * rel_d && rel_d > 0);
  CHECK(sized_z == 0);
  for (int l = 0; l < VL_LABEL_COUNT; l++) /* labels stay balanced */
    CHECK(labels_r[l] > total / 4);
  z.template_weights[VL_TPL_COUNT] = -1;
  CHECK(vl_shapes_generate(5, 0, &z) == NULL && strstr(vl_last_error(), "template weight"));
}

static void manifest_and_files(void) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/set/sub", test_tmpdir());
  vl_shapes_options o = vl_shapes_default_options();
  o.n_hypotheses = 4;
  vl_log_set_quiet(1);
  int st = vl_shapes_write_set(dir, 77, 5, &o);
  vl_log_set_quiet(0);
  REQUIRE(st == VL_OK);
  char path[600];
  snprintf(path, sizeof path, "%s/manifest.jsonl", dir);
  size_t len;
  char *text = (char *)test_read_file(path, &len);
  REQUIRE(text);
  int lines = 0;
  static const char *keys[] = {"image",   "mask",    "width",     "height",
                               "objects", "caption", "hypotheses"};
  for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1, lines++) {
    *nl = 0;
    cJSON *j = cJSON_Parse(line);
    REQUIRE(j);
    int ki = 0;
    for (cJSON *it = j->child; it; it = it->next, ki++)
      CHECK(ki < 7 && !strcmp(it->string, keys[ki]));
    CHECK(ki == 7);
    char want[64];
    snprintf(want, sizeof want, "scene_%05d.png", lines + 1);
    CHECK(!strcmp(cJSON_GetObjectItem(j, "image")->valuestring, want));
    snprintf(want, sizeof want, "scene_%05d_mask.png", lines + 1);
    CHECK(!strcmp(cJSON_GetObjectItem(j, "mask")->valuestring, want));
    CHECK(cJSON_GetObjectItem(j, "width")->valueint == 96);
    CHECK(cJSON_GetObjectItem(j, "height")->valueint == 96);
    vl_shapes_scene *sc = vl_shapes_generate(77, lines, &o);
    REQUIRE(sc);
    CHECK(!strcmp(cJSON_GetObjectItem(j, "caption")->valuestring, sc->caption));
    cJSON *objs = cJSON_GetObjectItem(j, "objects");
    CHECK(cJSON_GetArraySize(objs) == sc->n_objects);
    for (int i = 0; i < sc->n_objects && i < cJSON_GetArraySize(objs); i++) {
      cJSON *jo = cJSON_GetArrayItem(objs, i), *box = cJSON_GetObjectItem(jo, "box");
      const vl_shapes_object *ob = &sc->objects[i];
      CHECK(!strcmp(jo->child->string, "shape") && !strcmp(jo->child->next->string, "color") &&
            !strcmp(jo->child->next->next->string, "size") &&
            !strcmp(jo->child->next->next->next->string, "box"));
      CHECK(!strcmp(cJSON_GetObjectItem(jo, "shape")->valuestring, shapes[ob->shape]));
      CHECK(!strcmp(cJSON_GetObjectItem(jo, "color")->valuestring, colors[ob->color]));
      CHECK(!strcmp(cJSON_GetObjectItem(jo, "size")->valuestring, sizes[ob->size]));
      CHECK(cJSON_GetArraySize(box) == 4);
      CHECK(cJSON_GetArrayItem(box, 0)->valueint == ob->x0 &&
            cJSON_GetArrayItem(box, 1)->valueint == ob->y0 &&
            cJSON_GetArrayItem(box, 2)->valueint == ob->x0 + ob->s &&
            cJSON_GetArrayItem(box, 3)->valueint == ob->y0 + ob->s);
    }
    cJSON *hyps = cJSON_GetObjectItem(j, "hypotheses");
    CHECK(cJSON_GetArraySize(hyps) == 4);
    for (int h = 0; h < 4 && h < cJSON_GetArraySize(hyps); h++) {
      cJSON *jh = cJSON_GetArrayItem(hyps, h), *refs = cJSON_GetObjectItem(jh, "referents");
      CHECK(!strcmp(jh->child->string, "text") && !strcmp(jh->child->next->string, "label") &&
            !strcmp(jh->child->next->next->string, "referents"));
      CHECK(!strcmp(cJSON_GetObjectItem(jh, "text")->valuestring, sc->hypotheses[h].text));
      CHECK(
          !strcmp(cJSON_GetObjectItem(jh, "label")->valuestring, labels[sc->hypotheses[h].label]));
      CHECK(cJSON_IsArray(refs) && cJSON_GetArraySize(refs) == sc->hypotheses[h].n_referents);
    }
    /* the PNGs decode back to the scene */
    int w, hgt, ch;
    snprintf(path, sizeof path, "%s/scene_%05d.png", dir, lines + 1);
    unsigned char *px = stbi_load(path, &w, &hgt, &ch, 0);
    REQUIRE(px);
    CHECK(w == 96 && hgt == 96 && ch == 3 && !memcmp(px, sc->image->pixels, W * W * 3));
    stbi_image_free(px);
    snprintf(path, sizeof path, "%s/scene_%05d_mask.png", dir, lines + 1);
    px = stbi_load(path, &w, &hgt, &ch, 0);
    REQUIRE(px);
    CHECK(w == 96 && hgt == 96 && ch == 1 && !memcmp(px, sc->mask->pixels, W * W));
    stbi_image_free(px);
    vl_shapes_free(sc);
    cJSON_Delete(j);
  }
  CHECK(lines == 5);
  /* writing the same set again gives the same bytes */
  char dir2[512];
  snprintf(dir2, sizeof dir2, "%s/set2", test_tmpdir());
  vl_log_set_quiet(1);
  vl_threads_set(1); /* and the thread count does not matter */
  REQUIRE(vl_shapes_write_set(dir2, 77, 5, &o) == VL_OK);
  vl_threads_set(0);
  vl_log_set_quiet(0);
  static const char *names[] = {"manifest.jsonl", "scene_00003.png", "scene_00005_mask.png"};
  for (int i = 0; i < 3; i++) {
    size_t l1, l2;
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    unsigned char *f1 = test_read_file(path, &l1);
    snprintf(path, sizeof path, "%s/%s", dir2, names[i]);
    unsigned char *f2 = test_read_file(path, &l2);
    CHECK(f1 && f2 && l1 == l2 && !memcmp(f1, f2, l1));
    free(f1);
    free(f2);
  }
  free(text);
}

static void write_set_errors(void) {
  CHECK(vl_shapes_write_set(test_tmpdir(), 1, 0, NULL) == VL_ERR_INVALID);
  CHECK(strstr(vl_last_error(), "positive") != NULL);
  CHECK(vl_shapes_write_set(test_tmpdir(), 1, -3, NULL) == VL_ERR_INVALID);
  /* a folder below a regular file cannot be created, even as root */
  char file[512], dir[600];
  snprintf(file, sizeof file, "%s/plainfile", test_tmpdir());
  REQUIRE(test_write_file(file, "x", 1) == 0);
  snprintf(dir, sizeof dir, "%s/sub", file);
  CHECK(vl_shapes_write_set(dir, 1, 2, NULL) == VL_ERR_IO);
  CHECK(strstr(vl_last_error(), dir) != NULL);
  CHECK(vl_shapes_write_set(file, 1, 2, NULL) == VL_ERR_IO);
  CHECK(strstr(vl_last_error(), "not a folder") != NULL);
  /* a scene file that cannot be written (a folder is in its way) */
  char bdir[600], bfile[700];
  snprintf(bdir, sizeof bdir, "%s/blocked", test_tmpdir());
  REQUIRE(mkdir(bdir, 0777) == 0);
  snprintf(bfile, sizeof bfile, "%s/scene_00002.png", bdir);
  REQUIRE(mkdir(bfile, 0777) == 0);
  vl_log_set_quiet(1);
  CHECK(vl_shapes_write_set(bdir, 1, 3, NULL) == VL_ERR_IO);
  vl_log_set_quiet(0);
  CHECK(strstr(vl_last_error(), bfile) != NULL);
  /* bad options are refused before anything is written */
  vl_shapes_options o = vl_shapes_default_options();
  o.max_objects = 9;
  snprintf(dir, sizeof dir, "%s/never", test_tmpdir());
  CHECK(vl_shapes_write_set(dir, 1, 3, &o) == VL_ERR_INVALID);
  struct stat stt;
  CHECK(stat(dir, &stt) != 0);
}

int main(void) {
  RUN(rng_ranges_and_moments);
  RUN(shape_pixels_match_known_cases);
  RUN(canvas_objects_and_mask);
  RUN(noise_statistics);
  RUN(order_and_caption);
  RUN(hypotheses_on_hand_made_scene);
  RUN(hypothesis_labels_recomputed);
  RUN(all_fillers_follow_emission_rules);
  RUN(determinism);
  RUN(curriculum_and_bad_options);
  RUN(template_weights);
  RUN(manifest_and_files);
  RUN(write_set_errors);
  return test_summary();
}
