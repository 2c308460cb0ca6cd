/* Checks every kernel on 16-bit operands (kernels/core/lowp.h) passes:
 * its result equals, bit for bit, its fp32 pass on the same values widened
 * by the plain loop, rounded once to the type, and matches its reference on
 * the rounded operands within that rounding. */
#ifndef ATTN_TEST_LOWP_CHECK_H
#define ATTN_TEST_LOWP_CHECK_H

#include "harness/measure/fixture.h"

/* Kernel k on problem a in type t (forward, and backward when k has one):
 * it reads only the 16-bit tensors (the fp32 Q, K, V, dO are NaN while it
 * runs); O, the LSE and dQ, dK, dV equal the fp32 pass's rounded to t; O is
 * within the fp32 tolerance plus one unit roundoff of the reference on the
 * rounded operands, the LSE (softmax kernels) within 1e-5. `what` names the case. */
void lowp_assert_equals_fp32_on_widened(const attn_kernel *k, attn_args a, attn_dtype t, const char *what);

/* The worst relative Frobenius error of k's O against the oracle on the
 * unrounded gaussian inputs (check's fidelity measure) over seeds 1..seeds:
 * what a 16-bit operand type or a stored KV format costs. */
double lowp_worst_gaussian_error(const attn_kernel *k, const attn_args *a, int seeds);

/* ||x - ref||_F / ||ref||_F */
double lowp_rel_fro(const attn_tensor *x, const attn_tensor_f64 *ref);

#endif
