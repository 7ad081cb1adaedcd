/* The Shapes World description grammar: checked by parsing the text back
 * into claims (objects named, regions, relations, counts) and verifying each
 * claim against the scene with the rules recomputed here, independently of
 * src/io/shapes_describe.c; the Chinese grammar the same way, with its word
 * table written out here. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/shapes_describe.h"
#include "test.h"
#include "text/metrics.h"
#include "text/shapes_enrich.h"

#define N_SCENES 300
#define MAXW 256

static const char *const SIZES[] = {"small", "large"};
static const char *const COLORS[] = {"red", "green", "blue", "yellow"};
static const char *const SHAPES[] = {"circle", "square", "triangle"};
static const char *const NUMS[] = {"a", "two", "three", "four"};

typedef struct {
  char w[MAXW][24];
  int end[MAXW]; /* word ends a sentence */
  int n;
} words;

static void split(const char *t, words *ws) {
  ws->n = 0;
  for (const char *p = t; *p;) {
    while (*p && !isalpha((unsigned char)*p))
      p++;
    if (!*p) break;
    int k = 0;
    while (isalpha((unsigned char)*p) && k < 23)
      ws->w[ws->n][k++] = (char)tolower((unsigned char)*p++);
    ws->w[ws->n][k] = 0;
    ws->end[ws->n] = *p == '.';
    if (ws->n < MAXW - 1) ws->n++;
  }
}

static int idx(const char *const *list, int n, const char *w) {
  for (int i = 0; i < n; i++)
    if (!strcmp(list[i], w)) return i;
  return -1;
}

static int is(const words *ws, int i, const char *w) { return i < ws->n && !strcmp(ws->w[i], w); }

/* Independent region rule: thirds of 96 from the box centre x0 + s/2. */
static int region_of(const vl_shapes_object *o) {
  double cx = o->x0 + o->s / 2.0, cy = o->y0 + o->s / 2.0;
  int col = cx < 32 ? 0 : cx < 64 ? 1 : 2, row = cy < 32 ? 0 : cy < 64 ? 1 : 2;
  return row * 3 + col;
}

/* Region phrase at word i -> region index (row*3+col) and its length, or -1. */
static int parse_region(const words *ws, int i, int *len) {
  static const char *const ph[9] = {"in the top left corner",
                                    "at the top",
                                    "in the top right corner",
                                    "on the left",
                                    "in the centre",
                                    "on the right",
                                    "in the bottom left corner",
                                    "at the bottom",
                                    "in the bottom right corner"};
  int best = -1, bl = 0;
  for (int r = 0; r < 9; r++) {
    words p;
    split(ph[r], &p);
    int ok = 1;
    for (int j = 0; j < p.n && ok; j++)
      ok = is(ws, i + j, p.w[j]);
    if (ok && p.n > bl) {
      best = r;
      bl = p.n;
    }
  }
  *len = bl;
  return best;
}

/* "[size] colour shape" at word i: matching objects as a bitmask (0: no
 * name there), *len words. */
static int parse_name(const vl_shapes_scene *sc, const words *ws, int i, int *len) {
  int sz = i < ws->n ? idx(SIZES, 2, ws->w[i]) : -1, o = sz >= 0;
  if (i + o + 1 >= ws->n) return 0;
  int c = idx(COLORS, 4, ws->w[i + o]), s = idx(SHAPES, 3, ws->w[i + o + 1]);
  if (c < 0 || s < 0) return 0;
  int m = 0;
  for (int k = 0; k < sc->n_objects; k++) {
    const vl_shapes_object *ob = &sc->objects[k];
    if ((int)ob->color == c && (int)ob->shape == s && (sz < 0 || (int)ob->size == sz)) m |= 1 << k;
  }
  *len = o + 2;
  return m ? m : -1; /* -1: a name that fits no object */
}

static int popcount(int m) {
  int n = 0;
  for (; m; m &= m - 1)
    n++;
  return n;
}

/* Checks one description of scene sc; scene_mode: regions/relations too. */
static void check_text(const vl_shapes_scene *sc, const char *text, int scene_mode) {
  words ws;
  split(text, &ws);
  int sentences = 0;
  for (const char *p = text; *p; p++)
    sentences += *p == '.';
  CHECK(sentences >= 2 && sentences <= 4);
  CHECK(text[strlen(text) - 1] == '.');
  CHECK(isupper((unsigned char)text[0]));
  int present_c[4] = {0}, present_s[3] = {0}, n_shape[3] = {0};
  for (int k = 0; k < sc->n_objects; k++) {
    present_c[sc->objects[k].color] = 1;
    present_s[sc->objects[k].shape] = 1;
    n_shape[sc->objects[k].shape]++;
  }
  /* every object named in full; no word for an absent colour or shape */
  for (int k = 0; k < sc->n_objects; k++) {
    char full[64];
    const vl_shapes_object *o = &sc->objects[k];
    snprintf(full, sizeof full, "%s %s %s", SIZES[o->size], COLORS[o->color], SHAPES[o->shape]);
    CHECK(strstr(text, full) != NULL);
  }
  int placed[VL_SHAPES_MAX_OBJECTS] = {0}, n_rel = 0;
  for (int i = 0; i < ws.n; i++) {
    int c = idx(COLORS, 4, ws.w[i]);
    if (c >= 0) CHECK(present_c[c]);
    char sing[24];
    snprintf(sing, sizeof sing, "%s", ws.w[i]);
    size_t l = strlen(sing);
    int plural = l > 1 && sing[l - 1] == 's' && idx(SHAPES, 3, sing) < 0;
    if (plural) sing[l - 1] = 0;
    int s = idx(SHAPES, 3, sing);
    if (s >= 0) CHECK(present_s[s]);
    if (s >= 0 && i > 0 && (plural || !strcmp(ws.w[i - 1], "a"))) {
      /* count phrase: "two circles", "a square" inside the overview list */
      int num = idx(NUMS, 4, ws.w[i - 1]);
      if (num >= 1) CHECK(n_shape[s] == num + 1);
      if (plural) CHECK(num >= 1);
      if (!plural && num == 0) CHECK(n_shape[s] == 1);
    }
    if (i > 0 && idx(SIZES, 2, ws.w[i - 1]) >= 0) continue; /* inside a longer name */
    int nl, m = parse_name(sc, &ws, i, &nl);
    if (m == -1) {
      printf("  name at word %d fits no object: %s\n", i, text);
      CHECK(0);
    }
    if (m <= 0) continue;
    /* "NAME verb REGION" */
    int rl, r = -1;
    if (i + nl < ws.n &&
        idx((const char *const[]){"sits", "is", "lies", "appears"}, 4, ws.w[i + nl]) >= 0)
      r = parse_region(&ws, i + nl + 1, &rl);
    if (r >= 0) {
      CHECK(scene_mode);
      int ok = 0;
      for (int k = 0; k < sc->n_objects; k++)
        if ((m >> k & 1) && !placed[k] && region_of(&sc->objects[k]) == r) {
          placed[k] = 1;
          ok = 1;
          break;
        }
      if (!ok) printf("  wrong region at word %d: %s\n", i, text);
      CHECK(ok);
    }
    /* "the NAME is REL the NAME" */
    if (i > 0 && is(&ws, i - 1, "the") && is(&ws, i + nl, "is")) {
      int j = i + nl + 1, v = 0, h = 0;
      if (is(&ws, j, "above") || is(&ws, j, "below")) v = is(&ws, j++, "above") ? -1 : 1;
      if (v && is(&ws, j, "and")) j++;
      if (is(&ws, j, "to") && is(&ws, j + 1, "the") &&
          (is(&ws, j + 2, "left") || is(&ws, j + 2, "right")) && is(&ws, j + 3, "of")) {
        h = is(&ws, j + 2, "left") ? -1 : 1;
        j += 4;
      }
      int bl, mb = (v || h) && is(&ws, j, "the") ? parse_name(sc, &ws, j + 1, &bl) : 0;
      if (v || h) {
        CHECK(scene_mode);
        REQUIRE(mb > 0);
        CHECK(popcount(m) == 1 && popcount(mb) == 1); /* names in relations are unique */
        const vl_shapes_object *a = &sc->objects[__builtin_ctz((unsigned)m)],
                               *b = &sc->objects[__builtin_ctz((unsigned)mb)];
        double ax = a->x0 + a->s / 2.0, ay = a->y0 + a->s / 2.0;
        double bx = b->x0 + b->s / 2.0, by = b->y0 + b->s / 2.0;
        if (h < 0) CHECK(bx - ax > 2);
        if (h > 0) CHECK(ax - bx > 2);
        if (v < 0) CHECK(by - ay > 2);
        if (v > 0) CHECK(ay - by > 2);
        n_rel++;
      }
    }
  }
  if (scene_mode)
    for (int k = 0; k < sc->n_objects; k++)
      CHECK(placed[k]); /* every object's region stated (and right) */
  else
    CHECK(n_rel == 0);
}

static void test_scene_mode(void) {
  vl_shapes_options o = vl_shapes_default_options();
  o.n_hypotheses = 0;
  int with_rel = 0;
  for (int i = 0; i < N_SCENES; i++) {
    vl_shapes_scene *sc = vl_shapes_generate(101, i, &o);
    REQUIRE(sc);
    char *t = vl_shapes_describe(sc, VL_DESCRIBE_SCENE, (uint64_t)i);
    REQUIRE(t);
    int f0 = test_current_failed;
    check_text(sc, t, 1);
    if (!f0 && test_current_failed) printf("  scene %d: %s\n", i, t);
    with_rel += strstr(t, " is to the ") || strstr(t, " is above") || strstr(t, " is below");
    free(t);
    vl_shapes_free(sc);
  }
  CHECK(with_rel > N_SCENES / 2); /* relations are actually stated */
}

/* sc upside down: the same objects in the same left-to-right order. */
static vl_shapes_scene flipped_vertically(const vl_shapes_scene *sc) {
  vl_shapes_scene moved = *sc;
  for (int k = 0; k < moved.n_objects; k++) {
    moved.objects[k].y0 = 90 - moved.objects[k].y0 - moved.objects[k].s;
    moved.objects[k].cy = moved.objects[k].y0 + moved.objects[k].s / 2.0;
  }
  return moved;
}

/* The first scene of seed 5 with at least three objects (no hypotheses). */
static vl_shapes_scene *three_object_scene(void) {
  vl_shapes_options o = vl_shapes_default_options();
  o.n_hypotheses = 0;
  vl_shapes_scene *sc = NULL;
  for (int i = 0; !sc || sc->n_objects < 3; i++) {
    vl_shapes_free(sc);
    if (!(sc = vl_shapes_generate(5, i, &o))) return NULL;
  }
  return sc;
}

static void test_caption_mode(void) {
  vl_shapes_options o = vl_shapes_default_options();
  o.n_hypotheses = 0;
  for (int i = 0; i < N_SCENES; i++) {
    vl_shapes_scene *sc = vl_shapes_generate(202, i, &o);
    REQUIRE(sc);
    char *t = vl_shapes_describe(sc, VL_DESCRIBE_CAPTION, (uint64_t)i * 7);
    REQUIRE(t);
    int f0 = test_current_failed;
    check_text(sc, t, 0);
    /* caption order: the objects appear in the text in caption order */
    const char *p = t;
    if (sc->n_objects > 1) {
      for (int k = 0; k < sc->n_objects && p; k++) {
        char full[64];
        const vl_shapes_object *ob = &sc->objects[k];
        snprintf(full, sizeof full, "%s %s %s", SIZES[ob->size], COLORS[ob->color],
                 SHAPES[ob->shape]);
        p = strstr(strstr(t, "left to right"), full);
        if (p) p += strlen(full);
      }
      CHECK(p != NULL);
    }
    /* only the caption matters: moving objects does not change the text */
    vl_shapes_scene moved = flipped_vertically(sc);
    char *t2 = vl_shapes_describe(&moved, VL_DESCRIBE_CAPTION, (uint64_t)i * 7);
    REQUIRE(t2);
    CHECK(!strcmp(t, t2));
    if (!f0 && test_current_failed) printf("  scene %d: %s\n", i, t);
    free(t);
    free(t2);
    vl_shapes_free(sc);
  }
}

static void test_determinism_and_variety(void) {
  vl_shapes_scene *sc = three_object_scene();
  REQUIRE(sc);
  char *a = vl_shapes_describe(sc, VL_DESCRIBE_SCENE, 42);
  char *b = vl_shapes_describe(sc, VL_DESCRIBE_SCENE, 42);
  REQUIRE(a && b);
  CHECK(!strcmp(a, b));
  int differ = 0;
  for (uint64_t s = 0; s < 20; s++) {
    char *c = vl_shapes_describe(sc, VL_DESCRIBE_SCENE, s);
    REQUIRE(c);
    differ += strcmp(a, c) != 0;
    free(c);
  }
  CHECK(differ >= 10); /* seeds pick different templates */
  free(a);
  free(b);
  vl_shapes_free(sc);
}

static void test_regions_exact(void) {
  vl_shapes_object o = {0};
  o.s = 12;
  int want[][3] = {{0, 0, VL_REGION_TOP_LEFT},   {26, 0, VL_REGION_TOP},
                   {25, 25, VL_REGION_TOP_LEFT}, {26, 26, VL_REGION_CENTRE},
                   {58, 40, VL_REGION_RIGHT},    {57, 58, VL_REGION_BOTTOM}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    o.x0 = want[i][0];
    o.y0 = want[i][1];
    o.cx = o.x0 + 6.0;
    o.cy = o.y0 + 6.0;
    CHECK((int)vl_shapes_region(&o) == want[i][2]);
  }
  CHECK(!strcmp(vl_region_phrase(VL_REGION_BOTTOM_RIGHT), "in the bottom right corner"));
}

static void test_bad_input(void) {
  CHECK(vl_shapes_describe(NULL, VL_DESCRIBE_SCENE, 0) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_INVALID);
  vl_shapes_scene sc;
  memset(&sc, 0, sizeof sc);
  CHECK(vl_shapes_describe(&sc, VL_DESCRIBE_SCENE, 0) == NULL);
  sc.n_objects = 1;
  sc.objects[0].color = (vl_color)9;
  CHECK(vl_shapes_describe(&sc, VL_DESCRIBE_SCENE, 0) == NULL);
  CHECK(strstr(vl_last_error(), "object 0") != NULL);
  sc.objects[0].color = VL_COLOR_RED;
  CHECK(vl_shapes_describe(&sc, (vl_describe_mode)5, 0) == NULL);
}

/* LLM training pairs: the prompt carries the caption in the visual block,
 * the target is a caption-mode description of that scene (all claims
 * checked as above), the length is inside the range the prompt asks for,
 * and pair (seed, index) is reproducible. */
static void test_enrich_pairs(void) {
  vl_shapes_options so = vl_shapes_default_options();
  so.n_hypotheses = 0;
  for (int i = 0; i < 60; i++) {
    char *p, *t, *c, *p2, *t2;
    REQUIRE(vl_shapes_enrich_pair(77, i, NULL, &p, &t, &c) == 0);
    REQUIRE(vl_shapes_enrich_pair(77, i, NULL, &p2, &t2, NULL) == 0);
    CHECK(!strcmp(p, p2) && !strcmp(t, t2));
    vl_shapes_scene *sc = vl_shapes_generate(77, i, &so);
    REQUIRE(sc);
    CHECK(!strcmp(c, sc->caption));
    char line[256];
    snprintf(line, sizeof line, "VISION_START\nCaption: %s\n", sc->caption);
    CHECK(strstr(p, line) != NULL);
    CHECK(strstr(p, "between 15 and 80") != NULL);
    check_text(sc, t, 0);
    size_t nw = vl_metrics_length(t, 0);
    CHECK(nw >= VL_SHAPES_ENRICH_MIN_WORDS && nw <= VL_SHAPES_ENRICH_MAX_WORDS);
    free(p);
    free(t);
    free(c);
    free(p2);
    free(t2);
    vl_shapes_free(sc);
  }
  size_t len;
  char *corpus = vl_shapes_enrich_corpus(77, 3, &len);
  REQUIRE(corpus);
  CHECK(strlen(corpus) == len);
  CHECK(strstr(corpus, "<|im_start|>assistant\n<think>\n\n</think>\n\n") != NULL);
  free(corpus);
  CHECK(vl_shapes_enrich_corpus(77, 0, &len) == NULL);
}

/* ---- Chinese ---------------------------------------------------------- */

/* The zh word table, written out here independently of the grammar. */
static const char *const ZH_SIZES[] = {"小", "大"};
static const char *const ZH_COLORS[] = {"红色", "绿色", "蓝色", "黄色"};
static const char *const ZH_SHAPES[] = {"圆形", "正方形", "三角形"};
static const char *const ZH_NUMS[] = {"零", "一", "两", "三", "四"};
static const char *const ZH_REGIONS[] = {"左上角",   "上方中部", "右上角",   "左侧中部", "正中央",
                                         "右侧中部", "左下角",   "下方中部", "右下角"};

static int count_sub(const char *t, const char *w) {
  int n = 0;
  for (const char *p = strstr(t, w); p; p = strstr(p + strlen(w), w))
    n++;
  return n;
}

/* "大的红色圆形" of object k */
static void zh_full(const vl_shapes_object *o, char *out, size_t n) {
  snprintf(out, n, "%s的%s%s", ZH_SIZES[o->size], ZH_COLORS[o->color], ZH_SHAPES[o->shape]);
}

/* Objects a relation name ("红色圆形" or "大的红色圆形") fits, as a bitmask. */
static int zh_name_objects(const vl_shapes_scene *sc, const char *name, size_t len) {
  int m = 0;
  for (int k = 0; k < sc->n_objects; k++) {
    char full[64], csh[64];
    const vl_shapes_object *o = &sc->objects[k];
    zh_full(o, full, sizeof full);
    snprintf(csh, sizeof csh, "%s%s", ZH_COLORS[o->color], ZH_SHAPES[o->shape]);
    if ((strlen(full) == len && !strncmp(name, full, len)) ||
        (strlen(csh) == len && !strncmp(name, csh, len)))
      m |= 1 << k;
  }
  return m;
}

/* One relation clause "A在B的REL": A, B name exactly one object each and
 * REL holds by the spec's 2 px rule (computed here from the boxes). */
static int zh_relations_checked;

static void check_zh_relation(const vl_shapes_scene *sc, const char *c, size_t len) {
  zh_relations_checked++;
  static const char *const rel[] = {"左上方", "右上方", "左下方", "右下方",
                                    "上方",   "下方",   "左边",   "右边"};
  static const int hv[][2] = {{-1, -1}, {1, -1}, {-1, 1}, {1, 1}, {0, -1}, {0, 1}, {-1, 0}, {1, 0}};
  const char *at = strstr(c, "在");
  REQUIRE(at && (size_t)(at - c) < len);
  int r = -1;
  size_t rl = 0;
  for (int i = 0; i < 8 && r < 0; i++) {
    rl = strlen(rel[i]);
    if (len > rl + 3 && !strncmp(c + len - rl, rel[i], rl) && !strncmp(c + len - rl - 3, "的", 3))
      r = i;
  }
  REQUIRE(r >= 0);
  int a = zh_name_objects(sc, c, (size_t)(at - c));
  const char *b0 = at + 3;
  int b = zh_name_objects(sc, b0, (size_t)(c + len - rl - 3 - b0));
  REQUIRE(popcount(a) == 1 && popcount(b) == 1 && a != b);
  const vl_shapes_object *p = &sc->objects[__builtin_ctz((unsigned)a)];
  const vl_shapes_object *q = &sc->objects[__builtin_ctz((unsigned)b)];
  double dx = (p->x0 + p->s / 2.0) - (q->x0 + q->s / 2.0);
  double dy = (p->y0 + p->s / 2.0) - (q->y0 + q->s / 2.0);
  if (hv[r][0]) CHECK(hv[r][0] < 0 ? dx < -2 : dx > 2);
  if (hv[r][1]) CHECK(hv[r][1] < 0 ? dy < -2 : dy > 2);
}

/* Checks one Chinese description of sc: Chinese only, 2-4 sentences,
 * every object introduced as "一个<size>的<colour><shape>", no colour or
 * shape the scene lacks, the counts; scene mode: every object's region and
 * every relation right. */
static void check_zh(const vl_shapes_scene *sc, const char *t, int scene_mode) {
  for (const char *p = t; *p; p++)
    CHECK(!isalpha((unsigned char)*p) && *p != '|' && *p != '\n' && *p != ' ');
  int sentences = count_sub(t, "。");
  CHECK(sentences >= 2 && sentences <= 4);
  CHECK(vl_metrics_length(t, 1) >= 20);
  int has_c[4] = {0}, has_s[3] = {0}, n_s[3] = {0};
  for (int k = 0; k < sc->n_objects; k++) {
    const vl_shapes_object *o = &sc->objects[k];
    char full[64];
    zh_full(o, full, sizeof full);
    CHECK(strstr(t, full) != NULL);
    has_c[o->color] = 1;
    has_s[o->shape] = 1;
    n_s[o->shape]++;
  }
  for (int c = 0; c < 4; c++)
    if (!has_c[c]) CHECK(!strstr(t, ZH_COLORS[c]));
  for (int s = 0; s < 3; s++)
    if (!has_s[s]) CHECK(!strstr(t, ZH_SHAPES[s]));
  char buf[128];
  if (sc->n_objects == 1) {
    CHECK(strstr(t, "只有一个") != NULL);
  } else {
    int total = 0;
    static const char *const what[] = {"物体", "图形", "形状"};
    for (int w = 0; w < 3; w++) {
      snprintf(buf, sizeof buf, "%s个%s：", ZH_NUMS[sc->n_objects], what[w]);
      total += strstr(t, buf) != NULL;
    }
    CHECK(total == 1);
    for (int s = 0; s < 3; s++)
      if (n_s[s]) {
        snprintf(buf, sizeof buf, "%s个%s", ZH_NUMS[n_s[s]], ZH_SHAPES[s]);
        CHECK(strstr(t, buf) != NULL);
      }
  }
  if (!scene_mode) {
    for (int r = 0; r < 9; r++)
      CHECK(!strstr(t, ZH_REGIONS[r])); /* the caption tells no positions */
    return;
  }
  for (int k = 0; k < sc->n_objects; k++)
    CHECK(strstr(t, ZH_REGIONS[region_of(&sc->objects[k])]) != NULL);
  /* the relation sentence: the last one when it holds "在…的" clauses */
  const char *last = t, *e = t + strlen(t) - 3;
  for (const char *p = strstr(t, "。"); p && p < e; p = strstr(p + 3, "。"))
    last = p + 3;
  if (!strncmp(last, "从相对位置来看，", strlen("从相对位置来看，")))
    last += strlen("从相对位置来看，");
  if (sc->n_objects > 1 && !strstr(last, "有") && !strstr(last, "是") && !strstr(last, "位于") &&
      !strstr(last, "出现")) {
    const char *and = strstr(last, "，而");
    if (and) {
      check_zh_relation(sc, last, (size_t)(and-last));
      check_zh_relation(sc, and+strlen("，而"), (size_t)(e - and-strlen("，而")));
    } else {
      check_zh_relation(sc, last, (size_t)(e - last));
    }
  }
}

static void test_zh_words(void) {
  CHECK(!strcmp(vl_shapes_word_zh("red"), "红色") && !strcmp(vl_shapes_word_zh("yellow"), "黄色"));
  CHECK(!strcmp(vl_shapes_word_zh("square"), "正方形"));
  CHECK(!strcmp(vl_shapes_word_zh("large"), "大"));
  CHECK(vl_shapes_word_zh("purple") == NULL && vl_shapes_word_zh(NULL) == NULL);
  for (int i = 0; i < 4; i++)
    CHECK(!strcmp(vl_color_name_zh((vl_color)i), ZH_COLORS[i]));
  for (int i = 0; i < 3; i++)
    CHECK(!strcmp(vl_shape_name_zh((vl_shape)i), ZH_SHAPES[i]));
  for (int i = 0; i < 9; i++)
    CHECK(!strcmp(vl_region_name_zh((vl_region)i), ZH_REGIONS[i]));
  CHECK(!strcmp(vl_size_name_zh(VL_SIZE_SMALL), "小"));
  CHECK(!strcmp(vl_color_name_zh((vl_color)7), "?"));
}

static void test_zh_grammar(void) {
  vl_shapes_options o = vl_shapes_default_options();
  o.n_hypotheses = 0;
  int with_rel = 0;
  for (int i = 0; i < N_SCENES; i++) {
    vl_shapes_scene *sc = vl_shapes_generate(303, i, &o);
    REQUIRE(sc);
    for (int mode = 0; mode < 2; mode++) {
      vl_describe_mode m = mode ? VL_DESCRIBE_CAPTION : VL_DESCRIBE_SCENE;
      char *t = vl_shapes_describe_lang(sc, m, VL_DESCRIBE_ZH, (uint64_t)i);
      char *t2 = vl_shapes_describe_lang(sc, m, VL_DESCRIBE_ZH, (uint64_t)i);
      char *w = vl_shapes_describe_zh_words(sc, m, (uint64_t)i);
      REQUIRE(t && t2 && w);
      int f0 = test_current_failed;
      CHECK(!strcmp(t, t2)); /* deterministic */
      check_zh(sc, t, !mode);
      if (!mode)
        with_rel +=
            strstr(t, "的左") || strstr(t, "的右") || strstr(t, "的上方") || strstr(t, "的下方");
      /* the segmented text is the same words, one per line, colours and
       * shapes alone on theirs */
      char joined[2048];
      size_t n = 0;
      for (const char *p = w; *p && n + 1 < sizeof joined; p++)
        if (*p != '\n') joined[n++] = *p;
      joined[n] = 0;
      CHECK(!strcmp(joined, t) && !strstr(w, "\n\n"));
      for (int c = 0; c < 4; c++) {
        char line[32];
        snprintf(line, sizeof line, "\n%s\n", ZH_COLORS[c]);
        CHECK(count_sub(w, ZH_COLORS[c]) == count_sub(w, line));
      }
      if (!f0 && test_current_failed) printf("  scene %d (%s): %s\n", i, sc->caption, t);
      free(t);
      free(t2);
      free(w);
    }
    /* caption mode: objects in caption order, and only the caption matters */
    char *t = vl_shapes_describe_lang(sc, VL_DESCRIBE_CAPTION, VL_DESCRIBE_ZH, 9);
    REQUIRE(t);
    if (sc->n_objects > 1) {
      const char *p = strstr(t, "从左");
      if (!p) p = strstr(t, "按从左到右");
      for (int k = 0; k < sc->n_objects && p; k++) {
        char full[64];
        zh_full(&sc->objects[k], full, sizeof full);
        p = strstr(p, full);
        if (p) p += strlen(full);
      }
      CHECK(p != NULL);
    }
    vl_shapes_scene moved = flipped_vertically(sc);
    char *t3 = vl_shapes_describe_lang(&moved, VL_DESCRIBE_CAPTION, VL_DESCRIBE_ZH, 9);
    REQUIRE(t3);
    CHECK(!strcmp(t, t3));
    /* English is the English grammar, whatever the Chinese one does */
    char *en = vl_shapes_describe(sc, VL_DESCRIBE_SCENE, 9);
    char *en2 = vl_shapes_describe_lang(sc, VL_DESCRIBE_SCENE, VL_DESCRIBE_EN, 9);
    REQUIRE(en && en2);
    CHECK(!strcmp(en, en2));
    free(en);
    free(en2);
    free(t);
    free(t3);
    vl_shapes_free(sc);
  }
  CHECK(with_rel > N_SCENES / 2);
  CHECK(zh_relations_checked >= with_rel); /* each one parsed and verified */
}

static void test_zh_variety_and_errors(void) {
  vl_shapes_scene *sc = three_object_scene();
  REQUIRE(sc);
  char *a = vl_shapes_describe_lang(sc, VL_DESCRIBE_CAPTION, VL_DESCRIBE_ZH, 42);
  REQUIRE(a);
  int differ = 0;
  for (uint64_t s = 0; s < 20; s++) {
    char *c = vl_shapes_describe_lang(sc, VL_DESCRIBE_CAPTION, VL_DESCRIBE_ZH, s);
    REQUIRE(c);
    differ += strcmp(a, c) != 0;
    free(c);
  }
  CHECK(differ >= 10);
  free(a);
  CHECK(vl_shapes_describe_lang(sc, VL_DESCRIBE_SCENE, (vl_describe_lang)2, 0) == NULL);
  CHECK(vl_last_error_code() == VL_ERR_INVALID);
  CHECK(vl_shapes_describe_lang(NULL, VL_DESCRIBE_SCENE, VL_DESCRIBE_ZH, 0) == NULL);
  vl_shapes_free(sc);
}

/* Chinese training pairs: the --lang zh prompt with the caption, a
 * caption-mode Chinese target of that scene within the grammar's length;
 * the bilingual tokenizer corpus holds the Chinese words one per line. */
static void test_zh_enrich_pairs(void) {
  vl_shapes_options so = vl_shapes_default_options();
  so.n_hypotheses = 0;
  vl_enrich_options eo = vl_enrich_default_options();
  eo.lang = VL_ENRICH_ZH;
  eo.min_words = 100;
  eo.max_words = 200;
  for (int i = 0; i < 60; i++) {
    char *p, *t, *c, *pe, *te;
    REQUIRE(vl_shapes_enrich_pair(78, i, &eo, &p, &t, &c) == 0);
    REQUIRE(vl_shapes_enrich_pair(78, i, NULL, &pe, &te, NULL) == 0);
    vl_shapes_scene *sc = vl_shapes_generate(78, i, &so);
    REQUIRE(sc);
    char line[256];
    snprintf(line, sizeof line, "VISION_START\n图像描述：%s\n", sc->caption);
    CHECK(strstr(p, line) && strstr(p, "用中文回答") && strstr(p, "100到200字"));
    check_zh(sc, t, 0);
    size_t n = vl_metrics_length(t, 1);
    CHECK(n >= VL_SHAPES_ENRICH_MIN_CHARS && n <= VL_SHAPES_ENRICH_MAX_CHARS);
    CHECK(strstr(pe, "Write in English") && !strstr(te, "。")); /* NULL options: English */
    free(p);
    free(t);
    free(c);
    free(pe);
    free(te);
    vl_shapes_free(sc);
  }
  size_t len, len_en;
  char *corpus = vl_shapes_enrich_corpus_lang(77, 3, 1, &len);
  char *en = vl_shapes_enrich_corpus(77, 3, &len_en);
  REQUIRE(corpus && en);
  CHECK(len > len_en && !memcmp(corpus, en, 40) && strlen(corpus) == len);
  CHECK(strstr(corpus, "用中文回答") && strstr(corpus, "\n一个\n"));
  CHECK(!strstr(en, "。"));
  free(corpus);
  free(en);
}

int main(void) {
  RUN(test_regions_exact);
  RUN(test_scene_mode);
  RUN(test_caption_mode);
  RUN(test_determinism_and_variety);
  RUN(test_bad_input);
  RUN(test_enrich_pairs);
  RUN(test_zh_words);
  RUN(test_zh_grammar);
  RUN(test_zh_variety_and_errors);
  RUN(test_zh_enrich_pairs);
  return test_summary();
}
