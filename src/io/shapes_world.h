/* Shapes World v1 (docs: ../shared/spec/shapes-world.md): 96x96 scenes of
 * coloured circles, squares and triangles with exact masks, boxes, a caption
 * and entailment hypotheses with gold labels and referents.
 *
 * Reproducibility: scene (seed, index) is a pure function of those two numbers
 * and the options (io/rng.h). The image, objects and caption come from one
 * random stream and the hypotheses from another, so asking for more or fewer
 * hypotheses never changes the picture. Draw order within the scene stream:
 * background, k, then per object shape, colour, 3 shifts, size, extent and
 * up to 100 (x0, y0) tries; a failed placement or a chain of ties (the
 * pairwise left-to-right rule is not a total order) restarts from the
 * background. Then the noise, channel-interleaved in row-major order, drawn as
 * the integer round(N(0, 6^2)) by inverting its exact discrete CDF.
 *
 * Balanced hypotheses (the spec: "sets used for evaluation draw templates and
 * fillers so that the three labels are about equally frequent"):
 *   hypothesis j of scene index i targets label (i*K + j) mod 3 in the order
 *   entailment, neutral, contradiction, so any run of consecutive scenes is
 *   balanced to within one per label. For that label the generator lists
 *   every template that can produce it in this scene, picks one uniformly,
 *   then picks uniformly among the filler combinations that give the label:
 *     entailment:    exists / exists-sized (an object's attributes), count
 *                    (a shape present 2..4 times), relation (a true one);
 *     neutral:       unknowable about a (colour, shape) that occurs once;
 *     contradiction: exists / exists-sized (an absent combination), count
 *                    (a wrong number), relation (a false one), unknowable
 *                    about an absent (colour, shape).
 *   When the target label cannot be produced (neutral needs a (colour, shape)
 *   that occurs exactly once) the label is drawn uniformly from the other two.
 *   A draw that repeats a hypothesis already in the scene is redrawn (same
 *   label, up to 20 draws), so small K gives distinct texts. */
#ifndef VL_IO_SHAPES_WORLD_H
#define VL_IO_SHAPES_WORLD_H

#include <stdint.h>

#include "io/image.h"

#define VL_SHAPES_SIZE 96       /* canvas side, pixels */
#define VL_SHAPES_MAX_OBJECTS 4 /* the spec's k is at most 4 */
#define VL_SHAPES_TEXT_MAX 192  /* caption / hypothesis buffer, bytes */

typedef enum { VL_SHAPE_CIRCLE = 0, VL_SHAPE_SQUARE, VL_SHAPE_TRIANGLE, VL_SHAPE_COUNT } vl_shape;
typedef enum {
  VL_COLOR_RED = 0,
  VL_COLOR_GREEN,
  VL_COLOR_BLUE,
  VL_COLOR_YELLOW,
  VL_COLOR_COUNT
} vl_color;
typedef enum { VL_SIZE_SMALL = 0, VL_SIZE_LARGE, VL_SIZE_COUNT } vl_size;
typedef enum {
  VL_LABEL_ENTAILMENT = 0,
  VL_LABEL_NEUTRAL,
  VL_LABEL_CONTRADICTION,
  VL_LABEL_COUNT
} vl_label;
typedef enum {
  VL_TPL_EXISTS = 0,
  VL_TPL_EXISTS_SIZED,
  VL_TPL_COUNT,
  VL_TPL_RELATION,
  VL_TPL_UNKNOWABLE,
  VL_TPL_N
} vl_template;

typedef struct {
  vl_shape shape;
  vl_color color;
  vl_size size;
  int x0, y0, s;  /* box [x0, x0+s) x [y0, y0+s) */
  uint8_t rgb[3]; /* base colour plus this object's shift */
  double cx, cy;  /* box centre x0 + s/2, y0 + s/2 */
} vl_shapes_object;

typedef struct {
  char text[VL_SHAPES_TEXT_MAX];
  vl_label label;
  vl_template tpl;
  int n_referents;
  int referents[VL_SHAPES_MAX_OBJECTS]; /* caption-order indices, ascending */
} vl_shapes_hypothesis;

typedef struct {
  int n_objects;
  vl_shapes_object objects[VL_SHAPES_MAX_OBJECTS]; /* caption (left-to-right) order */
  uint8_t background[3];
  vl_image *image; /* 96x96 RGB, with noise */
  vl_image *clean; /* same before noise; only with opt.keep_clean, else NULL */
  vl_image *mask;  /* 96x96 grey: 0 background, i+1 for objects[i] */
  char caption[VL_SHAPES_TEXT_MAX];
  int n_hypotheses;
  vl_shapes_hypothesis *hypotheses;
  int redraws; /* whole-scene redraws (failed placement or chain of ties) */
} vl_shapes_scene;

typedef struct {
  int min_objects, max_objects; /* 1..4 (the spec); narrower for a curriculum */
  int n_hypotheses;             /* balanced hypotheses per scene, >= 0 */
  int keep_clean;               /* also keep the pre-noise image */
  /* Relative frequency of each template among those a hypothesis's label can
   * take in the scene (indexed by vl_template). All equal (the default, or
   * all 0): the spec's uniform pick. Training data only: evaluation sets keep
   * the spec's draw. */
  double template_weights[VL_TPL_N];
} vl_shapes_options;

/* The spec's defaults: 1..4 objects, 3 hypotheses, no clean copy. */
vl_shapes_options vl_shapes_default_options(void);

/* Scene `index` (>= 0) of the set drawn from `seed`; opt NULL = defaults.
 * NULL + vl_error on bad options or no memory. Thread-safe (no shared state),
 * so training code can draw batches in parallel. */
vl_shapes_scene *vl_shapes_generate(uint64_t seed, int64_t index, const vl_shapes_options *opt);
void vl_shapes_free(vl_shapes_scene *scene);

/* Whether the centre of pixel (px, py) is inside object o (the spec's
 * drawing rule, in exact integer arithmetic). */
int vl_shapes_covers(const vl_shapes_object *o, int px, int py);

/* Builds a hypothesis from a template and fillers and gives it its gold label
 * and referents. a/b are (colour, shape) of the first/second object named,
 * size for exists-sized, number 2..4 for count, word the index of the
 * relation (left of, right of, above, below) or property (made of wood, ...,
 * old). Returns VL_OK, or VL_ERR_INVALID when the spec does not emit this
 * hypothesis for this scene (relation / unknowable conditions). */
int vl_shapes_make_hypothesis(const vl_shapes_scene *sc, vl_template tpl, vl_color ca, vl_shape sa,
                              vl_size size, int number, int word, vl_color cb, vl_shape sb,
                              vl_shapes_hypothesis *out);

const char *vl_shape_name(vl_shape s); /* "circle" */
const char *vl_color_name(vl_color c); /* "red" */
const char *vl_size_name(vl_size s);   /* "small" */
const char *vl_label_name(vl_label l); /* "entailment" */

#define VL_SHAPES_N_RELATIONS 4
#define VL_SHAPES_N_PROPERTIES 6

/* One manifest.jsonl line (no newline) for scene number `number` (file names
 * scene_%05d.png); malloc'd, NULL + vl_error on no memory. */
char *vl_shapes_manifest_line(const vl_shapes_scene *sc, int64_t number);

/* Writes scenes index 0..n-1 of `seed` into dir (created when missing) as
 * scene_NNNNN.png / scene_NNNNN_mask.png with NNNNN = index + 1 (1-based, as
 * the spec's example scene_00001.png), and manifest.jsonl. Progress on
 * stderr. Returns VL_OK or a negative vl_status with the error recorded. */
int vl_shapes_write_set(const char *dir, uint64_t seed, int64_t n, const vl_shapes_options *opt);

#endif
