/* Properties of the `cca` kernel (Core Context Aware attention, prefill):
 * the fp32 kernel equals its double reference (groups not dividing N, GQA,
 * several tiles, windows wider than N); g = 1 and a window covering every
 * key are causal softmax attention, outputs, lse and gradients; a group of
 * identical tokens counts once as a core token where exact attention counts
 * it g times (one softmax, no double counting); a group is pooled by its last
 * query only; gradients against central differences of the reference; error
 * against the oracle falls as the window grows and as groups shrink; cost
 * model and counters; parameter validation; leakage and thread determinism on
 * pooled problems. The generic properties (strided views, GQA, the view's
 * rows) run from the registry in test_properties.c and test_fidelity.c. */
#include "harness/measure/bench.h"
#include "check_tally.h"
#include "kernels/core/counters.h"
#include "harness/measure/fixture.h"
#include "own_ref_check.h"
#include "kernels/cca/cca.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_cca;

static attn_args cca_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, const char *params, int threads)
{
    return fx_args_params(B, H, H_kv, N, N, D, "causal", threads, params);
}

static const struct {
    int64_t B, H, H_kv, N, D;
    const char *params;
} ref_cases[] = {
    {2, 2, 2, 64, 16, "g=4 n_loc=2"},  {1, 4, 2, 130, 32, "g=4 n_loc=2"}, /* 3 tiles, GQA */
    {1, 2, 1, 130, 16, "g=5 n_loc=1"}, {1, 2, 2, 257, 64, ""},            /* defaults: g = 16, n_loc = 4 */
    {2, 2, 1, 7, 16, "g=3 n_loc=1"},   {1, 2, 2, 1, 16, "g=2 n_loc=1"},
    {1, 2, 2, 20, 16, "g=32 n_loc=1"}, /* N < g: no complete group */
    {1, 8, 2, 200, 80, "g=7 n_loc=3"}, {1, 1, 1, 300, 16, "g=2 n_loc=1"}, /* 149 core tokens */
};

Test(cca, forward_matches_double_reference, .timeout = 60)
{
    for (size_t i = 0; i < sizeof ref_cases / sizeof *ref_cases; i++) {
        char what[160];
        snprintf(what, sizeof what, "B%ld H%ld/%ld N%ld D%ld %s", (long)ref_cases[i].B, (long)ref_cases[i].H,
                 (long)ref_cases[i].H_kv, (long)ref_cases[i].N, (long)ref_cases[i].D, ref_cases[i].params);
        attn_args a = cca_args(ref_cases[i].B, ref_cases[i].H, ref_cases[i].H_kv, ref_cases[i].N, ref_cases[i].D,
                               ref_cases[i].params, 2);
        own_ref_check(K, &a, 20 + i, what);
    }
}

/* With pooled groups the method is not softmax attention. */
Test(cca, reference_differs_from_softmax_once_groups_are_pooled)
{
    attn_args a = cca_args(1, 2, 2, 64, 16, "g=4 n_loc=2", 1);
    fx_problem pc, ps;
    fx_make_for(&pc, K, &a, 3);
    fx_make(&ps, &a, 3);
    double d = 0;
    for (int64_t i = 0; i < pc.o64.B * pc.o64.sb; i++)
        d = fmax(d, fabs(pc.o64.data[i] - ps.o64.data[i]));
    cr_assert(d > 1e-2, "cca reference equals softmax (max diff %.3g)", d);
    fx_free(&pc), fx_free(&ps);
}

/* The kernel on an oracle problem: O, lse and (backward) every gradient
 * within the softmax tolerances. */
static void assert_equals_causal_oracle(int64_t N, int64_t D, int64_t H_kv, const char *params)
{
    attn_args a = cca_args(2, 4, H_kv, N, D, params, 2);
    a.backward = 1;
    fx_problem p;
    fx_make(&p, &a, 31);
    cr_assert_eq(fx_run(K, &p, 1), 0, "%s", attn_last_error());
    double eo = fx_err_o(&p), el = fx_err_lse(&p);
    cr_assert(eo <= fx_tol_o(N) && el <= 1e-5, "N%ld %s: err_O %.3g err_lse %.3g", (long)N, params, eo, el);
    double eq = fx_err_grad(&p.dq, &p.dq64), ek = fx_err_grad(&p.dk, &p.dk64), ev = fx_err_grad(&p.dv, &p.dv64);
    cr_assert(eq <= 1e-4 && ek <= 1e-4 && ev <= 1e-4, "N%ld %s: dQ %.3g dK %.3g dV %.3g", (long)N, params, eq, ek,
              ev);
    fx_free(&p);
}

/* g = 1: every core token is one key (its pooling softmax is over a single
 * key), so the core tokens and the local window cover the keys once each. */
Test(cca, group_of_one_is_causal_softmax_attention, .timeout = 60)
{
    assert_equals_causal_oracle(130, 32, 2, "g=1 n_loc=1");
    assert_equals_causal_oracle(130, 16, 4, "g=1 n_loc=5");
    assert_equals_causal_oracle(7, 80, 1, "g=1 n_loc=2");
}

/* A local window of n_loc groups covering every key: nothing is pooled. */
Test(cca, window_covering_every_key_is_causal_softmax_attention, .timeout = 60)
{
    assert_equals_causal_oracle(130, 32, 2, "g=16 n_loc=9");
    assert_equals_causal_oracle(64, 16, 1, "g=8 n_loc=8");
}

/* Each group's keys all equal to its first key, values likewise: a core
 * token is then exactly that key and value, and the one softmax gives it the
 * weight of ONE token, where exact attention gives the group g tokens'
 * weight. Expected output written from that alone: for query i, its local
 * keys [start(i), i] each once, and every group before start(i) once. */
Test(cca, group_of_identical_tokens_counts_once_as_a_core_token)
{
    const int64_t N = 50, D = 16, g = 4, n_loc = 2;
    attn_args a = cca_args(1, 1, 1, N, D, "g=4 n_loc=2", 1);
    fx_problem p;
    fx_make(&p, &a, 9);
    for (int64_t j = 0; j < N; j++)
        for (int64_t d = 0; d < D; d++) {
            attn_at(&p.k, 0, 0, j)[d] = attn_at(&p.k, 0, 0, j / g * g)[d];
            attn_at(&p.v, 0, 0, j)[d] = attn_at(&p.v, 0, 0, j / g * g)[d];
        }
    fx_ref_forward(&p); /* the oracle on the changed keys */
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    double err = 0, from_exact = 0, sc = 1.0 / sqrt((double)D);
    for (int64_t i = 0; i < N; i++) {
        int64_t start = (i / g - n_loc + 1) * g;
        start = start > 0 ? start : 0;
        double w[64], m = -INFINITY, Z = 0, o[16] = {0};
        for (int64_t j = 0; j <= i; j++) { /* keys before start: one per group */
            w[j] = -INFINITY;
            if (j >= start || j % g == 0) {
                w[j] = 0;
                for (int64_t d = 0; d < D; d++)
                    w[j] += sc * (double)attn_at(&p.q, 0, 0, i)[d] * attn_at(&p.k, 0, 0, j)[d];
            }
            m = fmax(m, w[j]);
        }
        for (int64_t j = 0; j <= i; j++)
            Z += (w[j] = exp(w[j] - m));
        for (int64_t j = 0; j <= i; j++)
            for (int64_t d = 0; d < D; d++)
                o[d] += w[j] / Z * attn_at(&p.v, 0, 0, j)[d];
        for (int64_t d = 0; d < D; d++) {
            err = fmax(err, fabs(attn_at(&p.o, 0, 0, i)[d] - o[d]));
            from_exact = fmax(from_exact, fabs(attn_at64(&p.o64, 0, 0, i)[d] - o[d]));
        }
    }
    cr_assert(err <= 2e-6, "cca is not 'one token per pooled group' (max err %.3g)", err);
    cr_assert(from_exact > 1e-2, "exact attention does not weigh a group g times (diff %.3g)", from_exact);
    fx_free(&p);
}

/* Query i reads the queries of no other row except the last row of each
 * group it pools: changing every other query row leaves o_i bitwise equal;
 * changing a pooled group's last query changes it. */
Test(cca, groups_are_pooled_by_their_last_query_only)
{
    const int64_t N = 40, D = 16, g = 4, i = 37; /* n_loc = 2: groups 0 .. 7 pooled, local 32 .. 37 */
    attn_args a = cca_args(1, 1, 1, N, D, "g=4 n_loc=2", 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 15);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    float before[16];
    memcpy(before, attn_at(&p.o, 0, 0, i), sizeof before);
    for (int64_t r = 0; r < N; r++)
        if (r != i && (r % g != g - 1 || r >= 32))
            for (int64_t d = 0; d < D; d++)
                attn_at(&p.q, 0, 0, r)[d] = 5.0f * (float)((d + r) % 3) - 4.0f;
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert(memcmp(before, attn_at(&p.o, 0, 0, i), sizeof before) == 0, "a query that pools nothing for row %ld "
              "changed it", (long)i);
    for (int64_t d = 0; d < D; d++) /* group 2's last query */
        attn_at(&p.q, 0, 0, 11)[d] = 3.0f * attn_at(&p.k, 0, 0, 8)[d];
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert(memcmp(before, attn_at(&p.o, 0, 0, i), sizeof before) != 0, "the pooling query does not matter");
    fx_free(&p);
}

/* fp32 backward vs central differences of the double reference (N small,
 * D = 16, (Hq, Hkv) = (2, 1)), with pooled groups and incomplete ones. */
Test(cca, backward_matches_reference_gradients, .timeout = 60)
{
    static const struct {
        int64_t N;
        const char *params;
    } cases[] = {
        {9, "g=2 n_loc=1"}, {9, "g=3 n_loc=1"}, {13, "g=4 n_loc=2"}, {11, "g=1 n_loc=3"}, {5, "g=8 n_loc=1"},
        {70, "g=5 n_loc=2"}, /* two tiles */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        attn_args a = cca_args(1, 2, 1, cases[i].N, 16, cases[i].params, 2);
        double e[ATTN_CHECK_GRADS];
        cr_assert_eq(check_kernel_backward(K, &a, 60 + i, e), 0, "%s", attn_last_error());
        for (int gi = 0; gi < 3; gi++)
            cr_assert(e[gi] <= 1e-4, "N=%ld %s: d%c err %.3g", (long)cases[i].N, cases[i].params, "QKV"[gi], e[gi]);
    }
}

/* Mean rel. Frobenius error against the oracle on `peaked` inputs over 3 seeds. */
static double mean_peaked_error(const char *params)
{
    double sum = 0;
    for (uint64_t s = 0; s < 3; s++) {
        attn_args a = cca_args(1, 2, 2, 512, 32, params, 2);
        fid_metrics m;
        cr_assert_eq(check_kernel_fidelity(K, &a, FID_PEAKED, 40 + s, &m), 0, "%s", attn_last_error());
        sum += m.rel_fro;
    }
    return sum / 3;
}

/* Each configuration of `params` has a lower mean error than the one before it. */
static void assert_error_falls(const char *const params[3])
{
    double e[3];
    for (int k = 0; k < 3; k++)
        e[k] = mean_peaked_error(params[k]);
    for (int k = 1; k < 3; k++)
        cr_assert(e[k] < e[k - 1], "%s: mean error %.4f not below %.4f (%s)", params[k], e[k], e[k - 1],
                  params[k - 1]);
}

/* More of the context exact (a wider window) or finer core tokens (smaller
 * groups at a window of about 32 tokens): closer to softmax attention. */
Test(cca, error_falls_as_the_window_grows_and_the_groups_shrink, .timeout = 60)
{
    static const char *const windows[] = {"g=8 n_loc=1", "g=8 n_loc=8", "g=8 n_loc=32"};
    static const char *const groups[] = {"g=32 n_loc=1", "g=8 n_loc=4", "g=2 n_loc=16"};
    assert_error_falls(windows);
    assert_error_falls(groups);
}

/* Cost model: per (b, query head) 2 g (2 D + Dv) per pooled group and
 * 2 (D + Dv) per (query, core or local token); state: core tokens per query
 * head, the raw window per KV head. The counters report at least the model. */
Test(cca, cost_model_and_counters)
{
    static const int64_t Ns[] = {64, 100};
    for (int s = 0; s < 2; s++) {
        int64_t N = Ns[s], g = 4, n_loc = 2, D = 16;
        attn_args a = cca_args(1, 2, 1, N, D, "g=4 n_loc=2", 1);
        double tokens = 0;
        for (int64_t i = 0; i < N; i++) {
            int64_t c = i / g - n_loc + 1;
            c = c > 0 ? c : 0;
            tokens += (double)(c + i - c * g + 1);
        }
        int64_t pooled = (N - 1) / g - n_loc + 1;
        double expect = 2 * (2.0 * (double)(pooled * g) * 3 * D + 4.0 * D * tokens);
        cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), expect, 1e-6, "N=%ld", (long)N);
        cr_assert_float_eq(K->flops(&a, ATTN_PASS_BWD), 2.5 * expect, 1e-6);
        int64_t cores = N / g - n_loc + 1, local = N - cores * g;
        cr_assert_eq(K->state_bytes(&a), (size_t)(4 * (2 * cores + local) * 2 * D));
    }
    /* executed work: the useful work plus what the tiles mask (a tile's rows
     * share its widest core and local ranges), under 2x at N = 1024 */
    attn_args c = cca_args(1, 2, 1, 1024, 16, "g=4 n_loc=2", 1);
    fx_problem p;
    fx_make_for(&p, K, &c, 41);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    double got = (double)attn_counter_get(ATTN_CNT_FLOPS), model = K->flops(&c, ATTN_PASS_FWD);
    cr_assert(got >= model && got <= 2.0 * model, "counted %.0f, model %.0f", got, model);
    cr_assert(attn_counter_get(ATTN_CNT_BYTES_READ) > 0 && attn_counter_get(ATTN_CNT_EXPS) > 0);
    fx_free(&p);
    /* long sequence: about 2 N^2 D / g + 4 N n_loc g D, far below causal dense */
    attn_args l = cca_args(1, 1, 1, 16384, 64, "g=16 n_loc=4", 1);
    double dense = 2.0 * 64 * 16384.0 * 16385.0, lead = 2.0 * 16384.0 * 16384.0 * 64 / 16 + 4.0 * 16384 * 4 * 16 * 64;
    cr_assert(K->flops(&l, ATTN_PASS_FWD) < dense / 8, "%.3g vs dense %.3g", K->flops(&l, ATTN_PASS_FWD), dense);
    cr_assert(fabs(K->flops(&l, ATTN_PASS_FWD) / lead - 1) < 0.05, "%.4g vs leading terms %.4g",
              K->flops(&l, ATTN_PASS_FWD), lead);
}

Test(cca, refuses_other_masks_offsets_and_bad_params)
{
    attn_ctx ctx;
    attn_args f = fx_args(1, 1, 1, 16, 16, 16, "full", 1);
    cr_assert_eq(attn_ctx_create(K, &f, &ctx), ATTN_EUNSUPPORTED);
    attn_args cr = fx_args(1, 1, 1, 8, 16, 16, "causal", 1);
    cr_assert_neq(attn_ctx_create(K, &cr, &ctx), 0, "cross lengths accepted");
    static const char *const bad[] = {"g=0", "n_loc=0", "window=4"};
    for (int i = 0; i < 3; i++) {
        attn_args a = cca_args(1, 1, 1, 16, 16, bad[i], 1);
        cr_assert_eq(attn_ctx_create(K, &a, &ctx), ATTN_EINVAL, "%s accepted", bad[i]);
    }
    attn_args o = cca_args(1, 1, 1, 16, 16, "g=4", 1);
    o.q_off = 4;
    cr_assert_eq(attn_ctx_create(K, &o, &ctx), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "q_off") != NULL, "%s", attn_last_error());
    attn_args ok = cca_args(1, 1, 1, 16, 16, "g=4 n_loc=1", 1);
    cr_assert_eq(attn_ctx_create(K, &ok, &ctx), 0, "%s", attn_last_error());
    attn_ctx_destroy(&ctx);
}

/* Leakage and thread determinism where groups are pooled, the pooling
 * queries sit on both sides of the cut, and tiles split groups. */
Test(cca, no_leak_and_thread_determinism_with_pooled_groups, .timeout = 60)
{
    static const char *const params[] = {"g=4 n_loc=2", "g=5 n_loc=1", "g=16 n_loc=1"};
    for (int i = 0; i < 3; i++) {
        int ok;
        attn_args a = cca_args(1, 2, 1, 130, 16, params[i], 2);
        for (int64_t t = 39; t <= 41; t++) {
            cr_assert_eq(check_kernel_causal_leakage(K, &a, t, &ok), 0, "%s", attn_last_error());
            cr_assert(ok, "%s: rows < %ld changed when rows >= %ld did", params[i], (long)t, (long)t);
        }
        attn_args d = cca_args(2, 4, 2, 200, 32, params[i], 1);
        for (int th = 2; th <= 3; th++) {
            cr_assert_eq(check_kernel_thread_determinism(K, &d, th, &ok), 0, "%s", attn_last_error());
            cr_assert(ok, "%s: 1 and %d threads differ", params[i], th);
        }
    }
}

/* The table behind `attnbench check` passes, and the bench's correctness gate. */
Test(cca, attnbench_check_table_and_bench_gate_pass, .timeout = 60)
{
    check_tally t = {0};
    cr_assert_eq(check_kernel_cases(K, NULL, 2, check_tally_add, &t), 0, "%s", attn_last_error());
    cr_assert_eq(t.failed, 0, "%d of %d cases failed, first %s", t.failed, t.cases, t.first_failure);
    cr_assert((t.grads & (1u << 1)) && (t.kinds & (1u << CHECK_THREADS)), "no dK gradient or no threads case");
    bench_job j;
    memset(&j, 0, sizeof j);
    strcpy(j.suite, "kernels");
    j.kernel = K;
    j.args = cca_args(2, 4, 2, 192, 16, "g=4 n_loc=2", 2);
    j.pass = BENCH_PASS_FWDBWD;
    j.seed = 3;
    j.measure = (measure_opts){1, 3, 10, 0.0};
    bench_result res;
    csvw_row r;
    cr_assert_eq(bench_run(&j, NULL, &res), 0, "%s", attn_last_error());
    bench_result_row(&j, &res, &r);
    cr_assert_str_eq(r.cell[ATTN_COL_STATUS], "ok", "%s", r.cell[ATTN_COL_STATUS]);
    cr_assert(r.cell[ATTN_COL_SOFTMAX_REL_ERR][0] != '\0', "no softmax fidelity cell");
}
