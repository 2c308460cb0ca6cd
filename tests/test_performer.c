/* Properties of the `performer` kernel (FAVOR+): the fp32 kernel equals its
 * double reference (full and causal, chunk sizes, feature counts that are
 * not a multiple of D, GQA, Dv != D, i.i.d. and orthogonal draws, every
 * fidelity input family); the causal form does not leak; the feature
 * estimate of exp(<x, y>) is unbiased over draws, and orthogonal draws have
 * the smaller variance; the error against softmax falls about as m^-1/2
 * (mean over seeds) and orthogonal features beat i.i.d. ones on the mean
 * error; the fidelity rows are distributions with O = P V; the draw is a
 * function of (seed, draw) with orthogonal rows per block; backward against
 * central differences of the reference (softmax at the default m = 256,
 * `attnbench check` uses m = 64; relu); kernel=relu without projection is LRA's generalized
 * attention; cost model; parameter validation. Thread determinism,
 * strided views and padded batches: the registry-driven tests. */
#include "harness/measure/check.h"
#include "harness/measure/fidelity.h"
#include "harness/measure/fixture.h"
#include "kernels/performer/performer.h"
#include "own_ref_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_performer;

static attn_args pf_args(int64_t H, int64_t H_kv, int64_t N, int64_t D, const char *mask, const char *params)
{
    return fx_args_params(1, H, H_kv, N, N, D, mask, 2, params);
}

Test(performer, equals_its_reference_for_chunks_feature_counts_gqa_and_dv, .timeout = 60)
{
    static const struct {
        int64_t H, H_kv, N, D, Dv;
        const char *params;
    } cases[] = {
        {2, 2, 130, 32, 0, "chunk=1 features=20"},   /* m < D: one partial block */
        {2, 2, 130, 32, 0, "chunk=16 features=100"}, /* m not a multiple of D */
        {4, 2, 130, 16, 0, ""},                      /* defaults, GQA */
        {2, 1, 97, 64, 0, "chunk=64 orthogonal=0"},  /* i.i.d. rows */
        {2, 2, 77, 32, 24, "features=64 seed=9 draw=3"},
        {2, 2, 1, 16, 0, ""},
        {2, 2, 130, 32, 0, "kernel=relu features=0 chunk=16"}, /* LRA's default: no projection */
        {4, 2, 97, 16, 24, "kernel=relu features=48"},
        {2, 1, 77, 32, 0, "kernel=relu features=64 orthogonal=0 chunk=1"},
    };
    const char *masks[] = {"full", "causal"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int im = 0; im < 2; im++) {
            attn_args a = pf_args(cases[i].H, cases[i].H_kv, cases[i].N, cases[i].D, masks[im], cases[i].params);
            a.Dv = cases[i].Dv;
            char what[160];
            snprintf(what, sizeof what, "%s H%ld/%ld N%ld D%ld Dv%ld %s", masks[im], (long)cases[i].H,
                     (long)cases[i].H_kv, (long)cases[i].N, (long)cases[i].D, (long)cases[i].Dv, cases[i].params);
            own_ref_check(K, &a, 40 + i, what);
        }
}

Test(performer, backward_matches_central_differences_of_the_reference_for_both_kernels, .timeout = 60)
{
    const char *masks[] = {"full", "causal"},
               *params[] = {"chunk=4", "chunk=4 orthogonal=0", "chunk=4 kernel=relu features=0",
                            "kernel=relu features=32"};
    for (int im = 0; im < 2; im++)
        for (int ip = 0; ip < 4; ip++) {
            attn_args a = pf_args(2, 1, 9, 16, masks[im], params[ip]);
            double e[ATTN_CHECK_GRADS];
            cr_assert_eq(check_kernel_backward(K, &a, 60 + (uint64_t)(4 * im + ip), e), 0, "%s", attn_last_error());
            for (int t = 0; t < 3; t++)
                cr_assert(e[t] <= 1e-4, "%s %s: gradient %d error %.3g > 1e-4", masks[im], params[ip], t, e[t]);
        }
}

/* o_i = sum_j <phi(q_i), phi(k_j)> v_j / sum_j <phi(q_i), phi(k_j)> over the
 * allowed keys, phi(x) = relu(x) + 1e-3, written out here in double. */
static void relu_attention64(const fx_problem *p, int causal, double *out)
{
    int64_t N = p->a.Nq, D = p->a.D, G = p->a.H / p->a.H_kv;
    for (int64_t h = 0; h < p->a.H; h++)
        for (int64_t i = 0; i < N; i++) {
            double den = 0, *o = out + (h * N + i) * D;
            memset(o, 0, sizeof(double) * (size_t)D);
            for (int64_t j = 0; j <= (causal ? i : N - 1); j++) {
                const double *q = attn_at64(&p->q64, 0, h, i), *k = attn_at64(&p->k64, 0, h / G, j);
                double w = 0;
                for (int64_t d = 0; d < D; d++)
                    w += (fmax(q[d], 0) + 1e-3) * (fmax(k[d], 0) + 1e-3);
                den += w;
                for (int64_t d = 0; d < D; d++)
                    o[d] += w * attn_at64(&p->v64, 0, h / G, j)[d];
            }
            for (int64_t d = 0; d < D; d++)
                o[d] /= den;
        }
}

Test(performer, relu_without_projection_is_lra_generalized_attention)
{
    const char *masks[] = {"full", "causal"};
    for (int im = 0; im < 2; im++) {
        attn_args a = pf_args(4, 2, 100, 16, masks[im], "kernel=relu features=0");
        fx_problem p;
        fx_make_for(&p, K, &a, 8);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        double *want = malloc(sizeof(double) * (size_t)(a.H * a.Nq * a.D));
        relu_attention64(&p, im, want);
        double e = own_rel_err(&p.o, want);
        cr_assert(e <= 5e-5, "%s: max |O - explicit relu attention| / max|ref| = %.3g", masks[im], e);
        free(want);
        fx_free(&p);
    }
}

/* The stabilisers keep fp32 within range on every fidelity input family
 * (logits to ~10, Pareto key norms) at D = 64. */
Test(performer, equals_its_reference_on_every_fidelity_input_family, .timeout = 60)
{
    const char *masks[] = {"full", "causal"};
    for (int f = FID_GAUSSIAN; f < FID__COUNT; f++)
        for (int im = 0; im < 2; im++) {
            attn_args a = pf_args(2, 2, 512, 64, masks[im], "");
            fx_problem p;
            fx_make_for(&p, K, &a, 3);
            attn_io io = problem_io(&p);
            fid_fill((fid_inputs)f, &p.a, 3, &io);
            fx_ref_forward(&p);
            char what[64];
            snprintf(what, sizeof what, "%s %s", fid_inputs_names[f], masks[im]);
            own_ref_check_problem(K, &p, what);
        }
}

Test(performer, causal_outputs_before_t_ignore_every_later_row, .timeout = 30)
{
    const char *chunks[] = {"chunk=1", "chunk=7", "chunk=64"};
    for (int ic = 0; ic < 3; ic++) {
        attn_args a = pf_args(2, 1, 150, 32, "causal", chunks[ic]);
        problem p;
        cr_assert_eq(problem_make(&p, K, &a, 3, 0), 0);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        size_t bytes = sizeof(float) * (size_t)(p.o.B * p.o.sb);
        float *before = malloc(bytes);
        memcpy(before, p.o.data, bytes);
        int64_t t = 61; /* not a chunk boundary */
        const attn_tensor *in[] = {&p.q, &p.k, &p.v};
        for (int x = 0; x < 3; x++)
            for (int64_t h = 0; h < in[x]->H; h++)
                for (int64_t n = t; n < a.Nq; n++)
                    for (int64_t d = 0; d < in[x]->D; d++)
                        attn_at(in[x], 0, h, n)[d] += 3.0f;
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        for (int64_t h = 0; h < a.H; h++)
            cr_assert(!memcmp(attn_at(&p.o, 0, h, 0), before + h * p.o.sh, sizeof(float) * (size_t)(t * p.o.sn)),
                      "%s head %ld: rows before %ld changed when later rows did", chunks[ic], (long)h, (long)t);
        int changed = 0;
        for (int64_t d = 0; d < p.o.D; d++)
            changed |= attn_at(&p.o, 0, 0, t)[d] != before[t * p.o.sn + d];
        cr_assert(changed, "%s: row t did not change: the perturbation reached nothing", chunks[ic]);
        free(before);
        problem_free(&p);
    }
}

/* Mean and standard error of <phi(x), phi(y)> over R draws of m features. */
static void estimate_over_draws(const double *x, const double *y, int64_t D, int64_t m, int orthogonal, int R,
                                double *mean, double *sd)
{
    double s = 0, s2 = 0, *px = malloc(sizeof(double) * (size_t)(2 * m)), *py = px + m;
    for (int r = 0; r < R; r++) {
        pf_features f;
        cr_assert_eq(pf_draw(&f, m, D, orthogonal, 11, (uint64_t)r), 0, "%s", attn_last_error());
        pf_feature64(&f, x, px);
        pf_feature64(&f, y, py);
        double k = 0;
        for (int64_t i = 0; i < m; i++)
            k += px[i] * py[i];
        s += k, s2 += k * k;
        pf_free(&f);
    }
    free(px);
    *mean = s / R;
    *sd = sqrt(fmax(s2 / R - *mean * *mean, 0));
}

Test(performer, feature_estimate_of_exp_xy_is_unbiased_and_orthogonal_draws_have_less_variance, .timeout = 30)
{
    enum { D = 16, M = 16, R = 4000 };
    const double scales[] = {0.25, 0.4, 0.55}; /* |x| about 0.7 to 1.6 */
    for (int is = 0; is < 3; is++) {
        double x[D], y[D], xy = 0;
        for (int d = 0; d < D; d++) {
            x[d] = scales[is] * sin(1.0 + d), y[d] = scales[is] * cos(2.0 * d + 0.5);
            xy += x[d] * y[d];
        }
        double mean[2], sd[2];
        for (int orth = 0; orth < 2; orth++) {
            estimate_over_draws(x, y, D, M, orth, R, &mean[orth], &sd[orth]);
            double se = sd[orth] / sqrt((double)R), want = exp(xy);
            cr_assert(se < 0.05 * want, "scale %g orthogonal=%d: standard error %.3g too large to test bias",
                      scales[is], orth, se);
            cr_assert(fabs(mean[orth] - want) <= 4 * se, "scale %g orthogonal=%d: mean %.5f, exp(<x,y>) = %.5f, "
                      "4 standard errors = %.3g", scales[is], orth, mean[orth], want, 4 * se);
        }
        cr_assert(sd[1] < 0.95 * sd[0], "scale %g: orthogonal sd %.4g not below 0.95 x i.i.d. sd %.4g", scales[is],
                  sd[1], sd[0]);
    }
}

/* Mean relative Frobenius error against the softmax oracle over `seeds`
 * seeds (inputs and draw both change), on U(-1,1) inputs. */
static double mean_error(int64_t D, int64_t m, int orthogonal, int seeds)
{
    double e = 0;
    for (int s = 0; s < seeds; s++) {
        char params[96];
        snprintf(params, sizeof params, "features=%ld orthogonal=%d seed=%d", (long)m, orthogonal, s);
        attn_args a = pf_args(2, 2, 256, D, "full", params);
        fid_metrics fm;
        cr_assert_eq(check_kernel_fidelity(K, &a, FID_UNIFORM, 100 + (uint64_t)s, &fm), 0, "%s", attn_last_error());
        e += fm.rel_fro / seeds;
    }
    return e;
}

Test(performer, error_against_softmax_falls_about_as_one_over_sqrt_features, .timeout = 60)
{
    const int64_t ms[] = {16, 64, 256, 1024};
    double e[4];
    for (int i = 0; i < 4; i++) {
        e[i] = mean_error(16, ms[i], 1, 5);
        cr_log_info("m=%ld mean rel_fro_err %.4f", (long)ms[i], e[i]);
        cr_assert(i == 0 || e[i] < e[i - 1], "m=%ld: mean error %.4f not below m=%ld's %.4f", (long)ms[i], e[i],
                  (long)ms[i - 1], e[i - 1]);
    }
    /* m^-1/2 predicts a ratio of 0.5 from 256 to 1024 features; a bias or a
     * plateau would keep it near 1 */
    double r = e[3] / e[2];
    cr_assert(r > 0.35 && r < 0.7, "error ratio 1024 / 256 features = %.3f, expected about 0.5", r);
}

Test(performer, orthogonal_features_beat_iid_on_mean_error, .timeout = 60)
{
    const int64_t shapes[][2] = {{16, 64}, {32, 64}, {64, 256}}; /* D, m */
    for (int i = 0; i < 3; i++) {
        double iid = mean_error(shapes[i][0], shapes[i][1], 0, 10);
        double orth = mean_error(shapes[i][0], shapes[i][1], 1, 10);
        cr_assert(orth < iid, "D=%ld m=%ld: orthogonal mean error %.4f not below i.i.d. %.4f", (long)shapes[i][0],
                  (long)shapes[i][1], orth, iid);
    }
}

Test(performer, fidelity_rows_are_distributions_whose_product_with_v_is_the_reference_output, .timeout = 30)
{
    const char *masks[] = {"full", "causal"};
    for (int im = 0; im < 2; im++) {
        attn_args a = pf_args(2, 1, 90, 32, masks[im], "features=64");
        fx_problem p;
        fx_make_for(&p, K, &a, 5);
        attn_io64 io = problem_io64(&p);
        int64_t N = a.Nq, rows[] = {0, 1, 44, 89}, nr = 4;
        double *P = malloc(sizeof(double) * (size_t)(nr * N));
        for (int64_t h = 0; h < a.H; h++) {
            cr_assert_eq(K->ref_view(&p.a, &io, 0, h, rows, nr, P, NULL), ATTN_VIEW_ROWS, "%s", attn_last_error());
            for (int64_t r = 0; r < nr; r++) {
                double sum = 0;
                for (int64_t j = 0; j < N; j++) {
                    cr_assert(P[r * N + j] >= 0, "%s: negative weight", masks[im]);
                    cr_assert(im == 0 || j <= rows[r] || P[r * N + j] == 0, "%s: weight on a future key", masks[im]);
                    sum += P[r * N + j];
                }
                cr_assert(fabs(sum - 1) < 1e-12, "%s row %ld: weights sum to %.15f", masks[im], (long)rows[r], sum);
                for (int64_t d = 0; d < a.D; d++) {
                    double o = 0;
                    for (int64_t j = 0; j < N; j++)
                        o += P[r * N + j] * attn_at64(&p.v64, 0, 0, j)[d];
                    double want = attn_at64(&p.o64, 0, h, rows[r])[d];
                    cr_assert(fabs(o - want) <= 1e-10 * (1 + fabs(want)), "%s row %ld: (P V) = %.12g, O = %.12g",
                              masks[im], (long)rows[r], o, want);
                }
            }
        }
        free(P);
        fx_free(&p);
    }
}

Test(performer, draw_is_a_function_of_seed_and_draw_with_orthogonal_rows_per_block)
{
    enum { D = 16, M = 40 };
    pf_features a, b, c;
    cr_assert_eq(pf_draw(&a, M, D, 1, 5, 2), 0);
    cr_assert_eq(pf_draw(&b, M, D, 1, 5, 2), 0);
    cr_assert_eq(pf_draw(&c, M, D, 1, 5, 3), 0);
    cr_assert(!memcmp(a.W, b.W, sizeof(float) * M * D), "same (seed, draw), different features");
    cr_assert(memcmp(a.W, c.W, sizeof(float) * M * D), "another draw index, the same features");
    double norm_lo = INFINITY, norm_hi = 0;
    for (int i = 0; i < M; i++) {
        double ni = sqrt(2.0 * a.half_sq[i]);
        norm_lo = fmin(norm_lo, ni), norm_hi = fmax(norm_hi, ni);
        for (int j = i + 1; j < M && j / D == i / D; j++) {
            double dot = 0;
            for (int d = 0; d < D; d++)
                dot += (double)a.W[i * D + d] * a.W[j * D + d];
            cr_assert(fabs(dot) < 1e-5 * ni * ni + 1e-5, "rows %d and %d of one block: <w_i, w_j> = %g", i, j, dot);
        }
    }
    /* chi_16 norms: mean about 3.9; equal norms would mean no rescaling */
    cr_assert(norm_hi - norm_lo > 0.5 && norm_lo > 1 && norm_hi < 8, "row norms in [%g, %g]", norm_lo, norm_hi);
    pf_free(&a), pf_free(&b), pf_free(&c);
}

Test(performer, cost_model_and_state_match_the_formulas)
{
    const char *masks[] = {"full", "causal"};
    /* params, F the core sees, projected features per row (0: no projection) */
    const struct {
        const char *params;
        double F, proj;
    } kinds[] = {{"features=128 chunk=32", 128, 128}, {"kernel=relu features=0 chunk=32", 64, 0}};
    for (int ik = 0; ik < 2; ik++)
        for (int im = 0; im < 2; im++) {
            attn_args a = pf_args(4, 2, 1000, 64, masks[im], kinds[ik].params);
            double N = 1000, D = 64, F = kinds[ik].F, C = 32, H = 4, Hkv = 2;
            double fwd = H * (4 * N * F * D + (im ? 2 * N * C * (F + D) : 0)) + 2 * N * D * kinds[ik].proj * (H + Hkv);
            cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), fwd, 1e-9 * fwd, "%s %s", kinds[ik].params, masks[im]);
            cr_assert_float_eq(K->flops(&a, ATTN_PASS_BWD), 2.5 * fwd, 1e-9 * fwd, "%s", masks[im]);
            cr_assert_eq(K->state_bytes(&a), (size_t)(4 * Hkv * (F * D + F)));
            attn_ctx ctx;
            cr_assert_eq(attn_ctx_create(K, &a, &ctx), 0, "%s", attn_last_error());
            cr_assert_eq(ctx.state_bytes_used, K->state_bytes(&a));
            attn_ctx_destroy(&ctx);
        }
}

Test(performer, parameters_out_of_range_or_unknown_are_refused)
{
    const char *bad[] = {"features=0", "orthogonal=2", "seed=-1", "chunk=0", "redraw=1000"};
    for (int i = 0; i < 5; i++) {
        attn_args a = pf_args(2, 2, 16, 16, "full", bad[i]);
        attn_ctx ctx;
        cr_assert_neq(attn_ctx_create(K, &a, &ctx), 0, "%s accepted", bad[i]);
        char key[32];
        snprintf(key, sizeof key, "%.*s", (int)strcspn(bad[i], "="), bad[i]);
        cr_assert(strstr(attn_last_error(), key), "%s: message '%s' does not name the key", bad[i],
                  attn_last_error());
    }
}
