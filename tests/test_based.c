/* Properties of `based` (Arora et al. 2024): the
 * Taylor feature map's inner product is 1 + s + s^2/2 for the unique (F = 153
 * at d' = 16) and full (273) maps; the chunked fp32 forward equals the
 * recurrent double reference for chunk sizes, ragged lengths, GQA, Dv != D,
 * causal / non-causal, both maps and the shared-denominator window; the
 * recurrent reference equals the explicit normalised kernel matrix;
 * gradients; state size; cost model; parameter validation. Causal leakage
 * and thread determinism on its chunk and window paths: test_properties.c. */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "kernels/linear/linear.h"
#include "common/rng.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_based;

Test(based, taylor_features_give_one_plus_s_plus_half_s_squared_for_unique_and_full_maps)
{
    static const int64_t Ds[] = {4, 16};
    attn_rng r;
    attn_rng_seed(&r, 5);
    for (int id = 0; id < 2; id++) {
        int64_t D = Ds[id];
        lin_fmap mu, mf;
        attn_based_taylor_map(&mu, D, 0);
        attn_based_taylor_map(&mf, D, 1);
        cr_assert_eq(mu.F, 1 + D + D * (D + 1) / 2);
        cr_assert_eq(mf.F, 1 + D + D * D);
        if (D == 16)
            cr_assert(mu.F == 153 && mf.F == 273);
        float x[2][16], f[2][273];
        double x64[2][16], f64[2][273];
        for (int t = 0; t < 20; t++) {
            for (int v = 0; v < 2; v++)
                for (int64_t d = 0; d < D; d++)
                    x64[v][d] = x[v][d] = attn_rng_range(&r, -2, 2);
            double dot = 0;
            for (int64_t d = 0; d < D; d++)
                dot += x64[0][d] * x64[1][d];
            double s = dot / sqrt((double)D), want = 1 + s + s * s / 2;
            const lin_fmap *maps[] = {&mu, &mf};
            for (int im = 0; im < 2; im++) {
                const lin_fmap *m = maps[im];
                double got = 0, got64 = 0;
                for (int v = 0; v < 2; v++) {
                    m->fwd(m, x[v], D, 1, f[v], m->F);
                    m->fwd64(m, x64[v], f64[v]);
                }
                for (int64_t i = 0; i < m->F; i++)
                    got += (double)f[0][i] * f[1][i], got64 += f64[0][i] * f64[1][i];
                cr_assert(fabs(got64 - want) <= 1e-12 * fabs(want), "D=%ld %s: double phi.phi %.15g != %.15g",
                          (long)D, im ? "full" : "unique", got64, want);
                cr_assert(fabs(got - want) <= 2e-6 * fabs(want) + 1e-6, "D=%ld %s: fp32 phi.phi %.9g != %.9g",
                          (long)D, im ? "full" : "unique", got, want);
                cr_assert(got64 >= 0.5 - 1e-12, "((s+1)^2+1)/2 >= 1/2");
            }
        }
    }
}

/* Runs the kernel with `param` added on p's inputs; returns err_O against p's reference. */
static double run_err(fx_problem *p, const char *param)
{
    param_bag saved = p->a.params;
    if (param)
        fx_add_params(&p->a, param);
    memset(p->o.data, 0xff, sizeof(float) * (size_t)(p->o.B * p->o.sb)); /* NaN: every row must be written */
    int rc = fx_run(K, p, 0);
    p->a.params = saved;
    cr_assert_eq(rc, 0, "%s: %s", param ? param : "", attn_last_error());
    return fx_err_o(p);
}

Test(based, chunked_equals_recurrent_for_chunk_1_16_64_ragged_n_gqa_dv_both_maps_and_windows, .timeout = 60)
{
    static const int64_t Ns[] = {1, 7, 130}, Ds[] = {16, 8};
    static const char *const masks[] = {"full", "causal"};
    static const char *const extra[] = {NULL, "features=full", "window=1", "window=5", "window=64"};
    for (int in = 0; in < 3; in++)
        for (int id = 0; id < 2; id++)
            for (int im = 0; im < 2; im++)
                for (int ie = 0; ie < 5; ie++) {
                    if (ie >= 2 && im == 0)
                        continue; /* the window needs a causal mask */
                    attn_args a = fx_args(1, 4, 2, Ns[in], Ns[in], Ds[id], masks[im], 2);
                    a.Dv = 12; /* Dv != D */
                    if (extra[ie])
                        fx_add_params(&a, extra[ie]);
                    fx_problem p;
                    fx_make_for(&p, K, &a, 20 + (uint64_t)(in * 20 + id * 10 + im * 5 + ie));
                    static const char *const chunks[] = {"chunk=1", "chunk=16", "chunk=64"};
                    for (int ic = 0; ic < 3; ic++) {
                        double e = run_err(&p, chunks[ic]);
                        cr_assert(e <= 5e-5, "N=%ld D=%ld %s %s %s: err_O %.3g > 5e-5", (long)Ns[in], (long)Ds[id],
                                  masks[im], extra[ie] ? extra[ie] : "", chunks[ic], e);
                    }
                    fx_free(&p);
                }
}

Test(based, unique_and_full_feature_maps_give_the_same_outputs)
{
    attn_args a = fx_args(1, 2, 2, 70, 70, 16, "causal", 2);
    fx_problem p;
    fx_make_for(&p, K, &a, 3);
    size_t n = (size_t)(p.o.B * p.o.sb);
    float *uniq = malloc(sizeof(float) * n);
    run_err(&p, "features=unique");
    memcpy(uniq, p.o.data, sizeof(float) * n);
    run_err(&p, "features=full");
    double err = 0, mx = 0;
    for (size_t i = 0; i < n; i++)
        err = fmax(err, fabs(uniq[i] - p.o.data[i])), mx = fmax(mx, fabs(uniq[i]));
    cr_assert(err <= 2e-5 * mx, "unique vs full features: max diff %.3g (max |O| %.3g)", err, mx);
    free(uniq);
    fx_free(&p);
}

/* 1 + s + s^2/2, s = <q,k>/sqrt(D): the Taylor kernel written without features. */
static double taylor_kernel(const double *q, const double *k, int64_t D)
{
    double dot = 0;
    for (int64_t d = 0; d < D; d++)
        dot += q[d] * k[d];
    double s = dot / sqrt((double)D);
    return 1 + s + s * s / 2;
}

Test(based, recurrent_reference_equals_explicit_normalised_kernel_matrix)
{
    static const int64_t Ns[] = {1, 7, 130};
    static const char *const masks[] = {"full", "causal"};
    static const int64_t Ws[] = {0, 1, 5};
    for (int in = 0; in < 3; in++)
        for (int im = 0; im < 2; im++)
            for (int iw = 0; iw < 3; iw++) {
                if (iw > 0 && im == 0)
                    continue;
                attn_args a = fx_args(2, 4, 2, Ns[in], Ns[in], 8, masks[im], 1);
                a.Dv = 12;
                char param[32];
                snprintf(param, sizeof param, "window=%ld", (long)Ws[iw]);
                fx_add_params(&a, param);
                fx_problem p;
                fx_make_for(&p, K, &a, 60 + (uint64_t)(in * 6 + im * 3 + iw));
                size_t n = (size_t)(p.o64.B * p.o64.sb);
                double *rec = malloc(sizeof(double) * n);
                memcpy(rec, p.o64.data, sizeof(double) * n);
                attn_io64 io = {.q = p.q64, .k = p.k64, .v = p.v64, .o = p.o64};
                lin_kernel_matrix_f64(&p.a, taylor_kernel, Ws[iw], &io);
                double err = 0, mx = 0;
                for (size_t i = 0; i < n; i++)
                    err = fmax(err, fabs(rec[i] - p.o64.data[i])), mx = fmax(mx, fabs(rec[i]));
                cr_assert(mx > 0.01 && err <= 1e-12 * mx, "N=%ld %s %s: |recurrent - kernel matrix| = %.3g",
                          (long)Ns[in], masks[im], param, err);
                free(rec);
                fx_free(&p);
            }
}

Test(based, backward_matches_central_differences_of_the_reference, .timeout = 60)
{
    static const char *const masks[] = {"full", "causal"};
    static const char *const params[][2] = {{NULL, NULL}, {"chunk=2", NULL}, {"chunk=3", "window=2"},
                                            {"window=4", "features=full"}};
    static const int64_t Ns[] = {5, 9};
    for (int in = 0; in < 2; in++)
        for (int im = 0; im < 2; im++)
            for (int ip = 0; ip < 4; ip++) {
                if (ip >= 2 && im == 0)
                    continue;
                attn_args a = fx_args(1, 2, 1, Ns[in], Ns[in], 4, masks[im], 1);
                a.Dv = ip == 1 ? 6 : 4;
                for (int j = 0; j < 2; j++)
                    if (params[ip][j])
                        fx_add_params(&a, params[ip][j]);
                double e[ATTN_CHECK_GRADS];
                cr_assert_eq(check_kernel_backward(K, &a, 90 + (uint64_t)(in * 8 + im * 4 + ip), e), 0, "%s",
                             attn_last_error());
                for (int t = 0; t < 3; t++)
                    cr_assert(e[t] <= 1e-4, "N=%ld %s %s %s: gradient %d error %.3g > 1e-4", (long)Ns[in], masks[im],
                              params[ip][0] ? params[ip][0] : "", params[ip][1] ? params[ip][1] : "", t, e[t]);
            }
}

Test(based, state_bytes_equal_what_init_sizes_and_the_formula)
{
    static const char *const params[] = {"window=0", "window=64", "features=full"};
    static const int64_t F[] = {153, 153, 273}, W[] = {0, 64, 0};
    for (int i = 0; i < 3; i++) {
        attn_args a = fx_args(2, 4, 2, 100, 100, 16, "causal", 2);
        a.Dv = 24;
        fx_add_params(&a, params[i]);
        attn_ctx ctx;
        cr_assert_eq(attn_ctx_create(K, &a, &ctx), 0, "%s", attn_last_error());
        size_t want = (size_t)(2 * 2 * (F[i] * (24 + 1) + W[i] * (16 + 24)) * 4);
        cr_assert_eq(K->state_bytes(&ctx.args), want, "%s: state_bytes %zu, expected %zu", params[i],
                     K->state_bytes(&ctx.args), want);
        cr_assert_eq(ctx.state_bytes_used, want, "%s: init sized %zu, expected %zu", params[i], ctx.state_bytes_used,
                     want);
        attn_ctx_destroy(&ctx);
    }
}

Test(based, cost_model_matches_the_formulas)
{
    attn_args a = fx_args(1, 4, 2, 100, 100, 16, "causal", 1);
    a.Dv = 24;
    fx_add_params(&a, "chunk=32");
    fx_add_params(&a, "window=8");
    double N = 100, F = 153, Dv = 24, C = 32, W = 8;
    double fwd = 4 * (4 * N * F * Dv + 2 * N * C * (F + Dv) + 4 * N * W * 16);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), fwd, 1e-6 * fwd);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_BWD), 2.5 * fwd, 1e-6 * fwd);
    attn_args f = fx_args(1, 2, 2, 50, 50, 16, "full", 1);
    cr_assert_float_eq(K->flops(&f, ATTN_PASS_FWD), 2 * 4.0 * 50 * 153 * 16, 1e-6);
}

Test(based, invalid_params_are_rejected_with_a_message_naming_them)
{
    static const char *const bad[] = {"chunk=0", "features=some", "window=-1", "mix=sum", "taps=3"};
    static const char *const named[] = {"chunk", "features", "window", "mix", "taps"};
    for (int i = 0; i < 5; i++) {
        attn_args a = fx_args_params(1, 2, 2, 16, 16, 16, "causal", 1, bad[i]);
        attn_ctx ctx;
        attn_clear_error();
        cr_assert_neq(attn_ctx_create(K, &a, &ctx), 0, "%s accepted", bad[i]);
        cr_assert(strstr(attn_last_error(), named[i]), "%s: message '%s' does not name the param", bad[i],
                  attn_last_error());
    }
    attn_args f = fx_args_params(1, 2, 2, 16, 16, 16, "full", 1, "window=4");
    attn_ctx ctx;
    cr_assert_neq(attn_ctx_create(K, &f, &ctx), 0, "window with a non-causal mask accepted");
    cr_assert(strstr(attn_last_error(), "window"), "%s", attn_last_error());
}
