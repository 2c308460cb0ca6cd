/* Every registered EXACT kernel against the double-precision oracle, on every
 * mask it claims: forward O and lse, backward dQ/dK/dV, causal leakage,
 * fully masked rows and thread-count determinism. New exact kernels are
 * covered by registering them. The checks are the ones `attnbench check` runs. */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "kernels/core/registry.h"

#include <criterion/criterion.h>
#include <stdio.h>

static const char *const masks[] = {"full", "causal", "window:wl=5,wr=3", "window:wl=16,wr=0",
                                    "window:w=2,causal=1", "dilated:w=3,dil=1+2+4", "strided:l=8",
                                    "fixed:l=8,c=2,split=1", "block:b=16,keep=0.3,seed=1,heads=1",
                                    "global:w=4,g=2", "bigbird:b=16,r=2,seed=1", "document:n=4,seed=3",
                                    "document:n=3,seed=5,causal=1", "prefix:p=20",
                                    "shared_question:q=4,answers=3", "sink:n=4,w=16", "random:p=0.1,seed=1"};
#define N_MASKS (sizeof masks / sizeof *masks)

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
            const char *m = masks[(size_t)(iN + iD) % N_MASKS];
            char what[160];
            snprintf(what, sizeof what, "B=2 H=2 N=%ld D=%ld mask=%s", Ns[iN], Ds[iD], m);
            attn_args a = fx_args(2, 2, 2, Ns[iN], Ns[iN], Ds[iD], m, 2);
            cr_assert_geq(forward_all(&a, 100 + (uint64_t)(iN * 4 + iD), what), 2, "%s", what);
        }
}

Test(exact, forward_matches_oracle_for_every_mask_at_129)
{
    for (size_t m = 0; m < N_MASKS; m++) {
        attn_args a = fx_args(1, 3, 3, 129, 129, 64, masks[m], 2);
        cr_assert_geq(forward_all(&a, 7 + m, masks[m]), 2);
    }
}

Test(exact, forward_matches_oracle_with_gqa)
{
    for (size_t m = 0; m < N_MASKS; m++) {
        attn_args a = fx_args(1, 8, 2, 130, 130, 32, masks[m], 2);
        cr_assert_geq(forward_all(&a, 11 + m, masks[m]), 2);
    }
}

Test(exact, forward_matches_oracle_with_cross_lengths)
{
    static const int64_t shapes[][2] = {{1, 300}, {16, 257}, {64, 97}};
    for (int s = 0; s < 3; s++)
        for (size_t m = 0; m < N_MASKS; m++) {
            attn_args a = fx_args(2, 2, 1, shapes[s][0], shapes[s][1], 64, masks[m], 2);
            char what[96];
            snprintf(what, sizeof what, "Nq=%ld Nk=%ld %s", shapes[s][0], shapes[s][1], masks[m]);
            cr_assert_geq(forward_all(&a, 31 + (uint64_t)s, what), 2, "%s", what);
        }
}

Test(exact, fully_masked_rows_give_zero_output_and_minus_inf_lse)
{
    attn_args causal = fx_args(1, 2, 2, 20, 20, 16, "causal", 2);
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if (!is_competitor(*k) || attn_args_validate(*k, &causal) != 0) /* e.g. streaming: its sink mask only */
            continue;
        int ok;
        cr_assert_eq(check_kernel_masked_rows(*k, 2, &ok), 0, "%s: %s", (*k)->name, attn_last_error());
        cr_assert(ok, "%s: fully masked rows are not O = 0, lse = -inf", (*k)->name);
    }
}

Test(exact, backward_matches_oracle_gradients)
{
    static const char *const bmasks[] = {"full", "causal", "window:wl=3,wr=2", "dilated:w=3,dil=2",
                                         "strided:l=8", "fixed:l=8,c=2", "block:b=16,keep=0.3,seed=1,heads=1",
                                         "global:w=4,at=2+60", "bigbird:b=16,r=2,seed=1",
                                         "document:n=3,seed=5,causal=1", "document:n=4,seed=2", "prefix:p=5",
                                         "shared_question:q=4,answers=2", "sink:n=4,w=16", "random:p=0.2,seed=1"};
    static const int64_t Ns[] = {7, 130}, Ds[] = {16, 80};
    for (int m = 0; m < (int)(sizeof bmasks / sizeof *bmasks); m++)
        for (int iN = 0; iN < 2; iN++)
            for (int iD = 0; iD < 2; iD++) {
                attn_args a = fx_args(1, 2, 1, Ns[iN], Ns[iN], Ds[iD], bmasks[m], 2);
                int ran = 0;
                for (const attn_kernel *const *k = attn_registry(); *k; k++) {
                    if (!is_competitor(*k) || !(*k)->backward || attn_args_validate(*k, &a) != 0)
                        continue;
                    double e[ATTN_CHECK_GRADS];
                    cr_assert_eq(check_kernel_backward(*k, &a, 77, e), 0, "%s: %s", (*k)->name,
                                 attn_last_error());
                    for (int i = 0; i < 3; i++)
                        cr_assert(e[i] <= 1e-4, "%s %s N=%ld D=%ld: d%c err %.3g", (*k)->name,
                                  bmasks[m], Ns[iN], Ds[iD], "QKV"[i], e[i]);
                    ran++;
                }
                cr_assert_geq(ran, 2);
            }
}

Test(exact, causal_outputs_ignore_future_rows_bitwise)
{
    attn_args a = fx_args(1, 2, 2, 97, 97, 32, "causal", 2);
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if (!is_competitor(*k) || attn_args_validate(*k, &a) != 0)
            continue;
        int ok;
        cr_assert_eq(check_kernel_causal_leakage(*k, &a, 40, &ok), 0);
        cr_assert(ok, "%s: rows < 40 changed when later rows did", (*k)->name);
    }
}

Test(exact, results_identical_with_one_and_two_threads)
{
    static const char *const dmasks[] = {"full", "causal"};
    for (int m = 0; m < 2; m++) {
        attn_args a = fx_args(2, 4, 2, 130, 130, 64, dmasks[m], 2);
        for (const attn_kernel *const *k = attn_registry(); *k; k++) {
            if (!is_competitor(*k) || !((*k)->flags & ATTN_DETERMINISTIC) || attn_args_validate(*k, &a) != 0)
                continue;
            int ok;
            cr_assert_eq(check_kernel_thread_determinism(*k, &a, 2, &ok), 0, "%s: %s", (*k)->name, attn_last_error());
            cr_assert(ok, "%s %s: outputs or gradients differ between 1 and 2 threads", (*k)->name,
                      dmasks[m]);
        }
    }
}
