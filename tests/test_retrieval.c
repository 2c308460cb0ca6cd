/* Properties of the `retrieval` kernel (RetrievalAttention, IVF index): the
 * fp32 kernel equals its double reference on decode shapes (Nq = 1 and 4,
 * GQA), on Nq = Nk causal problems that use several index stages and in
 * exact mode; r >= the visible keys is softmax attention; r = 0 is `decode`
 * under the sinks + window mask; exact=1 returns the exhaustive top r
 * (bitwise the same output); the error against softmax falls as more lists
 * are probed (mean over seeds, peaked inputs); one decode step reads far
 * fewer bytes than the cache holds; build=once reuses the index and the
 * stats accessor reports it. Causal leakage, thread determinism and strided
 * views on index paths: test_properties.c. */
#include "harness/measure/fidelity.h"
#include "harness/measure/fixture.h"
#include "kernels/core/counters.h"
#include "kernels/core/registry.h"
#include "kernels/retrieval/retrieval.h"
#include "own_ref_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_retrieval;

static attn_args ret_args(int64_t H, int64_t H_kv, int64_t Nq, int64_t Nk, int64_t D, const char *mask,
                          const char *params)
{
    return fx_args_params(1, H, H_kv, Nq, Nk, D, mask, 2, params);
}

static const struct {
    int64_t B, H, H_kv, Nq, Nk, D;
    const char *mask, *params;
} ref_cases[] = {
    /* one decode step, one stage trained on the whole index */
    {1, 8, 2, 1, 3000, 32, "full", "n_sink=4 w=64 r=32 min_index=64"},
    {2, 4, 1, 4, 2000, 16, "causal", "n_sink=4 w=32 r=16 min_index=64 nprobe=3"},
    {1, 4, 2, 4, 2000, 16, "full", "n_sink=4 w=32 r=16 min_index=64 exact=1"},
    /* every row a step: stages 16, 32, 64, 128 */
    {1, 4, 2, 300, 300, 16, "causal", "n_sink=2 w=8 r=8 min_index=16"},
    {1, 4, 2, 300, 300, 16, "causal", "n_sink=2 w=8 r=8 min_index=16 exact=1 train=0"},
    {2, 2, 1, 130, 130, 32, "full", "n_sink=0 w=1 r=5 min_index=8 nlist=7 nprobe=2"},
    /* exhaustive: fewer keys than min_index, and r larger than the index */
    {1, 2, 2, 64, 64, 16, "causal", "n_sink=3 w=5 r=6"},
    {1, 2, 2, 1, 400, 16, "full", "n_sink=1 w=3 r=500"},
};

Test(retrieval, equals_its_double_reference_on_decode_and_staged_problems, .timeout = 60)
{
    for (size_t i = 0; i < sizeof ref_cases / sizeof *ref_cases; i++) {
        char what[192];
        snprintf(what, sizeof what, "%s B%ld H%ld/%ld N%ld/%ld D%ld %s", ref_cases[i].mask, (long)ref_cases[i].B,
                 (long)ref_cases[i].H, (long)ref_cases[i].H_kv, (long)ref_cases[i].Nq, (long)ref_cases[i].Nk,
                 (long)ref_cases[i].D, ref_cases[i].params);
        attn_args a = fx_args_params(ref_cases[i].B, ref_cases[i].H, ref_cases[i].H_kv, ref_cases[i].Nq, ref_cases[i].Nk,
                              ref_cases[i].D, ref_cases[i].mask, 2, ref_cases[i].params);
        fx_problem p;
        fx_make_for(&p, K, &a, 11 + i);
        attn_io io = problem_io(&p);
        fid_fill(FID_PEAKED, &p.a, 11 + i, &io);
        fx_ref_forward(&p);
        own_ref_check_problem(K, &p, what);
    }
}

/* max|O - oracle| / max|V| and the lse error of the kernel on problem a (seed). */
static void against_oracle(const attn_args *a, uint64_t seed, double *err_o, double *err_lse)
{
    fx_problem p;
    fx_make(&p, a, seed);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    *err_o = fx_err_o(&p);
    *err_lse = fx_err_lse(&p);
    fx_free(&p);
}

Test(retrieval, retrieving_every_visible_key_is_softmax_attention, .timeout = 30)
{
    const struct {
        int64_t H, H_kv, Nq, Nk;
        const char *mask, *params;
    } cases[] = {
        {8, 2, 1, 700, "full", "n_sink=4 w=16 r=700 min_index=32"},
        {8, 2, 4, 700, "causal", "n_sink=4 w=16 r=700 min_index=32"},
        {4, 2, 120, 120, "causal", "n_sink=2 w=4 r=120 min_index=8"},
        {4, 4, 50, 50, "full", "n_sink=0 w=0 r=50"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        attn_args a = ret_args(cases[i].H, cases[i].H_kv, cases[i].Nq, cases[i].Nk, 32, cases[i].mask, cases[i].params);
        double eo, el;
        against_oracle(&a, 5 + i, &eo, &el);
        cr_assert(eo <= fx_tol_o(a.Nk) && el <= 1e-5, "%s %s: err_O %.3g, err_lse %.3g", cases[i].mask,
                  cases[i].params, eo, el);
    }
}

/* r = 0: the static set alone, which is `decode` under sink:n=n_sink,w=w-1
 * (the window's w positions include the query's own). */
Test(retrieval, retrieving_nothing_is_decode_under_the_sink_window_mask)
{
    const struct {
        int64_t Nq, Nk;
        const char *mask;
    } cases[] = {{1, 500, "full"}, {4, 500, "causal"}, {90, 90, "causal"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        attn_args a = ret_args(8, 2, cases[i].Nq, cases[i].Nk, 32, cases[i].mask, "n_sink=4 w=17 r=0");
        attn_args d = fx_args(1, 8, 2, cases[i].Nq, cases[i].Nk, 32, "sink:n=4,w=16", 2);
        problem pa, pd;
        cr_assert_eq(problem_make(&pa, K, &a, 3, 0), 0);
        cr_assert_eq(problem_make(&pd, NULL, &d, 3, 0), 0);
        cr_assert_eq(fx_run(K, &pa, 0), 0, "%s", attn_last_error());
        cr_assert_eq(fx_run(attn_find_kernel("decode"), &pd, 0), 0, "%s", attn_last_error());
        double e = 0;
        for (int64_t h = 0; h < a.H; h++)
            for (int64_t n = 0; n < a.Nq; n++) {
                for (int64_t x = 0; x < a.D; x++)
                    e = fmax(e, fabs(attn_at(&pa.o, 0, h, n)[x] - attn_at(&pd.o, 0, h, n)[x]));
                float la = pa.lse[h * a.Nq + n], ld = pd.lse[h * a.Nq + n];
                cr_assert(fabsf(la - ld) <= 1e-5f * (1 + fabsf(ld)), "%s row %ld: lse %g vs decode %g", cases[i].mask,
                          (long)n, la, ld);
            }
        cr_assert(e <= 2e-5, "%s Nq %ld: max |O - decode| = %.3g", cases[i].mask, (long)cases[i].Nq, e);
        problem_free(&pa);
        problem_free(&pd);
    }
}

/* exact=1 scans lists until their bound falls below the r-th score: the
 * same keys as an exhaustive search, so the same bits. */
Test(retrieval, exact_ivf_search_returns_the_exhaustive_top_r, .timeout = 30)
{
    const struct {
        int64_t Nq, Nk;
        const char *mask;
        fid_inputs f;
    } cases[] = {{4, 3000, "causal", FID_PEAKED}, {1, 3000, "full", FID_GAUSSIAN}, {200, 200, "causal", FID_PEAKED}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *params[2] = {"n_sink=2 w=16 r=16 min_index=16 exact=1 nprobe=1",
                                 "n_sink=2 w=16 r=16 min_index=100000"};
        problem p[2];
        for (int m = 0; m < 2; m++) {
            attn_args a = ret_args(8, 2, cases[i].Nq, cases[i].Nk, 32, cases[i].mask, params[m]);
            cr_assert_eq(problem_make(&p[m], K, &a, 7, 0), 0);
            attn_io io = problem_io(&p[m]);
            fid_fill(cases[i].f, &p[m].a, 7, &io);
            cr_assert_eq(fx_run(K, &p[m], 0), 0, "%s", attn_last_error());
        }
        cr_assert(fx_bitwise_equal(&p[0].o, &p[1].o), "%s Nq %ld: exact IVF differs from the exhaustive search",
                  cases[i].mask, (long)cases[i].Nq);
        problem_free(&p[0]);
        problem_free(&p[1]);
    }
}

/* ||O - oracle||_F / ||oracle||_F of one decode problem (Nq = 4, GQA 8/2). */
static double rel_err(const char *params, fid_inputs f, uint64_t seed)
{
    attn_args a = ret_args(8, 2, 4, 4096, 32, "causal", params);
    fx_problem p;
    fx_make(&p, &a, seed);
    attn_io io = problem_io(&p);
    fid_fill(f, &p.a, seed, &io);
    fx_ref_forward(&p);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    double d2 = 0, r2 = 0;
    for (int64_t h = 0; h < a.H; h++)
        for (int64_t n = 0; n < a.Nq; n++)
            for (int64_t x = 0; x < a.D; x++) {
                double g = attn_at(&p.o, 0, h, n)[x], w = attn_at64(&p.o64, 0, h, n)[x];
                d2 += (g - w) * (g - w), r2 += w * w;
            }
    fx_free(&p);
    return sqrt(d2 / r2);
}

Test(retrieval, error_against_softmax_falls_as_more_lists_are_probed, .timeout = 60)
{
    /* 64 lists at 4060 index keys: the last budget probes every list, the
     * exhaustive top r (the error left is the keys outside the top r) */
    const char *budgets[] = {"nprobe=1", "nprobe=6", "nprobe=64", "min_index=100000"};
    double mean[4] = {0, 0, 0, 0};
    for (int b = 0; b < 4; b++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            char params[128];
            snprintf(params, sizeof params, "n_sink=4 w=32 r=32 %s %s", b < 3 ? "min_index=64" : "", budgets[b]);
            mean[b] += rel_err(params, FID_PEAKED, seed) / 3;
        }
    cr_assert(mean[1] < mean[0] && mean[2] < mean[1], "mean error %.3g, %.3g, %.3g for nprobe 1, 6, 64", mean[0],
              mean[1], mean[2]);
    cr_assert(fabs(mean[2] - mean[3]) <= 1e-12, "every list probed: mean error %.3g, exhaustive %.3g", mean[2],
              mean[3]);
}

/* One decode step at a 16K cache (index kept from the previous step, as a
 * serving system keeps it): far fewer bytes read than the K/V cache holds. */
Test(retrieval, a_decode_step_reads_a_small_share_of_the_cache, .timeout = 60)
{
    attn_args a = ret_args(4, 1, 1, 16384, 64, "full", "build=once");
    problem p;
    cr_assert_eq(problem_make(&p, K, &a, 3, 0), 0);
    attn_io io = problem_io(&p);
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, &p.a, &ctx), 0, "%s", attn_last_error());
    cr_assert_eq(K->forward(&ctx, &io), 0, "%s", attn_last_error());
    attn_retrieval_stats s;
    cr_assert_eq(attn_retrieval_stats_of(&ctx, &s), 0);
    cr_assert(s.stages == 1 && !s.reused && s.build_seconds > 0, "first step: %d stages, reused %d, build %g s",
              s.stages, s.reused, s.build_seconds);
    size_t kv = sizeof(float) * (size_t)(2 * a.Nk * a.D * a.H_kv);
    cr_assert_eq(s.index_bytes, K->state_bytes(&p.a) - kv, "index bytes %zu", s.index_bytes);
    size_t bytes = sizeof(float) * (size_t)(a.H * a.D);
    float *first = malloc(bytes);
    memcpy(first, p.o.data, bytes);
    attn_counters_reset();
    cr_assert_eq(K->forward(&ctx, &io), 0, "%s", attn_last_error());
    cr_assert_eq(attn_retrieval_stats_of(&ctx, &s), 0);
    cr_assert(s.reused && s.build_seconds == 0, "second step rebuilt the index");
    cr_assert(memcmp(first, p.o.data, bytes) == 0, "the kept index gives other outputs");
    double read = (double)attn_counter_get(ATTN_CNT_BYTES_READ);
    cr_assert(read > 0 && read < 0.25 * (double)kv, "read %.0f bytes of a %zu-byte cache", read, kv);
    free(first);
    attn_ctx_destroy(&ctx);
    problem_free(&p);
}

Test(retrieval, rejects_unknown_parameters_and_other_value_widths)
{
    attn_args a = ret_args(2, 2, 1, 64, 16, "full", "nlists=4");
    attn_ctx ctx;
    cr_assert_neq(attn_ctx_create(K, &a, &ctx), 0);
    cr_assert(strstr(attn_last_error(), "nlists") != NULL, "%s", attn_last_error());
    attn_args b = ret_args(2, 2, 1, 64, 16, "full", "");
    b.Dv = 8;
    cr_assert_neq(attn_ctx_create(K, &b, &ctx), 0);
}

/* A NaN key must not crash the search (list ranking, heaps, k-means) and
 * stays in its own KV group: the other group's outputs keep their bits. */
Test(retrieval, a_nan_key_stays_within_its_kv_group)
{
    const char *params[] = {"n_sink=2 w=8 r=8 min_index=16", "n_sink=2 w=8 r=8 min_index=16 exact=1"};
    for (int ip = 0; ip < 2; ip++) {
        attn_args a = ret_args(4, 2, 4, 600, 16, "causal", params[ip]);
        problem p;
        cr_assert_eq(problem_make(&p, K, &a, 4, 0), 0);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        size_t half = sizeof(float) * (size_t)(2 * p.o.sh); /* heads 2, 3: KV group 1 */
        float *before = malloc(half);
        memcpy(before, attn_at(&p.o, 0, 2, 0), half);
        attn_at(&p.k, 0, 0, 100)[3] = NAN;
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s: %s", params[ip], attn_last_error());
        cr_assert(memcmp(before, attn_at(&p.o, 0, 2, 0), half) == 0, "%s: a NaN in KV head 0 changed KV head 1",
                  params[ip]);
        free(before);
        problem_free(&p);
    }
}

/* Without an index (fewer keys than min_index) the search scores every
 * index key once per head: the counted FLOPs are the cost model's,
 * 4 D |static| + 2 D (s + min(r, s)) per row and head. */
Test(retrieval, counted_flops_equal_the_cost_model_on_exhaustive_rows)
{
    const char *masks[] = {"full", "causal"};
    for (int im = 0; im < 2; im++) {
        attn_args a = ret_args(8, 2, 4, 900, 32, masks[im], "n_sink=4 w=40 r=50");
        problem p;
        cr_assert_eq(problem_make(&p, K, &a, 2, 0), 0);
        attn_counters_reset();
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        double counted = (double)attn_counter_get(ATTN_CNT_FLOPS), model = K->flops(&p.a, ATTN_PASS_FWD);
        cr_assert(counted == model, "%s: counted %.0f, cost model %.0f", masks[im], counted, model);
        problem_free(&p);
    }
}
