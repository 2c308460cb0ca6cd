/* Properties of the `combiner` kernel (Combiner-Fixed: own span exact, one
 * summary per other span, one softmax): the fp32 kernel equals its double
 * reference (spans, summary kinds, log_count, tiles, GQA, full and causal)
 * and its gradients, dw included, equal central differences of it; span 1
 * and span >= N are softmax attention (O and lse against the oracle);
 * constant values give that constant; a span of identical keys is summarised
 * exactly; the error against the oracle on peaked inputs falls as the cost
 * grows towards either limit; the fidelity rows are distributions that
 * reproduce the output; the cost model; parameter paths keep causality and
 * thread independence; a small LM with it matches its double model's gradients. */
#include "harness/measure/check.h"
#include "harness/measure/fidelity.h"
#include "harness/measure/fixture.h"
#include "kernels/combiner/combiner.h"
#include "kernels/core/counters.h"
#include "kernels/core/oracle.h"
#include "model_check.h"
#include "own_ref_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_combiner;

static attn_args cb_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, const char *mask,
                         const char *params, int threads)
{
    return fx_args_params(B, H, H_kv, N, N, D, mask, threads, params);
}

Test(combiner, forward_matches_double_reference, .timeout = 60)
{
    static const struct {
        int64_t B, H, H_kv, N, D;
        const char *mask, *params;
    } cases[] = {
        {2, 2, 2, 64, 16, "full", "span=8"},
        {2, 2, 2, 64, 16, "causal", "span=8"},
        {1, 3, 3, 130, 32, "full", "span=8 tile=3"},
        {1, 3, 3, 130, 32, "causal", "span=13 tile=5 summary=mean"},
        {2, 4, 2, 57, 16, "causal", "log_count=0"},
        {1, 2, 1, 100, 64, "full", "summary=mean log_count=0 span=7"},
        {1, 1, 1, 1, 16, "causal", ""},
        {1, 2, 2, 33, 16, "full", "span=1 tile=4"},
        {2, 2, 2, 64, 16, "full", "partition=axial span=8"},
        {2, 4, 2, 64, 16, "causal", "partition=axial span=8 tile=3"},
        {1, 3, 3, 130, 32, "full", "partition=axial span=11 summary=mean tile=4"},
        {1, 3, 3, 130, 32, "causal", "partition=axial span=13 log_count=0"},
        {1, 2, 1, 45, 16, "full", "partition=axial span=40"},
        {1, 2, 1, 45, 16, "causal", "partition=axial span=1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char what[128];
        snprintf(what, sizeof what, "%s B%ld H%ld/%ld N%ld D%ld %s", cases[i].mask, (long)cases[i].B,
                 (long)cases[i].H, (long)cases[i].H_kv, (long)cases[i].N, (long)cases[i].D, cases[i].params);
        attn_args a = cb_args(cases[i].B, cases[i].H, cases[i].H_kv, cases[i].N, cases[i].D, cases[i].mask,
                              cases[i].params, 2);
        own_ref_check(K, &a, 20 + i, what);
    }
}

Test(combiner, backward_matches_reference_gradients_including_dw, .timeout = 60)
{
    static const struct {
        int64_t B, H, H_kv, N;
        const char *mask, *params;
    } cases[] = {
        {1, 2, 2, 10, "full", "span=4 tile=3"},
        {2, 2, 1, 11, "causal", "span=3 tile=2"},
        {1, 3, 3, 9, "causal", "span=4 summary=mean"},
        {1, 2, 1, 8, "full", "span=3 log_count=0"},
        {1, 2, 2, 10, "full", "partition=axial span=3 tile=2"},
        {2, 2, 1, 11, "causal", "partition=axial span=3"},
        {1, 2, 1, 9, "causal", "partition=axial span=4 summary=mean"},
        {1, 2, 1, 13, "full", "partition=axial span=5 log_count=0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        attn_args a = cb_args(cases[i].B, cases[i].H, cases[i].H_kv, cases[i].N, 8, cases[i].mask, cases[i].params, 2);
        double e[ATTN_CHECK_GRADS];
        cr_assert_eq(check_kernel_backward(K, &a, 60 + i, e), 0, "%s", attn_last_error());
        for (int g = 0; g < ATTN_CHECK_GRADS; g++)
            if (g < 3 || (g == 6 && !strstr(cases[i].params, "mean")))
                cr_assert(e[g] <= 1e-4, "case %zu (%s %s): %s err %.3g", i, cases[i].mask, cases[i].params,
                          check_grad_names[g], e[g]);
    }
}

/* max|O - O_oracle| / max|V| and the largest lse error of p's kernel
 * output against the softmax oracle on the same inputs. */
static void oracle_errors(const fx_problem *p, double *err_o, double *err_lse)
{
    attn_args oa = p->a;
    oa.params = (param_bag){0};
    attn_tensor_f64 o = p->o64;
    o.data = calloc((size_t)(o.B * o.sb), sizeof(double));
    size_t rows = (size_t)(oa.B * oa.H * oa.Nq);
    double *lse = calloc(rows, sizeof(double)), vmax = 0, e = 0, le = 0;
    attn_oracle_forward_f64(&oa, &p->q64, &p->k64, &p->v64, &o, lse);
    for (int64_t j = 0; j < p->v.B * p->v.sb; j++)
        vmax = fmax(vmax, fabs(p->v.data[j]));
    for (int64_t b = 0, n = 0; b < oa.B; b++)
        for (int64_t h = 0; h < oa.H; h++)
            for (int64_t r = 0; r < oa.Nq; r++, n++) {
                for (int64_t d = 0; d < oa.D; d++)
                    e = fmax(e, fabs(attn_at(&p->o, b, h, r)[d] - attn_at64(&o, b, h, r)[d]));
                le = fmax(le, fabs(p->lse[n] - lse[n]) / (1 + fabs(lse[n])));
            }
    *err_o = e / vmax;
    *err_lse = le;
    free(o.data), free(lse);
}

/* Keys made constant inside each span (fixed, k_j depends on j / s) or
 * column (axial, on j % s); s = 0 leaves them random. */
static void set_identical_keys(fx_problem *p, int64_t s, int axial)
{
    for (int64_t h = 0; s && h < p->k.H; h++)
        for (int64_t n = 0; n < p->k.N; n++)
            memcpy(attn_at(&p->k, 0, h, n), attn_at(&p->k, 0, h, axial ? n % s : n / s * s),
                   sizeof(float) * (size_t)p->k.D);
    problem_widen_inputs(p);
}

/* Runs the kernel on a's problem from seed (keys as set_identical_keys
 * makes them) and measures it against the oracle (oracle_errors). */
static void kernel_vs_oracle(const attn_args *a, uint64_t seed, int64_t same_s, int axial, double *eo, double *el)
{
    fx_problem p;
    fx_make_for(&p, K, a, seed);
    set_identical_keys(&p, same_s, axial);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    oracle_errors(&p, eo, el);
    fx_free(&p);
}

/* s = 1: every summary is its one key (q = 1, ln 1 = 0); s >= N: one span
 * (one row), every key direct. Both are softmax attention, any w_h, either
 * mask. Axial: s >= N, and s >= N/2 too: with two rows every column summary
 * is the one key of the other row (with s = 1 its one column summarises
 * every other key). */
Test(combiner, span_one_and_span_at_least_n_equal_the_softmax_oracle, .timeout = 60)
{
    static const char *const params[] = {"span=1", "span=1 summary=mean tile=7", "span=70", "span=500 tile=16",
                                         "span=1 log_count=0", "partition=axial span=70",
                                         "partition=axial span=90 summary=mean", "partition=axial span=35"};
    static const char *const masks[] = {"full", "causal"};
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 8; i++) {
            attn_args a = cb_args(2, 4, 2, 70, 32, masks[m], params[i], 2);
            double eo, el;
            kernel_vs_oracle(&a, 40 + (uint64_t)i, 0, 0, &eo, &el);
            cr_assert(eo <= fx_tol_o(70), "%s %s: err_O %.3g against the oracle", masks[m], params[i], eo);
            cr_assert(el <= CHECK_TOL_LSE, "%s %s: lse err %.3g against the oracle", masks[m], params[i], el);
        }
}

/* The limit holds because every key is counted once: with s = 8 (a real
 * approximation) the same inputs are far from the oracle, so the test
 * above can fail. */
Test(combiner, a_proper_span_is_not_the_oracle)
{
    attn_args a = cb_args(1, 2, 2, 70, 32, "full", "span=8", 1);
    double eo, el;
    kernel_vs_oracle(&a, 3, 0, 0, &eo, &el);
    cr_assert(eo > 1e-3, "span=8 equals the oracle (err %.3g)", eo);
}

Test(combiner, constant_values_give_that_constant)
{
    static const char *const params[] = {"span=8", "span=5 summary=mean", "span=3 log_count=0"};
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 3; i++) {
            attn_args a = cb_args(1, 2, 1, 41, 16, m ? "causal" : "full", params[i], 2);
            fx_problem p;
            fx_make_for(&p, K, &a, 9);
            for (int64_t h = 0; h < p.v.H; h++)
                for (int64_t n = 0; n < p.v.N; n++)
                    for (int64_t d = 0; d < p.v.D; d++)
                        attn_at(&p.v, 0, h, n)[d] = 0.25f * (float)d - 1.0f;
            cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
            for (int64_t h = 0; h < p.o.H; h++)
                for (int64_t n = 0; n < p.o.N; n++)
                    for (int64_t d = 0; d < p.o.D; d++)
                        cr_assert(fabsf(attn_at(&p.o, 0, h, n)[d] - (0.25f * (float)d - 1.0f)) < 1e-5f,
                                  "%s: O[%ld][%ld][%ld] = %g", params[i], (long)h, (long)n, (long)d,
                                  attn_at(&p.o, 0, h, n)[d]);
            fx_free(&p);
        }
}

/* Keys constant inside each summary (values free): q_u is uniform whatever
 * w_h, kbar_u is that key and sc <q, k> + ln |u| is the logsumexp of the
 * summary's equal scores, so p(j | i) is the oracle's row exactly. Fixed:
 * k_j depends on the span j / s; axial: on the column j % s. */
Test(combiner, uniform_summary_over_identical_keys_is_exact)
{
    static const struct {
        const char *params;
        int64_t s;
        int axial;
    } cases[] = {{"span=8", 8, 0}, {"span=6 summary=mean tile=4", 6, 0}, {"partition=axial span=7", 7, 1},
                 {"partition=axial span=5 summary=mean tile=2", 5, 1}};
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 4; i++) {
            attn_args a = cb_args(1, 2, 2, 45, 16, m ? "causal" : "full", cases[i].params, 2);
            double eo, el;
            kernel_vs_oracle(&a, 11, cases[i].s, cases[i].axial, &eo, &el);
            cr_assert(eo <= fx_tol_o(45), "%s: err_O %.3g against the oracle", cases[i].params, eo);
            cr_assert(el <= CHECK_TOL_LSE, "%s: lse err %.3g", cases[i].params, el);
        }
    /* without ln |u| the same keys are under-weighted: no longer exact */
    for (int axial = 0; axial < 2; axial++) {
        attn_args a =
            cb_args(1, 2, 2, 45, 16, "full", axial ? "partition=axial span=7 log_count=0" : "span=8 log_count=0", 2);
        double eo, el;
        kernel_vs_oracle(&a, 11, axial ? 7 : 8, axial, &eo, &el);
        cr_assert(eo > 1e-3, "log_count=0 is exact too (err %.3g): the ln|u| test proves nothing", eo);
    }
}

/* The partitions differ: fixed summarises spans, axial columns, so keys
 * constant per column are exact for axial only. */
Test(combiner, axial_summarises_columns_and_fixed_spans)
{
    for (int axial = 0; axial < 2; axial++) {
        attn_args a = cb_args(1, 2, 2, 45, 16, "causal", axial ? "partition=axial span=7" : "span=7", 2);
        double eo, el;
        kernel_vs_oracle(&a, 12, 7, 1, &eo, &el);
        cr_assert(axial ? eo <= fx_tol_o(45) : eo > 1e-3, "%s: err_O %.3g", axial ? "axial" : "fixed", eo);
    }
}

/* Relative Frobenius error against the oracle on the peaked family (sampled
 * rows, harness/measure/fidelity.h) at span s. */
static double peaked_error(const char *mask, const char *partition, int64_t s, uint64_t seed)
{
    char params[64];
    snprintf(params, sizeof params, "partition=%s span=%ld", partition, (long)s);
    attn_args a = cb_args(1, 2, 2, 512, 32, mask, params, 2);
    fid_metrics m;
    cr_assert_eq(check_kernel_fidelity(K, &a, FID_PEAKED, seed, &m), 0, "%s", attn_last_error());
    cr_assert(!isnan(m.kl), "combiner forms attention rows: KL must be reported (%s)", m.kl_na);
    return m.rel_fro;
}

/* The cost per query, N/s summaries + s keys (axial: s column summaries +
 * s keys), is least near s = sqrt N (here 23; s = 32 costs about the same)
 * and grows towards the limits that are softmax attention: s -> 1 and
 * s -> N for fixed, s -> N/2 for axial (two rows: every column summary of
 * the other row is one key). On peaked inputs the untrained summaries (random
 * w_h) lose the planted keys of other spans, so the error is near 1 at the
 * cheapest span; it must fall along every chain of growing cost, mean of 3
 * seeds. */
Test(combiner, error_on_peaked_inputs_falls_as_the_budget_grows_towards_either_limit, .timeout = 60)
{
    static const struct {
        const char *partition;
        int64_t spans[4];
    } chains[] = {{"fixed", {32, 8, 2, 1}}, {"fixed", {32, 128, 256, 512}}, {"axial", {32, 64, 128, 256}}};
    static const char *const masks[] = {"full", "causal"};
    for (int mk = 0; mk < 2; mk++)
        for (int c = 0; c < 3; c++) {
            double prev = INFINITY, mean = 0;
            for (int i = 0; i < 4; i++, prev = mean) {
                mean = 0;
                for (uint64_t seed = 0; seed < 3; seed++)
                    mean += peaked_error(masks[mk], chains[c].partition, chains[c].spans[i], 200 + seed) / 3;
                cr_log_info("%s %s span=%ld: mean rel_fro_err %.4f", masks[mk], chains[c].partition,
                            (long)chains[c].spans[i], mean);
                cr_assert(mean < prev, "%s %s span=%ld: mean error %.4f, at the cheaper span %.4f", masks[mk],
                          chains[c].partition, (long)chains[c].spans[i], mean, prev);
            }
            cr_assert(mean < 1e-5, "%s %s span=%ld is softmax attention, error %.3g", masks[mk], chains[c].partition,
                      (long)chains[c].spans[3], mean);
        }
}

/* The rows ref_view returns are distributions over the original keys, zero
 * after the query under a causal mask, and P V is the reference output. */
Test(combiner, fidelity_rows_are_distributions_that_give_the_output)
{
    static const char *const params[] = {"span=5", "span=7 summary=mean", "span=4 log_count=0",
                                         "partition=axial span=6", "partition=axial span=5 summary=mean"};
    for (int m = 0; m < 2; m++)
        for (int c = 0; c < 5; c++) {
            attn_args a = cb_args(1, 2, 1, 37, 16, m ? "causal" : "full", params[c], 1);
            fx_problem p;
            fx_make_for(&p, K, &a, 17);
            attn_io64 io = problem_io64(&p);
            int64_t rows[] = {0, 4, 5, 19, 36}, N = 37;
            double *P = malloc(sizeof(double) * 5 * (size_t)N);
            for (int64_t h = 0; h < 2; h++) {
                cr_assert_eq(K->ref_view(&p.a, &io, 0, h, rows, 5, P, NULL), ATTN_VIEW_ROWS);
                for (int r = 0; r < 5; r++) {
                    double sum = 0;
                    for (int64_t j = 0; j < N; j++) {
                        cr_assert(P[r * N + j] >= 0, "negative weight");
                        cr_assert(!m || j <= rows[r] || P[r * N + j] == 0, "causal row %ld weighs key %ld",
                                  (long)rows[r], (long)j);
                        sum += P[r * N + j];
                    }
                    cr_assert(fabs(sum - 1) < 1e-12, "row %ld sums to %.15f", (long)rows[r], sum);
                    for (int64_t d = 0; d < 16; d++) {
                        double o = 0;
                        for (int64_t j = 0; j < N; j++)
                            o += P[r * N + j] * attn_at64(&p.v64, 0, 0, j)[d];
                        cr_assert(fabs(o - attn_at64(&p.o64, 0, h, rows[r])[d]) < 1e-12, "%s: P V != O_ref",
                                  params[c]);
                    }
                }
            }
            free(P);
            fx_free(&p);
        }
}

/* span = N is dense softmax attention: the cost model then is the softmax
 * convention plus the summaries' products; the executed products are at
 * least the useful ones. */
Test(combiner, cost_model_and_counters)
{
    for (int m = 0; m < 2; m++) {
        attn_args dense = cb_args(2, 4, 2, 96, 32, m ? "causal" : "full", "span=96", 1);
        attn_args mean = cb_args(2, 4, 2, 96, 32, m ? "causal" : "full", "span=96 summary=mean", 1);
        attn_args axial = cb_args(2, 4, 2, 96, 32, m ? "causal" : "full", "span=96 summary=mean partition=axial", 1);
        double twice = m ? 1 : 2; /* FULL axial: a prefix and a suffix run */
        cr_assert_eq(K->flops(&axial, ATTN_PASS_FWD),
                     attn_softmax_flops(&axial, ATTN_PASS_FWD) + twice * 2 * 4 * (2.0 * 96 * 64));
        double summ = 2 * 4 * (2.0 * 96 * 64), wlog = 2 * 4 * (2.0 * 96 * 32);
        cr_assert_eq(K->flops(&mean, ATTN_PASS_FWD), attn_softmax_flops(&mean, ATTN_PASS_FWD) + summ);
        cr_assert_eq(K->flops(&dense, ATTN_PASS_FWD), attn_softmax_flops(&dense, ATTN_PASS_FWD) + summ + wlog);
        cr_assert_eq(K->flops(&mean, ATTN_PASS_BWD), attn_softmax_flops(&mean, ATTN_PASS_BWD) + 2 * summ);
    }
    /* full, s = 8, N = 64: 8 spans; each query scores 7 summaries and 8 keys */
    attn_args a = cb_args(1, 2, 2, 64, 16, "full", "span=8 summary=mean", 2);
    double f = K->flops(&a, ATTN_PASS_FWD);
    cr_assert_eq(f, 2 * (64.0 * 15 * 2 * 32 + 2.0 * 64 * 32));
    cr_assert_eq(K->state_bytes(&a), sizeof(float) * (2 * 8 * 32 + 2 * 8 * 32));
    /* axial causal, s = 8, N = 64: rows 1..7 read 8 column summaries each */
    attn_args ax = cb_args(1, 2, 2, 64, 16, "causal", "span=8 summary=mean partition=axial", 2);
    cr_assert_eq(K->flops(&ax, ATTN_PASS_FWD), 2 * (2 * (56.0 * 8 + 8 * 36) * 32 + 2.0 * 64 * 32));
    fx_problem p;
    fx_make_for(&p, K, &a, 4);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    double run = (double)attn_counter_get(ATTN_CNT_FLOPS);
    cr_assert(run >= f && run <= 1.2 * f, "executed %.0f FLOPs, useful %.0f", run, f);
    cr_assert_eq(attn_counter_get(ATTN_CNT_EXPS), 2 * 64 * 16, "one exp per scored column, own summary included");
    fx_free(&p);
}

Test(combiner, default_span_is_round_sqrt_n_and_a_prefix_keeps_it)
{
    attn_args a = cb_args(1, 1, 1, 1000, 16, "causal", NULL, 1);
    cb_plan pl;
    cr_assert_eq(cb_plan_make(&pl, &a), 0, "%s", attn_last_error());
    cr_assert_eq(pl.s, 32);
    attn_args pre = cb_args(1, 1, 1, 100, 16, "causal", NULL, 1);
    K->ref_prefix_args(&a, 0, &pre);
    cr_assert_eq(cb_plan_make(&pl, &pre), 0, "%s", attn_last_error());
    cr_assert_eq(pl.s, 32, "the prefix problem has span %ld", (long)pl.s);
}

Test(combiner, weights_of_another_width_and_shifted_queries_are_refused)
{
    attn_args a = cb_args(1, 2, 2, 24, 16, "full", "span=4", 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 3);
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, &p.a, &ctx), 0, "%s", attn_last_error());
    attn_io io = problem_io(&p);
    io.w.D = 8;
    cr_assert_eq(K->forward(&ctx, &io), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "io.w") != NULL, "%s", attn_last_error());
    attn_ctx_destroy(&ctx);
    fx_free(&p);
    attn_args shifted = cb_args(1, 2, 2, 24, 16, "causal", NULL, 1);
    shifted.q_off = 3;
    cr_assert_eq(attn_ctx_create(K, &shifted, &ctx), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "q_off") != NULL, "%s", attn_last_error());
}

Test(combiner, parameter_paths_keep_causality_and_thread_independence, .timeout = 60)
{
    static const char *const params[] = {"span=8 tile=3", "span=13 tile=5 summary=mean", "span=1", "span=97",
                                         "partition=axial span=9 tile=4", "partition=axial span=1"};
    for (int i = 0; i < 6; i++) {
        attn_args a = cb_args(1, 4, 2, 97, 16, "causal", params[i], 2);
        int ok;
        for (int64_t t = 40; t <= 41; t++) {
            cr_assert_eq(check_kernel_causal_leakage(K, &a, t, &ok), 0, "%s", attn_last_error());
            cr_assert(ok, "%s: rows < %ld changed when later rows did", params[i], (long)t);
        }
        for (int m = 0; m < 2; m++) {
            attn_args d = cb_args(2, 4, 2, 97, 16, m ? "causal" : "full", params[i], 1);
            cr_assert_eq(check_kernel_thread_determinism(K, &d, 3, &ok), 0, "%s", attn_last_error());
            cr_assert(ok, "%s %s: 1 and 3 threads differ", m ? "causal" : "full", params[i]);
        }
    }
}

Test(combiner, lm_with_combiner_matches_the_double_model, .timeout = 60)
{
    nn_model_cfg c = {.head = NN_HEAD_LM, .vocab = 11, .max_len = 16, .layers = 2, .d_model = 16, .heads = 2,
                      .mlp = 24, .n_kernels = 1, .loops = 1, .causal = 1};
    c.variant = NN_VARIANT_LM;
    c.pos = NN_POS_LEARNED;
    c.pool = NN_POOL_CLS;
    snprintf(c.kernels[0], sizeof c.kernels[0], "combiner");
    cr_assert_eq(param_bag_add(&c.kparams, "span=3"), 0);
    nn_attn_cfg blk = {.C = 16, .H = 2, .H_kv = 2, .kernel = K, .mask = {.kind = ATTN_MASK_CAUSAL},
                       .params = c.kparams, .max_len = c.max_len};
    mc_check_block(&blk, 2, 7, 2, 2026, "block combiner span=3");
    mc_lm_batch t;
    mc_lm_batch_make(&t, 3, 7, 11, 9);
    mc_gradcheck(&c, &t.b, 7, 30, "lm combiner span=3");
    cr_assert_eq(param_bag_add(&c.kparams, "partition=axial"), 0);
    blk.params = c.kparams;
    mc_check_block(&blk, 2, 7, 2, 2027, "block combiner axial span=3");
    mc_gradcheck(&c, &t.b, 7, 30, "lm combiner axial span=3");
}
