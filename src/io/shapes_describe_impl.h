/* Pieces shared by the English (shapes_describe.c) and Chinese
 * (shapes_describe_zh.c) description grammars: the output buffer, the
 * seeded choice stream, object naming levels and the relation drawing. Both
 * grammars state the same facts; only the wording differs. Internal to io/. */
#ifndef VL_IO_SHAPES_DESCRIBE_IMPL_H
#define VL_IO_SHAPES_DESCRIBE_IMPL_H

#include <stddef.h>

#include "io/rng.h"
#include "io/shapes_describe.h"

#define VL_DESC_MAX 2048

typedef struct {
  char s[VL_DESC_MAX];
  size_t n;
  int over;
  size_t sent; /* start of the current sentence */
} vl_dbuf;

void vl_dbuf_put(vl_dbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef struct {
  const vl_shapes_scene *sc;
  int k;
  vl_rng rng;
} vl_desc_ctx;

/* Uniform choice in 0..n-1 from the description's stream. */
int vl_desc_pick(vl_desc_ctx *c, int n);
/* Same colour and shape / same size, colour and shape. */
int vl_desc_same_csh(const vl_shapes_object *a, const vl_shapes_object *b);
int vl_desc_same_full(const vl_shapes_object *a, const vl_shapes_object *b);
/* 1: "colour shape" unique in the scene, 2: "size colour shape" unique, 0:
 * neither (no relation is stated about the object). */
int vl_desc_name_level(const vl_desc_ctx *c, int i);
/* Whether object i repeats the size, colour and shape of one of shown[]. */
int vl_desc_again(const vl_desc_ctx *c, int i, const int *shown, int n_shown);

typedef struct {
  int a, b; /* subject, object */
  int h, v; /* -1 left/above, +1 right/below, 0 not stated */
} vl_desc_relation;

/* Draws up to `want` relations between nameable objects that hold by the
 * spec's 2 px rule. Returns how many. */
int vl_desc_draw_relations(vl_desc_ctx *c, vl_desc_relation *out, int want);

/* Per language: the text of one scene into b. */
void vl_describe_en(vl_dbuf *b, vl_desc_ctx *c, vl_describe_mode mode);
void vl_describe_zh(vl_dbuf *b, vl_desc_ctx *c, vl_describe_mode mode);
/* Removes the Chinese grammar's word marks, or (segmented) turns each run
 * of them into one line break. */
void vl_describe_zh_finish(vl_dbuf *b, int segmented);

#endif
