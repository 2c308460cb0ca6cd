/* Check fixture shared by `attnbench check` and the tests: a random attention problem in
 * fp32 (what the kernel sees), its double copy, the oracle's answers, and the
 * error measures of docs/kernel-interface.md. */
#ifndef ATTN_TEST_FIXTURE_H
#define ATTN_TEST_FIXTURE_H

#include "kernels/core/attn.h"

typedef struct {
    attn_args a;
    const attn_kernel *kernel; /* whose reference the *64 results are (NULL: the oracle) */
    attn_tensor q, k, v, o, d_o, dq, dk, dv;   /* fp32, contiguous [B,H,N,D]; V, O: Dv columns */
    attn_tensor beta, gate, dbeta, dgate;      /* the kernel's ATTN_IN_* inputs (data NULL if none) */
    attn_tensor router, w, drouter, dw;
    float *lse;
    attn_tensor_f64 q64, k64, v64, o64, do64, dq64, dk64, dv64;
    attn_tensor_f64 beta64, gate64, dbeta64, dgate64;
    attn_tensor_f64 router64, w64, drouter64, dw64;
    double *lse64;
    int grads_ready;           /* dq64.. hold the reference gradients */
} fx_problem;

/* Shapes from `a` (defaults applied); inputs U(-1,1) and dO U(-1,1) from `seed`.
 * The oracle's forward (and backward) results are computed once here. */
void fx_make(fx_problem *p, const attn_args *a, uint64_t seed);

/* Same for kernel k: allocates its ATTN_IN_* inputs (beta = sigmoid(U(-3,3)),
 * log gates U(-1,-0.001), router logits U(-2,2), weights from k->init_weights
 * or U(-1,1)/sqrt(D)) and O with attn_o_rows rows. With k->ref_forward the
 * reference output is the kernel's own double reference (lse64 stays 0 unless
 * the reference writes it); the reference gradients
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

/* Runs the kernel's forward (and backward if `with_backward`) on p's fp32
 * tensors. Returns the kernel's code (0 ok). */
int fx_run(const attn_kernel *k, fx_problem *p, int with_backward);

/* max|O - O_ref| / max|V| (O is a convex combination of V rows);
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
