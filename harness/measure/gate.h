/* Correctness gate before timing (docs/measurement.md). A softmax kernel's output is
 * compared with the double-precision oracle on a few sampled query rows, so
 * even N = 64K problems are checked without an O(N^2) oracle run. A kernel
 * with its own double reference (ref_forward: linear, recurrent, sigmoid ...)
 * is compared with that reference on sampled heads, over a prefix of the
 * sequence when the mask is causal, and its distance from softmax attention
 * on the sampled rows is reported as fidelity (softmax_rel_err). A kernel
 * reading a low-precision KV cache (attn_args.kv_dtype) is compared with the
 * oracle on the cache's values, and its distance from the oracle on the
 * unrounded K and V is its softmax_rel_err; likewise a kernel on bf16 or fp16
 * operands (attn_args.dtype) against the oracle on the rounded and on the
 * unrounded Q, K, V. */
#ifndef ATTN_GATE_H
#define ATTN_GATE_H

#include "kernels/core/attn.h"

typedef struct {
    double err;          /* gate error: see gate_check */
    double tol;          /* what err must not exceed */
    double softmax_rel;  /* ||O - O_softmax||_F / ||O_softmax||_F on the sampled rows (O_softmax from the
                            unrounded K and V); NAN: not measured */
} gate_result;

/* Softmax kernels: max over sampled rows (first, middle, last query of up to
 * 4 (b, h) heads) of |O - O_ref| / max|V of that KV head|; lse checked too
 * (+inf when an lse of -inf does not match). Own-reference kernels: max
 * |O - O_ref| / max|O_ref| over the sampled heads' rows (non-convex outputs). */
/* io: the values the kernel computed on (problem_io_read) and its outputs as
 * floats; exact: the unrounded Q, K, V when they differ (16-bit operands,
 * attn_args.dtype), else NULL. With 16-bit operands the tolerance grows by
 * the type's unit roundoff (O is rounded once when written). */
void gate_check(const attn_kernel *k, const attn_args *a, const attn_io *io, const attn_io *exact, gate_result *r);

#endif
