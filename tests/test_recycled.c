/* Properties of the `recycled` kernel (Recycled Attention): the fp32 kernel
 * equals its double reference on full, recycled and mid-cycle first rows,
 * GQA, cross lengths and dynamic refresh; S = 1 or K >= N is softmax
 * attention; a recycled step is softmax attention masked to the kept keys
 * and the keys since the full step (selection recomputed here from the
 * definition); one selection per KV group; dynamic refresh fires when the
 * queries drift; the error falls as K grows; counters and cost model; K/V
 * bytes read per token below full attention's; parameter validation; the
 * bench gate (the group-local reference view) and the check table. */
#include "harness/measure/bench.h"
#include "harness/measure/check.h"
#include "harness/measure/fidelity.h"
#include "harness/measure/fixture.h"
#include "check_tally.h"
#include "kernels/core/counters.h"
#include "kernels/recycled/recycled.h"
#include "own_ref_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_recycled;

static attn_args rc_args(int64_t B, int64_t H, int64_t H_kv, int64_t Nq, int64_t Nk, int64_t D, const char *mask,
                         const char *params, int threads)
{
    return fx_args_params(B, H, H_kv, Nq, Nk, D, mask, threads, params);
}

static const struct {
    int64_t B, H, H_kv, Nq, Nk, D;
    const char *mask, *params;
} ref_cases[] = {
    {1, 8, 2, 130, 130, 32, "causal", "S=4 K=16"},          /* teacher-forced: rows are steps */
    {2, 4, 2, 64, 64, 16, "causal", "S=3 K=1"},
    {1, 4, 1, 4, 300, 64, "full", "S=4 K=16"},              /* decode, 4 steps */
    {1, 4, 1, 4, 300, 64, "causal", "S=4 K=16 phase=1"},    /* all four rows recycled */
    {2, 8, 2, 1, 500, 32, "full", "S=8 K=24 phase=5"},      /* one recycled step */
    {1, 8, 2, 1, 500, 32, "causal", "S=8 K=24"},            /* one full step */
    {1, 2, 2, 16, 257, 64, "causal", "S=5 K=40 phase=2"},   /* cross lengths */
    {1, 4, 2, 97, 97, 16, "causal", "S=10 K=8 dynamic=1 tau=0.2"},
    {1, 2, 1, 20, 16, 16, "causal", "S=4 K=4"},             /* 4 queries before every key */
};

Test(recycled, forward_matches_double_reference, .timeout = 60)
{
    for (size_t i = 0; i < sizeof ref_cases / sizeof *ref_cases; i++) {
        char what[160];
        snprintf(what, sizeof what, "%s B%ld H%ld/%ld N%ld/%ld D%ld %s", ref_cases[i].mask, (long)ref_cases[i].B,
                 (long)ref_cases[i].H, (long)ref_cases[i].H_kv, (long)ref_cases[i].Nq, (long)ref_cases[i].Nk,
                 (long)ref_cases[i].D, ref_cases[i].params);
        attn_args a = rc_args(ref_cases[i].B, ref_cases[i].H, ref_cases[i].H_kv, ref_cases[i].Nq, ref_cases[i].Nk,
                              ref_cases[i].D, ref_cases[i].mask, ref_cases[i].params, 2);
        fx_problem p;
        fx_make_for(&p, K, &a, 30 + i);
        memset(p.o.data, 0xff, sizeof(float) * (size_t)(p.o.B * p.o.sb)); /* NaN: unwritten rows fail */
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s: %s", what, attn_last_error());
        cr_assert(fx_err_o(&p) <= 5e-5, "%s: err_O %.3g", what, fx_err_o(&p));
        cr_assert(fx_err_lse(&p) <= 1e-5, "%s: err_lse %.3g", what, fx_err_lse(&p));
        fx_free(&p);
    }
}

/* Every step a full step (S = 1), or every key kept (K >= N): softmax attention. */
Test(recycled, one_step_cycles_or_keeping_every_key_is_softmax_attention, .timeout = 60)
{
    static const char *const params[] = {"S=1 K=1", "S=4 K=130", "S=7 K=1000 phase=3"};
    static const char *const masks[] = {"causal", "full"};
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 3; i++) {
            attn_args a = rc_args(1, 8, 2, m ? 4 : 130, 130, 32, masks[m], params[i], 2);
            fx_problem p;
            fx_make(&p, &a, 7 + i); /* the oracle's answer */
            cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
            cr_assert(fx_err_o(&p) <= fx_tol_o(a.Nk), "%s %s: err_O %.3g", masks[m], params[i], fx_err_o(&p));
            cr_assert(fx_err_lse(&p) <= 1e-5, "%s %s: err_lse %.3g", masks[m], params[i], fx_err_lse(&p));
            fx_free(&p);
        }
}

/* The definition, written here from scratch in double: the K keys of
 * [0, n) with the largest attention summed over the G heads of query row i,
 * ties to the lower position (n = keys before the full step at pf). */
static void top_keys_of_group(const fx_problem *p, int64_t b, int64_t hk, int64_t i, int64_t n, int64_t Kkeep,
                              unsigned char *kept)
{
    const attn_args *a = &p->a;
    int64_t G = a->H / a->H_kv, D = a->D;
    double *w = calloc((size_t)n, sizeof(double)), *s = malloc(sizeof(double) * (size_t)n);
    for (int64_t g = 0; g < G; g++) {
        double mx = -INFINITY, z = 0;
        for (int64_t j = 0; j < n; j++) {
            s[j] = 0;
            for (int64_t d = 0; d < D; d++)
                s[j] += attn_at64(&p->q64, b, hk * G + g, i)[d] * attn_at64(&p->k64, b, hk, j)[d];
            s[j] *= attn_scale(a);
            mx = fmax(mx, s[j]);
        }
        for (int64_t j = 0; j < n; j++)
            z += exp(s[j] - mx);
        for (int64_t j = 0; j < n; j++)
            w[j] += exp(s[j] - mx) / z;
    }
    memset(kept, 0, (size_t)a->Nk);
    for (int64_t r = 0; r < Kkeep && r < n; r++) {
        int64_t best = -1;
        for (int64_t j = 0; j < n; j++)
            if (!kept[j] && (best < 0 || w[j] > w[best]))
                best = j;
        kept[best] = 1;
    }
    free(w), free(s);
}

/* One recycled step (phase 3 of S = 4, so its full step was 3 positions
 * back and row 0's queries stand in for that step's): softmax attention
 * over the kept keys and the 3 keys since, exactly. */
Test(recycled, recycled_step_is_softmax_over_kept_and_new_keys, .timeout = 60)
{
    attn_args a = rc_args(1, 8, 2, 1, 400, 32, "full", "S=4 K=12 phase=3", 2);
    fx_problem p;
    fx_make(&p, &a, 19);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    int64_t G = 4, Nk = 400, pf = a.q_off - 3;
    unsigned char *att = malloc((size_t)Nk);
    double *P = malloc(sizeof(double) * (size_t)Nk);
    for (int64_t hk = 0; hk < 2; hk++) {
        top_keys_of_group(&p, 0, hk, 0, pf + 1, 12, att);
        int64_t n_att = 0;
        for (int64_t j = 0; j < Nk; j++)
            n_att += att[j] |= j > pf;
        cr_assert_eq(n_att, 12 + 3);
        for (int64_t h = hk * G; h < (hk + 1) * G; h++) {
            double mx = -INFINITY, z = 0, err = 0, vmax = 0;
            for (int64_t j = 0; j < Nk; j++) {
                double s = 0;
                for (int64_t d = 0; d < a.D; d++)
                    s += attn_at64(&p.q64, 0, h, 0)[d] * attn_at64(&p.k64, 0, hk, j)[d];
                P[j] = att[j] ? s * attn_scale(&a) : -INFINITY;
                mx = fmax(mx, P[j]);
            }
            for (int64_t j = 0; j < Nk; j++)
                z += P[j] = exp(P[j] - mx);
            for (int64_t d = 0; d < a.D; d++) {
                double o = 0;
                for (int64_t j = 0; j < Nk; j++) {
                    o += P[j] / z * attn_at64(&p.v64, 0, hk, j)[d];
                    vmax = fmax(vmax, fabs(attn_at64(&p.v64, 0, hk, j)[d]));
                }
                err = fmax(err, fabs(attn_at(&p.o, 0, h, 0)[d] - o));
            }
            cr_assert(err / vmax <= 2e-5, "head %ld: err %.3g against the masked oracle", (long)h, err / vmax);
            double lse = mx + log(z);
            cr_assert(fabs(p.lse[h] - lse) / (1 + fabs(lse)) <= 1e-5, "head %ld: lse", (long)h);
        }
    }
    free(att), free(P);
    fx_free(&p);
}

/* The view's keys are one set per KV group (the G heads share the small
 * cache), and they are what the kernel attends: sel U new. */
Test(recycled, view_keys_are_shared_by_the_kv_group)
{
    attn_args a = rc_args(1, 8, 2, 12, 200, 16, "causal", "S=4 K=10", 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 5);
    attn_io64 io = problem_io64(&p);
    int64_t rows[3] = {0, 5, 11}, Nk = a.Nk;
    double *P = malloc(sizeof(double) * (size_t)(3 * Nk));
    unsigned char *sel = malloc((size_t)(3 * Nk)), *sel0 = malloc((size_t)(3 * Nk));
    for (int64_t h = 0; h < 8; h++) {
        cr_assert_eq(K->ref_view(&a, &io, 0, h, rows, 3, P, sel), ATTN_VIEW_ROWS | ATTN_VIEW_KEYS);
        if (h % 4 == 0)
            memcpy(sel0, sel, (size_t)(3 * Nk));
        cr_assert_eq(memcmp(sel, sel0, (size_t)(3 * Nk)), 0, "head %ld selects other keys than its group", (long)h);
        int64_t n5 = 0, n11 = 0;
        for (int64_t j = 0; j < Nk; j++)
            n5 += sel[Nk + j], n11 += sel[2 * Nk + j];
        cr_assert_eq(n5, 10 + 1, "row 5 (one step after the full step at row 4): K kept + 1 new");
        cr_assert_eq(n11, 10 + 3, "row 11: K kept + 3 new");
        double sum = 0;
        for (int64_t j = 0; j < Nk; j++) {
            cr_assert(P[Nk + j] >= 0 && (sel[Nk + j] || P[Nk + j] == 0));
            sum += P[Nk + j];
        }
        cr_assert_float_eq(sum, 1.0, 1e-12);
    }
    free(P), free(sel), free(sel0);
    fx_free(&p);
}

/* Queries that drift (independent random rows: |cos| well under 0.9)
 * trigger a full step at every row with dynamic=1 tau=0.9: softmax
 * attention. Without it, or with tau = -1, the rows recycle and differ. */
Test(recycled, dynamic_refresh_follows_drifting_queries, .timeout = 60)
{
    static const char *const params[] = {"S=40 K=2 dynamic=1 tau=0.9", "S=40 K=2", "S=40 K=2 dynamic=1 tau=-1"};
    double err[3];
    for (int i = 0; i < 3; i++) {
        attn_args a = rc_args(1, 4, 2, 40, 80, 16, "causal", params[i], 1); /* 41 keys before row 0 */
        fx_problem p;
        fx_make(&p, &a, 23);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        err[i] = fx_err_o(&p);
        fx_free(&p);
    }
    cr_assert(err[0] <= fx_tol_o(80), "dynamic: err %.3g", err[0]);
    cr_assert(err[1] > 1e-2 && err[2] == err[1], "fixed %.3g, never-refresh %.3g", err[1], err[2]);
}

/* On the peaked family (planted keys), the error of the last 8 steps of a
 * 1024-key causal cache falls as K grows, on the mean over 3 seeds. */
Test(recycled, error_falls_as_more_keys_are_kept, .timeout = 60)
{
    static const char *const params[] = {"S=8 K=4", "S=8 K=64", "S=8 K=512"};
    double mean[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            attn_args a = rc_args(1, 4, 1, 8, 1024, 64, "causal", params[i], 2);
            fid_metrics m;
            cr_assert_eq(check_kernel_fidelity(K, &a, FID_PEAKED, seed, &m), 0, "%s", attn_last_error());
            mean[i] += m.rel_fro / 3;
        }
    cr_assert(mean[0] > mean[1] && mean[1] > mean[2], "rel_fro %.3g %.3g %.3g", mean[0], mean[1], mean[2]);
    cr_assert(mean[0] > 1e-3, "K=4 should lose something: %.3g", mean[0]);
}

/* A cycle of S = 8 steps against a long cache reads, per token, far less
 * K/V than full attention (8 N D bytes per KV head per token); the
 * counters match the cost model. */
Test(recycled, bytes_read_per_token_stay_far_below_full_attention, .timeout = 60)
{
    int64_t N = 16384, D = 64;
    attn_args a = rc_args(1, 4, 1, 8, N, D, "causal", "S=8 K=256", 2);
    fx_problem p;
    cr_assert_eq(problem_make(&p, K, &a, 3, 0), 0);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    double got = (double)attn_counter_get(ATTN_CNT_BYTES_READ), full_per_token = 8.0 * (double)(N * D);
    cr_assert(got / 8 < 0.2 * full_per_token, "%.3g bytes per token vs full %.3g", got / 8, full_per_token);
    double model = K->bytes(&a, ATTN_PASS_FWD), flops = K->flops(&a, ATTN_PASS_FWD);
    cr_assert(got >= 0.9 * model && got <= 1.2 * model, "counted %.4g, model %.4g", got, model);
    double cf = (double)attn_counter_get(ATTN_CNT_FLOPS);
    cr_assert(cf >= 0.95 * flops && cf <= 1.05 * flops, "counted %.4g flops, model %.4g", cf, flops);
    problem_free(&p);
}

/* Cost model by hand: causal N = Nq = 6, S = 3, K = 2, D = 8, one head.
 * Rows 0 and 3 are full (1 and 4 keys); rows 1, 2 keep min(2, 1) = 1 key
 * plus 1, 2 new; rows 4, 5 keep 2 plus 1, 2 new. A recycled row 0
 * (phase 2, Nq = 1, N = 10) also scores the 8 keys of its full step. */
Test(recycled, cost_model)
{
    attn_args a = rc_args(1, 1, 1, 6, 6, 8, "causal", "S=3 K=2", 1);
    double keys = 1 + (1 + 1) + (1 + 2) + 4 + (2 + 1) + (2 + 2);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), 4.0 * 8 * keys, 1e-9);
    cr_assert_float_eq(K->bytes(&a, ATTN_PASS_FWD), 4.0 * (6 * (2 * 8 + 1) + 8 * 2 * keys), 1e-9);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_BWD), 0, 1e-9);
    attn_args r = rc_args(1, 1, 1, 1, 10, 8, "causal", "S=3 K=2 phase=2", 1);
    cr_assert_float_eq(K->flops(&r, ATTN_PASS_FWD), 4.0 * 8 * (2 + 2) + 2.0 * 8 * 8, 1e-9);
    cr_assert_eq(K->state_bytes(&a), 4u * (2 * 6 * 8 + 2 * (2 + 3) * 8));
}

Test(recycled, refuses_other_masks_and_bad_params)
{
    attn_ctx ctx;
    attn_args w = fx_args(1, 1, 1, 16, 16, 16, "window:wl=4,wr=0", 1);
    cr_assert_eq(attn_ctx_create(K, &w, &ctx), ATTN_EUNSUPPORTED);
    static const char *const bad[] = {"S=0", "K=0", "S=4 phase=4", "tau=2", "topk=4"};
    for (int i = 0; i < 5; i++) {
        attn_args a = rc_args(1, 1, 1, 16, 16, 16, "causal", bad[i], 1);
        cr_assert_eq(attn_ctx_create(K, &a, &ctx), ATTN_EINVAL, "%s accepted", bad[i]);
    }
    attn_args ok = rc_args(1, 1, 1, 16, 16, 16, "causal", "S=4 K=3 phase=3 dynamic=1 tau=0.5", 1);
    cr_assert_eq(attn_ctx_create(K, &ok, &ctx), 0, "%s", attn_last_error());
    attn_ctx_destroy(&ctx);
}

/* Causal leakage and thread determinism with recycled steps (the generic
 * property tests run the defaults, where K >= N makes every step exact). */
Test(recycled, recycled_steps_ignore_future_rows_and_thread_count, .timeout = 60)
{
    static const char *const params[] = {"S=4 K=8", "S=5 K=3 phase=2 dynamic=1 tau=0.1"};
    for (int i = 0; i < 2; i++) {
        attn_args a = rc_args(2, 4, 2, 97, 97, 16, "causal", params[i], 2);
        int ok = 0;
        cr_assert_eq(check_kernel_causal_leakage(K, &a, 40, &ok), 0, "%s", attn_last_error());
        cr_assert(ok, "%s: rows < 40 changed when later rows were perturbed", params[i]);
        cr_assert_eq(check_kernel_thread_determinism(K, &a, 3, &ok), 0, "%s", attn_last_error());
        cr_assert(ok, "%s: results depend on the thread count", params[i]);
    }
}

Test(recycled, attnbench_check_table_passes, .timeout = 120)
{
    check_tally t = {0};
    cr_assert_eq(check_kernel_cases(K, NULL, 2, check_tally_add, &t), 0, "%s", attn_last_error());
    cr_assert_eq(t.failed, 0, "%d of %d cases failed, first %s", t.failed, t.cases, t.first_failure);
}

/* The bench gate checks a GQA problem with recycled steps against the
 * reference on the sampled heads' KV group (a reference given G copies of
 * one head would select other keys), and reports a top-k recall. */
Test(recycled, bench_gate_passes_on_recycled_steps, .timeout = 60)
{
    static const struct {
        int64_t Nq, Nk;
        const char *mask, *params;
    } jobs[] = {{1, 700, "full", "S=8 K=32 phase=5"}, {8, 700, "causal", "S=8 K=32"}, {300, 300, "causal", "S=4 K=8"}};
    for (int i = 0; i < 3; i++) {
        bench_job j;
        memset(&j, 0, sizeof j);
        strcpy(j.suite, "kernels");
        j.kernel = K;
        j.args = rc_args(1, 8, 2, jobs[i].Nq, jobs[i].Nk, 32, jobs[i].mask, jobs[i].params, 2);
        j.pass = BENCH_PASS_FWD;
        j.seed = 3;
        j.inputs.family = FID_PEAKED;
        j.measure = (measure_opts){1, 3, 10, 0.0};
        bench_result res;
        cr_assert_eq(bench_run(&j, NULL, &res), 0, "%s", attn_last_error());
        cr_assert_eq(res.status, BENCH_OK, "%s %s: %s", jobs[i].mask, jobs[i].params, res.reason);
        cr_assert(res.has_fid && res.fid.topk_recall > 0 && res.fid.topk_recall <= 1, "%s: recall %.3g",
                  jobs[i].params, res.fid.topk_recall);
    }
}
