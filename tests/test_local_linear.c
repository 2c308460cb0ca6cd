/* Properties of the `local_linear` kernel (Local Linear Attention): the fp32 kernel equals its double
 * reference on every mask (GQA, cross lengths, tile sizes); its limits
 * (lambda -> inf is softmax attention, one key gives v_0, exactly linear data
 * is reproduced at the query where softmax is not); gradients against central
 * differences of the reference; the cost model, counters and parameter
 * validation. Causal leakage, thread determinism and strided views:
 * test_properties.c. */
#include "harness/measure/check.h"
#include "kernels/core/counters.h"
#include "harness/measure/fixture.h"
#include "kernels/flash/flash.h"
#include "kernels/local_linear/local_linear.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_local_linear;

static attn_args ll_args(int64_t B, int64_t H, int64_t H_kv, int64_t Nq, int64_t Nk, int64_t D, const char *mask,
                         const char *param, int threads)
{
    return fx_args_params(B, H, H_kv, Nq, Nk, D, mask, threads, param);
}

/* Kernel vs its own double reference (err_O <= 5e-5 of max|O_ref|, lse 1e-5). */
static void check_ref(const attn_args *a, uint64_t seed, const char *what)
{
    fx_problem p;
    fx_make_for(&p, K, a, seed);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s: %s", what, attn_last_error());
    double eo = fx_err_o(&p), el = fx_err_lse(&p);
    cr_assert(eo <= 5e-5, "%s: err_O %.3g > 5e-5", what, eo);
    cr_assert(el <= 1e-5, "%s: err_lse %.3g", what, el);
    fx_free(&p);
}

static const char *const masks[] = {"full", "causal", "window:wl=9,wr=3", "document:lens=30+1+50+49"};

Test(local_linear, forward_matches_double_reference_on_every_mask, .timeout = 60)
{
    static const int64_t Ds[] = {16, 32, 64};
    for (int m = 0; m < 4; m++)
        for (int d = 0; d < 3; d++) {
            char what[96];
            snprintf(what, sizeof what, "B=2 H=2/1 N=130 D=%ld %s", (long)Ds[d], masks[m]);
            attn_args a = ll_args(2, 2, 1, 130, 130, Ds[d], masks[m], NULL, 2);
            check_ref(&a, 10 + (uint64_t)(m * 3 + d), what);
        }
}

/* A problem of the table tests: shape, mask and up to two params. */
typedef struct {
    int64_t B, H, H_kv, Nq, Nk, D;
    const char *mask, *p1, *p2, *what;
} ll_case;

static attn_args case_args(const ll_case *c)
{
    attn_args a = ll_args(c->B, c->H, c->H_kv, c->Nq, c->Nk, c->D, c->mask, c->p1, 2);
    if (c->p2)
        cr_assert_eq(param_bag_add(&a.params, c->p2), 0, "%s", attn_last_error());
    return a;
}

Test(local_linear, forward_matches_reference_on_short_cross_and_tiled_shapes, .timeout = 60)
{
    static const ll_case cases[] = {
        {1, 2, 2, 7, 7, 16, "causal", NULL, NULL, "N=7 causal"},
        {1, 4, 2, 16, 97, 32, "causal", NULL, NULL, "Nq=16 Nk=97 causal bottom-right"},
        {1, 2, 1, 64, 40, 16, "full", NULL, NULL, "Nq=64 Nk=40 full"},
        {1, 2, 2, 70, 70, 16, "window:wl=20,wr=0", "bc=16", "br=5", "br=5 bc=16 causal window"},
        {1, 2, 2, 64, 64, 16, "causal", "lambda=0.5", NULL, "lambda=0.5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_args a = case_args(&cases[i]);
        check_ref(&a, 1 + i, cases[i].what);
    }
}

/* lambda -> inf: rho -> 0 and the output is the softmax average (oracle). */
Test(local_linear, huge_lambda_equals_softmax_oracle)
{
    for (int m = 0; m < 2; m++) {
        attn_args a = ll_args(2, 4, 2, 100, 100, 32, masks[m], "lambda=1e8", 2);
        fx_problem p;
        fx_make(&p, &a, 20 + (uint64_t)m);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        cr_assert(fx_err_o(&p) <= fx_tol_o(100), "%s: err_O vs oracle %.3g", masks[m], fx_err_o(&p));
        cr_assert(fx_err_lse(&p) <= 1e-5, "%s: err_lse %.3g", masks[m], fx_err_lse(&p));
        fx_free(&p);
    }
}

/* One key: the regression has nothing to fit, o = v_0 exactly. */
Test(local_linear, one_key_gives_v0)
{
    attn_args a = ll_args(1, 2, 1, 1, 1, 16, "full", NULL, 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 3);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    for (int64_t h = 0; h < 2; h++)
        for (int64_t d = 0; d < 16; d++)
            cr_assert_float_eq(attn_at(&p.o, 0, h, 0)[d], attn_at(&p.v, 0, 0, 0)[d], 1e-7, "h=%ld d=%ld", (long)h,
                               (long)d);
    fx_free(&p);
}

/* Queries before every key (causal, q_off = -5): O = 0 and lse = -inf there,
 * the other rows as the reference. */
Test(local_linear, fully_masked_rows_give_zero_and_minus_infinity)
{
    attn_args a = ll_args(1, 2, 1, 20, 20, 16, "causal", NULL, 2);
    a.q_off = -5;
    fx_problem p;
    fx_make_for(&p, K, &a, 6);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert(fx_err_o(&p) <= 5e-5, "err_O %.3g", fx_err_o(&p));
    for (int64_t h = 0; h < 2; h++)
        for (int64_t i = 0; i < 5; i++) {
            cr_assert(isinf(p.lse[h * 20 + i]) && p.lse[h * 20 + i] < 0, "h=%ld i=%ld lse %g", (long)h, (long)i,
                      p.lse[h * 20 + i]);
            for (int64_t d = 0; d < 16; d++)
                cr_assert_eq(attn_at(&p.o, 0, h, i)[d], 0.0f);
        }
    fx_free(&p);
}

/* v_j = a + B k_j exactly: the local linear fit reproduces a + B q_i at
 * every query (lambda 1e-9), which the softmax average does not. */
Test(local_linear, exactly_linear_data_is_reproduced_at_the_query)
{
    int64_t N = 160, D = 8;
    attn_args args = ll_args(1, 1, 1, N, N, D, "full", "lambda=1e-9", 1);
    fx_problem p;
    fx_make_for(&p, K, &args, 4);
    float A[8], Bm[8][8];
    for (int64_t d = 0; d < D; d++) {
        A[d] = 0.3f - 0.1f * (float)d;
        for (int64_t e = 0; e < D; e++)
            Bm[d][e] = (float)((d * 7 + e * 3) % 5 - 2) * 0.25f;
    }
    for (int64_t j = 0; j < N; j++)
        for (int64_t d = 0; d < D; d++) {
            float s = A[d];
            for (int64_t e = 0; e < D; e++)
                s += Bm[d][e] * attn_at(&p.k, 0, 0, j)[e];
            attn_at(&p.v, 0, 0, j)[d] = s;
        }
    fx_ref_forward(&p);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    fx_problem s; /* the softmax average of the same data */
    attn_args soft = fx_args(1, 1, 1, N, N, D, "full", 1);
    fx_make(&s, &soft, 4);
    memcpy(s.v.data, p.v.data, sizeof(float) * (size_t)(N * D));
    cr_assert_eq(fx_run(&attn_kernel_flash, &s, 0), 0, "%s", attn_last_error());
    double err = 0, err_ref = 0, err_soft = 0, scale = 0;
    for (int64_t i = 0; i < N; i++)
        for (int64_t d = 0; d < D; d++) {
            double t = A[d];
            for (int64_t e = 0; e < D; e++)
                t += (double)Bm[d][e] * attn_at(&p.q, 0, 0, i)[e];
            scale = fmax(scale, fabs(t));
            err = fmax(err, fabs(attn_at(&p.o, 0, 0, i)[d] - t));
            err_ref = fmax(err_ref, fabs(attn_at64(&p.o64, 0, 0, i)[d] - t));
            err_soft = fmax(err_soft, fabs(attn_at(&s.o, 0, 0, i)[d] - t));
        }
    cr_assert(err_ref <= 1e-6 * scale, "double reference misses a + B q by %.3g", err_ref);
    cr_assert(err <= 1e-3 * scale, "kernel misses a + B q by %.3g (scale %.3g)", err, scale);
    cr_assert(err_soft >= 0.1 * scale, "softmax unexpectedly fits the linear map (%.3g)", err_soft);
    fx_free(&p);
    fx_free(&s);
}

/* A flat kernel (sc -> 0: uniform weights on the allowed keys) is a ridge fit
 * with intercept per row: min_{a,B} mean_j |v_j - a - B (k_j - q_i)|^2 +
 * lambda |B|^2, read at a. Solved here from its normal equations on the
 * augmented design [1, k_j - q_i] (intercept not penalised), independently
 * of the closed form (centred Sigma, rho) the kernel and its reference share. */
Test(local_linear, flat_kernel_is_a_ridge_fit_with_intercept_per_row)
{
    enum { N = 40, D = 4 };
    attn_args a = ll_args(1, 1, 1, N, N, D, "causal", "lambda=0.1", 1);
    a.scale = 1e-30;
    fx_problem p;
    fx_make_for(&p, K, &a, 8);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    double err = 0, scale = 0;
    for (int64_t i = 0; i < N; i++) {
        const float *q = attn_at(&p.q, 0, 0, i);
        double M[(D + 1) * (D + 1)] = {0}, R[D][D + 1] = {{0}};
        for (int64_t j = 0; j <= i; j++) {
            double x[D + 1] = {1};
            for (int d = 0; d < D; d++)
                x[d + 1] = (double)attn_at(&p.k, 0, 0, j)[d] - q[d];
            for (int r = 0; r <= D; r++) {
                for (int c = 0; c <= D; c++)
                    M[r * (D + 1) + c] += x[r] * x[c] / (double)(i + 1);
                for (int d = 0; d < D; d++)
                    R[d][r] += x[r] * attn_at(&p.v, 0, 0, j)[d] / (double)(i + 1);
            }
        }
        for (int r = 1; r <= D; r++)
            M[r * (D + 1) + r] += 0.1;
        for (int d = 0; d < D; d++) {
            double Md[(D + 1) * (D + 1)];
            memcpy(Md, M, sizeof Md);
            attn_local_linear_solve_f64(Md, R[d], D + 1);
            scale = fmax(scale, fabs(R[d][0]));
            err = fmax(err, fabs(attn_at(&p.o, 0, 0, i)[d] - R[d][0]));
        }
    }
    cr_assert(err <= 5e-5 * scale, "kernel misses the ridge intercept by %.3g (scale %.3g)", err, scale);
    fx_free(&p);
}

/* Backward vs central differences of the double reference (dQ, dK, dV within
 * 1e-4), grouped heads so dK, dV sum over the group. */
static void check_grads(const attn_args *a, uint64_t seed, const char *what)
{
    fx_problem p;
    fx_make_for(&p, K, a, seed);
    cr_assert_eq(fx_run(K, &p, 1), 0, "%s: %s", what, attn_last_error());
    cr_assert(fx_err_o(&p) <= 5e-5, "%s: forward err_O %.3g", what, fx_err_o(&p));
    fx_ref_grads(&p);
    double e[3] = {fx_err_grad(&p.dq, &p.dq64), fx_err_grad(&p.dk, &p.dk64), fx_err_grad(&p.dv, &p.dv64)};
    for (int i = 0; i < 3; i++)
        cr_assert(e[i] <= 1e-4, "%s: d%c err %.3g", what, "QKV"[i], e[i]);
    fx_free(&p);
}

Test(local_linear, backward_matches_reference_gradients, .timeout = 60)
{
    static const ll_case cases[] = {
        {1, 2, 1, 9, 9, 16, "full", NULL, NULL, "N=9 D=16 full"},
        {1, 2, 1, 5, 5, 16, "causal", NULL, NULL, "N=5 D=16 causal"},
        {1, 2, 1, 24, 24, 4, "window:wl=6,wr=0", "lambda=0.1", "bc=7", "N=24 D=4 causal window, bc=7"},
        {1, 2, 2, 20, 20, 4, "document:lens=8+1+11", "br=3", NULL, "N=20 D=4 document, br=3"},
        {1, 2, 1, 6, 14, 4, "causal", NULL, NULL, "Nq=6 Nk=14 causal"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_args a = case_args(&cases[i]);
        check_grads(&a, 30 + i, cases[i].what);
    }
}

/* flops: nnz (2 D^2 + 8 D + 4 Dv) + Nq D^3 / 3 per head; counters at least that much. */
Test(local_linear, cost_model_and_counters)
{
    attn_args a = ll_args(1, 2, 2, 40, 40, 16, "causal", NULL, 1);
    double nnz = 2 * 40 * 41 / 2.0, D = 16;
    double expect = nnz * (2 * D * D + 8 * D + 4 * D) + 2 * 40 * D * D * D / 3;
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), expect, 1e-6 * expect);
    cr_assert_eq(K->state_bytes(&a), 4u * 2 * 2 * 40 * 16);
    fx_problem p;
    fx_make_for(&p, K, &a, 5);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    double got = (double)attn_counter_get(ATTN_CNT_FLOPS);
    cr_assert(got >= 0.5 * expect && got <= 4 * expect, "counted %.0f flops, model %.0f", got, expect);
    cr_assert(attn_counter_get(ATTN_CNT_BYTES_READ) > 0);
    fx_free(&p);
}

Test(local_linear, refuses_bad_lambda_and_unsupported_masks)
{
    attn_ctx ctx;
    attn_args l = ll_args(1, 1, 1, 8, 8, 16, "causal", "lambda=-1", 1);
    cr_assert_eq(attn_ctx_create(K, &l, &ctx), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "lambda") != NULL, "%s", attn_last_error());
    attn_args z = ll_args(1, 1, 1, 8, 8, 16, "causal", "lambda=abc", 1);
    cr_assert_eq(attn_ctx_create(K, &z, &ctx), ATTN_EINVAL);
    attn_args s = ll_args(1, 1, 1, 8, 8, 16, "sink:n=2,w=4", NULL, 1);
    cr_assert_eq(attn_ctx_create(K, &s, &ctx), ATTN_EUNSUPPORTED);
}
