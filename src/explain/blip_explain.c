/* Targets and per-method inputs from one recorded BLIP forward (blip_explain.h). */
#include "explain/blip_explain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "explain/method.h"
#include "tensor/gemm.h"
#include "tensor/ops.h"

void vl_blip_explain_opts_init(vl_blip_explain_opts *o) {
  memset(o, 0, sizeof *o);
  o->layer = -1;
  o->head = -1;
}

int vl_blip_explain_check(const vl_blip *m, const vl_blip_explain_opts *o) {
  const int Lv = (int)m->vcfg.n_layers, Lt = (int)m->tcfg.n_layers;
  for (int k = 0; k < o->n_methods; k++) {
    if (!vl_explain_find(o->methods[k])) return vl_last_error_code();
    if (!strcmp(o->methods[k], "gradcam") && o->layer >= Lv)
      return vl_error(VL_ERR_INVALID, "gradcam: --layer %d, the vision tower has %d layers (0..%d)",
                      o->layer, Lv, Lv - 1);
    if (!strcmp(o->methods[k], "attention") && o->layer >= Lt)
      return vl_error(VL_ERR_INVALID,
                      "attention: --layer %d, the text decoder has %d layers (0..%d)", o->layer, Lt,
                      Lt - 1);
  }
  const int H = (int)(m->tcfg.n_heads < m->vcfg.n_heads ? m->tcfg.n_heads : m->vcfg.n_heads);
  if (o->head >= H)
    return vl_error(VL_ERR_INVALID, "--head %d: the model has %d heads (0..%d)", o->head, H, H - 1);
  return VL_OK;
}

void vl_blip_rec_free(vl_blip_rec *r) {
  if (!r) return;
  if (r->pack_scope) vl_gemm_pack_cache_end();
  vl_ctx_free(r->c);
  free(r->image_tokens);
  memset(r, 0, sizeof *r);
}

int vl_blip_record_image(const vl_blip *m, const vl_image *img, vl_blip_rec *r) {
  memset(r, 0, sizeof *r);
  r->m = m;
  if (m->kind != VL_BLIP_CAPTION)
    return vl_error(VL_ERR_UNSUPPORTED, "%s: explanations need a BLIP captioning model", m->dir);
  const int64_t P = m->vcfg.patch_size, S = m->vcfg.image_size;
  if (P <= 0 || S % P)
    return vl_error(VL_ERR_UNSUPPORTED, "%s: image size %lld is not a multiple of patch %lld",
                    m->dir, (long long)S, (long long)P);
  r->grid_w = r->grid_h = (int)(S / P);
  r->n_image = r->grid_w * r->grid_h;
  r->image_w = img->width;
  r->image_h = img->height;
  r->image_tokens = malloc((size_t)r->n_image * sizeof(int));
  r->c = vl_ctx_new();
  if (!r->image_tokens || !r->c) return vl_error(VL_ERR_NOMEM, "explain: out of memory");
  /* the weights stay as they are while the record lives: the backward per
   * target reuses their packed copies */
  vl_gemm_pack_cache_begin();
  r->pack_scope = true;
  for (int i = 0; i < r->n_image; i++)
    r->image_tokens[i] = i + 1; /* CLS is position 0 */
  vl_ctx *c = r->c;
  r->pixels = vl_blip_pixels(c, m, img, NULL);
  if (!r->pixels) return vl_last_error_code();
  const int Lv = (int)m->vcfg.n_layers, Lt = (int)m->tcfg.n_layers;
  vl_blip_run *run = &r->run;
  run->pixels = r->pixels;
  run->vision_layer_in = vl_ctx_alloc(c, (size_t)Lv * sizeof(vl_tensor *));
  run->vision_attn = vl_ctx_alloc(c, (size_t)Lv * sizeof(vl_tensor *));
  run->self_attn = vl_ctx_alloc(c, (size_t)Lt * sizeof(vl_tensor *));
  run->cross_attn = vl_ctx_alloc(c, (size_t)Lt * sizeof(vl_tensor *));
  if (!run->vision_layer_in || !run->vision_attn || !run->self_attn || !run->cross_attn)
    return vl_last_error_code();
  vl_ctx_set_recording(c, true);
  /* as vl_blip_forward's vision half */
  r->pixels->requires_grad = true;
  vl_vit_fwd vo = {.layer_in = run->vision_layer_in, .attn = run->vision_attn};
  run->vision_out = vl_vit_forward(c, &m->vision, r->pixels, &vo);
  if (!run->vision_out) return vl_error_context("%s: recorded forward", m->dir);
  return VL_OK;
}

int vl_blip_record_text(vl_blip_rec *r, const int64_t *ids, int64_t n) {
  const vl_blip *m = r->m;
  if (n < 1) return vl_error(VL_ERR_INVALID, "explain: empty token sequence");
  if (!r->run.vision_out) return vl_error(VL_ERR_INVALID, "explain: no recorded image");
  r->T = n;
  r->ids = vl_new(r->c, VL_I64, 1, &n);
  if (!r->ids) return vl_last_error_code();
  memcpy(r->ids->data, ids, (size_t)n * sizeof *ids);
  vl_blip_run *run = &r->run;
  run->ids = r->ids;
  /* as vl_blip_forward's text half */
  run->hidden =
      vl_blip_text_forward(r->c, m, r->ids, run->vision_out, true, run->self_attn, run->cross_attn);
  run->logits = run->hidden ? vl_blip_lm_head(r->c, m, run->hidden) : NULL;
  if (!run->logits) return vl_error_context("%s: recorded forward", m->dir);
  r->forwards++;
  return VL_OK;
}

int vl_blip_record(const vl_blip *m, const vl_image *img, const int64_t *ids, int64_t n,
                   vl_blip_rec *r) {
  if (n < 1) {
    memset(r, 0, sizeof *r);
    return vl_error(VL_ERR_INVALID, "explain: empty token sequence");
  }
  int rc = vl_blip_record_image(m, img, r);
  return rc ? rc : vl_blip_record_text(r, ids, n);
}

double vl_blip_logprob(const vl_blip_rec *r, int64_t query, int64_t id) {
  const int64_t V = r->m->tcfg.vocab;
  if (query < 0 || query >= r->T || id < 0 || id >= V) return NAN;
  const float *row = vl_f32(r->run.logits) + query * V;
  double mx = row[0], s = 0;
  for (int64_t v = 1; v < V; v++)
    if (row[v] > mx) mx = row[v];
  for (int64_t v = 0; v < V; v++)
    s += exp(row[v] - mx);
  if (!(s > 0)) return NAN; /* no vocabulary (s >= 1 otherwise) */
  return row[id] - mx - log(s);
}

static int check_target(const vl_blip_rec *r, const vl_blip_target *t) {
  if (!t || t->n < 1) return vl_error(VL_ERR_INVALID, "explain: empty target");
  for (int k = 0; k < t->n; k++)
    if (t->query[k] < 0 || t->query[k] >= r->T || t->id[k] < 0 || t->id[k] >= r->m->tcfg.vocab)
      return vl_error(VL_ERR_INVALID,
                      "explain: target position %lld / token %lld outside the %lld recorded "
                      "tokens / vocabulary",
                      (long long)t->query[k], (long long)t->id[k], (long long)r->T);
  return VL_OK;
}

/* One backward of the target's score; want: the tensors whose gradients
 * are read (NULL: all of them). */
static int target_backward(vl_blip_rec *r, const vl_blip_target *t, vl_tensor *const *want,
                           int n_want) {
  int rc = check_target(r, t);
  if (rc) return rc;
  vl_tensor *lg = r->run.logits;
  const int64_t V = r->m->tcfg.vocab;
  float *dout = calloc((size_t)lg->numel, sizeof *dout);
  if (!dout) return vl_error(VL_ERR_NOMEM, "explain: out of memory");
  for (int k = 0; k < t->n; k++)
    dout[t->query[k] * V + t->id[k]] += 1.0f; /* S = sum of the tokens' logits */
  /* the pixels are a leaf: their gradient would accumulate across targets */
  if (r->pixels->grad) memset(r->pixels->grad, 0, (size_t)r->pixels->numel * sizeof(float));
  rc = vl_backward_to(r->c, lg, dout, want, n_want);
  free(dout);
  if (rc) return rc;
  r->backwards++;
  return VL_OK;
}

int vl_blip_target_backward(vl_blip_rec *r, const vl_blip_target *t) {
  return target_backward(r, t, NULL, 0);
}

/* The recorded tensors whose gradients the methods read, into want (room
 * for vision + 2 x text layers + 2); returns how many. */
static int grads_read(const vl_blip_rec *r, const vl_blip_explain_opts *o, vl_tensor **want) {
  const int Lv = (int)r->m->vcfg.n_layers, Lt = (int)r->m->tcfg.n_layers;
  int n = 0;
  bool acts = false, attn = false, pixels = false;
  for (int k = 0; k < o->n_methods; k++) {
    const vl_explain_method *em = vl_explain_find(o->methods[k]);
    if (!em) continue;
    acts |= (em->needs & VL_NEEDS_ACTS) != 0;
    attn |= (em->needs & VL_NEEDS_ATTN_GRAD) != 0;
    pixels |= (em->needs & VL_NEEDS_PIXEL_GRAD) != 0;
  }
  int L = o->layer < 0 ? Lv - 1 : o->layer;
  if (acts && L < Lv) want[n++] = r->run.vision_layer_in[L];
  for (int l = 0; attn && l < Lv; l++)
    want[n++] = r->run.vision_attn[l];
  for (int l = 0; attn && l < Lt; l++) {
    want[n++] = r->run.self_attn[l];
    want[n++] = r->run.cross_attn[l];
  }
  if (pixels) want[n++] = r->pixels;
  return n;
}

void vl_blip_layer_name(const vl_blip_rec *r, const char *method, int layer, char *buf, int cap) {
  buf[0] = 0;
  if (!strcmp(method, "gradcam")) {
    int L = layer < 0 ? (int)r->m->vcfg.n_layers - 1 : layer;
    snprintf(buf, (size_t)cap, "vision.blocks.%d", L);
  } else if (!strcmp(method, "attention")) {
    int L = layer < 0 ? (int)r->m->tcfg.n_layers - 1 : layer;
    snprintf(buf, (size_t)cap, "text.layers.%d.crossattention", L);
  }
}

/* An attention stack over recorded tape tensors (batch item 0); head >= 0
 * views that head alone (heads are contiguous blocks of n_q x n_k). Layers
 * whose probabilities got no gradient (not on the score's path: the first
 * decoder self-attention reads only word embeddings) read `zeros`. */
typedef struct {
  const float **probs, **grads;
} stack_buf;

static int fill_stack(vl_attn_stack *s, stack_buf *b, vl_tensor *const *t, int L, int head,
                      bool grads, const float *zeros) {
  memset(s, 0, sizeof *s);
  b->probs = calloc((size_t)L, sizeof *b->probs);
  b->grads = calloc((size_t)L, sizeof *b->grads);
  if (!b->probs || !b->grads) return vl_error(VL_ERR_NOMEM, "explain: out of memory");
  int H = (int)t[0]->shape[1], nq = (int)t[0]->shape[2], nk = (int)t[0]->shape[3];
  if (head >= H)
    return vl_error(VL_ERR_INVALID, "explain: head %d, the model has %d heads (0..%d)", head, H,
                    H - 1);
  size_t off = head >= 0 ? (size_t)head * nq * nk : 0;
  for (int l = 0; l < L; l++) {
    b->probs[l] = vl_f32(t[l]) + off;
    b->grads[l] = t[l]->grad ? t[l]->grad + off : zeros;
  }
  s->n_layers = L;
  s->n_heads = head >= 0 ? 1 : H;
  s->n_q = nq;
  s->n_k = nk;
  s->probs = b->probs;
  s->grads = grads ? b->grads : NULL;
  return VL_OK;
}

static void free_stack(stack_buf *b) {
  free(b->probs);
  free(b->grads);
}

static int method_once(vl_blip_rec *r, const char *method, int layer, int head, uint64_t seed,
                       int64_t query, float *cells) {
  const vl_blip *m = r->m;
  const int Lv = (int)m->vcfg.n_layers, Lt = (int)m->tcfg.n_layers;
  const vl_explain_method *em = vl_explain_find(method);
  if (!em) return vl_last_error_code();
  vl_explain_input in;
  memset(&in, 0, sizeof in);
  in.arch = VL_ARCH_ENCODER_DECODER;
  in.grid_w = r->grid_w;
  in.grid_h = r->grid_h;
  in.query = (int)query;
  in.n_image = r->n_image;
  in.image_tokens = r->image_tokens;
  in.layer = -1;
  in.seed = seed;
  stack_buf bs = {0}, bc = {0}, bv = {0};
  int rc = VL_OK;
  float *zeros = NULL;
  const bool grads = em->needs & VL_NEEDS_ATTN_GRAD;
  if (em->needs & VL_NEEDS_ATTN) {
    size_t big = 1; /* the largest layer without a gradient */
    vl_tensor *const *all[3] = {r->run.self_attn, r->run.cross_attn, r->run.vision_attn};
    const int nl[3] = {Lt, Lt, Lv};
    for (int k = 0; k < 3; k++)
      for (int l = 0; grads && l < nl[k]; l++)
        if (!all[k][l]->grad && (size_t)all[k][l]->numel > big) big = (size_t)all[k][l]->numel;
    zeros = calloc(big, sizeof *zeros);
    if (!zeros) rc = vl_error(VL_ERR_NOMEM, "explain: out of memory");
    if (!rc) rc = fill_stack(&in.self, &bs, r->run.self_attn, Lt, head, grads, zeros);
    if (!rc) rc = fill_stack(&in.cross, &bc, r->run.cross_attn, Lt, head, grads, zeros);
    if (!rc) rc = fill_stack(&in.vision, &bv, r->run.vision_attn, Lv, head, grads, zeros);
    if (!rc && !strcmp(method, "attention")) {
      if (layer >= Lt)
        rc = vl_error(VL_ERR_INVALID, "explain: --layer %d, the text decoder has %d layers (0..%d)",
                      layer, Lt, Lt - 1);
      in.layer = layer;
    }
  }
  if (!rc && (em->needs & VL_NEEDS_ACTS)) {
    int L = layer < 0 ? Lv - 1 : layer;
    if (L >= Lv)
      rc = vl_error(VL_ERR_INVALID, "explain: --layer %d, the vision tower has %d layers (0..%d)",
                    layer, Lv, Lv - 1);
    vl_tensor *x = rc ? NULL : r->run.vision_layer_in[L];
    if (!rc && !x->grad)
      rc = vl_error(VL_ERR_INVALID, "explain: no gradient reached vision layer %d", L);
    if (!rc) {
      in.acts = vl_f32(x);
      in.acts_grad = x->grad;
      in.n_tokens = (int)x->shape[1];
      in.channels = (int)x->shape[2];
    }
  }
  if (!rc && (em->needs & VL_NEEDS_PIXEL_GRAD)) {
    if (!r->pixels->grad) rc = vl_error(VL_ERR_INVALID, "explain: no gradient reached the pixels");
    in.pixel_grad = r->pixels->grad;
    in.pix_c = (int)r->pixels->shape[1];
    in.pix_h = (int)r->pixels->shape[2];
    in.pix_w = (int)r->pixels->shape[3];
  }
  if (!rc) rc = em->run(&in, cells);
  free_stack(&bs);
  free_stack(&bc);
  free_stack(&bv);
  free(zeros);
  return rc;
}

int vl_blip_method_raw(vl_blip_rec *r, const vl_blip_target *t, const char *method, int layer,
                       int head, uint64_t seed, float *cells) {
  int rc = check_target(r, t);
  if (rc) return rc;
  const vl_explain_method *em = vl_explain_find(method);
  if (!em) return vl_last_error_code();
  const int n = r->n_image;
  if (em->needs == 0) /* random: one map per target */
    return method_once(r, method, layer, head,
                       seed ^ ((uint64_t)t->query[0] * 1000003u + (uint64_t)t->id[0]), 0, cells);
  const bool gradient = em->needs & (VL_NEEDS_ATTN_GRAD | VL_NEEDS_ACTS | VL_NEEDS_PIXEL_GRAD);
  /* gradcam / gradient do not read the query: once */
  const int reps = (em->needs & VL_NEEDS_ATTN) ? t->n : 1;
  float *tmp = malloc((size_t)n * sizeof *tmp);
  if (!tmp) return vl_error(VL_ERR_NOMEM, "explain: out of memory");
  for (int i = 0; i < n; i++)
    cells[i] = 0;
  for (int k = 0; !rc && k < reps; k++) {
    rc = method_once(r, method, layer, head, seed, t->query[k], tmp);
    for (int i = 0; !rc && i < n; i++)
      cells[i] += tmp[i];
  }
  /* attention methods: mean of the tokens' maps; relevancy (a gradient
   * method) sums the rows of the summed score's relevancy */
  if (!gradient)
    for (int i = 0; i < n; i++)
      cells[i] /= (float)reps;
  free(tmp);
  return rc;
}

static bool needs_grad(const char *method) {
  const vl_explain_method *em = vl_explain_find(method);
  return em && (em->needs & (VL_NEEDS_ATTN_GRAD | VL_NEEDS_ACTS | VL_NEEDS_PIXEL_GRAD));
}

int vl_blip_explain(vl_blip_rec *r, const vl_blip_target *t, const vl_blip_explain_opts *o,
                    vl_heatmap **maps) {
  int rc = check_target(r, t);
  if (rc) return rc;
  bool grad = false;
  for (int k = 0; k < o->n_methods; k++) {
    maps[k] = NULL;
    if (!vl_explain_find(o->methods[k])) return vl_last_error_code();
    grad |= needs_grad(o->methods[k]);
  }
  if (grad) {
    const int cap = (int)(r->m->vcfg.n_layers + 2 * r->m->tcfg.n_layers) + 2;
    vl_tensor **want = malloc((size_t)cap * sizeof *want);
    if (!want) return vl_error(VL_ERR_NOMEM, "explain: out of memory");
    rc = target_backward(r, t, want, grads_read(r, o, want));
    free(want);
    if (rc) return rc;
  }
  for (int k = 0; !rc && k < o->n_methods; k++) {
    char lname[VL_HEATMAP_NAME_MAX];
    vl_blip_layer_name(r, o->methods[k], o->layer, lname, sizeof lname);
    maps[k] = vl_heatmap_new(o->methods[k], lname, r->grid_w, r->grid_h, r->image_w, r->image_h);
    if (!maps[k]) {
      rc = vl_last_error_code();
      break;
    }
    rc = vl_blip_method_raw(r, t, o->methods[k], o->layer, o->head, o->seed, maps[k]->cells);
    if (!rc) {
      vl_postprocess pp = {.smooth_sigma = o->smooth, .sharpen_t = o->sharpen};
      rc = vl_heatmap_postprocess(maps[k], &pp);
    }
    if (rc) vl_error_context("explain: %s", o->methods[k]);
  }
  if (rc)
    for (int k = 0; k < o->n_methods; k++) {
      vl_heatmap_free(maps[k]);
      maps[k] = NULL;
    }
  return rc;
}

/* ---- faithfulness ------------------------------------------------------ */

typedef struct {
  vl_blip_rec *r;
  const vl_blip_target *t;
} faith_arg;

static double target_prob(const vl_image *masked, void *arg) {
  faith_arg *a = arg;
  vl_blip_rec *r = a->r;
  vl_ctx *c = vl_ctx_new();
  if (!c) return vl_error(VL_ERR_NOMEM, "faithfulness: out of memory");
  vl_blip_run run = {0};
  run.pixels = vl_blip_pixels(c, r->m, masked, NULL);
  run.ids = vl_wrap(c, VL_I64, 1, &r->T, r->ids->data);
  double p = -1;
  if (run.pixels && run.ids && vl_blip_forward(c, r->m, &run) == VL_OK) {
    const int64_t V = r->m->tcfg.vocab;
    double lp = 0;
    for (int k = 0; k < a->t->n; k++) {
      const float *row = vl_f32(run.logits) + a->t->query[k] * V;
      double mx = row[0], s = 0;
      for (int64_t v = 1; v < V; v++)
        if (row[v] > mx) mx = row[v];
      for (int64_t v = 0; v < V; v++)
        s += exp(row[v] - mx);
      lp += s > 0 ? row[a->t->id[k]] - mx - log(s) : NAN; /* s >= 1 with a vocabulary */
    }
    p = exp(lp);
  }
  vl_ctx_free(c);
  return p;
}

int vl_blip_faithfulness(vl_blip_rec *r, const vl_image *img, const vl_blip_target *t,
                         const vl_heatmap *map, uint64_t seed, vl_faithfulness *out) {
  int rc = check_target(r, t);
  if (rc) return rc;
  faith_arg a = {r, t};
  return vl_faithfulness_run(img, map, target_prob, &a, seed, out);
}
