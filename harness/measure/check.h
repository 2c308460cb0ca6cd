/* Correctness checks of a kernel against the double-precision oracle
 * (docs/testing.md). The same functions back `attnbench check` and the
 * Criterion tests, so what the CLI verifies is what CI verifies. */
#ifndef ATTN_CHECK_H
#define ATTN_CHECK_H

#include "kernels/core/attn.h"

#include <stdio.h>

/* Forward on a random problem: err_O = max|O-O_ref|/max|V|, err_lse as in
 * fx_err_lse (+inf when a -inf row does not match). Returns the kernel's code. */
int check_kernel_forward(const attn_kernel *k, const attn_args *a, uint64_t seed, double *err_o,
                       double *err_lse);

/* Backward vs the reference gradients (the oracle's, or central differences of
 * the kernel's own double reference): err[0..6] = relative max error of dQ, dK,
 * dV, dbeta, dgate, drouter, dw (0 for inputs the kernel does not read). */
#define ATTN_CHECK_GRADS 7
int check_kernel_backward(const attn_kernel *k, const attn_args *a, uint64_t seed, double err[ATTN_CHECK_GRADS]);

/* Causal leakage: perturbing Q/K/V rows >= t leaves outputs of rows < t
 * bitwise unchanged. *ok = 1 when no leak. */
int check_kernel_causal_leakage(const attn_kernel *k, const attn_args *a, int64_t t, int *ok);

/* O, lse (and gradients when trainable) bitwise equal at 1 and `threads` threads. */
int check_kernel_thread_determinism(const attn_kernel *k, const attn_args *a, int threads, int *ok);

/* Fully masked rows: queries placed before every key under a causal mask get
 * O = 0 and lse = -inf. *ok = 1 when they do. */
int check_kernel_masked_rows(const attn_kernel *k, int threads, int *ok);

/* Runs the standard case table for kernel k (masks filtered by `mask_filter`
 * if not NULL), printing one line per case to `out`. Returns the number of
 * failed cases (0 = all pass), or a negative error code. */
int check_kernel_all(const attn_kernel *k, const char *mask_filter, int threads, FILE *out);

#endif
