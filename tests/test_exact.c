/* Every registered EXACT kernel against the double-precision oracle, on every
 * mask it claims: forward O and lse, backward dQ/dK/dV, causal leakage and
 * thread-count determinism. New exact kernels are covered by registering them. */
#include "fixture.h"
#include "registry.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const masks[] = {"full", "causal", "window:wl=5,wr=3", "window:wl=16,wr=0",
                                    "window:w=2,causal=1"};
#define N_MASKS (sizeof masks / sizeof *masks)

static int is_competitor(const attn_kernel *k)
{
    return (k->flags & ATTN_EXACT) && !(k->flags & ATTN_REFERENCE);
}

static int claims(const attn_kernel *k, const attn_args *a)
{
    return attn_args_validate(k, a) == 0;
}

/* Forward of every exact kernel on one problem; returns how many kernels ran. */
static int check_forward(const attn_args *a, uint64_t seed, const char *what)
{
    fx_problem p;
    fx_make(&p, a, seed);
    int ran = 0;
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if (!is_competitor(*k) || !claims(*k, &p.a))
            continue;
        memset(p.o.data, 0xff, sizeof(float) * (size_t)(p.o.B * p.o.sb)); /* NaN: catch unwritten rows */
        int rc = fx_run(*k, &p, 0);
        cr_assert_eq(rc, 0, "%s %s: %s", (*k)->name, what, attn_last_error());
        double eo = fx_err_o(&p), el = fx_err_lse(&p);
        cr_assert(eo <= fx_tol_o(p.a.Nk), "%s %s: err_O %.3g > %.3g", (*k)->name, what, eo,
                  fx_tol_o(p.a.Nk));
        cr_assert(el <= 1e-5, "%s %s: err_lse %.3g", (*k)->name, what, el);
        ran++;
    }
    fx_free(&p);
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
            cr_assert_geq(check_forward(&a, 100 + (uint64_t)(iN * 4 + iD), what), 2, "%s", what);
        }
}

Test(exact, forward_matches_oracle_for_every_mask_at_129)
{
    for (size_t m = 0; m < N_MASKS; m++) {
        attn_args a = fx_args(1, 3, 3, 129, 129, 64, masks[m], 2);
        cr_assert_geq(check_forward(&a, 7 + m, masks[m]), 2);
    }
}

Test(exact, forward_matches_oracle_with_gqa)
{
    for (size_t m = 0; m < N_MASKS; m++) {
        attn_args a = fx_args(1, 8, 2, 130, 130, 32, masks[m], 2);
        cr_assert_geq(check_forward(&a, 11 + m, masks[m]), 2);
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
            cr_assert_geq(check_forward(&a, 31 + (uint64_t)s, what), 2, "%s", what);
        }
}

Test(exact, fully_masked_rows_give_zero_output_and_minus_inf_lse)
{
    /* Queries placed before every key with a causal window: rows 0..4 see nothing. */
    attn_args a = fx_args(1, 2, 2, 20, 20, 16, "causal", 1);
    a.q_off = -5;
    fx_problem p;
    fx_make(&p, &a, 5);
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if (!is_competitor(*k) || !claims(*k, &p.a))
            continue;
        cr_assert_eq(fx_run(*k, &p, 0), 0, "%s: %s", (*k)->name, attn_last_error());
        for (int64_t i = 0; i < 5; i++) {
            cr_assert(isinf(p.lse[i]) && p.lse[i] < 0, "%s: row %ld lse %g", (*k)->name, i, p.lse[i]);
            for (int64_t d = 0; d < 16; d++)
                cr_assert_eq(attn_at(&p.o, 0, 0, i)[d], 0.0f, "%s: row %ld not zero", (*k)->name, i);
        }
        cr_assert(fx_err_o(&p) <= fx_tol_o(20) && fx_err_lse(&p) <= 1e-5, "%s", (*k)->name);
    }
    fx_free(&p);
}

Test(exact, backward_matches_oracle_gradients)
{
    static const char *const bmasks[] = {"full", "causal", "window:wl=3,wr=2"};
    static const int64_t Ns[] = {7, 130}, Ds[] = {16, 80};
    for (int m = 0; m < 3; m++)
        for (int iN = 0; iN < 2; iN++)
            for (int iD = 0; iD < 2; iD++) {
                attn_args a = fx_args(1, 2, 1, Ns[iN], Ns[iN], Ds[iD], bmasks[m], 2);
                fx_problem p;
                fx_make(&p, &a, 77);
                int ran = 0;
                for (const attn_kernel *const *k = attn_registry(); *k; k++) {
                    if (!is_competitor(*k) || !(*k)->backward || !claims(*k, &p.a))
                        continue;
                    cr_assert_eq(fx_run(*k, &p, 1), 0, "%s: %s", (*k)->name, attn_last_error());
                    double e[3] = {fx_err_grad(&p.dq, &p.dq64), fx_err_grad(&p.dk, &p.dk64),
                                   fx_err_grad(&p.dv, &p.dv64)};
                    for (int i = 0; i < 3; i++)
                        cr_assert(e[i] <= 1e-4, "%s %s N=%ld D=%ld: d%c err %.3g", (*k)->name,
                                  bmasks[m], Ns[iN], Ds[iD], "QKV"[i], e[i]);
                    ran++;
                }
                cr_assert_geq(ran, 2);
                fx_free(&p);
            }
}

Test(exact, causal_outputs_ignore_future_keys_bitwise)
{
    const int64_t N = 97, t = 40;
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        attn_args a = fx_args(1, 2, 2, N, N, 32, "causal", 2);
        if (!is_competitor(*k) || !claims(*k, &a))
            continue;
        fx_problem p;
        fx_make(&p, &a, 3);
        cr_assert_eq(fx_run(*k, &p, 0), 0);
        float before[40 * 32];
        memcpy(before, attn_at(&p.o, 0, 1, 0), sizeof before);
        for (int64_t j = t; j < N; j++)
            for (int64_t d = 0; d < 32; d++) {
                attn_at(&p.k, 0, 1, j)[d] += 3.0f;
                attn_at(&p.v, 0, 1, j)[d] -= 5.0f;
                attn_at(&p.q, 0, 1, j)[d] *= -2.0f;
            }
        cr_assert_eq(fx_run(*k, &p, 0), 0);
        cr_assert(memcmp(before, attn_at(&p.o, 0, 1, 0), sizeof before) == 0,
                  "%s: rows < %ld changed when later rows did", (*k)->name, t);
        fx_free(&p);
    }
}

Test(exact, results_identical_with_one_and_two_threads)
{
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if (!is_competitor(*k) || !((*k)->flags & ATTN_DETERMINISTIC))
            continue;
        fx_problem p1, p2;
        attn_args a1 = fx_args(2, 4, 2, 130, 130, 64, "causal", 1), a2 = a1;
        a2.threads = 2;
        fx_make(&p1, &a1, 9);
        fx_make(&p2, &a2, 9);
        int bwd = (*k)->backward != NULL;
        cr_assert_eq(fx_run(*k, &p1, bwd), 0);
        cr_assert_eq(fx_run(*k, &p2, bwd), 0);
        cr_assert(fx_bitwise_equal(&p1.o, &p2.o), "%s: O differs across thread counts", (*k)->name);
        cr_assert(memcmp(p1.lse, p2.lse, sizeof(float) * 2 * 4 * 130) == 0, "%s: lse", (*k)->name);
        if (bwd)
            cr_assert(fx_bitwise_equal(&p1.dq, &p2.dq) && fx_bitwise_equal(&p1.dk, &p2.dk) &&
                          fx_bitwise_equal(&p1.dv, &p2.dv),
                      "%s: gradients differ across thread counts", (*k)->name);
        fx_free(&p1);
        fx_free(&p2);
    }
}
