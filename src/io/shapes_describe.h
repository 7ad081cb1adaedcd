/* The description grammar for Shapes World: a fluent 2-4 sentence English
 * description of a scene, the target the embedded enrich LLM learns to write
 * from the spec's terse caption.
 *
 * Two modes, one grammar:
 *   VL_DESCRIBE_SCENE    everything the scene's ground truth supports:
 *                        counts, every object's size, colour, shape and
 *                        region of the canvas, and relations between
 *                        objects (left of / right of / above / below).
 *   VL_DESCRIBE_CAPTION  only what the caption determines (sizes, colours,
 *                        shapes, counts and the caption's left-to-right
 *                        order). A text-only LLM sees the caption and
 *                        nothing else, so this is the mode of its training
 *                        targets: teaching it the canvas regions would teach
 *                        it to guess them.
 *
 * Definitions (normative for this grammar):
 *   region: from the box centre (cx, cy); column left when cx < 32, centre
 *     when 32 <= cx < 64, right when cx >= 64; row top when cy < 32, middle
 *     when 32 <= cy < 64, bottom when cy >= 64 (thirds of the 96 px canvas).
 *     Phrases: "in the top left corner", "at the top", "in the top right
 *     corner", "on the left", "in the centre", "on the right", "in the
 *     bottom left corner", "at the bottom", "in the bottom right corner".
 *   relations: A is "to the left of" B when cx_B - cx_A > 2, "above" B when
 *     cy_B - cy_A > 2 (the spec's relation template rule); combined as
 *     "above and to the left of" when both hold. Objects are named in a
 *     relation as "the {colour} {shape}" when that pair is unique in the
 *     scene, else "the {size} {colour} {shape}" when that is unique, and
 *     never when neither is (no relation is stated about them).
 *   objects are always introduced as "{article} {size} {colour} {shape}";
 *     positions follow as "{size} {colour} {shape} {sits|is|lies|appears}
 *     {region phrase}"; counts as number words ("two circles").
 * The template choices (wording, connectives, which relations) come from a
 * seeded stream (io/rng.h), so (scene, mode, seed) gives one text. The
 * description never names a colour or shape absent from the scene.
 *
 * Chinese (VL_DESCRIBE_ZH, shapes_describe_zh.c): the same facts in the same
 * sentences (overview with counts, objects in caption order or by region,
 * extremes, sizes or colours, relations), written with the one word table
 * below and Chinese punctuation, no spaces:
 *   colours 红色 绿色 蓝色 黄色; shapes 圆形 正方形 三角形; sizes 小 大
 *   (attributive "小的" / "大的"); counts 一 两 三 四 with the measure word
 *   个; an object "一个大的红色圆形" (another of the same kind "另一个"), named
 *   in a relation as "红色圆形" or "大的红色圆形" by the rule above; regions
 *   左上角 上方中部 右上角 左侧中部 正中央 右侧中部 左下角 下方中部 右下角
 *   ("位于画面的左上角"); relations 左边 右边 上方 下方, combined 左上方 右上方
 *   左下方 右下方 ("红色圆形在蓝色正方形的左上方").
 * Colour and shape are always written together as "<colour><shape>" (e.g.
 * 红色圆形), the key element the evaluation looks for. */
#ifndef VL_IO_SHAPES_DESCRIBE_H
#define VL_IO_SHAPES_DESCRIBE_H

#include <stdint.h>

#include "io/shapes_world.h"

typedef enum { VL_DESCRIBE_SCENE = 0, VL_DESCRIBE_CAPTION } vl_describe_mode;
typedef enum { VL_DESCRIBE_EN = 0, VL_DESCRIBE_ZH } vl_describe_lang;

typedef enum {
  VL_REGION_TOP_LEFT = 0,
  VL_REGION_TOP,
  VL_REGION_TOP_RIGHT,
  VL_REGION_LEFT,
  VL_REGION_CENTRE,
  VL_REGION_RIGHT,
  VL_REGION_BOTTOM_LEFT,
  VL_REGION_BOTTOM,
  VL_REGION_BOTTOM_RIGHT,
  VL_REGION_COUNT
} vl_region;

/* Region of an object (row * 3 + column, see above). */
vl_region vl_shapes_region(const vl_shapes_object *o);
/* "in the top left corner", ... */
const char *vl_region_phrase(vl_region r);

/* The Chinese word table (the only one: grammar, metrics and evaluation
 * use it): "红色", "圆形", "大", "左上角". Out of range: "?". */
const char *vl_color_name_zh(vl_color c);
const char *vl_shape_name_zh(vl_shape s);
const char *vl_size_name_zh(vl_size s);
const char *vl_region_name_zh(vl_region r);
/* The Chinese word of an English world word ("red" -> "红色", "circle" ->
 * "圆形", "large" -> "大"), or NULL when it is none of them. */
const char *vl_shapes_word_zh(const char *en);

/* The description (malloc'd, caller frees), or NULL + vl_error (NULL scene,
 * no objects, bad mode or language, no memory). English and Chinese draw
 * from separate streams: the English text does not depend on the zh one. */
char *vl_shapes_describe_lang(const vl_shapes_scene *sc, vl_describe_mode mode,
                              vl_describe_lang lang, uint64_t seed);
/* The Chinese text of vl_shapes_describe_lang(.., VL_DESCRIBE_ZH, seed)
 * with a line break between words ("一个\n大的\n红色\n圆形"): for tokenizer
 * corpora, so that BPE learns word-sized Chinese tokens (the byte-level
 * pre-tokenizer keeps a run of CJK characters together, and merges learned
 * on whole clauses would fuse sizes, colours and shapes into one token). */
char *vl_shapes_describe_zh_words(const vl_shapes_scene *sc, vl_describe_mode mode, uint64_t seed);
/* English: vl_shapes_describe_lang(sc, mode, VL_DESCRIBE_EN, seed). */
char *vl_shapes_describe(const vl_shapes_scene *sc, vl_describe_mode mode, uint64_t seed);

#endif
