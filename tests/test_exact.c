/* Every registered EXACT kernel against the double-precision oracle, on every
 * mask case of `attnbench check` it claims: forward O and lse on sizes, GQA
 * and cross lengths, backward dQ/dK/dV. New exact kernels are covered by
 * registering them. Leakage, masked rows and thread determinism are
 * properties of every kernel (test_properties.c). */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "kernels/core/registry.h"

#include <criterion/criterion.h>
#include <stdio.h>

static int is_competitor(const attn_kernel *k)
{
    return (k->flags & ATTN_EXACT) && !(k->flags & ATTN_REFERENCE);
}

/* A mask that cannot bind to the shape (a question longer than N) is not a case. */
static int mask_fits(const attn_args *a) { return attn_args_validate(NULL, a) == 0; }

/* Forward of every exact kernel claiming the problem; returns how many ran
 * (2 when the mask does not fit the shape, so the callers' checks hold). */
static int forward_all(const attn_args *a, uint64_t seed, const char *what)
{
    int ran = 0;
    if (!mask_fits(a))
        return 2;
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if (!is_competitor(*k) || attn_args_validate(*k, a) != 0)
            continue;
        double eo, el;
        int rc = check_kernel_forward(*k, a, seed, &eo, &el);
        cr_assert_eq(rc, 0, "%s %s: %s", (*k)->name, what, attn_last_error());
        cr_assert(eo <= fx_tol_o(a->Nk), "%s %s: err_O %.3g > %.3g", (*k)->name, what, eo, fx_tol_o(a->Nk));
        cr_assert(el <= 1e-5, "%s %s: err_lse %.3g", (*k)->name, what, el);
        ran++;
    }
    return ran;
}

Test(exact, forward_matches_oracle_on_every_claimed_mask, .timeout = 120)
{
    static const int64_t Ns[] = {1, 7, 64, 129, 513}, Ds[] = {16, 64, 80, 128};
    for (int iN = 0; iN < 5; iN++)
        for (int iD = 0; iD < 4; iD++) {
            const char *m = check_mask_cases[(size_t)(iN + iD) % check_mask_case_count()];
            char what[160];
            snprintf(what, sizeof what, "B=2 H=2 N=%ld D=%ld mask=%s", Ns[iN], Ds[iD], m);
            attn_args a = fx_args(2, 2, 2, Ns[iN], Ns[iN], Ds[iD], m, 2);
            cr_assert_geq(forward_all(&a, 100 + (uint64_t)(iN * 4 + iD), what), 2, "%s", what);
        }
}

Test(exact, forward_matches_oracle_for_every_mask_at_129)
{
    for (size_t m = 0; check_mask_cases[m]; m++) {
        attn_args a = fx_args(1, 3, 3, 129, 129, 64, check_mask_cases[m], 2);
        cr_assert_geq(forward_all(&a, 7 + m, check_mask_cases[m]), 2);
    }
}

Test(exact, forward_matches_oracle_with_gqa)
{
    for (size_t m = 0; check_mask_cases[m]; m++) {
        attn_args a = fx_args(1, 8, 2, 130, 130, 32, check_mask_cases[m], 2);
        cr_assert_geq(forward_all(&a, 11 + m, check_mask_cases[m]), 2);
    }
}

Test(exact, forward_matches_oracle_with_cross_lengths)
{
    static const int64_t shapes[][2] = {{1, 300}, {16, 257}, {64, 97}};
    for (int s = 0; s < 3; s++)
        for (size_t m = 0; check_mask_cases[m]; m++) {
            attn_args a = fx_args(2, 2, 1, shapes[s][0], shapes[s][1], 64, check_mask_cases[m], 2);
            char what[96];
            snprintf(what, sizeof what, "Nq=%ld Nk=%ld %s", shapes[s][0], shapes[s][1], check_mask_cases[m]);
            cr_assert_geq(forward_all(&a, 31 + (uint64_t)s, what), 2, "%s", what);
        }
}

Test(exact, backward_matches_oracle_gradients)
{
    /* the shared cases, then variants of their kinds the gradients are also checked on */
    static const char *const variants[] = {"window:wl=3,wr=2", "fixed:l=8,c=2", "global:w=4,at=2+60",
                                           "document:n=4,seed=2", "prefix:p=5", "shared_question:q=4,answers=2",
                                           "random:p=0.2,seed=1"};
    const size_t n_shared = check_mask_case_count(), n_variants = sizeof variants / sizeof *variants;
    static const int64_t Ns[] = {7, 130}, Ds[] = {16, 80};
    for (size_t m = 0; m < n_shared + n_variants; m++)
        for (int iN = 0; iN < 2; iN++)
            for (int iD = 0; iD < 2; iD++) {
                const char *mask = m < n_shared ? check_mask_cases[m] : variants[m - n_shared];
                attn_args a = fx_args(1, 2, 1, Ns[iN], Ns[iN], Ds[iD], mask, 2);
                if (!mask_fits(&a))
                    continue;
                int ran = 0;
                for (const attn_kernel *const *k = attn_registry(); *k; k++) {
                    if (!is_competitor(*k) || !(*k)->backward || attn_args_validate(*k, &a) != 0)
                        continue;
                    double e[ATTN_CHECK_GRADS];
                    cr_assert_eq(check_kernel_backward(*k, &a, 77, e), 0, "%s: %s", (*k)->name,
                                 attn_last_error());
                    for (int i = 0; i < 3; i++)
                        cr_assert(e[i] <= 1e-4, "%s %s N=%ld D=%ld: d%c err %.3g", (*k)->name,
                                  mask, Ns[iN], Ds[iD], "QKV"[i], e[i]);
                    ran++;
                }
                cr_assert_geq(ran, 2);
            }
}
