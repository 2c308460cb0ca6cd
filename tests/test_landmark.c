/* Properties of the `landmark` kernel (Landmark Attention): the fp32 kernel equals its double reference in both modes
 * (several l, N not a multiple of l, GQA, cross lengths, queries before every
 * key); a constant V row is reproduced (weights sum to 1); topk with k = all
 * blocks is the grouped (train) form; blocks that are not retrieved have no
 * influence, landmark keys included; the current block's landmark never
 * gates; gradients against central differences of the reference; cost model
 * and counters; parameter validation. Causal leakage, thread determinism and
 * strided views in both modes: test_properties.c. */
#include "harness/measure/bench.h"
#include "check_tally.h"
#include "kernels/core/counters.h"
#include "harness/measure/fixture.h"
#include "own_ref_check.h"
#include "kernels/landmark/landmark.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_landmark;

/* The two modes, l = 8, for the generic properties. */
static const char *const lm_modes[] = {"l=8", "l=8 mode=topk k=2"};

/* args with space-separated key=value params ("" for none), causal mask. */
static attn_args lm_args(int64_t B, int64_t H, int64_t H_kv, int64_t Nq, int64_t Nk, int64_t D, const char *params,
                         int threads)
{
    return fx_args_params(B, H, H_kv, Nq, Nk, D, "causal", threads, params);
}

static const struct {
    int64_t B, H, H_kv, Nq, Nk, D;
    const char *params;
} ref_cases[] = {
    {2, 2, 2, 64, 64, 16, "l=8"},          {1, 4, 2, 130, 130, 32, "l=8"},
    {1, 2, 1, 130, 130, 16, "l=16"},       {1, 2, 2, 130, 130, 64, ""}, /* l = 64, N = 2 l + 2 */
    {2, 2, 1, 7, 7, 16, "l=3"},            {1, 2, 2, 1, 1, 16, "l=2"},
    {1, 2, 1, 16, 97, 32, "l=8"},          {1, 2, 2, 1, 300, 16, "l=8"}, /* decode step */
    {1, 2, 2, 20, 16, 16, "l=4"},          /* 4 queries before every key: O = 0 */
    {1, 2, 1, 130, 130, 16, "l=5"},        {1, 1, 1, 200, 200, 16, "l=2"},
};
#define N_REF_CASES (sizeof ref_cases / sizeof *ref_cases)

static void check_ref_cases(const char *mode_params, uint64_t seed0)
{
    for (size_t i = 0; i < N_REF_CASES; i++) {
        char params[128], what[192];
        snprintf(params, sizeof params, "%s %s", ref_cases[i].params, mode_params);
        snprintf(what, sizeof what, "B%ld H%ld/%ld N%ld/%ld D%ld %s", (long)ref_cases[i].B, (long)ref_cases[i].H,
                 (long)ref_cases[i].H_kv, (long)ref_cases[i].Nq, (long)ref_cases[i].Nk, (long)ref_cases[i].D,
                 params);
        attn_args a = lm_args(ref_cases[i].B, ref_cases[i].H, ref_cases[i].H_kv, ref_cases[i].Nq, ref_cases[i].Nk,
                              ref_cases[i].D, params, 2);
        own_ref_check(K, &a, seed0 + i, what);
    }
}

Test(landmark, train_forward_matches_double_reference, .timeout = 60) { check_ref_cases("mode=train", 10); }

Test(landmark, topk_forward_matches_double_reference, .timeout = 60)
{
    check_ref_cases("mode=topk k=1", 30);
    check_ref_cases("mode=topk k=3", 50);
}

/* The reference is not trivially the softmax: with several blocks it differs
 * from causal softmax attention, and topk k=1 differs from train. */
Test(landmark, reference_differs_from_softmax_and_between_modes)
{
    attn_args a = lm_args(1, 2, 2, 64, 64, 16, "l=8", 1);
    fx_problem pl, ps;
    fx_make_for(&pl, K, &a, 3);
    fx_make(&ps, &a, 3);
    double d = 0;
    for (int64_t i = 0; i < pl.o64.B * pl.o64.sb; i++)
        d = fmax(d, fabs(pl.o64.data[i] - ps.o64.data[i]));
    cr_assert(d > 1e-2, "landmark reference equals softmax (max diff %.3g)", d);
    attn_args t = lm_args(1, 2, 2, 64, 64, 16, "l=8 mode=topk k=1", 1);
    fx_problem pt;
    fx_make_for(&pt, K, &t, 3);
    d = 0;
    for (int64_t i = 0; i < pl.o64.B * pl.o64.sb; i++)
        d = fmax(d, fabs(pl.o64.data[i] - pt.o64.data[i]));
    cr_assert(d > 1e-2, "topk k=1 equals train (max diff %.3g)", d);
    fx_free(&pl), fx_free(&ps), fx_free(&pt);
}

/* V rows all equal to one vector per KV head: every row with a visible key
 * outputs that vector, so the weights sum to 1. */
Test(landmark, constant_v_row_is_reproduced_in_both_modes)
{
    static const char *const params[] = {"l=8 mode=train", "l=8 mode=topk k=2", "l=5 mode=topk k=1"};
    for (int m = 0; m < 3; m++) {
        attn_args a = lm_args(2, 4, 2, 130, 130, 16, params[m], 2);
        fx_problem p;
        fx_make_for(&p, K, &a, 5);
        for (int64_t b = 0; b < 2; b++)
            for (int64_t h = 0; h < 2; h++)
                for (int64_t j = 0; j < 130; j++)
                    for (int64_t d = 0; d < 16; d++)
                        attn_at(&p.v, b, h, j)[d] = 0.25f * (float)(d % 7) - 0.5f + 0.1f * (float)(b + h);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        double e = 0;
        for (int64_t b = 0; b < 2; b++)
            for (int64_t h = 0; h < 4; h++)
                for (int64_t i = 0; i < 130; i++)
                    for (int64_t d = 0; d < 16; d++)
                        e = fmax(e, fabs(attn_at(&p.o, b, h, i)[d] - attn_at(&p.v, b, h / 2, 0)[d]));
        cr_assert(e <= 2e-6, "%s: constant V not reproduced (max err %.3g)", params[m], e);
        fx_free(&p);
    }
}

/* topk with k >= the number of earlier blocks is the grouped training form. */
Test(landmark, topk_with_all_blocks_equals_train)
{
    static const char *const ks[] = {"k=16", "k=1000"};
    for (int i = 0; i < 2; i++) {
        char tp[64];
        snprintf(tp, sizeof tp, "l=8 mode=topk %s", ks[i]);
        attn_args at = lm_args(2, 4, 2, 130, 130, 32, "l=8 mode=train", 2), ak = lm_args(2, 4, 2, 130, 130, 32, tp, 2);
        fx_problem pt, pk;
        fx_make_for(&pt, K, &at, 7);
        fx_make_for(&pk, K, &ak, 7);
        cr_assert_eq(fx_run(K, &pt, 0), 0, "%s", attn_last_error());
        cr_assert_eq(fx_run(K, &pk, 0), 0, "%s", attn_last_error());
        double d = 0, ref = 0;
        for (int64_t j = 0; j < pt.o.B * pt.o.sb; j++) {
            d = fmax(d, fabs(pt.o.data[j] - pk.o.data[j]));
            ref = fmax(ref, fabs(pt.o64.data[j] - pk.o64.data[j]));
        }
        cr_assert(ref == 0, "%s: references differ by %.3g", ks[i], ref);
        cr_assert(d <= 2e-6, "%s: topk differs from train by %.3g", ks[i], d);
        fx_free(&pt), fx_free(&pk);
    }
}

/* One decode query (last of 80 keys, l = 8: blocks 0..8 earlier, the query
 * is in block 9): the k blocks with the best landmark scores are read, the
 * others not at all: changing every K and V row of an unretrieved block
 * (its landmark key pushed further down) leaves the output bitwise equal,
 * while changing a retrieved block's values does change it. */
Test(landmark, unretrieved_blocks_have_no_influence)
{
    const int64_t l = 8, N = 80, D = 16, c = (N - 1) / l, kk = 2;
    attn_args a = lm_args(1, 1, 1, 1, N, D, "l=8 mode=topk k=2", 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 11);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    float before[16];
    memcpy(before, attn_at(&p.o, 0, 0, 0), sizeof before);
    const float *q = attn_at(&p.q, 0, 0, 0);
    double s[16];
    int sel[16] = {0};
    for (int64_t b = 0; b < c; b++) {
        s[b] = 0;
        for (int64_t d = 0; d < D; d++)
            s[b] += (double)q[d] * attn_at(&p.k, 0, 0, b * l + l - 1)[d];
    }
    for (int64_t r = 0; r < kk; r++) { /* the k best, by a plain scan */
        int64_t best = -1;
        for (int64_t b = 0; b < c; b++)
            if (!sel[b] && (best < 0 || s[b] > s[best]))
                best = b;
        sel[best] = 1;
    }
    int changed = 0;
    for (int64_t b = 0; b < c; b++) {
        if (sel[b])
            continue;
        changed++;
        for (int64_t j = b * l; j < b * l + l; j++)
            for (int64_t d = 0; d < D; d++) {
                attn_at(&p.k, 0, 0, j)[d] = j == b * l + l - 1 ? -3.0f * q[d] : 40.0f * (float)((d & 1) - (j & 1));
                attn_at(&p.v, 0, 0, j)[d] = 1e5f;
            }
    }
    cr_assert_eq(changed, c - kk);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert(memcmp(before, attn_at(&p.o, 0, 0, 0), sizeof before) == 0, "an unretrieved block changed the output");
    for (int64_t b = 0; b < c; b++)
        if (sel[b])
            attn_at(&p.v, 0, 0, b * l)[0] += 100.0f;
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert(attn_at(&p.o, 0, 0, 0)[0] != before[0], "retrieved blocks do not reach the output");
    fx_free(&p);
}

/* The last query sits on its block's landmark (t = 2l - 1): that key is
 * neither a gate nor a value for it, so changing its K and V leaves the
 * query's output bitwise equal; changing an earlier landmark's key (a gate)
 * does change it. */
Test(landmark, current_block_landmark_never_gates)
{
    static const char *const params[] = {"l=8 mode=train", "l=8 mode=topk k=1"};
    for (int m = 0; m < 2; m++) {
        attn_args a = lm_args(1, 2, 2, 24, 24, 16, params[m], 1);
        fx_problem p;
        fx_make_for(&p, K, &a, 13);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        float before[2][16];
        for (int64_t h = 0; h < 2; h++)
            memcpy(before[h], attn_at(&p.o, 0, h, 23), sizeof before[h]);
        for (int64_t h = 0; h < 2; h++)
            for (int64_t d = 0; d < 16; d++)
                attn_at(&p.k, 0, h, 23)[d] = 30.0f * attn_at(&p.q, 0, h, 23)[d], attn_at(&p.v, 0, h, 23)[d] = 1e5f;
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        for (int64_t h = 0; h < 2; h++)
            cr_assert(memcmp(before[h], attn_at(&p.o, 0, h, 23), sizeof before[h]) == 0,
                      "%s: the current landmark reached its own query (head %ld)", params[m], (long)h);
        for (int64_t d = 0; d < 16; d++) /* block 1's landmark is a gate of query 23 */
            attn_at(&p.k, 0, 0, 15)[d] = 3.0f * attn_at(&p.q, 0, 0, 23)[d];
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        cr_assert(memcmp(before[0], attn_at(&p.o, 0, 0, 23), sizeof before[0]) != 0,
                  "%s: an earlier landmark does not gate", params[m]);
        fx_free(&p);
    }
}

/* fp32 backward vs central differences of the double reference (tiny
 * problems as docs/testing.md: N in {5, 9}, D = 16, (Hq, Hkv) = (2, 1)). */
Test(landmark, backward_matches_reference_gradients, .timeout = 60)
{
    static const struct {
        int64_t N;
        const char *params;
    } cases[] = {
        {9, "l=3"}, {9, "l=2"}, {5, "l=2 mode=topk k=1"}, {9, "l=3 mode=topk k=1"}, {13, "l=4 mode=topk k=2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        attn_args a = lm_args(1, 2, 1, cases[i].N, cases[i].N, 16, cases[i].params, 2);
        double e[ATTN_CHECK_GRADS];
        cr_assert_eq(check_kernel_backward(K, &a, 60 + i, e), 0, "%s", attn_last_error());
        for (int g = 0; g < 3; g++)
            cr_assert(e[g] <= 1e-4, "N=%ld %s: d%c err %.3g", (long)cases[i].N, cases[i].params, "QKV"[g], e[g]);
    }
}

/* Landmarks carry no value: dV of every landmark row is exactly 0 (several
 * tiles, GQA), while the other rows do get gradient. */
Test(landmark, landmark_rows_get_no_value_gradient)
{
    attn_args a = lm_args(2, 4, 2, 130, 130, 16, "l=8", 2);
    fx_problem p;
    fx_make_for(&p, K, &a, 17);
    cr_assert_eq(fx_run(K, &p, 1), 0, "%s", attn_last_error());
    double lm = 0, other = 0;
    for (int64_t b = 0; b < 2; b++)
        for (int64_t h = 0; h < 2; h++)
            for (int64_t j = 0; j < 130; j++)
                for (int64_t d = 0; d < 16; d++) {
                    double g = fabs(attn_at(&p.dv, b, h, j)[d]);
                    if (j % 8 == 7)
                        lm = fmax(lm, g);
                    else
                        other = fmax(other, g);
                }
    cr_assert(lm == 0 && other > 0, "dV: landmark rows %.3g (expected 0), others %.3g", lm, other);
    fx_free(&p);
}

/* Cost and state models: train = causal dense (4 D nnz), topk = per query
 * 2 D c + 4 D (l_loc + min(k, c) l); state 2 N D + N D / l per KV head.
 * The counters report at least the useful work. */
Test(landmark, cost_model_and_counters)
{
    attn_args tr = lm_args(1, 2, 1, 64, 64, 16, "l=8", 1);
    cr_assert_float_eq(K->flops(&tr, ATTN_PASS_FWD), 4.0 * 16 * 2 * (64 * 65 / 2), 1e-6);
    cr_assert_float_eq(K->flops(&tr, ATTN_PASS_BWD), 2.5 * 4.0 * 16 * 2 * (64 * 65 / 2), 1e-6);
    cr_assert_eq(K->state_bytes(&tr), 4u * 1 * (2 * 64 * 16 + 8 * 16));
    static const int64_t Ns[] = {64, 100};
    for (int s = 0; s < 2; s++) {
        attn_args a = lm_args(1, 2, 1, Ns[s], Ns[s], 16, "l=8 mode=topk k=2", 1);
        double expect = 0;
        for (int64_t t = 0; t < Ns[s]; t++) {
            int64_t c = t / 8, sel = c < 2 ? c : 2;
            expect += 2.0 * 16 * (double)c + 4.0 * 16 * (double)(t - 8 * c + 1 + 8 * sel);
        }
        cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), 2 * expect, 1e-6, "N=%ld", (long)Ns[s]);
        cr_assert(K->bytes(&a, ATTN_PASS_FWD) > 0 && K->bytes(&a, ATTN_PASS_FWD) <= K->bytes(&tr, ATTN_PASS_FWD) * 4);
        fx_problem p;
        fx_make_for(&p, K, &a, 41);
        attn_counters_reset();
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        double got = (double)attn_counter_get(ATTN_CNT_FLOPS);
        cr_assert(got >= 0.9 * 2 * expect && got <= 1.3 * 2 * expect, "counted %.0f, model %.0f",
                  got, 2 * expect);
        cr_assert(attn_counter_get(ATTN_CNT_BYTES_READ) > 0 && attn_counter_get(ATTN_CNT_EXPS) > 0);
        fx_free(&p);
    }
    /* a long decode step retrieves k blocks: far fewer FLOPs than the dense row */
    attn_args d = lm_args(1, 1, 1, 1, 4096, 64, "mode=topk k=4", 1);
    double dense = 4.0 * 64 * 4096, topk = K->flops(&d, ATTN_PASS_FWD);
    cr_assert_float_eq(topk, 2.0 * 64 * 63 + 4.0 * 64 * (64 + 4 * 64), 1e-6);
    cr_assert(topk < dense / 8);
    /* its traffic: Q, O, lse once, the 64 landmark keys and 5 blocks of K and V */
    cr_assert_float_eq(K->bytes(&d, ATTN_PASS_FWD), 4.0 * (64 + 64 + 1) + 4.0 * (64 * 64 + 2 * 64 * 5 * 64), 1e-6);
}

Test(landmark, refuses_other_masks_offsets_and_bad_params)
{
    attn_ctx ctx;
    attn_args f = fx_args(1, 1, 1, 16, 16, 16, "full", 1);
    cr_assert_eq(attn_ctx_create(K, &f, &ctx), ATTN_EUNSUPPORTED);
    attn_args w = fx_args(1, 1, 1, 16, 16, 16, "window:wl=4,wr=0", 1);
    cr_assert_eq(attn_ctx_create(K, &w, &ctx), ATTN_EUNSUPPORTED);
    static const char *const bad[] = {"mode=infer", "l=1", "k=0", "topk=4"};
    for (int i = 0; i < 4; i++) {
        attn_args a = lm_args(1, 1, 1, 16, 16, 16, bad[i], 1);
        cr_assert_eq(attn_ctx_create(K, &a, &ctx), ATTN_EINVAL, "%s accepted", bad[i]);
    }
    attn_args o = lm_args(1, 1, 1, 16, 16, 16, "l=8", 1);
    o.k_off = 4;
    cr_assert_eq(attn_ctx_create(K, &o, &ctx), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "k_off") != NULL, "%s", attn_last_error());
    attn_args after = lm_args(1, 1, 1, 16, 16, 16, "l=8", 1);
    after.q_off = 4; /* queries past the last key */
    cr_assert_eq(attn_ctx_create(K, &after, &ctx), ATTN_EINVAL);
    attn_args ok = lm_args(1, 1, 1, 16, 16, 16, "l=8 mode=topk k=3", 1);
    cr_assert_eq(attn_ctx_create(K, &ok, &ctx), 0, "%s", attn_last_error());
    attn_ctx_destroy(&ctx);
}

/* The table behind `attnbench check` (forward shapes incl. cross lengths,
 * gradients with check_params l=4, leakage, threads) passes. */
Test(landmark, attnbench_check_table_passes, .timeout = 60)
{
    check_tally t = {0};
    cr_assert_eq(check_kernel_cases(K, NULL, 2, check_tally_add, &t), 0, "%s", attn_last_error());
    cr_assert_eq(t.failed, 0, "%d of %d cases failed, first %s", t.failed, t.cases, t.first_failure);
    cr_assert((t.grads & (1u << 1)) && (t.kinds & (1u << CHECK_THREADS)), "no dK gradient or no threads case");
}

/* The bench's correctness gate (the kernel's double reference on sampled
 * heads) passes in both modes and a softmax-fidelity cell is reported. */
Test(landmark, bench_gate_passes_in_both_modes, .timeout = 60)
{
    for (int m = 0; m < 2; m++) {
        bench_job j;
        memset(&j, 0, sizeof j);
        strcpy(j.suite, "kernels");
        j.kernel = K;
        j.args = lm_args(2, 4, 2, 192, 192, 16, lm_modes[m], 2);
        j.pass = BENCH_PASS_FWDBWD;
        j.seed = 3;
        j.measure = (measure_opts){1, 3, 10, 0.0};
        bench_result res;
        csvw_row r;
        cr_assert_eq(bench_run(&j, NULL, &res), 0, "%s", attn_last_error());
        bench_result_row(&j, &res, &r);
        cr_assert_str_eq(r.cell[ATTN_COL_STATUS], "ok", "%s: %s", lm_modes[m], r.cell[ATTN_COL_STATUS]);
        cr_assert(r.cell[ATTN_COL_SOFTMAX_REL_ERR][0] != '\0', "%s: no softmax fidelity cell", lm_modes[m]);
    }
}
