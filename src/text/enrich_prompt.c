/* Enrich prompt building and answer splitting; see enrich_prompt.h. */
#include "text/enrich_prompt.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "io/shapes_world.h"
#include "text/chat.h"
#include "text/textbuf.h"

vl_enrich_options vl_enrich_default_options(void) {
  vl_enrich_options o;
  memset(&o, 0, sizeof o);
  o.min_words = 60;
  o.max_words = 120;
  o.lang = VL_ENRICH_EN;
  o.temperature = 0.6f;
  o.top_p = 0.95f;
  o.enable_thinking = 0;
  return o;
}

int vl_enrich_parse_range(const char *s, int *min, int *max) {
  if (!s || !min || !max) return vl_error(VL_ERR_INVALID, "word range: none given");
  char *end;
  long a = strtol(s, &end, 10);
  if (end == s || *end != '-' || !isdigit((unsigned char)s[0]))
    return vl_error(VL_ERR_INVALID, "word range '%s': expected MIN-MAX, e.g. 40-80", s);
  const char *p = end + 1;
  long b = strtol(p, &end, 10);
  if (end == p || *end || !isdigit((unsigned char)p[0]))
    return vl_error(VL_ERR_INVALID, "word range '%s': expected MIN-MAX, e.g. 40-80", s);
  if (a < 1 || b < a || b > 2000)
    return vl_error(VL_ERR_INVALID, "word range '%s': need 1 <= MIN <= MAX <= 2000", s);
  *min = (int)a;
  *max = (int)b;
  return VL_OK;
}

int vl_enrich_parse_lang(const char *s, vl_enrich_lang *out) {
  if (s && out && !strcmp(s, "en"))
    *out = VL_ENRICH_EN;
  else if (s && out && !strcmp(s, "zh"))
    *out = VL_ENRICH_ZH;
  else
    return vl_error(VL_ERR_INVALID, "language '%s': expected en or zh", s ? s : "(null)");
  return VL_OK;
}

/* ---- caption cleaning ------------------------------------------------ */

static int utf8_valid(const unsigned char *s) {
  while (*s) {
    int k = *s < 0x80 ? 0 : (*s >> 5) == 6 ? 1 : (*s >> 4) == 14 ? 2 : (*s >> 3) == 30 ? 3 : -1;
    if (k < 0 || (k == 1 && *s < 0xC2)) return 0;
    for (int i = 1; i <= k; i++)
      if ((s[i] & 0xC0) != 0x80) return 0;
    s += k + 1;
  }
  return 1;
}

static int clean_caption(const char *in, char **out) {
  *out = NULL;
  if (!in) return vl_error(VL_ERR_INVALID, "caption: none given");
  if (!utf8_valid((const unsigned char *)in))
    return vl_error(VL_ERR_INVALID, "caption: not valid UTF-8");
  vl_textbuf b = {0};
  const char *p = in;
  int space = 1; /* drop leading space */
  while (*p) {
    if (p[0] == '<' && p[1] == '|') {
      const char *e = strstr(p + 2, "|>");
      if (e) {
        p = e + 2;
        continue;
      }
    }
    if (!strncmp(p, "VISION_START", 12) || !strncmp(p, "VISION_END", 10)) {
      p += p[7] == 'S' ? 12 : 10;
      continue;
    }
    unsigned char c = (unsigned char)*p++;
    if (c < 0x20 || c == 0x7f || c == ' ') {
      if (!space) vl_textbuf_append(&b, " ", 1);
      space = 1;
      continue;
    }
    vl_textbuf_append(&b, (const char *)&c, 1);
    space = 0;
  }
  char *s = vl_textbuf_take(&b);
  if (!s) return VL_ERR_NOMEM;
  size_t n = strlen(s);
  while (n && s[n - 1] == ' ')
    s[--n] = '\0';
  if (!n) {
    free(s);
    return vl_error(VL_ERR_INVALID, "caption: empty");
  }
  if (n > VL_ENRICH_CAPTION_MAX) {
    free(s);
    return vl_error(VL_ERR_LIMIT, "caption: %zu bytes, more than %d", n, VL_ENRICH_CAPTION_MAX);
  }
  *out = s;
  return VL_OK;
}

/* ---- elements -------------------------------------------------------- */

static int lookup(const char *w, size_t n, const char *(*name)(int), int count) {
  for (int i = 0; i < count; i++) {
    const char *s = name(i);
    if (strlen(s) == n && !memcmp(s, w, n)) return i;
  }
  return -1;
}
static const char *shape_name(int i) { return vl_shape_name((vl_shape)i); }
static const char *color_name(int i) { return vl_color_name((vl_color)i); }
static const char *size_name(int i) { return vl_size_name((vl_size)i); }

typedef struct {
  int n;
  int size[VL_SHAPES_MAX_OBJECTS], color[VL_SHAPES_MAX_OBJECTS], shape[VL_SHAPES_MAX_OBJECTS];
} shapes_caption;

/* Exact grammar: phrases "a SIZE COLOUR SHAPE" joined ", " and a final " and ",
 * full stop at the end. Returns 1 when the caption matches. */
static int parse_shapes_caption(const char *c, shapes_caption *sc) {
  size_t n = strlen(c);
  if (n < 2 || c[n - 1] != '.') return 0;
  sc->n = 0;
  const char *p = c, *end = c + n - 1;
  for (;;) {
    if (sc->n == VL_SHAPES_MAX_OBJECTS || strncmp(p, "a ", 2)) return 0;
    p += 2;
    int *slots[3] = {&sc->size[sc->n], &sc->color[sc->n], &sc->shape[sc->n]};
    const char *(*names[3])(int) = {size_name, color_name, shape_name};
    int counts[3] = {VL_SIZE_COUNT, VL_COLOR_COUNT, VL_SHAPE_COUNT};
    for (int k = 0; k < 3; k++) {
      const char *w = p;
      while (p < end && *p != ' ' && *p != ',')
        p++;
      if ((*slots[k] = lookup(w, (size_t)(p - w), names[k], counts[k])) < 0) return 0;
      if (k < 2) {
        if (*p != ' ') return 0;
        p++;
      }
    }
    sc->n++;
    if (p == end) break;
    if (!strncmp(p, ", ", 2))
      p += 2;
    else if (!strncmp(p, " and ", 5))
      p += 5;
    else
      return 0;
  }
  /* ", " between all but the last two, " and " before the last. */
  vl_textbuf b = {0};
  for (int i = 0; i < sc->n; i++) {
    if (i) vl_textbuf_puts(&b, i == sc->n - 1 ? " and " : ", ");
    vl_textbuf_printf(&b, "a %s %s %s", size_name(sc->size[i]), color_name(sc->color[i]),
                      shape_name(sc->shape[i]));
  }
  vl_textbuf_puts(&b, ".");
  char *canon = vl_textbuf_take(&b);
  int same = canon && !strcmp(canon, c);
  free(canon);
  return same;
}

static const char *NUMBER_WORDS[] = {"no", "one", "two", "three", "four"};

static int shapes_elements(const shapes_caption *sc, vl_enrich_elements *e) {
  vl_textbuf sub = {0}, st = {0};
  vl_textbuf_printf(&sub, "%s %s: ", NUMBER_WORDS[sc->n], sc->n == 1 ? "object" : "objects");
  for (int i = 0; i < sc->n; i++) {
    if (i) vl_textbuf_puts(&sub, i == sc->n - 1 ? " and " : ", ");
    vl_textbuf_printf(&sub, "a %s %s", color_name(sc->color[i]), shape_name(sc->shape[i]));
  }
  vl_textbuf_puts(&st, "sizes: ");
  for (int i = 0; i < sc->n; i++)
    vl_textbuf_printf(&st, "%s%s %s", i ? ", " : "", shape_name(sc->shape[i]),
                      size_name(sc->size[i]));
  vl_textbuf_puts(&st, "; colours: ");
  for (int i = 0; i < sc->n; i++)
    vl_textbuf_printf(&st, "%s%s %s", i ? ", " : "", shape_name(sc->shape[i]),
                      color_name(sc->color[i]));
  if (sc->n > 1) {
    vl_textbuf_puts(&st, "; arrangement from left to right: ");
    for (int i = 0; i < sc->n; i++)
      vl_textbuf_printf(&st, "%s%s %s", i ? ", " : "", color_name(sc->color[i]),
                        shape_name(sc->shape[i]));
  } else {
    vl_textbuf_puts(&st, "; arrangement: a single object");
  }
  e->subject = vl_textbuf_take(&sub);
  e->state = vl_textbuf_take(&st);
  e->scene = strdup("a plain background of one light colour, nothing else in view");
  e->shapes_world = 1;
  return e->subject && e->state && e->scene ? VL_OK : VL_ERR_NOMEM;
}

static char *dup_trim(const char *p, size_t n) {
  while (n && (*p == ' ' || *p == ','))
    p++, n--;
  while (n && (p[n - 1] == ' ' || p[n - 1] == '.' || p[n - 1] == ','))
    n--;
  char *s = malloc(n + 1);
  if (s) {
    memcpy(s, p, n);
    s[n] = '\0';
  }
  return s;
}

static int general_elements(const char *caption, vl_enrich_elements *e) {
  size_t n = strlen(caption);
  char *low = malloc(n + 3);
  if (!low) return vl_error(VL_ERR_NOMEM, "caption: out of memory");
  /* Padded with spaces so " on " also matches at the ends. */
  low[0] = ' ';
  for (size_t i = 0; i < n; i++)
    low[i + 1] = (char)tolower((unsigned char)caption[i]);
  low[n + 1] = ' ';
  low[n + 2] = '\0';
  const char *s = low + 1;
  static const char *prefixes[] = {"a picture of ",    "an image of ", "a photo of ",
                                   "a photograph of ", "there is ",    "there are "};
  for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
    if (!strncmp(s, prefixes[i], strlen(prefixes[i]))) s += strlen(prefixes[i]);
  const char *end = low + n + 1;
  static const char *preps[] = {" in ",     " on ",      " at ",     " near ", " under ",
                                " beside ", " next to ", " inside ", " by ",   " against ",
                                " over ",   " behind ",  " outside "};
  const char *scene = NULL;
  for (size_t i = 0; i < sizeof preps / sizeof *preps; i++) {
    const char *h = strstr(s - 1, preps[i]);
    if (h && h + 1 > s && h < end && (!scene || h < scene)) scene = h;
  }
  const char *rest_end = scene ? scene : end;
  /* State: first word of the rest ending in "ing", or is/are/with. */
  const char *state = NULL;
  for (const char *w = s; w < rest_end && !state;) {
    while (w < rest_end && *w == ' ')
      w++;
    const char *we = w;
    while (we < rest_end && *we != ' ')
      we++;
    size_t wl = (size_t)(we - w);
    int trailing = wl > 0 && (w[wl - 1] == ',' || w[wl - 1] == '.');
    size_t core = wl - (size_t)trailing;
    if (w > s &&
        ((core > 4 && !strncmp(w + core - 3, "ing", 3)) || (core == 2 && !strncmp(w, "is", 2)) ||
         (core == 3 && !strncmp(w, "are", 3)) || (core == 4 && !strncmp(w, "with", 4))))
      state = w;
    w = we;
  }
  const char *sub_end = state ? state : rest_end;
  e->subject = dup_trim(s, (size_t)(sub_end - s));
  e->state = state ? dup_trim(state, (size_t)(rest_end - state)) : strdup("not stated");
  e->scene = scene ? dup_trim(scene, (size_t)(end - scene)) : strdup("not stated");
  free(low);
  if (!e->subject || !e->state || !e->scene) return vl_error(VL_ERR_NOMEM, "out of memory");
  if (!e->subject[0]) {
    free(e->subject);
    e->subject = dup_trim(caption, n);
    if (!e->subject) return vl_error(VL_ERR_NOMEM, "out of memory");
  }
  return VL_OK;
}

int vl_enrich_elements_extract(const char *caption, vl_enrich_elements *out) {
  if (!out) return vl_error(VL_ERR_INVALID, "caption: no output given");
  memset(out, 0, sizeof *out);
  int rc = clean_caption(caption, &out->caption);
  if (rc < 0) return rc;
  shapes_caption sc;
  rc = parse_shapes_caption(out->caption, &sc) ? shapes_elements(&sc, out)
                                               : general_elements(out->caption, out);
  if (rc < 0) {
    vl_enrich_elements_free(out);
    return rc == VL_ERR_NOMEM ? vl_error(VL_ERR_NOMEM, "caption: out of memory") : rc;
  }
  return VL_OK;
}

void vl_enrich_elements_free(vl_enrich_elements *e) {
  if (!e) return;
  free(e->caption);
  free(e->subject);
  free(e->scene);
  free(e->state);
  memset(e, 0, sizeof *e);
}

/* ---- prompt ---------------------------------------------------------- */

static int check_options(const vl_enrich_options *o) {
  if (o->min_words < 1 || o->max_words < o->min_words || o->max_words > 2000)
    return vl_error(VL_ERR_INVALID, "enrich: length range %d-%d: need 1 <= MIN <= MAX <= 2000",
                    o->min_words, o->max_words);
  if (o->lang != VL_ENRICH_EN && o->lang != VL_ENRICH_ZH)
    return vl_error(VL_ERR_INVALID, "enrich: unknown language %d", (int)o->lang);
  const char *const *lists[2] = {o->keywords, o->forbidden};
  size_t counts[2] = {o->n_keywords, o->n_forbidden};
  for (int l = 0; l < 2; l++) {
    if (counts[l] && !lists[l]) return vl_error(VL_ERR_INVALID, "enrich: word list missing");
    for (size_t i = 0; i < counts[l]; i++) {
      char *clean = NULL;
      if (!lists[l][i] || clean_caption(lists[l][i], &clean) < 0)
        return vl_error(VL_ERR_INVALID, "enrich: %s %zu is empty or not valid UTF-8",
                        l ? "forbidden word" : "keyword", i + 1);
      free(clean);
    }
  }
  return VL_OK;
}

static void word_list(vl_textbuf *b, const char *const *w, size_t n, const char *sep) {
  for (size_t i = 0; i < n; i++) {
    char *c = NULL;
    if (clean_caption(w[i], &c) == VL_OK) {
      vl_textbuf_puts(b, i ? sep : "");
      vl_textbuf_puts(b, c);
    }
    free(c);
  }
}

static void visual_block(vl_textbuf *b, const vl_enrich_elements *e, int zh) {
  vl_textbuf_puts(b, "VISION_START\n");
  vl_textbuf_printf(b,
                    zh ? "图像描述：%s\n主体：%s\n场景：%s\n状态：%s\n"
                       : "Caption: %s\nSubject: %s\nScene: %s\nState: %s\n",
                    e->caption, e->subject, e->scene, e->state);
  vl_textbuf_puts(b, "VISION_END\n");
}

static void constraints(vl_textbuf *b, const vl_enrich_options *o, size_t n_items) {
  int zh = o->lang == VL_ENRICH_ZH;
  int mid = (o->min_words + o->max_words) / 2;
  if (zh) {
    vl_textbuf_puts(b, "\n要求：\n");
    vl_textbuf_puts(b, "- 只描述上面视觉文本所支持的内容，不要编造物体、人物、文字或品牌。\n");
    vl_textbuf_puts(b, "- 写清主体、场景和状态（大小、颜色、位置关系、动作）。\n");
    if (o->n_keywords) {
      vl_textbuf_puts(b, "- 必须提到这些要素：");
      word_list(b, o->keywords, o->n_keywords, "、");
      vl_textbuf_puts(b, "。\n");
    }
    vl_textbuf_printf(b, "- 长度：%s约%d个汉字（%d到%d字之间），写成一段连贯的文字。\n",
                      n_items > 1 ? "每段描述" : "", mid, o->min_words, o->max_words);
    vl_textbuf_puts(b, "- 不要提到“图像描述”、标记或这些要求；不要列表、标题或引号。\n");
    if (o->n_forbidden) {
      vl_textbuf_puts(b, "- 不要使用这些词：");
      word_list(b, o->forbidden, o->n_forbidden, "、");
      vl_textbuf_puts(b, "。\n");
    }
    vl_textbuf_puts(b, "- 用中文回答。\n");
  } else {
    vl_textbuf_puts(b, "\nConstraints:\n");
    vl_textbuf_puts(b, "- Describe only what the visual text supports; do not invent objects, "
                       "people, text or brands.\n");
    vl_textbuf_puts(b, "- Cover the subject, the scene and the state (sizes, colours, "
                       "arrangement, actions).\n");
    if (o->n_keywords) {
      vl_textbuf_puts(b, "- Mention these key elements: ");
      word_list(b, o->keywords, o->n_keywords, ", ");
      vl_textbuf_puts(b, ".\n");
    }
    vl_textbuf_printf(b,
                      "- Length: about %d words%s (between %d and %d), one paragraph of "
                      "plain prose.\n",
                      mid, n_items > 1 ? " per description" : "", o->min_words, o->max_words);
    vl_textbuf_puts(b, "- Do not mention the caption, the markers or these instructions; no "
                       "lists, headings or quotes.\n");
    if (o->n_forbidden) {
      vl_textbuf_puts(b, "- Never use these words: ");
      word_list(b, o->forbidden, o->n_forbidden, ", ");
      vl_textbuf_puts(b, ".\n");
    }
    vl_textbuf_puts(b, "- Write in English.\n");
  }
}

char *vl_enrich_user_prompt_multi(const char *const *captions, size_t n,
                                  const vl_enrich_options *opt) {
  vl_enrich_options o = opt ? *opt : vl_enrich_default_options();
  if (!captions || n == 0) {
    vl_error(VL_ERR_INVALID, "enrich: no captions given");
    return NULL;
  }
  if (n > VL_ENRICH_ITEMS_MAX) {
    vl_error(VL_ERR_LIMIT, "enrich: %zu images in one call, at most %d", n, VL_ENRICH_ITEMS_MAX);
    return NULL;
  }
  if (check_options(&o) < 0) return NULL;
  int zh = o.lang == VL_ENRICH_ZH;
  vl_textbuf b = {0};
  if (n == 1)
    vl_textbuf_puts(&b, zh ? "你是一位专业的图像描述作者。请把下面这张图片的简短描述改写成一段"
                             "丰富、生动、忠实的描述。\n\n"
                           : "You are an expert visual describer. Rewrite the short caption of "
                             "the image below as one rich, vivid and faithful description.\n\n");
  else
    vl_textbuf_printf(&b,
                      zh ? "你是一位专业的图像描述作者。下面有%zu张图片，请把每张图片的简短描述"
                           "分别改写成一段丰富、生动、忠实的描述。\n\n"
                         : "You are an expert visual describer. Below are %zu separate images. "
                           "Rewrite the short caption of each one as its own rich, vivid and "
                           "faithful description.\n\n",
                      n);
  for (size_t i = 0; i < n; i++) {
    vl_enrich_elements e;
    if (vl_enrich_elements_extract(captions[i], &e) < 0) {
      vl_textbuf_free(&b);
      if (n > 1) vl_error_context("image %zu", i + 1);
      return NULL;
    }
    if (n > 1) vl_textbuf_printf(&b, "[%zu]\n", i + 1);
    visual_block(&b, &e, zh);
    if (n > 1 && i + 1 < n) vl_textbuf_puts(&b, "\n");
    vl_enrich_elements_free(&e);
  }
  constraints(&b, &o, n);
  if (n > 1)
    vl_textbuf_printf(&b,
                      zh ? "\n请给出%zu段描述，顺序与图片相同，每段单独成行，以“[1]”、“[2]”这样的"
                           "编号开头。只输出这些描述。"
                         : "\nAnswer with exactly %zu descriptions in the same order, each on "
                           "its own line starting with its number as [1], [2], and so on. "
                           "Output only the descriptions.",
                      n);
  else
    vl_textbuf_puts(&b, zh ? "\n只输出描述本身。" : "\nOutput only the description.");
  return vl_textbuf_take(&b);
}

char *vl_enrich_user_prompt(const char *caption, const vl_enrich_options *opt) {
  return vl_enrich_user_prompt_multi(&caption, 1, opt);
}

char *vl_enrich_chat_prompt(int t, const char *const *captions, size_t n,
                            const vl_enrich_options *opt) {
  vl_enrich_options o = opt ? *opt : vl_enrich_default_options();
  char *user = vl_enrich_user_prompt_multi(captions, n, &o);
  if (!user) return NULL;
  vl_chat_message m = {"user", user, NULL};
  vl_chat_options co = {1, o.enable_thinking ? 1 : 0};
  char *out = vl_chat_render((vl_chat_template)t, &m, 1, &co);
  free(user);
  return out;
}

/* ---- answer splitting ------------------------------------------------ */

/* If the line at p starts with item marker k, returns where its text
 * starts; else NULL. */
static const char *item_marker(const char *p, const char *line_end, size_t k) {
  while (p < line_end &&
         (*p == ' ' || *p == '\t' || *p == '#' || *p == '*' || *p == '-' || *p == '>'))
    p++;
  static const char *words[] = {"item", "image", "picture", "description", "第", "图片", "图"};
  int word = 0;
  for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
    size_t wl = strlen(words[i]);
    if ((size_t)(line_end - p) > wl && !strncasecmp(p, words[i], wl)) {
      p += wl;
      word = 1;
      break;
    }
  }
  while (word && p < line_end && *p == ' ')
    p++;
  int bracket = 0;
  if (p < line_end && (*p == '[' || *p == '(')) {
    bracket = *p == '[' ? ']' : ')';
    p++;
  }
  if (p >= line_end || !isdigit((unsigned char)*p)) return NULL;
  size_t v = 0;
  while (p < line_end && isdigit((unsigned char)*p) && v < 100000)
    v = v * 10 + (size_t)(*p++ - '0');
  if (v != k) return NULL;
  if (bracket) {
    if (p >= line_end || *p != bracket) return NULL;
    p++;
  } else if (!word) {
    /* A bare number needs its punctuation: "1." "1)" "1:" */
    if (p >= line_end || (*p != '.' && *p != ')' && *p != ':')) return NULL;
    p++;
  }
  /* Optional trailing punctuation and emphasis. */
  while (p < line_end &&
         (*p == '.' || *p == ':' || *p == ')' || *p == '*' || *p == ' ' || *p == '-' || *p == '\t'))
    p++;
  for (;;) {
    if (p < line_end && (*p == ':' || *p == ' '))
      p++;
    else if (line_end - p >= 3 && (!strncmp(p, "：", 3) || !strncmp(p, "张", 3) ||
                                   !strncmp(p, "、", 3) || !strncmp(p, "段", 3)))
      p += 3;
    else
      break;
  }
  return p;
}

static void append_text(vl_textbuf *b, const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
    p++;
  while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
    e--;
  if (p == e) return;
  if (b->len) vl_textbuf_append(b, " ", 1);
  vl_textbuf_append(b, p, (size_t)(e - p));
}

/* The end of the line starting at p: its '\n' or the final NUL. */
static const char *end_of_line(const char *p) {
  const char *le = strchr(p, '\n');
  return le ? le : p + strlen(p);
}

/* [p, le) holds nothing but spaces, tabs and CRs. */
static bool blank_line(const char *p, const char *le) {
  while (p < le && (*p == ' ' || *p == '\t' || *p == '\r'))
    p++;
  return p == le;
}

static char *take_or_empty(vl_textbuf *b) {
  char *s = vl_textbuf_take(b);
  return s;
}

int vl_enrich_split_items(const char *answer, size_t n, char **items) {
  if (!items) return vl_error(VL_ERR_INVALID, "enrich answer: no output given");
  for (size_t i = 0; i < n; i++)
    items[i] = NULL;
  if (!answer) return vl_error(VL_ERR_INVALID, "enrich answer: no text given");
  if (n == 0 || n > VL_ENRICH_ITEMS_MAX)
    return vl_error(VL_ERR_INVALID, "enrich answer: %zu items expected, need 1..%d", n,
                    VL_ENRICH_ITEMS_MAX);
  vl_textbuf *bufs = calloc(n, sizeof *bufs);
  if (!bufs) return vl_error(VL_ERR_NOMEM, "enrich answer: out of memory");
  size_t found = 0; /* items whose marker was seen */
  /* Pass 1: numbered markers. */
  for (const char *p = answer, *le; *p; p = *le ? le + 1 : le) {
    le = end_of_line(p);
    const char *text = found < n ? item_marker(p, le, found + 1) : NULL;
    if (text) {
      found++;
      append_text(&bufs[found - 1], text, le);
    } else if (found) {
      append_text(&bufs[found - 1], p, le);
    }
  }
  if (found == 0) {
    /* Pass 2: paragraphs (n > 1) or the whole answer (n == 1). */
    size_t paras = 0;
    int blank = 1;
    for (const char *p = answer, *le; *p; p = *le ? le + 1 : le) {
      le = end_of_line(p);
      if (blank_line(p, le)) {
        blank = 1;
      } else {
        if (blank) paras++;
        blank = 0;
      }
    }
    if (n == 1 || paras == n) {
      size_t cur = 0;
      blank = 1;
      for (const char *p = answer, *le; *p; p = *le ? le + 1 : le) {
        le = end_of_line(p);
        if (blank_line(p, le)) {
          blank = 1;
        } else {
          if (blank && bufs[cur].len && n > 1) cur++;
          blank = 0;
          append_text(&bufs[cur], p, le);
        }
      }
      found = n == 1 ? (bufs[0].len > 0) : n;
    }
  }
  int rc = (int)found;
  for (size_t i = 0; i < n; i++) {
    items[i] = take_or_empty(&bufs[i]);
    if (!items[i]) rc = VL_ERR_NOMEM;
  }
  free(bufs);
  if (rc < 0) {
    vl_enrich_items_free(items, n);
    return vl_error(VL_ERR_NOMEM, "enrich answer: out of memory");
  }
  return rc;
}

void vl_enrich_items_free(char **items, size_t n) {
  if (!items) return;
  for (size_t i = 0; i < n; i++) {
    free(items[i]);
    items[i] = NULL;
  }
}
