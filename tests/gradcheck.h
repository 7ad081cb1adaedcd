/* Finite-difference gradient checks for ops (tests only).
 *
 * The scalar checked is s = sum(out * R) for a fixed random R, so every
 * output element takes part. Analytic: one recorded forward and vl_backward
 * with dout = R. Numeric: central differences (s(x+h) - s(x-h)) / 2h per
 * input element, forward passes without recording. */
#ifndef VL_TEST_GRADCHECK_H
#define VL_TEST_GRADCHECK_H

#include "tensor/tensor.h"

/* Builds the op's output from the inputs, in ctx c. */
typedef vl_tensor *(*gc_forward)(vl_ctx *c, vl_tensor **in, void *arg);

/* Fills t (F32) with uniform values in [lo, hi) from a fixed stream. */
void gc_fill(vl_tensor *t, unsigned seed, float lo, float hi);

/* Compares analytic and numeric gradients for every input whose
 * requires_grad is set. Inputs must be F32 tensors owned by the caller (not
 * in a ctx that f writes to). Returns the worst error over inputs, measured
 * as max_i |analytic_i - numeric_i| / max(max_i |numeric_i|, 1e-3); prints a
 * line per input when verbose or when the error exceeds tol. Returns a large
 * value if the forward fails. */
double gradcheck(const char *name, gc_forward f, void *arg, int n_in, vl_tensor **in, float h,
                 double tol);

#endif
