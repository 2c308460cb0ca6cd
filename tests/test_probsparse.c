/* Properties of `probsparse` (Informer's ProbSparse attention): the fp32
 * kernel equals its double reference (shapes, masks, GQA, cross, Dv != D,
 * the authors' behaviours as options); u = Nq is softmax attention; with the
 * lazy queries set to zero every row is softmax attention; rows before every
 * key give O = 0, lse = -inf; rows with a large measure are the exact ones
 * and the others get the (cumulative) mean or sum of V; the divisor and the
 * causal sampling of the measure, its bits the same from fp32 and widened
 * keys; the error against softmax falls as the budget grows (mean over
 * seeds); the draws are shared by batch entries and heads and decided by the
 * recorded seed; with every row active no later row reaches an earlier one;
 * cost model against the counters; parameter validation. Leakage (V),
 * thread determinism, views: the registry-driven tests. */
#include "harness/measure/check.h"
#include "harness/measure/fidelity.h"
#include "harness/measure/fixture.h"
#include "kernels/core/counters.h"
#include "kernels/probsparse/probsparse.h"
#include "kernels/probsparse/probsparse_internal.h"
#include "own_ref_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_probsparse;

static attn_args ps_args(int64_t B, int64_t H, int64_t H_kv, int64_t Nq, int64_t Nk, int64_t D, const char *mask,
                         const char *params, int threads)
{
    return fx_args_params(B, H, H_kv, Nq, Nk, D, mask, threads, params);
}

/* ---- the double reference ---- */

static const struct {
    int64_t B, H, H_kv, Nq, Nk, D, Dv;
    const char *mask, *params;
} ref_cases[] = {
    {2, 2, 2, 64, 64, 16, 0, "full", ""},                       /* u = 25 of 64 */
    {1, 2, 2, 100, 100, 16, 0, "causal", ""},
    {1, 4, 2, 130, 130, 32, 0, "full", "factor=2"},             /* GQA */
    {2, 2, 1, 70, 70, 16, 24, "causal", "factor=3"},            /* Dv != D */
    {1, 2, 2, 600, 600, 16, 0, "full", "factor=10"},            /* 70 active rows: 3 tiles; 2 key blocks */
    {1, 2, 2, 600, 600, 16, 0, "causal", "factor=10 seed=9"},
    {2, 2, 1, 16, 257, 32, 0, "full", ""},                      /* cross */
    {1, 2, 1, 40, 300, 16, 0, "causal", "factor=1"},            /* cross, bottom-right */
    {1, 2, 2, 90, 90, 16, 0, "causal", "divisor=keys"},         /* the authors' measure */
    {1, 2, 2, 90, 90, 16, 0, "causal", "causal_samples=all"},   /* the authors' sampling */
    {1, 2, 2, 90, 90, 16, 0, "causal", "lazy=sum factor=1"},    /* the authors' lazy rows */
    {2, 2, 2, 1, 1, 16, 0, "full", ""},                         /* one row: u = 0, its one value */
};

Test(probsparse, forward_matches_double_reference_on_shapes_parameters_and_masks, .timeout = 60)
{
    for (size_t i = 0; i < sizeof ref_cases / sizeof *ref_cases; i++) {
        attn_args a = ps_args(ref_cases[i].B, ref_cases[i].H, ref_cases[i].H_kv, ref_cases[i].Nq, ref_cases[i].Nk,
                              ref_cases[i].D, ref_cases[i].mask, ref_cases[i].params, 2);
        a.Dv = ref_cases[i].Dv;
        char what[160];
        snprintf(what, sizeof what, "%s N%ld/%ld H%ld/%ld D%ld %s", ref_cases[i].mask, (long)ref_cases[i].Nq,
                 (long)ref_cases[i].Nk, (long)ref_cases[i].H, (long)ref_cases[i].H_kv, (long)ref_cases[i].D,
                 ref_cases[i].params);
        own_ref_check(K, &a, 20 + i, what);
    }
}

/* ---- limits: equal to softmax attention ---- */

static void assert_oracle(fx_problem *p, const char *what)
{
    memset(p->o.data, 0xff, sizeof(float) * (size_t)(p->o.B * p->o.sb));
    cr_assert_eq(fx_run(K, p, 0), 0, "%s: %s", what, attn_last_error());
    double eo = fx_err_o(p), el = fx_err_lse(p);
    cr_assert(eo <= fx_tol_o(p->a.Nk), "%s: err_O %.3g", what, eo);
    cr_assert(el <= CHECK_TOL_LSE, "%s: err_lse %.3g", what, el);
}

Test(probsparse, u_equal_to_the_query_count_is_softmax_attention, .timeout = 30)
{
    static const char *const masks[] = {"full", "causal"};
    static const int64_t N[] = {64, 257};
    for (int m = 0; m < 2; m++)
        for (int n = 0; n < 2; n++) {
            attn_args a = ps_args(2, 4, 2, N[n], N[n], 32, masks[m], "factor=1000", 2);
            fx_problem p;
            fx_make(&p, &a, 5 + n);
            char what[64];
            snprintf(what, sizeof what, "%s N%ld", masks[m], (long)N[n]);
            assert_oracle(&p, what);
            fx_free(&p);
        }
}

/* Zero queries have M = 0, every other M >= 0 (max over samples >= their
 * mean) and > 0 unless all samples score alike, so the u non-zero rows win;
 * a zero query's softmax is uniform over its keys: the lazy row. */
Test(probsparse, with_lazy_queries_zero_every_row_is_softmax_attention, .timeout = 30)
{
    static const char *const masks[] = {"full", "causal"};
    for (int m = 0; m < 2; m++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            attn_args a = ps_args(1, 2, 1, 200, 200, 16, masks[m], "", 2); /* u = 5 ceil(ln 200) = 30 */
            fx_problem p;
            fx_make(&p, &a, seed);
            for (int64_t h = 0; h < 2; h++)
                for (int64_t i = 0; i < 200; i++)
                    if ((i * 7 + h + seed) % 8) /* 25 of the 200 rows keep their query */
                        memset(attn_at(&p.q, 0, h, i), 0, sizeof(float) * 16);
            fx_ref_forward(&p);
            char what[64];
            snprintf(what, sizeof what, "%s seed %llu", masks[m], (unsigned long long)seed);
            assert_oracle(&p, what);
            fx_free(&p);
        }
}

/* Bottom-right causal with more queries than keys: the first Nq - Nk rows
 * see no key, active or lazy: O = 0, lse = -inf (the others are checked
 * against the reference above). */
Test(probsparse, rows_before_every_key_give_zero_output_and_minus_inf_lse)
{
    static const char *const params[] = {"", "factor=1000"};
    for (int c = 0; c < 2; c++) {
        attn_args a = ps_args(1, 2, 1, 20, 12, 16, "causal", params[c], 1);
        fx_problem p;
        fx_make_for(&p, K, &a, 3);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        for (int64_t h = 0; h < 2; h++)
            for (int64_t i = 0; i < 20; i++) {
                float lse = p.lse[h * 20 + i];
                if (i < 8) {
                    cr_assert(isinf(lse) && lse < 0, "%s h%ld row %ld: lse %g", params[c], (long)h, (long)i, lse);
                    for (int64_t d = 0; d < 16; d++)
                        cr_assert_eq(attn_at(&p.o, 0, h, i)[d], 0.0f, "%s row %ld", params[c], (long)i);
                } else {
                    cr_assert(isfinite(lse), "%s h%ld row %ld: lse %g", params[c], (long)h, (long)i, lse);
                }
            }
        fx_free(&p);
    }
}

/* ---- which rows are exact, what the others get ---- */

/* Rows at i % 16 == 3 get queries 20 times larger: the largest measures, so
 * they (u = 5 ceil(ln 128) = 25 >= 8 of them) attend exactly; the other
 * rows are lazy unless they fill the remaining places. Returns which rows
 * equal the oracle's. */
static void boosted_problem(fx_problem *p, const char *mask, const char *params)
{
    attn_args a = ps_args(1, 1, 1, 128, 128, 16, mask, params, 1);
    fx_make(p, &a, 11);
    for (int64_t i = 3; i < 128; i += 16)
        for (int64_t d = 0; d < 16; d++)
            attn_at(&p->q, 0, 0, i)[d] *= 20.0f;
    fx_ref_forward(p);
    cr_assert_eq(fx_run(K, p, 0), 0, "%s", attn_last_error());
}

static double row_err(const fx_problem *p, int64_t i, const double *want)
{
    double e = 0;
    for (int64_t d = 0; d < 16; d++)
        e = fmax(e, fabs(attn_at(&p->o, 0, 0, i)[d] - want[d]));
    return e;
}

Test(probsparse, rows_with_the_largest_measure_attend_exactly_the_others_take_the_mean_of_v)
{
    static const char *const masks[] = {"full", "causal", "causal"};
    static const char *const params[] = {"", "", "lazy=sum"};
    for (int m = 0; m < 3; m++) {
        fx_problem p;
        boosted_problem(&p, masks[m], params[m]);
        int causal = m > 0, sum_rows = m == 2;
        double run[16] = {0}, want[16];
        int64_t exact = 0, lazy = 0;
        for (int64_t i = 0; i < 128; i++) {
            int64_t n = causal ? i + 1 : 128;
            for (int64_t j = causal ? i : 0; j < n; j++) /* running sum of V over the row's keys */
                for (int64_t d = 0; d < 16; d++)
                    run[d] += p.v64.data[j * 16 + d];
            for (int64_t d = 0; d < 16; d++)
                want[d] = sum_rows ? run[d] : run[d] / (double)n;
            if (!causal)
                memset(run, 0, sizeof run);
            double e_oracle = row_err(&p, i, attn_at64(&p.o64, 0, 0, i)), e_lazy = row_err(&p, i, want);
            float lse = p.lse[i];
            if (i % 16 == 3)
                cr_assert(e_oracle < 1e-5 && fabsf(lse - (float)p.lse64[i]) < 1e-4, "%s: boosted row %ld not exact",
                          masks[m], (long)i);
            else if (e_lazy < 1e-5 * (sum_rows ? (double)n : 1.0) && fabsf(lse - logf((float)n)) < 1e-5f)
                lazy++;
            else
                exact += e_oracle < 1e-5;
        }
        cr_assert_eq(lazy + exact, 120, "%s %s: rows neither exact nor lazy", masks[m], params[m]);
        cr_assert_eq(exact, 25 - 8, "%s %s: %ld other exact rows, expected u - 8 = 17", masks[m], params[m],
                     (long)exact);
        fx_free(&p);
    }
}

/* ---- the measure ---- */

static ps_plan plan_of(const attn_args *a)
{
    ps_plan pl;
    cr_assert_eq(ps_plan_make(&pl, a), 0, "%s", attn_last_error());
    return pl;
}

/* All keys equal: every sample scores s, so M = s - U s / U = 0 with the
 * sample mean and s - U s / Nk with the authors' divisor. */
Test(probsparse, measure_divides_the_sampled_sum_by_the_samples_or_by_nk)
{
    double q[8], k[40 * 8];
    for (int d = 0; d < 8; d++)
        q[d] = 0.5 * (d + 1);
    for (int j = 0; j < 40; j++)
        for (int d = 0; d < 8; d++)
            k[j * 8 + d] = 0.25 * (8 - d);
    double s = 0;
    for (int d = 0; d < 8; d++)
        s += q[d] * k[d];
    attn_args a = ps_args(1, 1, 1, 40, 40, 8, "full", "", 1);
    ps_plan pl = plan_of(&a);
    cr_assert_eq(pl.U, 20, "U = 5 ceil(ln 40) = 20, found %ld", (long)pl.U);
    cr_assert_float_eq(ps_measure(&pl, 3, q, 8, NULL, k, 8), 0.0, 1e-12);
    attn_args b = ps_args(1, 1, 1, 40, 40, 8, "full", "divisor=keys", 1);
    pl = plan_of(&b);
    cr_assert_float_eq(ps_measure(&pl, 3, q, 8, NULL, k, 8), s - 20 * s / 40, 1e-12);
}

/* The kernel measures on fp32 keys, the reference on the same keys widened
 * to double: the measure must have the same bits (D with and without a
 * tail of lanes), or the two could rank rows differently. */
Test(probsparse, measure_has_the_same_bits_from_fp32_and_from_widened_keys)
{
    static const int64_t dims[] = {7, 16, 80, 129};
    for (int c = 0; c < 4; c++) {
        int64_t D = dims[c], N = 50;
        float *k32 = malloc(sizeof(float) * (size_t)(N * D));
        double *k64 = malloc(sizeof(double) * (size_t)(N * D)), *q = malloc(sizeof(double) * (size_t)D);
        for (int64_t j = 0; j < N * D; j++)
            k32[j] = (float)sin(1.3 * (double)j + 0.1), k64[j] = k32[j];
        for (int64_t d = 0; d < D; d++)
            q[d] = (float)cos(0.9 * (double)d);
        attn_args a = ps_args(1, 1, 1, N, N, D, "causal", "", 1);
        ps_plan pl = plan_of(&a);
        for (int64_t i = 0; i < N; i++) {
            double m32 = ps_measure(&pl, i, q, D, k32, NULL, D), m64 = ps_measure(&pl, i, q, D, NULL, k64, D);
            cr_assert(memcmp(&m32, &m64, sizeof m32) == 0, "D %ld row %ld: %.17g vs %.17g", (long)D, (long)i, m32, m64);
        }
        free(k32), free(k64), free(q);
    }
}

/* Causal: the default samples keys at or before the query, so changing
 * later keys leaves an earlier row's measure as it was; the authors'
 * sampling reads the future. */
Test(probsparse, causal_measure_samples_the_past_unless_asked_for_every_key)
{
    enum { N = 64, D = 8, T = 32 };
    double q[D], *k = malloc(sizeof(double) * N * D);
    for (int d = 0; d < D; d++)
        q[d] = sin(d + 1.0);
    for (int j = 0; j < N * D; j++)
        k[j] = cos(0.7 * j);
    static const char *const params[] = {"", "causal_samples=all"};
    for (int c = 0; c < 2; c++) {
        attn_args a = ps_args(1, 1, 1, N, N, D, "causal", params[c], 1);
        ps_plan pl = plan_of(&a);
        double before[T];
        for (int i = 0; i < T; i++)
            before[i] = ps_measure(&pl, i, q, D, NULL, k, D);
        for (int j = T * D; j < N * D; j++)
            k[j] += 3.0;
        int changed = 0;
        for (int i = 0; i < T; i++)
            changed += ps_measure(&pl, i, q, D, NULL, k, D) != before[i];
        if (c == 0)
            cr_assert_eq(changed, 0, "past samples: %d measures of rows < %d moved with later keys", changed, T);
        else
            cr_assert_gt(changed, T / 2, "every key sampled: only %d of %d rows moved", changed, T);
        for (int j = T * D; j < N * D; j++)
            k[j] -= 3.0;
    }
    free(k);
}

/* With every row active the only channel between rows, the ranking, is
 * closed: later Q, K and V leave earlier rows bitwise as they were. */
Test(probsparse, with_every_row_active_later_rows_do_not_reach_earlier_ones)
{
    attn_args a = ps_args(1, 2, 1, 97, 97, 16, "causal", "factor=1000", 2);
    fx_problem p;
    fx_make_for(&p, K, &a, 4);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    float *before = malloc(sizeof(float) * 2 * 40 * 16);
    for (int64_t h = 0; h < 2; h++)
        memcpy(before + h * 40 * 16, attn_at(&p.o, 0, h, 0), sizeof(float) * 40 * 16);
    attn_tensor *t[] = {&p.q, &p.k, &p.v};
    for (int x = 0; x < 3; x++)
        for (int64_t h = 0; h < t[x]->H; h++)
            for (int64_t i = 40; i < 97; i++)
                for (int64_t d = 0; d < 16; d++)
                    attn_at(t[x], 0, h, i)[d] = 2.0f - 3.0f * attn_at(t[x], 0, h, i)[d];
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    for (int64_t h = 0; h < 2; h++)
        cr_assert_eq(memcmp(before + h * 40 * 16, attn_at(&p.o, 0, h, 0), sizeof(float) * 40 * 16), 0,
                     "head %ld: rows < 40 changed", (long)h);
    free(before);
    fx_free(&p);
}

/* ---- fidelity: error falls as the budget grows ---- */

Test(probsparse, error_against_softmax_falls_as_the_factor_grows_mean_over_seeds, .timeout = 60)
{
    static const char *const masks[] = {"full", "causal"};
    static const int factors[] = {1, 5, 20, 80}; /* N = 512: u = 7, 35, 140, 512 */
    for (int m = 0; m < 2; m++) {
        double mean[4];
        for (int f = 0; f < 4; f++) {
            mean[f] = 0;
            for (uint64_t seed = 1; seed <= 3; seed++) {
                char params[64];
                snprintf(params, sizeof params, "factor=%d seed=%llu", factors[f], (unsigned long long)seed);
                attn_args a = ps_args(1, 2, 2, 512, 512, 32, masks[m], params, 2);
                fid_metrics fm;
                cr_assert_eq(check_kernel_fidelity(K, &a, FID_PEAKED, 40 + seed, &fm), 0, "%s", attn_last_error());
                mean[f] += fm.rel_fro / 3;
            }
        }
        for (int f = 1; f < 4; f++)
            cr_assert(mean[f] < mean[f - 1], "%s factor %d: mean error %.4f, not below %.4f at factor %d", masks[m],
                      factors[f], mean[f], mean[f - 1], factors[f - 1]);
        cr_assert(mean[3] < 1e-5, "%s: u = N, mean error %.3g", masks[m], mean[3]);
    }
}

/* ---- draws and seed ---- */

/* Every head and batch entry holding the same data gives the same rows:
 * the draws depend on the query row only (as the authors' one index
 * table), which is also what lets the fidelity view replay one head. */
Test(probsparse, draws_are_shared_by_batch_entries_and_heads)
{
    attn_args a = ps_args(2, 4, 2, 80, 80, 16, "causal", "factor=2", 2);
    fx_problem p;
    fx_make_for(&p, K, &a, 6);
    attn_tensor *t[] = {&p.q, &p.k, &p.v};
    for (int x = 0; x < 3; x++)
        for (int64_t b = 0; b < 2; b++)
            for (int64_t h = 0; h < t[x]->H; h++)
                for (int64_t i = 0; i < 80; i++)
                    memcpy(attn_at(t[x], b, h, i), attn_at(t[x], 0, 0, i), sizeof(float) * 16);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    for (int64_t b = 0; b < 2; b++)
        for (int64_t h = 0; h < 4; h++)
            cr_assert_eq(memcmp(attn_at(&p.o, b, h, 0), attn_at(&p.o, 0, 0, 0), sizeof(float) * 80 * 16), 0,
                         "(b %ld, h %ld) differs from (0, 0)", (long)b, (long)h);
    fx_free(&p);
}

Test(probsparse, the_seed_is_recorded_and_decides_the_samples)
{
    const opt_def *row = NULL;
    for (const opt_def *d = K->params; d->name; d++)
        row = strcmp(d->name, "seed") == 0 ? d : row;
    cr_assert(row && (row->flags & OPT_RECORDED), "the seed row is not OPT_RECORDED");
    fx_problem p[3];
    static const char *const params[] = {"factor=1 seed=1", "factor=1 seed=1", "factor=1 seed=2"};
    for (int s = 0; s < 3; s++) {
        attn_args a = ps_args(1, 2, 2, 300, 300, 16, "full", params[s], 2);
        fx_make_for(&p[s], K, &a, 3);
        cr_assert_eq(fx_run(K, &p[s], 0), 0, "%s", attn_last_error());
    }
    cr_assert(fx_bitwise_equal(&p[0].o, &p[1].o), "the same seed gave different outputs");
    cr_assert(!fx_bitwise_equal(&p[0].o, &p[2].o), "another seed gave the same outputs");
    for (int s = 0; s < 3; s++)
        fx_free(&p[s]);
}

/* ---- cost, views, parameters ---- */

/* FULL, N = 100 (ceil(ln 100) = 5), factor 2: U = u = 10. Forward per head:
 * 2 Nq U D + 2 u Nk (D + Dv); the counters run exactly that. Causal
 * executes less (the active rows' keys), never more. */
Test(probsparse, cost_model_matches_the_formula_and_the_counters)
{
    attn_args a = ps_args(2, 2, 1, 100, 100, 16, "full", "factor=2", 1);
    a.Dv = 8;
    double fwd = 2 * 2 * (2.0 * 100 * 10 * 16 + 2.0 * 10 * 100 * (16 + 8));
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), fwd, 1e-6);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_BWD), 0.0, 1e-12);
    cr_assert_float_eq(K->bytes(&a, ATTN_PASS_FWD), 4.0 * 2 * (2 * 100 * 16 + 100 * 24 + 2 * 100 * 8 + 2 * 100), 1e-6);
    cr_assert_eq(K->state_bytes(&a), 4u * 2 * 100 * 24);
    fx_problem p;
    fx_make_for(&p, K, &a, 8);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert_float_eq((double)attn_counter_get(ATTN_CNT_FLOPS), fwd, 0.5);
    cr_assert_eq(attn_counter_get(ATTN_CNT_EXPS), 2 * 2 * 10 * 100);
    cr_assert(attn_counter_get(ATTN_CNT_BYTES_READ) > 0);
    fx_free(&p);
    attn_args c = ps_args(2, 2, 1, 100, 100, 16, "causal", "factor=2", 1);
    fx_make_for(&p, K, &c, 8);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    double got = (double)attn_counter_get(ATTN_CNT_FLOPS);
    cr_assert(got < K->flops(&c, ATTN_PASS_FWD) && got > 2 * 2 * 2.0 * 100 * 10 * 16, "causal counted %.0f", got);
    fx_free(&p);
}

/* The authors' cumulative sum is not an attention row: no view then. */
Test(probsparse, view_is_withheld_when_lazy_rows_are_sums)
{
    attn_args a = ps_args(1, 1, 1, 32, 32, 16, "causal", "lazy=sum", 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 2);
    attn_io64 io = problem_io64(&p);
    int64_t rows[2] = {0, 31};
    double P[64];
    unsigned char sel[64];
    cr_assert_eq(K->ref_view(&p.a, &io, 0, 0, rows, 2, P, sel), 0);
    attn_args f = ps_args(1, 1, 1, 32, 32, 16, "full", "lazy=sum", 1); /* FULL lazy rows are means */
    fx_free(&p);
    fx_make_for(&p, K, &f, 2);
    io = problem_io64(&p);
    cr_assert_eq(K->ref_view(&p.a, &io, 0, 0, rows, 2, P, sel), ATTN_VIEW_ROWS);
    fx_free(&p);
}

Test(probsparse, refuses_other_masks_bad_factors_and_unknown_parameters)
{
    attn_ctx ctx;
    attn_args w = ps_args(1, 1, 1, 16, 16, 16, "window:wl=4,wr=0", "", 1);
    cr_assert_eq(attn_ctx_create(K, &w, &ctx), ATTN_EUNSUPPORTED);
    attn_args zero = ps_args(1, 1, 1, 16, 16, 16, "full", "factor=0", 1);
    cr_assert_eq(attn_ctx_create(K, &zero, &ctx), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "factor"), "%s", attn_last_error());
    attn_args unknown = ps_args(1, 1, 1, 16, 16, 16, "full", "top=3", 1);
    cr_assert_neq(attn_ctx_create(K, &unknown, &ctx), 0);
    attn_args bad = ps_args(1, 1, 1, 16, 16, 16, "causal", "lazy=median", 1);
    cr_assert_neq(attn_ctx_create(K, &bad, &ctx), 0);
    attn_args ok = ps_args(1, 2, 1, 8, 16, 16, "causal", "divisor=keys causal_samples=all lazy=sum", 1);
    cr_assert_eq(attn_ctx_create(K, &ok, &ctx), 0, "%s", attn_last_error());
    attn_ctx_destroy(&ctx);
}
