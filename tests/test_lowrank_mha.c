/* Properties of the `lowrank_mha` pooling mixer (low-rank multi-head
 * attention pooling): the fp32 kernel equals its double reference (also on
 * padded batches); gradients of X and of U, V, p against central differences
 * of the reference (dK = dV = 0); with r = D, U = V = I, m = 1 and p = 1 it is
 * the oracle's softmax attention of the one query c = mean(X) over keys and
 * values X at scale 1; heads with identical p_i are identical (m heads = one);
 * permuting the tokens leaves the output unchanged; cost model, counters and
 * refusals. The tiny LRA training is in test_lowrank_mha_train.c. */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "kernels/core/counters.h"
#include "kernels/core/oracle.h"
#include "kernels/lowrank_mha/lowrank_mha.h"
#include "own_ref_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_lowrank_mha;

static attn_args lr_args(int64_t B, int64_t H, int64_t N, int64_t D, const char *params, int threads)
{
    return fx_args_params(B, H, H, N, N, D, "full", threads, params);
}

static lowrank_plan plan_of(const attn_args *a)
{
    lowrank_plan pl;
    cr_assert_eq(attn_lowrank_plan(&pl, a), 0, "%s", attn_last_error());
    return pl;
}

Test(lowrank_mha, forward_matches_double_reference_over_lengths_widths_and_ranks, .timeout = 60)
{
    static const int64_t Ns[] = {64, 130}, Ds[] = {16, 32};
    static const char *const params[] = {"m=4 r=16", "m=1 r=3", "m=8 r=64"};
    int c = 0;
    for (int n = 0; n < 2; n++)
        for (int d = 0; d < 2; d++)
            for (int p = 0; p < 3; p++, c++) {
                char what[96];
                snprintf(what, sizeof what, "N=%ld D=%ld %s", (long)Ns[n], (long)Ds[d], params[p]);
                attn_args a = lr_args(2, 2, Ns[n], Ds[d], params[p], 2);
                own_ref_check(K, &a, 200 + (uint64_t)c, what);
            }
    attn_args one = lr_args(1, 2, 1, 16, "m=4 r=16", 1);
    own_ref_check(K, &one, 199, "N=1");
}

Test(lowrank_mha, padded_batch_matches_reference_and_zeroes_padding_rows)
{
    static const int64_t lens[] = {130, 57, 1};
    attn_args a = lr_args(3, 2, 130, 16, "m=4 r=16", 2);
    a.seq_len = lens;
    fx_problem p;
    fx_make_for(&p, K, &a, 210);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert(fx_err_o(&p) <= 5e-5, "padded: err %.3g", fx_err_o(&p));
    for (int64_t b = 0; b < 3; b++)
        for (int64_t t = lens[b]; t < 130; t++)
            for (int64_t d = 0; d < 16; d++)
                cr_assert_eq(attn_at(&p.o, b, 1, t)[d], 0.0f, "b %ld padding row %ld", (long)b, (long)t);
    fx_free(&p);
}

Test(lowrank_mha, backward_matches_reference_gradients_of_x_and_u_v_p, .timeout = 60)
{
    static const struct {
        int64_t B, H, N, D;
        const char *params;
    } cases[] = {
        {1, 2, 7, 4, "m=3 r=5"},
        {2, 1, 9, 5, "m=1 r=2"},
        {2, 2, 6, 4, "m=4 r=4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_args a = lr_args(cases[i].B, cases[i].H, cases[i].N, cases[i].D, cases[i].params, 2);
        double e[ATTN_CHECK_GRADS];
        cr_assert_eq(check_kernel_backward(K, &a, 220 + i, e), 0, "%s", attn_last_error());
        cr_assert(e[0] <= 1e-4, "case %zu (%s): dX err %.3g", i, cases[i].params, e[0]);
        cr_assert(e[6] <= 1e-4, "case %zu (%s): dw (U, V, p) err %.3g", i, cases[i].params, e[6]);
        cr_assert(e[1] == 0 && e[2] == 0, "case %zu: dK/dV not zero (%.3g, %.3g)", i, e[1], e[2]);
    }
}

/* Sets every head's weights: U = V = I (r = D), p_i = 1. */
static void identity_weights(fx_problem *p)
{
    lowrank_plan pl = plan_of(&p->a);
    int64_t D = p->a.D;
    for (int64_t h = 0; h < p->a.H; h++) {
        float *w = attn_at(&p->w, 0, h, 0);
        memset(w, 0, sizeof(float) * (size_t)pl.W);
        for (int64_t d = 0; d < D; d++)
            w[d * D + d] = w[pl.off_v + d * D + d] = 1.0f;
        for (int64_t i = 0; i < pl.m * pl.r; i++)
            w[pl.off_p + i] = 1.0f;
    }
}

Test(lowrank_mha, identity_factors_equal_the_oracle_with_the_mean_as_the_one_query)
{
    int64_t B = 2, H = 2, N = 45, D = 16;
    attn_args a = lr_args(B, H, N, D, "m=1 r=16", 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 230);
    identity_weights(&p);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    attn_args oa = fx_args(B, H, H, 1, N, D, "full", 1);
    oa.scale = 1.0;
    attn_tensor_f64 c = {calloc((size_t)(B * H * D), 8), B, H, 1, D, H * D, D, D};
    attn_tensor_f64 o = c;
    o.data = calloc((size_t)(B * H * D), 8);
    double *lse = calloc((size_t)(B * H), 8), *want = malloc(sizeof(double) * (size_t)(B * H * N * D));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t j = 0; j < N; j++)
                for (int64_t d = 0; d < D; d++)
                    attn_at64(&c, b, h, 0)[d] += attn_at(&p.q, b, h, j)[d] / (double)N;
    fx_problem x; /* the oracle reads X as keys and values */
    fx_make(&x, &a, 230);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t j = 0; j < N; j++)
                for (int64_t d = 0; d < D; d++)
                    attn_at64(&x.k64, b, h, j)[d] = attn_at64(&x.v64, b, h, j)[d] = attn_at(&p.q, b, h, j)[d];
    attn_oracle_forward_f64(&oa, &c, &x.k64, &x.v64, &o, lse);
    for (int64_t b = 0, i = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < N; t++)
                for (int64_t d = 0; d < D; d++)
                    want[i++] = attn_at64(&o, b, h, 0)[d];
    double e = own_rel_err(&p.o, want);
    cr_assert(e <= 5e-6, "identity factors vs oracle with query mean(X): %.3g", e);
    free(c.data), free(o.data), free(lse), free(want);
    fx_free(&x), fx_free(&p);
}

Test(lowrank_mha, identical_head_vectors_p_give_identical_heads)
{
    /* every p_i equal to head 0's: the mean of m identical heads is one head */
    attn_args a4 = lr_args(2, 2, 50, 16, "m=4 r=8", 1), a1 = lr_args(2, 2, 50, 16, "m=1 r=8", 1);
    lowrank_plan p4 = plan_of(&a4), p1 = plan_of(&a1);
    fx_problem many, one;
    fx_make_for(&many, K, &a4, 240), fx_make_for(&one, K, &a1, 240);
    for (int64_t h = 0; h < 2; h++) {
        float *w4 = attn_at(&many.w, 0, h, 0), *w1 = attn_at(&one.w, 0, h, 0);
        memcpy(w1, w4, sizeof(float) * (size_t)p1.W); /* U, V, p_0 */
        for (int64_t i = 1; i < 4; i++)
            memcpy(w4 + p4.off_p + i * 8, w4 + p4.off_p, sizeof(float) * 8);
    }
    cr_assert_eq(fx_run(K, &many, 0), 0, "%s", attn_last_error());
    cr_assert_eq(fx_run(K, &one, 0), 0, "%s", attn_last_error());
    double e = 0, mx = 0;
    for (int64_t i = 0; i < many.o.B * many.o.sb; i++)
        e = fmax(e, fabs(many.o.data[i] - one.o.data[i])), mx = fmax(mx, fabs(one.o.data[i]));
    cr_assert(mx > 0.01 && e <= 1e-6 * mx, "m=4 identical heads vs m=1: %.3g (max %.3g)", e, mx);
    /* and distinct p_i do change the result */
    fx_problem diff;
    fx_make_for(&diff, K, &a4, 240);
    cr_assert_eq(fx_run(K, &diff, 0), 0, "%s", attn_last_error());
    cr_assert(!fx_bitwise_equal(&diff.o, &many.o), "distinct p_i gave the identical-heads output");
    fx_free(&many), fx_free(&one), fx_free(&diff);
}

Test(lowrank_mha, permuting_the_tokens_leaves_the_output_unchanged)
{
    int64_t N = 37, D = 16;
    attn_args a = lr_args(1, 2, N, D, "m=4 r=16", 1);
    fx_problem p, q;
    fx_make_for(&p, K, &a, 250), fx_make_for(&q, K, &a, 250);
    for (int64_t h = 0; h < 2; h++)
        for (int64_t j = 0; j < N; j++) /* row j of q = row (7 j + 3) mod N of p: a permutation (gcd(7, 37) = 1) */
            memcpy(attn_at(&q.q, 0, h, j), attn_at(&p.q, 0, h, (7 * j + 3) % N), sizeof(float) * (size_t)D);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert_eq(fx_run(K, &q, 0), 0, "%s", attn_last_error());
    double e = 0, mx = 0;
    for (int64_t i = 0; i < p.o.B * p.o.sb; i++)
        e = fmax(e, fabs(p.o.data[i] - q.o.data[i])), mx = fmax(mx, fabs(p.o.data[i]));
    cr_assert(mx > 0.01 && e <= 1e-5 * mx, "permuted tokens: %.3g (max %.3g)", e, mx);
    fx_free(&p), fx_free(&q);
}

Test(lowrank_mha, cost_model_counters_and_parameters)
{
    int64_t B = 2, H = 3, N = 40, D = 16, m = 4, r = 8;
    attn_args a = lr_args(B, H, N, D, "m=4 r=8", 1);
    double per = 2.0 * N * D * r + 2.0 * m * N * (r + D);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), B * H * per, 1e-6);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_BWD), 2 * B * H * per, 1e-6);
    cr_assert_eq(K->input_cols(&a, ATTN_IN_WEIGHTS), 2 * D * r + r * m, "parameters 2 d r + r m per head");
    cr_assert_eq(K->state_bytes(&a), 0u);
    fx_problem p;
    fx_make_for(&p, K, &a, 5);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert_eq((double)attn_counter_get(ATTN_CNT_FLOPS), B * H * per);
    cr_assert_eq(attn_counter_get(ATTN_CNT_EXPS), B * H * N * m);
    fx_free(&p);
    static const int64_t lens[] = {40, 10};
    a.seq_len = lens; /* padded: real rows only */
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), H * 50.0 / N * per, 1e-6);
}

Test(lowrank_mha, refuses_causal_scale_cross_lengths_and_bad_params)
{
    attn_ctx ctx;
    attn_args c = fx_args_params(1, 1, 1, 8, 8, 16, "causal", 1, "m=2 r=4");
    cr_assert_eq(attn_ctx_create(K, &c, &ctx), ATTN_EUNSUPPORTED);
    attn_args x = fx_args_params(1, 1, 1, 8, 12, 16, "full", 1, "m=2 r=4");
    cr_assert_neq(attn_ctx_create(K, &x, &ctx), 0);
    static const char *const bad[] = {"m=0", "r=0", "heads=2", "scale=0.5"};
    for (int i = 0; i < 4; i++) {
        attn_args b = lr_args(1, 1, 8, 16, bad[i], 1);
        cr_assert_neq(attn_ctx_create(K, &b, &ctx), 0, "%s accepted", bad[i]);
    }
}
