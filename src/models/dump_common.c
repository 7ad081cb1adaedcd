#include "models/dump_common.h"

#include "base/error.h"

int vl_dump_add(vl_st_writer *w, const char *name, const vl_tensor *t, int ndim,
                const int64_t *shape) {
  if (!t) return vl_error(VL_ERR_INVALID, "dump: tensor '%s' was not produced", name);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  if (n != t->numel) return vl_error(VL_ERR_INVALID, "dump: tensor '%s': size mismatch", name);
  return vl_st_writer_add(w, name, t->dtype, ndim, shape, t->data);
}

vl_tensor *vl_dump_position_ids(vl_ctx *c, int64_t T) {
  vl_tensor *pos = vl_new(c, VL_I64, 1, &T);
  for (int64_t i = 0; pos && i < T; i++)
    ((int64_t *)pos->data)[i] = i;
  return pos;
}

int vl_dump_check_target(const vl_dump_opts *o, int64_t T, int64_t V, const char *who) {
  if (o->has_target &&
      (o->target_pos < 0 || o->target_pos >= T || o->target_id < 0 || o->target_id >= V))
    return vl_error(VL_ERR_INVALID,
                    "%s: target position %lld / id %lld outside the %lld tokens / vocabulary "
                    "of %lld",
                    who, (long long)o->target_pos, (long long)o->target_id, (long long)T,
                    (long long)V);
  return VL_OK;
}

int vl_dump_backward_at(vl_ctx *c, vl_tensor *score, int64_t at) {
  float *dout = vl_ctx_alloc(c, (size_t)score->numel * sizeof *dout);
  if (!dout) return vl_last_error_code();
  dout[at] = 1.0f;
  return vl_backward(c, score, dout);
}
