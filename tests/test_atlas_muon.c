/* `atlas` with opt=muon (the paper's step: W = alpha W - eta NS5(S)): the
 * chunked fp32 forward equals the token-by-token double reference (whose
 * Newton-Schulz iterations run on the untransposed memory), NS5 maps a
 * random momentum to singular values in [0.6, 1.2], gradients through the
 * iterations match central differences of the reference, and the memory
 * stays under the bound its bounded steps imply, even in the chunked form
 * that diverges with opt=gd. */
#include "kernels/atlas/atlas.h"
#include "kernels/atlas/atlas_internal.h"
#include "memory_kernel_checks.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K (&attn_kernel_atlas)

Test(atlas_muon, chunked_equals_token_by_token_reference, .timeout = 240)
{
    static const struct {
        int64_t H, H_kv, N, D, Dv;
        const char *mask, *params;
    } cases[] = {
        {2, 2, 1, 16, 16, "causal", "opt=muon chunk=1 window=4"},
        {2, 2, 7, 16, 16, "causal", "opt=muon chunk=1 window=4"},
        {4, 2, 70, 16, 24, "causal", "opt=muon chunk=4 window=8"},
        {4, 2, 130, 16, 16, "document:lens=50+1+79,causal=1", "opt=muon chunk=16 window=4"},
        {2, 2, 20, 32, 32, "causal", "opt=muon chunk=7 window=64"},
        {2, 1, 40, 8, 24, "causal", "opt=muon chunk=4 window=3 phi=identity"}, /* Dv > F */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        attn_args a = memory_args(1, cases[c].H, cases[c].H_kv, cases[c].N, cases[c].D, cases[c].Dv, cases[c].mask,
                                  cases[c].params);
        fx_problem p;
        fx_make_for(&p, K, &a, 30 + c);
        memset(p.o.data, 0xff, sizeof(float) * (size_t)(p.o.B * p.o.sb)); /* a forgotten row stays NaN */
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s: %s", cases[c].params, attn_last_error());
        double e = fx_err_o(&p);
        cr_assert(e <= 5e-5, "N%lld D%lld Dv%lld %s %s: err_O %.3g > 5e-5", (long long)cases[c].N,
                  (long long)cases[c].D, (long long)cases[c].Dv, cases[c].mask, cases[c].params, e);
        fx_free(&p);
    }
}

/* Largest and smallest singular value of Y (F x Dv, F >= Dv) by power iteration on Y^T Y. */
static void singular_range(const float *Y, int64_t F, int64_t Dv, double *smax, double *smin)
{
    double *M = calloc((size_t)(Dv * Dv), sizeof *M), *x = malloc(sizeof(double) * (size_t)Dv),
           *y = malloc(sizeof(double) * (size_t)Dv);
    for (int64_t i = 0; i < Dv; i++)
        for (int64_t j = 0; j < Dv; j++)
            for (int64_t f = 0; f < F; f++)
                M[i * Dv + j] += (double)Y[f * Dv + i] * Y[f * Dv + j];
    double lam[2] = {0, 0};
    for (int pass = 0; pass < 2; pass++) { /* pass 1 on lam[0] I - M: its top is lam[0] - smallest */
        for (int64_t i = 0; i < Dv; i++)
            x[i] = 1.0 + 0.01 * (double)i;
        for (int it = 0; it < 2000; it++) {
            double n = 0;
            for (int64_t i = 0; i < Dv; i++) {
                y[i] = pass ? lam[0] * x[i] : 0;
                for (int64_t j = 0; j < Dv; j++)
                    y[i] += (pass ? -1 : 1) * M[i * Dv + j] * x[j];
                n += y[i] * y[i];
            }
            n = sqrt(n);
            for (int64_t i = 0; i < Dv; i++)
                x[i] = y[i] / n;
            lam[pass] = n;
        }
    }
    *smax = sqrt(lam[0]), *smin = sqrt(fmax(lam[0] - lam[1], 0));
    free(M), free(x), free(y);
}

Test(atlas_muon, ns5_maps_a_random_momentum_to_singular_values_near_one, .timeout = 30)
{
    attn_args a = memory_args(1, 1, 1, 8, 8, 16, "causal", "opt=muon");
    atlas_plan pl;
    cr_assert_eq(atlas_plan_make(&pl, &a), 0, "%s", attn_last_error());
    size_t FDv = (size_t)(pl.F * pl.Dv);
    float *S = malloc(sizeof(float) * FDv), *Y = malloc(sizeof(float) * FDv);
    float *ws = malloc(sizeof(float) * atlas_ns5_floats(&pl));
    uint64_t r = 12345;
    for (int trial = 0; trial < 3; trial++) {
        for (size_t x = 0; x < FDv; x++) { /* U(-1, 1) scaled: NS5 ignores the scale */
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            S[x] = (float)(((double)(r >> 11) / 9007199254740992.0 * 2 - 1) * pow(10.0, trial - 1));
        }
        atlas_ns5(&pl, S, Y, ws);
        double smax, smin;
        singular_range(Y, pl.F, pl.Dv, &smax, &smin);
        cr_log_info("trial %d: singular values of NS5(S) in [%.3f, %.3f]", trial, smin, smax);
        cr_assert(smin >= 0.6 && smax <= 1.2, "trial %d: singular values [%.4f, %.4f] outside [0.6, 1.2]", trial,
                  smin, smax);
    }
    free(S), free(Y), free(ws);
}

Test(atlas_muon, backward_matches_central_differences_of_reference, .timeout = 240)
{
    /* N = 40 spans two backward blocks (32 keys); F = 8 < Dv = 12 on the identity map */
    static const memory_grad_case cases[] = {
        {2, 1, 5, 8, 8, "causal", "opt=muon chunk=1 window=3"},
        {4, 2, 9, 8, 8, "document:lens=4+5,causal=1", "opt=muon chunk=3 window=2"},
        {2, 1, 40, 4, 4, "causal", "opt=muon chunk=16 window=5"},
        {1, 1, 9, 8, 12, "causal", "opt=muon chunk=4 window=3 phi=identity"},
    };
    memory_backward_matches_reference(K, cases, sizeof cases / sizeof *cases);
}

/* The largest value five Newton-Schulz steps give a singular value in [0, 1]
 * (the map x -> a x + b x^3 + c x^5 iterated five times), on a fine grid. */
static double ns5_gain(void)
{
    double top = 0;
    for (int i = 0; i <= 100000; i++) {
        double x = i / 100000.0;
        for (int k = 0; k < ATLAS_NS_STEPS; k++)
            x = 3.4445 * x - 4.7750 * x * x * x + 2.0315 * x * x * x * x * x;
        top = fmax(top, fabs(x));
    }
    return top;
}

/* |W_t|_F <= alpha_t |W_{t-1}|_F + eta_t |NS5(S_t)|_F and |NS5(S)|_F <=
 * gain sqrt(min(F, Dv)): the memory's norm is bounded by its steps whatever
 * the gradients, so the chunked form (chunk 16, divergent with opt=gd) stays
 * bounded too. */
Test(atlas_muon, memory_is_bounded_by_its_steps_in_the_chunked_form, .timeout = 240)
{
    attn_args a = memory_args(1, 2, 2, 4096, 16, 16, "causal", "opt=muon chunk=16");
    a.threads = 2;
    fx_problem p;
    cr_assert_eq(problem_make(&p, K, &a, 7, 0), 0, "%s", attn_last_error());
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, &p.a, &ctx), 0, "%s", attn_last_error());
    attn_io io = problem_io(&p);
    cr_assert_eq(K->forward(&ctx, &io), 0, "%s", attn_last_error());
    atlas_plan pl;
    cr_assert_eq(atlas_plan_make(&pl, &p.a), 0);
    double step = ns5_gain() * sqrt((double)(pl.F < pl.Dv ? pl.F : pl.Dv));
    size_t per_head = (size_t)(2 * pl.F * pl.Dv);
    for (int64_t hk = 0; hk < a.H_kv; hk++) {
        double bound = 0, w2 = 0;
        for (int64_t t = 0; t < a.Nk; t++)
            bound = exp(attn_at(&p.gate, 0, hk, t)[0]) * bound + attn_at(&p.beta, 0, hk, t)[0] * step;
        for (size_t x = 0; x < per_head / 2; x++) {
            double w = ((const float *)ctx.workspace)[(size_t)hk * per_head + x];
            cr_assert(isfinite(w), "head %lld: memory entry %zu is %g", (long long)hk, x, w);
            w2 += w * w;
        }
        cr_log_info("head %lld: |W|_F %.4g, bound %.4g (NS5 gain %.4f)", (long long)hk, sqrt(w2), bound, ns5_gain());
        cr_assert(sqrt(w2) <= bound * (1 + 1e-4), "head %lld: |W|_F %.4g above %.4g", (long long)hk, sqrt(w2), bound);
    }
    attn_ctx_destroy(&ctx);
    problem_free(&p);
}

/* opt=muon's forward FLOPs per (b, query head): N (F Dv (2 R / C + 2 min(c, N) + 6) + 5 (4 F Dv^2 + 2 Dv^3)). */
Test(atlas_muon, cost_model_counts_every_step_and_its_iterations, .timeout = 30)
{
    attn_args a = memory_args(2, 4, 2, 100, 8, 16, "causal", "opt=muon chunk=4 window=8");
    double N = 100, F = 45, Dv = 16, C = 4, cw = 8, R = C + cw - 1;
    double f = 2 * 4 * N * (F * Dv * (2 * R / C + 2 * cw + 6) + 5 * (4 * F * Dv * Dv + 2 * Dv * Dv * Dv));
    cr_assert(fabs(K->flops(&a, ATTN_PASS_FWD) - f) <= 1e-9 * f, "forward FLOPs %.6g, expected %.6g",
              K->flops(&a, ATTN_PASS_FWD), f);
    cr_assert(fabs(K->flops(&a, ATTN_PASS_BWD) - 2.5 * f) <= 1e-9 * f);
}
