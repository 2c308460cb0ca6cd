/* `local_linear`: Local Linear Attention (Zuo et al. 2025; docs/kernels/local_linear.md),
 * explicit form (per-row Sigma and Cholesky), forward and backward. */
#ifndef ATTN_LOCAL_LINEAR_H
#define ATTN_LOCAL_LINEAR_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_local_linear;

/* The plain double reference: per query row the weighted ridge regression
 * with the centred Sigma and a pivoted Gaussian solve. Writes io->o and,
 * when non-NULL, io->lse (the normaliser of the softmax weights). */
int attn_local_linear_ref_forward(const attn_args *a, const attn_io64 *io);

/* Solves M x = r in place by Gaussian elimination with partial pivoting
 * (M n x n row-major, destroyed; r becomes x): the reference's solver. */
void attn_local_linear_solve_f64(double *M, double *r, int64_t n);

#endif
