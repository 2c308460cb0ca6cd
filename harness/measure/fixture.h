/* Check fixture shared by `attnbench check` and the tests: a problem (problem.h)
 * with its double twin, the reference answers in the twin, and the error
 * measures the tolerances are stated in. */
#ifndef ATTN_TEST_FIXTURE_H
#define ATTN_TEST_FIXTURE_H

#include "problem.h"

/* A problem whose twin's outputs (o64, lse64, dq64 ..) hold the reference's answers. */
typedef problem fx_problem;

/* Q/K/V only (no kernel inputs), with the oracle's forward and backward
 * results computed once here. Data: problem_make's seeding rule. */
void fx_make(fx_problem *p, const attn_args *a, uint64_t seed);

/* Same for kernel k: its ATTN_IN_* inputs and O with attn_o_rows rows. With
 * k->ref_forward the reference output is the kernel's own double reference
 * (lse64 stays 0 unless the reference writes it); the reference gradients
 * come later, on demand, from fx_ref_grads. Without it: as fx_make. */
void fx_make_for(fx_problem *p, const attn_kernel *k, const attn_args *a, uint64_t seed);

/* Reference gradients of L = sum(O .* dO) w.r.t. q, k, v, beta, gate, router, w: the
 * oracle's backward, or central differences of k->ref_forward in double
 * (h = 1e-6 max(1,|x|); two reference evaluations per input element, so keep
 * such problems small: B*H*N*D of a few thousand). */
void fx_ref_grads(fx_problem *p);

/* Reruns the reference forward after a test changed the fp32 inputs (the
 * double copies are refreshed from them). */
void fx_ref_forward(fx_problem *p);
void fx_free(fx_problem *p);

/* Convenience: args for B,H,H_kv,Nq,Nk,D with a parsed mask spec and threads. */
attn_args fx_args(int64_t B, int64_t H, int64_t H_kv, int64_t Nq, int64_t Nk, int64_t D,
                  const char *mask, int threads);

/* Adds "k=v k=v" kernel parameters to a (NULL: none); a parameter the bag
 * refuses is a test's own typo: it is printed and the process aborts. */
void fx_add_params(attn_args *a, const char *params);

/* fx_args then fx_add_params: the args of a kernel test in one call. */
attn_args fx_args_params(int64_t B, int64_t H, int64_t H_kv, int64_t Nq, int64_t Nk, int64_t D, const char *mask,
                         int threads, const char *params);

/* Runs the kernel's forward (and backward if `with_backward`) on p's fp32
 * tensors. Returns the kernel's code (0 ok). */
int fx_run(const attn_kernel *k, fx_problem *p, int with_backward);
/* fx_run with the context created without p's seq_len and kv_len, which are
 * bound to it afterwards: how a model plans once and binds each batch's
 * lengths. */
int fx_run_lengths_late(const attn_kernel *k, fx_problem *p, int with_backward);

/* max|O - O_ref| / max|V| (softmax outputs are convex combinations of V rows);
 * for a kernel with its own reference, / max|O_ref| (non-convex outputs). */
double fx_err_o(const fx_problem *p);
/* max over rows of |lse - lse_ref| / (1 + |lse_ref|); -inf rows must match
 * exactly, otherwise returns +inf. */
double fx_err_lse(const fx_problem *p);
/* max|g - g_ref| / max|g_ref| (0 if both are zero). */
double fx_err_grad(const attn_tensor *g, const attn_tensor_f64 *ref);

/* 1 if two fp32 tensors of the same shape are bitwise equal. */
int fx_bitwise_equal(const attn_tensor *x, const attn_tensor *y);

/* Tolerance for err_O at Nk keys: 2e-5 * max(1, sqrt(Nk/4096)). */
double fx_tol_o(int64_t Nk);

#endif
