/* Checks of an exact kernel against the double oracle, shared by the tests of
 * the kernels built on the flash tiling: forward O and lse, gradients, and
 * the oracle's loss for central differences. */
#ifndef ATTN_TEST_EXACT_CHECK_H
#define ATTN_TEST_EXACT_CHECK_H

#include "harness/measure/fixture.h"
#include "kernels/core/oracle.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

/* Forward on a fresh problem; asserts err_O <= fx_tol_o and err_lse <= 1e-5. */
static inline void exact_check_forward(const attn_kernel *k, const attn_args *a, uint64_t seed, const char *what)
{
    fx_problem p;
    fx_make(&p, a, seed);
    cr_assert_eq(fx_run(k, &p, 0), 0, "%s: %s", what, attn_last_error());
    double eo = fx_err_o(&p), el = fx_err_lse(&p);
    cr_assert(eo <= fx_tol_o(p.a.Nk), "%s: err_O %.3g > %.3g", what, eo, fx_tol_o(p.a.Nk));
    cr_assert(el <= 1e-5, "%s: err_lse %.3g", what, el);
    fx_free(&p);
}

/* exact_check_forward for every mask of masks[0..n) at B = 2, H = H_kv = 2 and
 * Nq = Nk = 1, 37, 100, 129, 257 (D alternating 16 and 64) with `params`;
 * `runs` (when non-NULL) asserts that each case takes the path under test. */
static inline void exact_check_masks_by_length(const attn_kernel *k, const char *const *masks, int n,
                                               const char *params, int (*runs)(const attn_args *a), uint64_t seed)
{
    static const int64_t Ns[] = {1, 37, 100, 129, 257}, Ds[] = {16, 64};
    for (int m = 0; m < n; m++)
        for (int iN = 0; iN < 5; iN++) {
            int64_t D = Ds[(m + iN) % 2];
            char what[160];
            snprintf(what, sizeof what, "B=2 H=2 N=%ld D=%ld %s %s", (long)Ns[iN], (long)D, masks[m], params);
            attn_args a = fx_args_params(2, 2, 2, Ns[iN], Ns[iN], D, masks[m], 2, params);
            cr_assert(!runs || runs(&a), "%s: the path under test did not run", what);
            exact_check_forward(k, &a, seed + (uint64_t)(m * 5 + iN), what);
        }
}

/* Forward + backward; asserts the forward and dQ, dK, dV within 1e-4 of the oracle. */
static inline void exact_check_backward(const attn_kernel *k, const attn_args *a, uint64_t seed, const char *what)
{
    fx_problem p;
    fx_make(&p, a, seed);
    cr_assert_eq(fx_run(k, &p, 1), 0, "%s: %s", what, attn_last_error());
    cr_assert(fx_err_o(&p) <= fx_tol_o(p.a.Nk), "%s: forward err_O %.3g", what, fx_err_o(&p));
    double e[3] = {fx_err_grad(&p.dq, &p.dq64), fx_err_grad(&p.dk, &p.dk64), fx_err_grad(&p.dv, &p.dv64)};
    for (int i = 0; i < 3; i++)
        cr_assert(e[i] <= 1e-4, "%s: d%c err %.3g", what, "QKV"[i], e[i]);
    fx_free(&p);
}

/* L = sum(O * dO) in double through the oracle's forward on p's double inputs. */
static inline double exact_oracle_loss(const fx_problem *p)
{
    attn_tensor_f64 o = p->o64;
    o.data = malloc(sizeof(double) * (size_t)(o.B * o.sb));
    double *lse = malloc(sizeof(double) * (size_t)(p->a.B * p->a.H * p->a.Nq));
    attn_oracle_forward_f64(&p->a, &p->q64, &p->k64, &p->v64, &o, lse);
    double L = 0;
    for (int64_t i = 0; i < o.B * o.sb; i++)
        L += o.data[i] * p->do64.data[i];
    free(o.data);
    free(lse);
    return L;
}

#endif
