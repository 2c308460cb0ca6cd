/* Properties of the `hip` kernel (HiP attention): the fp32 kernel equals its
 * double reference on the test budgets (k bk = 16, 32; bq = 8) with refresh
 * groups, sinks, windows, GQA and cross lengths; k >= nb is the softmax
 * oracle; the fp32 kernel's search selects exactly the blocks of a double
 * replay of the search (exact ties go to the lower block); a planted smooth
 * high-score region is always selected; rows of a refresh group share the
 * search and see every newer key; error against the oracle falls as the
 * budget grows (mean over seeds); a decode step at a long cache reads a small
 * share of it (bytes_read); the cost model; parameter validation. Causal
 * leakage, thread determinism, strided views and GQA: test_properties.c. */
#include "harness/measure/fidelity.h"
#include "harness/measure/fixture.h"
#include "kernels/core/counters.h"
#include "kernels/hip/hip.h"
#include "kernels/hip/hip_internal.h"
#include "own_ref_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_hip;

static attn_args hip_args(int64_t B, int64_t H, int64_t H_kv, int64_t Nq, int64_t Nk, int64_t D, const char *mask,
                          const char *params)
{
    return fx_args_params(B, H, H_kv, Nq, Nk, D, mask, 2, params);
}

static const struct {
    int64_t B, H, H_kv, Nq, Nk, D;
    const char *mask, *params;
} ref_cases[] = {
    {1, 2, 2, 130, 130, 16, "causal", "k=8 bk=2 bq=8"},
    {1, 4, 2, 200, 200, 32, "causal", "k=8 bk=4 bq=8 refresh=4"},
    {2, 2, 1, 97, 97, 16, "causal", "k=16 bk=2 bq=8 refresh=1 sink=3 window=5"},
    {1, 2, 2, 130, 130, 16, "full", "k=4 bk=4 bq=8 refresh=3 window=7"},
    {1, 8, 2, 4, 1000, 64, "full", "k=8 bk=2 bq=8 refresh=4"},   /* a decode step of 4 rows */
    {1, 8, 2, 1, 3001, 64, "causal", "k=16 bk=2 bq=8"},           /* one row, nb not a power of two */
    {1, 2, 1, 20, 16, 16, "causal", "k=2 bk=2 bq=8 refresh=5"},    /* 4 rows before every key */
    {1, 2, 2, 7, 7, 16, "causal", "k=1 bk=1 bq=8 refresh=2 sink=1"},
};

Test(hip, equals_its_reference_on_the_test_budgets_and_decode_shapes, .timeout = 60)
{
    for (size_t i = 0; i < sizeof ref_cases / sizeof *ref_cases; i++) {
        char what[192];
        snprintf(what, sizeof what, "%s B%ld H%ld/%ld N%ld/%ld D%ld %s", ref_cases[i].mask, (long)ref_cases[i].B,
                 (long)ref_cases[i].H, (long)ref_cases[i].H_kv, (long)ref_cases[i].Nq, (long)ref_cases[i].Nk,
                 (long)ref_cases[i].D, ref_cases[i].params);
        attn_args a = hip_args(ref_cases[i].B, ref_cases[i].H, ref_cases[i].H_kv, ref_cases[i].Nq, ref_cases[i].Nk,
                               ref_cases[i].D, ref_cases[i].mask, ref_cases[i].params);
        own_ref_check(K, &a, 11 + i, what);
    }
}

/* Selection flips between fp32 and double would show here first: peaked
 * rows have a few keys far above the rest, lowrank ones many close scores. */
Test(hip, equals_its_reference_on_every_fidelity_input_family, .timeout = 60)
{
    for (int f = FID_GAUSSIAN; f < FID__COUNT; f++) {
        attn_args a = hip_args(1, 4, 2, 64, 600, 32, "causal", "k=8 bk=2 bq=8 refresh=4");
        fx_problem p;
        fx_make_for(&p, K, &a, 3);
        attn_io io = problem_io(&p);
        fid_fill((fid_inputs)f, &p.a, 3, &io);
        fx_ref_forward(&p);
        own_ref_check_problem(K, &p, fid_inputs_names[f]);
    }
}

/* k >= nb keeps every block: softmax attention, to the oracle's tolerance. */
Test(hip, k_at_least_the_block_count_is_the_softmax_oracle, .timeout = 30)
{
    const char *masks[] = {"full", "causal"};
    const char *params[] = {"k=50 bk=2", "k=13 bk=8 refresh=3 bq=8", "k=100 bk=1 refresh=1"};
    for (int m = 0; m < 2; m++)
        for (int ip = 0; ip < 3; ip++) {
            attn_args a = hip_args(1, 4, 2, 100, 100, 32, masks[m], params[ip]);
            fx_problem p;
            fx_make(&p, &a, 5);
            cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
            double e = fx_err_o(&p), tol = fx_tol_o(a.Nk);
            cr_assert(e <= tol, "%s %s: err_O %.3g above %.2g", masks[m], params[ip], e, tol);
            cr_assert(fx_err_lse(&p) <= 1e-5, "%s %s: lse differs from the oracle's", masks[m], params[ip]);
            fx_free(&p);
        }
}

/* ---- the search against a replay written here ---- */

typedef struct {
    int64_t a, c;
    double score;
} replay_node;

/* The search as the paper states it, in double, scores by hip_block_score: the
 * chosen blocks of search row s over keys [0, e) into chosen[nb]. */
static void replay_search(const hip_plan *pl, const attn_args *a, const attn_io64 *io, int64_t h, int64_t s,
                          int64_t e, unsigned char *chosen)
{
    int64_t nb = (e + pl->bk - 1) / pl->bk, k = pl->k, hk = h / (a->H / a->H_kv);
    for (int64_t t = 0; t < nb; t++)
        chosen[t] = nb <= k;
    if (nb <= k)
        return;
    replay_node *cur = malloc(sizeof *cur * (size_t)k), *kid = malloc(sizeof *kid * (size_t)(2 * k));
    for (int64_t t = 0; t < k; t++)
        cur[t] = (replay_node){t * nb / k, (t + 1) * nb / k, 0};
    int wide = 1;
    while (wide) {
        int64_t n = 0;
        for (int64_t t = 0; t < k; t++) {
            int64_t len = cur[t].c - cur[t].a, half = cur[t].a + len / 2;
            if (len == 1)
                kid[n++] = cur[t];
            else {
                kid[n++] = (replay_node){cur[t].a, half, 0};
                kid[n++] = (replay_node){half, cur[t].c, 0};
            }
        }
        for (int64_t t = 0; t < n; t++) {
            const double *key = attn_at64(&io->k, 0, hk, (kid[t].a + (kid[t].c - kid[t].a) / 2) * pl->bk);
            int64_t r0 = s - pl->bq + 1 > 0 ? s - pl->bq + 1 : 0;
            kid[t].score = hip_block_score(attn_at64(&io->q, 0, h, r0), io->q.sn, s - r0 + 1, key, a->D, attn_scale(a));
        }
        for (int64_t t = 1; t < n; t++) /* insertion sort: score down, first block up */
            for (int64_t u = t; u > 0; u--) {
                replay_node x = kid[u - 1], y = kid[u];
                if (y.score > x.score || (y.score == x.score && y.a < x.a))
                    kid[u - 1] = y, kid[u] = x;
            }
        wide = 0;
        for (int64_t t = 0; t < k; t++)
            cur[t] = kid[t], wide |= kid[t].c - kid[t].a > 1;
    }
    for (int64_t t = 0; t < nb; t++)
        chosen[t] = 0;
    for (int64_t t = 0; t < k; t++)
        chosen[cur[t].a] = 1;
    free(cur), free(kid);
}

/* The fp32 kernel's search (hip_search) of every search row of head h equals
 * the replay, block for block. */
static void assert_search_is_replayed(fx_problem *p, int64_t h, const char *what)
{
    hip_plan pl;
    cr_assert_eq(hip_plan_make(&pl, &p->a), 0, "%s", attn_last_error());
    void *mem = malloc(hip_search_ws_bytes(&pl, &p->a));
    hip_search_ws ws = hip_search_ws_at(&pl, &p->a, mem);
    int64_t *blocks = malloc(sizeof(int64_t) * (size_t)pl.k), Nk = p->a.Nk;
    unsigned char *chosen = malloc((size_t)Nk), *got = malloc((size_t)Nk);
    attn_io io = problem_io(p);
    attn_io64 io64 = problem_io64(p);
    for (int64_t s = 0; s < p->a.Nq; s += pl.refresh) {
        int64_t e = hip_row_end(&p->a, &pl, s), nb = (e + pl.bk - 1) / pl.bk;
        int64_t n = hip_search(&pl, &p->a, &io, 0, h, s, e, &ws, blocks);
        replay_search(&pl, &p->a, &io64, h, s, e, chosen);
        memset(got, 0, (size_t)Nk);
        for (int64_t t = 0; t < n; t++) {
            cr_assert(t == 0 || blocks[t] > blocks[t - 1], "%s row %ld: blocks not ascending", what, (long)s);
            got[blocks[t]] = 1;
        }
        for (int64_t t = 0; t < nb; t++)
            cr_assert_eq(got[t], chosen[t], "%s row %ld: block %ld kernel %d, replay %d", what, (long)s, (long)t,
                         got[t], chosen[t]);
    }
    free(mem), free(blocks), free(chosen), free(got);
}

Test(hip, the_kernels_search_selects_the_blocks_of_a_double_replay, .timeout = 60)
{
    const char *params[] = {"k=8 bk=2 bq=8 refresh=16", "k=16 bk=2 bq=8 refresh=7", "k=5 bk=3 bq=1 refresh=9"};
    for (int ip = 0; ip < 3; ip++)
        for (int f = FID_GAUSSIAN; f < FID__COUNT; f++) {
            attn_args a = hip_args(1, 2, 1, 300, 300, 16, "causal", params[ip]);
            fx_problem p;
            fx_make_for(&p, K, &a, 20 + f);
            attn_io io = problem_io(&p);
            fid_fill((fid_inputs)f, &p.a, 20 + f, &io);
            fx_ref_forward(&p);
            char what[96];
            snprintf(what, sizeof what, "%s %s", fid_inputs_names[f], params[ip]);
            for (int64_t h = 0; h < a.H; h++)
                assert_search_is_replayed(&p, h, what);
            fx_free(&p);
        }
}

/* Identical keys tie every score: each round keeps the k lowest children,
 * so the selection is blocks 0 .. k-1. */
Test(hip, exact_ties_go_to_the_lower_blocks)
{
    attn_args a = hip_args(1, 1, 1, 1, 400, 16, "full", "k=6 bk=2 bq=1");
    fx_problem p;
    fx_make_for(&p, K, &a, 4);
    for (int64_t j = 1; j < a.Nk; j++)
        memcpy(attn_at(&p.k, 0, 0, j), attn_at(&p.k, 0, 0, 0), sizeof(float) * (size_t)a.D);
    fx_ref_forward(&p);
    assert_search_is_replayed(&p, 0, "equal keys");
    hip_plan pl;
    cr_assert_eq(hip_plan_make(&pl, &a), 0);
    void *mem = malloc(hip_search_ws_bytes(&pl, &a));
    hip_search_ws ws = hip_search_ws_at(&pl, &a, mem);
    int64_t blocks[6];
    attn_io io = problem_io(&p);
    cr_assert_eq(hip_search(&pl, &a, &io, 0, 0, 0, a.Nk, &ws, blocks), 6);
    for (int64_t t = 0; t < 6; t++)
        cr_assert_eq(blocks[t], t, "tie: block %ld selected at place %ld, expected the lowest blocks", (long)blocks[t],
                     (long)t);
    free(mem);
    fx_free(&p);
}

/* ---- a planted region, refresh groups ---- */

/* Keys k_j = 0.01 N(0,1) + bump(j) sqrt(D) q / |q|: the bump is a hill
 * 4 exp(-|j - c| / w) whose width w = Nk / k matches the spacing of the
 * first round's representatives (attention locality: nearby keys score
 * alike, so the coarse rounds see the slope, and the slope stays above the
 * noise up to the top). Its top keys [c - k bk / 4, c + k bk / 4] must all
 * be selected, wherever the hill stands, by every query head. */
Test(hip, a_planted_smooth_high_score_region_is_always_selected, .timeout = 60)
{
    const int64_t Nk = 4096, D = 32;
    const char *params[] = {"k=8 bk=2 bq=1", "k=16 bk=2 bq=1", "k=8 bk=4 bq=1"};
    for (int ip = 0; ip < 3; ip++)
        for (int trial = 0; trial < 8; trial++) {
            attn_args a = hip_args(1, 2, 1, 1, Nk, D, "full", params[ip]);
            hip_plan pl;
            cr_assert_eq(hip_plan_make(&pl, &a), 0);
            fx_problem p;
            fx_make_for(&p, K, &a, 100 + trial);
            attn_io io = problem_io(&p);
            fid_fill(FID_GAUSSIAN, &p.a, 100 + trial, &io);
            int64_t c = 200 + (int64_t)trial * 487, w = Nk / pl.k, core = pl.k * pl.bk / 4;
            const float *q = attn_at(&p.q, 0, 0, 0);
            double qn = 0;
            for (int64_t d = 0; d < D; d++)
                qn += (double)q[d] * q[d];
            for (int64_t j = 0; j < Nk; j++) {
                double bump = 4.0 * exp(-fabs((double)(j - c)) / (double)w);
                float *kj = attn_at(&p.k, 0, 0, j);
                for (int64_t d = 0; d < D; d++)
                    kj[d] = (float)(0.01 * kj[d] + bump * sqrt((double)D) * q[d] / sqrt(qn));
            }
            memcpy(attn_at(&p.q, 0, 1, 0), q, sizeof(float) * (size_t)D); /* both heads ask the same */
            fx_ref_forward(&p);
            attn_io64 io64 = problem_io64(&p);
            int64_t row = 0;
            double *P = malloc(sizeof(double) * (size_t)Nk);
            unsigned char *sel = malloc((size_t)Nk);
            for (int64_t h = 0; h < 2; h++) {
                cr_assert_eq(K->ref_view(&p.a, &io64, 0, h, &row, 1, P, sel), ATTN_VIEW_ROWS | ATTN_VIEW_KEYS);
                for (int64_t j = c - core; j <= c + core; j++)
                    cr_assert(sel[j], "%s hill at %ld: key %ld of its top not selected", params[ip], (long)c, (long)j);
            }
            assert_search_is_replayed(&p, 0, params[ip]);
            free(P), free(sel);
            fx_free(&p);
        }
}

/* Rows of a refresh group attend the blocks their first row selected (the
 * same keys below e_s) plus every key that arrived since; the next group
 * searches again. Seen through the reference's KEYS view. */
Test(hip, rows_of_a_refresh_group_share_the_search_and_see_every_newer_key, .timeout = 30)
{
    attn_args a = hip_args(1, 2, 2, 64, 64, 16, "causal", "k=4 bk=2 bq=8 refresh=8");
    fx_problem p;
    fx_make_for(&p, K, &a, 9);
    attn_io64 io64 = problem_io64(&p);
    int64_t rows[64], N = 64;
    for (int64_t i = 0; i < N; i++)
        rows[i] = i;
    double *P = malloc(sizeof(double) * (size_t)(N * N));
    unsigned char *sel = malloc((size_t)(N * N));
    cr_assert_eq(K->ref_view(&p.a, &io64, 0, 1, rows, N, P, sel), ATTN_VIEW_ROWS | ATTN_VIEW_KEYS);
    int differ = 0;
    for (int64_t i = 0; i < N; i++) {
        int64_t s = i / 8 * 8, n = 0;
        double sum = 0;
        for (int64_t j = 0; j < N; j++) {
            const unsigned char *x = sel + i * N + j;
            if (j <= s)
                cr_assert_eq(*x, sel[s * N + j], "row %ld key %ld: not its search row %ld's choice", (long)i, (long)j,
                             (long)s);
            else
                cr_assert_eq(*x, j <= i, "row %ld key %ld: newer keys must be seen, later ones not", (long)i, (long)j);
            n += *x, sum += P[i * N + j];
            cr_assert(*x || P[i * N + j] == 0, "row %ld: weight on unselected key %ld", (long)i, (long)j);
        }
        cr_assert(fabs(sum - 1) < 1e-12, "row %ld: weights sum to %.15f", (long)i, sum);
        cr_assert(n <= 4 * 2 + (i - s), "row %ld attends %ld keys, more than k bk + new", (long)i, (long)n);
        differ |= i >= 16 && i % 8 == 0 && memcmp(sel + i * N, sel + (i - 8) * N, (size_t)(i - 8)) != 0;
    }
    cr_assert(differ, "no later search changed the selection: the groups do not search again");
    free(P), free(sel);
    fx_free(&p);
}

/* ---- budget, bytes, cost ---- */

static double rel_fro_vs_oracle(const fx_problem *p)
{
    double d2 = 0, r2 = 0;
    int64_t i = 0;
    for (int64_t h = 0; h < p->o.H; h++)
        for (int64_t n = 0; n < p->o.N; n++)
            for (int64_t d = 0; d < p->o.D; d++, i++) {
                double x = attn_at(&p->o, 0, h, n)[d], y = p->o64.data[i];
                d2 += (x - y) * (x - y), r2 += y * y;
            }
    return sqrt(d2 / r2);
}

/* lowrank inputs give neighbouring keys related scores; the mean error over
 * 4 seeds must fall at every step of the budget and vanish at k = nb. */
Test(hip, error_against_the_oracle_falls_as_the_budget_grows, .timeout = 60)
{
    const char *budgets[] = {"k=8", "k=32", "k=128", "k=512"};
    double prev = INFINITY;
    for (int ib = 0; ib < 4; ib++) {
        double mean = 0;
        for (uint64_t seed = 1; seed <= 4; seed++) {
            attn_args a = hip_args(1, 2, 2, 64, 1024, 32, "full", budgets[ib]);
            fx_problem p;
            fx_make(&p, &a, seed);
            attn_io io = problem_io(&p);
            fid_fill(FID_LOWRANK, &p.a, seed, &io);
            fx_ref_forward(&p); /* the oracle of the filled inputs */
            cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
            mean += rel_fro_vs_oracle(&p) / 4;
            fx_free(&p);
        }
        cr_log_info("%s: mean rel_fro_err %.4f", budgets[ib], mean);
        cr_assert(mean < prev, "%s: mean error %.4f not below the smaller budget's %.4f", budgets[ib], mean, prev);
        prev = mean;
    }
    cr_assert(prev < 1e-5, "k = nb: error %.3g, expected softmax attention", prev);
}

/* One decode step (GQA 4/2, D 64) at a 64K cache with the default budget:
 * the K/V bytes counted are under 10 % of what full attention reads, and
 * the count is the analytic minimum of the method within 1 %. (Each query
 * head searches and reads for itself: the share grows with the group size,
 * 3.5 % per query head here.) */
Test(hip, a_decode_step_at_a_long_cache_reads_a_small_share_of_it, .timeout = 60)
{
    attn_args a = hip_args(1, 4, 2, 1, 65536, 64, "full", NULL);
    fx_problem p;
    cr_assert_eq(problem_make(&p, K, &a, 3, 0), 0, "%s", attn_last_error());
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    double got = (double)attn_counter_get(ATTN_CNT_BYTES_READ), full = attn_softmax_bytes(&a, ATTN_PASS_FWD);
    double want = K->bytes(&a, ATTN_PASS_FWD);
    cr_log_info("bytes_read %.0f, analytic %.0f, full attention %.0f", got, want, full);
    cr_assert(got < 0.1 * full, "read %.0f bytes, not below 10%% of full attention's %.0f", got, full);
    cr_assert(fabs(got - want) <= 0.01 * want, "counted %.0f bytes, analytic %.0f", got, want);
    problem_free(&p);
}

/* With k >= nb the cost model is softmax attention's (no search); with a
 * search it is the formula of hip.c, by hand for one row. */
Test(hip, cost_model_matches_the_formulas)
{
    attn_args a = hip_args(2, 4, 4, 1, 100, 16, "full", "k=64 bk=2");
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), attn_softmax_flops(&a, ATTN_PASS_FWD), 1e-6);
    cr_assert_float_eq(K->bytes(&a, ATTN_PASS_FWD), attn_softmax_bytes(&a, ATTN_PASS_FWD), 1e-6);
    /* nb = 1000 blocks, k = 10: widest node 100 blocks, 7 halvings of 20 children */
    attn_args s = hip_args(1, 1, 1, 1, 2000, 16, "full", "k=10 bk=2 sink=4 window=6");
    double reps = 2.0 * 10 * 7, keys = 10 * 2 + 4 + 6;
    cr_assert_float_eq(K->flops(&s, ATTN_PASS_FWD), 2.0 * 16 * reps + 4.0 * 16 * keys, 1e-6);
    cr_assert_float_eq(K->bytes(&s, ATTN_PASS_FWD), 4.0 * 16 * reps + 8.0 * 16 * keys + 4.0 * (16 + 16 + 1), 1e-6);
    cr_assert_eq(K->state_bytes(&s), attn_kv_state_bytes(&s));
}

Test(hip, parameters_out_of_range_or_unknown_are_refused)
{
    const char *bad[] = {"k=0", "bk=0", "bq=0", "refresh=0", "sink=-1", "window=-2", "topk=3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        attn_args a = hip_args(1, 2, 2, 8, 8, 16, "causal", bad[i]);
        attn_ctx ctx;
        cr_assert_neq(attn_ctx_create(K, &a, &ctx), 0, "%s accepted", bad[i]);
    }
    attn_args w = hip_args(1, 2, 2, 8, 8, 16, "window:wl=2,wr=0", NULL);
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, &w, &ctx), ATTN_EUNSUPPORTED, "a window mask was accepted");
}
