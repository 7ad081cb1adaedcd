#include "tensor/tensor.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/error.h"
#include "base/half.h"

/* Arena: a list of chunks, bump-allocated. A mark is the total number of
 * bytes handed out so far; reset rewinds the chunk that holds the mark and
 * keeps whole chunks past it on a spare list for the next allocations (a
 * training step or generation step reuses the same memory instead of paying
 * malloc + page faults every time; vl_ctx_free releases them). */
typedef struct chunk {
  struct chunk *prev;
  size_t cap, used;
  size_t base;   /* arena offset of this chunk's first byte */
  size_t mapped; /* bytes mmap'ed for it (huge pages), 0: from aligned_alloc */
  _Alignas(64) unsigned char mem[];
} chunk;

struct vl_ctx {
  chunk *top;
  chunk *spare; /* released by reset, linked through prev */
  size_t peak;
  bool recording;
  vl_node **tape;
  size_t n_tape, cap_tape;
};

/* Chunks start small (tests and tiny models make many contexts) and double
 * up to CHUNK_MAX, so a big forward pass needs few mallocs. */
enum { CHUNK_FIRST = 64u << 10, CHUNK_MAX = 64u << 20, ALIGN = 64 };

vl_ctx *vl_ctx_new(void) {
  vl_ctx *c = calloc(1, sizeof *c);
  if (!c) vl_error(VL_ERR_NOMEM, "out of memory creating a tensor context");
  return c;
}

/* Fresh memory is expensive: every first touch of a 4 KB page is a page
 * fault (~16 us here, so the 30 MB of one explained caption cost 120 ms of
 * kernel time, more than its arithmetic). Chunks of 2 MB and more are mapped
 * 2 MB aligned and advised to use transparent huge pages (one fault per
 * 2 MB), and chunks of freed contexts wait in a process-wide pool (up to
 * POOL_MAX bytes) for the next context: a generation's memory serves the
 * recorded forward after it, one forward per faithfulness step reuses the
 * previous one's. */
enum { HUGE = 2u << 20, POOL_MAX = 128u << 20, POOL_SLOTS = 64 };

/* An array, not a list through the chunks: leak checkers do not read mmap'ed
 * memory, so chunks reachable only through one would look leaked. */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static chunk *pool[POOL_SLOTS];
static int pool_n;
static size_t pool_bytes;

static chunk *chunk_new(size_t cap) {
  size_t need = (sizeof(chunk) + cap + ALIGN - 1) & ~(size_t)(ALIGN - 1);
  if (need >= HUGE) {
    size_t len = (need + HUGE - 1) & ~(size_t)(HUGE - 1);
    unsigned char *m =
        mmap(NULL, len + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) {
      size_t lead = (size_t)(-(uintptr_t)m & (HUGE - 1));
      if (lead) munmap(m, lead);
      munmap(m + lead + len, HUGE - lead);
      chunk *ch = (chunk *)(m + lead);
#ifdef MADV_HUGEPAGE
      madvise(ch, len, MADV_HUGEPAGE);
#endif
      ch->mapped = len;
      ch->cap = len - sizeof(chunk);
      return ch;
    }
  }
  /* smaller ones are faulted in by the mmap itself (MAP_POPULATE: a
   * quarter of the cost of faulting their pages one by one) */
  size_t len = (need + 4095) & ~(size_t)4095;
  unsigned char *m =
      mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (m != MAP_FAILED) {
    chunk *ch = (chunk *)m;
    ch->mapped = len;
    ch->cap = len - sizeof(chunk);
    return ch;
  }
  chunk *ch = aligned_alloc(ALIGN, need);
  if (ch) {
    ch->mapped = 0;
    ch->cap = cap;
  }
  return ch;
}

static void chunk_release(chunk *ch) {
  if (ch->mapped)
    munmap(ch, ch->mapped);
  else
    free(ch);
}

/* The smallest pooled chunk of at least `want` bytes, else NULL. */
static chunk *pool_take(size_t want) {
  pthread_mutex_lock(&pool_mu);
  int best = -1;
  for (int i = 0; i < pool_n; i++)
    if (pool[i]->cap >= want && (best < 0 || pool[i]->cap < pool[best]->cap)) best = i;
  chunk *ch = NULL;
  if (best >= 0) {
    ch = pool[best];
    pool[best] = pool[--pool_n];
    pool_bytes -= ch->cap;
  }
  pthread_mutex_unlock(&pool_mu);
  return ch;
}

static void free_chunks(chunk *ch) {
  while (ch) {
    chunk *p = ch->prev;
    pthread_mutex_lock(&pool_mu);
    bool keep = pool_n < POOL_SLOTS && pool_bytes + ch->cap <= POOL_MAX;
    if (keep) {
      pool[pool_n++] = ch;
      pool_bytes += ch->cap;
    }
    pthread_mutex_unlock(&pool_mu);
    if (!keep) chunk_release(ch);
    ch = p;
  }
}

void vl_ctx_free(vl_ctx *c) {
  if (!c) return;
  free_chunks(c->top);
  free_chunks(c->spare);
  free(c->tape);
  free(c);
}

void vl_ctx_set_recording(vl_ctx *c, bool on) { c->recording = on; }
bool vl_ctx_recording(const vl_ctx *c) { return c->recording; }
size_t vl_ctx_used(const vl_ctx *c) { return c->top ? c->top->base + c->top->used : 0; }
size_t vl_ctx_peak(const vl_ctx *c) { return c->peak; }
size_t vl_ctx_mark(const vl_ctx *c) { return vl_ctx_used(c); }

void vl_ctx_reset(vl_ctx *c, size_t mark) {
  /* Nodes whose memory is about to be released leave the tape first (their
   * headers live in the chunks freed below). */
  while (c->n_tape && c->tape[c->n_tape - 1]->at >= mark)
    c->n_tape--;
  while (c->top && c->top->base > mark) {
    chunk *p = c->top->prev;
    c->top->prev = c->spare;
    c->spare = c->top;
    c->top = p;
  }
  if (c->top && mark - c->top->base < c->top->used) c->top->used = mark - c->top->base;
}

static void *arena_alloc(vl_ctx *c, size_t bytes, bool zero);

void *vl_ctx_alloc(vl_ctx *c, size_t bytes) { return arena_alloc(c, bytes, true); }
void *vl_ctx_alloc_uninit(vl_ctx *c, size_t bytes) { return arena_alloc(c, bytes, false); }

static void *arena_alloc(vl_ctx *c, size_t bytes, bool zero) {
  bytes = (bytes + ALIGN - 1) & ~(size_t)(ALIGN - 1);
  if (!bytes) bytes = ALIGN;
  if (!c->top || c->top->cap - c->top->used < bytes) {
    size_t grow = c->top ? 2 * c->top->cap : CHUNK_FIRST;
    if (grow > CHUNK_MAX) grow = CHUNK_MAX;
    size_t cap = bytes > grow ? bytes : grow;
    size_t base = vl_ctx_used(c);
    chunk **sp = &c->spare, *ch = NULL;
    while (*sp && (*sp)->cap < bytes)
      sp = &(*sp)->prev;
    if (*sp) { /* reuse a released chunk (its pages are already mapped) */
      ch = *sp;
      *sp = ch->prev;
    } else if (!(ch = pool_take(cap))) {
      ch = chunk_new(cap);
    }
    if (!ch) {
      vl_error(VL_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
      return NULL;
    }
    /* A partly used chunk is abandoned; its tail counts as used so marks stay
     * monotonic. */
    if (c->top) base = c->top->base + c->top->cap;
    ch->prev = c->top;
    ch->used = 0;
    ch->base = base;
    c->top = ch;
  }
  void *p = c->top->mem + c->top->used;
  c->top->used += bytes;
  if (zero) memset(p, 0, bytes);
  size_t used = vl_ctx_used(c);
  if (used > c->peak) c->peak = used;
  return p;
}

static vl_tensor *new_header(vl_ctx *c, vl_dtype dtype, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > VL_MAX_DIMS) {
    vl_error(VL_ERR_INVALID, "tensor rank %d out of range (max %d)", ndim, VL_MAX_DIMS);
    return NULL;
  }
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0 || (shape[i] > 0 && n > INT64_MAX / 16 / shape[i])) {
      vl_error(VL_ERR_INVALID, "bad tensor dimension %lld", (long long)shape[i]);
      return NULL;
    }
    n *= shape[i];
  }
  vl_tensor *t = vl_ctx_alloc(c, sizeof *t);
  if (!t) return NULL;
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++)
    t->shape[i] = shape[i];
  t->numel = n;
  return t;
}

vl_tensor *vl_new(vl_ctx *c, vl_dtype dtype, int ndim, const int64_t *shape) {
  vl_tensor *t = new_header(c, dtype, ndim, shape);
  if (!t) return NULL;
  t->data = vl_ctx_alloc(c, vl_dtype_bytes(dtype, t->numel));
  return t->data ? t : NULL;
}

vl_tensor *vl_new_uninit(vl_ctx *c, vl_dtype dtype, int ndim, const int64_t *shape) {
  vl_tensor *t = new_header(c, dtype, ndim, shape);
  if (!t) return NULL;
  t->data = vl_ctx_alloc_uninit(c, (size_t)t->numel * vl_dtype_size(dtype));
  return t->data ? t : NULL;
}

vl_tensor *vl_new_f32(vl_ctx *c, int ndim, ...) {
  int64_t shape[VL_MAX_DIMS] = {0};
  va_list ap;
  va_start(ap, ndim);
  for (int i = 0; i < ndim && i < VL_MAX_DIMS; i++)
    shape[i] = va_arg(ap, int64_t);
  va_end(ap);
  return vl_new(c, VL_F32, ndim, shape);
}

vl_tensor *vl_wrap(vl_ctx *c, vl_dtype dtype, int ndim, const int64_t *shape, void *data) {
  vl_tensor *t = new_header(c, dtype, ndim, shape);
  if (t) t->data = data;
  return t;
}

float vl_get(const vl_tensor *t, int64_t i) {
  switch (t->dtype) {
  case VL_F32: return ((const float *)t->data)[i];
  case VL_F16: return vl_f16_to_f32(((const uint16_t *)t->data)[i]);
  case VL_BF16: return vl_bf16_to_f32(((const uint16_t *)t->data)[i]);
  case VL_I64: return (float)((const int64_t *)t->data)[i];
  case VL_I32: return (float)((const int32_t *)t->data)[i];
  case VL_U8: return (float)((const uint8_t *)t->data)[i];
  case VL_Q8_0: { /* block i / 32: f16 scale, then 32 int8 */
    const uint8_t *b = (const uint8_t *)t->data + (size_t)(i / 32) * 34;
    uint16_t d;
    memcpy(&d, b, 2);
    return vl_f16_to_f32(d) * (float)(int8_t)b[2 + i % 32];
  }
  }
  return 0;
}

vl_tensor *vl_clone_f32(vl_ctx *c, const vl_tensor *src) {
  if (!src) return NULL;
  vl_tensor *t = vl_new(c, VL_F32, src->ndim, src->shape);
  if (!t) return NULL;
  float *d = t->data;
  if (src->dtype == VL_F32)
    memcpy(d, src->data, (size_t)src->numel * sizeof(float));
  else
    for (int64_t i = 0; i < src->numel; i++)
      d[i] = vl_get(src, i);
  return t;
}

bool vl_same_shape(const vl_tensor *a, const vl_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return false;
  return true;
}

const char *vl_shape_str(const vl_tensor *t, char *buf, size_t n) {
  size_t off = 0;
  off += (size_t)snprintf(buf + off, n - off, "[");
  for (int i = 0; i < t->ndim && off < n; i++)
    off += (size_t)snprintf(buf + off, n - off, i ? ", %lld" : "%lld", (long long)t->shape[i]);
  if (off < n) snprintf(buf + off, n - off, "]");
  return buf;
}

vl_node *vl_record(vl_ctx *c, vl_tensor *out, const char *op, vl_backward_fn backward, int n_in,
                   vl_tensor *const *in) {
  if (!c->recording || !out) return NULL;
  bool any = false;
  for (int i = 0; i < n_in; i++)
    any |= in[i] && in[i]->requires_grad;
  if (!any) return NULL;
  if (c->n_tape == c->cap_tape) {
    size_t cap = c->cap_tape ? 2 * c->cap_tape : 256;
    vl_node **t = realloc(c->tape, cap * sizeof *t);
    if (!t) {
      vl_error(VL_ERR_NOMEM, "out of memory growing the tape");
      return NULL;
    }
    c->tape = t;
    c->cap_tape = cap;
  }
  size_t at = vl_ctx_used(c);
  vl_node *n = vl_ctx_alloc(c, sizeof *n);
  if (!n) return NULL;
  n->at = at;
  n->backward = backward;
  n->op = op;
  n->out = out;
  n->n_in = n_in < VL_NODE_MAX_IN ? n_in : VL_NODE_MAX_IN;
  for (int i = 0; i < n->n_in; i++)
    n->in[i] = in[i];
  out->requires_grad = true;
  out->node = n;
  c->tape[c->n_tape++] = n;
  return n;
}

float *vl_grad(vl_ctx *c, vl_tensor *t) {
  if (!t->grad) t->grad = vl_ctx_alloc(c, (size_t)t->numel * sizeof(float));
  return t->grad;
}

float *vl_grad_fresh(vl_ctx *c, vl_tensor *t, bool *fresh) {
  *fresh = !t->grad;
  if (!t->grad) t->grad = vl_ctx_alloc_uninit(c, (size_t)t->numel * sizeof(float));
  return t->grad;
}

int vl_backward(vl_ctx *c, vl_tensor *out, const float *dout) {
  if (!out) return vl_error(VL_ERR_INVALID, "backward of a failed forward");
  if (!out->requires_grad)
    return vl_error(VL_ERR_INVALID,
                    "backward: output does not depend on any tensor that requires grad");
  /* Intermediates start from zero on every backward (one backward per
   * explanation target reads fresh activation gradients); leaves accumulate. */
  for (size_t k = 0; k < c->n_tape; k++) {
    vl_tensor *t = c->tape[k]->out;
    if (t->grad) memset(t->grad, 0, (size_t)t->numel * sizeof(float));
  }
  float *g = vl_grad(c, out);
  if (!g) return VL_ERR_NOMEM;
  for (int64_t i = 0; i < out->numel; i++)
    g[i] += dout ? dout[i] : 1.0f;
  for (size_t k = c->n_tape; k-- > 0;) {
    vl_node *n = c->tape[k];
    if (!n->out->grad) continue; /* not on a path to out */
    n->backward(c, n);
  }
  return VL_OK;
}

/* Set of tensor pointers (open addressing, linear probing) for vl_backward_to. */
typedef struct {
  const vl_tensor **slot;
  size_t mask;
} tset;

static bool tset_init(tset *s, size_t n) {
  size_t cap = 64;
  while (cap < 2 * n)
    cap *= 2;
  s->slot = calloc(cap, sizeof *s->slot);
  s->mask = cap - 1;
  return s->slot != NULL;
}

static size_t tset_pos(const tset *s, const vl_tensor *t) {
  size_t h = ((uintptr_t)t >> 4) * 0x9E3779B97F4A7C15ull;
  size_t i = (h >> 17) & s->mask;
  while (s->slot[i] && s->slot[i] != t)
    i = (i + 1) & s->mask;
  return i;
}

static void tset_add(tset *s, const vl_tensor *t) { s->slot[tset_pos(s, t)] = t; }
static bool tset_has(const tset *s, const vl_tensor *t) { return s->slot[tset_pos(s, t)] != NULL; }

int vl_backward_to(vl_ctx *c, vl_tensor *out, const float *dout, vl_tensor *const *want,
                   int n_want) {
  if (!want) return vl_backward(c, out, dout);
  if (!out) return vl_error(VL_ERR_INVALID, "backward of a failed forward");
  if (!out->requires_grad)
    return vl_error(VL_ERR_INVALID,
                    "backward: output does not depend on any tensor that requires grad");
  /* needed: the wanted tensors and everything computed from them; an op runs
   * when one of its inputs is needed (it is then on a path from a wanted
   * tensor to out) and computes gradients for its needed inputs only */
  tset need;
  bool *run = calloc(c->n_tape + 1, sizeof *run);
  if (!run || !tset_init(&need, c->n_tape + (size_t)n_want)) {
    free(run);
    return vl_error(VL_ERR_NOMEM, "backward: out of memory");
  }
  for (int i = 0; i < n_want; i++)
    if (want[i]) tset_add(&need, want[i]);
  for (size_t k = 0; k < c->n_tape; k++) {
    const vl_node *n = c->tape[k];
    for (int i = 0; i < n->n_in && !run[k]; i++)
      run[k] = n->in[i] && tset_has(&need, n->in[i]);
    if (run[k]) tset_add(&need, n->out);
  }
  for (size_t k = 0; k < c->n_tape; k++) {
    vl_tensor *t = c->tape[k]->out;
    if (t->grad && tset_has(&need, t)) memset(t->grad, 0, (size_t)t->numel * sizeof(float));
  }
  int rc = VL_OK;
  if (tset_has(&need, out)) {
    float *g = vl_grad(c, out);
    if (!g) rc = VL_ERR_NOMEM;
    for (int64_t i = 0; g && i < out->numel; i++)
      g[i] += dout ? dout[i] : 1.0f;
  }
  for (size_t k = c->n_tape; !rc && k-- > 0;) {
    vl_node *n = c->tape[k];
    if (!run[k] || !n->out->grad) continue;
    bool saved[VL_NODE_MAX_IN];
    for (int i = 0; i < n->n_in; i++) { /* inputs off the paths get no gradient */
      vl_tensor *x = n->in[i];
      saved[i] = x && x->requires_grad;
      if (saved[i] && !tset_has(&need, x)) x->requires_grad = false;
    }
    n->backward(c, n);
    for (int i = n->n_in; i-- > 0;) /* in reverse: an input may appear twice */
      if (n->in[i]) n->in[i]->requires_grad = saved[i];
  }
  free(need.slot);
  free(run);
  return rc;
}

void vl_zero_grads(vl_ctx *c) {
  for (size_t k = 0; k < c->n_tape; k++) {
    vl_node *n = c->tape[k];
    if (n->out->grad) memset(n->out->grad, 0, (size_t)n->out->numel * sizeof(float));
    for (int i = 0; i < n->n_in; i++)
      if (n->in[i] && n->in[i]->grad)
        memset(n->in[i]->grad, 0, (size_t)n->in[i]->numel * sizeof(float));
  }
}
