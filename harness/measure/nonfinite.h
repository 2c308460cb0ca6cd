/* Non-finite values in what a kernel reads or writes. A NaN or an infinity
 * in a job's inputs or outputs makes its row an error (status
 * error:nonfinite: ...) instead of a timed success: the correctness gate
 * samples a few rows, so an overflow anywhere else would pass it, and a NaN
 * input would be timed on garbage. `attnbench check` names such outputs too.
 * Each function returns 1 and writes what it found into why (e.g. "nonfinite:
 * output O holds nan at b=0 h=1 n=5 d=2"; no commas, as results cells hold it)
 * when an element is not finite, 0 otherwise. */
#ifndef ATTN_NONFINITE_H
#define ATTN_NONFINITE_H

#include "kernels/core/attn.h"

#include <stddef.h>

/* The first non-finite element of t in (b, h, n, d) order; a tensor without
 * data has none. `what` names it ("input K"). */
int nonfinite_tensor(const attn_tensor *t, const char *what, char *why, size_t n);

/* Q, K, V and the per-token inputs the problem holds (beta, gate, router, w). */
int nonfinite_inputs(const attn_io *io, char *why, size_t n);

/* O, and the logsumexp of a: NaN or +inf there (-inf is a row without keys). */
int nonfinite_outputs(const attn_io *io, const attn_args *a, char *why, size_t n);

/* The gradients a backward wrote (dQ, dK, dV and those of the extra inputs). */
int nonfinite_grads(const attn_grads *g, char *why, size_t n);

#endif
