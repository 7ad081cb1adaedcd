/* The Chinese description grammar for Shapes World (see shapes_describe.h):
 * the English grammar's facts and sentence plan, with the word table below
 * as the only source of Chinese world words.
 *
 * Every literal marks its word boundaries with '|' (a byte the text never
 * holds otherwise): vl_shapes_describe_lang() removes them, the segmented
 * variant turns them into line breaks, so a tokenizer corpus built from it
 * teaches BPE word-sized Chinese tokens instead of whole-clause ones. */
#include <string.h>

#include "io/shapes_describe.h"
#include "io/shapes_describe_impl.h"

static const char *const COLOR_ZH[VL_COLOR_COUNT] = {"红色", "绿色", "蓝色", "黄色"};
static const char *const SHAPE_ZH[VL_SHAPE_COUNT] = {"圆形", "正方形", "三角形"};
static const char *const SIZE_ZH[VL_SIZE_COUNT] = {"小", "大"};
static const char *const REGION_ZH[VL_REGION_COUNT] = {"左上角",   "上方中部", "右上角",
                                                       "左侧中部", "正中央",   "右侧中部",
                                                       "左下角",   "下方中部", "右下角"};
static const char *const NUM_ZH[] = {"零", "一", "两", "三", "四"};

const char *vl_color_name_zh(vl_color c) {
  return (unsigned)c < VL_COLOR_COUNT ? COLOR_ZH[c] : "?";
}
const char *vl_shape_name_zh(vl_shape s) {
  return (unsigned)s < VL_SHAPE_COUNT ? SHAPE_ZH[s] : "?";
}
const char *vl_size_name_zh(vl_size s) { return (unsigned)s < VL_SIZE_COUNT ? SIZE_ZH[s] : "?"; }
const char *vl_region_name_zh(vl_region r) {
  return (unsigned)r < VL_REGION_COUNT ? REGION_ZH[r] : "?";
}

const char *vl_shapes_word_zh(const char *en) {
  if (!en) return NULL;
  for (int i = 0; i < VL_COLOR_COUNT; i++)
    if (!strcmp(en, vl_color_name((vl_color)i))) return COLOR_ZH[i];
  for (int i = 0; i < VL_SHAPE_COUNT; i++)
    if (!strcmp(en, vl_shape_name((vl_shape)i))) return SHAPE_ZH[i];
  for (int i = 0; i < VL_SIZE_COUNT; i++)
    if (!strcmp(en, vl_size_name((vl_size)i))) return SIZE_ZH[i];
  return NULL;
}

#define put vl_dbuf_put

static void end(vl_dbuf *b) { put(b, "|。|"); }

static int pick(vl_desc_ctx *c, int n) { return vl_desc_pick(c, n); }

/* "、" between items, "和" before the last. */
static void sep(vl_dbuf *b, int i, int n) {
  if (i) put(b, "%s", i == n - 1 ? "|和|" : "|、|");
}

/* ---- naming ---------------------------------------------------------- */

/* "大的红色圆形" */
static void full_name(vl_dbuf *b, const vl_shapes_object *o) {
  put(b, "%s的|%s|%s", SIZE_ZH[o->size], COLOR_ZH[o->color], SHAPE_ZH[o->shape]);
}

/* "一个大的红色圆形", or "另一个…" after one of the same kind in shown[]. */
static void intro(vl_dbuf *b, const vl_desc_ctx *c, int i, const int *shown, int n_shown) {
  put(b, "%s", vl_desc_again(c, i, shown, n_shown) ? "另|一个|" : "一个|");
  full_name(b, &c->sc->objects[i]);
}

static void short_name(vl_dbuf *b, const vl_desc_ctx *c, int i) {
  const vl_shapes_object *o = &c->sc->objects[i];
  if (vl_desc_name_level(c, i) == 1)
    put(b, "%s|%s", COLOR_ZH[o->color], SHAPE_ZH[o->shape]);
  else
    full_name(b, o);
}

/* ---- sentences shared by both modes ---------------------------------- */

/* "两个圆形、一个正方形和一个三角形" in order of first appearance. */
static void shape_groups(vl_dbuf *b, const vl_desc_ctx *c) {
  int cnt[VL_SHAPE_COUNT] = {0}, order[VL_SHAPE_COUNT], n = 0;
  for (int i = 0; i < c->k; i++) {
    vl_shape s = c->sc->objects[i].shape;
    if (!cnt[s]++) order[n++] = (int)s;
  }
  for (int g = 0; g < n; g++) {
    sep(b, g, n);
    put(b, "%s个|%s", NUM_ZH[cnt[order[g]]], SHAPE_ZH[order[g]]);
  }
}

static void overview(vl_dbuf *b, vl_desc_ctx *c) {
  int v = pick(c, 3);
  if (c->k == 1) {
    static const char *const pre[] = {"画面|中|只有|一个|", "浅色|的|背景|上|只有|一个|",
                                      "这里|只有|一个|物体|：|一个|"};
    static const char *const post[] = {"|，|背景|是|纯净|的|浅色", "", "|，|背景|是|单一|的|浅色"};
    put(b, "%s", pre[v]);
    full_name(b, &c->sc->objects[0]);
    put(b, "%s", post[v]);
  } else {
    if (v == 0) put(b, "浅色|的|背景|上|有|%s个|物体|：|", NUM_ZH[c->k]);
    if (v == 1) put(b, "图|中|共有|%s个|图形|：|", NUM_ZH[c->k]);
    if (v == 2) put(b, "在|单一|的|浅色|背景|上|可以|看到|%s个|形状|：|", NUM_ZH[c->k]);
    shape_groups(b, c);
    if (v == 1) put(b, "|，|背景|是|纯净|的|浅色");
  }
  end(b);
}

/* ---- scene mode ------------------------------------------------------ */

static void place_clause(vl_dbuf *b, vl_desc_ctx *c, int i, const int *shown, int n_shown) {
  const char *r = REGION_ZH[vl_shapes_region(&c->sc->objects[i])];
  int v = pick(c, 4);
  if (v == 0 || v == 2) { /* "一个…位于画面的左上角" / "一个…出现在左上角" */
    intro(b, c, i, shown, n_shown);
    put(b, "|%s|%s", v == 0 ? "位于|画面|的" : "出现|在", r);
  } else { /* "画面的左上角是一个…" / "左上角有一个…" */
    put(b, "%s%s|%s|", v == 1 ? "画面|的|" : "", r, v == 1 ? "是" : "有");
    intro(b, c, i, shown, n_shown);
  }
}

static const char *relation_word(const vl_desc_relation *r) {
  if (r->h && r->v)
    return r->v < 0 ? (r->h < 0 ? "左上方" : "右上方") : (r->h < 0 ? "左下方" : "右下方");
  if (r->v) return r->v < 0 ? "上方" : "下方";
  return r->h < 0 ? "左边" : "右边";
}

static void relations_sentence(vl_dbuf *b, vl_desc_ctx *c, int want) {
  vl_desc_relation r[2];
  int n = vl_desc_draw_relations(c, r, want);
  if (!n) return;
  if (pick(c, 3) == 0) put(b, "从|相对|位置|来看|，|");
  for (int i = 0; i < n; i++) {
    if (i) put(b, "|，|而|");
    short_name(b, c, r[i].a);
    put(b, "|在|");
    short_name(b, c, r[i].b);
    put(b, "|的|%s", relation_word(&r[i]));
  }
  end(b);
}

static void scene_mode(vl_dbuf *b, vl_desc_ctx *c) {
  static const char *const verb[] = {"|位于|", "|处在|", "|在|", "|出现|在|"};
  static const char *const where[] = {"画面|的|", "画布|的|", "图片|的|"};
  int shown[VL_SHAPES_MAX_OBJECTS], ns = 0;
  overview(b, c);
  if (c->k == 1) {
    put(b, "这个|");
    full_name(b, &c->sc->objects[0]);
    put(b, "%s", verb[pick(c, 4)]);
    put(b, "%s%s", where[pick(c, 3)], REGION_ZH[vl_shapes_region(&c->sc->objects[0])]);
    end(b);
    return;
  }
  /* objects in caption order, two per sentence (the third of three alone) */
  for (int i = 0; i < c->k; i += 2) {
    if (i + 1 < c->k) {
      place_clause(b, c, i, shown, ns);
      shown[ns++] = i;
      put(b, "%s", pick(c, 2) ? "|，|而|" : "|；|");
      place_clause(b, c, i + 1, shown, ns);
      shown[ns++] = i + 1;
    } else {
      if (pick(c, 2)) put(b, "最后|，|");
      place_clause(b, c, i, shown, ns);
      shown[ns++] = i;
    }
    end(b);
  }
  relations_sentence(b, c, c->k == 2 ? 1 : 1 + pick(c, 2));
}

/* ---- caption mode ---------------------------------------------------- */

static void order_sentence(vl_dbuf *b, vl_desc_ctx *c) {
  static const char *const pre[] = {"从左到右|依次|是|", "从左往右|看|，|",
                                    "按|从左到右|的|顺序|，|这些|物体|分别|是|"};
  int shown[VL_SHAPES_MAX_OBJECTS], ns = 0;
  int v = pick(c, 3);
  put(b, "%s", pre[v]);
  for (int i = 0; i < c->k; i++) {
    if (v == 1) { /* 先是…，然后是…，接着是…，最后是… */
      const char *w = i == 0                   ? "先|是|"
                      : i == c->k - 1 && i > 1 ? "最后|是|"
                      : i == 1                 ? "然后|是|"
                                               : "接着|是|";
      put(b, "%s%s", i ? "|，|" : "", w);
    } else {
      sep(b, i, c->k);
    }
    intro(b, c, i, shown, ns);
    shown[ns++] = i;
  }
  end(b);
}

static void extremes_sentence(vl_dbuf *b, vl_desc_ctx *c) {
  int first = 0, last = c->k - 1, v = pick(c, 2);
  if (v) {
    put(b, "最|左边|的|是|");
    intro(b, c, first, NULL, 0);
    put(b, "|，|最|右边|的|则|是|");
    intro(b, c, last, &first, 1);
  } else {
    intro(b, c, first, NULL, 0);
    put(b, "|位于|最|左侧|，|而|");
    intro(b, c, last, &first, 1);
    put(b, "|位于|最|右侧");
  }
  end(b);
}

static void summary_sentence(vl_dbuf *b, vl_desc_ctx *c) {
  int nsz[VL_SIZE_COUNT] = {0}, ncol[VL_COLOR_COUNT] = {0}, order[VL_COLOR_COUNT], nc = 0;
  for (int i = 0; i < c->k; i++) {
    nsz[c->sc->objects[i].size]++;
    if (!ncol[c->sc->objects[i].color]++) order[nc++] = (int)c->sc->objects[i].color;
  }
  if (pick(c, 2)) {
    if (!nsz[VL_SIZE_SMALL] || !nsz[VL_SIZE_LARGE])
      put(b, "%s个|图形|%s|是|%s的", NUM_ZH[c->k], c->k == 2 ? "都" : "全都",
          SIZE_ZH[nsz[VL_SIZE_LARGE] ? VL_SIZE_LARGE : VL_SIZE_SMALL]);
    else
      put(b, "其中|%s个|是|大的|，|%s个|是|小的", NUM_ZH[nsz[VL_SIZE_LARGE]],
          NUM_ZH[nsz[VL_SIZE_SMALL]]);
  } else if (nc == 1) {
    put(b, "它们|%s|是|%s|的", c->k == 2 ? "都" : "全都", COLOR_ZH[order[0]]);
  } else {
    put(b, "画面|中|出现|的|颜色|有|");
    for (int i = 0; i < nc; i++) {
      sep(b, i, nc);
      put(b, "%s", COLOR_ZH[order[i]]);
    }
  }
  end(b);
}

static void caption_mode(vl_dbuf *b, vl_desc_ctx *c) {
  overview(b, c);
  if (c->k == 1) {
    const vl_shapes_object *o = &c->sc->objects[0];
    int v = pick(c, 3);
    if (v == 0) put(b, "它|是|画面|中|唯一|的|图形|，|通体|为|%s", COLOR_ZH[o->color]);
    if (v == 1)
      put(b, "除了|这个|%s的|%s|，|画面|中|没有|其他|物体", SIZE_ZH[o->size], SHAPE_ZH[o->shape]);
    if (v == 2)
      put(b, "这个|%s|%s|独自|出现|，|周围|没有|别的|物体", COLOR_ZH[o->color], SHAPE_ZH[o->shape]);
    end(b);
    return;
  }
  order_sentence(b, c);
  if (c->k >= 3) extremes_sentence(b, c);
  summary_sentence(b, c);
}

void vl_describe_zh(vl_dbuf *b, vl_desc_ctx *c, vl_describe_mode mode) {
  if (mode == VL_DESCRIBE_SCENE)
    scene_mode(b, c);
  else
    caption_mode(b, c);
}

void vl_describe_zh_finish(vl_dbuf *b, int segmented) {
  size_t w = 0;
  int was_sep = 1; /* no break before the first word or after another break */
  for (size_t i = 0; i < b->n; i++) {
    if (b->s[i] != '|') {
      b->s[w++] = b->s[i];
      was_sep = 0;
    } else if (segmented && !was_sep) {
      b->s[w++] = '\n';
      was_sep = 1;
    }
  }
  while (segmented && w && b->s[w - 1] == '\n')
    w--;
  b->s[w] = '\0';
  b->n = w;
}
