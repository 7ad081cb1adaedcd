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
 * description never names a colour or shape absent from the scene. */
#ifndef VL_IO_SHAPES_DESCRIBE_H
#define VL_IO_SHAPES_DESCRIBE_H

#include <stdint.h>

#include "io/shapes_world.h"

typedef enum { VL_DESCRIBE_SCENE = 0, VL_DESCRIBE_CAPTION } vl_describe_mode;

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

/* The description (malloc'd, caller frees), or NULL + vl_error (NULL scene,
 * no objects, bad mode, no memory). */
char *vl_shapes_describe(const vl_shapes_scene *sc, vl_describe_mode mode, uint64_t seed);

#endif
