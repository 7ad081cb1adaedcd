#include "models/weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"

static const char *shape_text(int ndim, const int64_t *shape, char *buf, size_t n) {
  size_t off = (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < ndim && off < n; i++)
    off += (size_t)snprintf(buf + off, n - off, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (off < n) snprintf(buf + off, n - off, "]");
  return buf;
}

vl_tensor *vl_weight(vl_weights *w, const char *name, int ndim, const int64_t *shape, int flags) {
  const vl_st_tensor *st = vl_ckpt_find(w->ck, name);
  if (!st) {
    if (flags & VL_W_OPTIONAL) {
      vl_clear_error();
      return NULL;
    }
    return NULL; /* vl_ckpt_find named the checkpoint and tensor */
  }
  bool same = st->ndim == ndim;
  for (int i = 0; same && i < ndim; i++) same = st->shape[i] == shape[i];
  if (!same) {
    char want[128], got[128];
    vl_error(VL_ERR_FORMAT, "%s: tensor '%s': expected shape %s, found %s", vl_ckpt_path(w->ck),
             name, shape_text(ndim, shape, want, sizeof want),
             shape_text(st->ndim, st->shape, got, sizeof got));
    return NULL;
  }
  if (st->dtype != VL_F32 && st->dtype != VL_BF16 && st->dtype != VL_F16) {
    vl_error(VL_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s is not a float weight type",
             vl_ckpt_path(w->ck), name, vl_dtype_name(st->dtype));
    return NULL;
  }
  bool widen = w->trainable || (flags & VL_W_F32) || ndim < 2;
  size_t esize = vl_dtype_size(st->dtype);
  vl_tensor *t;
  if (widen && st->dtype != VL_F32) {
    vl_tensor tmp = {.dtype = st->dtype, .ndim = ndim, .data = (void *)st->data};
    for (int i = 0; i < ndim; i++) tmp.shape[i] = shape[i];
    tmp.numel = (int64_t)(st->nbytes / esize);
    /* vl_get reads 16-bit values through memcpy-free loads; copy first when
     * the mmap'd data is misaligned for them. */
    if ((uintptr_t)st->data % esize) {
      void *aligned = vl_ctx_alloc(w->ctx, st->nbytes);
      if (!aligned) return NULL;
      memcpy(aligned, st->data, st->nbytes);
      tmp.data = aligned;
    }
    t = vl_clone_f32(w->ctx, &tmp);
  } else if ((uintptr_t)st->data % esize || w->trainable) {
    /* Typed access needs element alignment (the kernels use unaligned
     * vector loads, so no more; Hub files put tensors 8 bytes apart, and
     * copying them doubled the resident weights); training mutates: copy. */
    t = vl_new(w->ctx, st->dtype, ndim, shape);
    if (t) memcpy(t->data, st->data, st->nbytes);
  } else {
    t = vl_wrap(w->ctx, st->dtype, ndim, shape, (void *)st->data);
  }
  if (!t) return NULL;
  t->name = st->name;
  if (w->trainable) {
    t->requires_grad = true;
    if (!vl_grad(w->ctx, t)) return NULL;
  }
  return t;
}

vl_tensor *vl_weight2(vl_weights *w, int flags, int64_t d0, int64_t d1, const char *fmt, ...) {
  char name[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  int64_t shape[2] = {d0, d1};
  return vl_weight(w, name, 2, shape, flags);
}

vl_tensor *vl_weight1(vl_weights *w, int flags, int64_t d0, const char *fmt, ...) {
  char name[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  int64_t shape[1] = {d0};
  return vl_weight(w, name, 1, shape, flags);
}
